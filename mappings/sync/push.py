"""`sync push`: the mappings' tiers and named-contact flags onto the helpdesk.

Read first, write only what differs: every organization and person is read page by
page, compared with what the mappings want (`want`), and written only when it shows
something else, one record per call. A push after a push sends nothing.

What it touches: organizations of a tierdesk account (listed in the mappings, or
naming a known account in their own field) and people who are a named contact or site
admin of an account, or belong to one of its organizations (their stale flags are
cleared). Anything else is left alone and counted: an admin may be flagging a new
account for the next pull.

Flags name their account (``acme:direct``): a person listed by two accounts carries
both, and a flag naming an account the mappings do not have is left as it is (an admin
may be flagging a new account). Each person (Zendesk) or organization (JSM) that now
shows what the mappings want is recorded as shown (`shown.ShownFlags`): a later pull
then knows a cleared flag from one never pushed.

Hours: given the pay-as-you-go accounts' hours status (``ok``, ``low``, ``exhausted``,
read by the caller from the hours ledger), their organizations show it too; without
it (no ledger yet) what the helpdesk shows is left alone.

Resumable: each write is recorded as it succeeds, and the page's cursor once the page
is done. A rerun reads the unfinished page again; what was already written now agrees
and is not written again (nor counted twice), what was not is written.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connector.directory import (
    UNSCOPED,
    Contact,
    Directory,
    DirectoryOrg,
    DirectoryPerson,
    OrgWant,
    Page,
    PersonWant,
)
from connector.errors import NotFound, PermanentError, Unauthorized
from mappings.problems import MappingError, Problem
from mappings.sync.merge import FlaggedPerson, Flags
from mappings.sync.pages import NoProgress, Progress, run_pages
from mappings.sync.shown import ShownFlags
from mappings.sync.spool import Spool, SyncError
from mappings.sync.validate import AccountsChecker
from mappings.sync.want import known_account, load_wants, org_account, org_want, person_want

DETAIL_LIMIT = 200
MAX_REFUSED_IN_A_ROW = 20  # a missing custom field fails every write alike: stop early


@dataclass(slots=True)
class PushReport:
    dry_run: bool = False
    resumed: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    planned: list[str] = field(default_factory=list)  # first updates, as sent (or not)
    failures: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.problems)


class _Pusher:
    def __init__(
        self,
        directory: Directory,
        spool: Spool,
        report: PushReport,
        detail_limit: int,
        hours: Mapping[str, str],
        shown: ShownFlags | None,
    ) -> None:
        self.directory = directory
        self.shown = shown
        self.hours = hours
        self.spool = spool
        self.report = report
        self.detail_limit = detail_limit
        self.refused_in_a_row = 0

    def work(self, phase: str, page: Page) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for org in page.orgs:
            self._org(org, counts)
        for person in page.people:
            self._person(person, counts)
        return dict(counts)

    def store(self, page: Page) -> None:
        # The organizations of tierdesk accounts, for the people phase that follows.
        for org in page.orgs:
            account = org_account(self.spool, org.id, org.account)
            if account is not None:
                self.spool.db.execute(
                    "INSERT OR REPLACE INTO org_links VALUES (?, ?)", (org.id, account)
                )

    def _org(self, org: DirectoryOrg, counts: Counter[str]) -> None:
        account = org_account(self.spool, org.id, org.account)
        want = org_want(self.spool, account) if account is not None else None
        if want is None:
            counts["organizations not in the mappings"] += 1
            return
        status = self.hours.get(account) if account is not None else None
        if status is not None:
            want = replace(want, hours=status)
        update = self.directory.org_update(org, want)
        shows = want
        self._apply(
            "organization",
            org.id,
            f"organization {org.id} ({account})",
            update,
            lambda: self.directory.write_org(org, update),
            counts,
            lambda: self._shows_org(shows),
        )

    def _shows_org(self, want: OrgWant) -> None:
        """The organization shows its account's contacts (JSM keeps them on it)."""
        if self.shown is None or not self.directory.flags_on_orgs:
            return
        people: dict[str, FlaggedPerson] = {}
        lists: tuple[tuple[Contact, tuple[str, ...]], ...] = (
            ("direct", want.named_contacts),
            ("partner", want.partner_contacts),
        )
        for kind, emails in lists:
            for email in emails:
                people.setdefault(email.casefold(), FlaggedPerson(email, kind, ()))
        for email, site in want.site_admins:
            old = people.get(email.casefold(), FlaggedPerson(email, None, ()))
            people[email.casefold()] = FlaggedPerson(
                old.email, old.contact, tuple(sorted({*old.admin_of, site}))
            )
        with self.shown.transaction():
            self.shown.set_account(want.account, people.values())

    def _person(self, person: DirectoryPerson, counts: Counter[str]) -> None:
        want = person_want(self.spool, person.email, person.org_ids)
        if want is None:
            counts["people not in the mappings"] += 1
            return
        mine = want
        # Flags for accounts the mappings do not have stay (an admin may be flagging a
        # new account for the next pull); unscoped ones are rewritten with their account.
        want = PersonWant(
            tuple(sorted({*want.contacts, *self._foreign(person.contacts)})),
            tuple(sorted({*want.admin_of, *self._foreign(person.admin_of)})),
        )
        update = self.directory.person_update(person, want)
        self._apply(
            "person",
            person.id,
            f"person {person.id} <{person.email}>",
            update,
            lambda: self.directory.write_person(person, update),
            counts,
            lambda: self._shows_person(person.email, mine),
        )

    def _foreign(self, pairs: tuple[tuple[str, Any], ...]) -> set[tuple[str, Any]]:
        return {
            (account, value)
            for account, value in pairs
            if account != UNSCOPED and not known_account(self.spool, account)
        }

    def _shows_person(self, email: str, want: PersonWant) -> None:
        if self.shown is None or self.directory.flags_on_orgs:
            return
        by_account: dict[str, Flags] = {}
        for account, kind in want.contacts:
            by_account[account] = Flags(kind, frozenset())
        for account, site in want.admin_of:
            old = by_account.get(account, Flags(None, frozenset()))
            by_account[account] = Flags(old.contact, old.admin_of | {site})
        with self.shown.transaction():
            self.shown.set_person(email, by_account)

    def _apply(
        self,
        kind: str,
        record: str,
        label: str,
        update: Any,
        write: Callable[[], None],
        counts: Counter[str],
        agreed: Callable[[], None],
    ) -> None:
        """Write ``update`` (None: the record already shows it); ``agreed`` records that
        it now shows what the mappings want (not in a dry run, nor when refused)."""
        done = (
            self.spool.db.execute(
                "SELECT 1 FROM written WHERE kind = ? AND id = ?", (kind, record)
            ).fetchone()
            is not None
        )
        if update is None:
            if not done:  # written by this run before an interruption: counted then
                counts[f"{kind} unchanged"] += 1
            if not self.report.dry_run:
                agreed()
            return
        if len(self.report.planned) < self.detail_limit:
            self.report.planned.append(f"{label}: {json.dumps(update, ensure_ascii=False)}")
        if self.report.dry_run:
            counts[f"{kind} to write"] += 1
            return
        try:
            write()
        except NotFound:
            counts[f"{kind} gone"] += 1  # deleted since the page was read
            return
        except Unauthorized:
            raise
        except PermanentError as exc:
            counts[f"{kind} refused"] += 1
            self.refused_in_a_row += 1
            if len(self.report.failures) < self.detail_limit:
                self.report.failures.append(f"{label}: {exc}")
            if self.refused_in_a_row >= MAX_REFUSED_IN_A_ROW:
                raise SyncError(
                    f"the helpdesk refused {self.refused_in_a_row} updates in a row "
                    f"(last: {exc}); are tierdesk's fields set up (tierdesk setup)?"
                ) from None
            return
        self.refused_in_a_row = 0
        agreed()
        with self.spool.transaction():
            self.spool.db.execute("INSERT OR IGNORE INTO written VALUES (?, ?)", (kind, record))
            self.spool.add_counts({f"{kind} written": 1})


