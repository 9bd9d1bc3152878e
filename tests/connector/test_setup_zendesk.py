"""`connector.setup_zendesk`: reading the account, planning (pure), executing the plan.

The planner is tested on states built by hand, the reading and the execution against
`setup_fakes.FakeZendesk` (recorded ticket field pages, spec examples, every request
checked against the spec). Nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest
import responses
from requests.auth import HTTPBasicAuth

from connector.http import HttpClient
from connector.setup import Plan, Ref, SetupError, Step, Text, execute, resolve
from connector.setup_zendesk import (
    EVENT_SUBSCRIPTIONS,
    FIELDS,
    TRIGGER_TITLES,
    ZendeskState,
    cursor_items,
    directory_fields,
    plan,
    read_fields,
    read_state,
    signing_secret,
    trigger,
)
from connector.zendesk_directory import ORG_ACCOUNT, ORG_HOURS, ORG_TIER, USER_ADMIN, USER_CONTACT
from tests.connector.setup_fakes import (
    PAGE_1,
    PAGE_2,
    PAYLOADS,
    SIGNING_SECRET,
    ZENDESK,
    FakeZendesk,
    writes,
)

TENANT = "acme-zd"
TIERS = [("premier", "Premier"), ("payg", "Pay-as-you-go hours")]
ENDPOINT = "https://tierdesk.example.com/webhooks/zendesk/acme-zd"
BODIES = {
    "ticket.created": json.dumps(
        {"schema": "tierdesk.zendesk.trigger/1", "event": "ticket.created"}
    ),
    "ticket.updated": json.dumps(
        {"schema": "tierdesk.zendesk.trigger/1", "event": "ticket.updated"}
    ),
}


def client() -> HttpClient:
    return HttpClient(ZENDESK, HTTPBasicAuth("admin@acme.example/token", "t"), sleep=lambda s: None)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def plan_for(state: ZendeskState) -> Plan:
    return plan(state, tenant_id=TENANT, endpoint=ENDPOINT, trigger_bodies=BODIES, tiers=TIERS)


def kinds(result: Plan) -> dict[str, str]:
    return {step.ref: step.kind for step in result.steps}


def field(spec_name: str, field_id: int, **extra: Any) -> dict[str, Any]:
    spec = next(s for s in FIELDS if s.name == spec_name)
    return {"id": field_id, "type": spec.type, "title": spec.title, "key": spec.key, **extra}


def webhook(webhook_id: str = "01HEXISTING", **extra: Any) -> dict[str, Any]:
    return {
        "id": webhook_id,
        "endpoint": ENDPOINT,
        "status": "active",
        "subscriptions": ["conditional_ticket_events"],
        **extra,
    }


def event_webhook(webhook_id: str = "01HEVENTS", **extra: Any) -> dict[str, Any]:
    return webhook(webhook_id, **{"subscriptions": list(EVENT_SUBSCRIPTIONS), **extra})


def existing_trigger(event: str, trigger_id: int, webhook_id: str) -> dict[str, Any]:
    return {**trigger(event, webhook_id, BODIES[event]), "id": trigger_id, "active": True}


def complete_state() -> ZendeskState:
    return ZendeskState(
        ticket_fields=tuple(field(s.name, 100 + i) for i, s in enumerate(FIELDS)),
        webhooks=(webhook(), event_webhook()),
        triggers=tuple(
            existing_trigger(e, 200 + i, "01HEXISTING") for i, e in enumerate(TRIGGER_TITLES)
        ),
        organization_fields=tuple(
            custom_field(f.key, 300 + i)
            for i, f in enumerate(directory_fields(TIERS))
            if f.owner == "organization"
        ),
        user_fields=tuple(
            custom_field(f.key, 400 + i)
            for i, f in enumerate(directory_fields(TIERS))
            if f.owner == "user"
        ),
    )


# -- planning ---------------------------------------------------------------------------


def test_a_fresh_account_gets_everything_created_in_order() -> None:
    result = plan_for(ZendeskState())

    assert [(s.kind, s.ref) for s in result.steps] == [
        ("create", "field:tier"),
        ("create", "field:first_response_due"),
        ("create", "field:named_contact"),
        ("create", "field:named_contact_reason"),
        ("create", "field:coverage"),
        ("create", "field:sla"),
        ("create", "field:escalation_level"),
        ("create", "field:first_response"),
        ("create", "field:hours"),
        ("create", "webhook"),
        ("create", "event_webhook"),
        ("create", "trigger:ticket.created"),
        ("create", "trigger:ticket.updated"),
        ("create", "organization_field:tierdesk_account"),
        ("create", "organization_field:tierdesk_tier"),
        ("create", "organization_field:tierdesk_hours"),
        ("create", "user_field:tierdesk_named_contact"),
        ("create", "user_field:tierdesk_site_admin"),
    ]
    created = result.steps[0].body["ticket_field"]
    assert (created["key"], created["title"], created["type"]) == (
        "tierdesk_tier",
        "tierdesk: Tier",
        "text",
    )
    assert result.steps[3].body["ticket_field"]["type"] == "textarea"
    hook = result.steps[len(FIELDS)].body["webhook"]
    assert hook["endpoint"] == ENDPOINT
    assert (hook["request_format"], hook["subscriptions"]) == (
        "json",
        ["conditional_ticket_events"],
    )
    events = result.steps[len(FIELDS) + 1].body["webhook"]
    assert events["endpoint"] == ENDPOINT
    assert events["subscriptions"] == list(EVENT_SUBSCRIPTIONS)
    # The triggers call the webhook this run creates: its id is filled in when known.
    action = result.steps[len(FIELDS) + 2].body["trigger"]["actions"][0]
    assert action == {
        "field": "notification_webhook",
        "value": [Ref("id:webhook"), BODIES["ticket.created"]],
    }


def test_the_update_trigger_skips_api_updates_and_the_create_trigger_does_not() -> None:
    steps = {s.ref: s for s in plan_for(ZendeskState()).steps}

    created = steps["trigger:ticket.created"].body["trigger"]["conditions"]
    updated = steps["trigger:ticket.updated"].body["trigger"]["conditions"]

    assert created == {
        "all": [{"field": "update_type", "operator": "is", "value": "Create"}],
        "any": [],
    }
    assert updated["all"] == [
        {"field": "update_type", "operator": "is", "value": "Change"},
        {"field": "current_via_id", "operator": "is_not", "value": "5"},
    ]


def test_a_complete_account_is_all_reuse_and_no_writes() -> None:
    result = plan_for(complete_state())

    assert set(kinds(result).values()) == {"reuse"}
    assert result.writes == ()
    assert result.known_ids()["webhook"] == "01HEXISTING"
    assert result.field_records(result.known_ids())["named_contact_reason"] == ("103", "textarea")


def test_partial_state_creates_only_what_is_missing() -> None:
    state = ZendeskState(
        ticket_fields=(
            field("tier", 100),
            # Installed by the app: no key, matched by its title.
            field("coverage", 104, key=None),
        ),
        webhooks=(webhook(),),
        triggers=(existing_trigger("ticket.created", 200, "01HEXISTING"),),
        organization_fields=complete_state().organization_fields,
        user_fields=(custom_field(USER_ADMIN, 402),),
    )

    result = kinds(plan_for(state))

    assert result == {
        "field:tier": "reuse",
        "field:first_response_due": "create",
        "field:named_contact": "create",
        "field:named_contact_reason": "create",
        "field:coverage": "reuse",
        "field:sla": "create",
        "field:escalation_level": "create",
        "field:first_response": "create",
        "field:hours": "create",
        "webhook": "reuse",
        "event_webhook": "create",
        "trigger:ticket.created": "reuse",
        "trigger:ticket.updated": "create",
        f"organization_field:{ORG_ACCOUNT}": "reuse",
        f"organization_field:{ORG_TIER}": "reuse",
        f"organization_field:{ORG_HOURS}": "reuse",
        f"user_field:{USER_CONTACT}": "create",
        f"user_field:{USER_ADMIN}": "reuse",
    }
    created = next(s for s in plan_for(state).steps if s.ref == "trigger:ticket.updated")
    assert created.body["trigger"]["actions"][0]["value"][0] == "01HEXISTING"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        pytest.param(
            lambda t: t["actions"][0]["value"].__setitem__(0, "01HOTHER"),
            "another webhook",
            id="webhook",
        ),
        pytest.param(
            lambda t: t["actions"][0]["value"].__setitem__(1, '{"schema": "old"}'),
            "body differs",
            id="body",
        ),
        pytest.param(lambda t: t["conditions"]["all"].pop(), "conditions differ", id="conditions"),
        pytest.param(
            lambda t: t["actions"].append({"field": "status", "value": "open"}),
            "actions differ",
            id="actions",
        ),
    ],
)
def test_a_drifted_trigger_is_updated_in_place(change: Any, why: str) -> None:
    state = complete_state()
    updated = json.loads(json.dumps(state.triggers[1]))
    change(updated)
    result = plan_for(replace(state, triggers=(state.triggers[0], updated)))

    step = next(s for s in result.steps if s.ref == "trigger:ticket.updated")

    assert (step.kind, step.method, step.path, step.id) == (
        "update",
        "PUT",
        "/api/v2/triggers/201",
        "201",
    )
    assert why in step.note
    assert "active" not in step.body["trigger"]  # an admin's switch is left alone
    assert [s.ref for s in result.writes] == ["trigger:ticket.updated"]


def test_conditions_in_another_order_or_as_numbers_are_the_same_trigger() -> None:
    state = complete_state()
    updated = json.loads(json.dumps(state.triggers[1]))
    updated["conditions"]["all"].reverse()
    updated["conditions"]["all"][0]["value"] = 5
    updated["actions"][0]["value"][1] = json.dumps(json.loads(BODIES["ticket.updated"]), indent=4)

    result = plan_for(replace(state, triggers=(state.triggers[0], updated)))

    assert result.writes == ()


def test_a_webhook_subscribed_to_events_is_not_one_a_trigger_can_call() -> None:
    events_webhook = webhook("01HEVENTS", subscriptions=["zen:event-type:ticket.created"])

    result = plan_for(ZendeskState(webhooks=(events_webhook,)))

    assert kinds(result)["webhook"] == "create"


def test_an_inactive_webhook_or_field_is_reused_with_a_note() -> None:
    state = complete_state()
    fields = (field("tier", 100, active=False), *state.ticket_fields[1:])
    hooks = (webhook(status="inactive"), event_webhook(status="inactive"))
    result = plan_for(replace(state, ticket_fields=fields, webhooks=hooks))

    notes = {s.ref: s.note for s in result.steps if s.note}

    assert result.writes == ()
    assert "inactive" in notes["field:tier"] and "inactive" in notes["webhook"]
    assert "inactive" in notes["event_webhook"]


def test_an_event_webhook_missing_events_is_reused_and_the_admin_told_which() -> None:
    partial = event_webhook(subscriptions=["zen:event-type:ticket.comment_added"])
    result = plan_for(replace(complete_state(), webhooks=(webhook(), partial)))

    step = next(s for s in result.steps if s.ref == "event_webhook")
    assert (step.kind, step.id) == ("reuse", "01HEVENTS")
    assert "ticket.status_changed" in step.note and "ticket.soft_deleted" in step.note
    assert "ticket.comment_added" not in step.note
    assert result.writes == ()


def test_a_field_of_another_type_with_our_title_is_refused() -> None:
    dropdown = {"id": 77, "type": "tagger", "title": "tierdesk: Tier", "key": None}

    with pytest.raises(SetupError) as caught:
        plan_for(ZendeskState(ticket_fields=(dropdown,)))

    message = str(caught.value)
    assert '"tierdesk: Tier"' in message and "ticket field 77" in message and "tagger" in message
    assert "[tenants.acme-zd.fields] tier" in message


def test_a_textarea_where_a_text_field_is_wanted_is_kept_and_its_type_recorded() -> None:
    state = complete_state()
    fields = (field("tier", 100, type="textarea"), *state.ticket_fields[1:])

    result = plan_for(replace(state, ticket_fields=fields))

    assert result.writes == ()
    assert result.field_records(result.known_ids())["tier"] == ("100", "textarea")


@pytest.mark.parametrize("what", ["fields", "triggers"])
def test_two_objects_matching_one_name_are_refused_rather_than_guessed(what: str) -> None:
    state = complete_state()
    if what == "fields":
        by_title = (field("tier", 100, key=None), field("tier", 999, key=None))
        state = replace(state, ticket_fields=(*by_title, *state.ticket_fields[1:]))
    else:
        extra = existing_trigger("ticket.created", 999, "01HEXISTING")
        state = replace(state, triggers=(*state.triggers, extra))

    with pytest.raises(SetupError, match="999"):
        plan_for(state)


def test_a_field_with_our_key_wins_over_another_with_our_title() -> None:
    state = complete_state()
    fields = (field("tier", 999, key=None), *state.ticket_fields)

    result = plan_for(replace(state, ticket_fields=fields))

    assert result.known_ids()["field:tier"] == "100"


# -- reading --------------------------------------------------------------------------------


def test_cursor_pages_are_followed_by_after_cursor_and_stop_on_has_more(
    mock: responses.RequestsMock,
) -> None:
    FakeZendesk().install(mock)

    fields = cursor_items(client(), "/api/v2/ticket_fields", "ticket_fields")

    recorded = [
        f["id"]
        for page in (PAGE_1, PAGE_2)
        for f in json.loads((PAYLOADS / page).read_text())["ticket_fields"]
    ]
    assert [f["id"] for f in fields] == recorded
    # Two pages, though the last one still carries a links.next (to another host).
    assert len(mock.calls) == 2


def test_has_more_without_a_new_cursor_stops_with_an_error(mock: responses.RequestsMock) -> None:
    page = {"ticket_fields": [], "meta": {"has_more": True, "after_cursor": "same"}}
    mock.add(responses.GET, f"{ZENDESK}/api/v2/ticket_fields", json=page)

    with pytest.raises(SetupError, match="no new after_cursor"):
        cursor_items(client(), "/api/v2/ticket_fields", "ticket_fields")
    assert len(mock.calls) == 2  # the cursor repeated once, then it gave up


def test_read_state_reads_fields_webhooks_and_triggers(mock: responses.RequestsMock) -> None:
    fake = FakeZendesk(webhooks=[webhook()])
    fake.install(mock)

    state = read_state(client())

    assert [f["type"] for f in state.ticket_fields] == [
        "subject",
        "description",
        "status",
        "tickettype",
    ]
    assert [w["id"] for w in state.webhooks] == ["01HEXISTING"]
    assert [t["title"] for t in state.triggers] == ["Close and Save", "Assign priority tag"]


# -- executing --------------------------------------------------------------------------------


def test_a_fresh_install_then_a_second_run_that_sends_no_write(
    mock: responses.RequestsMock,
) -> None:
    fake = FakeZendesk()
    fake.install(mock)

    first = plan_for(read_state(client()))
    ids = execute(client(), first)

    assert writes(mock) == [
        *["POST /api/v2/ticket_fields"] * len(FIELDS),
        "POST /api/v2/webhooks",
        "POST /api/v2/webhooks",
        "POST /api/v2/triggers",
        "POST /api/v2/triggers",
        *["POST /api/v2/organization_fields"] * 3,
        *["POST /api/v2/user_fields"] * 2,
    ]
    assert ids["webhook"] == fake.webhooks[0]["id"]
    # The webhook's id went into both triggers, in place of the Ref.
    assert [t["actions"][0]["value"][0] for t in fake.triggers] == [ids["webhook"]] * 2
    assert first.field_records(ids)["first_response_due"] == (
        ids["field:first_response_due"],
        "text",
    )

    mock.calls.reset()
    second = plan_for(read_state(client()))
    assert execute(client(), second) == {step.ref: ids[step.ref] for step in second.steps}
    assert writes(mock) == []
    assert set(kinds(second).values()) == {"reuse"}


def test_a_422_names_the_step_that_failed(mock: responses.RequestsMock) -> None:
    fake = FakeZendesk(fail_field_title="tierdesk: Named contact")
    fake.install(mock)

    with pytest.raises(SetupError) as caught:
        execute(client(), plan_for(read_state(client())))

    assert str(caught.value) == (
        'creating ticket field "tierdesk: Named contact" (tierdesk_named_contact) failed:'
        " POST /api/v2/ticket_fields: HTTP 422 RecordInvalid"
    )
    assert len(fake.ticket_fields) == 2  # what came before stays; a new run goes on from it


def test_the_signing_secret_is_read_back(mock: responses.RequestsMock) -> None:
    FakeZendesk(webhooks=[webhook()]).install(mock)

    assert signing_secret(client(), "01HEXISTING") == SIGNING_SECRET


def test_an_answer_without_the_new_id_is_an_error_not_a_guess(mock: responses.RequestsMock) -> None:
    mock.add(responses.POST, f"{ZENDESK}/api/v2/webhooks", json={"webhook": {}}, status=201)
    step = Step(
        "create",
        "webhook X",
        "webhook",
        method="POST",
        path="/api/v2/webhooks",
        body={},
        id_at=("webhook", "id"),
    )

    with pytest.raises(SetupError, match=r"created webhook X, but the answer has no webhook\.id"):
        execute(client(), Plan("zendesk", (step,), ()))


# -- organization and user fields (where tierdesk sync keeps its data) -------------------


def custom_field(key: str, field_id: int, **extra: Any) -> dict[str, Any]:
    spec = next(f for f in directory_fields(TIERS) if f.key == key)
    return {"id": field_id, **spec.requirement(), **extra}


def test_the_directory_fields_are_those_sync_reads_and_writes() -> None:
    fields = {(f.owner, f.key): f for f in directory_fields(TIERS)}

    assert set(fields) == {
        ("organization", ORG_ACCOUNT),
        ("organization", ORG_TIER),
        ("organization", ORG_HOURS),
        ("user", USER_CONTACT),
        ("user", USER_ADMIN),
    }
    # The flags are text: they name their account (acme:direct), which no fixed list of
    # drop-down options can hold.
    assert [(f.key, f.type) for f in fields.values() if f.type == "dropdown"] == [
        (ORG_TIER, "dropdown"),
    ]
    assert fields["user", USER_CONTACT].type == fields["user", USER_ADMIN].type == "text"
    assert fields["organization", ORG_TIER].requirement()["custom_field_options"] == [
        {"name": "Premier", "value": "premier"},
        {"name": "Pay-as-you-go hours", "value": "payg"},
    ]


def test_a_fresh_account_gets_the_directory_fields_with_their_options() -> None:
    steps = {s.ref: s for s in plan_for(ZendeskState()).steps}

    tier = steps[f"organization_field:{ORG_TIER}"]
    assert (tier.method, tier.path, tier.id_at) == (
        "POST",
        "/api/v2/organization_fields",
        ("organization_field", "id"),
    )
    assert tier.body["organization_field"]["type"] == "dropdown"
    assert tier.note == "options: premier, payg"  # what a dry run shows
    contact = steps[f"user_field:{USER_CONTACT}"].body["user_field"]
    assert (contact["key"], contact["type"]) == (USER_CONTACT, "text")
    hours = steps[f"organization_field:{ORG_HOURS}"].body["organization_field"]
    assert (hours["type"], "custom_field_options" in hours) == ("text", False)


def test_directory_fields_are_matched_by_key_and_reused() -> None:
    state = ZendeskState(
        organization_fields=(
            {"id": 7, "key": "custom_field_1", "type": "text", "title": "tierdesk: Tier"},
            custom_field(ORG_ACCOUNT, 71),
            custom_field(
                ORG_TIER,
                72,
                custom_field_options=[
                    {"id": 1, "name": "Premier", "value": "premier"},
                    {"id": 2, "name": "PAYG", "value": "payg"},  # renamed by an admin: kept
                ],
            ),
            custom_field(ORG_HOURS, 73, active=False),
        ),
        user_fields=(custom_field(USER_CONTACT, 81), custom_field(USER_ADMIN, 82)),
    )

    steps = {s.ref: s for s in plan_for(state).steps if "_field:" in s.ref}

    assert {ref: (s.kind, s.id) for ref, s in steps.items()} == {
        f"organization_field:{ORG_ACCOUNT}": ("reuse", "71"),
        f"organization_field:{ORG_TIER}": ("reuse", "72"),
        f"organization_field:{ORG_HOURS}": ("reuse", "73"),
        f"user_field:{USER_CONTACT}": ("reuse", "81"),
        f"user_field:{USER_ADMIN}": ("reuse", "82"),
    }
    assert "inactive" in steps[f"organization_field:{ORG_HOURS}"].note


def test_a_missing_tier_option_is_added_keeping_the_others() -> None:
    state = ZendeskState(
        organization_fields=(
            custom_field(
                ORG_TIER,
                72,
                custom_field_options=[
                    {"id": 1, "name": "Old tier", "value": "legacy"},  # not ours: never removed
                    {"id": 2, "name": "Premier", "value": "premier"},
                ],
            ),
        ),
    )

    step = next(s for s in plan_for(state).steps if s.ref == f"organization_field:{ORG_TIER}")

    assert (step.kind, step.method, step.path) == (
        "update",
        "PUT",
        "/api/v2/organization_fields/72",
    )
    assert step.body == {
        "organization_field": {
            "custom_field_options": [
                {"id": 1, "name": "Old tier", "value": "legacy"},
                {"id": 2, "name": "Premier", "value": "premier"},
                {"name": "Pay-as-you-go hours", "value": "payg"},
            ]
        }
    }
    assert step.note == "adds the options payg"


def test_a_text_field_where_a_drop_down_is_wanted_is_kept_with_a_note() -> None:
    state = ZendeskState(organization_fields=(custom_field(ORG_TIER, 72, type="text"),))

    step = next(s for s in plan_for(state).steps if s.ref == f"organization_field:{ORG_TIER}")

    assert (step.kind, step.note) == ("reuse", "a text field: sync writes the values as text")


def test_an_earlier_named_contact_drop_down_is_refused_with_what_to_do() -> None:
    old = custom_field(
        USER_CONTACT,
        81,
        type="dropdown",
        custom_field_options=[{"id": 1, "name": "Direct", "value": "direct"}],
    )
    with pytest.raises(SetupError, match=r"user field 81 is a drop-down .* sync pull` first"):
        plan_for(ZendeskState(user_fields=(old,)))


def test_a_directory_field_of_another_type_with_our_key_is_refused() -> None:
    state = ZendeskState(
        organization_fields=(custom_field(ORG_HOURS, 73, type="checkbox"),),
    )

    with pytest.raises(SetupError, match=r"organization field 73 has that key but is a checkbox"):
        plan_for(state)


def test_a_tier_added_to_the_mappings_later_gets_its_option_on_the_next_run(
    mock: responses.RequestsMock,
) -> None:
    fake = FakeZendesk()
    fake.install(mock)
    execute(client(), plan_for(read_state(client())))
    tier = next(f for f in fake.organization_fields if f["key"] == ORG_TIER)
    first_ids = {o["value"]: o["id"] for o in tier["custom_field_options"]}

    mock.calls.reset()
    more = [*TIERS, ("select", "Select")]
    later = plan(
        read_state(client()),
        tenant_id=TENANT,
        endpoint=ENDPOINT,
        trigger_bodies=BODIES,
        tiers=more,
    )
    execute(client(), later)

    assert writes(mock) == [f"PUT /api/v2/organization_fields/{tier['id']}"]
    assert [o["value"] for o in tier["custom_field_options"]] == ["premier", "payg", "select"]
    # The options that were there keep their ids (and the organizations showing them).
    assert {o["value"]: o["id"] for o in tier["custom_field_options"][:2]} == first_ids

    mock.calls.reset()
    again = plan(
        read_state(client()), tenant_id=TENANT, endpoint=ENDPOINT, trigger_bodies=BODIES, tiers=more
    )
    execute(client(), again)
    assert writes(mock) == []


# -- the fields tierdesk reads ---------------------------------------------------------------

READ = read_fields(
    (1, 2, 3, 4),
    {"jira-software": "Jira Software", "confluence": "Confluence"},
    ("production", "staging"),
    {"incident": "Incident break/fix"},
)


def body_with(event: str, ids: Mapping[str, str | Ref | None]) -> str | Text:
    """A trigger body naming the read fields' ids (as setup_command renders it)."""
    parts: list[str | Ref] = [f'{{"event": "{event}"']
    for name in ("severity", "product"):
        value = ids.get(name)
        parts += [f', "{name}": "{{{{ticket.ticket_field_']
        parts += [value if value is not None else "", '}}"']
    parts.append("}")
    return (
        Text(tuple(parts))
        if any(isinstance(p, Ref) for p in parts)
        else "".join(p for p in parts if isinstance(p, str))
    )


def read_plan(state: ZendeskState, **options: Any) -> Plan:
    return plan(
        state,
        tenant_id=TENANT,
        endpoint=ENDPOINT,
        trigger_bodies=body_with,
        tiers=TIERS,
        read=READ,
        **options,
    )


def tagger(key: str | None, field_id: int, values: list[str], **extra: Any) -> dict[str, Any]:
    options = [{"id": 900 + i, "name": v, "value": v} for i, v in enumerate(values)]
    return {"id": field_id, "type": "tagger", "key": key, "title": "x", **extra} | {
        "custom_field_options": options
    }


def test_a_fresh_account_gets_the_read_fields_as_drop_downs_of_the_slugs() -> None:
    result = read_plan(ZendeskState())
    steps = {s.ref: s for s in result.steps}

    severity = steps["field:severity"]
    assert (severity.kind, severity.method, severity.path) == (
        "create",
        "POST",
        "/api/v2/ticket_fields",
    )
    assert severity.body["ticket_field"]["type"] == "tagger"
    assert severity.body["ticket_field"]["key"] == "tierdesk_severity"
    assert [o["value"] for o in severity.body["ticket_field"]["custom_field_options"]] == [
        "1",
        "2",
        "3",
        "4",
    ]
    product = steps["field:product"].body["ticket_field"]["custom_field_options"]
    assert product == [
        {"name": "Jira Software", "value": "jira-software"},
        {"name": "Confluence", "value": "confluence"},
    ]
    # The triggers name the fields this run creates: resolved when they are written.
    created = steps["trigger:ticket.created"].body["trigger"]["actions"][0]["value"][1]
    assert isinstance(created, Text)
    assert Ref("id:field:severity") in created.refs
    assert resolve(created, {"field:severity": "71", "field:product": "72"}, {}) == (
        '{"event": "ticket.created", "severity": "{{ticket.ticket_field_71}}",'
        ' "product": "{{ticket.ticket_field_72}}"}'
    )
    assert dict(result.field_types)["severity"] == "dropdown"
    assert result.field_records({"field:severity": "71"}) == {"severity": ("71", "dropdown")}
    # time_spent is the Time Tracking app's: the plan says it stays empty.
    assert [n for n in result.notes if '"time_spent": ""' in n]


