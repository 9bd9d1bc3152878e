"""The scale-out store: one PostgreSQL database shared by receivers and workers on
several machines. The same `store.base.Store` protocol and the same tests as SQLite.

Connections: one per thread, opened on first use and again after a fork (a connection
is never carried into a child process), in autocommit mode with explicit transactions.
After a server restart no request fails on a stale connection: each checkout polls the
idle socket for the server's goodbye (`_dropped`, no round trip) and opens a new session;
reads and the intake's ``put`` also try once more when a connection dies unannounced.
Durability: a ``put`` commits with ``synchronous_commit = on`` before it returns. The
workers' leases and completions commit with ``synchronous_commit = off`` (as SQLite's
NORMAL): a server crash can lose the last of them, which are then simply processed again.

Claims: the next claimable events (a batch, one per ticket) are locked ``FOR UPDATE SKIP
LOCKED``, so concurrent claimers pass each other instead of queueing. Row locks alone
cannot keep one ticket's events from being leased twice at once (a claimer's snapshot
may not yet see another claimer's uncommitted lease on a sibling event, e.g. after a
replay), so a claim then takes transaction-level advisory locks on their tickets (in
one order) and re-checks the tickets' open events in a fresh statement before it
leases. The claim's plan does not depend on statistics (`_CLAIM_SETTINGS`): a fresh
table, before any ANALYZE, is claimed from as fast as an analyzed one. Completing is
one statement for a claim's events (done, audit rows, written states, clocks), over one
JSON array; so is a sweep's batch of clock moves and the events they queue.

The URL may carry a password: it appears only masked (`store.urls`) in reprs and errors;
a malformed URL is refused before anything is printed or connected.
"""

from __future__ import annotations

import json
import os
import select
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

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
from store.urls import parse_database, password_of

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
    status_us     BIGINT,
    PRIMARY KEY (tenant, ticket)
);
-- Added since: a store created before keeps its table (CREATE … IF NOT EXISTS).
ALTER TABLE sla ADD COLUMN IF NOT EXISTS status_us BIGINT;
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
    "status_us",
)
SLA_COLUMNS = ", ".join(_SLA_NAMES)

_INSERT = (
    "INSERT INTO inbox (tenant, event_id, vendor, kind, ticket, ticket_key,"
    " payload, normalized, received_at, available_at, decidable, occurred_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (tenant, event_id) DO NOTHING"
)

# Claimable now, and nothing earlier of its ticket open, and no other event of the
# ticket (a later one, when this one was replayed) held under a live lease. The ticket's
# check is a scalar subquery, which PostgreSQL runs per candidate on inbox_open_ticket:
# written as NOT EXISTS it becomes an anti-join whose plan depends on the statistics,
# and on a fresh table (before ANALYZE) that was a hash of every open event per claim.
_CLAIMABLE = """
    e.state IN ('pending', 'leased')
    AND ((e.state = 'pending' AND e.available_at <= %(now)s)
         OR (e.state = 'leased' AND e.lease_until <= %(now)s))
    AND (e.ticket = '' OR (
        SELECT count(*) FROM (
            SELECT 1 FROM inbox AS o
            WHERE o.tenant = e.tenant AND o.ticket = e.ticket
              AND o.state IN ('pending', 'leased') AND o.id <> e.id
              AND (o.id < e.id OR o.lease_until > %(now)s)
            LIMIT 1) AS blocking) = 0)
"""
_CANDIDATES = f"""
SELECT e.id, e.tenant, e.ticket FROM inbox AS e
WHERE {_CLAIMABLE} AND e.id <> ALL(%(passed)s)
ORDER BY e.id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
_LEASE = f"""
UPDATE inbox AS e
SET state = 'leased', lease_owner = %(owner)s, lease_until = %(until)s,
    attempts = e.attempts + 1
WHERE e.id = ANY(%(ids)s) AND {_CLAIMABLE}
RETURNING e.id, e.tenant, e.event_id, e.vendor, e.kind, e.ticket, e.normalized,
          e.received_at, e.attempts
