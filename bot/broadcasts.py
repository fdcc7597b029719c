"""Leader broadcasts: a message to staff, who has read it, and gentle chasers.

A leader (the ``leader`` or ``head`` role in the staff directory, still
working at the school) writes a ``Draft``: a title, a message, optionally a
policy to link, an audience (everyone, or some groups) and whether each
person must press "I have read and understood". Anyone else who tries is
refused with a kind sentence, and the attempt is written to
``broadcast_attempts`` (school, platform, user id, when, why).

Who receives it (decided when it goes out, so a broadcast scheduled for next
week reaches next week's staff): every *active* person at the school in any
of the chosen groups (or everyone), except its author. Each person is reached
once, on one platform: Slack if the directory has their Slack id, else Teams
if it has their Teams id, else they are recorded as *unreachable* (listed in
the status so a leader can tell them in person). One person, one message,
one acknowledgement: pressing the button on any platform counts.

Sending goes through the outbox (``bot.outbox``), in the same transaction as
the broadcast's rows, one message per recipient keyed
``broadcast:<id>:<person id>:<platform>``, so a restart or a second sweep
never sends anyone the same message twice. *Delivered* means that outbox row
is ``sent``. Chasers (``chase:<id>:<person id>:<n>``) go to people who have
not acknowledged, whose first message was delivered, and who still work at
the school: ``chase_after_days`` (default 3) days after the broadcast, again
the same number of days after the first chaser, and never more than
``max_chasers`` (default 2). ``dispatch_due`` and ``chase_due`` are sweeps: run
them as often as wanted, from any scheduler; each does only what is due.

Tables (migration ``broadcasts_m001_tables``)::

    broadcasts(id, school, title, message, policy, policy_title, policy_review,
               groups, requires_ack, send_at, created_at, dispatched_at, state,
               author_id, author_name, author_platform, author_user_id,
               from_policy, from_version)
    broadcast_recipients(broadcast_id, person_id, name, platform, user_id,
               outbox_key, acknowledged_at, ack_platform, chasers, last_chased_at)
    broadcast_attempts(id, school, platform, user_id, at, reason)

A broadcast is not confidential (it goes to the whole staff), so its text is
kept in clear; the outbox still seals its copies as it does every message.
Nothing here logs a message's text.

Settings, ``[broadcasts]`` in guidebot.toml::

    [broadcasts]
    chase_after_days = 3   # days before a non-acknowledger is reminded (1 to 30)
    max_chasers = 2        # reminders per person at most (0 to 5; 0: none)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import sqlite_utils

from bot import wording
from bot.directory import Directory, Person, reachable_at
from bot.messages import Action, Button, Reply
from bot.outbox import MIGRATIONS as OUTBOX_MIGRATIONS
from bot.outbox import Outbox, stamp, utcnow
from knowledge.errors import GuidebotError
from knowledge.store import run_migrations

log = logging.getLogger(__name__)

UK_CLOCK = ZoneInfo("Europe/London")
"""Dates in messages are the dates on the staffroom clock."""

MAX_TITLE = 150
MAX_MESSAGE = 3000
MAX_AHEAD = timedelta(days=366)
"""How far ahead a broadcast may be scheduled."""

BroadcastState = Literal["scheduled", "sent", "cancelled"]
AckOutcome = Literal["recorded", "already", "not_recipient", "unknown"]


class BroadcastRefused(GuidebotError):
    """A broadcast that may not or cannot be made; ``str(exc)`` is a kind sentence
    for the person who tried (from bot.wording). ``reason`` is a short code."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BroadcastSettings:
    chase_after_days: int = 3
    """Days after a broadcast (and after each chaser) before a non-acknowledger is reminded."""
    max_chasers: int = 2
    """Reminders per person at most."""


