"""The one HTTP policy every vendor call goes through.

- Explicit connect and read timeouts; redirects off (a 3xx is refused: credentials
  must not follow a redirect to another host); requests only to the tenant's own host.
- Retries only what can succeed later: 408, 425, 429, 5xx, timeouts and broken
  connections. A 409 (Zendesk's safe update) is not retried blindly: the connector
  re-reads the ticket and renders again.
- ``Retry-After`` is honoured exactly, seconds or HTTP date, never shortened by
  jitter; other waits are exponential with full jitter. One deadline bounds a call,
  waits included: a Retry-After that would pass it gives up at once (the worker
  retries the event later) rather than hold a worker for minutes.
- A per-tenant request budget (token bucket), shared by the threads of a process,
  keeps tierdesk under the vendor's rate limit instead of discovering it by 429s.
- An optional `Observer` hears of every request sent, retry and wait (the service's
  metrics); the connector does not know who listens.
"""

from __future__ import annotations

import ipaddress
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase
from tenacity import RetryCallState, Retrying, retry_if_exception

from connector.errors import (
    Conflict,
    ConnectorError,
    RateLimited,
    Rejected,
    ServerError,
    TransientError,
    from_response,
)


class Observer(Protocol):
    """What a client tells its listener (``telemetry.vendor.VendorMetrics``)."""

    def sent(self, method: str, status: int | None) -> None:
        """A request left; ``status`` is the answer's, None when none came."""

    def retried(self, retry_after_s: float | None) -> None:
        """A request is about to be sent again, after the vendor's Retry-After if any."""

    def budget_waited(self, seconds: float) -> None:
        """A request took a token of the budget, after waiting ``seconds`` for it."""


@dataclass(frozen=True, slots=True)
class Policy:
    connect_timeout_s: float = 3.05
    read_timeout_s: float = 15.0
    # One call, all attempts and waits included. It must stay under the worker's lease
    # (TIERDESK_LEASE_SECONDS, 30 s): a call that outlives the lease lets a second
    # worker take the same event.
    deadline_s: float = 20.0
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    # Zendesk's smallest plan allows 200 requests a minute; stay below it. A tenant
    # on a larger plan raises this in its configuration.
    requests_per_minute: float = 180.0
    # Zendesk allows 30 updates of one ticket in 10 minutes; keep a margin.
    ticket_updates_per_window: int = 25
    ticket_window_s: float = 600.0


class Budget:
    """A token bucket: ``per_minute`` requests a minute, bursts up to a few seconds'
    worth. Thread-safe; one per tenant per process."""

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * 5)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self, deadline: float) -> float:
        """Wait for a token; how long it waited, or `RateLimited` if the wait would
        pass ``deadline``."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                wait = (1 - self._tokens) / self.rate
            if now + wait > deadline:
                raise RateLimited(
                    "tierdesk's own request budget for this tenant is spent",
                    status=None,
                    retry_after=wait,
                )
            self._sleep(wait)
            waited += wait


class TicketWindow:
    """At most ``limit`` updates of one ticket per ``window_s`` (Zendesk: 30 in 10 min)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._writes: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, ticket: str) -> None:
        """Count one update of ``ticket``, or `RateLimited` with when it may go."""
        with self._lock:
            now = self._clock()
            recent = [t for t in self._writes.pop(ticket, []) if t > now - self.window_s]
            if len(recent) >= self.limit:
                self._writes[ticket] = recent
                wait = recent[0] + self.window_s - now
                raise RateLimited(
                    f"ticket {ticket} was updated {len(recent)} times in {self.window_s:.0f} s",
                    status=None,
                    retry_after=wait,
                )
            recent.append(now)
            self._writes[ticket] = recent
            while len(self._writes) > 10_000:  # forget the least recently written tickets
                self._writes.popitem(last=False)


