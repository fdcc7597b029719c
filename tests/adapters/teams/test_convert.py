"""Bot Framework activities in, Adaptive Cards out: the pure conversions at the Teams edge.

The activities are written out the way Teams posts them to /api/messages (1:1
chat, channel post with an @mention and Teams' HTML, group chat, card submit,
conversationUpdate), and every rendered card is checked by ``assert_teams_card``,
which is itself tested at the end against cards Teams would refuse.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import CardFactory
from botbuilder.schema import Activity

from adapters.teams.convert import (
    ADAPTIVE_CARD_CONTENT_TYPE,
    MAX_ACTION_TITLE,
    MAX_CARD_BYTES,
    MAX_CARD_VERSION,
    MAX_TEXT,
    card_size,
    escape,
    neutralise,
    render,
    render_activity,
    strip_mentions,
    to_click,
    to_incoming,
    welcome_card,
)
from bot import wording
from bot.answers import Answerer
from bot.messages import Action, Button, Click, Quote, Reply
from bot.storage import Operations
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase
from tests.support.adaptive_cards import (
    assert_teams_card,
    card_bytes,
    live_markdown,
    shown,
    submit_actions,
    text_blocks,
)

SCHOOL = "st-annes"
BOT_ID = "28:3f1c2b4a-0d5e-4b6a-9f3e-5a6b7c8d9e0f"
BOT_NAME = "guidebot"
TENANT = "b7c1a3e2-4f5d-4e6a-8b9c-0d1e2f3a4b5c"
TEACHER_AAD = "6a1f0c2e-8d3b-4c5a-9e7f-1b2c3d4e5f60"
TEACHER_TEAMS = "29:1qZ8vKfJ3xYtWm0aLbN7cPdQeRsTuVwXyZ2b4c6d8e0f1g3h5i7j9k-lMnOpQrSt"
PERSONAL = "a:1Xq9ZtRw8pLmNk3VbJh5GfDs2AeYu7IoCx4Wv6Bn0Mz-example"
CHANNEL = "19:8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d@thread.tacv2"
GROUP = "19:meeting_0a1b2c3d4e5f@thread.v2"
HOSTILE = (
    "**click** [here](https://evil.example/login) <at>Head Teacher</at> _urgent_ ~~old~~ "
    "`code` {{DATE(2017-02-14T06:00:00Z, SHORT)}} &amp; &#42; \\* \u202eevil\u202c\n"
    "# Heading\n1. step\n- bullet\n> quoted"
)

# --- activities, as Teams sends them -----------------------------------------------------


def _activity(text: str | None, conversation: dict[str, Any], **extra: Any) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": "message",
        "id": "1736933400123",
        "timestamp": "2025-01-15T09:30:00.1234567Z",
        "localTimestamp": "2025-01-15T09:30:00.1234567+00:00",
        "serviceUrl": "https://smba.trafficmanager.net/uk/",
        "channelId": "msteams",
        "from": {"id": TEACHER_TEAMS, "name": "Jo Smith", "aadObjectId": TEACHER_AAD},
        "conversation": conversation,
        "recipient": {"id": BOT_ID, "name": BOT_NAME},
        "textFormat": "plain",
        "locale": "en-GB",
        "localTimezone": "Europe/London",
        "entities": [
            {
                "type": "clientInfo",
                "locale": "en-GB",
                "country": "GB",
                "platform": "Web",
                "timezone": "Europe/London",
            }
        ],
        "channelData": {"tenant": {"id": TENANT}},
    }
    if text is not None:
        activity["text"] = text
    activity.update(extra)
    return activity


def personal(text: str | None, **extra: Any) -> dict[str, Any]:
    """A message in the 1:1 chat with the bot."""
    conversation = {"conversationType": "personal", "tenantId": TENANT, "id": PERSONAL}
    return _activity(text, conversation, **extra)


def bot_mention(name: str = BOT_NAME) -> dict[str, Any]:
    return {
        "type": "mention",
        "text": f"<at>{name}</at>",
        "mentioned": {"id": BOT_ID, "name": name},
    }


def channel(text: str, root: str = "1736933500456", **extra: Any) -> dict[str, Any]:
    """A channel post (or thread reply) that @mentions the bot, with Teams' HTML."""
    activity = _activity(
        text,
        {
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": TENANT,
            "id": f"{CHANNEL};messageid={root}",
        },
        id=root,
        **extra,
    )
    activity["entities"] = [bot_mention(), *activity["entities"]]
    activity["channelData"] = {
        "teamsChannelId": CHANNEL,
        "teamsTeamId": "19:0f1e2d3c4b5a69788796a5b4c3d2e1f0@thread.tacv2",
        "channel": {"id": CHANNEL},
        "team": {"id": "19:0f1e2d3c4b5a69788796a5b4c3d2e1f0@thread.tacv2"},
        "tenant": {"id": TENANT},
    }
    activity["attachments"] = [
        {"contentType": "text/html", "content": f"<div><div>{text}</div></div>"}
    ]
    return activity


