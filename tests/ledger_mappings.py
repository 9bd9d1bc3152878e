"""Mappings for the hours-ledger tests: the bundled tiers and calendars, and accounts
made for them (two that buy hours, one that does not)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from entitlements.rulebook import Rulebook
from mappings import BUNDLED, load_mappings

H = 3600

ZULIP: dict[str, Any] = {
    "id": "zulip",
    "name": "Zulip (hours)",
    "domains": ["zulip.com"],
    "timezone": "Europe/Berlin",
    "organizations": {"jsm": ["42"], "zendesk": [900]},
    "subscriptions": [
        {
            "tier": "payg",
            "bundles": [
                {"hours": 20, "purchased": "2026-01-05"},
                {"hours": 10, "purchased": "2026-06-01"},
            ],
        }
    ],
}
INITECH: dict[str, Any] = {
    "id": "initech",
    "name": "Initech (hours)",
    "domains": ["initech.example"],
    "timezone": "Australia/Sydney",
    "organizations": {"zendesk": [360003]},
    "subscriptions": [
        {
            "tier": "payg",
            "bundles": [
                {"hours": 20, "purchased": "2026-02-01"},
                {"hours": 20, "purchased": "2026-08-01"},
            ],
            "hours_used": 37,
        }
    ],
}
GLOBEX: dict[str, Any] = {
    "id": "globex",
    "name": "Globex (24/7 SaaS)",
    "domains": ["globex.example"],
    "timezone": "America/New_York",
    "organizations": {"zendesk": [901], "jsm": ["12"]},
    "subscriptions": [{"tier": "saas-24x7"}],
}
ACCOUNTS = [ZULIP, INITECH, GLOBEX]


def write_mappings(directory: Path, accounts: list[dict[str, Any]] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("tiers.json", "calendars.json"):
        shutil.copy(BUNDLED / name, directory / name)
    doc = {"schema_version": 1, "accounts": ACCOUNTS if accounts is None else accounts}
    (directory / "accounts.json").write_text(json.dumps(doc))
    return directory


def rulebook(directory: Path, accounts: list[dict[str, Any]] | None = None) -> Rulebook:
    return load_mappings(write_mappings(directory, accounts))
