"""The hours ledger in the store's SQLite file (RULES.md §3, `entitlements.ledger`);
`store.ledger_postgres` keeps the same tables in PostgreSQL, both implementing
`store.ledger_base.Ledger`, and `store.open_ledger` gives the one a database URL names.

Three tables beside the inbox:

- ``ledger_purchase``: one row per (account, key): the mappings' bundles, and their
  ``hours_used`` carried in (``kind = 'carried'``, counted as used);
- ``ledger_worklog``: one row per (tenant, ticket, worklog): its **latest version**
  only. The upsert itself keeps the newer version by ``(deleted, updated_us, seq)``, so
  a replayed, duplicated or late webhook cannot count twice or undo a newer one, even
  when two workers record versions of one worklog at once;
- ``ledger_ticket``: one row per (tenant, ticket): the account the ticket belongs to,
  from its newest snapshot, and ``logged_s``, the seconds its counted worklogs hold. A
  worklog on a ticket never linked gives it a row of no account, seen at 0, which any
  snapshot's link replaces;
- ``ledger_account``: one row per account with time logged: ``logged_s``, the sum of its
  tickets'.

The two running totals are kept by triggers (`_RUNNING_TOTALS`), in the transaction of
the write that moves them, whoever writes (a tierdesk older than them too): a balance reads
one row per table instead of walking every ticket the account ever had (at 10,000
tickets on one account that walk had doubled a balance's cost, and it grew with the
account's history). A file made before them gets them, filled in from its rows, the
first time it is opened (`SqliteLedger._count_running_totals`). ``seq`` (the order of
arrival) comes from a one-row counter taken inside the write transaction.

Connections as in `store.sqlite`: one per thread, WAL, a busy timeout, writers queued on
the same lock file as the inbox's and then ``BEGIN IMMEDIATE``; ``synchronous=FULL``
(ledger writes are few: worklogs, a ticket changing account, a purchase).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from entitlements.hours import HoursBalance
from entitlements.ledger import (
    Purchase,
    PurchaseKind,
    TicketMove,
    Totals,
    WorklogKey,
    WorklogVersion,
    purchases_of,
)
from entitlements.rulebook import Rulebook
from store.base import StoreError
from store.ledger_base import (
    Ledger,
    Linked,
    Statement,
    Synced,
    TicketLink,
    from_us,
    to_us,
)
from store.sqlite_file import SqliteFile

__all__ = ["Ledger", "SqliteLedger", "Statement", "Synced"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_purchase (
    account      TEXT NOT NULL,
    key          TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('bundle', 'carried')),
    seconds      INTEGER NOT NULL CHECK (seconds >= 0),
    purchased_on TEXT NOT NULL,  -- YYYY-MM-DD: compares as a date
    UNIQUE (account, key)
);
CREATE TABLE IF NOT EXISTS ledger_worklog (
    tenant     TEXT NOT NULL,
    ticket     TEXT NOT NULL,
    worklog    TEXT NOT NULL,
    seconds    INTEGER NOT NULL CHECK (seconds >= 0),
    deleted    INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    updated_us INTEGER NOT NULL,  -- the vendor's updated time, µs since the epoch (UTC)
    seq        INTEGER NOT NULL,  -- arrival
    UNIQUE (tenant, ticket, worklog)
);
CREATE TABLE IF NOT EXISTS ledger_ticket (
    tenant  TEXT NOT NULL,
    ticket  TEXT NOT NULL,
    account TEXT,  -- NULL: a ticket of no known account
    seen_us INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    logged_s INTEGER NOT NULL DEFAULT 0,  -- its counted worklogs' seconds (a trigger's)
    UNIQUE (tenant, ticket)
);
CREATE INDEX IF NOT EXISTS ledger_ticket_account ON ledger_ticket (account);
CREATE TABLE IF NOT EXISTS ledger_account (
    account  TEXT PRIMARY KEY,
    logged_s INTEGER NOT NULL  -- its tickets' logged_s summed (a trigger's)
);
CREATE TABLE IF NOT EXISTS ledger_seq (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO ledger_seq (id, value) VALUES (1, 0);
"""

