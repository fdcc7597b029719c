"""Getting a message to Teams exactly once, through botbuilder's connector client.

Replies go out with ``TurnContext.send_activity`` (to the activity's
``serviceUrl``, as a reply to the activity, so a channel answer lands in its
thread); proactive messages with ``CloudAdapter.continue_conversation`` and a
stored conversation reference. ``deliver`` wraps one such send:

- 429, 412, 502 and 504 are retried (Microsoft's guidance for Teams bots),
  with exponential backoff and full jitter: the n-th wait is
  ``random() * min(max_delay, base_delay * 2**(n-1))``, and never shorter than
  ``Retry-After`` when the connector gives one. Attempts (``attempts``) and the
  total waiting (``budget``) are bounded; a ``Retry-After`` beyond what is left
  of the budget ends the retries at once. ``sleep``, ``clock`` and ``random`` are
  injected, so tests check the waits without enduring them.
- 403 (the person blocked the bot or removed the app) is never retried: it
  raises ``Unreachable`` and the caller marks them unreachable.
- Anything else (400, 401, 404, 500...) is not retried: it would fail the same way.
- A send that times out or loses its connection after the request went out
  is not retried either: it may well have been delivered, and a second try
  could post the answer twice.

502 and 504 are the hard case: the gateway may have passed the message on
before failing, and Teams de-duplicates nothing (each POST is a new message).
We retry them anyway, for replies and proactive messages alike, because that
is Microsoft's documented advice and a 502/504 from the Bot Connector almost
always means the message went nowhere: a reply that never arrives leaves a
member of staff with no answer, while the rare duplicate is the same card
twice. The risk is bounded: at most ``attempts - 1`` retries in all.

Nothing retries underneath us. msrest mounts a urllib3 ``Retry`` on every
connector client's requests session: three retries of 408 and of every 5xx
but 501 and 505, and of read errors, with backoff. With urllib3 2 it happens
not to apply to POST (msrest sets ``method_whitelist``, which urllib3 2 no
longer reads, so POST is not a retryable method); with urllib3 1.x it does,
and a 502 would be sent up to four times before we saw it. ``prepare_client``
does not rely on the version: before the turn's first send it replaces that
policy, in the configuration and on the session msrest already made, with one
that retries only a failure to *connect* (nothing was sent, so nothing can be
doubled), never a status, a read or a redirect, and sets the per-request
timeout. ``close_client`` closes the client's requests session after the turn
(botbuilder never does).

Outcomes are logged by status and attempt count, never with message text.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from msrest.exceptions import ClientRequestError, HttpOperationError
from urllib3 import Retry

from knowledge.errors import GuidebotError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE = frozenset({412, 429, 502, 504})
UNREACHABLE = 403
REQUEST_TIMEOUT = 15.0
"""Seconds one request to the Bot Connector may take (connect and read)."""
CONNECT_RETRIES = 2
"""Retries (by urllib3) of a connection that could not be made at all."""


class DeliveryError(GuidebotError):
    """A message could not be delivered. ``status`` is the connector's HTTP
    status, or None when no answer came."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class Unreachable(DeliveryError):
    """403: the person blocked the bot or removed the app."""


def _sleep(seconds: float) -> Awaitable[None]:
    return asyncio.sleep(seconds)


