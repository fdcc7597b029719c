"""How fast the Slack app acknowledges requests, on loopback.

    python -m benchmarks.slack_bench             # the table, as `make bench` shows it
    python -m benchmarks.slack_bench --strict    # exit 1 when a target is missed
    python -m benchmarks.slack_bench --json

The real server (``adapters.server.serve``, HTTP transport, the five bundled
sample schools) runs in its own process on 127.0.0.1, as it does in
production. This process is Slack: it sends requests signed exactly as Slack
signs them (signing happens before the clock starts) and runs the Web API
stand-in (tests/support/slack_standin.py) that the server's calls go to. Two
measurements:

1. Acknowledgement latency: rounds of 50 concurrent requests, half
   ``block_actions`` feedback clicks and half DM events, each of which is then
   handled in the background (searched, stored, answered through the
   stand-in). Latency is from sending a request to reading its HTTP status.
   Each round waits for the previous round's answers. Target: p99 < 100 ms.
2. A button click while 10 question handlers hang (the stand-in holds
   ``chat.postMessage``): the time to its HTTP 200, a few times over.
   Slack's own limit is 3 s; the target here is well inside it: < 1 s.

It is a report: the exit code is 0 whatever the figures, unless --strict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

from bot.crypto import generate_key

CONCURRENT = 50
ACK_P99_MS = 100.0
SLOW_CLICK_MS = 1000.0
SLACK_LIMIT_MS = 3000.0
SLOW_HANDLERS = 10
SERVER_START_S = 30.0

QUESTIONS = (
    "can I accept a friend request from an ex-pupil?",
    "can i give my personal mobile number to a parent?",
    "can I message a pupil on whatsapp about homework?",
    "who do I tell if I am worried about a colleague",
    "can I take photos of pupils on my own phone?",
)
_SERVING = re.compile(r"serving on http://127\.0\.0\.1:(\d+)")


@dataclass
class Result:
    name: str
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    target: str
    passed: bool


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarise(name: str, seconds: Sequence[float], limit_ms: float, use_max: bool) -> Result:
    ms = [s * 1000 for s in seconds]
    p99 = percentile(ms, 99)
    measured = max(ms) if use_max else p99
    target = f"{'max' if use_max else 'p99'} < {limit_ms:.0f} ms"
    return Result(name, len(ms), statistics.median(ms), p99, max(ms), target, measured < limit_ms)


# --- the server, in its own process ----------------------------------------------------------


def serve_child(database: str, api_url: str) -> None:
    """What the server process runs: ``serve`` with the stand-in as Slack."""
    import logging

    from adapters.server import serve
    from tests.support import settings_for

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
    logging.getLogger("adapters.server").setLevel(logging.INFO)
    serve(settings_for(Path(database), api_url))


async def _start_server(database: Path, api_url: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.slack_bench",
        "--serve-child",
        str(database),
        api_url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        # The server refuses to start without the key that seals stored reports.
        env={**os.environ, "GUIDEBOT_SECRET_KEY": generate_key()},
    )
    assert process.stderr is not None
    seen = ""
    async with asyncio.timeout(SERVER_START_S):
        while not (found := _SERVING.search(seen)):
            line = await process.stderr.readline()
            if not line:
                raise RuntimeError(f"the server did not start:\n{seen}")
            seen += line.decode()
    return process, f"http://127.0.0.1:{found[1]}/slack/events"


async def _stop_server(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


# --- Slack's side ------------------------------------------------------------------------------


async def _timed_post(
    session: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str]
) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body.encode(), headers=headers) as response:
        status = response.status
        await response.read()
    if status != 200:
        raise RuntimeError(f"the server answered HTTP {status}")
    return time.perf_counter() - started


async def bench(rounds: int, slow_clicks: int) -> list[Result]:
    from bot.messages import Action
    from knowledge.sample_data import load_samples
    from knowledge.store import KnowledgeBase
    from tests.support import (
        SIGNING_SECRET,
        TOKENS,
        action_form,
        block_actions,
        dm_event,
    )
    from tests.support.signing import signed_headers
    from tests.support.slack_standin import SlackStandIn

    def event(question: str) -> tuple[str, dict[str, str]]:
        body = json.dumps(dm_event(question))
        return body, signed_headers(SIGNING_SECRET, body)

    def click(question_id: str, action: Action = Action.HELPFUL) -> tuple[str, dict[str, str]]:
        body = action_form(block_actions(action.value, question_id))
        form = "application/x-www-form-urlencoded"
        return body, signed_headers(SIGNING_SECRET, body, content_type=form)

    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "bench.db"
        kb = KnowledgeBase(database)
        load_samples(kb)
        kb.close()
        async with SlackStandIn(TOKENS) as slack:
            process, url = await _start_server(database, slack.api_url)
            connector = aiohttp.TCPConnector(limit=CONCURRENT * 2)
            try:
                async with aiohttp.ClientSession(connector=connector) as session:
                    # Warm up every path, and collect questions to click on.
                    for question in QUESTIONS:
                        await _timed_post(session, url, *event(question))
                    answers = await slack.wait_delivered("chat.postMessage", len(QUESTIONS), 30)
                    question_ids = [
                        element["value"]
                        for answer in answers
                        for block in answer.params["blocks"]
                        for element in block.get("elements", [])
                        if element.get("action_id") == Action.HELPFUL.value
                    ]
                    if not question_ids:
                        raise RuntimeError("no answer had a Helpful button to click")

                    acks: list[float] = []
                    for round_number in range(rounds + 1):
                        requests = [
                            event(QUESTIONS[i % len(QUESTIONS)])
                            if i % 2
                            else click(
                                question_ids[i % len(question_ids)],
                                Action.HELPFUL if i % 4 else Action.NOT_HELPFUL,
                            )
                            for i in range(CONCURRENT)
                        ]
                        posts = len(slack.calls_to("chat.postMessage"))
                        ephemerals = len(slack.calls_to("chat.postEphemeral"))
                        timings = await asyncio.gather(
                            *(_timed_post(session, url, b, h) for b, h in requests)
                        )
                        if round_number:  # round 0 opens the connections
                            acks.extend(timings)
                        half = CONCURRENT // 2
                        await slack.wait_calls("chat.postMessage", posts + half, 30)
                        await slack.wait_calls("chat.postEphemeral", ephemerals + half, 30)

                    slack.hang("chat.postMessage", 60.0)
                    for _ in range(SLOW_HANDLERS):
                        await _timed_post(session, url, *event(QUESTIONS[0]))
                    await slack.wait_for(
                        lambda: len(slack.in_flight("chat.postMessage")) >= SLOW_HANDLERS, 30
                    )
                    clicks: list[float] = []
                    for _ in range(slow_clicks):
                        ephemerals = len(slack.calls_to("chat.postEphemeral"))
                        clicks.append(await _timed_post(session, url, *click(question_ids[0])))
                        await slack.wait_calls("chat.postEphemeral", ephemerals + 1, 30)
                    if len(slack.in_flight("chat.postMessage")) < SLOW_HANDLERS:
                        raise RuntimeError("the slow handlers finished early")
            finally:
                await _stop_server(process)
    return [
        summarise(f"{CONCURRENT} concurrent (clicks + events) x{rounds}", acks, ACK_P99_MS, False),
        summarise(
            f"click, {SLOW_HANDLERS} slow handlers in flight x{slow_clicks}",
            clicks,
            SLOW_CLICK_MS,
            True,
        ),
    ]


def report(results: Sequence[Result]) -> list[str]:
    lines = [
        "Slack acknowledgement latency (loopback: the server in its own process, "
        "signed requests, Web API stand-in)",
        f"{'measure':<44} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  "
        f"{'target':<15} result",
    ]
    for r in results:
        lines.append(
            f"{r.name:<44} {r.samples:>5} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.max_ms:>8.1f}  "
            f"{r.target:<15} {'PASS' if r.passed else 'FAIL'}"
        )
    lines.append(f"(Slack's own limit for any acknowledgement: {SLACK_LIMIT_MS / 1000:.0f} s)")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.slack_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds of 50 requests (10)")
    parser.add_argument("--clicks", type=int, default=5, help="clicks timed under load (5)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve-child", nargs=2, metavar=("DB", "API_URL"), help="(internal)")
    args = parser.parse_args(argv)
    if args.serve_child:
        serve_child(*args.serve_child)
        return 0
    results = asyncio.run(bench(max(1, args.rounds), max(1, args.clicks)))
    if args.json:
        print(json.dumps([asdict(r) for r in results]))
    else:
        print("\n".join(report(results)))
    return 1 if args.strict and not all(r.passed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
