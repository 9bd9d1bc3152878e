"""The directory where every process of one ``tierdesk serve`` keeps its metric values
(prometheus_client's multiprocess mode), so that one scrape of any HTTP worker adds up
the HTTP workers and the inbox workers.

In: ``PROMETHEUS_MULTIPROC_DIR`` as the operator set it, or nothing. Out: the directory
to hand to the children, emptied of a previous run's files (prometheus_client requires
a wiped directory per run: old files of dead processes would add to the counters), and
whether we made it (and so remove it at exit). It must be set before any child imports
prometheus_client, which reads it at import time: the supervisor sets it in its own
environment before it starts anything.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from telemetry.exposition import MULTIPROC_ENV


def prepare() -> tuple[Path, bool]:
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
        made = False
    else:
        directory = Path(tempfile.mkdtemp(prefix="tierdesk-metrics-"))
        made = True
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory, made


def release(directory: Path, made: bool) -> None:
    """Undo `prepare`: remove the directory we made, and its setting with it (a later
    serve in this process, a test, must not inherit a directory that is gone)."""
    if made:
        shutil.rmtree(directory, ignore_errors=True)
        if os.environ.get(MULTIPROC_ENV) == str(directory):
            del os.environ[MULTIPROC_ENV]
