"""The outbox: queueing, sealing, claiming, retrying and settling messages.

Real SQLite in a temporary file, the real SecretBox, a clock the tests move by
hand and a sleep that only moves that clock. Senders are scripted here; the
real Slack and Teams senders are driven against their stand-ins in
tests/adapters/test_outbox_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from bot.crypto import SecretBox
from bot.messages import Action, Button, Quote, Reply
from bot.outbox import (
    BadMessage,
    DeliveryFailed,
    DeliveryPolicy,
    Outbox,
    OutboxWorker,
    OutgoingMessage,
    SendResult,
    reply_from_data,
    reply_to_data,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECRET = "Zanzibarquokka"
"""A word that appears in a message and must appear nowhere else."""
KEY = bytes(range(32))


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Sleeps:
    """The worker's sleep: records each wait and moves the clock instead."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)


@dataclass
class ScriptedSender:
    """A sender that answers from a script (default: delivered)."""

    platform: str = "slack"
    results: list[SendResult | BaseException] = field(default_factory=list)
    found: dict[str, str] = field(default_factory=dict)
    look_error: BaseException | None = None
    sent: list[tuple[str, str, OutgoingMessage]] = field(default_factory=list)
    looked: list[str] = field(default_factory=list)

    async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult:
        self.sent.append((recipient, key, message))
        if self.results:
            result = self.results.pop(0)
            if isinstance(result, BaseException):
                raise result
            return result
        return SendResult(True, platform_ref=f"ts-{len(self.sent)}")

    async def find_sent(self, recipient: str, key: str) -> str | None:
        self.looked.append(key)
        if self.look_error is not None:
            raise self.look_error
        return self.found.get(key)


@dataclass
class World:
    path: Path
    db: sqlite_utils.Database
    clock: Clock
    outbox: Outbox
    sleeps: Sleeps
    sender: ScriptedSender

    def worker(self, *, random: float = 1.0, **policy: object) -> OutboxWorker:
        return OutboxWorker(
            self.outbox,
            {"slack": self.sender},
            DeliveryPolicy(**policy),  # type: ignore[arg-type]
            clock=self.clock,
            sleep=self.sleeps,
            random=lambda: random,
        )

    def state(self, row_id: int) -> str:
        row = self.outbox.row(row_id)
        assert row is not None
        return row.state

    def due_in(self, row_id: int) -> float:
        row = self.outbox.row(row_id)
        assert row is not None
        return (datetime.fromisoformat(row.next_attempt_at) - self.clock()).total_seconds()

    def id_of(self, key: str) -> int:
        row = self.outbox.by_key(key)
        assert row is not None
        return row.id


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    path = tmp_path / "outbox.db"
    db = sqlite_utils.Database(path)
    clock = Clock()
    outbox = Outbox(db, SecretBox(KEY), clock=clock)
    yield World(path, db, clock, outbox, Sleeps(clock), ScriptedSender())
    db.close()


def alert(word: str = SECRET) -> Reply:
    return Reply(
        f"New safeguarding concern: {word}",
        buttons=(Button("View", Action.CONCERN_VIEW, "C-2026-0001", "primary"),),
        kind="notice",
        extra={"concern_ref": "C-2026-0001"},
    )


def full_reply() -> Reply:
    quote = Quote("Staff must not accept friend requests.", "Social Media", "5. Use", "5.2")
    return Reply(
        "Here is what the policy says.",
        quote=quote,
        notes=("Ask your DSL.", "Another note"),
        see_also=(Quote("Report it.", "Safeguarding", "", None),),
        buttons=(
            Button("Helpful", Action.HELPFUL, "7"),
            Button("Report", Action.REPORT_CONCERN, "x", "danger"),
            Button("View", Action.CONCERN_VIEW, "C-1", "primary"),
        ),
        ephemeral=True,
        question_id=7,
        kind="not_found",
        extra={"a": "b", "concern_ref": "C-1"},
    )


# --- Reply <-> data -------------------------------------------------------------------------


def test_a_reply_survives_the_round_trip_through_json() -> None:
    for reply in (full_reply(), Reply("plain"), alert()):
        data = json.loads(json.dumps(reply_to_data(reply)))
        assert reply_from_data(data) == reply


