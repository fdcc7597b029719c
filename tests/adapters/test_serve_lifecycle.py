"""`guidebot serve` in its own process: /healthz, JSON logs, and a clean SIGTERM.

The real command runs with a settings file in tmp_path and secrets in its
environment, Slack played by the stand-in in this test process. An alert is
queued before it starts; the stand-in holds its ``chat.postMessage`` open, so
the delivery is in flight when SIGTERM arrives. Only once the server has said
it is stopping is the post let through: the server must finish it, record it
as sent, and exit 0, with the alert delivered exactly once and no traceback.

Every wait is bounded and the process is killed in ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.adapters.test_restart_e2e import (
    ALERT_KEY,
    ROOT,
    SECRET,
    WAIT,
    guidebot_command,
    queue_alert,
    row_state,
    server_env,
    settings_file,
)
from tests.support import TOKENS
from tests.support.slack_standin import Call, SlackStandIn

SERVING = re.compile(r"guidebot is serving on http://([\d.]+):(\d+)")


class GatedSlack(SlackStandIn):
    """The stand-in, but every chat.postMessage waits at a gate until ``open()``."""

    def __init__(self, tokens: dict[str, str]) -> None:
        super().__init__(tokens)
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    def open(self) -> None:
        self.gate.set()

    async def _platform_trouble(self, call: Call) -> Any:
        if call.method == "chat.postMessage" and not self.gate.is_set():
            self.waiting.set()
            await self.gate.wait()
        return await super()._platform_trouble(call)


class Process:
    """A guidebot process whose standard error is read line by line."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        self.command = list(command)
        self.env = dict(env)
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def read_until(self, pattern: re.Pattern[str] | str) -> re.Match[str]:
        """Read standard error until a line matches; fail if the process ends first."""
        assert self.process is not None and self.process.stderr is not None
        wanted = re.compile(pattern) if isinstance(pattern, str) else pattern
        async with asyncio.timeout(WAIT):
            while True:
                line = await self.process.stderr.readline()
                assert line, "the process ended early:\n" + "".join(self.lines)
                self.lines.append(line.decode(errors="replace"))
                found = wanted.search(self.lines[-1])
                if found:
                    return found

    async def port(self) -> int:
        return int((await self.read_until(SERVING))[2])

    async def finish(self) -> tuple[int, str, str]:
        """Wait for the exit: code, all of standard error, and standard output."""
        assert self.process is not None
        assert self.process.stderr is not None and self.process.stdout is not None
        async with asyncio.timeout(WAIT):
            out, rest = await asyncio.gather(self.process.stdout.read(), self.process.stderr.read())
            code = await self.process.wait()
        err = "".join(self.lines) + rest.decode(errors="replace")
        return code, err, out.decode(errors="replace")

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), WAIT)


async def get_health(port: int, request_id: str | None = None) -> tuple[int, dict[str, Any], str]:
    headers = {"X-Request-Id": request_id} if request_id else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"http://127.0.0.1:{port}/healthz", headers=headers) as response,
    ):
        return response.status, await response.json(), response.headers.get("X-Request-Id", "")


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log, each of which must be one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
async def slack() -> AsyncIterator[GatedSlack]:
    async with GatedSlack(TOKENS) as standin:
        yield standin


async def test_sigterm_finishes_the_delivery_in_flight_and_exits_cleanly(
    slack: GatedSlack, tmp_path: Path
) -> None:
    database = tmp_path / "guidebot.db"
    config = settings_file(tmp_path, slack.api_url)
    queue_alert(database)
    server = Process([*guidebot_command(), "serve", "--config", str(config)], server_env())
    try:
        await server.start()
        port = await server.port()
        status, health, echoed = await get_health(port, request_id="probe-1")
        assert status == 200, health
        assert health["status"] == "ok" and health["database"] == "ok"
        assert health["connections"] == {"slack": "listening"}
        assert health["scheduler"] == "running"
        assert echoed == "probe-1"

        async with asyncio.timeout(WAIT):
            await slack.waiting.wait()  # the alert's post has reached Slack, unanswered
        assert row_state(database)[:2] == ("sending", 1)
        server.terminate()
        await server.read_until("guidebot is stopping")
        slack.open()  # Slack answers only now, while the server is shutting down
        code, err, _ = await server.finish()
    finally:
        slack.open()
        await server.kill()
    assert code == 0, err
    assert "Traceback" not in err and SECRET not in err
    records = json_lines(err)  # not a terminal: every line is JSON
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    assert row_state(database)[0] == "sent"
    assert slack.posted_keys() == {ALERT_KEY: 1}
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_a_second_start_sends_nothing_again(slack: GatedSlack, tmp_path: Path) -> None:
    """After a clean stop the outbox is settled: the next start has nothing to send."""
    database = tmp_path / "guidebot.db"
    config = settings_file(tmp_path, slack.api_url)
    queue_alert(database)
    slack.open()
    first = Process([*guidebot_command(), "serve", "--config", str(config)], server_env())
    second = Process([*guidebot_command(), "serve", "--config", str(config)], server_env())
    try:
        await first.start()
        await first.port()
        await slack.wait_delivered("chat.postMessage", 1, timeout=WAIT)
        async with asyncio.timeout(WAIT):
            while row_state(database)[0] != "sent":
                await asyncio.sleep(0.05)
        first.terminate()
        assert (await first.finish())[0] == 0
        await second.start()
        port = await second.port()
        status, health, _ = await get_health(port)
        assert (status, health["outbox"]) == (200, {"pending": 0, "dead": 0})
        second.terminate()
        code, err, _ = await second.finish()
    finally:
        await first.kill()
        await second.kill()
    assert code == 0, err
    assert slack.posted_keys() == {ALERT_KEY: 1}
