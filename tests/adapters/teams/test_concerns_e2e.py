"""Safeguarding concerns on Teams, end to end over real HTTP on loopback.

Activities signed as the Bot Framework signs them go into the real server
(``build_app`` on 127.0.0.1) with a ``Concerns`` on the sample database (St
Anne's DSL, deputy and headteacher on Teams); replies and the outbox worker's
proactive messages go through botbuilder's connector client to the stand-in.

The form is an Adaptive Card with inputs. ``tests/support/adaptive_cards.py``
knows only the display elements guidebot's other cards use, so the
``teams_inputs`` fixture teaches it ``Input.Text``, ``Input.ChoiceSet`` and
``Input.Toggle`` from the Adaptive Cards 1.5 schema for these tests.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.teams import concern_cards
from bot.concerns import ConcernForm, Concerns, Person
from bot.config import SafeguardingSettings
from bot.messages import Action, Reply
from tests.adapters.slack.test_concerns_e2e import (
    SECRET_WORDS,
    assert_no_secret_words,
    attach_concerns,
    database_bytes,
    long_view,
    with_safeguarding,
)
from tests.support import adaptive_cards
from tests.support.adaptive_cards import assert_teams_card
from tests.support.teams_standin import (
    CHANNEL,
    PERSONAL,
    STAFF_AAD,
    STAFF_ID,
    Call,
    TeamsGuidebot,
    TeamsStandIn,
    card_submit,
    channel_message,
    personal_message,
    teams_settings,
)

DSL_AAD = "5c6d7e8f-0000-4000-8000-0000000000d1"
DSL_ID, DSL_CHAT = "29:1dslTeamsId", "a:1personalChatWithDsl"
DEPUTY_AAD = "5c6d7e8f-0000-4000-8000-0000000000d2"
HEAD_AAD = "5c6d7e8f-0000-4000-8000-0000000000d3"
SAFEGUARDING = SafeguardingSettings(
    dsl=(f"teams:{DSL_AAD}",), deputies=(f"teams:{DEPUTY_AAD}",), headteacher=(f"teams:{HEAD_AAD}",)
)
ANSWERS = {
    "about": "pupil",
    "about_role": "none",
    "about_name": "Zephyrine Q.",
    "what": 'She said "Quillondrax hurts me when Marzipanhof is away"',
    "when_where": "Tuesday break, Bramblewick corridor",
    "danger": "no",
    "actions_taken": "Told Octarinel in the office to keep an eye",
}
DISCLOSURE = "a girl in year 4 told me her dad hits her when he has been drinking"


def inputs(card: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every input in a card by id (and each choice checked as the schema asks)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input."):
                yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for element in walk(card.get("body", [])):
        assert element["id"] not in found, f"input {element['id']} appears twice"
        for choice in element.get("choices", []):
            assert set(choice) == {"title", "value"}
            assert choice["title"].strip() and choice["value"].strip()
        found[element["id"]] = element
    return found


def submit_data(card: Mapping[str, Any]) -> dict[str, Any]:
    [action] = adaptive_cards.submit_actions(card)
    return dict(action["data"])


# --- the server -------------------------------------------------------------------------------


@dataclasses.dataclass
class Server:
    guidebot: TeamsGuidebot
    concerns: Concerns
    standin: TeamsStandIn
    database: Path


@pytest.fixture
async def standin() -> AsyncIterator[TeamsStandIn]:
    async with TeamsStandIn() as server:
        yield server


@pytest.fixture
async def server(standin: TeamsStandIn, sample_db_copy: Path) -> AsyncIterator[Server]:
    settings = with_safeguarding(teams_settings(sample_db_copy, standin), SAFEGUARDING)
    guidebot = TeamsGuidebot(settings)
    concerns = attach_concerns(guidebot.app, settings)
    async with guidebot:
        await guidebot.idle()
        running = Server(guidebot, concerns, standin, sample_db_copy)
        # The DSL and the member of staff have each written to the bot once, so
        # both can be reached in their 1:1 chats.
        await send(running, personal_message("hello", standin.service_url))
        await send(
            running,
            personal_message(
                "hello",
                standin.service_url,
                user_aad=DSL_AAD,
                user_id=DSL_ID,
                conversation=DSL_CHAT,
            ),
        )
        yield running


async def send(server: Server, activity: dict[str, Any]) -> list[Call]:
    """Post an activity and wait for its work; the calls it made to the stand-in."""
    before = len(server.standin.calls)
    status, _ = await server.guidebot.send(activity)
    assert status in (200, 202)
    await server.guidebot.idle()
    return server.standin.calls[before:]


def replies(calls: list[Call], conversation: str = PERSONAL) -> list[dict[str, Any]]:
    return [c.card for c in calls if c.conversation_id == conversation and c.delivered]


async def press(
    server: Server,
    value: dict[str, Any],
    *,
    user_aad: str = STAFF_AAD,
    user_id: str = STAFF_ID,
    conversation: str = PERSONAL,
) -> list[dict[str, Any]]:
    """Press a card's button (with its inputs): the cards sent back to that chat."""
    calls = await send(
        server,
        card_submit(
            value,
            server.standin.service_url,
            user_aad=user_aad,
            user_id=user_id,
            conversation=conversation,
        ),
    )
    return replies(calls, conversation)