@dataclass(frozen=True)
class DeliveryPolicy:
    attempts: int = 5
    """Attempts in all, the first included."""
    base_delay: float = 1.0
    max_delay: float = 16.0
    budget: float = 30.0
    """Seconds from the first attempt to the start of the last, all told: a wait
    (a ``Retry-After`` included) that would go past it ends the retries."""
    timeout: float = REQUEST_TIMEOUT
    sleep: Callable[[float], Awaitable[None]] = field(default=_sleep)
    clock: Callable[[], float] = field(default=time.monotonic)
    random: Callable[[], float] = field(default=random.random)

    def backoff(self, failures: int) -> float:
        """Full jitter: anywhere from 0 to the capped exponential step."""
        step = min(self.max_delay, self.base_delay * 2.0 ** (failures - 1))
        return float(self.random() * step)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status the connector answered, if it answered."""
    if isinstance(exc, HttpOperationError):
        status = getattr(exc.response, "status_code", None)
        return status if isinstance(status, int) else None
    return None


def retry_after(exc: BaseException, now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date), if any."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or (lambda: datetime.now(UTC)))()).total_seconds()
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0
    return seconds


def describe(exc: BaseException) -> str:
    """An exception in words safe to log: a status or a type, never a body."""
    status = status_of(exc)
    if isinstance(exc, DeliveryError):
        return str(exc)
    if status is not None:
        return f"the Bot Connector answered HTTP {status}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ClientRequestError):
        return "could not reach the Bot Connector"
    return type(exc).__name__


async def deliver(send: Callable[[], Awaitable[T]], policy: DeliveryPolicy, what: str) -> T:
    """Run ``send`` (one POST to the connector) until it succeeds or must stop."""
    started = policy.clock()
    statuses: list[int] = []
    attempt = 0
    while True:
        attempt += 1
        try:
            async with asyncio.timeout(policy.timeout + 5.0):  # backstop for requests' own
                result = await send()
        except Exception as exc:
            status = status_of(exc)
            if status is None:
                log.warning("Teams %s not delivered: %s", what, describe(exc))
                raise DeliveryError(f"{describe(exc)}", None, attempt) from None
            statuses.append(status)
            if status == UNREACHABLE:
                log.warning("Teams %s refused (HTTP 403): the app was blocked or removed", what)
                raise Unreachable("the Bot Connector answered HTTP 403", status, attempt) from None
            if status not in RETRYABLE or attempt >= policy.attempts:
                log.warning(
                    "Teams %s not delivered: HTTP %s after %d attempt(s) (%s)",
                    what,
                    status,
                    attempt,
                    _statuses(statuses),
                )
                raise DeliveryError(
                    f"the Bot Connector answered HTTP {status}", status, attempt
                ) from None
            delay = policy.backoff(attempt)
            asked = retry_after(exc)
            if asked is not None:
                delay = max(delay, asked)  # never sooner than the connector asked
            if policy.clock() - started + delay > policy.budget:
                log.warning(
                    "Teams %s not delivered: HTTP %s, and waiting %.1fs more would exceed "
                    "the retry budget (%s)",
                    what,
                    status,
                    delay,
                    _statuses(statuses),
                )
                raise DeliveryError(
                    f"the Bot Connector answered HTTP {status}", status, attempt
                ) from None
            await policy.sleep(delay)
            continue
        if statuses:
            log.info(
                "Teams %s delivered on attempt %d (earlier: %s)", what, attempt, _statuses(statuses)
            )
        return result


def _statuses(statuses: list[int]) -> str:
    return ", ".join(str(s) for s in statuses) or "none"


# --- botbuilder's connector client ------------------------------------------------------------


def no_status_retries() -> Retry:
    """urllib3 retries for the connector: only failures to connect."""
    retry = Retry(
        total=CONNECT_RETRIES,
        connect=CONNECT_RETRIES,
        read=0,
        status=0,
        other=0,
        redirect=0,
        status_forcelist=(),
        backoff_factor=0.2,
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    # msrest's ClientRetryPolicy reads this urllib3 1.x attribute (and so sets it
    # on its own policy); urllib3 2 calls it DEFAULT_BACKOFF_MAX.
    retry.BACKOFF_MAX = 2  # type: ignore[attr-defined]
    return retry


def prepare_client(client: Any, timeout: float = REQUEST_TIMEOUT) -> None:
    """Make a fresh ``ConnectorClient`` safe to retry around (see the module notes).

    msrest mounts its retry policy on the requests session when it builds the
    client, so the policy is replaced both in the configuration (for any session
    made later) and on the session already made."""
    if client is None:
        return
    config = client.config
    retry = no_status_retries()
    retry_policy = getattr(config, "retry_policy", None)
    if retry_policy is not None:
        retry_policy.policy = retry
    connection = getattr(config, "connection", None)
    if connection is not None:
        connection.timeout = timeout
    config.enable_http_logger = False
    session = getattr(_driver(client), "session", None)
    for adapter in getattr(session, "adapters", {}).values():
        if hasattr(adapter, "max_retries"):
            adapter.max_retries = retry


def _driver(client: Any) -> Any:
    """msrest's requests driver inside a connector client's default pipeline."""
    sender = getattr(getattr(client.config, "pipeline", None), "_sender", None)
    return getattr(sender, "driver", None)


async def close_client(client: Any) -> None:
    """Close the connector client's requests session (and its sockets)."""
    if client is None:
        return
    try:
        await client.__aexit__(None, None, None)
    except Exception as exc:  # closing must never hide what the turn did
        log.debug("closing a Teams connector client failed: %s", type(exc).__name__)