"""
# The tickets' locks, taken in the order given (`_ticket_locks`: one order for every
# claimer, so that two never wait on each other's).
_TICKET_LOCKS = """
SELECT pg_advisory_xact_lock(hashtext(t), hashtext(k))
FROM unnest(%s::text[], %s::text[]) AS u(t, k)
"""

_NEWER = "(o.occurred_at > me.occurred_at OR (o.occurred_at = me.occurred_at AND o.id > me.id))"

# What deciding a claimed event needs of its ticket, for every event of a claim at once:
# `superseded`, `newer_decidable`, whether `comments` has any, `sla_clock`, and
# (`_WRITTEN`) `last_written`.
_CONTEXT = f"""
SELECT me.id,
    EXISTS (SELECT 1 FROM inbox AS o
            WHERE o.tenant = me.tenant AND o.ticket = me.ticket AND me.ticket <> ''
              AND o.id <> me.id AND o.state = 'done' AND o.decidable AND {_NEWER}),
    EXISTS (SELECT 1 FROM inbox AS o
            WHERE o.tenant = me.tenant AND o.ticket = me.ticket AND me.ticket <> ''
              AND o.id <> me.id AND o.state IN ('pending', 'leased') AND o.decidable
              AND {_NEWER}),
    EXISTS (SELECT 1 FROM inbox AS o
            WHERE o.tenant = me.tenant AND o.ticket = me.ticket AND me.ticket <> ''
              AND o.kind IN ('comment.created', 'comment.updated') AND o.state = 'done'),
    {", ".join(f"s.{c}" for c in _SLA_NAMES)}
FROM inbox AS me LEFT JOIN sla AS s ON s.tenant = me.tenant AND s.ticket = me.ticket
WHERE me.id = ANY(%s)
"""
_WRITTEN = """
SELECT me.id, w.writer, w.state FROM inbox AS me
JOIN written AS w ON w.tenant = me.tenant AND w.ticket = me.ticket
WHERE me.id = ANY(%s)
"""

_AUDIT_COLUMNS = (
    "a.id, a.event, a.tenant, a.ticket, i.ticket_key, i.event_id, i.kind, a.at, a.outcome,"
    " a.decision, a.written, a.note"
)

# A sweep's batch in one statement over one JSON array (`_move`): each clock compared
# and set, and the events of those that moved queued in the sweep's order (most urgent
# first). Thousands of parameters adapted one by one were a quarter of a sweep's time.
_ADVANCE = """
WITH m AS (
    SELECT * FROM json_to_recordset(%(moves)s::json) AS x (
        ord integer, tenant text, ticket text, stage text, level integer,
        next_check_us bigint, was_stage text, was_level integer, was_due bigint,
        e_tenant text, event_id text, vendor text, kind text, e_ticket text,
        ticket_key text, payload text, normalized text, decidable boolean,
        occurred_at double precision)),
moved AS (
    UPDATE sla AS s SET stage = m.stage, level = m.level, next_check_us = m.next_check_us
    FROM m
    WHERE s.tenant = m.tenant AND s.ticket = m.ticket AND s.stage = m.was_stage
      AND s.level = m.was_level AND s.due_us = m.was_due AND s.responded_us IS NULL
    RETURNING s.tenant, s.ticket),
queued AS (
    INSERT INTO inbox (tenant, event_id, vendor, kind, ticket, ticket_key, payload,
                       normalized, received_at, available_at, decidable, occurred_at)
    SELECT m.e_tenant, m.event_id, m.vendor, m.kind, m.e_ticket, m.ticket_key,
           decode(m.payload, 'hex'), decode(m.normalized, 'hex'),
           %(now)s::double precision, %(now)s::double precision, m.decidable, m.occurred_at
    FROM moved JOIN m ON m.tenant = moved.tenant AND m.ticket = moved.ticket
    WHERE m.event_id IS NOT NULL
    ORDER BY m.ord
    ON CONFLICT (tenant, event_id) DO NOTHING)
