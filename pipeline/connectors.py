"""Which write-back a tenant gets: its vendor's connector when it has credentials, a
dry run otherwise. One HTTP client, and so one request budget, per tenant per process,
shared by the worker threads."""

from __future__ import annotations

import threading
from typing import Any

from requests.auth import AuthBase

from connector.auth import vendor_auth
from connector.errors import ConnectorError
from connector.http import HttpClient, Policy, TicketWindow
from connector.jsm import JiraUsers, JsmIssues
from connector.zendesk import ZendeskTickets
from entitlements.decide import Decision
from pipeline.writeback import DryRun, WriteBack, WriteBackError, WriteResult, ticket_update
from telemetry.vendor import VendorMetrics
from webhooks.events import TicketEvent
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Tenant


def tenant_auth(tenant: Tenant) -> AuthBase:
    token = tenant.api_token.reveal() if tenant.api_token else ""
    return vendor_auth(tenant.vendor, tenant.email, token, tenant.deployment)


class VendorWriteBack:
    """The WriteBack of a tenant with credentials, over its vendor's connector."""

    def __init__(self, tenant: Tenant, mappings: LiveMappings) -> None:
        self.name = tenant.vendor
        self._tenant = tenant
        self._mappings = mappings
        policy = Policy()
        observer = VendorMetrics(tenant.id, tenant.vendor, policy.requests_per_minute)
        self._client = HttpClient(
            tenant.base_url, tenant_auth(tenant), policy=policy, observer=observer
        )
        self._window = TicketWindow(policy.ticket_updates_per_window, policy.ticket_window_s)

    def user_directory(self) -> JiraUsers | None:
        """Jira's user lookup for a JSM tenant, on this tenant's client and budget."""
        if self._tenant.vendor != "jsm":
            return None
        return JiraUsers(self._client, deployment=self._tenant.deployment)

    def write(
        self,
        tenant: Tenant,
        event: TicketEvent,
        decision: Decision,
        previous: dict[str, Any] | None,
    ) -> WriteResult:
        rulebook = self._mappings.rulebook
        prefix = rulebook.tag_prefix if rulebook else "tierdesk_"
        update = ticket_update(decision)
        try:
            if tenant.vendor == "zendesk":
                zendesk = ZendeskTickets(
                    self._client, tenant.fields, prefix, self._window, tenant.locale
                )
                outcome = zendesk.apply(event.ticket_id, decision, update, previous)
            else:
                jsm = JsmIssues(
                    self._client,
                    tenant.fields,
                    prefix,
                    deployment=tenant.deployment,
                    locale=tenant.locale,
                )
                current = event.ticket.priority if event.ticket else None
                outcome = jsm.apply(event.ticket_key, decision, update, previous, current)
        except ConnectorError as exc:
            raise WriteBackError(str(exc), transient=exc.transient) from None
        return WriteResult(
            outcome.outcome, outcome.update, f"{outcome.calls} call(s). {outcome.note}"
        )


class Connectors:
    """``Connectors(mappings)(tenant)`` → the tenant's WriteBack, built once."""

    def __init__(self, mappings: LiveMappings) -> None:
        self._mappings = mappings
        self._writers: dict[str, WriteBack] = {}
        self._lock = threading.Lock()

    def __call__(self, tenant: Tenant) -> WriteBack:
        with self._lock:
            writer = self._writers.get(tenant.id)
            if writer is None:
                live = tenant.writes_back
                writer = VendorWriteBack(tenant, self._mappings) if live else DryRun()
                self._writers[tenant.id] = writer
            return writer
