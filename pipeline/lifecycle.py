"""Between a decision and the store's SLA clock: what the worker records when it
decides a ticket, when an agent first answers, when the ticket is solved, opened again
or deleted, and when a sweep moves a clock on.

Pure functions over the store's `SlaClock` and the rules' `Milestones`; the worker and
the sweeper do the I/O.

Solved, opened again, deleted: an event's status counts only if it is not older than
what the clock was last told (``status_us``, the occurrence of the newest event that
said whether the ticket is solved). A replayed dead letter, or any late delivery,
carries the ticket as it was before, and must neither run again the clock of a ticket
solved since nor stop the clock of one opened again since. A solved clock stands still
where it stood at the solve: ``met``/``missed`` once answered, ``breached`` (with its
level) when solved past due unanswered, else ``solved`` (no outcome, as `tierdesk
report` counts it). A deleted ticket's clock is ``deleted``: closed, no outcome, never
written again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta

from entitlements.calendars import Calendar, from_us, to_us
from entitlements.decide import Decision
from entitlements.rulebook import Rulebook
from entitlements.sla import (
    BREACHED,
    MET,
    MISSED,
    FirstResponse,
    Milestones,
    Status,
    first_response,
    next_change,
    status_at,
)
from store import NewEvent, SlaClock
from webhooks.events import TicketEvent, is_api_user

# The kinds of the inbox events tierdesk queues itself: a sweep when a clock changes
# stage, the hours ledger when an account's balance flags change.
SLA_CHANGED = "sla.changed"
HOURS_CHANGED = "hours.changed"

# A comment this close to the ticket's creation is its description, not a reply (the
# vendors stamp both with the same second).
DESCRIPTION_WINDOW = timedelta(seconds=1)

# The stages of a stopped clock that `entitlements.sla` does not name: solved before
# its due time without a first response, and deleted (both: no outcome).
SOLVED = "solved"
DELETED = "deleted"
NOT_COVERED = "not_covered"  # the entitlement has no target: nothing to follow


def stale_status(clock: SlaClock | None, event: TicketEvent) -> bool:
    """True when ``event`` says whether the ticket is solved but is older than what
    ``clock`` was last told (a solve, or opening it again): a replay or a late delivery
    must not undo a newer status."""
    if clock is None or event.resolved is None:
        return False
    # A clock stored before status_us was kept knows at least when it was solved.
    told = clock.status_us if clock.status_us is not None else clock.closed_us
    return told is not None and to_us(event.occurred_at) < told


def status_told(clock: SlaClock | None, event: TicketEvent) -> int | None:
    """The clock's ``status_us`` once ``event`` is taken into account."""
    previous = clock.status_us if clock is not None else None
    if event.resolved is None or stale_status(clock, event):
        return previous
    return to_us(event.occurred_at)


def deleted_before(clock: SlaClock | None, event: TicketEvent) -> bool:
    """True when the ticket was deleted at or after ``event``: nothing to decide or
    write (the helpdesk would answer 404)."""
    return (
        clock is not None
        and clock.stage == DELETED
        and clock.closed_us is not None
        and to_us(event.occurred_at) <= clock.closed_us
    )


def deleted(clock: SlaClock, at: datetime) -> SlaClock:
    """The clock of a deleted ticket: stopped for good, with no outcome."""
    return replace(clock, stage=DELETED, next_check_us=None, closed_us=to_us(at))


def stopped_status(m: Milestones, closed_at: datetime, responded: datetime | None) -> Status:
    """Where a clock stands once its ticket is solved at ``closed_at``: met or missed
    when answered, breached when solved past due unanswered, else solved."""
    status = status_at(m, closed_at, responded)
    if status.stage in (MET, MISSED, BREACHED):
        return status
    return Status(SOLVED, status.level)


def follow_up(clock: SlaClock, kind: str, stamp: str, at: datetime) -> NewEvent:
    """The inbox event that has a ticket decided again from its last full snapshot. Its
    id names the ticket and ``stamp`` (what changed), so repeats are dropped."""
    event_id = f"{clock.ticket}:{stamp}"
    event = TicketEvent(
        tenant=clock.tenant,
        vendor=clock.vendor,
        event_id=event_id,
        kind=kind,
        ticket_id=clock.ticket,
        ticket_key=clock.ticket_key,
        occurred_at=at,
    )
    return NewEvent(
        tenant=clock.tenant,
        event_id=event_id,
        vendor=clock.vendor,
        kind=kind,
        ticket=clock.ticket,
        ticket_key=clock.ticket_key,
        payload=b"",
        normalized=event.to_json(),
        decidable=False,
        occurred_at=at.timestamp(),
    )


def milestones_of(clock: SlaClock) -> Milestones:
    return Milestones(
        started=from_us(clock.created_us),
        at_risk=from_us(clock.at_risk_us),
        due=from_us(clock.due_us),
        steps=tuple(from_us(s) for s in clock.steps_us),
        levels=clock.levels,
    )


def status_of(clock: SlaClock) -> Status:
    return Status(clock.stage, clock.level)


def response_of(clock: SlaClock) -> FirstResponse | None:
    if clock.responded_us is None:
        return None
    margin = timedelta(microseconds=clock.margin_us or 0)
    return FirstResponse(from_us(clock.responded_us), clock.stage == MET, margin)


