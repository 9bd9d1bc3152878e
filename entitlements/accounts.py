"""Customers and what they bought: accounts, subscriptions, hour bundles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from entitlements.calendars import NO_HOLIDAYS, HolidaySet


@dataclass(frozen=True, slots=True)
class Bundle:
    """Pay-as-you-go hours bought on a date (RULES.md §3)."""

    hours: float
    purchased: date


@dataclass(frozen=True, slots=True)
class Subscription:
    """One contract an account holds for one tier."""

    tier: str
    licenses: int = 1
    starts: date | None = None  # first covered day, in the account's zone
    ends: date | None = None  # first day no longer covered
    named_contacts: tuple[str, ...] = ()
    partner_contacts: tuple[str, ...] = ()
    sen: str | None = None  # Priority: the support entitlement number of the site
    site_admins: tuple[str, ...] = ()
    products: frozenset[str] | None = None  # narrows the tier's products (e.g. one SEN)
    addons: frozenset[str] = frozenset()
    bundles: tuple[Bundle, ...] = ()
    hours_used: float = 0.0
    index: int = 0  # position in the account's list
    pointer: str = ""  # where the mappings hold it, for explanations
    # Casefolded look-up sets, derived once: a decision only tests membership.
    contact_set: frozenset[str] = field(init=False, repr=False, compare=False)
    admin_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        contacts = (*self.named_contacts, *self.partner_contacts)
        object.__setattr__(self, "contact_set", frozenset(a.strip().casefold() for a in contacts))
        object.__setattr__(
            self, "admin_set", frozenset(a.strip().casefold() for a in self.site_admins)
        )

    def current_on(self, day: date) -> str | None:
        """None when ``day`` is inside the contract, else the reason code."""
        if self.starts is not None and day < self.starts:
            return "contract_not_started"
        if self.ends is not None and day >= self.ends:
            return "contract_ended"
        return None


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    domains: tuple[str, ...]
    timezone: str
    subscriptions: tuple[Subscription, ...] = ()
    holidays: HolidaySet = NO_HOLIDAYS
    organizations: Mapping[str, frozenset[str]] = field(default_factory=dict)  # vendor → ids
    fallback_tier: str | None = None  # None: the mappings' default tier
    shared_mailboxes: frozenset[str] = frozenset()  # full addresses known to be shared
