"""What one running tierdesk needs to know: pure data, read elsewhere (`tierdesk.config`).

Secrets are wrapped in `Secret`, whose repr and str never show the value, so a
settings object can be logged or shown in a traceback without leaking anything.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path

from connector.fields import FieldMap

__all__ = ["FieldMap", "Secret", "Settings", "Tenant"]  # FieldMap: tenants carry one


class Secret:
    """A credential: compare it or reveal it on purpose, never print it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison (a timing side channel would leak the value)."""
        return hmac.compare_digest(self._value.encode(), candidate.encode())

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


@dataclass(frozen=True, slots=True)
class Tenant:
    """One helpdesk instance tierdesk serves; its id is in the webhook URL."""

    id: str
    vendor: str  # "zendesk" or "jsm"
    base_url: str = ""
    email: str = ""  # the API user (Zendesk email/token, Jira Cloud email + token)
    # Jira Cloud: the API user's accountId, the only name its webhooks give it (emails
    # are hidden by default); `tierdesk setup jsm` records it.
    account_id: str = ""
    api_token: Secret | None = None
    webhook_secrets: tuple[Secret, ...] = ()  # current first; a second while rotating
    bearer_tokens: tuple[Secret, ...] = ()  # JSM Automation "Send web request"
    # The Zendesk sidebar app's read-only token (its secure setting): it reads this
    # tenant's decisions and nothing else.
    app_tokens: tuple[Secret, ...] = ()
    fields: FieldMap = field(default_factory=FieldMap)
    deployment: str = "cloud"  # JSM: "cloud" (REST v3, email + token) or "datacenter" (v2, PAT)
    # The language of the explanations and internal notes tierdesk writes for this
    # tenant: one of `entitlements.catalogue.LOCALES`.
    locale: str = "en"

    @property
    def api_users(self) -> tuple[str, ...]:
        """Every name the helpdesk's webhooks may give tierdesk's own API user."""
        return tuple(name for name in (self.email, self.account_id) if name)

    @property
    def writes_back(self) -> bool:
        """It has what a write to its helpdesk needs; without, its write-back is the
        dry run (`pipeline.connectors`)."""
        return bool(self.base_url and self.api_token)


@dataclass(frozen=True, slots=True)
class Settings:
    mappings_dir: Path | None = None  # None: the bundled mappings
    # A SQLite path, or postgresql://… (which may carry a password: never in the repr).
    database: str = field(default="tierdesk.sqlite3", repr=False)
    api_token: Secret | None = None  # for /api/*; without one only loopback may call
    max_body_bytes: int = 1024 * 1024
    tenants: dict[str, Tenant] = field(default_factory=dict)
    lease_s: float = 30.0  # a killed worker's event is claimed again after this
    max_attempts: int = 5  # then the event is a dead letter
    # A new event waits this long before a worker takes it: a burst of one ticket's
    # events (an agent's quick edits) coalesces into one decision and one write.
    coalesce_s: float = 2.0

    @property
    def writes_back(self) -> bool:
        """Some tenant writes to its helpdesk; none: every write-back is a dry run."""
        return any(tenant.writes_back for tenant in self.tenants.values())
