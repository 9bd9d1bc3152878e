"""A throwaway PostgreSQL server for the tests: Debian's binaries, a fresh cluster in a
temporary directory, listening only on 127.0.0.1 (a free port) and on a socket in that
directory, trust authentication, stopped and deleted at the end of the session.

PostgreSQL refuses to run as root; as root the cluster belongs to the ``postgres`` OS
user (Debian's package creates it) and its programs run through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "tierdesk"  # the cluster's superuser, whom the tests connect as
DATABASE = "tierdesk_test"


# Each running server's data directory, by URL: what `restart` needs.
_RUNNING: dict[str, tuple[Path, Path]] = {}


def restart(url: str, mode: str = "fast") -> None:
    """Restart the server the session's ``url`` names, as an operator would (``pg_ctl
    restart``, same port and options): every session open on it ends."""
    bin_dir, data = _RUNNING[url]
    # -l again: without it the server would write to (and hold open) our output pipe.
    log = str(data.parent / "server.log")
    _run(
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", log, "-m", mode, "-w", "restart"],
        "restart",
    )


class NoServer(Exception):  # noqa: N818  it names what happened
    """No PostgreSQL server could be started here (and why)."""


def binaries() -> Path:
    """The newest installed server's bin directory (PG_BIN overrides)."""
    if override := os.environ.get("PG_BIN"):
        return Path(override)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if not found:
        raise NoServer(
            "no /usr/lib/postgresql/*/bin/postgres: apt-get install postgresql (or set PG_BIN)"
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    """Run as ``postgres`` when we are root: initdb and postgres refuse root."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(_as_owner(argv), check=False, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise NoServer(f"{what} failed ({done.returncode}): {done.stderr.strip() or done.stdout}")


@contextmanager
def given_or_started(url: str | None) -> Iterator[str]:
    """``url`` when given (a server of the caller's: the benchmarks' ``--url``), else a
    throwaway server's for the duration."""
    if url:
        yield url
        return
    with postgres_server() as started:
        yield started


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server, create the test database, yield its ``postgresql://`` URL."""
    bin_dir = binaries()
    # Not under pytest's tmp_path: its parents are private to root, and the server
    # (as postgres) must be able to reach its own directory.
    top = Path(tempfile.mkdtemp(prefix="tierdesk-pg-"))
    try:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise NoServer("running as root and there is no postgres OS user") from exc
            os.chown(top, owner.pw_uid, owner.pw_gid)
        data = top / "data"
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",  # a throwaway cluster: nothing to keep after a crash
            ],
            "initdb",
        )
        port = _start(bin_dir, top, data)
        try:
            base = f"postgresql://{USER}@127.0.0.1:{port}"
            _run(
                [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER,
                 DATABASE],
                "createdb",
            )  # fmt: skip
            url = f"{base}/{DATABASE}"
            _RUNNING[url] = (bin_dir, data)
            yield url
        finally:
            _RUNNING.pop(f"{base}/{DATABASE}", None)
            _run(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], "stop"
            )
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _start(bin_dir: Path, top: Path, data: Path) -> int:
    """pg_ctl start on a free port; another process may take the port between the probe
    and the start, so a few tries."""
    last = ""
    for _ in range(5):
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {top}"
            # Speed over durability: the cluster is deleted after the session.
            " -c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        started = subprocess.run(
            _as_owner(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(top / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ]
            ),
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if started.returncode == 0:
            return port
        log = top / "server.log"
        last = log.read_text(errors="replace")[-2000:] if log.exists() else started.stderr
    raise NoServer(f"pg_ctl start failed: {last.strip()}")
