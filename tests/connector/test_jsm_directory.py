"""`JsmDirectory`: organizations (start/limit/isLastPage), their ``tierdesk`` property
and customers, and the property write.

JSM is stood in for by `responses`: the recorded organization page from
../shared/vendor verbatim where a test reads it, `FakeJsm` elsewhere (its pages are
checked against the spec's response DTOs, so the fake cannot drift from the vendor),
and every request is checked against the published spec.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from jsonschema import Draft4Validator
from requests.auth import HTTPBasicAuth
from responses import matchers

from connector.directory import DirectoryPerson, OrgWant
from connector.http import HttpClient, Policy
from connector.jsm_directory import JsmDirectory, org_from, org_update, people_of
from tests.connector.contracts import FORMATS, spec
from tests.connector.directory_support import (
    FakeJsm,
    assert_directory_request,
    jsm_customer,
    jsm_org,
    recorded,
)

BASE = "https://acme.atlassian.net"
API = f"{BASE}/rest/servicedeskapi"
PAGE = recorded("go-atlassian-sm-get-organizations.json")
ACME = {
    "account": "acme",
    "tier": "premier",
    "named_contacts": ["alice@acme.example"],
    "partner_contacts": ["JohnSmith_PartnerCompanyA@acme.example"],
    "site_admins": [{"email": "hank@acme.example", "sen": "SEN-1234"}],
    "domains": ["acme.example"],
}


def client() -> HttpClient:
    return HttpClient(
        BASE,
        HTTPBasicAuth("ops@acme.example", "s3cret"),
        policy=Policy(requests_per_minute=1e6),
        sleep=lambda s: None,
    )


def response_errors(dto: str, body: Any) -> list[str]:
    doc = spec("jsm")
    components = copy.deepcopy(doc["components"])
    # UserDTO.emailAddress: "depending on the customer's privacy settings, this may be
    # returned as null", though the schema types it string only.
    components["schemas"]["UserDTO"]["properties"]["emailAddress"]["type"] = ["string", "null"]
    root = {"components": components, "allOf": [{"$ref": f"#/components/schemas/{dto}"}]}
    return [e.message for e in Draft4Validator(root, format_checker=FORMATS).iter_errors(body)]


def test_the_recorded_page_then_the_last_one() -> None:
    """A resumed read (cursor "1"): the recorded page (start 1, one organization,
    isLastPage false), then start = 1 + 1 = 2, as its _links.next says."""
    assert dict(parse_qsl(urlsplit(PAGE["_links"]["next"]).query))["start"] == "2"
    last = {**PAGE, "start": 2, "size": 1, "isLastPage": True, "values": [jsm_org("2", "Acme")]}
    with responses.RequestsMock() as rsps:
        rsps.get(
            f"{API}/organization",
            json=PAGE,
            match=[matchers.query_param_matcher({"start": "1", "limit": "50"})],
        )
        rsps.get(
            f"{API}/organization",
            json=last,
            match=[matchers.query_param_matcher({"start": "2", "limit": "50"})],
        )
        rsps.get(f"{API}/organization/1/property/tierdesk", status=404, json={"errorMessages": []})
        rsps.get(f"{API}/organization/2/property/tierdesk", json={"key": "tierdesk", "value": ACME})
        rsps.get(
            f"{API}/organization/2/user",
            json={
                **PAGE,
                "start": 0,
                "isLastPage": True,
                "values": [jsm_customer("a1", "alice@acme.example")],
            },
        )
        directory = JsmDirectory(client())
        first = directory.page("organizations", "1")
        second = directory.page("organizations", first.after)
        for call in rsps.calls:
            assert_directory_request("jsm", call.request)
            assert "X-ExperimentalApi" not in call.request.headers
    assert first.after == "2"
    assert [(o.id, o.name, o.managed) for o in first.orgs] == [
        ("1", "Charlie Cakes Franchises", None)
    ]
    assert first.people == ()  # not one of tierdesk's: its customers are not read
    assert second.after is None
    (acme,) = second.orgs
    assert (acme.account, acme.tier, acme.domains) == ("acme", "premier", ("acme.example",))
    # The property is the organization's: its flags name no account of their own.
    assert {(p.email, p.contacts, p.admin_of) for p in second.people} == {
        ("alice@acme.example", (("", "direct"),), ()),
        ("JohnSmith_PartnerCompanyA@acme.example", (("", "partner"),), ()),
        ("hank@acme.example", (), (("", "SEN-1234"),)),
    }


def test_customers_over_several_pages_and_listed_addresses() -> None:
    customers = [jsm_customer(f"c{i}", f"user{i}@acme.example") for i in range(5)]
    customers.append(jsm_customer("hidden", None))  # privacy settings hide the address
    customers.append(jsm_customer("a1", "Alice@Acme.example"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeJsm(
            rsps, BASE, [jsm_org("7", "Acme")], {"7": ACME}, {"7": customers}, page_size=3
        )
        page = JsmDirectory(client(), page_size=3).page("organizations", None)
        users = [r for r in fake.requests if r.url and "/user" in r.url]
        for request in fake.requests:
            assert_directory_request("jsm", request)
    assert len(users) == 3  # 7 customers, 3 a page
    by_email = {p.email: p for p in page.people}
    assert by_email["Alice@Acme.example"].contacts == (("", "direct"),)
    assert by_email["Alice@Acme.example"].id == "7/a1"  # one person per organization
    assert by_email[""].contacts == ()
    # Listed on the property but no customer: still what the helpdesk says.
    assert by_email["hank@acme.example"].admin_of == (("", "SEN-1234"),)
    assert by_email["hank@acme.example"].id == "7/listed/hank@acme.example"
    assert len(page.people) == len(customers) + 2  # + hank and the partner


def test_the_fake_pages_are_the_spec_s_dtos() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeJsm(
            rsps,
            BASE,
            [jsm_org("7", "Acme"), jsm_org("8", "Globex")],
            {},
            {"7": [jsm_customer("a1", "alice@acme.example"), jsm_customer("h", None)]},
            page_size=1,
        )
        raw = client()
        orgs = raw.request("GET", "/rest/servicedeskapi/organization", params={"start": "0"})
        users = raw.request(
            "GET", "/rest/servicedeskapi/organization/7/user", params={"start": "0"}
        )
    assert response_errors("PagedDTOOrganizationDTO", orgs) == []
    assert response_errors("PagedDTOUserDTO", users) == []
    assert response_errors("PagedDTOOrganizationDTO", PAGE) == []
    assert response_errors("PagedDTOOrganizationDTO", {**PAGE, "extra": 1})  # it can fail


def test_the_property_update_keeps_other_keys_and_ignores_order_and_case() -> None:
    org = org_from({"id": "7", "name": "Acme"}, {**ACME, "note": "kept"})
    same = OrgWant(
        "acme",
        "premier",
        ("ALICE@acme.example",),
        ("JohnSmith_PartnerCompanyA@acme.example",),
        (("hank@acme.example", "SEN-1234"),),
    )
    assert org_update(org, same) is None
    more = OrgWant(
        "acme",
        "premier",
        ("alice@acme.example", "bob@acme.example"),
        ("JohnSmith_PartnerCompanyA@acme.example",),
        (("hank@acme.example", "*"),),
    )
    assert org_update(org, more) == {
        "account": "acme",
        "tier": "premier",
        "named_contacts": ["alice@acme.example", "bob@acme.example"],
        "partner_contacts": ["JohnSmith_PartnerCompanyA@acme.example"],
        "site_admins": [{"email": "hank@acme.example"}],
        "domains": ["acme.example"],
        "note": "kept",
    }
    assert org_update(org_from({"id": "8", "name": "New"}, None), same) is not None


def test_the_property_write_conforms_and_lands() -> None:
    properties: dict[str, Any] = {}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeJsm(rsps, BASE, [jsm_org("7", "Acme")], properties, {})
        directory = JsmDirectory(client())
        org = directory.page("organizations", None, people=False).orgs[0]
        want = OrgWant("acme", "premier", ("alice@acme.example",))
        directory.write_org(org, directory.org_update(org, want))
        (put,) = fake.writes()
        assert_directory_request("jsm", put)
    assert urlsplit(put.url or "").path == "/rest/servicedeskapi/organization/7/property/tierdesk"
    assert properties["7"]["named_contacts"] == ["alice@acme.example"]
    assert json.loads(put.body or b"") == properties["7"]


def test_people_of_an_organization_without_the_property() -> None:
    org = org_from({"id": "9", "name": "Other"}, None)
    people = people_of(org, [jsm_customer("x", "x@other.example")])
    assert people == [DirectoryPerson("9/x", "x@other.example", ("9",), (), ())]


def test_no_people_phase() -> None:
    with pytest.raises(Exception, match="no directory phase"):
        JsmDirectory(client()).page("users", None)
