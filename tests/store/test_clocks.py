"""SLA clocks, the sweep's compare-and-set `advance`, and the leader lease through the
`Store` protocol, against every backend (tests/store/backends.py)."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from store import AuditRecord, Move, NewEvent, SlaClock, SqliteStore, Store
from tests.store.backends import Backend
from tests.store.test_inbox import LEASE, T0, claim, new_event

US = 1_000_000
C0 = int(T0) * US  # clocks' instants are integer microseconds


def sla(
    ticket: str = "T-1", *, tenant: str = "acme", created: int = 0, **changes: object
) -> SlaClock:
    clock = SlaClock(
        tenant=tenant,
        ticket=ticket,
        ticket_key=f"KEY-{ticket}",
        vendor="zendesk",
        account="acct-1",
        tier="premier",
        calendar="24x7",
        requester="req-1",
        created_us=C0 + created,
        at_risk_us=C0 + created + 45 * 60 * US,
        due_us=C0 + created + 60 * 60 * US,
        steps_us=(C0 + created + 45 * 60 * US, C0 + created + 60 * 60 * US + 1),
        levels=("at_risk", "breached"),
        stage="on_track",
        level=0,
        next_check_us=C0 + created + 45 * 60 * US,
        snapshot=f'{{"ticket": "{ticket}", "s": "é\\u0000"}}',
    )
    return replace(clock, **changes)  # type: ignore[arg-type]


def record(store: Store, clock: SlaClock, event_id: str | None = None, now: float = T0) -> None:
    """Decide one event of the clock's ticket, storing the clock with the completion."""
    event = new_event(clock.tenant, event_id or f"ev-{clock.ticket}", clock.ticket)
    assert store.put(event, now)
    claimed = claim(store, now=now)
    store.complete(claimed, AuditRecord("decided"), now, clock=clock)


def change_event(clock: SlaClock, stage: str) -> NewEvent:
    return new_event(clock.tenant, f"sla-{clock.ticket}-{stage}", clock.ticket, kind="sla.changed")


def move(clock: SlaClock, stage: str, level: int = 0, *, event: bool = True) -> Move:
    return Move(clock, stage, level, None, change_event(clock, stage) if event else None)


# -- sla_clock ----------------------------------------------------------------------


def test_a_clock_stored_with_a_completion_reads_back_equal(store: Store) -> None:
    clock = sla(
        responded_us=None,
        margin_us=-1,
        opened_left_s=3_600,
        steps_us=(C0, C0 + 1, 2**62),  # exact to the microsecond, far future included
        levels=("at_risk", "breached", "escalated"),
    )
    record(store, clock)
    assert store.sla_clock("acme", "T-1") == clock
    assert store.sla_clock("acme", "T-2") is None
    assert store.sla_clock("globex", "T-1") is None


def test_nullable_fields_and_empty_steps_read_back(store: Store) -> None:
    clock = sla(
        account=None,
        calendar=None,
        requester=None,
        steps_us=(),
        levels=(),
        stage="met",
        next_check_us=None,
        responded_us=C0 + 5,
        margin_us=10 * US,
        closed_us=C0 + 7,
    )
    record(store, clock)
    assert store.sla_clock("acme", "T-1") == clock


def test_a_later_completion_replaces_the_clock(store: Store) -> None:
    first = sla()
    record(store, first, "ev-1")
    redecided = replace(first, tier="select", due_us=first.due_us + US, stage="at_risk", level=1)
    record(store, redecided, "ev-2", now=T0 + 1)
    assert store.sla_clock("acme", "T-1") == redecided


# -- due_clocks ---------------------------------------------------------------------


def test_due_clocks_are_the_open_ones_due_by_now_soonest_first(store: Store) -> None:
    record(store, sla("late", next_check_us=C0 + 30))
    record(store, sla("soon", next_check_us=C0 + 10))
    record(store, sla("exact", next_check_us=C0 + 20))
    record(store, sla("future", next_check_us=C0 + 21))
    record(store, sla("done", next_check_us=None, stage="met"))
    now_us = C0 + 20  # "exact" changes stage at this very microsecond: it is due
    assert [c.ticket for c in store.due_clocks(now_us, 10)] == ["soon", "exact"]
    assert [c.ticket for c in store.due_clocks(now_us, 1)] == ["soon"]
    assert [c.ticket for c in store.due_clocks(C0 + 100, 10)] == ["soon", "exact", "future", "late"]
    assert store.due_clocks(C0 + 9, 10) == []


# -- advance ------------------------------------------------------------------------


