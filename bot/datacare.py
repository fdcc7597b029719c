"""Looking after the data: backups, restores and data-protection erasure.

``backup`` copies the live database with SQLite's online backup API, which
reads one consistent snapshot while ``guidebot serve`` goes on writing (the
database is in WAL mode, so readers and the writer do not block each other).
The copy is written beside the target under a temporary name, switched out of
WAL mode (so it is one self-contained file), checked with ``PRAGMA
integrity_check``, made readable by its owner only, and only then renamed
into place. An existing file is never overwritten unless asked.

``restore`` puts a backup back. It refuses a file that is damaged or is not a
guidebot database, and refuses while another program has the database open
(SQLite cannot leave WAL mode then, which is how it is detected): stop the
server first. The database being replaced is kept as
``<name>.before-restore-<UTC time>``. The restored database is brought up to
the current schema at once.

``forget_user`` answers a data-protection erasure request for one member of
staff. It runs every registered *eraser* (``ERASERS``) in one transaction and
reports, table by table, what was removed and what was kept and why. The
built-in erasers cover questions, feedback and how to reach the person;
safeguarding records are never erased here (they follow the school's
child-protection retention, see ``bot.retention``). A module that stores
personal data adds its own eraser with ``register_eraser``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from knowledge.errors import GuidebotError

ERASED_TEXT = "[erased at the asker's request]"
"""What an answered question's text becomes after ``forget_user``."""
ERASED_NAME = "(a former member of staff)"
"""What a leaver's name becomes in broadcast records after ``forget_user``."""


class DataCareError(GuidebotError):
    """A backup, restore or erasure that cannot be done; the message says why."""


# --- checking a database file ------------------------------------------------------------


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    return sqlite3.connect(path)


def _integrity(connection: sqlite3.Connection) -> str:
    rows = connection.execute("PRAGMA integrity_check").fetchall()
    return "ok" if rows == [("ok",)] else "; ".join(str(row[0]) for row in rows[:3])


@dataclass(frozen=True)
class DatabaseFacts:
    """What a guidebot database file holds, for summaries."""

    schools: int
    questions: int
    concerns: int
    migrations: int


def inspect_database(path: Path) -> DatabaseFacts:
    """Check ``path`` is an undamaged guidebot database (DataCareError if not)."""
    if not path.is_file():
        raise DataCareError(f"{path} does not exist or is not a file")
    try:
        with closing(_connect(path, read_only=True)) as connection:
            problem = _integrity(connection)
            if problem != "ok":
                raise DataCareError(f"{path} is damaged (integrity check: {problem})")
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not {"_migrations", "schools"} <= tables:
                raise DataCareError(f"{path} is not a guidebot database")

            def count(table: str) -> int:
                if table not in tables:
                    return 0
                return int(connection.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0])

            return DatabaseFacts(
                count("schools"), count("questions"), count("concerns"), count("_migrations")
            )
    except sqlite3.DatabaseError as exc:
        raise DataCareError(f"{path} cannot be read as a database ({exc})") from None


# --- backup ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    source: Path
    target: Path
    bytes: int
    facts: DatabaseFacts

    def line(self) -> str:
        size = f"{self.bytes / 1_000_000:.1f} MB" if self.bytes >= 100_000 else f"{self.bytes} B"
        return (
            f"backed up {self.source} to {self.target} ({size}; {self.facts.schools} schools, "
            f"{self.facts.questions} questions, {self.facts.concerns} safeguarding reports; "
            "integrity check ok)"
        )


