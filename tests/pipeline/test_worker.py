"""The worker: claim an event, decide, write back (dry run), audit; and every way that fails.

Each test runs a real `SqliteStore` in tmp_path with the bundled mappings. Time is a
`Clock` the test moves by hand, so backoffs and leases expire because the test says
so and nothing sleeps (only `Worker.run` uses a real thread, stopped by its event).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from entitlements.decide import Decision
from entitlements.tickets import OrganizationRef, Ticket
from mappings import BUNDLED
from pipeline.worker import MAX_BACKOFF_S, Outcome, Worker
from pipeline.writeback import DryRun, WriteBack, WriteBackError, WriteResult
from store import (
    AuditRecord,
    AuditRow,
    Claimed,
    Completion,
    EventRow,
    LeaseLost,
    NewEvent,
    SqliteStore,
    StoreError,
)
from tests.shared import VENDOR
from webhooks.events import PayloadError, TicketEvent, Worklog
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings, Tenant

# The moment of deciding: a minute after the README's acme ticket was opened.
T0 = datetime(2026, 3, 6, 16, 31, tzinfo=UTC).timestamp()
CREATED = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)
TENANT = Tenant(id="acme-zd", vendor="zendesk")
SETTINGS = Settings(tenants={TENANT.id: TENANT}, lease_s=30.0, max_attempts=4)

# -- helpers ------------------------------------------------------------------------


class Clock:
    """The worker's time: moves only when a test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def acme_ticket(**changes: Any) -> Ticket:
    """What a filled-in Zendesk trigger body gives for the README's acme example: a
    Premier named contact (alice) reports an outage (severity 1) in production."""
    ticket = Ticket(
        id="123",
        created_at=CREATED,
        requester="alice@acme.example",
        organization=OrganizationRef("zendesk", "360001"),
        severity=1,
        priority="urgent",
        product="jira-software",
        environment="production",
        vendor="zendesk",
    )
    return replace(ticket, **changes)


def ticket_event(
    event_id: str = "ev-1",
    *,
    ticket: Ticket | None = None,
    tenant: str = TENANT.id,
    kind: str = "ticket.updated",
) -> TicketEvent:
    ticket = ticket or acme_ticket()
    return TicketEvent(
        tenant=tenant,
        vendor="zendesk",
        event_id=event_id,
        kind=kind,
        ticket_id=ticket.id,
        ticket_key=ticket.id,
        occurred_at=CREATED,
        ticket=ticket,
        actor="alice@acme.example",
    )


def worklog_event(event_id: str = "wl-1") -> TicketEvent:
    # Jira names only the issue id in worklog events: there is no ticket state to decide.
    return TicketEvent(
        tenant=TENANT.id,
        vendor="jsm",
        event_id=event_id,
        kind="worklog.created",
        ticket_id="10014",
        ticket_key="10014",
        occurred_at=CREATED,
        worklog=Worklog("10066", 3600),
    )


def put(store: SqliteStore, event: TicketEvent, now: float = T0) -> int:
    """Queue ``event`` as the intake would; its inbox row id."""
    assert store.put(
        NewEvent(
            tenant=event.tenant,
            event_id=event.event_id,
            vendor=event.vendor,
            kind=event.kind,
            ticket=event.ticket_id,
            ticket_key=event.ticket_key,
            payload=b"{}",
            normalized=event.to_json(),
        ),
        now,
    )
    return max(row.id for row in store.events())


def row(store: SqliteStore, event: int) -> EventRow:
    (found,) = [r for r in store.events(limit=1000) if r.id == event]
    return found


def audit(store: SqliteStore, ticket: str = "123") -> list[AuditRow]:
    return store.history(ticket)


def make_worker(
    store: SqliteStore,
    mappings: LiveMappings,
    clock: Clock,
    *,
    settings: Settings = SETTINGS,
    writeback: Callable[[Tenant], WriteBack] | None = None,
    name: str = "w1",
) -> Worker:
    return Worker(store, mappings, settings, writeback=writeback, clock=clock, name=name)


