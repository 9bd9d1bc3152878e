"""What the worker asks the store besides claiming: held events, newer and superseded
snapshots of a ticket, what a writer last wrote, and the follow-up events a completion
queues. Against every backend (tests/store/backends.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from store import AuditRecord, Claimed, NewEvent, Store, StoreError, WrittenState
from tests.store.test_inbox import LEASE, T0, claim, complete, new_event, row


def snapshot(
    event_id: str, occurred_at: float, *, ticket: str = "T-1", decidable: bool = True
) -> NewEvent:
    return replace(
        new_event(event_id=event_id, ticket=ticket), occurred_at=occurred_at, decidable=decidable
    )


def test_a_held_event_is_claimable_only_after_its_hold(store: Store) -> None:
    assert store.put(new_event(), T0, hold_s=2.0)
    assert store.claim("w1", T0 + 1.999, LEASE) is None
    assert claim(store, now=T0 + 2).event_id == "ev-1"


# -- newer_decidable ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("other", "newer"),
    [
        (snapshot("b", 11.0), True),  # a later snapshot waits
        (snapshot("b", 10.0), True),  # as new, but arrived later
        (snapshot("b", 9.0), False),  # an older snapshot (an echo of our own write)
        (snapshot("b", 11.0, decidable=False), False),  # a comment: not a whole state
        (snapshot("b", 11.0, ticket="T-2"), False),  # another ticket
        (replace(snapshot("b", 11.0), tenant="globex"), False),  # another helpdesk
    ],
    ids=["later", "same-time", "older", "not-decidable", "other-ticket", "other-tenant"],
)
def test_newer_decidable_sees_a_waiting_newer_snapshot(
    store: Store, other: NewEvent, newer: bool
) -> None:
    assert store.put(snapshot("a", 10.0), T0)
    assert store.put(other, T0)
    claimed = claim(store)
    assert claimed.event_id == "a"
    assert store.newer_decidable(claimed) is newer


def test_newer_decidable_ignores_done_events_and_ticketless_ones(store: Store) -> None:
    assert store.put(snapshot("a", 10.0), T0)
    complete(store, claim(store))
    assert store.put(snapshot("b", 5.0), T0 + 1)
    claimed = claim(store, now=T0 + 1)
    assert store.newer_decidable(claimed) is False  # "a" is done, not waiting
    assert store.put(snapshot("c", 1.0, ticket=""), T0 + 2)
    assert store.put(snapshot("d", 2.0, ticket=""), T0 + 2)
    ticketless = claim(store, now=T0 + 2)
    assert ticketless.event_id == "c"
    assert store.newer_decidable(ticketless) is False


# -- superseded -----------------------------------------------------------------------


def _replayed(store: Store, first: str) -> Claimed:
    assert store.replay(T0 + 10, event=f"acme:{first}") == 1
    return claim(store, now=T0 + 10)


@pytest.mark.parametrize(
    ("a_at", "b_at", "stale"),
    [(10.0, 11.0, True), (10.0, 10.0, True), (10.0, 9.0, False)],
    ids=["newer-done", "same-time-later-arrival", "older-done"],
)
def test_superseded_when_a_newer_snapshot_is_done(
    store: Store, a_at: float, b_at: float, stale: bool
) -> None:
    assert store.put(snapshot("a", a_at), T0)
    assert store.put(snapshot("b", b_at), T0)
    first = claim(store)
    assert store.superseded(first) is False  # nothing done yet
    complete(store, first)
    complete(store, claim(store))  # "b"
    again = _replayed(store, "a")
    assert again.event_id == "a"
    assert store.superseded(again) is stale


def test_only_a_whole_snapshot_supersedes(store: Store) -> None:
    # A comment or follow-up done later carries no ticket state: it never makes an
    # agent's edit stale.
    assert store.put(snapshot("a", 10.0), T0)
    assert store.put(snapshot("b", 11.0, decidable=False), T0)
    first = claim(store)
    complete(store, first)
    complete(store, claim(store))
    assert store.superseded(_replayed(store, "a")) is False


def test_superseded_ignores_other_tickets_and_ticketless_events(store: Store) -> None:
    assert store.put(snapshot("a", 1.0, ticket=""), T0)
    assert store.put(snapshot("b", 2.0, ticket="T-2"), T0)
    first = claim(store)
    complete(store, claim(store))
    assert store.superseded(first) is False


# -- written state and follow-up events -------------------------------------------------


def test_last_written_is_per_tenant_ticket_and_writer(store: Store) -> None:
    assert store.last_written("acme", "T-1", "zendesk") is None
    for n, (writer, state) in enumerate(
        [("zendesk", '{"v":1}'), ("dry_run", '{"v":2}'), ("zendesk", '{"v":3}')]
    ):
        assert store.put(new_event(event_id=f"e{n}"), T0)
        store.complete(
            claim(store), AuditRecord("decided"), T0, written=WrittenState(writer, state)
        )
    assert store.last_written("acme", "T-1", "zendesk") == '{"v":3}'
    assert store.last_written("acme", "T-1", "dry_run") == '{"v":2}'
    assert store.last_written("globex", "T-1", "zendesk") is None
    assert store.last_written("acme", "T-2", "zendesk") is None


def test_complete_queues_follow_up_events_once(store: Store) -> None:
    assert store.put(new_event(event_id="cause"), T0)
    follow = (
        new_event(event_id="f1", ticket="T-7", kind="hours.flag"),
        new_event(event_id="f2", ticket="T-8", kind="hours.flag"),
        new_event(event_id="f1", ticket="T-7", kind="hours.flag"),  # a repeat: dropped
    )
    store.complete(claim(store), AuditRecord("decided"), T0 + 1, follow=follow)
    assert sorted(e.event_id for e in store.events("pending")) == ["f1", "f2"]
    assert row(store, "f1").received_at == T0 + 1
    assert store.put(new_event(event_id="f2"), T0 + 2) is False  # deduped like any event


def test_a_refused_completion_queues_nothing(store: Store) -> None:
    assert store.put(new_event(event_id="cause"), T0)
    claimed = claim(store)
    broken = AuditRecord(None)  # type: ignore[arg-type]  # outcome is NOT NULL
    with pytest.raises(StoreError):
        store.complete(claimed, broken, T0, follow=(new_event(event_id="f1"),))
    assert [e.event_id for e in store.events()] == ["cause"]
    assert store.last_written("acme", "T-1", "zendesk") is None
