"""``decide(ticket, mappings, now) -> Decision``: the one question tierdesk answers.

The order of the rules, each from RULES.md:

1. account: by id, organization, then requester domain (§5 unknown_account);
2. severity: the ticket's severity, else its helpdesk priority, else the default (§1);
3. tier: the account's subscriptions from the highest rank down; the first that
   entitles the ticket applies (contract dates, products, categories and add-ons,
   named contacts or site admins, hours left); none: the fallback tier (§3–§5);
4. the applied tier's coverage, its calendar rule and target → first-response due (§2);
5. team (routing rules evaluated at ``now``), helpdesk priority, phone support, tags.

Every step adds a readable line to the explanation; every reason the ticket did not
get its account's best tier, or is flagged, adds a reason code.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache

from entitlements.accounts import Account, Subscription
from entitlements.calendars import zone
from entitlements.contacts import NOT_REQUIRED, ContactCheck, check_requester
from entitlements.errors import TicketError
from entitlements.explanation import (
    DEFAULT_LOCALE,
    CalendarText,
    ContactText,
    Day,
    Joined,
    Line,
    LocalTime,
    MatchedBy,
    Msg,
    ResponseText,
    TargetText,
    Term,
    Trail,
    Utc,
    render,
)
from entitlements.hours import HoursBalance, balance
from entitlements.rulebook import Match, Rulebook
from entitlements.sla import (
    AT_RISK,
    BREACHED,
    MET,
    MISSED,
    FirstResponse,
    Milestones,
    Status,
    milestones,
)
from entitlements.tickets import Ticket, format_instant
from entitlements.tiers import Tier


@dataclass(frozen=True, slots=True)
class Decision:
    ticket: str
    account: str | None
    account_name: str | None
    matched_by: str | None
    account_tier: str | None
    tier: str
    tier_name: str
    fallback: bool  # the applied tier is not the account's tier
    covered: bool
    reasons: tuple[str, ...]
    named_contact: ContactCheck
    severity: int
    severity_name: str
    calendar: str | None
    target: str | None
    first_response_due: datetime | None
    team: str | None
    priority: str
    phone_support: bool
    hours: HoursBalance | None
    escalation_level: str | None
    tags: tuple[str, ...]
    # When the first-response clock reaches each stage (None when not covered); a
    # sweep compares them with the clock (entitlements/sla.py).
    milestones: Milestones | None
    because: tuple[Line, ...]  # rendered by `explanation` when someone reads it
    # Where the clock stands (`followed`): on_track, at_risk, breached, met, missed.
    sla: str | None = None
    first_response: FirstResponse | None = None

    @property
    def escalated(self) -> bool:
        """Raised past the first escalation level by a breach (RULES.md §3)."""
        levels = self.milestones.levels if self.milestones else ()
        return bool(levels) and self.escalation_level not in (None, levels[0])

    @property
    def explanation(self) -> tuple[str, ...]:
        return tuple(str(line) for line in self.because)

    def explained(self, locale: str = DEFAULT_LOCALE) -> tuple[str, ...]:
        """The explanation in ``locale`` (`entitlements.catalogue.LOCALES`)."""
        return render(self.because, locale)

    def to_json(self, locale: str = DEFAULT_LOCALE) -> dict[str, object]:
        due = self.first_response_due
        return {
            "ticket": self.ticket,
            "account": self.account,
            "account_name": self.account_name,
            "matched_by": self.matched_by,
            "account_tier": self.account_tier,
            "tier": self.tier,
            "tier_name": self.tier_name,
            "fallback": self.fallback,
            "covered": self.covered,
            "reasons": list(self.reasons),
            "named_contact": self.named_contact.to_json(),
            "severity": self.severity,
            "severity_name": self.severity_name,
            "calendar": self.calendar,
            "target": self.target,
            "first_response_due": format_instant(due) if due else None,
            "team": self.team,
            "priority": self.priority,
            "phone_support": self.phone_support,
            "hours": self.hours.to_json() if self.hours else None,
            "escalation_level": self.escalation_level,
            "tags": list(self.tags),
            "sla": self.sla,
            "first_response": _response_json(self.first_response),
            "explanation": list(self.explained(locale)),
        }


def _response_json(response: FirstResponse | None) -> dict[str, object] | None:
    if response is None:
        return None
    return {
        "at": format_instant(response.at),
        "met": response.met,
        "margin_minutes": round(response.margin.total_seconds() / 60, 1),
    }


def followed(
    decision: Decision,
    status: Status,
    response: FirstResponse | None,
    tag_prefix: str,
) -> Decision:
    """The decision with where its first-response clock stands: the stage's tags, the
    escalation level reached, and a line that says so. Pure, like `decide`."""
    m = decision.milestones
    if m is None:
        return decision
    raw: list[str] = []
    lines = list(decision.because)
    level = status.level_name(m) or decision.escalation_level
    if status.stage == AT_RISK:
        raw.append("sla_at_risk")
        lines.append(Line("at_risk", (Utc(m.at_risk), Utc(m.due))))
    elif status.stage in (BREACHED, MISSED):
        raw.append("sla_breached")
        if status.stage == BREACHED:
            lines.append(Line("breached", (Utc(m.due),)))
        reached = min(status.level, len(m.levels) - 1) if m.levels else 0
        if reached:  # a tier with one level has nowhere to escalate to
            raw.append(f"escalation_{reached + 1}")
            lines.append(Line("escalated", (Term(str(level)), status.level)))
    if status.stage in (MET, MISSED):
        raw.append("first_response_met" if status.stage == MET else "first_response_missed")
    if response is not None:
        lines.append(Line("first_response", (ResponseText(response), Utc(response.at))))
    extra = tuple(_tag(tag_prefix, t) for t in raw)
    return replace(
        decision,
        sla=status.stage,
        first_response=response,
        escalation_level=level,
        tags=tuple(dict.fromkeys(decision.tags + extra)),
        because=tuple(lines),
    )


@dataclass(frozen=True, slots=True)
class _Choice:
    tier: str
    account_tier: str
    fallback: bool
    contact: ContactCheck
    hours: HoursBalance | None


def decide(
    ticket: Ticket,
    mappings: Rulebook,
    now: datetime,
    *,
    hours_used: Mapping[str, int] | None = None,
    hours_left_at_open: Mapping[str, int] | None = None,
) -> Decision:
    """Decide tier, severity, SLA due time, contact validity, coverage and routing.

    Pure: ``now`` is only used for what depends on the moment of deciding (routing
    while a team is off, hours bought so far); the SLA clock starts at creation.
    Raises `TicketError` for values the mappings do not know (severity, product…).
    ``hours_used``: seconds each pay-as-you-go account has used, from the hours ledger
    (it starts from the mappings' ``hours_used``); an account not in it is taken as the
    mappings say. ``hours_left_at_open``: the seconds it had left when the ticket was
    first decided. Entitlement is judged on that (RULES.md §3: an exhausted account's
    *new* tickets fall back; an open ticket keeps its tier and shows the flags of now);
    an account not in it is judged on its balance now (a ticket decided for the first
    time is new now).
    """
    trail = Trail()
    severity = _severity(ticket, mappings, trail)
    product = _known(ticket.product, mappings.products, "product")
    environment = _known(ticket.environment, mappings.environments, "environment")
    environment = environment or mappings.environments[0]
    category = _known(ticket.category, mappings.categories, "category")

    match = mappings.find_account(ticket)
    if match is None:
        choice = _unknown_account(ticket, mappings, trail)
        account = None
    else:
        account = match.account
        trail.say("account_matched", account.id, account.name, MatchedBy(match.how))
        used = (hours_used or {}).get(account.id)
        at_open = (hours_left_at_open or {}).get(account.id)
        choice = _choose_tier(
            ticket, match, mappings, severity, product, category, now, trail, used, at_open
        )

    tier = mappings.tiers[choice.tier]
    covered = _covers(tier, product, category, mappings, trail)
    calendar_name = target_text = due = clock = None
    if covered:
        calendar_name, rule = tier.calendar_for(severity, environment, product)
        calendar = mappings.calendar(calendar_name, account)
        target = tier.targets[severity]
        clock = milestones(
            calendar,
            ticket.created_at,
            target.on(calendar.business_day),
            at_risk_fraction=tier.at_risk_fraction,
            escalation_step=tier.escalation_step,
            levels=tier.escalation_levels,
        )
        due = clock.due
        target_text = str(target)
        if rule is not None:
            trail.say(
                "calendar_rule", calendar_name, Term(rule.why), rule.pointer, CalendarText(calendar)
            )
        else:
            trail.say("calendar_default", calendar_name, tier.pointer, CalendarText(calendar))
        trail.say(
            "target",
            severity,
            TargetText(target),
            calendar_name,
            Utc(ticket.created_at),
            Utc(due),
            LocalTime(due, account.timezone if account else mappings.default_timezone),
        )

    team = _team(tier, account, mappings, now, trail)
    priority = mappings.severity.priority_for(severity, ticket.helpdesk)
    phone = severity in tier.phone_severities
    return Decision(
        ticket=ticket.id,
        account=account.id if account else None,
        account_name=account.name if account else None,
        matched_by=match.how if match else None,
        account_tier=choice.account_tier if account else None,
        tier=tier.id,
        tier_name=tier.name,
        fallback=choice.fallback,
        covered=covered,
        reasons=tuple(trail.reasons),
        named_contact=choice.contact,
        severity=severity,
        severity_name=tier.severity_names.get(severity, f"L{severity}"),
        calendar=calendar_name,
        target=target_text,
        first_response_due=due,
        team=team,
        priority=priority,
        phone_support=phone,
        hours=choice.hours,
        escalation_level=tier.escalation_levels[0] if tier.escalation_levels else None,
        tags=_tags(
            mappings.tag_prefix,
            tier.id,
            severity,
            choice.contact,
            choice.fallback,
            covered=covered,
            phone=phone,
            reasons=trail.reasons,
        ),
        because=tuple(trail.lines),
        milestones=clock,
    )


def _severity(ticket: Ticket, mappings: Rulebook, trail: Trail) -> int:
    scheme = mappings.severity
    if ticket.severity is not None:
        raw = ticket.severity
        level = raw if isinstance(raw, int) else scheme.aliases.get(raw.strip().casefold())
        if level not in scheme.levels:
            names = ", ".join(sorted(scheme.aliases))
            raise TicketError(
                "severity",
                f"{raw!r} is not a severity level {list(scheme.levels)} or name ({names})",
            )
        trail.say("severity_from_ticket", level, raw)
        return level
    if ticket.priority is not None:
        found = scheme.level_of_priority(ticket.priority, ticket.helpdesk)
        if found is None:
            raise TicketError(
                "priority", f"{ticket.priority!r} is not a helpdesk priority the mappings know"
            )
        trail.say("severity_from_priority", found, ticket.priority)
        return found
    trail.say("severity_default", scheme.default)
    return scheme.default


def _known(value: str | None, known: Collection[str], field: str) -> str | None:
    if value is None or value in known:
        return value
    listed = ", ".join(sorted(known))
    raise TicketError(field, f"{value!r} is not one the mappings know ({listed})")


def _unknown_account(ticket: Ticket, mappings: Rulebook, trail: Trail) -> _Choice:
    tried = [Msg("looked_for_account", (ticket.account,))] if ticket.account else []
    if ticket.organization:
        org = ticket.organization
        tried.append(Msg("looked_for_organization", (org.vendor, org.id)))
    if ticket.requester:
        tried.append(Msg("looked_for_requester", (ticket.requester,)))
    looked_for = Joined(tuple(tried), " / ") if tried else Msg("looked_for_nothing")
    trail.reason("unknown_account", "unknown_account", looked_for, mappings.default_tier)
    return _Choice(mappings.default_tier, mappings.default_tier, False, NOT_REQUIRED, None)


@dataclass(frozen=True, slots=True)
class _Tried:
    """A subscription that did not entitle the ticket, and why."""

    sub: Subscription
    tier: Tier
    contact: ContactCheck
    failures: tuple[tuple[str, object], ...]


def _choose_tier(
    ticket: Ticket,
    match: Match,
    mappings: Rulebook,
    severity: int,
    product: str | None,
    category: str | None,
    now: datetime,
    trail: Trail,
    used_s: int | None = None,
    left_at_open_s: int | None = None,
) -> _Choice:
    """The best subscription that entitles the ticket, else the account's fallback tier.

    RULES.md §7: the named-contact result and the reasons are those of the subscription
    that serves the ticket or, when it falls back, of the best one it failed; the other
    subscriptions tried are explained (the same line, no reason code), never flagged.
    With two Premier licences, a requester named on the second is served as Premier and
    `valid`, not `not_listed` because the first licence does not name them.
    """
    account = match.account
    opened_on = ticket.created_at.astimezone(zone(account.timezone)).date()
    today = now.astimezone(zone(account.timezone)).date()
    ranked = mappings.ranked_subscriptions(account)
    fallback = account.fallback_tier or mappings.default_tier
    # What the account bought, even when the ticket falls outside that contract's dates:
    # an expired Premier is a fallback with a reason, not silently a Select account.
    account_tier = ranked[0].tier if ranked else fallback
    tried: list[_Tried] = []
    hours: HoursBalance | None = None
    for sub in ranked:
        tier = mappings.tiers[sub.tier]
        failures = _entitlement_failures(
            sub, tier, ticket, account, mappings, product, category, opened_on
        )
        check = check_requester(
            ticket.requester, sub, account, mappings.contact_policy, tier.entitlement
        )
        if check.status == "invalid":
            failures.append((check.reason or "not_listed", _contact_text(check, ticket, sub, tier)))
        bal: HoursBalance | None = None
        if tier.hours:
            bal = balance(sub, today, tier.low_balance_fraction, used_s=used_s)
            hours = hours or bal
            # Entitled when first decided: the hours left then (or now, the first time).
            left_s = bal.balance_s if left_at_open_s is None else left_at_open_s
            if left_s <= 0:
                failures.append(("hours_exhausted", Msg("no_hours_left", (left_s / 3600,))))
        if failures:
            tried.append(_Tried(sub, tier, check, tuple(failures)))
            continue
        fell_back = sub.tier != account_tier
        best = _explain_tried(tried, trail, flag=fell_back)
        # Served by a lower subscription, the contact result is the failed one's that
        # says why (Premier's `not_listed`), unless that one checks no contact.
        contact = check
        if best is not None and best.contact.status != "not_required":
            contact = best.contact
        if bal is not None:
            hours = bal
            _flag_balance(bal, tier, trail)
        trail.say(
            "tier_entitles",
            Term(tier.name),
            sub.pointer or sub.index,
            Msg("contact_suffix", (_contact_text(check, ticket, sub, tier),))
            if check.detail
            else "",
        )
        return _Choice(sub.tier, account_tier, fell_back, contact, hours)
    best = _explain_tried(tried, trail, flag=True)
    trail.say("fallback_tier", Term(mappings.tiers[fallback].name))
    contact = best.contact if best is not None else NOT_REQUIRED
    return _Choice(fallback, account_tier, fallback != account_tier, contact, hours)


def _explain_tried(tried: list[_Tried], trail: Trail, *, flag: bool) -> _Tried | None:
    """Say why each subscription in ``tried`` did not entitle the ticket, in the order
    tried. With ``flag`` (the ticket falls back) the best of them gives the reason codes
    and is returned; otherwise none does and None is returned."""
    best = _best_failed(tried) if flag and tried else None
    for t in tried:
        for code, text in t.failures:
            args = (Term(t.tier.name), t.sub.pointer or t.sub.index, text)
            if t is best:
                trail.reason(code, "not_tier", *args)
            else:
                trail.say("not_tier", *args)
    return best


def _best_failed(tried: list[_Tried]) -> _Tried:
    """The best subscription the ticket failed (RULES.md §7): the highest-ranked tier;
    among equals (two Premier licences), the one whose contact check the requester
    passed, then the one with the fewest failures, then the mapping's order. So which
    of two equal licences speaks for a fallback does not depend on how they are listed
    (a Premier that names the requester but has ended says `contract_ended`, not the
    other licence's `not_listed`)."""
    return min(
        tried,
        key=lambda t: (-t.tier.rank, t.contact.status == "invalid", len(t.failures), t.sub.index),
    )


def _flag_balance(bal: HoursBalance, tier: Tier, trail: Trail) -> None:
    """The flags of an hours balance on the subscription that serves the ticket."""
    if bal.exhausted:
        trail.reason("hours_exhausted", "hours_used_up", bal.balance_s / 3600)
    elif bal.low:
        trail.reason(
            "hours_low",
            "hours_low",
            bal.balance_s / 3600,
            tier.low_balance_fraction,
            bal.last_bundle_s / 3600,
        )


def _contact_text(
    check: ContactCheck, ticket: Ticket, sub: Subscription, tier: Tier
) -> ContactText:
    return ContactText(check, ticket.requester, sub.sen, tier.entitlement)


def _entitlement_failures(
    sub: Subscription,
    tier: Tier,
    ticket: Ticket,
    account: Account,
    mappings: Rulebook,
    product: str | None,
    category: str | None,
    opened_on: date,
) -> list[tuple[str, object]]:
    failures: list[tuple[str, object]] = []
    dates = sub.current_on(opened_on)
    if dates is not None:
        span = (Day(sub.starts), Day(sub.ends), opened_on, account.timezone)
        failures.append((dates, Msg("contract_dates", span)))
    if product is not None and (
        not tier.covers_product(product)
        or (sub.products is not None and product not in sub.products)
    ):
        failures.append(
            ("product_not_covered", Msg("not_covered_item", (mappings.products[product],)))
        )
    if category is not None:
        if category in tier.categories_exclude:
            failures.append(
                ("category_not_covered", Msg("not_covered_item", (mappings.categories[category],)))
            )
        addon = tier.addon_categories.get(category)
        if addon is not None and addon not in sub.addons:
            failures.append(
                (
                    f"needs_addon_{addon}",
                    Msg("needs_addon", (mappings.categories[category], addon)),
                )
            )
    return failures


def _covers(
    tier: Tier, product: str | None, category: str | None, mappings: Rulebook, trail: Trail
) -> bool:
    if product is not None and not tier.covers_product(product):
        trail.reason(
            "product_not_covered",
            "tier_not_covering",
            Term(tier.name),
            mappings.products[product],
        )
        return False
    if category is not None and category in tier.categories_exclude:
        trail.reason(
            "category_not_covered",
            "tier_not_covering",
            Term(tier.name),
            mappings.categories[category],
        )
        return False
    return True


def _team(
    tier: Tier, account: Account | None, mappings: Rulebook, now: datetime, trail: Trail
) -> str | None:
    for rule in tier.routing_rules:
        if not mappings.calendar(rule.while_closed, account).is_open(now):
            trail.say(
                "team_routed",
                rule.team,
                Term(rule.why),
                rule.pointer,
                rule.while_closed,
            )
            return rule.team
    if tier.team:
        trail.say("team_default", tier.team, Term(tier.name))
    return tier.team


_TAG_UNSAFE = re.compile(r"[^a-z0-9_-]+")


@lru_cache(maxsize=4096)
def _tag(prefix: str, name: str) -> str:
    """A helpdesk tag/label: lowercase, no spaces (valid for Zendesk tags and Jira labels)."""
    return _TAG_UNSAFE.sub("_", f"{prefix}{name}".casefold())


def _tags(
    prefix: str,
    tier: str,
    severity: int,
    contact: ContactCheck,
    fallback: bool,
    *,
    covered: bool,
    phone: bool,
    reasons: list[str],
) -> tuple[str, ...]:
    raw = [f"tier_{tier}", f"sev_{severity}"]
    if contact.status != "not_required":
        raw.append(f"contact_{contact.status}")
    if fallback:
        raw.append("fallback")
    if not covered:
        raw.append("not_covered")
    if phone:
        raw.append("phone")
    raw.extend(f"reason_{r}" for r in reasons)
    return tuple(dict.fromkeys(_tag(prefix, t) for t in raw))
