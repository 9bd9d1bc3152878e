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
5. Once the file is written (or already agreed), what both sides now agree on is
   recorded as shown (`shown.ShownFlags`), per merged account.

Contacts and site admins: one is removed only when the helpdesk cleared a flag that
the record says it showed (`merge`); an empty flag never shown is kept and counted
(`PullReport.unknown`). Removals are listed one by one (`PullReport.removed`), and
more than ``max_removals`` of them refuse the pull (rule ``too_many_removals``): a
flag field deleted and made again, or a wrong tenant, looks like that, and an
unattended ``--yes`` run must not act on it.

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
    Flags,
    OrgRow,
    Removals,
    View,
    agreed,
    changes,
    merge_account,
    new_account,
)
from mappings.sync.pages import NoProgress, Progress, run_pages
from mappings.sync.shown import ShownFlags
from mappings.sync.spool import Spool
from mappings.sync.validate import AccountsChecker

DETAIL_LIMIT = 200  # accounts whose changes are listed one by one; the rest are counted
# More removals of contacts and site admins than this refuse a pull (--max-removals).
MAX_REMOVALS = 10


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
    # Contacts and site admins removed (the helpdesk cleared a flag it showed), and
    # those kept because the helpdesk never showed their flag.
    removed: list[str] = field(default_factory=list)
    unknown: int = 0
    shown_recorded: bool = False  # what both sides agree on was recorded
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
    shown: ShownFlags | None = None,
    max_removals: int = MAX_REMOVALS,
) -> PullReport:
    """``shown``: the tenant's record of what the helpdesk showed at the last sync
    (None: no record, so nothing is removed for want of a flag, and nothing recorded)."""
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
            _Job(directory.vendor, mappings_dir, spool, checker, shown, max_removals),
            report,
            detail_limit,
            confirm,
            replace,
        )
        # Only a verdict ends the job: a merge that fails (a full disk, Ctrl-C) keeps
        # the pages read, and a rerun merges again without reading the helpdesk; so does
        # a merge made from a file that changed before it could be written.
        finished = not report.conflict
        return report
    finally:
        spool.close(remove=finished)


@dataclass(frozen=True, slots=True)
class _Job:
    vendor: str
    mappings_dir: Path
    spool: Spool
    checker: AccountsChecker
    shown: ShownFlags | None
    max_removals: int


def _merge(
    job: _Job,
    report: PullReport,
    detail_limit: int,
    confirm: Callable[[PullReport], bool],
    replace: Callable[[str, str], None],
) -> None:
    vendor, mappings_dir, spool, checker = job.vendor, job.mappings_dir, job.spool, job.checker
    ctx = Context(vendor, checker.facts)
    header, read = _load_file(report.path, vendor, spool)
    _link(spool)
    _unlinked(spool, report)
    removals = Removals()
    lookup = _SpoolLookup(spool, job.shown)
    spool.db.executescript(
        """
        DROP TABLE IF EXISTS agreed;
        CREATE TABLE agreed (account TEXT NOT NULL, person TEXT NOT NULL);
        """
    )
    out = None
    if not report.dry_run:
        # Under the lock: no other pull makes its temp between our glob and its flock.
        with accounts_lock(mappings_dir):
            remove_stale_temps(mappings_dir)
            out = AtomicFile(report.path, replace=replace)
    try:
        writer = AccountsWriter(out.write if out is not None else _discard, header)
        for before, after, found, merged in _accounts(spool, ctx, lookup, removals):
            account_id = str(after.get("id", "?"))
            notes = found
            if merged:
                _stage_agreed(spool, account_id, agreed(after, lookup, checker.facts))
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
        report.removed = removals.lines
        report.unknown = removals.unknown
        if len(removals.lines) > job.max_removals and not report.dry_run:
            report.problems.append(_too_many(len(removals.lines), job.max_removals))
        _verdict(job, report, out, read, confirm)
    finally:
        if out is not None:
            out.close()


def _verdict(
    job: _Job,
    report: PullReport,
    out: AtomicFile | None,
    read: Fingerprint,
    confirm: Callable[[PullReport], bool],
) -> None:
    """Write the merged file (if it differs and is confirmed), then record what both
    sides now agree on."""
    if report.refused or report.dry_run:
        return
    if report.differs:
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
    if job.shown is not None:
        _record_agreed(job.spool, job.shown)
        report.shown_recorded = True


