"""Test support: the real guidebot server on loopback and Slack-shaped payloads.

``Guidebot`` runs ``adapters.server.build_app`` on 127.0.0.1 (port 0) with the
real ``AsyncWebClient`` pointed at a ``SlackStandIn``, and sends it requests
signed exactly as Slack signs them. The builders below make the bodies Slack
sends: Events API callbacks, slash-command forms, ``block_actions`` payloads and
Socket Mode envelopes.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from adapters.server import SLACK_KEY, build_app
from adapters.slack.app import SlackBot, make_web_client
from bot.config import SchoolSettings, Secret, Settings, SlackSettings, SlackWorkspace
from bot.crypto import SecretBox
from bot.storage import Operations
from tests.support.running import RunningServer
from tests.support.signing import signed_headers

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APP_TOKEN = "xapp-1-A0STANDIN-1-standin"
ANNES_TEAM, ANNES_TOKEN = "T0ANNES", "xoxb-111-annes"
CROSS_TEAM, CROSS_TOKEN = "T0CROSS", "xoxb-222-crossflatts"
TOKENS = {ANNES_TOKEN: ANNES_TEAM, CROSS_TOKEN: CROSS_TEAM}
STRANGER_TEAM = "T0STRANGER"
STAFF = "U0STAFF"
DM = "D0STAFF"
CHANNEL = "C0STAFFROOM"
CONTACT = "U0CONTACT"
"""The st-annes policy contact on Slack, who gets questions passed on."""

TEST_KEY = bytes(range(32))
"""The installation key test servers seal with (GUIDEBOT_SECRET_KEY's bytes)."""

_ids = itertools.count(1)


def sealing_box() -> SecretBox:
    return SecretBox(TEST_KEY)


def settings_for(
    database: Path, api_url: str, transport: str = "http", *, contact: str | None = CONTACT
) -> Settings:
    """Two workspaces (st-annes, crossflatts), as guidebot.toml would give them."""
    slack = SlackSettings(
        transport,  # type: ignore[arg-type]
        (
            SlackWorkspace(ANNES_TEAM, "st-annes", Secret(ANNES_TOKEN)),
            SlackWorkspace(CROSS_TEAM, "crossflatts", Secret(CROSS_TOKEN)),
        ),
        Secret(SIGNING_SECRET) if transport == "http" else None,
        Secret(APP_TOKEN) if transport == "socket" else None,
        api_url,
    )
    return Settings(
        database=database,
        host="127.0.0.1",
        port=0,
        slack=slack,
        schools={"st-annes": SchoolSettings("st-annes", contact)},
    )


class Guidebot(RunningServer):
    """The real server, running on 127.0.0.1 with a real HTTP client in front."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        api_timeout: float = 5.0,
        retry_interval: float = 0.05,
        **build: Any,
    ) -> None:
        """``build``: more of ``build_app``'s keyword arguments (the outbox's);
        ``secret_box`` defaults to ``sealing_box()``."""
        api_url = settings.slack.api_url if settings.slack else None
        self.settings = settings
        build.setdefault("secret_box", sealing_box())
        app = build_app(
            settings,
            settings.database,
            web_client_factory=lambda: make_web_client(
                api_url, timeout=api_timeout, retry_interval=retry_interval
            ),
            clock=clock,
            **build,
        )
        super().__init__(app)

    @property
    def bot(self) -> SlackBot:
        return self.app[SLACK_KEY]

    @property
    def operations(self) -> Operations:
        return self.bot.operations

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until the bot has finished all the work it acknowledged."""
        async with asyncio.timeout(timeout):
            await self.bot.idle()

    # sending ------------------------------------------------------------------------------

    async def post(
        self, body: bytes | str, headers: dict[str, str], path: str = "/slack/events"
    ) -> tuple[int, str]:
        assert self._session is not None
        raw = body.encode("utf-8") if isinstance(body, str) else body
        data = io.BytesIO(raw) if len(raw) > 64 * 1024 else raw  # aiohttp's advice for big bodies
        async with self._session.post(self.url + path, data=data, headers=headers) as response:
            return response.status, await response.text()

    async def get(self, path: str) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.get(self.url + path) as response:
            return response.status, await response.json()

    async def send(
        self,
        body: str,
        *,
        content_type: str,
        retry_num: int | None = None,
        timestamp: int | None = None,
    ) -> tuple[int, str]:
        headers = signed_headers(
            SIGNING_SECRET,
            body,
            timestamp=timestamp,
            content_type=content_type,
            retry_num=retry_num,
        )
        return await self.post(body, headers)

    async def send_event(
        self, event: dict[str, Any], *, retry_num: int | None = None
    ) -> tuple[int, str]:
        return await self.send(
            json.dumps(event), content_type="application/json", retry_num=retry_num
        )

    async def send_form(self, form: str) -> tuple[int, str]:
        return await self.send(form, content_type="application/x-www-form-urlencoded")


