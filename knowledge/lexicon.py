"""The school vocabulary: abbreviations, filler words and synonym groups.

Loaded from ``lexicon.toml`` beside this module, optionally extended by a
school's own file; groups with the same name merge, so a school can add its
own words ("SENCo", "Arbor", "the Hub") without repeating ours.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from knowledge.errors import GuidebotError
from knowledge.text import expand_negations, fold, stems, tokens

DEFAULT_LEXICON = Path(__file__).with_name("lexicon.toml")

Phrase = tuple[str, ...]
"""A phrase as a tuple of stems."""


@dataclass(frozen=True)
class Group:
    """Words that mean the same thing to staff."""

    name: str
    terms: tuple[Phrase, ...]
    broader: tuple[Phrase, ...] = ()
    intent: bool = False
    """Says what kind of answer is wanted (who to tell, how soon, how often)."""
    scene: bool = False
    """Usually sets the scene (a platform, a device) rather than carrying the question."""
    other_senses: tuple[Phrase, ...] = ()
    """Phrases where the group's words mean something else ("professional image" is a
    reputation, not a photo): a clause using a word only inside one does not count."""


@dataclass(eq=False)  # compared and hashed by identity: built once, then cached
class Lexicon:
    abbreviations: dict[str, list[str]] = field(default_factory=dict)
    filler: frozenset[str] = frozenset()
    common: frozenset[str] = frozenset()
    groups: list[Group] = field(default_factory=list)
    phrase_index: dict[str, list[tuple[Phrase, int]]] = field(default_factory=dict)
    concern_cues: dict[str, tuple[Phrase, ...]] = field(default_factory=dict)
    first_person_markers: frozenset[str] = frozenset()
    first_person_implies: tuple[Phrase, ...] = ()

    @property
    def known_stems(self) -> frozenset[str]:
        """Every single word the lexicon knows, as stems (typo targets)."""
        return frozenset(part for group in self.groups for phrase in group.terms for part in phrase)

    def expand_abbreviations(self, words: Iterable[str]) -> list[str]:
        out: list[str] = []
        for word in words:
            out.extend(self.abbreviations.get(word, [word]))
        return out

    def longest_phrase_at(self, sequence: Sequence[str], start: int) -> tuple[int, int] | None:
        """(length, group index) of the longest group phrase starting here."""
        for phrase, group in self.phrase_index.get(sequence[start], ()):
            end = start + len(phrase)
            if tuple(sequence[start:end]) == phrase:
                return len(phrase), group
        return None


def _phrases(raw: Iterable[str]) -> tuple[Phrase, ...]:
    seen: dict[Phrase, None] = {}
    for text in raw:
        phrase = tuple(stems(expand_negations(fold(text))))
        if phrase:
            seen[phrase] = None
    return tuple(seen)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise GuidebotError(f"{path.name}: cannot read the lexicon: {exc}") from exc


def build(documents: Sequence[dict[str, Any]]) -> Lexicon:
    """Merge lexicon documents, later ones extending earlier ones."""
    abbreviations: dict[str, list[str]] = {}
    filler: set[str] = set()
    common: set[str] = set()
    groups: dict[str, tuple[list[str], list[str], list[str]]] = {}
    scene: set[str] = set()
    intent: set[str] = set()
    cues: dict[str, list[str]] = {}
    markers: set[str] = set()
    implies: list[str] = []
    for document in documents:
        markers.update(document.get("first_person", {}).get("markers", []))
        implies.extend(document.get("first_person", {}).get("implies", []))
        for kind, phrases in document.get("concern", {}).items():
            cues.setdefault(kind, []).extend(phrases)
        for short, long in document.get("abbreviations", {}).items():
            abbreviations[short.casefold()] = tokens(long)
        filler.update(w.casefold() for w in document.get("filler", {}).get("words", []))
        common.update(w.casefold() for w in document.get("common", {}).get("words", []))
        for group in document.get("group", []):
            name = str(group.get("name") or group["terms"][0])
            terms, broader, other_senses = groups.setdefault(name, ([], [], []))
            terms.extend(group.get("terms", []))
            broader.extend(group.get("broader", []))
            other_senses.extend(group.get("other_senses", []))
            if group.get("scene"):
                scene.add(name)
            if group.get("intent"):
                intent.add(name)
    built = [
        Group(name, _phrases(t), _phrases(b), name in intent, name in scene, _phrases(o))
        for name, (t, b, o) in groups.items()
    ]
    index: dict[str, list[tuple[Phrase, int]]] = {}
    for number, group in enumerate(built):
        for phrase in group.terms:
            index.setdefault(phrase[0], []).append((phrase, number))
    for entries in index.values():
        entries.sort(key=lambda entry: -len(entry[0]))
    concern = {kind: _phrases(phrases) for kind, phrases in cues.items()}
    return Lexicon(
        abbreviations,
        frozenset(filler),
        frozenset(common),
        built,
        index,
        concern,
        frozenset(markers),
        _phrases(implies),
    )


@lru_cache(maxsize=8)
def load(extra: tuple[Path, ...] = ()) -> Lexicon:
    """The default lexicon, extended by any extra files, in order."""
    return build([_read(DEFAULT_LEXICON), *(_read(path) for path in extra)])
