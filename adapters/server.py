"""One aiohttp server for every platform: ``guidebot serve`` runs this.

Routes:

- ``POST /slack/events``: Slack's Events API, interactivity and slash commands,
  when ``slack.transport = "http"``. With ``"socket"`` the route is absent and
  Socket Mode runs in the same event loop instead (no public URL needed).
- ``GET /healthz``: ``{"status": "ok", "database": "ok", "slack": "http" |
  "socket" | "off"}``; HTTP 503 with ``"status": "error"`` when the database
  cannot be read.
- ``POST /api/messages`` for Microsoft Teams will join them here (the Bot
  Framework's aiohttp integration) when the Teams adapter exists.

``serve`` runs until SIGINT or SIGTERM, then stops taking requests, cancels the
work in hand (each unfinished Slack event is marked failed, so a Slack retry is
still answered), closes Socket Mode and the database, and returns.
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
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackBot, make_web_client
from adapters.slack.socket import SocketTransport
from adapters.slack.verify import MAX_BODY_BYTES, Clock
from bot.answers import Answerer
from bot.config import Settings
from bot.storage import Operations
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

log = logging.getLogger(__name__)

SlackMode = Literal["http", "socket", "off"]

KB_KEY = web.AppKey("guidebot.kb", KnowledgeBase)
ANSWERER_KEY = web.AppKey("guidebot.answerer", Answerer)
SLACK_KEY = web.AppKey("guidebot.slack", SlackBot)
SLACK_MODE_KEY = web.AppKey("guidebot.slack_mode", str)

WebClientFactory = Callable[[], AsyncWebClient]


def _contacts(settings: Settings) -> Callable[[str, str], str | None]:
    def contact(school: str, platform: str) -> str | None:
        if platform == "slack":
            return settings.school(school).policy_contact_slack
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
        {"status": status, "database": database, "slack": request.app[SLACK_MODE_KEY]},
        status=200 if status == "ok" else 503,
    )


def build_app(
    settings: Settings,
    kb_path_or_kb: Path | str | KnowledgeBase,
    *,
    web_client_factory: WebClientFactory | None = None,
    clock: Clock | None = None,
) -> web.Application:
    """The whole server as an aiohttp application, not yet running.

    A path opens (and at cleanup closes) that knowledge base; an open
    ``KnowledgeBase`` is used as it is and left open. ``web_client_factory``
    makes the Slack Web API client (default: ``make_web_client`` pointed at
    ``settings.slack.api_url``); ``clock`` (Unix seconds) drives request
    verification and the event-claim timestamps, so tests need not wait.
    """
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
    # Microsoft Teams: POST /api/messages (botbuilder-integration-aiohttp) goes here.

    if owned:

        async def close_kb(app: web.Application) -> None:
            kb.close()

        app.on_cleanup.append(close_kb)
    return app


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve ``settings`` until ``stop`` is set."""
    app = build_app(settings, settings.database)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        for address in runner.addresses:
            host, port = address[0], address[1]
            log.info(
                "guidebot is serving on http://%s:%s (Slack: %s)", host, port, app[SLACK_MODE_KEY]
            )
        await stop.wait()
        log.info("guidebot is stopping")
    finally:
        await runner.cleanup()


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await run(settings, stop)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def serve(settings: Settings) -> None:
    """Run the server until SIGINT or SIGTERM (blocking)."""
    asyncio.run(_serve(settings))
