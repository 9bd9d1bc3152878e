"""`tierdesk hours` through click's CliRunner on the command object (the lead registers
it in tierdesk.cli), configured only by the environment each test passes: a real
database of every backend of tests/store/backends.py (a SQLite file under tmp_path;
PostgreSQL with ``TIERDESK_TEST_POSTGRES=1``) and the mappings of
tests/ledger_mappings.py (zulip: 20 h + 10 h; initech: 40 h with 37 h carried in;
globex buys no hours).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from store import open_ledger
from tests.ledger_mappings import GLOBEX, INITECH, ZULIP, H, write_mappings
from tests.store.backends import BACKENDS
from tierdesk.hours_command import hours

NOW = "2026-09-23T12:00:00Z"


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    return write_mappings(tmp_path / "mappings")


@pytest.fixture(params=sorted(BACKENDS))
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database where zulip's ticket T1 has 5 h logged (w1 3 h, w2 2 h) and w3 deleted,
    and ticket T9's 1 h belongs to no known account: its URL."""
    with BACKENDS[request.param](request, tmp_path) as backend:
        fill(backend.url)
        yield backend.url


def fill(url: str) -> None:
    ledger = open_ledger(url)
    at = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
    ledger.link_ticket("zulip-jsm", "T1", "zulip", at)
    ledger.record_worklog("zulip-jsm", "T1", "w1", 3 * H, at)
    ledger.record_worklog("zulip-jsm", "T1", "w2", 2 * H, at)
    ledger.record_worklog("zulip-jsm", "T1", "w3", H, at)
    ledger.record_worklog("zulip-jsm", "T1", "w3", 0, at, deleted=True)
    ledger.record_worklog("zulip-jsm", "T9", "w1", H, at)
    ledger.close()


def run(args: list[str], db: str, mappings: Path, now: str = NOW) -> Result:
    # Only what the test sets: nothing from the developer's shell leaks in.
    environment: dict[str, str | None] = {
        "TIERDESK_CONFIG": None,
        "TIERDESK_TENANTS": None,
        "TIERDESK_DATABASE": db,
        "TIERDESK_MAPPINGS": str(mappings),
    }
    return CliRunner().invoke(hours, ["--now", now, *args], env=environment)


