"""A running service picks up a changed mappings directory without a restart; a bad
file keeps the last good mappings and is reported (webhooks/live_mappings.py)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from entitlements.calendars import Calendar
from mappings import BUNDLED
from webhooks.app import create_app
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(BUNDLED, target)
    return target


def edit_accounts(directory: Path, change: Any) -> None:
    """Rewrite accounts.json the way an editor does: a new file renamed over the old."""
    path = directory / "accounts.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    temp = directory / "accounts.json.tmp"
    temp.write_text(json.dumps(document), encoding="utf-8")
    temp.replace(path)


def rename_acme(document: dict[str, Any]) -> None:
    document["accounts"][0]["name"] = "Acme Renamed"


def break_acme(document: dict[str, Any]) -> None:
    document["accounts"][0]["timezone"] = "Mars/Olympus_Mons"


def acme_name(live: LiveMappings) -> str:
    rulebook = live.rulebook
    assert rulebook is not None
    return next(a.name for a in rulebook.accounts if a.id == "acme")


def test_a_changed_directory_is_in_force_at_the_next_look(directory: Path) -> None:
    ticks = Ticks()
    live = LiveMappings(directory, check_every_s=2, clock=ticks)
    before = live.rulebook
    assert before is not None

    edit_accounts(directory, rename_acme)
    ticks.now += 1  # not yet time to look: the rulebook in force stays
    assert live.rulebook is before
    ticks.now += 1
    assert acme_name(live) == "Acme Renamed"
    rulebook = live.rulebook
    assert rulebook is not None and rulebook.version != before.version


def test_an_unchanged_directory_is_not_read_again(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = Ticks()
    live = LiveMappings(directory, check_every_s=2, clock=ticks)
    monkeypatch.setattr("webhooks.live_mappings.load_mappings", lambda d: pytest.fail())
    for _ in range(5):
        ticks.now += 10
        assert live.rulebook is not None


def test_a_broken_file_keeps_the_last_good_mappings_and_says_why(directory: Path) -> None:
    ticks = Ticks()
    live = LiveMappings(directory, check_every_s=2, clock=ticks)
    good = live.rulebook

    edit_accounts(directory, break_acme)
    ticks.now += 2
    assert live.rulebook is good
    assert any(
        "accounts.json" in p and "/accounts/0/timezone" in p and "Mars/Olympus_Mons" in p
        for p in live.problems
    ), live.problems

    # Fixed: in force, and the problems are gone.
    edit_accounts(directory, rename_and_fix)
    ticks.now += 2
    assert live.problems == []
    assert acme_name(live) == "Acme Renamed"


def rename_and_fix(document: dict[str, Any]) -> None:
    rename_acme(document)
    document["accounts"][0]["timezone"] = "Europe/London"


def test_a_half_written_file_is_refused_then_taken_when_complete(directory: Path) -> None:
    ticks = Ticks()
    live = LiveMappings(directory, check_every_s=2, clock=ticks)
    good = live.rulebook
    path = directory / "accounts.json"
    whole = path.read_text(encoding="utf-8")
    path.write_text(whole[: len(whole) // 2], encoding="utf-8")  # a writer mid-way
    ticks.now += 2
    assert live.rulebook is good and live.problems
    path.write_text(whole.replace("Acme Corp", "Acme Again"), encoding="utf-8")
    ticks.now += 2
    assert live.problems == []
    assert acme_name(live) == "Acme Again"


def test_the_bundled_mappings_are_never_looked_at_again(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = Ticks()
    live = LiveMappings(None, clock=ticks)
    monkeypatch.setattr("webhooks.live_mappings.load_mappings", lambda d: pytest.fail())
    ticks.now += 3600
    assert live.rulebook is not None


def test_readyz_reports_a_refused_change_and_the_service_stays_ready(
    tmp_path: Path, directory: Path
) -> None:
    settings = Settings(database=str(tmp_path / "t.sqlite3"), mappings_dir=directory)
    app = create_app(settings)
    live: LiveMappings = app.extensions["tierdesk.mappings"]
    client = app.test_client()
    first = client.get("/readyz").json
    assert first is not None and "mappings_problems" not in first

    edit_accounts(directory, break_acme)
    live._checked_at -= 60  # the next request looks at the directory
    response = client.get("/readyz")
    body = response.json
    assert response.status_code == 200 and body is not None
    assert body["mappings_version"] == first["mappings_version"]  # the last good, in force
    assert any("/accounts/0/timezone" in p for p in body["mappings_problems"])

    # The API decides with the last good mappings meanwhile.
    decided = client.post(
        "/api/decisions?now=2026-03-06T09:00:00Z",
        json={
            "id": "1",
            "requester": "alice@acme.example",
            "created_at": "2026-03-06T09:00:00Z",
            "severity": 2,
        },
    )
    assert decided.status_code == 200, decided.json
    assert decided.json is not None and decided.json["account"] == "acme"


# -- a reload keeps the calendars it did not change ----------------------------------
# A calendar remembers the weeks it has worked out; a sync that adds one contact must not
# make every account's next decision start from nothing (bench/engine.py), and a calendar
# whose template, zone or holidays changed must not answer from the old one's weeks.

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def business_hours(live: LiveMappings, account: str) -> Calendar:
    rulebook = live.rulebook
    assert rulebook is not None
    return rulebook.calendar("business-hours", rulebook.account(account))


def test_a_reload_keeps_the_calendars_it_did_not_change(directory: Path) -> None:
    live = LiveMappings(directory, clock=Ticks())
    before = {a: business_hours(live, a) for a in ("acme", "globex", "initech")}
    before["acme"].due(MONDAY, timedelta(hours=30))  # weeks worked out

    edit_accounts(directory, rename_acme)
    assert live.reload()
    assert all(business_hours(live, a) is calendar for a, calendar in before.items())


def test_a_reload_binds_anew_the_calendar_whose_holidays_changed(directory: Path) -> None:
    live = LiveMappings(directory, clock=Ticks())
    acme, globex = business_hours(live, "acme"), business_hours(live, "globex")
    # Tuesday 3 March 2026 09:00 London: open, and worked out before the reload.
    assert acme.due(MONDAY, timedelta(hours=9)) == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)

    def close_acme_on_tuesday(document: dict[str, Any]) -> None:
        document["accounts"][0]["holidays"]["dates"].append("2026-03-03")

    edit_accounts(directory, close_acme_on_tuesday)
    assert live.reload()
    now = business_hours(live, "acme")
    assert now is not acme
    assert now.due(MONDAY, timedelta(hours=9)) == datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    assert acme.due(MONDAY, timedelta(hours=9)) == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    assert business_hours(live, "globex") is globex


def test_a_reload_binds_anew_every_calendar_of_a_changed_template(directory: Path) -> None:
    live = LiveMappings(directory, clock=Ticks())
    before = business_hours(live, "acme")
    assert before.due(MONDAY, timedelta(hours=1)) == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

    path = directory / "calendars.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["calendars"]["business-hours"]["windows"][0]["from"] = "08:00"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert live.reload()
    after = business_hours(live, "acme")
    assert after is not before
    # Opens at 08:00 London now: an hour from Monday 09:00 is 10:00 still, but an hour
    # from 07:00 is 09:00, not 10:00.
    assert after.due(MONDAY - timedelta(hours=2), timedelta(hours=1)) == datetime(
        2026, 3, 2, 9, 0, tzinfo=UTC
    )
    assert before.due(MONDAY - timedelta(hours=2), timedelta(hours=1)) == datetime(
        2026, 3, 2, 10, 0, tzinfo=UTC
    )
