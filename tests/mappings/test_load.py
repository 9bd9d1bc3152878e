"""The mappings loader: schema checks, cross-file checks and the contract rules of RULES.md §4.

Every broken mapping is a copy of the bundled one with one thing changed in Python, so
each case says exactly what it breaks; the expected file, pointer and rule are written
out by hand, never taken from the code under test.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mappings import BUNDLED, FILES, MappingError, Problem, check_mappings, documents, load_mappings

Docs = dict[str, Any]  # file name → parsed JSON
Mutation = Callable[[Docs], None]

PREMIER = "/accounts/0/subscriptions/0"  # acme's Premier subscription in the bundled data


def copy_bundled(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for path in BUNDLED.glob("*.json"):
        shutil.copy(path, directory / path.name)
    return directory


def broken(directory: Path, mutate: Mutation) -> Path:
    """A copy of the bundled mappings with ``mutate`` applied to the parsed files."""
    copy_bundled(directory)
    docs = {name: json.loads((directory / name).read_text(encoding="utf-8")) for name in FILES}
    mutate(docs)
    for name, document in docs.items():
        (directory / name).write_text(json.dumps(document, indent=2), encoding="utf-8")
    return directory


def account(docs: Docs, index: int = 0) -> dict[str, Any]:
    accounts: list[dict[str, Any]] = docs["accounts.json"]["accounts"]
    return accounts[index]


def subscription(docs: Docs, index: int = 0) -> dict[str, Any]:
    subs: list[dict[str, Any]] = account(docs)["subscriptions"]
    return subs[index]


def tier(docs: Docs, name: str) -> dict[str, Any]:
    tiers: dict[str, dict[str, Any]] = docs["tiers.json"]["tiers"]
    return tiers[name]


def calendar(docs: Docs, name: str) -> dict[str, Any]:
    calendars: dict[str, dict[str, Any]] = docs["calendars.json"]["calendars"]
    return calendars[name]


def where(problem: Problem) -> tuple[str, str, str]:
    return problem.file, problem.pointer, problem.rule


def assert_mentions(message: str, words: tuple[str, ...]) -> None:
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


# -- the bundled mappings ------------------------------------------------------------


def test_bundled_mappings_load() -> None:
    rulebook = load_mappings()
    assert {"premier", "priority", "select", "payg", "saas-24x7"} <= set(rulebook.tiers)
    acme = rulebook.account("acme")
    assert acme is not None
    assert acme.name == "Acme Corp"
    assert rulebook.default_tier == "select"


def test_bundled_mappings_have_no_problems() -> None:
    assert check_mappings() == []
    assert check_mappings(BUNDLED) == []


def test_unchanged_copy_loads(tmp_path: Path) -> None:
    # Guards the helpers below: a round trip through json.dumps changes nothing that
    # matters, so every problem in the broken copies comes from the mutation alone.
    directory = broken(tmp_path, lambda docs: None)
    assert check_mappings(directory) == []
    assert load_mappings(directory).account("acme") is not None


# -- file-level problems -------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_missing_file(tmp_path: Path, name: str) -> None:
    directory = copy_bundled(tmp_path)
    (directory / name).unlink()
    problems = check_mappings(directory)
    assert [where(p) for p in problems] == [(name, "", "missing")]
    assert_mentions(problems[0].message, (name,))


def test_empty_directory_reports_every_file(tmp_path: Path) -> None:
    assert [where(p) for p in check_mappings(tmp_path)] == [
        ("calendars.json", "", "missing"),
        ("tiers.json", "", "missing"),
        ("accounts.json", "", "missing"),
    ]


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    # The stray comma is the 17th character of line 2.
    (directory / "calendars.json").write_text('{\n  "calendars": {,\n}', encoding="utf-8")
    problems = check_mappings(directory)
    assert [where(p) for p in problems] == [("calendars.json", "", "json")]
    assert_mentions(problems[0].message, ("line 2", "column 17"))


def test_not_utf8(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "tiers.json").write_bytes(b'{"tiers": "\xff"}')
    assert [where(p) for p in check_mappings(directory)] == [("tiers.json", "", "utf-8")]


# -- one problem each: (mutation, file, pointer, rule, words the message must contain) --


def _delete(key: str, get: Callable[[Docs], dict[str, Any]]) -> Mutation:
    def mutate(docs: Docs) -> None:
        del get(docs)[key]

    return mutate


def _set(key: str, value: Any, get: Callable[[Docs], dict[str, Any]]) -> Mutation:
    def mutate(docs: Docs) -> None:
        get(docs)[key] = value

    return mutate


def _window(docs: Docs) -> dict[str, Any]:
    windows: list[dict[str, Any]] = calendar(docs, "business-hours")["windows"]
    return windows[0]


def _span_end(docs: Docs) -> dict[str, Any]:
    spans: list[dict[str, Any]] = calendar(docs, "24x5-global")["spans"]
    end: dict[str, Any] = spans[0]["to"]
    return end


def _acme_holidays(docs: Docs) -> dict[str, Any]:
    holidays: dict[str, Any] = account(docs)["holidays"]
    return holidays


def _premier_rule(docs: Docs) -> dict[str, Any]:
    rules: list[dict[str, Any]] = tier(docs, "premier")["calendar_rules"]
    return rules[0]


def _premier_routing(docs: Docs) -> dict[str, Any]:
    routing: list[dict[str, Any]] = tier(docs, "premier")["routing"]
    return routing[0]


def _unknown_holiday_country(docs: Docs) -> None:
    holidays = _acme_holidays(docs)
    holidays["country"] = "XX"
    del holidays["subdivision"]  # a subdivision of an unknown country would be a 2nd fault


def _second_domain(domain: str) -> Mutation:
    def mutate(docs: Docs) -> None:
        account(docs, 1)["domains"].append(domain)

    return mutate


def _second_organization(org: int | str) -> Mutation:
    def mutate(docs: Docs) -> None:
        account(docs, 2)["organizations"]["zendesk"].append(org)

    return mutate


SINGLE_PROBLEMS = [
    pytest.param(
        _delete("timezone", account),
        "accounts.json",
        "/accounts/0",
        "required",
        ("'timezone'",),
        id="required-account-timezone",
    ),
    pytest.param(
        _delete("tier", lambda docs: subscription(docs, 1)),
        "accounts.json",
        "/accounts/0/subscriptions/1",
        "required",
        ("'tier'",),
        id="required-subscription-tier",
    ),
    pytest.param(
        _delete("targets", lambda docs: tier(docs, "premier")),
        "tiers.json",
        "/tiers/premier",
        "required",
        ("'targets'",),
        id="required-tier-targets",
    ),
    pytest.param(
        _set("from", "25:00", _window),
        "calendars.json",
        "/calendars/business-hours/windows/0/from",
        "pattern",
        ("25:00",),
        id="pattern-window-time",
    ),
    pytest.param(
        _set("time", "25:00", _span_end),
        "calendars.json",
        "/calendars/24x5-global/spans/0/to/time",
        "pattern",
        ("25:00",),
        id="pattern-span-time",
    ),
    pytest.param(
        _set("schema_version", 2, lambda docs: docs["accounts.json"]),
        "accounts.json",
        "/schema_version",
        "schema_version",
        ("2",),
        id="schema-version-accounts",
    ),
    pytest.param(
        _set("schema_version", 2, lambda docs: docs["tiers.json"]),
        "tiers.json",
        "/schema_version",
        "schema_version",
        ("2",),
        id="schema-version-tiers",
    ),
    pytest.param(
        _set("schema_version", 2, lambda docs: docs["calendars.json"]),
        "calendars.json",
        "/schema_version",
        "schema_version",
        ("2",),
        id="schema-version-calendars",
    ),
    pytest.param(
        _set("starts", "2026-02-30", subscription),
        "accounts.json",
        f"{PREMIER}/starts",
        "format",
        ("2026-02-30",),
        id="format-contract-start",
    ),
    pytest.param(
        _set("dates", ["2026-02-30"], _acme_holidays),
        "accounts.json",
        "/accounts/0/holidays/dates/0",
        "format",
        ("2026-02-30",),
        id="format-holiday-date",
    ),
    pytest.param(
        _set("timezone", "Mars/Olympus_Mons", account),
        "accounts.json",
        "/accounts/0/timezone",
        "timezone",
        ("Mars/Olympus_Mons",),
        id="timezone-account",
    ),
    pytest.param(
        _set("timezone", "../../etc/localtime", account),
        "accounts.json",
        "/accounts/0/timezone",
        "timezone",
        ("../../etc/localtime",),
        id="timezone-path-is-not-a-zone",
    ),
    pytest.param(
        _set("zone", "Europe/Atlantis", _span_end),
        "calendars.json",
        "/calendars/24x5-global/spans",
        "timezone",
        ("Europe/Atlantis",),
        id="timezone-calendar-span",
    ),
    pytest.param(
        _set("default_timezone", "Nowhere/City", lambda docs: docs["tiers.json"]),
        "tiers.json",
        "/default_timezone",
        "timezone",
        ("Nowhere/City",),
        id="timezone-default",
    ),
    pytest.param(
        _unknown_holiday_country,
        "accounts.json",
        "/accounts/0/holidays/country",
        "holidays",
        ("XX",),
        id="holidays-account-country",
    ),
    pytest.param(
        _set("country", "XX", lambda docs: calendar(docs, "business-hours")["holidays"]),
        "calendars.json",
        "/calendars/business-hours/holidays/country",
        "holidays",
        ("XX",),
        id="holidays-calendar-country",
    ),
    pytest.param(
        _set("calendar", "nine-to-five", lambda docs: tier(docs, "premier")),
        "tiers.json",
        "/tiers/premier/calendar",
        "unknown_calendar",
        ("nine-to-five",),
        id="unknown-calendar-tier",
    ),
    pytest.param(
        _set("calendar", "nine-to-five", _premier_rule),
        "tiers.json",
        "/tiers/premier/calendar_rules/0/calendar",
        "unknown_calendar",
        ("nine-to-five",),
        id="unknown-calendar-rule",
    ),
    pytest.param(
        _set("while_closed", "nine-to-five", _premier_routing),
        "tiers.json",
        "/tiers/premier/routing/0/while_closed",
        "unknown_calendar",
        ("nine-to-five",),
        id="unknown-calendar-routing",
    ),
    pytest.param(
        _delete("4", lambda docs: tier(docs, "premier")["targets"]),
        "tiers.json",
        "/tiers/premier/targets",
        "missing_level",
        ("4",),
        id="missing-level-target",
    ),
    pytest.param(
        _set("tier", "gold", lambda docs: subscription(docs, 2)),
        "accounts.json",
        "/accounts/0/subscriptions/2/tier",
        "unknown_tier",
        ("acme", "gold"),
        id="unknown-tier-subscription",
    ),
    pytest.param(
        _set("fallback_tier", "bronze", account),
        "accounts.json",
        "/accounts/0/fallback_tier",
        "unknown_tier",
        ("acme", "bronze"),
        id="unknown-tier-fallback",
    ),
    pytest.param(
        _set("default_tier", "bronze", lambda docs: docs["tiers.json"]),
        "tiers.json",
        "/default_tier",
        "unknown_tier",
        ("bronze",),
        id="unknown-tier-default",
    ),
    pytest.param(
        _set("products", ["jira"], subscription),
        "accounts.json",
        f"{PREMIER}/products/0",
        "unknown_product",
        ("jira",),
        id="unknown-product-subscription",
    ),
    pytest.param(
        _set("id", "acme", lambda docs: account(docs, 1)),
        "accounts.json",
        "/accounts/1/id",
        "duplicate_account",
        ("acme",),
        id="duplicate-account",
    ),
    pytest.param(
        _second_domain("acme.example"),
        "accounts.json",
        "/accounts/1/domains/1",
        "duplicate_domain",
        ("acme.example", "globex", "acme"),
        id="duplicate-domain",
    ),
    pytest.param(
        # Domains compare case-insensitively, as email addresses do.
        _second_domain("ACME.Example"),
        "accounts.json",
        "/accounts/1/domains/1",
        "duplicate_domain",
        ("ACME.Example", "globex", "acme"),
        id="duplicate-domain-case",
    ),
    pytest.param(
        _second_organization(360001),
        "accounts.json",
        "/accounts/2/organizations/zendesk/1",
        "duplicate_organization",
        ("initech", "zendesk:360001", "acme"),
        id="duplicate-organization",
    ),
    pytest.param(
        # Webhooks may carry the id as a string: "360001" is the same organization.
        _second_organization("360001"),
        "accounts.json",
        "/accounts/2/organizations/zendesk/1",
        "duplicate_organization",
        ("initech", "zendesk:360001", "acme"),
        id="duplicate-organization-as-string",
    ),
    pytest.param(
        _set("ends", "2025-12-31", subscription),
        "accounts.json",
        f"{PREMIER}/ends",
        "contract_dates",
        ("acme", "2025-12-31", "2026-01-01"),
        id="contract-ends-before-start",
    ),
    pytest.param(
        # `ends` is the first day no longer covered: ending on the start day covers nothing.
        _set("ends", "2026-01-01", subscription),
        "accounts.json",
        f"{PREMIER}/ends",
        "contract_dates",
        ("acme",),
        id="contract-ends-on-start",
    ),
]


@pytest.mark.parametrize(("mutate", "file", "pointer", "rule", "words"), SINGLE_PROBLEMS)
def test_single_problem(
    tmp_path: Path,
    mutate: Mutation,
    file: str,
    pointer: str,
    rule: str,
    words: tuple[str, ...],
) -> None:
    problems = check_mappings(broken(tmp_path, mutate))
    assert [where(p) for p in problems] == [(file, pointer, rule)]
    assert_mentions(problems[0].message, words)


# -- the contract rules of RULES.md §4 -----------------------------------------------


def _contacts(
    named: list[str],
    partner: list[str] | None = None,
    licenses: int = 1,
    shared: list[str] | None = None,
) -> Mutation:
    """acme's Premier subscription with exactly these contacts and licences."""

    def mutate(docs: Docs) -> None:
        sub = subscription(docs)
        sub["named_contacts"] = named
        sub["partner_contacts"] = partner or []
        sub["licenses"] = licenses
        if shared is not None:
            account(docs)["shared_mailboxes"] = shared

    return mutate


