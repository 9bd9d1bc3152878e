"""The pay-as-you-go hours ledger (RULES.md §3) as arithmetic: entries and balances.

Purchases come from the mappings' bundles; consumption from time logged on tickets.
Webhooks arrive late, twice, or out of order, and worklogs are edited and deleted, so
consumption is never summed from events: each worklog is one entry, keyed
``(tenant, ticket, worklog id)``, and only its **latest version** counts.

Versions are ordered by ``(deleted, updated_at, seq)``:

- a deletion (a tombstone, counting 0 s) beats every live version of its worklog,
  whatever their times: Jira cannot revive a deleted worklog, and its deletion webhook
  carries the worklog's last ``updated`` time, which an edit's replay can equal;
- then the vendor's ``updated`` time;
- then ``seq``, the order of arrival (two edits stamped in the same second: the later
  one received wins, and a replay of the inbox replays them in that order).

A worklog event names a ticket but seldom its account (Jira's name only the issue id),
so the account is a property of the **ticket**, learnt from the ticket's own events
(`TicketLink`, newest snapshot wins): a worklog received before its ticket's account is
known counts as soon as it is, and a ticket moved to another account takes its hours
along.

The same rules run in SQL in ``store/ledger.py``; `Book` is the reference the property
tests hold both to. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal, TypeVar

from entitlements.accounts import Account, Subscription
from entitlements.errors import EntitlementError
from entitlements.hours import HoursBalance, hours_to_s
from entitlements.rulebook import Rulebook

# The entry of a Zendesk ticket's "Total time spent (sec)" (Time Tracking app): the
# field holds the ticket's running total, so the newest total is the ticket's whole use.
ZENDESK_TOTAL = "zendesk-total"

# The mappings' ``hours_used``: hours used before tierdesk kept the ledger.
CARRIED_KEY = "hours_used"

PurchaseKind = Literal["bundle", "carried"]
K = TypeVar("K")
V = TypeVar("V")


class LedgerError(EntitlementError):
    """An entry the ledger cannot hold (negative seconds, a naive time)."""


@dataclass(frozen=True, slots=True)
class Purchase:
    """A bundle bought (``bundle``), or the mappings' ``hours_used`` carried into the
    ledger (``carried``: counts as used). ``key`` is stable within the account."""

    account: str
    key: str
    seconds: int
    purchased_on: date
    kind: PurchaseKind = "bundle"

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise LedgerError(f"purchase {self.account}/{self.key}: negative seconds")


@dataclass(frozen=True, slots=True, order=True)
class WorklogKey:
    tenant: str
    ticket: str
    worklog: str

    def __str__(self) -> str:
        return f"{self.tenant}/{self.ticket}/{self.worklog}"


@dataclass(frozen=True, slots=True)
class WorklogVersion:
    """One version of a worklog as a webhook told it; a deletion is a tombstone."""

    key: WorklogKey
    seconds: int
    updated_at: datetime
    seq: int = 0  # arrival order, given by whoever keeps the entries
    deleted: bool = False

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise LedgerError(f"worklog {self.key}: negative seconds")
        if self.updated_at.tzinfo is None:
            raise LedgerError(f"worklog {self.key}: updated_at has no UTC offset")

    @property
    def counted_s(self) -> int:
        return 0 if self.deleted else self.seconds

    @property
    def rank(self) -> tuple[bool, datetime, int]:
        return (self.deleted, self.updated_at, self.seq)

    def replaces(self, current: WorklogVersion | None) -> bool:
        """True when this version is newer than ``current``. A newer version replaces
        the current one even with the same seconds: its time is what keeps an older
        version, delivered later, out. Only a copy of the current one (a replay) does
        not, which saves a write and orders nothing differently: every later arrival
        outranks both anyway."""
        if current is None:
            return True
        same = (self.updated_at, self.seconds, self.deleted) == (
            current.updated_at,
            current.seconds,
            current.deleted,
        )
        return self.rank > current.rank and not same


@dataclass(frozen=True, slots=True)
class TicketLink:
    """The account a ticket belongs to, as of one of its snapshots (None: no known one)."""

    tenant: str
    ticket: str
    account: str | None
    seen_at: datetime
    seq: int = 0

    @property
    def rank(self) -> tuple[datetime, int]:
        return (self.seen_at, self.seq)

    def replaces(self, current: TicketLink | None) -> bool:
        """As `WorklogVersion.replaces`: a newer snapshot naming the same account still
        replaces the current link, so that an older one naming another cannot."""
        if current is None:
            return True
        same = (self.seen_at, self.account) == (current.seen_at, current.account)
        return self.rank > current.rank and not same


@dataclass(frozen=True, slots=True)
class Totals:
    """What a balance is made of, before the mapping's low-balance rule is applied."""

    purchased_s: int = 0
    used_s: int = 0
    last_bundle_s: int = 0

    def balance(self, low_fraction: float) -> HoursBalance:
        return HoursBalance(self.purchased_s, self.used_s, self.last_bundle_s, low_fraction)


