"""The database setting, parsed strictly (store/urls.py): table-driven.

Every refused value carries a password cut in two by the character that breaks it
(``hunter2`` + ``#`` + ``swordfish``); neither half may appear in the error, and
nothing is created on disk. The same values through the real commands live in
tests/tierdesk/test_database_setting.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from store import StoreError, has_ledger, open_ledger, open_store
from store.urls import parse_database, password_of, shown

HALVES = ("hunter2", "swordfish")


def secret(delimiter: str) -> str:
    return delimiter.join(HALVES)


ACCEPTED = [
    ("tierdesk.sqlite3", "sqlite", "tierdesk.sqlite3", "tierdesk.sqlite3"),
    ("data/my inbox.db", "sqlite", "data/my inbox.db", "data/my inbox.db"),
    ("/var/lib/tierdesk/t.db", "sqlite", "/var/lib/tierdesk/t.db", "/var/lib/tierdesk/t.db"),
    ("./odd=name:1.db", "sqlite", "./odd=name:1.db", "./odd=name:1.db"),
    ("sqlite:///relative.db", "sqlite", "relative.db", "relative.db"),
    ("sqlite:////abs/t.db", "sqlite", "/abs/t.db", "/abs/t.db"),
    (
        "postgresql://u:hunter2%23swordfish%2F%3F%40@db:5432/x",
        "postgresql",
        None,
        "postgresql://u:***@db:5432/x",
    ),
    ("postgres://u@db/x", "postgresql", None, "postgres://u@db/x"),
    ("postgresql:///x?host=/run/pg", "postgresql", None, "postgresql:///x?host=/run/pg"),
    (
        "postgresql://db/x?password=hunter2&sslmode=require",
        "postgresql",
        None,
        "postgresql://db/x?password=***&sslmode=require",
    ),
    ("postgresql://h1:5432,h2:5433/x", "postgresql", None, "postgresql://h1:5432,h2:5433/x"),
    ("postgresql://u:hunter2@[::1]:5432/x", "postgresql", None, "postgresql://u:***@[::1]:5432/x"),
    (
        "postgresql://u@db/x?options=-csearch_path%3Dt_1&connect_timeout=5",
        "postgresql",
        None,
        "postgresql://u@db/x?options=-csearch_path%3Dt_1&connect_timeout=5",
    ),
]


@pytest.mark.parametrize(("value", "kind", "target", "printed"), ACCEPTED)
def test_accepted(value: str, kind: str, target: str | None, printed: str) -> None:
    database = parse_database(value)
    assert (database.kind, database.target, database.shown) == (kind, target or value, printed)
    assert shown(value) == printed
    assert "hunter2" not in repr(database)


REFUSED = [
    # An unencoded character of the password moves where a URL parser ends the authority.
    (f"postgresql://u:{secret('#')}@db/x", "'#'"),
    (f"postgresql://u:{secret('/')}@db/x", "'@' after its host"),
    (f"postgresql://u:{secret('?')}@db:5432/x", "'@' after its host"),
    (f"postgresql://u:{secret('@')}@db/x", "more than one '@'"),
    (f"postgres://u:{secret('%zz')}@db/x", "'%'"),
    (f"postgresql://u:{secret(' ')}@db/x", "percent-encoded"),
    (f"postgresql://u:{secret('é')}@db/x", "percent-encoded"),
    (f"postgresql://u:{secret(':')}@db:port/x", "host part"),
    (f"postgresql://u@db/x?PassWord={secret('-')}", "query"),
    (f"postgresql://u@db/x?{secret('')}", "query"),
    # A libpq keyword string, or a URL without its scheme or its //: never a file.
    (f"host=db password={secret('-')} dbname=x", "libpq"),
    (f"dbname=x password={secret('')}", "libpq"),
    (f"u:{secret('')}@db/x", "neither"),
    (f"postgresql:u:{secret('')}@db/x", "neither"),
    (f"{secret('@')}", "neither"),
    (f"mysql://u:{secret('')}@db/x", "mysql://"),
    (f"u:{secret('')}://db", "that scheme"),
    # Neither a path nor a URL.
    ("", "empty"),
    (" tierdesk.sqlite3", "space"),
    (f"{secret('')}.db\n", "control character"),
    (f"/var/{secret('')}\x00.db", "control character"),
    (":memory:", "neither"),
    ("sqlite://", "in-memory"),
    ("sqlite:///file::memory:", "in-memory"),
    (f"sqlite:///t.db?{secret('')}", "no query"),
]


@pytest.mark.parametrize(("value", "reason"), REFUSED)
def test_refused_without_echoing_it(
    value: str, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for attempt in (parse_database, open_store, open_ledger):
        with pytest.raises(StoreError) as caught:
            attempt(value)
        message = str(caught.value)
        assert reason in message
        assert not any(half in message for half in HALVES), message
        assert caught.value.__cause__ is None
    assert not has_ledger(value)
    assert shown(value) == "(an invalid database setting)"
    assert list(tmp_path.iterdir()) == []  # no file named after it


def test_password_of_gives_it_as_written_and_decoded() -> None:
    url = "postgresql://u:a%23b@db/x?password=c%2Fd"
    assert sorted(password_of(url)) == ["a#b", "a%23b", "c%2Fd", "c/d"]
    assert password_of("postgresql://u@db/x") == []
