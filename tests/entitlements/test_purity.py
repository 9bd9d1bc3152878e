"""DESIGN.md: entitlements/ imports only the standard library and `holidays`, never
reads the clock, the environment or files. Checked on the syntax tree, not by grep, so
that a comment or a string cannot hide an import or fake one."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "entitlements"
ALLOWED_THIRD_PARTY = {"holidays"}
# Standard-library modules that are I/O or ambient state by nature.
FORBIDDEN_STDLIB = {
    "os",
    "io",
    "socket",
    "sqlite3",
    "subprocess",
    "shutil",
    "pathlib",
    "time",
    "random",
}
FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("datetime", "today"),
}


def modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_imports_only_stdlib_and_holidays(path: Path) -> None:
    roots = imported_roots(ast.parse(path.read_text()))
    outside = {
        r
        for r in roots
        if r not in sys.stdlib_module_names and r not in ALLOWED_THIRD_PARTY and r != "entitlements"
    }
    assert not outside, f"{path.name} imports {sorted(outside)}"
    assert not roots & FORBIDDEN_STDLIB, f"{path.name} imports {sorted(roots & FORBIDDEN_STDLIB)}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_never_reads_the_clock(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert (node.value.id, node.attr) not in FORBIDDEN_CALLS, (
                f"{path.name}:{node.lineno} reads the clock ({node.value.id}.{node.attr}); "
                "take `now` as an argument"
            )


def test_the_check_sees_a_forbidden_import() -> None:
    # The guard itself must be able to fail.
    assert imported_roots(ast.parse("import requests\nfrom flask import Flask")) == {
        "requests",
        "flask",
    }
