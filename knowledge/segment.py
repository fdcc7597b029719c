"""Blocks -> clauses: the smallest self-contained statements staff should read.

Real policies arrive as messy exports: hard-wrapped lines, bullet glyphs left
over from PDF conversion, tables of contents, page numbers, running headers and
paragraph numbers that drifted away from their paragraphs. This module turns the
loaders' blocks into clean clauses, each carrying its section path and, for list
items, the sentence that introduces them, so a clause makes sense on its own.

The work happens in passes, each a small function:
    lines    blocks -> physical lines with a little context
    noise    drop TOC, page numbers, running headers, stray glyphs
    units    rejoin hard wraps into paragraphs, list items and headings
    join     rejoin sentences that a blank line cut in two
    clauses  walk the units keeping the section path and lead-ins
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from knowledge.blocks import Block

MAX_CLAUSE_WORDS = 120
"""Hard ceiling: no clause is longer than this many words."""

SPLIT_ABOVE_WORDS = 90
"""Paragraphs longer than this are split at sentence boundaries..."""

TARGET_CHUNK_WORDS = 60
"""...into chunks of about this many words."""

TINY_ITEM_WORDS = 8
"""A list whose items are all this short is shown as one clause."""

UnitKind = Literal["heading", "para", "item", "row"]


@dataclass(frozen=True)
class Clause:
    """One quotable statement of a policy."""

    ord: int
    section: tuple[str, ...]
    text: str
    number: str | None = None
    lead_in: str | None = None

    @property
    def words(self) -> int:
        return len(self.text.split())


def item_text(text: str, lead_in: str | None) -> str | None:
    """A list item's own words: the clause text after the lead-in it was stored
    with, or None when the clause does not start with a lead-in."""
    if lead_in and text.startswith(lead_in):
        return text[len(lead_in) :]
    return None


@dataclass
class _Line:
    text: str
    indent: int
    block: int
    hint: str  # "text" or a structured Block kind
    level: int = 0
    page: int | None = None
    heading: bool = False  # a heading with its paragraph on the next line (see _units)


@dataclass
class _Unit:
    kind: UnitKind
    text: str
    level: int = 0
    number: str | None = None
    bulleted: bool = False
    standalone: bool = False
    block: int = 0
    hinted: bool = False
    children: list[_Unit] = field(default_factory=list)


# --- patterns ---------------------------------------------------------------

_BULLET_GLYPHS = "-*•«»·▪▫■□●○◦‣⁃–—➢➤►✓✔➔→⮚§"
_BULLET_RE = re.compile(rf"^(?:[{re.escape(_BULLET_GLYPHS)}]|[oe](?=\s+\S))\s+")
_ALONE_GLYPH_RE = re.compile(rf"^[{re.escape(_BULLET_GLYPHS)}oe\s]+$")
# "1.", "2.1", "6.0.", "4.1 (15)", "a)", "(a)", "ii.", "iv)", "11.Colleagues"
_NUMBER_RE = re.compile(
    r"^(?P<num>"
    r"\d{1,2}(?:\.\d{1,2}){0,3}\.?(?:\s*\(\d{1,2}\))?"
    r"|\(?[a-hj-z]\)|[a-hj-z]\.(?=\s)"
    r"|\(?(?:i|ii|iii|iv|v|vi|vii|viii|ix|x|xi|xii)[.)]"
    r")(?:\s+|(?<=\.)(?=[A-Z]))"
)
_NUMBER_ONLY_RE = re.compile(r"^\(?\d{1,3}(?:\.\d{1,2})*\.?\)?$")
_PAGE_RE = re.compile(r"^(?:page\s+)?\d{1,3}(?:\s+of\s+\d{1,3})?$|^-\s*\d{1,3}\s*-$", re.I)
_TOC_LINE_RE = re.compile(r"(?:\.{4,}|…{2,})\s*\d*\s*$|\t\s*\d{1,3}\s*$")
_TOC_HEADING_RE = re.compile(r"^(?:table of )?contents$", re.I)
_MD_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
_MD_LINK_RE = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_EMPHASIS_RE = re.compile(r"(\*\*|__|\*(?=\S))(.+?)\1")
_TERMINAL = ".;:!?"
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[\"'“‘(]?[A-Z0-9])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "mr.", "mrs.", "ms.", "dr.", "st.", "no.", "vs.", "cf.")
_HYPHEN_WRAP_RE = re.compile(r"[A-Za-z]-$")
_OCR_IF_RE = re.compile(r"(?:(?<=^\d\.)|(?<=^\d\d\.)|(?<![\w.]))1f(?=\s+[a-z])")
_WORD_RE = re.compile(r"[A-Za-z]+")
_OPEN_ENDINGS = frozenset(
    {
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "that",
        "which",
        "who",
        "as",
        "is",
        "are",
        "be",
        "not",
        "must",
        "should",
        "will",
        "may",
        "can",
        "any",
        "all",
        "this",
        "these",
        "their",
        "his",
        "her",
        "its",
        "our",
        "your",
    }
)
"""Words a heading never ends on, but a hard-wrapped line often does."""


# --- pass 1: lines ------------------------------------------------------------


def _clean_inline(text: str) -> str:
    """Normalise characters and strip markdown inline markup left in exports."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u00a0", " ").replace("\u00ad", "").replace("\u200b", "")
    text = _MD_LINK_RE.sub(r"\1", text)
    text = re.sub(r":\s*-$", ":", text)  # "the following points:-"
    text = _MD_EMPHASIS_RE.sub(r"\2", text)
    return _OCR_IF_RE.sub("If", text)


