"""The front's event loop does not spin while a request thread writes its answer (issue
12: 40-60 loop turns per webhook under load), and answers still leave whole: a large
one sent in many partial sends to a client that reads slowly, and a small one at once.

The front runs in this process on 127.0.0.1 (`tierdesk.front.server` + `run` in a
thread) around plain WSGI apps, so the test can look at a connection from inside the
request thread that serves it. No timing is asserted.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from tierdesk.front import FrontSettings, WSGIApp, listen, run, server


class Front:
    def __init__(self, app: Callable[[Any], WSGIApp]) -> None:
        self.sock = listen("127.0.0.1:0")
        self.port: int = self.sock.getsockname()[1]
        self.served = server(app(self), self.sock, FrontSettings(threads=2))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=run, args=(self.served, self.stopping.is_set, 5.0))
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)
        self.sock.close()


def from_the_loop(call: Callable[[], object]) -> object:
    """``call()`` from another thread, as the event loop would make it (the output
    lock is reentrant: the thread that holds it would always get it)."""
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(call()))
    thread.start()
    thread.join(timeout=30)
    return out[0]


@pytest.fixture
def front() -> Iterator[Callable[[Callable[[Any], WSGIApp]], Front]]:
    started: list[Front] = []

    def start(app: Callable[[Any], WSGIApp]) -> Front:
        started.append(Front(app))
        return started[-1]

    yield start
    for one in started:
        one.stop()


def test_a_connection_is_not_polled_for_writing_while_its_request_thread_holds_the_output(
    front: Callable[[Callable[[Any], WSGIApp]], Front],
) -> None:
    seen: dict[str, object] = {}

    def app(me: Front) -> WSGIApp:
        def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            (channel,) = me.served.active_channels.values()
            # As during a send: the request thread holds the output lock, bytes pending.
            with channel.outbuf_lock:
                pending = channel.total_outbufs_len
                channel.total_outbufs_len = pending + 10
                seen["while_sending"] = from_the_loop(channel.writable)
                channel.total_outbufs_len = pending
            seen["lock_free_nothing_pending"] = from_the_loop(channel.writable)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"done"]

        return answer

    served = front(app)
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"done")
    # Polled for POLLOUT, the loop would wake at once, find the lock taken and spin.
    assert not seen["while_sending"]
    assert not seen["lock_free_nothing_pending"]
    # The connection goes on serving (keep-alive): the loop was woken for it.
    connection.request("GET", "/")
    assert connection.getresponse().read() == b"done"
    connection.close()


def test_a_large_answer_to_a_slow_reader_arrives_whole(
    front: Callable[[Callable[[Any], WSGIApp]], Front],
) -> None:
    """Many partial sends, some by the request thread, the rest by the loop once the
    thread has let go of the output: nothing may stall or be lost."""
    chunk = bytes(range(256)) * 256  # 64 KiB
    chunks = 64  # 4 MiB: more than the socket buffers hold, so sends are partial

    def app(_: Front) -> WSGIApp:
        def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            start_response(
                "200 OK",
                [
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", str(len(chunk) * chunks)),
                ],
            )
            return (chunk for _ in range(chunks))

        return answer

    served = front(app)
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)  # not reading yet: the socket buffers fill, sends come up short
        received = bytearray()
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == len(chunk) * chunks
    assert hashlib.sha256(body).digest() == hashlib.sha256(chunk * chunks).digest()


def test_a_busy_queue_is_logged_once_a_minute_with_the_deepest_depth(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """waitress said "Task queue depth is N" for every request that found every thread
    busy; the front says it once per interval, with the deepest queue since."""
    from tierdesk.front import _QueueDepth

    depth = _QueueDepth(every_s=3600)
    with caplog.at_level(logging.WARNING, logger="waitress.queue"):
        for n in (1, 3, 2):
            depth.warning("Task queue depth is %d", n)
        depth.said_at -= 3600  # as if the interval had passed
        for n in (2, 5, 4):
            depth.warning("Task queue depth is %d", n)
    lines = [r.getMessage() for r in caplog.records if r.name == "waitress.queue"]
    assert len(lines) == 2
    assert "reached 1:" in lines[0]  # the first is said at once
    assert "reached 3:" in lines[1]  # the deepest since: of 3, 2 and 2 (5, 4 wait)


def test_the_front_gives_waitress_the_quieter_queue_log() -> None:
    sock = listen("127.0.0.1:0")
    try:
        served = server(lambda environ, start: [], sock, FrontSettings(threads=1))
        from tierdesk.front import _QueueDepth

        assert isinstance(served.task_dispatcher.queue_logger, _QueueDepth)
        served.task_dispatcher.shutdown(timeout=5)
    finally:
        sock.close()
