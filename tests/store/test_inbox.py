"""The inbox and the audit trail through the `Store` protocol, run against every backend.

Each backend is one factory in tests/store/backends.py `BACKENDS` (SQLite, PostgreSQL):
it makes a fresh database for one test and opens as many independent `Store`s on it as
the test asks for; tests/store/conftest.py gives the `backend` and `store` fixtures.
Tests that are about SQLite itself (PRAGMAs, another process, a missing directory,
`open_store`) are at the end and use the file directly; PostgreSQL's own are in
test_postgres.py.

Every time is an explicit float (`T0 + offset`), so leases expire because the test says
so, never because it slept.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from store import (
    AuditRecord,
    Claimed,
    Completion,
    EventRow,
    LeaseLost,
    NewEvent,
    SlaClock,
    SqliteStore,
    Store,
    StoreError,
    WrittenState,
    open_store,
)
from tests.store.backends import Backend

T0 = 1_700_000_000.0  # any epoch will do; every `now` below is an offset from it
LEASE = 30.0

# -- helpers ------------------------------------------------------------------------


def new_event(
    tenant: str = "acme",
    event_id: str = "ev-1",
    ticket: str = "T-1",
    *,
    kind: str = "ticket.updated",
    ticket_key: str | None = None,
    payload: bytes | None = None,
    normalized: str | None = None,
) -> NewEvent:
    return NewEvent(
        tenant=tenant,
        event_id=event_id,
        vendor="zendesk",
        kind=kind,
        ticket=ticket,
        ticket_key=f"KEY-{ticket}" if ticket_key is None else ticket_key,
        payload=f'{{"id": "{event_id}"}}'.encode() if payload is None else payload,
        normalized=f'{{"event_id": "{event_id}"}}' if normalized is None else normalized,
    )


def put_all(store: Store, *events: NewEvent, now: float = T0) -> None:
    for event in events:
        assert store.put(event, now)


def claim(store: Store, owner: str = "w1", now: float = T0, lease_s: float = LEASE) -> Claimed:
    """A claim the test expects to succeed."""
    claimed = store.claim(owner, now, lease_s)
    assert claimed is not None, f"{owner} found nothing to claim at {now}"
    return claimed


def complete(store: Store, claimed: Claimed, now: float = T0, outcome: str = "decided") -> None:
    store.complete(claimed, AuditRecord(outcome, note=f"by {claimed.owner}"), now)


def row(store: Store, event_id: str, tenant: str = "acme") -> EventRow:
    found = [e for e in store.events(limit=10_000) if (e.tenant, e.event_id) == (tenant, event_id)]
    assert len(found) == 1, f"{tenant}:{event_id} is in the inbox {len(found)} times"
    return found[0]


def replay_selector(by: str, claimed: Claimed) -> dict[str, Any]:
    """The replay() keywords that pick `claimed` out in the way `by` names."""
    choices: dict[str, dict[str, Any]] = {
        "dead": {"dead": True},
        "row id": {"event": str(claimed.id)},
        "tenant:event_id": {"event": f"{claimed.tenant}:{claimed.event_id}"},
        "since": {"since": claimed.received_at},
    }
    return choices[by]


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    # A backend may or may not report states with no events; neither is wrong.
    return {state: n for state, n in counts.items() if n}


# -- put ----------------------------------------------------------------------------


def test_put_is_true_once_per_tenant_and_event_id(backend: Backend, store: Store) -> None:
    assert store.put(new_event("acme", "ev-1", payload=b"first"), T0) is True
    # Vendors redeliver; a redelivery is the same event even if its bytes differ,
    # and the first body is the one kept.
    assert store.put(new_event("acme", "ev-1", payload=b"second"), T0 + 1) is False
    assert backend.payload("acme", "ev-1") == b"first"
    # Delivery ids are only unique within one helpdesk: another tenant's ev-1 is new.
    assert store.put(new_event("globex", "ev-1"), T0 + 2) is True
    assert nonzero(store.counts()) == {"pending": 2}


ROUND_TRIP = [
    pytest.param(b'{"id": 1}', '{"id": 1}', id="ascii"),
    pytest.param('{"s": "é ß 日本 🙂"}'.encode(), '{"s":"é ß 日本 🙂"}', id="non-ascii"),
    pytest.param(b"\x00\xff\xfe\x80 not utf-8", "nul\x00inside\x00", id="nul-bytes"),
    pytest.param(b"", "", id="empty"),
    pytest.param(b"\r\n\t\n", "line\r\nbreaks\u2028\u2029", id="line-breaks"),
]


@pytest.mark.parametrize(("payload", "normalized"), ROUND_TRIP)
def test_payload_and_normalized_round_trip_exactly(
    backend: Backend, store: Store, payload: bytes, normalized: str
) -> None:
    # Signatures are checked on the exact body, and replays re-run from `normalized`:
    # neither may be re-encoded, trimmed or cut at a NUL.
    event = new_event("ténant-ü", "ëv-🙂", "tïcket", payload=payload, normalized=normalized)
    put_all(store, event, now=T0 + 0.25)
    claimed = claim(store, now=T0 + 1)
    assert (claimed.tenant, claimed.event_id, claimed.ticket) == ("ténant-ü", "ëv-🙂", "tïcket")
    assert (claimed.vendor, claimed.kind) == ("zendesk", "ticket.updated")
    assert claimed.normalized == normalized
    assert claimed.received_at == T0 + 0.25
    assert backend.payload("ténant-ü", "ëv-🙂") == payload


def test_claimed_times_are_floats(store: Store) -> None:
    # The dataclass says float; JSON, repr and isinstance checks downstream rely on it.
    put_all(store, new_event(), now=T0)
    assert type(store.events()[0].received_at) is float
    assert type(claim(store, now=T0).received_at) is float


def test_put_of_unencodable_text_is_stored_or_a_store_error(store: Store) -> None:
    # The receiver only catches StoreError (to answer 503); anything else is a 500.
    event = new_event(normalized='{"comment":"\ud800"}')
    try:
        stored = store.put(event, T0)
    except StoreError:
        return
    assert stored
    assert claim(store, now=T0).normalized == event.normalized


def test_put_is_visible_to_a_new_store_on_the_same_database(backend: Backend, store: Store) -> None:
    put_all(store, new_event("acme", "ev-1"))
    # A store opened afterwards (a restarted receiver, another worker) sees it.
    other = backend.open()
    assert claim(other, "w2", T0).event_id == "ev-1"


# -- claim --------------------------------------------------------------------------


def test_claim_of_an_empty_inbox_is_none(store: Store) -> None:
    assert store.claim("w1", T0, LEASE) is None


def test_claim_hands_out_events_in_arrival_order(store: Store) -> None:
    # Different tickets, so that the order seen is arrival order and not ticket order;
    # received_at runs backwards to show the order is arrival, not the caller's clock.
    put_all(store, new_event(event_id="a", ticket="T-1"), now=T0 + 2)
    put_all(store, new_event(event_id="b", ticket="T-2"), now=T0 + 1)
    put_all(store, new_event(event_id="c", ticket=""), now=T0)
    claims = [claim(store, f"w{i}", T0 + 10) for i in range(3)]
    assert [c.event_id for c in claims] == ["a", "b", "c"]
    assert [(c.attempts, c.owner) for c in claims] == [(1, "w0"), (1, "w1"), (1, "w2")]
    assert [c.id for c in claims] == sorted(c.id for c in claims)
    assert store.claim("w3", T0 + 10, LEASE) is None
    assert nonzero(store.counts()) == {"leased": 3}


@pytest.mark.parametrize(
    ("later", "reclaimed"),
    [
        (LEASE - 0.001, False),  # just before the lease ends: still w1's
        (LEASE, True),  # at the end: a worker that died holds nothing any more
        (LEASE * 10, True),
    ],
)
def test_a_lease_keeps_others_off_until_it_ends(
    store: Store, later: float, reclaimed: bool
) -> None:
    put_all(store, new_event())
    first = claim(store, "w1", T0)
    again = store.claim("w2", T0 + later, LEASE)
    if not reclaimed:
        assert again is None
        return
    assert again is not None
    assert (again.id, again.attempts, again.owner) == (first.id, 2, "w2")
    assert row(store, "ev-1").state == "leased"


# -- per-ticket order ---------------------------------------------------------------


def test_one_ticket_is_claimed_in_order_and_never_twice_at_once(store: Store) -> None:
    put_all(
        store,
        new_event(event_id="t1-a", ticket="T-1"),
        new_event(event_id="t1-b", ticket="T-1"),
        new_event(event_id="t2-a", ticket="T-2"),
    )
    first = claim(store, "w1")
    assert first.event_id == "t1-a"
    # t1-b is next in arrival but its ticket is busy: w2 gets the other ticket.
    assert claim(store, "w2").event_id == "t2-a"
    assert store.claim("w3", T0, LEASE) is None
    complete(store, first)
    assert claim(store, "w3").event_id == "t1-b"


def test_an_expired_lease_is_retaken_before_later_events_of_its_ticket(store: Store) -> None:
    put_all(store, new_event(event_id="a"), new_event(event_id="b"))
    claim(store, "w1", T0)
    retaken = claim(store, "w2", T0 + LEASE)
    assert (retaken.event_id, retaken.attempts) == ("a", 2)
    assert store.claim("w3", T0 + LEASE, LEASE) is None


@pytest.mark.parametrize(
    ("first", "second", "independent"),
    [
        (("acme", ""), ("acme", ""), True),  # no ticket: nothing to keep in order
        (("acme", "T-1"), ("globex", "T-1"), True),  # same id, different helpdesks
        (("acme", "T-1"), ("acme", "T-1"), False),
    ],
    ids=["no-ticket", "other-tenant", "same-ticket"],
)
def test_which_events_may_be_leased_together(
    store: Store, first: tuple[str, str], second: tuple[str, str], independent: bool
) -> None:
    put_all(store, new_event(first[0], "a", first[1]), new_event(second[0], "b", second[1]))
    assert claim(store, "w1").event_id == "a"
    other = store.claim("w2", T0, LEASE)
    assert (other and other.event_id) == ("b" if independent else None)


def test_a_retry_later_blocks_its_ticket_until_then(store: Store) -> None:
    put_all(
        store,
        new_event(event_id="a", ticket="T-1"),
        new_event(event_id="b", ticket="T-1"),
        new_event(event_id="c", ticket="T-2"),
    )
    retry_at = T0 + 100
    assert store.fail(claim(store, "w1"), "vendor 503", T0 + 1, retry_at) == "pending"
    # Until retry_at, "b" must wait for "a"; the other ticket goes ahead.
    assert claim(store, "w2", T0 + 50, lease_s=1000).event_id == "c"
    assert store.claim("w3", retry_at - 0.001, LEASE) is None
    again = claim(store, "w3", retry_at)
    assert (again.event_id, again.attempts) == ("a", 2)
    complete(store, again, retry_at)
    assert claim(store, "w4", retry_at).event_id == "b"


def test_a_dead_letter_does_not_block_its_ticket(store: Store) -> None:
    put_all(store, new_event(event_id="a"), new_event(event_id="b"))
    assert store.fail(claim(store, "w1"), "undecidable", T0, None) == "dead"
    # One poisoned event must not stop a ticket for good; it waits for a replay.
    assert claim(store, "w2").event_id == "b"


# -- complete -----------------------------------------------------------------------


def test_complete_marks_done_and_writes_one_audit_row(store: Store) -> None:
    put_all(store, new_event("acme", "ev-1", "T-1", kind="ticket.created", ticket_key="ZD-7"))
    claimed = claim(store, "w1", T0 + 1)
    record = AuditRecord(
        "decided", decision='{"tier":"gold"}', written='{"priority":"urgent"}', note="é"
    )
    store.complete(claimed, record, T0 + 2)
    (audit,) = store.history("T-1")
    assert (audit.event, audit.tenant, audit.ticket, audit.ticket_key) == (
        claimed.id,
        "acme",
        "T-1",
        "ZD-7",
    )
    assert (audit.event_id, audit.kind, audit.at) == ("ev-1", "ticket.created", T0 + 2)
    assert (audit.outcome, audit.decision, audit.written, audit.note) == (
        "decided",
        '{"tier":"gold"}',
        '{"priority":"urgent"}',
        "é",
    )
    done = row(store, "ev-1")
    assert (done.state, done.attempts, done.last_error) == ("done", 1, None)
    assert store.claim("w2", T0 + 1000, LEASE) is None


def test_complete_is_all_or_nothing(store: Store) -> None:
    # An audit row the database refuses (outcome is NOT NULL) must leave the event
    # leased, not done without its audit row.
    put_all(store, new_event())
    claimed = claim(store)
    broken = AuditRecord(None)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.complete(claimed, broken, T0)
    assert row(store, "ev-1").state == "leased"
    assert store.history("T-1") == []
    complete(store, claimed)
    assert [a.outcome for a in store.history("T-1")] == ["decided"]


def test_complete_after_the_lease_was_taken_over_is_lease_lost(store: Store) -> None:
    put_all(store, new_event())
    slow = claim(store, "slow", T0)
    fast = claim(store, "fast", T0 + LEASE)
    with pytest.raises(LeaseLost):
        complete(store, slow, T0 + LEASE + 1)
    assert store.history("T-1") == []
    complete(store, fast, T0 + LEASE + 2)
    (audit,) = store.history("T-1")
    assert audit.note == "by fast"


def test_complete_twice_is_lease_lost(store: Store) -> None:
    put_all(store, new_event())
    claimed = claim(store)
    complete(store, claimed)
    with pytest.raises(LeaseLost):
        complete(store, claimed, T0 + 1)
    assert len(store.history("T-1")) == 1


def test_a_late_complete_counts_when_nobody_took_over(store: Store) -> None:
    # The lease ran out but no one claimed the event: the work is still the only
    # attempt, so it is accepted (LeaseLost means another worker holds it).
    put_all(store, new_event())
    claimed = claim(store, "w1", T0)
    complete(store, claimed, T0 + LEASE * 2)
    assert row(store, "ev-1").state == "done"


def test_lease_lost_is_a_store_error() -> None:
    assert issubclass(LeaseLost, StoreError)


# -- fail ---------------------------------------------------------------------------


def test_fail_with_retry_at_is_pending_again_from_then(store: Store) -> None:
    put_all(store, new_event())
    assert store.fail(claim(store), "vendor 503", T0 + 1, T0 + 60) == "pending"
    pending = row(store, "ev-1")
    assert (pending.state, pending.attempts, pending.last_error) == ("pending", 1, "vendor 503")
    assert store.claim("w2", T0 + 59.999, LEASE) is None
    assert claim(store, "w2", T0 + 60).attempts == 2
    # A retry is not an outcome: nothing in the audit trail yet.
    assert store.history("T-1") == []


def test_fail_without_retry_is_a_dead_letter_with_an_audit_row(store: Store) -> None:
    put_all(store, new_event(ticket_key="ZD-9"))
    claimed = claim(store)
    assert store.fail(claimed, "tenant gone", T0 + 5, None) == "dead"
    dead = row(store, "ev-1")
    assert (dead.state, dead.last_error) == ("dead", "tenant gone")
    assert [e.event_id for e in store.events("dead")] == ["ev-1"]
    (audit,) = store.history("ZD-9")
    assert (audit.event, audit.outcome, audit.note, audit.at) == (
        claimed.id,
        "dead_letter",
        "tenant gone",
        T0 + 5,
    )
    assert store.claim("w2", T0 + 1000, LEASE) is None


@pytest.mark.parametrize("retry_at", [T0 + 100, None], ids=["retry", "dead"])
def test_fail_by_a_stale_owner_is_lease_lost(store: Store, retry_at: float | None) -> None:
    put_all(store, new_event())
    stale = claim(store, "slow", T0)
    current = claim(store, "fast", T0 + LEASE)
    with pytest.raises(LeaseLost):
        store.fail(stale, "too late", T0 + LEASE + 1, retry_at)
    # The new owner's lease is untouched and no dead-letter row was written.
    assert store.history("T-1") == []
    assert row(store, "ev-1").last_error is None
    complete(store, current)


# -- replay -------------------------------------------------------------------------


def test_replay_dead_requeues_only_dead_letters(store: Store) -> None:
    put_all(
        store,
        new_event(event_id="dead-1", ticket="T-1"),
        new_event(event_id="dead-2", ticket="T-2"),
        new_event(event_id="done", ticket="T-3"),
        new_event(event_id="pending", ticket="T-4"),
    )
    for _ in range(2):
        store.fail(claim(store), "boom", T0, None)
    complete(store, claim(store))
    assert store.replay(T0 + 10, dead=True) == 2
    for event_id in ("dead-1", "dead-2"):
        requeued = row(store, event_id)
        assert (requeued.state, requeued.attempts, requeued.last_error) == ("pending", 0, None)
    assert row(store, "done").state == "done"
    assert nonzero(store.counts()) == {"pending": 3, "done": 1}
    again = [claim(store, "w2", T0 + 10) for _ in range(3)]
    assert [(c.event_id, c.attempts) for c in again] == [
        ("dead-1", 1),
        ("dead-2", 1),
        ("pending", 1),
    ]


@pytest.mark.parametrize("by", ["row id", "tenant:event_id"])
def test_replay_one_event_requeues_it_even_when_done(store: Store, by: str) -> None:
    # An event id may itself contain ':' (only the first one separates the tenant).
    put_all(store, new_event("acme", "zd:42:1"), new_event("acme", "other", ticket="T-2"))
    first = claim(store)
    complete(store, first)
    selector = str(first.id) if by == "row id" else "acme:zd:42:1"
    assert store.replay(T0 + 10, event=selector) == 1
    requeued = row(store, "zd:42:1")
    assert (requeued.state, requeued.attempts) == ("pending", 0)
    assert row(store, "other").state == "pending"
    again = claim(store, "w2", T0 + 10)
    assert (again.id, again.attempts) == (first.id, 1)
    complete(store, again, T0 + 11)
    assert [a.event for a in store.history("T-1")] == [first.id, first.id]


@pytest.mark.parametrize("selector", ["999", "acme:nope", "globex:zd:42:1"])
def test_replay_of_an_unknown_event_is_zero(store: Store, selector: str) -> None:
    put_all(store, new_event("acme", "zd:42:1"))
    complete(store, claim(store))
    assert store.replay(T0, event=selector) == 0
    assert row(store, "zd:42:1").state == "done"


def test_replay_since_requeues_events_received_from_then(store: Store) -> None:
    for offset, event_id in [(0, "old"), (10, "at"), (20, "new")]:
        put_all(store, new_event(event_id=event_id, ticket=event_id), now=T0 + offset)
        complete(store, claim(store, now=T0 + offset))
    assert store.replay(T0 + 30, since=T0 + 10) == 2  # "at" is received exactly at since
    assert {e.event_id for e in store.events("pending")} == {"at", "new"}
    assert row(store, "old").state == "done"


@pytest.mark.parametrize(
    "selectors",
    [
        {},
        {"dead": True, "event": "1"},
        {"dead": True, "since": T0},
        {"event": "1", "since": T0},
        {"dead": True, "event": "1", "since": T0},
        {"since": None, "event": None},
    ],
    ids=repr,
)
def test_replay_takes_exactly_one_selector(store: Store, selectors: dict[str, Any]) -> None:
    put_all(store, new_event())
    store.fail(claim(store), "boom", T0, None)
    with pytest.raises(StoreError):
        store.replay(T0, **selectors)
    assert row(store, "ev-1").state == "dead"


@pytest.mark.parametrize(
    "selector",
    [
        "",
        "acme",
        "-1",
        "1.5",
        " 1",
        "²",  # regression: isdigit() is True for it, int() is not
    ],
)
def test_replay_of_an_unparseable_event_is_a_store_error(store: Store, selector: str) -> None:
    with pytest.raises(StoreError):
        store.replay(T0, event=selector)


def test_replay_of_an_impossible_row_id_is_zero_or_a_store_error(store: Store) -> None:
    with suppress(StoreError):
        assert store.replay(T0, event="9" * 20) == 0


@pytest.mark.parametrize("by", ["dead", "row id", "tenant:event_id", "since"])
def test_replay_never_touches_a_leased_event(store: Store, by: str) -> None:
    put_all(store, new_event("acme", "ev-1"))
    leased = claim(store, "w1")
    assert store.replay(T0 + 1, **replay_selector(by, leased)) == 0
    assert (row(store, "ev-1").state, row(store, "ev-1").attempts) == ("leased", 1)
    # The worker holding it finishes normally.
    complete(store, leased)


@pytest.mark.parametrize("how", ["dead", "row id", "tenant:event_id", "since"])
def test_replay_does_not_let_a_ticket_be_worked_twice_at_once(store: Store, how: str) -> None:
    put_all(store, new_event(event_id="a"), new_event(event_id="b"))
    first = claim(store, "w1")
    if how == "dead":
        store.fail(first, "undecidable", T0, None)
    else:
        complete(store, first)
    holder = claim(store, "w2")  # "b" is being worked on
    assert store.replay(T0 + 1, **replay_selector(how, first)) == 1
    # "a" is pending again, but its ticket is busy with "b" until w2 is done.
    assert store.claim("w3", T0 + 1, LEASE) is None
    complete(store, holder, T0 + 2)
    assert claim(store, "w3", T0 + 2).event_id == "a"


# -- reading: history, events, counts -----------------------------------------------


def test_history_finds_a_ticket_by_id_or_key_in_order(store: Store) -> None:
    put_all(
        store,
        new_event("acme", "a1", "T-1", ticket_key="ZD-1"),
        new_event("acme", "a2", "T-1", ticket_key="ZD-1"),
        new_event("acme", "a3", "T-2", ticket_key="ZD-2"),
        new_event("globex", "g1", "T-1", ticket_key="ZD-1"),
    )
    # a2 waits for a1; a3 and g1 are other tickets.
    for now, event_id, dead in [
        (1, "a1", False),
        (2, "a2", True),
        (3, "a3", False),
        (4, "g1", False),
    ]:
        claimed = claim(store, now=T0 + now)
        assert claimed.event_id == event_id
        if dead:
            store.fail(claimed, "boom", T0 + now, None)
        else:
            complete(store, claimed, T0 + now)

    def seen(ticket: str, tenant: str | None = None) -> list[tuple[str, str, str]]:
        return [(a.tenant, a.event_id, a.outcome) for a in store.history(ticket, tenant)]

    acme_t1 = [("acme", "a1", "decided"), ("acme", "a2", "dead_letter")]
    assert seen("T-1", "acme") == acme_t1
    assert seen("ZD-1", "acme") == acme_t1
    assert seen("T-1") == [*acme_t1, ("globex", "g1", "decided")]
    assert seen("ZD-2") == [("acme", "a3", "decided")]
    assert seen("T-2", "globex") == []
    assert seen("nope") == []
    assert [a.at for a in store.history("T-1")] == [T0 + 1, T0 + 2, T0 + 4]


def test_events_lists_by_state_newest_first(store: Store) -> None:
    put_all(store, *(new_event(event_id=f"e{i}", ticket=f"T-{i}") for i in range(4)))
    complete(store, claim(store))  # e0
    store.fail(claim(store), "gone", T0, None)  # e1
    claim(store)  # e2, left leased
    by_state = {
        state: [e.event_id for e in store.events(state)]
        for state in ("pending", "leased", "done", "dead")
    }
    assert by_state == {"pending": ["e3"], "leased": ["e2"], "done": ["e0"], "dead": ["e1"]}
    # The operator's listing shows the latest arrivals first; both backends agree.
    assert [e.event_id for e in store.events()] == ["e3", "e2", "e1", "e0"]
    assert [e.event_id for e in store.events(limit=2)] == ["e3", "e2"]
    assert store.events("nonsense") == []
    assert nonzero(store.counts()) == {"pending": 1, "leased": 1, "done": 1, "dead": 1}


def test_counts_of_an_empty_inbox(store: Store) -> None:
    assert nonzero(store.counts()) == {}


def test_ping_answers(store: Store) -> None:
    store.ping()


# -- concurrency --------------------------------------------------------------------

# -- claims and completions by the batch -----------------------------------------------


def test_claim_many_leases_one_event_per_ticket_oldest_first(store: Store) -> None:
    put_all(
        store,
        new_event("acme", "a1", "T-A"),
        new_event("acme", "b1", "T-B"),
        new_event("acme", "a2", "T-A"),
        new_event("acme", "c1", "T-C"),
        new_event("acme", "x", ""),  # names no ticket: never waits on another
        new_event("acme", "y", ""),
    )
    batch = store.claim_many("w1", T0, LEASE, 10)
    assert [c.event_id for c in batch] == ["a1", "b1", "c1", "x", "y"]
    assert {c.owner for c in batch} == {"w1"} and {c.attempts for c in batch} == {1}
    assert store.claim_many("w2", T0, LEASE, 10) == []  # a2 waits behind a1
    assert [c.event_id for c in store.claim_many("w2", T0 + LEASE, LEASE, 2)] == ["a1", "b1"]


def test_claim_many_brings_what_deciding_needs(store: Store) -> None:
    clock = sla_clock("T-1")
    put_all(store, new_event("acme", "old", "T-1"))
    store.complete(claim(store), AuditRecord("decided"), T0, WrittenState("dry_run", "{}"), clock)
    put_all(store, new_event("acme", "comment", "T-1", kind="comment.updated"))  # made public
    complete(store, claim(store))
    put_all(store, new_event("acme", "mine", "T-1"), new_event("acme", "next", "T-1"))
    put_all(store, new_event("acme", "other", "T-2"))
    mine, other = store.claim_many("w1", T0, LEASE, 10)
    assert (mine.event_id, other.event_id) == ("mine", "other")
    assert mine.clock == clock and other.clock is None
    assert mine.written == (("dry_run", "{}"),) and other.written == ()
    assert mine.last_written("dry_run") == "{}" and mine.last_written("zendesk") is None
    # "next" is a newer snapshot, queued; nothing newer of T-1 is done.
    assert (mine.newer, mine.superseded, mine.commented) == (True, False, True)
    assert (other.newer, other.superseded, other.commented) == (False, False, False)
    for claimed in (mine, other):
        assert claimed.newer == store.newer_decidable(claimed)
        assert claimed.superseded == store.superseded(claimed)
        assert claimed.clock == store.sla_clock("acme", claimed.ticket)


def test_complete_all_is_one_outcome_per_event(store: Store) -> None:
    put_all(store, new_event("acme", "a", "T-A"), new_event("acme", "b", "T-B"))
    a, b = store.claim_many("slow", T0, LEASE, 2)
    taken = claim(store, "fast", T0 + LEASE)  # a's lease ran out and was taken
    assert taken.event_id == "a"
    clock = sla_clock("T-B")
    done = [
        Completion(a, AuditRecord("decided", note="by slow")),
        Completion(b, AuditRecord("decided"), WrittenState("dry_run", '{"x":1}'), clock),
    ]
    assert store.complete_all(done, T0 + LEASE + 1) == [a]
    assert store.history("T-A") == []  # nothing of the lost one
    assert [h.outcome for h in store.history("T-B")] == ["decided"]
    assert store.sla_clock("acme", "T-B") == clock
    assert store.last_written("acme", "T-B", "dry_run") == '{"x":1}'
    assert row(store, "b").state == "done" and row(store, "a").state == "leased"


def test_release_hands_events_back_uncounted(store: Store) -> None:
    put_all(store, new_event("acme", "a", "T-A"), new_event("acme", "b", "T-B"))
    batch = store.claim_many("w1", T0, LEASE, 2)
    store.release(batch[1:], T0 + 1)
    assert (row(store, "a").state, row(store, "b").state) == ("leased", "pending")
    again = claim(store, "w2", T0 + 1)
    assert (again.event_id, again.attempts) == ("b", 1)
    store.release([batch[1]], T0 + 2)  # no longer w1's: left alone
    assert row(store, "b").state == "leased"


def sla_clock(ticket: str) -> SlaClock:
    return SlaClock(
        tenant="acme",
        ticket=ticket,
        ticket_key=f"KEY-{ticket}",
        vendor="zendesk",
        account="acme",
        tier="premier",
        calendar="24x7",
        requester="alice@acme.example",
        created_us=1,
        at_risk_us=2,
        due_us=3,
        steps_us=(4, 5),
        levels=("L1", "L2"),
        stage="on_track",
        level=0,
        next_check_us=2,
        snapshot="{}",
    )


N_EVENTS, N_TICKETS, N_THREADS = 400, 40, 4


def test_concurrent_workers_complete_everything_once_and_in_ticket_order(
    backend: Backend,
) -> None:
    # Two Store objects on one database: every thread uses both, so with SQLite the
    # same object is shared by threads (one connection each) and a second instance
    # competes for the same file.
    shared, second = backend.open(), backend.open()
    tickets = [f"T-{i % N_TICKETS}" for i in range(N_EVENTS)]
    for i, ticket in enumerate(tickets):
        assert shared.put(new_event("acme", f"ev-{i}", ticket), T0)
    now = T0 + 1  # one instant for all claims; leases (an hour) cannot expire

    lock = threading.Lock()
    seq = 0  # a logical clock, so overlap does not depend on timer resolution
    held: dict[str, list[tuple[int, int]]] = defaultdict(list)  # ticket -> (claimed, released)
    attempts: list[int] = []
    deadline = time.monotonic() + 60

    def tick() -> int:
        nonlocal seq
        seq += 1
        return seq

    def worker(n: int) -> None:
        stores = (shared, second)
        try:
            for i in range(10 * N_EVENTS):
                # Claim through one object and complete through the other.
                claimer, completer = stores[(n + i) % 2], stores[(n + i + 1) % 2]
                claimed = claimer.claim(f"w{n}", now, 3600)
                if claimed is None:
                    with lock:
                        if len(attempts) == N_EVENTS:
                            return
                    assert time.monotonic() < deadline, "workers made no progress"
                    time.sleep(0.001)  # the remaining tickets are held by other threads
                    continue
                # The real lease contains [after claim returned, before complete is
                # called]: if two of these overlap for a ticket, the leases did too.
                with lock:
                    start = tick()
                    attempts.append(claimed.attempts)
                time.sleep(0)  # "work": let other threads run while the lease is held
                with lock:
                    held[claimed.ticket].append((start, tick()))
                completer.complete(claimed, AuditRecord("decided", note=f"w{n}"), now)
            raise AssertionError("worker did not finish")
        finally:
            for store in stores:
                store.close()  # this thread's connections

    with ThreadPoolExecutor(N_THREADS) as pool:
        for future in [pool.submit(worker, n) for n in range(N_THREADS)]:
            future.result()

    assert attempts == [1] * N_EVENTS  # nobody claimed anything twice
    assert nonzero(shared.counts()) == {"done": N_EVENTS}
    audited: Counter[int] = Counter()
    for ticket in sorted(set(tickets)):
        rows = shared.history(ticket)
        events = [a.event for a in rows]
        assert events == sorted(events), f"{ticket} audited out of arrival order"
        audited.update(events)
        spans = sorted(held[ticket])
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), (
            f"{ticket} was leased twice at once: {spans}"
        )
    assert len(audited) == N_EVENTS
    assert set(audited.values()) == {1}  # exactly one audit row per event


# -- SQLite itself ------------------------------------------------------------------


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "inbox.sqlite3"


def test_sqlite_store_opens_a_new_file(sqlite_path: Path) -> None:
    store = SqliteStore(sqlite_path)
    try:
        store.ping()
        assert store.put(new_event(), T0)
        # Opening an existing file must work too (every restart does it).
        again = SqliteStore(sqlite_path)
        assert claim(again).event_id == "ev-1"
        again.close()
    finally:
        store.close()


def test_sqlite_connections_are_wal_and_synchronous_full(sqlite_path: Path) -> None:
    store = SqliteStore(sqlite_path)
    # Connections are per thread: check the one made here and one a worker would make.
    seen: list[tuple[object, object]] = []

    def pragmas() -> None:
        db = store._db()
        journal = db.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = db.execute("PRAGMA synchronous").fetchone()[0]
        seen.append((journal, synchronous))
        store.close()

    pragmas()
    thread = threading.Thread(target=pragmas)
    thread.start()
    thread.join()
    assert seen == [("wal", 2), ("wal", 2)]  # 2 is FULL


def test_sqlite_put_is_on_disk_for_another_process(sqlite_path: Path) -> None:
    store = SqliteStore(sqlite_path)
    put_all(store, new_event(event_id="a"), new_event(event_id="b"))
    # Another process with plain sqlite3 (no store code), while ours is still open.
    count = (
        "import sqlite3, sys;"
        "print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM inbox').fetchone()[0])"
    )
    seen = subprocess.run(
        [sys.executable, "-c", count, str(sqlite_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert seen.stdout.strip() == "2"
    store.close()


def test_sqlite_on_a_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    # Constructing may fail already; either way it must be StoreError, so that the
    # receiver answers 503 and readiness reports the store down.
    with pytest.raises(StoreError):
        store = SqliteStore(tmp_path / "missing" / "inbox.sqlite3")
        store.ping()
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("url", ["x.sqlite3", "sqlite:///x.sqlite3", "{tmp}/x.sqlite3"])
def test_open_store_gives_sqlite_for_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths land in tmp_path
    store = open_store(url.format(tmp=tmp_path))
    assert isinstance(store, SqliteStore)
    store.ping()
    store.close()
    assert (tmp_path / "x.sqlite3").exists()


@pytest.mark.parametrize("url", ["sqlite://", ":memory:"])
def test_open_store_never_gives_a_database_threads_cannot_share(url: str) -> None:
    # Refusing such a URL is fine; handing out a store whose workers see nothing is not.
    try:
        store = open_store(url)
    except StoreError:
        return
    try:
        put_all(store, new_event())
        with ThreadPoolExecutor(1) as pool:
            seen = pool.submit(store.counts).result()
        assert nonzero(seen) == {"pending": 1}
    finally:
        store.close()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_open_store_gives_postgres_for_its_urls_and_creates_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    # Port 1 on 127.0.0.1: nothing listens, so the answer is a StoreError (or, without
    # psycopg, a StoreError saying so), never a SQLite file named after the URL.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=r"127\.0\.0\.1|psycopg") as caught:
        open_store(f"{scheme}://tierdesk:s3cret-pw@127.0.0.1:1/tierdesk?connect_timeout=5")
    assert "s3cret-pw" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []
