"""The SLA sweep over 100,000 open tickets in a real SQLite store.

    .venv/bin/python bench/sweep.py [--small] [--tickets N] [--drain N] [--seed S] [--keep DIR]
    .venv/bin/python bench/sweep.py --scale [--sizes 10000,100000,1000000]
                                    [--store sqlite|postgres|both] [--url URL]

Sets up 100,000 open, unanswered tickets (``--small``: 2,000) of one Zendesk tenant in
a `SqliteStore` in a temp dir, each with its first-response clock (store/base.py
`SlaClock`) as the worker and a running sweeper leave it at the quiet instant
(Wednesday 2026-03-11 14:30 UTC): on track or at risk, never yet breached, so every
clock's next check lies in the future. The milestones are the real ones: requesters,
severities, products and environments drawn (seeded) from the bundled accounts pick
the tier, the calendar and the target as `decide()` does, and entitlements/sla.py
`milestones()` works them out on the bundled rulebook's calendars (24x7, 24x5-global,
business hours in London, Sydney, Tokyo and UTC, holidays included) from
creation times spread over the target's length; a sample is checked against
`decide()`. The clocks go into the ``sla`` table in one bulk INSERT of exactly the rows
`SqliteStore.complete` writes: setup only, not measured.

Then, from one process (these machines are noisy, so every figure that matters is a
ratio against something measured in the same run), it prints:

0. the baseline: ``SELECT count(*)`` over the ``sla`` table, and reading every row of
   it, with plain sqlite3;
1. a quiet sweep (`Sweeper.run_once` at the quiet instant, nothing due): tickets/s
   over the open tickets (goal >= 10,000/s) and its cost against the baseline; then
   the real `Worker`, whose write-back is the real Zendesk connector over HTTP to a
   fake Zendesk (``responses``), runs over whatever the sweep queued, and the API calls
   it makes are counted (goal: 0);
2. a catch-up sweep after downtime, at the first instant past every clock's next
   check, so that each of the clocks changes stage: tickets/s of the sweep itself (one
   inbox event per changed ticket, the sweeper's batches of 2,000, one transaction each), against
   reading every row; the events queued next to the clocks whose stage or level
   changed (read from the table before and after, not from the sweeper's count);
   the same sweep again (0 queued: idempotent); the worker over the first
   ``--drain`` queued events (default 2,000; all of them with ``--small``): API calls
   per event, at most one PUT each; and a sweep after that queues nothing, because the
   worker's re-decision lands each clock where the sweep put it.

``--scale`` runs only the catch-up sweep, on a fresh store of each of ``--sizes`` open
tickets (default 10,000, 100,000 and 1,000,000; a few minutes and about 4 GB at 1M,
setup included), with the sweeper's own batch (`pipeline.sweep.BATCH`), and prints its
tickets/s and cost per ticket at each size next to the smallest size's (goal: flat from
10k to 1M, and >= 10,000 tickets/s at 1M), and against reading every row of the table.
It does so for each of ``--store`` (default both): a SQLite file, and a fresh schema on
the throwaway PostgreSQL server tests/store/postgres_server.py starts (or on ``--url``),
whose clocks go in by COPY.

The fake Zendesk answers at once and has no rate limit, so the tenant's request budget
(180 requests a minute) is lifted in the drain; what it would cost in hours is
printed from the counted calls.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
import responses

from connector.http import Budget, Policy
from entitlements.calendars import Calendar, to_us
from entitlements.decide import decide
from entitlements.rulebook import Rulebook
from entitlements.sla import Milestones, milestones, next_change, status_at
from entitlements.tickets import OrganizationRef, Ticket
from mappings import load_mappings
from pipeline.connectors import Connectors, VendorWriteBack
from pipeline.lifecycle import SLA_CHANGED
from pipeline.sweep import BATCH, Sweeper, SweepResult
from pipeline.worker import Worker
from store import SlaClock, SqliteStore, Store
from store.sqlite import SLA_COLUMNS, SLA_INSERT, sla_values
from tests.store.postgres_server import given_or_started
from webhooks.events import TicketEvent
from webhooks.live_mappings import LiveMappings
from webhooks.settings import FieldMap, Secret, Settings, Tenant

GOAL_QUIET_TICKETS_PER_S = 10_000
QUIET = datetime(2026, 3, 11, 14, 30, tzinfo=UTC)  # a Wednesday; no holiday near it
QUIET_RUNS = 21

BASE_URL = "https://acme.zendesk.com"
FIELDS = FieldMap(
    severity="360010001",
    product="360010002",
    environment="360010003",
    category="360010004",
    tier="360010011",
    first_response_due="360010012",
    named_contact="360010013",
    named_contact_reason="360010014",
    coverage="360010015",
    sla="360010016",
    escalation_level="360010017",
    first_response="360010018",
    groups={
        "premier": "360020001",
        "priority": "360020002",
        "technical-support": "360020003",
        "payg": "360020004",
        "select": "360020005",
    },
)
TENANT = Tenant(
    id="acme-zd",
    vendor="zendesk",
    base_url=BASE_URL,
    email="tierdesk-api@support.example",
    api_token=Secret("bench-api-token"),
    fields=FIELDS,
)
TICKET_PATH = re.compile(re.escape(BASE_URL) + r"/api/v2/tickets/([0-9]+)")

# (email, Zendesk organization, weight): who opens the tickets, across the bundled
# accounts, so that every tier, calendar and account time zone is in the mix.
REQUESTERS: list[tuple[str, str | None, int]] = [
    ("alice@acme.example", "360001", 3),  # Premier named contact (London): 24x7, 24x5
    ("JohnSmith_PartnerCompanyA@acme.example", "360001", 1),  # Premier partner contact
    ("hank@acme.example", "360001", 2),  # Priority site admin: 24x7, 24x5, business hours
    ("ann@globex.example", "360002", 3),  # 24/7 SaaS (New York), three escalation levels
    ("pat@initech.example", "360003", 2),  # pay-as-you-go hours (Sydney)
    ("ken@umbrella.example", None, 2),  # Select (Tokyo business hours)
    ("x@nowhere.example", None, 1),  # unknown: the default tier on UTC business hours
]
SEVERITIES = ([1, 2, 3, 4], [1, 2, 4, 3])
PRODUCTS = (["jira-software", "confluence", "bitbucket", "sourcetree", None], [5, 3, 2, 1, 1])
ENVIRONMENTS = (["production", "staging"], [4, 1])


# -- the open tickets and their clocks (setup) -----------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """What `decide()` makes of one kind of ticket: where its clock runs, how long for."""

    tier: str
    account: str | None
    calendar_name: str
    calendar: Calendar
    target: timedelta
    at_risk_fraction: float
    escalation_step: float
    levels: tuple[str, ...]
    span: timedelta  # the target's length on the wall clock, counted from the quiet instant

    def milestones(self, created: datetime) -> Milestones:
        return milestones(
            self.calendar,
            created,
            self.target,
            at_risk_fraction=self.at_risk_fraction,
            escalation_step=self.escalation_step,
            levels=self.levels,
        )


def plan_of(ticket: Ticket, rulebook: Rulebook) -> Plan | None:
    """The tier, calendar and target `decide()` picks (None: not covered, no clock)."""
    decision = decide(ticket, rulebook, QUIET)
    if decision.milestones is None or decision.calendar is None:
        return None
    tier = rulebook.tiers[decision.tier]
    account = rulebook.account(decision.account) if decision.account else None
    calendar = rulebook.calendar(decision.calendar, account)
    target = tier.targets[decision.severity].on(calendar.business_day)
    return Plan(
        tier=tier.id,
        account=decision.account,
        calendar_name=decision.calendar,
        calendar=calendar,
        target=target,
        at_risk_fraction=tier.at_risk_fraction,
        escalation_step=tier.escalation_step,
        levels=tier.escalation_levels,
        span=calendar.due(QUIET, target) - QUIET,
    )


@dataclass(frozen=True, slots=True)
class OpenTicket:
    clock: SlaClock
    ticket: Ticket
    plan: Plan
    milestones: Milestones


def open_tickets(n: int, seed: int, rulebook: Rulebook) -> list[OpenTicket]:
    """``n`` open tickets, none answered and none breached at the quiet instant, each
    with its clock as the worker recorded it and the sweeper moved it on since."""
    rng = random.Random(seed)
    plans: dict[tuple[Any, ...], Plan | None] = {}
    emails, weights = [r[:2] for r in REQUESTERS], [r[2] for r in REQUESTERS]
    out: list[OpenTicket] = []
    while len(out) < n:
        email, organization = rng.choices(emails, weights)[0]
        kind = (
            email,
            organization,
            rng.choices(*SEVERITIES)[0],
            rng.choices(*PRODUCTS)[0],
            rng.choices(*ENVIRONMENTS)[0],
        )
        ticket_id = str(200_000 + len(out))
        template = _ticket(ticket_id, QUIET, kind)
        if kind not in plans:
            plans[kind] = plan_of(template, rulebook)
        plan = plans[kind]
        if plan is None:
            continue  # a product the tier does not cover: no clock to sweep
        created, m = _created(plan, rng)
        ticket = _ticket(ticket_id, created, kind)
        out.append(OpenTicket(_clock(ticket, plan, m), ticket, plan, m))
    return out


def _ticket(ticket_id: str, created: datetime, kind: tuple[Any, ...]) -> Ticket:
    email, organization, severity, product, environment = kind
    return Ticket(
        id=ticket_id,
        created_at=created,
        requester=email,
        organization=OrganizationRef("zendesk", organization) if organization else None,
        severity=severity,
        product=product,
        environment=environment,
        vendor="zendesk",
    )


def _created(plan: Plan, rng: random.Random) -> tuple[datetime, Milestones]:
    """A creation time (whole seconds, as Zendesk stamps them) at which a share of the
    target drawn at random has passed by the quiet instant, short of the due time."""
    share = rng.random()
    for _ in range(100):
        seconds = max(1, math.ceil(share * plan.span.total_seconds()))
        created = QUIET - timedelta(seconds=seconds)
        m = plan.milestones(created)
        if m.due > QUIET:
            return created, m
        share *= rng.random()  # closed hours in between: the span overstates it; closer
    raise RuntimeError(f"no creation time keeps a {plan.target} target open at {QUIET}")


def _clock(ticket: Ticket, plan: Plan, m: Milestones) -> SlaClock:
    """The clock as `pipeline.lifecycle.track` records it, moved on to the quiet instant
    as `pipeline.sweep.move_of` moves it."""
    status = status_at(m, QUIET)
    upcoming = next_change(m, status)
    assert upcoming is not None and upcoming > QUIET, (ticket.id, status)
    snapshot = TicketEvent(
        tenant=TENANT.id,
        vendor="zendesk",
        event_id=f"bench-create-{ticket.id}",
        kind="ticket.created",
        ticket_id=ticket.id,
        ticket_key=ticket.id,
        occurred_at=ticket.created_at,
        ticket=ticket,
        actor=ticket.requester,
    )
    return SlaClock(
        tenant=TENANT.id,
        ticket=ticket.id,
        ticket_key=ticket.id,
        vendor="zendesk",
        account=plan.account,
        tier=plan.tier,
        calendar=plan.calendar_name,
        requester=ticket.requester,
        created_us=to_us(m.started),
        at_risk_us=to_us(m.at_risk),
        due_us=to_us(m.due),
        steps_us=tuple(to_us(s) for s in m.steps),
        levels=m.levels,
        stage=status.stage,
        level=status.level,
        next_check_us=to_us(upcoming),
        snapshot=snapshot.to_json(),
    )


def agree_with_decide(tickets: list[OpenTicket], rulebook: Rulebook, sample: int) -> int:
    """How many of an even sample of the tickets get the same milestones from a full
    `decide()` as the setup computed (the worker re-decides from these snapshots)."""
    step = max(1, len(tickets) // sample)
    picked = tickets[::step][:sample]
    return sum(1 for t in picked if decide(t.ticket, rulebook, QUIET).milestones == t.milestones)


def bulk_insert(path: str, clocks: list[SlaClock]) -> None:
    """Setup only: the rows `SqliteStore.complete` writes (its own `sla_values`), in
    one transaction instead of one per decided ticket."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        db.executemany(
            SLA_INSERT,
            (sla_values(c) for c in clocks),
        )
        db.execute("COMMIT")
    finally:
        db.close()


