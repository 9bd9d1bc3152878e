"""The database setting (``TIERDESK_DATABASE``, ``DATABASE_URL``), parsed strictly, and
what of it may be shown in logs, errors, reprs and start-up lines.

In: one string. Out: a `Database` (a SQLite file path, or a ``postgresql://`` URL), or
a `StoreError` that says what is wrong and never quotes the value, since a malformed
value is where a password leaks from:

- ``postgresql://`` (or ``postgres://``) URLs, RFC 3986 as libpq reads them: the user
  and password percent-encoded (``#`` as ``%23``, ``/`` as ``%2F``, ``?`` as ``%3F``,
  ``@`` as ``%40``, ``%`` as ``%25``). An unencoded one moves the authority's end, so
  that a URL parser would take part of the password for the host, the path or a
  fragment, and print it. Refused: a ``#`` anywhere (a database URL has no fragment),
  an ``@`` after the host or more than one ``@``, a character RFC 3986 does not allow
  in the user or password, a ``%`` not followed by two hex digits, a host or port that
  is not one, a query that is not ``key=value&…``.
- ``sqlite:///relative.db``, ``sqlite:////absolute.db`` (SQLAlchemy's form).
- A plain path. Taken as a file only when it is plainly one: absolute, starting with
  ``./`` or ``../``, or a bare name of letters, digits, ``.``, ``_``, ``-``, ``+``,
  spaces and ``/``. Anything else (a libpq keyword string ``host=… password=…``, a
  ``user:secret@host``, a scheme without ``//``) is refused, never created as a file.
- Refused everywhere: an empty value, control characters, leading or trailing space,
  an in-memory SQLite database (each thread and process would have its own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from store.base import StoreError

__all__ = ["Database", "masked_url", "parse_database", "password_of", "shown"]

_POSTGRES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# RFC 3986 userinfo: unreserved / pct-encoded / sub-delims / ":".
_USERINFO = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:%]*$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%]*)(:[0-9]{1,5})?$")
_PATH = re.compile(r"^(/[A-Za-z0-9\-._~!$&'()*+,;=:%]*)?$")
_QUERY = re.compile(r"^[a-z_]+=[A-Za-z0-9\-._~!$'()*+,;=:%/]*$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PLAIN_NAME = re.compile(r"^[\w.+\- ][\w.+\- /]*$")


@dataclass(frozen=True, slots=True)
class Database:
    """A database setting that passed `parse_database`. ``target`` (the path, or the
    whole URL with its password) is kept out of the repr; ``shown`` is what to print."""

    kind: Literal["sqlite", "postgresql"]
    target: str = field(repr=False)
    shown: str


def parse_database(value: str) -> Database:
    """The database ``value`` names; `StoreError` (not quoting it) when it is neither a
    clear file path nor a valid database URL."""
    if not value:
        raise StoreError("the database setting is empty: give a SQLite file path or a URL")
    if _CONTROL.search(value):
        raise StoreError("the database setting holds a control character (a newline?)")
    if value != value.strip():
        raise StoreError("the database setting starts or ends with a space")
    if "://" in value:
        scheme, _, rest = value.partition("://")
        scheme = scheme.lower()
        if scheme in _POSTGRES:
            _check_postgres(rest)
            return Database("postgresql", value, masked_url(value))
        if scheme == "sqlite":
            if "?" in rest or "#" in rest:
                raise StoreError("a sqlite:// URL takes no query or fragment: give the file path")
            return _sqlite(rest.removeprefix("/"))
        known = scheme if re.fullmatch(r"[a-z][a-z0-9+.-]{0,20}", scheme) else "that scheme"
        raise StoreError(
            f"{known}:// is not a database tierdesk knows: give a SQLite file path"
            " or a postgresql:// URL"
        )
    if value.startswith(("/", "./", "../")):
        return _sqlite(value)
    if _SCHEME.match(value) or not _PLAIN_NAME.match(value):
        # A keyword string (host=… password=…), user:secret@host, postgresql:…: none of
        # them is a file anyone meant to create.
        raise StoreError(
            "the database setting is neither a postgresql:// URL nor a plain file path"
            " (a libpq 'host=… password=…' string is not taken: write it as"
            " postgresql://user:password@host/db, percent-encoding the password; for a file"
            " whose name has other characters, start it with ./ or give the absolute path)"
        )
    return _sqlite(value)


def _sqlite(path: str) -> Database:
    if path in ("", ":memory:") or path.startswith("file:"):
        # Each thread and process has its own connection: an in-memory database would
        # be a different, empty one for each of them.
        raise StoreError("an in-memory SQLite database cannot be shared; give a file path")
    return Database("sqlite", path, path)


def _check_postgres(rest: str) -> None:
    encode = "percent-encode it in the user or password ('#' %23, '/' %2F, '?' %3F, '@' %40)"
    if "#" in rest:
        raise StoreError(f"the database URL holds a '#' (a URL has no fragment here): {encode}")
    end = _authority_end(rest)
    authority, after = rest[:end], rest[end:]
    if "@" in after:
        raise StoreError(f"the database URL has an '@' after its host: {encode}")
    if authority.count("@") > 1:
        raise StoreError(f"the database URL has more than one '@': {encode}")
    if _BAD_PERCENT.search(rest):
        raise StoreError(
            "the database URL has a '%' not followed by two hex digits: write % as %25"
        )
    userinfo, _, hosts = authority.rpartition("@")
    if not _USERINFO.match(userinfo):
        raise StoreError(
            "the database URL's user or password holds a character that must be"
            " percent-encoded (a space, a quote, a bracket, a non-ASCII letter…)"
        )
    if not all(_HOST.match(host) for host in hosts.split(",")):
        raise StoreError("the database URL's host part is not host[:port][,host[:port]…]")
    path, _, query = after.partition("?")
    if not _PATH.match(path):
        raise StoreError("the database URL's path is not /database-name")
    if query and not all(_QUERY.match(pair) for pair in query.split("&")):
        raise StoreError("the database URL's query is not key=value&key=value…")


def _authority_end(rest: str) -> int:
    """Where the authority of ``rest`` (a URL after its ``//``) ends: at its path or query."""
    return min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))


