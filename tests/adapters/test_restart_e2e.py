"""A safeguarding alert survives ``kill -9``: the real ``guidebot serve``, restarted.

The server runs as a subprocess of the real CLI (settings file in tmp_path,
secrets in its environment, ``slack.api_url`` pointing at the Slack stand-in in
this test process). An alert is queued in its database before it starts; the
stand-in holds ``chat.postMessage`` so the server is killed (SIGKILL) with the
alert claimed and its post in flight: either Slack already has the message
(the answer was lost) or it does not. The claim's lease is then moved into the
past, which is what a minute's wait would do, and the server is started again.
The stand-in must end with exactly one copy of the alert.

Every wait is bounded, and the processes are killed in ``finally``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.crypto import SecretBox
from bot.messages import Action, Button, Reply
from bot.outbox import Outbox, stamp
from knowledge.store import KnowledgeBase
from tests.support import ANNES_TEAM, ANNES_TOKEN, SIGNING_SECRET, TOKENS
from tests.support.slack_standin import SlackStandIn

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
ALERT_KEY = "concern:C-2026-0099:alert:slack:U0DSL"
SECRET = "Marmosetlantern"
WAIT = 20.0


def settings_file(folder: Path, api_url: str) -> Path:
    path = folder / "guidebot.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0
database = "{folder / "guidebot.db"}"

[slack]
transport = "http"
api_url = "{api_url}"

[[slack.workspace]]
team_id = "{ANNES_TEAM}"
school = "st-annes"
""",
        encoding="utf-8",
    )
    return path


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUIDEBOT_", "SLACK_"))}
    env.update(
        {
            "GUIDEBOT_SECRET_KEY": base64.urlsafe_b64encode(KEY).decode(),
            "SLACK_BOT_TOKEN": ANNES_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        }
    )
    return env


def guidebot_command() -> list[str]:
    script = Path(sys.executable).with_name("guidebot")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from bot.cli import main; main()"]


class Server:
    """``guidebot serve`` as a subprocess."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *guidebot_command(),
            "serve",
            "--config",
            str(self.config),
            cwd=ROOT,
            env=server_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()  # SIGKILL: no shutdown, no cleanup
            await asyncio.wait_for(self.process.wait(), WAIT)

    async def stop(self) -> tuple[int, str]:
        """SIGTERM, as systemd stops it; the exit code and what it wrote."""
        assert self.process is not None and self.process.stderr is not None
        self.process.send_signal(signal.SIGTERM)
        err = await asyncio.wait_for(self.process.stderr.read(), WAIT)
        code = await asyncio.wait_for(self.process.wait(), WAIT)
        return code, err.decode(errors="replace")


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(TOKENS) as standin:
        yield standin


def queue_alert(database: Path) -> None:
    """What ``Concerns.submit`` leaves behind: one sealed alert, committed."""
    kb = KnowledgeBase(database)
    try:
        outbox = Outbox(kb.db, SecretBox(KEY))
        reply = Reply(
            f"New safeguarding concern C-2026-0099: {SECRET}",
            buttons=(Button("View", Action.CONCERN_VIEW, "C-2026-0099", "primary"),),
            kind="notice",
        )
        with kb.db.atomic():
            assert outbox.enqueue(ALERT_KEY, "slack", f"{ANNES_TEAM}:U0DSL", reply)
    finally:
        kb.close()


def row_state(database: Path) -> tuple[str, int, str | None]:
    kb = KnowledgeBase(database)
    try:
        found = kb.db.execute(
            "SELECT state, attempts, platform_ref FROM outbox WHERE dedupe_key = ?", [ALERT_KEY]
        ).fetchone()
        assert found is not None
        return found[0], found[1], found[2]
    finally:
        kb.close()


def expire_the_lease(database: Path) -> None:
    """Move the dead worker's claim into the past: a minute passing, without the wait."""
    kb = KnowledgeBase(database)
    try:
        past = stamp(datetime.now(UTC) - timedelta(seconds=1))
        with kb.db.atomic():
            changed = kb.db.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE dedupe_key = ? AND state = 'sending'",
                [past, ALERT_KEY],
            ).rowcount
        assert changed == 1, "the alert should have been claimed when the server died"
    finally:
        kb.close()


async def wait_until_sent(database: Path) -> tuple[str, int, str | None]:
    async with asyncio.timeout(WAIT):
        while (state := row_state(database))[0] != "sent":
            await asyncio.sleep(0.05)
    return state


@pytest.mark.parametrize(
    "slack_had_it", [pytest.param(True, id="posted"), pytest.param(False, id="not-posted")]
)
async def test_an_alert_in_flight_at_sigkill_arrives_exactly_once(
    slack: SlackStandIn, tmp_path: Path, slack_had_it: bool
) -> None:
    database = tmp_path / "guidebot.db"
    config = settings_file(tmp_path, slack.api_url)
    queue_alert(database)
    slack.hold_posts(accept=slack_had_it)
    first, second = Server(config), Server(config)
    try:
        await first.start()
        [post] = await slack.wait_calls("chat.postMessage", 1, timeout=WAIT)
        assert SECRET in post.dumps()
        await first.kill()  # the post is in flight; the row is 'sending'
        assert row_state(database)[:2] == ("sending", 1)
        assert slack.posted_keys() == ({ALERT_KEY: 1} if slack_had_it else {})
        slack.release_posts()
        expire_the_lease(database)

        await second.start()
        _, attempts, ref = await wait_until_sent(database)
        code, err = await second.stop()
    finally:
        await first.kill()
        await second.kill()
    assert code == 0, err
    assert "Traceback" not in err and SECRET not in err
    assert attempts == 2
    assert slack.posted_keys() == {ALERT_KEY: 1}
    [message] = slack.posted(ALERT_KEY)
    assert ref == message["ts"]
    assert len(slack.calls_to("conversations.history")) == 1  # it looked before sending
    assert len(slack.calls_to("chat.postMessage")) == (1 if slack_had_it else 2)
