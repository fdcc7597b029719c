"""How fast the knowledge base ingests and answers, and how much memory it needs.

    python -m benchmarks.knowledge_bench            # both parts, as `make bench` runs it
    python -m benchmarks.knowledge_bench --strict   # exit 1 when any target is missed
    python -m benchmarks.knowledge_bench --part synthetic --schools 500 --json

Two parts: (a) the five bundled sample schools, measured in this process, and
(b) a synthetic corpus of many schools made from them (benchmarks/synthetic.py),
measured in a fresh subprocess so its peak RSS is its own. Each part ingests
into a database in a temporary directory, warms up with one untimed pass of
the questions, then times ``Searcher.search(school, question)`` over a fixed
set of staff questions spread across its schools.

It is a report: the exit code is 0 whatever the figures, unless --strict.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time, so the parent is small when it spawns
    from knowledge.store import KnowledgeBase

SAMPLES_P99_MS = 10.0
SYNTHETIC_P99_MS = 50.0
SYNTHETIC_INGEST_S = 60.0
PEAK_RSS_MB = 200.0

# What staff actually type: casual, misspelt, abbreviated, sometimes long.
QUESTIONS: tuple[str, ...] = (
    # friend requests and contact with pupils and parents
    "can I accept a friend request from an ex-pupil?",
    "one of my old yr6s added me on facebook, can i add her back?",
    "a parent sent me a friend request, is that ok?",
    "can i be friends with parents on fb if i knew them before they had kids here",
    "is it ok to follow a former student on instagram now she's 19?",
    "a pupil followed me on tiktok what should i do",
    "can I message a pupil on whatsapp about homework?",
    "can i give my personal mobile number to a parent?",
    "a year 11 keeps sending me snapchat messages",
    "should i block a child who requested to follow me",
    "can I accept a LinkedIn connection from an ex student",
    "my neighbour's kid is in my class can we still be friends on facebook",
    "am i allowed to play online games with pupils",
    "can I add the TA from my class on facebook",
    "can i contact a child through social media if they're off school",
    "a mum keeps messaging me on messenger about her son, what do i do",
    "is it ok to accept a follow request from a pupil's older sibling",
    "can i stay friends with a pupil after they leave in year 6",
    "can staff communicate with parents via social media",
    "ex pupil who is now 17 wants to connect with me",
    # photos and images
    "can I post photos of pupils on the school facebook page?",
    "can I put pictures of the school trip on my own instagram",
    "do we need parental consent before posting photos of children",
    "can i take photos of the kids on my personal phone",
    "is it ok to post a selfie with my class",
    "can parents post photos from the nativity play online",
    "can we name children in photos on twitter",
    "what about videos of sports day on youtube",
    "can I share a picture of a child's work online",
    "are we allowed to use pupils' first names with their photos",
    "a parent posted a photo of my class on facebook, what do I do",
    "can i upload photos of the school christmas party",
    "can I tag colleagues in photos from the staff night out",
    "photo permission forms where do i check",
    "can I post class photos on my personal blog",
    "do I need to delete photos from my phone after a trip",
    "can pupils take photos of staff",
    "is it ok to film a lesson and share it",
    "can I use a photo of a pupil in a newsletter",
    "someone posted an embarrassing picture of me online",
    # personal phones and devices
    "can i use my personal phone during lessons?",
    "am I allowed on my own insta during the school day?",
    "can I check facebook on my break",
    "can i use my own laptop for school work",
    "is it ok to use social media at lunchtime",
    "can I use my phone in the staff room",
    "where should i keep my mobile phone during the day",
    "can i use school computers to look at social media",
    "can I log into my personal twitter on the school wifi",
    "is excessive use of social media at work a disciplinary matter",
    "can i use my ipad to take photos on a school trip",
    "am I allowed to text parents from my own phone",
    "can I charge my phone in class and use it as a timer",
    "personal devices policy for staff",
    "can i browse facebook during ppa time",
    "what happens if i use social media in work time",
    "can I access my email on my phone",
    "can supply teachers use their phones",
    "are smart watches allowed",
    "can i let a pupil use my phone to call home",
    # reporting concerns and cyberbullying
    "who do I report a safeguarding concern to?",
    "how do i report something worrying i saw online about a pupil",
    "a pupil showed me a nasty message they got, what do I do",
    "how should i report cyberbullying",
    "a parent is saying horrible things about me on facebook",
    "what do i do if i'm being harassed online by a parent",
    "who is the designated safeguarding lead",
    "how quickly do I need to report an online concern",
    "I saw an inappropriate post by a colleague, who do I tell",
    "a child told me someone is sending them messages online",
    "where do I record a cyberbullying incident",
    "what happens after I report online abuse",
    "should I screenshot abusive comments",
    "a parent wrote something defamatory about the school online",
    "what if a pupil is being groomed online",
    "can I respond to negative comments about the school",
    "who deals with complaints posted on social media",
    "a pupil posted a video of a fight, what should I do",
    "i think a colleague is messaging a pupil privately",
    "how do I report abuse I received online",
    "is online bullying of staff taken seriously",
    "what support is there if I'm bullied online",
    "someone has made a fake account pretending to be me",
    "who do i tell about a worrying tiktok trend",
    "can i tell the dsl about something I saw on a parent's facebook",
    # logos, press, the school's name and reputation
    "can I use the school logo on my personal account?",
    "can i set up a facebook page for my class",
    "who can create a social media account for the school",
    "can I mention the school in my twitter bio",
    "do I need a disclaimer if I say where I work",
    "a journalist contacted me about the school, what do i say",
    "can I talk to the press about a school incident",
    "a reporter from the local paper messaged me on twitter",
    "can I comment on a news story about our school",
    "can I post about the school on my own page",
    "who approves new school social media accounts",
    "what should I do if the local news asks for a comment",
    "can i criticise the school online",
    "am I allowed to post about my job",
    "can I share the school's posts on my personal facebook",
    "can I say I work at the school on linkedin",
    "who runs the school twitter account",
    "can i start a class blog",
    "can I use the school name in my username",
    "can I complain about my head teacher online",
    "what is the school's official social media channel",
    "who manages the school instagram",
    "can i create a youtube channel for my subject",
    "can i share confidential school information online",
    "what if I bring the school into disrepute on social media",
    # passwords, accounts, privacy and security
    "how should i store the password for the school account",
    "what privacy settings should i use on facebook",
    "can I share my school login with a colleague",
    "who keeps the passwords for school social media accounts",
    "what happens to the school account when the member of staff leaves",
    "how secure should my personal social media be",
    "should my instagram be private",
    "can I use my school email to sign up to social media",
    "what should I do if my account is hacked",
    "someone knows my password for the class account",
    "do I have to change my password regularly",
    "is it ok for pupils to know my surname on social media",
    "should i use a different name on facebook",
    "how do I make my profile private",
    "can I use two factor authentication on school accounts",
    # conduct, discipline and dismissal
    "can i get sacked over a fb post",
    "what happens if I break the social media policy",
    "could I be disciplined for something I posted years ago",
    "is swearing on twitter a disciplinary offence",
    "can i post political opinions online",
    "can I share memes about teaching",
    "what counts as inappropriate content",
    "can i post about my night out",
    "is it gross misconduct to post about pupils",
    "can I discuss pupils online if I don't name them",
    "can I talk about my colleagues on social media",
    "what about posting about a bad day at work",
    "can I join a facebook group for teachers",
    "can I express my religious views online",
    "can I like a post that criticises the school",
    "will the school monitor my social media",
    "does the school check staff social media when recruiting",
    "can the school look at my personal facebook",
    "can I blog about teaching",
    "what if I'm tagged in an inappropriate photo",
    # definitions, scope and the policy itself
    "what counts as social media",
    "does the policy apply to governors",
    "does this policy cover volunteers",
    "does it apply outside working hours",
    "does the policy cover whatsapp groups",
    "who is responsible for reviewing the policy",
    "when is the policy reviewed",
    "what other policies link to the social media policy",
    "what legislation applies to social media",
    "does the policy apply to agency staff",
    "what is the purpose of the social media policy",
    "does this policy apply to supply teachers",
    "what is the school's policy on online gaming",
    "who is responsible for training staff on social media",
    "where can i read the full policy",
    # pupils, parents and the community
    "how do we teach pupils to stay safe online",
    "what should pupils do if they are cyberbullied",
    "can parents set up a class whatsapp group",
    "what should I tell parents about posting on facebook",
    "are parents allowed to complain about staff on social media",
    "how do we support pupils who are bullied online",
    "can children under 13 have social media accounts",
    "what training do pupils get on online safety",
    "how do we involve parents in online safety",
    "what happens if a pupil posts something about a teacher",
    # staff wellbeing and HR
    "what support is there for staff who are trolled",
    "can I use social media to look for a new job",
    "can I post a job advert for the school on my linkedin",
    "are references checked on social media",
    "will HR look at candidates' social media",
    # mixed, long and oddly typed
    "hi, quick one - I had a friend request from a girl I taught 3 years ago, she's now at "
    "secondary, is that ok or should I ignore it?",
    "sorry if this is a silly question but can i post a pic of my classroom display on my "
    "insta? there are no kids in it",
    "my partner wants to post photos from our wedding which some pupils came to",
    "wat do i do if a parant adds me on fb",
    "cn i use my fone in class",
    "frend request from ex pupil???",
    "PHOTOS OF KIDS ON FACEBOOK",
    'is it OK to use "OR" in a question about instagram * photos',
    "policy on live streaming assemblies",
    "can we livestream the school concert on facebook",
    "can staff use ai chatbots with pupil data",
    "what about the school's website, who updates it",
    "can i share pupils' work on the class dojo",
    "should I accept classdojo messages at the weekend",
    "can the trust see what I post",
    "what do i do about a complaint on the school's facebook page",
    "can I delete comments on the school page",
    "what's the policy on closing accounts",
    "how often is the school account monitored",
    "what are the dos and donts of social media",
    "what tone should school posts use",
    "can I respond to trolls on the school account",
    "who do I contact about this policy",
    "what's the canteen menu this week",
    "when is the next inset day",
    "how do I book a room for parents evening",
    "where is the fire assembly point",
    "can i get a parking permit",
)


@dataclass
class PartResult:
    name: str
    schools: int
    clauses: int
    ingest_total_s: float
    ingest_per_school_ms: float
    questions: int
    timed: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    pass_p99_ms: list[float]
    answered: float
    peak_rss_mb: float
    db_mb: float
    slowest: list[tuple[float, str, str]] = field(default_factory=list)


def _percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (p99 of 600 samples is the 594th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _file_mb(path: Path) -> float:
    """The database with its write-ahead log, which holds pages not yet checkpointed."""
    files = (path, path.with_name(path.name + "-wal"))
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


def _assignments(slugs: Sequence[str]) -> list[tuple[str, str]]:
    """(school, question) pairs: every question once, spread across the schools."""
    count = len(slugs)
    stride = 7  # question i goes to school 7i mod n: neighbours differ, all schools get some
    while math.gcd(stride, count) != 1:
        stride += 1
    return [(slugs[(i * stride) % count], q) for i, q in enumerate(QUESTIONS)]


def _measure(
    name: str, kb: KnowledgeBase, ingest_times: Sequence[float], passes: int
) -> PartResult:
    """Warm up with one untimed pass, then time ``passes`` passes of every question."""
    from knowledge.search import Searcher

    slugs = [school.slug for school in kb.schools()]
    pairs = _assignments(slugs)
    searcher = Searcher(kb)
    answered = sum(searcher.search(school, q).answered for school, q in pairs)  # warm-up
    timings: list[tuple[float, str, str]] = []
    for _ in range(passes):
        for school, question in pairs:
            started = time.perf_counter()
            searcher.search(school, question)
            timings.append(((time.perf_counter() - started) * 1000, school, question))
    latencies = [t for t, _, _ in timings]
    clauses = int(kb.db.execute("SELECT count(*) FROM clauses").fetchone()[0])
    total = sum(ingest_times)
    db_mb = _file_mb(kb.path) if kb.path else 0.0
    worst: dict[str, tuple[float, str, str]] = {}
    for entry in timings:
        if entry[2] not in worst or entry[0] > worst[entry[2]][0]:
            worst[entry[2]] = entry
    return PartResult(
        name=name,
        schools=len(slugs),
        clauses=clauses,
        ingest_total_s=total,
        ingest_per_school_ms=1000 * total / max(len(ingest_times), 1),
        questions=len(pairs),
        timed=len(latencies),
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=max(latencies, default=0.0),
        pass_p99_ms=[
            _percentile(latencies[i : i + len(pairs)], 0.99)
            for i in range(0, len(latencies), len(pairs))
        ],
        answered=answered / max(len(pairs), 1),
        peak_rss_mb=_peak_rss_mb(),
        db_mb=db_mb,
        slowest=sorted(worst.values(), reverse=True)[:5],
    )


def run_samples(passes: int) -> PartResult:
    from knowledge.ingest import ingest_files
    from knowledge.sample_data import sample_files, sample_schools
    from knowledge.store import KnowledgeBase

    names = sample_schools()
    with tempfile.TemporaryDirectory(prefix="guidebot-bench-") as scratch:
        kb = KnowledgeBase(Path(scratch) / "samples.db")
        ingest_times = []
        for slug, path in sample_files().items():
            started = time.perf_counter()
            ingest_files(kb, slug, [path], names.get(slug))
            ingest_times.append(time.perf_counter() - started)
        result = _measure("samples", kb, ingest_times, passes)
        kb.close()
    return result


def run_synthetic(schools: int, seed: int | None, passes: int) -> PartResult:
    from benchmarks.synthetic import DEFAULT_SEED, ingest_corpus, write_corpus
    from knowledge.store import KnowledgeBase

    seed = DEFAULT_SEED if seed is None else seed
    with tempfile.TemporaryDirectory(prefix="guidebot-bench-") as scratch:
        corpus = write_corpus(Path(scratch) / "policies", schools, seed)
        kb = KnowledgeBase(Path(scratch) / "synthetic.db")
        ingest_times = ingest_corpus(kb, corpus)
        result = _measure(f"{schools} schools", kb, ingest_times, passes)
        kb.close()
    return result


def spawn_synthetic(schools: int, seed: int | None, passes: int) -> PartResult:
    """Run the synthetic part in a fresh interpreter and read back its figures."""
    command = [sys.executable, "-m", "benchmarks.knowledge_bench", "--part", "synthetic"]
    command += ["--json", f"--schools={schools}", f"--passes={passes}"]
    if seed is not None:
        command.append(f"--seed={seed}")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the synthetic benchmark failed (exit code {done.returncode})")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    data["slowest"] = [tuple(entry) for entry in data["slowest"]]
    return PartResult(**data)


# --- the report ------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    part: str
    what: str
    value: float
    limit: float
    unit: str

    @property
    def passed(self) -> bool:
        return self.value <= self.limit


def checks(results: Sequence[PartResult]) -> list[Check]:
    out = []
    for result in results:
        synthetic = result.name != "samples"
        p99_limit = SYNTHETIC_P99_MS if synthetic else SAMPLES_P99_MS
        out.append(Check(result.name, "question p99", result.p99_ms, p99_limit, "ms"))
        if synthetic:
            out.append(
                Check(result.name, "ingest total", result.ingest_total_s, SYNTHETIC_INGEST_S, "s")
            )
        out.append(Check(result.name, "peak RSS", result.peak_rss_mb, PEAK_RSS_MB, "MB"))
    return out


def report(results: Sequence[PartResult], load: float, verbose: bool = True) -> list[str]:
    rows: list[tuple[str, Callable[[PartResult], str]]] = [
        ("schools", lambda r: f"{r.schools}"),
        ("clauses", lambda r: f"{r.clauses}"),
        ("database size", lambda r: f"{r.db_mb:.1f} MB"),
        ("ingest, total", lambda r: f"{r.ingest_total_s:.2f} s"),
        ("ingest, per school", lambda r: f"{r.ingest_per_school_ms:.1f} ms"),
        ("questions (timed)", lambda r: f"{r.questions} ({r.timed})"),
        ("answered", lambda r: f"{100 * r.answered:.0f}%"),
        ("question p50", lambda r: f"{r.p50_ms:.2f} ms"),
        ("question p99", lambda r: f"{r.p99_ms:.2f} ms"),
        ("question max", lambda r: f"{r.max_ms:.2f} ms"),
        ("p99 of each pass", lambda r: " / ".join(f"{v:.1f}" for v in r.pass_p99_ms) + " ms"),
        ("peak RSS", lambda r: f"{r.peak_rss_mb:.1f} MB"),
    ]
    width = max(24, *(len(r.name) + 2 for r in results))
    cpus = os.cpu_count() or 1
    lines = [
        "guidebot knowledge benchmark",
        f"load average {load:.2f} on {cpus} CPUs at the start"
        + ("  (busy machine: latencies will be inflated)" if load > 0.5 * cpus else ""),
        "",
    ]
    lines.append(f"{'':<20}" + "".join(f"{r.name:>{width}}" for r in results))
    for label, cell in rows:
        lines.append(f"{label:<20}" + "".join(f"{cell(r):>{width}}" for r in results))
    lines += ["", "targets"]
    for check in checks(results):
        verdict = "PASS" if check.passed else "FAIL"
        figure = f"{check.value:.2f} {check.unit}"
        limit = f"<= {check.limit:g} {check.unit}"
        lines.append(
            f"  {verdict}  {check.part:<12} {check.what:<14} {figure:>12}  (target {limit})"
        )
    if verbose:
        for result in results:
            lines += ["", f"slowest questions, {result.name}"]
            for ms, school, question in result.slowest:
                lines.append(f"  {ms:7.2f} ms  {school:<12}  {question[:70]}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "samples", "synthetic"), default="all")
    parser.add_argument("--schools", type=int, default=500, help="synthetic schools (500)")
    parser.add_argument("--seed", type=int, default=None, help="synthetic corpus seed")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the questions")
    parser.add_argument("--json", action="store_true", help="print one part's figures as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.json and args.part == "all":
        parser.error("--json needs --part samples or --part synthetic")

    load = os.getloadavg()[0]
    results: list[PartResult] = []
    if args.part == "all":
        # The subprocess starts first, while this process is still small: on
        # Linux a child's ru_maxrss starts from its parent's high-water mark
        # (it survives the exec), so spawning it later would report our memory.
        synthetic = spawn_synthetic(args.schools, args.seed, args.passes)
        results = [run_samples(args.passes), synthetic]
    elif args.part == "samples":
        results = [run_samples(args.passes)]
    else:
        results = [run_synthetic(args.schools, args.seed, args.passes)]
    if args.json:
        print(json.dumps(asdict(results[0])))
    else:
        print("\n".join(report(results, load)))
    failed = [check for check in checks(results) if not check.passed]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
