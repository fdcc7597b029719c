"""The outbox through the real senders, over real HTTP to the platform stand-ins.

The real ``SlackSender`` (``AsyncWebClient`` pointed at the Slack stand-in) and
the real ``TeamsSender`` (botbuilder's ``CloudAdapter`` and connector client
pointed at the Teams stand-in, with a stored conversation reference) deliver
rows from a real SQLite outbox. Time is a fake clock moved by the test, so "ten
minutes" of outage take a second or two: only the client's timeout (0.2 s)
is ever waited for real.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from botbuilder.integration.aiohttp import CloudAdapter  # type: ignore[import-untyped]
from botbuilder.schema import (  # type: ignore[import-untyped]
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
)

from adapters.server import OUTBOX_KEY, build_app, run
from adapters.slack import convert as slack_convert
from adapters.slack.sender import METADATA_EVENT, SlackSender, make_sender_client, slack_recipient
from adapters.teams.auth import create_authentication
from adapters.teams.sender import TeamsSender
from bot.config import ConfigError, SlackSettings
from bot.crypto import SecretBox
from bot.messages import Action, Button, Reply
from bot.outbox import DeliveryPolicy, Outbox, OutboxWorker, Sender
from bot.storage import Operations
from tests.support import (
    ANNES_TEAM,
    ANNES_TOKEN,
    CROSS_TEAM,
    CROSS_TOKEN,
    TOKENS,
    Guidebot,
    settings_for,
)
from tests.support.bot_tokens import APP_ID, FixedTokenCredentialFactory
from tests.support.slack_standin import SlackStandIn
from tests.support.teams_standin import (
    ANNES_TENANT,
    BOT_ID,
    PERSONAL,
    STAFF_AAD,
    STAFF_ID,
    TeamsStandIn,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DSL = "U0DSL"
SECRET = "Quokkaflamingo"
"""A word in every alert, which must reach the platform and nothing else."""
TEN_MINUTES = 600.0
API_TIMEOUT = 0.2


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def alert(ref: str = "C-2026-0001") -> Reply:
    return Reply(
        f"New safeguarding concern {ref}: {SECRET}",
        buttons=(
            Button("View", Action.CONCERN_VIEW, ref, "primary"),
            Button("Acknowledge", Action.CONCERN_ACKNOWLEDGE, ref),
        ),
        kind="notice",
        extra={"concern_ref": ref},
    )


class Rig:
    """An outbox on a SQLite file, a worker with the given senders and a fake clock."""

    def __init__(self, path: Path, senders: dict[str, Sender]) -> None:
        self.clock = Clock()
        self.db = sqlite_utils.Database(path)
        self.outbox = Outbox(self.db, SecretBox(bytes(range(32))), clock=self.clock)
        self.operations = Operations(self.db, clock=self.clock)
        self.senders = senders

    def worker(self) -> OutboxWorker:
        async def sleep(seconds: float) -> None:
            self.clock.advance(seconds)

        return OutboxWorker(
            self.outbox,
            self.senders,
            DeliveryPolicy(rate_per_second={}),
            clock=self.clock,
            sleep=sleep,
            random=lambda: 1.0,
        )

    def enqueue(self, key: str, platform: str, recipient: str, reply: Reply | None = None) -> int:
        assert self.outbox.enqueue(key, platform, recipient, reply or alert())
        row = self.outbox.by_key(key)
        assert row is not None
        return row.id

    def state(self, row_id: int) -> str:
        row = self.outbox.row(row_id)
        assert row is not None
        return row.state

    async def drive(
        self, seconds: float, step: float = 10.0, until: Callable[[], bool] | None = None
    ) -> int:
        """Run the worker every ``step`` seconds of fake time for ``seconds``;
        returns how many rows it claimed."""
        claimed = 0
        elapsed = 0.0
        while elapsed < seconds and not (until is not None and until()):
            claimed += await self.worker().run_once()
            self.clock.advance(step)
            elapsed += step
        return claimed


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(TOKENS) as standin:
        yield standin


def slack_settings(slack: SlackStandIn, tmp_path: Path) -> SlackSettings:
    settings = settings_for(tmp_path / "unused.db", slack.api_url).slack
    assert settings is not None
    return settings


@pytest.fixture
def slack_rig(slack: SlackStandIn, tmp_path: Path) -> Iterator[Rig]:
    settings = slack_settings(slack, tmp_path)
    sender = SlackSender(settings, make_sender_client(slack.api_url, timeout=API_TIMEOUT))
    rig = Rig(tmp_path / "outbox.db", {"slack": sender})
    yield rig
    rig.db.close()


def recipient() -> str:
    return f"{ANNES_TEAM}:{DSL}"


# --- Slack -----------------------------------------------------------------------------------


def test_slack_recipients_carry_the_workspace(slack: SlackStandIn, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "unused.db", slack.api_url)
    assert slack_recipient(settings, "st-annes", "U0456") == f"{ANNES_TEAM}:U0456"
    assert slack_recipient(settings, "crossflatts", "slack:U0456") == f"{CROSS_TEAM}:U0456"
    with pytest.raises(Exception, match="no Slack workspace"):
        slack_recipient(settings, "st-nowhere", "U0456")


async def test_an_alert_is_delivered_once_as_a_dm_with_its_key(
    slack: SlackStandIn, slack_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    row_id = slack_rig.enqueue("concern:C-2026-0001:alert:slack:U0DSL", "slack", recipient())
    assert await slack_rig.worker().run_once() == 1
    assert slack_rig.state(row_id) == "sent"
    [opened] = slack.calls_to("conversations.open")
    assert opened.params["users"] == DSL and opened.token == ANNES_TOKEN
    [post] = slack.calls_to("chat.postMessage")
    assert post.token == ANNES_TOKEN
    assert post.params["channel"] == "D" + DSL
    assert post.params["unfurl_links"] is False and post.params["unfurl_media"] is False
    assert post.params["metadata"] == {
        "event_type": METADATA_EVENT,
        "event_payload": {"key": "concern:C-2026-0001:alert:slack:U0DSL"},
    }
    assert post.params["blocks"] == slack_convert.render(alert())["blocks"]
    [message] = slack.posted("concern:C-2026-0001:alert:slack:U0DSL")
    row = slack_rig.outbox.row(row_id)
    assert row is not None and row.platform_ref == message["ts"]
    assert SECRET in post.dumps()
    assert SECRET not in caplog.text
    # The DM is remembered: a second message to the same person opens nothing.
    slack_rig.enqueue("concern:C-2026-0002:alert:slack:U0DSL", "slack", recipient())
    await slack_rig.worker().run_once()
    assert len(slack.calls_to("conversations.open")) == 1
    assert slack.posted_keys() == {
        "concern:C-2026-0001:alert:slack:U0DSL": 1,
        "concern:C-2026-0002:alert:slack:U0DSL": 1,
    }


async def test_a_bare_user_id_goes_to_the_workspace_that_knows_them(
    slack: SlackStandIn, slack_rig: Rig
) -> None:
    slack.error("conversations.open", "user_not_found")  # not in the first workspace
    row_id = slack_rig.enqueue("k1", "slack", DSL)
    await slack_rig.worker().run_once()
    assert slack_rig.state(row_id) == "sent"
    [post] = slack.calls_to("chat.postMessage")
    assert post.token == CROSS_TOKEN


@pytest.mark.parametrize(
    ("outage", "accepted"),
    [
        pytest.param({"status": 500}, False, id="500"),
        pytest.param({"status": 500, "accept": True}, True, id="500-but-posted"),
        pytest.param({"status": 429, "retry_after": 30}, False, id="429"),
        pytest.param({"status": None}, False, id="hang"),
        pytest.param({"status": None, "accept": True}, True, id="hang-but-posted"),
    ],
)
async def test_ten_minutes_of_slack_trouble_then_exactly_one_delivery(
    slack: SlackStandIn, slack_rig: Rig, outage: dict[str, Any], accepted: bool
) -> None:
    slack_rig.enqueue("earlier", "slack", recipient())  # the DSL has had alerts before
    await slack_rig.worker().run_once()
    key = "concern:C-2026-0003:alert:slack:U0DSL"
    row_id = slack_rig.enqueue(key, "slack", recipient())
    slack.outage(**outage)
    claimed = await slack_rig.drive(TEN_MINUTES)
    assert claimed >= 5  # it kept trying
    row = slack_rig.outbox.row(row_id)
    assert row is not None and row.state == "pending" and row.attempts == claimed
    assert slack.posted_keys().get(key, 0) == (1 if accepted else 0)
    posts = [c for c in slack.calls_to("chat.postMessage") if key in c.dumps()]
    if outage["status"] == 429:
        # Nothing was delivered, so each attempt posts again, never sooner than asked.
        assert len(posts) == claimed <= TEN_MINUTES / 30 + 1
        assert not row.uncertain
    else:
        # The first attempt may have delivered it: every later one looks first, and
        # the look fails as long as Slack does, so nothing is posted twice.
        assert len(posts) == 1
        assert row.uncertain
    slack.recover()
    await slack_rig.drive(TEN_MINUTES, until=lambda: slack_rig.state(row_id) == "sent")
    assert slack_rig.state(row_id) == "sent"
    assert slack.posted_keys() == {"earlier": 1, key: 1}
    await slack_rig.drive(TEN_MINUTES)  # and nothing more, ever
    assert slack.posted_keys() == {"earlier": 1, key: 1}
    row = slack_rig.outbox.row(row_id)
    assert row is not None and row.platform_ref == slack.posted(key)[0]["ts"]


async def test_429_waits_at_least_retry_after(slack: SlackStandIn, slack_rig: Rig) -> None:
    row_id = slack_rig.enqueue("k1", "slack", recipient())
    slack.outage(429, retry_after=45)
    await slack_rig.worker().run_once()
    row = slack_rig.outbox.row(row_id)
    assert row is not None
    due = datetime.fromisoformat(row.next_attempt_at) - slack_rig.clock()
    assert due.total_seconds() >= 45
    slack.recover()
    slack_rig.clock.advance(44)
    assert await slack_rig.worker().run_once() == 0
    slack_rig.clock.advance(1)
    assert await slack_rig.worker().run_once() == 1
    assert slack_rig.state(row_id) == "sent"


async def test_a_crash_after_slack_accepted_it_is_not_sent_again(
    slack: SlackStandIn, slack_rig: Rig
) -> None:
    key = "concern:C-2026-0004:alert:slack:U0DSL"
    row_id = slack_rig.enqueue(key, "slack", recipient())
    [row] = slack_rig.outbox.claim_due(10, lease=60)  # the row is 'sending'...
    sender = slack_rig.senders["slack"]
    result = await sender.send(row.recipient, row.message, row.dedupe_key)
    assert result.ok  # ...Slack has the message, and the process dies before mark_sent
    assert slack.posted_keys() == {key: 1}
    slack_rig.clock.advance(30)
    assert await slack_rig.worker().run_once() == 0  # the lease still holds
    slack_rig.clock.advance(31)
    assert await slack_rig.worker().run_once() == 1
    assert len(slack.calls_to("conversations.history")) == 1
    assert len(slack.calls_to("chat.postMessage")) == 1  # not sent again
    settled = slack_rig.outbox.row(row_id)
    assert settled is not None and settled.state == "sent"
    assert settled.platform_ref == result.platform_ref


async def test_a_crash_before_slack_had_it_sends_it_once(
    slack: SlackStandIn, slack_rig: Rig
) -> None:
    key = "concern:C-2026-0005:alert:slack:U0DSL"
    other = "concern:C-2026-0006:alert:slack:U0DSL"
    row_id = slack_rig.enqueue(key, "slack", recipient())
    slack_rig.enqueue(other, "slack", recipient())
    slack_rig.outbox.claim_due(1, lease=60)  # claimed, then the process died
    await slack_rig.worker().run_once()  # the other row goes meanwhile
    slack_rig.clock.advance(61)
    await slack_rig.worker().run_once()
    assert slack_rig.state(row_id) == "sent"
    [history] = slack.calls_to("conversations.history")
    assert history.params["include_all_metadata"] == "1"
    assert history.params["limit"] == "50"
    assert slack.posted_keys() == {key: 1, other: 1}


async def test_slack_refusing_for_good_ends_the_row(
    slack: SlackStandIn, slack_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    row_id = slack_rig.enqueue("concern:C-2026-0007:alert:slack:U0GONE", "slack", "T0ANNES:U0GONE")
    slack.error("chat.postMessage", "account_inactive")
    await slack_rig.worker().run_once()
    row = slack_rig.outbox.row(row_id)
    assert row is not None and row.state == "dead"
    assert row.last_error == "Slack answered account_inactive (HTTP 200)"
    assert "C-2026-0007" not in caplog.text and SECRET not in caplog.text
    unknown = slack_rig.enqueue("k-unknown-team", "slack", "T0NOWHERE:U1")
    await slack_rig.worker().run_once()
    assert slack_rig.state(unknown) == "dead"


# --- Teams -----------------------------------------------------------------------------------


@pytest.fixture
async def teams() -> AsyncIterator[TeamsStandIn]:
    async with TeamsStandIn() as standin:
        yield standin


def store_reference(operations: Operations, teams: TeamsStandIn) -> None:
    """The 1:1 reference the Teams app keeps when someone writes to the bot."""
    reference = ConversationReference(
        activity_id=None,
        user=ChannelAccount(id=STAFF_ID, name="Sam Staff", aad_object_id=STAFF_AAD),
        bot=ChannelAccount(id=BOT_ID, name="guidebot"),
        conversation=ConversationAccount(
            id=PERSONAL, conversation_type="personal", tenant_id=ANNES_TENANT
        ),
        channel_id="msteams",
        locale="en-GB",
        service_url=teams.service_url,
    )
    operations.remember_conversation(
        "teams",
        "user",
        STAFF_AAD,
        "st-annes",
        PERSONAL,
        json.dumps(reference.serialize(), sort_keys=True),
        tenant_id=ANNES_TENANT,
        service_url=teams.service_url,
    )


@pytest.fixture
def teams_rig(teams: TeamsStandIn, tmp_path: Path) -> Iterator[Rig]:
    adapter = CloudAdapter(
        create_authentication(teams.metadata_url, FixedTokenCredentialFactory(APP_ID))
    )
    rig = Rig(tmp_path / "outbox.db", {})
    rig.senders["teams"] = TeamsSender(adapter, rig.operations, app_id=APP_ID, timeout=API_TIMEOUT)
    store_reference(rig.operations, teams)
    yield rig
    rig.db.close()


@pytest.mark.parametrize("status", [502, 429, None])
async def test_ten_minutes_of_teams_trouble_then_exactly_one_delivery(
    teams: TeamsStandIn, teams_rig: Rig, status: int | None
) -> None:
    row_id = teams_rig.enqueue("concern:C-2026-0008:alert:teams:x", "teams", STAFF_AAD)
    teams.outage(status, retry_after="20" if status == 429 else None)
    claimed = await teams_rig.drive(TEN_MINUTES, step=20.0)
    assert claimed >= 5
    assert teams.delivered() == []
    row = teams_rig.outbox.row(row_id)
    assert row is not None and row.state == "pending"
    teams.recover()
    await teams_rig.drive(TEN_MINUTES, until=lambda: teams_rig.state(row_id) == "sent")
    await teams_rig.drive(120)
    [delivered] = teams.delivered()
    assert delivered.conversation_id == PERSONAL and delivered.kind == "send"
    assert SECRET in delivered.card_text
    row = teams_rig.outbox.row(row_id)
    assert row is not None and row.state == "sent"
    assert (row.platform_ref or "").startswith("1:standin-")


async def test_teams_403_ends_the_row_and_marks_them_unreachable(
    teams: TeamsStandIn, teams_rig: Rig
) -> None:
    row_id = teams_rig.enqueue("k1", "teams", STAFF_AAD)
    teams.fail(403)
    await teams_rig.worker().run_once()
    assert teams_rig.state(row_id) == "dead"
    stored = teams_rig.operations.conversation("teams", "user", STAFF_AAD)
    assert stored is not None and stored.unreachable_since is not None
    later = teams_rig.enqueue("k2", "teams", STAFF_AAD)  # no second try at the connector
    calls = len(teams.activity_calls())
    await teams_rig.worker().run_once()
    assert teams_rig.state(later) == "dead" and len(teams.activity_calls()) == calls


async def test_teams_without_a_reference_is_dead_and_logged(
    teams: TeamsStandIn, teams_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    row_id = teams_rig.enqueue("k1", "teams", "teams:5c6d7e8f-0000-4000-8000-0000000000aa")
    await teams_rig.worker().run_once()
    row = teams_rig.outbox.row(row_id)
    assert row is not None and (row.state, row.last_error) == (
        "dead",
        "Teams user no conversation reference",
    )
    assert "no conversation reference" in caplog.text
    assert teams.activity_calls() == []


async def test_teams_cannot_look_so_a_crash_resends_that_one_message(
    teams: TeamsStandIn, teams_rig: Rig
) -> None:
    """Documented: the Bot Connector cannot be asked what arrived."""
    row_id = teams_rig.enqueue("k1", "teams", STAFF_AAD)
    [row] = teams_rig.outbox.claim_due(1, lease=60)
    assert (await teams_rig.senders["teams"].send(row.recipient, row.message, row.dedupe_key)).ok
    teams_rig.clock.advance(61)
    await teams_rig.worker().run_once()
    assert teams_rig.state(row_id) == "sent"
    assert len(teams.delivered()) == 2


# --- the server -------------------------------------------------------------------------------


def test_the_server_refuses_to_start_without_the_key(
    slack: SlackStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GUIDEBOT_SECRET_KEY", raising=False)
    database = tmp_path / "never.db"
    with pytest.raises(ConfigError, match="GUIDEBOT_SECRET_KEY"):
        build_app(settings_for(database, slack.api_url), database)
    assert not database.exists()  # refused before anything was opened (or bound)
    with pytest.raises(ConfigError, match="GUIDEBOT_SECRET_KEY"):
        asyncio.run(run(settings_for(database, slack.api_url), asyncio.Event()))
    assert not database.exists()


async def test_the_server_delivers_what_is_queued_at_once_and_reports_it(
    slack: SlackStandIn, sample_db_copy: Path
) -> None:
    sweeps: list[float] = []
    settings = settings_for(sample_db_copy, slack.api_url)
    server = Guidebot(
        settings,
        outbox_web_client=make_sender_client(slack.api_url, timeout=2.0),
        sweep=lambda: sweeps.append(1.0),
        sweep_interval=0.01,
    )
    async with server:
        outbox = server.app[OUTBOX_KEY]
        assert outbox.enqueue(
            "concern:C-2026-0010:alert:slack:U0DSL", "slack", recipient(), alert()
        )
        # Woken by the enqueue: long before the next poll (seconds away).
        await slack.wait_for(lambda: bool(slack.posted()), timeout=2.0)
        assert outbox.enqueue("k-gone", "slack", "T0NOWHERE:U1", alert())
        async with asyncio.timeout(2):
            while outbox.counts()["dead"] != 1:
                await asyncio.sleep(0.01)
        status, health = await server.get("/healthz")
        assert (status, health["outbox"]) == (200, {"pending": 0, "dead": 1})
        slack.outage(500)
        assert outbox.enqueue("k-later", "slack", recipient(), alert())
        async with asyncio.timeout(2):
            while outbox.counts()["pending"] != 1:
                await asyncio.sleep(0.01)
        status, health = await server.get("/healthz")
        assert health["outbox"] == {"pending": 1, "dead": 1}
        assert len(sweeps) >= 2
    slack.recover()
    assert slack.posted_keys() == {"concern:C-2026-0010:alert:slack:U0DSL": 1}
