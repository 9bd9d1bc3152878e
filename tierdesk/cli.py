"""The `tierdesk` command."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import click
from click.decorators import FC

from entitlements.catalogue import LOCALES
from entitlements.errors import TicketError
from entitlements.tickets import format_instant, parse_instant
from mappings import check_mappings
from store import StoreError
from store.urls import parse_database, shown
from tierdesk.config import ConfigError
from tierdesk.context import parse_now, rulebook_or_exit, settings_or_fail, store_or_fail
from tierdesk.explain import explain_native, explain_one, read_items
from tierdesk.hours_command import hours
from tierdesk.package_command import package
from tierdesk.report_command import report
from tierdesk.setup_command import setup
from tierdesk.sync_command import sync
from webhooks.settings import Settings, Tenant

MAPPINGS_HELP = (
    "Mappings directory (default: $TIERDESK_MAPPINGS, else the configuration file's"
    " `mappings`, else the bundled defaults: what the service decides with)."
)


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
@click.option(
    "--vendor",
    type=click.Choice(["zendesk", "jsm"]),
    help="SOURCE holds a native webhook payload of this helpdesk, not tierdesk tickets.",
)
@click.option(
    "--tenant", "tenant_id", help="With --vendor: read custom fields as this tenant does."
)
@click.option(
    "--locale",
    type=click.Choice(LOCALES),
    help="The explanation's language; default: the --tenant's locale, else en.",
)
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
def explain(
    mappings_dir: Path | None,
    now_text: str | None,
    vendor: str | None,
    tenant_id: str | None,
    locale: str | None,
    source: TextIO,
) -> None:
    """Decide tickets and say why: one JSON decision per line.

    SOURCE is a file (or - for stdin) holding one ticket object, a JSON array of
    them, or JSON lines; with --vendor, one webhook body as that helpdesk sends it.
    Exit code 2 when any ticket could not be decided.
    """
    if mappings_dir is None and os.environ.get("TIERDESK_CONFIG"):
        # The mappings the service uses: an explanation from others would mislead.
        mappings_dir = settings_or_fail().mappings_dir
    rulebook = rulebook_or_exit(mappings_dir)
    now = parse_now(now_text)
    if vendor is not None:
        tenant = _tenant_for(vendor, tenant_id)
        language = locale or tenant.locale
        line, error = explain_native(source.read(), vendor, tenant, rulebook, now, language)
        if error is not None:
            click.echo(f"tierdesk explain: {error}", err=True)
            sys.exit(2)
        click.echo(line)
        return
    failed = False
    for item in read_items(source.read()):
        line, error = explain_one(item, rulebook, now, locale or "en")
        if line is not None:
            click.echo(line)
        else:
            failed = True
            click.echo(f"tierdesk explain: {error}", err=True)
    sys.exit(2 if failed else 0)


def _count(flag: str, default: int, help_text: str, minimum: int = 1) -> Callable[[FC], FC]:
    """A number of processes or threads: zero (or less) of them would do nothing."""
    return click.option(
        flag, default=default, show_default=True, type=click.IntRange(min=minimum), help=help_text
    )


# Inbox workers when none are asked for, by measurement (bench/drain.py and the same
# backlog drained by processes, 2026-12-06). In dry run deciding is all CPU and Python
# holds the GIL for most of an event, so the work spreads over processes, not threads:
# two processes of one thread drain 1.6-1.8x one on SQLite and 2.0x on PostgreSQL, while
# a second thread in one process drains 0.76-0.90x on SQLite (1.3x on PostgreSQL); and
# beside the HTTP processes under load, the webhooks acknowledged were the same with one
# worker process or two (bench/ingest.py). A write to a helpdesk waits on the network with
# the GIL released: two threads drain 1.9x one with a 10 ms API, more with a real one. They
# share their process's request budget per tenant (`connector.http`), which a second
# process would double past the vendor's rate limit: one process, two threads.
def worker_defaults(settings: Settings, processes: int | None = None) -> tuple[int, int]:
    """The measured (processes, threads per process) for ``settings``; ``processes``:
    as asked, when asked. Dry run: up to 2 processes (no more than the cores), one thread
    each (2 for a single process on PostgreSQL); a tenant writing back: 1 process, 2
    threads."""
    if processes is None:
        processes = 1 if settings.writes_back else min(2, _cores())
    postgresql = parse_database(settings.database).kind == "postgresql"  # checked already
    threads = 2 if settings.writes_back or (postgresql and processes == 1) else 1
    return processes, threads


CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def _cores(cpu_max: Path = CPU_MAX) -> int:
    """The cores this process may use: those it may run on, within its container's CPU
    quota (a container limited to one CPU still sees every core of its host)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):  # no cgroup v2 quota here
        pass
    return cores


