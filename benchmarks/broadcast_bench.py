"""A leader's broadcast to 2,000 staff: time to queue it and to deliver it.

    python -m benchmarks.broadcast_bench             # the table
    python -m benchmarks.broadcast_bench --staff 500
    python -m benchmarks.broadcast_bench --strict    # exit 1 if a message was lost or doubled
    python -m benchmarks.broadcast_bench --json

This process is Slack (the Web API stand-in, tests/support/slack_standin.py,
on 127.0.0.1) and the school: a real SQLite file (WAL, as the server opens it)
holds a staff directory of ``--staff`` people with Slack ids and a leader, who
creates one broadcast with ``Broadcasts.create``. That one transaction stores
the broadcast and its recipients and queues one sealed outbox message each:
"enqueue". The outbox worker then sends every one through the real
``SlackSender`` over loopback HTTP (``conversations.open`` then
``chat.postMessage``): "deliver". The platform's pacing (``platform_rate``,
``rate_per_second``) is switched off, so this measures guidebot's own cost,
not Slack's limits (with the defaults, 2,000 messages take about 11 minutes).

It is a report: the exit code is 0 unless --strict finds a message lost or
duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STAFF = 2000
KEY = bytes(range(32))
TEAM, TOKEN = "T0BENCH", "xoxb-bench-token"
SCHOOL = "st-bench"
LEADER = "U0BENCHHEAD"


@dataclass
class Outcome:
    staff: int
    enqueue_s: float
    deliver_s: float
    messages_per_s: float
    delivered: int
    lost: int
    duplicated: int
    platform_calls: int
    database_mb: float


def staff_rows(count: int) -> list[Any]:
    from bot.directory import StaffRow

    rows = [StaffRow(1, "head@bench.sch.uk", "Head Teacher", ("staff", "head"), (), LEADER)]
    rows += [
        StaffRow(n + 2, f"s{n}@bench.sch.uk", f"Staff {n}", ("staff",), ("teaching",), f"U{n:07d}")
        for n in range(count)
    ]
    return rows


async def bench(count: int) -> Outcome:
    from adapters.slack.sender import SlackSender, make_sender_client
    from bot.broadcasts import Broadcasts, Draft
    from bot.config import Secret, SlackSettings, SlackWorkspace
    from bot.crypto import SecretBox
    from bot.directory import Directory
    from bot.outbox import DeliveryPolicy, Outbox, OutboxWorker
    from knowledge.store import KnowledgeBase
    from tests.support.slack_standin import SlackStandIn

    with tempfile.TemporaryDirectory() as scratch:
        kb = KnowledgeBase(Path(scratch) / "bench.db")
        try:
            directory = Directory(kb.db)
            directory.import_rows(SCHOOL, staff_rows(count))
            outbox = Outbox(kb.db, SecretBox(KEY))
            broadcasts = Broadcasts(kb.db, outbox, directory)
            async with SlackStandIn({TOKEN: TEAM}) as slack:
                settings = SlackSettings(
                    "http",
                    (SlackWorkspace(TEAM, SCHOOL, Secret(TOKEN)),),
                    None,
                    None,
                    slack.api_url,
                )
                sender = SlackSender(settings, make_sender_client(slack.api_url))
                worker = OutboxWorker(
                    outbox,
                    {"slack": sender},
                    DeliveryPolicy(rate_per_second={}, platform_rate={}, batch=200),
                )
                started = time.perf_counter()
                status = broadcasts.create(
                    SCHOOL,
                    "slack",
                    LEADER,
                    Draft("Updated: Social Media Policy", "Please read the changes to section 5."),
                )
                queued = time.perf_counter()
                while await worker.run_once():
                    pass
                done = time.perf_counter()
                worker.close()
                posted = slack.posted_keys()
                calls = len(slack.calls)
            wanted = {
                k
                for (k,) in kb.db.execute("SELECT outbox_key FROM broadcast_recipients").fetchall()
            }
            size = (Path(scratch) / "bench.db").stat().st_size
        finally:
            kb.close()
    deliver = done - queued
    return Outcome(
        staff=count,
        enqueue_s=queued - started,
        deliver_s=deliver,
        messages_per_s=status.recipients / deliver if deliver > 0 else 0.0,
        delivered=sum(1 for k in wanted if posted.get(k, 0) >= 1),
        lost=sum(1 for k in wanted if posted.get(k, 0) == 0),
        duplicated=sum(max(0, n - 1) for n in posted.values()),
        platform_calls=calls,
        database_mb=size / 1e6,
    )


def report(outcome: Outcome) -> list[str]:
    verdict = "PASS" if outcome.lost == outcome.duplicated == 0 else "FAIL"
    return [
        f"Broadcast to {outcome.staff:,} staff through the Slack stand-in (loopback, "
        "no rate limit)",
        f"{'enqueue (one transaction)':<28} {outcome.enqueue_s:>8.2f} s",
        f"{'deliver (outbox worker)':<28} {outcome.deliver_s:>8.2f} s",
        f"{'messages per second':<28} {outcome.messages_per_s:>8.0f}",
        f"{'Slack API calls':<28} {outcome.platform_calls:>8}",
        f"{'delivered':<28} {outcome.delivered:>8}",
        f"{'lost':<28} {outcome.lost:>8}",
        f"{'duplicates':<28} {outcome.duplicated:>8}   {verdict}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.broadcast_bench", description=doc.split("\n\n")[0]
    )
    parser.add_argument("--staff", type=int, default=STAFF, help="recipients (default 2000)")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any message was lost/doubled"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    outcome = asyncio.run(bench(max(1, args.staff)))
    if args.json:
        print(json.dumps(asdict(outcome)))
    else:
        print("\n".join(report(outcome)))
    failed = outcome.lost > 0 or outcome.duplicated > 0
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
