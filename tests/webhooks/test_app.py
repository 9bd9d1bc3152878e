"""The HTTP service through Flask's test client: health, readiness, the decisions API,
and the promise that nothing a sender can send yields a 5xx."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mappings import BUNDLED
from webhooks.app import create_app
from webhooks.settings import Secret, Settings

TICKET = {
    "id": "123",
    "created_at": "2026-03-06T16:30:00Z",
    "requester": "alice@acme.example",
    "organization": {"vendor": "zendesk", "id": 360001},
    "severity": 1,
    "product": "jira-software",
}
NOW = "?now=2026-03-06T16:31:00Z"


def settings_in(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: a store of its own in tmp_path."""
    return Settings(database=str(tmp_path / "tierdesk.sqlite3"), **overrides)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return create_app(settings_in(tmp_path_factory.mktemp("app")))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def broken_copy(tmp_path: Path) -> Path:
    for name in ("tiers.json", "calendars.json", "accounts.json"):
        shutil.copy(BUNDLED / name, tmp_path / name)
    (tmp_path / "accounts.json").write_text('{"accounts": [{"id": "x"}]}')
    return tmp_path


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_readyz_names_the_mappings_version(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["status"] == "ready"
    assert len(response.json["mappings_version"]) == 12


def test_readyz_is_503_with_the_problems_when_no_mappings_load(tmp_path: Path) -> None:
    client = create_app(settings_in(tmp_path, mappings_dir=broken_copy(tmp_path))).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert any("accounts.json#/accounts/0" in p for p in response.json["mappings_problems"])
    decision = client.post("/api/decisions", json=TICKET)
    assert decision.status_code == 503
    assert decision.json == {
        "error": "mappings_unavailable",
        "message": "no valid mappings are loaded",
    }


def test_a_refused_reload_keeps_the_last_good_mappings(tmp_path: Path) -> None:
    for name in ("tiers.json", "calendars.json", "accounts.json"):
        shutil.copy(BUNDLED / name, tmp_path / name)
    app = create_app(settings_in(tmp_path, mappings_dir=tmp_path))
    good = app.extensions["tierdesk.mappings"].rulebook
    broken_copy(tmp_path)
    app.extensions["tierdesk.mappings"].reload()
    assert app.extensions["tierdesk.mappings"].rulebook is good
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json is not None and response.json["mappings_problems"]


def test_decide_one_ticket(client: FlaskClient) -> None:
    response = client.post("/api/decisions" + NOW, json=TICKET)
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert (body["account"], body["tier"], body["first_response_due"]) == (
        "acme",
        "premier",
        "2026-03-06T17:00:00Z",
    )


def test_decide_an_array(client: FlaskClient) -> None:
    response = client.post("/api/decisions" + NOW, json=[TICKET, {**TICKET, "severity": 4}])
    assert response.status_code == 200
    assert [d["first_response_due"] for d in response.json or []] == [
        "2026-03-06T17:00:00Z",
        "2026-03-07T16:30:00Z",
    ]


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (b"{", 400, {"error": "invalid_json"}),
        (b"", 400, {"error": "invalid_json"}),
        (json.dumps({**TICKET, "created_at": "soon"}).encode(), 400, {"field": "created_at"}),
        (
            json.dumps([TICKET, {**TICKET, "severity": 9}]).encode(),
            400,
            {"field": "tickets[1].severity"},
        ),
        (json.dumps({"created_at": "2026-03-06T16:30:00Z"}).encode(), 400, {"field": "id"}),
        (json.dumps(["not a ticket"]).encode(), 400, {"field": "tickets[0].ticket"}),
    ],
    ids=["truncated", "empty", "bad-timestamp", "bad-severity-in-array", "no-id", "not-object"],
)
def test_bad_input_gets_a_clear_400(
    client: FlaskClient, body: bytes, status: int, expected: dict[str, str]
) -> None:
    response = client.post("/api/decisions", data=body, content_type="application/json")
    assert response.status_code == status
    assert response.json is not None
    assert expected.items() <= response.json.items()
    assert response.json["message"]


def test_bad_now_parameter(client: FlaskClient) -> None:
    response = client.post("/api/decisions?now=2026-03-06T16:31:00", json=TICKET)
    assert response.status_code == 400
    assert response.json is not None and "UTC offset" in response.json["message"]


def test_too_large_is_413(tmp_path: Path) -> None:
    client = create_app(settings_in(tmp_path, max_body_bytes=1000)).test_client()
    response = client.post("/api/decisions", data=b"[" + b" " * 2000 + b"]")
    assert response.status_code == 413
    assert response.json is not None and response.json["error"] == "request_entity_too_large"


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    missing = client.get("/nope")
    wrong = client.get("/api/decisions")
    assert (missing.status_code, wrong.status_code) == (404, 405)
    assert missing.json is not None and missing.json["error"] == "not_found"
    assert wrong.json is not None and wrong.json["error"] == "method_not_allowed"


def test_without_a_token_only_loopback_may_call(client: FlaskClient) -> None:
    remote = client.post("/api/decisions", json=TICKET, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert remote.status_code == 401
    local6 = client.post("/api/decisions", json=TICKET, environ_base={"REMOTE_ADDR": "::1"})
    assert local6.status_code == 200


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer wrong", 401),
        ("Basic s3cret-token", 401),
        ("Bearer s3cret-token", 200),
        ("bearer  s3cret-token ", 200),
    ],
)
def test_with_a_token_every_caller_must_send_it(
    tmp_path: Path, header: str | None, status: int
) -> None:
    client = create_app(settings_in(tmp_path, api_token=Secret("s3cret-token"))).test_client()
    headers = {"Authorization": header} if header else {}
    response = client.post(
        "/api/decisions", json=TICKET, headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert response.status_code == status
    assert b"s3cret-token" not in response.data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ticket_like = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "created_at": st.text() | st.just("2026-03-06T16:30:00Z") | json_values,
        "requester": st.emails() | json_values,
        "organization": json_values,
        "severity": st.integers(-2, 9) | st.text(max_size=3) | json_values,
        "priority": st.sampled_from(["urgent", "low", "Highest"]) | json_values,
        "product": st.sampled_from(["jira-software", "trello"]) | json_values,
        "environment": json_values,
        "category": json_values,
    },
)


@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(json.dumps).map(str.encode),
        ticket_like.map(json.dumps).map(str.encode),
    )
)
def test_no_body_yields_a_5xx(client: FlaskClient, body: bytes) -> None:
    response = client.post("/api/decisions", data=body, content_type="application/json")
    assert response.status_code < 500, response.data
    assert response.is_json


def test_settings_never_show_a_secret() -> None:
    settings_ = Settings(api_token=Secret("s3cret-token"))
    assert "s3cret-token" not in repr(settings_)
    assert "s3cret-token" not in str(settings_.api_token)
    assert settings_.api_token is not None and settings_.api_token.matches("s3cret-token")


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-Ip"])
def test_without_a_token_a_proxied_request_is_refused(client: FlaskClient, header: str) -> None:
    # Behind a reverse proxy every caller looks like 127.0.0.1.
    response = client.post("/api/decisions", json=TICKET, headers={header: "203.0.113.9"})
    assert response.status_code == 401
