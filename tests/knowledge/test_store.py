"""The knowledge base on disk: migrations, versions, atomic ingest, school isolation.

Every test uses a real SQLite file under tmp_path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlite_utils

from knowledge import store
from knowledge.errors import GuidebotError, UnknownSchoolError
from knowledge.ingest import ingest_files, parse_policy
from knowledge.sample_data import sample_files
from knowledge.search import Searcher
from knowledge.store import MIGRATIONS, KnowledgeBase, migrate
from tests.conftest import snapshot

POLICY_V1 = """Social Media Policy

Next review: September 2026

1. Friend requests

Staff must not accept friend requests from pupils or former pupils under the age of 18.

Staff should decline friend requests from parents on personal accounts.

2. Photographs

Photographs of pupils may only be posted on the school's official channels.
"""

POLICY_V2 = """Social Media Policy

Next review: September 2027

1. Friend requests

Staff must not accept or send friend requests to pupils, whatever their age.

2. Photographs

Photographs of pupils may only be posted on the school's official channels.

3. Personal devices

Staff must not store images of pupils on personal phones or tablets.
"""

POLICY_V3 = """Social Media Policy

1. Messaging

Staff must only message parents through the school's approved messaging app.
"""

ONLY_A_TITLE = "Social Media Policy\n"
"""Reads as a document, but holds no clause: it fails inside the store step."""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    handle = KnowledgeBase(tmp_path / "kb.db")
    yield handle
    handle.close()


def clause_texts(kb: KnowledgeBase, policy_id: int) -> list[str]:
    return [row["text"] for row in kb.clauses(policy_id)]


def fts_hits(kb: KnowledgeBase, school: str, word: str) -> list[str]:
    """Clause texts of one school whose FTS entry matches a word."""
    tag = kb.school(school).tag
    return [
        row[0]
        for row in kb.db.execute(
            "SELECT c.text FROM clauses_fts JOIN clauses c ON c.id = clauses_fts.rowid"
            " WHERE clauses_fts MATCH ?",
            [f'school_tag : {tag} AND "{word}"'],
        ).fetchall()
    ]


def assert_fts_in_sync(kb: KnowledgeBase) -> None:
    kb.db.execute("INSERT INTO clauses_fts(clauses_fts) VALUES ('integrity-check')")
    fts = kb.db.execute("SELECT count(*) FROM clauses_fts").fetchone()[0]
    assert fts == kb.db["clauses"].count


# --- migrations and schema --------------------------------------------------------------


def test_fresh_file_records_every_migration_once(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.db")
    rows = list(kb.db["_migrations"].rows)
    kb.close()
    assert [row["name"] for row in rows] == [name for name, _ in MIGRATIONS]
    assert all(row["applied_at"] for row in rows)


def test_reopening_does_not_reapply_migrations(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    first = KnowledgeBase(path)
    before = list(first.db["_migrations"].rows)
    first.close()

    second = KnowledgeBase(path)
    assert list(second.db["_migrations"].rows) == before
    assert migrate(second.db) == []
    second.close()


def test_appended_migration_is_applied_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kb.db"
    KnowledgeBase(path).close()

    def m999_add_notes(db: sqlite_utils.Database) -> None:
        db["notes"].create({"id": int, "body": str}, pk="id")

    monkeypatch.setattr(store, "MIGRATIONS", (*MIGRATIONS, ("m999_add_notes", m999_add_notes)))
    db = sqlite_utils.Database(path)
    assert migrate(db) == ["m999_add_notes"]
    assert migrate(db) == []
    assert "notes" in db.table_names()
    assert [row["name"] for row in db["_migrations"].rows][-1] == "m999_add_notes"
    db.close()


def test_failing_migration_is_rolled_back_and_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kb.db"
    KnowledgeBase(path).close()

    def m999_broken(db: sqlite_utils.Database) -> None:
        db["half_done"].create({"id": int}, pk="id")
        raise RuntimeError("boom")

    monkeypatch.setattr(store, "MIGRATIONS", (*MIGRATIONS, ("m999_broken", m999_broken)))
    db = sqlite_utils.Database(path)
    with pytest.raises(RuntimeError, match="boom"):
        migrate(db)
    assert "half_done" not in db.table_names()
    assert "m999_broken" not in {row["name"] for row in db["_migrations"].rows}
    db.close()


def test_schema_names(kb: KnowledgeBase) -> None:
    tables = set(kb.db.table_names())
    assert {
        "_migrations",
        "schools",
        "policies",
        "clauses",
        "clauses_fts",
        "clauses_fts_vocab",
        "clause_history",
    } <= tables
    assert {"slug", "name", "tag"} <= set(kb.db["schools"].columns_dict)
    assert {"school", "key", "title", "sha256", "version", "next_review", "contact"} <= set(
        kb.db["policies"].columns_dict
    )
    assert {"policy_id", "school", "school_tag", "ord", "section", "text"} <= set(
        kb.db["clauses"].columns_dict
    )
    assert {"policy_id", "version", "ord", "section", "text"} <= set(
        kb.db["clause_history"].columns_dict
    )
    fts_columns = [row[1] for row in kb.db.execute("PRAGMA table_info(clauses_fts)")]
    assert {"text", "school_tag"} <= set(fts_columns)
    assert kb.db["clauses"].detect_fts() == "clauses_fts"
    unique = {
        (table, tuple(index.columns))
        for table in ("schools", "policies")
        for index in kb.db[table].indexes
        if index.unique
    }
    assert ("schools", ("tag",)) in unique
    assert ("policies", ("school", "key")) in unique


# --- versions ---------------------------------------------------------------------------


def test_reingesting_a_changed_policy_bumps_version_and_keeps_history(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    path = tmp_path / "social-media.txt"
    first = ingest_files(kb, "st-marys", [write(path, POLICY_V1)])[0]
    v1_texts = clause_texts(kb, first.policy.id)
    assert v1_texts == [c.text for c in parse_policy(path).clauses]
    assert first.policy.version == 1 and not first.unchanged
    assert first.replaced_version is None
    assert kb.previous_clauses(first.policy.id) == []

    second = ingest_files(kb, "st-marys", [write(path, POLICY_V2)])[0]
    assert second.policy.id == first.policy.id
    assert second.policy.version == 2
    assert second.replaced_version == 1
    assert not second.unchanged
    v2_texts = clause_texts(kb, second.policy.id)
    assert v2_texts == [c.text for c in parse_policy(path).clauses]
    assert second.clauses == len(v2_texts)
    assert second.policy.next_review is not None and second.policy.next_review.year == 2027
    # The old clauses are gone from the live table and from search...
    assert kb.db["clauses"].count == len(v2_texts)
    assert fts_hits(kb, "st-marys", "decline") == []
    assert fts_hits(kb, "st-marys", "tablets") != []
    assert_fts_in_sync(kb)
    # ...and kept, in order, for diffing.
    assert [row["text"] for row in kb.previous_clauses(second.policy.id)] == v1_texts

    third = ingest_files(kb, "st-marys", [write(path, POLICY_V3)])[0]
    assert third.policy.version == 3 and third.replaced_version == 2
    assert [row["text"] for row in kb.previous_clauses(third.policy.id)] == v2_texts
    versions = kb.db.execute(
        "SELECT version, count(*) FROM clause_history WHERE policy_id = ? GROUP BY version",
        [third.policy.id],
    ).fetchall()
    assert dict(versions) == {1: len(v1_texts), 2: len(v2_texts)}


def test_reingesting_identical_bytes_is_unchanged(kb: KnowledgeBase, tmp_path: Path) -> None:
    path = write(tmp_path / "social-media.txt", POLICY_V1)
    first = ingest_files(kb, "st-marys", [path])[0]
    before = snapshot(kb)
    again = ingest_files(kb, "st-marys", [path])[0]
    assert again.unchanged
    assert again.policy.version == 1
    assert again.replaced_version is None
    assert again.clauses == first.clauses
    assert kb.previous_clauses(first.policy.id) == []
    assert snapshot(kb) == before


def test_same_policy_name_in_two_schools_is_two_policies(kb: KnowledgeBase, tmp_path: Path) -> None:
    path = write(tmp_path / "social-media.txt", POLICY_V1)
    a = ingest_files(kb, "school-a", [path])[0]
    b = ingest_files(kb, "school-b", [path])[0]
    assert a.policy.id != b.policy.id
    assert a.policy.version == b.policy.version == 1
    assert not b.unchanged


# --- atomic ingest ----------------------------------------------------------------------


@pytest.fixture
def loaded(kb: KnowledgeBase, tmp_path: Path) -> tuple[KnowledgeBase, Path]:
    """A knowledge base holding version 1 of a policy, and a folder of inputs."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    ingest_files(kb, "st-marys", [write(inputs / "social-media.txt", POLICY_V1)])
    return kb, inputs


