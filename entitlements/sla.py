"""Following a ticket's first-response target until it is met or breached (RULES.md §2,
§3): when it is at risk, when it breaches, when each escalation level begins, and how
a first response fared.

Every milestone is an instant fixed when the ticket is decided, measured in the
business time of the ticket's calendar: "at risk at 75 %" is 75 % of the target's
*business* time, so a Friday-evening ticket is not at risk over the weekend. A sweep
then only compares instants with the clock, which is what makes sweeping 100,000 open
tickets cheap: no calendar is consulted.

Boundaries: a response at the due instant meets the target (it was "within" it), so a
ticket breaches only once the clock is *past* the due instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from entitlements.calendars import Calendar

# The smallest step of the calendars' integer arithmetic: "past the due instant".
TICK = timedelta(microseconds=1)

ON_TRACK = "on_track"
AT_RISK = "at_risk"
BREACHED = "breached"
MET = "met"
MISSED = "missed"


@dataclass(frozen=True, slots=True)
class Milestones:
    """When a ticket's first-response clock reaches each stage.

    ``steps[k]`` is the instant after which escalation level ``k + 1`` is reached:
    ``steps[0]`` is the due instant (the breach), each further step another
    ``escalation_step`` of the target later. A tier without escalation levels has the
    breach as its only step.
    """

    started: datetime
    at_risk: datetime
    due: datetime
    steps: tuple[datetime, ...]
    levels: tuple[str, ...] = ()  # escalation level names, first = where tickets start


@dataclass(frozen=True, slots=True)
class Status:
    stage: str  # on_track, at_risk, breached, met, missed
    level: int = 0  # escalation steps taken: 0 until the breach

    def level_name(self, milestones: Milestones) -> str | None:
        if not milestones.levels:
            return None
        return milestones.levels[min(self.level, len(milestones.levels) - 1)]


@dataclass(frozen=True, slots=True)
class FirstResponse:
    """How the first public reply by an agent fared against the target."""

    at: datetime
    met: bool
    # Business time to spare (met) or by which it was missed, on the ticket's calendar.
    margin: timedelta

    def describe(self) -> str:
        how = "met" if self.met else "missed"
        word = "with" if self.met else "by"
        return f"first response target {how} {word} {_business(self.margin)} of business time"


def milestones(
    calendar: Calendar,
    started: datetime,
    target: timedelta,
    *,
    at_risk_fraction: float,
    escalation_step: float,
    levels: tuple[str, ...] = (),
) -> Milestones:
    due = calendar.due(started, target)
    steps = [due]
    for k in range(1, max(len(levels) - 1, 0)):
        steps.append(calendar.due(started, target + _scaled(target, k * escalation_step)))
    return Milestones(
        started=started,
        at_risk=calendar.due(started, _scaled(target, at_risk_fraction)),
        due=due,
        steps=tuple(steps),
        levels=levels,
    )


def _scaled(span: timedelta, fraction: float) -> timedelta:
    # Whole microseconds, rounded, so that the same target always gives the same instant.
    return timedelta(microseconds=round(span / TICK * fraction))


def status_at(m: Milestones, now: datetime, responded: datetime | None = None) -> Status:
    """The stage at ``now``; once responded, met or missed for good, with the level
    the ticket had reached by then."""
    if responded is not None:
        level = _steps_past(m, responded)
        return Status(MET if responded <= m.due else MISSED, level)
    if now > m.due:
        return Status(BREACHED, _steps_past(m, now))
    if now >= m.at_risk:
        return Status(AT_RISK)
    return Status(ON_TRACK)


def _steps_past(m: Milestones, at: datetime) -> int:
    return sum(1 for step in m.steps if at > step)


def next_change(m: Milestones, status: Status) -> datetime | None:
    """The first instant at which `status_at` gives something else, or None when nothing
    more will happen without a response (met, missed, or the last step taken)."""
    if status.stage in (MET, MISSED):
        return None
    if status.stage == ON_TRACK:
        return m.at_risk
    if status.stage == AT_RISK:
        return m.due + TICK
    if status.level < len(m.steps):
        return m.steps[status.level] + TICK
    return None


def first_response(calendar: Calendar, m: Milestones, at: datetime) -> FirstResponse:
    if at <= m.due:
        return FirstResponse(at, True, calendar.elapsed(at, m.due))
    return FirstResponse(at, False, calendar.elapsed(m.due, at))


def _business(span: timedelta) -> str:
    minutes = round(span.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours}h {minutes}m"
    return f"{hours}h" if hours else f"{minutes}m"
