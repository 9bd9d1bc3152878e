"""A sync job's state on disk: its checkpoint and the records it has read.

One SQLite file per job (``<state dir>/<tenant>.<job>.sqlite3``). Each page read from
the helpdesk is stored together with the cursor of the page after it, in one
transaction: after an interruption (Ctrl-C, a crash, a 429 storm that outlasts the
HTTP policy) the file holds every page up to some point and the cursor to continue
from, never half a page, so a rerun asks for the next page and nothing is read twice
or skipped. Records are keyed by the vendor's id, so even a page read again would
only overwrite itself.

The records stay on disk: memory does not grow with their number. The file belongs
to one job for one tenant, helpdesk and base URL; a file left by another, or older
than a day (`MAX_AGE_S`: its pages no longer say what the helpdesk holds), is started
afresh. An advisory lock keeps two runs of the same job from sharing it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from connector.directory import Contact, DirectoryOrg, Page
from mappings.sync.merge import Flags

# 2: JSM customers are kept once per organization (ids <org>/<accountId>); a checkpoint
# of format 1 holds them by accountId alone and is started afresh.
# 3: flags name their account (the ``flags`` table).
FORMAT = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orgs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, domains TEXT NOT NULL,
    account TEXT, tier TEXT);
CREATE TABLE IF NOT EXISTS people (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, email_key TEXT NOT NULL);
-- One row per flag: a contact kind or a site, for an account ('' when the flag names
-- none: then it is for the account of the person's organizations).
CREATE TABLE IF NOT EXISTS flags (
    person TEXT NOT NULL, account TEXT NOT NULL, contact TEXT, site TEXT);
CREATE INDEX IF NOT EXISTS flags_person ON flags (person);
CREATE INDEX IF NOT EXISTS flags_account ON flags (account);
CREATE TABLE IF NOT EXISTS person_orgs (
    person TEXT NOT NULL, org TEXT NOT NULL, PRIMARY KEY (person, org)) WITHOUT ROWID;
-- sync push: organizations of tierdesk accounts, and the records it has written
CREATE TABLE IF NOT EXISTS org_links (org TEXT PRIMARY KEY, account TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS written (kind TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE INDEX IF NOT EXISTS people_email ON people (email_key);
CREATE INDEX IF NOT EXISTS person_orgs_org ON person_orgs (org);
"""


class SyncError(Exception):
    """A sync job cannot go on; the message says why and what to do."""


MAX_AGE_S = 24 * 3600  # an older checkpoint is stale: the helpdesk has moved on