def _side_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _remove(path: Path) -> None:
    for candidate in (path, *_side_files(path)):
        candidate.unlink(missing_ok=True)


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """Copy ``source`` into the new file ``target`` in one consistent step, as one
    self-contained file (not WAL) readable by its owner only."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    with closing(sqlite3.connect(target)) as copy:
        source.backup(copy)  # pages=-1: the whole database under one read snapshot
        copy.execute("PRAGMA journal_mode = DELETE")
        problem = _integrity(copy)
    if problem != "ok":
        raise DataCareError(f"the copy failed its integrity check ({problem}); nothing was kept")


def backup(database: Path, target: Path, *, force: bool = False) -> BackupResult:
    """Copy the live ``database`` to ``target`` (see the module notes)."""
    inspect_database(database)
    if target.exists() and not force:
        raise DataCareError(f"{target} already exists: choose a new name, or add --force")
    if target.resolve() == database.resolve():
        raise DataCareError("the backup must go to another file than the database itself")
    if not target.parent.is_dir():
        raise DataCareError(f"there is no folder {target.parent} to write the backup in")
    partial = target.with_name(f".{target.name}.partial")
    _remove(partial)
    try:
        with closing(_connect(database)) as source:
            source.execute("PRAGMA busy_timeout = 10000")
            _copy(source, partial)
        facts = inspect_database(partial)
        _remove(target)
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise DataCareError(f"the backup could not be made ({exc})") from None
    except OSError as exc:
        raise DataCareError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        _remove(partial)
    return BackupResult(database, target, target.stat().st_size, facts)


# --- restore -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    backup: Path
    database: Path
    kept_as: Path | None
    facts: DatabaseFacts
    migrated: tuple[str, ...]

    def lines(self) -> list[str]:
        out = [
            f"restored {self.database} from {self.backup} ({self.facts.schools} schools, "
            f"{self.facts.questions} questions, {self.facts.concerns} safeguarding reports)"
        ]
        if self.kept_as is not None:
            out.append(f"the database it replaced is kept as {self.kept_as}")
        if self.migrated:
            out.append(f"brought up to date: {', '.join(self.migrated)}")
        return out


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _set_aside(database: Path, now: datetime) -> Path:
    """Fold the WAL into the database file and rename it; refuse if it is in use."""
    try:
        with closing(sqlite3.connect(database, timeout=0)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            mode = connection.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            mode = "wal"
        else:
            raise DataCareError(f"{database} cannot be opened ({exc})") from None
    if mode != "delete":
        raise DataCareError(
            f"{database} is in use: stop guidebot serve (and any other guidebot command "
            "using it) first, then restore"
        )
    kept = database.with_name(f"{database.name}.before-restore-{_stamp(now)}")
    if kept.exists():
        raise DataCareError(f"{kept} already exists: wait a second and try again")
    os.replace(database, kept)
    for side in _side_files(database):
        side.unlink(missing_ok=True)
    return kept


def restore(backup_file: Path, database: Path, *, now: datetime | None = None) -> RestoreResult:
    """Replace ``database`` with ``backup_file`` (see the module notes)."""
    from bot.schema import migrate_all

    inspect_database(backup_file)
    if backup_file.resolve() == database.resolve():
        raise DataCareError("the backup and the database are the same file")
    moment = now or datetime.now(UTC)
    partial = database.with_name(f".{database.name}.restoring")
    _remove(partial)
    try:
        with closing(_connect(backup_file, read_only=True)) as source:
            _copy(source, partial)
        kept = _set_aside(database, moment) if database.exists() else None
        os.replace(partial, database)
    except sqlite3.Error as exc:
        raise DataCareError(f"the restore could not be done ({exc})") from None
    finally:
        _remove(partial)
    db = sqlite_utils.Database(database)
    try:
        db.enable_wal()
        migrated = migrate_all(db)
    finally:
        db.close()
    return RestoreResult(backup_file, database, kept, inspect_database(database), tuple(migrated))


# --- erasure -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """The member of staff an erasure request is about."""

    platform: str
    user_id: str
    school: str | None = None
    """Only their records for this school; None: every school."""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"

    def at_school(
        self, sql: str, params: Sequence[str], column: str = "school"
    ) -> tuple[str, list[str]]:
        """``sql`` (ending in its WHERE conditions) and ``params``, limited to
        this request's school when it names one."""
        if self.school is None:
            return sql, list(params)
        return f"{sql} AND {column} = ?", [*params, self.school]


@dataclass
class Erasure:
    """What one eraser did: rows removed per table, and sentences about what was kept."""

    removed: dict[str, int] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)


Eraser = Callable[[sqlite_utils.Database, Subject], Erasure]

ERASERS: list[tuple[str, Eraser]] = []
"""Every eraser, run in order by ``forget_user``. Add with ``register_eraser``."""


