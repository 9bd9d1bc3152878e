"""`webhooks.signatures` as pure functions: what passes, and the reason each refusal gives.

Every refusal is a `SignatureError` whose message goes back to the sender, so the tests
pin the message (what a vendor admin reads when a webhook is misconfigured) and check
that it never echoes a secret or the signature that was sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from webhooks.settings import Secret
from webhooks.signatures import (
    TOLERANCE_S,
    SignatureError,
    sign_hub,
    sign_zendesk,
    verify_bearer,
    verify_hub,
    verify_zendesk,
)

NOW = datetime(2024, 4, 17, 17, 18, 10, tzinfo=UTC)
TS = "2024-04-17T17:18:10Z"  # NOW as Zendesk writes it
BODY = b'{"type":"zen:event-type:ticket.created","detail":{"id":"5158"}}'
SECRETS = (Secret("s1"), Secret("s0-old"))  # current first, the one being rotated out second


def stamp(offset_s: float) -> str:
    """NOW + offset as an ISO 8601 timestamp with full precision (no rounding at the edge)."""
    return (NOW + timedelta(seconds=offset_s)).isoformat()


def zendesk(
    signature: str | None,
    timestamp: str | None = TS,
    body: bytes = BODY,
    secrets: Sequence[Secret] = SECRETS,
) -> None:
    verify_zendesk(signature, timestamp, body, secrets=secrets, now=NOW)


def refusal(check: Callable[[], None]) -> str:
    with pytest.raises(SignatureError) as caught:
        check()
    return str(caught.value)


# -- the algorithms, computed independently -----------------------------------------


def test_zendesk_signature_is_base64_hmac_sha256_of_timestamp_then_body() -> None:
    # Computed here with the standard library so a change to sign_zendesk cannot make
    # the signer and the verifier agree on a wrong algorithm.
    expected = base64.b64encode(hmac.new(b"s1", TS.encode() + BODY, hashlib.sha256).digest())
    assert sign_zendesk("s1", TS, BODY) == expected.decode()
    zendesk(expected.decode())


def test_hub_signature_is_sha256_equals_hex_hmac_of_the_body() -> None:
    expected = "sha256=" + hmac.new(b"h1", BODY, hashlib.sha256).hexdigest()
    assert sign_hub("h1", BODY) == expected
    verify_hub(expected, BODY, secrets=(Secret("h1"),))


# -- Zendesk --------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["s1", "s0-old"], ids=["current", "rotated-out"])
def test_zendesk_either_active_secret_passes(secret: str) -> None:
    zendesk(sign_zendesk(secret, TS, BODY))


@pytest.mark.parametrize(
    ("signature", "timestamp", "body", "secrets", "reason"),
    [
        (None, TS, BODY, SECRETS, "missing X-Zendesk-Webhook-Signature"),
        ("", TS, BODY, SECRETS, "missing X-Zendesk-Webhook-Signature"),
        ("SIGNED", None, BODY, SECRETS, "missing X-Zendesk-Webhook-Signature-Timestamp"),
        ("SIGNED", "", BODY, SECRETS, "missing X-Zendesk-Webhook-Signature-Timestamp"),
        ("SIGNED", "yesterday", BODY, SECRETS, "is not ISO 8601"),
        ("SIGNED", "1713374290", BODY, SECRETS, "is not ISO 8601"),  # epoch seconds
        ("SIGNED", "2024-04-17T17:18:10", BODY, SECRETS, "has no UTC offset"),
        ("not base64!", TS, BODY, SECRETS, "is not base64"),
        ("c2lnbmVk=é", TS, BODY, SECRETS, "is not base64"),  # non-ASCII in the header
        (base64.b64encode(b"x" * 32).decode(), TS, BODY, SECRETS, "does not match"),
        ("", TS, BODY, (), "no webhook secret is configured"),
        ("SIGNED", TS, BODY, (), "no webhook secret is configured"),
        ("SIGNED", TS, BODY, (Secret(""),), "no webhook secret is configured"),
        ("SIGNED", TS, BODY, (Secret(""), Secret("")), "no webhook secret is configured"),
    ],
    ids=[
        "no-signature",
        "empty-signature",
        "no-timestamp",
        "empty-timestamp",
        "timestamp-words",
        "timestamp-epoch",
        "timestamp-naive",
        "not-base64",
        "not-ascii",
        "wrong-digest",
        "no-secrets-no-signature",
        "no-secrets",
        "only-an-empty-secret",
        "only-empty-secrets",
    ],
)
def test_zendesk_refusals_name_the_reason(
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    secrets: Sequence[Secret],
    reason: str,
) -> None:
    # "SIGNED" stands for a well-formed signature: replaced by the right one, so each
    # case is refused for its own reason and not for a wrong digest.
    if signature == "SIGNED":
        signature = sign_zendesk("s1", timestamp or TS, body)
    message = refusal(lambda: zendesk(signature, timestamp, body, secrets))
    assert reason in message
    assert signature is None or signature == "" or signature not in message


def test_zendesk_secret_of_another_tenant_is_refused() -> None:
    message = refusal(lambda: zendesk(sign_zendesk("h1", TS, BODY)))
    assert message == "X-Zendesk-Webhook-Signature does not match"


def test_zendesk_empty_secret_in_the_list_is_ignored_not_used() -> None:
    # An empty configured secret must not turn an HMAC keyed with "" into a valid one.
    secrets = (Secret(""), Secret("s1"))
    zendesk(sign_zendesk("s1", TS, BODY), secrets=secrets)
    assert "does not match" in refusal(lambda: zendesk(sign_zendesk("", TS, BODY), secrets=secrets))


@pytest.mark.parametrize(
    ("signed_timestamp", "sent_timestamp", "body"),
    [
        (TS, stamp(1), BODY),  # a replay with a fresh timestamp but the old signature
        (TS, TS, BODY + b" "),  # one byte added to the body
        (TS, TS, BODY.replace(b'":"', b'": "')),  # the same JSON, re-serialised
    ],
    ids=["timestamp-changed", "byte-added", "reformatted-json"],
)
def test_zendesk_signature_covers_the_exact_timestamp_and_raw_bytes(
    signed_timestamp: str, sent_timestamp: str, body: bytes
) -> None:
    signature = sign_zendesk("s1", signed_timestamp, BODY)
    assert "does not match" in refusal(lambda: zendesk(signature, sent_timestamp, body))


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (-TOLERANCE_S - 1, False),
        (-TOLERANCE_S - 0.001, False),
        (-TOLERANCE_S, True),
        (-299, True),
        (0, True),
        (299, True),
        (TOLERANCE_S, True),
        (TOLERANCE_S + 0.001, False),
        (TOLERANCE_S + 1, False),
        (-86_400 * 365, False),
    ],
    ids=["301s-old", "300.001s-old", "300s-old", "299s-old", "now", "299s-ahead",
         "300s-ahead", "300.001s-ahead", "301s-ahead", "a-year-old"],
)  # fmt: skip
def test_zendesk_timestamp_tolerance_is_five_minutes_either_way(
    offset: float, accepted: bool
) -> None:
    timestamp = stamp(offset)
    signature = sign_zendesk("s1", timestamp, BODY)
    if accepted:
        zendesk(signature, timestamp)
    else:
        message = refusal(lambda: zendesk(signature, timestamp))
        assert ("in the past" if offset < 0 else "in the future") in message
        assert "at most 300 s either way" in message


def test_zendesk_timestamp_with_an_offset_is_compared_as_an_instant() -> None:
    # 19:18:10+02:00 is NOW: accepted, and the signature is over the text as sent.
    timestamp = "2024-04-17T19:18:10+02:00"
    zendesk(sign_zendesk("s1", timestamp, BODY), timestamp)


def test_zendesk_freshness_is_checked_even_for_a_valid_signature() -> None:
    # A captured request replayed later fails on its age, whatever its signature.
    old = stamp(-3600)
    assert "in the past" in refusal(lambda: zendesk(sign_zendesk("s1", old, BODY), old))


# -- Jira X-Hub-Signature ------------------------------------------------------------

HUB = (Secret("h1"), Secret("h0-old"))


@pytest.mark.parametrize("secret", ["h1", "h0-old"], ids=["current", "rotated-out"])
def test_hub_either_active_secret_passes(secret: str) -> None:
    verify_hub(sign_hub(secret, BODY), BODY, secrets=HUB)


@pytest.mark.parametrize(
    "header",
    [
        "SHA256=" + hmac.new(b"h1", BODY, hashlib.sha256).hexdigest(),
        "sha256=" + hmac.new(b"h1", BODY, hashlib.sha256).hexdigest().upper(),
        " sha256 = " + hmac.new(b"h1", BODY, hashlib.sha256).hexdigest() + " ",
    ],
    ids=["algorithm-upper-case", "hex-upper-case", "spaces"],
)
def test_hub_header_spelling_is_tolerated(header: str) -> None:
    verify_hub(header, BODY, secrets=HUB)


@pytest.mark.parametrize(
    ("header", "secrets", "reason"),
    [
        (None, HUB, "missing X-Hub-Signature"),
        ("", HUB, "missing X-Hub-Signature"),
        ("sha1=" + hmac.new(b"h1", BODY, hashlib.sha1).hexdigest(), HUB, "must be sha256=<hex>"),
        (hmac.new(b"h1", BODY, hashlib.sha256).hexdigest(), HUB, "must be sha256=<hex>"),
        ("sha256=not-hex", HUB, "digest is not hex"),
        ("sha256=abc", HUB, "digest is not hex"),  # odd length
        ("sha256=", HUB, "does not match"),
        ("sha256=" + "00" * 32, HUB, "does not match"),
        ("sha256=" + hmac.new(b"h1", BODY, hashlib.sha256).hexdigest()[:-2], HUB, "not match"),
        (sign_hub("s1", BODY), HUB, "does not match"),  # another tenant's secret
        (sign_hub("h1", BODY), (), "no webhook secret is configured"),
        (sign_hub("", BODY), (Secret(""),), "no webhook secret is configured"),
    ],
    ids=[
        "none",
        "empty",
        "sha1",
        "no-algorithm",
        "not-hex",
        "odd-hex",
        "empty-digest",
        "wrong-digest",
        "truncated-digest",
        "other-tenant-secret",
        "no-secrets",
        "only-an-empty-secret",
    ],
)
def test_hub_refusals_name_the_reason(
    header: str | None, secrets: Sequence[Secret], reason: str
) -> None:
    message = refusal(lambda: verify_hub(header, BODY, secrets=secrets))
    assert reason in message
    assert not header or len(header) < 8 or header.strip() not in message


def test_hub_empty_secret_in_the_list_is_ignored_not_used() -> None:
    secrets = (Secret(""), Secret("h1"))
    verify_hub(sign_hub("h1", BODY), BODY, secrets=secrets)
    assert "does not match" in refusal(
        lambda: verify_hub(sign_hub("", BODY), BODY, secrets=secrets)
    )


def test_hub_signature_is_over_the_raw_bytes() -> None:
    header = sign_hub("h1", BODY)
    assert "does not match" in refusal(lambda: verify_hub(header, BODY + b"\n", secrets=HUB))


# -- JSM Automation bearer token ----------------------------------------------------

TOKENS = (Secret("auto-token"), Secret("auto-token-old"))


@pytest.mark.parametrize(
    "header",
    ["Bearer auto-token", "bearer auto-token", "BEARER auto-token", "Bearer  auto-token ",
     "Bearer auto-token-old"],
    ids=["canonical", "lower-scheme", "upper-scheme", "extra-spaces", "rotated-out"],
)  # fmt: skip
def test_bearer_passes(header: str) -> None:
    verify_bearer(header, tokens=TOKENS)


@pytest.mark.parametrize(
    ("header", "tokens", "reason"),
    [
        (None, TOKENS, "missing Authorization: Bearer <token>"),
        ("", TOKENS, "missing Authorization: Bearer <token>"),
        ("Bearer", TOKENS, "missing Authorization: Bearer <token>"),
        ("Bearer    ", TOKENS, "missing Authorization: Bearer <token>"),
        ("auto-token", TOKENS, "missing Authorization: Bearer <token>"),
        ("Basic auto-token", TOKENS, "missing Authorization: Bearer <token>"),
        ("Token auto-token", TOKENS, "missing Authorization: Bearer <token>"),
        ("Bearer wrong", TOKENS, "bearer token does not match"),
        ("Bearer auto", TOKENS, "bearer token does not match"),  # a prefix
        ("Bearer auto-tokenX", TOKENS, "bearer token does not match"),  # an extension
        ("Bearer AUTO-TOKEN", TOKENS, "bearer token does not match"),  # tokens are exact
        ("Bearer auto-token", (), "no webhook secret is configured"),
        ("Bearer auto-token", (Secret(""),), "no webhook secret is configured"),
    ],
    ids=[
        "none",
        "empty",
        "scheme-only",
        "scheme-and-spaces",
        "no-scheme",
        "basic",
        "token-scheme",
        "wrong",
        "prefix",
        "extension",
        "case",
        "no-tokens",
        "only-an-empty-token",
    ],
)
def test_bearer_refusals_name_the_reason(
    header: str | None, tokens: Sequence[Secret], reason: str
) -> None:
    message = refusal(lambda: verify_bearer(header, tokens=tokens))
    assert reason in message
    assert "auto-token" not in message


def test_bearer_empty_token_in_the_list_is_ignored() -> None:
    tokens = (Secret(""), Secret("auto-token"))
    verify_bearer("Bearer auto-token", tokens=tokens)
    assert "missing" in refusal(lambda: verify_bearer("Bearer ", tokens=tokens))


# -- constant-time comparison -------------------------------------------------------


class CompareSpy:
    """Stands in for hmac.compare_digest and records each comparison."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bytes]] = []
        self.real = hmac.compare_digest

    def __call__(self, a: bytes, b: bytes) -> bool:
        self.calls.append((a, b))
        return self.real(a, b)


