"""What is particular to the PostgreSQL backend: secrets kept out of reprs and errors,
no connection carried across fork(), several processes claiming from one database,
a session the server ended, several processes creating the schema at once.
The behaviour shared with SQLite is in the backend-parametrised suites."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from store import AuditRecord, StoreError, open_store
from tests.store.backends import Backend, postgres_backend
from tests.store.test_inbox import T0, claim, new_event

psycopg = pytest.importorskip("psycopg")  # the optional extra; postgres_url fails without it

from store.postgres import PostgresStore  # noqa: E402
from store.urls import masked_url  # noqa: E402


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with postgres_backend(request, tmp_path) as made:
        try:
            yield made
        finally:
            for store in made.opened:
                store.close()


# -- secrets --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("postgresql://u:p%40ss:w@db/x", "postgresql://u:***@db/x"),
        ("postgres://u@db/x", "postgres://u@db/x"),
        # Malformed (a fragment; libpq's keywords are lower-case): where the password
        # ends cannot be known, so nothing of it is shown.
        ("postgresql://u:pw@db/x?PassWord=pw2#f", "postgresql://(malformed, not shown)"),
        (
            "postgresql://db/x?password=pw&sslmode=require",
            "postgresql://db/x?password=***&sslmode=require",
        ),
        ("postgresql:///x?host=/run/pg", "postgresql:///x?host=/run/pg"),
    ],
)
def test_masked_url_hides_only_the_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_no_password_in_repr_or_connection_errors() -> None:
    # Nothing listens on port 1: the error is about the connection, never the secret.
    url = "postgresql://tierdesk:hunter2-secret@127.0.0.1:1/tierdesk?connect_timeout=5"
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    assert "hunter2-secret" not in str(caught.value)
    assert "***" in str(caught.value)
    assert "hunter2-secret" not in repr(caught.value.__cause__).replace("hunter2-secret", "")


def test_repr_is_masked(pg: Backend) -> None:
    secret = pg.url.replace("postgresql://tierdesk@", "postgresql://tierdesk:not-checked@")
    store = PostgresStore(secret)  # trust authentication: any password is accepted
    try:
        assert "not-checked" not in repr(store)
        assert "tierdesk:***@" in repr(store)
    finally:
        store.close()


# -- opening --------------------------------------------------------------------------


def test_open_store_gives_postgres(pg: Backend) -> None:
    store = open_store(pg.url)
    try:
        assert isinstance(store, PostgresStore)
        store.ping()
    finally:
        store.close()


def test_several_processes_may_create_the_schema_at_once(pg: Backend) -> None:
    start = threading.Barrier(6)

    def create(_: int) -> None:
        start.wait()
        PostgresStore(pg.url).close()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(create, range(6)))
    pg.open().ping()


def test_a_schema_of_another_version_is_refused(pg: Backend) -> None:
    pg.open()
    with psycopg.connect(pg.url, autocommit=True) as admin:
        admin.execute("UPDATE tierdesk_schema SET version = 99")
    with pytest.raises(StoreError, match="99"):
        PostgresStore(pg.url)


def test_text_postgres_cannot_hold_is_a_store_error(pg: Backend) -> None:
    # TEXT refuses NUL; the receiver answers 503 for a StoreError, 500 for anything else.
    with pytest.raises(StoreError):
        pg.open().put(new_event(tenant="ac\x00me"), T0)


def test_a_session_the_server_ended_is_replaced(pg: Backend) -> None:
    store = pg.open()
    assert store.put(new_event(event_id="a"), T0)
    with psycopg.connect(pg.url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'tierdesk' AND pid <> pg_backend_pid()"
        ).fetchall()
    assert ended and all(ok for (ok,) in ended)
    # The call that finds the session gone may fail (as a StoreError); the next one works.
    with suppress(StoreError):
        store.ping()
    assert store.put(new_event(event_id="b"), T0)
    assert {e.event_id for e in store.events()} == {"a", "b"}


# -- processes ------------------------------------------------------------------------

N_EVENTS, N_TICKETS, N_PROCESSES = 300, 30, 3


def _claimer(store: PostgresStore, n: int, spans: Any) -> None:
    """One forked worker: the parent's store object, used from the child."""
    now = T0 + 1
    idle_since = time.monotonic()
    mine: list[tuple[str, int, int, int]] = []
    while time.monotonic() - idle_since < 2:  # stop after 2 s with nothing to claim
        claimed = store.claim(f"p{n}", now, 3600)
        if claimed is None:
            time.sleep(0.002)
            continue
        idle_since = time.monotonic()
        start = time.monotonic_ns()  # CLOCK_MONOTONIC: one clock for all processes
        mine.append((claimed.ticket, claimed.id, start, time.monotonic_ns()))
        store.complete(claimed, AuditRecord("decided", note=f"p{n}"), now)
    store.close()
    spans.put(mine)


