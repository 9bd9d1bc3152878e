"""Why a decision is what it is: lines written while deciding, rendered when read.

Deciding is the hot path, and most decisions are compared, stored or written without
anyone reading why. So a line keeps its template and values, and becomes text only
when someone asks (``str(line)``, `Decision.explanation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from entitlements.calendars import zone
from entitlements.tickets import format_instant


class Line(NamedTuple):
    """One step of the explanation: ``template.format(*args)``, tagged with the reason
    code it gave, if any. A named tuple, not a dataclass: a decision writes several and
    this is the hot path (immutable all the same)."""

    template: str
    args: tuple[object, ...] = ()
    code: str | None = None

    def __str__(self) -> str:
        text = self.template.format(*self.args) if self.args else self.template
        return f"[{self.code}] {text}" if self.code else text


@dataclass(frozen=True, slots=True)
class Utc:
    """An instant shown as ISO 8601 UTC (``…Z``)."""

    instant: datetime

    def __format__(self, spec: str) -> str:
        return format_instant(self.instant)


@dataclass(frozen=True, slots=True)
class LocalTime:
    """An instant shown on a zone's wall clock, for the humans reading an explanation."""

    instant: datetime
    zone_name: str

    def __format__(self, spec: str) -> str:
        local = self.instant.astimezone(zone(self.zone_name))
        return f"{local:%a %Y-%m-%d %H:%M} {self.zone_name}"


class Trail:
    """The explanation being written: lines and reason codes, in order."""

    __slots__ = ("lines", "reasons")

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.reasons: list[str] = []

    def say(self, template: str, *args: object) -> None:
        self.lines.append(Line(template, args))

    def reason(self, code: str, template: str, *args: object) -> None:
        if code not in self.reasons:
            self.reasons.append(code)
        self.lines.append(Line(template, args, code))
