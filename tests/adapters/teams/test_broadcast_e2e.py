"""Leaders' broadcasts on Teams, end to end over real HTTP on loopback.

Activities signed as the Bot Framework signs them go into the real server
(``build_app`` on 127.0.0.1) on a copy of the sample database with a staff
directory for St Anne's (a leader and two members of staff on Teams, one
person on neither platform). Replies, and the broadcast messages the outbox
worker delivers proactively, go to the Teams stand-in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.server import BROADCASTS_KEY, DIRECTORY_KEY
from adapters.teams import broadcast_cards
from bot import policy_changes, wording
from bot.broadcasts import Broadcasts
from bot.directory import Directory, StaffRow
from bot.messages import Action
from knowledge.ingest import ingest_files
from tests.adapters.teams.test_concerns_e2e import inputs, submit_data
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

SCHOOL = "st-annes"
LEADER_AAD = "5c6d7e8f-0000-4000-8000-00000000ead1"
LEADER_ID, LEADER_CHAT = "29:1leaderTeamsId", "a:1personalChatWithLeader"
TINA_AAD = "5c6d7e8f-0000-4000-8000-0000000071a0"
TINA_ID, TINA_CHAT = "29:1tinaTeamsId", "a:1personalChatWithTina"
STAFF_ROWS = [
    StaffRow(
        2, "lena@annes.sch.uk", "Lena Leader", ("staff", "leader"), ("slt",), None, LEADER_AAD
    ),
    StaffRow(3, "sam@annes.sch.uk", "Sam Staff", ("staff",), ("teaching",), None, STAFF_AAD),
    StaffRow(4, "tina@annes.sch.uk", "Tina Teacher", ("staff",), ("teaching",), None, TINA_AAD),
    StaffRow(5, "olly@annes.sch.uk", "Olly Office", ("staff",), ("office",)),
]
PEOPLE = {
    "leader": (LEADER_AAD, LEADER_ID, LEADER_CHAT),
    "staff": (STAFF_AAD, STAFF_ID, PERSONAL),
    "tina": (TINA_AAD, TINA_ID, TINA_CHAT),
}
ANSWERS = {
    broadcast_cards.TITLE: "New mobile phone rules",
    broadcast_cards.MESSAGE: "From Monday, phones stay in the staffroom. **please**",
    broadcast_cards.AUDIENCE: broadcast_cards.EVERYONE,
    broadcast_cards.ACK: "true",
}


@dataclasses.dataclass
class Server:
    guidebot: TeamsGuidebot
    standin: TeamsStandIn
    broadcasts: Broadcasts
    directory: Directory


@pytest.fixture
async def standin() -> AsyncIterator[TeamsStandIn]:
    async with TeamsStandIn() as server:
        yield server


@pytest.fixture
async def server(standin: TeamsStandIn, sample_db_copy: Path) -> AsyncIterator[Server]:
    guidebot = TeamsGuidebot(teams_settings(sample_db_copy, standin))
    directory = guidebot.app[DIRECTORY_KEY]
    directory.import_rows(SCHOOL, STAFF_ROWS)
    async with guidebot:
        await guidebot.idle()
        running = Server(guidebot, standin, guidebot.app[BROADCASTS_KEY], directory)
        for who in PEOPLE:  # each has written to the bot, so each can be reached
            await say(running, "hello", who)
        yield running


async def send(server: Server, activity: dict[str, Any]) -> list[Call]:
    before = len(server.standin.calls)
    status, _ = await server.guidebot.send(activity)
    assert status in (200, 202)
    await server.guidebot.idle()
    return server.standin.calls[before:]


def cards(calls: list[Call], conversation: str) -> list[dict[str, Any]]:
    return [
        c.card
        for c in calls
        if c.kind in ("reply", "send") and c.conversation_id == conversation and c.delivered
    ]


async def say(server: Server, text: str, who: str = "leader") -> list[dict[str, Any]]:
    aad, user_id, chat = PEOPLE[who]
    activity = personal_message(
        text, server.standin.service_url, user_aad=aad, user_id=user_id, conversation=chat
    )
    return cards(await send(server, activity), chat)


async def press(server: Server, value: dict[str, Any], who: str = "leader") -> list[dict[str, Any]]:
    aad, user_id, chat = PEOPLE[who]
    activity = card_submit(
        value, server.standin.service_url, user_aad=aad, user_id=user_id, conversation=chat
    )
    return cards(await send(server, activity), chat)


def card_text(card: Mapping[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


async def open_form(server: Server) -> dict[str, Any]:
    [form] = await say(server, "broadcast")
    return form


async def broadcast(server: Server, answers: Mapping[str, str] = ANSWERS) -> tuple[int, str]:
    form = await open_form(server)
    [reply] = await press(server, {**submit_data(form), **answers})
    [latest] = server.broadcasts.recent(SCHOOL, 1)
    return latest.id, card_text(reply)


async def delivered_card(server: Server, broadcast_id: int, who: str) -> dict[str, Any]:
    """The broadcast as the outbox worker delivered it into ``who``'s chat."""
    chat = PEOPLE[who][2]

    def found() -> list[Call]:
        return [
            c
            for c in server.standin.delivered()
            if c.conversation_id == chat and f'"value": "{broadcast_id}"' in c.card_text
        ]

    await server.standin.wait_for(lambda: bool(found()), timeout=10)
    return found()[0].card