def _worker_threads(flag: str, help_text: str) -> Callable[[FC], FC]:
    return click.option(
        flag,
        type=click.IntRange(min=1),
        default=None,
        show_default="1 in dry run, else 2 (2 for a single process on PostgreSQL)",
        help=f"{help_text}.",
    )


_HTTP_OPTIONS = [
    click.option("--bind", default="127.0.0.1:8080", show_default=True, help="host:port."),
    _count("--threads", 4, "Request threads per HTTP process."),
    click.option(
        "--access-log/--no-access-log",
        default=False,
        help="A line per request, besides tierdesk's line per event.",
    ),
    click.option(
        "--header-timeout",
        default=10.0,
        show_default=True,
        type=click.FloatRange(min=0.5),
        help="Seconds a request's headers may take to arrive (then 408).",
    ),
    click.option(
        "--body-timeout",
        default=30.0,
        show_default=True,
        type=click.FloatRange(min=0.5),
        help="Seconds its body may take after that (then 408).",
    ),
]


def _http_options(command: Any) -> Any:
    for option in reversed(_HTTP_OPTIONS):
        command = option(command)
    return command


@main.command()
@_http_options
@_count("--workers", 2, "HTTP processes (they share the listening socket).")
@click.option(
    "--worker-processes",
    type=click.IntRange(min=0),
    default=None,
    show_default="2 in dry run (1 on one core), else 1",
    help="Inbox worker processes to run and supervise (0: run `tierdesk worker` yourself).",
)
@_worker_threads("--worker-threads", "Threads per inbox worker process")
def serve(
    bind: str,
    threads: int,
    access_log: bool,
    header_timeout: float,
    body_timeout: float,
    workers: int,
    worker_processes: int | None,
    worker_threads: int | None,
) -> None:
    """Run the service: webhooks and API over HTTP, and the inbox workers."""
    from tierdesk.front import listen  # noqa: PLC0415
    from tierdesk.serve import Supervisor  # noqa: PLC0415

    chosen = _configure_logging()
    settings = settings_or_fail()  # refuse a bad configuration before starting anything
    worker_processes, measured_threads = worker_defaults(settings, worker_processes)
    worker_threads = worker_threads or measured_threads
    if worker_processes > 1 and settings.writes_back:
        logging.getLogger("tierdesk.serve").warning(
            "%d worker processes with a tenant writing back: each has its own request"
            " budget per tenant, so together they may send up to %d times the budget",
            worker_processes,
            worker_processes,
        )
    try:
        listener = listen(bind)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot listen on {bind}: {exc}") from None
    http = [
        *(sys.executable, "-m", "tierdesk", "http", "--fd", str(listener.fileno())),
        *("--threads", str(threads), "--access-log" if access_log else "--no-access-log"),
        *("--header-timeout", str(header_timeout), "--body-timeout", str(body_timeout)),
    ]
    worker_command = [
        *(sys.executable, "-m", "tierdesk", "worker", "--threads", str(worker_threads))
    ]
    started = (
        f"tierdesk serving on http://{bind} (mappings: {settings.mappings_dir or 'bundled'},"
        f" store: {shown(settings.database)}, tenants: {', '.join(settings.tenants) or 'none'},"
        f" HTTP processes: {workers}, inbox workers: "
        + (
            f"{worker_processes} × {worker_threads} thread{'s' if worker_threads > 1 else ''})"
            if worker_processes
            else "none here, run `tierdesk worker`)"
        )
    )
    if chosen == "json":  # every line a JSON object, the start-up line too
        logging.getLogger("tierdesk.serve").info(started)
    else:
        click.echo(started)
    from telemetry.multiprocess import prepare, release  # noqa: PLC0415

    # Before any child starts: each reads the directory when it imports prometheus_client.
    directory, made = prepare()
    try:
        supervisor = Supervisor(
            listener,
            http,
            workers,
            worker_command,
            worker_processes,
            # A draining worker finishes the event in hand, which its lease bounds.
            drain_s=settings.lease_s + 5,
        )
        status = supervisor.run()
    finally:
        release(directory, made)
    sys.exit(status)


