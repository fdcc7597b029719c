"""The outbox's Slack sender posting to a channel (the weekly HR digest), over
real HTTP to the Slack stand-in: no DM is opened, and an earlier delivery is
found in that channel's history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.slack.sender import METADATA_EVENT, SlackSender, is_channel, make_sender_client
from bot.messages import Reply
from bot.outbox import OutgoingMessage, reply_to_data
from tests.support import ANNES_TEAM, ANNES_TOKEN, CROSS_TOKEN, TOKENS, settings_for
from tests.support.slack_standin import SlackStandIn

CHANNEL = "C0HRDIGEST"
KEY = "digest:st-annes:2026-W43:channel-C0HRDIGEST"


def digest() -> OutgoingMessage:
    return OutgoingMessage(reply_to_data(Reply("Weekly digest for St Anne's", kind="notice")))


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(TOKENS) as standin:
        yield standin


def sender(slack: SlackStandIn, tmp_path: Path, *, one_workspace: bool = False) -> SlackSender:
    settings = settings_for(tmp_path / "unused.db", slack.api_url).slack
    assert settings is not None
    if one_workspace:
        settings = replace(settings, workspaces=settings.workspaces[:1])
    return SlackSender(settings, make_sender_client(slack.api_url, timeout=2.0))


def test_channel_ids_are_told_from_user_ids() -> None:
    assert is_channel("C0HRDIGEST") and is_channel("G0PRIVATE")
    assert not is_channel("U0STAFF") and not is_channel("W0ENTERPRISE")


async def test_a_channel_is_posted_to_directly_and_found_in_its_history(
    slack: SlackStandIn, tmp_path: Path
) -> None:
    out = sender(slack, tmp_path)
    recipient = f"{ANNES_TEAM}:{CHANNEL}"
    result = await out.send(recipient, digest(), KEY)
    assert result.ok and result.platform_ref
    assert slack.calls_to("conversations.open") == []
    [post] = slack.calls_to("chat.postMessage")
    assert post.params["channel"] == CHANNEL and post.token == ANNES_TOKEN
    assert post.params["metadata"] == {"event_type": METADATA_EVENT, "event_payload": {"key": KEY}}
    assert [m["ts"] for m in slack.posted(KEY)] == [result.platform_ref]
    # After a crash: the earlier delivery is found in the channel, not sent again.
    fresh = sender(slack, tmp_path)
    assert await fresh.find_sent(recipient, KEY) == result.platform_ref
    [history] = slack.calls_to("conversations.history")
    assert history.params["channel"] == CHANNEL and history.token == ANNES_TOKEN
    assert await fresh.find_sent(recipient, "digest:st-annes:2026-W44:channel-C0HRDIGEST") is None


async def test_a_bare_channel_needs_a_single_workspace(slack: SlackStandIn, tmp_path: Path) -> None:
    refused = await sender(slack, tmp_path).send(CHANNEL, digest(), KEY)
    assert not refused.ok and refused.permanent
    assert "workspace" in refused.error
    assert slack.calls_to("chat.postMessage") == []
    accepted = await sender(slack, tmp_path, one_workspace=True).send(CHANNEL, digest(), KEY)
    assert accepted.ok
    [post] = slack.calls_to("chat.postMessage")
    assert post.params["channel"] == CHANNEL and post.token != CROSS_TOKEN


async def test_a_person_still_gets_a_dm(slack: SlackStandIn, tmp_path: Path) -> None:
    result = await sender(slack, tmp_path).send(f"{ANNES_TEAM}:U0HR", digest(), "digest:x:hr")
    assert result.ok
    [opened] = slack.calls_to("conversations.open")
    assert opened.params["users"] == "U0HR"
    [post] = slack.calls_to("chat.postMessage")
    assert post.params["channel"] == "DU0HR"


async def test_not_in_channel_is_retried_not_given_up(slack: SlackStandIn, tmp_path: Path) -> None:
    slack.error("chat.postMessage", "not_in_channel")
    result = await sender(slack, tmp_path).send(f"{ANNES_TEAM}:{CHANNEL}", digest(), KEY)
    assert not result.ok and not result.permanent
    assert "not_in_channel" in result.error
