"""The Zendesk sidebar's read-only view of one ticket's decision.

``GET /api/tickets/<tenant>/<ticket>/decision`` answers the latest decision audited
for the ticket (tier, severity, first-response due time, named contact, coverage,
the reasons and explanation lines, the mappings version, when it was decided).

Authorisation: ``Authorization: Bearer <token>`` where the token is one of the
tenant's app tokens (``TIERDESK_TENANT_<ID>_APP_TOKEN``, the sidebar app's secure
setting) or the deployment's ``TIERDESK_API_TOKEN``. A tenant's app token reads that
tenant's tickets and nothing else; there is no loopback exemption (the sidebar is
always called through Zendesk's proxy, from another host).

Order of answers: 401 before anything else, so that a caller without a valid token
learns nothing, not even which tenants exist; then 404 for an unknown tenant or a
ticket without a decision.

No CORS headers, on purpose. The app calls this through ZAF's ``client.request()``,
which routes non-Zendesk URLs through Zendesk's proxy by default ("By default, the
request() method routes requests to non-Zendesk URLs through a Zendesk proxy server",
https://developer.zendesk.com/documentation/apps/getting-started/making-api-requests-from-a-zendesk-app/),
and a secure setting such as the app token is only filled in by that proxy (manifest
reference, ``secure``:
https://developer.zendesk.com/documentation/apps/app-developer-guide/manifest/).
So no browser ever calls this endpoint across origins; an
``Access-Control-Allow-Origin`` answer would only let other pages read decisions.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from entitlements.tickets import format_instant
from store import AuditRow, Store, StoreError
from webhooks.errors import ApiError
from webhooks.settings import Secret, Settings, Tenant

blueprint = Blueprint("sidebar", __name__)

# The worker writes "mappings <version>" as the note of every decided audit row.
_MAPPINGS_NOTE = "mappings "


MAX_TICKET_ID = 128  # Jira keys and Zendesk ids are far shorter


@blueprint.get("/api/tickets/<tenant_id>/<ticket_id>/decision")
def ticket_decision(tenant_id: str, ticket_id: str) -> Response:
    settings: Settings = current_app.extensions["tierdesk.settings"]
    tenant = settings.tenants.get(tenant_id)
    _authorise(tenant, settings.api_token)
    if tenant is None:
        raise ApiError(404, "unknown_tenant", f"no tenant called {tenant_id!r}")
    if len(ticket_id) > MAX_TICKET_ID or not ticket_id.isprintable():
        # No helpdesk names a ticket so; a NUL would not even reach PostgreSQL.
        raise ApiError(404, "no_decision", "no such ticket")
    store: Store = current_app.extensions["tierdesk.store"]
    try:
        rows = store.history(ticket_id, tenant.id)
    except StoreError:
        raise ApiError(
            503, "store_unavailable", "the store cannot be read; retry", retry_after=5
        ) from None
    row = latest_decision(rows)
    if row is None:
        raise ApiError(
            404, "no_decision", f"tierdesk has not decided ticket {ticket_id!r} of {tenant.id} yet"
        )
    return jsonify(decision_view(tenant.id, row))


@blueprint.after_request
def _headers(response: Response) -> Response:
    # A decision names people and contracts: no shared cache keeps it. RFC 6750 §3:
    # a 401 says which scheme it wants.
    response.headers["Cache-Control"] = "no-store"
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="tierdesk"'
    return response


def _authorise(tenant: Tenant | None, api_token: Secret | None) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    tokens = [*(tenant.app_tokens if tenant else ()), *([api_token] if api_token else [])]
    if scheme.lower() != "bearer" or not token or not _any_matches(token, tokens):
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <the tenant's app token (TIERDESK_TENANT_<ID>_APP_TOKEN)>",
        )


def _any_matches(token: str, tokens: Iterable[Secret]) -> bool:
    # Every token is compared (no early exit), each in constant time: timing tells
    # nothing about which token, or whether the global one, matched.
    matched = False
    for secret in tokens:
        if secret:
            matched |= hmac.compare_digest(secret.reveal().encode(), token.encode())
    return matched


def latest_decision(rows: Iterable[AuditRow]) -> AuditRow | None:
    """The newest audit row that carries a decision (echoes, superseded snapshots and
    partial events are audited without one)."""
    found = None
    for row in rows:  # history() is in audit order, oldest first
        if row.decision:
            found = row
    return found


def decision_view(tenant: str, row: AuditRow) -> dict[str, Any]:
    """What the sidebar shows, from one audit row (its decision is `Decision.to_json`)."""
    decision: dict[str, Any] = json.loads(row.decision or "{}")
    contact = decision.get("named_contact") or {}
    note = row.note or ""
    return {
        "tenant": tenant,
        "ticket": decision.get("ticket", row.ticket),
        "ticket_key": row.ticket_key,
        "tier": decision.get("tier"),
        "tier_name": decision.get("tier_name"),
        "account_tier": decision.get("account_tier"),
        "fallback": decision.get("fallback"),
        "account": decision.get("account"),
        "account_name": decision.get("account_name"),
        "severity": decision.get("severity"),
        "severity_name": decision.get("severity_name"),
        "target": decision.get("target"),
        "calendar": decision.get("calendar"),
        "first_response_due": decision.get("first_response_due"),
        "named_contact": {"status": contact.get("status"), "reason": contact.get("reason")},
        "covered": decision.get("covered"),
        "coverage": "covered" if decision.get("covered") else "not_covered",
        "team": decision.get("team"),
        # Where the first-response clock stands (on_track, at_risk, breached, met,
        # missed) and the first response, once there is one.
        "sla": decision.get("sla"),
        "first_response": decision.get("first_response"),
        "escalation_level": decision.get("escalation_level"),
        "reasons": list(decision.get("reasons") or []),
        "because": list(decision.get("explanation") or []),
        "mappings_version": note.removeprefix(_MAPPINGS_NOTE)
        if note.startswith(_MAPPINGS_NOTE)
        else None,
        "decided_at": format_instant(datetime.fromtimestamp(row.at, UTC)),
        "event": row.event_id,
    }
