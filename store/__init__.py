"""Persistence: the inbox (queue, dedupe, leases, dead letters) and the audit trail.

`open_store(url)` gives the backend for a database setting (`store.urls`, strictly
parsed): a SQLite file path (the embedded default) or ``postgresql://…``
(store/postgres.py, which needs the optional extra ``postgres``: psycopg).
"""

from __future__ import annotations

from store.base import (
    AuditRecord,
    AuditRow,
    Claimed,
    EventRow,
    LeaseLost,
    Move,
    NewEvent,
    SlaClock,
    Store,
    StoreError,
    WrittenState,
)
from store.sqlite import SqliteStore
from store.urls import parse_database

__all__ = [
    "AuditRecord",
    "AuditRow",
    "Claimed",
    "EventRow",
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
    """The store ``url`` names (`store.urls.parse_database`: a value that is neither a
    clear file path nor a valid URL is refused, never created as a file)."""
    database = parse_database(url)
    if database.kind == "postgresql":
        # Imported here: SQLite users need no psycopg.
        try:
            from store.postgres import PostgresStore  # noqa: PLC0415
        except ImportError as exc:
            raise StoreError(
                "a PostgreSQL database needs psycopg: pip install 'tierdesk[postgres]'"
            ) from exc
        return PostgresStore(database.target)
    return SqliteStore(database.target)
