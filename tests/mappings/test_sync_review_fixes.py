"""Around the fixes of the sync review (test_sync_review.py): what each fix must also
hold beyond the reviewer's case, and the reviewer's gap (a re-read person's
organization links)."""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from typing import Any

import pytest
import responses

from connector.directory import DirectoryOrg, DirectoryPerson, Page
from connector.errors import ConnectorError
from connector.jsm_directory import JsmDirectory
from connector.zendesk_directory import ZendeskDirectory, person_from
from mappings.problems import MappingError
from mappings.sync import PullReport, SyncError
from mappings.sync.accounts_file import (
    LOCK,
    AtomicFile,
    Fingerprint,
    accounts_lock,
    remove_stale_temps,
)
from mappings.sync.pages import NoProgress, run_pages
from mappings.sync.spool import Spool
from tests.connector.directory_support import (
    FakeJsm,
    jsm_customer,
    jsm_org,
    zendesk_org,
    zendesk_user,
)
from tests.mappings.test_sync_pull import (
    IDENTITY,
    accounts,
    directory_files,
    mappings,
    orgs,
    run_pull,
    state_files,
    users,
)
from tests.mappings.test_sync_review import (
    ACME_CUSTOMERS,
    ALICE_AND_DAVE,
    JSM_API,
    JSM_BASE,
    jsm_client,
    jsm_pull,
)

OLD = '{"schema_version": 1, "accounts": []}\n'


# -- a JSM customer of two organizations ---------------------------------------------


def test_a_jsm_customer_carries_each_organizations_own_flags(tmp_path: Path) -> None:
    """One person per organization: alice is acme's named contact through org 7 and
    nobody's through org 12, so globex's view of her has no flag to take."""
    directory = mappings(tmp_path)
    properties = {
        "7": {"account": "acme", "tier": "premier", "named_contacts": ["alice@acme.example"]},
        "12": {"account": "globex", "tier": "saas-24x7"},
    }
    customers = {
        "7": [jsm_customer("al", "alice@acme.example")],
        "12": [jsm_customer("al", "alice@acme.example")],
    }
    spool = Spool(tmp_path / "state" / "s.sqlite3", IDENTITY)
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            FakeJsm(rsps, JSM_BASE, [jsm_org(i, i) for i in ("7", "12")], properties, customers)
            jsm = JsmDirectory(jsm_client(), page_size=2)
            run_pages(jsm, spool, jsm.phases, NoProgress(), people=True, store=spool.put)
        rows = spool.db.execute(
            """SELECT po.org, f.contact FROM people p JOIN person_orgs po ON po.person = p.id
               LEFT JOIN flags f ON f.person = p.id
               WHERE p.email_key = 'alice@acme.example' ORDER BY po.org"""
        ).fetchall()
    finally:
        spool.close(remove=True)
    assert rows == [("12", None), ("7", "direct")]
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]


# -- JSM pages without isLastPage -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "last"),
    [
        # Links without next: the last page, however full.
        ({"start": 0, "limit": 2, "_links": {"base": "b", "self": "s"}}, True),
        ({"start": 0, "limit": 2, "_links": {"base": "b", "next": "n"}}, False),
        # No links: full → read on; fewer than the server's limit → the last.
        ({"start": 0, "limit": 2}, False),
        ({"start": 0, "limit": 3}, True),
        ({"start": 0, "limit": 2, "isLastPage": True}, True),
    ],
)
def test_a_jsm_page_without_is_last_page_ends_by_its_links_or_size(
    body: dict[str, Any], last: bool
) -> None:
    values = [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            re.compile(re.escape(JSM_BASE + JSM_API) + r"/organization(\?.*)?$"),
            json={**body, "values": values},
        )
        got, after = JsmDirectory(jsm_client(), page_size=2)._paged(f"{JSM_API}/organization", 0)
    assert len(got) == 2
    assert (after is None) is last


def test_an_empty_jsm_page_is_the_last_whatever_it_says() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            re.compile(re.escape(JSM_BASE + JSM_API) + r"/organization(\?.*)?$"),
            json={"start": 4, "limit": 2, "isLastPage": False, "values": []},
        )
        assert JsmDirectory(jsm_client(), page_size=2)._paged(f"{JSM_API}/organization", 4) == (
            [],
            None,
        )


