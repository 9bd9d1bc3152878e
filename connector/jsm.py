"""Decisions onto Jira / JSM issues.

Cloud: ``PUT /rest/api/3/issue/{key}?notifyUsers=false`` (email + API token); Data
Center: ``/rest/api/2`` (a personal access token). One PUT with the custom fields, the
priority and ``update.labels`` add/remove (no read needed: Jira applies label
operations to whatever the issue has, so agents' labels stay). The internal note goes
through JSM's ``POST /rest/servicedeskapi/request/{key}/comment`` with
``"public": false``, only when the decision changed. The note is optional: when JSM
refuses it (404: not a service desk request; 401/403: the API user is no agent there)
the issue update stands, and the outcome's note says why there is no note.
"""

from __future__ import annotations

from typing import Any

from connector.errors import NotFound, Unauthorized
from connector.fields import FieldMap
from connector.http import HttpClient
from connector.render import (
    Outcome,
    field_values,
    keep_agents_priority,
    material_change,
    note,
    our_tags,
)
from entitlements.decide import Decision

PRIORITY_ORDER = {
    "Highest": 0,
    "Blocker": 0,
    "High": 1,
    "Critical": 1,
    "Medium": 2,
    "Major": 2,
    "Low": 3,
    "Minor": 3,
    "Lowest": 4,
    "Trivial": 4,
}


def jira_datetime(iso_utc: str) -> str:
    """``2026-03-06T17:00:00Z`` as Jira writes date-times: ``2026-03-06T17:00:00.000+0000``."""
    return iso_utc.replace("Z", "").split(".")[0] + ".000+0000" if iso_utc else ""


def render(
    decision: Decision,
    current_priority: str | None,
    previous: dict[str, Any] | None,
    fields: FieldMap,
    tag_prefix: str,
) -> dict[str, Any]:
    values: dict[str, Any] = dict(field_values(decision, fields))
    if fields.first_response_due and fields.first_response_due in values:
        due = values[fields.first_response_due]
        if fields.types.get("first_response_due", "datetime") == "datetime":
            values[fields.first_response_due] = jira_datetime(due) if due else None  # clear it
        else:  # a text field keeps the ISO "…Z" every other interface shows
            values[fields.first_response_due] = due or None
    if fields.severity and fields.severity in values and fields.values.get("severity"):
        # A severity with a value table is a select list in Jira: options go as {value}.
        values[fields.severity] = {"value": values[fields.severity]}
    body: dict[str, Any] = {"fields": values}
    if decision.priority != current_priority and not keep_agents_priority(
        current_priority, decision.priority, previous, PRIORITY_ORDER
    ):
        body["fields"]["priority"] = {"name": decision.priority}
    before = our_tags(set((previous or {}).get("tags") or []), tag_prefix)
    wanted = set(decision.tags)
    labels = [{"remove": t} for t in sorted(before - wanted)] + [
        {"add": t} for t in sorted(wanted - before)
    ]
    if labels:
        body["update"] = {"labels": labels}
    if not body["fields"]:
        del body["fields"]
    return body


class JsmIssues:
    def __init__(
        self,
        client: HttpClient,
        fields: FieldMap,
        tag_prefix: str,
        *,
        deployment: str = "cloud",
        locale: str = "en",  # the internal note's language (the tenant's)
    ) -> None:
        self.locale = locale
        self.client = client
        self.fields = fields
        self.tag_prefix = tag_prefix
        self.api = "/rest/api/3" if deployment == "cloud" else "/rest/api/2"

    def apply(
        self,
        key: str,
        decision: Decision,
        update: dict[str, Any],
        previous: dict[str, Any] | None,
        current_priority: str | None,
    ) -> Outcome:
        body = render(decision, current_priority, previous, self.fields, self.tag_prefix)
        calls = 0
        try:
            if body:
                calls += 1
                self.client.request(
                    "PUT",
                    f"{self.api}/issue/{key}",
                    params={"notifyUsers": "false"},
                    json_body=body,
                )
        except NotFound:
            return Outcome("ticket_gone", {}, calls, "the issue no longer exists (404)")
        if not material_change(update, previous):
            return Outcome("written" if calls else "unchanged", body, calls)
        try:
            calls += 1
            self.client.request(
                "POST",
                f"/rest/servicedeskapi/request/{key}/comment",
                json_body={"body": note(decision, previous, self.locale), "public": False},
            )
        except NotFound:
            # The issue exists (the PUT went through) but is no service desk request:
            # JSM's internal comments are not available for it.
            return Outcome("written", body, calls, "no internal note: not a JSM request")
        except Unauthorized as exc:
            # The issue is already updated: failing here would dead-letter a write that
            # happened, and leave the ticket without an SLA clock until a replay. The
            # note is optional, as above. A 401/403 on servicedeskapi alone means the API
            # user may edit issues but is no agent of this service desk (JSM needs an
            # agent licence and the project's Service Desk Team role to comment).
            why = f"HTTP {exc.status}" if exc.status else "refused"
            return Outcome(
                "written",
                body,
                calls,
                f"no internal note: the request comment was refused ({why}); the API user"
                " needs a JSM agent licence and the project's Service Desk Team role",
            )
        return Outcome("written", body, calls)


class JiraUsers:
    """Jira Cloud's ``GET /rest/api/3/user?accountId=…``: a person's email by account id.

    Jira Cloud webhooks name people by ``accountId`` and leave ``emailAddress`` out by
    default. The call needs the *Browse users and groups* global permission, and even
    then "privacy controls are applied to the response based on the user's
    preferences": the email may be null or absent (jira-platform.openapi.json, getUser;
    https://developer.atlassian.com/cloud/jira/platform/profile-visibility/).
    """

    def __init__(self, client: HttpClient, *, deployment: str = "cloud") -> None:
        self.client = client
        self.api = "/rest/api/3" if deployment == "cloud" else "/rest/api/2"

    def email(self, account_id: str) -> str | None:
        """The user's email, None when their profile visibility hides it; `NotFound`
        for an unknown account, `Unauthorized` without the permission."""
        user = self.client.request("GET", f"{self.api}/user", params={"accountId": account_id})
        found = user.get("emailAddress") if isinstance(user, dict) else None
        return found if isinstance(found, str) and found else None

    def myself(self) -> str | None:
        """The API user's own ``accountId`` (``GET /rest/api/3/myself``, which needs no
        permission): how Jira Cloud webhooks name the author of tierdesk's own writes."""
        user = self.client.request("GET", f"{self.api}/myself")
        found = user.get("accountId") if isinstance(user, dict) else None
        return found if isinstance(found, str) and found else None
