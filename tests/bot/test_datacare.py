"""Backups, restores and erasure requests, on real SQLite files.

The backup test writes from another thread the whole time: every copy must be
one consistent snapshot that opens and passes PRAGMA integrity_check.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot import datacare
from bot.cli import cli
from bot.datacare import (
    ERASED_TEXT,
    DataCareError,
    Erasure,
    Subject,
    backup,
    forget_user,
    register_eraser,
    restore,
)
from bot.schema import migrate_all
from bot.storage import Operations
from knowledge.store import KnowledgeBase
from tests.fixtures import load_dump

ENV_PREFIXES = ("SLACK_", "GUIDEBOT_", "MICROSOFT_APP_")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith(ENV_PREFIXES)}
    return CliRunner().invoke(cli, list(args), env={**cleared, **(env or {})}, prog_name="guidebot")


def integrity(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def question_count(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("SELECT count(*) FROM questions").fetchone()[0])
    finally:
        connection.close()


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """A served database: the 0.1.0 fixture brought up to date, in WAL mode."""
    path = load_dump(tmp_path / "guidebot.db")
    kb = KnowledgeBase(path)
    migrate_all(kb.db)
    kb.close()
    return path


class Writer(threading.Thread):
    """Records questions, one transaction each, until stopped."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.warmed = threading.Event()
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            kb = KnowledgeBase(self.path)
            operations = Operations(kb.db)
            try:
                while not self.stop.is_set():
                    operations.record_question(
                        "st-annes",
                        "slack",
                        "U0BUSY",
                        f"question {self.written} " + "x" * 500,
                        answered=True,
                        offer_report=False,
                    )
                    self.written += 1
                    if self.written >= 50:
                        self.warmed.set()
            finally:
                kb.close()
        except BaseException as exc:
            self.error = exc
            self.warmed.set()


@pytest.fixture
def writer(live: Path) -> Iterator[Writer]:
    thread = Writer(live)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop.set()
        thread.join(timeout=60)


def test_backups_under_concurrent_writes_are_consistent(
    live: Path, writer: Writer, tmp_path: Path
) -> None:
    assert writer.warmed.wait(timeout=60)
    copies = []
    for number in range(3):
        target = tmp_path / f"copy-{number}.db"
        result = backup(live, target)
        assert result.target == target and result.bytes == target.stat().st_size
        copies.append(target)
    cli_copy = tmp_path / "cli-copy.db"
    shown = run("--db", str(live), "backup", str(cli_copy))
    copies.append(cli_copy)
    writer.stop.set()
    writer.join(timeout=60)
    assert writer.error is None
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"backed up {live} to {cli_copy} (")
    assert "integrity check ok" in shown.output
    final = question_count(live)
    counts = []
    for copy in copies:
        assert integrity(copy) == "ok"
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert not Path(f"{copy}-wal").exists()
        kb = KnowledgeBase(copy)  # opens as a guidebot database
        kb.close()
        counts.append(question_count(copy))
    assert counts == sorted(counts)  # each a later snapshot than the one before
    assert 2 < counts[0] <= counts[-1] <= final


