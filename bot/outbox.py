"""Persistent, retried, exactly-once delivery of every message the bot starts.

Answers go straight back to the person asking. Everything else (a DSL alert,
an escalation, "the DSL has seen your report", later broadcasts and reminders)
is first written to the ``outbox`` table in the same transaction as the change
that caused it, then sent by a worker. So a message that was accepted is never
lost (a crash just leaves it pending), and each row is keyed by a unique
``dedupe_key`` so nothing is queued twice.

Sending exactly once: a row is marked ``sending`` before the platform call and
``sent`` after it. A crash in between leaves the outcome unknown; on restart
the worker asks the platform's sender whether that message already arrived
(``Sender.find_sent``: Slack can, by the message metadata we attach; a sender
that cannot tell returns ``None`` and the row is sent again, which the sender
documents). Retryable failures (429, 5xx, timeouts) back off with jitter and
honour Retry-After; permanent ones (the person left, the app was removed) end
the row as ``dead`` and are logged without content.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

State = Literal["pending", "sending", "sent", "dead"]


@dataclass(frozen=True)
class OutgoingMessage:
    """What to send, platform-neutral: a bot.messages.Reply as JSON-able data.

    ``reply`` is produced by ``reply_to_data`` / read back by ``reply_from_data``
    so the worker can render it with the platform's own converter.
    """

    reply: Mapping[str, Any]


@dataclass(frozen=True)
class SendResult:
    ok: bool
    platform_ref: str | None = None
    """The platform's id for the delivered message (Slack ts, Teams activity id)."""
    retry_after: float | None = None
    """Seconds the platform asked us to wait (429 Retry-After)."""
    permanent: bool = False
    """No point retrying: the person or the app is gone."""
    error: str = ""
    """A short description for the log (never message content)."""


class Sender(Protocol):
    """One platform's way of delivering outbox rows."""

    platform: str

    async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult: ...

    async def find_sent(self, recipient: str, key: str) -> str | None:
        """The platform ref of an earlier delivery of ``key``, if it arrived."""
        ...


@dataclass(frozen=True)
class OutboxRow:
    id: int
    dedupe_key: str
    platform: str
    recipient: str
    message: OutgoingMessage
    state: State
    attempts: int
    next_attempt_at: str
    created_at: str
    sent_at: str | None = None
    platform_ref: str | None = None
    last_error: str | None = None


@dataclass
class DeliveryPolicy:
    """How patiently to retry. Injected clock/sleep/random keep tests quick."""

    base_delay: float = 2.0
    max_delay: float = 300.0
    give_up_after: float = 72 * 3600.0
    """A message still undelivered after this long is marked dead (and logged)."""
    lease: float = 60.0
    """How long a 'sending' claim is trusted before it counts as a crash."""
    batch: int = 50
    rate_per_second: Mapping[str, float] = field(
        default_factory=lambda: {"slack": 1.0, "teams": 8.0}
    )
    """Sends per second per platform and recipient stream (Slack: ~1 msg/s/channel)."""


Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
