"""The worker draining a backlog of queued events: SQLite and PostgreSQL, dry run.

    .venv/bin/python bench/drain.py [--small] [--tickets N] [--runs R] [--seed S]
                                    [--store sqlite|postgres|both] [--url URL]

Queues a backlog of webhook events over ``--tickets`` tickets (default 2,000; ``--small``:
200) of one Zendesk tenant, with the bundled mappings and accounts: per ticket, its
creation (a full snapshot), two agent updates that change nothing tierdesk decides on,
one that raises the severity, and an agent's public reply (the first response). The
events of all tickets interleave as they would arrive; they go into the inbox in one
bulk insert of exactly the rows ``put`` writes (setup, not measured). Then, for each
store (a fresh file; for PostgreSQL a fresh schema on the throwaway server
tests/store/postgres_server.py starts, or on ``--url``), it prints:

0. the baseline: a bare claim-and-complete loop over the same backlog (`Store.claim`,
   then `Store.complete` with a one-line audit row) — what the store alone costs;
1. the real `Worker` (one thread, write-back dry run, the hours ledger open as
   ``tierdesk worker`` opens it) draining the backlog: events/s, its ratio to the
   baseline, and the SQL statements and write transactions per event, counted on the
   worker's own connections (sqlite3's trace callback; on PostgreSQL a counting cursor
   and the connection's transactions). The first PostgreSQL run is on a fresh table, before
   any ANALYZE: a claim whose plan depends on statistics shows here;
2. the same drain with two worker threads, and its ratio to one thread (goal: never
   below 1 — on two cores it shares them with the store); and by two worker processes
   of one thread each (what ``tierdesk serve`` runs in dry run), against one thread.
   These three are interleaved run by run;
3. the first 1,000 events (``--small``: 200) again with a live write-back: each call
   waits ``--latency-ms`` (default 10; a helpdesk's API answers in 100-300 ms) as a
   vendor connector waits on the network, and one thread against two. This and 2. are
   what the default worker processes and threads are chosen by (`tierdesk.cli.worker_defaults`).

Every run starts from a fresh database; ``--runs`` repeats (min and median printed).
Goals (issue 12): ≥ 4,000 events/s on SQLite, ≥ 2,000 on PostgreSQL, ≤ 6 statements
and 1 write transaction per event.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import multiprocessing.queues
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from entitlements.decide import Decision
from entitlements.tickets import OrganizationRef, Ticket
from pipeline.worker import Worker
from pipeline.writeback import WriteBack, WriteResult, ticket_update
from store import AuditRecord, NewEvent, SqliteStore, Store, open_ledger
from tests.store.postgres_server import given_or_started
from tierdesk.logs import configure
from webhooks.events import Comment, TicketEvent
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings, Tenant

GOALS = {"sqlite": 4_000, "postgres": 2_000}
LIVE_EVENTS = 1_000  # the live write-back's share of the backlog: it waits on every call
GOAL_STATEMENTS = 6
GOAL_TRANSACTIONS = 1
TENANT = Tenant(id="acme-zd", vendor="zendesk", email="tierdesk-api@support.example")
SETTINGS = Settings(tenants={TENANT.id: TENANT}, lease_s=60.0, max_attempts=5)
START = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # a Monday morning
NOW = (START + timedelta(hours=2)).timestamp()  # the worker's clock: the backlog is queued
AGENT = "sam@support.example"

REQUESTERS: list[tuple[str, str | None, int]] = [  # as bench/sweep.py: every tier and zone
    ("alice@acme.example", "360001", 3),
    ("JohnSmith_PartnerCompanyA@acme.example", "360001", 1),
    ("hank@acme.example", "360001", 2),
    ("ann@globex.example", "360002", 3),
    ("pat@initech.example", "360003", 2),
    ("ken@umbrella.example", None, 2),
    ("x@nowhere.example", None, 1),
]
PRODUCTS = (["jira-software", "confluence", "bitbucket", None], [5, 3, 2, 1])


# -- the backlog -----------------------------------------------------------------------


def backlog(tickets: int, seed: int) -> list[NewEvent]:
    """Five events per ticket, interleaved by their time as the helpdesk sends them."""
    rng = random.Random(seed)
    emails, weights = [r[:2] for r in REQUESTERS], [r[2] for r in REQUESTERS]
    timed: list[tuple[float, NewEvent]] = []
    for n in range(tickets):
        email, organization = rng.choices(emails, weights)[0]
        created = START + timedelta(seconds=rng.randrange(3600))
        ticket = Ticket(
            id=str(500_000 + n),
            created_at=created,
            requester=email,
            organization=OrganizationRef("zendesk", organization) if organization else None,
            severity=rng.choice([2, 3, 3, 4]),
            priority="normal",
            product=rng.choices(*PRODUCTS)[0],
            environment="production",
            vendor="zendesk",
        )
        steps: list[tuple[str, Ticket, str | None, Comment | None]] = [
            ("ticket.created", ticket, email, None),
            ("ticket.updated", ticket, AGENT, None),  # status or assignee: nothing decided
            ("ticket.updated", ticket, AGENT, None),
            ("ticket.updated", replace(ticket, severity=1), AGENT, None),
            ("comment.created", ticket, AGENT, Comment(f"c{n}", True, AGENT, by_agent=True)),
        ]
        at = created
        for i, (kind, state, actor, comment) in enumerate(steps):
            at += timedelta(seconds=rng.randrange(60, 900) if i else 0)
            event = TicketEvent(
                tenant=TENANT.id,
                vendor="zendesk",
                event_id=f"bench-{n}-{i}",
                kind=kind,
                ticket_id=ticket.id,
                ticket_key=ticket.id,
                occurred_at=at,
                ticket=None if comment else state,
                actor=actor,
                comment=comment,
            )
            new = NewEvent(
                tenant=TENANT.id,
                event_id=event.event_id,
                vendor="zendesk",
                kind=kind,
                ticket=ticket.id,
                ticket_key=ticket.id,
                payload=b"{}",
                normalized=event.to_json(),
                decidable=comment is None,
                occurred_at=at.timestamp(),
            )
            timed.append((at.timestamp(), new))
    timed.sort(key=lambda pair: pair[0])
    return [event for _, event in timed]


# -- the stores, and counting their statements --------------------------------------------


@dataclass
class Counts:
    statements: int = 0
    transactions: int = 0

    def add_sql(self, sql: str) -> None:
        self.statements += 1
        if sql.lstrip().upper().startswith("BEGIN"):
            self.transactions += 1


class Backend:
    name: str

    def fresh(self) -> str:
        """A fresh, empty database; its URL (what `open_store` takes)."""
        raise NotImplementedError

    def open(self, url: str) -> Store:
        raise NotImplementedError

    def fill(self, url: str, events: list[NewEvent]) -> None:
        raise NotImplementedError

    def count(self, target: Any, counts: Counts) -> None:
        """Count, on this thread's connection of ``target`` (a store or a ledger), every
        statement it sends."""
        raise NotImplementedError


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, top: Path) -> None:
        self.top = top

    def fresh(self) -> str:
        return str(self.top / f"drain-{uuid.uuid4().hex[:8]}.sqlite3")

    def open(self, url: str) -> Store:
        return SqliteStore(url)

    def fill(self, url: str, events: list[NewEvent]) -> None:
        from store.sqlite import _INSERT, _insert_values

        db = sqlite3.connect(url, isolation_level=None)
        try:
            db.execute("BEGIN")
            db.executemany(_INSERT, (_insert_values(e, NOW - 60, 0.0) for e in events))
            db.execute("COMMIT")
        finally:
            db.close()

    def count(self, target: Any, counts: Counts) -> None:
        last = [""]

        def traced(sql: str) -> None:
            # PRAGMA: a new connection's set-up, once per thread. A trigger's subprogram
            # is traced with its statement's expanded text again, right after it.
            if not sql.startswith("PRAGMA") and sql != last[0]:
                counts.add_sql(sql)
            last[0] = sql

        target._db().set_trace_callback(traced)


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, server: str) -> None:
        self.server = server

    def fresh(self) -> str:
        import psycopg

        schema = f"drain_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.server, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in self.server else "?"
        return f"{self.server}{sep}options=-csearch_path%3D{schema}"

    def open(self, url: str) -> Store:
        from store.postgres import PostgresStore

        return PostgresStore(url)

    def fill(self, url: str, events: list[NewEvent]) -> None:
        import psycopg

        from store.postgres import _INSERT, _insert_values

        with psycopg.connect(url) as db, db.cursor() as cursor:
            cursor.executemany(_INSERT, [_insert_values(e, NOW - 60, 0.0) for e in events])

    def count(self, target: Any, counts: Counts) -> None:
        import psycopg

        db = target._db()

        class Counting(psycopg.Cursor[Any]):
            def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                counts.add_sql(str(query))
                return super().execute(query, *args, **kwargs)

            def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                counts.add_sql(str(query))
                return super().executemany(query, *args, **kwargs)

        db.cursor_factory = Counting
        begin = db.transaction

        @contextlib.contextmanager
        def transaction(*args: Any, **kwargs: Any) -> Iterator[Any]:
            counts.statements += 2  # BEGIN and COMMIT: a round trip each
            counts.transactions += 1
            with begin(*args, **kwargs) as tx:
                yield tx

        db.transaction = transaction


# -- the runs ---------------------------------------------------------------------------


@dataclass
class Run:
    events: int
    seconds: float
    counts: Counts

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def bare_loop(backend: Backend, events: list[NewEvent], *, count: bool = False) -> Run:
    """The baseline: claim and complete each event, nothing in between."""
    url = backend.fresh()
    store = backend.open(url)  # the schema, then the backlog
    backend.fill(url, events)
    counts = Counts()
    if count:
        backend.count(store, counts)
    done = 0
    began = time.perf_counter()
    while (claimed := store.claim("bare", NOW, 60.0)) is not None:
        store.complete(claimed, AuditRecord("recorded", note="bare loop"), NOW)
        done += 1
    seconds = time.perf_counter() - began
    store.close()
    return Run(done, seconds, counts)


class Helpdesk:
    """A live write-back (not the dry run: the worker records each write at once, as it
    does a vendor's) whose every call waits ``latency_s``, the GIL released, as a vendor
    connector waits on the network. It writes what the dry run would."""

    name = "bench-helpdesk"

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.calls = 0
        self._lock = threading.Lock()

    def write(
        self, tenant: Tenant, event: TicketEvent, decision: Decision, previous: Any
    ) -> WriteResult:
        time.sleep(self.latency_s)
        with self._lock:
            self.calls += 1
        return WriteResult("written", ticket_update(decision), "bench helpdesk")


def until_idle(worker: Worker) -> int:
    """Run ``worker`` as `Worker.run` does until three claims in a row find nothing
    (another thread or process may hold the ticket the next event waits on); the
    events it took down the path."""
    done = idle = 0
    while idle < 3:
        outcomes = worker.run_batch()
        if not outcomes:
            idle += 1
            time.sleep(0.001)
        else:
            idle = 0
            done += len(outcomes)
    return done


def drain(
    backend: Backend,
    events: list[NewEvent],
    threads: int,
    *,
    count: bool = False,
    writeback: WriteBack | None = None,
) -> Run:
    """The real worker (``threads`` of them, one store and ledger as `tierdesk worker`)
    until the inbox holds nothing claimable; ``count``: its statements (one thread);
    ``writeback``: instead of the dry run."""
    url = backend.fresh()
    store = backend.open(url)  # the schema, then the backlog
    backend.fill(url, events)
    ledger = open_ledger(url)
    mappings = LiveMappings(None)
    counts = Counts()
    done = [0] * threads
    ready = threading.Barrier(threads + 1) if threads > 1 else None

    def work(i: int) -> None:
        worker = Worker(
            store,
            mappings,
            SETTINGS,
            clock=lambda: NOW,
            name=f"bench:{i}",
            ledger=ledger,
            writeback=None if writeback is None else lambda tenant: writeback,
        )
        if count:
            backend.count(store, counts)
            backend.count(ledger, counts)
        if ready is not None:
            ready.wait()
        done[i] = until_idle(worker)

    if ready is None:  # one worker: on this thread (what a profiler sees)
        began = time.perf_counter()
        work(0)
    else:
        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for thread in pool:
            thread.start()
        ready.wait()
        began = time.perf_counter()
        for thread in pool:
            thread.join()
    seconds = time.perf_counter() - began
    left = store.counts()
    store.close()
    ledger.close()
    if left.get("pending") or left.get("leased") or left.get("dead"):
        raise SystemExit(f"{backend.name}: the drain left {left}")
    return Run(sum(done), seconds, counts)


def drain_processes(backend: Backend, events: list[NewEvent], processes: int) -> Run:
    """The same backlog drained by ``processes`` worker processes (forked, each with its
    own store, ledger and one thread), as `tierdesk serve --worker-processes` runs them."""
    url = backend.fresh()
    store = backend.open(url)
    backend.fill(url, events)
    store.close()  # no connection crosses the fork
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(processes + 1)
    counts: multiprocessing.queues.Queue[int] = context.Queue()
    children = [
        context.Process(target=_drain_child, args=(backend, url, i, ready, counts))
        for i in range(processes)
    ]
    for child in children:
        child.start()
    ready.wait()
    began = time.perf_counter()
    done = sum(counts.get(timeout=600) for _ in children)
    seconds = time.perf_counter() - began
    for child in children:
        child.join(timeout=60)
    if done != len(events):
        raise SystemExit(f"{backend.name}: {processes} processes drained {done} events")
    return Run(done, seconds, Counts())


def _drain_child(
    backend: Backend,
    url: str,
    i: int,
    ready: Any,
    counts: multiprocessing.queues.Queue[int],
) -> None:
    store, ledger = backend.open(url), open_ledger(url)
    worker = Worker(
        store, LiveMappings(None), SETTINGS, clock=lambda: NOW, name=f"bench:p{i}", ledger=ledger
    )
    ready.wait()
    done = until_idle(worker)
    store.close()
    ledger.close()
    counts.put(done)


def _best(runs: list[Run]) -> tuple[float, float]:
    rates = [r.rate for r in runs]
    return max(rates), statistics.median(rates)


def measure(backend: Backend, events: list[NewEvent], runs: int, latency_s: float) -> None:
    print(f"\n== {backend.name}: {len(events):,} queued events ==")
    # Counting statements costs time of its own: counted runs apart from timed ones.
    b = bare_loop(backend, events, count=True)
    bare = [bare_loop(backend, events) for _ in range(runs)]
    bare_best, bare_median = _best(bare)
    print(
        f"baseline, bare claim + complete: {bare_best:,.0f} events/s (median {bare_median:,.0f});"
        f" {b.counts.statements / b.events:.1f} SQL statements,"
        f" {b.counts.transactions / b.events:.2f} write transactions per event"
    )
    counted = drain(backend, events, 1, count=True)
    one: list[Run] = []
    two: list[Run] = []
    apart: list[Run] = []
    for _ in range(runs):  # interleaved, so that the machine's noise falls on all alike
        one.append(drain(backend, events, 1))
        two.append(drain(backend, events, 2))
        apart.append(drain_processes(backend, events, 2))
    best, median = _best(one)
    c, n = counted.counts, counted.events
    per_stmt, per_tx = c.statements / n, c.transactions / n
    goal = GOALS[backend.name]
    print(
        f"worker, 1 thread: {best:,.0f} events/s (median {median:,.0f}; the counted run,"
        f" first on its fresh table: {counted.rate:,.0f}) = {best / bare_best:.2f} x the"
        " bare loop;"
        f" goal >= {goal:,}: {'met' if best >= goal else 'missed'}"
    )
    print(
        f"  per event: {per_stmt:.2f} SQL statements, {per_tx:.2f} write transactions;"
        f" goal <= {GOAL_STATEMENTS} / {GOAL_TRANSACTIONS}:"
        f" {'met' if per_stmt <= GOAL_STATEMENTS and per_tx <= GOAL_TRANSACTIONS else 'missed'}"
    )
    best2, median2 = _best(two)
    print(
        f"worker, 2 threads: {best2:,.0f} events/s (median {median2:,.0f})"
        f" = {best2 / best:.2f} x one thread (median {median2 / median:.2f});"
        f" goal >= 1: {'met' if median2 >= median * 0.97 else 'missed'}"
    )
    best_p, median_p = _best(apart)
    print(
        f"2 worker processes of 1 thread (what `tierdesk serve` runs in dry run):"
        f" {best_p:,.0f} events/s (median {median_p:,.0f}) = {best_p / best:.2f} x one"
        f" (median {median_p / median:.2f})"
    )
    live = events[: min(LIVE_EVENTS, len(events) // 5)]  # --small: 200
    helpdesks = [Helpdesk(latency_s), Helpdesk(latency_s)]
    one_live = drain(backend, live, 1, writeback=helpdesks[0])
    two_live = drain(backend, live, 2, writeback=helpdesks[1])
    print(
        f"worker with a live write-back ({latency_s * 1000:.0f} ms a call; the first"
        f" {len(live):,} events, {helpdesks[0].calls:,} calls): 1 thread {one_live.rate:,.0f}"
        f" events/s, 2 threads {two_live.rate:,.0f} = {two_live.rate / one_live.rate:.2f} x one"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="200 tickets, one run")
    parser.add_argument("--tickets", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--url", help="a PostgreSQL server to use instead of a throwaway one")
    parser.add_argument("--profile", metavar="FILE", help="cProfile one SQLite drain into FILE")
    parser.add_argument(
        "--latency-ms", type=float, default=10.0, help="a live write-back's wait per call"
    )
    args = parser.parse_args(argv)
    # The worker's line per event, as `tierdesk worker` logs it (its own set-up), to nowhere.
    configure({}, Path(os.devnull).open("w"))  # noqa: SIM115  open until the process exits
    tickets, runs = (200, 1) if args.small else (args.tickets, args.runs)
    events = backlog(tickets, args.seed)
    print(f"drain: {tickets:,} tickets, {len(events):,} events, {runs} run(s) each")
    if args.profile:
        import cProfile

        with tempfile.TemporaryDirectory(prefix="tierdesk-drain-") as top:
            backend = SqliteBackend(Path(top))
            cProfile.runctx("drain(backend, events, 1)", globals(), locals(), args.profile)
        return
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tierdesk-drain-") as top:
            measure(SqliteBackend(Path(top)), events, runs, args.latency_ms / 1000)
    if args.store in ("postgres", "both"):
        with given_or_started(args.url) as server:
            measure(PostgresBackend(server), events, runs, args.latency_ms / 1000)


if __name__ == "__main__":
    main()
