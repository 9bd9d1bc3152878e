"""When the SLA clock runs (RULES.md §2).

A calendar is a set of half-open covered intervals ``[open, close)`` on the UTC time
line. A ticket's clock accumulates only covered time; ``due(start, target)`` is the
earliest instant T with ``target`` covered time in ``[start, T)``. So a target that
ends exactly at closing time is due at closing time, not at the next opening, and a
ticket opened while closed starts counting at the next opening.

Two kinds:

* `AlwaysOpen`: 24x7.
* `WeeklyCalendar`: weekly *spans*, each opening and closing at a weekday and wall
  time in its own IANA zone. Business hours in a region use one zone for every
  boundary. The global 24x5 week mixes zones: it opens Monday 10:00 Australia/Sydney
  and closes Friday 17:00 America/Los_Angeles. Holidays drop the spans that open on a
  holiday (the local date of the opening).

Wall times become instants by one rule: a boundary is *the first instant at which the
zone's clock reads that wall time or later*. When clocks go back, the earlier of the
two readings counts. A wall time that clocks skip going forward maps to the instant of
the jump. So every window covers exactly its real elapsed time, and DST needs no
special cases further on.

Cost. Weeks are cut at *anchors* (the opening of the week's first span). A calendar
works out a week (its merged intervals and covered total) only when a question needs
it, and keeps it: a calendar bound just now, after a mappings reload, pays for the days
its first target spans, not for years. A target is walked week by week for 8 weeks;
past that it is long, and totals summed per block of 64 weeks (built once, kept) let
`due` and `elapsed` step over whole blocks and bisect inside one, so the cost grows
with the number of years a target spans, not with its minutes, days or weeks.
Calendars with the same spans in one zone share the weeks in which no span opens on a
holiday (`WeeklyCalendar.with_holidays`): many accounts of one region, each with its
own holidays, cost about one calendar.
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from entitlements.errors import CalendarError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 1440

_US_PER_S = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_S
_WEEK_US = 7 * _US_PER_DAY
_US_PER_MIN = 60 * _US_PER_S
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_WEEK0_MONDAY = date(1970, 1, 5).toordinal()  # week 0 is the week starting this Monday
_BLOCK = 64  # weeks whose totals are summed together for skipping
_WALK = 8  # weeks walked one by one before a long target switches to blocks
_MAX_BLOCKS = 200 * 52 // _BLOCK  # ~200 years without enough coverage: a calendar error
_CACHE_LIMIT = 4096  # weeks kept per calendar before the cache starts over


def to_us(instant: datetime) -> int:
    """Microseconds since the Unix epoch; exact integer arithmetic from here on."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError(f"naive datetime {instant.isoformat()}: give a timezone-aware instant")
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US_PER_S + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


_ONE_US = timedelta(microseconds=1)


def duration_us(span: timedelta) -> int:
    return span // _ONE_US


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or a `CalendarError` that names it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown IANA time zone {name!r}") from exc


def wall_to_us(day: date, minute: int, tz: ZoneInfo) -> int:
    """The first instant at which the clock in ``tz`` reads ``day`` + ``minute`` or later.

    ``minute`` may reach or pass 1440 (24:00 is the next day's 00:00).
    """
    return _wall_us(day.toordinal(), minute, tz)


