"""A second question set, written by staff-like authors over the bundled samples.

benchmarks/questions/staff.jsonl (80 answer and 10 abstain questions, chat
register) ships with the project, so unlike the shared development set it is
scored on every clone. It was used to find vocabulary the lexicon lacked, so it
is no longer blind: the floors below stop a change from quietly losing ground.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluation import evaluate, read_items
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

QUESTIONS = Path(__file__).resolve().parents[1] / "benchmarks" / "questions"
STAFF_QUESTIONS = QUESTIONS / "staff.jsonl"
UNSEEN_QUESTIONS = QUESTIONS / "unseen.jsonl"
FRESH_QUESTIONS = QUESTIONS / "fresh.jsonl"
"""Written the same way and scored only in aggregate (see the README): no floors,
so nobody is tempted to tune to them."""


def test_staff_questions_hold_their_ground(sample_kb: KnowledgeBase) -> None:
    items = read_items(STAFF_QUESTIONS)
    assert {item["kind"] for item in items} == {"answer", "abstain"}
    report = evaluate(Searcher(sample_kb), items)
    summary = "\n".join(report.lines() + report.wrong)
    assert report.counts == {"answer": 80, "abstain": 10}
    assert report.r_at_1 >= 0.65, summary
    assert report.r_at_3 >= 0.80, summary
    assert report.abstention >= 0.80, summary
    assert report.mean_top_words <= 80, summary


@pytest.mark.parametrize(
    "questions", [STAFF_QUESTIONS, UNSEEN_QUESTIONS, FRESH_QUESTIONS], ids=lambda p: p.name
)
def test_every_gold_extract_is_in_its_schools_sample_policy(questions: Path) -> None:
    """A gold extract that is not in the policy would make a question unwinnable."""
    samples = Path(__file__).resolve().parents[1] / "knowledge" / "samples"
    for item in read_items(questions):
        policy = " ".join((samples / f"{item['school']}.txt").read_text(encoding="utf-8").split())
        for extract in item["gold"]:
            assert " ".join(extract.split()) in policy, (item["id"], extract)
