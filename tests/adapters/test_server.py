"""The aiohttp server: /healthz, lifecycle, and ``serve`` stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from adapters.server import build_app, run
from bot.config import ConfigError, Settings
from knowledge.store import KnowledgeBase
from tests.support import (
    ANNES_TOKEN,
    APP_TOKEN,
    TEST_KEY,
    TOKENS,
    Guidebot,
    sealing_box,
    settings_for,
)
from tests.support.slack_standin import SlackStandIn
from tests.support.teams_standin import TeamsGuidebot, TeamsStandIn, teams_settings

ROOT = Path(__file__).resolve().parents[2]
SERVING = re.compile(r"serving on http://127\.0\.0\.1:(\d+) \(Slack: (\w+)\)")


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(TOKENS) as standin:
        yield standin


async def _get(url: str) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(url) as response,
    ):
        return response.status, await response.json()


async def test_healthz_in_http_mode(slack: SlackStandIn, sample_db_copy: Path) -> None:
    async with Guidebot(settings_for(sample_db_copy, slack.api_url)) as server:
        assert await server.get("/healthz") == (
            200,
            {
                "status": "ok",
                "database": "ok",
                "slack": "http",
                "teams": "off",
                "connections": {"slack": "listening"},
                "scheduler": "running",
                "outbox": {"pending": 0, "dead": 0},
            },
        )


async def test_without_slack_settings_there_is_no_slack_endpoint(sample_db_copy: Path) -> None:
    settings = Settings(database=sample_db_copy, host="127.0.0.1", port=0)
    async with Guidebot(settings) as server:
        assert await server.get("/healthz") == (
            200,
            {
                "status": "ok",
                "database": "ok",
                "slack": "off",
                "teams": "off",
                "connections": {},
                "scheduler": "running",
                "outbox": {"pending": 0, "dead": 0},
            },
        )
        status, _ = await server.post("{}", {"Content-Type": "application/json"})
        assert status == 404


async def test_healthz_says_so_when_the_database_is_unreadable(sample_db_copy: Path) -> None:
    settings = Settings(database=sample_db_copy, host="127.0.0.1", port=0)
    async with Guidebot(settings) as server:
        server.kb.close()
        assert await server.get("/healthz") == (
            503,
            {
                "status": "error",
                "database": "error",
                "slack": "off",
                "teams": "off",
                "connections": {},
                "scheduler": "running",
                "outbox": None,
            },
        )


async def test_an_open_knowledge_base_is_left_open(sample_db_copy: Path) -> None:
    kb = KnowledgeBase(sample_db_copy)
    try:
        app = build_app(Settings(database=sample_db_copy), kb, secret_box=sealing_box())
        runner = web.AppRunner(app)
        await runner.setup()
        await runner.cleanup()
        assert kb.db.execute("SELECT count(*) FROM schools").fetchone()[0] == 5
    finally:
        kb.close()


async def test_run_serves_until_told_to_stop(
    slack: SlackStandIn, sample_db_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.server")
    stop = asyncio.Event()
    serving = asyncio.create_task(
        run(settings_for(sample_db_copy, slack.api_url), stop, secret_box=sealing_box())
    )
    async with asyncio.timeout(10):
        while not (found := SERVING.search(caplog.text)):
            await asyncio.sleep(0.01)
        assert await _get(f"http://127.0.0.1:{found[1]}/healthz") == (
            200,
            {
                "status": "ok",
                "database": "ok",
                "slack": "http",
                "teams": "off",
                "connections": {"slack": "listening"},
                "scheduler": "running",
                "outbox": {"pending": 0, "dead": 0},
            },
        )
        stop.set()
        await serving
    assert "guidebot is stopping" in caplog.text


SERVE_SCRIPT = """
import logging, sys
from pathlib import Path
from adapters.server import serve
from bot.config import parse

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
database, api_url, bot_token, app_token = sys.argv[1:]
settings = parse(
    {
        "server": {"host": "127.0.0.1", "port": 0, "database": database},
        "slack": {
            "transport": "socket",
            "api_url": api_url,
            "workspace": [{"team_id": "T0ANNES", "school": "st-annes"}],
        },
    },
    {"SLACK_BOT_TOKEN": bot_token, "SLACK_APP_TOKEN": app_token},
)
serve(settings)
print("serve returned", file=sys.stderr)
"""


async def test_serve_runs_socket_mode_beside_healthz_and_stops_on_sigterm(
    slack: SlackStandIn, sample_db_copy: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE_SCRIPT,
        str(sample_db_copy),
        slack.api_url,
        ANNES_TOKEN,
        APP_TOKEN,
        cwd=ROOT,
        env={**os.environ, "GUIDEBOT_SECRET_KEY": base64.urlsafe_b64encode(TEST_KEY).decode()},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(20):
            while not (found := SERVING.search("".join(seen))):
                line = await process.stderr.readline()
                assert line, "".join(seen)
                seen.append(line.decode())
            assert found[2] == "socket"
            await slack.wait_connected()
            status, health = await _get(f"http://127.0.0.1:{found[1]}/healthz")
            assert isinstance(health, dict)
            # The stand-in has the socket; the client may not have noticed yet.
            assert health.pop("connections") in ({"slack": "connected"}, {"slack": "connecting"})
            assert (status, health) == (
                200,
                {
                    "status": "ok",
                    "database": "ok",
                    "slack": "socket",
                    "teams": "off",
                    "scheduler": "running",
                    "outbox": {"pending": 0, "dead": 0},
                },
            )
            process.send_signal(signal.SIGTERM)
            rest = await process.stderr.read()
            assert await process.wait() == 0, rest.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = "".join(seen) + rest.decode()
    assert "serve returned" in log
    assert "Traceback" not in log


# --- Microsoft Teams beside Slack -------------------------------------------------------------


async def test_healthz_reports_teams_and_both_endpoints_are_served(
    slack: SlackStandIn, sample_db_copy: Path
) -> None:
    async with TeamsStandIn() as teams_standin:
        settings = dataclasses.replace(
            settings_for(sample_db_copy, slack.api_url),
            teams=teams_settings(sample_db_copy, teams_standin).teams,
        )
        async with TeamsGuidebot(settings) as server:
            assert await server.get("/healthz") == (
                200,
                {
                    "status": "ok",
                    "database": "ok",
                    "slack": "http",
                    "teams": "on",
                    "connections": {"slack": "listening", "teams": "listening"},
                    "scheduler": "running",
                    "outbox": {"pending": 0, "dead": 0},
                },
            )
            status, _ = await server.post("{}", {"Content-Type": "application/json"})
            assert status == 401  # Teams' endpoint, wanting a token
            status, _ = await server.post("{}", {}, path="/slack/events")
            assert status == 401  # Slack's, wanting a signature


async def test_without_teams_settings_there_is_no_teams_endpoint(sample_db_copy: Path) -> None:
    settings = Settings(database=sample_db_copy, host="127.0.0.1", port=0)
    async with Guidebot(settings) as server:
        status, _ = await server.post("{}", {"Content-Type": "application/json"}, "/api/messages")
        assert status == 404


async def test_a_refused_teams_configuration_opens_nothing(sample_db_copy: Path) -> None:
    settings = teams_settings(sample_db_copy, TeamsStandIn(), app_id=None)
    before = sample_db_copy.stat().st_mtime_ns
    with pytest.raises(ConfigError, match=r"teams\.app_id"):
        build_app(settings, sample_db_copy)
    assert sample_db_copy.stat().st_mtime_ns == before
    assert not sample_db_copy.with_name(sample_db_copy.name + "-wal").exists()


async def test_run_names_the_teams_mode(
    sample_db_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.server")
    async with TeamsStandIn() as teams_standin:
        settings = teams_settings(sample_db_copy, teams_standin, app_id=None)
        stop = asyncio.Event()
        serving = asyncio.create_task(
            run(settings, stop, insecure_local=True, secret_box=sealing_box())
        )
        async with asyncio.timeout(10):
            while not (found := SERVING.search(caplog.text)):
                await asyncio.sleep(0.01)
            assert found[2] == "off"
            assert "(Teams: insecure)" in caplog.text
            assert "authentication is OFF" in caplog.text
            status, health = await _get(f"http://127.0.0.1:{found[1]}/healthz")
            assert (status, health["teams"]) == (200, "insecure")  # type: ignore[index]
            stop.set()
            await serving
