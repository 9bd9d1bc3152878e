"""What tierdesk needs in a Zendesk account: its ticket fields, a webhook and two triggers.

- **Ticket fields** (Support API ``/api/v2/ticket_fields``): the ones tierdesk writes,
  with the keys and titles of the app's ``requirements.json``, so that setup and the
  app find each other's fields. Existing fields are matched by key, else by title.
- **Ticket fields tierdesk reads** (severity, product, environment, category): the
  field the tenant names (``[tenants.X.fields]``, or recorded by an earlier run) is
  found by id and reported; otherwise one is found by key or title, or created, as a
  drop-down (``tagger``) whose option values are the mappings' slugs (severity: the
  level, ``1``…). A trigger's ``{{ticket.ticket_field_<id>}}`` of a drop-down renders
  the chosen option's value (its tag: Zendesk placeholders reference, "ticket_field_"
  and "ticket_field_option_title_"), so the slug reaches tierdesk as it is. tierdesk's
  own drop-downs get the options they lack (the existing ones kept, with their ids);
  an admin's own field is only reported, with the slugs it has no option for. A
  trigger placeholder that would still be empty (a field no one maps, the Time
  Tracking app's) is said in the plan's notes.
- **Webhook** (Webhooks API ``/api/v2/webhooks``): JSON ``POST`` to
  ``<service>/webhooks/zendesk/<tenant>``, connected to triggers
  (``conditional_ticket_events``), matched by its endpoint. Zendesk signs every
  request with the webhook's signing secret, which `signing_secret` reads back.
- **Triggers** (``/api/v2/triggers``): one on ticket creation, one on update, each
  calling the webhook with tierdesk's trigger body (`webhooks.zendesk.TRIGGER_BODY`,
  rendered by the caller with the tenant's field ids), matched by title. A trigger
  that drifted (another webhook, another body or conditions) is updated.
- **Organization and user fields** (``/api/v2/organization_fields``,
  ``/api/v2/user_fields``): where `tierdesk sync` keeps an organization's account,
  tier and pay-as-you-go hours status and a user's named-contact and site-admin flags
  (the keys of `connector.zendesk_directory`). Matched by key only (sync finds them by
  key). The tier drop-down's options are the mappings' tier ids, so a tier added to
  the mappings later is missing from it: a new run of setup adds the missing options
  (an update that sends every option, the existing ones with their ids, since Zendesk
  drops the options an update leaves out), and never removes one (organizations may
  still show it).

Lists are read with cursor pagination (``page[size]``, then ``page[after]`` from
``meta.after_cursor`` while ``meta.has_more``): ``links.next`` is not followed, because
it names a host (the recorded pages point at another subdomain than the one asked), and
the last page still carries one (../shared/vendor/README.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from connector.errors import ConnectorError
from connector.http import HttpClient
from connector.setup import WRITTEN_FIELDS, FieldSpec, Plan, Ref, SetupError, Step, Text
from connector.zendesk_directory import ORG_ACCOUNT, ORG_HOURS, ORG_TIER, USER_ADMIN, USER_CONTACT

# Zendesk has no date-time field: the due time goes as ISO 8601 UTC text.
FIELDS = tuple(
    replace(spec, type="text") if spec.type == "datetime" else spec for spec in WRITTEN_FIELDS
)
# Either holds text; an admin who made one a textarea (or the other way) keeps it.
_TEXT_TYPES = ("text", "textarea")

# The event names are those of the trigger body's "event" (webhooks/zendesk.py).
TRIGGER_TITLES = {
    "ticket.created": "tierdesk: decide new tickets",
    "ticket.updated": "tierdesk: decide updated tickets",
}
TRIGGER_DESCRIPTIONS = {
    "ticket.created": "Sends every new ticket to tierdesk.",
    "ticket.updated": "Sends every ticket update to tierdesk, except updates made through"
    " the API (tierdesk's own write-backs among them), so tierdesk never loops on itself.",
}
TRIGGER_CONDITIONS: dict[str, list[dict[str, str]]] = {
    "ticket.created": [{"field": "update_type", "operator": "is", "value": "Create"}],
    "ticket.updated": [
        {"field": "update_type", "operator": "is", "value": "Change"},
        # "Update via" (current_via_id, a trigger-only condition: Zendesk's conditions
        # reference, developer.zendesk.com/documentation/ticketing/reference-guides/
        # conditions-reference/) is not 5, the via id of "Web service (API)"
        # (web_service; Via types reference, developer.zendesk.com/documentation/
        # ticketing/reference-guides/via-types). tierdesk's write-back is such an
        # update: without this condition every write would call tierdesk again. It
        # skips other integrations' API updates too; creations are always sent.
        {"field": "current_via_id", "operator": "is_not", "value": "5"},
    ],
}
WEBHOOK_SUBSCRIPTION = "conditional_ticket_events"  # called by triggers, not by events
# What only an event-subscribed webhook tells (webhooks/zendesk.py): a trigger body has
# no comment author or visibility, so first responses come from comment_added; solves
# and reopenings stop and start clocks; a deleted ticket's clock closes. A webhook is
# either called by triggers or subscribed to events, never both (Zendesk's Webhooks
# API, "subscriptions"): a second webhook, with a signing secret of its own.
EVENT_SUBSCRIPTIONS = (
    "zen:event-type:ticket.comment_added",
    "zen:event-type:ticket.status_changed",
    "zen:event-type:ticket.soft_deleted",
)
PAGE_SIZE = "100"  # the most a cursor page holds
# The ticket fields tierdesk reads that setup makes (in the trigger body's order); the
# body also reads time_spent, the Time Tracking app's field, which setup never makes.
READ = ("severity", "product", "environment", "category")
PLACEHOLDERS = (*READ, "time_spent")
# Ticket field types whose value a trigger sends as text tierdesk can read.
_READABLE = ("tagger", "text", "textarea", "regexp", "integer")
TriggerBody = Callable[[str, Mapping[str, "str | Ref | None"]], "str | Text"]


@dataclass(frozen=True, slots=True)
class ReadField:
    """A ticket field tierdesk reads: a drop-down of the mappings' slugs."""

    name: str  # its FieldMap entry
    key: str
    title: str
    description: str
    options: tuple[tuple[str, str], ...]  # (value: the slug, name)

    @property
    def what(self) -> str:
        return f'ticket field "{self.title}" ({self.key})'

    def requirement(self) -> dict[str, Any]:
        """As the app's requirements.json declares it (keyed by ``key`` there)."""
        return {
            "type": "tagger",
            "title": self.title,
            "description": self.description,
            # Requesters choose them in the help center too.
            "visible_in_portal": True,
            "editable_in_portal": True,
            "custom_field_options": [{"name": n, "value": v} for v, n in self.options],
        }


