"""Webhook intake speed: signed POSTs against `tierdesk serve`, next to a bare Flask app
that answers 204 under the same server (tierdesk's waitress front, the same 2 HTTP
processes x 4 threads sharing one socket under the same supervisor), all on 127.0.0.1.

    .venv/bin/python bench/ingest.py [--seconds 5] [--rate 200] [--quick] [--database URL]

Each tierdesk phase gets a fresh SQLite file, or with ``--database`` that database
(a PostgreSQL URL, say; it is not emptied between phases).

Three servers are measured in one run: the bare app, tierdesk's intake alone
(``--worker-processes 0``) and the whole ``tierdesk serve`` (intake + inbox worker,
which decides every event on the same two cores). Prints (these machines are noisy,
so the verdicts are ratios):

1. throughput: requests/s with 16 keep-alive connections for a few seconds, as a share
   of the bare app's. Goals (issue 12): the intake alone >= 60 %, the whole serve >= 40 %.
2. acknowledgement latency at a fixed 200 requests/s (open loop: requests leave on
   schedule whether or not earlier ones are answered): p50 and p99. Goal: p99 < 50 ms.

Every tierdesk request is a distinct signed Zendesk event, so every one is a durable
insert (SQLite, synchronous=FULL) before its 202. The load comes from 4 client
processes on the same 2 cores as the servers; the bare app pays for that too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webhooks.signatures import sign_zendesk
from webhooks.zendesk import TRIGGER_SCHEMA

SECRET = "bench-secret"
CLIENT_PROCESSES = 4
CONNECTIONS_PER_PROCESS = 4
SERVER = ["--workers", "2", "--threads", "4"]
TICKETS = 500  # events spread over this many tickets, as a helpdesk's traffic is


def body(n: int, unique: str = "") -> bytes:
    """Event ``n``; ``unique`` makes the body one of its own (the inbox dedupes on the
    hash of the signed body, as a helpdesk's repeated delivery would be)."""
    return json.dumps(
        {
            "schema": TRIGGER_SCHEMA,
            "event": "ticket.updated",
            "ticket": {
                "id": str(4000 + n % TICKETS),
                "created_at": "2026-03-06T16:30:00Z",
                "updated_at": "2026-03-06T16:31:00Z",
                "requester": "alice@acme.example",
                "organization_id": "360001",
                "priority": "urgent",
            },
            "updated_by": f"agent-{unique or n}@vendor.example",
        }
    ).encode()


BARE_APP = """
import socket
import sys

from flask import Flask

from tierdesk.front import FrontSettings, listen, serve_forever
from tierdesk.serve import Supervisor

app = Flask("bare")


@app.post("/webhooks/zendesk/<tenant>")
def hook(tenant):
    return "", 204


@app.get("/healthz")
def healthz():
    return "ok"


if sys.argv[1] == "serve":  # what `tierdesk serve --workers 2 --worker-processes 0` does
    listener = listen(sys.argv[2])
    http = [sys.executable, __file__, "http", str(listener.fileno())]
    sys.exit(Supervisor(listener, http, 2, [], 0, drain_s=5).run())
serve_forever(app, socket.socket(fileno=int(sys.argv[2])), FrontSettings(threads=4))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(port: int, path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


def headers(invocation: str, payload: bytes) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": sign_zendesk(SECRET, stamp, payload),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Invocation-Id": invocation,
    }


def _sender(
    port: int, ticks: list[float] | None, stop_at: float, prefix: str, out: list[float]
) -> None:
    """One keep-alive connection. With ``ticks``, send at those instants (open loop);
    without, as fast as answers come (closed loop). Appends latencies to ``out``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sent = 0
    while True:
        if ticks is not None:
            if sent >= len(ticks):
                break
            delay = ticks[sent] - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elif time.monotonic() >= stop_at:
            break
        started = time.monotonic()
        payload = body(sent, f"{prefix}-{sent}")
        connection.request(
            "POST", "/webhooks/zendesk/bench", payload, headers(f"{prefix}-{sent}", payload)
        )
        response = connection.getresponse()
        response.read()
        if response.status >= 300:
            raise SystemExit(f"HTTP {response.status}")
        out.append(time.monotonic() - started)
        sent += 1
    connection.close()


def _client(
    port: int,
    rate: float,
    seconds: float,
    start_at: float,
    index: int,
    queue: multiprocessing.Queue[list[float]],
) -> None:
    while time.time() < start_at:
        time.sleep(0.001)
    latencies: list[float] = []
    threads = []
    begin = time.monotonic()
    for c in range(CONNECTIONS_PER_PROCESS):
        ticks = None
        if rate:
            # This connection's share of the schedule, interleaved with the others'.
            slot = index * CONNECTIONS_PER_PROCESS + c
            step = (CLIENT_PROCESSES * CONNECTIONS_PER_PROCESS) / rate
            ticks = [
                begin + slot / rate + k * step
                for k in range(int(seconds * rate / (CLIENT_PROCESSES * CONNECTIONS_PER_PROCESS)))
            ]
        thread = threading.Thread(
            target=_sender,
            args=(port, ticks, begin + seconds, f"{os.getpid()}-{c}-{rate}", latencies),
        )
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(latencies)


def load(port: int, *, seconds: float, rate: float = 0.0) -> tuple[float, list[float]]:
    """(requests/s, latencies) from CLIENT_PROCESSES processes."""
    queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    start_at = time.time() + 0.5
    clients = [
        multiprocessing.Process(target=_client, args=(port, rate, seconds, start_at, i, queue))
        for i in range(CLIENT_PROCESSES)
    ]
    for client in clients:
        client.start()
    latencies = [x for _ in clients for x in queue.get()]
    for client in clients:
        client.join()
    return len(latencies) / seconds, latencies


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=1000)[int(p * 10) - 1] if len(values) > 1 else values[0]