def test_balances_table(db: str, mappings: Path) -> None:
    result = run([], db, mappings)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["account", "tier", "purchased", "used", "balance", "status"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows == {
        "zulip": ["payg", "30.00", "h", "5.00", "h", "25.00", "h", "ok"],
        "initech": ["payg", "40.00", "h", "37.00", "h", "3.00", "h", "low"],
    }
    # The mappings' purchases were synced first (2 + 2 bundles, initech's carried hours).
    assert "purchases synced from the mappings: 5 recorded, 0 removed" in result.stderr
    assert "1.00 h logged on tickets of no known account" in result.stderr
    again = run([], db, mappings)
    assert again.stdout == result.stdout
    assert "purchases synced" not in again.stderr  # nothing to sync the second time


def test_json(db: str, mappings: Path) -> None:
    result = run(["--json"], db, mappings)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["at"] == NOW
    assert doc["unattributed_s"] == H
    by_id = {a["account"]: a for a in doc["accounts"]}
    assert set(by_id) == {"zulip", "initech"}
    assert by_id["zulip"] == {
        "account": "zulip",
        "name": "Zulip (hours)",
        "tier": "payg",
        "purchased": 30.0,
        "used": 5.0,
        "balance": 25.0,
        "low": False,
        "exhausted": False,
        "status": "ok",
        "purchased_s": 30 * H,
        "used_s": 5 * H,
        "balance_s": 25 * H,
        "low_under_s": 2 * H,  # 20% of the last bundle, 10 h
    }
    assert (by_id["initech"]["balance_s"], by_id["initech"]["status"]) == (3 * H, "low")


def test_one_account_with_its_ledger(db: str, mappings: Path) -> None:
    result = run(["--account", "zulip"], db, mappings)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split()[0] == "zulip" and len(lines[1:]) > 1
    entries = [line.split() for line in lines[3:]]
    assert entries == [
        ["2026-01-05", "purchase", "payg/2026-01-05/1", "+20.00", "h"],
        ["2026-06-01", "purchase", "payg/2026-06-01/1", "+10.00", "h"],
        ["2026-09-01T09:00:00Z", "worklog", "zulip-jsm/T1/w1", "-3.00", "h"],
        ["2026-09-01T09:00:00Z", "worklog", "zulip-jsm/T1/w2", "-2.00", "h"],
        ["2026-09-01T09:00:00Z", "worklog", "zulip-jsm/T1/w3", "(deleted)", "0.00", "h"],
    ]
    carried = run(["--account", "initech"], db, mappings).stdout
    assert "hours_used (used before the ledger)" in carried and "-37.00 h" in carried


def test_one_account_json(db: str, mappings: Path) -> None:
    result = run(["--account", "zulip", "--json"], db, mappings)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    assert [a["account"] for a in doc["accounts"]] == ["zulip"]
    kinds = [(e["kind"], e.get("key") or e["worklog"], e["seconds"]) for e in doc["entries"]]
    assert kinds == [
        ("bundle", "payg/2026-01-05/1", 20 * H),
        ("bundle", "payg/2026-06-01/1", 10 * H),
        ("worklog", "w1", 3 * H),
        ("worklog", "w2", 2 * H),
        ("worklog", "w3", 0),
    ]
    assert doc["entries"][-1]["deleted"] is True
    assert doc["entries"][-1]["updated_at"] == "2026-09-01T09:00:00Z"


def test_balance_as_of_another_moment(db: str, mappings: Path) -> None:
    # 2026-05-31 21:30 UTC is still May 31st in Berlin: the June bundle is not bought.
    result = run(["--json"], db, mappings, now="2026-05-31T21:30:00Z")
    by_id = {a["account"]: a for a in json.loads(result.stdout)["accounts"]}
    assert (by_id["zulip"]["purchased_s"], by_id["zulip"]["balance_s"]) == (20 * H, 15 * H)
    # initech's second bundle (2026-08-01) not yet: 20 h bought, 37 h used.
    assert by_id["initech"]["status"] == "exhausted"


def test_a_bundle_gone_from_the_mappings(db: str, tmp_path: Path, mappings: Path) -> None:
    run([], db, mappings)
    zulip = {
        **ZULIP,
        "subscriptions": [{"tier": "payg", "bundles": [{"hours": 20, "purchased": "2026-01-05"}]}],
    }
    fewer = write_mappings(tmp_path / "fewer", [zulip, INITECH, GLOBEX])
    result = run(["--json"], db, fewer)
    assert "0 recorded, 1 removed" in result.stderr
    by_id = {a["account"]: a for a in json.loads(result.stdout)["accounts"]}
    assert (by_id["zulip"]["purchased_s"], by_id["zulip"]["low_under_s"]) == (20 * H, 4 * H)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--account", "globex"], 2, "no pay-as-you-go account called 'globex'"),
        (["--account", "nobody"], 2, "no pay-as-you-go account called 'nobody'"),
        (["--now", "yesterday"], 2, "is not an ISO 8601 instant"),  # the last --now counts
        (["--now", "2026-09-23T12:00:00"], 2, "give a UTC offset"),
    ],
    ids=["account-without-hours", "unknown-account", "bad-now", "naive-now"],
)
def test_refused(db: str, mappings: Path, args: list[str], code: int, message: str) -> None:
    result = run(args, db, mappings)
    assert result.exit_code == code
    assert message in result.output


def test_missing_database(tmp_path: Path, mappings: Path) -> None:
    missing = tmp_path / "typo.sqlite3"
    result = run([], str(missing), mappings)
    assert result.exit_code == 1
    assert f"no database at {missing}" in result.output
    assert not missing.exists()


def test_invalid_mappings(db: str, tmp_path: Path) -> None:
    broken = write_mappings(tmp_path / "broken", [{**ZULIP, "timezone": 7}])
    result = run([], db, broken)
    assert result.exit_code == 2
    assert "mappings refused" in result.stderr
