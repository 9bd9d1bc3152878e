"""`tierdesk report` over one month of SLA clocks (and hours worklogs) in a real store
of every backend of tests/store/backends.py (a SQLite file; PostgreSQL with
``TIERDESK_TEST_POSTGRES=1``); `fill` is shared with the report's browser test.

March 2026, reported as of 2026-04-01 12:00Z:

| account    | tier     | tickets                                                     |
|------------|----------|-------------------------------------------------------------|
| acme       | premier  | met in 20 min; missed (answered after 90 min); breached     |
|            |          | (no answer, past due, no sweep recorded it)                  |
| acme       | priority | met: Fri 16:00 → Mon 10:00 London = 2h business (66h wall);  |
|            |          | open: created 23:59:59Z on the last day, not due yet         |
| initech    | payg     | met exactly at the due instant (1h, 24x7); not covered       |
| o'brien<&> | select   | breached (recorded by a sweep): a name that needs escaping   |

Outside the month (must not count): one a microsecond before it, one at its end.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from entitlements.calendars import to_us
from mappings import load_mappings
from store import AuditRecord, NewEvent, SlaClock, open_ledger, open_store
from tests.store.backends import BACKENDS
from tierdesk.report import (
    Month,
    ReportError,
    Row,
    attainment,
    bar_width,
    nearest_rank,
    rulebook_calendars,
    to_csv,
    to_html,
    to_json,
)
from tierdesk.report_command import report

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
MIN = 60 * 1_000_000
HOUR = 60 * MIN


def us(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return to_us(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


def clock(
    ticket: str,
    account: str | None,
    tier: str,
    calendar: str | None,
    created_us: int,
    due_us: int,
    stage: str,
    responded_us: int | None = None,
) -> SlaClock:
    return SlaClock(
        tenant="acme-zd",
        ticket=ticket,
        ticket_key=f"#{ticket}",
        vendor="zendesk",
        account=account,
        tier=tier,
        calendar=calendar,
        requester=None,
        created_us=created_us,
        at_risk_us=created_us + (due_us - created_us) * 3 // 4,
        due_us=due_us,
        steps_us=(),
        levels=(),
        stage=stage,
        level=0,
        next_check_us=None if responded_us is not None else due_us,
        snapshot="{}",
        responded_us=responded_us,
        margin_us=None if responded_us is None else due_us - responded_us,
    )


def march_clocks() -> list[SlaClock]:
    rulebook = load_mappings()
    london = rulebook.calendar("business-hours", rulebook.account("acme"))
    a1 = us(2026, 3, 2, 10)
    a2 = us(2026, 3, 3, 10)
    a3 = us(2026, 3, 4, 10)
    b1 = us(2026, 3, 6, 16)  # Friday 16:00 in London (GMT until 29 March)
    b1_due = london.due_us(b1, 8 * HOUR)  # Priority L3: 1 business day
    b2 = us(2026, 3, 31, 23, 59, 59)
    c1 = us(2026, 3, 10, 8)
    return [
        clock("A1", "acme", "premier", "24x7", a1, a1 + 30 * MIN, "met", a1 + 20 * MIN),
        clock("A2", "acme", "premier", "24x7", a2, a2 + 30 * MIN, "missed", a2 + 90 * MIN),
        clock("A3", "acme", "premier", "24x7", a3, a3 + 2 * HOUR, "on_track"),
        clock("B1", "acme", "priority", "business-hours", b1, b1_due, "met", us(2026, 3, 9, 10)),
        clock("B2", "acme", "priority", "business-hours", b2, us(2026, 4, 2, 9), "on_track"),
        clock("C1", "initech", "payg", "24x7", c1, c1 + HOUR, "met", c1 + HOUR),
        clock("C2", "initech", "payg", None, us(2026, 3, 11, 8), us(2026, 3, 11, 9), "not_covered"),
        clock(
            "D1", "o'brien<&>", "select", "24x7", us(2026, 3, 12), us(2026, 3, 12, 2), "breached"
        ),
        # Outside March: the last microsecond of February, the first instant of April.
        clock(
            "X1",
            "acme",
            "premier",
            "24x7",
            us(2026, 3, 1) - 1,
            us(2026, 3, 1, 1),
            "missed",
            us(2026, 3, 1, 2),
        ),
        clock(
            "X2",
            "acme",
            "premier",
            "24x7",
            us(2026, 4, 1),
            us(2026, 4, 1, 1),
            "met",
            us(2026, 4, 1, 0, 5),
        ),
    ]


def fill(path: str | Path) -> None:
    """The store at ``path`` (a SQLite file or a database URL) with every clock above
    recorded the way the worker records one (an event put, claimed and completed with
    its clock), and the hours ledger: acme 45 min and initech 1 h in March; initech
    30 min in April and a deleted one."""
    store = open_store(str(path))
    try:
        t = NOW.timestamp() - 86_400
        for i, c in enumerate(march_clocks()):
            assert store.put(
                NewEvent(
                    tenant=c.tenant,
                    event_id=f"ev-{i}",
                    vendor=c.vendor,
                    kind="ticket.created",
                    ticket=c.ticket,
                    ticket_key=c.ticket_key,
                    payload=b"{}",
                    normalized="{}",
                ),
                t,
            )
            claimed = store.claim("test", t, 30.0)
            assert claimed is not None and claimed.ticket == c.ticket
            store.complete(claimed, AuditRecord("decided"), t, None, c)
    finally:
        store.close()
    ledger = open_ledger(str(path))
    try:
        march = datetime(2026, 3, 15, tzinfo=UTC)
        ledger.link_ticket("acme-zd", "A1", "acme", march)
        ledger.link_ticket("acme-zd", "C1", "initech", march)
        ledger.record_worklog("acme-zd", "A1", "w1", 2700, march)
        ledger.record_worklog("acme-zd", "C1", "w2", 3600, march + timedelta(days=1))
        ledger.record_worklog("acme-zd", "C1", "w3", 1800, datetime(2026, 4, 1, 1, tzinfo=UTC))
        ledger.record_worklog("acme-zd", "C1", "w4", 900, march)
        ledger.record_worklog("acme-zd", "C1", "w4", 900, march + timedelta(hours=1), deleted=True)
    finally:
        ledger.close()


# -- the tests ----------------------------------------------------------------------------


EXPECTED_CSV = """\
account,tier,tickets,met,missed,breached,open,not_covered,solved_unanswered,attainment_pct,responded,\
first_response_median_s,first_response_p90_s,account_hours_used_s
acme,premier,3,1,1,1,0,0,0,33.33,2,1200,5400,2700
acme,priority,2,1,0,0,1,0,0,100.0,1,7200,7200,2700
initech,payg,2,1,0,0,0,1,0,100.0,1,3600,3600,3600
o'brien<&>,select,1,0,0,1,0,0,0,0.0,0,,,
*,*,8,3,1,2,1,1,0,50.0,4,3600,7200,6300
"""


@pytest.fixture(params=sorted(BACKENDS))
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The filled database's URL."""
    with BACKENDS[request.param](request, tmp_path) as backend:
        fill(backend.url)
        yield backend.url


