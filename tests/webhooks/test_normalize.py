"""`webhooks.zendesk.normalize` and `webhooks.jsm.normalize` over recorded vendor payloads
(parsed JSON) and hand-built bodies: every `TicketEvent` field, and the field named when a
body is refused.

Expected values were read off the payload files by hand (see the comments), not taken
from the code under test.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from entitlements.tickets import OrganizationRef, Ticket
from tests.shared import VENDOR
from webhooks import jsm, zendesk
from webhooks.events import Comment, Ignored, PayloadError, TicketEvent, Worklog
from webhooks.settings import FieldMap, Tenant

ZENDESK = Tenant(id="acme-zd", vendor="zendesk")
JSM = Tenant(
    id="acme-jsm",
    vendor="jsm",
    fields=FieldMap(
        severity="customfield_10071",
        product="customfield_10070",
        organizations="customfield_10002",
        values={"severity": {"Medium": "3"}},
    ),
)


def load(vendor: str, name: str) -> Any:
    return json.loads((VENDOR / vendor / "payloads" / name).read_bytes())


def zd(name: str) -> Any:
    return load("zendesk", name)


def jira(name: str) -> Any:
    return load("jsm", name)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def millis(epoch_ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)


def normalized(result: TicketEvent | Ignored) -> TicketEvent:
    assert isinstance(result, TicketEvent), result
    return result


def refused(call: Any, *args: Any, **kwargs: Any) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        call(*args, **kwargs)
    return caught.value


def trigger(**ticket: Any) -> dict[str, Any]:
    """TRIGGER_BODY with its placeholders filled the way Zendesk fills them: every value
    a string, "" where the ticket has none. Keyword arguments override ticket fields."""
    body = copy.deepcopy(zendesk.TRIGGER_BODY)
    body["event"] = ticket.pop("event", "ticket.updated")
    body["updated_by"] = ticket.pop("updated_by", "agent@acme.example")
    body["ticket"].update(
        {
            "id": "4017",
            "created_at": "2024-04-17T17:18:10Z",
            "updated_at": "2024-04-17T18:00:00Z",
            "requester": "alice@customer.example",
            "organization_id": "360001",
            "priority": "Urgent",
            "severity": "Sev 1",
            "product": "Jira Software",
            "environment": "production",
            "category": "incident",
        }
    )
    body["ticket"].update(ticket)
    return body


ZD_TRIGGER_TENANT = Tenant(
    id="acme-zd",
    vendor="zendesk",
    fields=FieldMap(values={"severity": {"sev 1": "1"}, "product": {"Jira Software": "jira"}}),
)


# -- Zendesk event webhooks ---------------------------------------------------------


def test_zendesk_ticket_created_every_field() -> None:
    event = normalized(
        zendesk.normalize(zd("dust-event-webhook-ticket.created.json"), ZENDESK, "inv-1")
    )
    assert event == TicketEvent(
        tenant="acme-zd",
        vendor="zendesk",
        event_id="inv-1",  # the invocation id, when there is one
        kind="ticket.created",
        ticket_id="5158",
        ticket_key="5158",
        # "time": "2025-01-08T10:12:07.672717030Z": nanoseconds cut to microseconds
        occurred_at=utc(2025, 1, 8, 10, 12, 7, 672717),
        ticket=Ticket(
            id="5158",
            created_at=utc(2025, 1, 8, 10, 12, 7),
            organization=OrganizationRef("zendesk", "8447346622462"),
            priority="high",  # "HIGH" in the event API, "high" in the REST API and mappings
            vendor="zendesk",
        ),
        actor="zendesk-user:8447388090494",
        partial=True,  # an event webhook: no requester email, no custom fields
        resolved=False,  # "status": "OPEN"
    )


@pytest.mark.parametrize(
    ("name", "changes", "priority", "occurred"),
    [
        (
            "dust-event-webhook-ticket.priority_changed.json",
            ("priority_changed",),
            "urgent",
            utc(2025, 1, 8, 11, 30, 15, 456789),
        ),
        (
            "dust-event-webhook-ticket.status_changed.json",
            ("status_changed",),
            "high",
            utc(2025, 1, 8, 16, 45, 20, 987654),
        ),
        (
            "dust-event-webhook-ticket.agent_assignment_changed.json",
            ("agent_assignment_changed",),
            "urgent",
            utc(2025, 1, 8, 12, 15, 45, 789012),
        ),
    ],
    ids=["priority_changed", "status_changed", "agent_assignment_changed"],
)
def test_zendesk_change_events_are_updates_naming_the_change(
    name: str, changes: tuple[str, ...], priority: str, occurred: datetime
) -> None:
    doc = zd(name)
    event = normalized(zendesk.normalize(doc, ZENDESK, ""))
    assert (event.kind, event.changes, event.occurred_at) == ("ticket.updated", changes, occurred)
    assert event.ticket is not None and event.ticket.priority == priority
    assert event.ticket.organization == OrganizationRef("zendesk", "8447346622462")
    # No invocation id header: the event's own id is the dedupe key.
    assert event.event_id == doc["id"]


def test_zendesk_non_ticket_events_are_ignored() -> None:
    doc = zd("aaronellington-event-webhook-user.group_membership_created.json")
    assert doc["type"] == "zen:event-type:user.group_membership_created"  # the shape relied on
    result = zendesk.normalize(doc, ZENDESK, "inv-1")
    assert isinstance(result, Ignored)
    assert "user.group_membership_created" in result.reason


def event_body(name: str, **detail: Any) -> dict[str, Any]:
    doc = zd("dust-event-webhook-ticket.created.json")
    doc["type"] = "zen:event-type:" + name
    doc["detail"].update(detail)
    return dict(doc)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ticket.created", "ticket.created"),
        ("ticket.deleted", "ticket.deleted"),
        ("ticket.soft_deleted", "ticket.deleted"),
        ("ticket.permanently_deleted", "ticket.deleted"),
        ("ticket.comment_added", "comment.created"),
        ("ticket.tags_changed", "ticket.updated"),
        ("ticket.some_future_event", "ticket.updated"),  # any other ticket event
    ],
)
def test_zendesk_event_kinds(name: str, kind: str) -> None:
    assert normalized(zendesk.normalize(event_body(name), ZENDESK, "")).kind == kind


def test_zendesk_a_deleted_status_is_a_deletion() -> None:
    """A ticket whose status is "deleted" is gone, whatever the event's name: its clock
    stops with no outcome and nothing is written (issue 10 item 7)."""
    body = event_body("ticket.status_changed", status="DELETED")
    assert normalized(zendesk.normalize(body, ZENDESK, "")).kind == "ticket.deleted"
    deleted = normalized(zendesk.normalize(trigger(status="Deleted"), ZENDESK, ""))
    assert deleted.kind == "ticket.deleted"
    solved = normalized(zendesk.normalize(trigger(status="Solved"), ZENDESK, ""))
    assert (solved.kind, solved.resolved) == ("ticket.updated", True)


def test_zendesk_comment_added_carries_the_comment() -> None:
    doc = event_body("ticket.comment_added")
    doc["event"] = {"comment": {"id": 9001, "is_public": False, "author": {"id": "8447388090494"}}}
    event = normalized(zendesk.normalize(doc, ZENDESK, ""))
    assert event.comment == Comment("9001", public=False, author="8447388090494")
    assert event.changes == ()
    # A comment event without a comment object is still a comment event, with no Comment.
    doc["event"] = {}
    assert normalized(zendesk.normalize(doc, ZENDESK, "")).comment is None


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"organization_id": None}, None),
        ({"organization_id": ""}, None),
        ({"organization_id": 360001}, OrganizationRef("zendesk", "360001")),
    ],
    ids=["null", "empty", "number"],
)
def test_zendesk_organization(detail: dict[str, Any], expected: OrganizationRef | None) -> None:
    event = normalized(zendesk.normalize(event_body("ticket.created", **detail), ZENDESK, ""))
    assert event.ticket is not None and event.ticket.organization == expected


@pytest.mark.parametrize(
    ("detail", "ticket_id", "priority", "actor"),
    [
        ({"id": 5158}, "5158", "high", "zendesk-user:8447388090494"),  # ids as numbers
        ({"priority": None}, "5158", None, "zendesk-user:8447388090494"),
        ({"priority": ""}, "5158", None, "zendesk-user:8447388090494"),
        ({"priority": "Normal"}, "5158", "normal", "zendesk-user:8447388090494"),
        ({"actor_id": None}, "5158", "high", None),
    ],
    ids=["numeric-id", "no-priority", "empty-priority", "mixed-case-priority", "no-actor"],
)
def test_zendesk_detail_variants(
    detail: dict[str, Any], ticket_id: str, priority: str | None, actor: str | None
) -> None:
    event = normalized(zendesk.normalize(event_body("ticket.created", **detail), ZENDESK, ""))
    assert (event.ticket_id, event.actor) == (ticket_id, actor)
    assert event.ticket is not None and event.ticket.priority == priority


def test_zendesk_times_are_instants_in_utc() -> None:
    doc = event_body("ticket.created", created_at="2025-01-08T11:12:07+01:00")
    doc["time"] = "2025-01-08T12:00:00-05:00"
    event = normalized(zendesk.normalize(doc, ZENDESK, ""))
    assert event.ticket is not None and event.ticket.created_at == utc(2025, 1, 8, 10, 12, 7)
    assert event.occurred_at == utc(2025, 1, 8, 17)
    assert '"occurred_at":"2025-01-08T17:00:00Z"' in event.to_json()
    # No "time": the ticket's creation is the best instant there is.
    del doc["time"]
    assert normalized(zendesk.normalize(doc, ZENDESK, "")).occurred_at == utc(2025, 1, 8, 10, 12, 7)


def test_zendesk_event_id_falls_back_to_empty_for_the_intake_to_hash() -> None:
    doc = event_body("ticket.created")
    del doc["id"]
    assert normalized(zendesk.normalize(doc, ZENDESK, "")).event_id == ""


def without(doc: dict[str, Any], path: str) -> dict[str, Any]:
    """A deep copy of doc with the dotted path removed."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    del node[last]
    return doc


def with_value(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    node[last] = value
    return doc


CREATED = zd("dust-event-webhook-ticket.created.json")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (without(CREATED, "detail.id"), "detail.id"),
        (with_value(CREATED, "detail.id", ""), "detail.id"),
        (with_value(CREATED, "detail.id", None), "detail.id"),
        (with_value(CREATED, "detail.id", True), "detail.id"),
        (with_value(CREATED, "detail.id", {"id": 1}), "detail.id"),
        (without(CREATED, "detail"), "detail"),
        (with_value(CREATED, "detail", ["5158"]), "detail"),
        (without(CREATED, "detail.created_at"), "detail.created_at"),
        (with_value(CREATED, "detail.created_at", "yesterday"), "detail.created_at"),
        (with_value(CREATED, "detail.created_at", "2025-01-08T10:12:07"), "detail.created_at"),
        (with_value(CREATED, "detail.created_at", 1736331127), "detail.created_at"),
        (with_value(CREATED, "time", "soon"), "time"),
        (with_value(CREATED, "id", ["x"]), "id"),
        (with_value(CREATED, "type", 7), "type"),
        (with_value(CREATED, "type", "ticket.created"), "type"),  # no zen:event-type: prefix
        (without(CREATED, "type"), "type"),  # and no trigger schema either
        ({}, "type"),
        ([CREATED], "body"),
        ("ticket.created", "body"),
        (None, "body"),
    ],
    ids=[
        "no-detail.id",
        "empty-detail.id",
        "null-detail.id",
        "bool-detail.id",
        "object-detail.id",
        "no-detail",
        "detail-not-object",
        "no-created_at",
        "created_at-words",
        "created_at-naive",
        "created_at-number",
        "bad-time",
        "bad-id",
        "type-number",
        "type-unprefixed",
        "no-type",
        "empty-object",
        "array",
        "string",
        "null",
    ],
)
def test_zendesk_refusals_name_the_field(doc: Any, field: str) -> None:
    assert refused(zendesk.normalize, doc, ZENDESK, "").field == field


