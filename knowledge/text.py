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
_SLUG_RE = re.compile(r"[^a-z0-9]+")
_NEGATION_RE = re.compile(
    r"\b(can|won|don|isn|aren|wasn|weren|doesn|didn|hasn|haven|hadn|"
    r"shouldn|wouldn|couldn|mustn|shan|ain)['’]?t\b"
)
_NEGATION_BASE = {"can": "can", "won": "will", "shan": "shall", "ain": "is"}
_STEMMER = snowballstemmer.stemmer("porter")


def fold(text: str) -> str:
    """Lower-case and strip accents, as FTS5's unicode61 tokenizer does."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def expand_negations(text: str) -> str:
    """ "isn't" -> "is not", so "isn't being fed" meets a cue written "not being fed"."""

    def spell_out(match: re.Match[str]) -> str:
        base = match.group(1)
        return f"{_NEGATION_BASE.get(base, base[:-1])} not"

    return _NEGATION_RE.sub(spell_out, text)


def slugify(text: str) -> str:
    """A school's or policy's short name: "St Mary's" -> "st-mary-s"."""
    return _SLUG_RE.sub("-", fold(text)).strip("-")


def tokens(text: str) -> list[str]:
    """Words as FTS5 sees them: runs of letters and digits."""
    return _TOKEN_RE.findall(fold(text))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def stems(text: str) -> list[str]:
    """Stems in order, for phrase matching."""
    return [stem(token) for token in tokens(text)]