@pytest.mark.parametrize(
    "broken",
    [
        {"text": 3},
        {"text": "x", "kind": "shout"},
        {"text": "x", "buttons": [{"label": "l", "action": "explode", "value": "v"}]},
        {"text": "x", "quote": {"text": "t", "policy": "p"}},
        {"text": "x", "question_id": "7"},
        {"text": "x", "extra": {"a": 1}},
    ],
)
def test_data_that_is_not_a_reply_is_refused(broken: dict[str, object]) -> None:
    with pytest.raises(BadMessage):
        reply_from_data(broken)


# --- queueing -------------------------------------------------------------------------------------


def test_a_dedupe_key_is_queued_once(world: World) -> None:
    assert world.outbox.enqueue("concern:C-1:alert:slack:U1", "slack", "T1:U1", alert())
    assert not world.outbox.enqueue("concern:C-1:alert:slack:U1", "slack", "T1:U1", alert("x"))
    assert world.outbox.counts() == {"pending": 1, "sending": 0, "sent": 0, "dead": 0}
    row = world.outbox.by_key("concern:C-1:alert:slack:U1")
    assert row is not None
    assert reply_from_data(row.message.reply) == alert()  # the first one stays


def test_queueing_joins_the_callers_transaction(world: World) -> None:
    with pytest.raises(RuntimeError), world.db.atomic():
        world.db.execute("CREATE TABLE reports (id INTEGER PRIMARY KEY)")
        world.db.execute("INSERT INTO reports DEFAULT VALUES")
        assert world.outbox.enqueue("concern:C-1:alert", "slack", "T1:U1", alert())
        assert world.outbox.counts()["pending"] == 1  # visible inside the transaction
        assert world.outbox.claim_due(10) == []  # never claimed while it might roll back
        raise RuntimeError("the report could not be stored")
    assert world.outbox.counts()["pending"] == 0
    assert "reports" not in world.db.table_names()
    with world.db.atomic():
        assert world.outbox.enqueue("concern:C-1:alert", "slack", "T1:U1", alert())
    assert [r.dedupe_key for r in world.outbox.claim_due(10)] == ["concern:C-1:alert"]


def test_the_payload_is_sealed_and_bound_to_its_row(world: World) -> None:
    world.outbox.enqueue("concern:C-1:alert", "slack", "T1:U1", alert())
    world.outbox.enqueue("concern:C-2:alert", "slack", "T1:U1", alert("other"))
    world.db.close()
    assert SECRET.encode() not in world.path.read_bytes()
    db = sqlite_utils.Database(world.path)
    try:
        (payload,) = db.execute(
            "SELECT payload FROM outbox WHERE dedupe_key = 'concern:C-1:alert'"
        ).fetchone()
        assert payload.startswith("v1.")
        # Copied onto another row, it does not open: that row is set aside, not sent.
        db.execute(
            "UPDATE outbox SET payload = ? WHERE dedupe_key = 'concern:C-2:alert'", [payload]
        )
        outbox = Outbox(db, SecretBox(KEY), clock=world.clock)
        assert [r.dedupe_key for r in outbox.claim_due(10)] == ["concern:C-1:alert"]
        assert outbox.counts() == {"pending": 1, "sending": 1, "sent": 0, "dead": 0}
        # With another key nothing opens, and nothing is lost either.
        stranger = Outbox(db, SecretBox(bytes(32)), clock=world.clock)
        world.clock.advance(3600)
        assert stranger.claim_due(10) == []
        assert stranger.counts()["pending"] == 2
    finally:
        db.close()


def test_an_enqueue_wakes_listeners(world: World) -> None:
    woken: list[int] = []
    unsubscribe = world.outbox.subscribe(lambda: woken.append(1))
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())  # a duplicate wakes nobody
    unsubscribe()
    world.outbox.enqueue("k2", "slack", "T1:U1", alert())
    assert woken == [1]


# --- claiming -------------------------------------------------------------------------------------


def test_a_claim_is_a_lease(world: World) -> None:
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    [row] = world.outbox.claim_due(10, lease=60)
    assert (row.state, row.attempts, row.uncertain) == ("sending", 1, False)
    assert world.outbox.claim_due(10, lease=60) == []  # held while the lease runs
    world.clock.advance(59)
    assert world.outbox.claim_due(10, lease=60) == []
    world.clock.advance(2)  # the worker that held it died
    [again] = world.outbox.claim_due(10, lease=60)
    assert (again.id, again.attempts, again.uncertain) == (row.id, 2, True)
    world.outbox.mark_sent(row.id, "ts-1")
    world.clock.advance(3600)
    assert world.outbox.claim_due(10) == []
    settled = world.outbox.row(row.id)
    assert settled is not None
    assert (settled.state, settled.platform_ref, settled.sent_at) == (
        "sent",
        "ts-1",
        (START + timedelta(seconds=61)).isoformat(timespec="microseconds"),
    )


