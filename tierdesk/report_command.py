"""`tierdesk report`: one month's SLA attainment per account and tier, and the hours
pay-as-you-go accounts used, as CSV, JSON or one self-contained HTML page.

The figures and their definitions are in `tierdesk.report`; this module only reads the
store (SLA clocks), the hours ledger and the mappings (each ticket's calendar).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

import click

from entitlements.ledger import hours_accounts
from entitlements.rulebook import Rulebook
from store import StoreError, has_ledger, open_ledger, open_store
from tierdesk.context import parse_now, require_database, rulebook_or_exit, settings_or_fail
from tierdesk.report import (
    FORMATS,
    Month,
    Report,
    ReportError,
    attainment,
    hours_used,
    render,
    rulebook_calendars,
)


@click.command("report")
@click.option(
    "--month",
    "month_text",
    metavar="YYYY-MM",
    help="Tickets created in this month (UTC); default: the last full month.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the report to FILE instead of standard output.",
)
@click.option(
    "--mappings",
    "mappings_dir",
    envvar="TIERDESK_MAPPINGS",
    type=click.Path(file_okay=False, path_type=Path),
    help="Mappings directory (default: $TIERDESK_MAPPINGS, else the bundled defaults).",
)
@click.option(
    "--now",
    "now_text",
    metavar="ISO",
    help="Report as of this instant (what is breached, the default month); default: the clock.",
)
def report(
    month_text: str | None,
    fmt: str,
    out_path: Path | None,
    mappings_dir: Path | None,
    now_text: str | None,
) -> None:
    """SLA attainment per account and tier for one month: tickets, met, missed,
    breached, still open, attainment %, median and p90 time to first response in
    business time; and the hours each pay-as-you-go account used."""
    settings = settings_or_fail()
    now = parse_now(now_text)
    try:
        month = Month.parse(month_text) if month_text is not None else Month.before(now)
    except ReportError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    rulebook = rulebook_or_exit(mappings_dir or settings.mappings_dir)
    require_database(settings)
    try:
        made = build(settings.database, rulebook, month, now)
    except (StoreError, ReportError) as exc:
        raise click.ClickException(str(exc)) from None
    text = render(made, fmt)
    if out_path is None:
        click.echo(text, nl=False)
        return
    _write(out_path, text)
    click.echo(f"report {month} ({fmt}) written to {out_path}", err=True)


def build(database: str, rulebook: Rulebook, month: Month, now: datetime) -> Report:
    """The report of ``month`` from the database ``database`` names."""
    store = open_store(database)
    try:
        clocks = store.clocks(month.since_us, month.until_us)
        made = attainment(
            clocks, rulebook_calendars(rulebook), month, now, month_hours(database, rulebook, month)
        )
    finally:
        store.close()
    return made


def month_hours(database: str, rulebook: Rulebook, month: Month) -> dict[str, int] | None:
    """Seconds used in ``month`` per pay-as-you-go account of the mappings, from the
    hours ledger (SQLite or PostgreSQL, `store.open_ledger`); None where this
    database can hold none. A ledger that cannot be read is an error (`StoreError`), not
    a report without hours."""
    if not has_ledger(database):
        return None  # the report says so
    ledger = open_ledger(database)
    try:
        return {
            account.id: hours_used(ledger.entries(account.id).worklogs, month)
            for account in hours_accounts(rulebook)
        }
    finally:
        ledger.close()


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a half-written report must not replace the last one."""
    path = path.resolve()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            # mkstemp makes 0600; a report is for sharing: the usual mode under the umask.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(out.fileno(), 0o666 & ~umask)
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
