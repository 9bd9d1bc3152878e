"""``tierdesk setup zendesk|jsm``, run through click against the fake vendors of
`tests.connector.setup_fakes` (every request checked against the vendor's spec).

Settings come from the process environment, as in production: each test clears every
``TIERDESK_*`` variable first and sets its own. The webhook secrets are distinctive
strings, so a test can look for them in everything the command prints or writes.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner, Result

from connector import setup_zendesk
from connector.http import Budget, HttpClient
from mappings import BUNDLED, load_mappings
from tests.connector.setup_fakes import (
    API_ACCOUNT_ID,
    SIGNING_SECRET,
    FakeJira,
    FakeZendesk,
    writes,
)
from tierdesk import setup_command
from tierdesk.config import FieldRecord, FieldsFile, read_fields_file, settings_from_env
from tierdesk.setup_command import setup, trigger_body
from webhooks.events import TicketEvent
from webhooks.settings import FieldMap
from webhooks.signatures import sign_hub, sign_zendesk, verify_hub, verify_zendesk
from webhooks.zendesk import normalize

# A fresh Zendesk install: every field tierdesk writes and the four it reads, the two
# webhooks (the triggers' and the events'), two triggers, and the organization and user
# fields tierdesk sync keeps its data in.
STEPS = len(setup_zendesk.FIELDS) + len(setup_zendesk.READ) + 4
STEPS += len(setup_zendesk.directory_fields(()))

SERVICE = "https://tierdesk.example.com"
API_TOKEN = "api-token-never-shown-4e1d"


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh install sends more requests than the client's burst allows: its token
    bucket (tested in tests/connector/test_http.py) would make every test wait."""
    monkeypatch.setattr(
        setup_command, "HttpClient", functools.partial(HttpClient, budget=Budget(60e6))
    )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Two tenants with credentials; the state directory is returned."""
    for name in list(os.environ):
        if name.startswith("TIERDESK_"):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    state.mkdir()
    for name, value in {
        "TIERDESK_TENANTS": "acme-zd=zendesk,acme-jsm=jsm",
        "TIERDESK_STATE_DIR": str(state),
        "TIERDESK_TENANT_ACME_ZD_BASE_URL": "https://acme.zendesk.com",
        "TIERDESK_TENANT_ACME_ZD_EMAIL": "admin@acme.example",
        "TIERDESK_TENANT_ACME_ZD_API_TOKEN": API_TOKEN,
        "TIERDESK_TENANT_ACME_JSM_BASE_URL": "https://acme.atlassian.net",
        "TIERDESK_TENANT_ACME_JSM_EMAIL": "admin@acme.example",
        "TIERDESK_TENANT_ACME_JSM_API_TOKEN": API_TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    return state


def run(*args: str) -> Result:
    return CliRunner().invoke(setup, [*args, "--service-url", SERVICE], catch_exceptions=False)


def zendesk(*extra: str) -> Result:
    return run("zendesk", "--tenant", "acme-zd", *extra)


def jsm(*extra: str) -> Result:
    return run("jsm", "--tenant", "acme-jsm", "--jql", "project = HELP", *extra)


def settled(state: Path) -> list[str]:
    return sorted(p.name for p in state.iterdir())


# -- Zendesk --------------------------------------------------------------------------------


def test_a_dry_run_prints_the_plan_and_writes_nothing(
    mock: responses.RequestsMock, env: Path
) -> None:
    FakeZendesk().install(mock)

    result = zendesk()

    assert result.exit_code == 0, result.output
    assert "dry run: nothing is changed; --apply does it" in result.output
    assert '  create  ticket field "tierdesk: Tier" (tierdesk_tier)' in result.output
    assert (
        '  create  webhook "tierdesk (acme-zd)" → '
        f"{SERVICE}/webhooks/zendesk/acme-zd" in result.output
    )
    assert '  create  trigger "tierdesk: decide updated tickets"' in result.output
    assert f"would   write the field ids to {env / 'acme-zd.fields.json'}" in result.output
    assert f"To create {STEPS}, to update 0, to reuse 0." in result.output
    assert writes(mock) == []  # reads only
    assert settled(env) == []


def test_apply_creates_everything_and_records_the_ids_and_the_secret(
    mock: responses.RequestsMock, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeZendesk()
    fake.install(mock)

    result = zendesk("--apply")

    assert result.exit_code == 0, result.output
    assert len(writes(mock)) == STEPS
    ids = [str(f["id"]) for f in fake.ticket_fields]
    recorded = read_fields_file(env / "acme-zd.fields.json")
    assert recorded == FieldsFile(
        tenant="acme-zd",
        vendor="zendesk",
        fields={
            "tier": FieldRecord(ids[0], "text"),
            "first_response_due": FieldRecord(ids[1], "text"),
            "named_contact": FieldRecord(ids[2], "text"),
            "named_contact_reason": FieldRecord(ids[3], "textarea"),
            "coverage": FieldRecord(ids[4], "text"),
            "sla": FieldRecord(ids[5], "text"),
            "escalation_level": FieldRecord(ids[6], "text"),
            "first_response": FieldRecord(ids[7], "text"),
            "hours": FieldRecord(ids[8], "text"),
            "severity": FieldRecord(ids[9], "dropdown"),
            "product": FieldRecord(ids[10], "dropdown"),
            "environment": FieldRecord(ids[11], "dropdown"),
            "category": FieldRecord(ids[12], "dropdown"),
        },
        webhook={"id": fake.webhooks[0]["id"], "url": f"{SERVICE}/webhooks/zendesk/acme-zd"},
        triggers={
            "ticket.created": str(fake.triggers[0]["id"]),
            "ticket.updated": str(fake.triggers[1]["id"]),
        },
    )
    secret_file = env / "acme-zd.webhook-secret"
    assert secret_file.read_text() == SIGNING_SECRET + "\n"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert f"TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET_FILE={secret_file}" in result.output
    assert f'  created ticket field "tierdesk: Tier" (tierdesk_tier): id {ids[0]}' in result.output
    assert f"Created {STEPS}, updated 0, reused 0." in result.output
    # What was written is what the service now reads: field map and signing secret.
    monkeypatch.setenv("TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET_FILE", str(secret_file))
    tenant = settings_from_env().tenants["acme-zd"]
    assert tenant.fields == FieldMap(
        tier=ids[0],
        first_response_due=ids[1],
        named_contact=ids[2],
        named_contact_reason=ids[3],
        coverage=ids[4],
        sla=ids[5],
        escalation_level=ids[6],
        first_response=ids[7],
        hours=ids[8],
        severity=ids[9],
        product=ids[10],
        environment=ids[11],
        category=ids[12],
        types={
            "severity": "dropdown",
            "product": "dropdown",
            "environment": "dropdown",
            "category": "dropdown",
            "tier": "text",
            "first_response_due": "text",
            "named_contact": "text",
            "named_contact_reason": "textarea",
            "coverage": "text",
            "sla": "text",
            "escalation_level": "text",
            "first_response": "text",
            "hours": "text",
        },
    )
    body, stamp = b'{"schema": "tierdesk.zendesk.trigger/1"}', "2026-03-06T16:30:00Z"
    verify_zendesk(
        sign_zendesk(SIGNING_SECRET, stamp, body),
        stamp,
        body,
        secrets=tenant.webhook_secrets,
        now=datetime(2026, 3, 6, 16, 30, 5, tzinfo=UTC),
    )


def test_a_second_apply_creates_nothing_and_reads_the_secret_no_more(
    mock: responses.RequestsMock, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeZendesk()
    fake.install(mock)
    assert zendesk("--apply").exit_code == 0
    recorded = (env / "acme-zd.fields.json").read_bytes()
    mock.calls.reset()

    again = zendesk("--apply")

    assert again.exit_code == 0, again.output
    assert writes(mock) == []
    assert fake.secret_reads == 2  # the trigger webhook's and the event webhook's, once
    assert f"Created 0, updated 0, reused {STEPS}." in again.output
    assert (env / "acme-zd.fields.json").read_bytes() == recorded
    # Until the service is told where the secret is, every run says it again.
    assert "wrote the webhook secret" not in again.output
    assert f"the webhook secret is in {env / 'acme-zd.webhook-secret'}" in again.output
    assert f"the event webhook's secret is in {env / 'acme-zd.event-webhook-secret'}" in (
        again.output
    )
    monkeypatch.setenv(
        "TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET_FILE", str(env / "acme-zd.webhook-secret")
    )
    monkeypatch.setenv(
        "TIERDESK_TENANT_ACME_ZD_EVENT_WEBHOOK_SECRET_FILE",
        str(env / "acme-zd.event-webhook-secret"),
    )
    told = zendesk("--apply")
    assert told.exit_code == 0 and "secret" not in told.output


def test_each_secret_is_told_until_its_own_variable_is_set(
    mock: responses.RequestsMock, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeZendesk().install(mock)
    assert zendesk("--apply").exit_code == 0
    # Only the event webhook's secret is configured: the trigger webhook's is still
    # unknown to the service (both are among the tenant's accepted secrets).
    monkeypatch.setenv(
        "TIERDESK_TENANT_ACME_ZD_EVENT_WEBHOOK_SECRET_FILE",
        str(env / "acme-zd.event-webhook-secret"),
    )
    again = zendesk("--apply")
    assert again.exit_code == 0, again.output
    assert f"the webhook secret is in {env / 'acme-zd.webhook-secret'}" in again.output
    assert "the event webhook's secret is in" not in again.output


def test_partial_state_reuses_what_exists(mock: responses.RequestsMock, env: Path) -> None:
    # The app (requirements.json) already made two fields and the webhook.
    fake = FakeZendesk(
        ticket_fields=[
            {"id": 501, "type": "text", "title": "tierdesk: Tier", "key": None, "active": True},
            {"id": 502, "type": "text", "title": "tierdesk: Coverage", "key": None},
        ],
        webhooks=[
            {
                "id": "01HAPPWEBHOOK",
                "endpoint": f"{SERVICE}/webhooks/zendesk/acme-zd",
                "status": "active",
                "subscriptions": ["conditional_ticket_events"],
            }
        ],
    )
    fake.install(mock)

    result = zendesk("--apply")

    assert result.exit_code == 0, result.output
    assert '  reused  ticket field "tierdesk: Tier" (tierdesk_tier): id 501' in result.output
    assert writes(mock) == [
        # Two exist; the four tierdesk reads are made too.
        *["POST /api/v2/ticket_fields"] * (len(setup_zendesk.FIELDS) - 2 + 4),
        "POST /api/v2/webhooks",  # the event webhook
        *["POST /api/v2/triggers"] * 2,
        *["POST /api/v2/organization_fields"] * 3,
        *["POST /api/v2/user_fields"] * 2,
    ]
    assert [t["actions"][0]["value"][0] for t in fake.triggers] == ["01HAPPWEBHOOK"] * 2
    recorded = read_fields_file(env / "acme-zd.fields.json")
    assert recorded is not None
    assert (recorded.fields["tier"].id, recorded.fields["coverage"].id) == ("501", "502")
    # No secret file yet for a webhook found: it is read once and recorded.
    assert (env / "acme-zd.webhook-secret").read_text() == SIGNING_SECRET + "\n"


def test_a_422_is_a_clear_error_and_records_nothing(
    mock: responses.RequestsMock, env: Path
) -> None:
    FakeZendesk(fail_field_title="tierdesk: First response due").install(mock)

    result = zendesk("--apply")

    assert result.exit_code == 1
    assert (
        'Error: creating ticket field "tierdesk: First response due"'
        " (tierdesk_first_response_due) failed: POST /api/v2/ticket_fields:"
        " HTTP 422 RecordInvalid. What was created stays; run it again to go on."
    ) in result.output
    assert settled(env) == []


def test_no_secret_or_token_is_ever_printed(mock: responses.RequestsMock, env: Path) -> None:
    FakeZendesk().install(mock)

    outputs = [zendesk().output, zendesk("--apply").output, zendesk("--apply").output]

    for output in outputs:
        assert SIGNING_SECRET not in output
        assert API_TOKEN not in output
    assert SIGNING_SECRET not in (env / "acme-zd.fields.json").read_text()


# The values a Zendesk trigger puts in the placeholders, for one ticket.
PLACEHOLDERS = {
    "ticket.id": "4242",
    "ticket.created_at_with_timestamp": "2026-03-06T16:30:00Z",
    "ticket.updated_at_with_timestamp": "2026-03-06T16:45:00Z",
    "ticket.requester.email": "alice@acme.example",
    "ticket.organization.id": "360001",
    "ticket.priority": "Urgent",
    "ticket.status": "Open",
    "ticket.ticket_field_360000123": "sev_1",
    "ticket.ticket_field_360000124": "jira_software",
    "current_user.email": "agent@acme.example",
}


def fill(text: str, more: dict[str, str] | None = None) -> str:
    """What Zendesk sends: every placeholder replaced (one we did not expect fails)."""
    values = {**PLACEHOLDERS, **(more or {})}
    return re.sub(r"\{\{([^}]+)\}\}", lambda m: values[m.group(1)], text)


def test_the_trigger_body_sent_is_one_the_receiver_accepts(
    mock: responses.RequestsMock, env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Severity and product are mapped by hand; environment and category are not.
    toml = tmp_path / "tierdesk.toml"
    toml.write_text(
        """
