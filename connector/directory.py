"""The helpdesk's directory as tierdesk syncs it: organizations and people (Zendesk
users, JSM customers), read one page at a time and written one record at a time.

The vendor modules (`connector.zendesk_directory`, `connector.jsm_directory`) turn
their API's records into the neutral `DirectoryOrg` and `DirectoryPerson`, and say
what to send so that a record shows what tierdesk wants (`OrgWant`, `PersonWant`).
The sync jobs (`mappings.sync`) only ever see these types.

A page is fetched by an opaque cursor and names the cursor of the page after it, so
that a job can store that cursor with what it did and continue from there after an
interruption: pages are the unit of resumption.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Contact = Literal["direct", "partner"]
CONTACT_KINDS: tuple[Contact, ...] = ("direct", "partner")
# A site-admin flag names the SEN of the site the person administers; a Priority
# subscription without a SEN is named by this.
ANY_SITE = "*"
# The account a flag is for, where the flag does not name one: a JSM flag (it lives on
# an organization's property, so it is for that organization's account), or a Zendesk
# value written before flags named their account ("direct", "SEN-1234"). Such a flag is
# for the account of the person's organizations.
UNSCOPED = ""


@dataclass(frozen=True, slots=True)
class DirectoryOrg:
    """One organization, with the tierdesk data the helpdesk keeps on it."""

    id: str  # the vendor's id, as text
    name: str
    domains: tuple[str, ...] = ()
    account: str | None = None  # the tierdesk account the helpdesk says it belongs to
    tier: str | None = None  # the tier the helpdesk shows
    # The vendor's current tierdesk values as it stores them (Zendesk: our organization
    # fields; JSM: the organization property), so a writer can tell what differs.
    managed: Any = None


@dataclass(frozen=True, slots=True)
class DirectoryPerson:
    """One person who may open tickets, with the flags tierdesk keeps on them."""

    id: str
    email: str  # as the helpdesk spells it; "" when it hides the address
    org_ids: tuple[str, ...] = ()
    # (account, kind) for each account they are a named contact of; the account is
    # UNSCOPED where the flag names none (see there).
    contacts: tuple[tuple[str, Contact], ...] = ()
    # (account, SEN or ANY_SITE) for each site they administer.
    admin_of: tuple[tuple[str, str], ...] = ()
    managed: Any = None


@dataclass(frozen=True, slots=True)
class Page:
    orgs: tuple[DirectoryOrg, ...] = ()
    people: tuple[DirectoryPerson, ...] = ()
    after: str | None = None  # the next page's cursor; None: this was the last page
    calls: int = 0  # requests this page cost (retries not counted)


@dataclass(frozen=True, slots=True)
class OrgWant:
    """What tierdesk wants an organization of an account to show agents."""

    account: str
    tier: str
    named_contacts: tuple[str, ...] = ()
    partner_contacts: tuple[str, ...] = ()
    site_admins: tuple[tuple[str, str], ...] = ()  # (email, SEN or ANY_SITE)
    # A pay-as-you-go account's hours status (ok, low, exhausted) from the hours ledger;
    # None: not known to this push (no ledger, or no hours account), left as it is.
    hours: str | None = None


@dataclass(frozen=True, slots=True)
class PersonWant:
    """The flags a person should show, each naming its account: (account, kind) and
    (account, SEN or ANY_SITE), sorted."""

    contacts: tuple[tuple[str, Contact], ...] = field(default=())
    admin_of: tuple[tuple[str, str], ...] = field(default=())


class Directory(Protocol):
    """One tenant's helpdesk directory. ``phases`` are the record streams a pull
    reads, in order; ``push_phases`` those a push reads (and writes).
    ``flags_on_orgs``: the people's flags live on their organizations (JSM's property),
    so writing an organization shows its account's contacts; otherwise on each person."""

    vendor: str
    phases: tuple[str, ...]
    push_phases: tuple[str, ...]
    flags_on_orgs: bool

    def total(self, phase: str) -> int | None:
        """About how many records ``phase`` holds (for a progress bar), if known."""

    def page(self, phase: str, cursor: str | None, *, people: bool = True) -> Page:
        """The page at ``cursor`` (None: the first). ``people=False``: a push of
        organizations does not need their members."""

    def org_update(self, org: DirectoryOrg, want: OrgWant) -> Any:
        """What to send so that ``org`` shows ``want``; None when it already does."""

    def person_update(self, person: DirectoryPerson, want: PersonWant) -> Any:
        """What to send so that ``person`` shows ``want``; None when it already does."""

    def write_org(self, org: DirectoryOrg, update: Any) -> None: ...

    def write_person(self, person: DirectoryPerson, update: Any) -> None: ...


def clean_email(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
