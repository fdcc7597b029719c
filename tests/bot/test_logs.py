"""Structured logs: JSON lines off a terminal, text on one, a request id on each line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import (
    JsonFormatter,
    clean_request_id,
    configure_logging,
    new_request_id,
    request_id,
)


@pytest.fixture
def restore_root() -> Iterator[None]:
    """configure_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("pypdf", "docx", "aiohttp.access")}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in quiet.items():
            logging.getLogger(name).setLevel(old)


def test_off_a_terminal_each_record_is_one_json_line(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging(stream=out, env={})
    log = logging.getLogger("guidebot.test")
    log.warning("outbox row %d given up: %s", 7, "channel_not_found")
    token = request_id.set("abc123")
    try:
        log.error("second")
    finally:
        request_id.reset(token)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "warning"
    assert first["logger"] == "guidebot.test"
    assert first["message"] == "outbox row 7 given up: channel_not_found"
    assert first["ts"].endswith("+00:00")
    assert "request_id" not in first
    assert second["request_id"] == "abc123"


def test_on_a_terminal_records_are_text(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging(stream_is_tty=True, stream=out, env={})
    token = request_id.set("r-1")
    try:
        logging.getLogger("adapters.server").warning("guidebot is stopping")
    finally:
        request_id.reset(token)
    assert out.getvalue() == "WARNING adapters.server: guidebot is stopping [r-1]\n"


def test_the_level_and_format_come_from_the_environment(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging(stream=out, env={"GUIDEBOT_LOG_LEVEL": "info", "GUIDEBOT_LOG_FORMAT": "text"})
    logging.getLogger("x").info("hello")
    logging.getLogger("pypdf").warning("EOF marker not found")
    assert out.getvalue() == "INFO x: hello\n"


def test_exceptions_keep_their_type_and_place_but_not_their_message() -> None:
    try:
        raise ValueError("Marmosetlantern said something private")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, None)
        import sys

        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["error"] == "ValueError"
    assert entry["where"] and "test_logs.py" in entry["where"][-1]
    assert "Marmosetlantern" not in json.dumps(entry)


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("req-42.a:b_c", True),
        ("", False),
        (None, False),
        ("x" * 65, False),
        ("two words", False),
        ("line\nbreak", False),
        ('{"json": 1}', False),
    ],
)
def test_an_incoming_request_id_is_kept_only_when_plain(offered: str | None, kept: bool) -> None:
    result = clean_request_id(offered)
    assert (result == offered) is kept
    if not kept:
        assert len(result) == 16 and int(result, 16) >= 0


def test_new_ids_differ() -> None:
    assert len({new_request_id() for _ in range(100)}) == 100


async def test_tasks_started_in_a_request_carry_its_id() -> None:
    seen: list[str | None] = []

    async def later() -> None:
        seen.append(request_id.get())

    token = request_id.set("req-7")
    try:
        task = asyncio.create_task(later())
    finally:
        request_id.reset(token)
    await task
    assert seen == ["req-7"]
    assert request_id.get() is None
