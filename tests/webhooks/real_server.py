"""A real `tierdesk serve` on 127.0.0.1 for tests that send raw bytes, and the means to
look at its processes (from /proc: no psutil needed)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.shared import VENDOR
from webhooks.signatures import sign_hub, sign_zendesk
from webhooks.zendesk import TRIGGER_SCHEMA

ZENDESK_SECRET = "zd-secret-for-raw-tests"
JSM_SECRET = "jsm-secret-for-raw-tests"
CONFIG = '[tenants.acme-zd]\nvendor = "zendesk"\n\n[tenants.acme-jsm]\nvendor = "jsm"\n'
ROUTES = {"zendesk": "/webhooks/zendesk/acme-zd", "jsm": "/webhooks/jsm/acme-jsm"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces; the ppid is the 2nd field after ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    database: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def serve(
    work: Path, *options: str, env: dict[str, str] | None = None, port: int | None = None
) -> Served:
    """`tierdesk serve` with the two tenants above, ready to answer."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "tierdesk.toml").write_text(CONFIG)
    database = work / "tierdesk.sqlite3"
    port = port or free_port()
    environment = {
        **os.environ,
        "TIERDESK_CONFIG": str(work / "tierdesk.toml"),
        "TIERDESK_DATABASE": str(database),
        "TIERDESK_TENANT_ACME_ZD_WEBHOOK_SECRET": ZENDESK_SECRET,
        "TIERDESK_TENANT_ACME_JSM_WEBHOOK_SECRET": JSM_SECRET,
        **(env or {}),
    }
    environment.pop("TIERDESK_MAPPINGS", None)
    return launch(work, port, options, environment, database)


def launch(
    work: Path, port: int, options: Sequence[str], env: Mapping[str, str], database: Path
) -> Served:
    """`tierdesk serve --bind 127.0.0.1:<port> <options>` in ``work`` with exactly
    ``env``, its output in ``work/serve.log``; returned once /readyz answers 200, and
    stopped again if it never does."""
    log = work / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tierdesk", "serve", "--bind", f"127.0.0.1:{port}", *options],
        env=dict(env),
        cwd=work,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # one process group: stop() ends all of it
    )
    served = Served(process, port, database, log)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        except OSError:
            return False

    try:
        wait_for(ready, 60, "tierdesk serve to be ready")
    except BaseException:
        served.stop()
        raise
    return served


def zendesk_body(n: int) -> bytes:
    return json.dumps(
        {
            "schema": TRIGGER_SCHEMA,
            "event": "ticket.updated",
            "ticket": {
                "id": str(5000 + n),
                "created_at": "2026-03-06T16:30:00Z",
                "updated_at": "2026-03-06T16:31:00Z",
                "requester": "alice@acme.example",
                "organization_id": "360001",
                "priority": "urgent",
            },
            "updated_by": f"agent-{n}@vendor.example",
        }
    ).encode()


def jsm_body(n: int) -> bytes:
    """A recorded Jira webhook, made distinct by its timestamp."""
    document = json.loads((VENDOR / "jsm" / "payloads" / "jira-issue_created.json").read_bytes())
    document["timestamp"] = int(document.get("timestamp", 1772814660000)) + n
    return json.dumps(document).encode()


def signed(vendor: str, body: bytes) -> dict[str, str]:
    """The signature headers of ``vendor`` for ``body``."""
    if vendor == "zendesk":
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "X-Zendesk-Webhook-Signature": sign_zendesk(ZENDESK_SECRET, stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        }
    return {"X-Hub-Signature": sign_hub(JSM_SECRET, body)}


def head(vendor: str, fields: dict[str, str]) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return (
        f"POST {ROUTES[vendor]} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\n{lines}\r\n"
    ).encode()


def exchange(port: int, raw: bytes, *, half_close: bool = True, timeout: float = 20) -> bytes:
    """Send ``raw``, optionally close our sending side, and read until the server closes
    (or ``timeout``: then AssertionError, the server held the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before reading it all: read its answer
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            raise AssertionError(f"no end of answer within {timeout} s: {answer[:200]!r}") from None
        except ConnectionResetError:
            pass  # the server closed with our unread bytes in its buffer: what it sent stays
        return answer


def statuses(answer: bytes) -> list[int]:
    """The status codes of the responses in ``answer`` (bodies are JSON, never 'HTTP/')."""
    found = []
    for part in answer.split(b"HTTP/1.")[1:]:
        line = part.split(b"\r\n", 1)[0]
        found.append(int(line.split(b" ")[1]))
    return found


def json_body(answer: bytes) -> dict[str, object]:
    document: dict[str, object] = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    return document
