"""Who asked: the requester's email of a Jira Cloud ticket whose webhook names the
reporter only by account id.

In: the ticket as the intake parsed it, the reporter's ``accountId`` when its email was
missing (`TicketEvent.requester_account`), and the tenant's user directory (the
connector's ``GET /rest/api/3/user``; None for a dry run or a Zendesk tenant).
Out: the ticket with its requester filled in when the lookup finds an email, and a line
for the decision's explanation either way (found, or why not: hidden by the user's
profile visibility, no such user, the API user lacks *Browse users and groups*, no API
credentials). A transient failure (429, 5xx, timeout) is raised: the worker retries the
event rather than decide it without its requester.

Looked up here, in the pipeline, never in the intake: a webhook is answered before any
vendor call. Each lookup goes through the tenant's HTTP client, and so within its
request budget (`connector.http`). Answers are cached per tenant, in a bounded LRU with
a TTL (a person's email or visibility can change; a miss is kept shorter), so a busy
reporter costs one call an hour, not one per event.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from connector.errors import ConnectorError, NotFound, Unauthorized
from entitlements.decide import Decision
from entitlements.explanation import Line, Msg
from entitlements.tickets import Ticket

UNRESOLVED = "requester_unresolved"  # the reason written when no email was found


class UserDirectory(Protocol):
    def email(self, account_id: str) -> str | None:
        """The email, None when hidden; connector errors otherwise."""
        ...


@runtime_checkable
class HasUsers(Protocol):
    """A write-back that can also look people up (the JSM connector)."""

    def user_directory(self) -> UserDirectory | None: ...


@dataclass(frozen=True, slots=True)
class Lookup:
    email: str | None
    why: Msg  # how it was found, or why not (a catalogue message: worded per locale)


class Requesters:
    """Per-tenant caches of account id → `Lookup`. Thread-safe; one per worker process."""

    def __init__(
        self,
        *,
        size: int = 5000,
        ttl_s: float = 3600.0,
        miss_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self.miss_ttl_s = miss_ttl_s
        self._clock = clock
        self._caches: dict[str, OrderedDict[str, tuple[float, Lookup]]] = {}
        self._lock = threading.Lock()
        self.calls = 0  # lookups that went to the helpdesk

    def lookup(self, tenant: str, account_id: str, users: UserDirectory | None) -> Lookup:
        if users is None:
            return Lookup(None, Msg("lookup_no_credentials"))
        now = self._clock()
        with self._lock:
            cache = self._caches.setdefault(tenant, OrderedDict())
            hit = cache.get(account_id)
            if hit is not None and hit[0] > now:
                cache.move_to_end(account_id)
                return hit[1]
        found = self._ask(account_id, users)  # outside the lock: a slow call blocks no one
        ttl = self.ttl_s if found.email else self.miss_ttl_s
        with self._lock:
            cache = self._caches.setdefault(tenant, OrderedDict())
            cache[account_id] = (now + ttl, found)
            cache.move_to_end(account_id)
            while len(cache) > self.size:
                cache.popitem(last=False)
        return found

    def _ask(self, account_id: str, users: UserDirectory) -> Lookup:
        self.calls += 1
        try:
            email = users.email(account_id)
        except NotFound:
            return Lookup(None, Msg("lookup_no_account"))
        except Unauthorized as exc:
            return Lookup(None, Msg("lookup_unauthorized", (exc.status,)))
        except ConnectorError as exc:
            if exc.transient:
                raise  # the worker retries the event
            return Lookup(None, Msg("lookup_refused", (str(exc),)))
        if email is None:
            return Lookup(None, Msg("lookup_hidden"))
        return Lookup(email, Msg("lookup_found"))

    def resolve(
        self,
        tenant: str,
        ticket: Ticket,
        account_id: str | None,
        users: UserDirectory | None,
    ) -> tuple[Ticket, Lookup | None]:
        """The ticket with its requester's email, when the webhook hid it; the lookup
        made (None when none was needed)."""
        if ticket.requester or not account_id:
            return ticket, None
        found = self.lookup(tenant, account_id, users)
        if found.email is None:
            return ticket, found
        return replace(ticket, requester=found.email), found


def explained(decision: Decision, account_id: str, found: Lookup) -> Decision:
    """The decision with a line on how its requester was found, or why not (then with
    the reason `requester_unresolved`: RULES.md §7, never a silent fallback)."""
    if found.email is not None:
        line = Line("requester_found", (found.email, account_id, found.why))
        return replace(decision, because=(*decision.because, line))
    line = Line("requester_unresolved", (account_id, found.why), UNRESOLVED)
    reasons = (
        decision.reasons if UNRESOLVED in decision.reasons else (*decision.reasons, UNRESOLVED)
    )
    return replace(decision, because=(*decision.because, line), reasons=reasons)
