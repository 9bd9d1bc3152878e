"""A tenant's ``locale``: the language of its explanations and internal notes; and
``tierdesk explain --locale``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tierdesk.cli import main
from tierdesk.config import ConfigError, settings_from_env


def load(tmp_path: Path, toml: str) -> dict[str, str]:
    path = tmp_path / "tierdesk.toml"
    path.write_text(toml, "utf-8")
    return {"TIERDESK_CONFIG": str(path), "TIERDESK_STATE_DIR": str(tmp_path)}


def test_locale_is_english_unless_the_tenant_says_japanese(tmp_path: Path) -> None:
    toml = """
[tenants.acme-zd]
vendor = "zendesk"
locale = "ja"

[tenants.globex-zd]
vendor = "zendesk"
"""
    tenants = settings_from_env(load(tmp_path, toml)).tenants
    assert tenants["acme-zd"].locale == "ja"
    assert tenants["globex-zd"].locale == "en"


@pytest.mark.parametrize("value", ['"fr"', '"JA"', "1", '""'])
def test_a_locale_tierdesk_does_not_speak_is_refused(tmp_path: Path, value: str) -> None:
    toml = f'[tenants.acme-zd]\nvendor = "zendesk"\nlocale = {value}\n'
    with pytest.raises(ConfigError, match="tenant acme-zd: locale must be one of 'en', 'ja'"):
        settings_from_env(load(tmp_path, toml))


def test_a_misspelt_locale_key_is_named(tmp_path: Path) -> None:
    toml = '[tenants.acme-zd]\nvendor = "zendesk"\nlocal = "ja"\n'
    with pytest.raises(ConfigError, match="did you mean 'locale'"):
        settings_from_env(load(tmp_path, toml))


def test_explain_in_japanese() -> None:
    ticket = '{"id": 1, "created_at": "2026-03-06T16:30:00Z", "requester": "alice@acme.example"}'
    runner = CliRunner()
    now = ["--now", "2026-03-06T16:31:00Z"]
    english = runner.invoke(main, ["explain", *now], input=ticket)
    japanese = runner.invoke(main, ["explain", *now, "--locale", "ja"], input=ticket)
    assert english.exit_code == japanese.exit_code == 0, japanese.output
    en, ja = json.loads(english.output), json.loads(japanese.output)
    assert {k: v for k, v in en.items() if k != "explanation"} == {
        k: v for k, v in ja.items() if k != "explanation"
    }
    assert en["explanation"][0] == "severity L3: the ticket gives neither severity nor priority"
    assert ja["explanation"][0] == "重大度 L3: チケットに重大度も優先度もありません"
    refused = runner.invoke(main, ["explain", "--locale", "fr"], input=ticket)
    assert refused.exit_code == 2 and "'fr' is not one of 'en', 'ja'" in refused.output
