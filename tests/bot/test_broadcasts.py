"""Broadcasts: who may send them, who gets them, acknowledgements and chasers.

A real knowledge base on a temporary file (with a sample school's policy to
link), the real directory, outbox and SecretBox, a fake clock moved by the
tests, and scripted senders standing in for Slack and Teams (the real senders
are driven at scale in test_broadcast_scale.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import wording
from bot.broadcasts import (
    BroadcastRefused,
    Broadcasts,
    BroadcastSettings,
    Draft,
    parse_broadcast_settings,
)
from bot.config import ConfigError, parse
from bot.crypto import SecretBox
from bot.directory import Directory, StaffRow
from bot.messages import Action
from bot.outbox import (
    DeliveryPolicy,
    Outbox,
    OutboxWorker,
    OutgoingMessage,
    SendResult,
    reply_from_data,
)
from knowledge.ingest import ingest_files
from knowledge.sample_data import sample_files
from knowledge.store import KnowledgeBase

SCHOOL = "kaleidoscope"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DAY = 86400.0
SECRET = "Marmalade-otter"
"""A word in a broadcast's message: it must reach staff and never the log."""
TEAMS_AAD = "0b5c4a1e-2f3d-4c5b-9a8e-7d6c5b4a3f21"
BOTH_AAD = "1c6d5b2f-3a4e-4d6c-8b9f-8e7d6c5b4a32"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Scripted:
    platform: str
    sent: list[tuple[str, str, OutgoingMessage]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult:
        if recipient in self.refuse:
            return SendResult(False, permanent=True, error="user_not_found")
        self.sent.append((recipient, key, message))
        return SendResult(True, platform_ref=f"ref-{len(self.sent)}")

    async def find_sent(self, recipient: str, key: str) -> str | None:
        return None


def people() -> list[StaffRow]:
    return [
        StaffRow(2, "head@k.sch.uk", "Helen Head", ("staff", "head"), ("slt",), "U0HEAD"),
        StaffRow(3, "lee@k.sch.uk", "Lee Leader", ("staff", "leader"), ("slt",), None, BOTH_AAD),
        StaffRow(4, "amy@k.sch.uk", "Amy Able", ("staff",), ("teaching",), "U0AMY"),
        StaffRow(
            5, "ben@k.sch.uk", "Ben Brook", ("staff",), ("teaching",), "U0BEN", BOTH_AAD[:-1] + "3"
        ),
        StaffRow(6, "cat@k.sch.uk", "Cat Cole", ("staff",), ("support",), None, TEAMS_AAD),
        StaffRow(7, "dan@k.sch.uk", "Dan Dale", ("staff",), ("support",)),
        StaffRow(8, "eve@k.sch.uk", "Eve East", ("staff", "dsl"), ("teaching", "slt"), "U0EVE"),
    ]


class World:
    def __init__(self, path: Path, settings: BroadcastSettings | None = None) -> None:
        self.clock = Clock()
        self.kb = KnowledgeBase(path)
        ingest_files(self.kb, SCHOOL, [sample_files()[SCHOOL]])
        self.db = self.kb.db
        self.directory = Directory(self.db, self.clock)
        self.directory.import_rows(SCHOOL, people())
        self.outbox = Outbox(self.db, SecretBox(bytes(range(32))), clock=self.clock)
        self.broadcasts = Broadcasts(
            self.db, self.outbox, self.directory, clock=self.clock, settings=settings
        )
        self.slack = Scripted("slack")
        self.teams = Scripted("teams")

    async def deliver(self) -> None:
        async def sleep(seconds: float) -> None:
            self.clock.advance(seconds)
            await asyncio.sleep(0)

        worker = OutboxWorker(
            self.outbox,
            {"slack": self.slack, "teams": self.teams},
            DeliveryPolicy(rate_per_second={}, platform_rate={}),
            clock=self.clock,
            sleep=sleep,
        )
        try:
            await worker.run_until_idle()
        finally:
            worker.close()

    def outbox_keys(self) -> list[str]:
        return sorted(
            k for (k,) in self.db.execute("SELECT dedupe_key FROM outbox ORDER BY id").fetchall()
        )

    def id_of(self, email: str) -> int:
        person = self.directory.by_email(SCHOOL, email)
        assert person is not None
        return person.id

    def send(self, draft: Draft | None = None, by: tuple[str, str] = ("slack", "U0HEAD")) -> int:
        status = self.broadcasts.create(
            SCHOOL, by[0], by[1], draft or Draft("Phones in class", f"Please read. {SECRET}")
        )
        return status.id


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path / "guidebot.db")
    yield made
    made.kb.close()