def test_zendesk_admin_written_trigger_body_is_refused_on_type() -> None:
    # An admin-written trigger body (not tierdesk's own) with a "type" of its own: the
    # 400 names "type" so the admin sees the webhook is wired to the wrong body.
    error = refused(
        zendesk.normalize, zd("aaronellington-webhook-trigger-ticket_update.json"), ZENDESK, ""
    )
    assert error.field == "type"


# -- Zendesk trigger webhooks (tierdesk's own body) ---------------------------------


def test_trigger_body_every_field() -> None:
    event = normalized(zendesk.normalize(trigger(), ZD_TRIGGER_TENANT, "inv-7"))
    assert event == TicketEvent(
        tenant="acme-zd",
        vendor="zendesk",
        event_id="inv-7",
        kind="ticket.updated",
        ticket_id="4017",
        ticket_key="4017",
        occurred_at=utc(2024, 4, 17, 18),  # updated_at
        ticket=Ticket(
            id="4017",
            created_at=utc(2024, 4, 17, 17, 18, 10),
            requester="alice@customer.example",
            organization=OrganizationRef("zendesk", "360001"),
            severity="1",  # "Sev 1" through the tenant's table (case-insensitive)
            priority="urgent",
            product="jira",
            environment="production",  # no table for it: passes through
            category="incident",
            vendor="zendesk",
        ),
        actor="agent@acme.example",
    )


@pytest.mark.parametrize("event", ["ticket.created", "ticket.updated"])
def test_trigger_event_kind(event: str) -> None:
    assert normalized(zendesk.normalize(trigger(event=event), ZENDESK, "")).kind == event


