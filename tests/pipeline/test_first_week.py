"""Issue 10 items 2 and 7 through the real worker on a real SQLite store: a replayed dead
letter never runs the clock of a ticket solved meanwhile, and a deleted ticket's clock
stops with no outcome and nothing written. The sidebar (its view of the latest audited
decision) and `tierdesk report` (from the store's clocks) must agree with the clock."""

from __future__ import annotations

from dataclasses import replace

from pipeline.writeback import WriteBackError
from store import NewEvent, SqliteStore
from tests.pipeline.test_lifecycle import Rig, globex, status_change, z
from tierdesk.report import Month, attainment, rulebook_calendars
from webhooks.events import TicketEvent
from webhooks.live_mappings import LiveMappings
from webhooks.sidebar import decision_view, latest_decision

__all__ = ["bundled", "rig", "store"]  # fixtures shared with test_worker / test_lifecycle
from tests.pipeline.test_lifecycle import rig
from tests.pipeline.test_worker import bundled, store


def queue(rig: Rig, event: TicketEvent) -> None:
    """Put ``event`` as the intake does: only a full snapshot is decidable, and it is
    ordered by when it was taken."""
    assert rig.store.put(
        NewEvent(
            tenant=event.tenant,
            event_id=event.event_id,
            vendor=event.vendor,
            kind=event.kind,
            ticket=event.ticket_id,
            ticket_key=event.ticket_key,
            payload=b"{}",
            normalized=event.to_json(),
            decidable=event.ticket is not None and not event.partial,
            occurred_at=event.occurred_at.timestamp(),
        ),
        rig.clock.now,
    )
    rig.drain()


def sidebar_sla(rig: Rig, ticket: str = "900") -> object:
    row = latest_decision(rig.store.history(ticket))
    assert row is not None
    return decision_view(row.tenant, row)["sla"]


def report_total(store: SqliteStore, mappings: LiveMappings, now: str) -> tuple[int, ...]:
    rulebook = mappings.rulebook
    assert rulebook is not None
    month = Month(2026, 3)
    made = attainment(
        store.clocks(month.since_us, month.until_us), rulebook_calendars(rulebook), month, z(now)
    )
    t = made.total
    return (t.tickets, t.open, t.breached, t.solved_unanswered)


def severity_raised(at: str) -> TicketEvent:
    """An agent raises nothing but the snapshot time: a full ticket.updated snapshot."""
    event = replace(globex("2026-03-04T10:00:00Z", severity=2), event_id=f"upd-{at}")
    return replace(event, kind="ticket.updated", occurred_at=z(at), actor="agent-7")


def test_a_replayed_dead_letter_never_runs_the_clock_of_a_ticket_solved_meanwhile(
    rig: Rig, bundled: LiveMappings
) -> None:
    queue(rig, globex("2026-03-04T10:00:00Z"))
    # The helpdesk refuses the update's write for good: a dead letter.
    rig.writes.error = WriteBackError("HTTP 401", transient=False)
    rig.at("2026-03-04T10:05:00Z")
    queue(rig, replace(severity_raised("2026-03-04T10:05:00Z"), resolved=False))
    assert [e.state for e in rig.store.events(state="dead")] == ["dead"]
    rig.writes.error = None
    # Solved meanwhile (Zendesk's event webhook: partial, not a snapshot).
    rig.at("2026-03-04T10:20:00Z")
    queue(rig, status_change("900", "2026-03-04T10:20:00Z", "SOLVED"))
    clock = rig.store.sla_clock("acme-zd", "900")
    assert clock is not None and clock.closed and clock.stage == "solved"

    # The admin fixes the credentials and replays the dead letters.
    rig.at("2026-03-04T10:25:00Z")
    assert rig.store.replay(rig.clock.now, dead=True) == 1
    rig.drain()

    clock = rig.store.sla_clock("acme-zd", "900")
    assert clock is not None
    assert clock.closed and clock.next_check_us is None
    assert clock.closed_us == int(z("2026-03-04T10:20:00Z").timestamp() * 1_000_000)
    assert clock.stage == "solved"
    # The replay was decided (its severity is newer than anything decided before) and
    # shows the ticket as solved, not on track.
    assert rig.writes.calls[-1][1].event_id == "upd-2026-03-04T10:05:00Z"
    assert rig.writes.calls[-1][2].sla == "solved"
    assert sidebar_sla(rig) == "solved"
    # Long past the due time: still no outcome, never open, never breached.
    assert report_total(rig.store, bundled, "2026-03-20T00:00:00Z") == (1, 0, 0, 1)
    # And no sweep brings it back.
    assert rig.at("2026-03-05T10:00:00Z").sweep() == 0


