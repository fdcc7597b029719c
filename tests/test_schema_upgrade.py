"""A database made by the first release (0.1.0) is brought forward and still works.

tests/fixtures/schema_0_1_0.sql is a dump of a database built by guidebot
0.1.0's own code (commit f124df7; see tests/fixtures/build_schema_0_1_0.py):
St Anne's policies, two questions with feedback, a delivery id, a remembered
conversation, a closed and exported concern, an open one, and queued alerts,
all sealed with the tests' key. Here it is opened the way ``guidebot serve``
opens a database today, and everything in it must still be there and usable.
"""

from __future__ import annotations

import ast
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.server import KB_KEY, build_app
from bot.concerns import Concerns, Person
from bot.config import SafeguardingSettings, Settings
from bot.crypto import SecretBox
from bot.outbox import Outbox
from bot.schema import SCHEMA_MODULES, all_migrations, migrate_all, pending
from bot.storage import Operations
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase
from tests.fixtures import KEY_0_1_0, SCHEMA_0_1_0, load_dump

ROOT = Path(__file__).resolve().parents[1]
RELEASED_0_1_0 = {
    "m001_initial",
    "bot_m001_conversations",
    "bot_m002_conversation_references",
    "outbox_m001_table",
    "concerns_m001_concerns",
}
DSL = Person("slack", "U0DSL")


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    return load_dump(tmp_path / "guidebot.db")


def applied(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute("SELECT name FROM _migrations")}
    finally:
        connection.close()


def test_the_fixture_is_the_first_release(old_db: Path) -> None:
    assert applied(old_db) == RELEASED_0_1_0
    assert "CREATE TABLE" in SCHEMA_0_1_0.read_text(encoding="utf-8")


async def test_starting_the_server_brings_every_table_forward(old_db: Path) -> None:
    app = build_app(Settings(database=old_db), old_db, secret_box=SecretBox(KEY_0_1_0))
    kb = app[KB_KEY]
    try:
        assert pending(applied(old_db)) == []
        assert applied(old_db) == {name for name, _step in all_migrations()}
        assert kb.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert kb.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        kb.close()


def test_the_old_data_is_intact_and_usable(old_db: Path) -> None:
    kb = KnowledgeBase(old_db)
    try:
        migrate_all(kb.db)
        # The knowledge base still answers, through its FTS index.
        result = Searcher(kb).search("st-annes", "can I accept a friend request from an ex-pupil?")
        assert result.answered
        assert "friend" in result.matches[0].text.lower()

        # The questions and their feedback are still counted.
        moment = datetime(2025, 3, 1, tzinfo=UTC)
        operations = Operations(kb.db, clock=lambda: moment)
        assert [q.text for q in operations.gaps("st-annes")] == ["where do I park on sports day?"]
        assert [q.text for q in operations.recent_questions("slack", "U0STAFF")] == [
            "can I accept a friend request from an ex-pupil?"
        ]
        assert operations.feedback(1) is True
        assert operations.conversation("slack", "user", "U0STAFF") is not None

        # The sealed concerns open with the installation's key, audit trail and all.
        box = SecretBox(KEY_0_1_0)
        outbox = Outbox(kb.db, box, clock=lambda: moment)
        concerns = Concerns(
            kb.db,
            box,
            lambda _school: SafeguardingSettings(dsl=(DSL.key,)),
            outbox,
            clock=lambda: moment,
        )
        closed = concerns.view("C-2025-0001", DSL)
        assert closed.state == "closed"
        assert closed.form.about_name == "J.B."
        assert [note.text for note in closed.notes] == ["Spoke to the class teacher (fixture note)"]
        assert concerns.view("C-2025-0002", DSL).state == "open"
        assert outbox.counts()["pending"] == 4
        [row] = outbox.claim_due(10, lease=60.0)[:1]
        assert row.message is not None
        # A new report continues the old numbering.
        assert kb.db.execute("SELECT last FROM concern_refs WHERE year = 2025").fetchone() == (2,)
    finally:
        kb.close()


def test_migrating_twice_changes_nothing(old_db: Path) -> None:
    kb = KnowledgeBase(old_db)
    try:
        migrate_all(kb.db)
        before = list(kb.db.conn.iterdump())
        assert migrate_all(kb.db) == []
        assert list(kb.db.conn.iterdump()) == before
    finally:
        kb.close()


def _modules_with_migrations() -> set[str]:
    """Every module under knowledge/ and bot/ that defines MIGRATIONS at top level."""
    found: set[str] = set()
    for package in ("knowledge", "bot"):
        for path in sorted((ROOT / package).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                targets = (
                    [node.target]
                    if isinstance(node, ast.AnnAssign)
                    else node.targets
                    if isinstance(node, ast.Assign)
                    else []
                )
                if any(isinstance(t, ast.Name) and t.id == "MIGRATIONS" for t in targets):
                    found.add(f"{package}.{path.stem}")
    return found


def test_every_module_with_tables_is_migrated_at_start() -> None:
    """A module with a MIGRATIONS tuple belongs in bot.schema.SCHEMA_MODULES (one line)."""
    assert _modules_with_migrations() <= set(SCHEMA_MODULES), (
        "add these to bot.schema.SCHEMA_MODULES: "
        f"{sorted(_modules_with_migrations() - set(SCHEMA_MODULES))}"
    )


def test_migration_names_are_unique() -> None:
    names = [name for name, _step in all_migrations()]
    assert len(names) == len(set(names))
