"""The operational records: questions, askers, gaps, feedback, platform deliveries.

Real SQLite in a temporary file, and a clock the tests move by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from bot.storage import MIGRATIONS, WITHHELD, Operations
from knowledge.store import KnowledgeBase

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
STALE = timedelta(minutes=5)


class Clock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    kb = KnowledgeBase(tmp_path / "operations.db")
    yield kb
    kb.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def ops(kb: KnowledgeBase, clock: Clock) -> Operations:
    return Operations(kb.db, clock)


def ask(
    ops: Operations,
    text: str,
    *,
    user: str = "U1",
    school: str = "st-annes",
    platform: str = "slack",
    answered: bool = True,
    concern: bool = False,
) -> int:
    return ops.record_question(
        school, platform, user, text, answered=answered, offer_report=concern
    )


def every_row(kb: KnowledgeBase) -> str:
    return "\n".join(kb.db.conn.iterdump())


# --- questions and who asked them -------------------------------------------------------


def test_questions_and_askers_are_stored_apart(kb: KnowledgeBase, ops: Operations) -> None:
    question_id = ask(ops, "  can I use my own phone on a trip?  ", user="U0ASKER")

    columns = {column.name for column in kb.db.table("questions").columns}
    assert not {c for c in columns if "user" in c or "asker" in c}
    row = kb.db.table("questions").get(question_id)
    assert "U0ASKER" not in {str(value) for value in row.values()}
    assert row["text"] == "can I use my own phone on a trip?"
    assert row["asked_at"] == START.isoformat(timespec="seconds")

    askers = list(kb.db.table("question_askers").rows)
    assert askers == [{"question_id": question_id, "platform": "slack", "user_id": "U0ASKER"}]
    assert ops.asked_by(question_id, "slack", "U0ASKER")
    assert not ops.asked_by(question_id, "slack", "U0SOMEONE")
    assert not ops.asked_by(question_id, "teams", "U0ASKER")


def test_a_possible_concern_is_stored_only_as_withheld(kb: KnowledgeBase, ops: Operations) -> None:
    question_id = ask(ops, "a girl in my class told me her dad hits her", concern=True)
    stored = ops.question(question_id)
    assert stored is not None
    assert stored.text == WITHHELD
    assert "dad hits" not in every_row(kb)
    assert kb.db.table("questions").get(question_id)["withheld"] == 1


def test_question_by_id(ops: Operations) -> None:
    question_id = ask(ops, "what is the dress code?", answered=False, school="kaleidoscope")
    stored = ops.question(question_id)
    assert stored is not None
    assert (stored.id, stored.school, stored.text, stored.answered) == (
        question_id,
        "kaleidoscope",
        "what is the dress code?",
        False,
    )
    assert ops.question(question_id + 1) is None


def test_recent_questions_are_one_users_newest_first_without_withheld_ones(
    ops: Operations,
) -> None:
    first = ask(ops, "first question")
    ask(ops, "someone else's question", user="U2")
    ask(ops, "my worry about a pupil", concern=True)
    third = ask(ops, "third question", answered=False)
    ask(ops, "same user id on teams", platform="teams")

    recent = ops.recent_questions("slack", "U1")
    assert [q.id for q in recent] == [third, first]
    assert [q.text for q in recent] == ["third question", "first question"]
    assert all(q.text != WITHHELD for q in recent)
    assert [q.id for q in ops.recent_questions("slack", "U1", limit=1)] == [third]
    assert [q.text for q in ops.recent_questions("teams", "U1")] == ["same user id on teams"]
    assert ops.recent_questions("slack", "U0NOBODY") == []


def test_gaps_are_unanswered_questions_of_one_school_oldest_first(ops: Operations) -> None:
    ask(ops, "answered one")
    gap_one = ask(ops, "what time does the canteen open?", answered=False)
    ask(ops, "I am worried a pupil is being hurt at home", answered=False, concern=True)
    ask(ops, "another school's gap", answered=False, school="kaleidoscope")
    gap_two = ask(ops, "who orders the minibus?", answered=False, user="U2")

    gaps = ops.gaps("st-annes")
    assert [g.id for g in gaps] == [gap_one, gap_two]
    assert [g.text for g in gaps] == ["what time does the canteen open?", "who orders the minibus?"]
    assert not any(g.answered for g in gaps)
    assert [g.text for g in ops.gaps("kaleidoscope")] == ["another school's gap"]
    assert ops.gaps("crossflatts") == []


def test_a_question_is_passed_on_once(ops: Operations, clock: Clock) -> None:
    question_id = ask(ops, "who orders the minibus?", answered=False)
    assert ops.mark_passed_on(question_id) is True
    clock.advance(timedelta(hours=1))
    assert ops.mark_passed_on(question_id) is False
    row = ops.db.table("questions").get(question_id)
    assert row["passed_on_at"] == START.isoformat(timespec="seconds")
    assert ops.mark_passed_on(question_id + 100) is False


# --- feedback ---------------------------------------------------------------------------


def test_feedback_is_one_changeable_vote_per_question(ops: Operations, clock: Clock) -> None:
    question_id = ask(ops, "can I accept a friend request from an ex-pupil?")
    other = ask(ops, "can I post photos of pupils?")
    assert ops.feedback(question_id) is None

    ops.record_feedback(question_id, helpful=True)
    assert ops.feedback(question_id) is True
    clock.advance(timedelta(minutes=2))
    ops.record_feedback(question_id, helpful=False)
    assert ops.feedback(question_id) is False
    ops.record_feedback(question_id, helpful=False)

    rows = list(ops.db.table("feedback").rows_where("question_id = ?", [question_id]))
    assert len(rows) == 1
    assert rows[0]["at"] == (START + timedelta(minutes=2)).isoformat(timespec="seconds")
    assert ops.feedback(other) is None


# --- platform deliveries ----------------------------------------------------------------


def state(ops: Operations, event_id: str, platform: str = "slack") -> str:
    return str(ops.db.table("platform_events").get((platform, event_id))["state"])


def test_a_new_event_is_claimed_and_a_fresh_duplicate_is_not(ops: Operations, clock: Clock) -> None:
    assert ops.claim_event("slack", "Ev1", STALE) is True
    assert state(ops, "Ev1") == "handling"
    assert ops.claim_event("slack", "Ev1", STALE) is False
    clock.advance(STALE - timedelta(seconds=1))
    assert ops.claim_event("slack", "Ev1", STALE) is False
    clock.advance(timedelta(seconds=1))  # exactly stale_after old: not yet stuck
    assert ops.claim_event("slack", "Ev1", STALE) is False


def test_a_handled_event_is_never_claimed_again(ops: Operations, clock: Clock) -> None:
    assert ops.claim_event("slack", "Ev2", STALE) is True
    ops.finish_event("slack", "Ev2", succeeded=True)
    assert state(ops, "Ev2") == "done"
    assert ops.claim_event("slack", "Ev2", STALE) is False
    clock.advance(timedelta(days=2))
    assert ops.claim_event("slack", "Ev2", STALE) is False
    assert state(ops, "Ev2") == "done"


def test_a_failed_event_can_be_claimed_again(ops: Operations) -> None:
    assert ops.claim_event("slack", "Ev3", STALE) is True
    ops.finish_event("slack", "Ev3", succeeded=False)
    assert state(ops, "Ev3") == "failed"
    assert ops.claim_event("slack", "Ev3", STALE) is True
    assert state(ops, "Ev3") == "handling"
    assert ops.claim_event("slack", "Ev3", STALE) is False


def test_an_event_stuck_in_handling_longer_than_stale_after_is_claimed_again(
    ops: Operations, clock: Clock
) -> None:
    assert ops.claim_event("slack", "Ev4", STALE) is True
    clock.advance(STALE + timedelta(seconds=1))
    assert ops.claim_event("slack", "Ev4", STALE) is True
    row = ops.db.table("platform_events").get(("slack", "Ev4"))
    assert row["updated_at"] == clock().isoformat(timespec="seconds")
    assert ops.claim_event("slack", "Ev4", STALE) is False  # the new claim is fresh


def test_the_same_event_id_on_another_platform_is_a_different_event(ops: Operations) -> None:
    assert ops.claim_event("slack", "shared-id", STALE) is True
    assert ops.claim_event("teams", "shared-id", STALE) is True
    ops.finish_event("teams", "shared-id", succeeded=True)
    assert state(ops, "shared-id", "slack") == "handling"


# --- migrations -------------------------------------------------------------------------


def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    for _ in range(2):
        kb = KnowledgeBase(path)
        Operations(kb.db)
        Operations(kb.db)
        names = [row["name"] for row in kb.db.table("_migrations").rows]
        kb.close()
        for name, _step in MIGRATIONS:
            assert names.count(name) == 1
    kb = KnowledgeBase(path)
    tables = set(kb.db.table_names())
    kb.close()
    assert {"questions", "question_askers", "feedback", "platform_events"} <= tables


async def test_handle_once_runs_a_delivery_once_and_again_only_after_a_failure(
    ops: Operations,
) -> None:
    runs: list[str] = []

    async def work() -> None:
        runs.append("run")

    async def broken() -> None:
        runs.append("broken")
        raise RuntimeError("the platform was down")

    stale = timedelta(minutes=5)
    assert await ops.handle_once("slack", "Ev1", stale, work) is True
    assert await ops.handle_once("slack", "Ev1", stale, work) is False  # a retry: skipped
    with pytest.raises(RuntimeError):
        await ops.handle_once("slack", "Ev2", stale, broken)
    assert await ops.handle_once("slack", "Ev2", stale, work) is True  # failed: handled again
    assert await ops.handle_once("slack", "Ev2", stale, work) is False
    assert runs == ["run", "broken", "run"]


def test_a_teams_reference_is_found_whatever_the_case_of_the_object_id(tmp_path: Path) -> None:
    """Activities, settings and the staff directory spell the same GUID differently."""
    db = sqlite_utils.Database(tmp_path / "ops.db")
    ops = Operations(db)
    guid = "6F1C2D3E-4A5B-4C6D-8E9F-0A1B2C3D4E5F"
    ops.remember_conversation("teams", "user", guid, "st-annes", "a:1", "{}")
    found = ops.conversation("teams", "user", guid.lower())
    assert found is not None and found.conversation_id == "a:1"
    ops.mark_unreachable("teams", "user", guid.lower())
    again = ops.conversation("teams", "user", guid)
    assert again is not None and again.unreachable_since is not None
    # Slack ids are case-sensitive and left alone.
    ops.remember_conversation("slack", "user", "U0ABC", "st-annes", "D1", "{}")
    assert ops.conversation("slack", "user", "u0abc") is None
