"""Slack payloads in, Block Kit out: the pure conversions at the Slack edge.

The payloads are written out the way Slack sends them (Events API envelopes,
slash-command forms, block_actions), and every rendered message is checked
against Slack's limits by ``assert_within_slack_limits``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.convert import (
    MAX_BLOCKS,
    MAX_BUTTON_TEXT,
    MAX_BUTTON_VALUE,
    MAX_SECTION_TEXT,
    escape,
    home_view,
    neutralise,
    render,
    to_click,
    to_incoming,
)
from bot import wording
from bot.answers import Answerer
from bot.messages import Action, Button, Click, Quote, Reply
from bot.storage import Operations, StoredQuestion
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

SCHOOL = "st-annes"
BOT = "U0GUIDEBOT"
HOSTILE = "<!channel> <!here> <!everyone> <!subteam^S0HEADS|@heads> <@U0ALICE> <@W0BOB|bob> <#C0STAFF|staffroom> <https://evil.example/login|the real policy>"  # noqa: E501
RAW_MARKUP = re.compile(r"<[!@#]|<https?:|<mailto:")

# --- checking rendered payloads --------------------------------------------------------

TEXT_LIMITS = {"plain_text": MAX_SECTION_TEXT, "mrkdwn": MAX_SECTION_TEXT}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def block_texts(payload: dict[str, Any]) -> list[str]:
    """Every text object's text, anywhere in the blocks."""
    return [
        node["text"]
        for node in _walk(payload["blocks"])
        if node.get("type") in TEXT_LIMITS and isinstance(node.get("text"), str)
    ]


def assert_within_slack_limits(payload: dict[str, Any]) -> None:
    """Slack would accept this message (or Home tab view)."""
    blocks = payload["blocks"]
    assert blocks
    assert len(blocks) <= (100 if payload.get("type") == "home" else MAX_BLOCKS)
    if "text" in payload:
        assert isinstance(payload["text"], str)
        assert len(payload["text"]) <= 3000
    for node in _walk(blocks):
        kind = node.get("type")
        if kind in TEXT_LIMITS and "text" in node:
            assert isinstance(node["text"], str)
            assert 1 <= len(node["text"]) <= TEXT_LIMITS[kind], node["text"][:80]
            if kind == "plain_text":
                assert "verbatim" not in node
            else:
                assert "emoji" not in node
        elif kind == "section":
            assert len(node["text"]["text"]) <= MAX_SECTION_TEXT
        elif kind == "header":
            assert node["text"]["type"] == "plain_text"
            assert len(node["text"]["text"]) <= 150
        elif kind == "context":
            assert 1 <= len(node["elements"]) <= 10
        elif kind == "button":
            assert node["text"]["type"] == "plain_text"
            assert 1 <= len(node["text"]["text"]) <= MAX_BUTTON_TEXT
            assert len(node.get("value", "")) <= MAX_BUTTON_VALUE
            assert 1 <= len(node["action_id"]) <= 255
            assert node.get("style") in (None, "primary", "danger")
        elif kind == "actions":
            ids = [element["action_id"] for element in node["elements"]]
            assert 1 <= len(ids) <= 25
            assert len(ids) == len(set(ids)), ids


def sections(payload: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]


def contexts(payload: dict[str, Any]) -> list[str]:
    return [e["text"] for b in payload["blocks"] if b["type"] == "context" for e in b["elements"]]


def buttons(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]


