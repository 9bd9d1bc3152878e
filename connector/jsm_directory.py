"""JSM organizations and their customers as tierdesk's directory (``/rest/servicedeskapi``).

JSM has no custom fields on organizations or customers, so tierdesk keeps its data in
one organization property, ``tierdesk``::

    {"account": "acme", "tier": "premier",
     "named_contacts": ["alice@acme.example"],
     "partner_contacts": ["JohnSmith_PartnerCompanyA@acme.example"],
     "site_admins": [{"email": "hank@acme.example", "sen": "SEN-1234"}],
     "hours": "ok",
     "domains": ["acme.example"]}

``hours`` is a pay-as-you-go account's hours status (``ok``, ``low``, ``exhausted``,
from the hours ledger), written only when the push knows it (else left as it is).

``domains`` is read (for an account the mappings do not know yet), never written; other
keys an admin adds are kept on a push.

Reading: ``GET /organization`` with ``start``/``limit`` until ``isLastPage`` (the spec
does not require it: without it, a page is the last when it has no ``_links.next``
among its links, or holds fewer than ``limit`` values; an empty page always is); for
each organization ``GET /organization/{id}/property/tierdesk`` (404: not one of
tierdesk's), and for those that have it, their customers,
``GET /organization/{id}/user`` (paged the same way). A customer is a person of the
directory once per organization (id ``<organization id>/<accountId>``): the flags are
the organization's, so a customer of two organizations is two people, a named contact
of one and maybe not of the other; an address the property lists that is
no customer is one too (it is what the helpdesk says). None of these operations is
marked experimental in the published spec, so no ``X-ExperimentalApi`` header is sent.

Writing: ``PUT /organization/{id}/property/tierdesk`` with the whole value, only when
what tierdesk keeps in it differs (order and case of addresses aside).
"""

from __future__ import annotations

from typing import Any

from connector.directory import (
    ANY_SITE,
    UNSCOPED,
    Contact,
    DirectoryOrg,
    DirectoryPerson,
    OrgWant,
    Page,
    PersonWant,
    clean_email,
)
from connector.errors import ConnectorError, NotFound
from connector.http import HttpClient

PROPERTY = "tierdesk"
PAGE_SIZE = 50  # JSM's default and usual maximum for these lists
API = "/rest/servicedeskapi"


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


def _admins(value: Any) -> list[tuple[str, str]]:
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, str) and item.strip():
            out.append((item.strip(), ANY_SITE))
        elif isinstance(item, dict) and clean_email(item.get("email")):
            sen = item.get("sen")
            out.append((clean_email(item["email"]), sen if isinstance(sen, str) else ANY_SITE))
    return out


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def org_from(record: dict[str, Any], value: Any) -> DirectoryOrg:
    """An organization and its ``tierdesk`` property's value (None: it has none)."""
    prop = value if isinstance(value, dict) else {}
    return DirectoryOrg(
        id=str(record["id"]),
        name=str(record.get("name") or ""),
        domains=tuple(_strings(prop.get("domains"))),
        account=_text(prop.get("account")),
        tier=_text(prop.get("tier")),
        managed=value,
    )


def people_of(org: DirectoryOrg, customers: list[dict[str, Any]]) -> list[DirectoryPerson]:
    """The organization's customers, flagged as its property lists them, and every
    listed address that is no customer."""
    prop = org.managed if isinstance(org.managed, dict) else {}
    contact: dict[str, Contact] = {}
    spelled: dict[str, str] = {}  # case-folded → as the property writes it
    lists: tuple[tuple[Contact, str], ...] = (
        ("direct", "named_contacts"),
        ("partner", "partner_contacts"),
    )
    for kind, key in lists:
        for email in _strings(prop.get(key)):
            contact.setdefault(email.casefold(), kind)
            spelled.setdefault(email.casefold(), email)
    admin: dict[str, set[str]] = {}
    for email, sen in _admins(prop.get("site_admins")):
        admin.setdefault(email.casefold(), set()).add(sen)
        spelled.setdefault(email.casefold(), email)
    listed = dict.fromkeys(spelled)
    people = []
    for customer in customers:
        email = clean_email(customer.get("emailAddress"))
        key = email.casefold()
        listed.pop(key, None)
        people.append(
            DirectoryPerson(
                id=f"{org.id}/{customer.get('accountId') or key}",
                email=email,
                org_ids=(org.id,),
                contacts=_contacts(contact.get(key) if key else None),
                admin_of=_sites(admin.get(key, set()) if key else set()),
            )
        )
    for key in listed:
        people.append(
            DirectoryPerson(
                id=f"{org.id}/listed/{key}",
                email=spelled[key],
                org_ids=(org.id,),
                contacts=_contacts(contact.get(key)),
                admin_of=_sites(admin.get(key, set())),
            )
        )
    return people


