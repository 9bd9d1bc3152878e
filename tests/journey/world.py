"""A new install of tierdesk next to a Zendesk twin and a Jira Cloud twin.

`World` holds what a helpdesk admin has: a configuration directory (TOML file, state
directory, a mappings directory copied from the bundled one), the environment the
`tierdesk` commands run with, and the two helpdesks (`tests.twins`). tierdesk is
driven through its own entry points only:

- the command line (`tierdesk.cli.main` under click's `CliRunner`, with ``env``);
- the Flask app of `webhooks.app.create_app`, to which the twins deliver their signed
  webhooks (through Flask's test client: real request bytes, real signature checks);
- `Worker` and `Sweeper` objects on the same store, with the world's clock injected.

The world's clock (`World.now`) is a simulated day next March, a Wednesday (no holiday
in any of the bundled accounts' regions), so that it is always ahead of the real clock
the intake stamps events with (a worker claims events whose time has come by its own
clock). Zendesk's signature timestamps stay on the real clock, since the intake checks
them against its own.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import responses
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient

from pipeline.connectors import Connectors
from pipeline.sweep import Sweeper
from pipeline.worker import Outcome, Worker
from store import Store, open_ledger
from tests.twins.jira import JiraTwin
from tests.twins.zendesk import ZendeskTwin
from tierdesk.cli import main
from tierdesk.config import settings_from_env
from webhooks.app import create_app
from webhooks.live_mappings import LiveMappings

BUNDLED = Path(__file__).resolve().parents[2] / "mappings" / "data"
SERVICE = "https://tierdesk.acme.example"
ZD, JSM = "acme-zd", "acme-jsm"


def next_march_wednesday() -> datetime:
    march = datetime(datetime.now(UTC).year + 1, 3, 1, tzinfo=UTC)
    return march + timedelta(days=(2 - march.weekday()) % 7 + 7)  # the second Wednesday


@dataclass
class World:
    root: Path
    now: datetime = field(default_factory=lambda: next_march_wednesday().replace(hour=8))
    cli_results: list[tuple[tuple[str, ...], Result]] = field(default_factory=list)
    groups: dict[str, int] = field(default_factory=dict)  # Zendesk group name → id

    def __post_init__(self) -> None:
        self.mappings = self.root / "mappings"
        self.state = self.root / "state"
        self.database = str(self.root / "tierdesk.sqlite3")
        self.mappings.mkdir()
        self.state.mkdir()
        for name in ("tiers.json", "calendars.json", "accounts.json"):
            shutil.copy(BUNDLED / name, self.mappings / name)
        self._extend_contracts()
        self.zendesk = ZendeskTwin(clock=self.clock, deliver=self.deliver)
        self.jira = JiraTwin(clock=self.clock, deliver=self.deliver)
        self._app: Flask | None = None
        self._client: FlaskClient | None = None
        self.undelivered: list[tuple[str, int]] = []

    def clock(self) -> datetime:
        return self.now

    def stamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def timestamp(self) -> float:
        return self.now.timestamp()

    def at(self, hour: int, minute: int = 0) -> None:
        moment = self.now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        assert moment >= self.now, (moment, self.now)
        self.now = moment

    def _extend_contracts(self) -> None:
        """The bundled contracts end before next March: a customer who renewed."""
        path = self.mappings / "accounts.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        for account in doc["accounts"]:
            for subscription in account.get("subscriptions", []):
                if "ends" in subscription:
                    subscription["ends"] = "2099-01-01"
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    def accounts(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.mappings / "accounts.json").read_text("utf-8"))
        return doc

    # -- configuration -----------------------------------------------------------------

    def write_config(self, zendesk_fields: dict[str, Any], jsm_fields: dict[str, Any]) -> None:
        def table(name: str, values: dict[str, Any]) -> list[str]:
            lines = [f"[{name}]"]
            nested = {k: v for k, v in values.items() if isinstance(v, dict)}
            for key, value in values.items():
                if not isinstance(value, dict):
                    lines.append(f"{json.dumps(key)} = {json.dumps(value)}")
            for key, value in nested.items():
                lines += ["", *table(f"{name}.{key}", value)]
            return lines

        lines = [
            f"database = {json.dumps(self.database)}",
            f"mappings = {json.dumps(str(self.mappings))}",
            "",
            *table(
                f"tenants.{ZD}",
                {
                    "vendor": "zendesk",
                    "base_url": self.zendesk.base,
                    "email": self.zendesk.email,
                    "fields": zendesk_fields,
                },
            ),
            "",
            *table(
                f"tenants.{JSM}",
                {
                    "vendor": "jsm",
                    "base_url": self.jira.base,
                    "email": self.jira.email,
                    "fields": jsm_fields,
                },
            ),
        ]
        text = "\n".join(lines) + "\n"
        tomllib.loads(text)  # a typo here would be the test's, not tierdesk's
        (self.root / "tierdesk.toml").write_text(text, encoding="utf-8")

    @property
    def env(self) -> dict[str, str]:
        env = {
            "TIERDESK_CONFIG": str(self.root / "tierdesk.toml"),
            "TIERDESK_STATE_DIR": str(self.state),
            "TIERDESK_COALESCE_SECONDS": "0",
            "TIERDESK_TENANT_ACME_ZD_API_TOKEN": self.zendesk.token,
            "TIERDESK_TENANT_ACME_JSM_API_TOKEN": self.jira.token,
        }
        for tenant in (ZD, JSM):
            secret = self.state / f"{tenant}.webhook-secret"
            if secret.exists():
                env[f"TIERDESK_TENANT_{tenant.upper().replace('-', '_')}_WEBHOOK_SECRET_FILE"] = (
                    str(secret)
                )
        events = self.state / f"{ZD}.event-webhook-secret"
        if events.exists():
            # Zendesk gives each webhook its own secret: setup wrote the event webhook's.
            env["TIERDESK_TENANT_ACME_ZD_EVENT_WEBHOOK_SECRET_FILE"] = str(events)
        return env

    def cli(self, *args: str, expect: int | None = 0) -> Result:
        result = CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)
        self.cli_results.append((args, result))
        if expect is not None:
            assert result.exit_code == expect, (args, result.output)
        return result

    # -- the service --------------------------------------------------------------------

    def start(self) -> None:
        """The service as configured now (after setup: the secrets exist)."""
        settings = settings_from_env(self.env)
        self._app = create_app(settings)
        self._client = self._app.test_client()
        self.settings = settings
        self.store: Store = self._app.extensions["tierdesk.store"]
        self.live = LiveMappings(self.mappings, check_every_s=0.0)
        self.connectors = Connectors(self.live)
        self.ledger = open_ledger(self.database)
        self._workers: dict[str, Worker] = {}

    def deliver(self, url: str, headers: dict[str, str], body: bytes) -> int:
        if self._client is None:
            self.undelivered.append((url, 0))  # nobody listens yet: the vendor gives up
            return 0
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == SERVICE, url
        response = self._client.post(parts.path, data=body, headers=headers)
        if response.status_code >= 300:
            self.undelivered.append((url, response.status_code))
        return response.status_code

    def worker(self, name: str = "w1") -> Worker:
        if name not in self._workers:
            self._workers[name] = Worker(
                self.store,
                self.live,
                self.settings,
                writeback=self.connectors,
                clock=self.timestamp,
                name=name,
                ledger=self.ledger,
            )
        return self._workers[name]

    def drain(self, name: str = "w1", limit: int = 200) -> list[Outcome]:
        """Run a worker until the inbox has nothing for it now."""
        outcomes: list[Outcome] = []
        for _ in range(limit):
            outcome = self.worker(name).run_once()
            if outcome is None:
                return outcomes
            outcomes.append(outcome)
        raise AssertionError(f"the inbox did not empty in {limit} events: {outcomes[-5:]}")

    def sweep(self) -> None:
        sweeper = Sweeper(self.store, clock=self.timestamp, name="sweep-1")
        sweeper.run_once()

    def install(self, mock: responses.RequestsMock) -> None:
        self.zendesk.install(mock)
        self.jira.install(mock)

    def explain(self, tickets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        out = CliRunner().invoke(
            main,
            # No --mappings: explain reads the configuration's, as the service does.
            ["explain", "--now", self.stamp(), "-"],
            input=json.dumps(list(tickets)),
            env=self.env,
            catch_exceptions=False,
        )
        assert out.exit_code == 0, out.output
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
