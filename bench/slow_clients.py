"""Slow clients against ordinary webhooks: does a trickling sender starve the others?

    .venv/bin/python bench/slow_clients.py [--front tierdesk|gunicorn|both] [--slow 20]

Runs a server on 127.0.0.1 and sends it ordinary signed Zendesk webhooks (4 at a
time) twice in the same run: alone (the baseline), then while ``--slow`` connections
trickle a signed webhook one byte at a time (a byte every 50 ms; one refused or
timed out connects again, so the pressure stays on). Each ordinary request waits at
most 5 s for its answer. Prints, per front, the p50/p95 of the ordinary requests in
both phases, their ratio, and how many were answered within 5 s.

Fronts: ``tierdesk`` is ``tierdesk serve`` as shipped (the waitress front, 2 HTTP
processes × 4 threads, one inbox worker); ``gunicorn`` is the same app under gunicorn's
gthread workers with the same 2 × 4 (the front tierdesk had before; needs the bench
extra). Goal: with 20 slow clients the p95 of ordinary webhooks stays under 1 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webhooks.signatures import sign_zendesk
from webhooks.zendesk import TRIGGER_SCHEMA

SECRET = "bench-secret"
ORDINARY = 40
PARALLEL = 4
ANSWER_WITHIN_S = 5.0
TRICKLE_S = 0.05

GUNICORN_APP = """
from tierdesk.config import settings_from_env
from webhooks.app import create_app

app = create_app(settings_from_env())
"""


def body(n: int, unique: str) -> bytes:
    return json.dumps(
        {
            "schema": TRIGGER_SCHEMA,
            "event": "ticket.updated",
            "ticket": {
                "id": str(4000 + n),
                "created_at": "2026-03-06T16:30:00Z",
                "updated_at": "2026-03-06T16:31:00Z",
                "requester": "alice@acme.example",
                "organization_id": "360001",
                "priority": "urgent",
            },
            "updated_by": f"agent-{unique}@vendor.example",
        }
    ).encode()


def headers(invocation: str, payload: bytes) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": sign_zendesk(SECRET, stamp, payload),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Invocation-Id": invocation,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


def ordinary(port: int, n: int, prefix: str) -> float:
    """One signed webhook; its latency, or ANSWER_WITHIN_S + 1 when not answered in time."""
    started = time.monotonic()
    payload = body(n, f"{prefix}-{n}")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_WITHIN_S)
    try:
        connection.request(
            "POST", "/webhooks/zendesk/bench", payload, headers(f"{prefix}-{n}", payload)
        )
        response = connection.getresponse()
        response.read()
        if response.status >= 300:
            raise SystemExit(f"HTTP {response.status}")
    except (TimeoutError, OSError):
        return ANSWER_WITHIN_S + 1
    finally:
        connection.close()
    return time.monotonic() - started


def phase(port: int, prefix: str) -> list[float]:
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda n: ordinary(port, n, prefix), range(ORDINARY)))


def trickle(port: int, stop: threading.Event, index: int) -> None:
    """A slow sender: a whole signed webhook, one byte every TRICKLE_S, again and again."""
    while not stop.is_set():
        payload = body(index, f"slow-{index}-{time.time()}")
        head = "".join(
            f"{k}: {v}\r\n"
            for k, v in {
                **headers(f"slow-{index}", payload),
                "Host": "127.0.0.1",
                "Content-Length": str(len(payload)),
            }.items()
        )
        raw = f"POST /webhooks/zendesk/bench HTTP/1.1\r\n{head}\r\n".encode() + payload
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                for i in range(len(raw)):
                    if stop.wait(TRICKLE_S):
                        return
                    sock.sendall(raw[i : i + 1])
                sock.recv(1024)
        except OSError:
            stop.wait(0.1)  # refused or cut off by the server's deadlines: connect again


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1]


def measure(port: int, slow: int) -> dict[str, list[float]]:
    phase(port, "warm")
    results = {"alone": phase(port, "alone")}
    stop = threading.Event()
    tricklers = [threading.Thread(target=trickle, args=(port, stop, i)) for i in range(slow)]
    for thread in tricklers:
        thread.start()
    time.sleep(1.0)  # every slow connection open and in the middle of its request
    try:
        results["slow"] = phase(port, "slow")
    finally:
        stop.set()
        for thread in tricklers:
            thread.join()
    return results


def start(front: str, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    command = {
        "tierdesk": [sys.executable, "-m", "tierdesk", "serve", "--bind", f"127.0.0.1:{port}"],
        "gunicorn": [
            *(sys.executable, "-m", "gunicorn", "-k", "gthread", "--workers", "2"),
            *("--threads", "4", "-b", f"127.0.0.1:{port}", "gunicorn_app:app"),
        ],
    }[front]
    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="slow clients against ordinary webhooks")
    parser.add_argument("--front", choices=["tierdesk", "gunicorn", "both"], default="tierdesk")
    parser.add_argument("--slow", type=int, default=20, help="trickling connections")
    args = parser.parse_args(argv)
    fronts = ["tierdesk", "gunicorn"] if args.front == "both" else [args.front]
    print(f"{ORDINARY} ordinary signed webhooks ({PARALLEL} at a time), alone and beside")
    print(f"{args.slow} connections sending a webhook one byte every {TRICKLE_S * 1000:.0f} ms")
    print(f"  {'front':<9} {'phase':<6} {'p50 ms':>8} {'p95 ms':>8}  answered within 5 s")
    for front in fronts:
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            (work / "tierdesk.toml").write_text('[tenants.bench]\nvendor = "zendesk"\n')
            (work / "gunicorn_app.py").write_text(GUNICORN_APP)
            env = {
                **os.environ,
                "TIERDESK_CONFIG": str(work / "tierdesk.toml"),
                "TIERDESK_DATABASE": str(work / "tierdesk.sqlite3"),
                "TIERDESK_TENANT_BENCH_WEBHOOK_SECRET": SECRET,
                "PYTHONPATH": os.pathsep.join([str(work), str(ROOT)]),
            }
            port = free_port()
            server = start(front, port, env, work)
            try:
                wait_ready(port)
                results = measure(port, args.slow)
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
        for name, latencies in results.items():
            answered = sum(1 for x in latencies if x <= ANSWER_WITHIN_S)
            print(
                f"  {front:<9} {name:<6} {percentile(latencies, 50) * 1000:8.1f}"
                f" {percentile(latencies, 95) * 1000:8.1f}  {answered}/{len(latencies)}"
            )
        p95 = percentile(results["slow"], 95)
        ratio = p95 / percentile(results["alone"], 95)
        verdict = "met" if p95 < 1.0 else "MISSED"
        print(
            f"  {front}: p95 with {args.slow} slow clients is {ratio:.1f}x the p95 alone,"
            f" {p95 * 1000:.0f} ms (goal < 1 s): {verdict}"
        )


if __name__ == "__main__":
    main()