def start(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="webhook intake benchmark")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s of the latency phase")
    parser.add_argument("--quick", action="store_true", help="1-second phases (a smoke run)")
    parser.add_argument("--database", help="a database URL for tierdesk (default: SQLite files)")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "tierdesk.toml").write_text('[tenants.bench]\nvendor = "zendesk"\n')
        (work / "bare_app.py").write_text(BARE_APP)
        env = {
            **os.environ,
            "TIERDESK_CONFIG": str(work / "tierdesk.toml"),
            "TIERDESK_TENANT_BENCH_WEBHOOK_SECRET": SECRET,
            "PYTHONPATH": os.pathsep.join([str(work), str(ROOT)]),
        }
        results = {}
        stored = 0
        for name in ("bare", "intake", "tierdesk"):
            database = args.database or str(work / f"{name}.sqlite3")  # a fresh file each
            env["TIERDESK_DATABASE"] = database
            port = free_port()
            serve = [sys.executable, "-m", "tierdesk", "serve", "--bind", f"127.0.0.1:{port}"]
            command = {
                "bare": [sys.executable, str(work / "bare_app.py"), "serve", f"127.0.0.1:{port}"],
                # The intake alone: acknowledgements with no inbox worker beside them.
                "intake": [*serve, *SERVER, "--worker-processes", "0"],
                "tierdesk": [*serve, *SERVER],
            }[name]
            server = start(command, env, work)
            try:
                wait_ready(port, "/healthz")
                load(port, seconds=min(seconds, 1.0))  # warm up
                throughput, _ = load(port, seconds=seconds)
                _, latencies = load(port, seconds=seconds, rate=args.rate)
            finally:
                stop(server)
            results[name] = (
                throughput,
                percentile(latencies, 50),
                percentile(latencies, 99),
                len(latencies),
            )
            if name == "tierdesk" and not args.database:
                (stored,) = (
                    sqlite3.connect(database).execute("SELECT count(*) FROM inbox").fetchone()
                )
    print("webhook intake on 127.0.0.1")
    print("  (waitress front, 2 HTTP processes x 4 threads; 16 client connections)")
    print(
        f"  {'server':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  (p50/p99 at {args.rate:.0f}/s)"
    )
    for name, (throughput, p50, p99, _) in results.items():
        print(f"  {name:<9} {throughput:8.0f} {p50 * 1000:8.2f} {p99 * 1000:8.2f}")
    share = results["tierdesk"][0] / results["bare"][0]
    intake_share = results["intake"][0] / results["bare"][0]
    p99 = results["tierdesk"][2] * 1000
    share_verdict = "met" if share >= 0.4 else "MISSED"
    p99_verdict = "met" if p99 < 50 else "MISSED"
    print(f"  tierdesk throughput is {share:.0%} of the bare app (goal >= 40%): {share_verdict}")
    intake_verdict = "met" if intake_share >= 0.6 else "MISSED"
    print(
        f"  the intake alone (no inbox worker on these 2 cores) is {intake_share:.0%}"
        f" of the bare app (goal >= 60%): {intake_verdict}"
    )
    print(
        f"  tierdesk p99 ack at {args.rate:.0f} req/s is {p99:.1f} ms (goal < 50 ms): {p99_verdict}"
    )
    if stored:
        print(f"  {stored} distinct events durably stored by tierdesk's last phase")


if __name__ == "__main__":
    main()
