"""The Slack app: slack-bolt's ``AsyncApp`` wired to the platform-neutral core.

What it answers: direct messages, ``@guidebot`` mentions in channels (the reply
goes in a thread), ``/policy QUESTION`` (the reply only the asker sees, by
``chat.postEphemeral``), button clicks, and the App Home tab. Payloads are
converted at the edge by ``adapters.slack.convert``; everything else is the core.

Safeguarding concerns (with a ``Concerns`` service): ``/concern`` and every
"Report a concern" button open the report form as a modal (``views.open`` with
the request's trigger_id, straight after the ack: a trigger lasts three
seconds), pre-filled with the member's own message when the core still holds
it; the DSL's alert buttons open the report, acknowledge it, or open a modal
for a note or the outcome. A modal's submission is the one request answered
*in* its ack (``response_action``: field errors, or the form replaced by the
confirmation), so that listener stores the report first, without waiting for a
turn. Modals are built by ``adapters.slack.concern_views``. Report content only
ever goes into a modal for the person allowed to see it or the reporter's own
DM, never a channel or a log line.

Acknowledge first, work after. ``process_before_response=False`` and every
listener calls ``await ack()`` before anything else, so Slack has its answer
within milliseconds whatever the search or the Web API is doing. (The threaded
``App`` would make an ack wait behind its five listener threads.) The work then
runs in a task we keep track of, so shutdown can cancel it cleanly. Searching
and storing are synchronous and share the event loop with acknowledgements,
so they take turns (``SlackBot._turn``): one at a time, and only once no
request has been on its way to an ack for a few milliseconds (never held back
more than a second). A burst of 50 requests is acknowledged before the 25
searches it brought begin; a request arriving mid-work waits for one turn.

Broadcasts (with a ``Broadcasts`` service): ``/broadcast`` opens the form
(``adapters.slack.broadcast_views``) for a leader, straight after the ack as
for concerns; ``/broadcast status`` shows recent broadcasts with who is
outstanding, ephemerally; anyone else gets an ephemeral refusal and the attempt
is recorded (``Broadcasts.author``). The form's submission is answered in its
ack: field errors, or the form replaced by "on its way to N people" /
"will be sent on ..." (with a copy by DM). "I have read and understood" under a
broadcast records the acknowledgement, thanks them ephemerally and updates the
message (``chat.update``) so the button becomes a line saying when. Leaders'
App Home also lists recent broadcasts, "New broadcast", and "Prepare a
broadcast" for each changed policy staff have not been told about.

Workspaces. Each Slack team id in the configuration maps to one school and has
its own bot token; ``authorize`` returns that token with the bot's user and bot
ids from ``auth.test`` (asked once per workspace, then cached, and warmed up at
start). A request from a team we do not know is acknowledged with an empty 200,
so Slack does not retry it, logged by team id only, and never answered.

Outgoing calls use one ``AsyncWebClient`` (``base_url`` from the settings in
tests) with three retry handlers:

- 429 rate limits: slack_sdk's ``AsyncRateLimitErrorRetryHandler`` waits for
  ``Retry-After`` and tries again (twice at most);
- 500 and 503: one more try after a second;
- a connection that could not be made at all (``ClientConnectorError``), when
  nothing can have been delivered: one more try.

Timeouts. A call that times out (``API_TIMEOUT``) may well have been delivered,
so it is never retried here: a second try could post the answer twice. The
event is marked failed instead (``finish_event(succeeded=False)``), and if
Slack delivers it again, which it does when it did not see our ack, it is
answered then. Each event's work is bounded by ``HANDLER_DEADLINE``, cancelled
and marked failed beyond it. Slack only redelivers an event whose ack it did
not see, so until the outbox (bot/outbox.py) retries deliveries durably, a post
that fails after a good ack is logged (event id and error code) and not retried.

Retries never answer twice. An Events API delivery (HTTP or Socket Mode) is
claimed in the database by its ``event_id`` before any work: states are
``handling`` -> ``done`` | ``failed``. A retry (``X-Slack-Retry-Num``) of a
``done`` or still ``handling`` event is dropped; a retry of a ``failed`` one is
handled, once, since claiming is atomic. A ``handling`` claim older than
``STALE_AFTER`` (the worker died: a crash, a restart) can be claimed again;
``STALE_AFTER`` is longer than ``HANDLER_DEADLINE``, so a live attempt is never
overtaken. Events we ignore (bot messages, edits) claim nothing. Slash commands
and button clicks have no event id and Slack does not retry them; clicks are
idempotent in the core anyway (one vote per question, a question is passed on
once).

Privacy. Bolt's and slack_sdk's loggers are held at WARNING: at DEBUG and INFO
they log request and response bodies. Our own log lines name event ids, team
ids and error codes, never what anyone wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from aiohttp import ClientConnectorError, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.acks import AcksFirst
from adapters.http_checks import Refused
from adapters.slack import broadcast_views, concern_views, convert
from adapters.slack.verify import Clock, verify_request
from bot import broadcast_form, concern_form, policy_changes, wording
from bot.answers import Answerer
from bot.broadcasts import BroadcastRefused, Broadcasts, Draft
from bot.concerns import (
    AccessRefused,
    ConcernFormError,
    Concerns,
    NoRecipients,
    Person,
    UnknownConcern,
)
from bot.config import SlackSettings, SlackWorkspace
from bot.directory import Directory
from bot.messages import Action, Click, FormRequest, Incoming, Reply
from knowledge.errors import GuidebotError

log = logging.getLogger(__name__)

_Listener = Callable[[AsyncAck, dict[str, Any], AsyncBoltContext], Awaitable[None]]
_Handler = Callable[[dict[str, Any], AsyncBoltContext], Awaitable[None]]

PLATFORM = "slack"
DEFAULT_API_URL = AsyncWebClient.BASE_URL
API_TIMEOUT = 10.0
"""Seconds before an outgoing Web API call is abandoned (and not retried)."""
RETRY_INTERVAL = 1.0
"""Seconds before the one retry of a 500/503 or of a refused connection."""
RATE_LIMIT_RETRIES = 2
SERVER_ERROR_RETRIES = 1
HANDLER_DEADLINE = 120.0
"""Seconds one event's work may take, rate-limit waits included."""
STALE_AFTER = timedelta(seconds=150)
"""A claim still ``handling`` after this long belongs to a worker that died.
Longer than HANDLER_DEADLINE, so a live attempt is never overtaken."""

