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


def _load(directory: Path) -> tuple[Rulebook | None, list[Problem]]:
    documents, problems = read_documents(directory)
    rulebook, more = build_rulebook(documents)
    return rulebook, problems + more


def load_mappings(directory: Path | None = None) -> Rulebook:
    """The rulebook of ``directory`` (the bundled defaults when None)."""
    rulebook, problems = _load(directory or BUNDLED)
    if rulebook is None or problems:
        raise MappingError(problems)
    return rulebook


def check_mappings(directory: Path | None = None) -> list[Problem]:
    """Every problem with ``directory`` (empty when it loads)."""
    return _load(directory or BUNDLED)[1]
