"""Safeguarding alerts: how fast they reach the DSL, and that none is lost or doubled.

    python -m benchmarks.concern_bench             # the table
    python -m benchmarks.concern_bench --strict    # exit 1 if an alert was lost or duplicated
    python -m benchmarks.concern_bench --json

This process is Slack (the Web API stand-in, tests/support/slack_standin.py,
on 127.0.0.1) and the school: it submits concerns with ``Concerns.submit``
(or, if that cannot be used, queues an alert with ``Outbox.enqueue`` as
``submit`` would), into a real SQLite file. The outbox worker sends through
the real ``SlackSender`` over loopback HTTP.

(a) Latency: 200 submissions, one at a time, each timed from just before
    ``submit`` to the DSL's direct message arriving at the stand-in, with the
    worker running (``run_forever``, woken by the enqueue). Slack's pacing of
    about one message a second per DM (``rate_per_second``) is switched off
    here, so this is the pipeline's own latency; with it on, back-to-back
    alerts to one DSL are spaced a second apart by design.
(b) Chaos: 100 submissions while the stand-in fails ~30% of calls at random
    (429 with Retry-After, 500, or no answer within the client's timeout; half
    of the failed posts having reached the DSL anyway), and the worker is
    restarted at random: first in this process (its task cancelled mid-flight
    and a new worker started), then as a separate process killed with SIGKILL
    and started again. The claim lease is shortened to a few seconds so the
    sends cut off by a kill are retried (after looking for them) quickly.
    At the end every alert must have arrived exactly once: the stand-in counts
    them by the outbox key in each message's metadata.

It is a report: the exit code is 0 unless --strict finds an alert lost or
duplicated (or one not delivered within the time allowed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

LATENCY_SAMPLES = 200
CHAOS_SAMPLES = 100
FAULT_RATE = 0.3
CLIENT_TIMEOUT = 0.5
"""Seconds the sender's Web API client waits (a "timeout" fault hangs longer)."""
HANG = 1.0
LEASE = 3.0
DELIVERY_DEADLINE = 600.0
"""Seconds (b) waits for every alert, after the last submission, before counting
what has not arrived as lost. Each Retry-After pauses the whole platform (see
bot/outbox.py) and the worker sends one row at a time, so with 30% of calls
failing the last alerts arrive after about two minutes: slow, which the
latency rows show, but not lost."""
PROCESS_RESTARTS = 3
TASK_RESTARTS = 5
KEY = bytes(range(32))
TEAM, TOKEN = "T0BENCH", "xoxb-bench-token"
DSL = "U0BENCHDSL"
SCHOOL = "st-bench"


@dataclass
class Latency:
    name: str
    samples: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class Outcome:
    latency: list[Latency] = field(default_factory=list)
    submitted: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    task_restarts: int = 0
    process_restarts: int = 0
    faults: int = 0
    via: str = ""


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarise(name: str, seconds: Sequence[float]) -> Latency:
    ms = [s * 1000 for s in seconds] or [math.nan]
    return Latency(
        name,
        len(seconds),
        statistics.median(ms),
        percentile(ms, 90),
        percentile(ms, 99),
        max(ms),
    )


# --- the pieces -------------------------------------------------------------------------------


def slack_settings(api_url: str) -> Any:
    from bot.config import Secret, SlackSettings, SlackWorkspace

    return SlackSettings(
        "http", (SlackWorkspace(TEAM, SCHOOL, Secret(TOKEN)),), Secret("unused"), None, api_url
    )


def make_worker(outbox: Any, api_url: str, *, chaos: bool) -> Any:
    from adapters.slack.sender import SlackSender, make_sender_client
    from bot.outbox import DeliveryPolicy, OutboxWorker

    sender = SlackSender(
        slack_settings(api_url), make_sender_client(api_url, timeout=CLIENT_TIMEOUT)
    )
    policy = DeliveryPolicy(
        base_delay=0.5 if chaos else 2.0,
        max_delay=4.0 if chaos else 300.0,
        lease=LEASE if chaos else 60.0,
        rate_per_second={},
        platform_rate={},  # the pipeline's own latency, not Slack's pacing
    )
    return OutboxWorker(outbox, {"slack": sender}, policy)