def test_trigger_without_event_is_an_update() -> None:
    body = trigger()
    del body["event"]
    assert normalized(zendesk.normalize(body, ZENDESK, "")).kind == "ticket.updated"


def test_trigger_blank_placeholders_become_none() -> None:
    # A ticket with no organization, priority or custom field values: Zendesk sends "".
    blank = dict.fromkeys(
        ("requester", "organization_id", "priority", "severity", "product", "environment",
         "category", "updated_at"),
        "",
    )  # fmt: skip
    event = normalized(zendesk.normalize(trigger(updated_by="", **blank), ZENDESK, ""))
    assert event.ticket == Ticket(
        id="4017", created_at=utc(2024, 4, 17, 17, 18, 10), vendor="zendesk"
    )
    assert event.actor is None
    assert event.occurred_at == utc(2024, 4, 17, 17, 18, 10)  # no updated_at: created_at


def test_trigger_values_are_trimmed_and_numbers_accepted() -> None:
    body = trigger(id=4017, organization_id=360001, severity="  Sev 1 ", priority=" High ")
    event = normalized(zendesk.normalize(body, ZD_TRIGGER_TENANT, ""))
    assert event.ticket_id == "4017"
    assert event.ticket is not None
    assert event.ticket.organization == OrganizationRef("zendesk", "360001")
    assert (event.ticket.severity, event.ticket.priority) == ("1", "high")


def test_trigger_unmapped_value_passes_through_for_the_rules_to_judge() -> None:
    event = normalized(zendesk.normalize(trigger(severity="Sev 9"), ZD_TRIGGER_TENANT, ""))
    assert event.ticket is not None and event.ticket.severity == "Sev 9"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (trigger(event="ticket.deleted"), "event"),
        (trigger(event="ticket.solved"), "event"),
        (trigger(event=["ticket.created"]), "event"),
        (trigger(id=""), "ticket.id"),
        (without(trigger(), "ticket.id"), "ticket.id"),
        (trigger(id=["4017"]), "ticket.id"),
        (trigger(created_at=""), "ticket.created_at"),
        (trigger(created_at="{{ticket.created_at_with_timestamp}}"), "ticket.created_at"),
        (trigger(updated_at="17 April"), "ticket.updated_at"),
        (trigger(severity=["Sev 1"]), "ticket.severity"),
        (trigger(requester={"email": "a@b.c"}), "ticket.requester"),
        (with_value(trigger(), "ticket", "4017"), "ticket"),
        (without(trigger(), "ticket"), "ticket"),
    ],
    ids=[
        "event-deleted",
        "event-unknown",
        "event-array",
        "empty-id",
        "no-id",
        "id-array",
        "empty-created_at",
        "unfilled-placeholder",
        "bad-updated_at",
        "severity-array",
        "requester-object",
        "ticket-not-object",
        "no-ticket",
    ],
)
def test_trigger_refusals_name_the_field(body: dict[str, Any], field: str) -> None:
    assert refused(zendesk.normalize, body, ZENDESK, "").field == field


# -- Jira / JSM -----------------------------------------------------------------------


def test_jira_issue_created_every_field() -> None:
    event = normalized(jsm.normalize(jira("jira-issue_created.json"), JSM, "atl-1"))
    assert event == TicketEvent(
        tenant="acme-jsm",
        vendor="jsm",
        event_id="atl-1",
        kind="ticket.created",
        ticket_id="10400",  # issue.id: stable when the issue moves
        ticket_key="BUG-15",  # issue.key: what people call it
        occurred_at=millis(1364403238369),  # "timestamp"
        ticket=Ticket(
            id="BUG-15",
            created_at=utc(2013, 3, 27, 16, 53, 58, 301000),  # "…58.301+0000"
            requester="othello@zulip.com",  # reporter.emailAddress
            priority="Major",
            vendor="jsm",
        ),
        actor="othello@zulip.com",  # user.emailAddress
    )
    assert event.occurred_at == utc(2013, 3, 27, 16, 53, 58, 369000)


def test_jira_custom_fields_through_the_tenant_field_map() -> None:
    event = normalized(jsm.normalize(jira("jira-issue_created_with_custom_fields.json"), JSM, ""))
    assert (event.ticket_id, event.ticket_key) == ("10033", "KAN-3")
    assert event.ticket == Ticket(
        id="KAN-3",
        created_at=utc(2026, 4, 25, 13, 5, 13, 605000),  # "2026-04-25T18:35:13.605+0530"
        requester=None,  # the reporter has an accountId and no emailAddress
        severity="3",  # customfield_10071 {"value": "Medium"} → "3" through values
        priority="Medium",
        product="Testing",  # customfield_10070, text, no table: as is
        vendor="jsm",
    )
    assert event.actor == "712020:28d10afc-d4b0-47f2-b86f-74d9a5f29c81"  # user.accountId
    assert event.changes == ("summary", "Status", "priority", "Fix Version", "Severity", "reporter")