def test_option_values_are_unique_across_the_read_fields() -> None:
    # Zendesk: a drop-down option's value is a tag, and a tag belongs to one field only.
    values = [v for spec in READ for v, _ in spec.options]
    assert len(values) == len(set(values))


def test_our_drop_down_gets_the_options_it_lacks_keeping_the_others() -> None:
    state = ZendeskState(
        ticket_fields=(tagger("tierdesk_product", 55, ["jira-software", "legacy"]),)
    )
    step = next(s for s in read_plan(state).steps if s.ref == "field:product")
    assert (step.kind, step.path) == ("update", "/api/v2/ticket_fields/55")
    assert step.body == {
        "ticket_field": {
            "custom_field_options": [
                {"id": 900, "name": "jira-software", "value": "jira-software"},
                {"id": 901, "name": "legacy", "value": "legacy"},
                {"name": "Confluence", "value": "confluence"},
            ]
        }
    }


def test_an_admins_configured_drop_down_is_reported_never_changed() -> None:
    state = ZendeskState(ticket_fields=(tagger(None, 360000123, ["sev_1", "sev_2"]),))
    result = read_plan(
        state,
        configured={"severity": "360000123"},
        values={"severity": {"sev_1": "1", "sev_2": "2"}},
    )
    step = next(s for s in result.steps if s.ref == "field:severity")
    assert (step.kind, step.id) == ("reuse", "360000123")
    assert step.note.startswith("no option for 3, 4: agents cannot choose them")
    # The trigger names the admin's field by its id (and the product field it makes).
    body = next(s for s in result.steps if s.ref == "trigger:ticket.updated").body
    text = resolve(body["trigger"]["actions"][0]["value"][1], {"field:product": "9"}, {})
    assert '"severity": "{{ticket.ticket_field_360000123}}"' in text


