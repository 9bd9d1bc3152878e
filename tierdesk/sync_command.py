"""`tierdesk sync pull|push`: keep the mappings and the helpdesk in step.

The jobs are `mappings.sync.pull` and `mappings.sync.push`; this module reads the
settings, builds the tenant's HTTP client, draws the progress bar and prints the diff
and the summary.

`sync push` also shows each pay-as-you-go account's hours status (ok, low, exhausted)
on its organizations, read from the hours ledger in the configured database
(TIERDESK_DATABASE), as the worker computes it; with no database there yet, it says so
and leaves the hours alone (it never creates one).

Both jobs keep, next to their checkpoints, the tenant's record of the flags the
helpdesk showed at the last sync (``<tenant>.flags.sqlite3``, `mappings.sync.shown`):
push writes it, pull reads it to tell a cleared flag (the contact goes, listed on
stderr even with ``--yes``) from one never pushed (kept, and counted). More removals
than ``--max-removals`` (10) refuse the pull.

Exit codes: 0 done (or nothing to do); 1 refused (the result breaks a mapping rule,
too many removals, the confirmation was declined, the helpdesk refused writes or
credentials); 75 stopped
by the helpdesk (rate limit or server errors outlasting the retries: rerun the same
command to continue from the checkpoint); 130 interrupted (likewise).
"""

from __future__ import annotations

import itertools
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from connector.directories import open_directory
from connector.directory import Directory
from connector.errors import ConnectorError, Unauthorized
from connector.http import HttpClient, Policy
from entitlements.ledger import hours_accounts, low_fraction
from mappings import BUNDLED, MappingError, load_mappings
from mappings.sync import PullReport, PushReport, SyncError, pull, push
from mappings.sync.pull import MAX_REMOVALS
from mappings.sync.shown import ShownFlags, flags_path
from pipeline.connectors import tenant_auth
from store import has_ledger, open_ledger
from store.base import StoreError
from store.urls import parse_database
from tierdesk.config import ConfigError, settings_from_env
from webhooks.settings import Settings, Tenant

EX_TEMPFAIL = 75
STATE_DIR = ".tierdesk-sync"
# A batch job holds no worker lease: it may wait out a long Retry-After (the policy's
# default deadline of 20 s is for the webhook worker).
SYNC_DEADLINE_S = 300.0
SYNC_ATTEMPTS = 10


class ClickProgress:
    """A click progress bar per phase on stderr; click prints only the label when
    stderr is not a terminal."""

    def __init__(self) -> None:
        self._bar: Any = None

    def begin(self, phase: str, total: int | None, done: int) -> None:
        label = f"{phase:<14}"
        if total is None:
            self._bar = click.progressbar(
                itertools.count(), label=label, show_pos=True, file=sys.stderr
            )
        else:
            self._bar = click.progressbar(
                length=max(total, done), label=label, show_pos=True, file=sys.stderr
            )
        self._bar.__enter__()
        if done:
            self._bar.update(done)

    def advance(self, records: int) -> None:
        if self._bar is not None:
            self._bar.update(records)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"tierdesk sync: {message}", err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        return settings_from_env()
    except ConfigError as exc:
        _fail(str(exc))


def _tenant(settings: Settings, tenant_id: str) -> Tenant:
    tenant = settings.tenants.get(tenant_id)
    if tenant is None:
        known = ", ".join(sorted(settings.tenants)) or "none configured"
        raise click.BadParameter(f"no tenant {tenant_id!r} ({known})", param_hint="--tenant")
    var = f"TIERDESK_TENANT_{tenant.id.upper().replace('-', '_')}"
    if not tenant.base_url or not tenant.api_token:
        _fail(
            f"tenant {tenant.id} needs a base URL and an API token "
            f"({var}_BASE_URL, {var}_API_TOKEN)"
        )
    if not tenant.email and (tenant.vendor == "zendesk" or tenant.deployment == "cloud"):
        # Zendesk API tokens and Jira Cloud tokens go with the user's email.
        _fail(f"tenant {tenant.id} needs the API user's email ({var}_EMAIL, or email)")
    return tenant


def directory_for(tenant: Tenant, requests_per_minute: float | None) -> Directory:
    policy = Policy(
        deadline_s=SYNC_DEADLINE_S,
        max_attempts=SYNC_ATTEMPTS,
        requests_per_minute=requests_per_minute or Policy().requests_per_minute,
    )
    try:
        client = HttpClient(tenant.base_url, tenant_auth(tenant), policy=policy)
    except ConnectorError as exc:
        _fail(f"tenant {tenant.id}: {exc}")
    return open_directory(tenant.vendor, client)


