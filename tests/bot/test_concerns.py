"""Safeguarding concerns over a real SQLite file, the real SecretBox and the real
Outbox, with an injected clock: encryption at rest, KCSIE routing, one
transaction per change, access control, escalation and the audit trail."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import wording
from bot.answers import Answerer, PrefillCache
from bot.concerns import (
    AccessRefused,
    ConcernForm,
    ConcernFormError,
    Concerns,
    NoRecipients,
    Person,
    UnknownConcern,
    route,
)
from bot.config import ConfigError, SafeguardingSettings, parse
from bot.crypto import SecretBox, generate_key
from bot.messages import Action, Click, FormRequest, Incoming, Reply
from bot.outbox import Outbox, reply_from_data
from bot.storage import Operations
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

DSL = "slack:U0DSL0001"
DSL2 = "slack:U0DSL0002"
DEPUTY = "slack:U0DEP0001"
HEAD = "slack:U0HEAD001"
CHAIR = "teams:3f2504e0-4f89-41d3-9a0c-0305e82c3301"
REPORTER = Person("slack", "U0STAFF01")
STRANGER = Person("slack", "U0OTHER01")
LADO = "Lancashire LADO team, 01772 536694"

FULL = SafeguardingSettings(
    dsl=(DSL, DSL2), deputies=(DEPUTY,), headteacher=(HEAD,), chair_of_governors=(CHAIR,)
)

# Distinctive words that must never reach the database file or a log line.
NAME = "Quillonfeather"
WHAT = "Zanzibarquokka said her uncle hurt her arm"
WHEN = "Bramblemoor cloakroom, Tuesday"
ACTIONS = "Pemberwick gave first aid"
NOTE = "Marshwiggle phoned children's social care"
OUTCOME = "Thistlequorn referral accepted"
SECRET_WORDS = ("Quillonfeather", "Zanzibarquokka", "Bramblemoor", "Pemberwick", "Marshwiggle")
SECRET_WORDS += ("Thistlequorn",)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, moment: datetime = START) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def form(
    about: Any = "pupil",
    *,
    urgent: bool = False,
    role: Any = "none",
    person: str | None = None,
    what: str = WHAT,
    name: str = NAME,
) -> ConcernForm:
    return ConcernForm(
        about=about,
        about_name=name,
        what=what,
        when_where=WHEN,
        immediate_danger=urgent,
        actions_taken=ACTIONS,
        about_role=role,
        about_person=person,
    )


class World:
    """One school's safeguarding on a real database file."""

    def __init__(self, path: Path, settings: SafeguardingSettings) -> None:
        self.path = path
        self.kb = KnowledgeBase(path)
        self.db = self.kb.db
        self.clock = Clock()
        self.box = SecretBox.from_key(generate_key())
        self.schools = {"st-annes": settings}
        self.outbox = Outbox(self.db, self.box, clock=self.clock)
        self.concerns = Concerns(
            self.db, self.box, self.schools.__getitem__, self.outbox, clock=self.clock
        )

    def set_roles(self, settings: SafeguardingSettings) -> None:
        self.schools["st-annes"] = settings

    def submit(self, concern: ConcernForm | None = None) -> str:
        return self.concerns.submit("st-annes", REPORTER, concern or form()).ref

    def rows(self, where: str = "", *args: Any) -> list[tuple[str, str, str]]:
        sql = "SELECT dedupe_key, platform, recipient FROM outbox"
        return [tuple(r) for r in self.db.execute(f"{sql} {where} ORDER BY id", args).fetchall()]

    def message(self, dedupe_key: str) -> Reply:
        row = self.outbox.by_key(dedupe_key)
        assert row is not None, dedupe_key
        return reply_from_data(row.message.reply)

    def alerted(self, ref: str) -> set[str]:
        """Everyone with an alert or an escalation for ``ref`` in the outbox."""
        keys = [r[0] for r in self.rows()]
        prefixes = (f"concern:{ref}:alert:", f"concern:{ref}:escalation:")
        return {
            k.rsplit(":", 2)[-2] + ":" + k.rsplit(":", 1)[-1]
            for k in keys
            if k.startswith(prefixes)
        }

    def actions(self, ref: str) -> list[tuple[str, str, bool]]:
        return [(a.actor, a.action, a.allowed) for a in self.concerns.audit_trail(ref)]

    def count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path / "guidebot.db", FULL)
    yield made
    made.kb.close()


def recipients_of(world: World, ref: str) -> set[str]:
    """Who may handle ``ref`` (as stored), without an audited view."""
    row = world.db.execute("SELECT recipients FROM concerns WHERE ref = ?", [ref]).fetchone()
    return set(json.loads(row[0]))


# --- encryption at rest -----------------------------------------------------------------------


