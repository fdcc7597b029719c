"""Nothing anyone wrote in a safeguarding concern reaches a log, on either platform.

Each test runs the whole flow over real HTTP (the report button under an
answer, the form, a refusal, the DSL viewing, acknowledging, adding a note
and closing, the outbox delivering the alerts, a submission with answers
missing and one that fails to store) with every logger at DEBUG, and fails if
a distinctive word of the report appears anywhere in what was logged: the
messages, their arguments or any traceback.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.messages import Action
from tests.adapters.slack import test_concerns_e2e as slack_flow
from tests.adapters.teams import test_concerns_e2e as teams_flow
from tests.support import DM, STAFF, Guidebot, dm_event, settings_for
from tests.support.slack_standin import SlackStandIn
from tests.support.teams_standin import (
    TeamsGuidebot,
    TeamsStandIn,
    personal_message,
    teams_settings,
)

SECRET_WORDS = slack_flow.SECRET_WORDS
DISCLOSURE = "a girl in year 4 called Zephyrine told me her dad hits her when he has been drinking"


@pytest.fixture(autouse=True)
def everything_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger that propagates


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """All that was logged: each record's message, raw arguments and traceback."""
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info:
            parts.extend(traceback.format_exception(*record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
    return "\n".join(parts)


def assert_nothing_logged(caplog: pytest.LogCaptureFixture) -> None:
    text = logged(caplog)
    assert caplog.records, "nothing was logged at all: is the capture working?"
    for word in SECRET_WORDS:
        assert word.lower() not in text.lower(), f"{word!r} was logged"


class Broken(RuntimeError):
    pass


def break_submit(concerns: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make storing fail with an error that quotes the report, as a careless
    library might: the adapters must not log it."""

    def submit(school: str, reporter: object, form: object) -> object:
        raise Broken(f"could not store {form!r}")

    monkeypatch.setattr(concerns, "submit", submit)


# --- Slack ----------------------------------------------------------------------------------


@asynccontextmanager
async def slack_server(database: Path) -> AsyncIterator[slack_flow.Server]:
    async with SlackStandIn() as standin:
        settings = slack_flow.with_safeguarding(
            settings_for(database, standin.api_url), slack_flow.SAFEGUARDING
        )
        guidebot = Guidebot(settings)
        concerns = slack_flow.attach_concerns(guidebot.app, settings)
        async with guidebot:
            yield slack_flow.Server(guidebot, concerns, standin, database)


async def test_a_whole_slack_concern_logs_no_content(
    sample_db_copy: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with slack_server(sample_db_copy) as server:
        # the report button under an answer, with their message in the form
        await server.guidebot.send_event(dm_event(DISCLOSURE))
        await server.guidebot.idle()
        [answer] = server.slack.delivered("chat.postMessage")
        value = next(
            element["value"]
            for block in answer.params["blocks"]
            for element in block.get("elements", [])
            if element.get("action_id") == Action.REPORT_CONCERN.value
        )
        await slack_flow.click(server, Action.REPORT_CONCERN, value, user=STAFF, channel=DM)
        form = server.slack.views()[-1]
        assert "Zephyrine" in form["blocks"][5]["element"]["initial_value"]
        # answers missing, then sent (urgent)
        await slack_flow.submit(server, form, {"what": "Quillondrax Marzipanhof"})
        ref, _ = await slack_flow.report(server, {**slack_flow.REPORT, "danger": "yes"})
        await slack_flow.delivered(server.slack, f"concern:{ref}:alert:slack:{slack_flow.DSL}")
        # a refusal, then the DSL's four buttons
        await slack_flow.click(server, Action.CONCERN_VIEW, ref, user=STAFF, channel=DM)
        dsl, dsl_dm = slack_flow.DSL, slack_flow.DSL_DM
        await slack_flow.click(server, Action.CONCERN_VIEW, ref, user=dsl, channel=dsl_dm)
        await slack_flow.click(server, Action.CONCERN_ACKNOWLEDGE, ref, user=dsl, channel=dsl_dm)
        await slack_flow.click(server, Action.CONCERN_NOTE, ref, user=dsl, channel=dsl_dm)
        note_form = server.slack.views()[-1]
        await slack_flow.submit(server, note_form, {"text": "Bramblewick visit"}, user=dsl)
        await slack_flow.click(server, Action.CONCERN_CLOSE, ref, user=dsl, channel=dsl_dm)
        close_form = server.slack.views()[-1]
        await slack_flow.submit(server, close_form, {"text": "Octarinel referral"}, user=dsl)
        await slack_flow.delivered(server.slack, f"concern:{ref}:acknowledged")
        # storing fails
        break_submit(server.concerns, monkeypatch)
        _, form = await slack_flow.open_concern_form(server)
        failed = await slack_flow.submit(server, form, slack_flow.REPORT)
        assert failed["response_action"] == "update"
        assert server.concerns.view(ref, slack_flow.Person("slack", dsl)).state == "closed"
    assert_nothing_logged(caplog)


# --- Teams ----------------------------------------------------------------------------------


@asynccontextmanager
async def teams_server(database: Path) -> AsyncIterator[teams_flow.Server]:
    async with TeamsStandIn() as standin:
        settings = slack_flow.with_safeguarding(
            teams_settings(database, standin), teams_flow.SAFEGUARDING
        )
        guidebot = TeamsGuidebot(settings)
        concerns = slack_flow.attach_concerns(guidebot.app, settings)
        async with guidebot:
            await guidebot.idle()
            server = teams_flow.Server(guidebot, concerns, standin, database)
            await teams_flow.send(server, personal_message("hello", standin.service_url))
            await teams_flow.send(
                server,
                personal_message(
                    "hello",
                    standin.service_url,
                    user_aad=teams_flow.DSL_AAD,
                    user_id=teams_flow.DSL_ID,
                    conversation=teams_flow.DSL_CHAT,
                ),
            )
            yield server


async def test_a_whole_teams_concern_logs_no_content(
    sample_db_copy: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with teams_server(sample_db_copy) as server:
        calls = await teams_flow.send(
            server, personal_message(DISCLOSURE, server.standin.service_url)
        )
        [answer] = teams_flow.replies(calls)
        [button] = [
            a
            for a in teams_flow.adaptive_cards.submit_actions(answer)
            if a["data"]["action"] == Action.REPORT_CONCERN.value
        ]
        [form] = await teams_flow.press(server, button["data"])
        assert "Zephyrine" in teams_flow.inputs(form)["what"]["value"]
        data = teams_flow.submit_data(form)
        await teams_flow.press(server, {**data, "what": "Quillondrax Marzipanhof"})
        ref, _ = await teams_flow.report(server, {**teams_flow.ANSWERS, "danger": "yes"})
        await teams_flow.alert_to(server, teams_flow.DSL_CHAT, ref)
        await teams_flow.press(server, {"action": Action.CONCERN_VIEW.value, "value": ref})
        await teams_flow.dsl_press(server, Action.CONCERN_VIEW, ref)
        await teams_flow.dsl_press(server, Action.CONCERN_ACKNOWLEDGE, ref)
        dsl = {
            "user_aad": teams_flow.DSL_AAD,
            "user_id": teams_flow.DSL_ID,
            "conversation": teams_flow.DSL_CHAT,
        }
        [note_form] = await teams_flow.dsl_press(server, Action.CONCERN_NOTE, ref)
        note = {**teams_flow.submit_data(note_form), "text": "Bramblewick visit"}
        await teams_flow.press(server, note, **dsl)
        [close_form] = await teams_flow.dsl_press(server, Action.CONCERN_CLOSE, ref)
        outcome = {**teams_flow.submit_data(close_form), "text": "Octarinel referral"}
        await teams_flow.press(server, outcome, **dsl)
        await teams_flow.alert_to(server, teams_flow.PERSONAL, f"report {ref}")
        break_submit(server.concerns, monkeypatch)
        form = await teams_flow.open_form(server)
        [failed] = await teams_flow.press(
            server, {**teams_flow.submit_data(form), **teams_flow.ANSWERS}
        )
        assert "in person now" in teams_flow.shown(failed)
        state = server.concerns.view(ref, teams_flow.Person("teams", teams_flow.DSL_AAD)).state
        assert state == "closed"
    assert_nothing_logged(caplog)