def direct(count: int) -> list[str]:
    return [f"person{i}@acme.example" for i in range(count)]


def partners(count: int) -> list[str]:
    return [f"Employee{i}_PartnerCo@acme.example" for i in range(count)]


LICENCE_CASES = [
    pytest.param(direct(3), [], 1, True, id="3-direct-on-1"),
    pytest.param(direct(4), [], 1, False, id="4-direct-on-1"),
    pytest.param(direct(6), [], 2, True, id="6-direct-on-2"),
    pytest.param(direct(7), [], 2, False, id="7-direct-on-2"),
    pytest.param(direct(2), partners(3), 1, True, id="2-direct-3-partner-on-1"),
    pytest.param(direct(0), partners(3), 1, True, id="0-direct-3-partner-on-1"),
    pytest.param(direct(3), partners(1), 1, False, id="3-direct-1-partner-on-1"),
    pytest.param(direct(2), partners(4), 1, False, id="2-direct-4-partner-on-1"),
    pytest.param(direct(2), partners(4), 2, True, id="2-direct-4-partner-on-2"),
    pytest.param(direct(4), partners(3), 2, True, id="4-direct-3-partner-on-2"),
]


@pytest.mark.parametrize(("named", "partner", "licenses", "fits"), LICENCE_CASES)
def test_licence_count(
    tmp_path: Path, named: list[str], partner: list[str], licenses: int, fits: bool
) -> None:
    problems = check_mappings(broken(tmp_path, _contacts(named, partner, licenses)))
    if fits:
        assert problems == []
        return
    # The excess is the whole list, not one address: the pointer is the list itself
    # (README: accounts.json#/accounts/0/subscriptions/0/named_contacts).
    assert [where(p) for p in problems] == [
        ("accounts.json", f"{PREMIER}/named_contacts", "too_many_contacts")
    ]
    assert_mentions(
        problems[0].message,
        (
            "account acme",
            f"{len(named)} direct and {len(partner)} partner",
            f"the contract has {licenses}",
        ),
    )