@lru_cache(maxsize=1 << 16)
def _wall_us(ordinal: int, minute: int, tz: ZoneInfo) -> int:
    """`wall_to_us` for a day given as its proleptic ordinal (`date.toordinal`).

    Kept per process like the holidays: a fact about the time zone database, the same
    for every calendar in that zone, so calendars bound by a mappings reload find the
    boundaries the version before worked out."""
    extra_days, minute = divmod(minute, MINUTES_PER_DAY)
    ordinal += extra_days
    day = date.fromordinal(ordinal)
    hour, minutes = divmod(minute, 60)
    local = (ordinal - _EPOCH_ORDINAL) * _US_PER_DAY + minute * _US_PER_MIN
    # PEP 495: fold=0 is the offset before a transition, fold=1 the one after; they
    # differ only on a reading clocks repeat or skip. Two offset look-ups and integer
    # arithmetic cost a fraction of converting there and back: calendars build their
    # weeks with this. (datetime(), not .replace(fold=1): keyword replace is slower.)
    earlier = tz.utcoffset(datetime(day.year, day.month, day.day, hour, minutes))
    later = tz.utcoffset(datetime(day.year, day.month, day.day, hour, minutes, fold=1))
    if earlier is None or later is None:  # never for a ZoneInfo; keeps the types honest
        raise CalendarError(f"{tz.key} gives no UTC offset on {day.isoformat()}")
    first = local - _offset_us(earlier)
    if earlier >= later:
        return first  # one reading, or clocks went back: the earlier of the two counts
    # The reading does not exist: clocks jumped over it. fold=0 puts it after the jump
    # by as much as the reading is into the gap; the jump itself is the answer.
    return _jump_before(first, _offset_us(later) - _offset_us(earlier), tz)


def _offset_us(offset: timedelta) -> int:
    return (offset.days * 86_400 + offset.seconds) * _US_PER_S + offset.microseconds


def _jump_before(after_us: int, gap_us: int, tz: ZoneInfo) -> int:
    """The instant clocks in ``tz`` jumped forward, knowing an instant less than one gap
    after it. Transitions fall on whole seconds, so a bisection on seconds is exact."""
    offset_after = from_us(after_us).astimezone(tz).utcoffset()
    lo, hi = (after_us - gap_us) // _US_PER_S, after_us // _US_PER_S
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == offset_after:
            hi = mid
        else:
            lo = mid
    return hi * _US_PER_S


@dataclass(frozen=True, slots=True)
class Boundary:
    """A weekday and wall time in one IANA zone: where a span opens or closes."""

    weekday: int  # 0 = Monday
    minute: int  # minutes after local midnight; 1440 means 24:00
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6 or not 0 <= self.minute <= MINUTES_PER_DAY:
            raise CalendarError(
                f"boundary out of range: weekday {self.weekday}, minute {self.minute}"
            )

    def instant(self, monday: int, weeks_later: int = 0) -> int:
        """This boundary in the week whose Monday has the ordinal ``monday`` (days are
        ordinals here: date arithmetic costs more than the rest of a week's work)."""
        return _wall_us(monday + self.weekday + 7 * weeks_later, self.minute, self.zone)

    def __str__(self) -> str:
        hours, minutes = divmod(self.minute, 60)
        return f"{WEEKDAYS[self.weekday].title()} {hours:02d}:{minutes:02d} {self.zone.key}"


@dataclass(frozen=True, slots=True)
class Span:
    """Covered from ``opens`` until the first ``closes`` after it, once a week."""

    opens: Boundary
    closes: Boundary

    def __post_init__(self) -> None:
        if self.opens.minute >= MINUTES_PER_DAY:
            raise CalendarError(f"a span cannot open at 24:00 ({self.opens})")

    @property
    def wraps(self) -> bool:
        """In one zone: True when the span closes in the following week (e.g. Sunday
        22:00 to Monday 06:00). Across zones local readings do not compare; see
        `closes_after`."""
        return (self.closes.weekday, self.closes.minute) <= (self.opens.weekday, self.opens.minute)

    def closes_after(self, monday: int, opens: int) -> int:
        """The first closing instant after ``opens`` (the opening in the week whose Monday
        has the ordinal ``monday``)."""
        if self.opens.zone.key == self.closes.zone.key:
            return self.closes.instant(monday, 1 if self.wraps else 0)
        # Different zones: the close may fall in the week before (Monday 00:00 Tokyo
        # to Sunday 20:00 New York) or after, whatever the local readings say.
        weeks = -1
        while (closes := self.closes.instant(monday, weeks)) <= opens:
            weeks += 1
        return closes

    def __str__(self) -> str:
        return f"{self.opens} to {self.closes}"


