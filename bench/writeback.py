"""Vendor API calls per webhook event: the Zendesk write-back on a replayed stream.

    .venv/bin/python bench/writeback.py [--quick] [--events N] [--seed S] [--backlog]
                                        [--keep DIR]

Replays a recorded (seeded, deterministic) stream of 10,000 Zendesk trigger webhooks
(``--quick``: 1,000) over about 800 tickets of the bundled accounts through the real
pipeline: `normalize` (the trigger body parser); the inbox (`SqliteStore` in a temp
dir), each event put as the intake puts it (deduped on the body's hash, marked
decidable, held for ``Settings.coalesce_s``); the `Worker` with the bundled mappings;
and the `Connectors` write-back with its HTTP client, against a fake Zendesk served by
``responses``. The fake keeps every ticket: a GET shows what requesters, agents and
tierdesk's PUTs made of it; a PUT changes it, answers 200 and, as Zendesk's update
trigger does, sends the ticket back as a webhook 1 to 5 s later (an *echo*: one per
PUT, carrying the ticket as it was right after that PUT). Signatures and HTTP intake
are left out (bench/ingest.py measures those).

The stream, by category:

- create: a requester opens a ticket (severity, priority, product, environment and
  category filled in or not, as a form leaves them);
- agent_noop: an agent changes the status or the assignee, nothing tierdesk decides on;
- agent_change: an agent changes the priority, the severity field or the product;
- burst: 3 to 6 agent updates of one ticket 1-4 s apart (a third of them changes);
- echo: Zendesk's webhook for one of tierdesk's own PUTs.

Time is the stream's: it starts Monday 2026-03-02 08:00 UTC, and 10,000 events span
about a week, weekend included. The worker, the fake helpdesk and the HTTP client's
request budget (180 requests a minute) share that clock; on the wall clock the budget
would make this benchmark measure its own sleeps. Every webhook goes in at its time,
and the worker wakes each time an event's coalescing hold ends (a worker with no
backlog; processing takes no stream time). ``--backlog`` instead puts a burst in whole
before the worker may run (put several, then run until idle), as a busy worker meets it.
``--keep DIR`` keeps the inbox and audit trail for ``tierdesk history``.

Prints, per category and per kind of change: events, calls (GET, PUT), calls per
event, how many events cost 0, 1, 2 or 3+ calls, and what the worker did with them;
the total next to the naive count (one call per event; a naive read+write client
makes two) and the verdicts "goal <= 0.5 calls/event" and "echoes: 0 calls". Then
checks, for information: runs of PUTs caused by echoes, PUTs per ticket in 10 minutes
(Zendesk allows 30), PUTs that replaced the severity an agent had set, and how often
and how long a ticket with nothing left to process showed a write that does not match
a decision of its current state (with its SLA clock's stage as the store holds it: the
product writes the stage, and only a re-decision or a sweep moves it). Last, the
pipeline's own time and events/s on one thread (information, not a goal).
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
import responses

from connector.http import Budget, Policy
from entitlements.decide import decide, followed
from pipeline.connectors import Connectors, VendorWriteBack
from pipeline.lifecycle import response_of, status_of
from pipeline.worker import Worker
from pipeline.writeback import ticket_update
from store import NewEvent, SqliteStore
from webhooks.events import TicketEvent, own_write
from webhooks.live_mappings import LiveMappings
from webhooks.settings import FieldMap, Secret, Settings, Tenant
from webhooks.zendesk import TRIGGER_BODY, normalize

GOAL_CALLS_PER_EVENT = 0.5
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()  # a Monday
MEAN_GAP_S = 86.0  # between steps of the recorded stream: 10,000 events span about a week
ECHO_DELAY_S = (1.0, 5.0)  # from tierdesk's PUT to Zendesk's webhook for it (uniform)
TICKETS_PER_EVENT = 0.08  # 800 tickets for 10,000 events
CREATE_SHARE = 0.117  # of the recorded steps, while tickets are left to open
STEP_WEIGHTS = {"agent_noop": 70, "agent_change": 14, "burst": 7}
BURST_CHANGE_SHARE = 0.35

BASE_URL = "https://acme.zendesk.com"
API_USER = "tierdesk-api@support.example"
# The ticket fields and groups `tierdesk setup zendesk` would have created.
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
    email=API_USER,
    api_token=Secret("bench-api-token"),
    fields=FIELDS,
)
SEVERITY_FIELD = FIELDS.severity or ""
PRODUCT_FIELD = FIELDS.product or ""

# (email, Zendesk organization, weight): named contacts and others of the bundled accounts.
REQUESTERS: list[tuple[str, int | None, int]] = [
    ("alice@acme.example", 360001, 3),  # Premier named contact
    ("JohnSmith_PartnerCompanyA@acme.example", 360001, 1),  # Premier partner contact
    ("hank@acme.example", 360001, 2),  # Priority site admin
    ("bob@acme.example", 360001, 3),  # acme, not a named contact
    ("support@acme.example", 360001, 1),  # a shared mailbox
    ("ann@globex.example", 360002, 3),  # 24/7 SaaS
    ("raj@globex.example", 360002, 2),
    ("pat@initech.example", 360003, 2),  # pay-as-you-go hours
    ("lee@initech.example", 360003, 1),
    ("ken@umbrella.example", None, 2),  # Select; no Zendesk organization
    ("mia@umbrella-corp.example", None, 1),
]
PRIORITIES = ["urgent", "high", "normal", "low"]
SEVERITIES = ["1", "2", "3", "4"]
PRODUCTS = [
    "jira-software",
    "confluence",
    "jira-service-management",
    "bitbucket",
    "sourcetree",
    "trello",
    "opsgenie",
]
STATUSES = ["new", "open", "pending", "hold", "solved"]
AGENTS = list(range(9101, 9109))
CATEGORIES = ["create", "agent_noop", "agent_change", "burst", "echo"]
CHANGES = {
    "agent_noop": ("status", "assignee"),
    "agent_change": ("priority", "severity", "product"),
}
OUTCOMES = ["written", "unchanged", "coalesced", "superseded", "duplicate"]
TICKET_PATH = re.compile(re.escape(BASE_URL) + r"/api/v2/tickets/([0-9]+)")


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the recorded stream (a pure function of the seed) ---------------------------------


@dataclass(frozen=True, slots=True)
class Action:
    """One webhook-causing action of a requester or an agent."""

    at: float
    category: str  # create, agent_noop, agent_change, burst
    change: str  # created, status, assignee, priority, severity, product
    ticket: int
    draw: float  # picks "another value" against the ticket as the helpdesk has it then
    opened: dict[str, Any] | None = None  # the new ticket's fields (create only)


def recorded_stream(seed: int, tickets: int) -> Iterator[list[Action]]:
    """Steps of the stream: one action, or the actions of one burst. Endless: the
    replay stops after its number of events, echoes included."""
    rng = random.Random(seed)
    now = START
    opened: list[int] = []
    kinds, weights = list(STEP_WEIGHTS), list(STEP_WEIGHTS.values())
    while True:
        now += rng.expovariate(1 / MEAN_GAP_S)
        if len(opened) < tickets and (len(opened) < 20 or rng.random() < CREATE_SHARE):
            ticket = 100_001 + len(opened)
            opened.append(ticket)
            yield [Action(now, "create", "created", ticket, 0.0, _new_ticket(rng))]
            continue
        # Mostly the tickets opened lately, sometimes an old one.
        recent = opened[-100:] if rng.random() < 0.85 else opened
        ticket = rng.choice(recent)
        kind = rng.choices(kinds, weights)[0]
        if kind != "burst":
            yield [Action(now, kind, _change(rng, kind), ticket, rng.random())]
            continue
        burst = []
        for _ in range(rng.randint(3, 6)):
            kind = "agent_change" if rng.random() < BURST_CHANGE_SHARE else "agent_noop"
            burst.append(Action(now, "burst", _change(rng, kind), ticket, rng.random()))
            now += rng.uniform(1.0, 4.0)
        yield burst


def _change(rng: random.Random, kind: str) -> str:
    if kind == "agent_noop":
        return rng.choices(CHANGES[kind], [60, 40])[0]
    return rng.choices(CHANGES[kind], [40, 35, 25])[0]


def _new_ticket(rng: random.Random) -> dict[str, Any]:
    email, organization, _ = rng.choices(REQUESTERS, [w for *_, w in REQUESTERS])[0]
    categories = ["incident", "question", "administration", "addon-maintenance"]
    return {
        "requester": email,
        "organization_id": organization if organization and rng.random() < 0.85 else None,
        "severity": rng.choices(SEVERITIES, [1, 2, 4, 2])[0] if rng.random() < 0.45 else None,
        "priority": rng.choices(PRIORITIES, [1, 2, 4, 2])[0] if rng.random() < 0.6 else None,
        "product": rng.choices(PRODUCTS, [4, 3, 2, 1, 1, 1, 1])[0] if rng.random() < 0.9 else None,
        "environment": rng.choices(["production", "staging", "qa", None], [6, 2, 1, 1])[0],
        "category": rng.choices(categories, [3, 3, 1, 1])[0] if rng.random() < 0.3 else None,
        "tags": ["vip"] if rng.random() < 0.2 else [],
    }


def _other(values: list[str], current: str | None, draw: float) -> str:
    choices = [v for v in values if v != current]
    return choices[int(draw * len(choices))]


# -- the fake Zendesk -------------------------------------------------------------------


@dataclass(slots=True)
class HelpdeskTicket:
    id: int
    created_at: float
    updated_at: float
    requester: str
    organization_id: int | None
    priority: str | None
    status: str = "new"
    assignee_id: int | None = None
    group_id: int | None = None
    tags: list[str] = field(default_factory=list)
    fields: dict[str, str | None] = field(default_factory=dict)  # custom field id -> value
    by_agent: dict[str, str] = field(default_factory=dict)  # custom field id -> an agent's value

    def rest(self) -> dict[str, Any]:
        """The ticket as ``GET /api/v2/tickets/{id}`` shows it."""
        return {
            "id": self.id,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "priority": self.priority,
            "status": self.status,
            "assignee_id": self.assignee_id,
            "organization_id": self.organization_id,
            "group_id": self.group_id,
            "tags": sorted(self.tags),
            "custom_fields": [{"id": int(k), "value": v} for k, v in sorted(self.fields.items())],
        }


@dataclass(frozen=True, slots=True, order=True)
class Echo:
    at: float
    sent: int  # ties: in the order of the PUTs
    ticket: int = field(compare=False)
    body: bytes = field(compare=False)


class FakeZendesk:
    """Tickets as Zendesk holds them, its trigger webhooks, and its REST API."""

    def __init__(self, clock: SimClock, seed: int) -> None:
        self.clock = clock
        self.delays = random.Random(seed + 1)  # webhook delivery times vary
        self.tickets: dict[int, HelpdeskTicket] = {}
        self.in_flight: list[Echo] = []  # webhooks for tierdesk's PUTs: a heap by time
        self.gets = 0
        self.puts = 0
        self.put_times: dict[int, list[float]] = {}
        # PUTs that replaced the severity an agent had set: (ticket, agent's, tierdesk's)
        self.undone: list[tuple[int, str, str]] = []

    def install(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.GET, TICKET_PATH, callback=self._get)
        mock.add_callback(responses.PUT, TICKET_PATH, callback=self._put)

    # what requesters and agents do, and the webhook each sends

    def apply(self, action: Action) -> bytes:
        if action.opened is not None:
            o = action.opened
            opened = {
                SEVERITY_FIELD: o["severity"],
                PRODUCT_FIELD: o["product"],
                FIELDS.environment or "": o["environment"],
                FIELDS.category or "": o["category"],
            }
            self.tickets[action.ticket] = HelpdeskTicket(
                id=action.ticket,
                created_at=action.at,
                updated_at=action.at,
                requester=o["requester"],
                organization_id=o["organization_id"],
                priority=o["priority"],
                tags=list(o["tags"]),
                fields={k: v for k, v in opened.items() if k and v},
            )
            return self.webhook(action.ticket, "ticket.created", o["requester"])
        t = self.tickets[action.ticket]
        if action.change == "status":
            t.status = _other(STATUSES, t.status, action.draw)
        elif action.change == "assignee":
            current = str(t.assignee_id) if t.assignee_id else None
            t.assignee_id = int(_other([str(a) for a in AGENTS], current, action.draw))
        elif action.change == "priority":
            t.priority = _other(PRIORITIES, t.priority, action.draw)
        else:
            key = SEVERITY_FIELD if action.change == "severity" else PRODUCT_FIELD
            values = SEVERITIES if action.change == "severity" else PRODUCTS
            t.fields[key] = t.by_agent[key] = _other(values, t.fields.get(key), action.draw)
        t.updated_at = action.at
        agent = AGENTS[int(action.draw * 1000) % len(AGENTS)]
        return self.webhook(action.ticket, "ticket.updated", f"agent{agent}@support.example")

    def webhook(self, ticket: int, event: str, updated_by: str) -> bytes:
        """tierdesk's trigger body (`TRIGGER_BODY`) as Zendesk fills it in now."""
        t = self.tickets[ticket]
        values = {
            "{{ticket.id}}": str(t.id),
            "{{ticket.created_at_with_timestamp}}": iso(t.created_at),
            "{{ticket.updated_at_with_timestamp}}": iso(t.updated_at),
            "{{ticket.requester.email}}": t.requester,
            "{{ticket.organization.id}}": str(t.organization_id or ""),
            "{{ticket.priority}}": (t.priority or "").capitalize(),
            "{{ticket.status}}": "Open",
            "{{current_user.email}}": updated_by,
        }
        for name, field_id in (
            ("SEVERITY", FIELDS.severity),
            ("PRODUCT", FIELDS.product),
            ("ENVIRONMENT", FIELDS.environment),
            ("CATEGORY", FIELDS.category),
            ("TIME_SPENT", FIELDS.time_spent),
        ):
            placeholder = f"{{{{ticket.ticket_field_{name}_FIELD_ID}}}}"
            values[placeholder] = t.fields.get(field_id or "") or ""
        body = _fill(TRIGGER_BODY, values)
        body["event"] = event
        return json.dumps(body).encode()

    # the REST API tierdesk calls

    def _get(self, request: requests.PreparedRequest) -> tuple[int, Mapping[str, str], str]:
        self.gets += 1
        t = self.tickets[_ticket_of(request)]
        return 200, {}, json.dumps({"ticket": t.rest()})

    def _put(self, request: requests.PreparedRequest) -> tuple[int, Mapping[str, str], str]:
        self.puts += 1
        t = self.tickets[_ticket_of(request)]
        update = json.loads(request.body or b"{}")["ticket"]
        for custom in update.get("custom_fields", []):
            key, value = str(custom["id"]), custom["value"] or None
            if key in t.by_agent and t.fields.get(key) == t.by_agent[key] != value:
                self.undone.append((t.id, t.by_agent[key], str(value)))
            t.fields[key] = value
        if "priority" in update:
            t.priority = update["priority"]
        if "tags" in update:
            t.tags = list(update["tags"])
        if "group_id" in update:
            t.group_id = int(update["group_id"])
        now = self.clock()
        t.updated_at = max(now, t.updated_at + 1)
        self.put_times.setdefault(t.id, []).append(now)
        # Zendesk's update trigger fires for API updates too: tierdesk hears its own write.
        echo = self.webhook(t.id, "ticket.updated", API_USER)
        at = now + self.delays.uniform(*ECHO_DELAY_S)
        heapq.heappush(self.in_flight, Echo(at, self.puts, t.id, echo))
        return 200, {}, json.dumps({"ticket": t.rest()})

    def busiest_window(self, window_s: float = 600.0) -> tuple[int, int]:
        """(most PUTs on one ticket within ``window_s``, that ticket)."""
        best, which = 0, 0
        for ticket, times in self.put_times.items():
            start = 0
            for end, at in enumerate(times):
                while times[start] <= at - window_s:
                    start += 1
                if end - start + 1 > best:
                    best, which = end - start + 1, ticket
        return best, which