# -- the fake Zendesk and the worker ---------------------------------------------------


class FakeZendesk:
    """GET and PUT of /api/v2/tickets/{id}; a PUT changes what the next GET shows."""

    def __init__(self) -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self.gets = 0
        self.puts = 0
        self.puts_by_ticket: Counter[str] = Counter()

    def install(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.GET, TICKET_PATH, callback=self._get)
        mock.add_callback(responses.PUT, TICKET_PATH, callback=self._put)

    def _ticket(self, request: requests.PreparedRequest) -> dict[str, Any]:
        found = TICKET_PATH.fullmatch(request.url or "")
        assert found is not None, request.url
        ticket_id = found.group(1)
        return self.tickets.setdefault(
            ticket_id,
            {
                "id": int(ticket_id),
                "status": "open",
                "priority": None,
                "group_id": None,
                "tags": [],
                "custom_fields": [],
                "updated_at": "2026-03-11T14:00:00Z",
            },
        )

    def _get(self, request: requests.PreparedRequest) -> tuple[int, Mapping[str, str], str]:
        self.gets += 1
        return 200, {}, json.dumps({"ticket": self._ticket(request)})

    def _put(self, request: requests.PreparedRequest) -> tuple[int, Mapping[str, str], str]:
        self.puts += 1
        ticket = self._ticket(request)
        self.puts_by_ticket[str(ticket["id"])] += 1
        update = json.loads(request.body or b"{}")["ticket"]
        fields = {str(f["id"]): f["value"] for f in ticket["custom_fields"]}
        fields |= {str(f["id"]): f["value"] for f in update.get("custom_fields", [])}
        ticket["custom_fields"] = [{"id": int(k), "value": v} for k, v in fields.items()]
        for key in ("priority", "tags", "group_id"):
            if key in update:
                ticket[key] = update[key]
        return 200, {}, json.dumps({"ticket": ticket})