def test_a_backup_never_overwrites_unless_forced(live: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    target.write_text("precious", encoding="utf-8")
    with pytest.raises(DataCareError, match="already exists"):
        backup(live, target)
    assert target.read_text(encoding="utf-8") == "precious"
    result = run("--db", str(live), "backup", str(target))
    assert result.exit_code == 2
    assert (
        result.output == f"guidebot: {target} already exists: choose a new name, or add --force\n"
    )
    assert run("--db", str(live), "backup", "--force", str(target)).exit_code == 0
    assert integrity(target) == "ok"


def _plain_sqlite(path: Path) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b"not a database at all" * 100), "cannot be read as a database"),
        (_plain_sqlite, "is not a guidebot database"),
    ],
    ids=["missing", "not-sqlite", "not-guidebot"],
)
def test_a_backup_of_something_else_is_refused(tmp_path: Path, make: object, words: str) -> None:
    source = tmp_path / "source.db"
    make(source)  # type: ignore[operator]
    with pytest.raises(DataCareError, match=words):
        backup(source, tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists()
    assert not list(tmp_path.glob(".copy.db.partial*"))


def test_restore_puts_a_backup_back_and_keeps_what_it_replaced(live: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved.db"
    backup(live, saved)
    kb = KnowledgeBase(live)
    Operations(kb.db).record_question(
        "st-annes", "slack", "U0LATE", "asked after the backup", answered=True, offer_report=False
    )
    kb.close()
    assert question_count(live) == 3
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    result = restore(saved, live, now=moment)
    assert question_count(live) == 2
    assert result.kept_as == live.with_name("guidebot.db.before-restore-20260301T093000Z")
    assert question_count(result.kept_as) == 3 and integrity(result.kept_as) == "ok"
    assert result.lines()[0].startswith(f"restored {live} from {saved} (1 schools, 2 questions")
    kb = KnowledgeBase(live)
    assert kb.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    kb.close()


def test_restore_refuses_while_the_database_is_in_use(live: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved.db"
    backup(live, saved)
    kb = KnowledgeBase(live)  # as a running server holds it
    try:
        with pytest.raises(DataCareError, match="is in use: stop guidebot serve"):
            restore(saved, live)
        assert kb.db.execute("SELECT count(*) FROM schools").fetchone()[0] == 1
    finally:
        kb.close()
    assert not list(tmp_path.glob("*.before-restore-*"))


def test_restore_refuses_a_damaged_backup(live: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved.db"
    backup(live, saved)
    data = bytearray(saved.read_bytes())
    data[4096 * 3 : 4096 * 3 + 512] = b"\xff" * 512  # scribble over a table page
    saved.write_bytes(bytes(data))
    before = live.read_bytes()
    result = run("--db", str(live), "restore", str(saved))
    assert result.exit_code == 2
    assert result.output.startswith(f"guidebot: {saved} ")
    assert len(result.output.splitlines()) == 1
    assert live.read_bytes() == before


def test_restore_into_an_empty_place_and_upgrade_an_old_backup(tmp_path: Path) -> None:
    old = load_dump(tmp_path / "old-backup.db")  # a backup made by 0.1.0
    target = tmp_path / "new" / "guidebot.db"
    target.parent.mkdir()
    result = restore(old, target)
    assert result.kept_as is None
    assert result.migrated  # brought up to this version's schema
    assert integrity(target) == "ok"


# --- forget-user ----------------------------------------------------------------------------


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.execute(sql).fetchall())
    finally:
        connection.close()


def test_forget_user_erases_questions_feedback_and_reachability_but_not_safeguarding(
    live: Path,
) -> None:
    kb = KnowledgeBase(live)
    try:
        result = forget_user(kb.db, Subject("slack", "U0STAFF"))
    finally:
        kb.close()
    assert result.removed == {
        "feedback": 1,
        "question_askers": 1,
        "questions": 0,
        "conversation_references": 1,
    }
    assert rows(live, "SELECT text, answered FROM questions ORDER BY id") == [
        (ERASED_TEXT, 1),
        ("where do I park on sports day?", 0),  # someone else's
    ]
    assert rows(live, "SELECT count(*) FROM question_askers WHERE user_id = 'U0STAFF'") == [(0,)]
    assert rows(live, "SELECT count(*) FROM concerns") == [(2,)]
    lines = result.lines()
    assert lines[0] == (
        "slack:U0STAFF: removed 1 from feedback, 1 from question_askers, "
        "1 from conversation_references"
    )
    assert any("anonymous counts" in line for line in lines[1:])
    assert any("2 safeguarding reports" in line and "not erasure" in line for line in lines[1:])
    assert "frightened" not in "\n".join(lines)


def test_an_unanswered_question_goes_entirely(live: Path) -> None:
    result = run("--db", str(live), "forget-user", "--platform", "teams", "--user", "29:1ABC")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "teams:29:1ABC: removed 1 from feedback, 1 from question_askers, 1 from questions"
    )
    assert rows(live, "SELECT count(*) FROM questions") == [(1,)]


def test_a_dry_run_changes_nothing_and_school_limits_it(live: Path) -> None:
    before = rows(live, "SELECT * FROM questions") + rows(live, "SELECT * FROM feedback")
    shown = run(
        "--db", str(live), "forget-user", "--platform", "slack", "--user", "U0STAFF", "--dry-run"
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("slack:U0STAFF: would remove 1 from feedback")
    other = run(
        "--db",
        str(live),
        "forget-user",
        "--platform",
        "slack",
        "--user",
        "U0STAFF",
        "--school",
        "st-johns",
    )
    assert other.output.splitlines()[0] == "slack:U0STAFF at st-johns: nothing to remove"
    assert rows(live, "SELECT * FROM questions") + rows(live, "SELECT * FROM feedback") == before


def test_other_modules_add_erasers(live: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datacare, "ERASERS", list(datacare.ERASERS))
    seen: list[Subject] = []

    @register_eraser("staff directory")
    def erase_staff(db: object, who: Subject) -> Erasure:
        seen.append(who)
        return Erasure(removed={"staff": 1}, kept=["their role is kept for the audit"])

    kb = KnowledgeBase(live)
    try:
        result = forget_user(kb.db, Subject("slack", "U0NOBODY"))
    finally:
        kb.close()
    assert seen == [Subject("slack", "U0NOBODY")]
    assert result.lines() == [
        "slack:U0NOBODY: removed 1 from staff",
        "kept: their role is kept for the audit",
    ]


def test_a_failing_eraser_changes_nothing(live: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datacare, "ERASERS", list(datacare.ERASERS))

    @register_eraser("broken")
    def broken(db: object, who: Subject) -> Erasure:
        raise RuntimeError("boom")

    before = rows(live, "SELECT * FROM question_askers")
    kb = KnowledgeBase(live)
    try:
        with pytest.raises(RuntimeError):
            forget_user(kb.db, Subject("slack", "U0STAFF"))
    finally:
        kb.close()
    assert rows(live, "SELECT * FROM question_askers") == before


def test_forget_user_needs_a_database(tmp_path: Path) -> None:
    result = run(
        "--db", str(tmp_path / "none.db"), "forget-user", "--platform", "slack", "--user", "U1"
    )
    assert result.exit_code == 2
    assert result.output == f"guidebot: there is no database at {tmp_path / 'none.db'}\n"
    assert not (tmp_path / "none.db").exists()


def test_the_database_is_found_as_serve_finds_it(tmp_path: Path, live: Path) -> None:
    config = tmp_path / "guidebot.toml"
    config.write_text('[server]\ndatabase = "guidebot.db"\n', encoding="utf-8")
    result = run("backup", "--config", str(config), str(tmp_path / "via-config.db"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"backed up {live} to ")


def test_backup_runs_as_a_real_command_while_a_server_has_it_open(
    live: Path, tmp_path: Path
) -> None:
    kb = KnowledgeBase(live)
    try:
        command = [sys.executable, "-c", "from bot.cli import main; main()"]
        target = tmp_path / "from-process.db"
        done = subprocess.run(
            [*command, "--db", str(live), "backup", str(target)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        kb.close()
    assert done.returncode == 0, done.stderr
    assert integrity(target) == "ok"


def test_staff_records_stay_while_employed_and_go_once_they_have_left(live: Path) -> None:
    """The directory, training and acknowledgements are employment records: kept
    while the person is on HR's list; after they leave, erased or anonymised."""
    from bot.directory import Directory, StaffRow

    kb = KnowledgeBase(live)
    try:
        directory = Directory(kb.db)
        ann = StaffRow(2, "ann@school.org.uk", "Ann Leaver", ("staff",), ("teaching",), "U0ANN")
        bob = StaffRow(3, "bob@school.org.uk", "Bob Stays", ("staff",), (), "U0BOB")
        directory.import_rows("st-annes", [ann, bob])
        kb.db.execute(
            "INSERT INTO broadcasts (id, school, title, message, send_at, created_at,"
            " author_name, author_platform, author_user_id) VALUES (1, 'st-annes', 'KCSIE',"
            " 'Please read', '2026-01-01', '2026-01-01', 'Head', 'slack', 'U0HEAD')"
        )
        ann_id = directory.by_email("st-annes", ann.email)
        assert ann_id is not None
        kb.db.execute(
            "INSERT INTO broadcast_recipients (broadcast_id, person_id, name, user_id,"
            " acknowledged_at) VALUES (1, ?, 'Ann Leaver', 'U0ANN', '2026-01-01')",
            [ann_id.id],
        )
        kept = forget_user(kb.db, Subject("slack", "U0ANN"))
        assert "staff" not in kept.removed
        assert any("still on the school's staff list" in line for line in kept.kept)
        directory.import_rows("st-annes", [bob])  # Ann has left
        gone = forget_user(kb.db, Subject("slack", "U0ANN"))
        assert gone.removed["staff"] == 1
        assert directory.by_email("st-annes", ann.email) is None
        assert directory.by_email("st-annes", bob.email) is not None
        assert rows(live, "SELECT name, user_id, acknowledged_at FROM broadcast_recipients") == [
            ("(a former member of staff)", None, "2026-01-01")
        ]
    finally:
        kb.close()