def run(database: str, *args: str) -> Result:
    env = {"TIERDESK_DATABASE": database, "TIERDESK_CONFIG": "", "TIERDESK_MAPPINGS": ""}
    return CliRunner().invoke(report, list(args), env=env, catch_exceptions=False)


def test_csv_of_a_real_store_has_exact_figures(database: str) -> None:
    result = run(database, "--month", "2026-03", "--now", "2026-04-01T12:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.output == EXPECTED_CSV


def test_default_month_is_the_last_full_one_and_csv_is_the_default(database: str) -> None:
    assert run(database, "--now", "2026-04-01T12:00:00Z").output == EXPECTED_CSV
    # In May, March is not the default: April holds only X2 (met in 5 min).
    april = list(csv.DictReader(io.StringIO(run(database, "--now", "2026-05-10T00:00:00Z").output)))
    assert [(r["account"], r["tier"], r["tickets"], r["met"]) for r in april] == [
        ("acme", "premier", "1", "1"),
        ("initech", "", "0", "0"),  # hours without tickets: w3, 30 min on 1 April
        ("*", "*", "1", "1"),
    ]
    assert april[1]["account_hours_used_s"] == "1800"
    assert april[0]["first_response_median_s"] == "300"


def test_json_has_exact_figures(database: str) -> None:
    result = run(database, "--format", "json", "--now", "2026-04-01T12:00:00Z")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["month"], doc["from"], doc["until"], doc["generated_at"]) == (
        "2026-03",
        "2026-03-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
        "2026-04-01T12:00:00Z",
    )
    assert doc["rows"][1] == {
        "account": "acme",
        "tier": "priority",
        "tickets": 2,
        "met": 1,
        "missed": 0,
        "breached": 0,
        "open": 1,
        "not_covered": 0,
        "solved_unanswered": 0,
        "attainment_pct": 100.0,
        "responded": 1,
        "first_response_median_s": 7200,  # Fri 16:00 → Mon 10:00 London: 2h, not 66h
        "first_response_p90_s": 7200,
    }
    assert [(r["account"], r["tier"], r["attainment_pct"]) for r in doc["rows"]] == [
        ("acme", "premier", 33.33),
        ("acme", "priority", 100.0),
        ("initech", "payg", 100.0),
        ("o'brien<&>", "select", 0.0),
    ]
    assert doc["rows"][3]["first_response_median_s"] is None
    assert doc["total"]["tickets"] == 8
    assert (doc["total"]["first_response_median_s"], doc["total"]["first_response_p90_s"]) == (
        3600,
        7200,
    )
    assert doc["hours"] == [
        {"account": "acme", "used_s": 2700},
        {"account": "initech", "used_s": 3600},
    ]