[tenants.acme-zd]
vendor = "zendesk"
[tenants.acme-zd.fields]
severity = "360000123"
product = "360000124"
[tenants.acme-zd.fields.values.severity]
sev_1 = "1"
[tenants.acme-zd.fields.values.product]
jira_software = "jira-software"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("TIERDESK_CONFIG", str(toml))
    # The admin's own fields: a drop-down of their severities, a text field of products.
    fake = FakeZendesk(
        ticket_fields=[
            {
                "id": 360000123,
                "type": "tagger",
                "title": "Severity",
                "custom_field_options": [{"id": 1, "name": "Sev 1", "value": "sev_1"}],
            },
            {"id": 360000124, "type": "text", "title": "Product"},
        ]
    )
    fake.install(mock)

    result = zendesk("--apply")
    assert result.exit_code == 0, result.output
    tenant = settings_from_env().tenants["acme-zd"]
    # Found by the configured ids and reported; environment and category made.
    assert (
        '  reused  ticket field 360000123 "Severity" for severity: id 360000123 (no option'
        " for 2, 3, 4: agents cannot choose them" in result.output
    )
    assert '  reused  ticket field 360000124 "Product" for product: id 360000124 (a text' in (
        result.output
    )
    assert '  created ticket field "tierdesk: Environment" (tierdesk_environment)' in (
        result.output
    )
    assert 'Note: the triggers send "time_spent": "" (no field is mapped)' in result.output
    made = {f["key"]: str(f["id"]) for f in fake.ticket_fields if f.get("key")}
    chosen = {
        f"ticket.ticket_field_{made['tierdesk_environment']}": "production",
        f"ticket.ticket_field_{made['tierdesk_category']}": "",  # left blank
    }

    events: list[TicketEvent] = []
    for created in fake.triggers:
        sent = created["actions"][0]["value"][1]
        assert "{{ticket.ticket_field_360000123}}" in sent
        assert f"{{{{ticket.ticket_field_{made['tierdesk_environment']}}}}}" in sent
        assert "FIELD_ID" not in sent  # every stand-in replaced or blanked
        event = normalize(json.loads(fill(sent, chosen)), tenant, "invocation-1")
        assert isinstance(event, TicketEvent)
        events.append(event)
    assert [e.kind for e in events] == ["ticket.created", "ticket.updated"]
    ticket = events[1].ticket
    assert ticket is not None
    assert (ticket.id, ticket.requester, ticket.priority) == (
        "4242",
        "alice@acme.example",
        "urgent",
    )
    assert (ticket.severity, ticket.product) == ("1", "jira-software")
    assert (ticket.environment, ticket.category) == ("production", None)  # blank: absent
    assert events[1].actor == "agent@acme.example"