def unquote(section_text: str) -> str:
    """A blockquote section back to the text it quotes."""
    lines = section_text.split("\n")
    assert all(line.startswith("> ") for line in lines)
    return (
        "\n".join(line[2:] for line in lines)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


# --- Slack payloads, as Slack sends them -------------------------------------------------


def event_body(event: dict[str, Any], event_id: str = "Ev0DM0001") -> dict[str, Any]:
    """An Events API envelope around one event."""
    return {
        "token": "verification-token",
        "team_id": "T0SCHOOL",
        "api_app_id": "A0GUIDEBOT",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1718000000,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": "T0SCHOOL",
                "user_id": BOT,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UifQ",
    }


def dm_event(text: str, **extra: Any) -> dict[str, Any]:
    event = {
        "client_msg_id": "5b1c4e3a-0d5e-4b6a-9f3e-111111111111",
        "type": "message",
        "text": text,
        "user": "U0TEACHER",
        "ts": "1718000000.000100",
        "blocks": [],
        "team": "T0SCHOOL",
        "channel": "D0TEACHER",
        "event_ts": "1718000000.000100",
        "channel_type": "im",
    }
    event.update(extra)
    return event


def mention_event(text: str, **extra: Any) -> dict[str, Any]:
    event = {
        "client_msg_id": "5b1c4e3a-0d5e-4b6a-9f3e-222222222222",
        "type": "app_mention",
        "text": text,
        "user": "U0TEACHER",
        "ts": "1718000100.000200",
        "blocks": [],
        "team": "T0SCHOOL",
        "channel": "C0STAFF",
        "event_ts": "1718000100.000200",
    }
    event.update(extra)
    return event


def slash_command(text: str) -> dict[str, Any]:
    """A slash command, as bolt hands over the parsed form."""
    return {
        "token": "verification-token",
        "team_id": "T0SCHOOL",
        "team_domain": "stannes",
        "channel_id": "C0STAFF",
        "channel_name": "staffroom",
        "user_id": "U0TEACHER",
        "user_name": "j.smith",
        "command": "/policy",
        "text": text,
        "api_app_id": "A0GUIDEBOT",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.com/commands/T0SCHOOL/1/abc",
        "trigger_id": "1337.42.abcdef",
    }


def block_actions(actions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "block_actions",
        "user": {
            "id": "U0TEACHER",
            "username": "j.smith",
            "name": "j.smith",
            "team_id": "T0SCHOOL",
        },
        "api_app_id": "A0GUIDEBOT",
        "token": "verification-token",
        "container": {
            "type": "message",
            "message_ts": "1718000200.000300",
            "channel_id": "D0TEACHER",
            "is_ephemeral": False,
        },
        "trigger_id": "1337.42.fedcba",
        "team": {"id": "T0SCHOOL", "domain": "stannes"},
        "channel": {"id": "D0TEACHER", "name": "directmessage"},
        "message": {"type": "message", "ts": "1718000200.000300", "text": "From ..."},
        "response_url": "https://hooks.slack.com/actions/T0SCHOOL/2/xyz",
        "actions": actions,
    }
    body.update(extra)
    return body


def button_action(action_id: str, value: str = "42") -> dict[str, Any]:
    return {
        "action_id": action_id,
        "block_id": "b1",
        "text": {"type": "plain_text", "text": "Helpful", "emoji": True},
        "value": value,
        "type": "button",
        "action_ts": "1718000210.123456",
    }


# --- events in ------------------------------------------------------------------------


def test_a_direct_message_is_a_direct_question_answered_in_the_conversation() -> None:
    body = event_body(dm_event("can I accept a friend request from an ex-pupil?"), "Ev0DM0042")
    incoming = to_incoming(body, SCHOOL)
    assert incoming is not None
    assert incoming.platform == "slack"
    assert incoming.school == SCHOOL
    assert incoming.kind == "direct"
    assert incoming.text == "can I accept a friend request from an ex-pupil?"
    assert incoming.user_id == "U0TEACHER"
    assert incoming.conversation_id == "D0TEACHER"
    assert incoming.thread_id is None
    assert incoming.event_id == "Ev0DM0042"


def test_a_reply_in_a_direct_message_thread_is_answered_in_that_thread() -> None:
    event = dm_event("and what about former pupils over 18?", thread_ts="1717999000.000050")
    incoming = to_incoming(event_body(event), SCHOOL)
    assert incoming is not None
    assert incoming.kind == "direct"
    assert incoming.thread_id == "1717999000.000050"


def test_a_mention_loses_the_bots_name_and_is_answered_in_a_thread() -> None:
    body = event_body(mention_event(f"<@{BOT}> can I give a pupil a lift home?"), "Ev0MENTION1")
    incoming = to_incoming(body, SCHOOL)
    assert incoming is not None
    assert incoming.kind == "mention"
    assert incoming.text == "can I give a pupil a lift home?"
    assert incoming.conversation_id == "C0STAFF"
    assert incoming.thread_id == "1718000100.000200"  # the message's own ts starts the thread
    assert incoming.event_id == "Ev0MENTION1"


def test_a_mention_inside_a_thread_is_answered_in_that_thread() -> None:
    event = mention_event(
        f"<@{BOT}>: <@U0ALICE> what does the policy say?", thread_ts="1717990000.000001"
    )
    incoming = to_incoming(event_body(event), SCHOOL)
    assert incoming is not None
    assert incoming.text == "what does the policy say?"  # every leading mention removed
    assert incoming.thread_id == "1717990000.000001"


def test_slack_markup_and_entities_reach_the_core_as_what_was_typed() -> None:
    text = (
        f"is it ok for <@U0ALICE> &amp; me to share <https://example.org/x?a=1&amp;b=2|this> "
        f"in <#C0STAFF|staffroom> if marks are &lt; 50? <@{BOT}>"
    )
    incoming = to_incoming(event_body(dm_event(text)), SCHOOL)
    assert incoming is not None
    assert incoming.text == (
        "is it ok for @U0ALICE & me to share this (https://example.org/x?a=1&b=2) "
        "in #staffroom if marks are < 50?"
    )
    # and echoing it back escapes once, not twice
    assert neutralise(incoming.text).count("&amp;") == 2
    assert "&amp;amp;" not in neutralise(incoming.text)


def test_a_thread_broadcast_reply_is_still_a_question() -> None:
    event = dm_event(
        "is this still right?", subtype="thread_broadcast", thread_ts="1717999000.000050"
    )
    incoming = to_incoming(event_body(event), SCHOOL)
    assert incoming is not None
    assert incoming.thread_id == "1717999000.000050"


@pytest.mark.parametrize(
    ("case", "body"),
    [
        (
            "our own bot message",
            event_body(dm_event("From Social Media Policy ...", bot_id="B0GUIDEBOT")),
        ),
        (
            "bot_message subtype",
            event_body(
                {
                    k: v
                    for k, v in dm_event("weekly digest", subtype="bot_message").items()
                    if k != "user"
                }
                | {"bot_id": "B0OTHER", "username": "digest"}
            ),
        ),
        (
            "an edit",
            event_body(
                {
                    "type": "message",
                    "subtype": "message_changed",
                    "channel": "D0TEACHER",
                    "channel_type": "im",
                    "hidden": True,
                    "ts": "1718000300.000400",
                    "event_ts": "1718000300.000400",
                    "message": {
                        "type": "message",
                        "user": "U0TEACHER",
                        "text": "can I accept a friend request? (edited)",
                        "edited": {"user": "U0TEACHER", "ts": "1718000300.000000"},
                        "ts": "1718000000.000100",
                    },
                    "previous_message": {
                        "type": "message",
                        "user": "U0TEACHER",
                        "text": "can I accept a friend request?",
                        "ts": "1718000000.000100",
                    },
                }
            ),
        ),
        (
            "a deletion",
            event_body(
                {
                    "type": "message",
                    "subtype": "message_deleted",
                    "channel": "D0TEACHER",
                    "channel_type": "im",
                    "hidden": True,
                    "deleted_ts": "1718000000.000100",
                    "ts": "1718000400.000500",
                    "event_ts": "1718000400.000500",
                }
            ),
        ),
        (
            "a channel join",
            event_body(
                dm_event(
                    "<@U0NEW> has joined the channel",
                    subtype="channel_join",
                    channel="C0STAFF",
                    channel_type="channel",
                    user="U0NEW",
                )
            ),
        ),
        (
            "a message in a channel",
            event_body(
                dm_event("anyone got the trip form?", channel="C0STAFF", channel_type="channel")
            ),
        ),
        (
            "a group DM message",
            event_body(dm_event("lunch?", channel="G0GROUP", channel_type="mpim")),
        ),
        (
            "a pin in a direct message",
            event_body(
                dm_event(
                    "<@U0TEACHER> pinned a message to this conversation.",
                    subtype="pinned_item",
                    item_type="C",
                )
            ),
        ),
        ("a message with empty text", event_body(dm_event(""))),
        (
            "a message without text",
            event_body({k: v for k, v in dm_event("x").items() if k != "text"}),
        ),
        (
            "a reaction",
            event_body(
                {
                    "type": "reaction_added",
                    "user": "U0TEACHER",
                    "reaction": "thumbsup",
                    "item": {"type": "message", "channel": "D0TEACHER", "ts": "1.2"},
                    "event_ts": "1718000500.000600",
                }
            ),
        ),
        ("url verification", {"token": "t", "challenge": "abc", "type": "url_verification"}),
    ],
)
def test_events_the_bot_must_ignore(case: str, body: dict[str, Any]) -> None:
    assert to_incoming(body, SCHOOL) is None, case


def test_a_slash_command_is_a_command_with_no_delivery_id() -> None:
    incoming = to_incoming(slash_command("whistleblowing  &amp; who to tell"), SCHOOL)
    assert incoming is not None
    assert incoming.kind == "command"
    assert incoming.text == "whistleblowing  & who to tell"
    assert incoming.user_id == "U0TEACHER"
    assert incoming.conversation_id == "C0STAFF"
    assert incoming.event_id is None  # the trigger_id is not a delivery id
    assert incoming.thread_id is None


def test_a_bare_slash_command_reaches_the_core_empty_so_it_gets_help() -> None:
    incoming = to_incoming(slash_command(""), SCHOOL)
    assert incoming is not None
    assert incoming.text == ""


# --- clicks in ------------------------------------------------------------------------


def test_a_button_press_is_a_click() -> None:
    body = block_actions([button_action("feedback_helpful", "42")])
    assert to_click(body, SCHOOL) == Click(
        platform="slack",
        school=SCHOOL,
        user_id="U0TEACHER",
        action=Action.HELPFUL,
        value="42",
        conversation_id="D0TEACHER",
    )


def test_a_press_in_an_ephemeral_message_finds_the_channel_in_its_container() -> None:
    body = block_actions([button_action("report_concern", "7")])
    del body["channel"]
    body["container"] = {
        "type": "message",
        "message_ts": "1718000200.000300",
        "channel_id": "C0STAFF",
        "is_ephemeral": True,
    }
    click = to_click(body, SCHOOL)
    assert click is not None
    assert click.action is Action.REPORT_CONCERN
    assert click.conversation_id == "C0STAFF"


def test_a_press_on_the_home_tab_has_no_conversation() -> None:
    body = block_actions([button_action("ask_question", "home")])
    del body["channel"]
    body["container"] = {"type": "view", "view_id": "V0HOME"}
    body["view"] = {"id": "V0HOME", "type": "home"}
    click = to_click(body, SCHOOL)
    assert click is not None
    assert click.action is Action.ASK_QUESTION
    assert click.value == "home"
    assert click.conversation_id is None


def test_unknown_actions_are_ignored_and_the_first_known_one_wins() -> None:
    assert to_click(block_actions([button_action("open_calendar")]), SCHOOL) is None
    body = block_actions([button_action("open_calendar"), button_action("pass_to_contact", "9")])
    click = to_click(body, SCHOOL)
    assert click is not None
    assert (click.action, click.value) == (Action.PASS_TO_CONTACT, "9")


def test_other_interactive_payloads_are_not_clicks() -> None:
    body = block_actions([button_action("feedback_helpful")], type="view_submission")
    assert to_click(body, SCHOOL) is None


# --- text safety ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("<!channel> hi <@U1>", "@channel hi @U1"),
        ("<!here|here> and <!everyone>", "@here and @everyone"),
        ("<!subteam^S0HEADS|@heads> and <!subteam^S0SLT>", "@heads and @S0SLT"),
        ("<@W0BOB|bob> in <#C0STAFF|staffroom> or <#C0OFFICE>", "@bob in #staffroom or #C0OFFICE"),
        (
            "see <https://evil.example/login|the policy>",
            "see the policy (https://evil.example/login)",
        ),
        ("<https://www.gov.uk|www.gov.uk> and <https://gov.uk>", "www.gov.uk and https://gov.uk"),
        ("<mailto:dsl@school.example|dsl@school.example>", "dsl@school.example"),
        ("<\u200b!channel> and <!\u200bhere> and <@\u2060U1>", "@channel and @here and @U1"),
        ("\u202eevil\u202c text\ufeff", "evil text"),
        ("marks < 50 & > 10 <b>", "marks &lt; 50 &amp; &gt; 10 &lt;b&gt;"),
        ("can I give a pupil a lift home?", "can I give a pupil a lift home?"),
    ],
)
def test_neutralise(typed: str, shown: str) -> None:
    assert neutralise(typed) == shown
    assert not RAW_MARKUP.search(neutralise(typed))


