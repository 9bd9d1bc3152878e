"""Fixtures shared across test packages.

``postgres_url``: a real PostgreSQL server for the session (tests/store/postgres_server.py),
only when ``TIERDESK_TEST_POSTGRES=1``. Without it the PostgreSQL cases are skipped; with
it they fail when no server can be started (CI sets it, so they cannot silently vanish).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.store.postgres_server import NoServer, postgres_server

POSTGRES_ENV = "TIERDESK_TEST_POSTGRES"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if os.environ.get(POSTGRES_ENV) != "1":
        pytest.skip(
            f"PostgreSQL cases run only with {POSTGRES_ENV}=1"
            " (./dev test sets it where the server binaries are installed)"
        )
    try:
        import psycopg  # noqa: F401  (the optional extra "postgres")
    except ImportError:
        pytest.fail(f"{POSTGRES_ENV}=1 but psycopg is not installed: pip install -e .[postgres]")
    try:
        server = postgres_server()
        url = server.__enter__()
    except NoServer as exc:
        pytest.fail(f"{POSTGRES_ENV}=1 but no PostgreSQL server could be started: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Commands under test set up logging for their process (tierdesk.logs.configure);
    within one pytest process, each test gets the root logger and hooks back as they
    were."""
    import logging
    import sys
    import threading

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = (sys.excepthook, threading.excepthook)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    sys.excepthook, threading.excepthook = hooks
