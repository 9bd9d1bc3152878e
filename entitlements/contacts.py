"""Who may open a ticket on a tier (RULES.md §4).

Premier: named contacts, three per licence, or per licence two direct and three
partner contacts written ``(PartnerEmployee)_(PartnerCompany)@(CustomerDomain)``.
Every contact is an individual on one of the account's domains. Priority: admins of
the site (SEN) that carries it. Addresses compare case-insensitively, local part and
domain alike.

The same rules serve twice: `contract_problems` refuses a mapping that breaks them,
and `check_requester` says whether one requester is entitled and why not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from entitlements.accounts import Account, Subscription

ContactStatus = Literal["valid", "invalid", "not_required"]

# Each half of a partner address's local part: letters or digits first, then the
# punctuation real names use. The one underscore between them is checked apart.
_PARTNER_HALF = re.compile(r"[^\W_][\w.&'-]*")


@dataclass(frozen=True, slots=True)
class ContactPolicy:
    """The named-contact numbers and the shared-mailbox names: mapping settings."""

    per_license: int = 3
    partner_direct: int = 2
    partner_contacts: int = 3
    shared_mailboxes: frozenset[str] = frozenset()  # local parts, e.g. "support"


@dataclass(frozen=True, slots=True)
class ContactCheck:
    status: ContactStatus
    reason: str | None = (
        None  # not_listed, shared_mailbox, foreign_domain, partner_format, not_admin
    )
    detail: str = ""

    def to_json(self) -> dict[str, str | None]:
        return {"status": self.status, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ContactProblem:
    """A contract that breaks a contact rule; ``field`` and ``index`` locate the address."""

    field: str
    index: int | None
    address: str
    rule: str
    message: str


NOT_REQUIRED = ContactCheck("not_required")


def normalize(address: str) -> str:
    return address.strip().casefold()


def split(address: str) -> tuple[str, str]:
    local, _, domain = normalize(address).rpartition("@")
    return local, domain


def on_domains(domain: str, domains: tuple[str, ...]) -> bool:
    """True for one of ``domains`` or a subdomain of one."""
    return any(domain == d or domain.endswith("." + d) for d in domains)


def is_shared(address: str, account: Account, policy: ContactPolicy) -> bool:
    local, domain = split(address)
    # "support+acme@" is still the support mailbox, and so is "desk+x@" when the
    # account lists "desk@" as shared.
    base = local.partition("+")[0]
    return base in policy.shared_mailboxes or f"{base}@{domain}" in account.shared_mailboxes


def is_partner_form(local: str) -> bool:
    """``employee_company``: exactly one underscore, a name on each side."""
    employee, _, company = local.partition("_")
    return local.count("_") == 1 and all(_PARTNER_HALF.fullmatch(p) for p in (employee, company))


def licenses_needed(direct: int, partner: int, policy: ContactPolicy) -> int:
    """The fewest licences that hold ``direct`` and ``partner`` contacts."""
    partner_licenses = math.ceil(partner / policy.partner_contacts) if partner else 0
    direct_room = partner_licenses * policy.partner_direct
    extra_direct = max(direct - direct_room, 0)
    return partner_licenses + math.ceil(extra_direct / policy.per_license)


def contract_problems(
    sub: Subscription, account: Account, policy: ContactPolicy
) -> list[ContactProblem]:
    """Every way ``sub``'s named contacts break RULES.md §4 (empty when none)."""
    problems: list[ContactProblem] = []
    seen: dict[str, str] = {}
    lists = (("named_contacts", sub.named_contacts), ("partner_contacts", sub.partner_contacts))
    for field_name, addresses in lists:
        for i, address in enumerate(addresses):
            problem = _address_problem(address, field_name == "partner_contacts", account, policy)
            if problem is None and normalize(address) in seen:
                problem = (
                    "duplicate_contact",
                    f"{address} is listed twice (also in {seen[normalize(address)]})",
                )
            seen.setdefault(normalize(address), field_name)
            if problem is not None:
                problems.append(ContactProblem(field_name, i, address, *problem))
    needed = licenses_needed(len(sub.named_contacts), len(sub.partner_contacts), policy)
    if needed > sub.licenses:
        problems.append(
            ContactProblem(
                "named_contacts",
                None,
                "",
                "too_many_contacts",
                f"{len(sub.named_contacts)} direct and {len(sub.partner_contacts)} partner "
                f"contacts need {needed} licence(s) but the contract has {sub.licenses} "
                f"({policy.per_license} contacts per licence, or {policy.partner_direct} direct "
                f"+ {policy.partner_contacts} partner)",
            )
        )
    return problems


def _address_problem(
    address: str, partner: bool, account: Account, policy: ContactPolicy
) -> tuple[str, str] | None:
    local, domain = split(address)
    if not local or not domain:
        return "address", f"{address!r} is not an email address"
    if not on_domains(domain, account.domains):
        return (
            "foreign_domain",
            f"{address} is not on the account's domains {list(account.domains)}",
        )
    if is_shared(address, account, policy):
        return "shared_mailbox", f"{address} is a shared mailbox; named contacts are individuals"
    if partner and not is_partner_form(local):
        return (
            "partner_format",
            f"{address} is not of the form PartnerEmployee_PartnerCompany@{domain}",
        )
    return None


def check_requester(
    requester: str | None, sub: Subscription, account: Account, policy: ContactPolicy, kind: str
) -> ContactCheck:
    """Whether ``requester`` may open tickets on ``sub``; ``kind`` is the tier's
    entitlement rule: ``named_contacts``, ``site_admins`` or ``none``."""
    if kind == "none":
        return NOT_REQUIRED
    if not requester:
        return ContactCheck("invalid", "not_listed", "the ticket names no requester")
    address = normalize(requester)
    if kind == "site_admins":
        if address in sub.admin_set:
            return ContactCheck(
                "valid", None, f"{requester} is an admin of {sub.sen or 'the site'}"
            )
        return ContactCheck(
            "invalid", "not_admin", f"{requester} is not an admin of {sub.sen or 'the site'}"
        )
    if address in sub.contact_set:
        return ContactCheck("valid", None, f"{requester} is a named contact")
    local, domain = split(address)
    if is_shared(address, account, policy):
        return ContactCheck("invalid", "shared_mailbox", f"{requester} is a shared mailbox")
    if not on_domains(domain, account.domains):
        if _looks_like_listed_partner(local, domain, sub):
            return ContactCheck(
                "invalid",
                "partner_format",
                f"{requester} writes from the partner's own domain; partner contacts must use "
                "their PartnerEmployee_PartnerCompany address on the customer's domain",
            )
        return ContactCheck(
            "invalid", "foreign_domain", f"{requester} is not on the account's domains"
        )
    return ContactCheck("invalid", "not_listed", f"{requester} is not a named contact")


def _letters(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text)


def _looks_like_listed_partner(local: str, domain: str, sub: Subscription) -> bool:
    """``john.smith@partnercompanya.com`` when ``JohnSmith_PartnerCompanyA@…`` is listed."""
    for listed in sub.partner_contacts:
        employee, _, company = split(listed)[0].partition("_")
        if _letters(local) == _letters(employee) and _letters(company) in _letters(domain):
            return True
    return False