def test_escape_touches_only_the_three_characters() -> None:
    assert escape("Staff & pupils: <b> *bold* _it_ > 1") == (
        "Staff &amp; pupils: &lt;b&gt; *bold* _it_ &gt; 1"
    )


# --- rendering ------------------------------------------------------------------------

QUOTE = Quote(
    "Staff should not accept 'friend' requests from pupils or ex-pupils under the age of 18.",
    "Social Media Policy",
    "Personal Use of Social Media by Staff",
    "4",
)


def answer(quote: Quote = QUOTE, **fields: Any) -> Reply:
    fields.setdefault(
        "buttons",
        (
            Button(wording.helpful_label(), Action.HELPFUL, "12", "primary"),
            Button(wording.not_helpful_label(), Action.NOT_HELPFUL, "12"),
            Button(wording.report_label(), Action.REPORT_CONCERN, "12", "danger"),
        ),
    )
    return Reply(f"From {quote.source}:\n{quote.text}", quote=quote, question_id=12, **fields)


def test_an_answer_quotes_the_clause_then_its_source_notes_and_buttons() -> None:
    payload = render(answer(notes=(wording.concern_offer(),)))
    assert_within_slack_limits(payload)
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds == ["section", "context", "section", "actions"]
    assert payload["blocks"][0]["text"]["text"] == f"> {QUOTE.text}"
    assert payload["blocks"][1]["elements"][0]["text"] == (
        "From *Social Media Policy* (Personal Use of Social Media by Staff, paragraph 4)"
    )
    assert payload["blocks"][2]["text"]["text"] == wording.concern_offer()
    assert [(b["action_id"], b["value"], b.get("style")) for b in buttons(payload)] == [
        ("feedback_helpful", "12", "primary"),
        ("feedback_not_helpful", "12", None),
        ("report_concern", "12", "danger"),
    ]
    assert buttons(payload)[0]["text"] == {"type": "plain_text", "text": "Helpful", "emoji": True}
    assert all(
        t["verbatim"] is True
        for b in payload["blocks"]
        for t in _walk(b)
        if t.get("type") == "mrkdwn"
    )


