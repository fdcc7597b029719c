"""Text handling both platform converters share: cutting text into pieces that
fit a platform's limit (a Block Kit section, an Adaptive Card TextBlock),
removing invisible characters people use to disguise text, and reading a
string field out of a payload."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_TOKENS = re.compile(r"\S+|\s+")

INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
"""Zero-width, direction and filler characters: removed from anything staff typed
before it is shown, so nothing can hide a mention or reverse a line."""


def payload_text(mapping: object, key: str) -> str | None:
    """A non-empty string field of a platform payload, or None."""
    if isinstance(mapping, Mapping):
        value = mapping.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def split_to_fit(text: str, limit: int, cost: Callable[[str], int], overhead: int = 0) -> list[str]:
    """Cut ``text`` at whitespace into pieces each costing at most ``limit``.

    ``cost`` measures how long a piece will be once shown (escaped, quoted);
    ``overhead`` is what every piece costs however short. Whitespace at a cut is
    dropped; every other character is kept, in order. A word too long on its own
    is cut inside the word.
    """
    pieces: list[str] = []
    words: list[str] = []
    size = overhead
    gap = ""
    for token in _TOKENS.findall(text):
        if token.isspace():
            if words:
                gap += token
            continue
        need = cost(gap) + cost(token) if words else cost(token)
        if size + need <= limit:
            if words:
                words.append(gap)
            words.append(token)
            size += need
            gap = ""
            continue
        if words:
            pieces.append("".join(words))
        words, size, gap = [], overhead, ""
        while overhead + cost(token) > limit:
            used, cut = overhead, 0
            while cut < len(token) and used + cost(token[cut]) <= limit:
                used += cost(token[cut])
                cut += 1
            cut = max(cut, 1)
            pieces.append(token[:cut])
            token = token[cut:]
        if token:
            words, size = [token], overhead + cost(token)
    if words:
        pieces.append("".join(words))
    return pieces
