"""The weekly HR digest over a seeded week (the week of the autumn clock change,
Monday 19 to Sunday 25 October 2026 in London): exact counts, the median time
to acknowledgement, and never a concern's text, reference or reporter, nor
who asked a question, in the digest or in the outbox's (decrypted) copy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.broadcasts import Broadcasts, Draft
from bot.cli import cli
from bot.concerns import ConcernForm, Concerns, Person
from bot.config import ConfigError, SafeguardingSettings, parse
from bot.digest import Digests, DigestSettings, SchoolDigest, week_bounds
from bot.directory import parse_staff_csv
from bot.storage import Operations
from tests.bot.test_reminders import LONDON, SCHOOL, STAFF, Rig

ASKERS = ("U0ASKERONE", "U0ASKERTWO", "U0QUENTIN")
ASKER_NAME = "Quentin Asker"
STAFF_WITH_ASKER = STAFF + f"{ASKER_NAME},quentin@annes.sch.uk,staff,,U0QUENTIN,\n"
SECRET_WORDS = ("Zanzibarquokka", "Quillonfeather", "Bramblemoor", "Pemberwick")
REPORTER = Person("slack", "U0REPORTERX")
DSL = "slack:U0DINA"


@dataclass
class Seeded:
    rig: Rig
    digests: Digests
    concerns: Concerns
    refs: list[str]
    broadcast_title: str


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=LONDON).astimezone(UTC)  # type: ignore[misc]


def seed(rig: Rig) -> Seeded:
    rig.directory.import_rows(SCHOOL, parse_staff_csv(STAFF_WITH_ASKER))
    ops = Operations(rig.db, clock=rig.clock)
    concerns = Concerns(
        rig.db, rig.box, lambda school: SafeguardingSettings(dsl=(DSL,)), rig.outbox, rig.clock
    )

    def ask(moment: datetime, asker: int, text: str, answered: bool, **kw: object) -> int:
        rig.clock.moment = moment
        return ops.record_question(
            SCHOOL,
            "slack",
            ASKERS[asker],
            text,
            answered=answered,
            offer_report=bool(kw.get("offer_report", False)),
            policy=kw.get("policy"),  # type: ignore[arg-type]
            section=kw.get("section"),  # type: ignore[arg-type]
        )

    social = {"policy": "Social Media Policy", "section": "5. Acceptable use"}
    phones = {"policy": "Mobile Phone Policy", "section": "2. Staff phones"}
    # Before the week (Sunday 18th, 23:59 London) and after it (Monday 26th, 00:30).
    ask(at(2026, 10, 18, 23, 59), 0, "Outside before: can I vape on site?", False)
    ask(at(2026, 10, 26, 0, 30), 0, "Outside after: can I park in the bus bay?", False)
    # In the week, the first at 00:15 on Monday (still Sunday in UTC: BST).
    q1 = ask(at(2026, 10, 19, 0, 15), 0, "Can I friend an ex-pupil?", True, **social)
    ask(at(2026, 10, 19, 10, 0), 1, "Can I post photos of the trip?", True, **social)
    q3 = ask(at(2026, 10, 20, 11, 0), 2, "Can I use my phone in class?", True, **phones)
    ask(at(2026, 10, 21, 9, 0), 1, "Who organises the Christmas jumper day?", False)
    ask(at(2026, 10, 22, 9, 0), 2, "What is the dress code for INSET days?", False)
    ask(at(2026, 10, 23, 9, 0), 0, f"{SECRET_WORDS[0]} told me something worrying", False,
        offer_report=True)  # fmt: skip
    # Sunday 25th, after the clocks went back: 23:30 GMT is still in the week.
    ask(at(2026, 10, 25, 23, 30), 1, "Can staff accept gifts from parents?", True, **social)
    # Feedback: two "not helpful" in the week, one helpful, one not helpful the week after.
    rig.clock.moment = at(2026, 10, 20, 12, 0)
    ops.record_feedback(q1, helpful=False)
    ops.record_feedback(q3, helpful=False)
    q_after = ask(at(2026, 10, 26, 9, 0), 2, "Can I bring my dog to school?", True, **phones)
    rig.clock.moment = at(2026, 10, 26, 9, 5)
    ops.record_feedback(q_after, helpful=False)

    # Concerns: (submitted, minutes to acknowledge or None, closed at or None).
    refs: list[str] = []
    plan = [
        (at(2026, 10, 12, 10, 0), 20, at(2026, 10, 21, 15, 0)),  # last week, closed this week
        (at(2026, 10, 19, 10, 0), 12, None),
        (at(2026, 10, 20, 14, 0), 30, at(2026, 10, 22, 9, 0)),
        (at(2026, 10, 21, 9, 0), 5, None),
        (at(2026, 10, 23, 16, 0), 50, None),
        (at(2026, 10, 24, 11, 0), None, None),  # Saturday, not acknowledged
        (at(2026, 10, 26, 0, 30), 3, None),  # next week
    ]
    for submitted, minutes, closed in plan:
        rig.clock.moment = submitted
        ref = concerns.submit(
            SCHOOL,
            REPORTER,
            ConcernForm("pupil", SECRET_WORDS[1], SECRET_WORDS[0], SECRET_WORDS[2], False,
                        SECRET_WORDS[3]),
        ).ref  # fmt: skip
        refs.append(ref)
        if minutes is not None:
            rig.clock.moment = submitted + timedelta(minutes=minutes)
            concerns.acknowledge(ref, Person.parse(DSL))
        if closed is not None:
            rig.clock.moment = closed
            concerns.close(ref, Person.parse(DSL), "Referred to early help")

    # A broadcast in the week (two acknowledge) and one the week before.
    broadcasts = Broadcasts(rig.db, rig.outbox, rig.directory, clock=rig.clock)
    rig.clock.moment = at(2026, 10, 13, 9, 0)
    broadcasts.create(SCHOOL, "slack", "U0LEAD", Draft("Old news", "Last week's message"))
    rig.clock.moment = at(2026, 10, 20, 9, 0)
    sent = broadcasts.create(SCHOOL, "slack", "U0LEAD", Draft("Phones update", "Please read"))
    rig.clock.moment = at(2026, 10, 20, 10, 0)
    assert broadcasts.acknowledge(sent.id, "slack", "U0TOM") == "recorded"
    assert broadcasts.acknowledge(sent.id, "slack", "U0HR") == "recorded"
    assert broadcasts.acknowledge(sent.id, "slack", "U0QUENTIN") == "recorded"

    # Training: Tom's Prevent ran out; Harriet's refresher runs out on 10 November.
    rig.clock.moment = at(2026, 10, 1, 9, 0)
    rig.training.import_rows(
        SCHOOL,
        rig.training.parse_csv(
            SCHOOL,
            "email,course,completed_on\n"
            "tom@annes.sch.uk,prevent,2023-09-01\n"
            "hr@annes.sch.uk,safeguarding_refresher,2025-11-10\n"
            + "".join(
                f"quentin@annes.sch.uk,{course},2026-09-01\n"
                for course in (
                    "kcsie_part1",
                    "safeguarding_refresher",
                    "safeguarding_full",
                    "prevent",
                )
            ),
        ),
    )
    # Policies: one due for review within 28 days of 26 October, one overdue, one later.
    rig.policy("a", "Anti-bullying Policy", "13 November 2026")
    rig.policy("b", "Behaviour Policy", "1 October 2026")
    rig.policy("c", "Charging Policy", "1 March 2027")

    digests = Digests(
        rig.db,
        rig.directory,
        rig.outbox,
        rig.reviews,
        rig.training,
        lambda school: rig.hours,
        DigestSettings(schools={SCHOOL: SchoolDigest(slack_channel="C0HRDIGEST")}),
        broadcasts=broadcasts,
        clock=rig.clock,
        channel_recipient=lambda school, channel: f"T0ANNES:{channel}",
    )
    return Seeded(rig, digests, concerns, refs, "Phones update")


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    rig = Rig(tmp_path)
    yield seed(rig)
    rig.kb.close()


def forbidden(seeded: Seeded) -> list[str]:
    """Anything that must never appear in a digest."""
    return [
        *SECRET_WORDS,
        *seeded.refs,
        REPORTER.id,
        *ASKERS,
        ASKER_NAME,
        "Quentin",
        "C-2026",
        "early help",
    ]


def test_the_week_is_monday_to_monday_on_the_london_clock() -> None:
    from bot.school_hours import SchoolHours

    start, end = week_bounds(date(2026, 10, 22), SchoolHours())
    assert start == datetime(2026, 10, 18, 23, 0, tzinfo=UTC)  # Monday 00:00 BST
    assert end == datetime(2026, 10, 26, 0, 0, tzinfo=UTC)  # Monday 00:00 GMT
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(days=7, hours=1)


def test_the_seeded_week_has_the_expected_counts(seeded: Seeded) -> None:
    digest = seeded.digests.build(SCHOOL, date(2026, 10, 21))
    assert (digest.asked, digest.answered) == (7, 4)
    assert digest.top_topics == (
        ("Social Media Policy", "5. Acceptable use", 3),
        ("Mobile Phone Policy", "2. Staff phones", 1),
    )
    assert digest.gaps == (
        "Who organises the Christmas jumper day?",
        "What is the dress code for INSET days?",
    )
    assert digest.held_back == 1
    assert [(n.question, n.policy, n.section) for n in digest.not_helpful] == [
        ("Can I friend an ex-pupil?", "Social Media Policy", "5. Acceptable use"),
        ("Can I use my phone in class?", "Mobile Phone Policy", "2. Staff phones"),
    ]
    c = digest.concerns
    assert (c.new, c.acknowledged, c.closed, c.open) == (5, 4, 2, 4)
    assert c.median_ack_minutes == pytest.approx(21.0)  # of 12, 30, 5 and 50
    assert digest.broadcasts is not None
    [broadcast] = digest.broadcasts
    assert (broadcast.title, broadcast.acknowledged) == ("Phones update", 3)
    assert "Tom Teacher" not in broadcast.outstanding
    assert "Hana Head" in broadcast.outstanding
    assert [(t.person.name, t.course.id) for t in digest.training_due] == [
        ("Harriet Hr", "safeguarding_refresher")
    ]
    overdue = {(t.person.name, t.course.id, t.state) for t in digest.training_overdue}
    assert ("Tom Teacher", "prevent", "expired") in overdue
    assert ("Dina Dsl", "dsl_training", "missing") in overdue
    assert not any(name == ASKER_NAME for name, _, _ in overdue)
    assert [r.title for r in digest.reviews] == ["Behaviour Policy", "Anti-bullying Policy"]


def test_the_text_says_it_all_and_names_nobody_it_must_not(seeded: Seeded) -> None:
    digest = seeded.digests.build(SCHOOL, date(2026, 10, 21))
    text = seeded.digests.render(digest).text
    assert text.startswith("Weekly digest for St Anne's: 19 October 2026 to 25 October 2026")
    assert "Questions: 7 questions asked, 4 answered from the policies." in text
    assert "• Social Media Policy, 5. Acceptable use (3)" in text
    assert "• “Who organises the Christmas jumper day?”" in text
    assert "1 more was not stored" in text
    assert "• “Can I use my phone in class?”: answered from Mobile Phone Policy" in text
    status = digest.broadcasts[0] if digest.broadcasts else None
    assert status is not None
    rate = round(100 * status.acknowledged / status.recipients)
    assert f"Phones update: 3 of {status.recipients} acknowledged ({rate}%)" in text
    assert "Still to acknowledge: " + ", ".join(status.outstanding) in text
    assert "Old news" not in text
    assert "Tom Teacher: Prevent duty training (ran out 1 September 2026)" in text
    assert "• Designated Safeguarding Lead training: no record for Dina Dsl\n" in text
    assert "Behaviour Policy: overdue since 1 October 2026" in text
    assert "Anti-bullying Policy: due 13 November 2026" in text
    assert "Charging Policy" not in text
    assert (
        "Safeguarding concerns (numbers only): 5 new, 4 acknowledged, 2 closed this week; "
        "4 open at the end of the week. Median time to acknowledgement: 21 minutes."
    ) in text
    for word in forbidden(seeded):
        assert word not in text, word
    assert "Outside" not in text and "dog" not in text


def test_sent_once_at_monday_eight_to_hr_and_the_channel_sealed_and_clean(seeded: Seeded) -> None:
    rig = seeded.rig
    rig.set_local(2026, 10, 26, 7, 59)
    assert seeded.digests.sweep() == 0
    rig.set_local(2026, 10, 26, 8, 0)
    assert seeded.digests.sweep() == 2
    rig.set_local(2026, 10, 26, 8, 15)
    assert seeded.digests.sweep() == 0
    rig.set_local(2026, 10, 29, 14, 0)
    assert seeded.digests.sweep() == 0
    rows = rig.queued("digest:")
    hr = rig.person_id("hr@annes.sch.uk")
    assert sorted((k, p, r) for k, _, p, r in rows) == [
        (f"digest:{SCHOOL}:2026-W43:channel-C0HRDIGEST", "slack", "T0ANNES:C0HRDIGEST"),
        (f"digest:{SCHOOL}:2026-W43:person-{hr}", "slack", "U0HR"),
    ]
    assert all(at.time() == time(8, 0) for _, at, _, _ in rows)
    for key, *_ in rows:
        row = rig.outbox.by_key(key)
        assert row is not None
        payload = json.dumps(row.message.reply, ensure_ascii=False)
        assert "5 new, 4 acknowledged" in payload
        for word in forbidden(seeded):
            assert word not in payload, word
    # What is stored in the database file is sealed.
    stored = rig.db.execute(
        "SELECT payload FROM outbox WHERE dedupe_key LIKE 'digest:%'"
    ).fetchall()
    assert stored and all("5 new" not in p for (p,) in stored)
    # The next week's digest is a new one.
    rig.set_local(2026, 11, 2, 8, 0)
    assert seeded.digests.sweep() == 2


def test_a_school_with_nobody_to_send_to_is_skipped(seeded: Seeded) -> None:
    seeded.digests.settings = DigestSettings(roles=("head",), schools={})
    seeded.rig.directory.import_rows(
        SCHOOL, parse_staff_csv(STAFF_WITH_ASKER.replace("staff;head", "staff"))
    )
    seeded.rig.set_local(2026, 10, 26, 9, 0)
    assert seeded.digests.sweep() == 0
    assert seeded.rig.queued("digest:") == []


def test_digest_settings_are_read_and_checked() -> None:
    settings = parse(
        {
            "digest": {"day": "Friday", "time": "15:30", "roles": ["hr", "head"]},
            "schools": {
                "st-annes": {"digest": {"slack_channel": "C0123ABC", "roles": []}},
            },
        },
        {},
    ).schedule.digest
    assert (settings.weekday, settings.at, settings.roles) == (4, time(15, 30), ("hr", "head"))
    assert settings.school("st-annes").slack_channel == "C0123ABC"
    assert settings.roles_for("st-annes") == ()
    assert settings.roles_for("crossflatts") == ("hr", "head")
    with pytest.raises(ConfigError, match=r"schools\.st-annes\.digest\.slack_channel"):
        parse({"schools": {"st-annes": {"digest": {"slack_channel": "#staffroom"}}}}, {})
    with pytest.raises(ConfigError, match=r"digest\.day"):
        parse({"digest": {"day": "someday"}}, {})
    with pytest.raises(ConfigError, match=r"digest\.roles"):
        parse({"digest": {"roles": ["governor"]}}, {})


def test_preview_from_the_command_line(
    seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GUIDEBOT_CONFIG", raising=False)
    runner = CliRunner()
    db = str(tmp_path / "guidebot.db")
    result = runner.invoke(
        cli, ["--db", db, "digest", "--school", SCHOOL, "--preview", "--week-of", "2026-10-21"]
    )
    assert result.exit_code == 0, result.output
    assert "Weekly digest for St Anne's: 19 October 2026 to 25 October 2026" in result.output
    assert "5 new, 4 acknowledged, 2 closed" in result.output
    for word in forbidden(seeded):
        assert word not in result.output, word
    refused = runner.invoke(cli, ["--db", db, "digest", "--school", SCHOOL])
    assert refused.exit_code == 2 and "--preview" in refused.output
