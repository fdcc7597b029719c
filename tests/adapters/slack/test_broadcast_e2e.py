"""Leaders' broadcasts on Slack, end to end over real HTTP on loopback.

Signed requests go into the real server (``build_app`` on 127.0.0.1) on a copy
of the sample database with a staff directory for St Anne's (a leader, two
members of staff on Slack, one person with no Slack id); its Web API calls go
to the Slack stand-in. A broadcast's direct messages are queued in the outbox by
``Broadcasts.create`` and delivered by the server's outbox worker, and the
tests read them from the stand-in.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.server import BROADCASTS_KEY, DIRECTORY_KEY
from adapters.slack import broadcast_views
from bot import policy_changes, wording
from bot.broadcasts import Broadcasts
from bot.directory import Directory, StaffRow
from bot.messages import Action
from knowledge.ingest import ingest_files
from tests.support import (
    ANNES_TEAM,
    STAFF,
    Guidebot,
    action_form,
    block_actions,
    command_form,
    home_opened,
    settings_for,
)
from tests.support.slack_standin import SlackStandIn

SCHOOL = "st-annes"
LEADER, TINA, STRANGER = "U0LEADER", "U0TINA", "U0STRANGER"
STAFF_ROWS = [
    StaffRow(2, "lena@annes.sch.uk", "Lena Leader", ("staff", "leader"), ("slt",), LEADER),
    StaffRow(3, "sam@annes.sch.uk", "Sam Staff", ("staff",), ("teaching",), STAFF),
    StaffRow(4, "tina@annes.sch.uk", "Tina Teacher", ("staff",), ("teaching",), TINA),
    StaffRow(5, "olly@annes.sch.uk", "Olly Office", ("staff",), ("office",)),
]
ANSWERS: dict[str, Any] = {
    broadcast_views.TITLE: "New mobile phone rules",
    broadcast_views.MESSAGE: "From Monday, phones stay in the staffroom. <!channel> *please*",
    broadcast_views.AUDIENCE: broadcast_views.EVERYONE,
    broadcast_views.ACK: [broadcast_views.REQUIRED],
    broadcast_views.WHEN: broadcast_views.NOW,
}


@dataclasses.dataclass
class Server:
    guidebot: Guidebot
    slack: SlackStandIn
    broadcasts: Broadcasts
    directory: Directory


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as standin:
        yield standin


@pytest.fixture
async def server(slack: SlackStandIn, sample_db_copy: Path) -> AsyncIterator[Server]:
    guidebot = Guidebot(settings_for(sample_db_copy, slack.api_url))
    directory = guidebot.app[DIRECTORY_KEY]
    directory.import_rows(SCHOOL, STAFF_ROWS)
    async with guidebot:
        yield Server(guidebot, slack, guidebot.app[BROADCASTS_KEY], directory)


# --- what Slack sends ---------------------------------------------------------------------------


def _inputs(view: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for block in view.get("blocks", []):
        if block.get("type") == "input":
            yield block["block_id"], block["element"]


def state_for(view: Mapping[str, Any], answers: Mapping[str, Any]) -> dict[str, Any]:
    """``view.state.values`` as Slack sends it, for every input of the form."""
    values: dict[str, Any] = {}
    for block_id, element in _inputs(view):
        kind, answer = element["type"], answers.get(block_id)
        state: dict[str, Any] = {"type": kind}
        if kind in ("radio_buttons", "static_select"):
            state["selected_option"] = next(
                (o for o in element["options"] if o["value"] == answer), None
            )
        elif kind in ("multi_static_select", "checkboxes"):
            state["selected_options"] = [
                o for o in element["options"] if o["value"] in (answer or ())
            ]
        elif kind == "datetimepicker":
            state["selected_date_time"] = answer
        else:
            state["value"] = answer
        values[block_id] = {element["action_id"]: state}
    return {"values": values}


def view_submission(
    view: Mapping[str, Any], answers: Mapping[str, Any], *, user: str = LEADER
) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": ANNES_TEAM, "domain": "school"},
        "user": {"id": user, "username": "lena", "name": "lena", "team_id": ANNES_TEAM},
        "api_app_id": "A0STANDIN",
        "token": "deprecated-verification-token",
        "trigger_id": "9.1.submission",
        "view": {
            "id": "V0MODAL",
            "team_id": ANNES_TEAM,
            "type": "modal",
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": state_for(view, answers),
            "hash": "1.abc",
            "title": view["title"],
            "app_id": "A0STANDIN",
            "bot_id": "BGUIDEBOT",
        },
        "response_urls": [],
        "is_enterprise_install": False,
    }


async def command(server: Server, text: str, *, user: str) -> None:
    form = command_form(text, user=user, command="/broadcast")
    status, body = await server.guidebot.send_form(form)
    assert (status, body) == (200, "")
    await server.guidebot.idle()


async def open_form(server: Server, *, user: str = LEADER) -> dict[str, Any]:
    before = len(server.slack.calls_to("views.open"))
    await command(server, "", user=user)
    assert len(server.slack.calls_to("views.open")) == before + 1
    return server.slack.views()[-1]


async def submit(
    server: Server, view: Mapping[str, Any], answers: Mapping[str, Any], *, user: str = LEADER
) -> dict[str, Any]:
    status, body = await server.guidebot.send_form(
        action_form(view_submission(view, answers, user=user))
    )
    assert status == 200, body
    await server.guidebot.idle()
    return json.loads(body) if body.strip() else {}


def ephemerals(server: Server, user: str) -> list[str]:
    """The text of every ephemeral message shown to ``user``."""
    return [
        json.dumps(c.params.get("blocks"), ensure_ascii=False)
        for c in server.slack.calls_to("chat.postEphemeral")
        if c.params.get("user") == user
    ]


def view_text(view: Mapping[str, Any]) -> str:
    return json.dumps(view.get("blocks", []), ensure_ascii=False)


async def send_broadcast(
    server: Server, answers: Mapping[str, Any] = ANSWERS
) -> tuple[int, dict[str, Any]]:
    view = await open_form(server)
    response = await submit(server, view, answers)
    assert response.get("response_action") == "update", response
    [latest] = server.broadcasts.recent(SCHOOL, 1)
    return latest.id, response


async def delivered_dm(server: Server, broadcast_id: int, user: str) -> dict[str, Any]:
    person = server.directory.by_platform(SCHOOL, "slack", user)
    assert person is not None
    key = f"broadcast:{broadcast_id}:{person.id}:slack"
    await server.slack.wait_for(lambda: bool(server.slack.posted(key)), timeout=10)
    [message] = server.slack.posted(key)
    return message


def ack_click(message: Mapping[str, Any], user: str) -> dict[str, Any]:
    """A press of the ack button on the broadcast message in ``user``'s DM."""
    [button] = [
        element
        for block in message["blocks"]
        for element in block.get("elements", [])
        if str(element.get("action_id", "")).startswith(Action.BROADCAST_ACK.value)
    ]
    payload = block_actions(button["action_id"], button["value"], user=user, channel=f"D{user}")
    payload["container"]["message_ts"] = message["ts"]
    payload["message"] = {
        "type": "message",
        "ts": message["ts"],
        "text": message["text"],
        "blocks": message["blocks"],
    }
    return payload


