"""Settings from the environment and one optional TOML file (DESIGN.md). Secrets come
only from the environment or from files named there, never from the config file, and
are wrapped so that no repr, log line or error shows them.

| variable | meaning |
|---|---|
| ``TIERDESK_CONFIG`` | a TOML file (below) |
| ``TIERDESK_MAPPINGS`` | mappings directory (default: the bundled mappings) |
| ``TIERDESK_DATABASE`` | SQLite file path (default ``tierdesk.sqlite3``) |
| ``TIERDESK_API_TOKEN`` | bearer token for ``/api/*`` |
| ``TIERDESK_LEASE_SECONDS``, ``TIERDESK_MAX_ATTEMPTS`` | worker lease and retries |
| ``TIERDESK_TENANTS`` | ``id=vendor,…``: tenants without a config file |
| ``TIERDESK_TENANT_<ID>_BASE_URL``, ``…_EMAIL`` | per tenant; ``<ID>`` upper-cased |
| ``TIERDESK_TENANT_<ID>_WEBHOOK_SECRET``, ``…_WEBHOOK_SECRET_PREVIOUS`` | signing secrets |
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

    [tenants.acme-jsm]
    vendor = "jsm"
    base_url = "https://acme.atlassian.net"
    [tenants.acme-jsm.fields]
    severity = "customfield_10071"
    organizations = "customfield_10002"
    [tenants.acme-jsm.fields.values.product]
    "Jira Software" = "jira-software"
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from webhooks.settings import FieldMap, Secret, Settings, Tenant

VENDORS = ("zendesk", "jsm")
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SECRET_KEYS = {
    "webhook_secret",
    "webhook_secrets",
    "api_token",
    "bearer_token",
    "password",
    "token",
    "secret",
}


class ConfigError(Exception):
    """A setting that cannot be used; names the variable or key, never a secret value."""


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


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    file: dict[str, Any] = {}
    if env.get("TIERDESK_CONFIG"):
        file = _read_toml(Path(env["TIERDESK_CONFIG"]))
        _refuse_secrets(file, "the top level", "TIERDESK_API_TOKEN")
    mappings = env.get("TIERDESK_MAPPINGS") or file.get("mappings")
    return Settings(
        mappings_dir=Path(mappings) if mappings else None,
        database=env.get("TIERDESK_DATABASE") or file.get("database") or "tierdesk.sqlite3",
        api_token=secret_from(env, "TIERDESK_API_TOKEN"),
        tenants=_tenants(env, file.get("tenants", {})),
        lease_s=_number(env, file, "TIERDESK_LEASE_SECONDS", "lease_seconds", 30.0),
        max_attempts=_count(env, file, "TIERDESK_MAX_ATTEMPTS", "max_attempts", 5),
        coalesce_s=_seconds(env, file, "TIERDESK_COALESCE_SECONDS", "coalesce_seconds", 2.0),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"TIERDESK_CONFIG: cannot read {path}: {exc.strerror}") from None
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
        _refuse_secrets(spec, f"[tenants.{tenant_id}]", _var(tenant_id, "WEBHOOK_SECRET"))
        specs[tenant_id] = dict(spec)
    for item in filter(None, (p.strip() for p in env.get("TIERDESK_TENANTS", "").split(","))):
        tenant_id, _, vendor = item.partition("=")
        specs.setdefault(tenant_id.strip(), {})["vendor"] = vendor.strip()
    return {tenant_id: _tenant(tenant_id, spec, env) for tenant_id, spec in specs.items()}


def _refuse_secrets(table: dict[str, Any], where: str, variable: str) -> None:
    leaked = _SECRET_KEYS & set(table)
    if leaked:
        raise ConfigError(
            f"{where} {sorted(leaked)[0]}: secrets come from the environment,"
            f" e.g. {variable} (or {variable}_FILE naming a file)"
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


def _var(tenant_id: str, suffix: str) -> str:
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
            secret_from(env, _var(tenant_id, "WEBHOOK_SECRET")),
            secret_from(env, _var(tenant_id, "WEBHOOK_SECRET_PREVIOUS")),
        )
        if s
    )
    bearer = secret_from(env, _var(tenant_id, "BEARER_TOKEN"))
    app_tokens = tuple(
        s
        for s in (
            secret_from(env, _var(tenant_id, "APP_TOKEN")),
            secret_from(env, _var(tenant_id, "APP_TOKEN_PREVIOUS")),
        )
        if s
    )
    fields = spec.get("fields", {})
    if not isinstance(fields, dict):
        raise ConfigError(f"[tenants.{tenant_id}.fields] must be a table")
    values = fields.get("values", {})
    return Tenant(
        id=tenant_id,
        vendor=vendor,
        base_url=env.get(_var(tenant_id, "BASE_URL")) or str(spec.get("base_url", "")),
        email=env.get(_var(tenant_id, "EMAIL")) or str(spec.get("email", "")),
        api_token=secret_from(env, _var(tenant_id, "API_TOKEN")),
        webhook_secrets=secrets,
        bearer_tokens=(bearer,) if bearer else (),
        app_tokens=app_tokens,
        fields=FieldMap(
            severity=_opt(fields.get("severity")),
            product=_opt(fields.get("product")),
            environment=_opt(fields.get("environment")),
            category=_opt(fields.get("category")),
            organizations=_opt(fields.get("organizations")),
            values=_values(tenant_id, values),
            tier=_opt(fields.get("tier")),
            first_response_due=_opt(fields.get("first_response_due")),
            named_contact=_opt(fields.get("named_contact")),
            named_contact_reason=_opt(fields.get("named_contact_reason")),
            coverage=_opt(fields.get("coverage")),
            team=_opt(fields.get("team")),
            groups=_groups(tenant_id, fields.get("groups", {})),
        ),
        deployment=_deployment(tenant_id, vendor, spec.get("deployment", "cloud")),
    )


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