def _fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, str) and template.startswith("{{"):
        return values[template]
    return template


def _ticket_of(request: requests.PreparedRequest) -> int:
    found = TICKET_PATH.fullmatch(request.url or "")
    assert found is not None, request.url
    return int(found.group(1))


# -- the replay -------------------------------------------------------------------------


class SimClock:
    """The stream's time, for the worker, the fake helpdesk and the request budget."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def advance_to(self, at: float) -> None:
        self.now = max(self.now, at)

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


@dataclass(slots=True)
class Tally:
    events: int = 0
    calls: int = 0
    gets: int = 0
    puts: int = 0
    by_calls: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


class Replay:
    """Feeds the stream to the pipeline and counts the vendor calls of each event."""

    def __init__(
        self, work: Path, clock: SimClock, mock: responses.RequestsMock, seed: int
    ) -> None:
        self.clock = clock
        self.mock = mock
        self.store = SqliteStore(work / "tierdesk.sqlite3")
        self.mappings = LiveMappings(None)
        if self.mappings.rulebook is None:
            raise SystemExit(f"the bundled mappings do not load: {self.mappings.problems}")
        connectors = Connectors(self.mappings)
        self.settings = Settings(tenants={TENANT.id: TENANT}, database=self.store.path)
        self.worker = Worker(
            self.store, self.mappings, self.settings, writeback=connectors, clock=clock, name="b"
        )
        writer = connectors(TENANT)
        assert isinstance(writer, VendorWriteBack), writer
        # The tenant's request budget on the stream's clock: the one change to the pipeline.
        writer._client._budget = Budget(
            Policy().requests_per_minute, clock=clock, sleep=clock.sleep
        )
        self.zendesk = FakeZendesk(clock, seed)
        self.zendesk.install(mock)
        self.db = sqlite3.connect(work / "tierdesk.sqlite3")
        self.by_category: dict[str, Tally] = {}
        self.by_change: dict[tuple[str, str], Tally] = {}
        self.queued: dict[int, tuple[str, str, int]] = {}  # inbox id -> category, change, ticket
        self.states: Counter[str] = Counter()
        self.echo_runs: dict[int, int] = {}  # ticket -> echo-caused PUTs in a row
        self.longest_echo_run = (0, 0)  # (PUTs, ticket)
        self.delivered = 0
        self.pipeline_s = 0.0  # in the intake's steps and the worker, fake HTTP included
        # Tickets whose last write did not match their state once settled: since when.
        self.mismatched: dict[int, float] = {}
        self.mismatch_count = 0
        self.mismatch_s = 0.0
        self.longest_mismatch = (0.0, 0)  # (seconds, ticket)
        self.mismatch_examples: dict[int, list[str]] = {}
        self.still_mismatched = 0
        self.severity_lost: list[int] = []  # tickets

    def close(self) -> None:
        self.db.close()
        self.store.close()

    def deliver(self, body: bytes, category: str, change: str, at: float) -> None:
        """What the intake does with a trigger webhook once its signature is checked:
        normalise, dedupe on the body's hash, store durably, hold for coalescing."""
        self.clock.advance_to(at)
        self.delivered += 1
        started = time.perf_counter()
        event = normalize(json.loads(body), TENANT, f"bench-{self.delivered}")
        assert isinstance(event, TicketEvent), event
        event_id = "sha256:" + hashlib.sha256(body).hexdigest()
        fresh = self.store.put(
            NewEvent(
                tenant=TENANT.id,
                event_id=event_id,
                vendor="zendesk",
                kind=event.kind,
                ticket=event.ticket_id,
                ticket_key=event.ticket_key,
                payload=body,
                normalized=replace(event, event_id=event_id).to_json(),
                decidable=(
                    event.ticket is not None
                    and not event.partial
                    and not own_write(event, TENANT.api_users)
                ),
                occurred_at=event.occurred_at.timestamp(),
            ),
            self.clock(),
            hold_s=self.settings.coalesce_s,
        )
        self.pipeline_s += time.perf_counter() - started
        for tally in self._tallies(category, change):
            tally.events += 1
            if not fresh:
                tally.by_calls[0] += 1
                tally.outcomes["duplicate"] += 1
        if fresh:
            (row,) = self.db.execute(
                "SELECT id FROM inbox WHERE tenant = ? AND event_id = ?", (TENANT.id, event_id)
            ).fetchone()
            self.queued[row] = (category, change, int(event.ticket_id))

    def next_due(self) -> float | None:
        """When the worker can next take an event: the earliest hold that ends among the
        open events with nothing earlier of their ticket still open."""
        (due,) = self.db.execute(
            "SELECT min(e.available_at) FROM inbox AS e"
            " WHERE e.state IN ('pending', 'leased') AND e.state = 'pending'"
            " AND NOT EXISTS (SELECT 1 FROM inbox AS o WHERE o.tenant = e.tenant"
            " AND o.ticket = e.ticket AND o.state IN ('pending', 'leased') AND o.id < e.id)"
        ).fetchone()
        return None if due is None else float(due)

    def work_at(self, due: float) -> None:
        """The worker wakes at ``due`` and takes everything it can."""
        self.clock.advance_to(due)
        if not self._run_until_idle():
            raise RuntimeError(f"the worker took nothing at {iso(due)}, though an event was due")

    def _run_until_idle(self) -> int:
        processed = 0
        while True:
            calls, gets, puts = len(self.mock.calls), self.zendesk.gets, self.zendesk.puts
            started = time.perf_counter()
            outcome = self.worker.run_once()
            self.pipeline_s += time.perf_counter() - started
            if outcome is None:
                return processed
            processed += 1
            self.states[outcome.state] += 1
            category, change, ticket = self.queued[outcome.event]
            if outcome.state in ("done", "dead"):
                del self.queued[outcome.event]
            spent = len(self.mock.calls) - calls
            what = self._written_outcome(outcome.event)
            for tally in self._tallies(category, change):
                tally.calls += spent
                tally.gets += self.zendesk.gets - gets
                tally.puts += self.zendesk.puts - puts
                tally.by_calls[min(spent, 3)] += 1
                tally.outcomes[what] += 1
            if category != "echo":
                self.echo_runs[ticket] = 0
            elif self.zendesk.puts > puts:
                run = self.echo_runs.get(ticket, 0) + 1
                self.echo_runs[ticket] = run
                self.longest_echo_run = max(self.longest_echo_run, (run, ticket))
            self._settled(ticket)

    def _written_outcome(self, event: int) -> str:
        """The write-back's outcome in the event's audit row (else the row's outcome)."""
        row = self.db.execute(
            "SELECT outcome, written FROM audit WHERE event = ? ORDER BY id DESC LIMIT 1",
            (event,),
        ).fetchone()
        if row is None:
            return "not audited"
        return str(json.loads(row[1])["outcome"]) if row[1] else str(row[0])

    def _tallies(self, category: str, change: str) -> list[Tally]:
        return [
            self.by_category.setdefault(category, Tally()),
            self.by_category.setdefault("all", Tally()),
            self.by_change.setdefault((category, change), Tally()),
        ]

    def _settled(self, ticket: int) -> None:
        """When a ticket has nothing left to process (no open event, no echo on its way),
        does tierdesk's last write match a decision of the ticket as it is now? Times
        how long it does not."""
        open_event = self.db.execute(
            "SELECT 1 FROM inbox WHERE tenant = ? AND ticket = ?"
            " AND state IN ('pending', 'leased') LIMIT 1",
            (TENANT.id, str(ticket)),
        ).fetchone()
        if open_event or any(echo.ticket == ticket for echo in self.zendesk.in_flight):
            return
        differ = self.differences(ticket)
        since = self.mismatched.get(ticket)
        if differ and since is None:
            self.mismatched[ticket] = self.clock()
            self.mismatch_count += 1
            self.mismatch_examples.setdefault(ticket, differ)
        elif not differ and since is not None:
            self._close_mismatch(ticket, since)

    def _close_mismatch(self, ticket: int, since: float) -> None:
        del self.mismatched[ticket]
        lasted = self.clock() - since
        self.mismatch_s += lasted
        self.longest_mismatch = max(self.longest_mismatch, (lasted, ticket))

    def differences(self, ticket: int) -> list[str]:
        """What of tierdesk's last write differs from a decision of the ticket as the
        helpdesk has it now (the team aside: it follows the clock, not the ticket)."""
        rulebook = self.mappings.rulebook
        assert rulebook is not None
        body = json.loads(self.zendesk.webhook(ticket, "ticket.updated", "check@example"))
        parsed = normalize(body, TENANT, "check")
        assert isinstance(parsed, TicketEvent)
        event = TicketEvent.from_json(parsed.to_json())  # as the worker reads it
        assert event.ticket is not None
        decision = decide(event.ticket, rulebook, self.clock.utc())
        # The product writes where the ticket's SLA clock stands (`followed`), as the
        # store holds it: the stage moves only when the ticket is decided again or a
        # sweep moves it (no sweeper runs here; bench/sweep.py measures it). A bare
        # `decide` has no stage at all, which every write then "missed".
        clock = self.store.sla_clock(TENANT.id, str(ticket))
        if clock is not None:
            decision = followed(decision, status_of(clock), response_of(clock), rulebook.tag_prefix)
        wanted = ticket_update(decision)
        last = self.store.last_written(TENANT.id, str(ticket), "zendesk")
        written = json.loads(last) if last else {}
        return [k for k in wanted if k != "team" and wanted[k] != written.get(k)]

    def finish(self) -> None:
        """At the end of the stream: close the open mismatches, and count the tickets
        whose severity field no longer shows what an agent set last."""
        self.still_mismatched = len(self.mismatched)
        for ticket, since in list(self.mismatched.items()):
            self._close_mismatch(ticket, since)
        for t in self.zendesk.tickets.values():
            agents = t.by_agent.get(SEVERITY_FIELD)
            if agents is not None and t.fields.get(SEVERITY_FIELD) != agents:
                self.severity_lost.append(t.id)