def test_the_fallback_text_has_the_source_and_the_start_of_the_clause() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    payload = render(answer(Quote(text, "Code of Conduct", "Gifts", None)))
    assert_within_slack_limits(payload)
    assert payload["text"].startswith("From Code of Conduct (Gifts):")
    assert text[:200] in payload["text"]
    assert payload["text"].endswith("…")


def test_see_also_clauses_follow_a_divider_each_with_its_source() -> None:
    related = Quote(
        "Staff must not share personal phone numbers with pupils.",
        "Code of Conduct",
        "Contact",
        "2",
    )
    payload = render(answer(see_also=(related,)))
    assert_within_slack_limits(payload)
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds == ["section", "context", "divider", "section", "context", "section", "actions"]
    assert sections(payload)[1] == "*See also*"
    assert contexts(payload)[1] == "From *Code of Conduct* (Contact, paragraph 2)"
    assert sections(payload)[2] == f"> {related.text}"


def test_a_long_clause_is_split_across_sections_at_words_not_truncated() -> None:
    words = [f"w{i}&<{i % 7}>" if i % 50 == 0 else f"word{i}" for i in range(1600)]
    text = " ".join(words[:800]) + "\n" + " ".join(words[800:])
    assert len(text) > 10_000
    payload = render(answer(Quote(text, "Behaviour Policy", "Sanctions", None)))
    assert_within_slack_limits(payload)
    quoted = [s for s in sections(payload) if s.startswith("> ")]
    assert len(quoted) >= 4
    assert all(len(s) <= MAX_SECTION_TEXT for s in quoted)
    rebuilt = " ".join(unquote(s) for s in quoted)
    assert rebuilt.split() == text.split()  # every word, in order, none cut in half
    assert wording.rest_in_policy("Behaviour Policy") not in " ".join(contexts(payload))


