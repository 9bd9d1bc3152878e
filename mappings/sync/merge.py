"""What `sync pull` makes of one account: the file's account and what the helpdesk says
of it, merged. Pure: the helpdesk's records come in as a `View` and a `Lookup`.

The helpdesk is trusted for what it keeps (which organizations an account has, their
domains, the tier they show, who is flagged as a named contact or site admin); the
file keeps everything else (name, zone, holidays, licences, dates, hours, products).
Nothing is dropped on the helpdesk's silence:

- an account none of whose organizations the helpdesk has is kept as it is, and
  reported;
- an organization id the helpdesk does not have is kept, and reported; one it has
  under another account moves there;
- a named contact or site admin is removed only when the helpdesk shows a flag that
  both sides agreed on (tierdesk pushed it, or an earlier pull took it) and someone has
  cleared it since (`Lookup.shown`). A person whose flag for the account is empty, and
  was never shown, is *unknown*, not cleared: kept, and reported (a fresh `tierdesk
  setup` creates the fields empty; only a push fills them). An address the helpdesk has
  no one for is kept too;
- flags are per account: a person flagged for one account is taken for that account
  only, and keeps it whichever other accounts list them;
- subscriptions are only ever added: an organization showing a tier the account has
  no subscription for adds one (its licences, dates and contacts come from the file
  or the defaults); a lower tier shown is reported, not taken.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector.directory import ANY_SITE, Contact
from mappings.sync.validate import TierFacts


@dataclass(frozen=True, slots=True)
class Flags:
    """What the helpdesk says of one address."""

    contact: Contact | None
    admin_of: frozenset[str]


@dataclass(frozen=True, slots=True)
class OrgRow:
    id: str
    name: str
    domains: tuple[str, ...]
    tier: str | None


@dataclass(frozen=True, slots=True)
class FlaggedPerson:
    email: str
    contact: Contact | None
    admin_of: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class View:
    """The helpdesk's organizations of one account and its flagged people."""

    orgs: tuple[OrgRow, ...]
    flagged: tuple[FlaggedPerson, ...] = ()


class Lookup(Protocol):
    def flags(self, email: str, account: str) -> Flags | None:
        """What the helpdesk says of this address for this account; None when it has
        no such person at all."""

    def shown(self, email: str, account: str) -> Flags | None:
        """The flags of this address for this account that the helpdesk and the file
        last agreed on (recorded by push and pull); None when never."""

    def org_seen(self, org_id: str) -> bool:
        """Whether the helpdesk has this organization (under any account)."""


@dataclass(frozen=True, slots=True)
class Context:
    vendor: str
    facts: TierFacts


KEPT = "not in the helpdesk: kept as it is"
# How a note starts for a contact kept because the helpdesk shows nothing about them
# (the pull counts these apart).
UNKNOWN = "shows no flag"


@dataclass(slots=True)
class Removals:
    """What a merge removed, for the admin to see even in an unattended run."""

    lines: list[str] = field(default_factory=list)
    unknown: int = 0  # contacts kept because the helpdesk was never shown them

    def add(self, account: str, what: str, address: str) -> None:
        self.lines.append(
            f"{account}: {what} {address} removed: the helpdesk no longer shows the flag"
            " it showed at the last sync"
        )