def test_the_database_files_hold_none_of_what_was_written(tmp_path: Path) -> None:
    # Content in alerts too, so the outbox's copy is checked as well.
    world = World(tmp_path / "guidebot.db", replace(FULL, show_content_in_alert=True))
    ref = world.submit()
    world.concerns.add_note(ref, Person.parse(DSL), NOTE)
    world.concerns.close(ref, Person.parse(DSL), OUTCOME)
    view = world.concerns.view(ref, Person.parse(DSL))
    assert (view.form.what, view.notes[0].text, view.outcome) == (WHAT, NOTE, OUTCOME)

    files = [p for p in tmp_path.iterdir() if p.name.startswith("guidebot.db")]
    assert {p.name for p in files} >= {"guidebot.db", "guidebot.db-wal"}
    raw = b"".join(p.read_bytes() for p in files)
    assert ref.encode() in raw  # the scan does see what was written
    for word in SECRET_WORDS:
        for encoding in ("utf-8", "utf-16-le"):
            assert word.encode(encoding) not in raw, word
    world.kb.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("guidebot.db"))
    assert ref.encode() in raw
    assert not any(word.encode() in raw for word in SECRET_WORDS)


def test_a_sealed_report_cannot_be_moved_onto_another(world: World) -> None:
    first, second = world.submit(), world.submit(form(what="something else entirely"))
    with world.db.atomic():
        world.db.execute(
            "UPDATE concerns SET content = (SELECT content FROM concerns WHERE ref = ?)"
            " WHERE ref = ?",
            [first, second],
        )
    with pytest.raises(Exception) as caught:
        world.concerns.view(second, Person.parse(DSL))
    assert WHAT not in str(caught.value)


# --- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("concern", "expected"),
    [
        (form("pupil"), {DSL, DSL2}),
        (form("adult"), {DSL, DSL2}),
        (form("staff"), {HEAD, DSL, DSL2}),
        (form("staff", role="headteacher", person=HEAD), {CHAIR}),
        (form("staff", role="headteacher"), {CHAIR}),
        (form("staff", role="dsl", person=DSL), {HEAD, DEPUTY}),
        (form("staff", role="dsl"), {HEAD, DEPUTY}),
        (form("staff", role="dsl", person=DEPUTY), {HEAD}),  # a deputy DSL
        (form("staff", person=DSL2), {HEAD, DSL}),  # named, though not flagged as a DSL
    ],
    ids=[
        "pupil",
        "adult",
        "staff",
        "head-named",
        "head-unnamed",
        "dsl-named",
        "dsl-unnamed",
        "deputy",
        "staff-who-is-a-dsl",
    ],
)
def test_reports_follow_kcsie_routing_and_never_reach_their_subject(
    world: World, concern: ConcernForm, expected: set[str]
) -> None:
    submitted = world.concerns.submit("st-annes", REPORTER, concern)
    assert {p.key for p in submitted.recipients} == expected
    assert recipients_of(world, submitted.ref) == expected
    assert world.alerted(submitted.ref) == expected
    for person in expected:
        platform, ident = person.split(":", 1)
        assert (f"concern:{submitted.ref}:alert:{person}", platform, ident) in world.rows()
    assert "no-recipient-for-route" not in {a for _, a, _ in world.actions(submitted.ref)}

    # nor when nobody acknowledges it, all the way up
    world.clock.advance(hours=5)
    world.concerns.escalate_due()
    subject = concern.about_person
    everyone = world.alerted(submitted.ref) | recipients_of(world, submitted.ref)
    if subject:
        assert subject not in everyone
    if concern.about_role == "headteacher":
        assert HEAD not in everyone
    if concern.about_role == "dsl" and not subject:
        assert not {DSL, DSL2} & everyone


def test_an_empty_route_falls_back_to_the_dsls_then_the_deputies(world: World) -> None:
    # A small school: the headteacher is also the DSL, and no chair is set up.
    world.set_roles(SafeguardingSettings(dsl=(HEAD, DSL2), deputies=(DEPUTY,), headteacher=(HEAD,)))
    ref = world.submit(form("staff", role="headteacher"))
    assert recipients_of(world, ref) == {DSL2}
    trail = world.concerns.audit_trail(ref)
    [fallback] = [a for a in trail if a.action == "no-recipient-for-route"]
    assert "chair-of-governors" in fallback.detail and "dsl" in fallback.detail

    world.set_roles(SafeguardingSettings(dsl=(HEAD,), deputies=(DEPUTY,), headteacher=(HEAD,)))
    ref = world.submit(form("staff", role="headteacher", person=HEAD))
    assert recipients_of(world, ref) == {DEPUTY}
    world.clock.advance(hours=2)
    world.concerns.escalate_due()
    assert HEAD not in world.alerted(ref)

    # then the headteacher, and for an allegation about staff, the chair
    world.set_roles(SafeguardingSettings(headteacher=(HEAD,), chair_of_governors=(CHAIR,)))
    assert recipients_of(world, world.submit(form("pupil"))) == {HEAD}
    assert recipients_of(world, world.submit(form("staff", role="dsl", person=HEAD))) == {CHAIR}
    fallbacks = world.db.execute(
        "SELECT detail FROM concern_audit WHERE action = 'no-recipient-for-route' ORDER BY id"
    ).fetchall()
    assert [d for (d,) in fallbacks][-2:] == [
        "route=dsl; sent to headteacher instead",
        "route=headteacher-and-deputies; sent to chair-of-governors instead",
    ]