# --- opening the form -------------------------------------------------------------------------


async def test_a_leader_gets_the_form_in_a_modal(server: Server) -> None:
    trigger_form = command_form("", user=LEADER, command="/broadcast")
    trigger = dict(pair.split("=", 1) for pair in trigger_form.split("&"))["trigger_id"]
    status, _ = await server.guidebot.send_form(trigger_form)
    assert status == 200
    await server.guidebot.idle()
    [call] = server.slack.calls_to("views.open")
    assert call.params["trigger_id"] == trigger.replace("%2C", ",")
    view = server.slack.views()[-1]
    assert view["callback_id"] == broadcast_views.BROADCAST_CALLBACK
    assert json.loads(view["private_metadata"]) == {"school": SCHOOL, "team": ANNES_TEAM}
    inputs = dict(_inputs(view))
    assert list(inputs) == list(broadcast_views.FIELDS)
    assert inputs[broadcast_views.TITLE]["max_length"] == 150
    assert inputs[broadcast_views.MESSAGE]["max_length"] == 3000
    assert inputs[broadcast_views.MESSAGE]["multiline"] is True
    policies = server.guidebot.kb.policies(SCHOOL)
    assert [o["value"] for o in inputs[broadcast_views.POLICY]["options"]] == [
        p.key for p in policies
    ]
    groups = [o["value"] for o in inputs[broadcast_views.GROUPS]["options"]]
    assert groups == ["office", "slt", "teaching"]
    assert inputs[broadcast_views.ACK]["initial_options"][0]["value"] == "required"
    assert inputs[broadcast_views.SEND_AT]["type"] == "datetimepicker"
    assert server.slack.calls_to("chat.postEphemeral") == []


