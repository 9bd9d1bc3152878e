"""The calendars' lazy path: weeks worked out only when asked, shared between calendars.

A calendar builds the weeks a question needs, walks a short target week by week and a
long one by blocks of 64 weeks, and shares the weeks no holiday falls in with the bare
calendar of its zone (`WeeklyCalendar.with_holidays`). None of that may change an
answer. So every question here is asked of

* a *cold* calendar (new for that one question, as after a mappings reload),
* one *warm* calendar that has answered everything before, in a shuffled order,
* calendars forced to walk only (never a block) and to use blocks at once,
* and a calendar sharing a warm bare one,

and the answers must be identical, in both hemispheres' DST changes, across the
64-week block boundaries and the switch from walking to blocks. The answers themselves
are checked against hand-worked literals and the minute-stepping reference in
test_calendars.py; here, that the ways of reaching them agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entitlements import calendars
from entitlements.calendars import Boundary, HolidaySet, Span, WeeklyCalendar, zone
from entitlements.errors import CalendarError

TINY = timedelta(microseconds=1)
ENGLAND = HolidaySet(country="GB", subdivision="ENG")
NSW = HolidaySet(country="AU", subdivision="NSW")
OWN_DATES = HolidaySet(
    dates=frozenset({date(2026, 3, 30), date(2026, 10, 5), date(2027, 1, 4)}),
    country="GB",
    subdivision="ENG",
)
WEEK0 = datetime(1970, 1, 5, tzinfo=UTC)  # the calendars' week 0 starts this Monday


def spans_in(zone_name: str, windows: tuple[tuple[int, int, int, int], ...]) -> list[Span]:
    tz = zone(zone_name)
    return [Span(Boundary(od, om, tz), Boundary(cd, cm, tz)) for od, om, cd, cm in windows]


WEEKDAYS_9_TO_5 = tuple((d, 540, d, 1020) for d in range(5))
# Crosses midnight on the nights clocks change, and the week's end (Sunday to Monday).
NIGHTS = tuple((d, 1320, (d + 1) % 7, 360) for d in range(7))
# Opens inside the gap (02:30 on the spring-forward Sunday) and the repeated hour.
SMALL_HOURS = ((6, 150, 6, 210), (0, 60, 0, 150))

CALENDARS: dict[str, Callable[[], list[Span]]] = {
    "london-9-5": lambda: spans_in("Europe/London", WEEKDAYS_9_TO_5),
    "sydney-9-5": lambda: spans_in("Australia/Sydney", WEEKDAYS_9_TO_5),
    "london-nights": lambda: spans_in("Europe/London", NIGHTS),
    "sydney-nights": lambda: spans_in("Australia/Sydney", NIGHTS),
    "santiago-small-hours": lambda: spans_in("America/Santiago", SMALL_HOURS),
    "london-small-hours": lambda: spans_in("Europe/London", SMALL_HOURS),
    # Mixed zones: opens Monday 10:00 Sydney, closes Friday 17:00 Los Angeles.
    "24x5-global": lambda: [
        Span(
            Boundary(0, 600, zone("Australia/Sydney")),
            Boundary(4, 1020, zone("America/Los_Angeles")),
        )
    ],
}
HOLIDAYS = {
    "london-9-5": OWN_DATES,
    "sydney-9-5": NSW,
    "london-nights": ENGLAND,
    "sydney-nights": NSW,
    "santiago-small-hours": HolidaySet(country="CL"),
    "london-small-hours": ENGLAND,
    "24x5-global": HolidaySet(dates=frozenset({date(2026, 12, 28)})),
}


def week_start(week: int) -> datetime:
    return WEEK0 + timedelta(weeks=week)


def starts() -> list[datetime]:
    """Instants around both hemispheres' DST changes of 2026 and 2027, and around the
    Mondays where one 64-week block ends and the next begins (weeks 2944 and 3008:
    2026-06-01 and 2027-08-23)."""
    changes = [
        "2026-03-29T00:30:00Z",  # London spring forward (01:00 GMT)
        "2026-10-25T00:30:00Z",  # London falls back (01:00 GMT)
        "2026-04-04T15:30:00Z",  # Sydney falls back (16:00Z, 03:00 AEDT)
        "2026-10-03T15:30:00Z",  # Sydney springs forward (16:00Z, 02:00 AEST)
        "2026-04-05T02:30:00Z",  # Santiago falls back (03:00Z)
        "2026-09-06T03:30:00Z",  # Santiago springs forward (04:00Z)
        "2027-03-28T00:45:00Z",
        "2027-04-03T15:45:00Z",
    ]
    out = [datetime.fromisoformat(c) + timedelta(minutes=m) for c in changes for m in (0, 40, 95)]
    for week in (2944, 3008):
        for hours in (-30, -1, 0, 1, 9, 30):
            out.append(week_start(week) + timedelta(hours=hours, minutes=7))
    return out


# Covered hours in an ordinary week of each calendar, to scale the targets.
WEEK_HOURS = {
    "london-9-5": 40,
    "sydney-9-5": 40,
    "london-nights": 56,
    "sydney-nights": 56,
    "santiago-small-hours": 2.5,
    "london-small-hours": 2.5,
    "24x5-global": 96,
}


def targets(name: str) -> list[timedelta]:
    """From a minute to beyond the 8 weeks walked before blocks take over (either side
    of that switch), and past one whole block of 64 weeks and then some."""
    week = timedelta(hours=WEEK_HOURS[name])
    return [
        timedelta(minutes=1),
        timedelta(hours=1),
        week / 5,
        week * 2,
        week * 8 - timedelta(hours=1),
        week * 8 + timedelta(hours=1),
        week * 30,
        week * 65,
        week * 150,
    ]


def answers(cal: WeeklyCalendar, start: datetime, target: timedelta) -> tuple[object, ...]:
    due = cal.due(start, target)
    return (
        due,
        cal.elapsed(start, due),
        cal.elapsed(start - timedelta(days=3), start + target * 2),
        cal.is_open(start),
        cal.is_open(due - TINY),
    )


def cases(name: str) -> Iterator[tuple[datetime, timedelta]]:
    for start in starts():
        for target in targets(name):
            yield start, target


@pytest.mark.parametrize("name", list(CALENDARS))
@pytest.mark.parametrize("holidays", [False, True], ids=["no-holidays", "holidays"])
def test_cold_warm_walked_blocked_and_shared_answers_are_identical(
    name: str, holidays: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_spans = CALENDARS[name]
    chosen = HOLIDAYS[name] if holidays else HolidaySet()

    def fresh() -> WeeklyCalendar:
        return WeeklyCalendar(name, make_spans(), holidays=chosen)

    all_cases = list(cases(name))
    cold = {case: answers(fresh(), *case) for case in all_cases}

    warm = fresh()
    shuffled = all_cases[:]
    random.Random(7).shuffle(shuffled)
    for case in shuffled:
        assert answers(warm, *case) == cold[case], case
    for case in all_cases:  # and again, everything now built
        assert answers(warm, *case) == cold[case], case

    bare = WeeklyCalendar(name, make_spans())
    for case in shuffled[::3]:  # the zone's bare calendar partly warm already
        answers(bare, *case)
    shared = bare.with_holidays(chosen)
    for case in all_cases:
        assert answers(shared, *case) == cold[case], case

    monkeypatch.setattr(calendars, "_WALK", 10**6)  # never a block
    walked = fresh()
    for case in shuffled[::2]:
        assert answers(walked, *case) == cold[case], case
    monkeypatch.setattr(calendars, "_WALK", 0)  # blocks from the first week on
    blocked = fresh()
    for case in shuffled[1::2]:
        assert answers(blocked, *case) == cold[case], case


def test_a_cold_calendar_builds_only_the_weeks_a_short_target_needs() -> None:
    """What makes the first decisions after a reload cheap: an hour's target from a
    Friday evening works out that week and the next, not a block of 64 weeks."""
    cal = WeeklyCalendar("london-9-5", CALENDARS["london-9-5"](), holidays=ENGLAND)
    due = cal.due(datetime(2026, 3, 6, 18, tzinfo=UTC), timedelta(hours=1))
    assert due == datetime(2026, 3, 9, 10, tzinfo=UTC)
    assert len(cal._weeks) <= 3 and not cal._blocks
    # A long target switches to blocks after 8 weeks, and the blocks are kept.
    cal.due(datetime(2026, 3, 6, 18, tzinfo=UTC), timedelta(days=400))
    assert cal._blocks


def test_a_shared_calendar_reuses_the_bare_weeks_without_holidays() -> None:
    bare = WeeklyCalendar("london-9-5", CALENDARS["london-9-5"]())
    monday = datetime(2026, 3, 2, 9, tzinfo=UTC)
    bare.due(monday, timedelta(hours=1))
    one = bare.with_holidays(OWN_DATES)
    other = bare.with_holidays(ENGLAND)
    assert one.due(monday, timedelta(hours=1)) == other.due(monday, timedelta(hours=1))
    week = next(iter(bare._weeks))
    assert one._weeks[week] is bare._weeks[week] is other._weeks[week]
    # Monday 5 October 2026 (BST) is one of OWN_DATES only; no English holiday that
    # week: that week is the first calendar's own. From 10:00 BST, an hour is 11:00 BST
    # = 10:00Z, or, closed that day, Tuesday 09:00 BST + 1 h = 09:00Z.
    own_day = datetime(2026, 10, 5, 9, tzinfo=UTC)
    assert one.due(own_day, timedelta(hours=1)) == datetime(2026, 10, 6, 9, tzinfo=UTC)
    assert other.due(own_day, timedelta(hours=1)) == datetime(2026, 10, 5, 10, tzinfo=UTC)
    week, data = one._locate(calendars.to_us(own_day))
    assert data is not bare._week(week) and other._week(week) is bare._week(week)
    assert bare.with_holidays(HolidaySet()) is bare


def test_sharing_refuses_a_calendar_that_is_not_bare() -> None:
    with_holidays = WeeklyCalendar("x", CALENDARS["london-9-5"](), holidays=ENGLAND)
    with pytest.raises(CalendarError):
        with_holidays.with_holidays(NSW)
    other_spans = WeeklyCalendar("y", CALENDARS["sydney-9-5"]())
    with pytest.raises(CalendarError):
        WeeklyCalendar("x", CALENDARS["london-9-5"](), holidays=ENGLAND, bare=other_spans)


MINUTES_2026_2028 = int((datetime(2028, 1, 1) - datetime(2026, 1, 1)).total_seconds() // 60)


@settings(max_examples=60, deadline=None, database=None)
@given(
    name=st.sampled_from(list(CALENDARS)),
    holidays=st.booleans(),
    questions=st.lists(
        st.tuples(
            st.integers(0, MINUTES_2026_2028),
            st.floats(0.001, 100),  # weeks of covered time
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_property_any_order_of_questions_gives_the_cold_answers(
    name: str, holidays: bool, questions: list[tuple[int, int]]
) -> None:
    """One calendar asked a sequence of questions answers each as a new one would."""
    chosen = HOLIDAYS[name] if holidays else HolidaySet()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    shared_bare = WeeklyCalendar(name, CALENDARS[name]())
    warm = WeeklyCalendar(name, CALENDARS[name](), holidays=chosen)
    shared = shared_bare.with_holidays(chosen)
    for offset, weeks in questions:
        start = base + timedelta(minutes=offset)
        target = timedelta(minutes=round(weeks * WEEK_HOURS[name] * 60) or 1)
        cold = answers(WeeklyCalendar(name, CALENDARS[name](), holidays=chosen), start, target)
        assert answers(warm, start, target) == cold
        assert answers(shared, start, target) == cold
        answers(shared_bare, start - timedelta(days=9), target)  # the bare one moves on