def _lines(blocks: Sequence[Block]) -> list[_Line]:
    out: list[_Line] = []
    for index, block in enumerate(blocks):
        if block.kind == "text":
            for raw in block.text.split("\n"):
                expanded = raw.replace("\f", "")
                stripped = expanded.strip()
                if stripped:
                    indent = len(expanded) - len(expanded.lstrip(" "))
                    out.append(
                        _Line(_clean_inline(stripped), indent, index, "text", page=block.page)
                    )
        else:
            text = " ".join(block.text.split()) if block.kind != "table_row" else block.text
            if text.strip():
                out.append(
                    _Line(
                        _clean_inline(text.strip()), 0, index, block.kind, block.level, block.page
                    )
                )
    return out


# --- pass 2: noise ------------------------------------------------------------


def _is_table_row(line: _Line) -> bool:
    return line.hint == "table_row" or (line.hint == "text" and "\t" in line.text)


def _toc_key(text: str) -> str:
    """A contents entry and its heading compare equal without leaders and page numbers."""
    text = _TOC_LINE_RE.sub("", text)
    return " ".join(re.sub(r"[.…]{2,}", " ", text).split()).casefold()


def _drop_noise(lines: list[_Line]) -> list[_Line]:
    """Remove TOC entries, page numbers, detached paragraph numbers, glyph-only
    lines and running headers that repeat as standalone lines."""
    block_sizes = Counter(line.block for line in lines)
    standalone = Counter(
        line.text.casefold()
        for line in lines
        if block_sizes[line.block] == 1 and len(line.text.split()) <= 8
    )
    seen: set[str] = set()
    kept: list[_Line] = []
    in_toc = False
    remaining = Counter(_toc_key(line.text) for line in lines)
    for line in lines:
        text = line.text
        remaining[_toc_key(text)] -= 1
        if _TOC_HEADING_RE.match(text.rstrip(":")):
            in_toc = True
            continue
        if in_toc:
            if _TOC_LINE_RE.search(text) or _NUMBER_ONLY_RE.match(text):
                continue
            if remaining[_toc_key(text)] > 0 and len(text.split()) <= 12:
                continue  # an entry without a page number: its heading comes later
            in_toc = False
        if _TOC_LINE_RE.search(text) and len(text.split()) <= 12:
            continue
        if line.hint in ("text", "paragraph") and (
            _PAGE_RE.match(text) or _NUMBER_ONLY_RE.match(text) or _ALONE_GLYPH_RE.match(text)
        ):
            continue
        key = text.casefold()
        if block_sizes[line.block] == 1 and standalone[key] >= 3 and line.hint != "list_item":
            if key in seen:
                continue
            seen.add(key)
        kept.append(line)
    return kept


# --- pass 3: units --------------------------------------------------------------


