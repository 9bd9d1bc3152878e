"""SqliteLedger as SQLite: beside the inbox in one file, purchases synced from the
mappings without needless writes, concurrent writers, reopening, `open_ledger`.

The ledger's rules (versions, tombstones, thresholds, the balance property) are tested
on both implementations in tests/entitlements/test_ledger.py. Whether a call wrote is
read from ``PRAGMA data_version`` on a second connection: it changes exactly when
another connection commits.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from entitlements.ledger import LedgerError, Purchase, TicketMove, Totals
from store import NewEvent, SqliteStore, StoreError
from store.ledger import SqliteLedger, Synced, open_ledger
from tests.ledger_mappings import GLOBEX, INITECH, ZULIP, H, rulebook

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tierdesk.sqlite3"


@pytest.fixture
def ledger(db: Path) -> Iterator[SqliteLedger]:
    ledger = SqliteLedger(db)
    yield ledger
    ledger.close()


class Writes:
    """Counts the commits other connections make to the file."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.mark = self._version()

    def _version(self) -> int:
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def since(self) -> bool:
        version = self._version()
        wrote, self.mark = version != self.mark, version
        return wrote


# -- one file with the inbox --------------------------------------------------------


def test_shares_the_store_file(db: Path) -> None:
    store = SqliteStore(db)
    ledger = SqliteLedger(db)
    event = NewEvent("acme", "ev-1", "jsm", "worklog.created", "10014", "10014", b"{}", "{}")
    assert store.put(event, 1.0)
    ledger.link_ticket("acme", "10014", "zulip", at(0))
    assert ledger.record_worklog("acme", "10014", "10066", 2 * H, at(1)) == 2 * H
    claimed = store.claim("w", 2.0, 30.0)
    assert claimed is not None and claimed.event_id == "ev-1"
    with closing(sqlite3.connect(db)) as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"inbox", "ledger_purchase", "ledger_worklog", "ledger_ticket"} <= tables
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # The ledger adds tables; the store's schema version stays the store's.
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    # Opening again (another process starting) keeps everything.
    again = SqliteLedger(db)
    assert again.totals("zulip").used_s == 2 * H
    assert SqliteStore(db).counts() == {"leased": 1}


def test_survives_reopening(db: Path) -> None:
    first = SqliteLedger(db)
    first.record_purchase("zulip", "payg/2026-01-05/1", 20 * H, date(2026, 1, 5))
    first.link_ticket("t", "T1", "zulip", at(0))
    first.record_worklog("t", "T1", "w1", 3 * H, at(1))
    first.record_worklog("t", "T1", "w2", H, at(2))
    first.record_worklog("t", "T1", "w2", 0, at(3), deleted=True)
    first.close()
    second = SqliteLedger(db)
    assert second.totals("zulip") == Totals(20 * H, 3 * H, 20 * H)
    # The tombstone survived too: the older version cannot come back.
    assert second.record_worklog("t", "T1", "w2", H, at(2)) == 0


# -- purchases from the mappings ------------------------------------------------------


def test_sync_purchases_is_idempotent_and_writes_nothing_the_second_time(
    tmp_path: Path, ledger: SqliteLedger, db: Path
) -> None:
    book = rulebook(tmp_path / "m")
    writes = Writes(db)
    # zulip: 2 bundles; initech: 2 bundles and hours_used carried; globex buys no hours.
    assert ledger.sync_purchases(book) == Synced(recorded=5, removed=0)
    assert writes.since()
    assert ledger.sync_purchases(book) == Synced(0, 0)
    assert ledger.sync_purchases(book) == Synced(0, 0)
    assert not writes.since()
    assert ledger.totals("zulip") == Totals(30 * H, 0, 10 * H)
    assert ledger.totals("initech") == Totals(40 * H, 37 * H, 20 * H)
    assert ledger.totals("globex") == Totals(0, 0, 0)
    keys = [(p.key, p.kind) for p in ledger.entries("initech").purchases]
    assert sorted(keys) == [
        ("hours_used", "carried"),
        ("payg/2026-02-01/1", "bundle"),
        ("payg/2026-08-01/1", "bundle"),
    ]


