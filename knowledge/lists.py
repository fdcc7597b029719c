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

from knowledge.segment import MAX_CLAUSE_WORDS, item_text

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
    its list has one item, or the whole list is too long to quote.

    A list is the run of clauses with consecutive positions in one policy that
    share this clause's section and lead-in."""
    row = db.execute(
        "SELECT policy_id, ord, section, lead_in, text FROM clauses WHERE id = ?", [clause_id]
    ).fetchone()
    if row is None:
        return None
    policy_id, ord_, section, lead_in, text = row
    if item_text(text, lead_in) is None:
        return None
    alike = db.execute(
        "SELECT ord, id, text FROM clauses"
        " WHERE policy_id = ? AND section = ? AND lead_in = ? ORDER BY ord",
        [policy_id, section, lead_in],
    ).fetchall()
    items = [(o, i, item_text(t, lead_in)) for o, i, t in alike]

    def continues(here: int, there: int) -> bool:
        """The clause at ``there`` is the next or previous item of the same list."""
        return abs(items[there][0] - items[here][0]) == 1 and items[there][2] is not None

    first = last = next(n for n, (o, _, _) in enumerate(items) if o == ord_)
    while first > 0 and continues(first, first - 1):
        first -= 1
    while last + 1 < len(items) and continues(last, last + 1):
        last += 1
    if first == last:
        return None
    chosen = items[first : last + 1]
    whole = "\n".join([lead_in, *(f"• {str(item).strip()}" for _, _, item in chosen)])
    if len(whole.split()) > MAX_CLAUSE_WORDS:
        return None
    return WholeList(whole, frozenset(int(i) for _, i, _ in chosen))
