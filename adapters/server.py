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
  "socket" | "off", "teams": "on" | "off" | "insecure"}``; HTTP 503 with
  ``"status": "error"`` when the database cannot be read.

``serve`` runs until SIGINT or SIGTERM, then stops taking requests, cancels the
work in hand (each unfinished Slack event or Teams activity is marked failed,
so a retry is still answered), closes Socket Mode and the database, and returns.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from aiohttp import web
from botbuilder.integration.aiohttp import CloudAdapter  # type: ignore[import-untyped]
from botframework.connector.auth import (  # type: ignore[import-untyped]
    ServiceClientCredentialsFactory,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackBot, make_web_client
from adapters.slack.socket import SocketTransport
from adapters.slack.verify import MAX_BODY_BYTES, Clock
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
from bot.answers import Answerer
from bot.config import Settings, TeamsSettings
from bot.storage import Operations
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

WebClientFactory = Callable[[], AsyncWebClient]


def _contacts(settings: Settings) -> Callable[[str, str], str | None]:
    def contact(school: str, platform: str) -> str | None:
        if platform == "slack":
            return settings.school(school).policy_contact_slack
        if platform == "teams":
            return settings.school(school).policy_contact_teams
        return None

    return contact


async def healthz(request: web.Request) -> web.Response:
    kb = request.app[KB_KEY]
    database = "ok"
    try:
        kb.db.execute("SELECT count(*) FROM schools").fetchone()
    except sqlite3.Error:
        database = "error"
    status = "ok" if database == "ok" else "error"
    return web.json_response(
        {
            "status": status,
            "database": database,
            "slack": request.app[SLACK_MODE_KEY],
            "teams": request.app[TEAMS_MODE_KEY],
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
    """
    teams_mode = check_mode(settings, insecure_local)
    now: Clock = clock or time.time
    owned = not isinstance(kb_path_or_kb, KnowledgeBase)
    kb = kb_path_or_kb if isinstance(kb_path_or_kb, KnowledgeBase) else KnowledgeBase(kb_path_or_kb)
    operations = Operations(kb.db, clock=lambda: datetime.fromtimestamp(now(), UTC))
    answerer = Answerer(kb, Searcher(kb), operations, contacts=_contacts(settings))

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[KB_KEY] = kb
    app[ANSWERER_KEY] = answerer
    app.router.add_get("/healthz", healthz)
    mode: SlackMode = "off"
    slack = settings.slack
    if slack is not None:
        factory = web_client_factory or (lambda: make_web_client(slack.api_url))
        client = factory()
        bot = SlackBot(slack, answerer, client=client, clock=now)
        app[SLACK_KEY] = bot
        mode = slack.transport
        if mode == "http":
            app.router.add_post("/slack/events", bot.handle_http)

        async def slack_lifecycle(app: web.Application) -> AsyncIterator[None]:
            transport: SocketTransport | None = None
            bot.start()
            if mode == "socket" and slack.app_token is not None:
                transport = SocketTransport(bot, slack.app_token.reveal(), client)
                await transport.start()
            yield
            if transport is not None:
                await transport.close()
            await bot.close()

        app.cleanup_ctx.append(slack_lifecycle)
    app[SLACK_MODE_KEY] = mode
    app[TEAMS_MODE_KEY] = teams_mode
    if settings.teams is not None:
        teams_bot = _teams_bot(settings.teams, answerer, teams_credentials, teams_delivery)
        app[TEAMS_KEY] = teams_bot
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

    if owned:

        async def close_kb(app: web.Application) -> None:
            kb.close()

        app.on_cleanup.append(close_kb)
    return app


def _teams_bot(
    teams: TeamsSettings,
    answerer: Answerer,
    credentials: ServiceClientCredentialsFactory | None,
    delivery: DeliveryPolicy | None,
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
    )


async def run(settings: Settings, stop: asyncio.Event, *, insecure_local: bool = False) -> None:
    """Serve ``settings`` until ``stop`` is set."""
    app = build_app(settings, settings.database, insecure_local=insecure_local)
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