# The running totals. A worklog's counted seconds (none when deleted) go to its ticket's
# row, made if the ticket was never linked; a ticket's go to its account's row, and move
# with it. An update is undone for the old row, then done for the new one.
_COUNTED_OLD = "CASE WHEN OLD.deleted THEN 0 ELSE OLD.seconds END"
_COUNTED_NEW = "CASE WHEN NEW.deleted THEN 0 ELSE NEW.seconds END"
_TICKET_ADD = """
    INSERT INTO ledger_ticket (tenant, ticket, account, seen_us, seq, logged_s)
    SELECT NEW.tenant, NEW.ticket, NULL, 0, 0, {counted} WHERE {counted} <> 0
    ON CONFLICT (tenant, ticket) DO UPDATE SET logged_s = logged_s + excluded.logged_s;"""
_TICKET_TAKE = """
    UPDATE ledger_ticket SET logged_s = logged_s - {counted}
    WHERE tenant = OLD.tenant AND ticket = OLD.ticket AND {counted} <> 0;"""
_ACCOUNT_ADD = """
    INSERT INTO ledger_account (account, logged_s)
    SELECT NEW.account, NEW.logged_s WHERE NEW.account IS NOT NULL AND NEW.logged_s <> 0
    ON CONFLICT (account) DO UPDATE SET logged_s = logged_s + excluded.logged_s;"""
_ACCOUNT_TAKE = """
    UPDATE ledger_account SET logged_s = logged_s - OLD.logged_s
    WHERE account = OLD.account AND OLD.logged_s <> 0;"""
_RUNNING_TOTALS = (
    "CREATE TRIGGER IF NOT EXISTS ledger_worklog_added AFTER INSERT ON ledger_worklog"
    f" WHEN ({_COUNTED_NEW}) <> 0"
    f" BEGIN {_TICKET_ADD.format(counted=_COUNTED_NEW)} END",
    "CREATE TRIGGER IF NOT EXISTS ledger_worklog_changed AFTER UPDATE ON ledger_worklog"
    f" WHEN ({_COUNTED_OLD}) <> ({_COUNTED_NEW})"
    " OR OLD.tenant <> NEW.tenant OR OLD.ticket <> NEW.ticket"
    f" BEGIN {_TICKET_TAKE.format(counted=_COUNTED_OLD)}"
    f" {_TICKET_ADD.format(counted=_COUNTED_NEW)} END",
    "CREATE TRIGGER IF NOT EXISTS ledger_worklog_removed AFTER DELETE ON ledger_worklog"
    f" WHEN ({_COUNTED_OLD}) <> 0"
    f" BEGIN {_TICKET_TAKE.format(counted=_COUNTED_OLD)} END",
    # A new ticket's link (no time yet) fires nothing: its WHEN is false.
    "CREATE TRIGGER IF NOT EXISTS ledger_ticket_added AFTER INSERT ON ledger_ticket"
    " WHEN NEW.account IS NOT NULL AND NEW.logged_s <> 0"
    f" BEGIN {_ACCOUNT_ADD} END",
    "CREATE TRIGGER IF NOT EXISTS ledger_ticket_changed"
    " AFTER UPDATE OF account, logged_s ON ledger_ticket"
    " WHEN OLD.account IS NOT NEW.account OR OLD.logged_s <> NEW.logged_s"
    f" BEGIN {_ACCOUNT_TAKE} {_ACCOUNT_ADD} END",
    "CREATE TRIGGER IF NOT EXISTS ledger_ticket_removed AFTER DELETE ON ledger_ticket"
    " WHEN OLD.account IS NOT NULL AND OLD.logged_s <> 0"
    f" BEGIN {_ACCOUNT_TAKE} END",
)

# A file made before the running totals: each worklog's ticket gets its row, each row its
# seconds, each account its sum. Run before the triggers exist, in their transaction.
_FILL_RUNNING_TOTALS = (
    "ALTER TABLE ledger_ticket ADD COLUMN logged_s INTEGER NOT NULL DEFAULT 0",
    "INSERT INTO ledger_ticket (tenant, ticket, account, seen_us, seq)"
    " SELECT DISTINCT tenant, ticket, NULL, 0, 0 FROM ledger_worklog WHERE true"
    " ON CONFLICT (tenant, ticket) DO NOTHING",
    "UPDATE ledger_ticket SET logged_s = (SELECT COALESCE(SUM(w.seconds), 0)"
    " FROM ledger_worklog AS w WHERE w.tenant = ledger_ticket.tenant"
    " AND w.ticket = ledger_ticket.ticket AND w.deleted = 0)",
    "DELETE FROM ledger_account",
    "INSERT INTO ledger_account (account, logged_s) SELECT account, SUM(logged_s)"
    " FROM ledger_ticket WHERE account IS NOT NULL GROUP BY account HAVING SUM(logged_s) <> 0",
)

