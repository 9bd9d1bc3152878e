"""Is this request really from the helpdesk? Pure functions over the raw bytes.

Fail closed: a missing header, an unparseable timestamp or an empty secret list is a
refusal. Every comparison is constant-time, and every secret of a tenant is tried
(two are active while one is rotated).

- Zendesk signs ``timestamp + body`` with HMAC-SHA256 and sends the base64 digest in
  ``X-Zendesk-Webhook-Signature``, the timestamp in
  ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601, e.g. ``2024-04-17T17:18:10Z``).
  A timestamp more than five minutes away from our clock, either way, is refused.
- Jira admin webhooks send ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``.
  There is no timestamp to check: the inbox dedupes on the body's hash, so a captured
  body can be replayed only as a duplicate.
- JSM Automation's "Send web request" cannot sign: a per-tenant bearer token instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime

from webhooks.settings import Secret

TOLERANCE_S = 300


class SignatureError(Exception):
    """Why a request was refused; safe to send back (names no secret)."""


def _hmac(secret: Secret, message: bytes) -> bytes:
    return hmac.new(secret.reveal().encode(), message, hashlib.sha256).digest()


def _require(secrets: Sequence[Secret]) -> None:
    if not any(secrets):
        raise SignatureError("no webhook secret is configured for this tenant")


def verify_zendesk(
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    secrets: Sequence[Secret],
    now: datetime,
    tolerance_s: float = TOLERANCE_S,
) -> None:
    _require(secrets)
    if not signature:
        raise SignatureError("missing X-Zendesk-Webhook-Signature")
    if not timestamp:
        raise SignatureError("missing X-Zendesk-Webhook-Signature-Timestamp")
    try:
        signed_at = datetime.fromisoformat(timestamp)
    except ValueError:
        raise SignatureError("X-Zendesk-Webhook-Signature-Timestamp is not ISO 8601") from None
    if signed_at.tzinfo is None:
        raise SignatureError("X-Zendesk-Webhook-Signature-Timestamp has no UTC offset")
    skew = (now - signed_at).total_seconds()
    if abs(skew) > tolerance_s:
        raise SignatureError(
            f"signature timestamp is {abs(skew):.0f} s in the {'past' if skew > 0 else 'future'};"
            f" at most {tolerance_s:.0f} s either way is accepted"
        )
    try:
        given = base64.b64decode(signature, validate=True)
    except ValueError:
        raise SignatureError("X-Zendesk-Webhook-Signature is not base64") from None
    message = timestamp.encode() + body
    if not _any_match(given, (_hmac(s, message) for s in secrets if s)):
        raise SignatureError("X-Zendesk-Webhook-Signature does not match")


def verify_hub(header: str | None, body: bytes, *, secrets: Sequence[Secret]) -> None:
    _require(secrets)
    if not header:
        raise SignatureError("missing X-Hub-Signature")
    algorithm, _, digest = header.partition("=")
    if algorithm.strip().lower() != "sha256":
        raise SignatureError("X-Hub-Signature must be sha256=<hex>")
    try:
        given = bytes.fromhex(digest.strip())
    except ValueError:
        raise SignatureError("X-Hub-Signature digest is not hex") from None
    if not _any_match(given, (_hmac(s, body) for s in secrets if s)):
        raise SignatureError("X-Hub-Signature does not match")


def verify_bearer(authorization: str | None, *, tokens: Sequence[Secret]) -> None:
    _require(tokens)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureError("missing Authorization: Bearer <token>")
    if not any(t.matches(token.strip()) for t in tokens if t):
        raise SignatureError("bearer token does not match")


def _any_match(given: bytes, expected: Iterable[bytes]) -> bool:
    # Compare against every secret, not stopping at the first match, so timing says
    # nothing about which secret (or whether an old one) matched.
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(given, candidate)
    return matched


def sign_zendesk(secret: str, timestamp: str, body: bytes) -> str:
    """What Zendesk sends: for tests, benchmarks and `tierdesk` tooling."""
    return base64.b64encode(_hmac(Secret(secret), timestamp.encode() + body)).decode()


def sign_hub(secret: str, body: bytes) -> str:
    return "sha256=" + _hmac(Secret(secret), body).hex()