# --- the form -----------------------------------------------------------------------------------


async def test_a_leader_typing_broadcast_gets_the_form(server: Server) -> None:
    form = await open_form(server)
    assert_teams_card(form)
    found = inputs(form)
    assert list(found) == list(broadcast_cards.FIELDS)
    assert found[broadcast_cards.TITLE]["maxLength"] == 150
    assert found[broadcast_cards.MESSAGE]["maxLength"] == 3000
    assert found[broadcast_cards.MESSAGE]["isMultiline"] is True
    assert found[broadcast_cards.GROUPS]["isMultiSelect"] is True
    assert [c["value"] for c in found[broadcast_cards.GROUPS]["choices"]] == [
        "office",
        "slt",
        "teaching",
    ]
    keys = [p.key for p in server.guidebot.kb.policies(SCHOOL)]
    assert [c["value"] for c in found[broadcast_cards.POLICY]["choices"]][1:] == keys
    assert found[broadcast_cards.ACK]["value"] == "true"
    assert found[broadcast_cards.SEND_ON]["type"] == "Input.Date"
    assert found[broadcast_cards.SEND_TIME]["type"] == "Input.Time"
    assert submit_data(form)["action"] == "broadcast_submit"
    # "/broadcast" works as well.
    [again] = await say(server, "/broadcast")
    assert list(inputs(again)) == list(broadcast_cards.FIELDS)


async def test_someone_else_is_refused_and_it_is_recorded(server: Server) -> None:
    [refusal] = await say(server, "broadcast", "staff")
    assert "Input." not in card_text(refusal)
    assert wording.broadcast_refused_not_leader()[:40] in card_text(refusal)
    [status_refusal] = await say(server, "broadcast status", "tina")
    assert "Input." not in card_text(status_refusal)
    attempts = server.broadcasts.attempts(SCHOOL)
    assert [(a["platform"], a["user_id"]) for a in attempts] == [
        ("teams", STAFF_AAD),
        ("teams", TINA_AAD),
    ]


async def test_in_a_channel_the_leader_is_sent_to_the_private_chat(server: Server) -> None:
    calls = await send(server, channel_message("broadcast", server.standin.service_url))
    [notice] = [c.card for c in calls if c.conversation_id and CHANNEL in c.conversation_id]
    assert wording.broadcast_use_private_chat()[:30] in card_text(notice)
    assert "Input." not in card_text(notice)


# --- sending and acknowledging -----------------------------------------------------------------


async def test_a_submitted_form_goes_to_everyone_and_the_ack_is_recorded_once(
    server: Server,
) -> None:
    broadcast_id, reply = await broadcast(server)
    assert wording.broadcast_sent(ANSWERS[broadcast_cards.TITLE], 2) in reply

    card = await delivered_card(server, broadcast_id, "staff")
    assert_teams_card(card)
    assert "phones stay in the staffroom" in card_text(card)
    [ack] = [
        a
        for a in adaptive_cards.submit_actions(card)
        if a["data"].get("action") == Action.BROADCAST_ACK.value
    ]
    await delivered_card(server, broadcast_id, "tina")

    [thanks] = await press(server, ack["data"], "staff")
    assert wording.broadcast_ack_recorded() in card_text(thanks)
    assert server.broadcasts.acknowledged_at(broadcast_id, "teams", STAFF_AAD) is not None
    [again] = await press(server, ack["data"], "staff")
    assert wording.broadcast_ack_already() in card_text(again)
    status = server.broadcasts.status(broadcast_id)
    assert status is not None
    assert (status.recipients, status.acknowledged) == (2, 1)
    assert status.outstanding == ("Tina Teacher",)

    [refused] = await press(server, ack["data"], "leader")  # the author was not sent it
    assert wording.broadcast_ack_not_recipient() in card_text(refused)


async def test_pressing_send_twice_sends_one_broadcast(server: Server) -> None:
    form = await open_form(server)
    value = {**submit_data(form), **ANSWERS}
    await press(server, value)
    [second] = await press(server, value)
    assert wording.broadcast_form_already_sent() in card_text(second)
    assert len(server.broadcasts.recent(SCHOOL)) == 1


