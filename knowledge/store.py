"""The knowledge base on disk: schools, policies, clauses and their FTS5 index.

One SQLite file holds many schools. Every clause row carries its school's
private search tag so a full-text query can be restricted to one school inside
FTS5 itself, which keeps schools apart and keeps queries fast however many
schools share the file. Re-ingesting a policy swaps its clauses in one
transaction and moves the old ones to ``clause_history`` for diffing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from knowledge.errors import GuidebotError, UnknownSchoolError
from knowledge.metadata import PolicyMetadata
from knowledge.segment import Clause, item_text
from knowledge.text import slugify, stems

SECTION_SEPARATOR = " › "
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"


# --- migrations -----------------------------------------------------------------


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.table("schools").create({"slug": str, "name": str, "tag": str, "created_at": str}, pk="slug")
    db.table("schools").create_index(["tag"], unique=True)
    db.table("policies").create(
        {
            "id": int,
            "school": str,
            "key": str,
            "title": str,
            "source_name": str,
            "sha256": str,
            "version": int,
            "ingested_at": str,
            "adopted": str,
            "last_reviewed": str,
            "next_review": str,
            "contact": str,
            "owner": str,
            "versions_json": str,
        },
        pk="id",
        foreign_keys=[("school", "schools", "slug")],
        not_null={"school", "key", "title", "sha256", "version"},
    )
    db.table("policies").create_index(["school", "key"], unique=True)
    db.table("clauses").create(
        {
            "id": int,
            "policy_id": int,
            "school": str,
            "school_tag": str,
            "ord": int,
            "section": str,
            "number": str,
            "text": str,
            "lead_in": str,
            "words": int,
            "terms": str,  # stems of the clause's own words, in order, for reranking
            "context": str,  # stems of its lead-in and the clause before it in its section
        },
        pk="id",
        foreign_keys=[("policy_id", "policies", "id"), ("school", "schools", "slug")],
    )
    db.table("clauses").create_index(["policy_id", "ord"])
    db.table("clauses").enable_fts(
        ["text", "section", "school_tag"], create_triggers=True, tokenize=FTS_TOKENIZER
    )
    db.execute("CREATE VIRTUAL TABLE clauses_fts_vocab USING fts5vocab(clauses_fts, 'row')")
    db.table("clause_history").create(
        {
            "id": int,
            "policy_id": int,
            "version": int,
            "ord": int,
            "section": str,
            "number": str,
            "text": str,
            "archived_at": str,
        },
        pk="id",
        foreign_keys=[("policy_id", "policies", "id")],
    )
    db.table("clause_history").create_index(["policy_id", "version"])


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("m001_initial", _m001_initial),
)
"""Named, ordered, applied once each. Append; never edit or reorder."""


def run_migrations(
    db: sqlite_utils.Database,
    migrations: Sequence[tuple[str, Callable[[sqlite_utils.Database], None]]],
) -> list[str]:
    """Apply, in order, every named migration not yet recorded; return those applied.
    Each runs in its own transaction together with the record that it ran."""
    if "_migrations" not in db.table_names():
        db.table("_migrations").create({"name": str, "applied_at": str}, pk="name")
    done = {row["name"] for row in db.table("_migrations").rows}
    applied: list[str] = []
    for name, step in migrations:
        if name in done:
            continue
        with db.atomic():
            step(db)
            db.table("_migrations").insert({"name": name, "applied_at": _now()})
        applied.append(name)
    return applied


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Bring the knowledge-base tables up to date."""
    return run_migrations(db, MIGRATIONS)


# --- records ----------------------------------------------------------------------


@dataclass(frozen=True)
class School:
    slug: str
    name: str
    tag: str


@dataclass(frozen=True)
class PolicyRecord:
    id: int
    school: str
    key: str
    title: str
    source_name: str
    version: int
    ingested_at: str
    adopted: date | None
    last_reviewed: date | None
    next_review: date | None
    contact: str | None
    owner: str | None


@dataclass(frozen=True)
class IngestOutcome:
    policy: PolicyRecord
    clauses: int
    replaced_version: int | None
    unchanged: bool


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


