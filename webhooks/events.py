"""The one shape every vendor's webhook becomes: `TicketEvent`, and the errors and
outcomes of turning a payload into one."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from entitlements.errors import TicketError
from entitlements.tickets import Ticket, format_instant, parse_instant, parse_ticket, ticket_to_json

# Built once (``json.dumps`` with an option builds an encoder per call, a third of the
# time of a small event). ASCII escapes: a payload's lone surrogate ("\ud800") stays
# valid in the store.
_COMPACT = json.JSONEncoder(separators=(",", ":"))

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
        return _COMPACT.encode(self._doc())

    def _doc(self) -> dict[str, Any]:
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
        return doc

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


def own_write(event: TicketEvent, api_users: Collection[str]) -> bool:
    """The webhook that tierdesk's own write-back caused: its author is the tenant's API
    user, by any of its names (`Tenant.api_users`: its email and, on Jira Cloud, whose
    webhooks name people by accountId only, its accountId). It brings back what tierdesk
    wrote, and every agent edit sends a webhook of its own, so there is nothing to
    decide from it."""
    return is_api_user(event.actor, api_users)


def is_api_user(name: str | None, api_users: Collection[str]) -> bool:
    """``name`` (an actor, a comment's author) is one of the API user's names, whatever
    its case; no name is nobody's."""
    folded = (name or "").casefold()
    return bool(folded) and any(folded == user.casefold() for user in api_users)


def _fields(value: Comment | Worklog | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {name: getattr(value, name) for name in value.__slots__}


# What could forge, split or hide a log line: C0 and C1 controls and DEL (newlines,
# NUL, terminal escapes), the Unicode line and paragraph separators, the bidirectional
# overrides and isolates ("Trojan Source", CVE-2021-42574), and lone surrogates (a
# stream handler cannot encode them and would print a traceback instead of the line).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
LOGGABLE_CHARS = 200


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def loggable(value: object, limit: int = LOGGABLE_CHARS) -> str:
    """A sender's value as it may appear in a log line: one line (every character that
    could end, forge or hide a line written as a backslash escape) and at most ``limit``
    characters of it, marked with "…" when cut. The one path every value taken from a
    payload goes through on its way to a log. Applying it again changes nothing (within
    a larger limit): the log formatters apply it to every field they are given."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    text = _UNSAFE.sub(_escaped, text[:limit])
    if len(text) > limit:  # escapes take several characters each
        text, cut = text[:limit], True
    return text + "…" if cut else text


def log_event(logger: logging.Logger, level: int, **fields: object) -> None:
    """One log line about an event: ``key=value`` pairs in the message, and the same
    fields on the record (``extra=``) for the JSON log format, every value `loggable`.
    None values are left out."""
    if not logger.isEnabledFor(level):
        return
    safe = {key: _field(value) for key, value in fields.items() if value is not None}
    # The line itself, not a format and its arguments: with no arguments, logging does
    # not %-format it again (a value's own "%" stays as it is).
    message = " ".join(f"{key}={value}" for key, value in safe.items())
    logger.log(level, message, extra=safe)


def _field(value: object) -> object:
    return (
        value if isinstance(value, int | float) and not isinstance(value, bool) else loggable(value)
    )


def unstorable(event: TicketEvent, doc: Any) -> PayloadError | None:
    """Why ``event`` cannot be kept as it is on every store, or None.

    A NUL character (U+0000) fits in a SQLite text column, but PostgreSQL's text types
    refuse it (and ``jsonb`` refuses ``\\u0000``), so the same valid, signed payload
    was queued on one store and answered 503 for ever on the other. Such a value is
    refused with 400, as Django's forms and Django REST framework's ``CharField`` do for
    the same reason (``ProhibitNullCharactersValidator``, Django ticket #28201; DRF pull
    7333), rather than altered: no helpdesk sends a NUL in an id, a key or an email,
    and a changed id would name another ticket. So is a lone
    surrogate, which no store can encode. Every text the event keeps is checked: the
    ids go to text columns at once, the rest when the worker records the clock or the
    hours ledger. ``field`` is the value's JSON path in ``doc`` (the vendor's body)
    where it can be found there, else its name in the event."""
    for name, text in _texts(event._doc(), ""):
        if "\x00" in text:
            problem = "holds a NUL character (U+0000), which tierdesk does not store"
        elif not _encodable(text):
            problem = "is not valid Unicode (a lone surrogate)"
        else:
            continue
        return PayloadError(_path_of(doc, text, "") or name, problem)
    return None


def _texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield from _texts(key, where)
            yield from _texts(item, where)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _texts(item, f"{path}[{i}]")


def _path_of(doc: Any, text: str, path: str) -> str | None:
    for where, found in _texts(doc, path):
        if found == text:
            return where
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
