"""The HTTP policy every vendor call goes through (`connector.http`, `connector.errors`).

The vendor APIs are stood in for by `responses` only, answering with the recorded Zendesk
bodies from ../shared/vendor where one exists. Nothing really sleeps: each client gets a
`FakeClock` whose ``sleep`` records the wait it was asked for and moves the clock on, so
"waited exactly 7 s" is an equality on a list, and a deadline passes because the test
says so. Jitter comes from a seeded `random.Random`, so every run draws the same waits.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formatdate
from typing import Any

import pytest
import requests
import responses
from requests.auth import HTTPBasicAuth

from connector.errors import (
    Conflict,
    ConnectorError,
    NotFound,
    RateLimited,
    Rejected,
    ServerError,
    Unauthorized,
    from_response,
    retry_after_seconds,
)
from connector.http import Budget, HttpClient, Policy, TicketWindow
from tests.shared import VENDOR

# -- helpers ------------------------------------------------------------------------

BASE = "https://acme.zendesk.com"
PAYLOADS = VENDOR / "zendesk" / "payloads"
TICKET_PATH = "/api/v2/tickets/4017"
TICKET_URL = BASE + TICKET_PATH

# Credentials shaped like Zendesk's API-token auth ("{email}/token", token): every one of
# these strings must stay out of messages, reprs and logs.
EMAIL = "ops@acme.example"
TOKEN = "s3cret-api-token"
AUTH = HTTPBasicAuth(f"{EMAIL}/token", TOKEN)


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


TICKET_200 = payload("zenpy-ticket-show-200.json")
NOT_FOUND_404 = payload("zenpy-ticket-update-404-record-not-found.json")
INVALID_422 = payload("aaronellington-error-422-record_invalid.json")
LIMIT_429_JSON = payload("aaronellington-error-429-api_rate_limit_exceeded.json")
LIMIT_429_TEXT = payload("aaronellington-error-429-inconsistent.txt")


@dataclass
class FakeClock:
    """A monotonic clock that moves only when slept on (or advanced by the test)."""

    t: float = 1_000.0  # not 0, so that no code path can lean on a zero clock
    waits: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.t += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds  # time passing without anyone having waited


def make_client(
    clock: FakeClock,
    policy: Policy | None = None,
    *,
    seed: int = 1,
    base: str = BASE,
    budget: Budget | None = None,
) -> HttpClient:
    return HttpClient(
        base,
        AUTH,
        policy=policy,
        budget=budget,
        sleep=clock.sleep,
        clock=clock.now,
        jitter=random.Random(seed),
    )


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    # Not every registered answer is used (a test that gives up early leaves some), and
    # any request to a URL nobody registered fails with ConnectionError, which is what
    # proves "the redirect target was never requested" below.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def add(
    rsps: responses.RequestsMock,
    status: int,
    body: bytes | Exception = b"",
    *,
    method: str = "GET",
    url: str = TICKET_URL,
    headers: dict[str, str] | None = None,
) -> None:
    """Queue one answer; answers to the same URL are served in order, the last repeats."""
    rsps.add(method, url, status=status, body=body, headers=headers)


def ticket_body() -> Any:
    return json.loads(TICKET_200)


# -- Retry-After is honoured exactly --------------------------------------------------


def test_429_retry_after_seconds_waits_exactly_then_returns_the_body(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 429, LIMIT_429_JSON, headers={"Retry-After": "7"})
    add(rsps, 200, TICKET_200)
    client = make_client(clock)

    assert client.request("GET", TICKET_PATH) == ticket_body()
    # Exactly the vendor's 7 s: jitter would only make it come back early (another 429)
    # or late (a worker held for nothing).
    assert clock.waits == [7.0]
    assert client.calls == 2
    assert len(rsps.calls) == 2


def test_retry_after_header_name_is_case_insensitive(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    # Proxies and HTTP/2 lower-case header names; the wait must not fall back to jitter.
    add(rsps, 429, LIMIT_429_JSON, headers={"retry-after": "3"})
    add(rsps, 200, TICKET_200)
    client = make_client(clock)

    client.request("GET", TICKET_PATH)
    assert clock.waits == [3.0]


def test_429_retry_after_http_date_waits_until_that_date(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    # retry_after_seconds reads the real clock for a date, so the date is built from it.
    when = formatdate(time.time() + 20, usegmt=True)
    add(rsps, 429, LIMIT_429_JSON, headers={"Retry-After": when})
    add(rsps, 200, TICKET_200)
    client = make_client(clock)

    client.request("GET", TICKET_PATH)
    assert len(clock.waits) == 1
    # formatdate truncates to whole seconds, and a little real time passes: ±1.5 s.
    assert clock.waits[0] == pytest.approx(20.0, abs=1.5)
    assert client.calls == 2


def test_429_retry_after_date_in_the_past_waits_zero(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 429, LIMIT_429_JSON, headers={"Retry-After": "Sun, 06 Nov 1994 08:49:37 GMT"})
    add(rsps, 200, TICKET_200)
    client = make_client(clock)

    client.request("GET", TICKET_PATH)
    assert clock.waits == [0.0]
    assert client.calls == 2


def test_503_with_retry_after_takes_the_rate_limit_path(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    # Atlassian documents 503s carrying Retry-After: the exact wait, no jitter.
    add(rsps, 503, b"", headers={"Retry-After": "4"})
    add(rsps, 200, TICKET_200)
    client = make_client(clock)

    assert client.request("GET", TICKET_PATH) == ticket_body()
    assert clock.waits == [4.0]
    assert client.calls == 2


# -- backoff without Retry-After -----------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 42])
def test_429_plain_text_body_without_retry_after_backs_off_with_jitter(
    rsps: responses.RequestsMock, clock: FakeClock, seed: int
) -> None:
    # Zendesk's "inconsistent" 429: plain text, no JSON, no Retry-After.
    add(rsps, 429, LIMIT_429_TEXT, headers={"Content-Type": "text/plain"})
    add(rsps, 200, TICKET_200)
    policy = Policy()
    client = make_client(clock, policy, seed=seed)

    assert client.request("GET", TICKET_PATH) == ticket_body()
    assert len(clock.waits) == 1
    # Full jitter after attempt 1: anywhere in [0, base * 2**1].
    assert 0.0 <= clock.waits[0] <= policy.backoff_base_s * 2**1


@pytest.mark.parametrize("seed", [0, 7, 99])
def test_jittered_waits_stay_under_the_exponential_ceiling_and_the_cap(
    rsps: responses.RequestsMock, clock: FakeClock, seed: int
) -> None:
    add(rsps, 429, LIMIT_429_TEXT)
    policy = Policy(max_attempts=8, backoff_base_s=0.5, backoff_max_s=5.0, deadline_s=1_000.0)
    client = make_client(clock, policy, seed=seed)

    with pytest.raises(RateLimited):
        client.request("GET", TICKET_PATH)
    assert client.calls == policy.max_attempts
    assert len(clock.waits) == policy.max_attempts - 1
    for attempt, wait in enumerate(clock.waits, start=1):
        ceiling = min(policy.backoff_max_s, policy.backoff_base_s * 2**attempt)
        assert 0.0 <= wait <= ceiling, (attempt, wait)


def test_429_json_body_message_names_the_code_not_the_description(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 429, LIMIT_429_JSON, headers={"Retry-After": "1"})
    client = make_client(clock, Policy(max_attempts=1))

    with pytest.raises(RateLimited) as caught:
        client.request("GET", TICKET_PATH)
    message = str(caught.value)
    assert "APIRateLimitExceeded" in message
    assert "incremental export" not in message
    assert caught.value.status == 429
    assert caught.value.retry_after == 1.0


# -- server errors and timeouts ------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 425])
def test_transient_status_then_200_succeeds(
    rsps: responses.RequestsMock, clock: FakeClock, status: int
) -> None:
    add(rsps, status)
    add(rsps, 200, TICKET_200)
    client = make_client(clock)

    assert client.request("GET", TICKET_PATH) == ticket_body()
    assert client.calls == 2
    assert len(clock.waits) == 1


def test_500_every_time_gives_up_after_max_attempts(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 500)
    policy = Policy()
    client = make_client(clock, policy)

    with pytest.raises(ServerError) as caught:
        client.request("GET", TICKET_PATH)
    assert caught.value.status == 500
    assert client.calls == policy.max_attempts
    assert len(rsps.calls) == policy.max_attempts
    assert len(clock.waits) == policy.max_attempts - 1


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectTimeout(),
        requests.exceptions.ReadTimeout(),
        requests.exceptions.ConnectionError(),
    ],
    ids=["connect-timeout", "read-timeout", "connection-error"],
)
def test_timeout_or_broken_connection_then_200_succeeds(
    rsps: responses.RequestsMock, clock: FakeClock, error: Exception
) -> None:
    add(rsps, 200, error)
    add(rsps, 200, TICKET_200)
    client = make_client(clock)

    assert client.request("GET", TICKET_PATH) == ticket_body()
    assert client.calls == 2


def test_always_timing_out_gives_up_with_server_error(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 200, requests.exceptions.ReadTimeout())
    policy = Policy(max_attempts=4)
    client = make_client(clock, policy)

    with pytest.raises(ServerError) as caught:
        client.request("GET", TICKET_PATH)
    assert "timed out" in str(caught.value)
    assert caught.value.status is None
    assert client.calls == policy.max_attempts


# -- permanent answers: one call, no retry -------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_type", "code"),
    [
        (401, b'{"error":"Couldn\'t authenticate you"}', Unauthorized, ""),
        (403, b'{"error":"Forbidden"}', Unauthorized, "Forbidden"),
        (404, NOT_FOUND_404, NotFound, "RecordNotFound"),
        (422, INVALID_422, Rejected, "RecordInvalid"),
        (400, b'{"error":"InvalidEndpoint"}', Rejected, "InvalidEndpoint"),
        (418, b"", Rejected, ""),
    ],
    ids=["401", "403", "404-recorded", "422-recorded", "400", "418"],
)
def test_permanent_answers_are_raised_after_one_call(
    rsps: responses.RequestsMock,
    clock: FakeClock,
    status: int,
    body: bytes,
    error_type: type[ConnectorError],
    code: str,
) -> None:
    add(rsps, status, body, method="PUT")
    client = make_client(clock)

    with pytest.raises(error_type) as caught:
        client.request("PUT", TICKET_PATH, json_body={"ticket": {"status": "open"}})
    assert type(caught.value) is error_type
    assert caught.value.status == status
    assert not caught.value.transient
    assert client.calls == 1
    assert clock.waits == []
    if code:
        assert code in str(caught.value)


def test_422_message_names_record_invalid_but_not_the_vendor_text(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 422, INVALID_422, method="PUT")
    client = make_client(clock)

    with pytest.raises(Rejected) as caught:
        client.request("PUT", TICKET_PATH, json_body={"ticket": {"status": "open"}})
    assert "RecordInvalid" in str(caught.value)
    # Vendor texts can quote personal data; messages go to logs and dead letters.
    assert "Status: closed prevents ticket update" not in str(caught.value)
    assert "Record validation errors" not in str(caught.value)


def test_409_conflict_is_raised_after_one_call(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 409, b'{"error":"UpdateConflict"}', method="PUT")
    add(rsps, 200, TICKET_200, method="PUT")  # a blind retry would "succeed" here
    client = make_client(clock)

    with pytest.raises(Conflict) as caught:
        client.request("PUT", TICKET_PATH, json_body={"ticket": {"safe_update": True}})
    assert caught.value.status == 409
    assert client.calls == 1
    assert clock.waits == []


# -- deadline ------------------------------------------------------------------------


def test_retry_after_beyond_the_deadline_gives_up_at_once(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 429, LIMIT_429_JSON, headers={"Retry-After": "30"})
    add(rsps, 200, TICKET_200)
    client = make_client(clock, Policy(deadline_s=10.0))

    with pytest.raises(RateLimited) as caught:
        client.request("GET", TICKET_PATH)
    # The worker retries the event later; the thread is not held for 30 s.
    assert caught.value.retry_after == 30.0
    assert clock.waits == []
    assert client.calls == 1


def test_retry_after_beyond_what_is_left_of_the_deadline_gives_up(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    # 6 s fits in a 10 s deadline once, not twice.
    add(rsps, 429, LIMIT_429_JSON, headers={"Retry-After": "6"})
    client = make_client(clock, Policy(deadline_s=10.0))

    with pytest.raises(RateLimited):
        client.request("GET", TICKET_PATH)
    assert clock.waits == [6.0]
    assert client.calls == 2


@pytest.mark.parametrize("seed", range(10))
def test_waits_of_one_call_never_add_up_past_the_deadline(
    rsps: responses.RequestsMock, clock: FakeClock, seed: int
) -> None:
    add(rsps, 503)
    # Many attempts and a high cap, so that only the deadline can stop the retries.
    policy = Policy(deadline_s=10.0, max_attempts=100, backoff_base_s=1.0, backoff_max_s=8.0)
    client = make_client(clock, policy, seed=seed)
    start = clock.now()

    with pytest.raises(ServerError):
        client.request("GET", TICKET_PATH)
    assert sum(clock.waits) <= policy.deadline_s
    assert clock.now() - start <= policy.deadline_s


def test_spent_budget_past_the_deadline_raises_without_calling(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 200, TICKET_200)
    budget = Budget(60, clock=clock.now, sleep=clock.sleep)  # 1/s, 5 in hand
    for _ in range(5):
        budget.take(clock.now())
    client = make_client(clock, Policy(deadline_s=0.5), budget=budget)

    with pytest.raises(RateLimited) as caught:
        client.request("GET", TICKET_PATH)
    assert caught.value.status is None  # tierdesk's own limit, not the vendor's
    assert caught.value.retry_after == pytest.approx(1.0)
    assert client.calls == 0
    assert len(rsps.calls) == 0


# -- redirects and the host lock -----------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_refused_and_its_location_never_requested(
    rsps: responses.RequestsMock, clock: FakeClock, status: int
) -> None:
    # Location is deliberately not registered: following it would raise ConnectionError
    # inside responses, be retried as a ServerError, and add calls.
    add(rsps, status, headers={"Location": "https://evil.example/steal"})
    client = make_client(clock)

    with pytest.raises(Rejected) as caught:
        client.request("GET", TICKET_PATH)
    assert "redirect refused" in str(caught.value)
    assert caught.value.status == status
    assert client.calls == 1
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.url == TICKET_URL


@pytest.mark.parametrize(
    "path",
    [
        "https://evil.example/x",
        "//evil.example/x",
        "evil.example/x",
        "@evil.example/x",
        "",
    ],
)
def test_only_paths_on_the_tenant_host_are_requested(
    rsps: responses.RequestsMock, clock: FakeClock, path: str
) -> None:
    client = make_client(clock)

    with pytest.raises(ConnectorError):
        client.request("GET", path)
    assert client.calls == 0
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    ("base", "allowed"),
    [
        ("https://acme.zendesk.com", True),
        ("https://acme.zendesk.com/", True),
        ("https://acme.atlassian.net", True),
        # Clear text only to a local test double: credentials never cross a network.
        ("http://127.0.0.1:8999", True),
        ("http://localhost:8999", True),
        ("http://[::1]:8999", True),
        ("http://acme.zendesk.com", False),
        ("http://10.0.0.5:8999", False),
        ("http://localhost.evil.example", False),
        ("ftp://x", False),
        ("https://", False),
        ("acme.zendesk.com", False),
        ("", False),
    ],
)
def test_base_url_must_be_https_or_local_http(base: str, allowed: bool) -> None:
    clock = FakeClock()
    if allowed:
        make_client(clock, base=base)
    else:
        with pytest.raises(ConnectorError):
            make_client(clock, base=base)


def test_a_local_http_test_double_is_really_called(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 200, TICKET_200, url="http://127.0.0.1:8999" + TICKET_PATH)
    client = make_client(clock, base="http://127.0.0.1:8999")

    assert client.request("GET", TICKET_PATH) == ticket_body()
    assert repr(client) == "HttpClient(http://127.0.0.1:8999)"


# -- the request sent ----------------------------------------------------------------


def test_the_request_carries_accept_json_body_auth_and_both_timeouts(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 200, TICKET_200, method="PUT")
    policy = Policy(connect_timeout_s=2.5, read_timeout_s=11.0)
    client = make_client(clock, policy)
    body = {"ticket": {"status": "open", "custom_fields": [{"id": 123, "value": "gold"}]}}

    client.request("PUT", TICKET_PATH, params={"async": "false"}, json_body=body)
    sent = rsps.calls[0].request
    assert sent.method == "PUT"
    assert sent.url == TICKET_URL + "?async=false"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.body is not None
    assert json.loads(sent.body) == body
    assert sent.headers["Authorization"].startswith("Basic ")  # the auth was applied
    # responses records what the adapter was sent; a missing read timeout would let one
    # slow answer hold a worker forever.
    assert getattr(sent, "req_kwargs", {})["timeout"] == (2.5, 11.0)


def test_empty_2xx_is_none_and_non_json_2xx_is_rejected(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 204, method="DELETE")
    add(rsps, 200, b"<html>maintenance</html>", headers={"Content-Type": "text/html"})
    client = make_client(clock)

    assert client.request("DELETE", TICKET_PATH) is None
    with pytest.raises(Rejected, match="not JSON"):
        client.request("GET", TICKET_PATH)


# -- secrets -------------------------------------------------------------------------

SECRETS = [EMAIL, TOKEN, "s3cret", "ops@"]
PERSONAL = "alice@acme.example"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, b'{"error":"Couldn\'t authenticate you"}'),
        (403, b'{"error":"Forbidden","description":"ops@acme.example/token lacks it"}'),
        (500, b"Internal Server Error"),
        (
            422,
            json.dumps(
                {
                    "error": "RecordInvalid",
                    "description": f"Requester {PERSONAL} is suspended",
                    "details": {"requester": [{"description": f"{PERSONAL} is suspended"}]},
                }
            ).encode(),
        ),
        (302, b""),
        (200, requests.exceptions.ConnectTimeout()),
        (200, requests.exceptions.ReadTimeout()),
        (200, requests.exceptions.ConnectionError(f"https://{EMAIL}:{TOKEN}@acme/ refused")),
    ],
    ids=["401", "403", "500", "422-personal", "302", "connect-timeout", "read-timeout", "conn"],
)
def test_no_error_or_repr_carries_credentials_or_personal_data(
    rsps: responses.RequestsMock, clock: FakeClock, status: int, body: bytes | Exception
) -> None:
    add(rsps, status, body, method="PUT", headers={"Location": "https://evil.example/"})
    client = make_client(clock, Policy(max_attempts=2))

    with pytest.raises(ConnectorError) as caught:
        client.request("PUT", TICKET_PATH, json_body={"requester": PERSONAL})
    texts = [str(caught.value), repr(caught.value), repr(client)]
    for text in texts:
        for secret in [*SECRETS, PERSONAL]:
            assert secret not in text, (secret, text)
    assert repr(client) == "HttpClient(https://acme.zendesk.com)"
    # The credentials really were sent, so their absence above means something.
    assert "Authorization" in rsps.calls[0].request.headers


QUERY_PATH = "/api/v2/search?query=requester:alice@acme.example"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b""),
        (429, LIMIT_429_JSON),
        pytest.param(200, requests.exceptions.ReadTimeout(), id="timeout"),
        pytest.param(200, requests.exceptions.ConnectionError(), id="conn"),
        pytest.param(302, b"", id="redirect"),
    ],
)
def test_messages_leave_out_the_query_string(
    rsps: responses.RequestsMock, clock: FakeClock, status: int, body: bytes | Exception
) -> None:
    # A search query names people; the message keeps the method and the bare path.
    add(rsps, status, body, url=BASE + "/api/v2/search")
    client = make_client(clock, Policy(max_attempts=1))

    with pytest.raises(ConnectorError) as caught:
        client.request("GET", QUERY_PATH)
    assert "GET /api/v2/search" in str(caught.value)
    assert PERSONAL not in str(caught.value)
    assert "query=" not in str(caught.value)


# -- Retry-After values that are not numbers -----------------------------------------


def test_retry_after_nan_is_ignored_not_slept(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    add(rsps, 429, LIMIT_429_JSON, headers={"Retry-After": "nan"})
    add(rsps, 200, TICKET_200)
    client = make_client(clock)

    assert client.request("GET", TICKET_PATH) == ticket_body()
    # Treated as no Retry-After: one jittered wait, a finite number.
    assert len(clock.waits) == 1
    assert all(math.isfinite(wait) and wait >= 0 for wait in clock.waits)


# -- Budget --------------------------------------------------------------------------


def test_budget_bursts_five_then_waits_a_second(clock: FakeClock) -> None:
    budget = Budget(60, clock=clock.now, sleep=clock.sleep)  # 1 a second, 5 in hand
    deadline = clock.now() + 100

    for _ in range(5):
        budget.take(deadline)
    assert clock.waits == []
    budget.take(deadline)
    assert clock.waits == [pytest.approx(1.0)]


def test_budget_refills_with_time_up_to_its_capacity(clock: FakeClock) -> None:
    budget = Budget(60, clock=clock.now, sleep=clock.sleep)
    deadline = clock.now() + 10_000
    for _ in range(5):
        budget.take(deadline)

    clock.advance(3)  # three tokens back
    for _ in range(3):
        budget.take(deadline)
    assert clock.waits == []

    clock.advance(1_000)  # idle for long: still only a burst of five
    for _ in range(5):
        budget.take(deadline)
    assert clock.waits == []
    budget.take(deadline)
    assert len(clock.waits) == 1


def test_budget_wait_past_the_deadline_raises_with_the_wait(clock: FakeClock) -> None:
    budget = Budget(60, clock=clock.now, sleep=clock.sleep)
    for _ in range(5):
        budget.take(clock.now() + 100)
    clock.advance(0.25)  # a quarter of a token back: 0.75 s to wait

    with pytest.raises(RateLimited) as caught:
        budget.take(clock.now() + 0.5)
    assert caught.value.retry_after == pytest.approx(0.75)
    assert caught.value.status is None
    assert clock.waits == []  # gave up without waiting


def test_budget_is_thread_safe() -> None:
    # Real clock and sleep: the point is real contention. Nothing here asserts a timing.
    holder: list[Budget] = []
    lowest: list[float] = []

    def clock() -> float:
        # Budget reads its clock under its lock, so this sees a consistent token count.
        if holder:
            lowest.append(holder[0]._tokens)
        return time.monotonic()

    budget = Budget(6000, clock=clock)  # 100 a second, 500 in hand
    holder.append(budget)
    for _ in range(400):  # leave 100, so that the 200 takes below must wait for refills
        budget.take(math.inf)
    done: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(25):
                budget.take(math.inf)
            done.append(25)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert sum(done) == 200
    assert min(lowest) >= 0
    assert budget._tokens >= 0


# -- TicketWindow --------------------------------------------------------------------


def test_ticket_window_limits_updates_of_one_ticket(clock: FakeClock) -> None:
    window = TicketWindow(3, 600, clock=clock.now)
    first = clock.now()
    for _ in range(3):
        window.claim("T-1")
        clock.advance(10)

    with pytest.raises(RateLimited) as caught:
        window.claim("T-1")
    elapsed = clock.now() - first
    assert caught.value.retry_after == pytest.approx(600 - elapsed)
    assert caught.value.status is None
    assert "T-1" in str(caught.value)

    window.claim("T-2")  # another ticket has its own window

    # A refused claim does not count: once the window has passed all three are back.
    clock.advance(600)
    for _ in range(3):
        window.claim("T-1")
    with pytest.raises(RateLimited):
        window.claim("T-1")


def test_ticket_window_frees_a_slot_exactly_when_retry_after_says(clock: FakeClock) -> None:
    window = TicketWindow(3, 600, clock=clock.now)
    for _ in range(3):
        window.claim("T-1")
        clock.advance(100)

    with pytest.raises(RateLimited) as caught:
        window.claim("T-1")
    assert caught.value.retry_after is not None
    clock.advance(caught.value.retry_after)
    window.claim("T-1")  # the oldest write has just left the window
    with pytest.raises(RateLimited):
        window.claim("T-1")


# -- retry_after_seconds -------------------------------------------------------------

NOW = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", None),  # not delta-seconds: as if absent (jittered backoff)
        ("", None),
        ("   ", None),
        (None, None),
        ("soon", None),
        # RFC 1123, the preferred HTTP date.
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Fri, 06 Mar 2026 16:32:00 GMT", 120.0),
        # RFC 850, obsolete but to be accepted (RFC 9110 §5.6.7).
        ("Friday, 06-Mar-26 16:31:00 GMT", 60.0),
        # asctime, the other obsolete form.
        ("Fri Mar  6 16:30:30 2026", 30.0),
        ("Fri, 06 Mar 2026 16:00:00 GMT", 0.0),  # in the past: now
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
    ],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    got = retry_after_seconds(value, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_retry_after_seconds_refuses_non_numbers(value: str) -> None:
    assert retry_after_seconds(value, now=NOW) is None


# -- from_response -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "error_type", "transient", "retry_after"),
    [
        (408, {}, ServerError, True, None),
        (409, {}, Conflict, True, None),
        (425, {}, ServerError, True, None),
        (429, {}, RateLimited, True, None),
        (429, {"Retry-After": "30"}, RateLimited, True, 30.0),
        (500, {}, ServerError, True, None),
        (502, {}, ServerError, True, None),
        (502, {"Retry-After": "30"}, ServerError, True, None),
        (503, {}, ServerError, True, None),
        (503, {"Retry-After": "30"}, RateLimited, True, 30.0),
        (504, {}, ServerError, True, None),
        (401, {}, Unauthorized, False, None),
        (403, {}, Unauthorized, False, None),
        (404, {}, NotFound, False, None),
        (400, {}, Rejected, False, None),
        (422, {}, Rejected, False, None),
        (418, {}, Rejected, False, None),
    ],
)
def test_from_response_maps_status_to_class(
    status: int,
    headers: dict[str, str],
    error_type: type[ConnectorError],
    transient: bool,
    retry_after: float | None,
) -> None:
    error = from_response("GET", "/api/v2/tickets/1?x=1", status, headers, b"")
    assert type(error) is error_type
    assert error.transient is transient
    assert error.status == status
    assert str(error) == f"GET /api/v2/tickets/1: HTTP {status}"
    if isinstance(error, RateLimited):
        assert error.retry_after == retry_after


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (NOT_FOUND_404, "RecordNotFound"),
        (INVALID_422, "RecordInvalid"),
        (LIMIT_429_JSON, "APIRateLimitExceeded"),
        (LIMIT_429_TEXT, ""),
        (b'{"error": "not an identifier: alice@acme.example"}', ""),
        (b'{"error": {"title": "Forbidden", "message": "alice@acme.example"}}', "error"),
        (b"[1, 2]", ""),
        (b"\xff\xfe not utf-8", ""),
        (b"[" * 100_000, ""),  # deep nesting must not escape as RecursionError
    ],
    ids=[
        "404",
        "422",
        "429-json",
        "429-text",
        "error-text",
        "error-object",
        "list",
        "bytes",
        "deep",
    ],
)
def test_from_response_names_only_the_vendor_code(body: bytes, code: str) -> None:
    error = from_response("PUT", "/api/v2/tickets/1", 422, {}, body)
    expected = "PUT /api/v2/tickets/1: HTTP 422" + (f" {code}" if code else "")
    assert str(error) == expected
