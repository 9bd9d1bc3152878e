"""Tests for entitlements.calendars (RULES.md §2, "Calendars").

Every expected instant below is a literal ISO 8601 UTC string worked out by hand from
the zones' rules (the comments give the local readings), never computed by the module.
The property tests compare against a deliberately naive reference that walks the time
line minute by minute and builds span occurrences on its own.

DST dates used (2026): US starts Sun 8 Mar, ends Sun 1 Nov; EU/London starts Sun 29 Mar,
ends Sun 25 Oct; Sydney ends Sun 5 Apr (03:00 AEDT -> 02:00 AEST), starts Sun 4 Oct
(02:00 AEST -> 03:00 AEDT); Havana jumps at midnight (Sun 8 Mar 00:00 -> 01:00, Sun 1 Nov
01:00 -> 00:00); Beirut Sun 29 Mar 00:00 -> 01:00 and Sat 24 Oct 24:00 -> 23:00.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate, pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from entitlements.calendars import (
    AlwaysOpen,
    Boundary,
    Calendar,
    HolidaySet,
    Span,
    WeeklyCalendar,
    wall_to_us,
    zone,
)
from entitlements.errors import CalendarError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
TINY = timedelta(microseconds=1)

SYDNEY = "Australia/Sydney"
LOS_ANGELES = "America/Los_Angeles"
LONDON = "Europe/London"
NEW_YORK = "America/New_York"
HAVANA = "America/Havana"
BEIRUT = "Asia/Beirut"


# -- helpers -----------------------------------------------------------------------------


def utc(text: str) -> datetime:
    """An aware UTC instant from a literal such as '2026-01-10T01:00:00Z'."""
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() == timedelta(0), f"test literal {text!r} must be UTC"
    return parsed.astimezone(UTC)


def iso(instant: datetime) -> str:
    """The instant as an ISO UTC literal, so failures show readable strings."""
    text = instant.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def micros(instant: datetime) -> int:
    """Microseconds since the epoch, computed here rather than by the module under test."""
    return (instant - EPOCH) // TINY


def global_24x5() -> WeeklyCalendar:
    """Open Monday 10:00 Sydney to Friday 17:00 Los Angeles (RULES.md §2)."""
    opens = Boundary(0, 600, zone(SYDNEY))
    closes = Boundary(4, 1020, zone(LOS_ANGELES))
    return WeeklyCalendar("24x5-global", [Span(opens, closes)])


def daily(
    zone_name: str,
    windows: tuple[tuple[int, int], ...],
    days: range = range(5),
    holidays: HolidaySet | None = None,
) -> WeeklyCalendar:
    """``windows`` (open minute, close minute) on each of ``days`` (0 = Monday) in one zone."""
    tz = zone(zone_name)
    spans = [Span(Boundary(d, o, tz), Boundary(d, c, tz)) for d in days for o, c in windows]
    if holidays is None:
        return WeeklyCalendar(f"hours-{zone_name}", spans)
    return WeeklyCalendar(f"hours-{zone_name}", spans, holidays=holidays)


def business_hours(zone_name: str, holidays: HolidaySet | None = None) -> WeeklyCalendar:
    """Monday to Friday 09:00-17:00 in ``zone_name``."""
    return daily(zone_name, ((540, 1020),), holidays=holidays)


def weekly(zone_name: str, *spans: tuple[int, int, int, int]) -> WeeklyCalendar:
    """Spans given as (open weekday, open minute, close weekday, close minute), one zone."""
    tz = zone(zone_name)
    built = [Span(Boundary(od, om, tz), Boundary(cd, cm, tz)) for od, om, cd, cm in spans]
    return WeeklyCalendar(f"weekly-{zone_name}", built)


# -- 1. the global 24x5 week -------------------------------------------------------------

# (weekend's Friday, close = Fri 17:00 LA, open = Mon 10:00 Sydney, hours closed)
WEEKENDS = [
    # PST (-8) and AEDT (+11): 46 h.
    pytest.param("2026-01-10T01:00:00Z", "2026-01-11T23:00:00Z", 46, id="2026-01-09-46h"),
    pytest.param("2025-12-27T01:00:00Z", "2025-12-28T23:00:00Z", 46, id="2025-12-26-46h-new-year"),
    pytest.param("2028-02-26T01:00:00Z", "2028-02-27T23:00:00Z", 46, id="2028-02-25-46h-leap"),
    # US DST starts Sun 8 Mar inside this weekend, but both ends still read PST / AEDT.
    pytest.param("2026-03-07T01:00:00Z", "2026-03-08T23:00:00Z", 46, id="2026-03-06-46h-us-dst"),
    # PDT (-7) and AEDT (+11): 47 h.
    pytest.param("2026-03-14T00:00:00Z", "2026-03-15T23:00:00Z", 47, id="2026-03-13-47h"),
    pytest.param("2026-03-28T00:00:00Z", "2026-03-29T23:00:00Z", 47, id="2026-03-27-47h"),
    # Sydney DST ends Sun 5 Apr inside this weekend: Monday opens on AEST (+10), 48 h.
    pytest.param("2026-04-04T00:00:00Z", "2026-04-06T00:00:00Z", 48, id="2026-04-03-48h-syd-dst"),
    # PDT and AEST: 48 h.
    pytest.param("2026-07-11T00:00:00Z", "2026-07-13T00:00:00Z", 48, id="2026-07-10-48h"),
    pytest.param("2026-09-26T00:00:00Z", "2026-09-28T00:00:00Z", 48, id="2026-09-25-48h"),
    # Sydney DST starts Sun 4 Oct inside this weekend: Monday opens on AEDT, 47 h.
    pytest.param("2026-10-03T00:00:00Z", "2026-10-04T23:00:00Z", 47, id="2026-10-02-47h-syd-dst"),
    # US DST ends Sun 1 Nov inside this weekend: Friday closed on PDT, 47 h.
    pytest.param("2026-10-31T00:00:00Z", "2026-11-01T23:00:00Z", 47, id="2026-10-30-47h-us-dst"),
    pytest.param("2026-11-07T01:00:00Z", "2026-11-08T23:00:00Z", 46, id="2026-11-06-46h"),
]


@pytest.mark.parametrize(("closes", "opens", "hours"), WEEKENDS)
def test_24x5_weekend_instants_are_half_open(closes: str, opens: str, hours: int) -> None:
    cal = global_24x5()
    close_at, open_at = utc(closes), utc(opens)
    # Self-check of the hand-worked literals: the weekend length the rules promise.
    assert open_at - close_at == timedelta(hours=hours)
    # [open, close) is covered: the closing instant itself is already the weekend.
    assert cal.is_open(close_at - TINY)
    assert not cal.is_open(close_at)
    assert not cal.is_open(close_at + (open_at - close_at) / 2)
    assert not cal.is_open(open_at - TINY)
    assert cal.is_open(open_at)
    assert cal.is_open(open_at + TINY)
    assert cal.elapsed(close_at, open_at) == timedelta(0)
    assert cal.elapsed(close_at - HOUR, open_at + HOUR) == 2 * HOUR


@pytest.mark.parametrize(
    ("start", "target_minutes", "expected"),
    [
        # Fri 16:30 PST, 60 min: 30 min before the close, 30 min after Mon 10:00 AEDT.
        pytest.param("2026-01-10T00:30:00Z", 60, "2026-01-11T23:30:00Z", id="fri-1630-winter"),
        # Fri 16:30 PDT; Monday 10:00 AEST.
        pytest.param("2026-07-10T23:30:00Z", 60, "2026-07-13T00:30:00Z", id="fri-1630-summer"),
        # US DST starts during the weekend (close on PST, open on AEDT).
        pytest.param("2026-03-07T00:30:00Z", 60, "2026-03-08T23:30:00Z", id="fri-1630-us-dst"),
        # Sydney DST ends during the weekend (close on PDT, open on AEST).
        pytest.param("2026-04-03T23:30:00Z", 60, "2026-04-06T00:30:00Z", id="fri-1630-syd-dst"),
        # US DST ends during the weekend (close on PDT, open on AEDT).
        pytest.param("2026-10-30T23:30:00Z", 60, "2026-11-01T23:30:00Z", id="fri-1630-us-end"),
        # A target ending exactly at Fri 17:00 LA is due then, not on Monday.
        pytest.param("2026-01-10T00:00:00Z", 60, "2026-01-10T01:00:00Z", id="ends-at-close"),
        pytest.param("2026-07-10T23:00:00Z", 60, "2026-07-11T00:00:00Z", id="ends-at-close-pdt"),
        # One minute more spills to Monday 10:01 AEDT.
        pytest.param("2026-01-10T00:00:00Z", 61, "2026-01-11T23:01:00Z", id="one-min-past-close"),
        # Opened during the weekend: counts from Monday 10:00 Sydney.
        pytest.param("2026-01-10T12:00:00Z", 30, "2026-01-11T23:30:00Z", id="opened-saturday"),
        pytest.param("2026-01-10T01:00:00Z", 1, "2026-01-11T23:01:00Z", id="opened-at-close"),
        pytest.param("2026-01-11T23:00:00Z", 1, "2026-01-11T23:01:00Z", id="opened-at-open"),
        # Mon 10:00 AEDT to Fri 17:00 PST is 5 days 2 hours = 122 h: due at that close.
        pytest.param("2026-01-11T23:00:00Z", 122 * 60, "2026-01-17T01:00:00Z", id="full-week"),
        # 121 h (Mon 00:00Z..Fri 17:00 PST) + 122 h the next week, then 1 h more.
        pytest.param("2026-01-05T00:00:00Z", 243 * 60, "2026-01-17T01:00:00Z", id="two-weeks"),
        pytest.param("2026-01-05T00:00:00Z", 244 * 60, "2026-01-19T00:00:00Z", id="two-weeks+1h"),
        # Five weeks of 121 h (46 h and 47 h weekends), then 10 h after Mon 6 Apr 10:00 AEST.
        pytest.param("2026-03-02T00:00:00Z", 615 * 60, "2026-04-06T10:00:00Z", id="five-weeks"),
        # A zero target is due at once, even while closed.
        pytest.param("2026-01-10T12:00:00Z", 0, "2026-01-10T12:00:00Z", id="zero-target"),
    ],
)
def test_24x5_due(start: str, target_minutes: int, expected: str) -> None:
    assert iso(global_24x5().due(utc(start), target_minutes * MINUTE)) == expected


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        # Fri 16:00 PST to Mon 11:00 AEDT: one hour each side of the weekend.
        pytest.param("2026-01-10T00:00:00Z", "2026-01-12T00:00:00Z", 2, id="across-46h-weekend"),
        # Fri 16:00 PDT to Mon 11:00 AEST.
        pytest.param("2026-07-10T23:00:00Z", "2026-07-13T01:00:00Z", 2, id="across-48h-weekend"),
        # Fri 16:00 PDT to Mon 11:00 AEDT over the US fall-back weekend.
        pytest.param("2026-10-30T23:00:00Z", "2026-11-02T00:00:00Z", 2, id="across-us-dst-end"),
        # A whole UTC week minus a 46 h / 48 h weekend.
        pytest.param("2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z", 122, id="week-winter"),
        pytest.param("2026-07-06T00:00:00Z", "2026-07-13T00:00:00Z", 120, id="week-summer"),
        pytest.param("2026-03-02T00:00:00Z", "2026-04-06T10:00:00Z", 615, id="five-weeks"),
        pytest.param("2026-01-10T02:00:00Z", "2026-01-11T22:00:00Z", 0, id="inside-weekend"),
        pytest.param("2026-01-12T00:00:00Z", "2026-01-10T00:00:00Z", 0, id="end-before-start"),
    ],
)
def test_24x5_elapsed(start: str, end: str, hours: int) -> None:
    assert global_24x5().elapsed(utc(start), utc(end)) == timedelta(hours=hours)


def test_24x5_accepts_any_aware_zone_for_input() -> None:
    # Fri 16:30 in Los Angeles given as a local aware datetime, not as UTC.
    start = datetime(2026, 1, 9, 16, 30, tzinfo=ZoneInfo(LOS_ANGELES))
    assert iso(global_24x5().due(start, 60 * MINUTE)) == "2026-01-11T23:30:00Z"


# -- 2. business hours in a region ---------------------------------------------------------


@pytest.mark.parametrize(
    ("zone_name", "start", "target_minutes", "expected"),
    [
        # London, GMT (+0) in January.
        pytest.param(LONDON, "2026-01-12T09:00:00Z", 480, "2026-01-12T17:00:00Z", id="ldn-480"),
        pytest.param(LONDON, "2026-01-12T09:00:00Z", 481, "2026-01-13T09:01:00Z", id="ldn-481"),
        pytest.param(LONDON, "2026-01-16T16:00:00Z", 120, "2026-01-19T10:00:00Z", id="ldn-fri"),
        pytest.param(LONDON, "2026-01-17T12:00:00Z", 30, "2026-01-19T09:30:00Z", id="ldn-sat"),
        pytest.param(LONDON, "2026-01-12T08:00:00Z", 60, "2026-01-12T10:00:00Z", id="ldn-early"),
        pytest.param(LONDON, "2026-01-12T17:00:00Z", 1, "2026-01-13T09:01:00Z", id="ldn-at-close"),
        # BST (+1): Mon 09:00 BST = 08:00Z.
        pytest.param(LONDON, "2026-07-06T08:00:00Z", 480, "2026-07-06T16:00:00Z", id="ldn-bst"),
        # Fri 16:00 GMT; clocks go forward Sun 29 Mar; Mon 10:00 BST.
        pytest.param(LONDON, "2026-03-27T16:00:00Z", 120, "2026-03-30T09:00:00Z", id="ldn-spring"),
        # Fri 16:00 BST; clocks go back Sun 25 Oct; Mon 10:00 GMT.
        pytest.param(LONDON, "2026-10-23T15:00:00Z", 120, "2026-10-26T10:00:00Z", id="ldn-autumn"),
        # Five business days from Mon 09:00 GMT: Fri 17:00 GMT; one minute more: Mon 09:01 BST.
        pytest.param(LONDON, "2026-03-23T09:00:00Z", 2400, "2026-03-27T17:00:00Z", id="ldn-5d"),
        pytest.param(LONDON, "2026-03-23T09:00:00Z", 2401, "2026-03-30T08:01:00Z", id="ldn-5d+1"),
        # New York, EST (-5).
        pytest.param(NEW_YORK, "2026-01-12T14:00:00Z", 480, "2026-01-12T22:00:00Z", id="nyc-480"),
        pytest.param(NEW_YORK, "2026-01-12T14:00:00Z", 481, "2026-01-13T14:01:00Z", id="nyc-481"),
        # Fri 16:00 EST; US DST starts Sun 8 Mar; Mon 10:00 EDT (-4).
        pytest.param(NEW_YORK, "2026-03-06T21:00:00Z", 120, "2026-03-09T14:00:00Z", id="nyc-spr"),
        # Fri 16:00 EDT; US DST ends Sun 1 Nov; Mon 10:00 EST.
        pytest.param(NEW_YORK, "2026-10-30T20:00:00Z", 120, "2026-11-02T15:00:00Z", id="nyc-aut"),
        pytest.param(NEW_YORK, "2026-03-07T15:00:00Z", 30, "2026-03-09T13:30:00Z", id="nyc-sat"),
        # Sydney, AEDT (+11) in January: Mon 09:00 AEDT = Sun 22:00Z.
        pytest.param(SYDNEY, "2026-01-11T22:00:00Z", 480, "2026-01-12T06:00:00Z", id="syd-480"),
        pytest.param(SYDNEY, "2026-01-11T22:00:00Z", 481, "2026-01-12T22:01:00Z", id="syd-481"),
        # AEST (+10) in July.
        pytest.param(SYDNEY, "2026-07-12T23:00:00Z", 480, "2026-07-13T07:00:00Z", id="syd-aest"),
        # Fri 16:00 AEDT; DST ends Sun 5 Apr; Mon 10:00 AEST.
        pytest.param(SYDNEY, "2026-04-03T05:00:00Z", 120, "2026-04-06T00:00:00Z", id="syd-apr"),
        # Fri 16:00 AEST; DST starts Sun 4 Oct; Mon 10:00 AEDT.
        pytest.param(SYDNEY, "2026-10-02T06:00:00Z", 120, "2026-10-04T23:00:00Z", id="syd-oct"),
        # Opened Saturday 12:00 AEST: Mon 09:30 AEST.
        pytest.param(SYDNEY, "2026-07-11T02:00:00Z", 30, "2026-07-12T23:30:00Z", id="syd-sat"),
    ],
)
def test_business_hours_due(zone_name: str, start: str, target_minutes: int, expected: str) -> None:
    cal = business_hours(zone_name)
    assert iso(cal.due(utc(start), target_minutes * MINUTE)) == expected


@pytest.mark.parametrize(
    ("zone_name", "opens", "closes"),
    [
        pytest.param(LONDON, "2026-01-12T09:00:00Z", "2026-01-12T17:00:00Z", id="london-gmt"),
        pytest.param(LONDON, "2026-03-30T08:00:00Z", "2026-03-30T16:00:00Z", id="london-bst"),
        pytest.param(NEW_YORK, "2026-03-09T13:00:00Z", "2026-03-09T21:00:00Z", id="nyc-edt"),
        pytest.param(SYDNEY, "2026-04-05T23:00:00Z", "2026-04-06T07:00:00Z", id="sydney-aest"),
    ],
)
def test_business_hours_open_and_close_instants(zone_name: str, opens: str, closes: str) -> None:
    cal = business_hours(zone_name)
    assert not cal.is_open(utc(opens) - TINY)
    assert cal.is_open(utc(opens))
    assert cal.is_open(utc(closes) - TINY)
    assert not cal.is_open(utc(closes))


@pytest.mark.parametrize(
    ("zone_name", "start", "end", "hours"),
    [
        pytest.param(LONDON, "2026-01-12T09:00:00Z", "2026-01-19T09:00:00Z", 40, id="london-week"),
        # Mon 09:00 GMT to Mon 09:00 BST across the spring-forward weekend.
        pytest.param(LONDON, "2026-03-23T09:00:00Z", "2026-03-30T08:00:00Z", 40, id="london-dst"),
        pytest.param(NEW_YORK, "2026-01-12T15:00:00Z", "2026-01-12T16:30:00Z", 1.5, id="nyc-part"),
        pytest.param(SYDNEY, "2026-01-10T00:00:00Z", "2026-01-11T22:00:00Z", 0, id="syd-weekend"),
    ],
)
def test_business_hours_elapsed(zone_name: str, start: str, end: str, hours: float) -> None:
    assert business_hours(zone_name).elapsed(utc(start), utc(end)) == timedelta(hours=hours)


# -- 3. holidays ---------------------------------------------------------------------------

CHRISTMAS_ONLY = HolidaySet(dates=frozenset({date(2026, 12, 25)}))
ENGLAND = HolidaySet(country="GB", subdivision="ENG")


@pytest.mark.parametrize(
    ("holidays", "expected"),
    [
        # Thu 24 Dec 16:00 GMT + 2 h: 1 h on Thursday, Fri 25 is a holiday, 1 h on Monday.
        pytest.param(CHRISTMAS_ONLY, "2026-12-28T10:00:00Z", id="listed-christmas"),
        # England also observes Boxing Day (Sat 26) on Mon 28: due Tuesday 10:00.
        pytest.param(ENGLAND, "2026-12-29T10:00:00Z", id="gb-eng"),
        # Listed dates add to the country's.
        pytest.param(
            HolidaySet(dates=frozenset({date(2026, 12, 29)}), country="GB", subdivision="ENG"),
            "2026-12-30T10:00:00Z",
            id="gb-eng-plus-listed",
        ),
        pytest.param(HolidaySet(), "2026-12-25T10:00:00Z", id="no-holidays"),
    ],
)
def test_holidays_christmas_in_london(holidays: HolidaySet, expected: str) -> None:
    cal = business_hours(LONDON, holidays)
    assert iso(cal.due(utc("2026-12-24T16:00:00Z"), 2 * HOUR)) == expected


def test_holidays_elapsed_over_english_christmas_fortnight() -> None:
    # Mon 21 - Thu 24 Dec (4 days), then Tue 29 - Thu 31 Dec (3 days); Fri 25, Mon 28
    # (Boxing Day observed) and Fri 1 Jan 2027 are holidays: 7 days x 8 h.
    cal = business_hours(LONDON, ENGLAND)
    assert cal.elapsed(utc("2026-12-21T09:00:00Z"), utc("2027-01-04T09:00:00Z")) == 56 * HOUR


@pytest.mark.parametrize(
    ("day", "is_holiday"),
    [
        pytest.param(date(2026, 12, 25), True, id="christmas"),
        pytest.param(date(2026, 12, 26), True, id="boxing-day"),
        pytest.param(date(2026, 12, 28), True, id="boxing-day-observed"),
        pytest.param(date(2026, 12, 29), False, id="ordinary-tuesday"),
        pytest.param(date(2027, 1, 1), True, id="new-year-next-year"),
    ],
)
def test_holidays_england_dates(day: date, is_holiday: bool) -> None:
    assert (day in ENGLAND) is is_holiday


@pytest.mark.parametrize(
    "holidays",
    [
        pytest.param(HolidaySet(country="XX"), id="unknown-country"),
        pytest.param(HolidaySet(country="GB", subdivision="ZZ"), id="unknown-subdivision"),
    ],
)
def test_holidays_unknown_country_raises(holidays: HolidaySet) -> None:
    with pytest.raises(CalendarError):
        holidays.check()


def test_holidays_known_country_checks_quietly() -> None:
    ENGLAND.check()
    assert not HolidaySet()
    assert CHRISTMAS_ONLY


@pytest.mark.parametrize(
    ("holiday", "hours"),
    [
        # The span opens Thu 24 Dec 22:00 and runs into the holiday: kept whole.
        pytest.param(date(2026, 12, 25), 8, id="holiday-on-closing-day"),
        # The span opens on the holiday: dropped.
        pytest.param(date(2026, 12, 24), 0, id="holiday-on-opening-day"),
    ],
)
def test_holidays_drop_spans_by_opening_date(holiday: date, hours: int) -> None:
    tz = zone(LONDON)
    cal = WeeklyCalendar(
        "thursday-night",
        [Span(Boundary(3, 1320, tz), Boundary(4, 360, tz))],
        holidays=HolidaySet(dates=frozenset({holiday})),
    )
    assert cal.elapsed(utc("2026-12-24T12:00:00Z"), utc("2026-12-26T00:00:00Z")) == hours * HOUR


def test_holidays_on_24x5_drop_the_whole_week_opening_that_sydney_monday() -> None:
    # Australia Day, Mon 26 Jan 2026, is the local date of that week's only opening, so
    # the week stays closed: Fri 23 Jan 16:30 PST + 1 h = 30 min on Friday, then 30 min
    # after Mon 2 Feb 10:00 AEDT.
    australia_day = HolidaySet(dates=frozenset({date(2026, 1, 26)}))
    cal = WeeklyCalendar("24x5-au", global_24x5().spans, holidays=australia_day)
    assert iso(cal.due(utc("2026-01-24T00:30:00Z"), HOUR)) == "2026-02-01T23:30:00Z"


# -- 4. midnight, several windows a day, the week boundary --------------------------------


@pytest.mark.parametrize(
    ("start", "target_minutes", "expected"),
    [
        # Mon 22:00 - Tue 06:00 London (GMT).
        pytest.param("2026-01-12T21:00:00Z", 60, "2026-01-12T23:00:00Z", id="before-open"),
        pytest.param("2026-01-12T21:00:00Z", 480, "2026-01-13T06:00:00Z", id="whole-night"),
        pytest.param("2026-01-12T21:00:00Z", 481, "2026-01-19T22:01:00Z", id="next-week"),
        pytest.param("2026-01-13T03:00:00Z", 180, "2026-01-13T06:00:00Z", id="after-midnight"),
        pytest.param("2026-01-13T03:00:00Z", 181, "2026-01-19T22:01:00Z", id="after-midnight+1"),
    ],
)
def test_window_crossing_midnight(start: str, target_minutes: int, expected: str) -> None:
    cal = weekly(LONDON, (0, 1320, 1, 360))
    assert iso(cal.due(utc(start), target_minutes * MINUTE)) == expected
    assert cal.is_open(utc("2026-01-13T05:59:59Z"))
    assert not cal.is_open(utc("2026-01-13T06:00:00Z"))
    assert cal.is_open(utc("2026-01-13T00:00:00Z"))


@pytest.mark.parametrize(
    ("start", "target_minutes", "expected"),
    [
        # Mon-Fri 09:00-12:00 and 13:00-17:00 New York (EST, -5).
        pytest.param("2026-01-12T16:30:00Z", 60, "2026-01-12T18:30:00Z", id="across-lunch"),
        pytest.param("2026-01-12T17:30:00Z", 30, "2026-01-12T18:30:00Z", id="opened-at-lunch"),
        # Exactly the morning: due at 12:00, not 13:00.
        pytest.param("2026-01-12T14:00:00Z", 180, "2026-01-12T17:00:00Z", id="morning"),
        pytest.param("2026-01-12T14:00:00Z", 420, "2026-01-12T22:00:00Z", id="whole-day"),
        pytest.param("2026-01-12T14:00:00Z", 421, "2026-01-13T14:01:00Z", id="whole-day+1"),
    ],
)
def test_two_windows_a_day(start: str, target_minutes: int, expected: str) -> None:
    cal = daily(NEW_YORK, ((540, 720), (780, 1020)))
    assert iso(cal.due(utc(start), target_minutes * MINUTE)) == expected
    assert cal.elapsed(utc("2026-01-12T14:00:00Z"), utc("2026-01-13T14:00:00Z")) == 7 * HOUR


def test_overlapping_windows_merge() -> None:
    # 09:00-12:00 and 11:00-14:00 London: covered 09:00-14:00, overlap counted once.
    cal = daily(LONDON, ((540, 720), (660, 840)))
    assert iso(cal.due(utc("2026-01-12T09:00:00Z"), 300 * MINUTE)) == "2026-01-12T14:00:00Z"
    assert cal.elapsed(utc("2026-01-12T00:00:00Z"), utc("2026-01-13T00:00:00Z")) == 5 * HOUR


@pytest.mark.parametrize(
    ("start", "target_minutes", "expected"),
    [
        # Sun 22:00 - Mon 06:00 London: the span crosses the Monday week boundary.
        pytest.param("2026-01-10T12:00:00Z", 60, "2026-01-11T23:00:00Z", id="opened-saturday"),
        pytest.param("2026-01-11T23:00:00Z", 480, "2026-01-18T23:00:00Z", id="spills-a-week"),
        pytest.param("2026-01-12T05:00:00Z", 60, "2026-01-12T06:00:00Z", id="monday-morning"),
        # Sun 29 Mar 22:00 BST (21:00Z) - Mon 06:00 BST (05:00Z).
        pytest.param("2026-03-28T00:00:00Z", 480, "2026-03-30T05:00:00Z", id="after-spring"),
    ],
)
def test_span_crossing_week_boundary(start: str, target_minutes: int, expected: str) -> None:
    cal = weekly(LONDON, (6, 1320, 0, 360))
    assert iso(cal.due(utc(start), target_minutes * MINUTE)) == expected
    assert cal.elapsed(utc("2026-01-05T12:00:00Z"), utc("2026-01-12T12:00:00Z")) == 8 * HOUR


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        # Sat 22:00 - Sun 06:00 London. Sat 28 Mar 22:00 GMT (22:00Z) to 06:00 BST (05:00Z).
        pytest.param("2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z", 7, id="spring-forward"),
        # Sat 24 Oct 22:00 BST (21:00Z) to Sun 06:00 GMT (06:00Z).
        pytest.param("2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z", 9, id="fall-back"),
        pytest.param("2026-01-10T12:00:00Z", "2026-01-11T12:00:00Z", 8, id="ordinary"),
    ],
)
def test_night_window_over_london_dst(start: str, end: str, hours: int) -> None:
    cal = weekly(LONDON, (5, 1320, 6, 360))
    assert cal.elapsed(utc(start), utc(end)) == hours * HOUR


# -- 5. DST gaps and folds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone_name", "day", "minute", "expected"),
    [
        # New York, spring forward 2026-03-08 02:00 EST -> 03:00 EDT at 07:00Z.
        pytest.param(NEW_YORK, date(2026, 3, 8), 119, "2026-03-08T06:59:00Z", id="nyc-0159"),
        pytest.param(NEW_YORK, date(2026, 3, 8), 120, "2026-03-08T07:00:00Z", id="nyc-gap-0200"),
        pytest.param(NEW_YORK, date(2026, 3, 8), 150, "2026-03-08T07:00:00Z", id="nyc-gap-0230"),
        pytest.param(NEW_YORK, date(2026, 3, 8), 179, "2026-03-08T07:00:00Z", id="nyc-gap-0259"),
        pytest.param(NEW_YORK, date(2026, 3, 8), 180, "2026-03-08T07:00:00Z", id="nyc-0300"),
        pytest.param(NEW_YORK, date(2026, 3, 8), 181, "2026-03-08T07:01:00Z", id="nyc-0301"),
        # 24:00 on Saturday is Sunday 00:00 EST.
        pytest.param(NEW_YORK, date(2026, 3, 7), 1440, "2026-03-08T05:00:00Z", id="nyc-2400"),
        # Fall back 2026-11-01 02:00 EDT -> 01:00 EST at 06:00Z: the first reading counts.
        pytest.param(NEW_YORK, date(2026, 11, 1), 59, "2026-11-01T04:59:00Z", id="nyc-0059"),
        pytest.param(NEW_YORK, date(2026, 11, 1), 60, "2026-11-01T05:00:00Z", id="nyc-fold-0100"),
        pytest.param(NEW_YORK, date(2026, 11, 1), 90, "2026-11-01T05:30:00Z", id="nyc-fold-0130"),
        pytest.param(NEW_YORK, date(2026, 11, 1), 119, "2026-11-01T05:59:00Z", id="nyc-fold-0159"),
        pytest.param(NEW_YORK, date(2026, 11, 1), 120, "2026-11-01T07:00:00Z", id="nyc-0200-est"),
        # London: 01:00 GMT -> 02:00 BST at 01:00Z; 02:00 BST -> 01:00 GMT at 01:00Z.
        pytest.param(LONDON, date(2026, 3, 29), 60, "2026-03-29T01:00:00Z", id="ldn-gap-0100"),
        pytest.param(LONDON, date(2026, 3, 29), 90, "2026-03-29T01:00:00Z", id="ldn-gap-0130"),
        pytest.param(LONDON, date(2026, 3, 29), 120, "2026-03-29T01:00:00Z", id="ldn-0200"),
        pytest.param(LONDON, date(2026, 10, 25), 90, "2026-10-25T00:30:00Z", id="ldn-fold-0130"),
        pytest.param(LONDON, date(2026, 10, 25), 120, "2026-10-25T02:00:00Z", id="ldn-0200-gmt"),
        # Sydney: 02:00 AEST -> 03:00 AEDT at 16:00Z; 03:00 AEDT -> 02:00 AEST at 16:00Z.
        pytest.param(SYDNEY, date(2026, 10, 4), 150, "2026-10-03T16:00:00Z", id="syd-gap-0230"),
        pytest.param(SYDNEY, date(2026, 4, 5), 150, "2026-04-04T15:30:00Z", id="syd-fold-0230"),
        # Lord Howe shifts by 30 minutes: 02:00 +10:30 -> 02:30 +11 at 15:30Z, and
        # 02:00 +11 -> 01:30 +10:30 at 15:00Z.
        pytest.param(
            "Australia/Lord_Howe", date(2026, 10, 4), 135, "2026-10-03T15:30:00Z", id="lhi-gap"
        ),
        pytest.param(
            "Australia/Lord_Howe", date(2026, 4, 5), 105, "2026-04-04T14:45:00Z", id="lhi-fold"
        ),
        # Havana changes at midnight: 00:00 CST -> 01:00 CDT at 05:00Z; 01:00 CDT -> 00:00
        # CST at 05:00Z on 1 Nov.
        pytest.param(HAVANA, date(2026, 3, 8), 0, "2026-03-08T05:00:00Z", id="hav-gap-0000"),
        pytest.param(HAVANA, date(2026, 3, 8), 30, "2026-03-08T05:00:00Z", id="hav-gap-0030"),
        pytest.param(HAVANA, date(2026, 3, 8), 60, "2026-03-08T05:00:00Z", id="hav-0100"),
        pytest.param(HAVANA, date(2026, 3, 7), 1440, "2026-03-08T05:00:00Z", id="hav-sat-2400"),
        pytest.param(HAVANA, date(2026, 11, 1), 0, "2026-11-01T04:00:00Z", id="hav-fold-0000"),
        pytest.param(HAVANA, date(2026, 11, 1), 30, "2026-11-01T04:30:00Z", id="hav-fold-0030"),
        pytest.param(HAVANA, date(2026, 11, 1), 60, "2026-11-01T06:00:00Z", id="hav-0100-cst"),
        # Beirut: 00:00 EET -> 01:00 EEST at 22:00Z on 28 Mar; 24:00 EEST -> 23:00 EET at
        # 21:00Z on 24 Oct.
        pytest.param(BEIRUT, date(2026, 3, 29), 0, "2026-03-28T22:00:00Z", id="bey-gap-0000"),
        pytest.param(BEIRUT, date(2026, 3, 28), 1440, "2026-03-28T22:00:00Z", id="bey-sat-2400"),
        pytest.param(BEIRUT, date(2026, 10, 24), 1410, "2026-10-24T20:30:00Z", id="bey-fold"),
        pytest.param(BEIRUT, date(2026, 10, 24), 1440, "2026-10-24T22:00:00Z", id="bey-2400"),
        # No DST at all, half-hour offset.
        pytest.param("Asia/Kolkata", date(2026, 1, 1), 0, "2025-12-31T18:30:00Z", id="kolkata"),
    ],
)
def test_wall_to_us(zone_name: str, day: date, minute: int, expected: str) -> None:
    assert wall_to_us(day, minute, zone(zone_name)) == micros(utc(expected))


def test_midnight_zones_are_really_in_this_tz_database() -> None:
    # The Havana/Beirut rows above assume these transitions; check them on this machine
    # so a tzdata change shows up here rather than as a confusing calendar failure.
    havana, beirut = ZoneInfo(HAVANA), ZoneInfo(BEIRUT)
    assert utc("2026-03-08T04:59:59Z").astimezone(havana).isoformat() == "2026-03-07T23:59:59-05:00"
    assert utc("2026-03-08T05:00:00Z").astimezone(havana).isoformat() == "2026-03-08T01:00:00-04:00"
    assert utc("2026-11-01T05:00:00Z").astimezone(havana).isoformat() == "2026-11-01T00:00:00-05:00"
    assert utc("2026-03-28T22:00:00Z").astimezone(beirut).isoformat() == "2026-03-29T01:00:00+03:00"
    assert utc("2026-10-24T21:00:00Z").astimezone(beirut).isoformat() == "2026-10-24T23:00:00+02:00"


@pytest.mark.parametrize(
    ("span", "start", "end", "covered"),
    [
        # Sun 00:30-03:30 New York: 00:30 EST (05:30Z) to 03:30 EDT (07:30Z) = 2 h.
        pytest.param(
            (6, 30, 6, 210),
            "2026-03-08T00:00:00Z",
            "2026-03-09T00:00:00Z",
            2 * HOUR,
            id="night-over-gap",
        ),
        # 00:30 EDT (04:30Z) to 03:30 EST (08:30Z) = 4 h.
        pytest.param(
            (6, 30, 6, 210),
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
            4 * HOUR,
            id="night-over-fold",
        ),
        pytest.param(
            (6, 30, 6, 210),
            "2026-01-11T00:00:00Z",
            "2026-01-12T00:00:00Z",
            3 * HOUR,
            id="night-ordinary",
        ),
        # Opens inside the gap (02:30 -> 07:00Z), closes 04:00 EDT (08:00Z).
        pytest.param(
            (6, 150, 6, 240),
            "2026-03-08T00:00:00Z",
            "2026-03-09T00:00:00Z",
            HOUR,
            id="opens-in-gap",
        ),
        # Opens 01:00 EST (06:00Z), closes inside the gap (02:30 -> 07:00Z).
        pytest.param(
            (6, 60, 6, 150),
            "2026-03-08T00:00:00Z",
            "2026-03-09T00:00:00Z",
            HOUR,
            id="closes-in-gap",
        ),
        # 02:10-02:50 lies wholly in the gap: no covered time that Sunday.
        pytest.param(
            (6, 130, 6, 170),
            "2026-03-08T00:00:00Z",
            "2026-03-09T00:00:00Z",
            timedelta(0),
            id="inside-gap",
        ),
        # 01:30 EDT (05:30Z, first reading) to 02:00 EST (07:00Z) = 90 min.
        pytest.param(
            (6, 90, 6, 120),
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
            90 * MINUTE,
            id="opens-in-fold",
        ),
    ],
)
def test_new_york_dst_windows_cover_real_time(
    span: tuple[int, int, int, int], start: str, end: str, covered: timedelta
) -> None:
    assert weekly(NEW_YORK, span).elapsed(utc(start), utc(end)) == covered


@pytest.mark.parametrize(
    ("span", "start", "target_minutes", "expected"),
    [
        pytest.param(
            (6, 30, 6, 210), "2026-03-08T05:30:00Z", 120, "2026-03-08T07:30:00Z", id="gap-night-all"
        ),
        # The 121st minute waits for Sun 15 Mar 00:30 EDT (04:30Z).
        pytest.param(
            (6, 30, 6, 210), "2026-03-08T05:30:00Z", 121, "2026-03-15T04:31:00Z", id="gap-night+1"
        ),
        pytest.param(
            (6, 30, 6, 210),
            "2026-11-01T04:30:00Z",
            240,
            "2026-11-01T08:30:00Z",
            id="fold-night-all",
        ),
        pytest.param(
            (6, 30, 6, 210),
            "2026-11-01T04:30:00Z",
            150,
            "2026-11-01T07:00:00Z",
            id="fold-night-part",
        ),
        pytest.param(
            (6, 150, 6, 240), "2026-03-08T00:00:00Z", 30, "2026-03-08T07:30:00Z", id="opens-at-jump"
        ),
        # The gap Sunday has nothing; Sun 15 Mar 02:10 EDT is 06:10Z.
        pytest.param(
            (6, 130, 6, 170),
            "2026-03-08T00:00:00Z",
            10,
            "2026-03-15T06:20:00Z",
            id="inside-gap-skipped",
        ),
    ],
)
def test_new_york_dst_windows_due(
    span: tuple[int, int, int, int], start: str, target_minutes: int, expected: str
) -> None:
    assert iso(weekly(NEW_YORK, span).due(utc(start), target_minutes * MINUTE)) == expected


def test_window_opening_inside_the_gap_opens_at_the_jump() -> None:
    cal = weekly(NEW_YORK, (6, 150, 6, 240))
    assert not cal.is_open(utc("2026-03-08T07:00:00Z") - TINY)
    assert cal.is_open(utc("2026-03-08T07:00:00Z"))
    assert cal.is_open(utc("2026-03-08T08:00:00Z") - TINY)
    assert not cal.is_open(utc("2026-03-08T08:00:00Z"))


@pytest.mark.parametrize(
    ("zone_name", "span", "start", "end", "hours"),
    [
        # All of Sunday in Havana: 00:00 is skipped (opens 05:00Z), 24:00 is 00:00 CDT on
        # Monday (04:00Z): 23 h.
        pytest.param(
            HAVANA,
            (6, 0, 6, 1440),
            "2026-03-07T00:00:00Z",
            "2026-03-10T00:00:00Z",
            23,
            id="havana-sunday-spring",
        ),
        # 00:00 CDT (04:00Z) to Monday 00:00 CST (05:00Z): 25 h.
        pytest.param(
            HAVANA,
            (6, 0, 6, 1440),
            "2026-10-31T00:00:00Z",
            "2026-11-03T00:00:00Z",
            25,
            id="havana-sunday-autumn",
        ),
        # Saturday 18:00 CST (23:00Z) to 24:00, which does not exist: the jump at 05:00Z.
        pytest.param(
            HAVANA,
            (5, 1080, 5, 1440),
            "2026-03-07T00:00:00Z",
            "2026-03-09T00:00:00Z",
            6,
            id="havana-saturday-to-2400",
        ),
        # Beirut Saturday 22:00-24:00: 22:00 EEST (19:00Z) to Sunday 00:00 EET (22:00Z).
        pytest.param(
            BEIRUT,
            (5, 1320, 5, 1440),
            "2026-10-24T00:00:00Z",
            "2026-10-26T00:00:00Z",
            3,
            id="beirut-saturday-autumn",
        ),
        # 22:00 EET (20:00Z) to the jump at 22:00Z.
        pytest.param(
            BEIRUT,
            (5, 1320, 5, 1440),
            "2026-03-28T00:00:00Z",
            "2026-03-30T00:00:00Z",
            2,
            id="beirut-saturday-spring",
        ),
    ],
)
def test_zones_changing_at_midnight(
    zone_name: str, span: tuple[int, int, int, int], start: str, end: str, hours: int
) -> None:
    assert weekly(zone_name, span).elapsed(utc(start), utc(end)) == hours * HOUR


def test_havana_sunday_due() -> None:
    cal = weekly(HAVANA, (6, 0, 6, 1440))
    assert iso(cal.due(utc("2026-03-07T12:00:00Z"), 23 * HOUR)) == "2026-03-09T04:00:00Z"
    assert not cal.is_open(utc("2026-03-08T05:00:00Z") - TINY)
    assert cal.is_open(utc("2026-03-08T05:00:00Z"))


# -- 6. 24x7, input validation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "target", "expected"),
    [
        pytest.param("2026-01-10T00:30:00Z", 90 * MINUTE, "2026-01-10T02:00:00Z", id="90min"),
        pytest.param("2026-03-08T06:30:00Z", HOUR, "2026-03-08T07:30:00Z", id="over-us-dst"),
        pytest.param(
            "2026-03-01T00:00:00Z", timedelta(days=365), "2027-03-01T00:00:00Z", id="a-year"
        ),
        pytest.param("2026-01-10T00:30:00Z", timedelta(0), "2026-01-10T00:30:00Z", id="zero"),
    ],
)
def test_always_open_due(start: str, target: timedelta, expected: str) -> None:
    assert iso(AlwaysOpen().due(utc(start), target)) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param("2026-01-10T00:00:00Z", "2026-01-12T00:00:00Z", timedelta(days=2), id="2d"),
        pytest.param("2026-01-10T00:00:00Z", "2026-01-10T00:00:00.000001Z", TINY, id="1us"),
        pytest.param("2026-01-12T00:00:00Z", "2026-01-10T00:00:00Z", timedelta(0), id="reversed"),
    ],
)
def test_always_open_elapsed(start: str, end: str, expected: timedelta) -> None:
    cal = AlwaysOpen()
    assert cal.elapsed(utc(start), utc(end)) == expected
    assert cal.is_open(utc(start))


NAIVE = datetime(2026, 1, 12, 10, 0)
AWARE = utc("2026-01-12T10:00:00Z")
CALENDAR_MAKERS: list[tuple[str, Callable[[], Calendar]]] = [
    ("24x7", AlwaysOpen),
    ("24x5-global", global_24x5),
    ("business-london", lambda: business_hours(LONDON)),
]
NAIVE_CALLS: list[tuple[str, Callable[[Calendar], object]]] = [
    ("due", lambda cal: cal.due(NAIVE, HOUR)),
    ("elapsed-start", lambda cal: cal.elapsed(NAIVE, AWARE)),
    ("elapsed-end", lambda cal: cal.elapsed(AWARE, NAIVE)),
    ("is-open", lambda cal: cal.is_open(NAIVE)),
]


@pytest.mark.parametrize(
    ("make", "call"),
    [
        pytest.param(make, call, id=f"{cal_id}-{call_id}")
        for cal_id, make in CALENDAR_MAKERS
        for call_id, call in NAIVE_CALLS
    ],
)
def test_naive_datetime_raises(
    make: Callable[[], Calendar], call: Callable[[Calendar], object]
) -> None:
    with pytest.raises(CalendarError):
        call(make())


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: zone("Mars/Olympus_Mons"), id="unknown-zone"),
        pytest.param(lambda: Boundary(7, 0, zone(LONDON)), id="weekday-7"),
        pytest.param(lambda: Boundary(0, 1441, zone(LONDON)), id="minute-1441"),
        pytest.param(lambda: Boundary(0, -1, zone(LONDON)), id="minute-negative"),
        pytest.param(
            lambda: Span(Boundary(0, 1440, zone(LONDON)), Boundary(1, 60, zone(LONDON))),
            id="opens-at-2400",
        ),
        pytest.param(lambda: WeeklyCalendar("empty", []), id="no-spans"),
        pytest.param(
            lambda: WeeklyCalendar(
                "zero-day", business_hours(LONDON).spans, business_day=timedelta(0)
            ),
            id="zero-business-day",
        ),
    ],
)
def test_invalid_definitions_raise(build: Callable[[], object]) -> None:
    with pytest.raises(CalendarError):
        build()


# -- 8. cost does not depend on the target -------------------------------------------------


def test_a_year_of_covered_time_on_business_hours() -> None:
    # 365 days = 8760 h = 219 weeks of 40 h from Mon 5 Jan 2026 09:00 GMT: the 219th
    # week's Friday is 15 Mar 2030, still GMT (BST starts 31 Mar 2030).
    cal = business_hours(LONDON)
    start, target = utc("2026-01-05T09:00:00Z"), timedelta(days=365)
    due = cal.due(start, target)
    assert iso(due) == "2030-03-15T17:00:00Z"
    assert cal.elapsed(start, due) == target
    assert cal.is_open(due - TINY)  # a closing instant: covered right up to it
    assert iso(cal.due(start, target + MINUTE)) == "2030-03-18T09:01:00Z"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: business_hours(LONDON, ENGLAND), id="london-gb-eng"),
        pytest.param(lambda: business_hours(SYDNEY), id="sydney"),
        pytest.param(global_24x5, id="24x5-global"),
    ],
)
@pytest.mark.parametrize("days", [365, 3650], ids=["1y", "10y"])
def test_long_targets_land_on_covered_time(make: Callable[[], Calendar], days: int) -> None:
    # No hand-worked literal for these (holiday counts over decades); the checks are
    # the defining properties of `due`.
    cal = make()
    start, target = utc("2026-05-06T13:17:00Z"), timedelta(days=days)
    due = cal.due(start, target)
    assert cal.elapsed(start, due) == target
    assert cal.is_open(due - TINY)
    assert cal.due(start, target - TINY) < due


# -- 7. property tests against a naive reference -------------------------------------------

WINDOW = 40_000  # minutes the reference walks from the start (about 27.8 days)
MAX_TARGET = 3 * 7 * 24 * 60  # three weeks of covered minutes

PROPERTY_ZONES = (
    "UTC",
    "Asia/Kolkata",  # no DST, half-hour offset
    "Asia/Tokyo",  # no DST
    LONDON,
    NEW_YORK,
    LOS_ANGELES,
    SYDNEY,  # southern hemisphere
    "Australia/Lord_Howe",  # southern, 30-minute DST
    "Pacific/Auckland",  # southern
    "America/Santiago",  # southern, changes at midnight
    HAVANA,  # changes at midnight
    BEIRUT,  # changes at midnight
)
# Wall times where transitions happen in the zones above, drawn often on purpose.
SPECIAL_MINUTES = (0, 30, 60, 90, 120, 130, 150, 180, 540, 1020, 1380, 1410)


@dataclass(frozen=True)
class SpanSpec:
    opens_day: int
    opens_minute: int
    opens_zone: str
    closes_day: int
    closes_minute: int
    closes_zone: str

    def build(self) -> Span:
        return Span(
            Boundary(self.opens_day, self.opens_minute, zone(self.opens_zone)),
            Boundary(self.closes_day, self.closes_minute, zone(self.closes_zone)),
        )


@dataclass(frozen=True)
class Case:
    spans: tuple[SpanSpec, ...]
    holidays: frozenset[date]
    start: datetime
    targets: tuple[int, int]  # minutes
    probes: tuple[int, ...]  # minute offsets from start, < WINDOW


def first_reading(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The first instant at which the clock in ``tz`` reads ``day`` + ``minute`` or later.

    Written independently of `wall_to_us`: ask both PEP 495 readings, keep the ones the
    clock really shows; if it shows neither (a gap), walk forward to the jump.
    """
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    candidates = [wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)]
    shown = [c for c in candidates if c.astimezone(tz).replace(tzinfo=None) == wall]
    if shown:
        return min(shown)
    instant = min(candidates)  # before the jump: the clock still reads earlier than wall
    while instant.astimezone(tz).replace(tzinfo=None) < wall:
        instant += MINUTE  # every zone in the pool jumps on a whole minute
    return instant


