"""Training renewals: a catalogue of courses, completions imported from HR's
spreadsheet, and reminders before each one runs out.

The catalogue (``[training]`` in guidebot.toml, or these defaults, which follow
common practice in English schools under Keeping Children Safe in Education):

======================  =========================================================  ======
id                      title                                                      months
======================  =========================================================  ======
kcsie_part1             Keeping Children Safe in Education Part 1 (read and        12
                        confirm)
safeguarding_refresher  Safeguarding update (annual refresher)                     12
safeguarding_full       Safeguarding and child protection training                 36
prevent                 Prevent duty training                                      36
dsl_training            Designated Safeguarding Lead training (only the DSL and    24
                        deputy DSLs: roles dsl, deputy_dsl)
======================  =========================================================  ======

Everyone needs the first four.

A school changes a course, adds its own or drops one::

    [training]
    remind_days_before = 30
    [training.courses.first_aid]
    title = "Paediatric first aid"
    renew_months = 36
    roles = ["staff"]            # who needs it (any of these roles); default everyone
    [training.courses.prevent]
    enabled = false              # not tracked here

Completions: ``guidebot training import --school S FILE`` reads a CSV with the
columns ``email,course,completed_on`` (course: the id or the title; date
2026-09-01 or 01/09/2026). An import is all or nothing: a file with any bad
row (an email not in the school's staff directory, an unknown course, a date
that is not a date or is in the future) changes nothing and the error names
the line. A row already imported is skipped, so importing HR's whole
spreadsheet again each term is safe.

Each course someone needs expires ``renew_months`` after their latest
completion. They are reminded ``remind_days_before`` days before it expires
and again when it has expired: once each, keyed by that completion
(``training:<person id>:<course>:<completed on>:due|expired``), in school hours
only (``bot.school_hours``). After downtime only the latest applies (an
expired course is not also announced as "due soon"). Someone who needs a
course and has no completion recorded is *not* reminded: the record may just
not have been imported yet, and a first import must not message the whole
staff. They count as overdue ("no record") in HR's weekly digest instead,
where HR can chase them or import the record.
"""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from bot import csv_files, wording
from bot.directory import ROLES, Directory, Person
from bot.messages import Reply
from bot.outbox import Outbox, stamp, utcnow
from bot.school_hours import SchoolHours
from knowledge.errors import GuidebotError
from knowledge.store import run_migrations

log = logging.getLogger(__name__)

_COURSE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
_UK_DATE_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")

State = Literal["current", "due", "expired", "missing"]


class TrainingError(GuidebotError):
    """A training file or request that cannot be carried out; names the line."""


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    renew_months: int
    roles: frozenset[str] = frozenset()
    """Who needs it: anyone holding any of these roles; empty = everyone."""

    def needed_by(self, person: Person) -> bool:
        return not self.roles or person.has_role(*self.roles)


DEFAULT_COURSES: tuple[Course, ...] = (
    Course("kcsie_part1", "Keeping Children Safe in Education Part 1 (read and confirm)", 12),
    Course("safeguarding_refresher", "Safeguarding update (annual refresher)", 12),
    Course("safeguarding_full", "Safeguarding and child protection training", 36),
    Course("prevent", "Prevent duty training", 36),
    Course(
        "dsl_training",
        "Designated Safeguarding Lead training",
        24,
        frozenset({"dsl", "deputy_dsl"}),
    ),
)


@dataclass(frozen=True)
class TrainingSettings:
    courses: tuple[Course, ...] = DEFAULT_COURSES
    remind_days_before: int = 30

    def course(self, wanted: str) -> Course | None:
        """A course by its id or (ignoring case) its title."""
        text = " ".join(wanted.split()).casefold()
        return next(
            (c for c in self.courses if c.id == text or c.title.casefold() == text),
            None,
        )


_COURSE_KEYS = frozenset({"title", "renew_months", "roles", "enabled"})