_NOT_A_MEMBER = {"channel_not_found", "not_in_channel", "user_not_in_channel"}
"""chat.postEphemeral errors after which the ``response_url`` is used instead."""
_SLACK_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_REFUSALS = {400: "bad request", 401: "unauthorized", 413: "request too large"}

_DSL_ACTIONS = frozenset(
    {Action.CONCERN_VIEW, Action.CONCERN_ACKNOWLEDGE, Action.CONCERN_NOTE, Action.CONCERN_CLOSE}
)
"""The buttons on a DSL's concern alert (their value is the report's reference)."""

STATUS_BROADCASTS = 5
"""Broadcasts ``/broadcast status`` shows, newest first."""

_BOLT_LOG = logging.getLogger("adapters.slack.bolt")
_API_LOG = logging.getLogger("adapters.slack.webapi")
APP_NAME = "guidebot-slack"


class _NotAboutTheEnvironmentToken(logging.Filter):
    """Bolt reads ``SLACK_BOT_TOKEN`` from the environment by itself and warns
    that it is unused; here it is the first workspace's token, used on purpose
    through ``authorize``, so the warning would only alarm an administrator."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("As you gave `client` as well")


_BOLT_LOG.addFilter(_NotAboutTheEnvironmentToken())


def quiet_platform_logs() -> None:
    """Hold bolt's and slack_sdk's loggers at WARNING: below that they log bodies.

    Bolt copies its base logger's level onto every logger it creates, so the
    base logger handed to ``AsyncApp`` matters as much as the package loggers.
    """
    for name in ("slack_bolt", "slack_sdk", APP_NAME, _BOLT_LOG.name, _API_LOG.name):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def make_web_client(
    api_url: str | None = None,
    *,
    timeout: float = API_TIMEOUT,
    retry_interval: float = RETRY_INTERVAL,
) -> AsyncWebClient:
    """The client for every outgoing Web API call (no token: each call gets its
    workspace's token from ``authorize``)."""
    quiet_platform_logs()
    interval = FixedValueRetryIntervalCalculator(retry_interval)
    return AsyncWebClient(
        base_url=api_url or DEFAULT_API_URL,
        # Annotated int, but handed to aiohttp.ClientTimeout(total=...), which takes a float.
        timeout=cast(int, timeout),
        logger=_API_LOG,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            AsyncServerErrorRetryHandler(
                max_retry_count=SERVER_ERROR_RETRIES, interval_calculator=interval
            ),
            AsyncConnectionErrorRetryHandler(
                max_retry_count=1,
                interval_calculator=interval,
                error_types=[ClientConnectorError],
            ),
        ],
    )


def describe(exc: BaseException) -> str:
    """An exception in words safe to log: an error code, never a body."""
    if isinstance(exc, SlackApiError):
        error = exc.response.get("error") if exc.response is not None else None
        status = getattr(exc.response, "status_code", "?")
        return f"Slack answered {error or 'an error'} (HTTP {status})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


def _safe_id(value: object) -> str:
    """A Slack id fit for a log line; anything else is not echoed."""
    return value if isinstance(value, str) and _SLACK_ID.fullmatch(value) else "(malformed)"


class SlackAuthError(GuidebotError):
    """auth.test failed for a configured workspace: the token is wrong or revoked."""


class SlackDeliveryError(GuidebotError):
    """A message could not be delivered by any route."""


class _KnownWorkspacesOnly(AsyncMiddleware):
    """Runs before ``authorize``: a request from a team that is not configured
    gets an empty 200 (so Slack does not retry) and nothing else; a known one
    gets its school in ``context["school"]``."""

    def __init__(self, settings: SlackSettings) -> None:
        self.settings = settings

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        if req.body.get("type") == "url_verification" or "ssl_check" in req.body:
            return await next()
        workspace = workspace_of(self.settings, req.context.team_id, req.context.enterprise_id)
        if workspace is None:
            log.warning(
                "Ignored a Slack request from workspace %s, which is not in the configuration",
                _safe_id(req.context.team_id or req.context.enterprise_id),
            )
            return BoltResponse(status=200, body="")
        req.context["school"] = workspace.school
        return await next()


