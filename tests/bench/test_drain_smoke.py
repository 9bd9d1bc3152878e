"""bench/drain.py still runs (a small backlog on SQLite) and still drains every event:
its figures are printed, never asserted (tests never time); the statement budget it
prints is asserted by tests/pipeline/test_worker_cost.py, by counting."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_drain_bench_small_run_drains_the_backlog() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "drain.py"), "--small", "--store", "sqlite"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    assert "200 tickets, 1,000 events" in out, out
    for line in (
        "baseline, bare claim + complete:",
        "worker, 1 thread:",
        "worker, 2 threads:",
        "worker with a live write-back (10 ms a call; the first 200 events,",
    ):
        assert line in out, out
    found = re.search(r"per event: ([0-9.]+) SQL statements, ([0-9.]+) write transactions", out)
    assert found is not None, out
    assert float(found.group(1)) > 0 and float(found.group(2)) > 0