def _too_many(count: int, limit: int) -> Problem:
    return Problem(
        ACCOUNTS,
        "",
        "too_many_removals",
        f"the pull would remove {count} named contacts and site admins (more than"
        f" {limit}) whose flags the helpdesk no longer shows: a flag field deleted and made"
        " again, or another helpdesk, looks like this. Check the removals listed; if they"
        f" are meant, rerun with --max-removals {count}",
    )


def _stage_agreed(spool: Spool, account: str, people: list[FlaggedPerson]) -> None:
    """What the account's people show and the result lists, until the verdict."""
    spool.db.executemany(
        "INSERT INTO agreed VALUES (?, ?)",
        [(account, json.dumps([p.email, p.contact, list(p.admin_of)])) for p in people]
        or [(account, "")],
    )


def _record_agreed(spool: Spool, shown: ShownFlags) -> None:
    """The staged agreement into the record, account by account, in one transaction."""
    with shown.transaction():
        account: str | None = None
        people: list[FlaggedPerson] = []
        for row_account, person in spool.db.execute(
            "SELECT account, person FROM agreed ORDER BY account, rowid"
        ):
            if row_account != account:
                if account is not None:
                    shown.set_account(account, people)
                account, people = row_account, []
            if person:
                email, contact, sites = json.loads(person)
                people.append(FlaggedPerson(email, contact, tuple(sites)))
        if account is not None:
            shown.set_account(account, people)


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
    db.execute("CREATE INDEX file_accounts_id ON file_accounts (id)")  # flags name accounts
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
    # Flags that reach no account: unscoped ones of people in no account's organization,
    # and ones naming an account neither the helpdesk nor the file has.
    report.flagged_without_account = db.execute(
        """SELECT COUNT(DISTINCT f.person) FROM flags f WHERE
           (f.account = '' AND NOT EXISTS (
               SELECT 1 FROM person_orgs po JOIN links l ON l.org = po.org
               WHERE po.person = f.person))
           OR (f.account != '' AND NOT EXISTS (SELECT 1 FROM links l WHERE l.account = f.account)
               AND NOT EXISTS (SELECT 1 FROM file_accounts a WHERE a.id = f.account))"""
    ).fetchone()[0]


class _SpoolLookup:
    def __init__(self, spool: Spool, shown: ShownFlags | None) -> None:
        self._spool = spool
        self.org_seen = spool.org_seen
        self._shown = shown
        # The merge and then `agreed` ask about the same addresses of one account: the
        # answers of the account being merged are kept (a handful of entries).
        self._account: str | None = None
        self._known: dict[str, Flags | None] = {}

    def flags(self, email: str, account: str) -> Flags | None:
        if account != self._account:
            self._account, self._known = account, {}
        key = email.strip().casefold()
        if key not in self._known:
            self._known[key] = self._spool.flags(email, account)
        return self._known[key]

    def shown(self, email: str, account: str) -> Flags | None:
        return self._shown.get(email, account) if self._shown is not None else None


def _view(spool: Spool, account_id: str) -> View:
    orgs = spool.db.execute(
        """SELECT o.id, o.name, o.domains, o.tier FROM links l JOIN orgs o ON o.id = l.org
           WHERE l.account = ?""",
        (account_id,),
    ).fetchall()
    if not orgs:
        return View(())
    return View(
        tuple(OrgRow(r[0], r[1], tuple(json.loads(r[2])), r[3]) for r in orgs),
        tuple(
            FlaggedPerson(email, flags.contact, tuple(sorted(flags.admin_of)))
            for email, flags in spool.flagged(account_id)
        ),
    )


# (before, after, notes, merged: the helpdesk has the account and it was merged)
Merged = tuple[dict[str, Any] | None, dict[str, Any], list[str], bool]


def _accounts(
    spool: Spool, ctx: Context, lookup: _SpoolLookup, removals: Removals
) -> Iterator[Merged]:
    """(before, after, notes, merged) for every account of the result, in the file's
    order, then the new ones by id. Reads the spool a row at a time."""
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
                # Not an account the schema accepts: it will say why.
                yield before, before, [], False
                continue
            view = _view(spool, account_id)
            after, notes = merge_account(before, view, lookup, ctx, removals)
            yield before, after, notes, bool(view.orgs)
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
            yield None, account, notes, True
