"""How tierdesk signs in to a helpdesk: one place for every client (write-back, setup,
sync), so that a credential is built one way and never shown."""

from __future__ import annotations

from requests import PreparedRequest
from requests.auth import AuthBase, HTTPBasicAuth


class _Bearer(AuthBase):
    """Jira Data Center personal access token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(***)"


def vendor_auth(vendor: str, email: str, token: str, deployment: str = "cloud") -> AuthBase:
    """Zendesk API-token auth (``email/token``), Jira Cloud email + API token, or a Data
    Center personal access token."""
    if vendor == "zendesk":
        return HTTPBasicAuth(f"{email}/token", token)
    if deployment == "datacenter":
        return _Bearer(token)
    return HTTPBasicAuth(email, token)