def workspace_of(
    settings: SlackSettings, team_id: str | None, enterprise_id: str | None
) -> SlackWorkspace | None:
    """The configured workspace for a request: by team id, else by the
    Enterprise Grid org id (an org-wide install)."""
    found = settings.workspace(team_id) if team_id else None
    if found is None and enterprise_id:
        found = settings.workspace(enterprise_id)
    return found


class SlackBot:
    """The bolt app for every configured workspace, and the work behind it."""

    def __init__(
        self,
        settings: SlackSettings,
        answerer: Answerer,
        *,
        client: AsyncWebClient,
        clock: Clock = time.time,
        concerns: Concerns | None = None,
        broadcasts: Broadcasts | None = None,
        directory: Directory | None = None,
    ) -> None:
        """``concerns``: the safeguarding reports service; without it the report
        buttons and ``/concern`` only tell staff to speak to their DSL.
        ``broadcasts`` and ``directory``: leaders' broadcasts; without them
        ``/broadcast`` only says it is not set up."""
        quiet_platform_logs()
        self.settings = settings
        self.answerer = answerer
        self.concerns = concerns
        self.broadcasts = broadcasts
        self.directory = directory
        self.operations = answerer.operations
        self.client = client
        self.clock = clock
        self._auth: dict[str, AuthorizeResult] = {}
        self._auth_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acks = AcksFirst()

        # Bolt passes arguments by name, read from the signature: a plain function.
        async def authorize(
            enterprise_id: str | None, team_id: str | None
        ) -> AuthorizeResult | None:
            return await self._authorize(enterprise_id, team_id)

        self.app = AsyncApp(
            name=APP_NAME,
            logger=_BOLT_LOG,
            client=client,
            signing_secret="",  # verified before bolt: see handle_http
            request_verification_enabled=False,
            process_before_response=False,
            before_authorize=_KnownWorkspacesOnly(settings),
            # Bolt's hint says AuthorizeResult, but None (no such workspace) is handled.
            authorize=cast("Callable[..., Awaitable[AuthorizeResult]]", authorize),
        )
        self._register()

    # transports ------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """POST /slack/events: events, interactivity and slash commands.

        Verified here, before bolt sees anything; a refusal logs only its reason."""
        secret = self.settings.signing_secret
        if secret is None:
            raise web.HTTPNotFound()
        with self._acknowledging():
            try:
                verified = await verify_request(request, secret.reveal(), self.clock)
            except Refused as refusal:
                log.warning("Refused a request to /slack/events: %s", refusal.reason)
                return web.Response(status=refusal.status, text=_REFUSALS.get(refusal.status, ""))
            headers: dict[str, str | Sequence[str]] = {
                name: request.headers.getall(name) for name in request.headers
            }
            # Bolt gets the body as we verified and parsed it, not the raw text:
            # its own form parser reads any body containing "payload" (a slash
            # command asking about one, say) as an interactivity payload and
            # loses it. Bolt's "socket_mode" is simply its mode for a body that
            # arrives parsed; its own verification is off either way.
            bolt_request = AsyncBoltRequest(
                body=verified.payload,
                query=request.query_string,
                headers=headers,
                mode="socket_mode",
            )
            return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    async def dispatch(self, bolt_request: AsyncBoltRequest) -> BoltResponse:
        """For Socket Mode: an envelope's payload, already authenticated."""
        with self._acknowledging():
            return await self.app.async_dispatch(bolt_request)

    def _acknowledging(self) -> contextlib.AbstractContextManager[None]:
        """Around a request's way to its acknowledgement (see adapters/acks.py)."""
        return self._acks.acknowledging()

    def _turn(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Around synchronous work: acknowledgements first (see adapters/acks.py)."""
        return self._acks.turn()

    # lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Ask auth.test for every workspace now, so no first ack waits for it."""
        self._spawn(self._warm_up())

    async def _warm_up(self) -> None:
        for workspace in self.settings.workspaces:
            try:
                await self._authorize(enterprise_id=None, team_id=workspace.team_id)
            except Exception as exc:
                log.warning(
                    "Slack workspace %s: auth.test failed at start: %s",
                    workspace.team_id,
                    describe(exc),
                )

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._track(task)

    def _track(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until no work is in hand (for tests)."""
        for _ in range(3):  # let just-scheduled listener tasks start and register
            await asyncio.sleep(0)
        while self._tasks:
            await asyncio.wait(list(self._tasks))
            await asyncio.sleep(0)

    async def close(self) -> None:
        """Cancel work in hand; each event it belonged to is marked failed."""
        for _ in range(3):  # let just-scheduled listener tasks start and register
            await asyncio.sleep(0)
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # authorisation ---------------------------------------------------------------

    async def _authorize(
        self, enterprise_id: str | None, team_id: str | None
    ) -> AuthorizeResult | None:
        workspace = workspace_of(self.settings, team_id, enterprise_id)
        if workspace is None:
            return None
        cached = self._auth.get(workspace.team_id)
        if cached is not None:
            return cached
        async with self._auth_lock:
            cached = self._auth.get(workspace.team_id)
            if cached is not None:
                return cached
            token = workspace.bot_token.reveal()
            try:
                identity = await self.client.auth_test(token=token)
            except SlackApiError as exc:
                # Not a SlackApiError any more: bolt would tell the user to
                # reinstall; this way the request fails and Slack retries it.
                raise SlackAuthError(
                    f"auth.test failed for Slack workspace {workspace.team_id}: {describe(exc)}"
                ) from None
            result = AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=workspace.team_id,
                bot_token=token,
                bot_user_id=identity.get("user_id"),
                bot_id=identity.get("bot_id"),
            )
            self._auth[workspace.team_id] = result
            return result

    # listeners -------------------------------------------------------------------

    def _register(self) -> None:
        # Bolt passes arguments by name, so listeners are plain functions here.
        app = self.app

        def acked(
            what: str, handle: _Handler, refusal: Callable[[], str | None] | None = None
        ) -> _Listener:
            """A listener that acks at once (with ``refusal()`` instead of the work,
            when that says the feature is not set up), then does the work."""

            async def listener(
                ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
            ) -> None:
                refused = refusal() if refusal is not None else None
                if refused is not None:
                    await ack(text=refused)
                    return
                await ack()
                await self._run(what, lambda: handle(body, context))

            return listener

        def answered_in_ack(what: str, handle: _Listener) -> _Listener:
            """A form's listener: answered in the ack itself (errors, or the
            confirmation), so no ack first."""

            async def listener(
                ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
            ) -> None:
                await self._run(what, lambda: handle(ack, body, context))

            return listener

        on_message = acked("event", self._on_question_event)
        on_home = acked("App Home", self._on_home)
        on_command = acked("command", self._on_command)
        on_action = acked("button", self._on_click)
        on_concern_command = acked(
            "concern command",
            self._on_concern_command,
            lambda: wording.report_how() if self.concerns is None else None,
        )
        on_concern_view = answered_in_ack("concern form", self._on_concern_view)
        on_broadcast_command = acked(
            "broadcast command",
            self._on_broadcast_command,
            lambda: wording.broadcast_not_set_up() if self.broadcasts is None else None,
        )
        on_broadcast_view = answered_in_ack("broadcast form", self._on_broadcast_view)

        app.event("message")(on_message)
        app.event("app_mention")(on_message)
        app.event("app_home_opened")(on_home)
        app.command("/policy")(on_command)
        app.command("/concern")(on_concern_command)
        app.command("/broadcast")(on_broadcast_command)
        app.view(broadcast_views.BROADCAST_CALLBACK)(on_broadcast_view)
        app.view(re.compile(r"^concern_(?:submit|note|close)$"))(on_concern_view)
        app.action(re.compile(r".*"))(on_action)

        async def on_other_event(ack: AsyncAck) -> None:
            await ack()  # an event we do not use: a 404 would only make Slack retry it

        app.event(re.compile(r".*"))(on_other_event)

    async def _run(self, what: str, work: Callable[[], Awaitable[None]]) -> None:
        """One listener's work, after its ack: tracked, bounded, never raising."""
        self._track(asyncio.current_task())
        try:
            async with asyncio.timeout(HANDLER_DEADLINE):
                await work()
        except Exception as exc:
            log.warning("Slack %s not handled: %s", what, describe(exc))

    async def _once(self, body: Mapping[str, Any], work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` for an Events API delivery unless it was handled already."""
        event_id = body.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            await work()
            return
        if not await self.operations.handle_once(PLATFORM, event_id, STALE_AFTER, work):
            log.info(
                "Slack event %s is handled or in hand: not answering again", _safe_id(event_id)
            )

    # questions ---------------------------------------------------------------------

    async def _on_question_event(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        incoming = convert.to_incoming(body, context["school"])
        if incoming is None:
            return
        client = context.client
        await self._once(body, lambda: self._answer(client, incoming))

    async def _on_command(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        incoming = convert.to_incoming(body, context["school"])
        if incoming is None:
            return
        response_url = body.get("response_url")
        await self._answer(
            context.client, incoming, response_url if isinstance(response_url, str) else None
        )

    async def _answer(
        self, client: AsyncWebClient, incoming: Incoming, response_url: str | None = None
    ) -> None:
        failure: Exception | None = None
        try:
            async with self._turn():
                reply = await self.answerer.answer(incoming)
        except Exception as exc:
            failure = exc
            reply = Reply(
                wording.something_went_wrong(), ephemeral=incoming.kind == "command", kind="notice"
            )
        message = convert.render(reply)
        if incoming.kind == "command" or reply.ephemeral:
            await self._ephemeral(
                client,
                incoming.conversation_id,
                incoming.user_id,
                message,
                thread_ts=incoming.thread_id,
                response_url=response_url,
            )
        else:
            await self._post(client, incoming.conversation_id, message, incoming.thread_id)
        if failure is not None:
            raise failure

    # sending -------------------------------------------------------------------------

    async def _post(
        self,
        client: AsyncWebClient,
        channel: str,
        message: Mapping[str, Any],
        thread_ts: str | None = None,
    ) -> None:
        await client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **message,
        )

    async def _ephemeral(
        self,
        client: AsyncWebClient,
        channel: str,
        user: str,
        message: Mapping[str, Any],
        *,
        thread_ts: str | None = None,
        response_url: str | None = None,
    ) -> None:
        """A message only ``user`` sees. Where the bot is not a member (a DM
        between two people, a private channel), the ``response_url`` of the
        command or click is used instead."""
        try:
            await client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, **message
            )
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if response_url is None or error not in _NOT_A_MEMBER:
                raise
            webhook = AsyncWebhookClient(
                response_url, timeout=cast(int, API_TIMEOUT), logger=_API_LOG, retry_handlers=[]
            )
            response = await webhook.send(
                text=message.get("text"),
                blocks=message.get("blocks"),
                response_type="ephemeral",
                replace_original=False,
            )
            if response.status_code != 200:
                raise SlackDeliveryError(
                    f"response_url answered HTTP {response.status_code}"
                ) from None

    # buttons ---------------------------------------------------------------------------

    async def _on_click(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        school = context["school"]
        click = convert.to_click(body, school)
        if click is None:
            return
        client = context.client
        if self.concerns is not None and click.action is Action.REPORT_CONCERN:
            await self._report_clicked(client, body, context, click)
            return
        if click.action in _DSL_ACTIONS:
            await self._dsl_clicked(client, body, context, click)
            return
        if click.action is Action.BROADCAST_ACK:
            await self._ack_clicked(client, body, click)
            return
        if click.action is Action.BROADCAST_NEW:
            await self._new_broadcast_clicked(client, body, context, click)
            return
        if click.action is Action.ASK_QUESTION:
            reply: Reply | None = Reply(wording.ask_prompt(), kind="help")
            deliveries: tuple[Any, ...] = ()
        else:
            async with self._turn():
                outcome = await self.answerer.click(click)
            reply, deliveries = outcome.reply, outcome.deliveries
            if outcome.form is not None and reply is None:  # no concerns service here
                reply = Reply(wording.report_how(), ephemeral=True, kind="notice")
        for delivery in deliveries:  # first, so the asker is only told what happened
            if delivery.platform != PLATFORM:
                continue
            try:
                await self._post(client, delivery.user_id, convert.render(delivery.reply))
            except Exception as exc:
                log.warning(
                    "Could not pass a question on to %s: %s",
                    _safe_id(delivery.user_id),
                    describe(exc),
                )
                async with self._turn():
                    reply = self.answerer.pass_on_failed(delivery, school)
        if reply is not None:
            await self._notify_clicker(client, body, click, reply)

    async def _notify_clicker(
        self, client: AsyncWebClient, body: Mapping[str, Any], click: Click, reply: Reply
    ) -> None:
        """A notice only the person who clicked sees (App Home: their DM with us)."""
        message = convert.render(reply)
        if click.conversation_id:
            response_url = body.get("response_url")
            await self._ephemeral(
                client,
                click.conversation_id,
                click.user_id,
                message,
                thread_ts=_thread_of(body),
                response_url=response_url if isinstance(response_url, str) else None,
            )
        else:
            await self._post(client, click.user_id, message)

    # safeguarding concerns -----------------------------------------------------------------
    #
    # Forms open in modals (``views.open`` with the request's trigger_id, which
    # lasts three seconds, so straight after the ack and before any turn-taking);
    # a submission is answered in its ack: field errors, or the form replaced by
    # the confirmation. Report content only ever goes to a modal, or to the
    # reporter's own DM; log lines name error codes, never content.

    def _metadata(self, context: AsyncBoltContext, ref: str = "") -> concern_views.Metadata:
        workspace = workspace_of(self.settings, context.team_id, context.enterprise_id)
        team = workspace.team_id if workspace is not None else (context.team_id or "")
        return concern_views.Metadata(context["school"], team, ref)

    def _submission(
        self, body: Mapping[str, Any], context: AsyncBoltContext
    ) -> tuple[Mapping[str, Any], str, concern_views.Metadata] | None:
        """A submitted view (``view_submission``), who submitted it and what it
        carried; None when any is missing or it was opened for another school or
        workspace (so nothing is stored)."""
        view = body.get("view")
        view = view if isinstance(view, Mapping) else {}
        user = body.get("user")
        user_id = user.get("id") if isinstance(user, Mapping) else None
        meta = concern_views.read_metadata(view)
        expected = self._metadata(context)
        if (
            not isinstance(user_id, str)
            or not user_id
            or meta is None
            or (meta.school, meta.team) != (expected.school, expected.team)
        ):
            return None
        return view, user_id, meta

    async def _open_view(
        self,
        client: AsyncWebClient,
        body: Mapping[str, Any],
        view: Mapping[str, Any],
        what: str,
    ) -> bool:
        trigger_id = body.get("trigger_id")
        if not isinstance(trigger_id, str) or not trigger_id:
            log.warning("Slack: the %s could not be opened: no trigger id", what)
            return False
        try:
            await client.views_open(trigger_id=trigger_id, view=dict(view))
        except Exception as exc:
            log.warning("Slack: the %s could not be opened: %s", what, describe(exc))
            return False
        return True

    async def _on_concern_command(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        """``/concern [what happened]``: the report form, with any text typed after
        the command already in "what was seen, heard or said"."""
        incoming = convert.to_incoming(body, context["school"])
        prefill = incoming.text if incoming is not None else ""
        view = concern_views.concern_modal(self._metadata(context), prefill)
        if await self._open_view(context.client, body, view, "concern form"):
            return
        if incoming is not None:
            response_url = body.get("response_url")
            await self._ephemeral(
                context.client,
                incoming.conversation_id,
                incoming.user_id,
                convert.render(Reply(wording.concern_form_unavailable(), kind="notice")),
                response_url=response_url if isinstance(response_url, str) else None,
            )

    async def _report_clicked(
        self,
        client: AsyncWebClient,
        body: dict[str, Any],
        context: AsyncBoltContext,
        click: Click,
    ) -> None:
        """ "Report a concern to the DSL" (under an answer, on a notice, in App Home):
        the form, with the member's own message when the core still holds it.
        No turn-taking first: the trigger_id lasts three seconds."""
        outcome = await self.answerer.click(click)
        form = outcome.form
        prefill = form.prefill if form is not None and form.form == "concern" else ""
        view = concern_views.concern_modal(self._metadata(context), prefill)
        if not await self._open_view(client, body, view, "concern form"):
            reply = Reply(wording.concern_form_unavailable(), ephemeral=True, kind="notice")
            await self._notify_clicker(client, body, click, reply)

    async def _dsl_clicked(
        self,
        client: AsyncWebClient,
        body: dict[str, Any],
        context: AsyncBoltContext,
        click: Click,
    ) -> None:
        """View / Acknowledge / Add a note / Close on a DSL's alert. Concerns decides
        who may (and audits every attempt); a refusal is a notice to the clicker."""
        concerns = self.concerns
        if concerns is None:
            reply = Reply(wording.report_how(), ephemeral=True, kind="notice")
            await self._notify_clicker(client, body, click, reply)
            return
        person = Person(PLATFORM, click.user_id)
        result: Reply | FormRequest
        try:
            if click.action is Action.CONCERN_VIEW:
                report = concerns.view(click.value, person)
                view = concern_views.report_view(report)
                if await self._open_view(client, body, view, "concern report"):
                    return
                result = Reply(wording.concern_form_unavailable(), ephemeral=True, kind="notice")
            elif click.action is Action.CONCERN_ACKNOWLEDGE:
                async with self._turn():
                    result = concerns.acknowledge(click.value, person)
            else:
                result = concerns.on_click(click)
        except (AccessRefused, UnknownConcern) as exc:
            result = Reply(str(exc), ephemeral=True, kind="notice")
        except Exception as exc:
            log.warning("Slack: a concern button was not handled: %s", describe(exc))
            result = Reply(wording.concern_action_failed(), ephemeral=True, kind="notice")
        if isinstance(result, FormRequest):
            kind = concern_views.text_kind(result.form)
            if kind is not None:
                modal = concern_views.text_modal(kind, self._metadata(context, result.ref))
                if await self._open_view(client, body, modal, "concern form"):
                    return
            result = Reply(wording.concern_form_unavailable(), ephemeral=True, kind="notice")
        await self._notify_clicker(client, body, click, result)

    async def _on_concern_view(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """A concern form, a note or an outcome submitted (``view_submission``)."""
        submitted = self._submission(body, context)
        if self.concerns is None or submitted is None:
            log.warning("Slack: a concern form did not match this workspace; nothing stored")
            await ack(response_action="update", view=concern_views.failure_view())
            return
        view, user_id, meta = submitted
        person = Person(PLATFORM, user_id)
        callback = view.get("callback_id")
        if callback == concern_views.CONCERN_CALLBACK:
            await self._submit_concern(ack, context.client, self.concerns, meta, person, view)
            return
        kind = concern_views.text_kind(callback if isinstance(callback, str) else "")
        if kind is None or not meta.ref:
            await ack(response_action="update", view=concern_views.failure_view())
            return
        await self._submit_text(ack, self.concerns, kind, meta.ref, person, view)

    async def _submit_concern(
        self,
        ack: AsyncAck,
        client: AsyncWebClient,
        concerns: Concerns,
        meta: concern_views.Metadata,
        person: Person,
        view: Mapping[str, Any],
    ) -> None:
        form, errors = concern_views.read_concern(view)
        if form is None:
            await ack(response_action="errors", errors=errors)
            return
        try:
            submitted = concerns.submit(meta.school, person, form)
            reply = concerns.confirmation(submitted)
        except ConcernFormError as exc:
            block = concern_views.FIELD_BLOCKS.get(exc.field, concern_form.WHAT)
            await ack(response_action="errors", errors={block: str(exc)})
            return
        except NoRecipients as exc:
            view = concern_views.notice_view(str(exc), wording.concern_form_title(), urgent=True)
            await ack(response_action="update", view=view)
            return
        except Exception as exc:
            log.error("Slack: a concern could not be stored: %s", describe(exc))
            await ack(response_action="update", view=concern_views.failure_view())
            return
        await ack(
            response_action="update",
            view=concern_views.confirmation_view(reply, submitted.urgent),
        )
        try:  # a copy of the confirmation they can keep: their DM with us
            await self._post(client, person.id, convert.render(reply))
        except Exception as exc:
            log.warning(
                "Slack: the confirmation of concern %s was not sent by DM: %s",
                submitted.ref,
                describe(exc),
            )

    async def _submit_text(
        self,
        ack: AsyncAck,
        concerns: Concerns,
        kind: concern_views.TextKind,
        ref: str,
        person: Person,
        view: Mapping[str, Any],
    ) -> None:
        text, errors = concern_views.read_text(view)
        if text is None:
            await ack(response_action="errors", errors=errors)
            return
        try:
            if kind == concern_views.NOTE_CALLBACK:
                reply = concerns.add_note(ref, person, text)
            else:
                reply = concerns.close(ref, person, text)
        except ConcernFormError as exc:
            await ack(response_action="errors", errors={concern_views.TEXT: str(exc)})
            return
        except (AccessRefused, UnknownConcern) as exc:
            await ack(response_action="update", view=concern_views.notice_view(str(exc)))
            return
        except Exception as exc:
            log.error("Slack: a concern %s was not saved: %s", kind, describe(exc))
            view = concern_views.notice_view(wording.concern_action_failed())
            await ack(response_action="update", view=view)
            return
        await ack(response_action="update", view=concern_views.reply_view(reply))

    # broadcasts ------------------------------------------------------------------------------
    #
    # Leaders only: Broadcasts.author refuses anyone else (and records the
    # attempt). The form opens straight after the ack (a trigger lasts three
    # seconds); its submission is answered in its ack. Log lines name error
    # codes, never what a leader wrote.

    def _form_choices(self, school: str) -> tuple[list[tuple[str, str]], list[str]]:
        return broadcast_form.form_choices(self.answerer.kb, self.directory, school)

    def _broadcast_modal(
        self, context: AsyncBoltContext, draft: Draft | None = None
    ) -> dict[str, Any]:
        meta = self._metadata(context, broadcast_form.offer_ref(draft))
        policies, groups = self._form_choices(context["school"])
        return broadcast_views.broadcast_modal(meta, policies, groups, draft)

    async def _tell(
        self, client: AsyncWebClient, body: Mapping[str, Any], user: str, channel: str, text: str
    ) -> None:
        """An ephemeral notice after a slash command (the response_url where we are
        not a member)."""
        response_url = body.get("response_url")
        await self._ephemeral(
            client,
            channel,
            user,
            convert.render(Reply(text, ephemeral=True, kind="notice")),
            response_url=response_url if isinstance(response_url, str) else None,
        )

    async def _on_broadcast_command(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        """``/broadcast``: the form for a leader; ``/broadcast status``: recent
        broadcasts; anyone else: a refusal (recorded by Broadcasts.author)."""
        broadcasts = self.broadcasts
        user, channel = body.get("user_id"), body.get("channel_id")
        if broadcasts is None or not isinstance(user, str) or not isinstance(channel, str):
            return
        school: str = context["school"]
        client = context.client
        words = str(body.get("text") or "").strip().casefold().split()
        try:
            broadcasts.author(school, PLATFORM, user)
        except BroadcastRefused as exc:
            await self._tell(client, body, user, channel, str(exc))
            return
        if words[:1] == ["status"]:
            async with self._turn():
                statuses = broadcasts.recent(school, STATUS_BROADCASTS)
            response_url = body.get("response_url")
            await self._ephemeral(
                client,
                channel,
                user,
                broadcast_views.status_message(statuses),
                response_url=response_url if isinstance(response_url, str) else None,
            )
            return
        view = self._broadcast_modal(context)
        if not await self._open_view(client, body, view, "broadcast form"):
            await self._tell(client, body, user, channel, wording.broadcast_form_unavailable())

    async def _new_broadcast_clicked(
        self,
        client: AsyncWebClient,
        body: dict[str, Any],
        context: AsyncBoltContext,
        click: Click,
    ) -> None:
        """ "New broadcast" / "Prepare a broadcast" (App Home, or the offer a
        leader gets after a policy changes): the form, filled in from the
        policy's changes when the button names one."""
        broadcasts = self.broadcasts
        if broadcasts is None:
            reply = Reply(wording.broadcast_not_set_up(), ephemeral=True, kind="notice")
            await self._notify_clicker(client, body, click, reply)
            return
        try:
            broadcasts.author(click.school, PLATFORM, click.user_id)
        except BroadcastRefused as exc:
            await self._notify_clicker(client, body, click, Reply(str(exc), kind="notice"))
            return
        draft = self._offer_draft(click.school, click.value) if click.value else None
        view = self._broadcast_modal(context, draft)
        if not await self._open_view(client, body, view, "broadcast form"):
            reply = Reply(wording.broadcast_form_unavailable(), ephemeral=True, kind="notice")
            await self._notify_clicker(client, body, click, reply)

    def _offer_draft(self, school: str, policy_key: str) -> Draft | None:
        """The ready-made broadcast for a changed policy, if it is still pending."""
        try:
            return broadcast_form.offer_draft(self.answerer.kb, school, policy_key)
        except Exception as exc:
            log.warning("Slack: the policy changes could not be read: %s", describe(exc))
            return None

    def _offers(self, school: str) -> list[tuple[str, str]]:
        """(policy key, title) for each changed policy staff have not been told about."""
        offers = policy_changes.pending_offers(self.answerer.kb, school)
        return [(changes.policy, changes.title) for changes in offers]

    async def _on_broadcast_view(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """The broadcast form submitted (``view_submission``)."""
        broadcasts = self.broadcasts
        submitted = self._submission(body, context)
        if broadcasts is None or submitted is None:
            log.warning("Slack: a broadcast form did not match this workspace; nothing sent")
            await ack(
                response_action="update",
                view=broadcast_views.done_view(wording.broadcast_not_sent()),
            )
            return
        view, user_id, meta = submitted
        policies, groups = self._form_choices(meta.school)
        now = broadcasts.clock()
        draft, errors = broadcast_views.read_broadcast(
            view, now=now, policies={key for key, _ in policies}, groups=set(groups)
        )
        if draft is None:
            await ack(response_action="errors", errors=errors)
            return
        draft = broadcast_form.with_offer(draft, meta.ref)
        try:
            status = broadcasts.create(meta.school, PLATFORM, user_id, draft)
        except BroadcastRefused as exc:
            if exc.reason == "not_allowed":
                await ack(response_action="update", view=broadcast_views.done_view(str(exc)))
            else:  # what only the core can tell: nobody in the audience can be reached
                await ack(response_action="errors", errors={broadcast_form.AUDIENCE: str(exc)})
            return
        except Exception as exc:
            log.error("Slack: a broadcast could not be stored: %s", describe(exc))
            await ack(
                response_action="update",
                view=broadcast_views.done_view(wording.broadcast_not_sent()),
            )
            return
        text = broadcast_form.confirmation_text(status)
        await ack(response_action="update", view=broadcast_views.done_view(text))
        try:  # a copy they can keep: their DM with us
            await self._post(context.client, user_id, convert.render(Reply(text, kind="notice")))
        except Exception as exc:
            log.warning(
                "Slack: the confirmation of broadcast %s was not sent by DM: %s",
                status.id,
                describe(exc),
            )

    async def _ack_clicked(
        self, client: AsyncWebClient, body: dict[str, Any], click: Click
    ) -> None:
        """ "I have read and understood": recorded once; the message then shows
        when, instead of the button; a kind word only they see."""
        broadcasts = self.broadcasts
        if broadcasts is None:
            reply = Reply(wording.broadcast_not_set_up(), ephemeral=True, kind="notice")
            await self._notify_clicker(client, body, click, reply)
            return
        try:
            broadcast_id = int(click.value)
        except ValueError:
            broadcast_id = 0
        try:
            async with self._turn():
                outcome = broadcasts.acknowledge(broadcast_id, PLATFORM, click.user_id)
                at = (
                    broadcasts.acknowledged_at(broadcast_id, PLATFORM, click.user_id)
                    if outcome in ("recorded", "already")
                    else None
                )
        except Exception as exc:
            log.warning("Slack: an acknowledgement was not recorded: %s", describe(exc))
            reply = Reply(wording.broadcast_ack_failed(), ephemeral=True, kind="notice")
            await self._notify_clicker(client, body, click, reply)
            return
        if at is not None:
            await self._mark_acknowledged(client, body, broadcast_form.london_time(at))
        text = broadcast_form.ack_outcome_text(outcome)
        await self._notify_clicker(client, body, click, Reply(text, ephemeral=True, kind="notice"))

    async def _mark_acknowledged(
        self, client: AsyncWebClient, body: Mapping[str, Any], when: str
    ) -> None:
        """The clicked message, its button replaced by "You confirmed ... on <when>"."""
        container, message = body.get("container"), body.get("message")
        if not isinstance(container, Mapping) or not isinstance(message, Mapping):
            return
        channel, ts = container.get("channel_id"), container.get("message_ts")
        blocks = message.get("blocks")
        if not isinstance(channel, str) or not isinstance(ts, str) or not isinstance(blocks, list):
            return
        updated = broadcast_views.acknowledged_blocks(blocks, when)
        if updated is None:
            return
        text = message.get("text")
        try:
            await client.chat_update(
                channel=channel,
                ts=ts,
                text=text if isinstance(text, str) else "",
                blocks=updated,
            )
        except Exception as exc:
            log.info("Slack: an acknowledged broadcast was not updated: %s", describe(exc))

    def _leader_home(self, school: str, user: str) -> list[dict[str, Any]]:
        """A leader's part of App Home (empty for everyone else)."""
        broadcasts = self.broadcasts
        if broadcasts is None or not broadcasts.can_broadcast(school, PLATFORM, user):
            return []
        try:
            statuses = broadcasts.recent(school, broadcast_views.MAX_HOME_BROADCASTS)
            offers = self._offers(school)
        except Exception as exc:
            log.warning("Slack: the broadcasts for App Home could not be read: %s", describe(exc))
            statuses, offers = [], []
        return broadcast_views.home_section(statuses, offers)

    # App Home ----------------------------------------------------------------------------

    async def _on_home(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        event = body.get("event")
        if not isinstance(event, Mapping) or event.get("tab", "home") != "home":
            return
        user = event.get("user")
        if not isinstance(user, str) or not user:
            return
        school = self.answerer.kb.school(context["school"])
        client = context.client

        async def publish() -> None:
            async with self._turn():
                recent = self.operations.recent_questions(PLATFORM, user)
                section = self._leader_home(school.slug, user)
            view = convert.home_view(school.name, recent)
            if section:
                view = broadcast_views.with_broadcasts(view, section)
            await client.views_publish(user_id=user, view=view)

        await self._once(body, publish)


def _thread_of(body: Mapping[str, Any]) -> str | None:
    """The thread a clicked message sits in, so a notice lands beside it."""
    for holder in (body.get("container"), body.get("message")):
        if isinstance(holder, Mapping):
            thread = holder.get("thread_ts")
            if isinstance(thread, str) and thread:
                return thread
    return None
