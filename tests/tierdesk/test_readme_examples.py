"""Every example in README.md runs as written, against the bundled mappings and the
recorded vendor payloads (../shared/vendor).

The examples are read out of README.md itself, so an edit that breaks one fails here:

- the ``explain`` example is run through a shell, as a reader pastes it (with this
  interpreter standing in for ``.venv/bin/tierdesk``), and prints the explanation the
  README shows under it, line for line;
- the TOML blocks, together, are a configuration file that loads (tenants, field ids,
  value tables, groups), and with it the JSM ``explain`` example decides the recorded
  Jira payload as the README says;
- the JSON blocks: the trigger body is `webhooks.zendesk.TRIGGER_BODY`, and the
  accounts.json and calendars.json examples pass ``tierdesk mappings validate`` with
  the bundled mappings;
- every other ``tierdesk …`` command line of a ``sh`` block parses: the command, its
  options and their values exist (``[optional]`` parts included, ``a | b`` alternatives
  each on their own, ``<placeholders>`` filled in).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from mappings import BUNDLED, check_mappings
from tests.shared import VENDOR
from tierdesk.cli import main
from tierdesk.config import settings_from_env
from webhooks.zendesk import TRIGGER_BODY

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
JIRA_PAYLOAD = VENDOR / "jsm" / "payloads" / "jira-issue_created_with_custom_fields.json"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(language: str | None = None) -> list[str]:
    """The README's fenced blocks, in order (only those of ``language`` if given)."""
    return [m.group(2) for m in BLOCK.finditer(README) if language in (None, m.group(1))]


def block_after(text: str) -> str:
    """The fenced block that follows the one holding ``text``."""
    every = blocks()
    index = next(i for i, b in enumerate(every) if text in b)
    return every[index + 1]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERDESK_", "DATABASE_URL"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