def test_too_many_contacts_says_how_many_licences_are_needed(tmp_path: Path) -> None:
    (problem,) = check_mappings(broken(tmp_path, _contacts(direct(4))))
    assert_mentions(problem.message, ("need 2 licence(s)", "has 1"))


def test_licence_numbers_are_mapping_settings(tmp_path: Path) -> None:
    # RULES.md: the numbers are settings. With 4 per licence, 4 direct contacts fit.
    def mutate(docs: Docs) -> None:
        docs["tiers.json"]["named_contacts"]["per_license"] = 4
        _contacts(direct(4))(docs)

    assert check_mappings(broken(tmp_path, mutate)) == []


CONTACT_CASES = [
    pytest.param(
        ["alice@acme.example"],
        ["john@acme.example"],
        None,
        "partner_contacts/0",
        "partner_format",
        id="partner-without-underscore",
    ),
    pytest.param(
        ["alice@acme.example"],
        ["JohnSmith_PartnerCompanyA@acme.example", "John_Smith_Co@acme.example"],
        None,
        "partner_contacts/1",
        "partner_format",
        id="partner-two-underscores",
    ),
    pytest.param(
        ["alice@acme.example"],
        ["_PartnerCo@acme.example"],
        None,
        "partner_contacts/0",
        "partner_format",
        id="partner-without-employee",
    ),
    pytest.param(
        ["alice@acme.example", "bob@partner.example"],
        [],
        None,
        "named_contacts/1",
        "foreign_domain",
        id="direct-foreign-domain",
    ),
    pytest.param(
        ["alice@acme.example"],
        ["JohnSmith_PartnerCompanyA@partnercompanya.example"],
        None,
        "partner_contacts/0",
        "foreign_domain",
        id="partner-on-partner-domain",
    ),
    pytest.param(
        # A look-alike domain is not a subdomain.
        ["alice@acme.example", "bob@evilacme.example"],
        [],
        None,
        "named_contacts/1",
        "foreign_domain",
        id="look-alike-domain",
    ),
    pytest.param(
        ["alice@acme.example", "bob@acme.example", "support@acme.example"],
        [],
        None,
        "named_contacts/2",
        "shared_mailbox",
        id="shared-support",
    ),
    pytest.param(
        ["Helpdesk@acme.example"],
        [],
        None,
        "named_contacts/0",
        "shared_mailbox",
        id="shared-uppercase",
    ),
    pytest.param(
        ["alice@acme.example", "support+x@acme.example"],
        [],
        None,
        "named_contacts/1",
        "shared_mailbox",
        id="shared-plus-tag",
    ),
    pytest.param(
        ["alice@acme.example", "Desk@ACME.example"],
        [],
        ["desk@acme.example"],
        "named_contacts/1",
        "shared_mailbox",
        id="shared-marked-by-account",
    ),
    pytest.param(
        ["bob@acme.example", "Bob@ACME.example"],
        [],
        None,
        "named_contacts/1",
        "duplicate_contact",
        id="duplicate-differing-in-case",
    ),
    pytest.param(
        ["JohnSmith_PartnerCompanyA@acme.example"],
        ["johnsmith_partnercompanya@acme.example"],
        None,
        "partner_contacts/0",
        "duplicate_contact",
        id="duplicate-across-lists",
    ),
]


