"""The SLA sweep: moves on the clocks of tickets nobody has answered yet — at risk,
breached, each escalation step — and queues the write-back of each change.

- **One leader.** Every `tierdesk worker` runs a sweeper; a lease in the store lets one
  of them sweep at a time, and another takes over when the leader dies.
- **Cheap when nothing changes.** Each clock carries the instant its stage changes next
  (an index), so a sweep reads only the clocks due now: a quiet sweep reads nothing and
  calls no API. The helpdesk is written through the inbox, by the workers, with the
  same compare-before-write as every decision.
- **Idempotent, and it catches up.** The queued event's id names the ticket, its due
  time and the stage reached, so a sweep repeated after a crash queues nothing twice;
  after downtime the next sweep moves each clock straight to where it stands now (one
  write per ticket, not one per missed step).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from entitlements.calendars import from_us, to_us
from entitlements.sla import next_change, status_at
from pipeline.lifecycle import SLA_CHANGED, follow_up, milestones_of
from store import Move, SlaClock, Store, StoreError
from telemetry.metrics import ESCALATIONS, SLA_STAGE_CHANGES, SWEEP_SECONDS

log = logging.getLogger("tierdesk.sweep")

ROLE = "sla-sweep"


@dataclass(frozen=True, slots=True)
class SweepResult:
    leader: bool
    examined: int = 0  # clocks read because their stage was due to change
    queued: int = 0  # write-backs queued (stage or level changed)


# Clocks read and moved per transaction.
BATCH = 2000


class Sweeper:
    def __init__(
        self,
        store: Store,
        *,
        every_s: float = 15.0,
        batch: int = BATCH,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
        tenants: Collection[str] | None = None,
    ) -> None:
        self.store = store
        # The tenants still configured (None: all): a removed tenant's clocks stop,
        # instead of turning each stage change into a dead letter.
        self.tenants = tenants
        self.every_s = every_s
        self.batch = batch
        self._clock = clock
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:sweep"

    def run_once(self) -> SweepResult:
        started = time.perf_counter()
        result = self._sweep()
        if result.leader:
            SWEEP_SECONDS.observe(time.perf_counter() - started)
        return result

    def _sweep(self) -> SweepResult:
        now = self._clock()
        # The lease outlives a few missed sweeps, so a slow sweep keeps its leadership,
        # and a dead leader is replaced within three periods.
        if not self.store.lead(ROLE, self.name, now, self.every_s * 3):
            return SweepResult(leader=False)
        now_us = to_us(datetime.fromtimestamp(now, UTC))
        examined = queued = 0
        while True:
            due = self.store.due_clocks(now_us, self.batch)
            if not due:
                break
            moves = [
                move_of(clock, now_us)
                if self.tenants is None or clock.tenant in self.tenants
                else Move(clock, clock.stage, clock.level, None, None)
                for clock in due
            ]
            applied = self.store.advance(moves, now)
            if applied:
                _count(moves)
            examined += len(due)
            queued += sum(1 for m in moves if m.event is not None)
            if len(due) < self.batch or not applied:
                break  # the rest changed under us (workers re-deciding): next sweep
        if queued:
            log.info("sweep: %d clocks moved on, %d write-backs queued", examined, queued)
        return SweepResult(True, examined, queued)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except StoreError as exc:
                log.error("sweep: store unavailable: %s", exc)
            except Exception:  # a bug must not stop the worker process
                log.exception("sweep %s: unexpected error; carrying on", self.name)
            stop.wait(self.every_s)


def _count(moves: list[Move]) -> None:
    """The batch's stage changes and escalations, added to the metrics once per label
    set: a metric's ``labels()`` takes a lock and builds its key, and a catch-up batch
    has thousands of moves over a few labels."""
    stages: Counter[tuple[str, str]] = Counter()
    escalations: Counter[str] = Counter()
    for move in moves:
        if move.event is None:
            continue
        if move.stage != move.clock.stage:
            stages[move.clock.tenant, move.stage] += 1
        if move.level > move.clock.level:
            escalations[move.clock.tenant] += move.level - move.clock.level
    for (tenant, stage), changes in stages.items():
        SLA_STAGE_CHANGES.labels(tenant, stage).inc(changes)
    for tenant, levels in escalations.items():
        ESCALATIONS.labels(tenant).inc(levels)


def move_of(clock: SlaClock, now_us: int) -> Move:
    """Where ``clock`` stands at ``now_us``, and the event that writes it, if it moved."""
    m = milestones_of(clock)
    now = from_us(now_us)
    status = status_at(m, now)
    upcoming = next_change(m, status)
    next_us = to_us(upcoming) if upcoming else None
    if (status.stage, status.level) == (clock.stage, clock.level):
        # Only the next look moves (a clock read just before its instant).
        return Move(clock, clock.stage, clock.level, next_us, None)
    stamp = f"sla:{clock.due_us}:{status.stage}:{status.level}"
    event = follow_up(clock, SLA_CHANGED, stamp, now)
    return Move(clock, status.stage, status.level, next_us, event)
