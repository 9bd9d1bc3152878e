"""Database URLs as they may be shown: in logs, errors, reprs and start-up lines."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["masked_url", "shown"]


def masked_url(url: str) -> str:
    """The URL with any password (in the authority or as a parameter) replaced by ***;
    the rest exactly as given."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, sep, _password = userinfo.partition(":")
            netloc = f"{user}:***@{hostport}" if sep else netloc
        query = "&".join(
            f"{key}=***" if key.strip().lower() == "password" else pair
            for pair in parts.query.split("&")
            for key in [pair.partition("=")[0]]
        )
    except ValueError:
        return "postgresql://***"  # unparseable: show nothing of it
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return shown + (f"?{query}" if parts.query else "")


def shown(database: str) -> str:
    """What to print of a database setting: a file path as is, a URL masked."""
    return masked_url(database) if "://" in database else database