@lru_cache(maxsize=2048)
def _public_holidays(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    """Public holidays dated in ``year``.

    Observed days can fall in the neighbouring year (US New Year's Day observed on
    31 December), so both years are asked and the dates filtered.
    """
    try:
        table = holidays_lib.country_holidays(country, subdiv=subdivision, years=(year, year + 1))
    except NotImplementedError as exc:
        where = f"{country!r}" + (f" subdivision {subdivision!r}" if subdivision else "")
        raise CalendarError(f"the holidays library knows no public holidays for {where}") from exc
    return {day: str(name) for day, name in table.items() if day.year == year}


@dataclass(frozen=True, slots=True)
class HolidaySet:
    """Days on which a calendar does not open: explicit dates and/or a country's public
    holidays (with an optional subdivision), resolved by the ``holidays`` library."""

    dates: frozenset[date] = frozenset()
    country: str | None = None
    subdivision: str | None = None

    def __bool__(self) -> bool:
        return bool(self.dates) or self.country is not None

    def __contains__(self, day: object) -> bool:
        return self.name(day) is not None if isinstance(day, date) else False

    def name(self, day: date) -> str | None:
        """Why ``day`` is a holiday, or None when it is not."""
        if day in self.dates:
            return "holiday (listed in the mapping)"
        if self.country is not None:
            return _public_holidays(self.country, self.subdivision, day.year).get(day)
        return None

    def any_between(self, first: int, last: int) -> bool:
        """Whether a holiday falls on a day from the ordinal ``first`` to ``last``
        (inclusive, at most a year apart): one look-up per year instead of one per day,
        for days with none (most weeks)."""
        year = date.fromordinal(first).year
        days = _holiday_ordinals(self, year)
        last_year = date.fromordinal(last).year
        if last_year != year:
            days = days + _holiday_ordinals(self, last_year)
        i = bisect.bisect_left(days, first)
        return i < len(days) and days[i] <= last

    def check(self) -> None:
        """Raise `CalendarError` now if the country or subdivision is unknown."""
        if self.country is not None:
            _public_holidays(self.country, self.subdivision, 2026)

    def __str__(self) -> str:
        parts = []
        if self.country:
            parts.append(self.country + (f"-{self.subdivision}" if self.subdivision else ""))
        if self.dates:
            parts.append(f"{len(self.dates)} listed date(s)")
        return ", ".join(parts) or "none"


NO_HOLIDAYS = HolidaySet()


@lru_cache(maxsize=4096)
def _holiday_ordinals(holidays: HolidaySet, year: int) -> tuple[int, ...]:
    """The ordinals of ``holidays`` dated in ``year``, sorted."""
    listed = {d.toordinal() for d in holidays.dates if d.year == year}
    if holidays.country is not None:
        public = _public_holidays(holidays.country, holidays.subdivision, year)
        listed.update(d.toordinal() for d in public)
    return tuple(sorted(listed))


class Calendar(ABC):
    """Answers how much covered time lies between instants, and when a target is due.

    Instants are timezone-aware datetimes; internally integer microseconds since the
    epoch so that arithmetic is exact.
    """

    name: str
    business_day: timedelta  # what one "business day" target means on this calendar

    def due(self, start: datetime, target: timedelta) -> datetime:
        """The earliest instant T with ``target`` covered time in ``[start, T)``."""
        try:
            return from_us(self.due_us(to_us(start), duration_us(target)))
        except OverflowError:
            raise CalendarError(f"{self.name}: the due time falls outside years 1-9999") from None

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Covered time in ``[start, end)`` (zero when ``end`` is not after ``start``)."""
        return timedelta(microseconds=self.elapsed_us(to_us(start), to_us(end)))

    def is_open(self, at: datetime) -> bool:
        return self.is_open_us(to_us(at))

    @abstractmethod
    def due_us(self, start: int, target: int) -> int: ...

    @abstractmethod
    def elapsed_us(self, start: int, end: int) -> int: ...

    @abstractmethod
    def is_open_us(self, at: int) -> bool: ...

    @abstractmethod
    def describe(self) -> str: ...

    def __str__(self) -> str:
        return self.describe()


class AlwaysOpen(Calendar):
    """24x7: every instant is covered."""

    def __init__(self, name: str = "24x7", business_day: timedelta = timedelta(hours=24)) -> None:
        self.name = name
        self.business_day = business_day

    def due_us(self, start: int, target: int) -> int:
        return start + max(target, 0)

    def elapsed_us(self, start: int, end: int) -> int:
        return max(end - start, 0)

    def is_open_us(self, at: int) -> bool:
        return True

    def describe(self) -> str:
        return "always covered (24x7)"

    def __repr__(self) -> str:
        return f"AlwaysOpen({self.name!r})"


@dataclass(frozen=True, slots=True)
class _Week:
    """Covered time between one anchor and the next, merged and clipped."""

    anchor: int
    next_anchor: int
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    before: tuple[int, ...]  # covered time in [anchor, starts[i])
    upto: tuple[int, ...]  # covered time in [anchor, ends[i])

    @property
    def total(self) -> int:
        return self.upto[-1] if self.upto else 0

    def covered_before(self, at: int) -> int:
        """Covered time in ``[anchor, at)`` for ``anchor <= at <= next_anchor``."""
        i = bisect.bisect_right(self.starts, at) - 1
        if i < 0:
            return 0
        return self.before[i] + min(at, self.ends[i]) - self.starts[i]

    def instant_after(self, covered: int) -> int:
        """The earliest instant T with ``covered`` time in ``[anchor, T)``; 0 < covered <= total."""
        i = bisect.bisect_left(self.upto, covered)
        return self.starts[i] + covered - self.before[i]


class WeeklyCalendar(Calendar):
    """Weekly spans, each boundary in its own zone, minus holidays.

    A plain class rather than a frozen dataclass: it is immutable from outside, but it
    memoises the weeks it has worked out, which is what makes it fast.
    """

    spans: tuple[Span, ...]
    holidays: HolidaySet

    def __init__(
        self,
        name: str,
        spans: Iterable[Span],
        *,
        holidays: HolidaySet = NO_HOLIDAYS,
        business_day: timedelta = timedelta(hours=8),
        bare: WeeklyCalendar | None = None,
    ) -> None:
        self.name = name
        self.spans = tuple(sorted(spans, key=lambda s: (s.opens.weekday, s.opens.minute)))
        if not self.spans:
            raise CalendarError(f"calendar {name!r} has no covered time")
        if business_day <= timedelta(0):
            raise CalendarError(f"calendar {name!r}: a business day must be longer than zero")
        if bare is not None and (bare.spans != self.spans or bare.holidays):
            raise CalendarError(f"calendar {name!r}: can share weeks only with its own spans")
        self.holidays = holidays
        self.business_day = business_day
        # The same spans with no holidays, shared by every calendar of one zone: its weeks
        # serve here whenever no holiday falls in them (see `with_holidays`).
        self._bare = bare if holidays else None
        self._raw: dict[int, tuple[tuple[int, int], ...]] = {}
        self._weeks: dict[int, _Week] = {}
        self._blocks: dict[int, tuple[int, ...]] = {}
        # Which weeks' openings can be covered time in a week (see `_week`): in one
        # zone, only the week before and the week itself.
        zones = {b.zone.key for s in self.spans for b in (s.opens, s.closes)}
        self._reach = (1, 1) if len(zones) == 1 else (2, 2)
        self._anchor0 = self._anchor(0)
        self._description: str | None = None  # written when first read: reloads bind many

    def __repr__(self) -> str:
        return f"WeeklyCalendar({self.name!r}, {len(self.spans)} spans, holidays: {self.holidays})"

    def with_holidays(self, holidays: HolidaySet) -> WeeklyCalendar:
        """This calendar (which must have no holidays) closed on ``holidays`` as well.

        The two share work: a week in which no span opens on a holiday is the same week
        in both, worked out once. So the calendars of many accounts in one zone, each
        with its own holidays, cost about one calendar, and a calendar bound just now
        (after a mappings reload) starts with the weeks its zone already knows.
        """
        if self.holidays:
            raise CalendarError(f"calendar {self.name!r} already has holidays")
        if not holidays:
            return self
        return WeeklyCalendar(
            self.name, self.spans, holidays=holidays, business_day=self.business_day, bare=self
        )

    def describe(self) -> str:
        if self._description is None:
            text = "; ".join(str(s) for s in self.spans)
            holidays = self.holidays
            self._description = text + (f"; closed on holidays ({holidays})" if holidays else "")
        return self._description

    # -- the weeks ------------------------------------------------------------------

    @staticmethod
    def _monday(week: int) -> int:
        """The ordinal of the Monday of ``week``."""
        return _WEEK0_MONDAY + 7 * week

    def _anchor(self, week: int) -> int:
        return self.spans[0].opens.instant(self._monday(week))

    def _spans_opening_in(self, week: int) -> tuple[tuple[int, int], ...]:
        """``(opens, closes)`` of every span opening in ``week`` and not on a holiday."""
        cached = self._raw.get(week)
        if cached is not None:
            return cached
        monday = self._monday(week)
        holidays = self.holidays
        if self._bare is not None:
            # The bare calendar's openings, less those on a holiday. Nothing dropped: the
            # very same tuple, which `_week` recognises.
            every = self._bare._spans_opening_in(week)
            result = (
                every
                if not holidays.any_between(monday, monday + 6)
                else tuple(
                    piece
                    for span, piece in zip(self.spans, every, strict=True)
                    if date.fromordinal(monday + span.opens.weekday) not in holidays
                )
            )
            if len(result) == len(every):  # the holiday fell on a day no span opens
                result = every
        else:
            out = []
            check = bool(holidays) and holidays.any_between(monday, monday + 6)
            for span in self.spans:
                if check and date.fromordinal(monday + span.opens.weekday) in holidays:
                    continue
                opens = span.opens.instant(monday)
                out.append((opens, span.closes_after(monday, opens)))
            result = tuple(out)
        if len(self._raw) >= _CACHE_LIMIT:
            self._raw.clear()
        self._raw[week] = result
        return result

    def _week(self, week: int) -> _Week:
        cached = self._weeks.get(week)
        if cached is not None:
            return cached
        back, ahead = self._reach
        bare = self._bare
        if bare is not None:
            first, stop = self._monday(week - back), self._monday(week + ahead)
            reach = range(week - back, week + ahead)
            if not self.holidays.any_between(first, stop - 1) or all(
                self._spans_opening_in(w) is bare._raw.get(w) for w in reach
            ):
                # No holiday in reach (one look-up: most weeks, and all a calendar bound
                # by a reload asks first), or none on a day a span opens: the bare
                # calendar's week is this one.
                result = bare._week(week)
                self._keep(week, result)
                return result
        lo, hi = self._anchor(week), self._anchor(week + 1)
        # A span lasts at most a week. In one zone, local order is instant order: a span
        # that opened two weeks back has closed by this week's first opening, and none
        # of next week's opens before next week's anchor (the first span's opening), so
        # the week before and this one suffice. With mixed zones anchors follow the
        # first span's zone: a span of two weeks back can still be open here (a
        # Sunday-to-Sunday span in New York against an anchor in Tokyo), and one of the
        # week after may open before the next anchor. Take them all, clip, merge.
        pieces = sorted(
            piece for w in range(week - back, week + ahead) for piece in self._spans_opening_in(w)
        )
        starts: list[int] = []
        ends: list[int] = []
        before: list[int] = []
        covered = 0
        for raw_open, raw_close in pieces:
            opens, closes = max(raw_open, lo), min(raw_close, hi)
            if closes <= opens:
                continue
            if ends and opens <= ends[-1]:
                if closes > ends[-1]:
                    covered += closes - ends[-1]
                    ends[-1] = closes
                continue
            starts.append(opens)
            ends.append(closes)
            before.append(covered)
            covered += closes - opens
        upto = tuple(b + e - s for b, s, e in zip(before, starts, ends, strict=True))
        result = _Week(lo, hi, tuple(starts), tuple(ends), tuple(before), upto)
        self._keep(week, result)
        return result

    def _keep(self, week: int, data: _Week) -> None:
        if len(self._weeks) >= _CACHE_LIMIT:
            self._weeks.clear()
        self._weeks[week] = data

    def _locate(self, at: int) -> tuple[int, _Week]:
        """The week whose ``[anchor, next_anchor)`` holds ``at``."""
        week = (at - self._anchor0) // _WEEK_US  # exact but for DST shifts of a few hours
        data = self._week(week)
        while at < data.anchor:
            week -= 1
            data = self._week(week)
        while at >= data.next_anchor:
            week += 1
            data = self._week(week)
        return week, data

    def _block(self, block: int) -> tuple[int, ...]:
        """Running totals of a block of weeks: ``cum[i]`` = covered time of its first i weeks.
        Builds every week of the block that is not built yet: only for long walks."""
        cached = self._blocks.get(block)
        if cached is None:
            cum = [0]
            for week in range(block * _BLOCK, (block + 1) * _BLOCK):
                cum.append(cum[-1] + self._week(week).total)
            cached = self._blocks[block] = tuple(cum)
        return cached

    def _skip(self, week: int, remaining: int) -> tuple[int, int]:
        """From the anchor of ``week``: the week in which ``remaining`` covered time runs
        out, and how much of it is left to cover inside that week (0 < left <= total).

        Week by week first, building only the weeks the answer needs: a cold calendar
        (just loaded) pays for the days a target spans, not for a block of 64 weeks.
        Past `_WALK` weeks the target is long, and whole blocks, built once and kept,
        make the rest cost the same whatever its length."""
        for _ in range(_WALK):
            total = self._week(week).total
            if total >= remaining:
                return week, remaining
            remaining -= total
            week += 1
        for _ in range(_MAX_BLOCKS):
            block, offset = divmod(week, _BLOCK)
            cum = self._block(block)
            base = cum[offset]
            if cum[-1] - base >= remaining:
                i = bisect.bisect_left(cum, base + remaining, offset + 1)
                return block * _BLOCK + i - 1, remaining - (cum[i - 1] - base)
            remaining -= cum[-1] - base
            week = (block + 1) * _BLOCK
        raise CalendarError(f"calendar {self.name!r} does not cover the target within 200 years")

    def _sum_weeks(self, first: int, stop: int) -> int:
        """Covered time of the weeks ``first .. stop-1``: week by week for a short
        stretch (nothing built beyond it), by blocks for a long one."""
        total = 0
        walk_to = min(stop, first + _WALK)
        while first < walk_to:
            total += self._week(first).total
            first += 1
        while first < stop:
            block, offset = divmod(first, _BLOCK)
            end = min(stop - block * _BLOCK, _BLOCK)
            cum = self._block(block)
            total += cum[end] - cum[offset]
            first = block * _BLOCK + end
        return total

    # -- the answers ----------------------------------------------------------------

    def due_us(self, start: int, target: int) -> int:
        if target <= 0:
            return start
        week, data = self._locate(start)
        already = data.covered_before(start)
        if target <= data.total - already:
            return data.instant_after(already + target)
        week, left = self._skip(week + 1, target - (data.total - already))
        return self._week(week).instant_after(left)

    def elapsed_us(self, start: int, end: int) -> int:
        if end <= start:
            return 0
        first, first_data = self._locate(start)
        last, last_data = self._locate(end)
        if first == last:
            return first_data.covered_before(end) - first_data.covered_before(start)
        return (
            first_data.total
            - first_data.covered_before(start)
            + self._sum_weeks(first + 1, last)
            + last_data.covered_before(end)
        )

    def is_open_us(self, at: int) -> bool:
        _, data = self._locate(at)
        i = bisect.bisect_right(data.starts, at) - 1
        return i >= 0 and at < data.ends[i]