async def test_someone_who_is_not_a_leader_is_refused_and_it_is_recorded(server: Server) -> None:
    await command(server, "", user=STAFF)
    await command(server, "status", user=STRANGER)

    assert server.slack.calls_to("views.open") == []
    [refusal] = ephemerals(server, STAFF)
    assert wording.broadcast_refused_not_leader()[:40] in refusal
    [stranger] = ephemerals(server, STRANGER)
    assert wording.broadcast_refused_not_in_directory()[:40] in stranger
    attempts = server.broadcasts.attempts(SCHOOL)
    assert [(a["platform"], a["user_id"]) for a in attempts] == [
        ("slack", STAFF),
        ("slack", STRANGER),
    ]
    assert all(a["reason"] and a["at"] for a in attempts)
    assert server.broadcasts.recent(SCHOOL) == []


# --- sending ------------------------------------------------------------------------------------


async def test_a_submitted_form_is_sent_to_everyone_through_the_outbox(server: Server) -> None:
    broadcast_id, response = await send_broadcast(server)

    confirmation = view_text(response["view"])
    assert wording.broadcast_sent(ANSWERS[broadcast_views.TITLE], 2) in confirmation
    for user in (STAFF, TINA):
        message = await delivered_dm(server, broadcast_id, user)
        text = json.dumps(message["blocks"], ensure_ascii=False)
        assert "phones stay in the staffroom" in text
        assert "<!channel>" not in text  # what a leader typed cannot notify anyone
        ack_click(message, user)  # it has the "I have read and understood" button
    # The leader (the author) gets no copy of their own broadcast, only the confirmation.
    [copy] = [
        c for c in server.slack.delivered("chat.postMessage") if c.params["channel"] == LEADER
    ]
    assert "2 people" in json.dumps(copy.params["blocks"])
    status = server.broadcasts.status(broadcast_id)
    assert status is not None
    assert (status.recipients, status.unreachable) == (2, ("Olly Office",))


async def test_only_the_chosen_groups_receive_it(server: Server) -> None:
    view = await open_form(server)
    answers = {
        **ANSWERS,
        broadcast_views.AUDIENCE: broadcast_views.SOME_GROUPS,
        broadcast_views.GROUPS: ["office"],
        broadcast_views.ACK: [],
    }
    response = await submit(server, view, answers)
    assert response["response_action"] == "update"
    [status] = server.broadcasts.recent(SCHOOL)
    assert status.groups == ("office",)
    assert status.recipients == 0 and status.unreachable == ("Olly Office",)
    assert status.requires_ack is False


async def test_problems_are_shown_beside_the_questions(server: Server) -> None:
    view = await open_form(server)
    past = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    answers = {
        **ANSWERS,
        broadcast_views.TITLE: "",
        broadcast_views.AUDIENCE: broadcast_views.SOME_GROUPS,
        broadcast_views.GROUPS: [],
        broadcast_views.WHEN: broadcast_views.LATER,
        broadcast_views.SEND_AT: past,
    }
    response = await submit(server, view, answers)
    assert response["response_action"] == "errors"
    assert response["errors"] == {
        broadcast_views.TITLE: wording.broadcast_missing_title(),
        broadcast_views.GROUPS: wording.broadcast_no_groups_chosen(),
        broadcast_views.SEND_AT: wording.broadcast_send_time_past(),
    }
    assert server.broadcasts.recent(SCHOOL) == []


async def test_a_broadcast_can_be_scheduled(server: Server) -> None:
    view = await open_form(server)
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    answers = {
        **ANSWERS,
        broadcast_views.WHEN: broadcast_views.LATER,
        broadcast_views.SEND_AT: int(later.timestamp()),
    }
    response = await submit(server, view, answers)
    [status] = server.broadcasts.recent(SCHOOL)
    assert status.state == "scheduled"
    when = broadcast_views.london_time(later)
    assert wording.broadcast_scheduled(ANSWERS[broadcast_views.TITLE], when) in view_text(
        response["view"]
    )
    assert not [k for k in server.slack.posted_keys() if k.startswith("broadcast:")]


