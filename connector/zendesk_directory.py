"""Zendesk organizations and users as tierdesk's directory (Support API ``/api/v2``).

Reading: ``GET /api/v2/organizations`` and ``GET /api/v2/users`` with cursor
pagination, ``page[size]=100`` (the most a page holds), the next page's
``page[after]`` taken from ``links.next``, until ``meta.has_more`` is false (the
last page may still carry a ``links.next``: vendor/README.md, erratum 3 and the
ticket_fields sample). The next page is always asked of the tenant's own host with
our own path: only the cursor is taken from the link, whose host may differ (the
recorded pages name another host than the one they were fetched from).

What tierdesk keeps on them (custom fields `tierdesk setup zendesk` creates):

- organization ``tierdesk_account`` (text): the account id in accounts.json;
- organization ``tierdesk_tier`` (drop-down or text): the account's tier, as a decision
  names it (its best-ranked subscription, else its fallback);
- organization ``tierdesk_hours`` (text): a pay-as-you-go account's hours status, ``ok``,
  ``low`` or ``exhausted`` (from the hours ledger; written only when the push knows it);
- user ``tierdesk_named_contact`` (text): ``<account>:direct`` or ``<account>:partner``
  for each account the user is a named contact of, space-separated (``acme:direct
  globex:partner``); empty when they are none;
- user ``tierdesk_site_admin`` (text): ``<account>:<SEN>`` for each Priority site the
  user administers, space-separated; ``<account>:*`` for a subscription without a SEN.

Flags name their account, so that a person listed by two accounts keeps both, and a
flag set for one account is never read as one for another (a Zendesk user has one
field value, whichever organizations they belong to). A value that names no account
(``direct``, ``SEN-1234``: a drop-down of an earlier tierdesk, or typed by hand) is
read as `UNSCOPED`: for the account of the user's organization; a push rewrites it in
the scoped form. A checkbox (``true``) is read as an unscoped ``direct`` / ``*``.
The Support API spec types organization field values as string or number only, so
tierdesk writes strings.

Writing: ``PUT /api/v2/organizations/{id}`` with only the organization fields
that differ (Zendesk merges ``organization_fields`` keys), and
``PUT /api/v2/users/{id}`` with only the user fields that differ. One record per
call, and only records that differ: a push after a push sends nothing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
from connector.errors import ConnectorError, PermanentError
from connector.http import HttpClient

ORG_ACCOUNT = "tierdesk_account"
ORG_TIER = "tierdesk_tier"
ORG_HOURS = "tierdesk_hours"
USER_CONTACT = "tierdesk_named_contact"
USER_ADMIN = "tierdesk_site_admin"
PAGE_SIZE = 100  # Zendesk's maximum for these lists
_TRUE = {"true", "yes", "1", "y"}
_SEPARATORS = re.compile(r"[\s,;]+")


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text or None


# An account id as accounts.json writes it (mappings/schemas/accounts.v1.json).
_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _tokens(value: Any) -> list[str]:
    return [t for t in _SEPARATORS.split(_text(value) or "") if t]


def _scoped(token: str) -> tuple[str, str]:
    """``acme:direct`` → (acme, direct); a token naming no account → (UNSCOPED, token)."""
    account, colon, rest = token.partition(":")
    if colon and rest and _ACCOUNT.match(account):
        return account, rest
    return UNSCOPED, token


def _contact_kind(text: str) -> Contact | None:
    text = text.casefold()
    if text in ("direct", "partner"):
        return "direct" if text == "direct" else "partner"
    return "direct" if text in _TRUE else None


def parse_contact(value: Any) -> tuple[tuple[str, Contact], ...]:
    """(account, kind) pairs, sorted; unknown tokens are ignored."""
    if value is True:
        return ((UNSCOPED, "direct"),)
    pairs = set()
    for token in _tokens(value):
        account, rest = _scoped(token)
        kind = _contact_kind(rest)
        if kind is not None:
            pairs.add((account, kind))
    return tuple(sorted(pairs))


def parse_admin(value: Any) -> tuple[tuple[str, str], ...]:
    """(account, SEN or ANY_SITE) pairs, sorted."""
    if value is True:
        return ((UNSCOPED, ANY_SITE),)
    pairs = set()
    for token in _tokens(value):
        account, site = _scoped(token)
        pairs.add((account, ANY_SITE if site.casefold() in _TRUE else site))
    return tuple(sorted(pairs))


def _render(pairs: tuple[tuple[str, str], ...]) -> str | None:
    return " ".join(f"{account}:{value}" for account, value in sorted(set(pairs))) or None


def org_from(record: dict[str, Any]) -> DirectoryOrg:
    fields = record.get("organization_fields") or {}
    return DirectoryOrg(
        id=str(record["id"]),
        name=str(record.get("name") or ""),
        domains=tuple(str(d) for d in record.get("domain_names") or ()),
        account=_text(fields.get(ORG_ACCOUNT)),
        tier=_text(fields.get(ORG_TIER)),
        # The hours field only where the account has it (created by a later setup).
        managed={ORG_ACCOUNT: fields.get(ORG_ACCOUNT), ORG_TIER: fields.get(ORG_TIER)}
        | ({ORG_HOURS: fields[ORG_HOURS]} if ORG_HOURS in fields else {}),
    )


def person_from(record: dict[str, Any]) -> DirectoryPerson:
    fields = record.get("user_fields") or {}
    org = record.get("organization_id")
    return DirectoryPerson(
        id=str(record["id"]),
        email=clean_email(record.get("email")),
        org_ids=(str(org),) if org is not None else (),
        contacts=parse_contact(fields.get(USER_CONTACT)),
        admin_of=parse_admin(fields.get(USER_ADMIN)),
        managed={USER_CONTACT: fields.get(USER_CONTACT), USER_ADMIN: fields.get(USER_ADMIN)},
    )


def org_update(org: DirectoryOrg, want: OrgWant) -> dict[str, Any] | None:
    """``{"organization": {"organization_fields": …}}`` with what differs, or None."""
    current = org.managed or {}
    wanted = {ORG_ACCOUNT: want.account, ORG_TIER: want.tier}
    if want.hours is not None:
        wanted[ORG_HOURS] = want.hours
    changed = {k: v for k, v in wanted.items() if _text(current.get(k)) != v}
    return {"organization": {"organization_fields": changed}} if changed else None


def person_update(person: DirectoryPerson, want: PersonWant) -> dict[str, Any] | None:
    """``{"user": {"user_fields": …}}`` with what differs (None clears a field), or None.
    A value that names no account differs from any wanted one: it is rewritten scoped."""
    changed: dict[str, str | None] = {}
    if set(person.contacts) != set(want.contacts):
        changed[USER_CONTACT] = _render(want.contacts)
    if set(person.admin_of) != set(want.admin_of):
        changed[USER_ADMIN] = _render(want.admin_of)
    return {"user": {"user_fields": changed}} if changed else None


def next_cursor(body: dict[str, Any]) -> str | None:
    """``page[after]`` of the next page; None when ``meta.has_more`` is false."""
    meta = body.get("meta") or {}
    if not meta.get("has_more"):
        return None
    link = (body.get("links") or {}).get("next")
    if isinstance(link, str):
        after = dict(parse_qsl(urlsplit(link).query)).get("page[after]")
        if after:
            return after
    after = meta.get("after_cursor")
    if isinstance(after, str) and after:
        return after
    raise ConnectorError("a Zendesk page says has_more but names no next cursor")


class ZendeskDirectory:
    vendor = "zendesk"
    phases: tuple[str, ...] = ("organizations", "users")
    push_phases: tuple[str, ...] = ("organizations", "users")
    flags_on_orgs = False

    def __init__(self, client: HttpClient, *, page_size: int = PAGE_SIZE) -> None:
        self.client = client
        self.page_size = page_size

    def total(self, phase: str) -> int | None:
        try:
            body = self.client.request("GET", f"/api/v2/{phase}/count") or {}
        except PermanentError:
            return None  # only for the progress bar: an agent role may not count
        value = (body.get("count") or {}).get("value")
        return value if isinstance(value, int) else None

    def page(self, phase: str, cursor: str | None, *, people: bool = True) -> Page:
        if phase not in self.phases:
            raise ConnectorError(f"Zendesk has no directory phase {phase!r}")
        params = {"page[size]": str(self.page_size)}
        if cursor:
            params["page[after]"] = cursor
        body = self.client.request("GET", f"/api/v2/{phase}", params=params) or {}
        after = next_cursor(body)
        if phase == "organizations":
            orgs = tuple(org_from(r) for r in body.get("organizations") or ())
            return Page(orgs=orgs, after=after, calls=1)
        users = tuple(person_from(r) for r in body.get("users") or ())
        return Page(people=users, after=after, calls=1)

    def org_update(self, org: DirectoryOrg, want: OrgWant) -> dict[str, Any] | None:
        return org_update(org, want)

    def person_update(self, person: DirectoryPerson, want: PersonWant) -> dict[str, Any] | None:
        return person_update(person, want)

    def write_org(self, org: DirectoryOrg, update: Any) -> None:
        self.client.request("PUT", f"/api/v2/organizations/{org.id}", json_body=update)

    def write_person(self, person: DirectoryPerson, update: Any) -> None:
        self.client.request("PUT", f"/api/v2/users/{person.id}", json_body=update)
