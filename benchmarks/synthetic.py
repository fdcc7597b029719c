"""A synthetic corpus of many schools, made from the bundled sample policies.

School N takes a sample round-robin, gets a name of its own ("St Bede's RC
Primary", "Oakfield Academy", "Ysgol Bryn Teg"), has the sample school's name
replaced by it throughout, and has its top-level sections shuffled, so the
knowledge base holds many similar but not identical policies, as a local
authority's or a trust's would. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from knowledge.ingest import ingest_files
from knowledge.sample_data import sample_files, sample_schools
from knowledge.store import KnowledgeBase

DEFAULT_SEED = 20240901

SAINTS = (
    "Aidan", "Alban", "Andrew", "Anne", "Anselm", "Augustine", "Bede", "Benedict",
    "Bernadette", "Brigid", "Catherine", "Chad", "Columba", "Cuthbert", "David", "Dunstan",
    "Edmund", "Edward", "Francis", "George", "Gregory", "Helen", "Hilda", "James", "John",
    "Joseph", "Jude", "Lawrence", "Leonard", "Luke", "Margaret", "Mark", "Martin", "Mary",
    "Matthew", "Michael", "Monica", "Nicholas", "Oswald", "Patrick", "Paul", "Peter",
    "Philip", "Stephen", "Teresa", "Thomas", "Vincent", "Wilfrid",
)  # fmt: skip
DENOMINATIONS = ("RC", "CE", "Catholic", "C of E", "Church of England", "CofE VA", "CE VC")
CHURCH_PHASES = ("Primary", "Primary School", "Junior School", "Infant School", "High School")
PLACES = (
    "Oakfield", "Ashworth", "Beechwood", "Bramley", "Brookside", "Castleford", "Cedar Park",
    "Churchill", "Coppice", "Elmhurst", "Fairfield", "Fernhill", "Glenmoor", "Greenacres",
    "Hartcliffe", "Hazelwood", "Hillside", "Hollybush", "Kingsmead", "Lakeside", "Langley",
    "Larkrise", "Meadowbank", "Millbrook", "Moorlands", "Northgate", "Orchard Vale",
    "Parkside", "Queensway", "Ravenscroft", "Redbrook", "Riverside", "Rosehill", "Sandfield",
    "Southfields", "Springwell", "Stanmore", "Thornbury", "Westfield", "Whitecross",
    "Willowbrook", "Woodlands", "Ashby", "Bishopton", "Crossgates", "Dalton", "Kirkby",
    "Eccleston", "Ormskirk", "Bowness",
)  # fmt: skip
PLACE_TYPES = (
    "Academy", "Primary School", "Primary Academy", "Community Primary School",
    "Junior School", "Infant School", "High School", "Community College", "School",
    "Church of England Academy", "Multi-Academy Trust", "Learning Trust",
    "Nursery and Infant School",
)  # fmt: skip
WELSH = (
    "Bryn Teg", "Cwm Rhondda", "Gymraeg Aberystwyth", "Pen y Bryn", "Maes y Coed", "Glan Conwy",
    "Bro Dinefwr", "Y Ddraig", "Llanfair", "Tan y Castell", "Gwaun Cae Gurwen", "Nant Gwyn",
    "Penrhyn", "Treganna", "Bro Teifi", "Cae Top", "Glan Morfa", "Min y Ddol",
)  # fmt: skip
WELSH_SUFFIXES = ("", "", " Primary", " Gymraeg")

_GENERIC_NAME_WORDS = frozenset(
    (
        "primary", "school", "ce", "rc", "catholic", "academy", "multi-academy", "trust",
        "infant", "junior", "high", "nursery", "and", "community", "college", "learning",
        "church", "of", "england", "c", "e", "cofe", "va", "vc", "gymraeg",
    )
)  # fmt: skip
_TOP_NUMBER_RE = re.compile(r"^\d{1,2}(?:\.0)?\.?\s+\S")  # "1. Intro", "2 SCOPE", "6.0. EQUAL"
_BULLET_RE = re.compile(r"^\s*(?:[-*•·▪o«e]\s)")
_MAX_HEADING_WORDS = 10


@dataclass(frozen=True)
class SyntheticSchool:
    slug: str
    name: str
    sample: str
    text: str


def short_name(name: str) -> str:
    """A school's everyday name: "St Anne's CE Primary School" -> "St Anne's"."""
    words = name.split()
    while len(words) > 1 and words[-1].casefold() in _GENERIC_NAME_WORDS:
        words.pop()
    return " ".join(words)


def _name_pattern(name: str) -> re.Pattern[str]:
    parts = [re.escape(word).replace("'", "['’]") for word in name.split()]
    return re.compile(r"(?<![\w'’])" + r"\s+".join(parts) + r"(?![\w'’])")