def password_of(url: str) -> list[str]:
    """The password a checked postgresql:// URL carries, as written and decoded (what an
    error message from the server or the driver might contain); empty when none."""
    rest = url.partition("://")[2]
    end = _authority_end(rest)
    userinfo, _, _ = rest[:end].rpartition("@")
    found = [p for p in (userinfo.partition(":")[2],) if p]
    query = rest[end:].partition("?")[2]
    found += [p.partition("=")[2] for p in query.split("&") if p.startswith("password=")]
    return [form for p in found if p for form in {p, unquote(p)}]


def masked_url(url: str) -> str:
    """A postgresql:// URL with its password (in the authority or as a parameter)
    replaced by ***, the rest exactly as given; nothing of it but the scheme when it is
    malformed (where its password ends cannot be known then)."""
    scheme, _, rest = url.partition("://")
    try:
        _check_postgres(rest)
    except StoreError:
        return f"{scheme}://(malformed, not shown)"
    end = _authority_end(rest)
    authority, after = rest[:end], rest[end:]
    userinfo, _, hosts = authority.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    shown_authority = f"{user}:***@{hosts}" if colon else authority
    path, question, query = after.partition("?")
    shown_query = "&".join(
        "password=***" if pair.startswith("password=") else pair for pair in query.split("&")
    )
    return f"{scheme}://{shown_authority}{path}{question}{shown_query if question else ''}"


def shown(database: str) -> str:
    """What to print of a database setting: a file path as is, a URL masked, and
    nothing of a value `parse_database` refuses."""
    try:
        return parse_database(database).shown
    except StoreError:
        return "(an invalid database setting)"
