"""Every request a twin receives, checked against the vendor's published OpenAPI spec.

`check(api, method, path, query, body)` → the list of broken rules, each naming the
rule (empty when the request conforms). The twins answer a non-empty list with the
status a spec-validating sandbox gives (400 for path, query and body; 405 for a method
the path does not declare; 404 for a path no spec declares), so a test fails when
tierdesk sends something the real API would refuse.

The specs are loaded once per session (`tests.connector.contracts.spec`, cached, with
errata 1 and 2 of ../shared/vendor/README.md applied to Zendesk's ticket bodies).
What the specs leave out, each taken from the vendor's documentation or a recording:

- Zendesk lists describe "Cursor pagination" without declaring ``page[...]``
  (erratum 3): ``page[size]``, ``page[after]``, ``page[before]`` are accepted there.
- Zendesk paths ending in ``.json`` are what the real API also answers (the recorded
  zenpy interactions call ``/api/v2/tickets/4017.json``), but the spec declares
  ``/api/v2/tickets/{ticket_id}``: `route` strips the suffix and reports it as a
  `LEGACY_SUFFIX` violation, which a twin records (or refuses, when strict).
- Bodies of operations that declare none: ``POST /api/v2/ticket_fields`` and the
  organization/user field endpoints (the field definition, ``CustomFieldObject``),
  ``PUT /api/v2/organizations/{id}`` and ``/users/{id}`` (the object, not ``required``),
  a JSM entity property (any JSON).
- APIs in no spec here: Zendesk's Webhooks API and Jira's admin webhooks
  (``/rest/webhooks/1.0/webhook``): `EXTRA_ROUTES`, checked against the JSON formats
  the vendors document (`tests.connector.setup_fakes`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft4Validator

from tests.connector.contracts import FORMATS, Api, spec
from tests.connector.setup_fakes import JIRA_ADMIN_WEBHOOK_REQUEST, ZENDESK_WEBHOOK_REQUEST

LEGACY_SUFFIX = "zendesk-json-suffix"
CURSOR_PARAMS = frozenset({"page[size]", "page[after]", "page[before]"})

# Paths no spec here declares: (api, method, template) → the body schema (None: no body).
EXTRA_ROUTES: dict[tuple[Api, str, str], dict[str, Any] | None] = {
    ("zendesk", "GET", "/api/v2/webhooks"): None,
    ("zendesk", "POST", "/api/v2/webhooks"): ZENDESK_WEBHOOK_REQUEST,
    ("zendesk", "GET", "/api/v2/webhooks/{webhook_id}/signing_secret"): None,
    ("jira", "GET", "/rest/webhooks/1.0/webhook"): None,
    ("jira", "POST", "/rest/webhooks/1.0/webhook"): JIRA_ADMIN_WEBHOOK_REQUEST,
    ("jira", "PUT", "/rest/webhooks/1.0/webhook/{webhook_id}"): JIRA_ADMIN_WEBHOOK_REQUEST,
}


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str  # e.g. "path", "method", "query", "body", LEGACY_SUFFIX
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


@dataclass(frozen=True, slots=True)
class Route:
    template: str
    params: dict[str, str]
    suffix: bool  # the path ended in .json (Zendesk)


@cache
def _templates(api: Api) -> tuple[tuple[re.Pattern[str], str], ...]:
    templates = [*spec(api)["paths"], *(t for (a, _, t) in EXTRA_ROUTES if a == api)]
    routes = []
    # Literal segments before parameters: /organizations/count is not /organizations/{id}.
    for template in sorted(set(templates), key=lambda t: (t.count("{"), -len(t))):
        pattern = re.sub(
            r"\\\{([^/]+?)\\\}",
            lambda m: f"(?P<p_{_ident(m[1])}>[^/]+)",  # group names must be identifiers
            re.escape(template),
        )
        routes.append((re.compile(pattern), template))
    return tuple(routes)


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def route(api: Api, path: str) -> Route | None:
    """The spec's path template for ``path`` (None when no spec declares it)."""
    suffix = api == "zendesk" and path.endswith(".json")
    bare = path.removesuffix(".json") if suffix else path
    for pattern, template in _templates(api):
        match = pattern.fullmatch(bare)
        if match:
            params = {k.removeprefix("p_"): v for k, v in match.groupdict().items()}
            return Route(template, params, suffix)
    return None


