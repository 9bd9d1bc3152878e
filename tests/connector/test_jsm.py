"""`JsmIssues.apply`: one PUT of fields, priority and label operations, and a JSM
internal comment only when the decision changed.

Jira and JSM are stood in for by `responses` only. Every request is checked against the
published specs (`contracts`): the PUT against jira-platform.openapi.json's editIssue
(IssueUpdateDetails), the comment against service-management.openapi.json's
CommentCreateDTO, which allows no property but ``body`` and ``public``. Decisions come
from the real engine and the bundled mappings (acme's JSM organization is "7").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
import responses
from requests.auth import HTTPBasicAuth
from responses import matchers

from connector.fields import FieldMap
from connector.http import HttpClient
from connector.jsm import JsmIssues, jira_datetime, render
from connector.render import Outcome
from entitlements.decide import Decision, decide
from entitlements.rulebook import Rulebook
from entitlements.tickets import Ticket, parse_ticket
from mappings import load_mappings
from pipeline.connectors import Connectors
from pipeline.writeback import WriteResult, ticket_update
from tests.connector.contracts import Api, assert_conforms, body_errors
from tests.shared import VENDOR
from webhooks.events import TicketEvent
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Secret, Tenant

# -- helpers ------------------------------------------------------------------------

BASE = "https://acme.atlassian.net"
KEY = "SUP-7"
PUT_URL = f"{BASE}/rest/api/3/issue/{KEY}"
COMMENT_URL = f"{BASE}/rest/servicedeskapi/request/{KEY}/comment"
PREFIX = "tierdesk_"
# The fields tierdesk writes. Severity is left out on purpose: Jira keeps it in a
# select list, and tierdesk writes the level as plain text (see the report).
FIELDS = FieldMap(
    tier="customfield_10080",
    first_response_due="customfield_10081",
    named_contact="customfield_10082",
    named_contact_reason="customfield_10083",
    coverage="customfield_10084",
    team="customfield_10085",
)
NOW = datetime(2026, 3, 6, 16, 31, tzinfo=UTC)  # a Friday: the Premier team is on duty
ALICE_LABELS = [
    "tierdesk_contact_valid",
    "tierdesk_phone",
    "tierdesk_sev_1",
    "tierdesk_tier_premier",
]
ISSUE_404 = {
    "errorMessages": ["Issue does not exist or you do not have permission to see it."],
    "errors": {},
}


@cache
def rulebook() -> Rulebook:
    return load_mappings()


def jsm_ticket(
    requester: str = "alice@acme.example", severity: int = 1, product: str = "jira-software"
) -> Ticket:
    organization = {"vendor": "jsm", "id": "7"} if requester.endswith("@acme.example") else None
    return parse_ticket(
        {
            "id": KEY,
            "created_at": "2026-03-06T16:30:00Z",
            "requester": requester,
            "organization": organization,
            "severity": severity,
            "product": product,
            "environment": "production",
            "vendor": "jsm",
        }
    )


def decision(
    requester: str = "alice@acme.example", severity: int = 1, product: str = "jira-software"
) -> Decision:
    return decide(jsm_ticket(requester, severity, product), rulebook(), NOW)


def answer_put(rsps: responses.RequestsMock, url: str = PUT_URL, **kwargs: Any) -> None:
    # Only ?notifyUsers=false matches: a write of tierdesk's must not mail the watchers.
    rsps.put(
        url,
        status=kwargs.pop("status", 204),
        match=[matchers.query_param_matcher({"notifyUsers": "false"})],
        **kwargs,
    )


def answer_comment(rsps: responses.RequestsMock, url: str = COMMENT_URL) -> None:
    recorded = VENDOR / "jsm" / "payloads" / "go-atlassian-sm-get-comment-request.json"
    rsps.post(url, body=recorded.read_bytes(), status=201, content_type="application/json")


def sent(rsps: responses.RequestsMock) -> list[tuple[str, str, Any]]:
    """(method, url, JSON body) of every request, each checked against its spec."""
    out = []
    for call in rsps.calls:
        url = call.request.url or ""
        api: Api = "jsm" if "/rest/servicedeskapi/" in url else "jira"
        out.append((call.request.method or "", url, assert_conforms(api, call.request)))
    return out


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def issues(waits: list[float]) -> JsmIssues:
    client = HttpClient(BASE, HTTPBasicAuth("ops@acme.example", "jira-token"), sleep=waits.append)
    return JsmIssues(client, FIELDS, PREFIX)


def apply(
    issues: JsmIssues,
    d: Decision,
    previous: dict[str, Any] | None = None,
    current_priority: str | None = "Medium",
) -> Outcome:
    return issues.apply(KEY, d, ticket_update(d), previous, current_priority)


def note_of(d: Decision, head: str, contact: str, *more: str) -> str:
    return "\n".join([head, contact, *more, "", *d.explanation])


# -- the first write ------------------------------------------------------------------


def test_first_write_puts_fields_priority_labels_then_an_internal_comment(
    rsps: responses.RequestsMock, issues: JsmIssues
) -> None:
    answer_put(rsps)
    answer_comment(rsps)
    alice = decision()

    outcome = apply(issues, alice)

    put = {
        "fields": {
            "customfield_10080": "premier",
            "customfield_10081": "2026-03-06T17:00:00.000+0000",  # how Jira writes a date-time
            "customfield_10082": "valid",
            "customfield_10083": "",
            "customfield_10084": "covered",
            "customfield_10085": "premier",
            "priority": {"name": "Highest"},
        },
        "update": {"labels": [{"add": label} for label in ALICE_LABELS]},
    }
    comment = {
        "body": note_of(
            alice,
            "tierdesk: Premier, L1 (Production Application Down), "
            "first response due 2026-03-06T17:00:00Z",
            "Named contact: valid",
        ),
        "public": False,
    }
    assert sent(rsps) == [
        ("PUT", PUT_URL + "?notifyUsers=false", put),
        ("POST", COMMENT_URL, comment),
    ]
    assert outcome == Outcome("written", put, 2)
    # Jira Cloud: email + API token as Basic; base64("ops@acme.example:jira-token").
    assert {c.request.headers["Authorization"] for c in rsps.calls} == {
        "Basic b3BzQGFjbWUuZXhhbXBsZTpqaXJhLXRva2Vu"
    }


@pytest.mark.parametrize(
    ("iso", "jira"),
    [
        ("2026-03-06T17:00:00Z", "2026-03-06T17:00:00.000+0000"),
        ("2026-03-09T10:30:00Z", "2026-03-09T10:30:00.000+0000"),
        ("", ""),
    ],
)
def test_jira_datetime(iso: str, jira: str) -> None:
    assert jira_datetime(iso) == jira


def test_a_decision_that_did_not_change_materially_gets_no_comment(
    rsps: responses.RequestsMock, issues: JsmIssues
) -> None:
    # No read: the fields are sent again, but labels and priority already match what
    # tierdesk wrote, and nothing material changed, so no comment.
    answer_put(rsps)
    answer_comment(rsps)
    alice = decision()

    outcome = apply(issues, alice, ticket_update(alice), current_priority="Highest")

    (call,) = sent(rsps)
    assert call[0] == "PUT"
    assert call[2] == {
        "fields": {
            "customfield_10080": "premier",
            "customfield_10081": "2026-03-06T17:00:00.000+0000",
            "customfield_10082": "valid",
            "customfield_10083": "",
            "customfield_10084": "covered",
            "customfield_10085": "premier",
        }
    }
    assert outcome.calls == 1


def test_labels_remove_only_tierdesks_previous_labels_and_add_the_new_ones(
    rsps: responses.RequestsMock, issues: JsmIssues
) -> None:
    # Last time bob's request was decided (payg fallback). Label operations apply to
    # whatever the issue has: an agent's labels are never named, so they stay; a label
    # in `previous` without tierdesk's prefix is not tierdesk's to remove either.
    answer_put(rsps)
    answer_comment(rsps)
    previous = ticket_update(decision("bob@acme.example"))
    previous["tags"] = [*previous["tags"], "vip"]

    apply(issues, decision(), previous)

    labels = sent(rsps)[0][2]["update"]["labels"]
    assert labels == [
        {"remove": "tierdesk_contact_invalid"},
        {"remove": "tierdesk_fallback"},
        {"remove": "tierdesk_reason_not_listed"},
        {"remove": "tierdesk_tier_payg"},
        {"add": "tierdesk_contact_valid"},
        {"add": "tierdesk_phone"},
        {"add": "tierdesk_tier_premier"},
    ]  # tierdesk_sev_1 was there and stays: no operation


def test_a_ticket_not_covered_clears_the_due_date(
    rsps: responses.RequestsMock, issues: JsmIssues
) -> None:
    # Trello is not covered for an unknown account: no SLA, so the date-time field is
    # cleared with null (an empty string is not a Jira date-time).
    answer_put(rsps)
    answer_comment(rsps)
    carol = decision("carol@unknown.example", severity=2, product="trello")

    apply(issues, carol)

    (put, comment) = (body for _, _, body in sent(rsps))
    assert put["fields"]["customfield_10081"] is None
    assert put["fields"]["customfield_10084"] == "not_covered"
    assert comment["body"].startswith("tierdesk: Select, L2 (L2), no SLA (not covered)\n")


def test_nothing_to_write_makes_no_call(rsps: responses.RequestsMock, waits: list[float]) -> None:
    # No field configured, the priority and labels already as decided, nothing material:
    # not even an empty PUT.
    client = HttpClient(BASE, HTTPBasicAuth("ops@acme.example", "jira-token"), sleep=waits.append)
    alice = decision()

    outcome = JsmIssues(client, FieldMap(), PREFIX).apply(
        KEY, alice, ticket_update(alice), ticket_update(alice), "Highest"
    )

    assert outcome == Outcome("unchanged", {}, 0)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    ("previous_severity", "current", "severity", "expected"),
    [
        pytest.param(None, "Medium", 1, {"name": "Highest"}, id="first-write-sets-it"),
        pytest.param(1, "Highest", 1, None, id="already-right"),
        pytest.param(3, "Medium", 2, {"name": "High"}, id="our-own-priority-follows"),
        pytest.param(3, "Highest", 2, None, id="agent-raised-above-the-decision-kept"),
        pytest.param(2, "Low", 1, {"name": "Highest"}, id="agent-lowered-then-more-severe"),
        pytest.param(
            2,
            "Low",
            2,
            None,
            id="agent-lowered-same-decision-kept",
        ),
    ],
)
def test_an_agents_priority_is_never_lowered_and_raised_only_for_a_more_severe_decision(
    rsps: responses.RequestsMock,
    issues: JsmIssues,
    previous_severity: int | None,
    current: str,
    severity: int,
    expected: dict[str, str] | None,
) -> None:
    answer_put(rsps)
    answer_comment(rsps)
    previous = ticket_update(decision(severity=previous_severity)) if previous_severity else None

    outcome = apply(issues, decision(severity=severity), previous, current_priority=current)

    assert outcome.update.get("fields", {}).get("priority") == expected, outcome.update


# -- Data Center ------------------------------------------------------------------------


def test_datacenter_uses_rest_api_2_and_a_bearer_token(rsps: responses.RequestsMock) -> None:
    # Through the tenant's write-back, so that the deployment and the personal access
    # token come from configuration as they do in production.
    base = "https://jira.acme.example"
    tenant = Tenant(
        id="acme-dc",
        vendor="jsm",
        base_url=base,
        api_token=Secret("pat-123"),
        fields=FIELDS,
        deployment="datacenter",
    )
    answer_put(rsps, f"{base}/rest/api/2/issue/{KEY}")
    answer_comment(rsps, f"{base}/rest/servicedeskapi/request/{KEY}/comment")
    event = TicketEvent(
        tenant=tenant.id,
        vendor="jsm",
        event_id="e-1",
        kind="ticket.updated",
        ticket_id="10042",
        ticket_key=KEY,
        occurred_at=NOW,
        ticket=jsm_ticket(),
    )
    alice = decision()

    result = Connectors(LiveMappings(None))(tenant).write(tenant, event, alice, None)

    assert [(c.request.method, c.request.url) for c in rsps.calls] == [
        ("PUT", f"{base}/rest/api/2/issue/{KEY}?notifyUsers=false"),
        ("POST", f"{base}/rest/servicedeskapi/request/{KEY}/comment"),
    ]
    assert {c.request.headers["Authorization"] for c in rsps.calls} == {"Bearer pat-123"}
    put = json.loads(rsps.calls[0].request.body or b"")
    # The Cloud spec has only /rest/api/3; v2's editIssue takes the same IssueUpdateDetails
    # (the two differ in rich-text fields, which tierdesk does not write).
    assert body_errors("jira", "/rest/api/3/issue/{issueIdOrKey}", "PUT", put) == []
    assert assert_conforms("jsm", rsps.calls[1].request)["public"] is False
    assert result == WriteResult("written", put, "2 call(s). ")


# -- errors and rate limits -------------------------------------------------------------


def test_a_404_means_the_issue_is_gone_and_no_comment_is_tried(
    rsps: responses.RequestsMock, issues: JsmIssues
) -> None:
    answer_put(rsps, status=404, json=ISSUE_404)
    answer_comment(rsps)

    outcome = apply(issues, decision())

    assert outcome == Outcome("ticket_gone", {}, 1, "the issue no longer exists (404)")
    assert [c.request.method for c in rsps.calls] == ["PUT"]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_internal_note_leaves_the_written_issue_written(
    rsps: responses.RequestsMock, issues: JsmIssues, status: int
) -> None:
    """Issue 10 item 3: the PUT went through, so the event must not become a dead letter
    (which would leave the ticket without an SLA clock until a replay): the note is
    optional, and the outcome says why there is none."""
    answer_put(rsps)
    rsps.post(COMMENT_URL, status=status, json={"errorMessage": "not an agent"})

    outcome = apply(issues, decision())

    assert [c.request.method for c in rsps.calls] == ["PUT", "POST"]
    assert outcome.outcome == "written" and outcome.calls == 2
    assert outcome.update == json.loads(rsps.calls[0].request.body or b"")
    assert f"no internal note: the request comment was refused (HTTP {status})" in outcome.note


def test_a_429_waits_exactly_retry_after_seconds_then_writes(
    rsps: responses.RequestsMock, issues: JsmIssues, waits: list[float]
) -> None:
    # No Jira 429 was recorded; headers as Atlassian's rate-limiting page describes them.
    answer_put(
        rsps,
        status=429,
        headers={
            "Retry-After": "3",
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "RateLimit-Reason": "jira-per-issue-on-write",
        },
    )
    answer_put(rsps)
    answer_comment(rsps)

    outcome = apply(issues, decision())

    assert waits == [3.0]
    assert [c.request.method for c in rsps.calls] == ["PUT", "PUT", "POST"]
    assert rsps.calls[0].request.body == rsps.calls[1].request.body  # the same write again
    assert (outcome.outcome, outcome.calls, issues.client.calls) == ("written", 2, 3)


@pytest.mark.parametrize(
    ("recorded_type", "expected"),
    [
        ("datetime", "2026-03-06T17:00:00.000+0000"),  # what a Jira date-time field takes
        ("text", "2026-03-06T17:00:00Z"),  # an admin's text field keeps ISO UTC
        (None, "2026-03-06T17:00:00.000+0000"),  # not recorded: the date-time setup creates
    ],
)
def test_the_due_time_is_written_as_its_field_type_wants(
    recorded_type: str | None, expected: str
) -> None:
    types = {"first_response_due": recorded_type} if recorded_type else {}
    fields = replace(FIELDS, types=types)
    body = render(decision(), "Highest", None, fields, "tierdesk_")
    assert body["fields"]["customfield_10081"] == expected
