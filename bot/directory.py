"""The staff directory: who works at each school, their roles and groups, and
how to reach them on Slack and Teams.

HR keeps the list in a spreadsheet; ``import_csv`` takes its CSV export::

    name,email,roles,groups
    Ann Smith,ann.smith@school.org.uk,staff;leader,teaching
    Bob Jones,bob@school.org.uk,staff,support;office

Optional columns ``slack_id`` and ``teams_id`` fill in platform ids by hand.
Roles and groups may be separated by ``;`` or ``|`` (or ``,`` inside a quoted
cell). An import is all or nothing: a file with any bad row changes nothing
and the error names the line. People missing from a later import are marked
as having left (kept, so a broadcast's history still shows their name) and no
longer receive anything.

Platform ids: Slack ids are found by email (``resolve_slack`` with the
adapter's ``users.lookupByEmail``); Teams users are linked when they first
talk to the bot and the Teams adapter learns their email (``link``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

import sqlite_utils

from bot import csv_files
from knowledge.errors import GuidebotError
from knowledge.store import run_migrations

Role = Literal["staff", "leader", "dsl", "deputy_dsl", "hr", "head"]
ROLES: tuple[Role, ...] = get_args(Role)
BROADCASTERS: frozenset[str] = frozenset({"leader", "head"})
"""Roles allowed to broadcast to staff."""

MAX_IMPORT_BYTES = csv_files.MAX_IMPORT_BYTES
"""The largest staff file read (as for every CSV import)."""
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SPLIT_RE = re.compile(r"[;|,]")
_GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9 _-]{0,40}$")
_SLACK_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class DirectoryError(GuidebotError):
    """A staff file or directory request that cannot be carried out; names the line."""


def _m001_staff(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE staff (
            id INTEGER PRIMARY KEY,
            school TEXT NOT NULL,
            email TEXT NOT NULL,
            name TEXT NOT NULL,
            roles TEXT NOT NULL DEFAULT 'staff',
            groups TEXT NOT NULL DEFAULT '',
            active INTEGER NOT NULL DEFAULT 1,
            slack_user_id TEXT,
            teams_user_id TEXT,
            updated_at TEXT NOT NULL,
            left_at TEXT,
            UNIQUE (school, email)
        )
        """
    )
    db.execute("CREATE INDEX staff_slack ON staff (school, slack_user_id)")
    db.execute("CREATE INDEX staff_teams ON staff (school, teams_user_id)")


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("directory_m001_staff", _m001_staff),
)


@dataclass(frozen=True)
class Person:
    id: int
    school: str
    email: str
    name: str
    roles: frozenset[str]
    groups: frozenset[str]
    active: bool
    slack_user_id: str | None
    teams_user_id: str | None

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def can_broadcast(self) -> bool:
        return self.active and self.has_role(*BROADCASTERS)

    def addresses(self) -> list[tuple[str, str]]:
        """(platform, user id) pairs where this person can be reached, Slack first."""
        return reachable_at(self.slack_user_id, self.teams_user_id)


def reachable_at(slack_user_id: object, teams_user_id: object) -> list[tuple[str, str]]:
    """(platform, user id) pairs for a staff row's platform ids, Slack first."""
    found: list[tuple[str, str]] = []
    if slack_user_id:
        found.append(("slack", str(slack_user_id)))
    if teams_user_id:
        found.append(("teams", str(teams_user_id)))
    return found


@dataclass(frozen=True)
class StaffRow:
    """One parsed line of a staff CSV."""

    line: int
    email: str
    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    slack_user_id: str | None = None
    teams_user_id: str | None = None


@dataclass(frozen=True)
class ImportSummary:
    added: int
    updated: int
    unchanged: int
    left: int

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


@dataclass(frozen=True)
class ResolveSummary:
    resolved: int
    not_found: int
    failed: int


EmailLookup = Callable[[str], Awaitable[str | None]]
"""email -> platform user id, or None when the platform has nobody with it."""


def _now() -> datetime:
    return datetime.now(UTC)


def _split(cell: str | None) -> list[str]:
    return [part.strip().casefold() for part in _SPLIT_RE.split(cell or "") if part.strip()]


def parse_staff_csv(text: str, source: str = "the staff file") -> list[StaffRow]:
    """Rows of a staff CSV; raises DirectoryError naming the first bad line."""
    found = csv_files.records(
        text,
        source,
        headings=("name", "email", "roles", "groups"),
        required=("name", "email"),
        error=DirectoryError,
    )
    rows: list[StaffRow] = []
    seen: dict[str, int] = {}
    for line, cells in found:
        rows.append(_staff_row(cells, line, source))
        email = rows[-1].email
        if email in seen:
            raise DirectoryError(f"{source} line {line}: {email} is already on line {seen[email]}")
        seen[email] = line
    if not rows:
        raise DirectoryError(f"{source} has headings but nobody in it")
    return rows


