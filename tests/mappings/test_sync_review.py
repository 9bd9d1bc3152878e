"""Review of `tierdesk sync pull` (issue 5) against what an ops engineer meets: odd
pagination, a customer in two JSM organizations, two tenants sharing one mappings
directory, a 429 with an HTTP-date Retry-After, a tier the mappings do not know.

The tests that were ``xfail(strict=True)`` (the bugs found) now pass; what else each
fix holds is in test_sync_review_fixes.py.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from requests import PreparedRequest
from requests.auth import HTTPBasicAuth

from connector.errors import ConnectorError
from connector.http import HttpClient, Policy
from connector.jsm_directory import JsmDirectory
from connector.zendesk_directory import ZendeskDirectory
from mappings.sync import PullReport, SyncError, pull
from tests.connector.directory_support import (
    FakeJsm,
    Storm,
    jsm_customer,
    jsm_org,
    zendesk_org,
)
from tests.mappings.test_sync_pull import (
    BASE,
    IDENTITY,
    accounts,
    directory_files,
    mappings,
    orgs,
    run_pull,
)

# The module, not the function `mappings.sync` exports under the same name.
pull_module = importlib.import_module("mappings.sync.pull")

JSM_BASE = "https://acme.atlassian.net"
JSM_API = "/rest/servicedeskapi"
Reply = tuple[int, dict[str, str], str]


def jsm_client() -> HttpClient:
    return HttpClient(
        JSM_BASE,
        HTTPBasicAuth("ops@acme.example", "s3cret"),
        policy=Policy(requests_per_minute=1e6, deadline_s=300, max_attempts=4),
        sleep=lambda s: None,
    )


def zendesk_client() -> HttpClient:
    return HttpClient(
        BASE,
        HTTPBasicAuth("ops@acme.example/token", "s3cret"),
        policy=Policy(requests_per_minute=1e6, deadline_s=300, max_attempts=4),
        sleep=lambda s: None,
    )


def jsm_pull(
    directory: Path,
    properties: dict[str, Any],
    customers: dict[str, list[dict[str, Any]]],
    org_ids: tuple[str, ...],
    **options: Any,
) -> PullReport:
    """A JSM tenant's pull (its own checkpoint) into ``directory``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeJsm(
            rsps,
            JSM_BASE,
            [jsm_org(i, f"Org {i}") for i in org_ids],
            properties,
            customers,
            page_size=2,
        )
        return pull(
            JsmDirectory(jsm_client(), page_size=2),
            directory,
            directory.parent / "state" / "acme-jsm.pull.sqlite3",
            {**IDENTITY, "tenant": "acme-jsm", "vendor": "jsm", "base_url": JSM_BASE},
            **options,
        )


# -- JSM: one customer, two organizations ------------------------------------------------


