"""The HTTP front: waitress, set up so that no sender can hold a request thread.

In: a WSGI app and a listening socket (bound here, or inherited from ``tierdesk serve``
so that several HTTP processes share it). Out: a server that runs until SIGTERM/SIGINT.

waitress reads every connection in one event-loop thread and hands a request to the
pool of request threads only once its headers and its whole body are buffered (spilled
to a temporary file past 512 KiB). A client that trickles its request one byte at a
time therefore costs a socket and a little memory, never a thread; the threads only
run the app on complete requests. Chunked bodies are decoded before the app sees them,
so the app always gets a Content-Length.

What a sender gets from the front itself, always a JSON body ``{"error", "message"}``
like the app's own errors, and the connection closed afterwards:

- 400 ``bad_request``: malformed HTTP (start line, header, ``Content-Length``), a
  malformed chunked body (chunk size not hex such as ``zz`` or ``-5``, a chunk not
  ended by CRLF, a bad extension), a body cut off (the client closed its side before
  the last chunk or before ``Content-Length`` bytes), and a ``Transfer-Encoding`` other
  than ``chunked`` (RFC 9112 §6.1: when chunked is not the final coding the length
  cannot be determined, and the server MUST answer 400; waitress would say 501).
- 413 ``request_entity_too_large``: a ``Content-Length`` or a declared chunk size that
  takes the body over the limit, answered as soon as the size is read, before the body.
- 431 ``request_header_fields_too_large``: headers over 64 KiB.
- 408 ``request_timeout``: headers not complete within ``header_timeout_s`` of the
  request's first byte, or the body not complete within ``body_timeout_s`` after them
  (nginx's ``client_header_timeout``/``client_body_timeout`` play the same part).

An idle keep-alive connection is closed after ``idle_timeout_s``. Messages are fixed
texts: nothing a sender sent is echoed or logged by the front.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.receiver import ChunkedReceiver
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher
from waitress.utilities import BadRequest, Error, RequestEntityTooLarge

log = logging.getLogger("tierdesk.front")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class FrontSettings:
    """How one HTTP process serves. ``max_body_bytes`` is the app's limit: the front
    refuses a body over it early, the app checks the exact decoded size again."""

    threads: int = 4
    max_body_bytes: int = 1024 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    idle_timeout_s: float = 60.0
    connection_limit: int = 1000


# Chunk framing, on top of the body, that the front's coarse count of a chunked body's
# bytes lets through (its limit is compared with the raw bytes read, framing included).
_SLACK = 64 * 1024


class RequestTimeoutError(Error):  # type: ignore[misc]  # waitress ships no type hints
    code = 408
    reason = "Request Timeout"


# waitress's error classes by status, as the names the app's own errors use.
_NAMES = {
    400: "bad_request",
    408: "request_timeout",
    413: "request_entity_too_large",
    431: "request_header_fields_too_large",
    500: "internal_error",
}
# waitress's own messages that carry nothing from the request; any other (some quote a
# header line) is replaced by a fixed one.
_SAFE_MESSAGES = {
    "Invalid chunk size",
    "Invalid chunk extension",
    "Chunk not properly terminated",
    "HTTP message header invalid",
    "Bare CR or LF found in HTTP message",
    "Invalid header",
    "Start line is invalid",
    "Content-Length is invalid",
    "Bad URI",
    "the request ended before its body was complete",
}


def _json_error(error: Any) -> tuple[int, str, str]:
    """(status, error name, message) for one of waitress's errors."""
    code = int(error.code)
    text = str(error.body)
    if code == 501:
        # Only raised for a Transfer-Encoding other than a final "chunked".
        return 400, "bad_request", "Transfer-Encoding must be chunked (or absent)"
    if code == 413:
        return 413, _NAMES[413], "the body is over the size limit"
    if code == 431:
        return 431, _NAMES[431], "the request headers are too large"
    if code in (400, 408):
        return (
            code,
            _NAMES[code],
            text
            if text in _SAFE_MESSAGES or code == 408
            else ("the request is not valid HTTP/1.1"),
        )
    return 500, _NAMES[500], "an unexpected error; see the service log"


