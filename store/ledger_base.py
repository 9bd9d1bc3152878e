"""The hours ledger's interface and values, shared by its two backends: `Ledger` (the
protocol `store.ledger.SqliteLedger` and `store.ledger_postgres.PostgresLedger`
implement), the `Statement` and `Synced` they return, and the microsecond instants
their tables store. Nothing here imports a backend; `store.open_ledger` picks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from entitlements.hours import HoursBalance
from entitlements.ledger import (
    LedgerError,
    Purchase,
    PurchaseKind,
    TicketMove,
    Totals,
    WorklogVersion,
)
from entitlements.rulebook import Rulebook

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_us(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise LedgerError(f"{instant.isoformat()}: a ledger time needs a UTC offset")
    return (instant - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class Statement:
    """An account's ledger for printing: its purchases and the latest version of every
    worklog on its tickets (deleted ones included, shown as such)."""

    purchases: tuple[Purchase, ...]
    worklogs: tuple[WorklogVersion, ...]


@dataclass(frozen=True, slots=True)
class Linked:
    """What the ledger holds of one ticket, read for a batch of events at once."""

    account: str | None  # the account it counts for (None: none, or never linked)
    logged: bool  # time is logged on it: a new link would move that time


@dataclass(frozen=True, slots=True)
class TicketLink:
    """A link that moves no time (nothing is logged on the ticket), written later with
    others in one transaction (`Ledger.link_all`)."""

    tenant: str
    ticket: str
    account: str | None
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Synced:
    recorded: int  # purchases added or corrected
    removed: int  # purchases no longer in the mappings


class Ledger(Protocol):
    def record_purchase(
        self,
        account: str,
        key: str,
        seconds: int,
        purchased_on: date,
        kind: PurchaseKind = "bundle",
    ) -> bool:
        """Record (or correct) one purchase; False when it was already so."""
        ...

    def record_worklog(
        self,
        tenant: str,
        ticket: str,
        worklog_id: str,
        seconds: int,
        updated_at: datetime,
        *,
        deleted: bool = False,
    ) -> int:
        """Record one version of a worklog (a deletion: ``deleted``, counted as 0 s).
        Returns how many seconds the worklog's counted time moved: 0 when this version
        changed nothing (a replay, an older version, an edit to the same time)."""
        ...

    def link_ticket(
        self, tenant: str, ticket: str, account: str | None, seen_at: datetime
    ) -> TicketMove | None:
        """The ticket belongs to ``account`` as of its snapshot at ``seen_at``; the move
        of its logged time when that changed which account it counts for."""
        ...

    def link_all(self, links: Sequence[TicketLink]) -> None:
        """`link_ticket` for tickets on which no time is logged, in one transaction: as
        it, a link older than the one the ledger has is not written."""
        ...

    def account_of(self, tenant: str, ticket: str) -> str | None: ...

    def links_of(self, tenant: str, tickets: Sequence[str]) -> dict[str, Linked]:
        """`account_of` for several tickets in one read, and whether time is logged on
        each; every ticket asked is in the answer (one the ledger does not know: no
        account, nothing logged)."""
        ...

    def totals(self, account: str, on: date | None = None) -> Totals:
        """Bundles bought by ``on`` (every one when None), and the time used."""
        ...

    def balance(
        self, account: str, low_fraction: float, on: date | None = None
    ) -> HoursBalance: ...

    def entries(self, account: str) -> Statement: ...

    def unattributed_s(self) -> int:
        """Seconds logged on tickets whose account is not known (yet)."""
        ...

    def sync_purchases(self, rulebook: Rulebook) -> Synced:
        """Make every mapped account's purchases those of its mappings (bundles and
        carried ``hours_used``); no write at all when they already are."""
        ...

    def close(self) -> None: ...
