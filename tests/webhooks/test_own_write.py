"""tierdesk's own write coming back from Jira Cloud, whose webhooks name people by
accountId only (the email is hidden by default): it is an echo from the intake on,
named by the tenant's `account_id` (`tierdesk setup jsm` records it).

The intake is where it must be known: an echo marked decidable there counts as a newer
snapshot of the ticket, so an agent's edit queued just before it would be decided
without a write ("coalesced", the newer event's write carries it), and the echo, being
an echo, would write nothing: the agent's change would never reach the ticket. Sent
through the real Flask intake (signed recorded payloads) and the real worker.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.worker import Worker
from tests.shared import VENDOR
from webhooks.app import create_app
from webhooks.events import TicketEvent, own_write
from webhooks.live_mappings import LiveMappings
from webhooks.settings import FieldMap, Secret, Settings, Tenant
from webhooks.signatures import sign_hub

SECRET = "jsm-webhook-secret"
ACCOUNT = "557058:tierdesk-api-user"
TENANT = Tenant(
    id="acme-jsm",
    vendor="jsm",
    base_url="https://acme.atlassian.net",
    email="ops@acme.example",
    account_id=ACCOUNT,
    webhook_secrets=(Secret(SECRET),),
    fields=FieldMap(organizations="customfield_10002"),
)
RECORDED = VENDOR / "jsm" / "payloads" / "jira-issue_updated__priority.json"


def update(at: datetime, account_id: str) -> dict[str, Any]:
    """The recorded issue_updated, by ``account_id`` with the email hidden."""
    doc: dict[str, Any] = json.loads(RECORDED.read_bytes())
    doc["timestamp"] = int(at.timestamp() * 1000)
    doc["user"] = {k: v for k, v in doc["user"].items() if k != "emailAddress"}
    doc["user"]["accountId"] = account_id
    return doc


def test_an_agents_edit_queued_before_the_echo_is_still_written(tmp_path: Path) -> None:
    settings = Settings(database=str(tmp_path / "tierdesk.sqlite3"), tenants={TENANT.id: TENANT})
    app = create_app(settings)
    client = app.test_client()
    now = datetime.now(UTC)
    for number, actor in enumerate(["712020:an-agent", ACCOUNT]):
        body = json.dumps(update(now + timedelta(seconds=number), actor)).encode()
        answer = client.post(
            f"/webhooks/jsm/{TENANT.id}",
            data=body,
            content_type="application/json",
            headers={"X-Hub-Signature": sign_hub(SECRET, body)},
        )
        assert answer.status_code == 202, answer.json
    store = app.extensions["tierdesk.store"]
    clock = (now + timedelta(minutes=5)).timestamp
    worker = Worker(store, LiveMappings(None), settings, clock=clock, name="w1")
    while worker.run_once() is not None:
        pass

    (agent, echo) = store.history(str(json.loads(RECORDED.read_bytes())["issue"]["id"]))
    assert (agent.outcome, echo.outcome) == ("decided", "echo")
    assert agent.written is not None
    assert json.loads(agent.written)["outcome"] != "coalesced"


def test_own_write_knows_the_api_user_by_each_of_its_names() -> None:
    event = TicketEvent.from_json(
        json.dumps(
            {
                "tenant": "t",
                "vendor": "jsm",
                "event_id": "e",
                "kind": "ticket.updated",
                "ticket_id": "1",
                "ticket_key": "SUP-1",
                "occurred_at": "2026-03-06T16:30:00Z",
                "ticket": None,
            }
        )
    )
    assert own_write(replace(event, actor=ACCOUNT), TENANT.api_users)
    assert own_write(replace(event, actor="OPS@acme.example"), TENANT.api_users)
    assert not own_write(replace(event, actor="712020:an-agent"), TENANT.api_users)
    assert not own_write(replace(event, actor=None), TENANT.api_users)
    assert not own_write(replace(event, actor=ACCOUNT), ())
