"""The embedded store: one SQLite file in WAL mode.

Durability: ``synchronous=FULL``, so a committed ``put`` is on disk before the webhook
is acknowledged. Concurrency: any number of threads and processes share the file.
Each thread has its own connection, and writers take the lock up front with
``BEGIN IMMEDIATE``, so a claim (find + lease) is one atomic step. ``UPDATE …
RETURNING`` hands the claimed row back in that same step.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.base import (
    GAUGES_CLOCKS_SQL,
    GAUGES_DEAD_SQL,
    GAUGES_OPEN_SQL,
    AuditRecord,
    AuditRow,
    Claimed,
    Completion,
    EventRow,
    Gauges,
    LeaseLost,
    Move,
    NewEvent,
    SlaClock,
    StoreError,
    WrittenState,
    gauges_of,
)
from store.sqlite_file import SqliteFile

SCHEMA_VERSION = 1
# Below this much free space, ``ping`` (and so /readyz) says not ready: a webhook may be
# 1 MiB (the intake's limit), written to the WAL and again to the database at the next
# checkpoint, besides its normalized copy, indexes and audit row.
MIN_FREE_BYTES = 4 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    vendor       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    ticket       TEXT NOT NULL,
    ticket_key   TEXT NOT NULL,
    payload      BLOB NOT NULL,
    normalized   TEXT NOT NULL,
    received_at  REAL NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'leased', 'done', 'dead')),
    available_at REAL NOT NULL,
    lease_owner  TEXT,
    lease_until  REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    decidable    INTEGER NOT NULL DEFAULT 1,
    occurred_at  REAL NOT NULL DEFAULT 0,
    UNIQUE (tenant, event_id)
);
-- Only open events are scanned by claims; done ones pile up outside this index.
CREATE INDEX IF NOT EXISTS inbox_open ON inbox (id) WHERE state IN ('pending', 'leased');
CREATE INDEX IF NOT EXISTS inbox_ticket ON inbox (tenant, ticket, id);
-- The per-ticket checks of a claim look only at a ticket's open events.
CREATE INDEX IF NOT EXISTS inbox_open_ticket ON inbox (tenant, ticket, id)
    WHERE state IN ('pending', 'leased');
CREATE INDEX IF NOT EXISTS inbox_received ON inbox (received_at);
CREATE INDEX IF NOT EXISTS inbox_dead ON inbox (id) WHERE state = 'dead';

CREATE TABLE IF NOT EXISTS audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    event     INTEGER NOT NULL REFERENCES inbox (id),
    tenant    TEXT NOT NULL,
    ticket    TEXT NOT NULL,
    at        REAL NOT NULL,
    outcome   TEXT NOT NULL,
    decision  TEXT,
    written   TEXT,
    note      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_ticket ON audit (ticket, id);

CREATE TABLE IF NOT EXISTS written (
    tenant  TEXT NOT NULL,
    ticket  TEXT NOT NULL,
    writer  TEXT NOT NULL,
    state   TEXT NOT NULL,
    at      REAL NOT NULL,
    PRIMARY KEY (tenant, ticket, writer)
);
CREATE INDEX IF NOT EXISTS audit_event ON audit (event);

-- One row per decided ticket: its first-response clock (store/base.py SlaClock).
CREATE TABLE IF NOT EXISTS sla (
    tenant        TEXT NOT NULL,
    ticket        TEXT NOT NULL,
    ticket_key    TEXT NOT NULL,
    vendor        TEXT NOT NULL,
    account       TEXT,
    tier          TEXT NOT NULL,
    calendar      TEXT,
    requester     TEXT,
    created_us    INTEGER NOT NULL,
    at_risk_us    INTEGER NOT NULL,
    due_us        INTEGER NOT NULL,
    steps_us      TEXT NOT NULL,
    levels        TEXT NOT NULL,
    stage         TEXT NOT NULL,
    level         INTEGER NOT NULL,
    next_check_us INTEGER,
    snapshot      TEXT NOT NULL,
    responded_us  INTEGER,
    margin_us     INTEGER,
    opened_left_s INTEGER,
    closed_us     INTEGER,
    status_us     INTEGER,
    PRIMARY KEY (tenant, ticket)
);
-- A sweep reads only the clocks whose stage changes now: the rest cost nothing.
CREATE INDEX IF NOT EXISTS sla_next ON sla (next_check_us) WHERE next_check_us IS NOT NULL;
CREATE INDEX IF NOT EXISTS sla_created ON sla (created_us);
CREATE INDEX IF NOT EXISTS sla_account_open ON sla (tenant, account) WHERE closed_us IS NULL;
CREATE INDEX IF NOT EXISTS sla_stage_open ON sla (stage) WHERE closed_us IS NULL;

CREATE TABLE IF NOT EXISTS leases (
    role   TEXT PRIMARY KEY,
    owner  TEXT NOT NULL,
    until  REAL NOT NULL
);
"""

