"""The scale-out store: one PostgreSQL database shared by receivers and workers on
several machines. The same `store.base.Store` protocol and the same tests as SQLite.

Connections: one per thread, opened on first use and again after a fork (a connection
is never carried into a child process), in autocommit mode with explicit transactions.
Durability: a ``put`` commits with ``synchronous_commit = on`` before it returns. The
workers' leases and completions commit with ``synchronous_commit = off`` (as SQLite's
NORMAL): a server crash can lose the last of them, which are then simply processed again.

Claims: the next claimable event is locked ``FOR UPDATE SKIP LOCKED``, so concurrent
claimers pass each other instead of queueing. Row locks alone cannot keep one ticket's
events from being leased twice at once (a claimer's snapshot may not yet see another
claimer's uncommitted lease on a sibling event, e.g. after a replay), so a claim then
takes a transaction-level advisory lock on its ticket and re-checks the ticket's open
events in a fresh statement before it leases.

The URL may carry a password: it appears only masked (`masked_url`) in reprs and errors.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

import psycopg

from store.base import (
    GAUGES_CLOCKS_SQL,
    GAUGES_DEAD_SQL,
    GAUGES_OPEN_SQL,
    AuditRecord,
    AuditRow,
    Claimed,
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
from store.urls import masked_url

SCHEMA_VERSION = 1

# Several processes may start at once against an empty database: the schema is created
# under this advisory lock (any constant of ours; "tdsk" in ASCII).
_SCHEMA_LOCK = 0x7464736B

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    vendor       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    ticket       TEXT NOT NULL,
    ticket_key   TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    -- UTF-8 bytes, not TEXT: a TicketEvent may hold NUL characters, which TEXT refuses.
    normalized   BYTEA NOT NULL,
    received_at  DOUBLE PRECISION NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'leased', 'done', 'dead')),
    available_at DOUBLE PRECISION NOT NULL,
    lease_owner  TEXT,
    lease_until  DOUBLE PRECISION,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    decidable    BOOLEAN NOT NULL DEFAULT TRUE,
    occurred_at  DOUBLE PRECISION NOT NULL DEFAULT 0,
    UNIQUE (tenant, event_id)
);
-- Only open events are scanned by claims; done ones pile up outside these indexes.
CREATE INDEX IF NOT EXISTS inbox_open ON inbox (id) WHERE state IN ('pending', 'leased');
CREATE INDEX IF NOT EXISTS inbox_ticket ON inbox (tenant, ticket, id);
CREATE INDEX IF NOT EXISTS inbox_open_ticket ON inbox (tenant, ticket, id)
    WHERE state IN ('pending', 'leased');
CREATE INDEX IF NOT EXISTS inbox_received ON inbox (received_at);
CREATE INDEX IF NOT EXISTS inbox_dead ON inbox (id) WHERE state = 'dead';

CREATE TABLE IF NOT EXISTS audit (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event     BIGINT NOT NULL REFERENCES inbox (id),
    tenant    TEXT NOT NULL,
    ticket    TEXT NOT NULL,
    at        DOUBLE PRECISION NOT NULL,
    outcome   TEXT NOT NULL,
    decision  TEXT,
    written   TEXT,
    note      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_ticket ON audit (ticket, id);
CREATE INDEX IF NOT EXISTS audit_event ON audit (event);

CREATE TABLE IF NOT EXISTS written (
    tenant  TEXT NOT NULL,
    ticket  TEXT NOT NULL,
    writer  TEXT NOT NULL,
    state   TEXT NOT NULL,
    at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, ticket, writer)
);

CREATE TABLE IF NOT EXISTS sla (
    tenant        TEXT NOT NULL,
    ticket        TEXT NOT NULL,
    ticket_key    TEXT NOT NULL,
    vendor        TEXT NOT NULL,
    account       TEXT,
    tier          TEXT NOT NULL,
    calendar      TEXT,
    requester     TEXT,
    created_us    BIGINT NOT NULL,
    at_risk_us    BIGINT NOT NULL,
    due_us        BIGINT NOT NULL,
    steps_us      BIGINT[] NOT NULL,
    levels        TEXT[] NOT NULL,
    stage         TEXT NOT NULL,
    level         INTEGER NOT NULL,
    next_check_us BIGINT,
    snapshot      TEXT NOT NULL,
    responded_us  BIGINT,
    margin_us     BIGINT,
    opened_left_s BIGINT,
    closed_us     BIGINT,
    PRIMARY KEY (tenant, ticket)
);
CREATE INDEX IF NOT EXISTS sla_next ON sla (next_check_us) WHERE next_check_us IS NOT NULL;
CREATE INDEX IF NOT EXISTS sla_created ON sla (created_us);
CREATE INDEX IF NOT EXISTS sla_account_open ON sla (tenant, account) WHERE closed_us IS NULL;
CREATE INDEX IF NOT EXISTS sla_stage_open ON sla (stage) WHERE closed_us IS NULL;

CREATE TABLE IF NOT EXISTS leases (
    role   TEXT PRIMARY KEY,
    owner  TEXT NOT NULL,
    until  DOUBLE PRECISION NOT NULL
);

CREATE TABLE IF NOT EXISTS tierdesk_schema (
    version INTEGER NOT NULL
);
"""

