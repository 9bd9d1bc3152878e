"""The mappings in force for a running process. A reload that fails keeps the last
good rulebook and records why (shown by /readyz and the log)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from entitlements.rulebook import Rulebook
from mappings import MappingError, load_mappings

log = logging.getLogger("tierdesk.mappings")


class LiveMappings:
    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self.rulebook: Rulebook | None = None
        self.problems: list[str] = []
        self.reload()

    def reload(self) -> bool:
        """Load again; True when the new mappings are in force."""
        try:
            rulebook = load_mappings(self._directory)
        except MappingError as exc:
            with self._lock:
                self.problems = [str(p) for p in exc.problems]
            log.error("mappings refused, keeping the last good ones: %s", exc)
            return False
        with self._lock:
            self.rulebook, self.problems = rulebook, []
        log.info("mappings %s in force", rulebook.version)
        return True
