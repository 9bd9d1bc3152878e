"""The metric families tierdesk counts as it goes, in the Prometheus data model.

In: calls from the intake, the pipeline, the HTTP policy and the sweep. Out: samples
that ``telemetry.exposition`` renders for ``GET /metrics``. Nothing here does I/O of its
own; with ``PROMETHEUS_MULTIPROC_DIR`` set (``tierdesk serve`` sets it), prometheus_client
keeps each process's values in a file of that directory, so one scrape sees the HTTP
workers and the inbox workers together.

The families are module-level, as loggers are: a metric is process-wide by nature, and
prometheus_client refuses to register one name twice. What the store knows (inbox depth,
dead letters, clocks by stage, hours balances) is not counted here but read at scrape
time (``telemetry.exposition``), so it is right whichever process changed it.

Label values are bounded: tenants come from the configuration (an unknown tenant in a
URL is counted as ``tenant=""``), outcomes and reasons from fixed vocabularies, HTTP
methods and statuses from the vendors' answers.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Where an acknowledgement's time goes: ~1 ms on a quiet machine, a group commit's fsync
# on a busy one; anything past a second is trouble (vendors time out at 10-30 s).
_INTAKE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# From receipt to write-back: the coalescing hold (2 s) plus the vendor call, or minutes
# behind a backlog or a helpdesk outage.
_LATENCY_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)

WEBHOOKS = Counter(
    "tierdesk_webhooks_received",
    "Webhooks answered, by outcome: queued, duplicate, ignored, or the refusal's reason.",
    ["tenant", "vendor", "outcome"],
)
INTAKE_SECONDS = Histogram(
    "tierdesk_webhook_intake_seconds",
    "Time from reading a webhook to its answer (the durable put included).",
    ["vendor"],
    buckets=_INTAKE_BUCKETS,
)
EVENTS = Counter(
    "tierdesk_events_processed",
    "Inbox events the workers finished, by outcome (written, unchanged, dry_run, retried, "
    "dead, superseded, …).",
    ["tenant", "outcome"],
)
EVENT_LATENCY = Histogram(
    "tierdesk_event_latency_seconds",
    "From a webhook's receipt to the end of its processing (the write-back included).",
    ["tenant"],
    buckets=_LATENCY_BUCKETS,
)
VENDOR_REQUESTS = Counter(
    "tierdesk_vendor_requests",
    "Requests sent to a helpdesk API, retries included, by HTTP status (or 'error' when no "
    "answer came).",
    ["tenant", "vendor", "method", "status"],
)
VENDOR_RETRIES = Counter(
    "tierdesk_vendor_retries",
    "Vendor requests sent again after a 408/425/429/5xx or a broken connection.",
    ["tenant", "vendor"],
)
VENDOR_RATE_LIMITED = Counter(
    "tierdesk_vendor_rate_limited",
    "429 answers from a helpdesk API.",
    ["tenant", "vendor"],
)
RETRY_AFTER_WAITED = Counter(
    "tierdesk_vendor_retry_after_waited_seconds",
    "Seconds spent waiting because a helpdesk asked to (Retry-After).",
    ["tenant", "vendor"],
)
BUDGET_REQUESTS = Counter(
    "tierdesk_rate_budget_requests",
    "Requests let through by tierdesk's own per-tenant request budget.",
    ["tenant"],
)
BUDGET_WAITED = Counter(
    "tierdesk_rate_budget_waited_seconds",
    "Seconds requests waited for the per-tenant request budget.",
    ["tenant"],
)
BUDGET_LIMIT = Gauge(
    "tierdesk_rate_budget_per_minute",
    "The per-tenant request budget of one process (requests a minute).",
    ["tenant"],
    multiprocess_mode="max",
)
SLA_STAGE_CHANGES = Counter(
    "tierdesk_sla_stage_changes",
    "SLA clocks moved to a new stage by the sweep (at_risk, breached).",
    ["tenant", "stage"],
)
ESCALATIONS = Counter(
    "tierdesk_sla_escalations",
    "Escalation levels raised by the sweep.",
    ["tenant"],
)
SWEEP_SECONDS = Histogram(
    "tierdesk_sweep_seconds",
    "Duration of one SLA sweep by the leader.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
MAPPINGS_RELOADS = Counter(
    "tierdesk_mappings_reloads",
    "Loads of a changed mappings directory, by result (in_force, refused).",
    ["result"],
)