def read_fields(
    severities: Sequence[int],
    products: Mapping[str, str],
    environments: Sequence[str],
    categories: Mapping[str, str],
) -> tuple[ReadField, ...]:
    """The read fields with the mappings' vocabularies as their options."""
    note = " Read by tierdesk; the option values are the mappings' slugs."

    def field(name: str, title: str, what: str, options: Sequence[tuple[str, str]]) -> ReadField:
        return ReadField(
            name, f"tierdesk_{name}", f"tierdesk: {title}", what + note, tuple(options)
        )

    return (
        field(
            "severity",
            "Severity",
            "How bad it is: L1 (highest) to L4.",
            [(str(level), f"L{level}") for level in severities],
        ),
        field("product", "Product", "The product the request is about.", list(products.items())),
        field(
            "environment",
            "Environment",
            "Where it happens.",
            [(env, env.capitalize()) for env in environments],
        ),
        field("category", "Category", "What kind of request it is.", list(categories.items())),
    )


@dataclass(frozen=True, slots=True)
class ZendeskState:
    """What the account already has (the list endpoints' objects, as Zendesk sends them)."""

    ticket_fields: tuple[dict[str, Any], ...] = ()
    webhooks: tuple[dict[str, Any], ...] = ()
    triggers: tuple[dict[str, Any], ...] = ()
    organization_fields: tuple[dict[str, Any], ...] = ()
    user_fields: tuple[dict[str, Any], ...] = ()


