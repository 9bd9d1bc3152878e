"""What the mappings want the helpdesk to show, for `sync push`, kept on disk.

Read from accounts.json a stream at a time (and checked with the loader's rules while
at it), into three spool tables:

- ``want_accounts``: per account, its tier (the best-ranked subscription, as a decision
  names the account's tier; else its fallback) and its contacts and site admins;
- ``want_orgs``: the helpdesk's organization ids the mappings list, and their account;
- ``want_people``: per address (case-folded), the accounts it is a named contact of
  (and which kind) and the sites (SENs, or ``*``) it administers, each with its
  account: a person listed by two accounts is flagged for both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.directory import ANY_SITE, Contact, OrgWant, PersonWant
from mappings.problems import MappingError
from mappings.sync.accounts_file import ACCOUNTS, read_accounts
from mappings.sync.spool import Spool
from mappings.sync.validate import AccountsChecker, TierFacts

_SCHEMA = """
DROP TABLE IF EXISTS want_accounts;
DROP TABLE IF EXISTS want_orgs;
DROP TABLE IF EXISTS want_people;
CREATE TABLE want_accounts (id TEXT PRIMARY KEY, want TEXT NOT NULL);
CREATE TABLE want_orgs (org TEXT PRIMARY KEY, account TEXT NOT NULL);
CREATE TABLE want_people (
    email_key TEXT PRIMARY KEY, contacts TEXT NOT NULL, admin_of TEXT NOT NULL);
"""


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def account_want(account: dict[str, Any], facts: TierFacts) -> OrgWant:
    subs = [s for s in account.get("subscriptions", []) if isinstance(s, dict)]
    ranked = sorted(subs, key=lambda s: -facts.rank.get(s.get("tier", ""), 0))
    fallback = account.get("fallback_tier") or facts.default_tier
    named: list[str] = []
    partner: list[str] = []
    admins: list[tuple[str, str]] = []
    for sub in subs:
        kind = facts.entitlement.get(sub.get("tier", ""))
        if kind == "named_contacts":
            named += _strings(sub.get("named_contacts"))
            partner += _strings(sub.get("partner_contacts"))
        elif kind == "site_admins":
            site = sub.get("sen") or ANY_SITE
            admins += [(e, site) for e in _strings(sub.get("site_admins"))]
    return OrgWant(
        account=account["id"],
        tier=ranked[0]["tier"] if ranked else fallback,
        named_contacts=tuple(named),
        partner_contacts=tuple(partner),
        site_admins=tuple(admins),
    )


def load_wants(mappings_dir: Path, vendor: str, spool: Spool, checker: AccountsChecker) -> None:
    """Fill the want tables; `MappingError` (nothing to push) if the mappings do not load."""
    db = spool.db
    db.executescript(_SCHEMA)
    people: dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]]]] = {}
    with spool.transaction():
        _, accounts = read_accounts(mappings_dir / ACCOUNTS)
        for account in accounts:
            checker.add(account)
            if not (isinstance(account, dict) and isinstance(account.get("id"), str)):
                continue
            want = account_want(account, checker.facts)
            db.execute(
                "INSERT OR REPLACE INTO want_accounts VALUES (?, ?)",
                (want.account, json.dumps(_to_json(want))),
            )
            organizations = account.get("organizations")
            ids = organizations.get(vendor) if isinstance(organizations, dict) else None
            db.executemany(
                "INSERT OR IGNORE INTO want_orgs VALUES (?, ?)",
                [(str(org), want.account) for org in (ids if isinstance(ids, list) else [])],
            )
            people.clear()
            for kind, emails in (
                ("direct", want.named_contacts),
                ("partner", want.partner_contacts),
            ):
                for email in emails:
                    contacts = people.setdefault(email.strip().casefold(), (set(), set()))[0]
                    if not contacts:  # listed twice: the first list counts
                        contacts.add((want.account, kind))
            for email, site in want.site_admins:
                people.setdefault(email.strip().casefold(), (set(), set()))[1].add(
                    (want.account, site)
                )
            for key, (contacts, sites) in people.items():
                _add_person(spool, key, contacts, sites)
    problems = checker.finish()
    if problems:
        raise MappingError(problems)


def _add_person(
    spool: Spool, key: str, contacts: set[tuple[str, str]], sites: set[tuple[str, str]]
) -> None:
    """An address listed by several accounts is flagged for each of them."""
    row = spool.db.execute(
        "SELECT contacts, admin_of FROM want_people WHERE email_key = ?", (key,)
    ).fetchone()
    if row is not None:
        contacts = contacts | {(a, k) for a, k in json.loads(row[0])}
        sites = sites | {(a, s) for a, s in json.loads(row[1])}
    spool.db.execute(
        "INSERT OR REPLACE INTO want_people VALUES (?, ?, ?)",
        (key, json.dumps(sorted(contacts)), json.dumps(sorted(sites))),
    )


def _to_json(want: OrgWant) -> dict[str, Any]:
    return {
        "account": want.account,
        "tier": want.tier,
        "named_contacts": list(want.named_contacts),
        "partner_contacts": list(want.partner_contacts),
        "site_admins": [list(pair) for pair in want.site_admins],
    }


def org_want(spool: Spool, account: str) -> OrgWant | None:
    row = spool.db.execute("SELECT want FROM want_accounts WHERE id = ?", (account,)).fetchone()
    if row is None:
        return None
    data = json.loads(row[0])
    return OrgWant(
        account=data["account"],
        tier=data["tier"],
        named_contacts=tuple(data["named_contacts"]),
        partner_contacts=tuple(data["partner_contacts"]),
        site_admins=tuple((e, s) for e, s in data["site_admins"]),
    )


def org_account(spool: Spool, org_id: str, named: str | None) -> str | None:
    """The account an organization belongs to: the mappings' list, else the account its
    own field names, if the mappings have it."""
    row = spool.db.execute("SELECT account FROM want_orgs WHERE org = ?", (org_id,)).fetchone()
    if row is not None:
        return str(row[0])
    if named is not None:
        known = spool.db.execute("SELECT 1 FROM want_accounts WHERE id = ?", (named,)).fetchone()
        return named if known is not None else None
    return None


def person_want(spool: Spool, email: str, org_ids: tuple[str, ...]) -> PersonWant | None:
    """The flags a person should carry; None when no account of the mappings is theirs
    (their flags are then left alone: an admin may be preparing the next pull)."""
    key = email.strip().casefold()
    if key:
        row = spool.db.execute(
            "SELECT contacts, admin_of FROM want_people WHERE email_key = ?", (key,)
        ).fetchone()
        if row is not None:
            return PersonWant(
                tuple((a, _kind(k)) for a, k in json.loads(row[0])),
                tuple((a, s) for a, s in json.loads(row[1])),
            )
    for org in org_ids:
        if spool.db.execute("SELECT 1 FROM org_links WHERE org = ?", (org,)).fetchone():
            return PersonWant()  # of a tierdesk account, and none of its contacts
    return None


def _kind(text: str) -> Contact:
    return "partner" if text == "partner" else "direct"


def known_account(spool: Spool, account: str) -> bool:
    return (
        spool.db.execute("SELECT 1 FROM want_accounts WHERE id = ?", (account,)).fetchone()
        is not None
    )
