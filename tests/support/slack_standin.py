"""A stand-in for the Slack Web API (and Socket Mode), on 127.0.0.1, port 0.

Point the real ``AsyncWebClient`` at ``standin.api_url``
(``http://127.0.0.1:<port>/api/``). Every call is recorded (method, parsed
params or JSON, headers, arrival time and what was answered) and answered the
way Slack answers: ``auth.test``, ``chat.postMessage``, ``chat.postEphemeral``,
``views.publish``, ``views.open``, ``views.update``, ``users.info``,
``users.lookupByEmail`` (from ``users_by_email``), ``chat.update`` (of a kept
message) and ``apps.connections.open``; any other
method gets ``unknown_method``. A method can be made to misbehave a given
number of times: 429 with ``Retry-After``, a 5xx, an ``ok: false`` error, or a
hang (no answer for a while; released at once when the stand-in closes).

Direct messages, for the outbox: ``conversations.open`` gives a DM channel
(``D`` + the user id), every ``chat.postMessage`` that succeeds is kept in its
channel with its message metadata (``posted``, ``posted_keys``), and
``conversations.history`` returns them newest first (metadata only with
``include_all_metadata``), 50 a page by default, with a cursor.

Whole-platform trouble, for outage tests: ``outage(500)`` / ``outage(429,
retry_after=30)`` / ``outage(None)`` (a hang: no answer until ``recover``, then a
503) makes every Web API call fail until ``recover()``; with ``accept=True`` a
``chat.postMessage`` is carried out before the failure is answered, as when
Slack posts a message and the answer is lost. ``chaos(rate, seed=...)`` fails
a random share of calls in random ways (429, 500, a hang past the client's
timeout, each with or without the message having been posted), for the
benchmark. ``hold_posts(accept=...)`` holds only ``chat.postMessage`` until
``release_posts()``. ``throttle_every(10)`` answers 429 to every tenth call.

For Socket Mode, ``apps.connections.open`` returns a ``ws://`` URL served here;
``push`` sends an envelope down the websocket and ``wait_ack`` waits for the
client's acknowledgement. ``response_url(name)`` gives a URL on this server
that records what is posted to it, for slash commands and clicks.

All waiting is on conditions, with timeouts: nothing here sleeps for a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web

BOT_USER_ID = "UGUIDEBOT"
BOT_ID = "BGUIDEBOT"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    """time.monotonic() when the call arrived."""
    status: int | None = None
    """The HTTP status answered, or None while it hangs."""
    ok: bool | None = None
    answered_at: float | None = None

    @property
    def token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    def dumps(self) -> str:
        """Params as JSON text, for "does this appear anywhere" checks."""
        return json.dumps(self.params, ensure_ascii=False)


@dataclass
class Fault:
    kind: Literal["status", "error", "hang"]
    times: int | None
    """How many calls it applies to; None for every call."""
    status: int = 200
    retry_after: int | None = None
    error: str = ""
    seconds: float = 0.0


@dataclass
class _Method:
    faults: list[Fault] = field(default_factory=list)

    def next_fault(self) -> Fault | None:
        while self.faults:
            fault = self.faults[0]
            if fault.times is None:
                return fault
            if fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.pop(0)
                return fault
            self.faults.pop(0)
        return None


class SlackStandIn:
    def __init__(
        self,
        tokens: dict[str, str] | None = None,
        *,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
    ) -> None:
        """``tokens`` maps bot tokens to team ids; when given, any other token
        gets ``invalid_auth``."""
        self.tokens = tokens
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.calls: list[Call] = []
        self.acks: list[dict[str, Any]] = []
        self.connections = 0
        self._methods: dict[str, _Method] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.messages: dict[str, list[dict[str, Any]]] = {}
        """Channel id -> the messages posted there (oldest first), metadata included."""
        self.users_by_email: dict[str, str] = {}
        """For ``users.lookupByEmail``: email (any case) -> user id; others ``users_not_found``."""
        self._trouble: _Trouble | None = None
        self._chaos: _Chaos | None = None
        self._every: _Every | None = None
        self._recovered = asyncio.Event()
        self._held_posts: _Trouble | None = None
        self._posts_released = asyncio.Event()
        self.port = 0

    # lifecycle ---------------------------------------------------------------------

    async def start(self) -> SlackStandIn:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link", self._websocket)
        app.router.add_post("/respond/{name}", self._respond)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._closing.set()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackStandIn:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/respond/{name}"

    # misbehaving on demand -----------------------------------------------------------

    def _add(self, method: str, fault: Fault) -> None:
        self._methods.setdefault(method, _Method()).faults.append(fault)

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer 429 ``ratelimited`` with ``Retry-After: retry_after``."""
        self._add(method, Fault("status", times, status=429, retry_after=retry_after))

    def fail(self, method: str, *, status: int = 500, times: int | None = 1) -> None:
        """Answer an HTTP error status (500, 503...)."""
        self._add(method, Fault("status", times, status=status))

    def error(self, method: str, error: str, *, times: int | None = 1) -> None:
        """Answer 200 with ``{"ok": false, "error": error}``."""
        self._add(method, Fault("error", times, error=error))

    def hang(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Answer nothing for ``seconds`` (or until the stand-in closes), then ok."""
        self._add(method, Fault("hang", times, seconds=seconds))

    # what happened -----------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def delivered(self, method: str) -> list[Call]:
        """Calls to ``method`` that were answered ``ok: true``."""
        return [c for c in self.calls_to(method) if c.ok]

    def views(self, method: str = "views.open") -> list[dict[str, Any]]:
        """The views opened (or updated) so far, in order."""
        found: list[dict[str, Any]] = []
        for call in self.calls_to(method):
            view = call.params.get("view")
            found.append(json.loads(view) if isinstance(view, str) else dict(view or {}))
        return found

    def in_flight(self, method: str) -> list[Call]:
        return [c for c in self.calls_to(method) if c.status is None]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until ``count`` calls to ``method`` have arrived (answered or not)."""
        await self.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
        return self.calls_to(method)

    async def wait_delivered(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        await self.wait_for(lambda: len(self.delivered(method)) >= count, timeout)
        return self.delivered(method)

    # the Web API ------------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif request.can_read_body:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = Call(method, await self._params(request), dict(request.headers), time.monotonic())
        self.calls.append(call)
        await self._notify()
        trouble = await self._platform_trouble(call)
        if trouble is not None:
            return trouble
        fault = self._methods.get(method, _Method()).next_fault()
        if fault is not None and fault.kind == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
            fault = None
        status, headers, body = self._answer(call, fault)
        call.status, call.ok, call.answered_at = status, bool(body.get("ok")), time.monotonic()
        await self._notify()
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self, call: Call, fault: Fault | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            error = "ratelimited" if fault.status == 429 else "internal_error"
            return fault.status, headers, {"ok": False, "error": error}
        if fault is not None and fault.kind == "error":
            return 200, {}, {"ok": False, "error": fault.error}
        token = call.token
        if call.method == "apps.connections.open":
            if not token or not token.startswith("xapp-"):
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            return 200, {}, {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket=t"}
        if self.tokens is not None and token not in self.tokens:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        team = (self.tokens or {}).get(token or "", "T0STANDIN")
        return 200, {}, self._ok(call, team)

    def _ok(self, call: Call, team: str) -> dict[str, Any]:
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        params = call.params
        match call.method:
            case "auth.test":
                return {
                    "ok": True,
                    "url": "https://standin.slack.com/",
                    "team": "Stand-in School",
                    "user": "guidebot",
                    "team_id": team,
                    "user_id": self.bot_user_id,
                    "bot_id": self.bot_id,
                    "is_enterprise_install": False,
                }
            case "chat.postMessage":
                channel = self._dm_channel(params.get("channel"))
                self._keep(channel, ts, params)
                return {
                    "ok": True,
                    "channel": channel,
                    "ts": ts,
                    "message": {"type": "message", "text": params.get("text"), "ts": ts},
                }
            case "conversations.open":
                users = str(params.get("users") or "")
                if not users or "," in users:
                    return {"ok": False, "error": "users_not_found"}
                return {"ok": True, "channel": {"id": self._dm_channel(users)}}
            case "conversations.history":
                return self._history(params)
            case "chat.postEphemeral":
                return {"ok": True, "message_ts": ts}
            case "views.publish":
                view = params.get("view") or {}
                if isinstance(view, str):
                    view = json.loads(view)
                return {"ok": True, "view": {"id": "VSTANDIN", **view}}
            case "views.open" | "views.update":
                # views.open needs the trigger of a click, command or submission.
                if call.method == "views.open" and not params.get("trigger_id"):
                    return {"ok": False, "error": "invalid_arguments"}
                view = params.get("view") or {}
                if isinstance(view, str):
                    view = json.loads(view)
                return {"ok": True, "view": {"id": f"V{next(self._ts):08d}", **view}}
            case "users.lookupByEmail":
                wanted = str(params.get("email") or "").casefold()
                found = {k.casefold(): v for k, v in self.users_by_email.items()}.get(wanted)
                if found is None:
                    return {"ok": False, "error": "users_not_found"}
                profile = {"email": params.get("email"), "real_name": "Staff Member"}
                return {"ok": True, "user": {"id": found, "team_id": team, "profile": profile}}
            case "chat.update":
                return self._update(params)
            case "users.info":
                user = params.get("user", "U0")
                return {
                    "ok": True,
                    "user": {"id": user, "team_id": team, "name": "staff", "is_bot": False},
                }
            case _:
                return {"ok": False, "error": "unknown_method"}

    async def _respond(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.json() if request.can_read_body else {}
        call = Call(f"response_url:{name}", body, dict(request.headers), time.monotonic())
        call.status, call.ok, call.answered_at = 200, True, time.monotonic()
        self.calls.append(call)
        await self._notify()
        return web.Response(text="ok")

    # Socket Mode ----------------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.connections += 1
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "ASTANDIN"}}
        )
        await self._notify()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self.acks.append(json.loads(message.data))
                    await self._notify()
        finally:
            self._sockets.remove(ws)
            await self._notify()
        return ws

    async def wait_connected(self, timeout: float = 5.0) -> None:
        await self.wait_for(lambda: bool(self._sockets), timeout)

    async def push(self, envelope: dict[str, Any], timeout: float = 5.0) -> None:
        """Send one envelope to the connected Socket Mode client."""
        await self.wait_connected(timeout)
        await self._sockets[-1].send_json(envelope)

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        def acked() -> bool:
            return any(a.get("envelope_id") == envelope_id for a in self.acks)

        await self.wait_for(acked, timeout)
        return next(a for a in self.acks if a.get("envelope_id") == envelope_id)

    # direct messages and their history (for the outbox) ------------------------------------

    @staticmethod
    def _dm_channel(channel: object) -> str:
        """A user id posts to (or opens) the bot's DM with them: ``D`` + the id."""
        text = str(channel or "")
        return "D" + text if text[:1] in ("U", "W") else text

    def _keep(self, channel: str, ts: str, params: dict[str, Any]) -> None:
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        message: dict[str, Any] = {
            "type": "message",
            "ts": ts,
            "text": params.get("text"),
            "bot_id": self.bot_id,
            "user": self.bot_user_id,
            "blocks": blocks,
            "metadata": metadata,
        }
        self.messages.setdefault(channel, []).append(message)

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        """chat.update: the message at ``ts`` in ``channel`` gets the new text and blocks."""
        channel, ts = self._dm_channel(params.get("channel")), params.get("ts")
        for message in self.messages.get(channel, []):
            if message["ts"] == ts:
                blocks = params.get("blocks")
                message["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks
                message["text"] = params.get("text", message["text"])
                return {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}
        return {"ok": False, "error": "message_not_found"}

    def posted(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every message posted (in any channel), or those carrying outbox ``key``."""
        found = [m for messages in self.messages.values() for m in messages]
        if key is None:
            return found
        return [m for m in found if _outbox_key(m) == key]

    def posted_keys(self) -> dict[str, int]:
        """How many times each outbox key was posted."""
        counted: dict[str, int] = {}
        for message in self.posted():
            key = _outbox_key(message)
            if key is not None:
                counted[key] = counted.get(key, 0) + 1
        return counted

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel") or "")
        if channel not in self.messages and not channel.startswith("D"):
            return {"ok": False, "error": "channel_not_found"}
        newest_first = list(reversed(self.messages.get(channel, [])))
        limit = max(1, min(int(params.get("limit") or 100), 999))
        start = int(params.get("cursor") or 0)
        page = newest_first[start : start + limit]
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        shown = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in page
        ]
        more = start + limit < len(newest_first)
        return {
            "ok": True,
            "messages": shown,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    # whole-platform trouble -----------------------------------------------------------------

    def outage(
        self, status: int | None = 500, *, retry_after: int | None = None, accept: bool = False
    ) -> None:
        """Every Web API call fails from now until ``recover()``: answered ``status``
        (429 with ``Retry-After: retry_after``), or with None held unanswered until
        ``recover()`` and then answered 503. ``accept``: a chat.postMessage is
        carried out first, so the message is there although the call failed."""
        self._recovered.clear()
        self._trouble = _Trouble(status, retry_after, accept)

    def recover(self) -> None:
        """End an outage or chaos; held calls are answered (503) at once."""
        self._trouble = None
        self._chaos = None
        self._every = None
        self._recovered.set()

    def chaos(
        self,
        rate: float,
        *,
        seed: int = 0,
        hang: float = 1.0,
        methods: tuple[str, ...] | None = None,
    ) -> None:
        """Fail a share ``rate`` of calls (of ``methods``, default all), each at
        random: 429 (Retry-After 1), 500, or a hang of ``hang`` seconds then 504;
        a failed chat.postMessage is carried out first half of the time."""
        self._recovered.clear()
        self._chaos = _Chaos(rate, random.Random(seed), hang, methods)

    def throttle_every(
        self, n: int, *, retry_after: int = 1, methods: tuple[str, ...] | None = None
    ) -> None:
        """Answer 429 (``Retry-After: retry_after``) to every ``n``-th call (of
        ``methods``, default all), deterministically, until ``recover()``."""
        self._every = _Every(n, retry_after, methods)

    def hold_posts(self, *, accept: bool = False) -> None:
        """Hold every chat.postMessage unanswered until ``release_posts()`` (or
        close), then answer 503; ``accept``: the message is posted on arrival."""
        self._posts_released.clear()
        self._held_posts = _Trouble(None, None, accept)

    def release_posts(self) -> None:
        self._held_posts = None
        self._posts_released.set()

    async def _platform_trouble(self, call: Call) -> web.Response | None:
        trouble = self._trouble
        if call.method == "chat.postMessage" and self._held_posts is not None:
            trouble = self._held_posts
            released = self._posts_released
        else:
            released = self._recovered
        chaos = self._chaos
        if trouble is None and chaos is not None and chaos.applies(call.method):
            trouble = chaos.pick()
        every = self._every
        if trouble is None and every is not None and every.applies(call.method):
            trouble = _Trouble(429, every.retry_after, False)
        if trouble is None:
            return None
        if trouble.accept and call.method == "chat.postMessage":
            team = (self.tokens or {}).get(call.token or "", "T0STANDIN")
            self._ok(call, team)  # carried out: the message is in the channel
        status = trouble.status
        if trouble.hang is not None:  # no answer within the client's timeout, then 504
            await _first_set((released, self._closing), trouble.hang)
            status = 504
        elif status is None:  # no answer until released
            await _first_set((released, self._closing), None)
            status = 503
        headers = {"Retry-After": str(trouble.retry_after)} if trouble.retry_after else {}
        error = "ratelimited" if status == 429 else "internal_error"
        call.status, call.ok, call.answered_at = status, False, time.monotonic()
        await self._notify()
        return web.json_response({"ok": False, "error": error}, status=status, headers=headers)


@dataclass
class _Trouble:
    status: int | None
    """The status answered; None: held until released, then 503."""
    retry_after: int | None
    accept: bool
    """chat.postMessage is carried out before the failure is answered."""
    hang: float | None = None
    """Seconds to hold before answering 504 (chaos's timeouts)."""


@dataclass
class _Chaos:
    rate: float
    rng: random.Random
    hang: float
    methods: tuple[str, ...] | None

    def applies(self, method: str) -> bool:
        return (self.methods is None or method in self.methods) and self.rng.random() < self.rate

    def pick(self) -> _Trouble:
        kind = self.rng.choice(("429", "500", "hang"))
        accept = kind != "429" and self.rng.random() < 0.5
        if kind == "429":
            return _Trouble(429, 1, False)
        if kind == "500":
            return _Trouble(500, None, accept)
        return _Trouble(504, None, accept, hang=self.hang)


@dataclass
class _Every:
    n: int
    retry_after: int
    methods: tuple[str, ...] | None
    seen: int = 0

    def applies(self, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        self.seen += 1
        return self.seen % self.n == 0


async def _first_set(events: tuple[asyncio.Event, ...], timeout: float | None) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def _outbox_key(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != "guidebot_outbox":
        return None
    payload = metadata.get("event_payload")
    key = payload.get("key") if isinstance(payload, dict) else None
    return key if isinstance(key, str) else None