def test_claims_take_due_rows_oldest_first_and_respect_the_limit(world: World) -> None:
    for n in range(5):
        world.outbox.enqueue(f"k{n}", "slack", "T1:U1", alert())
        world.clock.advance(1)
    first = world.outbox.claim_due(2)
    assert [r.dedupe_key for r in first] == ["k0", "k1"]
    world.outbox.mark_retry(first[0].id, "busy", 30)
    world.outbox.release(first[1].id)
    second = world.outbox.claim_due(10)
    assert [r.dedupe_key for r in second] == ["k1", "k2", "k3", "k4"]  # k0 is not due yet
    assert second[0].attempts == 1  # a released claim was not an attempt
    world.clock.advance(30)
    [late] = world.outbox.claim_due(10, lease=120)
    assert (late.dedupe_key, late.attempts, late.last_error) == ("k0", 2, "busy")


def test_settled_rows_stay_settled(world: World) -> None:
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    [row] = world.outbox.claim_due(1)
    world.outbox.mark_dead(row.id, "gone")
    world.outbox.mark_retry(row.id, "late", 0)
    world.outbox.mark_sent(row.id, "ts")
    assert world.state(row.id) == "dead"


# --- the worker -----------------------------------------------------------------------------------


async def test_a_due_row_is_sent_and_marked_sent(world: World) -> None:
    world.outbox.enqueue("concern:C-1:alert", "slack", "T1:U1", alert())
    assert await world.worker().run_once() == 1
    [(recipient, key, message)] = world.sender.sent
    assert (recipient, key) == ("T1:U1", "concern:C-1:alert")
    assert reply_from_data(message.reply) == alert()
    assert world.sender.looked == []  # a first attempt has nothing to look for
    assert world.outbox.counts() == {"pending": 0, "sending": 0, "sent": 1, "dead": 0}


async def test_backoff_grows_with_full_jitter_up_to_the_cap(world: World) -> None:
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    row_id = world.id_of("k1")
    waits: list[float] = []
    for _ in range(9):
        world.sender.results.append(SendResult(False, error="HTTP 500"))
        worker = world.worker(random=1.0, base_delay=2.0, max_delay=300.0)
        assert await worker.run_once() == 1
        waits.append(world.due_in(row_id))
        world.clock.advance(waits[-1])
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 300]
    world.sender.results.append(SendResult(False, error="HTTP 500"))
    await world.worker(random=0.25).run_once()
    assert world.due_in(row_id) == 75  # a quarter of the capped step
    world.clock.advance(75)
    await world.worker(random=0.25).run_once()
    assert world.state(row_id) == "sent"
    assert len(world.sender.sent) == 11


async def test_retry_after_is_never_cut_short(world: World) -> None:
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    row_id = world.id_of("k1")
    world.sender.results.append(SendResult(False, retry_after=30.0, error="HTTP 429"))
    await world.worker(random=0.1).run_once()
    assert world.due_in(row_id) == 30
    row = world.outbox.row(row_id)
    assert row is not None and not row.uncertain  # a 429 delivered nothing
    world.clock.advance(29)
    assert await world.worker().run_once() == 0
    world.clock.advance(1)
    assert await world.worker().run_once() == 1
    assert world.state(row_id) == "sent"
    assert world.sender.looked == []


