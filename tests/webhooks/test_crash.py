"""A killed worker loses nothing and decides nothing twice.

A real `tierdesk serve` on 127.0.0.1 (HTTP processes + one supervised worker process)
receives signed webhooks. Partway through, its worker process is killed with SIGKILL,
twice. The supervisor restarts it, and leases of events it held run out (2 s here) and
are claimed again. Afterwards every acknowledged event has exactly one audit row of a
completed decision: none lost, none decided twice.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.webhooks.real_server import descendants, free_port, launch, wait_for
from webhooks.signatures import sign_zendesk
from webhooks.zendesk import TRIGGER_SCHEMA

SECRET = "crash-test-secret"
EVENTS = 240
TICKETS = 24
KILL_AFTER = (60, 150)  # acknowledged events after which the worker is killed


def worker_pids(serve_pid: int) -> list[int]:
    pids = []
    for pid in descendants(serve_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in command and b"tierdesk" in command:
            pids.append(pid)
    return pids


def body(i: int) -> bytes:
    return json.dumps(
        {
            "schema": TRIGGER_SCHEMA,
            "event": "ticket.updated",
            "ticket": {
                "id": str(1000 + i % TICKETS),
                "created_at": "2026-03-06T16:30:00Z",
                "updated_at": f"2026-03-06T16:{30 + i // 60:02d}:{i % 60:02d}Z",
                "requester": "alice@acme.example",
                "organization_id": "360001",
                "priority": ["urgent", "high", "normal", "low"][i % 4],
            },
            "updated_by": "agent@vendor.example",
        }
    ).encode()


def post(port: int, payload: bytes, invocation: str) -> tuple[int, str]:
    """(HTTP status, the event id the inbox keyed it by)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            "/webhooks/zendesk/acme-zd",
            payload,
            {
                "Content-Type": "application/json",
                "X-Zendesk-Webhook-Signature": sign_zendesk(SECRET, stamp, payload),
                "X-Zendesk-Webhook-Signature-Timestamp": stamp,
                "X-Zendesk-Webhook-Invocation-Id": invocation,
            },
        )
        response = connection.getresponse()
        answer = json.loads(response.read() or b"{}")
        return response.status, str(answer.get("event_id", ""))
    finally:
        connection.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    config = tmp_path / "tierdesk.toml"
    config.write_text('[tenants.acme-zd]\nvendor = "zendesk"\n')
    database = tmp_path / "tierdesk.sqlite3"
    port = free_port()
    env = {
        **os.environ,
        "TIERDESK_CONFIG": str(config),
        "TIERDESK_DATABASE": str(database),
        "TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET": SECRET,
        "TIERDESK_LEASE_SECONDS": "2",
    }
    env.pop("TIERDESK_MAPPINGS", None)
    server = launch(tmp_path, port, ["--workers", "2"], env, database)
    try:
        wait_for(lambda: worker_pids(server.process.pid), 30, "the worker process")
        yield port, server.process.pid, database
    finally:
        server.stop()


def test_sigkilled_worker_loses_nothing_and_decides_nothing_twice(
    served: tuple[int, int, Path],
) -> None:
    port, serve_pid, database = served
    acknowledged: list[str] = []
    killed: list[int] = []
    for i in range(EVENTS):
        status, event_id = post(port, body(i), f"crash-{i}")
        assert status == 202, f"event {i}: HTTP {status}"
        acknowledged.append(event_id)
        if len(acknowledged) in KILL_AFTER:
            # After the first kill, the supervisor needs a moment to start a new one.
            wait_for(lambda: set(worker_pids(serve_pid)) - set(killed), 30, "a worker to kill")
            pids = worker_pids(serve_pid)
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.extend(pids)
    # Duplicates of acknowledged events change nothing.
    assert post(port, body(0), "crash-0-again") == (200, acknowledged[0])

    db = sqlite3.connect(database)

    def all_done() -> bool:
        (open_events,) = db.execute("SELECT count(*) FROM inbox WHERE state <> 'done'").fetchone()
        return bool(open_events == 0)

    wait_for(all_done, 90, "every acknowledged event to be processed")
    # The supervisor restarted the worker each time.
    restarted = worker_pids(serve_pid)
    assert restarted and not set(restarted) & set(killed)

    rows = db.execute(
        "SELECT i.event_id, count(a.id), sum(a.outcome = 'decided')"
        " FROM inbox AS i LEFT JOIN audit AS a ON a.event = i.id GROUP BY i.id"
    ).fetchall()
    audited = {event_id: (total, decided) for event_id, total, decided in rows}
    assert set(audited) == set(acknowledged), "an acknowledged event is missing from the inbox"
    twice = {e: n for e, n in audited.items() if n != (1, 1)}
    assert not twice, f"events without exactly one decided audit row: {twice}"
    # Per ticket, decisions were recorded in arrival order.
    order = db.execute(
        "SELECT i.ticket, i.id FROM audit AS a JOIN inbox AS i ON i.id = a.event ORDER BY a.id"
    ).fetchall()
    last: dict[str, int] = {}
    for ticket, inbox_id in order:
        assert inbox_id > last.get(ticket, 0), f"ticket {ticket} decided out of order"
        last[ticket] = inbox_id


def test_sigterm_to_serve_alone_stops_every_process_it_started(tmp_path: Path) -> None:
    # `tierdesk serve` is the parent of the HTTP processes and the workers: stopping it (not its
    # process group, as a service manager might) must leave nothing running.
    env = {
        **os.environ,
        "TIERDESK_DATABASE": str(tmp_path / "tierdesk.sqlite3"),
        "TIERDESK_TENANTS": "acme-zd=zendesk",
    }
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tierdesk", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: len(descendants(process.pid)) >= 3, 30, "2 HTTP processes and a worker")
        started = descendants(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        wait_for(
            lambda: not [p for p in started if Path(f"/proc/{p}").exists()],
            30,
            "every child to exit",
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
