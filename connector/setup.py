"""What `tierdesk setup` does in a helpdesk, as data: a plan of steps, then their execution.

Each vendor module (`connector.setup_zendesk`, `connector.setup_jsm`) reads what the
helpdesk already has, turns it into a `Plan` with a pure function (existing state in,
steps out: create what is missing, reuse what is there, update what drifted), and runs
the plan's writes through `execute`. A dry run is the plan printed; ``--apply`` is the
plan executed. Running the same plan against what an earlier run created gives only
``reuse`` steps, which send nothing.

A step's body may hold `Ref` placeholders: the id of something an earlier step of the
same run creates (a trigger calls the webhook created just before), or a secret that
must never sit in a plan, a repr or an error (the JSM webhook's). `execute` resolves
them at the last moment, in the request only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from connector.errors import ConnectorError
from connector.http import HttpClient

Kind = Literal["create", "reuse", "update"]


class SetupError(Exception):
    """A step failed, or the helpdesk holds something setup must not guess about. The
    message names the step (which field, webhook or trigger) and the vendor's answer,
    never a secret."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field tierdesk writes (or, on Zendesk, reads): ``name`` is its `FieldMap` entry."""

    name: str
    key: str  # Zendesk's field key, as in the app's requirements.json
    title: str
    type: str  # text, textarea, datetime or dropdown (tierdesk.config.FIELD_TYPES)
    description: str


def _written(name: str, title: str, kind: str, description: str) -> FieldSpec:
    return FieldSpec(
        name, f"tierdesk_{name}", f"tierdesk: {title}", kind, f"{description} Written by tierdesk."
    )


# The fields tierdesk writes on tickets, the same in every helpdesk (the app's
# requirements.json holds the Zendesk ones; a test keeps the two equal). A helpdesk
# without date-time fields (Zendesk) takes the due time as text, ISO 8601 UTC.
WRITTEN_FIELDS = (
    _written("tier", "Tier", "text", "The support tier tierdesk applied (after any fallback)."),
    _written(
        "first_response_due", "First response due", "datetime", "When the first response is due."
    ),
    _written("named_contact", "Named contact", "text", "valid, invalid or not_required."),
    _written(
        "named_contact_reason",
        "Named contact reason",
        "textarea",
        "Why the requester is not a valid named contact, if not.",
    ),
    _written("coverage", "Coverage", "text", "covered or not_covered."),
    _written("sla", "SLA", "text", "on_track, at_risk, breached, met or missed."),
    _written(
        "escalation_level", "Escalation level", "text", "The escalation level reached, if any."
    ),
    _written(
        "first_response",
        "First response",
        "text",
        "Whether the first response met its target, and by how much business time.",
    ),
    _written("hours", "Hours", "text", "Pay-as-you-go hours: ok, low or exhausted."),
)


@dataclass(frozen=True, slots=True)
class Ref:
    """Stands in a body for what is known only while executing: ``id:<ref>`` is the id a
    step of the same run got, ``secret:<name>`` a secret handed to `execute`."""

    name: str


@dataclass(frozen=True, slots=True)
class Text:
    """A string with `Ref` parts, joined when executing: a trigger's body naming a field
    the same run creates."""

    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(part for part in self.parts if isinstance(part, Ref))


@dataclass(frozen=True, slots=True)
class Step:
    kind: Kind
    what: str  # for people: 'ticket field "tierdesk: Tier" (tierdesk_tier)'
    ref: str  # how later steps and the results name it: "field:tier", "webhook"…
    id: str | None = None  # known for reuse and update
    method: str | None = None  # the write, for create and update
    path: str | None = None
    body: Any = None
    id_at: tuple[str, ...] = ()  # where the created object's id is in the answer
    note: str = ""  # why an update, or what an admin should know

    def __repr__(self) -> str:  # bodies are long and may hold Refs: keep logs short
        return f"Step({self.kind} {self.what}{f' id={self.id}' if self.id else ''})"


@dataclass(frozen=True, slots=True)
class Plan:
    vendor: str
    steps: tuple[Step, ...]
    fields: tuple[FieldSpec, ...]
    notes: tuple[str, ...] = ()  # things to tell the admin that no step does
    field_types: tuple[tuple[str, str], ...] = ()  # FieldMap name → the field's type

    @property
    def writes(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.kind != "reuse")

    def known_ids(self) -> dict[str, str]:
        """The ids known before executing: everything reused or updated."""
        return {step.ref: step.id for step in self.steps if step.id is not None}

    def field_records(self, ids: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        """FieldMap name → (field id, type) for every field whose id ``ids`` holds."""
        types = dict(self.field_types)
        return {
            spec.name: (ids[f"field:{spec.name}"], types.get(spec.name, spec.type))
            for spec in self.fields
            if f"field:{spec.name}" in ids
        }


def resolve(body: Any, ids: Mapping[str, str], secrets: Mapping[str, str]) -> Any:
    """``body`` with every `Ref` replaced; `SetupError` for one nothing provides."""
    if isinstance(body, Ref):
        source, _, name = body.name.partition(":")
        table = ids if source == "id" else secrets if source == "secret" else {}
        if name not in table:
            raise SetupError(f"nothing provides {body.name!r} to this plan")
        return table[name]
    if isinstance(body, Text):
        return "".join(str(resolve(part, ids, secrets)) for part in body.parts)
    if isinstance(body, dict):
        return {key: resolve(value, ids, secrets) for key, value in body.items()}
    if isinstance(body, list | tuple):
        return [resolve(value, ids, secrets) for value in body]
    return body


def execute(
    client: HttpClient, plan: Plan, *, secrets: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Send the plan's writes in order; every step's ref → its id. A failure raises
    `SetupError` naming the step; what earlier steps created stays, and a new run
    finds it and goes on from there."""
    ids = plan.known_ids()
    for step in plan.writes:
        assert step.method and step.path, step  # create and update steps carry a write
        try:
            answer = client.request(
                step.method, step.path, json_body=resolve(step.body, ids, secrets or {})
            )
        except ConnectorError as exc:
            verb = "creating" if step.kind == "create" else "updating"
            raise SetupError(f"{verb} {step.what} failed: {exc}") from None
        if step.kind == "create":
            ids[step.ref] = _id(answer, step)
    return ids


def _id(answer: Any, step: Step) -> str:
    value = answer
    for key in step.id_at:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        where = ".".join(step.id_at)
        raise SetupError(f"created {step.what}, but the answer has no {where}: look it up by hand")
    text = str(value)
    # Jira's admin webhooks answer with their own URL ("self"): the id is its last segment.
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text
