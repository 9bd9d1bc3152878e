"""decide(): one table row per rule of RULES.md §1, §3, §4 and §5.

The bundled tiers and calendars with accounts made for these cases. Expected due
times are worked out by hand in the comments, never computed by the code under test.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from entitlements.decide import Decision, decide
from entitlements.errors import TicketError
from entitlements.rulebook import Rulebook
from entitlements.tickets import parse_ticket
from mappings import BUNDLED, load_mappings

ACCOUNTS: dict[str, Any] = {
    "accounts": [
        {
            "id": "solo",
            "name": "Solo Premier",
            "domains": ["solo.example"],
            "timezone": "Europe/London",
            "holidays": {"country": "GB", "subdivision": "ENG"},
            "organizations": {"zendesk": [500], "jsm": ["solo-7"]},
            "subscriptions": [
                {
                    "tier": "premier",
                    "starts": "2026-01-01",
                    "ends": "2027-01-01",
                    "named_contacts": ["dana@solo.example", "erin@solo.example"],
                    "partner_contacts": ["JohnSmith_PartnerCompanyA@solo.example"],
                }
            ],
        },
        {
            "id": "down-under",
            "name": "Down Under",
            "domains": ["du.example"],
            "timezone": "Australia/Sydney",
            "subscriptions": [
                {
                    "tier": "premier",
                    "starts": "2025-01-01",
                    "ends": "2026-01-01",
                    "named_contacts": ["kim@du.example"],
                }
            ],
        },
        {
            "id": "site",
            "name": "Site",
            "domains": ["site.example"],
            "timezone": "America/New_York",
            "holidays": {"country": "US"},
            "organizations": {"jsm": ["site-1"]},
            "subscriptions": [
                {"tier": "priority", "sen": "SEN-9", "site_admins": ["Hank@Site.example"]}
            ],
        },
        {
            "id": "hours",
            "name": "Hours",
            "domains": ["hours.example"],
            "timezone": "America/New_York",
            "subscriptions": [
                {
                    "tier": "payg",
                    "bundles": [
                        {"hours": 20, "purchased": "2026-01-05"},
                        {"hours": 20, "purchased": "2026-06-01"},
                    ],
                    "hours_used": 37,
                }
            ],
        },
        {
            "id": "acme",
            "name": "Acme Corp",
            "domains": ["acme.example"],
            "timezone": "Europe/London",
            "subscriptions": [
                {"tier": "premier", "named_contacts": ["alice@acme.example"]},
                {"tier": "priority", "sen": "SEN-1234", "site_admins": ["hank@acme.example"]},
                {
                    "tier": "payg",
                    "addons": ["administration"],
                    "bundles": [{"hours": 20, "purchased": "2026-01-05"}],
                    "hours_used": 3.5,
                },
            ],
        },
        {
            "id": "globex",
            "name": "Globex",
            "domains": ["globex.example"],
            "timezone": "America/New_York",
            "subscriptions": [{"tier": "saas-24x7"}],
        },
    ]
}

FRIDAY = "2026-03-06T16:30:00Z"  # London 16:30 GMT, New York 11:30 EST, LA 08:30 PST
FRIDAY_NOW = "2026-03-06T16:31:00Z"  # the global week is open (LA Friday morning)
SATURDAY = "2026-03-07T02:00:00Z"  # inside the global weekend (began Sat 01:00Z)


@pytest.fixture(scope="module")
def rulebook(tmp_path_factory: pytest.TempPathFactory) -> Rulebook:
    directory: Path = tmp_path_factory.mktemp("mappings")
    for name in ("tiers.json", "calendars.json"):
        shutil.copy(BUNDLED / name, directory / name)
    (directory / "accounts.json").write_text(json.dumps(ACCOUNTS))
    return load_mappings(directory)


def ask(rulebook: Rulebook, now: str = FRIDAY_NOW, **fields: Any) -> Decision:
    ticket = {"id": "T-1", "created_at": FRIDAY, **fields}
    return decide(parse_ticket(ticket), rulebook, datetime.fromisoformat(now))


def due(decision: Decision) -> str | None:
    return decision.to_json()["first_response_due"]  # type: ignore[return-value]


# (id, ticket fields, now, expected: tier, calendar, due, reasons)
CASES: list[tuple[str, dict[str, Any], str, tuple[str, str | None, str | None, list[str]]]] = [
    # Premier: 24x7 for every level, 30 min / 2 h / 8 h / 24 h.
    (
        "premier-L1-24x7",
        {"requester": "dana@solo.example", "severity": 1, "product": "jira-software"},
        FRIDAY_NOW,
        ("premier", "24x7", "2026-03-06T17:00:00Z", []),
    ),
    (
        "premier-L4-24h",
        {"requester": "dana@solo.example", "severity": 4, "product": "confluence"},
        FRIDAY_NOW,
        ("premier", "24x7", "2026-03-07T16:30:00Z", []),
    ),
    (
        "premier-staging-same-targets",
        {"requester": "dana@solo.example", "severity": 1, "environment": "staging"},
        FRIDAY_NOW,
        ("premier", "24x7", "2026-03-06T17:00:00Z", []),
    ),
    # Bitbucket/Bamboo/Crucible/Fisheye: only L1 on weekends. Opened Saturday 02:00Z;
    # the weekend ends Monday 10:00 Sydney (AEDT, +11) = Sunday 23:00Z.
    (
        "premier-bitbucket-L1-weekend-24x7",
        {
            "requester": "dana@solo.example",
            "severity": 1,
            "product": "bitbucket",
            "created_at": SATURDAY,
        },
        SATURDAY,
        ("premier", "24x7", "2026-03-07T02:30:00Z", []),
    ),
    (
        "premier-bitbucket-L2-waits-for-monday-sydney",
        {
            "requester": "dana@solo.example",
            "severity": 2,
            "product": "bitbucket",
            "created_at": SATURDAY,
        },
        SATURDAY,
        ("premier", "24x5-global", "2026-03-09T01:00:00Z", []),
    ),
    # Free products get no weekend coverage at any level.
    (
        "premier-sourcetree-L1-no-weekend",
        {
            "requester": "dana@solo.example",
            "severity": 1,
            "product": "sourcetree",
            "created_at": SATURDAY,
        },
        SATURDAY,
        ("premier", "24x5-global", "2026-03-08T23:30:00Z", []),
    ),
    # Out-of-scope products fall back to Select (business hours, London, GMT):
    # Friday 16:30-17:00 is 30 min, then Monday 09:00 + 90 min = 10:30.
    (
        "premier-opsgenie-falls-back",
        {"requester": "dana@solo.example", "severity": 1, "product": "opsgenie"},
        FRIDAY_NOW,
        ("select", "business-hours", "2026-03-09T10:30:00Z", ["product_not_covered"]),
    ),
    # ...and Select does not cover Trello either: no SLA at all.
    (
        "premier-trello-not-covered",
        {"requester": "dana@solo.example", "severity": 1, "product": "trello"},
        FRIDAY_NOW,
        ("select", None, None, ["product_not_covered"]),
    ),
    # Named contacts (§4).
    (
        "not-listed-falls-back",
        {"requester": "bob@solo.example", "severity": 1},
        FRIDAY_NOW,
        ("select", "business-hours", "2026-03-09T10:30:00Z", ["not_listed"]),
    ),
    (
        "case-insensitive-contact",
        {"requester": "DANA@Solo.Example", "severity": 1},
        FRIDAY_NOW,
        ("premier", "24x7", "2026-03-06T17:00:00Z", []),
    ),
    (
        "partner-contact",
        {"requester": "johnsmith_partnercompanya@SOLO.example", "severity": 1},
        FRIDAY_NOW,
        ("premier", "24x7", "2026-03-06T17:00:00Z", []),
    ),
    (
        "partner-from-own-domain",
        {
            "requester": "john.smith@partnercompanya.example",
            "organization": {"vendor": "zendesk", "id": 500},
            "severity": 1,
        },
        FRIDAY_NOW,
        ("select", "business-hours", "2026-03-09T10:30:00Z", ["partner_format"]),
    ),
    (
        "shared-mailbox",
        {"requester": "Support+urgent@solo.example", "severity": 1},
        FRIDAY_NOW,
        ("select", "business-hours", "2026-03-09T10:30:00Z", ["shared_mailbox"]),
    ),
    (
        "foreign-domain",
        {
            "requester": "eve@gmail.example",
            "organization": {"vendor": "zendesk", "id": 500},
            "severity": 1,
        },
        FRIDAY_NOW,
        ("select", "business-hours", "2026-03-09T10:30:00Z", ["foreign_domain"]),
    ),
    # Contract dates in the account's zone: the contract ends 2026-01-01 in Sydney.
    (
        "contract-last-minute-in-sydney",
        {"requester": "kim@du.example", "severity": 1, "created_at": "2025-12-31T12:30:00Z"},
        "2025-12-31T12:31:00Z",
        ("premier", "24x7", "2025-12-31T13:00:00Z", []),
    ),
    (
        "contract-ended-in-sydney",
        {"requester": "kim@du.example", "severity": 4, "created_at": "2025-12-31T13:30:00Z"},
        "2025-12-31T13:31:00Z",
        # Select L4 = 2 business days in Sydney: opened Thu 1 Jan 00:30 (no holidays
        # listed for this account), so Thu 09:00-17:00 and Fri 09:00-17:00.
        ("select", "business-hours", "2026-01-02T06:00:00Z", ["contract_ended"]),
    ),
    (
        "contract-not-started",
        {"requester": "kim@du.example", "severity": 1, "created_at": "2024-12-31T12:00:00Z"},
        "2024-12-31T12:01:00Z",
        # Tue 31 Dec 23:00 Sydney: closed; Wed 09:00 + 2 h = 11:00 AEDT = 00:00Z.
        ("select", "business-hours", "2025-01-01T00:00:00Z", ["contract_not_started"]),
    ),
    # Priority (seed 001): production L1 24x7, production L2 24x5, the rest 9-5 in region.
    (
        "priority-L1-production-24x7",
        {"requester": "hank@site.example", "severity": 1, "product": "jira-software"},
        FRIDAY_NOW,
        ("priority", "24x7", "2026-03-06T17:30:00Z", []),
    ),
    (
        "priority-L2-production-24x5",
        {"requester": "hank@site.example", "severity": 2, "created_at": SATURDAY},
        SATURDAY,
        ("priority", "24x5-global", "2026-03-09T01:00:00Z", []),
    ),
    # 1 business day = 8 h in New York: Fri 11:30-17:00 is 5.5 h; Monday (now EDT, the
    # US went to summer time on Sunday 8 March) 09:00 + 2.5 h = 11:30 EDT = 15:30Z.
    (
        "priority-L3-business-day-across-us-dst",
        {"requester": "hank@site.example", "severity": 3},
        FRIDAY_NOW,
        ("priority", "business-hours", "2026-03-09T15:30:00Z", []),
    ),
    (
        "priority-L1-staging-business-hours",
        {"requester": "hank@site.example", "severity": 1, "environment": "staging"},
        FRIDAY_NOW,
        ("priority", "business-hours", "2026-03-06T17:30:00Z", []),
    ),
    # Thanksgiving (Thu 26 Nov 2026) is a US holiday: Wed 16:00-17:00 EST is 1 h,
    # then Friday 09:00 + 7 h = 16:00 EST = 21:00Z.
    (
        "priority-L3-over-thanksgiving",
        {"requester": "hank@site.example", "severity": 3, "created_at": "2026-11-25T21:00:00Z"},
        "2026-11-25T21:01:00Z",
        ("priority", "business-hours", "2026-11-27T21:00:00Z", []),
    ),
    (
        "priority-not-admin",
        {"requester": "ola@site.example", "severity": 1},
        FRIDAY_NOW,
        # Select L1 2 h: Fri 11:30 EST + 2 h = 13:30 EST = 18:30Z.
        ("select", "business-hours", "2026-03-06T18:30:00Z", ["not_admin"]),
    ),
    (
        "priority-product-not-included",
        {"requester": "hank@site.example", "severity": 1, "product": "opsgenie"},
        FRIDAY_NOW,
        ("select", "business-hours", "2026-03-06T18:30:00Z", ["product_not_covered"]),
    ),
    # Pay-as-you-go: 40 h bought, 37 used → 3 h left, under 20 % of the last 20 h bundle.
    (
        "payg-low-balance",
        {"requester": "pat@hours.example", "severity": 3, "created_at": "2026-07-01T13:00:00Z"},
        "2026-07-01T13:01:00Z",
        # 1 business day from Wed 09:00 EDT is Wed 17:00 EDT = 21:00Z.
        ("payg", "business-hours", "2026-07-01T21:00:00Z", ["hours_low"]),
    ),
    (
        "payg-exhausted-before-second-bundle",
        {"requester": "pat@hours.example", "severity": 1, "created_at": "2026-03-02T14:00:00Z"},
        "2026-03-02T14:01:00Z",
        # Only the January bundle is bought by then: 20 - 37 < 0. Select L1: 09:00 EST
        # + 2 h = 11:00 EST = 16:00Z.
        ("select", "business-hours", "2026-03-02T16:00:00Z", ["hours_exhausted"]),
    ),
    (
        "payg-administration-needs-addon",
        {
            "requester": "pat@hours.example",
            "severity": 1,
            "category": "administration",
            "created_at": "2026-07-01T13:00:00Z",
        },
        "2026-07-01T13:01:00Z",
        ("select", "business-hours", "2026-07-01T15:00:00Z", ["needs_addon_administration"]),
    ),
    # Acme has Premier, Priority and PAYG with the add-on: someone neither named nor
    # admin is served by the hours (London, GMT: Fri 16:30 + 30 min, Mon 09:00 + 90 min).
    # The reason is the best subscription's it failed, Premier's; Priority was tried
    # and passed over, which is explained, not flagged (RULES.md §7).
    (
        "acme-administration-served-by-hours",
        {"requester": "bob@acme.example", "severity": 1, "category": "administration"},
        FRIDAY_NOW,
        ("payg", "business-hours", "2026-03-09T10:30:00Z", ["not_listed"]),
    ),
    # 24/7 SaaS with named severities.
    (
        "saas-P0",
        {"requester": "ann@globex.example", "severity": "P0"},
        FRIDAY_NOW,
        ("saas-24x7", "24x7", "2026-03-06T17:30:00Z", []),
    ),
    # Unknown accounts get the default tier, on business hours in the default zone (UTC):
    # L2 6 h: Fri 16:30-17:00 is 30 min, Monday 09:00 + 5.5 h = 14:30Z.
    (
        "unknown-account",
        {"requester": "x@nowhere.example", "severity": 2},
        FRIDAY_NOW,
        ("select", "business-hours", "2026-03-09T14:30:00Z", ["unknown_account"]),
    ),
    # Holidays and closing time, Select in London: Thu 24 Dec 15:00 + 2 h = 17:00 exactly
    # (due at closing, not at the next opening)...
    (
        "due-exactly-at-closing",
        {"requester": "bob@solo.example", "severity": 1, "created_at": "2026-12-24T15:00:00Z"},
        "2026-12-24T15:01:00Z",
        ("select", "business-hours", "2026-12-24T17:00:00Z", ["not_listed"]),
    ),
    # ...and from 16:00 the second hour skips Christmas (Fri), the weekend and the
    # Boxing Day substitute (Mon 28): Tuesday 09:00 + 1 h.
    (
        "over-christmas-in-england",
        {"requester": "bob@solo.example", "severity": 1, "created_at": "2026-12-24T16:00:00Z"},
        "2026-12-24T16:01:00Z",
        ("select", "business-hours", "2026-12-29T10:00:00Z", ["not_listed"]),
    ),
]


@pytest.mark.parametrize(
    ("fields", "now", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rules(
    rulebook: Rulebook,
    fields: dict[str, Any],
    now: str,
    expected: tuple[str, str | None, str | None, list[str]],
) -> None:
    decision = ask(rulebook, now, **fields)
    tier, calendar, due_at, reasons = expected
    assert (decision.tier, decision.calendar, due(decision), list(decision.reasons)) == (
        tier,
        calendar,
        due_at,
        reasons,
    ), "\n".join(decision.explanation)


def test_named_contact_result_is_the_premier_check(rulebook: Rulebook) -> None:
    valid = ask(rulebook, requester="dana@solo.example", severity=1)
    assert valid.named_contact.to_json() == {"status": "valid", "reason": None}
    assert (valid.fallback, valid.account_tier) == (False, "premier")
    invalid = ask(rulebook, requester="bob@solo.example", severity=1)
    assert invalid.named_contact.to_json() == {"status": "invalid", "reason": "not_listed"}
    assert (invalid.fallback, invalid.account_tier, invalid.tier) == (True, "premier", "select")
    select_only = ask(rulebook, requester="x@nowhere.example")
    assert select_only.named_contact.to_json() == {"status": "not_required", "reason": None}
    assert (select_only.account, select_only.account_tier, select_only.fallback) == (
        None,
        None,
        False,
    )


def test_routing_follows_the_global_weekend(rulebook: Rulebook) -> None:
    weekday = ask(rulebook, FRIDAY_NOW, requester="dana@solo.example", severity=1)
    weekend = ask(rulebook, "2026-03-07T12:00:00Z", requester="dana@solo.example", severity=1)
    # Friday 17:00 LA (PST) = Saturday 01:00Z: the first instant of the weekend.
    starts = ask(rulebook, "2026-03-07T01:00:00Z", requester="dana@solo.example", severity=1)
    before = ask(rulebook, "2026-03-07T00:59:59Z", requester="dana@solo.example", severity=1)
    assert (weekday.team, weekend.team, starts.team, before.team) == (
        "premier",
        "select",
        "select",
        "premier",
    )
    assert weekday.first_response_due == weekend.first_response_due  # the clock ignores routing


def test_phone_priority_and_escalation(rulebook: Rulebook) -> None:
    premier = ask(rulebook, requester="dana@solo.example", severity=3)
    priority_l1 = ask(rulebook, requester="hank@site.example", severity=1)
    priority_l2 = ask(rulebook, requester="hank@site.example", severity=2)
    saas = ask(rulebook, requester="ann@globex.example", severity="p0")
    assert [d.phone_support for d in (premier, priority_l1, priority_l2, saas)] == [
        True,
        True,
        False,
        False,
    ]
    assert (saas.severity, saas.severity_name, saas.escalation_level) == (
        1,
        "P0 Critical",
        "Technical Support Engineer",
    )
    assert premier.escalation_level is None
    assert premier.priority == "normal"


@pytest.mark.parametrize(
    ("fields", "severity", "priority"),
    [
        ({"priority": "high"}, 2, "high"),
        ({"priority": "URGENT"}, 1, "urgent"),
        ({"severity": 3, "priority": "urgent"}, 3, "normal"),  # severity wins
        ({}, 3, "normal"),  # neither: the mappings' default level
        ({"organization": {"vendor": "jsm", "id": "site-1"}, "priority": "Highest"}, 1, "Highest"),
        ({"organization": {"vendor": "jsm", "id": "site-1"}, "priority": "Lowest"}, 4, "Low"),
        ({"vendor": "jsm", "severity": "L2"}, 2, "High"),
    ],
    ids=["zendesk-high", "case", "severity-wins", "default", "jsm-highest", "jsm-lowest", "jsm-L2"],
)
def test_severity_and_helpdesk_priority(
    rulebook: Rulebook, fields: dict[str, Any], severity: int, priority: str
) -> None:
    decision = ask(rulebook, requester="hank@site.example", **fields)
    assert (decision.severity, decision.priority) == (severity, priority)


@pytest.mark.parametrize(
    ("fields", "account", "how"),
    [
        (
            {"account": "solo", "organization": {"vendor": "zendesk", "id": 999}},
            "solo",
            "account id solo",
        ),
        ({"organization": {"vendor": "jsm", "id": "solo-7"}}, "solo", "organization jsm:solo-7"),
        ({"organization": {"vendor": "zendesk", "id": "500"}}, "solo", "organization zendesk:500"),
        (
            {"requester": "Dana@EU.solo.example"},
            "solo",
            "email domain eu.solo.example (under solo.example)",
        ),
        ({"requester": "ann@globex.example"}, "globex", "email domain globex.example"),
        (
            {"account": "nope", "requester": "ann@globex.example"},
            "globex",
            "email domain globex.example",
        ),
    ],
    ids=["account-id-first", "jsm-org", "zendesk-org-as-text", "subdomain", "domain", "unknown-id"],
)
def test_account_matching(
    rulebook: Rulebook, fields: dict[str, Any], account: str, how: str
) -> None:
    decision = ask(rulebook, **fields)
    assert (decision.account, decision.matched_by) == (account, how)


def test_hours_balance_is_reported(rulebook: Rulebook) -> None:
    decision = ask(rulebook, "2026-07-01T13:01:00Z", requester="pat@hours.example")
    assert decision.to_json()["hours"] == {
        "purchased": 40.0,
        "used": 37.0,
        "balance": 3.0,
        "low": True,
        "exhausted": False,
    }
    assert "tierdesk_reason_hours_low" in decision.tags


def test_tags_and_explanation(rulebook: Rulebook) -> None:
    decision = ask(rulebook, requester="bob@solo.example", severity=1)
    assert decision.tags == (
        "tierdesk_tier_select",
        "tierdesk_sev_1",
        "tierdesk_contact_invalid",
        "tierdesk_fallback",
        "tierdesk_reason_not_listed",
    )
    text = "\n".join(decision.explanation)
    assert "accounts.json#/accounts/0/subscriptions/0" in text
    assert "[not_listed]" in text
    assert "calendar business-hours" in text


def test_calendar_rule_is_named_in_the_explanation(rulebook: Rulebook) -> None:
    decision = ask(rulebook, SATURDAY, requester="dana@solo.example", severity=2, product="bamboo")
    text = "\n".join(decision.explanation)
    assert "tiers.json#/tiers/premier/calendar_rules/1" in text
    assert "only L1 is served on weekends" in text


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"severity": 7}, "severity"),
        ({"severity": "P9"}, "severity"),
        ({"priority": "whenever"}, "priority"),
        ({"product": "jira"}, "product"),
        ({"environment": "prod"}, "environment"),
        ({"category": "gardening"}, "category"),
    ],
)
def test_values_the_mappings_do_not_know_are_ticket_errors(
    rulebook: Rulebook, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(TicketError) as caught:
        ask(rulebook, requester="dana@solo.example", **fields)
    assert caught.value.field == field


def test_decisions_do_not_depend_on_the_order_of_subscriptions(
    rulebook: Rulebook, tmp_path: Path
) -> None:
    # The highest rank applies first whatever order the mapping lists contracts in.
    flipped = json.loads(json.dumps(ACCOUNTS))
    acme = next(a for a in flipped["accounts"] if a["id"] == "acme")
    acme["subscriptions"].reverse()
    for name in ("tiers.json", "calendars.json"):
        shutil.copy(BUNDLED / name, tmp_path / name)
    (tmp_path / "accounts.json").write_text(json.dumps(flipped))
    other = load_mappings(tmp_path)
    for requester in ("alice@acme.example", "hank@acme.example", "bob@acme.example"):
        a = ask(rulebook, requester=requester, severity=2)
        b = ask(other, requester=requester, severity=2)
        assert (a.tier, a.first_response_due, a.reasons) == (
            b.tier,
            b.first_response_due,
            b.reasons,
        )


@pytest.mark.parametrize(
    ("used_h", "tier", "flags"),
    [
        (None, "payg", {"low": True, "exhausted": False}),  # the mappings: 37 of 40 h
        (30, "payg", {"low": False, "exhausted": False}),  # the ledger knows better: 10 h left
        (40, "select", {"low": False, "exhausted": True}),  # all used: falls back (§3)
        (41.5, "select", {"low": False, "exhausted": True}),
    ],
)
def test_the_ledgers_hours_replace_the_mappings_figure(
    rulebook: Rulebook, used_h: float | None, tier: str, flags: dict[str, bool]
) -> None:
    ticket = parse_ticket(
        {"id": "T-1", "created_at": "2026-07-01T13:00:00Z", "requester": "pat@hours.example"}
    )
    used = None if used_h is None else {"hours": round(used_h * 3600)}
    decision = decide(
        ticket, rulebook, datetime.fromisoformat("2026-07-01T13:01:00Z"), hours_used=used
    )
    assert decision.account == "hours"
    assert decision.tier == tier
    hours = decision.to_json()["hours"]
    assert isinstance(hours, dict)
    assert {k: hours[k] for k in flags} == flags
    assert ("hours_exhausted" in decision.reasons) is flags["exhausted"]


def test_an_open_ticket_keeps_its_tier_when_the_hours_run_out_after_it_opened(
    rulebook: Rulebook,
) -> None:
    """RULES.md §3: an exhausted account's new tickets fall back; a ticket opened while
    hours were left keeps its tier, and shows that they are gone."""
    ticket = parse_ticket(
        {"id": "T-1", "created_at": "2026-07-01T13:00:00Z", "requester": "pat@hours.example"}
    )
    now = datetime.fromisoformat("2026-07-02T13:00:00Z")
    opened = decide(
        ticket,
        rulebook,
        now,
        hours_used={"hours": 41 * 3600},
        hours_left_at_open={"hours": 10 * 3600},  # 40 h bought, 30 used when opened
    )
    assert (opened.tier, opened.fallback) == ("payg", False)
    assert "hours_exhausted" in opened.reasons
    assert opened.hours is not None and opened.hours.exhausted
    assert "tierdesk_reason_hours_exhausted" in opened.tags
    # A new ticket of the same account, now: falls back.
    new = decide(ticket, rulebook, now, hours_used={"hours": 41 * 3600})
    assert (new.tier, new.fallback) == ("select", True)