def test_trigger_body_blanks_the_fields_a_tenant_has_not_mapped() -> None:
    text = trigger_body("ticket.created", FieldMap(category="77"))
    assert isinstance(text, str)
    body = json.loads(text)

    assert body["event"] == "ticket.created"
    assert body["ticket"]["category"] == "{{ticket.ticket_field_77}}"
    assert body["ticket"]["severity"] == body["ticket"]["product"] == ""
    assert body["ticket"]["id"] == "{{ticket.id}}"


# -- JSM ------------------------------------------------------------------------------------


def test_jsm_apply_makes_a_secret_gives_it_to_jira_and_never_prints_it(
    mock: responses.RequestsMock, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeJira()
    fake.install(mock)

    dry = jsm()
    assert dry.exit_code == 0, dry.output
    assert "would   make a webhook secret and write it to" in dry.output
    assert writes(mock) == [] and settled(env) == []

    result = jsm("--apply")

    assert result.exit_code == 0, result.output
    secret_file = env / "acme-jsm.webhook-secret"
    secret = secret_file.read_text().strip()
    assert len(secret) >= 40 and secret_file.stat().st_mode & 0o777 == 0o600
    assert list(fake.secrets.values()) == [secret]
    assert secret not in result.output and secret not in dry.output
    assert secret not in (env / "acme-jsm.fields.json").read_text()
    assert f"TIERDESK_TENANT_ACME_JSM_WEBHOOK_SECRET_FILE={secret_file}" in result.output
    assert "Note: Jira shows new custom fields on no screen" in result.output
    recorded = read_fields_file(env / "acme-jsm.fields.json")
    assert recorded is not None
    assert recorded.fields["first_response_due"].type == "datetime"
    assert recorded.fields["team"].type == "text"
    # The variable printed is all the service needs to check Jira's signatures.
    monkeypatch.setenv("TIERDESK_TENANT_ACME_JSM_WEBHOOK_SECRET_FILE", str(secret_file))
    tenant = settings_from_env().tenants["acme-jsm"]
    assert tenant.fields.first_response_due == recorded.fields["first_response_due"].id
    body = b'{"webhookEvent": "jira:issue_updated"}'
    verify_hub(sign_hub(secret, body), body, secrets=tenant.webhook_secrets)

    mock.calls.reset()
    again = jsm("--apply")
    assert again.exit_code == 0, again.output
    assert writes(mock) == []
    assert secret_file.read_text().strip() == secret  # kept, not remade


def test_jsm_cloud_records_the_api_users_account_id_and_the_service_knows_it(
    mock: responses.RequestsMock, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Jira Cloud webhooks name tierdesk's API user by accountId only: without it, the
    # webhook of tierdesk's own write would pass for an agent's edit.
    fake = FakeJira()
    fake.install(mock)
    dry = jsm()
    assert "record the API user's accountId" in dry.output and fake.myself_reads == 0

    result = jsm("--apply")

    assert result.exit_code == 0, result.output
    assert fake.myself_reads == 1
    recorded = read_fields_file(env / "acme-jsm.fields.json")
    assert recorded is not None and recorded.api_user == {"account_id": API_ACCOUNT_ID}
    tenant = settings_from_env().tenants["acme-jsm"]
    assert tenant.api_users == ("admin@acme.example", API_ACCOUNT_ID)
    # A hand-set value wins over what setup recorded.
    monkeypatch.setenv("TIERDESK_TENANT_ACME_JSM_ACCOUNT_ID", "557058:by-hand")
    assert settings_from_env().tenants["acme-jsm"].account_id == "557058:by-hand"


def test_a_jsm_run_that_stopped_after_making_the_secret_goes_on_with_it(
    mock: responses.RequestsMock, env: Path
) -> None:
    fake = FakeJira(fail_webhooks=1)
    fake.install(mock)

    failed = jsm("--apply")

    assert failed.exit_code == 1
    assert "creating admin webhook" in failed.output and "HTTP 400" in failed.output
    secret = (env / "acme-jsm.webhook-secret").read_text().strip()
    assert not (env / "acme-jsm.fields.json").exists()

    again = jsm("--apply")

    assert again.exit_code == 0, again.output
    assert list(fake.secrets.values()) == [secret]  # the one on file, not a second one
    assert "  reused  custom field" in again.output and "  created admin webhook" in again.output
    assert "the webhook secret is in" in again.output  # the variable is told after all
    assert secret not in failed.output + again.output


def test_jsm_keeps_the_secret_a_tenant_already_has(
    mock: responses.RequestsMock, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = "configured-jsm-secret-5a9c0d"
    monkeypatch.setenv("TIERDESK_TENANT_ACME_JSM_WEBHOOK_SECRET", configured)
    fake = FakeJira(
        webhooks=[
            {
                "self": "https://acme.atlassian.net/rest/webhooks/1.0/webhook/3",
                "url": f"{SERVICE}/webhooks/jsm/acme-jsm",
                "events": ["jira:issue_created"],  # drifted: it gets updated
                "filters": {"issue-related-events-section": "project = HELP"},
            }
        ]
    )
    fake.install(mock)

    result = jsm("--apply")

    assert result.exit_code == 0, result.output
    assert "  updated admin webhook" in result.output and "(its events differ)" in result.output
    assert fake.secrets == {"3": configured}
    assert not (env / "acme-jsm.webhook-secret").exists()
    assert configured not in result.output


def test_jsm_needs_a_jql_filter(env: Path) -> None:
    result = CliRunner().invoke(setup, ["jsm", "--tenant", "acme-jsm", "--service-url", SERVICE])

    assert result.exit_code == 2
    assert "--jql" in result.output


# -- what the command refuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["zendesk", "--tenant", "acme-jsm"], "no zendesk tenant called 'acme-jsm'", id="vendor"
        ),
        pytest.param(
            ["zendesk", "--tenant", "nobody"], "(configured: acme-zd)", id="unknown-tenant"
        ),
        pytest.param(
            ["zendesk", "--tenant", "acme-zd", "--jql", "x"], "only for jsm", id="jql-zendesk"
        ),
    ],
)
def test_wrong_arguments_are_usage_errors(env: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(setup, [*args, "--service-url", SERVICE])

    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    "url", ["http://tierdesk.example.com", "ftp://x", "https://", "https://x/?a=1"]
)
def test_a_service_url_the_helpdesk_should_not_call_is_refused(env: Path, url: str) -> None:
    result = CliRunner().invoke(setup, ["zendesk", "--tenant", "acme-zd", "--service-url", url])

    assert result.exit_code == 2
    assert "--service-url" in result.output


