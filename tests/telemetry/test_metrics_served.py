"""A real `tierdesk serve` (gunicorn with two HTTP workers, one inbox worker process) on
127.0.0.1: one scrape adds up every process, whichever HTTP worker answers it
(prometheus_client's multiprocess mode, which `serve` sets up by itself)."""

from __future__ import annotations

import http.client
import sqlite3
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.webhooks.real_server import wait_for
from tests.webhooks.test_crash import body, post, served

__all__ = ["served"]  # the fixture, imported to be used here


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        connection.close()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def test_one_scrape_adds_up_the_http_workers_and_the_inbox_worker(
    served: tuple[int, int, Path],
) -> None:
    port, _, database = served
    sent = 30
    for i in range(sent):
        assert post(port, body(i), f"metrics-{i}")[0] == 202
    db = sqlite3.connect(database)
    wait_for(
        lambda: db.execute("SELECT count(*) FROM inbox WHERE state <> 'done'").fetchone()[0] == 0,
        60,
        "every event to be processed",
    )
    # Several scrapes land on both gunicorn workers; each sees the same totals.
    for _ in range(4):
        samples = scrape(port)
        queued = (
            "tierdesk_webhooks_received_total",
            (("outcome", "queued"), ("tenant", "acme-zd"), ("vendor", "zendesk")),
        )
        assert samples[queued] == sent
        # Counted in the inbox worker process, read by an HTTP worker.
        assert total(samples, "tierdesk_events_processed_total") == sent
        assert total(samples, "tierdesk_event_latency_seconds_count") == sent
        assert samples[("tierdesk_inbox_events", (("state", "pending"),))] == 0
        assert samples[("tierdesk_store_up", ())] == 1