def shell(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash as written, this interpreter in place of the venv's
    ``tierdesk`` script (the README's ``.venv/bin/tierdesk`` or ``tierdesk`` on PATH)."""
    tierdesk = f"{shlex.quote(sys.executable)} -m tierdesk"
    script = re.sub(r"(^|\s)(\.venv/bin/)?tierdesk\s", rf"\1{tierdesk} ", script)
    return subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def config_file(tmp_path: Path) -> Path:
    """The README's TOML blocks, one after another: the configuration they describe."""
    path = tmp_path / "tierdesk.toml"
    path.write_text("\n".join(blocks("toml")), encoding="utf-8")
    return path


# -- explain ---------------------------------------------------------------------------------


def test_the_explain_example_prints_the_documented_explanation(tmp_path: Path) -> None:
    (script,) = [b for b in blocks("sh") if "explain --now" in b]
    documented = block_after("explain --now").strip().splitlines()

    done = shell(script, tmp_path, clean_env())

    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.strip().splitlines()  # one ticket in, one decision out
    decision = json.loads(line)
    assert decision["explanation"] == documented
    # The fields the README lists are the ones printed.
    listed = re.findall(r"`(\w+)`", README[README.index("prints one JSON decision") :][:600])
    assert set(listed) - {"explanation"} <= set(decision)


# -- the configuration ---------------------------------------------------------------------


def test_the_toml_examples_make_one_configuration_that_loads(tmp_path: Path) -> None:
    env = {"TIERDESK_CONFIG": str(config_file(tmp_path)), "TIERDESK_STATE_DIR": str(tmp_path)}
    settings = settings_from_env(env)

    assert set(settings.tenants) == {"acme-zd", "acme-jsm"}
    zendesk, jsm = settings.tenants["acme-zd"], settings.tenants["acme-jsm"]
    assert (zendesk.vendor, zendesk.fields.tier, zendesk.fields.time_spent) == (
        "zendesk",
        "360000001",
        "360000011",
    )
    assert zendesk.fields.groups["premier"] == "20001"
    assert (jsm.fields.severity, jsm.fields.organizations) == (
        "customfield_10071",
        "customfield_10002",
    )
    assert jsm.fields.values["severity"]["Medium"] == "3"


def test_the_jsm_example_decides_the_recorded_jira_payload(tmp_path: Path) -> None:
    (script,) = [b for b in blocks("sh") if "explain --vendor jsm --tenant acme-jsm --now" in b]
    config_file(tmp_path)
    shutil.copy(JIRA_PAYLOAD, tmp_path / JIRA_PAYLOAD.name)

    done = shell(script, tmp_path, clean_env())

    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    # The recorded issue's Severity select says Medium: level 3 through the table.
    assert (decision["ticket"], decision["severity"], decision["tier"]) == ("KAN-3", 3, "select")
    assert decision["reasons"] == ["unknown_account"]
    text = README[README.index(script) :][:400]
    assert "severity 3" in text and "Select tier" in text


def test_without_the_severity_table_the_recorded_payload_is_refused(tmp_path: Path) -> None:
    # Why the README shows the table: the issue as first reported.
    toml = "\n".join(blocks("toml"))
    table = toml[toml.index("[tenants.acme-jsm.fields.values.severity]") :]
    table = table[: table.index("[tenants.acme-jsm.fields.values.product]")]
    (tmp_path / "tierdesk.toml").write_text(toml.replace(table, ""), encoding="utf-8")
    shutil.copy(JIRA_PAYLOAD, tmp_path / JIRA_PAYLOAD.name)
    (script,) = [b for b in blocks("sh") if "explain --vendor jsm --tenant acme-jsm --now" in b]

    done = shell(script, tmp_path, clean_env())

    assert done.returncode == 2
    assert "'Medium' is not a severity level" in done.stderr


# -- JSON ------------------------------------------------------------------------------------


def test_the_trigger_body_shown_is_the_one_installed() -> None:
    (body,) = [b for b in blocks("json") if "tierdesk.zendesk.trigger/1" in b]
    assert json.loads(body) == TRIGGER_BODY


def test_the_accounts_and_calendars_examples_validate(tmp_path: Path) -> None:
    directory = tmp_path / "mappings"
    shutil.copytree(BUNDLED, directory)
    (accounts,) = [b for b in blocks("json") if '"accounts"' in b]
    (directory / "accounts.json").write_text(
        json.dumps({"schema_version": 1, **json.loads(accounts)}), encoding="utf-8"
    )
    (fragment,) = [b for b in blocks("json") if '"24x5-global"' in b]
    calendars: dict[str, Any] = json.loads((directory / "calendars.json").read_text())
    calendars["calendars"].update(
        json.loads("{" + fragment + "}")
    )  # two entries of the calendars table
    (directory / "calendars.json").write_text(json.dumps(calendars), encoding="utf-8")

    assert check_mappings(directory) == []


# -- every command line -----------------------------------------------------------------------


def command_lines() -> list[str]:
    """Each ``tierdesk`` command the sh blocks show, one per alternative."""
    lines = []
    for block in blocks("sh"):
        for raw in block.splitlines():
            if "<<" in raw or not re.search(r"(^|\s)(\.venv/bin/)?tierdesk\s", raw):
                continue  # the explain heredoc runs above
            line = re.sub(r"\[([^\]]*)\]", r"\1", raw)  # optional parts: given
            line = re.sub(r"(\S+)\|\S+", r"\1", line.replace("csv|json|html", "csv"))
            line = re.sub(r"<[^>]+>", "x1", line)
            words = shlex.split(line, comments=True)
            words = words[next(i for i, w in enumerate(words) if w.endswith("tierdesk")) :]
            command = shlex.join(words)
            head, *alternatives = command.split(" '|' ")
            lines.append(head)
            stem = " ".join(head.split()[:2])
            lines += [f"{stem} {alternative}" for alternative in alternatives]
    return lines


def parse(argv: list[str]) -> click.Context:
    """What the command line means to click, down to the leaf command, without running
    it: an unknown command or option, or a bad value, raises."""
    command: click.Command = main
    ctx = command.make_context("tierdesk", argv)
    while isinstance(command, click.Group):
        name, sub, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert sub is not None and name is not None
        command = sub
        ctx = sub.make_context(name, rest, parent=ctx)
    return ctx


def test_there_are_command_lines_to_check() -> None:
    commands = {" ".join(line.split()[:3]) for line in command_lines()}
    assert {"tierdesk setup zendesk", "tierdesk sync pull", "tierdesk replay --dead"} <= commands


@pytest.mark.parametrize("line", command_lines())
def test_every_command_line_parses(
    line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("TIERDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    mappings = tmp_path / "mappings"
    shutil.copytree(BUNDLED, mappings)
    for name in ("payload.json", JIRA_PAYLOAD.name):
        shutil.copy(JIRA_PAYLOAD, tmp_path / name)
    # Paths of the reader's machine, in this one.
    places = {"/etc/tierdesk/mappings": str(mappings), "DIR": str(mappings), "FILE": "out.html"}
    argv = [places.get(word, word) for word in shlex.split(line)[1:]]
    argv = [w for w in argv if not re.match(r"^[A-Z_]+=", w)]  # environment assignments

    ctx = parse(argv)

    ctx.close()
