"""What a sender gets for broken HTTP framing, from a real `tierdesk serve` on 127.0.0.1:
the raw bytes go over a socket, as a hostile sender's would.

Malformed chunked bodies, a body cut short, a transfer coding other than chunked: 400
with a JSON body on both webhook routes; a declared size over 1 MiB: 413 before the
body is read; a request that stops arriving: 408 once the deadline passes. Never a 5xx,
never a connection held open. A hypothesis test then sends random bodies, headers and
framings and fails on any 5xx or any connection left hanging.
"""

from __future__ import annotations

import socket
import string
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.webhooks.real_server import (
    Served,
    exchange,
    head,
    jsm_body,
    json_body,
    serve,
    signed,
    statuses,
    zendesk_body,
)

MIB = 1024 * 1024
VENDORS = ["zendesk", "jsm"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Short deadlines, so that the stalled requests below are answered in a second.
    server = serve(
        tmp_path_factory.mktemp("hostile"),
        *("--worker-processes", "0", "--header-timeout", "1", "--body-timeout", "1"),
    )
    yield server
    server.stop()


def body_of(vendor: str, n: int) -> bytes:
    return zendesk_body(n) if vendor == "zendesk" else jsm_body(n)


def chunked(body: bytes, size: int = 7) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def assert_refused(answer: bytes, status: int, error: str) -> None:
    assert statuses(answer) == [status], answer[:300]
    assert b"Content-Type: application/json" in answer
    assert json_body(answer)["error"] == error


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_well_formed_chunked_webhook_is_queued(served: Served, vendor: str) -> None:
    body = body_of(vendor, 1)
    fields = {**signed(vendor, body), "Transfer-Encoding": "chunked"}
    answer = exchange(served.port, head(vendor, fields) + chunked(body))
    assert statuses(answer) in ([202], [200]), answer
    assert json_body(answer)["status"] in ("queued", "duplicate")


MALFORMED: dict[str, Callable[[bytes], bytes]] = {
    "size zz": lambda body: b"zz\r\n" + body + b"\r\n0\r\n\r\n",
    "size -5": lambda body: b"-5\r\n" + body[:5] + b"\r\n0\r\n\r\n",
    "size 0x10": lambda body: b"0x10\r\n" + body[:16] + b"\r\n0\r\n\r\n",
    "chunk not ended by CRLF": lambda body: b"5\r\n" + body[:9] + b"\r\n0\r\n\r\n",
    "cut before the last chunk": lambda body: chunked(body)[:-20],
    "cut inside a size line": lambda body: b"5\r\n" + body[:5] + b"\r\n1",
}


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("how", list(MALFORMED))
def test_malformed_chunked_body_is_400_json(served: Served, vendor: str, how: str) -> None:
    body = body_of(vendor, 2)
    fields = {**signed(vendor, body), "Transfer-Encoding": "chunked"}
    # The sender closes its side after the bytes: a cut body is then known to be cut.
    answer = exchange(served.port, head(vendor, fields) + MALFORMED[how](body))
    assert_refused(answer, 400, "bad_request")


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("coding", ["xchunked", "gzip", "chunked, gzip", "identity"])
def test_a_transfer_coding_other_than_chunked_is_400_not_501(
    served: Served, vendor: str, coding: str
) -> None:
    body = body_of(vendor, 3)
    fields = {**signed(vendor, body), "Transfer-Encoding": coding}
    answer = exchange(served.port, head(vendor, fields) + chunked(body))
    assert_refused(answer, 400, "bad_request")


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_body_cut_short_of_its_content_length_is_400(served: Served, vendor: str) -> None:
    body = body_of(vendor, 4)
    fields = {**signed(vendor, body), "Content-Length": str(len(body))}
    answer = exchange(served.port, head(vendor, fields) + body[:-10])
    assert_refused(answer, 400, "bad_request")


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize(
    "framing",
    [
        {"Transfer-Encoding": "chunked"},  # a single declared chunk of 2 MiB
        {"Content-Length": str(2 * MIB)},
    ],
    ids=["declared chunk", "content-length"],
)
def test_a_declared_size_over_the_limit_is_413_before_the_body(
    served: Served, vendor: str, framing: dict[str, str]
) -> None:
    start = b"200000\r\n" if "Transfer-Encoding" in framing else b""
    # Only the first bytes are sent and our side stays open: the answer must come from
    # the declared size alone, not from reading (or waiting for) 2 MiB.
    with socket.create_connection(("127.0.0.1", served.port), timeout=20) as sock:
        sock.sendall(head(vendor, framing) + start + b'{"a": "')
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert_refused(answer, 413, "request_entity_too_large")


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_chunked_body_of_exactly_one_mib_passes_and_one_more_byte_is_413(
    served: Served, vendor: str
) -> None:
    # The framing's own bytes do not count: the limit is on the body.
    for size, status in ((MIB, 401), (MIB + 1, 413)):  # unsigned padding: 401 once read
        raw = head(vendor, {"Transfer-Encoding": "chunked"}) + chunked(b"x" * size, 64 * 1024)
        assert statuses(exchange(served.port, raw)) == [status]


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("stalls_in", ["headers", "body"])
def test_a_request_that_stops_arriving_gets_408(
    served: Served, vendor: str, stalls_in: str
) -> None:
    body = body_of(vendor, 5)
    fields = {**signed(vendor, body), "Transfer-Encoding": "chunked"}
    raw = head(vendor, fields)
    raw = raw[:40] if stalls_in == "headers" else raw + chunked(body)[:30]
    # Our side stays open, as a stalled (or slowloris) sender's does.
    answer = exchange(served.port, raw, half_close=False)
    assert_refused(answer, 408, "request_timeout")


# -- fuzz ------------------------------------------------------------------------------

TOKEN = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=20)
VALUE = st.text(string.printable.replace("\r", "").replace("\n", ""), max_size=40)
CODINGS = st.sampled_from(
    ["chunked", "xchunked", "gzip, chunked", "chunked, chunked", "Chunked", "identity", ""]
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A request to one of the webhook routes: random body, random extra headers, and a
    framing that is right, wrong or missing."""
    vendor = draw(st.sampled_from(VENDORS))
    body = draw(
        st.one_of(
            st.binary(max_size=300),
            st.just(body_of(vendor, draw(st.integers(0, 50)))),
        )
    )
    fields = draw(st.dictionaries(TOKEN, VALUE, max_size=4))
    if draw(st.booleans()):
        fields.update(signed(vendor, body))
    framing = draw(st.sampled_from(["length", "wrong length", "chunked", "bad chunks", "none"]))
    payload = body
    if framing == "length":
        fields["Content-Length"] = str(len(body))
    elif framing == "wrong length":
        fields["Content-Length"] = draw(
            st.sampled_from([str(len(body) + 7), "-1", "1e3", "0x10", "", "99999999999999999999"])
        )
    elif framing in ("chunked", "bad chunks"):
        fields["Transfer-Encoding"] = draw(CODINGS) if framing == "bad chunks" else "chunked"
        payload = chunked(body, draw(st.integers(8, 64)))
        if framing == "bad chunks":
            cut = draw(st.integers(0, len(payload)))
            payload = payload[:cut] + draw(st.binary(max_size=20))
    return head(vendor, fields) + payload


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=requests())
def test_fuzzed_requests_never_get_a_5xx_nor_hang(served: Served, raw: bytes) -> None:
    # Our side is closed after the bytes: every request is complete or known to be cut,
    # so a connection still open after 20 s is one the server holds (AssertionError).
    answer = exchange(served.port, raw, timeout=20)
    codes = statuses(answer)
    assert codes, f"no answer to {raw[:200]!r}"
    assert all(code < 500 for code in codes), (codes, raw[:300], answer[:300])


def test_the_server_still_answers_after_all_that(served: Served) -> None:
    body = zendesk_body(9999)  # one the fuzz above never sends
    fields = {**signed("zendesk", body), "Content-Length": str(len(body))}
    assert statuses(exchange(served.port, head("zendesk", fields) + body)) == [202]
    assert served.process.poll() is None
