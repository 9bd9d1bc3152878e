"""Where a tenant's helpdesk keeps what tierdesk reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Where a tenant's helpdesk keeps what the rules need, beyond the standard fields:
    custom field ids (``customfield_10071`` in Jira, ``360000123`` in Zendesk) and how
    their values translate into the mappings' slugs."""

    severity: str | None = None  # read, and written back
    product: str | None = None
    environment: str | None = None
    category: str | None = None
    organizations: str | None = None  # JSM: the Organizations field
    # Zendesk: the Time Tracking app's "Total time spent (sec)" field. Its running total
    # is the ticket's entry in the hours ledger (worklog id "zendesk-total").
    time_spent: str | None = None
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # field → value → slug
    # Written by tierdesk (ids `tierdesk setup` creates; hand-editable):
    tier: str | None = None
    first_response_due: str | None = None  # Zendesk: text (ISO UTC); Jira: a date-time
    named_contact: str | None = None  # valid / invalid / not_required
    named_contact_reason: str | None = None
    coverage: str | None = None  # covered / not_covered
    team: str | None = None  # Jira has no groups: the team goes to a field
    # The SLA lifecycle: stage (on_track, at_risk, breached, met, missed), the escalation
    # level reached, and how the first response fared ("met with 1h 20m of business time").
    sla: str | None = None
    escalation_level: str | None = None
    first_response: str | None = None
    hours: str | None = None  # pay-as-you-go: ok, low or exhausted
    # Zendesk: team → group id; an escalation level's name may have a group too, which
    # then takes the ticket while it is escalated to that level.
    groups: dict[str, str] = field(default_factory=dict)
    # What kind of field each is, where `tierdesk setup` recorded it (text, textarea,
    # datetime): a Jira date-time field takes another format than a text one.
    types: dict[str, str] = field(default_factory=dict)