def rename(text: str, old_name: str, new_name: str) -> str:
    """Replace a school's full name, then its short name, keeping line breaks intact."""
    old_short, new_short = short_name(old_name), short_name(new_name)
    text = _name_pattern(old_name).sub(lambda _: new_name, text)
    if old_short != old_name:
        text = _name_pattern(old_short).sub(lambda _: new_short, text)
    return text


def school_names(count: int, seed: int = DEFAULT_SEED) -> list[str]:
    """``count`` distinct, varied UK school names, the same for the same seed."""
    rng = random.Random(seed)
    makers: tuple[Callable[[], str], ...] = (
        lambda: (
            f"St {rng.choice(SAINTS)}'s {rng.choice(DENOMINATIONS)} {rng.choice(CHURCH_PHASES)}"
        ),
        lambda: f"{rng.choice(PLACES)} {rng.choice(PLACE_TYPES)}",
        lambda: f"{rng.choice(PLACES)} {rng.choice(PLACE_TYPES)}",
        lambda: f"Ysgol {rng.choice(WELSH)}{rng.choice(WELSH_SUFFIXES)}",
    )
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = rng.choice(makers)()
        if name in seen:
            name = f"{name} ({rng.choice(PLACES)})"  # two schools of one name: add the town
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _is_heading(line: str) -> bool:
    text = line.strip()
    words = text.split()
    return (
        0 < len(words) <= _MAX_HEADING_WORDS
        and text[-1] not in ".:;,!?"
        and (text[0].isupper() or text[0].isdigit())
        and "\t" not in line
        and not _BULLET_RE.match(line)
        and any(ch.isalpha() for ch in text)
    )


def split_sections(text: str) -> tuple[list[str], list[list[str]]]:
    """The lines before the first section heading, and each section's lines.

    A heading is a short line standing alone between blank lines with no
    closing punctuation. When a document numbers its top-level headings
    ("1. Introduction", "2 SCOPE", "6.0. EQUAL OPPORTUNITIES"), only those, and
    ALL-CAPS headings after the first of them, start sections, so sub-headings
    stay inside their section.
    """
    lines = text.split("\n")

    def alone(index: int) -> bool:
        before = index == 0 or not lines[index - 1].strip()
        after = index == len(lines) - 1 or not lines[index + 1].strip()
        return before and after

    starts = [i for i, line in enumerate(lines) if alone(i) and _is_heading(line)]
    numbered = [i for i in starts if _TOP_NUMBER_RE.match(lines[i].strip())]
    if len(numbered) >= 2:
        starts = [
            i for i in starts if i in numbered or (i > numbered[0] and lines[i].strip().isupper())
        ]
    if not starts:
        return lines, []
    bounds = [*starts, len(lines)]
    sections = [lines[a:b] for a, b in itertools.pairwise(bounds)]
    return lines[: starts[0]], sections


def shuffle_sections(text: str, rng: random.Random) -> str:
    """The text with its top-level sections in a random order, each kept whole."""
    preamble, sections = split_sections(text)
    rng.shuffle(sections)
    out = list(preamble)
    for section in sections:
        if out and out[-1].strip():
            out.append("")
        out.extend(section)
    return "\n".join(out).rstrip("\n") + "\n"


def synthetic_schools(count: int, seed: int = DEFAULT_SEED) -> Iterator[SyntheticSchool]:
    """School 1..count: a sample round-robin, renamed and with sections shuffled."""
    samples = sorted(sample_files().items())
    sample_names = sample_schools()
    texts = {slug: path.read_text(encoding="utf-8") for slug, path in samples}
    rng = random.Random(seed)
    for number, name in enumerate(school_names(count, seed), start=1):
        sample = samples[(number - 1) % len(samples)][0]
        renamed = rename(texts[sample], sample_names[sample], name)
        yield SyntheticSchool(f"school-{number:04d}", name, sample, shuffle_sections(renamed, rng))


def write_corpus(
    folder: Path, count: int, seed: int = DEFAULT_SEED
) -> list[tuple[SyntheticSchool, Path]]:
    """Write each school's policy to ``folder/<slug>/social-media-policy.txt``."""
    written = []
    for school in synthetic_schools(count, seed):
        path = folder / school.slug / "social-media-policy.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(school.text, encoding="utf-8")
        written.append((school, path))
    return written


def ingest_corpus(kb: KnowledgeBase, corpus: Sequence[tuple[SyntheticSchool, Path]]) -> list[float]:
    """Ingest every written school; returns each school's ingest time in seconds."""
    timings = []
    for school, path in corpus:
        started = time.perf_counter()
        ingest_files(kb, school.slug, [path], school.name)
        timings.append(time.perf_counter() - started)
    return timings
