"""The `tierdesk` command."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click

from entitlements.rulebook import Rulebook
from mappings import MappingError, check_mappings, load_mappings
from tierdesk.config import ConfigError, settings_from_env
from tierdesk.explain import explain_one, read_items

MAPPINGS_HELP = "Mappings directory (default: $TIERDESK_MAPPINGS, else the bundled defaults)."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """tierdesk: support tiers, named contacts and SLA clocks for your helpdesk."""


@main.command()
@click.option(
    "--mappings",
    "mappings_dir",
    envvar="TIERDESK_MAPPINGS",
    type=click.Path(file_okay=False, path_type=Path),
    help=MAPPINGS_HELP,
)
@click.option(
    "--now",
    "now_text",
    metavar="ISO",
    help="The moment of deciding (routing, hours bought so far); default: the clock.",
)
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
def explain(mappings_dir: Path | None, now_text: str | None, source: TextIO) -> None:
    """Decide tickets and say why: one JSON decision per line.

    SOURCE is a file (or - for stdin) holding one ticket object, a JSON array of
    them, or JSON lines. Exit code 2 when any ticket could not be decided.
    """
    rulebook = _load_or_exit(mappings_dir)
    now = datetime.now(UTC)
    if now_text is not None:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.BadParameter(
                f"{now_text!r} is not an ISO 8601 instant", param_hint="--now"
            ) from None
        if now.tzinfo is None:
            raise click.BadParameter(
                "give a UTC offset, e.g. 2026-03-06T16:30:00Z", param_hint="--now"
            )
    failed = False
    for item in read_items(source.read()):
        line, error = explain_one(item, rulebook, now)
        if line is not None:
            click.echo(line)
        else:
            failed = True
            click.echo(f"tierdesk explain: {error}", err=True)
    sys.exit(2 if failed else 0)


@main.command()
@click.option("--bind", default="127.0.0.1:8080", show_default=True, help="host:port to listen on.")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, help="Threads per worker.")
def serve(bind: str, workers: int, threads: int) -> None:
    """Run the service (settings from TIERDESK_* environment variables)."""
    # Flask and gunicorn only when serving: `tierdesk explain` should start fast.
    from tierdesk.serve import Server  # noqa: PLC0415
    from webhooks.app import create_app  # noqa: PLC0415

    try:
        settings = settings_from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    app = create_app(settings)
    options = {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "accesslog": "-",
        "errorlog": "-",
        "timeout": 30,
    }
    click.echo(
        f"tierdesk serving on http://{bind} (mappings: {settings.mappings_dir or 'bundled'})"
    )
    Server(app, options).run()


@main.group()
def mappings() -> None:
    """Work with the JSON mappings (tiers, calendars, accounts)."""


@mappings.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON lines.")
def validate(directory: Path | None, as_json: bool) -> None:
    """Check a mappings DIRECTORY (default: the bundled one); exit 1 on any problem."""
    problems = check_mappings(directory)
    for problem in problems:
        click.echo(json.dumps(problem.to_json()) if as_json else str(problem))
    where = directory or "bundled mappings"
    if problems:
        click.echo(f"{where}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{where}: ok", err=True)


def _load_or_exit(directory: Path | None) -> Rulebook:
    try:
        return load_mappings(directory)
    except MappingError as exc:
        for problem in exc.problems:
            click.echo(f"tierdesk: mappings refused: {problem}", err=True)
        sys.exit(2)
