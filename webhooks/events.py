"""The one shape every vendor's webhook becomes: `TicketEvent`, and the errors and
outcomes of turning a payload into one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from entitlements.errors import TicketError
from entitlements.tickets import Ticket, format_instant, parse_instant, parse_ticket, ticket_to_json

# What tierdesk does something with; other events are acknowledged and ignored.
KINDS = (
    "ticket.created",
    "ticket.updated",
    "ticket.deleted",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "worklog.created",
    "worklog.updated",
    "worklog.deleted",
)


class PayloadError(Exception):
    """A payload that is not what its vendor sends; names the field (a JSON path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed event tierdesk has no use for (acknowledged with 202)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    public: bool
    author: str | None  # email where the vendor gives one, else its user id
    # Whether the vendor says an agent wrote it (JSM: accountType, Zendesk: is_staff);
    # None when the payload does not say.
    by_agent: bool | None = None


@dataclass(frozen=True, slots=True)
class Worklog:
    id: str
    seconds: int | None  # None on deletion


@dataclass(frozen=True, slots=True)
class TicketEvent:
    tenant: str
    vendor: str
    event_id: str  # the delivery's id: the inbox dedupes on (tenant, event_id)
    kind: str
    ticket_id: str  # the stable id the inbox orders by ("" when the event names none)
    ticket_key: str  # what people call it: the Jira key, the Zendesk id
    occurred_at: datetime
    ticket: Ticket | None = None  # present when the payload carries enough to decide
    actor: str | None = None  # who caused the event: tells our own write-backs apart
    comment: Comment | None = None
    worklog: Worklog | None = None
    changes: tuple[str, ...] = ()  # the fields an update changed, where the vendor says
    # The payload lacks fields the rules need (a Zendesk event webhook has no requester
    # email and no custom fields): deciding from it would downgrade the ticket.
    partial: bool = False
    # Solved or closed (True), open again (False), or not said (None): a solved ticket's
    # SLA clock stops, so that no sweep escalates it.
    resolved: bool | None = None
    # Jira Cloud: the reporter's accountId when the webhook hides their email (the
    # default): the pipeline looks the email up (pipeline/requesters.py).
    requester_account: str | None = None

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "tenant": self.tenant,
            "vendor": self.vendor,
            "event_id": self.event_id,
            "kind": self.kind,
            "ticket_id": self.ticket_id,
            "ticket_key": self.ticket_key,
            "occurred_at": format_instant(self.occurred_at),
            "ticket": ticket_to_json(self.ticket) if self.ticket else None,
            "actor": self.actor,
            "comment": _fields(self.comment),
            "worklog": _fields(self.worklog),
            "changes": list(self.changes),
            "partial": self.partial,
            "resolved": self.resolved,
        }
        if self.requester_account is not None:
            doc["requester_account"] = self.requester_account
        # ASCII escapes: a payload's lone surrogate ("\ud800") stays valid in the store.
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TicketEvent:
        doc = json.loads(text)
        comment, worklog = doc.get("comment"), doc.get("worklog")
        return cls(
            tenant=doc["tenant"],
            vendor=doc["vendor"],
            event_id=doc["event_id"],
            kind=doc["kind"],
            ticket_id=doc["ticket_id"],
            ticket_key=doc["ticket_key"],
            occurred_at=parse_instant(doc["occurred_at"], "occurred_at"),
            ticket=parse_ticket(doc["ticket"]) if doc.get("ticket") else None,
            actor=doc.get("actor"),
            comment=Comment(**comment) if comment else None,
            worklog=Worklog(**worklog) if worklog else None,
            changes=tuple(doc.get("changes", ())),
            partial=bool(doc.get("partial", False)),
            resolved=doc.get("resolved"),
            requester_account=doc.get("requester_account"),
        )


# Zendesk's system statuses (and the status categories custom statuses belong to); a
# name not listed here (a custom or translated one) says nothing.
_ZENDESK_STATUS = {"new": False, "open": False, "pending": False, "hold": False}
_ZENDESK_STATUS |= {"on-hold": False, "solved": True, "closed": True}


def zendesk_resolved(status: object) -> bool | None:
    """Solved or closed, from a Zendesk status ("SOLVED" in event webhooks, "Solved"
    from the trigger placeholder); None when it is not one of the system statuses."""
    return _ZENDESK_STATUS.get(status.strip().casefold()) if isinstance(status, str) else None


def own_write(event: TicketEvent, api_user: str) -> bool:
    """The webhook that tierdesk's own write-back caused: its author is the tenant's API
    user. It brings back what tierdesk wrote, and every agent edit sends a webhook of
    its own, so there is nothing to decide from it."""
    return bool(api_user) and (event.actor or "").casefold() == api_user.casefold()


def _fields(value: Comment | Worklog | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {name: getattr(value, name) for name in value.__slots__}


_CONTROL = dict.fromkeys(range(32), "?")


def loggable(value: object) -> str:
    """A sender's value in a log line: one line, bounded (no forged log entries)."""
    return str(value).translate(_CONTROL)[:200]


# -- small readers shared by the vendor parsers --------------------------------------


def need(doc: dict[str, Any], key: str, path: str) -> Any:
    if doc.get(key) in (None, ""):
        raise PayloadError(f"{path}{key}", "required")
    return doc[key]


def obj(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """``doc[key]`` when it is an object, else an empty one (optional parts of a payload)."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def arr(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    return value if isinstance(value, list) else []


def text(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) and value else None


def need_object(doc: Any, path: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise PayloadError(path or "body", "expected a JSON object")
    return doc


def text_id(value: Any, path: str) -> str:
    """An id that may come as a number or a string."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise PayloadError(path, "expected an id (a string or a number)")
    return str(value)


def instant(value: Any, path: str) -> datetime:
    try:
        return parse_instant(value, path)
    except TicketError as exc:
        raise PayloadError(path, exc.message) from None
