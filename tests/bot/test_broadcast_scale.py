"""A broadcast to 2,000 staff, through the real Slack sender, exactly once each.

A real SQLite file, 2,000 people in the directory with Slack ids, the Slack
stand-in on 127.0.0.1 answering 429 (Retry-After: 1) to every tenth call, the
real ``SlackSender`` and ``OutboxWorker`` with the default pacing, on a fake
clock: the worker's sleeps (pacing, Retry-After) only move that clock, and
when nothing is due the test jumps the clock to the next row that will be. So
the run takes as long as the HTTP calls do, never the minutes of pacing the
platform would really see.

Then the kill: the worker is cancelled while its 1,000th message is in flight
(Slack has posted it, the answer never comes), the database connection is
dropped as a dying process would, and a fresh Outbox, sender and worker on the
same file finish the job. Still exactly 2,000, nobody twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from adapters.slack.sender import SlackSender, make_sender_client
from bot.broadcasts import Broadcasts, Draft
from bot.config import Secret, SlackSettings, SlackWorkspace
from bot.crypto import SecretBox
from bot.directory import Directory, StaffRow
from bot.outbox import DeliveryPolicy, Outbox, OutboxWorker, OutgoingMessage, SendResult
from tests.support.slack_standin import SlackStandIn

START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
SCHOOL = "st-annes"
TEAM, TOKEN = "T0SCALE", "xoxb-scale-token"
STAFF = 2000
KEY = bytes(range(32))
LEADER = "U0LEADER"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def user(n: int) -> str:
    return f"U{n:06d}"


def staff_rows() -> list[StaffRow]:
    rows = [
        StaffRow(
            1, "head@annes.sch.uk", "Helen Head", ("staff", "leader", "head"), ("slt",), LEADER
        )
    ]
    rows += [
        StaffRow(
            n + 2, f"staff{n}@annes.sch.uk", f"Staff {n:04d}", ("staff",), ("teaching",), user(n)
        )
        for n in range(STAFF)
    ]
    return rows


@dataclass
class Site:
    """One "process": its own connection, outbox, sender and worker on the shared file."""

    db: sqlite_utils.Database
    outbox: Outbox
    worker: OutboxWorker
    broadcasts: Broadcasts


class Rig:
    def __init__(self, path: Path, standin: SlackStandIn) -> None:
        self.path = path
        self.standin = standin
        self.clock = Clock()
        self.settings = SlackSettings(
            "http", (SlackWorkspace(TEAM, SCHOOL, Secret(TOKEN)),), None, None, standin.api_url
        )
        self.sites: list[Site] = []

    def start(self, sender: SlackSender | None = None) -> Site:
        db = sqlite_utils.Database(self.path)
        db.enable_wal()
        # What a server would choose for WAL: durable when the process dies (what
        # this test is about), without an fsync per commit.
        db.execute("PRAGMA synchronous = NORMAL")
        outbox = Outbox(db, SecretBox(KEY), clock=self.clock)

        async def sleep(seconds: float) -> None:
            self.clock.advance(seconds)

        sender = sender or SlackSender(self.settings, make_sender_client(self.standin.api_url))
        worker = OutboxWorker(
            outbox,
            {"slack": sender},
            DeliveryPolicy(batch=100),
            clock=self.clock,
            sleep=sleep,
            random=lambda: 0.5,
        )
        broadcasts = Broadcasts(db, outbox, Directory(db, self.clock), clock=self.clock)
        site = Site(db, outbox, worker, broadcasts)
        self.sites.append(site)
        return site

    async def drain(self, site: Site, max_rounds: int = 2000) -> None:
        """Run the worker until nothing is left, jumping the clock to whatever is
        next due when a round finds nothing to do."""
        for _ in range(max_rounds):
            if await site.worker.run_once():
                continue
            due = site.worker.next_due()
            if due is None:
                return
            self.clock.now = max(self.clock.now, due)
        raise AssertionError("the outbox did not drain")

    def close(self) -> None:
        for site in self.sites:
            site.worker.close()
            site.db.close()


@pytest.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn({TOKEN: TEAM}) as running:
        yield running


@pytest.fixture
def rig(tmp_path: Path, standin: SlackStandIn) -> Iterator[Rig]:
    rig = Rig(tmp_path / "guidebot.db", standin)
    site = rig.start()
    Directory(site.db, rig.clock).import_rows(SCHOOL, staff_rows())
    yield rig
    rig.close()


def announce(site: Site) -> int:
    status = site.broadcasts.create(
        SCHOOL,
        "slack",
        LEADER,
        Draft("Updated: Social Media Policy", "Please read the changes to section 5."),
    )
    assert (status.state, status.recipients, status.unreachable) == ("sent", STAFF, ())
    return status.id


def assert_each_once(standin: SlackStandIn, broadcast_id: int) -> None:
    counted = standin.posted_keys()
    assert len(standin.posted()) == STAFF
    assert set(counted.values()) == {1}
    people = {key.split(":")[2] for key in counted}
    assert len(people) == STAFF
    assert all(key.startswith(f"broadcast:{broadcast_id}:") for key in counted)
    channels = {channel for channel, messages in standin.messages.items() if messages}
    assert channels == {"D" + user(n) for n in range(STAFF)}


async def test_two_thousand_staff_get_the_broadcast_exactly_once_through_429s(
    rig: Rig, standin: SlackStandIn
) -> None:
    site = rig.sites[0]
    broadcast_id = announce(site)
    standin.throttle_every(10)
    await rig.drain(site)

    assert_each_once(standin, broadcast_id)
    throttled = [c for c in standin.calls if c.status == 429]
    assert len(throttled) >= len(standin.calls) // 10 - 1  # Slack really did push back
    # A 429 pauses Slack as a whole, so the worker does not hammer on: every
    # call beyond the 2,000 DMs opened and posted is one that was answered 429.
    assert len(standin.calls) == 2 * STAFF + len(throttled)
    status = site.broadcasts.status(broadcast_id)
    assert status is not None
    assert (status.recipients, status.delivered, status.acknowledged) == (STAFF, STAFF, 0)
    assert site.outbox.counts() == {"pending": 0, "sending": 0, "sent": STAFF, "dead": 0}
    # Default pacing (3 a second, bursts of 6) was kept: 2,000 posts take 11 minutes or more.
    assert rig.clock() - START >= timedelta(seconds=(STAFF - 6) / 3)

    # Acknowledgements: all but ten read it; only those ten are chased.
    for n in range(10, STAFF):
        assert site.broadcasts.acknowledge(broadcast_id, "slack", user(n)) == "recorded"
    assert site.broadcasts.acknowledge(broadcast_id, "slack", user(10)) == "already"
    rig.clock.advance(3 * 86400)
    assert site.broadcasts.chase_due() == 10
    assert site.broadcasts.chase_due() == 0
    await rig.drain(site)
    chased = sorted(k for k in standin.posted_keys() if k.startswith("chase:"))
    assert len(chased) == 10
    status = site.broadcasts.status(broadcast_id)
    assert status is not None
    assert status.acknowledged == STAFF - 10 and status.chasers == 10
    assert sorted(status.outstanding) == [f"Staff {n:04d}" for n in range(10)]


class KilledMidSend(SlackSender):
    """The real sender; at the ``kill_at``-th send Slack takes the message and
    never answers, and the test is told so it can kill the worker."""

    def __init__(self, settings: SlackSettings, standin: SlackStandIn, kill_at: int) -> None:
        super().__init__(settings, make_sender_client(standin.api_url))
        self.standin = standin
        self.kill_at = kill_at
        self.sends = 0
        self.in_flight = asyncio.Event()

    async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult:
        self.sends += 1
        if self.sends == self.kill_at:
            self.standin.hold_posts(accept=True)
            self.in_flight.set()
        return await super().send(recipient, message, key)


async def test_killed_halfway_and_restarted_still_exactly_two_thousand(
    rig: Rig, standin: SlackStandIn
) -> None:
    first = rig.sites[0]
    first.worker.close()
    rig.sites.clear()
    first.db.close()
    dying = KilledMidSend(rig.settings, standin, kill_at=1000)
    site = rig.start(dying)
    broadcast_id = announce(site)
    standin.throttle_every(10)
    running = asyncio.create_task(rig.drain(site))
    async with asyncio.timeout(60):
        await dying.in_flight.wait()
        await standin.wait_for(lambda: bool(standin.in_flight("chat.postMessage")), 30)
    in_flight = standin.in_flight("chat.postMessage")[0]
    held_key = in_flight.params["metadata"]["event_payload"]["key"]
    running.cancel()  # the process dies with the send in flight
    with pytest.raises(asyncio.CancelledError):
        await running
    assert standin.posted_keys()[held_key] == 1  # Slack had taken it
    counts = site.outbox.counts()
    assert counts["sending"] >= 1 and STAFF // 3 < counts["sent"] < 1000
    site.worker.close()
    site.db.close()
    rig.sites.remove(site)
    standin.release_posts()

    restarted = rig.start()  # a fresh process on the same file
    rig.clock.advance(DeliveryPolicy().lease + 1)  # the dead worker's claims run out
    await rig.drain(restarted)

    assert_each_once(standin, broadcast_id)
    held = restarted.outbox.by_key(held_key)
    assert held is not None and held.state == "sent"
    assert held.platform_ref == standin.posted(held_key)[0]["ts"]  # found, not sent again
    assert standin.calls_to("conversations.history")  # it looked before resending
    status = restarted.broadcasts.status(broadcast_id)
    assert status is not None and (status.recipients, status.delivered) == (STAFF, STAFF)
    assert restarted.outbox.counts() == {"pending": 0, "sending": 0, "sent": STAFF, "dead": 0}