def parse_broadcast_settings(raw: Mapping[str, Any] | None, where: str) -> BroadcastSettings:
    """``[broadcasts]`` from guidebot.toml; raises ConfigError naming the key."""
    from bot.config import ConfigError  # bot.config imports this module

    if raw is None:
        return BroadcastSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[{where}] must be a table of settings")
    known = {"chase_after_days", "max_chasers"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]} is not a setting guidebot knows "
            f"(use any of: {', '.join(sorted(known))})"
        )

    def whole(key: str, default: int, low: int, high: int) -> int:
        value = raw.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"{where}.{key} must be a whole number from {low} to {high}")
        return value

    return BroadcastSettings(
        chase_after_days=whole("chase_after_days", 3, 1, 30),
        max_chasers=whole("max_chasers", 2, 0, 5),
    )


# --- what callers pass and get ------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    title: str
    message: str
    policy: str | None = None
    """A policy key of the school (knowledge.store ``policies.key``) to link."""
    groups: tuple[str, ...] = ()
    """Empty: everyone at the school."""
    requires_ack: bool = True
    send_at: datetime | None = None
    """Timezone-aware; None (or a time already passed): now."""
    from_policy_version: int | None = None
    """Made from the offer for ``policy`` at this version (``bot.policy_changes``):
    that offer is then no longer pending."""


@dataclass(frozen=True)
class BroadcastStatus:
    id: int
    school: str
    title: str
    author: str
    created_at: str
    send_at: str
    state: BroadcastState
    requires_ack: bool
    recipients: int
    """People it was sent to (reachable ones); for a scheduled one, who it would reach now."""
    delivered: int
    acknowledged: int
    outstanding: tuple[str, ...]
    """Names of recipients still at the school who have not acknowledged
    (empty when not ``requires_ack``)."""
    unreachable: tuple[str, ...]
    """Names of people in the audience with no Slack or Teams id."""
    chasers: int
    """Chaser messages queued so far."""
    message: str = ""
    policy: str | None = None
    groups: tuple[str, ...] = ()
    dispatched_at: str | None = None


# --- tables -------------------------------------------------------------------------------------