async def dsl_press(server: Server, action: Action, ref: str) -> list[dict[str, Any]]:
    return await press(
        server,
        {"action": action.value, "value": ref},
        user_aad=DSL_AAD,
        user_id=DSL_ID,
        conversation=DSL_CHAT,
    )


async def open_form(server: Server) -> dict[str, Any]:
    calls = await send(server, personal_message("report a concern", server.standin.service_url))
    [form] = replies(calls)
    return form


async def report(
    server: Server, answers: Mapping[str, str] = ANSWERS
) -> tuple[str, dict[str, Any]]:
    form = await open_form(server)
    [card] = await press(server, {**submit_data(form), **answers})
    refs = [r for (r,) in server.concerns.db.execute("SELECT ref FROM concerns ORDER BY id")]
    return refs[-1], card


def shown(card: Mapping[str, Any]) -> str:
    return " ".join(
        adaptive_cards.shown(block["text"]) for block in adaptive_cards.text_blocks(card)
    )


async def alert_to(server: Server, conversation: str, ref: str) -> dict[str, Any]:
    """The alert card the outbox worker delivered into a 1:1 chat (waits for it)."""

    def found() -> list[Call]:
        return [
            c
            for c in server.standin.delivered()
            if c.conversation_id == conversation and ref in c.card_text
        ]

    await server.standin.wait_for(lambda: bool(found()))
    return found()[0].card


# --- opening the form -------------------------------------------------------------------------


async def test_report_a_concern_sends_the_form_card(server: Server) -> None:
    form = await open_form(server)
    assert_teams_card(form)
    assert list(inputs(form)) == [
        "about",
        "about_role",
        "about_name",
        "what",
        "when_where",
        "danger",
        "actions_taken",
    ]
    fields = inputs(form)
    assert fields["what"]["isMultiline"] is True
    assert "value" not in fields["what"]
    assert fields["about"]["style"] == "expanded"
    assert fields["danger"]["isRequired"] is True
    data = submit_data(form)
    assert data["action"] == concern_cards.CONCERN_SUBMIT
    assert data["form"]


async def test_the_report_button_prefills_their_message(server: Server) -> None:
    calls = await send(server, personal_message(DISCLOSURE, server.standin.service_url))
    [answer] = replies(calls)
    [button] = [
        a for a in adaptive_cards.submit_actions(answer) if a["data"]["action"] == "report_concern"
    ]
    [form] = await press(server, button["data"])
    assert_teams_card(form)
    assert inputs(form)["what"]["value"] == DISCLOSURE


async def test_the_form_from_a_channel_goes_to_their_private_chat(server: Server) -> None:
    calls = await send(server, channel_message(DISCLOSURE, server.standin.service_url))
    [answer] = [
        c.card for c in calls if c.conversation_id and c.conversation_id.startswith(CHANNEL)
    ]
    [button] = [
        a for a in adaptive_cards.submit_actions(answer) if a["data"]["action"] == "report_concern"
    ]
    activity = card_submit(button["data"], server.standin.service_url)
    activity["conversation"] = {
        "conversationType": "channel",
        "isGroup": True,
        "id": f"{CHANNEL};messageid=1",
        "tenantId": activity["conversation"]["tenantId"],
    }
    activity["channelData"]["channel"] = {"id": CHANNEL}
    calls = await send(server, activity)
    [form] = [c.card for c in calls if c.conversation_id == PERSONAL]
    assert inputs(form)["what"]["value"] == DISCLOSURE
    [notice] = [c for c in calls if c.conversation_id and c.conversation_id.startswith(CHANNEL)]
    assert "1:1 chat" in shown(notice.card)
    assert DISCLOSURE not in notice.card_text
    assert "Input." not in notice.card_text


# --- sending it -----------------------------------------------------------------------------------


