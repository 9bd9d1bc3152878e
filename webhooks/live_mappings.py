"""The mappings in force for a running process, picked up again when the directory
changes, without a restart. A reload that fails keeps the last good rulebook and records
why (shown by /readyz and the log).

Every process (each HTTP process, each `tierdesk worker`) watches on its own: there is
no signal to fan out and nothing to coordinate, and a look at the directory costs one
``stat`` per file at most every ``check_every_s`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from entitlements.rulebook import Rulebook
from mappings import MappingError, load_mappings
from telemetry.metrics import MAPPINGS_RELOADS

log = logging.getLogger("tierdesk.mappings")

# What a directory looked like: each JSON file's name, inode, size and modification
# time. An editor's atomic save (write temp, rename) changes the inode; an in-place
# write changes size or time; `tierdesk sync pull` renames.
Fingerprint = tuple[tuple[str, int, int, int], ...]


class LiveMappings:
    def __init__(
        self,
        directory: Path | None,
        *,
        check_every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._check_every_s = check_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._rulebook: Rulebook | None = None
        self._problems: list[str] = []
        self._seen: Fingerprint | None = None
        self._checked_at = clock()
        self.reload()

    @property
    def rulebook(self) -> Rulebook | None:
        """The rulebook in force, after a look at the directory when one is due."""
        self.refresh()
        return self._rulebook

    @property
    def problems(self) -> list[str]:
        """Why the mappings on disk are not in force (empty when they are)."""
        self.refresh()
        return list(self._problems)

    def refresh(self) -> bool:
        """Reload when the directory changed since the last look; True when it did and
        the new mappings are in force."""
        if self._directory is None:  # the bundled mappings never change under us
            return False
        now = self._clock()
        if now - self._checked_at < self._check_every_s:
            return False
        # One thread looks; the others go on with the rulebook in force meanwhile.
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._checked_at = now
            if self._fingerprint() == self._seen:
                return False
        finally:
            self._lock.release()
        return self.reload()

    def reload(self) -> bool:
        """Load again; True when the new mappings are in force."""
        with self._lock:
            seen = self._fingerprint()
            try:
                # Resolved once: a deploy that swaps a symlink (releases/N → current)
                # mid-load must not give tiers of one release and accounts of another.
                directory = self._directory.resolve() if self._directory else None
                rulebook = load_mappings(directory, reuse=self._rulebook)
            except MappingError as exc:
                # Remember this state too: a broken file is reported once, not on every
                # look, and the next change is tried again.
                self._seen, self._problems = seen, [str(p) for p in exc.problems]
                log.error("mappings refused, keeping the last good ones: %s", exc)
                MAPPINGS_RELOADS.labels("refused").inc()
                return False
            # A file that changed while it was read makes the next look see a change.
            self._seen, self._rulebook, self._problems = seen, rulebook, []
        MAPPINGS_RELOADS.labels("in_force").inc()
        log.info("mappings %s in force", rulebook.version)
        return True

    def _fingerprint(self) -> Fingerprint | None:
        if self._directory is None:
            return None
        try:
            entries = sorted(self._directory.glob("*.json"))
            return tuple(
                (p.name, s.st_ino, s.st_size, s.st_mtime_ns) for p in entries for s in [p.stat()]
            )
        except OSError:  # the directory vanished or a file was renamed away mid-look
            return ()
