"""Persistence: the inbox (queue, dedupe, leases, dead letters) and the audit trail.

`open_store(url)` gives the backend for a database URL: a SQLite file path (the
embedded default) or ``postgresql://…`` (store/postgres.py, which needs the optional
extra ``postgres``: psycopg).
"""

from __future__ import annotations

from store.base import (
    AuditRecord,
    AuditRow,
    Claimed,
    EventRow,
    Gauges,
    LeaseLost,
    Move,
    NewEvent,
    SlaClock,
    Store,
    StoreError,
    WrittenState,
)
from store.sqlite import SqliteStore

__all__ = [
    "AuditRecord",
    "AuditRow",
    "Claimed",
    "EventRow",
    "Gauges",
    "LeaseLost",
    "Move",
    "NewEvent",
    "SlaClock",
    "SqliteStore",
    "Store",
    "StoreError",
    "WrittenState",
    "open_store",
]


def open_store(url: str) -> Store:
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        # Imported here: SQLite users need no psycopg.
        try:
            from store.postgres import PostgresStore  # noqa: PLC0415
        except ImportError as exc:
            raise StoreError(
                "a PostgreSQL database needs psycopg: pip install 'tierdesk[postgres]'"
            ) from exc
        return PostgresStore(url)
    if scheme not in ("", "sqlite"):
        raise StoreError(f"{scheme}:// is not a database tierdesk knows; give a SQLite file path")
    path = url.split("://", 1)[1].removeprefix("/") if scheme else url
    if path in ("", ":memory:") or path.startswith("file::memory:"):
        # Each thread and process has its own connection: an in-memory database would
        # be a different, empty one for each of them.
        raise StoreError("an in-memory SQLite database cannot be shared; give a file path")
    return SqliteStore(path)