def test_a_school_with_nobody_to_receive_a_report_is_refused_and_nothing_stored(
    world: World,
) -> None:
    world.set_roles(SafeguardingSettings(headteacher=(HEAD,)))
    with pytest.raises(NoRecipients) as caught:
        world.submit(form("staff", role="headteacher", person=HEAD))
    assert str(caught.value) == wording.concern_no_recipients_allegation()
    world.set_roles(SafeguardingSettings(chair_of_governors=(CHAIR,)))
    with pytest.raises(NoRecipients) as caught:
        world.submit(form("pupil"))  # a pupil's case never goes to a governor
    assert str(caught.value) == wording.concern_no_recipients()
    assert world.count("concerns") == world.count("outbox") == world.count("concern_audit") == 0


def test_route_is_a_pure_function_of_the_form_and_the_roles() -> None:
    chosen = route(form("staff", role="dsl", person=DSL), FULL)
    assert (chosen.name, chosen.recipients, chosen.fallback) == (
        "headteacher-and-deputies",
        (HEAD, DEPUTY),
        None,
    )


@pytest.mark.parametrize(
    ("about", "role", "shown"),
    [
        ("pupil", "none", False),
        ("adult", "none", False),
        ("staff", "none", True),
        ("staff", "headteacher", True),
        ("staff", "dsl", True),
    ],
)
def test_the_lado_is_named_only_for_allegations_about_staff(
    world: World, about: str, role: str, shown: bool
) -> None:
    world.set_roles(replace(FULL, lado=LADO))
    submitted = world.concerns.submit("st-annes", REPORTER, form(about, role=role))
    person = submitted.recipients[0].key
    alert = world.message(f"concern:{submitted.ref}:alert:{person}")
    assert (LADO in alert.text) is shown
    world.set_roles(FULL)
    plain = world.concerns.submit("st-annes", REPORTER, form(about, role=role))
    assert "LADO" not in world.message(f"concern:{plain.ref}:alert:{person}").text


# --- the alert and the confirmation -----------------------------------------------------------


def test_an_alert_names_the_report_but_never_its_content(world: World) -> None:
    submitted = world.concerns.submit("st-annes", REPORTER, form("staff", urgent=True))
    alert = world.message(f"concern:{submitted.ref}:alert:{DSL}")
    assert submitted.ref in alert.text
    assert wording.concern_alert_urgent() in alert.text and "999" in alert.text
    assert "a member of staff" in alert.text
    assert not any(word in alert.text for word in SECRET_WORDS)
    assert alert.extra == {
        "concern_ref": submitted.ref,
        "reported_by": REPORTER.key,
        "urgent": "true",
    }
    assert [(b.action, b.value) for b in alert.buttons] == [
        (Action.CONCERN_VIEW, submitted.ref),
        (Action.CONCERN_ACKNOWLEDGE, submitted.ref),
        (Action.CONCERN_NOTE, submitted.ref),
        (Action.CONCERN_CLOSE, submitted.ref),
    ]
    assert not alert.ephemeral and alert.kind == "notice"


def test_an_allegation_about_the_head_says_so(world: World) -> None:
    submitted = world.concerns.submit("st-annes", REPORTER, form("staff", role="headteacher"))
    alert = world.message(f"concern:{submitted.ref}:alert:{CHAIR}")
    assert "allegation about the headteacher" in alert.text
    assert "URGENT" not in alert.text and alert.extra["urgent"] == "false"


def test_the_school_may_choose_to_show_the_content_in_the_alert(world: World) -> None:
    world.set_roles(replace(FULL, show_content_in_alert=True))
    ref = world.submit()
    alert = world.message(f"concern:{ref}:alert:{DSL}")
    assert WHAT in alert.text and NAME in alert.text and ACTIONS in alert.text


def test_the_reporter_is_told_the_reference_and_999_first_when_urgent(world: World) -> None:
    calm = world.concerns.submit("st-annes", REPORTER, form())
    reply = world.concerns.confirmation(calm)
    assert reply.text == wording.concern_sent(calm.ref) and calm.ref in reply.text
    assert "999" not in reply.text
    urgent = world.concerns.submit("st-annes", REPORTER, form(urgent=True))
    reply = world.concerns.confirmation(urgent)
    assert reply.text.startswith(wording.concern_call_999_now())
    assert urgent.ref in reply.text and reply.ephemeral
    assert reply.extra == {"concern_ref": urgent.ref, "urgent": "true"}


