"""bench/writeback.py still runs the whole pipeline and prints its figures and verdicts.
Neither the verdicts nor any timing are asserted (DESIGN.md: benchmarks print ratios,
tests never time): a benchmark's figures are reported, not tested."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_writeback_bench_quick_run_prints_its_figures_and_verdicts() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "writeback.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    assert re.search(r"= [0-9.]+ calls per event", out), out
    assert re.search(r"goal <= 0\.5 calls/event: (met|MISSED)", out), out
    assert re.search(r"echoes: 0 calls: (met|MISSED)", out), out