async def test_a_submission_from_someone_who_lost_the_role_is_refused(server: Server) -> None:
    view = await open_form(server)
    response = await submit(server, view, ANSWERS, user=STAFF)
    assert response["response_action"] == "update"
    assert wording.broadcast_refused_not_leader()[:40] in view_text(response["view"])
    assert server.broadcasts.recent(SCHOOL) == []


# --- acknowledging ------------------------------------------------------------------------------


async def test_the_ack_button_records_once_and_updates_the_message(server: Server) -> None:
    broadcast_id, _ = await send_broadcast(server)
    message = copy.deepcopy(await delivered_dm(server, broadcast_id, TINA))

    status, _ = await server.guidebot.send_form(action_form(ack_click(message, TINA)))
    assert status == 200
    await server.guidebot.idle()

    at = server.broadcasts.acknowledged_at(broadcast_id, "slack", TINA)
    assert at is not None
    [thanks] = ephemerals(server, TINA)
    assert wording.broadcast_ack_recorded() in thanks
    [update] = server.slack.calls_to("chat.update")
    assert update.params["channel"] == f"D{TINA}" and update.params["ts"] == message["ts"]
    kept = next(m for m in server.slack.messages[f"D{TINA}"] if m["ts"] == message["ts"])
    assert Action.BROADCAST_ACK.value not in json.dumps(kept["blocks"])
    assert "read and understood this on" in json.dumps(kept["blocks"], ensure_ascii=False)

    # A second press (say, from the same message on another device, not yet updated).
    status, _ = await server.guidebot.send_form(action_form(ack_click(message, TINA)))
    await server.guidebot.idle()
    assert wording.broadcast_ack_already() in ephemerals(server, TINA)[-1]
    assert server.broadcasts.acknowledged_at(broadcast_id, "slack", TINA) == at
    counted = server.broadcasts.status(broadcast_id)
    assert counted is not None and counted.acknowledged == 1


async def test_someone_it_was_not_sent_to_cannot_acknowledge_it(server: Server) -> None:
    broadcast_id, _ = await send_broadcast(server)
    message = await delivered_dm(server, broadcast_id, TINA)
    await server.guidebot.send_form(action_form(ack_click(message, LEADER)))
    await server.guidebot.idle()
    assert wording.broadcast_ack_not_recipient() in ephemerals(server, LEADER)[-1]
    counted = server.broadcasts.status(broadcast_id)
    assert counted is not None and counted.acknowledged == 0


# --- status -------------------------------------------------------------------------------------


async def test_status_shows_counts_and_who_is_outstanding(server: Server) -> None:
    broadcast_id, _ = await send_broadcast(server)
    message = await delivered_dm(server, broadcast_id, TINA)
    await delivered_dm(server, broadcast_id, STAFF)
    await server.guidebot.send_form(action_form(ack_click(message, TINA)))
    await server.guidebot.idle()

    await command(server, "status", user=LEADER)

    shown = ephemerals(server, LEADER)[-1]
    assert ANSWERS[broadcast_views.TITLE] in shown
    assert wording.broadcast_counts(2, 2, 1, True) in shown
    assert wording.broadcast_outstanding("Sam Staff") in shown
    assert "Tina Teacher" not in shown
    assert "Olly Office" in shown  # unreachable: the leader can tell them in person


async def test_status_for_someone_who_is_not_a_leader_is_refused(server: Server) -> None:
    await send_broadcast(server)
    await command(server, "status", user=TINA)
    [refusal] = ephemerals(server, TINA)
    assert ANSWERS[broadcast_views.TITLE] not in refusal
    assert [a["user_id"] for a in server.broadcasts.attempts(SCHOOL)] == [TINA]


# --- App Home -----------------------------------------------------------------------------------


