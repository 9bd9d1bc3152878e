"""bench/sync.py --small still runs its three pulls against the fake Zendesk and prints
its figures and verdicts. Neither the verdicts nor any figure are asserted (DESIGN.md:
benchmarks print ratios, tests never time); the bench itself checks each pull read
every record and wrote every account, and exits non-zero otherwise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sync_bench_small_run_prints_its_figures_and_verdicts() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sync.py"), "--small"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    assert re.search(r"2\. all, vendor unthrottled\s+8,000 records in .* records/s", out), out
    assert "accounts.json written each time: 2,004 accounts" in out, out
    assert re.search(r"peak RSS \d+ MB for all the records", out), out
    assert re.search(r"goal < 200 MB: (met|MISSED)", out), out
    assert re.search(r"= [0-9.]+ of the [0-9,]+ the vendor allowed", out), out
    assert re.search(r"bounded by the vendor rate limit, not by tierdesk: (met|MISSED)", out), out