@pytest.mark.parametrize(("named", "partner", "shared", "at", "rule"), CONTACT_CASES)
def test_contact_rule(
    tmp_path: Path,
    named: list[str],
    partner: list[str],
    shared: list[str] | None,
    at: str,
    rule: str,
) -> None:
    problems = check_mappings(broken(tmp_path, _contacts(named, partner, shared=shared)))
    field, index = at.split("/")
    address = (named if field == "named_contacts" else partner)[int(index)]
    assert [where(p) for p in problems] == [("accounts.json", f"{PREMIER}/{at}", rule)]
    # Naming the account and the address as written lets an admin find the line.
    assert_mentions(problems[0].message, ("account acme", address))


@pytest.mark.parametrize(
    ("named", "partner"),
    [
        pytest.param(["bob@eu.acme.example"], [], id="subdomain"),
        pytest.param(["Bob.Smith@Acme.Example"], [], id="mixed-case-domain"),
        pytest.param(["supporter@acme.example"], [], id="shared-name-as-prefix-only"),
        pytest.param([], ["Mary-Jane.O'Neil_Smith&Co@acme.example"], id="partner-punctuation"),
        pytest.param([], ["JohnSmith_PartnerCompanyA@ACME.example"], id="partner-domain-case"),
    ],
)
def test_contacts_that_are_fine(tmp_path: Path, named: list[str], partner: list[str]) -> None:
    assert check_mappings(broken(tmp_path, _contacts(named, partner))) == []