@dataclass(frozen=True, slots=True)
class Book:
    """The whole ledger as a value: every ``with_…`` returns a new book and whether the
    entry changed anything. The reference model of the SQL ledger, and the arithmetic a
    caller without a store can use."""

    # Never changed in place: every ``with_…`` builds new dicts.
    purchases: Mapping[tuple[str, str], Purchase] = field(default_factory=dict)
    worklogs: Mapping[WorklogKey, WorklogVersion] = field(default_factory=dict)
    links: Mapping[tuple[str, str], TicketLink] = field(default_factory=dict)

    def with_purchase(self, purchase: Purchase) -> tuple[Book, bool]:
        """The mappings are the truth about purchases: a key's newest figures replace
        the old ones, and the same figures again change nothing."""
        key = (purchase.account, purchase.key)
        if self.purchases.get(key) == purchase:
            return self, False
        return replace(self, purchases=_with(self.purchases, key, purchase)), True

    def with_worklog(self, version: WorklogVersion) -> tuple[Book, int]:
        """The book with ``version`` applied, and by how many seconds the worklog's
        counted time moved (0: unchanged, e.g. a replay or an older version)."""
        current = self.worklogs.get(version.key)
        if not version.replaces(current):
            return self, 0
        before = current.counted_s if current else 0
        book = replace(self, worklogs=_with(self.worklogs, version.key, version))
        return book, version.counted_s - before

    def with_link(self, link: TicketLink) -> tuple[Book, TicketMove | None]:
        """The book with the ticket's account as ``link`` says, and the move of its
        logged time from one account to another when the account changed."""
        key = (link.tenant, link.ticket)
        current = self.links.get(key)
        if not link.replaces(current):
            return self, None
        before = current.account if current else None
        book = replace(self, links=_with(self.links, key, link))
        if before == link.account:
            return book, None  # a first link to no account: nothing moves
        return book, TicketMove(before, link.account, self.ticket_s(link.tenant, link.ticket))

    def account_of(self, tenant: str, ticket: str) -> str | None:
        link = self.links.get((tenant, ticket))
        return link.account if link else None

    def ticket_s(self, tenant: str, ticket: str) -> int:
        return sum(
            v.counted_s
            for k, v in self.worklogs.items()
            if (k.tenant, k.ticket) == (tenant, ticket)
        )

    def totals(self, account: str, on: date | None = None) -> Totals:
        """Purchases bought by ``on`` (all when None) minus the latest version of every
        worklog on the account's tickets, minus the usage carried from the mappings."""
        mine = [p for p in self.purchases.values() if p.account == account]
        bundles = [p for p in mine if p.kind == "bundle" and (on is None or p.purchased_on <= on)]
        carried = sum(p.seconds for p in mine if p.kind == "carried")
        logged = sum(
            v.counted_s
            for k, v in self.worklogs.items()
            if self.account_of(k.tenant, k.ticket) == account
        )
        last = max(bundles, key=lambda p: (p.purchased_on, p.key), default=None)
        return Totals(
            purchased_s=sum(p.seconds for p in bundles),
            used_s=carried + logged,
            last_bundle_s=last.seconds if last else 0,
        )

    def unattributed_s(self) -> int:
        """Time logged on tickets of no known account (their ticket event not seen yet)."""
        return sum(
            v.counted_s
            for k, v in self.worklogs.items()
            if self.account_of(k.tenant, k.ticket) is None
        )


@dataclass(frozen=True, slots=True)
class TicketMove:
    """A ticket's logged time changed account (``None``: no known account)."""

    source: str | None
    target: str | None
    seconds: int


def _with(mapping: Mapping[K, V], key: K, value: V) -> Mapping[K, V]:
    return {**mapping, key: value}


# -- the mappings' side ---------------------------------------------------------------


def hours_subscriptions(account: Account, rulebook: Rulebook) -> tuple[Subscription, ...]:
    """The account's pay-as-you-go subscriptions (tiers that sell hours), best first."""
    return tuple(s for s in rulebook.ranked_subscriptions(account) if rulebook.tiers[s.tier].hours)


def hours_accounts(rulebook: Rulebook) -> tuple[Account, ...]:
    return tuple(a for a in rulebook.accounts if hours_subscriptions(a, rulebook))


def low_fraction(account: Account, rulebook: Rulebook) -> float:
    """The mapping's low-balance share of the last bundle (the tier's
    ``hours.low_balance_fraction``) of the account's best hours subscription."""
    subs = hours_subscriptions(account, rulebook)
    if not subs:
        raise LedgerError(f"account {account.id} has no pay-as-you-go subscription")
    return rulebook.tiers[subs[0].tier].low_balance_fraction


def purchases_of(account: Account, rulebook: Rulebook) -> tuple[Purchase, ...]:
    """Every bundle of the account's hours subscriptions, and the mappings' ``hours_used``
    as one carried entry. A bundle's key is ``tier/date/n`` (the n-th bundle of that
    tier bought that day, in the mappings' order): editing its hours corrects that
    purchase instead of adding another, and moving bundles of other days changes nothing."""
    out: list[Purchase] = []
    seen: dict[tuple[str, date], int] = {}
    carried_s = 0
    first_day: date | None = None
    for sub in sorted(hours_subscriptions(account, rulebook), key=lambda s: s.index):
        for bundle in sub.bundles:
            n = seen[sub.tier, bundle.purchased] = seen.get((sub.tier, bundle.purchased), 0) + 1
            key = f"{sub.tier}/{bundle.purchased.isoformat()}/{n}"
            out.append(Purchase(account.id, key, hours_to_s(bundle.hours), bundle.purchased))
            first_day = min(first_day or bundle.purchased, bundle.purchased)
        carried_s += hours_to_s(sub.hours_used)
    if carried_s:
        day = first_day or date(1970, 1, 1)
        out.append(Purchase(account.id, CARRIED_KEY, carried_s, day, "carried"))
    return tuple(out)
