"""A tiny periodic runner for the server's background work.

``run_every(interval, job, stop)`` runs ``job`` (sync or async), then waits
until ``interval`` seconds have passed since that run began, ``stop`` is set,
or ``wake`` (if given) is set, and repeats until ``stop``. A job that raises is
logged by exception type only (jobs handle confidential data: no message, no
traceback) and the loop goes on. A job in progress when ``stop`` is set is
allowed to finish: stopping never cuts a delivery in half.

The server uses it for the outbox worker (woken at once when a row is queued)
and for the safeguarding escalation sweep (``Concerns.escalate_due``). It is
deliberately small: APScheduler takes over with a later issue, and anything
that calls ``run_every`` only needs a job and an interval, so it is easy to
replace. ``clock`` (monotonic seconds) is injectable so tests can check the
spacing without waiting for it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object] | object]


async def run_every(
    interval: float,
    job: Job,
    stop: asyncio.Event,
    *,
    wake: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    name: str = "job",
) -> None:
    """Run ``job`` every ``interval`` seconds until ``stop`` is set (see the module notes)."""
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        started = clock()
        try:
            result = job()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            log.warning("background %s failed: %s", name, type(exc).__name__)
        if stop.is_set():
            break
        remaining = interval - (clock() - started)
        if remaining > 0:
            await wait_for_any(remaining, stop, wake)


async def wait_for_any(timeout: float, *events: asyncio.Event | None) -> None:
    """Return when any of ``events`` is set, or after ``timeout`` seconds."""
    present = [e for e in events if e is not None]
    if any(e.is_set() for e in present):
        return
    waiters = [asyncio.ensure_future(e.wait()) for e in present]
    try:
        if waiters:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.sleep(timeout)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
