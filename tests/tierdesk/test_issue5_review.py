"""Review of issue 5's install side: configuration secrets, `tierdesk setup zendesk` run
again after a webhook was deleted by hand, and the app's requirements.json against the
triggers setup makes.

Tests marked ``xfail(strict=True)`` show a bug: they flip to passing once it is fixed.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import responses

from connector import setup_zendesk
from tests.connector.setup_fakes import SIGNING_SECRET, FakeZendesk
from tests.tierdesk.test_setup_command import (  # noqa: F401  (fixtures)
    API_TOKEN,
    env,
    mock,
    no_waiting,
    zendesk,
)
from tierdesk.config import ConfigError, settings_from_env
from tierdesk.package import default_app_dir

# -- secrets in the configuration file ---------------------------------------------------


def _config(tmp_path: Path, line: str) -> dict[str, str]:
    path = tmp_path / "tierdesk.toml"
    path.write_text(
        '[tenants.acme-zd]\nvendor = "zendesk"\nbase_url = "https://acme.zendesk.com"\n'
        + line
        + "\n",
        encoding="utf-8",
    )
    return {"TIERDESK_CONFIG": str(path)}


@pytest.mark.parametrize("key", ["app_token", "app_token_previous", "webhook_secret_previous"])
def test_a_secret_in_the_configuration_file_is_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=key) as refused:
        settings_from_env(_config(tmp_path, f'{key} = "sidebar-token-in-a-file"'))
    assert "sidebar-token-in-a-file" not in str(refused.value)


def test_an_api_token_in_the_configuration_file_is_refused_without_quoting_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="api_token") as refused:
        settings_from_env(_config(tmp_path, 'api_token = "zd-token-in-a-file"'))
    assert "zd-token-in-a-file" not in str(refused.value)


def test_a_refused_api_token_points_at_the_api_token_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        settings_from_env(_config(tmp_path, 'api_token = "zd-token-in-a-file"'))
    assert "TIERDESK_TENANT_ACME_ZD_API_TOKEN" in str(refused.value)


# -- setup again after the webhook was deleted by hand -----------------------------------


def test_setup_again_after_the_webhook_was_deleted_makes_a_new_one_and_repoints_triggers(
    mock: responses.RequestsMock,  # noqa: F811
    env: Path,  # noqa: F811
) -> None:
    fake = FakeZendesk()
    fake.install(mock)
    assert zendesk("--apply").exit_code == 0
    secret_file = env / "acme-zd.webhook-secret"
    secret_file.unlink()
    # An admin deleted it in Admin Center (the event webhook stays).
    fake.webhooks[:] = [
        w for w in fake.webhooks if "conditional_ticket_events" not in w["subscriptions"]
    ]

    again = zendesk("--apply")

    assert again.exit_code == 0, again.output
    (hook,) = [w for w in fake.webhooks if "conditional_ticket_events" in w["subscriptions"]]
    assert {t["actions"][0]["value"][0] for t in fake.triggers} == {hook["id"]}
    assert len(fake.triggers) == 2  # updated in place, none added
    assert "updated trigger" in again.output and "it calls another webhook" in again.output
    assert secret_file.read_text(encoding="utf-8").strip() == SIGNING_SECRET
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert SIGNING_SECRET not in again.output and API_TOKEN not in again.output
    recorded = json.loads((env / "acme-zd.fields.json").read_text(encoding="utf-8"))
    assert recorded["webhook"]["id"] == hook["id"]


def test_after_a_new_webhook_following_setups_advice_puts_the_new_secret_in_force(
    mock: responses.RequestsMock,  # noqa: F811
    env: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeZendesk()
    fake.install(mock)
    assert zendesk("--apply").exit_code == 0
    # The service was configured the other documented way: the secret's value.
    monkeypatch.setenv("TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET", "secret-of-the-deleted-webhook")
    fake.webhooks.clear()

    again = zendesk("--apply")
    assert again.exit_code == 0, again.output

    # Do what the command said: every "NAME=value" line it printed.
    told = [
        line.strip()
        for line in again.output.splitlines()
        if "=" in line and " " not in line.strip()
    ]
    assert told, again.output
    for line in told:
        name, _, value = line.partition("=")
        monkeypatch.setenv(name, value)
    tenant = settings_from_env().tenants["acme-zd"]
    assert tenant.webhook_secrets[0].reveal() == SIGNING_SECRET


# -- requirements.json and setup agree -----------------------------------------------------


def _requirements() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (default_app_dir() / "requirements.json").read_text(encoding="utf-8")
    )
    return doc


@pytest.mark.parametrize(
    ("event", "identifier"),
    [("ticket.created", "tierdesk_ticket_created"), ("ticket.updated", "tierdesk_ticket_updated")],
)
def test_the_apps_triggers_are_the_ones_setup_makes(event: str, identifier: str) -> None:
    """Setup finds an app-installed trigger by title and compares conditions: if the two
    disagreed, every setup run would rewrite the app's trigger (or the app would install
    one that loops on tierdesk's own updates)."""
    installed = _requirements()["triggers"][identifier]
    wanted = setup_zendesk.trigger(event, "hook", "{}")
    assert installed["title"] == wanted["title"]
    assert installed["description"] == wanted["description"]
    assert installed["conditions"] == wanted["conditions"]
    # The app's trigger, once its webhook id and body are setup's, is no drift.
    app_trigger = {
        **installed,
        "actions": [{"field": "notification_webhook", "value": ["hook", "{}"]}],
    }
    assert setup_zendesk._drift(app_trigger, wanted) == ""


def test_the_apps_webhook_is_one_setup_reuses() -> None:
    (hook,) = _requirements()["webhooks"].values()
    endpoint = hook["endpoint"].replace("{{setting.service_url}}", "https://t.example")
    endpoint = endpoint.replace("{{setting.tenant}}", "acme-zd")
    found = {**hook, "endpoint": endpoint, "id": "01HAPP"}
    step = setup_zendesk._webhook_step((found,), "acme-zd", endpoint)
    assert (step.kind, step.id) == ("reuse", "01HAPP")