def _contacts(kind: Contact | None) -> tuple[tuple[str, Contact], ...]:
    # The property is the organization's: its flags are for the organization's account.
    return ((UNSCOPED, kind),) if kind is not None else ()


def _sites(sens: set[str]) -> tuple[tuple[str, str], ...]:
    return tuple((UNSCOPED, sen) for sen in sorted(sens))


def _canonical(prop: Any, *, hours: bool) -> tuple[Any, ...]:
    prop = prop if isinstance(prop, dict) else {}
    return (
        _text(prop.get("hours")) if hours else None,
        _text(prop.get("account")),
        _text(prop.get("tier")),
        frozenset(e.casefold() for e in _strings(prop.get("named_contacts"))),
        frozenset(e.casefold() for e in _strings(prop.get("partner_contacts"))),
        frozenset((e.casefold(), s) for e, s in _admins(prop.get("site_admins"))),
    )


def org_update(org: DirectoryOrg, want: OrgWant) -> dict[str, Any] | None:
    """The property's new value (other keys kept), or None when it already says this."""
    ours: dict[str, Any] = {
        "account": want.account,
        "tier": want.tier,
        "named_contacts": list(want.named_contacts),
        "partner_contacts": list(want.partner_contacts),
        "site_admins": [
            {"email": e} if s == ANY_SITE else {"email": e, "sen": s} for e, s in want.site_admins
        ],
    }
    if want.hours is not None:
        ours["hours"] = want.hours
    hours = want.hours is not None
    if _canonical(org.managed, hours=hours) == _canonical(ours, hours=hours):
        return None
    current = org.managed if isinstance(org.managed, dict) else {}
    return {**current, **ours}


def _last_page(body: dict[str, Any], size: int, page_size: int) -> bool:
    """Whether a page that holds ``size`` values is the last one."""
    last = body.get("isLastPage")
    if isinstance(last, bool):
        return last
    links = body.get("_links")
    if isinstance(links, dict) and links:
        return not links.get("next")
    limit = body.get("limit")
    # The server's own limit: it may serve fewer than asked for on every page.
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
    return size < (limit or page_size)


class JsmDirectory:
    vendor = "jsm"
    # Customers come with their organization's page: their flags live on it.
    phases: tuple[str, ...] = ("organizations",)
    push_phases: tuple[str, ...] = ("organizations",)
    flags_on_orgs = True

    def __init__(self, client: HttpClient, *, page_size: int = PAGE_SIZE) -> None:
        self.client = client
        self.page_size = page_size

    def total(self, phase: str) -> int | None:
        return None  # JSM does not count organizations

    def _paged(self, path: str, start: int) -> tuple[list[dict[str, Any]], int | None]:
        params = {"start": str(start), "limit": str(self.page_size)}
        body = self.client.request("GET", path, params=params) or {}
        values = [v for v in body.get("values") or [] if isinstance(v, dict)]
        if not values or _last_page(body, len(values), self.page_size):
            return values, None
        after = int(body.get("start", start)) + len(values)
        if after <= start:
            # A server (or proxy) that ignores ``start`` would serve this page for ever.
            raise ConnectorError(
                f"JSM repeated the page at start={start} of {path} (next cursor {after})"
            )
        return values, after

    def page(self, phase: str, cursor: str | None, *, people: bool = True) -> Page:
        if phase != "organizations":
            raise ConnectorError(f"JSM has no directory phase {phase!r}")
        start = int(cursor) if cursor else 0
        records, after = self._paged(f"{API}/organization", start)
        calls = 1
        orgs, members = [], []
        for record in records:
            org_id = str(record["id"])
            calls += 1
            try:
                body = self.client.request(
                    "GET", f"{API}/organization/{org_id}/property/{PROPERTY}"
                )
            except NotFound:
                body = None  # not one of tierdesk's organizations
            org = org_from(record, (body or {}).get("value") if body is not None else None)
            orgs.append(org)
            if people and org.managed is not None:
                customers: list[dict[str, Any]] = []
                position: int | None = 0
                while position is not None:
                    calls += 1
                    batch, position = self._paged(f"{API}/organization/{org_id}/user", position)
                    customers.extend(batch)
                members.extend(people_of(org, customers))
        return Page(
            orgs=tuple(orgs),
            people=tuple(members),
            after=None if after is None else str(after),
            calls=calls,
        )

    def org_update(self, org: DirectoryOrg, want: OrgWant) -> dict[str, Any] | None:
        return org_update(org, want)

    def person_update(self, person: DirectoryPerson, want: PersonWant) -> None:
        return None  # a customer's flags live on the organization's property

    def write_org(self, org: DirectoryOrg, update: Any) -> None:
        self.client.request(
            "PUT", f"{API}/organization/{org.id}/property/{PROPERTY}", json_body=update
        )

    def write_person(self, person: DirectoryPerson, update: Any) -> None:
        raise ConnectorError("JSM customers carry no tierdesk data of their own")
