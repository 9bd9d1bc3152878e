"""The HTTP policy's listener (``connector.http.Observer``) for one tenant: requests by
method and status, 429s, retries, Retry-After waited, and the request budget's use."""

from __future__ import annotations

from telemetry.metrics import (
    BUDGET_LIMIT,
    BUDGET_REQUESTS,
    BUDGET_WAITED,
    RETRY_AFTER_WAITED,
    VENDOR_RATE_LIMITED,
    VENDOR_REQUESTS,
    VENDOR_RETRIES,
)


class VendorMetrics:
    def __init__(self, tenant: str, vendor: str, budget_per_minute: float) -> None:
        self._tenant = tenant
        self._vendor = vendor
        BUDGET_LIMIT.labels(tenant).set(budget_per_minute)

    def sent(self, method: str, status: int | None) -> None:
        code = str(status) if status is not None else "error"
        VENDOR_REQUESTS.labels(self._tenant, self._vendor, method, code).inc()
        if status == 429:
            VENDOR_RATE_LIMITED.labels(self._tenant, self._vendor).inc()

    def retried(self, retry_after_s: float | None) -> None:
        VENDOR_RETRIES.labels(self._tenant, self._vendor).inc()
        if retry_after_s is not None:
            RETRY_AFTER_WAITED.labels(self._tenant, self._vendor).inc(retry_after_s)

    def budget_waited(self, seconds: float) -> None:
        BUDGET_REQUESTS.labels(self._tenant).inc()
        if seconds:
            BUDGET_WAITED.labels(self._tenant).inc(seconds)
