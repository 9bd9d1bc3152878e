"""The store interface, small on purpose: a second backend (PostgreSQL) implements
these methods and passes the same tests.

Times are epoch seconds (floats) passed in by the caller, so that tests and the
worker control the clock.

The inbox life cycle of one event::

    put ──▶ pending ──claim──▶ leased ──complete──▶ done  (+ one audit row, atomically)
               ▲                  │
               └──fail(retry_at)──┤ lease expired: claimable again
                                  └──fail(None)──▶ dead  (+ an audit row) ──replay──▶ pending

Events of one ticket are claimed in order of arrival and never two at once. A worker
claims several events at once (of as many tickets), each with what deciding it needs of
its ticket (`Claimed.clock`, ``written``, ``superseded``, ``newer``), and completes them
together: one write transaction for the lot, each event's outcome its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class StoreError(Exception):
    """The store could not do what was asked (unreachable, locked too long, corrupt)."""


class LeaseLost(StoreError):  # noqa: N818  it names what happened; callers catch it as such
    """The lease ran out and another worker took the event: this result is discarded."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    tenant: str
    event_id: str  # the vendor's delivery id: the dedupe key within a tenant
    vendor: str
    kind: str  # normalised: ticket.created, ticket.updated, comment.created, …
    ticket: str  # the ticket's stable id ("" when the event names none)
    ticket_key: str  # what people call it (Jira key, Zendesk id)
    payload: bytes  # the body exactly as received
    normalized: str  # the TicketEvent as JSON
    decidable: bool = True  # carries the whole ticket state (a newer one supersedes it)
    # When the snapshot was taken (the trigger body's updated_at, Jira's timestamp), in
    # epoch seconds. Snapshots are ordered by it, not by arrival: the echo of our own
    # write can arrive after an agent's later edit while carrying the older state.
    occurred_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    tenant: str
    event_id: str
    vendor: str
    kind: str
    ticket: str
    normalized: str
    received_at: float
    attempts: int  # including this one
    owner: str
    # Its ticket as the claim found it (nothing of a ticket changes while one of its
    # events is leased, but for a sweep moving its clock on, which `complete` overwrites
    # as it always did):
    clock: SlaClock | None = None  # the ticket's SLA clock
    written: tuple[tuple[str, str], ...] = ()  # (writer, state): what each last wrote
    superseded: bool = False  # `Store.superseded`: a newer snapshot is already done
    newer: bool = False  # `Store.newer_decidable`: a newer snapshot is queued
    commented: bool = False  # `Store.comments` has something to say

    def last_written(self, writer: str) -> str | None:
        """What ``writer`` last wrote on the ticket (JSON), or None."""
        return next((state for name, state in self.written if name == writer), None)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    outcome: str  # decided, recorded, dead_letter, …
    decision: str | None = None  # the Decision as JSON
    written: str | None = None  # what was (or would have been) written, as JSON
    note: str = ""


@dataclass(frozen=True, slots=True)
class WrittenState:
    """What a writer has put on a ticket: the next decision compares with it, so an
    unchanged one (our own write-back's webhook among them) costs no call."""

    writer: str  # dry_run, zendesk, jsm: a dry run never stands for a real write
    state: str  # JSON


@dataclass(frozen=True, slots=True)
class SlaClock:
    """One ticket's first-response clock (entitlements/sla.py), kept so that sweeps and
    reports need neither the helpdesk nor a calendar. Instants are integer microseconds
    since the epoch: "one microsecond past due" must compare exactly."""

    tenant: str
    ticket: str
    ticket_key: str
    vendor: str
    account: str | None
    tier: str
    calendar: str | None
    requester: str | None
    created_us: int
    at_risk_us: int
    due_us: int
    steps_us: tuple[int, ...]
    levels: tuple[str, ...]
    stage: str  # on_track, at_risk, breached, met, missed
    level: int
    next_check_us: int | None  # when the stage changes next; None: nothing more will
    snapshot: str  # the TicketEvent (JSON) it was decided from: sweeps re-decide from it
    responded_us: int | None = None
    margin_us: int | None = None  # business time to spare (met) or missed by
    # Pay-as-you-go: the seconds the account had left when the ticket was first decided
    # (its entitlement is judged on that: RULES.md §3).
    opened_left_s: int | None = None
    closed_us: int | None = None  # when it was solved (None while open)
    # When the open/solved status it holds was last said: the occurrence of the newest
    # event that said so (None: none has). An older event's status never undoes it.
    status_us: int | None = None

    @property
    def closed(self) -> bool:
        """Solved or closed: the clock stands still, no sweep looks at it."""
        return self.closed_us is not None


@dataclass(frozen=True, slots=True)
class Completion:
    """One processed event, as `Store.complete_all` records it: done, its audit row,
    and what it changed on its ticket."""

    claimed: Claimed
    record: AuditRecord
    written: WrittenState | None = None
    clock: SlaClock | None = None
    follow: tuple[NewEvent, ...] = ()  # events it gives rise to, queued with it


@dataclass(frozen=True, slots=True)
class Move:
    """A sweep's step of one clock: from ``clock`` to a new stage, level and next check."""

    clock: SlaClock
    stage: str
    level: int
    next_check_us: int | None
    event: NewEvent | None  # None: only the next check moves, nothing to write


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    event: int
    tenant: str
    ticket: str
    ticket_key: str
    event_id: str
    kind: str
    at: float
    outcome: str
    decision: str | None
    written: str | None
    note: str


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    tenant: str
    event_id: str
    vendor: str
    kind: str
    ticket: str
    received_at: float
    state: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Gauges:
    """What the store holds right now, for ``GET /metrics``: open events by state,
    the oldest one's receipt, dead letters, and open SLA clocks by stage."""

    pending: int
    leased: int
    dead: int
    oldest_open_received_at: float | None  # epoch seconds; None when nothing is open
    clocks: dict[str, int]  # open (unsolved) clocks by stage: on_track, at_risk, breached…