class _JsonErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's error answers, as JSON."""

    def execute(self) -> None:
        status, name, message = _json_error(self.request.error)
        body = json.dumps({"error": name, "message": message}).encode()
        self.status = f"{status} {_REASONS.get(status, 'Error')}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


class _Chunks(ChunkedReceiver):  # type: ignore[misc]
    """A chunked body refused as soon as a declared chunk size takes it over the limit,
    not after the front has read (and stored) a mebibyte of it."""

    error: Any

    def __init__(self, buf: Any, limit: int) -> None:
        super().__init__(buf)
        self.limit = limit

    def received(self, s: bytes) -> int:
        consumed: int = super().received(s)
        if self.error is None and len(self.buf) + self.chunk_remainder > self.limit:
            self.error = RequestEntityTooLarge("the body is over the size limit")
            self.all_chunks_received = True
        return consumed


class _Parser(HTTPRequestParser):  # type: ignore[misc]
    """waitress's parser, with the body limit applied exactly and early: to the
    ``Content-Length`` as soon as the headers end, to a chunked body as each chunk size
    is read."""

    error: Any
    body_rcv: Any

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        limit = self.adj.max_request_body_size - _SLACK
        if self.headers_finished and self.error is None and self.content_length > limit:
            self.error = RequestEntityTooLarge("the body is over the size limit")
            self.completed = True
        return consumed

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if self.chunked:
            self.body_rcv = _Chunks(self.body_rcv.buf, self.adj.max_request_body_size - _SLACK)


class _Channel(HTTPChannel):  # type: ignore[misc]
    """A connection; remembers when the request being read began, and answers 400 to a
    client that closes its side in the middle of a request."""

    error_task_class = _JsonErrorTask
    parser_class = _Parser
    request: Any
    request_began = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_began = time.monotonic()
        result: bool = super().received(data)
        return result

    def handle_read(self) -> None:
        try:
            data = self.socket.recv(self.adj.recv_bytes)
        except BlockingIOError:
            return
        except OSError:
            self.handle_close()
            return
        if data:
            self.last_activity = time.time()
            self.received(data)
        elif self.request is not None and not self.requests:
            # The client half-closed (shutdown(SHUT_WR)) inside a request: the body is
            # cut short. It may still read the answer (so the channel stays
            # "connected": waitress writes nothing to a disconnected one).
            self.refuse(BadRequest("the request ended before its body was complete"))
        else:
            self.connected = False
            self.handle_close()

    def writable(self) -> bool:
        # While a request thread writes its answer it holds the output lock and sends
        # the bytes itself (waitress flushes on every write since Pylons/waitress#364),
        # so there is nothing for the event loop to send. Polled for POLLOUT all the
        # same, the loop woke at once, found the lock taken, and polled again: it spun
        # holding the GIL, and the request thread waited out Python's 5 ms switch
        # interval to finish. Under load that was about 60 loop turns per webhook and half
        # the intake's CPU. The thread wakes the loop (pull_trigger) when it ends, or
        # when a send could not take everything, and then the lock is free again.
        if self.requests and not (self.will_close or self.close_when_flushed):
            if not self.outbuf_lock.acquire(False):
                return False
            self.outbuf_lock.release()
        return bool(super().writable())

    def refuse(self, error: Any) -> None:
        """Answer the request being read with ``error`` and close afterwards."""
        with self.requests_lock:
            request = self.request
            if request is None or self.requests:
                return
            request.error = error
            request.completed = True
            self.request = None
            self.requests.append(request)
        self.server.add_task(self)


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel
    front: FrontSettings

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # closes idle connections (channel_timeout)
        clock = time.monotonic()
        for channel in list(self.active_channels.values()):
            request = channel.request
            if request is None or channel.requests or channel.will_close:
                continue
            waited = clock - channel.request_began
            if (not request.headers_finished and waited > self.front.header_timeout_s) or (
                waited > self.front.header_timeout_s + self.front.body_timeout_s
            ):
                channel.refuse(RequestTimeoutError("the request did not arrive in time"))