def _strip_markers(text: str) -> tuple[str, str | None, bool]:
    """Peel bullet glyphs and numbering off the front of a line."""
    number: str | None = None
    bulleted = False
    for _ in range(3):
        bullet = _BULLET_RE.match(text)
        if bullet:
            text = text[bullet.end() :]
            bulleted = True
            continue
        numbered = _NUMBER_RE.match(text)
        if numbered and number is None and text[numbered.end() :][:1].strip():
            number = numbered.group("num").strip()
            text = text[numbered.end() :]
            continue
        break
    return text.strip(), number, bulleted


def _join_wrapped(previous: str, following: str, vocabulary: set[str]) -> str:
    """Rejoin a hard-wrapped line, mending a word hyphenated across the break
    only when the document itself spells that word without the hyphen."""
    if _HYPHEN_WRAP_RE.search(previous):
        head = _WORD_RE.findall(previous)[-1]
        tail_match = _WORD_RE.match(following)
        if tail_match and (head + tail_match.group(0)).casefold() in vocabulary:
            return previous[:-1] + following
        return previous + following
    return f"{previous} {following}"


def _is_caps_heading(text: str) -> bool:
    """An ALL-CAPS line such as "USE OF SCHOOL SITES, PAGES AND SPACES"."""
    letters = [ch for ch in text if ch.isalpha()]
    return (
        len(letters) >= 4
        and all(ch.isupper() for ch in letters)
        and len(text.split()) <= 10
        and text[-1] not in ".;,"
    )


def _title_case(text: str) -> bool:
    """Whether every word longer than three letters starts with a capital."""
    long_words = [w for w in text.split() if len(w) > 3]
    return all(w[0].isupper() for w in long_words)


def _is_inline_heading(line: _Line, previous: _Line | None, following: _Line | None) -> bool:
    """A short numbered or title-case line with its paragraph straight after it
    in the same block: PDF text rarely keeps a blank line after a heading.

    It must start the block or follow a finished sentence, and the next line
    must read as running text, so a hard-wrapped sentence or a list of names
    is never cut.
    """
    if line.hint != "text" or following is None or following.block != line.block:
        return False
    if previous is not None and previous.block == line.block and previous.text[-1] not in ".!?":
        return False
    text, number, bulleted = _strip_markers(line.text)
    if bulleted or not text or not text[0].isupper() or text[-1] in _TERMINAL + ",":
        return False
    if ":" in text or _words(text) > 8 or "\t" in text:
        return False
    if text.split()[-1].casefold() in _OPEN_ENDINGS:
        return False
    if number is None:
        if _words(text) > 6 or not _title_case(text):
            return False
    elif not number[0].isdigit():
        return False
    body = following.text
    return body[:1].isupper() and not _title_case(body) and not _strip_markers(body)[1]


def _starts_new_unit(line: _Line, previous: _Line | None) -> bool:
    if line.hint != "text" or _is_table_row(line):
        return True
    if line.heading or (previous is not None and previous.heading):
        return True
    if previous is not None and (
        previous.text.endswith(":")
        or _is_caps_heading(previous.text)
        or (previous.text[-1] in ".!?" and line.text.endswith(":") and len(line.text.split()) <= 8)
    ):
        return True
    if _is_caps_heading(line.text):
        return True
    if _MD_HEADING_RE.match(line.text):
        return True
    text, number, bulleted = _strip_markers(line.text)
    return bool(text) and (bulleted or number is not None)


def _make_unit(line: _Line) -> _Unit:
    if _is_table_row(line):
        return _Unit("row", line.text, block=line.block, hinted=True)
    if line.hint == "heading":
        text, number, _ = _strip_markers(line.text)
        label = f"{number} {text}" if number and number[0].isdigit() else text
        return _Unit("heading", label, level=max(line.level, 1), block=line.block, hinted=True)
    markdown = _MD_HEADING_RE.match(line.text) if line.hint == "text" else None
    if markdown:
        return _Unit(
            "heading",
            markdown.group(2),
            level=len(markdown.group(1)),
            block=line.block,
            hinted=True,
        )
    text, number, bulleted = _strip_markers(line.text)
    if line.hint == "list_item":
        return _Unit(
            "item",
            text,
            level=line.level,
            number=number,
            bulleted=True,
            block=line.block,
            hinted=True,
        )
    kind: UnitKind = "item" if (bulleted or number) else "para"
    return _Unit(kind, text, level=line.indent, number=number, bulleted=bulleted, block=line.block)