async def test_a_row_is_given_up_after_give_up_after(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world.outbox.enqueue("concern:C-2026-0042:alert:slack:U1", "slack", "T1:U1", alert())
    row_id = world.id_of("concern:C-2026-0042:alert:slack:U1")
    for _ in range(20):
        world.sender.results.append(SendResult(False, error="HTTP 503"))
    for _ in range(20):
        await world.worker(give_up_after=100.0, max_delay=40.0).run_once()
        if world.state(row_id) == "dead":
            break
        world.clock.advance(world.due_in(row_id))
    row = world.outbox.row(row_id)
    assert row is not None and row.state == "dead"
    assert row.last_error is not None and row.last_error.startswith("gave up after")
    assert (world.clock() - START).total_seconds() >= 100
    [dead] = [r for r in caplog.records if "will not be retried" in r.getMessage()]
    assert dead.levelno == logging.WARNING
    assert "concern" in dead.getMessage()
    assert "C-2026-0042" not in caplog.text  # the reference stays out of the log
    assert SECRET not in caplog.text


async def test_a_permanent_failure_is_dead_at_once(world: World) -> None:
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    world.sender.results.append(SendResult(False, permanent=True, error="user_not_found"))
    await world.worker().run_once()
    row = world.outbox.row(world.id_of("k1"))
    assert row is not None and (row.state, row.last_error) == ("dead", "user_not_found")


async def test_an_exception_in_one_send_does_not_stop_the_others(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    world.outbox.enqueue("k2", "slack", "T1:U2", alert())
    world.sender.results.append(RuntimeError(f"exploded while sending {SECRET}"))
    assert await world.worker().run_once() == 2
    first = world.outbox.by_key("k1")
    assert first is not None
    assert (first.state, first.uncertain) == ("pending", True)  # it may have gone
    assert first.last_error == "RuntimeError in send"
    assert world.state(world.id_of("k2")) == "sent"
    assert SECRET not in caplog.text


async def test_a_hung_send_is_abandoned_as_uncertain(world: World) -> None:
    class Hanging(ScriptedSender):
        async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult:
            await asyncio.sleep(10)
            raise AssertionError("not reached")

    world.sender = Hanging()
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    await world.worker(lease=0.1).run_once()
    row = world.outbox.row(world.id_of("k1"))
    assert row is not None and (row.state, row.uncertain, row.last_error) == (
        "pending",
        True,
        "timed out",
    )


async def test_an_uncertain_row_is_looked_for_before_it_is_sent_again(world: World) -> None:
    world.outbox.enqueue("found", "slack", "T1:U1", alert())
    world.outbox.enqueue("missing", "slack", "T1:U2", alert())
    world.outbox.claim_due(10, lease=60)  # a worker claimed both, then died
    world.clock.advance(61)
    world.sender.found["found"] = "1700000000.000100"
    assert await world.worker().run_once() == 2
    assert sorted(world.sender.looked) == ["found", "missing"]
    assert [key for _, key, _ in world.sender.sent] == ["missing"]
    found = world.outbox.by_key("found")
    assert found is not None and (found.state, found.platform_ref) == (
        "sent",
        "1700000000.000100",
    )
    assert world.state(world.id_of("missing")) == "sent"


async def test_after_an_uncertain_failure_the_next_attempt_looks_first(world: World) -> None:
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    world.sender.results.append(SendResult(False, error="timed out", uncertain=True))
    await world.worker().run_once()
    world.clock.advance(world.due_in(world.id_of("k1")))
    world.sender.found["k1"] = "ts-at-slack"  # it had arrived after all
    await world.worker().run_once()
    assert len(world.sender.sent) == 1
    assert world.sender.looked == ["k1"]
    row = world.outbox.by_key("k1")
    assert row is not None and (row.state, row.platform_ref) == ("sent", "ts-at-slack")


async def test_when_nobody_can_look_nothing_is_sent(world: World) -> None:
    world.outbox.enqueue("k1", "slack", "T1:U1", alert())
    world.outbox.claim_due(1, lease=60)
    world.clock.advance(61)
    world.sender.look_error = DeliveryFailed(SendResult(False, retry_after=20, error="HTTP 429"))
    await world.worker(random=0.0).run_once()
    row = world.outbox.by_key("k1")
    assert row is not None and (row.state, row.uncertain) == ("pending", True)
    assert world.due_in(row.id) == 20
    assert world.sender.sent == []
    world.clock.advance(20)
    world.sender.look_error = DeliveryFailed(SendResult(False, permanent=True, error="gone"))
    await world.worker().run_once()
    assert world.state(row.id) == "dead"
    assert world.sender.sent == []


async def test_sends_to_one_recipient_keep_to_the_platforms_rate(world: World) -> None:
    for n in range(3):
        world.outbox.enqueue(f"same{n}", "slack", "T1:U1", alert())
    world.outbox.enqueue("other", "slack", "T1:U2", alert())
    await world.worker(rate_per_second={"slack": 1.0}).run_once()
    assert world.outbox.counts()["sent"] == 4
    assert world.sleeps.waits == [1.0, 1.0]  # U1's second and third; U2 waits for nobody


async def test_stopping_finishes_the_send_in_hand_and_releases_the_rest(world: World) -> None:
    stop = asyncio.Event()

    class StopsTheWorld(ScriptedSender):
        async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult:
            stop.set()  # shutdown begins while this send is in flight
            return await super().send(recipient, message, key)

    world.sender = StopsTheWorld()
    for n in range(3):
        world.outbox.enqueue(f"k{n}", "slack", f"T1:U{n}", alert())
    assert await world.worker().run_once(stop) == 3
    assert world.state(world.id_of("k0")) == "sent"
    for key in ("k1", "k2"):
        row = world.outbox.by_key(key)
        assert row is not None and (row.state, row.attempts) == ("pending", 0)
    assert world.outbox.claim_due(10)  # and they are due at once for the next start


async def test_a_row_for_a_platform_without_a_sender_waits(world: World) -> None:
    world.outbox.enqueue("k1", "teams", "aad-1", alert())
    await world.worker(max_delay=300.0).run_once()
    row = world.outbox.by_key("k1")
    assert row is not None and (row.state, row.last_error) == ("pending", "no sender for teams")
    assert world.due_in(row.id) == 300


async def test_run_forever_wakes_on_enqueue_and_survives_a_failing_round(world: World) -> None:
    stop = asyncio.Event()
    worker = OutboxWorker(world.outbox, {"slack": world.sender}, clock=world.clock)
    real_claim = world.outbox.claim_due
    failures = [RuntimeError("database is locked")]

    def flaky_claim(limit: int, lease: float = 60.0) -> list[object]:
        if failures:
            raise failures.pop()
        return real_claim(limit, lease)  # type: ignore[return-value]

    world.outbox.claim_due = flaky_claim  # type: ignore[assignment,method-assign]
    running = asyncio.create_task(worker.run_forever(stop, poll_interval=30))
    try:
        async with asyncio.timeout(5):
            await asyncio.sleep(0.01)
            assert not failures  # the first round failed, and the loop went on
            world.outbox.enqueue("k1", "slack", "T1:U1", alert())  # wakes it, long before 30s
            while world.outbox.counts()["sent"] != 1:
                await asyncio.sleep(0.005)
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
        worker.close()
    assert [key for _, key, _ in world.sender.sent] == ["k1"]


async def test_nothing_a_message_says_reaches_the_log(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for n in range(4):
        world.outbox.enqueue(
            f"concern:C-2026-000{n}:alert:slack:U{n}", "slack", f"T1:U{n}", alert()
        )
    world.sender.results = [
        SendResult(False, error="HTTP 500", uncertain=True),
        SendResult(False, permanent=True, error="user_not_found"),
        ValueError(SECRET),
        SendResult(False, retry_after=5, error="HTTP 429"),
    ]
    await world.worker().run_once()
    world.clock.advance(3600)
    world.outbox.claim_due(10, lease=1)
    world.clock.advance(2)
    await world.worker().run_once()
    assert caplog.records  # it did say something
    assert SECRET not in caplog.text
    assert "C-2026-000" not in caplog.text
    assert "safeguarding concern" not in caplog.text


def test_a_key_queued_before_is_not_sealed_again_and_is_known_without_the_key(
    tmp_path: Path,
) -> None:
    """Sweeps ask every few minutes whether a reminder is queued: that must not
    re-encrypt it, nor fail when an old row was sealed with another key."""
    db = sqlite_utils.Database(tmp_path / "o.db")
    sealed: list[str] = []

    class CountingBox(SecretBox):
        def seal(self, plaintext: str, context: str) -> str:
            sealed.append(context)
            return super().seal(plaintext, context)

    old = Outbox(db, SecretBox(bytes(range(1, 33))))
    assert old.enqueue("review:1:2027-04-04:28d:7", "slack", "U0HEAD", Reply(SECRET))
    outbox = Outbox(db, CountingBox(KEY))
    assert outbox.has("review:1:2027-04-04:28d:7")  # without opening it
    assert not outbox.has("review:1:2027-04-04:7d:7")
    assert outbox.enqueue("review:1:2027-04-04:28d:7", "slack", "U0HEAD", Reply(SECRET)) is False
    assert sealed == []
    assert outbox.enqueue("review:1:2027-04-04:7d:7", "slack", "U0HEAD", Reply(SECRET)) is True
    assert sealed == ["outbox:review:1:2027-04-04:7d:7"]
