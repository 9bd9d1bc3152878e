"""`sync pull`: the helpdesk's organizations and people into accounts.json.

1. Check the mappings directory first (tiers, calendars, and that accounts.json reads),
   so that a broken directory is found before any call to the helpdesk.
2. Read every page of the directory into the spool, resumably (`pages.run_pages`).
3. Merge (`merge`): each account of the file in order, then the accounts the helpdesk
   names that the file does not have, sorted by id; each checked with the loader's
   rules (`validate`) and written to a temp file as it is made.
4. Refused if any problem (the file untouched); otherwise the diff is shown, and on
   confirmation the temp file replaces accounts.json (`accounts_file.AtomicFile`),
   unless accounts.json changed since step 3 read it (another tenant's pull into the
   same directory, an editor): that is refused too, and the spool kept, so that a rerun
   merges into the file as it is then without reading the helpdesk again.

The spool is removed once a run reaches a verdict (written, refused, declined, dry
run, nothing to change): the next run reads the helpdesk afresh. Only an interrupted
run leaves it, to be continued (an interrupted merge is merged again, without reading
the helpdesk again).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.directory import Directory
from mappings.problems import MappingError, Problem
from mappings.sync.accounts_file import (
    ACCOUNTS,
    AccountsWriter,
    AtomicFile,
    Fingerprint,
    accounts_lock,
    read_accounts,
    remove_stale_temps,
)
from mappings.sync.merge import (
    KEPT,
    Context,
    FlaggedPerson,
    OrgRow,
    View,
    changes,
    merge_account,
    new_account,
)
from mappings.sync.pages import NoProgress, Progress, run_pages
from mappings.sync.spool import Spool
from mappings.sync.validate import AccountsChecker

DETAIL_LIMIT = 200  # accounts whose changes are listed one by one; the rest are counted


@dataclass(frozen=True, slots=True)
class AccountDiff:
    account: str
    kind: str  # "added" or "changed"
    lines: tuple[str, ...]


@dataclass(slots=True)
class PullReport:
    path: Path
    dry_run: bool = False
    resumed: bool = False
    counts: dict[str, int] = field(default_factory=dict)  # records, pages, calls
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)  # accounts not in the helpdesk (first ones)
    kept_count: int = 0
    diffs: list[AccountDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    note_count: int = 0
    orgs_without_account: int = 0
    flagged_without_account: int = 0
    problems: list[Problem] = field(default_factory=list)
    written: bool = False
    declined: bool = False
    # accounts.json changed between the read and the commit: refused, nothing written
    conflict: bool = False

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    @property
    def differs(self) -> bool:
        return bool(self.added or self.changed)

    def note(self, account: str, text: str, limit: int) -> None:
        self.note_count += 1
        if len(self.notes) < limit:
            self.notes.append(f"{account}: {text}")


def pull(
    directory: Directory,
    mappings_dir: Path,
    spool_path: Path,
    identity: dict[str, str],
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    confirm: Callable[[PullReport], bool] = lambda report: True,
    replace: Callable[[str, str], None] = os.replace,
    detail_limit: int = DETAIL_LIMIT,
    restart: bool = False,
) -> PullReport:
    report = PullReport(mappings_dir / ACCOUNTS, dry_run=dry_run)
    spool = Spool(spool_path, identity, fresh=restart)
    report.resumed = spool.resumed
    finished = False
    try:
        checker = AccountsChecker(mappings_dir, spool.db)
        if not checker.usable:
            report.problems = checker.finish()
            return report
        try:
            _, accounts = read_accounts(report.path)
            for _ in accounts:  # readable to the end, before any call to the helpdesk
                pass
        except MappingError as exc:
            report.problems = list(exc.problems)
            return report
        run_pages(
            directory,
            spool,
            directory.phases,
            progress or NoProgress(),
            people=True,
            store=spool.put,
        )
        report.counts = spool.counts()
        _merge(
            directory.vendor, mappings_dir, spool, checker, report, detail_limit, confirm, replace
        )
        # Only a verdict ends the job: a merge that fails (a full disk, Ctrl-C) keeps
        # the pages read, and a rerun merges again without reading the helpdesk; so does
        # a merge made from a file that changed before it could be written.
        finished = not report.conflict
        return report
    finally:
        spool.close(remove=finished)


def _merge(
    vendor: str,
    mappings_dir: Path,
    spool: Spool,
    checker: AccountsChecker,
    report: PullReport,
    detail_limit: int,
    confirm: Callable[[PullReport], bool],
    replace: Callable[[str, str], None],
) -> None:
    ctx = Context(vendor, checker.facts)
    header, read = _load_file(report.path, vendor, spool)
    _link(spool)
    _unlinked(spool, report)
    out = None
    if not report.dry_run:
        # Under the lock: no other pull makes its temp between our glob and its flock.
        with accounts_lock(mappings_dir):
            remove_stale_temps(mappings_dir)
            out = AtomicFile(report.path, replace=replace)
    try:
        writer = AccountsWriter(out.write if out is not None else _discard, header)
        for before, after, found in _accounts(spool, ctx):
            account_id = str(after.get("id", "?"))
            notes = found
            if before is None:
                report.added += 1
                _diff(report, account_id, "added", changes({}, after), detail_limit)
            elif after == before:
                if notes and notes[0] == KEPT:
                    report.kept_count += 1
                    if len(report.kept) < detail_limit:
                        report.kept.append(account_id)
                    notes = notes[1:]
                else:
                    report.unchanged += 1
            else:
                report.changed += 1
                _diff(report, account_id, "changed", changes(before, after), detail_limit)
            for text in notes:
                report.note(account_id, text, detail_limit)
            checker.add(after, _origin(vendor, account_id, after) if before is None else None)
            writer.account(after)
        writer.close()
        report.problems = checker.finish()
        if report.refused or report.dry_run or not report.differs:
            return
        if not confirm(report):
            report.declined = True
            return
        assert out is not None
        try:
            out.commit(read)
        except MappingError as exc:
            report.problems = list(exc.problems)
            report.conflict = True
            return
        report.written = True
    finally:
        if out is not None:
            out.close()


def _origin(vendor: str, account_id: str, account: dict[str, Any]) -> str:
    """How a problem names an account the pull adds: it has no place in the file yet."""
    organizations = account.get("organizations")
    ids = organizations.get(vendor) if isinstance(organizations, dict) else None
    ids = [str(i) for i in ids] if isinstance(ids, list) else []
    kind = "organization" if len(ids) == 1 else "organizations"
    source = f", from helpdesk {kind} {', '.join(ids)}" if ids else ""
    return f"account {account_id} (new{source})"


def _discard(text: str) -> None:
    pass


def _diff(report: PullReport, account: str, kind: str, lines: list[str], limit: int) -> None:
    if len(report.diffs) < limit:
        report.diffs.append(AccountDiff(account, kind, tuple(lines)))


def _load_file(path: Path, vendor: str, spool: Spool) -> tuple[dict[str, Any], Fingerprint]:
    """The file's accounts into the spool, in order; its other top-level keys back, and
    which file that was (read under the lock: no pull renames it half way through)."""
    db = spool.db
    db.executescript(
        """
        DROP TABLE IF EXISTS file_accounts;
        DROP TABLE IF EXISTS file_orgs;
        CREATE TABLE file_accounts (pos INTEGER PRIMARY KEY, id TEXT, doc TEXT NOT NULL);
        CREATE TABLE file_orgs (org TEXT NOT NULL, account TEXT NOT NULL, pos INTEGER NOT NULL);
        """
    )
    with accounts_lock(path.parent, writing=False), spool.transaction():
        read = Fingerprint.of(path)
        header, accounts = read_accounts(path)
        for pos, account in enumerate(accounts):
            account_id = account.get("id") if isinstance(account, dict) else None
            account_id = account_id if isinstance(account_id, str) else None
            db.execute(
                "INSERT INTO file_accounts VALUES (?, ?, ?)",
                (pos, account_id, json.dumps(account, ensure_ascii=False)),
            )
            organizations = account.get("organizations") if account_id else None
            ids = organizations.get(vendor) if isinstance(organizations, dict) else None
            for org in ids if isinstance(ids, list) else []:
                db.execute("INSERT INTO file_orgs VALUES (?, ?, ?)", (str(org), account_id, pos))
    db.execute("CREATE INDEX file_orgs_org ON file_orgs (org)")
    return header, read


def _link(spool: Spool) -> None:
    """Each helpdesk organization's account: the one its own field names, else the one
    the file lists it under (the first, if the file lists it twice)."""
    spool.db.executescript(
        """
        DROP TABLE IF EXISTS links;
        CREATE TABLE links (org TEXT PRIMARY KEY, account TEXT NOT NULL);
        INSERT INTO links
            SELECT id, account FROM (
                SELECT o.id AS id, COALESCE(o.account, (
                    SELECT f.account FROM file_orgs f WHERE f.org = o.id ORDER BY f.pos LIMIT 1
                )) AS account FROM orgs o)
            WHERE account IS NOT NULL;
        CREATE INDEX links_account ON links (account);
        """
    )


def _unlinked(spool: Spool, report: PullReport) -> None:
    db = spool.db
    report.orgs_without_account = db.execute(
        "SELECT COUNT(*) FROM orgs WHERE id NOT IN (SELECT org FROM links)"
    ).fetchone()[0]
    report.flagged_without_account = db.execute(
        """SELECT COUNT(*) FROM people p
           WHERE (p.contact IS NOT NULL OR p.admin_of != '[]')
           AND NOT EXISTS (SELECT 1 FROM person_orgs po JOIN links l ON l.org = po.org
                           WHERE po.person = p.id)"""
    ).fetchone()[0]


class _SpoolLookup:
    def __init__(self, spool: Spool) -> None:
        self.flags = spool.flags
        self.org_seen = spool.org_seen


def _view(spool: Spool, account_id: str) -> View:
    orgs = spool.db.execute(
        """SELECT o.id, o.name, o.domains, o.tier FROM links l JOIN orgs o ON o.id = l.org
           WHERE l.account = ?""",
        (account_id,),
    ).fetchall()
    if not orgs:
        return View(())
    people = spool.db.execute(
        """SELECT DISTINCT p.email, p.contact, p.admin_of FROM links l
           JOIN person_orgs po ON po.org = l.org JOIN people p ON p.id = po.person
           WHERE l.account = ? AND (p.contact IS NOT NULL OR p.admin_of != '[]')
           ORDER BY p.email_key""",
        (account_id,),
    ).fetchall()
    return View(
        tuple(OrgRow(r[0], r[1], tuple(json.loads(r[2])), r[3]) for r in orgs),
        tuple(FlaggedPerson(r[0], r[1], tuple(json.loads(r[2]))) for r in people),
    )


Merged = tuple[dict[str, Any] | None, dict[str, Any], list[str]]


def _accounts(spool: Spool, ctx: Context) -> Iterator[Merged]:
    """(before, after, notes) for every account of the result, in the file's order,
    then the new ones by id. Reads the spool a row at a time."""
    lookup = _SpoolLookup(spool)
    db = spool.db
    last = -1
    while True:  # keyset pagination: no cursor stays open while other queries run
        rows = db.execute(
            "SELECT pos, id, doc FROM file_accounts WHERE pos > ? ORDER BY pos LIMIT 500",
            (last,),
        ).fetchall()
        if not rows:
            break
        for pos, account_id, doc in rows:
            last = pos
            before = json.loads(doc)
            if account_id is None:
                yield before, before, []  # not an account the schema accepts: it will say why
                continue
            after, notes = merge_account(before, _view(spool, account_id), lookup, ctx)
            yield before, after, notes
    after_id = ""
    while True:
        ids = db.execute(
            """SELECT DISTINCT account FROM links WHERE account > ? AND account NOT IN
               (SELECT id FROM file_accounts WHERE id IS NOT NULL) ORDER BY account LIMIT 500""",
            (after_id,),
        ).fetchall()
        if not ids:
            break
        for (account_id,) in ids:
            after_id = account_id
            account, notes = new_account(account_id, _view(spool, account_id), lookup, ctx)
            yield None, account, notes
