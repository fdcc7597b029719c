"""Policy review reminders: each policy's owner hears 28 days and 7 days before
its next review date, on the day, and then weekly while it is overdue.

The review date comes from the document ("Next review: September 2026",
``knowledge.metadata``) or is set with ``guidebot policies set-review``, which
works for a policy whose document states no date and can also name the
owner's email. A date set by hand belongs to the version of the policy it was
set for: when a new version of the document is loaded that states its own
date, the document's date takes over again (a new version that states no date
keeps the one set by hand). An owner set by hand stays until changed.

Who is reminded: the owner set with ``set-review`` (by email, from the staff
directory); else the document's owner when it names someone in the directory
(by email, or by exactly one matching name); else the school's people with
the role ``head``; else its ``leader``s. Each person is reached at their first
address (``Person.addresses()``: Slack before Teams). Nobody reachable: nothing
is queued and the next sweep tries again.

When (``review_step``): a step is *due* on a calendar day at the school
(review date - 28 days, - 7 days, the review date itself, then every 7 days
after it) and is *sent* at the first moment on or after that day when the
school is open (``bot.school_hours``). The sweep runs every few minutes and
queues, for each policy, only the latest step due today: so after downtime,
or over a holiday that spans two steps, the owner gets one up-to-date
reminder, never a backlog of stale ones. Each message goes through the outbox
under the key ``review:<policy id>:<review date>:<step>:<person id>``, so
nothing is sent twice, and a changed review date starts a fresh series.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import sqlite_utils

from bot import wording
from bot.directory import Directory, Person
from bot.messages import Reply
from bot.outbox import Outbox, stamp, utcnow
from bot.school_hours import SchoolHours
from knowledge.errors import GuidebotError
from knowledge.store import run_migrations
from knowledge.text import slugify

log = logging.getLogger(__name__)

BEFORE_DAYS = (28, 7)
"""Days before the review date on which the owner is reminded."""
OVERDUE_EVERY_DAYS = 7
FALLBACK_ROLES = ("head", "leader")
"""Who is reminded when a policy has no owner in the directory, in this order."""
_EMAIL_RE = re.compile(r"[^@\s<>(),;]+@[^@\s<>(),;]+\.[^@\s<>(),;]+")


class ReviewError(GuidebotError):
    """A review date or owner that cannot be set; the message says why."""


def _m001_policy_reviews(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE policy_reviews (
            policy_id INTEGER PRIMARY KEY,
            school TEXT NOT NULL,
            next_review TEXT,
            set_for_version INTEGER,
            owner_email TEXT,
            updated_at TEXT NOT NULL
        )
        """
    )


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("reminders_m001_policy_reviews", _m001_policy_reviews),
)


@dataclass(frozen=True)
class ReviewStep:
    """One reminder in a policy's series."""

    name: str
    """``28d``, ``7d`` or ``overdue-N`` (N weeks after the review date; 0 on the day)."""
    due_on: date
    review_date: date


def review_step(review_date: date, today: date) -> ReviewStep | None:
    """The latest reminder due on or before ``today`` (None before the first)."""
    if today >= review_date:
        weeks = (today - review_date).days // OVERDUE_EVERY_DAYS
        due = review_date + timedelta(days=weeks * OVERDUE_EVERY_DAYS)
        return ReviewStep(f"overdue-{weeks}", due, review_date)
    for days in sorted(BEFORE_DAYS):  # the nearest first
        due = review_date - timedelta(days=days)
        if today >= due:
            return ReviewStep(f"{days}d", due, review_date)
    return None


@dataclass(frozen=True)
class PolicyReview:
    """A policy's review date and owner as they stand now."""

    policy_id: int
    school: str
    key: str
    title: str
    version: int
    next_review: date | None
    source: Literal["document", "set", "none"]
    owner_email: str | None
    """Set with ``guidebot policies set-review --owner``."""
    owner_text: str | None
    """The owner as the document states it (a name, a role, an email)."""

    def due_within(self, today: date, days: int) -> bool:
        return self.next_review is not None and self.next_review <= today + timedelta(days=days)


def _date(value: object) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