def _state_dir(explicit: Path | None, mappings_dir: Path | None) -> Path:
    return explicit or (mappings_dir or Path.cwd()) / STATE_DIR


@contextmanager
def _state(explicit: Path | None, mappings_dir: Path | None, dry_run: bool) -> Iterator[Path]:
    """Where the checkpoint lives. A dry run keeps nothing: its own temp directory."""
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="tierdesk-sync-") as scratch:
            yield Path(scratch)
        return
    yield _state_dir(explicit, mappings_dir)


@contextmanager
def _shown(
    explicit: Path | None, mappings_dir: Path | None, tenant: Tenant, dry_run: bool
) -> Iterator[ShownFlags]:
    """The tenant's record of what the helpdesk showed (a dry run only reads it)."""
    path = flags_path(_state_dir(explicit, mappings_dir), tenant.id)
    try:
        shown = ShownFlags(path, readonly=dry_run)
    except (OSError, sqlite3.Error) as exc:
        _fail(f"cannot open {path}: {exc}")
    try:
        yield shown
    finally:
        shown.close()


def _identity(job: str, tenant: Tenant) -> dict[str, str]:
    return {"job": job, "tenant": tenant.id, "vendor": tenant.vendor, "base_url": tenant.base_url}


@contextmanager
def _stops(checkpoint: Path, dry_run: bool, tenant: Tenant) -> Iterator[None]:
    """What ends a job early, said with what to do next."""
    resume = (
        "nothing was written (dry run)"
        if dry_run
        else f"the checkpoint {checkpoint} keeps what was done: run the same command to continue"
    )
    try:
        yield
    except KeyboardInterrupt:
        _fail(f"interrupted; {resume}", 130)
    except SyncError as exc:
        _fail(f"{exc}; {resume}")
    except Unauthorized as exc:
        # Running it again cannot help until the credentials change.
        var = f"TIERDESK_TENANT_{tenant.id.upper().replace('-', '_')}"
        _fail(
            f"the helpdesk refused tierdesk's credentials ({exc}): check {var}_API_TOKEN"
            f" and {var}_EMAIL, and that the user may read organizations and users"
        )
    except ConnectorError as exc:
        if exc.transient:
            _fail(f"the helpdesk is not answering ({exc}); {resume}", EX_TEMPFAIL)
        _fail(f"the helpdesk refused: {exc}; {resume}")


_COMMON = [
    click.option("--tenant", "tenant_id", required=True, help="The tenant (helpdesk) to sync."),
    click.option(
        "--mappings",
        "mappings_dir",
        envvar="TIERDESK_MAPPINGS",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="Mappings directory (default: $TIERDESK_MAPPINGS or the configuration's).",
    ),
    click.option("--dry-run", is_flag=True, help="Read and compare; write nothing anywhere."),
    click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help=f"Where the checkpoint is kept (default: {STATE_DIR}/ in the mappings directory).",
    ),
    click.option(
        "--restart",
        is_flag=True,
        help="Discard a checkpoint left by an interrupted run and start from the first page.",
    ),
    click.option(
        "--rate",
        type=click.FloatRange(min=1),
        help="Requests a minute to the helpdesk (default: the HTTP policy's, 180).",
    ),
]


def _common(command: Any) -> Any:
    for option in reversed(_COMMON):
        command = option(command)
    return command


@click.group("sync")
def sync() -> None:
    """Keep the mappings and the helpdesk in step (organizations, tiers, named contacts)."""