def test_a_clause_of_many_short_lines_counts_each_quote_marker() -> None:
    text = "\n".join(f"- item {i} & more" for i in range(1500))
    payload = render(answer(Quote(text, "Health and Safety Policy", "Checklist", None)))
    assert_within_slack_limits(payload)
    quoted = [s for s in sections(payload) if s.startswith("> ")]
    assert len(quoted) > 1
    assert " ".join(unquote(s) for s in quoted).split() == text.split()


def test_a_clause_too_long_for_fifty_blocks_ends_by_pointing_to_the_policy() -> None:
    text = " ".join(f"word{i}" for i in range(40_000))  # about 300,000 characters
    payload = render(answer(Quote(text, "Safeguarding & Child Protection Policy", "Annex", None)))
    assert_within_slack_limits(payload)
    assert len(payload["blocks"]) == MAX_BLOCKS
    assert wording.rest_in_policy("Safeguarding &amp; Child Protection Policy") in contexts(payload)
    assert payload["blocks"][-1]["type"] == "actions"  # the buttons survive
    assert len(buttons(payload)) == 3
    quoted = [unquote(s) for s in sections(payload) if s.startswith("> ")]
    assert " ".join(quoted).split() == text.split()[: len(" ".join(quoted).split())]


def test_however_many_notes_the_message_stays_within_fifty_blocks_and_keeps_its_buttons() -> None:
    payload = render(answer(notes=tuple(f"Note {i}" for i in range(80))))
    assert_within_slack_limits(payload)
    assert len(payload["blocks"]) == MAX_BLOCKS
    assert payload["blocks"][0]["text"]["text"] == f"> {QUOTE.text}"
    assert payload["blocks"][-1]["type"] == "actions"
    assert len(buttons(payload)) == 3


