"""A stand-in for the Bot Framework (Bot Connector and its signing keys) on
127.0.0.1, port 0, and the real guidebot server in front of it.

``TeamsStandIn`` serves:

- ``POST /v3/conversations/{id}/activities`` (send to a conversation),
  ``POST /v3/conversations/{id}/activities/{activityId}`` (reply to an
  activity) and ``POST /v3/conversations`` (create a conversation), recording
  every call: path, conversation and activity ids, JSON body, ``Authorization``
  header, arrival time and the status answered. ``fail(status, times=N)``
  makes the next N activity posts answer that status (429 with
  ``Retry-After``, 412, 502, 504, 403, 500...). ``outage(status)`` fails every
  activity post until ``recover()``; ``outage(None)`` holds them unanswered
  until then and answers them 504, undelivered.
- ``GET /v3/conversations/{id}/members/{userId}`` (``TeamsInfo.get_member``):
  the member from ``members`` (with their email), else 404; recorded as "member".
- ``GET /.well-known/openidconfiguration`` (issuer ``https://api.botframework.com``,
  ``jwks_uri`` pointing at ``/keys``) and ``GET /keys``: the JWKS with the test
  session's RSA key, endorsed for ``msteams`` as the Bot Framework's keys are.

``TeamsGuidebot`` runs ``adapters.server.build_app`` on 127.0.0.1 (port 0) with
the OpenID metadata URL pointed here, the fixed-token credentials factory and a
delivery policy whose backoff sleeps are recorded and cut short, and posts
activities to ``/api/messages`` with tokens from ``TokenMinter``. The builders
at the end make activities as Teams sends them.

All waiting is on conditions, with timeouts: nothing here sleeps for a test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.server import TEAMS_KEY, build_app
from adapters.teams.app import TeamsBot
from adapters.teams.delivery import DeliveryPolicy
from bot.config import SchoolSettings, Settings, TeamsSettings, TeamsTenant
from bot.crypto import SecretBox
from bot.storage import Operations
from tests.support.bot_tokens import (
    APP_ID,
    CHANNEL_ISSUER,
    FixedTokenCredentialFactory,
    SigningKey,
    TokenMinter,
    bearer,
    standin_key,
)
from tests.support.running import RunningServer

ANNES_TENANT = "0a1b2c3d-1111-4a4a-8b8b-000000000001"
CROSS_TENANT = "0a1b2c3d-2222-4a4a-8b8b-000000000002"
STRANGER_TENANT = "0a1b2c3d-9999-4a4a-8b8b-000000000009"
BOT_ID = "28:" + APP_ID
BOT_NAME = "guidebot"
STAFF_AAD = "5c6d7e8f-0000-4000-8000-000000005aff"
STAFF_ID = "29:1staffMemberTeamsId"
CONTACT_AAD = "5c6d7e8f-0000-4000-8000-00000000c0de"
CONTACT_ID = "29:1policyContactTeamsId"
PERSONAL = "a:1personalChatWithStaff"
CONTACT_CHAT = "a:1personalChatWithContact"
CHANNEL = "19:staffroom0000@thread.tacv2"
TEAM = "19:teamAnnes0000@thread.tacv2"


@dataclass
class Call:
    path: str
    kind: str
    """"reply" (to an activity), "send" (to a conversation) or "create"."""
    conversation_id: str | None
    activity_id: str | None
    body: dict[str, Any]
    authorization: str | None
    at: float
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def card(self) -> dict[str, Any]:
        """The Adaptive Card carried, if any."""
        for attachment in self.body.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                content = attachment.get("content")
                if isinstance(content, dict):
                    return content
        return {}

    @property
    def card_text(self) -> str:
        return json.dumps(self.card, ensure_ascii=False)

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class _Fault:
    status: int
    times: int
    retry_after: str | None


class TeamsStandIn:
    def __init__(self, key: SigningKey | None = None) -> None:
        self.key = key or standin_key()
        self.calls: list[Call] = []
        self.key_fetches = 0
        self._faults: list[_Fault] = []
        self._released = asyncio.Event()
        self._released.set()
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._outage: _Fault | None = None
        self._dropping = False
        self._recovered = asyncio.Event()
        self.members: dict[str, dict[str, Any]] = {}
        """For ``GET /v3/conversations/{id}/members/{userId}``: a member's Teams id
        or Entra object id -> what Teams answers (``id``, ``name``, ``aadObjectId``,
        ``email``, ``userPrincipalName``...); anyone else gets 404."""
        self.member_status: int | None = None
        """When set, every member lookup answers this status (e.g. 500, 429)."""
        self.port = 0

    async def start(self) -> TeamsStandIn:
        app = web.Application()
        app.router.add_post(
            "/v3/conversations/{conversation}/activities/{activity}", self._activity
        )
        app.router.add_post("/v3/conversations/{conversation}/activities", self._activity)
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", self._member)
        app.router.add_get("/.well-known/openidconfiguration", self._openid)
        app.router.add_get("/keys", self._keys)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TeamsStandIn:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        """What activities carry as ``serviceUrl`` (Teams' own end in a slash)."""
        return f"{self.url}/"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openidconfiguration"

    # misbehaving on demand ---------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """The next ``times`` activity posts answer ``status``."""
        self._faults.append(_Fault(status, times, retry_after))

    def hold(self) -> None:
        """Activity posts wait, unanswered, until ``release`` (or ``close``)."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def outage(self, status: int | None = 502, *, retry_after: str | None = None) -> None:
        """Every activity post fails from now until ``recover()``: answered
        ``status``, or (None) held unanswered and then answered 504, undelivered."""
        self._recovered.clear()
        self._dropping = status is None
        self._outage = None if status is None else _Fault(status, 1, retry_after)

    def recover(self) -> None:
        self._outage = None
        self._dropping = False
        self._recovered.set()

    async def _outage_answer(self, call: Call) -> web.Response | None:
        if self._dropping:
            waiter = asyncio.ensure_future(self._recovered.wait())
            try:
                await asyncio.wait([waiter], timeout=10)
            finally:
                waiter.cancel()
            call.status = 504
        elif self._outage is not None:
            call.status = self._outage.status
        else:
            return None
        retry_after = self._outage.retry_after if self._outage is not None else None
        await self._notify()
        return web.json_response(
            {"error": {"code": "Standin", "message": f"HTTP {call.status}"}},
            status=call.status,
            headers={"Retry-After": retry_after} if retry_after else {},
        )

    def _next_fault(self) -> _Fault | None:
        while self._faults:
            fault = self._faults[0]
            if fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.pop(0)
                return fault
            self._faults.pop(0)
        return None

    # what happened -------------------------------------------------------------------------

    def activity_calls(self) -> list[Call]:
        return [c for c in self.calls if c.kind in ("reply", "send")]

    def delivered(self) -> list[Call]:
        return [c for c in self.activity_calls() if c.delivered]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    # the Bot Connector -----------------------------------------------------------------------

    async def _record(self, request: web.Request, kind: str) -> Call:
        try:
            body = await request.json()
        except ValueError:
            body = {"unparsed": await request.text()}
        call = Call(
            path=request.path,
            kind=kind,
            conversation_id=request.match_info.get("conversation"),
            activity_id=request.match_info.get("activity"),
            body=body if isinstance(body, dict) else {"value": body},
            authorization=request.headers.get("Authorization"),
            at=time.monotonic(),
            headers=dict(request.headers),
        )
        self.calls.append(call)
        return call

    async def _activity(self, request: web.Request) -> web.Response:
        kind = "reply" if "activity" in request.match_info else "send"
        call = await self._record(request, kind)
        await self._notify()
        down = await self._outage_answer(call)
        if down is not None:
            return down
        async with asyncio.timeout(10):
            await self._released.wait()
        fault = self._next_fault()
        if fault is not None:
            call.status = fault.status
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            await self._notify()
            return web.json_response(
                {"error": {"code": "Standin", "message": f"HTTP {fault.status}"}},
                status=fault.status,
                headers=headers,
            )
        call.status = 201
        await self._notify()
        return web.json_response({"id": f"1:standin-{next(self._ids)}"}, status=201)

    async def _create(self, request: web.Request) -> web.Response:
        call = await self._record(request, "create")
        call.status = 201
        await self._notify()
        number = next(self._ids)
        return web.json_response(
            {"id": f"a:standin-conversation-{number}", "activityId": f"1:standin-{number}"},
            status=201,
        )

    async def _member(self, request: web.Request) -> web.Response:
        call = Call(
            path=request.path,
            kind="member",
            conversation_id=request.match_info["conversation"],
            activity_id=None,
            body={"member": request.match_info["member"]},
            authorization=request.headers.get("Authorization"),
            at=time.monotonic(),
            headers=dict(request.headers),
        )
        self.calls.append(call)
        found = self.members.get(request.match_info["member"])
        call.status = self.member_status or (200 if found is not None else 404)
        await self._notify()
        if call.status != 200 or found is None:
            error = {"code": "MemberNotFoundInConversation", "message": "not found"}
            return web.json_response({"error": error}, status=call.status)
        return web.json_response(found)

    # the signing keys --------------------------------------------------------------------------

    async def _openid(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": CHANNEL_ISSUER,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{self.url}/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        self.key_fetches += 1
        return web.json_response({"keys": [self.key.jwk()]})


# --- the server ----------------------------------------------------------------------------


def teams_settings(
    database: Path,
    standin: TeamsStandIn,
    *,
    app_id: str | None = APP_ID,
    host: str = "127.0.0.1",
    tenants: tuple[TeamsTenant, ...] | None = None,
) -> Settings:
    """Teams for two tenants (st-annes, crossflatts), signing keys from the stand-in;
    St Anne's names a Teams contact for questions nobody could answer."""
    teams = TeamsSettings(
        app_id=app_id,
        app_password=None,
        app_type="MultiTenant",
        app_tenant_id=None,
        tenants=tenants
        or (TeamsTenant(ANNES_TENANT, "st-annes"), TeamsTenant(CROSS_TENANT, "crossflatts")),
        openid_metadata_url=standin.metadata_url,
    )
    schools = {"st-annes": SchoolSettings("st-annes", policy_contact_teams=CONTACT_AAD)}
    return Settings(database=database, host=host, port=0, teams=teams, schools=schools)


class RecordedSleeps:
    """The delivery policy's sleep: records each wait and advances a fake clock,
    waiting for real only a moment, so backoffs are checked, not endured."""

    def __init__(self, real: float = 0.01) -> None:
        self.waits: list[float] = []
        self.real = real
        self.now = 1000.0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(min(seconds, self.real))

    def clock(self) -> float:
        return self.now


class TeamsGuidebot(RunningServer):
    """The real server on 127.0.0.1, with a real HTTP client in front."""

    def __init__(
        self,
        settings: Settings,
        *,
        insecure_local: bool = False,
        credentials: FixedTokenCredentialFactory | None = None,
        delivery: DeliveryPolicy | None = None,
        clock: Callable[[], float] | None = None,
        secret_box: SecretBox | None = None,
        **build: Any,
    ) -> None:
        """``build``: more of ``build_app``'s keyword arguments (e.g. ``sweep_interval``)."""
        self.settings = settings
        self.sleeps = RecordedSleeps()
        app_id = settings.teams.app_id if settings.teams else None
        self.credentials = credentials or FixedTokenCredentialFactory(app_id)
        self.delivery = delivery or DeliveryPolicy(
            sleep=self.sleeps.sleep, clock=self.sleeps.clock, random=lambda: 1.0
        )
        app = build_app(
            settings,
            settings.database,
            insecure_local=insecure_local,
            teams_credentials=self.credentials,
            teams_delivery=self.delivery,
            clock=clock,
            secret_box=secret_box or SecretBox(bytes(range(32))),
            **build,
        )
        super().__init__(app)
        self.minter = TokenMinter(app_id=app_id or APP_ID)

    @property
    def bot(self) -> TeamsBot:
        return self.app[TEAMS_KEY]

    @property
    def operations(self) -> Operations:
        return self.bot.operations

    async def idle(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            await self.bot.idle()

    async def post(
        self,
        body: bytes | str,
        headers: dict[str, str],
        path: str = "/api/messages",
        *,
        skip_auto_headers: tuple[str, ...] = (),
    ) -> tuple[int, str]:
        assert self._session is not None
        raw = body.encode("utf-8") if isinstance(body, str) else body
        data = io.BytesIO(raw) if len(raw) > 64 * 1024 else raw  # aiohttp's advice for big bodies
        async with self._session.post(
            self.url + path, data=data, headers=headers, skip_auto_headers=skip_auto_headers
        ) as response:
            return response.status, await response.text()

    async def get(self, path: str) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.get(self.url + path) as response:
            return response.status, await response.json()

    async def send(
        self, activity: dict[str, Any], token: str | None = None, *, signed: bool = True
    ) -> tuple[int, str]:
        """Post an activity as the Bot Framework does: JSON with a channel token."""
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if signed:
            headers.update(bearer(token or self.minter.token(activity["serviceUrl"])))
        return await self.post(json.dumps(activity), headers)


# --- activities as Teams sends them -----------------------------------------------------------

_ids = itertools.count(1_700_000_000_000)


def activity_id() -> str:
    return str(next(_ids))


def _base(
    kind: str,
    service_url: str,
    conversation: dict[str, Any],
    tenant: str,
    user_aad: str | None,
    user_id: str,
    channel_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    sender: dict[str, Any] = {"id": user_id, "name": "Sam Staff"}
    if user_aad:
        sender["aadObjectId"] = user_aad
    return {
        "type": kind,
        "id": activity_id(),
        "timestamp": "2024-05-01T09:00:00.000Z",
        "localTimestamp": "2024-05-01T10:00:00.000+01:00",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": sender,
        "conversation": {**conversation, "tenantId": tenant},
        "recipient": {"id": BOT_ID, "name": BOT_NAME},
        "locale": "en-GB",
        "channelData": {"tenant": {"id": tenant}, **(channel_data or {})},
    }


def personal_message(
    text: str,
    service_url: str,
    *,
    tenant: str = ANNES_TENANT,
    user_aad: str | None = STAFF_AAD,
    user_id: str = STAFF_ID,
    conversation: str = PERSONAL,
) -> dict[str, Any]:
    activity = _base(
        "message",
        service_url,
        {"conversationType": "personal", "id": conversation},
        tenant,
        user_aad,
        user_id,
    )
    activity.update({"text": text, "textFormat": "plain", "attachments": []})
    return activity


def channel_message(
    text: str,
    service_url: str,
    *,
    tenant: str = ANNES_TENANT,
    channel: str = CHANNEL,
    root: str | None = None,
) -> dict[str, Any]:
    """``@guidebot text`` posted in a team channel (a new thread unless ``root``)."""
    message_id = activity_id()
    conversation = f"{channel};messageid={root or message_id}"
    activity = _base(
        "message",
        service_url,
        {"conversationType": "channel", "isGroup": True, "id": conversation},
        tenant,
        STAFF_AAD,
        STAFF_ID,
        {
            "teamsChannelId": channel,
            "teamsTeamId": TEAM,
            "channel": {"id": channel},
            "team": {"id": TEAM},
        },
    )
    mention = f"<at>{BOT_NAME}</at>"
    activity.update(
        {
            "id": message_id,
            "text": f"{mention} {text}",
            "textFormat": "plain",
            "entities": [
                {
                    "type": "mention",
                    "mentioned": {"id": BOT_ID, "name": BOT_NAME},
                    "text": mention,
                },
                {"type": "clientInfo", "locale": "en-GB", "country": "GB", "platform": "Web"},
            ],
        }
    )
    return activity


def card_submit(
    value: dict[str, Any],
    service_url: str,
    *,
    tenant: str = ANNES_TENANT,
    reply_to: str | None = None,
    user_aad: str | None = STAFF_AAD,
    user_id: str = STAFF_ID,
    conversation: str = PERSONAL,
) -> dict[str, Any]:
    """An Adaptive Card ``Action.Submit`` pressed: a message with ``value``, no text."""
    activity = _base(
        "message",
        service_url,
        {"conversationType": "personal", "id": conversation},
        tenant,
        user_aad,
        user_id,
        {"source": {"name": "message"}, "legacy": {"replyToId": reply_to or "1:card"}},
    )
    activity.update({"value": value, "replyToId": reply_to or "1:card"})
    return activity


def bot_added(
    service_url: str,
    *,
    tenant: str = ANNES_TENANT,
    conversation: str = PERSONAL,
    conversation_type: str = "personal",
    channel: str | None = None,
) -> dict[str, Any]:
    """``conversationUpdate``: the bot was added (installed) to a chat or team."""
    channel_data: dict[str, Any] = {}
    conv: dict[str, Any] = {"conversationType": conversation_type, "id": conversation}
    if channel is not None:
        channel_data = {
            "eventType": "teamMemberAdded",
            "team": {"id": TEAM, "name": "St Anne's staff"},
            "channel": {"id": channel},
        }
        conv["isGroup"] = True
    activity = _base(
        "conversationUpdate", service_url, conv, tenant, STAFF_AAD, STAFF_ID, channel_data
    )
    activity["membersAdded"] = [{"id": BOT_ID}]
    return activity


def installation_update(
    service_url: str,
    *,
    action: str = "add",
    tenant: str = ANNES_TENANT,
    conversation: str = PERSONAL,
) -> dict[str, Any]:
    activity = _base(
        "installationUpdate",
        service_url,
        {"conversationType": "personal", "id": conversation},
        tenant,
        STAFF_AAD,
        STAFF_ID,
        {"source": {"name": "message"}},
    )
    activity["action"] = action
    return activity


def replace(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)


def replace_teams(settings: Settings, **changes: Any) -> Settings:
    assert settings.teams is not None
    return dataclasses.replace(settings, teams=dataclasses.replace(settings.teams, **changes))
