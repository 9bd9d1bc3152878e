"""The SLA lifecycle through the real worker and sweeper on a real SQLite store: first
response, re-decisions, at-risk, breaches and escalation (webhooks/lifecycle.py,
webhooks/sweep.py). Time is a `Clock` the test moves; the write-back is a recorder, so
"API calls" below are the writes the worker asked the connector for."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from connector.render import note
from entitlements.tickets import OrganizationRef
from pipeline.sweep import Sweeper, move_of
from pipeline.worker import Worker
from pipeline.writeback import ticket_update
from store import SqliteStore
from tests.pipeline.test_worker import (
    TENANT,
    Clock,
    FakeWriteBack,
    acme_ticket,
    make_worker,
    put,
    ticket_event,
)
from webhooks.events import Comment, TicketEvent
from webhooks.live_mappings import LiveMappings

__all__ = ["bundled", "store"]  # fixtures shared with test_worker
from tests.pipeline.test_worker import bundled, store


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def globex(created: str, severity: int = 1, ticket_id: str = "900") -> TicketEvent:
    """A 24/7 SaaS ticket (saas-24x7: L1 1h on 24x7, three escalation levels)."""
    ticket = replace(
        acme_ticket(),
        id=ticket_id,
        created_at=z(created),
        requester="dana@globex.example",
        organization=OrganizationRef("zendesk", "360002"),
        severity=severity,
        product=None,
        environment=None,
    )
    event = ticket_event(f"create-{ticket_id}-{severity}", ticket=ticket, kind="ticket.created")
    return replace(event, occurred_at=z(created), actor="dana@globex.example")


def reply(
    ticket_id: str,
    at: str,
    *,
    public: bool = True,
    by_agent: bool | None = True,
    author: str = "agent-7",
    event_id: str | None = None,
) -> TicketEvent:
    return TicketEvent(
        tenant=TENANT.id,
        vendor="zendesk",
        event_id=event_id or f"c-{ticket_id}-{at}-{author}",
        kind="comment.created",
        ticket_id=ticket_id,
        ticket_key=ticket_id,
        occurred_at=z(at),
        actor=author,
        comment=Comment("c1", public, author, by_agent),
        partial=True,
    )


class Rig:
    def __init__(self, store: SqliteStore, mappings: LiveMappings, start: str) -> None:
        self.store = store
        self.clock = Clock(z(start).timestamp())
        self.writes = FakeWriteBack()
        self.worker: Worker = make_worker(
            store, mappings, self.clock, writeback=lambda tenant: self.writes
        )
        self.sweeper = Sweeper(store, clock=self.clock, name="sweeper-1")

    def at(self, instant: str) -> Rig:
        self.clock.now = z(instant).timestamp()
        return self

    def deliver(self, event: TicketEvent) -> None:
        put(self.store, event, self.clock.now)
        self.drain()

    def drain(self) -> None:
        while self.worker.run_once() is not None:
            pass

    def sweep(self) -> int:
        result = self.sweeper.run_once()
        assert result.leader
        self.drain()
        return result.queued

    def last_tags(self) -> tuple[str, ...]:
        return self.writes.calls[-1][2].tags

    def stage(self, ticket: str = "900") -> tuple[str, int]:
        clock = self.store.sla_clock(TENANT.id, ticket)
        assert clock is not None
        return clock.stage, clock.level


@pytest.fixture
def rig(store: SqliteStore, bundled: LiveMappings) -> Rig:
    return Rig(store, bundled, "2026-03-04T10:00:00Z")


def test_a_reply_exactly_at_the_due_instant_meets_the_target(rig: Rig) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    assert rig.stage() == ("on_track", 0)
    rig.at("2026-03-04T11:00:00Z").deliver(reply("900", "2026-03-04T11:00:00Z"))
    assert rig.stage() == ("met", 0)
    decision = rig.writes.calls[-1][2]
    assert decision.first_response is not None
    assert decision.first_response.margin == timedelta(0)
    assert "tierdesk_first_response_met" in decision.tags
    assert "tierdesk_sla_breached" not in decision.tags
    # A second reply changes nothing: the first response is recorded once.
    calls = len(rig.writes.calls)
    rig.at("2026-03-04T12:00:00Z").deliver(reply("900", "2026-03-04T11:30:00Z"))
    assert len(rig.writes.calls) == calls
    assert rig.stage() == ("met", 0)


def test_a_reply_a_second_late_misses_it_by_business_time(rig: Rig) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    rig.at("2026-03-04T11:00:01Z").deliver(reply("900", "2026-03-04T11:00:01Z"))
    assert rig.stage() == ("missed", 1)
    decision = rig.writes.calls[-1][2]
    assert decision.first_response is not None
    assert (decision.first_response.met, decision.first_response.margin) == (
        False,
        timedelta(seconds=1),
    )
    assert {"tierdesk_first_response_missed", "tierdesk_sla_breached"} <= set(decision.tags)


@pytest.mark.parametrize(
    ("comment", "why"),
    [
        ({"public": False}, "internal note"),
        ({"by_agent": False, "author": "dana@globex.example"}, "customer"),
        ({"by_agent": None, "author": "dana@globex.example"}, "requester"),
        ({"author": "tierdesk@acme.example"}, "own note"),
    ],
)
def test_what_never_counts_as_the_first_response(
    store: SqliteStore, bundled: LiveMappings, comment: dict[str, object], why: str
) -> None:
    rig = Rig(store, bundled, "2026-03-04T10:00:00Z")
    rig.worker.settings = replace(
        rig.worker.settings,
        tenants={TENANT.id: replace(TENANT, email="tierdesk@acme.example")},
    )
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    calls = len(rig.writes.calls)
    rig.at("2026-03-04T10:10:00Z").deliver(
        reply("900", "2026-03-04T10:10:00Z", **comment)  # type: ignore[arg-type]
    )
    assert rig.stage() == ("on_track", 0)
    assert len(rig.writes.calls) == calls
    (recorded,) = [r for r in store.history("900") if r.kind == "comment.created"]
    assert recorded.outcome == "recorded" and why in recorded.note


def test_met_during_the_weekend_by_the_weekend_team(rig: Rig) -> None:
    # Saturday 2026-03-07: the 24/7 SaaS clock runs; a weekend agent answers in 40 min.
    rig.at("2026-03-07T03:00:00Z").deliver(globex("2026-03-07T03:00:00Z"))
    rig.at("2026-03-07T03:40:00Z").deliver(reply("900", "2026-03-07T03:40:00Z", author="wkd-1"))
    assert rig.stage() == ("met", 0)
    decision = rig.writes.calls[-1][2]
    assert decision.first_response is not None
    assert decision.first_response.margin == timedelta(minutes=20)


def test_sweeps_mark_at_risk_then_breach_then_escalate(rig: Rig) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    written = len(rig.writes.calls)
    assert rig.at("2026-03-04T10:30:00Z").sweep() == 0  # nothing due: no write
    assert len(rig.writes.calls) == written

    assert rig.at("2026-03-04T10:45:00Z").sweep() == 1  # 75 % of one hour
    assert rig.stage() == ("at_risk", 0)
    assert "tierdesk_sla_at_risk" in rig.last_tags()

    assert rig.at("2026-03-04T11:00:00Z").sweep() == 0  # the due instant is not late
    assert rig.at("2026-03-04T11:00:01Z").sweep() == 1
    assert rig.stage() == ("breached", 1)
    decision = rig.writes.calls[-1][2]
    assert decision.escalation_level == "Director of Support"
    assert {"tierdesk_sla_breached", "tierdesk_escalation_2"} <= set(decision.tags)
    assert "tierdesk_sla_at_risk" not in decision.tags

    assert rig.at("2026-03-04T12:00:01Z").sweep() == 1  # another 100 % of the target
    assert rig.stage() == ("breached", 2)
    assert rig.writes.calls[-1][2].escalation_level == "Head of Customer Experience"
    calls = len(rig.writes.calls)
    assert rig.at("2026-03-09T00:00:00Z").sweep() == 0  # the last level: nothing more
    assert len(rig.writes.calls) == calls


def test_a_catch_up_sweep_counts_each_stage_change_and_escalation_level(rig: Rig) -> None:
    def metric(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"tenant": TENANT.id, **labels}) or 0.0

    before = (
        metric("tierdesk_sla_stage_changes_total", stage="breached"),
        metric("tierdesk_sla_escalations_total"),
    )
    for ticket in ("900", "901", "902"):
        rig.deliver(globex("2026-03-04T10:00:00Z", ticket_id=ticket))
    assert rig.at("2026-03-05T10:00:00Z").sweep() == 3  # each straight to breached, level 2
    after = (
        metric("tierdesk_sla_stage_changes_total", stage="breached"),
        metric("tierdesk_sla_escalations_total"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (3, 6)


def test_a_breach_during_downtime_is_caught_up_in_one_step(rig: Rig) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    calls = len(rig.writes.calls)
    # No sweep ran for a day: the next one moves the clock straight to where it is.
    assert rig.at("2026-03-05T10:00:00Z").sweep() == 1
    assert rig.stage() == ("breached", 2)
    assert len(rig.writes.calls) == calls + 1
    assert rig.writes.calls[-1][2].escalation_level == "Head of Customer Experience"


def test_a_repeated_sweep_queues_nothing_twice(rig: Rig) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    rig.at("2026-03-04T10:50:00Z")
    first = rig.sweeper.run_once()
    again = rig.sweeper.run_once()
    assert (first.queued, again.queued, again.examined) == (1, 0, 0)
    pending = [e for e in rig.store.events() if e.kind == "sla.changed"]
    assert len(pending) == 1


def test_only_one_of_two_sweepers_leads(rig: Rig, store: SqliteStore) -> None:
    other = Sweeper(store, clock=rig.clock, name="sweeper-2", every_s=15)
    assert rig.sweeper.run_once().leader
    assert not other.run_once().leader
    rig.clock.advance(46)  # the leader missed three periods: it is presumed dead
    assert other.run_once().leader
    assert not rig.sweeper.run_once().leader


def test_severity_raised_mid_ticket_redecides_from_creation(rig: Rig) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z", severity=3))  # L3: 24h
    clock = rig.store.sla_clock(TENANT.id, "900")
    assert clock is not None
    assert clock.due_us == int(z("2026-03-05T10:00:00Z").timestamp() * 1_000_000)

    before = rig.writes.calls[-1][2]

    # 2.5 hours in, an agent raises it to L1 (1h): due an hour after creation — already
    # past, so breached at once, two steps up, and the note says why.
    raised = globex("2026-03-04T10:00:00Z", severity=1)
    raised = replace(raised, event_id="raise", occurred_at=z("2026-03-04T12:30:00Z"))
    rig.at("2026-03-04T12:30:00Z").deliver(raised)
    assert rig.stage() == ("breached", 2)
    decision = rig.writes.calls[-1][2]
    assert decision.first_response_due == z("2026-03-04T11:00:00Z")
    assert decision.severity == 1
    text = note(decision, ticket_update(before))
    assert "Re-decided from the ticket's creation: severity L3 → L1; first response due" in text
    assert "SLA: breached, escalated to Head of Customer Experience" in text


def test_a_premier_outage_on_the_global_weekend_is_met_by_the_weekend_team(
    store: SqliteStore, bundled: LiveMappings
) -> None:
    # Saturday 2026-03-07 10:00 UTC: the global weekend. Premier L1 runs 24x7 (30 min)
    # and the routing rule hands the ticket to the Select team, who answer in 25 min.
    rig = Rig(store, bundled, "2026-03-07T10:00:00Z")
    opened = replace(
        ticket_event(
            "sat-1",
            ticket=replace(acme_ticket(), id="777", created_at=z("2026-03-07T10:00:00Z")),
            kind="ticket.created",
        ),
        occurred_at=z("2026-03-07T10:00:00Z"),
    )
    rig.deliver(opened)
    first = rig.writes.calls[-1][2]
    assert (first.tier, first.team, first.calendar) == ("premier", "select", "24x7")
    assert first.first_response_due == z("2026-03-07T10:30:00Z")

    rig.at("2026-03-07T10:25:00Z").deliver(reply("777", "2026-03-07T10:25:00Z", author="sel-9"))
    assert rig.stage("777") == ("met", 0)
    answered = rig.writes.calls[-1][2]
    assert answered.first_response is not None
    assert answered.first_response.margin == timedelta(minutes=5)
    assert "tierdesk_first_response_met" in answered.tags


def test_a_clock_that_changed_after_the_sweep_read_it_is_left_alone(rig: Rig) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z", ticket_id="900"))
    rig.deliver(globex("2026-03-04T10:00:00Z", ticket_id="901"))
    now = z("2026-03-04T10:50:00Z")
    now_us = int(now.timestamp() * 1_000_000)
    due = rig.store.due_clocks(now_us, 10)
    assert {c.ticket for c in due} == {"900", "901"}
    moves = [move_of(c, now_us) for c in due]

    # Meanwhile an agent answers 900: the sweep's view of it is stale.
    rig.at("2026-03-04T10:49:00Z").deliver(reply("900", "2026-03-04T10:49:00Z"))
    assert rig.stage("900") == ("met", 0)

    assert rig.store.advance(moves, now.timestamp()) == 1
    assert rig.stage("900") == ("met", 0)
    assert rig.stage("901") == ("at_risk", 0)
    queued = [e.ticket for e in rig.store.events(limit=100) if e.kind == "sla.changed"]
    assert queued == ["901"]


def status_change(ticket_id: str, at: str, status: str) -> TicketEvent:
    """A Zendesk ``ticket.status_changed`` event webhook, as normalised (partial)."""
    return TicketEvent(
        tenant=TENANT.id,
        vendor="zendesk",
        event_id=f"st-{ticket_id}-{at}-{status}",
        kind="ticket.updated",
        ticket_id=ticket_id,
        ticket_key=ticket_id,
        occurred_at=z(at),
        actor="agent-7",
        changes=("status_changed",),
        partial=True,
        resolved=status in ("SOLVED", "CLOSED"),
    )


def test_a_solved_ticket_stops_its_clock_and_a_reopened_one_runs_again(rig: Rig) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    # Solved without a public reply (a duplicate, say): no sweep may escalate it.
    rig.at("2026-03-04T10:20:00Z").deliver(status_change("900", "2026-03-04T10:20:00Z", "SOLVED"))
    clock = rig.store.sla_clock(TENANT.id, "900")
    assert clock is not None and clock.closed and clock.next_check_us is None
    assert clock.closed_us == int(z("2026-03-04T10:20:00Z").timestamp() * 1_000_000)
    calls = len(rig.writes.calls)
    assert rig.at("2026-03-05T10:00:00Z").sweep() == 0
    assert len(rig.writes.calls) == calls
    # Solved before due without a reply: no outcome, as `tierdesk report` counts it.
    assert rig.stage() == ("solved", 0)

    # Reopened a day later: the next sweep moves the clock to where it stands (two
    # breach steps past) and the ticket shows it.
    rig.deliver(status_change("900", "2026-03-05T10:00:00Z", "OPEN"))
    clock = rig.store.sla_clock(TENANT.id, "900")
    assert clock is not None and not clock.closed and clock.closed_us is None
    assert rig.sweep() == 1
    assert rig.stage() == ("breached", 2)
    assert rig.writes.calls[-1][2].escalation_level == "Head of Customer Experience"


def test_a_solved_snapshot_stops_the_clock_too(rig: Rig) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    solved = replace(globex("2026-03-04T10:00:00Z"), event_id="solved", resolved=True)
    rig.at("2026-03-04T10:30:00Z").deliver(replace(solved, occurred_at=z("2026-03-04T10:30:00Z")))
    clock = rig.store.sla_clock(TENANT.id, "900")
    assert clock is not None and clock.closed and clock.next_check_us is None
    assert rig.at("2026-03-09T00:00:00Z").sweep() == 0


def test_the_description_of_a_ticket_an_agent_opened_is_not_its_first_response(
    rig: Rig,
) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    # Zendesk's ticket.comment_added for the description: public, by staff, at creation.
    rig.deliver(reply("900", "2026-03-04T10:00:00Z", author="agent-on-the-phone"))
    assert rig.stage() == ("on_track", 0)
    (recorded,) = [r for r in rig.store.history("900") if r.kind == "comment.created"]
    assert "description" in recorded.note


def test_a_removed_tenants_clocks_stop_instead_of_dead_lettering(
    rig: Rig, store: SqliteStore
) -> None:
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    sweeper = Sweeper(store, clock=rig.clock, name="sweeper-1", tenants={"another-tenant"})
    rig.at("2026-03-04T12:00:00Z")
    result = sweeper.run_once()
    assert (result.examined, result.queued) == (1, 0)
    clock = store.sla_clock(TENANT.id, "900")
    assert clock is not None and clock.next_check_us is None
    assert [e for e in store.events(limit=100) if e.kind == "sla.changed"] == []


def test_an_internal_note_made_public_is_the_first_response_from_then_on(rig: Rig) -> None:
    # An agent writes an internal note at 10:20, then makes it public at 11:05 (JSM
    # comment_updated): the customer saw an answer at 11:05, 5 minutes late.
    rig.deliver(globex("2026-03-04T10:00:00Z"))
    rig.at("2026-03-04T10:20:00Z").deliver(reply("900", "2026-03-04T10:20:00Z", public=False))
    assert rig.stage() == ("on_track", 0)
    published = replace(
        reply("900", "2026-03-04T11:05:00Z", event_id="c-900-published"), kind="comment.updated"
    )
    rig.at("2026-03-04T11:05:00Z").deliver(published)
    assert rig.stage() == ("missed", 1)
    decision = rig.writes.calls[-1][2]
    assert decision.first_response is not None
    assert decision.first_response.margin == timedelta(minutes=5)
    # Edited again later: the first response stands where it was.
    calls = len(rig.writes.calls)
    again = replace(published, event_id="c-900-edited", occurred_at=z("2026-03-04T12:00:00Z"))
    rig.at("2026-03-04T12:00:00Z").deliver(again)
    assert len(rig.writes.calls) == calls
    (edited,) = [r for r in rig.store.history("900") if r.event_id == "c-900-edited"]
    assert edited.outcome == "recorded" and "already recorded" in edited.note