def test_a_long_button_label_is_cut_at_a_word_with_an_ellipsis() -> None:
    label = "Pass my question to " + "Mrs Bartholomew-Featherstonehaugh, Deputy Headteacher " * 2
    label = label[:100]
    reply = Reply("Sorry", buttons=(Button(label, Action.PASS_TO_CONTACT, "3"),), kind="not_found")
    payload = render(reply)
    assert_within_slack_limits(payload)
    shown = buttons(payload)[0]["text"]["text"]
    assert len(label) == 100
    assert len(shown) <= MAX_BUTTON_TEXT
    assert shown.endswith("…")
    assert label.startswith(shown[:-1])
    assert shown[-2] != " "


def test_an_action_used_twice_gets_unique_ids_and_still_reads_back() -> None:
    reply = Reply(
        "Which answer helped?",
        buttons=(
            Button("First", Action.HELPFUL, "1"),
            Button("Second", Action.HELPFUL, "2"),
            Button("Third", Action.HELPFUL, "3"),
            Button("Neither", Action.NOT_HELPFUL, "1"),
        ),
        kind="notice",
    )
    payload = render(reply)
    assert_within_slack_limits(payload)
    pressed = buttons(payload)
    assert [(b["action_id"], b["value"]) for b in pressed] == [
        ("feedback_helpful", "1"),
        ("feedback_helpful-1", "2"),
        ("feedback_helpful-2", "3"),
        ("feedback_not_helpful", "1"),
    ]
    click = to_click(
        block_actions([button_action(pressed[2]["action_id"], pressed[2]["value"])]), SCHOOL
    )
    assert click is not None
    assert (click.action, click.value) == (Action.HELPFUL, "3")


