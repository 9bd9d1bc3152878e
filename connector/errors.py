"""The connector's one error family, picked by `from_response`.

Messages name the method, the path (no query string), the status and the vendor's
error code, never a request or response body: bodies carry personal data (requester
emails, comments), and a message ends up in logs and dead letters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_DELTA_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")


class ConnectorError(Exception):
    """A call to a helpdesk failed. ``transient``: worth retrying later."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(ConnectorError):
    transient = True


class RateLimited(TransientError):  # noqa: N818  it names the condition, as the vendors do
    """429 (or a 503 with Retry-After): ``retry_after`` seconds, when the vendor said."""

    def __init__(self, message: str, *, status: int | None, retry_after: float | None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class Conflict(TransientError):  # noqa: N818
    """409: Zendesk's safe update found the ticket changed since our read: re-read."""


class ServerError(TransientError):
    """408, 425, 5xx, timeouts and broken connections."""


class PermanentError(ConnectorError):
    """No retry can help: bad credentials, a deleted ticket, a request the vendor refuses."""


class Unauthorized(PermanentError):  # noqa: N818
    """401/403: the tenant's credentials are wrong or lack the permission."""


class NotFound(PermanentError):  # noqa: N818
    """404: the ticket (or field) no longer exists."""


class Rejected(PermanentError):  # noqa: N818
    """400/422 and other 4xx: the vendor refuses the request as written."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):  # RFC 9110: digits (float() would take "nan", "inf")
        return float(text)
    if text[:1] in "-+" or text[:1].isdigit():
        return None  # a number, but not a delay we can honour
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _vendor_code(body: bytes) -> str:
    """Zendesk's ``error`` (e.g. RecordInvalid) or Jira's first ``errorMessages`` key
    kind: a code, not the text, which may quote personal data."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    if isinstance(doc, dict):
        error = doc.get("error")
        if isinstance(error, str) and error.isidentifier():
            return error
        if isinstance(error, dict) and isinstance(error.get("title"), str):
            return "error"
    return ""


def from_response(
    method: str, path: str, status: int, headers: Mapping[str, str], body: bytes
) -> ConnectorError:
    """The exception for a non-2xx answer."""
    code = _vendor_code(body)
    where = f"{method} {path.split('?', 1)[0]}: HTTP {status}" + (f" {code}" if code else "")
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if status == 429 or (status == 503 and retry_after is not None):
        return RateLimited(where, status=status, retry_after=retry_after)
    if status == 409:
        return Conflict(where, status=status)
    if status in (408, 425) or status >= 500:
        return ServerError(where, status=status)
    if status in (401, 403):
        return Unauthorized(where, status=status)
    if status == 404:
        return NotFound(where, status=status)
    return Rejected(where, status=status)