class Reviews:
    """Review dates, owners and the reminder sweep (see the module notes)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        directory: Directory,
        outbox: Outbox | None,
        hours: Callable[[str], SchoolHours],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``outbox`` may be None only to read and set review dates (the CLI)."""
        self.db = db
        self.directory = directory
        self.outbox = outbox
        self.hours = hours
        self.clock = clock
        run_migrations(db, MIGRATIONS)

    # reading ------------------------------------------------------------------------------

    def reviews(self, school: str) -> list[PolicyReview]:
        """Every policy of ``school`` (by title) with its review date and owner."""
        if "policies" not in self.db.table_names():
            return []
        rows = self.db.execute(
            "SELECT p.id, p.school, p.key, p.title, p.version, p.next_review, p.owner,"
            " r.next_review, r.set_for_version, r.owner_email"
            " FROM policies p LEFT JOIN policy_reviews r ON r.policy_id = p.id"
            " WHERE p.school = ? ORDER BY p.title COLLATE NOCASE, p.id",
            [school],
        ).fetchall()
        found: list[PolicyReview] = []
        for pid, slug, key, title, version, doc_date, doc_owner, set_date, set_for, email in rows:
            stated, chosen = _date(doc_date), _date(set_date)
            source: Literal["document", "set", "none"] = "none"
            when: date | None = None
            if chosen is not None and (stated is None or set_for == version):
                source, when = "set", chosen
            elif stated is not None:
                source, when = "document", stated
            found.append(
                PolicyReview(
                    int(pid),
                    slug,
                    key,
                    title,
                    int(version),
                    when,
                    source,
                    email or None,
                    doc_owner or None,
                )
            )
        return found

    def review(self, school: str, key: str) -> PolicyReview | None:
        return next((r for r in self.reviews(school) if r.key == key), None)

    def due_within(self, school: str, today: date, days: int = 28) -> list[PolicyReview]:
        """Policies due for review within ``days`` of ``today``, or overdue, soonest first."""
        due = [r for r in self.reviews(school) if r.due_within(today, days)]
        return sorted(due, key=lambda r: (r.next_review or today, r.title))

    def owner(self, review: PolicyReview) -> Person | None:
        """The policy's owner in the staff directory, if they can be found."""
        if review.owner_email:
            person = self.directory.by_email(review.school, review.owner_email)
            if person is not None and person.active:
                return person
        text = (review.owner_text or "").strip()
        if not text:
            return None
        match = _EMAIL_RE.search(text)
        if match:
            person = self.directory.by_email(review.school, match.group(0))
            return person if person is not None and person.active else None
        wanted = " ".join(text.casefold().split())
        named = [p for p in self.directory.people(review.school) if p.name.casefold() == wanted]
        return named[0] if len(named) == 1 else None

    def recipients(self, review: PolicyReview) -> list[Person]:
        """Who is reminded about this policy (see the module notes)."""
        owner = self.owner(review)
        if owner is not None and owner.addresses():
            return [owner]
        for role in FALLBACK_ROLES:
            people = [
                p for p in self.directory.people(review.school, roles=[role]) if p.addresses()
            ]
            if people:
                return people
        return []

    # changing -----------------------------------------------------------------------------

    def set_review(
        self, school: str, key: str, when: date, owner_email: str | None = None
    ) -> PolicyReview:
        """Set a policy's next review date (and optionally its owner's email)."""
        slug = slugify(school)
        current = self.review(slug, key)
        if current is None:
            known = ", ".join(r.key for r in self.reviews(slug)) or "none loaded"
            raise ReviewError(f"{school} has no policy {key!r} (its policies: {known})")
        email = owner_email.strip().casefold() if owner_email else None
        if email is not None:
            person = self.directory.by_email(slug, email)
            if person is None or not person.active:
                raise ReviewError(
                    f"{email} is not in {slug}'s staff directory: import the staff list first "
                    "(guidebot staff import)"
                )
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO policy_reviews"
                " (policy_id, school, next_review, set_for_version, owner_email, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (policy_id) DO UPDATE SET"
                " next_review = excluded.next_review,"
                " set_for_version = excluded.set_for_version,"
                " owner_email = coalesce(excluded.owner_email, owner_email),"
                " updated_at = excluded.updated_at",
                [current.policy_id, slug, when.isoformat(), current.version, email, self._now()],
            )
        updated = self.review(slug, key)
        assert updated is not None
        return updated

    # the sweep ----------------------------------------------------------------------------

    def schools(self) -> list[str]:
        if "policies" not in self.db.table_names():
            return []
        return [r[0] for r in self.db.execute("SELECT DISTINCT school FROM policies ORDER BY 1")]

    def sweep(self) -> int:
        """Queue every review reminder that is due and not yet sent, for every
        school that is open now; returns how many were queued. Idempotent."""
        now = self.clock()
        queued = 0
        for school in self.schools():
            hours = self.hours(school)
            if not hours.is_open(now):
                continue
            today = hours.today(now)
            for review in self.reviews(school):
                if review.next_review is None:
                    continue
                step = review_step(review.next_review, today)
                if step is None:
                    continue
                queued += self._send(review, step, today)
        return queued

    def _send(self, review: PolicyReview, step: ReviewStep, today: date) -> int:
        people = self.recipients(review)
        if not people:
            log.info("policy %s: a review reminder is due but nobody can be reached", review.key)
            return 0
        reply = Reply(
            wording.review_reminder(review.title, step.review_date, today),
            kind="notice",
            extra={"policy": review.key, "review_step": step.name},
        )
        if self.outbox is None:
            raise GuidebotError("review reminders need the outbox")
        queued = 0
        for person in people:
            platform, address = person.addresses()[0]
            key = (
                f"review:{review.policy_id}:{step.review_date.isoformat()}:{step.name}:{person.id}"
            )
            if self.outbox.enqueue(key, platform, address, reply):
                queued += 1
        return queued

    def _now(self) -> str:
        return stamp(self.clock())