def _corrupt_docx(folder: Path) -> Path:
    path = folder / "acceptable-use.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    return path


def _directory(folder: Path) -> Path:
    path = folder / "folder.txt"
    path.mkdir()
    return path


def _missing(folder: Path) -> Path:
    return folder / "missing.txt"


def _no_clauses(folder: Path) -> Path:
    return write(folder / "title-only.txt", ONLY_A_TITLE)


@pytest.mark.parametrize(
    "make_bad",
    [_corrupt_docx, _directory, _missing, _no_clauses],
    ids=["corrupt-docx", "directory", "missing", "no-clauses-fails-while-storing"],
)
@pytest.mark.parametrize("school", ["st-marys", "brand-new-school"])
def test_a_bad_file_leaves_the_knowledge_base_exactly_as_before(
    loaded: tuple[KnowledgeBase, Path], make_bad: Callable[[Path], Path], school: str
) -> None:
    kb, inputs = loaded
    # The good file is a new version of the stored policy, listed first, so a
    # half-finished ingest would show as a version bump or new clauses.
    good = write(inputs / "social-media.txt", POLICY_V2)
    other = write(inputs / "photography.txt", POLICY_V3)
    bad = make_bad(inputs)
    before = snapshot(kb)
    with pytest.raises(GuidebotError) as caught:
        ingest_files(kb, school, [good, other, bad])
    assert bad.name in str(caught.value)
    assert snapshot(kb) == before
    # The handle is still usable: the same good files go in on their own.
    outcomes = ingest_files(kb, school, [good, other])
    assert [o.policy.source_name for o in outcomes] == [good.name, other.name]
    assert_fts_in_sync(kb)