SLA_COLUMNS = (
    "tenant, ticket, ticket_key, vendor, account, tier, calendar, requester, created_us,"
    " at_risk_us, due_us, steps_us, levels, stage, level, next_check_us, snapshot,"
    " responded_us, margin_us, opened_left_s, closed_us, status_us"
)
# Public for bench/sweep.py's bulk setup, which writes the rows `complete` writes.
_ADVANCE = (
    "UPDATE sla SET stage = ?, level = ?, next_check_us = ?"
    " WHERE tenant = ? AND ticket = ? AND stage = ? AND level = ?"
    " AND due_us = ? AND responded_us IS NULL"
)
_SLA_MARKS = ", ".join("?" * (SLA_COLUMNS.count(",") + 1))
SLA_INSERT = f"INSERT INTO sla ({SLA_COLUMNS}) VALUES ({_SLA_MARKS})"
_SLA_UPSERT = (
    SLA_INSERT
    + " ON CONFLICT (tenant, ticket) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SLA_COLUMNS.replace(" ", "").split(",")[2:])
)

_CLAIM = """
UPDATE inbox
SET state = 'leased', lease_owner = :owner, lease_until = :until, attempts = attempts + 1
WHERE id IN (
    SELECT e.id FROM inbox AS e
    WHERE e.state IN ('pending', 'leased')
      AND ((e.state = 'pending' AND e.available_at <= :now)
           OR (e.state = 'leased' AND e.lease_until <= :now))
      -- one ticket's events in order, never two at once: nothing earlier may be open,
      -- and no other event of the ticket (a later one, when this one was replayed) may
      -- be held under a live lease
      AND NOT EXISTS (
          SELECT 1 FROM inbox AS o INDEXED BY inbox_open_ticket
          WHERE o.tenant = e.tenant AND o.ticket = e.ticket AND e.ticket <> ''
            AND o.state IN ('pending', 'leased') AND o.id <> e.id
            AND (o.id < e.id OR o.lease_until > :now))
    ORDER BY e.id
    LIMIT :limit)
RETURNING id, tenant, event_id, vendor, kind, ticket, normalized, received_at, attempts
"""

_AUDIT_COLUMNS = (
    "a.id, a.event, a.tenant, a.ticket, i.ticket_key, i.event_id, i.kind, a.at, a.outcome,"
    " a.decision, a.written, a.note"
)


# Event o holds a newer snapshot of the ticket than event me: a later snapshot time,
# or the same time and a later arrival.
_NEWER = "(o.occurred_at > me.occurred_at OR (o.occurred_at = me.occurred_at AND o.id > me.id))"