# --- who receives it ------------------------------------------------------------------------


async def test_everyone_but_the_author_gets_one_message_on_one_platform(world: World) -> None:
    broadcast_id = world.send(
        Draft("Updated: Social Media Policy", f"Section 5 has changed. {SECRET}", policy=SCHOOL)
    )
    ids = {e: world.id_of(e) for e in ("lee@k.sch.uk", "amy@k.sch.uk", "ben@k.sch.uk")}
    ids |= {e: world.id_of(e) for e in ("cat@k.sch.uk", "eve@k.sch.uk")}
    assert world.outbox_keys() == sorted(
        [
            f"broadcast:{broadcast_id}:{ids['lee@k.sch.uk']}:teams",
            f"broadcast:{broadcast_id}:{ids['amy@k.sch.uk']}:slack",
            f"broadcast:{broadcast_id}:{ids['ben@k.sch.uk']}:slack",  # Slack first, not both
            f"broadcast:{broadcast_id}:{ids['cat@k.sch.uk']}:teams",
            f"broadcast:{broadcast_id}:{ids['eve@k.sch.uk']}:slack",
        ]
    )
    # One of many: any other message (a safeguarding alert) goes first.
    assert all(r.bulk for r in map(world.outbox.by_key, world.outbox_keys()) if r is not None)
    status = world.broadcasts.status(broadcast_id)
    assert status is not None
    assert (status.state, status.recipients, status.delivered, status.unreachable) == (
        "sent",
        5,
        0,
        ("Dan Dale",),
    )
    assert status.outstanding == ("Amy Able", "Ben Brook", "Cat Cole", "Eve East", "Lee Leader")
    await world.deliver()
    assert sorted(r for r, _, _ in world.slack.sent) == ["U0AMY", "U0BEN", "U0EVE"]
    assert sorted(r for r, _, _ in world.teams.sent) == sorted([BOTH_AAD, TEAMS_AAD])
    status = world.broadcasts.status(broadcast_id)
    assert status is not None and status.delivered == 5


async def test_the_message_says_what_who_and_which_policy_with_the_button(world: World) -> None:
    broadcast_id = world.send(
        Draft("Updated: Social Media Policy", f"Section 5 has changed. {SECRET}", policy=SCHOOL)
    )
    await world.deliver()
    _, _, message = world.slack.sent[0]
    reply = reply_from_data(message.reply)
    assert reply.kind == "notice"
    assert "Updated: Social Media Policy" in reply.text and SECRET in reply.text
    assert "Social Media and Networking Policy (next review 1 September 2020)" in reply.text
    assert "Sent by Helen Head." in reply.text
    [button] = reply.buttons
    assert (button.label, button.action, button.value) == (
        wording.broadcast_dm_ack_button(),
        Action.BROADCAST_ACK,
        str(broadcast_id),
    )
    assert reply.extra["broadcast_id"] == str(broadcast_id)


async def test_without_acknowledgement_there_is_no_button_and_nobody_outstanding(
    world: World,
) -> None:
    broadcast_id = world.send(Draft("Car park", "Closed on Friday.", requires_ack=False))
    await world.deliver()
    assert all(reply_from_data(m.reply).buttons == () for _, _, m in world.slack.sent)
    status = world.broadcasts.status(broadcast_id)
    assert status is not None and status.outstanding == () and status.delivered == 5
    world.clock.advance(10 * DAY)
    assert world.broadcasts.chase_due() == 0


