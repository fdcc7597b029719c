"""Acknowledgements first: the scheduling both platform apps share.

Slack needs an acknowledgement within 3 seconds; Teams expects a prompt 202.
Searching and storing run synchronously on the event loop, so they take
turns, one at a time, and each turn starts only when no request is on its way
to an acknowledgement and none has been for ``quiet`` seconds (or after
``max_wait``, so work is never starved). A burst of requests is acknowledged
before the work it brought competes for the loop, and a request arriving
later waits for one turn at most.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

ACKS_FIRST_MAX_WAIT = 1.0
"""The longest a turn of work waits for acknowledgements to quieten down."""
ACK_QUIET = 0.005
"""How long with no acknowledgement in progress counts as quiet."""


class AcksFirst:
    def __init__(self, quiet: float = ACK_QUIET, max_wait: float = ACKS_FIRST_MAX_WAIT) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self._acking = 0
        self._no_acks = asyncio.Event()
        self._no_acks.set()
        self._last_ack = 0.0
        self._turn_lock = asyncio.Lock()

    @contextlib.contextmanager
    def acknowledging(self) -> Iterator[None]:
        """Around the handling of a request up to its acknowledgement."""
        self._acking += 1
        self._no_acks.clear()
        try:
            yield
        finally:
            self._acking -= 1
            self._last_ack = asyncio.get_running_loop().time()
            if self._acking == 0:
                self._no_acks.set()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Around a piece of synchronous work (a search, a database write)."""
        async with self._turn_lock:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.max_wait
            while (left := deadline - loop.time()) > 0:
                if self._acking:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(left):
                            await self._no_acks.wait()
                    continue
                quiet = loop.time() - self._last_ack
                if quiet >= self.quiet:
                    break
                await asyncio.sleep(min(self.quiet - quiet, left))
            yield
