"""Imports point one way between the packages (README "Layout"). Checked on the syntax
tree of every module, lazy imports included; circles between single modules are
tests/tierdesk/test_import_cycles.py's to find.

    entitlements ← mappings, connector, store, telemetry ← webhooks ← pipeline ← tierdesk
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("entitlements", "mappings", "connector", "store", "telemetry", "webhooks", "pipeline")
# What each package may import of ours (itself always).
ALLOWED: dict[str, set[str]] = {
    "entitlements": set(),
    "store": {"entitlements"},
    "connector": {"entitlements"},
    "telemetry": set(),
    "mappings": {"entitlements", "connector"},
    "webhooks": {"entitlements", "mappings", "connector", "store", "telemetry"},
    "pipeline": {"entitlements", "mappings", "connector", "store", "telemetry", "webhooks"},
}


def imports_of(path: Path) -> set[str]:
    """Dotted modules ``path`` imports, at any depth of the tree (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, Path]:
    return {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for package in OURS
        if (ROOT / package).is_dir()
        for p in sorted((ROOT / package).rglob("*.py"))
    }


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    wrong = {
        f"{name} imports {target}"
        for name, path in modules().items()
        if name.split(".")[0] == package
        for target in imports_of(path)
        if target.split(".")[0] in {*OURS, "tierdesk"}
        and target.split(".")[0] not in {package, *ALLOWED[package]}
    }
    assert not wrong, sorted(wrong)


def test_pipeline_needs_no_flask() -> None:
    flask = {
        name
        for name, path in modules().items()
        if name.startswith("pipeline") and any(t.split(".")[0] == "flask" for t in imports_of(path))
    }
    assert not flask