def test_more_than_25_buttons_go_in_several_actions_blocks() -> None:
    many = tuple(Button(f"Option {i}", Action.HELPFUL, str(i)) for i in range(30))
    payload = render(Reply("Pick one", buttons=many, kind="notice"))
    assert_within_slack_limits(payload)
    assert [len(b["elements"]) for b in payload["blocks"] if b["type"] == "actions"] == [25, 5]
    assert len({b["action_id"] for b in buttons(payload)}) == 30


def test_markup_in_a_clause_or_a_question_never_reaches_slack_live() -> None:
    hostile_quote = Quote(f"Policy text {HOSTILE} & more", f"Policy {HOSTILE}", HOSTILE, None)
    forwarded = Reply(
        wording.passed_on_to_contact(f"{HOSTILE} what if marks are < 50 & falling?"),
        kind="notice",
        extra={"asked_by": "U0TEACHER"},
    )
    for payload in (render(answer(hostile_quote, notes=(HOSTILE,))), render(forwarded)):
        assert_within_slack_limits(payload)
        texts = [*block_texts(payload), payload["text"]]
        live = [
            t for t in texts if RAW_MARKUP.search(t) and not t.startswith("Asked by <@U0TEACHER>")
        ]
        assert live == []
    clause = render(answer(hostile_quote))["blocks"][0]["text"]["text"]
    assert (
        clause == f"> Policy text {escape(HOSTILE)} &amp; more"
    )  # policy text: escaped, not rewritten
    question = sections(render(forwarded))[0]
    assert "@channel @here @everyone @heads @U0ALICE @bob #staffroom" in question
    assert "the real policy (https://evil.example/login)" in question
    assert "marks are &lt; 50 &amp; falling?" in question


def test_not_found_offers_to_pass_the_question_on() -> None:
    reply = Reply(
        wording.not_found("Mrs Patel (Office Manager)", True),
        buttons=(
            Button(
                wording.pass_on_label("Mrs Patel (Office Manager)"), Action.PASS_TO_CONTACT, "31"
            ),
        ),
        question_id=31,
        kind="not_found",
    )
    payload = render(reply)
    assert_within_slack_limits(payload)
    assert [b["type"] for b in payload["blocks"]] == ["section", "actions"]
    assert sections(payload) == [wording.not_found("Mrs Patel (Office Manager)", True)]
    assert [(b["action_id"], b["value"], b["text"]["text"]) for b in buttons(payload)] == [
        ("pass_to_contact", "31", "Pass my question to Mrs Patel (Office Manager)")
    ]
    assert payload["text"] == wording.not_found("Mrs Patel (Office Manager)", True)


def test_a_passed_on_question_says_who_asked_with_a_real_mention() -> None:
    reply = Reply(
        wording.passed_on_to_contact("can we use Zoom for parents' evening?"),
        kind="notice",
        extra={"asked_by": "U0TEACHER"},
    )
    payload = render(reply)
    assert_within_slack_limits(payload)
    assert contexts(payload) == ["Asked by <@U0TEACHER>"]
    assert "can we use Zoom for parents' evening?" in sections(payload)[0]


