"""``tierdesk serve``: gunicorn for HTTP plus the inbox workers, so that one command
runs the whole embedded default.

Process tree::

    tierdesk serve                (supervisor: single-threaded, no HTTP)
    ├── tierdesk http             (gunicorn master) ── gunicorn HTTP workers
    └── tierdesk worker  × N      (restarted when one dies)

The supervisor is the parent of everything it watches. Spawning workers from a
thread of the gunicorn master, as a first version did, raced with the master's
forks: an HTTP worker could inherit subprocess's exec-status pipe and hang ``Popen``.
The master also reaps every child it has, which hid the workers' exit status and
would have hidden a dead supervisor. If gunicorn itself exits, the supervisor stops
the workers and exits with gunicorn's status.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

log = logging.getLogger("tierdesk.serve")


class Supervisor:
    """Runs ``companion`` (the HTTP server) and ``count`` worker processes; restarts a
    worker that dies; stops everything on SIGTERM/SIGINT or when the companion exits."""

    def __init__(self, companion: list[str], count: int, threads: int) -> None:
        self.companion_command = companion
        self.count = count
        self.threads = threads
        self._stopping = False

    def _worker(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "tierdesk", "worker", "--threads", str(self.threads)]
        child = subprocess.Popen(command)
        log.info("worker process %d started", child.pid)
        return child

    def _stop(self, *_: object) -> None:
        self._stopping = True  # only a flag: nothing that takes a lock in a signal handler

    def run(self) -> int:
        """Until stopped; the exit status for ``tierdesk serve``."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        companion = subprocess.Popen(self.companion_command)
        workers = [self._worker() for _ in range(self.count)]
        status = 0
        while not self._stopping:
            if companion.poll() is not None:
                status = companion.returncode
                log.error("the HTTP server exited (%s); stopping the workers", status)
                break
            for i, child in enumerate(workers):
                if child.poll() is not None and not self._stopping:
                    log.warning(
                        "worker process %d exited (%s); restarting it", child.pid, child.returncode
                    )
                    time.sleep(0.2)  # a worker that dies at once must not spin the CPU
                    workers[i] = self._worker()
            time.sleep(0.25)
        _terminate([companion, *workers])
        return status


def _terminate(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn run from inside our process."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app