def group_chat(text: str, **extra: Any) -> dict[str, Any]:
    activity = _activity(
        text,
        {"isGroup": True, "conversationType": "groupChat", "tenantId": TENANT, "id": GROUP},
        **extra,
    )
    activity["entities"] = [bot_mention(), *activity["entities"]]
    return activity


def submit(value: Any, **extra: Any) -> dict[str, Any]:
    """What Teams sends when a card's Action.Submit is pressed: no text, the data in value."""
    return personal(
        None,
        value=value,
        replyToId="1736933400999",
        channelData={"tenant": {"id": TENANT}, "source": {"name": "message"}},
        **extra,
    )


def conversation_update() -> dict[str, Any]:
    return {
        "type": "conversationUpdate",
        "id": "f:8a1b2c3d",
        "timestamp": "2025-01-15T09:00:00.000Z",
        "serviceUrl": "https://smba.trafficmanager.net/uk/",
        "channelId": "msteams",
        "from": {"id": TEACHER_TEAMS, "aadObjectId": TEACHER_AAD},
        "conversation": {"conversationType": "personal", "tenantId": TENANT, "id": PERSONAL},
        "recipient": {"id": BOT_ID, "name": BOT_NAME},
        "membersAdded": [{"id": BOT_ID}],
        "channelData": {"tenant": {"id": TENANT}},
    }


# --- messages in ----------------------------------------------------------------------------


def test_a_personal_chat_message_is_a_direct_question() -> None:
    incoming = to_incoming(personal("can I accept a friend request from an ex-pupil?"), SCHOOL)
    assert incoming is not None
    assert incoming.platform == "teams"
    assert incoming.school == SCHOOL
    assert incoming.kind == "direct"
    assert incoming.text == "can I accept a friend request from an ex-pupil?"
    assert incoming.user_id == TEACHER_AAD  # the Entra object id: the same in every team
    assert incoming.conversation_id == PERSONAL
    assert incoming.thread_id is None
    assert incoming.event_id == "1736933400123"


def test_a_channel_mention_loses_the_bots_name_and_teams_html_and_is_answered_in_the_thread() -> (
    None
):
    text = "<p><at>guidebot</at>&nbsp;can I give a pupil a lift&nbsp;home?<br>Asking for a trip</p>"
    incoming = to_incoming(channel(text), SCHOOL)
    assert incoming is not None
    assert incoming.kind == "mention"
    assert incoming.text == "can I give a pupil a lift home? Asking for a trip"
    assert incoming.conversation_id == f"{CHANNEL};messageid=1736933500456"  # kept as sent
    assert incoming.thread_id == "1736933500456"  # the post starts the thread
    assert incoming.event_id == "1736933500456"


def test_a_reply_in_a_channel_thread_is_answered_under_the_threads_root_post() -> None:
    activity = channel("<at>guidebot</at> and for ex-pupils?", replyToId="1736933500456")
    activity["id"] = "1736933600789"
    incoming = to_incoming(activity, SCHOOL)
    assert incoming is not None
    assert incoming.thread_id == "1736933500456"
    assert incoming.event_id == "1736933600789"


@pytest.mark.parametrize(
    ("reply_to", "expected"), [("1736933500456", "1736933500456"), (None, "1736933600789")]
)
def test_without_a_message_id_in_the_conversation_the_thread_is_reply_to_or_the_message(
    reply_to: str | None, expected: str
) -> None:
    activity = channel("<at>guidebot</at> hello", replyToId=reply_to)
    activity["conversation"]["id"] = CHANNEL
    activity["id"] = "1736933600789"
    if reply_to is None:
        del activity["replyToId"]
    incoming = to_incoming(activity, SCHOOL)
    assert incoming is not None
    assert incoming.thread_id == expected


def test_a_group_chat_mention_has_no_thread() -> None:
    incoming = to_incoming(group_chat("<at>guidebot</at> who is our DSL?"), SCHOOL)
    assert incoming is not None
    assert incoming.kind == "mention"
    assert incoming.text == "who is our DSL?"
    assert incoming.conversation_id == GROUP
    assert incoming.thread_id is None


def test_a_bare_mention_reaches_the_core_empty_so_the_person_gets_help() -> None:
    incoming = to_incoming(channel("<at>guidebot</at>&nbsp;"), SCHOOL)
    assert incoming is not None
    assert incoming.text == ""


def test_a_sender_without_an_entra_id_is_known_by_their_teams_id() -> None:
    activity = personal("hello")
    del activity["from"]["aadObjectId"]
    incoming = to_incoming(activity, SCHOOL)
    assert incoming is not None
    assert incoming.user_id == TEACHER_TEAMS


