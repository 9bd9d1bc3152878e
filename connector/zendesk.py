"""Decisions onto Zendesk tickets (Support API ``/api/v2``).

One read, then at most one write. The read is needed because the safe update takes
the ticket's ``updated_at`` as ``updated_stamp``, and because a single-ticket update
sets tags as a whole set (``additional_tags``/``remove_tags`` exist only for bulk
updates), so tierdesk computes the set from the fresh ticket, keeping every tag of the
agents'. The PUT carries only what differs. A 409 means an agent changed the ticket
in between: read again and render again, up to three times.
"""

from __future__ import annotations

from typing import Any

from connector.errors import Conflict, NotFound
from connector.fields import FieldMap
from connector.http import HttpClient, TicketWindow
from connector.render import (
    Outcome,
    field_values,
    keep_agents_priority,
    material_change,
    note,
    our_tags,
    routed_group,
)
from entitlements.decide import Decision

PRIORITY_ORDER = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
MAX_CONFLICTS = 3


def render(
    decision: Decision,
    fresh: dict[str, Any],
    previous: dict[str, Any] | None,
    update: dict[str, Any],
    fields: FieldMap,
    tag_prefix: str,
    locale: str = "en",
) -> dict[str, Any]:
    """The ticket properties to PUT: only those that differ from ``fresh``; the
    internal note in ``locale``."""
    out: dict[str, Any] = {}
    current = {str(f.get("id")): f.get("value") for f in fresh.get("custom_fields") or []}
    changed = [
        {"id": _id(field_id), "value": value}
        for field_id, value in field_values(decision, fields).items()
        if (current.get(field_id) or "") != value
    ]
    if changed:
        out["custom_fields"] = changed
    priority = fresh.get("priority")
    if priority != decision.priority and not keep_agents_priority(
        priority, decision.priority, previous, PRIORITY_ORDER
    ):
        out["priority"] = decision.priority
    group = routed_group(fields, decision.escalation_level, decision.team)
    current_group = str(fresh["group_id"]) if fresh.get("group_id") is not None else None
    before = previous or {}
    ours_before = routed_group(fields, before.get("escalation_level"), before.get("team"))
    # Route only a ticket nobody has routed by hand since tierdesk did.
    if group and current_group != group and current_group in (None, ours_before):
        out["group_id"] = _id(group)
    tags = set(fresh.get("tags") or [])
    wanted = (tags - our_tags(tags, tag_prefix)) | set(decision.tags)
    if wanted != tags:
        out["tags"] = sorted(wanted)
    if out and material_change(update, previous):
        out["comment"] = {"body": note(decision, previous, locale), "public": False}
    return out


def _id(value: str) -> int | str:
    return int(value) if value.isdigit() else value


class ZendeskTickets:
    def __init__(
        self,
        client: HttpClient,
        fields: FieldMap,
        tag_prefix: str,
        window: TicketWindow | None = None,
        locale: str = "en",  # the internal note's language (the tenant's)
    ) -> None:
        self.locale = locale
        self.client = client
        self.fields = fields
        self.tag_prefix = tag_prefix
        # Zendesk allows 30 updates of one ticket in 10 minutes; past that every PUT is
        # refused. Share one window per tenant between callers.
        self.window = window or TicketWindow(
            client.policy.ticket_updates_per_window, client.policy.ticket_window_s
        )

    def apply(
        self,
        ticket_id: str,
        decision: Decision,
        update: dict[str, Any],
        previous: dict[str, Any] | None,
    ) -> Outcome:
        path = f"/api/v2/tickets/{ticket_id}"
        calls = 0
        for _ in range(MAX_CONFLICTS):
            try:
                calls += 1
                fresh = (self.client.request("GET", path) or {}).get("ticket") or {}
                if fresh.get("status") == "closed":
                    # Zendesk refuses any update of a closed ticket (422 RecordInvalid).
                    return Outcome("ticket_closed", {}, calls, "closed tickets cannot change")
                body = render(
                    decision, fresh, previous, update, self.fields, self.tag_prefix, self.locale
                )
                if not body:
                    return Outcome("unchanged", {}, calls, "the ticket already shows this")
                body |= {"safe_update": True, "updated_stamp": fresh.get("updated_at")}
                self.window.claim(ticket_id)  # RateLimited (transient) when it is full
                calls += 1
                self.client.request("PUT", path, json_body={"ticket": body})
                return Outcome("written", body, calls)
            except Conflict:
                continue  # an agent changed it in between: read and render again
            except NotFound:
                return Outcome("ticket_gone", {}, calls, "the ticket no longer exists (404)")
        raise Conflict(f"PUT {path}: the ticket changed under every one of {MAX_CONFLICTS} tries")
