"""record_time(): webhooks → hours ledger, through the real normalisers.

Recorded Jira payloads (jira-worklog_created.json, jira-worklog_updated__edited.json,
jira-issue_created.json) go through `webhooks.jsm.normalize` as the receiver runs it;
a few are edited where a case needs it (the issue id a worklog names, a deletion, an
organization), and the edit is named. A real SqliteLedger under tmp_path.

The accounts (tests/ledger_mappings.py): zulip buys 20 h (2026-01-05) + 10 h
(2026-06-01), low under 20% of the last bundle = 2 h; initech 40 h with 37 h carried
from the mappings (3 h left, low under 4 h); globex buys no hours.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from entitlements.ledger import ZENDESK_TOTAL
from entitlements.rulebook import Rulebook
from entitlements.tickets import OrganizationRef, Ticket
from pipeline.ledger_events import record_time
from store.ledger import SqliteLedger
from tests.ledger_mappings import H, rulebook
from tests.shared import VENDOR
from webhooks import jsm, zendesk
from webhooks.events import Ignored, TicketEvent, Worklog
from webhooks.settings import FieldMap, Tenant

JSM = Tenant(id="zulip-jsm", vendor="jsm", fields=FieldMap(organizations="customfield_10002"))
ZENDESK = Tenant(id="acme-zd", vendor="zendesk")
NOW = datetime(2026, 9, 23, 12, 0, tzinfo=UTC)  # both of zulip's bundles are bought
LOGGED = 144_000  # jira-worklog_created.json: worklog 10066 on issue 10014, "1w" = 40 h


def payload(vendor: str, name: str) -> Any:
    return json.loads((VENDOR / vendor / "payloads" / name).read_bytes())


def jira(doc: Any, delivery: str = "") -> TicketEvent:
    event = jsm.normalize(doc, JSM, delivery)
    assert not isinstance(event, Ignored)
    return event


def worklog_created() -> Any:
    return payload("jsm", "jira-worklog_created.json")


def worklog_deleted(minutes_later: int = 5) -> Any:
    """The created payload as Jira sends the deletion: same worklog, a later timestamp."""
    doc = worklog_created()
    doc["webhookEvent"] = "worklog_deleted"
    doc["timestamp"] += minutes_later * 60_000
    return doc


def issue_10014() -> Any:
    """jira-issue_created.json (reporter othello@zulip.com) as the issue worklog 10066
    is logged on."""
    doc = payload("jsm", "jira-issue_created.json")
    doc["issue"]["id"] = "10014"
    return doc


@pytest.fixture
def book(tmp_path: Path) -> Rulebook:
    return rulebook(tmp_path / "mappings")


@pytest.fixture
def ledger(tmp_path: Path, book: Rulebook) -> Iterator[SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "tierdesk.sqlite3")
    ledger.sync_purchases(book)
    yield ledger
    ledger.close()


# -- JSM worklogs ---------------------------------------------------------------------


def test_worklog_counts_for_the_account_of_its_issue(ledger: SqliteLedger, book: Rulebook) -> None:
    # The issue event tells the ledger the account (zulip, by the reporter's domain).
    assert record_time(ledger, jira(issue_10014()), book, NOW) is None
    assert ledger.account_of(JSM.id, "10014") == "zulip"
    change = record_time(ledger, jira(worklog_created()), book, NOW)
    assert change is not None
    assert (change.tenant, change.ticket, change.account) == (JSM.id, "10014", "zulip")
    [zulip] = change.accounts
    assert zulip.account == "zulip" and zulip.used_s == LOGGED
    assert (zulip.before.balance_s, zulip.before.status) == (30 * H, "ok")
    assert (zulip.after.balance_s, zulip.after.status) == (30 * H - LOGGED, "exhausted")
    assert change.flags_changed == ("zulip",)
    assert "worklog 10066 now 40.00 h: +40.00 h used (zulip)" in change.note
    # The same webhook again (a retry with a new delivery id): nothing counts twice.
    assert record_time(ledger, jira(worklog_created(), "retry"), book, NOW) is None
    assert ledger.totals("zulip").used_s == LOGGED


def test_worklog_before_its_issue_counts_once_the_issue_is_seen(
    ledger: SqliteLedger, book: Rulebook
) -> None:
    change = record_time(ledger, jira(worklog_created()), book, NOW)
    assert change is not None
    assert (change.account, change.accounts, change.flags_changed) == (None, (), ())
    assert "no known account" in change.note
    assert ledger.unattributed_s() == LOGGED
    change = record_time(ledger, jira(issue_10014()), book, NOW)
    assert change is not None and change.account == "zulip"
    [zulip] = change.accounts
    assert zulip.used_s == LOGGED and zulip.after.status == "exhausted"
    assert "moves from no known account to zulip" in change.note
    assert ledger.unattributed_s() == 0


def test_deleted_worklog_gives_the_time_back_and_stays_deleted(
    ledger: SqliteLedger, book: Rulebook
) -> None:
    record_time(ledger, jira(issue_10014()), book, NOW)
    record_time(ledger, jira(worklog_created()), book, NOW)
    change = record_time(ledger, jira(worklog_deleted()), book, NOW)
    assert change is not None
    [zulip] = change.accounts
    assert zulip.used_s == -LOGGED
    assert (zulip.before.status, zulip.after.status) == ("exhausted", "ok")
    assert change.flags_changed == ("zulip",)
    # The creation delivered again after the deletion does not bring it back.
    assert record_time(ledger, jira(worklog_created(), "late"), book, NOW) is None
    assert ledger.totals("zulip").used_s == 0
    [entry] = ledger.entries("zulip").worklogs
    assert (entry.key.worklog, entry.deleted, entry.seconds) == ("10066", True, 0)


def test_edited_worklog_counts_its_new_time_only(ledger: SqliteLedger, book: Rulebook) -> None:
    record_time(ledger, jira(issue_10014()), book, NOW)
    record_time(ledger, jira(worklog_created()), book, NOW)
    edited = worklog_created()
    edited["webhookEvent"] = "worklog_updated"
    edited["timestamp"] += 60_000
    edited["worklog"]["timeSpentSeconds"] = 28 * H  # 40 h corrected to 28 h
    change = record_time(ledger, jira(edited), book, NOW)
    assert change is not None
    [zulip] = change.accounts
    assert zulip.used_s == 28 * H - LOGGED
    assert (zulip.after.balance_s, zulip.after.status) == (2 * H, "ok")  # 2 h: on the line
    assert ledger.totals("zulip").used_s == 28 * H
    # The creation, late: older than the edit, it changes nothing.
    assert record_time(ledger, jira(worklog_created(), "late"), book, NOW) is None


def test_older_jira_worklog_updated_names_no_time_and_zeroes_nothing(
    ledger: SqliteLedger, book: Rulebook
) -> None:
    edited = payload("jsm", "jira-worklog_updated__edited.json")  # worklog 10200, issue 10022
    full = worklog_created()  # the same worklog as worklog_updated carries it, just before
    full["webhookEvent"] = "worklog_updated"
    full["timestamp"] = edited["timestamp"] - 1_000
    full["worklog"].update(id="10200", issueId="10022", timeSpentSeconds=21_060)
    assert record_time(ledger, jira(full), book, NOW) is not None  # no account known yet
    # The older form carries the issue (here with zulip's JSM organization added) but
    # not the worklog's time: it links the issue and leaves the worklog as it was.
    edited["issue"]["fields"]["customfield_10002"] = [{"id": "42", "name": "Zulip"}]
    event = jira(edited)
    assert event.worklog == Worklog("10200", None)
    change = record_time(ledger, event, book, NOW)
    assert change is not None
    assert [(c.account, c.used_s) for c in change.accounts] == [("zulip", 21_060)]
    [entry] = ledger.entries("zulip").worklogs
    assert (entry.key.ticket, entry.key.worklog, entry.seconds) == ("10022", "10200", 21_060)
    # Alone (the issue already linked), it records nothing.
    assert record_time(ledger, jira(edited, "again"), book, NOW) is None


# -- Zendesk time tracking ------------------------------------------------------------


def zendesk_total(seconds: int, minute: int, organization: str = "360003") -> TicketEvent:
    """A trigger-body event carrying the ticket's Time Tracking total, as the Zendesk
    normaliser makes it once the tenant maps the field (see the report)."""
    when = datetime(2026, 9, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=minute)
    ticket = Ticket(
        id="77",
        created_at=datetime(2026, 9, 1, 7, 0, tzinfo=UTC),
        organization=OrganizationRef("zendesk", organization),
        vendor="zendesk",
    )
    return TicketEvent(
        tenant=ZENDESK.id,
        vendor="zendesk",
        event_id=f"inv-{minute}",
        kind="ticket.updated",
        ticket_id="77",
        ticket_key="77",
        occurred_at=when,
        ticket=ticket,
        worklog=Worklog(ZENDESK_TOTAL, seconds),
    )


def test_zendesk_total_time_is_the_latest_total(ledger: SqliteLedger, book: Rulebook) -> None:
    # initech: 40 h bought, 37 h carried: 3 h left, already low (under 4 h).
    change = record_time(ledger, zendesk_total(H + H // 2, 0), book, NOW)
    assert change is not None
    [initech] = change.accounts
    assert (initech.used_s, initech.after.balance_s) == (H + H // 2, H + H // 2)
    assert change.flags_changed == ()  # low before, low after
    change = record_time(ledger, zendesk_total(3 * H, 10), book, NOW)  # the total grew
    assert change is not None
    [initech] = change.accounts
    assert (initech.used_s, initech.after.status) == (H + H // 2, "exhausted")
    assert change.flags_changed == ("initech",)
    assert record_time(ledger, zendesk_total(H, 5), book, NOW) is None  # an older total
    assert record_time(ledger, zendesk_total(3 * H, 10), book, NOW) is None  # a replay
    assert ledger.totals("initech").used_s == 37 * H + 3 * H


def test_bundles_count_from_their_purchase_day_in_the_accounts_zone(
    ledger: SqliteLedger, book: Rulebook
) -> None:
    record_time(ledger, jira(issue_10014()), book, NOW)
    # 2026-05-31 22:30 UTC is already June 1st in Berlin: the 10 h bundle is bought.
    june = datetime(2026, 5, 31, 22, 30, tzinfo=UTC)
    change = record_time(ledger, jira(worklog_created()), book, june)
    assert change is not None and change.accounts[0].after.purchased_s == 30 * H
    may = datetime(2026, 5, 31, 21, 30, tzinfo=UTC)
    again = record_time(ledger, jira(worklog_deleted()), book, may)
    assert again is not None and again.accounts[0].after.purchased_s == 20 * H


# -- which account --------------------------------------------------------------------


def test_partial_event_adds_an_account_but_never_removes_one(
    ledger: SqliteLedger, book: Rulebook
) -> None:
    record_time(ledger, zendesk_total(H, 0), book, NOW)  # ticket 77 is initech's
    doc = payload("zendesk", "dust-event-webhook-ticket.created.json")
    doc["detail"]["id"] = "77"
    doc["time"] = "2026-09-01T09:00:00Z"
    unknown = zendesk.normalize(doc, ZENDESK, "d1")  # an organization no account has
    assert isinstance(unknown, TicketEvent) and unknown.partial
    assert record_time(ledger, unknown, book, NOW) is None
    assert ledger.account_of(ZENDESK.id, "77") == "initech"
    doc["detail"]["organization_id"] = "900"  # zulip's Zendesk organization
    doc["time"] = "2026-09-01T09:05:00Z"
    known = zendesk.normalize(doc, ZENDESK, "d2")
    assert isinstance(known, TicketEvent)
    change = record_time(ledger, known, book, NOW)
    assert change is not None
    assert [(c.account, c.used_s) for c in change.accounts] == [("initech", -H), ("zulip", H)]


def test_time_on_an_account_that_buys_no_hours_is_kept_not_billed(
    ledger: SqliteLedger, book: Rulebook
) -> None:
    change = record_time(ledger, zendesk_total(2 * H, 0, organization="901"), book, NOW)
    assert change is not None
    assert (change.account, change.accounts) == ("globex", ())
    assert ledger.totals("globex").used_s == 2 * H


def test_events_without_time_or_ticket(ledger: SqliteLedger, book: Rulebook) -> None:
    comment = jira(payload("jsm", "jira-comment_created.json"))
    assert record_time(ledger, comment, book, NOW) is None
    worklog_without_ticket = replace(jira(worklog_created()), ticket_id="")
    assert record_time(ledger, worklog_without_ticket, book, NOW) is None
    assert ledger.unattributed_s() == 0
