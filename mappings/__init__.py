"""The JSON mappings: the bundled defaults (the seed offerings), their versioned
schemas, and loading them into an `entitlements.Rulebook`.

``load_mappings(directory)`` returns a Rulebook or raises `MappingError` with every
problem found (file, JSON pointer, rule). ``check_mappings`` returns the problems.
"""

from __future__ import annotations

from pathlib import Path

from entitlements.rulebook import Rulebook
from mappings.build import build_rulebook
from mappings.documents import FILES, read_documents
from mappings.problems import MappingError, Problem

BUNDLED = Path(__file__).parent / "data"

__all__ = ["BUNDLED", "FILES", "MappingError", "Problem", "check_mappings", "load_mappings"]


def _load(directory: Path, reuse: Rulebook | None = None) -> tuple[Rulebook | None, list[Problem]]:
    documents, problems = read_documents(directory)
    rulebook, more = build_rulebook(documents, reuse)
    return rulebook, problems + more


def load_mappings(directory: Path | None = None, *, reuse: Rulebook | None = None) -> Rulebook:
    """The rulebook of ``directory`` (the bundled defaults when None). ``reuse``: the
    rulebook in force, on a reload; its calendars that did not change serve again, with
    the weeks they have worked out."""
    rulebook, problems = _load(directory or BUNDLED, reuse)
    if rulebook is None or problems:
        raise MappingError(problems)
    return rulebook


def check_mappings(directory: Path | None = None) -> list[Problem]:
    """Every problem with ``directory`` (empty when it loads)."""
    return _load(directory or BUNDLED)[1]
