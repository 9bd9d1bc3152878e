"""bench/ledger.py still runs (small sizes, SQLite) and still checks that the running
total and the walk it replaced agree: its timings are printed, never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ledger_bench_small_run_agrees_with_the_walk() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "ledger.py"),
            "--sizes",
            "100,1000",
            "--reads",
            "50",
            "--store",
            "sqlite",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # A balance that disagrees with the walk exits with the figures instead.
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
    out = result.stdout
    for size in ("100 tickets:", "1,000 tickets:"):
        assert size in out, out
    assert "balance from 100 to 1,000 tickets:" in out, out
