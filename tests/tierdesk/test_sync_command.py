"""`tierdesk sync pull|push` through click's CliRunner (`tierdesk.sync_command.sync`).

The tenant comes from the environment as an operator configures it; the helpdesk is
`FakeZendesk` on `responses`. A 429 here says ``Retry-After: 0``: the command's HTTP
client really sleeps, and the tests must not.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner, Result

from mappings import BUNDLED, load_mappings
from store import open_ledger
from tests.connector.directory_support import (
    FakeZendesk,
    Storm,
    assert_directory_request,
    zendesk_org,
    zendesk_user,
)
from tierdesk.sync_command import STATE_DIR, sync

BASE = "https://acme.zendesk.com"
TOKEN = "zd-api-token-s3cret"
ENV = {
    "TIERDESK_TENANTS": "acme-zd=zendesk",
    "TIERDESK_TENANT_ACME_ZD_BASE_URL": BASE,
    "TIERDESK_TENANT_ACME_ZD_EMAIL": "ops@acme.example",
    "TIERDESK_TENANT_ACME_ZD_API_TOKEN": TOKEN,
}
FAST = ["--rate", "100000"]  # no waiting on the request budget


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("TIERDESK_"):
            monkeypatch.delenv(name)
    # The default database (tierdesk.sqlite3) is relative: never one of the checkout's.
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(BUNDLED, target)
    return target


class Helpdesk:
    def __init__(self) -> None:
        self.orgs = [
            zendesk_org(360001, "Acme Corp", domains=("acme.example",)),
            zendesk_org(360002, "Globex", tier="select"),
            zendesk_org(360003, "Initech"),
            zendesk_org(
                600, "Stark", domains=("stark.example",), account="stark", tier="saas-24x7"
            ),
        ]
        self.users = [
            zendesk_user(1, "alice@acme.example", org=360001, contact="acme:direct"),
            zendesk_user(
                2, "JohnSmith_PartnerCompanyA@acme.example", org=360001, contact="acme:partner"
            ),
            zendesk_user(3, "hank@acme.example", org=360001, admin="acme:SEN-1234"),
            zendesk_user(4, "bob@acme.example", org=360001, contact="acme:direct"),
        ]
        self.storms: list[Storm] = []
        self.fake: FakeZendesk | None = None

    @property
    def last(self) -> FakeZendesk:
        assert self.fake is not None
        return self.fake

    def run(
        self, args: list[str], stdin: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            self.fake = FakeZendesk(rsps, BASE, self.orgs, self.users, page_size=2)
            self.fake.storms = self.storms
            result = CliRunner().invoke(sync, args, input=stdin, env={**ENV, **(env or {})})
            for request in self.fake.requests:
                assert_directory_request("zendesk", request)
        assert TOKEN not in result.output and TOKEN not in result.stderr
        return result


@pytest.fixture
def helpdesk() -> Iterator[Helpdesk]:
    yield Helpdesk()


def accounts(directory: Path) -> dict[str, Any]:
    document = json.loads((directory / "accounts.json").read_text(encoding="utf-8"))
    return {a["id"]: a for a in document["accounts"]}


def pull(directory: Path, *more: str) -> list[str]:
    return ["pull", "--tenant", "acme-zd", "--mappings", str(directory), *FAST, *more]


def test_pull_yes_shows_the_diff_and_writes(helpdesk: Helpdesk, directory: Path) -> None:
    result = helpdesk.run(pull(directory, "--yes"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "~ acme (changed)\n    subscriptions[0].named_contacts: +bob@acme.example\n" in out
    assert "+ stark (added)" in out
    assert "= kept, not in the helpdesk: umbrella" in out
    assert "accounts: 1 added, 1 changed, 2 unchanged, 1 kept (not in the helpdesk)" in out
    assert "read from zendesk (acme-zd): 4 organizations, 4 people in 4 pages" in out
    assert f"written: {directory / 'accounts.json'}" in out
    assert "organizations" in result.stderr  # the progress bar's label (not a terminal)
    assert "bob@acme.example" in accounts(directory)["acme"]["subscriptions"][0]["named_contacts"]
    assert not (directory / STATE_DIR / "acme-zd.pull.sqlite3").exists()


def test_a_cron_pull_after_a_fresh_setup_drops_no_named_contact(
    helpdesk: Helpdesk, directory: Path
) -> None:
    # setup made the user fields, empty; the cron job runs `sync pull --yes` before any
    # push. acme's Premier contacts and site admin must all stay.
    for user in helpdesk.users:
        user["user_fields"] = {}
    result = helpdesk.run(pull(directory, "--yes"))
    assert result.exit_code == 0, result.output
    acme = accounts(directory)["acme"]
    assert acme["subscriptions"][0]["named_contacts"] == ["alice@acme.example"]
    assert acme["subscriptions"][0]["partner_contacts"] == [
        "JohnSmith_PartnerCompanyA@acme.example"
    ]
    assert acme["subscriptions"][1]["site_admins"] == ["hank@acme.example"]
    assert "3 named contact(s) and site admin(s) kept: the helpdesk shows no flag" in result.stdout
    assert "removed" not in result.stderr


def test_a_cron_pull_says_on_stderr_whom_it_removed_and_refuses_a_mass_removal(
    helpdesk: Helpdesk, directory: Path
) -> None:
    assert helpdesk.run(pull(directory, "--yes")).exit_code == 0  # takes bob
    assert helpdesk.run(["push", "--tenant", "acme-zd", "--mappings", str(directory), *FAST])
    assert (directory / STATE_DIR / "acme-zd.flags.sqlite3").is_file()

    helpdesk.users[3]["user_fields"] = {}  # bob, cleared by an admin
    result = helpdesk.run(pull(directory, "--yes"))
    assert result.exit_code == 0, result.output
    assert (
        "tierdesk sync: removed: acme: named contact bob@acme.example removed: the helpdesk"
        " no longer shows the flag it showed at the last sync"
    ) in result.stderr

    original = (directory / "accounts.json").read_bytes()
    for user in helpdesk.users:
        user["user_fields"] = {}  # the field deleted and made again
    refused = helpdesk.run(pull(directory, "--yes", "--max-removals", "2"))
    assert refused.exit_code == 1
    assert "[too_many_removals] the pull would remove 3 named contacts" in refused.stderr
    assert "tierdesk sync: would remove: acme: named contact alice@acme.example" in refused.stderr
    assert (directory / "accounts.json").read_bytes() == original


@pytest.mark.parametrize(("answer", "written"), [("n\n", False), ("y\n", True), ("", False)])
def test_pull_asks_before_writing(
    helpdesk: Helpdesk, directory: Path, answer: str, written: bool
) -> None:
    original = (directory / "accounts.json").read_bytes()
    result = helpdesk.run(pull(directory), stdin=answer)
    assert "Write 2 account change(s) to" in result.stderr
    assert result.exit_code == (0 if written else 1), result.output
    assert ((directory / "accounts.json").read_bytes() != original) is written


def test_pull_dry_run_writes_nothing_anywhere(helpdesk: Helpdesk, directory: Path) -> None:
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    result = helpdesk.run(pull(directory, "--dry-run"))
    assert result.exit_code == 0, result.output
    assert "~ acme (changed)" in result.stdout
    assert "dry run: nothing written" in result.stdout
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_pull_refusal_names_account_address_and_rule(helpdesk: Helpdesk, directory: Path) -> None:
    helpdesk.users[3] = zendesk_user(4, "bob@elsewhere.example", org=360001, contact="direct")
    original = (directory / "accounts.json").read_bytes()
    result = helpdesk.run(pull(directory, "--yes"))
    assert result.exit_code == 1
    assert (
        "tierdesk sync: refused: accounts.json#/accounts/0/subscriptions/0/named_contacts/1: "
        "[foreign_domain] account acme: bob@elsewhere.example is not on the account's domains"
    ) in result.stderr
    assert "not changed" in result.stderr
    assert (directory / "accounts.json").read_bytes() == original


def test_pull_after_a_429_storm_continues_from_the_checkpoint(
    helpdesk: Helpdesk, directory: Path
) -> None:
    helpdesk.storms.append(Storm("/api/v2/users", count=100, skip=1, retry_after="0"))
    stopped = helpdesk.run(pull(directory, "--yes"))
    assert stopped.exit_code == 75, stopped.output
    checkpoint = directory / STATE_DIR / "acme-zd.pull.sqlite3"
    assert (
        f"the checkpoint {checkpoint} keeps what was done: run the same command" in stopped.stderr
    )
    assert checkpoint.exists()
    helpdesk.storms.clear()
    resumed = helpdesk.run(pull(directory, "--yes"))
    assert resumed.exit_code == 0, resumed.output
    assert "(continued from a checkpoint)" in resumed.stdout
    assert [kind for kind, _ in helpdesk.last.pages_served] == ["users"]
    assert not checkpoint.exists()


def test_pull_needs_a_mappings_directory(helpdesk: Helpdesk) -> None:
    result = helpdesk.run(["pull", "--tenant", "acme-zd", "--yes"])
    assert result.exit_code == 2
    assert "give --mappings DIR" in result.output


def test_an_unknown_tenant(helpdesk: Helpdesk, directory: Path) -> None:
    result = helpdesk.run(["pull", "--tenant", "nope", "--mappings", str(directory)])
    assert result.exit_code == 2
    assert "no tenant 'nope' (acme-zd)" in result.output


def test_a_tenant_without_credentials(directory: Path) -> None:
    env = {k: v for k, v in ENV.items() if not k.endswith("API_TOKEN")}
    result = CliRunner().invoke(sync, ["push", "--tenant", "acme-zd", "--dry-run"], env=env)
    assert result.exit_code == 1
    assert "TIERDESK_TENANT_ACME_ZD_API_TOKEN" in result.stderr


def test_push_dry_run_then_push(helpdesk: Helpdesk, directory: Path) -> None:
    args = ["push", "--tenant", "acme-zd", "--mappings", str(directory), *FAST]
    dry = helpdesk.run([*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert helpdesk.last.writes() == []
    assert "would write organization 360002 (globex):" in dry.stdout
    assert "dry run: nothing written" in dry.stdout
    assert not (directory / STATE_DIR).exists()

    done = helpdesk.run(args)
    assert done.exit_code == 0, done.output
    assert len(helpdesk.last.writes()) == 4  # 3 organizations, bob's flag cleared
    assert "organizations: 3 written" in done.stdout
    assert "people: 1 written, 3 unchanged" in done.stdout

    again = helpdesk.run(args)
    assert again.exit_code == 0
    assert helpdesk.last.writes() == []
    assert "organizations: 3 unchanged" in again.stdout
    assert "organizations not in the mappings: 1, left alone" in again.stdout


def test_push_exits_1_when_the_helpdesk_refuses_a_write(
    helpdesk: Helpdesk, directory: Path
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeZendesk(rsps, BASE, helpdesk.orgs, helpdesk.users, page_size=2)
        fake.refuse = {360002}
        result = CliRunner().invoke(
            sync, ["push", "--tenant", "acme-zd", "--mappings", str(directory), *FAST], env=ENV
        )
    assert result.exit_code == 1
    assert "refused by the helpdesk: organization 360002 (globex)" in result.stderr


def test_restart_discards_the_checkpoint(helpdesk: Helpdesk, directory: Path) -> None:
    helpdesk.storms.append(Storm("/api/v2/users", count=100, retry_after="0"))
    assert helpdesk.run(pull(directory, "--yes")).exit_code == 75
    helpdesk.storms.clear()
    again = helpdesk.run(pull(directory, "--yes", "--restart"))
    assert again.exit_code == 0, again.output
    assert "continued from a checkpoint" not in again.stdout
    assert [kind for kind, _ in helpdesk.last.pages_served] == ["organizations"] * 2 + ["users"] * 2


# -- hours: the pay-as-you-go status from the hours ledger --------------------------------

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def ledger_with_worklogs(path: Path, directory: Path, *hours: float) -> None:
    """A real ledger: the mappings' purchases, and time logged on an initech ticket."""
    ledger = open_ledger(str(path))
    try:
        ledger.sync_purchases(load_mappings(directory))
        ledger.link_ticket("acme-zd", "501", "initech", T0)
        for n, h in enumerate(hours):
            ledger.record_worklog("acme-zd", "501", f"w{n}", round(h * 3600), T0)
    finally:
        ledger.close()