def test_every_contact_problem_is_listed(tmp_path: Path) -> None:
    mutate = _contacts(
        ["support@acme.example", "eve@other.example", "a@acme.example", "b@acme.example"],
        ["plain@acme.example"],
    )
    problems = check_mappings(broken(tmp_path, mutate))
    assert [(p.pointer, p.rule) for p in problems] == [
        (f"{PREMIER}/named_contacts/0", "shared_mailbox"),
        (f"{PREMIER}/named_contacts/1", "foreign_domain"),
        (f"{PREMIER}/partner_contacts/0", "partner_format"),
        (f"{PREMIER}/named_contacts", "too_many_contacts"),
    ]


def test_contacts_on_a_tier_without_named_contacts(tmp_path: Path) -> None:
    # Listing contacts where the tier ignores them is refused rather than silently kept.
    def mutate(docs: Docs) -> None:
        subscription(docs, 1)["named_contacts"] = ["alice@acme.example"]

    problems = check_mappings(broken(tmp_path, mutate))
    assert [where(p) for p in problems] == [
        ("accounts.json", "/accounts/0/subscriptions/1/named_contacts", "contacts_not_used")
    ]


def test_account_shared_mailbox_with_plus_tag(tmp_path: Path) -> None:
    mutate = _contacts(["desk+x@acme.example"], shared=["desk@acme.example"])
    problems = check_mappings(broken(tmp_path, mutate))
    assert [where(p) for p in problems] == [
        ("accounts.json", f"{PREMIER}/named_contacts/0", "shared_mailbox")
    ]


