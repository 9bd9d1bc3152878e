"""The `tierdesk` command line: `explain` and `mappings validate`.

Most tests go through click's CliRunner on `tierdesk.cli.main`; a few run the installed
console script in a subprocess, to prove the entry point works as users call it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from mappings import BUNDLED
from tierdesk.cli import main

NOW = "2026-03-06T16:31:00Z"
TIERDESK = Path(sys.executable).parent / "tierdesk"  # the console script of this venv

# The acme example of README.md: a Premier named contact reports an outage.
ACME: dict[str, Any] = {
    "id": "123",
    "created_at": "2026-03-06T16:30:00Z",
    "requester": "alice@acme.example",
    "organization": {"vendor": "zendesk", "id": 360001},
    "severity": 1,
    "product": "jira-software",
    "environment": "production",
}
# The explanation README.md prints for it, word for word.
ACME_EXPLANATION = [
    "severity L1 from the ticket's severity 1",
    "account acme (Acme Corp) matched by organization zendesk:360001",
    "tier Premier: subscription accounts.json#/accounts/0/subscriptions/0 entitles the "
    "ticket; alice@acme.example is a named contact",
    "calendar 24x7: the tier's default (tiers.json#/tiers/premier); always covered (24x7)",
    "target L1 = 30 min on 24x7 from 2026-03-06T16:30:00Z: first response due "
    "2026-03-06T17:00:00Z (Fri 2026-03-06 17:00 Europe/London)",
    "team premier: the Premier team",
]
# A second ticket, from an address no account knows: the default tier decides it.
STRANGER: dict[str, Any] = {
    "id": "456",
    "created_at": "2026-03-06T16:30:00Z",
    "requester": "someone@nowhere.example",
}


def ticket(**changes: Any) -> dict[str, Any]:
    return {**ACME, **changes}


def run(args: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    # TIERDESK_MAPPINGS from the developer's shell must not leak into the tests.
    environment: dict[str, str | None] = {"TIERDESK_MAPPINGS": None, **(env or {})}
    return CliRunner().invoke(main, args, input=stdin, env=environment)


def run_script(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "TIERDESK_MAPPINGS"}
    return subprocess.run(
        [str(TIERDESK), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def decisions(stdout: str) -> list[dict[str, Any]]:
    """One JSON object per line, and nothing else on stdout."""
    parsed = [json.loads(line) for line in stdout.splitlines()]
    assert all(isinstance(d, dict) for d in parsed)
    return parsed


def assert_acme_decision(decision: dict[str, Any]) -> None:
    assert decision["ticket"] == "123"
    assert decision["account"] == "acme"
    assert decision["account_tier"] == "premier"
    assert decision["tier"] == "premier"
    assert decision["covered"] is True
    assert decision["reasons"] == []
    assert decision["named_contact"] == {"status": "valid", "reason": None}
    assert decision["severity"] == 1
    assert decision["calendar"] == "24x7"
    # 30 minutes on 24x7 from 16:30Z.
    assert decision["first_response_due"] == "2026-03-06T17:00:00Z"
    assert decision["team"] == "premier"
    assert decision["priority"] == "urgent"
    assert decision["phone_support"] is True


def json_lines(*items: dict[str, Any] | str) -> str:
    """JSON lines; a str item is written as is (to put a broken line in)."""
    return "".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items)


@pytest.fixture
def broken_mappings(tmp_path: Path) -> Path:
    """The bundled mappings with two problems in accounts.json, one in tiers.json."""
    directory = tmp_path / "broken"
    directory.mkdir()
    for path in BUNDLED.glob("*.json"):
        shutil.copy(path, directory / path.name)
    accounts = json.loads((directory / "accounts.json").read_text(encoding="utf-8"))
    accounts["accounts"][0]["timezone"] = "Mars/Olympus_Mons"
    accounts["accounts"][0]["subscriptions"][0]["partner_contacts"] = ["john@acme.example"]
    (directory / "accounts.json").write_text(json.dumps(accounts), encoding="utf-8")
    tiers = json.loads((directory / "tiers.json").read_text(encoding="utf-8"))
    tiers["tiers"]["select"]["calendar"] = "nine-to-five"
    (directory / "tiers.json").write_text(json.dumps(tiers), encoding="utf-8")
    return directory


# What broken_mappings must report: file#pointer: [rule], and words of the message.
BROKEN_PROBLEMS = [
    ("tiers.json#/tiers/select/calendar: [unknown_calendar] ", ("nine-to-five",)),
    ("accounts.json#/accounts/0/timezone: [timezone] ", ("Mars/Olympus_Mons",)),
    (
        "accounts.json#/accounts/0/subscriptions/0/partner_contacts/0: [partner_format] ",
        ("account acme", "john@acme.example"),
    ),
]


def assert_broken_problems(lines: list[str]) -> None:
    assert len(lines) == len(BROKEN_PROBLEMS)
    for line, (prefix, words) in zip(lines, BROKEN_PROBLEMS, strict=True):
        assert line.startswith(prefix), line
        for word in words:
            assert word in line, line


# -- explain -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        pytest.param(json.dumps(ACME, indent=2), 1, id="one-object"),
        pytest.param(json.dumps([ACME, STRANGER], indent=2), 2, id="array"),
        pytest.param(json_lines(ACME, STRANGER), 2, id="json-lines"),
    ],
)
def test_explain_file(tmp_path: Path, text: str, count: int) -> None:
    source = tmp_path / "tickets.json"
    source.write_text(text, encoding="utf-8")
    result = run(["explain", "--now", NOW, str(source)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    found = decisions(result.stdout)
    assert len(found) == count
    assert_acme_decision(found[0])
    assert found[0]["explanation"] == ACME_EXPLANATION
    if count == 2:
        # Input order is output order, so a caller can pair them up.
        assert found[1]["ticket"] == "456"
        assert found[1]["account"] is None
        assert found[1]["tier"] == "select"
        assert found[1]["reasons"] == ["unknown_account"]


@pytest.mark.parametrize("args", [["-"], []], ids=["dash", "default"])
def test_explain_stdin(args: list[str]) -> None:
    result = run(["explain", "--now", NOW, *args], stdin=json.dumps(ACME))
    assert result.exit_code == 0, result.stderr
    (decision,) = decisions(result.stdout)
    assert_acme_decision(decision)


def test_explain_json_lines_with_blank_lines() -> None:
    result = run(["explain", "--now", NOW, "-"], stdin="\n" + json_lines(ACME, STRANGER) + "\n")
    assert result.exit_code == 0, result.stderr
    assert [d["ticket"] for d in decisions(result.stdout)] == ["123", "456"]


def test_explain_empty_input_decides_nothing() -> None:
    result = run(["explain", "--now", NOW, "-"], stdin="")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_explain_with_bundled_mappings_dir() -> None:
    result = run(["explain", "--mappings", str(BUNDLED), "--now", NOW, "-"], json.dumps(ACME))
    assert result.exit_code == 0, result.stderr
    assert_acme_decision(decisions(result.stdout)[0])


def test_explain_malformed_json_lines() -> None:
    stdin = json_lines(
        ACME,
        ticket(id="bad-time", created_at="yesterday"),
        ticket(id="bad-severity", severity=[1]),
        ticket(id="bad-product", product="jira"),
        '{"id": "cut", "created_at": ',
        STRANGER,
    )
    result = run(["explain", "--now", NOW, "-"], stdin=stdin)
    assert result.exit_code == 2
    # The good tickets, before and after the bad ones, are still decided.
    assert [d["ticket"] for d in decisions(result.stdout)] == ["123", "456"]
    errors = result.stderr.splitlines()
    assert len(errors) == 4, result.stderr
    expected = [
        ("line 2", "bad-time", "created_at", "yesterday"),
        ("line 3", "bad-severity", "severity", "array"),
        ("line 4", "bad-product", "product", "jira"),
        ("line 5", "", "not JSON", ""),
    ]
    for line, words in zip(errors, expected, strict=True):
        assert line.startswith("tierdesk explain: "), line
        for word in words:
            assert word in line, line


def test_explain_malformed_array_names_ticket_and_field() -> None:
    stdin = json.dumps([ticket(id="bad-time", created_at="yesterday"), ACME, 42])
    result = run(["explain", "--now", NOW, "-"], stdin=stdin)
    assert result.exit_code == 2
    (decision,) = decisions(result.stdout)
    assert_acme_decision(decision)
    first, third = result.stderr.splitlines()
    assert "ticket 1 (id bad-time)" in first
    assert "field created_at" in first
    assert "ticket 3" in third
    assert "field ticket" in third


@pytest.mark.parametrize(
    ("now", "words"),
    [
        pytest.param("2026-03-06T16:31:00", ("--now", "UTC offset"), id="no-offset"),
        pytest.param("tomorrow", ("--now", "tomorrow"), id="not-iso"),
    ],
)
def test_explain_now_must_be_an_instant(now: str, words: tuple[str, ...]) -> None:
    result = run(["explain", "--now", now, "-"], stdin=json.dumps(ACME))
    assert result.exit_code == 2  # click's usage error
    assert result.stdout == ""
    for word in words:
        assert word in result.stderr


def test_explain_now_with_other_offset() -> None:
    # Any offset is an instant; 17:31+01:00 is the same moment as NOW.
    result = run(["explain", "--now", "2026-03-06T17:31:00+01:00", "-"], json.dumps(ACME))
    assert result.exit_code == 0, result.stderr
    assert_acme_decision(decisions(result.stdout)[0])


def test_explain_refuses_broken_mappings(broken_mappings: Path) -> None:
    result = run(["explain", "--mappings", str(broken_mappings), "--now", NOW, "-"], "{}")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(line.startswith("tierdesk: mappings refused: ") for line in lines)
    assert_broken_problems([line.removeprefix("tierdesk: mappings refused: ") for line in lines])


def test_explain_reads_mappings_from_environment(broken_mappings: Path) -> None:
    result = run(
        ["explain", "--now", NOW, "-"], "{}", env={"TIERDESK_MAPPINGS": str(broken_mappings)}
    )
    assert result.exit_code == 2
    assert "mappings refused" in result.stderr


def test_explain_survives_extreme_created_at() -> None:
    stdin = json_lines(ticket(id="far", created_at="9999-12-31T23:59:00Z", severity=4), ACME)
    result = run(["explain", "--now", NOW, "-"], stdin=stdin)
    assert result.exit_code == 2
    assert "far" in result.stderr
    assert [d["ticket"] for d in decisions(result.stdout)] == ["123"]


# -- mappings validate ---------------------------------------------------------------


def test_validate_bundled() -> None:
    result = run(["mappings", "validate"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "ok" in result.stderr


def test_validate_bundled_dir() -> None:
    result = run(["mappings", "validate", str(BUNDLED)])
    assert result.exit_code == 0
    assert result.stdout == ""


def test_validate_broken_lists_every_problem(broken_mappings: Path) -> None:
    result = run(["mappings", "validate", str(broken_mappings)])
    assert result.exit_code == 1
    assert_broken_problems(result.stdout.splitlines())
    assert "3 problem(s)" in result.stderr


def test_validate_broken_as_json(broken_mappings: Path) -> None:
    result = run(["mappings", "validate", "--json", str(broken_mappings)])
    assert result.exit_code == 1
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(p) == {"file", "pointer", "rule", "message"} for p in found)
    assert [(p["file"], p["pointer"], p["rule"]) for p in found] == [
        ("tiers.json", "/tiers/select/calendar", "unknown_calendar"),
        ("accounts.json", "/accounts/0/timezone", "timezone"),
        ("accounts.json", "/accounts/0/subscriptions/0/partner_contacts/0", "partner_format"),
    ]
    assert "john@acme.example" in found[2]["message"]


def test_validate_missing_directory(tmp_path: Path) -> None:
    result = run(["mappings", "validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert [line.split(" ", 1)[0] for line in result.stdout.splitlines()] == [
        "calendars.json#:",
        "tiers.json#:",
        "accounts.json#:",
    ]
    assert all("[missing]" in line for line in result.stdout.splitlines())


# -- the installed console script ----------------------------------------------------


def test_console_script_explain() -> None:
    completed = run_script(["explain", "--now", NOW, "-"], json.dumps(ACME))
    assert completed.returncode == 0, completed.stderr
    (decision,) = decisions(completed.stdout)
    assert_acme_decision(decision)
    assert decision["explanation"] == ACME_EXPLANATION


def test_console_script_validate_broken(broken_mappings: Path) -> None:
    completed = run_script(["mappings", "validate", str(broken_mappings)])
    assert completed.returncode == 1
    assert_broken_problems(completed.stdout.splitlines())