def test_html_page_is_self_contained_escaped_with_one_bar_per_row(
    database: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = run(database, "--format", "html", "--out", str(out), "--now", "2026-04-01T12:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # stdout stays clean; the note went to stderr
    assert "written to" in result.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<rect class="bar"') == 4
    assert page.count("<svg") == 1
    assert 'aria-label="SLA attainment per account and tier, 2026-03"' in page
    for label in ("acme / premier", "acme / priority", "initech / payg"):
        assert f">{label}</text>" in page
    assert "o&#x27;brien&lt;&amp;&gt; / select" in page
    assert "o'brien<&>" not in page
    assert 'width="133.32"' in page and page.count('width="400.0"') == 2
    # No external resource: nothing fetched (the SVG namespace is an identifier only).
    assert "src=" not in page and "href=" not in page and "@import" not in page
    assert page.count("http") == 1 and 'xmlns="http://www.w3.org/2000/svg"' in page
    assert "<td>2h 00m</td>" in page  # the business-time median of acme / priority
    assert "<td>0.75 h</td>" in page and "<td>1.00 h</td>" in page


def test_a_missing_database_is_refused_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.sqlite3"
    result = CliRunner().invoke(
        report, ["--month", "2026-03"], env={"TIERDESK_DATABASE": str(missing)}
    )
    assert result.exit_code == 1
    assert f"no database at {missing}" in result.output
    assert not missing.exists()


@pytest.mark.parametrize("month", ["2026-13", "2026-3", "March", "2026-00"])
def test_a_bad_month_is_a_usage_error(database: str, month: str) -> None:
    result = CliRunner().invoke(report, ["--month", month], env={"TIERDESK_DATABASE": database})
    assert result.exit_code == 2
    assert "--month" in result.output


def test_a_calendar_gone_from_the_mappings_names_the_ticket() -> None:
    gone = clock(
        "Z1", "acme", "premier", "retired", us(2026, 3, 2), us(2026, 3, 3), "met", us(2026, 3, 2, 1)
    )
    calendars = rulebook_calendars(load_mappings())
    with pytest.raises(ReportError, match=r"#Z1 \(acme-zd\).*'retired'"):
        attainment([gone], calendars, Month(2026, 3), NOW)


# -- pure pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "percent", "expected"),
    [
        ([], 50, None),
        ([7], 50, 7),
        ([7], 90, 7),
        ([1, 2], 50, 1),  # the lower middle: rank ⌈1⌉
        ([1, 2, 3], 50, 2),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9),  # rank 9 exactly
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90, 10),  # rank ⌈9.9⌉ = 10
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 100, 10),
    ],
)
def test_nearest_rank(values: list[int], percent: int, expected: int | None) -> None:
    assert nearest_rank(values, percent) == expected