# -- every problem at once -----------------------------------------------------------


def _three_build_problems(docs: Docs) -> None:
    account(docs)["timezone"] = "Mars/Olympus_Mons"
    tier(docs, "select")["calendar"] = "nine-to-five"
    calendar(docs, "business-hours")["holidays"]["country"] = "XX"


def _three_schema_problems(docs: Docs) -> None:
    del account(docs, 1)["name"]
    tier(docs, "payg")["targets"]["1"] = "soon"
    _window(docs)["to"] = "17:60"


def test_every_problem_at_once(tmp_path: Path) -> None:
    problems = check_mappings(broken(tmp_path, _three_build_problems))
    assert sorted(where(p) for p in problems) == [
        ("accounts.json", "/accounts/0/timezone", "timezone"),
        ("calendars.json", "/calendars/business-hours/holidays/country", "holidays"),
        ("tiers.json", "/tiers/select/calendar", "unknown_calendar"),
    ]


def test_every_schema_problem_at_once(tmp_path: Path) -> None:
    problems = check_mappings(broken(tmp_path, _three_schema_problems))
    assert sorted(where(p) for p in problems) == [
        ("accounts.json", "/accounts/1", "required"),
        ("calendars.json", "/calendars/business-hours/windows/0/to", "pattern"),
        ("tiers.json", "/tiers/payg/targets/1", "pattern"),
    ]


