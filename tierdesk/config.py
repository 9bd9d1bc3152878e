"""Settings from the environment and one optional TOML file (DESIGN.md). Secrets come
only from the environment or from files named there, never from the config file, and
are wrapped so that no repr, log line or error shows them.

| variable | meaning |
|---|---|
| ``TIERDESK_CONFIG`` | a TOML file (below) |
| ``TIERDESK_MAPPINGS`` | mappings directory (default: the bundled mappings) |
| ``TIERDESK_DATABASE``, ``DATABASE_URL`` | SQLite path or postgresql://… (strict: store.urls) |
| ``TIERDESK_API_TOKEN`` | bearer token for ``/api/*`` |
| ``TIERDESK_LEASE_SECONDS``, ``TIERDESK_MAX_ATTEMPTS`` | worker lease and retries |
| ``TIERDESK_TENANTS`` | ``id=vendor,…``: tenants without a config file |
| ``TIERDESK_STATE_DIR`` | where ``tierdesk setup`` records field ids (below) |
| ``TIERDESK_TENANT_<ID>_BASE_URL``, ``…_EMAIL`` | per tenant; ``<ID>`` upper-cased |
| ``TIERDESK_TENANT_<ID>_ACCOUNT_ID`` | Jira Cloud: the API user's accountId (setup records it) |
| ``TIERDESK_TENANT_<ID>_WEBHOOK_SECRET``, ``…_WEBHOOK_SECRET_PREVIOUS`` | signing secrets |
| ``TIERDESK_TENANT_<ID>_EVENT_WEBHOOK_SECRET`` | Zendesk: the event webhook's own secret |
| ``TIERDESK_TENANT_<ID>_BEARER_TOKEN``, ``…_API_TOKEN`` | automation token, API token |
| ``TIERDESK_TENANT_<ID>_APP_TOKEN``, ``…_APP_TOKEN_PREVIOUS`` | the sidebar app's read token |

Every secret variable also has a ``…_FILE`` form naming a file that holds it.

The TOML file::

    database = "/var/lib/tierdesk/tierdesk.sqlite3"
    mappings = "/etc/tierdesk/mappings"

    [tenants.acme-zd]
    vendor = "zendesk"
    base_url = "https://acme.zendesk.com"
    email = "tierdesk@acme.example"
    locale = "ja"   # explanations and internal notes in Japanese (default "en")

    [tenants.acme-jsm]
    vendor = "jsm"
    base_url = "https://acme.atlassian.net"
    [tenants.acme-jsm.fields]
    severity = "customfield_10071"
    organizations = "customfield_10002"
    [tenants.acme-jsm.fields.values.product]
    "Jira Software" = "jira-software"

Field ids recorded by ``tierdesk setup`` (``<state dir>/<tenant>.fields.json``)
---------------------------------------------------------------------------------

``tierdesk setup zendesk|jsm --apply`` creates the fields tierdesk writes and records
their ids in a JSON file per tenant, in the state directory: ``TIERDESK_STATE_DIR``,
else the directory of ``TIERDESK_CONFIG``, else the current directory. A tenant's
`FieldMap` starts from that file when it exists; every key of ``[tenants.X.fields]``
in the TOML file then overrides it, so a hand edit always wins (an empty value
switches a field off). The file is written atomically (temporary file, fsync,
rename), so a reader never sees half of one::

    {"format": "tierdesk.fields/1", "tenant": "acme-jsm", "vendor": "jsm",
     "fields": {"tier": {"id": "customfield_10100", "type": "text"},
                "first_response_due": {"id": "customfield_10101", "type": "datetime"}},
     "webhook": {"id": "42", "url": "https://tierdesk.example/webhooks/jsm/acme-jsm"},
     "triggers": {}}

``type`` (``text``, ``textarea``, ``datetime``, or ``dropdown`` for a read field whose
values are the mappings' slugs) is the kind of field the helpdesk holds, recorded for
the connector (a Jira date-time field takes another format than a text field).
``webhook`` and ``triggers`` say what else setup created or found; settings do not
read them.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from entitlements.catalogue import LOCALES
from store.base import StoreError
from store.urls import parse_database
from webhooks.settings import FieldMap, Secret, Settings, Tenant

VENDORS = ("zendesk", "jsm")
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Keys a secret might be written under in the TOML file, and the variable (suffix) it
# belongs in instead: refused, naming that variable, never quoting the value.
_SECRET_KEYS = {
    "webhook_secret": "WEBHOOK_SECRET",
    "webhook_secrets": "WEBHOOK_SECRET",
    "webhook_secret_previous": "WEBHOOK_SECRET_PREVIOUS",
    "event_webhook_secret": "EVENT_WEBHOOK_SECRET",
    "api_token": "API_TOKEN",
    "bearer_token": "BEARER_TOKEN",
    "app_token": "APP_TOKEN",
    "app_token_previous": "APP_TOKEN_PREVIOUS",
    "password": "API_TOKEN",
    "token": "API_TOKEN",
    "secret": "WEBHOOK_SECRET",
}


FIELDS_FORMAT = "tierdesk.fields/1"
FIELD_TYPES = ("text", "textarea", "datetime", "dropdown")
# The FieldMap entries that hold one field id (the others are tables).
ID_FIELDS = (
    "severity",
    "product",
    "environment",
    "category",
    "organizations",
    "time_spent",
    "tier",
    "first_response_due",
    "named_contact",
    "named_contact_reason",
    "coverage",
    "team",
    "sla",
    "escalation_level",
    "first_response",
    "hours",
)


class ConfigError(Exception):
    """A setting that cannot be used; names the variable or key, never a secret value."""


@dataclass(frozen=True, slots=True)
class FieldRecord:
    """One helpdesk field `tierdesk setup` created or found."""

    id: str
    type: str  # one of FIELD_TYPES


@dataclass(frozen=True, slots=True)
class FieldsFile:
    """``<state dir>/<tenant>.fields.json``: what `tierdesk setup` set up for a tenant."""

    tenant: str
    vendor: str
    fields: dict[str, FieldRecord] = field(default_factory=dict)  # FieldMap name → field
    webhook: dict[str, str] = field(default_factory=dict)  # id, url
    triggers: dict[str, str] = field(default_factory=dict)  # Zendesk: event → trigger id
    # Jira Cloud: the API user as its webhooks name it ({"account_id": …}).
    api_user: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = {
            "format": FIELDS_FORMAT,
            "tenant": self.tenant,
            "vendor": self.vendor,
            "fields": {
                name: {"id": record.id, "type": record.type}
                for name, record in sorted(self.fields.items())
            },
            "webhook": dict(sorted(self.webhook.items())),
            "triggers": dict(sorted(self.triggers.items())),
        }
        if self.api_user:
            doc["api_user"] = dict(sorted(self.api_user.items()))
        return json.dumps(doc, indent=2) + "\n"


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where `tierdesk setup` keeps what it records: ``TIERDESK_STATE_DIR``, else the
    directory of ``TIERDESK_CONFIG``, else the current directory."""
    env = os.environ if env is None else env
    if env.get("TIERDESK_STATE_DIR"):
        return Path(env["TIERDESK_STATE_DIR"])
    if env.get("TIERDESK_CONFIG"):
        return Path(env["TIERDESK_CONFIG"]).parent
    return Path()


