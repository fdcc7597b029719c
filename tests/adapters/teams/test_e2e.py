"""End to end over real HTTP on loopback: activities signed as the Bot Framework
signs them go into the real server (``build_app`` on 127.0.0.1), and its replies
go through botbuilder's own connector client to the Teams stand-in."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botframework.connector.aio import ConnectorClient  # type: ignore[import-untyped]
from botframework.connector.auth import MicrosoftAppCredentials  # type: ignore[import-untyped]

from adapters.teams.app import STALE_AFTER
from adapters.teams.delivery import DeliveryPolicy, prepare_client, retry_after
from bot.messages import Action
from tests.support.bot_tokens import FIXED_OUTBOUND_TOKEN
from tests.support.teams_standin import (
    ANNES_TENANT,
    BOT_ID,
    CHANNEL,
    CONTACT_AAD,
    CONTACT_CHAT,
    CONTACT_ID,
    CROSS_TENANT,
    PERSONAL,
    STAFF_AAD,
    STRANGER_TENANT,
    Call,
    TeamsGuidebot,
    TeamsStandIn,
    bot_added,
    card_submit,
    channel_message,
    installation_update,
    personal_message,
    teams_settings,
)

FRIEND_REQUEST = "can I accept a friend request from an ex-pupil?"
CLAUSE = "accept 'friend requests' from"
SOURCE = "Social Media Policy"
UNANSWERABLE = "what is the wifi password for the staff room?"
SECRET_WORD = "Zanzibar-7f3c"
"""Put in messages whose text must never reach a log."""


@pytest.fixture
async def standin() -> AsyncIterator[TeamsStandIn]:
    async with TeamsStandIn() as server:
        yield server


@pytest.fixture
async def guidebot(standin: TeamsStandIn, sample_db_copy: Path) -> AsyncIterator[TeamsGuidebot]:
    async with TeamsGuidebot(teams_settings(sample_db_copy, standin)) as server:
        await server.idle()  # the signing keys, fetched at start
        yield server


def actions_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(card.get("actions", []))
    for element in card.get("body", []):
        if element.get("type") == "ActionSet":
            found.extend(element.get("actions", []))
    return found


def button_value(call: Call, action: Action) -> str:
    for found in actions_of(call.card):
        data = found.get("data") or {}
        if data.get("action") == action.value:
            return str(data["value"])
    raise AssertionError(f"no {action} button in {call.card_text}")


async def ask(guidebot: TeamsGuidebot, standin: TeamsStandIn, text: str) -> Call:
    """A 1:1 question, answered: the call that carried the answer."""
    before = len(standin.delivered())
    status, _ = await guidebot.send(personal_message(text, standin.service_url))
    assert status == 202
    await guidebot.idle()
    delivered = standin.delivered()
    assert len(delivered) == before + 1
    return delivered[-1]


# --- answering -----------------------------------------------------------------------------------


async def test_a_personal_message_is_answered_with_the_clause_on_an_adaptive_card(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    activity = personal_message(FRIEND_REQUEST, standin.service_url)
    status, body = await guidebot.send(activity)
    assert (status, body) == (202, "")
    await guidebot.idle()
    [reply] = standin.activity_calls()
    assert reply.status == 201
    assert (reply.kind, reply.conversation_id, reply.activity_id) == (
        "reply",
        PERSONAL,
        activity["id"],
    )
    assert reply.authorization == f"Bearer {FIXED_OUTBOUND_TOKEN}"
    assert reply.body["type"] == "message"
    assert reply.body["replyToId"] == activity["id"]
    assert reply.body["from"]["id"] == BOT_ID
    assert reply.card["type"] == "AdaptiveCard"
    assert reply.card["version"] == "1.5"
    assert CLAUSE in reply.card_text
    assert SOURCE in reply.card_text
    assert SOURCE in reply.body["summary"]


async def test_each_tenant_is_its_own_school(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    await guidebot.send(personal_message(FRIEND_REQUEST, standin.service_url, tenant=CROSS_TENANT))
    await guidebot.idle()
    [reply] = standin.delivered()
    assert CLAUSE not in reply.card_text  # that is St Anne's wording
    stored = guidebot.operations.conversation("teams", "user", STAFF_AAD)
    assert stored is not None and stored.school == "crossflatts"


async def test_talking_to_the_bot_stores_a_conversation_reference(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    await ask(guidebot, standin, FRIEND_REQUEST)
    stored = guidebot.operations.conversation("teams", "user", STAFF_AAD)
    assert stored is not None
    assert (stored.school, stored.tenant_id, stored.conversation_id, stored.service_url) == (
        "st-annes",
        ANNES_TENANT,
        PERSONAL,
        standin.service_url,
    )
    assert stored.unreachable_since is None
    reference = json.loads(stored.reference)
    assert reference["conversation"]["id"] == PERSONAL
    assert reference["serviceUrl"] == standin.service_url
    assert reference["bot"]["id"] == BOT_ID
    assert reference["user"]["aadObjectId"] == STAFF_AAD
    assert reference["channelId"] == "msteams"
    assert "activityId" not in reference  # a later message starts afresh


async def test_help_is_answered_by_the_core(guidebot: TeamsGuidebot, standin: TeamsStandIn) -> None:
    reply = await ask(guidebot, standin, "help")
    assert "St Anne" in reply.card_text
    assert guidebot.operations.recent_questions("teams", STAFF_AAD) == []


# --- buttons -------------------------------------------------------------------------------------


async def test_feedback_buttons_store_feedback_and_thank(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    answer = await ask(guidebot, standin, FRIEND_REQUEST)
    question_id = button_value(answer, Action.HELPFUL)
    assert guidebot.operations.feedback(int(question_id)) is None

    submit = card_submit(
        {"action": Action.HELPFUL.value, "value": question_id},
        standin.service_url,
        reply_to=answer.activity_id,
    )
    status, _ = await guidebot.send(submit)
    assert status == 202
    await guidebot.idle()
    assert guidebot.operations.feedback(int(question_id)) is True
    thanks = standin.delivered()[-1]
    assert thanks.activity_id == submit["id"]
    assert "Thank" in thanks.card_text

    await guidebot.send(
        card_submit({"action": Action.NOT_HELPFUL.value, "value": question_id}, standin.service_url)
    )
    await guidebot.idle()
    assert guidebot.operations.feedback(int(question_id)) is False


async def test_a_forged_button_value_reads_as_an_expired_button(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    await guidebot.send(
        card_submit({"action": Action.HELPFUL.value, "value": "99999"}, standin.service_url)
    )
    await guidebot.idle()
    [notice] = standin.delivered()
    assert "button" in notice.card_text.lower()


async def test_the_welcome_cards_ask_button_prompts_for_a_question(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    await guidebot.send(
        card_submit({"action": Action.ASK_QUESTION.value, "value": "welcome"}, standin.service_url)
    )
    await guidebot.idle()
    [prompt] = standin.delivered()
    assert "question" in prompt.card_text.lower()


@pytest.fixture
def contact_known(guidebot: TeamsGuidebot) -> None:
    """St Anne's names a Teams contact ([schools.st-annes] policy_contact_teams in
    the settings), and the server's wiring hands it to the Answerer."""
    assert guidebot.bot.answerer.contacts("st-annes", "teams") == CONTACT_AAD
    assert guidebot.bot.answerer.contacts("crossflatts", "teams") is None


