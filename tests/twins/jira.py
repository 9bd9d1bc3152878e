"""A stateful twin of a Jira Cloud site with Jira Service Management.

State: issues (fields, labels, status, comments, worklogs; deleted ones remembered),
fields (the spec's example system fields, the JSM ``Organizations`` field and the
custom fields an admin or tierdesk made), the edit screen (which fields an update may
set), users (``atlassian`` agents, ``customer`` portal accounts, with whether their
email is visible), JSM organizations with their entity properties and customers, and
admin webhooks with their secrets.

REST (every request checked against the platform or JSM spec first: `tests.twins.base`):

- ``PUT /rest/api/3/issue/{key}``: a field that is unknown or not on the edit screen
  is refused with Jira's 400 (``"Field 'x' cannot be set. It is not on the
  appropriate screen, or unknown."``), an unknown priority too; a deleted or unknown
  issue is 404 (``Issue does not exist or you do not have permission to see it.``).
  Labels change through ``update.labels`` add/remove; 204.
- ``POST /rest/servicedeskapi/request/{key}/comment``: 201 with a ``CommentDTO``;
  `refuse_comments` makes it answer 403 as JSM does for an account without the
  service desk agent permission.
- ``GET /rest/api/3/user?accountId=``: the user (the email only when visible to the
  API user: `User.email_visible`); ``GET /rest/api/3/myself``: the API user.
- Fields (``GET/POST /rest/api/3/field``), admin webhooks
  (``/rest/webhooks/1.0/webhook``), ``servicedeskapi`` organizations (paged with
  ``start``/``limit``/``isLastPage``), their ``property/{key}`` and ``user`` lists.
- 401 without the API user's basic auth (`revoke`); 429 with ``Retry-After`` and the
  ``X-RateLimit-*`` headers Atlassian's rate-limiting guide lists (vendor/README.md).

Webhooks, as Jira Cloud sends them to admin webhooks subscribed to the event (and whose
JQL filter, ``project = X`` / ``project in (X, Y)``, matches): ``jira:issue_created``,
``jira:issue_updated`` (with the changelog), ``jira:issue_deleted``,
``comment_created/updated/deleted`` (with ``jsdPublic``), ``worklog_created/updated/
deleted`` (the worklog only), each signed ``X-Hub-Signature: sha256=<hex HMAC>`` and
carrying ``X-Atlassian-Webhook-Identifier``. Jira Cloud hides a person's email in
webhooks unless their profile shows it: ``reporter`` and ``user`` carry the
``accountId`` and ``displayName`` only (Atlassian's GDPR migration guide: email is
returned only where the user's profile visibility allows it).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.connector.contracts import Api, spec
from tests.shared import VENDOR
from tests.twins.base import Answer, Request, Twin, json_answer

PAYLOADS = VENDOR / "jsm" / "payloads"
NO_ISSUE = {
    "errorMessages": ["Issue does not exist or you do not have permission to see it."],
    "errors": {},
}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
STATUSES = {
    "Waiting for support": ("10001", "new"),
    "In Progress": ("3", "indeterminate"),
    "Resolved": ("10002", "done"),
}
ORGANIZATIONS_FIELD = "customfield_10002"  # JSM's built-in Organizations field

Deliver = Callable[[str, dict[str, str], bytes], int]


def recorded(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def jira_time(moment: datetime) -> str:
    """Jira's date-time: milliseconds and an offset without a colon."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


@dataclass
class User:
    account_id: str
    email: str
    name: str
    account_type: str = "customer"  # "atlassian" for licensed agents, "app" for apps
    email_visible: bool = False  # Jira Cloud's default profile visibility hides it

    def json(self, base: str, *, with_email: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "self": f"{base}/rest/api/3/user?accountId={self.account_id}",
            "accountId": self.account_id,
            "displayName": self.name,
            "active": True,
            "timeZone": "Europe/London",
            "accountType": self.account_type,
        }
        if with_email:
            doc["emailAddress"] = self.email
        return doc


@dataclass
class Delivery:
    event: str
    body: dict[str, Any]
    status: int