def register_eraser(name: str) -> Callable[[Eraser], Eraser]:
    """Decorator: run this function for every erasure request. It gets the
    database (inside the request's transaction: do not commit) and the person,
    and must skip quietly when its tables do not exist yet."""

    def add(eraser: Eraser) -> Eraser:
        if all(existing != name for existing, _ in ERASERS):
            ERASERS.append((name, eraser))
        return eraser

    return add


def _has(db: sqlite_utils.Database, *tables: str) -> bool:
    return set(tables) <= set(db.table_names())


@register_eraser("questions")
def _erase_questions(db: sqlite_utils.Database, who: Subject) -> Erasure:
    """Their questions: the link to them and their feedback go; an unanswered
    question goes entirely; an answered one stays only as a count (text erased)."""
    done = Erasure()
    if not _has(db, "questions", "question_askers", "feedback"):
        return done
    mine = (
        "SELECT a.question_id FROM question_askers a JOIN questions q ON q.id = a.question_id"
        " WHERE a.platform = ? AND lower(a.user_id) = lower(?)"
    )
    mine, params = who.at_school(mine, [who.platform, who.user_id], "q.school")
    ids = [row[0] for row in db.execute(mine, params).fetchall()]
    if not ids:
        return done
    marks = ", ".join("?" * len(ids))
    done.removed["feedback"] = db.execute(
        f"DELETE FROM feedback WHERE question_id IN ({marks})", ids
    ).rowcount
    done.removed["question_askers"] = db.execute(
        f"DELETE FROM question_askers WHERE question_id IN ({marks})", ids
    ).rowcount
    done.removed["questions"] = db.execute(
        f"DELETE FROM questions WHERE answered = 0 AND id IN ({marks})", ids
    ).rowcount
    kept = db.execute(
        f"UPDATE questions SET text = ? WHERE answered = 1 AND id IN ({marks})",
        [ERASED_TEXT, *ids],
    ).rowcount
    if kept:
        done.kept.append(
            f"{kept} answered question{'' if kept == 1 else 's'} kept as anonymous counts "
            "(which policy answered it, and when): the words and the link to them are erased"
        )
    return done


@register_eraser("conversation_references")
def _erase_reachability(db: sqlite_utils.Database, who: Subject) -> Erasure:
    """How to message them directly (refreshed if they talk to the bot again)."""
    done = Erasure()
    if not _has(db, "conversation_references"):
        return done
    sql = (
        "DELETE FROM conversation_references"
        " WHERE platform = ? AND scope = 'user' AND lower(key) = lower(?)"
    )
    removed = db.execute(*who.at_school(sql, [who.platform, who.user_id])).rowcount
    if removed:
        done.removed["conversation_references"] = removed
    return done


@register_eraser("safeguarding")
def _keep_safeguarding(db: sqlite_utils.Database, who: Subject) -> Erasure:
    """Never erased: say how many reports name them, and why they stay."""
    done = Erasure()
    if not _has(db, "concerns"):
        return done
    sql = "SELECT count(*) FROM concerns WHERE (reporter = ? OR recipients LIKE ?)"
    count = int(db.execute(*who.at_school(sql, [who.key, f'%"{who.key}"%'])).fetchone()[0])
    if count:
        done.kept.append(
            f"{count} safeguarding report{'' if count == 1 else 's'} they made or handled "
            "kept: safeguarding records follow the school's child-protection retention, "
            "not erasure requests (see [retention] closed_concerns_days)"
        )
    return done