class Spool:
    def __init__(
        self,
        path: Path,
        identity: dict[str, str],
        *,
        fresh: bool = False,
        max_age_s: float = MAX_AGE_S,
        now: float | None = None,
    ) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock: IO[bytes] | None = path.with_name(path.name + ".lock").open("ab")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise SyncError(
                f"another sync is using {path} (the same job for the same tenant): "
                "wait for it to finish"
            ) from None
        self.db = sqlite3.connect(path, isolation_level=None)
        # WAL + NORMAL: a committed page survives the process being killed; a power cut
        # may lose the last pages, which a rerun reads again.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        now = time.time() if now is None else now
        wanted = json.dumps({**identity, "format": FORMAT}, sort_keys=True)
        created = float(self.get("created") or 0)
        usable = self.get("identity") == wanted and now - created <= max_age_s and not fresh
        self.resumed = usable and self.get("started") is not None
        if not usable:
            self._reset()
            self.set("identity", wanted)
            self.set("created", repr(now))

    def _reset(self) -> None:
        with self.transaction():
            tables = ("meta", "orgs", "people", "flags", "person_orgs", "org_links", "written")
            for table in tables:
                self.db.execute(f"DELETE FROM {table}")

    def close(self, *, remove: bool = False) -> None:
        self.db.close()
        if remove:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    self.path.with_name(self.path.name + suffix).unlink()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
            if remove:
                with contextlib.suppress(FileNotFoundError):
                    self.path.with_name(self.path.name + ".lock").unlink()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- checkpoint -------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_json(self, key: str, default: Any) -> Any:
        text = self.get(key)
        return default if text is None else json.loads(text)

    def set_json(self, key: str, value: Any) -> None:
        self.set(key, json.dumps(value, sort_keys=True))

    def position(self, phase: str) -> tuple[bool, str | None]:
        """(phase finished, cursor to continue from)."""
        done = self.get(f"done:{phase}") is not None
        return done, self.get(f"cursor:{phase}")

    def advance(self, phase: str, after: str | None) -> None:
        """Within the page's transaction: the page is done; continue at ``after``."""
        self.set("started", "1")
        if after is None:
            self.set(f"done:{phase}", "1")
            self.db.execute("DELETE FROM meta WHERE key = ?", (f"cursor:{phase}",))
        else:
            self.set(f"cursor:{phase}", after)

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.get_json("counts", {}).items()}

    def add_counts(self, delta: dict[str, int]) -> None:
        counts = self.counts()
        for key, value in delta.items():
            counts[key] = counts.get(key, 0) + value
        self.set_json("counts", counts)

    # -- records ----------------------------------------------------------------------

    def put(self, page: Page) -> None:
        """Store a page's records (within its transaction). A person read again (a
        page boundary that moved, a rerun) is what the helpdesk says now: their
        organization links are replaced, not added to."""
        self.db.executemany(
            "INSERT OR REPLACE INTO orgs VALUES (?, ?, ?, ?, ?)",
            [_org_row(o) for o in page.orgs],
        )
        self.db.executemany(
            "INSERT OR REPLACE INTO people VALUES (?, ?, ?)",
            [(p.id, p.email, p.email.strip().casefold()) for p in page.people],
        )
        for table in ("person_orgs", "flags"):
            self.db.executemany(
                f"DELETE FROM {table} WHERE person = ?", [(p.id,) for p in page.people]
            )
        self.db.executemany(
            "INSERT INTO flags VALUES (?, ?, ?, ?)",
            [
                *((p.id, account, kind, None) for p in page.people for account, kind in p.contacts),
                *((p.id, account, None, site) for p in page.people for account, site in p.admin_of),
            ],
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO person_orgs VALUES (?, ?)",
            [(p.id, org) for p in page.people for org in p.org_ids],
        )

    def flags(self, email: str, account: str) -> Flags | None:
        """What the helpdesk says of ``email`` (any of its people) for ``account``: the
        flags naming it, and the unscoped ones of people in its organizations (the
        pull's ``links`` table); None if no one has the address."""
        key = email.strip().casefold()
        if self.db.execute("SELECT 1 FROM people WHERE email_key = ?", (key,)).fetchone() is None:
            return None
        rows = self.db.execute(
            """SELECT f.contact, f.site FROM people p JOIN flags f ON f.person = p.id
               WHERE p.email_key = ? AND (f.account = ? OR (f.account = '' AND EXISTS (
                   SELECT 1 FROM person_orgs po JOIN links l ON l.org = po.org
                   WHERE po.person = p.id AND l.account = ?)))""",
            (key, account, account),
        ).fetchall()
        return _flags(rows)

    def flagged(self, account: str) -> list[tuple[str, Flags]]:
        """Everyone the helpdesk flags for ``account`` (as `flags` reads them): (the
        address as first spelled, flags), by address."""
        rows = self.db.execute(
            """SELECT p.email_key, p.email, f.contact, f.site FROM flags f
               JOIN people p ON p.id = f.person WHERE f.account = ?
               UNION ALL
               SELECT p.email_key, p.email, f.contact, f.site FROM links l
               JOIN person_orgs po ON po.org = l.org
               JOIN flags f ON f.person = po.person AND f.account = ''
               JOIN people p ON p.id = f.person WHERE l.account = ?
               ORDER BY 1, 2""",
            (account, account),
        ).fetchall()
        grouped: dict[str, tuple[str, list[tuple[str | None, str | None]]]] = {}
        for key, email, contact, site in rows:
            if key:
                grouped.setdefault(key, (email, []))[1].append((contact, site))
        return [(email, _flags(pairs)) for email, pairs in grouped.values()]

    def org_seen(self, org_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM orgs WHERE id = ?", (org_id,)).fetchone() is not None


def _org_row(org: DirectoryOrg) -> tuple[str, str, str, str | None, str | None]:
    return (org.id, org.name, json.dumps(list(org.domains)), org.account, org.tier)


def _flags(rows: list[tuple[str | None, str | None]]) -> Flags:
    kinds = {c for c, _ in rows if c}
    # Direct before partner when both are flagged: the stronger entitlement.
    contact: Contact | None = (
        "direct" if "direct" in kinds else "partner" if "partner" in kinds else None
    )
    return Flags(contact, frozenset(s for _, s in rows if s))
