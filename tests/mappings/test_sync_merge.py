"""What `sync pull` makes of one account (`mappings.sync.merge`): pure, case by case.

Accounts are the bundled acme account (Premier with a direct and a partner contact,
Priority SEN-1234 with hank as site admin, pay-as-you-go) with the helpdesk's view
written out by hand in each case."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from mappings import BUNDLED
from mappings.sync.merge import (
    KEPT,
    Context,
    FlaggedPerson,
    Flags,
    OrgRow,
    Removals,
    View,
    changes,
    merge_account,
    new_account,
)
from mappings.sync.validate import TierFacts

FACTS = TierFacts(
    entitlement={
        "premier": "named_contacts",
        "priority": "site_admins",
        "payg": "none",
        "select": "none",
        "saas-24x7": "none",
    },
    rank={"premier": 40, "saas-24x7": 35, "priority": 30, "payg": 20, "select": 10},
    default_tier="select",
    default_timezone="UTC",
)
CTX = Context("zendesk", FACTS)
BUNDLED_ACCOUNTS = json.loads((BUNDLED / "accounts.json").read_text(encoding="utf-8"))["accounts"]


def acme() -> dict[str, Any]:
    return copy.deepcopy(BUNDLED_ACCOUNTS[0])


@dataclass
class Helpdesk:
    """A Lookup: the helpdesk's people by address, and the organizations it has."""

    people: dict[str, Flags] = field(default_factory=dict)
    orgs: set[str] = field(default_factory=set)
    # What the helpdesk showed at the last sync (push or pull), by address.
    synced: dict[str, Flags] = field(default_factory=dict)

    def flags(self, email: str, account: str) -> Flags | None:
        return self.people.get(email.casefold())

    def shown(self, email: str, account: str) -> Flags | None:
        return self.synced.get(email.casefold())

    def org_seen(self, org_id: str) -> bool:
        return org_id in self.orgs


ACME_ORG = OrgRow("360001", "Acme", ("acme.example",), None)
ALICE = FlaggedPerson("alice@acme.example", "direct", ())
JOHN = FlaggedPerson("JohnSmith_PartnerCompanyA@acme.example", "partner", ())
HANK = FlaggedPerson("hank@acme.example", None, ("SEN-1234",))


def flags(*people: FlaggedPerson) -> dict[str, Flags]:
    return {p.email.casefold(): Flags(p.contact, frozenset(p.admin_of)) for p in people}


def helpdesk(*people: FlaggedPerson, orgs: tuple[str, ...] = ("360001",)) -> Helpdesk:
    return Helpdesk(flags(*people), set(orgs))


def test_an_account_the_helpdesk_does_not_have_is_kept_as_it_is() -> None:
    before = acme()
    after, notes = merge_account(before, View(()), helpdesk(), CTX)
    assert after == before
    assert notes == [KEPT]


def test_nothing_changes_when_the_helpdesk_agrees() -> None:
    view = View((ACME_ORG,), (ALICE, JOHN, HANK))
    after, notes = merge_account(acme(), view, helpdesk(ALICE, JOHN, HANK), CTX)
    assert after == acme()
    assert notes == []


def test_organizations_and_domains_are_added() -> None:
    orgs = (ACME_ORG, OrgRow("360009", "Acme EU", ("acme.eu", "ACME.example"), None))
    after, _ = merge_account(acme(), View(orgs), helpdesk(ALICE, JOHN, HANK), CTX)
    assert after["organizations"] == {"zendesk": [360001, 360009], "jsm": ["7"]}
    assert after["domains"] == ["acme.example", "acme.eu"]  # ACME.example is the same domain


def test_an_organization_the_helpdesk_does_not_have_is_kept_and_reported() -> None:
    before = acme()
    before["organizations"]["zendesk"] = [360001, 360005]
    after, notes = merge_account(before, View((ACME_ORG,)), helpdesk(ALICE, JOHN, HANK), CTX)
    assert after["organizations"]["zendesk"] == [360001, 360005]
    assert notes == ["organization zendesk:360005 is not in the helpdesk: kept"]