def replay(
    events: int, tickets: int, seed: int, *, backlog: bool, keep: Path | None
) -> tuple[Replay, float, int]:
    """Replay ``events`` webhooks; (the tallies, wall seconds, echoes still in flight).
    The inbox and audit trail go to a temp dir, or stay in ``keep``."""
    clock = SimClock(START)
    with (
        tempfile.TemporaryDirectory() as scratch,
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        run = Replay(keep or Path(scratch), clock, mock, seed)
        zendesk = run.zendesk
        stream = recorded_stream(seed, tickets)
        step, position = next(stream), 0
        started = time.perf_counter()
        # One moment at a time: the next webhook (an agent's or an echo), or the worker
        # waking for an event whose coalescing hold ended, whichever comes first.
        while run.delivered < events:
            action = step[position]
            echo = zendesk.in_flight[0] if zendesk.in_flight else None
            arrival = min(action.at, echo.at) if echo else action.at
            due = run.next_due()
            # --backlog: the worker gets to a burst only once all of it is in.
            if due is not None and due <= arrival and not (backlog and position > 0):
                run.work_at(due)
            elif echo is not None and echo.at <= action.at:
                heapq.heappop(zendesk.in_flight)
                run.deliver(echo.body, "echo", "echo", echo.at)
            else:
                run.deliver(zendesk.apply(action), action.category, action.change, action.at)
                position += 1
                if position == len(step):
                    step, position = next(stream), 0
        while (due := run.next_due()) is not None:
            run.work_at(due)
        wall = time.perf_counter() - started
        run.finish()
        run.close()
    return run, wall, len(zendesk.in_flight)


# -- the report -------------------------------------------------------------------------


def _row(label: str, t: Tally, total: int) -> str:
    spread = " ".join(f"{t.by_calls[k]:>5}" for k in range(4))
    per_event = t.calls / t.events if t.events else 0.0
    return (
        f"  {label:<24} {t.events:>6} {t.events / total:6.1%} {t.calls:>6} {per_event:>7.3f}"
        f" {t.gets:>6} {t.puts:>6}  {spread}"
    )


def _outcome_row(label: str, t: Tally) -> str:
    known = " ".join(f"{t.outcomes[k]:>10}" for k in OUTCOMES)
    other = sum(v for k, v in t.outcomes.items() if k not in OUTCOMES)
    return f"  {label:<24} {known} {other:>6}"


def report(run: Replay, wall: float, in_flight: int, seed: int, backlog: bool) -> None:
    everything = run.by_category["all"]
    n = everything.events
    tickets = len(run.zendesk.tickets)
    mode = (
        "a burst is put whole, then the worker runs until idle (--backlog)"
        if backlog
        else "each event is put at its time and taken as soon as the inbox lets it"
    )
    print(f"write-back API calls on a replayed Zendesk stream: {n:,} events, seed {seed}")
    print(f"  {tickets:,} tickets of the bundled accounts; {mode}")
    print(
        f"  {'category':<24} {'events':>6} {'share':>6} {'calls':>6} {'/event':>7}"
        f" {'GET':>6} {'PUT':>6}  events costing 0 / 1 / 2 / 3+ calls"
    )
    for category in CATEGORIES:
        if category in run.by_category:
            print(_row(category, run.by_category[category], n))
    print(_row("all", everything, n))
    print("  by what the event changed:")
    for (category, change), tally in sorted(run.by_change.items()):
        if category in ("agent_noop", "agent_change", "burst"):
            print(_row(f"  {category}: {change}", tally, n))
    print("  what the worker did:")
    print(f"  {'category':<24} " + " ".join(f"{k:>10}" for k in OUTCOMES) + f" {'other':>6}")
    for category in [*CATEGORIES, "all"]:
        if category in run.by_category:
            print(_outcome_row(category, run.by_category[category]))
    print("  (unchanged: no call, or a GET that found the ticket already showing the decision)")
    per_event = everything.calls / n
    print(
        f"  naive: one call per event = {n:,} calls"
        f" (a naive client reading before each write: 2 per event = {2 * n:,})"
    )
    print(
        f"  tierdesk: {everything.calls:,} calls ({everything.gets:,} GET, {everything.puts:,} PUT)"
        f" = {per_event:.3f} calls per event, {everything.calls / n:.0%} of the naive count"
        f" ({everything.calls / (2 * n):.0%} of read+write)"
    )
    verdict = "met" if per_event <= GOAL_CALLS_PER_EVENT else "MISSED"
    print(f"  goal <= {GOAL_CALLS_PER_EVENT} calls/event: {verdict} ({per_event:.3f})")
    echoes = run.by_category.get("echo", Tally())
    verdict = "met" if echoes.calls == 0 else "MISSED"
    costly = echoes.events - echoes.by_calls[0]
    print(
        f"  echoes: 0 calls: {verdict} ({echoes.events:,} echoes of tierdesk's PUTs,"
        f" {echoes.calls:,} calls; {costly:,} echoes cost any)"
    )
    print("  checks (information):")
    length, ticket = run.longest_echo_run
    where = f" (ticket {ticket})" if length else ""
    print(f"    most PUTs caused by echoes in a row on one ticket: {length}{where}")
    busiest, ticket = run.zendesk.busiest_window()
    print(
        f"    most PUTs on one ticket within 10 minutes: {busiest} (ticket {ticket}; Zendesk: 30)"
    )
    undone = run.zendesk.undone
    examples = ", ".join(f"ticket {t}: {a} -> {w}" for t, a, w in undone[:4])
    print(
        f"    PUTs that replaced the severity an agent had set: {len(undone)}"
        + (f" (e.g. {examples})" if undone else "")
    )
    lost = run.severity_lost
    print(
        f"    tickets whose severity field ends up not showing what an agent set last:"
        f" {len(lost)}" + (f" (e.g. {', '.join(map(str, lost[:4]))})" if lost else "")
    )
    lasted, ticket = run.longest_mismatch
    examples = ", ".join(f"{t}: {'/'.join(d)}" for t, d in list(run.mismatch_examples.items())[:3])
    print(
        f"    times a ticket settled with tierdesk's last write not matching its state:"
        f" {run.mismatch_count}"
        + (
            f" ({run.mismatch_s / 3600:.1f} h in all; longest {lasted / 60:.0f} min, ticket"
            f" {ticket}; {run.still_mismatched} still at the end)\n      e.g. {examples}"
            if run.mismatch_count
            else ""
        )
    )
    not_done = ", ".join(f"{v} {k}" for k, v in sorted(run.states.items()) if k != "done")
    print(
        f"    worker outcomes: {run.states['done']:,} done{', ' + not_done if not_done else ''};"
        f" {in_flight} echoes in flight when the stream ended"
    )
    days = (run.clock() - START) / 86400
    print(
        f"    stream time {days:.1f} days; request budget waits {run.clock.slept:.1f} s"
        " (180 requests/min on the stream's clock)"
    )
    print(
        f"  pipeline (information, not a goal): {n:,} events in {run.pipeline_s:.1f} s ="
        f" {n / run.pipeline_s:,.0f} events/s on one thread (normalise, durable put, claim,"
        f" decide, fake HTTP, audit); {wall:.1f} s wall with the benchmark's own bookkeeping"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1,000 events (a smoke run)")
    parser.add_argument("--events", type=int, help="events to replay (default 10,000)")
    parser.add_argument("--seed", type=int, default=2026, help="the stream's seed")
    parser.add_argument(
        "--backlog", action="store_true", help="put each burst whole before the worker runs"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the inbox and audit trail in DIR/tierdesk.sqlite3 (a new directory), for"
        " TIERDESK_DATABASE=DIR/tierdesk.sqlite3 tierdesk history --ticket ID",
    )
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True)  # a new one: an old inbox would mix with this run
    events = args.events or (1000 if args.quick else 10_000)
    tickets = max(20, round(events * TICKETS_PER_EVENT))
    run, wall, in_flight = replay(events, tickets, args.seed, backlog=args.backlog, keep=args.keep)
    report(run, wall, in_flight, args.seed, args.backlog)


if __name__ == "__main__":
    main()
