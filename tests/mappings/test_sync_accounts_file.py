"""accounts.json streamed in (`read_accounts`) and written whole or not at all
(`AtomicFile`, `AccountsWriter`)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings import BUNDLED, MappingError
from mappings.sync import accounts_file
from mappings.sync.accounts_file import (
    AccountsWriter,
    AtomicFile,
    pretty,
    read_accounts,
    remove_stale_temps,
)


def read_all(path: Path) -> tuple[dict[str, Any], list[Any]]:
    header, accounts = read_accounts(path)
    items = list(accounts)
    return header, items


def test_the_bundled_file_reads_as_json_load_reads_it() -> None:
    path = BUNDLED / "accounts.json"
    header, accounts = read_all(path)
    whole = json.loads(path.read_text(encoding="utf-8"))
    assert accounts == whole["accounts"]
    assert header == {"schema_version": 1}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(
    accounts=st.lists(json_values, max_size=6),
    before=st.dictionaries(
        st.text(max_size=4).filter(lambda k: k != "accounts"), json_values, max_size=2
    ),
    after=st.dictionaries(
        st.text(max_size=4).filter(lambda k: k != "accounts"), json_values, max_size=2
    ),
    chunk=st.integers(min_value=1, max_value=9),
    indent=st.sampled_from([None, 0, 2]),
)
def test_any_document_reads_the_same_in_any_chunk_size(
    accounts: list[Any],
    before: dict[str, Any],
    after: dict[str, Any],
    chunk: int,
    indent: int | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Tiny read chunks cut values (numbers, strings, escapes) anywhere: the streamed
    reading must still equal json.loads of the whole text."""
    document = {
        **before,
        "accounts": accounts,
        **{k: v for k, v in after.items() if k not in before},
    }
    path = tmp_path_factory.mktemp("doc") / "accounts.json"
    path.write_text(json.dumps(document, indent=indent), encoding="utf-8")
    old = accounts_file._CHUNK
    accounts_file._CHUNK = chunk
    try:
        header, items = read_all(path)
    finally:
        accounts_file._CHUNK = old
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert items == expected["accounts"]
    assert header == {k: v for k, v in expected.items() if k != "accounts"}


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('{"accounts": [{"id": "a"},]}', "json"),
        ('{"accounts": [{"id": "a"}', "json"),
        ('{"accounts": []} trailing', "json"),
        ('{"accounts": [], "accounts": []}', "json"),
        ("[]", "json"),
    ],
)
def test_a_broken_file_is_refused_with_the_file_and_rule(
    tmp_path: Path, text: str, rule: str
) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        read_all(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.pointer, problem.rule) == ("accounts.json", "", rule)


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_bytes(b'{"accounts": [{"id": "\xff"}]}')
    with pytest.raises(MappingError) as caught:
        read_all(path)
    assert caught.value.problems[0].rule == "utf-8"


def test_a_missing_file_has_no_accounts(tmp_path: Path) -> None:
    assert read_all(tmp_path / "accounts.json") == ({}, [])


def test_written_file_reads_back_and_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    accounts = json.loads((BUNDLED / "accounts.json").read_text(encoding="utf-8"))["accounts"]
    with AtomicFile(path) as out:
        writer = AccountsWriter(out.write, {"schema_version": 1, "owner": "ops"})
        for account in accounts:
            writer.account(account)
        writer.close()
        out.commit()
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document == {"schema_version": 1, "owner": "ops", "accounts": accounts}
    assert '"domains": ["acme.example"]' in path.read_text(encoding="utf-8")  # lists inline


def test_an_empty_list_is_valid_json(tmp_path: Path) -> None:
    chunks: list[str] = []
    writer = AccountsWriter(chunks.append, {})
    writer.close()
    assert json.loads("".join(chunks)) == {"schema_version": 1, "accounts": []}


@pytest.mark.parametrize("value", [{}, [], {"a": [1, {"b": []}]}, [[1], {"x": "é"}], "s", 1.5])
def test_pretty_is_json(value: Any) -> None:
    assert json.loads(pretty(value, "  ")) == value


OLD = '{"schema_version": 1, "accounts": []}\n'


def test_a_failed_rename_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(OLD, encoding="utf-8")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"), AtomicFile(path, replace=broken_replace) as out:
        out.write('{"schema_version": 1, "accounts": [{"id": "new"}]}')
        out.commit()
    assert path.read_text(encoding="utf-8") == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accounts.json"]


def test_a_failure_mid_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(OLD, encoding="utf-8")
    with pytest.raises(RuntimeError), AtomicFile(path) as out:
        out.write('{"schema_version": 1, "accounts": [')
        raise RuntimeError("killed half way")
    assert path.read_text(encoding="utf-8") == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accounts.json"]


def test_commit_fsyncs_the_file_then_the_directory_and_keeps_the_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(OLD, encoding="utf-8")
    path.chmod(0o640)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    events: list[str] = []

    def replace(src: str, dst: str) -> None:
        events.append(f"replace after {synced}")
        Path(src).rename(dst)

    with AtomicFile(path, replace=replace) as out:
        out.write('{"accounts": []}')
        out.commit()
    assert events == ["replace after ['file']"]
    assert synced == ["file", "dir"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text(encoding="utf-8") == '{"accounts": []}'


def test_stale_temps_go_but_nothing_else(tmp_path: Path) -> None:
    (tmp_path / ".accounts.json.abc123.tierdesk-tmp").write_text("half", encoding="utf-8")
    (tmp_path / "accounts.json").write_text(OLD, encoding="utf-8")
    (tmp_path / "tiers.json").write_text("{}", encoding="utf-8")
    assert remove_stale_temps(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accounts.json", "tiers.json"]
