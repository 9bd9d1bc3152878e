"""`sync push` against a fake helpdesk on `responses`: only what differs is written,
dry runs write nothing, an interrupted push continues without writing twice.

The mappings are the bundled ones: acme (Premier: alice direct, John partner; Priority
SEN-1234: hank), globex (24/7 SaaS), initech (pay-as-you-go), umbrella (JSM only).
The helpdesk shows some of it already and some of it wrong.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses
from requests.auth import HTTPBasicAuth

from connector.errors import RateLimited
from connector.http import HttpClient, Policy
from connector.jsm_directory import JsmDirectory
from connector.zendesk_directory import ZendeskDirectory
from mappings import BUNDLED
from mappings.sync import PushReport, SyncError, push
from tests.connector.directory_support import (
    FakeJsm,
    FakeZendesk,
    Storm,
    assert_directory_request,
    jsm_org,
    zendesk_org,
    zendesk_user,
)

BASE = "https://acme.zendesk.com"
IDENTITY = {"job": "push", "tenant": "acme-zd", "vendor": "zendesk", "base_url": BASE}


def orgs() -> list[dict[str, Any]]:
    return [
        zendesk_org(360001, "Acme", account="acme", tier="premier"),  # agrees
        zendesk_org(360002, "Globex", tier="select"),  # wrong tier, no account
        zendesk_org(360003, "Initech"),  # nothing yet
        zendesk_org(600, "Stark", account="stark", tier="premier"),  # an account to be
        zendesk_org(700, "Prospect"),
    ]


def users() -> list[dict[str, Any]]:
    return [
        zendesk_user(1, "alice@acme.example", org=360001, contact="acme:direct"),  # agrees
        zendesk_user(2, "JohnSmith_PartnerCompanyA@acme.example", org=360001),  # to flag
        zendesk_user(3, "hank@acme.example", org=360001, admin="acme:SEN-1234"),  # agrees
        zendesk_user(4, "bob@acme.example", org=360001, contact="acme:direct"),  # to clear
        zendesk_user(5, "carol@globex.example", org=360002, contact="partner"),  # to clear
        zendesk_user(6, "tony@stark.example", org=600, contact="direct"),  # left alone
        zendesk_user(7, "pat@prospect.example", org=700, contact="direct"),  # left alone
        zendesk_user(8, "zoe@acme.example"),  # no organization, no contact: left alone
    ]


EXPECTED_PUTS = {
    "/api/v2/organizations/360002": {
        "organization": {
            "organization_fields": {"tierdesk_account": "globex", "tierdesk_tier": "saas-24x7"}
        }
    },
    "/api/v2/organizations/360003": {
        "organization": {
            "organization_fields": {"tierdesk_account": "initech", "tierdesk_tier": "payg"}
        }
    },
    "/api/v2/users/2": {"user": {"user_fields": {"tierdesk_named_contact": "acme:partner"}}},
    "/api/v2/users/4": {"user": {"user_fields": {"tierdesk_named_contact": None}}},
    "/api/v2/users/5": {"user": {"user_fields": {"tierdesk_named_contact": None}}},
}


def mappings(tmp_path: Path) -> Path:
    directory = tmp_path / "mappings"
    if not directory.exists():
        shutil.copytree(BUNDLED, directory)
    return directory


def client() -> HttpClient:
    return HttpClient(
        BASE,
        HTTPBasicAuth("ops@acme.example/token", "s3cret"),
        policy=Policy(requests_per_minute=1e6, deadline_s=300, max_attempts=4),
        sleep=lambda s: None,
    )


class Helpdesk:
    """The fake's records, kept across runs (a push changes them)."""

    def __init__(self) -> None:
        self.orgs = orgs()
        self.users = users()
        self.refuse: set[int] = set()

    def push(
        self, tmp_path: Path, *, storm: Storm | None = None, **options: Any
    ) -> tuple[PushReport, FakeZendesk]:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            fake = FakeZendesk(rsps, BASE, self.orgs, self.users, page_size=2)
            fake.refuse = self.refuse
            if storm is not None:
                fake.storms.append(storm)
            try:
                report = push(
                    ZendeskDirectory(client(), page_size=2),
                    mappings(tmp_path),
                    tmp_path / "state" / "acme-zd.push.sqlite3",
                    IDENTITY,
                    **options,
                )
            finally:
                for request in fake.requests:
                    assert_directory_request("zendesk", request)
        return report, fake


def puts(fake: FakeZendesk) -> dict[str, Any]:
    return {urlsplit(r.url or "").path: json.loads(r.body or b"") for r in fake.writes()}


