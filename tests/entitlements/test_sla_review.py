"""Review of the pure SLA and hours rules (issue 6): milestones at DST and weekend edges,
escalation with one or two levels, and entitlement judged at a ticket's opening. Tests
marked ``xfail(strict=True)`` show a bug and turn into an error once it is fixed."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from entitlements.decide import decide, followed
from entitlements.rulebook import Rulebook
from entitlements.sla import BREACHED, Status, milestones, next_change, status_at
from entitlements.tickets import OrganizationRef, Ticket
from mappings import BUNDLED, load_mappings
from tests.ledger_mappings import INITECH
from tests.ledger_mappings import rulebook as ledger_rulebook

H = 3600
LEVELS = ("Technical Support Engineer", "Director of Support", "Head of Customer Experience")


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def rulebook() -> Rulebook:
    return load_mappings()


def saas_levels(directory: Path, levels: list[str]) -> Rulebook:
    """The bundled mappings with the 24/7 SaaS tier's escalation levels replaced."""
    shutil.copytree(BUNDLED, directory)
    tiers_path = directory / "tiers.json"
    doc = json.loads(tiers_path.read_text())
    doc["tiers"]["saas-24x7"]["escalation_levels"] = levels
    tiers_path.write_text(json.dumps(doc))
    return load_mappings(directory)


def globex_ticket(created: str = "2026-03-04T10:00:00Z") -> Ticket:
    return Ticket(
        id="900",
        created_at=z(created),
        requester="dana@globex.example",
        organization=OrganizationRef("zendesk", "360002"),
        severity=1,
        vendor="zendesk",
    )


# -- DST and weekend edges (right, now pinned) --------------------------------------------


def test_at_risk_and_escalation_steps_cross_a_weekend_and_the_us_dst_change(
    rulebook: Rulebook,
) -> None:
    # Globex's business hours (America/New_York). Friday 2026-03-06 16:00 EST = 21:00Z;
    # the US moves to EDT on Sunday 03-08, so Monday 09:00 is 13:00Z, not 14:00Z.
    calendar = rulebook.calendar("business-hours", rulebook.account("globex"))
    m = milestones(
        calendar,
        z("2026-03-06T21:00:00Z"),
        timedelta(hours=2),
        at_risk_fraction=0.75,
        escalation_step=1.0,
        levels=LEVELS,
    )
    assert m.at_risk == z("2026-03-09T13:30:00Z")  # 1h Friday + 30 min Monday
    assert m.due == z("2026-03-09T14:00:00Z")
    assert m.steps == (z("2026-03-09T14:00:00Z"), z("2026-03-09T16:00:00Z"))  # 4 business h
    # The whole weekend is on track: no at-risk tag on Saturday.
    assert status_at(m, z("2026-03-07T12:00:00Z")).stage == "on_track"
    assert next_change(m, status_at(m, z("2026-03-07T12:00:00Z"))) == m.at_risk


def test_the_global_weekend_is_46_hours_when_only_the_us_has_moved_its_clocks(
    rulebook: Rulebook,
) -> None:
    # Friday 2026-03-06 17:00 PST (03-07 01:00Z) to Monday 03-09 10:00 AEDT (03-08 23:00Z).
    calendar = rulebook.calendar("24x5-global", None)
    m = milestones(
        calendar,
        z("2026-03-07T00:30:00Z"),  # Friday 16:30 Los Angeles: 30 min before the weekend
        timedelta(hours=2),
        at_risk_fraction=0.75,
        escalation_step=1.0,
        levels=LEVELS,
    )
    assert m.at_risk == z("2026-03-09T00:00:00Z")  # 30 min + 1h after Sunday 23:00Z
    assert m.due == z("2026-03-09T00:30:00Z")
    assert m.steps[1] == z("2026-03-09T02:30:00Z")


# -- escalation with one or two levels ---------------------------------------------------


