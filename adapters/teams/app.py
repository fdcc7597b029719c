"""The Teams app: botbuilder's ``CloudAdapter`` and an ``ActivityHandler`` wired
to the platform-neutral core.

What it answers: messages in a 1:1 chat with the bot, ``@guidebot`` mentions in
team channels and group chats (the mention is stripped before searching and
the answer is a reply to the message, so in a channel it lands in the thread),
and Adaptive Card ``Action.Submit`` buttons, which Teams sends back as message
activities with a ``value`` and which go to the same ``Answerer.click`` as
Slack's buttons. Installing the app (``conversationUpdate`` with the bot among
``membersAdded``, or ``installationUpdate`` with action ``add``) gets the
welcome card; Teams sends both for one install, so a conversation is welcomed
once per ``WELCOME_WINDOW``. "help" and greetings are answered by the core.
Activities are converted at the edge by ``adapters.teams.convert``; every
Reply goes out as an Adaptive Card (``convert.render_activity``).

Acknowledge first, work after. ``POST /api/messages`` reads, parses and
authenticates the request (``adapters.teams.auth``), maps its tenant to a
school, answers 202 and only then does the work, in a task we keep track of,
so Teams has its answer in milliseconds whatever the search or the Bot
Connector is doing (its limit is 15 seconds, after which the person sees an
error). The work runs through ``CloudAdapter.process_activity`` with the
authentication result already in hand, so botbuilder builds the turn exactly
as it would have. (``CloudAdapter.process`` is not used: it runs the whole turn
before answering, and a missing content type, a body that is not JSON or a
token that fails oddly makes it answer 500.) Invoke activities need their
answer in the HTTP response, so they alone are handled before answering (we
send no cards that invoke; the handler answers 501 as botbuilder does).
Searching and storing share the event loop with acknowledgements, so they take
turns, as in the Slack app (``TeamsBot._turn``).

Tenants. Each tenant id (``conversation.tenantId``, else ``channelData.tenant.id``)
in the configuration maps to one school. An activity from a tenant we do not
know gets an empty 200, is logged by tenant id only, and nothing is stored or sent.

Retries never answer twice. Each activity is claimed in the database before any
work (``Operations.claim_event``: ``handling`` -> ``done`` | ``failed``), under its
activity id qualified by its conversation id: Teams' message ids are
millisecond timestamps, unique within a conversation but not across them. A
redelivery of a ``done`` or still ``handling`` activity is dropped; a ``failed``
one is handled again, once; a ``handling`` claim older than ``STALE_AFTER`` (the
worker died) may be taken over. Each activity's work is bounded by
``HANDLER_DEADLINE``.

Safeguarding concerns (with a ``Concerns`` service): "report a concern" and
the report button send the report form as an Adaptive Card
(``adapters.teams.concern_cards``), pre-filled with the member's own message
when the core still holds it; its submission (a message whose ``value`` has
``action: "concern_submit"``) is stored through ``Concerns.submit`` and
answered with the confirmation, or the form again with what to fix. Each form
carries a one-time id, so pressing its button twice sends one report. The
DSL's alert buttons send the report card, acknowledge, or send a small card
for a note or the outcome. Every such card goes to the person's 1:1 chat with
the bot, never a channel; asked from a channel, the channel is only told to
look there.

Broadcasts (with a ``Broadcasts`` service): a leader typing "broadcast" (or
"/broadcast") in their 1:1 chat gets the form card
(``adapters.teams.broadcast_cards``), "broadcast status" the status card
(counts, who is outstanding, "New broadcast" and "Prepare a broadcast" for
each changed policy); anyone else a refusal, and the attempt is recorded
(``Broadcasts.author``). Asked in a channel, the channel is told to use the
1:1 chat. A submission (``action: "broadcast_submit"``) goes to
``Broadcasts.create`` once per form (a one-time id, as for concerns); "I have
read and understood" under a broadcast to ``Broadcasts.acknowledge``.

The staff directory learns Teams users by email: when someone whose object id
the directory does not know writes to the bot (at a school with a staff list
still missing Teams ids), their email is fetched
(``TeamsInfo.get_member``: ``email``, else ``userPrincipalName``) and
``Directory.link`` records it, at most once per person per process, within
``LINK_TIMEOUT``; a failure is logged (its type only) and never stops the answer.

Conversation references, so later features can message people proactively,
are stored for every authenticated activity from a known tenant, before it is
handled (``TurnContext.get_conversation_reference`` as JSON, with no
``activity_id``, so a later message starts afresh rather than replying to an
old one):

- in a 1:1 chat: scope ``user``, key the person's Entra object id
  (``from.aadObjectId``, else ``from.id``), the same id the core records them by;
- in a team channel: scope ``channel``, key ``channelData.channel.id``, and the
  reference's conversation is the channel itself (not the thread the message
  was in), so a later post starts a new thread; in a group chat: scope
  ``channel``, key the chat's ``conversation.id``.

Someone who has only ever written in a channel has no ``user`` reference: that
reference would deliver into the channel, in front of everyone. Uninstalling
(``installationUpdate`` ``remove``, or the bot in ``membersRemoved``) and a 403 from
the Bot Connector mark the reference unreachable; hearing from them again clears it.

Deliveries (``adapters.teams.delivery``): replies with ``TurnContext.send_activity``
and proactive messages (a question passed on to the school's contact) with
``CloudAdapter.continue_conversation`` and the stored ``user`` reference; a
contact with no reference, or an unreachable one, is a failed delivery and the
asker is told (``Answerer.pass_on_failed``).

Privacy. botbuilder's, botframework's and msrest's loggers are held at WARNING.
Our own log lines name activity ids, tenant ids, statuses and error types,
never what anyone wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Literal

from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext  # type: ignore[import-untyped]
from botbuilder.core.teams import TeamsInfo  # type: ignore[import-untyped]
from botbuilder.integration.aiohttp import CloudAdapter  # type: ignore[import-untyped]
from botbuilder.schema import (  # type: ignore[import-untyped]
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
    DeliveryModes,
)

from adapters.acks import AcksFirst
from adapters.http_checks import Refused, read_limited
from adapters.teams import broadcast_cards, card_parts, concern_cards, convert
from adapters.teams.auth import (
    Authenticator,
    KeysUnavailable,
    check_content_type,
    parse_activity,
)
from adapters.teams.delivery import (
    DeliveryError,
    DeliveryPolicy,
    Unreachable,
    close_client,
    deliver,
    describe,
    prepare_client,
)
from adapters.textfit import payload_text
from bot import broadcast_form, policy_changes, wording
from bot.answers import Answerer, Delivery
from bot.broadcasts import BroadcastRefused, Broadcasts, Draft
from bot.concerns import (
    AccessRefused,
    ConcernFormError,
    Concerns,
    NoRecipients,
    Person,
    UnknownConcern,
)
from bot.config import TeamsSettings
from bot.directory import Directory
from bot.messages import Action, Click, FormRequest, Incoming, Reply
from bot.storage import Operations

log = logging.getLogger(__name__)

PLATFORM = "teams"
HANDLER_DEADLINE = 120.0
"""Seconds one activity's work may take, delivery retries included."""
STALE_AFTER = timedelta(seconds=150)
"""A claim still ``handling`` after this long belongs to a worker that died.
Longer than HANDLER_DEADLINE, so a live attempt is never overtaken."""
WELCOME_WINDOW = 600.0
"""Seconds within which a conversation is welcomed only once (one install
brings both a conversationUpdate and an installationUpdate)."""
INVOKE_DEADLINE = 10.0
"""Seconds an invoke (answered in the HTTP response) may take."""

