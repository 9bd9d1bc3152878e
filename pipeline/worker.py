"""The worker: claim an event, decide, hand the decision to the write-back, audit.

Per event, in this order:

1. the hours ledger records time logged and which account the ticket is on;
2. a full ticket snapshot is decided (from creation: a re-decision moves the due time
   retroactively) and its SLA clock tracked (`pipeline.lifecycle`); a comment, a
   sweep's stage change or an hours wake-up decides the ticket again from its last
   snapshot, with where its clock stands; a status change stops or restarts the clock;
3. the write-back, skipped when the ticket already shows it;
4. done, audit row, written state, SLA clock and the follow-up events it gives rise to
   (hours wake-ups): one transaction.

One loop per thread; any number of threads and processes share the inbox. Failures
never end in silence:

- bad data (a value the mappings do not know, a ticket the rules cannot decide) will
  not fix itself: dead letter at once, with the reason, to be replayed after the
  mapping is fixed;
- a write-back the helpdesk refused for good (401, 404): dead letter;
- anything else (a helpdesk outage, a locked store): retried with exponential backoff,
  and a dead letter after ``max_attempts``.

A killed worker loses nothing: its lease runs out and another worker takes the event.
Marking the event done and writing its audit row are one transaction, so an event is
never audited as decided twice.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from entitlements.calendars import from_us
from entitlements.decide import decide, followed
from entitlements.errors import EntitlementError
from entitlements.ledger import hours_subscriptions, low_fraction
from entitlements.rulebook import Rulebook
from entitlements.tickets import Ticket
from pipeline.ledger_events import LedgerChange, record_time
from pipeline.lifecycle import (
    HOURS_CHANGED,
    SLA_CHANGED,
    counts_as_first_response,
    follow_up,
    resolved,
    responded,
    response_of,
    status_of,
    track,
)
from pipeline.writeback import (
    DryRun,
    WriteBack,
    WriteBackError,
    WriteResult,
    canonical,
    ticket_update,
)
from store import (
    AuditRecord,
    Claimed,
    LeaseLost,
    NewEvent,
    SlaClock,
    Store,
    StoreError,
    WrittenState,
)
from store.ledger import Ledger
from telemetry.metrics import EVENT_LATENCY, EVENTS
from webhooks.events import TicketEvent, loggable, own_write
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings, Tenant

log = logging.getLogger("tierdesk.worker")

MAX_BACKOFF_S = 300.0


class _PermanentError(Exception):
    """Retrying cannot help; the event becomes a dead letter now."""


class _Result(NamedTuple):
    record: AuditRecord
    written: WrittenState | None = None
    clock: SlaClock | None = None
    follow: tuple[NewEvent, ...] = ()  # queued with the completion, in its transaction


# Events tierdesk queues itself: decide the ticket again from its last full snapshot.
FOLLOW_UPS = (SLA_CHANGED, HOURS_CHANGED, "comment.created")


@dataclass(frozen=True, slots=True)
class Outcome:
    event: int
    state: str  # done, retry, dead, lost


class Worker:
    def __init__(
        self,
        store: Store,
        mappings: LiveMappings,
        settings: Settings,
        *,
        writeback: Callable[[Tenant], WriteBack] | None = None,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self._purchases_of: str | None = None  # the mappings version the ledger's purchases are
        self.mappings = mappings
        self.settings = settings
        self._writeback = writeback or (lambda tenant: DryRun())
        self._clock = clock
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"

    def run_once(self) -> Outcome | None:
        """Process one event; None when there is nothing to claim now."""
        now = self._clock()
        claimed = self.store.claim(self.name, now, self.settings.lease_s)
        if claimed is None:
            return None
        if claimed.attempts > self.settings.max_attempts:
            # Claims count attempts; only a lease that ran out gets here: the event
            # kills or outlasts its workers every time. It must not block its ticket.
            return self._fail(
                claimed,
                f"abandoned {claimed.attempts - 1} times (worker killed or past its lease)",
                dead=True,
            )
        try:
            record, written, clock, follow = self._process(claimed)
        except _PermanentError as exc:
            return self._fail(claimed, str(exc), dead=True)
        except Exception as exc:
            log.exception(
                "event=%s ticket=%s failed", loggable(claimed.event_id), loggable(claimed.ticket)
            )
            return self._fail(claimed, f"{type(exc).__name__}: {exc}", dead=False)
        try:
            self.store.complete(claimed, record, self._clock(), written, clock, follow)
        except LeaseLost:
            log.warning("event=%s lease lost; another worker owns it", loggable(claimed.event_id))
            return Outcome(claimed.id, "lost")
        EVENTS.labels(claimed.tenant, record.outcome).inc()
        EVENT_LATENCY.labels(claimed.tenant).observe(max(0.0, self._clock() - claimed.received_at))
        log.info(
            "tenant=%s ticket=%s event=%s kind=%s outcome=%s",
            claimed.tenant,
            loggable(claimed.ticket),
            loggable(claimed.event_id),
            claimed.kind,
            record.outcome,
        )
        return Outcome(claimed.id, "done")

    def _process(self, claimed: Claimed) -> _Result:
        try:
            event = TicketEvent.from_json(claimed.normalized)
        except (ValueError, KeyError, TypeError, EntitlementError) as exc:
            raise _PermanentError(f"unreadable event: {type(exc).__name__}: {exc}") from None
        hours = self._record_time(event)
        result = self._handle(claimed, event, hours)
        return result._replace(follow=self._wake(claimed, event, hours))

    def _handle(self, claimed: Claimed, event: TicketEvent, hours: LedgerChange | None) -> _Result:
        if event.kind in FOLLOW_UPS:
            return self._follow_up(claimed, event)
        if event.ticket is None or event.partial:
            # Worklogs feed the hours ledger, and a Zendesk event webhook lacks the
            # requester and custom fields: nothing to decide from here (the trigger
            # body, or a REST read, brings the rest). A status change still stops or
            # restarts the SLA clock.
            what = "a partial ticket" if event.partial else "no ticket state"
            note = f"{event.kind}: {what} to decide on"
            if hours is not None:
                note += f"; hours: {hours.note}"
            clock = self._status_change(claimed, event)
            if clock is not None:
                note += "; SLA clock " + ("stopped: solved" if clock.closed else "running again")
            return _Result(AuditRecord("recorded", note=note), clock=clock)
        if self.store.superseded(claimed):
            # An older snapshot than one already decided: a replay, or the late echo of
            # our own write arriving after an agent's newer edit. Writing it would undo
            # the newer state.
            return _Result(
                AuditRecord("superseded", note="a newer snapshot of this ticket is done")
            )
        tenant = self._tenant(event)
        if own_write(event, tenant.email):
            # Deciding it could only write back an older state than an agent's edit
            # that arrived in the same second (Zendesk stamps whole seconds).
            return _Result(AuditRecord("echo", note="the webhook of tierdesk's own write"))
        previous = self.store.sla_clock(event.tenant, claimed.ticket)
        return self._decide(claimed, event, tenant, event.ticket, previous, claimed.normalized)

    def _wake(
        self, claimed: Claimed, event: TicketEvent, hours: LedgerChange | None
    ) -> tuple[NewEvent, ...]:
        """When time was logged, the open tickets of the account must show its hours
        flags (ok, low, exhausted): each one that shows another status than the balance
        has now is decided again. Worked out from the balance and from what was last
        written, not from what this event changed, so that a replay after a crash wakes
        the same tickets (the inbox drops the repeats)."""
        tenant = self.settings.tenants.get(event.tenant)
        if self.ledger is None or event.kind in FOLLOW_UPS or tenant is None:
            return ()
        accounts = {c.account for c in hours.accounts} if hours else set()
        if event.worklog is not None:
            accounts.add(self.ledger.account_of(event.tenant, event.ticket_id) or "")
        if not accounts:  # most events: no time logged, no account's balance moved
            return ()
        writer = self._writeback(tenant).name
        rulebook = self._rulebook()
        follow: list[NewEvent] = []
        for account_id in sorted(accounts):
            account = rulebook.account(account_id) if account_id else None
            if account is None or not hours_subscriptions(account, rulebook):
                continue
            flags = self.ledger.balance(account_id, low_fraction(account, rulebook))
            # Named by the event that moved the balance: its replay wakes nobody twice,
            # and a balance that comes back to an earlier figure wakes them again.
            stamp = f"hours:{flags.status}:{claimed.id}"
            follow.extend(
                follow_up(clock, HOURS_CHANGED, stamp, event.occurred_at)
                for clock in self.store.waiting(event.tenant, account_id)
                if self._shown_hours(event.tenant, clock.ticket, writer) != flags.status
            )
        return tuple(follow)

    def _shown_hours(self, tenant: str, ticket: str, writer: str) -> object:
        """The hours status tierdesk last wrote on the ticket (None: never written)."""
        last = self.store.last_written(tenant, ticket, writer)
        return json.loads(last).get("hours") if last else None

    def _record_time(self, event: TicketEvent) -> LedgerChange | None:
        """The hours ledger: time logged, and which account a ticket belongs to. Before
        any decision, so that a worklog webhook (no ticket state) counts too."""
        if self.ledger is None or event.kind in FOLLOW_UPS:
            return None  # our own follow-ups bring no new ticket state
        rulebook = self._rulebook()
        if rulebook.version != self._purchases_of:
            self.ledger.sync_purchases(rulebook)  # writes only what the mappings changed
            self._purchases_of = rulebook.version
        now = datetime.fromtimestamp(self._clock(), UTC)
        try:
            return record_time(self.ledger, event, rulebook, now)
        except EntitlementError as exc:  # LedgerError: a negative time, a naive instant
            raise _PermanentError(f"hours ledger: {exc}") from None

    def _answered_before(
        self, claimed: Claimed, tenant: Tenant, clock: SlaClock, rulebook: Rulebook
    ) -> SlaClock:
        """A new clock, with the first response an agent gave before the ticket was first
        decided (its first decision dead-lettered and replayed, or delivered late): the
        comment was recorded then, and counts now."""
        for text in self.store.comments(claimed.tenant, claimed.ticket):
            comment = TicketEvent.from_json(text)
            if comment.occurred_at < from_us(clock.created_us):
                continue
            if counts_as_first_response(comment, clock, tenant.email) is None:
                return responded(clock, rulebook, comment.occurred_at)[0]
        return clock

    def _status_change(self, claimed: Claimed, event: TicketEvent) -> SlaClock | None:
        """The ticket's clock, stopped or restarted, when this event changes whether the
        ticket is solved; None when it does not."""
        if event.resolved is None:
            return None
        clock = self.store.sla_clock(event.tenant, claimed.ticket)
        if clock is None or clock.closed == event.resolved:
            return None
        return resolved(clock, event.resolved, event.occurred_at)

    def _hours_used(self, ticket: Ticket, rulebook: Rulebook) -> tuple[str, int | None]:
        """The ticket's pay-as-you-go account and the seconds it has used, from the
        ledger; ("", None) when there is no ledger or no such account."""
        if self.ledger is None:
            return "", None
        match = rulebook.find_account(ticket)
        if match is None or not hours_subscriptions(match.account, rulebook):
            return "", None
        return match.account.id, self.ledger.totals(match.account.id).used_s

    def _tenant(self, event: TicketEvent) -> Tenant:
        tenant = self.settings.tenants.get(event.tenant)
        if tenant is None:
            raise _PermanentError(f"tenant {event.tenant!r} is no longer configured")
        return tenant

    def _follow_up(self, claimed: Claimed, event: TicketEvent) -> _Result:
        """A comment (perhaps the first response) or a sweep's SLA change: decide the
        ticket again from its last full snapshot, with where its clock stands now."""
        clock = self.store.sla_clock(event.tenant, claimed.ticket)
        if clock is None:
            return _Result(AuditRecord("recorded", note=f"{event.kind}: no SLA clock yet"))
        tenant = self._tenant(event)
        if event.kind == "comment.created":
            why_not = counts_as_first_response(event, clock, tenant.email)
            if why_not is not None:
                return _Result(AuditRecord("recorded", note=f"not the first response: {why_not}"))
            clock, _ = responded(clock, self._rulebook(), event.occurred_at)
        snapshot = TicketEvent.from_json(clock.snapshot)
        if snapshot.ticket is None:  # pragma: no cover - only full snapshots are kept
            raise _PermanentError("the SLA clock's snapshot holds no ticket")
        return self._decide(claimed, snapshot, tenant, snapshot.ticket, clock, clock.snapshot)

    def _rulebook(self) -> Rulebook:
        rulebook = self.mappings.rulebook
        if rulebook is None:
            raise RuntimeError("no valid mappings are loaded")  # transient: fix and reload
        return rulebook

    def _decide(
        self,
        claimed: Claimed,
        event: TicketEvent,
        tenant: Tenant,
        ticket: Ticket,
        previous: SlaClock | None,
        snapshot: str,
    ) -> _Result:
        rulebook = self._rulebook()
        now = datetime.fromtimestamp(self._clock(), UTC)
        account, used_s = self._hours_used(ticket, rulebook)
        used = {account: used_s} if account and used_s is not None else None
        at_open = None
        if used and previous is not None and previous.opened_left_s is not None:
            at_open = {account: previous.opened_left_s}
        try:
            decision = decide(ticket, rulebook, now, hours_used=used, hours_left_at_open=at_open)
        except EntitlementError as exc:
            raise _PermanentError(f"undecidable: {exc}") from None
        clock = track(event, decision, previous, now, snapshot, rulebook)
        if clock is not None and previous is None:
            clock = self._answered_before(claimed, tenant, clock, rulebook)
        if clock is not None:
            decision = followed(decision, status_of(clock), response_of(clock), rulebook.tag_prefix)
        writer = self._writeback(tenant)
        desired = ticket_update(decision)
        state = canonical(desired)
        last = self.store.last_written(event.tenant, claimed.ticket, writer.name)
        if claimed.kind not in FOLLOW_UPS and self.store.newer_decidable(claimed):
            # A burst: a newer full snapshot of this ticket is already queued. It is
            # decided here all the same (every event gets its decision in the audit),
            # but its write would be undone at once: the newer event's write carries it.
            result = WriteResult("coalesced", desired, "a newer event of this ticket is queued")
            written = None
        elif last == state:
            # Nothing to change, which is also what stops our own write-back's webhook
            # from looping: it brings back the state we wrote.
            result = WriteResult("unchanged", desired, "same as last written: no call made")
            written = None
        else:
            try:
                result = writer.write(tenant, event, decision, json.loads(last) if last else None)
            except WriteBackError as exc:
                if exc.transient:
                    raise
                raise _PermanentError(f"write-back refused: {exc}") from None
            written = WrittenState(writer.name, state)
        record = AuditRecord(
            "decided",
            decision=json.dumps(decision.to_json()),
            written=json.dumps(result.to_json()),
            note=f"mappings {rulebook.version}",
        )
        return _Result(record, written, clock)

    def _fail(self, claimed: Claimed, error: str, *, dead: bool) -> Outcome:
        now = self._clock()
        retry_at = None
        if not dead and claimed.attempts < self.settings.max_attempts:
            retry_at = now + min(2.0**claimed.attempts, MAX_BACKOFF_S)
        try:
            state = self.store.fail(claimed, error, now, retry_at)
        except LeaseLost:
            return Outcome(claimed.id, "lost")
        EVENTS.labels(claimed.tenant, "dead_letter" if state == "dead" else "retry").inc()
        log.warning(
            "tenant=%s ticket=%s event=%s outcome=%s attempts=%d error=%s",
            claimed.tenant,
            loggable(claimed.ticket),
            loggable(claimed.event_id),
            "dead_letter" if state == "dead" else "retry",
            claimed.attempts,
            loggable(error),
        )
        return Outcome(claimed.id, "dead" if state == "dead" else "retry")

    def run(self, stop: threading.Event, idle_s: float = 0.2) -> None:
        """Loop until ``stop`` is set; sleep ``idle_s`` when there is nothing to do."""
        while not stop.is_set():
            try:
                if self.run_once() is None:
                    stop.wait(idle_s)
            except StoreError as exc:  # the store is down: wait and try again
                log.error("store unavailable: %s", exc)
                stop.wait(min(idle_s * 10, 5.0))
            except Exception:  # a bug must not stop the worker; the lease brings it back
                log.exception("worker %s: unexpected error; carrying on", self.name)
                stop.wait(min(idle_s * 10, 5.0))