def _resolve(api: Api, node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = spec(api)["components"][kind][name]
    return node


def _operation(api: Api, method: str, template: str) -> dict[str, Any] | None:
    op: dict[str, Any] | None = spec(api)["paths"].get(template, {}).get(method.lower())
    return op


def _query_params(api: Api, template: str, op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    declared = [*spec(api)["paths"][template].get("parameters", []), *op.get("parameters", [])]
    params = {}
    for raw in declared:
        param = _resolve(api, raw)
        if param.get("in") == "query":
            params[param["name"]] = param
    return params


def schema_errors(api: Api, schema: dict[str, Any], instance: Any) -> list[str]:
    root = {"components": spec(api)["components"], "allOf": [schema]}
    validator = Draft4Validator(root, format_checker=FORMATS)
    return sorted(
        f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
        for e in validator.iter_errors(instance)
    )


def _object_update(api: Api, name: str, key: str) -> dict[str, Any]:
    obj = copy.deepcopy(spec(api)["components"]["schemas"][name])
    obj.pop("required", None)  # "required" is for creation
    return {
        "type": "object",
        "required": [key],
        "additionalProperties": False,
        "properties": {key: obj},
    }


def _undeclared_body_schema(api: Api, method: str, template: str) -> dict[str, Any] | None:
    """A schema for bodies of operations whose spec entry declares none (see docstring)."""
    field_def = {"$ref": "#/components/schemas/CustomFieldObject"}
    if api == "zendesk":
        for owner in ("ticket", "organization", "user"):
            key = f"{owner}_field"
            if template in (f"/api/v2/{key}s", f"/api/v2/{key}s/{{{key}_id}}"):
                wanted = {
                    "type": "object",
                    "required": [key],
                    "additionalProperties": False,
                    "properties": {key: field_def},
                }
                if method == "PUT":  # an update sends only what changes
                    wanted["properties"] = {key: {"type": "object"}}
                return wanted
        if method == "PUT" and template == "/api/v2/organizations/{organization_id}":
            return _object_update(api, "OrganizationObject", "organization")
        if method == "PUT" and template == "/api/v2/users/{user_id}":
            return _object_update(api, "UserObject", "user")
    if api == "jsm" and method == "PUT" and template.endswith("/property/{propertyKey}"):
        return {}  # an entity property's value is any JSON
    return None


def check(
    api: Api, method: str, path: str, query: list[tuple[str, str]], body: Any, has_body: bool
) -> tuple[Route | None, list[Violation]]:
    """The route and every rule the request breaks."""
    found = route(api, path)
    if found is None:
        return None, [Violation("path", f"{api}: no spec declares {path}")]
    violations = []
    if found.suffix:
        violations.append(
            Violation(
                LEGACY_SUFFIX, f"{path}: the spec declares {found.template} (no .json suffix)"
            )
        )
    extra = (api, method, found.template)
    if extra in EXTRA_ROUTES:
        schema = EXTRA_ROUTES[extra]
        if schema is not None:
            violations += [Violation("body", e) for e in schema_errors(api, schema, body)]
        return found, violations
    op = _operation(api, method, found.template)
    if op is None:
        return found, [Violation("method", f"{found.template} declares no {method}")]
    params = _query_params(api, found.template, op)
    names = {name for name, _ in query}
    allowed = set(params)
    if "Cursor pagination" in op.get("description", ""):
        allowed |= CURSOR_PARAMS
    for name in sorted(names - allowed):
        violations.append(Violation("query", f"{method} {found.template}: undeclared {name!r}"))
    for name, param in params.items():
        if param.get("required") and name not in names:
            violations.append(Violation("query", f"{method} {found.template}: {name!r} required"))
    values = dict(query)
    for name in sorted(names & set(params)):
        schema = param_schema = params[name].get("schema") or {}
        if param_schema.get("type") == "boolean":
            if values[name] not in ("true", "false"):
                violations.append(Violation("query", f"{name}={values[name]!r}: not a boolean"))
        elif param_schema.get("type") == "integer":
            if not values[name].lstrip("-").isdigit():
                violations.append(Violation("query", f"{name}={values[name]!r}: not an integer"))
        elif "enum" in schema and values[name] not in schema["enum"]:
            violations.append(Violation("query", f"{name}={values[name]!r}: not in the enum"))
    declared = op.get("requestBody")
    if not has_body:
        if declared and declared.get("required"):
            violations.append(Violation("body", f"{method} {found.template}: a body is required"))
        return found, violations
    if declared:
        content = _resolve(api, declared)["content"]
        media = content.get("application/json") or next(iter(content.values()))
        schema = media.get("schema", {})
    else:
        schema = _undeclared_body_schema(api, method, found.template)
        if schema is None:
            violations.append(Violation("body", f"{method} {found.template} takes no body"))
            return found, violations
    violations += [Violation("body", e) for e in schema_errors(api, schema, body)]
    return found, violations