def test_a_late_open_status_is_older_than_the_solve_and_changes_nothing(rig: Rig) -> None:
    queue(rig, globex("2026-03-04T10:00:00Z"))
    rig.at("2026-03-04T10:20:00Z")
    queue(rig, status_change("900", "2026-03-04T10:20:00Z", "SOLVED"))
    # A status change from before the solve, delivered late.
    rig.at("2026-03-04T10:30:00Z")
    queue(rig, status_change("900", "2026-03-04T10:10:00Z", "OPEN"))
    clock = rig.store.sla_clock("acme-zd", "900")
    assert clock is not None and clock.closed and clock.stage == "solved"
    # Opened again after the solve: the clock runs again, and the sweep moves it on.
    queue(rig, status_change("900", "2026-03-04T10:30:00Z", "OPEN"))
    clock = rig.store.sla_clock("acme-zd", "900")
    assert clock is not None and not clock.closed
    assert rig.at("2026-03-04T12:00:00Z").sweep() == 1
    assert rig.stage() == ("breached", 1)


def test_a_ticket_solved_past_due_without_a_reply_stays_breached(
    rig: Rig, bundled: LiveMappings
) -> None:
    queue(rig, globex("2026-03-04T10:00:00Z"))
    rig.at("2026-03-04T11:30:00Z")
    queue(rig, status_change("900", "2026-03-04T11:30:00Z", "SOLVED"))
    assert rig.stage() == ("breached", 1)  # the first escalation step is the due time
    assert report_total(rig.store, bundled, "2026-03-20T00:00:00Z") == (1, 0, 1, 0)


def test_a_deleted_ticket_stops_its_clock_with_no_outcome_and_nothing_written(
    rig: Rig, bundled: LiveMappings
) -> None:
    queue(rig, globex("2026-03-04T10:00:00Z"))
    calls = len(rig.writes.calls)
    # jira:issue_deleted carries the whole issue: a full snapshot, and yet no write.
    gone = replace(globex("2026-03-04T10:00:00Z"), event_id="deleted", kind="ticket.deleted")
    rig.at("2026-03-04T10:10:00Z")
    queue(rig, replace(gone, occurred_at=z("2026-03-04T10:10:00Z")))
    clock = rig.store.sla_clock("acme-zd", "900")
    assert clock is not None and clock.closed and clock.stage == "deleted"
    assert clock.next_check_us is None
    assert len(rig.writes.calls) == calls
    (row,) = [r for r in rig.store.history("900") if r.kind == "ticket.deleted"]
    assert (row.outcome, row.written) == ("recorded", None)
    assert "nothing written" in row.note

    # A snapshot from before the deletion, delivered (or replayed) late: no write.
    rig.at("2026-03-04T10:20:00Z")
    queue(rig, severity_raised("2026-03-04T10:05:00Z"))
    assert len(rig.writes.calls) == calls
    # Nor do sweeps or a late "open" status touch it.
    queue(rig, status_change("900", "2026-03-04T10:08:00Z", "OPEN"))
    assert rig.at("2026-03-05T10:00:00Z").sweep() == 0
    assert rig.stage() == ("deleted", 0)
    # Past its due time, the report counts it neither breached nor open: not at all.
    assert report_total(rig.store, bundled, "2026-03-20T00:00:00Z") == (0, 0, 0, 0)


def test_a_replayed_solve_never_stops_the_clock_of_a_ticket_opened_again_since(
    rig: Rig,
) -> None:
    queue(rig, globex("2026-03-04T10:00:00Z"))
    # The solve's trigger body dead-letters (its write refused); then it is solved again
    # by a status event, and opened again: the clock runs.
    rig.writes.error = WriteBackError("HTTP 401", transient=False)
    rig.at("2026-03-04T10:10:00Z")
    queue(rig, replace(severity_raised("2026-03-04T10:10:00Z"), resolved=True))
    rig.writes.error = None
    queue(rig, status_change("900", "2026-03-04T10:11:00Z", "SOLVED"))
    rig.at("2026-03-04T10:20:00Z")
    queue(rig, status_change("900", "2026-03-04T10:20:00Z", "OPEN"))
    clock = rig.store.sla_clock("acme-zd", "900")
    assert clock is not None and not clock.closed

    assert rig.store.replay(rig.clock.now, dead=True) == 1
    rig.drain()

    clock = rig.store.sla_clock("acme-zd", "900")
    assert clock is not None and not clock.closed and clock.closed_us is None
    assert clock.status_us == int(z("2026-03-04T10:20:00Z").timestamp() * 1_000_000)
    assert rig.writes.calls[-1][2].sla == "on_track"
    assert sidebar_sla(rig) == "on_track"
