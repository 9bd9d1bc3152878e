"""Every event the JSM webhook of `tierdesk setup jsm` subscribes to reaches the inbox and
is handled by the worker: signed recorded payloads through the Flask app, then the
worker with the bundled mappings (dry-run write-back).

The recorded payloads (../shared/vendor/jsm/payloads) hold one of each kind; an edited
or deleted comment, and an edited or deleted worklog, are the recorded created ones
under the other event name (Jira sends the same shape: the comment or worklog, and for
comments the reduced issue).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.setup_jsm import EVENTS
from pipeline.worker import Worker
from tests.shared import VENDOR
from webhooks.app import create_app
from webhooks.live_mappings import LiveMappings
from webhooks.settings import FieldMap, Secret, Settings, Tenant
from webhooks.signatures import sign_hub

SECRET = "jsm-webhook-secret"
TENANT = Tenant(
    id="acme-jsm",
    vendor="jsm",
    base_url="https://acme.atlassian.net",
    webhook_secrets=(Secret(SECRET),),
    fields=FieldMap(organizations="customfield_10002"),
)
PAYLOADS = VENDOR / "jsm" / "payloads"
RECORDED = {
    "jira:issue_created": "jira-issue_created_with_custom_fields.json",
    "jira:issue_updated": "jira-issue_updated__priority.json",
    "jira:issue_deleted": "jira-issue_deleted.json",
    "comment_created": "jira-comment_created.json",
    "comment_updated": "jira-comment_created.json",
    "comment_deleted": "jira-comment_created.json",
    "worklog_created": "jira-worklog_created.json",
    "worklog_updated": "jira-worklog_created.json",
    "worklog_deleted": "jira-worklog_created.json",
}


def payload(event: str, at: datetime) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((PAYLOADS / RECORDED[event]).read_bytes())
    doc["webhookEvent"] = event
    doc["timestamp"] = int(at.timestamp() * 1000)
    return doc


def test_every_recorded_payload_is_named() -> None:
    assert set(RECORDED) == set(EVENTS)


@pytest.mark.parametrize("event", EVENTS)
def test_each_subscribed_event_is_queued_and_handled(tmp_path: Path, event: str) -> None:
    settings = Settings(database=str(tmp_path / "tierdesk.sqlite3"), tenants={TENANT.id: TENANT})
    app = create_app(settings)
    now = datetime.now(UTC)
    worker = Worker(
        app.extensions["tierdesk.store"],
        LiveMappings(None),
        settings,
        clock=(now + timedelta(minutes=5)).timestamp,
        name="w1",
    )
    client = app.test_client()
    # The issue first (its clock exists), then the event under test.
    sequence = ["jira:issue_created"] + ([event] if event != "jira:issue_created" else [])
    for number, name in enumerate(sequence):
        body = json.dumps(payload(name, now + timedelta(seconds=number))).encode()
        response = client.post(
            f"/webhooks/jsm/{TENANT.id}",
            data=body,
            content_type="application/json",
            headers={
                "X-Hub-Signature": sign_hub(SECRET, body),
                "X-Atlassian-Webhook-Identifier": f"atl-{number}",
            },
        )
        assert (response.status_code, (response.json or {}).get("status")) == (202, "queued"), (
            name,
            response.json,
        )
    outcomes = []
    while (outcome := worker.run_once()) is not None:
        outcomes.append(outcome.state)
    assert outcomes and set(outcomes) == {"done"}, outcomes
