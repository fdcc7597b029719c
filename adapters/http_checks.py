"""What every incoming platform request is checked for before anything else
sees it: the body's size (a 413 as soon as it is known to be too long, without
reading it all), and how a refusal is expressed."""

from __future__ import annotations

from aiohttp import web

MAX_BODY_BYTES = 1024 * 1024
"""Slack's payloads are a few kilobytes, Teams' activities tens at most; a
megabyte is generous for both."""

_READ_CHUNK = 64 * 1024


class Refused(Exception):
    """A request that must not reach the bot. ``reason`` is a fixed phrase, never
    anything from the request itself."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


async def read_limited(request: web.BaseRequest, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or a 413 as soon as it is known to be too long."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Refused(413, "body is too large")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise Refused(413, "body is too large")
        chunks.append(chunk)
    return b"".join(chunks)
