"""``GET /metrics`` after real traffic: signed webhooks through the Flask test client,
the worker deciding them, the vendor policy under 429s, and the figures move.

Counters are process-wide, so every assertion is on the change a test made (a scrape
before, a scrape after), never on an absolute value that another test could have moved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from requests.auth import HTTPBasicAuth

from connector.errors import RateLimited
from connector.http import Budget, HttpClient, Policy
from pipeline.worker import Worker
from store import Gauges, SqliteStore, StoreError
from telemetry.vendor import VendorMetrics
from webhooks.app import create_app
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Secret, Settings, Tenant
from webhooks.signatures import sign_zendesk
from webhooks.zendesk import TRIGGER_SCHEMA

SECRET = "metrics-secret"
TENANT = Tenant(id="acme-zd", vendor="zendesk", webhook_secrets=(Secret(SECRET),))

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient, **headers: str) -> Samples:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def trigger_body(ticket: str, updated: str) -> bytes:
    return json.dumps(
        {
            "schema": TRIGGER_SCHEMA,
            "event": "ticket.updated",
            "ticket": {
                "id": ticket,
                "created_at": "2026-03-04T12:00:00Z",
                "updated_at": updated,
                "requester": "alice@acme.example",
                "organization_id": "360001",
                "priority": "urgent",
            },
            "updated_by": "agent@vendor.example",
        }
    ).encode()


def post(client: FlaskClient, body: bytes, tenant: str = "acme-zd", secret: str = SECRET) -> int:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = client.post(
        f"/webhooks/zendesk/{tenant}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature": sign_zendesk(secret, stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        },
    )
    return answer.status_code


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[FlaskClient, SqliteStore, Settings]]:
    settings = Settings(
        database=str(tmp_path / "tierdesk.sqlite3"),
        tenants={TENANT.id: TENANT},
        coalesce_s=0.0,
    )
    store = SqliteStore(settings.database)
    app = create_app(settings, store=store)
    yield app.test_client(), store, settings
    store.close()


def test_webhooks_are_counted_by_outcome_and_strangers_add_no_labels(
    rig: tuple[FlaskClient, SqliteStore, Settings],
) -> None:
    client, _, _ = rig
    before = scrape(client)
    body = trigger_body("7001", "2026-03-04T12:01:00Z")
    assert post(client, body) == 202
    assert post(client, body) == 200
    assert post(client, trigger_body("7002", "2026-03-04T12:02:00Z"), secret="wrong") == 401
    assert post(client, b"{not json") == 400  # signed, but not JSON
    assert post(client, body, tenant="random-stranger-path") == 404
    after = scrape(client)

    def moved(outcome: str, tenant: str = "acme-zd") -> float:
        name = "tierdesk_webhooks_received_total"
        labels = {"tenant": tenant, "vendor": "zendesk", "outcome": outcome}
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("queued") == 1
    assert moved("duplicate") == 1
    assert moved("invalid_signature") == 1
    assert moved("invalid_json") == 1
    assert moved("unknown_tenant", tenant="") == 1
    assert not [key for key in after if ("tenant", "random-stranger-path") in key[1]]
    count = "tierdesk_webhook_intake_seconds_count"
    assert value(after, count, vendor="zendesk") - value(before, count, vendor="zendesk") == 5
    # The store's gauges: one event waiting, nothing dead, no clock yet.
    assert value(after, "tierdesk_inbox_events", state="pending") == 1
    assert value(after, "tierdesk_inbox_oldest_age_seconds") >= 0
    assert value(after, "tierdesk_dead_letters") == 0
    assert value(after, "tierdesk_store_up") == 1
    assert value(after, "tierdesk_mappings_problems") == 0
    assert [k for k in after if k[0] == "tierdesk_mappings_info"]


def test_processed_events_clocks_and_latency_move_after_the_worker(
    rig: tuple[FlaskClient, SqliteStore, Settings],
) -> None:
    client, store, settings = rig
    for i in range(3):
        assert post(client, trigger_body(f"710{i}", f"2026-03-04T12:0{i}:00Z")) == 202
    before = scrape(client)
    assert value(before, "tierdesk_inbox_events", state="pending") == 3
    worker = Worker(store, LiveMappings(None), settings)
    while worker.run_once() is not None:
        pass
    after = scrape(client)
    name = "tierdesk_events_processed_total"
    processed = sum(
        v - before.get(k, 0.0)
        for k, v in after.items()
        if k[0] == name and ("tenant", "acme-zd") in k[1]
    )
    assert processed == 3
    latency = "tierdesk_event_latency_seconds_count"
    assert value(after, latency, tenant="acme-zd") - value(before, latency, tenant="acme-zd") == 3
    assert value(after, "tierdesk_inbox_events", state="pending") == 0
    # Three Premier L1 tickets from March 2026, read now: long past due, still open.
    open_clocks = sum(
        value(after, "tierdesk_sla_clocks", stage=s) for s in ("on_track", "at_risk", "breached")
    )
    assert open_clocks == 3


def test_a_dead_letter_shows(rig: tuple[FlaskClient, SqliteStore, Settings]) -> None:
    client, store, _ = rig
    assert post(client, trigger_body("7200", "2026-03-04T12:00:00Z")) == 202
    claimed = store.claim("test", datetime.now(UTC).timestamp() + 5, 30)
    assert claimed is not None
    store.fail(claimed, "given up", datetime.now(UTC).timestamp(), None)
    assert value(scrape(client), "tierdesk_dead_letters") == 1


def test_metrics_need_the_api_token_when_one_is_set(tmp_path: Path) -> None:
    settings = Settings(database=str(tmp_path / "t.sqlite3"), api_token=Secret("ops-token"))
    client = create_app(settings).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert "tierdesk_store_up" in json.dumps(list(scrape(client, Authorization="Bearer ops-token")))
    # Without a token: loopback only, and not through a proxy.
    open_client = create_app(Settings(database=str(tmp_path / "u.sqlite3"))).test_client()
    assert (
        open_client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
    )


def test_a_store_that_does_not_answer_is_a_gauge_not_a_failed_scrape(
    rig: tuple[FlaskClient, SqliteStore, Settings],
) -> None:
    client, store, _ = rig

    def broken() -> Gauges:
        raise StoreError("disk gone")

    store.gauges = broken  # type: ignore[method-assign]
    samples = scrape(client)
    assert value(samples, "tierdesk_store_up") == 0
    assert not [k for k in samples if k[0] == "tierdesk_inbox_events"]


@responses.activate
def test_vendor_calls_429s_retries_and_retry_after_are_counted() -> None:
    base = "https://acme.zendesk.com"
    responses.get(f"{base}/api/v2/tickets/1", status=429, headers={"Retry-After": "2"})
    responses.get(f"{base}/api/v2/tickets/1", status=503)
    responses.get(f"{base}/api/v2/tickets/1", json={"ticket": {"id": 1}})
    slept: list[float] = []
    client = HttpClient(
        base,
        HTTPBasicAuth("ops@acme.example/token", "t"),
        budget=Budget(6000, sleep=slept.append),
        sleep=slept.append,
        observer=VendorMetrics("metrics-tenant", "zendesk", Policy().requests_per_minute),
    )
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    who = {"tenant": "metrics-tenant", "vendor": "zendesk"}
    before = {
        "429": sample("tierdesk_vendor_requests_total", **who, method="GET", status="429"),
        "200": sample("tierdesk_vendor_requests_total", **who, method="GET", status="200"),
        "retries": sample("tierdesk_vendor_retries_total", **who),
        "limited": sample("tierdesk_vendor_rate_limited_total", **who),
        "waited": sample("tierdesk_vendor_retry_after_waited_seconds_total", **who),
        "budget": sample("tierdesk_rate_budget_requests_total", tenant="metrics-tenant"),
    }
    assert client.request("GET", "/api/v2/tickets/1") == {"ticket": {"id": 1}}
    assert slept[0] == 2  # Retry-After honoured exactly
    assert sample("tierdesk_vendor_requests_total", **who, method="GET", status="429") == (
        before["429"] + 1
    )
    assert sample("tierdesk_vendor_requests_total", **who, method="GET", status="200") == (
        before["200"] + 1
    )
    assert sample("tierdesk_vendor_retries_total", **who) == before["retries"] + 2
    assert sample("tierdesk_vendor_rate_limited_total", **who) == before["limited"] + 1
    assert sample("tierdesk_vendor_retry_after_waited_seconds_total", **who) == before["waited"] + 2
    assert sample("tierdesk_rate_budget_requests_total", tenant="metrics-tenant") == (
        before["budget"] + 3
    )
    assert sample("tierdesk_rate_budget_per_minute", tenant="metrics-tenant") == 180


@responses.activate
def test_a_retry_that_would_pass_the_deadline_is_not_counted_as_a_retry() -> None:
    base = "https://acme.zendesk.com"
    responses.get(f"{base}/api/v2/tickets/2", status=429, headers={"Retry-After": "600"})
    client = HttpClient(
        base,
        HTTPBasicAuth("ops@acme.example/token", "t"),
        sleep=lambda s: None,
        observer=VendorMetrics("deadline-tenant", "zendesk", 180),
    )
    from prometheus_client import REGISTRY

    with pytest.raises(RateLimited):
        client.request("GET", "/api/v2/tickets/2")
    labels = {"tenant": "deadline-tenant", "vendor": "zendesk"}
    assert (REGISTRY.get_sample_value("tierdesk_vendor_retries_total", labels) or 0) == 0
    assert REGISTRY.get_sample_value("tierdesk_vendor_rate_limited_total", labels) == 1
