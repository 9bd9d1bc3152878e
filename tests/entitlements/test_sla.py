"""The first-response clock after the due time is set: at risk, breached, escalated,
met or missed (entitlements/sla.py). Table-driven at the edges: the due instant itself,
the weekend, the global weekend and DST."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from entitlements.calendars import Calendar
from entitlements.rulebook import Rulebook
from entitlements.sla import (
    AT_RISK,
    BREACHED,
    MET,
    MISSED,
    ON_TRACK,
    TICK,
    Milestones,
    Status,
    first_response,
    milestones,
    next_change,
    status_at,
)
from mappings import load_mappings

LEVELS = ("Technical Support Engineer", "Director of Support", "Head of Customer Experience")


@pytest.fixture(scope="module")
def rulebook() -> Rulebook:
    return load_mappings()


def london(rulebook: Rulebook) -> Calendar:
    """Business hours 09:00-17:00 Europe/London, closed on English holidays (acme)."""
    return rulebook.calendar("business-hours", rulebook.account("acme"))


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_milestones_count_business_time_over_the_weekend(rulebook: Rulebook) -> None:
    # Friday 2026-03-06 16:00 London (UTC+0), 4 business hours: 1h on Friday, 3h Monday.
    m = milestones(
        london(rulebook),
        z("2026-03-06T16:00:00Z"),
        timedelta(hours=4),
        at_risk_fraction=0.75,
        escalation_step=1.0,
    )
    assert m.at_risk == z("2026-03-09T11:00:00Z")  # 3 of 4 business hours
    assert m.due == z("2026-03-09T12:00:00Z")
    assert m.steps == (m.due,)


def test_escalation_steps_are_each_a_further_share_of_the_target(rulebook: Rulebook) -> None:
    always = rulebook.calendar("24x7", None)
    m = milestones(
        always,
        z("2026-03-28T23:30:00Z"),  # the night Europe moves its clocks: 24x7 does not care
        timedelta(hours=1),
        at_risk_fraction=0.75,
        escalation_step=1.0,
        levels=LEVELS,
    )
    assert m.at_risk == z("2026-03-29T00:15:00Z")
    assert m.steps == (z("2026-03-29T00:30:00Z"), z("2026-03-29T01:30:00Z"))


def test_a_half_step_escalates_sooner(rulebook: Rulebook) -> None:
    m = milestones(
        rulebook.calendar("24x7", None),
        z("2026-01-01T00:00:00Z"),
        timedelta(hours=2),
        at_risk_fraction=0.5,
        escalation_step=0.5,
        levels=LEVELS,
    )
    assert (m.at_risk, m.steps) == (
        z("2026-01-01T01:00:00Z"),
        (z("2026-01-01T02:00:00Z"), z("2026-01-01T03:00:00Z")),
    )


@pytest.fixture
def clock() -> Milestones:
    return Milestones(
        started=z("2026-01-01T00:00:00Z"),
        at_risk=z("2026-01-01T00:45:00Z"),
        due=z("2026-01-01T01:00:00Z"),
        steps=(z("2026-01-01T01:00:00Z"), z("2026-01-01T02:00:00Z")),
        levels=LEVELS,
    )


@pytest.mark.parametrize(
    ("now", "responded", "expected"),
    [
        ("2026-01-01T00:00:00Z", None, Status(ON_TRACK)),
        ("2026-01-01T00:44:59Z", None, Status(ON_TRACK)),
        ("2026-01-01T00:45:00Z", None, Status(AT_RISK)),  # 75 % exactly
        ("2026-01-01T01:00:00Z", None, Status(AT_RISK)),  # the due instant: not yet late
        ("2026-01-01T01:00:00.000001Z", None, Status(BREACHED, 1)),
        ("2026-01-01T02:00:00Z", None, Status(BREACHED, 1)),
        ("2026-01-01T02:00:00.000001Z", None, Status(BREACHED, 2)),
        ("2026-01-09T00:00:00Z", None, Status(BREACHED, 2)),  # no level past the last
        # A response at the due instant meets the target; a microsecond later does not.
        ("2026-01-09T00:00:00Z", "2026-01-01T01:00:00Z", Status(MET)),
        ("2026-01-09T00:00:00Z", "2026-01-01T01:00:00.000001Z", Status(MISSED, 1)),
        ("2026-01-09T00:00:00Z", "2026-01-01T03:00:00Z", Status(MISSED, 2)),
        ("2026-01-01T00:10:00Z", "2026-01-01T00:05:00Z", Status(MET)),
    ],
)
def test_status_at(clock: Milestones, now: str, responded: str | None, expected: Status) -> None:
    assert status_at(clock, z(now), z(responded) if responded else None) == expected


def test_level_names(clock: Milestones) -> None:
    assert [Status(BREACHED, n).level_name(clock) for n in (0, 1, 2)] == list(LEVELS)
    assert Status(BREACHED, 1).level_name(replace(clock, levels=())) is None


def test_next_change_walks_every_stage_and_then_stops(clock: Milestones) -> None:
    now = clock.started
    seen = []
    while (change := next_change(clock, status_at(clock, now))) is not None:
        assert change > now
        now = change
        seen.append((now, status_at(clock, now)))
    assert seen == [
        (z("2026-01-01T00:45:00Z"), Status(AT_RISK)),
        (z("2026-01-01T01:00:00Z") + TICK, Status(BREACHED, 1)),
        (z("2026-01-01T02:00:00Z") + TICK, Status(BREACHED, 2)),
    ]
    assert next_change(clock, Status(MET)) is None
    assert next_change(clock, Status(MISSED, 1)) is None


def test_a_tier_without_levels_stops_after_the_breach(rulebook: Rulebook) -> None:
    m = milestones(
        rulebook.calendar("24x7", None),
        z("2026-01-01T00:00:00Z"),
        timedelta(hours=1),
        at_risk_fraction=0.75,
        escalation_step=1.0,
    )
    assert next_change(m, Status(BREACHED, 1)) is None
    assert Status(BREACHED, 1).level_name(m) is None


@pytest.mark.parametrize(
    ("created", "target_h", "responded", "met", "margin"),
    [
        # Met exactly at the due instant: no business time to spare.
        ("2026-03-06T16:00:00Z", 4, "2026-03-09T12:00:00Z", True, timedelta(0)),
        # Answered on Friday at 16:30: 3.5 business hours to spare (over the weekend).
        ("2026-03-06T16:00:00Z", 4, "2026-03-06T16:30:00Z", True, timedelta(hours=3.5)),
        # Answered on the weekend before a Monday due: the weekend is not business time.
        ("2026-03-06T16:00:00Z", 4, "2026-03-07T10:00:00Z", True, timedelta(hours=3)),
        # Missed by 90 business minutes, across the night.
        ("2026-03-09T15:00:00Z", 1, "2026-03-10T09:30:00Z", False, timedelta(hours=1.5)),
        # British Summer Time begins 2026-03-29: 09:00 London is 08:00 UTC from then.
        ("2026-03-27T16:00:00Z", 2, "2026-03-30T08:30:00Z", True, timedelta(minutes=30)),
    ],
)
def test_first_response_margin_in_business_time(
    rulebook: Rulebook, created: str, target_h: int, responded: str, met: bool, margin: timedelta
) -> None:
    calendar = london(rulebook)
    m = milestones(
        calendar, z(created), timedelta(hours=target_h), at_risk_fraction=0.75, escalation_step=1
    )
    result = first_response(calendar, m, z(responded))
    assert (result.met, result.margin) == (met, margin)


def test_the_global_weekend_holds_the_clock(rulebook: Rulebook) -> None:
    """24x5-global closes Friday 17:00 Los Angeles and opens Monday 10:00 Sydney."""
    calendar = rulebook.calendar("24x5-global", None)
    # Friday 2026-07-17 16:00 PDT = 23:00Z; 2h target: 1h on Friday, then Monday 10:00
    # AEST (Monday 2026-07-20 00:00Z) + 1h.
    m = milestones(
        calendar,
        z("2026-07-17T23:00:00Z"),
        timedelta(hours=2),
        at_risk_fraction=0.75,
        escalation_step=1.0,
    )
    assert m.at_risk == z("2026-07-20T00:30:00Z")
    assert m.due == z("2026-07-20T01:00:00Z")
    assert status_at(m, z("2026-07-19T12:00:00Z")) == Status(ON_TRACK)  # the weekend


def test_describe_says_met_or_missed_and_by_how_much(rulebook: Rulebook) -> None:
    calendar = london(rulebook)
    m = milestones(
        calendar,
        z("2026-03-09T09:00:00Z"),
        timedelta(hours=2),
        at_risk_fraction=0.75,
        escalation_step=1,
    )
    assert first_response(calendar, m, z("2026-03-09T09:20:00Z")).describe() == (
        "first response target met with 1h 40m of business time"
    )
    assert first_response(calendar, m, z("2026-03-09T14:00:00Z")).describe() == (
        "first response target missed by 3h of business time"
    )