@dataclass(slots=True)
class Drain:
    events: int = 0
    calls: int = 0  # every HTTP request the worker sent, answered by the fake or not
    gets: int = 0
    puts: int = 0
    by_calls: Counter[int] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    most_puts_one_ticket: int = 0
    seconds: float = 0.0


class Pipeline:
    """The worker as `tierdesk worker` runs it (bundled mappings, the tenant's real
    Zendesk write-back) at a fixed time, against the fake Zendesk."""

    def __init__(self, store: SqliteStore, mock: responses.RequestsMock) -> None:
        self.store = store
        self.mappings = LiveMappings(None)
        if self.mappings.rulebook is None:
            raise SystemExit(f"the bundled mappings do not load: {self.mappings.problems}")
        connectors = Connectors(self.mappings)
        writer = connectors(TENANT)
        assert isinstance(writer, VendorWriteBack), writer
        # The fake answers at once with no rate limit: on the wall clock the tenant's
        # budget (180 requests/min) would make the drain time its own sleeps.
        writer._client._budget = Budget(1e12)
        self.connectors = connectors
        self.zendesk = FakeZendesk()
        self.zendesk.install(mock)
        self.mock = mock
        self.settings = Settings(tenants={TENANT.id: TENANT}, database=store.path)

    def drain(self, at: datetime, limit: int | None) -> Drain:
        """Run the worker at ``at`` over up to ``limit`` queued events (None: all)."""
        worker = Worker(
            self.store,
            self.mappings,
            self.settings,
            writeback=self.connectors,
            clock=at.timestamp,
            name="bench-worker",
        )
        tally = Drain()
        sent, gets, puts = len(self.mock.calls), self.zendesk.gets, self.zendesk.puts
        self.zendesk.puts_by_ticket.clear()
        started = time.perf_counter()
        while limit is None or tally.events < limit:
            calls = len(self.mock.calls)
            outcome = worker.run_once()
            if outcome is None:
                break
            tally.events += 1
            tally.states[outcome.state] += 1
            tally.by_calls[min(len(self.mock.calls) - calls, 3)] += 1
        tally.seconds = time.perf_counter() - started
        tally.calls = len(self.mock.calls) - sent
        tally.gets = self.zendesk.gets - gets
        tally.puts = self.zendesk.puts - puts
        counts = self.zendesk.puts_by_ticket.values()
        tally.most_puts_one_ticket = max(counts, default=0)
        return tally