def _units(lines: list[_Line]) -> list[_Unit]:
    vocabulary = {w.casefold() for line in lines for w in _WORD_RE.findall(line.text)}
    units: list[_Unit] = []
    block_sizes = Counter(line.block for line in lines)
    for index, line in enumerate(lines):
        before = lines[index - 1] if index else None
        after = lines[index + 1] if index + 1 < len(lines) else None
        line.heading = _is_inline_heading(line, before, after)
    previous: _Line | None = None
    for line in lines:
        current = units[-1] if units else None
        continues = (
            current is not None
            and current.block == line.block
            and not _starts_new_unit(line, previous)
            and current.kind in ("para", "item")
            and not current.hinted
        )
        if continues and current is not None:
            current.text = _join_wrapped(current.text, line.text, vocabulary)
            current.standalone = False
        else:
            unit = _make_unit(line)
            unit.standalone = (
                block_sizes[line.block] == 1 or _is_caps_heading(line.text) or line.heading
            )
            units.append(unit)
        previous = line
    for unit in units:
        if not unit.hinted:  # emphasis that spanned a hard wrap: *"Christ is ...\n... together"*
            unit.text = _MD_EMPHASIS_RE.sub(r"\2", unit.text)
    return units


# --- pass 4: cross-block joins and classification ---------------------------------


def _ends_open(text: str) -> bool:
    return bool(text) and text[-1] not in _TERMINAL and not text.endswith(("…",))


def _join_broken_sentences(units: list[_Unit]) -> list[_Unit]:
    """A blank line in the middle of a sentence (common in PDF exports) leaves
    a fragment that starts in lower case: put it back where it belongs, unless
    what comes before is a title-case heading ("Devices", then "iPads are...")."""
    vocabulary = {w.casefold() for u in units for w in _WORD_RE.findall(u.text)}
    out: list[_Unit] = []
    for unit in units:
        previous = out[-1] if out else None
        if (
            previous is not None
            and unit.kind == "para"
            and not unit.hinted
            and previous.kind in ("para", "item")
            and unit.text[:1].islower()
            and _ends_open(previous.text)
            and not (_looks_like_heading(previous) and _title_case(previous.text))
        ):
            previous.text = _join_wrapped(previous.text, unit.text, vocabulary)
            previous.standalone = False
            continue
        out.append(unit)
    return out


def _looks_like_heading(unit: _Unit) -> bool:
    """A short standalone line with no closing punctuation reads as a heading."""
    if unit.kind == "heading":
        return True
    if unit.hinted or not unit.standalone or unit.bulleted:
        return False
    text = unit.text
    words = text.split()
    if not words or len(words) > 10 or text[-1] in ".;,!:…\"'”":
        return False
    if not (text[0].isupper() or text[0].isdigit()):
        return False
    if len(words) > 5 and not unit.number and not _is_caps_heading(text):
        long_words = [w for w in words if len(w) > 3]
        capitalised = sum(w[0].isupper() for w in long_words)
        if capitalised < 0.6 * len(long_words):
            return False  # a sentence-case line this long is a sentence, not a heading
    if not unit.number and re.search(r"\w:\s+\S", text):
        return False  # "Review Date: September 2020" is a field, not a heading
    if unit.number and not unit.number[0].isdigit():
        return False
    return any(ch.isalpha() for ch in text)


def _is_label(unit: _Unit) -> bool:
    """A short line ending in a colon that names what follows ("Individuals should:")."""
    return unit.text.endswith(":") and len(unit.text.split()) <= 8 and unit.kind in ("para", "item")


def _heading_depth(number: str | None) -> int:
    """ "2" and "6.0" are top level, "2.1" is one down."""
    if not number:
        return 1
    parts = [p for p in re.findall(r"\d+", number.split("(")[0])]
    while len(parts) > 1 and parts[-1] == "0":
        parts.pop()
    return max(len(parts), 1)


