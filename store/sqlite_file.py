"""One SQLite file shared by threads and processes: the connection and write-lock
discipline of every table in it (the inbox and audit in `store.sqlite`, the hours ledger
in `store.ledger`), kept in one place.

Each thread has its own connection (WAL, a 30 s busy timeout), opened on first use.
Writers queue on an flock beside the database, then take SQLite's write lock up front
(``BEGIN IMMEDIATE``), so that what a transaction reads it also writes on.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from store.base import StoreError


class SqliteFile:
    def __init__(self, path: str | Path, schema: str, *, user_version: int | None = None) -> None:
        self.path = str(path)
        self._local = threading.local()
        try:
            # executescript commits by itself: the schema is idempotent DDL, run as is.
            self._db().executescript(schema)
            if user_version is not None:
                self._db().execute(f"PRAGMA user_version = {user_version}")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot create the schema: {exc}") from exc
        finally:
            # The store is often built in a process that forks afterwards (the gunicorn
            # master): no SQLite connection may be carried across fork(). Each thread
            # opens its own on first use.
            self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # Opened in the writers' queue: switching a new file to WAL fails at once
            # with "database is locked" when another process is switching it too (SQLite
            # does not wait on that lock: its busy handler is not called, to avoid a
            # deadlock), so `serve`'s HTTP processes, starting together on a new file,
            # stopped each other one time in ten.
            lock = self._writer_lock()
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                # isolation_level=None: we open and close transactions ourselves.
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                try:
                    db.execute("PRAGMA journal_mode = WAL")
                    db.execute("PRAGMA synchronous = FULL")
                    db.execute("PRAGMA foreign_keys = ON")
                    db.execute("PRAGMA busy_timeout = 30000")
                except sqlite3.Error:
                    db.close()
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {self.path}: {exc}") from exc
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
            self._local.db = db
        return db

    def _sync(self, db: sqlite3.Connection, durable: bool) -> None:
        """FULL: the commit is on disk when it returns (what a webhook's acknowledgement
        promises). NORMAL, for the workers' leases and completions: it survives a killed
        process, and only a power cut could lose the last ones, which are then simply
        processed again (the write-back compares before writing)."""
        wanted = "FULL" if durable else "NORMAL"
        if getattr(self._local, "sync", "FULL") != wanted:
            db.execute(f"PRAGMA synchronous = {wanted}")
            self._local.sync = wanted

    def _writer_lock(self) -> int:
        """This thread's descriptor of the lock file beside the database."""
        fd: int | None = getattr(self._local, "lock", None)
        if fd is None:
            try:
                fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StoreError(f"cannot open {self.path}.lock: {exc.strerror}") from exc
            self._local.lock = fd
        return fd

    @contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction at a time across threads and processes.

        Writers queue on an flock before BEGIN IMMEDIATE. SQLite's own busy handler
        makes a blocked writer sleep and poll (steps up to 100 ms), which put 50-230 ms
        on the tail of webhook acknowledgements under 8 concurrent writers. The kernel
        wakes the next flock waiter as soon as the lock is free.
        """
        db = self._db()
        self._sync(db, durable)
        lock = self._writer_lock()
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            try:
                yield db
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):  # callers see the store's error type
                    raise StoreError(f"{self.path}: write failed: {exc}") from exc
                raise
            try:
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: commit failed: {exc}") from exc
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self) -> None:
        """This thread's connection and lock file (each thread has its own)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
            self._local.sync = "FULL"  # what the next connection starts with
        lock = getattr(self._local, "lock", None)
        if lock is not None:
            os.close(lock)
            self._local.lock = None

    def _read(
        self, sql: str, args: tuple[object, ...] | dict[str, object] = ()
    ) -> list[tuple[Any, ...]]:
        try:
            return self._db().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
