"""Reading a helpdesk's directory page by page, resumably, and telling someone how far."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from connector.directory import Directory, Page
from mappings.sync.spool import Spool, SyncError


class Progress(Protocol):
    """Where a job says how far it is (a progress bar on a terminal, or nothing)."""

    def begin(self, phase: str, total: int | None, done: int) -> None: ...

    def advance(self, records: int) -> None: ...

    def end(self) -> None: ...


class NoProgress:
    def begin(self, phase: str, total: int | None, done: int) -> None:
        pass

    def advance(self, records: int) -> None:
        pass

    def end(self) -> None:
        pass


def run_pages(
    directory: Directory,
    spool: Spool,
    phases: tuple[str, ...],
    progress: Progress,
    *,
    people: bool,
    work: Callable[[str, Page], dict[str, int]] | None = None,
    store: Callable[[Page], None] | None = None,
) -> None:
    """Every page of every phase not done yet, from the checkpoint's cursor on.

    ``work`` acts on a page (a push writes what differs; it commits its own progress
    record by record), then ``store`` keeps the page's records, its counts and the next
    cursor in one transaction. A page is done only once that transaction commits.
    """
    for phase in phases:
        done, cursor = spool.position(phase)
        if done:
            continue
        progress.begin(phase, directory.total(phase), spool.counts().get(f"read:{phase}", 0))
        # The cursors followed in this run (a resumed run knows only its own start).
        seen = {cursor} if cursor is not None else set()
        try:
            while True:
                page = directory.page(phase, cursor, people=people)
                if page.after is not None:
                    if page.after in seen:
                        raise SyncError(
                            f"the helpdesk repeated cursor {page.after!r} of {phase} "
                            f"(asked for the page after {cursor!r}): its pages go round "
                            "in a circle; retry later, or with --restart"
                        )
                    seen.add(page.after)
                counts = work(phase, page) if work is not None else {}
                records = len(page.orgs) + len(page.people)
                with spool.transaction():
                    if store is not None:
                        store(page)
                    spool.add_counts(
                        {
                            f"read:{phase}": records,
                            "organizations": len(page.orgs),
                            "people": len(page.people),
                            "pages": 1,
                            "calls": page.calls,
                            **counts,
                        }
                    )
                    spool.advance(phase, page.after)
                progress.advance(records)
                if page.after is None:
                    break
                cursor = page.after
        finally:
            progress.end()