def test_an_organization_under_another_account_moves() -> None:
    before = acme()
    before["organizations"]["zendesk"] = [360001, 360005]
    people = helpdesk(ALICE, JOHN, HANK, orgs=("360001", "360005"))
    after, notes = merge_account(before, View((ACME_ORG,)), people, CTX)
    assert after["organizations"]["zendesk"] == [360001]
    assert notes == ["organization zendesk:360005 belongs to another account in the helpdesk"]


def test_a_tier_the_account_lacks_adds_a_subscription() -> None:
    before = acme()
    del before["subscriptions"][0]  # no Premier any more
    org = OrgRow("360001", "Acme", (), "premier")
    after, notes = merge_account(before, View((org,), (ALICE,)), helpdesk(ALICE, HANK), CTX)
    assert after["subscriptions"][-1] == {
        "tier": "premier",
        "named_contacts": ["alice@acme.example"],
    }
    assert notes == ["subscription to tier premier added: the helpdesk shows it"]


@pytest.mark.parametrize("tier", ["select", "priority"])
def test_a_lower_tier_shown_is_reported_not_taken(tier: str) -> None:
    org = OrgRow("360001", "Acme", (), tier)
    after, notes = merge_account(
        acme(), View((org,), (ALICE, JOHN, HANK)), helpdesk(ALICE, JOHN, HANK), CTX
    )
    assert after == acme()
    assert notes == [
        f"the helpdesk shows tier {tier}, the mappings' best is premier: kept (sync push shows it)"
    ]


def test_a_flagged_person_becomes_a_named_contact() -> None:
    bob = FlaggedPerson("Bob@acme.example", "direct", ())
    view = View((ACME_ORG,), (ALICE, bob, JOHN, HANK))
    after, _ = merge_account(acme(), view, helpdesk(ALICE, bob, JOHN, HANK), CTX)
    assert after["subscriptions"][0]["named_contacts"] == ["alice@acme.example", "Bob@acme.example"]


def test_a_contact_whose_flag_was_cleared_since_the_last_sync_is_removed() -> None:
    cleared = FlaggedPerson("alice@acme.example", None, ())
    view = View((ACME_ORG,), (JOHN, HANK))
    people = helpdesk(cleared, JOHN, HANK)
    people.synced = flags(ALICE, JOHN, HANK)  # pushed: the helpdesk showed alice then
    removals = Removals()
    after, notes = merge_account(acme(), view, people, CTX, removals)
    assert after["subscriptions"][0]["named_contacts"] == []
    assert notes == []
    assert changes(acme(), after) == ["subscriptions[0].named_contacts: -alice@acme.example"]
    assert removals.lines == [
        "acme: named contact alice@acme.example removed: the helpdesk no longer shows the"
        " flag it showed at the last sync"
    ]


def test_an_empty_flag_never_synced_is_unknown_and_the_contact_is_kept() -> None:
    # A fresh `tierdesk setup`: every flag field is empty, and nothing was pushed yet.
    empty = [FlaggedPerson(p.email, None, ()) for p in (ALICE, JOHN, HANK)]
    removals = Removals()
    after, notes = merge_account(acme(), View((ACME_ORG,)), helpdesk(*empty), CTX, removals)
    assert after == acme()
    assert removals.lines == []
    assert removals.unknown == 3
    why = (
        ": the helpdesk shows no flag for them that tierdesk pushed or took (never synced);"
        " `tierdesk sync push` shows them"
    )
    assert notes == [
        "1 named contact(s) kept (alice@acme.example)" + why,
        "1 named contact(s) kept (JohnSmith_PartnerCompanyA@acme.example)" + why,
        "1 site admin(s) kept (hank@acme.example)" + why,
    ]


def test_a_flag_synced_for_another_account_does_not_remove_this_ones_contact() -> None:
    cleared = FlaggedPerson("alice@acme.example", None, ())

    @dataclass
    class Scoped(Helpdesk):
        def shown(self, email: str, account: str) -> Flags | None:
            return super().shown(email, account) if account == "globex" else None

    people = Scoped(flags(cleared, JOHN, HANK), {"360001"}, flags(ALICE))
    after, _ = merge_account(acme(), View((ACME_ORG,), (JOHN, HANK)), people, CTX)
    assert after == acme()


