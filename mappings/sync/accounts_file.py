"""accounts.json read one account at a time, and written whole or not at all.

`read_accounts` streams the file: the top-level keys other than ``accounts`` (small:
``schema_version`` and whatever an admin keeps beside it) come back whole, the
accounts one by one, so reading a file of 100,000 accounts holds one of them at a time.

`AtomicFile` writes the new file beside the old one (a temp file in the same
directory, so that the rename cannot cross file systems), fsyncs it, renames it over
the old one with ``os.replace`` and fsyncs the directory so that the rename itself
survives a crash. Until the rename the old file is untouched; after it the new one is
complete. A failure anywhere before removes the temp file.

Two pulls may share a mappings directory (two tenants, both run from cron). They
serialise on an exclusive ``flock`` of ``.accounts.json.lock`` (`accounts_lock`): a
pull holds it while it reads accounts.json (taking its `Fingerprint`), while it
creates its temp file and clears stale ones, and from checking that accounts.json is
still the file it read until the rename. It is not held while the pull waits for its
confirmation (a person at a prompt would stall every other pull): the fingerprint
check at the commit finds a write made in between instead, and the commit is refused.
Each writer holds a ``flock`` on its own temp file, so that only temps whose writer is
gone count as stale.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from mappings.problems import MappingError, Problem

ACCOUNTS = "accounts.json"
_CHUNK = 1 << 16
_WHITESPACE = " \t\r\n"
_NUMBER = frozenset("0123456789+-.eE")
TEMP_PREFIX = f".{ACCOUNTS}."
TEMP_SUFFIX = ".tierdesk-tmp"
LOCK = f".{ACCOUNTS}.lock"


class _Stream:
    """A JSON text read in chunks, decoded a value at a time with ``raw_decode``."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._consumed = 0  # characters dropped from the buffer's front, for messages
        self._decoder = json.JSONDecoder()

    @property
    def offset(self) -> int:
        return self._consumed + self._pos

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._handle.read(_CHUNK)
        if not data:
            self._eof = True
            return False
        self._consumed += self._pos
        self._buf = self._buf[self._pos :] + data
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end)."""
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in _WHITESPACE:
                self._pos += 1
            if self._pos < len(self._buf) or not self._fill():
                return self._buf[self._pos : self._pos + 1]

    def take(self, expected: str) -> None:
        found = self.peek()
        if found != expected:
            raise ValueError(f"expected {expected!r} but found {found or 'the end'!r}")
        self._pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if self._fill():
                    continue  # the value went on past the buffer
                raise ValueError(exc.msg) from None
            # A number cut at the buffer's end ("12" of "125", "0." of "0.5") parses as a
            # shorter one: while only number characters follow it, read on.
            if (
                isinstance(value, int | float)
                and not self._eof
                and all(c in _NUMBER for c in self._buf[end:])
                and self._fill()
            ):
                continue
            self._pos = end
            return value


def read_accounts(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The file's other top-level keys (complete once the iterator is exhausted) and
    its accounts, one at a time. `MappingError` (file, "", rule "json"/"utf-8") when it
    is not a JSON object; a missing file has no accounts."""
    header: dict[str, Any] = {}
    if not path.exists():
        return header, iter(())
    return header, _accounts(path, header)


def _refuse(rule: str, message: str) -> MappingError:
    return MappingError([Problem(ACCOUNTS, "", rule, message)])


def _accounts(path: Path, header: dict[str, Any]) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as handle:
            stream = _Stream(handle)
            try:
                yield from _document(stream, header)
            except UnicodeDecodeError:
                raise  # a ValueError too, but not a JSON one
            except ValueError as exc:
                raise _refuse(
                    "json", f"not valid JSON near character {stream.offset}: {exc}"
                ) from None
    except UnicodeDecodeError as exc:
        raise _refuse("utf-8", f"not UTF-8 text (byte {exc.start} of a block)") from None
    except OSError as exc:
        raise _refuse("unreadable", f"{path}: {exc.strerror}") from None


def _document(stream: _Stream, header: dict[str, Any]) -> Iterator[dict[str, Any]]:
    stream.take("{")
    seen_accounts = False
    if stream.peek() == "}":
        stream.take("}")
    else:
        while True:
            key = stream.value()
            if not isinstance(key, str):
                raise ValueError("an object key must be a string")
            stream.take(":")
            if key == "accounts":
                if seen_accounts:
                    raise ValueError("the key 'accounts' appears twice")
                seen_accounts = True
                if stream.peek() != "[":
                    header[key] = stream.value()  # not a list: the schema check says why
                else:
                    yield from _array(stream)
            else:
                header[key] = stream.value()
            if stream.peek() == ",":
                stream.take(",")
                continue
            stream.take("}")
            break
    if stream.peek():
        raise ValueError("more data after the document")


