"""What the commands share: settings, the store, the rulebook and ``--now``, each
turned into a clear message and exit code when it cannot be had."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from entitlements.rulebook import Rulebook
from entitlements.tickets import EARLIEST_YEAR, LATEST_YEAR
from mappings import MappingError, load_mappings
from store import Store, StoreError, open_store
from store.urls import parse_database
from tierdesk.config import ConfigError, settings_from_env
from webhooks.settings import Settings


def settings_or_fail() -> Settings:
    try:
        return settings_from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def require_database(settings: Settings) -> None:
    """Refuse a database file that is not there: a mistyped TIERDESK_DATABASE must not
    give an empty history, report or balance (nor create a file)."""
    try:
        database = parse_database(settings.database)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if database.kind == "sqlite" and not Path(database.target).exists():
        raise click.ClickException(f"no database at {database.shown} (TIERDESK_DATABASE)")


def store_or_fail(settings: Settings, *, existing: bool = True) -> Store:
    """The configured store; ``existing``: refuse to create one."""
    if existing:
        require_database(settings)
    try:
        return open_store(settings.database)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def rulebook_or_exit(directory: Path | None) -> Rulebook:
    """The mappings of ``directory`` (bundled when None); exit 2 naming every problem."""
    try:
        return load_mappings(directory)
    except MappingError as exc:
        for problem in exc.problems:
            click.echo(f"tierdesk: mappings refused: {problem}", err=True)
        sys.exit(2)


def parse_now(text: str | None, param_hint: str = "--now") -> datetime:
    """``--now``: an ISO 8601 instant with its UTC offset; the clock when not given."""
    if text is None:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 instant", param_hint=param_hint
        ) from None
    if now.tzinfo is None:
        raise click.BadParameter(
            "give a UTC offset, e.g. 2026-03-06T16:30:00Z", param_hint=param_hint
        )
    if not EARLIEST_YEAR <= now.year <= LATEST_YEAR:  # the same range the API takes
        raise click.BadParameter(
            f"{text!r} is outside {EARLIEST_YEAR}–{LATEST_YEAR}", param_hint=param_hint
        )
    return now
