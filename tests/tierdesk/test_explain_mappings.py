"""`tierdesk explain` decides with the mappings the service uses: ``--mappings``, else
``$TIERDESK_MAPPINGS``, else the configuration file's ``mappings`` (``TIERDESK_CONFIG``),
else the bundled ones. An explanation from other mappings than the service's would
mislead the admin who asks why a ticket got its tier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mappings import BUNDLED
from tierdesk.cli import main

TICKET = {
    "id": "123",
    "created_at": "2026-03-06T16:30:00Z",
    "requester": "alice@acme.example",
    "organization": {"vendor": "zendesk", "id": 360001},
    "severity": 1,
}


def renamed(root: Path, name: str) -> Path:
    """A copy of the bundled mappings whose account acme is called ``name``."""
    directory = root / name.replace(" ", "-")
    shutil.copytree(BUNDLED, directory)
    accounts = directory / "accounts.json"
    accounts.write_text(accounts.read_text("utf-8").replace('"Acme Corp"', json.dumps(name)))
    return directory


def explained(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(
        main,
        ["explain", "--now", "2026-03-06T16:31:00Z", *args, "-"],
        input=json.dumps(TICKET),
        env=env,
    )
    assert result.exit_code == 0, result.output
    return " ".join(json.loads(result.stdout)["explanation"])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tierdesk.toml"
    path.write_text(f"mappings = {json.dumps(str(renamed(tmp_path, 'Acme Configured')))}\n")
    return path


def test_the_configuration_files_mappings(tmp_path: Path, config: Path) -> None:
    env = {"TIERDESK_CONFIG": str(config), "TIERDESK_MAPPINGS": ""}
    assert "(Acme Configured)" in explained(tmp_path, env)


def test_the_environment_and_the_option_come_first(tmp_path: Path, config: Path) -> None:
    from_env = renamed(tmp_path, "Acme Environment")
    env = {"TIERDESK_CONFIG": str(config), "TIERDESK_MAPPINGS": str(from_env)}
    assert "(Acme Environment)" in explained(tmp_path, env)
    given = renamed(tmp_path, "Acme Option")
    assert "(Acme Option)" in explained(tmp_path, env, "--mappings", str(given))


def test_without_a_configuration_the_bundled_ones(tmp_path: Path) -> None:
    env = {"TIERDESK_CONFIG": "", "TIERDESK_MAPPINGS": ""}
    assert "(Acme Corp)" in explained(tmp_path, env)
