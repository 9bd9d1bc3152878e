"""Where a decision leaves tierdesk: the write-back interface.

The vendor connectors (Zendesk, JSM REST) implement `WriteBack`. `DryRun`, the
embedded default when a tenant has no API credentials, renders what would be written
and sends nothing; the audit trail keeps it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from entitlements.decide import Decision
from entitlements.sla import FirstResponse
from entitlements.tickets import format_instant
from webhooks.events import TicketEvent
from webhooks.settings import Tenant


class WriteBackError(Exception):
    """The helpdesk refused or could not be reached. ``transient``: worth retrying."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: str  # dry_run, written, unchanged
    update: dict[str, Any] = field(default_factory=dict)  # what was (or would be) written
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "update": self.update, "note": self.note}


class WriteBack(Protocol):
    # Whose writes these are: a dry run's "last written" never stands for a real one.
    name: str

    def write(
        self,
        tenant: Tenant,
        event: TicketEvent,
        decision: Decision,
        previous: dict[str, Any] | None,
    ) -> WriteResult:
        """Put ``decision`` on the ticket; ``previous`` is what this writer last wrote
        there (`ticket_update`'s shape), None the first time."""
        ...


# Built once: ``json.dumps`` with any option builds a new encoder per call, a third of
# the time of encoding an update (every decision is compared in this form).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical(update: dict[str, Any]) -> str:
    """One text per update, so that equal updates compare equal as stored JSON."""
    return _CANONICAL.encode(update)


def ticket_update(decision: Decision) -> dict[str, Any]:
    """The vendor-neutral update a decision asks for; connectors render it per vendor.
    Its values are `Decision.to_json`'s, rendered here without the rest of it (the
    explanation's lines are most of that work, and the audit renders it once)."""
    due = format_instant(decision.first_response_due) if decision.first_response_due else None
    return {
        "tier": decision.tier,
        "severity": decision.severity,
        "first_response_due": due,
        "named_contact": decision.named_contact.to_json(),
        "covered": decision.covered,
        "reasons": list(decision.reasons),
        "priority": decision.priority,
        "team": decision.team,
        "tags": list(decision.tags),
        "sla": decision.sla,
        "escalation_level": decision.escalation_level,
        "first_response": _response(decision.first_response),
        "hours": decision.hours.status if decision.hours else None,
    }


def _response(response: FirstResponse | None) -> dict[str, Any] | None:
    """As `Decision.to_json` renders the first response."""
    if response is None:
        return None
    return {
        "at": format_instant(response.at),
        "met": response.met,
        "margin_minutes": round(response.margin.total_seconds() / 60, 1),
    }


class DryRun:
    """Sends nothing; records what would have been written."""

    name = "dry_run"

    def write(
        self,
        tenant: Tenant,
        event: TicketEvent,
        decision: Decision,
        previous: dict[str, Any] | None,
    ) -> WriteResult:
        return WriteResult(
            "dry_run",
            ticket_update(decision),
            f"dry run: tenant {tenant.id} has no API credentials; nothing was sent",
        )
