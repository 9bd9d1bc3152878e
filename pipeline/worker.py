"""The worker: takes each queued event down one straight path, and what it guarantees.

In: events from the inbox (`Store.claim_many`), several at once, each with what
deciding it needs of its ticket (its SLA clock, what was last written on it, whether a
newer snapshot is done or queued), read in the claim's transaction. Per event:

1. **claim** — the event, leased; one that has outlived ``max_attempts`` leases (it
   kills or outlasts its workers) is a dead letter at once, so it cannot block its ticket;
2. the hours ledger records time logged and which account the ticket is on (before
   deciding: a worklog webhook carries no ticket state, and its time counts all the same).
   A link that moves no time (nothing is logged on the ticket: most new tickets) is
   written with the claim's others in one transaction before the completion (before a
   call to the helpdesk or a failure, alone);
3. **decide** — a full ticket snapshot from its creation (a re-decision moves the due
   time retroactively); a comment, a sweep's stage change or an hours wake-up decides the
   ticket again from its last snapshot, with where its clock stands. Nothing is decided
   from a partial event (a status change still stops or restarts the clock), a snapshot
   older than one already done (``superseded``), or the echo of tierdesk's own write;
4. **track** — the ticket's SLA clock after the decision (`pipeline.lifecycle`);
5. **write** — the write-back, skipped when the ticket already shows it (0 calls: what
   stops our own write's webhook from looping) or when a newer snapshot of the ticket is
   queued (``coalesced``: its own write carries the change);
6. **complete** — done, its one audit row, the written state, the clock and the events it
   gives rise to (hours wake-ups): one transaction, shared by the events of a claim. A
   write that reached the helpdesk is completed at once, and the rest of the claim handed
   back for other workers: a vendor call can take seconds.

Out: per event an `Outcome` (done, retry, dead, lost) and one log line. Failures never
end in silence:

- bad data (a value the mappings do not know, a ticket the rules cannot decide) will
  not fix itself: dead letter at once, with the reason, to be replayed after the
  mapping is fixed;
- a write-back the helpdesk refused for good (401, 404): dead letter;
- anything else (a helpdesk outage, a locked store): retried with exponential backoff,
  and a dead letter after ``max_attempts``.

One loop per thread; any number of threads and processes share the inbox. A killed
worker loses nothing: its leases run out and another worker takes the events. Marking an
event done and writing its audit row are one transaction, so an event is never audited
as decided twice; a completion whose lease was lost meanwhile is discarded (``lost``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from entitlements.calendars import from_us
from entitlements.decide import Decision, decide, followed
from entitlements.errors import EntitlementError
from entitlements.ledger import Totals, hours_subscriptions, low_fraction
from entitlements.rulebook import Rulebook
from entitlements.tickets import Ticket
from pipeline.ledger_events import LedgerChange, record_time
from pipeline.lifecycle import (
    HOURS_CHANGED,
    SLA_CHANGED,
    counts_as_first_response,
    deleted,
    deleted_before,
    follow_up,
    responded,
    response_of,
    status_change,
    status_of,
    track,
)
from pipeline.requesters import HasUsers, Requesters, explained
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
    Completion,
    LeaseLost,
    NewEvent,
    SlaClock,
    Store,
    StoreError,
    WrittenState,
)
from store.ledger import Ledger
from store.ledger_base import Linked, TicketLink
from telemetry.metrics import EVENT_LATENCY, EVENTS
from webhooks.events import TicketEvent, log_event, loggable, own_write
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings, Tenant

log = logging.getLogger("tierdesk.worker")

MAX_BACKOFF_S = 300.0


class _PermanentError(Exception):
    """Retrying cannot help; the event becomes a dead letter now."""


# Events tierdesk queues itself: decide the ticket again from its last full snapshot.
# A comment, new or edited (an internal note made public is a reply from then on).
COMMENTS = ("comment.created", "comment.updated")
FOLLOW_UPS = (SLA_CHANGED, HOURS_CHANGED, *COMMENTS)

# Events claimed at once: their claim and their completion are one transaction each, so
# a claim's and a completion's fixed cost is shared by up to 128 events. On a backlog
# (bench/drain.py, 2026-12-06, interleaved runs) 128 drained 1.12-1.18x as fast as 32 on
# SQLite and 1.13x on PostgreSQL; 512 gained 1.05-1.13x more, but its completion holds
# SQLite's write lock for ~25 ms, which a webhook's acknowledgement waits behind; 128
# holds it ~8 ms. Only a backlog fills a claim: events arriving at the pace they are
# decided are claimed a few at a time.
BATCH = 128


@dataclass(frozen=True, slots=True)
class Outcome:
    event: int
    state: str  # done, retry, dead, lost


@dataclass(frozen=True, slots=True)
class _Basis:
    """What one decision is made from: a full snapshot of the ticket and its clock."""

    claimed: Claimed
    event: TicketEvent  # the snapshot (a follow-up's: the clock's last one)
    ticket: Ticket
    tenant: Tenant
    previous: SlaClock | None  # the clock before this decision
    snapshot: str  # ``event`` as JSON, kept with the clock


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
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self._purchases_of: str | None = None  # the mappings version the ledger's purchases are
        self.mappings = mappings
        self.settings = settings
        self._writeback = writeback or (lambda tenant: DryRun())
        self._clock = clock
        self.requesters = Requesters()  # Jira accountId → email, cached per tenant
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.batch = batch
        self._limit = batch  # the next claim's size: 1 after a write to the helpdesk
        # Read once per batch (nothing else changes them for the tickets this worker
        # holds; its own ledger writes clear the totals): the ledger's links of the
        # batch's tickets, and the hours totals of accounts decided in it. Links that
        # move no time wait in ``_deferred`` (by inbox row) for one transaction.
        self._links: dict[tuple[str, str], Linked] = {}
        self._totals: dict[str, Totals] = {}
        self._deferred: dict[int, list[TicketLink]] = {}

    def run_once(self) -> Outcome | None:
        """Process one event; None when there is nothing to claim now."""
        outcomes = self.run_batch(1)
        return outcomes[0] if outcomes else None

    def run_batch(self, limit: int | None = None) -> list[Outcome]:
        """Claim up to ``limit`` events (``batch``), take each down the path, complete
        them; [] when there is nothing to claim now."""
        began = self._clock()
        wanted = limit or self._limit
        batch = self.store.claim_many(self.name, began, self.settings.lease_s, wanted)
        self._links, self._totals, self._deferred = self._read_links(batch), {}, {}
        outcomes: list[Outcome] = []
        done: list[Completion] = []
        rest: list[Claimed] = []  # handed back unprocessed, once the others are complete
        for i, claimed in enumerate(batch):
            if i and self._clock() - began > self.settings.lease_s / 2:
                rest = batch[i:]  # they would be processed near the end of their leases
                break
            step = self._step(claimed)
            if isinstance(step, Outcome):
                outcomes.append(step)
                continue
            done.append(step)
            if step.written is not None and step.written.writer != DryRun.name:
                # A write that reached the helpdesk: recorded at once (a crash now would
                # send it again), and the rest handed back to the other workers; claims
                # are small again until batches come without such calls.
                rest = batch[i + 1 :]
                self._limit = 1
                break
        else:
            self._limit = min(self.batch, self._limit * 2)
        linked, failed = self._link_deferred(done)
        outcomes += failed + self._complete(linked)
        if rest:
            self._release(rest)
        return outcomes

    def _release(self, rest: list[Claimed]) -> None:
        """Hand back events not processed. After the completions, so that a store error
        here cannot undo the record of a write that reached the helpdesk (its event
        would be taken again and the write sent twice); when it fails, their leases run
        out and they are claimed again all the same."""
        try:
            self.store.release(rest, self._clock())
        except StoreError as exc:
            log.warning("cannot hand back %d events, their leases will run out: %s", len(rest), exc)

    def _read_links(self, batch: list[Claimed]) -> dict[tuple[str, str], Linked]:
        """What the ledger holds of each ticket whose event brings a snapshot (those
        `record_time` links), one read per tenant."""
        if self.ledger is None:
            return {}
        tickets: dict[str, list[str]] = {}
        for claimed in batch:
            if claimed.ticket and claimed.kind not in FOLLOW_UPS:
                tickets.setdefault(claimed.tenant, []).append(claimed.ticket)
        links: dict[tuple[str, str], Linked] = {}
        for tenant, ids in tickets.items():
            known = self.ledger.links_of(tenant, ids)
            links.update(((tenant, ticket), link) for ticket, link in known.items())
        return links

    def _link_deferred(self, done: list[Completion]) -> tuple[list[Completion], list[Outcome]]:
        """The links that move no time of the batch's completed events, in one
        transaction before they are done; the completions to record, and the failures
        of those whose links could not be written (not done without them: a later
        worklog of the ticket would miss its account).

        Nothing reads a link sooner: the ticket's next event waits for this one to be
        done or failed (the inbox's order), a failure writes its event's links first
        (`_fail`), and a link that moves no time changes no balance."""
        links = [link for c in done for link in self._deferred.get(c.claimed.id, ())]
        if not links or self.ledger is None:
            return done, []
        try:
            self.ledger.link_all(links)
        except StoreError:
            # Event by event, so that one that cannot be linked fails alone; a write that
            # reached the helpdesk has written its links before its call (`_write`).
            linked, failed = [], []
            for item in done:
                try:
                    self._link_now(item.claimed)
                except StoreError as exc:
                    failed.append(self._fail(item.claimed, f"cannot link: {exc}", dead=False))
                else:
                    linked.append(item)
            return linked, failed
        self._deferred.clear()  # written: a completion failing now (`_fail`) has none left
        return done, []

    def _link_now(self, claimed: Claimed) -> None:
        """The links ``claimed`` deferred, written now: before a call to the helpdesk
        (a link that cannot be written stops the call, as before deferring), and before
        a failure hands its ticket to the next event."""
        links = self._deferred.get(claimed.id)
        if links and self.ledger is not None:
            self.ledger.link_all(links)
        self._deferred.pop(claimed.id, None)  # only once written: a failure keeps them

    def _step(self, claimed: Claimed) -> Completion | Outcome:
        """The path of one event up to its completion; an `Outcome` when it failed."""
        if claimed.attempts > self.settings.max_attempts:
            # Claims count attempts; only a lease that ran out gets here: the event
            # kills or outlasts its workers every time. It must not block its ticket.
            return self._fail(
                claimed,
                f"abandoned {claimed.attempts - 1} times (worker killed or past its lease)",
                dead=True,
            )
        try:
            return self._process(claimed)
        except _PermanentError as exc:
            return self._fail(claimed, str(exc), dead=True)
        except Exception as exc:
            log.exception(
                "event=%s ticket=%s failed", loggable(claimed.event_id), loggable(claimed.ticket)
            )
            return self._fail(claimed, f"{type(exc).__name__}: {exc}", dead=False)

    def _process(self, claimed: Claimed) -> Completion:
        """claim → (ledger) → decide → track → write → complete."""
        try:
            event = TicketEvent.from_json(claimed.normalized)
        except (ValueError, KeyError, TypeError, EntitlementError) as exc:
            raise _PermanentError(f"unreadable event: {type(exc).__name__}: {exc}") from None
        hours = self._record_time(claimed, event)
        follow = self._wake(claimed, event, hours)
        basis = self._basis(claimed, event, hours)
        if isinstance(basis, Completion):  # nothing to decide: recorded as such
            return replace(basis, follow=follow)
        rulebook = self._rulebook()
        writer = self._writeback(basis.tenant)
        decision = self._decide(basis, rulebook, writer)
        clock = self._track(basis, decision, rulebook)
        if clock is not None:
            decision = followed(decision, status_of(clock), response_of(clock), rulebook.tag_prefix)
        record, written = self._write(basis, decision, rulebook, writer)
        return Completion(claimed, record, written, clock, follow)

    def _complete(self, done: list[Completion]) -> list[Outcome]:
        """One transaction for them all; each alone when that fails, so that one event's
        trouble (a value the store refuses) fails that event only."""
        if not done:
            return []
        try:
            lost = {c.id for c in self.store.complete_all(done, self._clock())}
        except StoreError as exc:
            if len(done) == 1:
                # Retried with backoff like any other failure (the store may be down:
                # then this fails too, and the lease brings the event back).
                return [self._fail(done[0].claimed, f"cannot complete: {exc}", dead=False)]
            return [outcome for item in done for outcome in self._complete([item])]
        outcomes = []
        for item in done:
            claimed = item.claimed
            if claimed.id in lost:
                log.warning(
                    "event=%s lease lost; another worker owns it", loggable(claimed.event_id)
                )
                outcomes.append(Outcome(claimed.id, "lost"))
                continue
            EVENTS.labels(claimed.tenant, item.record.outcome).inc()
            latency = max(0.0, self._clock() - claimed.received_at)
            EVENT_LATENCY.labels(claimed.tenant).observe(latency)
            log_event(
                log,
                logging.INFO,
                tenant=claimed.tenant,
                vendor=claimed.vendor,
                ticket=claimed.ticket,
                event=claimed.event_id,
                kind=claimed.kind,
                outcome=item.record.outcome,
            )
            outcomes.append(Outcome(claimed.id, "done"))
        return outcomes

    def _basis(
        self, claimed: Claimed, event: TicketEvent, hours: LedgerChange | None
    ) -> _Basis | Completion:
        """The snapshot to decide and its clock; or, when there is nothing to decide,
        the event's completion saying why."""
        if event.kind in FOLLOW_UPS:
            return self._follow_up(claimed, event)
        if event.kind == "ticket.deleted":
            # No write to a deleted ticket (it would 404); its clock stops, no outcome.
            clock = claimed.clock
            gone = deleted(clock, event.occurred_at) if clock is not None else None
            note = "ticket deleted: " + ("SLA clock stopped, no outcome" if gone else "no clock")
            return Completion(
                claimed, AuditRecord("recorded", note=note + "; nothing written"), clock=gone
            )
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
                note += "; SLA clock " + ("stopped: solved" if clock.closed else "running")
            return Completion(claimed, AuditRecord("recorded", note=note), clock=clock)
        if claimed.superseded:
            # An older snapshot than one already decided: a replay, or the late echo of
            # our own write arriving after an agent's newer edit. Writing it would undo
            # the newer state.
            record = AuditRecord("superseded", note="a newer snapshot of this ticket is done")
            return Completion(claimed, record)
        tenant = self._tenant(event)
        if own_write(event, tenant.api_users):
            # Deciding it could only write back an older state than an agent's edit
            # that arrived in the same second (Zendesk stamps whole seconds).
            record = AuditRecord("echo", note="the webhook of tierdesk's own write")
            return Completion(claimed, record)
        if deleted_before(claimed.clock, event):
            note = "the ticket was deleted after this snapshot: nothing written"
            return Completion(claimed, AuditRecord("superseded", note=note))
        return _Basis(claimed, event, event.ticket, tenant, claimed.clock, claimed.normalized)

    def _decide(self, basis: _Basis, rulebook: Rulebook, writer: WriteBack) -> Decision:
        now = datetime.fromtimestamp(self._clock(), UTC)
        account_id = basis.event.requester_account
        ticket, found = basis.ticket, None
        if account_id and not ticket.requester:
            # Jira Cloud hid the reporter's email. Only then is the writer asked for its
            # directory: a runtime Protocol check walks the protocol's attributes on
            # every call (5 % of a drain's profile when it ran for every event).
            users = writer.user_directory() if isinstance(writer, HasUsers) else None
            ticket, found = self.requesters.resolve(basis.tenant.id, ticket, account_id, users)
        account, used_s = self._hours_used(ticket, rulebook)
        used = {account: used_s} if account and used_s is not None else None
        at_open = None
        previous = basis.previous
        if used and previous is not None and previous.opened_left_s is not None:
            at_open = {account: previous.opened_left_s}
        try:
            decision = decide(ticket, rulebook, now, hours_used=used, hours_left_at_open=at_open)
        except EntitlementError as exc:
            raise _PermanentError(f"undecidable: {exc}") from None
        if found is not None:  # Jira hid the reporter's email: how it was looked up
            decision = explained(decision, account_id or "", found)
        return decision

    def _track(self, basis: _Basis, decision: Decision, rulebook: Rulebook) -> SlaClock | None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        clock = track(basis.event, decision, basis.previous, now, basis.snapshot, rulebook)
        if clock is not None and basis.previous is None:
            clock = self._answered_before(basis.claimed, basis.tenant, clock, rulebook)
        return clock

    def _write(
        self, basis: _Basis, decision: Decision, rulebook: Rulebook, writer: WriteBack
    ) -> tuple[AuditRecord, WrittenState | None]:
        claimed, tenant = basis.claimed, basis.tenant
        desired = ticket_update(decision)
        state = canonical(desired)
        last = claimed.last_written(writer.name)
        written = None
        if claimed.kind not in FOLLOW_UPS and claimed.newer:
            # A burst: a newer full snapshot of this ticket is already queued. It is
            # decided here all the same (every event gets its decision in the audit),
            # but its write would be undone at once: the newer event's write carries it.
            result = WriteResult("coalesced", desired, "a newer event of this ticket is queued")
        elif last == state:
            # Nothing to change, which is also what stops our own write-back's webhook
            # from looping: it brings back the state we wrote.
            result = WriteResult("unchanged", desired, "same as last written: no call made")
        else:
            if writer.name != DryRun.name:
                self._link_now(claimed)
            try:
                result = writer.write(
                    tenant, basis.event, decision, json.loads(last) if last else None
                )
            except WriteBackError as exc:
                if exc.transient:
                    raise
                raise _PermanentError(f"write-back refused: {exc}") from None
            written = WrittenState(writer.name, state)
        record = AuditRecord(
            "decided",
            decision=json.dumps(decision.to_json(tenant.locale)),  # its one rendering
            written=json.dumps(result.to_json()),
            note=f"mappings {rulebook.version}",
        )
        return record, written

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

    def _record_time(self, claimed: Claimed, event: TicketEvent) -> LedgerChange | None:
        """The hours ledger: time logged, and which account a ticket belongs to. Before
        any decision, so that a worklog webhook (no ticket state) counts too. A snapshot
        older than one already done says nothing about the ticket's account now."""
        if self.ledger is None or event.kind in FOLLOW_UPS:
            return None  # our own follow-ups bring no new ticket state
        rulebook = self._rulebook()
        if rulebook.version != self._purchases_of:
            self.ledger.sync_purchases(rulebook)  # writes only what the mappings changed
            self._purchases_of = rulebook.version
        now = datetime.fromtimestamp(self._clock(), UTC)
        key = (claimed.tenant, claimed.ticket)
        try:
            change = record_time(
                self.ledger,
                event,
                rulebook,
                now,
                link=not claimed.superseded,
                known=self._links.get(key),
                defer=self._deferred.setdefault(claimed.id, []).append,
            )
        except EntitlementError as exc:  # LedgerError: a negative time, a naive instant
            raise _PermanentError(f"hours ledger: {exc}") from None
        if change is not None:
            self._totals.clear()  # a balance moved
        return change

    def _answered_before(
        self, claimed: Claimed, tenant: Tenant, clock: SlaClock, rulebook: Rulebook
    ) -> SlaClock:
        """A new clock, with the first response an agent gave before the ticket was first
        decided (its first decision dead-lettered and replayed, or delivered late): the
        comment was recorded then, and counts now."""
        if not claimed.commented:
            return clock
        for text in self.store.comments(claimed.tenant, claimed.ticket):
            comment = TicketEvent.from_json(text)
            if comment.occurred_at < from_us(clock.created_us):
                continue
            if counts_as_first_response(comment, clock, tenant.api_users) is None:
                return responded(clock, rulebook, comment.occurred_at)[0]
        return clock

    def _status_change(self, claimed: Claimed, event: TicketEvent) -> SlaClock | None:
        """The ticket's clock, stopped or restarted, when this event changes whether the
        ticket is solved; None when it does not."""
        if event.resolved is None:
            return None
        clock = claimed.clock
        return status_change(clock, event) if clock is not None else None

    def _hours_used(self, ticket: Ticket, rulebook: Rulebook) -> tuple[str, int | None]:
        """The ticket's pay-as-you-go account and the seconds it has used, from the
        ledger; ("", None) when there is no ledger or no such account."""
        if self.ledger is None:
            return "", None
        match = rulebook.find_account(ticket)
        if match is None or not hours_subscriptions(match.account, rulebook):
            return "", None
        account = match.account.id
        totals = self._totals.get(account)
        if totals is None:
            totals = self._totals[account] = self.ledger.totals(account)
        return account, totals.used_s

    def _tenant(self, event: TicketEvent) -> Tenant:
        tenant = self.settings.tenants.get(event.tenant)
        if tenant is None:
            raise _PermanentError(f"tenant {event.tenant!r} is no longer configured")
        return tenant

    def _follow_up(self, claimed: Claimed, event: TicketEvent) -> _Basis | Completion:
        """A comment (perhaps the first response) or a sweep's SLA change: decide the
        ticket again from its last full snapshot, with where its clock stands now."""
        clock = claimed.clock
        if clock is None:
            record = AuditRecord("recorded", note=f"{event.kind}: no SLA clock yet")
            return Completion(claimed, record)
        tenant = self._tenant(event)
        if event.kind in COMMENTS:
            why_not = counts_as_first_response(event, clock, tenant.api_users)
            if why_not is not None:
                record = AuditRecord("recorded", note=f"not the first response: {why_not}")
                return Completion(claimed, record)
            clock, _ = responded(clock, self._rulebook(), event.occurred_at)
        snapshot = TicketEvent.from_json(clock.snapshot)
        if snapshot.ticket is None:  # pragma: no cover - only full snapshots are kept
            raise _PermanentError("the SLA clock's snapshot holds no ticket")
        return _Basis(claimed, snapshot, snapshot.ticket, tenant, clock, clock.snapshot)

    def _rulebook(self) -> Rulebook:
        rulebook = self.mappings.rulebook
        if rulebook is None:
            raise RuntimeError("no valid mappings are loaded")  # transient: fix and reload
        return rulebook

    def _fail(self, claimed: Claimed, error: str, *, dead: bool) -> Outcome:
        try:
            self._link_now(claimed)  # its ticket's next event may be claimed at once
        except StoreError as exc:
            # Retried, so the link is written with it next time; after the last attempt,
            # a dead letter that says so (a replay writes it).
            error, dead = f"{error}; its ticket's hours-ledger link not written: {exc}", False
        now = self._clock()
        retry_at = None
        if not dead and claimed.attempts < self.settings.max_attempts:
            retry_at = now + min(2.0**claimed.attempts, MAX_BACKOFF_S)
        try:
            state = self.store.fail(claimed, error, now, retry_at)
        except LeaseLost:
            return Outcome(claimed.id, "lost")
        EVENTS.labels(claimed.tenant, "dead_letter" if state == "dead" else "retry").inc()
        log_event(
            log,
            logging.WARNING,
            tenant=claimed.tenant,
            vendor=claimed.vendor,
            ticket=claimed.ticket,
            event=claimed.event_id,
            outcome="dead_letter" if state == "dead" else "retry",
            attempts=claimed.attempts,
            error=error,
        )
        return Outcome(claimed.id, "dead" if state == "dead" else "retry")

    def run(self, stop: threading.Event, idle_s: float = 0.2) -> None:
        """Loop until ``stop`` is set; sleep ``idle_s`` when there is nothing to do."""
        while not stop.is_set():
            try:
                if not self.run_batch():
                    stop.wait(idle_s)
            except StoreError as exc:  # the store is down: wait and try again
                log.error("store unavailable: %s", exc)
                stop.wait(min(idle_s * 10, 5.0))
            except Exception:  # a bug must not stop the worker; the lease brings it back
                log.exception("worker %s: unexpected error; carrying on", self.name)
                stop.wait(min(idle_s * 10, 5.0))