# The newest version wins, even when it logs the same seconds: its time is what keeps an
# older version, delivered later, out. A copy of the stored version is not written.
_UPSERT_WORKLOG = """
INSERT INTO ledger_worklog (tenant, ticket, worklog, seconds, deleted, updated_us, seq)
VALUES (:tenant, :ticket, :worklog, :seconds, :deleted, :updated_us, :seq)
ON CONFLICT (tenant, ticket, worklog) DO UPDATE SET
    seconds = excluded.seconds, deleted = excluded.deleted,
    updated_us = excluded.updated_us, seq = excluded.seq
WHERE (excluded.deleted, excluded.updated_us, excluded.seq)
          > (ledger_worklog.deleted, ledger_worklog.updated_us, ledger_worklog.seq)
  AND (excluded.deleted, excluded.updated_us, excluded.seconds)
      <> (ledger_worklog.deleted, ledger_worklog.updated_us, ledger_worklog.seconds)
"""

_UPSERT_TICKET = """
INSERT INTO ledger_ticket (tenant, ticket, account, seen_us, seq)
VALUES (:tenant, :ticket, :account, :seen_us, :seq)
ON CONFLICT (tenant, ticket) DO UPDATE SET
    account = excluded.account, seen_us = excluded.seen_us, seq = excluded.seq
WHERE (excluded.seen_us, excluded.seq) > (ledger_ticket.seen_us, ledger_ticket.seq)
  AND (excluded.seen_us <> ledger_ticket.seen_us OR excluded.account IS NOT ledger_ticket.account)
"""

_UPSERT_PURCHASE = """
INSERT INTO ledger_purchase (account, key, kind, seconds, purchased_on)
VALUES (:account, :key, :kind, :seconds, :purchased_on)
ON CONFLICT (account, key) DO UPDATE SET
    kind = excluded.kind, seconds = excluded.seconds, purchased_on = excluded.purchased_on
WHERE (excluded.kind, excluded.seconds, excluded.purchased_on)
      <> (ledger_purchase.kind, ledger_purchase.seconds, ledger_purchase.purchased_on)
"""

# One statement: bundles bought by :on, usage carried in, the running total of the latest
# version of every worklog on the account's tickets, and the last bundle bought by :on.
_TOTALS = """
SELECT
    (SELECT COALESCE(SUM(seconds), 0) FROM ledger_purchase
     WHERE account = :account AND kind = 'bundle' AND purchased_on <= :on),
    (SELECT COALESCE(SUM(seconds), 0) FROM ledger_purchase
     WHERE account = :account AND kind = 'carried'),
    (SELECT COALESCE(SUM(logged_s), 0) FROM ledger_account WHERE account = :account),
    (SELECT seconds FROM ledger_purchase
     WHERE account = :account AND kind = 'bundle' AND purchased_on <= :on
     ORDER BY purchased_on DESC, key DESC LIMIT 1)
"""

_PURCHASES = "SELECT account, key, kind, seconds, purchased_on FROM ledger_purchase"

_TICKET_S = (
    "SELECT COALESCE(SUM(seconds), 0) FROM ledger_worklog"
    " WHERE tenant = ? AND ticket = ? AND deleted = 0"
)

_LAST_DAY = date.max.isoformat()

# Each ticket asked (a JSON array), its account and whether time is logged on it.
_LINKS = """
SELECT t.value, l.account, COALESCE(l.logged_s, 0) > 0
FROM json_each(:tickets) AS t
LEFT JOIN ledger_ticket AS l ON l.tenant = :tenant AND l.ticket = t.value
"""