class Submitter:
    """``Concerns.submit`` if it can be used here, else the same alert queued by hand."""

    def __init__(self, kb: Any, outbox: Any) -> None:
        self.kb = kb
        self.outbox = outbox
        self.count = 0
        self.concerns: Any = None
        self.via = "Outbox.enqueue (Concerns.submit unavailable)"
        try:
            from bot.concerns import ConcernForm, Concerns, Person

            settings = self._settings()
            self.concerns = Concerns(kb.db, outbox.box, lambda school: settings, outbox)
            self._form = ConcernForm(
                about="pupil",
                about_name="A.B.",
                what="Benchmark: a disclosure made at break time.",
                when_where="Playground, 10:40",
                immediate_danger=False,
                actions_taken="Listened and wrote it down.",
            )
            self._reporter = Person("slack", "U0BENCHSTAFF")
            self.submit()  # proves it works here (and warms it up)
            self.via = "Concerns.submit"
        except Exception as exc:
            self.concerns = None
            self.via = f"Outbox.enqueue (Concerns.submit unavailable: {type(exc).__name__})"

    @staticmethod
    def _settings() -> Any:
        from bot.config import SafeguardingSettings

        return SafeguardingSettings(dsl=(f"slack:{DSL}",))

    def submit(self) -> str:
        """Submit one concern; returns the outbox key of the DSL's alert."""
        self.count += 1
        if self.concerns is not None:
            submitted = self.concerns.submit(SCHOOL, self._reporter, self._form)
            return f"concern:{submitted.ref}:alert:slack:{DSL}"
        from bot.messages import Action, Button, Reply

        ref = f"C-2026-{self.count:04d}"
        key = f"concern:{ref}:alert:slack:{DSL}"
        reply = Reply(
            f"New safeguarding concern {ref}.",
            buttons=(Button("View", Action.CONCERN_VIEW, ref, "primary"),),
            kind="notice",
        )
        with self.kb.db.atomic():
            self.outbox.enqueue(key, "slack", f"{TEAM}:{DSL}", reply)
        return key


def _has(slack: Any, key: str) -> bool:
    return key in slack.posted_keys()


# --- (b)'s worker in its own process ------------------------------------------------------------


def worker_child(database: str, api_url: str) -> None:
    """What the child process runs: one outbox worker, until it is killed."""
    from bot.crypto import SecretBox
    from bot.outbox import Outbox
    from knowledge.store import KnowledgeBase

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    kb = KnowledgeBase(database)
    outbox = Outbox(kb.db, SecretBox(KEY))
    worker = make_worker(outbox, api_url, chaos=True)
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("worker ready", file=sys.stderr, flush=True)
        await worker.run_forever(stop, poll_interval=0.1)

    asyncio.run(run())
    kb.close()


