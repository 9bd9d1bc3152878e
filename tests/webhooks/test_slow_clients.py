"""Slow clients do not starve ordinary webhooks (issue 11: 20 connections trickling a
request used to hold every request thread of `tierdesk serve`).

A real `tierdesk serve` (2 HTTP processes × 4 threads, the defaults) gets 20
connections that trickle a signed webhook a byte at a time, more connections than it
has threads. While they are all still open and mid-request, 40 ordinary signed
webhooks must all be answered 202. No timing is asserted beyond a generous 30 s per
request (the old front left half of them unanswered for good); bench/slow_clients.py
measures the latencies.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.webhooks.real_server import (
    ROUTES,
    Served,
    head,
    serve,
    signed,
    statuses,
    zendesk_body,
)

SLOW = 20
ORDINARY = 40


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # Deadlines far beyond the test, so the slow connections stay open throughout.
    server = serve(tmp_path, "--header-timeout", "600", "--body-timeout", "600")
    yield server
    server.stop()


def ordinary(port: int, n: int) -> int:
    body = zendesk_body(n)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            ROUTES["zendesk"],
            body,
            {"Content-Type": "application/json", **signed("zendesk", body)},
        )
        response = connection.getresponse()
        assert json.loads(response.read())["status"] == "queued"
        return response.status
    finally:
        connection.close()


def test_ordinary_webhooks_are_answered_while_20_slow_clients_hold_requests_open(
    served: Served,
) -> None:
    requests = []
    for i in range(SLOW):
        body = zendesk_body(1000 + i)
        fields = {**signed("zendesk", body), "Content-Length": str(len(body))}
        requests.append(head("zendesk", fields) + body)
    slow = [socket.create_connection(("127.0.0.1", served.port), timeout=30) for _ in range(SLOW)]
    sent = [0] * SLOW
    stop = threading.Event()
    failures: list[BaseException] = []

    def trickle() -> None:
        """One more byte to each slow connection, round after round (never a whole request)."""
        try:
            while not stop.wait(0.02):
                for i, sock in enumerate(slow):
                    if sent[i] < len(requests[i]) - 1:
                        sock.sendall(requests[i][sent[i] : sent[i] + 1])
                        sent[i] += 1
        except OSError as exc:
            failures.append(exc)

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        for sock in slow:  # every slow connection has begun its request
            sock.sendall(b"P")
        sent[:] = [1] * SLOW
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda n: ordinary(served.port, n), range(ORDINARY)))
    finally:
        stop.set()
        trickler.join()
    assert answers == [202] * ORDINARY
    assert not failures, failures
    # All the while, each slow request was still in progress: open, unanswered, partial.
    assert all(0 < n < len(r) for n, r in zip(sent, requests, strict=True)), sent
    for sock in slow:
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1, socket.MSG_PEEK)  # nothing to read: no answer, and not closed
        sock.setblocking(True)
        sock.settimeout(30)
    # And a slow request, once complete, is served like any other.
    first = slow[0]
    first.sendall(requests[0][sent[0] :])
    first.shutdown(socket.SHUT_WR)
    answer = b""
    while chunk := first.recv(65536):
        answer += chunk
    assert statuses(answer) == [202]
    for sock in slow:
        sock.close()
