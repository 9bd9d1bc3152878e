"""Support tiers as data (RULES.md §3): targets, which calendar runs the clock,
products and categories covered, who may open tickets, routing and phone support.

Every choice a tier makes is a list of rules tried in order, first match wins; each
rule keeps the JSON pointer it was loaded from, so an explanation can name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from functools import lru_cache
from typing import Literal

EntitlementKind = Literal["named_contacts", "site_admins", "none"]


@dataclass(frozen=True, slots=True)
class Target:
    """A response target: fixed minutes, or business days of the calendar that runs it."""

    minutes: int = 0
    business_days: Fraction = Fraction(0)

    def on(self, business_day: timedelta) -> timedelta:
        if not self.business_days:  # most targets: no need to look at the calendar
            return _FIXED.get(self.minutes) or timedelta(minutes=self.minutes)
        return _span(self.minutes, self.business_days, business_day)

    def __str__(self) -> str:
        if not self.business_days:
            return _FIXED_TEXT.get(self.minutes) or _text(self.minutes, self.business_days)
        return _text(self.minutes, self.business_days)


# Targets are few and decisions many: the answers are memoised.
_FIXED = {minutes: timedelta(minutes=minutes) for minutes in range(0, 7 * 24 * 60 + 1, 15)}


@lru_cache(maxsize=256)
def _span(minutes: int, business_days: Fraction, business_day: timedelta) -> timedelta:
    days = business_days
    return timedelta(minutes=minutes) + business_day * days.numerator / days.denominator


@lru_cache(maxsize=256)
def _text(minutes: int, business_days: Fraction) -> str:
    if business_days:
        return f"{business_days} business day{'' if business_days == 1 else 's'}"
    hours, rest = divmod(minutes, 60)
    if hours and not rest:
        return f"{hours} h"
    return f"{hours} h {rest} min" if hours else f"{rest} min"


@dataclass(frozen=True, slots=True)
class Condition:
    """Which tickets a rule applies to; None means any."""

    severities: frozenset[int] | None = None
    environments: frozenset[str] | None = None
    products: frozenset[str] | None = None

    def matches(self, severity: int, environment: str, product: str | None) -> bool:
        return (
            (self.severities is None or severity in self.severities)
            and (self.environments is None or environment in self.environments)
            and (self.products is None or product in self.products)
        )

    def __str__(self) -> str:
        parts = []
        if self.products is not None:
            parts.append("products " + ", ".join(sorted(self.products)))
        if self.severities is not None:
            parts.append("severity " + ", ".join(f"L{s}" for s in sorted(self.severities)))
        if self.environments is not None:
            parts.append("environment " + ", ".join(sorted(self.environments)))
        return "; ".join(parts) or "every ticket"


@dataclass(frozen=True, slots=True)
class CalendarRule:
    when: Condition
    calendar: str
    why: str
    pointer: str


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """Send the ticket to ``team`` while the calendar ``while_closed`` is closed."""

    team: str
    while_closed: str
    why: str
    pointer: str


@dataclass(frozen=True, slots=True)
class Tier:
    id: str
    name: str
    rank: int  # higher is better: an account's tier is its highest-ranked subscription
    targets: Mapping[int, Target]
    default_calendar: str
    calendar_rules: tuple[CalendarRule, ...] = ()
    products_include: frozenset[str] | None = None  # None: every product...
    products_exclude: frozenset[str] = frozenset()  # ...but these
    categories_exclude: frozenset[str] = frozenset()
    addon_categories: Mapping[str, str] = field(default_factory=dict)  # category → add-on
    entitlement: EntitlementKind = "none"
    hours: bool = False  # pay-as-you-go: needs hours left
    low_balance_fraction: float = 0.2  # "low" under this share of the last bundle
    team: str | None = None
    routing_rules: tuple[RoutingRule, ...] = ()
    phone_severities: frozenset[int] = frozenset()
    severity_names: Mapping[int, str] = field(default_factory=dict)
    escalation_levels: tuple[str, ...] = ()
    # RULES.md §3 (assumptions, so settings): each further escalation comes after this
    # share of the target again; a ticket is at risk after this share of its target.
    escalation_step: float = 1.0
    at_risk_fraction: float = 0.75
    pointer: str = ""

    def covers_product(self, product: str | None) -> bool:
        if product is None:
            return True  # no product named: nothing to exclude on
        if product in self.products_exclude:
            return False
        return self.products_include is None or product in self.products_include

    def calendar_for(
        self, severity: int, environment: str, product: str | None
    ) -> tuple[str, CalendarRule | None]:
        for rule in self.calendar_rules:
            if rule.when.matches(severity, environment, product):
                return rule.calendar, rule
        return self.default_calendar, None


_FIXED_TEXT = {minutes: _text(minutes, Fraction(0)) for minutes in _FIXED}
