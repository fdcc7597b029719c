"""The outbox's Teams sender: a proactive 1:1 message through the Bot Connector.

Recipient: the person's key as the core knows them, their Entra object id
(``from.aadObjectId``; for a ``teams:<id>`` person key, the part after the
colon). Their stored 1:1 conversation reference
(``Operations.conversation("teams", "user", id)``, saved by the Teams app
whenever they write to the bot or install it) says where to send; none, or
one marked unreachable, is a permanent failure, logged: guidebot can only
message people who have the app.

One attempt per claim: ``CloudAdapter.continue_conversation`` with that
reference and one ``send_activity`` of the reply's Adaptive Card
(``adapters.teams.convert.render_activity``). The connector client is made
safe to retry around and closed after, as for every Teams send
(``adapters.teams.delivery.prepare_client`` / ``close_client``: no retries
underneath us, and a request timeout of ``timeout``). The outbox owns the
retry schedule:

- 429, 412, 502, 504 (Microsoft's list), any other 5xx, and 401 (the bot's
  credentials, which an administrator can fix): retryable, honouring
  Retry-After;
- a timeout or a lost connection: retryable;
- 403 (the person blocked the bot or removed the app): permanent, and their
  reference is marked unreachable (``Operations.mark_unreachable``);
- 400 and 404: permanent (the message or the conversation is wrong; a retry
  would fail the same way).

Exactly once, as far as Teams allows: the Bot Connector cannot be asked what
it delivered, so ``find_sent`` always answers None. Everything before the
send and after ``mark_sent`` is exactly-once through the outbox; the one gap
is a crash (or a timeout, or a 502/504 the gateway had in fact passed on)
between Teams accepting the activity and the outbox recording it, after which
that one message is sent again: the DSL may then see the same card twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from botbuilder.core import TurnContext  # type: ignore[import-untyped]
from botbuilder.integration.aiohttp import CloudAdapter  # type: ignore[import-untyped]
from botbuilder.schema import ConversationReference  # type: ignore[import-untyped]
from msrest.exceptions import ClientRequestError

from adapters.teams import convert
from adapters.teams.app import message_activity, safe_id
from adapters.teams.delivery import (
    REQUEST_TIMEOUT,
    UNREACHABLE,
    close_client,
    prepare_client,
    retry_after,
    status_of,
)
from bot.outbox import BadMessage, OutgoingMessage, SendResult, reply_from_data
from bot.storage import Operations

log = logging.getLogger(__name__)

PLATFORM = "teams"
PERMANENT_STATUSES = frozenset({400, 404})


def user_of(recipient: str) -> str:
    """The object id in a recipient (a bare id, or a ``teams:<id>`` person key)."""
    return recipient.removeprefix(f"{PLATFORM}:")


def failure(exc: BaseException) -> SendResult:
    """A failed Bot Connector call as a SendResult (see the module notes)."""
    status = status_of(exc)
    if status is not None:
        described = f"the Bot Connector answered HTTP {status}"
        if status == UNREACHABLE:
            return SendResult(False, permanent=True, error=described)
        if status in PERMANENT_STATUSES:
            return SendResult(False, permanent=True, error=described)
        return SendResult(
            False, retry_after=retry_after(exc), error=described, uncertain=status >= 500
        )
    if isinstance(exc, TimeoutError):
        return SendResult(False, error="the Bot Connector did not answer in time", uncertain=True)
    if isinstance(exc, ClientRequestError):
        return SendResult(False, error="could not reach the Bot Connector", uncertain=True)
    return SendResult(False, error=f"{type(exc).__name__} sending to Teams", uncertain=True)


class TeamsSender:
    """``bot.outbox.Sender`` for Teams 1:1 chats (see the module notes)."""

    platform = PLATFORM

    def __init__(
        self,
        adapter: CloudAdapter,
        operations: Operations,
        *,
        app_id: str | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.adapter = adapter
        self.operations = operations
        self.app_id = app_id
        self.timeout = timeout

    async def find_sent(self, recipient: str, key: str) -> str | None:
        """Always None: the Bot Connector cannot say what it delivered."""
        return None

    async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult:
        user = user_of(recipient)
        try:
            activity = message_activity(convert.render_activity(reply_from_data(message.reply)))
        except BadMessage as exc:
            return SendResult(False, permanent=True, error=str(exc))
        stored = self.operations.conversation(PLATFORM, "user", user)
        if stored is None or stored.unreachable_since is not None:
            reason = "no conversation reference" if stored is None else "marked unreachable"
            log.warning("Teams outbox message not sent to %s: %s", safe_id(user), reason)
            return SendResult(False, permanent=True, error=f"Teams user {reason}")
        try:
            reference = ConversationReference().deserialize(json.loads(stored.reference))
        except Exception as exc:
            return SendResult(
                False,
                permanent=True,
                error=f"stored conversation reference unreadable ({type(exc).__name__})",
            )
        reference.activity_id = None
        sent: dict[str, Any] = {}

        async def logic(turn_context: TurnContext) -> None:
            # A new message in their chat, not a reply to the made-up id
            # botbuilder gives a continuation activity.
            turn_context.activity.id = None
            client = turn_context.turn_state.get(self.adapter.BOT_CONNECTOR_CLIENT_KEY)
            prepare_client(client, self.timeout)
            try:
                async with asyncio.timeout(self.timeout + 5.0):  # backstop for requests' own
                    response = await turn_context.send_activity(activity)
                sent["id"] = getattr(response, "id", None)
            finally:
                await close_client(client)

        try:
            await self.adapter.continue_conversation(
                reference, logic, bot_app_id=self.app_id or None
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = failure(exc)
            if status_of(exc) == UNREACHABLE:
                self.operations.mark_unreachable(PLATFORM, "user", user)
                log.warning(
                    "Teams refused a message to %s (HTTP 403): the app was blocked or removed",
                    safe_id(user),
                )
            return result
        ref = sent.get("id")
        return SendResult(True, platform_ref=ref if isinstance(ref, str) else None)