def test_a_jsm_server_ignoring_start_is_stopped() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            re.compile(re.escape(JSM_BASE + JSM_API) + r"/organization(\?.*)?$"),
            json={"start": 0, "limit": 2, "values": [{"id": "1"}, {"id": "2"}]},
        )
        with pytest.raises(ConnectorError, match="repeated the page"):
            JsmDirectory(jsm_client(), page_size=2)._paged(f"{JSM_API}/organization", 2)


# -- cursors that go round --------------------------------------------------------------


class _Circle:
    """A directory whose cursors go a → b → c → a."""

    vendor = "zendesk"
    phases: tuple[str, ...] = ("organizations",)
    push_phases: tuple[str, ...] = ("organizations",)
    flags_on_orgs = False

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def total(self, phase: str) -> int | None:
        return None

    def page(self, phase: str, cursor: str | None, *, people: bool = True) -> Page:
        self.asked.append(cursor)
        after = {None: "a", "a": "b", "b": "c", "c": "a"}[cursor]
        return Page(orgs=(DirectoryOrg(str(len(self.asked)), "x"),), after=after, calls=1)

    def org_update(self, org: DirectoryOrg, want: Any) -> Any:
        return None

    def person_update(self, person: DirectoryPerson, want: Any) -> Any:
        return None

    def write_org(self, org: DirectoryOrg, update: Any) -> None:
        raise AssertionError("not written")

    def write_person(self, person: DirectoryPerson, update: Any) -> None:
        raise AssertionError("not written")


def test_a_cycle_of_cursors_stops_the_phase(tmp_path: Path) -> None:
    circle = _Circle()
    spool = Spool(tmp_path / "s.sqlite3", IDENTITY)
    try:
        with pytest.raises(SyncError, match=r"repeated cursor 'a'"):
            run_pages(circle, spool, circle.phases, NoProgress(), people=True, store=spool.put)
        # Three pages done; the one that pointed back is not acted on nor stored.
        assert circle.asked == [None, "a", "b", "c"]
        assert spool.position("organizations") == (False, "c")
    finally:
        spool.close()


# -- two pulls, one directory -------------------------------------------------------------


def test_a_locked_temp_is_in_use_and_stays(tmp_path: Path) -> None:
    (tmp_path / "accounts.json").write_text(OLD, encoding="utf-8")
    with AtomicFile(tmp_path / "accounts.json") as out:
        (tmp_path / ".accounts.json.dead.tierdesk-tmp").write_text("half", encoding="utf-8")
        assert remove_stale_temps(tmp_path) == 1  # the dead one only
        assert out.temp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accounts.json"]


def test_the_lock_is_exclusive_and_leaves_no_file(tmp_path: Path) -> None:
    with accounts_lock(tmp_path):
        fd = os.open(tmp_path / LOCK, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    assert list(tmp_path.iterdir()) == []
    with accounts_lock(tmp_path):  # taken again once released
        pass


@pytest.mark.parametrize("change", ["rename", "in place", "removed"])
def test_a_commit_over_a_changed_file_is_refused(tmp_path: Path, change: str) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(OLD, encoding="utf-8")
    read = Fingerprint.of(path)
    other = '{"schema_version": 1, "accounts": [{"id": "x"}]}\n'
    with AtomicFile(path) as out:
        out.write('{"accounts": []}')
        if change == "rename":
            (tmp_path / "other").write_text(other, encoding="utf-8")
            (tmp_path / "other").replace(path)
        elif change == "in place":
            path.write_text(other, encoding="utf-8")
        else:
            path.unlink()
        with pytest.raises(MappingError) as refused:
            out.commit(read)
    assert refused.value.problems[0].rule == "changed_since_read"
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        [] if change == "removed" else [path.name]
    )
    if change != "removed":
        assert path.read_text(encoding="utf-8") == other


