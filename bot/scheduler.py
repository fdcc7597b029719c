"""Timed work in the server process: APScheduler, where every job is a sweep.

Each job is an idempotent sweep over the database ("send what is due and not
yet sent", every message keyed by a unique outbox row): the safeguarding
escalation sweep, broadcasts due and their chasers, policy review and
training reminders, and the weekly digest. So a restart, a run missed while
the server was down, or a run repeated never double-sends or skips: the next
sweep finds whatever is due. Jobs live in APScheduler's ``MemoryJobStore``
only and are added again at every start: nothing is pickled, and no job
store is shared between processes (APScheduler does not support that).
Every job has ``coalesce=True, max_instances=1, misfire_grace_time=None``:
APScheduler's default grace of one second would silently drop a run that was
late, e.g. while the event loop was busy.

Two server processes on one database: only one may run the sweeps. The one
that holds the lease (the single row of ``scheduler_lease``: holder and
expiry) runs them; the other serves chat only and keeps trying to take over.
The lease is taken or renewed every ``renew_seconds`` (20) for
``lease_seconds`` (60) in one atomic ``UPDATE ... WHERE expires_at < now OR
holder = me``, so at most one process holds it at a time, and a process that
dies is replaced within a minute. A clean stop releases it at once.
``state()`` says ``running`` (holding the lease), ``standby`` or ``off``.

Timezone: the scheduler runs on Europe/London time (``timezone``), so
anything later given a time of day (a cron-like job) keeps to the clock on the
staffroom wall across the clock changes; the sweeps themselves decide what is
due from the school's own clock (``bot.school_hours``).

Settings for the timed work (``ScheduleSettings``, read by ``bot.config``):
``[school_hours]``, ``[training]``, ``[digest]`` and, per school,
``[schools.SLUG.school_hours]`` and ``[schools.SLUG.digest]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlite_utils
from apscheduler.executors.asyncio import AsyncIOExecutor  # type: ignore[import-untyped]
from apscheduler.job import Job as APJob  # type: ignore[import-untyped]
from apscheduler.jobstores.memory import MemoryJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from bot.digest import DigestSettings, SchoolDigest, parse_digest, parse_school_digest
from bot.outbox import stamp, utcnow
from bot.school_hours import SchoolHours, parse_school_hours
from bot.training import TrainingSettings, parse_training
from knowledge.store import run_migrations
from knowledge.text import slugify

log = logging.getLogger(__name__)

TIMEZONE = "Europe/London"
LEASE_SECONDS = 60.0
RENEW_SECONDS = 20.0
STOP_TIMEOUT = 20.0
"""Seconds ``stop`` waits for a sweep in progress to finish."""
LEASE_JOB = "scheduler-lease"

ESCALATION_SECONDS = 60.0
DISPATCH_SECONDS = 30.0
CHASE_SECONDS = 15 * 60.0
REMINDER_SECONDS = 15 * 60.0
DIGEST_SECONDS = 15 * 60.0

Sweep = Callable[[], Awaitable[object] | object]
SchedulerState = Literal["running", "standby", "off"]


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSettings:
    """Everything the timed work reads from guidebot.toml."""

    hours: SchoolHours = field(default_factory=SchoolHours)
    school_hours: Mapping[str, SchoolHours] = field(default_factory=dict)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)

    def hours_for(self, school: str) -> SchoolHours:
        return self.school_hours.get(school) or self.hours


def parse_schedule(raw: Mapping[str, Any], where: str = "") -> ScheduleSettings:
    """``[school_hours]``, ``[training]``, ``[digest]`` and each school's own
    ``school_hours`` and ``digest`` tables, from the whole settings file."""
    from bot.config import ConfigError

    hours = parse_school_hours(raw.get("school_hours"), f"{where}school_hours.")
    training = parse_training(raw.get("training"), f"{where}training.")
    digest = parse_digest(raw.get("digest"), f"{where}digest.")
    per_school_hours: dict[str, SchoolHours] = {}
    per_school_digest: dict[str, SchoolDigest] = {}
    schools = raw.get("schools", {})
    if not isinstance(schools, Mapping):
        raise ConfigError(f"{where}schools must be a table, like [{where}schools.st-annes]")
    for typed, table in schools.items():
        if not isinstance(table, Mapping):
            continue  # bot.config reports it
        slug = slugify(typed)
        here = f"{where}schools.{typed}."
        if "school_hours" in table:
            per_school_hours[slug] = parse_school_hours(
                table["school_hours"], f"{here}school_hours.", base=hours
            )
        if "digest" in table:
            per_school_digest[slug] = parse_school_digest(table["digest"], f"{here}digest.")
    if per_school_digest:
        digest = DigestSettings(digest.weekday, digest.at, digest.roles, per_school_digest)
    return ScheduleSettings(hours, per_school_hours, training, digest)


# --- the lease -----------------------------------------------------------------------------------


def _m001_lease(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE scheduler_lease (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            holder TEXT NOT NULL DEFAULT '',
            expires_at TEXT NOT NULL DEFAULT '',
            taken_at TEXT
        )
        """
    )
    db.execute("INSERT INTO scheduler_lease (id, holder, expires_at) VALUES (1, '', '')")


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("scheduler_m001_lease", _m001_lease),
)