@dataclass
class JiraTwin(Twin):
    base_url: str = "https://acme.atlassian.net"
    email: str = "ops@acme.example"
    token: str = "jira-token"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    deliver: Deliver | None = None
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → issue
    deleted: set[str] = field(default_factory=set)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fields: list[dict[str, Any]] = field(default_factory=list)
    screen: set[str] = field(default_factory=set)  # field ids on the edit screen
    users: dict[str, User] = field(default_factory=dict)
    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)  # org → key → value
    customers: dict[str, list[str]] = field(default_factory=dict)  # org → account ids
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    refuse_comments: bool = False
    revoked: bool = False
    _next: int = 10100

    def __post_init__(self) -> None:
        Twin.__init__(self, self.base_url)
        example = spec("jira")["paths"]["/rest/api/3/field"]["get"]["responses"]["200"]
        self.fields = json.loads(example["content"]["application/json"]["example"])
        self.fields.append(self._field_record(ORGANIZATIONS_FIELD, "Organizations", "sd-org"))
        self.screen = {"summary", "priority", "labels", ORGANIZATIONS_FIELD}
        self.api_user = self.add_user("ops-account", self.email, "tierdesk", "atlassian")

    def api_of(self, path: str) -> Api:
        return "jsm" if path.startswith("/rest/servicedeskapi/") else "jira"

    def _id(self) -> int:
        self._next += 1
        return self._next

    def authorized(self, headers: dict[str, str]) -> bool:
        expected = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        return not self.revoked and headers.get("Authorization") == f"Basic {expected}"

    def unauthorized(self) -> Answer:
        return (
            401,
            {"Content-Type": "text/plain"},
            "Client must be authenticated to access this resource.",
        )

    def throttled(self, retry_after: int) -> tuple[dict[str, str], str]:
        reset = (datetime.now(UTC) + timedelta(seconds=retry_after)).strftime("%Y-%m-%dT%H:%MZ")
        return {
            "Retry-After": str(retry_after),
            "X-RateLimit-Reset": reset,
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "RateLimit-Reason": "jira-burst-based",
        }, ""

    # -- the site, as its admin sets it up --------------------------------------------

    def add_user(
        self, account_id: str, email: str, name: str = "", account_type: str = "customer"
    ) -> str:
        display = name or email.split("@", 1)[0]
        self.users[account_id] = User(account_id, email, display, account_type)
        return account_id

    def add_field(self, field_id: str, name: str) -> None:
        """A custom field made in Jira administration, on the edit screen."""
        self.fields.append(self._field_record(field_id, name, "select"))
        self.screen.add(field_id)

    def add_organization(self, org_id: str, name: str, customers: list[str]) -> None:
        template = recorded("go-atlassian-sm-get-organizations.json")["values"][0]
        self.organizations[org_id] = {
            **copy.deepcopy(template),
            "id": org_id,
            "name": name,
            "_links": {"self": f"{self.base}/rest/servicedeskapi/organization/{org_id}"},
        }
        self.customers[org_id] = list(customers)

    def field_named(self, name: str) -> str:
        return str(next(f["id"] for f in self.fields if f["name"] == name))

    def _field_record(self, field_id: str, name: str, kind: str) -> dict[str, Any]:
        number = int(field_id.rsplit("_", 1)[1])
        return {
            "id": field_id,
            "key": field_id,
            "name": name,
            "untranslatedName": name,
            "custom": True,
            "orderable": True,
            "navigable": True,
            "searchable": True,
            "clauseNames": [f"cf[{number}]", name],
            "schema": {"type": "string", "custom": kind, "customId": number},
        }

    # -- what customers and agents do -------------------------------------------------

    def create_issue(
        self,
        reporter: str,
        *,
        organization: str | None,
        priority: str = "Medium",
        values: dict[str, Any] | None = None,
        project: str = "HELP",
    ) -> str:
        issue_id = str(self._id())
        key = f"{project}-{len([k for k in self.issues if k.startswith(project)]) + 1}"
        now = jira_time(self.clock())
        fields: dict[str, Any] = {
            "summary": "help",
            "created": now,
            "updated": now,
            "reporter": reporter,  # an account id; rendered per reader
            "priority": priority,
            "labels": [],
            "status": "Waiting for support",
            ORGANIZATIONS_FIELD: [organization] if organization else [],
            **(values or {}),
        }
        self.issues[key] = {"id": issue_id, "key": key, "project": project, "fields": fields}
        self.comments[key] = []
        self._send("jira:issue_created", key, actor=reporter, changelog=[])
        return key

    def update_issue(self, key: str, by: str, **changes: Any) -> None:
        """An agent's edit in the issue view: fields by id, ``priority`` by name,
        ``status`` by name."""
        issue = self.issues[key]
        items = []
        for name, value in changes.items():
            before = issue["fields"].get(name)
            issue["fields"][name] = value
            items.append(
                {
                    "field": name,
                    "fieldtype": "jira",
                    "fieldId": name,
                    "from": None,
                    "fromString": str(before),
                    "to": None,
                    "toString": str(value),
                }
            )
        issue["fields"]["updated"] = jira_time(self.clock())
        self._send("jira:issue_updated", key, actor=by, changelog=items)

    def comment(self, key: str, by: str, body: str = "On it.", *, public: bool = True) -> str:
        comment = self._new_comment(key, by, body, public)
        self._send("comment_created", key, actor=by, comment=comment)
        return str(comment["id"])

    def log_work(self, key: str, by: str, seconds: int) -> str:
        worklog_id = str(self._id())
        issue = self.issues[key]
        author = self.users[by].json(self.base, with_email=self.users[by].email_visible)
        body = {
            "timestamp": int(self.clock().timestamp() * 1000),
            "webhookEvent": "worklog_created",
            "worklog": {
                "self": f"{self.base}/rest/api/2/issue/{issue['id']}/worklog/{worklog_id}",
                "author": author,
                "updateAuthor": author,
                "comment": "",
                "created": jira_time(self.clock()),
                "updated": jira_time(self.clock()),
                "started": jira_time(self.clock()),
                "timeSpent": f"{seconds // 60}m",
                "timeSpentSeconds": seconds,
                "id": worklog_id,
                "issueId": issue["id"],
            },
        }
        self._deliver_event("worklog_created", key, body)
        return worklog_id

    def delete_issue(self, key: str, by: str) -> None:
        self._send("jira:issue_deleted", key, actor=by, changelog=None)
        self.deleted.add(key)

    # -- REST -----------------------------------------------------------------------

    def dispatch(self, request: Request) -> Answer:
        template = request.route.template
        handlers: dict[tuple[str, str], Callable[[Request], Answer]] = {
            ("PUT", "/rest/api/3/issue/{issueIdOrKey}"): self._put_issue,
            ("GET", "/rest/api/3/issue/{issueIdOrKey}"): self._get_issue,
            ("POST", "/rest/servicedeskapi/request/{issueIdOrKey}/comment"): self._post_comment,
            ("GET", "/rest/api/3/user"): self._get_user,
            ("GET", "/rest/api/3/myself"): lambda r: json_answer(
                200, self.users[self.api_user].json(self.base, with_email=True)
            ),
            ("GET", "/rest/api/3/field"): lambda r: json_answer(200, self.fields),
            ("POST", "/rest/api/3/field"): self._post_field,
            ("GET", "/rest/webhooks/1.0/webhook"): lambda r: json_answer(200, self.webhooks),
            ("POST", "/rest/webhooks/1.0/webhook"): self._post_webhook,
            ("PUT", "/rest/webhooks/1.0/webhook/{webhook_id}"): self._put_webhook,
            ("GET", "/rest/servicedeskapi/organization"): self._orgs,
            (
                "GET",
                "/rest/servicedeskapi/organization/{organizationId}/property/{propertyKey}",
            ): self._get_property,
            (
                "PUT",
                "/rest/servicedeskapi/organization/{organizationId}/property/{propertyKey}",
            ): self._put_property,
            ("GET", "/rest/servicedeskapi/organization/{organizationId}/user"): self._org_users,
        }
        handler = handlers.get((request.method, template))
        if handler is None:
            return json_answer(404, {"errorMessages": [f"the twin serves no {template}"]})
        return handler(request)

    def _issue_of(self, request: Request) -> dict[str, Any] | None:
        wanted = request.params["issueIdOrKey"]
        for key, issue in self.issues.items():
            if wanted in (key, issue["id"]) and key not in self.deleted:
                return issue
        return None

    def _get_issue(self, request: Request) -> Answer:
        issue = self._issue_of(request)
        if issue is None:
            return json_answer(404, NO_ISSUE)
        return json_answer(200, self.issue_json(issue["key"], reader_sees_email=True))

    def _put_issue(self, request: Request) -> Answer:
        issue = self._issue_of(request)
        if issue is None:
            return json_answer(404, NO_ISSUE)
        body = request.body
        errors = {}
        for field_id, value in (body.get("fields") or {}).items():
            if field_id not in self.screen:
                errors[field_id] = (
                    f"Field '{field_id}' cannot be set. It is not on the appropriate screen,"
                    " or unknown."
                )
            elif field_id == "priority" and value.get("name") not in PRIORITIES:
                errors[field_id] = "The priority selected is invalid."
        for field_id in body.get("update") or {}:
            if field_id not in self.screen:
                errors[field_id] = (
                    f"Field '{field_id}' cannot be set. It is not on the appropriate screen,"
                    " or unknown."
                )
        if errors:
            return json_answer(400, {"errorMessages": [], "errors": errors})
        items = []
        fields = issue["fields"]
        for field_id, sent in (body.get("fields") or {}).items():
            value = sent["name"] if field_id == "priority" else sent
            if fields.get(field_id) != value:
                items.append(self._item(field_id, fields.get(field_id), value))
                fields[field_id] = value
        labels = set(fields["labels"])
        for op in (body.get("update") or {}).get("labels", []):
            labels = labels | {op["add"]} if "add" in op else labels - {op["remove"]}
        if labels != set(fields["labels"]):
            before = " ".join(fields["labels"])
            fields["labels"] = sorted(labels)
            items.append(self._item("labels", before, " ".join(fields["labels"])))
        if items:  # Jira sends no issue_updated for an edit that changed nothing
            fields["updated"] = jira_time(self.clock())
            self._send("jira:issue_updated", issue["key"], actor=self.api_user, changelog=items)
        return 204, {}, ""

    def _item(self, field_id: str, before: Any, after: Any) -> dict[str, Any]:
        return {
            "field": field_id,
            "fieldtype": "custom" if field_id.startswith("customfield_") else "jira",
            "fieldId": field_id,
            "from": None,
            "fromString": None if before is None else str(before),
            "to": None,
            "toString": None if after is None else str(after),
        }

    def _post_comment(self, request: Request) -> Answer:
        issue = self._issue_of(request)
        if issue is None:
            return json_answer(404, NO_ISSUE)
        if self.refuse_comments:
            return json_answer(
                403,
                {
                    "errorMessage": "You do not have permission to add a comment to this request.",
                    "i18nErrorMessage": {
                        "i18nKey": "sd.comment.error.permission",
                        "parameters": [],
                    },
                },
            )
        comment = self._new_comment(
            issue["key"], self.api_user, request.body["body"], request.body.get("public", True)
        )
        self._send("comment_created", issue["key"], actor=self.api_user, comment=comment)
        answer = recorded("go-atlassian-sm-get-comment-request.json")
        answer |= {
            "id": str(comment["id"]),
            "body": comment["body"],
            "public": comment["public"],
            "author": {
                k: v
                for k, v in self.users[self.api_user].json(self.base, with_email=True).items()
                if k in answer["author"]
            },
        }
        return json_answer(201, answer)

    def _get_user(self, request: Request) -> Answer:
        user = self.users.get(request.arg("accountId") or "")
        if user is None:
            return json_answer(404, {"errorMessages": ["The user does not exist."], "errors": {}})
        return json_answer(200, user.json(self.base, with_email=True))

    def _post_field(self, request: Request) -> Answer:
        body = request.body
        if any(f["name"] == body["name"] for f in self.fields):
            return json_answer(400, {"errorMessages": [], "errors": {"name": "already exists"}})
        field_id = f"customfield_{self._id()}"
        created = self._field_record(field_id, body["name"], body["type"])
        if body["type"].endswith(":datetime"):
            created["schema"]["type"] = "datetime"
        self.fields.append(created)
        return json_answer(201, created)

    def _post_webhook(self, request: Request) -> Answer:
        body = request.body
        webhook_id = str(self._id())
        created = {k: v for k, v in body.items() if k != "secret"}  # never shown again
        created |= {"self": f"{self.base}/rest/webhooks/1.0/webhook/{webhook_id}", "enabled": True}
        self.webhooks.append(created)
        self.secrets[webhook_id] = body.get("secret", "")
        return json_answer(201, created)

    def _put_webhook(self, request: Request) -> Answer:
        webhook_id = request.params["webhook_id"]
        found = next((w for w in self.webhooks if w["self"].endswith(f"/{webhook_id}")), None)
        if found is None:
            return json_answer(404, {"errorMessages": ["no such webhook"]})
        found.update({k: v for k, v in request.body.items() if k != "secret"})
        if "secret" in request.body:
            self.secrets[webhook_id] = request.body["secret"]
        return json_answer(200, found)

    def _paged(self, request: Request, values: list[Any]) -> Answer:
        start = int(request.arg("start") or "0")
        limit = min(int(request.arg("limit") or "50"), 50)
        page = values[start : start + limit]
        last = start + limit >= len(values)
        links = {"base": f"{self.base}/rest/servicedeskapi", "context": ""}
        if not last:
            links["next"] = f"{self.base}{request.path}?start={start + limit}&limit={limit}"
        if start:
            links["prev"] = f"{self.base}{request.path}?start={max(start - limit, 0)}&limit={limit}"
        return json_answer(
            200,
            {
                "_expands": [],
                "size": len(page),
                "start": start,
                "limit": limit,
                "isLastPage": last,
                "_links": links,
                "values": page,
            },
        )

    def _orgs(self, request: Request) -> Answer:
        return self._paged(request, list(self.organizations.values()))

    def _org_users(self, request: Request) -> Answer:
        org = request.params["organizationId"]
        if org not in self.organizations:
            return json_answer(404, {"errorMessage": "Organization does not exist."})
        people = [
            self.users[a].json(self.base, with_email=True) for a in self.customers.get(org, [])
        ]
        return self._paged(request, people)

    def _get_property(self, request: Request) -> Answer:
        org, key = request.params["organizationId"], request.params["propertyKey"]
        if key not in self.properties.get(org, {}):
            return json_answer(
                404, {"errorMessages": [f"The property '{key}' does not exist."], "errors": {}}
            )
        return json_answer(200, {"key": key, "value": self.properties[org][key]})

    def _put_property(self, request: Request) -> Answer:
        org, key = request.params["organizationId"], request.params["propertyKey"]
        if org not in self.organizations:
            return json_answer(404, {"errorMessage": "Organization does not exist."})
        created = key not in self.properties.setdefault(org, {})
        self.properties[org][key] = request.body
        return 201 if created else 200, {}, ""

    # -- webhooks ----------------------------------------------------------------------

    def _new_comment(self, key: str, by: str, body: str, public: bool) -> dict[str, Any]:
        comment = {
            "id": self._id(),
            "body": body,
            "public": public,
            "author": by,
            "created": jira_time(self.clock()),
        }
        self.comments[key].append(comment)
        return comment

    def issue_json(self, key: str, *, reader_sees_email: bool) -> dict[str, Any]:
        """The issue as REST or a webhook shows it: people by account, with the email
        only where the reader may see it."""
        issue = self.issues[key]
        template = recorded("jira-issue_created_with_custom_fields.json")["issue"]["fields"]
        fields = copy.deepcopy(template)
        raw = issue["fields"]
        reporter = self.users[raw["reporter"]]
        status_id, category = STATUSES[raw["status"]]
        fields |= {k: v for k, v in raw.items() if k.startswith("customfield_")}
        fields |= {
            "summary": raw["summary"],
            "created": raw["created"],
            "updated": raw["updated"],
            "labels": raw["labels"],
            "reporter": reporter.json(
                self.base, with_email=reader_sees_email or reporter.email_visible
            ),
            "creator": reporter.json(
                self.base, with_email=reader_sees_email or reporter.email_visible
            ),
            "assignee": None,
            "priority": {
                "self": f"{self.base}/rest/api/2/priority/{PRIORITIES[raw['priority']]}",
                "name": raw["priority"],
                "id": PRIORITIES[raw["priority"]],
            },
            "status": {
                **fields["status"],
                "self": f"{self.base}/rest/api/2/status/{status_id}",
                "name": raw["status"],
                "id": status_id,
                "statusCategory": {**fields["status"]["statusCategory"], "key": category},
            },
            ORGANIZATIONS_FIELD: [
                {"id": int(org), "name": self.organizations[org]["name"]}
                for org in raw[ORGANIZATIONS_FIELD]
            ],
        }
        fields["project"] = {**fields["project"], "key": issue["project"]}
        return {
            "id": issue["id"],
            "self": f"{self.base}/rest/api/2/{issue['id']}",
            "key": key,
            "fields": fields,
        }

    def _send(
        self,
        event: str,
        key: str,
        *,
        actor: str,
        changelog: list[dict[str, Any]] | None = None,
        comment: dict[str, Any] | None = None,
    ) -> None:
        user = self.users[actor]
        body: dict[str, Any] = {
            "timestamp": int(self.clock().timestamp() * 1000),
            "webhookEvent": event,
        }
        issue = self.issue_json(key, reader_sees_email=False)
        if comment is not None:
            author = self.users[comment["author"]]
            body["comment"] = {
                "self": f"{self.base}/rest/api/2/issue/{issue['id']}/comment/{comment['id']}",
                "id": str(comment["id"]),
                "author": author.json(self.base, with_email=author.email_visible),
                "body": comment["body"],
                "updateAuthor": author.json(self.base, with_email=author.email_visible),
                "created": comment["created"],
                "updated": comment["created"],
                "jsdPublic": comment["public"],
            }
            # Comment events carry a reduced issue (recorded jira-comment_created.json).
            reduced = recorded("jira-comment_created.json")["issue"]["fields"]
            issue["fields"] = {k: issue["fields"][k] for k in reduced if k in issue["fields"]}
        else:
            body["issue_event_type_name"] = {
                "jira:issue_created": "issue_created",
                "jira:issue_deleted": "issue_deleted",
            }.get(event, "issue_generic")
            body["user"] = user.json(self.base, with_email=user.email_visible)
        body["issue"] = issue
        if changelog is not None:
            body["changelog"] = {"id": str(self._id()), "items": changelog}
        self._deliver_event(event, key, body)

    def _deliver_event(self, event: str, key: str, body: dict[str, Any]) -> None:
        if self.deliver is None:
            return
        raw = json.dumps(body).encode()
        for hook in self.webhooks:
            if not hook.get("enabled", True) or event not in hook.get("events", []):
                continue
            if not self._jql_matches(hook, key):
                continue
            webhook_id = hook["self"].rsplit("/", 1)[1]
            secret = self.secrets.get(webhook_id, "")
            headers = {
                "Content-Type": "application/json",
                "X-Atlassian-Webhook-Identifier": str(self._id()),
            }
            if secret:
                digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
                headers["X-Hub-Signature"] = f"sha256={digest}"
            status = self.deliver(hook["url"], headers, raw)
            self.deliveries.append(Delivery(event, body, status))

    def _jql_matches(self, hook: dict[str, Any], key: str) -> bool:
        jql = str((hook.get("filters") or {}).get("issue-related-events-section") or "").strip()
        if not jql:
            return True
        match = re.fullmatch(r"project\s*(?:=\s*(\w+)|in\s*\(([^)]*)\))", jql, re.IGNORECASE)
        if match is None:
            raise AssertionError(f"the twin evaluates no JQL like {jql!r}")
        projects = {p.strip() for p in (match[1] or match[2]).split(",")}
        return self.issues[key]["project"] in projects
