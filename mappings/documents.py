"""Reading the mapping files and checking each against its versioned JSON Schema."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from mappings.problems import Problem, pointer

FILES = ("calendars.json", "tiers.json", "accounts.json")
SCHEMAS = Path(__file__).parent / "schemas"
SUPPORTED_VERSIONS = (1,)
_MAX_MESSAGE = 240


@dataclass(frozen=True, slots=True)
class Documents:
    """The parsed files by name, and a digest of their bytes (the mappings' version)."""

    by_name: dict[str, Any]
    digest: str


@cache
def _validator(stem: str, version: int) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{stem}.v{version}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def read_documents(directory: Path) -> tuple[Documents, list[Problem]]:
    """Every file parsed and schema-checked; problems for every failure found."""
    problems: list[Problem] = []
    parsed: dict[str, Any] = {}
    digest = hashlib.sha256()
    for name in FILES:
        path = directory / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            problems.append(Problem(name, "", "missing", f"{path} does not exist"))
            continue
        except OSError as exc:
            problems.append(Problem(name, "", "unreadable", f"{path}: {exc.strerror}"))
            continue
        digest.update(name.encode() + b"\0" + raw + b"\0")
        try:
            document = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.append(Problem(name, "", "utf-8", f"not UTF-8 text (byte {exc.start})"))
            continue
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            problems.append(Problem(name, "", "json", f"not valid JSON at {where}: {exc.msg}"))
            continue
        except RecursionError:  # Python's parser gives up on very deep nesting
            problems.append(Problem(name, "", "json", "nested too deeply to read"))
            continue
        found = schema_problems(name, document)
        problems.extend(found)
        if not found:
            parsed[name] = document
    return Documents(parsed, digest.hexdigest()[:12]), problems


def schema_problems(name: str, document: Any) -> list[Problem]:
    version = document.get("schema_version", 1) if isinstance(document, dict) else 1
    # `True == 1` and `1.0 == 1` in Python: only a JSON integer names a schema file.
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        return [
            Problem(
                name,
                "/schema_version",
                "schema_version",
                f"version {version!r} is not one this tierdesk reads {list(SUPPORTED_VERSIONS)}",
            )
        ]
    validator = _validator(name.removesuffix(".json"), version)
    errors = sorted(
        validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]
    )
    return [Problem(name, pointer(*e.absolute_path), str(e.validator), _message(e)) for e in errors]


def _message(error: ValidationError) -> str:
    if error.validator in ("oneOf", "anyOf") and error.context:
        # "… is not valid under any of the given schemas" names no reason; the closest
        # branch's own error does.
        deeper = best_match(error.context)
        text = f"matches none of the allowed forms; closest: {deeper.message}"
    else:
        text = error.message
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