def _list_entry_like(unit: _Unit) -> bool:
    """A short unpunctuated line of body text, such as two list entries that a
    hard wrap left on one line ("Computer Misuse Act 1990 Defamation Act 1996")."""
    text = unit.text
    return (
        unit.kind == "para"
        and not unit.hinted
        and bool(text)
        and text[0].isupper()
        and text[-1] not in _TERMINAL
        and _words(text) <= 16
    )


def _classify(units: list[_Unit]) -> list[_Unit]:
    """Promote heading-like lines to headings, except runs of three or more,
    which are a list typed without bullets (legislation, related policies).

    A run may pass over short unpunctuated lines that are not heading-like
    themselves (two entries on one line): they belong to the list too, and
    the list is not cut into pieces whose ends would pass for headings.
    """
    candidates = [
        u.kind != "heading" and _looks_like_heading(u) and u.number is None for u in units
    ]
    in_list = [False] * len(units)
    start = 0
    while start < len(units):
        end = start
        while end < len(units) and (candidates[end] or _list_entry_like(units[end])):
            end += 1
        members = [index for index in range(start, end) if candidates[index]]
        if len(members) >= 3:
            for index in range(members[0], members[-1] + 1):
                in_list[index] = True
        start = max(end, start + 1)
    out: list[_Unit] = []
    for index, unit in enumerate(units):
        if in_list[index]:
            unit = replace(unit, kind="item", level=0)
        elif unit.kind != "heading" and _looks_like_heading(unit):
            label = f"{unit.number} {unit.text}" if unit.number else unit.text
            depth = _heading_depth(unit.number)
            unit = replace(unit, kind="heading", text=label, level=depth, number=None)
        out.append(unit)
    return out


# --- pass 5: clauses --------------------------------------------------------------


def _words(text: str) -> int:
    return len(text.split())


def sentences(text: str) -> list[str]:
    """The sentences of a paragraph; "e.g." and "Mrs." do not end one."""
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(text):
        candidate = text[start : match.start()].rstrip()
        if candidate.casefold().endswith(_ABBREVIATIONS):
            continue
        parts.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _split_long_sentence(sentence: str) -> list[str]:
    """Last resort for a single sentence over the ceiling: break at ; or ,."""
    pieces = re.split(r"(?<=[;,])\s+", sentence)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and _words(chunks[-1]) + _words(piece) <= TARGET_CHUNK_WORDS:
            chunks[-1] = f"{chunks[-1]} {piece}"
        else:
            chunks.append(piece)
    final: list[str] = []
    for chunk in chunks:
        words = chunk.split()
        while len(words) > MAX_CLAUSE_WORDS:
            final.append(" ".join(words[:TARGET_CHUNK_WORDS]))
            words = words[TARGET_CHUNK_WORDS:]
        final.append(" ".join(words))
    return final


def split_long(text: str, budget: int = MAX_CLAUSE_WORDS) -> list[str]:
    """Split text longer than the limit at sentence boundaries into chunks."""
    if _words(text) <= min(budget, SPLIT_ABOVE_WORDS):
        return [text]
    chunks: list[str] = []
    for sentence in sentences(text):
        pieces = [sentence] if _words(sentence) <= budget else _split_long_sentence(sentence)
        for piece in pieces:
            if chunks and _words(chunks[-1]) + _words(piece) <= min(TARGET_CHUNK_WORDS, budget):
                chunks[-1] = f"{chunks[-1]} {piece}"
            else:
                chunks.append(piece)
    return chunks


def _lead_in_sentence(text: str) -> str:
    """The part of a paragraph that introduces the list after it."""
    parts = sentences(text)
    return parts[-1] if len(parts) > 1 and _words(text) > 30 else text


def _number_style(number: str | None) -> str | None:
    if not number:
        return None
    if number[0].isdigit():
        return "digit"
    return "roman" if re.match(r"\(?[ivx]+[.)]", number) else "letter"


@dataclass
class _Scope:
    """A lead-in sentence and the units it introduces."""

    text: str
    mode: Literal["list", "paragraphs", "pending"]
    level: int
    label: bool
    number_style: str | None = None
    number: str | None = None  # the paragraph number of the lead-in, which its items share
    nested: bool = False  # a list item introducing items nested deeper than itself
    parent: _Scope | None = None  # the list a nested lead-in item belongs to


