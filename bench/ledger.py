"""An hours balance as an account's history grows: SQLite and PostgreSQL.

    .venv/bin/python bench/ledger.py [--sizes 1000,10000,100000] [--reads N]
                                     [--store sqlite|postgres|both] [--url URL]

For each size, a fresh ledger (a SQLite file in a temp dir; a fresh schema on the
throwaway PostgreSQL server tests/store/postgres_server.py starts, or on ``--url``)
gets that many tickets of one pay-as-you-go account, each linked by a snapshot and each
with a worklog (half an hour; one in ten deleted since), plus a bundle bought. They go in
through the ledger's own tables in one bulk statement with its triggers running: setup,
not measured. Then, in one process (these machines are noisy: every figure that matters
is a ratio against something measured in the same run), it prints per size:

0. the baseline: `Ledger.account_of` of one ticket, a read by primary key through the
   same connection, µs per call;
1. `Ledger.totals` of the account, what every decision and every worklog of a
   pay-as-you-go ticket asks: µs per call and its ratio to the baseline. Goal (issue 12,
   "grows with an account's history"): flat, its ratio at the largest size within 1.5×
   its ratio at the smallest;
2. for reference, the balance as the ledger summed it before its running totals: the
   walk over every ticket of the account and its worklogs (the same SQL as then), µs per
   call — what the running totals replaced. Both balances are checked equal.
"""

from __future__ import annotations

import argparse
import functools
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import open_ledger
from store.ledger_base import Ledger
from tests.store.postgres_server import given_or_started

ACCOUNT = "initech"
TENANT = "acme-jsm"
WORKLOG_S = 1800
GOAL_GROWTH = 1.5
# The balance before the running totals (store/ledger.py's `_TOTALS` until 2026-12-06):
# every ticket of the account, and the latest version of each of its worklogs.
_WALK = (
    "SELECT COALESCE(SUM(w.seconds), 0) FROM ledger_ticket AS t"
    " JOIN ledger_worklog AS w ON w.tenant = t.tenant AND w.ticket = t.ticket"
    " WHERE t.account = {account} AND {alive}"
)
# One row per ticket (ticket i: id T<i>), seen at i µs past 1 s, and its worklog w1.
_SQLITE_FILL = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :size)"
    " INSERT INTO ledger_ticket (tenant, ticket, account, seen_us, seq)"
    " SELECT :tenant, 'T' || i, :account, 1000000 + i, i FROM n",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :size)"
    " INSERT INTO ledger_worklog (tenant, ticket, worklog, seconds, deleted, updated_us, seq)"
    " SELECT :tenant, 'T' || i, 'w1', :seconds, i % 10 = 0, 2000000 + i, :size + i FROM n",
)
_POSTGRES_FILL = (
    "INSERT INTO ledger_ticket (tenant, ticket, account, seen_us, seq)"
    " SELECT %(tenant)s, 'T' || i, %(account)s, 1000000 + i, i"
    " FROM generate_series(1, %(size)s) AS i",
    "INSERT INTO ledger_worklog (tenant, ticket, worklog, seconds, deleted, updated_us, seq)"
    " SELECT %(tenant)s, 'T' || i, 'w1', %(seconds)s, i %% 10 = 0, 2000000 + i, %(size)s + i"
    " FROM generate_series(1, %(size)s) AS i",
)


class SqliteLedgers:
    name = "sqlite"

    def __init__(self, top: Path) -> None:
        self.top = top

    def fresh(self, size: int) -> tuple[Ledger, Callable[[], int]]:
        path = self.top / f"ledger-{size}-{uuid.uuid4().hex[:8]}.sqlite3"
        ledger = open_ledger(str(path))
        db = sqlite3.connect(path, isolation_level=None)
        args = {"size": size, "tenant": TENANT, "account": ACCOUNT, "seconds": WORKLOG_S}
        db.execute("BEGIN")
        for statement in _SQLITE_FILL:
            db.execute(statement, args)
        db.execute("COMMIT")
        db.execute("ANALYZE")
        walk = _WALK.format(account="?", alive="w.deleted = 0")

        def walked() -> int:
            return int(db.execute(walk, (ACCOUNT,)).fetchone()[0])

        return ledger, walked


class PostgresLedgers:
    name = "postgres"

    def __init__(self, server: str) -> None:
        self.server = server

    def fresh(self, size: int) -> tuple[Ledger, Callable[[], int]]:
        import psycopg

        schema = f"ledger_{size}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.server, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in self.server else "?"
        url = f"{self.server}{sep}options=-csearch_path%3D{schema}"
        ledger = open_ledger(url)
        db = psycopg.connect(url, autocommit=True)
        args = {"size": size, "tenant": TENANT, "account": ACCOUNT, "seconds": WORKLOG_S}
        with db.transaction():
            for statement in _POSTGRES_FILL:
                db.execute(statement, args)
        db.execute("ANALYZE")  # as autovacuum would soon after such a load
        walk = _WALK.format(account="%s", alive="NOT w.deleted")

        def walked() -> int:
            row = db.execute(walk, (ACCOUNT,)).fetchone()
            return int(row[0]) if row else 0

        return ledger, walked


def per_call_us(call: Callable[[], Any], reads: int) -> float:
    """The median of five timings of ``reads`` calls, in µs per call."""
    call()  # warm: the connection, the statement cache
    samples = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(reads):
            call()
        samples.append((time.perf_counter() - began) / reads * 1e6)
    return statistics.median(samples)


def measure(ledgers: SqliteLedgers | PostgresLedgers, sizes: list[int], reads: int) -> None:
    print(f"\n== {ledgers.name}: one account's balance, by the account's tickets ==")
    ratios = []
    for size in sizes:
        ledger, walked = ledgers.fresh(size)
        ledger.record_purchase(ACCOUNT, "payg/2026-01-05/1", 10_000 * 3600, date(2026, 1, 5))
        expected = WORKLOG_S * (size - size // 10)
        totals = ledger.totals(ACCOUNT)
        if totals.used_s != expected or walked() != expected:
            raise SystemExit(f"{ledgers.name} at {size}: {totals.used_s}, {walked()}, {expected}")
        base = per_call_us(functools.partial(ledger.account_of, TENANT, "T1"), reads)
        balance = per_call_us(functools.partial(ledger.totals, ACCOUNT), reads)
        walk = per_call_us(walked, max(3, min(reads, 200_000 // size)))
        ratio = balance / base
        ratios.append(ratio)
        print(
            f"{size:>9,} tickets: baseline (a ticket's link) {base:6.1f} µs;"
            f" balance {balance:6.1f} µs = {ratio:4.2f}× the baseline;"
            f" the walk it replaced {walk:9.1f} µs ({walk / balance:,.0f}× the balance)"
        )
        ledger.close()
    growth = ratios[-1] / ratios[0]
    verdict = "met" if growth <= GOAL_GROWTH else "missed"
    print(
        f"balance from {sizes[0]:,} to {sizes[-1]:,} tickets: ×{growth:.2f} against the"
        f" baseline; goal flat (≤ {GOAL_GROWTH}×): {verdict}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--url", help="a PostgreSQL server to use instead of a throwaway one")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tierdesk-ledger-") as top:
            measure(SqliteLedgers(Path(top)), sizes, args.reads)
    if args.store in ("postgres", "both"):
        with given_or_started(args.url) as server:
            measure(PostgresLedgers(server), sizes, args.reads)


if __name__ == "__main__":
    main()
