"""Templates bound to an account: the account's zone, and holidays that add up."""

from __future__ import annotations

from datetime import date

from entitlements.calendar_templates import ACCOUNT, CalendarTemplate, daily_window
from entitlements.calendars import HolidaySet

NEW_YEAR = frozenset({date(2027, 1, 4)})  # a company shutdown day the template lists


def template(holidays: HolidaySet) -> CalendarTemplate:
    spans = tuple(daily_window(d, 540, 1020, ACCOUNT) for d in range(5))
    return CalendarTemplate("bh", "test", spans, account_holidays=True, holidays=holidays)


def test_listed_dates_add_up_and_the_accounts_region_wins() -> None:
    # Both name a country: the account's region is the one "in region" means, and the
    # template's listed dates still count (they were once dropped here).
    bound = template(HolidaySet(NEW_YEAR, "US")).holidays_for(
        HolidaySet(frozenset({date(2026, 12, 24)}), "GB", "ENG")
    )
    assert bound == HolidaySet(NEW_YEAR | {date(2026, 12, 24)}, "GB", "ENG")


def test_an_account_without_a_country_keeps_the_templates_region() -> None:
    bound = template(HolidaySet(NEW_YEAR, "US")).holidays_for(
        HolidaySet(frozenset({date(2026, 12, 24)}))
    )
    assert bound == HolidaySet(NEW_YEAR | {date(2026, 12, 24)}, "US", None)


def test_no_account_holidays_leaves_the_templates() -> None:
    own = HolidaySet(NEW_YEAR)
    assert template(own).holidays_for(HolidaySet()) == own
