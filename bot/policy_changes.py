"""What changed in a re-ingested policy, clause by clause, and the broadcast
that tells staff.

Re-ingesting a policy keeps its previous clauses in ``clause_history``
(knowledge.store). ``compare`` pairs the old clauses with the new:

1. identical text (ignoring case and spacing) is unchanged, wherever it moved;
2. of the rest, an old and a new clause in the same section (its path, with
   section numbers ignored, so a renumbered section still matches) whose
   words are similar enough (rapidfuzz ``ratio`` >= ``SAME_SECTION``) are one
   clause *reworded*; across sections they must be closer still
   (``ELSEWHERE``). Best pairs first, each clause in at most one pair;
3. what is left is *added* (new) or *removed* (old).

``pending_offers`` lists the school's policies whose latest version changed
something and has no broadcast made from it yet (``Draft.from_policy_version``),
and ``draft_from`` writes that broadcast: "Updated: <title>", the changes in
document order (at most ``MAX_ITEMS``, short quotes, "and N more changes"),
the policy linked, acknowledgement required.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import sqlite_utils
from rapidfuzz import fuzz

from bot import wording
from bot.broadcasts import MAX_MESSAGE, Draft
from knowledge.store import SECTION_SEPARATOR

SAME_SECTION = 60.0
"""Similarity (0-100) above which two clauses of one section are one clause reworded."""
ELSEWHERE = 85.0
"""The same, for clauses in different sections."""
MAX_ITEMS = 10
QUOTE_CHARS = 110
"""Longer clauses are cut to this many characters in a broadcast."""

ChangeKind = Literal["added", "removed", "reworded"]


@dataclass(frozen=True)
class ClauseChange:
    kind: ChangeKind
    section: str
    """The section path (of the new clause, or of the removed one)."""
    number: str | None
    old: str | None
    """The clause before (None when added)."""
    new: str | None
    """The clause now (None when removed)."""
    similarity: float = 0.0
    """For a rewording: how alike the two versions are (0-100)."""


@dataclass(frozen=True)
class PolicyChanges:
    school: str
    policy: str
    """The policy's key (knowledge.store ``policies.key``)."""
    title: str
    version: int
    previous_version: int
    changes: tuple[ClauseChange, ...]
    next_review: date | None = None

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    @property
    def added(self) -> int:
        return self.count("added")

    @property
    def removed(self) -> int:
        return self.count("removed")

    @property
    def reworded(self) -> int:
        return self.count("reworded")

    def summary(self) -> str:
        """One plain sentence: what changed between the two versions."""
        return wording.policy_changes_summary(
            self.title,
            self.previous_version,
            self.version,
            self.added,
            self.removed,
            self.reworded,
        )


# --- comparing ------------------------------------------------------------------------------


_NUMBERING = re.compile(r"^\s*(?:\d+[.)]?)+(?:\s+|$)")


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _without_lead_in(a: str, b: str) -> tuple[str, str]:
    """Two list items under one lead-in ("Staff must not: ...") differ only in
    the item: compare (and quote) the items alone."""
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    cut = a[:same].rfind(": ")
    return (a[cut + 2 :], b[cut + 2 :]) if cut > 0 else (a, b)


def _similarity(a: str, b: str) -> float:
    return float(fuzz.ratio(*_without_lead_in(a, b)))


def _section_key(section: str) -> str:
    parts = [_NUMBERING.sub("", p).strip().casefold() for p in section.split(SECTION_SEPARATOR)]
    return SECTION_SEPARATOR.join(parts)


def _text(clause: Mapping[str, Any]) -> str:
    return str(clause.get("text") or "")


def _section(clause: Mapping[str, Any]) -> str:
    return str(clause.get("section") or "")


def _number(clause: Mapping[str, Any]) -> str | None:
    number = clause.get("number")
    return str(number) if number else None


