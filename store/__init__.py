"""Persistence: the inbox (queue, dedupe, leases, dead letters) and the audit trail;
the hours ledger beside them.

`open_store(url)` gives the backend for a database URL: a SQLite file path (the
embedded default) or ``postgresql://…`` (store/postgres.py, which needs the optional
extra ``postgres``: psycopg). `open_ledger(url)` gives the hours ledger in that same
database (store/ledger.py, store/ledger_postgres.py); both read the URL alike
(`_database`). The backends import nothing from here.
"""

from __future__ import annotations

from store.base import (
    AuditRecord,
    AuditRow,
    Claimed,
    Completion,
    EventRow,
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

__all__ = [
    "AuditRecord",
    "AuditRow",
    "Claimed",
    "Completion",
    "EventRow",
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


_POSTGRES = ("postgresql", "postgres")
_PSYCOPG = "a PostgreSQL database needs psycopg: pip install 'tierdesk[postgres]'"


def _database(url: str) -> tuple[str, str]:
    """("postgresql", the URL) or ("sqlite", the file's path): what a database setting
    names, for the store and the ledger alike; `StoreError` for anything else."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in _POSTGRES:
        return "postgresql", url
    if scheme not in ("", "sqlite"):
        raise StoreError(f"{scheme}:// is not a database tierdesk knows; give a SQLite file path")
    path = url.split("://", 1)[1].removeprefix("/") if scheme else url
    if path in ("", ":memory:") or path.startswith("file::memory:"):
        # Each thread and process has its own connection: an in-memory database would
        # be a different, empty one for each of them.
        raise StoreError("an in-memory SQLite database cannot be shared; give a file path")
    return "sqlite", path


def open_store(url: str) -> Store:
    kind, target = _database(url)
    if kind == "postgresql":
        # Imported here: SQLite users need no psycopg.
        try:
            from store.postgres import PostgresStore  # noqa: PLC0415
        except ImportError as exc:
            raise StoreError(_PSYCOPG) from exc
        return PostgresStore(target)
    return SqliteStore(target)


def has_ledger(url: str) -> bool:
    """Whether the database ``url`` names can hold the hours ledger: a SQLite file or a
    PostgreSQL database (whether psycopg is installed is `open_ledger`'s to say)."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    return scheme in ("", "sqlite", *_POSTGRES)


def open_ledger(url: str) -> Ledger:
    """The ledger in the database ``url`` names (the same value as `open_store`)."""
    kind, target = _database(url)
    if kind == "postgresql":
        try:
            from store.ledger_postgres import PostgresLedger  # noqa: PLC0415
        except ImportError as exc:
            raise StoreError(_PSYCOPG) from exc
        return PostgresLedger(target)
    from store.ledger import SqliteLedger  # noqa: PLC0415  as light as `import store` was

    return SqliteLedger(target)
