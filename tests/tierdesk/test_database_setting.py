"""Malformed configuration through the real commands (click's runner, a fresh working
directory): a database setting that is neither a clear path nor a valid URL, and a
secret file that is not UTF-8. Each is refused before anything starts, with a message
naming the variable, never a password, never a traceback, and no file is created.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import tierdesk.front
import tierdesk.serve
from tierdesk.cli import main
from tierdesk.config import ConfigError, settings_from_env

HALVES = ("hunter2", "swordfish")

MALFORMED = [
    f"postgresql://tierdesk:{HALVES[0]}#{HALVES[1]}@db.internal/tierdesk",
    f"postgresql://tierdesk:{HALVES[0]}/{HALVES[1]}@db.internal/tierdesk",
    f"host=db.internal user=tierdesk password={HALVES[0]}{HALVES[1]} dbname=tierdesk",
]
COMMANDS = [
    ["serve"],
    ["http"],
    ["worker"],
    ["history", "--ticket", "1"],
    ["replay", "--dead"],
    ["report", "--month", "2026-03"],
    ["hours"],
]


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("TIERDESK_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)

    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("started with a configuration that should have been refused")

    monkeypatch.setattr(tierdesk.serve, "Supervisor", never)
    monkeypatch.setattr(tierdesk.front, "serve_forever", never)
    return work


def run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env)


@pytest.mark.parametrize("value", MALFORMED, ids=["hash", "slash", "libpq-keywords"])
@pytest.mark.parametrize("variable", ["TIERDESK_DATABASE", "DATABASE_URL"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_malformed_database_setting_is_refused_without_echoing_it(
    fresh: Path, value: str, variable: str, command: list[str]
) -> None:
    result = run(command, env={variable: value})
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert variable in result.output
    assert not any(half in result.output for half in HALVES), result.output
    assert list(fresh.iterdir()) == []


def test_in_the_config_file_too(fresh: Path) -> None:
    config = fresh.parent / "tierdesk.toml"
    config.write_text(f'database = "{MALFORMED[2]}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        settings_from_env({"TIERDESK_CONFIG": str(config)})
    assert "database" in str(caught.value)
    assert not any(half in str(caught.value) for half in HALVES)


@pytest.mark.parametrize(
    "content",
    ["SWORDFISH".encode("utf-16"), b"SWORDFISH-caf\xe9\n", b"SWORDFISH\xed\xa0\x80"],
    ids=["utf-16", "latin-1", "surrogate-bytes"],
)
def test_a_secret_file_that_is_not_utf8_is_a_configuration_error(
    fresh: Path, content: bytes
) -> None:
    path = fresh.parent / "webhook-secret"
    path.write_bytes(content)
    env = {
        "TIERDESK_TENANTS": "acme-zd=zendesk",
        "TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET_FILE": str(path),
    }
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        settings_from_env(env)
    assert "TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET_FILE" in str(caught.value)
    result = run(["serve"], env=env)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "not UTF-8" in result.output
    assert "SWORDFISH" not in result.output.replace("\x00", "")