# What deciding a claimed event needs of its ticket, for every event of a claim at once:
# `superseded`, `newer_decidable`, whether `comments` has any, and `sla_clock` (then
# `_WRITTEN`: `last_written`).
_CONTEXT = f"""
SELECT me.id,
    EXISTS (SELECT 1 FROM inbox AS o INDEXED BY inbox_ticket
            WHERE o.tenant = me.tenant AND o.ticket = me.ticket AND me.ticket <> ''
              AND o.id <> me.id AND o.state = 'done' AND o.decidable = 1 AND {_NEWER}),
    EXISTS (SELECT 1 FROM inbox AS o INDEXED BY inbox_open_ticket
            WHERE o.tenant = me.tenant AND o.ticket = me.ticket AND me.ticket <> ''
              AND o.id <> me.id AND o.state IN ('pending', 'leased') AND o.decidable = 1
              AND {_NEWER}),
    EXISTS (SELECT 1 FROM inbox AS o INDEXED BY inbox_ticket
            WHERE o.tenant = me.tenant AND o.ticket = me.ticket AND me.ticket <> ''
              AND o.kind IN ('comment.created', 'comment.updated') AND o.state = 'done'),
    {", ".join(f"s.{c}" for c in SLA_COLUMNS.split(", "))}
FROM inbox AS me LEFT JOIN sla AS s ON s.tenant = me.tenant AND s.ticket = me.ticket
WHERE me.id IN (SELECT value FROM json_each(?))
"""
_WRITTEN = """
SELECT me.id, w.writer, w.state FROM inbox AS me
JOIN written AS w ON w.tenant = me.tenant AND w.ticket = me.ticket
WHERE me.id IN (SELECT value FROM json_each(?))
"""

# Done, each event only while still leased to its owner: [[id, owner], …] as JSON.
_DONE = """
UPDATE inbox SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL
WHERE state = 'leased' AND (id, lease_owner) IN (
    SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))
RETURNING id
"""
_AUDIT = (
    "INSERT INTO audit (event, tenant, ticket, at, outcome, decision, written, note)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_WRITTEN_UPSERT = (
    "INSERT INTO written (tenant, ticket, writer, state, at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (tenant, ticket, writer) DO UPDATE SET state = excluded.state, at = excluded.at"
)

_INSERT = (
    "INSERT INTO inbox (tenant, event_id, vendor, kind, ticket, ticket_key,"
    " payload, normalized, received_at, available_at, decidable, occurred_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (tenant, event_id) DO NOTHING"
)


def _insert_values(event: NewEvent, now: float, hold_s: float) -> tuple[object, ...]:
    return (
        event.tenant,
        event.event_id,
        event.vendor,
        event.kind,
        event.ticket,
        event.ticket_key,
        event.payload,
        event.normalized,
        now,
        now + hold_s,
        int(event.decidable),
        event.occurred_at,
    )


@dataclass(slots=True)
class _Put:
    """One event waiting for a group commit, and what became of it."""

    event: NewEvent
    now: float
    hold_s: float = 0.0
    fresh: bool = False
    error: StoreError | None = None
    done: bool = False