def _staff_row(cells: dict[str, str], line: int, source: str) -> StaffRow:
    where = f"{source} line {line}"
    name = " ".join(cells.get("name", "").split())
    email = cells.get("email", "").casefold()
    if not name:
        raise DirectoryError(f"{where}: the name is empty")
    if len(name) > 120:
        raise DirectoryError(f"{where}: the name is longer than 120 characters")
    if not _EMAIL_RE.fullmatch(email):
        raise DirectoryError(f"{where}: {email or 'the email'!s} is not an email address")
    roles = _split(cells.get("roles")) or ["staff"]
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise DirectoryError(
            f"{where}: {unknown[0]!r} is not a role guidebot knows (use any of: {', '.join(ROLES)})"
        )
    groups = _split(cells.get("groups"))
    bad = [g for g in groups if not _GROUP_RE.fullmatch(g)]
    if bad:
        raise DirectoryError(
            f"{where}: the group {bad[0]!r} should be a short name of letters, digits, "
            "spaces or dashes"
        )
    slack_id = cells.get("slack_id") or None
    if slack_id is not None and not _SLACK_ID_RE.fullmatch(slack_id):
        raise DirectoryError(f"{where}: slack_id {slack_id!r} is not a Slack member id (U...)")
    teams_id = (cells.get("teams_id") or "").lower() or None
    if teams_id is not None and not _GUID_RE.fullmatch(teams_id):
        raise DirectoryError(
            f"{where}: teams_id {teams_id!r} is not a Microsoft 365 object id (a GUID)"
        )
    if "staff" not in roles:
        roles.insert(0, "staff")
    return StaffRow(
        line,
        email,
        name,
        tuple(dict.fromkeys(roles)),
        tuple(dict.fromkeys(groups)),
        slack_id,
        teams_id,
    )


def read_staff_file(path: Path) -> list[StaffRow]:
    """Read and check a staff CSV file (UTF-8, as Excel's "CSV UTF-8" saves it)."""
    return parse_staff_csv(csv_files.read_text(path, DirectoryError), path.name)


_PERSON_COLUMNS = "id, school, email, name, roles, groups, active, slack_user_id, teams_user_id"


def _person(values: Sequence[object]) -> Person:
    id_, school, email, name, roles, groups, active, slack_id, teams_id = values
    return Person(
        id=int(str(id_)),
        school=str(school),
        email=str(email),
        name=str(name),
        roles=frozenset(str(roles).split()),
        groups=frozenset(g for g in str(groups).split(";") if g),
        active=bool(active),
        slack_user_id=str(slack_id) if slack_id else None,
        teams_user_id=str(teams_id) if teams_id else None,
    )


