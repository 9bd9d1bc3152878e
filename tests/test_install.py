"""What an install carries: every module of the product and every data file it reads,
by pyproject.toml's setuptools configuration, checked without building anything.

An editable install (what ``./dev`` makes) maps the checkout, so it hid that a regular
one (a wheel, ``pip install .``) left out ``mappings.sync``, and with it ``tierdesk
sync``: the packages were listed by hand, and a listed package does not bring its
subpackages."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

from tests.tierdesk.test_import_cycles import PACKAGES as PRODUCT  # every one of ours

ROOT = Path(__file__).resolve().parents[1]


def installed_packages(config: dict[str, Any]) -> set[str]:
    """The packages setuptools installs by ``config``: a list as listed; found ones as
    its `find_namespace_packages` finds them (every directory a package, named by dotted
    path and kept when it matches an ``include`` pattern), or with ``namespaces = false``
    only the directories holding an ``__init__.py``."""
    packages = config["packages"]
    if isinstance(packages, list):
        return set(packages)
    find = packages["find"]
    namespaces = find.get("namespaces", True)
    directories = [
        path
        for top in PRODUCT
        for path in (ROOT / top, *(ROOT / top).rglob("*"))
        if path.is_dir() and "__pycache__" not in path.parts
    ]
    return {
        name
        for path in directories
        if namespaces or (path / "__init__.py").is_file()
        for name in [".".join(path.relative_to(ROOT).parts)]
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in find.get("include", ["*"]))
    }


def test_an_install_carries_every_module_and_data_file_of_the_product() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    packages = installed_packages(setuptools)
    data: dict[str, list[str]] = setuptools.get("package-data", {})
    left_out = []
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            package = ".".join(path.parent.relative_to(ROOT).parts)
            shown = path.relative_to(ROOT).as_posix()
            if package not in packages:
                left_out.append(f"{shown}: its package {package} is not installed")
            elif path.suffix != ".py" and not any(
                fnmatch.fnmatch(path.name, pattern) for pattern in data.get(package, ())
            ):
                left_out.append(f"{shown}: not in {package}'s package-data")
    assert left_out == []