def merge_account(
    doc: dict[str, Any],
    view: View,
    lookup: Lookup,
    ctx: Context,
    removals: Removals | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The account as it should now read, and notes on what was kept or not taken."""
    if not view.orgs:
        return doc, [KEPT]
    new = copy.deepcopy(doc)
    notes: list[str] = []
    removed = removals if removals is not None else Removals()
    account = str(new.get("id", ""))
    _organizations(new, view, lookup, ctx.vendor, notes)
    _domains(new, view)
    subs = _tiers(new, view, ctx.facts, notes)
    where = _Where(account, lookup, notes, removed)
    _contacts(subs, view, where, ctx.facts, notes)
    _admins(subs, view, where, ctx.facts, notes)
    return new, notes


def agreed(doc: dict[str, Any], lookup: Lookup, facts: TierFacts) -> list[FlaggedPerson]:
    """The account's contacts and site admins (of the merged result) that the helpdesk
    shows flagged for it: what both sides now agree on, to be recorded as shown."""
    account = str(doc.get("id", ""))
    contact: dict[str, Contact] = {}
    sites: dict[str, set[str]] = {}
    spelled: dict[str, str] = {}
    for sub in doc.get("subscriptions", []):
        if not isinstance(sub, dict):
            continue
        kind = facts.entitlement.get(sub.get("tier", ""))
        if kind == "named_contacts":
            lists: tuple[tuple[Contact, str], ...] = (
                ("direct", "named_contacts"),
                ("partner", "partner_contacts"),
            )
            for wanted, key in lists:
                for address in _strings(sub.get(key)):
                    flags = lookup.flags(address, account)
                    if flags is not None and flags.contact == wanted:
                        contact.setdefault(address.casefold(), wanted)
                        spelled.setdefault(address.casefold(), address)
        elif kind == "site_admins":
            token = str(sub.get("sen") or ANY_SITE)
            for address in _strings(sub.get("site_admins")):
                flags = lookup.flags(address, account)
                if flags is not None and (token in flags.admin_of or ANY_SITE in flags.admin_of):
                    sites.setdefault(address.casefold(), set()).add(token)
                    spelled.setdefault(address.casefold(), address)
    return [
        FlaggedPerson(spelled[key], contact.get(key), tuple(sorted(sites.get(key, ()))))
        for key in sorted(spelled)
    ]


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class _Where:
    """One account's merge: whom to ask, and where to say what happened."""

    account: str
    lookup: Lookup
    notes: list[str]
    removals: Removals


def new_account(
    account_id: str, view: View, lookup: Lookup, ctx: Context
) -> tuple[dict[str, Any], list[str]]:
    """An account the helpdesk names and the file does not have yet. Its zone is the
    mappings' default (the helpdesk does not say); its domains are its organizations'."""
    skeleton = {
        "id": account_id,
        "name": next((o.name for o in view.orgs if o.name), account_id),
        "domains": [],
        "timezone": ctx.facts.default_timezone,
    }
    account, notes = merge_account(skeleton, view, lookup, ctx)
    return account, [f"new: timezone {ctx.facts.default_timezone} (the mappings' default)", *notes]


def _org_key(org_id: str) -> tuple[int, str]:
    return len(org_id), org_id  # numeric ids in numeric order


def _org_value(vendor: str, org_id: str) -> int | str:
    # Zendesk ids are numbers (as the bundled file writes them); JSM's are strings.
    return int(org_id) if vendor == "zendesk" and org_id.isdigit() else org_id


def _organizations(
    new: dict[str, Any], view: View, lookup: Lookup, vendor: str, notes: list[str]
) -> None:
    organizations = new.setdefault("organizations", {})
    linked = sorted((o.id for o in view.orgs), key=_org_key)
    linked_set = set(linked)
    kept = []
    for value in organizations.get(vendor, []):
        key = str(value)
        if key in linked_set:
            kept.append(value)
        elif lookup.org_seen(key):
            notes.append(f"organization {vendor}:{key} belongs to another account in the helpdesk")
        else:
            kept.append(value)
            notes.append(f"organization {vendor}:{key} is not in the helpdesk: kept")
    have = {str(v) for v in kept}
    kept.extend(_org_value(vendor, k) for k in linked if k not in have)
    organizations[vendor] = kept


def _domains(new: dict[str, Any], view: View) -> None:
    domains = new.setdefault("domains", [])
    known = {d.casefold() for d in domains if isinstance(d, str)}
    for org in view.orgs:
        for domain in org.domains:
            if domain.casefold() not in known:
                domains.append(domain)
                known.add(domain.casefold())


def _tiers(new: dict[str, Any], view: View, facts: TierFacts, notes: list[str]) -> list[Any]:
    subs: list[Any] = new.get("subscriptions", [])
    have = {s.get("tier") for s in subs if isinstance(s, dict)}
    fallback = new.get("fallback_tier") or facts.default_tier
    ranked = sorted((t for t in have if isinstance(t, str)), key=lambda t: -facts.rank.get(t, 0))
    best = ranked[0] if ranked else fallback
    for tier in sorted({o.tier for o in view.orgs if o.tier}):
        if tier in have or tier == fallback:
            if tier != best:
                notes.append(
                    f"the helpdesk shows tier {tier}, the mappings' best is {best}: "
                    "kept (sync push shows it)"
                )
            continue
        subs.append({"tier": tier})
        have.add(tier)
        notes.append(f"subscription to tier {tier} added: the helpdesk shows it")
    if subs and "subscriptions" not in new:
        new["subscriptions"] = subs
    return subs


def _kept(
    addresses: list[Any],
    still: Callable[[Flags], bool],
    where: _Where,
    what: str,
    moved: Callable[[Flags], bool] = lambda flags: False,
) -> list[Any]:
    """The addresses the helpdesk does not contradict. One goes only when the helpdesk
    has the person, does not flag them (``still``) for this account, and did at the last
    sync: someone cleared the flag. Never shown, an empty flag says nothing: kept. A
    person the helpdesk flags otherwise (``moved``: a partner now, not direct) goes from
    this list to the other one."""
    kept = []
    unknown = []
    for address in addresses:
        if not isinstance(address, str):
            kept.append(address)
            continue
        flags = where.lookup.flags(address, where.account)
        if flags is None:
            kept.append(address)
            where.notes.append(f"{what} {address}: no such person in the helpdesk: kept")
        elif still(flags):
            kept.append(address)
        elif moved(flags):
            continue  # the helpdesk says which list: the flagged people add them there
        else:
            shown = where.lookup.shown(address, where.account)
            if shown is not None and still(shown):
                where.removals.add(where.account, what, address)
            else:
                kept.append(address)
                unknown.append(address)
    if unknown:
        where.removals.unknown += len(unknown)
        where.notes.append(
            f"{len(unknown)} {what}(s) kept ({', '.join(unknown[:5])}"
            f"{', …' if len(unknown) > 5 else ''}): the helpdesk {UNKNOWN} for them that"
            " tierdesk pushed or took (never synced); `tierdesk sync push` shows them"
        )
    return kept


def _is_contact(kind: Contact) -> Callable[[Flags], bool]:
    return lambda flags: flags.contact == kind


def _contacts(
    subs: list[Any], view: View, where: _Where, facts: TierFacts, notes: list[str]
) -> None:
    flagged = [p for p in view.flagged if p.contact is not None]
    targets = [
        s
        for s in subs
        if isinstance(s, dict) and facts.entitlement.get(s.get("tier", "")) == "named_contacts"
    ]
    if not targets:
        if flagged:
            notes.append(
                f"{len(flagged)} named contact(s) flagged in the helpdesk, but the account "
                "has no named-contact subscription: not taken"
            )
        return
    target = targets[0]
    lists: dict[Contact, list[Any]] = {}
    listed: set[str] = set()
    keys: tuple[tuple[Contact, str], ...] = (
        ("direct", "named_contacts"),
        ("partner", "partner_contacts"),
    )
    for kind, key in keys:
        lists[kind] = _kept(
            list(target.get(key, [])),
            _is_contact(kind),
            where,
            "named contact",
            moved=lambda flags: flags.contact is not None,
        )
        listed |= {a.casefold() for a in lists[kind] if isinstance(a, str)}
    for person in flagged:
        if person.contact is not None and person.email.casefold() not in listed:
            lists[person.contact].append(person.email)
            listed.add(person.email.casefold())
    for kind, key in keys:
        if lists[kind] or key in target:
            target[key] = lists[kind]


def _admins(subs: list[Any], view: View, where: _Where, facts: TierFacts, notes: list[str]) -> None:
    targets = [
        s
        for s in subs
        if isinstance(s, dict) and facts.entitlement.get(s.get("tier", "")) == "site_admins"
    ]
    tokens = {str(s.get("sen") or ANY_SITE) for s in targets}
    for sub in targets:
        token = str(sub.get("sen") or ANY_SITE)

        def administers(admin_of: frozenset[str] | tuple[str, ...], token: str = token) -> bool:
            return token in admin_of or ANY_SITE in admin_of

        kept = _kept(
            list(sub.get("site_admins", [])),
            lambda f: administers(f.admin_of),
            where,
            "site admin",
        )
        listed = {a.casefold() for a in kept if isinstance(a, str)}
        for person in view.flagged:
            if administers(person.admin_of) and person.email.casefold() not in listed:
                kept.append(person.email)
                listed.add(person.email.casefold())
        if kept or "site_admins" in sub:
            sub["site_admins"] = kept
    stray = sorted(
        {t for p in view.flagged for t in p.admin_of if t != ANY_SITE and t not in tokens}
    )
    if stray:
        notes.append(
            f"site admins flagged for {', '.join(stray)}, which no subscription of the "
            "account holds: not taken"
        )
    if not targets and any(p.admin_of for p in view.flagged) and not stray:
        notes.append("site admins flagged in the helpdesk, but the account has no Priority site")


# -- what changed -------------------------------------------------------------------------


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Field by field: ``domains: +acme.co``, ``subscriptions[0].named_contacts: +a, -b``,
    ``timezone: "UTC" -> "Europe/London"``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in [*old, *(k for k in new if k not in old)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{where}: removed (was {_show(old[key])})")
            elif key not in old:
                out.append(f"{where}: {_show(new[key])} (new)")
            else:
                out.extend(changes(old[key], new[key], where))
        return out
    if isinstance(old, list) and isinstance(new, list):
        if all(not isinstance(v, dict | list) for v in [*old, *new]):
            added = [v for v in new if v not in old]
            removed = [v for v in old if v not in new]
            parts = [f"+{_plain(v)}" for v in added] + [f"-{_plain(v)}" for v in removed]
            if parts:
                return [f"{path}: {', '.join(parts)}"]
            return [f"{path}: reordered"] if old != new else []
        out = []
        for i in range(max(len(old), len(new))):
            where = f"{path}[{i}]"
            if i >= len(new):
                out.append(f"{where}: removed (was {_show(old[i])})")
            elif i >= len(old):
                out.append(f"{where}: {_show(new[i])} (new)")
            else:
                out.extend(changes(old[i], new[i], where))
        return out
    return [] if old == new else [f"{path}: {_show(old)} -> {_show(new)}"]


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else _show(value)