def test_two_levels_escalate_once_at_the_breach_and_then_stop(tmp_path: Path) -> None:
    rulebook = saas_levels(tmp_path / "m", ["Support Engineer", "Duty Manager"])
    decision = decide(globex_ticket(), rulebook, z("2026-03-04T10:00:00Z"))
    m = decision.milestones
    assert m is not None and m.steps == (z("2026-03-04T11:00:00Z"),)
    assert decision.escalation_level == "Support Engineer"
    breached = status_at(m, z("2026-03-04T11:00:01Z"))
    assert breached == Status(BREACHED, 1)
    assert next_change(m, breached) is None
    out = followed(decision, breached, None, rulebook.tag_prefix)
    assert out.escalation_level == "Duty Manager"
    assert "tierdesk_escalation_2" in out.tags


def test_a_single_level_is_never_said_to_escalate(tmp_path: Path) -> None:
    rulebook = saas_levels(tmp_path / "m", ["Support Engineer"])
    decision = decide(globex_ticket(), rulebook, z("2026-03-04T10:00:00Z"))
    m = decision.milestones
    assert m is not None
    out = followed(decision, status_at(m, z("2026-03-04T12:00:00Z")), None, rulebook.tag_prefix)
    assert "tierdesk_sla_breached" in out.tags
    assert out.escalation_level == "Support Engineer"
    assert not [t for t in out.tags if t.startswith("tierdesk_escalation")]
    assert not [line for line in out.explanation if "escalated" in line]


# -- hours: entitlement judged at the ticket's opening ---------------------------------------


def initech_accounts(*bundles: tuple[float, str], used: float) -> list[dict[str, Any]]:
    account = copy.deepcopy(INITECH)
    account["subscriptions"][0]["bundles"] = [{"hours": h, "purchased": d} for h, d in bundles]
    account["subscriptions"][0]["hours_used"] = used
    return [account]


def initech_ticket(created: str) -> Ticket:
    return Ticket(
        id="701",
        created_at=z(created),
        requester="pat@initech.example",
        organization=OrganizationRef("zendesk", "360003"),
        severity=3,
        vendor="zendesk",
    )


def test_a_ticket_opened_while_exhausted_keeps_its_fallback_after_a_later_purchase(
    tmp_path: Path,
) -> None:
    # 40 h bought by September, 40 h used: exhausted. A bundle dated 09-10 (bought
    # later, or entered ahead of its date) is in the mappings.
    rulebook = ledger_rulebook(
        tmp_path,
        initech_accounts((20, "2026-02-01"), (20, "2026-08-01"), (20, "2026-09-10"), used=40),
    )
    ticket = initech_ticket("2026-09-05T00:00:00Z")
    used = {"initech": 40 * H}

    opened = decide(ticket, rulebook, z("2026-09-05T00:01:00Z"), hours_used=used)
    assert (opened.tier, opened.fallback) == ("select", True)
    assert "hours_exhausted" in opened.reasons

    # The same ticket re-decided after 09-10 (a sweep's at-risk event, a comment),
    # nothing changed on it; what it had left at opening is handed in, as the worker does.
    assert opened.hours is not None
    left = {"initech": opened.hours.balance_s}
    later = decide(
        ticket, rulebook, z("2026-09-11T00:00:00Z"), hours_used=used, hours_left_at_open=left
    )
    assert (later.tier, later.fallback) == ("select", True)  # today: payg, on a sweep event
    assert later.first_response_due == opened.first_response_due


def test_a_ticket_opened_with_hours_keeps_its_tier_once_they_run_out(tmp_path: Path) -> None:
    rulebook = ledger_rulebook(
        tmp_path, initech_accounts((20, "2026-02-01"), (20, "2026-08-01"), used=37)
    )
    ticket = initech_ticket("2026-09-05T00:00:00Z")
    opened = decide(ticket, rulebook, z("2026-09-05T00:01:00Z"), hours_used={"initech": 37 * H})
    assert (opened.tier, opened.hours and opened.hours.status) == ("payg", "low")
    later = decide(
        ticket,
        rulebook,
        z("2026-09-06T00:00:00Z"),
        hours_used={"initech": 45 * H},
        hours_left_at_open={"initech": 3 * H},  # 40 h bought, 37 used
    )
    assert (later.tier, later.fallback) == ("payg", False)
    assert later.hours is not None and later.hours.exhausted
    assert "hours_exhausted" in later.reasons