class SqliteStore(SqliteFile):
    def __init__(self, path: str | Path) -> None:
        self._queue: list[_Put] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()
        super().__init__(path, _SCHEMA, user_version=SCHEMA_VERSION)
        self._add_columns()

    def _add_columns(self) -> None:
        """Columns added since a file was created (CREATE TABLE IF NOT EXISTS keeps an
        old table as it was)."""
        try:
            with self._transaction() as db:
                have = {row[1] for row in db.execute("PRAGMA table_info(sla)")}
                if "status_us" not in have:
                    db.execute("ALTER TABLE sla ADD COLUMN status_us INTEGER")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot update the schema: {exc}") from exc
        finally:
            self.close()

    def ping(self) -> None:
        """The file answers, and its disk can take a webhook. A read alone said "ready"
        on a full disk while every put failed with 503: the free space of the file
        system that holds the database (and its WAL) is checked as well."""
        try:
            self._db().execute("SELECT 1 FROM inbox LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        try:
            found = os.statvfs(Path(self.path).resolve().parent)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot see its disk: {exc.strerror}") from exc
        free = found.f_bavail * found.f_frsize  # what an unprivileged writer may use
        if free < MIN_FREE_BYTES:
            raise StoreError(
                f"{self.path}: the disk is full ({free} bytes free; webhooks need"
                f" {MIN_FREE_BYTES}): free some space"
            )

    # -- the inbox ------------------------------------------------------------------

    def put(self, event: NewEvent, now: float, *, hold_s: float = 0.0) -> bool:
        """Durable before it returns, with group commit: the thread that takes the
        leader lock writes every event queued so far in one transaction (one fsync), and
        the threads that queued behind it find theirs already committed."""
        item = _Put(event, now, hold_s)
        with self._queue_lock:
            self._queue.append(item)
        with self._leader:
            if not item.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if item.error is not None:
            raise item.error
        return item.fresh

    def _commit(self, batch: list[_Put]) -> None:
        try:
            with self._transaction() as db:
                for item in batch:
                    try:
                        values = _insert_values(item.event, item.now, item.hold_s)
                        cursor = db.execute(_INSERT, values)
                        item.fresh = cursor.rowcount == 1
                    except (sqlite3.Error, UnicodeEncodeError) as exc:
                        # This event alone is refused; the rest of the batch goes on.
                        item.error = StoreError(f"{self.path}: cannot store the event: {exc}")
        except (StoreError, sqlite3.Error) as exc:
            for item in batch:  # nothing of the batch was committed
                item.error = StoreError(f"{self.path}: cannot store the event: {exc}")
        finally:
            for item in batch:
                item.done = True

    def claim(self, owner: str, now: float, lease_s: float) -> Claimed | None:
        claimed = self.claim_many(owner, now, lease_s, 1)
        return claimed[0] if claimed else None

    def claim_many(self, owner: str, now: float, lease_s: float, limit: int) -> list[Claimed]:
        try:
            with self._transaction(durable=False) as db:
                lease = {"owner": owner, "now": now, "until": now + lease_s, "limit": limit}
                rows = sorted(db.execute(_CLAIM, lease).fetchall())  # RETURNING: any order
                if not rows:
                    return []
                ids = json.dumps([row[0] for row in rows])
                context = {row[0]: row[1:] for row in db.execute(_CONTEXT, (ids,))}
                written: dict[int, list[tuple[str, str]]] = {}
                for event_row, writer, state in db.execute(_WRITTEN, (ids,)):
                    written.setdefault(event_row, []).append((writer, state))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: claim failed: {exc}") from exc
        claimed = []
        for row in rows:  # id, tenant, event_id, vendor, kind, ticket, normalized, …
            superseded, newer, commented, *clock = context[row[0]]
            claimed.append(
                Claimed(
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    row[5],
                    row[6],
                    float(row[7]),  # SQLite hands a whole REAL back as an int
                    row[8],
                    owner,
                    clock=_sla_row(tuple(clock)) if clock[0] is not None else None,
                    written=tuple(written.get(row[0], ())),
                    superseded=bool(superseded),
                    newer=bool(newer),
                    commented=bool(commented),
                )
            )
        return claimed

    def complete(
        self,
        claimed: Claimed,
        record: AuditRecord,
        now: float,
        written: WrittenState | None = None,
        clock: SlaClock | None = None,
        follow: tuple[NewEvent, ...] = (),
    ) -> None:
        if self.complete_all([Completion(claimed, record, written, clock, follow)], now):
            raise LeaseLost(f"event {claimed.id} is no longer leased to {claimed.owner}")

    def complete_all(self, done: Sequence[Completion], now: float) -> list[Claimed]:
        # A few statements for the whole batch, each over its rows: the write lock is
        # held for less Python, which another worker thread would hold the GIL through.
        leases = json.dumps([[item.claimed.id, item.claimed.owner] for item in done])
        try:
            with self._transaction(durable=False) as db:
                marked = {row[0] for row in db.execute(_DONE, (leases,))}
                kept = [item for item in done if item.claimed.id in marked]
                db.executemany(_AUDIT, [_audit_values(i.claimed, i.record, now) for i in kept])
                db.executemany(
                    _WRITTEN_UPSERT,
                    [
                        (i.claimed.tenant, i.claimed.ticket, i.written.writer, i.written.state, now)
                        for i in kept
                        if i.written is not None
                    ],
                )
                db.executemany(_SLA_UPSERT, [sla_values(i.clock) for i in kept if i.clock])
                # A repeat (same tenant and event id) is dropped.
                db.executemany(
                    _INSERT, [_insert_values(e, now, 0.0) for i in kept for e in i.follow]
                )
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            which = ", ".join(str(item.claimed.id) for item in done)
            raise StoreError(f"{self.path}: cannot complete event(s) {which}: {exc}") from exc
        return [item.claimed for item in done if item.claimed.id not in marked]

    def release(self, claimed: Sequence[Claimed], now: float) -> None:
        try:
            with self._transaction(durable=False) as db:
                db.executemany(
                    "UPDATE inbox SET state = 'pending', available_at = ?, lease_owner = NULL,"
                    " lease_until = NULL, attempts = attempts - 1"
                    " WHERE id = ? AND state = 'leased' AND lease_owner = ?",
                    [(now, c.id, c.owner) for c in claimed],
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot release events: {exc}") from exc

    def last_written(self, tenant: str, ticket: str, writer: str) -> str | None:
        rows = self._read(
            "SELECT state FROM written WHERE tenant = ? AND ticket = ? AND writer = ?",
            (tenant, ticket, writer),
        )
        return str(rows[0][0]) if rows else None

    def newer_decidable(self, claimed: Claimed) -> bool:
        if not claimed.ticket:
            return False
        rows = self._read(
            "SELECT 1 FROM inbox AS o INDEXED BY inbox_open_ticket, inbox AS me"
            " WHERE me.id = ? AND o.tenant = me.tenant AND o.ticket = me.ticket"
            " AND o.id <> me.id AND o.state IN ('pending', 'leased') AND o.decidable = 1"
            f" AND {_NEWER} LIMIT 1",
            (claimed.id,),
        )
        return bool(rows)

    def superseded(self, claimed: Claimed) -> bool:
        if not claimed.ticket:
            return False
        rows = self._read(
            "SELECT 1 FROM inbox AS o INDEXED BY inbox_ticket, inbox AS me"
            " WHERE me.id = ? AND o.tenant = me.tenant AND o.ticket = me.ticket"
            f" AND o.id <> me.id AND o.state = 'done' AND o.decidable = 1 AND {_NEWER} LIMIT 1",
            (claimed.id,),
        )
        return bool(rows)

    def fail(self, claimed: Claimed, error: str, now: float, retry_at: float | None) -> str:
        state = "dead" if retry_at is None else "pending"
        try:
            with self._transaction(durable=False) as db:
                updated = db.execute(
                    "UPDATE inbox SET state = ?, available_at = COALESCE(?, available_at),"
                    " lease_owner = NULL, lease_until = NULL, last_error = ?"
                    " WHERE id = ? AND state = 'leased' AND lease_owner = ?",
                    (state, retry_at, error, claimed.id, claimed.owner),
                )
                if updated.rowcount != 1:
                    raise LeaseLost(f"event {claimed.id} is no longer leased to {claimed.owner}")
                if state == "dead":
                    self._audit(db, claimed, AuditRecord("dead_letter", note=error), now)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot release event {claimed.id}: {exc}") from exc
        return state

    @staticmethod
    def _audit(db: sqlite3.Connection, claimed: Claimed, record: AuditRecord, now: float) -> None:
        db.execute(_AUDIT, _audit_values(claimed, record, now))

    def replay(
        self,
        now: float,
        *,
        dead: bool = False,
        event: str | None = None,
        since: float | None = None,
    ) -> int:
        where, args = _replay_filter(dead=dead, event=event, since=since)
        try:
            with self._transaction() as db:
                cursor = db.execute(
                    "UPDATE inbox SET state = 'pending', attempts = 0, available_at = ?,"
                    " last_error = NULL, lease_owner = NULL, lease_until = NULL"
                    f" WHERE state <> 'leased' AND ({where})",
                    (now, *args),
                )
                return cursor.rowcount
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: replay failed: {exc}") from exc

    # -- reading --------------------------------------------------------------------

    def events(self, state: str | None = None, limit: int = 100) -> list[EventRow]:
        sql = (
            "SELECT id, tenant, event_id, vendor, kind, ticket, received_at, state, attempts,"
            " last_error FROM inbox"
        )
        args: tuple[object, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state,)
        rows = self._read(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [EventRow(*row) for row in rows]

    def history(self, ticket: str, tenant: str | None = None) -> list[AuditRow]:
        sql = (
            f"SELECT {_AUDIT_COLUMNS} FROM audit AS a JOIN inbox AS i ON i.id = a.event"
            " WHERE (a.ticket = ? OR i.ticket_key = ?)"
        )
        args: tuple[object, ...] = (ticket, ticket)
        if tenant is not None:
            sql += " AND a.tenant = ?"
            args = (*args, tenant)
        return [AuditRow(*row) for row in self._read(sql + " ORDER BY a.id", args)]

    def counts(self) -> dict[str, int]:
        return dict(self._read("SELECT state, count(*) FROM inbox GROUP BY state"))

    def gauges(self) -> Gauges:
        return gauges_of(
            self._read(GAUGES_OPEN_SQL),
            self._read(GAUGES_DEAD_SQL)[0][0],
            self._read(GAUGES_CLOCKS_SQL),
        )

    # -- SLA clocks -----------------------------------------------------------------

    def sla_clock(self, tenant: str, ticket: str) -> SlaClock | None:
        rows = self._read(
            f"SELECT {SLA_COLUMNS} FROM sla WHERE tenant = ? AND ticket = ?", (tenant, ticket)
        )
        return _sla_row(rows[0]) if rows else None

    def due_clocks(self, now_us: int, limit: int) -> list[SlaClock]:
        rows = self._read(
            f"SELECT {SLA_COLUMNS} FROM sla INDEXED BY sla_next"
            " WHERE next_check_us IS NOT NULL AND next_check_us <= ?"
            " ORDER BY next_check_us LIMIT ?",
            (now_us, limit),
        )
        return [_sla_row(row) for row in rows]

    def advance(self, moves: list[Move], now: float) -> int:
        # The updates in the sla table's key order: a sweep reads clocks in next-check
        # order, which is random to the table; in key order a batch walks it once, so
        # the cost per clock grows less with the table. The events keep the sweep's order.
        keyed = sorted(moves, key=lambda m: (m.clock.tenant, m.clock.ticket))
        rows = [
            (
                m.stage,
                m.level,
                m.next_check_us,
                m.clock.tenant,
                m.clock.ticket,
                m.clock.stage,
                m.clock.level,
                m.clock.due_us,
            )
            for m in keyed
        ]
        try:
            with self._transaction(durable=False) as db:
                # Compare and set: a worker may have re-decided a ticket (a new due time)
                # or recorded its first response since the sweep read it. The usual case,
                # every clock as read, is one statement for all; else each is checked.
                db.execute("SAVEPOINT advance")
                before = db.total_changes
                db.executemany(_ADVANCE, rows)
                if db.total_changes - before == len(rows):
                    applied = [m.event for m in moves]
                else:
                    db.execute("ROLLBACK TO advance")
                    kept = {
                        id(m)
                        for m, row in zip(keyed, rows, strict=True)
                        if db.execute(_ADVANCE, row).rowcount == 1
                    }
                    applied = [m.event for m in moves if id(m) in kept]
                db.execute("RELEASE advance")
                events = [_insert_values(e, now, 0.0) for e in applied if e is not None]
                db.executemany(_INSERT, events)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot advance SLA clocks: {exc}") from exc
        return len(applied)

    def comments(self, tenant: str, ticket: str) -> list[str]:
        rows = self._read(
            "SELECT normalized FROM inbox INDEXED BY inbox_ticket WHERE tenant = ? AND"
            " ticket = ? AND kind IN ('comment.created', 'comment.updated') AND state = 'done'"
            " ORDER BY occurred_at, id",
            (tenant, ticket),
        )
        return [str(row[0]) for row in rows]

    def waiting(self, tenant: str, account: str) -> list[SlaClock]:
        rows = self._read(
            f"SELECT {SLA_COLUMNS} FROM sla WHERE tenant = ? AND account = ?"
            " AND closed_us IS NULL ORDER BY created_us",
            (tenant, account),
        )
        return [_sla_row(row) for row in rows]

    def clocks(self, since_us: int, until_us: int) -> Iterator[SlaClock]:
        db = self._db()
        try:
            cursor = db.execute(
                f"SELECT {SLA_COLUMNS} FROM sla WHERE created_us >= ? AND created_us < ?"
                " ORDER BY created_us",
                (since_us, until_us),
            )
            while rows := cursor.fetchmany(1000):
                yield from (_sla_row(row) for row in rows)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def lead(self, role: str, owner: str, now: float, ttl_s: float) -> bool:
        try:
            with self._transaction(durable=False) as db:
                taken = db.execute(
                    "INSERT INTO leases (role, owner, until) VALUES (?, ?, ?)"
                    " ON CONFLICT (role) DO UPDATE SET owner = excluded.owner,"
                    " until = excluded.until WHERE leases.owner = excluded.owner"
                    " OR leases.until <= ?",
                    (role, owner, now + ttl_s, now),
                )
                return taken.rowcount == 1
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc


def _audit_values(claimed: Claimed, record: AuditRecord, now: float) -> tuple[object, ...]:
    return (
        claimed.id,
        claimed.tenant,
        claimed.ticket,
        now,
        record.outcome,
        record.decision,
        record.written,
        record.note,
    )


def sla_values(clock: SlaClock) -> tuple[object, ...]:
    return (
        clock.tenant,
        clock.ticket,
        clock.ticket_key,
        clock.vendor,
        clock.account,
        clock.tier,
        clock.calendar,
        clock.requester,
        clock.created_us,
        clock.at_risk_us,
        clock.due_us,
        json.dumps(list(clock.steps_us)),
        json.dumps(list(clock.levels)),
        clock.stage,
        clock.level,
        clock.next_check_us,
        clock.snapshot,
        clock.responded_us,
        clock.margin_us,
        clock.opened_left_s,
        clock.closed_us,
        clock.status_us,
    )


def _sla_row(row: tuple[Any, ...]) -> SlaClock:
    values = list(row)
    values[11] = tuple(json.loads(values[11]))
    values[12] = tuple(json.loads(values[12]))
    return SlaClock(*values)


def _replay_filter(
    *, dead: bool, event: str | None, since: float | None
) -> tuple[str, tuple[object, ...]]:
    if sum((dead, event is not None, since is not None)) != 1:
        raise StoreError("replay takes exactly one of: dead letters, one event, a start time")
    if dead:
        return "state = 'dead'", ()
    if event is not None:
        if event.isascii() and event.isdigit():
            row = int(event)
            if row >= 2**63:
                raise StoreError(f"{event}: no inbox row has an id that large")
            return "id = ?", (row,)
        tenant, sep, event_id = event.partition(":")
        if not sep:
            raise StoreError(f"{event!r}: give an inbox row id or tenant:event_id")
        return "tenant = ? AND event_id = ?", (tenant, event_id)
    return "received_at >= ?", (since,)