@sync.command("pull")
@_common
@click.option("--yes", is_flag=True, help="Write the accounts file without asking.")
@click.option(
    "--max-removals",
    type=click.IntRange(min=0),
    default=MAX_REMOVALS,
    show_default=True,
    help="Refuse a pull that would remove more named contacts and site admins than this.",
)
def pull_command(
    tenant_id: str,
    mappings_dir: Path | None,
    dry_run: bool,
    state_dir: Path | None,
    restart: bool,
    rate: float | None,
    yes: bool,
    max_removals: int,
) -> None:
    """Read the helpdesk's organizations and people into accounts.json.

    Shows what changes, account by account and field by field, checks the result with
    the same rules as `tierdesk mappings validate`, and replaces accounts.json at once
    (never half a file). An account the helpdesk does not have is kept and reported.
    """
    settings = _settings()
    tenant = _tenant(settings, tenant_id)
    directory_path = mappings_dir or settings.mappings_dir
    if directory_path is None or directory_path.resolve() == BUNDLED.resolve():
        raise click.UsageError(
            "pull writes accounts.json: give --mappings DIR (or TIERDESK_MAPPINGS); "
            "the bundled defaults are not rewritten"
        )
    directory = directory_for(tenant, rate)
    with (
        _state(state_dir, directory_path, dry_run) as state,
        _shown(state_dir, directory_path, tenant, dry_run) as shown,
    ):
        checkpoint = state / f"{tenant.id}.pull.sqlite3"
        with _stops(checkpoint, dry_run, tenant):
            report = pull(
                directory,
                directory_path,
                checkpoint,
                _identity("pull", tenant),
                dry_run=dry_run,
                progress=ClickProgress(),
                confirm=lambda r: _confirm(r, yes),
                restart=restart,
                shown=shown,
                max_removals=max_removals,
            )
    _print_pull(tenant, report)
    if report.refused or report.declined:
        sys.exit(1)


def _confirm(report: PullReport, yes: bool) -> bool:
    _print_diff(report)
    if yes:
        return True
    try:
        return click.confirm(
            f"Write {report.added + report.changed} account change(s) to {report.path}?",
            default=False,
            err=True,
        )
    except click.Abort:
        return False


def _print_diff(report: PullReport) -> None:
    for diff in report.diffs:
        click.echo(f"{'+' if diff.kind == 'added' else '~'} {diff.account} ({diff.kind})")
        for line in diff.lines:
            click.echo(f"    {line}")
    listed = len(report.diffs)
    if report.added + report.changed > listed:
        click.echo(f"… and {report.added + report.changed - listed} more account(s) changed")
    if report.kept:
        more = report.kept_count - len(report.kept)
        click.echo(
            "= kept, not in the helpdesk: "
            + ", ".join(report.kept)
            + (f" and {more} more" if more else "")
        )
    for note in report.notes:
        click.echo(f"  note: {note}")
    if report.note_count > len(report.notes):
        click.echo(f"  … and {report.note_count - len(report.notes)} more note(s)")


def _print_pull(tenant: Tenant, report: PullReport) -> None:
    if report.dry_run or not report.differs or report.refused:
        _print_diff(report)  # otherwise shown before the confirmation
    # On stderr as well as in the diff: a cron job mails it, --yes or not.
    verb = "removed" if report.written else "would remove"
    for line in report.removed:
        click.echo(f"tierdesk sync: {verb}: {line}", err=True)
    if report.unknown:
        click.echo(
            f"{report.unknown:,} named contact(s) and site admin(s) kept: the helpdesk shows"
            " no flag for them that tierdesk pushed or took (never synced); run"
            " `tierdesk sync push` to show them"
        )
    counts = report.counts
    if counts:
        click.echo(
            f"read from {tenant.vendor} ({tenant.id}): {counts.get('organizations', 0):,} "
            f"organizations, {counts.get('people', 0):,} people in {counts.get('pages', 0):,} "
            f"pages" + (" (continued from a checkpoint)" if report.resumed else "")
        )
    if report.orgs_without_account:
        click.echo(
            f"{report.orgs_without_account} organization(s) name no account and are not in "
            "the mappings: left out"
        )
    if report.flagged_without_account:
        click.echo(
            f"{report.flagged_without_account} flagged people are in no account's "
            "organization: left out"
        )
    click.echo(
        f"accounts: {report.added:,} added, {report.changed:,} changed, {report.unchanged:,} "
        f"unchanged, {report.kept_count:,} kept (not in the helpdesk)"
    )
    if report.refused:
        for problem in report.problems:
            click.echo(f"tierdesk sync: refused: {problem}", err=True)
        click.echo(
            f"tierdesk sync: {len(report.problems)} problem(s); {report.path} not changed",
            err=True,
        )
    elif report.dry_run:
        click.echo("dry run: nothing written")
    elif report.written:
        click.echo(f"written: {report.path}")
    elif report.declined:
        click.echo(f"not written: {report.path} unchanged", err=True)
    else:
        click.echo(f"{report.path} already agrees with the helpdesk: nothing written")


