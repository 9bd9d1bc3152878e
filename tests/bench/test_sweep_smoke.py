"""bench/sweep.py still runs its sweeps on a small store (2,000 tickets, all drained by
the worker) and what it prints still holds the sweep's correctness facts: a quiet sweep
queues nothing and costs no API call, the catch-up queues one event per changed
clock, a second sweep queues nothing, and the worker writes each change once and
leaves each clock where the sweep put it. No timing and no speed goal is asserted
(DESIGN.md: benchmarks print ratios, tests never time)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TICKETS = 2000


def _numbers(pattern: str, out: str) -> tuple[int, ...]:
    """The integers ``pattern``'s groups capture (thousands separators allowed)."""
    found = re.search(pattern, out)
    assert found is not None, f"{pattern!r} not in:\n{out}"
    return tuple(int(group.replace(",", "")) for group in found.groups())


def test_sweep_bench_small_run_prints_the_sweeps_correctness_facts() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sweep.py"), "--small"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    n = r"([0-9][0-9,]*)"

    # The setup's milestones are the ones decide() works out for the same tickets.
    agreed, sampled = _numbers(rf"milestones agree with decide\(\): {n} of {n} sampled", out)
    assert agreed == sampled > 0

    # 1. Quiet: nothing examined, nothing queued, and the worker then calls no API.
    assert _numbers(rf"{n} clocks examined, {n} events queued", out) == (0, 0)
    calls = _numbers(rf"events processed; API calls: {n} \(GET {n}, PUT {n}\)", out)
    assert calls == (0, 0, 0)

    # 2. Catch-up: every clock changed, one event queued for each, counted in the inbox.
    queued, counted, changed, total = _numbers(
        rf"events queued: {n} \(the sweeper's count: {n}\); clocks changed: {n} of {n}", out
    )
    assert queued == counted == changed == total == TICKETS
    # The same sweep again queues nothing more.
    examined, again, inbox = _numbers(
        rf"second sweep: {n} examined, {n} queued \({n} events in the inbox\)", out
    )
    assert (examined, again, inbox) == (0, 0, queued)

    # The worker over all of them: at most one write (PUT) per changed ticket...
    drained, done = _numbers(rf"the worker over all {n} queued events \({n} done\)", out)
    assert drained == done == queued
    _calls, _gets, puts = _numbers(rf"API calls {n} \(GET {n}, PUT {n}\) = ", out)
    assert puts <= queued
    (most,) = _numbers(rf"most PUTs on one ticket: {n}", out)
    assert most <= 1
    # ...and its re-decisions land every clock where the sweep put it: nothing to redo.
    kept, clocks, later = _numbers(
        rf"clocks where the sweep put them {n} of {n}; a sweep queues {n}", out
    )
    assert kept == clocks == TICKETS
    assert later == 0