def test_searcher_forgets_a_rolled_back_ingest(
    loaded: tuple[KnowledgeBase, Path],
) -> None:
    kb, inputs = loaded
    searcher = Searcher(kb)
    assert searcher.search("st-marys", "friend requests from pupils").matches
    good = write(inputs / "devices.txt", POLICY_V2)
    with pytest.raises(GuidebotError):
        ingest_files(kb, "st-marys", [good, _no_clauses(inputs)])
    result = searcher.search("st-marys", "personal phones tablets images")
    assert all("tablets" not in match.text for match in result.matches)


# --- schools ----------------------------------------------------------------------------


def test_unknown_school_raises(kb: KnowledgeBase) -> None:
    with pytest.raises(UnknownSchoolError) as caught:
        kb.school("nowhere-academy")
    assert isinstance(caught.value, GuidebotError)
    assert "nowhere-academy" in str(caught.value)
    with pytest.raises(UnknownSchoolError):
        kb.policies("nowhere-academy")
    with pytest.raises(UnknownSchoolError):
        Searcher(kb).search("nowhere-academy", "friend requests")


def test_school_tags_are_unique_and_not_the_slug(kb: KnowledgeBase) -> None:
    schools = [kb.ensure_school(f"school-{n}") for n in range(12)]
    tags = [s.tag for s in schools]
    assert len(set(tags)) == len(tags)
    assert all(s.tag.isalnum() and s.slug not in s.tag for s in schools)
    assert kb.ensure_school("school-3").tag == schools[3].tag


SHARED_POLICY = sample_files()["st-annes"].read_text(encoding="utf-8")

ALPHA_ONLY = """Trampoline Policy

1. Zanzibar

Staff supervising the zanzibar trampoline must hold a current coaching badge.
"""

ISOLATION_QUESTIONS = [
    "can I accept a friend request from a past pupil?",
    "can I post photos of pupils on my own instagram?",
    "who is the designated safeguarding lead?",
    "can parents take videos at the nativity?",
    "what happens if I breach this policy?",
    "can I message parents on whatsapp?",
    "is cyberbullying covered?",
    "can pupils use social media?",
    "what is the school's official channel?",
    "can I complain about the school online?",
    "who reviews this policy?",
    "can I use school equipment for personal social media?",
    "data protection and personal information",
    "online safety training for staff",
    "reporting inappropriate content",
    "can staff share information about colleagues?",
    "what about images of children other than their own?",
    "when is the policy reviewed?",
    "governing body monitoring",
    "respectful communication with members of staff",
    "zanzibar trampoline coaching badge",
    "friend",
    "policy",
    "staff must not",
]


@pytest.fixture(scope="module")
def two_schools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """Two schools sharing a word-for-word policy; only alpha has a trampoline policy.
    Read-only: shared by the tests of this module."""
    tmp_path = tmp_path_factory.mktemp("two-schools")
    kb = KnowledgeBase(tmp_path / "two.db")
    shared = write(tmp_path / "social-media.txt", SHARED_POLICY)
    ingest_files(kb, "alpha", [shared, write(tmp_path / "trampoline.txt", ALPHA_ONLY)])
    ingest_files(kb, "beta", [shared])
    yield kb
    kb.close()