class _ClauseWriter:
    """Walks units in order, keeping the heading path and the open lead-in."""

    def __init__(self) -> None:
        self.clauses: list[Clause] = []
        self.headings: list[tuple[int, str]] = []
        self.sub_label: tuple[int, str] | None = None
        self.label: str | None = None  # "Staff protocol:" naming the lead-in and list after it
        self.scope: _Scope | None = None
        self.pending_items: list[_Unit] = []

    # section path -------------------------------------------------------------

    def section(self) -> tuple[str, ...]:
        path = [text for _, text in self.headings]
        if self.label is not None:
            path.append(self.label)
        if self.scope is not None and self.scope.label and self.scope.mode == "paragraphs":
            path.append(self.scope.text.rstrip(":").strip())
        if self.sub_label is not None:
            path.append(self.sub_label[1])
        return tuple(path)

    def heading(self, unit: _Unit) -> None:
        self.flush()
        self.scope = None
        self.sub_label = None
        self.label = None
        level = unit.level
        numbered = [(lvl, text) for lvl, text in self.headings if text[:1].isdigit()]
        if not unit.hinted and numbered and not unit.text[:1].isdigit():
            # An unnumbered heading inside numbered sections ("6. Safeguarding",
            # then "Reporting concerns") is a sub-heading, unless it is written
            # in capitals like its numbered neighbours: then its number was lost.
            parent_level, parent = numbered[-1]
            if not (_is_caps_heading(parent) and _is_caps_heading(unit.text)):
                level = parent_level + 1
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, unit.text.rstrip(":").strip()))

    # emitting -------------------------------------------------------------------

    def emit(self, text: str, number: str | None = None, lead_in: str | None = None) -> None:
        section = self.section()
        budget = MAX_CLAUSE_WORDS - (_words(lead_in) if lead_in else 0)
        if lead_in and budget < 40:
            lead_in, budget = None, MAX_CLAUSE_WORDS
        for chunk in split_long(text, budget):
            full = f"{lead_in} {chunk}" if lead_in else chunk
            self.clauses.append(Clause(len(self.clauses), section, full.strip(), number, lead_in))

    def flush(self) -> None:
        """Emit the items collected under a lead-in: grouped when all are tiny."""
        items, self.pending_items = self.pending_items, []
        if not items:
            return
        lead_in = self.scope.text if self.scope is not None else None
        number = self.scope.number if self.scope is not None else None
        if len(items) > 1 and all(_words(i.text) <= TINY_ITEM_WORDS for i in items):
            body = "\n".join(f"• {i.text}" for i in items)
            if _words(body) + (_words(lead_in) if lead_in else 0) <= MAX_CLAUSE_WORDS:
                text = f"{lead_in}\n{body}" if lead_in else body
                clause = Clause(len(self.clauses), self.section(), text, number, lead_in)
                self.clauses.append(clause)
                return
        for item in items:
            self.emit(item.text, item.number or number, lead_in)

    # the walk -----------------------------------------------------------------

    def item(self, unit: _Unit, following: _Unit | None, is_label: bool) -> None:
        if self.scope is not None and self.scope.mode == "pending":
            self.scope.mode = "list"
        if is_label:
            self.flush()
            self.sub_label = (unit.level, unit.text)
            return
        if self.sub_label is not None and unit.level < self.sub_label[0]:
            self.flush()
            self.sub_label = None
        closed = False
        while self.scope is not None and self.scope.mode == "list" and self.ends_list(unit):
            self.flush()
            self.scope = self.scope.parent  # back to the list the closed one sat in
            closed = True
        if unit.text.endswith(":") and following is not None and following.kind == "item":
            self.flush()
            parent = self.scope if self.scope is not None and self.scope.mode == "list" else None
            nested = following.level > unit.level
            lead_in = f"{parent.text} {unit.text}" if parent is not None else unit.text
            self.scope = _Scope(
                lead_in,
                "list",
                following.level if nested else unit.level,
                label=False,
                number_style=_number_style(unit.number),
                number=unit.number or (parent.number if parent is not None else None),
                nested=nested,
                parent=parent,
            )
            return
        if closed and self.scope is None:
            self.emit(unit.text, unit.number)
            return
        self.pending_items.append(unit)

    def ends_list(self, unit: _Unit) -> bool:
        """Whether a list item closes the innermost open list: the next paragraph
        number in the lead-in's own style ("8." after "7. ... :"), an item back at
        the level of the item that opened a nested list, or a shallower text line."""
        scope = self.scope
        if scope is None:
            return False
        if scope.number_style is not None and _number_style(unit.number) == scope.number_style:
            return True
        return unit.level < scope.level and (not unit.hinted or scope.nested)

    def paragraph(self, unit: _Unit, following: _Unit | None) -> None:
        self.flush()  # items collected so far come before this paragraph
        if self.scope is not None and self.scope.mode == "list":
            self.scope = None
        self.sub_label = None
        opens_list = unit.text.endswith(":") and following is not None and following.kind == "item"
        if self.scope is not None and self.scope.mode == "pending":
            if opens_list and not _is_label(unit):
                # "Staff protocol:" then "Where a post is made, staff must:" and a list:
                # the label names what follows; the sentence is the lead-in.
                self.label = self.scope.text.rstrip(":").strip()
                self.scope = None
            else:
                self.scope.mode = "paragraphs"
        if unit.text.endswith(":") and following is not None and following.kind != "heading":
            level = following.level if following.kind == "item" else unit.level
            if _is_label(unit):
                self.label = None
                self.open_scope(unit.text, label=True, level=level, mode="pending")
                return
            if following.kind != "item":
                self.scope = None  # it introduces no list: a statement of its own
                self.emit(unit.text, unit.number)
                return
            lead_in = _lead_in_sentence(unit.text)
            before = unit.text[: len(unit.text) - len(lead_in)].strip()
            if before:
                self.emit(before, unit.number)
            self.open_scope(lead_in, label=False, level=following.level, mode="list")
            if self.scope is not None:
                self.scope.number = unit.number
            return
        self.emit(unit.text, unit.number, self.lead_in_for_paragraph())

    def lead_in_for_paragraph(self) -> str | None:
        if self.scope is not None and self.scope.mode == "paragraphs":
            return self.scope.text
        return None

    def open_scope(self, text: str, label: bool, level: int, mode: str) -> None:
        self.scope = _Scope(text, "list" if mode == "list" else "pending", level, label)

    def row(self, unit: _Unit) -> None:
        self.flush()
        cells = [c.strip() for c in unit.text.split("\t") if c.strip()]
        if cells:
            self.emit(" — ".join(cells))


