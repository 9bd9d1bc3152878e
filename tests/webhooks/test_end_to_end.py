"""The whole path: a signed webhook → the intake (Flask test client) → the inbox → the
worker deciding with the bundled mappings → the vendor connector → the helpdesk.

The helpdesks are stood in for by `responses` only, so "what tierdesk sent" is the list
of recorded calls, checked against the vendors' published specs. The second half of
each story is the echo: our own write makes the helpdesk send the webhook again with
the same ticket state, and that must cost zero calls (the `written` table), or
tierdesk would loop on itself.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient
from responses import matchers

from entitlements.decide import Decision, decide, followed
from entitlements.rulebook import Rulebook
from entitlements.sla import status_at
from entitlements.tickets import parse_ticket
from mappings import load_mappings
from pipeline.connectors import Connectors
from pipeline.worker import Outcome, Worker
from pipeline.writeback import canonical, ticket_update
from store import AuditRow, Store
from tests.connector.contracts import assert_conforms
from tests.shared import VENDOR
from webhooks.app import create_app
from webhooks.live_mappings import LiveMappings
from webhooks.settings import FieldMap, Secret, Settings, Tenant
from webhooks.signatures import sign_hub, sign_zendesk
from webhooks.zendesk import TRIGGER_BODY

# -- helpers ------------------------------------------------------------------------

ZD_BASE = "https://acme.zendesk.com"
JIRA_BASE = "https://acme.atlassian.net"
ZD_SECRET = "zd-webhook-secret"
JSM_SECRET = "jsm-webhook-secret"
API_USER = "ops@acme.example"

ZD = Tenant(
    id="acme-zd",
    vendor="zendesk",
    base_url=ZD_BASE,
    email=API_USER,
    api_token=Secret("zd-token"),
    webhook_secrets=(Secret(ZD_SECRET),),
    fields=FieldMap(
        tier="360000001",
        severity="360000002",
        first_response_due="360000003",
        named_contact="360000004",
        named_contact_reason="360000005",
        coverage="360000006",
        groups={"premier": "20001", "select": "20002"},
    ),
)
JSM = Tenant(
    id="acme-jsm",
    vendor="jsm",
    base_url=JIRA_BASE,
    email=API_USER,
    api_token=Secret("jira-token"),
    webhook_secrets=(Secret(JSM_SECRET),),
    fields=FieldMap(
        # Read: the JSM Organizations field and the product; severity comes from the
        # priority (no severity field: tierdesk would write the level into a select list).
        organizations="customfield_10002",
        product="customfield_10070",
        values={"product": {"Jira Software": "jira-software"}},
        # Written:
        tier="customfield_10080",
        first_response_due="customfield_10081",
        named_contact="customfield_10082",
        named_contact_reason="customfield_10083",
        coverage="customfield_10084",
        team="customfield_10085",
    ),
)


def _a_wednesday_ahead() -> datetime:
    """The worker's now: noon on the first Wednesday of March next year. The intake
    stamps events with the real clock and the worker claims only events available by
    its own now, so that now must not lag behind; and Premier routing depends on the
    moment (the Select team covers the global weekend), so a mid-week noon, no holiday."""
    march = datetime(datetime.now(UTC).year + 1, 3, 1, 12, tzinfo=UTC)
    return march + timedelta(days=(2 - march.weekday()) % 7)


WORKER_NOW = _a_wednesday_ahead()


@cache
def rulebook() -> Rulebook:
    return load_mappings()


def expected_decision(doc: dict[str, Any]) -> Decision:
    """What the engine decides for a ticket at the worker's now, with where its SLA clock
    stands then: the oracle for the note."""
    decision = decide(parse_ticket(doc), rulebook(), WORKER_NOW)
    assert decision.milestones is not None
    status = status_at(decision.milestones, WORKER_NOW)
    return followed(decision, status, None, rulebook().tag_prefix)


def note_of(d: Decision, head: str, contact: str, *more: str) -> str:
    return "\n".join([head, contact, *more, "", *d.explanation])


@dataclass
class Rig:
    client: FlaskClient
    store: Store
    worker: Worker


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    settings = Settings(
        database=str(tmp_path / "tierdesk.sqlite3"), tenants={ZD.id: ZD, JSM.id: JSM}
    )
    app = create_app(settings)
    mappings = LiveMappings(None)
    worker = Worker(
        app.extensions["tierdesk.store"],
        mappings,
        settings,
        writeback=Connectors(mappings),
        clock=WORKER_NOW.timestamp,
        name="w1",
    )
    return Rig(app.test_client(), app.extensions["tierdesk.store"], worker)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    # Every request must be one registered here; registered answers may go unused.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def run(rig: Rig) -> None:
    outcome = rig.worker.run_once()
    assert isinstance(outcome, Outcome) and outcome.state == "done", outcome


def written(row: AuditRow) -> dict[str, Any]:
    assert row.outcome == "decided", row
    doc: dict[str, Any] = json.loads(row.written or "null")
    return doc


def calls(rsps: responses.RequestsMock) -> list[tuple[str, str]]:
    return [(c.request.method or "", c.request.url or "") for c in rsps.calls]


# -- Zendesk --------------------------------------------------------------------------

ZD_URL = f"{ZD_BASE}/api/v2/tickets/{{id}}"
# zenpy-ticket-show-200.json's updated_at: the safe update's stamp.
RECORDED_STAMP = "2023-09-18T23:34:36Z"


def trigger(
    ticket_id: str,
    requester: str,
    organization: str = "360001",
    *,
    updated_at: str = "2026-03-06T16:30:00Z",
    updated_by: str | None = None,
) -> dict[str, Any]:
    """TRIGGER_BODY as Zendesk fills it for a severity-1 production outage."""
    doc = copy.deepcopy(TRIGGER_BODY)
    doc["ticket"] = {
        "id": ticket_id,
        "created_at": "2026-03-06T16:30:00Z",
        "updated_at": updated_at,
        "requester": requester,
        "organization_id": organization,  # "" when the requester has none
        "priority": "urgent",
        "severity": "1",
        "product": "jira-software",
        "environment": "production",
        "category": "",  # a blank placeholder
        "time_spent": "",
        "status": "Open",
    }
    doc["updated_by"] = updated_by or requester
    assert set(doc["ticket"]) == set(TRIGGER_BODY["ticket"])  # every placeholder filled
    return doc


def post_zendesk(client: FlaskClient, doc: dict[str, Any], delivery: str) -> None:
    body = json.dumps(doc).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = client.post(
        f"/webhooks/zendesk/{ZD.id}",
        data=body,
        content_type="application/json",
        headers={
            "X-Zendesk-Webhook-Signature": sign_zendesk(ZD_SECRET, stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Invocation-Id": delivery,
        },
    )
    assert (response.status_code, (response.json or {}).get("status")) == (202, "queued")


def zendesk_ticket(ticket_id: str) -> dict[str, Any]:
    """The recorded ticket show, with the id and the priority the trigger reported."""
    payload = VENDOR / "zendesk" / "payloads" / "zenpy-ticket-show-200.json"
    doc: dict[str, Any] = json.loads(payload.read_bytes())
    doc["ticket"] |= {"id": int(ticket_id), "priority": "urgent"}
    return doc


def answer_zendesk(rsps: responses.RequestsMock, ticket_id: str) -> str:
    url = ZD_URL.format(id=ticket_id)
    rsps.get(url, json=zendesk_ticket(ticket_id))
    update = VENDOR / "zendesk" / "payloads" / "zenpy-ticket-update-200.json"
    rsps.put(url, body=update.read_bytes(), content_type="application/json")
    return url


def zendesk_put(rsps: responses.RequestsMock) -> dict[str, Any]:
    for call in rsps.calls:
        assert_conforms("zendesk", call.request)
    (put,) = [c for c in rsps.calls if c.request.method == "PUT"]
    ticket: dict[str, Any] = json.loads(put.request.body or b"")["ticket"]
    return ticket


# The tickets were opened in March 2026 and the worker's now is a year later: every
# first-response target has long been breached.
ALICE_TAGS = [
    "tierdesk_contact_valid",
    "tierdesk_phone",
    "tierdesk_sev_1",
    "tierdesk_sla_breached",
    "tierdesk_tier_premier",
]


@pytest.mark.parametrize(
    ("requester", "organization", "fields", "group", "tags"),
    [
        pytest.param(
            "alice@acme.example",
            "360001",
            {"360000001": "premier", "360000003": "2026-03-06T17:00:00Z", "360000004": "valid"},
            20001,
            ALICE_TAGS,
            id="alice-premier-named-contact",
        ),
        pytest.param(
            # Not a named contact: acme's next subscription that entitles bob is its
            # pay-as-you-go hours (no Zendesk group configured for that team).
            "bob@acme.example",
            "360001",
            {
                "360000001": "payg",
                "360000003": "2026-03-09T10:30:00Z",
                "360000004": "invalid",
                "360000005": "not_listed",
            },
            None,
            [
                "tierdesk_contact_invalid",
                "tierdesk_fallback",
                "tierdesk_reason_not_listed",
                "tierdesk_sev_1",
                "tierdesk_sla_breached",
                "tierdesk_tier_payg",
            ],
            id="bob-invalid-contact-falls-back",
        ),
        pytest.param(
            "carol@unknown.example",
            "",
            {
                "360000001": "select",
                "360000003": "2026-03-09T10:30:00Z",
                "360000004": "not_required",
            },
            20002,
            [
                "tierdesk_reason_unknown_account",
                "tierdesk_sev_1",
                "tierdesk_sla_breached",
                "tierdesk_tier_select",
            ],
            id="carol-unknown-account-select",
        ),
    ],
)
def test_a_zendesk_trigger_is_decided_and_written_back(
    rig: Rig,
    rsps: responses.RequestsMock,
    requester: str,
    organization: str,
    fields: dict[str, str],
    group: int | None,
    tags: list[str],
) -> None:
    url = answer_zendesk(rsps, "4242")
    post_zendesk(rig.client, trigger("4242", requester, organization), "zd-1")

    run(rig)

    assert calls(rsps) == [("GET", url), ("PUT", url)]
    put = zendesk_put(rsps)
    # Severity 1 and coverage are the same in every row; priority is already urgent.
    expected_fields = {"360000002": "1", "360000006": "covered", **fields}
    assert {str(f["id"]): f["value"] for f in put["custom_fields"]} == expected_fields
    assert put.get("group_id") == group
    assert put["tags"] == tags
    assert "priority" not in put
    assert put["comment"]["public"] is False
    assert (put["safe_update"], put["updated_stamp"]) == (True, RECORDED_STAMP)


def test_the_zendesk_story_premier_write_then_its_echo_costs_nothing(
    rig: Rig, rsps: responses.RequestsMock
) -> None:
    url = answer_zendesk(rsps, "4242")
    first = trigger("4242", "alice@acme.example")
    post_zendesk(rig.client, first, "zd-1")

    run(rig)

    alice = expected_decision(
        {**first["ticket"], "organization": {"vendor": "zendesk", "id": 360001}, "severity": 1}
    )
    put = {
        "custom_fields": [
            {"id": 360000001, "value": "premier"},
            {"id": 360000002, "value": "1"},
            {"id": 360000003, "value": "2026-03-06T17:00:00Z"},
            {"id": 360000004, "value": "valid"},
            {"id": 360000006, "value": "covered"},
        ],
        "group_id": 20001,
        "tags": ALICE_TAGS,
        "comment": {
            "body": note_of(
                alice,
                "tierdesk: Premier, L1 (Production Application Down), "
                "first response due 2026-03-06T17:00:00Z",
                "Named contact: valid",
                "SLA: breached",
            ),
            "public": False,
        },
        "safe_update": True,
        "updated_stamp": RECORDED_STAMP,
    }
    assert calls(rsps) == [("GET", url), ("PUT", url)]
    assert zendesk_put(rsps) == put
    # base64("ops@acme.example/token:zd-token"): the tenant's API token, Zendesk-style.
    assert rsps.calls[1].request.headers["Authorization"] == (
        "Basic b3BzQGFjbWUuZXhhbXBsZS90b2tlbjp6ZC10b2tlbg=="
    )
    (row,) = rig.store.history("4242", ZD.id)
    assert written(row) == {"outcome": "written", "update": put, "note": "2 call(s). "}
    assert json.loads(row.decision or "{}")["tier"] == "premier"
    assert rig.store.last_written(ZD.id, "4242", "zendesk") == canonical(ticket_update(alice))

    # The echo: our PUT makes the trigger fire again with the same ticket state, only
    # updated_at (and the updater, our API user) differ, so it is a new delivery.
    echo = trigger("4242", "alice@acme.example", updated_at="2026-03-06T16:31:02Z")
    echo["updated_by"] = API_USER
    post_zendesk(rig.client, echo, "zd-2")

    run(rig)

    assert len(rsps.calls) == 2  # not one call more
    first_row, echo_row = rig.store.history("4242", ZD.id)
    assert first_row == row
    # Authored by our API user: the webhook of our own write, not decided at all. (An
    # agent's update that changes nothing tierdesk decides on is 'unchanged', also no
    # call: tests/webhooks/test_worker.py.)
    assert (echo_row.outcome, echo_row.decision, echo_row.written) == ("echo", None, None)


# -- JSM --------------------------------------------------------------------------------

KEY = "SUP-7"
JIRA_PUT = f"{JIRA_BASE}/rest/api/3/issue/{KEY}"
JSM_COMMENT = f"{JIRA_BASE}/rest/servicedeskapi/request/{KEY}/comment"
OURS = {
    "customfield_10080": "premier",
    "customfield_10081": "2026-03-06T17:00:00.000+0000",
    "customfield_10082": "valid",
    "customfield_10083": "",
    "customfield_10084": "covered",
    "customfield_10085": "premier",
}
ALICE_LABELS = ALICE_TAGS


def issue_updated(*, timestamp: datetime, echo: bool = False) -> dict[str, Any]:
    """zulip's recorded jira:issue_updated, made into alice's acme issue: the key, the
    creation time, the reporter, the priority and acme's JSM organization changed, the
    rest verbatim. ``echo``: as Jira sends it after tierdesk's own write."""
    payload = VENDOR / "jsm" / "payloads" / "jira-issue_updated__priority.json"
    doc: dict[str, Any] = json.loads(payload.read_bytes())
    doc["timestamp"] = int(timestamp.timestamp() * 1000)
    doc["issue"]["key"] = KEY
    fields = doc["issue"]["fields"]
    fields["created"] = "2026-03-06T16:30:00.000+0000"
    fields["reporter"]["emailAddress"] = "alice@acme.example"
    fields["priority"] |= {"name": "Highest", "id": "1"}
    fields["customfield_10002"] = [{"id": 7, "name": "Acme Corp"}]
    fields["customfield_10070"] = "Jira Software"
    if echo:
        fields |= OURS | {"labels": ALICE_LABELS}
        doc["user"] |= {"emailAddress": API_USER, "name": "ops", "displayName": "tierdesk"}
        doc["changelog"]["items"] = [
            {
                "field": "labels",
                "fieldtype": "jira",
                "from": None,
                "fromString": "",
                "to": None,
                "toString": " ".join(ALICE_LABELS),
            },
        ]
    return doc


