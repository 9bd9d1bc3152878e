"""The ticket as the rules see it, and the JSON shape `tierdesk explain` reads.

```json
{"id": "123", "created_at": "2026-03-06T16:30:00Z", "requester": "alice@acme.example",
 "account": "acme", "organization": {"vendor": "zendesk", "id": 360001},
 "severity": 1, "priority": "urgent", "product": "jira-software",
 "environment": "production", "category": "incident"}
```
Only ``id`` and ``created_at`` are required.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from entitlements.errors import TicketError

# SLA arithmetic runs years past a ticket's creation; datetime ends at 9999, and no
# helpdesk ticket predates 1970. Anything outside is a typo, refused with its field.
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999

_OPTIONAL_TEXT = (
    "requester",
    "account",
    "priority",
    "product",
    "environment",
    "category",
    "vendor",
)


@dataclass(frozen=True, slots=True)
class OrganizationRef:
    vendor: str
    id: str  # ids compare as text: Zendesk's are numbers, JSM's strings


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    created_at: datetime
    requester: str | None = None
    account: str | None = None
    organization: OrganizationRef | None = None
    severity: int | str | None = None  # a level, or a name the mappings know ("P0")
    priority: str | None = None
    product: str | None = None
    environment: str | None = None
    category: str | None = None
    vendor: str | None = None

    @property
    def helpdesk(self) -> str | None:
        return self.vendor or (self.organization.vendor if self.organization else None)


def parse_instant(value: object, field: str) -> datetime:
    """An ISO 8601 instant with an offset (``Z`` or ``+hh:mm``); naive ones are refused."""
    if not isinstance(value, str):
        raise TicketError(field, f"expected an ISO 8601 timestamp string, got {_kind(value)}")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise TicketError(field, f"{value!r} is not an ISO 8601 timestamp") from None
    if instant.tzinfo is None:
        raise TicketError(field, f"{value!r} has no UTC offset; write it as …Z or …+hh:mm")
    if not EARLIEST_YEAR <= instant.year <= LATEST_YEAR:
        raise TicketError(field, f"{value!r} is outside {EARLIEST_YEAR}–{LATEST_YEAR}")
    return instant


def format_instant(instant: datetime) -> str:
    """ISO 8601 UTC with ``Z``; sub-second digits only when there are some."""
    utc = instant.astimezone(UTC)
    text = utc.isoformat(timespec="milliseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_ticket(obj: object) -> Ticket:
    """A `Ticket` from its JSON object, or a `TicketError` naming the first bad field."""
    if not isinstance(obj, dict):
        raise TicketError("ticket", f"expected a JSON object, got {_kind(obj)}")
    ticket_id = obj.get("id")
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, str | int) or ticket_id == "":
        raise TicketError("id", "required: a non-empty string or number")
    if "created_at" not in obj:
        raise TicketError("created_at", "required: the ISO 8601 instant the ticket was opened")
    texts: dict[str, str | None] = {}
    for name in _OPTIONAL_TEXT:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise TicketError(name, f"expected a string, got {_kind(value)}")
        texts[name] = value or None
    return Ticket(
        id=str(ticket_id),
        created_at=parse_instant(obj["created_at"], "created_at"),
        severity=_severity(obj.get("severity")),
        organization=_organization(obj.get("organization")),
        **texts,
    )


def ticket_to_json(ticket: Ticket) -> dict[str, object]:
    """The inverse of `parse_ticket`: ``parse_ticket(ticket_to_json(t)) == t``."""
    # Full precision (not format_instant's milliseconds), so the round trip is exact.
    created = ticket.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    out: dict[str, object] = {"id": ticket.id, "created_at": created}
    for name in ("requester", "account", "severity", *_OPTIONAL_TEXT[2:]):
        value = getattr(ticket, name)
        if value is not None:
            out[name] = value
    if ticket.organization is not None:
        out["organization"] = {"vendor": ticket.organization.vendor, "id": ticket.organization.id}
    return out


def _severity(value: object) -> int | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TicketError("severity", f"expected a level number or name, got {_kind(value)}")
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _organization(value: object) -> OrganizationRef | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TicketError("organization", f"expected an object {{vendor, id}}, got {_kind(value)}")
    vendor, org_id = value.get("vendor"), value.get("id")
    if not isinstance(vendor, str) or not vendor:
        raise TicketError("organization.vendor", "required: the helpdesk, e.g. 'zendesk' or 'jsm'")
    if isinstance(org_id, bool) or not isinstance(org_id, str | int) or org_id == "":
        raise TicketError("organization.id", "required: a string or number")
    return OrganizationRef(vendor, str(org_id))


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