async def _contact_installs(guidebot: TeamsGuidebot, standin: TeamsStandIn) -> None:
    install = installation_update(standin.service_url, conversation=CONTACT_CHAT)
    install["from"] = {"id": CONTACT_ID, "aadObjectId": CONTACT_AAD, "name": "Pat Contact"}
    await guidebot.send(install)
    await guidebot.idle()


@pytest.mark.usefixtures("contact_known")
async def test_a_question_passed_on_reaches_the_contact_proactively(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    await _contact_installs(guidebot, standin)
    answer = await ask(guidebot, standin, UNANSWERABLE)
    value = button_value(answer, Action.PASS_TO_CONTACT)
    calls = len(standin.calls)

    await guidebot.send(
        card_submit({"action": Action.PASS_TO_CONTACT.value, "value": value}, standin.service_url)
    )
    await guidebot.idle()
    forwarded, confirmation = standin.calls[calls:]
    assert (forwarded.kind, forwarded.conversation_id) == ("send", CONTACT_CHAT)
    assert forwarded.activity_id is None  # a new message in their chat, not a reply
    assert forwarded.authorization == f"Bearer {FIXED_OUTBOUND_TOKEN}"
    assert "wifi password" in forwarded.card_text
    assert STAFF_AAD in forwarded.card_text  # who asked
    assert (confirmation.kind, confirmation.conversation_id) == ("reply", PERSONAL)
    assert "passed your question" in confirmation.card_text


@pytest.mark.usefixtures("contact_known")
async def test_a_pass_on_to_a_contact_with_no_reference_is_reported_as_failed(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    value = button_value(await ask(guidebot, standin, UNANSWERABLE), Action.PASS_TO_CONTACT)
    await guidebot.send(
        card_submit({"action": Action.PASS_TO_CONTACT.value, "value": value}, standin.service_url)
    )
    await guidebot.idle()
    notice = standin.delivered()[-1]
    assert notice.conversation_id == PERSONAL
    assert "could not pass your question" in notice.card_text
    assert not [c for c in standin.calls if c.conversation_id == CONTACT_CHAT]

    # Undone, so once the contact has installed the app, pressing again works.
    await _contact_installs(guidebot, standin)
    await guidebot.send(
        card_submit({"action": Action.PASS_TO_CONTACT.value, "value": value}, standin.service_url)
    )
    await guidebot.idle()
    assert [c.kind for c in standin.delivered() if c.conversation_id == CONTACT_CHAT] == [
        "send",  # the welcome
        "send",  # the question
    ]


@pytest.mark.usefixtures("contact_known")
async def test_a_contact_who_blocked_the_bot_is_marked_unreachable(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    await _contact_installs(guidebot, standin)
    value = button_value(await ask(guidebot, standin, UNANSWERABLE), Action.PASS_TO_CONTACT)
    standin.fail(403)
    calls = len(standin.calls)
    await guidebot.send(
        card_submit({"action": Action.PASS_TO_CONTACT.value, "value": value}, standin.service_url)
    )
    await guidebot.idle()
    refused, notice = standin.calls[calls:]
    assert (refused.conversation_id, refused.status) == (CONTACT_CHAT, 403)
    assert "could not pass your question" in notice.card_text
    contact = guidebot.operations.conversation("teams", "user", CONTACT_AAD)
    assert contact is not None and contact.unreachable_since is not None


# --- installing ----------------------------------------------------------------------------------


async def test_being_added_sends_the_welcome_card_and_stores_a_reference(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    status, _ = await guidebot.send(bot_added(standin.service_url))
    assert status == 202
    await guidebot.idle()
    [welcome] = standin.delivered()
    assert (welcome.kind, welcome.conversation_id) == ("send", PERSONAL)
    assert welcome.card["type"] == "AdaptiveCard"
    assert "St Anne" in welcome.card_text
    assert [a["data"]["action"] for a in actions_of(welcome.card)] == [Action.ASK_QUESTION.value]
    assert guidebot.operations.conversation("teams", "user", STAFF_AAD) is not None


async def test_installation_update_add_sends_the_welcome_card_and_stores_a_reference(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    await guidebot.send(installation_update(standin.service_url))
    await guidebot.idle()
    [welcome] = standin.delivered()
    assert (welcome.kind, welcome.conversation_id) == ("send", PERSONAL)
    assert "replyToId" not in welcome.body
    assert "St Anne" in welcome.card_text
    stored = guidebot.operations.conversation("teams", "user", STAFF_AAD)
    assert stored is not None and stored.conversation_id == PERSONAL


async def test_one_install_is_welcomed_once(guidebot: TeamsGuidebot, standin: TeamsStandIn) -> None:
    # Teams sends both activities for one install.
    await asyncio.gather(
        guidebot.send(bot_added(standin.service_url)),
        guidebot.send(installation_update(standin.service_url)),
    )
    await guidebot.idle()
    assert len(standin.delivered()) == 1


async def test_someone_else_joining_is_not_welcomed(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    joined = bot_added(
        standin.service_url, conversation=CHANNEL, conversation_type="channel", channel=CHANNEL
    )
    joined["membersAdded"] = [{"id": "29:1someoneNew", "aadObjectId": "a-new-teacher"}]
    await guidebot.send(joined)
    await guidebot.idle()
    assert not standin.activity_calls()


async def test_being_added_to_a_team_welcomes_the_channel_and_stores_it(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    added = bot_added(
        standin.service_url, conversation=CHANNEL, conversation_type="channel", channel=CHANNEL
    )
    await guidebot.send(added)
    await guidebot.idle()
    [welcome] = standin.delivered()
    assert welcome.conversation_id == CHANNEL
    stored = guidebot.operations.conversation("teams", "channel", CHANNEL)
    assert stored is not None
    assert (stored.school, stored.conversation_id) == ("st-annes", CHANNEL)


async def test_uninstalling_marks_the_reference_unreachable(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    await ask(guidebot, standin, FRIEND_REQUEST)
    calls = len(standin.calls)
    await guidebot.send(installation_update(standin.service_url, action="remove"))
    await guidebot.idle()
    assert len(standin.calls) == calls  # nothing said to someone who has left
    stored = guidebot.operations.conversation("teams", "user", STAFF_AAD)
    assert stored is not None and stored.unreachable_since is not None

    await ask(guidebot, standin, FRIEND_REQUEST)  # back again: reachable
    stored = guidebot.operations.conversation("teams", "user", STAFF_AAD)
    assert stored is not None and stored.unreachable_since is None


# --- channels ------------------------------------------------------------------------------------


async def test_a_channel_mention_is_answered_in_its_thread(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    activity = channel_message(FRIEND_REQUEST, standin.service_url)
    assert activity["text"].startswith("<at>guidebot</at> ")
    await guidebot.send(activity)
    await guidebot.idle()
    [reply] = standin.delivered()
    assert reply.kind == "reply"
    assert reply.conversation_id == f"{CHANNEL};messageid={activity['id']}"
    assert reply.activity_id == activity["id"]
    assert reply.body["replyToId"] == activity["id"]
    assert CLAUSE in reply.card_text  # the mention was stripped before searching
    [question] = guidebot.operations.recent_questions("teams", STAFF_AAD)
    assert question.text == FRIEND_REQUEST

    stored = guidebot.operations.conversation("teams", "channel", CHANNEL)
    assert stored is not None
    assert stored.conversation_id == CHANNEL  # the channel, not the thread
    assert json.loads(stored.reference)["conversation"]["id"] == CHANNEL
    # A user reference from a channel would deliver "private" messages in public.
    assert guidebot.operations.conversation("teams", "user", STAFF_AAD) is None


async def test_a_reply_in_a_thread_is_answered_in_that_thread(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    activity = channel_message(FRIEND_REQUEST, standin.service_url, root="1699999999999")
    await guidebot.send(activity)
    await guidebot.idle()
    [reply] = standin.delivered()
    assert reply.conversation_id == f"{CHANNEL};messageid=1699999999999"
    assert reply.activity_id == activity["id"]


# --- tenants -------------------------------------------------------------------------------------


async def test_an_unknown_tenant_gets_nothing_and_nothing_is_stored(
    guidebot: TeamsGuidebot, standin: TeamsStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rows = guidebot.dump()
    for activity in (
        personal_message(f"{SECRET_WORD} {FRIEND_REQUEST}", standin.service_url),
        bot_added(standin.service_url),
        installation_update(standin.service_url),
        card_submit({"action": Action.HELPFUL.value, "value": "1"}, standin.service_url),
    ):
        activity["conversation"]["tenantId"] = STRANGER_TENANT
        activity["channelData"]["tenant"]["id"] = STRANGER_TENANT
        status, _ = await guidebot.send(activity)
        assert status == 200  # acknowledged, so the Bot Framework does not retry
    await guidebot.idle()
    assert not standin.activity_calls()
    assert guidebot.dump() == rows
    assert STRANGER_TENANT in caplog.text
    assert SECRET_WORD not in caplog.text


async def test_the_tenant_may_come_only_in_channel_data(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    activity = personal_message(FRIEND_REQUEST, standin.service_url)
    del activity["conversation"]["tenantId"]
    await guidebot.send(activity)
    await guidebot.idle()
    assert len(standin.delivered()) == 1


# --- redeliveries --------------------------------------------------------------------------------


async def test_the_same_activity_delivered_twice_is_answered_once(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    activity = personal_message(FRIEND_REQUEST, standin.service_url)
    assert (await guidebot.send(activity))[0] == 202
    await guidebot.idle()
    assert (await guidebot.send(activity))[0] == 202
    await guidebot.idle()
    assert len(standin.activity_calls()) == 1


async def test_an_activity_and_its_redelivery_arriving_together_are_answered_once(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    activity = personal_message(FRIEND_REQUEST, standin.service_url)
    statuses = await asyncio.gather(guidebot.send(activity), guidebot.send(activity))
    assert [s for s, _ in statuses] == [202, 202]
    await guidebot.idle()
    assert len(standin.activity_calls()) == 1


async def test_the_same_id_in_another_conversation_is_another_message(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    first = personal_message(FRIEND_REQUEST, standin.service_url)
    second = personal_message(FRIEND_REQUEST, standin.service_url, conversation="a:1someoneElse")
    second["id"] = first["id"]
    await guidebot.send(first)
    await guidebot.send(second)
    await guidebot.idle()
    assert len(standin.delivered()) == 2


async def test_an_activity_whose_reply_failed_is_answered_when_redelivered(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    standin.fail(500)
    activity = personal_message(FRIEND_REQUEST, standin.service_url)
    await guidebot.send(activity)
    await guidebot.idle()
    assert [c.status for c in standin.activity_calls()] == [500]  # not retried
    await guidebot.send(activity)
    await guidebot.idle()
    assert [c.status for c in standin.activity_calls()] == [500, 201]


async def test_a_stuck_claim_is_taken_over_only_once_stale(
    standin: TeamsStandIn, sample_db_copy: Path
) -> None:
    now = [time.time()]
    async with TeamsGuidebot(
        teams_settings(sample_db_copy, standin), clock=lambda: now[0]
    ) as guidebot:
        activity = personal_message(FRIEND_REQUEST, standin.service_url)
        event_id = f"{activity['id']}@{PERSONAL}"
        # A worker claimed the activity and died (a crash, a restart): still "handling".
        assert guidebot.operations.claim_event("teams", event_id, STALE_AFTER)
        await guidebot.send(activity)
        await guidebot.idle()
        assert not standin.activity_calls()  # it might still be working

        now[0] += STALE_AFTER.total_seconds() + 1
        await guidebot.send(activity)
        await guidebot.idle()
        assert len(standin.delivered()) == 1


async def test_an_invoke_is_answered_in_the_response_and_sends_nothing(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    invoke = personal_message("", standin.service_url)
    invoke.update({"type": "invoke", "name": "task/fetch", "value": {"data": {}}})
    del invoke["text"]
    status, _ = await guidebot.send(invoke)
    assert status == 501  # botbuilder's answer to an invoke nobody handles
    await guidebot.idle()
    assert standin.activity_calls() == []


# --- delivery: retries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(429, "2"), (412, None), (502, None), (504, None)],
    ids=["429-retry-after", "412", "502", "504"],
)
async def test_a_transient_failure_is_retried_and_the_reply_arrives_once(
    guidebot: TeamsGuidebot, standin: TeamsStandIn, status: int, retry_after: str | None
) -> None:
    standin.fail(status, retry_after=retry_after)
    activity = personal_message(FRIEND_REQUEST, standin.service_url)
    await guidebot.send(activity)
    await guidebot.idle()
    failed, delivered = standin.activity_calls()
    assert (failed.status, delivered.status) == (status, 201)
    assert failed.body == delivered.body  # the same card, sent again
    assert failed.path == delivered.path
    assert CLAUSE in delivered.card_text
    assert len(standin.delivered()) == 1
    [wait] = guidebot.sleeps.waits
    if retry_after:
        assert wait >= float(retry_after)  # Retry-After honoured
    else:
        assert 0 < wait <= DeliveryPolicy().base_delay  # the first backoff step


async def test_backoff_grows_exponentially_with_full_jitter(
    standin: TeamsStandIn, sample_db_copy: Path
) -> None:
    draws = iter([1.0, 0.5, 0.25, 1.0])
    async with TeamsGuidebot(teams_settings(sample_db_copy, standin)) as server:
        sleeps = server.sleeps
        server.bot.delivery = DeliveryPolicy(
            sleep=sleeps.sleep, clock=sleeps.clock, random=lambda: next(draws)
        )
        for status in (502, 429, 504, 412):
            standin.fail(status)
        await server.send(personal_message(FRIEND_REQUEST, standin.service_url))
        await server.idle()
    assert [c.status for c in standin.activity_calls()] == [502, 429, 504, 412, 201]
    # random() * min(max_delay, base * 2**(n-1)) with base 1: 1*1, 0.5*2, 0.25*4, 1*8
    assert sleeps.waits == [1.0, 1.0, 1.0, 8.0]


async def test_retries_stop_after_the_attempts_allowed(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    standin.fail(502, times=50)
    activity = personal_message(FRIEND_REQUEST, standin.service_url)
    started = time.monotonic()
    await guidebot.send(activity)
    await guidebot.idle()
    attempts = DeliveryPolicy().attempts
    assert [c.status for c in standin.activity_calls()] == [502] * attempts
    assert len(guidebot.sleeps.waits) == attempts - 1
    assert time.monotonic() - started < 2.0  # the waits were recorded, not endured


async def test_a_retry_after_beyond_the_budget_ends_the_retries(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    standin.fail(429, retry_after="3600")
    await guidebot.send(personal_message(FRIEND_REQUEST, standin.service_url))
    await guidebot.idle()
    assert [c.status for c in standin.activity_calls()] == [429]
    assert guidebot.sleeps.waits == []


async def test_retries_with_a_real_clock_wait_for_real(
    standin: TeamsStandIn, sample_db_copy: Path
) -> None:
    policy = DeliveryPolicy(base_delay=0.05, max_delay=0.1, random=lambda: 1.0)
    async with TeamsGuidebot(teams_settings(sample_db_copy, standin), delivery=policy) as server:
        standin.fail(504, times=2)
        await server.send(personal_message(FRIEND_REQUEST, standin.service_url))
        await server.idle()
    first, second, third = standin.activity_calls()
    assert [c.status for c in (first, second, third)] == [504, 504, 201]
    assert second.at - first.at >= 0.05
    assert third.at - second.at >= 0.1


@pytest.mark.parametrize("status", [400, 404, 500])
async def test_other_failures_are_not_retried(
    guidebot: TeamsGuidebot, standin: TeamsStandIn, status: int
) -> None:
    standin.fail(status)
    await guidebot.send(personal_message(FRIEND_REQUEST, standin.service_url))
    await guidebot.idle()
    assert [c.status for c in standin.activity_calls()] == [status]


async def test_403_is_not_retried_and_marks_the_person_unreachable(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    standin.fail(403)
    await guidebot.send(personal_message(FRIEND_REQUEST, standin.service_url))
    await guidebot.idle()
    assert [c.status for c in standin.activity_calls()] == [403]
    assert guidebot.sleeps.waits == []
    stored = guidebot.operations.conversation("teams", "user", STAFF_AAD)
    assert stored is not None and stored.unreachable_since is not None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("Wed, 01 May 2024 09:00:30 GMT", 30.0),
        ("Wed, 01 May 2024 08:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date(header: str, seconds: float | None) -> None:
    failure = Exception()
    failure.response = SimpleNamespace(headers={"Retry-After": header})  # type: ignore[attr-defined]
    now = datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)
    assert retry_after(failure, now=lambda: now) == seconds


async def test_the_connector_client_does_not_retry_underneath() -> None:
    client = ConnectorClient(MicrosoftAppCredentials.empty(), base_url="https://example.invalid")
    try:
        prepare_client(client, timeout=7.0)
        retry = client.config.retry_policy()
        assert (retry.status, retry.read, retry.other, retry.redirect) == (0, 0, 0, 0)
        assert not retry.status_forcelist
        for status in (429, 412, 500, 502, 503, 504):
            assert not retry.is_retry("POST", status, has_retry_after=True)
        assert client.config.connection.timeout == 7.0
        # msrest builds the requests session from this on its first request:
        session = client.config.pipeline._sender.driver.session
        for prefix in ("http://", "https://"):
            assert session.adapters[prefix].max_retries is retry
    finally:
        await client.__aexit__(None, None, None)


# --- acknowledgement and privacy -----------------------------------------------------------------


async def test_the_activity_is_acknowledged_before_the_reply_is_sent(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    standin.hold()
    started = time.perf_counter()
    status, _ = await guidebot.send(personal_message(FRIEND_REQUEST, standin.service_url))
    assert status == 202
    assert time.perf_counter() - started < 2.0
    await standin.wait_for(lambda: len(standin.activity_calls()) == 1)
    assert standin.activity_calls()[0].status is None  # still waiting for the connector
    standin.release()
    await guidebot.idle()
    assert len(standin.delivered()) == 1


async def test_answering_logs_nothing_anyone_wrote(
    guidebot: TeamsGuidebot, standin: TeamsStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    standin.fail(429, retry_after="1")
    await guidebot.send(personal_message(f"{SECRET_WORD} {FRIEND_REQUEST}", standin.service_url))
    await guidebot.send(channel_message(f"{SECRET_WORD} {UNANSWERABLE}", standin.service_url))
    await guidebot.idle()
    assert len(standin.delivered()) == 2
    assert SECRET_WORD not in caplog.text
    assert "friend request" not in caplog.text
    assert CLAUSE not in caplog.text
    assert "delivered on attempt 2" in caplog.text
