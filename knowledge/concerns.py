"""Does a message describe a possible safeguarding concern?

Deliberately simple, explainable rules over the lexicon's concern cues, tuned
for recall: offering the report button to someone asking an ordinary question
costs a click; missing a disclosure can cost a child. The rules:

- a disclosure cue ("told me not to tell anyone", "hits her", "self-harm");
- a child together with an aggravating cue ("late at night", "scared");
- another adult contacting a child ("a TA messaging a year 6 boy"), unless the
  message only asks what the rules are ("can a TA text pupils about homework?").

Contact aimed at the speaker ("a pupil added me") is a question about
professional boundaries, answered from the policy, unless aggravated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from rapidfuzz import fuzz, process

from knowledge import lexicon as lexicon_module
from knowledge.lexicon import Lexicon, Phrase
from knowledge.text import expand_negations, fold, stem

_YEAR_GROUP_RE = re.compile(r"\b(?:yr|year|y)\s?(?:\d{1,2}|r)s?\b")
_RULE_QUESTION_RE = re.compile(
    r"^\s*(?:(?:can|could|may|should|must|do|does|are|is|am)\s+(?:i|a|an|the|staff|teachers?|"
    r"tas?|colleagues?|we|parents?|governors?|volunteers?)\b|is it (?:ok|okay|alright|allowed|"
    r"acceptable)\b|are (?:staff|teachers|tas|we) allowed\b|what (?:are|is) the rules?\b)",
    re.IGNORECASE,
)
"""A question about what the rules are, not an account of something that happened..."""
_OBSERVED_RE = re.compile(
    r"\b(?:report|reporting|worried|concerned|concern|noticed|saw|seen|told me|found out|"
    r"think|suspect|heard)\b",
    re.IGNORECASE,
)
"""...unless it also describes something seen or heard ("can I report that...")."""
_FUZZY_MIN_LENGTH = 6
_FUZZY_CUTOFF = 85.0


class _CueIndex:
    """Cue phrases indexed by first stem, so a message is scanned once."""

    def __init__(self, phrases: Sequence[Phrase]) -> None:
        self.by_first: dict[str, list[Phrase]] = {}
        for phrase in phrases:
            self.by_first.setdefault(phrase[0], []).append(phrase)
        self.single_words = sorted(
            p[0] for p in phrases if len(p) == 1 and len(p[0]) >= _FUZZY_MIN_LENGTH
        )

    def _misspelt_cue(self, word: str) -> bool:
        if word in self.by_first or len(word) < _FUZZY_MIN_LENGTH or not self.single_words:
            return False
        best = process.extractOne(
            word, self.single_words, scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF
        )
        return best is not None

    def spans(self, sequence: Sequence[str]) -> list[tuple[int, int]]:
        """(start, end) of every cue in the stemmed message; single long words
        also match when misspelt ("colleage")."""
        found: list[tuple[int, int]] = []
        for start, word in enumerate(sequence):
            for phrase in self.by_first.get(word, ()):
                end = start + len(phrase)
                if tuple(sequence[start:end]) == phrase:
                    found.append((start, end))
            if self._misspelt_cue(word):
                found.append((start, start + 1))
        return found


@lru_cache(maxsize=8)
def _indexes(lexicon: Lexicon) -> dict[str, _CueIndex]:
    return {kind: _CueIndex(phrases) for kind, phrases in lexicon.concern_cues.items()}


def _stemmed(message: str, lexicon: Lexicon) -> list[str]:
    text = _YEAR_GROUP_RE.sub(" pupil ", expand_negations(fold(message)))
    words = lexicon.expand_abbreviations(re.findall(r"[a-z0-9]+", text))
    return [stem(word) for word in words]


def looks_like_concern(message: str, lexicon: Lexicon | None = None) -> bool:
    """True when the message should be offered the "report a concern" button."""
    lexicon = lexicon or lexicon_module.load()
    cues = _indexes(lexicon)
    empty = _CueIndex(())
    sequence = _stemmed(message, lexicon)
    if not sequence:
        return False
    if cues.get("disclosure", empty).spans(sequence):
        return True
    if not cues.get("child", empty).spans(sequence):
        return False
    if cues.get("aggravating", empty).spans(sequence):
        return True
    if _RULE_QUESTION_RE.match(message) and not _OBSERVED_RE.search(message):
        return False
    speaker = {phrase[0] for phrase in lexicon.concern_cues.get("speaker", ()) if phrase}
    contacts = [
        (start, end)
        for start, end in cues.get("contact", empty).spans(sequence)
        if not (end < len(sequence) and sequence[end] in speaker)
    ]
    return bool(contacts and cues.get("adult", empty).spans(sequence))
