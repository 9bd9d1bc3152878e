"""The vendors' published OpenAPI specs as contracts for what the connectors send.

`assert_conforms(api, request)` takes a request `responses` recorded and checks it
against the operation the spec declares for its method and path: the operation must
exist, every query parameter must be one it declares, and the JSON body must validate
against its ``requestBody`` schema, ``$ref`` resolved within the spec.

OpenAPI 3.0 schemas are not quite JSON Schema: ``nullable: true`` is turned into a
``"null"`` type, and the validator is Draft 4 (what OpenAPI 3.0 schemas are based on)
with a ``date-time`` check, which jsonschema would otherwise skip without a word.

The Zendesk errata from ../shared/vendor/README.md are applied: in ticket request
bodies ``custom_fields`` items are ``{id, value}`` pairs (the spec points them at
``CustomFieldObject``, the field *definition*, which requires ``key``, ``type`` and
``title``), and a value may be null.
"""

from __future__ import annotations

import importlib
import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from jsonschema import Draft4Validator, FormatChecker
from requests import PreparedRequest

from tests.shared import VENDOR

# The venv has PyYAML but not its stubs: imported as a module object, so mypy sees Any.
yaml: Any = importlib.import_module("yaml")

Api = Literal["zendesk", "jira", "jsm"]

SPECS: dict[Api, Path] = {
    "zendesk": VENDOR / "zendesk" / "support-api.openapi.yaml",
    "jira": VENDOR / "jsm" / "jira-platform.openapi.json",
    "jsm": VENDOR / "jsm" / "service-management.openapi.json",
}

# Errata 1 and 2: what Zendesk really takes (and returns) in a ticket's custom_fields.
CUSTOM_FIELD_VALUE: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "value": {"type": ["string", "null"]}},
    "required": ["id", "value"],
    "additionalProperties": False,
}
_ZENDESK_TICKET_INPUTS = ("TicketUpdateInput", "TicketCreateInput")

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # RFC 3339: a date, "T", a time and an offset. fromisoformat is laxer on the rest,
    # which is fine: the point is to catch a date alone, a missing offset or None.
    if not isinstance(value, str):
        return True  # the type keyword's business, as JSON Schema wants
    if "T" not in value.upper():
        raise ValueError(f"{value!r} has no time")
    if datetime.fromisoformat(value).tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return True


def _yaml_loader() -> Any:
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader: Any = type("SpecLoader", (base,), {})
    # PyYAML resolves a bare "=" (in a trigger example of the Zendesk spec) to YAML 1.1's
    # "value" type, which it then cannot construct: read it as the text it is.
    loader.add_constructor("tag:yaml.org,2002:value", lambda ld, node: ld.construct_scalar(node))
    return loader


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema's ``"null"`` type, everywhere."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_json_schema(value) for key, value in node.items()}
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


@cache
def spec(api: Api, *, errata: bool = True) -> dict[str, Any]:
    """The spec, ready to validate against (loaded once per test session); ``errata=False``
    leaves the Zendesk custom_fields as published, to show why the errata are needed."""
    path = SPECS[api]
    with path.open(encoding="utf-8") as handle:
        raw = (
            yaml.load(handle, Loader=_yaml_loader())
            if path.suffix == ".yaml"
            else json.load(handle)
        )
    doc: dict[str, Any] = _as_json_schema(raw)
    if api == "zendesk" and errata:
        schemas = doc["components"]["schemas"]
        for name in _ZENDESK_TICKET_INPUTS:
            # TicketCreateInput inherits custom_fields through allOf; patch wherever declared.
            custom = schemas[name].get("properties", {}).get("custom_fields")
            if custom is not None:
                custom["items"] = CUSTOM_FIELD_VALUE
    return doc


@cache
def _routes(api: Api) -> tuple[tuple[re.Pattern[str], str], ...]:
    routes = []
    # Literal segments before parameters: /issue/picker is not /issue/{issueIdOrKey}.
    for template in sorted(spec(api)["paths"], key=lambda t: t.count("{")):
        # Exactly the documented path: Zendesk's /api/v2/tickets/{ticket_id} is not
        # .../4242.json (its ids are numbers), which a spec-based sandbox answers with 404.
        segment = "[^/.]+" if api == "zendesk" else "[^/]+"
        pattern = re.sub(r"\\\{[^/]+?\\\}", segment, re.escape(template))
        routes.append((re.compile(pattern), template))
    return tuple(routes)


def operation(api: Api, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The path template and the operation the spec declares for ``method path``."""
    for pattern, template in _routes(api):
        if pattern.fullmatch(path):
            op = spec(api)["paths"][template].get(method.lower())
            if op is not None:
                return template, op
    raise AssertionError(f"{api}: the spec declares no operation {method} {path}")


def body_errors(
    api: Api, template: str, method: str, body: Any, *, errata: bool = True
) -> list[str]:
    """How ``body`` breaks the operation's requestBody schema; empty when it conforms."""
    doc = spec(api, errata=errata)
    schema = doc["paths"][template][method.lower()]["requestBody"]["content"]["application/json"]
    # The spec's components beside the schema, so that "#/components/..." resolves.
    root = {"components": doc["components"], "allOf": [schema["schema"]]}
    validator = Draft4Validator(root, format_checker=FORMATS)
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in validator.iter_errors(body)
    )


def assert_conforms(api: Api, request: PreparedRequest) -> Any:
    """Check a recorded request against the spec; its JSON body (None when empty)."""
    method = request.method or ""
    url = urlsplit(request.url or "")
    template, op = operation(api, method, url.path)
    declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
    undeclared = {name for name, _ in parse_qsl(url.query)} - declared
    assert not undeclared, f"{method} {template}: undeclared query parameters {undeclared}"
    if not request.body:
        assert "requestBody" not in op or not op["requestBody"].get("required")
        return None
    body = json.loads(request.body)
    errors = body_errors(api, template, method, body)
    assert not errors, f"{method} {template}: the body breaks the spec:\n" + "\n".join(errors)
    return body
