"""Logs as operators read them: a real ``tierdesk serve`` on 127.0.0.1 (its HTTP
process behind the waitress front and an inbox worker process) receives signed
webhooks, one of them with a forged log line in its ``webhookEvent``; its whole output
(stdout and stderr) is read afterwards.

- Text (the default): each record is one line; the forged ``\\n`` makes no line of
  its own.
- ``TIERDESK_LOG_FORMAT=json``: every line parses as one JSON object with timestamp,
  level, logger and message; the lines about an event carry tenant, vendor, ticket,
  event, outcome as fields, from the intake and from the worker process.
- Neither shows a secret. Unit cases pin `loggable` and the formatters.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.shared import VENDOR
from tests.webhooks.real_server import free_port, launch, wait_for
from tierdesk.config import ConfigError
from tierdesk.logs import JsonFormatter, TextFormatter, configure, log_format
from webhooks.events import log_event, loggable
from webhooks.signatures import sign_hub

SECRET = "hub-secret-never-logged"
API_TOKEN = "api-token-never-logged"
JIRA_CREATED = json.loads((VENDOR / "jsm" / "payloads" / "jira-issue_created.json").read_bytes())
FORGED = "jira:nothing\nFORGED tierdesk.intake tenant=evil outcome=queued\x00\x1b[2J"


@dataclass
class Served:
    port: int
    output: Path

    def post(self, body: bytes) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(
                "POST",
                "/webhooks/jsm/acme-jsm",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature": sign_hub(SECRET, body),
                },
            )
            return connection.getresponse().status
        finally:
            connection.close()

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8")


def serve(tmp_path: Path, log_format: str | None) -> Iterator[Served]:
    port = free_port()
    output = tmp_path / "serve.log"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("TIERDESK_") and name != "DATABASE_URL"
    }
    env |= {
        "TIERDESK_DATABASE": str(tmp_path / "tierdesk.sqlite3"),
        "TIERDESK_TENANTS": "acme-jsm=jsm",
        "TIERDESK_TENANT_ACME_JSM_WEBHOOK_SECRET": SECRET,
        "TIERDESK_API_TOKEN": API_TOKEN,
        "TIERDESK_COALESCE_SECONDS": "0",
    }
    if log_format is not None:
        env["TIERDESK_LOG_FORMAT"] = log_format
    options = ["--workers", "1", "--threads", "2", "--access-log"]
    server = launch(tmp_path, port, options, env, tmp_path / "tierdesk.sqlite3")
    try:
        yield Served(port, output)
    finally:
        server.stop()


def traffic(served: Served) -> None:
    """A forged event name (ignored), then a real issue_created the worker decides."""
    forged = json.dumps({**JIRA_CREATED, "webhookEvent": FORGED}).encode()
    assert served.post(forged) == 202
    assert served.post(json.dumps(JIRA_CREATED).encode()) == 202
    # The worker's line about the event: it runs in another process.
    wait_for(lambda: "decided" in served.text() or "error" in served.text(), 60, "the worker")


@pytest.fixture
def text_served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path, None)


@pytest.fixture
def json_served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path, "json")


def test_text_format_a_forged_newline_makes_no_line(text_served: Served) -> None:
    traffic(text_served)
    lines = text_served.text().splitlines()
    assert not any(line.startswith("FORGED") for line in lines), lines
    ignored = [line for line in lines if "outcome=ignored" in line]
    assert len(ignored) == 1, lines
    assert "jira:nothing\\x0aFORGED" in ignored[0] and "\\x00\\x1b[2J" in ignored[0]
    assert "\x00" not in text_served.text() and "\x1b" not in text_served.text()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z tierdesk\.intake ", ignored[0])
    text = text_served.text()
    assert SECRET not in text and API_TOKEN not in text


def test_json_format_every_line_is_an_object_with_the_event_fields(json_served: Served) -> None:
    traffic(json_served)

    # The access line of the last request may come after the worker's line.
    def posts_logged() -> bool:
        lines = json_served.text().splitlines()
        return sum('"tierdesk.access"' in line and "POST" in line for line in lines) >= 2

    wait_for(posts_logged, 30, "the access lines of both posts")
    text = json_served.text()
    text = text[: text.rfind("\n") + 1]  # a process may be writing a line right now
    assert SECRET not in text and API_TOKEN not in text
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # every line, the front's and the start-up line included
        assert isinstance(record, dict), line
        assert {"timestamp", "level", "logger", "message"} <= record.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
        records.append(record)
    loggers = {record["logger"] for record in records}
    assert {"tierdesk.serve", "tierdesk.intake", "tierdesk.worker", "tierdesk.front"} <= loggers
    assert "tierdesk.access" in loggers

    ignored = [r for r in records if r.get("outcome") == "ignored"]
    assert len(ignored) == 1
    assert ignored[0]["tenant"] == "acme-jsm" and ignored[0]["vendor"] == "jsm"
    assert ignored[0]["reason"].startswith("jira:nothing\\x0aFORGED")
    assert not any(r["message"].startswith("FORGED") for r in records)

    queued = [r for r in records if r.get("outcome") == "queued"]
    assert len(queued) == 1
    assert queued[0]["ticket"] == JIRA_CREATED["issue"]["key"]
    assert queued[0]["event"].startswith("sha256:")
    assert queued[0]["kind"] == "ticket.created" and queued[0]["level"] == "info"

    worked = [r for r in records if r["logger"] == "tierdesk.worker" and "outcome" in r]
    assert worked, records
    assert worked[0]["tenant"] == "acme-jsm" and worked[0]["event"] == queued[0]["event"]
    assert worked[0]["pid"] != queued[0]["pid"]  # another process, the same format


# -- units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "logged"),
    [
        ("plain", "plain"),
        ("a\nb\rc", "a\\x0ab\\x0dc"),
        ("nul\x00esc\x1b[31m", "nul\\x00esc\\x1b[31m"),
        ("del\x7fnel\x85", "del\\x7fnel\\x85"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("lone\ud800", "lone\\ud800"),
        ("日本語", "日本語"),
        (12, "12"),
    ],
)
def test_loggable(value: object, logged: str) -> None:
    assert loggable(value) == logged
    assert loggable(logged) == logged  # applying it again changes nothing


def test_loggable_is_bounded() -> None:
    assert loggable("x" * 10_000) == "x" * 200 + "…"
    assert len(loggable("\n" * 10_000)) == 201


def record_of(level: int, **fields: object) -> logging.LogRecord:
    caught: list[logging.LogRecord] = []
    logger = logging.getLogger("tierdesk.test-logs")
    handler = logging.Handler()
    handler.emit = caught.append  # type: ignore[method-assign,assignment]
    logger.addHandler(handler)
    logger.propagate = False
    try:
        log_event(logger, level, **fields)
    finally:
        logger.removeHandler(handler)
    return caught[0]


def test_formatters_make_one_line_of_any_field() -> None:
    record = record_of(logging.WARNING, tenant="t", ticket="1\n2", attempts=3, skipped=None)
    assert (
        TextFormatter()
        .format(record)
        .endswith("tierdesk.test-logs tenant=t ticket=1\\x0a2 attempts=3")
    )
    doc = json.loads(JsonFormatter().format(record))
    assert doc["level"] == "warning" and doc["ticket"] == "1\\x0a2" and doc["attempts"] == 3
    assert "skipped" not in doc


def test_json_keeps_a_traceback_in_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: bad\nvalue" in json.loads(line)["exception"]


def test_the_format_is_chosen_once_for_the_process() -> None:
    assert log_format({}) == "text" and log_format({"TIERDESK_LOG_FORMAT": "JSON"}) == "json"
    with pytest.raises(ConfigError, match="TIERDESK_LOG_FORMAT"):
        log_format({"TIERDESK_LOG_FORMAT": "xml"})
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        configure({"TIERDESK_LOG_FORMAT": "json"}, stream)
        configure({"TIERDESK_LOG_FORMAT": "json"}, stream)  # again: still one handler
        logging.getLogger("tierdesk.x").info("hello %s", "a\nb")
    finally:
        for handler in root.handlers[:]:
            if handler not in before[0]:
                root.removeHandler(handler)
        root.setLevel(before[1])
        sys.excepthook = sys.__excepthook__
        import threading

        threading.excepthook = threading.__excepthook__
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["message"] == "hello a\\x0ab"


def test_a_percent_sign_in_a_value_stays_as_it_is() -> None:
    record = record_of(logging.WARNING, tenant="t", note="100% done %s %(x)s")
    assert TextFormatter().format(record).endswith("tenant=t note=100% done %s %(x)s")
    assert json.loads(JsonFormatter().format(record))["note"] == "100% done %s %(x)s"


@pytest.mark.parametrize("formatter", [TextFormatter, JsonFormatter])
def test_each_record_has_its_own_time_to_the_millisecond(
    formatter: type[logging.Formatter],
) -> None:
    """The seconds part is formatted once per second: records of the same second, then
    of the next, each show their own time."""
    made = formatter()
    shown = []
    for created in (1_772_000_000.25, 1_772_000_000.999, 1_772_000_001.0, 1_772_000_000.5):
        record = logging.LogRecord("x", logging.INFO, "f", 1, "m", (), None)
        record.created, record.msecs = created, (created % 1) * 1000
        line = made.format(record)
        shown.append(json.loads(line)["timestamp"] if formatter is JsonFormatter else line[:24])
    assert shown == [
        "2026-02-25T06:13:20.250Z",
        "2026-02-25T06:13:20.999Z",
        "2026-02-25T06:13:21.000Z",
        "2026-02-25T06:13:20.500Z",
    ]