class SqliteLedger(SqliteFile):
    """The ledger's tables in the store's SQLite file, under its connection and write-lock
    discipline (`store.sqlite_file`): a balance is one query, an entry one upsert."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA)
        self._count_running_totals()

    def _count_running_totals(self) -> None:
        """The triggers of the running totals; a file made before them has them filled
        in from its rows first, in the same transaction (a process starting beside this
        one waits on the write lock, then finds the column and the triggers there)."""
        try:
            with self._transaction() as db:
                have = {row[1] for row in db.execute("PRAGMA table_info(ledger_ticket)")}
                if "logged_s" not in have:
                    for statement in _FILL_RUNNING_TOTALS:
                        db.execute(statement)
                for statement in _RUNNING_TOTALS:
                    db.execute(statement)
        except (sqlite3.Error, StoreError) as exc:
            raise StoreError(f"{self.path}: cannot count the running totals: {exc}") from exc
        finally:
            self.close()

    @staticmethod
    def _next_seq(db: sqlite3.Connection, count: int = 1) -> int:
        """The first of ``count`` new arrival numbers, taken in ``db``'s transaction."""
        row = db.execute(
            "UPDATE ledger_seq SET value = value + ? RETURNING value", (count,)
        ).fetchone()
        return int(row[0]) - count + 1

    # -- writing --------------------------------------------------------------------

    def record_purchase(
        self,
        account: str,
        key: str,
        seconds: int,
        purchased_on: date,
        kind: PurchaseKind = "bundle",
    ) -> bool:
        purchase = Purchase(account, key, seconds, purchased_on, kind)
        with self._transaction() as db:
            return db.execute(_UPSERT_PURCHASE, _purchase_args(purchase)).rowcount == 1

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
        # Validated as the pure model does (no negative time, an aware instant).
        version = WorklogVersion(
            WorklogKey(tenant, ticket, worklog_id),
            0 if deleted else seconds,
            updated_at,
            deleted=deleted,
        )
        where = (tenant, ticket, worklog_id)
        updated_us = to_us(updated_at)
        # A replay, or a version older than the stored one: no write lock needed.
        rows = self._read(
            "SELECT deleted, updated_us, seconds FROM ledger_worklog"
            " WHERE tenant = ? AND ticket = ? AND worklog = ?",
            where,
        )
        incoming = (int(deleted), updated_us, version.seconds)
        if rows and (incoming[:2] < tuple(rows[0][:2]) or incoming == tuple(rows[0])):
            return 0
        with self._transaction() as db:
            before = _counted(db, where)
            db.execute(
                _UPSERT_WORKLOG,
                {
                    "tenant": tenant,
                    "ticket": ticket,
                    "worklog": worklog_id,
                    "seconds": version.seconds,
                    "deleted": int(deleted),
                    "updated_us": updated_us,
                    "seq": self._next_seq(db),
                },
            )
            return _counted(db, where) - before

    def link_ticket(
        self, tenant: str, ticket: str, account: str | None, seen_at: datetime
    ) -> TicketMove | None:
        seen_us = to_us(seen_at)
        # A replayed or older snapshot: answered without a write lock.
        rows = self._read(
            "SELECT account, seen_us FROM ledger_ticket WHERE tenant = ? AND ticket = ?",
            (tenant, ticket),
        )
        if rows and (rows[0][1] > seen_us or (rows[0][1] == seen_us and rows[0][0] == account)):
            return None
        # A newer snapshot is written even when it names the same account (its time keeps
        # an older one out). Every ticket event brings one, so these commits are NORMAL:
        # a link is derived data that the ticket's next event states again.
        with self._transaction(durable=False) as db:
            args = (tenant, ticket)
            old = db.execute(
                "SELECT account FROM ledger_ticket WHERE tenant = ? AND ticket = ?", args
            ).fetchone()
            db.execute(
                _UPSERT_TICKET,
                {
                    "tenant": tenant,
                    "ticket": ticket,
                    "account": account,
                    "seen_us": seen_us,
                    "seq": self._next_seq(db),
                },
            )
            new = db.execute(
                "SELECT account FROM ledger_ticket WHERE tenant = ? AND ticket = ?", args
            ).fetchone()
            source = old[0] if old else None
            if source == new[0]:
                return None
            return TicketMove(source, new[0], int(db.execute(_TICKET_S, args).fetchone()[0]))

    def link_all(self, links: Sequence[TicketLink]) -> None:
        if not links:
            return
        with self._transaction(durable=False) as db:  # derived data, as `link_ticket`'s
            first = self._next_seq(db, len(links))
            db.executemany(
                _UPSERT_TICKET,
                [
                    {
                        "tenant": link.tenant,
                        "ticket": link.ticket,
                        "account": link.account,
                        "seen_us": to_us(link.seen_at),
                        "seq": first + i,
                    }
                    for i, link in enumerate(links)
                ],
            )

    def sync_purchases(self, rulebook: Rulebook) -> Synced:
        wanted = {
            (p.account, p.key): p for a in rulebook.accounts for p in purchases_of(a, rulebook)
        }
        mapped = {account.id for account in rulebook.accounts}
        fresh, stale = _diff(wanted, mapped, self._read(_PURCHASES))
        if not fresh and not stale:
            return Synced(0, 0)  # the usual case: no write, no write lock
        with self._transaction() as db:
            # Again under the lock: another process may have synced meanwhile.
            fresh, stale = _diff(wanted, mapped, db.execute(_PURCHASES).fetchall())
            for account, key in stale:
                db.execute(
                    "DELETE FROM ledger_purchase WHERE account = ? AND key = ?", (account, key)
                )
            for purchase in fresh:
                db.execute(_UPSERT_PURCHASE, _purchase_args(purchase))
        return Synced(len(fresh), len(stale))

    # -- reading --------------------------------------------------------------------

    def account_of(self, tenant: str, ticket: str) -> str | None:
        rows = self._read(
            "SELECT account FROM ledger_ticket WHERE tenant = ? AND ticket = ?", (tenant, ticket)
        )
        return rows[0][0] if rows else None

    def links_of(self, tenant: str, tickets: Sequence[str]) -> dict[str, Linked]:
        rows = self._read(_LINKS, {"tenant": tenant, "tickets": json.dumps(list(tickets))})
        return {ticket: Linked(account, bool(logged)) for ticket, account, logged in rows}

    def totals(self, account: str, on: date | None = None) -> Totals:
        day = on.isoformat() if on is not None else _LAST_DAY
        bought, carried, logged, last = self._read(_TOTALS, {"account": account, "on": day})[0]
        return Totals(int(bought), int(carried) + int(logged), int(last or 0))

    def balance(self, account: str, low_fraction: float, on: date | None = None) -> HoursBalance:
        return self.totals(account, on).balance(low_fraction)

    def entries(self, account: str) -> Statement:
        purchases = self._read(
            f"{_PURCHASES} WHERE account = ? ORDER BY purchased_on, key", (account,)
        )
        worklogs = self._read(
            "SELECT w.tenant, w.ticket, w.worklog, w.seconds, w.updated_us, w.seq, w.deleted"
            " FROM ledger_ticket AS t"
            " JOIN ledger_worklog AS w ON w.tenant = t.tenant AND w.ticket = t.ticket"
            " WHERE t.account = ? ORDER BY w.updated_us, w.seq",
            (account,),
        )
        return Statement(
            tuple(_purchase(r) for r in purchases),
            tuple(
                WorklogVersion(WorklogKey(r[0], r[1], r[2]), r[3], from_us(r[4]), r[5], bool(r[6]))
                for r in worklogs
            ),
        )

    def unattributed_s(self) -> int:
        rows = self._read(
            "SELECT COALESCE(SUM(w.seconds), 0) FROM ledger_worklog AS w"
            " LEFT JOIN ledger_ticket AS t ON t.tenant = w.tenant AND t.ticket = w.ticket"
            " WHERE w.deleted = 0 AND t.account IS NULL"
        )
        return int(rows[0][0])


