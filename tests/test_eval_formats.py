"""The evaluation scores do not depend on the format a school's policies come in.

The bundled samples are ingested twice: as the .txt files they are, and as the
Word documents a school would upload (tests/sample_to_docx.py). Both knowledge
bases are scored on the shared development set exactly as `guidebot eval`
scores them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pytest

from bot.evaluation import Report, evaluate, read_items
from knowledge.sample_data import load_samples, sample_files
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase
from tests.sample_to_docx import convert_samples, convert_text

EVAL_FILE = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"
RECALL_TOLERANCE = 0.03


@pytest.fixture(scope="module")
def eval_items() -> list[dict[str, Any]]:
    if not EVAL_FILE.exists():
        pytest.skip(f"no evaluation set at {EVAL_FILE}")
    return read_items(EVAL_FILE)


def _score(path: Path, items: list[dict[str, Any]], files: dict[str, Path] | None) -> Report:
    kb = KnowledgeBase(path)
    try:
        assert load_samples(kb, files) == len(sample_files())
        return evaluate(Searcher(kb), items)
    finally:
        kb.close()


@pytest.fixture(scope="module")
def reports(
    eval_items: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Report, Report]]:
    """(scores from the .txt samples, scores from the same samples as .docx)."""
    folder = tmp_path_factory.mktemp("formats")
    txt = _score(folder / "txt.db", eval_items, None)
    docx_files = convert_samples(folder / "docx")
    assert sorted(docx_files) == sorted(sample_files())
    from_docx = _score(folder / "docx.db", eval_items, docx_files)
    yield txt, from_docx


def test_docx_scores_match_txt(reports: tuple[Report, Report]) -> None:
    txt, from_docx = reports
    only_txt = sorted(set(txt.wrong) - set(from_docx.wrong))
    only_docx = sorted(set(from_docx.wrong) - set(txt.wrong))
    detail = f"missed only with .txt: {only_txt}\nmissed only with .docx: {only_docx}"
    assert from_docx.counts == txt.counts
    assert abs(from_docx.r_at_1 - txt.r_at_1) <= RECALL_TOLERANCE, detail
    assert abs(from_docx.r_at_3 - txt.r_at_3) <= RECALL_TOLERANCE, detail
    assert from_docx.abstention == txt.abstention, detail
    assert from_docx.concern_recall == txt.concern_recall, detail
    assert from_docx.false_report_offers == txt.false_report_offers, detail


# The targets, which both formats meet (R@1 0.907 today, see the README).
R_AT_1_FLOOR = 0.90
R_AT_3_FLOOR = 0.97


@pytest.mark.parametrize("source", ["txt", "docx"])
def test_scores_meet_the_targets(reports: tuple[Report, Report], source: str) -> None:
    report = reports[0] if source == "txt" else reports[1]
    summary = "\n".join(report.lines() + report.wrong)
    assert report.r_at_1 >= R_AT_1_FLOOR, summary
    assert report.r_at_3 >= R_AT_3_FLOOR, summary
    assert report.abstention >= 0.90, summary
    assert report.concern_recall >= 0.95, summary
    assert report.false_report_offers <= 0.05, summary
    assert report.mean_top_words <= 80, summary


# -- the conversion itself ---------------------------------------------------------------


def _paragraphs(document: Any) -> list[tuple[str, str]]:
    return [(p.style.name, p.text) for p in document.paragraphs]


def test_conversion_makes_word_structure() -> None:
    document = convert_text(
        "Acceptable use\n"
        "\n"
        "Individuals should not upload any content\n"
        "on to social media sites that:\n"
        "\n"
        "- is confidential to the school\n"
        "  - including its staff\n"
        "* amounts to bullying of\n"
        "colleagues or pupils\n"
        "• breaches copyright.\n"
        "\n"
        "Version\tDate\tAction\n"
        "Version 1\t03 2019\t\n"
        "\n"
        "The Kaleidoscope Multi-\n"
        "Academy Trust expects staff to stay on-\n"
        "line safely. Staff should be online\n"
        "carefully.\n"
        "Report concerns.\n"
    )
    assert _paragraphs(document) == [
        ("Normal", "Acceptable use"),
        ("Normal", "Individuals should not upload any content on to social media sites that:"),
        ("List Bullet", "is confidential to the school"),
        ("List Bullet 2", "including its staff"),
        ("List Bullet", "amounts to bullying of colleagues or pupils"),
        ("List Bullet", "breaches copyright."),
        (
            "Normal",
            "The Kaleidoscope Multi-Academy Trust expects staff to stay online safely. "
            "Staff should be online carefully.",
        ),
        ("Normal", "Report concerns."),
    ]
    [table] = document.tables
    assert [[cell.text for cell in row.cells] for row in table.rows] == [
        ["Version", "Date", "Action"],
        ["Version 1", "03 2019", ""],
    ]
    assert not any("Heading" in style or style == "Title" for style, _ in _paragraphs(document))


def test_conversion_keeps_headings_fields_and_sentences_apart() -> None:
    document = convert_text(
        "USE OF SCHOOL SITES, PAGES AND SPACES\n"
        "All colleagues should follow this guidance:\n"
        "\n"
        "Name: Natalie Slight\n"
        "Role: Acting Headteacher\n"
        "\n"
        "(Specific sites can be agreed with the head.)\n"
        " 5. Any inappropriate behaviour must be reported.\n"
    )
    assert [text for _, text in _paragraphs(document)] == [
        "USE OF SCHOOL SITES, PAGES AND SPACES",
        "All colleagues should follow this guidance:",
        "Name: Natalie Slight",
        "Role: Acting Headteacher",
        "(Specific sites can be agreed with the head.)",
        "5. Any inappropriate behaviour must be reported.",
    ]


def test_every_sample_converts_to_a_readable_document(tmp_path: Path) -> None:
    for slug, path in convert_samples(tmp_path).items():
        document = docx.Document(str(path))
        words = " ".join(p.text for p in document.paragraphs).split()
        source = sample_files()[slug].read_text(encoding="utf-8")
        assert len(words) > 0.8 * len([w for w in source.split() if w not in "-*•"]), slug
