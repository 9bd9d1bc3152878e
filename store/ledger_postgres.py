"""The hours ledger in the PostgreSQL database of `store.postgres`: the same `Ledger`
protocol, tables and rules as `store.ledger.SqliteLedger`, under PostgresStore's
connection discipline (`store.postgres.PostgresDatabase`).

SQLite serializes every writer on one file lock; PostgreSQL runs writers side by side,
so each write that reads before it writes takes a transaction-level advisory lock on
what it reads: the ticket (a worklog's version and the move of a ticket's time must
agree with each other), or the purchases (a sync compares, then writes). The upserts
themselves still decide which version is the latest, as in SQLite, so a write that
read a stale pre-check cannot undo a newer one. ``seq`` (the order of arrival) is a
sequence: under concurrency, arrival is only as well defined as the commits are.

The running totals of `store.ledger` (a ticket's logged seconds, an account's) are kept
by the same triggers, in PL/pgSQL. Each adds to or takes from the row it changes, never
reads another table to sum it: a worklog and a link of one ticket meet on the ticket's
row, which PostgreSQL locks and re-reads for the second writer, so neither's seconds are
lost under concurrency whatever the advisory locks cover (`link_all` takes none). A
database made before them is filled in under the schema lock (`_count_running_totals`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import psycopg

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
from store.ledger_base import Linked, Statement, Synced, TicketLink, from_us, to_us
from store.postgres import PostgresDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_purchase (
    account      TEXT NOT NULL,
    key          TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('bundle', 'carried')),
    seconds      BIGINT NOT NULL CHECK (seconds >= 0),
    purchased_on DATE NOT NULL,
    PRIMARY KEY (account, key)
);
CREATE TABLE IF NOT EXISTS ledger_worklog (
    tenant     TEXT NOT NULL,
    ticket     TEXT NOT NULL,
    worklog    TEXT NOT NULL,
    seconds    BIGINT NOT NULL CHECK (seconds >= 0),
    deleted    BOOLEAN NOT NULL,
    updated_us BIGINT NOT NULL,  -- the vendor's updated time, µs since the epoch (UTC)
    seq        BIGINT NOT NULL,  -- arrival
    PRIMARY KEY (tenant, ticket, worklog)
);
CREATE TABLE IF NOT EXISTS ledger_ticket (
    tenant  TEXT NOT NULL,
    ticket  TEXT NOT NULL,
    account TEXT,  -- NULL: a ticket of no known account
    seen_us BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    logged_s BIGINT NOT NULL DEFAULT 0,  -- its counted worklogs' seconds (a trigger's)
    PRIMARY KEY (tenant, ticket)
);
CREATE INDEX IF NOT EXISTS ledger_ticket_account ON ledger_ticket (account);
CREATE TABLE IF NOT EXISTS ledger_account (
    account  TEXT PRIMARY KEY,
    logged_s BIGINT NOT NULL  -- its tickets' logged_s summed (a trigger's)
);
CREATE SEQUENCE IF NOT EXISTS ledger_seq;
"""