def default_holder() -> str:
    """This process, uniquely: host, pid and a random part (a pid is reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- the scheduler -------------------------------------------------------------------------------


class Scheduler:
    """APScheduler's AsyncIOScheduler running sweeps under a database lease
    (see the module notes). ``add_sweep`` before or after ``start``; ``start``
    in the running event loop; ``await stop()`` at shutdown."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        holder: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
        timezone: str = TIMEZONE,
    ) -> None:
        self.db = db
        self.clock = clock
        self.holder = holder or default_holder()
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.timezone = ZoneInfo(timezone)
        self._sweeps: dict[str, tuple[float, Sweep]] = {}
        self._aps: AsyncIOScheduler | None = None
        self._held_until: datetime | None = None
        self._started = False
        self._said_standby = False
        self._in_flight: set[asyncio.Future[bool]] = set()
        run_migrations(db, MIGRATIONS)

    # sweeps -------------------------------------------------------------------------------

    def add_sweep(self, name: str, seconds: float, job: Sweep) -> None:
        """Run ``job`` (sync or async, idempotent) every ``seconds`` while this
        process holds the lease. A name added twice replaces the earlier job."""
        if not name or name == LEASE_JOB:
            raise ValueError(f"{name!r} cannot name a sweep")
        if seconds <= 0:
            raise ValueError("a sweep needs a positive interval")
        self._sweeps[name] = (seconds, job)
        if self._aps is not None:
            self._add_job(name, seconds)

    @property
    def sweeps(self) -> dict[str, float]:
        """Each sweep's name and interval in seconds."""
        return {name: seconds for name, (seconds, _) in self._sweeps.items()}

    async def run_sweep(self, name: str) -> bool:
        """Run one sweep now if this process holds the lease; False if it does
        not (standby). A lease that has run out (the clock jumped, the loop was
        busy) is taken again first if nobody else has it. A failing sweep is
        logged by exception type only (sweeps handle confidential data) and
        counts as run."""
        if not self.holding and not self.take_lease():
            return False
        _, job = self._sweeps[name]
        try:
            result = job()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            log.warning("scheduled %s failed: %s", name, type(exc).__name__)
        return True

    async def run_all(self) -> list[str]:
        """Run every sweep once, in the order added; returns those that ran."""
        return [name for name in list(self._sweeps) if await self.run_sweep(name)]

    # the lease ----------------------------------------------------------------------------

    @property
    def holding(self) -> bool:
        return self._held_until is not None and self.clock() < self._held_until

    def take_lease(self) -> bool:
        """Take the lease if it is free or expired, or renew it if ours; True if held."""
        if self.db.conn.in_transaction:
            return self.holding  # never commit someone else's transaction
        now = self.clock()
        until = now + timedelta(seconds=self.lease_seconds)
        was_holding = self.holding
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE scheduler_lease SET holder = :me, expires_at = :until,"
                " taken_at = CASE WHEN holder = :me THEN taken_at ELSE :now END"
                " WHERE id = 1 AND (expires_at < :now OR holder = :me)",
                {"me": self.holder, "until": stamp(until), "now": stamp(now)},
            )
        if cursor.rowcount == 1:
            if not was_holding:
                log.info("this process runs the scheduled jobs (scheduler lease taken)")
                self._said_standby = False
            self._held_until = until
            return True
        if was_holding or not self._said_standby:
            log.warning("another process holds the scheduler lease: scheduled jobs on standby")
            self._said_standby = True
        self._held_until = None
        return False

    def release_lease(self) -> None:
        """Give the lease up (at a clean stop) so another process can take over at once."""
        self._held_until = None
        if self.db.conn.in_transaction:
            return
        with self.db.atomic():
            self.db.execute(
                "UPDATE scheduler_lease SET holder = '', expires_at = ''"
                " WHERE id = 1 AND holder = ?",
                [self.holder],
            )

    def lease(self) -> tuple[str, str]:
        """(holder, expires at) as stored, for operators and tests."""
        row = self.db.execute("SELECT holder, expires_at FROM scheduler_lease WHERE id = 1")
        holder, expires = row.fetchone()
        return str(holder), str(expires)

    def state(self) -> SchedulerState:
        if not self._started:
            return "off"
        return "running" if self.holding else "standby"

    # APScheduler --------------------------------------------------------------------------

    def start(self) -> None:
        """Take the lease if free, then start APScheduler in the running event
        loop: the lease job every ``renew_seconds``, each sweep at once and then
        every interval."""
        if self._started:
            return
        asyncio.get_running_loop()  # AsyncIOScheduler needs one; fail here, clearly
        if logging.getLogger("apscheduler").level == logging.NOTSET:
            # "Running job ... executed successfully" every 20 seconds is noise.
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._started = True
        self.take_lease()
        self._aps = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": AsyncIOExecutor()},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=self.timezone,
        )
        self._aps.add_job(
            self._renew,
            IntervalTrigger(seconds=self.renew_seconds, timezone=self.timezone),
            id=LEASE_JOB,
            name=LEASE_JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        for name, (seconds, _) in self._sweeps.items():
            self._add_job(name, seconds)
        self._aps.start()

    def _add_job(self, name: str, seconds: float) -> None:
        assert self._aps is not None
        self._aps.add_job(
            self._job,
            IntervalTrigger(seconds=seconds, timezone=self.timezone),
            args=[name],
            id=name,
            name=name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            next_run_time=datetime.now(self.timezone),
        )

    def jobs(self) -> list[APJob]:
        """APScheduler's jobs (empty before ``start``)."""
        return list(self._aps.get_jobs()) if self._aps is not None else []

    async def _renew(self) -> None:
        try:
            self.take_lease()
        except Exception as exc:  # a locked database: try again next time
            log.warning("renewing the scheduler lease failed: %s", type(exc).__name__)

    async def _job(self, name: str) -> None:
        # Shielded, so stopping APScheduler (which cancels its tasks) never cuts
        # a sweep in half: ``stop`` waits for it instead.
        task = asyncio.ensure_future(self.run_sweep(name))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        await asyncio.shield(task)

    async def stop(self) -> None:
        """Stop APScheduler, let a sweep in progress finish, release the lease."""
        if not self._started:
            return
        self._started = False
        aps, self._aps = self._aps, None
        if aps is not None and aps.running:
            aps.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=STOP_TIMEOUT)
            for task in late:
                log.warning("a scheduled sweep did not stop in time: cancelled")
                task.cancel()
        with contextlib.suppress(Exception):
            self.release_lease()


def install_sweeps(
    scheduler: Scheduler,
    *,
    escalate: Sweep | None = None,
    escalation_seconds: float = ESCALATION_SECONDS,
    broadcasts: Any = None,
    reviews: Any = None,
    training: Any = None,
    digests: Any = None,
) -> None:
    """Add the standard sweeps for whichever services there are: ``escalate``
    (``Concerns.escalate_due``), ``broadcasts`` (``dispatch_due`` and
    ``chase_due``), ``reviews`` / ``training`` / ``digests`` (their ``sweep``)."""
    if escalate is not None:
        scheduler.add_sweep("escalation", escalation_seconds, escalate)
    if broadcasts is not None:
        scheduler.add_sweep("broadcast-dispatch", DISPATCH_SECONDS, broadcasts.dispatch_due)
        scheduler.add_sweep("broadcast-chase", CHASE_SECONDS, broadcasts.chase_due)
    if reviews is not None:
        scheduler.add_sweep("review-reminders", REMINDER_SECONDS, reviews.sweep)
    if training is not None:
        scheduler.add_sweep("training-reminders", REMINDER_SECONDS, training.sweep)
    if digests is not None:
        scheduler.add_sweep("digest", DIGEST_SECONDS, digests.sweep)
