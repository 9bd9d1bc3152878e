"""Test doubles and contracts for the directory sync (`connector.*_directory`).

`assert_directory_request` checks a request against the published spec like
`contracts.assert_conforms`, with what the specs leave out for these operations
(found while writing the readers; each is visible in the spec and the recorded pages):

- Zendesk's ``GET /api/v2/organizations`` and ``/api/v2/users`` describe "Cursor
  pagination (recommended)" but declare no ``page[...]`` parameter (their responses
  declare no cursor fields either: vendor/README.md erratum 3). The recorded requests
  (zenpy-interactions.meta.json) send ``page[size]`` and ``page[after]``.
- Parameters given as ``$ref`` (``/api/v2/users``'s role filters) are resolved.
- Zendesk's ``PUT /api/v2/organizations/{organization_id}`` declares no request body;
  its description shows ``{"organization": {…}}``, so the body is checked against
  ``OrganizationObject`` (without its ``required: [name]``, which is for creation).
- JSM's ``PUT …/organization/{organizationId}/property/{propertyKey}`` declares no body:
  the property's value is any JSON, so the body need only parse.

`FakeZendesk` and `FakeJsm` serve a directory from lists of records on `responses`, in
the vendors' page shapes, records made from the recorded bodies with the ids and
tierdesk fields changed. Their writes change the records, so a push followed by a read
sees what it wrote; and they can answer a run of 429s.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import responses
from jsonschema import Draft4Validator
from requests import PreparedRequest

from tests.connector.contracts import FORMATS, Api, body_errors, operation, spec
from tests.shared import VENDOR

ZENDESK_PAYLOADS = VENDOR / "zendesk" / "payloads"
JSM_PAYLOADS = VENDOR / "jsm" / "payloads"
# The host the recorded pages name in their links (not the one they were fetched from).
RECORDED_HOST = "https://z3n-jteitelbaum.zendesk.com"
CURSOR_PARAMS = {"page[size]", "page[after]", "page[before]"}
_QUERY = r"(\?.*)?$"
TEXT_429 = "aaronellington-error-429-inconsistent.txt"  # the plain-text 429 body


def recorded(path: str) -> Any:
    folder = ZENDESK_PAYLOADS if path.startswith(("zenpy", "aaron")) else JSM_PAYLOADS
    return json.loads((folder / path).read_text(encoding="utf-8"))


def _declared(api: Api, template: str, op: dict[str, Any]) -> set[str]:
    doc = spec(api)
    names = set()
    for param in [*doc["paths"][template].get("parameters", []), *op.get("parameters", [])]:
        resolved = (
            doc["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
            if "$ref" in param
            else param
        )
        if resolved.get("in") == "query":
            names.add(resolved["name"])
    if "Cursor pagination" in op.get("description", ""):
        names |= CURSOR_PARAMS
    return names


def _organization_body_errors(body: Any) -> list[str]:
    doc = spec("zendesk")
    organization = copy.deepcopy(doc["components"]["schemas"]["OrganizationObject"])
    organization.pop("required", None)
    schema = {
        "type": "object",
        "required": ["organization"],
        "properties": {"organization": organization},
        "additionalProperties": False,
    }
    validator = Draft4Validator(schema, format_checker=FORMATS)
    return sorted(
        f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
        for e in validator.iter_errors(body)
    )


def assert_directory_request(api: Api, request: PreparedRequest) -> Any:
    """The request's JSON body (None when empty), after checking it against the spec."""
    method = request.method or ""
    url = urlsplit(request.url or "")
    template, op = operation(api, method, url.path)
    undeclared = {name for name, _ in parse_qsl(url.query)} - _declared(api, template, op)
    assert not undeclared, f"{method} {template}: undeclared query parameters {undeclared}"
    if not request.body:
        assert not op.get("requestBody", {}).get("required"), f"{method} {template}: no body"
        return None
    body = json.loads(request.body)
    if "requestBody" in op:
        errors = body_errors(api, template, method, body)
    elif (api, method, template) == ("zendesk", "PUT", "/api/v2/organizations/{organization_id}"):
        errors = _organization_body_errors(body)
    elif api == "jsm" and template.endswith("/property/{propertyKey}") and method == "PUT":
        errors = []  # an entity property's value is any JSON
    else:
        raise AssertionError(f"{method} {template}: the spec declares no body")
    assert not errors, f"{method} {template}: the body breaks the spec:\n" + "\n".join(errors)
    return body


# -- records made from the recorded bodies ---------------------------------------------

ORG_TEMPLATE: dict[str, Any] = recorded("zenpy-organizations-list-cursor-page1.json")[
    "organizations"
][0]
USER_TEMPLATE: dict[str, Any] = recorded("zenpy-users-list-cursor-page1.json")["users"][0]
JSM_ORG_TEMPLATE: dict[str, Any] = recorded("go-atlassian-sm-get-organizations.json")["values"][0]


