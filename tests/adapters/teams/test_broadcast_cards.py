"""The Teams broadcast cards as pure functions, checked as Teams checks a card,
and the parity of the Teams form with the Slack modal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.slack import broadcast_views
from adapters.slack.concern_views import Metadata
from adapters.teams import broadcast_cards as cards
from adapters.teams.convert import MAX_CARD_BYTES, card_size, render
from bot import wording
from bot.broadcasts import BroadcastStatus, Draft
from bot.messages import Action, Button, Reply
from tests.adapters.teams.test_concerns_e2e import inputs, submit_data
from tests.support.adaptive_cards import assert_teams_card, submit_actions

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POLICIES = [("social-media", "Social Media Policy"), ("phones", "Mobile Phones Policy")]
GROUPS = ["office", "slt", "teaching"]
GOOD = {
    cards.TITLE: " Phones ",
    cards.MESSAGE: "Phones stay in the staffroom.",
    cards.POLICY: "phones",
    cards.AUDIENCE: cards.SOME_GROUPS,
    cards.GROUPS: "teaching,office",
    cards.ACK: "false",
    cards.SEND_ON: "2026-11-24",
    cards.SEND_TIME: "08:15",
}


def status(**changes: Any) -> BroadcastStatus:
    values: dict[str, Any] = {
        "id": 7,
        "school": "st-annes",
        "title": "New **phone** rules",
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
        "chasers": 1,
    }
    values.update(changes)
    return BroadcastStatus(**values)


def read(data: dict[str, str]) -> tuple[Draft | None, dict[str, str]]:
    return cards.read_broadcast(
        data, now=NOW, policies={k for k, _ in POLICIES}, groups=set(GROUPS)
    )


def test_the_form_is_a_card_teams_accepts() -> None:
    card = cards.broadcast_form("form-1", POLICIES, GROUPS)
    assert_teams_card(card)
    found = inputs(card)
    assert list(found) == list(cards.FIELDS)
    assert found[cards.TITLE]["maxLength"] == 150
    assert found[cards.MESSAGE]["isMultiline"] is True
    assert found[cards.GROUPS]["isMultiSelect"] is True
    assert found[cards.POLICY]["value"] == cards.NO_POLICY
    assert found[cards.ACK]["value"] == "true"
    assert "value" not in found[cards.SEND_ON] and "value" not in found[cards.SEND_TIME]
    assert submit_data(card) == {"action": "broadcast_submit", "form": "form-1"}


def test_a_hundred_policies_and_groups_at_most() -> None:
    policies = [(f"policy-{n}", f"The {n}th policy of this school") for n in range(150)]
    card = cards.broadcast_form("f", policies, [f"group {n}" for n in range(150)])
    assert_teams_card(card)
    found = inputs(card)
    assert len(found[cards.POLICY]["choices"]) == 100  # "No policy" and 99 more
    assert len(found[cards.GROUPS]["choices"]) == 100


def test_very_long_titles_give_fewer_choices_rather_than_a_card_teams_refuses() -> None:
    policies = [(f"policy-{n}", f"Policy number {n} " + "é" * 200) for n in range(150)]
    card = cards.broadcast_form("f", policies, [f"group {n}" for n in range(150)])
    assert_teams_card(card)
    assert card_size(card) <= MAX_CARD_BYTES
    choices = inputs(card)[cards.POLICY]["choices"]
    assert 1 < len(choices) < 100
    assert all(len(c["title"]) <= 100 for c in choices)


def test_a_draft_fills_it_in_in_uk_time_and_carries_the_offer() -> None:
    at = datetime(2027, 7, 1, 7, 30, tzinfo=UTC)
    draft = Draft(
        "Social media: what changed",
        "Clause 5...",
        "social-media",
        ("slt",),
        False,
        at,
        from_policy_version=3,
    )
    card = cards.broadcast_form("f", POLICIES, GROUPS, draft=draft, offer="v3:social-media")
    assert_teams_card(card)
    found = inputs(card)
    assert found[cards.TITLE]["value"] == draft.title
    assert found[cards.POLICY]["value"] == "social-media"
    assert found[cards.AUDIENCE]["value"] == cards.SOME_GROUPS
    assert found[cards.GROUPS]["value"] == "slt"
    assert found[cards.ACK]["value"] == "false"
    assert (found[cards.SEND_ON]["value"], found[cards.SEND_TIME]["value"]) == (
        "2027-07-01",
        "08:30",
    )
    data = submit_data(card)
    assert cards.offer_of(data) == "v3:social-media"


def test_a_good_submission_is_a_draft_in_uk_time() -> None:
    draft, errors = read(GOOD)
    assert errors == {}
    assert draft == Draft(
        title="Phones",
        message="Phones stay in the staffroom.",
        policy="phones",
        groups=("teaching", "office"),
        requires_ack=False,
        send_at=datetime(2026, 11, 24, 8, 15, tzinfo=UTC),  # GMT in November
    )


def test_empty_date_and_time_mean_now_and_no_policy_means_none() -> None:
    draft, _ = read(
        {
            **GOOD,
            cards.SEND_ON: "",
            cards.SEND_TIME: "",
            cards.POLICY: "none",
            cards.AUDIENCE: "everyone",
        }
    )
    assert draft is not None
    assert (draft.send_at, draft.policy, draft.groups) == (None, None, ())


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({cards.TITLE: ""}, cards.TITLE, wording.broadcast_missing_title()),
        ({cards.MESSAGE: "x" * 3001}, cards.MESSAGE, wording.broadcast_too_long(3000)),
        ({cards.POLICY: "gone"}, cards.POLICY, wording.broadcast_unknown_policy()),
        ({cards.GROUPS: ""}, cards.GROUPS, wording.broadcast_no_groups_chosen()),
        ({cards.GROUPS: "nobody"}, cards.GROUPS, wording.broadcast_unknown_group()),
        ({cards.SEND_TIME: ""}, cards.SEND_ON, wording.broadcast_half_send_time()),
        ({cards.SEND_ON: "24/11/2026"}, cards.SEND_ON, wording.broadcast_no_send_time()),
        ({cards.SEND_ON: "2026-11-23"}, cards.SEND_ON, wording.broadcast_send_time_past()),
    ],
)
def test_each_problem_is_named(changes: dict[str, str], field: str, message: str) -> None:
    draft, errors = read({**GOOD, **changes})
    assert draft is None
    assert errors == {field: message}


def test_a_form_sent_back_with_problems_keeps_the_answers() -> None:
    errors = {cards.GROUPS: wording.broadcast_no_groups_chosen()}
    card = cards.broadcast_form("f", POLICIES, GROUPS, values=GOOD, errors=errors)
    assert_teams_card(card)
    assert wording.broadcast_no_groups_chosen() in json.dumps(card)
    found = inputs(card)
    assert found[cards.MESSAGE]["value"] == GOOD[cards.MESSAGE]
    assert found[cards.GROUPS]["value"] == "teaching,office"


def test_the_status_card_caps_names_and_offers_buttons() -> None:
    card = cards.status_card([status()], [("phones", "Mobile Phones Policy")])
    assert_teams_card(card)
    text = json.dumps(card, ensure_ascii=False)
    assert "Person 19" in text and "Person 20," not in text
    assert wording.broadcast_and_more(10) in text
    assert "\\\\*\\\\*phone\\\\*\\\\*" in text  # the leader's words are not Markdown
    assert [a["data"] for a in submit_actions(card)] == [
        {"action": Action.BROADCAST_NEW.value, "value": "phones"},
        {"action": Action.BROADCAST_NEW.value, "value": ""},
    ]


def test_the_status_card_of_many_broadcasts_fits() -> None:
    card = cards.status_card([status(id=n) for n in range(10)])
    assert_teams_card(card)
    assert card_size(card) <= MAX_CARD_BYTES


def test_the_ack_button_under_a_broadcast_is_a_submit_teams_sends_back() -> None:
    reply = Reply(
        "New phone rules",
        buttons=(Button("I have read and understood", Action.BROADCAST_ACK, "7", "primary"),),
        kind="notice",
    )
    card = render(reply)
    assert_teams_card(card)
    [action] = submit_actions(card)
    assert action["data"] == {"action": "broadcast_ack", "value": "7"}
    assert action["style"] == "positive"


# --- parity with the Slack modal ---------------------------------------------------------------


def test_the_slack_modal_and_the_teams_card_collect_the_same_fields() -> None:
    """Both forms ask the same questions and read into the same Draft."""
    modal = broadcast_views.broadcast_modal(Metadata("st-annes", "T0"), POLICIES, GROUPS)
    slack_questions = [b["block_id"] for b in modal["blocks"] if b["type"] == "input"]
    teams_questions = list(inputs(cards.broadcast_form("f", POLICIES, GROUPS)))
    # The same names, except that Slack's one date-and-time picker (with "now or
    # later") is two inputs in Teams (date and time; empty for now).
    assert set(slack_questions) - {broadcast_views.WHEN, broadcast_views.SEND_AT} == set(
        teams_questions
    ) - {cards.SEND_ON, cards.SEND_TIME}
    assert set(broadcast_views.FIELD_BLOCKS) == set(cards.FIELD_INPUTS)
    assert set(cards.FIELD_INPUTS) >= {
        "title",
        "message",
        "policy",
        "groups",
        "requires_ack",
        "send_at",
    }
    assert broadcast_views.MAX_TITLE == cards.MAX_TITLE == 150
    assert broadcast_views.MAX_MESSAGE == cards.MAX_MESSAGE == 3000

    at = NOW + timedelta(days=1)
    local = at.astimezone(cards.LONDON)
    teams_draft, _ = read(
        {**GOOD, cards.SEND_ON: local.date().isoformat(), cards.SEND_TIME: f"{local:%H:%M}"}
    )

    def option(value: str) -> dict[str, Any]:
        return {"value": value}

    state = {
        broadcast_views.TITLE: {"value": GOOD[cards.TITLE]},
        broadcast_views.MESSAGE: {"value": GOOD[cards.MESSAGE]},
        broadcast_views.POLICY: {"selected_option": option("phones")},
        broadcast_views.AUDIENCE: {"selected_option": option("groups")},
        broadcast_views.GROUPS: {"selected_options": [option("teaching"), option("office")]},
        broadcast_views.ACK: {"selected_options": []},
        broadcast_views.WHEN: {"selected_option": option("later")},
        broadcast_views.SEND_AT: {"selected_date_time": int(at.timestamp())},
    }
    values = {block: {broadcast_views.ACTION: value} for block, value in state.items()}
    slack_draft, _ = broadcast_views.read_broadcast(
        {**modal, "state": {"values": values}},
        now=NOW,
        policies={k for k, _ in POLICIES},
        groups=set(GROUPS),
    )
    assert slack_draft == teams_draft is not None