# --- one transaction --------------------------------------------------------------------------


def test_a_report_whose_alerts_cannot_be_queued_is_not_kept(world: World) -> None:
    world.db.execute(
        "CREATE TEMP TRIGGER outbox_full BEFORE INSERT ON outbox"
        " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    with pytest.raises(sqlite3.DatabaseError):
        world.submit()
    for table in ("concerns", "concern_audit", "concern_refs", "outbox", "concern_notes"):
        assert world.count(table) == 0, table
    world.db.execute("DROP TRIGGER outbox_full")
    assert world.submit() == "C-2026-0001"  # the failed one used no number


def test_references_count_up_within_each_year(world: World) -> None:
    assert [world.submit() for _ in range(3)] == ["C-2026-0001", "C-2026-0002", "C-2026-0003"]
    world.clock.moment = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert world.submit() == "C-2027-0001"
    world.clock.moment = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert world.submit() == "C-2026-0004"
    world.db.execute("UPDATE concern_refs SET last = 41 WHERE year = 2026")
    assert world.submit() == "C-2026-0042"


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("concern", "field"),
    [
        (form(what="   \n "), "what"),
        (form(name=""), "about_name"),
        (form(what="Zanzibarquokka " * 1000), "what"),
        (form(name="Quillonfeather " * 20), "about_name"),
        (form(about="parent"), "about"),
        (form("staff", person="not a person"), "about_person"),
    ],
)
def test_a_form_that_cannot_be_accepted_names_the_field_never_the_content(
    world: World, concern: ConcernForm, field: str
) -> None:
    with pytest.raises(ConcernFormError) as caught:
        world.concerns.submit("st-annes", REPORTER, concern)
    assert caught.value.field == field
    assert not any(word in str(caught.value) for word in SECRET_WORDS)
    assert world.count("concerns") == world.count("outbox") == 0


def test_answers_are_trimmed_and_a_role_needs_a_member_of_staff(world: World) -> None:
    ref = world.submit(form("pupil", role="headteacher", what=f"  {WHAT}  "))
    view = world.concerns.view(ref, Person.parse(DSL))
    assert view.form.what == WHAT and view.form.about_role == "none"


# --- handling: acknowledge, notes, close ------------------------------------------------------


def test_acknowledging_tells_the_reporter_once_however_often_it_is_pressed(world: World) -> None:
    ref = world.submit()
    world.clock.advance(minutes=3)
    first = world.concerns.acknowledge(ref, Person.parse(DSL))
    second = world.concerns.acknowledge(ref, Person.parse(DSL))
    third = world.concerns.acknowledge(ref, Person.parse(DSL2))
    assert first.text == wording.concern_acknowledged(ref)
    at = (START + timedelta(minutes=3)).isoformat(timespec="seconds")
    assert second.text == third.text == wording.concern_already_acknowledged(ref, at)
    assert third.extra["acknowledged_by"] == DSL

    told = world.rows("WHERE dedupe_key LIKE ?", f"concern:{ref}:ack%")
    assert told == [(f"concern:{ref}:acknowledged", "slack", REPORTER.id)]
    notice = world.message(f"concern:{ref}:acknowledged")
    assert notice.text == wording.concern_seen_by_dsl(ref)
    assert not any(word in notice.text for word in SECRET_WORDS)

    view = world.concerns.view(ref, Person.parse(DSL2))
    assert (view.state, view.acknowledged_by, view.acknowledged_at) == (
        "acknowledged",
        Person.parse(DSL),
        at,
    )
    acks = [a for a in world.concerns.audit_trail(ref) if a.action == "acknowledged"]
    assert [(a.actor, a.detail) for a in acks] == [(DSL, ""), (DSL, "already"), (DSL2, "already")]


def test_notes_and_the_outcome_are_kept_in_order_and_closing_acknowledges(world: World) -> None:
    ref = world.submit()
    assert world.concerns.add_note(ref, Person.parse(DSL), f"  {NOTE} ").text == (
        wording.concern_noted(ref)
    )
    world.clock.advance(minutes=1)
    world.concerns.add_note(ref, Person.parse(DSL2), "second note")
    assert world.concerns.close(ref, Person.parse(DSL2), OUTCOME).text == (
        wording.concern_closed(ref)
    )
    again = world.concerns.close(ref, Person.parse(DSL), "a different outcome")
    assert "already closed" in again.text
    world.concerns.add_note(ref, Person.parse(DSL), "after closing")

    view = world.concerns.view(ref, Person.parse(DSL))
    assert [(n.by, n.text) for n in view.notes] == [
        (DSL, NOTE),
        (DSL2, "second note"),
        (DSL, "after closing"),
    ]
    assert (view.state, view.outcome, view.closed_by) == ("closed", OUTCOME, Person.parse(DSL2))
    assert view.acknowledged_by == Person.parse(DSL2)  # closing it meant it was seen
    assert len(world.rows("WHERE dedupe_key = ?", f"concern:{ref}:acknowledged")) == 1
    with pytest.raises(ConcernFormError) as caught:
        world.concerns.add_note(ref, Person.parse(DSL), "  ")
    assert caught.value.field == "note"