_SLA_NAMES = (
    "tenant",
    "ticket",
    "ticket_key",
    "vendor",
    "account",
    "tier",
    "calendar",
    "requester",
    "created_us",
    "at_risk_us",
    "due_us",
    "steps_us",
    "levels",
    "stage",
    "level",
    "next_check_us",
    "snapshot",
    "responded_us",
    "margin_us",
    "opened_left_s",
    "closed_us",
)
SLA_COLUMNS = ", ".join(_SLA_NAMES)
_SLA_UPSERT = (
    f"INSERT INTO sla ({SLA_COLUMNS}) VALUES ({', '.join(['%s'] * len(_SLA_NAMES))})"
    " ON CONFLICT (tenant, ticket) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SLA_NAMES[2:])
)

_INSERT = (
    "INSERT INTO inbox (tenant, event_id, vendor, kind, ticket, ticket_key,"
    " payload, normalized, received_at, available_at, decidable, occurred_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (tenant, event_id) DO NOTHING"
)

# Claimable now, and nothing earlier of its ticket open, and no other event of the
# ticket (a later one, when this one was replayed) held under a live lease.
_CLAIMABLE = """
    e.state IN ('pending', 'leased')
    AND ((e.state = 'pending' AND e.available_at <= %(now)s)
         OR (e.state = 'leased' AND e.lease_until <= %(now)s))
    AND NOT EXISTS (
        SELECT 1 FROM inbox AS o
        WHERE o.tenant = e.tenant AND o.ticket = e.ticket AND e.ticket <> ''
          AND o.state IN ('pending', 'leased') AND o.id <> e.id
          AND (o.id < e.id OR o.lease_until > %(now)s))
"""
_CANDIDATE = f"""
SELECT e.id, e.tenant, e.ticket FROM inbox AS e
WHERE {_CLAIMABLE} AND e.id <> ALL(%(passed)s)
ORDER BY e.id
LIMIT 1
FOR UPDATE SKIP LOCKED
"""
_LEASE = f"""
UPDATE inbox AS e
SET state = 'leased', lease_owner = %(owner)s, lease_until = %(until)s,
    attempts = e.attempts + 1
WHERE e.id = %(id)s AND {_CLAIMABLE}
RETURNING e.id, e.tenant, e.event_id, e.vendor, e.kind, e.ticket, e.normalized,
          e.received_at, e.attempts
"""
_TICKET_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))"

_NEWER = "(o.occurred_at > me.occurred_at OR (o.occurred_at = me.occurred_at AND o.id > me.id))"

_AUDIT_COLUMNS = (
    "a.id, a.event, a.tenant, a.ticket, i.ticket_key, i.event_id, i.kind, a.at, a.outcome,"
    " a.decision, a.written, a.note"
)

_ADVANCE = """
UPDATE sla AS s SET stage = m.stage, level = m.level, next_check_us = m.next_check_us
FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::bigint[],
            %s::text[], %s::int[], %s::bigint[])
     AS m(tenant, ticket, stage, level, next_check_us, was_stage, was_level, was_due)
WHERE s.tenant = m.tenant AND s.ticket = m.ticket AND s.stage = m.was_stage
  AND s.level = m.was_level AND s.due_us = m.was_due AND s.responded_us IS NULL
RETURNING s.tenant, s.ticket
"""