# The running totals, as store/ledger.py's triggers: a worklog's counted seconds (none
# when deleted) go to its ticket's row, made if the ticket was never linked; a ticket's go
# to its account's row, and move with it. An update is undone for the old row, then done
# for the new one. SET search_path FROM CURRENT: the tables of the schema they were made
# in, whatever a session's path.
_RUNNING_TOTALS = """
CREATE OR REPLACE FUNCTION ledger_worklog_counted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND NOT OLD.deleted AND OLD.seconds <> 0 THEN
        UPDATE ledger_ticket SET logged_s = logged_s - OLD.seconds
        WHERE tenant = OLD.tenant AND ticket = OLD.ticket;
    END IF;
    IF TG_OP <> 'DELETE' AND NOT NEW.deleted AND NEW.seconds <> 0 THEN
        INSERT INTO ledger_ticket AS t (tenant, ticket, account, seen_us, seq, logged_s)
        VALUES (NEW.tenant, NEW.ticket, NULL, 0, 0, NEW.seconds)
        ON CONFLICT (tenant, ticket) DO UPDATE SET logged_s = t.logged_s + excluded.logged_s;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION ledger_ticket_counted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.account <> NEW.account AND OLD.logged_s <> 0 THEN
        -- Both accounts' rows, in one order: two tickets moving opposite ways at once
        -- would otherwise each hold the row the other waits for.
        PERFORM 1 FROM ledger_account WHERE account IN (OLD.account, NEW.account)
        ORDER BY account FOR UPDATE;
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.account IS NOT NULL AND OLD.logged_s <> 0 THEN
        UPDATE ledger_account SET logged_s = logged_s - OLD.logged_s
        WHERE account = OLD.account;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.account IS NOT NULL AND NEW.logged_s <> 0 THEN
        INSERT INTO ledger_account AS a (account, logged_s) VALUES (NEW.account, NEW.logged_s)
        ON CONFLICT (account) DO UPDATE SET logged_s = a.logged_s + excluded.logged_s;
    END IF;
    RETURN NULL;
END $$;
"""
_TRIGGERS = {
    "ledger_worklog_added": "AFTER INSERT ON ledger_worklog FOR EACH ROW"
    " WHEN (NOT NEW.deleted AND NEW.seconds <> 0)"
    " EXECUTE FUNCTION ledger_worklog_counted()",
    "ledger_worklog_changed": "AFTER UPDATE ON ledger_worklog FOR EACH ROW"
    " WHEN ((OLD.tenant, OLD.ticket) <> (NEW.tenant, NEW.ticket)"
    " OR (CASE WHEN OLD.deleted THEN 0 ELSE OLD.seconds END)"
    " <> (CASE WHEN NEW.deleted THEN 0 ELSE NEW.seconds END))"
    " EXECUTE FUNCTION ledger_worklog_counted()",
    "ledger_worklog_removed": "AFTER DELETE ON ledger_worklog FOR EACH ROW"
    " WHEN (NOT OLD.deleted AND OLD.seconds <> 0)"
    " EXECUTE FUNCTION ledger_worklog_counted()",
    "ledger_ticket_added": "AFTER INSERT ON ledger_ticket FOR EACH ROW"
    " WHEN (NEW.account IS NOT NULL AND NEW.logged_s <> 0)"
    " EXECUTE FUNCTION ledger_ticket_counted()",
    "ledger_ticket_changed": "AFTER UPDATE OF account, logged_s ON ledger_ticket FOR EACH ROW"
    " WHEN (OLD.account IS DISTINCT FROM NEW.account OR OLD.logged_s <> NEW.logged_s)"
    " EXECUTE FUNCTION ledger_ticket_counted()",
    "ledger_ticket_removed": "AFTER DELETE ON ledger_ticket FOR EACH ROW"
    " WHEN (OLD.account IS NOT NULL AND OLD.logged_s <> 0)"
    " EXECUTE FUNCTION ledger_ticket_counted()",
}

# A database made before the running totals: each worklog's ticket gets its row, each row
# its seconds, each account its sum. Run before the triggers exist, in their transaction.
_FILL_RUNNING_TOTALS = (
    "ALTER TABLE ledger_ticket ADD COLUMN logged_s BIGINT NOT NULL DEFAULT 0",
    "INSERT INTO ledger_ticket (tenant, ticket, account, seen_us, seq)"
    " SELECT DISTINCT tenant, ticket, NULL, 0, 0 FROM ledger_worklog"
    " ON CONFLICT (tenant, ticket) DO NOTHING",
    "UPDATE ledger_ticket AS t SET logged_s = w.seconds FROM (SELECT tenant, ticket,"
    " SUM(seconds) AS seconds FROM ledger_worklog WHERE NOT deleted GROUP BY tenant, ticket)"
    " AS w WHERE w.tenant = t.tenant AND w.ticket = t.ticket",
    "DELETE FROM ledger_account",
    "INSERT INTO ledger_account (account, logged_s) SELECT account, SUM(logged_s)"
    " FROM ledger_ticket WHERE account IS NOT NULL GROUP BY account HAVING SUM(logged_s) <> 0",
)

