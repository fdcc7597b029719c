"""The same reply reads the same in Slack and in Teams.

Each platform's rendering is read back into a ``Shown``: the quoted clause, its
source, the notes, the "See also" clauses with their sources, the plain text of
other replies, who asked and the buttons, as a reader would see them (escapes
resolved, formatting such as the bold policy name removed, whitespace
collapsed). The replies come from the real Answerer over the sample schools
and from hand-made cases that stress the renderers (special characters, a
10,000-character clause, many buttons, long labels).

Parity is for replies that fit both platforms whole: a clause too long for
either ends differently by design (Slack at 50 blocks, Teams at 25,000 bytes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import convert as slack
from adapters.teams import convert as teams
from bot import wording
from bot.answers import Answerer
from bot.messages import Action, Button, Incoming, Quote, Reply
from bot.storage import Operations
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase
from tests.support.adaptive_cards import assert_teams_card, shown

ASKER = "6a1f0c2e-8d3b-4c5a-9e7f-1b2c3d4e5f60"
CONTACT = "29:1contact"


@dataclass
class Shown:
    """What a reader sees in one rendered reply."""

    quote: str | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)
    see_also: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""
    asked_by: str | None = None
    buttons: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    """(label, action, value, style) with the style as the core names it."""
    cut: bool = False


def norm(text: str) -> str:
    return " ".join(text.split())


# --- reading Slack back ------------------------------------------------------------------

_SLACK_SOURCE = re.compile(r"^From \*(.*)\* \((.*)\)$", re.DOTALL)


def slack_plain(mrkdwn: str) -> str:
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_unquote(section: str) -> str:
    assert all(line.startswith("> ") for line in section.split("\n"))
    return slack_plain("\n".join(line[2:] for line in section.split("\n")))


def slack_source(context: str) -> str:
    match = _SLACK_SOURCE.match(context)
    assert match, context
    return norm(f"From {slack_plain(match.group(1))} ({slack_plain(match.group(2))})")


def read_slack(payload: dict[str, Any]) -> Shown:
    seen = Shown()
    quotes: list[list[str]] = []
    sources: list[str] = []
    texts: list[str] = []
    after_quote = False
    for block in payload["blocks"]:
        kind = block["type"]
        text = block["text"]["text"] if kind == "section" else ""
        is_quote = kind == "section" and text.startswith("> ")
        if is_quote:
            if not after_quote:
                quotes.append([])  # a new clause starts
            quotes[-1].append(slack_unquote(text))
        elif kind == "section" and text == f"*{wording.see_also().rstrip(':')}*":
            pass
        elif kind == "section":
            texts.append(slack_plain(text))
        elif kind == "context":
            line = block["elements"][0]["text"]
            if line.startswith("From *"):
                sources.append(slack_source(line))
            elif line.startswith("Asked by "):
                seen.asked_by = slack_plain(line)
            else:
                seen.cut = True  # "please read the rest in the policy"
        elif kind == "actions":
            seen.buttons += [
                (
                    e["text"]["text"],
                    re.sub(r"-\d+$", "", e["action_id"]),
                    e.get("value", ""),
                    e.get("style"),
                )
                for e in block["elements"]
            ]
        after_quote = is_quote
    _collect(seen, quotes, sources, texts)
    return seen


# --- reading Teams back --------------------------------------------------------------------

_TEAMS_SOURCE = re.compile(r"^From \*\*(.*)\*\* \((.*)\)$", re.DOTALL)
_TEAMS_STYLE = {"positive": "primary", "destructive": "danger", None: None}


def teams_source(text: str) -> str:
    match = _TEAMS_SOURCE.match(text)
    assert match, text
    return norm(f"From {shown(match.group(1))} ({shown(match.group(2))})")


def _teams_buttons(actions: list[dict[str, Any]]) -> Iterator[tuple[str, str, str, str | None]]:
    for action in actions:
        assert action["type"] == "Action.Submit"
        data = action["data"]
        yield action["title"], data["action"], data["value"], _TEAMS_STYLE[action.get("style")]


def read_teams(card: dict[str, Any]) -> Shown:
    assert_teams_card(card)
    seen = Shown()
    quotes: list[list[str]] = []
    sources: list[str] = []
    texts: list[str] = []
    for element in card["body"]:
        kind = element["type"]
        if kind == "Container" and element.get("style") == "emphasis":
            quotes.append([shown(item["text"]) for item in element["items"]])
        elif kind == "ActionSet":
            seen.buttons += _teams_buttons(element["actions"])
        elif kind == "TextBlock":
            text = element["text"]
            if element.get("weight") == "bolder":
                assert shown(text) == wording.see_also().rstrip(":")
            elif element.get("isSubtle") and text.startswith("From **"):
                sources.append(teams_source(text))
            elif element.get("isSubtle") and text.startswith("Asked by "):
                seen.asked_by = shown(text)
            elif element.get("isSubtle"):
                seen.cut = True
            else:
                texts.append(shown(text))
        else:
            raise AssertionError(f"unexpected element {kind}")
    seen.buttons += _teams_buttons(card.get("actions", []))
    _collect(seen, quotes, sources, texts)
    return seen


def _collect(seen: Shown, quotes: list[list[str]], sources: list[str], texts: list[str]) -> None:
    """Pair quotes with sources: the answer's quote first, then the see-also ones."""
    assert len(quotes) == len(sources), (quotes, sources)
    joined = [norm(" ".join(pieces)) for pieces in quotes]
    if joined:
        seen.quote, seen.source = joined[0], sources[0]
        seen.see_also = list(zip(sources[1:], joined[1:], strict=True))
        seen.notes = [norm(t) for t in texts]
    else:
        seen.text = norm(" ".join(texts))