def test_advance_moves_clocks_and_queues_their_events(store: Store) -> None:
    one, two = sla("T-1"), sla("T-2")
    record(store, one)
    record(store, two)
    moves = [move(one, "at_risk"), Move(two, "breached", 1, C0 + 99, None)]
    assert store.advance(moves, T0 + 5) == 2
    assert store.sla_clock("acme", "T-1") == replace(one, stage="at_risk", next_check_us=None)
    assert store.sla_clock("acme", "T-2") == replace(
        two, stage="breached", level=1, next_check_us=C0 + 99
    )
    queued = [e for e in store.events("pending") if e.kind == "sla.changed"]
    assert [(e.event_id, e.ticket, e.received_at) for e in queued] == [
        ("sla-T-1-at_risk", "T-1", T0 + 5)
    ]
    # The queued event is claimable like any other (the write-back of the change).
    assert claim(store, now=T0 + 5).event_id == "sla-T-1-at_risk"


def test_advance_queues_the_events_in_the_sweeps_order_as_given(
    backend: Backend, store: Store
) -> None:
    # The sweep hands its moves most urgent first, which is not the clocks' key order;
    # the workers take the events in that order. Each event is stored as given.
    clocks = {ticket: sla(ticket) for ticket in ("T-1", "T-2", "T-3")}
    for clock in clocks.values():
        record(store, clock)  # stored in key order
    # Escapes to keep as written, and a raw NUL, which `put` stores as it is too.
    odd = '{"event_id": "odd", "text": "é\\u0000\\ud800 \\"q\\" \x00"}'
    moves = [
        Move(
            clock,
            "at_risk",
            0,
            None,
            new_event(
                "acme",
                f"sla-{clock.ticket}",
                clock.ticket,
                kind="sla.changed",
                payload=b"\x00\xff",
                normalized=odd,
            ),
        )
        for clock in (clocks["T-3"], clocks["T-1"], clocks["T-2"])
    ]
    assert store.advance(moves, T0 + 5) == 3
    taken = store.claim_many("w", T0 + 5, LEASE, 10)
    assert [(c.event_id, c.kind, c.normalized) for c in taken] == [
        (f"sla-{ticket}", "sla.changed", odd) for ticket in ("T-3", "T-1", "T-2")
    ]
    assert backend.payload("acme", "sla-T-1") == b"\x00\xff"


def test_advance_of_nothing_is_zero(store: Store) -> None:
    assert store.advance([], T0) == 0
    assert store.events() == []


@pytest.mark.parametrize(
    "meanwhile",
    [
        {"due_us": C0 + 1},  # re-decided: a new due time
        {"responded_us": C0 + 2, "stage": "met", "next_check_us": None},  # answered
        {"stage": "at_risk"},  # another sweep moved it first
        {"level": 1},
    ],
    ids=["redecided", "responded", "moved", "escalated"],
)
def test_advance_skips_a_clock_that_changed_since_it_was_read(
    store: Store, meanwhile: dict[str, object]
) -> None:
    stale, fresh = sla("T-1"), sla("T-2")
    record(store, stale)
    record(store, fresh)
    changed = replace(stale, **meanwhile)  # type: ignore[arg-type]
    record(store, changed, "ev-again", now=T0 + 1)
    assert store.advance([move(stale, "breached", 1), move(fresh, "at_risk")], T0 + 2) == 1
    assert store.sla_clock("acme", "T-1") == changed
    assert store.sla_clock("acme", "T-2") == replace(fresh, stage="at_risk", next_check_us=None)
    queued = {e.event_id for e in store.events(limit=100) if e.kind == "sla.changed"}
    assert queued == {"sla-T-2-at_risk"}


def test_advance_keeps_to_the_tenant(store: Store) -> None:
    ours, theirs = sla("T-1"), sla("T-1", tenant="globex", due_us=C0 + 7)
    record(store, ours)
    record(store, theirs)
    assert store.advance([move(ours, "at_risk", event=False)], T0) == 1
    assert store.sla_clock("globex", "T-1") == theirs


def test_advance_twice_with_the_same_reading_applies_once(store: Store) -> None:
    clock = sla()
    record(store, clock)
    assert store.advance([move(clock, "at_risk")], T0) == 1
    assert store.advance([move(clock, "at_risk")], T0 + 1) == 0  # two sweepers, one reading


# -- waiting and clocks ---------------------------------------------------------------


def test_waiting_is_the_accounts_open_tickets_oldest_first(store: Store) -> None:
    record(store, sla("new", created=20))
    record(store, sla("old", created=10))
    record(store, sla("answered", created=5, responded_us=C0 + 6, stage="met"))  # still open
    record(store, sla("solved", created=4, responded_us=C0 + 6, stage="met", closed_us=C0 + 7))
    record(store, sla("other-acct", created=1, account="acct-2"))
    record(store, sla("no-acct", created=2, account=None))
    record(store, sla("other-tenant", tenant="globex", created=3))
    assert [c.ticket for c in store.waiting("acme", "acct-1")] == ["answered", "old", "new"]
    assert [c.ticket for c in store.waiting("globex", "acct-1")] == ["other-tenant"]
    assert store.waiting("acme", "acct-9") == []


