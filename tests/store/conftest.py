"""`backend` (every entry of tests/store/backends.py BACKENDS) and `store` (one Store on
it) for the store suites that run against every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store import Store
from tests.store.backends import BACKENDS, Backend


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with BACKENDS[request.param](request, tmp_path) as made:
        try:
            yield made
        finally:
            for store in made.opened:
                store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
