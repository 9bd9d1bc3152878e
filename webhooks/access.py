"""Who may call tierdesk's own API (``/api/*``, ``/metrics``).

In: the request. Out: nothing when the caller may go on; otherwise ``ApiError`` 401.
With ``TIERDESK_API_TOKEN`` set, the caller must send ``Authorization: Bearer <token>``;
without one, only callers on the loopback interface are answered, and not through a
reverse proxy (which makes every caller look like 127.0.0.1).
"""

from __future__ import annotations

import ipaddress

from flask import current_app, request

from webhooks.errors import ApiError
from webhooks.settings import Settings


def require_api_caller() -> None:
    settings: Settings = current_app.extensions["tierdesk.settings"]
    if settings.api_token:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not settings.api_token.matches(token.strip()):
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <TIERDESK_API_TOKEN>")
    elif not _loopback(request.remote_addr) or _proxied():
        # A forwarded request is someone else's, so without a token it is refused too.
        raise ApiError(
            401, "unauthorized", "set TIERDESK_API_TOKEN to call the API from another host"
        )


def _proxied() -> bool:
    return any(h in request.headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-Ip"))


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