RAW_KEY = "guidebot.activity"
SCHOOL_KEY = "guidebot.school"
_REFUSALS = {
    400: "bad request",
    401: "unauthorized",
    413: "request too large",
    503: "try again later",
}
_SAFE_ID = re.compile(r"[A-Za-z0-9:@._;=-]{1,200}")
_GUID = re.compile(r"^[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
_DSL_ACTIONS = frozenset(
    {Action.CONCERN_VIEW, Action.CONCERN_ACKNOWLEDGE, Action.CONCERN_NOTE, Action.CONCERN_CLOSE}
)
"""The buttons on a DSL's concern alert (their value is the report's reference)."""
SENT_FORMS_KEPT = 24 * 3600.0
"""Seconds a sent form's id is remembered, so pressing its button again sends nothing."""
LINK_TIMEOUT = 5.0
"""Seconds the email lookup for the staff directory may take before the answer goes on."""
STATUS_BROADCASTS = 5
"""Broadcasts "broadcast status" shows, newest first."""


def quiet_platform_logs() -> None:
    """Hold botbuilder's and msrest's loggers at WARNING: below that they can log bodies."""
    for name in ("botbuilder", "botframework", "msrest"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def safe_id(value: object) -> str:
    """An id fit for a log line; anything else is not echoed."""
    if isinstance(value, str) and _SAFE_ID.fullmatch(value):
        return value
    return "(unrecognised id)"


def tenant_of(payload: Mapping[str, Any]) -> str | None:
    """The Microsoft 365 tenant an activity comes from."""
    channel_data = payload.get("channelData")
    tenant = channel_data.get("tenant") if isinstance(channel_data, Mapping) else None
    return payload_text(payload.get("conversation"), "tenantId") or payload_text(tenant, "id")


def user_key(payload: Mapping[str, Any]) -> str | None:
    """How the core knows a person: their Entra object id, else their Teams id."""
    sender = payload.get("from")
    return payload_text(sender, "aadObjectId") or payload_text(sender, "id")


def _school_and_sender(turn_context: TurnContext) -> tuple[str, str | None]:
    """The school a turn is for (set by ``on_turn``) and who sent it (``user_key``)."""
    school: str = turn_context.turn_state[SCHOOL_KEY]
    return school, user_key(turn_context.turn_state[RAW_KEY])


def where(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """The reference an activity's conversation is stored under: (scope, key)."""
    conversation = payload.get("conversation")
    kind = payload_text(conversation, "conversationType")
    if kind == "personal":
        key = user_key(payload)
        return ("user", key) if key else None
    if kind == "channel":
        channel_data = payload.get("channelData")
        channel = channel_data.get("channel") if isinstance(channel_data, Mapping) else None
        key = payload_text(channel, "id") or payload_text(conversation, "id")
        return ("channel", key.split(";messageid=", 1)[0]) if key else None
    key = payload_text(conversation, "id")
    return ("channel", key) if key else None


def message_activity(message: Mapping[str, Any]) -> Activity:
    """botbuilder's Activity for a message ``convert`` rendered."""
    return Activity().deserialize(dict(message))


def card_activity(card: Mapping[str, Any], summary: str) -> Activity:
    return message_activity(
        {
            "type": "message",
            "summary": summary,
            "attachments": [
                {"contentType": convert.ADAPTIVE_CARD_CONTENT_TYPE, "content": dict(card)}
            ],
        }
    )


class TeamsBot:
    """The CloudAdapter and handler for every configured tenant, and the work behind them."""

    def __init__(
        self,
        settings: TeamsSettings,
        answerer: Answerer,
        *,
        adapter: CloudAdapter,
        authenticator: Authenticator,
        delivery: DeliveryPolicy | None = None,
        concerns: Concerns | None = None,
        broadcasts: Broadcasts | None = None,
        directory: Directory | None = None,
    ) -> None:
        """``concerns``: the safeguarding reports service; without it the report
        button and "report a concern" only tell staff to speak to their DSL.
        ``broadcasts``: leaders' broadcasts; ``directory``: the staff directory,
        which learns people's Teams ids from their email (both optional)."""
        quiet_platform_logs()
        self.settings = settings
        self.answerer = answerer
        self.concerns = concerns
        self.broadcasts = broadcasts
        self.directory = directory
        self._link_tried: set[tuple[str, str]] = set()
        self._sent_forms: dict[tuple[str, str], tuple[float, str]] = {}
        self.operations: Operations = answerer.operations
        self.adapter = adapter
        self.authenticator = authenticator
        self.delivery = delivery or DeliveryPolicy()
        self.handler = GuidebotHandler(self)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._welcomed: dict[str, float] = {}
        self._acks = AcksFirst()

    @property
    def app_id(self) -> str | None:
        return self.settings.app_id

    # the endpoint ----------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """POST /api/messages: checked here, acknowledged, then handled in the background."""
        with self._acknowledging():
            header = request.headers.get("Authorization")
            try:
                if self.authenticator.required:
                    self.authenticator.check_header(header)
                check_content_type(request)
                payload, activity = parse_activity(await read_limited(request))
                result = await self.authenticator.authenticate(activity, header)
            except Refused as refusal:
                log.warning("Refused a request to /api/messages: %s", refusal.reason)
                return web.Response(
                    status=refusal.status, text=_REFUSALS.get(refusal.status, "refused")
                )
            tenant_id = tenant_of(payload)
            tenant = self.settings.tenant(tenant_id)
            if tenant is None:
                log.warning(
                    "Ignored a Teams activity from tenant %s, which is not in the configuration",
                    safe_id(tenant_id) if tenant_id else "(none)",
                )
                return web.Response(status=200)
            if activity.type == ActivityTypes.invoke or (
                activity.delivery_mode == DeliveryModes.expect_replies
            ):
                return await self._inline(result, activity, payload, tenant.school)
            self._spawn(self._handle(result, activity, payload, tenant.school))
            return web.Response(status=202)

    async def _inline(
        self, result: Any, activity: Activity, payload: dict[str, Any], school: str
    ) -> web.Response:
        """An invoke: its answer goes in the HTTP response."""
        try:
            async with asyncio.timeout(INVOKE_DEADLINE):
                response = await self.adapter.process_activity(
                    result, activity, self._logic(payload, school)
                )
        except Exception as exc:
            log.warning("Teams invoke %s not handled: %s", safe_id(activity.id), describe(exc))
            return web.Response(status=500, text="not handled")
        if response is None:
            return web.Response(status=200)
        body = response.body
        if hasattr(body, "serialize"):  # a botbuilder model, as CloudAdapter.process allows
            body = body.serialize()
        return web.json_response(body if body is not None else {}, status=int(response.status))

    async def _handle(
        self, result: Any, activity: Activity, payload: dict[str, Any], school: str
    ) -> None:
        """One activity's work, after its ack: claimed, bounded, never raising."""
        what = safe_id(activity.type)
        try:
            async with asyncio.timeout(HANDLER_DEADLINE):
                await self._once(
                    payload,
                    lambda: self.adapter.process_activity(
                        result, activity, self._logic(payload, school)
                    ),
                )
        except Exception as exc:
            log.warning("Teams %s %s not handled: %s", what, safe_id(activity.id), describe(exc))

    def _logic(
        self, payload: dict[str, Any], school: str
    ) -> Callable[[TurnContext], Awaitable[None]]:
        async def logic(turn_context: TurnContext) -> None:
            turn_context.turn_state[RAW_KEY] = payload
            turn_context.turn_state[SCHOOL_KEY] = school
            await self._with_client(turn_context, self.handler.on_turn)

        return logic

    async def _with_client(
        self, turn_context: TurnContext, work: Callable[[TurnContext], Awaitable[Any]]
    ) -> None:
        """Run a turn with its connector client made safe to retry around, and closed after."""
        client = turn_context.turn_state.get(self.adapter.BOT_CONNECTOR_CLIENT_KEY)
        prepare_client(client, self.delivery.timeout)
        try:
            await work(turn_context)
        finally:
            await close_client(client)

    async def _once(self, payload: Mapping[str, Any], work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work`` unless this activity was handled already (see the module notes)."""
        activity_id = payload_text(payload, "id")
        conversation_id = payload_text(payload.get("conversation"), "id")
        if activity_id is None:
            await work()
            return
        event_id = f"{activity_id}@{conversation_id or ''}"
        if not await self.operations.handle_once(PLATFORM, event_id, STALE_AFTER, work):
            log.info(
                "Teams activity %s is handled or in hand: not answering again",
                safe_id(activity_id),
            )

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Fetch the signing keys now, so no first request waits for them."""
        self._spawn(self._warm_up())

    async def _warm_up(self) -> None:
        try:
            await self.authenticator.warm_up()
        except Exception as exc:
            reason = str(exc) if isinstance(exc, KeysUnavailable) else type(exc).__name__
            log.warning("Teams: the Bot Framework signing keys could not be fetched: %s", reason)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until no work is in hand (for tests)."""
        for _ in range(3):
            await asyncio.sleep(0)
        while self._tasks:
            await asyncio.wait(list(self._tasks))
            await asyncio.sleep(0)

    async def close(self) -> None:
        """Cancel work in hand; each activity it belonged to is marked failed."""
        for _ in range(3):
            await asyncio.sleep(0)
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _acknowledging(self) -> contextlib.AbstractContextManager[None]:
        """Around a request's way to its acknowledgement (see adapters/acks.py)."""
        return self._acks.acknowledging()

    def _turn(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Around synchronous work: acknowledgements first (see adapters/acks.py)."""
        return self._acks.turn()

    # conversation references ------------------------------------------------------------------

    async def remember(self, turn_context: TurnContext) -> None:
        """Store how to reach this person or channel later (see the module notes)."""
        payload: dict[str, Any] = turn_context.turn_state[RAW_KEY]
        found = where(payload)
        if found is None:
            return
        scope, key = found
        activity = turn_context.activity
        reference = TurnContext.get_conversation_reference(activity)
        reference.activity_id = None
        conversation_id = activity.conversation.id
        if scope == "channel":
            conversation_id = key
            reference.conversation = ConversationAccount(
                id=key,
                is_group=True,
                conversation_type=activity.conversation.conversation_type,
                tenant_id=tenant_of(payload),
                name=activity.conversation.name,
            )
        async with self._turn():
            self.operations.remember_conversation(
                PLATFORM,
                scope,
                key,
                turn_context.turn_state[SCHOOL_KEY],
                conversation_id,
                json.dumps(reference.serialize(), sort_keys=True),
                tenant_id=tenant_of(payload),
                service_url=activity.service_url,
            )

    async def forget(self, turn_context: TurnContext) -> None:
        """The app was removed here: mark the reference unreachable."""
        found = where(turn_context.turn_state[RAW_KEY])
        if found is not None:
            async with self._turn():
                self.operations.mark_unreachable(PLATFORM, *found)
            log.info("Teams: the app was removed from a %s conversation", found[0])

    # sending ---------------------------------------------------------------------------------

    async def send(
        self, turn_context: TurnContext, activity: Activity, what: str, *, as_reply: bool = True
    ) -> None:
        """A message in this turn's conversation: a reply to the activity (so into
        its thread), or with ``as_reply=False`` a new message (a welcome: there is
        no message to reply to, only an install).

        A 403 marks this conversation's reference unreachable."""

        async def send_once() -> Any:
            if as_reply:
                return await turn_context.send_activity(activity)
            # TurnContext.send_activity would make this a reply to the install
            # activity's id; the adapter's own send, with that id left out, does not.
            reference = TurnContext.get_conversation_reference(turn_context.activity)
            reference.activity_id = None
            outgoing = TurnContext.apply_conversation_reference(copy.deepcopy(activity), reference)
            outgoing.input_hint = outgoing.input_hint or "acceptingInput"
            return await turn_context.adapter.send_activities(turn_context, [outgoing])

        try:
            await deliver(send_once, self.delivery, what)
        except Unreachable:
            found = where(turn_context.turn_state[RAW_KEY])
            if found is not None:
                async with self._turn():
                    self.operations.mark_unreachable(PLATFORM, *found)
            raise

    async def reply(self, turn_context: TurnContext, reply: Reply, what: str) -> None:
        await self.send(turn_context, message_activity(convert.render_activity(reply)), what)

    async def send_to_user(self, key: str, reply: Reply, what: str) -> bool:
        """A message to someone through their stored 1:1 reference; False if it
        could not be delivered (no reference, unreachable, or refused)."""
        activity = message_activity(convert.render_activity(reply))
        return await self.send_activity_to_user(key, activity, what)

    async def send_activity_to_user(self, key: str, activity: Activity, what: str) -> bool:
        """``send_to_user`` for an activity already made."""
        stored = self.operations.conversation(PLATFORM, "user", key)
        if stored is None or stored.unreachable_since is not None:
            log.warning(
                "Teams %s not sent: no way to reach user %s (%s)",
                what,
                safe_id(key),
                "no conversation reference" if stored is None else "unreachable",
            )
            return False
        try:
            reference = ConversationReference().deserialize(json.loads(stored.reference))
        except Exception as exc:
            log.warning("Teams %s not sent: stored reference unreadable: %s", what, describe(exc))
            return False
        reference.activity_id = None

        async def proactive(turn_context: TurnContext) -> None:
            # A new message in their chat, not a reply to the made-up id botbuilder
            # gives a continuation activity.
            turn_context.activity.id = None
            await deliver(lambda: turn_context.send_activity(activity), self.delivery, what)

        async def logic(turn_context: TurnContext) -> None:
            await self._with_client(turn_context, proactive)

        try:
            await self.adapter.continue_conversation(
                reference, logic, bot_app_id=self.app_id or None
            )
        except Unreachable:
            async with self._turn():
                self.operations.mark_unreachable(PLATFORM, "user", key)
            return False
        except DeliveryError:
            return False  # logged by deliver
        except Exception as exc:
            log.warning("Teams %s not sent to %s: %s", what, safe_id(key), describe(exc))
            return False
        return True

    # what the handler does ------------------------------------------------------------------------

    async def answer(self, turn_context: TurnContext, incoming: Incoming) -> None:
        failure: Exception | None = None
        try:
            async with self._turn():
                reply = await self.answerer.answer(incoming)
        except Exception as exc:
            failure = exc
            reply = Reply(wording.something_went_wrong(), kind="notice")
        if self.concerns is not None and _is_report_command(reply):
            # "report a concern": the form itself, rather than a button that opens it.
            await self._send_private(turn_context, [self._new_concern_form()], "concern form")
            return
        await self.reply(turn_context, reply, "answer")
        if failure is not None:
            raise failure

    async def click(self, turn_context: TurnContext, click: Click) -> None:
        if click.action is Action.BROADCAST_ACK:
            await self._ack_clicked(turn_context, click)
            return
        if click.action is Action.BROADCAST_NEW:
            await self._new_broadcast_clicked(turn_context, click)
            return
        if self.concerns is not None and click.action is Action.REPORT_CONCERN:
            await self._report_clicked(turn_context, click)
            return
        if click.action in _DSL_ACTIONS:
            await self._dsl_clicked(turn_context, click)
            return
        if click.action is Action.ASK_QUESTION:
            reply: Reply | None = Reply(wording.ask_prompt(), kind="help")
            deliveries: tuple[Delivery, ...] = ()
        else:
            async with self._turn():
                outcome = await self.answerer.click(click)
            reply, deliveries = outcome.reply, outcome.deliveries
            if outcome.form is not None and reply is None:  # no concerns service here
                reply = Reply(wording.report_how(), kind="notice")
        for delivery in deliveries:  # first, so the asker is only told what happened
            if delivery.platform != PLATFORM:
                continue
            if not await self.send_to_user(delivery.user_id, delivery.reply, "pass-on"):
                async with self._turn():
                    reply = self.answerer.pass_on_failed(delivery, click.school)
        if reply is not None:
            await self.reply(turn_context, reply, "notice")

    # safeguarding concerns --------------------------------------------------------------------
    #
    # Teams has no modal without a task module, so each form is a card, and every
    # card about a concern (the form, the confirmation, a DSL's report) goes to the
    # person's 1:1 chat with the bot, never into a channel or group chat: asked
    # from a channel, the card goes to their 1:1 chat (if we can reach them there)
    # and the channel is only told where to look. Log lines name error types,
    # never content.

    @staticmethod
    def person(user_id: str) -> Person:
        """How Concerns knows a Teams user: their Entra object id, lower case
        (as the settings write it)."""
        return Person(PLATFORM, user_id.lower() if _GUID.match(user_id) else user_id)

    def _new_concern_form(self, prefill: str = "") -> dict[str, Any]:
        return concern_cards.concern_form(secrets.token_urlsafe(12), prefill=prefill)

    async def _send_private(
        self, turn_context: TurnContext, cards: list[dict[str, Any]], what: str
    ) -> None:
        """Cards for the person in this turn, in their 1:1 chat with the bot."""
        payload: dict[str, Any] = turn_context.turn_state[RAW_KEY]
        activities = [card_activity(card, str(card.get("fallbackText") or what)) for card in cards]
        conversation = payload.get("conversation")
        if payload_text(conversation, "conversationType") == "personal":
            for activity in activities:
                await self.send(turn_context, activity, what)
            return
        key = user_key(payload)
        delivered = key is not None
        for activity in activities:
            if not delivered or key is None:
                break
            delivered = await self.send_activity_to_user(key, activity, what)
        notice = (
            wording.concern_use_private_chat() if delivered else wording.concern_no_private_chat()
        )
        await self.reply(turn_context, Reply(notice, kind="notice"), "notice")

    async def _notice(self, turn_context: TurnContext, text: str, what: str = "notice") -> None:
        await self._send_private(turn_context, [concern_cards.notice_card(text)], what)

    async def _report_clicked(self, turn_context: TurnContext, click: Click) -> None:
        """ "Report a concern to the DSL": the form, with the member's own message
        when the core still holds it."""
        async with self._turn():
            outcome = await self.answerer.click(click)
        form = outcome.form
        prefill = form.prefill if form is not None and form.form == "concern" else ""
        await self._send_private(turn_context, [self._new_concern_form(prefill)], "concern form")

    async def _dsl_clicked(self, turn_context: TurnContext, click: Click) -> None:
        """View / Acknowledge / Add a note / Close on a DSL's alert card. Concerns
        decides who may (and audits every attempt); a refusal is a notice."""
        concerns = self.concerns
        if concerns is None:
            await self._notice(turn_context, wording.report_how())
            return
        person = self.person(click.user_id)
        cards: list[dict[str, Any]]
        try:
            async with self._turn():
                if click.action is Action.CONCERN_VIEW:
                    cards = concern_cards.report_cards(concerns.view(click.value, person))
                elif click.action is Action.CONCERN_ACKNOWLEDGE:
                    cards = [convert.render(concerns.acknowledge(click.value, person))]
                else:
                    result = concerns.on_click(dataclasses.replace(click, user_id=person.id))
                    cards = [_form_or_notice(result)]
        except (AccessRefused, UnknownConcern) as exc:
            cards = [concern_cards.notice_card(str(exc))]
        except Exception as exc:
            log.warning("Teams: a concern button was not handled: %s", describe(exc))
            cards = [concern_cards.notice_card(wording.concern_action_failed())]
        await self._send_private(turn_context, cards, "concern")

    async def concern_submitted(self, turn_context: TurnContext, data: Mapping[str, Any]) -> None:
        """A concern form, a note or an outcome sent from its card."""
        school, user_id = _school_and_sender(turn_context)
        concerns = self.concerns
        if concerns is None or user_id is None:
            await self._notice(turn_context, wording.report_how())
            return
        person = self.person(user_id)
        kind = concern_cards.text_kind(data.get("action"))
        if kind is None:
            card = await self._submit_concern(concerns, school, person, data)
        else:
            card = await self._submit_text(concerns, kind, person, data)
        await self._send_private(turn_context, [card], "concern")

    async def _submit_concern(
        self, concerns: Concerns, school: str, person: Person, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        form_id = card_parts.token(data, concern_cards.FORM) or secrets.token_urlsafe(12)
        now = time.monotonic()
        for old in [k for k, (at, _) in self._sent_forms.items() if now - at > SENT_FORMS_KEPT]:
            del self._sent_forms[old]
        form, errors = concern_cards.read_concern(data)
        if form is None:
            return concern_cards.concern_form(form_id, values=data, errors=errors)
        async with self._turn():
            # Checked and recorded with no await between: a second press of the
            # same card's button (even at the same moment) is never a second report.
            done = self._sent_forms.get((person.key, form_id))
            if done is not None:
                return concern_cards.notice_card(wording.concern_form_already_sent(done[1]))
            try:
                submitted = concerns.submit(school, person, form)
                reply = concerns.confirmation(submitted)
            except ConcernFormError as exc:
                errors = {concern_cards.FIELD_INPUTS.get(exc.field, exc.field): str(exc)}
                return concern_cards.concern_form(form_id, values=data, errors=errors)
            except NoRecipients as exc:
                return concern_cards.confirmation_card(Reply(str(exc)), urgent=True)
            except Exception as exc:
                log.error("Teams: a concern could not be stored: %s", describe(exc))
                return concern_cards.failure_card()
            self._sent_forms[(person.key, form_id)] = (now, submitted.ref)
        return concern_cards.confirmation_card(reply, submitted.urgent)

    async def _submit_text(
        self,
        concerns: Concerns,
        kind: concern_cards.TextKind,
        person: Person,
        data: Mapping[str, Any],
    ) -> dict[str, Any]:
        ref = card_parts.token(data, concern_cards.REF) or ""
        text, errors = concern_cards.read_text(data)
        if text is None:
            return concern_cards.text_form(kind, ref, errors)
        try:
            async with self._turn():
                if kind == concern_cards.NOTE_SUBMIT:
                    reply = concerns.add_note(ref, person, text)
                else:
                    reply = concerns.close(ref, person, text)
        except ConcernFormError as exc:
            return concern_cards.text_form(kind, ref, {concern_cards.TEXT: str(exc)})
        except (AccessRefused, UnknownConcern) as exc:
            return concern_cards.notice_card(str(exc))
        except Exception as exc:
            log.error("Teams: a concern %s was not saved: %s", kind, describe(exc))
            return concern_cards.notice_card(wording.concern_action_failed())
        return convert.render(reply)

    # broadcasts ---------------------------------------------------------------------------------
    #
    # Leaders only: Broadcasts.author refuses anyone else (and records the
    # attempt). Broadcast cards live in the leader's 1:1 chat with the bot.
    # Log lines name error types, never what anyone wrote.

    def _form_choices(self, school: str) -> tuple[list[tuple[str, str]], list[str]]:
        return broadcast_form.form_choices(self.answerer.kb, self.directory, school)

    def _new_broadcast_form(self, school: str, draft: Draft | None = None) -> dict[str, Any]:
        policies, groups = self._form_choices(school)
        return broadcast_cards.broadcast_form(
            secrets.token_urlsafe(12),
            policies,
            groups,
            draft=draft,
            offer=broadcast_form.offer_ref(draft),
        )

    def _offer_draft(self, school: str, policy_key: str) -> Draft | None:
        """The ready-made broadcast for a changed policy, if it is still pending."""
        try:
            return broadcast_form.offer_draft(self.answerer.kb, school, policy_key)
        except Exception as exc:
            log.warning("Teams: the policy changes could not be read: %s", describe(exc))
            return None

    def _status_card(self, broadcasts: Broadcasts, school: str) -> dict[str, Any]:
        statuses = broadcasts.recent(school, STATUS_BROADCASTS)
        try:
            offers = [
                (c.policy, c.title) for c in policy_changes.pending_offers(self.answerer.kb, school)
            ]
        except Exception as exc:
            log.warning("Teams: the policy changes could not be read: %s", describe(exc))
            offers = []
        return broadcast_cards.status_card(statuses, offers)

    async def _send_card(self, turn_context: TurnContext, card: dict[str, Any], what: str) -> None:
        summary = str(card.get("fallbackText") or what)
        await self.send(turn_context, card_activity(card, summary), what)

    async def broadcast_command(
        self, turn_context: TurnContext, incoming: Incoming, command: Literal["form", "status"]
    ) -> None:
        """ "broadcast" / "broadcast status" typed to the bot."""
        broadcasts = self.broadcasts
        if broadcasts is None:
            return
        if incoming.kind != "direct":
            notice = Reply(wording.broadcast_use_private_chat(), kind="notice")
            await self.reply(turn_context, notice, "notice")
            return
        try:
            async with self._turn():
                broadcasts.author(incoming.school, PLATFORM, incoming.user_id)
                if command == "status":
                    card = self._status_card(broadcasts, incoming.school)
                else:
                    card = self._new_broadcast_form(incoming.school)
        except BroadcastRefused as exc:
            await self.reply(turn_context, Reply(str(exc), kind="notice"), "notice")
            return
        await self._send_card(turn_context, card, f"broadcast {command}")

    async def _new_broadcast_clicked(self, turn_context: TurnContext, click: Click) -> None:
        """ "New broadcast" / "Prepare a broadcast": the form, filled in from the
        policy's changes when the button names one."""
        broadcasts = self.broadcasts
        if broadcasts is None:
            await self.reply(turn_context, Reply(wording.broadcast_not_set_up()), "notice")
            return
        try:
            async with self._turn():
                broadcasts.author(click.school, PLATFORM, click.user_id)
                draft = self._offer_draft(click.school, click.value) if click.value else None
                card = self._new_broadcast_form(click.school, draft)
        except BroadcastRefused as exc:
            await self.reply(turn_context, Reply(str(exc), kind="notice"), "notice")
            return
        await self._send_card(turn_context, card, "broadcast form")

    async def broadcast_submitted(self, turn_context: TurnContext, data: Mapping[str, Any]) -> None:
        """The broadcast form sent from its card: created once per form."""
        school, user_id = _school_and_sender(turn_context)
        broadcasts = self.broadcasts
        if broadcasts is None or user_id is None:
            await self.reply(turn_context, Reply(wording.broadcast_not_set_up()), "notice")
            return
        card = await self._submit_broadcast(broadcasts, school, user_id, data)
        await self._send_card(turn_context, card, "broadcast")

    async def _submit_broadcast(
        self, broadcasts: Broadcasts, school: str, user_id: str, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        form_id = card_parts.token(data, broadcast_cards.FORM) or secrets.token_urlsafe(12)
        offer = broadcast_cards.offer_of(data)
        async with self._turn():
            policies, groups = self._form_choices(school)
        now = broadcasts.clock()
        draft, errors = broadcast_cards.read_broadcast(
            data, now=now, policies={key for key, _ in policies}, groups=set(groups)
        )

        def again(problems: Mapping[str, str]) -> dict[str, Any]:
            return broadcast_cards.broadcast_form(
                form_id, policies, groups, values=data, errors=problems, offer=offer
            )

        if draft is None:
            return again(errors)
        draft = broadcast_form.with_offer(draft, offer)
        async with self._turn():
            # The form's id is stored with the broadcast: a second press of the
            # same card's button (even after a restart) is never a second one.
            try:
                status = broadcasts.create(school, PLATFORM, user_id, draft, form_id=form_id)
            except BroadcastRefused as exc:
                if exc.reason in ("not_allowed", "already_sent"):
                    return concern_cards.notice_card(str(exc))
                return again({broadcast_form.AUDIENCE: str(exc)})
            except Exception as exc:
                log.error("Teams: a broadcast could not be stored: %s", describe(exc))
                return concern_cards.notice_card(wording.broadcast_not_sent())
        return concern_cards.notice_card(broadcast_form.confirmation_text(status))

    async def _ack_clicked(self, turn_context: TurnContext, click: Click) -> None:
        """ "I have read and understood": recorded once, with a kind word back."""
        broadcasts = self.broadcasts
        if broadcasts is None:
            await self.reply(turn_context, Reply(wording.broadcast_not_set_up()), "notice")
            return
        try:
            broadcast_id = int(click.value)
        except ValueError:
            broadcast_id = 0
        try:
            async with self._turn():
                outcome = broadcasts.acknowledge(broadcast_id, PLATFORM, click.user_id)
            text = broadcast_form.ack_outcome_text(outcome)
        except Exception as exc:
            log.warning("Teams: an acknowledgement was not recorded: %s", describe(exc))
            text = wording.broadcast_ack_failed()
        await self.reply(turn_context, Reply(text, kind="notice"), "notice")

    # the staff directory -------------------------------------------------------------------------

    async def link_email(self, turn_context: TurnContext) -> None:
        """Someone the directory has no Teams id for: fetch their email and link
        them (once per person per process; never stops the answer)."""
        directory = self.directory
        payload: dict[str, Any] = turn_context.turn_state[RAW_KEY]
        school: str = turn_context.turn_state[SCHOOL_KEY]
        sender = payload.get("from")
        aad, member_id = payload_text(sender, "aadObjectId"), payload_text(sender, "id")
        if directory is None or not aad or not member_id or not _GUID.match(aad):
            return
        tried = (school, aad.lower())
        if tried in self._link_tried:
            return
        self._link_tried.add(tried)
        async with self._turn():
            known = directory.by_platform(school, PLATFORM, aad) is not None
            # A school with no staff list yet has nobody to link them to.
            listed = bool(directory.unresolved(school, PLATFORM))
        if known or not listed:
            return
        try:
            async with asyncio.timeout(LINK_TIMEOUT):
                member = await TeamsInfo.get_member(turn_context, member_id)
        except Exception as exc:
            log.warning(
                "Teams: an email for the staff directory was not fetched: %s", describe(exc)
            )
            return
        email = getattr(member, "email", None) or getattr(member, "user_principal_name", None)
        if not isinstance(email, str) or "@" not in email:
            log.info("Teams: a member has no email to match in the staff directory")
            return
        try:
            async with self._turn():
                linked = directory.link(school, PLATFORM, aad, email)
        except Exception as exc:
            log.warning("Teams: a member was not linked in the staff directory: %s", describe(exc))
            return
        log.info(
            "Teams: a member %s", "was linked in the staff directory" if linked else "is not in it"
        )

    async def welcome(self, turn_context: TurnContext) -> None:
        """The welcome card, once per conversation within ``WELCOME_WINDOW``."""
        payload: dict[str, Any] = turn_context.turn_state[RAW_KEY]
        found = where(payload)
        marker = f"{found[0]}:{found[1]}" if found else str(turn_context.activity.conversation.id)
        now = time.monotonic()
        for old in [k for k, at in self._welcomed.items() if now - at > WELCOME_WINDOW]:
            del self._welcomed[old]
        if marker in self._welcomed:
            log.info("Teams: already welcomed this conversation; not again")
            return
        self._welcomed[marker] = now
        school = self.answerer.kb.school(turn_context.turn_state[SCHOOL_KEY])
        card = convert.welcome_card(school.name)
        summary = card.get("fallbackText") or wording.home_title(school.name)
        try:
            await self.send(
                turn_context, card_activity(card, str(summary)), "welcome", as_reply=False
            )
        except Exception:
            del self._welcomed[marker]  # let the other install activity try
            raise


class GuidebotHandler(ActivityHandler):  # type: ignore[misc]
    """botbuilder's dispatch by activity type, onto ``TeamsBot``."""

    def __init__(self, bot: TeamsBot) -> None:
        super().__init__()
        self.bot = bot

    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        removed = (
            activity.type == ActivityTypes.installation_update and activity.action == "remove"
        ) or (
            activity.type == ActivityTypes.conversation_update
            and _includes_bot(activity.members_removed, activity)
        )
        if (
            activity.type
            in (
                ActivityTypes.message,
                ActivityTypes.conversation_update,
                ActivityTypes.installation_update,
            )
            and not removed
        ):
            await self.bot.remember(turn_context)
        await super().on_turn(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        payload = turn_context.turn_state[RAW_KEY]
        school = turn_context.turn_state[SCHOOL_KEY]
        if self.bot.directory is not None and not _from_a_bot(payload):
            await self.bot.link_email(turn_context)
        data = payload.get("value")
        if (
            isinstance(data, Mapping)
            and data.get("action") in concern_cards.SUBMITS
            and not _from_a_bot(payload)
        ):
            await self.bot.concern_submitted(turn_context, data)
            return
        if (
            isinstance(data, Mapping)
            and data.get("action") == broadcast_cards.BROADCAST_SUBMIT
            and not _from_a_bot(payload)
        ):
            await self.bot.broadcast_submitted(turn_context, data)
            return
        click = convert.to_click(payload, school)
        if click is not None:
            await self.bot.click(turn_context, click)
            return
        incoming = convert.to_incoming(payload, school)
        if incoming is not None:
            command = broadcast_command(incoming.text)
            if self.bot.broadcasts is not None and command is not None:
                await self.bot.broadcast_command(turn_context, incoming, command)
                return
            await self.bot.answer(turn_context, incoming)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        if _includes_bot(members_added, turn_context.activity):
            await self.bot.welcome(turn_context)

    async def on_members_removed_activity(
        self, members_removed: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        if _includes_bot(members_removed, turn_context.activity):
            await self.bot.forget(turn_context)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        if turn_context.activity.action == "add":  # not "add-upgrade": they have met us
            await self.bot.welcome(turn_context)

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        if turn_context.activity.action == "remove":  # not "remove-upgrade"
            await self.bot.forget(turn_context)


_BROADCAST_WORDS = {
    ("broadcast",): "form",
    ("new", "broadcast"): "form",
    ("broadcast", "status"): "status",
}


def broadcast_command(text: str) -> Literal["form", "status"] | None:
    """ "broadcast" (or "/broadcast") asks for the form, "broadcast status" for the status."""
    words = tuple(text.casefold().removeprefix("/").replace("/", " ").split())
    found = _BROADCAST_WORDS.get(words)
    return "form" if found == "form" else "status" if found == "status" else None


def _is_report_command(reply: Reply) -> bool:
    """The core's answer to "report a concern": a notice with the report button."""
    return reply.kind == "notice" and any(
        b.action is Action.REPORT_CONCERN and b.value == "command" for b in reply.buttons
    )


def _form_or_notice(result: Reply | FormRequest) -> dict[str, Any]:
    """What Concerns said to a note or close button: its form, or its notice."""
    if isinstance(result, Reply):
        return convert.render(result)
    kinds: dict[str, concern_cards.TextKind] = {
        "concern_note": "concern_note_submit",
        "concern_close": "concern_close_submit",
    }
    kind = kinds.get(result.form)
    if kind is None or not result.ref:
        return concern_cards.notice_card(wording.concern_action_failed())
    return concern_cards.text_form(kind, result.ref)


def _from_a_bot(payload: Mapping[str, Any]) -> bool:
    sender = payload.get("from")
    return isinstance(sender, Mapping) and sender.get("role") == "bot"


def _includes_bot(members: list[ChannelAccount] | None, activity: Activity) -> bool:
    bot_id = getattr(activity.recipient, "id", None)
    return bool(bot_id) and any(getattr(m, "id", None) == bot_id for m in members or ())
