"""Pay-as-you-go hours through the real worker, store and ledger (one SQLite file):
time logged on one ticket exhausts the account; the account's waiting tickets get the
flag and keep their tier; its new tickets fall back (RULES.md §3)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from entitlements.decide import Decision, decide
from entitlements.errors import EntitlementError
from entitlements.ledger import ZENDESK_TOTAL
from entitlements.tickets import OrganizationRef
from pipeline.worker import Worker
from store import SqliteStore, StoreError
from store.ledger import SqliteLedger
from store.ledger_base import Linked, TicketLink
from tests.pipeline.test_worker import Clock, FakeWriteBack, acme_ticket, put, ticket_event
from webhooks.events import TicketEvent, Worklog
from webhooks.live_mappings import LiveMappings

__all__ = ["bundled"]  # the fixture, shared with test_worker
from tests.pipeline.test_worker import SETTINGS, bundled

# Initech (bundled mappings): pay-as-you-go, 20 h bought in February and 20 h in August,
# 37 h used: 3 h left in September, under 20 % of the last bundle.
NOW = datetime.fromisoformat("2026-09-01T00:30:00+00:00")
CREATED = datetime.fromisoformat("2026-09-01T00:00:00+00:00")


def initech(ticket_id: str, *, total_s: int | None = None, event_id: str = "") -> TicketEvent:
    ticket = replace(
        acme_ticket(),
        id=ticket_id,
        created_at=CREATED,
        requester="pat@initech.example",
        organization=OrganizationRef("zendesk", "360003"),
        severity=3,
        priority=None,
        product=None,
        environment=None,
    )
    event = ticket_event(event_id or f"ev-{ticket_id}", ticket=ticket, kind="ticket.updated")
    worklog = Worklog(ZENDESK_TOTAL, total_s) if total_s is not None else None
    return replace(event, worklog=worklog, actor="agent@initech.example")


class Flow:
    def __init__(self, tmp_path: Path, mappings: LiveMappings) -> None:
        path = tmp_path / "tierdesk.sqlite3"
        self.store = SqliteStore(path)
        self.ledger = SqliteLedger(path)
        self.writes = FakeWriteBack()
        self.clock = Clock(NOW.timestamp())
        self.worker = Worker(
            self.store,
            mappings,
            SETTINGS,
            writeback=lambda tenant: self.writes,
            clock=self.clock,
            name="w1",
            ledger=self.ledger,
        )

    def deliver(self, event: TicketEvent) -> None:
        put(self.store, event, self.clock.now)
        self.clock.advance(1)
        while self.worker.run_once() is not None:
            pass

    def last(self, ticket: str) -> Decision:
        return [d for _, e, d in self.writes.calls if d.ticket == ticket][-1]


@pytest.fixture
def flow(tmp_path: Path, bundled: LiveMappings) -> Flow:
    return Flow(tmp_path, bundled)


def test_time_that_exhausts_the_account_flags_its_open_tickets_and_new_ones_fall_back(
    flow: Flow,
) -> None:
    flow.deliver(initech("701"))
    a = flow.last("701")
    assert (a.tier, a.hours and a.hours.status) == ("payg", "low")
    assert "tierdesk_reason_hours_low" in a.tags

    flow.deliver(initech("702"))
    # 4 hours logged on 702 (Zendesk Time Tracking's total): 41 of 40 hours used.
    flow.deliver(initech("702", total_s=4 * 3600, event_id="ev-702-time"))
    assert flow.ledger.totals("initech").used_s == 41 * 3600

    b = flow.last("702")
    assert (b.tier, b.fallback) == ("payg", False)  # opened while hours were left
    assert b.hours is not None and b.hours.exhausted
    assert "tierdesk_reason_hours_exhausted" in b.tags

    # 701 did nothing, yet shows the account's new state: woken by the ledger.
    a = flow.last("701")
    assert (a.tier, a.fallback) == ("payg", False)
    assert a.hours is not None and a.hours.exhausted
    woken = [e for e in flow.store.events(limit=1000) if e.kind == "hours.changed"]
    assert {e.ticket for e in woken} == {"701", "702"}

    # A new ticket of the exhausted account falls back.
    flow.deliver(initech("703"))
    c = flow.last("703")
    assert (c.tier, c.fallback) == ("select", True)
    assert "hours_exhausted" in c.reasons


def test_a_replayed_worklog_counts_once_and_wakes_nobody_twice(flow: Flow) -> None:
    flow.deliver(initech("701"))
    flow.deliver(initech("702", total_s=4 * 3600, event_id="ev-702-time"))
    calls = len(flow.writes.calls)
    events = len(flow.store.events(limit=1000))

    # The same webhook again (a vendor retry under another delivery id).
    flow.deliver(initech("702", total_s=4 * 3600, event_id="ev-702-time-again"))

    assert flow.ledger.totals("initech").used_s == 41 * 3600
    woken = [e.ticket for e in flow.store.events(limit=1000) if e.kind == "hours.changed"]
    assert sorted(woken) == sorted(set(woken))  # each ticket woken once for this state
    assert len(flow.store.events(limit=1000)) <= events + 2  # the retry, perhaps 702's wake
    assert len(flow.writes.calls) == calls  # same decisions as written: no call


def test_a_new_tickets_link_is_written_with_its_claim_and_its_time_counts_after(
    flow: Flow,
) -> None:
    """A new ticket's link moves no time, so it waits for the claim's one ledger write
    (a claim holds one event per ticket); the ticket's next event finds it."""
    put(flow.store, initech("704"), flow.clock.now)
    put(flow.store, initech("705"), flow.clock.now)
    put(flow.store, initech("704", total_s=4 * 3600, event_id="ev-704-time"), flow.clock.now)
    assert [o.state for o in flow.worker.run_batch()] == ["done", "done"]  # 704 waits
    assert flow.ledger.links_of("acme-zd", ["704", "705"]) == {
        "704": Linked("initech", logged=False),
        "705": Linked("initech", logged=False),
    }
    assert [o.state for o in flow.worker.run_batch()] == ["done"]
    assert flow.ledger.unattributed_s() == 0
    decided = flow.last("704")  # decided with the 4 hours counted: 41 of 40 used
    assert decided.hours is not None and decided.hours.used_s == 41 * 3600
    assert decided.hours.exhausted


