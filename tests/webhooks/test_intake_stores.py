"""The intake gives the same answer on every store: signed deliveries posted through
Flask's test client to an app on a real SQLite file and on the real PostgreSQL server
the tests start (tests/store/backends.py; PostgreSQL cases skip without
``TIERDESK_TEST_POSTGRES=1``).

A NUL character (U+0000) in a value tierdesk keeps was queued on SQLite and answered
503 for ever on PostgreSQL, whose text columns refuse it: now 400 naming the field on
both. A NUL where tierdesk keeps nothing (a description) is stored as sent on both.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from store import Store
from tests.store.backends import BACKENDS, Backend
from tests.webhooks.test_intake import JIRA_CREATED, TENANTS, ZD_CREATED, answer, post_signed
from webhooks.app import create_app
from webhooks.settings import Settings


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with BACKENDS[request.param](request, tmp_path) as made:
        yield made


@pytest.fixture
def client(backend: Backend) -> Iterator[FlaskClient]:
    app = create_app(Settings(database=backend.url, tenants=TENANTS))
    store: Store = app.extensions["tierdesk.store"]
    try:
        yield app.test_client()
    finally:
        store.close()


def edited(body: bytes, path: tuple[str, ...], value: Any) -> bytes:
    doc = json.loads(body)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(doc).encode()


def stored(client: FlaskClient) -> int:
    store: Store = client.application.extensions["tierdesk.store"]
    return sum(store.counts().values())


@pytest.mark.parametrize(
    ("vendor", "path", "value"),
    [
        ("zendesk", ("detail", "id"), "12\x003"),
        ("jsm", ("issue", "key"), "BUG-\x0015"),
        ("jsm", ("issue", "fields", "reporter", "emailAddress"), "ann\x00@acme.example"),
        ("zendesk", ("detail", "id"), "12\ud8003"),  # a lone surrogate: no store takes it
    ],
    ids=["zendesk-ticket-id", "jira-issue-key", "jira-reporter-email", "zendesk-surrogate"],
)
def test_a_kept_value_that_no_store_can_hold_is_400_naming_the_field_on_every_store(
    client: FlaskClient, vendor: str, path: tuple[str, ...], value: str
) -> None:
    body = edited({"zendesk": ZD_CREATED, "jsm": JIRA_CREATED}[vendor], path, value)
    assert b"\\u0000" in body or b"\\ud800" in body  # the JSON escape, as a sender writes it
    response = post_signed(client, vendor, body)
    assert response.status_code == 400, response.data
    refused = answer(response)
    assert refused["error"] == "invalid_payload"
    assert refused["field"] == ".".join(path)
    assert stored(client) == 0
    # The sender's retry gets the same answer: a 4xx it stops retrying, not a 503.
    assert post_signed(client, vendor, body).status_code == 400


def test_a_nul_where_tierdesk_keeps_nothing_is_stored_as_sent_on_every_store(
    client: FlaskClient, backend: Backend
) -> None:
    body = edited(ZD_CREATED, ("detail", "description"), "login\x00fails")
    response = post_signed(client, "zendesk", body)
    assert response.status_code == 202, response.data
    event_id = answer(response)["event_id"]
    assert backend.payload("acme-zd", event_id) == body
    assert post_signed(client, "zendesk", body).status_code == 200  # its retry: a duplicate


# -- a PostgreSQL restart ----------------------------------------------------------------

THREADS = 4


@pytest.mark.parametrize(
    ("mode", "checkout"),
    [("fast", True), ("immediate", True), ("fast", False)],
    ids=["fast-restart", "immediate-restart", "unannounced-retry"],
)
def test_no_request_fails_after_a_postgres_restart(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    checkout: bool,
) -> None:
    """Every HTTP thread holds a connection when the real server restarts; afterwards
    each thread's next webhook is stored (202), and /readyz says ready, with no 503 on
    the way. ``unannounced-retry``: the checkout's check is switched off, as when the
    server vanishes without a word (a cut network): the retry inside the request
    carries it."""
    from tests.store.postgres_server import restart

    server: str = request.getfixturevalue("postgres_url")
    from store import postgres

    if not checkout:
        monkeypatch.setattr(postgres, "_dropped", lambda db: False)
    with BACKENDS["postgres"](request, tmp_path) as backend:
        app = create_app(Settings(database=backend.url, tenants=TENANTS))
        client = app.test_client()
        barrier = threading.Barrier(THREADS)
        counter = iter(range(10_000))

        def deliver(_: int) -> tuple[int, int]:
            barrier.wait(timeout=30)  # one delivery on each thread: each has a connection
            body = edited(ZD_CREATED, ("detail", "id"), str(1000 + next(counter)))
            status = post_signed(client, "zendesk", body).status_code
            ready = client.get("/readyz").status_code
            return status, ready

        with ThreadPoolExecutor(THREADS) as pool:
            assert list(pool.map(deliver, range(THREADS))) == [(202, 200)] * THREADS
            restart(server, mode)
            assert list(pool.map(deliver, range(THREADS))) == [(202, 200)] * THREADS
        opened: Store = app.extensions["tierdesk.store"]
        assert opened.counts().get("pending") == 2 * THREADS