def test_nearest_rank_refuses_a_percent_out_of_range() -> None:
    with pytest.raises(ValueError, match="percentile 0"):
        nearest_rank([1], 0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 1, 15, tzinfo=UTC), Month(2025, 12)),
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), Month(2026, 2)),
        # 00:30 on 1 April in London is still 31 March in UTC: March is not over.
        (datetime.fromisoformat("2026-04-01T00:30:00+01:00"), Month(2026, 2)),
    ],
)
def test_default_month_is_the_last_full_month_in_utc(now: datetime, expected: Month) -> None:
    assert Month.before(now) == expected


def test_month_bounds_are_utc_and_half_open() -> None:
    december = Month.parse("2025-12")
    assert (december.start, december.end) == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert str(december) == "2025-12"


def test_a_past_due_clock_no_sweep_moved_is_breached_and_one_not_due_is_open() -> None:
    c = clock("A", "acme", "premier", "24x7", us(2026, 3, 2), us(2026, 3, 2, 1), "on_track")
    calendars = rulebook_calendars(load_mappings())
    at_due = attainment([c], calendars, Month(2026, 3), datetime(2026, 3, 2, 1, tzinfo=UTC))
    after = attainment([c], calendars, Month(2026, 3), datetime(2026, 3, 2, 1, 0, 0, 1, UTC))
    assert (at_due.total.open, at_due.total.breached, at_due.total.attainment) == (1, 0, None)
    assert (after.total.open, after.total.breached, after.total.attainment) == (0, 1, 0.0)


def test_a_ticket_solved_without_a_reply_before_its_due_time_has_no_outcome() -> None:
    """Solved before due with no public reply (a duplicate, a withdrawn question): not a
    breach, not in attainment. Solved without a reply after due: breached."""
    base = clock("A", "acme", "premier", "24x7", us(2026, 3, 2), us(2026, 3, 2, 1), "on_track")
    early = replace(base, ticket="A", closed_us=us(2026, 3, 2, 0, 20))
    late = replace(base, ticket="B", closed_us=us(2026, 3, 2, 3))
    met = replace(base, ticket="C", responded_us=us(2026, 3, 2, 0, 10), stage="met")
    calendars = rulebook_calendars(load_mappings())
    made = attainment([early, late, met], calendars, Month(2026, 3), NOW)
    total = made.total
    assert (total.tickets, total.solved_unanswered, total.breached, total.met) == (3, 1, 1, 1)
    assert total.attainment == 50.0
    assert '"solved_unanswered": 1' in to_json(made)


def test_an_empty_month_renders_in_every_format() -> None:
    empty = attainment([], rulebook_calendars(load_mappings()), Month(2026, 3), NOW, None)
    assert to_csv(empty).splitlines()[1] == "*,*,0,0,0,0,0,0,0,,0,,,"
    assert json.loads(to_json(empty))["hours"] is None
    page = to_html(empty)
    assert "<rect" not in page and "No hours ledger" in page


def test_bar_width_scales_percent_to_the_chart() -> None:
    assert (bar_width(None), bar_width(0.0), bar_width(50.0), bar_width(100.0)) == (
        0.0,
        0.0,
        200.0,
        400.0,
    )
    row = Row("a", "t", 3, 2, 1, 0, 0, 0, 0, (1, 2, 3))
    assert (row.attainment, row.median_us, row.p90_us) == (66.67, 2, 3)
