"""The sidebar's strings, from ``translations/<locale>.json``, as ``assets/i18n.js``.

In: the app directory (`tierdesk.package.default_app_dir`). Out: the text of
``assets/i18n.js``, which defines ``window.TIERDESK_I18N`` = locale → the ``sidebar``
table of that locale's translation file. A translation file without one is refused
with `ValueError`.

Why a second file: Zendesk serves an app's ``assets/`` to its iframe, never its
``translations/`` (those name the app and its settings in Admin Center). So the
sidebar's words are kept in the translation files, where translators find them, and
copied into the one script the page loads; a test keeps the copy in step.
``python -m tierdesk.sidebar_strings`` rewrites it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tierdesk.package import default_app_dir

ASSET = "assets/i18n.js"


def render(root: Path) -> str:
    tables: dict[str, object] = {}
    for path in sorted((root / "translations").glob("*.json")):
        doc = json.loads(path.read_text("utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("sidebar"), dict):
            raise ValueError(f'{path.name}: no "sidebar" table of strings')
        tables[path.stem] = doc["sidebar"]
    body = json.dumps(tables, ensure_ascii=False, indent=2, sort_keys=True)
    return (
        "// Generated from translations/*.json by `python -m tierdesk.sidebar_strings`;\n"
        "// edit those files, not this one.\n"
        f"window.TIERDESK_I18N = {body};\n"
    )


def main() -> None:
    root = default_app_dir()
    (root / ASSET).write_text(render(root), "utf-8")


if __name__ == "__main__":
    main()