def test_a_service_url_with_a_password_is_refused_without_showing_it(env: Path) -> None:
    url = "https://tierdesk:hunter2-pass@tierdesk.example.com"
    result = CliRunner().invoke(setup, ["zendesk", "--tenant", "acme-zd", "--service-url", url])

    assert result.exit_code == 2
    assert "user:password@ is refused" in result.output
    assert "hunter2-pass" not in result.output


def test_a_missing_state_directory_is_made_private(
    mock: responses.RequestsMock, env: Path, tmp_path: Path
) -> None:
    FakeZendesk().install(mock)
    fresh = tmp_path / "var" / "tierdesk"

    result = zendesk("--apply", "--state-dir", str(fresh))

    assert result.exit_code == 0, result.output
    assert fresh.stat().st_mode & 0o777 == 0o700
    assert settled(fresh) == [
        "acme-zd.event-webhook-secret",
        "acme-zd.fields.json",
        "acme-zd.webhook-secret",
    ]


def test_an_unwritable_state_directory_is_a_clear_error(
    mock: responses.RequestsMock, env: Path, tmp_path: Path
) -> None:
    FakeZendesk().install(mock)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory should be", encoding="utf-8")

    result = zendesk("--apply", "--state-dir", str(blocked / "state"))

    assert result.exit_code == 1
    assert f"Error: {blocked / 'state'}: Not a directory." in result.output
    assert writes(mock) == []  # refused before anything was created