def test_push_writes_only_what_differs(tmp_path: Path) -> None:
    helpdesk = Helpdesk()
    report, fake = helpdesk.push(tmp_path)
    assert puts(fake) == EXPECTED_PUTS
    assert report.counts["organization written"] == 2
    assert report.counts["organization unchanged"] == 1
    assert report.counts["person written"] == 3
    assert report.counts["person unchanged"] == 2
    assert report.counts["organizations not in the mappings"] == 2  # stark (unknown), 700
    assert report.counts["people not in the mappings"] == 3  # tony, pat, zoe
    # What was left alone is as it was.
    assert helpdesk.orgs[3]["organization_fields"] == {
        "tierdesk_account": "stark",
        "tierdesk_tier": "premier",
    }
    assert helpdesk.users[6]["user_fields"] == {"tierdesk_named_contact": "direct"}
    assert not (tmp_path / "state" / "acme-zd.push.sqlite3").exists()


def test_a_second_push_sends_nothing(tmp_path: Path) -> None:
    helpdesk = Helpdesk()
    helpdesk.push(tmp_path)
    report, fake = helpdesk.push(tmp_path)
    assert fake.writes() == []
    assert report.counts["organization unchanged"] == 3
    assert report.counts["person unchanged"] == 5


def test_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    helpdesk = Helpdesk()
    report, fake = helpdesk.push(tmp_path, dry_run=True)
    assert fake.writes() == []
    assert report.counts["organization to write"] == 2
    assert report.counts["person to write"] == 3
    assert len(report.planned) == 5
    assert report.planned[0] == (
        'organization 360002 (globex): {"organization": {"organization_fields": '
        '{"tierdesk_account": "globex", "tierdesk_tier": "saas-24x7"}}}'
    )
    assert helpdesk.orgs == orgs() and helpdesk.users == users()
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())


def test_a_push_stopped_by_a_429_storm_continues_without_writing_twice(tmp_path: Path) -> None:
    helpdesk = Helpdesk()
    with pytest.raises(RateLimited):
        helpdesk.push(tmp_path, storm=Storm("/api/v2/users/", count=50, skip=1))
    assert (tmp_path / "state" / "acme-zd.push.sqlite3").exists()
    report, fake = helpdesk.push(tmp_path)
    assert report.resumed
    # Run 1 wrote both organizations and John; run 2 only what was left, once each.
    assert sorted(fake.written) == ["/api/v2/users/4", "/api/v2/users/5"]
    assert fake.reads("organizations") == []  # the organizations phase was done
    assert report.counts["organization written"] == 2
    assert report.counts["person written"] == 3  # counted once, across both runs
    assert report.counts["person unchanged"] == 2
    _, again = helpdesk.push(tmp_path)
    assert again.writes() == []


def test_a_refused_write_is_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    helpdesk = Helpdesk()
    helpdesk.refuse = {4}
    report, _ = helpdesk.push(tmp_path)
    assert report.counts["person refused"] == 1
    assert report.counts["person written"] == 2
    assert report.failures == [
        "person 4 <bob@acme.example>: PUT /api/v2/users/4: HTTP 422 RecordInvalid"
    ]


def test_a_helpdesk_refusing_everything_stops_the_push(tmp_path: Path) -> None:
    helpdesk = Helpdesk()
    helpdesk.users += [
        zendesk_user(100 + i, f"u{i}@acme.example", org=360001, contact="direct") for i in range(25)
    ]
    helpdesk.refuse = {u["id"] for u in helpdesk.users} | {o["id"] for o in helpdesk.orgs}
    with pytest.raises(SyncError, match="refused 20 updates in a row"):
        helpdesk.push(tmp_path)


def test_mappings_that_do_not_load_are_not_pushed(tmp_path: Path) -> None:
    directory = mappings(tmp_path)
    document = json.loads((directory / "accounts.json").read_text(encoding="utf-8"))
    document["accounts"][0]["subscriptions"][0]["named_contacts"].append("helpdesk@acme.example")
    (directory / "accounts.json").write_text(json.dumps(document), encoding="utf-8")
    report, fake = Helpdesk().push(tmp_path)
    assert [(p.pointer, p.rule) for p in report.problems] == [
        ("/accounts/0/subscriptions/0/named_contacts/1", "shared_mailbox")
    ]
    assert fake.requests == []


