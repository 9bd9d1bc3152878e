"""`tierdesk report`: SLA attainment per account and tier for one month, and the
pay-as-you-go hours used in it — pure aggregation and rendering, no I/O.

What counts (every figure is computed from the store's `SlaClock` rows, as of ``now``):

- **the month**: a ticket belongs to the calendar month of its *creation, in UTC*
  (``[first day 00:00Z, first day of the next month 00:00Z)``). One zone for every
  account keeps months disjoint and their sum the whole; an account's own zone would
  move a few hours of tickets across the boundary and no more.
- **met / missed**: answered at or before the due instant / after it (as `entitlements.sla`).
- **breached**: no first response and ``now`` is past due — whether or not a sweep has
  recorded the breach yet (the service may have been down).
- **open**: no first response and not yet due at ``now``.
- **not covered**: the ticket's entitlement has no target; counted, never in attainment.
- **deleted** tickets (deleted in the helpdesk) are not counted at all: no outcome.
- **solved unanswered**: solved before its due time with no public reply (a duplicate,
  spam, a question withdrawn): no outcome, never in attainment. Solved *after* its due
  time without a reply, it is breached.
- **attainment %** = met / (met + missed + breached): open tickets are not decided yet.
- **time to first response** is *business* time on the ticket's own calendar (the one it
  was decided with, as it runs for its account: zone and holidays), from creation to the
  first response, for answered tickets only. Median and p90 use the **nearest-rank**
  method on exact microseconds: the p-th percentile of n sorted values is the value of
  rank ⌈p·n/100⌉ (the median of an even count is the lower middle value), always a time
  that some ticket actually took.
- **hours used** (pay-as-you-go accounts): worklogs on the account's tickets whose
  latest version is dated in the month. The ledger keeps only a worklog's latest
  version, so an edit made next month moves the whole worklog into next month.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from entitlements.calendars import Calendar, to_us
from entitlements.errors import EntitlementError
from entitlements.ledger import WorklogVersion
from entitlements.rulebook import Rulebook
from entitlements.tickets import format_instant
from store.base import SlaClock

FORMATS = ("csv", "json", "html")

# (calendar name, account id) -> the calendar as it runs for that account.
CalendarLookup = Callable[[str | None, str | None], Calendar]

_US_PER_S = 1_000_000
_ANSWERED = ("met", "missed")
_NOT_COVERED = "not_covered"
_DELETED = "deleted"  # the ticket was deleted in the helpdesk (pipeline.lifecycle)
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class ReportError(Exception):
    """The report cannot be made as asked (a bad month, a calendar the mappings lost)."""


# -- the month ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1970 <= self.year <= 9998:
            raise ReportError(f"{self.year:04d}-{self.month:02d} is not a month")

    @classmethod
    def parse(cls, text: str) -> Month:
        found = _MONTH.fullmatch(text.strip())
        if found is None:
            raise ReportError(f"{text!r} is not a month: give YYYY-MM, e.g. 2026-03")
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def before(cls, now: datetime) -> Month:
        """The last full calendar month (UTC) before ``now``."""
        utc = now.astimezone(UTC)
        return cls(utc.year - 1, 12) if utc.month == 1 else cls(utc.year, utc.month - 1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: the first instant of the next month."""
        following = self.next()
        return datetime(following.year, following.month, 1, tzinfo=UTC)

    @property
    def since_us(self) -> int:
        return to_us(self.start)

    @property
    def until_us(self) -> int:
        return to_us(self.end)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


# -- figures --------------------------------------------------------------------------