def compare(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> tuple[ClauseChange, ...]:
    """The changes from ``old`` to ``new`` clauses (each a mapping with ``text``,
    ``section`` and ``number``, in document order), in the new document's order."""
    old_left = list(range(len(old)))
    new_left = list(range(len(new)))
    paired: dict[int, int] = {}  # new index -> old index
    # 1. identical text is unchanged, wherever it is now
    by_text: dict[str, list[int]] = {}
    for i in old_left:
        by_text.setdefault(_norm(_text(old[i])), []).append(i)
    for j in new_left:
        same = by_text.get(_norm(_text(new[j])))
        if same:
            paired[j] = same.pop(0)
    unchanged_new = set(paired)
    unchanged_old = set(paired.values())
    old_left = [i for i in old_left if i not in unchanged_old]
    new_left = [j for j in new_left if j not in unchanged_new]
    # 2. similar clauses, best first, are one clause reworded
    candidates: list[tuple[float, int, int, int]] = []
    for i in old_left:
        old_text, old_key = _norm(_text(old[i])), _section_key(_section(old[i]))
        for j in new_left:
            score = _similarity(old_text, _norm(_text(new[j])))
            same_section = old_key == _section_key(_section(new[j]))
            if score >= (SAME_SECTION if same_section else ELSEWHERE):
                candidates.append((score + (1.0 if same_section else 0.0), -abs(i - j), i, j))
    candidates.sort(reverse=True)
    reworded: dict[int, tuple[int, float]] = {}
    used_old: set[int] = set()
    for score, _, i, j in candidates:
        if i in used_old or j in reworded:
            continue
        used_old.add(i)
        reworded[j] = (i, min(100.0, score))
        paired[j] = i
    # 3. the rest: added and removed, placed in document order
    placed: list[tuple[float, ClauseChange]] = []
    for j in new_left:
        clause = new[j]
        if j in reworded:
            i, score = reworded[j]
            change = ClauseChange(
                "reworded", _section(clause), _number(clause), _text(old[i]), _text(clause), score
            )
        else:
            change = ClauseChange("added", _section(clause), _number(clause), None, _text(clause))
        placed.append((float(j), change))
    new_of_old = {i: j for j, i in paired.items()}
    for i in old_left:
        if i in used_old:
            continue
        before = [new_of_old[k] for k in range(i) if k in new_of_old]
        position = (max(before) if before else -1) + 0.5
        clause = old[i]
        placed.append(
            (
                position,
                ClauseChange("removed", _section(clause), _number(clause), _text(clause), None),
            )
        )
    placed.sort(key=lambda item: item[0])
    return tuple(change for _, change in placed)


# --- reading the knowledge base ---------------------------------------------------------------


def _database(kb_or_db: Any) -> sqlite_utils.Database:
    db = getattr(kb_or_db, "db", kb_or_db)
    if not isinstance(db, sqlite_utils.Database):
        raise TypeError("expected a KnowledgeBase or a sqlite_utils.Database")
    return db


def _changes(db: sqlite_utils.Database, policy: Mapping[str, Any]) -> PolicyChanges | None:
    row = db.execute(
        "SELECT max(version) FROM clause_history WHERE policy_id = ?", [policy["id"]]
    ).fetchone()
    if row is None or row[0] is None:
        return None
    previous = int(row[0])
    old = list(
        db.query(
            "SELECT ord, section, number, text FROM clause_history"
            " WHERE policy_id = ? AND version = ? ORDER BY ord",
            [policy["id"], previous],
        )
    )
    new = list(
        db.query(
            "SELECT ord, section, number, text FROM clauses WHERE policy_id = ? ORDER BY ord",
            [policy["id"]],
        )
    )
    review = policy.get("next_review")
    return PolicyChanges(
        school=str(policy["school"]),
        policy=str(policy["key"]),
        title=str(policy["title"]),
        version=int(policy["version"]),
        previous_version=previous,
        changes=compare(old, new),
        next_review=date.fromisoformat(review) if review else None,
    )


def _policies(
    db: sqlite_utils.Database, school: str, key: str | None = None
) -> list[dict[str, Any]]:
    if "policies" not in db.table_names():
        return []
    where = "school = ?" + (" AND key = ?" if key is not None else "")
    params: list[Any] = [school] if key is None else [school, key]
    return list(
        db.query(
            "SELECT id, school, key, title, version, next_review FROM policies"
            f" WHERE {where} AND version > 1 ORDER BY title",
            params,
        )
    )


def policy_changes(kb_or_db: Any, school: str, key: str) -> PolicyChanges | None:
    """What changed in the latest version of one policy; None when it has only
    ever had one version (or there is no such policy)."""
    db = _database(kb_or_db)
    found = _policies(db, school, key)
    return _changes(db, found[0]) if found else None


def changed_policies(kb_or_db: Any, school: str) -> list[PolicyChanges]:
    """Every policy of the school whose latest version changed a clause."""
    db = _database(kb_or_db)
    found = [_changes(db, p) for p in _policies(db, school)]
    return [c for c in found if c is not None and c.changes]


def offered(db: sqlite_utils.Database, school: str, key: str, version: int) -> bool:
    """Whether a broadcast (not cancelled) was made from this version's offer."""
    if "broadcasts" not in db.table_names():
        return False
    row = db.execute(
        "SELECT 1 FROM broadcasts WHERE school = ? AND from_policy = ? AND from_version = ?"
        " AND state != 'cancelled' LIMIT 1",
        [school, key, version],
    ).fetchone()
    return row is not None


def pending_offers(kb_or_db: Any, school: str, key: str | None = None) -> list[PolicyChanges]:
    """Changed policies (or only the one called ``key``) with no broadcast made
    from their latest version yet. Offers already taken are skipped before their
    clauses are compared (App Home asks for this on every visit)."""
    db = _database(kb_or_db)
    waiting = [
        p
        for p in _policies(db, school, key)
        if not offered(db, school, str(p["key"]), int(p["version"]))
    ]
    found = [_changes(db, p) for p in waiting]
    return [c for c in found if c is not None and c.changes]


# --- the ready-made broadcast ----------------------------------------------------------------


def _clip(text: str, limit: int = QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


def _where(change: ClauseChange) -> str:
    if not change.section:
        return ""
    section = change.section.split(SECTION_SEPARATOR)[-1].strip()
    return f" in \u201c{_clip(section, 60)}\u201d"


def _line(change: ClauseChange) -> str:
    where = _where(change)
    if change.kind == "added":
        return wording.policy_change_added(where, _clip(change.new or ""))
    if change.kind == "removed":
        return wording.policy_change_removed(where, _clip(change.old or ""))
    old, new = _without_lead_in(
        " ".join((change.old or "").split()), " ".join((change.new or "").split())
    )
    short = len(" ".join(old.split())) <= QUOTE_CHARS and len(" ".join(new.split())) <= QUOTE_CHARS
    return wording.policy_change_reworded(where, _clip(old) if short else "", _clip(new))


def draft_from(changes: PolicyChanges) -> Draft:
    """The broadcast a leader can send as it is (or edit first)."""
    items = [_line(c) for c in changes.changes]
    shown = min(len(items), MAX_ITEMS)
    while True:
        lines = [wording.policy_update_intro(changes.title, changes.version), *items[:shown]]
        if len(items) > shown:
            lines.append(wording.policy_change_more(len(items) - shown))
        lines += ["", wording.policy_update_closing()]
        message = "\n".join(lines)
        if len(message) <= MAX_MESSAGE or shown == 0:
            break
        shown -= 1
    return Draft(
        title=_clip(wording.policy_update_title(changes.title), 150),
        message=message[:MAX_MESSAGE],
        policy=changes.policy,
        requires_ack=True,
        from_policy_version=changes.version,
    )