async def test_a_report_is_stored_sealed_and_the_dsl_alerted(server: Server) -> None:
    ref, card = await report(server)
    assert_teams_card(card)
    assert ref in shown(card)
    assert not shown(card).startswith("CALL 999")
    assert_no_secret_words(database_bytes(server.database), "the database file")
    alert = await alert_to(server, DSL_CHAT, ref)
    assert_teams_card(alert)
    assert [a["data"]["action"] for a in adaptive_cards.submit_actions(alert)] == [
        Action.CONCERN_VIEW.value,
        Action.CONCERN_ACKNOWLEDGE.value,
        Action.CONCERN_NOTE.value,
        Action.CONCERN_CLOSE.value,
    ]
    assert "Reported by a colleague (Teams user id" in shown(alert)
    assert_no_secret_words(json.dumps(alert), "the DSL's alert")
    for call in server.standin.calls:
        if call.conversation_id != PERSONAL:  # only the reporter's own chat saw the form
            assert_no_secret_words(json.dumps(call.body), f"Teams {call.path}")
    [submitted] = server.concerns.db.execute("SELECT reporter FROM concerns").fetchall()
    assert submitted == (f"teams:{STAFF_AAD}",)


async def test_an_urgent_report_puts_999_first(server: Server) -> None:
    ref, card = await report(server, {**ANSWERS, "danger": "yes"})
    first = card["body"][0]
    assert first["type"] == "Container" and first["style"] == "attention"
    assert "999" in shown(first)
    assert ref in shown(card)
    assert "999" in card["fallbackText"]


async def test_missing_answers_send_the_form_back_and_store_nothing(server: Server) -> None:
    form = await open_form(server)
    partial = {"about": "pupil", "what": "Quillondrax at the gate"}
    [again] = await press(server, {**submit_data(form), **partial})
    assert_teams_card(again)
    fields = inputs(again)
    assert fields["what"]["value"] == "Quillondrax at the gate"  # what they typed is kept
    assert fields["about"]["value"] == "pupil"
    problems = shown(again["body"][2])
    assert "Their name or initials" in problems and "When and where" in problems
    assert submit_data(again)["form"] == submit_data(form)["form"]
    assert server.concerns.db.execute("SELECT count(*) FROM concerns").fetchone()[0] == 0


async def test_pressing_send_twice_sends_one_report(server: Server) -> None:
    form = await open_form(server)
    value = {**submit_data(form), **ANSWERS}
    await press(server, value)
    [second] = await press(server, value)
    assert "already sent" in shown(second)
    assert server.concerns.db.execute("SELECT count(*) FROM concerns").fetchone()[0] == 1


# --- the DSL's buttons ----------------------------------------------------------------------------


async def test_someone_else_pressing_view_or_acknowledge_is_refused_and_audited(
    server: Server,
) -> None:
    ref, _ = await report(server)
    for action in (Action.CONCERN_VIEW, Action.CONCERN_ACKNOWLEDGE):
        [refusal] = await press(server, {"action": action.value, "value": ref})
        assert ref in shown(refusal)
        assert_no_secret_words(json.dumps(refusal), "a refusal")
    refused = [(e.actor, e.action) for e in server.concerns.audit_trail(ref) if not e.allowed]
    assert refused == [
        (f"teams:{STAFF_AAD}", "refused:view"),
        (f"teams:{STAFF_AAD}", "refused:acknowledge"),
    ]


async def test_the_dsl_views_acknowledges_notes_and_closes(server: Server) -> None:
    ref, _ = await report(server)
    await alert_to(server, DSL_CHAT, ref)

    cards = await dsl_press(server, Action.CONCERN_VIEW, ref)
    assert cards
    for card in cards:
        assert_teams_card(card)
    seen = " ".join(shown(card) for card in cards)
    for word in SECRET_WORDS:
        assert word in seen

    [acknowledged] = await dsl_press(server, Action.CONCERN_ACKNOWLEDGE, ref)
    assert ref in shown(acknowledged)
    told = await alert_to(server, PERSONAL, f"report {ref}")
    assert_no_secret_words(json.dumps(told), "the reporter's notice")

    [note_form] = await dsl_press(server, Action.CONCERN_NOTE, ref)
    assert_teams_card(note_form)
    data = submit_data(note_form)
    assert data == {"action": concern_cards.NOTE_SUBMIT, "ref": ref}
    [again] = await press(server, data, user_aad=DSL_AAD, user_id=DSL_ID, conversation=DSL_CHAT)
    assert "text" in inputs(again)  # empty: asked again
    [noted] = await press(
        server,
        {**data, "text": "Spoke to Bramblewick parents"},
        user_aad=DSL_AAD,
        user_id=DSL_ID,
        conversation=DSL_CHAT,
    )
    assert ref in shown(noted)

    [close_form] = await dsl_press(server, Action.CONCERN_CLOSE, ref)
    [closed] = await press(
        server,
        {**submit_data(close_form), "text": "Referred to Octarinel team"},
        user_aad=DSL_AAD,
        user_id=DSL_ID,
        conversation=DSL_CHAT,
    )
    assert ref in shown(closed)

    actions = [e.action for e in server.concerns.audit_trail(ref) if e.actor.endswith(DSL_AAD)]
    assert actions == ["viewed", "acknowledged", "noted", "closed"]
    view = server.concerns.view(ref, Person("teams", DSL_AAD))
    assert (view.state, view.outcome) == ("closed", "Referred to Octarinel team")
    assert [n.text for n in view.notes] == ["Spoke to Bramblewick parents"]
    assert_no_secret_words(database_bytes(server.database), "the database file")


