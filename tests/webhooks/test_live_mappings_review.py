"""Review of live mappings reload (issue 5) against the ways ops actually deploy a
mappings directory: a symlink swapped to a new release (atomic deploy), a Kubernetes
ConfigMap volume (``..data`` swapped, files are symlinks through it), a file deleted
by mistake and put back. /readyz must say what is in force and why not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mappings import BUNDLED
from webhooks.app import create_app
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings

FILES = ("accounts.json", "calendars.json", "tiers.json")


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def release(root: Path, name: str, acme_name: str | None = None) -> Path:
    """A full copy of the bundled mappings, acme renamed when asked."""
    target = root / name
    shutil.copytree(BUNDLED, target)
    if acme_name is not None:
        path = target / "accounts.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        document["accounts"][0]["name"] = acme_name
        path.write_text(json.dumps(document), encoding="utf-8")
    return target


def swap(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` atomically (ln -sfn + mv -T, as deploy tools do)."""
    temp = link.with_name(link.name + ".new")
    temp.symlink_to(target, target_is_directory=True)
    temp.replace(link)  # rename(2) replaces the link itself, never its target


def acme(live: LiveMappings) -> str:
    rulebook = live.rulebook
    assert rulebook is not None
    return next(a.name for a in rulebook.accounts if a.id == "acme")


def test_a_symlinked_directory_swapped_to_a_new_release_is_picked_up(tmp_path: Path) -> None:
    v1 = release(tmp_path / "releases", "v1")
    v2 = release(tmp_path / "releases", "v2", acme_name="Acme Release Two")
    link = tmp_path / "mappings"
    link.symlink_to(v1, target_is_directory=True)
    ticks = Ticks()
    live = LiveMappings(link, check_every_s=2.0, clock=ticks)
    assert acme(live) == "Acme Corp"

    swap(link, v2)
    shutil.rmtree(v1)  # the deploy tool prunes the old release
    ticks.now += 2.0
    assert acme(live) == "Acme Release Two"
    assert live.problems == []


def test_a_configmap_volume_update_is_picked_up(tmp_path: Path) -> None:
    """Kubernetes mounts a ConfigMap as ``name -> ..data/name`` with ``..data`` a symlink
    to a timestamped directory, and updates it by swapping ``..data``."""
    volume = tmp_path / "volume"
    volume.mkdir()
    first = release(volume, "..2026_11_30_00_00_00.1")
    (volume / "..data").symlink_to(first.name, target_is_directory=True)
    for name in FILES:
        (volume / name).symlink_to(Path("..data") / name)
    ticks = Ticks()
    live = LiveMappings(volume, check_every_s=2.0, clock=ticks)
    assert acme(live) == "Acme Corp"

    second = release(volume, "..2026_11_30_00_05_00.2", acme_name="Acme From ConfigMap")
    swap(volume / "..data", Path(second.name))
    shutil.rmtree(first)
    ticks.now += 2.0
    assert acme(live) == "Acme From ConfigMap"


def test_a_deleted_file_keeps_the_last_good_mappings_and_readyz_says_so(tmp_path: Path) -> None:
    directory = release(tmp_path, "mappings")
    app = create_app(Settings(database=str(tmp_path / "t.sqlite3"), mappings_dir=directory))
    # Look on every request (the interval is tested in test_live_mappings.py).
    live = LiveMappings(directory, check_every_s=0.0)
    app.extensions["tierdesk.mappings"] = live
    client = app.test_client()
    version = client.get("/readyz").get_json()["mappings_version"]

    kept = (directory / "accounts.json").read_bytes()
    (directory / "accounts.json").unlink()
    body: dict[str, Any] = client.get("/readyz").get_json()
    # Still deciding with the last good mappings: ready, and the problem is named.
    assert body["status"] == "ready" and body["mappings_version"] == version
    assert any("accounts.json" in p and "missing" in p for p in body["mappings_problems"])
    assert acme(live) == "Acme Corp"

    (directory / "accounts.json").write_bytes(kept)
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and "mappings_problems" not in body


def test_a_directory_that_vanishes_is_reported_and_its_return_taken(tmp_path: Path) -> None:
    """A non-atomic deploy (rm -rf, then copy) leaves a moment with no directory."""
    directory = release(tmp_path, "mappings")
    ticks = Ticks()
    live = LiveMappings(directory, check_every_s=2.0, clock=ticks)
    shutil.rmtree(directory)
    ticks.now += 2.0
    assert acme(live) == "Acme Corp"
    assert live.problems, "a vanished directory must be reported"
    release(tmp_path, "mappings", acme_name="Acme Redeployed")
    ticks.now += 2.0
    assert acme(live) == "Acme Redeployed" and live.problems == []
