"""The conversation every platform shares: question in, Reply out, buttons back.

A private copy of the sample knowledge base per test, with the real Searcher and
the real Operations store, so what a reply claims can be checked in the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from bot import wording
from bot.answers import Answerer, Delivery
from bot.messages import Action, Button, Click, FormRequest, Incoming, Kind, Reply
from bot.storage import WITHHELD, Operations
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

FRIEND = "can I accept a friend request from an ex-pupil?"
TEA = "how many sugars do you take in your tea?"
DISCLOSURE = "a girl in my class told me her dad hits her"
WORRY = "I am worried a pupil is being hurt at home"
COLLEAGUE_MESSAGING = "a teacher is friends with pupils on facebook and messages them"
ST_ANNES_CONTACT = "Natalie Slight, Acting Headteacher"
CONTACT_ID = "U0CONTACT"
ASKER = "U0ASKER"
TODAY = date(2025, 1, 15)

Contacts = Callable[[str, str], str | None]


def st_annes_on_slack(school: str, platform: str) -> str | None:
    return CONTACT_ID if (school, platform) == ("st-annes", "slack") else None


@pytest.fixture
def kb(sample_db_copy: Path) -> Iterator[KnowledgeBase]:
    kb = KnowledgeBase(sample_db_copy)
    yield kb
    kb.close()


@pytest.fixture
def ops(kb: KnowledgeBase) -> Operations:
    return Operations(kb.db)


@pytest.fixture
def make(kb: KnowledgeBase, ops: Operations) -> Callable[..., Answerer]:
    searcher = Searcher(kb)

    def build(contacts: Contacts | None = st_annes_on_slack, today: date = TODAY) -> Answerer:
        return Answerer(kb, searcher, ops, contacts, today=lambda: today)

    return build


@pytest.fixture
def answerer(make: Callable[..., Answerer]) -> Answerer:
    return make()


def incoming(
    text: str, school: str = "st-annes", kind: Kind = "direct", user: str = ASKER
) -> Incoming:
    return Incoming("slack", school, user, text, "D0CHANNEL", kind=kind)


def click(
    action: Action, value: str, user: str = ASKER, school: str = "st-annes", platform: str = "slack"
) -> Click:
    return Click(platform, school, user, action, value)  # type: ignore[arg-type]


def actions(reply: Reply) -> list[Action]:
    return [button.action for button in reply.buttons]


def count_questions(ops: Operations) -> int:
    return int(ops.db.execute("SELECT count(*) FROM questions").fetchone()[0])


def every_row(kb: KnowledgeBase) -> str:
    return "\n".join(kb.db.conn.iterdump())


# --- answers ----------------------------------------------------------------------------


async def test_an_answer_quotes_a_stored_clause_exactly_with_its_source(
    answerer: Answerer, kb: KnowledgeBase, ops: Operations
) -> None:
    reply = await answerer.answer(incoming(FRIEND))

    assert reply.kind == "answer"
    assert reply.quote is not None
    assert reply.question_id is not None
    stored = kb.db.execute(
        "SELECT c.text, c.section, p.title FROM questions q"
        " JOIN clauses c ON c.id = q.clause_id JOIN policies p ON p.id = c.policy_id"
        " WHERE q.id = ?",
        [reply.question_id],
    ).fetchone()
    assert reply.quote.text == stored[0]
    assert (reply.quote.section, reply.quote.policy) == (stored[1], stored[2])
    assert reply.quote.policy == "Social Media Policy"
    assert reply.quote.section == "Personal Use of Social Media by Staff"
    assert "friend requests" in reply.quote.text
    assert reply.text.startswith("From Social Media Policy (Personal Use of Social Media by Staff)")
    assert reply.quote.text in reply.text
    assert reply.notes == ()
    assert not reply.ephemeral

    question_id = str(reply.question_id)
    assert reply.buttons == (
        Button(wording.helpful_label(), Action.HELPFUL, question_id, "primary"),
        Button(wording.not_helpful_label(), Action.NOT_HELPFUL, question_id),
    )
    stored_question = ops.question(reply.question_id)
    assert stored_question is not None
    assert stored_question.text == FRIEND
    assert stored_question.answered


@pytest.mark.parametrize(
    ("text", "kind"),
    [(DISCLOSURE, "concern"), (WORRY, "concern"), (COLLEAGUE_MESSAGING, "answer")],
    ids=["disclosure", "worry", "about-the-policy"],
)
async def test_a_possible_concern_offers_the_report_button_and_is_stored_withheld(
    answerer: Answerer, kb: KnowledgeBase, ops: Operations, text: str, kind: str
) -> None:
    reply = await answerer.answer(incoming(text))

    assert reply.kind == kind
    assert reply.question_id is not None
    report = [b for b in reply.buttons if b.action is Action.REPORT_CONCERN]
    assert report == [
        Button(wording.report_label(), Action.REPORT_CONCERN, str(reply.question_id), "danger")
    ]
    assert wording.concern_offer() in reply.notes
    assert wording.concern_offer() in reply.text
    # The contact callable would offer "pass on" for an ordinary gap; never for this.
    assert Action.PASS_TO_CONTACT not in actions(reply)

    stored = ops.question(reply.question_id)
    assert stored is not None
    assert stored.text == WITHHELD
    assert text not in every_row(kb)
    assert ops.recent_questions("slack", ASKER) == []
    assert ops.gaps("st-annes") == []


@pytest.mark.parametrize("text", ["", "   ", "hi", "Hello!", "help", "Help?", "?", "good morning"])
async def test_a_greeting_or_help_gets_the_help_reply_and_is_not_recorded(
    answerer: Answerer, ops: Operations, text: str
) -> None:
    reply = await answerer.answer(incoming(text))
    assert reply.kind == "help"
    assert reply.text == wording.help_text_chat("St Anne's CE Primary School")
    assert reply.buttons == ()
    assert reply.question_id is None
    assert count_questions(ops) == 0


async def test_an_unanswered_question_names_the_contact_records_a_gap_and_offers_pass_on(
    answerer: Answerer, ops: Operations
) -> None:
    reply = await answerer.answer(incoming(TEA))

    assert reply.kind == "not_found"
    assert reply.quote is None
    assert ST_ANNES_CONTACT in reply.text
    assert reply.text == wording.not_found(ST_ANNES_CONTACT, gap_recorded=True)
    assert reply.question_id is not None
    assert [(g.id, g.text) for g in ops.gaps("st-annes")] == [(reply.question_id, TEA)]
    assert reply.buttons == (
        Button(
            wording.pass_on_label(ST_ANNES_CONTACT),
            Action.PASS_TO_CONTACT,
            str(reply.question_id),
        ),
    )
    assert ST_ANNES_CONTACT in reply.buttons[0].label


@pytest.mark.parametrize("contacts", [None, lambda school, platform: None], ids=["none", "no-id"])
async def test_no_pass_on_button_without_a_contact_id(
    make: Callable[..., Answerer], ops: Operations, contacts: Contacts | None
) -> None:
    reply = await make(contacts=contacts).answer(incoming(TEA))
    assert reply.kind == "not_found"
    assert ST_ANNES_CONTACT in reply.text
    assert reply.buttons == ()
    assert len(ops.gaps("st-annes")) == 1


async def test_no_pass_on_button_for_a_school_whose_contact_is_unknown_here(
    answerer: Answerer,
) -> None:
    reply = await answerer.answer(incoming(TEA, school="kaleidoscope"))
    assert reply.kind == "not_found"
    assert Action.PASS_TO_CONTACT not in actions(reply)


@pytest.mark.parametrize(
    ("kind", "ephemeral"), [("command", True), ("direct", False), ("mention", False)]
)
@pytest.mark.parametrize("text", [FRIEND, TEA, "help"], ids=["answer", "not-found", "help"])
async def test_only_slash_command_replies_are_ephemeral(
    answerer: Answerer, kind: Kind, ephemeral: bool, text: str
) -> None:
    reply = await answerer.answer(incoming(text, kind=kind))
    assert reply.ephemeral is ephemeral


@pytest.mark.parametrize(
    ("today", "overdue"),
    [
        (date(2020, 8, 31), False),
        (date(2020, 9, 1), False),
        (date(2020, 9, 2), True),
        (date(2025, 1, 15), True),
    ],
)
async def test_a_policy_past_its_review_date_is_noted(
    make: Callable[..., Answerer], today: date, overdue: bool
) -> None:
    reply = await make(today=today).answer(incoming(FRIEND, school="kaleidoscope"))
    assert reply.kind == "answer"
    assert reply.quote is not None
    assert reply.quote.policy == "Social Media and Networking Policy"
    note = wording.review_overdue(date(2020, 9, 1))
    assert "September 2020" in note
    assert (note in reply.notes) is overdue
    assert (note in reply.text) is overdue


async def test_a_policy_without_a_review_date_is_never_noted(
    make: Callable[..., Answerer],
) -> None:
    reply = await make(today=date(2099, 1, 1)).answer(incoming(FRIEND))
    assert reply.kind == "answer"
    assert reply.notes == ()


async def test_a_disclosure_is_not_answered_with_a_loosely_matching_clause(
    answerer: Answerer,
) -> None:
    """The search finds a clause sharing a word or two with a disclosure; quoting
    it ("staff must not complain about the school...") would read as if the bot
    had not listened. The reply is the way to report it, and nothing else."""
    result = answerer.searcher.search("st-annes", DISCLOSURE)
    assert result.offer_report and result.answered  # the search alone would quote
    reply = await answerer.answer(incoming(DISCLOSURE))
    assert reply.quote is None and reply.see_also == ()
    assert reply.text.startswith(wording.concern_offer())
    assert wording.concern_button_hint() in reply.text
    best = result.best
    assert best is not None and best.text not in reply.text


async def test_a_concern_about_conduct_the_policy_covers_keeps_the_clause(
    answerer: Answerer,
) -> None:
    reply = await answerer.answer(incoming(COLLEAGUE_MESSAGING))
    assert reply.quote is not None
    assert "friend requests" in reply.quote.text
    assert wording.concern_offer() in reply.notes


@pytest.mark.parametrize("text", [FRIEND, TEA, DISCLOSURE, WORRY])
def test_compose_without_a_question_id_has_no_buttons_and_records_nothing(
    answerer: Answerer, ops: Operations, text: str
) -> None:
    result = answerer.searcher.search("st-annes", text)
    reply = answerer.compose(result, "slack")
    assert reply.buttons == ()
    assert reply.question_id is None
    assert "noted the question" not in reply.text
    assert count_questions(ops) == 0


# --- Helpful / Not helpful --------------------------------------------------------------


async def test_feedback_is_stored_and_can_be_changed(answerer: Answerer, ops: Operations) -> None:
    reply = await answerer.answer(incoming(FRIEND))
    assert reply.question_id is not None
    value = str(reply.question_id)

    outcome = await answerer.click(click(Action.HELPFUL, value))
    assert outcome.reply is not None
    assert outcome.reply.text == wording.thanks_for_feedback()
    assert outcome.reply.ephemeral
    assert outcome.deliveries == ()
    assert ops.feedback(reply.question_id) is True

    await answerer.click(click(Action.NOT_HELPFUL, value))
    assert ops.feedback(reply.question_id) is False
    count = ops.db.execute("SELECT count(*) FROM feedback").fetchone()[0]
    assert count == 1


@pytest.mark.parametrize("action", [Action.HELPFUL, Action.NOT_HELPFUL])
@pytest.mark.parametrize("value", ["999999", "abc", "", "-1", "1.5", " 1"])
async def test_a_click_for_an_unknown_or_malformed_question_has_expired(
    answerer: Answerer, ops: Operations, action: Action, value: str
) -> None:
    await answerer.answer(incoming(FRIEND))  # question 1 exists
    outcome = await answerer.click(click(action, value))
    assert outcome.reply is not None
    assert outcome.reply.text == wording.button_expired()
    assert outcome.reply.ephemeral
    assert ops.db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 0


@pytest.mark.parametrize("value", ["²", "9" * 30], ids=["superscript-two", "huge"])
async def test_a_forged_numeric_looking_value_has_expired(answerer: Answerer, value: str) -> None:
    outcome = await answerer.click(click(Action.HELPFUL, value))
    assert outcome.reply is not None
    assert outcome.reply.text == wording.button_expired()


async def test_the_report_button_opens_the_form_prefilled_for_the_writer_only(
    answerer: Answerer, ops: Operations
) -> None:
    reply = await answerer.answer(incoming(DISCLOSURE))
    outcome = await answerer.click(click(Action.REPORT_CONCERN, str(reply.question_id)))
    assert outcome.reply is None
    assert outcome.deliveries == ()
    assert outcome.form == FormRequest("concern", prefill=DISCLOSURE)
    # The text was never stored: only the memory cache could fill the form in.
    stored = ops.question(reply.question_id or 0)
    assert stored is not None and stored.text == WITHHELD
    # Someone else pressing the same button gets an empty form, not the message.
    other = await answerer.click(
        click(Action.REPORT_CONCERN, str(reply.question_id), user="U0SOMEONE")
    )
    assert other.form == FormRequest("concern", prefill="")


# --- passing a question on --------------------------------------------------------------


async def test_only_the_asker_can_pass_their_question_on_and_only_once(
    answerer: Answerer, ops: Operations
) -> None:
    reply = await answerer.answer(incoming(TEA))
    value = str(reply.question_id)

    for stranger in (
        click(Action.PASS_TO_CONTACT, value, user="U0SOMEONE"),
        click(Action.PASS_TO_CONTACT, value, platform="teams"),
    ):
        refused = await answerer.click(stranger)
        assert refused.reply is not None
        assert refused.reply.text == wording.button_expired()
        assert refused.deliveries == ()

    outcome = await answerer.click(click(Action.PASS_TO_CONTACT, value))
    assert outcome.reply is not None
    assert outcome.reply.text == wording.passed_on(ST_ANNES_CONTACT)
    assert outcome.reply.ephemeral
    assert len(outcome.deliveries) == 1
    delivery = outcome.deliveries[0]
    assert isinstance(delivery, Delivery)
    assert (delivery.platform, delivery.user_id) == ("slack", CONTACT_ID)
    assert TEA in delivery.reply.text
    assert delivery.reply.text == wording.passed_on_to_contact(TEA)
    assert delivery.reply.extra == {"asked_by": ASKER}
    assert delivery.reply.buttons == ()

    again = await answerer.click(click(Action.PASS_TO_CONTACT, value))
    assert again.reply is not None
    assert again.reply.text == wording.already_passed_on(ST_ANNES_CONTACT)
    assert again.deliveries == ()
    assert ops.db.table("questions").get(reply.question_id)["passed_on_at"] is not None


@pytest.mark.parametrize("value", ["999999", "abc", ""])
async def test_passing_on_an_unknown_question_has_expired(answerer: Answerer, value: str) -> None:
    outcome = await answerer.click(click(Action.PASS_TO_CONTACT, value))
    assert outcome.reply is not None
    assert outcome.reply.text == wording.button_expired()
    assert outcome.deliveries == ()


async def test_passing_on_needs_a_contact_at_click_time(
    make: Callable[..., Answerer], ops: Operations
) -> None:
    reply = await make().answer(incoming(TEA))
    outcome = await make(contacts=None).click(click(Action.PASS_TO_CONTACT, str(reply.question_id)))
    assert outcome.reply is not None
    assert outcome.reply.text == wording.button_expired()
    assert outcome.deliveries == ()
    assert ops.db.table("questions").get(reply.question_id)["passed_on_at"] is None


async def test_a_withheld_question_cannot_be_passed_on_even_by_a_forged_click(
    answerer: Answerer, ops: Operations
) -> None:
    reply = await answerer.answer(incoming(WORRY))
    assert Action.PASS_TO_CONTACT not in actions(reply)
    outcome = await answerer.click(click(Action.PASS_TO_CONTACT, str(reply.question_id)))
    assert outcome.deliveries == ()
    assert ops.db.table("questions").get(reply.question_id)["passed_on_at"] is None


async def test_an_unknown_action_gets_no_reply(answerer: Answerer) -> None:
    outcome = await answerer.click(click(Action.ASK_QUESTION, "anything"))
    assert outcome.reply is None
    assert outcome.deliveries == ()