def _is_version_table(rows: Iterable[_Unit]) -> bool:
    first = next(iter(rows), None)
    return first is not None and first.text.casefold().startswith(("version", "revision", "date"))


_HISTORY_RE = re.compile(
    r"^(?:revisions?|revision history|amendments?|amendment history|version history|"
    r"document history|change history|date of original)\s*:",
    re.IGNORECASE,
)
"""A paragraph of document history ("Revisions: reviewed and updated (January 2016)...")."""


def _drop_metadata_tables(units: list[_Unit]) -> list[_Unit]:
    """Version-history tables and history paragraphs are metadata (see
    metadata.py), not guidance; next review dates stay, as staff ask about them."""
    out: list[_Unit] = []
    run: list[_Unit] = []

    def close() -> None:
        if run and not _is_version_table(run):
            out.extend(run)
        run.clear()

    for unit in units:
        if unit.kind == "row":
            run.append(unit)
            continue
        close()
        if unit.kind == "para" and _HISTORY_RE.match(unit.text):
            continue
        out.append(unit)
    close()
    return out


def _drop_title(units: list[_Unit]) -> list[_Unit]:
    """Headings before any body text are the title page, not sections."""
    out: list[_Unit] = []
    body_started = False
    for unit in units:
        if not body_started and unit.kind == "heading" and _names_a_policy(unit):
            continue
        if _is_body_text(unit):
            body_started = True
        out.append(unit)
    return out


def _names_a_policy(unit: _Unit) -> bool:
    """ "Social Media Policy" and the like: a title line, not a section."""
    return "polic" in unit.text.casefold()