def track(
    event: TicketEvent,
    decision: Decision,
    previous: SlaClock | None,
    now: datetime,
    snapshot: str,
    rulebook: Rulebook,
) -> SlaClock | None:
    """The ticket's clock after this decision. A re-decision (severity raised, another
    requester) replaces the milestones — always counted from the ticket's creation —
    and keeps a first response already recorded, measured against the new due time."""
    m = decision.milestones
    if m is None:  # not covered: no target to follow
        if previous is None:
            return None
        return replace(previous, stage=NOT_COVERED, next_check_us=None, snapshot=snapshot)
    responded = from_us(previous.responded_us) if previous and previous.responded_us else None
    margin_us = None
    if responded is not None:
        margin = first_response(calendar_of(decision, rulebook), m, responded).margin
        margin_us = margin // timedelta(microseconds=1)
    closed = bool(previous and previous.closed)
    if event.resolved is not None and not stale_status(previous, event):
        closed = event.resolved
    closed_us = _closed_at(previous, closed, event.occurred_at)
    if closed_us is not None:
        status = stopped_status(m, from_us(closed_us), responded)
    else:
        status = status_at(m, now, responded)
    upcoming = None if closed else next_change(m, status)
    ticket = event.ticket
    return SlaClock(
        tenant=event.tenant,
        ticket=event.ticket_id,
        ticket_key=event.ticket_key,
        vendor=event.vendor,
        account=decision.account,
        tier=decision.tier,
        calendar=decision.calendar,
        requester=(ticket.requester if ticket else None)
        or (previous.requester if previous else None),
        created_us=to_us(m.started),
        at_risk_us=to_us(m.at_risk),
        due_us=to_us(m.due),
        steps_us=tuple(to_us(s) for s in m.steps),
        levels=m.levels,
        stage=status.stage,
        level=status.level,
        next_check_us=to_us(upcoming) if upcoming else None,
        snapshot=snapshot,
        responded_us=previous.responded_us if previous else None,
        margin_us=margin_us,
        # Kept from the first decision: later ones judge entitlement by it.
        opened_left_s=previous.opened_left_s
        if previous
        else (decision.hours.balance_s if decision.hours else None),
        closed_us=closed_us,
        status_us=status_told(previous, event),
    )


def _closed_at(previous: SlaClock | None, closed: bool, at: datetime) -> int | None:
    """When the ticket was solved: kept while it stays so, this event's time if it just
    was, None while open."""
    if not closed:
        return None
    if previous is not None and previous.closed_us is not None:
        return previous.closed_us
    return to_us(at)


def status_change(clock: SlaClock, event: TicketEvent) -> SlaClock | None:
    """The clock once ``event`` (which says whether the ticket is solved, and carries
    no snapshot to decide) is taken into account; None when it changes nothing (no
    status, or an older one than the clock was last told)."""
    if event.resolved is None or stale_status(clock, event):
        return None
    told = replace(clock, status_us=to_us(event.occurred_at))
    if clock.closed == event.resolved:
        return told  # nothing stops or starts; only when it was last said moves on
    return resolved(told, event.resolved, event.occurred_at)


def resolved(clock: SlaClock, closed: bool, now: datetime) -> SlaClock:
    """The clock of a ticket solved (it stops: no sweep looks at it again) or opened
    again: due for a look at once, so that the next sweep moves it to where it stands
    and queues the write, as for any other change."""
    if closed:
        stage, level = clock.stage, clock.level
        if stage not in (NOT_COVERED, DELETED):  # no target, or no ticket: nothing to stop
            responded_at = from_us(clock.responded_us) if clock.responded_us else None
            status = stopped_status(milestones_of(clock), now, responded_at)
            stage, level = status.stage, status.level
        return replace(clock, stage=stage, level=level, next_check_us=None, closed_us=to_us(now))
    waiting = clock.responded_us is None
    return replace(clock, next_check_us=to_us(now) if waiting else None, closed_us=None)


def calendar_of(decision: Decision, rulebook: Rulebook) -> Calendar:
    account = rulebook.account(decision.account) if decision.account else None
    return rulebook.calendar(decision.calendar or "24x7", account)


def counts_as_first_response(
    event: TicketEvent, clock: SlaClock, api_users: Collection[str]
) -> str | None:
    """Why this comment is not the first response (None: it is). Only a public reply by
    an agent counts: not the requester's comments, not internal notes, not our notes."""
    comment = event.comment
    if comment is None:
        return "no comment in the event"
    if clock.responded_us is not None:
        return "the first response is already recorded"
    if not comment.public:
        return "an internal note"
    if event.occurred_at <= from_us(clock.created_us) + DESCRIPTION_WINDOW:
        # Zendesk sends the ticket's description as its first comment, by whoever
        # opened it (an agent, for a ticket opened on a customer's behalf).
        return "the ticket's description"
    author = (comment.author or event.actor or "").casefold()
    if is_api_user(author, api_users):
        return "tierdesk's own note"
    if comment.by_agent is False:
        return "a comment by a customer"
    if clock.requester and author == clock.requester.casefold():
        return "a comment by the requester"
    if comment.by_agent is None and not author:
        return "a comment whose author is unknown"
    return None


def responded(clock: SlaClock, rulebook: Rulebook, at: datetime) -> tuple[SlaClock, FirstResponse]:
    """The clock once answered at ``at``: met or missed, by business time measured on
    the calendar the ticket was decided with."""
    m = milestones_of(clock)
    account = rulebook.account(clock.account) if clock.account else None
    calendar = rulebook.calendar(clock.calendar or "24x7", account)
    response = first_response(calendar, m, at)
    status = status_at(m, at, at)
    margin_us = response.margin // timedelta(microseconds=1)
    moved = replace(
        clock,
        stage=MET if response.met else MISSED,
        level=status.level,
        next_check_us=None,
        responded_us=to_us(at),
        margin_us=margin_us,
    )
    return moved, response
