"""A first-use review of the README's commands, as an operator meets them.

Each test marked ``xfail(strict=True)`` shows a bug found by following README.md from a
fresh clone: a traceback shown to a user, a secret printed, an exit code that says
success on failure, or a nonsense option accepted. They flip to passing once fixed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
from pathlib import Path
from typing import Any, ClassVar

import pytest
import responses
from click.testing import CliRunner, Result

import tierdesk.front
import tierdesk.serve
from mappings import BUNDLED
from store import open_store
from tierdesk.cli import _cores, main, worker_defaults
from tierdesk.config import ConfigError, settings_from_env
from tierdesk.sync_command import sync
from webhooks.app import create_app
from webhooks.settings import Settings

# Deep enough to exhaust Python's recursion limit in json.loads, and well under the
# webhook's 1 MiB body limit.
DEEP = "[" * 100_000 + "]" * 100_000
PASSWORD = "hunter2pass"
ACME: dict[str, Any] = {
    "id": "123",
    "created_at": "2026-03-06T16:30:00Z",
    "requester": "alice@acme.example",
    "organization": {"vendor": "zendesk", "id": 360001},
    "severity": 1,
    "product": "jira-software",
    "environment": "production",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("TIERDESK_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


def run(args: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, args, input=stdin, env=env)


def assert_no_traceback(result: Result) -> None:
    """An uncaught exception reaches the user as a traceback; click's own exits do not."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )


def database(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "tierdesk.sqlite3"
    open_store(str(path)).close()
    return {"TIERDESK_DATABASE": str(path)}


# -- deeply nested JSON ------------------------------------------------------------------


def test_validate_reports_a_deeply_nested_file_as_a_problem(tmp_path: Path) -> None:
    broken = tmp_path / "mappings"
    shutil.copytree(BUNDLED, broken)
    (broken / "accounts.json").write_text(DEEP, encoding="utf-8")
    result = run(["mappings", "validate", str(broken)])
    assert_no_traceback(result)
    assert result.exit_code == 1
    assert "accounts.json#" in result.output


def test_explain_refuses_deeply_nested_input_without_a_traceback() -> None:
    result = run(["explain", "-"], stdin=DEEP)
    assert_no_traceback(result)
    assert result.exit_code == 2
    assert "not JSON" in result.stderr


def test_api_decisions_answers_400_to_a_deeply_nested_body(tmp_path: Path) -> None:
    client = create_app(Settings(database=str(tmp_path / "tierdesk.sqlite3"))).test_client()
    response = client.post(
        "/api/decisions", data=DEEP, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"


# -- --now outside the range the rest of tierdesk accepts ----------------------------------


def test_explain_refuses_a_now_outside_1970_2999() -> None:
    result = run(["explain", "--now", "9999-12-31T23:59:59Z", "-"], stdin=json.dumps(ACME))
    assert_no_traceback(result)
    assert result.exit_code == 2
    assert "1970" in result.output


@pytest.mark.parametrize("now", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_hours_refuses_a_now_outside_1970_2999(tmp_path: Path, now: str) -> None:
    result = run(["hours", "--now", now], env=database(tmp_path))
    assert_no_traceback(result)
    assert result.exit_code == 2
    assert "1970" in result.output


# -- report --out ------------------------------------------------------------------------


def test_report_out_in_a_missing_directory_is_an_error_message(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "report.csv"
    result = run(["report", "--month", "2026-03", "--out", str(target)], env=database(tmp_path))
    assert_no_traceback(result)
    assert result.exit_code != 0
    assert str(target.parent) in result.output
    assert not target.exists()


# -- serve -------------------------------------------------------------------------------


class FakeSupervisor:
    """Stands in for tierdesk.serve.Supervisor: records that serve got as far as it."""

    started: ClassVar[list[tuple[Any, ...]]] = []

    def __init__(self, listener: socket.socket, *args: Any, **kwargs: Any) -> None:
        listener.close()
        FakeSupervisor.started.append(args)

    def run(self) -> int:
        return 0


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> type[FakeSupervisor]:
    FakeSupervisor.started = []
    monkeypatch.setattr(tierdesk.serve, "Supervisor", FakeSupervisor)
    return FakeSupervisor


def test_serve_does_not_print_the_database_password(supervisor: type[FakeSupervisor]) -> None:
    url = f"postgresql://tierdesk:{PASSWORD}@db.internal/tierdesk"
    # Port 0: serve binds its socket before starting the (here fake) supervisor.
    result = run(["serve", "--bind", "127.0.0.1:0"], env={"TIERDESK_DATABASE": url})
    assert result.exit_code == 0, result.output
    assert supervisor.started
    assert "db.internal" in result.output  # still says which store
    assert PASSWORD not in result.output


LIVE_TENANT = {  # credentials to write back to its helpdesk: no longer a dry run
    "TIERDESK_TENANT_ACME_BASE_URL": "https://acme.zendesk.com",
    "TIERDESK_TENANT_ACME_EMAIL": "tierdesk@acme.example",
    "TIERDESK_TENANT_ACME_API_TOKEN": "not-a-real-token",
}


SQLITE, POSTGRESQL = "tierdesk.sqlite3", "postgresql://tierdesk@db.internal/tierdesk"


@pytest.mark.parametrize(
    ("database", "env", "option", "cores", "processes", "threads"),
    [
        # Dry run: deciding is CPU, so two processes of one thread (measured; a second
        # thread in one process drains slower on SQLite).
        (SQLITE, {}, [], 2, 2, 1),
        (POSTGRESQL, {}, [], 2, 2, 1),
        (SQLITE, {}, [], 1, 1, 1),  # no second core to use
        (POSTGRESQL, {}, ["--worker-processes", "1"], 2, 1, 2),  # one process: two threads
        # Writes wait on the helpdesk's API: two threads overlap them, in one process
        # (the tenant's request budget is per process).
        (SQLITE, LIVE_TENANT, [], 2, 1, 2),
        (POSTGRESQL, LIVE_TENANT, [], 2, 1, 2),
        (SQLITE, {}, ["--worker-threads", "3"], 2, 2, 3),  # asked for: as asked
        (SQLITE, LIVE_TENANT, ["--worker-processes", "3"], 2, 3, 2),
    ],
)
def test_serve_runs_the_measured_worker_processes_and_threads(
    supervisor: type[FakeSupervisor],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database: str,
    env: dict[str, str],
    option: list[str],
    cores: int,
    processes: int,
    threads: int,
) -> None:
    monkeypatch.setattr("tierdesk.cli._cores", lambda: cores)
    url = database if "://" in database else str(tmp_path / database)
    config = tmp_path / "tierdesk.toml"
    config.write_text('[tenants.acme]\nvendor = "zendesk"\n')
    environment = {"TIERDESK_DATABASE": url, "TIERDESK_CONFIG": str(config), **env}
    result = run(["serve", "--bind", "127.0.0.1:0", *option], env=environment)
    assert result.exit_code == 0, result.output
    (started,) = supervisor.started
    worker_command, count = started[2], started[3]
    assert (count, worker_command[-2:]) == (processes, ["--threads", str(threads)])
    assert f"inbox workers: {processes} × {threads} thread" in result.output
    assert "not-a-real-token" not in result.output


def test_serve_warns_that_several_processes_writing_back_multiply_the_budget(
    supervisor: type[FakeSupervisor], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "tierdesk.toml"
    config.write_text('[tenants.acme]\nvendor = "zendesk"\n')
    env = {"TIERDESK_DATABASE": str(tmp_path / SQLITE), "TIERDESK_CONFIG": str(config)}
    with caplog.at_level("WARNING", logger="tierdesk.serve"):
        result = run(["serve", "--bind", "127.0.0.1:0", "--worker-processes", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert not caplog.records  # dry run: no budget to multiply
    with caplog.at_level("WARNING", logger="tierdesk.serve"):
        result = run(
            ["serve", "--bind", "127.0.0.1:0", "--worker-processes", "3"],
            env={**env, **LIVE_TENANT},
        )
    assert result.exit_code == 0, result.output
    assert "3 times the budget" in caplog.text


def test_serve_without_worker_processes_says_where_they_are(
    supervisor: type[FakeSupervisor], tmp_path: Path
) -> None:
    env = {"TIERDESK_DATABASE": str(tmp_path / SQLITE)}
    result = run(["serve", "--bind", "127.0.0.1:0", "--worker-processes", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert "inbox workers: none here, run `tierdesk worker`" in result.output


@pytest.mark.parametrize(
    ("database", "env", "threads"),
    [(SQLITE, {}, 1), (POSTGRESQL, {}, 2), (SQLITE, LIVE_TENANT, 2)],
)
def test_a_worker_run_alone_takes_the_threads_measured_for_one_process(
    tmp_path: Path, database: str, env: dict[str, str], threads: int
) -> None:
    url = database if "://" in database else str(tmp_path / database)
    config = tmp_path / "tierdesk.toml"
    config.write_text('[tenants.acme]\nvendor = "zendesk"\n')
    settings = settings_from_env({"TIERDESK_DATABASE": url, "TIERDESK_CONFIG": str(config), **env})
    assert worker_defaults(settings, processes=1) == (1, threads)


@pytest.mark.parametrize(
    ("cpu_max", "cores"),
    [
        ("max 100000\n", 2),  # no quota: the cores it may run on
        ("100000 100000\n", 1),  # one CPU's worth
        ("150000 100000\n", 2),  # one and a half: both cores, partly
        ("800000 100000\n", 2),  # more than the machine: the machine
        ("garbled", 2),
    ],
)
def test_the_cores_are_those_of_the_cpu_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str, cores: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert _cores(path) == cores
    assert _cores(tmp_path / "absent") == 2


@pytest.mark.parametrize(
    "option",
    [
        ["--workers", "0"],
        ["--threads", "0"],
        ["--worker-threads", "0"],
        ["--worker-processes", "-1"],
    ],
)
def test_serve_refuses_counts_that_cannot_work(
    supervisor: type[FakeSupervisor], option: list[str]
) -> None:
    result = run(["serve", *option])
    assert result.exit_code == 2, result.output
    assert option[0] in result.output
    assert not supervisor.started


def test_http_with_a_store_it_cannot_open_exits_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Any] = []
    monkeypatch.setattr(tierdesk.front, "serve_forever", lambda *args: served.append(args))
    # A directory is not a SQLite file: what a mistyped TIERDESK_DATABASE gives.
    result = run(["http"], env={"TIERDESK_DATABASE": str(tmp_path)})
    assert_no_traceback(result)
    assert result.exit_code == 1
    assert "cannot open" in result.output
    assert not served


# -- replay ------------------------------------------------------------------------------


def test_replay_of_an_unknown_event_fails(tmp_path: Path) -> None:
    result = run(["replay", "--event", "999"], env=database(tmp_path))
    assert result.exit_code == 1
    assert "999" in result.output


# -- sync pull ---------------------------------------------------------------------------


def test_sync_pull_refuses_a_zendesk_tenant_without_an_email(tmp_path: Path) -> None:
    directory = tmp_path / "mappings"
    shutil.copytree(BUNDLED, directory)
    env = {
        "TIERDESK_TENANTS": "acme-zd=zendesk",
        "TIERDESK_TENANT_ACME_ZD_BASE_URL": "https://acme.zendesk.com",
        "TIERDESK_TENANT_ACME_ZD_API_TOKEN": "zd-api-token",
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # What Zendesk answers to "/token" basic auth: the test must not wait on retries.
        rsps.add(
            responses.GET,
            re.compile(r"https://acme\.zendesk\.com/.*"),
            status=401,
            json={"error": "Couldn't authenticate you"},
        )
        result = CliRunner().invoke(
            sync,
            ["pull", "--tenant", "acme-zd", "--mappings", str(directory), "--yes"],
            env=env,
        )
        calls = len(rsps.calls)
    assert result.exit_code == 1
    assert "TIERDESK_TENANT_ACME_ZD_EMAIL" in result.stderr
    assert calls == 0


# -- worker ------------------------------------------------------------------------------


def test_worker_refuses_zero_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never touch pytest's own signal handlers, whatever the command does.
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    result = run(["worker", "--threads", "0", "--sweep-every", "0"])
    assert result.exit_code == 2, result.output
    assert "--threads" in result.output


# -- the TOML file -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('databse = "/var/lib/tierdesk/prod.sqlite3"\n', "databse"),
        (
            '[tenants.acme-zd]\nvendor = "zendesk"\nbase_ulr = "https://acme.zendesk.com"\n',
            "base_ulr",
        ),
    ],
)
def test_a_misspelt_configuration_key_is_refused(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "tierdesk.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=key):
        settings_from_env({"TIERDESK_CONFIG": str(path)})


def test_sync_pull_says_the_credentials_were_refused_on_a_401(tmp_path: Path) -> None:
    directory = tmp_path / "mappings"
    shutil.copytree(BUNDLED, directory)
    env = {
        "TIERDESK_TENANTS": "acme-zd=zendesk",
        "TIERDESK_TENANT_ACME_ZD_BASE_URL": "https://acme.zendesk.com",
        "TIERDESK_TENANT_ACME_ZD_API_TOKEN": "zd-api-token",
        "TIERDESK_TENANT_ACME_ZD_EMAIL": "admin@acme.example",
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(
            responses.GET,
            re.compile(r"https://acme\.zendesk\.com/.*"),
            status=401,
            json={"error": "Couldn't authenticate you"},
        )
        result = CliRunner().invoke(
            sync,
            ["pull", "--tenant", "acme-zd", "--mappings", str(directory), "--yes"],
            env=env,
        )
    assert result.exit_code == 1
    assert "run the same command" not in result.stderr  # it would fail the same way
    assert "TIERDESK_TENANT_ACME_ZD_API_TOKEN" in result.stderr
    assert "zd-api-token" not in result.output