async def start_child(database: Path, api_url: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.concern_bench",
        "--worker-child",
        str(database),
        api_url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    async with asyncio.timeout(30):
        line = await process.stderr.readline()
    if b"worker ready" not in line:
        raise RuntimeError(f"the worker process did not start: {line!r}")
    return process


async def kill_child(process: asyncio.subprocess.Process | None) -> None:
    if process is not None and process.returncode is None:
        process.kill()
        await asyncio.wait_for(process.wait(), 10)


# --- the benchmark -----------------------------------------------------------------------------


async def bench(latency_samples: int, chaos_samples: int, seed: int) -> Outcome:
    from bot.crypto import SecretBox
    from bot.outbox import Outbox
    from knowledge.store import KnowledgeBase
    from tests.support.slack_standin import SlackStandIn

    logging.getLogger("bot.outbox").setLevel(logging.ERROR)
    logging.getLogger("bot.concerns").setLevel(logging.ERROR)
    outcome = Outcome()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "bench.db"
        kb = KnowledgeBase(database)
        outbox = Outbox(kb.db, SecretBox(KEY))
        async with SlackStandIn({TOKEN: TEAM}) as slack:
            submitter = Submitter(kb, outbox)
            outcome.via = submitter.via
            stop = asyncio.Event()

            # (a) one at a time, worker running -------------------------------------------
            worker = make_worker(outbox, slack.api_url, chaos=False)
            running = asyncio.create_task(worker.run_forever(stop, poll_interval=1.0))
            times: list[float] = []
            try:
                for _ in range(latency_samples):
                    started = time.perf_counter()
                    key = submitter.submit()
                    await slack.wait_for(partial(_has, slack, key), 10)
                    times.append(time.perf_counter() - started)
            finally:
                stop.set()
                await running
                worker.close()
            outcome.latency.append(
                summarise(f"(a) one at a time, via {submitter.via.split(' ')[0]}", times)
            )

            # (b) faults and restarts ---------------------------------------------------------
            slack.chaos(FAULT_RATE, seed=seed, hang=HANG)
            calls_before = len(slack.calls)
            submitted_at: dict[str, float] = {}
            arrived_at: dict[str, float] = {}

            def note_arrivals() -> None:
                now = time.perf_counter()
                for k in slack.posted_keys():
                    if k in submitted_at and k not in arrived_at:
                        arrived_at[k] = now

            async def watch_arrivals() -> None:
                while True:
                    await asyncio.sleep(0.01)
                    note_arrivals()

            watcher = asyncio.create_task(watch_arrivals())
            half = chaos_samples // 2
            try:
                # (b1) the worker in this process, its task cancelled at random.
                stop = asyncio.Event()
                worker = make_worker(outbox, slack.api_url, chaos=True)
                running = asyncio.create_task(worker.run_forever(stop, poll_interval=0.1))
                cancels = set(rng.sample(range(1, half), min(TASK_RESTARTS, half - 1)))
                for n in range(half):
                    if n in cancels:
                        await asyncio.sleep(rng.uniform(0.0, 0.3))  # often mid-send
                        running.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await running
                        worker.close()
                        outcome.task_restarts += 1
                        worker = make_worker(outbox, slack.api_url, chaos=True)
                        running = asyncio.create_task(worker.run_forever(stop, poll_interval=0.1))
                    key = submitter.submit()
                    submitted_at[key] = time.perf_counter()
                    await asyncio.sleep(rng.uniform(0.0, 0.08))
                stop.set()
                running.cancel()  # as abrupt as a crash: the next worker finds its sends
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                worker.close()

                # (b2) the worker in its own process, killed with SIGKILL at random.
                child = await start_child(database, slack.api_url)
                try:
                    rest = chaos_samples - half
                    kills = set(rng.sample(range(1, rest), min(PROCESS_RESTARTS, rest - 1)))
                    for n in range(rest):
                        if n in kills:
                            await asyncio.sleep(rng.uniform(0.0, 0.3))
                            await kill_child(child)
                            outcome.process_restarts += 1
                            child = await start_child(database, slack.api_url)
                        key = submitter.submit()
                        submitted_at[key] = time.perf_counter()
                        await asyncio.sleep(rng.uniform(0.0, 0.08))
                    deadline = time.perf_counter() + DELIVERY_DEADLINE
                    while time.perf_counter() < deadline:
                        counts = outbox.counts()
                        if counts["pending"] == counts["sending"] == 0:
                            break
                        await asyncio.sleep(0.1)
                    await asyncio.sleep(0.5)  # any post still on its way lands now
                finally:
                    if child.returncode is None:
                        child.send_signal(signal.SIGTERM)
                        try:
                            await asyncio.wait_for(child.wait(), 10)
                        except TimeoutError:
                            await kill_child(child)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                slack.recover()
            note_arrivals()
            posted = slack.posted_keys()
            outcome.submitted = len(submitted_at)
            outcome.delivered = sum(1 for k in submitted_at if posted.get(k, 0) >= 1)
            outcome.lost = sum(1 for k in submitted_at if posted.get(k, 0) == 0)
            outcome.duplicated = sum(max(0, posted.get(k, 0) - 1) for k in submitted_at)
            outcome.faults = sum(1 for c in slack.calls[calls_before:] if not c.ok)
            outcome.latency.append(
                summarise(
                    "(b) 30% faults + restarts",
                    [arrived_at[k] - submitted_at[k] for k in submitted_at if k in arrived_at],
                )
            )
        kb.close()
    return outcome


def report(outcome: Outcome) -> list[str]:
    lines = [
        "Safeguarding alerts: submission -> the DSL's DM at the Slack stand-in (loopback)",
        f"submitted with: {outcome.via}",
        f"{'measure':<40} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>9}",
    ]
    for r in outcome.latency:
        lines.append(
            f"{r.name:<40} {r.samples:>5} {r.p50_ms:>8.1f} {r.p90_ms:>8.1f} {r.p99_ms:>8.1f} "
            f"{r.max_ms:>9.1f}"
        )
    verdict = "PASS" if outcome.lost == outcome.duplicated == 0 else "FAIL"
    lines += [
        "",
        f"(b) {outcome.submitted} alerts, {outcome.faults} failed platform calls, worker "
        f"restarts: {outcome.task_restarts} in-process (task cancelled), "
        f"{outcome.process_restarts} process (SIGKILL)",
        f"{'alerts delivered':<20} {outcome.delivered:>5}",
        f"{'alerts lost':<20} {outcome.lost:>5}",
        f"{'alerts duplicated':<20} {outcome.duplicated:>5}   {verdict}",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.concern_bench", description=doc.split("\n\n")[0]
    )
    parser.add_argument("--samples", type=int, default=LATENCY_SAMPLES, help="(a)'s submissions")
    parser.add_argument("--chaos", type=int, default=CHAOS_SAMPLES, help="(b)'s submissions")
    parser.add_argument("--seed", type=int, default=int(datetime.now(UTC).timestamp()))
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any alert was lost/doubled"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--worker-child", nargs=2, metavar=("DB", "API_URL"), help="(internal)")
    args = parser.parse_args(argv)
    if args.worker_child:
        worker_child(*args.worker_child)
        return 0
    outcome = asyncio.run(bench(max(1, args.samples), max(8, args.chaos), args.seed))
    if args.json:
        print(json.dumps(asdict(outcome)))
    else:
        print("\n".join(report(outcome)))
        print(f"(seed {args.seed})")
    failed = outcome.lost > 0 or outcome.duplicated > 0
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