class _QueueDepth:
    """waitress logs "Task queue depth is N" for every request that arrives while all
    request threads are busy: under a burst of webhooks, a log line per webhook (6 % of
    the intake's CPU in bench/ingest.py). Said at most once per ``every_s``, with the
    deepest queue seen since. Called under the dispatcher's lock."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self.said_at = float("-inf")
        self.deepest = 0
        self.log = logging.getLogger("waitress.queue")

    def warning(self, _message: str, depth: int) -> None:
        self.deepest = max(self.deepest, depth)
        now = time.monotonic()
        if now - self.said_at >= self.every_s:
            self.log.warning(
                "task queue depth reached %d: every request thread was busy"
                " (said at most every %.0f s)",
                self.deepest,
                self.every_s,
            )
            self.said_at, self.deepest = now, 0


def listen(bind: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``[v6]:port`` too)."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(1024)
    return sock


def server(app: WSGIApp, sock: socket.socket, front: FrontSettings) -> Any:
    """A waitress server on ``sock`` (already listening); ``.run()`` serves until
    SystemExit/KeyboardInterrupt, then waits for the requests in hand."""
    adj = Adjustments(
        sockets=[sock],
        threads=front.threads,
        # The coarse limit on what the front reads of a body, framing included; the
        # app's MAX_CONTENT_LENGTH checks the exact decoded size.
        max_request_body_size=front.max_body_bytes + _SLACK,
        max_request_header_size=64 * 1024,
        channel_timeout=int(front.idle_timeout_s),
        cleanup_interval=1,  # how often maintenance() checks the deadlines
        connection_limit=front.connection_limit,
        asyncore_use_poll=True,  # select() stops at file descriptor 1024
        ident="tierdesk",
        expose_tracebacks=False,
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.queue_logger = _QueueDepth()
    dispatcher.set_thread_count(front.threads)
    served = _Server(
        app,
        map={},
        _start=True,
        _sock=sock,
        dispatcher=dispatcher,
        adj=adj,
        bind_socket=False,
        sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()),
    )
    served.front = front
    return served


def run(served: Any, stopping: Callable[[], bool], grace_s: float = 10.0) -> None:
    """Serve until ``stopping()`` is true, then drain: stop accepting (this process's
    copy of the listening socket is closed), close idle connections, let the requests
    in hand be answered for up to ``grace_s``, and return.

    waitress's own ``run()`` stops its loop at once on SIGTERM: an answer a request
    thread had not yet flushed would be lost, though the event behind it was stored."""
    connections: dict[int, Any] = served.active_channels
    deadline = None
    while True:
        wasyncore.loop(timeout=0.5, map=served._map, use_poll=True, count=1)
        if not stopping():
            continue
        if deadline is None:
            deadline = time.monotonic() + grace_s
            # The plain dispatcher close: waitress's close() would also close the
            # trigger that request threads pull to have their answers written.
            wasyncore.dispatcher.close(served)
        for channel in list(connections.values()):
            if channel.request is None and not channel.requests and not channel.total_outbufs_len:
                channel.handle_close()  # idle keep-alive: nothing in hand
        if not connections or time.monotonic() > deadline:
            break
    served.task_dispatcher.shutdown(cancel_pending=True, timeout=5)


def serve_forever(app: WSGIApp, sock: socket.socket, front: FrontSettings) -> None:
    """One HTTP process: serve on ``sock`` until SIGTERM or SIGINT, then drain."""
    stop: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: stop.append(number))
    served = server(app, sock, front)
    log.info("HTTP process %d serving on %s", os.getpid(), sock.getsockname())
    run(served, lambda: bool(stop))
    log.info("HTTP process %d stopped", os.getpid())


def access_logged(app: WSGIApp) -> WSGIApp:
    """``app``, with one line per request: method, path, status and milliseconds."""
    access = logging.getLogger("tierdesk.access")

    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        began = time.perf_counter()
        status: list[str] = []

        def remember(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code.split(" ", 1)[0])
            return start_response(code, headers, exc_info)

        try:
            return app(environ, remember)
        finally:
            access.info(
                "%s %s %s %.1fms",
                environ.get("REQUEST_METHOD"),
                # repr-escaped: a path may hold anything a sender typed
                ascii(environ.get("PATH_INFO", ""))[1:-1],
                status[-1] if status else "-",
                (time.perf_counter() - began) * 1000,
            )

    return logged