def test_jira_created_with_a_negative_offset_without_colon() -> None:
    event = normalized(jsm.normalize(jira("jira-issue_updated__priority.json"), JSM, ""))
    assert event.ticket is not None
    # "2013-09-06T11:07:19.972-0400" is 15:07:19.972 UTC
    assert event.ticket.created_at == utc(2013, 9, 6, 15, 7, 19, 972000)
    assert event.ticket.created_at.utcoffset() is not None
    assert '"created_at":"2013-09-06T15:07:19.972000Z"' in event.to_json()
    assert (event.kind, event.changes) == ("ticket.updated", ("priority",))
    assert event.occurred_at == millis(1393444633145)  # "timestamp" is the last key here
    assert event.ticket.requester == "leo@zulip.com"


def test_jira_without_the_tenant_field_map_custom_fields_are_not_read() -> None:
    plain = Tenant(id="acme-jsm", vendor="jsm")
    doc = jira("jira-issue_created_with_custom_fields.json")
    event = normalized(jsm.normalize(doc, plain, ""))
    assert event.ticket is not None
    assert (event.ticket.severity, event.ticket.product) == (None, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([{"id": "17", "name": "Acme"}, {"id": "18", "name": "Globex"}], "17"),
        ([{"id": 17, "name": "Acme"}], "17"),
        ([{"name": "Acme"}], "Acme"),
        ([], None),
        (None, None),
    ],
    ids=["list-of-id-name", "numeric-id", "name-only", "empty-list", "null"],
)
def test_jsm_organizations_field(value: Any, expected: str | None) -> None:
    doc = jira("jira-issue_created.json")
    doc["issue"]["fields"]["customfield_10002"] = value
    event = normalized(jsm.normalize(doc, JSM, ""))
    assert event.ticket is not None
    assert event.ticket.organization == (OrganizationRef("jsm", expected) if expected else None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"value": "Medium", "id": "10021"}, "3"),  # a select option, translated
        ({"value": "medium"}, "3"),  # translation is case-insensitive
        ("Medium", "3"),
        ({"value": "High"}, "High"),  # no translation: passes through
        (2, "2"),
        ([{"value": "Medium"}], "3"),  # a multi-select: the first option
        ("", None),
        ({}, None),
        (True, None),
    ],
    ids=["option", "case", "text", "untranslated", "number", "multi", "empty", "empty-obj", "bool"],
)
def test_jira_custom_field_values(raw: Any, expected: str | None) -> None:
    doc = jira("jira-issue_created.json")
    doc["issue"]["fields"]["customfield_10071"] = raw
    event = normalized(jsm.normalize(doc, JSM, ""))
    assert event.ticket is not None and event.ticket.severity == expected


@pytest.mark.parametrize(
    ("reporter", "requester"),
    [
        ({"emailAddress": "alice@customer.example", "accountId": "a1"}, "alice@customer.example"),
        ({"accountId": "a1"}, None),  # Jira Cloud hides emails by default
        ({"emailAddress": "", "accountId": "a1"}, None),
        (None, None),
    ],
    ids=["email", "no-email", "empty-email", "no-reporter"],
)
def test_jira_requester_is_the_reporter_email(reporter: Any, requester: str | None) -> None:
    doc = jira("jira-issue_created.json")
    doc["issue"]["fields"]["reporter"] = reporter
    event = normalized(jsm.normalize(doc, JSM, ""))
    assert event.ticket is not None and event.ticket.requester == requester
    # Hidden: the accountId goes along for the pipeline to look the email up.
    assert event.requester_account == (None if requester or not reporter else "a1")
    assert TicketEvent.from_json(event.to_json()) == event


def test_jira_cloud_recorded_payload_hides_the_email_and_keeps_the_account() -> None:
    event = normalized(jsm.normalize(jira("jira-issue_created_with_custom_fields.json"), JSM, ""))
    assert event.ticket is not None and event.ticket.requester is None
    assert event.requester_account == "712020:28d10afc-d4b0-47f2-b86f-74d9a5f29c81"


def test_jira_comment_created_has_no_ticket_state() -> None:
    event = normalized(jsm.normalize(jira("jira-comment_created.json"), JSM, "atl-2"))
    assert event == TicketEvent(
        tenant="acme-jsm",
        vendor="jsm",
        event_id="atl-2",
        kind="comment.created",
        ticket_id="10000",
        ticket_key="ZUL-1",
        occurred_at=millis(1546892751184),
        ticket=None,  # the issue in a comment event has no "created": nothing to decide on
        actor="5a1b0e47748e770ed11f338c",  # no "user": the comment author's accountId
        comment=Comment("10000", public=True, author="5a1b0e47748e770ed11f338c"),
        resolved=False,  # status category "new" (To Do)
    )


