"""The hours ledger (RULES.md §3): replayed, edited, deleted and late worklogs, replayed
purchases, the low and exhausted lines; and the property that the balance is the
purchases minus the latest version of every worklog, whatever the order and
duplication of the events.

Here on `entitlements.ledger.Book`, the arithmetic; tests/store/test_ledger.py runs the
same cases and the same property on the stored ledgers (SQLite and PostgreSQL).
Expected figures are worked out by hand in each row.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entitlements.hours import HoursBalance
from entitlements.ledger import (
    Book,
    LedgerError,
    Purchase,
    TicketLink,
    TicketMove,
    Totals,
    WorklogKey,
    WorklogVersion,
)

H = 3600
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = date(2026, 1, 5)
TENANT = "acme-jsm"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- one interface over both implementations -----------------------------------------


class Model(Protocol):
    def buy(self, account: str, key: str, seconds: int, on: date = DAY) -> bool: ...

    def log(
        self, ticket: str, worklog: str, seconds: int, updated: datetime, deleted: bool = False
    ) -> int: ...

    def link(self, ticket: str, account: str | None, seen: datetime) -> TicketMove | None: ...

    def totals(self, account: str, on: date | None = None) -> Totals: ...

    def unattributed_s(self) -> int: ...


@dataclass
class BookModel:
    book: Book = field(default_factory=Book)
    seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def buy(self, account: str, key: str, seconds: int, on: date = DAY) -> bool:
        self.book, changed = self.book.with_purchase(Purchase(account, key, seconds, on))
        return changed

    def log(
        self, ticket: str, worklog: str, seconds: int, updated: datetime, deleted: bool = False
    ) -> int:
        key = WorklogKey(TENANT, ticket, worklog)
        version = WorklogVersion(key, 0 if deleted else seconds, updated, next(self.seq), deleted)
        self.book, delta = self.book.with_worklog(version)
        return delta

    def link(self, ticket: str, account: str | None, seen: datetime) -> TicketMove | None:
        self.book, move = self.book.with_link(
            TicketLink(TENANT, ticket, account, seen, next(self.seq))
        )
        return move

    def totals(self, account: str, on: date | None = None) -> Totals:
        return self.book.totals(account, on)

    def unattributed_s(self) -> int:
        return self.book.unattributed_s()


MAKERS: dict[str, Callable[[Path], Model]] = {"book": lambda _: BookModel()}


@pytest.fixture(params=sorted(MAKERS))
def model(request: pytest.FixtureRequest, tmp_path: Path) -> Model:
    return MAKERS[request.param](tmp_path)


# -- table: each row is a sequence of steps and what each step returns ---------------

# A step: ("buy", account, key, hours), ("log", ticket, worklog, seconds, minute),
# ("del", ticket, worklog, minute), ("link", ticket, account, minute). Each step's
# expected return: the seconds of use it added (log/del), whether it changed the ledger
# (buy), the seconds it moved (link). Then the account "acme"'s (purchased, used).
Step = tuple[Any, ...]
CASES: list[tuple[str, list[tuple[Step, Any]], tuple[int, int]]] = [
    (
        "duplicated-worklog",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", 2 * H, 10), 2 * H),
            (("log", "T1", "w1", 2 * H, 10), 0),  # the same webhook again
            (("log", "T1", "w1", 2 * H, 10), 0),
        ],
        (0, 2 * H),
    ),
    (
        "edited-worklog",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", 2 * H, 10), 2 * H),
            (("log", "T1", "w1", 3 * H, 20), H),  # edited to 3 h: one more hour, not 3
            (("log", "T1", "w1", H, 30), -2 * H),  # edited down to 1 h
        ],
        (0, H),
    ),
    (
        "edit-then-late-older-version",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", 3 * H, 20), 3 * H),
            (("log", "T1", "w1", 2 * H, 10), 0),  # the creation, delivered late
        ],
        (0, 3 * H),
    ),
    (
        "deleted-then-late-older-version",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", 2 * H, 10), 2 * H),
            (("del", "T1", "w1", 30), -2 * H),
            (("log", "T1", "w1", 2 * H, 10), 0),  # must not resurrect it
            (("log", "T1", "w1", 5 * H, 20), 0),  # nor an edit delivered after the deletion
        ],
        (0, 0),
    ),
    (
        # Jira's deletion webhook carries the worklog's last `updated`: a replayed edit
        # with that same time, arriving later, still cannot revive it.
        "deleted-with-the-last-edit-time",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", 2 * H, 10), 2 * H),
            (("del", "T1", "w1", 10), -2 * H),
            (("log", "T1", "w1", 2 * H, 10), 0),
        ],
        (0, 0),
    ),
    (
        "deletion-before-creation",
        [
            (("link", "T1", "acme", 0), 0),
            (("del", "T1", "w1", 30), 0),
            (("log", "T1", "w1", 2 * H, 10), 0),
        ],
        (0, 0),
    ),
    (
        # Two versions stamped the same instant (Zendesk's whole seconds): the later
        # arrival is the later edit.
        "same-time-later-arrival-wins",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "zendesk-total", H, 10), H),
            (("log", "T1", "zendesk-total", 2 * H, 10), H),
        ],
        (0, 2 * H),
    ),
    (
        # A newer version with the same seconds still moves the worklog's time on, so
        # the 1 h version delivered after it stays out.
        "newer-version-same-seconds-then-late-older",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", 2 * H, 10), 2 * H),
            (("log", "T1", "w1", 2 * H, 30), 0),
            (("log", "T1", "w1", H, 20), 0),
        ],
        (0, 2 * H),
    ),
    (
        "two-worklogs-one-ticket",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", H, 10), H),
            (("log", "T1", "w2", 2 * H, 11), 2 * H),
            (("log", "T1", "w1", H, 10), 0),
        ],
        (0, 3 * H),
    ),
    (
        "bundle-purchase-replayed",
        [
            (("buy", "acme", "payg/2026-01-05/1", 20), True),
            (("buy", "acme", "payg/2026-01-05/1", 20), False),
            (("buy", "acme", "payg/2026-01-05/1", 20), False),
        ],
        (20 * H, 0),
    ),
    (
        "bundle-corrected-in-the-mappings",
        [
            (("buy", "acme", "payg/2026-01-05/1", 20), True),
            (("buy", "acme", "payg/2026-01-05/1", 25), True),  # same key: a correction
            (("buy", "acme", "payg/2026-01-05/2", 20), True),  # a second bundle that day
        ],
        (45 * H, 0),
    ),
    (
        "worklog-before-its-ticket-account-is-known",
        [
            (("log", "T1", "w1", 2 * H, 10), 2 * H),
            (("link", "T1", "acme", 20), 2 * H),  # now it counts for acme
        ],
        (0, 2 * H),
    ),
    (
        "ticket-moved-to-another-account",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", 2 * H, 10), 2 * H),
            (("link", "T1", "initech", 20), 2 * H),
            (("link", "T1", "acme", 5), 0),  # an older snapshot, late: ignored
        ],
        (0, 0),
    ),
    (
        # The same for a ticket's snapshots: a newer one naming the same account keeps
        # an older one naming another out.
        "newer-snapshot-same-account-then-late-older",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", 2 * H, 10), 2 * H),
            (("link", "T1", "acme", 30), 0),
            (("link", "T1", "initech", 20), 0),
        ],
        (0, 2 * H),
    ),
    (
        "ticket-snapshot-replayed",
        [
            (("link", "T1", "acme", 0), 0),
            (("log", "T1", "w1", 2 * H, 10), 2 * H),
            (("link", "T1", "acme", 0), 0),
            (("link", "T1", "acme", 30), 0),
        ],
        (0, 2 * H),
    ),
]


def apply(model: Model, step: Step) -> Any:
    match step:
        case ("buy", account, key, hours):
            return model.buy(account, key, hours * H)
        case ("log", ticket, worklog, seconds, minute):
            return model.log(ticket, worklog, seconds, at(minute))
        case ("del", ticket, worklog, minute):
            return model.log(ticket, worklog, 0, at(minute), deleted=True)
        case ("link", ticket, account, minute):
            move = model.link(ticket, account, at(minute))
            return move.seconds if move else 0
    raise AssertionError(step)


@pytest.mark.parametrize(("steps", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cases(model: Model, steps: list[tuple[Step, Any]], expected: tuple[int, int]) -> None:
    returned = [apply(model, step) for step, _ in steps]
    assert returned == [want for _, want in steps]
    totals = model.totals("acme")
    assert (totals.purchased_s, totals.used_s) == expected


def test_moved_ticket_counts_for_its_new_account(model: Model) -> None:
    model.link("T1", "acme", at(0))
    model.log("T1", "w1", 2 * H, at(10))
    move = model.link("T1", "initech", at(20))
    assert move == TicketMove("acme", "initech", 2 * H)
    assert model.totals("initech").used_s == 2 * H
    assert model.totals("acme").used_s == 0
    assert model.link("T1", None, at(30)) == TicketMove("initech", None, 2 * H)
    assert model.unattributed_s() == 2 * H


def test_unattributed_until_linked(model: Model) -> None:
    model.log("T9", "w1", H, at(0))
    model.log("T9", "w2", H, at(1))
    assert model.unattributed_s() == 2 * H
    assert model.link("T9", None, at(2)) is None  # no account still: nothing moves
    model.link("T9", "acme", at(3))
    assert model.unattributed_s() == 0
    assert model.totals("acme").used_s == 2 * H


def test_bundles_count_from_their_purchase_day(model: Model) -> None:
    model.buy("acme", "payg/2026-01-05/1", 20 * H, date(2026, 1, 5))
    model.buy("acme", "payg/2026-06-01/1", 10 * H, date(2026, 6, 1))
    assert model.totals("acme", date(2026, 1, 4)) == Totals(0, 0, 0)
    assert model.totals("acme", date(2026, 5, 31)) == Totals(20 * H, 0, 20 * H)
    assert model.totals("acme", date(2026, 6, 1)) == Totals(30 * H, 0, 10 * H)
    assert model.totals("acme") == Totals(30 * H, 0, 10 * H)


# -- low and exhausted ---------------------------------------------------------------

# (bundles as (hours, purchased), hours used in seconds, fraction) → status
THRESHOLDS: list[tuple[str, list[tuple[float, date]], int, float, str]] = [
    ("plenty", [(20, DAY)], 10 * H, 0.2, "ok"),
    ("exactly-20%-left-is-not-low", [(20, DAY)], 16 * H, 0.2, "ok"),
    ("one-second-under-20%", [(20, DAY)], 16 * H + 1, 0.2, "low"),
    ("one-second-left", [(20, DAY)], 20 * H - 1, 0.2, "low"),
    ("nothing-left", [(20, DAY)], 20 * H, 0.2, "exhausted"),
    ("overdrawn", [(20, DAY)], 21 * H, 0.2, "exhausted"),
    ("no-bundle-at-all", [], 0, 0.2, "exhausted"),
    # 20% of the LAST bundle (10 h → 2 h), not of the largest or of the total:
    # 3 h left is fine; it would be low against the 40 h bundle (8 h).
    ("last-bundle-not-largest", [(40, DAY), (10, date(2026, 3, 1))], 47 * H, 0.2, "ok"),
    ("last-bundle-low", [(40, DAY), (10, date(2026, 3, 1))], 48 * H + 1, 0.2, "low"),
    # 0.55 × 3600 s is 1980.0000000000002 in floating point: exactly 1980 s left is on
    # the line, not under it.
    ("float-fraction-at-the-line", [(1, DAY)], 3600 - 1980, 0.55, "ok"),
    ("float-fraction-under-the-line", [(1, DAY)], 3600 - 1979, 0.55, "low"),
    ("fraction-zero-never-low", [(20, DAY)], 20 * H - 1, 0.0, "ok"),
]


@pytest.mark.parametrize(
    ("bundles", "used_s", "fraction", "status"),
    [t[1:] for t in THRESHOLDS],
    ids=[t[0] for t in THRESHOLDS],
)
def test_low_and_exhausted(
    model: Model, bundles: list[tuple[float, date]], used_s: int, fraction: float, status: str
) -> None:
    for n, (hours, day) in enumerate(bundles):
        model.buy("acme", f"payg/{day.isoformat()}/{n}", round(hours * H), day)
    model.link("T1", "acme", at(0))
    model.log("T1", "w1", used_s, at(1))
    balance = model.totals("acme").balance(fraction)
    assert balance.status == status
    assert (balance.low, balance.exhausted) == (status == "low", status == "exhausted")


def test_hours_balance_threshold_is_whole_seconds() -> None:
    assert HoursBalance(3600, 3600 - 1980, 3600, 0.55).low_threshold_s == 1980
    assert HoursBalance(72000, 0, 72000, 0.2).to_json()["balance"] == 20.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: Purchase("acme", "k", -1, DAY),
        lambda: WorklogVersion(WorklogKey("t", "T1", "w"), -5, T0),
        lambda: WorklogVersion(WorklogKey("t", "T1", "w"), 5, T0.replace(tzinfo=None)),
    ],
    ids=["negative-purchase", "negative-worklog", "naive-time"],
)
def test_refused_entries(make: Callable[[], object]) -> None:
    with pytest.raises(LedgerError):
        make()


# -- the property ---------------------------------------------------------------------

ACCOUNTS = ("a", "b")
TICKETS = ("T1", "T2", "T3")
# Few instants and few durations: versions that tie, repeat a duration or cross a
# deletion are the common case, not a lucky draw.
MINUTES = 12


@dataclass(frozen=True)
class Event:
    kind: str  # buy, log, link
    args: tuple[Any, ...]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], dict[str, Totals]]:
    """Distinct facts (purchases, worklog versions with distinct times, ticket snapshots
    with distinct times) and the totals they must give; then the events that deliver
    them: each fact one to three times, in any order."""
    facts: list[Event] = []
    purchases: dict[str, list[tuple[int, date, str]]] = {a: [] for a in ACCOUNTS}
    for account in ACCOUNTS:
        for n in range(draw(st.integers(0, 3))):
            bought_s = draw(st.integers(1, 40)) * H
            day = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 200)))
            key = f"payg/{day.isoformat()}/{n}"
            purchases[account].append((bought_s, day, key))
            facts.append(Event("buy", (account, key, bought_s, day)))
    owner: dict[str, str | None] = {}
    for ticket in TICKETS:
        seen = draw(st.lists(st.integers(0, MINUTES), min_size=1, max_size=3, unique=True))
        named = [draw(st.sampled_from((*ACCOUNTS, None))) for _ in seen]
        for minute, linked in zip(seen, named, strict=True):
            facts.append(Event("link", (ticket, linked, at(minute))))
        owner[ticket] = named[seen.index(max(seen))]  # the newest snapshot's
    latest: dict[tuple[str, str], int] = {}
    for ticket, worklog in itertools.product(TICKETS, ("w1", "w2")):
        times = draw(st.lists(st.integers(0, MINUTES), max_size=4, unique=True))
        if not times:
            continue
        seconds = [draw(st.integers(0, 3)) * H for _ in times]
        for minute, s in zip(times, seconds, strict=True):
            facts.append(Event("log", (ticket, worklog, s, at(minute), False)))
        latest[ticket, worklog] = seconds[times.index(max(times))]
        if draw(st.booleans()):  # deleted, at any time: a tombstone is final
            facts.append(
                Event("log", (ticket, worklog, 0, at(draw(st.integers(0, MINUTES))), True))
            )
            latest[ticket, worklog] = 0
    expected = {}
    for account in ACCOUNTS:
        bought = purchases[account]
        last = max(bought, key=lambda p: (p[1], p[2]), default=None)
        used = sum(s for (ticket, _), s in latest.items() if owner[ticket] == account)
        expected[account] = Totals(sum(p[0] for p in bought), used, last[0] if last else 0)
    copies = [f for f in facts for _ in range(draw(st.integers(1, 3)))]
    return draw(st.permutations(copies)), expected


def deliver(model: Model, events: list[Event]) -> None:
    for event in events:
        if event.kind == "buy":
            model.buy(*event.args)
        elif event.kind == "log":
            model.log(*event.args)
        else:
            model.link(*event.args)


@settings(max_examples=150, deadline=None)
@given(histories())
def test_balance_is_purchases_minus_latest_versions_book(
    history: tuple[list[Event], dict[str, Totals]],
) -> None:
    events, expected = history
    model = BookModel()
    deliver(model, events)
    assert {a: model.totals(a) for a in ACCOUNTS} == expected
