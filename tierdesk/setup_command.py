"""``tierdesk setup zendesk|jsm --tenant T [--apply]``: what tierdesk needs in the helpdesk.

It reads what the helpdesk already has, plans (`connector.setup_zendesk`,
`connector.setup_jsm`: create what is missing, reuse what is there, update what
drifted) and prints the plan. Nothing is changed without ``--apply``; with it, the
plan is carried out and the field ids go to ``<state dir>/<tenant>.fields.json``, from
where `tierdesk.config` builds the tenant's field map. Running it again creates
nothing new.

The webhook's secret goes to ``<state dir>/<tenant>.webhook-secret`` (mode 0600),
never to the terminal: Zendesk's signing secret is read back from Zendesk, the JSM
one is made here (`secrets.token_urlsafe`) and given to Jira. The command prints the
file's path and the variable that points tierdesk at it.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from connector import setup_jsm, setup_zendesk
from connector.errors import ConnectorError
from connector.fields import FieldMap
from connector.http import HttpClient
from connector.setup import Plan, Ref, SetupError, Step, Text, execute
from entitlements.rulebook import Rulebook
from mappings import MappingError, load_mappings
from pipeline.connectors import tenant_auth  # one place builds a tenant's credentials
from tierdesk.config import (
    ConfigError,
    FieldRecord,
    FieldsFile,
    fields_path,
    settings_from_env,
    tenant_variable,
    write_atomically,
)
from tierdesk.config import state_dir as default_state_dir
from webhooks.settings import Tenant
from webhooks.zendesk import TRIGGER_BODY

# TRIGGER_BODY's stand-ins for the ids of the fields tierdesk reads.
READ_FIELDS = {
    "SEVERITY_FIELD_ID": "severity",
    "PRODUCT_FIELD_ID": "product",
    "ENVIRONMENT_FIELD_ID": "environment",
    "CATEGORY_FIELD_ID": "category",
    "TIME_SPENT_FIELD_ID": "time_spent",
}
_DONE = {"create": "created", "update": "updated", "reuse": "reused"}
_AGAIN = " What was created stays; run it again to go on."


def trigger_body(event: str, fields: FieldMap | Mapping[str, str | Ref | None]) -> str | Text:
    """The JSON text a Zendesk trigger sends for ``event``: `TRIGGER_BODY` with the
    field ids in its placeholders (a tenant's `FieldMap`, or name → id, a `Ref` for a
    field the same setup run creates: the text is then a `Text` resolved when the
    trigger is written). A field no one maps is sent as "", which the receiver takes as
    absent (setup says so)."""
    body = copy.deepcopy(TRIGGER_BODY)
    body["event"] = event
    ids = (
        {name: getattr(fields, name) for name in READ_FIELDS.values()}
        if isinstance(fields, FieldMap)
        else fields
    )
    refs: list[Ref] = []

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        if isinstance(value, str):
            for stand_in, name in READ_FIELDS.items():
                if stand_in in value:
                    field_id = ids.get(name)
                    if isinstance(field_id, Ref):
                        refs.append(field_id)
                        # A marker no JSON text holds, split on below.
                        return value.replace(stand_in, f"\x00{len(refs) - 1}\x00")
                    return value.replace(stand_in, field_id) if field_id else ""
        return value

    text = json.dumps(fill(body), indent=2)
    if not refs:
        return text
    pieces = text.split("\\u0000")
    parts: list[str | Ref] = [
        piece if i % 2 == 0 else refs[int(piece)] for i, piece in enumerate(pieces)
    ]
    return Text(tuple(parts))


@click.command("setup")
@click.argument("vendor", type=click.Choice(["zendesk", "jsm"]))
@click.option("--tenant", "tenant_id", required=True, help="The tenant, as configured.")
@click.option("--apply", "apply", is_flag=True, help="Do it (default: print what would be done).")
@click.option(
    "--service-url",
    envvar="TIERDESK_SERVICE_URL",
    required=True,
    metavar="URL",
    help="Where the helpdesk reaches tierdesk, e.g. https://tierdesk.example.com"
    " (default: $TIERDESK_SERVICE_URL).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the field ids and the webhook secret (default: $TIERDESK_STATE_DIR,"
    " else the directory of $TIERDESK_CONFIG, else the current directory).",
)
@click.option(
    "--jql",
    help="JSM: the issues whose events the webhook sends, e.g. 'project in (HELP, OPS)'.",
)
def setup(
    vendor: str,
    tenant_id: str,
    apply: bool,
    service_url: str,
    state_dir: Path | None,
    jql: str | None,
) -> None:
    """Create, once, the fields, webhook and triggers tierdesk needs in VENDOR.

    Prints what it would create and what exists and would be reused; --apply does it
    and writes the field ids where tierdesk's configuration reads them.
    """
    if vendor == "jsm" and not (jql or "").strip():
        raise click.BadParameter(
            "JSM needs the issues to watch, e.g. --jql 'project = HELP'", param_hint="--jql"
        )
    if vendor == "zendesk" and jql:
        raise click.BadParameter(
            "only for jsm (Zendesk triggers watch every ticket)", param_hint="--jql"
        )
    try:
        settings = settings_from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    tenant = settings.tenants.get(tenant_id)
    if tenant is None or tenant.vendor != vendor:
        known = ", ".join(t for t, s in settings.tenants.items() if s.vendor == vendor) or "none"
        raise click.BadParameter(
            f"no {vendor} tenant called {tenant_id!r} (configured: {known})", param_hint="--tenant"
        )
    _check_credentials(tenant)
    endpoint = f"{_service_url(service_url)}/webhooks/{vendor}/{tenant_id}"
    configured_dir = default_state_dir(os.environ)
    directory = (state_dir or configured_dir).resolve()
    try:
        client = HttpClient(tenant.base_url, tenant_auth(tenant))
    except ConnectorError as exc:
        raise click.ClickException(f"tenant {tenant_id}: {exc}") from None
    run = _Run(tenant, endpoint, directory, apply)
    try:
        if apply:
            # It will hold the webhook secret: only its owner may look inside.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if vendor == "zendesk":
            run.zendesk(client, settings.mappings_dir)
        else:
            run.jsm(client, (jql or "").strip())
    except SetupError as exc:
        raise click.ClickException(f"{exc}.{_AGAIN if apply else ''}") from None
    except OSError as exc:  # the state directory: missing rights, full disk…
        where = exc.filename or directory
        raise click.ClickException(f"{where}: {exc.strerror}.{_AGAIN}") from None
    if apply and directory != configured_dir.resolve():
        click.echo(
            f"tierdesk reads field ids from {configured_dir.resolve()}: set"
            f" TIERDESK_STATE_DIR={directory} where it runs"
        )


def _check_credentials(tenant: Tenant) -> None:
    missing = []
    if not tenant.base_url:
        missing.append(f"{tenant_variable(tenant.id, 'BASE_URL')} (or base_url)")
    if tenant.api_token is None:
        missing.append(f"{tenant_variable(tenant.id, 'API_TOKEN')}[_FILE]")
    if not tenant.email and (tenant.vendor == "zendesk" or tenant.deployment == "cloud"):
        missing.append(f"{tenant_variable(tenant.id, 'EMAIL')} (or email)")
    if missing:
        raise click.ClickException(
            f"tenant {tenant.id}: setup calls the helpdesk as an admin and needs "
            + ", ".join(missing)
        )


def _service_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.username is not None or parts.password is not None:
        # Not quoted back: the URL itself holds a credential.
        raise click.BadParameter("a URL with user:password@ is refused", param_hint="--service-url")
    loopback = False
    try:
        loopback = ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        loopback = parts.hostname == "localhost"
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise click.BadParameter(
            f"{url!r}: the helpdesk calls tierdesk over https", param_hint="--service-url"
        )
    if not parts.hostname or parts.query or parts.fragment:
        raise click.BadParameter(
            f"{url!r}: expected https://host[/path]", param_hint="--service-url"
        )
    return url.strip().rstrip("/")


class _Run:
    """One run of the command: prints as it goes, writes only with ``apply``."""

    def __init__(self, tenant: Tenant, endpoint: str, directory: Path, apply: bool) -> None:
        self.tenant = tenant
        self.endpoint = endpoint
        self.apply = apply
        self.fields_file = fields_path(directory, tenant.id)
        self.secret_file = directory / f"{tenant.id}.webhook-secret"
        # Zendesk: the event-subscribed webhook signs with a secret of its own.
        self.event_secret_file = directory / f"{tenant.id}.event-webhook-secret"

    # -- Zendesk ------------------------------------------------------------------------

    def zendesk(self, client: HttpClient, mappings_dir: Path | None) -> None:
        rulebook = _rulebook(mappings_dir)
        fields = self.tenant.fields
        plan = setup_zendesk.plan(
            setup_zendesk.read_state(client),
            tenant_id=self.tenant.id,
            endpoint=self.endpoint,
            trigger_bodies=trigger_body,
            tiers=[(tier.id, tier.name) for tier in rulebook.tiers.values()],
            read=setup_zendesk.read_fields(
                rulebook.severity.levels,
                rulebook.products,
                rulebook.environments,
                rulebook.categories,
            ),
            configured={name: getattr(fields, name) for name in setup_zendesk.PLACEHOLDERS},
            values=fields.values,
        )
        webhook = _step(plan, "webhook")
        fetch_secret = webhook.kind == "create" or not self.secret_file.exists()
        events = _step(plan, "event_webhook")
        fetch_event_secret = events.kind == "create" or not self.event_secret_file.exists()
        self._header(plan)
        if not self.apply:
            self._show(plan.steps)
            if fetch_secret:
                self._would(f"write the webhook's signing secret to {self.secret_file} (0600)")
            if fetch_event_secret:
                self._would(
                    f"write the event webhook's signing secret to {self.event_secret_file} (0600)"
                )
            self._would(f"write the field ids to {self.fields_file}")
            self._footer(plan)
            return
        ids = execute(client, plan)
        self._show(plan.steps, ids)
        if fetch_secret:
            self._write_secret(setup_zendesk.signing_secret(client, ids["webhook"]))
        self._tell_secret(wrote=fetch_secret)
        if fetch_event_secret:
            secret = setup_zendesk.signing_secret(client, ids["event_webhook"])
            write_atomically(self.event_secret_file, secret + "\n", mode=0o600)
        self._tell_secret(wrote=fetch_event_secret, event=True)
        self._record(plan, ids, {e: ids[f"trigger:{e}"] for e in setup_zendesk.TRIGGER_TITLES})
        self._footer(plan)

    # -- JSM ------------------------------------------------------------------------------

    def jsm(self, client: HttpClient, jql: str) -> None:
        api = "/rest/api/3" if self.tenant.deployment == "cloud" else "/rest/api/2"
        known = self._known_secret()
        plan = setup_jsm.plan(
            setup_jsm.read_state(client, api),
            tenant_id=self.tenant.id,
            endpoint=self.endpoint,
            jql=jql,
            secret_known=known is not None,
            api=api,
        )
        webhook = _step(plan, "webhook")
        new_secret = webhook.kind != "reuse" and known is None
        self._header(plan)
        if not self.apply:
            self._show(plan.steps)
            if new_secret:
                self._would(f"make a webhook secret and write it to {self.secret_file} (0600)")
            self._would(f"write the field ids to {self.fields_file}")
            if self.tenant.deployment == "cloud":
                self._would("record the API user's accountId (GET /rest/api/3/myself)")
            self._footer(plan)
            return
        secret = known
        if new_secret:
            # Written before Jira gets it: a webhook must never hold a secret nobody has.
            secret = secrets.token_urlsafe(32)
            self._write_secret(secret)
        ids = execute(client, plan, secrets={"webhook": secret} if secret else {})
        self._show(plan.steps, ids)
        self._tell_secret(wrote=new_secret)
        # Jira Cloud webhooks name tierdesk's API user by accountId only: recorded, so
        # that the webhooks of tierdesk's own writes are known as such (`own_write`).
        cloud = self.tenant.deployment == "cloud"
        api_user = {"account_id": setup_jsm.api_account_id(client)} if cloud else {}
        self._record(plan, ids, {}, api_user)
        self._footer(plan)

    def _known_secret(self) -> str | None:
        """The JSM webhook's secret as tierdesk has it: the recorded file, else the
        tenant's configured current secret."""
        try:
            recorded = self.secret_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            recorded = ""
        except OSError as exc:
            raise SetupError(f"cannot read {self.secret_file}: {exc.strerror}") from None
        if recorded:
            return recorded
        configured = self.tenant.webhook_secrets
        return configured[0].reveal() if configured else None

    # -- output and files -------------------------------------------------------------------

    def _header(self, plan: Plan) -> None:
        mode = "" if self.apply else " (dry run: nothing is changed; --apply does it)"
        click.echo(
            f"tierdesk setup {plan.vendor} for tenant {self.tenant.id}"
            f" at {self.tenant.base_url}{mode}"
        )

    def _show(self, steps: Iterable[Step], ids: dict[str, str] | None = None) -> None:
        for step in steps:
            verb = _DONE[step.kind] if ids is not None else step.kind
            found = (ids or {}).get(step.ref) or step.id
            line = f"  {verb:<8}{step.what}" + (f": id {found}" if found else "")
            click.echo(line + (f" ({step.note})" if step.note else ""))

    def _would(self, text: str) -> None:
        click.echo(f"  would   {text}")

    def _footer(self, plan: Plan) -> None:
        counts = {kind: sum(1 for s in plan.steps if s.kind == kind) for kind in _DONE}
        if self.apply:
            summary = ", ".join(f"{_DONE[kind]} {n}" for kind, n in counts.items())
        else:
            summary = ", ".join(f"to {kind} {n}" for kind, n in counts.items())
        click.echo(summary[0].upper() + summary[1:] + ".")
        for note in plan.notes:
            click.echo(f"Note: {note}")

    def _write_secret(self, secret: str) -> None:
        write_atomically(self.secret_file, secret + "\n", mode=0o600)

    def _tell_secret(self, *, wrote: bool, event: bool = False) -> None:
        """Where a webhook's secret is and how tierdesk finds it (never the secret itself):
        after writing it, and on every run while its own variable is unset (an earlier
        run may have stopped before saying so). ``event``: the Zendesk event webhook's.
        Its variable, not the tenant's secrets, says what is configured: those hold the
        secrets of both webhooks."""
        suffix, path = ("WEBHOOK_SECRET", self.secret_file)
        label = "the webhook secret"
        if event:
            suffix, path = ("EVENT_WEBHOOK_SECRET", self.event_secret_file)
            label = "the event webhook's secret"
        name = tenant_variable(self.tenant.id, suffix)
        configured = os.environ.get(name) or os.environ.get(f"{name}_FILE")
        if not wrote and (configured or not path.exists()):
            return
        where = f"wrote {label} to" if wrote else f"{label} is in"
        click.echo(f"{where} {path} (mode 0600); tell tierdesk:")
        if wrote and os.environ.get(name):
            # A new webhook has a new secret, and a value in the variable would win over
            # the file: it must go (empty counts as unset).
            click.echo("  (a new webhook: the secret configured now is the old one's; clear it)")
            click.echo(f"  {name}=")
        click.echo(f"  {name}_FILE={path}")

    def _record(
        self,
        plan: Plan,
        ids: dict[str, str],
        triggers: dict[str, str],
        api_user: dict[str, str] | None = None,
    ) -> None:
        fields = {
            name: FieldRecord(field_id, field_type)
            for name, (field_id, field_type) in plan.field_records(ids).items()
        }
        recorded = FieldsFile(
            tenant=self.tenant.id,
            vendor=self.tenant.vendor,
            fields=fields,
            webhook={"id": ids["webhook"], "url": self.endpoint},
            triggers=triggers,
            api_user=api_user or {},
        )
        write_atomically(self.fields_file, recorded.to_json())
        click.echo(f"wrote the field ids to {self.fields_file}")
        if api_user:
            click.echo(f"recorded the API user's accountId {api_user['account_id']}")


def _rulebook(mappings_dir: Path | None) -> Rulebook:
    """The mappings: their tiers are the options of the organizations' tier drop-down,
    their severities, products, environments and categories those of the read fields.
    What is added later gets its option from the next run of setup."""
    try:
        return load_mappings(mappings_dir)
    except MappingError as exc:
        problems = "; ".join(str(p) for p in exc.problems[:5])
        raise SetupError(f"the mappings do not load (tiers unknown): {problems}") from None


def _step(plan: Plan, ref: str) -> Step:
    return next(step for step in plan.steps if step.ref == ref)
