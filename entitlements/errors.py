"""The one error type of the rules layer, and its few refinements."""

from __future__ import annotations


class EntitlementError(Exception):
    """Something the rules cannot decide: a bad calendar, ticket or contract value."""


class CalendarError(EntitlementError):
    """A calendar that cannot be built or cannot answer (e.g. a naive datetime)."""


class TicketError(EntitlementError):
    """A ticket value that does not fit the ticket shape; names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
