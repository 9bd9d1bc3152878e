"""`tierdesk explain`: decide tickets read from JSON and say why.

Input is one ticket object, a JSON array of them, or JSON lines. Each ticket yields
one JSON decision line on stdout; a ticket that cannot be decided yields a message on
stderr naming it and the field, and the others are still decided.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from entitlements.decide import decide
from entitlements.errors import EntitlementError, TicketError
from entitlements.rulebook import Rulebook
from entitlements.tickets import parse_ticket, ticket_to_json
from webhooks import jsm, zendesk
from webhooks.events import Ignored, PayloadError
from webhooks.settings import Tenant


@dataclass(frozen=True, slots=True)
class Item:
    """One input ticket, where it came from, or why it could not be read."""

    where: str  # "ticket 2" or "line 7"
    value: Any = None
    error: str | None = None


def read_items(text: str) -> Iterator[Item]:
    """The tickets in ``text``: an object, an array of objects, or JSON lines."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        yield from _json_lines(text)
        return
    except RecursionError:
        yield Item("input", error="not JSON: nested too deeply to read")
        return
    if isinstance(document, list):
        for i, value in enumerate(document, start=1):
            yield Item(f"ticket {i}", value)
    else:
        yield Item("ticket 1", document)


def _json_lines(text: str) -> Iterator[Item]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Item(f"line {number}", json.loads(line))
        except json.JSONDecodeError as exc:
            yield Item(f"line {number}", error=f"not JSON: {exc.msg} at column {exc.colno}")
        except RecursionError:
            yield Item(f"line {number}", error="not JSON: nested too deeply to read")


def explain_one(
    item: Item, rulebook: Rulebook, now: datetime, locale: str = "en"
) -> tuple[str | None, str | None]:
    """(decision line, None) or (None, error line); the explanation in ``locale``."""
    if item.error is not None:
        return None, f"{item.where}: {item.error}"
    label = item.where
    if isinstance(item.value, dict) and isinstance(item.value.get("id"), str | int):
        label = f"{item.where} (id {item.value['id']})"
    try:
        decision = decide(parse_ticket(item.value), rulebook, now)
    except TicketError as exc:
        return None, f"{label}: field {exc.field}: {exc.message}"
    except EntitlementError as exc:
        return None, f"{label}: {exc}"
    return json.dumps(decision.to_json(locale), ensure_ascii=False), None


def explain_native(
    text: str, vendor: str, tenant: Tenant, rulebook: Rulebook, now: datetime, locale: str = "en"
) -> tuple[str | None, str | None]:
    """Decide a native webhook body the way the intake and worker would."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "not JSON: nested too deeply to read"
    parse = zendesk.normalize if vendor == "zendesk" else jsm.normalize
    try:
        event = parse(document, tenant, "")
    except PayloadError as exc:
        return None, f"{vendor} payload: field {exc.field}: {exc.message}"
    if isinstance(event, Ignored):
        return None, f"{vendor} payload ignored: {event.reason}"
    if event.ticket is None:
        return (
            None,
            f"{vendor} {event.kind} event for {event.ticket_key} carries no ticket to decide",
        )
    if event.partial:
        return None, (
            f"{vendor} {event.kind} event for {event.ticket_key} carries no requester or custom"
            " fields: tierdesk decides Zendesk tickets from its trigger body"
        )
    item = Item(f"{vendor} {event.kind}", ticket_to_json(event.ticket))
    return explain_one(item, rulebook, now, locale)
