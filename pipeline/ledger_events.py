"""Time logged on tickets → the hours ledger (RULES.md §3).

`record_time` is what the worker calls for every event it claims, before deciding:

- an event that carries the ticket (a JSM issue event, the Zendesk trigger body)
  tells the ledger which account the ticket belongs to, found as `decide()` finds it
  (`Rulebook.find_account`). Worklog webhooks name only the ticket, so this is how
  their time reaches an account; a Zendesk event webhook (``partial``: no requester)
  only ever adds an account it found by organization, never takes one away;
- a worklog (``worklog.created/updated``) records a version of that worklog, and
  ``worklog.deleted`` a tombstone. Jira's older ``jira:worklog_updated`` form names
  the worklog but not its time (``seconds`` None; its changelog's ``timespent`` is the
  whole issue's): it records nothing, because zeroing the entry would drop time that
  was logged, and the ``worklog_updated`` event Jira sends with it carries the time;
- a Zendesk ticket's "Total time spent (sec)" arrives as the worklog ``zendesk-total``
  (`entitlements.ledger.ZENDESK_TOTAL`): the newest total is the ticket's whole use.

Versions are ordered by the event's ``occurred_at`` (Jira's webhook timestamp, the
Zendesk trigger's ``updated_at``), then arrival; replays change nothing.

A snapshot that names the account the ledger already has for the ticket writes nothing
(most events: checked with one read). The inbox orders a ticket's snapshots: the worker
passes ``link=False`` for one older than a snapshot already done (``superseded``), so a
late snapshot cannot take the ticket back to an account it has left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from entitlements.calendars import zone
from entitlements.hours import HoursBalance
from entitlements.ledger import hours_subscriptions, low_fraction
from entitlements.rulebook import Rulebook
from store.ledger import Ledger
from store.ledger_base import Linked, TicketLink
from webhooks.events import TicketEvent


@dataclass(frozen=True, slots=True)
class AccountChange:
    """An hours account whose balance this event moved."""

    account: str
    used_s: int  # seconds of use added by this event (negative: given back)
    before: HoursBalance
    after: HoursBalance

    @property
    def status_changed(self) -> bool:
        """Low or exhausted came or went: the account's open tickets and organization
        need the new flags written."""
        return self.before.status != self.after.status


@dataclass(frozen=True, slots=True)
class LedgerChange:
    """What an event changed in the ledger (`record_time` returns None when nothing)."""

    tenant: str
    ticket: str
    account: str | None  # the ticket's account as the ledger knows it now
    accounts: tuple[AccountChange, ...]  # hours accounts whose balance moved
    note: str  # one line for the audit trail

    @property
    def flags_changed(self) -> tuple[str, ...]:
        return tuple(c.account for c in self.accounts if c.status_changed)


def record_time(
    ledger: Ledger,
    event: TicketEvent,
    rulebook: Rulebook,
    now: datetime,
    *,
    link: bool = True,
    known: Linked | None = None,
    defer: Callable[[TicketLink], None] | None = None,
) -> LedgerChange | None:
    """Record what ``event`` says about time logged and, unless not ``link``, about its
    ticket's account; None when that changed no one's use of hours (most events).
    ``known``: the ticket as the ledger has it, when the caller read it already
    (`Ledger.links_of`, for a batch); else it is read here. ``defer``: where a link that
    moves no time goes (nothing is logged on the ticket, nor in this event), for the
    caller to write with others (`Ledger.link_all`) before anything reads it."""
    if not event.ticket_id:
        return None
    moved: defaultdict[str | None, int] = defaultdict(int)  # account → seconds of use
    notes = _link(ledger, event, rulebook, moved, known, defer) if link else []
    notes += _worklog(ledger, event, moved)
    if not any(moved.values()):
        return None
    changes = [
        _account_change(ledger, rulebook, account, used_s, now)
        for account, used_s in sorted(moved.items(), key=lambda item: item[0] or "")
        if account is not None and used_s
    ]
    accounts = tuple(change for change in changes if change is not None)
    notes += [f"{c.account}: {_hours(c.after.balance_s)} left ({c.after.status})" for c in accounts]
    return LedgerChange(
        tenant=event.tenant,
        ticket=event.ticket_id,
        account=ledger.account_of(event.tenant, event.ticket_id),
        accounts=accounts,
        note="; ".join(notes),
    )


def _link(
    ledger: Ledger,
    event: TicketEvent,
    rulebook: Rulebook,
    moved: defaultdict[str | None, int],
    known: Linked | None,
    defer: Callable[[TicketLink], None] | None,
) -> list[str]:
    """The ticket's account from its snapshot; a partial one (no requester) may name an
    account it found by organization, but cannot say the ticket has none."""
    if event.ticket is None:
        return []
    match = rulebook.find_account(event.ticket)
    if match is None and event.partial:
        return []
    account = match.account.id if match else None
    current = known.account if known else ledger.account_of(event.tenant, event.ticket_id)
    if current == account:
        return []  # the account it has (or none, as before): nothing to write
    if defer is not None and known is not None and not known.logged and event.worklog is None:
        # A new ticket, mostly: no time to move, so no transaction of its own.
        defer(TicketLink(event.tenant, event.ticket_id, account, event.occurred_at))
        return []
    move = ledger.link_ticket(event.tenant, event.ticket_id, account, event.occurred_at)
    if move is None or not move.seconds:
        return []
    moved[move.source] -= move.seconds
    moved[move.target] += move.seconds
    source, target = move.source or "no known account", move.target or "no known account"
    return [f"{_hours(move.seconds)} logged on the ticket moves from {source} to {target}"]


def _worklog(ledger: Ledger, event: TicketEvent, moved: defaultdict[str | None, int]) -> list[str]:
    worklog = event.worklog
    if worklog is None:
        return []
    deleted = event.kind == "worklog.deleted"
    if worklog.seconds is None and not deleted:
        return []  # Jira's older jira:worklog_updated: the time is not in it (see above)
    delta = ledger.record_worklog(
        event.tenant,
        event.ticket_id,
        worklog.id,
        worklog.seconds or 0,
        event.occurred_at,
        deleted=deleted,
    )
    if not delta:
        return []  # a replay, an older version, or an edit that kept the time
    owner = ledger.account_of(event.tenant, event.ticket_id)
    moved[owner] += delta
    now_logged = "deleted" if deleted else f"now {_hours(worklog.seconds or 0)}"
    return [f"worklog {worklog.id} {now_logged}: {_signed(delta)} ({owner or 'no known account'})"]


def _account_change(
    ledger: Ledger, rulebook: Rulebook, account_id: str, used_s: int, now: datetime
) -> AccountChange | None:
    account = rulebook.account(account_id)
    if account is None or not hours_subscriptions(account, rulebook):
        return None  # time on a ticket of an account that buys no hours: kept, not billed
    today = now.astimezone(zone(account.timezone)).date()  # bundles bought by today, as decide()
    after = ledger.balance(account_id, low_fraction(account, rulebook), today)
    before = HoursBalance(
        after.purchased_s, after.used_s - used_s, after.last_bundle_s, after.low_fraction
    )
    return AccountChange(account_id, used_s, before, after)


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.2f} h"


def _signed(seconds: int) -> str:
    return f"{'+' if seconds > 0 else '-'}{_hours(abs(seconds))} used"
