"""`sync pull` end to end against a fake helpdesk on `responses`: pages, resumption,
refusals, the atomic write, dry runs.

The helpdesk holds the bundled accounts' organizations (records made from the recorded
Zendesk pages), served two to a page so that every pull crosses several pages:

- acme (360001): alice and John flagged as they are in the bundled file, hank site admin
  of SEN-1234, and bob newly flagged as a direct contact;
- globex (360002) and initech (360003), as the file has them;
- stark (600), an organization naming the account "stark" that the file does not have;
- three organizations of no account, and people in them.

umbrella has no Zendesk organization: the pull keeps it and says so.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses
from requests.auth import HTTPBasicAuth

from connector.directory import Page
from connector.errors import RateLimited
from connector.http import HttpClient, Policy
from connector.jsm_directory import JsmDirectory
from connector.zendesk_directory import ZendeskDirectory
from mappings import BUNDLED, check_mappings, load_mappings
from mappings.sync import PullReport, SyncError, pull
from mappings.sync import accounts_file as accounts_file_module
from mappings.sync.spool import MAX_AGE_S, Spool
from mappings.sync.validate import CHUNK, AccountsChecker
from tests.connector.directory_support import (
    FakeJsm,
    FakeZendesk,
    Storm,
    assert_directory_request,
    jsm_customer,
    jsm_org,
    zendesk_org,
    zendesk_user,
)

BASE = "https://acme.zendesk.com"
IDENTITY = {"job": "pull", "tenant": "acme-zd", "vendor": "zendesk", "base_url": BASE}


def orgs() -> list[dict[str, Any]]:
    return [
        zendesk_org(360001, "Acme Corp", domains=("acme.example",)),
        zendesk_org(360002, "Globex"),
        zendesk_org(360003, "Initech"),
        zendesk_org(
            600, "Stark Industries", domains=("stark.example",), account="stark", tier="saas-24x7"
        ),
        *(zendesk_org(700 + i, f"Prospect {i}") for i in range(3)),
    ]


def users(extra: tuple[dict[str, Any], ...] = (), *, bob: bool = True) -> list[dict[str, Any]]:
    return [
        zendesk_user(1, "alice@acme.example", org=360001, contact="direct"),
        zendesk_user(2, "JohnSmith_PartnerCompanyA@acme.example", org=360001, contact="partner"),
        zendesk_user(3, "hank@acme.example", org=360001, admin="SEN-1234"),
        zendesk_user(4, "bob@acme.example", org=360001, contact="direct" if bob else None),
        zendesk_user(5, "carol@globex.example", org=360002),
        zendesk_user(6, "tony@stark.example", org=600),
        zendesk_user(7, "pat@prospect.example", org=700, contact="direct"),  # no account
        zendesk_user(8, "someone@example.com"),
        *extra,
    ]


def mappings(tmp_path: Path, name: str = "mappings") -> Path:
    directory = tmp_path / name
    shutil.copytree(BUNDLED, directory)
    return directory


def client(sleeps: list[float] | None = None) -> HttpClient:
    return HttpClient(
        BASE,
        HTTPBasicAuth("ops@acme.example/token", "s3cret"),
        policy=Policy(requests_per_minute=1e6, deadline_s=300, max_attempts=4),
        sleep=(sleeps if sleeps is not None else []).append,
    )


def run_pull(
    directory: Path,
    fake_setup: Callable[[FakeZendesk], None] | None = None,
    *,
    org_records: list[dict[str, Any]] | None = None,
    user_records: list[dict[str, Any]] | None = None,
    sleeps: list[float] | None = None,
    **options: Any,
) -> tuple[PullReport, FakeZendesk]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeZendesk(
            rsps,
            BASE,
            orgs() if org_records is None else org_records,
            users() if user_records is None else user_records,
            page_size=2,
        )
        if fake_setup is not None:
            fake_setup(fake)
        report = pull(
            ZendeskDirectory(client(sleeps), page_size=2),
            directory,
            directory.parent / "state" / "acme-zd.pull.sqlite3",
            IDENTITY,
            **options,
        )
        for request in fake.requests:
            assert_directory_request("zendesk", request)
    return report, fake


def accounts(directory: Path) -> dict[str, dict[str, Any]]:
    document = json.loads((directory / "accounts.json").read_text(encoding="utf-8"))
    return {a["id"]: a for a in document["accounts"]}


def state_files(directory: Path) -> list[str]:
    state = directory.parent / "state"
    return sorted(p.name for p in state.iterdir()) if state.exists() else []


def directory_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- a pull ---------------------------------------------------------------------------


def test_a_multi_page_pull_merges_the_helpdesk_into_the_accounts(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    before = accounts(directory)
    report, fake = run_pull(directory)

    assert report.written and not report.refused
    assert (report.added, report.changed, report.unchanged) == (1, 1, 2)
    assert report.kept == ["umbrella"]  # no Zendesk organization: kept, and said
    assert report.orgs_without_account == 3
    assert report.flagged_without_account == 1  # pat, in an organization of no account
    assert report.counts["organizations"] == 7 and report.counts["people"] == 8
    # Every page once: 4 of organizations and 4 of users (two a page), in cursor order.
    assert [kind for kind, _ in fake.pages_served] == ["organizations"] * 4 + ["users"] * 4
    assert len(set(fake.pages_served)) == 8

    after = accounts(directory)
    assert after["acme"]["subscriptions"][0]["named_contacts"] == [
        "alice@acme.example",
        "bob@acme.example",
    ]
    assert {k: after[k] for k in ("globex", "initech", "umbrella")} == {
        k: before[k] for k in ("globex", "initech", "umbrella")
    }
    assert after["stark"] == {
        "id": "stark",
        "name": "Stark Industries",
        "domains": ["stark.example"],
        "timezone": "UTC",
        "organizations": {"zendesk": [600]},
        "subscriptions": [{"tier": "saas-24x7"}],
    }
    assert list(after) == ["acme", "globex", "initech", "umbrella", "stark"]  # file order kept
    assert load_mappings(directory).account("stark") is not None
    diffs = {d.account: (d.kind, d.lines) for d in report.diffs}
    assert diffs["acme"] == ("changed", ("subscriptions[0].named_contacts: +bob@acme.example",))
    assert diffs["stark"][0] == "added"
    # A finished pull leaves no checkpoint and no temp file.
    assert state_files(directory) == []
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]


def test_a_second_pull_changes_nothing_and_does_not_rewrite(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    run_pull(directory)
    stamp = (directory / "accounts.json").stat()
    report, _ = run_pull(directory)
    assert (report.added, report.changed, report.unchanged) == (0, 0, 4)
    assert not report.written
    again = (directory / "accounts.json").stat()
    assert (again.st_ino, again.st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)


def test_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    original = (directory / "accounts.json").read_bytes()
    stamp = (directory / "accounts.json").stat().st_mtime_ns
    report, _ = run_pull(directory, dry_run=True)
    assert report.dry_run and not report.written
    assert (report.added, report.changed) == (1, 1)  # the diff is still shown
    assert (directory / "accounts.json").read_bytes() == original
    assert (directory / "accounts.json").stat().st_mtime_ns == stamp
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]


def test_a_declined_confirmation_writes_nothing(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    original = (directory / "accounts.json").read_bytes()
    seen: list[int] = []

    def decline(report: PullReport) -> bool:
        seen.append(report.added + report.changed)
        return False

    report, _ = run_pull(directory, confirm=decline)
    assert seen == [2] and report.declined and not report.written
    assert (directory / "accounts.json").read_bytes() == original
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]


# -- interruptions --------------------------------------------------------------------


def test_a_429_is_waited_out_exactly(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    sleeps: list[float] = []
    report, fake = run_pull(
        directory,
        lambda fake: fake.storms.append(Storm("/api/v2/users", count=2, skip=1)),
        sleeps=sleeps,
    )
    assert report.written
    assert sleeps == [7.0, 7.0]
    assert len(fake.pages_served) == len(set(fake.pages_served)) == 8


def test_a_429_storm_stops_the_pull_and_a_rerun_continues(tmp_path: Path) -> None:
    """Two users pages in, a storm longer than the HTTP policy's patience stops the pull.
    The rerun asks for the third users page and nothing before it; the result is the
    same file as an uninterrupted pull's, byte for byte."""
    directory = mappings(tmp_path)
    original = (directory / "accounts.json").read_bytes()
    with pytest.raises(RateLimited):
        run_pull(
            directory,
            lambda fake: fake.storms.append(Storm("/api/v2/users", count=50, skip=2)),
        )
    assert (directory / "accounts.json").read_bytes() == original
    assert "acme-zd.pull.sqlite3" in state_files(directory)

    report, fake = run_pull(directory)
    assert report.resumed and report.written
    assert fake.pages_served[0][0] == "users"  # no organizations page read again
    assert len(fake.pages_served) == 2  # users pages 3 and 4
    assert report.counts["people"] == 8 and report.counts["organizations"] == 7

    reference = mappings(tmp_path, "reference")
    run_pull(reference)
    assert (directory / "accounts.json").read_bytes() == (reference / "accounts.json").read_bytes()


