"""The README's alert rules and metric table name only metrics that a scrape gives:
an alert on a misspelt metric never fires, and nobody notices."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

from tests.telemetry.test_metrics import post, rig, scrape, trigger_body

__all__ = ["rig"]

README = Path(__file__).resolve().parents[2] / "README.md"
# Families a scrape may lack until something happened (a labelled counter has no
# sample before its first increment): they are checked against the registry instead.
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_info")


def production_section() -> str:
    text = README.read_text()
    start = text.index("## Running it in production")
    return text[start : text.index("\n## ", start + 1)]


def named_metrics(text: str) -> set[str]:
    return set(re.findall(r"\btierdesk_[a-z_]+\b", text))


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_every_metric_the_readme_names_exists(rig: tuple[FlaskClient, object, object]) -> None:
    from prometheus_client import REGISTRY

    client = rig[0]
    assert post(client, trigger_body("7300", "2026-03-04T12:00:00Z")) == 202
    scraped = {family(name) for name, _ in scrape(client)}
    registered = {family(name) for name in REGISTRY._names_to_collectors}
    named = named_metrics(production_section())
    assert len(named) > 20
    missing = sorted(n for n in named if family(n) not in scraped | registered)
    assert not missing, f"the README names metrics tierdesk does not have: {missing}"
    rules = production_section().split("```yaml", 1)[1].split("```", 1)[0]
    assert named_metrics(rules) <= named