# -- measuring ----------------------------------------------------------------------------


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median_time(fn: Callable[[], object], runs: int) -> float:
    return statistics.median(timed(fn)[0] for _ in range(runs))


def count_rows(path: str) -> int:
    db = sqlite3.connect(path)
    try:
        (n,) = db.execute("SELECT count(*) FROM sla").fetchone()
        return int(n)
    finally:
        db.close()


def read_every_row(path: str) -> int:
    db = sqlite3.connect(path)
    try:
        n = 0
        for _ in db.execute(f"SELECT {SLA_COLUMNS} FROM sla"):
            n += 1
        return n
    finally:
        db.close()


def stages(path: str) -> dict[str, tuple[str, int, int]]:
    """ticket -> (stage, level, due_us), read straight from the table."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT ticket, stage, level, due_us FROM sla").fetchall()
        return {str(t): (str(s), int(lv), int(d)) for t, s, lv, d in rows}
    finally:
        db.close()


def queued_events(path: str) -> int:
    db = sqlite3.connect(path)
    try:
        (n,) = db.execute(
            "SELECT count(*) FROM inbox WHERE kind = ? AND state = 'pending'", (SLA_CHANGED,)
        ).fetchone()
        return int(n)
    finally:
        db.close()


def utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stage(stage: str, level: int) -> str:
    return f"{stage} level {level}" if level else stage


# -- the run ------------------------------------------------------------------------------


def run(n: int, seed: int, drain_limit: int | None, work: Path) -> None:
    print(f"SLA sweep over {n:,} open tickets in a SQLite store (seed {seed})")
    store = SqliteStore(work / "tierdesk.sqlite3")
    try:
        setup(functools.partial(bulk_insert, store.path), n, seed)
        baseline = measure_baseline(store.path, n)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            pipeline = Pipeline(store, mock)
            quiet_sweep(store, pipeline, n, baseline)
            catch_up(store, pipeline, n, baseline, drain_limit)
    finally:
        store.close()


def setup(fill: Callable[[list[SlaClock]], None], n: int, seed: int) -> None:
    rulebook = load_mappings()
    build_s, tickets = timed(lambda: open_tickets(n, seed, rulebook))
    sample = min(len(tickets), 500)
    agreed = agree_with_decide(tickets, rulebook, sample)
    calendars = Counter(t.plan.calendar_name for t in tickets)
    distinct = len({id(t.plan.calendar) for t in tickets})  # a template bound to a zone
    tiers = Counter(t.plan.tier for t in tickets)
    at_quiet = Counter(_stage(t.clock.stage, t.clock.level) for t in tickets)
    earliest = min(t.ticket.created_at for t in tickets)
    latest = max(t.ticket.created_at for t in tickets)
    print(f"  setup: {n:,} clocks worked out in {build_s:.1f} s")
    print(f"    calendars: {_counts(calendars)} ({distinct} distinct by zone and holidays)")
    print(f"    tiers: {_counts(tiers)}")
    print(f"    created {utc(earliest)} to {utc(latest)}; at the quiet instant {_counts(at_quiet)}")
    verdict = "yes" if agreed == sample else "NO"
    print(f"    milestones agree with decide(): {agreed} of {sample} sampled tickets: {verdict}")
    insert_s, _ = timed(lambda: fill([t.clock for t in tickets]))
    print(f"    written in one bulk INSERT (setup only, not measured) in {insert_s:.1f} s")


@dataclass(frozen=True, slots=True)
class Baseline:
    count_s: float
    scan_s: float


def measure_baseline(path: str, n: int) -> Baseline:
    """On the same file and machine, just before the sweeps."""
    count_s = median_time(lambda: count_rows(path), 7)
    scan_s = median_time(lambda: read_every_row(path), 3)
    if not count_rows(path) == read_every_row(path) == n:
        raise RuntimeError(f"the sla table does not hold the {n:,} clocks set up")
    print("0. baseline (plain sqlite3, a new connection each time)")
    print(f"  SELECT count(*) FROM sla: {count_s * 1e3:.2f} ms (median of 7)")
    print(
        f"  reading every row of sla: {scan_s * 1e3:.0f} ms = {n / scan_s:,.0f} rows/s"
        " (median of 3)"
    )
    return Baseline(count_s, scan_s)


def quiet_sweep(store: SqliteStore, pipeline: Pipeline, n: int, baseline: Baseline) -> None:
    quiet_at = QUIET.timestamp()
    sweeper = Sweeper(store, batch=BATCH, clock=lambda: quiet_at, name="bench-sweeper")
    results = [sweeper.run_once()]
    quiet_s = median_time(lambda: results.append(sweeper.run_once()), QUIET_RUNS)
    examined = sum(r.examined for r in results)
    queued = sum(r.queued for r in results)
    leader = all(r.leader for r in results)
    calls = pipeline.drain(QUIET, None)
    rate = n / quiet_s
    print(f"1. quiet sweep at {utc(QUIET)}: no clock due, every next check in the future")
    print(
        f"  {len(results)} sweeps (leader: {'yes' if leader else 'NO'}): {examined} clocks"
        f" examined, {queued} events queued"
    )
    verdict = "met" if rate >= GOAL_QUIET_TICKETS_PER_S else "MISSED"
    print(
        f"  a sweep takes {quiet_s * 1e6:,.0f} µs (median of {QUIET_RUNS}) ="
        f" {rate:,.0f} tickets/s over {n:,} open tickets"
        f" (goal >= {GOAL_QUIET_TICKETS_PER_S:,}/s: {verdict})"
    )
    print(
        "  (it reads no clock: it renews the leader's lease and probes the next-check index,"
        " whatever the number of open tickets)"
    )
    print(
        f"  = {quiet_s / baseline.count_s:.3f}x SELECT count(*),"
        f" {quiet_s / baseline.scan_s:.4f}x reading every row"
    )
    verdict = "met" if calls.calls == 0 else "MISSED"
    print(
        f"  then the worker: {calls.events} events processed; API calls: {calls.calls}"
        f" (GET {calls.gets}, PUT {calls.puts}) (goal 0: {verdict})"
    )


def catch_up(
    store: SqliteStore, pipeline: Pipeline, n: int, baseline: Baseline, drain_limit: int | None
) -> None:
    before = stages(store.path)
    up = datetime.fromtimestamp(math.ceil(latest_next_check(store.path) / 1e6), UTC)
    up_at = up.timestamp()
    sweeper = Sweeper(store, batch=BATCH, clock=lambda: up_at, name="bench-sweeper")
    catch_s, result = timed(sweeper.run_once)
    first = led(result)
    after = stages(store.path)
    changed = sum(1 for t, s in after.items() if s[:2] != before[t][:2])
    queued = queued_events(store.path)
    print(
        f"2. catch-up sweep at {utc(up)}, after {(up - QUIET) / timedelta(hours=1):.1f} h"
        " down: the first instant past every clock's next check"
    )
    print(
        f"  one sweep: {first.examined:,} clocks examined in {catch_s:.2f} s ="
        f" {n / catch_s:,.0f} tickets/s; {math.ceil(first.examined / BATCH):,} batches"
        f" of {BATCH}, one transaction each"
    )
    print(f"  = {catch_s / baseline.scan_s:.1f}x reading every row of sla")
    moved_to = Counter(_stage(s[0], s[1]) for t, s in after.items() if s != before[t])
    verdict = "yes" if queued == changed == first.queued else "NO"
    print(
        f"  events queued: {queued:,} (the sweeper's count: {first.queued:,});"
        f" clocks changed: {changed:,} of {n:,}; queued == changed: {verdict}"
    )
    print(f"    changed to: {_counts(moved_to)}")
    again_s, again = timed(sweeper.run_once)
    second = led(again)
    still = queued_events(store.path)
    verdict = "yes" if second.queued == 0 and still == queued else "NO"
    print(
        f"  second sweep: {second.examined} examined, {second.queued} queued"
        f" ({still:,} events in the inbox) in {again_s * 1e3:.2f} ms; idempotent: {verdict}"
    )
    limit = drain_limit if drain_limit and drain_limit < queued else None
    drained = pipeline.drain(up, limit)
    report_drain(drained, limit is None)
    redecided = stages(store.path)
    kept = sum(1 for t, s in redecided.items() if s == after[t])
    third = led(sweeper.run_once())
    verdict = "yes" if kept == n and third.queued == 0 else "NO"
    print(
        f"    after the worker: clocks where the sweep put them {kept:,} of {n:,}; a sweep"
        f" queues {third.queued}: the worker agrees with the sweep: {verdict}"
    )
    per_event = drained.calls / drained.events if drained.events else 0.0
    per_minute = Policy().requests_per_minute
    hours = queued * per_event / per_minute / 60
    print(
        f"    at the tenant's request budget ({per_minute:.0f} requests/min), writing back"
        f" all {queued:,} changes at {per_event:.2f} calls each takes {hours:.1f} h"
    )


def report_drain(drained: Drain, everything: bool) -> None:
    per_event = drained.calls / drained.events if drained.events else 0.0
    spread = " / ".join(f"{drained.by_calls[k]:,}" for k in range(4))
    states = ", ".join(f"{v:,} {k}" for k, v in sorted(drained.states.items()))
    print(
        f"  the worker over {'all' if everything else 'the first'} {drained.events:,} queued"
        f" events ({states}) in {drained.seconds:.1f} s: API calls {drained.calls:,}"
        f" (GET {drained.gets:,}, PUT {drained.puts:,}) = {per_event:.2f} per event"
    )
    verdict = "yes" if drained.most_puts_one_ticket <= 1 else "NO"
    print(
        f"    events costing 0 / 1 / 2 / 3+ calls: {spread}; most PUTs on one ticket:"
        f" {drained.most_puts_one_ticket}; at most one write per change: {verdict}"
    )


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counter.items()))


def latest_next_check(path: str) -> int:
    """The latest next check of any clock (microseconds)."""
    db = sqlite3.connect(path)
    try:
        (last,) = db.execute("SELECT max(next_check_us) FROM sla").fetchone()
        return int(last)
    finally:
        db.close()


def led(result: SweepResult) -> SweepResult:
    if not result.leader:
        raise RuntimeError("the bench's sweeper lost its leadership")
    return result


GOAL_CATCH_UP_TICKETS_PER_S = 10_000


class ScaleBackend(Protocol):
    """A fresh store of one size for ``--scale``: made, filled, read and dropped."""

    name: str

    def fresh(self, n: int) -> Store: ...

    def fill(self, clocks: list[SlaClock]) -> None: ...

    def latest_next_check(self) -> int: ...

    def read_every_row(self) -> int: ...

    def drop(self) -> None: ...


class SqliteScale:
    name = "sqlite"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.path = ""

    def fresh(self, n: int) -> Store:
        self.path = str(self.work / f"scale-{n}.sqlite3")
        return SqliteStore(self.path)

    def fill(self, clocks: list[SlaClock]) -> None:
        bulk_insert(self.path, clocks)

    def latest_next_check(self) -> int:
        return latest_next_check(self.path)

    def read_every_row(self) -> int:
        return read_every_row(self.path)

    def drop(self) -> None:
        for leftover in self.work.glob(f"{Path(self.path).name}*"):
            leftover.unlink()  # 1M clocks and their events: about 1.5 GB on disk


class PostgresScale:
    """A fresh schema per size on ``server``; the clocks go in by COPY (setup only), as
    the rows `PostgresStore.complete_all` writes (its own `sla_values`)."""

    name = "postgres"

    def __init__(self, server: str) -> None:
        self.server = server
        self.schema = self.url = ""

    def fresh(self, n: int) -> Store:
        import psycopg

        from store.postgres import PostgresStore

        self.schema = f"sweep_{n}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.server, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {self.schema}")
        sep = "&" if "?" in self.server else "?"
        self.url = f"{self.server}{sep}options=-csearch_path%3D{self.schema}"
        return PostgresStore(self.url)

    def fill(self, clocks: list[SlaClock]) -> None:
        import psycopg

        from store.postgres import sla_values as pg_sla_values

        with psycopg.connect(self.url) as db, db.cursor() as cursor:
            with cursor.copy(f"COPY sla ({SLA_COLUMNS}) FROM STDIN") as copy:
                for clock in clocks:
                    copy.write_row(pg_sla_values(clock))
            db.commit()
            cursor.execute("ANALYZE sla")  # as autovacuum would soon after such a load

    def latest_next_check(self) -> int:
        import psycopg

        with psycopg.connect(self.url) as db:
            row = db.execute("SELECT max(next_check_us) FROM sla").fetchone()
        assert row is not None
        return int(row[0])

    def read_every_row(self) -> int:
        import psycopg

        with psycopg.connect(self.url) as db:
            return sum(1 for _ in db.execute(f"SELECT {SLA_COLUMNS} FROM sla"))

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {self.schema} CASCADE")


def scale(sizes: list[int], seed: int, backend: ScaleBackend) -> None:
    """The catch-up sweep alone at each size: cost per ticket as the table grows."""
    print(f"{backend.name}: catch-up sweep by size, batches of {BATCH:,} (seed {seed})")
    rows: list[tuple[int, float, float, SweepResult]] = []
    for n in sizes:
        store = backend.fresh(n)
        try:
            setup(backend.fill, n, seed)
            runs = 3 if n < 500_000 else 1
            scan_s = median_time(backend.read_every_row, runs)
            up = datetime.fromtimestamp(math.ceil(backend.latest_next_check() / 1e6), UTC)
            up_at = up.timestamp()
            sweeper = Sweeper(store, clock=functools.partial(float, up_at), name="bench-sweeper")
            catch_s, result = timed(sweeper.run_once)
            rows.append((n, catch_s, scan_s, led(result)))
            print(
                f"  {n:,} open tickets: {n / catch_s:,.0f} tickets/s"
                f" ({catch_s:.1f} s; {result.queued:,} events queued)"
            )
        finally:
            store.close()
            backend.drop()
    first_us = rows[0][1] / rows[0][0] * 1e6
    print("  size        tickets/s   µs/ticket   x the smallest   x reading every row")
    for n, catch_s, scan_s, result in rows:
        per_us = catch_s / n * 1e6
        assert result.examined == n and result.queued == n, result
        print(
            f"  {n:>9,}   {n / catch_s:>9,.0f}   {per_us:>9.1f}   {per_us / first_us:>14.2f}"
            f"   {catch_s / scan_s:>19.1f}"
        )
    n, catch_s, _, _ = rows[-1]
    costs = [catch_s / n for n, catch_s, _, _ in rows]
    flat = max(costs) / min(costs)
    verdict = "met" if n / catch_s >= GOAL_CATCH_UP_TICKETS_PER_S else "MISSED"
    print(
        f"  {backend.name} at {n:,}: {n / catch_s:,.0f} tickets/s (goal >="
        f" {GOAL_CATCH_UP_TICKETS_PER_S:,}: {verdict}); cost per ticket from the smallest to"
        f" the largest size within x{flat:.2f} (flat: {'yes' if flat <= 1.25 else 'NO'})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--small", action="store_true", help="2,000 tickets, all drained (a smoke run)"
    )
    parser.add_argument("--tickets", type=int, help="open tickets (default 100,000)")
    parser.add_argument(
        "--drain",
        type=int,
        help="queued events the worker takes after the catch-up (default 2,000; 0: all;"
        " --small: all)",
    )
    parser.add_argument("--seed", type=int, default=2026, help="the tickets' seed")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the store in DIR (a new directory)"
    )
    parser.add_argument(
        "--scale", action="store_true", help="the catch-up sweep alone at each of --sizes"
    )
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="open tickets for --scale, comma-separated (default 10000,100000,1000000)",
    )
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="the stores --scale measures (default both)",
    )
    parser.add_argument("--url", help="for --scale: a PostgreSQL server instead of a throwaway one")
    args = parser.parse_args(argv)
    if args.scale:
        sizes = [int(size) for size in args.sizes.split(",")]
        if args.store in ("sqlite", "both"):
            with tempfile.TemporaryDirectory() as scratch:
                scale(sizes, args.seed, SqliteScale(Path(scratch)))
        if args.store in ("postgres", "both"):
            with given_or_started(args.url) as server:
                scale(sizes, args.seed, PostgresScale(server))
        return
    n = args.tickets or (2000 if args.small else 100_000)
    drain = args.drain if args.drain is not None else (0 if args.small else 2000)
    if args.keep is not None:
        args.keep.mkdir(parents=True)  # a new one: old clocks would mix with these
        run(n, args.seed, drain or None, args.keep)
        return
    with tempfile.TemporaryDirectory() as scratch:
        run(n, args.seed, drain or None, Path(scratch))


if __name__ == "__main__":
    main()