def test_an_interrupted_pull_neither_repeats_nor_skips_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = mappings(tmp_path)
    real_page = ZendeskDirectory.page
    calls: list[tuple[str, str | None]] = []

    def page(
        self: ZendeskDirectory, phase: str, cursor: str | None, *, people: bool = True
    ) -> Page:
        calls.append((phase, cursor))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_page(self, phase, cursor, people=people)

    monkeypatch.setattr(ZendeskDirectory, "page", page)
    with pytest.raises(KeyboardInterrupt):
        run_pull(directory)
    first_run = calls[:2]
    calls.clear()

    def recorded_page(
        self: ZendeskDirectory, phase: str, cursor: str | None, *, people: bool = True
    ) -> Page:
        calls.append((phase, cursor))
        return real_page(self, phase, cursor, people=people)

    monkeypatch.setattr(ZendeskDirectory, "page", recorded_page)
    report, _ = run_pull(directory)
    assert report.written
    assert calls[0] != first_run[0] and calls[0] not in first_run  # continued, not restarted
    assert len(first_run) + len(calls) == 8
    assert (
        accounts(directory)["acme"]["subscriptions"][0]["named_contacts"][-1] == "bob@acme.example"
    )


def test_a_checkpoint_of_another_tenant_is_not_resumed(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    with pytest.raises(RateLimited):
        run_pull(directory, lambda fake: fake.storms.append(Storm("/api/v2/users", count=50)))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeZendesk(rsps, BASE, orgs(), users(), page_size=2)
        report = pull(
            ZendeskDirectory(client(), page_size=2),
            directory,
            directory.parent / "state" / "acme-zd.pull.sqlite3",
            {**IDENTITY, "base_url": "https://other.zendesk.com"},
        )
    assert not report.resumed
    assert fake.pages_served[0] == ("organizations", None)


# -- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "pointer", "rule", "words"),
    [
        (
            (
                zendesk_user(20, "dave@acme.example", org=360001, contact="direct"),
                zendesk_user(21, "erin@acme.example", org=360001, contact="direct"),
                zendesk_user(22, "fay@acme.example", org=360001, contact="direct"),
            ),
            "/accounts/0/subscriptions/0/named_contacts",
            "too_many_contacts",
            ("account acme", "4 direct and 1 partner", "2 licence(s)", "has 1"),
        ),
        (
            (zendesk_user(20, "eve@gmail.example", org=360001, contact="direct"),),
            "/accounts/0/subscriptions/0/named_contacts/1",
            "foreign_domain",
            ("account acme", "eve@gmail.example"),
        ),
        (
            (zendesk_user(20, "support@acme.example", org=360001, contact="direct"),),
            "/accounts/0/subscriptions/0/named_contacts/1",
            "shared_mailbox",
            ("account acme", "support@acme.example"),
        ),
        (
            (zendesk_user(20, "mallory@acme.example", org=360001, contact="partner"),),
            "/accounts/0/subscriptions/0/partner_contacts/1",
            "partner_format",
            ("account acme", "mallory@acme.example"),
        ),
    ],
    ids=["too-many-contacts", "foreign-domain", "shared-mailbox", "partner-format"],
)
def test_a_contract_rule_break_is_refused_with_account_address_and_rule(
    tmp_path: Path,
    extra: tuple[dict[str, Any], ...],
    pointer: str,
    rule: str,
    words: tuple[str, ...],
) -> None:
    directory = mappings(tmp_path)
    original = (directory / "accounts.json").read_bytes()
    report, _ = run_pull(directory, user_records=users(extra, bob=False))
    assert report.refused and not report.written
    (problem,) = report.problems
    assert (problem.file, problem.pointer, problem.rule) == ("accounts.json", pointer, rule)
    for word in words:
        assert word in problem.message
    assert (directory / "accounts.json").read_bytes() == original
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]
    assert state_files(directory) == []  # the next run reads the (fixed) helpdesk afresh


def test_a_new_account_is_checked_like_any_other(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    bad = [
        *orgs(),
        zendesk_org(800, "No Domain", account="nodomain"),
        zendesk_org(801, "Acme Twin", domains=("acme.example",), account="twin"),
        zendesk_org(802, "Bad Tier", domains=("bad.example",), account="bad", tier="platinum"),
    ]
    report, _ = run_pull(directory, org_records=bad)
    found = {(p.pointer, p.rule) for p in report.problems}
    # New accounts come after the file's four, by id: bad, nodomain, stark, twin.
    assert found == {
        ("/accounts/4/subscriptions/0/tier", "unknown_tier"),
        ("/accounts/5/domains", "minItems"),
        ("/accounts/7/domains/0", "duplicate_domain"),
    }
    twin = next(p for p in report.problems if p.rule == "duplicate_domain")
    assert twin.message == "account twin: domain acme.example also belongs to account acme"


def test_broken_tiers_are_refused_before_any_call(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    (directory / "tiers.json").write_text("{", encoding="utf-8")
    report, fake = run_pull(directory)
    assert [(p.file, p.rule) for p in report.problems] == [("tiers.json", "json")]
    assert fake.requests == []


def test_an_unreadable_accounts_file_is_refused_before_any_call(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    (directory / "accounts.json").write_text('{"accounts": [', encoding="utf-8")
    report, fake = run_pull(directory)
    assert [(p.file, p.rule) for p in report.problems] == [("accounts.json", "json")]
    assert fake.requests == []


# -- the write ------------------------------------------------------------------------


def test_a_failed_rename_leaves_the_old_file(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    original = (directory / "accounts.json").read_bytes()

    def replace(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output"):
        run_pull(directory, replace=replace)
    assert (directory / "accounts.json").read_bytes() == original
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]
    assert check_mappings(directory) == []
    # Everything was read: the rerun only merges and writes again.
    report, fake = run_pull(directory)
    assert report.written and report.resumed
    assert fake.pages_served == []


def test_a_crash_half_way_through_the_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = mappings(tmp_path)
    original = (directory / "accounts.json").read_bytes()
    real = accounts_file_module.AccountsWriter.account
    written: list[str] = []

    def account(self: Any, value: dict[str, Any]) -> None:
        if len(written) == 2:
            raise MemoryError("killed half way")
        written.append(value["id"])
        real(self, value)

    monkeypatch.setattr(accounts_file_module.AccountsWriter, "account", account)
    with pytest.raises(MemoryError):
        run_pull(directory)
    assert written == ["acme", "globex"]
    assert (directory / "accounts.json").read_bytes() == original
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]


# -- the checks are the loader's --------------------------------------------------------


def _generated(directory: Path, *, schema_error: bool) -> None:
    document = json.loads((directory / "accounts.json").read_text(encoding="utf-8"))
    generated: list[dict[str, Any]] = [
        {
            "id": f"c{i}",
            "name": f"Customer {i}",
            "domains": [f"c{i}.example"],
            "timezone": "Europe/Berlin",
            "organizations": {"zendesk": [10_000 + i]},
            "subscriptions": [{"tier": "premier", "named_contacts": [f"a@c{i}.example"]}],
        }
        for i in range(2 * CHUNK + 20)
    ]
    generated[CHUNK - 1]["domains"].append("acme.example")  # duplicate across chunks
    contacts = generated[CHUNK + 3]["subscriptions"][0]["named_contacts"]
    contacts += [f"{n}@c{CHUNK + 3}.example" for n in "bcd"]
    generated[CHUNK + 5]["timezone"] = "Mars/Olympus"
    generated[2 * CHUNK + 1]["organizations"] = {"zendesk": [10_000]}  # c0's, far away
    generated[2 * CHUNK + 2]["id"] = "c1"  # an id used twice
    if schema_error:
        generated[CHUNK + 7]["domains"] = []
    document["accounts"] += generated
    (directory / "accounts.json").write_text(json.dumps(document), encoding="utf-8")


def _streamed(directory: Path, seen: Path) -> list[str]:
    checker = AccountsChecker(directory, sqlite3.connect(seen))
    _, items = accounts_file_module.read_accounts(directory / "accounts.json")
    for item in items:
        checker.add(item)
    return sorted(map(str, checker.finish()))


def test_chunked_checks_find_what_the_loader_finds(tmp_path: Path) -> None:
    """Over several chunks, with defects inside one chunk and across two: the streaming
    checker's problems are exactly `check_mappings`'s, word for word."""
    directory = mappings(tmp_path)
    _generated(directory, schema_error=False)
    loaded = sorted(map(str, check_mappings(directory)))
    assert len(loaded) == 5
    assert _streamed(directory, tmp_path / "seen.sqlite3") == loaded


def test_chunked_checks_go_on_past_a_schema_error(tmp_path: Path) -> None:
    """The loader stops at a schema error in accounts.json; the streaming checker also
    checks the accounts that pass the schema, so it reports the same and more."""
    directory = mappings(tmp_path)
    _generated(directory, schema_error=True)
    loaded = sorted(map(str, check_mappings(directory)))
    streamed = _streamed(directory, tmp_path / "seen.sqlite3")
    assert loaded == [
        f"accounts.json#/accounts/{4 + CHUNK + 7}/domains: [minItems] [] should be non-empty"
    ]
    assert set(loaded) < set(streamed) and len(streamed) == 6


# -- JSM ------------------------------------------------------------------------------


def test_a_jsm_pull_reads_the_property_and_customers(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    properties = {
        "7": {
            "account": "acme",
            "tier": "premier",
            "named_contacts": ["alice@acme.example", "bob@acme.example"],
            "partner_contacts": ["JohnSmith_PartnerCompanyA@acme.example"],
            "site_admins": [{"email": "hank@acme.example", "sen": "SEN-1234"}],
        },
        "12": {"account": "globex", "tier": "saas-24x7"},
    }
    customers = {
        "7": [jsm_customer(f"a{i}", f"user{i}@acme.example") for i in range(4)]
        + [jsm_customer("al", "alice@acme.example")],
        "12": [jsm_customer("g1", "carol@globex.example")],
    }
    organizations = [jsm_org(str(i), f"Org {i}") for i in (3, 7, 12, 21, 40)]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeJsm(
            rsps, "https://acme.atlassian.net", organizations, properties, customers, page_size=2
        )
        jsm_client = HttpClient(
            "https://acme.atlassian.net",
            HTTPBasicAuth("ops@acme.example", "s3cret"),
            policy=Policy(requests_per_minute=1e6),
            sleep=lambda s: None,
        )
        report = pull(
            JsmDirectory(jsm_client, page_size=2),
            directory,
            tmp_path / "state" / "acme-jsm.pull.sqlite3",
            {**IDENTITY, "vendor": "jsm"},
        )
        for request in fake.requests:
            assert_directory_request("jsm", request)
    assert report.written, report.problems
    after = accounts(directory)
    assert after["acme"]["subscriptions"][0]["named_contacts"] == [
        "alice@acme.example",
        "bob@acme.example",
    ]
    assert after["umbrella"]["organizations"] == {"jsm": ["21"]}  # has no property: its own
    assert (report.added, report.changed, report.unchanged) == (0, 1, 2)
    assert report.kept == ["initech"]


def test_two_runs_of_the_same_job_do_not_share_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "state" / "acme-zd.pull.sqlite3"
    first = Spool(path, IDENTITY)
    try:
        with pytest.raises(SyncError, match="another sync is using"):
            Spool(path, IDENTITY)
    finally:
        first.close()
    Spool(path, IDENTITY).close(remove=True)  # free again once the first is done
    assert not path.exists()


def test_a_stale_or_discarded_checkpoint_is_started_afresh(tmp_path: Path) -> None:
    path = tmp_path / "state" / "acme-zd.pull.sqlite3"
    spool = Spool(path, IDENTITY, now=1000.0)
    with spool.transaction():
        spool.advance("organizations", "cursor-2")
    spool.close()
    kept = Spool(path, IDENTITY, now=1000.0 + MAX_AGE_S)
    assert kept.resumed and kept.position("organizations") == (False, "cursor-2")
    kept.close()
    stale = Spool(path, IDENTITY, now=1001.0 + MAX_AGE_S)
    assert not stale.resumed and stale.position("organizations") == (False, None)
    with stale.transaction():
        stale.advance("organizations", "cursor-3")
    stale.close()
    discarded = Spool(path, IDENTITY, fresh=True)
    assert not discarded.resumed and discarded.position("organizations") == (False, None)
    discarded.close(remove=True)