def test_groups_narrow_the_audience(world: World) -> None:
    broadcast_id = world.send(Draft("Support staff", "Training on Monday.", groups=("Support",)))
    status = world.broadcasts.status(broadcast_id)
    assert status is not None
    assert (status.recipients, status.unreachable, status.outstanding) == (
        1,
        ("Dan Dale",),
        ("Cat Cole",),
    )
    both = world.send(Draft("Teaching and SLT", "Meeting.", groups=("teaching", "slt")))
    status = world.broadcasts.status(both)
    assert status is not None
    assert status.outstanding == ("Amy Able", "Ben Brook", "Eve East", "Lee Leader")


async def test_an_undeliverable_message_is_not_delivered(world: World) -> None:
    world.slack.refuse.add("U0AMY")
    broadcast_id = world.send()
    await world.deliver()
    status = world.broadcasts.status(broadcast_id)
    assert status is not None and (status.recipients, status.delivered) == (5, 4)


# --- only leaders --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "user", "reason", "sentence"),
    [
        ("slack", "U0AMY", "not a leader", wording.broadcast_refused_not_leader()),
        ("slack", "U0EVE", "not a leader", wording.broadcast_refused_not_leader()),  # a DSL
        ("slack", "U0NOBODY", "not in the staff directory", None),
        ("teams", TEAMS_AAD, "not a leader", wording.broadcast_refused_not_leader()),
    ],
)
def test_only_leaders_may_broadcast_and_refusals_are_recorded(
    world: World, platform: str, user: str, reason: str, sentence: str | None
) -> None:
    assert not world.broadcasts.can_broadcast(SCHOOL, platform, user)
    assert world.broadcasts.attempts(SCHOOL) == []  # asking has no side effects
    with pytest.raises(BroadcastRefused) as refused:
        world.send(by=(platform, user))
    expected = sentence or wording.broadcast_refused_not_in_directory()
    assert str(refused.value) == expected and refused.value.reason == "not_allowed"
    assert world.broadcasts.attempts(SCHOOL) == [
        {
            "platform": platform,
            "user_id": user,
            "at": START.isoformat(timespec="microseconds"),
            "reason": reason,
        }
    ]
    assert world.outbox_keys() == []
    assert world.broadcasts.recent(SCHOOL) == []


def test_leaders_and_the_head_may_on_either_platform(world: World) -> None:
    assert world.broadcasts.can_broadcast(SCHOOL, "slack", "U0HEAD")
    assert world.broadcasts.can_broadcast(SCHOOL, "teams", BOTH_AAD.upper())  # ids any case
    status = world.broadcasts.create(SCHOOL, "teams", BOTH_AAD, Draft("Hi", "From Lee."))
    assert status.author == "Lee Leader" and status.recipients == 5  # Helen, not Lee


def test_a_leader_who_has_left_is_refused(world: World) -> None:
    rows = [r for r in people() if r.email != "head@k.sch.uk"]
    world.directory.import_rows(SCHOOL, rows)
    assert not world.broadcasts.can_broadcast(SCHOOL, "slack", "U0HEAD")
    with pytest.raises(BroadcastRefused):
        world.send()
    assert [a["reason"] for a in world.broadcasts.attempts(SCHOOL)] == ["has left the school"]


@pytest.mark.parametrize(
    ("draft", "sentence"),
    [
        (Draft("  ", "x"), wording.broadcast_refused_title(150)),
        (Draft("t" * 151, "x"), wording.broadcast_refused_title(150)),
        (Draft("t", " \n "), wording.broadcast_refused_message(3000)),
        (Draft("t", "m" * 3001), wording.broadcast_refused_message(3000)),
        (Draft("t", "m", policy="no-such"), wording.broadcast_refused_policy("no-such")),
        (
            Draft("t", "m", groups=("kitchen",)),
            wording.broadcast_refused_group("kitchen", "slt, support, teaching"),
        ),
        (Draft("t", "m", send_at=datetime(2026, 3, 9, 9, 0)), wording.broadcast_refused_time()),
        (Draft("t", "m", send_at=START + timedelta(days=400)), wording.broadcast_refused_time()),
    ],
)
def test_a_draft_with_a_problem_is_refused_naming_it(
    world: World, draft: Draft, sentence: str
) -> None:
    with pytest.raises(BroadcastRefused) as refused:
        world.send(draft)
    assert str(refused.value) == sentence
    assert world.broadcasts.recent(SCHOOL) == [] and world.outbox_keys() == []


