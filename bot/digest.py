"""The weekly HR digest: what staff asked, where the policies fell short, who
has not acknowledged a broadcast, whose training is due, which policies need
reviewing, and how quickly safeguarding concerns were picked up.

One digest per school for each week, Monday 00:00 to the next Monday 00:00 on
the school's clock (``bot.school_hours``: Europe/London by default, so a week
with a clock change is still seven calendar days). Sections:

- questions asked and answered (counts), the top topics (the policy sections
  answers came from) and the questions nothing answered (the knowledge gaps:
  their text, never who asked; a question held back because it may describe
  a concern is counted, never shown);
- answers marked "Not helpful" that week (the question and the clause's
  policy and section, never who asked);
- broadcasts sent that week, with acknowledgement rates and the names of
  those still to acknowledge (``Broadcasts.between``);
- training due in the next ``remind_days_before`` days and overdue (names:
  HR needs them), including people with no record of a course they need;
- policies due for review within 28 days, or overdue;
- safeguarding concerns as counts only (new, acknowledged, closed that week;
  open at its end) and the median minutes from report to acknowledgement of
  those acknowledged that week. Never a concern's text, reference, category,
  or anyone's name: the digest reads only the concerns' timestamps.

Delivery (``Digests.sweep``, run every few minutes by the scheduler): from
``[digest]`` ``day`` and ``time`` (default Monday 08:00) on the school's
clock, last week's digest goes to the school's people with the ``roles`` in
``[digest]`` (default ``hr``) and/or the Slack channel in
``[schools.SLUG.digest] slack_channel``, each through the outbox under
``digest:<school>:<ISO week>:<recipient>``, so it is sent once. After
downtime the digest for the latest week is sent when the server is back; a
week missed entirely is not sent late. School holidays do not stop it.
``guidebot digest --school SLUG --preview [--week-of DATE]`` prints it.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

import sqlite_utils

from bot import wording
from bot.directory import ROLES, Directory
from bot.messages import Reply
from bot.outbox import Outbox, utcnow
from bot.reminders import PolicyReview, Reviews
from bot.school_hours import DAY_NAMES, SchoolHours
from bot.training import Training, TrainingStatus
from knowledge.errors import GuidebotError

log = logging.getLogger(__name__)

LIST_LIMIT = 40
"""Longest list shown in any one section; the rest is counted."""
TOP_TOPICS = 5
REVIEW_WINDOW_DAYS = 28
_SLACK_CHANNEL_RE = re.compile(r"^[CG][A-Z0-9]{2,}$")


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchoolDigest:
    """``[schools.SLUG.digest]``."""

    roles: tuple[str, ...] | None = None
    """Whose digest it is in the directory; None: the global ``[digest] roles``."""
    slack_channel: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class DigestSettings:
    weekday: int = 0
    at: time = time(8, 0)
    roles: tuple[str, ...] = ("hr",)
    schools: Mapping[str, SchoolDigest] = field(default_factory=dict)

    def school(self, slug: str) -> SchoolDigest:
        return self.schools.get(slug) or SchoolDigest()

    def roles_for(self, slug: str) -> tuple[str, ...]:
        chosen = self.school(slug).roles
        return self.roles if chosen is None else chosen


def _roles(value: Any, where: str) -> tuple[str, ...]:
    from bot.config import ConfigError

    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ConfigError(f'{where} must be a list of roles, like ["hr"]')
    roles = tuple(r.strip().casefold() for r in value)
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ConfigError(f"{where}: {bad[0]!r} is not a role (use any of: {', '.join(ROLES)})")
    return roles


def parse_digest(raw: Mapping[str, Any] | None, where: str = "digest.") -> DigestSettings:
    """The global ``[digest]`` table: ``day``, ``time``, ``roles``."""
    from bot.config import ConfigError
    from bot.school_hours import parse_school_hours

    if raw is None:
        return DigestSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where[:-1]} must be a table, like [{where[:-1]}]")
    unknown = sorted(set(raw) - {"day", "time", "roles"})
    if unknown:
        raise ConfigError(f"{where}{unknown[0]} is not known (expected day, time or roles)")
    settings = DigestSettings()
    if "day" in raw:
        day = raw["day"]
        name = day.strip().casefold()[:3] if isinstance(day, str) else ""
        if name not in DAY_NAMES:
            raise ConfigError(f'{where}day must be a day of the week like "monday", not {day!r}')
        settings = DigestSettings(DAY_NAMES.index(name), settings.at, settings.roles)
    if "time" in raw:
        # The same reading of "08:00" as school hours use.
        at = parse_school_hours({"opens": raw["time"], "closes": "23:59"}, where).opens
        settings = DigestSettings(settings.weekday, at, settings.roles)
    if "roles" in raw:
        settings = DigestSettings(
            settings.weekday, settings.at, _roles(raw["roles"], f"{where}roles")
        )
    return settings


def parse_school_digest(raw: Mapping[str, Any] | None, where: str) -> SchoolDigest:
    """A school's own ``[schools.SLUG.digest]``: ``slack_channel``, ``roles``, ``enabled``."""
    from bot.config import ConfigError

    if raw is None:
        return SchoolDigest()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where[:-1]} must be a table, like [{where[:-1]}]")
    unknown = sorted(set(raw) - {"slack_channel", "roles", "enabled"})
    if unknown:
        raise ConfigError(
            f"{where}{unknown[0]} is not known (expected slack_channel, roles or enabled)"
        )
    channel = raw.get("slack_channel")
    if channel is not None and (
        not isinstance(channel, str) or not _SLACK_CHANNEL_RE.fullmatch(channel.strip())
    ):
        raise ConfigError(
            f"{where}slack_channel must be a Slack channel id (C... or G..., from the "
            "channel's details), not its name"
        )
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}enabled must be true or false")
    roles = _roles(raw["roles"], f"{where}roles") if "roles" in raw else None
    return SchoolDigest(roles, channel.strip() if channel else None, enabled)