# --- comparing ------------------------------------------------------------------------------


def same_label(slack_label: str, teams_label: str) -> bool:
    """Equal, or each cut from the same label at a word (Slack allows 75, Teams 40)."""
    if slack_label == teams_label:
        return True
    stem = teams_label.removesuffix(teams.ELLIPSIS)
    return teams_label.endswith(teams.ELLIPSIS) and slack_label.removesuffix(
        slack.ELLIPSIS
    ).startswith(stem)


def assert_parity(reply: Reply) -> None:
    in_slack, in_teams = read_slack(slack.render(reply)), read_teams(teams.render(reply))
    assert in_teams.quote == in_slack.quote
    assert in_teams.source == in_slack.source
    assert in_teams.notes == in_slack.notes
    assert in_teams.see_also == in_slack.see_also
    assert in_teams.text == in_slack.text
    assert in_teams.cut == in_slack.cut
    assert (in_teams.asked_by is None) == (in_slack.asked_by is None)
    asker = reply.extra.get("asked_by")
    if asker:
        assert in_slack.asked_by is not None and in_teams.asked_by is not None
        assert asker in in_slack.asked_by.replace("<@", "").replace(">", "")
        assert asker in in_teams.asked_by
    assert [b[1:] for b in in_teams.buttons] == [b[1:] for b in in_slack.buttons]
    for (slack_label, *_), (teams_label, *_) in zip(
        in_slack.buttons, in_teams.buttons, strict=True
    ):
        assert same_label(slack_label, teams_label), (slack_label, teams_label)
    # and both say what the reply says
    if reply.quote is not None:
        assert in_teams.quote == norm(reply.quote.text)
        assert in_teams.source == norm(f"From {reply.quote.source}")
        assert in_teams.notes == [norm(n) for n in reply.notes]
        assert in_teams.see_also == [
            (norm(f"From {q.source}"), norm(q.text)) for q in reply.see_also
        ]
    else:
        assert in_teams.text == norm(reply.text)
    assert [(b[1], b[2], b[3]) for b in in_teams.buttons] == [
        (str(b.action.value), b.value, b.style) for b in reply.buttons
    ]


# --- replies from the real core ---------------------------------------------------------------

QUESTIONS = [
    ("st-annes", "can I accept a friend request from an ex-pupil?"),
    ("st-annes", "a girl in my class told me her dad hits her"),  # concern, answered
    ("st-annes", "I am worried a pupil is being hurt at home"),  # concern, not found
    ("st-annes", "how many sugars do you take in your tea?"),  # not found, pass on
    ("st-annes", ""),  # help
    ("kaleidoscope", "can I accept a friend request from an ex-pupil?"),  # review overdue
    ("crossflatts", "is it ok to put a pic of my class on my own insta?"),  # see also
    ("cwm-felin", "can i make a tiktok acct with my school email?"),  # see also
    ("st-johns", "how often does this policy get looked at/updated?"),
]


@pytest.fixture
def answerer(sample_db_copy: Path) -> Iterator[Answerer]:
    kb = KnowledgeBase(sample_db_copy)
    yield Answerer(
        kb,
        Searcher(kb),
        Operations(kb.db),
        contacts=lambda school, platform: CONTACT if school == "st-annes" else None,
        today=lambda: date(2025, 1, 15),
    )
    kb.close()


def incoming(school: str, text: str) -> Incoming:
    return Incoming("teams", school, ASKER, text, "a:1personal", kind="direct")


async def test_the_real_replies_read_the_same_on_both_platforms(answerer: Answerer) -> None:
    replies = [await answerer.answer(incoming(school, text)) for school, text in QUESTIONS]
    kinds = [reply.kind for reply in replies]
    assert kinds.count("answer") >= 5 and "not_found" in kinds and "help" in kinds
    assert any(reply.see_also for reply in replies)
    assert any(b.action is Action.REPORT_CONCERN for r in replies for b in r.buttons)
    assert any(b.action is Action.PASS_TO_CONTACT for r in replies for b in r.buttons)
    assert any(reply.notes for reply in replies if reply.kind == "answer")
    for reply in replies:
        assert_parity(reply)