def test_the_mention_is_still_removed_after_botbuilder_drops_the_entity_details() -> None:
    """``Activity.serialize()`` keeps a mention entity's type but not its text or
    mentioned id, so the bot's name at the start is what is left to go on."""
    activity = channel("<at>guidebot</at> can I use WhatsApp with parents?")
    serialised = Activity().deserialize(activity).serialize()
    assert serialised["entities"][0] == {"type": "mention"}
    incoming = to_incoming(serialised, SCHOOL)
    assert incoming is not None
    assert incoming.text == "can I use WhatsApp with parents?"
    assert incoming.user_id == TEACHER_AAD


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("<at>guidebot</at> hi", "hi"),
        ("<at>Guidebot</at>, <at>guidebot</at>: hi", "hi"),
        ("is <at>guidebot</at> right about gifts?", "is right about gifts?"),
        ("<at>Sam Jones</at> says I can, <at>guidebot</at>?", "Sam Jones says I can, ?"),
        (
            '<at>guidebot</at> see <a href="https://evil.example/login">the policy</a>',
            "see the policy (https://evil.example/login)",
        ),
        (
            '<at>guidebot</at> <a href="https://www.gov.uk/kcsie">https://www.gov.uk/kcsie</a>',
            "https://www.gov.uk/kcsie",
        ),
        ("<at>guidebot</at> marks &lt; 50 &amp; &gt; 10 &lt;b&gt;", "marks < 50 & > 10 <b>"),
        ("<div><p><at>guidebot</at></p><p>two</p><p>lines</p></div>", "two lines"),
        ("<at>guidebot</at> <strong>bold</strong> and <em>it</em>", "bold and it"),
        ("<at>guidebot</at> caf\u00e9 \u200bhidden\u2060 text", "caf\u00e9 hidden text"),
        ("<at>guidebot</at>\n\n  spaced   \t out  ", "spaced out"),
        ("", ""),
    ],
)
def test_strip_mentions(text: str, meant: str) -> None:
    activity = channel(text)
    activity["entities"][0]["text"] = "<at>guidebot</at>"
    assert strip_mentions(activity) == meant


def test_only_the_bots_own_mention_is_removed_by_its_id() -> None:
    activity = group_chat("<at>guidebot</at> ask <at>Office</at> about it")
    activity["entities"].append(
        {
            "type": "mention",
            "text": "<at>Office</at>",
            "mentioned": {"id": "29:office", "name": "x"},
        }
    )
    assert strip_mentions(activity) == "ask Office about it"


def test_a_colleague_named_like_the_bot_but_mentioned_later_is_kept() -> None:
    activity = personal("tell <at>guidebot</at> thanks")
    assert strip_mentions(activity) == "tell guidebot thanks"  # not leading, no entity


def test_a_message_with_no_text_reaches_the_core_empty() -> None:
    incoming = to_incoming(personal(None), SCHOOL)
    assert incoming is not None
    assert incoming.text == ""


@pytest.mark.parametrize(
    ("case", "activity"),
    [
        ("a bot's message", personal("digest", **{"from": {"id": "28:other", "role": "bot"}})),
        ("our own message", personal("From ...", **{"from": {"id": BOT_ID, "name": BOT_NAME}})),
        ("conversationUpdate", conversation_update()),
        (
            "installationUpdate",
            conversation_update() | {"type": "installationUpdate", "action": "add"},
        ),
        ("typing", personal(None, type="typing")),
        ("a reaction", personal(None, type="messageReaction", reactionsAdded=[{"type": "like"}])),
        ("an invoke", personal(None, type="invoke", name="adaptiveCard/action")),
        ("a card submit", submit({"action": "feedback_helpful", "value": "42"})),
        ("no sender", {k: v for k, v in personal("hi").items() if k != "from"}),
        ("no conversation", {k: v for k, v in personal("hi").items() if k != "conversation"}),
    ],
)
def test_activities_the_bot_does_not_answer(case: str, activity: dict[str, Any]) -> None:
    assert to_incoming(activity, SCHOOL) is None, case


# --- clicks in ------------------------------------------------------------------------------


def test_a_card_submit_is_a_click() -> None:
    assert to_click(submit({"action": "feedback_helpful", "value": "42"}), SCHOOL) == Click(
        platform="teams",
        school=SCHOOL,
        user_id=TEACHER_AAD,
        action=Action.HELPFUL,
        value="42",
        conversation_id=PERSONAL,
    )


def test_the_welcome_buttons_value_is_a_click_too() -> None:
    click = to_click(submit({"action": "ask_question", "value": "welcome"}), SCHOOL)
    assert click is not None
    assert (click.action, click.value) == (Action.ASK_QUESTION, "welcome")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "feedback_helpful",
        ["feedback_helpful", "42"],
        {},
        {"value": "42"},
        {"action": "feedback_helpful"},
        {"action": "delete_everything", "value": "42"},
        {"action": "feedback_helpful", "value": 42},
        {"action": "feedback_helpful", "value": None},
        {"action": ["feedback_helpful"], "value": "42"},
        {"action": "feedback_helpful", "value": "4" * 5000},
    ],
)
def test_a_malformed_submit_is_not_a_click(value: Any) -> None:
    activity = submit(value) if value is not None else personal("just text")
    assert to_click(activity, SCHOOL) is None