@sync.command("push")
@_common
def push_command(
    tenant_id: str,
    mappings_dir: Path | None,
    dry_run: bool,
    state_dir: Path | None,
    restart: bool,
    rate: float | None,
) -> None:
    """Show the mappings' tiers and named contacts on the helpdesk's organizations and
    users, writing only the records that differ."""
    settings = _settings()
    tenant = _tenant(settings, tenant_id)
    directory_path = mappings_dir or settings.mappings_dir
    hours = hours_statuses(settings.database, directory_path, dry_run=dry_run)
    directory = directory_for(tenant, rate)
    with (
        _state(state_dir, directory_path, dry_run) as state,
        _shown(state_dir, directory_path, tenant, dry_run) as shown,
    ):
        checkpoint = state / f"{tenant.id}.push.sqlite3"
        with _stops(checkpoint, dry_run, tenant):
            report = push(
                directory,
                directory_path or BUNDLED,
                checkpoint,
                _identity("push", tenant),
                dry_run=dry_run,
                progress=ClickProgress(),
                restart=restart,
                hours=hours,
                shown=None if dry_run else shown,
            )
    _print_push(tenant, report)
    if report.refused or any(k.endswith(" refused") for k in report.counts):
        sys.exit(1)


def _ledger_path(database: str) -> Path | None:
    """The SQLite file ``database`` names (as `store.ledger.open_ledger` reads it); None
    for a PostgreSQL database or a setting `store.urls.parse_database` refuses."""
    try:
        parsed = parse_database(database)
    except StoreError:
        return None
    return Path(parsed.target) if parsed.kind == "sqlite" else None


def hours_statuses(
    database: str, mappings_dir: Path | None, *, dry_run: bool
) -> dict[str, str] | None:
    """Each pay-as-you-go account's hours status from the ledger; None (and a note)
    when there is no ledger to read. Mappings that do not load give None silently: the
    push refuses them itself, naming every problem."""
    try:
        rulebook = load_mappings(mappings_dir)
    except MappingError:
        return None
    accounts = hours_accounts(rulebook)
    if not accounts:
        return {}
    path = _ledger_path(database)
    if not has_ledger(database) or (path is not None and not path.is_file()):
        # Opening it would create an empty one, and every account would look unused.
        # The path, never the URL: a postgresql:// one may carry a password.
        where = path or "the configured database"
        click.echo(f"note: no hours ledger at {where} (TIERDESK_DATABASE): hours not pushed")
        return None
    try:
        ledger = open_ledger(database)
        try:
            if not dry_run:
                # As `tierdesk hours` and the worker do: the mappings' bundles, recorded.
                ledger.sync_purchases(rulebook)
            return {
                account.id: ledger.balance(account.id, low_fraction(account, rulebook)).status
                for account in accounts
            }
        finally:
            ledger.close()
    except (StoreError, sqlite3.Error) as exc:
        click.echo(f"note: the hours ledger cannot be read ({exc}): hours not pushed")
        return None


def _print_push(tenant: Tenant, report: PushReport) -> None:
    if report.refused:
        for problem in report.problems:
            click.echo(f"tierdesk sync: refused: {problem}", err=True)
        _fail(f"{len(report.problems)} problem(s) in the mappings: nothing pushed")
    verb = "would write" if report.dry_run else "wrote"
    for line in report.planned:
        click.echo(f"{verb} {line}")
    for line in report.failures:
        click.echo(f"tierdesk sync: refused by the helpdesk: {line}", err=True)
    counts = report.counts
    click.echo(
        f"read from {tenant.vendor} ({tenant.id}): {counts.get('organizations', 0):,} "
        f"organizations, {counts.get('people', 0):,} people in {counts.get('pages', 0):,} pages"
        + (" (continued from a checkpoint)" if report.resumed else "")
    )
    for kind, plural in (("organization", "organizations"), ("person", "people")):
        parts = [
            f"{counts[key]:,} {state}"
            for state in ("written", "to write", "unchanged", "gone", "refused")
            if (key := f"{kind} {state}") in counts
        ]
        if parts:
            click.echo(f"{plural}: {', '.join(parts)}")
    for key in ("organizations not in the mappings", "people not in the mappings"):
        if counts.get(key):
            click.echo(f"{key}: {counts[key]:,}, left alone")
    if report.dry_run:
        click.echo("dry run: nothing written")
