"""`connector.setup_jsm`: custom fields and the admin webhook, planned and executed.

Against `setup_fakes.FakeJira`: the platform spec's examples as the site's system
fields and as the answer to a created field, ``POST /rest/api/3/field`` checked
against the spec (its searcherKey enum included), admin webhook requests against what
Atlassian's webhook guide documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from requests.auth import HTTPBasicAuth

from connector.http import HttpClient
from connector.setup import Plan, Ref, SetupError, execute
from connector.setup_jsm import (
    EVENTS,
    FIELDS,
    JIRA_TYPES,
    SCREENS_NOTE,
    JsmState,
    plan,
    read_state,
)
from tests.connector.setup_fakes import JIRA, FakeJira, writes

TENANT = "acme-jsm"
ENDPOINT = "https://tierdesk.example.com/webhooks/jsm/acme-jsm"
JQL = "project in (HELP, OPS)"
SECRET = "jsm-webhook-secret-for-tests-6b1f"


def client() -> HttpClient:
    return HttpClient(JIRA, HTTPBasicAuth("admin@acme.example", "t"), sleep=lambda s: None)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def plan_for(state: JsmState, *, secret_known: bool = True, jql: str = JQL) -> Plan:
    return plan(state, tenant_id=TENANT, endpoint=ENDPOINT, jql=jql, secret_known=secret_known)


def jira_field(name: str, field_id: str, jira_type: str) -> dict[str, Any]:
    return {
        "id": field_id,
        "name": name,
        "custom": True,
        "schema": {"type": "string", "custom": jira_type, "customId": int(field_id[12:])},
    }


def admin_webhook(webhook_id: str = "7", **extra: Any) -> dict[str, Any]:
    return {
        "self": f"{JIRA}/rest/webhooks/1.0/webhook/{webhook_id}",
        "name": "tierdesk (acme-jsm)",
        "url": ENDPOINT,
        "events": list(reversed(EVENTS)),  # order does not matter
        "filters": {"issue-related-events-section": JQL},
        "enabled": True,
        **extra,
    }


def complete_state() -> JsmState:
    fields = tuple(
        jira_field(spec.title, f"customfield_{10200 + i}", JIRA_TYPES[spec.type][0])
        for i, spec in enumerate(FIELDS)
    )
    return JsmState(fields=fields, webhooks=(admin_webhook(),))


def test_a_fresh_site_gets_typed_fields_and_a_signed_filtered_webhook() -> None:
    result = plan_for(JsmState())

    bodies = {s.ref: s.body for s in result.steps}
    assert [s.kind for s in result.steps] == ["create"] * (len(FIELDS) + 1)
    cf = "com.atlassian.jira.plugin.system.customfieldtypes:"
    assert bodies["field:tier"] == {
        "name": "tierdesk: Tier",
        "description": bodies["field:tier"]["description"],
        "type": cf + "textfield",
        "searcherKey": cf + "textsearcher",
    }
    assert bodies["field:first_response_due"]["type"] == cf + "datetime"
    assert bodies["field:first_response_due"]["searcherKey"] == cf + "datetimerange"
    assert bodies["field:named_contact_reason"]["type"] == cf + "textarea"
    assert bodies["webhook"] == {
        "name": "tierdesk (acme-jsm)",
        "url": ENDPOINT,
        "events": list(EVENTS),
        "filters": {"issue-related-events-section": JQL},
        "excludeBody": False,
        "secret": Ref("secret:webhook"),  # never in the plan itself
    }
    assert result.notes == (SCREENS_NOTE,)
    assert dict(result.field_types)["first_response_due"] == "datetime"


def test_the_webhook_events_are_the_ones_the_receiver_reads() -> None:
    from webhooks.jsm import EVENTS as RECEIVED

    assert set(EVENTS) <= set(RECEIVED)
    assert {"jira:issue_created", "jira:issue_updated", "comment_created"} <= set(EVENTS)
    assert {"worklog_created", "worklog_updated", "worklog_deleted"} <= set(EVENTS)
    # Edited and deleted comments may change the first response; deleted issues stop.
    assert {"comment_updated", "comment_deleted", "jira:issue_deleted"} <= set(EVENTS)


def test_the_readme_lists_the_events_setup_subscribes_to() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith("| `POST /webhooks/jsm/")]
    listed = set(re.findall(r"`((?:jira:)?(?:issue|comment|worklog)_[a-z]+)`", row))
    assert listed == set(EVENTS)


def test_a_complete_site_is_all_reuse() -> None:
    result = plan_for(complete_state())

    assert result.writes == ()
    assert result.notes == ()
    assert result.known_ids()["webhook"] == "7"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        pytest.param({"events": ["jira:issue_created"]}, "events differ", id="events"),
        pytest.param({"filters": {"issue-related-events-section": "project = X"}}, "JQL", id="jql"),
    ],
)
def test_a_drifted_webhook_is_updated(change: dict[str, Any], why: str) -> None:
    state = complete_state()
    result = plan_for(JsmState(state.fields, (admin_webhook(**change),)))

    (step,) = result.writes

    assert (step.kind, step.method, step.path) == ("update", "PUT", "/rest/webhooks/1.0/webhook/7")
    assert why in step.note
    assert step.body["secret"] == Ref("secret:webhook")


def test_a_webhook_whose_secret_tierdesk_does_not_hold_gets_a_new_one() -> None:
    (step,) = plan_for(complete_state(), secret_known=False).writes

    assert step.kind == "update" and "no secret" in step.note


def test_a_field_of_another_type_with_our_name_is_refused() -> None:
    select = jira_field("tierdesk: Coverage", "customfield_10300", "x:select")

    with pytest.raises(SetupError) as caught:
        plan_for(JsmState(fields=(select,)))

    assert "customfield_10300" in str(caught.value)
    assert "[tenants.acme-jsm.fields] coverage" in str(caught.value)


def test_a_text_field_where_a_datetime_is_wanted_is_kept_and_recorded_as_text() -> None:
    state = complete_state()
    text = JIRA_TYPES["text"][0]
    fields = tuple(
        jira_field(f["name"], f["id"], text) if f["name"] == "tierdesk: First response due" else f
        for f in state.fields
    )

    result = plan_for(JsmState(fields, state.webhooks))

    assert result.writes == ()
    assert dict(result.field_types)["first_response_due"] == "text"


def test_a_system_field_with_our_name_is_not_ours() -> None:
    system = {"id": "tier", "name": "tierdesk: Tier", "custom": False, "schema": {"type": "string"}}

    result = plan_for(JsmState(fields=(system,)))

    assert next(s for s in result.steps if s.ref == "field:tier").kind == "create"


def test_two_fields_of_one_name_are_refused() -> None:
    text = JIRA_TYPES["text"][0]
    twins = (
        jira_field("tierdesk: Tier", "customfield_1", text),
        jira_field("tierdesk: Tier", "customfield_2", text),
    )
    with pytest.raises(SetupError, match="customfield_1, customfield_2"):
        plan_for(JsmState(fields=twins))


# -- against the fake site ------------------------------------------------------------------


def test_fresh_install_then_rerun_without_writes(mock: responses.RequestsMock) -> None:
    fake = FakeJira()
    fake.install(mock)

    first = plan_for(read_state(client()), secret_known=False)
    ids = execute(client(), first, secrets={"webhook": SECRET})

    assert writes(mock) == [
        *["POST /rest/api/3/field"] * len(FIELDS),
        "POST /rest/webhooks/1.0/webhook",
    ]
    hook_id = str(10101 + len(FIELDS))  # the fake numbers what it creates in turn
    assert ids["webhook"] == hook_id  # the last segment of the answer's self URL
    assert fake.secrets == {hook_id: SECRET}
    assert first.field_records(ids)["first_response_due"] == ("customfield_10102", "datetime")

    mock.calls.reset()
    second = plan_for(read_state(client()), secret_known=True)
    execute(client(), second, secrets={"webhook": SECRET})
    assert writes(mock) == []


def test_a_refused_field_names_the_field(mock: responses.RequestsMock) -> None:
    FakeJira(fail_field_name="tierdesk: Coverage").install(mock)

    with pytest.raises(SetupError) as caught:
        execute(client(), plan_for(read_state(client())), secrets={"webhook": SECRET})

    assert str(caught.value) == (
        'creating custom field "tierdesk: Coverage" failed: POST /rest/api/3/field: HTTP 400'
    )
    assert SECRET not in str(caught.value)


def test_data_center_uses_rest_api_2(mock: responses.RequestsMock) -> None:
    FakeJira().install(mock)

    result = plan(
        read_state(client(), "/rest/api/2"),
        tenant_id=TENANT,
        endpoint=ENDPOINT,
        jql=JQL,
        secret_known=False,
        api="/rest/api/2",
    )
    execute(client(), result, secrets={"webhook": SECRET})

    assert writes(mock)[0] == "POST /rest/api/2/field"
    assert writes(mock)[-1] == "POST /rest/webhooks/1.0/webhook"


def test_a_plan_needing_a_secret_it_was_not_given_fails_before_sending_it() -> None:
    with pytest.raises(SetupError, match="secret:webhook"):
        execute(client(), Plan("jsm", plan_for(JsmState()).steps[-1:], ()))
