"""``/readyz`` on a full disk, for real: the SQLite file lives on a tmpfs of 8 MiB
mounted for this test, which a filler file then fills to the last byte (ENOSPC).

Why a real file system: ``max_page_count`` or RLIMIT_FSIZE would make SQLite's writes
fail, but the disk would not be full, and a full disk is what an operator meets (and
what /readyz must report before a load balancer sends webhooks that get 503). Mounting
needs root (CAP_SYS_ADMIN); without it the test is skipped, saying so.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.sqlite import MIN_FREE_BYTES
from tests.webhooks.test_intake import TENANTS, ZD_CREATED, answer, post_signed
from webhooks.app import create_app
from webhooks.settings import Settings


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(path: Path) -> None:
    """Write zeros until the file system refuses (ENOSPC)."""
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as handle:
        while True:
            try:
                handle.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        while True:  # the last partial block
            try:
                handle.write(b"\0" * 512)
            except OSError:
                break


def test_readyz_says_not_ready_while_the_sqlite_disk_is_full(small_disk: Path) -> None:
    app = create_app(Settings(database=str(small_disk / "t.sqlite3"), tenants=TENANTS))
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    assert post_signed(client, "zendesk", ZD_CREATED).status_code == 202

    filler = small_disk / "filler"
    fill(filler)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = answer(response)
    assert body["status"] == "not_ready" and "disk is full" in body["store"], body
    # What it protects from: a webhook now cannot be stored.
    other = ZD_CREATED.replace(b'"5158"', b'"5159"')
    assert post_signed(client, "zendesk", other).status_code == 503

    filler.unlink()
    assert client.get("/readyz").status_code == 200
    assert post_signed(client, "zendesk", other).status_code == 202


def test_ready_needs_room_for_a_webhook_not_just_a_byte(small_disk: Path) -> None:
    app = create_app(Settings(database=str(small_disk / "t.sqlite3"), tenants=TENANTS))
    client = app.test_client()
    filler = small_disk / "filler"
    fill(filler)
    # Give back less than the margin: some room, not enough for a 1 MiB webhook twice.
    with filler.open("r+b") as handle:
        handle.truncate(max(0, filler.stat().st_size - MIN_FREE_BYTES // 2))
    assert os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize < MIN_FREE_BYTES
    assert client.get("/readyz").status_code == 503