SELECT count(*) FROM moved
"""

# One event's completion in one statement: done, only while still leased to its owner;
# then its audit row and, when given, its written state and SLA clock, each only if it
# was (``FROM done``). Parameters are cast: in a SELECT list a NULL has no type.
_SLA_TYPES = {
    **dict.fromkeys(_SLA_NAMES, "text"),
    **{name: "bigint" for name in _SLA_NAMES if name.endswith("_us") or name == "opened_left_s"},
    "steps_us": "bigint[]",
    "levels": "text[]",
    "level": "integer",
}
# A clock's columns as `json_to_record` reads them (its arrays as JSON, made arrays below).
_SLA_RECORD = ", ".join(
    f"{c} {'json' if _SLA_TYPES[c].endswith('[]') else _SLA_TYPES[c]}" for c in _SLA_NAMES
)
_SLA_FROM_RECORD = ", ".join(
    f"ARRAY(SELECT json_array_elements_text(c.{c}))::{_SLA_TYPES[c]}"
    if _SLA_TYPES[c].endswith("[]")
    else f"c.{c}"
    for c in _SLA_NAMES
)
# The completions of a claim in one statement, its items one JSON array: each event done
# only while still leased to its owner, and for those, the audit row, the state written
# and the SLA clock. Its parameters were ~30 per event, pipelined, and converting them
# was a quarter of a PostgreSQL drain (bench/drain.py); one JSON text is parsed by the
# server. A claim holds one event per ticket: no two items upsert the same row.
_COMPLETE = f"""
WITH item AS (
    SELECT * FROM json_to_recordset(%(items)s::json) AS x (
        id bigint, outcome text, decision text, written text, note text,
        writer text, state text, clock json)),