def _is_body_text(unit: _Unit) -> bool:
    """A paragraph or item long enough to be policy text, not a title page line."""
    return unit.kind in ("para", "item") and _words(unit.text) > 12


_APPENDIX_RE = re.compile(r"(?:appendix|annex|appendices)\b", re.IGNORECASE)
"""An appendix is never part of the section before it."""


def _plain_heading(unit: _Unit) -> bool:
    """A heading found by its look alone: no Word style, no number."""
    return (
        unit.kind == "heading"
        and not unit.hinted
        and unit.level == 1
        and not unit.text[:1].isdigit()
    )


def _nest_subheadings(units: list[_Unit]) -> list[_Unit]:
    """A plain-text heading with no text of its own, straight after the body has
    begun, heads the headings under it: "Managing school social media accounts",
    then "The Do's" and "The Don'ts". They stay under it until the next such
    heading. Headings from Word styles or numbers already know their level."""
    out: list[_Unit] = []
    body_started = False
    under_parent = False
    for index, unit in enumerate(units):
        following = units[index + 1] if index + 1 < len(units) else None
        plain = _plain_heading(unit) and not _APPENDIX_RE.match(unit.text)
        if unit.kind == "heading" and not plain:
            under_parent = False
        elif plain:
            if (
                body_started
                and following is not None
                and _plain_heading(following)
                and not _names_a_policy(unit)
            ):
                under_parent = True
            elif under_parent:
                unit = replace(unit, level=2)
        elif _is_body_text(unit):
            body_started = True
        out.append(unit)
    return out


def _label_like(unit: _Unit) -> bool:
    """A one- or two-word capitalised list item with no closing punctuation,
    and not a "Name: address" entry of a list of contacts or links."""
    return (
        unit.kind == "item"
        and _words(unit.text) <= 2
        and unit.text[:1].isupper()
        and unit.text[-1:] not in _TERMINAL
        and not re.search(r"[:@]|\.\w", unit.text)
    )


def _is_item_label(units: Sequence[_Unit], index: int) -> bool:
    """Whether a list item names the group of items under it ("- Staff", "- SLT").

    It does when the items that follow it, up to the next such name, are nested
    deeper or include one that is more than a tiny phrase; a list of tiny
    names ("- Engaging", "- Informative") is just a list.
    """
    unit = units[index]
    if not _label_like(unit):
        return False
    group: list[_Unit] = []
    for following in units[index + 1 :]:
        if following.kind != "item" or following.level < unit.level:
            break
        if following.level == unit.level and _label_like(following):
            break
        group.append(following)
    return bool(group) and (
        group[0].level > unit.level or any(_words(g.text) > TINY_ITEM_WORDS for g in group)
    )


def _walk(units: list[_Unit]) -> Iterator[Clause]:
    writer = _ClauseWriter()
    for index, unit in enumerate(units):
        following = units[index + 1] if index + 1 < len(units) else None
        if unit.kind == "heading":
            writer.heading(unit)
        elif unit.kind == "row":
            writer.row(unit)
        elif unit.kind == "item":
            writer.item(unit, following, _is_item_label(units, index))
        else:
            writer.paragraph(unit, following)
    writer.flush()
    yield from writer.clauses


def segment(blocks: Sequence[Block]) -> list[Clause]:
    """Turn a document's blocks into clauses, in document order."""
    units = _units(_drop_noise(_lines(blocks)))
    units = _nest_subheadings(_classify(_join_broken_sentences(units)))
    units = _drop_title(_drop_metadata_tables(units))
    clauses = [c for c in _walk(units) if any(ch.isalpha() for ch in c.text)]
    return [replace(c, ord=i) for i, c in enumerate(clauses)]


def document_lines(blocks: Sequence[Block]) -> list[str]:
    """The document as plain lines (blank between blocks), for metadata. List
    items keep a "- " marker, as a plain-text export would show them, so a
    Word or HTML policy reads the same as its .txt twin."""
    lines: list[str] = []
    for block in blocks:
        text = f"- {block.text}" if block.kind == "list_item" else block.text
        lines.extend(text.split("\n"))
        lines.append("")
    return lines