# As in store/ledger.py: the newest version wins, even when it logs the same seconds;
# a copy of the stored version is not written.
_UPSERT_WORKLOG = """
INSERT INTO ledger_worklog AS w (tenant, ticket, worklog, seconds, deleted, updated_us, seq)
VALUES (%(tenant)s, %(ticket)s, %(worklog)s, %(seconds)s, %(deleted)s, %(updated_us)s,
        nextval('ledger_seq'))
ON CONFLICT (tenant, ticket, worklog) DO UPDATE SET
    seconds = excluded.seconds, deleted = excluded.deleted,
    updated_us = excluded.updated_us, seq = excluded.seq
WHERE (excluded.deleted, excluded.updated_us, excluded.seq) > (w.deleted, w.updated_us, w.seq)
  AND (excluded.deleted, excluded.updated_us, excluded.seconds)
      <> (w.deleted, w.updated_us, w.seconds)
"""

_UPSERT_TICKET = """
INSERT INTO ledger_ticket AS t (tenant, ticket, account, seen_us, seq)
VALUES (%(tenant)s, %(ticket)s, %(account)s, %(seen_us)s, nextval('ledger_seq'))
ON CONFLICT (tenant, ticket) DO UPDATE SET
    account = excluded.account, seen_us = excluded.seen_us, seq = excluded.seq
WHERE (excluded.seen_us, excluded.seq) > (t.seen_us, t.seq)
  AND (excluded.seen_us <> t.seen_us OR excluded.account IS DISTINCT FROM t.account)
"""

_UPSERT_PURCHASE = """
INSERT INTO ledger_purchase AS p (account, key, kind, seconds, purchased_on)
VALUES (%(account)s, %(key)s, %(kind)s, %(seconds)s, %(purchased_on)s)
ON CONFLICT (account, key) DO UPDATE SET
    kind = excluded.kind, seconds = excluded.seconds, purchased_on = excluded.purchased_on
WHERE (excluded.kind, excluded.seconds, excluded.purchased_on)
      <> (p.kind, p.seconds, p.purchased_on)
"""

# One statement, as in SQLite: bundles bought by :on, usage carried in, the running total
# of the latest version of every worklog on the account's tickets, and the last bundle
# bought by :on.
_TOTALS = """
SELECT
    (SELECT COALESCE(SUM(seconds), 0) FROM ledger_purchase
     WHERE account = %(account)s AND kind = 'bundle' AND purchased_on <= %(on)s),
    (SELECT COALESCE(SUM(seconds), 0) FROM ledger_purchase
     WHERE account = %(account)s AND kind = 'carried'),
    (SELECT COALESCE(SUM(logged_s), 0) FROM ledger_account WHERE account = %(account)s),
    (SELECT seconds FROM ledger_purchase
     WHERE account = %(account)s AND kind = 'bundle' AND purchased_on <= %(on)s
     ORDER BY purchased_on DESC, key DESC LIMIT 1)
"""

_PURCHASES = "SELECT account, key, kind, seconds, purchased_on FROM ledger_purchase"

_TICKET_S = (
    "SELECT COALESCE(SUM(seconds), 0) FROM ledger_worklog"
    " WHERE tenant = %s AND ticket = %s AND NOT deleted"
)

# Each ticket asked, its account and whether time is logged on it.
_LINKS = """
SELECT t.ticket, l.account, COALESCE(l.logged_s, 0) > 0
FROM unnest(%(tickets)s::text[]) AS t (ticket)
LEFT JOIN ledger_ticket AS l ON l.tenant = %(tenant)s AND l.ticket = t.ticket
"""

_COUNTED = (
    "SELECT CASE WHEN deleted THEN 0 ELSE seconds END FROM ledger_worklog"
    " WHERE tenant = %s AND ticket = %s AND worklog = %s"
)

# Advisory locks of the ledger's own (hashed keys; a collision only serializes two
# writers that need not be). The separator cannot occur in a tenant or ticket id.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
_PURCHASES_LOCK = "tierdesk-ledger\x1fpurchases"


def _ticket_lock(tenant: str, ticket: str) -> str:
    return f"tierdesk-ledger\x1f{tenant}\x1f{ticket}"


