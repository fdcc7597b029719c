"""Policy review reminders (and, in the clock-change runs, training reminders)
driven by a fake clock every 15 minutes across the British clock changes:
each is queued once, on the expected London day, at 08:00 London time on a
school day, and never in a configured holiday.

``Rig`` is shared with the training and digest tests: a real SQLite file with
the real KnowledgeBase, Directory, Outbox and SecretBox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import wording
from bot.crypto import SecretBox
from bot.directory import Directory, parse_staff_csv
from bot.messages import Reply
from bot.outbox import Outbox, reply_from_data
from bot.reminders import ReviewError, Reviews, review_step
from bot.school_hours import Holiday, SchoolHours
from bot.training import Training, TrainingSettings
from knowledge.ingest import ingest_files
from knowledge.store import KnowledgeBase

LONDON = ZoneInfo("Europe/London")
SCHOOL = "st-annes"
STAFF = """\
name,email,roles,groups,slack_id,teams_id
Hana Head,head@annes.sch.uk,staff;head,,U0HEAD,
Lee Leader,lee@annes.sch.uk,staff;leader,,U0LEAD,
Olive Owner,olive@annes.sch.uk,staff,,,3f2504e0-4f89-41d3-9a0c-0305e82c3301
Tom Teacher,tom@annes.sch.uk,staff,teaching,U0TOM,
Dina Dsl,dina@annes.sch.uk,staff;dsl,,U0DINA,
Harriet Hr,hr@annes.sch.uk,staff;hr,,U0HR,
"""


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


class Rig:
    """One school on a real database file, with a fake clock."""

    def __init__(self, tmp_path: Path, hours: SchoolHours | None = None) -> None:
        self.tmp_path = tmp_path
        self.kb = KnowledgeBase(tmp_path / "guidebot.db")
        self.db = self.kb.db
        self.clock = Clock(datetime(2026, 9, 1, 9, 0, tzinfo=UTC))
        self.box = SecretBox(bytes(range(32)))
        self.outbox = Outbox(self.db, self.box, clock=self.clock)
        self.directory = Directory(self.db, clock=self.clock)
        self.hours = hours or SchoolHours()
        self.reviews = Reviews(
            self.db, self.directory, self.outbox, lambda school: self.hours, clock=self.clock
        )
        self.training = Training(
            self.db,
            self.directory,
            self.outbox,
            lambda school: self.hours,
            TrainingSettings(),
            clock=self.clock,
        )
        self.directory.import_rows(SCHOOL, parse_staff_csv(STAFF))

    def policy(self, name: str, title: str, review: str | None, owner: str = "") -> str:
        lines = [title, ""]
        if owner:
            lines.append(f"Policy owner: {owner}")
        if review:
            lines.append(f"Next review: {review}")
        lines += ["", "1. Purpose", "", f"1.1 Staff must follow the {title.lower()} at all times."]
        path = self.tmp_path / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        [outcome] = ingest_files(self.kb, SCHOOL, [path], "St Anne's")
        return outcome.policy.key

    def set_local(self, *parts: int) -> None:
        self.clock.moment = datetime(*parts, tzinfo=LONDON).astimezone(UTC)  # type: ignore[misc]

    def queued(self, prefix: str) -> list[tuple[str, datetime, str, str]]:
        """(key, queued at in London, platform, recipient) for keys with ``prefix``."""
        rows = self.db.execute(
            "SELECT dedupe_key, created_at, platform, recipient FROM outbox"
            " WHERE dedupe_key LIKE ? ORDER BY id",
            [prefix + "%"],
        ).fetchall()
        return [
            (key, datetime.fromisoformat(at).astimezone(LONDON), platform, recipient)
            for key, at, platform, recipient in rows
        ]

    def message(self, key: str) -> Reply:
        row = self.outbox.by_key(key)
        assert row is not None, key
        return reply_from_data(row.message.reply)

    def drive(
        self, first: datetime, last: datetime, *sweeps: Callable[[], object], step: int = 15
    ) -> None:
        """Run ``sweeps`` every ``step`` minutes of fake time from ``first`` to ``last``."""
        moment = first.astimezone(UTC)
        while moment <= last:
            self.clock.moment = moment
            for sweep in sweeps:
                sweep()
            moment += timedelta(minutes=step)

    def person_id(self, email: str) -> int:
        person = self.directory.by_email(SCHOOL, email)
        assert person is not None
        return person.id


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.kb.close()


def first_school_day(day: date, hours: SchoolHours) -> date:
    while not hours.is_school_day(day):
        day += timedelta(days=1)
    return day


# --- the steps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2027, 3, 6), None),
        (date(2027, 3, 7), ("28d", date(2027, 3, 7))),
        (date(2027, 3, 27), ("28d", date(2027, 3, 7))),
        (date(2027, 3, 28), ("7d", date(2027, 3, 28))),
        (date(2027, 4, 3), ("7d", date(2027, 3, 28))),
        (date(2027, 4, 4), ("overdue-0", date(2027, 4, 4))),
        (date(2027, 4, 10), ("overdue-0", date(2027, 4, 4))),
        (date(2027, 4, 11), ("overdue-1", date(2027, 4, 11))),
        (date(2027, 5, 2), ("overdue-4", date(2027, 5, 2))),
    ],
)
def test_the_latest_step_due(today: date, expected: tuple[str, date] | None) -> None:
    step = review_step(date(2027, 4, 4), today)
    assert (None if step is None else (step.name, step.due_on)) == expected


# --- across the clock changes ------------------------------------------------------------------


def sent_on(rig: Rig, prefix: str, *, per_person: bool = True) -> dict[str, datetime]:
    """key -> when it was queued, London time; each key once. Review keys end
    with the person, which is left off (``per_person``)."""
    found: dict[str, datetime] = {}
    for key, at, _, _ in rig.queued(prefix):
        short = key.rsplit(":", 1)[0] if per_person else key
        assert short not in found, f"{key} queued twice"
        found[short] = at
    return found


def assert_in_school_hours(rig: Rig, prefix: str) -> None:
    for key, at, _, _ in rig.queued(prefix):
        assert at.weekday() < 5, key
        assert time(8, 0) <= at.time() < time(17, 0), key
        assert rig.hours.holiday(at.date()) is None, key


def test_spring_clock_change_once_each_on_the_right_day_in_school_hours(tmp_path: Path) -> None:
    holiday = Holiday(date(2027, 3, 29), date(2027, 3, 31), "Easter (first days)")
    rig = Rig(tmp_path, SchoolHours(holidays=(holiday,)))
    try:
        a = rig.reviews.review(SCHOOL, rig.policy("a", "Anti-bullying Policy", "4 April 2027"))
        b = rig.reviews.review(SCHOOL, rig.policy("b", "Behaviour Policy", "26 April 2027"))
        c = rig.reviews.review(SCHOOL, rig.policy("c", "Charging Policy", "23 April 2027"))
        assert a and b and c
        tom, dina = rig.person_id("tom@annes.sch.uk"), rig.person_id("dina@annes.sch.uk")
        rig.clock.moment = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
        rig.training.import_rows(
            SCHOOL,
            rig.training.parse_csv(
                SCHOOL,
                "email,course,completed_on\n"
                "tom@annes.sch.uk,kcsie_part1,2026-04-27\n"
                "dina@annes.sch.uk,kcsie_part1,2026-04-05\n",
            ),
        )
        rig.drive(
            datetime(2027, 3, 1, 0, 0, tzinfo=LONDON),
            datetime(2027, 4, 15, 23, 45, tzinfo=LONDON),
            rig.reviews.sweep,
            rig.training.sweep,
        )
        reviews = sent_on(rig, "review:")
        expected = {
            # 28 days before 4 April is Sunday 7 March: Monday 8 March, GMT.
            f"review:{a.policy_id}:2027-04-04:28d": date(2027, 3, 8),
            # 7 days before is Sunday 28 March, the day the clocks go forward; then
            # the holiday (29-31 March): Thursday 1 April, BST.
            f"review:{a.policy_id}:2027-04-04:7d": date(2027, 4, 1),
            f"review:{a.policy_id}:2027-04-04:overdue-0": date(2027, 4, 5),
            f"review:{a.policy_id}:2027-04-04:overdue-1": date(2027, 4, 12),
            # 28 days before 26 April is Monday 29 March: in the holiday.
            f"review:{b.policy_id}:2027-04-26:28d": date(2027, 4, 1),
            # 28 days before Friday 23 April is Friday 26 March, still GMT.
            f"review:{c.policy_id}:2027-04-23:28d": date(2027, 3, 26),
        }
        assert {k: v.date() for k, v in reviews.items()} == expected
        assert all(at.time() == time(8, 0) for at in reviews.values())  # 08:00 on the London clock
        assert {at.utcoffset() for at in reviews.values()} == {
            timedelta(0),
            timedelta(hours=1),
        }
        assert_in_school_hours(rig, "review:")
        # Nobody is named as owner, so the head is reminded, on Slack.
        assert {(p, r) for _, _, p, r in rig.queued("review:")} == {("slack", "U0HEAD")}
        message = rig.message(next(k for k, *_ in rig.queued(f"review:{a.policy_id}:")))
        assert message.text == wording.review_reminder(
            "Anti-bullying Policy", date(2027, 4, 4), date(2027, 3, 8)
        )

        training = sent_on(rig, "training:", per_person=False)
        assert {k: v.date() for k, v in training.items()} == {
            # expires 27 April 2027: 30 days before is Sunday 28 March, then the holiday.
            f"training:{tom}:kcsie_part1:2026-04-27:due": date(2027, 4, 1),
            # expires Monday 5 April: due from Saturday 6 March, expired on the day.
            f"training:{dina}:kcsie_part1:2026-04-05:due": date(2027, 3, 8),
            f"training:{dina}:kcsie_part1:2026-04-05:expired": date(2027, 4, 5),
        }
        assert all(at.time() == time(8, 0) for at in training.values())
        assert_in_school_hours(rig, "training:")
    finally:
        rig.kb.close()


def test_autumn_clock_change_once_each_on_the_right_day_in_school_hours(tmp_path: Path) -> None:
    holiday = Holiday(date(2026, 10, 19), date(2026, 10, 23), "Half term")
    rig = Rig(tmp_path, SchoolHours(holidays=(holiday,)))
    try:
        c = rig.reviews.review(SCHOOL, rig.policy("c", "Complaints Policy", "1 November 2026"))
        d = rig.reviews.review(SCHOOL, rig.policy("d", "Data Policy", "18 November 2026"))
        assert c and d
        tom = rig.person_id("tom@annes.sch.uk")
        rig.training.import_rows(
            SCHOOL,
            rig.training.parse_csv(
                SCHOOL, "email,course,completed_on\ntom@annes.sch.uk,prevent,2023-11-10\n"
            ),
        )
        rig.drive(
            datetime(2026, 10, 1, 0, 0, tzinfo=LONDON),
            datetime(2026, 11, 15, 23, 45, tzinfo=LONDON),
            rig.reviews.sweep,
            rig.training.sweep,
        )
        reviews = sent_on(rig, "review:")
        assert {k: v.date() for k, v in reviews.items()} == {
            f"review:{c.policy_id}:2026-11-01:28d": date(2026, 10, 5),  # BST
            # Sunday 25 October, the day the clocks go back: Monday 26th, GMT.
            f"review:{c.policy_id}:2026-11-01:7d": date(2026, 10, 26),
            f"review:{c.policy_id}:2026-11-01:overdue-0": date(2026, 11, 2),
            f"review:{c.policy_id}:2026-11-01:overdue-1": date(2026, 11, 9),
            # 28 days before Wednesday 18 November is 21 October, in half term.
            f"review:{d.policy_id}:2026-11-18:28d": date(2026, 10, 26),
            f"review:{d.policy_id}:2026-11-18:7d": date(2026, 11, 11),
        }
        assert all(at.time() == time(8, 0) for at in reviews.values())
        assert_in_school_hours(rig, "review:")
        training = sent_on(rig, "training:", per_person=False)
        assert {k: v.date() for k, v in training.items()} == {
            # Prevent, 36 months: expires Tuesday 10 November 2026; due from Sunday 11 October.
            f"training:{tom}:prevent:2023-11-10:due": date(2026, 10, 12),
            f"training:{tom}:prevent:2023-11-10:expired": date(2026, 11, 10),
        }
        assert all(at.time() == time(8, 0) for at in training.values())
    finally:
        rig.kb.close()


# --- catch-up, changes, owners -----------------------------------------------------------------


def test_after_downtime_only_the_latest_step_is_sent(rig: Rig) -> None:
    review = rig.reviews.review(SCHOOL, rig.policy("a", "Anti-bullying Policy", "4 April 2027"))
    assert review is not None
    rig.set_local(2027, 3, 9, 10, 0)  # a Tuesday, the 28-day step due since Sunday
    assert rig.reviews.sweep() == 1
    # Down from then until after the 7-day step and the review date itself.
    rig.set_local(2027, 4, 6, 9, 0)
    assert rig.reviews.sweep() == 1
    assert [k.split(":")[3] for k, *_ in rig.queued("review:")] == ["28d", "overdue-0"]
    # Sweeping again changes nothing.
    assert rig.reviews.sweep() == 0
    rig.set_local(2027, 4, 6, 16, 45)
    assert rig.reviews.sweep() == 0


def test_nothing_is_sent_out_of_hours_and_it_goes_when_school_opens(rig: Rig) -> None:
    rig.policy("a", "Anti-bullying Policy", "4 April 2027")
    rig.set_local(2027, 3, 8, 7, 59)  # Monday, before opening
    assert rig.reviews.sweep() == 0
    rig.set_local(2027, 3, 8, 17, 0)  # closing time
    assert rig.reviews.sweep() == 0
    rig.set_local(2027, 3, 9, 8, 0)
    assert rig.reviews.sweep() == 1


def test_a_changed_review_date_starts_a_fresh_series(rig: Rig) -> None:
    key = rig.policy("a", "Anti-bullying Policy", "4 April 2027")
    rig.set_local(2027, 3, 9, 10, 0)
    assert rig.reviews.sweep() == 1
    changed = rig.reviews.set_review(SCHOOL, key, date(2027, 4, 2))
    assert (changed.next_review, changed.source) == (date(2027, 4, 2), "set")
    assert rig.reviews.sweep() == 1
    keys = [k for k, *_ in rig.queued("review:")]
    assert [k.split(":")[2:4] for k in keys] == [["2027-04-04", "28d"], ["2027-04-02", "28d"]]


def test_set_review_works_for_a_policy_whose_document_states_no_date(rig: Rig) -> None:
    key = rig.policy("e", "E-safety Policy", None)
    before = rig.reviews.review(SCHOOL, key)
    assert before is not None and (before.next_review, before.source) == (None, "none")
    rig.set_local(2027, 3, 9, 10, 0)
    assert rig.reviews.sweep() == 0
    after = rig.reviews.set_review(SCHOOL, key, date(2027, 3, 16), "Olive@annes.sch.uk")
    assert (after.next_review, after.source, after.owner_email) == (
        date(2027, 3, 16),
        "set",
        "olive@annes.sch.uk",
    )
    assert rig.reviews.sweep() == 1
    [(_, _, platform, recipient)] = rig.queued("review:")
    # Olive is only on Teams: her first address.
    assert (platform, recipient) == ("teams", "3f2504e0-4f89-41d3-9a0c-0305e82c3301")


def test_a_new_version_of_the_document_takes_over_a_date_set_by_hand(rig: Rig) -> None:
    key = rig.policy("a", "Anti-bullying Policy", "4 April 2027")
    rig.reviews.set_review(SCHOOL, key, date(2027, 6, 1), "olive@annes.sch.uk")
    set_by_hand = rig.reviews.review(SCHOOL, key)
    assert set_by_hand is not None and set_by_hand.next_review == date(2027, 6, 1)
    rig.policy("a", "Anti-bullying Policy", "1 September 2027")  # reviewed: version 2
    now = rig.reviews.review(SCHOOL, key)
    assert now is not None
    assert (now.version, now.next_review, now.source) == (2, date(2027, 9, 1), "document")
    assert now.owner_email == "olive@annes.sch.uk"  # the owner set by hand stays
    # A version stating no date keeps the date set by hand.
    rig.reviews.set_review(SCHOOL, key, date(2027, 10, 1))
    rig.policy("a", "Anti-bullying Policy", None)
    kept = rig.reviews.review(SCHOOL, key)
    assert kept is not None and (kept.next_review, kept.source) == (date(2027, 10, 1), "set")


def test_who_is_reminded(rig: Rig) -> None:
    by_email = rig.reviews.review(
        SCHOOL, rig.policy("a", "Attendance Policy", "1 May 2027", "tom@annes.sch.uk")
    )
    by_name = rig.reviews.review(
        SCHOOL, rig.policy("b", "Behaviour Policy", "1 May 2027", "Dina Dsl")
    )
    by_role = rig.reviews.review(
        SCHOOL, rig.policy("c", "Charging Policy", "1 May 2027", "Headteacher")
    )
    assert by_email and by_name and by_role
    assert [p.email for p in rig.reviews.recipients(by_email)] == ["tom@annes.sch.uk"]
    assert [p.email for p in rig.reviews.recipients(by_name)] == ["dina@annes.sch.uk"]
    assert [p.email for p in rig.reviews.recipients(by_role)] == ["head@annes.sch.uk"]
    # With no head in the directory, the leaders.
    rig.directory.import_rows(SCHOOL, parse_staff_csv(STAFF.replace("staff;head", "staff")))
    assert [p.email for p in rig.reviews.recipients(by_role)] == ["lee@annes.sch.uk"]


def test_set_review_refuses_an_unknown_policy_or_owner(rig: Rig) -> None:
    key = rig.policy("a", "Anti-bullying Policy", "4 April 2027")
    with pytest.raises(ReviewError, match="no policy 'nope'"):
        rig.reviews.set_review(SCHOOL, "nope", date(2027, 5, 1))
    with pytest.raises(ReviewError, match=r"stranger@annes\.sch\.uk is not in st-annes"):
        rig.reviews.set_review(SCHOOL, key, date(2027, 5, 1), "stranger@annes.sch.uk")
    unchanged = rig.reviews.review(SCHOOL, key)
    assert unchanged is not None and unchanged.source == "document"


def test_due_within_lists_upcoming_and_overdue_soonest_first(rig: Rig) -> None:
    rig.policy("a", "Anti-bullying Policy", "4 April 2027")
    rig.policy("b", "Behaviour Policy", "1 March 2027")
    rig.policy("c", "Charging Policy", "1 September 2027")
    rig.policy("e", "E-safety Policy", None)
    due = rig.reviews.due_within(SCHOOL, date(2027, 3, 10), 28)
    assert [r.title for r in due] == ["Behaviour Policy", "Anti-bullying Policy"]


def test_policies_set_review_from_the_command_line(rig: Rig) -> None:
    from click.testing import CliRunner

    from bot.cli import cli

    rig.policy("e", "E-safety Policy", None)
    path = rig.tmp_path / "guidebot.db"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "--db",
            str(path),
            "policies",
            "set-review",
            "--school",
            SCHOOL,
            "--policy",
            "e",
            "--date",
            "2027-03-16",
            "--owner",
            "olive@annes.sch.uk",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "16 March 2027" in result.output or "2027-03-16" in result.output
    listed = runner.invoke(cli, ["--db", str(path), "policies", "--school", SCHOOL])
    assert listed.exit_code == 0, listed.output
    assert "2027-03-16 (set with set-review)" in listed.output
    assert "olive@annes.sch.uk" in listed.output
    bad = runner.invoke(
        cli,
        ["--db", str(path), "policies", "set-review", "--school", SCHOOL, "--policy", "e",
         "--date", "16/03/2027"],
    )  # fmt: skip
    assert bad.exit_code == 2
    assert "--date" in bad.output