# --- payloads as Slack sends them ------------------------------------------------------


def _event_id() -> str:
    return f"Ev{next(_ids):08d}"


def _ts() -> str:
    return f"{int(time.time())}.{next(_ids):06d}"


def _callback(event: dict[str, Any], team: str, event_id: str | None) -> dict[str, Any]:
    return {
        "token": "deprecated-verification-token",
        "team_id": team,
        "api_app_id": "A0STANDIN",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or _event_id(),
        "event_time": int(time.time()),
        "authorizations": [
            {"team_id": team, "user_id": "UGUIDEBOT", "is_bot": True, "enterprise_id": None}
        ],
        "is_ext_shared_channel": False,
    }


def dm_event(
    text: str,
    *,
    team: str = ANNES_TEAM,
    user: str = STAFF,
    channel: str = DM,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A direct message to the bot (``message.im``)."""
    ts = _ts()
    event = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "im",
        "team": team,
    }
    return _callback(event, team, event_id)


def mention_event(
    text: str,
    *,
    team: str = ANNES_TEAM,
    user: str = STAFF,
    channel: str = CHANNEL,
    event_id: str | None = None,
) -> dict[str, Any]:
    """``@guidebot ...`` in a channel (``app_mention``)."""
    ts = _ts()
    event = {
        "type": "app_mention",
        "channel": channel,
        "user": user,
        "text": f"<@UGUIDEBOT> {text}",
        "ts": ts,
        "event_ts": ts,
        "team": team,
    }
    return _callback(event, team, event_id)


def home_opened(*, team: str = ANNES_TEAM, user: str = STAFF) -> dict[str, Any]:
    event = {
        "type": "app_home_opened",
        "user": user,
        "channel": DM,
        "tab": "home",
        "event_ts": _ts(),
    }
    return _callback(event, team, None)


def command_form(
    text: str,
    *,
    team: str = ANNES_TEAM,
    user: str = STAFF,
    channel: str = CHANNEL,
    command: str = "/policy",
    response_url: str = "https://hooks.slack.com/commands/T0/1/x",
) -> str:
    """A slash command, form-encoded as Slack posts it."""
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team,
            "team_domain": "school",
            "channel_id": channel,
            "channel_name": "staffroom",
            "user_id": user,
            "user_name": "staff",
            "command": command,
            "text": text,
            "api_app_id": "A0STANDIN",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{next(_ids)}.1.abc",
        }
    )


def block_actions(
    action_id: str,
    value: str,
    *,
    team: str = ANNES_TEAM,
    user: str = STAFF,
    channel: str | None = DM,
    thread_ts: str | None = None,
    response_url: str = "https://hooks.slack.com/actions/T0/1/x",
) -> dict[str, Any]:
    """A button click: on a message in ``channel``, or in App Home when None."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": "staff", "team_id": team},
        "api_app_id": "A0STANDIN",
        "token": "deprecated-verification-token",
        "trigger_id": f"{next(_ids)}.1.abc",
        "team": {"id": team, "domain": "school"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "text": {"type": "plain_text", "text": "Button"},
                "value": value,
                "action_ts": _ts(),
            }
        ],
    }
    if channel is None:
        payload["container"] = {"type": "view", "view_id": "V0HOME"}
        payload["view"] = {"id": "V0HOME", "type": "home"}
    else:
        message_ts = _ts()
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload["container"] = container
        payload["channel"] = {"id": channel, "name": "directmessage"}
        payload["message"] = {"type": "message", "ts": message_ts, "text": "answer"}
        payload["response_url"] = response_url
    return payload


def action_form(payload: dict[str, Any]) -> str:
    """Interactivity is posted as a form with the JSON in ``payload``."""
    return urlencode({"payload": json.dumps(payload)})


def envelope(
    kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, retry_reason: str = ""
) -> dict[str, Any]:
    """A Socket Mode envelope."""
    return {
        "envelope_id": f"env-{next(_ids)}",
        "type": kind,
        "payload": payload,
        "accepts_response_payload": kind != "events_api",
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
    }


def command_payload(text: str, **kwargs: Any) -> dict[str, str]:
    """A slash command as Socket Mode delivers it: the form as a JSON object."""
    return dict(parse_qsl(command_form(text, **kwargs), keep_blank_values=True))