def test_a_link_that_cannot_be_written_stops_the_call_to_the_helpdesk(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live write-back writes its event's link before the call: a store that refuses
    the link fails the event with no call made, and its retry calls once."""
    put(flow.store, initech("707"), flow.clock.now)
    monkeypatch.setattr(flow.ledger, "link_all", refused)
    assert [o.state for o in flow.worker.run_batch()] == ["retry"]
    assert flow.writes.calls == []
    assert flow.ledger.account_of("acme-zd", "707") is None

    monkeypatch.undo()
    flow.clock.advance(60)
    assert [o.state for o in flow.worker.run_batch()] == ["done"]
    assert [e.ticket_id for _, e, _ in flow.writes.calls] == ["707"]
    assert flow.ledger.account_of("acme-zd", "707") == "initech"


def test_an_event_that_fails_writes_its_link_before_its_ticket_moves_on(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead letter closes its event, and the ticket's next one (a worklog, say) may be
    claimed at once by another worker: the link it deferred is written first."""
    put(flow.store, initech("704"), flow.clock.now)

    def undecidable(*args: object, **kwargs: object) -> None:
        raise EntitlementError("no such product")

    linked_when_failed = []
    fail = flow.store.fail

    def failing(claimed: Any, *args: Any) -> str:
        linked_when_failed.append(flow.ledger.account_of("acme-zd", "704"))
        return fail(claimed, *args)

    monkeypatch.setattr("pipeline.worker.decide", undecidable)
    monkeypatch.setattr(flow.store, "fail", failing)
    assert [o.state for o in flow.worker.run_batch()] == ["dead"]
    assert linked_when_failed == ["initech"]


def test_in_a_dry_run_claim_an_event_that_cannot_be_linked_fails_alone(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim's links go in one transaction; when it fails, each event's alone: the
    event whose link the store refuses is retried, the others are done."""
    mappings = flow.worker.mappings
    worker = Worker(flow.store, mappings, SETTINGS, clock=flow.clock, ledger=flow.ledger)
    for ticket in ("708", "709", "710"):
        put(flow.store, initech(ticket), flow.clock.now)
    link_all = flow.ledger.link_all

    def refusing_709(links: list[TicketLink]) -> None:
        if any(link.ticket == "709" for link in links):
            raise StoreError("disk I/O error")
        link_all(links)

    monkeypatch.setattr(flow.ledger, "link_all", refusing_709)
    states = {o.event: o.state for o in worker.run_batch()}
    assert sorted(states.values()) == ["done", "done", "retry"]
    assert flow.ledger.links_of("acme-zd", ["708", "709", "710"]) == {
        "708": Linked("initech", logged=False),
        "709": Linked(None, logged=False),
        "710": Linked("initech", logged=False),
    }
    assert flow.store.counts() == {"done": 2, "pending": 1}


def refused(links: object) -> None:
    raise StoreError("disk I/O error")


def test_an_event_whose_link_cannot_be_written_as_it_fails_is_retried_alone(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure writes its event's link first; when the store refuses it, that event is
    retried (not a dead letter that frees its ticket without it), and the rest of the
    claim is done as usual."""
    mappings = flow.worker.mappings
    worker = Worker(flow.store, mappings, SETTINGS, clock=flow.clock, ledger=flow.ledger)
    for ticket in ("801", "802", "803"):
        put(flow.store, initech(ticket), flow.clock.now)
    link_all = flow.ledger.link_all

    def undecidable_802(ticket: Any, *args: Any, **kwargs: Any) -> Decision:
        if ticket.id == "802":
            raise EntitlementError("no such product")
        return decide(ticket, *args, **kwargs)

    def refusing_802(links: list[TicketLink]) -> None:
        if any(link.ticket == "802" for link in links):
            raise StoreError("disk I/O error")
        link_all(links)

    monkeypatch.setattr("pipeline.worker.decide", undecidable_802)
    monkeypatch.setattr(flow.ledger, "link_all", refusing_802)
    assert sorted(o.state for o in worker.run_batch()) == ["done", "done", "retry"]
    (pending,) = flow.store.events(state="pending")
    assert pending.ticket == "802"
    assert pending.last_error is not None and "link not written" in pending.last_error
    assert flow.ledger.account_of("acme-zd", "801") == "initech"


def test_a_write_that_reached_the_helpdesk_is_recorded_when_the_rest_cannot_be_handed_back(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    for ticket in ("811", "812"):
        put(flow.store, initech(ticket), flow.clock.now)

    def locked(*args: object) -> None:
        raise StoreError("database is locked")

    monkeypatch.setattr(flow.store, "release", locked)
    assert [o.state for o in flow.worker.run_batch()] == ["done"]  # 811, written
    monkeypatch.undo()
    flow.clock.advance(SETTINGS.lease_s + 1)  # 812's lease runs out
    while flow.worker.run_batch():
        flow.clock.advance(1)
    assert [e.ticket_id for _, e, _ in flow.writes.calls] == ["811", "812"]  # each once