def _schools_of(kb: KnowledgeBase, clause_ids: list[int]) -> set[str]:
    if not clause_ids:
        return set()
    marks = ",".join("?" * len(clause_ids))
    rows = kb.db.execute(
        f"SELECT DISTINCT p.school FROM clauses c JOIN policies p ON p.id = c.policy_id"
        f" WHERE c.id IN ({marks})",
        clause_ids,
    ).fetchall()
    return {row[0] for row in rows}


def test_searching_one_school_never_returns_another_schools_clause(
    two_schools: KnowledgeBase,
) -> None:
    kb = two_schools
    searcher = Searcher(kb)
    found_any = {"alpha": 0, "beta": 0}
    for question in ISOLATION_QUESTIONS:
        for school in ("alpha", "beta"):
            result = searcher.search(school, question, top_k=20)
            ids = [m.clause_id for m in result.matches]
            assert _schools_of(kb, ids) <= {school}, (school, question)
            found_any[school] += bool(ids)
    # The questions really do find things in both schools, so the check means something.
    assert found_any["alpha"] >= len(ISOLATION_QUESTIONS) - 2
    assert found_any["beta"] >= len(ISOLATION_QUESTIONS) - 3


def test_alpha_only_clause_is_found_for_alpha_but_not_beta(two_schools: KnowledgeBase) -> None:
    searcher = Searcher(two_schools)
    alpha = searcher.search("alpha", "zanzibar trampoline coaching badge")
    assert alpha.best is not None and "zanzibar" in alpha.best.text
    beta = searcher.search("beta", "zanzibar trampoline coaching badge", top_k=20)
    assert all("zanzibar" not in m.text for m in beta.matches)


def test_school_tag_cannot_be_spoofed_from_a_question(two_schools: KnowledgeBase) -> None:
    kb = two_schools
    searcher = Searcher(kb)
    alpha_tag = kb.school("alpha").tag
    beta_tag = kb.school("beta").tag
    spoofs = [
        alpha_tag,
        f"zanzibar {alpha_tag}",
        f"school_tag : {alpha_tag}",
        f"school_tag:{alpha_tag} zanzibar trampoline",
        f"zanzibar OR school_tag : {alpha_tag}",
        f'zanzibar") OR (school_tag : {alpha_tag}',
        f'" OR school_tag : {alpha_tag} OR "zanzibar',
        f"{{school_tag}} : {alpha_tag} trampoline",
        f"NOT school_tag : {beta_tag} zanzibar",
        f"zanzibar NOT {beta_tag}",
        f"school_tag : {alpha_tag} * OR *",
        f"(school_tag : {alpha_tag}) AND (zanzibar)",
        f"- school_tag : {beta_tag} trampoline",
        f"zanzibar {alpha_tag.upper()}",
    ]
    for question in spoofs:
        result = searcher.search("beta", question, top_k=20)
        ids = [m.clause_id for m in result.matches]
        assert _schools_of(kb, ids) <= {"beta"}, question
        assert all("zanzibar" not in m.text.casefold() for m in result.matches), question


def test_the_other_schools_text_in_a_clause_does_not_leak_either(tmp_path: Path) -> None:
    """A policy that happens to contain another school's tag is still only its own."""
    kb = KnowledgeBase(tmp_path / "kb.db")
    ingest_files(kb, "alpha", [write(tmp_path / "a.txt", ALPHA_ONLY)])
    alpha_tag = kb.school("alpha").tag
    sneaky = f"Sneaky Policy\n\n1. Tags\n\nThe word {alpha_tag} appears in this clause.\n"
    ingest_files(kb, "beta", [write(tmp_path / "b.txt", sneaky)])
    searcher = Searcher(kb)
    result = searcher.search("alpha", f"{alpha_tag} zanzibar trampoline", top_k=20)
    assert _schools_of(kb, [m.clause_id for m in result.matches]) == {"alpha"}
    kb.close()


# --- opening files ----------------------------------------------------------------------


def test_a_file_that_is_not_sqlite_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "policies.db"
    path.write_text("Social Media Policy\nThis is a text file, not a database.\n")
    with pytest.raises(GuidebotError) as caught:
        KnowledgeBase(path)
    message = str(caught.value)
    assert "policies.db" in message
    assert "not a database" in message
    assert "\n" not in message
    assert path.read_text().startswith("Social Media Policy")


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    kb = KnowledgeBase(path)
    ingest_files(kb, "st-marys", [write(tmp_path / "social-media.txt", POLICY_V1)])
    before = snapshot(kb)
    kb.close()
    again = KnowledgeBase(path)
    assert snapshot(again) == before
    assert [p.title for p in again.policies("st-marys")] == ["Social Media Policy"]
    again.close()