def test_a_submit_from_a_bot_or_not_a_message_is_not_a_click() -> None:
    data = {"action": "feedback_helpful", "value": "42"}
    assert to_click(submit(data, **{"from": {"id": "28:x", "role": "bot"}}), SCHOOL) is None
    assert to_click(submit(data, type="invoke"), SCHOOL) is None
    assert to_click(conversation_update(), SCHOOL) is None


def test_every_rendered_button_reads_back_as_its_click() -> None:
    card = render(answer())
    for action in submit_actions(card):
        click = to_click(submit(copy.deepcopy(action["data"])), SCHOOL)
        assert click is not None
        assert (click.action.value, click.value) == (
            action["data"]["action"],
            action["data"]["value"],
        )


# --- escaping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("Staff should not", "Staff should not"),
        ("*bold* and _it_ and `code`", "\\*bold\\* and \\_it\\_ and \\`code\\`"),
        ("[here](https://evil)", "\\[here\\](https://evil)"),
        ("~~struck~~", "\\~\\~struck\\~\\~"),
        ("C:\\shared\\policies", "C:\\\\shared\\\\policies"),
        ("1. first", "1\\. first"),
        ("12) twelfth", "12\\) twelfth"),
        ("version 1.5 of 2.", "version 1.5 of 2."),
        ("- bullet", "\\- bullet"),
        ("+ bullet", "\\+ bullet"),
        ("# heading", "\\# heading"),
        ("> quote", "\\> quote"),
        ("a - b + c # d > e", "a - b + c # d > e"),
        ("Staff & pupils: &amp; &#42;", "Staff & pupils: \\&amp; \\&#42;"),
        ("{{DATE(2017-02-14T06:00:00Z)}}", "{\\{DATE(2017-02-14T06:00:00Z)}}"),
        ("one\ntwo\r\nthree\n\n\nfour", "one\n\ntwo\n\nthree\n\nfour"),
        ("    indented code?", "indented code?"),
        ("a  b", "a  b"),
        (
            "<b>bold</b> <https://evil.example> <!-- x --> <?php",
            "\\<b>bold\\</b> \\<https://evil.example> \\<!-- x --> \\<?php",
        ),
        ("pupils <16 & staff > 18 <at>", "pupils <16 & staff > 18 \\<at>"),
    ],
)
def test_escape(text: str, escaped: str) -> None:
    assert escape(text) == escaped
    assert live_markdown(escape(text)) == []
    assert " ".join(shown(escape(text)).split()) == " ".join(text.split())


def test_neutralise_removes_mentions_and_invisible_characters_and_escapes() -> None:
    assert neutralise(HOSTILE) == (
        "\\*\\*click\\*\\* \\[here\\](https://evil.example/login) Head Teacher \\_urgent\\_ "
        "\\~\\~old\\~\\~ \\`code\\` {\\{DATE(2017-02-14T06:00:00Z, SHORT)}} \\&amp; \\&#42; "
        "\\\\\\* evil\n\n\\# Heading\n\n1\\. step\n\n\\- bullet\n\n\\> quoted"
    )
    assert live_markdown(neutralise(HOSTILE)) == []


# --- rendering -------------------------------------------------------------------------------

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


def quote_boxes(card: dict[str, Any]) -> list[str]:
    """The text each quotation box shows, its TextBlocks joined."""
    return [
        " ".join(shown(item["text"]) for item in element["items"])
        for element in card["body"]
        if element["type"] == "Container" and element.get("style") == "emphasis"
    ]


def subtle(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in text_blocks(card) if b.get("isSubtle")]


def plain_blocks(card: dict[str, Any]) -> list[str]:
    """Top-level TextBlocks that are neither small print nor a heading."""
    return [
        e["text"]
        for e in card["body"]
        if e["type"] == "TextBlock" and not e.get("isSubtle") and not e.get("weight")
    ]


def test_an_answer_quotes_the_clause_then_its_source_notes_and_buttons() -> None:
    card = render(answer(notes=(wording.concern_offer(),)))
    assert_teams_card(card)
    assert card["version"] == MAX_CARD_VERSION == "1.5"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert [e["type"] for e in card["body"]] == ["Container", "TextBlock", "TextBlock"]
    assert quote_boxes(card) == [QUOTE.text]
    assert all(b["wrap"] is True for b in text_blocks(card))
    source = card["body"][1]
    assert source["text"] == (
        "From **Social Media Policy** (Personal Use of Social Media by Staff, paragraph 4)"
    )
    assert (source["isSubtle"], source["size"]) == (True, "small")
    assert plain_blocks(card) == [escape(wording.concern_offer())]
    assert [(a["title"], a["data"], a.get("style")) for a in card["actions"]] == [
        ("Helpful", {"action": "feedback_helpful", "value": "12"}, "positive"),
        ("Not helpful", {"action": "feedback_not_helpful", "value": "12"}, None),
        ("Report a concern to the DSL", {"action": "report_concern", "value": "12"}, "destructive"),
    ]
    assert all(a["type"] == "Action.Submit" for a in card["actions"])
    assert "entities" not in card["msteams"]  # no card ever mentions anyone


