"""`ZendeskTickets.apply`: one GET, at most one safe-update PUT, re-read on 409.

The Support API is stood in for by `responses` only. GETs are answered with the
recorded ticket bodies from ../shared/vendor (only the id and what a case is about
changed, the rest verbatim), and every request sent is checked against the published
spec (`contracts`, errata applied). Decisions come from the real engine and the bundled
mappings: alice@acme.example is a Premier named contact, bob@acme.example is not.
Nothing sleeps: the client's ``sleep`` records the waits it was asked for.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
import responses
from requests.auth import HTTPBasicAuth

from connector.errors import Conflict, RateLimited, Rejected, Unauthorized
from connector.fields import FieldMap
from connector.http import HttpClient, TicketWindow
from connector.render import Outcome
from connector.zendesk import ZendeskTickets
from entitlements.decide import Decision, decide, followed
from entitlements.rulebook import Rulebook
from entitlements.sla import Status
from entitlements.tickets import parse_ticket
from mappings import load_mappings
from pipeline.writeback import ticket_update
from tests.connector.contracts import assert_conforms, body_errors, operation
from tests.shared import VENDOR

# -- helpers ------------------------------------------------------------------------

BASE = "https://acme.zendesk.com"
TICKET_ID = "4242"
URL = f"{BASE}/api/v2/tickets/{TICKET_ID}"
PUT_TEMPLATE = "/api/v2/tickets/{ticket_id}"
PAYLOADS = VENDOR / "zendesk" / "payloads"
PREFIX = "tierdesk_"
FIELDS = FieldMap(
    tier="360000001",
    severity="360000002",
    first_response_due="360000003",
    named_contact="360000004",
    named_contact_reason="360000005",
    coverage="360000006",
    groups={"premier": "20001", "select": "20002"},
)
# Friday 16:31 UTC, a minute after the ticket was opened: the Premier team is on duty
# (on the global weekend the routing rule would hand Premier tickets to Select).
NOW = datetime(2026, 3, 6, 16, 31, tzinfo=UTC)
# zenpy-ticket-show-200.json's updated_at: what the safe update must send back.
RECORDED_STAMP = "2023-09-18T23:34:36Z"
# Not recorded anywhere public: the shape Zendesk documents for a failed safe update.
CONFLICT_409 = b'{"error":"UpdateConflict","description":"Safe Update prevented the update"}'

ALICE_TAGS = ["tierdesk_contact_valid", "tierdesk_phone", "tierdesk_sev_1", "tierdesk_tier_premier"]


def recorded(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


@cache
def rulebook() -> Rulebook:
    return load_mappings()


def decision(
    requester: str = "alice@acme.example", severity: int = 1, product: str = "jira-software"
) -> Decision:
    ticket = parse_ticket(
        {
            "id": TICKET_ID,
            "created_at": "2026-03-06T16:30:00Z",
            "requester": requester,
            "organization": {"vendor": "zendesk", "id": 360001},
            "severity": severity,
            "priority": "urgent",
            "product": product,
            "environment": "production",
        }
    )
    return decide(ticket, rulebook(), NOW)


def ticket(name: str = "zenpy-ticket-show-200.json", **changes: Any) -> dict[str, Any]:
    """A recorded GET body with the id (and ``changes``) adjusted, the rest verbatim."""
    doc: dict[str, Any] = json.loads(recorded(name))
    doc["ticket"] |= {"id": int(TICKET_ID), **changes}
    return doc


def showing(d: Decision, *, agents_tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """Ticket properties that already show ``d``, written out independently of the code
    under test. An empty text field reads back as null (vendor README, errata 2)."""
    due = d.to_json()["first_response_due"]
    return {
        "custom_fields": [
            {"id": 360000001, "value": d.tier},
            {"id": 360000002, "value": str(d.severity)},
            {"id": 360000003, "value": due},
            {"id": 360000004, "value": d.named_contact.status},
            {"id": 360000005, "value": d.named_contact.reason},
            {"id": 360000006, "value": "covered" if d.covered else "not_covered"},
        ],
        "priority": d.priority,
        "group_id": int(FIELDS.groups[d.team]) if d.team in FIELDS.groups else None,
        "tags": [*agents_tags, *d.tags],
    }


def note_of(d: Decision, head: str, contact: str, *more: str) -> str:
    return "\n".join([head, contact, *more, "", *d.explanation])


def answer_get(rsps: responses.RequestsMock, *bodies: dict[str, Any]) -> None:
    """Answers to the GET, served in order (the last one repeats)."""
    for body in bodies:
        rsps.get(URL, json=body)


def answer_put(rsps: responses.RequestsMock, *statuses: int) -> None:
    for status in statuses:
        body = recorded("zenpy-ticket-update-200.json") if status == 200 else CONFLICT_409
        rsps.put(URL, body=body, status=status, content_type="application/json")


def sent(rsps: responses.RequestsMock) -> list[tuple[str, Any]]:
    """(method, JSON body) of every request, each checked against the Support API spec."""
    out = []
    for call in rsps.calls:
        assert call.request.url == URL
        out.append((call.request.method or "", assert_conforms("zendesk", call.request)))
    return out


def puts(rsps: responses.RequestsMock) -> list[dict[str, Any]]:
    return [body["ticket"] for method, body in sent(rsps) if method == "PUT"]


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    # Not every registered answer is used: a PUT registered for a case that needs none
    # must not fail the test; an unregistered request still does (ConnectionError).
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def tickets(waits: list[float]) -> ZendeskTickets:
    client = HttpClient(BASE, HTTPBasicAuth("ops@acme.example/token", "t"), sleep=waits.append)
    return ZendeskTickets(client, FIELDS, PREFIX)


def apply(tickets: ZendeskTickets, d: Decision, previous: dict[str, Any] | None = None) -> Outcome:
    return tickets.apply(TICKET_ID, d, ticket_update(d), previous)


# -- the first write ------------------------------------------------------------------


def test_first_write_puts_fields_priority_group_tags_and_an_internal_note(
    rsps: responses.RequestsMock, tickets: ZendeskTickets
) -> None:
    # The recorded ticket as Zendesk serves it: no priority, group, tags or custom fields.
    answer_get(rsps, ticket())
    answer_put(rsps, 200)
    alice = decision()

    outcome = apply(tickets, alice)

    expected = {
        "custom_fields": [
            {"id": 360000001, "value": "premier"},
            {"id": 360000002, "value": "1"},
            {"id": 360000003, "value": "2026-03-06T17:00:00Z"},
            {"id": 360000004, "value": "valid"},
            # 360000005, the reason, is "" and the field is empty: nothing to send.
            {"id": 360000006, "value": "covered"},
        ],
        "priority": "urgent",
        "group_id": 20001,
        "tags": ALICE_TAGS,
        "comment": {
            "body": note_of(
                alice,
                "tierdesk: Premier, L1 (Production Application Down), "
                "first response due 2026-03-06T17:00:00Z",
                "Named contact: valid",
            ),
            "public": False,
        },
        "safe_update": True,
        "updated_stamp": RECORDED_STAMP,
    }
    assert [m for m, _ in sent(rsps)] == ["GET", "PUT"]
    assert puts(rsps) == [expected]
    assert outcome == Outcome("written", expected, 2)
    # Zendesk API-token auth: "{email}/token" and the token, as Basic.
    assert rsps.calls[1].request.headers["Authorization"] == "Basic " + (
        "b3BzQGFjbWUuZXhhbXBsZS90b2tlbjp0"  # base64("ops@acme.example/token:t")
    )


def test_the_published_spec_rejects_id_value_custom_fields_and_the_errata_accept_them() -> None:
    # Why contracts patches the spec: as published, custom_fields items are field
    # definitions (key, type, title required), not the {id, value} pairs the API takes.
    body = {"ticket": {"custom_fields": [{"id": 360000001, "value": "premier"}]}}
    as_published = body_errors("zendesk", PUT_TEMPLATE, "PUT", body, errata=False)
    assert "ticket/custom_fields/0: 'key' is a required property" in as_published
    assert body_errors("zendesk", PUT_TEMPLATE, "PUT", body) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v2/tickets/4242.json"),
        ("PUT", "/api/v2/tickets/4242.json"),
        ("GET", "/api/v2/organizations.json"),
        ("PUT", "/api/v2/users/9.json"),
        ("GET", "/api/v2/users/count.json"),
    ],
)
def test_paths_ending_in_json_are_not_the_documented_ones(method: str, path: str) -> None:
    # A spec-based sandbox (Prism, the twins) answers them with 404: every event would
    # dead-letter. The contract checks hold the connectors to the documented paths.
    with pytest.raises(AssertionError, match="declares no operation"):
        operation("zendesk", method, path)
    assert operation("zendesk", method, path.removesuffix(".json"))[0].startswith("/api/v2/")


def test_a_bob_decision_writes_the_fallback_and_the_reason(
    rsps: responses.RequestsMock, tickets: ZendeskTickets
) -> None:
    # bob is not a named contact: the account falls back to its pay-as-you-go hours,
    # whose team has no Zendesk group configured, so no group_id is sent. The reason is
    # Premier's; Priority, tried and passed over, is explained, not flagged (RULES.md §7).
    answer_get(rsps, ticket())
    answer_put(rsps, 200)
    bob = decision("bob@acme.example")

    apply(tickets, bob)

    (put,) = puts(rsps)
    assert put["custom_fields"] == [
        {"id": 360000001, "value": "payg"},
        {"id": 360000002, "value": "1"},
        {"id": 360000003, "value": "2026-03-09T10:30:00Z"},
        {"id": 360000004, "value": "invalid"},
        {"id": 360000005, "value": "not_listed"},
        {"id": 360000006, "value": "covered"},
    ]
    assert "group_id" not in put
    assert put["tags"] == sorted(
        [
            "tierdesk_tier_payg",
            "tierdesk_sev_1",
            "tierdesk_contact_invalid",
            "tierdesk_fallback",
            "tierdesk_reason_not_listed",
        ]
    )
    assert put["comment"]["body"].splitlines()[:3] == [
        "tierdesk: Pay-as-you-go hours, L1 (L1), first response due 2026-03-09T10:30:00Z",
        "Named contact: invalid (not_listed)",
        "Reasons: not_listed",
    ]


# -- only what differs ------------------------------------------------------------------


def test_same_decision_only_tags_differ_puts_the_tags_alone_and_keeps_the_agents(
    rsps: responses.RequestsMock, tickets: ZendeskTickets
) -> None:
    # Tags are set as a whole on a single-ticket update: the PUT must carry the agents'
    # tags along, replace a stale tierdesk_* tag, and add no note (nothing material).
    alice = decision()
    fresh = showing(alice) | {
        "tags": ["vip", "tierdesk_tier_premier", "tierdesk_sev_2", "escalated"],
        "updated_at": "2026-03-06T16:40:00Z",
    }
    answer_get(rsps, ticket(**fresh))
    answer_put(rsps, 200)

    outcome = apply(tickets, alice, previous=ticket_update(alice))

    expected = {
        "tags": sorted(["vip", "escalated", *ALICE_TAGS]),
        "safe_update": True,
        "updated_stamp": "2026-03-06T16:40:00Z",
    }
    assert puts(rsps) == [expected]
    assert outcome == Outcome("written", expected, 2)


def test_a_ticket_already_showing_the_decision_gets_no_put(
    rsps: responses.RequestsMock, tickets: ZendeskTickets
) -> None:
    # The agents' own tags and custom field (123, null in the recording) differ from
    # nothing tierdesk writes; even a first write (previous None) sends nothing.
    alice = decision()
    fresh = showing(alice, agents_tags=("test_tag",))
    fresh["custom_fields"].append({"id": 123, "value": None})
    answer_get(rsps, ticket(**fresh))
    answer_put(rsps, 200)

    outcome = apply(tickets, alice)

    assert outcome == Outcome("unchanged", {}, 1, "the ticket already shows this")
    assert [m for m, _ in sent(rsps)] == ["GET"]


def test_a_material_change_since_the_last_write_adds_the_note(
    rsps: responses.RequestsMock, tickets: ZendeskTickets
) -> None:
    # Last time bob's request was decided (payg, invalid); now alice's: a new tier.
    alice = decision()
    answer_get(rsps, ticket(**showing(decision("bob@acme.example"))))
    answer_put(rsps, 200)

    apply(tickets, alice, previous=ticket_update(decision("bob@acme.example")))

    (put,) = puts(rsps)
    assert put["comment"] == {
        "body": note_of(
            alice,
            "tierdesk: Premier, L1 (Production Application Down), "
            "first response due 2026-03-06T17:00:00Z",
            "Named contact: valid",
            "Re-decided from the ticket's creation: tier payg → premier;"
            " first response due 2026-03-09T10:30:00Z → 2026-03-06T17:00:00Z",
        ),
        "public": False,
    }
    assert put["group_id"] == 20001  # no group before (payg has none): routed


@pytest.mark.parametrize(
    ("previous_severity", "agents_priority", "severity", "expected"),
    [
        # No write of ours yet: the decision's priority, whatever the ticket had.
        pytest.param(None, "low", 1, "urgent", id="first-write-sets-it"),
        # The ticket still shows what tierdesk wrote (normal): tierdesk may change it.
        pytest.param(3, "normal", 2, "high", id="our-own-priority-follows-the-decision"),
        # An agent raised normal → urgent after our write; we want high: never lowered.
        pytest.param(3, "urgent", 2, None, id="agent-raised-above-the-decision-kept"),
        # An agent raised normal → high; the decision is now urgent: raised further.
        pytest.param(3, "high", 1, "urgent", id="agent-raised-but-decision-more-severe"),
        # An agent lowered high → low after our write; the decision became more severe
        # (L2 → L1): tierdesk raises it, as the docstring allows.
        pytest.param(2, "low", 1, "urgent", id="agent-lowered-then-more-severe-decision"),
        # An agent lowered high → low after our write and the decision is still high:
        # "only raises it for a more severe decision", so the agent's low stays.
        pytest.param(
            2,
            "low",
            2,
            None,
            id="agent-lowered-same-decision-kept",
        ),
    ],
)
def test_an_agents_priority_is_never_lowered_and_raised_only_for_a_more_severe_decision(
    rsps: responses.RequestsMock,
    tickets: ZendeskTickets,
    previous_severity: int | None,
    agents_priority: str,
    severity: int,
    expected: str | None,
) -> None:
    wanted = decision(severity=severity)
    previous = ticket_update(decision(severity=previous_severity)) if previous_severity else None
    before = decision(severity=previous_severity or severity)
    # The ticket shows tierdesk's last write, except the priority an agent may have set.
    answer_get(rsps, ticket(**showing(before) | {"priority": agents_priority}))
    answer_put(rsps, 200)

    outcome = apply(tickets, wanted, previous)

    assert outcome.update.get("priority") == expected, outcome.update
    assert all(body.get("priority") == expected for body in puts(rsps))


@pytest.mark.parametrize(
    ("previous_team", "current_group", "expected"),
    [
        pytest.param(None, None, 20001, id="unrouted-ticket-routed"),
        pytest.param(None, 30000, None, id="routed-by-hand-before-our-first-write-kept"),
        pytest.param("select", 20002, 20001, id="our-own-routing-follows-the-decision"),
        pytest.param("select", 30000, None, id="re-routed-by-an-agent-kept"),
        pytest.param("premier", 20001, None, id="already-in-the-group"),
    ],
)
def test_routes_only_tickets_nobody_rerouted_since_tierdesk_did(
    rsps: responses.RequestsMock,
    tickets: ZendeskTickets,
    previous_team: str | None,
    current_group: int | None,
    expected: int | None,
) -> None:
    alice = decision()
    previous = None if previous_team is None else ticket_update(alice) | {"team": previous_team}
    answer_get(rsps, ticket(tags=["vip"], group_id=current_group))
    answer_put(rsps, 200)

    apply(tickets, alice, previous)

    (put,) = puts(rsps)
    assert put.get("group_id") == expected


def test_a_severity_shown_in_the_tenants_own_terms_is_not_rewritten(
    rsps: responses.RequestsMock, waits: list[float]
) -> None:
    fields = replace(FIELDS, values={"severity": {"Sev 1": "1"}})
    client = HttpClient(BASE, HTTPBasicAuth("ops@acme.example/token", "t"), sleep=waits.append)
    alice = decision()
    fresh = showing(alice)
    fresh["custom_fields"][1] = {"id": 360000002, "value": "Sev 1"}
    answer_get(rsps, ticket(**fresh))
    answer_put(rsps, 200)

    outcome = ZendeskTickets(client, fields, PREFIX).apply(
        TICKET_ID, alice, ticket_update(alice), ticket_update(alice)
    )

    assert outcome.outcome == "unchanged", puts(rsps)


# -- conflicts, errors and rate limits ----------------------------------------------------


def test_a_409_re_reads_and_renders_again_from_the_second_read(
    rsps: responses.RequestsMock, tickets: ZendeskTickets
) -> None:
    # An agent tagged the ticket between our GET and our PUT: the retry must carry the
    # agent's new tag and the second read's updated_at, not repeat the stale PUT.
    first = ticket(updated_at="2026-03-06T16:31:00Z")
    second = ticket(updated_at="2026-03-06T16:31:05Z", tags=["agent_was_here"])
    answer_get(rsps, first, second)
    answer_put(rsps, 409, 200)

    outcome = apply(tickets, decision())

    bodies = puts(rsps)
    assert [m for m, _ in sent(rsps)] == ["GET", "PUT", "GET", "PUT"]
    assert [b["updated_stamp"] for b in bodies] == ["2026-03-06T16:31:00Z", "2026-03-06T16:31:05Z"]
    assert bodies[0]["tags"] == ALICE_TAGS
    assert bodies[1]["tags"] == sorted(["agent_was_here", *ALICE_TAGS])
    assert outcome.outcome == "written"
    assert outcome.update == bodies[1]
    assert outcome.calls == 4


def test_three_409s_give_up_with_conflict(
    rsps: responses.RequestsMock, tickets: ZendeskTickets
) -> None:
    answer_get(rsps, ticket())
    answer_put(rsps, 409)

    with pytest.raises(Conflict) as caught:
        apply(tickets, decision())

    assert [m for m, _ in sent(rsps)] == ["GET", "PUT"] * 3
    assert caught.value.transient  # the worker retries the event later
    assert str(caught.value) == (
        "PUT /api/v2/tickets/4242: the ticket changed under every one of 3 tries"
    )


@pytest.mark.parametrize("on", ["GET", "PUT"])
def test_a_404_means_the_ticket_is_gone_and_is_not_retried(
    rsps: responses.RequestsMock, tickets: ZendeskTickets, on: str
) -> None:
    not_found = recorded("zenpy-ticket-update-404-record-not-found.json")
    if on == "GET":
        rsps.get(URL, body=not_found, status=404, content_type="application/json")
    else:
        answer_get(rsps, ticket())
        rsps.put(URL, body=not_found, status=404, content_type="application/json")

    outcome = apply(tickets, decision())

    expected_calls = 1 if on == "GET" else 2
    assert outcome == Outcome(
        "ticket_gone", {}, expected_calls, "the ticket no longer exists (404)"
    )
    assert len(rsps.calls) == expected_calls


@pytest.mark.parametrize("status", [401, 403])
def test_bad_credentials_raise_unauthorized_after_one_call(
    rsps: responses.RequestsMock, tickets: ZendeskTickets, status: int
) -> None:
    rsps.get(URL, json={"error": "Couldn't authenticate you"}, status=status)

    with pytest.raises(Unauthorized) as caught:
        apply(tickets, decision())

    assert len(rsps.calls) == 1
    assert not caught.value.transient
    assert caught.value.status == status


def test_a_429_on_the_get_waits_exactly_retry_after_then_writes(
    rsps: responses.RequestsMock, tickets: ZendeskTickets, waits: list[float]
) -> None:
    rsps.get(
        URL,
        body=recorded("aaronellington-error-429-api_rate_limit_exceeded.json"),
        status=429,
        headers={"Retry-After": "7"},
        content_type="application/json",
    )
    answer_get(rsps, ticket())
    answer_put(rsps, 200)

    outcome = apply(tickets, decision())

    assert waits == [7.0]
    assert [m for m, _ in sent(rsps)] == ["GET", "GET", "PUT"]
    # The connector counts its own calls; the client's count includes the retry.
    assert (outcome.outcome, outcome.calls, tickets.client.calls) == ("written", 2, 3)


def test_a_422_is_rejected_without_quoting_the_body(
    rsps: responses.RequestsMock, tickets: ZendeskTickets
) -> None:
    # aaronellington's ticket (made open: a closed one is never PUT), routed to group
    # 123, an agent's tag and a null custom field (errata 2). The routing and the agent's
    # tag stay; Zendesk refuses with the recorded 422.
    answer_get(rsps, ticket("aaronellington-ticket-show-200.json", status="open"))
    rsps.put(
        URL,
        body=recorded("aaronellington-error-422-record_invalid.json"),
        status=422,
        content_type="application/json",
    )

    with pytest.raises(Rejected) as caught:
        apply(tickets, decision())

    (put,) = puts(rsps)
    assert "group_id" not in put
    assert put["tags"] == sorted(["test_tag", *ALICE_TAGS])
    assert put["updated_stamp"] == "2014-03-25T21:03:29Z"
    assert len(rsps.calls) == 2  # a permanent refusal is not retried
    assert str(caught.value) == "PUT /api/v2/tickets/4242: HTTP 422 RecordInvalid"


def test_recorded_bodies_are_used_verbatim_apart_from_the_id() -> None:
    # Guards the fixtures: only the id is changed by default, the rest is as recorded.
    original = json.loads(recorded("zenpy-ticket-show-200.json"))
    adjusted = ticket()
    assert adjusted["ticket"].pop("id") == int(TICKET_ID)
    expected = copy.deepcopy(original)
    expected["ticket"].pop("id")
    assert adjusted == expected


def test_a_closed_ticket_is_left_alone() -> None:
    # Zendesk refuses any update of a closed ticket (422): no PUT is tried.
    alice = decision()
    client = HttpClient(BASE, HTTPBasicAuth("ops@acme.example/token", "t"), sleep=lambda s: None)
    with responses.RequestsMock() as rsps:
        answer_get(rsps, ticket(status="closed"))
        outcome = ZendeskTickets(client, FIELDS, PREFIX).apply(
            TICKET_ID, alice, ticket_update(alice), None
        )
        assert (outcome.outcome, len(rsps.calls)) == ("ticket_closed", 1)


def test_the_per_ticket_update_window_holds_back_a_31st_update() -> None:
    # Zendesk refuses more than 30 updates of one ticket in 10 minutes: past tierdesk's
    # own margin the write is put off (RateLimited, transient: the worker retries later).
    alice = decision()
    client = HttpClient(BASE, HTTPBasicAuth("ops@acme.example/token", "t"), sleep=lambda s: None)
    window = TicketWindow(limit=1, window_s=600)
    tickets = ZendeskTickets(client, FIELDS, PREFIX, window)
    with responses.RequestsMock() as rsps:
        answer_get(rsps, ticket())
        answer_put(rsps, 200)
        assert tickets.apply(TICKET_ID, alice, ticket_update(alice), None).outcome == "written"
        with pytest.raises(RateLimited) as caught:
            tickets.apply(TICKET_ID, alice, ticket_update(alice), None)
        assert caught.value.transient and caught.value.retry_after is not None
        assert [call.request.method for call in rsps.calls] == ["GET", "PUT", "GET"]


# -- the SLA lifecycle ----------------------------------------------------------------


def test_an_escalation_writes_the_level_its_group_and_a_note(
    rsps: responses.RequestsMock, waits: list[float]
) -> None:
    """A breached ticket escalated to a level that has a group moves to that group, with
    the stage and level in their fields and an internal note; a ticket an agent routed
    by hand since tierdesk's last write stays where the agent put it."""
    fields = replace(
        FIELDS,
        sla="360000010",
        escalation_level="360000011",
        groups={**FIELDS.groups, "Director of Support": "30002"},
    )
    client = HttpClient(BASE, HTTPBasicAuth("ops@acme.example/token", "t"), sleep=waits.append)
    zendesk = ZendeskTickets(client, fields, PREFIX)
    before = decision()
    assert before.milestones is not None
    # Premier has no escalation levels; these are 24/7 SaaS's (RULES.md §3).
    levels = ("Technical Support Engineer", "Director of Support", "Head of Customer Experience")
    laddered = replace(before, milestones=replace(before.milestones, levels=levels))
    escalated = followed(laddered, Status("breached", 1), None, PREFIX)
    assert escalated.escalation_level == "Director of Support"
    answer_get(rsps, ticket(**showing(before)))
    answer_put(rsps, 200)

    zendesk.apply(TICKET_ID, escalated, ticket_update(escalated), ticket_update(before))

    (put,) = puts(rsps)
    assert_conforms("zendesk", rsps.calls[-1].request)
    assert put["group_id"] == 30002
    assert {"id": 360000010, "value": "breached"} in put["custom_fields"]
    assert {"id": 360000011, "value": "Director of Support"} in put["custom_fields"]
    assert "tierdesk_sla_breached" in put["tags"]
    assert "SLA: breached, escalated to Director of Support" in put["comment"]["body"]

    # An agent has since moved it to another group by hand: tierdesk leaves it there.
    rsps.reset()
    answer_get(rsps, ticket(**(showing(before) | {"group_id": 99999})))
    answer_put(rsps, 200)
    zendesk.apply(TICKET_ID, escalated, ticket_update(escalated), ticket_update(before))
    (put,) = puts(rsps)
    assert "group_id" not in put
