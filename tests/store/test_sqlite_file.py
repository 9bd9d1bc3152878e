"""Processes opening one new SQLite file at the same moment, as `serve`'s HTTP
processes and inbox workers do on a first start: every one of them opens it.

Switching a new file to WAL failed at once ("database is locked", SQLite's busy handler
is not called there) when another process was switching it too: one start in ten
stopped itself. Not a timing test: a failure is an exception, whatever the speed."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from store import SqliteStore, open_ledger

PROCESSES = 4
ROUNDS = 20  # before the fix, 20 rounds failed at least once about 9 times in 10


def _open(path: str, ready: Barrier, answers: Queue[str]) -> None:
    ready.wait()
    try:
        store = SqliteStore(path)
        store.close()
        ledger = open_ledger(path)
        ledger.close()
        answers.put("opened")
    except Exception as exc:  # reported to the test, which names it
        answers.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_file_together_all_open_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    failures = []
    for n in range(ROUNDS):
        path = str(tmp_path / f"new-{n}.sqlite3")
        ready = context.Barrier(PROCESSES)
        answers: Queue[str] = context.Queue()
        processes = [
            context.Process(target=_open, args=(path, ready, answers)) for _ in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        results = [answers.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        failures += [result for result in results if result != "opened"]
    assert failures == []
