"""The checks of `load_mappings`, applied to an accounts file too large to hold.

Accounts are checked a chunk at a time with the loader's own code: the accounts JSON
Schema (`mappings.documents`) and `build_rulebook` over the directory's real
``tiers.json`` and ``calendars.json`` with the chunk as ``accounts.json``, which
applies every per-account rule (zones, holidays, tiers, products, contract dates, the
named-contact rules of RULES.md §4). What spans accounts, an id, domain or
organization used twice, is checked against a table on disk instead of the loader's
in-memory index, with the loader's rule names and messages. Problems carry the
account's position in the whole file, so they read exactly as `tierdesk mappings
validate` would print them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mappings.build import build_rulebook
from mappings.documents import Documents, schema_problems
from mappings.problems import Problem, pointer
from mappings.sync.accounts_file import ACCOUNTS

_CAL, _TIERS = "calendars.json", "tiers.json"
CHUNK = 256
_CROSS_ACCOUNT = frozenset({"duplicate_account", "duplicate_domain", "duplicate_organization"})


@dataclass(frozen=True, slots=True)
class TierFacts:
    """What sync needs to know of tiers.json."""

    entitlement: dict[str, str]  # tier → named_contacts / site_admins / none
    rank: dict[str, int]
    default_tier: str
    default_timezone: str


def _read(directory: Path, name: str) -> tuple[Any, list[Problem]]:
    path = directory / name
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None, [Problem(name, "", "missing", f"{path} does not exist")]
    except UnicodeDecodeError as exc:
        return None, [Problem(name, "", "utf-8", f"not UTF-8 text (byte {exc.start})")]
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        return None, [Problem(name, "", "json", f"not valid JSON at {where}: {exc.msg}")]
    except OSError as exc:
        return None, [Problem(name, "", "unreadable", f"{path}: {exc.strerror}")]
    problems = schema_problems(name, document)
    return (None if problems else document), problems


def _rebase(
    problem: Problem, positions: list[int], origins: list[str | None] | None = None
) -> Problem:
    """``/accounts/3/…`` of a chunk → ``/accounts/<position in the file>/…``; the
    message of a problem in an account that is not in the file yet (a pull adds it)
    starts with that account's ``origin``, since the position names nothing anyone has
    seen."""
    parts = problem.pointer.split("/")
    message = problem.message
    if len(parts) > 2 and parts[1] == "accounts" and parts[2].isdigit():
        index = int(parts[2])
        parts[2] = str(positions[index])
        origin = origins[index] if origins is not None else None
        if origin is not None:
            message = f"{origin}: {message}"
    return Problem(problem.file, "/".join(parts), problem.rule, message)


class AccountsChecker:
    """``add`` accounts in file order, then ``finish()`` → every problem found.

    ``seen`` is a SQLite connection the checker may keep a table in (the sync job's
    spool), so that its memory does not grow with the number of accounts."""

    def __init__(self, directory: Path, seen: sqlite3.Connection) -> None:
        self._docs: dict[str, Any] = {}
        self.problems: list[Problem] = []
        for name in (_CAL, _TIERS):
            document, problems = _read(directory, name)
            self.problems.extend(problems)
            if document is not None:
                self._docs[name] = document
        if not self.problems:
            empty = {**self._docs, ACCOUNTS: {"accounts": []}}
            self.problems.extend(build_rulebook(Documents(empty, "sync"))[1])
        self.usable = not self.problems  # tiers and calendars load: accounts can be checked
        tiers = self._docs.get(_TIERS, {})
        self.facts = TierFacts(
            entitlement={
                k: v.get("entitlement", "none") for k, v in tiers.get("tiers", {}).items()
            },
            rank={k: v.get("rank", 0) for k, v in tiers.get("tiers", {}).items()},
            default_tier=tiers.get("default_tier", "select"),
            default_timezone=tiers.get("default_timezone", "UTC"),
        )
        self._seen = seen
        seen.execute("DROP TABLE IF EXISTS check_seen")
        seen.execute(
            "CREATE TABLE check_seen (kind TEXT, key TEXT, account TEXT, PRIMARY KEY (kind, key))"
        )
        self._chunk: list[dict[str, Any]] = []
        self._positions: list[int] = []
        self._origins: list[str | None] = []
        self.count = 0

    def add(self, account: dict[str, Any], origin: str | None = None) -> None:
        """``origin``: how to name an account the file does not have yet, e.g.
        ``account x (new, from helpdesk organization 123)``."""
        self._chunk.append(account)
        self._positions.append(self.count)
        self._origins.append(origin)
        self.count += 1
        if len(self._chunk) >= CHUNK:
            self._check_chunk()

    def finish(self) -> list[Problem]:
        if self._chunk:
            self._check_chunk()
        self._seen.execute("DROP TABLE IF EXISTS check_seen")
        return sorted(self.problems, key=_order)

    def _check_chunk(self) -> None:
        chunk, positions, origins = self._chunk, self._positions, self._origins
        self._chunk, self._positions, self._origins = [], [], []
        if not self.usable:
            return
        found = schema_problems(ACCOUNTS, {"schema_version": 1, "accounts": chunk})
        self.problems.extend(_rebase(p, positions, origins) for p in found)
        failed = {int(p.pointer.split("/")[2]) for p in found if p.pointer.count("/") >= 2}
        if any(p.pointer.count("/") < 2 for p in found):
            return  # the chunk as a whole failed: nothing more can be said of it
        valid = [i for i in range(len(chunk)) if i not in failed]
        for i in valid:
            self._cross_account(chunk[i], positions[i])
        if not valid:
            return
        docs = {**self._docs, ACCOUNTS: {"accounts": [chunk[i] for i in valid]}}
        _, problems = build_rulebook(Documents(docs, "sync"))
        where = [positions[i] for i in valid]
        named = [origins[i] for i in valid]
        self.problems.extend(
            _rebase(p, where, named)
            for p in problems
            if p.file == ACCOUNTS and p.rule not in _CROSS_ACCOUNT
        )

    def _claim(self, kind: str, key: str, account: str) -> str | None:
        """The account that already holds ``key``, if another one does."""
        claimed = self._seen.execute(
            "INSERT OR IGNORE INTO check_seen VALUES (?, ?, ?)", (kind, key, account)
        )
        if claimed.rowcount == 1:
            return None  # the first to hold it: one statement, the usual case
        row = self._seen.execute(
            "SELECT account FROM check_seen WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return str(row[0])

    def _cross_account(self, spec: dict[str, Any], position: int) -> None:
        account_id = spec["id"]
        where: list[str | int] = ["accounts", position]
        if self._claim("id", account_id, account_id) is not None:
            self.problems.append(
                Problem(
                    ACCOUNTS,
                    pointer(*where, "id"),
                    "duplicate_account",
                    f"account id {account_id!r} is used twice",
                )
            )
        for j, domain in enumerate(spec["domains"]):
            owner = self._claim("domain", domain.casefold(), account_id)
            if owner is not None and owner != account_id:
                self.problems.append(
                    Problem(
                        ACCOUNTS,
                        pointer(*where, "domains", j),
                        "duplicate_domain",
                        f"account {account_id}: domain {domain} also belongs to account {owner}",
                    )
                )
        for vendor, ids in spec.get("organizations", {}).items():
            for j, org in enumerate(ids):
                owner = self._claim(f"org:{vendor}", str(org), account_id)
                if owner is not None and owner != account_id:
                    self.problems.append(
                        Problem(
                            ACCOUNTS,
                            pointer(*where, "organizations", vendor, j),
                            "duplicate_organization",
                            f"account {account_id}: organization {vendor}:{org} "
                            f"also belongs to account {owner}",
                        )
                    )


def _order(problem: Problem) -> tuple[str, int]:
    """Tiers and calendars first, then accounts in file order (stable within one)."""
    parts = problem.pointer.split("/")
    at_account = len(parts) > 2 and parts[1] == "accounts" and parts[2].isdigit()
    return problem.file, int(parts[2]) if at_account else -1
