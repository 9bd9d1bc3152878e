"""bench/engine.py still runs and still checks its answers against the references.
No timing is asserted (DESIGN.md: benchmarks print ratios, tests never time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_bench_quick_run_agrees_with_its_references() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = result.stdout
    assert "decisions/s" in out
    assert "365 days costs" in out
    assert "first decisions after a mappings reload, 1,000 accounts" in out
    assert "cold/warm" in out and "faster than businesstimedelta" in out
    # Every comparison that ran agreed with tierdesk's answer ("NO" marks a mismatch).
    assert " NO" not in out, out
    assert out.count(" yes") >= 6, out