async def test_problems_come_back_in_the_form_with_the_answers_kept(server: Server) -> None:
    form = await open_form(server)
    answers = {
        **ANSWERS,
        broadcast_cards.MESSAGE: "",
        broadcast_cards.AUDIENCE: broadcast_cards.SOME_GROUPS,
        broadcast_cards.SEND_ON: "2020-01-01",
    }
    [again] = await press(server, {**submit_data(form), **answers})
    assert_teams_card(again)
    text = card_text(again)
    assert wording.broadcast_missing_message() in text
    assert wording.broadcast_no_groups_chosen() in text
    assert wording.broadcast_half_send_time() in text
    assert inputs(again)[broadcast_cards.TITLE]["value"] == ANSWERS[broadcast_cards.TITLE]
    assert server.broadcasts.recent(SCHOOL) == []


async def test_a_broadcast_for_some_groups_at_a_time(server: Server) -> None:
    today = datetime.now(UTC).date()
    july = date(today.year + (1 if today.month >= 7 else 0), 7, 1)  # British Summer Time
    form = await open_form(server)
    answers = {
        **ANSWERS,
        broadcast_cards.AUDIENCE: broadcast_cards.SOME_GROUPS,
        broadcast_cards.GROUPS: "teaching",
        broadcast_cards.SEND_ON: july.isoformat(),
        broadcast_cards.SEND_TIME: "08:30",
    }
    [reply] = await press(server, {**submit_data(form), **answers})
    [status] = server.broadcasts.recent(SCHOOL)
    assert status.state == "scheduled" and status.groups == ("teaching",)
    # 08:30 in London in July is 07:30 UTC.
    assert status.send_at.startswith(f"{july.isoformat()}T07:30")
    assert f"1 July {july.year} at 08:30" in card_text(reply)


async def test_a_time_too_far_ahead_is_refused_in_the_form(server: Server) -> None:
    form = await open_form(server)
    answers = {
        **ANSWERS,
        broadcast_cards.SEND_ON: "2099-07-01",
        broadcast_cards.SEND_TIME: "08:30",
    }
    [again] = await press(server, {**submit_data(form), **answers})
    assert wording.broadcast_refused_time() in card_text(again)
    assert inputs(again)[broadcast_cards.SEND_ON]["value"] == "2099-07-01"
    assert server.broadcasts.recent(SCHOOL) == []


# --- status -------------------------------------------------------------------------------------


async def test_broadcast_status_shows_the_counts_and_who_is_outstanding(server: Server) -> None:
    broadcast_id, _ = await broadcast(server)
    await delivered_card(server, broadcast_id, "staff")
    await delivered_card(server, broadcast_id, "tina")
    await press(server, {"action": Action.BROADCAST_ACK.value, "value": str(broadcast_id)}, "tina")

    [card] = await say(server, "broadcast status")

    assert_teams_card(card)
    text = card_text(card)
    assert wording.broadcast_counts(2, 2, 1, True) in text
    assert "Sam Staff" in text and "Tina Teacher" not in text
    assert "Olly Office" in text
    news = [
        a for a in adaptive_cards.submit_actions(card) if a["data"]["action"] == "broadcast_new"
    ]
    assert news and news[-1]["data"]["value"] == ""
    [form] = await press(server, news[-1]["data"])
    assert list(inputs(form)) == list(broadcast_cards.FIELDS)


async def test_a_changed_policy_can_be_announced_from_the_status_card(
    server: Server, tmp_path: Path
) -> None:
    samples = Path(__file__).resolve().parents[3] / "knowledge" / "samples"
    changed = tmp_path / "st-annes.txt"
    changed.write_text(
        (samples / "st-annes.txt").read_text(encoding="utf-8")
        + "\n\n99. Staff must keep their phones in the staffroom.\n",
        encoding="utf-8",
    )
    ingest_files(server.guidebot.kb, SCHOOL, [changed])

    [card] = await say(server, "broadcast status")
    [prepare] = [
        a["data"] for a in adaptive_cards.submit_actions(card) if a["data"]["value"] == "st-annes"
    ]
    [form] = await press(server, prepare)
    assert_teams_card(form)
    found = inputs(form)
    assert found[broadcast_cards.POLICY]["value"] == "st-annes"
    assert "phones in the staffroom" in found[broadcast_cards.MESSAGE]["value"]
    data = submit_data(form)
    assert data[broadcast_cards.OFFER].endswith(":st-annes")

    answers = {key: element.get("value", "") for key, element in found.items()}
    [reply] = await press(server, {**data, **answers})
    assert "2 people" in card_text(reply)
    assert policy_changes.pending_offers(server.guidebot.kb, SCHOOL) == []
