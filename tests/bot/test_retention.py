"""The retention sweep: each kind of record goes when its time is up, and no sooner.

The database is the one guidebot 0.1.0 made (tests/fixtures), brought up to
date as the server would: two questions (10 and 11 January 2025) with
feedback, a delivery id, a concern closed and exported on 20 January 2025,
and one still open.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import retention
from bot.config import ConfigError
from bot.retention import RetentionSettings, sweep
from bot.schema import migrate_all
from knowledge.store import KnowledgeBase
from tests.fixtures import load_dump

JAN_2025 = datetime(2025, 1, 25, tzinfo=UTC)


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    base = KnowledgeBase(load_dump(tmp_path / "old.db"))
    migrate_all(base.db)
    return base


def count(kb: KnowledgeBase, table: str) -> int:
    return int(kb.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_nothing_goes_before_its_time(kb: KnowledgeBase) -> None:
    before = list(kb.db.conn.iterdump())
    assert sweep(kb.db, RetentionSettings(), JAN_2025) == {
        "questions": 0,
        "feedback": 0,
        "closed_concerns": 0,
        "delivery_ids": 0,
    }
    assert list(kb.db.conn.iterdump()) == before


def test_questions_go_with_their_askers_and_feedback(kb: KnowledgeBase) -> None:
    settings = RetentionSettings(questions_days=365, feedback_days=None)
    # 2025-01-10 09:00 + 365 days has passed, 2025-01-11 10:30 + 365 days has not.
    assert sweep(kb.db, settings, at("2026-01-11T09:00:00"))["questions"] == 1
    assert count(kb, "questions") == count(kb, "question_askers") == count(kb, "feedback") == 1
    assert sweep(kb.db, settings, at("2026-01-11T09:00:00"))["questions"] == 0  # idempotent
    assert sweep(kb.db, settings, at("2026-01-12T00:00:00"))["questions"] == 1
    assert count(kb, "questions") == count(kb, "question_askers") == count(kb, "feedback") == 0


def test_feedback_can_go_sooner_than_the_question(kb: KnowledgeBase) -> None:
    settings = RetentionSettings(questions_days=None, feedback_days=30)
    assert sweep(kb.db, settings, at("2025-03-01T00:00:00"))["feedback"] == 2
    assert count(kb, "questions") == 2 and count(kb, "feedback") == 0


def test_delivery_ids_go_after_their_days(kb: KnowledgeBase) -> None:
    settings = RetentionSettings(delivery_ids_days=30)
    assert sweep(kb.db, settings, at("2025-02-20T00:00:00"))["delivery_ids"] == 1
    assert count(kb, "platform_events") == 0


def test_a_closed_exported_concern_goes_after_its_days_and_the_audit_says_so(
    kb: KnowledgeBase,
) -> None:
    settings = RetentionSettings(closed_concerns_days=90)
    # Exported on 2025-01-20 15:00: 90 days later is 2025-04-20 15:00.
    assert sweep(kb.db, settings, at("2025-04-20T14:59:00"))["closed_concerns"] == 0
    assert sweep(kb.db, settings, at("2025-04-20T15:01:00"))["closed_concerns"] == 1
    refs = [row[0] for row in kb.db.execute("SELECT ref FROM concerns").fetchall()]
    assert refs == ["C-2025-0002"]  # the open one stays, whatever its age
    for table in ("concern_notes", "concern_escalations"):
        assert (
            kb.db.execute(f"SELECT count(*) FROM {table} WHERE ref = 'C-2025-0001'").fetchone()[0]
            == 0
        )
    outbox = [row[0] for row in kb.db.execute("SELECT dedupe_key FROM outbox").fetchall()]
    assert not [key for key in outbox if key.startswith("concern:C-2025-0001:")] or all(
        kb.db.execute("SELECT state FROM outbox WHERE dedupe_key = ?", [key]).fetchone()[0]
        in ("pending", "sending")
        for key in outbox
        if key.startswith("concern:C-2025-0001:")
    )
    trail = kb.db.execute(
        "SELECT actor, action, detail FROM concern_audit WHERE ref = 'C-2025-0001' ORDER BY id"
    ).fetchall()
    assert [row[1] for row in trail][:6] == [
        "submitted",
        "alerted",
        "acknowledged",
        "noted",
        "closed",
        "exported",
    ]
    assert trail[-1] == (
        "guidebot:retention",
        "removed",
        "closed, exported, kept 90 days after export",
    )
    assert sweep(kb.db, settings, at("2030-01-01T00:00:00"))["closed_concerns"] == 0


def test_a_closed_concern_never_exported_since_closing_stays(kb: KnowledgeBase) -> None:
    with kb.db.atomic():
        kb.db.execute(
            "UPDATE concerns SET closed_at = '2025-01-21T09:00:00+00:00' WHERE ref = 'C-2025-0001'"
        )  # closed after its only export: the school's record lacks the closure
    assert sweep(kb.db, RetentionSettings(), at("2031-01-01T00:00:00"))["closed_concerns"] == 0
    assert count(kb, "concerns") == 2


def test_never_keeps_everything(kb: KnowledgeBase) -> None:
    never = retention.parse({key: "never" for key in retention.KEYS} | {"questions_days": 0})
    assert never == RetentionSettings(None, None, None, None)
    assert set(sweep(kb.db, never, at("2099-01-01T00:00:00")).values()) == {0}


def test_a_naive_time_is_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(ValueError):
        sweep(kb.db, RetentionSettings(), datetime(2025, 1, 1))


def test_an_empty_database_is_swept_without_complaint(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "new.db")
    assert set(sweep(kb.db, RetentionSettings(), JAN_2025).values()) == {0}
    kb.close()


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"questions_days": -1}, "retention.questions_days must be a whole number of days"),
        ({"feedback_days": "a year"}, "retention.feedback_days must be a whole number"),
        ({"feedback_days": True}, "retention.feedback_days must be a whole number"),
        ({"concerns_days": 5}, "retention.concerns_days is not a setting guidebot knows"),
        ("365", "retention must be a table"),
    ],
)
def test_bad_settings_name_the_setting(raw: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        retention.parse(raw)


def test_the_defaults() -> None:
    assert retention.parse(None) == retention.parse({}) == RetentionSettings(365, 365, 90, 30)
