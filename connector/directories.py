"""Which directory (organizations and people, for `tierdesk sync`) a vendor has.

In: a vendor name and the tenant's HTTP client. Out: the vendor's `Directory`. An
unknown vendor is a `ConnectorError`. Kept apart from `connector.directory`, which
holds the types every vendor module imports, so that no module imports its importer.
"""

from __future__ import annotations

from connector.directory import Directory
from connector.errors import ConnectorError
from connector.http import HttpClient
from connector.jsm_directory import JsmDirectory
from connector.zendesk_directory import ZendeskDirectory


def open_directory(vendor: str, client: HttpClient) -> Directory:
    if vendor == "zendesk":
        return ZendeskDirectory(client)
    if vendor == "jsm":
        return JsmDirectory(client)
    raise ConnectorError(f"no directory for vendor {vendor!r}")
