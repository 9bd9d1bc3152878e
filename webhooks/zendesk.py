"""Zendesk webhooks → `TicketEvent`.

Two kinds of webhook an admin can connect, both to ``POST /webhooks/zendesk/<tenant>``:

1. **Event-subscribed** webhooks (``zen:event-type:ticket.*``). Their ``detail`` holds
   the ticket's standard fields, with ``requester_id`` but no requester email and no
   custom fields (``../shared/vendor/zendesk/payloads/dust-event-webhook-*.json``).
2. **Trigger** webhooks whose JSON body is tierdesk's own (`TRIGGER_BODY`, installed by
   ``requirements.json``). It carries everything the rules need through placeholders,
   so it is the path to prefer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from entitlements.ledger import ZENDESK_TOTAL
from entitlements.tickets import OrganizationRef, Ticket
from webhooks.events import (
    Comment,
    Ignored,
    PayloadError,
    TicketEvent,
    Worklog,
    instant,
    need,
    need_object,
    obj,
    text_id,
    zendesk_resolved,
)
from webhooks.intake import receive, translate
from webhooks.settings import Tenant
from webhooks.signatures import verify_zendesk

EVENT_PREFIX = "zen:event-type:"
TRIGGER_SCHEMA = "tierdesk.zendesk.trigger/1"

# The body of the trigger webhook. Zendesk fills the placeholders; an empty one (no
# organization, a custom field left blank) arrives as "". FIELD_ID stands for the
# ticket field ids `tierdesk setup zendesk` creates. Two triggers send it: one on
# creation ("event": "ticket.created"), one on update ("ticket.updated").
TRIGGER_BODY: dict[str, Any] = {
    "schema": TRIGGER_SCHEMA,
    "event": "ticket.updated",
    "ticket": {
        "id": "{{ticket.id}}",
        "created_at": "{{ticket.created_at_with_timestamp}}",
        "updated_at": "{{ticket.updated_at_with_timestamp}}",
        "requester": "{{ticket.requester.email}}",
        "organization_id": "{{ticket.organization.id}}",
        "priority": "{{ticket.priority}}",
        "severity": "{{ticket.ticket_field_SEVERITY_FIELD_ID}}",
        "product": "{{ticket.ticket_field_PRODUCT_FIELD_ID}}",
        "environment": "{{ticket.ticket_field_ENVIRONMENT_FIELD_ID}}",
        "category": "{{ticket.ticket_field_CATEGORY_FIELD_ID}}",
        # The Time Tracking app's "Total time spent (sec)": the hours ledger's entry.
        "time_spent": "{{ticket.ticket_field_TIME_SPENT_FIELD_ID}}",
        # The status's name: a solved ticket's SLA clock stops.
        "status": "{{ticket.status}}",
    },
    "updated_by": "{{current_user.email}}",
}

_DELETED = {"ticket.deleted", "ticket.soft_deleted", "ticket.permanently_deleted"}


def normalize(doc: Any, tenant: Tenant, delivery: str) -> TicketEvent | Ignored:
    """A Zendesk webhook body as a `TicketEvent`, or why it is ignored; `PayloadError`
    names the field when the body is not one Zendesk (or our trigger) sends."""
    body = need_object(doc, "")
    if "type" in body:
        return _event_webhook(body, tenant, delivery)
    if body.get("schema") == TRIGGER_SCHEMA:
        return _trigger_webhook(body, tenant, delivery)
    raise PayloadError(
        "type",
        "required: an event webhook's zen:event-type, or a tierdesk trigger body "
        f'("schema": "{TRIGGER_SCHEMA}")',
    )


def _event_webhook(body: dict[str, Any], tenant: Tenant, delivery: str) -> TicketEvent | Ignored:
    event_type = body["type"]
    if not isinstance(event_type, str) or not event_type.startswith(EVENT_PREFIX):
        raise PayloadError("type", f"expected {EVENT_PREFIX}…")
    name = event_type.removeprefix(EVENT_PREFIX)
    if not name.startswith("ticket."):
        return Ignored(f"{event_type} is not about a ticket")
    detail = need_object(need(body, "detail", ""), "detail")
    ticket_id = text_id(need(detail, "id", "detail."), "detail.id")
    if name == "ticket.created":
        kind = "ticket.created"
    elif name in _DELETED or _is_deleted(detail.get("status")):
        kind = "ticket.deleted"
    elif name == "ticket.comment_added":
        kind = "comment.created"
    else:
        kind = "ticket.updated"
    organization = detail.get("organization_id")
    priority = detail.get("priority")
    ticket = Ticket(
        id=ticket_id,
        created_at=instant(need(detail, "created_at", "detail."), "detail.created_at"),
        organization=OrganizationRef("zendesk", str(organization)) if organization else None,
        # The event API writes priorities in capitals ("HIGH"); the mappings use the
        # REST API's lower case.
        priority=priority.lower() if isinstance(priority, str) and priority else None,
        vendor="zendesk",
    )
    event = obj(body, "event")
    return TicketEvent(
        tenant=tenant.id,
        vendor="zendesk",
        event_id=delivery or (text_id(body["id"], "id") if body.get("id") else ""),
        kind=kind,
        ticket_id=ticket_id,
        ticket_key=ticket_id,
        occurred_at=instant(body.get("time") or detail["created_at"], "time"),
        ticket=ticket,
        actor=f"zendesk-user:{detail['actor_id']}" if detail.get("actor_id") else None,
        comment=_comment(event.get("comment")) if kind == "comment.created" else None,
        changes=(name.removeprefix("ticket."),) if kind == "ticket.updated" else (),
        partial=True,  # no requester email, no custom fields: see the module docstring
        resolved=zendesk_resolved(detail.get("status")),
    )


def _is_deleted(status: Any) -> bool:
    """Zendesk's status of a deleted ticket ("deleted"; "DELETED" in event webhooks):
    its clock stops with no outcome and nothing is written to it."""
    return isinstance(status, str) and status.strip().casefold() == "deleted"


def _comment(value: Any) -> Comment | None:
    if not isinstance(value, dict) or value.get("id") in (None, ""):
        return None
    author = obj(value, "author")
    staff = author.get("is_staff")
    return Comment(
        id=str(value["id"]),
        public=bool(value.get("is_public", True)),
        author=str(author["id"]) if author.get("id") else None,
        # Event webhooks describe the author as {id, is_staff, name}: staff are agents.
        by_agent=staff if isinstance(staff, bool) else None,
    )


def _trigger_webhook(body: dict[str, Any], tenant: Tenant, delivery: str) -> TicketEvent:
    ticket_doc = need_object(need(body, "ticket", ""), "ticket")
    ticket_id = text_id(need(ticket_doc, "id", "ticket."), "ticket.id")
    kind = body.get("event", "ticket.updated")
    if kind not in ("ticket.created", "ticket.updated"):
        raise PayloadError("event", "expected ticket.created or ticket.updated")
    if _is_deleted(ticket_doc.get("status")):
        kind = "ticket.deleted"
    fields = tenant.fields

    def text(key: str) -> str | None:
        value = ticket_doc.get(key)
        if value is not None and not isinstance(value, str | int):
            raise PayloadError(f"ticket.{key}", "expected a string")
        return str(value).strip() or None if value is not None else None

    organization = text("organization_id")
    ticket = Ticket(
        id=ticket_id,
        created_at=instant(need(ticket_doc, "created_at", "ticket."), "ticket.created_at"),
        requester=text("requester"),
        organization=OrganizationRef("zendesk", organization) if organization else None,
        severity=translate(fields, "severity", text("severity")),
        priority=(text("priority") or "").lower() or None,
        product=translate(fields, "product", text("product")),
        environment=translate(fields, "environment", text("environment")),
        category=translate(fields, "category", text("category")),
        vendor="zendesk",
    )
    updated = ticket_doc.get("updated_at") or ticket_doc["created_at"]
    updated_by = body.get("updated_by")
    # Read only where the tenant maps the field: unmapped, the placeholder is sent as ""
    # (or, in an old trigger, not at all).
    total = text("time_spent") if fields.time_spent else None
    if total is not None and not (total.isascii() and total.isdigit()):
        raise PayloadError("ticket.time_spent", "expected a whole number of seconds")
    return TicketEvent(
        tenant=tenant.id,
        vendor="zendesk",
        event_id=delivery,
        kind=kind,
        ticket_id=ticket_id,
        ticket_key=ticket_id,
        occurred_at=instant(updated, "ticket.updated_at"),
        ticket=ticket,
        actor=updated_by if isinstance(updated_by, str) and updated_by else None,
        worklog=Worklog(ZENDESK_TOTAL, int(total)) if total is not None else None,
        resolved=zendesk_resolved(text("status")),
    )


def _verify(tenant: Tenant, body: bytes) -> None:
    verify_zendesk(
        request.headers.get("X-Zendesk-Webhook-Signature"),
        request.headers.get("X-Zendesk-Webhook-Signature-Timestamp"),
        body,
        secrets=tenant.webhook_secrets,
        now=datetime.now(UTC),
    )


blueprint = Blueprint("zendesk", __name__)


@blueprint.post("/webhooks/zendesk/<tenant_id>")
def zendesk_webhook(tenant_id: str) -> Response:
    return receive(
        "zendesk",
        tenant_id,
        verify=_verify,
        normalize=lambda doc, tenant: normalize(
            doc, tenant, request.headers.get("X-Zendesk-Webhook-Invocation-Id", "")
        ),
    )