def parse_training(raw: Mapping[str, Any] | None, where: str = "training.") -> TrainingSettings:
    """The ``[training]`` table (see the module notes); None gives the defaults."""
    from bot.config import ConfigError

    if raw is None:
        return TrainingSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where[:-1]} must be a table, like [{where[:-1]}]")
    unknown = sorted(set(raw) - {"remind_days_before", "courses"})
    if unknown:
        raise ConfigError(
            f"{where}{unknown[0]} is not a setting guidebot knows "
            "(expected remind_days_before or courses)"
        )
    days = raw.get("remind_days_before", 30)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
        raise ConfigError(f"{where}remind_days_before must be a whole number of days from 1 to 365")
    courses = {c.id: c for c in DEFAULT_COURSES}
    table = raw.get("courses", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}courses must be a table, like [{where}courses.first_aid]")
    for course_id, spec in table.items():
        here = f"{where}courses.{course_id}"
        if not _COURSE_ID_RE.fullmatch(course_id):
            raise ConfigError(f"{here}: a course id is lower-case letters, digits, _ or -")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{here} must be a table, like [{here}]")
        bad = sorted(set(spec) - _COURSE_KEYS)
        if bad:
            raise ConfigError(
                f"{here}.{bad[0]} is not known (use title, renew_months, roles, enabled)"
            )
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{here}.enabled must be true or false")
        if not enabled:
            courses.pop(course_id, None)
            continue
        base = courses.get(course_id)
        title = spec.get("title", base.title if base else None)
        if not isinstance(title, str) or not title.strip():
            raise ConfigError(f"{here}.title is missing (the course's name as staff know it)")
        months = spec.get("renew_months", base.renew_months if base else None)
        if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 120:
            raise ConfigError(f"{here}.renew_months must be a whole number of months from 1 to 120")
        roles = spec.get("roles", sorted(base.roles) if base else [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ConfigError(f'{here}.roles must be a list of roles, like ["dsl"]')
        unknown_roles = [r for r in roles if r.strip().casefold() not in ROLES]
        if unknown_roles:
            raise ConfigError(
                f"{here}.roles: {unknown_roles[0]!r} is not a role (use any of: {', '.join(ROLES)})"
            )
        courses[course_id] = Course(
            course_id,
            " ".join(title.split()),
            months,
            frozenset(r.strip().casefold() for r in roles),
        )
    return TrainingSettings(tuple(courses.values()), days)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it has no such day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Completion:
    line: int
    email: str
    course: Course
    completed_on: date


@dataclass(frozen=True)
class ImportSummary:
    added: int
    already: int


@dataclass(frozen=True)
class TrainingStatus:
    person: Person
    course: Course
    completed_on: date | None
    expires_on: date | None
    state: State


def _m001_completions(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE training_completions (
            id INTEGER PRIMARY KEY,
            school TEXT NOT NULL,
            email TEXT NOT NULL,
            course TEXT NOT NULL,
            completed_on TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            UNIQUE (school, email, course, completed_on)
        )
        """
    )


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("training_m001_completions", _m001_completions),
)


def _parse_date(text: str) -> date | None:
    text = text.strip()
    uk = _UK_DATE_RE.fullmatch(text)
    try:
        if uk:
            return date(int(uk.group(3)), int(uk.group(2)), int(uk.group(1)))
        return date.fromisoformat(text)
    except ValueError:
        return None


class Training:
    """Completions, who is due, and the reminder sweep (see the module notes)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        directory: Directory,
        outbox: Outbox | None,
        hours: Callable[[str], SchoolHours],
        settings: TrainingSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``outbox`` may be None only to import and list (the CLI)."""
        self.db = db
        self.directory = directory
        self.outbox = outbox
        self.hours = hours
        self.settings = settings or TrainingSettings()
        self.clock = clock
        run_migrations(db, MIGRATIONS)

    # importing ---------------------------------------------------------------------------

    def parse_csv(
        self, school: str, text: str, source: str = "the training file"
    ) -> list[Completion]:
        """Check every row of a completions CSV; raises TrainingError naming the first bad line."""
        columns = ("email", "course", "completed_on")
        found = csv_files.records(
            text, source, headings=columns, required=columns, error=TrainingError
        )
        today = self.hours(school).today(self.clock())
        rows = [self._row(school, cells, line, source, today) for line, cells in found]
        if not rows:
            raise TrainingError(f"{source} has headings but no completions in it")
        return rows

    def _row(
        self, school: str, cells: dict[str, str], line: int, source: str, today: date
    ) -> Completion:
        where = f"{source} line {line}"
        email = cells.get("email", "").casefold()
        person = self.directory.by_email(school, email) if email else None
        if person is None:
            raise TrainingError(
                f"{where}: {email or 'the email'} is not in {school}'s staff directory"
            )
        wanted = cells.get("course", "")
        course = self.settings.course(wanted)
        if course is None:
            known = ", ".join(c.id for c in self.settings.courses)
            raise TrainingError(
                f"{where}: {wanted or 'the course'!s} is not a course (use: {known})"
            )
        completed = _parse_date(cells.get("completed_on", ""))
        if completed is None:
            raise TrainingError(
                f"{where}: completed_on {cells.get('completed_on', '')!r} is not a date "
                "(use 2026-09-01 or 01/09/2026)"
            )
        if completed > today:
            raise TrainingError(f"{where}: completed_on {completed} is in the future")
        return Completion(line, person.email, course, completed)

    def import_rows(self, school: str, rows: Iterable[Completion]) -> ImportSummary:
        added = already = 0
        now = stamp(self.clock())
        with self.db.atomic():
            for row in rows:
                cursor = self.db.execute(
                    "INSERT INTO training_completions"
                    " (school, email, course, completed_on, imported_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    [school, row.email, row.course.id, row.completed_on.isoformat(), now],
                )
                if cursor.rowcount == 1:
                    added += 1
                else:
                    already += 1
        return ImportSummary(added, already)

    def import_csv(self, school: str, path: Path) -> ImportSummary:
        """Read and import a completions CSV; a bad file changes nothing."""
        text = csv_files.read_text(path, TrainingError)
        return self.import_rows(school, self.parse_csv(school, text, path.name))

    # who is due ------------------------------------------------------------------------------

    def latest(self, school: str) -> dict[tuple[str, str], date]:
        """(email, course id) -> the latest completion recorded."""
        found: dict[tuple[str, str], date] = {}
        for email, course, completed in self.db.execute(
            "SELECT email, course, max(completed_on) FROM training_completions"
            " WHERE school = ? GROUP BY email, course",
            [school],
        ).fetchall():
            day = _parse_date(completed)
            if day is not None:
                found[(email, course)] = day
        return found

    def status(self, school: str, today: date) -> list[TrainingStatus]:
        """Every course each active person needs, with its state on ``today``."""
        latest = self.latest(school)
        window = timedelta(days=self.settings.remind_days_before)
        found: list[TrainingStatus] = []
        for person in self.directory.people(school):
            for course in self.settings.courses:
                if not course.needed_by(person):
                    continue
                completed = latest.get((person.email, course.id))
                if completed is None:
                    found.append(TrainingStatus(person, course, None, None, "missing"))
                    continue
                expires = add_months(completed, course.renew_months)
                state: State = "current"
                if today >= expires:
                    state = "expired"
                elif today >= expires - window:
                    state = "due"
                found.append(TrainingStatus(person, course, completed, expires, state))
        return found

    # the sweep -----------------------------------------------------------------------------------

    def schools(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT school FROM staff ORDER BY 1")]

    def sweep(self) -> int:
        """Queue every training reminder that is due and not yet sent, for every
        school that is open now; returns how many were queued. Idempotent."""
        if self.outbox is None:
            raise TrainingError("training reminders need the outbox")
        now = self.clock()
        queued = 0
        for school in self.schools():
            hours = self.hours(school)
            if not hours.is_open(now):
                continue
            today = hours.today(now)
            for item in self.status(school, today):
                if item.state not in ("due", "expired") or item.expires_on is None:
                    continue
                addresses = item.person.addresses()
                if not addresses:
                    continue
                platform, address = addresses[0]
                if item.state == "expired":
                    text = wording.training_expired(item.course.title, item.expires_on, today)
                else:
                    text = wording.training_due(item.course.title, item.expires_on, today)
                key = f"training:{item.person.id}:{item.course.id}:{item.completed_on}:{item.state}"
                reply = Reply(text, kind="notice", extra={"course": item.course.id})
                if self.outbox.enqueue(key, platform, address, reply):
                    queued += 1
        return queued