async def home_of(server: Server, user: str) -> dict[str, Any]:
    before = len(server.slack.calls_to("views.publish"))
    status, _ = await server.guidebot.send_event(home_opened(user=user))
    assert status == 200
    await server.guidebot.idle()
    calls = server.slack.calls_to("views.publish")
    assert len(calls) == before + 1
    view = calls[-1].params["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


def action_ids(view: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for block in view["blocks"]:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if "action_id" in element:
                found.append(element["action_id"])
    return found


async def test_a_leaders_app_home_has_the_broadcasts_section(server: Server) -> None:
    broadcast_id, _ = await send_broadcast(server)
    await delivered_dm(server, broadcast_id, TINA)

    view = await home_of(server, LEADER)

    assert Action.BROADCAST_NEW.value in action_ids(view)
    text = view_text(view)
    assert wording.broadcast_home_heading() in text
    assert ANSWERS[broadcast_views.TITLE] in text
    assert len(view["blocks"]) <= 100
    assert len(set(action_ids(view))) == len(action_ids(view))
    # The ordinary buttons are still last.
    assert action_ids(view)[-1] == Action.REPORT_CONCERN.value


async def test_nobody_else_sees_the_broadcasts_section(server: Server) -> None:
    await send_broadcast(server)
    view = await home_of(server, TINA)
    assert not [a for a in action_ids(view) if a.startswith(Action.BROADCAST_NEW.value)]
    assert ANSWERS[broadcast_views.TITLE] not in view_text(view)


async def test_new_broadcast_in_app_home_opens_the_form(server: Server) -> None:
    payload = block_actions(Action.BROADCAST_NEW.value, "", user=LEADER, channel=None)
    status, _ = await server.guidebot.send_form(action_form(payload))
    assert status == 200
    await server.guidebot.idle()
    [view] = server.slack.views()
    assert view["callback_id"] == broadcast_views.BROADCAST_CALLBACK

    refused = block_actions(Action.BROADCAST_NEW.value, "", user=STAFF, channel=None)
    await server.guidebot.send_form(action_form(refused))
    await server.guidebot.idle()
    assert len(server.slack.views()) == 1
    assert [a["user_id"] for a in server.broadcasts.attempts(SCHOOL)] == [STAFF]


# --- a policy changed: the ready-made broadcast ------------------------------------------------


def change_a_policy(server: Server, tmp_path: Path) -> None:
    """Re-ingest St Anne's policy with one clause added: a pending offer."""
    samples = Path(__file__).resolve().parents[3] / "knowledge" / "samples"
    source = (samples / "st-annes.txt").read_text(encoding="utf-8")
    changed = tmp_path / "st-annes.txt"
    changed.write_text(
        source + "\n\n99. Staff must keep their phones in the staffroom.\n", encoding="utf-8"
    )
    ingest_files(server.guidebot.kb, SCHOOL, [changed])
    assert [o.policy for o in policy_changes.pending_offers(server.guidebot.kb, SCHOOL)] == [
        "st-annes"
    ]


async def test_a_changed_policy_offers_a_ready_made_broadcast(
    server: Server, tmp_path: Path
) -> None:
    change_a_policy(server, tmp_path)
    home = await home_of(server, LEADER)
    [prepare] = [
        b["accessory"]
        for b in home["blocks"]
        if b.get("accessory", {}).get("action_id", "").startswith(Action.BROADCAST_NEW.value)
    ]
    assert prepare["value"] == "st-annes"
    assert "Social Media Policy" in view_text(home)

    click = block_actions(prepare["action_id"], prepare["value"], user=LEADER, channel=None)
    status, _ = await server.guidebot.send_form(action_form(click))
    assert status == 200
    await server.guidebot.idle()
    [view] = server.slack.views()
    found = dict(_inputs(view))
    assert found[broadcast_views.TITLE]["initial_value"] == wording.policy_update_title(
        "Social Media Policy"
    )
    assert "phones in the staffroom" in found[broadcast_views.MESSAGE]["initial_value"]
    assert found[broadcast_views.POLICY]["initial_option"]["value"] == "st-annes"

    answers = {
        **ANSWERS,
        broadcast_views.TITLE: found[broadcast_views.TITLE]["initial_value"],
        broadcast_views.MESSAGE: found[broadcast_views.MESSAGE]["initial_value"],
        broadcast_views.POLICY: "st-annes",
    }
    response = await submit(server, view, answers)
    assert response["response_action"] == "update"
    [sent] = server.broadcasts.recent(SCHOOL)
    assert sent.policy == "st-annes"
    # Made from the offer, so the offer is no longer pending, and App Home says so.
    assert policy_changes.pending_offers(server.guidebot.kb, SCHOOL) == []
    home = await home_of(server, LEADER)
    assert not [a for a in action_ids(home) if a.startswith(f"{Action.BROADCAST_NEW.value}-")]