# How many candidates one claim passes over (each lost to a race on its ticket) before
# it reports nothing to claim; the worker simply polls again.
_CLAIM_TRIES = 8


def _insert_values(event: NewEvent, now: float, hold_s: float) -> tuple[object, ...]:
    return (
        event.tenant,
        event.event_id,
        event.vendor,
        event.kind,
        event.ticket,
        event.ticket_key,
        event.payload,
        event.normalized.encode("utf-8"),  # UnicodeEncodeError for lone surrogates
        now,
        now + hold_s,
        event.decidable,
        event.occurred_at,
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
        list(clock.steps_us),
        list(clock.levels),
        clock.stage,
        clock.level,
        clock.next_check_us,
        clock.snapshot,
        clock.responded_us,
        clock.margin_us,
        clock.opened_left_s,
        clock.closed_us,
    )


def _sla_row(row: Sequence[Any]) -> SlaClock:
    values = list(row)
    values[11] = tuple(int(v) for v in values[11])
    values[12] = tuple(values[12])
    return SlaClock(*values)


class PostgresDatabase:
    """The connection discipline shared by everything tierdesk keeps in one PostgreSQL
    database (the store here, the hours ledger in `store.ledger_postgres`): per-thread
    connections opened on first use and again after a fork, autocommit with explicit
    transactions, errors as `StoreError` with the URL's password masked."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.url = masked_url(url)  # what may be shown
        self._local = threading.local()
        # Connections inherited across a fork: never used nor closed in the child (closing
        # would end the parent's session), only kept from the garbage collector.
        self._inherited: list[psycopg.Connection[Any]] = []

    def _create_schema(
        self, schema: str, check: Callable[[psycopg.Connection[Any]], None] | None = None
    ) -> None:
        """Idempotent DDL (and ``check``) in one transaction, under an advisory lock:
        several processes may start at once against an empty database."""
        try:
            db = self._db()
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                db.execute(schema)
                if check is not None:
                    check(db)
        except psycopg.Error as exc:
            raise self._error("cannot create the schema", exc) from exc
        finally:
            # Often built in a process that forks afterwards (the gunicorn master): each
            # thread of each process opens its own connection on first use.
            self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- connections ----------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._url, autocommit=True, application_name="tierdesk", connect_timeout=10
            )
        except psycopg.Error as exc:
            raise self._error("cannot connect", exc) from exc

    def _db(self) -> psycopg.Connection[Any]:
        db: psycopg.Connection[Any] | None = getattr(self._local, "db", None)
        if db is not None and self._local.pid != os.getpid():
            self._inherited.append(db)
            db = None
        if db is not None and (db.closed or db.broken):
            db = None  # the server restarted or the network dropped: a new session
        if db is None:
            db = self._connect()
            self._local.db = db
            self._local.pid = os.getpid()
        return db

    def _error(self, what: str, exc: BaseException) -> StoreError:
        message = str(exc).strip()
        password = urlsplit(self._url).password if "://" in self._url else None
        if password:
            message = message.replace(password, "***")
        return StoreError(f"{self.url}: {what}: {message}")

    def close(self) -> None:
        """This thread's connection (each thread has its own)."""
        db: psycopg.Connection[Any] | None = getattr(self._local, "db", None)
        if db is None:
            return
        self._local.db = None
        if self._local.pid != os.getpid():
            self._inherited.append(db)
            return
        with suppress(psycopg.Error):  # a broken connection: nothing left to release
            db.close()

    def _read(self, sql: str, args: Sequence[object] | dict[str, object] = ()) -> list[Any]:
        try:
            return self._db().execute(sql, args).fetchall()
        except psycopg.Error as exc:
            raise self._error("read failed", exc) from exc