def post_jsm(client: FlaskClient, doc: dict[str, Any], delivery: str) -> None:
    body = json.dumps(doc).encode()
    response = client.post(
        f"/webhooks/jsm/{JSM.id}",
        data=body,
        content_type="application/json",
        headers={
            "X-Hub-Signature": sign_hub(JSM_SECRET, body),
            "X-Atlassian-Webhook-Identifier": delivery,
        },
    )
    assert (response.status_code, (response.json or {}).get("status")) == (202, "queued")


def test_the_jsm_story_one_put_and_one_comment_then_its_echo_costs_nothing(
    rig: Rig, rsps: responses.RequestsMock
) -> None:
    rsps.put(JIRA_PUT, status=204, match=[matchers.query_param_matcher({"notifyUsers": "false"})])
    comment = VENDOR / "jsm" / "payloads" / "go-atlassian-sm-get-comment-request.json"
    rsps.post(JSM_COMMENT, body=comment.read_bytes(), status=201, content_type="application/json")
    opened = datetime(2026, 3, 6, 16, 31, tzinfo=UTC)
    post_jsm(rig.client, issue_updated(timestamp=opened), "atl-1")

    run(rig)

    alice = expected_decision(
        {
            "id": KEY,
            "created_at": "2026-03-06T16:30:00Z",
            "requester": "alice@acme.example",
            "organization": {"vendor": "jsm", "id": "7"},
            "priority": "Highest",
            "product": "jira-software",
            "vendor": "jsm",
        }
    )
    assert calls(rsps) == [("PUT", JIRA_PUT + "?notifyUsers=false"), ("POST", JSM_COMMENT)]
    put = assert_conforms("jira", rsps.calls[0].request)
    note = assert_conforms("jsm", rsps.calls[1].request)
    # The issue is already Highest (severity L1 comes from that priority): no priority.
    assert put == {
        "fields": OURS,
        "update": {"labels": [{"add": label} for label in ALICE_LABELS]},
    }
    assert note == {
        "body": note_of(
            alice,
            "tierdesk: Premier, L1 (Production Application Down), "
            "first response due 2026-03-06T17:00:00Z",
            "Named contact: valid",
            "SLA: breached",
        ),
        "public": False,
    }
    (row,) = rig.store.history(KEY, JSM.id)
    assert written(row) == {"outcome": "written", "update": put, "note": "2 call(s). "}

    # The echo of our PUT: the same issue, now showing our fields and labels, changed
    # by our API user, a moment later. Same decision: zero calls.
    post_jsm(rig.client, issue_updated(timestamp=opened + timedelta(seconds=2), echo=True), "atl-2")

    run(rig)

    assert len(rsps.calls) == 2
    _, echo_row = rig.store.history(KEY, JSM.id)
    assert (echo_row.outcome, echo_row.decision, echo_row.written) == ("echo", None, None)