@pytest.mark.parametrize("what", ["view", "acknowledge", "note", "close", "export"])
def test_someone_the_report_was_not_sent_to_is_refused_and_it_is_recorded(
    world: World, what: str
) -> None:
    ref = world.submit()
    before = world.count("outbox")
    attempts = {
        "view": lambda: world.concerns.view(ref, STRANGER),
        "acknowledge": lambda: world.concerns.acknowledge(ref, STRANGER),
        "note": lambda: world.concerns.add_note(ref, STRANGER, NOTE),
        "close": lambda: world.concerns.close(ref, STRANGER, OUTCOME),
        "export": lambda: world.concerns.export(ref, STRANGER, "json"),
    }
    with pytest.raises(AccessRefused) as caught:
        attempts[what]()
    assert str(caught.value) == wording.concern_access_refused(ref)
    assert world.actions(ref)[-1] == (STRANGER.key, f"refused:{what}", False)
    assert world.count("outbox") == before and world.count("concern_notes") == 0
    view = world.concerns.view(ref, Person.parse(DSL))
    assert (view.state, view.acknowledged_by, view.outcome) == ("open", None, None)
    assert not world.concerns.may_handle(ref, STRANGER)
    assert world.concerns.may_handle(ref, Person.parse(DSL))


def test_an_unknown_reference_is_refused_and_recorded(world: World) -> None:
    world.submit()
    with pytest.raises(UnknownConcern) as caught:
        world.concerns.view("C-2026-0999", Person.parse(DSL))
    assert str(caught.value) == wording.concern_no_such_report("C-2026-0999")
    assert world.actions("C-2026-0999") == [(DSL, "refused:view", False)]
    with pytest.raises(UnknownConcern) as caught:
        world.concerns.export("'; DROP TABLE concerns; --", Person.parse(DSL))
    assert "DROP TABLE" not in str(caught.value) and "'" not in str(caught.value)
    assert world.actions("DROPTABLEconcerns") == [(DSL, "refused:export", False)]


def test_teams_ids_match_whatever_their_case(world: World) -> None:
    ref = world.submit(form("staff", role="headteacher"))
    assert world.concerns.may_handle(ref, Person("teams", CHAIR.split(":")[1].upper()))


# --- escalation -------------------------------------------------------------------------------


def test_an_urgent_report_nobody_acknowledges_goes_to_the_deputies_then_the_head(
    world: World,
) -> None:
    ref = world.submit(form(urgent=True))
    deputy = Person.parse(DEPUTY)
    with pytest.raises(AccessRefused):
        world.concerns.view(ref, deputy)

    world.clock.advance(minutes=9, seconds=59)
    assert world.concerns.escalate_due() == 0
    world.clock.advance(seconds=1)  # 10 minutes
    assert world.concerns.escalate_due() == 1
    assert world.alerted(ref) == {DSL, DSL2, DEPUTY}
    escalation = world.message(f"concern:{ref}:escalation:1:{DEPUTY}")
    assert "10 minutes" in escalation.text and escalation.extra["escalation_step"] == "1"
    assert not any(word in escalation.text for word in SECRET_WORDS)
    assert [world.concerns.escalate_due() for _ in range(3)] == [0, 0, 0]

    # the deputy may now handle it
    assert world.concerns.may_handle(ref, deputy)
    assert world.concerns.view(ref, deputy).form.what == WHAT

    world.clock.advance(minutes=9, seconds=59)
    assert world.concerns.escalate_due() == 0
    world.clock.advance(seconds=1)  # 20 minutes
    assert world.concerns.escalate_due() == 1
    assert f"concern:{ref}:escalation:2:{HEAD}" in {r[0] for r in world.rows()}
    world.clock.advance(hours=10)
    assert [world.concerns.escalate_due() for _ in range(3)] == [0, 0, 0]
    steps = world.db.execute(
        "SELECT step, recipients FROM concern_escalations WHERE ref = ? ORDER BY step", [ref]
    ).fetchall()
    assert [(s, json.loads(r)) for s, r in steps] == [(1, [DEPUTY]), (2, [HEAD])]
    escalated = [a for a in world.concerns.audit_trail(ref) if a.action == "escalated"]
    assert [a.actor for a in escalated] == ["guidebot", "guidebot"]
    assert world.concerns.view(ref, Person.parse(HEAD)).ref == ref