def test_sync_follows_the_mappings(tmp_path: Path, ledger: SqliteLedger) -> None:
    ledger.sync_purchases(rulebook(tmp_path / "m1"))
    # zulip's second bundle is corrected to 15 h and a third bought the same day;
    # initech leaves the mappings; globex is unchanged.
    zulip = {
        **ZULIP,
        "subscriptions": [
            {
                "tier": "payg",
                "bundles": [
                    {"hours": 20, "purchased": "2026-01-05"},
                    {"hours": 15, "purchased": "2026-06-01"},
                    {"hours": 5, "purchased": "2026-06-01"},
                ],
            }
        ],
    }
    synced = ledger.sync_purchases(rulebook(tmp_path / "m2", [zulip, GLOBEX]))
    assert synced == Synced(recorded=2, removed=0)
    assert ledger.totals("zulip") == Totals(40 * H, 0, 5 * H)  # last: the 2nd of that day
    # An account gone from the mappings keeps its history.
    assert ledger.totals("initech").purchased_s == 40 * H
    # A bundle taken out of an account's mappings leaves its balance.
    fewer = {
        **zulip,
        "subscriptions": [{"tier": "payg", "bundles": [zulip["subscriptions"][0]["bundles"][0]]}],
    }
    assert ledger.sync_purchases(rulebook(tmp_path / "m3", [fewer, INITECH, GLOBEX])) == Synced(
        0, 2
    )
    assert ledger.totals("zulip") == Totals(20 * H, 0, 20 * H)


def test_record_purchase(ledger: SqliteLedger) -> None:
    day = date(2026, 1, 5)
    assert ledger.record_purchase("zulip", "k", 20 * H, day)
    assert not ledger.record_purchase("zulip", "k", 20 * H, day)
    assert ledger.record_purchase("zulip", "k", 25 * H, day)
    assert ledger.entries("zulip").purchases == (Purchase("zulip", "k", 25 * H, day),)
    with pytest.raises(LedgerError):
        ledger.record_purchase("zulip", "k", -1, day)


# -- no write for what changes nothing -------------------------------------------------


def test_replays_and_older_snapshots_take_no_write(ledger: SqliteLedger, db: Path) -> None:
    ledger.link_ticket("t", "T1", "zulip", at(10))
    ledger.record_worklog("t", "T1", "w1", H, at(10))
    writes = Writes(db)
    assert ledger.link_ticket("t", "T1", "zulip", at(10)) is None  # replay
    assert ledger.link_ticket("t", "T1", "globex", at(5)) is None  # older snapshot
    assert ledger.record_worklog("t", "T1", "w1", H, at(10)) == 0  # replay
    assert ledger.record_worklog("t", "T1", "w1", 5 * H, at(5)) == 0  # older version
    assert not writes.since()
    # A newer snapshot of the same account is written (its time keeps older ones out).
    assert ledger.link_ticket("t", "T1", "zulip", at(20)) is None
    assert writes.since()
    assert ledger.link_ticket("t", "T1", "globex", at(15)) is None
    assert ledger.account_of("t", "T1") == "zulip"


def test_link_moves_the_tickets_time(ledger: SqliteLedger) -> None:
    ledger.record_worklog("t", "T1", "w1", H, at(1))
    ledger.record_worklog("t", "T1", "w2", 2 * H, at(2))
    ledger.record_worklog("t", "T1", "w2", 0, at(3), deleted=True)
    assert ledger.unattributed_s() == H
    assert ledger.link_ticket("t", "T1", "zulip", at(4)) == TicketMove(None, "zulip", H)
    assert ledger.link_ticket("t", "T1", "globex", at(5)) == TicketMove("zulip", "globex", H)
    assert (ledger.totals("zulip").used_s, ledger.totals("globex").used_s) == (0, H)
    assert ledger.unattributed_s() == 0


def test_entries_show_latest_versions_and_tombstones(ledger: SqliteLedger) -> None:
    ledger.link_ticket("t", "T1", "zulip", at(0))
    ledger.link_ticket("t", "T2", "globex", at(0))
    ledger.record_worklog("t", "T1", "w2", 2 * H, at(2))
    ledger.record_worklog("t", "T1", "w1", H, at(1))
    ledger.record_worklog("t", "T1", "w1", 3 * H, at(3))
    ledger.record_worklog("t", "T1", "w2", 0, at(4), deleted=True)
    ledger.record_worklog("t", "T2", "w9", H, at(1))  # another account's ticket
    shown = [
        (str(w.key), w.seconds, w.updated_at, w.deleted) for w in ledger.entries("zulip").worklogs
    ]
    assert shown == [("t/T1/w1", 3 * H, at(3), False), ("t/T1/w2", 0, at(4), True)]


def test_microsecond_versions(ledger: SqliteLedger) -> None:
    # Jira stamps milliseconds; versions one microsecond apart still order.
    ledger.link_ticket("t", "T1", "zulip", at(0))
    base = at(1)
    assert ledger.record_worklog("t", "T1", "w1", H, base + timedelta(microseconds=1)) == H
    assert ledger.record_worklog("t", "T1", "w1", 2 * H, base) == 0
    assert ledger.totals("zulip").used_s == H


# -- concurrency ----------------------------------------------------------------------


def test_concurrent_writers_keep_the_latest_version(db: Path) -> None:
    """Four threads, each with its own connection, deliver the versions of the same
    worklogs in different orders at once: the pre-check without a lock races, the
    upsert under BEGIN IMMEDIATE decides."""
    SqliteLedger(db).link_ticket("t", "T1", "zulip", at(0))
    versions = [(f"w{w}", minute, (w + 1) * minute) for w in range(3) for minute in range(1, 21)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def deliver(seed: int) -> None:
        ledger = SqliteLedger(db)
        mine = versions[:]
        random.Random(seed).shuffle(mine)
        try:
            start.wait()
            for worklog, minute, seconds in mine:
                ledger.record_worklog("t", "T1", worklog, seconds, at(minute))
        except BaseException as exc:
            errors.append(exc)
        finally:
            ledger.close()

    threads = [threading.Thread(target=deliver, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # The latest version of each worklog is minute 20: (w + 1) × 20 s.
    assert SqliteLedger(db).totals("zulip").used_s == 20 + 40 + 60


class StalePrecheck(SqliteLedger):
    """A ledger whose lock-free pre-checks always find nothing, as when another writer
    commits between the pre-check and the write: only the SQL upserts decide."""

    def _read(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        if "FROM ledger_worklog WHERE" in sql or "seen_us FROM ledger_ticket" in sql:
            return []
        return super()._read(sql, args)


# (ticket, worklog, seconds, updated, deleted) and (ticket, account, seen)
VERSIONS: list[tuple[str, str, int, datetime, bool]] = [
    *(
        (ticket, worklog, (n + 1) * H, at(minute), False)
        for ticket in ("T1", "T2")
        for n, worklog in enumerate(("w1", "w2"))
        for minute in (1, 2, 3)
    ),
    ("T2", "w2", 0, at(0), True),  # deleted, stamped before its versions
]
LINKS: list[tuple[str, str | None, datetime]] = [
    ("T1", "zulip", at(5)),
    ("T1", "globex", at(4)),
    ("T1", "zulip", at(1)),
    ("T2", "globex", at(2)),
    ("T2", "zulip", at(6)),
    ("T2", "zulip", at(7)),
]
Delivery = tuple[str, datetime, Any]


@pytest.mark.parametrize("order", ["newest-first", "oldest-first", "shuffled-1", "shuffled-2"])
def test_the_upserts_alone_keep_the_latest_version(db: Path, order: str) -> None:
    events: list[Delivery] = [("log", v[3], v) for v in VERSIONS * 2]
    events += [("link", link[2], link) for link in LINKS * 2]
    if order.startswith("shuffled"):
        random.Random(order).shuffle(events)
    else:
        events.sort(key=lambda e: e[1], reverse=order == "newest-first")
    ledger = StalePrecheck(db)
    for kind, _, args in events:
        if kind == "log":
            ticket, worklog, seconds, updated, deleted = args
            ledger.record_worklog("t", ticket, worklog, seconds, updated, deleted=deleted)
        else:
            ledger.link_ticket("t", *args)
    # T1 is zulip's (snapshot at 5): w1 1 h + w2 2 h. T2 is zulip's (at 7): w1 1 h, and
    # w2 deleted.
    assert ledger.totals("zulip").used_s == 3 * H + H
    assert ledger.totals("globex").used_s == 0


# -- opening --------------------------------------------------------------------------


def test_open_ledger(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    assert open_ledger(str(path)).path == str(path)
    assert open_ledger(f"sqlite:///{path}").path == str(path)
    for url in ("postgresql://db/tierdesk", ":memory:", "sqlite://:memory:", ""):
        with pytest.raises(StoreError):
            open_ledger(url)
    with pytest.raises(StoreError, match="cannot"):
        SqliteLedger(tmp_path / "missing" / "dir" / "x.sqlite3")
