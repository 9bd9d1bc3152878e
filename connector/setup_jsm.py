"""What tierdesk needs in Jira / Jira Service Management: its custom fields and an admin
webhook.

- **Custom fields** (``POST /rest/api/3/field``, ``/rest/api/2`` on Data Center): text
  fields with the text searcher, the named-contact reason a text area, the first
  response due a date-time field with the date-time range searcher (so JQL can sort
  and filter by it). The searcher must be "valid for the field type"
  (``CustomFieldDefinitionJsonBean.searcherKey`` in ../shared/vendor/jsm/
  jira-platform.openapi.json lists the pairs). Existing custom fields are matched by
  name; each field's type is recorded, because a date-time field takes another value
  format than a text one.
- **Admin webhook** (``/rest/webhooks/1.0/webhook``), matched by its URL
  ``<service>/webhooks/jsm/<tenant>``, with a JQL filter and a secret: Jira then signs
  every delivery with ``X-Hub-Signature: sha256=<hex HMAC of the body>``, which is
  what `webhooks.jsm` verifies.

Why the admin webhook API and not ``POST /rest/api/3/webhook``: the platform spec
(jira-platform.openapi.json, "Register dynamic webhooks") says "Only Connect and OAuth
2.0 apps can use this operation"; tierdesk calls with an admin's email and API token,
and its webhooks would also expire after 30 days and carry no secret. Atlassian's
webhook guide (developer.atlassian.com/cloud/jira/platform/webhooks/) names
``/rest/webhooks/1.0/webhook`` as the REST way to register *admin* webhooks, the kind
created in Jira administration, which take a ``secret`` for signed deliveries
(Cloud since 2024) and exist on Data Center too. No spec in ../shared/vendor declares
that API; its body is the one the guide documents (``name``, ``url``, ``events``,
``filters`` with ``issue-related-events-section`` = JQL, ``excludeBody``, ``secret``),
and its answer names the webhook by URL (``self``).

Jira shows a new custom field on no screen, and refuses to set a field that is not on
the issue's edit screen: the plan says so when it creates fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.errors import ConnectorError
from connector.http import HttpClient
from connector.jsm import JiraUsers
from connector.setup import WRITTEN_FIELDS, FieldSpec, Plan, Ref, SetupError, Step

_CF = "com.atlassian.jira.plugin.system.customfieldtypes:"
# tierdesk's field type → Jira's custom field type and the searcher that goes with it.
JIRA_TYPES = {
    "text": (_CF + "textfield", _CF + "textsearcher"),
    "textarea": (_CF + "textarea", _CF + "textsearcher"),
    "datetime": (_CF + "datetime", _CF + "datetimerange"),
}
_OUR_TYPE = {jira: ours for ours, (jira, _) in JIRA_TYPES.items()}

FIELDS = (
    *WRITTEN_FIELDS,
    # Jira has no groups to route to: the team tierdesk picks goes to a field.
    FieldSpec(
        "team",
        "tierdesk_team",
        "tierdesk: Team",
        "text",
        "The support team tierdesk routes the request to. Written by tierdesk.",
    ),
)

# The events the webhook subscribes to, as the README lists them; webhooks/jsm.py turns
# each into a ticket event (a test posts one of each through the intake and the worker).
# An edited or deleted comment may be (or stop being) the first response; a deleted
# issue's clock must stop.
EVENTS = (
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "worklog_created",
    "worklog_updated",
    "worklog_deleted",
)
WEBHOOKS = "/rest/webhooks/1.0/webhook"
JQL_SECTION = "issue-related-events-section"
SCREENS_NOTE = (
    "Jira shows new custom fields on no screen, and refuses to set a field missing from"
    " the issue's edit screen: add the tierdesk fields to the screens of your service"
    " projects (Project settings > Issues > Screens)."
)


@dataclass(frozen=True, slots=True)
class JsmState:
    fields: tuple[dict[str, Any], ...] = ()  # GET /rest/api/3/field
    webhooks: tuple[dict[str, Any], ...] = ()  # GET /rest/webhooks/1.0/webhook


def api_account_id(client: HttpClient) -> str:
    """The accountId of the user setup calls as (Jira Cloud's "Get current user"): the
    only name the webhooks of tierdesk's own writes give their author."""
    try:
        account_id = JiraUsers(client).myself()
    except ConnectorError as exc:
        raise SetupError(f"reading the API user (GET /rest/api/3/myself) failed: {exc}") from None
    if account_id is None:
        raise SetupError("GET /rest/api/3/myself: the answer holds no accountId")
    return account_id


def read_state(client: HttpClient, api: str = "/rest/api/3") -> JsmState:
    return JsmState(
        fields=_list(client, f"{api}/field", "custom fields"),
        webhooks=_list(client, WEBHOOKS, "webhooks"),
    )


def _list(client: HttpClient, path: str, what: str) -> tuple[dict[str, Any], ...]:
    try:
        answer = client.request("GET", path)
    except ConnectorError as exc:
        raise SetupError(f"reading the site's {what} failed: {exc}") from None
    # Both answer a bare array; a paged object (values) is taken too, to be safe.
    items = answer.get("values") if isinstance(answer, dict) else answer
    if not isinstance(items, list):
        raise SetupError(f"GET {path}: expected a list of {what}")
    return tuple(item for item in items if isinstance(item, dict))


def plan(
    state: JsmState,
    *,
    tenant_id: str,
    endpoint: str,
    jql: str,
    secret_known: bool,
    api: str = "/rest/api/3",
) -> Plan:
    """Existing state → the steps. Pure. ``secret_known``: tierdesk holds the secret of
    an existing webhook (a recorded secret file, or the tenant's configured one); Jira
    never shows it again, so without it the webhook gets a new one."""
    steps: list[Step] = []
    types: list[tuple[str, str]] = []
    for spec in FIELDS:
        step, field_type = _field_step(state.fields, spec, tenant_id, api)
        steps.append(step)
        types.append((spec.name, field_type))
    steps.append(_webhook_step(state.webhooks, tenant_id, endpoint, jql.strip(), secret_known))
    created_fields = any(s.kind == "create" and s.ref.startswith("field:") for s in steps)
    return Plan(
        "jsm",
        tuple(steps),
        FIELDS,
        notes=(SCREENS_NOTE,) if created_fields else (),
        field_types=tuple(types),
    )


def _field_step(
    fields: tuple[dict[str, Any], ...], spec: FieldSpec, tenant_id: str, api: str
) -> tuple[Step, str]:
    what = f'custom field "{spec.title}"'
    matches = [f for f in fields if f.get("custom") and f.get("name") == spec.title]
    if len(matches) > 1:
        # Jira allows several fields of one name; guessing would write to the wrong one.
        ids = ", ".join(str(f.get("id")) for f in matches)
        raise SetupError(
            f"{what}: several custom fields have this name ({ids}); rename the extra ones,"
            f" or name the one to use in [tenants.{tenant_id}.fields] {spec.name}"
        )
    if not matches:
        jira_type, searcher = JIRA_TYPES[spec.type]
        body = {
            "name": spec.title,
            "description": spec.description,
            "type": jira_type,
            "searcherKey": searcher,
        }
        create = Step(
            "create",
            what,
            f"field:{spec.name}",
            method="POST",
            path=f"{api}/field",
            body=body,
            id_at=("id",),
        )
        return create, spec.type
    found = matches[0]
    schema = _obj(found.get("schema"))
    found_type = _OUR_TYPE.get(str(schema.get("custom")))
    if found_type is None:
        raise SetupError(
            f"{what}: {found.get('id')} has that name but is a {schema.get('custom')} field;"
            f" tierdesk writes {', '.join(JIRA_TYPES)} fields. Rename it, or name another"
            f" field in [tenants.{tenant_id}.fields] {spec.name}"
        )
    return Step("reuse", what, f"field:{spec.name}", id=str(found["id"])), found_type


def _webhook_step(
    webhooks: tuple[dict[str, Any], ...],
    tenant_id: str,
    endpoint: str,
    jql: str,
    secret_known: bool,
) -> Step:
    what = f'admin webhook "tierdesk ({tenant_id})" → {endpoint}'
    body = {
        "name": f"tierdesk ({tenant_id})",
        "url": endpoint,
        "events": list(EVENTS),
        "filters": {JQL_SECTION: jql},
        "excludeBody": False,
        "secret": Ref("secret:webhook"),
    }
    matches = [w for w in webhooks if str(w.get("url", "")).rstrip("/") == endpoint.rstrip("/")]
    if len(matches) > 1:
        ids = ", ".join(_webhook_id(w) for w in matches)
        raise SetupError(f"{what}: several webhooks call this URL ({ids}); delete the extra ones")
    if not matches:
        return Step(
            "create", what, "webhook", method="POST", path=WEBHOOKS, body=body, id_at=("self",)
        )
    found = matches[0]
    webhook_id = _webhook_id(found)
    filters = _obj(found.get("filters"))
    if set(found.get("events") or []) != set(EVENTS):
        drift = "its events differ"
    elif str(filters.get(JQL_SECTION) or "").strip() != jql:
        drift = "its JQL filter differs"
    elif not secret_known:
        drift = "tierdesk holds no secret for it (Jira never shows one again): a new one is set"
    else:
        note = "" if found.get("enabled", True) else "disabled: enable it in Jira administration"
        return Step("reuse", what, "webhook", id=webhook_id, note=note)
    return Step(
        "update",
        what,
        "webhook",
        id=webhook_id,
        method="PUT",
        path=f"{WEBHOOKS}/{webhook_id}",
        body=body,
        note=drift,
    )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _webhook_id(webhook: dict[str, Any]) -> str:
    """An admin webhook's id: the last segment of its ``self`` URL."""
    own = str(webhook.get("self") or webhook.get("id") or "")
    if not own:
        raise SetupError("a webhook in the list has neither self nor id")
    return own.rstrip("/").rsplit("/", 1)[-1]
