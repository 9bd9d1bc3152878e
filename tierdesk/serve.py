"""``tierdesk serve``: the HTTP processes plus the inbox workers, so that one command runs
the whole embedded default.

Process tree::

    tierdesk serve             (supervisor: single-threaded, no HTTP; owns the listening socket)
    ├── tierdesk http  × W     (the waitress front, `tierdesk.front`; all share that socket)
    └── tierdesk worker × N    (the inbox workers)

In: the listening socket (bound by the caller, so a busy port is refused before anything
starts) and the commands of the children. Out: the exit status for ``tierdesk serve``.

- A child that dies is started again, except an HTTP process that dies within
  `BOOT_S` of its start (it could not serve: say, the store cannot be opened), which
  stops everything with its status.
- SIGTERM/SIGINT drain: the supervisor closes its copy of the listening socket and
  passes SIGTERM on; HTTP processes stop accepting and answer what they hold (up to
  10 s); workers make no new claim and finish the event in hand (within its lease).
  Whatever is still running after that is killed.
- Children die with the supervisor, even one killed by SIGKILL: each child asks the
  kernel for SIGTERM when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``), and
  drains as above, so the port is free again for a new ``tierdesk serve``.

The supervisor is the parent of everything it watches. Spawning workers from a thread
of an HTTP server's master, as a first version did with gunicorn, raced with the
master's forks (an HTTP worker could inherit subprocess's exec-status pipe and hang
``Popen``) and hid the workers' exit status.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("tierdesk.serve")

BOOT_S = 5.0  # an HTTP process that exits sooner than this after its start failed to boot
HTTP_DRAIN_S = 15.0  # the front's grace for answers in hand (10 s) and its exit
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass
class _Child:
    kind: str  # "http" or "worker"
    command: list[str]
    process: subprocess.Popen[bytes]
    started: float


class Supervisor:
    """Runs ``http_processes`` copies of ``http_command`` on ``listener`` and ``count``
    copies of ``worker_command``; see the module's docstring for what happens when."""

    def __init__(
        self,
        listener: socket.socket,
        http_command: list[str],
        http_processes: int,
        worker_command: list[str],
        count: int,
        *,
        drain_s: float,
    ) -> None:
        self.listener = listener
        self.http_command = http_command
        self.http_processes = http_processes
        self.worker_command = worker_command
        self.count = count
        self.drain_s = drain_s
        self._stopping = False
        self._die_with_me = _death_signal(os.getpid())

    def _start(self, kind: str) -> _Child:
        command = self.http_command if kind == "http" else self.worker_command
        process = subprocess.Popen(
            command,
            pass_fds=(self.listener.fileno(),) if kind == "http" else (),
            preexec_fn=self._die_with_me,  # noqa: PLW1509  # the supervisor has no threads
        )
        log.info("%s process %d started", kind, process.pid)
        return _Child(kind, command, process, time.monotonic())

    def _stop(self, *_: object) -> None:
        self._stopping = True  # only a flag: nothing that takes a lock in a signal handler

    def run(self) -> int:
        """Until stopped; the exit status for ``tierdesk serve``."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        children = [self._start("http") for _ in range(self.http_processes)]
        children += [self._start("worker") for _ in range(self.count)]
        status = 0
        while not self._stopping:
            for i, child in enumerate(children):
                code = child.process.poll()
                if code is None or self._stopping:
                    continue
                if child.kind == "http" and time.monotonic() - child.started < BOOT_S:
                    log.error("the HTTP process could not start (%s); stopping", code)
                    status = code or 1
                    self._stopping = True
                    break
                log.warning(
                    "%s process %d exited (%s); starting another",
                    child.kind,
                    child.process.pid,
                    code,
                )
                time.sleep(0.2)  # a child that dies at once must not spin the CPU
                children[i] = self._start(child.kind)
            time.sleep(0.25)
        self.listener.close()  # the HTTP processes hold their own copies until they drain
        _drain(children, {"http": HTTP_DRAIN_S, "worker": self.drain_s})
        return status


def _drain(children: list[_Child], grace: dict[str, float]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    started = time.monotonic()
    for child in children:
        left = max(0.1, grace[child.kind] - (time.monotonic() - started))
        try:
            child.process.wait(timeout=left)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s process %d did not stop in time; killing it", child.kind, child.process.pid
            )
            child.process.kill()
            child.process.wait()


def _death_signal(parent: int) -> Callable[[], None] | None:
    """What a child runs between fork and exec so that it gets SIGTERM when ``parent``
    dies (``prctl(2)``: the setting survives execve). None where there is no prctl."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, not in the child

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died between fork and prctl: no signal would come
            os._exit(1)

    return die_with_parent