def _allowed_base(base_url: str) -> tuple[str, str]:
    parts = urlsplit(base_url)
    if parts.username is not None or parts.password is not None:
        # Never quote it back: the URL itself holds a credential.
        raise ConnectorError("a base URL must not carry credentials; configure the API token")
    if not parts.netloc or parts.scheme not in ("https", "http"):
        raise ConnectorError(f"base URL {base_url!r} is not an http(s) URL")
    if parts.scheme == "http":
        host = parts.hostname or ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:  # credentials never travel in clear text, but to a local test double
            raise ConnectorError(f"base URL {base_url!r}: https is required")
    return parts.scheme, parts.netloc


class HttpClient:
    """Calls to one tenant's helpdesk under `Policy`. Thread-safe."""

    def __init__(
        self,
        base_url: str,
        auth: AuthBase,
        *,
        policy: Policy | None = None,
        budget: Budget | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: random.Random | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.policy = policy or Policy()
        self._observer = observer
        self._scheme, self._host = _allowed_base(base_url)
        self._base = base_url.rstrip("/")
        self._auth = auth
        self._budget = budget or Budget(self.policy.requests_per_minute, clock=clock, sleep=sleep)
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter or random.Random()
        self.calls = 0  # requests sent, retries included: what rate limits count

    def __repr__(self) -> str:
        return f"HttpClient({self._scheme}://{self._host})"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        """The parsed JSON answer (None when empty), or a `ConnectorError`."""
        if not path.startswith("/") or path.startswith("//"):
            raise ConnectorError(f"{path!r}: only paths on the tenant's own host are called")
        deadline = self._clock() + self.policy.deadline_s
        retrying = Retrying(
            # A 409 goes back to the connector, which re-reads the ticket: repeating the
            # same safe update could only conflict again (or overwrite an agent's edit).
            retry=retry_if_exception(
                lambda e: isinstance(e, TransientError) and not isinstance(e, Conflict)
            ),
            wait=self._wait,
            stop=lambda state: self._stop(state, deadline),
            before_sleep=self._before_retry,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._once, method, path, params, json_body, deadline)

    def _once(
        self, method: str, path: str, params: dict[str, str] | None, json_body: Any, deadline: float
    ) -> Any:
        waited = self._budget.take(deadline)
        if self._observer:
            self._observer.budget_waited(waited)
        url = self._base + path
        where = f"{method} {path.split('?', 1)[0]}"  # queries can hold emails: never in messages
        self.calls += 1
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=json_body,
                auth=self._auth,
                timeout=(self.policy.connect_timeout_s, self.policy.read_timeout_s),
                allow_redirects=False,
                headers={"Accept": "application/json"},
            )
        except requests.Timeout:
            self._sent(method, None)
            raise ServerError(f"{where}: timed out") from None
        except requests.RequestException as exc:
            self._sent(method, None)
            raise ServerError(f"{where}: {type(exc).__name__}") from None
        self._sent(method, response.status_code)
        if 300 <= response.status_code < 400:
            raise Rejected(
                f"{where}: HTTP {response.status_code} redirect refused "
                "(credentials never follow a redirect)",
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise from_response(
                method, path, response.status_code, response.headers, response.content
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise Rejected(f"{where}: the answer is not JSON", status=200) from None

    def _sent(self, method: str, status: int | None) -> None:
        if self._observer:
            self._observer.sent(method, status)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after  # exactly what the vendor asked: no jitter
        ceiling = min(
            self.policy.backoff_max_s, self.policy.backoff_base_s * 2**state.attempt_number
        )
        return self._jitter.uniform(0, ceiling)

    def _before_retry(self, state: RetryCallState) -> None:
        """tenacity calls this only when a retry will follow (not when it gives up)."""
        if self._observer:
            error = state.outcome.exception() if state.outcome else None
            asked = error.retry_after if isinstance(error, RateLimited) else None
            self._observer.retried(asked)

    def _stop(self, state: RetryCallState, deadline: float) -> bool:
        return (
            state.attempt_number >= self.policy.max_attempts
            or self._clock() + state.upcoming_sleep > deadline
        )