async def test_the_replies_to_buttons_read_the_same_on_both_platforms(answerer: Answerer) -> None:
    answered = await answerer.answer(incoming("st-annes", "can I give a pupil a lift home?"))
    gap = await answerer.answer(incoming("st-annes", "how many sugars do you take in your tea?"))
    assert answered.question_id is not None and gap.question_id is not None
    clicks = [
        teams.to_click(_submit(Action.HELPFUL, str(answered.question_id)), "st-annes"),
        teams.to_click(_submit(Action.REPORT_CONCERN, str(answered.question_id)), "st-annes"),
        teams.to_click(_submit(Action.PASS_TO_CONTACT, str(gap.question_id)), "st-annes"),
        teams.to_click(_submit(Action.PASS_TO_CONTACT, str(gap.question_id)), "st-annes"),
        teams.to_click(_submit(Action.NOT_HELPFUL, "999999"), "st-annes"),
    ]
    outcomes = [await answerer.click(click) for click in clicks if click is not None]
    assert len(outcomes) == 5
    replies = [o.reply for o in outcomes if o.reply is not None]
    forwarded = [d.reply for o in outcomes for d in o.deliveries]
    assert len(forwarded) == 1 and forwarded[0].extra == {"asked_by": ASKER}
    for reply in [*replies, *forwarded]:
        assert_parity(reply)


def _submit(action: Action, value: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "1736933400999",
        "channelId": "msteams",
        "from": {"id": "29:1asker", "aadObjectId": ASKER},
        "conversation": {"conversationType": "personal", "id": "a:1personal"},
        "recipient": {"id": "28:bot", "name": "guidebot"},
        "value": {"action": str(action.value), "value": value},
    }


# --- hand-made replies ------------------------------------------------------------------------

SPECIAL = "Staff & pupils: *never* share <passwords> or _logins_; see [annex](https://x.example) 1."


def _answer(quote: Quote, **fields: Any) -> Reply:
    fields.setdefault(
        "buttons",
        (
            Button(wording.helpful_label(), Action.HELPFUL, "7", "primary"),
            Button(wording.not_helpful_label(), Action.NOT_HELPFUL, "7"),
            Button(wording.report_label(), Action.REPORT_CONCERN, "7", "danger"),
        ),
    )
    return Reply(quote.text, quote=quote, question_id=7, **fields)


HAND_MADE: dict[str, Callable[[], Reply]] = {
    "special characters": lambda: _answer(
        Quote(f"{SPECIAL}\n1. first\n- second\n# third", "E-Safety *Policy* & <AUP>", "2_a", "3"),
        notes=(wording.concern_offer(), "Note with *stars* & <angles>"),
        see_also=(Quote(SPECIAL, "Code of Conduct", "", None),),
    ),
    "a 10,000-character clause": lambda: _answer(
        Quote(" ".join(f"word{i}&*" for i in range(1200)), "Behaviour Policy", "Sanctions")
    ),
    "lines and paragraphs": lambda: _answer(
        Quote("Staff must:\n\n  - report\r\n  - record\n", "Safeguarding Policy", "Duties", "5.1")
    ),
    "seven buttons": lambda: Reply(
        "Which helped?",
        buttons=tuple(Button(f"Answer {i}", Action.HELPFUL, str(i)) for i in range(7)),
        kind="notice",
    ),
    "a long label": lambda: Reply(
        wording.not_found("Mrs Bartholomew-Featherstonehaugh, Deputy Headteacher", True),
        buttons=(
            Button(
                wording.pass_on_label("Mrs Bartholomew-Featherstonehaugh, Deputy Headteacher"),
                Action.PASS_TO_CONTACT,
                "31",
            ),
        ),
        kind="not_found",
    ),
    "a passed-on question": lambda: Reply(
        wording.passed_on_to_contact("can I use *my* phone & <laptop> [at] home?"),
        kind="notice",
        extra={"asked_by": "U0TEACHER"},
    ),
}


@pytest.mark.parametrize("name", list(HAND_MADE))
def test_hand_made_replies_read_the_same_on_both_platforms(name: str) -> None:
    assert_parity(HAND_MADE[name]())


def test_the_readers_notice_a_difference() -> None:
    """The check is not vacuous: a Teams card missing a note or with another
    button value does not read the same."""
    reply = HAND_MADE["special characters"]()
    card = teams.render(reply)
    in_slack = read_slack(slack.render(reply))
    dropped = {
        **card,
        "body": [e for e in card["body"] if e.get("text") != card["body"][2]["text"]],
    }
    assert read_teams(dropped).notes != in_slack.notes
    card["actions"][0]["data"]["value"] = "8"
    assert read_teams(card).buttons != in_slack.buttons
