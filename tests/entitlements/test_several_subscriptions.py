"""Several subscriptions on one account (RULES.md §7, issue 10 item 10).

Two Premier licences with different named contacts, two Priority SENs with different
site admins: the ticket is served by the best subscription that entitles it, and the
named-contact result and the reasons written to it are that subscription's. Only when
it falls back do reasons of a failed subscription appear, and then those of the best
one it failed; every other subscription tried is explained without a reason code.

Each row gives the whole tier part of the explanation, worked out by hand, and the
same rows go through `tierdesk explain` to show what an admin reads.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from entitlements.decide import Decision, decide
from entitlements.rulebook import Rulebook
from entitlements.tickets import parse_ticket
from mappings import BUNDLED, load_mappings
from tierdesk.cli import main

ACCOUNTS: dict[str, Any] = {
    "accounts": [
        {
            "id": "two-premier",
            "name": "Two Premier",
            "domains": ["tp.example"],
            "timezone": "Europe/London",
            "subscriptions": [
                {"tier": "premier", "named_contacts": ["ann@tp.example"]},
                {"tier": "premier", "named_contacts": ["ben@tp.example"]},
            ],
        },
        {
            "id": "two-sens",
            "name": "Two SENs",
            "domains": ["ts.example"],
            "timezone": "America/New_York",
            "subscriptions": [
                {
                    "tier": "priority",
                    "sen": "SEN-1",
                    "site_admins": ["hank@ts.example"],
                    "products": ["jira-software"],
                },
                {
                    "tier": "priority",
                    "sen": "SEN-2",
                    "site_admins": ["ola@ts.example"],
                    "products": ["confluence"],
                },
            ],
        },
        {
            # The first licence names ann but has ended; the second names ben.
            "id": "renewed",
            "name": "Renewed",
            "domains": ["rn.example"],
            "timezone": "Europe/London",
            "subscriptions": [
                {
                    "tier": "premier",
                    "ends": "2026-01-01",
                    "named_contacts": ["ann@rn.example"],
                },
                {"tier": "premier", "starts": "2026-01-01", "named_contacts": ["ben@rn.example"]},
            ],
        },
        {
            "id": "mixed",
            "name": "Mixed",
            "domains": ["mx.example"],
            "timezone": "Europe/London",
            "subscriptions": [
                {"tier": "premier", "named_contacts": ["ann@mx.example"]},
                {"tier": "premier", "named_contacts": ["ben@mx.example"]},
                {"tier": "priority", "sen": "SEN-7", "site_admins": ["cat@mx.example"]},
                {"tier": "priority", "sen": "SEN-8", "site_admins": ["dan@mx.example"]},
            ],
        },
    ]
}

CREATED = "2026-03-06T16:30:00Z"  # a Friday: London 16:30 GMT, New York 11:30 EST
NOW = "2026-03-06T16:31:00Z"
TP = "accounts.json#/accounts/0/subscriptions"
TS = "accounts.json#/accounts/1/subscriptions"
RN = "accounts.json#/accounts/2/subscriptions"
MX = "accounts.json#/accounts/3/subscriptions"


@pytest.fixture(scope="module")
def mappings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory: Path = tmp_path_factory.mktemp("mappings")
    for name in ("tiers.json", "calendars.json"):
        shutil.copy(BUNDLED / name, directory / name)
    (directory / "accounts.json").write_text(json.dumps(ACCOUNTS))
    return directory


@pytest.fixture(scope="module")
def rulebook(mappings_dir: Path) -> Rulebook:
    return load_mappings(mappings_dir)


def ticket(requester: str, **fields: Any) -> dict[str, Any]:
    return {"id": "T-1", "created_at": CREATED, "requester": requester, "severity": 1, **fields}


def tier_lines(explanation: list[str] | tuple[str, ...]) -> list[str]:
    """The lines between the account match and the calendar: how the tier was chosen."""
    return [
        line
        for line in explanation
        if not line.startswith(("severity ", "account ", "calendar ", "target ", "team "))
    ]


# (id, ticket, expected: tier, fallback, named_contact, reasons, the tier lines)
Row = tuple[str, dict[str, Any], tuple[str, bool, dict[str, Any], list[str], list[str]]]
ROWS: list[Row] = [
    # The bug: ben is named on the second licence. Served as Premier, valid, no reason;
    # the first licence is explained, not flagged.
    (
        "premier-named-on-the-second-licence",
        ticket("ben@tp.example"),
        (
            "premier",
            False,
            {"status": "valid", "reason": None},
            [],
            [
                f"not Premier ({TP}/0): ben@tp.example is not a named contact",
                f"tier Premier: subscription {TP}/1 entitles the ticket; "
                "ben@tp.example is a named contact",
            ],
        ),
    ),
    (
        "premier-named-on-the-first-licence",
        ticket("ann@tp.example"),
        (
            "premier",
            False,
            {"status": "valid", "reason": None},
            [],
            [
                f"tier Premier: subscription {TP}/0 entitles the ticket; "
                "ann@tp.example is a named contact",
            ],
        ),
    ),
    # Named on neither: falls back, with the best licence's reason (the first, as
    # both fail alike) flagged, the other explained.
    (
        "premier-named-on-neither",
        ticket("zoe@tp.example"),
        (
            "select",
            True,
            {"status": "invalid", "reason": "not_listed"},
            ["not_listed"],
            [
                f"[not_listed] not Premier ({TP}/0): zoe@tp.example is not a named contact",
                f"not Premier ({TP}/1): zoe@tp.example is not a named contact",
                "tier Select: the account's fallback tier",
            ],
        ),
    ),
    # Two SENs: ola administers SEN-2, which covers Confluence.
    (
        "priority-admin-of-the-second-sen",
        ticket("ola@ts.example", product="confluence"),
        (
            "priority",
            False,
            {"status": "valid", "reason": None},
            [],
            [
                f"not Priority ({TS}/0): Confluence is not covered",
                f"not Priority ({TS}/0): ola@ts.example is not an admin of SEN-1",
                f"tier Priority: subscription {TS}/1 entitles the ticket; "
                "ola@ts.example is an admin of SEN-2",
            ],
        ),
    ),
    (
        "priority-admin-of-the-first-sen",
        ticket("hank@ts.example", product="jira-software"),
        (
            "priority",
            False,
            {"status": "valid", "reason": None},
            [],
            [
                f"tier Priority: subscription {TS}/0 entitles the ticket; "
                "hank@ts.example is an admin of SEN-1",
            ],
        ),
    ),
    # hank administers SEN-1 but asks about Confluence, which only SEN-2 carries: it
    # falls back, and the reason is his own SEN's (the product), not SEN-2's not_admin.
    (
        "priority-admin-asks-about-the-other-sens-product",
        ticket("hank@ts.example", product="confluence"),
        (
            "select",
            True,
            {"status": "valid", "reason": None},
            ["product_not_covered"],
            [
                f"[product_not_covered] not Priority ({TS}/0): Confluence is not covered",
                f"not Priority ({TS}/1): hank@ts.example is not an admin of SEN-2",
                "tier Select: the account's fallback tier",
            ],
        ),
    ),
    # Renewed with a new contact list: ben is served by the current licence...
    (
        "renewed-licence-names-the-requester",
        ticket("ben@rn.example"),
        (
            "premier",
            False,
            {"status": "valid", "reason": None},
            [],
            [
                f"not Premier ({RN}/0): contract … to 2026-01-01, ticket opened 2026-03-06 "
                "(Europe/London)",
                f"not Premier ({RN}/0): ben@rn.example is not a named contact",
                f"tier Premier: subscription {RN}/1 entitles the ticket; "
                "ben@rn.example is a named contact",
            ],
        ),
    ),
    # ...and ann, named only on the ended one, falls back because it ended: her
    # licence speaks for the fallback, whatever order the two are listed in.
    (
        "ended-licence-names-the-requester",
        ticket("ann@rn.example"),
        (
            "select",
            True,
            {"status": "valid", "reason": None},
            ["contract_ended"],
            [
                f"[contract_ended] not Premier ({RN}/0): contract … to 2026-01-01, ticket "
                "opened 2026-03-06 (Europe/London)",
                f"not Premier ({RN}/1): ann@rn.example is not a named contact",
                "tier Select: the account's fallback tier",
            ],
        ),
    ),
    # Two Premier and two Priority: dan is the second SEN's admin. Served as Priority,
    # a fallback from Premier: Premier's reason and contact result say why, the first
    # SEN (passed over, same tier as the one serving) is only explained.
    (
        "mixed-second-sen-admin",
        ticket("dan@mx.example", product="jira-software"),
        (
            "priority",
            True,
            {"status": "invalid", "reason": "not_listed"},
            ["not_listed"],
            [
                f"[not_listed] not Premier ({MX}/0): dan@mx.example is not a named contact",
                f"not Premier ({MX}/1): dan@mx.example is not a named contact",
                f"not Priority ({MX}/2): dan@mx.example is not an admin of SEN-7",
                f"tier Priority: subscription {MX}/3 entitles the ticket; "
                "dan@mx.example is an admin of SEN-8",
            ],
        ),
    ),
    (
        "mixed-second-premier-contact",
        ticket("ben@mx.example", product="jira-software"),
        (
            "premier",
            False,
            {"status": "valid", "reason": None},
            [],
            [
                f"not Premier ({MX}/0): ben@mx.example is not a named contact",
                f"tier Premier: subscription {MX}/1 entitles the ticket; "
                "ben@mx.example is a named contact",
            ],
        ),
    ),
    (
        "mixed-nobody",
        ticket("eve@mx.example", product="jira-software"),
        (
            "select",
            True,
            {"status": "invalid", "reason": "not_listed"},
            ["not_listed"],
            [
                f"[not_listed] not Premier ({MX}/0): eve@mx.example is not a named contact",
                f"not Premier ({MX}/1): eve@mx.example is not a named contact",
                f"not Priority ({MX}/2): eve@mx.example is not an admin of SEN-7",
                f"not Priority ({MX}/3): eve@mx.example is not an admin of SEN-8",
                "tier Select: the account's fallback tier",
            ],
        ),
    ),
]


def expected_tags(tier: str, fallback: bool, contact: str, reasons: list[str]) -> list[str]:
    tags = [f"tierdesk_tier_{tier}", "tierdesk_sev_1", f"tierdesk_contact_{contact}"]
    if fallback:
        tags.append("tierdesk_fallback")
    return tags + [f"tierdesk_reason_{r}" for r in reasons]


def check(decision: dict[str, Any], expected: tuple[Any, ...]) -> None:
    tier, fallback, contact, reasons, lines = expected
    assert (
        decision["tier"],
        decision["fallback"],
        decision["named_contact"],
        decision["reasons"],
        tier_lines(decision["explanation"]),
    ) == (tier, fallback, contact, reasons, lines), "\n".join(decision["explanation"])
    phone = ["tierdesk_phone"] if tier in ("premier", "priority") else []
    tags = expected_tags(tier, fallback, contact["status"], reasons)
    assert sorted(decision["tags"]) == sorted(tags + phone)


@pytest.mark.parametrize(("fields", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_decide(rulebook: Rulebook, fields: dict[str, Any], expected: tuple[Any, ...]) -> None:
    decision: Decision = decide(parse_ticket(fields), rulebook, datetime.fromisoformat(NOW))
    check(decision.to_json(), expected)


def test_tierdesk_explain_says_the_same(mappings_dir: Path) -> None:
    """What an admin reads: every row through `tierdesk explain`, one JSON line each."""
    tickets = [dict(r[1], id=r[0]) for r in ROWS]
    result = CliRunner().invoke(
        main,
        ["explain", "--mappings", str(mappings_dir), "--now", NOW, "-"],
        input=json.dumps(tickets),
        env={"TIERDESK_MAPPINGS": None},
    )
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["ticket"] for d in decisions] == [r[0] for r in ROWS]
    for decision, row in zip(decisions, ROWS, strict=True):
        check(decision, row[2])


@pytest.mark.parametrize("requester", ["ann@rn.example", "ben@rn.example", "zoe@tp.example"])
def test_the_order_of_equal_licences_does_not_matter(
    rulebook: Rulebook, tmp_path: Path, requester: str
) -> None:
    flipped = json.loads(json.dumps(ACCOUNTS))
    for account in flipped["accounts"]:
        account["subscriptions"].reverse()
    for name in ("tiers.json", "calendars.json"):
        shutil.copy(BUNDLED / name, tmp_path / name)
    (tmp_path / "accounts.json").write_text(json.dumps(flipped))
    other = load_mappings(tmp_path)
    now = datetime.fromisoformat(NOW)
    a = decide(parse_ticket(ticket(requester)), rulebook, now)
    b = decide(parse_ticket(ticket(requester)), other, now)
    assert (a.tier, a.named_contact, a.reasons, a.tags) == (
        b.tier,
        b.named_contact,
        b.reasons,
        b.tags,
    )