def nearest_rank(sorted_values: Sequence[int], percent: int) -> int | None:
    """The ``percent``-th percentile by nearest rank: the value of rank ⌈percent·n/100⌉
    (1-based) of the ascending ``sorted_values``; None when there are none."""
    if not 0 < percent <= 100:
        raise ValueError(f"percentile {percent} is not in (0, 100]")
    n = len(sorted_values)
    if n == 0:
        return None
    rank = -(-percent * n // 100)  # ceiling in integers: exact for every n
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class Row:
    """The SLA figures of one account and tier (or of everything: ``Report.total``)."""

    account: str  # "" for tickets of no known account
    tier: str
    tickets: int
    met: int
    missed: int
    breached: int
    open: int
    not_covered: int
    solved_unanswered: int
    responses_us: tuple[int, ...]  # business time to first response, ascending

    @property
    def decided(self) -> int:
        return self.met + self.missed + self.breached

    @property
    def attainment(self) -> float | None:
        """Percent met of the tickets whose outcome is known, to 2 decimals."""
        return round(100 * self.met / self.decided, 2) if self.decided else None

    @property
    def median_us(self) -> int | None:
        return nearest_rank(self.responses_us, 50)

    @property
    def p90_us(self) -> int | None:
        return nearest_rank(self.responses_us, 90)

    @property
    def label(self) -> str:
        return f"{self.account or '(no account)'} / {self.tier}"


@dataclass(frozen=True, slots=True)
class HoursUsed:
    account: str
    used_s: int


@dataclass(frozen=True, slots=True)
class Report:
    month: Month
    generated: datetime
    rows: tuple[Row, ...]  # by account, then tier
    total: Row
    hours: tuple[HoursUsed, ...] | None  # None: no ledger to read them from

    def hours_of(self, account: str) -> int | None:
        if self.hours is None:
            return None
        return next((h.used_s for h in self.hours if h.account == account), None)


@dataclass(slots=True)
class _Tally:
    tickets: int = 0
    met: int = 0
    missed: int = 0
    breached: int = 0
    open: int = 0
    not_covered: int = 0
    solved_unanswered: int = 0
    responses: list[int] = field(default_factory=list)

    def row(self, account: str, tier: str) -> Row:
        return Row(
            account,
            tier,
            self.tickets,
            self.met,
            self.missed,
            self.breached,
            self.open,
            self.not_covered,
            self.solved_unanswered,
            tuple(sorted(self.responses)),
        )


def _count(tally: _Tally, clock: SlaClock, now_us: int, calendars: CalendarLookup) -> None:
    tally.tickets += 1
    if clock.stage == _NOT_COVERED:
        tally.not_covered += 1
        return
    if clock.responded_us is None:
        if clock.closed_us is not None and clock.closed_us <= clock.due_us:
            tally.solved_unanswered += 1
            return
        # Past due is breached now, even if no sweep has said so yet (sla.status_at).
        if now_us > clock.due_us:
            tally.breached += 1
        else:
            tally.open += 1
        return
    if clock.responded_us <= clock.due_us:
        tally.met += 1
    else:
        tally.missed += 1
    try:
        calendar = calendars(clock.calendar, clock.account)
    except EntitlementError as exc:
        raise ReportError(
            f"ticket {clock.ticket_key or clock.ticket} ({clock.tenant}): {exc};"
            " its business time cannot be measured"
        ) from None
    tally.responses.append(calendar.elapsed_us(clock.created_us, clock.responded_us))


def attainment(
    clocks: Iterable[SlaClock],
    calendars: CalendarLookup,
    month: Month,
    now: datetime,
    hours: Mapping[str, int] | None = None,
) -> Report:
    """The report of the clocks of tickets created in ``month`` (others are ignored, so
    a wider stream is safe). ``hours``: seconds used per pay-as-you-go account, None when
    there is no ledger."""
    now_us = to_us(now)
    since, until = month.since_us, month.until_us
    groups: dict[tuple[str, str], _Tally] = {}
    total = _Tally()
    for clock in clocks:
        if not since <= clock.created_us < until or clock.stage == _DELETED:
            continue  # a deleted ticket has no outcome: it is no ticket of the month
        key = (clock.account or "", clock.tier)
        _count(groups.setdefault(key, _Tally()), clock, now_us, calendars)
        _count(total, clock, now_us, calendars)
    rows = tuple(groups[key].row(*key) for key in sorted(groups))
    used = None
    if hours is not None:
        used = tuple(HoursUsed(account, hours[account]) for account in sorted(hours))
    return Report(month, now, rows, total.row("", ""), used)


def hours_used(worklogs: Iterable[WorklogVersion], month: Month) -> int:
    """Seconds counted by the (latest versions of) ``worklogs`` dated in ``month``."""
    start, end = month.start, month.end
    return sum(w.counted_s for w in worklogs if start <= w.updated_at < end)


def rulebook_calendars(rulebook: Rulebook) -> CalendarLookup:
    """Each ticket's calendar as the worker measured it (webhooks/lifecycle.py): the
    calendar it was decided with, for its account; 24x7 when it names none."""

    def lookup(name: str | None, account: str | None) -> Calendar:
        return rulebook.calendar(name or "24x7", rulebook.account(account) if account else None)

    return lookup


# -- rendering --------------------------------------------------------------------------


def render(report: Report, fmt: str) -> str:
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return to_json(report)
    if fmt == "html":
        return to_html(report)
    raise ReportError(f"{fmt!r} is not a report format ({', '.join(FORMATS)})")


def seconds(us: int | None) -> int | float | None:
    """Microseconds as seconds: a whole number when it is one, else exact to the µs."""
    if us is None:
        return None
    return us // _US_PER_S if us % _US_PER_S == 0 else us / _US_PER_S


def duration(us: int | None) -> str:
    """For people: ``2h 05m``, ``45m``, ``30s``; ``–`` for none."""
    if us is None:
        return "–"
    total_s = us // _US_PER_S
    hours, rest = divmod(total_s, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m" if not secs else f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _row_json(row: Row) -> dict[str, Any]:
    return {
        "account": row.account or None,
        "tier": row.tier or None,
        "tickets": row.tickets,
        "met": row.met,
        "missed": row.missed,
        "breached": row.breached,
        "open": row.open,
        "not_covered": row.not_covered,
        "solved_unanswered": row.solved_unanswered,
        "attainment_pct": row.attainment,
        "responded": len(row.responses_us),
        "first_response_median_s": seconds(row.median_us),
        "first_response_p90_s": seconds(row.p90_us),
    }


def to_json(report: Report) -> str:
    doc: dict[str, Any] = {
        "month": str(report.month),
        "from": format_instant(report.month.start),
        "until": format_instant(report.month.end),
        "generated_at": format_instant(report.generated),
        "first_response": "business time on the ticket's calendar; percentiles by nearest rank",
        "rows": [_row_json(row) for row in report.rows],
        "total": _row_json(report.total),
        "hours": None
        if report.hours is None
        else [{"account": h.account, "used_s": h.used_s} for h in report.hours],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


CSV_COLUMNS = (
    "account",
    "tier",
    "tickets",
    "met",
    "missed",
    "breached",
    "open",
    "not_covered",
    "solved_unanswered",
    "attainment_pct",
    "responded",
    "first_response_median_s",
    "first_response_p90_s",
    "account_hours_used_s",
)


def to_csv(report: Report) -> str:
    """One line per account and tier, then the total (account and tier ``*``).
    ``account_hours_used_s`` is the *account's* figure (repeated on each of its tiers,
    not to be summed); a pay-as-you-go account with hours but no ticket this month gets a
    line with an empty tier. Empty cells: no figure."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    seen: set[str] = set()
    for row in report.rows:
        seen.add(row.account)
        writer.writerow(_csv_cells(row, report.hours_of(row.account)))
    for h in report.hours or ():
        if h.account not in seen:
            writer.writerow(_csv_cells(Row(h.account, "", 0, 0, 0, 0, 0, 0, 0, ()), h.used_s))
    total_hours = None if report.hours is None else sum(h.used_s for h in report.hours)
    writer.writerow(_csv_cells(report.total, total_hours, total=True))
    return out.getvalue()


def _csv_cells(row: Row, hours_s: int | None, *, total: bool = False) -> list[object]:
    cells = _row_json(row)
    if total:
        cells["account"] = cells["tier"] = "*"
    cells["account_hours_used_s"] = hours_s
    return ["" if cells[c] is None else cells[c] for c in CSV_COLUMNS]


# -- HTML -------------------------------------------------------------------------------

CHART_LABEL_W = 220  # px for the "account / tier" labels
CHART_BAR_MAX = 400  # px for 100 %
CHART_VALUE_W = 80
CHART_BAR_H = 20
CHART_GAP = 10
CHART_TOP = 30


def bar_width(percent: float | None) -> float:
    """The bar of ``percent`` attainment in px (0 when there is no figure)."""
    return round((percent or 0.0) * CHART_BAR_MAX / 100, 2)


def chart_svg(report: Report) -> str:
    """Attainment as a horizontal bar chart: one labelled bar per account and tier."""
    e = html.escape
    width = CHART_LABEL_W + CHART_BAR_MAX + CHART_VALUE_W
    height = CHART_TOP + len(report.rows) * (CHART_BAR_H + CHART_GAP) + CHART_GAP
    title = f"SLA attainment per account and tier, {report.month}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="attainment" role="img"'
        f' width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' aria-label="{e(title)}">',
        f"<title>{e(title)}</title>",
        f'<text x="0" y="18" class="chart-title">{e(title)}</text>',
        f'<line x1="{CHART_LABEL_W}" y1="{CHART_TOP - 4}" x2="{CHART_LABEL_W}"'
        f' y2="{height - CHART_GAP + 4}" stroke="#555"/>',
    ]
    for i, row in enumerate(report.rows):
        y = CHART_TOP + i * (CHART_BAR_H + CHART_GAP)
        pct = row.attainment
        value = "n/a" if pct is None else f"{pct:.2f}%"
        label = row.label
        parts += [
            '<g class="bar-row">',
            f'<text class="bar-label" x="{CHART_LABEL_W - 8}" y="{y + 15}"'
            f' text-anchor="end">{e(label)}</text>',
            f'<rect class="bar" x="{CHART_LABEL_W}" y="{y}" width="{bar_width(pct)}"'
            f' height="{CHART_BAR_H}" fill="{_colour(pct)}"'
            f' data-account="{e(row.account)}" data-tier="{e(row.tier)}"'
            f' data-attainment="{"" if pct is None else pct}">'
            f"<title>{e(label)}: {e(value)}</title></rect>",
            f'<text class="bar-value" x="{CHART_LABEL_W + bar_width(pct) + 6}"'
            f' y="{y + 15}">{e(value)}</text>',
            "</g>",
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def _colour(percent: float | None) -> str:
    if percent is None:
        return "#999999"
    if percent >= 95:
        return "#2e7d32"
    if percent >= 80:
        return "#f9a825"
    return "#c62828"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
tfoot td { font-weight: bold; }
svg text { font-size: 13px; font-family: system-ui, sans-serif; }
svg .chart-title { font-weight: bold; }
"""

_HEADERS = (
    "account",
    "tier",
    "tickets",
    "met",
    "missed",
    "breached",
    "open",
    "not covered",
    "solved unanswered",
    "attainment",
    "median first response",
    "p90 first response",
)


def _html_cells(row: Row) -> list[str]:
    pct = row.attainment
    return [
        row.account or "(no account)",
        row.tier,
        str(row.tickets),
        str(row.met),
        str(row.missed),
        str(row.breached),
        str(row.open),
        str(row.not_covered),
        str(row.solved_unanswered),
        "n/a" if pct is None else f"{pct:.2f}%",
        duration(row.median_us),
        duration(row.p90_us),
    ]


def _tr(cells: Iterable[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"


def to_html(report: Report) -> str:
    """One self-contained page (no external resource): the table, the chart, the hours."""
    e = html.escape
    heading = f"SLA attainment {report.month}"
    total = _html_cells(report.total)
    total[0], total[1] = "all", ""
    body = [
        f"<h1>{e(heading)}</h1>",
        f"<p>Tickets created from {e(format_instant(report.month.start))} until"
        f" {e(format_instant(report.month.end))} (UTC), as of"
        f" {e(format_instant(report.generated))}. Attainment = met / (met + missed +"
        " breached). First response in business time on each ticket's calendar;"
        " percentiles by nearest rank.</p>",
        '<table id="sla">',
        f"<thead>{_tr(_HEADERS, 'th')}</thead>",
        "<tbody>",
        *(_tr(_html_cells(row)) for row in report.rows),
        "</tbody>",
        f"<tfoot>{_tr(total)}</tfoot>",
        "</table>",
        chart_svg(report),
        "<h2>Pay-as-you-go hours used</h2>",
    ]
    if report.hours is None:
        body.append("<p>No hours ledger in this database.</p>")
    elif not report.hours:
        body.append("<p>No pay-as-you-go accounts in the mappings.</p>")
    else:
        body += [
            '<table id="hours">',
            f"<thead>{_tr(('account', 'hours used'), 'th')}</thead>",
            "<tbody>",
            *(_tr((h.account, f"{h.used_s / 3600:.2f} h")) for h in report.hours),
            "</tbody>",
            "</table>",
        ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(heading)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