class PostgresLedger(PostgresDatabase):
    """The ledger's tables in the store's PostgreSQL database: a balance is one query,
    an entry one upsert."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._create_schema(_SCHEMA, _count_running_totals)

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
        try:
            db = self._db()
            with db.transaction():
                return db.execute(_UPSERT_PURCHASE, _purchase_args(purchase)).rowcount == 1
        except psycopg.Error as exc:
            raise self._error("cannot record the purchase", exc) from exc

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
        # A replay, or a version older than the stored one: no transaction, no lock.
        rows = self._read(
            "SELECT deleted, updated_us, seconds FROM ledger_worklog"
            " WHERE tenant = %s AND ticket = %s AND worklog = %s",
            where,
        )
        incoming = (deleted, updated_us, version.seconds)
        if rows and (incoming[:2] < tuple(rows[0][:2]) or incoming == tuple(rows[0])):
            return 0
        try:
            with self._transaction(durable=True) as db:
                db.execute(_LOCK, (_ticket_lock(tenant, ticket),))
                before = _counted(db, where)
                db.execute(
                    _UPSERT_WORKLOG,
                    {
                        "tenant": tenant,
                        "ticket": ticket,
                        "worklog": worklog_id,
                        "seconds": version.seconds,
                        "deleted": deleted,
                        "updated_us": updated_us,
                    },
                )
                return _counted(db, where) - before
        except psycopg.Error as exc:
            raise self._error("cannot record the worklog", exc) from exc

    def link_ticket(
        self, tenant: str, ticket: str, account: str | None, seen_at: datetime
    ) -> TicketMove | None:
        seen_us = to_us(seen_at)
        args = (tenant, ticket)
        # A replayed or older snapshot: answered without a transaction.
        rows = self._read(
            "SELECT account, seen_us FROM ledger_ticket WHERE tenant = %s AND ticket = %s", args
        )
        if rows and (rows[0][1] > seen_us or (rows[0][1] == seen_us and rows[0][0] == account)):
            return None
        try:
            # A link is derived data that the ticket's next event states again (as
            # SQLite's NORMAL commits for it).
            with self._transaction(durable=False) as db:
                db.execute(_LOCK, (_ticket_lock(tenant, ticket),))
                select = "SELECT account FROM ledger_ticket WHERE tenant = %s AND ticket = %s"
                old = db.execute(select, args).fetchone()
                db.execute(
                    _UPSERT_TICKET,
                    {"tenant": tenant, "ticket": ticket, "account": account, "seen_us": seen_us},
                )
                new = db.execute(select, args).fetchone()
                source = old[0] if old else None
                if new is None or source == new[0]:
                    return None
                moved = db.execute(_TICKET_S, args).fetchone()
                return TicketMove(source, new[0], int(moved[0]) if moved else 0)
        except psycopg.Error as exc:
            raise self._error("cannot link the ticket", exc) from exc

    def link_all(self, links: Sequence[TicketLink]) -> None:
        if not links:
            return
        try:
            # Derived data, as `link_ticket`'s. No advisory lock: these links move no
            # time, and the upsert itself keeps the newest snapshot's.
            with self._transaction(durable=False) as db, db.cursor() as cursor:
                cursor.executemany(
                    _UPSERT_TICKET,
                    [
                        {
                            "tenant": link.tenant,
                            "ticket": link.ticket,
                            "account": link.account,
                            "seen_us": to_us(link.seen_at),
                        }
                        for link in links
                    ],
                )
        except psycopg.Error as exc:
            raise self._error("cannot link the tickets", exc) from exc

    def sync_purchases(self, rulebook: Rulebook) -> Synced:
        wanted = {
            (p.account, p.key): p for a in rulebook.accounts for p in purchases_of(a, rulebook)
        }
        mapped = {account.id for account in rulebook.accounts}
        fresh, stale = _diff(wanted, mapped, self._read(_PURCHASES))
        if not fresh and not stale:
            return Synced(0, 0)  # the usual case: no transaction at all
        try:
            with self._transaction(durable=True) as db:
                db.execute(_LOCK, (_PURCHASES_LOCK,))
                # Again under the lock: another process may have synced meanwhile.
                fresh, stale = _diff(wanted, mapped, db.execute(_PURCHASES).fetchall())
                for account, key in stale:
                    db.execute(
                        "DELETE FROM ledger_purchase WHERE account = %s AND key = %s",
                        (account, key),
                    )
                for purchase in fresh:
                    db.execute(_UPSERT_PURCHASE, _purchase_args(purchase))
        except psycopg.Error as exc:
            raise self._error("cannot sync the purchases", exc) from exc
        return Synced(len(fresh), len(stale))

    # -- reading --------------------------------------------------------------------

    def account_of(self, tenant: str, ticket: str) -> str | None:
        rows = self._read(
            "SELECT account FROM ledger_ticket WHERE tenant = %s AND ticket = %s",
            (tenant, ticket),
        )
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def links_of(self, tenant: str, tickets: Sequence[str]) -> dict[str, Linked]:
        rows = self._read(_LINKS, {"tenant": tenant, "tickets": list(tickets)})
        return {str(ticket): Linked(account, bool(logged)) for ticket, account, logged in rows}

    def totals(self, account: str, on: date | None = None) -> Totals:
        day = on if on is not None else date.max
        bought, carried, logged, last = self._read(_TOTALS, {"account": account, "on": day})[0]
        return Totals(int(bought), int(carried) + int(logged), int(last or 0))

    def balance(self, account: str, low_fraction: float, on: date | None = None) -> HoursBalance:
        return self.totals(account, on).balance(low_fraction)

    def entries(self, account: str) -> Statement:
        purchases = self._read(
            f"{_PURCHASES} WHERE account = %s ORDER BY purchased_on, key", (account,)
        )
        worklogs = self._read(
            "SELECT w.tenant, w.ticket, w.worklog, w.seconds, w.updated_us, w.seq, w.deleted"
            " FROM ledger_ticket AS t"
            " JOIN ledger_worklog AS w ON w.tenant = t.tenant AND w.ticket = t.ticket"
            " WHERE t.account = %s ORDER BY w.updated_us, w.seq",
            (account,),
        )
        return Statement(
            tuple(_purchase(r) for r in purchases),
            tuple(
                WorklogVersion(
                    WorklogKey(r[0], r[1], r[2]), int(r[3]), from_us(r[4]), int(r[5]), r[6]
                )
                for r in worklogs
            ),
        )

    def unattributed_s(self) -> int:
        rows = self._read(
            "SELECT COALESCE(SUM(w.seconds), 0) FROM ledger_worklog AS w"
            " LEFT JOIN ledger_ticket AS t ON t.tenant = w.tenant AND t.ticket = w.ticket"
            " WHERE NOT w.deleted AND t.account IS NULL"
        )
        return int(rows[0][0])


def _count_running_totals(db: psycopg.Connection[Any]) -> None:
    """The triggers of the running totals, made once; a database made before them has them
    filled in from its rows first. In `_create_schema`'s transaction, under its lock."""
    have = {
        str(row[0])
        for row in db.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'ledger_ticket'"
        )
    }
    if "logged_s" not in have:
        for statement in _FILL_RUNNING_TOTALS:
            db.execute(statement)
    # Made only when missing: CREATE TRIGGER locks its table against writes, and every
    # process that opens the ledger comes here.
    made = {
        str(row[0])
        for row in db.execute(
            "SELECT t.tgname FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid"
            " WHERE c.relnamespace = current_schema()::regnamespace"
        )
    }
    missing = [name for name in _TRIGGERS if name not in made]
    if missing:
        db.execute(_RUNNING_TOTALS)
    for name in missing:
        db.execute(f"CREATE TRIGGER {name} {_TRIGGERS[name]}")


def _counted(db: psycopg.Connection[Any], where: tuple[str, str, str]) -> int:
    row = db.execute(_COUNTED, where).fetchone()
    return int(row[0]) if row else 0


def _diff(
    wanted: dict[tuple[str, str], Purchase], mapped: set[str], rows: list[Any]
) -> tuple[list[Purchase], list[tuple[str, str]]]:
    """As `store.ledger`'s: what to write and what to delete; accounts gone from the
    mappings keep their purchases (the ledger is their history)."""
    have = {(r[0], r[1]): _purchase(r) for r in rows}
    fresh = [p for k, p in wanted.items() if have.get(k) != p]
    stale = [k for k in have if k[0] in mapped and k not in wanted]
    return fresh, stale


def _purchase(row: Any) -> Purchase:
    account, key, kind, seconds, purchased_on = row
    return Purchase(account, key, int(seconds), purchased_on, kind)


def _purchase_args(purchase: Purchase) -> dict[str, object]:
    return {
        "account": purchase.account,
        "key": purchase.key,
        "kind": purchase.kind,
        "seconds": purchase.seconds,
        "purchased_on": purchase.purchased_on,
    }
