"""``GET /api/tickets/<tenant>/<id>/decision``, the sidebar app's read-only endpoint.

The store is filled the way production fills it: signed trigger bodies through the
intake (Flask test client), then the worker deciding with the bundled mappings and a
dry-run write-back, on a fixed clock. The expected decision is the engine's own
answer for the same ticket at the worker's moment (the oracle), never a literal copy
of what the endpoint said.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from entitlements.rulebook import Rulebook
from entitlements.tickets import format_instant
from mappings import load_mappings
from pipeline.worker import Outcome, Worker
from store import Store
from webhooks.app import create_app
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Secret, Settings, Tenant
from webhooks.signatures import sign_zendesk
from webhooks.zendesk import TRIGGER_BODY

APP_TOKEN = "app-token-now"
PREVIOUS_APP_TOKEN = "app-token-before"  # still valid while the app's setting is rotated
GLOBEX_APP_TOKEN = "globex-app-token"
OPS_TOKEN = "ops-api-token"  # TIERDESK_API_TOKEN
ACME = Tenant(
    id="acme-zd",
    vendor="zendesk",
    webhook_secrets=(Secret("acme-secret"),),
    app_tokens=(Secret(APP_TOKEN), Secret(PREVIOUS_APP_TOKEN)),
)
GLOBEX = Tenant(
    id="globex-zd",
    vendor="zendesk",
    webhook_secrets=(Secret("globex-secret"),),
    app_tokens=(Secret(GLOBEX_APP_TOKEN),),
)
SECRETS = {ACME.id: "acme-secret", GLOBEX.id: "globex-secret"}


def _a_wednesday_ahead() -> datetime:
    """The worker's moment: the intake stamps events with the real clock and the worker
    claims only what is available by its own now, so it must not lag behind; Premier
    routing depends on the moment, so a mid-week noon."""
    march = datetime(datetime.now(UTC).year + 1, 3, 1, 12, tzinfo=UTC)
    return march + timedelta(days=(2 - march.weekday()) % 7)


WORKER_NOW = _a_wednesday_ahead()


@cache
def rulebook() -> Rulebook:
    return load_mappings()


@dataclass
class Rig:
    client: FlaskClient
    store: Store
    worker: Worker


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    settings = Settings(
        database=str(tmp_path / "tierdesk.sqlite3"),
        api_token=Secret(OPS_TOKEN),
        tenants={ACME.id: ACME, GLOBEX.id: GLOBEX},
        coalesce_s=0,
    )
    app = create_app(settings)
    store: Store = app.extensions["tierdesk.store"]
    worker = Worker(store, LiveMappings(None), settings, clock=WORKER_NOW.timestamp, name="w1")
    return Rig(app.test_client(), store, worker)


def ticket_doc(ticket_id: str, requester: str, updated_at: str) -> dict[str, str]:
    return {
        "id": ticket_id,
        "created_at": "2026-03-06T16:30:00Z",
        "updated_at": updated_at,
        "requester": requester,
        "organization_id": "360001",
        "priority": "urgent",
        "severity": "1",
        "product": "jira-software",
        "environment": "production",
        "category": "",
    }


def decided(
    rig: Rig,
    ticket_id: str,
    requester: str = "alice@acme.example",
    *,
    tenant: str = ACME.id,
    updated_at: str = "2026-03-06T16:30:00Z",
) -> dict[str, Any]:
    """Send the trigger body for this ticket through the intake and let the worker
    decide it; the decision the worker audited is returned."""
    doc = copy.deepcopy(TRIGGER_BODY)
    doc["ticket"] = ticket_doc(ticket_id, requester, updated_at)
    doc["updated_by"] = requester
    body = json.dumps(doc).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = rig.client.post(
        f"/webhooks/zendesk/{tenant}",
        data=body,
        content_type="application/json",
        headers={
            "X-Zendesk-Webhook-Signature": sign_zendesk(SECRETS[tenant], stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        },
    )
    assert response.status_code == 202, response.json
    outcome = rig.worker.run_once()
    assert isinstance(outcome, Outcome) and outcome.state == "done", outcome
    row = rig.store.history(ticket_id, tenant)[-1]
    assert row.outcome == "decided" and row.decision, row
    stored: dict[str, Any] = json.loads(row.decision)
    return stored


def ask(
    rig: Rig, ticket: str, token: str | None = APP_TOKEN, *, tenant: str = ACME.id, **headers: str
) -> TestResponse:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return rig.client.get(f"/api/tickets/{tenant}/{ticket}/decision", headers=headers)


# -- answers ------------------------------------------------------------------------


def test_answers_the_ticket_decision(rig: Rig) -> None:
    stored = decided(rig, "123")
    response = ask(rig, "123")
    assert response.status_code == 200, response.json
    body = response.json
    assert body is not None
    # What RULES.md says of the README's acme ticket: alice is a named contact of a
    # Premier account; L1 is 30 minutes on 24x7 from 16:30.
    assert (body["tier"], body["tier_name"], body["severity"]) == ("premier", "Premier", 1)
    assert body["first_response_due"] == "2026-03-06T17:00:00Z"
    assert body["named_contact"] == {"status": "valid", "reason": None}
    assert (body["covered"], body["coverage"], body["fallback"]) == (True, "covered", False)
    # The rest is the worker's audited decision, as it was recorded.
    assert body == {
        "tenant": "acme-zd",
        "ticket": "123",
        "ticket_key": "123",
        "tier": stored["tier"],
        "tier_name": stored["tier_name"],
        "account_tier": "premier",
        "fallback": False,
        "account": "acme",
        "account_name": stored["account_name"],
        "severity": 1,
        "severity_name": stored["severity_name"],
        "target": stored["target"],
        "calendar": stored["calendar"],
        "first_response_due": "2026-03-06T17:00:00Z",
        "named_contact": {"status": "valid", "reason": None},
        "covered": True,
        "coverage": "covered",
        "team": stored["team"],
        "sla": stored["sla"],
        "first_response": None,
        "escalation_level": stored["escalation_level"],
        "reasons": stored["reasons"],
        "because": stored["explanation"],
        "mappings_version": rulebook().version,
        "decided_at": format_instant(WORKER_NOW),
        "event": body["event"],
    }
    assert any(line.startswith("tier Premier") for line in body["because"])
    assert body["event"].startswith("sha256:")
    assert response.headers["Cache-Control"] == "no-store"


def test_answers_the_newest_decision(rig: Rig) -> None:
    decided(rig, "123", "alice@acme.example")
    # The same ticket, later: its requester is not a named contact any more.
    later = decided(rig, "123", "bob@acme.example", updated_at="2026-03-06T16:40:00Z")
    body = ask(rig, "123").json
    assert body is not None
    assert body["tier"] == later["tier"] != "premier"
    assert body["named_contact"] == {"status": "invalid", "reason": "not_listed"}
    assert body["fallback"] is True and body["account_tier"] == "premier"
    assert body["because"] == later["explanation"]
    assert body["reasons"] == later["reasons"]


def test_rows_without_a_decision_do_not_hide_the_last_one(rig: Rig) -> None:
    decided(rig, "123")
    # An event webhook for the same ticket: partial (no requester email), audited as
    # "recorded" without a decision.
    event = {
        "type": "zen:event-type:ticket.priority_changed",
        "id": "evt-1",
        "time": "2026-03-06T16:50:00Z",
        "detail": {"id": "123", "created_at": "2026-03-06T16:30:00Z", "priority": "HIGH"},
        "event": {},
    }
    body = json.dumps(event).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rig.client.post(
        "/webhooks/zendesk/acme-zd",
        data=body,
        content_type="application/json",
        headers={
            "X-Zendesk-Webhook-Signature": sign_zendesk("acme-secret", stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        },
    )
    assert rig.worker.run_once() == Outcome(2, "done")
    assert [r.outcome for r in rig.store.history("123", ACME.id)] == ["decided", "recorded"]
    body_json = ask(rig, "123").json
    assert body_json is not None and body_json["tier"] == "premier"


@pytest.mark.parametrize("token", [APP_TOKEN, PREVIOUS_APP_TOKEN, OPS_TOKEN])
def test_any_of_the_tenant_tokens_or_the_global_one_reads(rig: Rig, token: str) -> None:
    decided(rig, "123")
    assert ask(rig, "123", token).status_code == 200


# -- refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        pytest.param(None, {}, id="no-header"),
        pytest.param(None, {"Authorization": f"Basic {APP_TOKEN}"}, id="not-bearer"),
        pytest.param(None, {"Authorization": "Bearer "}, id="empty-token"),
        pytest.param("wrong-token", {}, id="wrong-token"),
        pytest.param(GLOBEX_APP_TOKEN, {}, id="another-tenants-app-token"),
        pytest.param(APP_TOKEN[:-1], {}, id="a-prefix-of-the-token"),
        pytest.param(APP_TOKEN + "x", {}, id="the-token-and-more"),
    ],
)
def test_refused_without_a_token_of_this_tenant(
    rig: Rig, token: str | None, headers: dict[str, str]
) -> None:
    decided(rig, "123")
    response = ask(rig, "123", token, **headers)
    assert response.status_code == 401
    assert response.json is not None and response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="tierdesk"'
    assert "tier" not in response.get_data(as_text=True)


def test_whitespace_around_the_token_is_not_part_of_it(rig: Rig) -> None:
    decided(rig, "123")
    assert ask(rig, "123", None, Authorization=f"bearer  {APP_TOKEN} ").status_code == 200


def test_unknown_tenant_is_401_without_a_valid_token_and_404_with_one(rig: Rig) -> None:
    # Without a valid token nothing is revealed, not even whether a tenant exists.
    assert ask(rig, "123", APP_TOKEN, tenant="nobody").status_code == 401
    response = ask(rig, "123", OPS_TOKEN, tenant="nobody")
    assert response.status_code == 404
    assert response.json is not None and response.json["error"] == "unknown_tenant"


def test_a_ticket_without_a_decision_is_404(rig: Rig) -> None:
    decided(rig, "123")
    response = ask(rig, "999")
    assert response.status_code == 404
    assert response.json is not None and response.json["error"] == "no_decision"


def test_another_tenants_ticket_of_the_same_id_is_not_answered(rig: Rig) -> None:
    decided(rig, "123", tenant=GLOBEX.id)
    assert ask(rig, "123", APP_TOKEN).status_code == 404
    assert ask(rig, "123", GLOBEX_APP_TOKEN, tenant=GLOBEX.id).status_code == 200


def test_loopback_callers_need_a_token_too(rig: Rig) -> None:
    # /api/decisions answers loopback callers without a token when no API token is
    # set; this endpoint never does (the sidebar always comes through Zendesk's proxy).
    decided(rig, "123")
    response = rig.client.get(
        "/api/tickets/acme-zd/123/decision", environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert response.status_code == 401


def test_no_cors_answer_for_any_origin(rig: Rig) -> None:
    decided(rig, "123")
    origin = {"Origin": "https://acme.zendesk.com"}
    response = ask(rig, "123", APP_TOKEN, **origin)
    assert response.status_code == 200
    preflight = rig.client.options(
        "/api/tickets/acme-zd/123/decision",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    for answer in (response, preflight):
        names = [name.lower() for name, _ in answer.headers.items()]
        assert not [n for n in names if n.startswith("access-control-")], names


def test_only_get(rig: Rig) -> None:
    decided(rig, "123")
    response = rig.client.post(
        "/api/tickets/acme-zd/123/decision", headers={"Authorization": f"Bearer {APP_TOKEN}"}
    )
    assert response.status_code == 405
    assert response.json is not None and response.json["error"] == "method_not_allowed"