@main.command(hidden=True)
@_http_options
@click.option("--fd", type=int, help="Serve on this inherited listening socket (from serve).")
def http(
    bind: str,
    threads: int,
    access_log: bool,
    header_timeout: float,
    body_timeout: float,
    fd: int | None,
) -> None:
    """One HTTP process: the waitress front around the app (what `tierdesk serve` starts)."""
    # Flask and waitress only when serving: `tierdesk explain` should start fast.
    from tierdesk.front import FrontSettings, access_logged, listen, serve_forever  # noqa: PLC0415
    from webhooks.app import create_app  # noqa: PLC0415

    _configure_logging()
    settings = settings_or_fail()
    try:
        app = create_app(settings)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    listener = socket.socket(fileno=fd) if fd is not None else listen(bind)
    front = FrontSettings(
        threads=threads,
        max_body_bytes=settings.max_body_bytes,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
    )
    serve_forever(access_logged(app.wsgi_app) if access_log else app.wsgi_app, listener, front)


@main.command()
@_worker_threads("--threads", "Worker threads in this process")
@click.option(
    "--sweep-every",
    default=15.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between SLA sweeps (one worker of all leads them); 0: never sweep.",
)
def worker(threads: int | None, sweep_every: float) -> None:
    """Process the inbox until stopped (SIGTERM or Ctrl-C); run as many as you like.

    Besides the inbox, one of the running workers sweeps the SLA clocks: tickets at risk,
    breached or due for escalation get their write-back queued."""
    from pipeline.connectors import Connectors  # noqa: PLC0415
    from pipeline.sweep import Sweeper  # noqa: PLC0415
    from pipeline.worker import Worker  # noqa: PLC0415
    from store import has_ledger, open_ledger  # noqa: PLC0415
    from webhooks.live_mappings import LiveMappings  # noqa: PLC0415

    _configure_logging()
    settings = settings_or_fail()
    threads = threads or worker_defaults(settings, processes=1)[1]  # this one process
    store = store_or_fail(settings, existing=False)
    mappings = LiveMappings(settings.mappings_dir)
    connectors = Connectors(mappings)  # one HTTP client and budget per tenant, all threads
    ledger = None
    if has_ledger(settings.database):
        try:
            ledger = open_ledger(settings.database)  # per-thread connections: one for all
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
    else:  # a scheme with no ledger backend (none today: open_store refuses those first)
        logging.getLogger("tierdesk").warning(
            "no hours ledger on this database: pay-as-you-go balances come from the mappings"
        )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Event.set() takes a lock the interrupted main thread may hold (inside
        # stop.wait): set it from a thread of its own, never in the handler itself.
        signal.signal(signum, lambda *_: threading.Thread(target=stop.set, daemon=True).start())
    host = f"{socket.gethostname()}:{os.getpid()}"
    pool = [
        threading.Thread(
            target=Worker(
                store, mappings, settings, writeback=connectors, name=f"{host}:{i}", ledger=ledger
            ).run,
            args=(stop,),
            name=f"worker-{i}",
        )
        for i in range(threads)
    ]
    if sweep_every:
        sweeper = Sweeper(
            store, every_s=sweep_every, name=f"{host}:sweep", tenants=set(settings.tenants)
        )
        pool.append(threading.Thread(target=sweeper.run, args=(stop,), name="sweep"))
    for thread in pool:
        thread.start()
    while any(t.is_alive() for t in pool):
        stop.wait(0.5)
    for thread in pool:
        thread.join()


@main.command()
@click.option("--dead", is_flag=True, help="Queue every dead letter again.")
@click.option("--event", "event", metavar="ID", help="One event: inbox row id, or tenant:event_id.")
@click.option("--since", metavar="ISO", help="Every event received at or after this instant.")
def replay(dead: bool, event: str | None, since: str | None) -> None:
    """Queue events again for the workers (after fixing a mapping, say)."""
    if sum((dead, event is not None, since is not None)) != 1:
        raise click.UsageError("give exactly one of --dead, --event ID, --since ISO")
    since_s = None
    if since is not None:
        try:
            since_s = parse_instant(since, "--since").timestamp()
        except TicketError as exc:
            raise click.BadParameter(exc.message, param_hint="--since") from None
    store = store_or_fail(settings_or_fail())
    try:
        count = store.replay(time.time(), dead=dead, event=event, since=since_s)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if event is not None and count == 0:
        raise click.ClickException(f"no event {event} to queue again (unknown, or still queued)")
    click.echo(f"{count} event(s) queued again")


@main.command()
@click.option("--ticket", required=True, help="Ticket id or key (Zendesk id, Jira key or id).")
@click.option("--tenant", help="Only this tenant's ticket.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per audit row.")
def history(ticket: str, tenant: str | None, as_json: bool) -> None:
    """The audit trail of one ticket: every event, what was decided, what was written."""
    rows = store_or_fail(settings_or_fail()).history(ticket, tenant)
    if not rows:
        click.echo(f"no history for ticket {ticket}", err=True)
        sys.exit(1)
    for row in rows:
        decision = json.loads(row.decision) if row.decision else None
        written = json.loads(row.written) if row.written else None
        at = format_instant(datetime.fromtimestamp(row.at, UTC))
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "at": at,
                        "tenant": row.tenant,
                        "ticket": row.ticket_key,
                        "event_id": row.event_id,
                        "kind": row.kind,
                        "outcome": row.outcome,
                        "decision": decision,
                        "written": written,
                        "note": row.note,
                    },
                    ensure_ascii=False,
                )
            )
            continue
        line = f"{at}  {row.tenant}/{row.ticket_key}  {row.kind:<16} {row.outcome:<11}"
        if decision:
            line += (
                f" tier={decision['tier']} sev={decision['severity']}"
                f" due={decision['first_response_due']}"
                f" reasons={','.join(decision['reasons']) or '-'}"
            )
        if written:
            line += f" write={written['outcome']}"
        if row.note and not decision:
            line += f"  {row.note}"
        click.echo(line)


def _configure_logging() -> str:
    """TIERDESK_LOG_FORMAT for this process (`tierdesk.logs`: every process that serves
    or works calls this first); the format chosen."""
    from tierdesk.logs import configure  # noqa: PLC0415

    try:
        return configure()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _tenant_for(vendor: str, tenant_id: str | None) -> Tenant:
    if tenant_id is None:
        return Tenant(id="explain", vendor=vendor)
    tenant = settings_or_fail().tenants.get(tenant_id)
    if tenant is None or tenant.vendor != vendor:
        raise click.BadParameter(f"no {vendor} tenant called {tenant_id!r}", param_hint="--tenant")
    return tenant


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


# Commands kept in modules of their own, each with its own tests.
main.add_command(hours)
main.add_command(package)
main.add_command(report)
main.add_command(setup)
main.add_command(sync)
