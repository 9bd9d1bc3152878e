"""What a decision asks of a ticket, vendor-neutral and pure: field values, the note
text, and the rules that keep tierdesk from fighting agents."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.fields import FieldMap
from entitlements.catalogue import contact_status, messages, stage, term
from entitlements.decide import Decision
from entitlements.explanation import DEFAULT_LOCALE, ResponseText
from entitlements.tickets import format_instant


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a connector did with one decision."""

    outcome: str  # written, unchanged, ticket_gone, ticket_closed
    update: dict[str, Any]  # the body sent (empty when nothing was)
    calls: int
    note: str = ""


# The parts of a decision whose change deserves an internal note; routing and tags
# alone do not.
MATERIAL = (
    "tier",
    "severity",
    "first_response_due",
    "named_contact",
    "covered",
    "sla",
    "escalation_level",
    "first_response",
    "hours",
)


def helpdesk_value(fields: FieldMap, name: str, slug: str) -> str:
    """The helpdesk's own value for a slug, through the table the intake reads with
    ("Sev 1" → "1" there, "1" → "Sev 1" here); the slug itself when none is mapped."""
    for raw, mapped in fields.values.get(name, {}).items():
        if mapped == slug:
            return raw
    return slug


def field_values(decision: Decision, fields: FieldMap) -> dict[str, str]:
    """Custom field id → the text tierdesk writes there (configured fields only)."""
    due = decision.first_response_due
    contact = decision.named_contact
    wanted = {
        fields.tier: decision.tier,
        fields.severity: helpdesk_value(fields, "severity", str(decision.severity)),
        fields.first_response_due: format_instant(due) if due else "",
        fields.named_contact: contact.status,
        fields.named_contact_reason: contact.reason or "",
        fields.coverage: "covered" if decision.covered else "not_covered",
        fields.team: decision.team or "",
        fields.sla: decision.sla or "",
        fields.escalation_level: decision.escalation_level or "",
        fields.first_response: decision.first_response.describe()
        if decision.first_response
        else "",
        fields.hours: decision.hours.status if decision.hours else "",
    }
    return {field_id: value for field_id, value in wanted.items() if field_id}


def material_change(update: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    return previous is None or any(update.get(k) != previous.get(k) for k in MATERIAL)


def note(
    decision: Decision, previous: dict[str, Any] | None = None, locale: str = DEFAULT_LOCALE
) -> str:
    """The internal note: the decision in one line, what changed since tierdesk last
    wrote, then why; worded in the tenant's ``locale`` (`entitlements.catalogue`)."""
    say = messages(locale)
    due = decision.first_response_due
    names = (
        term(decision.tier_name, locale),
        decision.severity,
        term(decision.severity_name, locale),
    )
    if due:
        head = say["note_head_due"].format(*names, format_instant(due))
    else:
        head = say["note_head_no_sla"].format(*names)
    contact = decision.named_contact
    status = contact_status(contact.status, locale)
    lines = [
        head,
        say["note_contact_reason"].format(status, contact.reason)
        if contact.reason
        else say["note_contact"].format(status),
    ]
    if decision.sla:
        sla = say["note_sla"].format(stage(decision.sla, locale))
        if decision.escalated:
            sla += say["note_escalated"].format(term(str(decision.escalation_level), locale))
        if decision.first_response:
            sla += say["note_response"].format(ResponseText(decision.first_response).text(locale))
        lines.append(sla)
    changes = _changes(decision, previous, say)
    if changes:
        # Re-decided (severity, requester, product or environment changed): the clock
        # still runs from the ticket's creation, so the due time moves retroactively.
        lines.append(say["note_redecided"].format(say["note_changes_sep"].join(changes)))
    if decision.reasons:
        lines.append(say["note_reasons"].format(say["note_list_sep"].join(decision.reasons)))
    return "\n".join([*lines, "", *decision.explained(locale)])


def _changes(
    decision: Decision, previous: dict[str, Any] | None, say: Mapping[str, str]
) -> list[str]:
    if previous is None:
        return []
    due = decision.first_response_due
    now = {
        "note_change_tier": decision.tier,
        "note_change_severity": f"L{decision.severity}",
        "note_change_due": format_instant(due) if due else None,
    }
    before = {
        "note_change_tier": previous.get("tier"),
        "note_change_severity": f"L{previous['severity']}" if previous.get("severity") else None,
        "note_change_due": previous.get("first_response_due"),
    }
    none = say["note_none"]
    return [
        say["note_change"].format(
            say[k], none if before[k] is None else before[k], none if v is None else v
        )
        for k, v in now.items()
        if before[k] != v
    ]


def routed_group(fields: FieldMap, escalation_level: str | None, team: str | None) -> str | None:
    """The group a ticket belongs in: its escalation level's, when that has a group
    (RULES.md §3: a breach raises the level, and the group with it), else its team's."""
    return fields.groups.get(escalation_level or "") or fields.groups.get(team or "")


def keep_agents_priority(
    current: str | None, wanted: str, previous: dict[str, Any] | None, order: dict[str, int]
) -> bool:
    """True when the ticket's priority is an agent's: set by hand since tierdesk's last
    write (it differs from what tierdesk wrote). Tierdesk then leaves it alone, never
    lowering it, and changes it only when its own decision became more severe than the
    one it last wrote, and only to raise it."""
    if current is None or previous is None or current == previous.get("priority"):
        return False
    wanted_rank = order.get(wanted, 99)  # lower is more urgent
    more_severe_decision = wanted_rank < order.get(previous.get("priority") or "", 99)
    return not (more_severe_decision and wanted_rank < order.get(current, 99))


def our_tags(tags: set[str], prefix: str) -> set[str]:
    return {t for t in tags if prefix and t.startswith(prefix)}