# The same SQL on both backends; each read uses a partial index (inbox_open, inbox_dead,
# sla_stage_open), so a scrape never scans done events or solved tickets.
GAUGES_OPEN_SQL = (
    "SELECT state, count(*), min(received_at) FROM inbox"
    " WHERE state IN ('pending', 'leased') GROUP BY state"
)
GAUGES_DEAD_SQL = "SELECT count(*) FROM inbox WHERE state = 'dead'"
GAUGES_CLOCKS_SQL = "SELECT stage, count(*) FROM sla WHERE closed_us IS NULL GROUP BY stage"


def gauges_of(open_rows: list[Any], dead: int, clock_rows: list[Any]) -> Gauges:
    by_state = {state: (int(n), oldest) for state, n, oldest in open_rows}
    oldest = [float(at) for _, at in by_state.values() if at is not None]
    return Gauges(
        pending=by_state.get("pending", (0, None))[0],
        leased=by_state.get("leased", (0, None))[0],
        dead=int(dead),
        oldest_open_received_at=min(oldest) if oldest else None,
        clocks={stage: int(n) for stage, n in clock_rows},
    )


class Store(Protocol):
    def put(self, event: NewEvent, now: float, *, hold_s: float = 0.0) -> bool:
        """Store durably; False when (tenant, event_id) is already there. The event is
        not claimable for ``hold_s`` seconds (bursts of one ticket coalesce)."""
        ...

    def newer_decidable(self, claimed: Claimed) -> bool:
        """True when a decidable event of the same ticket with a newer (or equally new,
        later arrived) snapshot is waiting: this one's write would only be overwritten."""
        ...

    def claim(self, owner: str, now: float, lease_s: float) -> Claimed | None:
        """Lease the next event whose ticket has nothing earlier open, or None."""
        ...

    def claim_many(self, owner: str, now: float, lease_s: float, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` such events (each of another ticket), oldest first, each
        with its ticket's clock, written states and snapshot checks: one transaction."""
        ...

    def complete_all(self, done: Sequence[Completion], now: float) -> list[Claimed]:
        """`complete` for each, in one transaction; returns the events whose lease was
        lost (nothing of theirs is written; the others are)."""
        ...

    def release(self, claimed: Sequence[Claimed], now: float) -> None:
        """Hand leased events back, claimable at once, the attempt uncounted (a worker
        stopping, or a batch left before its leases could run out)."""
        ...

    def complete(
        self,
        claimed: Claimed,
        record: AuditRecord,
        now: float,
        written: WrittenState | None = None,
        clock: SlaClock | None = None,
        follow: tuple[NewEvent, ...] = (),
    ) -> None:
        """Mark done, write the audit row and (when given) what is now written on the
        ticket, its SLA clock and the events it gives rise to, in one transaction;
        `LeaseLost` if another worker holds the event now."""
        ...

    def sla_clock(self, tenant: str, ticket: str) -> SlaClock | None: ...

    def due_clocks(self, now_us: int, limit: int) -> list[SlaClock]:
        """Open clocks whose stage changes at or before ``now_us``, soonest first."""
        ...

    def advance(self, moves: list[Move], now: float) -> int:
        """Apply each move and queue its event (the write-back of the change), all in
        one transaction; a move whose clock changed meanwhile is skipped. Returns how
        many were applied."""
        ...

    def comments(self, tenant: str, ticket: str) -> list[str]:
        """The ticket's comment events already processed (TicketEvent JSON), oldest
        first, new and edited ones (a JSM internal note made public is a reply from
        then on): a first response may have been given before the ticket was decided."""
        ...

    def waiting(self, tenant: str, account: str) -> list[SlaClock]:
        """The account's open (not solved) tickets: those an hours balance's new flags
        must reach."""
        ...

    def clocks(self, since_us: int, until_us: int) -> Iterator[SlaClock]:
        """Every clock of a ticket created in ``[since_us, until_us)``, streamed."""
        ...

    def lead(self, role: str, owner: str, now: float, ttl_s: float) -> bool:
        """Hold (or renew) the lease of ``role`` for ``ttl_s``: True for one owner at a
        time, so that one of several workers sweeps."""
        ...

    def last_written(self, tenant: str, ticket: str, writer: str) -> str | None:
        """What ``writer`` last wrote on the ticket (JSON), or None."""
        ...

    def superseded(self, claimed: Claimed) -> bool:
        """True when an event of the same ticket with a newer snapshot (or an equally new
        one that arrived later) is already done: this one is stale."""
        ...

    def fail(self, claimed: Claimed, error: str, now: float, retry_at: float | None) -> str:
        """Release for another attempt at ``retry_at``, or (None) make it a dead letter.
        Returns the new state."""
        ...

    def replay(
        self,
        now: float,
        *,
        dead: bool = False,
        event: str | None = None,
        since: float | None = None,
    ) -> int:
        """Queue events again: dead letters, one event (row id or tenant:event_id), or
        everything received since a time. Returns how many."""
        ...

    def events(self, state: str | None = None, limit: int = 100) -> list[EventRow]: ...

    def history(self, ticket: str, tenant: str | None = None) -> list[AuditRow]: ...

    def counts(self) -> dict[str, int]: ...

    def gauges(self) -> Gauges:
        """Three indexed reads (open events, dead letters, open clocks by stage): cheap
        enough for every scrape, whatever the number of done events."""
        ...

    def ping(self) -> None:
        """Raise `StoreError` unless the store answers."""
        ...

    def close(self) -> None: ...
