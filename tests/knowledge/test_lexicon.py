"""The school vocabulary: what staff type maps onto what the policies say."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import lexicon
from knowledge.errors import GuidebotError
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase
from knowledge.text import stem

DELIBERATE_OVERLAPS = {
    "put": "post",  # "put it on fb" is posting, though "put" alone is filler
    "mate": "befriend",  # "be mates with" is befriending
    "person": "personal",  # the Porter stem of "personal" is "person"
}
"""Group words whose stem is also a filler or everyday word, on purpose."""


def labels(searcher: Searcher, question: str) -> set[str]:
    return {concept.label for concept in searcher.analyse(question)}


def test_no_group_word_swallows_a_filler_or_everyday_word_by_accident() -> None:
    """Phrases are matched on stems before filler is dropped, so a group word
    that stems like a filler word ("news" -> "new", "okayed" -> "okay") would
    turn every "is it okay" or "the new rota" into a topic."""
    bundled = lexicon.load(())
    everyday = {stem(word): word for word in bundled.filler | bundled.common}
    clashes = {
        phrase[0]: group.name
        for group in bundled.groups
        for phrase in group.terms
        if len(phrase) == 1 and phrase[0] in everyday
    }
    assert clashes == DELIBERATE_OVERLAPS


@pytest.mark.parametrize(
    ("question", "present", "absent"),
    [
        ("really annoyed about the new SLT rota", "senior leaders", "press"),
        ("a reporter from the local news rang me", "press", None),
        ("can i check fb on my phone at break?", "work time", "breach"),
        ("is fb ok at lunch or break?", "work time", "breach"),
        ("what happens if i break the rules?", "breach", "work time"),
        ("is it okay to vent about a parent?", "parent", "permission"),
        ("my fb is set to friends only", "privacy settings", None),
        ("should i screenshot the comments first?", "evidence", None),
        ("can i have a look at a parent's facebook before a meeting?", "look up", "locate"),
        ("which laws is the policy based on?", "law", None),
        ("when do NQTs get told about the policy?", "new staff", None),
        ("is there any training on the policy?", "training", "new staff"),
        ("we're meeting in the staff room", None, "locate"),
        ("can i post on the school's own facebook?", "school account", "personal"),
        ("can i post on my own facebook?", "personal", "school account"),
        ("how do i get the new page signed off?", "approval", None),
        ("who approves the business case?", "approval", None),
        ("can i run the class twitter on my own?", "school account", None),
    ],
)
def test_everyday_phrasing_maps_onto_the_right_ideas(
    searcher: Searcher, question: str, present: str | None, absent: str | None
) -> None:
    found = labels(searcher, question)
    if present is not None:
        assert present in found
    if absent is not None:
        assert absent not in found


def test_a_schools_own_file_extends_a_group_and_adds_new_ones(
    sample_kb: KnowledgeBase, tmp_path: Path
) -> None:
    extra = tmp_path / "our-words.toml"
    extra.write_text(
        '[abbreviations]\nsenco = "special educational needs coordinator"\n\n'
        '[[group]]\nname = "pupil"\nterms = ["bairn"]\n\n'
        '[[group]]\nname = "the hub"\nterms = ["the hub", "hub"]\n',
        encoding="utf-8",
    )
    plain = Searcher(sample_kb)
    extended = Searcher(sample_kb, [extra])
    assert "pupil" not in labels(plain, "a bairn added me")
    assert "pupil" in labels(extended, "a bairn added me")
    assert "the hub" in labels(extended, "who runs the hub?")
    assert "special" in labels(extended, "ask the senco")
    # The bundled words are still there.
    assert "pupil" in labels(extended, "a learner added me")


def test_a_broken_lexicon_file_is_named_in_the_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken-words.toml"
    broken.write_text("[[group]\nname = ", encoding="utf-8")
    with pytest.raises(GuidebotError, match=r"broken-words\.toml: cannot read the lexicon"):
        lexicon.load((broken,))


def test_a_schools_file_adds_other_senses_to_a_bundled_group(tmp_path: Path) -> None:
    extra = tmp_path / "our-words.toml"
    extra.write_text(
        '[[group]]\nname = "photo"\nother_senses = ["image rights"]\n', encoding="utf-8"
    )
    photo = {g.name: g for g in lexicon.load((extra,)).groups}["photo"]
    assert ("imag", "right") in photo.other_senses
    assert ("profession", "imag") in photo.other_senses  # the bundled ones stay
    assert ("imag",) in photo.terms
