"""Operational records kept beside the knowledge base: for now, knowledge gaps.

A gap is a question the policies could not answer, kept (without who asked)
so the school can improve its policies. A message that looks like a
safeguarding concern is never stored here: concern text belongs only in the
encrypted concerns store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from knowledge.store import run_migrations


def _m001_gaps(db: sqlite_utils.Database) -> None:
    db.table("gaps").create({"id": int, "school": str, "question": str, "asked_at": str}, pk="id")
    db.table("gaps").create_index(["school", "asked_at"])


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("bot_m001_gaps", _m001_gaps),
)


@dataclass(frozen=True)
class Gap:
    school: str
    question: str
    asked_at: str


class Operations:
    """The bot's own tables, in the same SQLite file as the knowledge base."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        run_migrations(db, MIGRATIONS)

    def record_gap(self, school: str, question: str, looks_like_concern: bool) -> bool:
        """Note an unanswered question; returns False (storing nothing) for a concern."""
        if looks_like_concern or not question.strip():
            return False
        self.db.table("gaps").insert(
            {
                "school": school,
                "question": question.strip(),
                "asked_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        return True

    def gaps(self, school: str) -> list[Gap]:
        rows = self.db.execute(
            "SELECT school, question, asked_at FROM gaps WHERE school = ? ORDER BY id", [school]
        ).fetchall()
        return [Gap(*row) for row in rows]