def occurrences(case: Case, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    """Every span occurrence whose opening local date lies in [first, last]."""
    for spec in case.spans:
        open_tz, close_tz = ZoneInfo(spec.opens_zone), ZoneInfo(spec.closes_zone)
        # A span closes at the first closing wall time after its opening wall time, counted
        # in weekdays: the same day later on, a later weekday, or up to a week on.
        days_to_close = (spec.closes_day - spec.opens_day) % 7
        if days_to_close == 0 and spec.closes_minute <= spec.opens_minute:
            days_to_close = 7
        day = first
        while day <= last:
            if day.weekday() == spec.opens_day and day not in case.holidays:
                opens = first_reading(day, spec.opens_minute, open_tz)
                closes_on = day + timedelta(days=days_to_close)
                yield opens, first_reading(closes_on, spec.closes_minute, close_tz)
            day += timedelta(days=1)


def reference_coverage(case: Case) -> bytearray:
    """covered[i] == 1 when minute i (starting at start + i minutes) is covered."""
    covered = bytearray(WINDOW)
    first = case.start.date() - timedelta(days=10)  # spans last at most a week and a day
    last = (case.start + WINDOW * MINUTE).date() + timedelta(days=2)
    for opens, closes in occurrences(case, first, last):
        # Minute i is covered when its start instant lies in [opens, closes): i runs from
        # ceil((opens - start) / 1 min) up to, not including, ceil((closes - start) / 1 min).
        lo = max(0, -((case.start - opens) // MINUTE))
        hi = min(WINDOW, -((case.start - closes) // MINUTE))
        if lo < hi:
            covered[lo:hi] = b"\x01" * (hi - lo)
    return covered


def check_against_reference(case: Case) -> None:
    cal = WeeklyCalendar(
        "random",
        [spec.build() for spec in case.spans],
        holidays=HolidaySet(dates=case.holidays),
    )
    covered = reference_coverage(case)
    cum = list(accumulate(covered, initial=0))  # cum[k] = covered minutes in the first k
    start = case.start

    def at(k: int) -> datetime:
        return start + k * MINUTE

    for k in case.probes:
        assert cal.is_open(at(k)) is bool(covered[k]), f"is_open at {iso(at(k))}"
    lo, hi = min(case.probes), max(case.probes)
    assert cal.elapsed(at(lo), at(hi)) == (cum[hi] - cum[lo]) * MINUTE
    assert cal.elapsed(start, at(hi)) == cum[hi] * MINUTE

    dues: list[tuple[int, datetime]] = []
    for wanted in sorted(case.targets):
        target = min(wanted, cum[-1])  # stay inside the window the reference walked
        if target == 0:
            continue
        expected = at(bisect.bisect_left(cum, target))  # first k with cum[k] >= target
        due = cal.due(start, target * MINUTE)
        assert iso(due) == iso(expected), f"due({iso(start)}, {target} min)"
        assert cal.elapsed(start, due) == target * MINUTE
        dues.append((target, due))
    # Monotonic: a larger target comes due strictly later (it needs more covered time),
    # an equal one at the same instant.
    for (small, early), (large, late) in pairwise(dues):
        assert early < late if small < large else early == late

    # The same from a later start, to exercise a start in the middle of the walk.
    for wanted in case.targets:
        if cum[-1] - cum[lo] >= wanted:
            expected = at(bisect.bisect_left(cum, cum[lo] + wanted))
            assert iso(cal.due(at(lo), wanted * MINUTE)) == iso(expected)


START_MIN = datetime(2024, 1, 1, tzinfo=UTC)
START_MINUTES = (datetime(2029, 1, 1, tzinfo=UTC) - START_MIN) // MINUTE - 1


@st.composite
def starts(draw: st.DrawFn) -> datetime:
    """Whole-minute instants in 2024-2028, often in a DST season month."""
    if draw(st.booleans()):
        return START_MIN + draw(st.integers(0, START_MINUTES)) * MINUTE
    year = draw(st.integers(2024, 2028))
    month = draw(st.sampled_from((3, 4, 9, 10, 11)))
    base = datetime(year, month, 1, tzinfo=UTC)
    return base + draw(st.integers(0, 30 * 1440)) * MINUTE


minutes_open = st.one_of(st.integers(0, 1439), st.sampled_from(SPECIAL_MINUTES))
minutes_close = st.one_of(st.integers(0, 1440), st.sampled_from((*SPECIAL_MINUTES, 1440)))


@st.composite
def span_specs(draw: st.DrawFn, open_zone: str, close_zone: str) -> SpanSpec:
    # Spans around the week boundary and spans closing on their opening weekday (up to a
    # whole week long) are where week bookkeeping goes wrong: draw them often.
    opens_day = draw(st.one_of(st.integers(0, 6), st.sampled_from((0, 6))))
    closes_day = draw(st.one_of(st.integers(0, 6), st.just(opens_day)))
    return SpanSpec(
        opens_day, draw(minutes_open), open_zone, closes_day, draw(minutes_close), close_zone
    )


@st.composite
def cases(draw: st.DrawFn, zones_per_span: bool = False) -> Case:
    """Random calendars: one zone for all spans, or (``zones_per_span``) a zone per span."""
    calendar_zone = draw(st.sampled_from(PROPERTY_ZONES))
    specs = []
    for _ in range(draw(st.integers(1, 4))):
        z = draw(st.sampled_from(PROPERTY_ZONES)) if zones_per_span else calendar_zone
        specs.append(draw(span_specs(z, z)))
    return draw(case_around(tuple(specs)))


@st.composite
def case_around(draw: st.DrawFn, specs: tuple[SpanSpec, ...]) -> Case:
    start = draw(starts())
    offsets = draw(st.lists(st.integers(-10, 30), max_size=4))
    holidays = frozenset(start.date() + timedelta(days=d) for d in offsets)
    targets = (draw(st.integers(1, MAX_TARGET)), draw(st.integers(1, MAX_TARGET)))
    probes = tuple(draw(st.lists(st.integers(0, WINDOW - 1), min_size=2, max_size=8)))
    return Case(specs, holidays, start, targets, probes)


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None)

GLOBAL_24X5_SPEC = SpanSpec(0, 600, SYDNEY, 4, 1020, LOS_ANGELES)


@PROPERTY_SETTINGS
@given(case=cases())
def test_property_one_zone_calendars_match_reference(case: Case) -> None:
    check_against_reference(case)


@PROPERTY_SETTINGS
@given(case=case_around((GLOBAL_24X5_SPEC,)))
def test_property_global_24x5_matches_reference(case: Case) -> None:
    check_against_reference(case)


# A calendar mixing zones across spans (each span in one zone), e.g. a near-24x7 New York
# desk closed Sunday 22:00-23:00 plus a Tokyo span that sorts first in the week. The New
# York span opening Sun 4 Jan 23:00 EST runs to Sun 11 Jan 22:00 EST (12 Jan 03:00Z),
# past the opening of the Tokyo-anchored week two weeks later (Mon 12 Jan 00:00 JST =
# 11 Jan 15:00Z). Regression: `_week` once looked only at the neighbouring weeks' spans.
MIXED_ZONE_DESK = Case(
    spans=(
        SpanSpec(6, 1380, NEW_YORK, 6, 1320, NEW_YORK),
        SpanSpec(0, 0, "Asia/Tokyo", 0, 60, "Asia/Tokyo"),
    ),
    holidays=frozenset(),
    start=utc("2026-01-11T00:00:00Z"),
    targets=(20 * 60, 2 * 24 * 60),
    probes=(0, 16 * 60, 26 * 60, 30 * 60),
)


@PROPERTY_SETTINGS
@given(case=cases(zones_per_span=True))
@example(case=MIXED_ZONE_DESK)
def test_property_zone_per_span_calendars_match_reference(case: Case) -> None:
    check_against_reference(case)


def mixed_zone_desk() -> WeeklyCalendar:
    ny, tokyo = zone(NEW_YORK), zone("Asia/Tokyo")
    return WeeklyCalendar(
        "ny-desk-plus-tokyo",
        [
            Span(Boundary(6, 1380, ny), Boundary(6, 1320, ny)),  # Sun 23:00 -> next Sun 22:00
            Span(Boundary(0, 0, tokyo), Boundary(0, 60, tokyo)),  # Mon 00:00-01:00 JST
        ],
    )


def test_mixed_zone_desk_is_open_sunday_morning_new_york() -> None:
    # Sun 11 Jan 11:00 EST (16:00Z): inside the New York span opened Sun 4 Jan 23:00 EST.
    assert mixed_zone_desk().is_open(utc("2026-01-11T16:00:00Z"))


def test_mixed_zone_desk_elapsed_and_due() -> None:
    cal = mixed_zone_desk()
    # 11 Jan 00:00Z .. 12 Jan 06:00Z is 30 h; closed only 03:00Z-04:00Z (Sun 22:00-23:00
    # EST): 29 h.
    assert cal.elapsed(utc("2026-01-11T00:00:00Z"), utc("2026-01-12T06:00:00Z")) == 29 * HOUR
    # Sun 11 Jan 12:00Z + 16 h: 15 h up to 03:00Z, then 1 h from 04:00Z.
    assert iso(cal.due(utc("2026-01-11T12:00:00Z"), 16 * HOUR)) == "2026-01-12T05:00:00Z"


# A span whose boundaries are in different zones is "covered from opens until the first
# closes after it" (Span docstring). `Span.wraps` compares the local weekday/minute of the
# two boundaries and ignores their zones, so a span that closes later the same day in a
# zone further west is taken to close a week later, and the reverse case never opens.


def test_mixed_zone_span_closes_at_first_close_after_open() -> None:
    # Mon 10:00 Sydney (Sun 11 Jan 23:00Z, AEDT) to Mon 09:00 Los Angeles: the first such
    # close is Mon 12 Jan 09:00 PST = 17:00Z, 18 h later.
    cal = WeeklyCalendar(
        "syd-to-la-monday",
        [Span(Boundary(0, 600, zone(SYDNEY)), Boundary(0, 540, zone(LOS_ANGELES)))],
    )
    assert cal.elapsed(utc("2026-01-11T00:00:00Z"), utc("2026-01-18T00:00:00Z")) == 18 * HOUR
    assert not cal.is_open(utc("2026-01-13T00:00:00Z"))


def test_mixed_zone_span_whose_wall_close_is_earlier_in_utc_still_opens() -> None:
    # Mon 10:00 Los Angeles (Mon 12 Jan 18:00Z) to Mon 15:00 Sydney: the same Monday's
    # 15:00 AEDT (12 Jan 04:00Z) is before the opening, so the first close after it is
    # Mon 19 Jan 15:00 AEDT = 19 Jan 04:00Z.
    cal = WeeklyCalendar(
        "la-to-syd-monday",
        [Span(Boundary(0, 600, zone(LOS_ANGELES)), Boundary(0, 900, zone(SYDNEY)))],
    )
    assert cal.is_open(utc("2026-01-13T00:00:00Z"))