@pytest.mark.parametrize(
    ("flag", "public"),
    [(True, True), (False, False), (None, True)],
    ids=["jsdPublic-true", "jsdPublic-false", "plain-jira-comment"],
)
def test_jira_comment_public_flag(flag: bool | None, public: bool) -> None:
    doc = jira("jira-comment_created.json")
    if flag is None:
        del doc["comment"]["jsdPublic"]
    else:
        doc["comment"]["jsdPublic"] = flag
    event = normalized(jsm.normalize(doc, JSM, ""))
    assert event.comment is not None and event.comment.public is public


def test_jira_issue_commented_is_an_update_with_its_comment() -> None:
    event = normalized(jsm.normalize(jira("jira-commented_v2.json"), JSM, ""))
    assert (event.kind, event.ticket_id, event.ticket_key) == ("ticket.updated", "10400", "BUG-15")
    assert event.comment == Comment("10400", public=True, author="othello@zulip.com")
    assert event.ticket is not None and event.ticket.priority == "Major"


def test_jira_issue_deleted() -> None:
    event = normalized(jsm.normalize(jira("jira-issue_deleted.json"), JSM, ""))
    assert (event.kind, event.ticket_id, event.ticket_key) == ("ticket.deleted", "10400", "BUG-15")


def test_jira_worklog_created() -> None:
    event = normalized(jsm.normalize(jira("jira-worklog_created.json"), JSM, "atl-3"))
    assert event == TicketEvent(
        tenant="acme-jsm",
        vendor="jsm",
        event_id="atl-3",
        kind="worklog.created",
        ticket_id="10014",  # worklog.issueId: a worklog event names no issue object
        ticket_key="10014",
        occurred_at=millis(1790102915652),
        actor="99:27935d01-92a7-4687-8272-a9b8d3b2ae2e",  # updateAuthor.accountId
        worklog=Worklog("10066", seconds=144000),
    )


def worklog_body(event: str, **worklog: Any) -> dict[str, Any]:
    doc = jira("jira-worklog_created.json")
    doc["webhookEvent"] = event
    doc["worklog"].update(worklog)
    return dict(doc)


@pytest.mark.parametrize(
    ("name", "kind", "seconds"),
    [
        ("worklog_updated", "worklog.updated", 144000),
        ("jira:worklog_updated", "worklog.updated", 144000),
        ("worklog_deleted", "worklog.deleted", None),
    ],
)
def test_jira_worklog_kinds(name: str, kind: str, seconds: int | None) -> None:
    event = normalized(jsm.normalize(worklog_body(name), JSM, ""))
    assert (event.kind, event.ticket_id, event.worklog) == (
        kind,
        "10014",
        Worklog("10066", seconds),
    )


def test_jira_worklog_deleted_needs_no_seconds() -> None:
    doc = worklog_body("worklog_deleted")
    del doc["worklog"]["timeSpentSeconds"]
    assert normalized(jsm.normalize(doc, JSM, "")).worklog == Worklog("10066", None)


def test_jira_recorded_worklog_updated_payload() -> None:
    event = normalized(jsm.normalize(jira("jira-worklog_updated__edited.json"), JSM, ""))
    assert (event.kind, event.ticket_id, event.ticket_key) == (
        "worklog.updated",
        "10022",
        "SCRUM-23",
    )


@pytest.mark.parametrize(
    "name", ["jira:version_released", "project_created", "issuelink_created", "sprint_started"]
)
def test_jira_events_tierdesk_does_not_use_are_ignored(name: str) -> None:
    doc = jira("jira-issue_created.json")
    doc["webhookEvent"] = name
    result = jsm.normalize(doc, JSM, "")
    assert isinstance(result, Ignored) and name in result.reason


