"""All the rules one decision needs, as loaded from the mappings.

`Rulebook` is what ``decide(ticket, mappings, now)`` calls *mappings*: tiers, calendar
templates, accounts, severity and product vocabularies. It builds its look-up indexes
and binds every account's calendars once, at construction, so that deciding is only
look-ups and arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from entitlements.accounts import Account, Subscription
from entitlements.calendar_templates import CalendarTemplate
from entitlements.calendars import NO_HOLIDAYS, Calendar, HolidaySet
from entitlements.contacts import ContactPolicy, split
from entitlements.errors import EntitlementError
from entitlements.tickets import Ticket
from entitlements.tiers import Tier


@dataclass(frozen=True, slots=True)
class SeverityScheme:
    """Severity levels 1 (highest) to 4 and their names and helpdesk priorities (§1)."""

    levels: tuple[int, ...] = (1, 2, 3, 4)
    aliases: Mapping[str, int] = field(default_factory=dict)  # casefolded name → level
    from_priority: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # vendor → …
    to_priority: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    default: int = 3
    default_vendor: str = "zendesk"

    def level_of_priority(self, priority: str, vendor: str | None) -> int | None:
        wanted = priority.strip().casefold()
        # The ticket's own helpdesk first; a ticket of no known helpdesk tries them all.
        vendors = (
            [vendor]
            if vendor is not None and vendor in self.from_priority
            else [*self.from_priority]
        )
        for name in vendors:
            level = self.from_priority[name].get(wanted)
            if level is not None:
                return level
        return None

    def priority_for(self, level: int, vendor: str | None) -> str:
        table = self.to_priority.get(vendor or "") or self.to_priority[self.default_vendor]
        return table[level]


@dataclass(frozen=True, slots=True)
class Match:
    account: Account
    how: str  # "account id acme", "organization zendesk:360001", "email domain acme.example"


class Rulebook:
    """Immutable after construction; shared by every decision of a mappings version."""

    def __init__(
        self,
        *,
        tiers: Mapping[str, Tier],
        templates: Mapping[str, CalendarTemplate],
        accounts: tuple[Account, ...],
        default_tier: str,
        severity: SeverityScheme,
        products: Mapping[str, str],
        environments: tuple[str, ...] = ("production", "staging", "qa"),
        categories: Mapping[str, str] | None = None,
        contact_policy: ContactPolicy | None = None,
        tag_prefix: str = "tierdesk_",
        default_timezone: str = "UTC",
        version: str = "",
        reuse: Rulebook | None = None,
    ) -> None:
        """``reuse``: the rulebook in force before this one (a reload). Its calendars
        serve again wherever their template, zone and holidays are unchanged, with the
        weeks they have worked out: a reload that adds an account or a contact leaves
        every other account's decisions as fast as before it, and one that changes
        every account's holidays still finds each zone's holiday-free weeks built."""
        self.tiers = MappingProxyType(dict(tiers))
        self.templates = MappingProxyType(dict(templates))
        self.accounts = accounts
        self.default_tier = default_tier
        self.severity = severity
        self.products = MappingProxyType(dict(products))
        self.environments = environments
        self.categories = MappingProxyType(dict(categories or {}))
        self.contact_policy = contact_policy or ContactPolicy()
        self.tag_prefix = tag_prefix
        self.default_timezone = default_timezone
        self.version = version
        self._by_id = {a.id: a for a in accounts}
        # Highest rank first; sorted() is stable, so equal ranks keep the mapping's order.
        self._ranked = {
            a.id: tuple(sorted(a.subscriptions, key=lambda s: -self.tiers[s.tier].rank))
            for a in accounts
        }
        self._by_org = {
            (vendor, org): a
            for a in accounts
            for vendor, ids in a.organizations.items()
            for org in ids
        }
        self._by_domain = {d.casefold(): a for a in accounts for d in a.domains}
        self._shared: dict[tuple[str, str, HolidaySet], Calendar] = {}
        self._bare: dict[tuple[str, str], Calendar] = {}
        self._calendars: dict[tuple[str, str | None], Calendar] = {}
        for name, template in self.templates.items():
            # Only the calendars of a template that did not change are taken over; the
            # old rulebook is not kept (nor the calendars of accounts gone since).
            old = reuse if reuse is not None and reuse.templates.get(name) == template else None
            # Keyed None: the calendar for tickets of no known account.
            self._calendars[name, None] = self._bind(template, default_timezone, NO_HOLIDAYS, old)
            if template.per_account:
                for account in accounts:
                    self._calendars[name, account.id] = self._bind(
                        template, account.timezone, account.holidays, old
                    )

    def _bind(
        self, template: CalendarTemplate, zone: str, holidays: HolidaySet, old: Rulebook | None
    ) -> Calendar:
        # Accounts in the same zone with the same holidays share one calendar, and so
        # share the weeks it has already worked out. Those of one zone with different
        # holidays share the weeks no holiday falls in, through the zone's bare
        # calendar: an account's first decision mostly finds its weeks worked out by
        # another account's. ``old``: the rulebook before a reload, same template.
        key = (template.name, zone, holidays if template.account_holidays else NO_HOLIDAYS)
        calendar = self._shared.get(key)
        if calendar is not None:
            return calendar
        at = (template.name, zone)
        bare = self._bare.get(at)
        if bare is None:
            # Kept even when every calendar of the zone is taken over: the next reload
            # may bring new holidays to bind on it.
            bare = old._bare.get(at) if old is not None else None
            self._bare[at] = bare = bare or template.bind_bare(zone)
        calendar = old._shared.get(key) if old is not None else None
        if calendar is None:
            calendar = template.bind(zone, holidays, bare=bare)
        self._shared[key] = calendar
        return calendar

    def calendar(self, name: str, account: Account | None) -> Calendar:
        """The calendar ``name`` as it runs for ``account`` (its zone and holidays)."""
        found = self._calendars.get((name, account.id if account else None))
        if found is None:
            found = self._calendars.get((name, None))
        if found is None:
            raise EntitlementError(f"no calendar called {name!r} in the mappings")
        return found

    def ranked_subscriptions(self, account: Account) -> tuple[Subscription, ...]:
        """The account's subscriptions, the highest-ranked tier first."""
        return self._ranked[account.id]

    def account(self, account_id: str) -> Account | None:
        return self._by_id.get(account_id)

    def find_account(self, ticket: Ticket) -> Match | None:
        """The account a ticket belongs to: by explicit id, then organization, then the
        requester's email domain (the longest matching domain wins)."""
        if ticket.account and ticket.account in self._by_id:
            return Match(self._by_id[ticket.account], f"account id {ticket.account}")
        org = ticket.organization
        if org is not None and (org.vendor, org.id) in self._by_org:
            return Match(self._by_org[org.vendor, org.id], f"organization {org.vendor}:{org.id}")
        if ticket.requester:
            # The domain itself, then each parent (eu.acme.example, acme.example, …): the
            # longest known one wins, in a few look-ups whatever the number of accounts.
            _, domain = split(ticket.requester)
            labels = domain.split(".")
            for i in range(len(labels)):
                known = ".".join(labels[i:])
                account = self._by_domain.get(known)
                if account is not None:
                    how = f"email domain {domain}" + (f" (under {known})" if i else "")
                    return Match(account, how)
        return None
