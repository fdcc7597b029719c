"""End to end over real HTTP on loopback: requests signed as Slack signs them go
into the real server (``build_app`` on 127.0.0.1), and its Web API calls go to
the Slack stand-in through the real ``AsyncWebClient``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.app import STALE_AFTER
from bot.messages import Action
from tests.support import (
    ANNES_TOKEN,
    CHANNEL,
    CONTACT,
    CROSS_TEAM,
    CROSS_TOKEN,
    DM,
    SIGNING_SECRET,
    STAFF,
    STRANGER_TEAM,
    TOKENS,
    Guidebot,
    action_form,
    block_actions,
    command_form,
    dm_event,
    home_opened,
    mention_event,
    settings_for,
)
from tests.support.signing import signed_headers, slack_signature
from tests.support.slack_standin import Call, SlackStandIn

FRIEND_REQUEST = "can I accept a friend request from an ex-pupil?"
CLAUSE = "accept 'friend requests' from"
SOURCE = "Social Media Policy"
UNANSWERABLE = "what is the wifi password for the staff room?"
SECRET_WORD = "Zanzibar-7f3c"
"""Put in bodies that must never reach a log."""
NOW = 1_700_000_000
"""The server's clock where a test sets it: far from the real time, so only
the injected clock can make requests signed at NOW fresh."""


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(TOKENS) as standin:
        yield standin


@pytest.fixture
async def guidebot(slack: SlackStandIn, sample_db_copy: Path) -> AsyncIterator[Guidebot]:
    async with Guidebot(settings_for(sample_db_copy, slack.api_url)) as server:
        yield server


def blocks_of(call: Call) -> str:
    return json.dumps(call.params.get("blocks"), ensure_ascii=False)


def button_value(call: Call, action: Action) -> str:
    for block in call.params["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action.value:
                return str(element["value"])
    raise AssertionError(f"no {action} button in {blocks_of(call)}")


async def ask(guidebot: Guidebot, slack: SlackStandIn, text: str) -> Call:
    """A DM question, answered: the chat.postMessage that carried the answer."""
    before = len(slack.delivered("chat.postMessage"))
    status, _ = await guidebot.send_event(dm_event(text))
    assert status == 200
    await guidebot.idle()
    posts = slack.delivered("chat.postMessage")
    assert len(posts) == before + 1
    return posts[-1]


# --- answering -----------------------------------------------------------------------------------


async def test_a_direct_message_gets_the_clause_quoted_with_its_source(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    status, body = await guidebot.send_event(dm_event(FRIEND_REQUEST))
    assert (status, body) == (200, "")
    await guidebot.idle()
    [post] = slack.delivered("chat.postMessage")
    assert post.params["channel"] == DM
    assert "thread_ts" not in post.params
    assert CLAUSE in blocks_of(post)
    assert SOURCE in blocks_of(post)
    assert post.params["unfurl_links"] is False
    assert post.params["unfurl_media"] is False
    assert post.token == ANNES_TOKEN
    assert not slack.calls_to("chat.postEphemeral")


async def test_each_workspace_is_its_own_school_with_its_own_token(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    await guidebot.send_event(dm_event(FRIEND_REQUEST, team=CROSS_TEAM))
    await guidebot.idle()
    [post] = slack.delivered("chat.postMessage")
    assert post.token == CROSS_TOKEN
    assert "Crossflatts" in blocks_of(post)
    assert CLAUSE not in blocks_of(post)  # that is St Anne's wording


async def test_policy_command_answers_only_the_asker(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    status, body = await guidebot.send_form(command_form(FRIEND_REQUEST))
    assert (status, body) == (200, "")
    await guidebot.idle()
    [ephemeral] = slack.delivered("chat.postEphemeral")
    assert ephemeral.params["user"] == STAFF
    assert ephemeral.params["channel"] == CHANNEL
    assert CLAUSE in blocks_of(ephemeral)
    assert not slack.calls_to("chat.postMessage")


async def test_a_command_mentioning_payload_is_still_a_command(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    # Bolt's own form parser takes any body containing "payload" for an
    # interactivity payload; the body we verified and parsed is used instead.
    status, _ = await guidebot.send_form(command_form("is the payload of a phone backup data?"))
    assert status == 200
    await guidebot.idle()
    assert len(slack.delivered("chat.postEphemeral")) == 1


async def test_policy_command_where_the_bot_is_not_a_member_uses_the_response_url(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    slack.error("chat.postEphemeral", "channel_not_found")
    await guidebot.send_form(command_form(FRIEND_REQUEST, response_url=slack.response_url("c1")))
    await guidebot.idle()
    [response] = slack.calls_to("response_url:c1")
    assert response.params["response_type"] == "ephemeral"
    assert CLAUSE in blocks_of(response)
    assert not slack.calls_to("chat.postMessage")


async def test_a_mention_is_answered_in_a_thread(guidebot: Guidebot, slack: SlackStandIn) -> None:
    event = mention_event(FRIEND_REQUEST)
    await guidebot.send_event(event)
    await guidebot.idle()
    [post] = slack.delivered("chat.postMessage")
    assert post.params["channel"] == CHANNEL
    assert post.params["thread_ts"] == event["event"]["ts"]
    assert CLAUSE in blocks_of(post)


async def test_bot_messages_and_edits_are_ignored_without_a_trace(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    own = dm_event(FRIEND_REQUEST)
    own["event"]["bot_id"] = "BGUIDEBOT"
    edit = dm_event(FRIEND_REQUEST)
    edit["event"]["subtype"] = "message_changed"
    before = guidebot.dump()
    for event in (own, edit):
        assert (await guidebot.send_event(event))[0] == 200
    await guidebot.idle()
    assert not slack.calls_to("chat.postMessage")
    assert guidebot.dump() == before


# --- buttons -------------------------------------------------------------------------------------


async def test_feedback_clicks_are_stored_and_thanked(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    answer = await ask(guidebot, slack, FRIEND_REQUEST)
    question_id = int(button_value(answer, Action.HELPFUL))
    assert guidebot.operations.feedback(question_id) is None

    click = block_actions(Action.NOT_HELPFUL.value, str(question_id))
    status, body = await guidebot.send_form(action_form(click))
    assert (status, body) == (200, "")
    await guidebot.idle()
    assert guidebot.operations.feedback(question_id) is False
    [thanks] = slack.delivered("chat.postEphemeral")
    assert (thanks.params["user"], thanks.params["channel"]) == (STAFF, DM)

    await guidebot.send_form(action_form(block_actions(Action.HELPFUL.value, str(question_id))))
    await guidebot.idle()
    assert guidebot.operations.feedback(question_id) is True


async def test_a_question_passed_on_reaches_the_contact_with_mentions_neutralised(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    typed = f"<!here> {UNANSWERABLE} <@U0HEAD> &lt;!channel&gt; <https://evil.example|wifi>"
    reply = await ask(guidebot, slack, typed)
    value = button_value(reply, Action.PASS_TO_CONTACT)

    await guidebot.send_form(action_form(block_actions(Action.PASS_TO_CONTACT.value, value)))
    await guidebot.idle()
    [forwarded] = [c for c in slack.delivered("chat.postMessage") if c.params["channel"] == CONTACT]
    shown = blocks_of(forwarded) + forwarded.params["text"]
    assert "wifi password" in shown
    for live in ("<!here>", "<!channel>", "<@U0HEAD>", "<https://evil.example"):
        assert live not in shown
    assert "https://evil.example" in shown  # the real address, in plain sight
    assert f"<@{STAFF}>" in shown  # the one deliberate mention: who asked
    [confirmation] = slack.delivered("chat.postEphemeral")
    assert confirmation.params["user"] == STAFF


async def test_a_pass_on_that_cannot_be_delivered_is_not_reported_as_done(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    value = button_value(await ask(guidebot, slack, UNANSWERABLE), Action.PASS_TO_CONTACT)
    slack.error("chat.postMessage", "user_not_found")
    await guidebot.send_form(action_form(block_actions(Action.PASS_TO_CONTACT.value, value)))
    await guidebot.idle()
    [notice] = slack.delivered("chat.postEphemeral")
    assert "could not pass your question" in notice.params["text"]
    assert "I have passed your question" not in notice.params["text"]

    # The failure was undone, so pressing the button again (Slack reachable now) works.
    await guidebot.send_form(action_form(block_actions(Action.PASS_TO_CONTACT.value, value)))
    await guidebot.idle()
    forwarded = slack.delivered("chat.postMessage")
    assert [c.params["channel"] for c in forwarded][-1] == CONTACT
    assert "I have passed your question" in slack.delivered("chat.postEphemeral")[-1].params["text"]


async def test_report_concern_from_app_home_opens_the_concern_form(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    await guidebot.send_form(
        action_form(block_actions(Action.REPORT_CONCERN.value, "home", channel=None))
    )
    await guidebot.idle()
    [view] = slack.views("views.open")  # the form, in a modal, not a message
    assert view["type"] == "modal"
    assert slack.delivered("chat.postMessage") == []


async def test_ask_a_question_from_app_home_sends_a_prompt(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    await guidebot.send_form(
        action_form(block_actions(Action.ASK_QUESTION.value, "home", channel=None))
    )
    await guidebot.idle()
    [prompt] = slack.delivered("chat.postMessage")
    assert prompt.params["channel"] == STAFF
    assert "Type your question here" in prompt.params["text"]


# --- App Home ------------------------------------------------------------------------------------


async def test_app_home_lists_recent_questions_neutralised(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    await ask(guidebot, slack, f"<!channel> {FRIEND_REQUEST} <@U0HEAD>")
    await ask(guidebot, slack, f"&lt;!everyone&gt; {UNANSWERABLE}")

    await guidebot.send_event(home_opened())
    await guidebot.idle()
    [published] = slack.delivered("views.publish")
    assert published.params["user_id"] == STAFF
    view = json.dumps(published.params["view"], ensure_ascii=False)
    assert published.params["view"]["type"] == "home"
    assert "friend request from an ex-pupil" in view
    assert "wifi password" in view
    for live in ("<!channel>", "<!everyone>", "<@U0HEAD>"):
        assert live not in view
    assert "@channel" in view


async def test_app_home_messages_tab_publishes_nothing(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    event = home_opened()
    event["event"]["tab"] = "messages"
    await guidebot.send_event(event)
    await guidebot.idle()
    assert not slack.calls_to("views.publish")


# --- workspaces ----------------------------------------------------------------------------------


async def test_a_team_not_in_the_configuration_gets_nothing(
    guidebot: Guidebot, slack: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await guidebot.idle()  # the start-up auth.test calls
    calls_before, rows_before = len(slack.calls), guidebot.dump()
    for body, kind in (
        (json.dumps(dm_event(f"{SECRET_WORD} {FRIEND_REQUEST}", team=STRANGER_TEAM)), "json"),
        (
            command_form(SECRET_WORD, team=STRANGER_TEAM, response_url=slack.response_url("x")),
            "form",
        ),
        (
            action_form(
                block_actions(
                    "feedback_helpful",
                    "1",
                    team=STRANGER_TEAM,
                    response_url=slack.response_url("y"),
                )
            ),
            "form",
        ),
    ):
        content_type = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
        status, _ = await guidebot.send(body, content_type=content_type)
        assert status == 200  # acknowledged, so Slack does not retry
    await guidebot.idle()
    assert len(slack.calls) == calls_before
    assert guidebot.dump() == rows_before
    assert STRANGER_TEAM in caplog.text
    assert SECRET_WORD not in caplog.text


# --- retries -------------------------------------------------------------------------------------


async def test_a_retried_event_is_answered_once(guidebot: Guidebot, slack: SlackStandIn) -> None:
    event = dm_event(FRIEND_REQUEST)
    assert (await guidebot.send_event(event))[0] == 200
    await guidebot.idle()
    assert (await guidebot.send_event(event, retry_num=1))[0] == 200
    assert (await guidebot.send_event(event, retry_num=2))[0] == 200
    await guidebot.idle()
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_an_event_and_its_retry_arriving_together_are_answered_once(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    event = dm_event(FRIEND_REQUEST)
    statuses = await asyncio.gather(
        guidebot.send_event(event), guidebot.send_event(event, retry_num=1)
    )
    assert [s for s, _ in statuses] == [200, 200]
    await guidebot.idle()
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_an_event_whose_first_attempt_failed_is_answered_on_the_retry(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    slack.fail("chat.postMessage", status=500, times=2)  # the first try and our one retry
    event = dm_event(FRIEND_REQUEST)
    await guidebot.send_event(event)
    await guidebot.idle()
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 500]
    assert not slack.delivered("chat.postMessage")

    await guidebot.send_event(event, retry_num=1)
    await guidebot.idle()
    await guidebot.send_event(event, retry_num=2)
    await guidebot.idle()
    [answer] = slack.delivered("chat.postMessage")
    assert CLAUSE in blocks_of(answer)
    assert len(slack.calls_to("chat.postMessage")) == 3


async def test_a_single_server_error_is_retried_at_once(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    slack.fail("chat.postMessage", status=503, times=1)
    await guidebot.send_event(dm_event(FRIEND_REQUEST))
    await guidebot.idle()
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [503, 200]


async def test_a_rate_limit_is_waited_out_and_answered_once(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    slack.rate_limit("chat.postMessage", retry_after=1)
    await guidebot.send_event(dm_event(FRIEND_REQUEST))
    await guidebot.idle()
    limited, delivered = slack.calls_to("chat.postMessage")
    assert (limited.status, delivered.status) == (429, 200)
    assert delivered.at - limited.at >= 1.0  # Retry-After honoured
    assert len(slack.delivered("chat.postMessage")) == 1


async def test_a_post_that_times_out_is_not_repeated_and_a_retry_answers(
    slack: SlackStandIn, sample_db_copy: Path
) -> None:
    slack.hang("chat.postMessage", 5.0, times=1)
    settings = settings_for(sample_db_copy, slack.api_url)
    async with Guidebot(settings, api_timeout=0.3) as guidebot:
        event = dm_event(FRIEND_REQUEST)
        await guidebot.send_event(event)
        await guidebot.idle()
        assert len(slack.calls_to("chat.postMessage")) == 1  # not retried by us
        await guidebot.send_event(event, retry_num=1)
        await guidebot.idle()
        assert len(slack.delivered("chat.postMessage")) == 1
        assert len(slack.calls_to("chat.postMessage")) == 2


async def test_a_stuck_first_attempt_is_taken_over_only_once_stale(
    slack: SlackStandIn, sample_db_copy: Path
) -> None:
    now = [float(NOW)]
    settings = settings_for(sample_db_copy, slack.api_url)
    async with Guidebot(settings, clock=lambda: now[0]) as guidebot:
        event = dm_event(FRIEND_REQUEST)
        body = json.dumps(event)
        # A worker claimed the event and died (a crash, a restart): still "handling".
        assert guidebot.operations.claim_event("slack", event["event_id"], STALE_AFTER)

        await guidebot.send(body, content_type="application/json", retry_num=1, timestamp=NOW)
        await guidebot.idle()
        assert not slack.calls_to("chat.postMessage")  # it might still be working

        now[0] += STALE_AFTER.total_seconds() + 1
        later = int(now[0])
        await guidebot.send(body, content_type="application/json", retry_num=2, timestamp=later)
        await guidebot.idle()
        assert len(slack.delivered("chat.postMessage")) == 1


# --- verification --------------------------------------------------------------------------------


@pytest.fixture
async def frozen(slack: SlackStandIn, sample_db_copy: Path) -> AsyncIterator[Guidebot]:
    settings = settings_for(sample_db_copy, slack.api_url)
    async with Guidebot(settings, clock=lambda: float(NOW)) as server:
        await server.idle()
        yield server


def _secret_event() -> str:
    return json.dumps(dm_event(f"{SECRET_WORD} {FRIEND_REQUEST}"))


FORM = "application/x-www-form-urlencoded"


def _signed(
    body: str | bytes, timestamp: int = NOW, content_type: str = "application/json"
) -> dict[str, str]:
    return signed_headers(SIGNING_SECRET, body, timestamp=timestamp, content_type=content_type)


def _rejections() -> list[Any]:
    body = _secret_event()
    good = _signed(body)
    missing_ts = {k: v for k, v in good.items() if k != "X-Slack-Request-Timestamp"}
    missing_sig = {k: v for k, v in good.items() if k != "X-Slack-Signature"}
    form = f"payload={SECRET_WORD}%7B"
    not_utf8 = b'{"text": "' + SECRET_WORD.encode() + b'\xff\xfe"}'
    cases = [
        ("bad signature", body, {**good, "X-Slack-Signature": "v0=" + "0" * 64}, 401),
        (
            "signed with another secret",
            body,
            {**good, "X-Slack-Signature": slack_signature("wrong", NOW, body)},
            401,
        ),
        ("signature of another body", body + " ", good, 401),
        (
            "signature not v0",
            body,
            {**good, "X-Slack-Signature": "v1=" + good["X-Slack-Signature"][3:]},
            401,
        ),
        ("stale timestamp", body, _signed(body, NOW - 301), 401),
        ("future timestamp", body, _signed(body, NOW + 301), 401),
        ("missing timestamp", body, missing_ts, 401),
        ("missing signature", body, missing_sig, 401),
        ("non-numeric timestamp", body, {**good, "X-Slack-Request-Timestamp": "soon"}, 401),
        ("negative timestamp", body, {**good, "X-Slack-Request-Timestamp": f"-{NOW}"}, 401),
        ("empty timestamp", body, {**good, "X-Slack-Request-Timestamp": ""}, 401),
        ("invalid JSON", "{" + SECRET_WORD, _signed("{" + SECRET_WORD), 400),
        (
            "JSON that is not an object",
            f'["{SECRET_WORD}"]',
            _signed(f'["{SECRET_WORD}"]'),
            400,
        ),
        (
            "malformed form",
            SECRET_WORD,
            _signed(SECRET_WORD, content_type=FORM),
            400,
        ),
        (
            "payload not JSON",
            form,
            _signed(form, content_type=FORM),
            400,
        ),
        ("not UTF-8", not_utf8, _signed(not_utf8), 400),
        ("empty body", "", _signed(""), 400),
    ]
    return [pytest.param(b, h, s, id=name) for name, b, h, s in cases]


@pytest.mark.parametrize(("body", "headers", "expected"), _rejections())
async def test_bad_requests_are_refused_and_leave_no_trace(
    frozen: Guidebot,
    slack: SlackStandIn,
    caplog: pytest.LogCaptureFixture,
    body: str | bytes,
    headers: dict[str, str],
    expected: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    calls, rows = len(slack.calls), frozen.dump()
    status, _ = await frozen.post(body, headers)
    assert status == expected
    await frozen.idle()
    assert frozen.dump() == rows
    assert len(slack.calls) == calls
    assert SECRET_WORD not in caplog.text
    assert "Refused a request" in caplog.text


async def test_a_fresh_signed_request_passes_with_the_injected_clock(
    frozen: Guidebot, slack: SlackStandIn
) -> None:
    body = _secret_event()
    status, _ = await frozen.post(body, _signed(body))
    assert status == 200
    await frozen.idle()
    assert len(slack.delivered("chat.postMessage")) == 1


async def test_an_oversized_body_is_refused_with_413(frozen: Guidebot, slack: SlackStandIn) -> None:
    big = json.dumps({"type": "event_callback", "padding": "x" * (1024 * 1024)})
    status, _ = await frozen.post(big, _signed(big))
    assert status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: found while reading
        for _ in range(40):
            yield b"x" * 65536

    async with frozen.session.post(
        frozen.url + "/slack/events", data=chunks(), headers=_signed("x")
    ) as response:
        assert response.status == 413


async def test_url_verification_answers_the_challenge_only_when_signed(frozen: Guidebot) -> None:
    body = json.dumps(
        {"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY", "type": "url_verification"}
    )
    status, text = await frozen.post(body, _signed(body))
    assert status == 200
    assert json.loads(text) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY"}
    status, _ = await frozen.post(body, {**_signed(body), "X-Slack-Signature": "v0=" + "1" * 64})
    assert status == 401


# --- acknowledgement under load ------------------------------------------------------------------


async def test_a_click_is_acknowledged_quickly_while_ten_answers_hang(
    guidebot: Guidebot, slack: SlackStandIn
) -> None:
    answer = await ask(guidebot, slack, FRIEND_REQUEST)
    question_id = button_value(answer, Action.HELPFUL)

    slack.hang("chat.postMessage", 8.0)
    events = [dm_event(FRIEND_REQUEST) for _ in range(10)]
    statuses = await asyncio.gather(*(guidebot.send_event(e) for e in events))
    assert {s for s, _ in statuses} == {200}
    await slack.wait_for(lambda: len(slack.in_flight("chat.postMessage")) == 10)

    started = time.perf_counter()
    status, _ = await guidebot.send_form(
        action_form(block_actions(Action.HELPFUL.value, question_id))
    )
    elapsed = time.perf_counter() - started
    assert status == 200
    assert elapsed < 2.5, f"ack took {elapsed:.2f}s"

    await slack.wait_delivered("chat.postEphemeral")
    assert guidebot.operations.feedback(int(question_id)) is True
    assert len(slack.in_flight("chat.postMessage")) == 10


async def test_answering_logs_nothing_anyone_wrote(
    guidebot: Guidebot, slack: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await guidebot.send_event(dm_event(f"{SECRET_WORD} {FRIEND_REQUEST}"))
    await guidebot.send_form(command_form(f"{SECRET_WORD} {UNANSWERABLE}"))
    await guidebot.send_event(mention_event(f"{SECRET_WORD} {FRIEND_REQUEST}"))
    await guidebot.idle()
    assert len(slack.delivered("chat.postMessage")) == 2
    assert len(slack.delivered("chat.postEphemeral")) == 1
    assert SECRET_WORD not in caplog.text
