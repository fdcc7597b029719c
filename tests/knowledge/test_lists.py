""" "What kinds of ..." questions are answered with the whole list, in the policy's words."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.ingest import ingest_files
from knowledge.lists import asks_for_a_list
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

POLICY = """Social Media Policy

1. Official accounts

Staff who manage the school's accounts will delete, as soon as they can:
- abusive, racist or threatening comments left under any school post
- posts that advertise a business or ask the school community for money
- personal details such as home addresses or telephone numbers of families

2. Photographs

Staff must not upload photographs of pupils to their own personal accounts at any time.
"""

LONG_ITEM = " ".join(["word"] * 45)


def knowledge_base(tmp_path: Path, text: str) -> KnowledgeBase:
    policy = tmp_path / "social-media.md"
    policy.write_text(text, encoding="utf-8")
    kb = KnowledgeBase(tmp_path / "kb.db")
    ingest_files(kb, "st-marys", [policy])
    return kb


@pytest.mark.parametrize(
    "question",
    [
        "what kind of comments get deleted?",
        "Which types of posts do you remove?",
        "what sorts of things get taken down from the school page",
        "can you give me examples of posts that get deleted?",
    ],
)
def test_questions_asking_for_kinds_or_examples_ask_for_a_list(question: str) -> None:
    assert asks_for_a_list(question)


@pytest.mark.parametrize(
    "question",
    ["can I delete a rude comment?", "who deletes comments?", "what happens to spam posts?"],
)
def test_ordinary_questions_do_not(question: str) -> None:
    assert not asks_for_a_list(question)


def test_a_kinds_question_quotes_the_lead_in_and_every_item(tmp_path: Path) -> None:
    kb = knowledge_base(tmp_path, POLICY)
    result = Searcher(kb).search("st-marys", "what kind of comments get deleted from our accounts?")
    assert result.answered and result.best is not None
    lines = result.best.text.splitlines()
    assert lines[0].startswith("Staff who manage the school's accounts will delete")
    assert lines[1:] == [
        "• abusive, racist or threatening comments left under any school post",
        "• posts that advertise a business or ask the school community for money",
        "• personal details such as home addresses or telephone numbers of families",
    ]
    # The other items are in the answer now, so they are not offered again as "see also".
    assert all("• " not in m.text and "delete" not in m.text for m in result.matches[1:])


def test_an_ordinary_question_quotes_only_the_item_that_answers_it(tmp_path: Path) -> None:
    kb = knowledge_base(tmp_path, POLICY)
    result = Searcher(kb).search("st-marys", "will the school delete abusive comments?")
    assert result.answered and result.best is not None
    assert "abusive, racist or threatening comments" in result.best.text
    assert "advertise a business" not in result.best.text


def test_a_clause_that_is_not_a_list_item_is_quoted_as_it_is(tmp_path: Path) -> None:
    kb = knowledge_base(tmp_path, POLICY)
    result = Searcher(kb).search("st-marys", "what kinds of photographs of pupils can I upload?")
    assert result.best is not None
    stored = kb.db.execute("SELECT text FROM clauses WHERE id = ?", [result.best.clause_id])
    assert result.best.text == stored.fetchone()[0]


def test_a_list_too_long_to_read_in_chat_stays_one_item(tmp_path: Path) -> None:
    long_policy = POLICY.replace(
        "- personal details such as", f"- {LONG_ITEM}\n- {LONG_ITEM}\n- personal details such as"
    )
    kb = knowledge_base(tmp_path, long_policy)
    result = Searcher(kb).search("st-marys", "what kind of comments get deleted from our accounts?")
    assert result.best is not None
    assert "abusive, racist or threatening comments" in result.best.text
    assert "\n• " not in result.best.text
    assert len(result.best.text.split()) <= 120