def read_state(client: HttpClient) -> ZendeskState:
    return ZendeskState(
        ticket_fields=cursor_items(client, "/api/v2/ticket_fields", "ticket_fields"),
        webhooks=cursor_items(client, "/api/v2/webhooks", "webhooks"),
        triggers=cursor_items(client, "/api/v2/triggers", "triggers"),
        organization_fields=cursor_items(
            client, "/api/v2/organization_fields", "organization_fields"
        ),
        user_fields=cursor_items(client, "/api/v2/user_fields", "user_fields"),
    )


Owner = Literal["organization", "user"]


@dataclass(frozen=True, slots=True)
class DirectoryField:
    """An organization or user field `tierdesk sync` keeps its data in."""

    owner: Owner
    key: str
    title: str
    type: str  # text or dropdown
    description: str
    options: tuple[tuple[str, str], ...] = ()  # a drop-down's (value, name): value is the tag

    @property
    def what(self) -> str:
        return f'{self.owner} field "{self.title}" ({self.key})'

    def requirement(self) -> dict[str, Any]:
        """As the app's requirements.json and the create call declare it (the body of
        Zendesk's "Create Organization/User Field", without its wrapper)."""
        doc: dict[str, Any] = {
            "key": self.key,
            "type": self.type,
            "title": self.title,
            "description": self.description,
        }
        if self.options:
            doc["custom_field_options"] = [{"name": n, "value": v} for v, n in self.options]
        return doc


def directory_fields(tiers: Sequence[tuple[str, str]]) -> tuple[DirectoryField, ...]:
    """The organization fields, then the user fields; ``tiers``: (id, name) of the
    mappings' tiers, the options of the tier drop-down."""
    note = " Written by tierdesk sync push."
    return (
        DirectoryField(
            "organization",
            ORG_ACCOUNT,
            "tierdesk: Account",
            "text",
            "The tierdesk account (its id in accounts.json) this organization belongs to." + note,
        ),
        DirectoryField(
            "organization",
            ORG_TIER,
            "tierdesk: Tier",
            "dropdown",
            "The account's support tier." + note,
            tuple(tiers),
        ),
        DirectoryField(
            "organization",
            ORG_HOURS,
            "tierdesk: Hours",
            "text",
            "Pay-as-you-go hours: ok, low or exhausted." + note,
        ),
        DirectoryField(
            "user",
            USER_CONTACT,
            "tierdesk: Named contact",
            "text",
            "The accounts they are a named contact of, each as account:direct or"
            " account:partner, space-separated (acme:direct globex:partner)." + note,
        ),
        DirectoryField(
            "user",
            USER_ADMIN,
            "tierdesk: Site admin",
            "text",
            "The Priority sites they administer, each as account:SEN (account:* for a"
            " site without one), space-separated." + note,
        ),
    )


def cursor_items(client: HttpClient, path: str, key: str) -> tuple[dict[str, Any], ...]:
    """Every object of a cursor-paginated list."""
    params = {"page[size]": PAGE_SIZE}
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    while True:
        try:
            answer = client.request("GET", path, params=params)
        except ConnectorError as exc:
            raise SetupError(
                f"reading the account's {key.replace('_', ' ')} failed: {exc}"
            ) from None
        page = answer.get(key) if isinstance(answer, dict) else None
        if not isinstance(page, list):
            raise SetupError(f"GET {path}: the answer holds no {key!r} list")
        items += [item for item in page if isinstance(item, dict)]
        meta = answer.get("meta") if isinstance(answer.get("meta"), dict) else {}
        if not meta.get("has_more"):
            return tuple(items)
        after = meta.get("after_cursor")
        if not isinstance(after, str) or not after or after in seen:
            raise SetupError(f"GET {path}: has_more, but no new after_cursor to go on with")
        seen.add(after)
        params = {"page[size]": PAGE_SIZE, "page[after]": after}


