"""Pay-as-you-go hours (RULES.md §3): what is left of the bundles an account bought.

Arithmetic in whole seconds so that balances never drift through float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from entitlements.accounts import Subscription


@dataclass(frozen=True, slots=True)
class HoursBalance:
    purchased_s: int
    used_s: int
    last_bundle_s: int
    low_fraction: float

    @property
    def balance_s(self) -> int:
        return self.purchased_s - self.used_s

    @property
    def exhausted(self) -> bool:
        return self.balance_s <= 0

    @property
    def low_threshold_s(self) -> int:
        """Under this many seconds the balance is low: whole seconds, so that a fraction
        such as 0.1 (not exact in binary) cannot make a balance right at the line low."""
        return round(self.last_bundle_s * self.low_fraction)

    @property
    def low(self) -> bool:
        return not self.exhausted and self.balance_s < self.low_threshold_s

    @property
    def status(self) -> str:
        """``exhausted``, ``low`` or ``ok``: one word for a tag, a field or a table."""
        return "exhausted" if self.exhausted else "low" if self.low else "ok"

    def to_json(self) -> dict[str, float | bool]:
        return {
            "purchased": round(self.purchased_s / 3600, 2),
            "used": round(self.used_s / 3600, 2),
            "balance": round(self.balance_s / 3600, 2),
            "low": self.low,
            "exhausted": self.exhausted,
        }


def hours_to_s(hours: float) -> int:
    return round(hours * 3600)


def balance(
    sub: Subscription, on: date, low_fraction: float, *, used_s: int | None = None
) -> HoursBalance:
    """The balance of ``sub`` on day ``on``: bundles bought by then, minus hours used
    (``used_s`` when the hours ledger knows it, else the mappings' ``hours_used``)."""
    bought = sorted((b for b in sub.bundles if b.purchased <= on), key=lambda b: b.purchased)
    return HoursBalance(
        purchased_s=sum(hours_to_s(b.hours) for b in bought),
        used_s=hours_to_s(sub.hours_used) if used_s is None else used_s,
        last_bundle_s=hours_to_s(bought[-1].hours) if bought else 0,
        low_fraction=low_fraction,
    )
