"""``GET /metrics``: the Prometheus text format, for the operators' scraper.

In: a GET from a caller allowed like ``/api/*`` (bearer ``TIERDESK_API_TOKEN``, or
loopback without one; 401 otherwise). Out: 200 with every process's counters
(``telemetry``) and what the store, the hours ledger and the mappings say now. A store
that cannot be read still gives 200, with ``tierdesk_store_up 0``: the scrape itself
never fails because of what it reports on.

Hours balances cost one aggregate query per pay-as-you-go account, so they are read at
most every ``HOURS_EVERY_S`` seconds and shown as last read in between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from entitlements.calendars import zone
from entitlements.ledger import hours_accounts, low_fraction
from entitlements.rulebook import Rulebook
from store import Ledger, Store, StoreError, has_ledger, open_ledger
from telemetry.exposition import State, render
from webhooks.access import require_api_caller
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings

log = logging.getLogger("tierdesk.metrics")

HOURS_EVERY_S = 30.0

blueprint = Blueprint("metrics", __name__)
blueprint.before_request(require_api_caller)


@blueprint.get("/metrics")
def metrics() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # werkzeug proxy
    body, content_type = render(lambda: _state(app), request.headers.get("Accept", ""))
    return Response(body, 200, content_type=content_type)


def _state(app: Flask) -> State:
    store: Store = app.extensions["tierdesk.store"]
    holder: LiveMappings = app.extensions["tierdesk.mappings"]
    rulebook = holder.rulebook
    now = time.time()
    extra: dict[str, Any] = {
        "mappings_version": rulebook.version if rulebook is not None else None,
        "mappings_problems": len(holder.problems),
        "hours": _hours(app, rulebook, now),
    }
    try:
        gauges = store.gauges()
    except StoreError as exc:
        log.warning("metrics: the store did not answer: %s", exc)
        return State(store_up=False, now=now, **extra)
    return State(
        store_up=True,
        now=now,
        pending=gauges.pending,
        leased=gauges.leased,
        dead=gauges.dead,
        oldest_open_received_at=gauges.oldest_open_received_at,
        clocks=gauges.clocks,
        **extra,
    )


@dataclass
class _HoursCache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    ledger: Ledger | None = None
    read_at: float = float("-inf")
    version: str | None = None
    counts: dict[str, int] | None = None


def _hours(app: Flask, rulebook: Rulebook | None, now: float) -> dict[str, int] | None:
    settings: Settings = app.extensions["tierdesk.settings"]
    if rulebook is None or not has_ledger(settings.database):
        return None
    cache: _HoursCache = app.extensions.setdefault("tierdesk.metrics.hours", _HoursCache())
    with cache.lock:
        fresh = now - cache.read_at < HOURS_EVERY_S and cache.version == rulebook.version
        if fresh:
            return cache.counts
        try:
            if cache.ledger is None:
                cache.ledger = open_ledger(settings.database)
            counts: Counter[str] = Counter()
            for account in hours_accounts(rulebook):
                today = datetime.fromtimestamp(now, UTC).astimezone(zone(account.timezone)).date()
                balance = cache.ledger.balance(account.id, low_fraction(account, rulebook), today)
                counts[balance.status] += 1
        except StoreError as exc:
            log.warning("metrics: the hours ledger did not answer: %s", exc)
            return cache.counts  # the last figures, rather than none
        cache.read_at, cache.version, cache.counts = now, rulebook.version, dict(counts)
        return cache.counts