def _staff_rows(db: sqlite_utils.Database, who: Subject) -> list[tuple[int, str, str, int]]:
    """(id, school, email, active) of the directory entries with their platform id."""
    if not _has(db, "staff") or who.platform not in ("slack", "teams"):
        return []
    column = "slack_user_id" if who.platform == "slack" else "teams_user_id"
    sql = f"SELECT id, school, email, active FROM staff WHERE lower({column}) = lower(?)"
    rows = db.execute(*who.at_school(sql, [who.user_id]))
    return [(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


@register_eraser("staff")
def _erase_staff_records(db: sqlite_utils.Database, who: Subject) -> Erasure:
    """Staff records (directory entry, broadcast acknowledgements, training).

    While someone still works at the school these are employment records the
    school must keep (that staff have read Keeping Children Safe in Education,
    that training is in date), so they stay and the admin is told to take the
    person off HR's staff list first. Once they have left, the directory entry,
    their training completions and any review ownership go, and their
    acknowledgements stay only as anonymous counts."""
    done = Erasure()
    for person_id, school, email, active in _staff_rows(db, who):
        if active:
            done.kept.append(
                f"their staff-list entry at {school}, with broadcast acknowledgements and "
                "training records, kept: they are still on the school's staff list. Remove "
                "them from HR's CSV and run `guidebot staff import` first, then ask again"
            )
            continue
        if _has(db, "broadcast_recipients"):
            count = db.execute(
                "UPDATE broadcast_recipients SET name = ?, user_id = NULL WHERE person_id = ?",
                [ERASED_NAME, person_id],
            ).rowcount
            if count:
                done.kept.append(
                    f"{count} broadcast acknowledgement{'' if count == 1 else 's'} kept as "
                    "anonymous counts (their name is erased)"
                )
        if _has(db, "training_completions"):
            done.removed["training_completions"] = db.execute(
                "DELETE FROM training_completions WHERE school = ? AND email = ?",
                [school, email],
            ).rowcount
        if _has(db, "policy_reviews"):
            db.execute(
                "UPDATE policy_reviews SET owner_email = NULL WHERE school = ? AND owner_email = ?",
                [school, email],
            )
        done.removed["staff"] = (
            done.removed.get("staff", 0)
            + db.execute("DELETE FROM staff WHERE id = ?", [person_id]).rowcount
        )
    if _has(db, "broadcast_attempts"):
        sql = "DELETE FROM broadcast_attempts WHERE platform = ? AND lower(user_id) = lower(?)"
        refused = db.execute(*who.at_school(sql, [who.platform, who.user_id])).rowcount
        if refused:
            done.removed["broadcast_attempts"] = refused
    return done


@dataclass(frozen=True)
class ForgetResult:
    subject: Subject
    removed: dict[str, int]
    kept: tuple[str, ...]
    dry_run: bool

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        where = f" at {self.subject.school}" if self.subject.school else ""
        removed = {table: n for table, n in self.removed.items() if n}
        if removed:
            parts = ", ".join(f"{n} from {table}" for table, n in removed.items())
            out = [f"{self.subject.key}{where}: {verb} {parts}"]
        else:
            out = [f"{self.subject.key}{where}: nothing to remove"]
        out += [f"kept: {reason}" for reason in self.kept]
        return out


class _DryRun(Exception):
    pass


def forget_user(db: sqlite_utils.Database, who: Subject, *, dry_run: bool = False) -> ForgetResult:
    """Run every eraser for ``who`` in one transaction (rolled back when ``dry_run``)."""
    removed: dict[str, int] = {}
    kept: list[str] = []
    try:
        with db.atomic():
            for _name, eraser in ERASERS:
                result = eraser(db, who)
                for table, count in result.removed.items():
                    removed[table] = removed.get(table, 0) + int(count)
                kept += result.kept
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return ForgetResult(who, removed, tuple(kept), dry_run)


# --- which database ----------------------------------------------------------------------


def locate_database(
    config_path: Path | None, env: dict[str, str], override: Path | None = None
) -> Path:
    """The database `guidebot serve` would use: ``override`` (--db), else
    GUIDEBOT_DB, else the settings file's ``server.database``, else ./guidebot.db.
    Only that one setting is read, so no secrets are needed to back up."""
    import tomllib

    from bot import config

    if override is not None:
        return override
    if env.get("GUIDEBOT_DB"):
        return Path(env["GUIDEBOT_DB"])
    path = config_path or Path(env.get("GUIDEBOT_CONFIG", config.DEFAULT_CONFIG))
    if config_path is None and not path.exists():
        return Path("guidebot.db")
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataCareError(
            f"cannot read the settings file {path} ({exc}): run guidebot doctor"
        ) from None
    server = data.get("server", {})
    fragment = (
        {"database": server["database"]}
        if isinstance(server, dict) and ("database" in server)
        else {}
    )
    return config.parse({"server": fragment}, env, path).database