class PostgresStore(PostgresDatabase):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._create_schema(_SCHEMA, self._check_version)

    def _check_version(self, db: psycopg.Connection[Any]) -> None:
        found = db.execute("SELECT version FROM tierdesk_schema").fetchall()
        if not found:
            db.execute("INSERT INTO tierdesk_schema VALUES (%s)", (SCHEMA_VERSION,))
        elif found[0][0] != SCHEMA_VERSION:
            raise StoreError(
                f"{self.url}: schema version {found[0][0]}, this tierdesk knows {SCHEMA_VERSION}"
            )

    def ping(self) -> None:
        self._read("SELECT 1 FROM inbox LIMIT 1")

    # -- the inbox ------------------------------------------------------------------

    def put(self, event: NewEvent, now: float, *, hold_s: float = 0.0) -> bool:
        """Committed (and flushed: synchronous_commit) before it returns."""
        try:
            values = _insert_values(event, now, hold_s)
            db = self._db()
            with db.transaction():
                db.execute("SET LOCAL synchronous_commit = on")
                inserted = db.execute(_INSERT + " RETURNING id", values).fetchone()
        except (psycopg.Error, UnicodeEncodeError) as exc:
            raise self._error("cannot store the event", exc) from exc
        return inserted is not None

    def claim(self, owner: str, now: float, lease_s: float) -> Claimed | None:
        args: dict[str, object] = {"owner": owner, "now": now, "until": now + lease_s}
        passed: list[int] = []
        try:
            db = self._db()
            with db.transaction():
                db.execute("SET LOCAL synchronous_commit = off")
                for _ in range(_CLAIM_TRIES):
                    candidate = db.execute(_CANDIDATE, {**args, "passed": passed}).fetchone()
                    if candidate is None:
                        return None
                    event_row, tenant, ticket = candidate
                    if ticket:
                        db.execute(_TICKET_LOCK, (tenant, ticket))
                    row = db.execute(_LEASE, {**args, "id": event_row}).fetchone()
                    if row is not None:
                        break
                    passed.append(event_row)  # its ticket moved meanwhile
                else:
                    return None
        except psycopg.Error as exc:
            raise self._error("claim failed", exc) from exc
        event_row, tenant, event_id, vendor, kind, ticket, normalized, received_at, attempts = row
        return Claimed(
            event_row,
            tenant,
            event_id,
            vendor,
            kind,
            ticket,
            bytes(normalized).decode("utf-8"),
            float(received_at),
            attempts,
            owner,
        )

    def complete(
        self,
        claimed: Claimed,
        record: AuditRecord,
        now: float,
        written: WrittenState | None = None,
        clock: SlaClock | None = None,
        follow: tuple[NewEvent, ...] = (),
    ) -> None:
        try:
            db = self._db()
            with db.transaction():
                db.execute("SET LOCAL synchronous_commit = off")
                done = db.execute(
                    "UPDATE inbox SET state = 'done', lease_owner = NULL, lease_until = NULL,"
                    " last_error = NULL WHERE id = %s AND state = 'leased' AND lease_owner = %s",
                    (claimed.id, claimed.owner),
                )
                if done.rowcount != 1:
                    raise LeaseLost(f"event {claimed.id} is no longer leased to {claimed.owner}")
                self._audit(db, claimed, record, now)
                if written is not None:
                    db.execute(
                        "INSERT INTO written (tenant, ticket, writer, state, at)"
                        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant, ticket, writer)"
                        " DO UPDATE SET state = excluded.state, at = excluded.at",
                        (claimed.tenant, claimed.ticket, written.writer, written.state, now),
                    )
                if clock is not None:
                    db.execute(_SLA_UPSERT, sla_values(clock))
                if follow:  # a repeat (same tenant and event id) is dropped
                    with db.cursor() as cursor:
                        cursor.executemany(_INSERT, [_insert_values(e, now, 0.0) for e in follow])
        except (psycopg.Error, UnicodeEncodeError) as exc:
            raise self._error(f"cannot complete event {claimed.id}", exc) from exc

    def fail(self, claimed: Claimed, error: str, now: float, retry_at: float | None) -> str:
        state = "dead" if retry_at is None else "pending"
        try:
            db = self._db()
            with db.transaction():
                db.execute("SET LOCAL synchronous_commit = off")
                updated = db.execute(
                    "UPDATE inbox SET state = %s,"
                    " available_at = COALESCE(%s::double precision, available_at),"
                    " lease_owner = NULL, lease_until = NULL, last_error = %s"
                    " WHERE id = %s AND state = 'leased' AND lease_owner = %s",
                    (state, retry_at, error, claimed.id, claimed.owner),
                )
                if updated.rowcount != 1:
                    raise LeaseLost(f"event {claimed.id} is no longer leased to {claimed.owner}")
                if state == "dead":
                    self._audit(db, claimed, AuditRecord("dead_letter", note=error), now)
        except psycopg.Error as exc:
            raise self._error(f"cannot release event {claimed.id}", exc) from exc
        return state

    @staticmethod
    def _audit(
        db: psycopg.Connection[Any], claimed: Claimed, record: AuditRecord, now: float
    ) -> None:
        db.execute(
            "INSERT INTO audit (event, tenant, ticket, at, outcome, decision, written, note)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                claimed.id,
                claimed.tenant,
                claimed.ticket,
                now,
                record.outcome,
                record.decision,
                record.written,
                record.note,
            ),
        )

    def last_written(self, tenant: str, ticket: str, writer: str) -> str | None:
        rows = self._read(
            "SELECT state FROM written WHERE tenant = %s AND ticket = %s AND writer = %s",
            (tenant, ticket, writer),
        )
        return str(rows[0][0]) if rows else None

    def newer_decidable(self, claimed: Claimed) -> bool:
        if not claimed.ticket:
            return False
        rows = self._read(
            "SELECT 1 FROM inbox AS o, inbox AS me"
            " WHERE me.id = %s AND o.tenant = me.tenant AND o.ticket = me.ticket"
            " AND o.id <> me.id AND o.state IN ('pending', 'leased') AND o.decidable"
            f" AND {_NEWER} LIMIT 1",
            (claimed.id,),
        )
        return bool(rows)

    def superseded(self, claimed: Claimed) -> bool:
        if not claimed.ticket:
            return False
        rows = self._read(
            "SELECT 1 FROM inbox AS o, inbox AS me"
            " WHERE me.id = %s AND o.tenant = me.tenant AND o.ticket = me.ticket"
            f" AND o.id <> me.id AND o.state = 'done' AND o.decidable AND {_NEWER} LIMIT 1",
            (claimed.id,),
        )
        return bool(rows)

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
            db = self._db()
            with db.transaction():
                cursor = db.execute(
                    "UPDATE inbox SET state = 'pending', attempts = 0, available_at = %s,"
                    " last_error = NULL, lease_owner = NULL, lease_until = NULL"
                    f" WHERE state <> 'leased' AND ({where})",
                    (now, *args),
                )
                return cursor.rowcount
        except psycopg.Error as exc:
            raise self._error("replay failed", exc) from exc

    # -- reading --------------------------------------------------------------------

    def events(self, state: str | None = None, limit: int = 100) -> list[EventRow]:
        sql = (
            "SELECT id, tenant, event_id, vendor, kind, ticket, received_at, state, attempts,"
            " last_error FROM inbox"
        )
        args: tuple[object, ...] = ()
        if state is not None:
            sql += " WHERE state = %s"
            args = (state,)
        rows = self._read(sql + " ORDER BY id DESC LIMIT %s", (*args, limit))
        return [EventRow(*row) for row in rows]

    def history(self, ticket: str, tenant: str | None = None) -> list[AuditRow]:
        sql = (
            f"SELECT {_AUDIT_COLUMNS} FROM audit AS a JOIN inbox AS i ON i.id = a.event"
            " WHERE (a.ticket = %s OR i.ticket_key = %s)"
        )
        args: tuple[object, ...] = (ticket, ticket)
        if tenant is not None:
            sql += " AND a.tenant = %s"
            args = (*args, tenant)
        return [AuditRow(*row) for row in self._read(sql + " ORDER BY a.id", args)]

    def counts(self) -> dict[str, int]:
        return {state: int(n) for state, n in self._read(
            "SELECT state, count(*) FROM inbox GROUP BY state"
        )}  # fmt: skip

    def gauges(self) -> Gauges:
        return gauges_of(
            self._read(GAUGES_OPEN_SQL),
            self._read(GAUGES_DEAD_SQL)[0][0],
            self._read(GAUGES_CLOCKS_SQL),
        )

    # -- SLA clocks -----------------------------------------------------------------

    def sla_clock(self, tenant: str, ticket: str) -> SlaClock | None:
        rows = self._read(
            f"SELECT {SLA_COLUMNS} FROM sla WHERE tenant = %s AND ticket = %s", (tenant, ticket)
        )
        return _sla_row(rows[0]) if rows else None

    def due_clocks(self, now_us: int, limit: int) -> list[SlaClock]:
        rows = self._read(
            f"SELECT {SLA_COLUMNS} FROM sla"
            " WHERE next_check_us IS NOT NULL AND next_check_us <= %s"
            " ORDER BY next_check_us LIMIT %s",
            (now_us, limit),
        )
        return [_sla_row(row) for row in rows]

    def advance(self, moves: list[Move], now: float) -> int:
        if not moves:
            return 0
        columns: tuple[list[object], ...] = tuple([] for _ in range(8))
        for m in moves:
            for column, value in zip(
                columns,
                (
                    m.clock.tenant,
                    m.clock.ticket,
                    m.stage,
                    m.level,
                    m.next_check_us,
                    m.clock.stage,
                    m.clock.level,
                    m.clock.due_us,
                ),
                strict=True,
            ):
                column.append(value)
        try:
            db = self._db()
            with db.transaction():
                db.execute("SET LOCAL synchronous_commit = off")
                # Compare and set, in one statement: a worker may have re-decided a ticket
                # (a new due time) or recorded its first response since the sweep read it;
                # such a clock is left as it is.
                moved = {(t, k) for t, k in db.execute(_ADVANCE, columns).fetchall()}
                applied = []
                for m in moves:
                    key = (m.clock.tenant, m.clock.ticket)
                    if key in moved:
                        moved.discard(key)  # a clock moves once, as SQLite's second try fails
                        applied.append(m)
                events = [_insert_values(m.event, now, 0.0) for m in applied if m.event]
                if events:
                    with db.cursor() as cursor:
                        cursor.executemany(_INSERT, events)
        except (psycopg.Error, UnicodeEncodeError) as exc:
            raise self._error("cannot advance SLA clocks", exc) from exc
        return len(applied)

    def comments(self, tenant: str, ticket: str) -> list[str]:
        rows = self._read(
            "SELECT normalized FROM inbox WHERE tenant = %s AND ticket = %s"
            " AND kind = 'comment.created' AND state = 'done' ORDER BY occurred_at, id",
            (tenant, ticket),
        )
        return [bytes(row[0]).decode("utf-8") for row in rows]

    def waiting(self, tenant: str, account: str) -> list[SlaClock]:
        rows = self._read(
            f"SELECT {SLA_COLUMNS} FROM sla WHERE tenant = %s AND account = %s"
            " AND closed_us IS NULL ORDER BY created_us",
            (tenant, account),
        )
        return [_sla_row(row) for row in rows]

    def clocks(self, since_us: int, until_us: int) -> Iterator[SlaClock]:
        """Streamed through a server-side cursor on a connection of its own, so that a
        caller may use the store while it reads (and a month of clocks is never in
        memory at once)."""
        db = self._connect()
        try:
            with db.transaction(), db.cursor(name=f"clocks_{uuid.uuid4().hex}") as cursor:
                cursor.itersize = 1000
                cursor.execute(
                    f"SELECT {SLA_COLUMNS} FROM sla WHERE created_us >= %s AND created_us < %s"
                    " ORDER BY created_us",
                    (since_us, until_us),
                )
                for row in cursor:
                    yield _sla_row(row)
        except psycopg.Error as exc:
            raise self._error("cannot read SLA clocks", exc) from exc
        finally:
            db.close()

    def lead(self, role: str, owner: str, now: float, ttl_s: float) -> bool:
        try:
            db = self._db()
            with db.transaction():
                db.execute("SET LOCAL synchronous_commit = off")
                taken = db.execute(
                    "INSERT INTO leases (role, owner, until) VALUES (%s, %s, %s)"
                    " ON CONFLICT (role) DO UPDATE SET owner = excluded.owner,"
                    " until = excluded.until WHERE leases.owner = excluded.owner"
                    " OR leases.until <= %s RETURNING role",
                    (role, owner, now + ttl_s, now),
                ).fetchone()
        except psycopg.Error as exc:
            raise self._error("cannot take the lead", exc) from exc
        return taken is not None


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
            return "id = %s", (row,)
        tenant, sep, event_id = event.partition(":")
        if not sep:
            raise StoreError(f"{event!r}: give an inbox row id or tenant:event_id")
        return "tenant = %s AND event_id = %s", (tenant, event_id)
    return "received_at >= %s", (since,)