def test_clocks_streams_those_created_in_the_half_open_range(store: Store) -> None:
    for created in (30, 0, 10, 20, 29):
        record(store, sla(f"T-{created}", created=created))
    seen = store.clocks(C0 + 10, C0 + 30)
    first = next(seen)
    assert first.ticket == "T-10"
    # The store stays usable while a stream is open (a report reads other things).
    record(store, sla("T-25", created=25), now=T0 + 1)
    assert store.sla_clock("acme", "T-10") == first
    rest = [c.ticket for c in seen]
    # A clock stored while the stream is open may or may not be in it; none other is.
    assert rest in (["T-20", "T-25", "T-29"], ["T-20", "T-29"])
    assert list(store.clocks(C0 + 31, C0 + 100)) == []


def test_clocks_may_be_abandoned_half_read(store: Store) -> None:
    for created in range(3):
        record(store, sla(f"T-{created}", created=created))
    seen = store.clocks(C0, C0 + 100)
    assert next(seen).ticket == "T-0"
    del seen  # dropped half-read (CPython finalises it here)
    assert [c.ticket for c in store.clocks(C0, C0 + 100)] == ["T-0", "T-1", "T-2"]
    store.ping()


# -- lead ---------------------------------------------------------------------------


def test_lead_is_one_owners_until_it_lapses(store: Store) -> None:
    assert store.lead("sweep", "w1", T0, LEASE)
    assert not store.lead("sweep", "w2", T0 + 1, LEASE)
    assert store.lead("sweep", "w1", T0 + 20, LEASE)  # renewed: until T0 + 50
    assert not store.lead("sweep", "w2", T0 + 49.999, LEASE)
    assert store.lead("sweep", "w2", T0 + 50, LEASE)  # lapsed at its end
    assert not store.lead("sweep", "w1", T0 + 51, LEASE)
    assert store.lead("other-role", "w1", T0 + 51, LEASE)  # roles are independent


def test_lead_is_shared_by_stores_on_one_database(backend: Backend) -> None:
    one, two = backend.open(), backend.open()
    assert one.lead("sweep", "w1", T0, LEASE)
    assert not two.lead("sweep", "w2", T0, LEASE)


def test_lead_raced_by_many_threads_goes_to_one(backend: Backend) -> None:
    stores = [backend.open() for _ in range(2)]
    start = threading.Barrier(8)

    def contend(n: int) -> bool:
        mine = stores[n % 2]
        try:
            start.wait()
            return mine.lead("sweep", f"w{n}", T0, LEASE)
        finally:
            mine.close()

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(contend, range(8)))
    assert won.count(True) == 1


# -- comments -------------------------------------------------------------------------


def test_comments_are_the_tickets_done_comment_events_oldest_snapshot_first(store: Store) -> None:
    def comment(
        event_id: str, occurred_at: float, ticket: str = "T-1", kind: str = "comment.created"
    ) -> NewEvent:
        made = new_event(event_id=event_id, ticket=ticket, kind=kind)
        return replace(made, occurred_at=occurred_at, normalized=f'{{"c":"{event_id}\u0000é"}}')

    for event in (
        comment("late", 20.0),
        comment("early", 10.0),
        comment("published", 15.0, kind="comment.updated"),  # a note made public
        comment("other-ticket", 5.0, ticket="T-2"),
        new_event(event_id="update", kind="ticket.updated"),
        comment("dead", 1.0),
    ):
        assert store.put(event, T0)
        claimed = claim(store)
        if claimed.event_id == "dead":
            store.fail(claimed, "boom", T0, None)
        else:
            store.complete(claimed, AuditRecord("recorded"), T0)
    assert store.put(comment("waiting", 0.0), T0)  # not processed yet
    assert store.comments("acme", "T-1") == [
        '{"c":"early\u0000é"}',
        '{"c":"published\u0000é"}',
        '{"c":"late\u0000é"}',
    ]
    assert store.comments("globex", "T-1") == []


def test_a_sqlite_file_from_before_status_us_gets_the_column(tmp_path: Path) -> None:
    """CREATE TABLE IF NOT EXISTS keeps an old table as it was: the store adds the
    column, and a clock written then reads back with it."""
    path = tmp_path / "old.sqlite3"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE sla DROP COLUMN status_us")
    db.commit()
    db.close()
    store = SqliteStore(path)
    record(store, sla("old", created=1, status_us=C0 + 3))
    found = store.sla_clock("acme", "old")
    assert found is not None and found.status_us == C0 + 3
    store.close()