ISSUE = jira("jira-issue_created.json")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (jira("jira-example_anomalous_payload.json"), "webhookEvent"),
        (with_value(ISSUE, "webhookEvent", 7), "webhookEvent"),
        (with_value(ISSUE, "webhookEvent", ["jira:issue_created"]), "webhookEvent"),
        (without(ISSUE, "issue"), "issue"),
        (with_value(ISSUE, "issue", "BUG-15"), "issue"),
        (without(ISSUE, "issue.id"), "issue.id"),
        (with_value(ISSUE, "issue.id", 1.5), "issue.id"),
        (without(ISSUE, "issue.fields.created"), "issue.fields.created"),
        (without(ISSUE, "issue.fields"), "issue.fields.created"),
        (with_value(ISSUE, "issue.fields.created", None), "issue.fields.created"),
        (with_value(ISSUE, "issue.fields.created", "27/Mar/13 4:53 PM"), "issue.fields.created"),
        (
            without(
                with_value(ISSUE, "webhookEvent", "jira:issue_updated"), "issue.fields.created"
            ),
            "issue.fields.created",
        ),
        (with_value(ISSUE, "timestamp", 10.0**30), "timestamp"),
        (with_value(ISSUE, "timestamp", -1), "timestamp"),  # 1969: TicketEvent cannot hold it
        (with_value(ISSUE, "timestamp", 10**14), "timestamp"),  # the year 5138
        (without(worklog_body("worklog_created"), "worklog"), "worklog"),
        (without(worklog_body("worklog_created"), "worklog.issueId"), "worklog.issueId"),
        (without(worklog_body("worklog_created"), "worklog.id"), "worklog.id"),
        (
            without(worklog_body("worklog_created"), "worklog.timeSpentSeconds"),
            "worklog.timeSpentSeconds",
        ),
        (worklog_body("worklog_updated", timeSpentSeconds="1w"), "worklog.timeSpentSeconds"),
        (worklog_body("worklog_created", timeSpentSeconds=True), "worklog.timeSpentSeconds"),
        ([ISSUE], "body"),
    ],
    ids=[
        "anomalous-no-webhookEvent",
        "webhookEvent-number",
        "webhookEvent-array",
        "no-issue",
        "issue-not-object",
        "no-issue.id",
        "float-issue.id",
        "created-no-fields.created",
        "created-no-fields",
        "created-null",
        "created-not-iso",
        "updated-no-fields.created",
        "timestamp-overflow",
        "timestamp-before-1970",
        "timestamp-after-2999",
        "no-worklog",
        "no-worklog.issueId",
        "no-worklog.id",
        "no-timeSpentSeconds",
        "timeSpentSeconds-text",
        "timeSpentSeconds-bool",
        "array",
    ],
)
def test_jira_refusals_name_the_field(doc: Any, field: str) -> None:
    assert refused(jsm.normalize, doc, JSM, "").field == field


def test_jira_key_falls_back_to_the_issue_id() -> None:
    event = normalized(jsm.normalize(without(ISSUE, "issue.key"), JSM, ""))
    assert (event.ticket_id, event.ticket_key) == ("10400", "10400")


def test_jira_without_a_timestamp_the_event_happened_now() -> None:
    before = datetime.now(UTC)
    event = normalized(jsm.normalize(without(ISSUE, "timestamp"), JSM, ""))
    assert before <= event.occurred_at <= datetime.now(UTC)


def test_jsm_automation_issue_data_without_an_event_name_is_an_update() -> None:
    # Automation's "Issue data (Jira format)" is the issue without an envelope around
    # it: only a bearer-token (automation) call may omit webhookEvent.
    doc = {"issue": ISSUE["issue"]}
    event = normalized(jsm.normalize(doc, JSM, "", automation=True))
    assert (event.kind, event.ticket_id, event.ticket_key) == ("ticket.updated", "10400", "BUG-15")
    assert refused(jsm.normalize, doc, JSM, "").field == "webhookEvent"
    assert refused(jsm.normalize, {"key": "BUG-15"}, JSM, "", automation=True).field == (
        "webhookEvent"
    )


# -- TicketEvent JSON -------------------------------------------------------------------


def recorded_events() -> list[tuple[str, TicketEvent]]:
    events = [
        (name, normalized(zendesk.normalize(zd(name), ZENDESK, "inv-1")))
        for name in (
            "dust-event-webhook-ticket.created.json",
            "dust-event-webhook-ticket.priority_changed.json",
        )
    ]
    events += [
        (name, normalized(jsm.normalize(jira(name), JSM, "atl-1")))
        for name in (
            "jira-issue_created.json",
            "jira-issue_updated__priority.json",
            "jira-comment_created.json",
            "jira-worklog_created.json",
            "jira-issue_created_with_unicode.json",
        )
    ]
    events.append(("trigger", normalized(zendesk.normalize(trigger(), ZENDESK, "inv-2"))))
    return events


RECORDED = recorded_events()


@pytest.mark.parametrize(("name", "event"), RECORDED, ids=[name for name, _ in RECORDED])
def test_ticket_event_json_round_trip(name: str, event: TicketEvent) -> None:
    back = TicketEvent.from_json(event.to_json())
    # occurred_at is written to the millisecond (format_instant); Zendesk's "time" has
    # nanoseconds. Everything else comes back exactly.
    assert abs(back.occurred_at - event.occurred_at) < timedelta(milliseconds=1)
    assert back == replace(event, occurred_at=back.occurred_at)
    assert back.to_json() == event.to_json()