def fields_path(directory: Path, tenant_id: str) -> Path:
    return directory / f"{tenant_id}.fields.json"


def read_fields_file(path: Path) -> FieldsFile | None:
    """The recorded fields, None when there is no file; `ConfigError` naming the file
    and the entry when it is not one `tierdesk setup` writes."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FIELDS_FORMAT:
        raise ConfigError(f'{path}: expected an object with "format": "{FIELDS_FORMAT}"')
    for key in ("tenant", "vendor"):
        if not isinstance(doc.get(key), str):
            raise ConfigError(f"{path}: {key}: expected a string")
    fields: dict[str, FieldRecord] = {}
    table = doc.get("fields", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: fields: expected an object")
    for name, entry in table.items():
        where = f"{path}: fields.{name}"
        if name not in ID_FIELDS:
            raise ConfigError(f"{where}: not a field tierdesk knows ({', '.join(ID_FIELDS)})")
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
            raise ConfigError(f'{where}: expected {{"id": "…", "type": "…"}}')
        if entry.get("type") not in FIELD_TYPES:
            raise ConfigError(f"{where}.type: expected one of {list(FIELD_TYPES)}")
        fields[name] = FieldRecord(entry["id"], entry["type"])
    return FieldsFile(
        tenant=doc["tenant"],
        vendor=doc["vendor"],
        fields=fields,
        webhook=_strings(path, "webhook", doc.get("webhook", {})),
        triggers=_strings(path, "triggers", doc.get("triggers", {})),
        api_user=_strings(path, "api_user", doc.get("api_user", {})),
    )


def _strings(path: Path, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{path}: {key}: expected an object of strings")
    return dict(value)


def write_atomically(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` all at once: a temporary file beside it, fsync,
    rename, fsync of the directory. A reader sees the old file or the new one, never
    half of one; the file has ``mode`` from its first byte (0o600 for secrets)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0o600; the umask plays no part either way
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def secret_from(env: Mapping[str, str], name: str) -> Secret | None:
    """``NAME`` itself, or the contents of the file ``NAME_FILE`` (trailing newline dropped)."""
    if env.get(name):
        return Secret(env[name])
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Secret(Path(path).read_text(encoding="utf-8").rstrip("\r\n"))
    except OSError as exc:
        raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        # Never the bytes: they are the secret. Where it breaks helps find a stray BOM
        # or a file saved in another encoding.
        raise ConfigError(
            f"{name}_FILE: {path} is not UTF-8 text (byte {exc.start} cannot be read);"
            " save the secret as UTF-8"
        ) from None


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    file: dict[str, Any] = {}
    if env.get("TIERDESK_CONFIG"):
        file = _read_toml(Path(env["TIERDESK_CONFIG"]))
        _refuse_secrets(file, "the top level", lambda suffix: "TIERDESK_API_TOKEN")
        _refuse_unknown(file, "the top level", _TOP_KEYS)
    mappings = env.get("TIERDESK_MAPPINGS") or file.get("mappings")
    return Settings(
        mappings_dir=Path(mappings) if mappings else None,
        database=_database(env, file),
        api_token=secret_from(env, "TIERDESK_API_TOKEN"),
        tenants=_tenants(env, file.get("tenants", {})),
        lease_s=_number(env, file, "TIERDESK_LEASE_SECONDS", "lease_seconds", 30.0),
        max_attempts=_count(env, file, "TIERDESK_MAX_ATTEMPTS", "max_attempts", 5),
        coalesce_s=_seconds(env, file, "TIERDESK_COALESCE_SECONDS", "coalesce_seconds", 2.0),
    )


def _database(env: Mapping[str, str], file: dict[str, Any]) -> str:
    """The database setting, checked by `store.urls.parse_database`: refused naming the
    variable and what is wrong, never quoting the value (it may hold a password)."""
    for source, value in (
        ("TIERDESK_DATABASE", env.get("TIERDESK_DATABASE")),
        ("DATABASE_URL", env.get("DATABASE_URL")),  # the name platforms (and DESIGN.md) give it
        (f"{env.get('TIERDESK_CONFIG')}: database", file.get("database")),
    ):
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{source}: expected a string")
        try:
            parse_database(value)
        except StoreError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        return value
    return "tierdesk.sqlite3"


# What the TOML file may hold; anything else is refused, so that a misspelt key (a
# "databse", a tenant's "base_ulr") is not silently ignored.
_TOP_KEYS: tuple[str, ...] = ("database", "mappings", "tenants", "lease_seconds")
_TOP_KEYS += ("max_attempts", "coalesce_seconds")
_TENANT_KEYS = ("vendor", "base_url", "email", "account_id", "fields", "deployment", "locale")


def _refuse_unknown(table: dict[str, Any], where: str, known: Iterable[str]) -> None:
    known = tuple(known)
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
            raise ConfigError(f"{where} {key}: not a setting tierdesk knows{hint}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"TIERDESK_CONFIG: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _number(
    env: Mapping[str, str], file: dict[str, Any], var: str, key: str, default: float
) -> float:
    raw = env.get(var) or file.get(key, default)  # an empty variable counts as unset
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{var} / {key}: expected a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{var} / {key}: must be greater than zero (and finite)")
    return value


def _seconds(
    env: Mapping[str, str], file: dict[str, Any], var: str, key: str, default: float
) -> float:
    """Like `_number`, but zero is allowed (no waiting)."""
    raw = env.get(var) or file.get(key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{var} / {key}: expected a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{var} / {key}: must be a finite number, zero or more")
    return value


def _count(env: Mapping[str, str], file: dict[str, Any], var: str, key: str, default: int) -> int:
    value = _number(env, file, var, key, default)
    if value != int(value):
        raise ConfigError(f"{var} / {key}: expected a whole number")
    return int(value)


def _tenants(env: Mapping[str, str], table: Any) -> dict[str, Tenant]:
    if not isinstance(table, dict):
        raise ConfigError("[tenants] must be a table of tenants")
    specs: dict[str, dict[str, Any]] = {}
    for tenant_id, spec in table.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"[tenants.{tenant_id}] must be a table")
        _refuse_secrets(spec, f"[tenants.{tenant_id}]", partial(tenant_variable, tenant_id))
        _refuse_unknown(spec, f"[tenants.{tenant_id}]", _TENANT_KEYS)
        specs[tenant_id] = dict(spec)
    for item in filter(None, (p.strip() for p in env.get("TIERDESK_TENANTS", "").split(","))):
        tenant_id, _, vendor = item.partition("=")
        specs.setdefault(tenant_id.strip(), {})["vendor"] = vendor.strip()
    return {tenant_id: _tenant(tenant_id, spec, env) for tenant_id, spec in specs.items()}


def _refuse_secrets(table: dict[str, Any], where: str, variable: Callable[[str], str]) -> None:
    leaked = sorted(set(_SECRET_KEYS) & set(table))
    if leaked:
        name = variable(_SECRET_KEYS[leaked[0]])
        raise ConfigError(
            f"{where} {leaked[0]}: secrets come from the environment,"
            f" e.g. {name} (or {name}_FILE naming a file)"
        )


def _values(tenant_id: str, values: Any) -> dict[str, dict[str, str]]:
    where = f"[tenants.{tenant_id}.fields.values]"
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a table of tables (field → helpdesk value → slug)")
    out = {}
    for name, table in values.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where} {name}: expected a table of helpdesk value = slug")
        out[str(name)] = {str(raw): str(slug) for raw, slug in table.items()}
    return out


def _groups(tenant_id: str, groups: Any) -> dict[str, str]:
    if not isinstance(groups, dict):
        raise ConfigError(f"[tenants.{tenant_id}.fields.groups] must be a table of team = group id")
    return {str(team): str(group) for team, group in groups.items()}


def _deployment(tenant_id: str, vendor: str, value: Any) -> str:
    if value not in ("cloud", "datacenter") or (vendor == "zendesk" and value != "cloud"):
        raise ConfigError(f"tenant {tenant_id}: deployment must be 'cloud' or 'datacenter' (JSM)")
    return str(value)


def tenant_variable(tenant_id: str, suffix: str) -> str:
    """A tenant's environment variable: ``TIERDESK_TENANT_<ID>_<SUFFIX>``."""
    return f"TIERDESK_TENANT_{tenant_id.upper().replace('-', '_')}_{suffix}"