def test_missing_credentials_are_named(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIERDESK_TENANT_ACME_ZD_API_TOKEN")
    monkeypatch.delenv("TIERDESK_TENANT_ACME_ZD_EMAIL")

    result = zendesk()

    assert result.exit_code == 1
    assert "TIERDESK_TENANT_ACME_ZD_API_TOKEN[_FILE]" in result.output
    assert "TIERDESK_TENANT_ACME_ZD_EMAIL" in result.output


def test_a_state_dir_the_service_does_not_read_is_pointed_out(
    mock: responses.RequestsMock, env: Path, tmp_path: Path
) -> None:
    FakeZendesk().install(mock)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = zendesk("--apply", "--state-dir", str(elsewhere))

    assert result.exit_code == 0, result.output
    assert settled(elsewhere) == [
        "acme-zd.event-webhook-secret",
        "acme-zd.fields.json",
        "acme-zd.webhook-secret",
    ]
    assert f"set TIERDESK_STATE_DIR={elsewhere} where it runs" in result.output


def test_the_tier_drop_down_offers_the_mappings_tiers_and_a_new_tier_is_added_later(
    mock: responses.RequestsMock, env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeZendesk()
    fake.install(mock)
    mappings = tmp_path / "mappings"
    shutil.copytree(BUNDLED, mappings)
    monkeypatch.setenv("TIERDESK_MAPPINGS", str(mappings))

    dry = zendesk()

    bundled = list(load_mappings(None).tiers)
    assert (
        '  create  organization field "tierdesk: Tier" (tierdesk_tier)'
        f" (options: {', '.join(bundled)})" in dry.output
    )
    assert '  create  user field "tierdesk: Named contact" (tierdesk_named_contact)' in dry.output
    assert zendesk("--apply").exit_code == 0
    tiers_file = mappings / "tiers.json"
    doc = json.loads(tiers_file.read_text())
    doc["tiers"]["gold"] = {**doc["tiers"]["select"], "name": "Gold"}
    tiers_file.write_text(json.dumps(doc))
    mock.calls.reset()

    again = zendesk("--apply")

    assert again.exit_code == 0, again.output
    tier = next(f for f in fake.organization_fields if f["key"] == "tierdesk_tier")
    assert writes(mock) == [f"PUT /api/v2/organization_fields/{tier['id']}"]
    assert '  updated organization field "tierdesk: Tier" (tierdesk_tier)' in again.output
    assert "(adds the options gold)" in again.output
    assert [o["value"] for o in tier["custom_field_options"]] == [*bundled, "gold"]


def test_setup_refuses_mappings_that_do_not_load(
    mock: responses.RequestsMock, env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    FakeZendesk().install(mock)
    mappings = tmp_path / "mappings"
    shutil.copytree(BUNDLED, mappings)
    (mappings / "tiers.json").write_text("{")
    monkeypatch.setenv("TIERDESK_MAPPINGS", str(mappings))

    result = zendesk("--apply")

    assert result.exit_code == 1
    assert "the mappings do not load (tiers unknown)" in result.output
    assert writes(mock) == []
