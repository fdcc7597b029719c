"""The scheduler: a lease row so only one process runs the sweeps, take-over
when it runs out, a clean stop, and APScheduler's jobs registered with no
misfire grace on the London clock. The lease is driven by a fake clock; only
the one registration check starts APScheduler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from bot.scheduler import LEASE_JOB, Scheduler, install_sweeps


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)  # the night the clocks change

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


class Counter:
    def __init__(self) -> None:
        self.runs = 0

    def __call__(self) -> int:
        self.runs += 1
        return 0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[tuple[sqlite_utils.Database, sqlite_utils.Database]]:
    """Two connections to one file: two server processes."""
    path = tmp_path / "guidebot.db"
    first, second = sqlite_utils.Database(path), sqlite_utils.Database(path)
    first.enable_wal()
    yield first, second
    first.close()
    second.close()


def pair(
    databases: tuple[sqlite_utils.Database, sqlite_utils.Database], clock: Clock
) -> tuple[Scheduler, Scheduler, Counter, Counter]:
    a = Scheduler(databases[0], clock=clock, holder="server-a")
    b = Scheduler(databases[1], clock=clock, holder="server-b")
    ran_a, ran_b = Counter(), Counter()
    a.add_sweep("reminders", 900, ran_a)
    b.add_sweep("reminders", 900, ran_b)
    return a, b, ran_a, ran_b


async def test_only_the_lease_holder_runs_sweeps(
    databases: tuple[sqlite_utils.Database, sqlite_utils.Database], clock: Clock
) -> None:
    a, b, ran_a, ran_b = pair(databases, clock)
    assert a.take_lease()
    assert not b.take_lease()
    assert await a.run_sweep("reminders")
    assert not await b.run_sweep("reminders")
    assert (ran_a.runs, ran_b.runs) == (1, 0)
    assert a.lease()[0] == "server-a"
    # Renewed every 20 seconds, the lease stays with A however long it runs.
    for _ in range(10):
        clock.advance(20)
        assert a.take_lease()
        assert not b.take_lease()
        assert not await b.run_sweep("reminders")
    assert ran_b.runs == 0


async def test_the_other_takes_over_when_the_lease_runs_out(
    databases: tuple[sqlite_utils.Database, sqlite_utils.Database], clock: Clock
) -> None:
    a, b, ran_a, ran_b = pair(databases, clock)
    assert a.take_lease()
    clock.advance(59)
    assert not b.take_lease()  # not yet
    clock.advance(2)  # A died: its lease ran out a second ago
    assert not a.holding
    assert await b.run_sweep("reminders")  # B takes it over on its next attempt
    assert b.lease()[0] == "server-b"
    assert ran_b.runs == 1
    # A comes back: it finds the lease taken and stays on standby.
    assert not a.take_lease()
    assert not await a.run_sweep("reminders")
    assert ran_a.runs == 0


async def test_a_clean_stop_hands_over_at_once(
    databases: tuple[sqlite_utils.Database, sqlite_utils.Database], clock: Clock
) -> None:
    a, b, _, _ = pair(databases, clock)
    assert a.take_lease()
    a.release_lease()
    assert a.lease() == ("", "")
    assert b.take_lease()
    assert not a.take_lease()


async def test_state_and_a_failing_sweep(
    databases: tuple[sqlite_utils.Database, sqlite_utils.Database],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b, ran_a, _ = pair(databases, clock)

    def broken() -> None:
        raise RuntimeError("Zanzibarquokka said something")

    a.add_sweep("broken", 60, broken)
    a.add_sweep("after", 60, ran_a)
    assert a.state() == "off"
    # Started outside APScheduler (no loop needed for the state itself).
    a._started = True
    b._started = True
    assert a.take_lease() and not b.take_lease()
    assert (a.state(), b.state()) == ("running", "standby")
    with caplog.at_level(logging.WARNING):
        assert await a.run_all() == ["reminders", "broken", "after"]
    assert ran_a.runs == 2  # the sweep after the broken one still ran
    assert "scheduled broken failed: RuntimeError" in caplog.text
    assert "Zanzibarquokka" not in caplog.text


async def test_apscheduler_jobs_have_no_misfire_grace_on_the_london_clock(
    databases: tuple[sqlite_utils.Database, sqlite_utils.Database], clock: Clock
) -> None:
    scheduler = Scheduler(databases[0], clock=clock, holder="server-a")
    ran = asyncio.Event()

    class Sweeps:
        def sweep(self) -> int:
            ran.set()
            return 0

        dispatch_due = chase_due = sweep

    install_sweeps(
        scheduler,
        escalate=Counter(),
        broadcasts=Sweeps(),
        reviews=Sweeps(),
        training=Sweeps(),
        digests=Sweeps(),
    )
    assert scheduler.sweeps == {
        "escalation": 60.0,
        "broadcast-dispatch": 30.0,
        "broadcast-chase": 900.0,
        "review-reminders": 900.0,
        "training-reminders": 900.0,
        "digest": 900.0,
    }
    scheduler.start()
    try:
        assert scheduler.state() == "running"
        jobs = {job.id: job for job in scheduler.jobs()}
        assert set(jobs) == {LEASE_JOB, *scheduler.sweeps}
        for job in jobs.values():
            assert job.misfire_grace_time is None
            assert job.coalesce is True
            assert job.max_instances == 1
            assert str(job.trigger.timezone) == "Europe/London"
        assert jobs["digest"].trigger.interval == timedelta(minutes=15)
        assert str(scheduler._aps.timezone) == "Europe/London"  # type: ignore[union-attr]
        # Every sweep runs at once on start (a run missed while down is not skipped).
        await asyncio.wait_for(ran.wait(), timeout=10)
        # A sweep added later joins the running scheduler.
        scheduler.add_sweep("retention", 3600, Counter())
        assert "retention" in {job.id for job in scheduler.jobs()}
    finally:
        await scheduler.stop()
    assert scheduler.state() == "off"
    assert scheduler.lease() == ("", "")


async def test_two_servers_on_one_database_only_one_runs_the_scheduler(tmp_path: Path) -> None:
    """The real server wiring: every sweep registered, and a second server on the
    same file on standby until the first stops."""
    from aiohttp import web

    from adapters.server import SCHEDULER_KEY, SCHEDULER_STATE_KEY, build_app
    from bot.config import Settings
    from tests.support import sealing_box

    settings = Settings(database=tmp_path / "guidebot.db", host="127.0.0.1", port=0)
    first = build_app(settings, settings.database, secret_box=sealing_box())
    second = build_app(settings, settings.database, secret_box=sealing_box())
    assert set(first[SCHEDULER_KEY].sweeps) == {
        "broadcast-dispatch",
        "broadcast-chase",
        "review-reminders",
        "training-reminders",
        "digest",
        "retention",
    }
    runners = [web.AppRunner(first), web.AppRunner(second)]
    await runners[0].setup()
    try:
        await runners[1].setup()
        try:
            assert "escalation" in first[SCHEDULER_KEY].sweeps  # added as the app starts
            assert (first[SCHEDULER_STATE_KEY](), second[SCHEDULER_STATE_KEY]()) == (  # type: ignore[operator]
                "running",
                "standby",
            )
        finally:
            await runners[0].cleanup()
        # The first stopped cleanly and gave the lease up: the second takes over
        # at its next attempt.
        assert await second[SCHEDULER_KEY].run_sweep("digest")
        assert second[SCHEDULER_STATE_KEY]() == "running"  # type: ignore[operator]
    finally:
        await runners[1].cleanup()