def test_ticket_event_json_round_trip_turns_a_numeric_severity_into_a_level() -> None:
    # parse_ticket reads "3" as level 3, which is what the worker decides on.
    event = normalized(
        jsm.normalize(jira("jira-issue_created_with_custom_fields.json"), JSM, "atl-1")
    )
    back = TicketEvent.from_json(event.to_json())
    assert back.ticket is not None and event.ticket is not None
    assert back.ticket.severity == 3
    assert back.ticket == replace(event.ticket, severity=3)


def test_ticket_event_json_shape() -> None:
    event = normalized(jsm.normalize(jira("jira-worklog_created.json"), JSM, "atl-3"))
    assert json.loads(event.to_json()) == {
        "tenant": "acme-jsm",
        "vendor": "jsm",
        "event_id": "atl-3",
        "kind": "worklog.created",
        "ticket_id": "10014",
        "ticket_key": "10014",
        "occurred_at": "2026-09-22T18:48:35.652Z",
        "ticket": None,
        "actor": "99:27935d01-92a7-4687-8272-a9b8d3b2ae2e",
        "comment": None,
        "worklog": {"id": "10066", "seconds": 144000},
        "changes": [],
        "partial": False,
        "resolved": None,  # a worklog event names no status
    }
    # Non-ASCII (however it is escaped) comes back as it was.
    doc = jira("jira-issue_created_with_unicode.json")
    doc["issue"]["fields"]["reporter"]["emailAddress"] = "zoë@exämple.com"
    unicode = normalized(jsm.normalize(doc, JSM, ""))
    assert json.loads(unicode.to_json())["ticket"]["requester"] == "zoë@exämple.com"
    back = TicketEvent.from_json(unicode.to_json()).ticket
    assert back is not None and back.requester == "zoë@exämple.com"


@pytest.mark.parametrize(
    ("account_type", "by_agent"),
    [("atlassian", True), ("customer", False), ("app", False), (None, None)],
    ids=["licensed-agent", "portal-customer", "an-app", "not-said"],
)
def test_jira_comment_says_whether_an_agent_wrote_it(
    account_type: str | None, by_agent: bool | None
) -> None:
    # The recorded comment's author (2018) carries no accountType; Jira Cloud sends it
    # on every user object today ("atlassian", "app" or "customer").
    doc = jira("jira-comment_created.json")
    assert "accountType" not in doc["comment"]["author"]
    if account_type is not None:
        doc["comment"]["author"]["accountType"] = account_type
    event = normalized(jsm.normalize(doc, JSM, "atl-2"))
    assert event.comment is not None and event.comment.by_agent is by_agent


@pytest.mark.parametrize(("is_staff", "by_agent"), [(True, True), (False, False), (None, None)])
def test_zendesk_comment_says_whether_staff_wrote_it(
    is_staff: bool | None, by_agent: bool | None
) -> None:
    doc = event_body("ticket.comment_added")
    author: dict[str, object] = {"id": "8447388090494"}
    if is_staff is not None:
        author["is_staff"] = is_staff
    doc["event"] = {"comment": {"id": 9001, "is_public": True, "author": author}}
    event = normalized(zendesk.normalize(doc, ZENDESK, ""))
    assert event.comment is not None and event.comment.by_agent is by_agent


@pytest.mark.parametrize(
    ("status", "resolved"),
    [
        ("SOLVED", True),
        ("CLOSED", True),
        ("Solved", True),  # the trigger placeholder's spelling
        ("OPEN", False),
        ("PENDING", False),
        ("HOLD", False),
        ("Waiting for parts", None),  # a custom status's name says nothing
        (None, None),
    ],
)
def test_zendesk_status_says_whether_the_ticket_is_solved(
    status: str | None, resolved: bool | None
) -> None:
    doc = zd("dust-event-webhook-ticket.status_changed.json")
    if status is None:
        del doc["detail"]["status"]
    else:
        doc["detail"]["status"] = status
    assert normalized(zendesk.normalize(doc, ZENDESK, "")).resolved is resolved


@pytest.mark.parametrize(
    ("category", "resolved"), [("done", True), ("indeterminate", False), ("new", False)]
)
def test_jira_status_category_says_whether_the_issue_is_done(category: str, resolved: bool) -> None:
    doc = jira("jira-issue_updated__status.json")
    doc["issue"]["fields"]["status"]["statusCategory"]["key"] = category
    assert normalized(jsm.normalize(doc, JSM, "atl-9")).resolved is resolved
