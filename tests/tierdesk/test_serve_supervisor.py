"""`tierdesk serve`'s children die with it, and SIGTERM drains (real processes).

- SIGKILL to the supervisor alone: its HTTP processes and worker exit by themselves
  (PR_SET_PDEATHSIG), and a new `tierdesk serve` can bind the same port.
- SIGTERM: new connections are refused, a request already in hand is still answered,
  workers finish the event they hold (no event is left leased), and serve exits 0.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.webhooks.real_server import (
    alive,
    descendants,
    exchange,
    head,
    serve,
    signed,
    statuses,
    wait_for,
    zendesk_body,
)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def post(port: int, n: int) -> int:
    body = zendesk_body(n)
    fields = {**signed("zendesk", body), "Content-Length": str(len(body))}
    return statuses(exchange(port, head("zendesk", fields) + body))[0]


def test_children_die_with_a_sigkilled_serve_and_the_port_is_free_again(tmp_path: Path) -> None:
    first = serve(tmp_path / "first")
    try:
        wait_for(lambda: len(descendants(first.process.pid)) >= 3, 30, "2 HTTP + 1 worker")
        children = descendants(first.process.pid)
        os.kill(first.process.pid, signal.SIGKILL)  # the supervisor alone, not its group
        first.process.wait()
        wait_for(lambda: not [p for p in children if alive(p)], 60, "every child to exit")
        second = serve(tmp_path / "second", port=first.port)
        try:
            assert post(second.port, 1) == 202
        finally:
            second.stop()
    finally:
        first.stop()  # the group, should anything have survived


def test_sigterm_refuses_new_connections_answers_the_request_in_hand_and_drains_workers(
    tmp_path: Path,
) -> None:
    # No coalescing hold: the worker starts on the events as they come.
    served = serve(tmp_path, env={"TIERDESK_COALESCE_SECONDS": "0"})
    try:
        # A backlog for the worker, so that it holds an event when SIGTERM comes.
        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(lambda n: post(served.port, n), range(200))) == {202}
        body = zendesk_body(500)
        fields = {**signed("zendesk", body), "Content-Length": str(len(body))}
        raw = head("zendesk", fields) + body
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as in_hand:
            in_hand.sendall(raw[:-20])
            time.sleep(0.5)  # let the front read the first part (not asserted)
            served.process.send_signal(signal.SIGTERM)
            wait_for(lambda: refused(served.port), 20, "new connections to be refused")
            in_hand.sendall(raw[-20:])
            in_hand.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := in_hand.recv(65536):
                answer += chunk
        assert statuses(answer) == [202]
        assert served.process.wait(timeout=60) == 0
        log = served.log.read_text()
        assert "killing it" not in log, log  # every child stopped by itself
        states = dict(
            sqlite3.connect(served.database)
            .execute("SELECT state, count(*) FROM inbox GROUP BY state")
            .fetchall()
        )
        assert "leased" not in states, states  # no event abandoned in a worker's hands
        assert states.get("done", 0) > 0
    finally:
        served.stop()
