"""One aiohttp server for every platform: ``guidebot serve`` runs this.

Routes:

- ``POST /slack/events``: Slack's Events API, interactivity and slash commands,
  when ``slack.transport = "http"``. With ``"socket"`` the route is absent and
  Socket Mode runs in the same event loop instead (no public URL needed).
- ``POST /api/messages``: Microsoft Teams (the Bot Framework), when there is
  a ``[teams]`` section: botbuilder's ``CloudAdapter``, see ``adapters.teams.app``.
  With ``teams.app_id`` set every request must carry a valid Bot Framework
  token. Without it botbuilder would accept anyone, so the server refuses to
  start (``ConfigError`` naming ``teams.app_id``) unless ``insecure_local`` is
  given (``guidebot serve --insecure-local``), and even then only on a loopback
  ``server.host``, with a WARNING at start.
- ``GET /healthz``: ``{"status": "ok", "database": "ok", "slack": "http" |
  "socket" | "off", "teams": "on" | "off" | "insecure", "outbox": {"pending":
  n, "dead": n}}``; HTTP 503 with ``"status": "error"`` (and ``"outbox":
  null``) when the database cannot be read. ``pending`` counts every message
  not yet delivered (waiting, or being sent); ``dead`` those given up on.

The outbox (``bot.outbox``). Messages the bot starts (safeguarding alerts,
escalations) are queued in the database and sent by an ``OutboxWorker`` that
runs in the server's event loop (``adapters.scheduler.run_every``; woken at
once when a row is queued, else every ``OUTBOX_POLL`` seconds), through a
``SlackSender`` and/or a ``TeamsSender`` for the platforms configured. The
outbox seals what it stores with the installation's key, so the server
refuses to start without ``GUIDEBOT_SECRET_KEY`` (a ``ConfigError`` naming it,
before anything is opened or bound). The scheduler (``bot.scheduler``,
APScheduler under a database lease, ``app[SCHEDULER_KEY]``) runs the timed
sweeps: the ``sweep`` given to ``build_app`` (the safeguarding escalation
sweep, ``Concerns.escalate_due``; or set as ``app[SWEEP_KEY]`` before the app
starts) every ``sweep_interval`` seconds, broadcasts due and their chasers,
review and training reminders and the weekly digest. With two server
processes on one database only the lease holder runs them (``/healthz``
``scheduler``: "running" or "standby"). Both stop at shutdown after the send
or sweep in hand (bounded by ``OUTBOX_STOP_TIMEOUT``; a send cut off there is
found again by the next start, see ``bot.outbox``).

``serve`` runs until SIGINT or SIGTERM, then stops taking requests, lets the
outbox finish the send in hand, cancels the work in hand (each unfinished
Slack event or Teams activity is marked failed, so a retry is still answered),
closes Socket Mode and the database, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from aiohttp import web
from botbuilder.integration.aiohttp import CloudAdapter  # type: ignore[import-untyped]
from botframework.connector.auth import (  # type: ignore[import-untyped]
    ServiceClientCredentialsFactory,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.http_checks import MAX_BODY_BYTES
from adapters.scheduler import run_every
from adapters.slack.app import SlackBot, make_web_client
from adapters.slack.directory_sync import sync_all
from adapters.slack.sender import SlackSender, make_sender_client, slack_recipient
from adapters.slack.socket import SocketTransport
from adapters.slack.verify import Clock
from adapters.teams.app import TeamsBot
from adapters.teams.auth import (
    PUBLIC_METADATA_URL,
    Authenticator,
    check_mode,
    create_authentication,
    credentials_for,
    install_keys,
)
from adapters.teams.delivery import DeliveryPolicy
from adapters.teams.sender import TeamsSender
from bot.answers import Answerer
from bot.broadcasts import Broadcasts
from bot.concerns import Concerns
from bot.config import ConfigError, Settings, TeamsSettings
from bot.crypto import SecretBox
from bot.digest import Digests
from bot.directory import Directory
from bot.logs import REQUEST_ID_HEADER, clean_request_id, request_id
from bot.outbox import DeliveryPolicy as OutboxPolicy
from bot.outbox import Outbox, OutboxWorker, Sender
from bot.reminders import Reviews
from bot.retention import sweep as retention_sweep
from bot.scheduler import Scheduler, install_sweeps
from bot.schema import migrate_all
from bot.storage import Operations
from bot.training import Training
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

log = logging.getLogger(__name__)

SlackMode = Literal["http", "socket", "off"]

KB_KEY = web.AppKey("guidebot.kb", KnowledgeBase)
ANSWERER_KEY = web.AppKey("guidebot.answerer", Answerer)
SLACK_KEY = web.AppKey("guidebot.slack", SlackBot)
SLACK_MODE_KEY = web.AppKey("guidebot.slack_mode", str)
TEAMS_KEY = web.AppKey("guidebot.teams", TeamsBot)
TEAMS_MODE_KEY = web.AppKey("guidebot.teams_mode", str)
OUTBOX_KEY = web.AppKey("guidebot.outbox", Outbox)
OUTBOX_WORKER_KEY = web.AppKey("guidebot.outbox_worker", OutboxWorker)
DIRECTORY_KEY = web.AppKey("guidebot.directory", Directory)
BROADCASTS_KEY = web.AppKey("guidebot.broadcasts", Broadcasts)
"""The staff directory and leaders' broadcasts (for the scheduler's sweeps)."""
SWEEP_KEY = web.AppKey("guidebot.sweep", object)
"""The escalation sweep, for code that makes it after ``build_app`` (see ``build_app``)."""
SCHEDULER_KEY = web.AppKey("guidebot.scheduler", Scheduler)
"""The APScheduler sweeps under a database lease (``bot.scheduler``)."""
SCHEDULER_STATE_KEY = web.AppKey("guidebot.scheduler_state", object)
"""Optional: a zero-argument callable returning the scheduler's state in a word
("running", "standby", "off"), for /healthz. Absent: "off"."""

DAILY = 24 * 3600.0
"""Seconds between the retention sweep's runs, and the Slack directory sync's
(each also runs once at every start)."""
OUTBOX_POLL = 5.0
"""Seconds between outbox rounds when nothing wakes the worker sooner."""
SWEEP_INTERVAL = 60.0
"""Seconds between escalation sweeps."""
OUTBOX_STOP_TIMEOUT = 20.0
"""Seconds shutdown waits for the send in hand (longer than one Slack or Teams call)."""

WebClientFactory = Callable[[], AsyncWebClient]
Sweep = Callable[[], Awaitable[object] | object]


def _contacts(settings: Settings) -> Callable[[str, str], str | None]:
    def contact(school: str, platform: str) -> str | None:
        if platform == "slack":
            return settings.school(school).policy_contact_slack
        if platform == "teams":
            return settings.school(school).policy_contact_teams
        return None

    return contact


class Connections:
    """Platform connections whose state /healthz reports; set while the app runs."""

    def __init__(self) -> None:
        self.socket: SocketTransport | None = None


CONNECTIONS_KEY = web.AppKey("guidebot.connections", Connections)


async def _connection_states(app: web.Application) -> dict[str, str]:
    """Each configured platform: "listening" (HTTP endpoint served), or for Slack
    Socket Mode "connected" / "connecting"."""
    states: dict[str, str] = {}
    if app[SLACK_MODE_KEY] == "http":
        states["slack"] = "listening"
    elif app[SLACK_MODE_KEY] == "socket":
        transport = app[CONNECTIONS_KEY].socket
        client = transport.client if transport is not None else None
        connected = False
        if client is not None:
            with contextlib.suppress(Exception):
                connected = bool(await client.is_connected())
        states["slack"] = "connected" if connected else "connecting"
    if app[TEAMS_MODE_KEY] != "off":
        states["teams"] = "listening"
    return states


def _scheduler_state(app: web.Application) -> str:
    state = app.get(SCHEDULER_STATE_KEY)
    if not callable(state):
        return "off"
    try:
        return str(state())
    except Exception as exc:
        log.warning("scheduler state could not be read: %s", type(exc).__name__)
        return "error"


@web.middleware
async def request_ids(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Give every request an id (the caller's X-Request-Id when it is plain, else a
    new one): on every log line written while handling it, and in the response."""
    rid = clean_request_id(request.headers.get(REQUEST_ID_HEADER))
    token = request_id.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    finally:
        request_id.reset(token)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = rid
    return response