def hours_shown(helpdesk: Helpdesk) -> Any:
    return next(o for o in helpdesk.orgs if o["id"] == 360003)["organization_fields"].get(
        "tierdesk_hours"
    )


def test_push_writes_each_pay_as_you_go_accounts_hours_status(
    helpdesk: Helpdesk, directory: Path, tmp_path: Path
) -> None:
    # initech: 2 bundles of 20 h, 37 h used before the ledger: 3 h left, under 20 % of
    # the last bundle (4 h): low.
    database = tmp_path / "tierdesk.sqlite3"
    ledger_with_worklogs(database, directory, 0.5)
    env = {"TIERDESK_DATABASE": str(database)}
    args = ["push", "--tenant", "acme-zd", "--mappings", str(directory), *FAST]

    dry = helpdesk.run([*args, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert '"tierdesk_hours": "low"' in dry.stdout
    assert helpdesk.last.writes() == []

    done = helpdesk.run(args, env=env)
    assert done.exit_code == 0, done.output
    assert hours_shown(helpdesk) == "low"
    assert helpdesk.run(args, env=env).exit_code == 0
    assert helpdesk.last.writes() == []  # agrees: nothing sent

    ledger_with_worklogs(database, directory, 0.5, 3)  # 3 h more on the ticket
    again = helpdesk.run(args, env=env)
    assert again.exit_code == 0, again.output
    assert [json.loads(r.body or b"") for r in helpdesk.last.writes()] == [
        {"organization": {"organization_fields": {"tierdesk_hours": "exhausted"}}}
    ]

    # A bundle bought (in the mappings): the next push records it and shows ok.
    document = accounts(directory)
    document["initech"]["subscriptions"][0]["bundles"].append(
        {"hours": 20, "purchased": "2026-09-01"}
    )
    whole = json.loads((directory / "accounts.json").read_text(encoding="utf-8"))
    whole["accounts"] = list(document.values())
    (directory / "accounts.json").write_text(json.dumps(whole), encoding="utf-8")
    bought = helpdesk.run(args, env=env)
    assert bought.exit_code == 0, bought.output
    assert hours_shown(helpdesk) == "ok"


def test_push_without_a_database_skips_hours_and_creates_none(
    helpdesk: Helpdesk, directory: Path, tmp_path: Path
) -> None:
    database = tmp_path / "nowhere" / "tierdesk.sqlite3"
    args = ["push", "--tenant", "acme-zd", "--mappings", str(directory), *FAST]

    result = helpdesk.run(args, env={"TIERDESK_DATABASE": str(database)})

    assert result.exit_code == 0, result.output
    assert (
        f"note: no hours ledger at {database} (TIERDESK_DATABASE): hours not pushed"
        in result.stdout
    )
    assert not database.exists() and not database.parent.exists()
    assert hours_shown(helpdesk) is None
    assert "organizations: 3 written" in result.stdout  # the rest is pushed as ever
