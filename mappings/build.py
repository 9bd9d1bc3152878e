"""From schema-valid documents to a `Rulebook`, checking what a schema cannot: names
that must exist in another file, IANA zones, holiday countries, and the contract rules
of RULES.md §4 (licence counts, partner form, domains, shared mailboxes).

Every problem found is collected, with the file and JSON pointer it comes from, so
that one run of ``tierdesk mappings validate`` lists them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from entitlements.accounts import Account, Bundle, Subscription
from entitlements.calendar_templates import (
    ACCOUNT,
    BoundarySpec,
    CalendarTemplate,
    SpanSpec,
    daily_window,
)
from entitlements.calendars import NO_HOLIDAYS, WEEKDAYS, HolidaySet, zone
from entitlements.contacts import ContactPolicy, contract_problems
from entitlements.errors import EntitlementError
from entitlements.rulebook import Rulebook, SeverityScheme
from entitlements.tiers import CalendarRule, Condition, RoutingRule, Target, Tier
from mappings.documents import Documents
from mappings.problems import Problem, pointer

_CAL, _TIERS, _ACCOUNTS = "calendars.json", "tiers.json", "accounts.json"


def build_rulebook(
    documents: Documents, reuse: Rulebook | None = None
) -> tuple[Rulebook | None, list[Problem]]:
    """``reuse``: the rulebook in force, whose unchanged calendars serve again."""
    builder = _Builder(documents, reuse)
    rulebook = builder.build()
    return (rulebook if not builder.problems else None), builder.problems


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def parse_target(text: str) -> Target:
    """``30m``, ``2h``, ``1.5h`` or ``2bd`` (business days of the calendar)."""
    for suffix, unit in (("bd", None), ("m", 1), ("h", 60)):
        if text.endswith(suffix):
            amount = Fraction(text.removesuffix(suffix))
            if unit is None:
                return Target(business_days=amount)
            return Target(minutes=round(amount * unit))
    raise ValueError(text)


class _Builder:
    def __init__(self, documents: Documents, reuse: Rulebook | None = None) -> None:
        self.reuse = reuse
        self.docs = documents.by_name
        self.version = documents.digest
        self.problems: list[Problem] = []

    def problem(self, file: str, where: Iterable[str | int], rule: str, message: str) -> None:
        self.problems.append(Problem(file, pointer(*where), rule, message))

    def build(self) -> Rulebook | None:
        # Each file is checked as far as the files it names are usable; a file that
        # failed its schema (already reported) only silences checks that need it.
        templates = self._templates(self.docs[_CAL]["calendars"]) if _CAL in self.docs else None
        if _TIERS not in self.docs:
            return None
        tiers_doc = self.docs[_TIERS]
        severity = self._severity(tiers_doc["severity"])
        products = tiers_doc["products"]
        categories = tiers_doc.get("categories", {})
        environments = tuple(tiers_doc.get("environments", ["production", "staging", "qa"]))
        tiers = {
            tier_id: self._tier(
                tier_id, spec, templates, severity, products, categories, environments
            )
            for tier_id, spec in tiers_doc["tiers"].items()
        }
        default_tier = tiers_doc["default_tier"]
        if default_tier not in tiers:
            self.problem(
                _TIERS, ["default_tier"], "unknown_tier", f"no tier called {default_tier!r}"
            )
        default_timezone = tiers_doc.get("default_timezone", "UTC")
        self._zone(_TIERS, ["default_timezone"], default_timezone)
        policy = self._contact_policy(tiers_doc.get("named_contacts", {}))
        if _ACCOUNTS not in self.docs:
            return None
        accounts = self._accounts(self.docs[_ACCOUNTS]["accounts"], tiers, products, policy)
        if self.problems or templates is None:
            return None
        return Rulebook(
            tiers=tiers,
            templates=templates,
            accounts=accounts,
            default_tier=default_tier,
            severity=severity,
            products=products,
            environments=environments,
            categories=categories,
            contact_policy=policy,
            tag_prefix=tiers_doc.get("tag_prefix", "tierdesk_"),
            default_timezone=default_timezone,
            version=self.version,
            reuse=self.reuse,
        )

    # -- shared checks ---------------------------------------------------------------

    def _zone(self, file: str, where: list[str | int], name: str) -> bool:
        try:
            zone(name)
        except EntitlementError as exc:
            self.problem(file, where, "timezone", str(exc))
            return False
        return True

    def _holidays(self, file: str, where: list[str | int], spec: dict[str, Any]) -> HolidaySet:
        holidays = HolidaySet(
            frozenset(date.fromisoformat(d) for d in spec.get("dates", [])),
            spec.get("country"),
            spec.get("subdivision"),
        )
        try:
            holidays.check()
        except EntitlementError as exc:
            culprit = "country"
            if holidays.subdivision is not None and holidays.country is not None:
                try:
                    HolidaySet(country=holidays.country).check()
                    culprit = "subdivision"  # the country alone is known
                except EntitlementError:
                    pass
            self.problem(file, [*where, culprit], "holidays", str(exc))
            return NO_HOLIDAYS
        return holidays

    def _known(
        self,
        file: str,
        where: list[str | int],
        values: Iterable[Any],
        known: Iterable[Any],
        what: str,
    ) -> None:
        known_set = set(known)
        for i, value in enumerate(values):
            if value not in known_set:
                self.problem(
                    file, [*where, i], f"unknown_{what}", f"{value!r} is not a known {what}"
                )

    # -- calendars.json --------------------------------------------------------------

    def _templates(self, specs: dict[str, Any]) -> dict[str, CalendarTemplate]:
        templates = {}
        for name, spec in specs.items():
            where: list[str | int] = ["calendars", name]
            spans: list[SpanSpec] = []
            for i, window in enumerate(spec.get("windows", [])):
                opens, closes = _minutes(window["from"]), _minutes(window["to"])
                if opens == closes:
                    self.problem(_CAL, [*where, "windows", i], "empty_window", "'from' equals 'to'")
                spans.extend(
                    daily_window(WEEKDAYS.index(d), opens, closes, spec["zone"])
                    for d in window["days"]
                )
            for i, span in enumerate(spec.get("spans", [])):
                ends = []
                for key in ("from", "to"):
                    b = span[key]
                    if key == "from" and b["time"] == "24:00":
                        self.problem(
                            _CAL,
                            [*where, "spans", i, key, "time"],
                            "time",
                            "a span cannot open at 24:00",
                        )
                    ends.append(
                        BoundarySpec(WEEKDAYS.index(b["day"]), _minutes(b["time"]), b["zone"])
                    )
                spans.append(SpanSpec(ends[0], ends[1]))
            zones = {b.zone for s in spans for b in (s.opens, s.closes)} - {ACCOUNT}
            for zone_name in sorted(zones):
                self._zone(_CAL, [*where, "zone" if "zone" in spec else "spans"], zone_name)
            holidays_spec = spec.get("holidays", {})
            templates[name] = CalendarTemplate(
                name=name,
                description=spec["description"],
                spans=tuple(spans),
                business_day=timedelta(hours=spec.get("business_day_hours", 8)),
                account_holidays=bool(holidays_spec.get("account", False)),
                holidays=self._holidays(_CAL, [*where, "holidays"], holidays_spec),
            )
        return templates

    # -- tiers.json ------------------------------------------------------------------

    def _severity(self, spec: dict[str, Any]) -> SeverityScheme:
        levels = tuple(sorted(int(k) for k in spec["levels"]))
        where: list[str | int] = ["severity"]
        default = spec.get("default", levels[-1])
        if default not in levels:
            self.problem(
                _TIERS,
                [*where, "default"],
                "unknown_level",
                f"{default} is not a level {list(levels)}",
            )
        for table in ("aliases",):
            for name, level in spec.get(table, {}).items():
                if level not in levels:
                    self.problem(
                        _TIERS, [*where, table, name], "unknown_level", f"{level} is not a level"
                    )
        for vendor, table in spec["priorities"].items():
            for name, level in table.items():
                if level not in levels:
                    self.problem(
                        _TIERS,
                        [*where, "priorities", vendor, name],
                        "unknown_level",
                        f"{level} is not a level",
                    )
        for vendor, table in spec["write_priority"].items():
            missing = [lv for lv in levels if str(lv) not in table]
            if missing:
                self.problem(
                    _TIERS,
                    [*where, "write_priority", vendor],
                    "missing_level",
                    f"no priority for level(s) {missing}",
                )
        default_vendor = spec.get("default_vendor", next(iter(spec["write_priority"])))
        if default_vendor not in spec["write_priority"]:
            self.problem(
                _TIERS,
                [*where, "default_vendor"],
                "unknown_vendor",
                f"{default_vendor!r} has no write_priority table",
            )
        return SeverityScheme(
            levels=levels,
            aliases={k.casefold(): v for k, v in spec.get("aliases", {}).items()},
            from_priority={
                v: {k.casefold(): lv for k, lv in t.items()} for v, t in spec["priorities"].items()
            },
            to_priority={
                v: {int(k): p for k, p in t.items()} for v, t in spec["write_priority"].items()
            },
            default=default,
            default_vendor=default_vendor,
        )

    def _tier(
        self,
        tier_id: str,
        spec: dict[str, Any],
        templates: dict[str, CalendarTemplate] | None,
        severity: SeverityScheme,
        products: dict[str, str],
        categories: dict[str, str],
        environments: tuple[str, ...],
    ) -> Tier:
        where: list[str | int] = ["tiers", tier_id]
        levels = severity.levels
        targets = {int(k): parse_target(v) for k, v in spec["targets"].items()}
        missing = [lv for lv in levels if lv not in targets]
        if missing:
            self.problem(
                _TIERS, [*where, "targets"], "missing_level", f"no target for level(s) {missing}"
            )
        if templates is not None and spec["calendar"] not in templates:
            self.problem(
                _TIERS,
                [*where, "calendar"],
                "unknown_calendar",
                f"{spec['calendar']!r} is not a known calendar",
            )
        rules = []
        for i, rule in enumerate(spec.get("calendar_rules", [])):
            at = [*where, "calendar_rules", i]
            if templates is not None and rule["calendar"] not in templates:
                self.problem(
                    _TIERS,
                    [*at, "calendar"],
                    "unknown_calendar",
                    f"{rule['calendar']!r} is not a known calendar",
                )
            self._known(_TIERS, [*at, "products"], rule.get("products", []), products, "product")
            self._known(_TIERS, [*at, "severities"], rule.get("severities", []), levels, "level")
            self._known(
                _TIERS,
                [*at, "environments"],
                rule.get("environments", []),
                environments,
                "environment",
            )
            rules.append(
                CalendarRule(
                    when=Condition(
                        severities=_maybe_set(rule.get("severities")),
                        environments=_maybe_set(rule.get("environments")),
                        products=_maybe_set(rule.get("products")),
                    ),
                    calendar=rule["calendar"],
                    why=rule["why"],
                    pointer=f"{_TIERS}#{pointer(*at)}",
                )
            )
        product_spec = spec.get("products", {})
        for key in ("include", "exclude"):
            self._known(
                _TIERS, [*where, "products", key], product_spec.get(key, []), products, "product"
            )
        excluded_categories = spec.get("categories", {}).get("exclude", [])
        self._known(
            _TIERS, [*where, "categories", "exclude"], excluded_categories, categories, "category"
        )
        addon_categories = spec.get("addon_categories", {})
        for category in addon_categories:
            if category not in categories:
                self.problem(
                    _TIERS,
                    [*where, "addon_categories", category],
                    "unknown_category",
                    f"{category!r} is not a known category",
                )
        routing = []
        for i, rule in enumerate(spec.get("routing", [])):
            at = [*where, "routing", i]
            if templates is not None and rule["while_closed"] not in templates:
                self.problem(
                    _TIERS,
                    [*at, "while_closed"],
                    "unknown_calendar",
                    f"{rule['while_closed']!r} is not a known calendar",
                )
            routing.append(
                RoutingRule(
                    rule["team"], rule["while_closed"], rule["why"], f"{_TIERS}#{pointer(*at)}"
                )
            )
        self._known(
            _TIERS, [*where, "phone_severities"], spec.get("phone_severities", []), levels, "level"
        )
        hours = spec.get("hours")
        return Tier(
            id=tier_id,
            name=spec["name"],
            rank=spec["rank"],
            targets=targets,
            default_calendar=spec["calendar"],
            calendar_rules=tuple(rules),
            products_include=_maybe_set(product_spec.get("include")),
            products_exclude=frozenset(product_spec.get("exclude", [])),
            categories_exclude=frozenset(excluded_categories),
            addon_categories=dict(addon_categories),
            entitlement=spec.get("entitlement", "none"),
            hours=hours is not None,
            low_balance_fraction=(hours or {}).get("low_balance_fraction", 0.2),
            team=spec.get("team"),
            routing_rules=tuple(routing),
            phone_severities=frozenset(spec.get("phone_severities", [])),
            severity_names={int(k): v for k, v in spec.get("severity_names", {}).items()},
            escalation_levels=tuple(spec.get("escalation_levels", [])),
            escalation_step=spec.get("escalation_step_percent", 100) / 100,
            at_risk_fraction=spec.get("at_risk_percent", 75) / 100,
            pointer=f"{_TIERS}#{pointer(*where)}",
        )

    def _contact_policy(self, spec: dict[str, Any]) -> ContactPolicy:
        partner = spec.get("partner", {"direct": 2, "partner": 3})
        return ContactPolicy(
            per_license=spec.get("per_license", 3),
            partner_direct=partner["direct"],
            partner_contacts=partner["partner"],
            shared_mailboxes=frozenset(m.casefold() for m in spec.get("shared_mailboxes", [])),
        )

    # -- accounts.json ---------------------------------------------------------------

    def _accounts(
        self,
        specs: list[dict[str, Any]],
        tiers: dict[str, Tier],
        products: dict[str, str],
        policy: ContactPolicy,
    ) -> tuple[Account, ...]:
        accounts = []
        owners: dict[tuple[str, str], str] = {}  # what identifies an account → its id
        for i, spec in enumerate(specs):
            where: list[str | int] = ["accounts", i]
            account_id = spec["id"]
            if ("id", account_id) in owners:
                self.problem(
                    _ACCOUNTS,
                    [*where, "id"],
                    "duplicate_account",
                    f"account id {account_id!r} is used twice",
                )
            owners["id", account_id] = account_id
            for j, domain in enumerate(spec["domains"]):
                key = ("domain", domain.casefold())
                if key in owners and owners[key] != account_id:
                    self.problem(
                        _ACCOUNTS,
                        [*where, "domains", j],
                        "duplicate_domain",
                        f"account {account_id}: domain {domain} "
                        f"also belongs to account {owners[key]}",
                    )
                owners[key] = account_id
            organizations: dict[str, frozenset[str]] = {}
            for vendor, ids in spec.get("organizations", {}).items():
                for j, org in enumerate(ids):
                    key = (f"org:{vendor}", str(org))
                    if key in owners and owners[key] != account_id:
                        self.problem(
                            _ACCOUNTS,
                            [*where, "organizations", vendor, j],
                            "duplicate_organization",
                            f"account {account_id}: organization {vendor}:{org} "
                            f"also belongs to account {owners[key]}",
                        )
                    owners[key] = account_id
                organizations[vendor] = frozenset(str(o) for o in ids)
            self._zone(_ACCOUNTS, [*where, "timezone"], spec["timezone"])
            fallback = spec.get("fallback_tier")
            if fallback is not None and fallback not in tiers:
                self.problem(
                    _ACCOUNTS,
                    [*where, "fallback_tier"],
                    "unknown_tier",
                    f"account {account_id}: no tier called {fallback!r}",
                )
            account = Account(
                id=account_id,
                name=spec["name"],
                domains=tuple(d.casefold() for d in spec["domains"]),
                timezone=spec["timezone"],
                holidays=self._holidays(_ACCOUNTS, [*where, "holidays"], spec.get("holidays", {})),
                organizations=organizations,
                fallback_tier=fallback,
                shared_mailboxes=frozenset(m.casefold() for m in spec.get("shared_mailboxes", [])),
            )
            subscriptions = tuple(
                self._subscription(
                    account, j, sub, [*where, "subscriptions", j], tiers, products, policy
                )
                for j, sub in enumerate(spec.get("subscriptions", []))
            )
            accounts.append(replace(account, subscriptions=subscriptions))
        return tuple(accounts)

    def _subscription(
        self,
        account: Account,
        index: int,
        spec: dict[str, Any],
        where: list[str | int],
        tiers: dict[str, Tier],
        products: dict[str, str],
        policy: ContactPolicy,
    ) -> Subscription:
        starts = date.fromisoformat(spec["starts"]) if "starts" in spec else None
        ends = date.fromisoformat(spec["ends"]) if "ends" in spec else None
        if starts and ends and ends <= starts:
            self.problem(
                _ACCOUNTS,
                [*where, "ends"],
                "contract_dates",
                f"account {account.id}: contract ends {ends} on or before it starts {starts}",
            )
        self._known(_ACCOUNTS, [*where, "products"], spec.get("products", []), products, "product")
        sub = Subscription(
            tier=spec["tier"],
            licenses=spec.get("licenses", 1),
            starts=starts,
            ends=ends,
            named_contacts=tuple(spec.get("named_contacts", [])),
            partner_contacts=tuple(spec.get("partner_contacts", [])),
            sen=spec.get("sen"),
            site_admins=tuple(spec.get("site_admins", [])),
            products=_maybe_set(spec.get("products")),
            addons=frozenset(spec.get("addons", [])),
            bundles=tuple(
                Bundle(b["hours"], date.fromisoformat(b["purchased"]))
                for b in spec.get("bundles", [])
            ),
            hours_used=spec.get("hours_used", 0.0),
            index=index,
            pointer=f"{_ACCOUNTS}#{pointer(*where)}",
        )
        tier = tiers.get(sub.tier)
        if tier is None:
            self.problem(
                _ACCOUNTS,
                [*where, "tier"],
                "unknown_tier",
                f"account {account.id}: no tier called {sub.tier!r}",
            )
            return sub
        if tier.entitlement == "named_contacts":
            for p in contract_problems(sub, account, policy):
                at = [*where, p.field] + ([p.index] if p.index is not None else [])
                self.problem(_ACCOUNTS, at, p.rule, f"account {account.id}: {p.message}")
        elif sub.named_contacts or sub.partner_contacts:
            self.problem(
                _ACCOUNTS,
                [*where, "named_contacts"],
                "contacts_not_used",
                f"account {account.id}: tier {sub.tier} has no named contacts; "
                "these would be ignored",
            )
        return sub


def _maybe_set(values: list[Any] | None) -> frozenset[Any] | None:
    return None if values is None else frozenset(values)