def test_see_also_clauses_follow_a_heading_each_under_its_source() -> None:
    related = Quote(
        "Staff must not share personal phone numbers with pupils.", "Code of Conduct", "Contact"
    )
    card = render(answer(see_also=(related,)))
    assert_teams_card(card)
    kinds = [e["type"] for e in card["body"]]
    assert kinds == ["Container", "TextBlock", "TextBlock", "TextBlock", "Container"]
    heading = card["body"][2]
    assert (heading["text"], heading["weight"], heading["separator"]) == (
        "See also",
        "bolder",
        True,
    )
    assert card["body"][3]["text"] == "From **Code of Conduct** (Contact)"
    assert quote_boxes(card) == [QUOTE.text, related.text]


def test_a_10000_character_clause_is_split_across_textblocks_at_words_and_kept_whole() -> None:
    words = [f"w{i}*_[{i % 7}]" if i % 50 == 0 else f"word{i}" for i in range(1700)]
    text = " ".join(words[:800]) + "\n1. " + " ".join(words[800:])
    assert len(text) > 10_000
    card = render(answer(Quote(text, "Behaviour Policy", "Sanctions", None)))
    assert_teams_card(card)
    box = card["body"][0]
    assert box["type"] == "Container" and box["style"] == "emphasis"
    pieces = [item["text"] for item in box["items"]]
    assert len(pieces) >= 5
    assert all(len(piece) <= MAX_TEXT for piece in pieces)
    assert all(live_markdown(piece) == [] for piece in pieces)
    assert " ".join(shown(p) for p in pieces).split() == text.split()  # every word, in order
    assert not any("too long to show" in t for t in subtle(card))
    assert len(card["actions"]) == 3


def test_a_clause_too_long_for_one_card_ends_by_pointing_to_the_policy() -> None:
    text = " ".join(f"word{i}" for i in range(40_000))  # about 300,000 characters
    reply = answer(
        Quote(text, "Safeguarding & Child Protection Policy", "Annex", None),
        notes=(wording.concern_offer(),),
        see_also=(QUOTE,),
    )
    card = render(reply)
    assert_teams_card(card)
    assert card_size(card) <= MAX_CARD_BYTES
    assert card_bytes(card) <= MAX_CARD_BYTES
    assert escape(wording.rest_in_policy("Safeguarding & Child Protection Policy")) in subtle(card)
    assert escape(wording.concern_offer()) in plain_blocks(card)  # the note survives
    assert len(card["actions"]) == 3  # and so do the buttons
    quoted = quote_boxes(card)[0].split()
    assert quoted == text.split()[: len(quoted)]
    assert len(quoted) > 1000


def test_a_very_long_word_is_cut_to_fit_a_textblock() -> None:
    text = "&" * 5000 + " end"
    card = render(answer(Quote(text, "P", "S", None)))
    assert_teams_card(card)
    pieces = [item["text"] for item in card["body"][0]["items"]]
    assert all(len(p) <= MAX_TEXT for p in pieces)
    assert "".join(shown(p) for p in pieces).replace(" ", "") == text.replace(" ", "")


def test_however_many_notes_the_card_fits_and_keeps_its_quote_and_buttons() -> None:
    card = render(answer(notes=tuple(f"Note {i}: " + "x" * 500 for i in range(100))))
    assert_teams_card(card)
    assert quote_boxes(card) == [QUOTE.text]
    assert len(card["actions"]) == 3
    assert 10 < len(plain_blocks(card)) < 100


def test_policy_text_is_escaped_not_rewritten() -> None:
    quote = Quote(
        "Staff must:\n1. never *share* passwords\n- report_issues to the DSL [urgently]",
        "E-Safety *Policy*",
        "Section_2",
        "3",
    )
    card = render(answer(quote))
    assert_teams_card(card)
    clause = card["body"][0]["items"][0]["text"]
    assert clause == (
        "Staff must:\n\n1\\. never \\*share\\* passwords\n\n"
        "\\- report\\_issues to the DSL \\[urgently\\]"
    )
    assert shown(clause) == quote.text
    assert card["body"][1]["text"] == "From **E-Safety \\*Policy\\*** (Section\\_2, paragraph 3)"