done AS (
    UPDATE inbox AS i
    SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL
    -- By primary key, each only while leased to its owner ("id owner", a hashed array).
    -- Joined to the items instead, the planner, which cannot see how many there are,
    -- scanned every open event of the inbox per completion (auto_explain during
    -- bench/drain.py: 10 of the statement's 18 ms with 5,000 events open; 2 ms now),
    -- or rescanned the items per event.
    WHERE i.id = ANY(%(ids)s::bigint[]) AND i.state = 'leased'
      AND i.id::text || ' ' || i.lease_owner = ANY(%(leases)s::text[])
    RETURNING i.id, i.tenant, i.ticket),
audit_row AS (
    INSERT INTO audit (event, tenant, ticket, at, outcome, decision, written, note)
    SELECT done.id, done.tenant, done.ticket, %(at)s::double precision, item.outcome,
           item.decision, item.written, item.note
    FROM done JOIN item ON item.id = done.id ORDER BY done.id),
written_row AS (
    INSERT INTO written (tenant, ticket, writer, state, at)
    SELECT done.tenant, done.ticket, item.writer, item.state, %(at)s::double precision
    FROM done JOIN item ON item.id = done.id WHERE item.writer IS NOT NULL
    ON CONFLICT (tenant, ticket, writer) DO UPDATE SET state = excluded.state, at = excluded.at),
clock_row AS (
    INSERT INTO sla ({SLA_COLUMNS})
    SELECT {_SLA_FROM_RECORD}
    FROM done JOIN item ON item.id = done.id,
         json_to_record(item.clock) AS c ({_SLA_RECORD})
    WHERE item.clock IS NOT NULL
    ON CONFLICT (tenant, ticket) DO UPDATE SET
        {", ".join(f"{c} = excluded.{c}" for c in _SLA_NAMES[2:])})
SELECT id FROM done
"""

# No sort for a claim: it walks inbox_open in id order and stops at its limit. Before
# ANALYZE the planner takes a fresh table for a small one, and would read and sort every
# open event (checking each one's ticket) for each claim: 43 ms at 10,000 open events,
# against 0.6 ms.
_CLAIM_SETTINGS = "SET LOCAL synchronous_commit = off; SET LOCAL enable_sort = off"

# How many candidates one claim passes over (each lost to a race on its ticket) before
# it reports nothing to claim; the worker simply polls again.
_CLAIM_TRIES = 8


def _dropped(db: psycopg.Connection[Any]) -> bool:
    """Whether the server has spoken on an idle connection, checked on checkout without
    a round trip. An idle session gets nothing unasked, except when it ends: a server
    shutting down or restarting (or an administrator's pg_terminate_backend) sends its
    FATAL notice and closes the socket, which makes the socket readable. A healthy
    connection costs one poll() here; a dropped one is replaced before any request
    fails on it."""
    if db.info.transaction_status != TransactionStatus.IDLE:
        return False
    try:
        poller = select.poll()
        poller.register(db.pgconn.socket, select.POLLIN)
    except (psycopg.Error, OSError, ValueError):
        return True
    return bool(poller.poll(0))


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
        clock.status_us,
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
        self.url = parse_database(url).shown  # what may be shown (StoreError if malformed)
        self._passwords = password_of(url)
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
        if db is not None and (db.closed or db.broken or _dropped(db)):
            # The server restarted or the network dropped: a new session, rather than a
            # request that fails on the dead one.
            with suppress(psycopg.Error):
                db.close()
            db = None
        if db is None:
            db = self._connect()
            self._local.db = db
            self._local.pid = os.getpid()
        return db

    @contextmanager
    def _transaction(self, *, durable: bool) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on this thread's connection, as `SqliteFile._transaction`.
        ``durable``: flushed before the commit returns (``synchronous_commit = on``,
        whatever the server's default); else as SQLite's NORMAL, for what is simply
        processed again if a server crash loses it (leases, completions, derived data)."""
        db = self._db()
        with db.transaction():
            db.execute(f"SET LOCAL synchronous_commit = {'on' if durable else 'off'}")
            yield db

    def _error(self, what: str, exc: BaseException) -> StoreError:
        message = str(exc).strip()
        for password in self._passwords:  # as written and percent-decoded
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
        for attempt in (1, 2):
            db = self._db()
            try:
                return db.execute(sql, args).fetchall()
            except psycopg.Error as exc:
                if attempt == 1 and db.broken:
                    continue  # died between uses, unseen at checkout: once more, anew
                raise self._error("read failed", exc) from exc
        raise AssertionError("unreachable")


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
        except UnicodeEncodeError as exc:
            raise self._error("cannot store the event", exc) from exc
        for attempt in (1, 2):
            db = self._db()
            try:
                with db.transaction():
                    db.execute("SET LOCAL synchronous_commit = on")
                    inserted = db.execute(_INSERT + " RETURNING id", values).fetchone()
                return inserted is not None
            except psycopg.Error as exc:
                # A connection that died between uses (no word from the server, so the
                # checkout could not tell) is tried once more on a new one, within this
                # request: the sender gets no 503 for it. A repeat cannot store the event
                # twice (ON CONFLICT DO NOTHING): had the first commit landed after all,
                # the answer is "duplicate", still a 2xx.
                if attempt == 1 and db.broken:
                    continue
                raise self._error("cannot store the event", exc) from exc
        raise AssertionError("unreachable")

    def claim(self, owner: str, now: float, lease_s: float) -> Claimed | None:
        claimed = self.claim_many(owner, now, lease_s, 1)
        return claimed[0] if claimed else None

    def claim_many(self, owner: str, now: float, lease_s: float, limit: int) -> list[Claimed]:
        args: dict[str, object] = {"owner": owner, "now": now, "until": now + lease_s}
        passed: list[int] = []
        rows: list[Any] = []
        try:
            db = self._db()
            with db.transaction():
                db.execute(_CLAIM_SETTINGS)
                for _ in range(_CLAIM_TRIES):
                    candidates = db.execute(
                        _CANDIDATES, {**args, "passed": passed, "limit": limit}
                    ).fetchall()
                    if not candidates:
                        return []
                    ids = [c[0] for c in candidates]
                    db.execute(_TICKET_LOCKS, _ticket_locks(candidates))
                    rows = db.execute(_LEASE, {**args, "ids": ids}).fetchall()
                    if rows:
                        break
                    passed.extend(ids)  # their tickets moved meanwhile
                else:
                    return []
                rows.sort(key=lambda row: row[0])
                ids = [row[0] for row in rows]
                sla = {row[0]: row[1:] for row in db.execute(_CONTEXT, (ids,)).fetchall()}
                written: dict[int, list[tuple[str, str]]] = {}
                for event_row, writer, state in db.execute(_WRITTEN, (ids,)).fetchall():
                    written.setdefault(event_row, []).append((writer, state))
        except psycopg.Error as exc:
            raise self._error("claim failed", exc) from exc
        claimed = []
        for row in rows:  # id, tenant, event_id, vendor, kind, ticket, normalized, …
            superseded, newer, commented, *clock = sla[row[0]]
            claimed.append(
                Claimed(
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    row[5],
                    bytes(row[6]).decode("utf-8"),
                    float(row[7]),
                    row[8],
                    owner,
                    clock=_sla_row(clock) if clock[0] is not None else None,
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
        lost = []
        try:
            with self._transaction(durable=False) as db:
                args = {
                    "items": json.dumps([_completion(item) for item in done]),
                    "ids": [item.claimed.id for item in done],
                    "leases": [f"{item.claimed.id} {item.claimed.owner}" for item in done],
                    "at": now,
                }
                marked = {row[0] for row in db.execute(_COMPLETE, args)}
                follow = []
                for item in done:
                    if item.claimed.id not in marked:
                        lost.append(item.claimed)
                        continue
                    follow += [_insert_values(e, now, 0.0) for e in item.follow]
                if follow:  # a repeat (same tenant and event id) is dropped
                    with db.cursor() as cursor:
                        cursor.executemany(_INSERT, follow)
        except (psycopg.Error, UnicodeEncodeError) as exc:
            which = ", ".join(str(item.claimed.id) for item in done)
            raise self._error(f"cannot complete event(s) {which}", exc) from exc
        return lost

    def release(self, claimed: Sequence[Claimed], now: float) -> None:
        if not claimed:
            return
        try:
            with self._transaction(durable=False) as db:
                db.execute(
                    "UPDATE inbox SET state = 'pending', available_at = %s, lease_owner = NULL,"
                    " lease_until = NULL, attempts = attempts - 1 WHERE state = 'leased'"
                    " AND (id, lease_owner) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))",
                    (now, [c.id for c in claimed], [c.owner for c in claimed]),
                )
        except psycopg.Error as exc:
            raise self._error("cannot release events", exc) from exc

    def fail(self, claimed: Claimed, error: str, now: float, retry_at: float | None) -> str:
        state = "dead" if retry_at is None else "pending"
        try:
            with self._transaction(durable=False) as db:
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
        once: dict[tuple[str, str], Move] = {}
        for m in moves:  # a clock moves once, as SQLite's second compare-and-set fails
            once.setdefault((m.clock.tenant, m.clock.ticket), m)
        if not once:
            return 0
        try:
            batch = json.dumps([_move(i, m) for i, m in enumerate(once.values())])
            with self._transaction(durable=False) as db:
                # Compare and set: a worker may have re-decided a ticket (a new due time)
                # or recorded its first response since the sweep read it; such a clock is
                # left as it is, and its event is not queued.
                row = db.execute(_ADVANCE, {"moves": batch, "now": now}).fetchone()
        except (psycopg.Error, UnicodeEncodeError) as exc:
            raise self._error("cannot advance SLA clocks", exc) from exc
        return int(row[0]) if row else 0

    def comments(self, tenant: str, ticket: str) -> list[str]:
        rows = self._read(
            "SELECT normalized FROM inbox WHERE tenant = %s AND ticket = %s"
            " AND kind IN ('comment.created', 'comment.updated') AND state = 'done'"
            " ORDER BY occurred_at, id",
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
            with self._transaction(durable=False) as db:
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


def _ticket_locks(candidates: Sequence[Any]) -> tuple[list[str], list[str]]:
    """The (tenant, ticket) of each candidate (id, tenant, ticket) that names a ticket,
    once each, sorted: the arguments of `_TICKET_LOCKS`."""
    pairs = sorted({(tenant, ticket) for _, tenant, ticket in candidates if ticket})
    return [tenant for tenant, _ in pairs], [ticket for _, ticket in pairs]


def _completion(item: Completion) -> dict[str, object]:
    """One item of `_COMPLETE`."""
    claimed, record, written, clock = item.claimed, item.record, item.written, item.clock
    return {
        "id": claimed.id,
        "outcome": record.outcome,
        "decision": record.decision,
        "written": record.written,
        "note": record.note,
        "writer": written.writer if written else None,
        "state": written.state if written else None,
        "clock": dict(zip(_SLA_NAMES, sla_values(clock), strict=True)) if clock else None,
    }


def _move(order: int, m: Move) -> dict[str, object]:
    """One item of `_ADVANCE`: the clock's compare-and-set, and its event, if any."""
    clock, event = m.clock, m.event
    item: dict[str, object] = {
        "ord": order,
        "tenant": clock.tenant,
        "ticket": clock.ticket,
        "stage": m.stage,
        "level": m.level,
        "next_check_us": m.next_check_us,
        "was_stage": clock.stage,
        "was_level": clock.level,
        "was_due": clock.due_us,
    }
    if event is not None:
        item |= {
            "e_tenant": event.tenant,
            "event_id": event.event_id,
            "vendor": event.vendor,
            "kind": event.kind,
            "e_ticket": event.ticket,
            "ticket_key": event.ticket_key,
            "payload": event.payload.hex(),
            # As `put` stores it: its UTF-8 bytes (a NUL and all), a lone surrogate refused.
            "normalized": event.normalized.encode("utf-8").hex(),
            "decidable": event.decidable,
            "occurred_at": event.occurred_at,
        }
    return item


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