def test_forked_processes_claim_each_event_once_and_tickets_in_order(pg: Backend) -> None:
    store = pg.open()
    assert isinstance(store, PostgresStore)
    tickets = [f"T-{i % N_TICKETS}" for i in range(N_EVENTS)]
    for i, ticket in enumerate(tickets):
        assert store.put(new_event("acme", f"ev-{i}", ticket), T0)
    # The parent's connection is open when it forks: the children must open their own
    # (sharing it would mix their sessions) and must not end it when they exit.
    store.ping()
    context = multiprocessing.get_context("fork")
    spans = context.Queue()
    children = [
        context.Process(target=_claimer, args=(store, n, spans)) for n in range(N_PROCESSES)
    ]
    for child in children:
        child.start()
    seen = [spans.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    store.ping()  # the parent's session survived its children

    assert all(seen), "a process claimed nothing: the test did not compete"
    claims = [span for part in seen for span in part]
    assert sorted(c[1] for c in claims) == sorted({c[1] for c in claims})  # each once
    assert len(claims) == N_EVENTS
    assert {e.attempts for e in store.events(limit=N_EVENTS)} == {1}
    by_ticket: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for ticket, event, start, end in claims:
        by_ticket[ticket].append((start, end, event))
    for ticket, held in by_ticket.items():
        held.sort()
        assert [h[2] for h in held] == sorted(h[2] for h in held), f"{ticket} out of order"
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(held)), (
            f"{ticket} was leased twice at once"
        )
        audited = [a.event for a in store.history(ticket)]
        assert audited == sorted(audited)


def test_claim_skips_an_event_another_transaction_holds(pg: Backend) -> None:
    # FOR UPDATE SKIP LOCKED: a claimer passes a row another session has locked (a
    # claim in flight) and takes the next ticket's event instead of waiting.
    store = pg.open()
    assert store.put(new_event(event_id="a", ticket="T-1"), T0)
    assert store.put(new_event(event_id="b", ticket="T-2"), T0)
    with psycopg.connect(pg.url) as other:
        other.execute("SELECT id FROM inbox WHERE event_id = 'a' FOR UPDATE").fetchall()
        assert claim(store, now=T0).event_id == "b"
        other.rollback()
    assert claim(store, "w2", now=T0).event_id == "a"


# -- the claim's plan -------------------------------------------------------------------


def test_a_claim_on_a_fresh_table_walks_the_open_index_in_order(pg: Backend) -> None:
    # Never analyzed: the planner has no statistics and guesses. The claim must still
    # read open events in id order and stop at its limit, not read and sort them all
    # (checking each one's ticket) on every claim.
    from store.postgres import _CANDIDATES, _CLAIM_SETTINGS

    store = pg.open()
    for i in range(300):
        assert store.put(new_event("acme", f"ev-{i}", f"T-{i % 60}"), T0)
    args = {"now": T0 + 1, "passed": [], "limit": 32}
    with psycopg.connect(pg.url, autocommit=True) as db, db.transaction():
        assert db.execute(
            "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables"
            " WHERE relname = 'inbox' AND schemaname = current_schema()"
        ).fetchone() == (None, None)
        db.execute(_CLAIM_SETTINGS)
        plan = "\n".join(row[0] for row in db.execute("EXPLAIN " + _CANDIDATES, args))
    assert "Index Scan using inbox_open on inbox e" in plan, plan
    assert "Sort" not in plan and "Bitmap" not in plan, plan
    assert [c.event_id for c in store.claim_many("w1", T0 + 1, 30.0, 100)] == [
        f"ev-{i}" for i in range(60)
    ]