def test_typed_text_echoed_in_a_card_is_neutralised() -> None:
    forwarded = Reply(
        wording.passed_on_to_contact(HOSTILE),
        kind="notice",
        extra={"asked_by": "<at>Head</at> **x**"},
    )
    not_found = Reply(HOSTILE, kind="not_found")
    for reply in (forwarded, not_found):
        card = render(reply)
        assert_teams_card(card)
        texts = [b["text"] for b in text_blocks(card)]
        assert all(live_markdown(t) == [] for t in texts), texts
        assert "entities" not in card["msteams"]
        shown_text = " ".join(shown(t) for t in texts)
        assert "**click** [here](https://evil.example/login) Head Teacher _urgent_" in shown_text
        assert "\u202e" not in shown_text
    asked = subtle(render(forwarded))
    assert asked == ["Asked by a colleague (Teams user id Head \\*\\*x\\*\\*)"]


def test_a_passed_on_question_names_who_asked_by_their_id() -> None:
    reply = Reply(
        wording.passed_on_to_contact("can we use Zoom for parents' evening?"),
        kind="notice",
        extra={"asked_by": TEACHER_AAD},
    )
    card = render(reply)
    assert_teams_card(card)
    assert subtle(card) == [f"Asked by a colleague (Teams user id {TEACHER_AAD})"]
    assert shown(card["body"][0]["text"]) == wording.passed_on_to_contact(
        "can we use Zoom for parents' evening?"
    )


def test_not_found_offers_to_pass_the_question_on() -> None:
    contact = "Mrs Patel (Office Manager)"
    reply = Reply(
        wording.not_found(contact, True),
        buttons=(Button(wording.pass_on_label(contact), Action.PASS_TO_CONTACT, "31"),),
        question_id=31,
        kind="not_found",
    )
    card = render(reply)
    assert_teams_card(card)
    assert [shown(t) for t in plain_blocks(card)] == [wording.not_found(contact, True)]
    assert [(a["title"], a["data"]) for a in card["actions"]] == [
        ("Pass my question to Mrs Patel (Office…", {"action": "pass_to_contact", "value": "31"})
    ]


def test_help_keeps_its_lines() -> None:
    card = render(Reply(wording.help_text_chat("St Anne's CE Primary School"), kind="help"))
    assert_teams_card(card)
    assert "actions" not in card
    assert shown(card["body"][0]["text"]) == wording.help_text_chat("St Anne's CE Primary School")
    assert card["body"][0]["text"].count("\n\n") == 2  # three lines, three paragraphs


def test_a_long_button_title_is_cut_at_a_word_with_an_ellipsis() -> None:
    label = "Pass my question to Mrs Bartholomew-Featherstonehaugh, Deputy Headteacher"
    reply = Reply("Sorry", buttons=(Button(label, Action.PASS_TO_CONTACT, "3"),), kind="not_found")
    title = render(reply)["actions"][0]["title"]
    assert len(title) <= MAX_ACTION_TITLE
    assert title == "Pass my question to Mrs…"
    assert label.startswith(title[:-1])


def test_more_than_six_buttons_go_in_action_sets_of_six() -> None:
    many = tuple(Button(f"Option {i}", Action.HELPFUL, str(i)) for i in range(14))
    card = render(Reply("Pick one", buttons=many, kind="notice"))
    assert_teams_card(card)
    assert "actions" not in card
    sets = [e for e in card["body"] if e["type"] == "ActionSet"]
    assert [len(s["actions"]) for s in sets] == [6, 6, 2]
    assert [a["data"]["value"] for a in submit_actions(card)] == [str(i) for i in range(14)]


def test_a_huge_notice_is_cut_to_fit() -> None:
    card = render(Reply("word " * 20_000, kind="notice", buttons=answer().buttons))
    assert_teams_card(card)
    assert card["body"][-1]["text"] == "…"
    assert len(card["actions"]) == 3


def test_the_activity_carries_the_card_and_a_plain_summary() -> None:
    text = " ".join(f"word{i}" for i in range(500))
    reply = answer(Quote(text, "Code of Conduct", "Gifts", None))
    activity = render_activity(reply)
    assert activity["type"] == "message"
    assert "text" not in activity  # Teams would show it as a second copy beside the card
    assert activity["summary"].startswith("From Code of Conduct (Gifts): word0 word1")
    assert len(activity["summary"]) <= 260
    assert activity["summary"].endswith("…")
    assert activity["attachments"] == [
        {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "content": render(reply)}
    ]
    assert CardFactory.content_types.adaptive_card == ADAPTIVE_CARD_CONTENT_TYPE
    sent = Activity().deserialize(activity)  # botbuilder can send it as it is
    assert sent.summary == activity["summary"]
    assert sent.attachments[0].content == render(reply)
    assert render(reply)["fallbackText"] == activity["summary"]


def test_the_summary_of_other_replies_is_their_text_in_plain() -> None:
    activity = render_activity(Reply("Thank you <at>Jo</at>.\nBye", kind="notice"))
    assert activity["summary"] == "Thank you Jo. Bye"


