"""Logging for every tierdesk process, set up in one place (`configure`): ``tierdesk
serve`` and what it starts (the HTTP processes behind the waitress front, the inbox
worker processes), ``tierdesk worker`` and ``tierdesk http`` run alone.

In: ``TIERDESK_LOG_FORMAT`` from the environment (children inherit it): ``text``
(the default) or ``json``; anything else is a `ConfigError` naming the variable.
Out, on stderr (the access lines of ``--access-log`` too), one line per record:

- ``text``: ``<ISO UTC time> <logger> <message>``, as readable as before;
- ``json``: one JSON object per line: ``timestamp`` (ISO 8601 UTC, milliseconds, Z),
  ``level``, ``logger``, ``message``, ``pid``, every structured field the record was
  given (``extra=``; `webhooks.events.log_event` gives tenant, vendor, ticket, event,
  kind, outcome…) and, after an error, ``exception`` (the traceback as one string).

Either way the message and every field pass through `webhooks.events.loggable`: no raw
newline, NUL or other control character reaches the log from a payload, and each value
is bounded. Tracebacks stay multi-line in the text format (they are ours, not a
sender's) and are one JSON string in the json format. Secrets never reach a record:
`webhooks.settings.Secret` has no printable value and database URLs are masked
(`store.urls`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TextIO

from tierdesk.config import ConfigError
from webhooks.events import loggable

FORMATS = ("text", "json")
MESSAGE_CHARS = 4000  # a message's bound; a field's is loggable's own (200)
FIELD_CHARS = 1000  # fields from log_event are already within 200: applying it again is a no-op
EXCEPTION_CHARS = 20000

# What every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__)
_STANDARD |= {"message", "asctime", "taskName", "timestamp"}


class _Timestamps:
    """``<ISO UTC time>.<ms>Z`` of a record; the seconds part formatted once per second
    (strftime was a tenth of a line's cost). A formatter's own: handlers format under
    their lock."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._text}.{int(record.msecs):03d}Z"


def fields_of(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields a record was given (``extra=``), each log-safe."""
    out: dict[str, object] = {}
    for key, value in record.__dict__.items():
        if key in _STANDARD or key.startswith("_"):
            continue
        if value is None or isinstance(value, bool | int | float):
            out[key] = value
        else:
            out[key] = loggable(value, FIELD_CHARS)
    return out


class TextFormatter(logging.Formatter):
    """``<ISO UTC time> <logger> <message>``, the message on one line."""

    def __init__(self) -> None:
        super().__init__("%(timestamp)s %(name)s %(message)s")
        self._timestamp = _Timestamps()

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802  logging's name
        record.message = loggable(record.message, MESSAGE_CHARS)
        record.timestamp = self._timestamp(record)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self) -> None:
        super().__init__()
        self._timestamp = _Timestamps()

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "timestamp": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": loggable(record.getMessage(), MESSAGE_CHARS),
            "pid": record.process,
        }
        for key, value in fields_of(record).items():
            doc.setdefault(key, value)  # a field never replaces the ones above
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)[:EXCEPTION_CHARS]
        elif record.exc_text:
            doc["exception"] = record.exc_text[:EXCEPTION_CHARS]
        # A lone surrogate in a traceback (the only text not made log-safe above) would
        # stop the stream's encoder: written as its JSON escape instead.
        line = json.dumps(doc, ensure_ascii=False, default=str)
        return line.encode("utf-8", "backslashreplace").decode("utf-8")


def log_format(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    chosen = (env.get("TIERDESK_LOG_FORMAT") or "text").strip().lower()
    if chosen not in FORMATS:
        raise ConfigError(f"TIERDESK_LOG_FORMAT: expected one of {', '.join(FORMATS)}")
    return chosen


def formatter(env: Mapping[str, str] | None = None) -> logging.Formatter:
    return JsonFormatter() if log_format(env) == "json" else TextFormatter()


def configure(env: Mapping[str, str] | None = None, stream: TextIO | None = None) -> str:
    """The root logger (level INFO) writes to ``stream`` (stderr) in the chosen format;
    warnings and uncaught exceptions (main thread or any other) go through it too, so
    that nothing leaves a json-format process as a line that is not JSON. Returns the
    format. Called again, it replaces what it set up before."""
    chosen = log_format(env)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_tierdesk", False)]:
        root.removeHandler(old)
    setattr(handler, "_tierdesk", True)  # noqa: B010  marks it ours, to replace later
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # What no tierdesk format shows is not gathered for every record: the caller's file
    # and line (a walk up the stack), the thread's and the process's names (the logging
    # HOWTO's "Optimization" section names these switches). The pid stays: json shows it.
    logging._srcfile = None  # documented there as the way to turn it off
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
    return chosen


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Whatever sys.stderr is when a record is written (as logging's own last resort
    does), not the stream it was when the handler was made."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def _uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("tierdesk").critical("uncaught exception", exc_info=(kind, error, trace))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("tierdesk").critical(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )
