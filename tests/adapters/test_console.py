"""The console chat over a real knowledge base: answers, gaps, and failures."""

from __future__ import annotations

import io
import logging
from datetime import date
from pathlib import Path

import pytest

from adapters.console import run_console
from bot import wording
from bot.answers import Answerer
from bot.messages import Incoming
from bot.storage import Operations
from knowledge.search import Searcher, SearchResult
from knowledge.store import KnowledgeBase

FRIEND_QUESTION = "can I accept a friend request from an ex-pupil?"
OFF_TOPIC = "how many inset days have we got this year?"
DISCLOSURE = "a year 5 girl told me her uncle hits her and said not to tell anyone"


async def _chat(kb: KnowledgeBase, lines: list[str], school: str = "st-annes") -> str:
    out = io.StringIO()
    await run_console(kb, Searcher(kb), school, lines, out, interactive=False)
    return out.getvalue()


async def test_an_answer_quotes_the_clause_with_its_policy_and_section(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    output = await _chat(kb, [FRIEND_QUESTION])
    assert "From Social Media Policy (Personal Use of Social Media by Staff):" in output
    assert "accept 'friend requests' from, or" in output
    assert "Sorry" not in output


async def test_an_unanswered_question_names_who_to_ask_and_is_recorded_as_a_gap(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    output = " ".join((await _chat(kb, [OFF_TOPIC])).split())
    assert "Natalie Slight, Acting Headteacher" in output  # st-annes' named contact
    assert "I have noted the question" in output
    gaps = Operations(kb.db).gaps("st-annes")  # unanswered questions
    assert [g.text for g in gaps] == [OFF_TOPIC]


async def test_a_message_that_looks_like_a_concern_is_never_stored_as_a_gap(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    output = " ".join((await _chat(kb, [DISCLOSURE])).split())
    assert "Designated Safeguarding Lead" in output
    assert "999" in output
    assert "noted the question" not in output  # it was not, so we must not say so
    assert Operations(kb.db).gaps("st-annes") == []
    # The console has no buttons: it names the command instead.
    assert " ".join(wording.concern_console_hint().split()) in output
    assert "button" not in output
    dump = "\n".join(kb.db.conn.iterdump())
    assert "uncle hits her" not in dump


async def test_a_failure_while_answering_is_kind_and_logs_nothing_of_the_message(
    sample_db_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kb = KnowledgeBase(sample_db_copy)

    class BrokenSearcher(Searcher):
        def search(self, school_slug: str, question: str, top_k: int = 3) -> SearchResult:
            raise RuntimeError(f"index exploded while reading {question!r}")

    out = io.StringIO()
    with caplog.at_level(logging.DEBUG):
        await run_console(
            kb, BrokenSearcher(kb), "st-annes", [DISCLOSURE, "/help"], out, interactive=False
        )
    output = out.getvalue()
    assert wording.something_went_wrong() in output
    assert "Traceback" not in output
    assert "RuntimeError" in caplog.text
    assert "uncle" not in caplog.text and "uncle" not in output
    assert wording.help_text() in output  # the conversation carried on


async def test_commands_switch_school_and_list_schools(sample_db_copy: Path) -> None:
    kb = KnowledgeBase(sample_db_copy)
    output = await _chat(
        kb, ["/schools", "/school kaleidoscope", FRIEND_QUESTION, "/school nowhere"]
    )
    assert "crossflatts: Crossflatts Primary School" in output
    assert wording.school_switched("Kaleidoscope Multi-Academy Trust") in output
    assert "Social Media and Networking Policy" in output
    assert "I do not know a school called 'nowhere'" in output


async def test_quit_stops_reading(sample_db_copy: Path) -> None:
    kb = KnowledgeBase(sample_db_copy)
    output = await _chat(kb, ["/quit", FRIEND_QUESTION])
    assert "friend" not in output


async def test_an_answer_from_a_policy_past_its_review_date_says_so(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    question = Incoming(
        "console", "kaleidoscope", "u1", "a pupil added me on snapchat, what do i do?", "c"
    )
    assert "was due for review in September 2020" in await answer_on_async(
        kb, question, date(2026, 11, 22)
    )
    assert "due for review" not in await answer_on_async(kb, question, date(2020, 8, 1))


async def answer_on_async(kb: KnowledgeBase, question: Incoming, day: date) -> str:
    answerer = Answerer(kb, Searcher(kb), Operations(kb.db), today=lambda: day)
    reply = await answerer.answer(question)
    assert reply.quote is not None and reply.quote.policy == "Social Media and Networking Policy"
    return " ".join(reply.text.split())
