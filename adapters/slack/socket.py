"""Socket Mode: Slack events over an outgoing websocket, so no public URL is needed.

slack_sdk's aiohttp ``SocketModeClient`` asks ``apps.connections.open`` (with
the app-level ``xapp-`` token) for a websocket URL, connects, keeps the
connection alive with pings and reconnects when Slack asks it to or the link
goes quiet. Each envelope (``events_api``, ``slash_commands``, ``interactive``)
goes through the same bolt app as HTTP requests, so acknowledgement, workspace
mapping and event deduplication are the same in both transports. The envelope
is acknowledged (its ``envelope_id`` sent back, with any response payload) as
soon as bolt's ``ack()`` has run, before the work is done.

Nothing needs verifying here: the websocket was opened with our app token.
Envelopes whose dispatch fails are not acknowledged, so Slack retries them;
a retry carries ``retry_attempt``, which bolt sees as ``X-Slack-Retry-Num``.

We use the client directly rather than bolt's ``AsyncSocketModeHandler`` for
two reasons: it runs inside our aiohttp server's event loop next to
``/healthz``, and bolt's handler logs failed responses' bodies at INFO.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackBot, describe, quiet_platform_logs

log = logging.getLogger(__name__)

PING_INTERVAL = 5.0
"""Seconds between pings; a link silent for four of these is replaced."""
ENVELOPE_TYPES = frozenset({"events_api", "slash_commands", "interactive"})

_SOCKET_LOG = logging.getLogger("adapters.slack.socket_mode")


def _retry_headers(request: SocketModeRequest) -> dict[str, str | Sequence[str]] | None:
    """Socket Mode's retry fields as the headers an HTTP retry would carry."""
    headers: dict[str, str | Sequence[str]] = {}
    if request.retry_attempt is not None:
        headers["x-slack-retry-num"] = str(request.retry_attempt)
    if request.retry_reason is not None:
        headers["x-slack-retry-reason"] = str(request.retry_reason)
    return headers or None


class SocketTransport:
    """One Socket Mode connection feeding a ``SlackBot``."""

    def __init__(
        self,
        bot: SlackBot,
        app_token: str,
        web_client: AsyncWebClient,
        *,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        quiet_platform_logs()
        if _SOCKET_LOG.level < logging.WARNING:
            _SOCKET_LOG.setLevel(logging.WARNING)  # at DEBUG it logs every envelope
        self.bot = bot
        self.app_token = app_token
        self.web_client = web_client
        self.ping_interval = ping_interval
        self.client: SocketModeClient | None = None
        self._connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect in the background: the server starts even while Slack is
        unreachable, and the client keeps trying."""
        client = SocketModeClient(
            app_token=self.app_token,
            logger=_SOCKET_LOG,
            web_client=self.web_client,
            ping_interval=self.ping_interval,
        )
        client.socket_mode_request_listeners.append(self._on_request)
        self.client = client
        self._connecting = asyncio.ensure_future(self._connect(client))

    async def _connect(self, client: SocketModeClient) -> None:
        await client.connect()  # type: ignore[no-untyped-call]

    async def _on_request(
        self, client: AsyncBaseSocketModeClient, request: SocketModeRequest
    ) -> None:
        if request.type not in ENVELOPE_TYPES:
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=request.envelope_id)
            )
            return
        bolt_request = AsyncBoltRequest(
            mode="socket_mode", body=request.payload, headers=_retry_headers(request)
        )
        try:
            response = await self.bot.dispatch(bolt_request)
        except Exception as exc:  # not acknowledged: Slack will send it again
            log.warning("Socket Mode envelope not handled: %s", describe(exc))
            return
        if response.status != 200:
            log.warning(
                "Socket Mode envelope not acknowledged: the app answered HTTP %d", response.status
            )
            return
        payload: dict[str, Any] | None = None
        if response.body:
            content_type = response.headers.get("content-type", [""])[0]
            payload = (
                json.loads(response.body)
                if content_type.startswith("application/json")
                else {"text": response.body}
            )
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=payload)
        )

    async def close(self) -> None:
        client, self.client = self.client, None
        connecting, self._connecting = self._connecting, None
        if connecting is not None and not connecting.done():
            connecting.cancel()
        if client is not None:
            await client.close()  # type: ignore[no-untyped-call]
        leftovers = [
            task
            for task in (
                connecting,
                client and client.message_processor,
                client and client.current_session_monitor,
                client and client.message_receiver,
            )
            if isinstance(task, asyncio.Future)
        ]
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