def test_a_commit_over_the_file_read_goes_through(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(OLD, encoding="utf-8")
    with AtomicFile(path) as out:
        out.write('{"accounts": []}')
        out.commit(Fingerprint.of(path))
    assert path.read_text(encoding="utf-8") == '{"accounts": []}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accounts.json"]


def test_a_pull_refused_by_a_later_write_keeps_its_pages_and_a_rerun_merges(
    tmp_path: Path,
) -> None:
    directory = mappings(tmp_path)

    def confirm(report: PullReport) -> bool:
        assert jsm_pull(directory, ALICE_AND_DAVE, ACME_CUSTOMERS, ("7",)).written
        return True

    # bob is no contact here: alice and dave (from the JSM pull) fit acme's one licence.
    first, _ = run_pull(directory, confirm=confirm, user_records=users(bob=False))
    assert first.conflict and first.refused and not first.written
    (problem,) = first.problems
    assert problem.rule == "changed_since_read" and "run the pull again" in problem.message
    assert "acme-zd.pull.sqlite3" in state_files(directory)  # kept: no need to read again

    second, fake = run_pull(directory, user_records=users(bob=False))
    assert second.written and second.resumed, second.problems
    assert fake.pages_served == []  # merged from the pages the first run read
    contacts = accounts(directory)["acme"]["subscriptions"][0]["named_contacts"]
    assert contacts == ["alice@acme.example", "dave@acme.example"]
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]


# -- a problem in a new account -------------------------------------------------------------


def test_a_problem_in_a_new_account_names_it_new_and_its_organization(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    records = [*orgs(), zendesk_org(800, "No Domain", account="nodomain")]
    report, _ = run_pull(directory, org_records=records)
    (problem,) = [p for p in report.problems if p.rule == "minItems"]
    assert problem.message.startswith("account nodomain (new, from helpdesk organization 800): "), (
        problem.message
    )
    # A problem of an account already in the file keeps its message as the loader says it.
    records = [*orgs()]
    records[1] = zendesk_org(360002, "Globex", tier="platinum")
    report, _ = run_pull(directory, org_records=records)
    (problem,) = [p for p in report.problems if p.rule == "unknown_tier"]
    assert "(new" not in problem.message


# -- a person read again -------------------------------------------------------------------


def test_a_person_read_again_keeps_only_the_organizations_read_last(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", IDENTITY)
    try:
        with spool.transaction():
            spool.put(Page(people=(DirectoryPerson("1", "a@x.example", ("10", "11")),)))
        with spool.transaction():
            spool.put(Page(people=(DirectoryPerson("1", "a@x.example", ("12",)),)))
        links = spool.db.execute("SELECT org FROM person_orgs WHERE person = '1'").fetchall()
    finally:
        spool.close(remove=True)
    assert links == [("12",)]


def test_a_user_moved_between_pages_is_no_contact_of_the_old_organization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cursor moved under a concurrent change: bob, served on an early users page
    in acme's organization, is served again on the last one, moved to globex's. What
    the helpdesk says last holds: acme's organization no longer has him to add."""
    directory = mappings(tmp_path)
    real_page = ZendeskDirectory.page
    moved = person_from(zendesk_user(4, "bob@acme.example", org=360002, contact="direct"))

    def page(self: ZendeskDirectory, phase: str, cursor: str | None, *, people: bool = True) -> Any:
        got = real_page(self, phase, cursor, people=people)
        if phase == "users" and got.after is None:
            return type(got)(got.orgs, (*got.people, moved), got.after, got.calls)
        return got

    monkeypatch.setattr(ZendeskDirectory, "page", page)
    report, _ = run_pull(directory)
    assert report.written, report.problems
    assert accounts(directory)["acme"]["subscriptions"][0]["named_contacts"] == [
        "alice@acme.example"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only directory")
def test_a_dry_run_reads_a_read_only_mappings_directory(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    directory.chmod(0o555)
    try:
        report, _ = run_pull(directory, dry_run=True)
    finally:
        directory.chmod(0o755)
    assert report.dry_run and report.differs and not report.refused, report.problems
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]


def test_a_read_goes_on_unlocked_where_no_lock_file_can_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def read_only(path: Any, flags: int, mode: int = 0o777) -> int:
        if str(path).endswith(LOCK):
            raise OSError(30, "Read-only file system", str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", read_only)
    with accounts_lock(tmp_path, writing=False):
        pass
    with pytest.raises(OSError, match="Read-only"), accounts_lock(tmp_path):
        pass