@pytest.fixture
def compare(monkeypatch: pytest.MonkeyPatch) -> CompareSpy:
    spy = CompareSpy()
    # signatures.py and settings.py call hmac.compare_digest through the module, so
    # patching the attribute sees every comparison they make.
    monkeypatch.setattr(hmac, "compare_digest", spy)
    return spy


def test_zendesk_compares_in_constant_time_against_every_secret(compare: CompareSpy) -> None:
    # The first secret matches, and the second is compared all the same: which secret
    # matched (or that an old one did) must not show in the time taken.
    zendesk(sign_zendesk("s1", TS, BODY))
    assert len(compare.calls) == 2
    assert "does not match" in refusal(lambda: zendesk(sign_zendesk("nope", TS, BODY)))
    assert len(compare.calls) == 4


def test_hub_compares_in_constant_time_against_every_secret(compare: CompareSpy) -> None:
    verify_hub(sign_hub("h1", BODY), BODY, secrets=HUB)
    assert len(compare.calls) == 2
    # Empty secrets are skipped, not compared.
    verify_hub(sign_hub("h1", BODY), BODY, secrets=(Secret(""), Secret("h1")))
    assert len(compare.calls) == 3


def test_bearer_compares_in_constant_time(compare: CompareSpy) -> None:
    verify_bearer("Bearer auto-token", tokens=TOKENS)
    assert compare.calls and compare.calls[0] == (b"auto-token", b"auto-token")
    refusal(lambda: verify_bearer("Bearer wrong", tokens=TOKENS))
    assert (b"auto-token-old", b"wrong") in compare.calls


def test_a_secret_never_shows_in_its_repr() -> None:
    assert "s1" not in repr(Secret("s1")) and "s1" not in str(Secret("s1"))
