"""A stateful twin of a Zendesk account: what tierdesk calls, and what it is sent.

State: tickets (with their comments), ticket fields, organization and user fields,
organizations, users, groups, webhooks (with their signing secrets) and triggers.
Records are made from the recorded bodies in ../shared/vendor/zendesk/payloads
(``zenpy-ticket-show-200.json``, the zenpy organization and user pages, the
aaronellington ticket field pages), with ids, values and timestamps of this account.

REST (every request checked against the spec first: `tests.twins.base`):

- ``GET/PUT /api/v2/tickets/{id}``: a PUT with ``safe_update`` whose ``updated_stamp``
  is not the ticket's ``updated_at`` gets 409 ``UpdateConflict``; a closed ticket 422
  (the recorded ``RecordInvalid``); a deleted or unknown one 404 (the recorded
  ``RecordNotFound``); a drop-down value that is not one of the field's options or an
  unknown group 422. Tags are set as a whole, a ``comment`` is added (by the API user).
- Lists (``ticket_fields``, ``organization_fields``, ``user_fields``, ``webhooks``,
  ``triggers``, ``organizations``, ``users``) in cursor pages of ``page[size]`` with
  ``meta`` and ``links`` as recorded (``links.next`` present on the last page too).
- Creation of fields, webhooks and triggers; updates of triggers, fields (options
  left out are gone), organizations and users (``*_fields`` merged key by key).
- 401 ``Couldn't authenticate you`` without the API user's ``email/token`` basic auth
  (`revoke` turns the token off); 403 on admin endpoints for a non-admin API user.
- 429 with ``Retry-After`` and the recorded plain-text body (`Twin.throttle`).

Webhooks, as Zendesk sends them after a change made through `Agent` actions:

- **Triggers** fire on creation (``update_type is Create``) and on change (``Change``),
  honouring ``current_via_id is_not 5``: an update through the API (via id 5, "Web
  service") — tierdesk's own write-back — fires no such trigger. The body is the
  trigger's JSON text with Zendesk's placeholders rendered: ``{{ticket.id}}``,
  ``{{ticket.created_at_with_timestamp}}`` (ISO 8601), ``{{ticket.requester.email}}``,
  ``{{ticket.organization.id}}``, ``{{ticket.priority}}`` and ``{{ticket.status}}``
  (their display names, "Urgent", "Open"), ``{{ticket.ticket_field_<id>}}`` (a
  drop-down's value, "" when empty or when no field has that id),
  ``{{current_user.email}}``.
- **Event webhooks** (``zen:event-type:ticket.*`` subscriptions): the envelope of
  ``dust-event-webhook-ticket.created.json`` (ids as strings, priority and status in
  capitals, ``zendesk_event_version``), ``ticket.comment_added`` with the comment and
  its author's ``is_staff``; they fire whatever the channel, API updates included.
- Each delivery is signed: ``X-Zendesk-Webhook-Signature`` = base64 HMAC-SHA256 of the
  ``…-Signature-Timestamp`` value + body with the webhook's signing secret (Zendesk's
  "Verifying webhook authenticity"), and carries ``X-Zendesk-Webhook-Id`` and
  ``X-Zendesk-Webhook-Invocation-Id``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.connector.contracts import Api, spec
from tests.shared import VENDOR
from tests.twins.base import Answer, Request, Twin, json_answer

PAYLOADS = VENDOR / "zendesk" / "payloads"
API_VIA = 5  # "Web service (API)" in Zendesk's via types
WEB_VIA = 0  # "Web form": an agent in the agent workspace

# The custom field types (the system ones are subject, description, status, tickettype…).
CUSTOM_TYPES = ("text", "textarea", "tagger", "dropdown", "integer", "decimal", "checkbox", "date")

Deliver = Callable[[str, dict[str, str], bytes], int]


def recorded(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


NOT_FOUND = recorded("zenpy-ticket-update-404-record-not-found.json")
CLOSED = recorded("aaronellington-error-422-record_invalid.json")
TEXT_429 = (PAYLOADS / "aaronellington-error-429-inconsistent.txt").read_text(encoding="utf-8")
CONFLICT = {
    "error": "UpdateConflict",
    "description": "Safe Update prevented the update due to outdated ticket data."
    " Please fetch the latest ticket data and try again.",
}


@dataclass
class Delivery:
    webhook_id: str
    body: dict[str, Any]
    status: int


@dataclass
class ZendeskTwin(Twin):
    """A Zendesk account at ``base``; ``clock`` is the account's now (tickets' times),
    ``deliver`` posts a signed webhook and answers its status."""

    base_url: str = "https://acme.zendesk.com"
    email: str = "ops@acme.example"
    token: str = "zd-token"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    deliver: Deliver | None = None
    strict_paths: bool = False
    account_id: int = 22129848
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    ticket_fields: list[dict[str, Any]] = field(default_factory=list)
    organization_fields: list[dict[str, Any]] = field(default_factory=list)
    user_fields: list[dict[str, Any]] = field(default_factory=list)
    organizations: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=dict)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    revoked: bool = False
    # Ticket id → an agent's edit to make right after the next GET of it is answered:
    # the race a safe update exists for.
    race: dict[int, Callable[[], None]] = field(default_factory=dict)
    _next: int = 90000

    def __post_init__(self) -> None:
        Twin.__init__(self, self.base_url, strict=self.strict_paths)
        # The recorded system fields (Subject, Description, Status, Type…).
        for page in (
            "aaronellington-ticket_fields-list-cursor-page1.json",
            "aaronellington-ticket_fields-list-cursor-page2-last.json",
        ):
            self.ticket_fields += recorded(page)["ticket_fields"]
        self.api_user = self.add_user(self.email, role="admin", name="tierdesk")

    # -- helpers ---------------------------------------------------------------------

    def api_of(self, path: str) -> Api:
        return "zendesk"

    def _id(self) -> int:
        self._next += 1
        return self._next

    def authorized(self, headers: dict[str, str]) -> bool:
        expected = base64.b64encode(f"{self.email}/token:{self.token}".encode()).decode()
        return not self.revoked and headers.get("Authorization") == f"Basic {expected}"

    def unauthorized(self) -> Answer:
        return json_answer(401, {"error": "Couldn't authenticate you"})

    def throttled(self, retry_after: int) -> tuple[dict[str, str], str]:
        headers = {
            "Retry-After": str(retry_after),
            "Content-Type": "text/plain; charset=utf-8",
            "x-rate-limit": "700",
            "x-rate-limit-remaining": "0",
        }
        return headers, TEXT_429

    def url(self, kind: str, record_id: object) -> str:
        return f"{self.base}/api/v2/{kind}/{record_id}.json"

    # -- the directory (as an admin sets it up in Admin Center) ------------------------

    def add_organization(self, org_id: int, name: str, domains: tuple[str, ...] = ()) -> int:
        template = recorded("zenpy-organizations-list-cursor-page1.json")["organizations"][0]
        self.organizations[org_id] = {
            **copy.deepcopy(template),
            "url": self.url("organizations", org_id),
            "id": org_id,
            "name": name,
            "domain_names": list(domains),
            "organization_fields": {f["key"]: None for f in self.organization_fields},
        }
        return org_id

    def add_user(
        self, email: str, *, role: str = "end-user", org: int | None = None, name: str = ""
    ) -> int:
        template = recorded("zenpy-users-list-cursor-page1.json")["users"][0]
        user_id = self._id()
        self.users[user_id] = {
            **copy.deepcopy(template),
            "url": self.url("users", user_id),
            "id": user_id,
            "email": email,
            "name": name or email.split("@", 1)[0],
            "role": role,
            "organization_id": org,
            "user_fields": {f["key"]: None for f in self.user_fields},
        }
        return user_id

    def user_by_email(self, email: str) -> dict[str, Any]:
        return next(u for u in self.users.values() if u["email"].casefold() == email.casefold())

    def add_group(self, name: str) -> int:
        group_id = self._id()
        self.groups[group_id] = name
        return group_id

    def add_ticket_field(
        self, key: str, title: str, options: list[str] | None = None, kind: str = ""
    ) -> int:
        """What an admin creates by hand in Admin Center (not through tierdesk)."""
        created = self._create_ticket_field(
            {
                "key": key,
                "title": title,
                "type": kind or ("tagger" if options else "text"),
                **(
                    {"custom_field_options": [{"name": o, "value": o} for o in options]}
                    if options
                    else {}
                ),
            }
        )
        return int(created["id"])

    def add_event_webhook(self, endpoint: str, events: list[str], secret: str) -> str:
        """An event-subscribed webhook made in Admin Center; its secret is the one the
        account shows the admin (given here so the test knows it)."""
        webhook_id = f"01EVENTS{self._id()}"
        self.webhooks.append(
            {
                "id": webhook_id,
                "name": "events",
                "endpoint": endpoint,
                "http_method": "POST",
                "request_format": "json",
                "status": "active",
                "subscriptions": events,
            }
        )
        self.secrets[webhook_id] = secret
        return webhook_id

    def field_id(self, key: str) -> int:
        return int(next(f["id"] for f in self.ticket_fields if f.get("key") == key))

    def field_value(self, ticket_id: int, key_or_id: str | int) -> Any:
        field_id = key_or_id if isinstance(key_or_id, int) else self.field_id(key_or_id)
        for item in self.tickets[ticket_id]["custom_fields"]:
            if item["id"] == field_id:
                return item["value"]
        return None

    # -- what agents and end users do (each change sends the webhooks Zendesk sends) ----

    def create_ticket(
        self,
        requester: str,
        *,
        fields: dict[str, str] | None = None,
        priority: str | None = None,
        subject: str = "help",
    ) -> int:
        user = self.user_by_email(requester)
        ticket_id = self._id()
        now = iso(self.clock())
        template = recorded("zenpy-ticket-show-200.json")["ticket"]
        ticket = {
            **copy.deepcopy(template),
            "url": self.url("tickets", ticket_id),
            "id": ticket_id,
            "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": now,
            "updated_at": now,
            "subject": subject,
            "raw_subject": subject,
            "priority": priority,
            "status": "new",
            "requester_id": user["id"],
            "submitter_id": user["id"],
            "organization_id": user["organization_id"],
            "custom_fields": [{"id": f["id"], "value": None} for f in self._custom()],
        }
        ticket["fields"] = ticket["custom_fields"]
        self.tickets[ticket_id] = ticket
        self.comments[ticket_id] = []
        self._set_fields(ticket, fields or {})
        self._changed(ticket_id, ["created"], actor=user, via=WEB_VIA)
        return ticket_id

    def update_ticket(
        self,
        ticket_id: int,
        by: str,
        *,
        fields: dict[str, str] | None = None,
        priority: str | None = None,
        status: str | None = None,
        group_id: int | None = None,
        tags: list[str] | None = None,
        via: int = WEB_VIA,
    ) -> None:
        """An edit by ``by``: in the agent workspace, or (``via=API_VIA``) by another
        integration through the API, which fires no ``current_via_id is_not 5`` trigger."""
        ticket = self.tickets[ticket_id]
        changes = []
        if fields:
            self._set_fields(ticket, fields)
            changes.append("custom_field_changed")
        if priority is not None and priority != ticket["priority"]:
            ticket["priority"] = priority
            changes.append("priority_changed")
        if status is not None and status != ticket["status"]:
            ticket["status"] = status
            changes.append("status_changed")
        if group_id is not None:
            ticket["group_id"] = group_id
            changes.append("group_assignment_changed")
        if tags is not None:
            ticket["tags"] = sorted(set(tags))
            changes.append("tags_changed")
        ticket["updated_at"] = iso(self.clock())
        self._changed(ticket_id, changes, actor=self.user_by_email(by), via=via)

    def reply(self, ticket_id: int, by: str, body: str = "On it.", *, public: bool = True) -> None:
        user = self.user_by_email(by)
        ticket = self.tickets[ticket_id]
        comment = self._comment(ticket_id, user, body, public)
        if ticket["status"] == "new" and user["role"] != "end-user":
            ticket["status"] = "open"  # an agent's reply opens a new ticket
        ticket["updated_at"] = iso(self.clock())
        self._changed(ticket_id, ["comment_added"], actor=user, via=WEB_VIA, comment=comment)

    def delete_ticket(self, ticket_id: int, by: str) -> None:
        self.deleted.add(ticket_id)
        ticket = self.tickets[ticket_id]
        ticket["status"] = "deleted"
        self._changed(ticket_id, ["soft_deleted"], actor=self.user_by_email(by), via=WEB_VIA)

    # -- REST ------------------------------------------------------------------------

    ADMIN_ONLY = re.compile(
        r"^/api/v2/(ticket_fields|organization_fields|user_fields|webhooks|trig)"
    )

    def dispatch(self, request: Request) -> Answer:
        if self.ADMIN_ONLY.match(request.route.template) and self.users[self.api_user][
            "role"
        ] not in ("admin",):
            return json_answer(
                403, {"error": "Forbidden", "description": "You do not have access to this page."}
            )
        key = (request.method, request.route.template)
        handlers: dict[tuple[str, str], Callable[[Request], Answer]] = {
            ("GET", "/api/v2/tickets/{ticket_id}"): self._get_ticket,
            ("PUT", "/api/v2/tickets/{ticket_id}"): self._put_ticket,
            ("GET", "/api/v2/ticket_fields"): lambda r: self._page(r, "ticket_fields"),
            ("POST", "/api/v2/ticket_fields"): self._post_ticket_field,
            ("PUT", "/api/v2/ticket_fields/{ticket_field_id}"): self._put_custom_field,
            ("GET", "/api/v2/organization_fields"): lambda r: self._page(r, "organization_fields"),
            ("GET", "/api/v2/user_fields"): lambda r: self._page(r, "user_fields"),
            ("POST", "/api/v2/organization_fields"): self._post_custom_field,
            ("POST", "/api/v2/user_fields"): self._post_custom_field,
            ("PUT", "/api/v2/organization_fields/{organization_field_id}"): self._put_custom_field,
            ("PUT", "/api/v2/user_fields/{user_field_id}"): self._put_custom_field,
            ("GET", "/api/v2/webhooks"): lambda r: self._page(r, "webhooks"),
            ("POST", "/api/v2/webhooks"): self._post_webhook,
            ("GET", "/api/v2/webhooks/{webhook_id}/signing_secret"): self._signing_secret,
            ("GET", "/api/v2/triggers"): lambda r: self._page(r, "triggers"),
            ("POST", "/api/v2/triggers"): self._post_trigger,
            ("PUT", "/api/v2/triggers/{trigger_id}"): self._put_trigger,
            ("GET", "/api/v2/organizations"): lambda r: self._page(r, "organizations"),
            ("GET", "/api/v2/users"): lambda r: self._page(r, "users"),
            ("GET", "/api/v2/organizations/count"): lambda r: self._count("organizations"),
            ("GET", "/api/v2/users/count"): lambda r: self._count("users"),
            ("PUT", "/api/v2/organizations/{organization_id}"): self._put_record,
            ("PUT", "/api/v2/users/{user_id}"): self._put_record,
        }
        handler = handlers.get(key)
        if handler is None:
            return json_answer(404, {"error": "InvalidEndpoint", "description": "Not found"})
        return handler(request)

    def _ticket_of(self, request: Request) -> dict[str, Any] | None:
        raw = request.params["ticket_id"]
        ticket_id = int(raw) if raw.isdigit() else -1
        if ticket_id in self.deleted:
            return None
        return self.tickets.get(ticket_id)

    def _get_ticket(self, request: Request) -> Answer:
        ticket = self._ticket_of(request)
        if ticket is None:
            return json_answer(404, NOT_FOUND)
        answer = json_answer(200, {"ticket": ticket})
        edit = self.race.pop(ticket["id"], None)
        if edit is not None:
            edit()
        return answer

    def _put_ticket(self, request: Request) -> Answer:
        ticket = self._ticket_of(request)
        if ticket is None:
            return json_answer(404, NOT_FOUND)
        wanted = dict(request.body["ticket"])
        if ticket["status"] == "closed":
            return json_answer(422, CLOSED)
        if wanted.pop("safe_update", False) and wanted.get("updated_stamp") != ticket["updated_at"]:
            return json_answer(409, CONFLICT)
        wanted.pop("updated_stamp", None)
        problems = self._invalid(wanted)
        if problems:
            details = {name: [{"description": text}] for name, text in problems.items()}
            return json_answer(
                422,
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": details,
                },
            )
        events: list[dict[str, Any]] = []
        changes: list[str] = []
        for item in wanted.pop("custom_fields", []):
            events.append(self._set_field(ticket, int(item["id"]), item["value"]))
            changes.append("custom_field_changed")
        for name in ("priority", "group_id", "status"):
            if name in wanted and wanted[name] != ticket[name]:
                events.append(
                    {
                        "type": "Change",
                        "field_name": name,
                        "value": wanted[name],
                        "previous_value": ticket[name],
                    }
                )
                ticket[name] = wanted.pop(name)
                changes.append(f"{name.removesuffix('_id')}_changed")
        if "tags" in wanted:
            ticket["tags"] = sorted(set(wanted.pop("tags")))
            changes.append("tags_changed")
        comment = None
        if "comment" in wanted:
            note = wanted.pop("comment")
            comment = self._comment(
                ticket["id"], self.users[self.api_user], note["body"], note.get("public", True)
            )
            changes.append("comment_added")
        ticket["updated_at"] = iso(self.clock())
        self._changed(
            ticket["id"], changes, actor=self.users[self.api_user], via=API_VIA, comment=comment
        )
        audit = {
            "id": self._id(),
            "ticket_id": ticket["id"],
            "created_at": ticket["updated_at"],
            "author_id": self.api_user,
            "metadata": {"system": {}, "custom": {}},
            "events": [{"id": self._id(), **e} for e in events],
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
        }
        return json_answer(200, {"ticket": ticket, "audit": audit})

    def _invalid(self, wanted: dict[str, Any]) -> dict[str, str]:
        problems = {}
        known = {f["id"]: f for f in self._custom()}
        for item in wanted.get("custom_fields", []):
            spec_ = known.get(int(item["id"]))
            if spec_ is None:
                problems[f"custom_field_{item['id']}"] = "no such ticket field"
            elif spec_["type"] == "tagger" and item["value"] not in (
                None,
                "",
                *(o["value"] for o in spec_.get("custom_field_options") or []),
            ):
                problems[spec_["title"]] = f"{item['value']!r} is not a valid option"
        group = wanted.get("group_id")
        if group is not None and int(group) not in self.groups:
            problems["group"] = f"group {group} does not exist"
        return problems

    def _page(self, request: Request, kind: str) -> Answer:
        records: list[dict[str, Any]]
        if kind in ("organizations", "users"):
            records = sorted(getattr(self, kind).values(), key=lambda r: r["id"])
        else:
            records = getattr(self, kind)
        size = int(request.arg("page[size]") or "100")
        start = int(request.arg("page[after]") or "0")
        page = records[start : start + size]
        more = start + size < len(records)
        after = str(start + len(page))
        link = f"{self.base}/api/v2/{kind}.json?page%5Bsize%5D={size}&page%5Bafter%5D="
        return json_answer(
            200,
            {
                kind: page,
                "meta": {"has_more": more, "after_cursor": after, "before_cursor": str(start)},
                # As recorded: links.next is there on the last page too.
                "links": {"prev": link + str(max(start - size, 0)), "next": link + after},
            },
        )

    def _count(self, kind: str) -> Answer:
        refreshed = iso(self.clock())
        return json_answer(
            200, {"count": {"value": len(getattr(self, kind)), "refreshed_at": refreshed}}
        )

    def _custom(self) -> list[dict[str, Any]]:
        return [f for f in self.ticket_fields if f.get("type") in CUSTOM_TYPES]

    def _create_ticket_field(self, wanted: dict[str, Any]) -> dict[str, Any]:
        example = spec("zendesk")["components"]["examples"]["TicketFieldResponseExample"]
        field_id = self._id()
        created = {
            **copy.deepcopy(example["value"]["ticket_field"]),
            **wanted,
            "id": field_id,
            "url": self.url("ticket_fields", field_id),
            "removable": True,
            "active": True,
        }
        created["raw_title"] = created["title_in_portal"] = created["title"]
        if wanted.get("custom_field_options"):
            created["custom_field_options"] = [
                {**o, "id": self._id(), "raw_name": o["name"]}
                for o in wanted["custom_field_options"]
            ]
        self.ticket_fields.append(created)
        for ticket in self.tickets.values():
            ticket["custom_fields"].append({"id": field_id, "value": None})
        return created

    def _post_ticket_field(self, request: Request) -> Answer:
        wanted = request.body["ticket_field"]
        if wanted.get("key") and any(f.get("key") == wanted["key"] for f in self.ticket_fields):
            return json_answer(
                422,
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {"key": [{"description": "Key is already being used"}]},
                },
            )
        return json_answer(201, {"ticket_field": self._create_ticket_field(wanted)})

    def _owner(self, request: Request) -> str:
        for owner in ("ticket", "organization"):
            if f"/{owner}_fields" in request.path:
                return owner
        return "user"

    def _post_custom_field(self, request: Request) -> Answer:
        owner = self._owner(request)
        wanted = request.body[f"{owner}_field"]
        if wanted["type"] == "dropdown" and not wanted.get("custom_field_options"):
            return json_answer(
                422,
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {"custom_field_options": [{"description": "is required"}]},
                },
            )
        example = spec("zendesk")["components"]["examples"][
            f"{owner.capitalize()}FieldCreateResponseExample"
        ]["value"][f"{owner}_field"]
        created = {**copy.deepcopy(example), **wanted, "id": self._id()}
        created["raw_title"] = created["title"]
        if wanted.get("custom_field_options"):
            created["custom_field_options"] = [
                {**o, "id": self._id(), "raw_name": o["name"]}
                for o in wanted["custom_field_options"]
            ]
        getattr(self, f"{owner}_fields").append(created)
        records = self.organizations if owner == "organization" else self.users
        for record in records.values():
            record[f"{owner}_fields"].setdefault(created["key"], None)
        return json_answer(201, {f"{owner}_field": created})

    def _put_custom_field(self, request: Request) -> Answer:
        owner = self._owner(request)
        changed = request.body[f"{owner}_field"]
        field_id = int(request.path.removesuffix(".json").rsplit("/", 1)[1])
        found = next((f for f in getattr(self, f"{owner}_fields") if f["id"] == field_id), None)
        if found is None:
            return json_answer(404, NOT_FOUND)
        if "custom_field_options" in changed:
            # Zendesk replaces the options: those an update leaves out are gone.
            found["custom_field_options"] = [
                {**o, "id": o.get("id") or self._id(), "raw_name": o["name"]}
                for o in changed["custom_field_options"]
            ]
        found.update({k: v for k, v in changed.items() if k != "custom_field_options"})
        return json_answer(200, {f"{owner}_field": found})

    def _post_webhook(self, request: Request) -> Answer:
        wanted = request.body["webhook"]
        webhook_id = f"01HTWIN{self._id()}"
        created = {**wanted, "id": webhook_id, "created_by": str(self.api_user)}
        self.webhooks.append(created)
        self.secrets[webhook_id] = base64.b64encode(uuid.uuid4().bytes * 2).decode()
        return json_answer(201, {"webhook": created})

    def _signing_secret(self, request: Request) -> Answer:
        webhook_id = request.params["webhook_id"]
        if webhook_id not in self.secrets:
            return json_answer(404, NOT_FOUND)
        return json_answer(
            200, {"signing_secret": {"algorithm": "SHA256", "secret": self.secrets[webhook_id]}}
        )

    def _post_trigger(self, request: Request) -> Answer:
        created = {**request.body["trigger"], "id": self._id()}
        created.setdefault("active", True)
        self.triggers.append(created)
        return json_answer(201, {"trigger": created})

    def _put_trigger(self, request: Request) -> Answer:
        trigger_id = int(request.params["trigger_id"])
        found = next((t for t in self.triggers if t["id"] == trigger_id), None)
        if found is None:
            return json_answer(404, NOT_FOUND)
        found.update(request.body["trigger"])
        return json_answer(200, {"trigger": found})

    def _put_record(self, request: Request) -> Answer:
        owner = "organization" if request.route.template.startswith("/api/v2/org") else "user"
        records = self.organizations if owner == "organization" else self.users
        record = records.get(int(request.params[f"{owner}_id"]))
        if record is None:
            return json_answer(404, NOT_FOUND)
        changed = request.body[owner]
        key = f"{owner}_fields"
        known = {f["key"] for f in getattr(self, key)}
        unknown = set(changed.get(key) or {}) - known
        if unknown:
            return json_answer(
                422,
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {key: [{"description": f"unknown fields {sorted(unknown)}"}]},
                },
            )
        record[key] = {**record[key], **(changed.get(key) or {})}
        record.update({k: v for k, v in changed.items() if k != key})
        return json_answer(200, {owner: record})

    # -- changes and what they send -------------------------------------------------

    def _set_fields(self, ticket: dict[str, Any], fields: dict[str, str]) -> None:
        for key, value in fields.items():
            self._set_field(ticket, self.field_id(key), value)

    def _set_field(self, ticket: dict[str, Any], field_id: int, value: Any) -> dict[str, Any]:
        for item in ticket["custom_fields"]:
            if item["id"] == field_id:
                before, item["value"] = item["value"], value
                return {
                    "type": "Change",
                    "field_name": str(field_id),
                    "value": value,
                    "previous_value": before,
                }
        raise KeyError(field_id)

    def _comment(
        self, ticket_id: int, user: dict[str, Any], body: str, public: bool
    ) -> dict[str, Any]:
        comment = {
            "id": self._id(),
            "body": body,
            "public": public,
            "author_id": user["id"],
            "created_at": iso(self.clock()),
        }
        self.comments[ticket_id].append(comment)
        return comment

    def _changed(
        self,
        ticket_id: int,
        changes: list[str],
        *,
        actor: dict[str, Any],
        via: int,
        comment: dict[str, Any] | None = None,
    ) -> None:
        if not changes:
            return
        ticket = self.tickets[ticket_id]
        created = changes == ["created"]
        # Triggers run on creation and update, not on deletion.
        for trigger in [] if "soft_deleted" in changes else self.triggers:
            if trigger.get("active", True) and self._matches(trigger, created, via):
                for action in trigger.get("actions") or []:
                    if action.get("field") == "notification_webhook":
                        webhook_id, text = action["value"]
                        body = json.loads(self._render(text, ticket, actor))
                        self._send(str(webhook_id), body)
        for name in changes:
            event_type = f"zen:event-type:ticket.{name}"
            for hook in self.webhooks:
                if event_type in (hook.get("subscriptions") or []) and hook["status"] == "active":
                    event: dict[str, Any] = {}
                    if name == "comment_added" and comment is not None:
                        event = {
                            "comment": {
                                "id": str(comment["id"]),
                                "body": comment["body"],
                                "is_public": comment["public"],
                                "author": {
                                    "id": str(actor["id"]),
                                    "is_staff": actor["role"] != "end-user",
                                    "name": actor["name"],
                                },
                            }
                        }
                    self._send(hook["id"], self._envelope(ticket, event_type, event, actor))

    def _matches(self, trigger: dict[str, Any], created: bool, via: int) -> bool:
        for condition in (trigger.get("conditions") or {}).get("all") or []:
            name, op, value = condition["field"], condition["operator"], str(condition["value"])
            if name == "update_type":
                ok = (value == "Create") == created
            elif name == "current_via_id":
                ok = (str(via) == value) == (op == "is")
            else:
                raise AssertionError(f"the twin evaluates no {name} condition")
            if not ok:
                return False
        return True

    def _render(self, text: str, ticket: dict[str, Any], actor: dict[str, Any]) -> str:
        requester = self.users[ticket["requester_id"]]
        values = {
            "ticket.id": str(ticket["id"]),
            "ticket.created_at_with_timestamp": ticket["created_at"],
            "ticket.updated_at_with_timestamp": ticket["updated_at"],
            "ticket.requester.email": requester["email"],
            "ticket.organization.id": str(ticket["organization_id"] or ""),
            "ticket.priority": (ticket["priority"] or "-").capitalize(),
            "ticket.status": ticket["status"].capitalize(),
            "current_user.email": actor["email"],
        }

        def placeholder(match: re.Match[str]) -> str:
            name = match[1].strip()
            if name.startswith("ticket.ticket_field_"):
                raw = name.removeprefix("ticket.ticket_field_")
                value = self.field_value(ticket["id"], int(raw)) if raw.isdigit() else None
                return json.dumps(str(value) if value is not None else "")[1:-1]
            if name not in values:
                raise AssertionError(f"the twin renders no {{{{{name}}}}} placeholder")
            return json.dumps(values[name])[1:-1]

        return re.sub(r"\{\{([^}]+)\}\}", placeholder, text)

    def _envelope(
        self, ticket: dict[str, Any], event_type: str, event: dict[str, Any], actor: dict[str, Any]
    ) -> dict[str, Any]:
        envelope: dict[str, Any] = recorded("dust-event-webhook-ticket.created.json")

        def text(value: Any) -> str | None:
            return None if value is None else str(value)

        envelope |= {
            "account_id": self.account_id,
            "event": event,
            "id": str(uuid.uuid4()),
            "subject": f"zen:ticket:{ticket['id']}",
            "time": self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
            "type": event_type,
        }
        envelope["detail"] |= {
            "actor_id": str(actor["id"]),
            "assignee_id": text(ticket["assignee_id"]),
            "created_at": ticket["created_at"],
            "group_id": text(ticket["group_id"]),
            "id": str(ticket["id"]),
            "organization_id": text(ticket["organization_id"]),
            "priority": (ticket["priority"] or "").upper() or None,
            "requester_id": str(ticket["requester_id"]),
            "status": ticket["status"].upper(),
            "subject": ticket["subject"],
            "submitter_id": str(ticket["submitter_id"]),
            "tags": ticket["tags"],
            "type": text(ticket["type"]),
            "updated_at": ticket["updated_at"],
        }
        return envelope

    def _send(self, webhook_id: str, body: dict[str, Any]) -> None:
        hook = next(h for h in self.webhooks if h["id"] == webhook_id)
        if hook.get("status") != "active" or self.deliver is None:
            return
        raw = json.dumps(body).encode()
        # The timestamp is the wall clock's: the receiver checks it against its own.
        stamp = iso(datetime.now(UTC))
        digest = hmac.new(self.secrets[webhook_id].encode(), stamp.encode() + raw, hashlib.sha256)
        headers = {
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Id": webhook_id,
            "X-Zendesk-Webhook-Invocation-Id": str(self._id()),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Signature": base64.b64encode(digest.digest()).decode(),
        }
        status = self.deliver(hook["endpoint"], headers, raw)
        self.deliveries.append(Delivery(webhook_id, body, status))
