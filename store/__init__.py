"""Persistence: the inbox (queue, dedupe, leases, dead letters) and the audit trail.

`open_store(url)` gives the backend for a database URL: a SQLite file path (the
embedded default) or, later, ``postgresql://…``.
"""

from __future__ import annotations

from store.base import (
    AuditRecord,
    AuditRow,
    Claimed,
    EventRow,
    LeaseLost,
    NewEvent,
    Store,
    StoreError,
)
from store.sqlite import SqliteStore

__all__ = [
    "AuditRecord",
    "AuditRow",
    "Claimed",
    "EventRow",
    "LeaseLost",
    "NewEvent",
    "SqliteStore",
    "Store",
    "StoreError",
    "open_store",
]


def open_store(url: str) -> Store:
    if url.startswith(("postgres://", "postgresql://")):
        raise StoreError("the PostgreSQL backend is not part of this version; use a SQLite path")
    return SqliteStore(url.removeprefix("sqlite:///").removeprefix("sqlite://"))
