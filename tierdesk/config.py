"""Settings from the environment (DESIGN.md: environment variables; secrets from the
environment or from files, never logged).

| variable | meaning |
|---|---|
| ``TIERDESK_MAPPINGS`` | mappings directory (default: the bundled mappings) |
| ``TIERDESK_DATABASE`` | SQLite file path (default ``tierdesk.sqlite3``) |
| ``TIERDESK_API_TOKEN`` / ``TIERDESK_API_TOKEN_FILE`` | bearer token for ``/api/*`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from webhooks.settings import Secret, Settings


class ConfigError(Exception):
    """A setting that cannot be used; says which variable and why (never its value)."""


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
    mappings = env.get("TIERDESK_MAPPINGS")
    return Settings(
        mappings_dir=Path(mappings) if mappings else None,
        database=env.get("TIERDESK_DATABASE", "tierdesk.sqlite3"),
        api_token=secret_from(env, "TIERDESK_API_TOKEN"),
    )