def plan(
    state: ZendeskState,
    *,
    tenant_id: str,
    endpoint: str,
    trigger_bodies: Mapping[str, str | Text] | TriggerBody,
    tiers: Sequence[tuple[str, str]],
    read: Sequence[ReadField] = (),
    configured: Mapping[str, str | None] | None = None,
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> Plan:
    """Existing state → the steps that make the account what tierdesk needs. Pure.

    ``trigger_bodies``: event → the JSON text the trigger sends (placeholders and all),
    or a function of the event and the read fields' ids (a `Ref` for a field this run
    creates) giving it; ``tiers``: (id, name) of the mappings' tiers, the tier
    drop-down's options; ``read``: the read fields to find or make; ``configured``: the
    tenant's field ids (FieldMap names → id) and ``values`` its helpdesk-value → slug
    tables, which count as options an admin's field has.
    """
    configured = configured or {}
    steps: list[Step] = []
    types: list[tuple[str, str]] = []
    specs: list[FieldSpec] = list(FIELDS)
    notes: list[str] = []
    ids: dict[str, str | Ref | None] = {name: configured.get(name) for name in PLACEHOLDERS}
    for spec in FIELDS:
        step, field_type = _field_step(state.ticket_fields, spec, tenant_id)
        steps.append(step)
        types.append((spec.name, field_type))
    for wanted_field in read:
        step, field_type = _read_step(
            state.ticket_fields,
            wanted_field,
            tenant_id,
            configured.get(wanted_field.name),
            (values or {}).get(wanted_field.name, {}),
        )
        steps.append(step)
        types.append((wanted_field.name, field_type))
        specs.append(
            FieldSpec(
                wanted_field.name,
                wanted_field.key,
                wanted_field.title,
                field_type,
                wanted_field.description,
            )
        )
        ids[wanted_field.name] = step.id if step.id is not None else Ref(f"id:{step.ref}")
    webhook = _webhook_step(state.webhooks, tenant_id, endpoint)
    steps.append(webhook)
    steps.append(_event_webhook_step(state.webhooks, tenant_id, endpoint))
    # A trigger calls the webhook by id: the one found, or the one this run creates.
    webhook_id: str | Ref = webhook.id if webhook.id is not None else Ref("id:webhook")
    for event, title in TRIGGER_TITLES.items():
        body = trigger_bodies(event, ids) if callable(trigger_bodies) else trigger_bodies[event]
        steps.append(_trigger_step(state.triggers, event, title, webhook_id, body))
    for wanted in directory_fields(tiers):
        found = state.organization_fields if wanted.owner == "organization" else state.user_fields
        steps.append(_directory_field_step(found, wanted))
    for name in PLACEHOLDERS:
        if callable(trigger_bodies) and not ids.get(name):
            notes.append(_EMPTY.get(name, _EMPTY["*"]).format(name=name, tenant=tenant_id))
    return Plan("zendesk", tuple(steps), tuple(specs), notes=tuple(notes), field_types=tuple(types))


_EMPTY = {
    "time_spent": 'the triggers send "time_spent": "" (no field is mapped): pay-as-you-go'
    " hours are not counted from Zendesk. Install the Time Tracking app and name its"
    ' "Total time spent (sec)" field in [tenants.{tenant}.fields] time_spent, then run'
    " setup again",
    "*": 'the triggers send "{name}": "" (no field is mapped): every ticket is decided'
    " without it. Name the field in [tenants.{tenant}.fields] {name}, then run setup again",
}


def _read_step(
    fields: tuple[dict[str, Any], ...],
    spec: ReadField,
    tenant_id: str,
    configured: str | None,
    values: Mapping[str, str],
) -> tuple[Step, str]:
    """Find (by the configured id, else key, else title) or create a field tierdesk
    reads. → (step, the field's type as recorded: dropdown or text)."""
    ref = f"field:{spec.name}"
    if configured:
        matches = [f for f in fields if str(f.get("id")) == configured]
        if not matches:
            raise SetupError(
                f"[tenants.{tenant_id}.fields] {spec.name} = {configured!r}: the account has"
                " no such ticket field; fix the id, or remove it (and its entry in the"
                " fields file) for setup to make one"
            )
    else:
        matches = _matching(fields, spec.key, spec.title, spec.what, tenant_id, spec.name)
    if not matches:
        body = {
            "ticket_field": {
                "key": spec.key,
                **spec.requirement(),
                "active": True,
            }
        }
        listed = ", ".join(v for v, _ in spec.options)
        create = Step(
            "create",
            spec.what,
            ref,
            method="POST",
            path="/api/v2/ticket_fields",
            body=body,
            id_at=("ticket_field", "id"),
            note=f"a drop-down; options: {listed}",
        )
        return create, "dropdown"
    found = matches[0]
    field_id = str(found["id"])
    kind = found.get("type")
    what = f'ticket field {field_id} "{found.get("title")}" for {spec.name}'
    if kind not in _READABLE:
        raise SetupError(
            f"{what} is a {kind} field, whose value a trigger cannot send as the {spec.name};"
            f" name a drop-down or text field in [tenants.{tenant_id}.fields] {spec.name}"
        )
    notes = [] if found.get("active", True) else ["inactive: activate it, or agents cannot set it"]
    if kind != "tagger":
        notes.insert(
            0,
            "a text field: agents type the slug ("
            + ", ".join(v for v, _ in spec.options[:4])
            + "…)",
        )
        return Step("reuse", what, ref, id=field_id, note="; ".join(notes)), "text"
    current = [o for o in found.get("custom_field_options") or [] if isinstance(o, dict)]
    have = {str(o.get("value")) for o in current}
    # An admin's option whose value the tenant's table maps to a slug offers that slug.
    have |= {slug for raw, slug in values.items() if raw in have}
    missing = [(v, n) for v, n in spec.options if v not in have]
    if missing and found.get("key") == spec.key:
        # tierdesk's own drop-down: add what it lacks, keeping every option (Zendesk
        # drops the ones an update leaves out).
        options = [
            {"id": o["id"], "name": o.get("name"), "value": o.get("value")}
            if "id" in o
            else {"name": o.get("name"), "value": o.get("value")}
            for o in current
        ]
        options += [{"name": n, "value": v} for v, n in missing]
        added = ", ".join(v for v, _ in missing)
        return Step(
            "update",
            what,
            ref,
            id=field_id,
            method="PUT",
            path=f"/api/v2/ticket_fields/{field_id}",
            body={"ticket_field": {"custom_field_options": options}},
            note="; ".join([f"adds the options {added}", *notes]),
        ), "dropdown"
    if missing:
        lacking = ", ".join(v for v, _ in missing)
        notes.insert(
            0,
            f"no option for {lacking}: agents cannot choose them (add options with these"
            f" values, or map yours in [tenants.{tenant_id}.fields.values.{spec.name}])",
        )
    return Step("reuse", what, ref, id=field_id, note="; ".join(notes)), "dropdown"


def _matching(
    fields: tuple[dict[str, Any], ...], key: str, title: str, what: str, tenant_id: str, name: str
) -> list[dict[str, Any]]:
    """The ticket field of ``key``, else of ``title`` (the app's requirements.json makes
    them without a key): [] or one; `SetupError` when several match."""
    matches = [f for f in fields if f.get("key") == key] or [
        f for f in fields if f.get("title") == title
    ]
    if len(matches) > 1:
        ids = ", ".join(str(f.get("id")) for f in matches)
        raise SetupError(
            f"{what}: several ticket fields match ({ids}); deactivate or rename the extra"
            f" ones, or name the one to use in [tenants.{tenant_id}.fields] {name}"
        )
    return matches


def _field_step(
    fields: tuple[dict[str, Any], ...], spec: FieldSpec, tenant_id: str
) -> tuple[Step, str]:
    what = f'ticket field "{spec.title}" ({spec.key})'
    matches = _matching(fields, spec.key, spec.title, what, tenant_id, spec.name)
    if not matches:
        body = {
            "ticket_field": {
                "type": spec.type,
                "key": spec.key,
                "title": spec.title,
                "description": spec.description,
                "active": True,
                "visible_in_portal": False,
                "editable_in_portal": False,
            }
        }
        create = Step(
            "create",
            what,
            f"field:{spec.name}",
            method="POST",
            path="/api/v2/ticket_fields",
            body=body,
            id_at=("ticket_field", "id"),
        )
        return create, spec.type
    found = matches[0]
    if found.get("type") not in _TEXT_TYPES:
        raise SetupError(
            f"{what}: ticket field {found.get('id')} has that title but is a"
            f" {found.get('type')} field, where tierdesk writes text; rename it, or name"
            f" another field in [tenants.{tenant_id}.fields] {spec.name}"
        )
    note = (
        "" if found.get("active", True) else "inactive: activate it, or tierdesk's values are lost"
    )
    reuse = Step("reuse", what, f"field:{spec.name}", id=str(found["id"]), note=note)
    return reuse, str(found["type"])


def _directory_field_step(fields: tuple[dict[str, Any], ...], spec: DirectoryField) -> Step:
    ref = f"{spec.owner}_field:{spec.key}"
    path = f"/api/v2/{spec.owner}_fields"
    matches = [f for f in fields if f.get("key") == spec.key]  # Zendesk keeps keys unique
    if not matches:
        return Step(
            "create",
            spec.what,
            ref,
            method="POST",
            path=path,
            body={f"{spec.owner}_field": {**spec.requirement(), "active": True}},
            id_at=(f"{spec.owner}_field", "id"),
            note=f"options: {', '.join(v for v, _ in spec.options)}" if spec.options else "",
        )
    found = matches[0]
    field_id = str(found["id"])
    kind = found.get("type")
    if kind == "dropdown" and spec.type != "dropdown":
        # An earlier tierdesk made the named-contact flag a drop-down of direct/partner;
        # flags now name their account, which no fixed list of options can hold, and
        # Zendesk cannot change a field's type.
        raise SetupError(
            f"{spec.what}: {spec.owner} field {field_id} is a drop-down (from an earlier"
            " tierdesk), and flags now name their account (acme:direct), which needs a text"
            " field. Run `tierdesk sync pull` first (it reads the drop-down's values), then"
            " delete the field in Admin Center and run setup again; `tierdesk sync push`"
            " then writes every flag back"
        )
    # sync reads and writes a tier as its text: a text field does too.
    if kind not in (*_TEXT_TYPES, spec.type):
        raise SetupError(
            f"{spec.what}: {spec.owner} field {field_id} has that key but is a {kind} field,"
            f" where tierdesk keeps {spec.type}; delete it or change its key, and run setup again"
        )
    notes = [] if found.get("active", True) else ["inactive: activate it, or sync cannot write it"]
    if kind == "dropdown":
        current = [o for o in found.get("custom_field_options") or [] if isinstance(o, dict)]
        have = {str(o.get("value")) for o in current}
        missing = [(v, n) for v, n in spec.options if v not in have]
        if missing:
            # Zendesk drops every option an update leaves out: send the existing ones too.
            options = [
                {"id": o["id"], "name": o.get("name"), "value": o.get("value")}
                if "id" in o
                else {"name": o.get("name"), "value": o.get("value")}
                for o in current
            ]
            options += [{"name": n, "value": v} for v, n in missing]
            added = ", ".join(v for v, _ in missing)
            return Step(
                "update",
                spec.what,
                ref,
                id=field_id,
                method="PUT",
                path=f"{path}/{field_id}",
                body={f"{spec.owner}_field": {"custom_field_options": options}},
                note="; ".join([f"adds the options {added}", *notes]),
            )
    elif spec.type == "dropdown":
        notes.insert(0, "a text field: sync writes the values as text")
    return Step("reuse", spec.what, ref, id=field_id, note="; ".join(notes))


def _webhook_step(webhooks: tuple[dict[str, Any], ...], tenant_id: str, endpoint: str) -> Step:
    what = f'webhook "tierdesk ({tenant_id})" → {endpoint}'
    # A webhook subscribed to Zendesk events cannot be called by a trigger (and one
    # may legitimately post event webhooks to the same endpoint): only trigger ones count.
    matches = [
        w
        for w in webhooks
        if str(w.get("endpoint", "")).rstrip("/") == endpoint.rstrip("/")
        and WEBHOOK_SUBSCRIPTION in (w.get("subscriptions") or [])
    ]
    matches.sort(key=lambda w: w.get("status") != "active")  # an active one first
    if matches:
        found = matches[0]
        note = "" if found.get("status") == "active" else "inactive: activate it in Admin Center"
        return Step("reuse", what, "webhook", id=str(found["id"]), note=note)
    return _new_webhook(
        "webhook",
        what,
        f"tierdesk ({tenant_id})",
        "Sends tickets to tierdesk (created by `tierdesk setup zendesk`).",
        endpoint,
        [WEBHOOK_SUBSCRIPTION],
    )


def _event_webhook_step(
    webhooks: tuple[dict[str, Any], ...], tenant_id: str, endpoint: str
) -> Step:
    what = f'webhook "tierdesk events ({tenant_id})" → {endpoint}'
    matches = [
        w
        for w in webhooks
        if str(w.get("endpoint", "")).rstrip("/") == endpoint.rstrip("/")
        and any(str(s).startswith("zen:event-type:") for s in w.get("subscriptions") or [])
    ]
    # The one that already has the most of the events, an active one first.
    matches.sort(
        key=lambda w: (
            -len(set(EVENT_SUBSCRIPTIONS) & set(w.get("subscriptions") or [])),
            w.get("status") != "active",
        )
    )
    if matches:
        found = matches[0]
        notes = [] if found.get("status") == "active" else ["inactive: activate it in Admin Center"]
        missing = [e for e in EVENT_SUBSCRIPTIONS if e not in (found.get("subscriptions") or [])]
        if missing:
            notes.append(
                "subscribe it to " + ", ".join(missing) + " in Admin Center (first responses,"
                " solves and deletions come from these)"
            )
        return Step("reuse", what, "event_webhook", id=str(found["id"]), note="; ".join(notes))
    return _new_webhook(
        "event_webhook",
        what,
        f"tierdesk events ({tenant_id})",
        "Sends comments, solves and deletions to tierdesk (created by `tierdesk setup zendesk`).",
        endpoint,
        list(EVENT_SUBSCRIPTIONS),
    )


def _new_webhook(
    ref: str, what: str, name: str, description: str, endpoint: str, subscriptions: list[str]
) -> Step:
    """The step that creates a JSON webhook POSTing to ``endpoint``."""
    body = {
        "webhook": {
            "name": name,
            "description": description,
            "endpoint": endpoint,
            "http_method": "POST",
            "request_format": "json",
            "status": "active",
            "subscriptions": subscriptions,
        }
    }
    return Step(
        "create",
        what,
        ref,
        method="POST",
        path="/api/v2/webhooks",
        body=body,
        id_at=("webhook", "id"),
    )


def trigger(event: str, webhook_id: str | Ref, body_text: str | Text) -> dict[str, Any]:
    """The trigger tierdesk wants for ``event`` (without ``active``, which an update
    leaves as the admin set it)."""
    return {
        "title": TRIGGER_TITLES[event],
        "description": TRIGGER_DESCRIPTIONS[event],
        "conditions": {"all": TRIGGER_CONDITIONS[event], "any": []},
        "actions": [{"field": "notification_webhook", "value": [webhook_id, body_text]}],
    }


def _trigger_step(
    triggers: tuple[dict[str, Any], ...],
    event: str,
    title: str,
    webhook_id: str | Ref,
    body_text: str | Text,
) -> Step:
    what = f'trigger "{title}"'
    wanted = trigger(event, webhook_id, body_text)
    matches = [t for t in triggers if t.get("title") == title]
    if len(matches) > 1:
        ids = ", ".join(str(t.get("id")) for t in matches)
        raise SetupError(f"{what}: several triggers have this title ({ids}); delete the extra ones")
    if not matches:
        return Step(
            "create",
            what,
            f"trigger:{event}",
            method="POST",
            path="/api/v2/triggers",
            body={"trigger": {**wanted, "active": True}},
            id_at=("trigger", "id"),
        )
    found = matches[0]
    trigger_id = str(found["id"])
    drift = _drift(found, wanted)
    if drift:
        return Step(
            "update",
            what,
            f"trigger:{event}",
            id=trigger_id,
            method="PUT",
            path=f"/api/v2/triggers/{trigger_id}",
            body={"trigger": wanted},
            note=drift,
        )
    note = (
        "" if found.get("active", True) else "inactive: activate it, or no ticket reaches tierdesk"
    )
    return Step("reuse", what, f"trigger:{event}", id=trigger_id, note=note)


def _drift(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    """Why an existing trigger is not the one wanted ("" when it is)."""
    if _conditions(found.get("conditions")) != _conditions(wanted["conditions"]):
        return "its conditions differ"
    calls = [a for a in found.get("actions") or [] if a.get("field") == "notification_webhook"]
    if len(calls) != 1 or len(found.get("actions") or []) != 1:
        return "its actions differ"
    value = calls[0].get("value")
    webhook_id, body = wanted["actions"][0]["value"]
    if not isinstance(value, list) or len(value) != 2:
        return "its actions differ"
    if isinstance(webhook_id, Ref) or str(value[0]) != webhook_id:
        return "it calls another webhook"
    if isinstance(body, Text):
        return "its body names a field this run creates"
    try:
        same_body = json.loads(value[1]) == json.loads(body)
    except (TypeError, ValueError):
        same_body = False
    return "" if same_body else "its body differs"


def _conditions(conditions: Any) -> tuple[tuple[tuple[str, str, str], ...], ...]:
    """Conditions as comparable data: order within all/any does not matter, and Zendesk
    may answer a number where we sent its text."""
    table = conditions if isinstance(conditions, dict) else {}
    return tuple(
        tuple(
            sorted(
                (str(c.get("field")), str(c.get("operator")), str(c.get("value")))
                for c in table.get(part) or []
                if isinstance(c, dict)
            )
        )
        for part in ("all", "any")
    )


def signing_secret(client: HttpClient, webhook_id: str) -> str:
    """The webhook's signing secret (Webhooks API "Show Webhook Signing Secret")."""
    try:
        answer = client.request("GET", f"/api/v2/webhooks/{webhook_id}/signing_secret")
    except ConnectorError as exc:
        raise SetupError(
            f"reading the signing secret of webhook {webhook_id} failed: {exc}"
        ) from None
    secret = (answer or {}).get("signing_secret") if isinstance(answer, dict) else None
    value = secret.get("secret") if isinstance(secret, dict) else None
    if not isinstance(value, str) or not value:
        raise SetupError(f"webhook {webhook_id}: the answer holds no signing_secret.secret")
    return value