def test_schema_problem_does_not_hide_contract_problems(tmp_path: Path) -> None:
    def mutate(docs: Docs) -> None:
        _window(docs)["to"] = "17:60"  # calendars.json: schema
        _contacts(direct(4))(docs)  # accounts.json: contract
        subscription(docs, 2)["tier"] = "gold"  # accounts.json: cross-file

    problems = check_mappings(broken(tmp_path, mutate))
    assert sorted(where(p) for p in problems) == [
        ("accounts.json", "/accounts/0/subscriptions/0/named_contacts", "too_many_contacts"),
        ("accounts.json", "/accounts/0/subscriptions/2/tier", "unknown_tier"),
        ("calendars.json", "/calendars/business-hours/windows/0/to", "pattern"),
    ]


# -- a broken mapping never yields a Rulebook ----------------------------------------


def test_load_refuses_with_every_problem(tmp_path: Path) -> None:
    directory = broken(tmp_path, _three_build_problems)
    with pytest.raises(MappingError) as caught:
        load_mappings(directory)
    problems = check_mappings(directory)
    assert len(problems) == 3
    assert caught.value.problems == tuple(problems)
    assert str(problems[0]) in str(caught.value)
    assert "(and 2 more)" in str(caught.value)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_set("schema_version", 2, lambda docs: docs["tiers.json"]), id="schema"),
        pytest.param(_contacts(direct(4)), id="contract"),
    ],
)
def test_load_refuses_single_problem(tmp_path: Path, mutate: Mutation) -> None:
    directory = broken(tmp_path, mutate)
    with pytest.raises(MappingError) as caught:
        load_mappings(directory)
    (problem,) = caught.value.problems
    assert check_mappings(directory) == [problem]
    assert str(caught.value) == f"mappings refused: {problem}"


def test_load_refuses_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as caught:
        load_mappings(tmp_path / "nowhere")
    assert [p.rule for p in caught.value.problems] == ["missing", "missing", "missing"]


def test_problem_renders_file_pointer_rule_message() -> None:
    problem = Problem("accounts.json", "/accounts/0/timezone", "timezone", "unknown zone")
    assert str(problem) == "accounts.json#/accounts/0/timezone: [timezone] unknown zone"
    assert problem.to_json() == {
        "file": "accounts.json",
        "pointer": "/accounts/0/timezone",
        "rule": "timezone",
        "message": "unknown zone",
    }


# -- bugs ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [pytest.param(True, id="true"), pytest.param(1.0, id="1.0")])
def test_odd_schema_version_is_reported_not_raised(tmp_path: Path, version: object) -> None:
    directory = broken(tmp_path, _set("schema_version", version, lambda d: d["accounts.json"]))
    # What a fresh `tierdesk mappings validate` sees: no validator cached yet. Without
    # this, the outcome would depend on which tests ran before.
    documents._validator.cache_clear()
    problems = check_mappings(directory)
    # 1.0 is the JSON number 1 (JSON Schema's const agrees) and may be accepted; true may
    # not. Either way the answer is a list of problems, never an exception.
    assert all(where(p) == ("accounts.json", "/schema_version", "schema_version") for p in problems)
    if version is True:
        assert len(problems) == 1


def test_unknown_subdivision_points_at_subdivision(tmp_path: Path) -> None:
    directory = broken(tmp_path, _set("subdivision", "ZZZ", _acme_holidays))
    problems = check_mappings(directory)
    assert [where(p) for p in problems] == [
        ("accounts.json", "/accounts/0/holidays/subdivision", "holidays")
    ]