class Directory:
    """The ``staff`` table: import, look up, and link platform ids."""

    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], datetime] = _now) -> None:
        self.db = db
        self.clock = clock
        run_migrations(db, MIGRATIONS)

    def _stamp(self) -> str:
        return self.clock().isoformat(timespec="seconds")

    # importing -------------------------------------------------------------------------

    def import_rows(self, school: str, rows: Iterable[StaffRow]) -> ImportSummary:
        """Make the school's directory match ``rows`` in one transaction."""
        added = updated = unchanged = 0
        now = self._stamp()
        listed: set[str] = set()
        with self.db.atomic():
            # Everyone already listed, in one query (not one per row); an email met
            # twice in ``rows`` is looked up again, as the first may have added it.
            known = {p.email: p for p in self.people(school, include_left=True)}
            seen: set[str] = set()
            for row in rows:
                listed.add(row.email)
                email = row.email.strip().casefold()
                existing = self.by_email(school, email) if email in seen else known.get(email)
                seen.add(email)
                values = {
                    "name": row.name,
                    "roles": " ".join(sorted(row.roles)),
                    "groups": ";".join(sorted(row.groups)),
                }
                if existing is None:
                    self.db.execute(
                        "INSERT INTO staff (school, email, name, roles, groups, active,"
                        " slack_user_id, teams_user_id, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
                        [
                            school,
                            row.email,
                            values["name"],
                            values["roles"],
                            values["groups"],
                            row.slack_user_id,
                            row.teams_user_id,
                            now,
                        ],
                    )
                    added += 1
                    continue
                same = (
                    existing.active
                    and existing.name == row.name
                    and existing.roles == frozenset(row.roles)
                    and existing.groups == frozenset(row.groups)
                    and (row.slack_user_id is None or row.slack_user_id == existing.slack_user_id)
                    and (row.teams_user_id is None or row.teams_user_id == existing.teams_user_id)
                )
                if same:
                    unchanged += 1
                    continue
                self.db.execute(
                    "UPDATE staff SET name = ?, roles = ?, groups = ?, active = 1, left_at = NULL,"
                    " slack_user_id = coalesce(?, slack_user_id),"
                    " teams_user_id = coalesce(?, teams_user_id), updated_at = ? WHERE id = ?",
                    [
                        values["name"],
                        values["roles"],
                        values["groups"],
                        row.slack_user_id,
                        row.teams_user_id,
                        now,
                        existing.id,
                    ],
                )
                updated += 1
            left = 0
            for person in self.people(school):
                if person.email not in listed:
                    self.db.execute(
                        "UPDATE staff SET active = 0, left_at = ?, updated_at = ? WHERE id = ?",
                        [now, now, person.id],
                    )
                    left += 1
        return ImportSummary(added, updated, unchanged, left)

    def import_csv(self, school: str, path: Path) -> ImportSummary:
        """Read a staff CSV and import it; a bad file changes nothing."""
        return self.import_rows(school, read_staff_file(path))

    # looking up --------------------------------------------------------------------------

    def people(
        self,
        school: str,
        *,
        groups: Iterable[str] = (),
        roles: Iterable[str] = (),
        include_left: bool = False,
    ) -> list[Person]:
        """The school's people (by name), optionally only those in any of
        ``groups`` and/or holding any of ``roles``."""
        rows = self.db.execute(
            f"SELECT {_PERSON_COLUMNS} FROM staff WHERE school = ?"
            + ("" if include_left else " AND active = 1")
            + " ORDER BY name COLLATE NOCASE, id",
            [school],
        ).fetchall()
        wanted_groups = {g.casefold() for g in groups}
        wanted_roles = {r.casefold() for r in roles}
        found = [_person(r) for r in rows]
        if wanted_groups:
            found = [p for p in found if p.groups & wanted_groups]
        if wanted_roles:
            found = [p for p in found if p.roles & wanted_roles]
        return found

    def get(self, person_id: int) -> Person | None:
        row = self.db.execute(
            f"SELECT {_PERSON_COLUMNS} FROM staff WHERE id = ?", [person_id]
        ).fetchone()
        return _person(row) if row else None

    def by_email(self, school: str, email: str) -> Person | None:
        row = self.db.execute(
            f"SELECT {_PERSON_COLUMNS} FROM staff WHERE school = ? AND email = ?",
            [school, email.strip().casefold()],
        ).fetchone()
        return _person(row) if row else None

    def by_platform(self, school: str, platform: str, user_id: str) -> Person | None:
        """The person with this Slack or Teams id at ``school`` (left or not)."""
        column = _platform_column(platform)
        if column is None:
            return None
        wanted = user_id.lower() if platform == "teams" else user_id
        row = self.db.execute(
            f"SELECT {_PERSON_COLUMNS} FROM staff WHERE school = ? AND {column} = ?"
            " ORDER BY active DESC, id LIMIT 1",
            [school, wanted],
        ).fetchone()
        return _person(row) if row else None

    def groups(self, school: str) -> list[str]:
        """Every group named in the school's directory, sorted."""
        found: set[str] = set()
        for person in self.people(school):
            found |= person.groups
        return sorted(found)

    # platform ids ---------------------------------------------------------------------------

    def link(self, school: str, platform: str, user_id: str, email: str) -> bool:
        """Record that ``email`` is ``user_id`` on ``platform``; False when the
        email is not in the school's directory."""
        column = _platform_column(platform)
        if column is None or not user_id:
            return False
        person = self.by_email(school, email)
        if person is None:
            return False
        value = user_id.lower() if platform == "teams" else user_id
        with self.db.atomic():
            self.db.execute(
                f"UPDATE staff SET {column} = ?, updated_at = ? WHERE id = ?",
                [value, self._stamp(), person.id],
            )
        return True

    def unresolved(self, school: str, platform: str) -> list[Person]:
        """Active people with no id yet on ``platform``."""
        column = _platform_column(platform)
        if column is None:
            return []
        return [
            p
            for p in self.people(school)
            if (p.slack_user_id if platform == "slack" else p.teams_user_id) is None
        ]

    async def resolve_slack(self, school: str, lookup: EmailLookup) -> ResolveSummary:
        """Find Slack ids by email for everyone still without one. A lookup that
        raises counts as failed and is tried again next time."""
        resolved = not_found = failed = 0
        for person in self.unresolved(school, "slack"):
            try:
                user_id = await lookup(person.email)
            except Exception:
                failed += 1
                continue
            if user_id is None:
                not_found += 1
                continue
            self.link(school, "slack", user_id, person.email)
            resolved += 1
        return ResolveSummary(resolved, not_found, failed)


def _platform_column(platform: str) -> str | None:
    return {"slack": "slack_user_id", "teams": "teams_user_id"}.get(platform)
