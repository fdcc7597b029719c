"""Tokens and stems shared by indexing and search, so both sides agree.

The Porter stemmer here is the same algorithm as SQLite FTS5's ``porter``
tokenizer, so a stem computed in Python matches a term in the FTS index.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

_TOKEN_RE = re.compile(r"[a-z0-9]+")
_STEMMER = snowballstemmer.stemmer("porter")


def fold(text: str) -> str:
    """Lower-case and strip accents, as FTS5's unicode61 tokenizer does."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Words as FTS5 sees them: runs of letters and digits."""
    return _TOKEN_RE.findall(fold(text))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def terms_of(text: str) -> set[str]:
    """The set of stems in a text."""
    return {stem(token) for token in tokens(text)}


def stems(text: str) -> list[str]:
    """Stems in order, for phrase matching."""
    return [stem(token) for token in tokens(text)]
