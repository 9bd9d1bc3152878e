"""``tierdesk package zendesk``: validate the Zendesk app and build its uploadable zip.

The app files are read from the root of the tierdesk checkout this command runs from
(`tierdesk.package.default_app_dir`), or from ``--source DIR``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from mappings.problems import Problem
from tierdesk.package import MANIFEST, PackageError, build, default_app_dir, validate


@click.group("package")
def package() -> None:
    """Build the helpdesk app packages."""


@package.command("zendesk")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the zip (default: dist/tierdesk-zendesk-<version>.zip).",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    metavar="HOST",
    help="tierdesk's host name (repeatable): added to the manifest's domainWhitelist, the only"
    " hosts Zendesk's proxy sends the secure app token to.",
)
@click.option(
    "--source",
    type=click.Path(file_okay=False, path_type=Path),
    help="The app files' directory (default: the root of this tierdesk checkout).",
)
@click.option("--check", is_flag=True, help="Only validate; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON lines.")
def zendesk(
    out: Path | None, domains: tuple[str, ...], source: Path | None, check: bool, as_json: bool
) -> None:
    """Validate the Zendesk app (manifest.json, requirements.json, assets/, translations/)
    and build the zip to upload; exit 1 with every problem found."""
    root = source or default_app_dir()
    if check:
        problems = validate(root, domains=domains)
        _report(problems, as_json)
        if problems:
            sys.exit(1)
        click.echo(f"{root}: ok", err=True)
        return
    target = out or Path("dist") / f"tierdesk-zendesk-{_version(root)}.zip"
    try:
        built = build(root, target, domains=domains)
    except PackageError as exc:
        _report(exc.problems, as_json)
        sys.exit(1)
    click.echo(f"{built.path}  {len(built.entries)} files  sha256 {built.sha256}")


def _report(problems: Sequence[Problem], as_json: bool) -> None:
    for problem in problems:
        click.echo(json.dumps(problem.to_json()) if as_json else str(problem), err=True)
    if problems:
        click.echo(f"Zendesk app: {len(problems)} problem(s)", err=True)


def _version(root: Path) -> str:
    try:
        version = json.loads((root / MANIFEST).read_text("utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return "unversioned"
    return version if isinstance(version, str) and version else "unversioned"