def test_an_asked_by_that_is_not_a_user_id_is_not_markup() -> None:
    payload = render(Reply("A question", kind="notice", extra={"asked_by": "!channel>"}))
    assert contexts(payload) == ["Asked by !channel&gt;"]


# --- App Home -------------------------------------------------------------------------


def stored(i: int, text: str, answered: bool = True) -> StoredQuestion:
    return StoredQuestion(i, SCHOOL, text, answered, f"2025-03-{i + 1:02d}T09:15:00+00:00")


def test_home_lists_recent_questions_safely_with_two_buttons() -> None:
    recent = [
        stored(7, f"{HOSTILE} can I post photos?", answered=False),
        *(stored(i, f"question {i}") for i in range(6, 0, -1)),
    ]
    view = home_view("St Anne's C of E Primary", recent)
    assert_within_slack_limits(view)
    assert view["type"] == "home"
    assert view["blocks"][0]["type"] == "header"
    assert view["blocks"][0]["text"]["text"] == "Policy help for St Anne's C of E Primary"
    assert "*Your recent questions*" in sections(view)
    listing = next(s for s in sections(view) if s.startswith("• "))
    lines = listing.split("\n")
    assert len(lines) == 5
    assert "@channel" in lines[0] and "8 March 2025" in lines[0] and "not found" in lines[0]
    assert lines[1] == "• question 6 _(7 March 2025)_"
    assert not RAW_MARKUP.search(listing)
    assert [(b["action_id"], b["value"], b.get("style")) for b in buttons(view)] == [
        ("ask_question", "home", None),
        ("report_concern", "home", "danger"),
    ]
    assert [b["text"]["text"] for b in buttons(view)] == ["Ask a question", "Report a concern"]
    assert not any("Designated Safeguarding Lead:" in c for c in contexts(view))


def test_home_with_no_questions_says_so_kindly_and_roles_get_their_line() -> None:
    view = home_view("Crossflatts & Co <Primary>", [], is_dsl=True, is_leader=True)
    assert_within_slack_limits(view)
    assert escape(wording.no_recent_questions()) in sections(view)
    assert view["blocks"][0]["text"]["text"] == "Policy help for Crossflatts & Co <Primary>"
    role_lines = [c for c in contexts(view) if c.startswith("You are")]
    assert len(role_lines) == 2
    assert view["blocks"][-1]["type"] == "actions"


def test_home_cuts_a_very_long_question() -> None:
    view = home_view("St Anne's", [stored(1, "&" * 5000)])
    assert_within_slack_limits(view)
    listing = next(s for s in sections(view) if s.startswith("• "))
    assert len(listing) < 600
    assert "…" in listing


# --- the real core, rendered --------------------------------------------------------------


async def test_real_answers_render_within_limits_and_their_buttons_read_back(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    answerer = Answerer(kb, Searcher(kb), Operations(kb.db), contacts=lambda s, p: "U0OFFICE")
    body = event_body(dm_event(f"<@{BOT}> can I accept a friend request from an ex-pupil?"))
    incoming = to_incoming(body, SCHOOL)
    assert incoming is not None
    replies = [
        await answerer.answer(incoming),
        await answerer.answer(replace(incoming, text="how many inset days have we got?")),
        await answerer.answer(replace(incoming, text="")),
    ]
    assert [r.kind for r in replies] == ["answer", "not_found", "help"]
    for reply in replies:
        payload = render(reply)
        assert_within_slack_limits(payload)
    first = render(replies[0])
    assert replies[0].quote is not None
    assert unquote(sections(first)[0]) == replies[0].quote.text
    helpful = buttons(first)[0]
    click = to_click(block_actions([button_action(helpful["action_id"], helpful["value"])]), SCHOOL)
    assert click is not None
    outcome = await answerer.click(click)
    assert outcome.reply is not None
    assert outcome.reply.text == wording.thanks_for_feedback()
    kb.close()
