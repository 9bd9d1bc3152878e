"""What the helpdesk and accounts.json last agreed on: per person and account, the
named-contact and site-admin flags tierdesk pushed (or a pull took), kept per tenant
between runs in ``<state dir>/<tenant>.flags.sqlite3``.

Why it exists: an empty flag field says nothing by itself. Right after `tierdesk setup`
every field is empty, and a pull that read that as "cleared" would drop every named
contact of every account. With this record a pull tells "cleared since the last sync"
(someone removed a flag both sides had: the contact goes) from "never shown" (kept,
and reported). Without a record (a new state directory, a lost file) a pull only ever
keeps contacts: the safe side.

Written by `sync push` for each person (Zendesk) or organization (JSM) it wrote, or
found already showing what the mappings want; and by `sync pull` for each account it
merged, once accounts.json is written (or already agreed). Dry runs only read it.
Addresses are keyed case-folded. Nothing here is a secret: addresses and account ids.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from mappings.sync.merge import FlaggedPerson, Flags

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shown (
    email_key TEXT NOT NULL, account TEXT NOT NULL, contact TEXT, sites TEXT NOT NULL,
    PRIMARY KEY (email_key, account)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shown_account ON shown (account);
"""


def flags_path(state_dir: Path, tenant: str) -> Path:
    return state_dir / f"{tenant}.flags.sqlite3"


class ShownFlags:
    """``readonly``: a dry run; a missing file then reads as an empty record."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        if readonly and not path.exists():
            self.db = sqlite3.connect(":memory:", isolation_level=None)
        elif readonly:
            self.db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            # A push records each person as it goes: no fsync per record. A power cut may
            # lose the last records, and a lost record only ever keeps a contact.
            self.db.execute("PRAGMA synchronous=NORMAL")
        if not readonly or not path.exists():
            self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self.readonly:
            yield  # nothing is written
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def get(self, email: str, account: str) -> Flags | None:
        row = self.db.execute(
            "SELECT contact, sites FROM shown WHERE email_key = ? AND account = ?",
            (email.strip().casefold(), account),
        ).fetchone()
        if row is None:
            return None
        return Flags(row[0], frozenset(json.loads(row[1])))

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM shown").fetchone()[0])

    def set_person(self, email: str, by_account: dict[str, Flags]) -> None:
        """Everything the person now shows (within a transaction)."""
        if self.readonly:
            return
        key = email.strip().casefold()
        self.db.execute("DELETE FROM shown WHERE email_key = ?", (key,))
        self._insert((key, account, flags) for account, flags in by_account.items())

    def set_account(self, account: str, people: Iterable[FlaggedPerson]) -> None:
        """Everything the account's people now show (within a transaction)."""
        if self.readonly:
            return
        self.db.execute("DELETE FROM shown WHERE account = ?", (account,))
        self._insert(
            (p.email.strip().casefold(), account, Flags(p.contact, frozenset(p.admin_of)))
            for p in people
        )

    def _insert(self, rows: Iterable[tuple[str, str, Flags]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO shown VALUES (?, ?, ?, ?)",
            [
                (key, account, flags.contact, json.dumps(sorted(flags.admin_of)))
                for key, account, flags in rows
                if key and (flags.contact is not None or flags.admin_of)
            ],
        )