def test_a_contact_with_no_person_in_the_helpdesk_is_kept_and_reported() -> None:
    view = View((ACME_ORG,), (JOHN, HANK))
    after, notes = merge_account(acme(), view, helpdesk(JOHN, HANK), CTX)
    assert after == acme()
    assert notes == ["named contact alice@acme.example: no such person in the helpdesk: kept"]


def test_a_contact_flagged_partner_moves_to_the_partner_list() -> None:
    alice = FlaggedPerson("alice@acme.example", "partner", ())
    view = View((ACME_ORG,), (alice, JOHN, HANK))
    after, _ = merge_account(acme(), view, helpdesk(alice, JOHN, HANK), CTX)
    sub = after["subscriptions"][0]
    assert sub["named_contacts"] == []
    assert sub["partner_contacts"] == [
        "JohnSmith_PartnerCompanyA@acme.example",
        "alice@acme.example",
    ]


def test_contacts_without_a_named_contact_subscription_are_reported() -> None:
    before = acme()
    del before["subscriptions"][0]
    view = View((ACME_ORG,), (ALICE, HANK))
    after, notes = merge_account(before, view, helpdesk(ALICE, HANK), CTX)
    assert after == before
    assert notes == [
        "1 named contact(s) flagged in the helpdesk, but the account has no named-contact "
        "subscription: not taken"
    ]


def test_site_admins_follow_their_sen() -> None:
    hank = FlaggedPerson("hank@acme.example", None, ())  # no longer an admin
    ivy = FlaggedPerson("ivy@acme.example", None, ("SEN-1234",))
    stray = FlaggedPerson("sam@acme.example", None, ("SEN-9",))
    view = View((ACME_ORG,), (ALICE, JOHN, ivy, stray))
    people = helpdesk(ALICE, JOHN, hank, ivy, stray)
    people.synced = flags(HANK)
    after, notes = merge_account(acme(), view, people, CTX)
    assert after["subscriptions"][1]["site_admins"] == ["ivy@acme.example"]
    assert notes == [
        "site admins flagged for SEN-9, which no subscription of the account holds: not taken"
    ]


def test_any_site_means_every_priority_subscription() -> None:
    before = acme()
    del before["subscriptions"][1]["sen"]
    star = FlaggedPerson("hank@acme.example", None, ("*",))
    after, notes = merge_account(
        before, View((ACME_ORG,), (ALICE, JOHN, star)), helpdesk(ALICE, JOHN, star), CTX
    )
    assert after == before
    assert notes == []


def test_a_new_account_from_the_helpdesk() -> None:
    orgs = (
        OrgRow("501", "Newco EU", ("newco.eu",), "premier"),
        OrgRow("500", "Newco Ltd", ("newco.example",), "premier"),
    )
    nina = FlaggedPerson("nina@newco.example", "direct", ())
    account, notes = new_account(
        "newco", View(orgs, (nina,)), helpdesk(nina, orgs=("500", "501")), CTX
    )
    assert account == {
        "id": "newco",
        "name": "Newco EU",
        "domains": ["newco.eu", "newco.example"],
        "timezone": "UTC",
        "organizations": {"zendesk": [500, 501]},
        "subscriptions": [{"tier": "premier", "named_contacts": ["nina@newco.example"]}],
    }
    assert notes[0] == "new: timezone UTC (the mappings' default)"


def test_jsm_organization_ids_stay_strings() -> None:
    account, _ = new_account(
        "x", View((OrgRow("12", "X", ("x.example",), None),)), helpdesk(), Context("jsm", FACTS)
    )
    assert account["organizations"] == {"jsm": ["12"]}


def test_changes_field_by_field() -> None:
    before = acme()
    after = acme()
    after["timezone"] = "Europe/Paris"
    after["domains"].append("acme.co")
    after["subscriptions"][0]["named_contacts"] = ["bob@acme.example"]
    after["subscriptions"].append({"tier": "select"})
    del after["holidays"]
    assert changes(before, after) == [
        "domains: +acme.co",
        'timezone: "Europe/London" -> "Europe/Paris"',
        'holidays: removed (was {"dates": ["2026-12-25"], "country": "GB", "subdivision": "ENG"})',
        "subscriptions[0].named_contacts: +bob@acme.example, -alice@acme.example",
        'subscriptions[3]: {"tier": "select"} (new)',
    ]
    assert changes(before, acme()) == []
