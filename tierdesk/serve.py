"""``tierdesk serve``: gunicorn for HTTP, plus supervised worker processes, so that one
command runs the whole embedded default.

The workers run as child processes (``python -m tierdesk worker``) that the gunicorn
master starts once it is listening and restarts if one dies. A killed worker loses
nothing: its leased event is claimed again when the lease runs out.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

log = logging.getLogger("tierdesk.serve")


class WorkerSupervisor:
    """Keeps ``count`` worker processes running until stopped."""

    def __init__(self, count: int, threads: int) -> None:
        self.count = count
        self.threads = threads
        self._stop = threading.Event()
        self._children: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "tierdesk", "worker", "--threads", str(self.threads)]
        child = subprocess.Popen(command)
        log.info("worker process %d started", child.pid)
        return child

    def start(self) -> None:
        threading.Thread(target=self._watch, name="worker-supervisor", daemon=True).start()

    def _watch(self) -> None:
        try:
            self._supervise()
        except Exception:
            log.exception("the worker supervisor stopped")
            raise

    def _supervise(self) -> None:
        with self._lock:
            self._children = [self._spawn() for _ in range(self.count)]
        while not self._stop.wait(0.5):
            with self._lock:
                for i, child in enumerate(self._children):
                    if child.poll() is not None and not self._stop.is_set():
                        # No exit status: the gunicorn master reaps every child of its
                        # process on SIGCHLD, ours included, so poll() only sees it gone.
                        log.warning("worker process %d is gone; restarting it", child.pid)
                        time.sleep(0.2)  # a worker that dies at once must not spin the CPU
                        self._children[i] = self._spawn()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for child in self._children:
                child.terminate()
            for child in self._children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()


class Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn run from inside our process."""

    def __init__(
        self, app: Flask, options: dict[str, Any], supervisor: WorkerSupervisor | None
    ) -> None:
        self._app = app
        self._options = options
        self._supervisor = supervisor
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)
        if self._supervisor is not None:
            supervisor = self._supervisor
            self.cfg.set("when_ready", lambda server: supervisor.start())
            self.cfg.set("on_exit", lambda server: supervisor.stop())

    def load(self) -> Flask:
        return self._app