async def test_a_note_from_someone_else_is_refused(server: Server) -> None:
    ref, _ = await report(server)
    [refusal] = await press(server, {"action": Action.CONCERN_NOTE.value, "value": ref})
    assert "Input." not in json.dumps(refusal)
    [forged] = await press(
        server, {"action": concern_cards.NOTE_SUBMIT, "ref": ref, "text": "sneaky"}
    )
    assert ref in shown(forged)
    assert server.concerns.view(ref, Person("teams", DSL_AAD)).notes == ()


# --- the cards themselves, within Teams' limits ------------------------------------------------


def test_a_very_long_report_is_split_into_cards_teams_accepts() -> None:
    cards = concern_cards.report_cards(long_view(notes=12))
    assert len(cards) > 1
    for card in cards:
        assert_teams_card(card)
    text = " ".join(shown(card) for card in cards)
    assert all(f"note {i} " in text for i in range(12))
    assert text.index("note 0 ") < text.index("note 11 ")
    assert "It is about a DSL" in text
    assert "a colleague on Slack" in text


def test_a_form_sent_back_with_long_answers_still_fits() -> None:
    long = "Quillondrax é😀 " * 250
    values = {**ANSWERS, "what": long[:3000], "actions_taken": long[:3000]}
    card = concern_cards.concern_form("f1", values=values, errors={"danger": "Please choose one."})
    assert_teams_card(card)
    assert submit_data(card) == {"action": concern_cards.CONCERN_SUBMIT, "form": "f1"}


def test_staff_text_in_a_report_card_is_escaped() -> None:
    view = dataclasses.replace(
        long_view(notes=0),
        form=ConcernForm(
            "pupil", "**bold**", "[click](https://evil.example) <at>Head</at>", "", False, ""
        ),
    )
    for card in concern_cards.report_cards(view):
        for block in adaptive_cards.text_blocks(card):
            assert adaptive_cards.live_markdown(block["text"]) == [], block["text"]


@pytest.mark.parametrize(
    ("reporter", "line"),
    [
        (f"teams:{STAFF_AAD}", f"Reported by a colleague (Teams user id {STAFF_AAD})"),
        ("slack:U0STAFF", "Reported by a colleague on Slack"),
    ],
)
def test_an_alert_card_names_who_reported_it(reporter: str, line: str) -> None:
    from adapters.teams import convert

    card = convert.render(
        Reply("New safeguarding concern C-2026-0001", extra={"reported_by": reporter})
    )
    assert_teams_card(card)
    assert line in shown(card)


# --- escalation, through the server's own sweep -------------------------------------------------

DEPUTY_ID = "29:1deputy"
DEPUTY_CHAT = "a:1deputy-personal"


async def test_an_unacknowledged_report_escalates_to_the_deputy_in_teams(
    standin: TeamsStandIn, sample_db_copy: Path
) -> None:
    """Only the (fake) clock decides when a report is overdue; the server's sweep
    loop then alerts the deputy in their 1:1 chat, once."""
    moment = [time.time()]
    settings = with_safeguarding(teams_settings(sample_db_copy, standin), SAFEGUARDING)
    guidebot = TeamsGuidebot(settings, clock=lambda: moment[0], sweep_interval=0.02)
    concerns = attach_concerns(guidebot.app, settings)
    async with guidebot:
        server = Server(guidebot, concerns, standin, sample_db_copy)
        await send(server, personal_message("hello", standin.service_url))
        for aad, ident, chat in ((DSL_AAD, DSL_ID, DSL_CHAT), (DEPUTY_AAD, DEPUTY_ID, DEPUTY_CHAT)):
            await send(
                server,
                personal_message(
                    "hello", standin.service_url, user_aad=aad, user_id=ident, conversation=chat
                ),
            )
        ref, _ = await report(server)
        await alert_to(server, DSL_CHAT, ref)
        assert concerns.escalate_due() == 0  # not yet

        moment[0] += 31 * 60
        alert = await alert_to(server, DEPUTY_CHAT, ref)
        assert_teams_card(alert)
        assert_no_secret_words(json.dumps(alert), "the deputy's alert")
        assert concerns.escalate_due() == 0  # the step is taken once
        to_deputy = [
            c
            for c in standin.delivered()
            if c.conversation_id == DEPUTY_CHAT and ref in c.card_text
        ]
        assert len(to_deputy) == 1
        assert concerns.may_handle(ref, Person("teams", DEPUTY_AAD))