def test_a_jsm_push_writes_the_property_where_it_differs(tmp_path: Path) -> None:
    properties: dict[str, Any] = {
        "7": {  # agrees, in another order and case
            "account": "acme",
            "tier": "premier",
            "named_contacts": ["ALICE@acme.example"],
            "partner_contacts": ["JohnSmith_PartnerCompanyA@acme.example"],
            "site_admins": [{"email": "hank@acme.example", "sen": "SEN-1234"}],
        },
        "21": {"account": "umbrella", "tier": "premier", "note": "kept"},  # wrong tier
    }
    organizations = [jsm_org(i, f"Org {i}") for i in ("3", "7", "12", "21")]
    jsm_client = HttpClient(
        "https://acme.atlassian.net",
        HTTPBasicAuth("ops@acme.example", "s3cret"),
        policy=Policy(requests_per_minute=1e6),
        sleep=lambda s: None,
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeJsm(
            rsps, "https://acme.atlassian.net", organizations, properties, {}, page_size=2
        )
        report = push(
            JsmDirectory(jsm_client, page_size=2),
            mappings(tmp_path),
            tmp_path / "state" / "acme-jsm.push.sqlite3",
            {**IDENTITY, "vendor": "jsm"},
        )
        for request in fake.requests:
            assert_directory_request("jsm", request)
            assert "/user" not in (request.url or "")  # a push needs no customers
    written = sorted(urlsplit(r.url or "").path.split("/")[4] for r in fake.writes())
    assert written == ["12", "21"]
    assert properties["21"] == {
        "account": "umbrella",
        "tier": "select",
        "named_contacts": [],
        "partner_contacts": [],
        "site_admins": [],
        "note": "kept",
    }
    assert properties["12"]["tier"] == "saas-24x7"
    assert "3" not in properties
    assert report.counts["organization written"] == 2
    assert report.counts["organization unchanged"] == 1


# -- hours: the pay-as-you-go status on the account's organizations ----------------------


def test_hours_are_pushed_onto_the_accounts_organizations_only_where_they_differ(
    tmp_path: Path,
) -> None:
    helpdesk = Helpdesk()
    report, fake = helpdesk.push(tmp_path, hours={"initech": "low"})
    written = puts(fake)
    assert written["/api/v2/organizations/360003"] == {
        "organization": {
            "organization_fields": {
                "tierdesk_account": "initech",
                "tierdesk_tier": "payg",
                "tierdesk_hours": "low",
            }
        }
    }
    # No other account has hours: their organizations are written as without them.
    assert {k: v for k, v in written.items() if k != "/api/v2/organizations/360003"} == {
        k: v for k, v in EXPECTED_PUTS.items() if k != "/api/v2/organizations/360003"
    }
    assert helpdesk.orgs[2]["organization_fields"]["tierdesk_hours"] == "low"

    _, same = helpdesk.push(tmp_path, hours={"initech": "low"})
    assert same.writes() == []

    report, changed = helpdesk.push(tmp_path, hours={"initech": "exhausted"})
    assert puts(changed) == {
        "/api/v2/organizations/360003": {
            "organization": {"organization_fields": {"tierdesk_hours": "exhausted"}}
        }
    }
    assert report.counts["organization written"] == 1


def test_without_hours_the_status_the_helpdesk_shows_is_left_alone(tmp_path: Path) -> None:
    helpdesk = Helpdesk()
    helpdesk.push(tmp_path, hours={"initech": "ok"})
    _, fake = helpdesk.push(tmp_path)  # no ledger this time
    assert fake.writes() == []
    assert helpdesk.orgs[2]["organization_fields"]["tierdesk_hours"] == "ok"


def test_a_jsm_push_writes_hours_into_the_property_and_keeps_the_rest(tmp_path: Path) -> None:
    properties: dict[str, Any] = {
        "21": {
            "account": "umbrella",
            "tier": "select",
            "named_contacts": [],
            "partner_contacts": [],
            "site_admins": [],
            "note": "kept",
        }
    }
    jsm_client = HttpClient(
        "https://acme.atlassian.net",
        HTTPBasicAuth("ops@acme.example", "s3cret"),
        policy=Policy(requests_per_minute=1e6),
        sleep=lambda s: None,
    )

    def run(hours: dict[str, str] | None) -> FakeJsm:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            fake = FakeJsm(
                rsps, "https://acme.atlassian.net", [jsm_org("21", "Umbrella")], properties, {}
            )
            push(
                JsmDirectory(jsm_client),
                mappings(tmp_path),
                tmp_path / "state" / "acme-jsm.push.sqlite3",
                {**IDENTITY, "vendor": "jsm"},
                hours=hours,
            )
            for request in fake.requests:
                assert_directory_request("jsm", request)
        return fake

    assert run(None).writes() == []  # the property agrees; no hours known: nothing to do
    assert len(run({"umbrella": "exhausted"}).writes()) == 1
    assert properties["21"] == {
        "account": "umbrella",
        "tier": "select",
        "named_contacts": [],
        "partner_contacts": [],
        "site_admins": [],
        "note": "kept",
        "hours": "exhausted",
    }
    assert run({"umbrella": "exhausted"}).writes() == []
    assert run(None).writes() == []  # hours unknown: what the property says stays
    assert properties["21"]["hours"] == "exhausted"