def _counted(db: sqlite3.Connection, where: tuple[str, str, str]) -> int:
    row = db.execute(
        "SELECT CASE WHEN deleted THEN 0 ELSE seconds END FROM ledger_worklog"
        " WHERE tenant = ? AND ticket = ? AND worklog = ?",
        where,
    ).fetchone()
    return int(row[0]) if row else 0


def _diff(
    wanted: dict[tuple[str, str], Purchase], mapped: set[str], rows: list[tuple[Any, ...]]
) -> tuple[list[Purchase], list[tuple[str, str]]]:
    """What to write (new or changed) and what to delete (a mapped account's purchase
    that its mappings no longer list) so that the ledger holds the mappings' purchases.
    Accounts gone from the mappings keep theirs: the ledger is their history."""
    have = {(r[0], r[1]): _purchase(r) for r in rows}
    fresh = [p for k, p in wanted.items() if have.get(k) != p]
    stale = [k for k in have if k[0] in mapped and k not in wanted]
    return fresh, stale


def _purchase(row: tuple[Any, ...]) -> Purchase:
    account, key, kind, seconds, purchased_on = row
    return Purchase(account, key, int(seconds), date.fromisoformat(purchased_on), kind)


def _purchase_args(purchase: Purchase) -> dict[str, object]:
    return {
        "account": purchase.account,
        "key": purchase.key,
        "kind": purchase.kind,
        "seconds": purchase.seconds,
        "purchased_on": purchase.purchased_on.isoformat(),
    }