def test_an_ordinary_report_waits_for_the_schools_limit(world: World) -> None:
    ref = world.submit()
    world.clock.advance(minutes=29)
    assert world.concerns.escalate_due() == 0
    world.clock.advance(minutes=1)
    assert world.concerns.escalate_due() == 1
    world.set_roles(replace(FULL, ack_minutes=5))  # the school's own limit, read each sweep
    other = world.submit()
    world.clock.advance(minutes=5)
    assert world.concerns.escalate_due() == 2  # step 2 for the first, step 1 for the second
    assert {r[0] for r in world.rows()} >= {
        f"concern:{ref}:escalation:2:{HEAD}",
        f"concern:{other}:escalation:1:{DEPUTY}",
    }


def test_a_late_sweep_takes_both_steps_at_once(world: World) -> None:
    ref = world.submit()
    world.clock.advance(hours=3)
    assert world.concerns.escalate_due() == 2
    assert world.alerted(ref) == {DSL, DSL2, DEPUTY, HEAD}


def test_nothing_is_escalated_once_acknowledged_or_closed(world: World) -> None:
    seen, closed = world.submit(form(urgent=True)), world.submit(form(urgent=True))
    world.clock.advance(minutes=5)
    world.concerns.acknowledge(seen, Person.parse(DSL))
    world.concerns.close(closed, Person.parse(DSL2), OUTCOME)
    world.clock.advance(hours=5)
    assert world.concerns.escalate_due() == 0
    assert world.count("concern_escalations") == 0


