"""The Slack broadcast views as pure functions: Block Kit limits, prefill,
validation, status and App Home."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.slack import broadcast_views as views
from adapters.slack.concern_views import Metadata, read_metadata
from adapters.slack.convert import home_view
from bot import wording
from bot.broadcasts import BroadcastStatus, Draft
from bot.messages import Action

META = Metadata("st-annes", "T0ANNES")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POLICIES = [("social-media", "Social Media Policy"), ("phones", "Mobile Phones Policy")]
GROUPS = ["office", "slt", "teaching"]


def status(**changes: Any) -> BroadcastStatus:
    values: dict[str, Any] = {
        "id": 7,
        "school": "st-annes",
        "title": "New <!channel> phone rules",
        "author": "Lena Leader",
        "created_at": "2026-11-23T09:00:00+00:00",
        "send_at": "2026-11-23T09:00:00+00:00",
        "state": "sent",
        "requires_ack": True,
        "recipients": 40,
        "delivered": 38,
        "acknowledged": 10,
        "outstanding": tuple(f"Person {n}" for n in range(30)),
        "unreachable": ("Olly Office",),
        "chasers": 0,
    }
    values.update(changes)
    return BroadcastStatus(**values)


def inputs(view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}


def submitted(view: Mapping[str, Any], state: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        **view,
        "state": {"values": {block: {views.ACTION: value} for block, value in state.items()}},
    }


def option(value: str) -> dict[str, Any]:
    return {"value": value, "text": {"type": "plain_text", "text": value}}


GOOD_STATE: dict[str, dict[str, Any]] = {
    views.TITLE: {"type": "plain_text_input", "value": "  Phones  "},
    views.MESSAGE: {"type": "plain_text_input", "value": "Phones stay in the staffroom."},
    views.POLICY: {"type": "static_select", "selected_option": option("phones")},
    views.AUDIENCE: {"type": "radio_buttons", "selected_option": option(views.SOME_GROUPS)},
    views.GROUPS: {
        "type": "multi_static_select",
        "selected_options": [option("teaching"), option("office")],
    },
    views.ACK: {"type": "checkboxes", "selected_options": []},
    views.WHEN: {"type": "radio_buttons", "selected_option": option(views.LATER)},
    views.SEND_AT: {
        "type": "datetimepicker",
        "selected_date_time": int((NOW + timedelta(days=1)).timestamp()),
    },
}


def read(state: dict[str, dict[str, Any]]) -> tuple[Draft | None, dict[str, str]]:
    view = views.broadcast_modal(META, POLICIES, GROUPS)
    return views.read_broadcast(
        submitted(view, state),
        now=NOW,
        policies={k for k, _ in POLICIES},
        groups=set(GROUPS),
    )


# --- the form ------------------------------------------------------------------------------------


def test_the_form_asks_every_question_within_block_kit_limits() -> None:
    view = views.broadcast_modal(META, POLICIES, GROUPS)
    assert view["callback_id"] == views.BROADCAST_CALLBACK
    assert read_metadata(view) == META
    found = inputs(view)
    assert list(found) == list(views.FIELDS)
    assert found[views.TITLE]["max_length"] == 150
    assert found[views.MESSAGE]["max_length"] == 3000
    assert found[views.AUDIENCE]["initial_option"]["value"] == views.EVERYONE
    assert found[views.WHEN]["initial_option"]["value"] == views.NOW
    assert [o["value"] for o in found[views.ACK]["initial_options"]] == [views.REQUIRED]
    assert "initial_option" not in found[views.POLICY]
    for text in (view["title"], view["submit"], view["close"]):
        assert len(text["text"]) <= 24


def test_a_hundred_options_at_most_and_long_titles_are_cut() -> None:
    policies = [(f"policy-{n}", f"Policy number {n} " + "x" * 100) for n in range(150)]
    view = views.broadcast_modal(META, policies, [f"group {n}" for n in range(120)])
    found = inputs(view)
    assert len(found[views.POLICY]["options"]) == 100
    assert len(found[views.GROUPS]["options"]) == 100
    assert all(len(o["text"]["text"]) <= 75 for o in found[views.POLICY]["options"])
    assert len(view["blocks"]) <= 100
    assert len(json.dumps(view["private_metadata"])) < 3000


def test_without_policies_or_groups_those_questions_are_left_out() -> None:
    view = views.broadcast_modal(META, [], [])
    found = inputs(view)
    assert views.POLICY not in found and views.GROUPS not in found
    assert [o["value"] for o in found[views.AUDIENCE]["options"]] == [views.EVERYONE]


def test_a_draft_fills_the_form_in() -> None:
    at = NOW + timedelta(days=2)
    draft = Draft(
        title="Social media policy: what has changed",
        message="Clause 5 now says...",
        policy="social-media",
        groups=("teaching",),
        requires_ack=False,
        send_at=at,
        from_policy_version=3,
    )
    found = inputs(views.broadcast_modal(META, POLICIES, GROUPS, draft))
    assert found[views.TITLE]["initial_value"] == draft.title
    assert found[views.MESSAGE]["initial_value"] == draft.message
    assert found[views.POLICY]["initial_option"]["value"] == "social-media"
    assert found[views.AUDIENCE]["initial_option"]["value"] == views.SOME_GROUPS
    assert [o["value"] for o in found[views.GROUPS]["initial_options"]] == ["teaching"]
    assert "initial_options" not in found[views.ACK]
    assert found[views.WHEN]["initial_option"]["value"] == views.LATER
    assert found[views.SEND_AT]["initial_date_time"] == int(at.timestamp())


# --- reading a submission ---------------------------------------------------------------------


def test_a_good_submission_is_a_draft() -> None:
    draft, errors = read(GOOD_STATE)
    assert errors == {}
    assert draft == Draft(
        title="Phones",
        message="Phones stay in the staffroom.",
        policy="phones",
        groups=("teaching", "office"),
        requires_ack=False,
        send_at=NOW + timedelta(days=1),
    )


def test_everyone_now_ignores_the_groups_and_the_picker() -> None:
    state = {
        **GOOD_STATE,
        views.AUDIENCE: {"type": "radio_buttons", "selected_option": option(views.EVERYONE)},
        views.WHEN: {"type": "radio_buttons", "selected_option": option(views.NOW)},
        views.ACK: {"type": "checkboxes", "selected_options": [option(views.REQUIRED)]},
    }
    draft, _ = read(state)
    assert draft is not None
    assert (draft.groups, draft.send_at, draft.requires_ack) == ((), None, True)


def test_each_problem_is_named_beside_its_question() -> None:
    state = {
        **GOOD_STATE,
        views.TITLE: {"type": "plain_text_input", "value": "x" * 151},
        views.MESSAGE: {"type": "plain_text_input", "value": "   "},
        views.POLICY: {"type": "static_select", "selected_option": option("gone")},
        views.GROUPS: {"type": "multi_static_select", "selected_options": [option("nobody")]},
        views.SEND_AT: {"type": "datetimepicker", "selected_date_time": None},
    }
    draft, errors = read(state)
    assert draft is None
    assert errors == {
        views.TITLE: wording.broadcast_too_long(150),
        views.MESSAGE: wording.broadcast_missing_message(),
        views.POLICY: wording.broadcast_unknown_policy(),
        views.GROUPS: wording.broadcast_unknown_group(),
        views.SEND_AT: wording.broadcast_no_send_time(),
    }


def test_a_send_time_must_be_in_the_future() -> None:
    state = {
        **GOOD_STATE,
        views.SEND_AT: {"type": "datetimepicker", "selected_date_time": int(NOW.timestamp())},
    }
    _, errors = read(state)
    assert errors == {views.SEND_AT: wording.broadcast_send_time_past()}


# --- status and App Home ----------------------------------------------------------------------


def test_status_caps_the_names_and_neutralises_the_title() -> None:
    message = views.status_message([status()])
    text = json.dumps(message["blocks"], ensure_ascii=False)
    assert "Person 19" in text and "Person 20," not in text
    assert wording.broadcast_and_more(10) in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" not in text
    assert "@channel" in text
    assert "Olly Office" in text
    assert wording.broadcast_counts(40, 38, 10, True) in text
    assert len(message["blocks"]) <= 50


def test_status_of_many_broadcasts_stays_within_fifty_blocks() -> None:
    many = [status(id=n, chasers=2) for n in range(30)]
    blocks = views.status_message(many)["blocks"]
    assert len(blocks) <= 50
    assert all(len(json.dumps(b)) < 3500 for b in blocks)


def test_a_scheduled_broadcast_says_when() -> None:
    later = status(state="scheduled", send_at="2026-12-01T08:30:00+00:00", outstanding=())
    text = json.dumps(views.status_blocks(later))
    assert "Tuesday 1 December 2026 at 08:30" in text
    assert wording.broadcast_outstanding("")[:10] not in text


def test_the_home_section_goes_before_the_closing_buttons() -> None:
    home = home_view("St Anne's", [])
    offers = [("phones", "Mobile Phones Policy"), ("social-media", "Social Media Policy")]
    view = views.with_broadcasts(home, views.home_section([status()], offers))
    ids = [
        element["action_id"]
        for block in view["blocks"]
        for element in [*block.get("elements", []), block.get("accessory") or {}]
        if "action_id" in element
    ]
    assert ids == [
        "broadcast_new-1",
        "broadcast_new-2",
        Action.BROADCAST_NEW.value,
        Action.ASK_QUESTION.value,
        Action.REPORT_CONCERN.value,
    ]
    values = [block["accessory"]["value"] for block in view["blocks"] if "accessory" in block]
    assert values == ["phones", "social-media"]


def test_the_home_view_never_passes_a_hundred_blocks() -> None:
    home = home_view("St Anne's", [])
    offers = [(f"policy-{n}", f"Policy {n}") for n in range(120)]
    view = views.with_broadcasts(home, views.home_section([status()] * 5, offers))
    assert len(view["blocks"]) == 100
    assert view["blocks"][-1]["type"] == "actions"  # the ordinary buttons survive
    assert any(
        e.get("action_id") == Action.BROADCAST_NEW.value
        for b in view["blocks"]
        for e in b.get("elements", [])
    )


def test_acknowledged_blocks_replace_the_button_with_when() -> None:
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "hello"}},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": "broadcast_ack", "value": "7"},
                {"type": "button", "action_id": "ask_question", "value": "x"},
            ],
        },
    ]
    updated = views.acknowledged_blocks(blocks, "Monday 23 November 2026 at 09:00")
    assert updated is not None
    assert [b["type"] for b in updated] == ["section", "actions", "context"]
    assert [e["action_id"] for e in updated[1]["elements"]] == ["ask_question"]
    assert "23 November 2026 at 09:00" in updated[2]["elements"][0]["text"]
    assert views.acknowledged_blocks(blocks[:1], "then") is None


def test_london_time_follows_british_summer_time() -> None:
    assert views.london_time("2026-07-01T07:30:00+00:00") == "Wednesday 1 July 2026 at 08:30"
    assert views.london_time("2026-12-01T07:30:00") == "Tuesday 1 December 2026 at 07:30"
