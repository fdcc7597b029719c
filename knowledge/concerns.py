"""Does a message describe a possible safeguarding concern?

Deliberately simple, explainable rules over the lexicon's concern cues, tuned
for recall: offering the report button to someone asking an ordinary question
costs a click; missing a disclosure can cost a child. The rules:

- a disclosure cue ("told me not to tell anyone", "hits her", "self-harm");
- a child together with an aggravating cue ("late at night", "scared");
- another adult contacting a child ("a TA messaging a year 6 boy").

Contact aimed at the speaker ("a pupil added me") is a question about
professional boundaries, answered from the policy, unless aggravated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz

from knowledge import lexicon as lexicon_module
from knowledge.lexicon import Lexicon, Phrase
from knowledge.text import fold, stem

_YEAR_GROUP_RE = re.compile(r"\b(?:yr|year|y)\s?(?:\d{1,2}|r)s?\b")
_FUZZY_MIN_LENGTH = 6
_FUZZY_CUTOFF = 85.0


def _positions(sequence: Sequence[str], phrases: Sequence[Phrase]) -> list[tuple[int, int]]:
    """(start, end) of every cue phrase in the stemmed message, typo-tolerant
    for single longer words ("colleage")."""
    found: list[tuple[int, int]] = []
    for phrase in phrases:
        size = len(phrase)
        for start in range(len(sequence) - size + 1):
            window = sequence[start : start + size]
            if tuple(window) == phrase or (
                size == 1
                and len(phrase[0]) >= _FUZZY_MIN_LENGTH
                and fuzz.ratio(window[0], phrase[0]) >= _FUZZY_CUTOFF
            ):
                found.append((start, start + size))
    return found


def _stemmed(message: str, lexicon: Lexicon) -> list[str]:
    text = _YEAR_GROUP_RE.sub(" pupil ", fold(message))
    words = lexicon.expand_abbreviations(re.findall(r"[a-z0-9]+", text))
    return [stem(word) for word in words]


def looks_like_concern(message: str, lexicon: Lexicon | None = None) -> bool:
    """True when the message should be offered the "report a concern" button."""
    lexicon = lexicon or lexicon_module.load()
    cues = lexicon.concern_cues
    sequence = _stemmed(message, lexicon)
    if not sequence:
        return False
    if _positions(sequence, cues.get("disclosure", ())):
        return True
    children = _positions(sequence, cues.get("child", ()))
    if not children:
        return False
    if _positions(sequence, cues.get("aggravating", ())):
        return True
    speaker = {phrase[0] for phrase in cues.get("speaker", ()) if phrase}
    contacts = [
        (start, end)
        for start, end in _positions(sequence, cues.get("contact", ()))
        if not (end < len(sequence) and sequence[end] in speaker)
    ]
    adults = _positions(sequence, cues.get("adult", ()))
    return bool(contacts and adults)