def test_an_audience_of_nobody_is_refused(world: World) -> None:
    world.directory.import_rows(SCHOOL, [people()[0]])  # everyone else left
    with pytest.raises(BroadcastRefused, match="Nobody in the staff directory"):
        world.send()


# --- acknowledgements ----------------------------------------------------------------------------


async def test_acknowledgements_are_recorded_once_with_their_time(world: World) -> None:
    broadcast_id = world.send()
    await world.deliver()
    world.clock.now = START + timedelta(hours=2)
    assert world.broadcasts.acknowledge(broadcast_id, "slack", "U0AMY") == "recorded"
    assert world.broadcasts.acknowledge(broadcast_id, "slack", "U0AMY") == "already"
    assert world.broadcasts.acknowledged_at(broadcast_id, "slack", "U0AMY") == (
        START + timedelta(hours=2)
    ).isoformat(timespec="microseconds")
    # Ben got it on Slack; pressing the button in Teams counts for him too.
    ben_teams = BOTH_AAD[:-1] + "3"
    assert world.broadcasts.acknowledge(broadcast_id, "teams", ben_teams) == "recorded"
    assert world.broadcasts.acknowledge(broadcast_id, "slack", "U0BEN") == "already"
    assert world.broadcasts.acknowledge(broadcast_id, "slack", "U0HEAD") == "not_recipient"
    assert world.broadcasts.acknowledge(broadcast_id, "slack", "U0STRANGER") == "not_recipient"
    assert world.broadcasts.acknowledge(broadcast_id + 1, "slack", "U0AMY") == "unknown"
    status = world.broadcasts.status(broadcast_id)
    assert status is not None
    assert status.acknowledged == 2
    assert status.outstanding == ("Cat Cole", "Eve East", "Lee Leader")


def test_someone_outside_the_groups_is_not_a_recipient(world: World) -> None:
    broadcast_id = world.send(Draft("Support", "For support staff.", groups=("support",)))
    assert world.broadcasts.acknowledge(broadcast_id, "slack", "U0AMY") == "not_recipient"
    assert world.broadcasts.acknowledge(broadcast_id, "teams", TEAMS_AAD) == "recorded"


# --- chasers -------------------------------------------------------------------------------------


def chasers(world: World) -> list[str]:
    return [k for k in world.outbox_keys() if k.startswith("chase:")]