FRAGMENT_WORDS = 8


def _framed_by(previous: Clause, clause: Clause) -> bool:
    """The clause before frames this one, unless both are items under the same
    lead-in: siblings in a list are separate rules ("must not: complain..." says
    nothing about "must not: post images...")."""
    return not (clause.lead_in and previous.lead_in == clause.lead_in)


def _body_and_context(clause: Clause, previous: Clause | None) -> tuple[str, str]:
    """Split a clause into its own words and the words that frame it: its
    lead-in, and the clause before it in the same section ("This account..."
    is about whatever the sentence before named)."""
    body = clause.text
    context: list[str] = []
    item = item_text(clause.text, clause.lead_in)
    # The lead-in frames a full rule, but carries the meaning of a fragment
    # ("...must present a business case covering: The aim of the account")
    # and of a short list shown whole.
    if item is not None and "\n• " not in body and len(item.split()) > FRAGMENT_WORDS:
        body = item
        context.append(str(clause.lead_in))
    if previous is not None and previous.section == clause.section and _framed_by(previous, clause):
        previous_item = item_text(previous.text, previous.lead_in)
        context.append(previous.text if previous_item is None else previous_item)
    return body, " ".join(context)


class KnowledgeBase:
    """A handle on one knowledge-base file. Cheap to open; migrates on open."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path not in (None, ":memory:") else None
        try:
            if self.path is None:
                self.db = sqlite_utils.Database(memory=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite_utils.Database(self.path)
                self.db.enable_wal()
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA busy_timeout = 5000")
            migrate(self.db)
        except sqlite3.DatabaseError as exc:
            raise GuidebotError(f"cannot open the knowledge base {path}: {exc}") from exc
        self.generation = 0
        """Bumped on every change so search caches know to refresh."""

    def close(self) -> None:
        self.db.close()

    # schools -----------------------------------------------------------------

    def ensure_school(self, slug: str, name: str | None = None) -> School:
        """The school with this short name, created if new. "St Mary's" and
        "st-mary-s" are the same school."""
        typed, slug = slug, slugify(slug)
        if not slug:
            raise GuidebotError(f"{typed!r} cannot be a school's short name: use letters or digits")
        row = self.db.execute(
            "SELECT slug, name, tag FROM schools WHERE slug = ?", [slug]
        ).fetchone()
        if row is not None:
            if name and name != row[1]:
                self.db.table("schools").update(slug, {"name": name})
                return School(slug, name, row[2])
            return School(*row)
        with self.db.atomic():
            count = self.db.execute("SELECT count(*) FROM schools").fetchone()[0]
            tag = f"sch{count + 1}x{hashlib.sha256(slug.encode()).hexdigest()[:6]}"
            display = name or slug.replace("-", " ").title()
            self.db.table("schools").insert(
                {"slug": slug, "name": display, "tag": tag, "created_at": _now()}
            )
        return School(slug, display, tag)

    def school(self, slug: str) -> School:
        typed, slug = slug, slugify(slug)
        row = self.db.execute(
            "SELECT slug, name, tag FROM schools WHERE slug = ?", [slug]
        ).fetchone()
        if row is None:
            raise UnknownSchoolError(typed)
        return School(*row)

    def schools(self) -> list[School]:
        rows = self.db.execute("SELECT slug, name, tag FROM schools ORDER BY slug").fetchall()
        return [School(*row) for row in rows]

    # policies ------------------------------------------------------------------

    def ingest(
        self,
        school: School,
        key: str,
        source_name: str,
        content_hash: str,
        metadata: PolicyMetadata,
        clauses: Sequence[Clause],
    ) -> IngestOutcome:
        """Store a policy's clauses, replacing the previous version atomically."""
        if not clauses:
            raise GuidebotError(f"{source_name}: no policy text was found in the document")
        with self.db.atomic():
            existing = self.db.execute(
                "SELECT id, version, sha256 FROM policies WHERE school = ? AND key = ?",
                [school.slug, key],
            ).fetchone()
            if existing is not None and existing[2] == content_hash:
                policy = self.policy(existing[0])
                count = self._clause_count(existing[0])
                return IngestOutcome(policy, count, None, unchanged=True)
            record = {
                "school": school.slug,
                "key": key,
                "title": metadata.title,
                "source_name": source_name,
                "sha256": content_hash,
                "ingested_at": _now(),
                "adopted": _iso(metadata.adopted),
                "last_reviewed": _iso(metadata.last_reviewed),
                "next_review": _iso(metadata.next_review),
                "contact": metadata.contact,
                "owner": metadata.owner,
                "versions_json": json.dumps(
                    [
                        {"version": v.version, "date": _iso(v.date), "description": v.description}
                        for v in metadata.versions
                    ]
                ),
            }
            replaced: int | None = None
            if existing is None:
                inserted = self.db.table("policies").insert({**record, "version": 1})
                policy_id = int(str(inserted.last_pk))
            else:
                policy_id, replaced = existing[0], existing[1]
                self._archive(policy_id, existing[1])
                self.db.table("policies").update(policy_id, {**record, "version": existing[1] + 1})
            self.db.table("clauses").insert_all(self._clause_rows(school, policy_id, clauses))
        self.generation += 1
        return IngestOutcome(self.policy(policy_id), len(clauses), replaced, unchanged=False)

    def _clause_rows(
        self, school: School, policy_id: int, clauses: Iterable[Clause]
    ) -> Iterable[dict[str, Any]]:
        previous: Clause | None = None
        for clause in clauses:
            section = SECTION_SEPARATOR.join(clause.section)
            body, context = _body_and_context(clause, previous)
            previous = clause
            yield {
                "policy_id": policy_id,
                "school": school.slug,
                "school_tag": school.tag,
                "ord": clause.ord,
                "section": section,
                "number": clause.number,
                "text": clause.text,
                "lead_in": clause.lead_in,
                "words": clause.words,
                "terms": " ".join(stems(body)),
                "context": " ".join(stems(context)),
            }

    def _archive(self, policy_id: int, version: int) -> None:
        self.db.execute(
            """
            INSERT INTO clause_history
                (policy_id, version, ord, section, number, text, archived_at)
            SELECT policy_id, ?, ord, section, number, text, ?
            FROM clauses WHERE policy_id = ?
            """,
            [version, _now(), policy_id],
        )
        self.db.execute("DELETE FROM clauses WHERE policy_id = ?", [policy_id])

    def _clause_count(self, policy_id: int) -> int:
        row = self.db.execute("SELECT count(*) FROM clauses WHERE policy_id = ?", [policy_id])
        return int(row.fetchone()[0])

    def policy(self, policy_id: int) -> PolicyRecord:
        row = self.db.table("policies").get(policy_id)
        return PolicyRecord(
            id=row["id"],
            school=row["school"],
            key=row["key"],
            title=row["title"],
            source_name=row["source_name"],
            version=row["version"],
            ingested_at=row["ingested_at"],
            adopted=_date(row["adopted"]),
            last_reviewed=_date(row["last_reviewed"]),
            next_review=_date(row["next_review"]),
            contact=row["contact"],
            owner=row["owner"],
        )

    def policies(self, school_slug: str) -> list[PolicyRecord]:
        slug = self.school(school_slug).slug
        ids = self.db.execute(
            "SELECT id FROM policies WHERE school = ? ORDER BY title", [slug]
        ).fetchall()
        return [self.policy(row[0]) for row in ids]

    def clauses(self, policy_id: int) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT id, ord, section, number, text FROM clauses"
                " WHERE policy_id = ? ORDER BY ord",
                [policy_id],
            )
        )

    def previous_clauses(self, policy_id: int) -> list[dict[str, Any]]:
        """The clauses of the version before the current one, for diffing."""
        row = self.db.execute(
            "SELECT max(version) FROM clause_history WHERE policy_id = ?", [policy_id]
        ).fetchone()
        if row[0] is None:
            return []
        return list(
            self.db.query(
                "SELECT ord, section, number, text FROM clause_history"
                " WHERE policy_id = ? AND version = ? ORDER BY ord",
                [policy_id, row[0]],
            )
        )