def test_the_welcome_card_says_what_the_bot_does_and_how_to_get_help() -> None:
    card = welcome_card("St Anne's CE Primary School")
    assert_teams_card(card)
    texts = [shown(b["text"]) for b in text_blocks(card)]
    assert texts[0] == "Policy help for St Anne's CE Primary School"
    assert wording.teams_welcome_intro() in texts
    assert any("ex-pupil" in t for t in texts)
    assert any("(DSL)" in t and "999" in t for t in texts)
    assert card["actions"] == [
        {
            "type": "Action.Submit",
            "title": "Ask a question",
            "data": {"action": "ask_question", "value": "welcome"},
        }
    ]


def test_a_school_name_with_markdown_is_shown_as_written() -> None:
    card = welcome_card("St *Anne*'s [CE] Primary")
    assert_teams_card(card)
    assert shown(card["body"][0]["text"]) == "Policy help for St *Anne*'s [CE] Primary"
    assert live_markdown(card["body"][0]["text"]) == []


CARDS = {
    "answer": lambda: render(answer()),
    "concern answer": lambda: render(
        answer(notes=(wording.concern_offer(), wording.review_overdue(date(2020, 9, 1))))
    ),
    "not found with pass-on": lambda: render(
        Reply(
            wording.not_found("Mrs Patel", True),
            buttons=(Button(wording.pass_on_label("Mrs Patel"), Action.PASS_TO_CONTACT, "9"),),
            kind="not_found",
        )
    ),
    "help": lambda: render(Reply(wording.help_text_chat("Crossflatts"), kind="help")),
    "notice": lambda: render(Reply(wording.thanks_for_feedback(), kind="notice")),
    "welcome": lambda: welcome_card("Cwm Felin"),
    "huge quote": lambda: render(answer(Quote("ŵŷ " * 60_000, "Polisi Diogelu", "Atodiad"))),
    "empty quote": lambda: render(answer(Quote("", "", "", None), buttons=())),
    "empty notice": lambda: render(Reply("", kind="notice")),
    "hostile": lambda: render(
        answer(Quote(HOSTILE, HOSTILE, HOSTILE, HOSTILE), notes=(HOSTILE,), see_also=(QUOTE,))
    ),
}


@pytest.mark.parametrize("name", list(CARDS))
def test_every_card_is_one_teams_accepts(name: str) -> None:
    card = CARDS[name]()
    assert_teams_card(card)
    assert card_size(card) <= MAX_CARD_BYTES
    json.dumps(card)  # plain JSON all the way down


# --- the real core, rendered -----------------------------------------------------------------


async def test_real_answers_render_as_valid_cards_and_their_buttons_read_back(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    answerer = Answerer(kb, Searcher(kb), Operations(kb.db), contacts=lambda s, p: "29:office")
    incoming = to_incoming(personal("can I accept a friend request from an ex-pupil?"), SCHOOL)
    assert incoming is not None
    replies = [
        await answerer.answer(incoming),
        await answerer.answer(replace(incoming, text="how many inset days have we got?")),
        await answerer.answer(replace(incoming, text="")),
    ]
    assert [r.kind for r in replies] == ["answer", "not_found", "help"]
    for reply in replies:
        assert_teams_card(render(reply))
    first = render(replies[0])
    assert replies[0].quote is not None
    assert quote_boxes(first)[0].split() == replies[0].quote.text.split()
    helpful = submit_actions(first)[0]
    click = to_click(submit(helpful["data"]), SCHOOL)
    assert click is not None
    outcome = await answerer.click(click)
    assert outcome.reply is not None
    assert outcome.reply.text == wording.thanks_for_feedback()
    kb.close()


# --- the validator refuses what Teams refuses --------------------------------------------------


def good_card() -> dict[str, Any]:
    """A card using every element and action the validator knows, all valid."""
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [
            {
                "type": "Container",
                "style": "emphasis",
                "items": [{"type": "TextBlock", "text": "Hello", "size": "Large", "wrap": True}],
            },
            {
                "type": "ColumnSet",
                "columns": [
                    {
                        "type": "Column",
                        "width": "auto",
                        "items": [{"type": "TextBlock", "text": "a"}],
                    },
                    {"type": "Column", "width": "stretch"},
                ],
            },
            {"type": "FactSet", "facts": [{"title": "Owner", "value": "Headteacher"}]},
            {"type": "Image", "url": "https://example.org/logo.png", "altText": "logo"},
            {
                "type": "RichTextBlock",
                "inlines": ["plain ", {"type": "TextRun", "text": "run", "italic": True}],
            },
            {
                "type": "ActionSet",
                "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://x.org"}],
            },
        ],
        "actions": [
            {"type": "Action.Submit", "title": "Yes", "data": {"a": 1}, "style": "positive"},
            {
                "type": "Action.ShowCard",
                "title": "More",
                "card": {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "inner"}]},
            },
            {"type": "Action.ToggleVisibility", "title": "Toggle", "targetElements": ["x"]},
            {"type": "Action.Execute", "title": "Do", "verb": "go"},
        ],
        "msteams": {
            "width": "Full",
            "entities": [
                {
                    "type": "mention",
                    "text": "<at>Hello</at>",
                    "mentioned": {"id": "29:1", "name": "Hello"},
                }
            ],
        },
    }


