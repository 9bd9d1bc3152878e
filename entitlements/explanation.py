"""Why a decision is what it is: lines written while deciding, rendered when read.

In: while deciding, `Trail.say`/`Trail.reason` take a message id (a key of
`entitlements.catalogue`) and its parameters. Out: `Line.render(locale)` gives the
text in one of `LOCALES`; ``str(line)`` is the English text. A locale tierdesk does not
know is refused with `ValueError` (configuration checks it before anything is decided).

Deciding is the hot path, and most decisions are compared, stored or written without
anyone reading why. So a line keeps its message id and values, and becomes text only
when someone asks, in the language they ask for. A parameter whose wording depends on
the language (a time on a wall clock, a calendar, a target, a named-contact check…) is
a `Localized` value: it renders itself per locale, and its English is what the
explanation always said, so English output is unchanged byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, NamedTuple

from entitlements import catalogue
from entitlements.calendars import zone
from entitlements.catalogue import DEFAULT_LOCALE, LOCALES, messages
from entitlements.tickets import format_instant

if TYPE_CHECKING:
    from entitlements.calendars import Calendar
    from entitlements.contacts import ContactCheck
    from entitlements.sla import FirstResponse
    from entitlements.tiers import Target

__all__ = ["DEFAULT_LOCALE", "LOCALES", "Line", "Localized", "Msg", "Trail", "render"]

_EN = messages(DEFAULT_LOCALE)


class Localized:
    """A parameter whose text depends on the locale. ``format(value)`` is its English,
    so a line renders in English exactly as a plain template would."""

    __slots__ = ()

    def text(self, locale: str) -> str:
        raise NotImplementedError

    def __format__(self, spec: str) -> str:
        return self.text(DEFAULT_LOCALE)


def _arg(value: object, locale: str) -> object:
    return value.text(locale) if isinstance(value, Localized) else value


def _fill(template: str, args: tuple[object, ...], locale: str) -> str:
    if not args:
        return template
    if locale == DEFAULT_LOCALE:
        return template.format(*args)
    return template.format(*(_arg(a, locale) for a in args))


class Line(NamedTuple):
    """One step of the explanation: message ``key`` with ``args``, tagged with the
    reason code it gave, if any. A named tuple, not a dataclass: a decision writes
    several and this is the hot path (immutable all the same)."""

    key: str
    args: tuple[object, ...] = ()
    code: str | None = None

    def __str__(self) -> str:
        text = _fill(_EN[self.key], self.args, DEFAULT_LOCALE)
        return f"[{self.code}] {text}" if self.code else text

    def render(self, locale: str = DEFAULT_LOCALE) -> str:
        if locale == DEFAULT_LOCALE:
            return str(self)
        text = _fill(messages(locale)[self.key], self.args, locale)
        return f"[{self.code}] {text}" if self.code else text


def render(lines: tuple[Line, ...], locale: str = DEFAULT_LOCALE) -> tuple[str, ...]:
    """The explanation's text in ``locale``."""
    return tuple(line.render(locale) for line in lines)


@dataclass(frozen=True, slots=True)
class Msg(Localized):
    """A message inside a message: a failure, a part of what was looked for."""

    key: str
    args: tuple[object, ...] = ()

    def text(self, locale: str) -> str:
        return _fill(messages(locale)[self.key], self.args, locale)


@dataclass(frozen=True, slots=True)
class Joined(Localized):
    parts: tuple[object, ...]
    sep: str

    def text(self, locale: str) -> str:
        return self.sep.join(str(_arg(p, locale)) for p in self.parts)


@dataclass(frozen=True, slots=True)
class Term(Localized):
    """A name from the mappings (tier, severity, escalation level, a rule's why),
    shown in the locale's words where the glossary has them (the Japanese Premier
    page's terms), else as the mappings wrote it."""

    name: str

    def text(self, locale: str) -> str:
        return catalogue.term(self.name, locale)


@dataclass(frozen=True, slots=True)
class Utc(Localized):
    """An instant shown as ISO 8601 UTC (``…Z``), the same in every language."""

    instant: datetime

    def text(self, locale: str) -> str:
        return format_instant(self.instant)


@dataclass(frozen=True, slots=True)
class LocalTime(Localized):
    """An instant shown on a zone's wall clock, for the humans reading an explanation."""

    instant: datetime
    zone_name: str

    def text(self, locale: str) -> str:
        local = self.instant.astimezone(zone(self.zone_name))
        return catalogue.wall_clock(local, self.zone_name, locale)


@dataclass(frozen=True, slots=True)
class Day(Localized):
    """A date, or the open end of a contract (None)."""

    day: date | None

    def text(self, locale: str) -> str:
        return "…" if self.day is None else str(self.day)


@dataclass(frozen=True, slots=True)
class TargetText(Localized):
    target: Target

    def text(self, locale: str) -> str:
        if locale == DEFAULT_LOCALE:
            return str(self.target)
        return catalogue.target(self.target.minutes, self.target.business_days, locale)


@dataclass(frozen=True, slots=True)
class CalendarText(Localized):
    calendar: Calendar

    def text(self, locale: str) -> str:
        if locale == DEFAULT_LOCALE:
            return str(self.calendar)
        return catalogue.calendar(self.calendar, locale)


@dataclass(frozen=True, slots=True)
class MatchedBy(Localized):
    """How the account was found (`Match.how`)."""

    how: str

    def text(self, locale: str) -> str:
        return catalogue.matched_by(self.how, locale)


@dataclass(frozen=True, slots=True)
class ContactText(Localized):
    """What a named-contact check found; its English is the check's own detail."""

    check: ContactCheck
    requester: str | None
    site: str | None
    kind: str  # the tier's entitlement rule: named_contacts, site_admins

    def text(self, locale: str) -> str:
        if locale == DEFAULT_LOCALE:
            return self.check.detail
        return catalogue.contact(self.check, self.requester, self.site, self.kind, locale)


@dataclass(frozen=True, slots=True)
class ResponseText(Localized):
    """How the first response fared; its English is `FirstResponse.describe`."""

    response: FirstResponse

    def text(self, locale: str) -> str:
        if locale == DEFAULT_LOCALE:
            return self.response.describe()
        return catalogue.first_response(self.response.met, self.response.margin, locale)


class Trail:
    """The explanation being written: lines and reason codes, in order."""

    __slots__ = ("lines", "reasons")

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.reasons: list[str] = []

    def say(self, key: str, *args: object) -> None:
        self.lines.append(Line(key, args))

    def reason(self, code: str, key: str, *args: object) -> None:
        if code not in self.reasons:
            self.reasons.append(code)
        self.lines.append(Line(key, args, code))
