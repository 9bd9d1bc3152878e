"""`ZendeskDirectory`: cursor pages of organizations and users, and per-record updates.

The Support API is stood in for by `responses`: the recorded cursor pages from
../shared/vendor are served verbatim where a test reads them, and every request is
checked against the published spec (`directory_support.assert_directory_request`,
with the cursor-pagination and organization-body gaps of the spec accounted for).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from requests.auth import HTTPBasicAuth
from responses import matchers

from connector.directory import DirectoryOrg, DirectoryPerson, OrgWant, PersonWant
from connector.errors import ConnectorError, RateLimited
from connector.http import HttpClient, Policy
from connector.zendesk_directory import (
    ZendeskDirectory,
    next_cursor,
    org_from,
    org_update,
    parse_admin,
    parse_contact,
    person_from,
    person_update,
)
from tests.connector.directory_support import (
    FakeZendesk,
    Storm,
    assert_directory_request,
    recorded,
    zendesk_org,
    zendesk_user,
)

BASE = "https://acme.zendesk.com"
ORGS_1 = recorded("zenpy-organizations-list-cursor-page1.json")
ORGS_2 = recorded("zenpy-organizations-list-cursor-page2.json")
USERS_1 = recorded("zenpy-users-list-cursor-page1.json")
USERS_2 = recorded("zenpy-users-list-cursor-page2.json")


def client(sleeps: list[float] | None = None) -> HttpClient:
    return HttpClient(
        BASE,
        HTTPBasicAuth("ops@acme.example/token", "s3cret"),
        policy=Policy(requests_per_minute=1e6, deadline_s=300, max_attempts=4),
        sleep=(sleeps if sleeps is not None else []).append,
    )


def after_of(page: dict[str, Any]) -> str:
    return str(dict(parse_qsl(urlsplit(page["links"]["next"]).query))["page[after]"])


def last_page(page: dict[str, Any], kind: str) -> dict[str, Any]:
    """The recorded page as the last one: has_more false, links.next still there (as on
    the recorded last ticket_fields page), no records."""
    return {**page, kind: [], "meta": {**page["meta"], "has_more": False}}


@pytest.mark.parametrize(
    ("kind", "first", "second"),
    [("organizations", ORGS_1, ORGS_2), ("users", USERS_1, USERS_2)],
)
def test_follows_the_recorded_cursor_pages_until_has_more_is_false(
    kind: str, first: dict[str, Any], second: dict[str, Any]
) -> None:
    url = f"{BASE}/api/v2/{kind}"
    with responses.RequestsMock() as rsps:
        rsps.get(url, json=first, match=[matchers.query_param_matcher({"page[size]": "100"})])
        rsps.get(
            url,
            json=second,
            match=[
                matchers.query_param_matcher({"page[size]": "100", "page[after]": after_of(first)})
            ],
        )
        rsps.get(
            url,
            json=last_page(second, kind),
            match=[
                matchers.query_param_matcher({"page[size]": "100", "page[after]": after_of(second)})
            ],
        )
        directory = ZendeskDirectory(client())
        ids, cursor, pages = [], None, 0
        while True:
            page = directory.page(kind, cursor)
            pages += 1
            ids += [r.id for r in (page.orgs if kind == "organizations" else page.people)]
            if page.after is None:
                break
            cursor = page.after
        assert pages == 3
        assert ids == [str(first[kind][0]["id"]), str(second[kind][0]["id"])]
        for call in rsps.calls:
            # Asked of the tenant's host, though the recorded links name another one.
            assert urlsplit(call.request.url).netloc == "acme.zendesk.com"
            assert_directory_request("zendesk", call.request)


def test_the_recorded_records_parse() -> None:
    org = org_from(ORGS_1["organizations"][0])
    assert org == DirectoryOrg(
        id="6130869157658",
        name="Z3n Tests (09cace/1694303517)",
        domains=(),
        account=None,
        tier=None,
        managed={"tierdesk_account": None, "tierdesk_tier": None},
    )
    admin = person_from(USERS_2["users"][0])
    assert (admin.id, admin.email, admin.org_ids, admin.contacts, admin.admin_of) == (
        "6130871991962",
        "jteitelbaum@zendesk.com",
        (),
        (),
        (),
    )


def test_tierdesk_fields_are_read() -> None:
    org = org_from(
        zendesk_org(7, "Acme", domains=("acme.example",), account="acme", tier="premier")
    )
    assert (org.id, org.domains, org.account, org.tier) == (
        "7",
        ("acme.example",),
        "acme",
        "premier",
    )
    person = person_from(
        zendesk_user(
            9,
            "Alice@Acme.example",
            org=7,
            contact="acme:Partner globex:direct",
            admin="acme:SEN-1 acme:SEN-2",
        )
    )
    assert (person.email, person.org_ids, person.contacts, person.admin_of) == (
        "Alice@Acme.example",
        ("7",),
        (("acme", "partner"), ("globex", "direct")),
        (("acme", "SEN-1"), ("acme", "SEN-2")),
    )


@pytest.mark.parametrize(
    ("value", "contacts"),
    [
        ("acme:direct", (("acme", "direct"),)),
        ("acme:partner, globex:DIRECT", (("acme", "partner"), ("globex", "direct"))),
        # Values that name no account (an earlier tierdesk's drop-down, a hand edit):
        # for the account of the user's organization.
        ("direct", (("", "direct"),)),
        ("DIRECT", (("", "direct"),)),
        (" partner ", (("", "partner"),)),
        (True, (("", "direct"),)),  # a checkbox field
        ("yes", (("", "direct"),)),
        ("Acme:direct", ()),  # not an account id (ids are lower case): no flag
        (False, ()),
        ("", ()),
        (None, ()),
        ("no", ()),
        ("partnr", ()),
        ("acme:partnr", ()),
    ],
)
def test_named_contact_values(value: Any, contacts: tuple[tuple[str, str], ...]) -> None:
    assert parse_contact(value) == contacts


@pytest.mark.parametrize(
    ("value", "sites"),
    [
        ("acme:SEN-1234", (("acme", "SEN-1234"),)),
        ("acme:SEN-2, globex:SEN-1", (("acme", "SEN-2"), ("globex", "SEN-1"))),
        ("acme:*", (("acme", "*"),)),
        ("SEN-1234", (("", "SEN-1234"),)),
        ("SEN-2, SEN-1", (("", "SEN-1"), ("", "SEN-2"))),
        ("*", (("", "*"),)),
        (True, (("", "*"),)),
        ("yes", (("", "*"),)),
        (None, ()),
        ("  ", ()),
    ],
)
def test_site_admin_values(value: Any, sites: tuple[tuple[str, str], ...]) -> None:
    assert parse_admin(value) == sites


def test_has_more_false_ends_the_list_whatever_links_say() -> None:
    body = recorded("aaronellington-ticket_fields-list-cursor-page2-last.json")
    assert body["links"]["next"]  # the erratum: still a next link on the last page
    assert next_cursor(body) is None
    assert next_cursor(ORGS_1) == after_of(ORGS_1)


def test_has_more_without_a_cursor_is_an_error() -> None:
    with pytest.raises(ConnectorError, match="names no next cursor"):
        next_cursor({"meta": {"has_more": True}, "links": {}})


WANT = OrgWant(account="acme", tier="premier")


def test_an_organization_update_carries_only_what_differs() -> None:
    showing = org_from(zendesk_org(7, "Acme", account="acme", tier="select"))
    assert org_update(showing, WANT) == {
        "organization": {"organization_fields": {"tierdesk_tier": "premier"}}
    }
    bare = org_from(zendesk_org(7, "Acme"))
    assert org_update(bare, WANT) == {
        "organization": {
            "organization_fields": {"tierdesk_account": "acme", "tierdesk_tier": "premier"}
        }
    }
    agreeing = org_from(zendesk_org(7, "Acme", account="acme", tier="premier"))
    assert org_update(agreeing, WANT) is None


def test_a_user_update_sets_and_clears_flags() -> None:
    flagged = person_from(
        zendesk_user(9, "a@acme.example", org=7, contact="acme:direct", admin="acme:SEN-1")
    )
    assert person_update(flagged, PersonWant()) == {
        "user": {"user_fields": {"tierdesk_named_contact": None, "tierdesk_site_admin": None}}
    }
    both = PersonWant((("acme", "direct"),), (("acme", "SEN-1"),))
    assert person_update(flagged, both) is None
    assert person_update(
        flagged, PersonWant((("acme", "direct"), ("globex", "partner")), (("acme", "SEN-1"),))
    ) == {"user": {"user_fields": {"tierdesk_named_contact": "acme:direct globex:partner"}}}
    # "yes" names no account: rewritten with the account it is for.
    yes = DirectoryPerson("9", "a@acme.example", contacts=parse_contact("yes"))
    assert person_update(yes, PersonWant((("acme", "direct"),))) == {
        "user": {"user_fields": {"tierdesk_named_contact": "acme:direct"}}
    }


def test_writes_conform_to_the_spec_and_go_to_the_record() -> None:
    orgs = [zendesk_org(7, "Acme")]
    users = [zendesk_user(9, "a@acme.example", org=7, contact="acme:direct")]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeZendesk(rsps, BASE, orgs, users)
        directory = ZendeskDirectory(client())
        org = directory.page("organizations", None).orgs[0]
        person = directory.page("users", None).people[0]
        directory.write_org(org, directory.org_update(org, WANT))
        directory.write_person(person, directory.person_update(person, PersonWant()))
        for request in fake.requests:
            assert_directory_request("zendesk", request)
        puts = [(urlsplit(r.url or "").path, json.loads(r.body or b"")) for r in fake.writes()]
    assert puts == [
        (
            "/api/v2/organizations/7",
            {
                "organization": {
                    "organization_fields": {"tierdesk_account": "acme", "tierdesk_tier": "premier"}
                }
            },
        ),
        ("/api/v2/users/9", {"user": {"user_fields": {"tierdesk_named_contact": None}}}),
    ]
    assert orgs[0]["organization_fields"] == {
        "tierdesk_account": "acme",
        "tierdesk_tier": "premier",
    }


def test_the_contract_check_catches_what_the_spec_forbids() -> None:
    """The checker is not a rubber stamp: an undeclared parameter and a boolean
    organization field (the spec allows strings and numbers) are both refused."""
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/api/v2/organizations", json=ORGS_1)
        rsps.put(f"{BASE}/api/v2/organizations/7", json={})
        raw = client()
        raw.request("GET", "/api/v2/organizations", params={"page[sise]": "100"})
        raw.request(
            "PUT",
            "/api/v2/organizations/7",
            json_body={"organization": {"organization_fields": {"tierdesk_tier": True}}},
        )
        bad_param, bad_body = (call.request for call in rsps.calls)
    with pytest.raises(AssertionError, match="undeclared query parameters"):
        assert_directory_request("zendesk", bad_param)
    with pytest.raises(AssertionError, match="breaks the spec"):
        assert_directory_request("zendesk", bad_body)


def test_counts_for_the_progress_bar() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeZendesk(rsps, BASE, [zendesk_org(i, f"o{i}") for i in range(1, 4)], [])
        assert ZendeskDirectory(client()).total("organizations") == 3
        assert ZendeskDirectory(client()).total("users") == 0
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/api/v2/users/count", status=403, json={"error": "Forbidden"})
        assert ZendeskDirectory(client()).total("users") is None


def test_a_429_is_waited_out_as_the_vendor_says() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeZendesk(rsps, BASE, [zendesk_org(1, "a"), zendesk_org(2, "b")], [], page_size=1)
        fake.storms.append(Storm("/api/v2/organizations", count=2, skip=1))
        directory = ZendeskDirectory(client(sleeps), page_size=1)
        first = directory.page("organizations", None)
        second = directory.page("organizations", first.after)
    assert [o.id for o in (*first.orgs, *second.orgs)] == ["1", "2"]
    assert sleeps == [7.0, 7.0]  # Retry-After, exactly
    assert second.after is None


def test_a_429_storm_longer_than_the_policy_raises_rate_limited() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeZendesk(rsps, BASE, [zendesk_org(1, "a")], [])
        fake.storms.append(Storm("/api/v2/organizations", count=100))
        with pytest.raises(RateLimited):
            ZendeskDirectory(client()).page("organizations", None)
