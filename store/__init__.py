"""Persistence: the inbox (queue, dedupe, leases, dead letters) and the audit trail;
the hours ledger beside them.

`open_store(url)` gives the backend for a database setting (`store.urls`, strictly
parsed): a SQLite file path (the embedded default) or ``postgresql://…``
(store/postgres.py, which needs the optional extra ``postgres``: psycopg).
`open_ledger(url)` gives the hours ledger in that same database (store/ledger.py,
store/ledger_postgres.py); both read the setting alike. The backends import nothing
from here.
"""

from __future__ import annotations

from store.base import (
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
    Store,
    StoreError,
    WrittenState,
)
from store.ledger_base import Ledger
from store.sqlite import SqliteStore
from store.urls import parse_database

__all__ = [
    "AuditRecord",
    "AuditRow",
    "Claimed",
    "Completion",
    "EventRow",
    "Gauges",
    "LeaseLost",
    "Ledger",
    "Move",
    "NewEvent",
    "SlaClock",
    "SqliteStore",
    "Store",
    "StoreError",
    "WrittenState",
    "has_ledger",
    "open_ledger",
    "open_store",
]


_PSYCOPG = "a PostgreSQL database needs psycopg: pip install 'tierdesk[postgres]'"


def open_store(url: str) -> Store:
    """The store ``url`` names (`store.urls.parse_database`: a value that is neither a
    clear file path nor a valid URL is refused, never created as a file)."""
    database = parse_database(url)
    if database.kind == "postgresql":
        # Imported here: SQLite users need no psycopg.
        try:
            from store.postgres import PostgresStore  # noqa: PLC0415
        except ImportError as exc:
            raise StoreError(_PSYCOPG) from exc
        return PostgresStore(database.target)
    return SqliteStore(database.target)


def has_ledger(url: str) -> bool:
    """Whether the database ``url`` names can hold the hours ledger: a SQLite file or a
    PostgreSQL database (whether psycopg is installed is `open_ledger`'s to say); False
    for a setting `store.urls.parse_database` refuses."""
    try:
        parse_database(url)
    except StoreError:
        return False
    return True


def open_ledger(url: str) -> Ledger:
    """The ledger in the database ``url`` names (the same value as `open_store`)."""
    database = parse_database(url)
    if database.kind == "postgresql":
        try:
            from store.ledger_postgres import PostgresLedger  # noqa: PLC0415
        except ImportError as exc:
            raise StoreError(_PSYCOPG) from exc
        return PostgresLedger(database.target)
    from store.ledger import SqliteLedger  # noqa: PLC0415  as light as `import store` was

    return SqliteLedger(database.target)
