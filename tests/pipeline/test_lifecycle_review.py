"""Review of the SLA lifecycle and the hours ledger (issue 6) through the real worker,
sweeper, store and ledger. Tests marked ``xfail(strict=True)`` show a bug: each fails
today and turns into an error ("XPASS(strict)") once the bug is fixed, so the marker
must then be removed. The rest pin behaviour that is right but was untested."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from store import NewEvent, SqliteStore
from tests.pipeline.test_hours_flow import Flow, initech
from tests.pipeline.test_lifecycle import Rig, globex, reply, z
from tests.pipeline.test_worker import TENANT
from webhooks.events import TicketEvent
from webhooks.live_mappings import LiveMappings

__all__ = ["bundled", "store"]  # fixtures shared with test_worker
from tests.pipeline.test_worker import bundled, store

H = 3600


@pytest.fixture
def rig(store: SqliteStore, bundled: LiveMappings) -> Rig:
    return Rig(store, bundled, "2026-03-04T10:00:00Z")


@pytest.fixture
def flow(tmp_path: Path, bundled: LiveMappings) -> Flow:
    return Flow(tmp_path, bundled)


def outcomes(store: SqliteStore, ticket: str) -> dict[str, str]:
    return {row.event_id: row.outcome for row in store.history(ticket)}


def queue(store: SqliteStore, event: TicketEvent, now: float) -> None:
    """Queue ``event`` as the intake does: with its snapshot time and whether it carries
    the whole ticket (`tests.pipeline.test_worker.put` leaves ``occurred_at`` at 0, which
    makes every follow-up look newer than any vendor event)."""
    store.put(
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
        now,
    )


def deliver(rig: Rig, event: TicketEvent) -> None:
    queue(rig.store, event, rig.clock.now)
    rig.drain()


def flow_deliver(flow: Flow, event: TicketEvent) -> None:
    queue(flow.store, event, flow.clock.now)
    flow.clock.advance(1)
    while flow.worker.run_once() is not None:
        pass


def initech_at(
    ticket_id: str, at: str, *, total_s: int | None = None, event_id: str = ""
) -> TicketEvent:
    return replace(initech(ticket_id, total_s=total_s, event_id=event_id), occurred_at=z(at))


# -- bugs ---------------------------------------------------------------------------------


def test_an_agents_edit_delivered_after_a_sweep_event_is_still_decided(rig: Rig) -> None:
    deliver(rig, globex("2026-03-04T10:00:00Z", severity=2))  # L2: 4h, at risk at 13:00
    assert rig.at("2026-03-04T13:00:00Z").sweep() == 1  # sla.changed, done at 13:00:00
    assert rig.stage() == ("at_risk", 0)

    # The agent raised it to L1 at 12:59:59; the webhook lands a few seconds later.
    raised = replace(
        globex("2026-03-04T10:00:00Z", severity=1),
        event_id="raise",
        kind="ticket.updated",
        occurred_at=z("2026-03-04T12:59:59Z"),
    )
    deliver(rig.at("2026-03-04T13:00:05Z"), raised)

    assert outcomes(rig.store, "900")["raise"] == "decided"  # today: "superseded"
    assert rig.stage() == ("breached", 2)
    assert rig.writes.calls[-1][2].severity == 1


# The agent's answer at 10:20: a reply, or an internal note made public then (JSM
# comment_updated: the customer saw it from that moment).
ANSWERS = {"reply": "comment.created", "note made public": "comment.updated"}


@pytest.mark.parametrize("kind", ANSWERS.values(), ids=ANSWERS.keys())
def test_a_first_response_before_the_first_decision_is_not_lost(rig: Rig, kind: str) -> None:
    # The ticket's first decision did not happen (e.g. dead-lettered on a mapping error
    # and replayed later): the agent's answer at 10:20 is processed first.
    answer = replace(reply("900", "2026-03-04T10:20:00Z"), kind=kind)
    deliver(rig.at("2026-03-04T10:20:00Z"), answer)
    assert rig.store.sla_clock(TENANT.id, "900") is None
    later = replace(
        globex("2026-03-04T10:00:00Z"),
        event_id="snapshot-1025",
        kind="ticket.updated",
        occurred_at=z("2026-03-04T10:25:00Z"),
    )
    deliver(rig.at("2026-03-04T10:25:00Z"), later)
    assert outcomes(rig.store, "900")["snapshot-1025"] == "decided"

    rig.at("2026-03-04T11:00:01Z").sweep()

    assert rig.stage() == ("met", 0)  # the 11:00 target was met at 10:20


def test_a_redecision_after_the_first_response_measures_it_against_the_new_due(
    rig: Rig,
) -> None:
    deliver(rig, globex("2026-03-04T10:00:00Z", severity=3))  # L3: 24h
    deliver(rig.at("2026-03-04T12:00:00Z"), reply("900", "2026-03-04T12:00:00Z"))
    answered = rig.writes.calls[-1][2].first_response
    assert answered is not None and answered.met

    # The agent raises it to L1 (1h, due 11:00): the 12:00 reply missed it by one hour.
    raised = replace(
        globex("2026-03-04T10:00:00Z", severity=1),
        event_id="raise",
        kind="ticket.updated",
        occurred_at=z("2026-03-04T12:30:00Z"),
    )
    deliver(rig.at("2026-03-04T12:30:00Z"), raised)
    assert rig.stage() == ("missed", 1)
    response = rig.writes.calls[-1][2].first_response
    assert response is not None
    assert not response.met
    assert response.margin.total_seconds() == H  # today: 22 h, the old margin
    assert response.describe() == "first response target missed by 1h of business time"


def test_hours_flags_follow_the_balance_back_and_forth(flow: Flow) -> None:
    flow_deliver(flow, initech_at("701", "2026-09-01T00:01:00Z"))  # 3 h of 40 left: low
    assert flow.last("701").hours is not None

    flow_deliver(flow, initech_at("702", "2026-09-01T00:02:00Z", total_s=4 * H, event_id="t1"))
    hours = flow.last("701").hours
    assert hours is not None and hours.status == "exhausted"

    flow_deliver(flow, initech_at("702", "2026-09-01T00:03:00Z", total_s=0, event_id="t2"))
    hours = flow.last("701").hours
    assert hours is not None and hours.status == "low"

    flow_deliver(flow, initech_at("702", "2026-09-01T00:04:00Z", total_s=4 * H, event_id="t3"))
    assert flow.ledger.totals("initech").used_s == 41 * H
    hours = flow.last("702").hours
    assert hours is not None and hours.status == "exhausted"
    hours = flow.last("701").hours
    assert hours is not None and hours.status == "exhausted"  # today: still "low"


def test_hours_flags_reach_an_open_ticket_already_answered(flow: Flow) -> None:
    flow_deliver(flow, initech_at("701", "2026-09-01T00:01:00Z"))
    flow_deliver(flow, reply("701", "2026-09-01T00:10:00Z"))
    clock = flow.store.sla_clock(TENANT.id, "701")
    assert clock is not None and clock.responded_us is not None

    flow_deliver(flow, initech_at("702", "2026-09-01T00:20:00Z", total_s=4 * H, event_id="t1"))

    hours = flow.last("701").hours
    assert hours is not None and hours.status == "exhausted"


# -- right, and now pinned ------------------------------------------------------------------


def test_lowering_severity_after_a_breach_moves_the_clock_back_from_creation(rig: Rig) -> None:
    deliver(rig, globex("2026-03-04T10:00:00Z"))  # L1: due 11:00
    rig.at("2026-03-04T12:00:01Z").sweep()
    assert rig.stage() == ("breached", 2)

    lowered = replace(
        globex("2026-03-04T10:00:00Z", severity=3),  # L3: 24h, due tomorrow 10:00
        event_id="lower",
        kind="ticket.updated",
        occurred_at=z("2026-03-04T12:30:00Z"),
    )
    deliver(rig.at("2026-03-04T12:30:00Z"), lowered)

    # Retroactive from creation (issue 6): no longer breached, back at the first level.
    assert rig.stage() == ("on_track", 0)
    decision = rig.writes.calls[-1][2]
    assert decision.severity == 3
    assert decision.escalation_level == "Technical Support Engineer"
    assert not {t for t in decision.tags if "breached" in t or "escalation" in t}
    # And the sweep follows the new due time, escalating again only from it.
    assert rig.at("2026-03-05T10:00:00Z").sweep() == 1  # at risk since 04:00
    assert rig.stage() == ("at_risk", 0)
    assert rig.at("2026-03-05T10:00:01Z").sweep() == 1
    assert rig.stage() == ("breached", 1)


def test_a_replayed_sla_changed_event_writes_nothing_again(rig: Rig) -> None:
    deliver(rig, globex("2026-03-04T10:00:00Z"))
    assert rig.at("2026-03-04T10:45:00Z").sweep() == 1
    calls = len(rig.writes.calls)
    (changed,) = [e for e in rig.store.events(limit=100) if e.kind == "sla.changed"]

    assert rig.store.replay(rig.clock.now, event=str(changed.id)) == 1
    rig.drain()

    assert len(rig.writes.calls) == calls
    assert rig.stage() == ("at_risk", 0)


def test_a_follow_up_for_a_removed_tenant_is_a_dead_letter_not_a_retry_loop(rig: Rig) -> None:
    deliver(rig, globex("2026-03-04T10:00:00Z"))
    rig.worker.settings = replace(rig.worker.settings, tenants={})
    assert rig.at("2026-03-04T10:45:00Z").sweeper.run_once().queued == 1
    rig.drain()
    (changed,) = [e for e in rig.store.events(limit=100) if e.kind == "sla.changed"]
    assert changed.state == "dead"
    assert "no longer configured" in (changed.last_error or "")


def test_a_ticket_no_longer_covered_stops_its_clock(rig: Rig) -> None:
    deliver(rig, globex("2026-03-04T10:00:00Z"))
    # Globex's 24/7 SaaS tier covers every product; its requester moves to an unknown
    # domain with a product the default tier (Select) excludes: no SLA.
    gone = replace(
        globex("2026-03-04T10:00:00Z"),
        event_id="not-covered",
        kind="ticket.updated",
        occurred_at=z("2026-03-04T10:10:00Z"),
    )
    assert gone.ticket is not None
    gone = replace(
        gone,
        ticket=replace(
            gone.ticket, requester="x@nowhere.example", organization=None, product="trello"
        ),
    )
    deliver(rig.at("2026-03-04T10:10:00Z"), gone)
    assert rig.writes.calls[-1][2].covered is False
    assert rig.stage() == ("not_covered", 0)
    calls = len(rig.writes.calls)
    assert rig.at("2026-03-05T10:00:00Z").sweep() == 0
    assert len(rig.writes.calls) == calls
