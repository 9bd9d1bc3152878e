"""What one event costs the worker in the store, counted (never timed), on every backend.

Issue 12's budget: at most 6 SQL statements and 1 write transaction per event (there
were 22 and 3), one rendering of the decision (there were 5), and no write to the hours
ledger for a snapshot that names the account its ticket already has. A backlog like
bench/drain.py's (per ticket: its creation, two agent updates that change nothing, a
severity raised, an agent's first reply) is drained by the real `Worker` with the
ledger open as ``tierdesk worker`` opens it; the statements are counted on the worker's
own connections: sqlite3's trace callback, and on PostgreSQL a counting cursor (every
statement) and the connection's transactions (BEGIN and COMMIT, a round trip each).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from entitlements.decide import Decision
from entitlements.tickets import OrganizationRef, Ticket
from pipeline.worker import Worker
from store import NewEvent, Store, open_ledger
from tests.store.backends import BACKENDS, Backend
from webhooks.events import Comment, TicketEvent
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings, Tenant

TENANT = Tenant(id="acme-zd", vendor="zendesk", email="tierdesk-api@support.example")
SETTINGS = Settings(tenants={TENANT.id: TENANT}, lease_s=60.0, max_attempts=5)
START = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
NOW = (START + timedelta(hours=2)).timestamp()
AGENT = "sam@support.example"
TICKETS = 40
REQUESTERS = [  # every kind of account: named contacts, hours, none known
    ("alice@acme.example", "360001"),
    ("ann@globex.example", "360002"),
    ("pat@initech.example", "360003"),
    ("ken@umbrella.example", None),
    ("x@nowhere.example", None),
]
MAX_STATEMENTS = 6.0
MAX_TRANSACTIONS = 1.0


@dataclass
class Counts:
    statements: Counter[str] = field(default_factory=Counter)  # by first words
    transactions: int = 0

    def add(self, sql: str) -> None:
        words = " ".join(sql.split()[:3]).upper()
        self.statements[words] += 1
        if words.startswith("BEGIN"):
            self.transactions += 1

    def total(self) -> int:
        return sum(self.statements.values())


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with BACKENDS[request.param](request, tmp_path) as made:
        try:
            yield made
        finally:
            for store in made.opened:
                store.close()


@pytest.fixture(scope="module")
def bundled() -> LiveMappings:
    mappings = LiveMappings(None)
    assert mappings.rulebook is not None, mappings.problems
    return mappings


def count(backend: Backend, target: Any, counts: Counts) -> None:
    """Count every statement ``target`` (a store or a ledger) sends on this thread."""
    db = target._db()
    if backend.name == "sqlite":
        last = [""]

        def traced(sql: str) -> None:
            # SQLite traces a trigger's subprogram (its WHEN too) with its statement's
            # expanded text again, right after it: the hours ledger's running totals.
            if not sql.startswith("PRAGMA") and sql != last[0]:
                counts.add(sql)
            last[0] = sql

        db.set_trace_callback(traced)
        return
    import psycopg

    class Counting(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            counts.add(str(query))
            return super().execute(query, *args, **kwargs)

        def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            counts.add(str(query))
            return super().executemany(query, *args, **kwargs)

    db.cursor_factory = Counting
    begin = db.transaction

    @contextlib.contextmanager
    def transaction(*args: Any, **kwargs: Any) -> Iterator[Any]:
        counts.add("BEGIN")
        with begin(*args, **kwargs) as tx:
            yield tx
        counts.add("COMMIT")

    db.transaction = transaction


def backlog() -> list[TicketEvent]:
    events: list[tuple[datetime, TicketEvent]] = []
    for n in range(TICKETS):
        email, organization = REQUESTERS[n % len(REQUESTERS)]
        created = START + timedelta(seconds=37 * n)
        ticket = Ticket(
            id=str(7000 + n),
            created_at=created,
            requester=email,
            organization=OrganizationRef("zendesk", organization) if organization else None,
            severity=3,
            priority="normal",
            product="jira-software",
            environment="production",
            vendor="zendesk",
        )
        steps: list[tuple[str, Ticket, str, Comment | None]] = [
            ("ticket.created", ticket, email, None),
            ("ticket.updated", ticket, AGENT, None),
            ("ticket.updated", ticket, AGENT, None),
            ("ticket.updated", replace(ticket, severity=1), AGENT, None),
            ("comment.created", ticket, AGENT, Comment(f"c{n}", True, AGENT, by_agent=True)),
        ]
        for i, (kind, state, actor, comment) in enumerate(steps):
            at = created + timedelta(minutes=3 * i)
            events.append(
                (
                    at,
                    TicketEvent(
                        tenant=TENANT.id,
                        vendor="zendesk",
                        event_id=f"cost-{n}-{i}",
                        kind=kind,
                        ticket_id=ticket.id,
                        ticket_key=ticket.id,
                        occurred_at=at,
                        ticket=None if comment else state,
                        actor=actor,
                        comment=comment,
                    ),
                )
            )
    return [event for _, event in sorted(events, key=lambda pair: pair[0])]


def queue(store: Store, events: list[TicketEvent]) -> None:
    for event in events:
        assert store.put(
            NewEvent(
                tenant=event.tenant,
                event_id=event.event_id,
                vendor=event.vendor,
                kind=event.kind,
                ticket=event.ticket_id,
                ticket_key=event.ticket_key,
                payload=b"{}",
                normalized=event.to_json(),
                decidable=event.ticket is not None,
                occurred_at=event.occurred_at.timestamp(),
            ),
            NOW - 60,
        )


def drain(store: Store, worker: Worker) -> int:
    processed = 0
    while outcomes := worker.run_batch():
        assert {o.state for o in outcomes} == {"done"}
        processed += len(outcomes)
    return processed


def test_an_event_costs_at_most_6_statements_and_1_write_transaction(
    backend: Backend, bundled: LiveMappings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.open()
    ledger = open_ledger(backend.url)
    events = backlog()
    queue(store, events)
    worker = Worker(store, bundled, SETTINGS, clock=lambda: NOW, name="cost", ledger=ledger)
    counts = Counts()
    count(backend, store, counts)
    count(backend, ledger, counts)
    rendered = 0
    to_json = Decision.to_json

    def counted_to_json(decision: Decision, locale: str = "en") -> dict[str, object]:
        nonlocal rendered
        rendered += 1
        return to_json(decision, locale)

    monkeypatch.setattr(Decision, "to_json", counted_to_json)
    try:
        assert drain(store, worker) == len(events)
    finally:
        ledger.close()

    per_event = counts.total() / len(events)
    assert per_event <= MAX_STATEMENTS, (per_event, counts.statements.most_common())
    assert counts.transactions / len(events) <= MAX_TRANSACTIONS, counts.transactions
    decided = sum(1 for row in store.history("7000") if row.decision)
    assert decided == 5  # each of its events: the reply re-decides it from its snapshot
    assert rendered == len(events)  # every event decided, each decision rendered once
    # The ledger's link is written when a ticket first names an account, never again:
    # every later snapshot names the same account.
    links = counts.statements["INSERT INTO LEDGER_TICKET"]
    accounts = {ledger.account_of(TENANT.id, str(7000 + n)) for n in range(TICKETS)}
    assert 0 < links <= TICKETS and None in accounts and len(accounts) > 2


def test_an_unchanged_ticket_costs_no_ledger_write(backend: Backend, bundled: LiveMappings) -> None:
    store = backend.open()
    ledger = open_ledger(backend.url)
    first = backlog()[:10]
    queue(store, first)
    worker = Worker(store, bundled, SETTINGS, clock=lambda: NOW, name="cost", ledger=ledger)
    drain(store, worker)
    # The same tickets again, later snapshots naming the same accounts.
    again = [
        replace(e, event_id=e.event_id + "-again", occurred_at=e.occurred_at + timedelta(hours=1))
        for e in first
    ]
    queue(store, again)
    counts = Counts()
    count(backend, ledger, counts)
    try:
        assert drain(store, worker) == len(again)
    finally:
        ledger.close()
    writes = [s for s in counts.statements if not s.startswith("SELECT")]
    assert writes == [], counts.statements
