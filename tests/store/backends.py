"""The backends the store suites run against, one factory each: a fresh database for one
test, on which a test opens as many independent `Store`s as it asks for.

SQLite: a real file under tmp_path. PostgreSQL: a scratch schema (named in the URL's
``options=-csearch_path=…``) on the session's server (tests/conftest.py ``postgres_url``),
dropped afterwards; its cases skip without ``TIERDESK_TEST_POSTGRES=1``.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from store import SqliteStore, Store


@dataclass
class Backend:
    """One fresh database for one test.

    `connect` opens another independent `Store` on it (as a restarted process would);
    `payload` reads a stored body back, which the interface itself never returns;
    `url` is what `store.open_store` takes for it.
    """

    name: str
    url: str
    connect: Callable[[], Store]
    payload: Callable[[str, str], bytes]
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = self.connect()
        self.opened.append(store)
        return store


@contextmanager
def sqlite_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    path = tmp_path / "inbox.sqlite3"

    def payload(tenant: str, event_id: str) -> bytes:
        with closing(sqlite3.connect(path)) as db:
            found = db.execute(
                "SELECT payload FROM inbox WHERE tenant = ? AND event_id = ?", (tenant, event_id)
            ).fetchone()
        assert found is not None
        return bytes(found[0])

    yield Backend("sqlite", str(path), connect=lambda: SqliteStore(path), payload=payload)


@contextmanager
def postgres_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    server: str = request.getfixturevalue("postgres_url")  # skips without the server
    import psycopg

    from store.postgres import PostgresStore

    schema = f"t_{uuid.uuid4().hex}"
    url = f"{server}?options=-csearch_path%3D{schema}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")

    def payload(tenant: str, event_id: str) -> bytes:
        with psycopg.connect(url) as db:
            found = db.execute(
                "SELECT payload FROM inbox WHERE tenant = %s AND event_id = %s",
                (tenant, event_id),
            ).fetchone()
        assert found is not None
        return bytes(found[0])

    try:
        yield Backend("postgres", url, connect=lambda: PostgresStore(url), payload=payload)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], AbstractContextManager[Backend]]] = {
    "postgres": postgres_backend,
    "sqlite": sqlite_backend,
}
