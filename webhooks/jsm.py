"""Jira / JSM webhooks → `TicketEvent`.

``POST /webhooks/jsm/<tenant>`` takes Jira admin webhooks (``jira:issue_created``,
``jira:issue_updated``, ``comment_created``, ``worklog_*``; shapes as in
``../shared/vendor/jsm/payloads/``) signed with ``X-Hub-Signature``, and JSM
Automation "Send web request" calls, which cannot sign and send
``Authorization: Bearer <token>`` instead.

Jira names events both prefixed (``jira:issue_updated``) and bare
(``comment_created``). Timestamps are epoch milliseconds, date-times have offsets
without a colon (``+0530``). Worklog events name only ``worklog.issueId``. The ticket's
stable id is the issue id (keys change when an issue moves); the key is kept for people.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from entitlements.tickets import EARLIEST_YEAR, LATEST_YEAR, OrganizationRef, Ticket
from webhooks.events import (
    Comment,
    Ignored,
    PayloadError,
    TicketEvent,
    Worklog,
    arr,
    instant,
    need,
    need_object,
    obj,
    text,
    text_id,
)
from webhooks.intake import receive, translate
from webhooks.settings import Tenant
from webhooks.signatures import verify_bearer, verify_hub

EVENTS = {
    "jira:issue_created": "ticket.created",
    "jira:issue_updated": "ticket.updated",
    "jira:issue_deleted": "ticket.deleted",
    "comment_created": "comment.created",
    "comment_updated": "comment.updated",
    "comment_deleted": "comment.deleted",
    "worklog_created": "worklog.created",
    "worklog_updated": "worklog.updated",
    "jira:worklog_updated": "worklog.updated",
    "worklog_deleted": "worklog.deleted",
}


def normalize(
    doc: Any, tenant: Tenant, delivery: str, *, automation: bool = False
) -> TicketEvent | Ignored:
    body = need_object(doc, "")
    name = body.get("webhookEvent")
    if name is None and automation and isinstance(body.get("issue"), dict):
        kind = "ticket.updated"  # Automation's "Issue data (Jira format)" names no event
    elif name is None:
        raise PayloadError("webhookEvent", "required: the Jira webhook event name")
    elif not isinstance(name, str):
        raise PayloadError("webhookEvent", "expected a string")
    elif name not in EVENTS:
        return Ignored(f"{name} is not an event tierdesk uses")
    else:
        kind = EVENTS[name]
    occurred = _occurred(body)
    actor = _person(body.get("user"))
    if kind.startswith("worklog.") and ("worklog" in body or "issue" not in body):
        return _worklog(body, tenant, delivery, kind, occurred, actor)
    issue = need_object(need(body, "issue", ""), "issue")
    issue_id = text_id(need(issue, "id", "issue."), "issue.id")
    key = text(issue, "key") or issue_id
    fields = obj(issue, "fields")
    comment = obj(body, "comment")
    worklog = None
    if kind.startswith("worklog."):
        # The older form (jira:worklog_updated with the issue and a changelog): the
        # worklog is named only by its id; the changelog's "timespent" is the issue's
        # total, not this worklog's, so its seconds stay unknown here.
        logged = [i for i in arr(obj(body, "changelog"), "items") if isinstance(i, dict)]
        ids = [i.get("to") for i in logged if i.get("field") == "WorklogId" and i.get("to")]
        if not ids:
            raise PayloadError("worklog", "required: the worklog, or a WorklogId change")
        worklog = Worklog(str(ids[0]), None)
    # Comment events carry a reduced issue (no creation time): no decision from them.
    ticket = _ticket(key, fields, tenant) if "created" in fields else None
    if ticket is None and kind in ("ticket.created", "ticket.updated"):
        raise PayloadError("issue.fields.created", "required")
    items = arr(obj(body, "changelog"), "items")
    return TicketEvent(
        tenant=tenant.id,
        vendor="jsm",
        event_id=delivery,
        kind=kind,
        ticket_id=issue_id,
        ticket_key=key,
        occurred_at=occurred,
        ticket=ticket,
        actor=actor or _person(comment.get("author")),
        comment=_comment(comment),
        worklog=worklog,
        changes=tuple(str(i.get("field")) for i in items if isinstance(i, dict) and i.get("field")),
        resolved=_resolved(fields),
        requester_account=_hidden_email(ticket, fields.get("reporter")),
    )


def _resolved(fields: dict[str, Any]) -> bool | None:
    """Done (True) or not (False) by the status's category, which every workflow's
    statuses belong to: ``new``, ``indeterminate`` or ``done``; None when absent."""
    category = obj(obj(fields, "status"), "statusCategory").get("key")
    return {"done": True, "new": False, "indeterminate": False}.get(category or "")


def _ticket(key: str, fields: dict[str, Any], tenant: Tenant) -> Ticket:
    field_map = tenant.fields

    def custom(name: str) -> str | None:
        field_id = getattr(field_map, name)
        return translate(field_map, name, _value(fields.get(field_id))) if field_id else None

    organization = custom("organizations")
    priority = fields.get("priority")
    return Ticket(
        id=key,
        created_at=instant(fields["created"], "issue.fields.created"),
        requester=_email(fields.get("reporter")),
        organization=OrganizationRef("jsm", organization) if organization else None,
        severity=custom("severity"),
        priority=text(priority, "name") if isinstance(priority, dict) else None,
        product=custom("product"),
        environment=custom("environment"),
        category=custom("category"),
        vendor="jsm",
    )


def _value(raw: Any) -> str | None:
    """A custom field's value: text, a number, a select option ({value}), an object with
    an id or name (an organization), or the first of a list of those."""
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if isinstance(raw, dict):
        for key in ("value", "id", "name"):
            if raw.get(key) not in (None, ""):
                return str(raw[key])
        return None
    if isinstance(raw, bool) or raw is None or raw == "":
        return None
    return str(raw) if isinstance(raw, str | int | float) else None


def _email(person: Any) -> str | None:
    if isinstance(person, dict) and isinstance(person.get("emailAddress"), str):
        return person["emailAddress"] or None
    return None  # Jira Cloud hides emails unless the user allows them


def _hidden_email(ticket: Ticket | None, reporter: Any) -> str | None:
    """The reporter's accountId when the payload hides their email (Jira Cloud's default:
    "emailAddress" is left out). Looked up later by the pipeline, never here: the
    intake answers before any vendor call."""
    if ticket is None or ticket.requester or not isinstance(reporter, dict):
        return None
    account = reporter.get("accountId")
    return account if isinstance(account, str) and account else None


def _person(person: Any) -> str | None:
    if not isinstance(person, dict):
        return None
    for key in ("emailAddress", "accountId", "name"):
        if isinstance(person.get(key), str) and person[key]:
            return str(person[key])
    return None


def _comment(comment: Any) -> Comment | None:
    if not isinstance(comment, dict) or comment.get("id") in (None, ""):
        return None
    # jsdPublic is JSM's public/internal flag; a plain Jira comment has none and is public.
    author = comment.get("author")
    # Atlassian accounts are "atlassian" (licensed: agents) or "customer" (JSM portal
    # customers); "app" is an integration, tierdesk's own among them.
    kind = author.get("accountType") if isinstance(author, dict) else None
    return Comment(
        str(comment["id"]),
        bool(comment.get("jsdPublic", True)),
        _person(author),
        by_agent={"atlassian": True, "customer": False, "app": False}.get(kind or ""),
    )


def _worklog(
    body: dict[str, Any],
    tenant: Tenant,
    delivery: str,
    kind: str,
    occurred: datetime,
    actor: str | None,
) -> TicketEvent:
    worklog = need_object(need(body, "worklog", ""), "worklog")
    issue_id = text_id(need(worklog, "issueId", "worklog."), "worklog.issueId")
    seconds = worklog.get("timeSpentSeconds")
    if kind != "worklog.deleted" and (isinstance(seconds, bool) or not isinstance(seconds, int)):
        raise PayloadError("worklog.timeSpentSeconds", "required: a whole number of seconds")
    return TicketEvent(
        tenant=tenant.id,
        vendor="jsm",
        event_id=delivery,
        kind=kind,
        ticket_id=issue_id,
        ticket_key=issue_id,
        occurred_at=occurred,
        actor=actor or _person(worklog.get("updateAuthor") or worklog.get("author")),
        worklog=Worklog(
            text_id(need(worklog, "id", "worklog."), "worklog.id"),
            seconds if kind != "worklog.deleted" else None,
        ),
    )


def _occurred(body: dict[str, Any]) -> datetime:
    stamp = body.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return datetime.now(UTC)  # Automation calls carry no timestamp
    try:
        occurred = datetime.fromtimestamp(stamp / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError("timestamp", "expected epoch milliseconds") from None
    if not EARLIEST_YEAR <= occurred.year <= LATEST_YEAR:
        raise PayloadError("timestamp", f"outside {EARLIEST_YEAR}–{LATEST_YEAR}")
    return occurred


def _verify(tenant: Tenant, body: bytes) -> None:
    if request.headers.get("Authorization") and tenant.bearer_tokens:
        verify_bearer(request.headers.get("Authorization"), tokens=tenant.bearer_tokens)
    else:
        verify_hub(request.headers.get("X-Hub-Signature"), body, secrets=tenant.webhook_secrets)


blueprint = Blueprint("jsm", __name__)


@blueprint.post("/webhooks/jsm/<tenant_id>")
def jsm_webhook(tenant_id: str) -> Response:
    automation = bool(request.headers.get("Authorization"))
    return receive(
        "jsm",
        tenant_id,
        verify=_verify,
        normalize=lambda doc, tenant: normalize(
            doc,
            tenant,
            request.headers.get("X-Atlassian-Webhook-Identifier", ""),
            automation=automation,
        ),
    )
