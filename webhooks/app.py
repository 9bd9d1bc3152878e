"""The Flask application factory (DESIGN.md: no config read at import, errors as JSON
from one handler, ``MAX_CONTENT_LENGTH`` set).

Routes:
- ``GET /healthz``: the process is up.
- ``GET /readyz``: the store answers (on SQLite: and its disk has room for a webhook)
  and mappings are loaded (503 and why, otherwise).
- ``GET /api/tickets/<tenant>/<id>/decision``: the sidebar's read-only view (webhooks.sidebar).
- ``POST /webhooks/zendesk/<tenant>``, ``POST /webhooks/jsm/<tenant>``: the intake
  (`webhooks.intake`).
- ``POST /api/decisions``: decide one ticket object or an array of them, as
  ``tierdesk explain`` does; ``?now=ISO`` fixes the moment of deciding.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from entitlements.decide import decide
from entitlements.errors import EntitlementError, TicketError
from entitlements.rulebook import Rulebook
from entitlements.tickets import parse_instant, parse_ticket
from store import Store, StoreError, open_store
from webhooks import jsm, metrics, sidebar, zendesk
from webhooks.access import require_api_caller
from webhooks.errors import ApiError
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings

log = logging.getLogger("tierdesk.http")


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Flask:
    """The HTTP service. ``store`` defaults to the one ``settings.database`` names."""
    settings = settings or Settings()
    app = Flask("tierdesk")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["tierdesk.settings"] = settings
    app.extensions["tierdesk.store"] = store or open_store(settings.database)
    app.extensions["tierdesk.mappings"] = LiveMappings(settings.mappings_dir)
    for blueprint in (
        _health,
        _api,
        zendesk.blueprint,
        jsm.blueprint,
        sidebar.blueprint,
        metrics.blueprint,
    ):
        app.register_blueprint(blueprint)
    app.register_error_handler(Exception, _render_error)
    return app


def _holder() -> LiveMappings:
    holder: LiveMappings = current_app.extensions["tierdesk.mappings"]
    return holder


def _rulebook() -> Rulebook:
    rulebook = _holder().rulebook
    if rulebook is None:
        raise ApiError(503, "mappings_unavailable", "no valid mappings are loaded", retry_after=30)
    return rulebook


_health = Blueprint("health", __name__)


@_health.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


@_health.get("/readyz")
def readyz() -> Any:
    holder = _holder()
    body: dict[str, object] = {"status": "ready"}
    try:
        current_app.extensions["tierdesk.store"].ping()
        body["store"] = "ok"
    except StoreError as exc:
        body.update(status="not_ready", store=str(exc))
    if holder.rulebook is None:
        body["status"] = "not_ready"
    else:
        body["mappings_version"] = holder.rulebook.version
    if holder.problems:  # none loaded, or the last good ones kept after a refused reload
        body["mappings_problems"] = holder.problems
    return jsonify(body), 200 if body["status"] == "ready" else 503


_api = Blueprint("api", __name__, url_prefix="/api")


_api.before_request(require_api_caller)


@_api.post("/decisions")
def decisions() -> Any:
    body = json_body()
    now = datetime.now(UTC)
    if "now" in request.args:
        try:
            now = parse_instant(request.args["now"], "now")
        except TicketError as exc:
            raise ApiError(400, "invalid_parameter", str(exc)) from None
    rulebook = _rulebook()
    tickets = body if isinstance(body, list) else [body]
    out = []
    for i, ticket in enumerate(tickets):
        try:
            out.append(decide(parse_ticket(ticket), rulebook, now).to_json())
        except TicketError as exc:
            where = f"tickets[{i}].{exc.field}" if isinstance(body, list) else exc.field
            raise ApiError(400, "invalid_ticket", exc.message, field=where) from None
        except EntitlementError as exc:
            raise ApiError(422, "undecidable", str(exc)) from None
    return jsonify(out if isinstance(body, list) else out[0])


def json_body() -> Any:
    """The request body as JSON, whatever the Content-Type says. Reading the bytes
    ourselves lets an oversized body raise 413 (``get_json(silent=True)`` would turn it
    into None) and lets a 400 say where the JSON breaks."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the body is empty; send a JSON document")
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ApiError(400, "invalid_json", f"not JSON at {where}: {exc.msg}") from None
    except RecursionError:  # Python's parser gives up on very deep nesting
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None


def _render_error(error: Exception) -> Any:
    """Every error leaves as JSON; anything unexpected is logged and answered 500
    without details (they could carry personal data from a payload)."""
    if isinstance(error, ApiError):
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        return jsonify(error.body()), error.status, headers
    if isinstance(error, HTTPException):
        code = error.code or 500
        name = (error.name or "error").lower().replace(" ", "_")
        return jsonify(error=name, message=error.description), code
    log.exception("unexpected error on %s %s", request.method, request.path)
    return jsonify(error="internal_error", message="an unexpected error; see the service log"), 500