async def healthz(request: web.Request) -> web.Response:
    kb = request.app[KB_KEY]
    database = "ok"
    try:
        kb.db.execute("SELECT count(*) FROM schools").fetchone()
    except sqlite3.Error:
        database = "error"
    outbox: dict[str, int] | None = None
    if database == "ok":
        try:
            counts = request.app[OUTBOX_KEY].counts()
            outbox = {"pending": counts["pending"] + counts["sending"], "dead": counts["dead"]}
        except sqlite3.Error:
            database = "error"
    status = "ok" if database == "ok" else "error"
    return web.json_response(
        {
            "status": status,
            "database": database,
            "slack": request.app[SLACK_MODE_KEY],
            "teams": request.app[TEAMS_MODE_KEY],
            "connections": await _connection_states(request.app),
            "scheduler": _scheduler_state(request.app),
            "outbox": outbox,
        },
        status=200 if status == "ok" else 503,
    )


def build_app(
    settings: Settings,
    kb_path_or_kb: Path | str | KnowledgeBase,
    *,
    web_client_factory: WebClientFactory | None = None,
    clock: Clock | None = None,
    insecure_local: bool = False,
    teams_credentials: ServiceClientCredentialsFactory | None = None,
    teams_delivery: DeliveryPolicy | None = None,
    secret_box: SecretBox | None = None,
    outbox_policy: OutboxPolicy | None = None,
    outbox_poll: float = OUTBOX_POLL,
    outbox_web_client: AsyncWebClient | None = None,
    sweep: Sweep | None = None,
    sweep_interval: float = SWEEP_INTERVAL,
) -> web.Application:
    """The whole server as an aiohttp application, not yet running.

    A path opens (and at cleanup closes) that knowledge base; an open
    ``KnowledgeBase`` is used as it is and left open. ``web_client_factory``
    makes the Slack Web API client (default: ``make_web_client`` pointed at
    ``settings.slack.api_url``); ``clock`` (Unix seconds) drives request
    verification and the event-claim timestamps, so tests need not wait.

    Teams: ``insecure_local`` allows running without ``teams.app_id`` (see the
    module notes; raises ``ConfigError`` otherwise). ``teams_credentials``
    replaces the bot's own (Azure AD) credentials for replies, and
    ``teams_delivery`` the retry policy, for tests.

    Outbox: ``secret_box`` seals what it stores (default: from
    ``GUIDEBOT_SECRET_KEY``, a ``ConfigError`` naming it when unset);
    ``outbox_policy`` its retry policy, ``outbox_poll`` the seconds between
    rounds, ``outbox_web_client`` the Slack client its sender uses (default: one
    without retry handlers at ``settings.slack.api_url``). ``sweep`` (e.g.
    ``Concerns.escalate_due``) runs every ``sweep_interval`` seconds; code that
    can only make it after the app (it needs ``app[OUTBOX_KEY]``) sets
    ``app[SWEEP_KEY]`` instead, before the app starts. The outbox is
    ``app[OUTBOX_KEY]``, for whatever queues messages.
    """
    teams_mode = check_mode(settings, insecure_local)
    box = secret_box if secret_box is not None else SecretBox.from_env(os.environ)
    now: Clock = clock or time.time

    def utc_now() -> datetime:
        """``now`` as an aware UTC datetime: the clock every service below reads."""
        return datetime.fromtimestamp(now(), UTC)

    owned = not isinstance(kb_path_or_kb, KnowledgeBase)
    kb = kb_path_or_kb if isinstance(kb_path_or_kb, KnowledgeBase) else KnowledgeBase(kb_path_or_kb)
    upgraded = migrate_all(kb.db)  # every table, before any request arrives
    if upgraded:
        log.info("database brought up to date: %s", ", ".join(upgraded))
    operations = Operations(kb.db, clock=utc_now)
    answerer = Answerer(kb, Searcher(kb), operations, contacts=_contacts(settings))
    outbox = Outbox(kb.db, box, clock=utc_now)
    concerns = Concerns(
        kb.db,
        box,
        lambda school: settings.school(school).safeguarding,
        outbox,
        clock=utc_now,
    )
    if sweep is None:
        sweep = concerns.escalate_due
    directory = Directory(kb.db, clock=utc_now)
    broadcasts = Broadcasts(
        kb.db,
        outbox,
        directory,
        clock=utc_now,
        settings=settings.broadcasts,
        school_open=lambda school, moment: settings.schedule.hours_for(school).is_open(moment),
    )
    hours = settings.schedule.hours_for
    reviews = Reviews(kb.db, directory, outbox, hours, clock=utc_now)
    training = Training(
        kb.db,
        directory,
        outbox,
        hours,
        settings.schedule.training,
        clock=utc_now,
    )
    digests = Digests(
        kb.db,
        directory,
        outbox,
        reviews,
        training,
        hours,
        settings.schedule.digest,
        broadcasts=broadcasts,
        clock=utc_now,
        channel_recipient=_channel_recipient(settings),
    )
    scheduler = Scheduler(kb.db, clock=utc_now)
    install_sweeps(
        scheduler, broadcasts=broadcasts, reviews=reviews, training=training, digests=digests
    )
    scheduler.add_sweep(
        "retention",
        DAILY,
        lambda: retention_sweep(kb.db, settings.retention, utc_now()),
    )
    senders: dict[str, Sender] = {}

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[request_ids])
    connections = Connections()
    app[CONNECTIONS_KEY] = connections
    app[KB_KEY] = kb
    app[ANSWERER_KEY] = answerer
    app[OUTBOX_KEY] = outbox
    app[DIRECTORY_KEY] = directory
    app[BROADCASTS_KEY] = broadcasts
    app[SCHEDULER_KEY] = scheduler
    app[SCHEDULER_STATE_KEY] = scheduler.state
    app.router.add_get("/healthz", healthz)
    mode: SlackMode = "off"
    slack = settings.slack
    if slack is not None:
        factory = web_client_factory or (lambda: make_web_client(slack.api_url))
        client = factory()
        bot = SlackBot(
            slack,
            answerer,
            client=client,
            clock=now,
            concerns=concerns,
            broadcasts=broadcasts,
            directory=directory,
        )
        app[SLACK_KEY] = bot
        scheduler.add_sweep("slack-directory", DAILY, lambda: sync_all(directory, client, slack))
        senders["slack"] = SlackSender(
            slack, outbox_web_client or make_sender_client(slack.api_url)
        )
        mode = slack.transport
        if mode == "http":
            app.router.add_post("/slack/events", bot.handle_http)

        async def slack_lifecycle(app: web.Application) -> AsyncIterator[None]:
            transport: SocketTransport | None = None
            bot.start()
            if mode == "socket" and slack.app_token is not None:
                transport = SocketTransport(bot, slack.app_token.reveal(), client)
                connections.socket = transport
                await transport.start()
            yield
            if transport is not None:
                await transport.close()
            await bot.close()

        app.cleanup_ctx.append(slack_lifecycle)
    app[SLACK_MODE_KEY] = mode
    app[TEAMS_MODE_KEY] = teams_mode
    if settings.teams is not None:
        teams_bot = _teams_bot(
            settings.teams, answerer, teams_credentials, teams_delivery, concerns
        )
        teams_bot.broadcasts, teams_bot.directory = broadcasts, directory
        app[TEAMS_KEY] = teams_bot
        senders["teams"] = TeamsSender(
            teams_bot.adapter,
            operations,
            app_id=settings.teams.app_id,
            timeout=teams_bot.delivery.timeout,
        )
        app.router.add_post("/api/messages", teams_bot.handle_http)
        if teams_mode == "insecure":
            log.warning(
                "Teams authentication is OFF (--insecure-local, no teams.app_id): anyone who "
                "can reach %s:%s can talk to the bot as anyone. For local testing only, "
                "never on a real server.",
                settings.host,
                settings.port,
            )
        elif insecure_local:
            log.info("--insecure-local is ignored: teams.app_id is set, so authentication is on")

        async def teams_lifecycle(app: web.Application) -> AsyncIterator[None]:
            teams_bot.start()
            yield
            await teams_bot.close()

        app.cleanup_ctx.append(teams_lifecycle)

    worker = OutboxWorker(outbox, senders, outbox_policy or OutboxPolicy())
    app[OUTBOX_WORKER_KEY] = worker
    if sweep is not None:
        app[SWEEP_KEY] = sweep
    app.cleanup_ctx.append(_background(worker, outbox_poll, sweep_interval))

    if owned:

        async def close_kb(app: web.Application) -> None:
            kb.close()

        app.on_cleanup.append(close_kb)
    return app