def zendesk_org(
    org_id: int,
    name: str,
    *,
    domains: tuple[str, ...] = (),
    account: str | None = None,
    tier: str | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if account is not None:
        fields["tierdesk_account"] = account
    if tier is not None:
        fields["tierdesk_tier"] = tier
    return {
        **copy.deepcopy(ORG_TEMPLATE),
        "url": f"{RECORDED_HOST}/api/v2/organizations/{org_id}.json",
        "id": org_id,
        "name": name,
        "domain_names": list(domains),
        "organization_fields": fields,
    }


def zendesk_user(
    user_id: int,
    email: str,
    *,
    org: int | None = None,
    contact: str | None = None,
    admin: str | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if contact is not None:
        fields["tierdesk_named_contact"] = contact
    if admin is not None:
        fields["tierdesk_site_admin"] = admin
    return {
        **copy.deepcopy(USER_TEMPLATE),
        "url": f"{RECORDED_HOST}/api/v2/users/{user_id}.json",
        "id": user_id,
        "email": email,
        "name": email.split("@", maxsplit=1)[0],
        "organization_id": org,
        "user_fields": fields,
    }


def _cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": "id", "v": last_id}).encode()).decode()


def _after(cursor: str) -> int:
    return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["v"])


@dataclass
class Storm:
    """Answer ``count`` requests whose path starts with ``prefix`` with 429s, after
    letting ``skip`` of them through."""

    prefix: str
    count: int
    skip: int = 0
    retry_after: str = "7"
    body: bytes = field(default_factory=(ZENDESK_PAYLOADS / TEXT_429).read_bytes)


class FakeZendesk:
    def __init__(
        self,
        rsps: responses.RequestsMock,
        base: str,
        orgs: list[dict[str, Any]],
        users: list[dict[str, Any]],
        *,
        page_size: int = 100,
    ) -> None:
        self.base = base
        self.records = {"organizations": orgs, "users": users}
        self.page_size = page_size
        self.storms: list[Storm] = []
        self.requests: list[PreparedRequest] = []
        self.pages_served: list[tuple[str, str | None]] = []
        self.written: list[str] = []  # paths of the PUTs that succeeded
        self.refuse: set[int] = set()  # record ids whose PUT gets a 422
        rsps.add_callback(
            responses.GET,
            re.compile(re.escape(base) + r"/api/v2/(organizations|users)" + _QUERY),
            callback=self._list,
        )
        rsps.add_callback(
            responses.GET,
            re.compile(re.escape(base) + r"/api/v2/(organizations|users)/count" + _QUERY),
            callback=self._count,
        )
        rsps.add_callback(
            responses.PUT,
            re.compile(re.escape(base) + r"/api/v2/(organizations|users)/(\d+)" + _QUERY),
            callback=self._put,
        )

    def _storm(self, path: str) -> tuple[int, dict[str, str], bytes] | None:
        for storm in self.storms:
            if path.startswith(storm.prefix) and storm.count > 0:
                if storm.skip > 0:
                    storm.skip -= 1
                    return None
                storm.count -= 1
                return 429, {"Retry-After": storm.retry_after}, storm.body
        return None

    def _list(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.requests.append(request)
        url = urlsplit(request.url or "")
        stormy = self._storm(url.path)
        if stormy is not None:
            return stormy[0], stormy[1], stormy[2].decode()
        kind = url.path.rsplit("/", 1)[1].removesuffix(".json")
        query = dict(parse_qsl(url.query))
        size = min(int(query.get("page[size]", "100")), self.page_size)
        after = query.get("page[after]")
        self.pages_served.append((kind, after))
        records = sorted(self.records[kind], key=lambda r: r["id"])
        if after is not None:
            records = [r for r in records if r["id"] > _after(after)]
        page, more = records[:size], len(records) > size
        last = page[-1]["id"] if page else 0
        first = page[0]["id"] if page else 0
        link = f"{RECORDED_HOST}/api/v2/{kind}.json?page%5B{{}}%5D={{}}&page%5Bsize%5D={size}"
        body = {
            kind: page,
            "meta": {
                "has_more": more,
                "after_cursor": _cursor(last),
                "before_cursor": _cursor(first),
            },
            # Like the recorded last ticket_fields page, links.next stays on the last page.
            "links": {
                "prev": link.format("before", _cursor(first)),
                "next": link.format("after", _cursor(last)),
            },
        }
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body)

    def _count(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.requests.append(request)
        kind = urlsplit(request.url or "").path.split("/")[3]
        body = {"count": {"value": len(self.records[kind]), "refreshed_at": "2026-03-06T16:30:00Z"}}
        return 200, {}, json.dumps(body)

    def _put(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.requests.append(request)
        path = urlsplit(request.url or "").path
        stormy = self._storm(path)
        if stormy is not None:
            return stormy[0], stormy[1], stormy[2].decode()
        _, _, _, kind, name = path.split("/")
        record_id = int(name.removesuffix(".json"))
        body = json.loads(request.body or b"{}")
        key, fields = (
            ("organization", "organization_fields")
            if kind == "organizations"
            else (
                "user",
                "user_fields",
            )
        )
        if record_id in self.refuse:
            return (
                422,
                {},
                (ZENDESK_PAYLOADS / "aaronellington-error-422-record_invalid.json").read_text(),
            )
        for record in self.records[kind]:
            if record["id"] == record_id:
                record[fields] = {**(record.get(fields) or {}), **body[key][fields]}
                self.written.append(path)
                return 200, {}, json.dumps({key: record})
        return 404, {}, json.dumps({"error": "RecordNotFound", "description": "Not found"})

    def writes(self) -> list[PreparedRequest]:
        return [r for r in self.requests if r.method == "PUT"]

    def reads(self, kind: str) -> list[PreparedRequest]:
        path = f"/api/v2/{kind}"
        return [r for r in self.requests if urlsplit(r.url or "").path == path]


class FakeJsm:
    """Organizations with their ``tierdesk`` property and customers, on `responses`."""

    API = "/rest/servicedeskapi"

    def __init__(
        self,
        rsps: responses.RequestsMock,
        base: str,
        orgs: list[dict[str, Any]],
        properties: dict[str, Any],
        customers: dict[str, list[dict[str, Any]]],
        *,
        page_size: int = 50,
    ) -> None:
        self.base = base
        self.orgs = orgs
        self.properties = properties  # org id → the property's value
        self.customers = customers
        self.page_size = page_size
        self.requests: list[PreparedRequest] = []
        self.storms: list[Storm] = []
        api = re.escape(base + self.API)
        rsps.add_callback(
            responses.GET, re.compile(api + r"/organization" + _QUERY), callback=self._orgs
        )
        rsps.add_callback(
            responses.GET,
            re.compile(api + r"/organization/(\w+)/user" + _QUERY),
            callback=self._users,
        )
        rsps.add_callback(
            responses.GET,
            re.compile(api + r"/organization/(\w+)/property/tierdesk" + _QUERY),
            callback=self._property,
        )
        rsps.add_callback(
            responses.PUT,
            re.compile(api + r"/organization/(\w+)/property/tierdesk" + _QUERY),
            callback=self._put_property,
        )

    def _paged(
        self, request: PreparedRequest, values: list[Any], path: str
    ) -> tuple[int, dict[str, str], str]:
        query = dict(parse_qsl(urlsplit(request.url or "").query))
        start, limit = int(query.get("start", "0")), int(query.get("limit", "50"))
        limit = min(limit, self.page_size)
        page = values[start : start + limit]
        last = start + limit >= len(values)
        links: dict[str, str] = {"base": f"{self.base}{self.API}", "context": "context"}
        if not last:
            links["next"] = f"{self.base}{path}?start={start + limit}&limit={limit}"
        if start:
            links["prev"] = f"{self.base}{path}?start={max(start - limit, 0)}&limit={limit}"
        body = {
            "_expands": [],
            "size": len(page),
            "start": start,
            "limit": limit,
            "isLastPage": last,
            "_links": links,
            "values": page,
        }
        return 200, {}, json.dumps(body)

    def _orgs(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.requests.append(request)
        path = urlsplit(request.url or "").path
        for storm in self.storms:
            if path.startswith(storm.prefix) and storm.count > 0:
                if storm.skip > 0:
                    storm.skip -= 1
                else:
                    storm.count -= 1
                    return 429, {"Retry-After": storm.retry_after}, ""
        return self._paged(request, self.orgs, path)

    def _org_id(self, request: PreparedRequest) -> str:
        return urlsplit(request.url or "").path.split("/")[4]

    def _users(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.requests.append(request)
        org = self._org_id(request)
        return self._paged(request, self.customers.get(org, []), urlsplit(request.url or "").path)

    def _property(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.requests.append(request)
        org = self._org_id(request)
        if org not in self.properties:
            body = {"errorMessages": ["The property 'tierdesk' does not exist."], "errors": {}}
            return 404, {}, json.dumps(body)
        return 200, {}, json.dumps({"key": "tierdesk", "value": self.properties[org]})

    def _put_property(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.requests.append(request)
        self.properties[self._org_id(request)] = json.loads(request.body or b"null")
        return 200, {}, ""

    def writes(self) -> list[PreparedRequest]:
        return [r for r in self.requests if r.method == "PUT"]


def jsm_org(org_id: str, name: str) -> dict[str, Any]:
    return {
        **copy.deepcopy(JSM_ORG_TEMPLATE),
        "id": org_id,
        "name": name,
        "_links": {
            "self": f"https://your-domain.atlassian.net/rest/servicedeskapi/organization/{org_id}"
        },
    }


def jsm_customer(account_id: str, email: str | None) -> dict[str, Any]:
    return {
        "accountId": account_id,
        "emailAddress": email,
        "displayName": (email or account_id).split("@")[0],
        "active": True,
        "timeZone": "Europe/London",
        "_links": {
            "self": f"https://your-domain.atlassian.net/rest/api/2/user?accountId={account_id}"
        },
    }


RequestCheck = Callable[[PreparedRequest], Any]