def _tenant(tenant_id: str, spec: dict[str, Any], env: Mapping[str, str]) -> Tenant:
    if not _TENANT_ID.match(tenant_id):
        raise ConfigError(f"tenant id {tenant_id!r}: use lower-case letters, digits and '-'")
    vendor = spec.get("vendor")
    if vendor not in VENDORS:
        raise ConfigError(
            f"tenant {tenant_id}: vendor must be one of {list(VENDORS)}, got {vendor!r}"
        )
    secrets = tuple(
        s
        for s in (
            secret_from(env, tenant_variable(tenant_id, "WEBHOOK_SECRET")),
            secret_from(env, tenant_variable(tenant_id, "WEBHOOK_SECRET_PREVIOUS")),
            # Zendesk signs each webhook with its own secret: the event-subscribed one
            # (`tierdesk setup zendesk` makes it) is checked like the others.
            secret_from(env, tenant_variable(tenant_id, "EVENT_WEBHOOK_SECRET")),
        )
        if s
    )
    bearer = secret_from(env, tenant_variable(tenant_id, "BEARER_TOKEN"))
    app_tokens = tuple(
        s
        for s in (
            secret_from(env, tenant_variable(tenant_id, "APP_TOKEN")),
            secret_from(env, tenant_variable(tenant_id, "APP_TOKEN_PREVIOUS")),
        )
        if s
    )
    fields = spec.get("fields", {})
    if not isinstance(fields, dict):
        raise ConfigError(f"[tenants.{tenant_id}.fields] must be a table")
    _refuse_unknown(fields, f"[tenants.{tenant_id}.fields]", (*ID_FIELDS, "values", "groups"))
    values = fields.get("values", {})
    # What `tierdesk setup` recorded, then every key the TOML file names: hand edits win.
    recorded = _recorded(tenant_id, vendor, env) or FieldsFile(tenant_id, vendor)
    ids: dict[str, str | None] = {name: record.id for name, record in recorded.fields.items()}
    ids.update({name: _opt(fields[name]) for name in ID_FIELDS if name in fields})
    return Tenant(
        id=tenant_id,
        vendor=vendor,
        base_url=env.get(tenant_variable(tenant_id, "BASE_URL")) or str(spec.get("base_url", "")),
        email=env.get(tenant_variable(tenant_id, "EMAIL")) or str(spec.get("email", "")),
        # Jira Cloud webhooks name the API user by accountId: `tierdesk setup jsm`
        # records it; the variable or the TOML key wins.
        account_id=env.get(tenant_variable(tenant_id, "ACCOUNT_ID"))
        or str(spec.get("account_id", "") or recorded.api_user.get("account_id", "")),
        api_token=secret_from(env, tenant_variable(tenant_id, "API_TOKEN")),
        webhook_secrets=secrets,
        bearer_tokens=(bearer,) if bearer else (),
        app_tokens=app_tokens,
        fields=FieldMap(
            severity=ids.get("severity"),
            product=ids.get("product"),
            environment=ids.get("environment"),
            category=ids.get("category"),
            organizations=ids.get("organizations"),
            time_spent=ids.get("time_spent"),
            values=_values(tenant_id, values),
            tier=ids.get("tier"),
            first_response_due=ids.get("first_response_due"),
            named_contact=ids.get("named_contact"),
            named_contact_reason=ids.get("named_contact_reason"),
            coverage=ids.get("coverage"),
            team=ids.get("team"),
            sla=ids.get("sla"),
            escalation_level=ids.get("escalation_level"),
            first_response=ids.get("first_response"),
            hours=ids.get("hours"),
            groups=_groups(tenant_id, fields.get("groups", {})),
            types={name: r.type for name, r in recorded.fields.items() if name not in fields},
        ),
        deployment=_deployment(tenant_id, vendor, spec.get("deployment", "cloud")),
        locale=_locale(tenant_id, spec.get("locale", "en")),
    )


def _locale(tenant_id: str, value: Any) -> str:
    if value not in LOCALES:
        known = ", ".join(repr(x) for x in LOCALES)
        raise ConfigError(f"tenant {tenant_id}: locale must be one of {known}, got {value!r}")
    return str(value)


def _recorded(tenant_id: str, vendor: str, env: Mapping[str, str]) -> FieldsFile | None:
    path = fields_path(state_dir(env), tenant_id)
    recorded = read_fields_file(path)
    if recorded is None:
        return None
    if (recorded.tenant, recorded.vendor) != (tenant_id, vendor):
        # A copied or renamed file would point this tenant at another helpdesk's fields.
        raise ConfigError(
            f"{path}: written for tenant {recorded.tenant} ({recorded.vendor}),"
            f" not {tenant_id} ({vendor}); run `tierdesk setup {vendor} --tenant {tenant_id}`"
        )
    return recorded


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
