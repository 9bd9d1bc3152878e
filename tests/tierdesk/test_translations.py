"""The Zendesk app's translations: ja.json has every key en.json has, the package
validator passes them, and the sidebar's copy (assets/i18n.js) is in step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tierdesk import sidebar_strings
from tierdesk.cli import main
from tierdesk.package import validate

ROOT = Path(__file__).resolve().parents[2]


def keys(doc: Any, prefix: str = "") -> set[str]:
    if not isinstance(doc, dict):
        return {prefix}
    return {k for name, value in doc.items() for k in keys(value, f"{prefix}/{name}")}


def load(locale: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "translations" / f"{locale}.json").read_text("utf-8"))
    return doc


def test_japanese_has_exactly_the_english_keys() -> None:
    english, japanese = load("en"), load("ja")
    assert keys(japanese) == keys(english)
    # Translated, not copied: every sentence differs (names and settings may not).
    same = {
        k
        for k, v in japanese["sidebar"].items()
        if v == english["sidebar"][k] and any(c.isalpha() for c in v.replace("tierdesk", ""))
    }
    assert not same, same
    assert japanese["app"]["parameters"]["tenant"]["label"] == "テナント ID"


def test_the_package_validator_passes_both_translations() -> None:
    assert validate(ROOT, domains=["tierdesk.acme.example"]) == []
    check = ["package", "zendesk", "--check", "--source", str(ROOT)]
    result = CliRunner().invoke(main, [*check, "--domain", "tierdesk.acme.example"])
    assert result.exit_code == 0, result.output


def test_the_sidebars_copy_of_the_strings_is_in_step() -> None:
    # After editing translations/*.json: python -m tierdesk.sidebar_strings
    assert (ROOT / sidebar_strings.ASSET).read_text("utf-8") == sidebar_strings.render(ROOT)


def test_a_translation_without_sidebar_strings_is_refused(tmp_path: Path) -> None:
    (tmp_path / "translations").mkdir()
    (tmp_path / "translations" / "fr.json").write_text('{"app": {"name": "tierdesk"}}')
    try:
        sidebar_strings.render(tmp_path)
    except ValueError as exc:
        assert "fr.json" in str(exc)
    else:
        raise AssertionError("a translation without a sidebar table was accepted")