def _channel_recipient(settings: Settings) -> Callable[[str, str], str]:
    """(school, Slack channel id) -> the outbox recipient, with the school's workspace."""

    def recipient(school: str, channel: str) -> str:
        try:
            return slack_recipient(settings, school, channel)
        except ConfigError:
            return channel  # one workspace: the sender knows which

    return recipient


def _background(
    worker: OutboxWorker, poll: float, sweep_interval: float
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The outbox worker and the scheduler (with the escalation sweep), started with
    the app and stopped before the platforms and the database close (cleanup runs
    in reverse order)."""

    async def background(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(
                run_every(
                    poll,
                    lambda: worker.run_until_idle(stop),
                    stop,
                    wake=worker.wakeup,
                    name="outbox round",
                ),
                name="guidebot-outbox",
            )
        ]
        scheduler = app[SCHEDULER_KEY]
        sweep = app.get(SWEEP_KEY)
        if sweep is not None:
            if not callable(sweep):
                raise TypeError("app[SWEEP_KEY] must be a callable")
            scheduler.add_sweep("escalation", sweep_interval, sweep)
        scheduler.start()
        yield
        stop.set()
        await scheduler.stop()
        _, late = await asyncio.wait(tasks, timeout=OUTBOX_STOP_TIMEOUT)
        for task in late:
            log.warning("%s did not stop in time: cancelled", task.get_name())
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        worker.close()

    return background


def _teams_bot(
    teams: TeamsSettings,
    answerer: Answerer,
    credentials: ServiceClientCredentialsFactory | None,
    delivery: DeliveryPolicy | None,
    concerns: Concerns | None = None,
) -> TeamsBot:
    metadata_url = teams.openid_metadata_url or PUBLIC_METADATA_URL
    metadata = install_keys(metadata_url) if teams.authenticated else None
    authentication = create_authentication(metadata_url, credentials or credentials_for(teams))
    return TeamsBot(
        teams,
        answerer,
        adapter=CloudAdapter(authentication),
        authenticator=Authenticator(authentication, app_id=teams.app_id, metadata=metadata),
        delivery=delivery,
        concerns=concerns,
    )


async def run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    insecure_local: bool = False,
    secret_box: SecretBox | None = None,
    outbox_policy: OutboxPolicy | None = None,
    sweep: Sweep | None = None,
) -> None:
    """Serve ``settings`` until ``stop`` is set. Without ``secret_box`` the key
    comes from GUIDEBOT_SECRET_KEY (refused, before the port is bound, if unset)."""
    app = build_app(
        settings,
        settings.database,
        insecure_local=insecure_local,
        secret_box=secret_box,
        outbox_policy=outbox_policy,
        sweep=sweep,
    )
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        for address in runner.addresses:
            host, port = address[0], address[1]
            log.info(
                "guidebot is serving on http://%s:%s (Slack: %s) (Teams: %s)",
                host,
                port,
                app[SLACK_MODE_KEY],
                app[TEAMS_MODE_KEY],
            )
        await stop.wait()
        log.info("guidebot is stopping")
    finally:
        await runner.cleanup()


async def _serve(settings: Settings, insecure_local: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await run(settings, stop, insecure_local=insecure_local)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def serve(settings: Settings, *, insecure_local: bool = False) -> None:
    """Run the server until SIGINT or SIGTERM (blocking). ``insecure_local``:
    see the module notes; without it a [teams] section needs ``teams.app_id``."""
    asyncio.run(_serve(settings, insecure_local))
