"""One scrape of ``GET /metrics``: the Prometheus text format.

In: the counters of every tierdesk process (``telemetry.metrics``; across processes
when ``PROMETHEUS_MULTIPROC_DIR`` names a directory, as ``tierdesk serve`` arranges), a
`State` read at scrape time from the store, the hours ledger and the mappings in force,
and the scraper's ``Accept`` header. Out: the exposition bytes and their content type
(OpenMetrics when asked for, else the Prometheus text format).

A store that cannot be read does not fail the scrape: ``tierdesk_store_up`` is 0 and the
gauges that need it are left out, so the alert is "store down", not "scrape failed".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The stages a dashboard expects to see, at zero when no clock is in them.
OPEN_STAGES = ("on_track", "at_risk", "breached")
HOURS_STATUSES = ("ok", "low", "exhausted")


@dataclass(frozen=True, slots=True)
class State:
    """What is true now, whichever process made it so."""

    store_up: bool
    now: float  # epoch seconds
    pending: int = 0
    leased: int = 0
    dead: int = 0
    oldest_open_received_at: float | None = None
    clocks: Mapping[str, int] = field(default_factory=dict)
    mappings_version: str | None = None
    mappings_problems: int = 0
    # Pay-as-you-go accounts by hours status; None when there is no ledger to ask.
    hours: Mapping[str, int] | None = None


class _StateCollector(Collector):
    def __init__(self, read: Callable[[], State]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        state = self._read()
        yield GaugeMetricFamily(
            "tierdesk_store_up", "1 when the store answered this scrape.", int(state.store_up)
        )
        if state.mappings_version is not None:
            info = InfoMetricFamily("tierdesk_mappings", "The mappings in force.")
            info.add_metric([], {"version": state.mappings_version})
            yield info
        yield GaugeMetricFamily(
            "tierdesk_mappings_problems",
            "Problems of the mappings on disk that keep them out of force (0: in force).",
            state.mappings_problems,
        )
        if state.store_up:
            yield from _store_gauges(state)
        if state.hours is not None:
            hours = GaugeMetricFamily(
                "tierdesk_hours_accounts",
                "Pay-as-you-go accounts by hours balance status.",
                labels=["status"],
            )
            for status in (*HOURS_STATUSES, *sorted(set(state.hours) - set(HOURS_STATUSES))):
                hours.add_metric([status], state.hours.get(status, 0))
            yield hours


def _store_gauges(state: State) -> Iterable[Metric]:
    inbox = GaugeMetricFamily(
        "tierdesk_inbox_events", "Inbox events not yet done, by state.", labels=["state"]
    )
    inbox.add_metric(["pending"], state.pending)
    inbox.add_metric(["leased"], state.leased)
    yield inbox
    age = (
        max(0.0, state.now - state.oldest_open_received_at)
        if state.oldest_open_received_at is not None
        else 0.0
    )
    yield GaugeMetricFamily(
        "tierdesk_inbox_oldest_age_seconds",
        "Age of the oldest event not yet done (0 when the inbox is empty).",
        age,
    )
    yield GaugeMetricFamily(
        "tierdesk_dead_letters", "Events given up on, waiting for `tierdesk replay`.", state.dead
    )
    clocks = GaugeMetricFamily(
        "tierdesk_sla_clocks", "Open SLA clocks (unsolved tickets) by stage.", labels=["stage"]
    )
    for stage in (*OPEN_STAGES, *sorted(set(state.clocks) - set(OPEN_STAGES))):
        clocks.add_metric([stage], state.clocks.get(stage, 0))
    yield clocks


class _Default(Collector):
    """This process's own families, when there is no multiprocess directory."""

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()


def render(read_state: Callable[[], State], accept: str = "") -> tuple[bytes, str]:
    """The scrape in the format the scraper's ``Accept`` asks for: OpenMetrics when it
    says so, else the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get(MULTIPROC_ENV)
    if directory and Path(directory).is_dir():
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Default())
    registry.register(_StateCollector(read_state))
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
