"""`tierdesk hours`: pay-as-you-go balances and the ledger behind them (RULES.md §3).

The mappings' purchases are synced into the ledger first (idempotent: nothing is
written when they are already there), so a bundle added to the mappings shows at once.
A balance counts the bundles bought by today in the account's time zone, as decisions
do; ``--now`` asks about another moment.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from entitlements.accounts import Account
from entitlements.calendars import zone
from entitlements.hours import HoursBalance
from entitlements.ledger import hours_accounts, hours_subscriptions, low_fraction
from entitlements.rulebook import Rulebook
from entitlements.tickets import format_instant
from store import open_ledger
from store.base import StoreError
from store.ledger import Ledger, Statement
from tierdesk.context import parse_now, require_database, rulebook_or_exit, settings_or_fail


@click.command("hours")
@click.option("--account", "account_id", metavar="ID", help="One account, with its ledger entries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option(
    "--mappings",
    "mappings_dir",
    envvar="TIERDESK_MAPPINGS",
    type=click.Path(file_okay=False, path_type=Path),
    help="Mappings directory (default: $TIERDESK_MAPPINGS, else the bundled defaults).",
)
@click.option(
    "--now", "now_text", metavar="ISO", help="Balances as of this instant; default: the clock."
)
def hours(
    account_id: str | None, as_json: bool, mappings_dir: Path | None, now_text: str | None
) -> None:
    """Pay-as-you-go balances: purchased, used, left, low or exhausted, per account;
    with --account, that account's ledger entries too."""
    settings = settings_or_fail()
    rulebook = rulebook_or_exit(mappings_dir or settings.mappings_dir)
    now = parse_now(now_text)
    accounts = hours_accounts(rulebook)
    if account_id is not None:
        accounts = tuple(a for a in accounts if a.id == account_id)
        if not accounts:
            raise click.BadParameter(
                f"no pay-as-you-go account called {account_id!r} in the mappings",
                param_hint="--account",
            )
    require_database(settings)
    try:
        ledger = open_ledger(settings.database)
        try:
            synced = ledger.sync_purchases(rulebook)
            rows = [_row(ledger, rulebook, account, now) for account in accounts]
            statement = ledger.entries(account_id) if account_id is not None else None
            unattributed_s = ledger.unattributed_s()
        finally:
            ledger.close()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if synced.recorded or synced.removed:
        click.echo(
            f"purchases synced from the mappings: {synced.recorded} recorded,"
            f" {synced.removed} removed",
            err=True,
        )
    if as_json:
        doc: dict[str, Any] = {"at": format_instant(now), "accounts": rows}
        if statement is not None:
            doc["entries"] = _entries_json(statement)
        else:
            doc["unattributed_s"] = unattributed_s
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    _print_table(rows)
    if statement is not None:
        _print_entries(statement)
    elif unattributed_s:
        click.echo(
            f"{_h(unattributed_s)} logged on tickets of no known account yet"
            " (their ticket's account is learnt from its next event)",
            err=True,
        )


def _row(ledger: Ledger, rulebook: Rulebook, account: Account, now: datetime) -> dict[str, Any]:
    today = now.astimezone(zone(account.timezone)).date()
    bal = ledger.balance(account.id, low_fraction(account, rulebook), today)
    return {
        "account": account.id,
        "name": account.name,
        "tier": hours_subscriptions(account, rulebook)[0].tier,
        **_balance_json(bal),
    }


def _balance_json(bal: HoursBalance) -> dict[str, Any]:
    return {
        **bal.to_json(),
        "status": bal.status,
        "purchased_s": bal.purchased_s,
        "used_s": bal.used_s,
        "balance_s": bal.balance_s,
        "low_under_s": bal.low_threshold_s,
    }


def _entries_json(statement: Statement) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "kind": p.kind,
            "key": p.key,
            "date": p.purchased_on.isoformat(),
            "seconds": p.seconds,
        }
        for p in statement.purchases
    ]
    out += [
        {
            "kind": "worklog",
            "tenant": w.key.tenant,
            "ticket": w.key.ticket,
            "worklog": w.key.worklog,
            "updated_at": format_instant(w.updated_at),
            "seconds": w.seconds,
            "deleted": w.deleted,
        }
        for w in statement.worklogs
    ]
    return out


def _h(seconds: int) -> str:
    return f"{seconds / 3600:.2f} h"


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no pay-as-you-go accounts in the mappings", err=True)
        return
    width = max(len("account"), *(len(r["account"]) for r in rows))
    click.echo(
        f"{'account':<{width}}  {'tier':<8} {'purchased':>10} {'used':>10} {'balance':>10}  status"
    )
    for r in rows:
        click.echo(
            f"{r['account']:<{width}}  {r['tier']:<8} {_h(r['purchased_s']):>10}"
            f" {_h(r['used_s']):>10} {_h(r['balance_s']):>10}  {r['status']}"
        )


def _print_entries(statement: Statement) -> None:
    click.echo("")
    for p in statement.purchases:
        what, sign = ("purchase", "+") if p.kind == "bundle" else ("carried", "-")
        label = p.key if p.kind == "bundle" else f"{p.key} (used before the ledger)"
        click.echo(
            f"{p.purchased_on.isoformat():<24}  {what:<8}  {label:<40} {sign}{_h(p.seconds)}"
        )
    for w in statement.worklogs:
        label = f"{w.key}" + (" (deleted)" if w.deleted else "")
        amount = "0.00 h" if w.deleted else f"-{_h(w.seconds)}"
        click.echo(f"{format_instant(w.updated_at):<24}  {'worklog':<8}  {label:<40} {amount}")