def _array(stream: _Stream) -> Iterator[Any]:
    stream.take("[")
    if stream.peek() == "]":
        stream.take("]")
        return
    while True:
        yield stream.value()
        if stream.peek() == ",":
            stream.take(",")
            continue
        stream.take("]")
        return


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


@contextlib.contextmanager
def accounts_lock(directory: Path, *, writing: bool = True) -> Iterator[None]:
    """An exclusive lock on the directory's accounts.json among tierdesk's writers.

    The lock file is removed on release, so that it does not linger in the mappings
    directory. A waiter may then hold a lock on a removed file: it checks, once it has
    the lock, that the path still names the file it locked, and tries again if not.

    ``writing=False``: a read that may go on unlocked where no lock file can be made
    (a read-only mount, a ConfigMap: `sync pull --dry-run` there); no tierdesk pull
    can write there either.
    """
    path = directory / LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if writing or exc.errno not in _READ_ONLY:
                raise
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                current = path.stat()
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (
            held.st_dev,
            held.st_ino,
        ):
            break
        os.close(fd)  # released and removed by its holder while we waited
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # while still held: a waiter then sees it is gone
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Which accounts.json a pull read: a rename (another pull), an edit in place or a
    truncation changes one of these."""

    inode: int | None  # None: there was no file
    mtime_ns: int = 0
    size: int = 0

    @classmethod
    def of(cls, path: Path) -> Fingerprint:
        try:
            st = path.stat()
        except FileNotFoundError:
            return cls(None)
        return cls(st.st_ino, st.st_mtime_ns, st.st_size)


def remove_stale_temps(directory: Path) -> int:
    """Temp files an interrupted write left behind (never the accounts file itself, nor
    the temp file of a write still going on: its writer holds a lock on it). Call it
    holding `accounts_lock`, so that no temp is made between its creation and its lock."""
    removed = 0
    for stale in directory.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        try:
            fd = os.open(stale, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # another pull is writing it
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            removed += 1
    return removed


class AtomicFile:
    """``with AtomicFile(path) as out: out.write(…); out.commit()``: without
    ``commit`` (an exception, a refusal) the temp file is removed and ``path`` never
    changed.

    ``read``: the fingerprint of the file the new one was made from; the commit is
    then refused (`MappingError`, rule ``changed_since_read``) if ``path`` is no longer
    that file, and checked and renamed under `accounts_lock`."""

    def __init__(self, path: Path, *, replace: Callable[[str, str], None] = os.replace) -> None:
        self.path = path
        self._replace = replace
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
        self.temp = Path(name)
        # Held until the file is closed: `remove_stale_temps` leaves a locked temp alone.
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._handle: IO[str] | None = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self.committed = False

    def write(self, text: str) -> None:
        if self._handle is None:
            raise ValueError("the file is closed")
        self._handle.write(text)

    def commit(self, read: Fingerprint | None = None) -> None:
        handle = self._handle
        if handle is None:
            raise ValueError("the file is closed")
        handle.flush()
        os.fsync(handle.fileno())
        if read is None:
            self._rename(handle)
            return
        with accounts_lock(self.path.parent):
            if Fingerprint.of(self.path) != read:
                raise _refuse(
                    "changed_since_read",
                    f"{self.path} was changed (by another sync pull or an editor) after this "
                    "pull read it; nothing written: run the pull again to merge into the "
                    "file as it is now",
                )
            self._rename(handle)

    def _rename(self, handle: IO[str]) -> None:
        # Keep the old file's permissions (mkstemp makes 0600).
        mode = self.path.stat().st_mode & 0o7777 if self.path.exists() else 0o644
        self.temp.chmod(mode)
        self._replace(str(self.temp), str(self.path))
        self.committed = True
        # Closed (its lock released) only once renamed: until then it is a temp in use.
        handle.close()
        self._handle = None
        fsync_directory(self.path.parent)

    def close(self) -> None:
        """Without a commit: the temp file goes, the old file stays as it was."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if not self.committed:
            with contextlib.suppress(FileNotFoundError):
                self.temp.unlink()

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def pretty(value: Any, indent: str = "") -> str:
    """JSON as people write these files: objects one key a line, a list of plain values
    (domains, contacts, ids) on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {pretty(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        items = [inner + pretty(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)


class AccountsWriter:
    """Writes ``{"schema_version": 1, …, "accounts": [ … ]}`` an account at a time, in
    the bundled file's style: one key per line at the top, each account indented."""

    def __init__(self, out: Callable[[str], None], header: dict[str, Any]) -> None:
        self._out = out
        self._count = 0
        head = {"schema_version": 1, **{k: v for k, v in header.items() if k != "accounts"}}
        self._out("{\n")
        for key, value in head.items():
            self._out(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n")
        self._out('  "accounts": [')

    def account(self, account: dict[str, Any]) -> None:
        self._out(("," if self._count else "") + "\n    " + pretty(account, "    "))
        self._count += 1

    def close(self) -> None:
        self._out("\n  ]\n}\n" if self._count else "]\n}\n")