def test_the_validator_accepts_a_good_card() -> None:
    card = good_card()
    card["body"][0]["items"][0]["text"] = "Hello <at>Hello</at>"
    assert_teams_card(card)


def _change(path: str, value: Any) -> dict[str, Any]:
    """good_card() with the value at a dotted path (``body.0.items.0.size``) set or,
    for ``...``, removed."""
    card = good_card()
    card["body"][0]["items"][0]["text"] = "Hello <at>Hello</at>"
    *parents, last = path.split(".")
    node: Any = card
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return card


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("version", "1.6", "version: '1.6' is newer than Teams renders"),
        ("version", "1.10", "version: '1.10' is newer"),
        ("version", 1.5, "version: 1.5 is not a version"),
        ("version", ..., "version: None is not a version"),
        ("$schema", ..., "$schema: is required"),
        ("type", "MessageCard", "type: 'MessageCard' is not 'AdaptiveCard'"),
        ("summary", "x", "summary: is not a property of AdaptiveCard"),
        ("body.1", {"type": "Table", "rows": []}, "body[1].type: 'Table' is not an element"),
        ("body.1", {"type": "TextRun", "text": "x"}, "body[1].type: 'TextRun' is not an element"),
        ("body.1", {"type": "Column", "items": []}, "body[1].type: 'Column' is not an element"),
        (
            "body.0.items.0.size",
            "huge",
            "body[0].items[0].size: 'huge' is not one of default, small, medium, large",
        ),
        ("body.0.items.0.weight", "heavy", "body[0].items[0].weight: 'heavy' is not one of"),
        ("body.0.items.0.color", "red", "body[0].items[0].color: 'red' is not one of"),
        ("body.0.items.0.horizontalAlignment", "middle", "horizontalAlignment: 'middle'"),
        ("body.0.items.0.isSubtitle", True, "body[0].items[0].isSubtitle: is not a property"),
        ("body.0.items.0.wrap", "yes", "body[0].items[0].wrap: 'yes' is not a bool"),
        ("body.0.items.0.text", " ", "body[0].items[0].text: is empty"),
        ("body.0.items.0.text", ..., "body[0].items[0].text: is required on TextBlock"),
        ("body.0.style", "shiny", "body[0].style: 'shiny' is not one of default, emphasis"),
        ("body.0.items", [], "body[0].items: is empty"),
        ("body.2.facts.0.value", "", "body[2].facts[0].value: is empty"),
        ("body.3.url", ..., "body[3].url: is required on Image"),
        ("body.4.inlines.1.text", "", "body[4].inlines[1].text: is empty"),
        ("body.5.actions", [], "body[5].actions: is empty"),
        ("body.5.actions.0.url", ..., "body[5].actions[0].url: is required on Action.OpenUrl"),
        ("actions.0.title", ..., "actions[0].title: is required on Action.Submit"),
        ("actions.0.title", "", "actions[0].title: is empty"),
        ("actions.0.data", "feedback_helpful", "actions[0].data: 'feedback_helpful' is not a dict"),
        ("actions.0.style", "primary", "actions[0].style: 'primary' is not one of default"),
        ("actions.1.card.body.0.type", "Input.Rating", "actions[1].card.body[0].type"),
        ("actions.2.type", "Action.Http", "actions[2].type: 'Action.Http' is not an action"),
        ("msteams.width", "wide", "msteams.width: 'wide' is not one of Full"),
        ("msteams.entities.0.text", "<at>Nobody</at>", "does not appear in any TextBlock"),
        ("msteams.entities.0.mentioned", {"id": "29:1"}, "needs the person's id and name"),
    ],
)
def test_the_validator_refuses_a_bad_card(path: str, value: Any, message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        assert_teams_card(_change(path, value))


def test_the_validator_refuses_more_than_six_actions_in_a_set() -> None:
    seven = [{"type": "Action.Submit", "title": f"B{i}", "data": {}} for i in range(7)]
    with pytest.raises(AssertionError, match=re.escape("actions: has 7 actions")):
        assert_teams_card(_change("actions", seven))
    with pytest.raises(AssertionError, match=re.escape("body[5].actions: has 7 actions")):
        assert_teams_card(_change("body.5.actions", seven))


def test_the_validator_refuses_an_oversize_card() -> None:
    mention = {"type": "TextBlock", "text": "<at>Hello</at>"}
    blocks = [mention, *({"type": "TextBlock", "text": "x" * 1000} for _ in range(25))]
    with pytest.raises(AssertionError, match=r"card: is [\d,]+ bytes of JSON"):
        assert_teams_card(_change("body", blocks))
    # counted as sent: each non-ASCII character is a six-byte escape
    welsh = [mention, *({"type": "TextBlock", "text": "ŵ" * 1000} for _ in range(5))]
    with pytest.raises(AssertionError, match="bytes of JSON"):
        assert_teams_card(_change("body", welsh))