def test_a_configured_field_the_account_lacks_is_refused() -> None:
    with pytest.raises(SetupError, match=r"\[tenants.acme-zd.fields\] product = '42': the account"):
        read_plan(ZendeskState(), configured={"product": "42"})


def test_a_read_field_of_a_type_a_trigger_cannot_send_is_refused() -> None:
    date = {"id": 61, "type": "date", "key": "tierdesk_environment", "title": "x"}
    with pytest.raises(SetupError, match="is a date field"):
        read_plan(ZendeskState(ticket_fields=(date,)))


def test_a_text_field_is_read_as_typed() -> None:
    text = {"id": 62, "type": "text", "key": "tierdesk_category", "title": "x"}
    step = next(
        s for s in read_plan(ZendeskState(ticket_fields=(text,))).steps if s.ref == "field:category"
    )
    assert (step.kind, step.id) == ("reuse", "62")
    assert step.note.startswith("a text field: agents type the slug")


def test_read_fields_made_then_found_again_are_all_reuse(mock: responses.RequestsMock) -> None:
    fake = FakeZendesk()
    fake.install(mock)
    first = read_plan(read_state(client()))
    ids = execute(client(), first)
    made = {f["key"]: f for f in fake.ticket_fields if f.get("key", "").startswith("tierdesk_")}
    assert made["tierdesk_severity"]["custom_field_options"][0]["value"] == "1"
    sent = fake.triggers[0]["actions"][0]["value"][1]
    assert f"ticket_field_{ids['field:severity']}" in sent

    mock.calls.reset()
    again = read_plan(
        read_state(client()),
        configured={"severity": ids["field:severity"], "product": ids["field:product"]},
    )
    assert {s.kind for s in again.steps} == {"reuse"}
    assert writes(mock) == []
