"""The outbox's Slack sender: a direct message to one person, exactly once.

Recipients. A Slack user id means nothing without its workspace (each
workspace has its own bot token), so an outbox row for Slack names both:
``"T0123ABC:U0456DEF"`` (team id, colon, user id). ``slack_recipient(settings,
school, user_id)`` builds it from a school and a user id (or a person key
``slack:U0456DEF``), with the team of the school's workspace. A bare user id
(``"U0456DEF"``) is accepted too: with one workspace configured it is that
one's; with several, each workspace is tried in turn until one can open a
DM with that user (so prefer the team-qualified form).

Sending: ``conversations.open`` (``users=U...``) gives the DM channel (cached
per recipient while it works), then ``chat.postMessage`` to it with the
Block Kit from ``adapters.slack.convert.render``, unfurling off, and message
metadata ``{"event_type": "guidebot_outbox", "event_payload": {"key": <dedupe
key>}}``. The platform ref is the message's ``ts``.

Channels (the weekly HR digest): a recipient whose id starts with ``C`` or
``G`` (``"T0123ABC:C0456DEF"``) is a channel, posted to directly with
``chat.postMessage`` (no DM is opened) and looked up with
``conversations.history`` on that channel. The bot must be a member of the
channel (invite it: ``/invite @guidebot``); until it is, Slack answers
``not_in_channel``, which is retried, so inviting it lets the message
through. A bare channel id is accepted only with one workspace configured.
Scopes: ``chat:write`` to post, and ``channels:history`` (public) or
``groups:history`` (private) for ``find_sent``.

Finding an earlier delivery (``find_sent``), after a crash or an uncertain
failure: ``conversations.history`` of that DM (``include_all_metadata=true``,
50 messages a page, at most ``HISTORY_PAGES`` pages, newest first) looking for
a message from a bot whose metadata carries the same key; its ``ts`` if found.
So a message Slack accepted is never posted a second time, even if the process
died before it could record the ``ts``.

Web API methods and bot scopes this needs (the app manifest must list them):

- ``conversations.open``: ``im:write``
- ``chat.postMessage``: ``chat:write``
- ``conversations.history`` on the bot's DMs: ``im:history``

Message metadata needs no scope of its own to post or to read back through
``conversations.history``.

Failures, as ``SendResult`` (the outbox owns the retry schedule, so this client
has no retry handlers of its own: ``make_sender_client``):

- HTTP 429: retryable, ``retry_after`` from its Retry-After header;
- HTTP 5xx, a timeout, a dropped connection: retryable and *uncertain* (Slack
  may have posted it), so the next attempt looks first;
- a connection that could not be made at all: retryable (nothing was sent);
- ``invalid_auth``, ``account_inactive``, ``token_revoked``, ``user_not_found``,
  ``channel_not_found``, ``is_archived``, ``cannot_dm_bot`` and the errors a
  malformed message gets (``invalid_blocks``, ``msg_too_long``...): permanent;
- any other ``ok: false`` error (``missing_scope``, ``ratelimited``...):
  retryable, so fixing the app's configuration lets the alert through.

Log lines name the error code only, never the message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import convert
from adapters.slack.app import API_TIMEOUT, DEFAULT_API_URL, quiet_platform_logs
from bot.config import ConfigError, Settings, SlackSettings, SlackWorkspace
from bot.outbox import (
    BadMessage,
    DeliveryFailed,
    OutgoingMessage,
    SendResult,
    reply_from_data,
)

log = logging.getLogger(__name__)

PLATFORM = "slack"
METADATA_EVENT = "guidebot_outbox"
HISTORY_LIMIT = 50
HISTORY_PAGES = 4
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "user_not_found",
        "users_not_found",
        "user_disabled",
        "channel_not_found",
        "is_archived",
        "cannot_dm_bot",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "msg_too_long",
        "no_text",
        "too_many_attachments",
    }
)
"""ok: false errors that a later attempt would get again."""
UNCERTAIN_ERRORS = frozenset({"fatal_error", "internal_error", "service_unavailable"})
"""ok: false errors after which Slack may have done part of the work."""

_API_LOG = logging.getLogger("adapters.slack.webapi")


def make_sender_client(
    api_url: str | None = None, *, timeout: float = API_TIMEOUT
) -> AsyncWebClient:
    """A Web API client with no retry handlers: the outbox decides when to try again."""
    quiet_platform_logs()
    return AsyncWebClient(
        base_url=api_url or DEFAULT_API_URL,
        # Annotated int, but handed to aiohttp.ClientTimeout(total=...), which takes a float.
        timeout=cast(int, timeout),
        logger=_API_LOG,
        retry_handlers=[],
    )


def slack_recipient(settings: Settings | SlackSettings, school: str, user_id: str) -> str:
    """The outbox recipient for a Slack user of ``school``: ``"T...:U..."``.

    ``user_id`` may be a bare id (``U0456``) or a person key (``slack:U0456``).
    Raises ConfigError when no Slack workspace is configured for the school."""
    slack = settings.slack if isinstance(settings, Settings) else settings
    user = user_id.removeprefix(f"{PLATFORM}:")
    if not user or ":" in user:
        raise ConfigError(f"{user_id!r} is not a Slack user id")
    workspace = next((w for w in slack.workspaces if w.school == school), None) if slack else None
    if workspace is None:
        raise ConfigError(f"no Slack workspace is configured for school {school!r}")
    return f"{workspace.team_id}:{user}"


def parse_recipient(recipient: str) -> tuple[str | None, str]:
    """(team id or None, user id) from ``"T...:U..."`` or a bare ``"U..."``."""
    team, sep, user = recipient.partition(":")
    if not sep:
        team, user = "", recipient
    if not user or ":" in user or (sep and not team):
        raise ValueError("not a Slack recipient")
    return (team or None), user


def is_channel(conversation: str) -> bool:
    """A channel id (public ``C...`` or private ``G...``) rather than a user id."""
    return conversation[:1] in ("C", "G")


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    if headers is None:
        return 1.0
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                return max(0.0, float(value[0] if isinstance(value, list) else value))
            except (TypeError, ValueError):
                return 1.0
    return 1.0


def failure(exc: BaseException) -> SendResult:
    """A failed Web API call as a SendResult (see the module notes)."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200) if response is not None else 200
        error = response.get("error") if response is not None else None
        error = error if isinstance(error, str) and error.isascii() and len(error) < 64 else None
        described = f"Slack answered {error or 'an error'} (HTTP {status})"
        if status == 429 or error == "ratelimited":
            headers = getattr(response, "headers", None)
            return SendResult(False, retry_after=_retry_after(headers), error=described)
        if isinstance(status, int) and status >= 500:
            return SendResult(False, error=described, uncertain=True)
        if error in PERMANENT_ERRORS:
            return SendResult(False, permanent=True, error=described)
        return SendResult(False, error=described, uncertain=error in UNCERTAIN_ERRORS)
    if isinstance(exc, TimeoutError):
        return SendResult(False, error="Slack did not answer in time", uncertain=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return SendResult(False, error="could not connect to Slack")
    if isinstance(exc, aiohttp.ClientError | SlackRequestError):
        return SendResult(False, error=f"{type(exc).__name__} talking to Slack", uncertain=True)
    return SendResult(False, error=f"{type(exc).__name__} sending to Slack", uncertain=True)


class SlackSender:
    """``bot.outbox.Sender`` for Slack DMs (see the module notes)."""

    platform = PLATFORM

    def __init__(self, settings: SlackSettings, client: AsyncWebClient | None = None) -> None:
        self.settings = settings
        self.client = client or make_sender_client(settings.api_url)
        self._channels: dict[str, tuple[str, str]] = {}
        """recipient -> (bot token, DM channel id), while it works."""

    # the Sender protocol ----------------------------------------------------------------

    async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult:
        try:
            rendered = convert.render(reply_from_data(message.reply))
        except BadMessage as exc:
            return SendResult(False, permanent=True, error=str(exc))
        try:
            token, channel = await self._dm(recipient)
        except DeliveryFailed as failed:
            # Nothing was posted whatever went wrong: it is only the DM that failed.
            return replace(failed.result, uncertain=False)
        try:
            response = await self.client.chat_postMessage(
                token=token,
                channel=channel,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}},
                **rendered,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._failed(recipient, exc)
        ts = response.get("ts")
        return SendResult(True, platform_ref=ts if isinstance(ts, str) else None)

    async def find_sent(self, recipient: str, key: str) -> str | None:
        token, channel = await self._dm(recipient)
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            try:
                response = await self.client.conversations_history(
                    token=token,
                    channel=channel,
                    limit=HISTORY_LIMIT,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise DeliveryFailed(self._failed(recipient, exc)) from None
            for message in response.get("messages") or []:
                if _carries(message, key):
                    ts = message.get("ts")
                    return ts if isinstance(ts, str) and ts else "found"
            meta = response.get("response_metadata") or {}
            cursor = meta.get("next_cursor") if isinstance(meta, Mapping) else None
            if not response.get("has_more") or not cursor:
                break
        return None

    def _failed(self, recipient: str, exc: BaseException) -> SendResult:
        result = failure(exc)
        if result.permanent:  # the DM we remembered may be what is wrong: ask again next time
            self._channels.pop(recipient, None)
        return result

    # the DM channel ----------------------------------------------------------------------

    async def _dm(self, recipient: str) -> tuple[str, str]:
        """(token, channel id) for a recipient: its DM, or the channel itself when
        the recipient is a channel (see the module notes); raises DeliveryFailed."""
        cached = self._channels.get(recipient)
        if cached is not None:
            return cached
        try:
            team, user = parse_recipient(recipient)
        except ValueError:
            raise DeliveryFailed(
                SendResult(False, permanent=True, error="not a Slack recipient (T...:U...)")
            ) from None
        workspaces = self._workspaces(team)
        if not workspaces:
            raise DeliveryFailed(
                SendResult(
                    False,
                    permanent=True,
                    error=f"Slack workspace {_safe(team)} is not in the configuration",
                )
            )
        if is_channel(user):
            if len(workspaces) != 1:
                raise DeliveryFailed(
                    SendResult(
                        False,
                        permanent=True,
                        error="a channel needs its workspace (T...:C...) with several configured",
                    )
                )
            found = (workspaces[0].bot_token.reveal(), user)
            self._channels[recipient] = found
            return found
        last: SendResult | None = None
        for workspace in workspaces:
            token = workspace.bot_token.reveal()
            try:
                response = await self.client.conversations_open(token=token, users=user)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                last = failure(exc)
                if last.permanent and len(workspaces) > 1:
                    continue  # not this workspace's user: try the next
                raise DeliveryFailed(last) from None
            channel = response.get("channel")
            channel_id = channel.get("id") if isinstance(channel, Mapping) else None
            if not isinstance(channel_id, str) or not channel_id:
                raise DeliveryFailed(
                    SendResult(False, error="conversations.open gave no channel", uncertain=False)
                )
            self._channels[recipient] = (token, channel_id)
            return token, channel_id
        assert last is not None
        raise DeliveryFailed(last)

    def _workspaces(self, team: str | None) -> tuple[SlackWorkspace, ...]:
        if team is not None:
            found = self.settings.workspace(team)
            return (found,) if found is not None else ()
        return self.settings.workspaces


def _carries(message: Any, key: str) -> bool:
    """A message from a bot (ours: only our token can read this DM) with our key."""
    if not isinstance(message, Mapping) or not message.get("bot_id"):
        return False
    metadata = message.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != METADATA_EVENT:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, Mapping) and payload.get("key") == key


def _safe(team: str | None) -> str:
    return team if team and team.isalnum() and len(team) <= 32 else "(unrecognised)"
