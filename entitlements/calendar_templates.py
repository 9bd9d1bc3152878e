"""Calendars as the mappings describe them, before they meet an account.

"Business hours in region" (RULES.md §2) means the customer's zone and the customer's
holidays, so one template yields a calendar per (zone, holidays). Templates that name
fixed zones (24x7, the global 24x5 week) yield one calendar for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from entitlements.calendars import (
    NO_HOLIDAYS,
    AlwaysOpen,
    Boundary,
    Calendar,
    HolidaySet,
    Span,
    WeeklyCalendar,
    zone,
)

ACCOUNT = "account"  # stands for "the account's own zone / holidays" in a template


@dataclass(frozen=True, slots=True)
class BoundarySpec:
    weekday: int
    minute: int
    zone: str  # an IANA name, or ACCOUNT


@dataclass(frozen=True, slots=True)
class SpanSpec:
    opens: BoundarySpec
    closes: BoundarySpec


def daily_window(weekday: int, opens: int, closes: int, zone_name: str) -> SpanSpec:
    """A window that opens on ``weekday`` at ``opens`` minutes and closes at ``closes``
    minutes; a close at or before the opening means the next day (a night shift), and
    1440 means midnight at the end of the day."""
    close_day = weekday if opens < closes else (weekday + 1) % 7
    return SpanSpec(
        BoundarySpec(weekday, opens, zone_name), BoundarySpec(close_day, closes, zone_name)
    )


@dataclass(frozen=True, slots=True)
class CalendarTemplate:
    name: str
    description: str
    spans: tuple[SpanSpec, ...]  # empty: always open (24x7)
    business_day: timedelta = timedelta(hours=8)
    account_holidays: bool = False  # close on the account's holidays
    holidays: HolidaySet = NO_HOLIDAYS  # closed on these whatever the account

    @property
    def per_account(self) -> bool:
        return self.account_holidays or any(
            b.zone == ACCOUNT for s in self.spans for b in (s.opens, s.closes)
        )

    def holidays_for(self, account_holidays: HolidaySet) -> HolidaySet:
        """The template's holidays and, when it says so, the account's: listed dates add
        up; a calendar has one region for public holidays, the account's when it names
        one (it is the customer's region that "business hours in region" means)."""
        if not self.account_holidays or not account_holidays:
            return self.holidays
        region = account_holidays if account_holidays.country else self.holidays
        return HolidaySet(
            self.holidays.dates | account_holidays.dates, region.country, region.subdivision
        )

    def bind(
        self,
        account_zone: str,
        account_holidays: HolidaySet = NO_HOLIDAYS,
        *,
        bare: Calendar | None = None,
    ) -> Calendar:
        """The calendar this template means for an account in ``account_zone``.

        ``bare``: this template bound in the same zone with no holidays at all (see
        `bind_bare`); the calendar returned shares the weeks it works out.
        """
        if not self.spans:
            return AlwaysOpen(self.name, self.business_day)
        if isinstance(bare, WeeklyCalendar):
            return bare.with_holidays(self.holidays_for(account_holidays))
        return self._weekly(account_zone, self.holidays_for(account_holidays))

    def bind_bare(self, account_zone: str) -> Calendar:
        """This template in ``account_zone`` closed on no holiday, not even its own: what
        the calendars of every account in that zone share (`WeeklyCalendar.with_holidays`)."""
        if not self.spans:
            return AlwaysOpen(self.name, self.business_day)
        return self._weekly(account_zone, NO_HOLIDAYS)

    def _weekly(self, account_zone: str, holidays: HolidaySet) -> WeeklyCalendar:

        def boundary(spec: BoundarySpec) -> Boundary:
            return Boundary(
                spec.weekday, spec.minute, zone(account_zone if spec.zone == ACCOUNT else spec.zone)
            )

        return WeeklyCalendar(
            self.name,
            [Span(boundary(s.opens), boundary(s.closes)) for s in self.spans],
            holidays=holidays,
            business_day=self.business_day,
        )
