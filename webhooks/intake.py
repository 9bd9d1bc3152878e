"""The path every webhook takes, whatever the vendor:

tenant (404) → raw body (413) → signature (401) → JSON (400) → normalise (400, or 202
ignored) → durable put in the inbox (503 if the store cannot) → 202 queued, or 200
duplicate.

The acknowledgement leaves only after the event is committed, and before any vendor
call. The tenant comes from the URL, never from the payload. Everything a sender can
send gets a 4xx with a JSON body naming what is wrong; never a 500.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from flask import Response, current_app, request
from werkzeug.exceptions import HTTPException

from store import NewEvent, Store, StoreError
from telemetry.metrics import INTAKE_SECONDS, WEBHOOKS
from webhooks.errors import ApiError
from webhooks.events import Ignored, PayloadError, TicketEvent, log_event, own_write, unstorable
from webhooks.settings import FieldMap, Settings, Tenant
from webhooks.signatures import SignatureError

log = logging.getLogger("tierdesk.intake")

Verify = Callable[[Tenant, bytes], None]
Normalize = Callable[[Any, Tenant], TicketEvent | Ignored]

# In ASCII-escaped JSON (what `TicketEvent.to_json` and json.dumps write), a NUL can only
# appear as \u0000 and a surrogate code point as \ud800-\udfff (lower-case hex): JSON
# with neither holds nothing `unstorable` refuses. (A match may be harmless, such as a
# character outside the BMP written as a pair, or a literal backslash: then
# `unstorable` looks closer.)
_SUSPECT = re.compile(r"\\u(?:0000|d[89a-f])")


def receive(vendor: str, tenant_id: str, *, verify: Verify, normalize: Normalize) -> Response:
    """The answer to one webhook, counted by outcome and timed (``telemetry``)."""
    started = time.perf_counter()
    settings: Settings = current_app.extensions["tierdesk.settings"]
    tenant = settings.tenants.get(tenant_id)
    # Only configured tenants become label values: a stranger posting to random URLs
    # must not grow the metrics without bound.
    label = tenant_id if tenant is not None and tenant.vendor == vendor else ""
    outcome = "internal_error"
    try:
        outcome, response = _receive(vendor, settings, tenant, tenant_id, verify, normalize)
    except ApiError as exc:
        outcome = exc.code
        raise
    except HTTPException as exc:  # werkzeug's own 413 for a declared oversized body
        outcome = (exc.name or "error").lower().replace(" ", "_")
        raise
    finally:
        WEBHOOKS.labels(label, vendor, outcome).inc()
        INTAKE_SECONDS.labels(vendor).observe(time.perf_counter() - started)
    return response


def _receive(
    vendor: str,
    settings: Settings,
    tenant: Tenant | None,
    tenant_id: str,
    verify: Verify,
    normalize: Normalize,
) -> tuple[str, Response]:
    store: Store = current_app.extensions["tierdesk.store"]
    if tenant is None or tenant.vendor != vendor:
        # 404, not 410: a vendor that sees 410 may switch the webhook off for good.
        raise ApiError(404, "unknown_tenant", f"no {vendor} tenant called {tenant_id!r}")
    body = _body(settings.max_body_bytes)
    try:
        verify(tenant, body)
    except SignatureError as exc:
        log_event(
            log, logging.WARNING, tenant=tenant.id, vendor=vendor, outcome="refused", reason=exc
        )
        raise ApiError(401, "invalid_signature", str(exc)) from None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON, bad UTF-8 and integers too long to convert;
        # RecursionError, nesting deeper than the parser goes.
        raise ApiError(
            400, "invalid_json", f"the body is not JSON tierdesk can read: {exc}"
        ) from None
    try:
        result = normalize(doc, tenant)
    except PayloadError as exc:
        raise ApiError(400, "invalid_payload", exc.message, field=exc.field) from None
    if isinstance(result, Ignored):
        # The reason may quote the sender's event name: log_event makes it log-safe.
        log_event(
            log,
            logging.INFO,
            tenant=tenant.id,
            vendor=vendor,
            outcome="ignored",
            reason=result.reason,
        )
        return "ignored", _answer(202, status="ignored", reason=result.reason)
    # Dedupe on what the vendor signed. Delivery ids (X-Zendesk-Webhook-Invocation-Id,
    # X-Atlassian-Webhook-Identifier) are outside the signature: keyed on them, one
    # captured body could be queued again and again under new ids. A vendor's retry
    # repeats the body, so it is still a duplicate; the id only goes to the log.
    delivery = result.event_id
    event_id = "sha256:" + hashlib.sha256(body).hexdigest()
    normalized = _with_event_id(result, event_id).to_json()
    # The same answer on every store: no NUL (PostgreSQL refuses it), no lone surrogate.
    # Walking every text of the event took ~20 us of a webhook's ~0.5 ms of CPU; the JSON
    # about to be stored shows at once whether there is anything to look for.
    if (_SUSPECT.search(normalized) or _SUSPECT.search(json.dumps(delivery))) and (
        refused := unstorable(result, doc)
    ) is not None:
        raise ApiError(400, "invalid_payload", refused.message, field=refused.field)
    try:
        fresh = store.put(
            NewEvent(
                tenant=tenant.id,
                event_id=event_id,
                vendor=vendor,
                kind=result.kind,
                ticket=result.ticket_id,
                ticket_key=result.ticket_key,
                payload=body,
                normalized=normalized,
                decidable=(
                    result.ticket is not None
                    and not result.partial
                    and not own_write(result, tenant.api_users)
                ),
                occurred_at=result.occurred_at.timestamp(),
            ),
            time.time(),
            hold_s=settings.coalesce_s,
        )
    except StoreError as exc:
        log_event(
            log,
            logging.ERROR,
            tenant=tenant.id,
            vendor=vendor,
            outcome="store_unavailable",
            error=exc,
        )
        # Nothing is acknowledged as stored; the vendor retries a 503 later.
        raise ApiError(
            503, "store_unavailable", "the event could not be stored; retry", retry_after=5
        ) from None
    outcome = "queued" if fresh else "duplicate"
    log_event(
        log,
        logging.INFO,
        tenant=tenant.id,
        vendor=vendor,
        ticket=result.ticket_key,
        event=event_id,
        delivery=delivery or "-",
        kind=result.kind,
        outcome=outcome,
    )
    return outcome, _answer(202 if fresh else 200, status=outcome, event_id=event_id)


def _body(limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes. With a Content-Length werkzeug refuses a
    larger one (413) before reading; a chunked body has none and would be cut at the
    limit without a word, so it is read to one byte past the limit and refused."""
    if request.content_length is not None:
        return request.get_data(cache=False)
    body = request.environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, "request_entity_too_large", f"the body is over {limit} bytes")
    return bytes(body)


def _with_event_id(event: TicketEvent, event_id: str) -> TicketEvent:
    return event if event.event_id == event_id else replace(event, event_id=event_id)


def _answer(code: int, **body: str) -> Response:
    # A plain Response: jsonify's provider machinery cost a tenth of the intake's CPU.
    return Response(json.dumps(body), code, mimetype="application/json")


def translate(fields: FieldMap, name: str, value: str | None) -> str | None:
    """A helpdesk value as the mappings' slug, where the tenant maps it (case-insensitive);
    values with no translation pass through for the rules to judge."""
    if value is None:
        return None
    table = fields.values.get(name)
    if not table:
        return value
    wanted = value.strip().casefold()
    for raw, slug in table.items():
        if raw.casefold() == wanted:
            return slug
    return value