def test_a_damaged_report_does_not_hold_up_the_others(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    damaged, fine = world.submit(), world.submit()
    with world.db.atomic():  # its content sealed for another record: it will not open
        world.db.execute(
            "UPDATE concerns SET content = (SELECT content FROM concerns WHERE ref = ?)"
            " WHERE ref = ?",
            [fine, damaged],
        )
    world.clock.advance(minutes=30)
    with caplog.at_level(logging.ERROR):
        assert world.concerns.escalate_due() == 1
    assert f"concern:{fine}:escalation:1:{DEPUTY}" in {r[0] for r in world.rows()}
    assert not world.alerted(damaged) - {DSL, DSL2}
    assert any(
        damaged in r.getMessage() and "CryptoError" in r.getMessage() for r in caplog.records
    )


def test_a_step_with_nobody_to_alert_is_recorded_once(world: World) -> None:
    world.set_roles(SafeguardingSettings(dsl=(DSL,)))
    ref = world.submit(form(urgent=True))
    world.clock.advance(minutes=30)
    assert world.concerns.escalate_due() == 2
    assert world.concerns.escalate_due() == 0
    details = world.db.execute(
        "SELECT step, detail FROM concern_escalations WHERE ref = ? ORDER BY step", [ref]
    ).fetchall()
    assert details == [(1, "nobody-to-alert"), (2, "nobody-to-alert")]
    assert world.alerted(ref) == {DSL}


# --- the audit trail and the export -----------------------------------------------------------


def test_the_audit_trail_cannot_be_changed_or_deleted(world: World) -> None:
    ref = world.submit()
    with pytest.raises(AccessRefused):
        world.concerns.view(ref, STRANGER)
    for sql in (
        "UPDATE concern_audit SET actor = 'someone else'",
        "UPDATE concern_audit SET allowed = 1 WHERE allowed = 0",
        "DELETE FROM concern_audit",
        f"DELETE FROM concern_audit WHERE ref = '{ref}'",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), world.db.atomic():
            world.db.execute(sql)
    assert world.actions(ref)[0] == (REPORTER.key, "submitted", True)
    assert world.actions(ref)[-1] == (STRANGER.key, "refused:view", False)


def test_the_export_holds_the_whole_chronology_in_both_formats(world: World) -> None:
    ref = world.submit(form("staff", urgent=True))
    with pytest.raises(AccessRefused):
        world.concerns.view(ref, STRANGER)
    world.clock.advance(minutes=11)
    world.concerns.escalate_due()
    world.concerns.acknowledge(ref, Person.parse(DEPUTY))
    world.concerns.add_note(ref, Person.parse(DSL), NOTE)
    world.concerns.close(ref, Person.parse(HEAD), OUTCOME)

    data = json.loads(world.concerns.export(ref, Person.parse(DSL), "json"))
    assert data["ref"] == ref and data["urgent"] is True and data["state"] == "closed"
    assert data["reported_by"] == REPORTER.key
    assert data["report"]["what"] == WHAT and data["report"]["about_name"] == NAME
    assert data["report"]["when_where"] == WHEN and data["report"]["actions_taken"] == ACTIONS
    assert data["acknowledged"]["by"] == DEPUTY
    assert [e["step"] for e in data["escalations"]] == [1]
    assert data["escalations"][0]["alerted"] == [DEPUTY]
    assert data["notes"] == [{"at": data["notes"][0]["at"], "by": DSL, "text": NOTE}]
    assert data["closed"]["outcome"] == OUTCOME and data["closed"]["by"] == HEAD
    actions = [(a["actor"], a["action"], a["allowed"]) for a in data["audit"]]
    assert actions[0] == (REPORTER.key, "submitted", True)
    assert (STRANGER.key, "refused:view", False) in actions
    for expected in ("alerted", "escalated", "acknowledged", "noted", "closed"):
        assert expected in {a for _, a, _ in actions}
    assert actions[-1] == (DSL, "exported", True) and data["audit"][-1]["detail"] == "json"

    text = world.concerns.export(ref, Person.parse(HEAD), "markdown")
    assert text.startswith(f"# Safeguarding concern {ref}\n")
    for needle in (WHAT, NAME, WHEN, ACTIONS, NOTE, OUTCOME, DEPUTY, "refused:view", "escalated"):
        assert needle in text, needle
    order = [text.index(h) for h in ("## Report", "## Acknowledgement", "## Escalations")]
    order += [text.index(h) for h in ("## Notes", "## Closure", "## Audit trail")]
    assert order == sorted(order)
    assert text.rstrip().endswith("| exported | yes | markdown |")


def test_no_content_reaches_the_log_at_any_level(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.set_roles(replace(FULL, show_content_in_alert=True, lado=LADO))
    with caplog.at_level(logging.DEBUG):
        ref = world.submit(form("staff", urgent=True))
        world.concerns.view(ref, Person.parse(HEAD))
        for attempt in (
            lambda: world.concerns.view(ref, STRANGER),
            lambda: world.concerns.add_note(ref, STRANGER, NOTE),
            lambda: world.concerns.submit("st-annes", REPORTER, form(what=WHAT * 400)),
            lambda: world.concerns.view("C-2026-9999", STRANGER),
        ):
            with pytest.raises(Exception) as caught:
                attempt()
            assert not any(word in str(caught.value) for word in SECRET_WORDS)
        world.clock.advance(hours=2)
        world.concerns.escalate_due()
        world.concerns.add_note(ref, Person.parse(DSL), NOTE)
        world.concerns.acknowledge(ref, Person.parse(DSL))
        world.concerns.close(ref, Person.parse(DSL), OUTCOME)
        world.concerns.export(ref, Person.parse(DSL), "markdown")
        world.concerns.on_click(Click("slack", "st-annes", "U0DSL0001", Action.CONCERN_VIEW, ref))
    assert caplog.records, "the flow should log what happened (without content)"
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert ref in logged
    for word in SECRET_WORDS:
        assert word not in logged, word


# --- the DSL buttons --------------------------------------------------------------------------


def _click(action: Action, ref: str, user: str = "U0DSL0001") -> Click:
    return Click("slack", "st-annes", user, action, ref, "D0DM")


def test_the_dsl_buttons_show_acknowledge_or_open_a_form(world: World) -> None:
    ref = world.submit()
    shown = world.concerns.on_click(_click(Action.CONCERN_VIEW, ref))
    assert isinstance(shown, Reply) and shown.ephemeral
    assert WHAT in shown.text and NAME in shown.text and shown.extra["reported_by"] == REPORTER.key
    assert Action.CONCERN_ACKNOWLEDGE in {b.action for b in shown.buttons}
    assert world.concerns.on_click(_click(Action.CONCERN_NOTE, ref)) == FormRequest(
        "concern_note", ref=ref
    )
    assert world.concerns.on_click(_click(Action.CONCERN_CLOSE, ref)) == FormRequest(
        "concern_close", ref=ref
    )
    acknowledged = world.concerns.on_click(_click(Action.CONCERN_ACKNOWLEDGE, ref))
    assert isinstance(acknowledged, Reply)
    assert acknowledged.text == wording.concern_acknowledged(ref)

    for action in (Action.CONCERN_VIEW, Action.CONCERN_NOTE, Action.CONCERN_CLOSE):
        refused = world.concerns.on_click(_click(action, ref, user=STRANGER.id))
        assert isinstance(refused, Reply) and refused.text == wording.concern_access_refused(ref)
    refusals = [a for _, a, allowed in world.actions(ref) if not allowed]
    assert refusals == ["refused:view", "refused:note", "refused:close"]
    mentioned = world.concerns.on_click(_click(Action.CONCERN_VIEW, ref), lambda k: f"<{k}>")
    assert isinstance(mentioned, Reply)
    assert f"<{REPORTER.key}>" in mentioned.text and f"Acknowledged by <{DSL}>" in mentioned.text
    assert Action.CONCERN_ACKNOWLEDGE not in {b.action for b in mentioned.buttons}
    unknown = world.concerns.on_click(_click(Action.CONCERN_VIEW, "C-1999-0001"))
    assert isinstance(unknown, Reply) and "C-1999-0001" in unknown.text


# --- settings ---------------------------------------------------------------------------------


def _settings(table: dict[str, Any]) -> SafeguardingSettings:
    data = {"schools": {"st-annes": {"safeguarding": table}}}
    return parse(data, {}).school("st-annes").safeguarding


def test_the_safeguarding_table_is_read_from_the_settings_file() -> None:
    settings = _settings(
        {
            "dsl": [DSL, DSL2],
            "deputies": [DEPUTY],
            "headteacher": HEAD,
            "chair_of_governors": [CHAIR.upper().replace("TEAMS:", "teams:")],
            "lado": f"  {LADO} ",
            "show_content_in_alert": True,
            "ack_minutes": 45,
            "urgent_ack_minutes": 5,
        }
    )
    assert settings == SafeguardingSettings(
        dsl=(DSL, DSL2),
        deputies=(DEPUTY,),
        headteacher=(HEAD,),
        chair_of_governors=(CHAIR,),
        lado=LADO,
        show_content_in_alert=True,
        ack_minutes=45,
        urgent_ack_minutes=5,
    )
    assert _settings({}) == SafeguardingSettings()
    assert parse({}, {}).school("st-annes").safeguarding == SafeguardingSettings()


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"dsl": ["U0DSL0001"]}, "schools.st-annes.safeguarding.dsl"),
        ({"dsl": ["slack:jo"]}, "schools.st-annes.safeguarding.dsl"),
        ({"deputies": ["teams:not-a-guid"]}, "schools.st-annes.safeguarding.deputies"),
        ({"headteacher": [42]}, "schools.st-annes.safeguarding.headteacher"),
        ({"dsl": {"a": 1}}, "schools.st-annes.safeguarding.dsl"),
        ({"ack_minutes": 0}, "schools.st-annes.safeguarding.ack_minutes"),
        ({"urgent_ack_minutes": True}, "urgent_ack_minutes"),
        ({"urgent_ack_minutes": 2.5}, "urgent_ack_minutes"),
        ({"lado": ""}, "schools.st-annes.safeguarding.lado"),
        ({"show_content_in_alert": "yes"}, "show_content_in_alert"),
        ({"deputy": [DEPUTY]}, "schools.st-annes.safeguarding.deputy"),
    ],
)
def test_a_wrong_safeguarding_setting_is_named(table: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(table)
    assert named in str(caught.value)


def test_the_safeguarding_setting_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match=r"schools\.st-annes\.safeguarding must be a table"):
        parse({"schools": {"st-annes": {"safeguarding": "dsl"}}}, {})