# --- what goes in it -------------------------------------------------------------------------


class BroadcastSummary(Protocol):
    """What the digest reads of a ``bot.broadcasts.BroadcastStatus``."""

    @property
    def title(self) -> str: ...
    @property
    def requires_ack(self) -> bool: ...
    @property
    def recipients(self) -> int: ...
    @property
    def acknowledged(self) -> int: ...
    @property
    def outstanding(self) -> tuple[str, ...]: ...


class BroadcastSource(Protocol):
    def between(
        self, school: str, start: datetime, end: datetime
    ) -> Sequence[BroadcastSummary]: ...


@dataclass(frozen=True)
class ConcernCounts:
    new: int = 0
    acknowledged: int = 0
    closed: int = 0
    open: int = 0
    median_ack_minutes: float | None = None


@dataclass(frozen=True)
class NotHelpful:
    question: str
    policy: str | None
    section: str | None


@dataclass(frozen=True)
class Digest:
    school: str
    school_name: str
    start: datetime
    end: datetime
    asked: int
    answered: int
    top_topics: tuple[tuple[str, str, int], ...]
    gaps: tuple[str, ...]
    held_back: int
    """Unanswered questions not shown because they may describe a concern."""
    not_helpful: tuple[NotHelpful, ...]
    broadcasts: tuple[BroadcastSummary, ...] | None
    """None when broadcasts are not available in this installation."""
    training_due: tuple[TrainingStatus, ...]
    training_overdue: tuple[TrainingStatus, ...]
    reviews: tuple[PolicyReview, ...]
    concerns: ConcernCounts
    reference_day: date
    """The day training and reviews are measured from (the Monday the week ends)."""
    due_days: int = 30
    """How far ahead "training due" looks (``[training] remind_days_before``)."""

    @property
    def iso_week(self) -> str:
        year, week, _ = self.start.date().isocalendar()
        return f"{year}-W{week:02d}"


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_bounds(week_of: date, hours: SchoolHours) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 on the school's clock, for the week
    holding ``week_of``."""
    monday = week_start(week_of)
    start = datetime.combine(monday, time(0), hours.zone)
    end = datetime.combine(monday + timedelta(days=7), time(0), hours.zone)
    return start, end


def _moment(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _coarse(start: datetime, end: datetime) -> tuple[str, str]:
    """Text bounds a day wider than the week, for an index-friendly first cut
    (stored stamps may carry any offset); the exact test is done on parsed times."""
    low = (start.astimezone(UTC) - timedelta(days=1)).date().isoformat()
    high = (end.astimezone(UTC) + timedelta(days=2)).date().isoformat()
    return low, high


class Digests:
    """Builds, renders and sends the weekly digest (see the module notes)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        directory: Directory,
        outbox: Outbox | None,
        reviews: Reviews,
        training: Training,
        hours: Callable[[str], SchoolHours],
        settings: DigestSettings | None = None,
        broadcasts: BroadcastSource | None = None,
        clock: Callable[[], datetime] = utcnow,
        channel_recipient: Callable[[str, str], str] | None = None,
    ) -> None:
        self.db = db
        self.directory = directory
        self.outbox = outbox
        self.reviews = reviews
        self.training = training
        self.hours = hours
        self.settings = settings or DigestSettings()
        self.broadcasts = broadcasts
        self.clock = clock
        self.channel_recipient = channel_recipient
        """(school, channel id) -> the Slack outbox recipient (e.g. ``T...:C...``);
        default: the bare channel id."""
        self._nobody_logged: set[str] = set()

    # building ----------------------------------------------------------------------------------

    def build(self, school: str, week_of: date) -> Digest:
        """The digest for the week (Monday to Sunday) holding ``week_of``."""
        hours = self.hours(school)
        start, end = week_bounds(week_of, hours)
        asked, answered, topics, gaps, held_back = self._questions(school, start, end)
        training = self.training.status(school, end.date())
        broadcasts: tuple[BroadcastSummary, ...] | None = None
        if self.broadcasts is not None:
            broadcasts = tuple(self.broadcasts.between(school, start, end))
        return Digest(
            school=school,
            school_name=self._school_name(school),
            start=start,
            end=end,
            asked=asked,
            answered=answered,
            top_topics=topics,
            gaps=gaps,
            held_back=held_back,
            not_helpful=self._not_helpful(school, start, end),
            broadcasts=broadcasts,
            training_due=tuple(t for t in training if t.state == "due"),
            training_overdue=tuple(t for t in training if t.state in ("expired", "missing")),
            reviews=tuple(self.reviews.due_within(school, end.date(), REVIEW_WINDOW_DAYS)),
            concerns=self._concerns(school, start, end),
            reference_day=end.date(),
            due_days=self.training.settings.remind_days_before,
        )

    def _school_name(self, school: str) -> str:
        if "schools" in self.db.table_names():
            row = self.db.execute("SELECT name FROM schools WHERE slug = ?", [school]).fetchone()
            if row and row[0]:
                return str(row[0])
        return school

    def _questions(
        self, school: str, start: datetime, end: datetime
    ) -> tuple[int, int, tuple[tuple[str, str, int], ...], tuple[str, ...], int]:
        if "questions" not in self.db.table_names():
            return 0, 0, (), (), 0
        low, high = _coarse(start, end)
        rows = self.db.execute(
            "SELECT asked_at, text, withheld, answered, policy, section FROM questions"
            " WHERE school = ? AND asked_at >= ? AND asked_at < ? ORDER BY id",
            [school, low, high],
        ).fetchall()
        asked = answered = held_back = 0
        topics: Counter[tuple[str, str]] = Counter()
        gaps: list[str] = []
        for asked_at, text, withheld, was_answered, policy, section in rows:
            moment = _moment(asked_at)
            if moment is None or not start <= moment < end:
                continue
            asked += 1
            if was_answered:
                answered += 1
                if policy and not withheld:
                    topics[(str(policy), str(section or ""))] += 1
            elif withheld:
                held_back += 1
            else:
                gaps.append(str(text))
        top = tuple(
            (policy, section, count)
            for (policy, section), count in sorted(topics.items(), key=lambda i: (-i[1], i[0]))[
                :TOP_TOPICS
            ]
        )
        return asked, answered, top, tuple(gaps), held_back

    def _not_helpful(self, school: str, start: datetime, end: datetime) -> tuple[NotHelpful, ...]:
        if "feedback" not in self.db.table_names():
            return ()
        low, high = _coarse(start, end)
        rows = self.db.execute(
            "SELECT f.at, q.text, q.policy, q.section FROM feedback f"
            " JOIN questions q ON q.id = f.question_id"
            " WHERE q.school = ? AND f.helpful = 0 AND q.withheld = 0"
            " AND f.at >= ? AND f.at < ? ORDER BY f.at, q.id",
            [school, low, high],
        ).fetchall()
        found: list[NotHelpful] = []
        for at, text, policy, section in rows:
            moment = _moment(at)
            if moment is not None and start <= moment < end:
                found.append(NotHelpful(str(text), policy or None, section or None))
        return tuple(found)

    def _concerns(self, school: str, start: datetime, end: datetime) -> ConcernCounts:
        """Counts and the median time to acknowledgement, from timestamps alone."""
        if "concerns" not in self.db.table_names():
            return ConcernCounts()
        rows = self.db.execute(
            "SELECT created_at, acknowledged_at, closed_at FROM concerns WHERE school = ?",
            [school],
        ).fetchall()
        new = acknowledged = closed = still_open = 0
        minutes: list[float] = []
        for created_text, acked_text, closed_text in rows:
            created = _moment(created_text)
            if created is None or created >= end:
                continue
            acked, closed_at = _moment(acked_text), _moment(closed_text)
            if created >= start:
                new += 1
            if acked is not None and start <= acked < end:
                acknowledged += 1
                minutes.append((acked - created).total_seconds() / 60)
            if closed_at is not None and start <= closed_at < end:
                closed += 1
            if closed_at is None or closed_at >= end:
                still_open += 1
        median = statistics.median(minutes) if minutes else None
        return ConcernCounts(new, acknowledged, closed, still_open, median)

    # rendering ---------------------------------------------------------------------------------

    def render(self, digest: Digest) -> Reply:
        """The digest as one plain-text message (complete on its own)."""
        last_day = digest.end.date() - timedelta(days=1)
        lines = [wording.digest_title(digest.school_name, digest.start.date(), last_day), ""]
        lines.append(wording.digest_questions(digest.asked, digest.answered))
        if digest.top_topics:
            lines.append(wording.digest_top_topics())
            lines += [
                f"• {wording.digest_topic(policy, section, count)}"
                for policy, section, count in digest.top_topics
            ]
        lines.append("")
        lines.append(wording.digest_gaps(len(digest.gaps), digest.held_back))
        lines += _bullets([f"“{g}”" for g in digest.gaps])
        lines.append("")
        lines.append(wording.digest_not_helpful(len(digest.not_helpful)))
        lines += _bullets(
            [
                wording.digest_not_helpful_item(n.question, n.policy, n.section)
                for n in digest.not_helpful
            ]
        )
        lines.append("")
        if digest.broadcasts is None:
            lines.append(wording.digest_broadcasts_unavailable())
        else:
            lines.append(wording.digest_broadcasts(len(digest.broadcasts)))
            for item in digest.broadcasts:
                lines.append(
                    "• "
                    + wording.digest_broadcast(
                        item.title, item.requires_ack, item.acknowledged, item.recipients
                    )
                )
                if item.requires_ack and item.outstanding:
                    names = list(item.outstanding)
                    shown = ", ".join(names[:LIST_LIMIT])
                    lines.append(
                        "  " + wording.digest_outstanding(shown, max(0, len(names) - LIST_LIMIT))
                    )
        lines.append("")
        lines.append(wording.digest_training_due(len(digest.training_due), digest.due_days))
        lines += _bullets(
            [
                wording.digest_training_item(t.person.name, t.course.title, t.expires_on, t.state)
                for t in digest.training_due
            ]
        )
        lines.append(wording.digest_training_overdue(len(digest.training_overdue)))
        expired = [t for t in digest.training_overdue if t.state == "expired"]
        lines += _bullets(
            [
                wording.digest_training_item(t.person.name, t.course.title, t.expires_on, t.state)
                for t in expired
            ]
        )
        missing: dict[str, list[str]] = {}
        for t in digest.training_overdue:
            if t.state == "missing":
                missing.setdefault(t.course.title, []).append(t.person.name)
        for title, names in missing.items():
            shown = ", ".join(names[:LIST_LIMIT])
            lines.append(
                "• "
                + wording.digest_training_missing(title, shown, max(0, len(names) - LIST_LIMIT))
            )
        lines.append("")
        lines.append(wording.digest_reviews(len(digest.reviews), REVIEW_WINDOW_DAYS))
        lines += _bullets(
            [
                wording.digest_review_item(r.title, r.next_review, digest.reference_day)
                for r in digest.reviews
                if r.next_review is not None
            ]
        )
        lines.append("")
        c = digest.concerns
        lines.append(
            wording.digest_concerns(c.new, c.acknowledged, c.closed, c.open, c.median_ack_minutes)
        )
        return Reply(
            "\n".join(lines).strip(),
            kind="notice",
            extra={"digest": digest.iso_week, "school": digest.school},
        )

    def preview(self, school: str, week_of: date | None = None) -> Reply:
        """The digest for the week holding ``week_of`` (default: last week)."""
        if week_of is None:
            week_of = self.hours(school).today(self.clock()) - timedelta(days=7)
        return self.render(self.build(school, week_of))

    # sending ------------------------------------------------------------------------------------

    def due_week(self, school: str, now: datetime) -> date | None:
        """The Monday of the week whose digest is due at ``now`` (this week's send
        time has passed), else None."""
        hours = self.hours(school)
        today = hours.today(now)
        monday = week_start(today)
        send_day = monday + timedelta(days=self.settings.weekday)
        send_at = datetime.combine(send_day, self.settings.at, hours.zone)
        if hours.local(now) < send_at:
            return None
        return monday - timedelta(days=7)

    def recipients(self, school: str) -> list[tuple[str, str, str]]:
        """(platform, outbox recipient, label for the key) for each copy."""
        chosen = self.settings.school(school)
        found: list[tuple[str, str, str]] = []
        roles = self.settings.roles_for(school)
        if roles:
            for person in self.directory.people(school, roles=roles):
                addresses = person.addresses()
                if addresses:
                    platform, address = addresses[0]
                    found.append((platform, address, f"person-{person.id}"))
        if chosen.slack_channel:
            address = (
                self.channel_recipient(school, chosen.slack_channel)
                if self.channel_recipient is not None
                else chosen.slack_channel
            )
            found.append(("slack", address, f"channel-{chosen.slack_channel}"))
        return found

    def schools(self) -> list[str]:
        found: set[str] = set()
        for table, column in (("schools", "slug"), ("staff", "school")):
            if table in self.db.table_names():
                found |= {
                    str(r[0]) for r in self.db.execute(f"SELECT DISTINCT {column} FROM {table}")
                }
        return sorted(found)

    def sweep(self) -> int:
        """Queue each school's digest for last week once its send time has passed
        and it has not been queued yet; returns how many copies were queued."""
        outbox = self.outbox
        if outbox is None:
            raise GuidebotError("the digest needs the outbox to be sent")
        now = self.clock()
        queued = 0
        for school in self.schools():
            if not self.settings.school(school).enabled:
                continue
            week = self.due_week(school, now)
            if week is None:
                continue
            recipients = self.recipients(school)
            year, number, _ = week.isocalendar()
            prefix = f"digest:{school}:{year}-W{number:02d}"
            if not recipients:
                if prefix not in self._nobody_logged:
                    self._nobody_logged.add(prefix)
                    log.warning(
                        "the weekly digest for %s has nobody to go to: give someone the hr "
                        "role in the staff directory, set schools.%s.digest.slack_channel, or "
                        "turn it off with schools.%s.digest.enabled = false",
                        school,
                        school,
                        school,
                    )
                continue
            pending = [r for r in recipients if not outbox.has(f"{prefix}:{r[2]}")]
            if not pending:
                continue
            reply = self.render(self.build(school, week))
            for platform, address, label in pending:
                if outbox.enqueue(f"{prefix}:{label}", platform, address, reply):
                    queued += 1
        return queued


def _bullets(items: Sequence[str]) -> list[str]:
    shown = [f"• {item}" for item in items[:LIST_LIMIT]]
    if len(items) > LIST_LIMIT:
        shown.append(wording.digest_and_more(len(items) - LIST_LIMIT))
    return shown
