"""A whole list, not one item of it, for "what kinds of ..." questions.

Segmentation stores each list item with its lead-in, because "staff must not:
accept friend requests from pupils" is the answer to most questions about that
list. But "what kind of comments get taken down?" asks for the list itself:
quoting one item of it would hide the rest. When a question asks for kinds,
types or examples and the best clause is one item of a list, the answer quotes
the lead-in and every item under it, provided the whole list is still short
enough to read in chat. The words are the policy's own; only bullets are added.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from knowledge.segment import MAX_CLAUSE_WORDS

_ASKS_FOR_A_LIST_RE = re.compile(
    r"\b(?:what|which)\s+(?:kinds?|sorts?|types?|things|steps|examples)\b"
    r"|\bexamples? of\b|\bkinds? of things\b|\blist (?:of|the)\b",
    re.IGNORECASE,
)


def asks_for_a_list(question: str) -> bool:
    """True for "what kind of comments...", "which types of...", "examples of..."."""
    return _ASKS_FOR_A_LIST_RE.search(question) is not None


@dataclass(frozen=True)
class WholeList:
    text: str
    clause_ids: frozenset[int]


def whole_list(db: sqlite3.Connection, clause_id: int) -> WholeList | None:
    """The list this clause is one item of, or None when it is not a list item,
    its list has one item, or the whole list is too long to quote."""
    row = db.execute(
        "SELECT policy_id, ord, section, lead_in, text FROM clauses WHERE id = ?", [clause_id]
    ).fetchone()
    if row is None or not row[3] or not str(row[4]).startswith(row[3]):
        return None
    policy_id, ord_, section, lead_in, _ = row
    siblings = db.execute(
        "SELECT ord, text, lead_in, section, id FROM clauses WHERE policy_id = ? ORDER BY ord",
        [policy_id],
    ).fetchall()
    position = next(i for i, s in enumerate(siblings) if s[0] == ord_)
    first = last = position
    while first > 0 and _same_list(siblings[first - 1], lead_in, section):
        first -= 1
    while last + 1 < len(siblings) and _same_list(siblings[last + 1], lead_in, section):
        last += 1
    if first == last:
        return None
    chosen = siblings[first : last + 1]
    items = [str(s[1])[len(lead_in) :].strip() for s in chosen]
    text = "\n".join([lead_in, *(f"• {item}" for item in items)])
    if len(text.split()) > MAX_CLAUSE_WORDS:
        return None
    return WholeList(text, frozenset(int(s[4]) for s in chosen))


def _same_list(row: tuple[object, ...], lead_in: str, section: str) -> bool:
    _, text, row_lead_in, row_section, _ = row
    return row_lead_in == lead_in and row_section == section and str(text).startswith(lead_in)
