"""Socket Mode end to end: the real server connects out to the stand-in's
websocket (found through ``apps.connections.open``), envelopes are pushed down
it, and the acknowledgements and Web API calls are observed."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.messages import Action
from tests.support import (
    APP_TOKEN,
    CHANNEL,
    DM,
    STAFF,
    STRANGER_TEAM,
    TOKENS,
    Guidebot,
    block_actions,
    command_payload,
    dm_event,
    envelope,
    settings_for,
)
from tests.support.slack_standin import SlackStandIn

FRIEND_REQUEST = "can I accept a friend request from an ex-pupil?"
CLAUSE = "accept 'friend requests' from"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(TOKENS) as standin:
        yield standin


@pytest.fixture
async def guidebot(slack: SlackStandIn, sample_db_copy: Path) -> AsyncIterator[Guidebot]:
    settings = settings_for(sample_db_copy, slack.api_url, transport="socket")
    async with Guidebot(settings) as server:
        await slack.wait_connected()
        yield server


async def test_it_connects_with_the_app_token(guidebot: Guidebot, slack: SlackStandIn) -> None:
    [opened] = slack.calls_to("apps.connections.open")
    assert opened.token == APP_TOKEN
    assert slack.connections == 1


async def test_a_dm_delivered_twice_is_acked_twice_and_answered_once(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    payload = dm_event(FRIEND_REQUEST)
    first = envelope("events_api", payload)
    retry = envelope("events_api", payload, retry_attempt=1, retry_reason="timeout")

    await slack.push(first)
    assert (await slack.wait_ack(first["envelope_id"])) == {"envelope_id": first["envelope_id"]}
    await guidebot.idle()
    await slack.push(retry)
    await slack.wait_ack(retry["envelope_id"])
    await guidebot.idle()

    [post] = slack.calls_to("chat.postMessage")
    assert post.params["channel"] == DM
    assert CLAUSE in json.dumps(post.params["blocks"], ensure_ascii=False)


async def test_a_slash_command_is_acked_and_answered_ephemerally(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    command = envelope("slash_commands", command_payload(FRIEND_REQUEST))
    await slack.push(command)
    await slack.wait_ack(command["envelope_id"])
    await guidebot.idle()
    [ephemeral] = slack.delivered("chat.postEphemeral")
    assert (ephemeral.params["user"], ephemeral.params["channel"]) == (STAFF, CHANNEL)
    assert not slack.calls_to("chat.postMessage")


async def test_a_feedback_click_is_acked_and_stored(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    await slack.push(envelope("events_api", dm_event(FRIEND_REQUEST)))
    [answer] = await slack.wait_delivered("chat.postMessage")
    await guidebot.idle()
    question_id = next(
        element["value"]
        for block in answer.params["blocks"]
        for element in block.get("elements", [])
        if element.get("action_id") == Action.HELPFUL.value
    )
    click = envelope("interactive", block_actions(Action.HELPFUL.value, question_id))
    await slack.push(click)
    await slack.wait_ack(click["envelope_id"])
    await guidebot.idle()
    assert guidebot.operations.feedback(int(question_id)) is True


async def test_an_unknown_team_is_acked_and_ignored(
    guidebot: Guidebot, slack: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await guidebot.idle()
    calls = len(slack.calls)
    stranger = envelope("events_api", dm_event("Zanzibar-7f3c", team=STRANGER_TEAM))
    await slack.push(stranger)
    await slack.wait_ack(stranger["envelope_id"])  # acked, so Slack does not retry
    await guidebot.idle()
    assert len(slack.calls) == calls
    assert "Zanzibar-7f3c" not in caplog.text


async def test_healthz_reports_socket_mode_and_there_is_no_http_endpoint(
    guidebot: Guidebot,
) -> None:
    status, health = await guidebot.get("/healthz")
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
    status, _ = await guidebot.post("{}", {"Content-Type": "application/json"})
    assert status in (404, 405)
