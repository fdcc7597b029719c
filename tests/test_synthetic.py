"""The synthetic corpus the benchmark measures: deterministic, varied, faithful, isolated."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.synthetic import (
    ingest_corpus,
    rename,
    school_names,
    short_name,
    shuffle_sections,
    split_sections,
    synthetic_schools,
    write_corpus,
)
from knowledge.sample_data import sample_files, sample_schools
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase


def non_blank(text: str) -> Counter[str]:
    return Counter(line for line in text.split("\n") if line.strip())


def test_generation_is_deterministic() -> None:
    first = list(synthetic_schools(12, seed=7))
    again = list(synthetic_schools(12, seed=7))
    other = list(synthetic_schools(12, seed=8))
    assert first == again
    assert [s.name for s in first] != [s.name for s in other]
    assert [s.text for s in first] != [s.text for s in other]


def test_slugs_and_round_robin_samples() -> None:
    schools = list(synthetic_schools(11))
    assert [s.slug for s in schools[:3]] == ["school-0001", "school-0002", "school-0003"]
    samples = sorted(sample_files())
    assert [s.sample for s in schools] == [samples[i % len(samples)] for i in range(11)]


def test_names_vary() -> None:
    names = school_names(500)
    assert len(set(names)) == 500
    assert sum(n.startswith("St ") for n in names) >= 50
    assert sum(n.startswith("Ysgol ") for n in names) >= 50
    others = [n for n in names if not n.startswith(("St ", "Ysgol "))]
    assert len(others) >= 150
    assert len({n.split()[-1] for n in others}) >= 5  # Academy, School, Trust, College...
    assert len({short_name(n) for n in names}) >= 100


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("St Anne's CE Primary School", "St Anne's"),
        ("Kaleidoscope Multi-Academy Trust", "Kaleidoscope"),
        ("Cwm Felin Primary School", "Cwm Felin"),
        ("Ysgol Bryn Teg", "Ysgol Bryn Teg"),
        ("Oakfield Academy", "Oakfield"),
    ],
)
def test_short_name(name: str, short: str) -> None:
    assert short_name(name) == short


def test_rename_replaces_full_then_short_name() -> None:
    text = "At St Anne's CE Primary School we care.\nSt Anne’s pupils, and Stanne's too."
    assert rename(text, "St Anne's CE Primary School", "Oakfield Academy") == (
        "At Oakfield Academy we care.\nOakfield pupils, and Stanne's too."
    )


def test_each_school_carries_its_own_name() -> None:
    names = sample_schools()
    for school in synthetic_schools(10):
        source = sample_files()[school.sample].read_text(encoding="utf-8")
        old_short = short_name(names[school.sample])
        if old_short in source:
            assert short_name(school.name) in school.text
        if old_short not in school.name:
            assert old_short not in school.text


def test_every_line_survives_the_shuffle() -> None:
    names = sample_schools()
    for school in synthetic_schools(10):
        source = sample_files()[school.sample].read_text(encoding="utf-8")
        renamed = rename(source, names[school.sample], school.name)
        assert non_blank(school.text) == non_blank(renamed), school.sample


def test_sections_are_reordered_but_kept_whole() -> None:
    for slug, path in sample_files().items():
        text = path.read_text(encoding="utf-8")
        preamble, sections = split_sections(text)
        assert len(sections) >= 5, slug
        shuffled = shuffle_sections(text, random.Random(3))
        assert shuffled != text
        assert shuffled.split("\n")[: len(preamble)] == preamble
        for section in sections:  # each heading is still followed by its own body
            body = "\n".join(line for line in section if line.strip())
            assert body in "\n".join(line for line in shuffled.split("\n") if line.strip())


def test_numbered_documents_shuffle_top_level_sections_only() -> None:
    text = "\n\n".join(
        [
            "Social Media Policy",
            "1. Introduction",
            "Staff must be careful.",
            "Sub heading",
            "Details here.",
            "2. Photos",
            "Ask first.",
            "3. Reporting",
            "Tell the DSL.",
        ]
    )
    preamble, sections = split_sections(text)
    assert [line for line in preamble if line] == ["Social Media Policy"]
    assert [section[0] for section in sections] == ["1. Introduction", "2. Photos", "3. Reporting"]
    assert "Sub heading" in sections[0]


def test_three_synthetic_schools_are_isolated(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "policies", 3)
    kb = KnowledgeBase(tmp_path / "synthetic.db")
    try:
        timings = ingest_corpus(kb, corpus)
        assert len(timings) == 3 and all(t > 0 for t in timings)
        assert [(s.slug, s.name) for s in kb.schools()] == [
            (school.slug, school.name) for school, _ in corpus
        ]
        searcher = Searcher(kb)
        for school, path in corpus:
            own = {p.id for p in kb.policies(school.slug)}
            assert len(own) == 1
            for question in ("can I accept a friend request from a pupil?", "photos of pupils"):
                result = searcher.search(school.slug, question)
                assert result.matches
                assert {m.policy_id for m in result.matches} <= own
            # The school's clauses are exactly what it gets when ingested on its own.
            alone = KnowledgeBase(tmp_path / f"{school.slug}.db")
            try:
                ingest_corpus(alone, [(school, path)])
                expected = [c["text"] for c in alone.clauses(alone.policies(school.slug)[0].id)]
            finally:
                alone.close()
            assert [c["text"] for c in kb.clauses(own.pop())] == expected
    finally:
        kb.close()