@dataclass
class FakeWriteBack:
    """A connector: raises ``error`` when given, else answers ``result``; records calls."""

    error: Exception | None = None
    result: WriteResult = field(default_factory=lambda: WriteResult("written", {"x": 1}))
    calls: list[tuple[Tenant, TicketEvent, Decision]] = field(default_factory=list)
    during: Callable[[], None] | None = None  # runs inside the write (a slow helpdesk)
    name: str = "fake"

    def write(
        self,
        tenant: Tenant,
        event: TicketEvent,
        decision: Decision,
        previous: dict[str, Any] | None = None,
    ) -> WriteResult:
        self.calls.append((tenant, event, decision))
        if self.during is not None:
            self.during()
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture(scope="module")
def bundled() -> LiveMappings:
    # Read-only for the tests that share it; loading takes a noticeable fraction of a second.
    mappings = LiveMappings(None)
    assert mappings.rulebook is not None, mappings.problems
    return mappings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(tmp_path / "inbox.sqlite3")
    yield db
    db.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


# -- a ticket decided ------------------------------------------------------------------


def test_a_ticket_event_is_decided_written_as_dry_run_and_audited(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    event = put(store, ticket_event())
    worker = make_worker(store, bundled, clock)

    assert worker.run_once() == Outcome(event, "done")

    (entry,) = audit(store)
    assert (entry.event, entry.tenant, entry.ticket_key, entry.event_id, entry.outcome) == (
        event,
        "acme-zd",
        "123",
        "ev-1",
        "decided",
    )
    assert entry.at == T0
    assert entry.note.startswith("mappings ")
    assert entry.decision is not None
    assert entry.written is not None
    decision = json.loads(entry.decision)
    assert decision["tier"] == "premier"
    assert decision["severity"] == 1
    assert decision["first_response_due"] == "2026-03-06T17:00:00Z"
    assert decision["named_contact"]["status"] == "valid"
    written = json.loads(entry.written)
    assert written["outcome"] == "dry_run"
    assert "nothing was sent" in written["note"]
    update = written["update"]
    assert set(update) == {
        "tier",
        "severity",
        "first_response_due",
        "named_contact",
        "covered",
        "reasons",
        "priority",
        "team",
        "tags",
        "sla",
        "escalation_level",
        "first_response",
        "hours",
    }
    assert update["tier"] == "premier"
    assert update["severity"] == 1
    assert update["first_response_due"] == "2026-03-06T17:00:00Z"
    assert update["priority"] == "urgent"  # written back from severity 1 (Zendesk's scale)
    assert update["covered"] is True
    assert "tierdesk_tier_premier" in update["tags"]
    # The update says what the decision says: one source of truth.
    for key in ("tier", "severity", "first_response_due", "priority", "team", "tags"):
        assert update[key] == decision[key]

    assert row(store, event).state == "done"
    assert row(store, event).last_error is None
    assert worker.run_once() is None
    assert store.counts() == {"done": 1}


def test_the_connector_gets_the_tenant_the_event_and_the_decision(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    connector = FakeWriteBack(result=WriteResult("written", {"priority": "urgent"}, "sent"))
    asked: list[Tenant] = []

    def factory(tenant: Tenant) -> WriteBack:
        asked.append(tenant)
        return connector

    put(store, ticket_event())
    assert make_worker(store, bundled, clock, writeback=factory).run_once() is not None

    assert asked == [TENANT]
    ((tenant, event, decision),) = connector.calls
    assert tenant == TENANT
    assert event == ticket_event()  # the inbox's JSON round-trips to the same event
    assert decision.tier == "premier"
    (entry,) = audit(store)
    assert entry.written is not None
    assert json.loads(entry.written) == {
        "outcome": "written",
        "update": {"priority": "urgent"},
        "note": "sent",
    }


def test_an_event_without_ticket_state_is_recorded_not_decided(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    event = put(store, worklog_event())
    connector = FakeWriteBack()

    outcome = make_worker(store, bundled, clock, writeback=lambda t: connector).run_once()

    assert outcome == Outcome(event, "done")
    (entry,) = audit(store, "10014")
    assert (entry.outcome, entry.kind, entry.decision, entry.written) == (
        "recorded",
        "worklog.created",
        None,
        None,
    )
    assert "no ticket state" in entry.note
    assert connector.calls == []  # nothing decided, so nothing to write back


# -- dead letters ---------------------------------------------------------------------

BAD_DATA = [
    pytest.param(acme_ticket(severity=9), "undecidable: severity: 9 ", id="severity-9"),
    pytest.param(acme_ticket(product="jira"), "undecidable: product: 'jira' ", id="product-jira"),
    pytest.param(acme_ticket(severity="P9"), "undecidable: severity: 'P9' ", id="severity-name"),
]


@pytest.mark.parametrize(("ticket", "note"), BAD_DATA)
def test_bad_data_is_a_dead_letter_at_once_and_dies_again_after_replay(
    store: SqliteStore, bundled: LiveMappings, clock: Clock, ticket: Ticket, note: str
) -> None:
    event = put(store, ticket_event(ticket=ticket))
    connector = FakeWriteBack()
    worker = make_worker(store, bundled, clock, writeback=lambda t: connector)

    # Retrying cannot fix a value the mappings do not know: no backoff, no second try.
    assert worker.run_once() == Outcome(event, "dead")
    assert (row(store, event).state, row(store, event).attempts) == ("dead", 1)
    assert row(store, event).last_error == audit(store)[0].note
    assert worker.run_once() is None
    (entry,) = audit(store)
    assert entry.outcome == "dead_letter"
    assert entry.note.startswith(note), entry.note
    assert connector.calls == []

    # Replay queues it again (attempts from zero); the data is still bad, so it dies again.
    clock.advance(60)
    assert store.replay(clock.now, dead=True) == 1
    assert row(store, event).state == "pending"
    assert worker.run_once() == Outcome(event, "dead")
    assert (row(store, event).state, row(store, event).attempts) == ("dead", 1)
    assert [e.outcome for e in audit(store)] == ["dead_letter", "dead_letter"]


def test_a_tenant_no_longer_configured_is_a_dead_letter(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    event = put(store, ticket_event(tenant="gone"))
    worker = make_worker(store, bundled, clock)

    assert worker.run_once() == Outcome(event, "dead")
    (entry,) = store.history("123", "gone")
    assert entry.outcome == "dead_letter"
    assert entry.note == "tenant 'gone' is no longer configured"


JSM_SAMPLE = VENDOR / "jsm/payloads/jira-issue_created_with_custom_fields.json"


def test_a_jira_timestamp_before_1970_is_refused_at_the_door() -> None:
    from webhooks import jsm

    body = json.loads(JSM_SAMPLE.read_text(encoding="utf-8"))
    body["timestamp"] = -1000  # a second before the epoch: Jira never sends it, a forger may
    with pytest.raises(PayloadError) as caught:
        jsm.normalize(body, Tenant(id=TENANT.id, vendor="jsm"), "d-1")
    assert caught.value.field == "timestamp"


@pytest.mark.parametrize(
    "normalized",
    [
        "not json at all",
        '{"tenant": "acme-zd"}',  # keys missing
        json.dumps(  # a timestamp the reader refuses
            {
                "tenant": "acme-zd",
                "vendor": "jsm",
                "event_id": "d-1",
                "kind": "ticket.created",
                "ticket_id": "10033",
                "ticket_key": "KAN-3",
                "occurred_at": "1969-12-31T23:59:59Z",
            }
        ),
    ],
    ids=["not-json", "missing-keys", "out-of-range-instant"],
)
def test_an_event_the_worker_cannot_read_is_a_dead_letter_at_once(
    store: SqliteStore, bundled: LiveMappings, clock: Clock, normalized: str
) -> None:
    store.put(
        NewEvent("acme-zd", "d-1", "jsm", "ticket.created", "10033", "KAN-3", b"{}", normalized),
        clock(),
    )
    # Reading it back fails the same way every time: no retries, a dead letter now.
    outcome = make_worker(store, bundled, clock).run_once()
    assert outcome is not None and outcome.state == "dead"
    (entry,) = audit(store, "10033")
    assert entry.outcome == "dead_letter"
    assert "unreadable event" in entry.note


# -- write-back failures and retries -----------------------------------------------------

WRITE_FAILURES = [
    pytest.param(
        WriteBackError("503 Service Unavailable", transient=True),
        "retry",
        "WriteBackError: 503 Service Unavailable",
        id="transient",
    ),
    pytest.param(
        WriteBackError("401 Unauthorized", transient=False),
        "dead",
        "write-back refused: 401 Unauthorized",
        id="permanent",
    ),
    # Anything the worker did not foresee is assumed to pass (a bug fixed, a lock freed).
    pytest.param(RuntimeError("boom"), "retry", "RuntimeError: boom", id="unexpected"),
]


@pytest.mark.parametrize(("error", "state", "message"), WRITE_FAILURES)
def test_a_failed_write_back_is_retried_or_dead_by_its_kind(
    store: SqliteStore,
    bundled: LiveMappings,
    clock: Clock,
    error: Exception,
    state: str,
    message: str,
) -> None:
    event = put(store, ticket_event())
    worker = make_worker(store, bundled, clock, writeback=lambda t: FakeWriteBack(error))

    assert worker.run_once() == Outcome(event, state)

    found = row(store, event)
    assert found.last_error == message
    assert found.attempts == 1
    if state == "retry":
        assert found.state == "pending"
        assert audit(store) == []  # a retry is not an outcome yet: no audit row
    else:
        assert found.state == "dead"
        assert [(e.outcome, e.note) for e in audit(store)] == [("dead_letter", message)]


@pytest.mark.parametrize("max_attempts", [1, 4, 11])
def test_transient_failures_back_off_exponentially_then_dead_letter(
    store: SqliteStore, bundled: LiveMappings, clock: Clock, max_attempts: int
) -> None:
    settings = replace(SETTINGS, max_attempts=max_attempts)
    failing = FakeWriteBack(WriteBackError("helpdesk down", transient=True))
    event = put(store, ticket_event())
    worker = make_worker(store, bundled, clock, settings=settings, writeback=lambda t: failing)

    for attempt in range(1, max_attempts):
        failed_at = clock.now
        assert worker.run_once() == Outcome(event, "retry")
        assert (row(store, event).state, row(store, event).attempts) == ("pending", attempt)
        # Available again exactly 2**attempts seconds later (capped), and not a moment before.
        backoff = min(2.0**attempt, MAX_BACKOFF_S)
        clock.now = failed_at + backoff - 0.5
        assert worker.run_once() is None, f"claimed again before the backoff of {backoff}s"
        clock.now = failed_at + backoff

    assert worker.run_once() == Outcome(event, "dead")
    assert (row(store, event).state, row(store, event).attempts) == ("dead", max_attempts)
    assert len(failing.calls) == max_attempts
    assert [(e.outcome, e.note) for e in audit(store)] == [
        ("dead_letter", "WriteBackError: helpdesk down")
    ]
    assert worker.run_once() is None


def test_without_mappings_events_are_retried_and_decided_once_mappings_load(
    tmp_path: Path, store: SqliteStore, clock: Clock
) -> None:
    directory = tmp_path / "mappings"
    shutil.copytree(BUNDLED, directory)
    (directory / "tiers.json").write_text("{not json", encoding="utf-8")
    mappings = LiveMappings(directory)
    assert mappings.rulebook is None
    event = put(store, ticket_event())
    worker = make_worker(store, mappings, clock)

    # Not the event's fault: retried with backoff, never a dead letter at once.
    assert worker.run_once() == Outcome(event, "retry")
    assert row(store, event).last_error == "RuntimeError: no valid mappings are loaded"
    assert audit(store) == []

    shutil.copy(BUNDLED / "tiers.json", directory / "tiers.json")
    assert mappings.reload()
    clock.advance(2)
    assert worker.run_once() == Outcome(event, "done")
    assert [e.outcome for e in audit(store)] == ["decided"]


# -- leases -----------------------------------------------------------------------------


def test_an_expired_lease_passes_the_event_to_another_worker(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    event = put(store, ticket_event())
    stalled = store.claim("A", clock.now, SETTINGS.lease_s)  # A claims, then goes quiet
    assert stalled is not None
    b = make_worker(store, bundled, clock, name="B")

    clock.advance(SETTINGS.lease_s - 1)
    assert b.run_once() is None  # A's lease still holds
    clock.advance(1)
    assert b.run_once() == Outcome(event, "done")

    # A wakes up: whatever it did is discarded, decided or failed.
    with pytest.raises(LeaseLost):
        store.complete(stalled, AuditRecord("decided"), clock.now)
    with pytest.raises(LeaseLost):
        store.fail(stalled, "late", clock.now, None)
    assert [e.outcome for e in audit(store)] == ["decided"]
    assert (row(store, event).state, row(store, event).attempts) == ("done", 2)


@pytest.mark.parametrize(
    "error", [None, WriteBackError("timeout", transient=True)], ids=["succeeds", "fails"]
)
def test_a_worker_that_outlives_its_lease_reports_lost_and_audits_nothing(
    store: SqliteStore, bundled: LiveMappings, clock: Clock, error: Exception | None
) -> None:
    event = put(store, ticket_event())
    b = make_worker(store, bundled, clock, name="B")
    b_outcomes: list[Outcome | None] = []

    def helpdesk_hangs() -> None:
        # While A waits on the helpdesk, its lease runs out and B does the work.
        clock.advance(SETTINGS.lease_s)
        b_outcomes.append(b.run_once())

    slow = FakeWriteBack(error, during=helpdesk_hangs)
    a = make_worker(store, bundled, clock, writeback=lambda t: slow, name="A")

    assert a.run_once() == Outcome(event, "lost")
    assert b_outcomes == [Outcome(event, "done")]
    assert row(store, event).state == "done"
    assert row(store, event).last_error is None
    assert [e.outcome for e in audit(store)] == ["decided"]


# -- order ------------------------------------------------------------------------------


def test_one_tickets_events_are_processed_in_arrival_order_others_go_ahead(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    first = acme_ticket()
    other = acme_ticket(id="456")
    # Each event changes the severity: an unchanged decision would make no call at all.
    arrivals = [
        ticket_event("a1", ticket=first, kind="ticket.created"),
        ticket_event("b1", ticket=other, kind="ticket.created"),
        ticket_event("a2", ticket=replace(first, severity=2)),
        ticket_event("a3", ticket=replace(first, severity=3)),
    ]
    put(store, arrivals[0])
    # The helpdesk is down for the first write only: ticket 123 must wait for a1.
    writes: list[str] = []

    def connector(tenant: Tenant) -> WriteBack:
        class Once:
            name = "once"

            def write(
                self,
                tenant: Tenant,
                event: TicketEvent,
                decision: Decision,
                previous: dict[str, Any] | None = None,
            ) -> WriteResult:
                writes.append(event.event_id)
                if len(writes) == 1:
                    raise WriteBackError("503", transient=True)
                return DryRun().write(tenant, event, decision, previous)

        return Once()

    worker = make_worker(store, bundled, clock, writeback=connector)
    assert worker.run_once() is not None  # a1 fails, back off 2 s
    for event in arrivals[1:]:
        put(store, event)
    assert worker.run_once() is not None  # b1: another ticket goes ahead
    assert worker.run_once() is None  # a2, a3 wait behind a1, though they are due
    clock.advance(2)
    while worker.run_once() is not None:
        pass

    # Behind a1 were two newer snapshots of its ticket: a1 and a2 are decided, and only
    # a3, the newest, is written (a burst coalesces).
    assert writes == ["a1", "b1", "a3"]
    assert [e.event_id for e in audit(store, "123")] == ["a1", "a2", "a3"]
    assert [e.event_id for e in audit(store, "456")] == ["b1"]
    assert store.counts() == {"done": 4}


def test_threads_sharing_the_inbox_decide_each_event_once_in_ticket_order(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    tickets = ["101", "102", "103"]
    for n in range(6):
        for t in tickets:
            put(store, ticket_event(f"{t}-{n}", ticket=acme_ticket(id=t)))
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=make_worker(store, bundled, clock, name=f"w{i}").run,
            args=(stop,),
            kwargs={"idle_s": 0.01},
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 20
        while store.counts() != {"done": 18} and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
    assert store.counts() == {"done": 18}
    for t in tickets:
        entries = audit(store, t)
        assert [e.event_id for e in entries] == [f"{t}-{n}" for n in range(6)]
        assert {e.outcome for e in entries} == {"decided"}


# -- the loop ---------------------------------------------------------------------------


def test_run_processes_events_and_stops_promptly_when_told(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    put(store, ticket_event("ev-1"))
    put(store, worklog_event("wl-1"))
    worker = make_worker(store, bundled, clock)
    stop = threading.Event()
    # A long idle sleep: stopping must not wait for it to end.
    thread = threading.Thread(target=worker.run, args=(stop,), kwargs={"idle_s": 30.0})
    thread.start()
    try:
        deadline = time.monotonic() + 10  # two events take a few ms; 10 s only if stuck
        while store.counts() != {"done": 2} and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.counts() == {"done": 2}
    finally:
        stop.set()
        thread.join(timeout=2)
    assert not thread.is_alive(), "Worker.run did not stop within 2 s of stop.set()"


# -- regressions from the code review ----------------------------------------------------


def test_an_event_whose_lease_keeps_running_out_becomes_a_dead_letter(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    # A worker killed on the event each time never calls fail(): only claims count the
    # attempts. Past max_attempts the next claim dead-letters it, so its ticket moves on.
    event = put(store, ticket_event("ev-1"))
    later = put(store, ticket_event("ev-2"))
    for _ in range(SETTINGS.max_attempts):
        assert store.claim("killed", clock(), SETTINGS.lease_s) is not None
        clock.advance(SETTINGS.lease_s)
    assert make_worker(store, bundled, clock).run_once() == Outcome(event, "dead")
    (entry,) = audit(store)[:1]
    assert entry.outcome == "dead_letter"
    assert "abandoned 4 times" in entry.note
    assert make_worker(store, bundled, clock).run_once() == Outcome(later, "done")


def test_a_replayed_snapshot_older_than_a_decided_one_is_superseded(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    worker = make_worker(store, bundled, clock)
    old = put(store, ticket_event("ev-old", ticket=acme_ticket(severity=4)))
    assert worker.run_once() == Outcome(old, "done")
    put(store, ticket_event("ev-new", ticket=acme_ticket(severity=1)))
    assert worker.run_once() is not None
    assert store.replay(clock(), event=str(old)) == 1
    assert worker.run_once() == Outcome(old, "done")
    outcomes = [row.outcome for row in audit(store)]
    assert outcomes == ["decided", "decided", "superseded"]


def test_a_partial_event_is_recorded_not_decided(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    # A Zendesk event webhook has no requester: deciding would drop Premier to Select.
    writes = FakeWriteBack()
    put(store, replace(ticket_event("ev-1"), partial=True))
    make_worker(store, bundled, clock, writeback=lambda tenant: writes).run_once()
    (entry,) = audit(store)
    assert (entry.outcome, entry.decision, writes.calls) == ("recorded", None, [])
    assert "partial ticket" in entry.note


# -- no wasted calls: the last written state ---------------------------------------------


def test_an_unchanged_decision_costs_no_call(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    # The second event is what our own write-back's webhook brings back: the same
    # ticket state, so the same decision. It must not be written again (no loop).
    writes = FakeWriteBack(result=WriteResult("written", {"ok": 1}))
    worker = make_worker(store, bundled, clock, writeback=lambda tenant: writes)
    put(store, ticket_event("ev-1"))
    worker.run_once()
    put(store, ticket_event("ev-2"))  # arrives after ev-1 was written, as an echo does
    worker.run_once()
    assert [call[1].event_id for call in writes.calls] == ["ev-1"]
    second = json.loads(audit(store)[1].written or "{}")
    assert second["outcome"] == "unchanged"


def test_a_changed_decision_is_written_once(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    writes = FakeWriteBack()
    worker = make_worker(store, bundled, clock, writeback=lambda tenant: writes)
    for event_id, severity in (("ev-1", 1), ("ev-2", 1), ("ev-3", 2), ("ev-4", 2)):
        put(store, ticket_event(event_id, ticket=acme_ticket(severity=severity)))
        worker.run_once()
    assert [call[1].event_id for call in writes.calls] == ["ev-1", "ev-3"]


def test_a_dry_run_never_stands_for_a_real_write(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    # A tenant that ran dry and then got credentials: its tickets are written for real.
    put(store, ticket_event("ev-1"))
    make_worker(store, bundled, clock).run_once()  # DryRun
    live = FakeWriteBack(name="zendesk")
    put(store, ticket_event("ev-2"))
    make_worker(store, bundled, clock, writeback=lambda tenant: live).run_once()
    assert [call[1].event_id for call in live.calls] == ["ev-2"]
    assert store.last_written(TENANT.id, "123", "dry_run") == store.last_written(
        TENANT.id, "123", "zendesk"
    )


def test_a_failed_write_leaves_the_last_written_state_as_it_was(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    failing = FakeWriteBack(error=WriteBackError("503", transient=True))
    put(store, ticket_event("ev-1"))
    make_worker(store, bundled, clock, writeback=lambda tenant: failing).run_once()
    assert store.last_written(TENANT.id, "123", "fake") is None


def test_a_burst_is_decided_event_by_event_but_written_once(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    # Quick edits of one ticket, queued before a worker gets to them: each gets its
    # decision in the audit (nothing is lost), only the newest is written.
    writes = FakeWriteBack()
    worker = make_worker(store, bundled, clock, writeback=lambda tenant: writes)
    for event_id, severity in (("ev-1", 4), ("ev-2", 3), ("ev-3", 1)):
        put(store, ticket_event(event_id, ticket=acme_ticket(severity=severity)))
    while worker.run_once() is not None:
        pass
    assert [call[1].event_id for call in writes.calls] == ["ev-3"]
    rows = audit(store)
    assert [row.outcome for row in rows] == ["decided"] * 3
    assert [json.loads(row.written or "{}")["outcome"] for row in rows] == [
        "coalesced",
        "coalesced",
        "written",
    ]


def test_a_partial_event_never_stands_for_a_full_one(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    # A Zendesk event webhook queued after a trigger body must not make it coalesce:
    # the partial event carries no decision of its own.
    writes = FakeWriteBack()
    worker = make_worker(store, bundled, clock, writeback=lambda tenant: writes)
    put(store, ticket_event("ev-full"))
    store.put(
        NewEvent(
            TENANT.id,
            "ev-partial",
            "zendesk",
            "ticket.updated",
            "123",
            "123",
            b"{}",
            replace(ticket_event("ev-partial"), partial=True).to_json(),
            decidable=False,
        ),
        clock(),
    )
    while worker.run_once() is not None:
        pass
    assert [call[1].event_id for call in writes.calls] == ["ev-full"]


def test_a_late_echo_of_an_older_snapshot_never_undoes_an_agents_newer_edit(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    # tierdesk writes at t; an agent edits at t+1; the echo of tierdesk's write (the
    # state as of t) arrives after the agent's webhook. By arrival it is "newer"; by
    # snapshot it is older, and it must neither coalesce the agent's edit away nor be
    # written over it.
    writes = FakeWriteBack()
    worker = make_worker(store, bundled, clock, writeback=lambda tenant: writes)
    t = CREATED.timestamp()

    def arrive(event_id: str, severity: int, snapshot_at: float) -> None:
        event = ticket_event(event_id, ticket=acme_ticket(severity=severity))
        store.put(
            NewEvent(
                TENANT.id,
                event_id,
                "zendesk",
                event.kind,
                "123",
                "123",
                b"{}",
                event.to_json(),
                occurred_at=snapshot_at,
            ),
            clock(),
        )

    arrive("ours", 3, t)
    worker.run_once()  # written: severity 3
    arrive("agent", 1, t + 1)  # the agent raises it to severity 1
    arrive("echo", 3, t)  # the echo of our write, with the older state, arrives after
    while worker.run_once() is not None:
        pass
    assert [call[1].event_id for call in writes.calls] == ["ours", "agent"]
    outcomes = {row.event_id: row.outcome for row in audit(store)}
    assert outcomes == {"ours": "decided", "agent": "decided", "echo": "superseded"}


def test_the_webhook_of_tierdesks_own_write_is_not_decided(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    # Its author is the tenant's API user: it brings back what tierdesk wrote.
    api_user = replace(TENANT, email="tierdesk-api@support.example")
    settings = replace(SETTINGS, tenants={TENANT.id: api_user})
    writes = FakeWriteBack()
    worker = make_worker(store, bundled, clock, settings=settings, writeback=lambda t: writes)
    put(store, replace(ticket_event("ev-1"), actor="Tierdesk-API@support.example"))
    worker.run_once()
    (entry,) = audit(store)
    assert (entry.outcome, entry.decision, writes.calls) == ("echo", None, [])


# -- batches ------------------------------------------------------------------------


def other_ticket(n: int) -> TicketEvent:
    return ticket_event(f"ev-{n}", ticket=acme_ticket(id=str(500 + n)))


def test_a_batch_is_claimed_and_completed_together(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    events = [put(store, other_ticket(n)) for n in range(3)]
    worker = make_worker(store, bundled, clock)
    assert worker.run_batch() == [Outcome(e, "done") for e in events]
    assert [row(store, e).state for e in events] == ["done"] * 3
    assert worker.run_batch() == []


def test_a_write_to_the_helpdesk_is_completed_at_once_and_the_rest_handed_back(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    events = [put(store, other_ticket(n)) for n in range(3)]
    helpdesk = FakeWriteBack()
    worker = make_worker(store, bundled, clock, writeback=lambda tenant: helpdesk)
    assert worker.run_batch() == [Outcome(events[0], "done")]
    assert len(helpdesk.calls) == 1
    # The others are claimable at once, their attempt not counted.
    assert [(row(store, e).state, row(store, e).attempts) for e in events[1:]] == [
        ("pending", 0),
        ("pending", 0),
    ]
    other = make_worker(store, bundled, clock, writeback=lambda tenant: helpdesk, name="w2")
    assert other.run_batch() == [Outcome(events[1], "done")]


def test_a_batch_near_half_its_lease_hands_the_rest_back(
    store: SqliteStore, bundled: LiveMappings, clock: Clock
) -> None:
    events = [put(store, other_ticket(n)) for n in range(3)]
    # A dry run (nothing reaches a helpdesk) that takes 20 s of a 30 s lease.
    slow = FakeWriteBack(during=lambda: clock.advance(20), name=DryRun.name)
    worker = make_worker(store, bundled, clock, writeback=lambda tenant: slow)
    assert worker.run_batch() == [Outcome(events[0], "done")]
    assert [row(store, e).state for e in events[1:]] == ["pending", "pending"]
    assert [row(store, e).attempts for e in events[1:]] == [0, 0]


def test_a_completion_the_store_refuses_fails_that_event_alone(
    tmp_path: Path, bundled: LiveMappings, clock: Clock
) -> None:
    class Refusing(SqliteStore):
        """Refuses any completion that includes ``bad`` (a value it cannot store)."""

        bad = -1

        def complete_all(self, done: Sequence[Completion], now: float) -> list[Claimed]:
            if any(item.claimed.id == self.bad for item in done):
                raise StoreError("cannot store a value of that event")
            return super().complete_all(done, now)

    store = Refusing(tmp_path / "inbox.sqlite3")
    try:
        events = [put(store, other_ticket(n)) for n in range(3)]
        store.bad = events[1]
        outcomes = make_worker(store, bundled, clock).run_batch()
        assert sorted(outcomes, key=lambda o: o.event) == [
            Outcome(events[0], "done"),
            Outcome(events[1], "retry"),
            Outcome(events[2], "done"),
        ]
        assert row(store, events[1]).last_error == (
            "cannot complete: cannot store a value of that event"
        )
    finally:
        store.close()
