"""Cutting text into pieces that fit a platform's limits, shared by the Slack
and Teams converters (a Block Kit section, an Adaptive Card TextBlock)."""

from __future__ import annotations

import re
from collections.abc import Callable

_TOKENS = re.compile(r"\S+|\s+")


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
