"""``tierdesk serve``: gunicorn for HTTP, plus supervised inbox workers, so that one
command runs the whole embedded default.

Process tree::

    tierdesk serve (gunicorn master)
    ├── gunicorn HTTP workers
    └── tierdesk supervise-workers          (started before gunicorn forks anything)
        └── tierdesk worker  × N            (restarted when one dies)

The supervisor is a process of its own, single-threaded, started before the gunicorn
master forks its HTTP workers. Spawning from a thread of the master instead raced
with those forks: an HTTP worker could inherit subprocess's exec-status pipe and keep
``Popen`` waiting until it exited. The gunicorn master also reaps every child it has,
which hid the exit status of workers started from it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

log = logging.getLogger("tierdesk.serve")


class WorkerSupervisor:
    """Keeps ``count`` worker processes running until stopped, or until its parent
    (``tierdesk serve``) is gone."""

    def __init__(self, count: int, threads: int) -> None:
        self.count = count
        self.threads = threads
        self._stopping = False
        self._children: list[subprocess.Popen[bytes]] = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "tierdesk", "worker", "--threads", str(self.threads)]
        child = subprocess.Popen(command)
        log.info("worker process %d started", child.pid)
        return child

    def run(self) -> None:
        parent = os.getppid()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self._children = [self._spawn() for _ in range(self.count)]
        while not self._stopping:
            if os.getppid() != parent:  # serve died without stopping us: do not linger
                log.warning("tierdesk serve is gone; stopping the workers")
                break
            for i, child in enumerate(self._children):
                status = child.poll()
                if status is not None and not self._stopping:
                    log.warning("worker process %d exited (%s); restarting it", child.pid, status)
                    time.sleep(0.2)  # a worker that dies at once must not spin the CPU
                    self._children[i] = self._spawn()
            time.sleep(0.25)
        self._terminate()

    def _stop(self, *_: object) -> None:
        self._stopping = True

    def _terminate(self) -> None:
        for child in self._children:
            if child.poll() is None:
                child.terminate()
        for child in self._children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def start_supervisor(count: int, threads: int) -> subprocess.Popen[bytes]:
    """The supervisor process; call before gunicorn starts (no threads, no forks yet)."""
    command = [
        sys.executable,
        "-m",
        "tierdesk",
        "supervise-workers",
        "--processes",
        str(count),
        "--threads",
        str(threads),
    ]
    return subprocess.Popen(command)


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
