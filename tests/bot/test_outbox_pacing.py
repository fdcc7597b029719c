"""The outbox at scale: a platform's "slow down" pauses all of it, a token
bucket keeps each platform to its overall rate, and a big queue costs a
number of statements proportional to its size.

Real SQLite in a temporary file, scripted senders, a fake clock that only the
worker's sleeps (and the tests) move.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from bot.crypto import SecretBox
from bot.messages import Reply
from bot.outbox import (
    DeliveryFailed,
    DeliveryPolicy,
    Outbox,
    OutboxWorker,
    OutgoingMessage,
    SendResult,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


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
    results: list[SendResult] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult:
        self.sent.append(key)
        if self.results:
            return self.results.pop(0)
        return SendResult(True, platform_ref=f"ref-{len(self.sent)}")

    async def find_sent(self, recipient: str, key: str) -> str | None:
        return None


class World:
    def __init__(self, path: Path) -> None:
        self.clock = Clock()
        self.db = sqlite_utils.Database(path)
        self.db.execute("PRAGMA synchronous = OFF")  # counting work here, not waiting on disks
        self.outbox = Outbox(self.db, SecretBox(bytes(range(32))), clock=self.clock)
        self.slack = Scripted("slack")
        self.teams = Scripted("teams")
        self.waits: list[float] = []

    def worker(self, **policy: object) -> OutboxWorker:
        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)
            self.clock.advance(seconds)
            await asyncio.sleep(0)

        policy.setdefault("rate_per_second", {})
        return OutboxWorker(
            self.outbox,
            {"slack": self.slack, "teams": self.teams},
            DeliveryPolicy(**policy),  # type: ignore[arg-type]
            clock=self.clock,
            sleep=sleep,
            random=lambda: 0.0,
        )

    def queue(
        self, key: str, platform: str = "slack", recipient: str | None = None, *, bulk: bool = False
    ) -> None:
        message = Reply(f"about {key}")
        assert self.outbox.enqueue(key, platform, recipient or f"U-{key}", message, bulk=bulk)

    def row(self, key: str) -> tuple[str, int, float]:
        """(state, attempts, seconds until due) of a row."""
        row = self.outbox.by_key(key)
        assert row is not None
        due = (datetime.fromisoformat(row.next_attempt_at) - self.clock()).total_seconds()
        return row.state, row.attempts, due


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path / "outbox.db")
    yield made
    made.db.close()


def test_the_defaults_are_a_few_a_second_on_slack_and_fifteen_on_teams() -> None:
    policy = DeliveryPolicy()
    assert dict(policy.platform_rate) == {"slack": 3.0, "teams": 15.0}
    assert policy.burst == 2.0


async def test_a_slack_429_pauses_all_of_slack_and_releases_the_rest_unsent(
    world: World,
) -> None:
    for n in range(5):
        world.queue(f"s{n}")
    world.queue("t0", "teams")
    world.slack.results.append(SendResult(False, retry_after=30.0, error="HTTP 429"))
    worker = world.worker()
    assert await worker.run_once() == 6
    assert world.slack.sent == ["s0"]  # nobody else on Slack was tried
    assert world.teams.sent == ["t0"]  # Teams carried on
    assert world.row("s0") == ("pending", 1, 30.0)  # that claim was an attempt
    for n in range(1, 5):
        assert world.row(f"s{n}") == ("pending", 0, 30.0)  # given back, not counted
    assert world.row("t0")[0] == "sent"
    assert worker.next_due() == START + timedelta(seconds=30)

    world.clock.advance(10)
    world.queue("s5")  # queued during the pause: due now, but Slack is paused
    world.queue("t1", "teams")
    assert await worker.run_once() == 1
    assert world.teams.sent == ["t0", "t1"]
    assert world.row("s5") == ("pending", 0, -0.0)
    assert worker.next_due() == START + timedelta(seconds=30)

    world.clock.advance(20)
    assert await worker.run_once() == 6
    assert sorted(world.slack.sent) == ["s0", "s0", "s1", "s2", "s3", "s4", "s5"]
    assert world.outbox.counts()["sent"] == 8


async def test_a_teams_429_pauses_teams_only(world: World) -> None:
    for n in range(3):
        world.queue(f"t{n}", "teams")
        world.queue(f"s{n}")
    world.teams.results.append(SendResult(False, retry_after=5.0, error="HTTP 429"))
    worker = world.worker()
    await worker.run_once()
    assert world.teams.sent == ["t0"]
    assert sorted(world.slack.sent) == ["s0", "s1", "s2"]
    assert world.row("t2") == ("pending", 0, 5.0)
    assert worker.paused_until == {"teams": START + timedelta(seconds=5)}


async def test_a_failure_without_retry_after_pauses_nothing(world: World) -> None:
    world.queue("s0")
    world.queue("s1")
    world.slack.results.append(SendResult(False, error="HTTP 500", uncertain=True))
    worker = world.worker()
    await worker.run_once()
    assert world.slack.sent == ["s0", "s1"]
    assert worker.paused_until == {}


async def test_a_look_answered_429_pauses_the_platform_too(world: World) -> None:
    world.queue("s0")
    world.queue("s1")
    world.outbox.claim_due(10, lease=60)  # a worker claimed both and died
    world.clock.advance(61)

    class SlowDown(Scripted):
        async def find_sent(self, recipient: str, key: str) -> str | None:
            raise DeliveryFailed(SendResult(False, retry_after=12.0, error="HTTP 429"))

    world.slack = SlowDown("slack")
    worker = world.worker()
    await worker.run_once()
    assert world.slack.sent == []
    assert world.row("s0") == ("pending", 2, 12.0)  # still to be looked for first
    assert world.row("s1") == ("pending", 1, 12.0)  # released: its second claim not counted
    assert worker.paused_until == {"slack": START + timedelta(seconds=73)}


async def test_the_token_bucket_keeps_a_platform_to_its_rate(world: World) -> None:
    for n in range(20):
        world.queue(f"s{n}")
    worker = world.worker(platform_rate={"slack": 2.0}, burst=2.0)
    await worker.run_until_idle()
    assert len(world.slack.sent) == 20
    assert world.waits == [0.5] * 16  # a burst of 4 (2 seconds' worth), then 2 a second
    assert world.clock() - START == timedelta(seconds=8)


async def test_a_quiet_bucket_refills_to_its_burst(world: World) -> None:
    worker = world.worker(platform_rate={"slack": 2.0}, burst=2.0)
    for n in range(6):
        world.queue(f"a{n}")
    await worker.run_until_idle()
    assert world.waits == [0.5, 0.5]
    world.clock.advance(60)
    for n in range(4):
        world.queue(f"b{n}")
    await worker.run_until_idle()
    assert world.waits == [0.5, 0.5]  # four more went at once


@pytest.mark.parametrize("unlimited", [{}, {"slack": 0.0}, {"slack": None}])
async def test_no_rate_means_no_waiting(world: World, unlimited: dict[str, float | None]) -> None:
    for n in range(30):
        world.queue(f"s{n}")
    await world.worker(platform_rate=unlimited).run_until_idle()
    assert len(world.slack.sent) == 30 and world.waits == []


def test_a_claim_can_leave_a_platform_alone(world: World) -> None:
    world.queue("s0")
    world.queue("t0", "teams")
    assert [r.dedupe_key for r in world.outbox.claim_due(10, skip={"slack"})] == ["t0"]
    assert [r.dedupe_key for r in world.outbox.claim_due(10, skip={"slack", "teams"})] == []
    assert [r.dedupe_key for r in world.outbox.claim_due(10)] == ["s0"]


def test_releasing_many_claims_is_one_statement_and_counts_no_attempt(world: World) -> None:
    with world.db.atomic():
        for n in range(1200):
            world.queue(f"s{n}")
    rows = world.outbox.claim_due(1200)
    statements: list[str] = []
    world.db.conn.set_trace_callback(statements.append)
    world.outbox.release_many([r.id for r in rows], 7.0)
    world.db.conn.set_trace_callback(None)
    assert len([s for s in statements if s.lstrip().upper().startswith("UPDATE")]) == 3  # 500s
    assert world.outbox.counts()["pending"] == 1200
    assert world.row("s999") == ("pending", 0, 7.0)


async def test_delivering_a_big_queue_costs_a_few_statements_a_row(world: World) -> None:
    async def statements_for(rows: int, prefix: str) -> int:
        for n in range(rows):
            world.queue(f"{prefix}{n}")
        counted: list[str] = []
        world.db.conn.set_trace_callback(counted.append)
        try:
            await world.worker(platform_rate={}).run_until_idle()
        finally:
            world.db.conn.set_trace_callback(None)
        assert world.outbox.counts()["pending"] == 0
        return len(counted)

    small = await statements_for(250, "a")
    large = await statements_for(1000, "b")
    assert large <= 4.2 * small  # linear: four times the rows, four times the work
    assert large / 1000 < 12  # and a handful of statements for each row


# --- a broadcast never holds up an alert ----------------------------------------------------------


def test_any_other_due_message_is_claimed_before_bulk_ones(world: World) -> None:
    for n in range(100):
        world.queue(f"broadcast:1:{n}:slack", bulk=True)
    world.clock.advance(5)
    world.queue("concern:C-1:alert:slack:U1")
    claimed = world.outbox.claim_due(3)
    assert [r.dedupe_key for r in claimed] == [
        "concern:C-1:alert:slack:U1",
        "broadcast:1:0:slack",
        "broadcast:1:1:slack",
    ]
    assert [r.bulk for r in claimed] == [False, True, True]


async def test_an_alert_queued_mid_broadcast_goes_next(world: World) -> None:
    for n in range(20):
        world.queue(f"broadcast:1:{n}:slack", bulk=True)

    class RaisesAConcern(Scripted):
        async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult:
            if key == "broadcast:1:2:slack":
                world.queue("concern:C-1:alert:slack:U1")  # someone reports a concern
            return await super().send(recipient, message, key)

    world.slack = RaisesAConcern("slack")
    worker = world.worker(platform_rate={})
    assert await worker.run_once() == 20
    assert world.slack.sent == [f"broadcast:1:{n}:slack" for n in range(3)]
    assert world.row("broadcast:1:3:slack") == ("pending", 0, 0.0)  # given back, not an attempt
    await worker.run_once()
    assert world.slack.sent[3] == "concern:C-1:alert:slack:U1"
    await worker.run_until_idle()
    assert len(world.slack.sent) == 21 and world.outbox.counts()["sent"] == 21
