"""Sync jobs: make the helpdesk's directory and the mappings agree (`tierdesk sync`).

`pull` reads the helpdesk's organizations and people into accounts.json (checked with
the loader's rules, shown as a diff, written atomically); `push` writes the mappings'
tiers and named-contact flags onto the helpdesk, only where they differ. Both read
page by page into a spool on disk (memory flat in the number of records) and continue
from their checkpoint after an interruption. The helpdesk side is `connector.directory`.
"""

from mappings.sync.pages import NoProgress, Progress
from mappings.sync.pull import AccountDiff, PullReport, pull
from mappings.sync.push import PushReport, push
from mappings.sync.spool import SyncError

__all__ = [
    "AccountDiff",
    "NoProgress",
    "Progress",
    "PullReport",
    "PushReport",
    "SyncError",
    "pull",
    "push",
]
