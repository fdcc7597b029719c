"""The bot's operational records, in the same SQLite file as the knowledge base.

- ``questions``: every question and whether it was answered (unanswered ones are
  the knowledge gaps). Who asked is kept apart in ``question_askers`` so the HR
  digest can report topics without names, and a question can be forgotten for
  its asker without losing the count.
- ``feedback``: Helpful / Not helpful clicks, one vote per question.
- ``platform_events``: Slack and Teams delivery ids already handled, so a
  platform's retry never produces a second answer.

A message that looks like a safeguarding concern is stored only as
"withheld": concern text belongs in the encrypted concerns store, never here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from knowledge.store import run_migrations

WITHHELD = "[withheld: may describe a safeguarding concern]"


def _m001_conversations(db: sqlite_utils.Database) -> None:
    db.table("questions").create(
        {
            "id": int,
            "school": str,
            "platform": str,
            "asked_at": str,
            "text": str,
            "withheld": int,
            "answered": int,
            "offer_report": int,
            "clause_id": int,
            "policy": str,
            "section": str,
            "passed_on_at": str,
        },
        pk="id",
        not_null={"school", "platform", "asked_at", "text"},
    )
    db.table("questions").create_index(["school", "asked_at"])
    db.table("question_askers").create(
        {"question_id": int, "platform": str, "user_id": str},
        pk="question_id",
        foreign_keys=[("question_id", "questions", "id")],
    )
    db.table("question_askers").create_index(["platform", "user_id"])
    db.table("feedback").create(
        {"question_id": int, "helpful": int, "at": str},
        pk="question_id",
        foreign_keys=[("question_id", "questions", "id")],
    )
    db.table("platform_events").create(
        {"platform": str, "event_id": str, "state": str, "updated_at": str},
        pk=("platform", "event_id"),
    )


def _m002_conversation_references(db: sqlite_utils.Database) -> None:
    db.table("conversation_references").create(
        {
            "platform": str,
            "scope": str,  # "user" or "channel"
            "key": str,  # the user's or the channel's id on that platform
            "school": str,
            "tenant_id": str,
            "conversation_id": str,
            "service_url": str,
            "reference": str,  # the platform's own reference, as JSON
            "updated_at": str,
            "unreachable_since": str,
        },
        pk=("platform", "scope", "key"),
    )
    db.table("conversation_references").create_index(["school"])


def _m003_teams_keys_lower_case(db: sqlite_utils.Database) -> None:
    """Teams references were stored under the object id as the activity spelt it."""
    db.execute(
        "UPDATE OR IGNORE conversation_references SET key = lower(key) WHERE platform = 'teams'"
    )


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("bot_m001_conversations", _m001_conversations),
    ("bot_m002_conversation_references", _m002_conversation_references),
    ("bot_m003_teams_keys_lower_case", _m003_teams_keys_lower_case),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _reference_key(platform: str, key: str) -> str:
    """Teams object ids are GUIDs, written in either case by different sources
    (activities, the directory, settings): stored and looked up in lower case."""
    return key.lower() if platform == "teams" else key


@dataclass(frozen=True)
class ConversationReference:
    """Where to reach a person or a channel later (reminders, broadcasts, DSL
    alerts), as the platform described it the last time they were in touch."""

    platform: str
    scope: str
    key: str
    school: str
    tenant_id: str | None
    conversation_id: str
    service_url: str | None
    reference: str
    updated_at: str
    unreachable_since: str | None = None


@dataclass(frozen=True)
class StoredQuestion:
    id: int
    school: str
    text: str
    answered: bool
    asked_at: str
    withheld: bool = False


class Operations:
    """Records of what staff asked and how the answers landed."""

    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], datetime] = _now) -> None:
        self.db = db
        self.clock = clock
        run_migrations(db, MIGRATIONS)

    def _stamp(self) -> str:
        return self.clock().isoformat(timespec="seconds")

    # questions -------------------------------------------------------------------

    def record_question(
        self,
        school: str,
        platform: str,
        user_id: str,
        text: str,
        *,
        answered: bool,
        offer_report: bool,
        clause_id: int | None = None,
        policy: str | None = None,
        section: str | None = None,
    ) -> int:
        """Store a question (its text withheld if it may describe a concern)."""
        with self.db.atomic():
            row = self.db.table("questions").insert(
                {
                    "school": school,
                    "platform": platform,
                    "asked_at": self._stamp(),
                    "text": WITHHELD if offer_report else text.strip(),
                    "withheld": int(offer_report),
                    "answered": int(answered),
                    "offer_report": int(offer_report),
                    "clause_id": clause_id,
                    "policy": policy,
                    "section": section,
                }
            )
            question_id = int(str(row.last_pk))
            self.db.table("question_askers").insert(
                {"question_id": question_id, "platform": platform, "user_id": user_id}
            )
        return question_id

    def gaps(self, school: str) -> list[StoredQuestion]:
        """Unanswered questions (never withheld ones), oldest first."""
        rows = self.db.execute(
            "SELECT id, school, text, answered, asked_at FROM questions"
            " WHERE school = ? AND answered = 0 AND withheld = 0 ORDER BY id",
            [school],
        ).fetchall()
        return [StoredQuestion(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def recent_questions(self, platform: str, user_id: str, limit: int = 5) -> list[StoredQuestion]:
        rows = self.db.execute(
            """
            SELECT q.id, q.school, q.text, q.answered, q.asked_at
            FROM questions q JOIN question_askers a ON a.question_id = q.id
            WHERE a.platform = ? AND a.user_id = ? AND q.withheld = 0
            ORDER BY q.id DESC LIMIT ?
            """,
            [platform, user_id, limit],
        ).fetchall()
        return [StoredQuestion(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def question(self, question_id: int) -> StoredQuestion | None:
        row = self.db.execute(
            "SELECT id, school, text, answered, asked_at, withheld FROM questions WHERE id = ?",
            [question_id],
        ).fetchone()
        if row is None:
            return None
        return StoredQuestion(row[0], row[1], row[2], bool(row[3]), row[4], bool(row[5]))

    def asked_by(self, question_id: int, platform: str, user_id: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM question_askers WHERE question_id = ? AND platform = ? AND user_id = ?",
            [question_id, platform, user_id],
        ).fetchone()
        return row is not None

    def mark_passed_on(self, question_id: int) -> bool:
        """Note that a gap was passed to the policy contact; False if already done."""
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE questions SET passed_on_at = ? WHERE id = ? AND passed_on_at IS NULL",
                [self._stamp(), question_id],
            )
        return cursor.rowcount == 1

    def unmark_passed_on(self, question_id: int) -> None:
        """The message to the contact could not be delivered: let the asker try again."""
        with self.db.atomic():
            self.db.execute("UPDATE questions SET passed_on_at = NULL WHERE id = ?", [question_id])

    # conversation references -------------------------------------------------------

    def remember_conversation(
        self,
        platform: str,
        scope: str,
        key: str,
        school: str,
        conversation_id: str,
        reference: str,
        *,
        tenant_id: str | None = None,
        service_url: str | None = None,
    ) -> None:
        """Store (or refresh) how to reach someone; hearing from them again
        also clears an earlier 'unreachable' mark."""
        self.db.table("conversation_references").upsert(
            {
                "platform": platform,
                "scope": scope,
                "key": _reference_key(platform, key),
                "school": school,
                "tenant_id": tenant_id,
                "conversation_id": conversation_id,
                "service_url": service_url,
                "reference": reference,
                "updated_at": self._stamp(),
                "unreachable_since": None,
            },
            pk=("platform", "scope", "key"),
        )

    def conversation(self, platform: str, scope: str, key: str) -> ConversationReference | None:
        row = self.db.execute(
            "SELECT platform, scope, key, school, tenant_id, conversation_id, service_url,"
            " reference, updated_at, unreachable_since FROM conversation_references"
            " WHERE platform = ? AND scope = ? AND key = ?",
            [platform, scope, _reference_key(platform, key)],
        ).fetchone()
        return ConversationReference(*row) if row else None

    def mark_unreachable(self, platform: str, scope: str, key: str) -> None:
        """The platform refused delivery for good (the app was blocked or removed)."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE conversation_references SET unreachable_since = ?"
                " WHERE platform = ? AND scope = ? AND key = ? AND unreachable_since IS NULL",
                [self._stamp(), platform, scope, _reference_key(platform, key)],
            )

    # feedback --------------------------------------------------------------------

    def record_feedback(self, question_id: int, helpful: bool) -> None:
        """One vote per question; a second click changes the vote."""
        self.db.table("feedback").upsert(
            {"question_id": question_id, "helpful": int(helpful), "at": self._stamp()},
            pk="question_id",
        )

    def feedback(self, question_id: int) -> bool | None:
        row = self.db.execute(
            "SELECT helpful FROM feedback WHERE question_id = ?", [question_id]
        ).fetchone()
        return None if row is None else bool(row[0])

    # platform deliveries -------------------------------------------------------------

    def claim_event(self, platform: str, event_id: str, stale_after: timedelta) -> bool:
        """True if this delivery should be handled now: never seen, or a
        previous attempt failed or has been stuck longer than ``stale_after``
        (so a retry whose first attempt really died is still handled once)."""
        now = self.clock()
        with self.db.atomic():
            row = self.db.execute(
                "SELECT state, updated_at FROM platform_events WHERE platform = ? AND event_id = ?",
                [platform, event_id],
            ).fetchone()
            if row is not None:
                state, updated_at = row
                stuck = now - datetime.fromisoformat(updated_at) > stale_after
                if state == "done" or (state == "handling" and not stuck):
                    return False
            self.db.table("platform_events").upsert(
                {
                    "platform": platform,
                    "event_id": event_id,
                    "state": "handling",
                    "updated_at": now.isoformat(timespec="seconds"),
                },
                pk=("platform", "event_id"),
            )
        return True

    async def handle_once(
        self,
        platform: str,
        event_id: str,
        stale_after: timedelta,
        work: Callable[[], Awaitable[object]],
    ) -> bool:
        """Run ``work`` for a platform delivery unless it was handled already (see
        ``claim_event``); record whether it succeeded. False when skipped."""
        if not self.claim_event(platform, event_id, stale_after):
            return False
        succeeded = False
        try:
            await work()
            succeeded = True
        finally:
            self.finish_event(platform, event_id, succeeded)
        return True

    def finish_event(self, platform: str, event_id: str, succeeded: bool) -> None:
        self.db.table("platform_events").update(
            (platform, event_id),
            {"state": "done" if succeeded else "failed", "updated_at": self._stamp()},
        )
