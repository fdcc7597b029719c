"""Logging for people and for log collectors: one setup, one request id.

``configure_logging`` sends records to standard error, as readable text when
that is a terminal and as one JSON object per line otherwise (journald,
``docker logs`` and log shippers read those without guessing), with the
fields ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and
``request_id`` when the record was made while handling a request.

``request_id`` is a context variable: the server's middleware sets it for each
HTTP request (``new_request_id`` / ``clean_request_id``), and every log line
written while that request is handled (in any task it starts) carries it.

Messages are what the code formats; guidebot never logs what staff typed
(questions, concern text, notes), so neither do these lines. Exceptions are
reduced to their type and a traceback of code locations in JSON mode; their
messages could quote input, so they are left out.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import secrets
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "guidebot_request_id", default=None
)
"""The id of the request being handled, or None outside a request."""

REQUEST_ID_HEADER = "X-Request-Id"
LEVEL_ENV = "GUIDEBOT_LOG_LEVEL"
FORMAT_ENV = "GUIDEBOT_LOG_FORMAT"
QUIET_LIBRARIES = ("pypdf", "docx", "aiohttp.access")
"""Libraries that narrate (a broken file's "EOF marker not found", every request
line): our own messages say what matters."""

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def new_request_id() -> str:
    """A fresh, short, unguessable id (16 hex digits)."""
    return secrets.token_hex(8)


def clean_request_id(offered: str | None) -> str:
    """The caller's id (a proxy's X-Request-Id) when it is short and plain, else a new one.
    Anything else could smuggle text or line breaks into the logs."""
    if offered and _SANE_ID.fullmatch(offered):
        return offered
    return new_request_id()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            entry["request_id"] = current
        if record.exc_info and record.exc_info[0] is not None:
            kind, _value, trace = record.exc_info
            entry["error"] = kind.__name__
            # Where it happened, not what it said: an exception message may quote input.
            entry["where"] = [
                f"{frame.filename}:{frame.lineno} {frame.name}"
                for frame in traceback.extract_tb(trace)[-5:]
            ]
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The terminal's format, with ``[request id]`` when there is one."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        current = request_id.get()
        return f"{text} [{current}]" if current else text


def _level(level: int | str | None, env: Mapping[str, str]) -> int:
    chosen = level if level is not None else env.get(LEVEL_ENV) or logging.WARNING
    if isinstance(chosen, int):
        return chosen
    number = logging.getLevelName(chosen.strip().upper())
    return number if isinstance(number, int) else logging.WARNING


def configure_logging(
    stream_is_tty: bool | None = None,
    level: int | str | None = None,
    *,
    stream: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (default standard error), replacing
    any handler set up before. ``stream_is_tty`` None: ask the stream, unless
    GUIDEBOT_LOG_FORMAT says "json" or "text". ``level`` None: GUIDEBOT_LOG_LEVEL,
    else WARNING. Returns the handler, for tests."""
    env = os.environ if env is None else env
    out = stream if stream is not None else sys.stderr
    forced = env.get(FORMAT_ENV, "").strip().lower()
    if stream_is_tty is None:
        if forced in ("json", "text"):
            stream_is_tty = forced == "text"
        else:
            isatty = getattr(out, "isatty", None)
            stream_is_tty = bool(isatty and isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(TextFormatter() if stream_is_tty else JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_level(level, env))
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.ERROR)
    return handler


def set_level(level: int | str) -> None:
    """Change the level after ``configure_logging`` (``serve`` wants INFO by default)."""
    logging.getLogger().setLevel(_level(level, {}))