def test_a_jsm_customer_in_two_organizations_stays_a_named_contact(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    properties = {
        # acme's organization lists alice as its (only) named contact, as the file does.
        "7": {"account": "acme", "tier": "premier", "named_contacts": ["alice@acme.example"]},
        "12": {"account": "globex", "tier": "saas-24x7"},
    }
    # alice is also a customer of globex's organization (a consultant, a shared
    # helpdesk): JSM lists her, with the same accountId, under both.
    customers = {
        "7": [jsm_customer("al", "alice@acme.example")],
        "12": [
            jsm_customer("al", "alice@acme.example"),
            jsm_customer("g1", "carol@globex.example"),
        ],
    }
    report = jsm_pull(directory, properties, customers, ("7", "12", "21"))
    assert not report.refused, report.problems
    removed = [line for d in report.diffs for line in d.lines if "-alice@acme.example" in line]
    assert removed == []
    assert "alice@acme.example" in accounts(directory)["acme"]["subscriptions"][0]["named_contacts"]


# -- pagination the helpdesk gets wrong --------------------------------------------------


def _jsm_orgs_without_is_last_page(total: int) -> Callable[[PreparedRequest], Reply]:
    def reply(request: PreparedRequest) -> Reply:
        query = dict(parse_qsl(urlsplit(request.url or "").query))
        start, limit = int(query.get("start", "0")), int(query.get("limit", "50"))
        values = [jsm_org(str(i), f"Org {i}") for i in range(start, min(start + limit, total))]
        # The spec does not require isLastPage (PagedDTOOrganizationDTO has no
        # "required"); a proxy or an older server may leave it out.
        body = {"start": start, "limit": limit, "size": len(values), "values": values}
        return 200, {}, json.dumps(body)

    return reply


def test_jsm_pages_without_is_last_page_are_read_to_the_end() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(
            responses.GET,
            re.compile(re.escape(JSM_BASE + JSM_API) + r"/organization(\?.*)?$"),
            callback=_jsm_orgs_without_is_last_page(5),
        )
        rsps.add(
            responses.GET,
            re.compile(re.escape(JSM_BASE + JSM_API) + r"/organization/\d+/property/tierdesk$"),
            status=404,
            json={"errorMessages": ["The property 'tierdesk' does not exist."], "errors": {}},
        )
        directory = JsmDirectory(jsm_client(), page_size=2)
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(10):  # a bound, not an expectation: 3 pages hold 5 organizations
            page = directory.page("organizations", cursor)
            seen += [o.id for o in page.orgs]
            cursor = page.after
            if cursor is None:
                break
    assert seen == ["0", "1", "2", "3", "4"]


def test_a_zendesk_cursor_that_does_not_move_stops_the_pull(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    original = (directory / "accounts.json").read_bytes()
    calls: list[str | None] = []

    def organizations(request: PreparedRequest) -> Reply:
        after = dict(parse_qsl(urlsplit(request.url or "").query)).get("page[after]")
        calls.append(after)
        if len(calls) > 10:  # the test's own brake, so that the bug fails rather than hangs
            return 400, {}, json.dumps({"error": "InvalidPaginationParameter"})
        link = f"{BASE}/api/v2/organizations?page%5Bafter%5D=SAME&page%5Bsize%5D=100"
        body = {
            "organizations": [zendesk_org(360001, "Acme Corp", domains=("acme.example",))],
            "meta": {"has_more": True, "after_cursor": "SAME", "before_cursor": "SAME"},
            "links": {"next": link, "prev": link},
        }
        return 200, {}, json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(
            responses.GET,
            re.compile(re.escape(BASE) + r"/api/v2/organizations(\?.*)?$"),
            callback=organizations,
        )
        rsps.add(
            responses.GET,
            re.compile(re.escape(BASE) + r"/api/v2/\w+/count$"),
            json={"count": {"value": 1}},
        )
        with pytest.raises((ConnectorError, SyncError)) as stopped:
            pull(
                ZendeskDirectory(zendesk_client()),
                directory,
                tmp_path / "state" / "acme-zd.pull.sqlite3",
                IDENTITY,
            )
    # Stopped by tierdesk on the second page naming the cursor it already followed,
    # not by the helpdesk giving up after ten identical pages.
    assert len(calls) <= 3, f"{len(calls)} requests for the same page"
    assert "cursor" in str(stopped.value)
    assert (directory / "accounts.json").read_bytes() == original


def test_a_user_served_twice_across_pages_is_counted_once_in_the_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cursor pagination that returns an item twice (the page boundary moved under a
    concurrent change): the spool keys records by id, so nothing is duplicated."""
    directory = mappings(tmp_path)
    real_page = ZendeskDirectory.page

    def page(self: ZendeskDirectory, phase: str, cursor: str | None, *, people: bool = True) -> Any:
        got = real_page(self, phase, cursor, people=people)
        if phase == "users" and cursor is not None:
            bob = next(p for p in real_page(self, "users", None).people if p.id == "1")
            return type(got)(got.orgs, (bob, *got.people), got.after, got.calls)
        return got

    monkeypatch.setattr(ZendeskDirectory, "page", page)
    report, _ = run_pull(directory)
    assert report.written, report.problems
    contacts = accounts(directory)["acme"]["subscriptions"][0]["named_contacts"]
    assert contacts == ["alice@acme.example", "bob@acme.example"]


# -- 429 with an HTTP date -----------------------------------------------------------------


def test_a_429_with_an_http_date_retry_after_waits_until_that_date(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    sleeps: list[float] = []
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    report, fake = run_pull(
        directory,
        lambda fake: fake.storms.append(Storm("/api/v2/users", count=1, skip=1, retry_after=when)),
        sleeps=sleeps,
    )
    assert report.written
    (waited,) = sleeps
    # The date has one-second resolution and some wall time passes before it is read.
    assert 30 < waited <= 40
    assert len(fake.pages_served) == len(set(fake.pages_served)) == 8


# -- a tier the mappings do not know ----------------------------------------------------


def test_an_organization_showing_an_unknown_tier_is_refused_naming_account_and_tier(
    tmp_path: Path,
) -> None:
    directory = mappings(tmp_path)
    original = (directory / "accounts.json").read_bytes()
    records = orgs()
    records[1] = zendesk_org(360002, "Globex", tier="platinum")
    report, _ = run_pull(directory, org_records=records)
    assert report.refused and not report.written
    problem = next(p for p in report.problems if p.rule == "unknown_tier")
    assert "globex" in problem.message and "platinum" in problem.message
    assert (directory / "accounts.json").read_bytes() == original


def test_a_refused_new_account_is_named(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    records = [*orgs(), zendesk_org(800, "No Domain", account="nodomain")]
    report, _ = run_pull(directory, org_records=records)
    assert report.refused
    (problem,) = [p for p in report.problems if p.rule == "minItems"]
    assert "nodomain" in str(problem)


# -- two tenants, one mappings directory -------------------------------------------------

ALICE_AND_DAVE = {
    "7": {
        "account": "acme",
        "tier": "premier",
        "named_contacts": ["alice@acme.example", "dave@acme.example"],
    }
}
ACME_CUSTOMERS = {
    "7": [jsm_customer("al", "alice@acme.example"), jsm_customer("dv", "dave@acme.example")]
}


def test_a_second_tenants_pull_does_not_break_a_pull_in_flight(tmp_path: Path) -> None:
    """acme has a Zendesk and a JSM tenant (the bundled file lists both): ops run both
    pulls from cron; the JSM one writes while the Zendesk one waits to confirm."""
    directory = mappings(tmp_path)

    def confirm(report: PullReport) -> bool:
        jsm = jsm_pull(directory, ALICE_AND_DAVE, ACME_CUSTOMERS, ("7",))
        assert jsm.written
        return True

    run_pull(directory, confirm=confirm)  # must not raise
    assert "dave@acme.example" in accounts(directory)["acme"]["subscriptions"][0]["named_contacts"]


def test_a_pull_does_not_overwrite_changes_written_since_it_read_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = mappings(tmp_path)
    # Only the lost update is shown here (the temp-file clash is the test above).
    monkeypatch.setattr(pull_module, "remove_stale_temps", lambda d: 0)

    def confirm(report: PullReport) -> bool:
        assert jsm_pull(directory, ALICE_AND_DAVE, ACME_CUSTOMERS, ("7",)).written
        return True

    report, _ = run_pull(directory, confirm=confirm)
    contacts = accounts(directory)["acme"]["subscriptions"][0]["named_contacts"]
    # Either merged, or refused with the file left as the other pull wrote it.
    assert "dave@acme.example" in contacts, (report.written, contacts)
    assert directory_files(directory) == ["accounts.json", "calendars.json", "tiers.json"]