def _m001_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE broadcasts (
            id INTEGER PRIMARY KEY,
            school TEXT NOT NULL,
            title TEXT NOT NULL,
            message TEXT NOT NULL,
            policy TEXT,
            policy_title TEXT,
            policy_review TEXT,
            groups TEXT NOT NULL DEFAULT '',
            requires_ack INTEGER NOT NULL DEFAULT 1,
            send_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            dispatched_at TEXT,
            state TEXT NOT NULL DEFAULT 'scheduled'
                CHECK (state IN ('scheduled', 'sent', 'cancelled')),
            author_id INTEGER,
            author_name TEXT NOT NULL,
            author_platform TEXT NOT NULL,
            author_user_id TEXT NOT NULL,
            from_policy TEXT,
            from_version INTEGER
        )
        """
    )
    db.execute("CREATE INDEX broadcasts_due ON broadcasts (state, send_at)")
    db.execute("CREATE INDEX broadcasts_school ON broadcasts (school, dispatched_at)")
    db.execute("CREATE INDEX broadcasts_offer ON broadcasts (school, from_policy, from_version)")
    db.execute(
        """
        CREATE TABLE broadcast_recipients (
            broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),
            person_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            platform TEXT,
            user_id TEXT,
            outbox_key TEXT,
            acknowledged_at TEXT,
            ack_platform TEXT,
            chasers INTEGER NOT NULL DEFAULT 0,
            last_chased_at TEXT,
            PRIMARY KEY (broadcast_id, person_id)
        )
        """
    )
    db.execute("CREATE INDEX broadcast_recipients_open ON broadcast_recipients (acknowledged_at)")
    db.execute(
        """
        CREATE TABLE broadcast_attempts (
            id INTEGER PRIMARY KEY,
            school TEXT NOT NULL,
            platform TEXT NOT NULL,
            user_id TEXT NOT NULL,
            at TEXT NOT NULL,
            reason TEXT NOT NULL
        )
        """
    )


def _m002_form_id(db: sqlite_utils.Database) -> None:
    """The form a broadcast was sent from, so pressing Send again (even after a
    restart, or on another server) is never a second broadcast."""
    db.execute("ALTER TABLE broadcasts ADD COLUMN form_id TEXT")
    db.execute(
        "CREATE UNIQUE INDEX broadcasts_form ON broadcasts"
        " (author_platform, author_user_id, form_id) WHERE form_id IS NOT NULL"
    )


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("broadcasts_m001_tables", _m001_tables),
    ("broadcasts_m002_form_id", _m002_form_id),
)

_BROADCAST_COLUMNS = (
    "id, school, title, message, policy, policy_title, policy_review, groups, requires_ack,"
    " send_at, created_at, dispatched_at, state, author_id, author_name"
)


@dataclass(frozen=True)
class _Stored:
    id: int
    school: str
    title: str
    message: str
    policy: str | None
    policy_title: str | None
    policy_review: str | None
    groups: tuple[str, ...]
    requires_ack: bool
    send_at: str
    created_at: str
    dispatched_at: str | None
    state: BroadcastState
    author_id: int | None
    author_name: str


def _stored(values: Sequence[Any]) -> _Stored:
    return _Stored(
        id=int(values[0]),
        school=values[1],
        title=values[2],
        message=values[3],
        policy=values[4],
        policy_title=values[5],
        policy_review=values[6],
        groups=tuple(g for g in str(values[7] or "").split(";") if g),
        requires_ack=bool(values[8]),
        send_at=values[9],
        created_at=values[10],
        dispatched_at=values[11],
        state=cast(BroadcastState, values[12]),
        author_id=int(values[13]) if values[13] is not None else None,
        author_name=values[14],
    )


def _day(text: str | None) -> str:
    """``2026-03-02T09:00:00+00:00`` -> ``2 March 2026``, the date on the UK clock
    (a broadcast sent at 00:30 BST was sent on that day, not the one before)."""
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return wording.long_date(moment.astimezone(UK_CLOCK).date())


def outbox_key(broadcast_id: int, person_id: int, platform: str) -> str:
    return f"broadcast:{broadcast_id}:{person_id}:{platform}"


def chase_key(broadcast_id: int, person_id: int, number: int) -> str:
    return f"chase:{broadcast_id}:{person_id}:{number}"


class BroadcastRecords:
    """Reading broadcasts (status, lists): needs no outbox key, so the CLI and
    the digest can use it on their own."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        clock: Callable[[], datetime] = utcnow,
        directory: Directory | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.directory = directory if directory is not None else Directory(db, clock)
        run_migrations(db, OUTBOX_MIGRATIONS)
        run_migrations(db, MIGRATIONS)

    def _get(self, broadcast_id: int) -> _Stored | None:
        row = self.db.execute(
            f"SELECT {_BROADCAST_COLUMNS} FROM broadcasts WHERE id = ?", [broadcast_id]
        ).fetchone()
        return _stored(row) if row else None

    def status(self, broadcast_id: int) -> BroadcastStatus | None:
        stored = self._get(broadcast_id)
        return self._status(stored) if stored is not None else None

    def recent(self, school: str, limit: int = 10) -> list[BroadcastStatus]:
        """The school's latest broadcasts (scheduled ones included), newest first."""
        rows = self.db.execute(
            f"SELECT {_BROADCAST_COLUMNS} FROM broadcasts WHERE school = ?"
            " ORDER BY id DESC LIMIT ?",
            [school, max(0, limit)],
        ).fetchall()
        return [self._status(_stored(r)) for r in rows]

    def between(self, school: str, start: datetime, end: datetime) -> list[BroadcastStatus]:
        """Broadcasts that went out in [start, end), oldest first (for the digest)."""
        rows = self.db.execute(
            f"SELECT {_BROADCAST_COLUMNS} FROM broadcasts WHERE school = ? AND state = 'sent'"
            " AND dispatched_at >= ? AND dispatched_at < ? ORDER BY dispatched_at, id",
            [school, stamp(start), stamp(end)],
        ).fetchall()
        return [self._status(_stored(r)) for r in rows]

    def _status(self, stored: _Stored) -> BroadcastStatus:
        if stored.state == "scheduled":
            return self._planned(stored)
        counts = self.db.execute(
            """
            SELECT
                count(r.platform),
                count(CASE WHEN o.state = 'sent' THEN 1 END),
                count(r.acknowledged_at),
                coalesce(sum(r.chasers), 0)
            FROM broadcast_recipients r
            LEFT JOIN outbox o ON o.dedupe_key = r.outbox_key
            WHERE r.broadcast_id = ?
            """,
            [stored.id],
        ).fetchone()
        outstanding: tuple[str, ...] = ()
        if stored.requires_ack:
            outstanding = tuple(
                r[0]
                for r in self.db.execute(
                    "SELECT r.name FROM broadcast_recipients r"
                    " LEFT JOIN staff s ON s.id = r.person_id"
                    " WHERE r.broadcast_id = ? AND r.platform IS NOT NULL"
                    " AND r.acknowledged_at IS NULL AND coalesce(s.active, 1) = 1"
                    " ORDER BY r.name COLLATE NOCASE, r.person_id",
                    [stored.id],
                ).fetchall()
            )
        unreachable = tuple(
            r[0]
            for r in self.db.execute(
                "SELECT name FROM broadcast_recipients WHERE broadcast_id = ? AND platform IS NULL"
                " ORDER BY name COLLATE NOCASE, person_id",
                [stored.id],
            ).fetchall()
        )
        return self._make(
            stored,
            int(counts[0]),
            int(counts[1]),
            int(counts[2]),
            int(counts[3]),
            outstanding,
            unreachable,
        )

    def _planned(self, stored: _Stored) -> BroadcastStatus:
        """A scheduled broadcast: who it would reach if it went now."""
        audience = _audience(self.directory, stored.school, stored.groups, stored.author_id)
        reachable = [p for p in audience if p.addresses()]
        unreachable = tuple(p.name for p in audience if not p.addresses())
        return self._make(stored, len(reachable), 0, 0, 0, (), unreachable)

    @staticmethod
    def _make(
        stored: _Stored,
        recipients: int,
        delivered: int,
        acknowledged: int,
        chasers: int,
        outstanding: tuple[str, ...],
        unreachable: tuple[str, ...],
    ) -> BroadcastStatus:
        return BroadcastStatus(
            id=stored.id,
            school=stored.school,
            title=stored.title,
            author=stored.author_name,
            created_at=stored.created_at,
            send_at=stored.send_at,
            state=stored.state,
            requires_ack=stored.requires_ack,
            recipients=recipients,
            delivered=delivered,
            acknowledged=acknowledged,
            outstanding=outstanding,
            unreachable=unreachable,
            chasers=chasers,
            message=stored.message,
            policy=stored.policy,
            groups=stored.groups,
            dispatched_at=stored.dispatched_at,
        )


