"""Stand-ins for the Zendesk and Jira admin APIs that `tierdesk setup` calls, on `responses`.

Each fake keeps what a run creates, so a second run sees the first one's work, and
checks every request it is sent against the vendor's published spec (`contracts`):

- Zendesk: the ticket field list is served as the two recorded cursor pages
  (../shared/vendor/zendesk/payloads/aaronellington-ticket_fields-list-cursor-page*.json,
  verbatim but for the fields created here, appended to the last page); the trigger
  list starts from the spec's ``TriggersResponseExample``; a created field is answered
  in the shape of ``TicketFieldResponseExample``. The Webhooks API is in no spec here
  and no recording: its requests are checked against `ZENDESK_WEBHOOK_REQUEST`, the
  JSON format of developer.zendesk.com/api-reference/webhooks/webhooks-api/webhooks.
- Zendesk organization and user fields: each list starts from the spec's example
  (``OrganizationFieldsResponseExample``, ``UserFieldsResponseExample``: one text field
  of another key) and is served as one cursor page; a created field is answered in the
  shape of ``…FieldCreateResponseExample``, its drop-down options given ids; an update
  replaces the options as Zendesk does (those left out are gone).
- Jira: the field list starts from the spec's example for ``GET /rest/api/3/field``, a
  created field is answered like the spec's example for ``POST``. Admin webhooks
  (``/rest/webhooks/1.0/webhook``) are in no spec either: `JIRA_ADMIN_WEBHOOK_REQUEST`
  holds what Atlassian's webhook guide documents.

The spec declares neither request body for ``POST /api/v2/ticket_fields`` nor the
cursor parameters of any list (erratum 3 of ../shared/vendor/README.md): a created
field is checked against ``CustomFieldObject``, the spec's field-definition schema,
and ``page[size]``/``page[after]`` are taken off before the query is checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import responses
from jsonschema import Draft4Validator
from requests import PreparedRequest

from tests.connector.contracts import FORMATS, Api, assert_conforms, spec
from tests.shared import VENDOR

ZENDESK = "https://acme.zendesk.com"
JIRA = "https://acme.atlassian.net"
PAYLOADS = VENDOR / "zendesk" / "payloads"
PAGE_1 = "aaronellington-ticket_fields-list-cursor-page1.json"
PAGE_2 = "aaronellington-ticket_fields-list-cursor-page2-last.json"
# A Zendesk signing secret in the documented shape (base64 of 32 bytes); distinctive,
# so a test can look for it anywhere it must not be.
SIGNING_SECRET = "dGllcmRlc2std2ViaG9vay1zaWduaW5nLXNlY3JldC0x"
# The accountId of the spec's example answer to GET /rest/api/3/myself.
API_ACCOUNT_ID = "5b10a2844c20165700ede21g"

ZENDESK_WEBHOOK_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["webhook"],
    "additionalProperties": False,
    "properties": {
        "webhook": {
            "type": "object",
            "required": ["name", "endpoint", "http_method", "request_format", "status"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "description": {"type": "string"},
                "endpoint": {"type": "string", "pattern": "^https?://"},
                "http_method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                "request_format": {"enum": ["json", "xml", "form_encoded"]},
                "status": {"enum": ["active", "inactive"]},
                # A trigger can call only a webhook subscribed to exactly this; any
                # other webhook lists Zendesk event types ("Webhooks API", subscriptions).
                "subscriptions": {
                    "oneOf": [
                        {
                            "type": "array",
                            "items": {"enum": ["conditional_ticket_events"]},
                            "minItems": 1,
                            "maxItems": 1,
                        },
                        {
                            "type": "array",
                            "items": {"type": "string", "pattern": "^zen:event-type:[a-z_.]+$"},
                            "minItems": 1,
                            "uniqueItems": True,
                        },
                    ]
                },
            },
        }
    },
}

JIRA_ADMIN_WEBHOOK_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["name", "url", "events"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "url": {"type": "string", "pattern": "^https://"},
        "events": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "filters": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"issue-related-events-section": {"type": "string"}},
        },
        "excludeBody": {"type": "boolean"},
        "secret": {"type": "string", "minLength": 16},
    },
}


def schema_errors(api: Api, schema: dict[str, Any], instance: Any) -> list[str]:
    """How ``instance`` breaks ``schema`` (refs resolved within the ``api`` spec)."""
    root = {"components": spec(api)["components"], "allOf": [schema]}
    validator = Draft4Validator(root, format_checker=FORMATS)
    return sorted(
        f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
        for e in validator.iter_errors(instance)
    )


def conforms_without_cursor(api: Api, request: PreparedRequest) -> Any:
    """`assert_conforms`, with the cursor parameters the spec does not declare taken off."""
    parts = urlsplit(request.url or "")
    query = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("page[")]
    bare = request.copy()
    bare.url = urlunsplit(parts._replace(query=urlencode(query)))
    return assert_conforms(api, bare)


def _json(status: int, doc: Any) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(doc)


def _body(request: PreparedRequest) -> Any:
    raw = request.body or b"{}"
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


@dataclass
class FakeZendesk:
    """Install with `install` inside ``responses.RequestsMock``/``@responses.activate``."""

    ticket_fields: list[dict[str, Any]] = field(default_factory=list)  # custom ones
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    organization_fields: list[dict[str, Any]] = field(default_factory=list)  # ours
    user_fields: list[dict[str, Any]] = field(default_factory=list)
    fail_field_title: str | None = None  # POST of this field answers 422
    secret_reads: int = 0
    _next: int = 9001

    def install(self, mock: responses.RequestsMock) -> None:
        base = re.escape(ZENDESK)
        mock.add_callback("GET", re.compile(base + r"/api/v2/ticket_fields(\?.*)?$"), self._fields)
        mock.add_callback("POST", re.compile(base + r"/api/v2/ticket_fields$"), self._new_field)
        mock.add_callback("PUT", re.compile(base + r"/api/v2/ticket_fields/\d+$"), self._put_field)
        mock.add_callback("GET", re.compile(base + r"/api/v2/webhooks(\?.*)?$"), self._hooks)
        mock.add_callback("POST", re.compile(base + r"/api/v2/webhooks$"), self._new_hook)
        mock.add_callback(
            "GET", re.compile(base + r"/api/v2/webhooks/[^/]+/signing_secret$"), self._secret
        )
        mock.add_callback("GET", re.compile(base + r"/api/v2/triggers(\?.*)?$"), self._triggers)
        mock.add_callback("POST", re.compile(base + r"/api/v2/triggers$"), self._new_trigger)
        mock.add_callback("PUT", re.compile(base + r"/api/v2/triggers/\d+$"), self._put_trigger)
        for owner in ("organization", "user"):
            fields = base + rf"/api/v2/{owner}_fields"
            mock.add_callback("GET", re.compile(fields + r"(\?.*)?$"), self._custom_fields)
            mock.add_callback("POST", re.compile(fields + "$"), self._new_custom_field)
            mock.add_callback("PUT", re.compile(fields + r"/\d+$"), self._put_custom_field)

    def _owned(self, request: PreparedRequest) -> tuple[str, list[dict[str, Any]]]:
        owner = "organization" if "/organization_fields" in (request.url or "") else "user"
        return owner, self.organization_fields if owner == "organization" else self.user_fields

    def _custom_fields(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        conforms_without_cursor("zendesk", request)
        assert dict(parse_qsl(urlsplit(request.url or "").query)).get("page[size]") == "100"
        owner, ours = self._owned(request)
        name = (
            "OrganizationFieldsResponseExample"
            if owner == "organization"
            else ("UserFieldsResponseExample")
        )
        example = spec("zendesk")["components"]["examples"][name]["value"][f"{owner}_fields"]
        meta = {"has_more": False, "after_cursor": None, "before_cursor": None}
        return _json(200, {f"{owner}_fields": [*example, *ours], "meta": meta, "links": {}})

    def _options(self, options: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for option in options:
            errors = schema_errors(
                "zendesk", {"$ref": "#/components/schemas/CustomFieldOptionObject"}, option
            )
            assert not errors, errors
        return [{**o, "id": o.get("id") or self._id(), "raw_name": o["name"]} for o in options]

    def _new_custom_field(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        owner, ours = self._owned(request)
        body = _body(request)
        assert set(body) == {f"{owner}_field"}, body
        wanted = body[f"{owner}_field"]
        errors = schema_errors(
            "zendesk", {"$ref": "#/components/schemas/CustomFieldObject"}, wanted
        )
        assert not errors, errors
        # Zendesk: "Required … for a custom field of type dropdown".
        assert wanted["type"] != "dropdown" or wanted.get("custom_field_options"), wanted
        name = f"{owner.capitalize()}FieldCreateResponseExample"
        example = spec("zendesk")["components"]["examples"][name]["value"][f"{owner}_field"]
        created = {**example, **wanted, "id": self._id()}
        created["raw_title"] = created["title"]
        if "custom_field_options" in wanted:
            created["custom_field_options"] = self._options(wanted["custom_field_options"])
        ours.append(created)
        return _json(201, {f"{owner}_field": created})

    def _put_custom_field(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        owner, ours = self._owned(request)
        changed = _body(request)[f"{owner}_field"]
        field_id = int((request.path_url or "").rsplit("/", 1)[-1])
        found = next(f for f in ours if f["id"] == field_id)
        if "custom_field_options" in changed:
            known = {o["id"] for o in found.get("custom_field_options") or []}
            sent = changed["custom_field_options"]
            assert all(o.get("id") in known for o in sent if "id" in o), sent
            found["custom_field_options"] = self._options(sent)  # the ones left out are gone
        return _json(200, {f"{owner}_field": found})

    def _id(self) -> int:
        self._next += 1
        return self._next

    def _fields(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        conforms_without_cursor("zendesk", request)
        query = dict(parse_qsl(urlsplit(request.url or "").query))
        assert query.get("page[size]") == "100"
        if "page[after]" not in query:
            return 200, {"Content-Type": "application/json"}, (PAYLOADS / PAGE_1).read_text()
        assert query["page[after]"] == "aCursor="  # page 1's meta.after_cursor
        page = json.loads((PAYLOADS / PAGE_2).read_text())
        page["ticket_fields"] += self.ticket_fields
        return _json(200, page)

    def _new_field(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = _body(request)
        errors = schema_errors(
            "zendesk", {"$ref": "#/components/schemas/CustomFieldObject"}, body["ticket_field"]
        )
        assert set(body) == {"ticket_field"} and not errors, errors
        wanted = body["ticket_field"]
        if wanted["title"] == self.fail_field_title:
            return 422, {}, (PAYLOADS / "aaronellington-error-422-record_invalid.json").read_text()
        example = spec("zendesk")["components"]["examples"]["TicketFieldResponseExample"]
        # Zendesk: options are "Required … for a custom ticket field of type tagger".
        assert wanted["type"] != "tagger" or wanted.get("custom_field_options"), wanted
        created = {**example["value"]["ticket_field"], **wanted, "id": self._id()}
        created["raw_title"] = created["title_in_portal"] = created["title"]
        if "custom_field_options" in wanted:
            created["custom_field_options"] = self._options(wanted["custom_field_options"])
        self.ticket_fields.append(created)
        return _json(201, {"ticket_field": created})

    def _put_field(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        assert_conforms("zendesk", request)
        changed = _body(request)["ticket_field"]
        field_id = int((request.path_url or "").rsplit("/", 1)[-1])
        found = next(f for f in self.ticket_fields if f["id"] == field_id)
        if "custom_field_options" in changed:
            known = {o["id"] for o in found.get("custom_field_options") or []}
            sent = changed["custom_field_options"]
            assert all(o.get("id") in known for o in sent if "id" in o), sent
            found["custom_field_options"] = self._options(sent)  # the ones left out are gone
        return _json(200, {"ticket_field": found})

    def _hooks(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        assert dict(parse_qsl(urlsplit(request.url or "").query)).get("page[size]") == "100"
        meta = {"has_more": False, "after_cursor": None, "before_cursor": None}
        return _json(200, {"webhooks": self.webhooks, "meta": meta, "links": {}})

    def _new_hook(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = _body(request)
        errors = schema_errors("zendesk", ZENDESK_WEBHOOK_REQUEST, body)
        assert not errors, errors
        created = {**body["webhook"], "id": f"01HTIERDESK{self._id()}", "created_by": "1"}
        self.webhooks.append(created)
        return _json(201, {"webhook": created})

    def _secret(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        webhook_id = (request.path_url or "").split("/")[-2]
        assert any(w["id"] == webhook_id for w in self.webhooks), webhook_id
        self.secret_reads += 1
        return _json(200, {"signing_secret": {"algorithm": "SHA256", "secret": SIGNING_SECRET}})

    def _triggers(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        conforms_without_cursor("zendesk", request)
        example = spec("zendesk")["components"]["examples"]["TriggersResponseExample"]
        listed = [*example["value"]["triggers"], *self.triggers]
        return _json(200, {"triggers": listed, "meta": {"has_more": False}})

    def _new_trigger(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        created = {**assert_conforms("zendesk", request)["trigger"], "id": self._id()}
        self.triggers.append(created)
        return _json(201, {"trigger": created})

    def _put_trigger(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        changed = assert_conforms("zendesk", request)["trigger"]
        trigger_id = int((request.path_url or "").rsplit("/", 1)[-1])
        found = next(t for t in self.triggers if t["id"] == trigger_id)
        found.update(changed)
        return _json(200, {"trigger": found})


@dataclass
class FakeJira:
    fields: list[dict[str, Any]] = field(default_factory=list)  # custom ones
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # webhook id → its secret
    fail_field_name: str | None = None
    fail_webhooks: int = 0  # this many webhook POSTs are refused (400) first
    myself_reads: int = 0
    _next: int = 10100

    def install(self, mock: responses.RequestsMock) -> None:
        base = re.escape(JIRA)
        mock.add_callback("GET", re.compile(base + r"/rest/api/[23]/field$"), self._fields)
        mock.add_callback("POST", re.compile(base + r"/rest/api/[23]/field$"), self._new_field)
        hooks = base + r"/rest/webhooks/1\.0/webhook"
        mock.add_callback("GET", re.compile(hooks + "$"), self._hooks)
        mock.add_callback("POST", re.compile(hooks + "$"), self._new_hook)
        mock.add_callback("PUT", re.compile(hooks + r"/\d+$"), self._put_hook)
        mock.add_callback("GET", re.compile(base + r"/rest/api/3/myself$"), self._myself)

    def _myself(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        """The spec's example of "Get current user" (accountId `API_ACCOUNT_ID`)."""
        assert_conforms("jira", request)
        self.myself_reads += 1
        answer = spec("jira")["paths"]["/rest/api/3/myself"]["get"]["responses"]["200"]
        return _json(200, json.loads(answer["content"]["application/json"]["example"]))

    def _fields(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        if "/rest/api/3/" in (request.url or ""):
            assert_conforms("jira", request)
        responses_ = spec("jira")["paths"]["/rest/api/3/field"]["get"]["responses"]
        system = json.loads(responses_["200"]["content"]["application/json"]["example"])
        return _json(200, [*system, *self.fields])

    def _new_field(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = (
            assert_conforms("jira", request)
            if "/rest/api/3/" in (request.url or "")
            else _body(request)
        )
        if body["name"] == self.fail_field_name:
            errors = {"errorMessages": [], "errors": {"searcherKey": "not valid for this type"}}
            return _json(400, errors)
        self._next += 1
        field_id = f"customfield_{self._next}"
        example = spec("jira")["paths"]["/rest/api/3/field"]["post"]["responses"]["201"]
        created = json.loads(example["content"]["application/json"]["example"])
        kind = "datetime" if body["type"].endswith(":datetime") else "string"
        created.update(
            id=field_id,
            key=field_id,
            name=body["name"],
            untranslatedName=body["name"],
            clauseNames=[f"cf[{self._next}]", body["name"]],
            schema={"type": kind, "custom": body["type"], "customId": self._next},
        )
        self.fields.append(created)
        return _json(201, created)

    def _hooks(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        return _json(200, self.webhooks)

    def _new_hook(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = _body(request)
        errors = schema_errors("jira", JIRA_ADMIN_WEBHOOK_REQUEST, body)
        assert not errors, errors
        if self.fail_webhooks:
            self.fail_webhooks -= 1
            return _json(400, {"errorMessages": ["The URL is not reachable"]})
        self._next += 1
        webhook_id = str(self._next)
        created = {k: v for k, v in body.items() if k != "secret"}  # never shown again
        created |= {"self": f"{JIRA}/rest/webhooks/1.0/webhook/{webhook_id}", "enabled": True}
        self.webhooks.append(created)
        self.secrets[webhook_id] = body.get("secret", "")
        return _json(201, created)

    def _put_hook(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = _body(request)
        errors = schema_errors("jira", JIRA_ADMIN_WEBHOOK_REQUEST, body)
        assert not errors, errors
        webhook_id = (request.path_url or "").rsplit("/", 1)[-1]
        found = next(w for w in self.webhooks if w["self"].endswith(f"/{webhook_id}"))
        found.update({k: v for k, v in body.items() if k != "secret"})
        if "secret" in body:
            self.secrets[webhook_id] = body["secret"]
        return _json(200, found)


def writes(mock: responses.RequestsMock) -> list[str]:
    """The writes a run sent, as "METHOD /path"."""
    return [
        f"{call.request.method} {urlsplit(call.request.url or '').path}"
        for call in mock.calls
        if call.request.method not in ("GET", "HEAD")
    ]
