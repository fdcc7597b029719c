"""How long guidebot keeps each kind of record, and the sweep that enforces it.

UK GDPR's storage-limitation principle: personal data is kept no longer than
it is needed. ``[retention]`` in guidebot.toml sets a period in days per kind
of record (0 or "never": keep until removed by hand):

- ``questions_days`` (default 365): questions staff asked, who asked them
  (``question_askers``) and any feedback on them. A school year and a bit is
  enough for the HR digest and for spotting policy gaps year on year.
- ``feedback_days`` (default 365): Helpful / Not helpful votes. They go with
  their question in any case.
- ``closed_concerns_days`` (default 90): safeguarding reports that are
  *closed and exported after closing* (so the school's own recording system,
  CPOMS or MyConcern, holds the whole chronology) are removed from guidebot
  this many days after that export. A report that is open, or closed but not
  exported since it was closed, is never removed: the child-protection record
  lives until the school has it (schools keep those files until the child is
  25 or longer, IRMS Toolkit for Schools). The audit trail is append-only and
  stays, with a line saying the report was removed and why; it holds who did
  what and when, never what was reported.
- ``delivery_ids_days`` (default 30): Slack and Teams delivery ids kept so a
  platform's retry is not answered twice. Platforms retry within minutes.

``sweep`` is idempotent and safe to run at any time, from any scheduler, as
often as wanted: each run removes what is due and nothing else, in one
transaction per kind of record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

RETENTION_ACTOR = "guidebot:retention"
"""Who the audit trail says removed a report."""


@dataclass(frozen=True)
class RetentionSettings:
    """Days to keep each kind of record; None keeps it until removed by hand."""

    questions_days: int | None = 365
    feedback_days: int | None = 365
    closed_concerns_days: int | None = 90
    delivery_ids_days: int | None = 30


KEYS = tuple(f.name for f in fields(RetentionSettings))


def _days(raw: Mapping[str, Any], key: str, default: int | None) -> int | None:
    from bot.config import ConfigError  # bot.config reads [retention] with this module

    if key not in raw:
        return default
    value = raw[key]
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(
            f'retention.{key} must be a whole number of days (0 or "never" keeps them '
            f"until removed by hand), not {value!r}"
        )
    return value or None


def parse(raw: Any) -> RetentionSettings:
    """The ``[retention]`` table (or nothing, for the defaults)."""
    from bot.config import ConfigError

    if raw is None:
        return RetentionSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError("retention must be a table, like [retention]")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"retention.{unknown[0]} is not a setting guidebot knows "
            f"(expected one of: {', '.join(KEYS)})"
        )
    defaults = RetentionSettings()
    return RetentionSettings(**{key: _days(raw, key, getattr(defaults, key)) for key in KEYS})


def _cutoff(now: datetime, days: int) -> str:
    return (now - timedelta(days=days)).isoformat(timespec="seconds")


def _tables(db: sqlite_utils.Database) -> set[str]:
    return set(db.table_names())


def _questions(db: sqlite_utils.Database, days: int, now: datetime) -> int:
    old = "SELECT id FROM questions WHERE julianday(asked_at) < julianday(?)"
    cutoff = [_cutoff(now, days)]
    with db.atomic():
        db.execute(f"DELETE FROM feedback WHERE question_id IN ({old})", cutoff)
        db.execute(f"DELETE FROM question_askers WHERE question_id IN ({old})", cutoff)
        removed = db.execute(
            "DELETE FROM questions WHERE julianday(asked_at) < julianday(?)", cutoff
        ).rowcount
    return int(removed)


def _feedback(db: sqlite_utils.Database, days: int, now: datetime) -> int:
    with db.atomic():
        removed = db.execute(
            "DELETE FROM feedback WHERE julianday(at) < julianday(?)", [_cutoff(now, days)]
        ).rowcount
    return int(removed)


def _delivery_ids(db: sqlite_utils.Database, days: int, now: datetime) -> int:
    with db.atomic():
        removed = db.execute(
            "DELETE FROM platform_events WHERE state != 'handling'"
            " AND julianday(updated_at) < julianday(?)",
            [_cutoff(now, days)],
        ).rowcount
    return int(removed)


def concerns_due(db: sqlite_utils.Database, days: int, now: datetime) -> list[str]:
    """References of closed reports exported (after closing) more than ``days`` ago."""
    rows = db.execute(
        """
        SELECT c.ref FROM concerns c
        WHERE c.state = 'closed' AND c.closed_at IS NOT NULL
          AND (SELECT max(julianday(a.at)) FROM concern_audit a
               WHERE a.ref = c.ref AND a.action = 'exported' AND a.allowed = 1
                 AND julianday(a.at) >= julianday(c.closed_at)) < julianday(?)
        ORDER BY c.id
        """,
        [_cutoff(now, days)],
    ).fetchall()
    return [row[0] for row in rows]


def _closed_concerns(db: sqlite_utils.Database, days: int, now: datetime) -> int:
    removed = 0
    has_outbox = "outbox" in _tables(db)
    for ref in concerns_due(db, days, now):
        with db.atomic():
            still_due = db.execute(
                "SELECT 1 FROM concerns WHERE ref = ? AND state = 'closed'", [ref]
            ).fetchone()
            if still_due is None:  # removed by a sweep running at the same time
                continue
            db.execute(
                "INSERT INTO concern_audit (ref, at, actor, action, allowed, detail)"
                " VALUES (?, ?, ?, 'removed', 1, ?)",
                [
                    ref,
                    now.isoformat(timespec="seconds"),
                    RETENTION_ACTOR,
                    f"closed, exported, kept {days} days after export",
                ],
            )
            db.execute("DELETE FROM concern_notes WHERE ref = ?", [ref])
            db.execute("DELETE FROM concern_escalations WHERE ref = ?", [ref])
            if has_outbox:
                prefix = f"concern:{ref}:"
                db.execute(
                    "DELETE FROM outbox WHERE substr(dedupe_key, 1, ?) = ?"
                    " AND state IN ('sent', 'dead')",
                    [len(prefix), prefix],
                )
            db.execute("DELETE FROM concerns WHERE ref = ?", [ref])
        removed += 1
    return removed


def sweep(db: sqlite_utils.Database, settings: RetentionSettings, now: datetime) -> dict[str, int]:
    """Remove every record older than its retention period; return how many of each
    kind went (``questions``, ``feedback``, ``closed_concerns``, ``delivery_ids``).
    ``now`` must be timezone-aware (UTC). Tables that do not exist yet are skipped."""
    if now.tzinfo is None:
        raise ValueError("retention.sweep needs a timezone-aware time (UTC)")
    tables = _tables(db)
    counts = {"questions": 0, "feedback": 0, "closed_concerns": 0, "delivery_ids": 0}
    if settings.questions_days and "questions" in tables:
        counts["questions"] = _questions(db, settings.questions_days, now)
    if settings.feedback_days and "feedback" in tables:
        counts["feedback"] = _feedback(db, settings.feedback_days, now)
    if settings.closed_concerns_days and "concerns" in tables:
        counts["closed_concerns"] = _closed_concerns(db, settings.closed_concerns_days, now)
    if settings.delivery_ids_days and "platform_events" in tables:
        counts["delivery_ids"] = _delivery_ids(db, settings.delivery_ids_days, now)
    return counts