# --- the report button keeps the member's words, in memory only -------------------------------

DISCLOSURE = "a girl in my class told me her dad hits her"


async def test_the_report_button_opens_the_form_with_the_members_own_words(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    answerer = Answerer(kb, Searcher(kb), Operations(kb.db))
    reply = await answerer.answer(Incoming("slack", "st-annes", "U0STAFF01", DISCLOSURE, "D1"))
    [button] = [b for b in reply.buttons if b.action is Action.REPORT_CONCERN]
    assert button.value == str(reply.question_id)

    mine = await answerer.click(
        Click("slack", "st-annes", "U0STAFF01", button.action, button.value)
    )
    assert mine.reply is None and mine.form == FormRequest("concern", prefill=DISCLOSURE)
    # someone else pressing (or forging) the same button gets an empty form
    theirs = await answerer.click(
        Click("slack", "st-annes", "U0OTHER01", button.action, button.value)
    )
    other_platform = await answerer.click(
        Click("teams", "st-annes", "U0STAFF01", button.action, button.value)
    )
    for outcome in (theirs, other_platform):
        assert outcome.form == FormRequest("concern", prefill="")
    for value in ("home", "command", "999999", "abc"):
        outcome = await answerer.click(
            Click("slack", "st-annes", "U0STAFF01", button.action, value)
        )
        assert outcome.reply is None and outcome.form == FormRequest("concern", prefill="")
    # and the words were never written down
    assert "dad hits her" not in "\n".join(kb.db.conn.iterdump())
    kb.close()


def test_the_prefill_cache_forgets_after_an_hour_and_keeps_at_most_its_limit() -> None:
    now = [1000.0]
    cache = PrefillCache(ttl=3600, max_entries=3, clock=lambda: now[0])
    cache.put(1, "slack", "U1", "first")
    now[0] += 3599
    assert cache.get(1, "slack", "U1") == "first"
    now[0] += 1
    assert cache.get(1, "slack", "U1") == "" and len(cache) == 0
    for number in range(2, 7):
        cache.put(number, "slack", "U1", f"text {number}")
    assert len(cache) == 3
    assert [cache.get(n, "slack", "U1") for n in (3, 4, 5, 6)] == ["", "text 4", "text 5", "text 6"]
    assert "text" not in repr(cache)
    cache.put(7, "slack", "U1", "x" * 20_000)
    assert len(cache.get(7, "slack", "U1")) == 10_000