def push(
    directory: Directory,
    mappings_dir: Path,
    spool_path: Path,
    identity: dict[str, str],
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    detail_limit: int = DETAIL_LIMIT,
    restart: bool = False,
    hours: Mapping[str, str] | None = None,
    shown: ShownFlags | None = None,
) -> PushReport:
    """``hours``: account id → its hours status, for the pay-as-you-go accounts;
    ``shown``: where to record what the helpdesk now shows (None: nowhere)."""
    report = PushReport(dry_run=dry_run)
    spool = Spool(spool_path, identity, fresh=restart)
    report.resumed = spool.resumed
    finished = False
    try:
        checker = AccountsChecker(mappings_dir, spool.db)
        if not checker.usable:
            report.problems = checker.finish()
            return report
        try:
            load_wants(mappings_dir, directory.vendor, spool, checker)
        except MappingError as exc:
            report.problems = list(exc.problems)
            return report
        pusher = _Pusher(directory, spool, report, detail_limit, hours or {}, shown)
        run_pages(
            directory,
            spool,
            directory.push_phases,
            progress or NoProgress(),
            people=False,
            work=pusher.work,
            store=pusher.store,
        )
        finished = True
        return report
    finally:
        report.counts = spool.counts()
        spool.close(remove=finished or dry_run)