def _audience(
    directory: Directory, school: str, groups: Iterable[str], author_id: int | None
) -> list[Person]:
    return [p for p in directory.people(school, groups=groups) if p.id != author_id]


class Broadcasts(BroadcastRecords):
    """Broadcasts at every school in one database (see the module notes)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        outbox: Outbox,
        directory: Directory,
        clock: Callable[[], datetime] = utcnow,
        settings: BroadcastSettings | None = None,
        school_open: Callable[[str, datetime], bool] | None = None,
    ) -> None:
        super().__init__(db, clock, directory)
        self.outbox = outbox
        self.settings = settings or BroadcastSettings()
        self.school_open = school_open
        """(school, moment) -> whether reminders may go now (bot.school_hours);
        chasers wait for school hours. None: any time."""

    def _now(self) -> str:
        return stamp(self.clock())

    # who may -------------------------------------------------------------------------------

    def can_broadcast(self, school: str, platform: str, user_id: str) -> bool:
        """Whether to offer this person the broadcast buttons (no side effects)."""
        person = self.directory.by_platform(school, platform, user_id)
        return person is not None and person.can_broadcast

    def author(self, school: str, platform: str, user_id: str) -> Person:
        """The leader making a broadcast; anyone else is refused (BroadcastRefused)
        and the attempt is recorded in ``broadcast_attempts``."""
        person = self.directory.by_platform(school, platform, user_id)
        if person is not None and person.can_broadcast:
            return person
        if person is None:
            reason, message = (
                "not in the staff directory",
                wording.broadcast_refused_not_in_directory(),
            )
        elif not person.active:
            reason, message = "has left the school", wording.broadcast_refused_not_in_directory()
        else:
            reason, message = "not a leader", wording.broadcast_refused_not_leader()
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO broadcast_attempts (school, platform, user_id, at, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                [school, platform, user_id, self._now(), reason],
            )
        log.info("a broadcast was refused on %s: %s", platform, reason)
        raise BroadcastRefused(message, "not_allowed")

    def attempts(self, school: str) -> list[dict[str, Any]]:
        """Refused attempts at the school, oldest first."""
        return list(
            self.db.query(
                "SELECT platform, user_id, at, reason FROM broadcast_attempts"
                " WHERE school = ? ORDER BY id",
                [school],
            )
        )

    # making one -----------------------------------------------------------------------------

    def create(
        self,
        school: str,
        platform: str,
        user_id: str,
        draft: Draft,
        *,
        form_id: str | None = None,
    ) -> BroadcastStatus:
        """Check the author and the draft, store it and, when it is due now,
        queue one message per recipient, all in one transaction. ``form_id``:
        the form it came from; a second submission of the same form is refused
        (reason ``already_sent``)."""
        author = self.author(school, platform, user_id)
        if form_id is not None and self._from_form(platform, user_id, form_id):
            raise BroadcastRefused(wording.broadcast_form_already_sent(), "already_sent")
        title = " ".join(draft.title.split())
        message = draft.message.strip()
        if not title or len(title) > MAX_TITLE:
            raise BroadcastRefused(wording.broadcast_refused_title(MAX_TITLE))
        if not message or len(message) > MAX_MESSAGE:
            raise BroadcastRefused(wording.broadcast_refused_message(MAX_MESSAGE))
        now = self.clock()
        send_at = draft.send_at or now
        if send_at.tzinfo is None or send_at > now + MAX_AHEAD:
            raise BroadcastRefused(wording.broadcast_refused_time())
        send_at = max(send_at, now)
        groups = tuple(dict.fromkeys(g.strip().casefold() for g in draft.groups if g.strip()))
        known = self.directory.groups(school)
        for group in groups:
            if group not in known:
                raise BroadcastRefused(
                    wording.broadcast_refused_group(group, ", ".join(known) or "none yet")
                )
        policy_title = policy_review = None
        if draft.policy:
            found = _policy(self.db, school, draft.policy)
            if found is None:
                raise BroadcastRefused(wording.broadcast_refused_policy(draft.policy))
            policy_title, policy_review = found
        if not _audience(self.directory, school, groups, author.id):
            raise BroadcastRefused(wording.broadcast_refused_nobody())
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT INTO broadcasts (school, title, message, policy, policy_title,"
                " policy_review, groups, requires_ack, send_at, created_at, state, author_id,"
                " author_name, author_platform, author_user_id, from_policy, from_version,"
                " form_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?, ?)",
                [
                    school,
                    title,
                    message,
                    draft.policy or None,
                    policy_title,
                    policy_review,
                    ";".join(groups),
                    int(draft.requires_ack),
                    stamp(send_at),
                    stamp(now),
                    author.id,
                    author.name,
                    platform,
                    user_id,
                    draft.policy if draft.from_policy_version is not None else None,
                    draft.from_policy_version,
                    form_id,
                ],
            )
            broadcast_id = int(cursor.lastrowid or 0)
            if send_at <= now:
                self._dispatch(broadcast_id)
        status = self.status(broadcast_id)
        assert status is not None
        log.info(
            "broadcast %s created at %s: %s, %d recipients",
            broadcast_id,
            school,
            status.state,
            status.recipients,
        )
        return status

    def _from_form(self, platform: str, user_id: str, form_id: str) -> bool:
        found = self.db.execute(
            "SELECT 1 FROM broadcasts WHERE author_platform = ? AND author_user_id = ?"
            " AND form_id = ?",
            [platform, user_id, form_id],
        ).fetchone()
        return found is not None

    def cancel(self, broadcast_id: int, platform: str, user_id: str) -> BroadcastStatus:
        """Withdraw a scheduled broadcast before it goes out (a leader of its school)."""
        stored = self._get(broadcast_id)
        if stored is None or stored.state != "scheduled":
            raise BroadcastRefused(wording.broadcast_refused_cancel())
        self.author(stored.school, platform, user_id)
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE broadcasts SET state = 'cancelled' WHERE id = ? AND state = 'scheduled'",
                [broadcast_id],
            )
        if cursor.rowcount != 1:
            raise BroadcastRefused(wording.broadcast_refused_cancel())
        status = self.status(broadcast_id)
        assert status is not None
        return status

    # sweeps ----------------------------------------------------------------------------------

    def dispatch_due(self) -> int:
        """Send every scheduled broadcast now due; returns how many went out.
        Idempotent: a broadcast goes out once however often this runs."""
        due = self.db.execute(
            "SELECT id FROM broadcasts WHERE state = 'scheduled' AND send_at <= ? ORDER BY id",
            [self._now()],
        ).fetchall()
        sent = 0
        for (broadcast_id,) in due:
            with self.db.atomic():
                sent += self._dispatch(int(broadcast_id))
        return sent

    def _dispatch(self, broadcast_id: int) -> int:
        """Inside the caller's transaction: mark it sent, record its recipients and
        queue their messages. 0 if it was no longer scheduled."""
        now = self._now()
        cursor = self.db.execute(
            "UPDATE broadcasts SET state = 'sent', dispatched_at = ?"
            " WHERE id = ? AND state = 'scheduled'",
            [now, broadcast_id],
        )
        if cursor.rowcount != 1:
            return 0
        stored = self._get(broadcast_id)
        assert stored is not None
        reply = self._reply(stored)
        rows: list[tuple[Any, ...]] = []
        queued: list[tuple[str, str, str]] = []
        for person in _audience(self.directory, stored.school, stored.groups, stored.author_id):
            addresses = person.addresses()
            if not addresses:
                rows.append((broadcast_id, person.id, person.name, None, None, None))
                continue
            platform, user_id = addresses[0]
            key = outbox_key(broadcast_id, person.id, platform)
            rows.append((broadcast_id, person.id, person.name, platform, user_id, key))
            queued.append((key, platform, user_id))
        self.db.conn.executemany(
            "INSERT INTO broadcast_recipients (broadcast_id, person_id, name, platform,"
            " user_id, outbox_key) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        for key, platform, user_id in queued:
            self.outbox.enqueue(key, platform, user_id, reply, bulk=True)
        log.info("broadcast %s went out: %d messages queued", broadcast_id, len(queued))
        return 1

    def chase_due(self) -> int:
        """Queue a chaser for each recipient now due one (see the module notes);
        returns how many were queued. Idempotent."""
        settings = self.settings
        if settings.max_chasers <= 0:
            return 0
        cutoff = stamp(self.clock() - timedelta(days=settings.chase_after_days))
        due = self.db.execute(
            """
            SELECT r.broadcast_id, r.person_id, r.chasers, b.school,
                   s.slack_user_id, s.teams_user_id
            FROM broadcast_recipients r
            JOIN broadcasts b ON b.id = r.broadcast_id
            JOIN staff s ON s.id = r.person_id
            JOIN outbox o ON o.dedupe_key = r.outbox_key
            WHERE r.acknowledged_at IS NULL AND r.platform IS NOT NULL
              AND r.chasers < ? AND coalesce(r.last_chased_at, b.dispatched_at) <= ?
              AND b.state = 'sent' AND b.requires_ack = 1
              AND s.active = 1 AND o.state = 'sent'
            ORDER BY r.broadcast_id, r.person_id
            """,
            [settings.max_chasers, cutoff],
        ).fetchall()
        queued = 0
        replies: dict[int, tuple[_Stored, str]] = {}
        now = self.clock()
        closed = {
            school
            for school in {row[3] for row in due}
            if self.school_open is not None and not self.school_open(school, now)
        }
        for broadcast_id, person_id, chasers, school, slack_id, teams_id in due:
            if school in closed:
                continue  # a chaser is a reminder: it waits for school hours
            if broadcast_id not in replies:
                stored = self._get(int(broadcast_id))
                assert stored is not None
                replies[broadcast_id] = (stored, wording.broadcast_dm_text(*self._dm_parts(stored)))
            stored, dm_text = replies[broadcast_id]
            addresses = reachable_at(slack_id, teams_id)  # now, from the joined staff row
            if not addresses:
                continue
            platform, user_id = addresses[0]
            number = int(chasers) + 1
            reply = Reply(
                wording.broadcast_chaser_text(stored.title, _day(stored.dispatched_at), dm_text),
                buttons=self._buttons(stored),
                kind="notice",
                extra={"broadcast_id": str(stored.id), "chaser": str(number)},
            )
            with self.db.atomic():
                cursor = self.db.execute(
                    "UPDATE broadcast_recipients SET chasers = ?, last_chased_at = ?"
                    " WHERE broadcast_id = ? AND person_id = ? AND chasers = ?"
                    " AND acknowledged_at IS NULL",
                    [number, self._now(), broadcast_id, person_id, chasers],
                )
                if cursor.rowcount == 1 and self.outbox.enqueue(
                    chase_key(int(broadcast_id), int(person_id), number),
                    platform,
                    user_id,
                    reply,
                    bulk=True,
                ):
                    queued += 1
        if queued:
            log.info("broadcast chasers queued: %d", queued)
        return queued

    # acknowledgements ------------------------------------------------------------------------

    def acknowledge(self, broadcast_id: int, platform: str, user_id: str) -> AckOutcome:
        """Record that this person has read and understood it (once, from any platform)."""
        stored = self._get(broadcast_id)
        if stored is None or stored.state == "cancelled":
            return "unknown"
        person = self.directory.by_platform(stored.school, platform, user_id)
        if person is None:
            return "not_recipient"
        with self.db.atomic():
            row = self.db.execute(
                "SELECT acknowledged_at FROM broadcast_recipients"
                " WHERE broadcast_id = ? AND person_id = ?",
                [broadcast_id, person.id],
            ).fetchone()
            if row is None:
                return "not_recipient"
            if row[0] is not None:
                return "already"
            self.db.execute(
                "UPDATE broadcast_recipients SET acknowledged_at = ?, ack_platform = ?"
                " WHERE broadcast_id = ? AND person_id = ? AND acknowledged_at IS NULL",
                [self._now(), platform, broadcast_id, person.id],
            )
        return "recorded"

    def acknowledged_at(self, broadcast_id: int, platform: str, user_id: str) -> str | None:
        """When this person acknowledged it (a UTC timestamp), or None."""
        stored = self._get(broadcast_id)
        person = self.directory.by_platform(stored.school, platform, user_id) if stored else None
        if person is None:
            return None
        row = self.db.execute(
            "SELECT acknowledged_at FROM broadcast_recipients"
            " WHERE broadcast_id = ? AND person_id = ?",
            [broadcast_id, person.id],
        ).fetchone()
        return row[0] if row else None

    # the message -----------------------------------------------------------------------------

    def _dm_parts(self, stored: _Stored) -> tuple[str, str, str, str | None, str | None, bool]:
        review = _day(stored.policy_review) if stored.policy_review else None
        return (
            stored.title,
            stored.message,
            stored.author_name,
            stored.policy_title,
            review,
            stored.requires_ack,
        )

    @staticmethod
    def _buttons(stored: _Stored) -> tuple[Button, ...]:
        if not stored.requires_ack:
            return ()
        return (
            Button(
                wording.broadcast_dm_ack_button(), Action.BROADCAST_ACK, str(stored.id), "primary"
            ),
        )

    def _reply(self, stored: _Stored) -> Reply:
        extra = {"broadcast_id": str(stored.id), "broadcast_title": stored.title}
        if stored.policy:
            extra["policy"] = stored.policy
        return Reply(
            wording.broadcast_dm_text(*self._dm_parts(stored)),
            buttons=self._buttons(stored),
            kind="notice",
            extra=extra,
        )


def _policy(db: sqlite_utils.Database, school: str, key: str) -> tuple[str, str | None] | None:
    """(title, next review) of a school's policy, or None."""
    if "policies" not in db.table_names():
        return None
    row = db.execute(
        "SELECT title, next_review FROM policies WHERE school = ? AND key = ?", [school, key]
    ).fetchone()
    return (row[0], row[1]) if row else None