async def test_chasers_go_to_non_acknowledgers_on_day_three_and_six_and_never_again(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    broadcast_id = world.send()
    await world.deliver()
    for user in ("U0AMY", "U0EVE"):
        world.broadcasts.acknowledge(broadcast_id, "slack", user)
    world.clock.advance(3 * DAY - 60)
    assert world.broadcasts.chase_due() == 0  # not yet
    world.clock.advance(60)
    assert world.broadcasts.chase_due() == 3
    assert world.broadcasts.chase_due() == 0  # a second sweep sends nothing more
    ben, cat, lee = (world.id_of(e) for e in ("ben@k.sch.uk", "cat@k.sch.uk", "lee@k.sch.uk"))
    assert chasers(world) == sorted(f"chase:{broadcast_id}:{p}:1" for p in (ben, cat, lee))
    await world.deliver()
    chaser = next(m for r, k, m in world.slack.sent if k.startswith("chase:"))
    reply = reply_from_data(chaser.reply)
    assert reply.text.startswith("Just a gentle reminder")
    assert "2 March 2026" in reply.text and SECRET in reply.text
    assert [b.action for b in reply.buttons] == [Action.BROADCAST_ACK]

    world.broadcasts.acknowledge(broadcast_id, "teams", TEAMS_AAD)  # Cat reads it
    world.clock.advance(3 * DAY)
    assert world.broadcasts.chase_due() == 2
    assert world.broadcasts.chase_due() == 0
    await world.deliver()
    world.clock.advance(30 * DAY)
    assert world.broadcasts.chase_due() == 0  # never a third
    assert sorted(chasers(world)) == sorted(
        [f"chase:{broadcast_id}:{p}:1" for p in (ben, cat, lee)]
        + [f"chase:{broadcast_id}:{p}:2" for p in (ben, lee)]
    )
    status = world.broadcasts.status(broadcast_id)
    assert status is not None and status.chasers == 5
    assert SECRET not in caplog.text


async def test_a_leaver_is_no_longer_chased(world: World) -> None:
    broadcast_id = world.send()
    await world.deliver()
    world.directory.import_rows(SCHOOL, [r for r in people() if r.email != "amy@k.sch.uk"])
    world.clock.advance(3 * DAY)
    world.broadcasts.chase_due()
    amy = world.id_of("amy@k.sch.uk")
    assert chasers(world) and not [k for k in chasers(world) if f":{amy}:" in k]
    status = world.broadcasts.status(broadcast_id)
    assert status is not None and "Amy Able" not in status.outstanding


async def test_nobody_is_chased_for_a_message_that_never_arrived(world: World) -> None:
    world.slack.refuse.add("U0AMY")
    world.send()
    await world.deliver()
    world.clock.advance(3 * DAY)
    assert world.broadcasts.chase_due() == 4
    amy = world.id_of("amy@k.sch.uk")
    assert not [k for k in chasers(world) if f":{amy}:" in k]


async def test_chasing_is_configurable(tmp_path: Path) -> None:
    world = World(tmp_path / "g.db", BroadcastSettings(chase_after_days=1, max_chasers=1))
    try:
        world.send()
        await world.deliver()
        world.clock.advance(DAY)
        assert world.broadcasts.chase_due() == 5
        await world.deliver()
        world.clock.advance(5 * DAY)
        assert world.broadcasts.chase_due() == 0
    finally:
        world.kb.close()
    none = World(tmp_path / "h.db", BroadcastSettings(max_chasers=0))
    try:
        none.send()
        await none.deliver()
        none.clock.advance(30 * DAY)
        assert none.broadcasts.chase_due() == 0
    finally:
        none.kb.close()


# --- scheduled broadcasts ------------------------------------------------------------------------


async def test_a_scheduled_broadcast_goes_out_once_when_due(world: World) -> None:
    at = START + timedelta(days=1, hours=1)
    status = world.broadcasts.create(
        SCHOOL, "slack", "U0HEAD", Draft("Tomorrow", "Inset day.", send_at=at)
    )
    assert (status.state, status.send_at, status.recipients) == (
        "scheduled",
        at.isoformat(timespec="microseconds"),
        5,
    )
    assert world.outbox_keys() == []
    assert world.broadcasts.dispatch_due() == 0
    # Someone who joins before it goes out receives it.
    world.directory.import_rows(
        SCHOOL, [*people(), StaffRow(9, "fay@k.sch.uk", "Fay Fox", ("staff",), (), "U0FAY")]
    )
    world.clock.now = at - timedelta(seconds=1)
    assert world.broadcasts.dispatch_due() == 0
    world.clock.now = at
    assert world.broadcasts.dispatch_due() == 1
    assert world.broadcasts.dispatch_due() == 0
    assert len(world.outbox_keys()) == 6
    await world.deliver()
    world.clock.advance(DAY)
    assert world.broadcasts.dispatch_due() == 0
    assert len(world.slack.sent) == 4
    sent = world.broadcasts.status(status.id)
    assert sent is not None and sent.state == "sent" and sent.delivered == 6
    assert sent.dispatched_at == at.isoformat(timespec="microseconds")


def test_a_scheduled_broadcast_can_be_cancelled_by_a_leader(world: World) -> None:
    at = START + timedelta(days=2)
    made = world.broadcasts.create(SCHOOL, "slack", "U0HEAD", Draft("t", "m", send_at=at))
    with pytest.raises(BroadcastRefused):
        world.broadcasts.cancel(made.id, "slack", "U0AMY")
    assert world.broadcasts.cancel(made.id, "teams", BOTH_AAD).state == "cancelled"
    world.clock.now = at
    assert world.broadcasts.dispatch_due() == 0 and world.outbox_keys() == []
    assert world.broadcasts.acknowledge(made.id, "slack", "U0AMY") == "unknown"
    with pytest.raises(BroadcastRefused):
        world.broadcasts.cancel(made.id, "slack", "U0HEAD")


def test_recent_and_between(world: World) -> None:
    first = world.send(Draft("One", "1"))
    world.clock.advance(DAY)
    second = world.send(Draft("Two", "2"))
    later = world.broadcasts.create(
        SCHOOL, "slack", "U0HEAD", Draft("Three", "3", send_at=START + timedelta(days=9))
    )
    assert [s.id for s in world.broadcasts.recent(SCHOOL)] == [later.id, second, first]
    assert [s.id for s in world.broadcasts.recent(SCHOOL, limit=1)] == [later.id]
    window = world.broadcasts.between(SCHOOL, START, START + timedelta(days=1))
    assert [s.title for s in window] == ["One"]
    week = world.broadcasts.between(SCHOOL, START, START + timedelta(days=7))
    assert [s.title for s in week] == ["One", "Two"]
    assert world.broadcasts.recent("st-annes") == []


# --- settings ------------------------------------------------------------------------------------


def test_settings_come_from_the_broadcasts_section() -> None:
    settings = parse({"broadcasts": {"chase_after_days": 5, "max_chasers": 1}}, {})
    assert settings.broadcasts == BroadcastSettings(chase_after_days=5, max_chasers=1)
    assert parse({}, {}).broadcasts == BroadcastSettings(3, 2)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"chase_after_days": 0}, "broadcasts.chase_after_days"),
        ({"chase_after_days": "3"}, "broadcasts.chase_after_days"),
        ({"max_chasers": 9}, "broadcasts.max_chasers"),
        ({"max_chasers": True}, "broadcasts.max_chasers"),
        ({"chasers": 2}, "broadcasts.chasers"),
    ],
)
def test_a_bad_setting_is_named(raw: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_broadcast_settings(raw, "broadcasts")
    with pytest.raises(ConfigError, match=named):
        parse({"broadcasts": raw}, {})


async def test_chasers_wait_for_school_hours(world: World) -> None:
    """A chaser is a reminder: due on a Saturday, it goes on Monday morning."""
    from bot.school_hours import SchoolHours

    hours = SchoolHours()
    world.broadcasts.school_open = lambda school, moment: hours.is_open(moment)
    broadcast_id = world.send()
    await world.deliver()
    world.clock.advance(3 * DAY)
    while hours.is_open(world.clock()):  # on to the evening, then the weekend
        world.clock.advance(3600)
    assert world.broadcasts.chase_due() == 0
    while not hours.is_open(world.clock()):
        world.clock.advance(900)
    assert world.broadcasts.chase_due() == 5
    assert all(k.startswith(f"chase:{broadcast_id}:") for k in chasers(world))


def test_the_date_in_a_chaser_is_the_date_on_the_uk_clock() -> None:
    from bot.broadcasts import _day

    assert _day("2026-06-01T23:30:00+00:00") == "2 June 2026"  # 00:30 BST
    assert _day("2026-12-01T23:30:00+00:00") == "1 December 2026"  # GMT


def test_the_same_form_sent_twice_is_one_broadcast_even_after_a_restart(world: World) -> None:
    """Teams cards carry a form id; it is stored, not only remembered."""
    first = world.broadcasts.create(
        SCHOOL, "slack", "U0HEAD", Draft("Updated policy", "Please read it."), form_id="f-1"
    )
    restarted = Broadcasts(
        world.db, world.outbox, Directory(world.db, world.clock), clock=world.clock
    )
    with pytest.raises(BroadcastRefused) as caught:
        restarted.create(
            SCHOOL, "slack", "U0HEAD", Draft("Updated policy", "Please read it."), form_id="f-1"
        )
    assert caught.value.reason == "already_sent"
    assert [s.id for s in restarted.recent(SCHOOL)] == [first.id]
    # Another form is another broadcast.
    restarted.create(SCHOOL, "slack", "U0HEAD", Draft("Another", "Read this too."), form_id="f-2")
    assert len(restarted.recent(SCHOOL)) == 2
