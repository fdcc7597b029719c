"""Title, version history, review dates, owner and contact of one policy document.

School policies are exported from Word, PDF and web pages by many hands, so none
of this is declared anywhere: it is read from the wording schools actually use
("Review Date: September 2020", a tab-separated version table, "Questions
regarding this policy should be directed to ..."). Every rule here is a general
habit of such documents, never a fix for one file, and every rule would rather
say ``None`` than guess: a wrong review date or a wrong person to ask is worse
for staff than none.

Dates are read the UK way (day before month) and two-digit years are 20xx.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

__all__ = ["PolicyMetadata", "VersionEntry", "extract_metadata", "parse_loose_date"]


@dataclass(frozen=True)
class VersionEntry:
    """One row of a document's version history, as the document words it."""

    version: str
    date: date | None
    description: str


@dataclass(frozen=True)
class PolicyMetadata:
    """What staff and reminders need to know about a policy besides its clauses."""

    title: str
    versions: tuple[VersionEntry, ...]
    adopted: date | None
    last_reviewed: date | None
    next_review: date | None
    contact: str | None
    owner: str | None


# --------------------------------------------------------------------------- dates

_MONTHS: dict[str, int] = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
_YEAR4 = r"(?:19|20)\d{2}"
_ORD = r"(?:st|nd|rd|th)?"

# One alternation, tried left to right at each position, so the most specific
# shape wins ("12/03/2021" is a full date before "03/2021" could be month-year).
_DATE_RE = re.compile(
    rf"""
    (?<![\d.])(?P<iso_y>{_YEAR4})-(?P<iso_m>\d{{1,2}})-(?P<iso_d>\d{{1,2}})(?!\d)
  | (?<![\d.])(?P<dmy_d>\d{{1,2}})[./-](?P<dmy_m>\d{{1,2}})[./-](?P<dmy_y>\d{{4}}|\d{{2}})
    (?!\d|[./-]\d)
  | (?<![\d.])(?P<dny_d>\d{{1,2}}){_ORD}\s+(?:of\s+)?(?P<dny_m>{_MONTH}),?\s+
    (?P<dny_y>{_YEAR4})(?!\d)
  | \b(?P<mdy_m>{_MONTH})\s+(?P<mdy_d>\d{{1,2}}){_ORD},?\s+(?P<mdy_y>{_YEAR4})(?!\d)
  | \b(?P<my_m>{_MONTH}),?[\s-]+(?P<my_y>{_YEAR4})(?!\d)
  | \b(?P<my2_m>{_MONTH})(?:-|\s?['’])(?P<my2_y>\d{{2}})(?![\d/.])
  | (?<![\d.,/:])(?P<ny_m>0?[1-9]|1[0-2])[ /.-](?P<ny_y>{_YEAR4})(?!\d|[./-]\d)
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _year(text: str) -> int:
    """Two-digit years in school documents are this century."""
    value = int(text)
    return 2000 + value if value < 100 else value


def _month(text: str) -> int:
    return _MONTHS[text.rstrip(".").lower()]


def _date_from_match(m: re.Match[str]) -> date | None:
    """Build the date a match describes; ``None`` for impossible ones like 31.02.23."""
    g = m.group
    try:
        if g("iso_y"):
            return date(int(g("iso_y")), int(g("iso_m")), int(g("iso_d")))
        if g("dmy_d"):
            return date(_year(g("dmy_y")), int(g("dmy_m")), int(g("dmy_d")))
        if g("dny_d"):
            return date(int(g("dny_y")), _month(g("dny_m")), int(g("dny_d")))
        if g("mdy_m"):
            return date(int(g("mdy_y")), _month(g("mdy_m")), int(g("mdy_d")))
        if g("my_m"):
            return date(int(g("my_y")), _month(g("my_m")), 1)
        if g("my2_m"):
            return date(_year(g("my2_y")), _month(g("my2_m")), 1)
        return date(int(g("ny_y")), int(g("ny_m")), 1)
    except ValueError:
        return None


def find_dates(text: str) -> list[date]:
    """Every valid date written in ``text``, in order; impossible dates are skipped."""
    found = (_date_from_match(m) for m in _DATE_RE.finditer(text))
    return [d for d in found if d is not None]


def parse_loose_date(text: str) -> date | None:
    """The first date written in ``text`` in any shape schools use, else ``None``.

    Month-only dates ("September 2020", "03 2019") mean the 1st of the month,
    numeric dates are day-first and two-digit years are 20xx. Bare years and
    page numbers ("Page 3 of 10") are not dates.
    """
    dates = find_dates(text)
    return dates[0] if dates else None


def _date_after(text: str, start: int, gap: re.Pattern[str]) -> date | None:
    """The date right after ``start`` when only ``gap``-shaped words sit between.

    This is what ties a date to its label: "Next review: TBC. Adopted: 1/9/23"
    gives no next-review date, because "TBC. Adopted:" is not a gap.
    """
    m = _DATE_RE.search(text, start)
    if m is None or not gap.fullmatch(text[start : m.start()]):
        return None
    return _date_from_match(m)


# ----------------------------------------------------------------- text shapes


def _word_set(words: str) -> frozenset[str]:
    """A vocabulary written as one space-separated string, easy to review and extend."""
    return frozenset(words.split())


_WS_RE = re.compile(r"\s+")
_BULLET_RE = re.compile(r"^(?:[-*•‣◦▪●■»«]|\d+[.)]|[a-z][.)]|\(?[ivx]+\))\s+")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'‘“(])")
_PIPE_SEPARATOR_RE = re.compile(r":?-{3,}:?")


def _table_cells(line: str) -> list[str] | None:
    """Cells of a tab-separated or Markdown pipe table row; ``None`` for prose."""
    if "\t" in line:
        return [_WS_RE.sub(" ", cell).strip() for cell in line.split("\t")]
    stripped = line.strip()
    if stripped.startswith("|") and stripped.count("|") >= 2:
        return [_WS_RE.sub(" ", cell).strip() for cell in stripped.strip("|").split("|")]
    return None


def _paragraphs(lines: Sequence[str]) -> list[str]:
    """Hard-wrapped lines joined back into paragraphs, so a phrase split by a wrap still matches.

    Table rows and list items stand alone: joining them would let one row's
    label reach the next row's date.
    """
    paragraphs: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            paragraphs.append(" ".join(buffer))
            buffer.clear()

    for raw in lines:
        line = _WS_RE.sub(" ", raw).strip()
        if not line:
            flush()
        elif _table_cells(raw) is not None:
            flush()
            paragraphs.append(raw.strip())
        else:
            if _BULLET_RE.match(line):
                flush()
            buffer.append(line)
    flush()
    return paragraphs


def _sentences(paragraphs: Iterable[str]) -> Iterator[str]:
    for paragraph in paragraphs:
        yield from (s.strip() for s in _SENTENCE_SPLIT_RE.split(paragraph) if s.strip())


# ----------------------------------------------------------------------- title

_TITLE_SCAN_LINES = 25
_TITLE_MAX_WORDS = 12
_POLICY_WORD_RE = re.compile(r"\bpolicy\b", re.IGNORECASE)
_DETERMINER_POLICY_RE = re.compile(
    r"\b(?:this|the|that|our|its|a|any|each|which|their|your)\s+policy\b", re.IGNORECASE
)
_TITLE_LABEL_RE = re.compile(r"^(?:policy\s+)?(?:title|name)\s*:\s*", re.IGNORECASE)
_LABEL_LINE_RE = re.compile(r"^[^:]{1,40}:\s*\S")
_TITLE_STRIP = " \t\"'“”‘’*_#>"
_SMALL_WORDS = _word_set(
    "a an and as at but by for from in into nor of on or per the to via vs with"
)
_ACRONYMS: dict[str, str] = {
    word: word
    for word in _word_set(
        "AUP CCTV CE CEO CPD CSE DBS DDSL DSL EAL EYFS FGM FOI GDPR HR ICO ICT IT JCC KCSIE "
        "LA LADO LGB MAT NHS PE PPA PSHE PTA RC RE RSE RSHE SEN SENCO SEND SENDCO SLT SMSC "
        "TA UK"
    )
} | {"DFE": "DfE"}
_WORD_CORE_RE = re.compile(r"^(?P<pre>\W*)(?P<core>.*?)(?P<post>\W*)$")


def _is_all_caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and all(c.isupper() for c in letters)


def _title_case_word(word: str, first: bool) -> str:
    """One word of an ALL-CAPS title, keeping acronyms and dotted abbreviations."""
    m = _WORD_CORE_RE.match(word)
    assert m is not None  # the pattern matches any string
    core = m["core"]
    if not core or "." in core or any(c.isdigit() for c in core):
        return word
    if core in _ACRONYMS:
        new = _ACRONYMS[core]
    elif not first and core.lower() in _SMALL_WORDS:
        new = core.lower()
    else:
        new = "-".join(_ACRONYMS.get(part, part.capitalize()) for part in core.split("-"))
    return f"{m['pre']}{new}{m['post']}"


def _title_case(text: str) -> str:
    """Title Case for ALL-CAPS exports: small words lower-case, acronyms kept."""
    words = text.split(" ")
    return " ".join(_title_case_word(w, i == 0) for i, w in enumerate(words))


def _clean_title(text: str) -> str:
    text = _WS_RE.sub(" ", text).strip(_TITLE_STRIP)
    text = _TITLE_LABEL_RE.sub("", text).strip(_TITLE_STRIP)
    return _title_case(text) if _is_all_caps(text) else text


def _is_title_line(line: str) -> bool:
    """A short heading naming a policy, not a sentence, table row or label."""
    if _table_cells(line) is not None:
        return False
    text = _WS_RE.sub(" ", line).strip(_TITLE_STRIP)
    if not text or not _POLICY_WORD_RE.search(text):
        return False
    if len(text.split()) > _TITLE_MAX_WORDS or text[-1] in ".?:;,!":
        return False
    if text[0].islower() or _BULLET_RE.match(text) or _DETERMINER_POLICY_RE.search(text):
        return False
    return bool(_TITLE_LABEL_RE.match(text)) or not _LABEL_LINE_RE.match(text)


# "Policy" ending a name: not "Date of Policy Release" (a capital word follows on the line).
_BODY_POLICY_RE = re.compile(r"\bPolicy\b(?![ \t]+[A-Z][a-z])")
_BODY_TOKEN_RE = re.compile(r"[\w’'&-]+")
_PHRASE_BREAK_RE = re.compile(r"[.;:!?()\[\]\"“”|•]")
_CONNECTORS = frozenset({"and", "of", "for", "on", "in", "&"})
_LEADING_NOISE = frozenset({"The", "This", "Our", "Its", "A", "An", "Any", "Each", "Every", "Your"})
_MIN_SUBJECT_MENTIONS = 3


def _body_policy_names(text: str) -> Iterator[tuple[str, str]]:
    """(name, subject) for each Title Case "... Policy" the text mentions."""
    for m in _BODY_POLICY_RE.finditer(text):
        window = _PHRASE_BREAK_RE.split(text[max(0, m.start() - 120) : m.start()])[-1]
        kept: list[str] = []
        for token in reversed(_BODY_TOKEN_RE.findall(window)):
            if token in ("Policy", "Policies"):
                break
            if token[0].isupper() or (kept and token in _CONNECTORS):
                kept.insert(0, token)
            else:
                break
        while kept and (kept[0] in _CONNECTORS or kept[0] in _LEADING_NOISE):
            kept.pop(0)
        while kept and kept[0].endswith(("'s", "’s")):
            kept.pop(0)
        if kept and kept[-1] not in _LEADING_NOISE and kept[-1] not in _CONNECTORS:
            yield " ".join([*kept, "Policy"]), " ".join(kept).lower()


def _title_from_body(lines: Sequence[str]) -> str | None:
    """The "... Policy" name whose subject the document talks about most."""
    lowered = _WS_RE.sub(" ", " ".join(lines)).lower()
    best: tuple[int, str] | None = None
    for name, subject in _body_policy_names("\n".join(lines)):
        mentions = len(re.findall(rf"\b{re.escape(subject)}\b", lowered))
        if mentions >= _MIN_SUBJECT_MENTIONS and (best is None or mentions > best[0]):
            best = (mentions, name)
    return best[1] if best else None


def _extract_title(lines: Sequence[str], fallback_title: str) -> str:
    non_empty = [line for line in lines if line.strip()][:_TITLE_SCAN_LINES]
    for line in non_empty:
        if _is_title_line(line):
            title = _clean_title(line)
            if title:
                return title
    return _title_from_body(lines) or _WS_RE.sub(" ", fallback_title).strip()


# -------------------------------------------------------------------- versions

_VERSION_CELL_RE = re.compile(r"^(?:v(?:er(?:sion)?)?\.?\s*)?\d+(?:\.\d+)*[a-z]?$", re.IGNORECASE)
_VERSION_HEADER_CELL_RE = re.compile(
    r"^(?:version|ver\.?|v|version\s+(?:no\.?|number)|rev(?:ision)?|issue)$", re.IGNORECASE
)
_DESCRIPTION_HEADER_RE = re.compile(
    r"description|change|action|summary|comment|detail|note|amend|reason|revision|update",
    re.IGNORECASE,
)
_HISTORY_HEADING_RE = re.compile(
    r"^\W*(?:version\s+(?:history|control|log)|document\s+(?:history|control)"
    r"|revision\s+history|change\s+log|amendment\s+history|review\s+history)\b",
    re.IGNORECASE,
)
_FREE_VERSION_RE = re.compile(
    r"\b(?:version|ver\.?)\s*(?:no\.?|number)?\s*[:#]\s*(?P<version>\d+(?:\.\d+)*[a-z]?)\b",
    re.IGNORECASE,
)
_SHORT_VERSION_LINE_RE = re.compile(
    r"^\W*(?:version|ver\.?|v)\s*(?P<version>\d+(?:\.\d+)*[a-z]?)\b", re.IGNORECASE
)
_SHORT_LINE_WORDS = 8
_VERSION_DATE_GAP_RE = re.compile(r"[\s:,\-–—(]*(?:(?:dated?|of|from|issued)\s+)?", re.IGNORECASE)


@dataclass(frozen=True)
class _Columns:
    date: int | None
    description: int | None


def _header_columns(cells: list[str]) -> _Columns | None:
    """Column roles from a version table's header row, or ``None`` if it is not one."""
    if len(cells) < 2 or not _VERSION_HEADER_CELL_RE.match(cells[0]):
        return None
    date_col = next((i for i, c in enumerate(cells) if i and "date" in c.lower()), None)
    desc_col = next(
        (
            i
            for i, c in enumerate(cells)
            if i and i != date_col and _DESCRIPTION_HEADER_RE.search(c)
        ),
        None,
    )
    if date_col is None and desc_col is None:
        return None
    return _Columns(date_col, desc_col)


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index] if index is not None and index < len(cells) else ""


def _version_row(cells: list[str], columns: _Columns | None) -> VersionEntry:
    """One version row; without a header the first date-bearing cell is the date."""
    if columns is not None and columns.date is not None:
        date_col: int | None = columns.date
    else:
        date_col = next((i for i, c in enumerate(cells) if i and parse_loose_date(c)), None)
    if columns is not None and columns.description is not None:
        description = _cell(cells, columns.description)
    else:
        description = "; ".join(c for i, c in enumerate(cells) if i and i != date_col and c)
    return VersionEntry(cells[0], parse_loose_date(_cell(cells, date_col)), description)


def _table_versions(lines: Sequence[str]) -> list[VersionEntry]:
    """Rows of version tables: after a "Version | Date | ..." header or a history heading."""
    entries: list[VersionEntry] = []
    columns: _Columns | None = None
    in_table = False
    for raw in lines:
        cells = _table_cells(raw)
        if cells is None:
            if raw.strip():
                columns = None
                in_table = bool(_HISTORY_HEADING_RE.match(raw.strip()))
            continue
        if all(not c or _PIPE_SEPARATOR_RE.fullmatch(c) for c in cells):
            continue
        header = _header_columns(cells)
        if header is not None:
            columns, in_table = header, True
        elif in_table and _VERSION_CELL_RE.match(cells[0]):
            entries.append(_version_row(cells, columns))
        else:
            columns, in_table = None, False
    return entries


def _free_text_versions(lines: Sequence[str]) -> list[VersionEntry]:
    """ "Version: 7" anywhere, or a short line starting "Version 3 ..."."""
    entries: list[VersionEntry] = []
    for raw in lines:
        line = _WS_RE.sub(" ", raw).strip()
        m = _FREE_VERSION_RE.search(line)
        if m is None and len(line.split()) <= _SHORT_LINE_WORDS:
            m = _SHORT_VERSION_LINE_RE.match(line)
        if m is not None:
            found = _date_after(line, m.end(), _VERSION_DATE_GAP_RE)
            entries.append(VersionEntry(m["version"], found, ""))
    unique: dict[str, VersionEntry] = {}
    for entry in entries:
        unique.setdefault(entry.version, entry)
    return list(unique.values())


def _extract_versions(lines: Sequence[str]) -> tuple[VersionEntry, ...]:
    return tuple(_table_versions(lines) or _free_text_versions(lines))


# ---------------------------------------------------------------- dated labels

# Between a label and its date: punctuation and one small preposition.
_LABEL_GAP_RE = re.compile(
    r"\s*(?:\(date\))?\s*[:=|\t–—-]?\s*(?:(?:on|in|of|from|dated?)\s+)?\(?\s*", re.IGNORECASE
)
_NEXT_LABEL_GAP_RE = re.compile(
    r"\s*(?:\(date\))?\s*[:=|\t–—-]?\s*(?:(?:on|in|by|before|of|dated?)\s+)?\(?\s*", re.IGNORECASE
)
# Only for bare verbs like "Reviewed": the label needs real punctuation.
_COLON_GAP_RE = re.compile(r"\s*[:=|\t–—-]\s*(?:on\s+)?\(?\s*", re.IGNORECASE)
# "adopted by the governing body on", "approved at the full governors' meeting on".
_ACTOR_GAP_RE = re.compile(
    r"\s*[:=|\t–—-]?\s*"
    r"(?:(?:by|at)\s+(?:(?!\b(?:by|on|in|at)\b)[A-Za-z’'&/ ]){1,50}?\s+)?"
    r"(?:(?:on|in|at|from|dated?|during)\s+)?(?:the\s+)?\(?\s*",
    re.IGNORECASE,
)
# "is to be reviewed annually by the governing body in ..." -> a preposition last.
_PROSE_NEXT_GAP_RE = re.compile(
    r"[^.;:!?]{0,60}?\b(?:by|in|on|before|during|from|(?:no|not)\s+later\s+than)\s+"
    r"(?:the\s+(?:end|start|beginning)\s+of\s+)?\(?",
    re.IGNORECASE,
)

_NEXT_REVIEW_LABEL_RE = re.compile(
    r"\b(?:date\s+(?:of|for)\s+(?:the\s+)?)?next\s+review(?:\s+date)?(?:\s+due)?"
    r"|(?<!last\s)(?<!previous\s)(?<!original\s)\breview\s+date\b"
    r"|\breview\s+due(?:\s+date)?|\bdue\s+for\s+(?:re)?review",
    re.IGNORECASE,
)
_NEXT_REVIEW_PROSE_RE = re.compile(
    r"\b(?:to|will|shall|should|must)\s+(?:next\s+)?be\s+(?:next\s+)?(?:re)?reviewed\b",
    re.IGNORECASE,
)
_ADOPTED_LABEL_RE = re.compile(
    r"\bdate\s+of\s+(?:the\s+)?(?:original|first\s+issue|issue|adoption|approval|ratification)"
    r"(?:\s+(?:policy|version|issue))?"
    r"|\b(?:(?:policy|document|date)\s+)?(?:first\s+)?(?:adopted|approved|ratified|issued)"
    r"(?:\s+date)?\b|\bissue\s+date\b",
    re.IGNORECASE,
)
_LAST_REVIEW_LABEL_RE = re.compile(
    r"\bdate\s+of\s+(?:last\s+)?review\b|\blast\s+review(?:ed)?(?:\s+date)?\b"
    r"|\bdate\s+(?:last\s+)?reviewed\b|\blast\s+(?:updated|revised|amended)\b",
    re.IGNORECASE,
)
_LAST_REVIEW_BARE_RE = re.compile(
    r"(?<!be\s)(?<!next\s)\b(?:date\s+)?(?:reviewed|updated|revised|amended)\b", re.IGNORECASE
)
_LAST_REVIEW_PROSE_RE = re.compile(
    r"\b(?:policy|document|procedure)\s+(?:was|were|has\s+been|is)\s+"
    r"(?:last\s+|formally\s+|fully\s+)?(?:reviewed|updated|revised|amended)"
    r"(?:\s+and\s+(?:updated|revised|amended|approved|agreed))?\b",
    re.IGNORECASE,
)
_REVISIONS_RE = re.compile(
    r"^\W*(?:revisions?|revision\s+history|amendments?|review\s+history|changes|updates)\s*[:\-–]",
    re.IGNORECASE,
)
_TRAILING_DATE_RE = re.compile(
    r"^\W*(?:date|dated|date\s+reviewed|reviewed|last\s+updated|updated)\s*[:\-–]?\s*",
    re.IGNORECASE,
)
_TRAILING_LINES = 6
_POLICY_SUBJECT_RE = re.compile(r"\b(?:policy|document|procedure|it)\b", re.IGNORECASE)


def _labelled_dates(
    texts: Iterable[str], label: re.Pattern[str], gap: re.Pattern[str], *, subject: bool = False
) -> list[date]:
    """Dates that directly follow ``label``; with ``subject`` the label must start
    the sentence or come with a mention of the policy ("Policy adopted:", "this
    policy was approved by ..."), so "Trips are approved by the head by 1 June"
    says nothing about the policy."""
    found: list[date] = []
    for text in texts:
        for m in label.finditer(text):
            before = text[: m.start()]
            if subject and before.strip() and not _POLICY_SUBJECT_RE.search(text[: m.end()]):
                continue
            value = _date_after(text, m.end(), gap)
            if value is not None:
                found.append(value)
    return found


def _revision_dates(paragraphs: Iterable[str]) -> list[date]:
    """All dates in a "Revisions: ... (April 2014); ... (September 2018)" block."""
    return [d for p in paragraphs if _REVISIONS_RE.match(p) for d in find_dates(p)]


def _trailing_dates(lines: Sequence[str]) -> list[date]:
    """A lone "Date: February 2024" among the last lines: when the text was signed off."""
    tail = [line.strip() for line in lines if line.strip()][-_TRAILING_LINES:]
    found: list[date] = []
    for line in tail:
        m = _TRAILING_DATE_RE.match(line)
        if m is not None:
            dm = _DATE_RE.match(line, m.end())
            value = _date_from_match(dm) if dm else None
            if dm and value and not line[dm.end() :].strip(" .)"):
                found.append(value)
    return found


def _next_review(sentences: list[str]) -> date | None:
    found = _labelled_dates(sentences, _NEXT_REVIEW_LABEL_RE, _NEXT_LABEL_GAP_RE)
    found += _labelled_dates(sentences, _NEXT_REVIEW_PROSE_RE, _PROSE_NEXT_GAP_RE, subject=True)
    return max(found, default=None)


def _adopted(sentences: list[str], versions: Sequence[VersionEntry]) -> date | None:
    found = _labelled_dates(sentences, _ADOPTED_LABEL_RE, _ACTOR_GAP_RE, subject=True)
    if found:
        return min(found)
    return min((v.date for v in versions if v.date), default=None)


def _last_reviewed(
    lines: Sequence[str],
    paragraphs: list[str],
    sentences: list[str],
    versions: Sequence[VersionEntry],
) -> date | None:
    found = [v.date for v in versions if v.date]
    found += _labelled_dates(sentences, _LAST_REVIEW_LABEL_RE, _LABEL_GAP_RE)
    found += _labelled_dates(sentences, _LAST_REVIEW_BARE_RE, _COLON_GAP_RE)
    found += _labelled_dates(sentences, _LAST_REVIEW_PROSE_RE, _ACTOR_GAP_RE)
    found += _revision_dates(paragraphs)
    found += _trailing_dates(lines)
    return max(found, default=None)


# ---------------------------------------------------------------------- people

_MAX_CONTACT_WORDS = 12
_MAX_OWNER_WORDS = 8
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_EMAIL_WITH_PREP_RE = re.compile(
    r"\s*(?:\b(?:on|at|via|by\s+e-?mail(?:ing)?|e-?mail)\s*:?\s*)?[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    re.IGNORECASE,
)
_QUESTION_RE = re.compile(
    r"\b(?:questions?|queries|query|enquiries|enquiry|clarification)\b", re.IGNORECASE
)
_POLICY_REF_RE = re.compile(
    r"\b(?:this|the)\s+(?:policy|document|procedure|guidance)\b", re.IGNORECASE
)
_DIRECT_RE = re.compile(
    r"""\b(?:
        (?:directed|addressed|referred|sent|made|raised|put|forwarded|passed|submitted|taken)
        (?:\s+(?:by\s+e-?mail|by\s+(?:tele)?phone|in\s+writing|directly|first))?\s+(?:to|with)
      | (?:speak|speaking|talk|talking|raise\s+(?:them|it|these)|discuss\s+(?:them|it|these))
        \s+(?:to|with)
      | contact(?:ing)? | ask(?:ing)? | e-?mail(?:ing)? | consult(?:ing)?(?:\s+with)?
      | approach(?:ing)? | get\s+in\s+touch\s+with
    )\b\s*:?""",
    re.IGNORECASE | re.VERBOSE,
)
_RECIPIENT_END_RE = re.compile(
    r"\s+(?:in\s+the\s+first\s+instance|if|who|whom|before|for|as\s+soon|so\s+that|where|when"
    r"|at\s+the\s+earliest|via|using|by|on|at|and\s+they|or\s+via)\b"
    r"|,\s*(?=[a-z])|,\s*$|[;()]|\.\s|\.$",
)
_FIELD_RE = re.compile(
    r"\b(?P<label>name|role|position|job\s+title|title|e-?mail|tel(?:ephone)?|phone|date|contact)"
    r"\s*:\s*",
    re.IGNORECASE,
)
_UNSURE_RE = re.compile(
    r"\b(?:consult|speak|talk|check|discuss\s+(?:it|this|the\s+matter))\s+(?:with\s+|to\s+)?"
    r"(?P<who>[^.;:]{2,80}?)\s+(?:if|when)\s+(?:they|you|he|she|he/she|staff)\s+(?:are|is)\s+"
    r"(?:unsure|uncertain|in\s+doubt|not\s+sure)\b",
    re.IGNORECASE,
)
_UNSURE_FIRST_RE = re.compile(
    r"\b(?:if|when)\s+(?:you\s+are\s+|they\s+are\s+|staff\s+are\s+|in\s+)?"
    r"(?:unsure|uncertain|in\s+doubt|not\s+sure)\b[^.;]{0,80}?"
    r"\b(?:ask|consult(?:\s+with)?|speak\s+(?:to|with)|talk\s+(?:to|with)|check\s+with|contact"
    r"|seek\s+(?:advice|guidance)\s+from)\s+(?P<who>[^.;]{2,80})",
    re.IGNORECASE,
)
_RESPONSIBLE_LEAD_RE = re.compile(
    r"^(?P<who>(?:the\s+)?[A-Z][A-Za-z /’'-]{1,40}?)\s+(?:is|are|will\s+be|shall\s+be)\s+"
    r"responsible\s+for\s*:\s*$",
)
_RESPONSIBLE_INLINE_RE = re.compile(
    r"^(?P<who>(?:the\s+)?[A-Z][A-Za-z /’'-]{1,40}?)\s+(?:is|are|will\s+be|shall\s+be)\s+"
    r"responsible\s+for\b(?P<what>.*)$",
)
_ANSWERS_RE = re.compile(
    r"^(?P<who>(?:the\s+)?[A-Z][A-Za-z /’'-]{1,40}?)\s+(?:will|can|shall)\s+"
    r"(?:answer|deal\s+with|respond\s+to|handle)\s+(?:any\s+)?(?:questions|queries)\b",
)
_PRONOUN_RE = re.compile(r"\b(?:their|his/her|his\s+or\s+her|her/his)\b", re.IGNORECASE)
_DETERMINER_START_RE = re.compile(r"^(?:the|your|a|an|any)\s", re.IGNORECASE)
_PERSON_TITLE_RE = re.compile(r"^(?:mr|mrs|ms|miss|mx|dr|prof)\b\.?", re.IGNORECASE)
_ROLE_NOUNS = _word_set(
    "headteacher headteachers head heads manager managers leader leaders lead leads governors "
    "governor body officer officers deputy deputies team dsl senco sendco slt principal "
    "coordinator co-ordinator administrator clerk trustees board committee teacher teachers "
    "director ceo hr office"
)
_MAX_FIELD_PARAGRAPHS = 4
"""How many separate "Label: value" paragraphs make up one contact block."""


def _lower_role_words(phrase: str) -> str:
    """ "the Headteacher" -> "the headteacher"; acronyms and anything after a comma stay."""
    head, sep, tail = phrase.partition(",")
    words = [w.lower() if w[:1].isupper() and not w.isupper() else w for w in head.split(" ")]
    return " ".join(words) + sep + tail


def _tidy_person(text: str) -> str | None:
    """A short "who to ask" phrase in the reader's voice, or ``None`` if it is not one."""
    text = _WS_RE.sub(" ", text).strip(" \t:;,.-–—\"'“”‘’")
    text = _PRONOUN_RE.sub("your", text)
    if not text or len(text.split()) > _MAX_CONTACT_WORDS or not any(c.isalpha() for c in text):
        return None
    if _DETERMINER_START_RE.match(text):
        text = _lower_role_words(text)
    return text


def _role_phrase(who: str) -> str:
    """ "Managers" -> "your manager", "The Headteacher" -> "the headteacher"; names stay."""
    parts = [p.strip() for p in who.split("/") if p.strip()]
    phrases: list[str] = []
    for part in parts:
        lowered = _WS_RE.sub(" ", part).lower()
        last = lowered.split(" ")[-1]
        if _PERSON_TITLE_RE.match(part) or last not in _ROLE_NOUNS:
            phrases.append(part)
        elif lowered.startswith(("the ", "your ", "a ")):
            phrases.append(lowered)
        elif last.endswith("s") and not last.endswith("ss"):
            phrases.append("your " + lowered[:-1])
        else:
            phrases.append("the " + lowered)
    return " or ".join(phrases)


def _recipient_after(sentence: str, start: int) -> str:
    """The words naming a person after a "should be directed to" verb."""
    rest = _EMAIL_WITH_PREP_RE.sub("", sentence[start:])
    end = _RECIPIENT_END_RE.search(rest)
    return rest[: end.start()] if end else rest


def _field_paragraphs(paragraphs: Sequence[str]) -> list[str]:
    """Join a run of short "Label: value" paragraphs (Word puts "Name:" and
    "Role:" in separate paragraphs; a text export puts them on one block)."""
    if not paragraphs or not _FIELD_RE.match(paragraphs[0]):
        return list(paragraphs[:2])
    run = [paragraphs[0]]
    for paragraph in paragraphs[1:_MAX_FIELD_PARAGRAPHS]:
        if not _FIELD_RE.match(paragraph):
            break
        run.append(paragraph)
    return [" ".join(run)]


def _fields_contact(paragraphs: Sequence[str]) -> str | None:
    """ "Name: Natalie Slight Role: Acting Headteacher" -> "Natalie Slight, Acting Headteacher"."""
    for paragraph in _field_paragraphs(paragraphs):
        matches = list(_FIELD_RE.finditer(paragraph))
        if not matches:
            return _tidy_person(paragraph) if not paragraph.endswith(".") else None
        fields: dict[str, str] = {}
        for m, nxt in zip(matches, [*matches[1:], None], strict=True):
            value = paragraph[m.end() : nxt.start() if nxt else len(paragraph)].strip()
            fields.setdefault(_WS_RE.sub(" ", m["label"].lower()), value)
        person = ", ".join(
            v for v in (fields.get("name"), fields.get("role") or fields.get("position")) if v
        ) or fields.get("contact", "")
        email = next((fields[k] for k in ("email", "e-mail") if fields.get(k)), "")
        if person:
            return f"{person} ({email})" if email else person
        if email:
            return email
    return None


def _explicit_contact(paragraphs: list[str]) -> str | None:
    """ "Questions regarding this policy should be directed to ..." and its variants."""
    for index, paragraph in enumerate(paragraphs):
        for sentence in _sentences([paragraph]):
            question = _QUESTION_RE.search(sentence)
            if question is None or not _POLICY_REF_RE.search(sentence):
                continue
            verb = _DIRECT_RE.search(sentence, question.end())
            if verb is None:
                continue
            email = _EMAIL_RE.search(sentence, verb.start())
            who = _tidy_person(_recipient_after(sentence, verb.end()))
            if who is None and not sentence[verb.end() :].strip(" :"):
                return _fields_contact(paragraphs[index + 1 :])
            if who and email and email[0] not in who:
                return f"{who} ({email[0]})"
            if who or email:
                return who or (email[0] if email else None)
    return None


def _unsure_contact(sentences: list[str]) -> str | None:
    """ "... consult with their manager or the Headteacher if they are unsure"."""
    for sentence in sentences:
        m = _UNSURE_RE.search(sentence)
        if m is not None:
            who = _tidy_person(m["who"])
        else:
            m = _UNSURE_FIRST_RE.search(sentence)
            if m is None:
                continue
            who = _tidy_person(_recipient_after(m["who"], 0))
        if who:
            return who
    return None


def _responsible_contact(paragraphs: list[str]) -> str | None:
    """ "Managers are responsible for: - addressing ... questions employees may have"."""
    lead: str | None = None
    for paragraph in paragraphs:
        bullet = _BULLET_RE.match(paragraph)
        if bullet is not None:
            if lead and _QUESTION_RE.search(paragraph):
                return _role_phrase(lead)
            continue
        m = _RESPONSIBLE_LEAD_RE.match(paragraph)
        lead = m["who"] if m else None
        for sentence in _sentences([paragraph]):
            inline = _RESPONSIBLE_INLINE_RE.match(sentence)
            if inline and _QUESTION_RE.search(inline["what"]):
                return _role_phrase(inline["who"])
            answers = _ANSWERS_RE.match(sentence)
            if answers:
                return _role_phrase(answers["who"])
    return None


def _extract_contact(
    label_lines: list[str], paragraphs: list[str], sentences: list[str]
) -> str | None:
    """Strongest statement first: an explicit "questions ... to" beats a hint."""
    return (
        _explicit_contact(paragraphs)
        or _labelled_person(label_lines, _CONTACT_LABEL_RE)
        or _unsure_contact(sentences)
        or _responsible_contact(paragraphs)
    )


_OWNER_STATEMENT_RE = re.compile(
    r"^(?P<who>[A-Za-z][A-Za-z ’'&/-]{1,60}?)\s+(?:is|are)\s+(?:the\s+)?owners?\s+of\s+"
    r"(?:this|the)\s+(?:document|policy)\b",
    re.IGNORECASE,
)
_OWNED_BY_RE = re.compile(
    r"\b(?:policy|document)\s+is\s+owned\s+by\s+(?P<who>[^.;,]{2,60}?)"
    r"(?=\s+(?:and|who|on|in)\b|[.;,]|$)",
    re.IGNORECASE,
)
_OWNER_LABEL_RE = re.compile(
    r"^\W*(?:(?:document|policy)\s+)?owner(?:ship)?\s*(?::|\t|\s[-–]\s)\s*", re.IGNORECASE
)
_CONTACT_LABEL_RE = re.compile(
    r"^\W*(?:policy\s+|named\s+|key\s+)?(?:contact|contact\s+person|lead\s+person|policy\s+lead)"
    r"\s*(?::|\t|\s[-–]\s)\s*",
    re.IGNORECASE,
)
_APPROVER_LABEL_RE = re.compile(
    r"^\W*(?:(?:policy|document)\s+)?(?:approved|ratified|agreed|adopted)\s+by\b\s*[:\t–-]?\s*",
    re.IGNORECASE,
)
_APPROVER_PROSE_RE = re.compile(
    r"\b(?:policy|document)\s+(?:was|has\s+been|is|will\s+be)\s+(?:formally\s+)?"
    r"(?:approved|ratified|adopted|agreed)\s+by\s+",
    re.IGNORECASE,
)
# A label's value ends at the next cell, label, sentence or date.
_LABEL_VALUE_END_RE = re.compile(
    r"\t|\s{2,}|\s+(?:on|in|at|dated?)\s|\s*;|\s+\w+(?:\s+\w+)?\s*:"
    r"|,\s*(?=[a-z])|\.\s|\.$"
)
_BRACKET_RE = re.compile(r"\s*\(.*$")


def _label_value(text: str, *, brackets: bool = False) -> str:
    """The value after a label; a bracketed aside is kept only when asked for."""
    end = _LABEL_VALUE_END_RE.search(text)
    value = text[: end.start()] if end else text
    if not brackets:
        value = _BRACKET_RE.sub("", value)
    return value.strip(" \t:;,.-–")


def _labelled_person(texts: Iterable[str], label: re.Pattern[str]) -> str | None:
    """The value after a "Contact:" style label, when it reads like a person or role."""
    for text in texts:
        m = label.match(text)
        if m is not None:
            value = _tidy_person(_label_value(text[m.end() :], brackets=True))
            if value and not any(c.isdigit() for c in value):
                return value
    return None


def _tidy_owner(text: str) -> str | None:
    text = _WS_RE.sub(" ", text).strip(" \t:;,.-–\"'")
    if not text or len(text.split()) > _MAX_OWNER_WORDS or any(c.isdigit() for c in text):
        return None
    return text[0].upper() + text[1:]


def _extract_owner(label_lines: list[str], sentences: list[str]) -> str | None:
    """Explicit ownership first, then an "Owner:" label, then who approves it."""
    for sentence in sentences:
        m = _OWNER_STATEMENT_RE.match(sentence) or _OWNED_BY_RE.search(sentence)
        if m is not None and (owner := _tidy_owner(m["who"])):
            return owner
    for label in (_OWNER_LABEL_RE, _APPROVER_LABEL_RE):
        for line in label_lines:
            m = label.match(line)
            if m is not None and (owner := _tidy_owner(_label_value(line[m.end() :]))):
                return owner
    for sentence in sentences:
        m = _APPROVER_PROSE_RE.search(sentence)
        if m is not None and (owner := _tidy_owner(_label_value(sentence[m.end() :]))):
            return owner
    return None


# ------------------------------------------------------------------------ main

_FIRST_LETTER_RE = re.compile(r"[^\W\d_]")


def _starts_like_label(line: str) -> bool:
    """Labels ("Owner: ...") start with a capital; a hard-wrapped sentence
    continuing onto a line like "approved by the school." does not."""
    m = _FIRST_LETTER_RE.search(line)
    return m is not None and m[0].isupper()


def extract_metadata(lines: Sequence[str], fallback_title: str) -> PolicyMetadata:
    """Everything a policy says about itself, from its plain text lines in order.

    ``fallback_title`` (usually from the file name) is used only when the
    document names no policy at all.
    """
    label_lines = [line.strip() for line in lines if _starts_like_label(line)]
    paragraphs = _paragraphs(lines)
    sentences = list(_sentences(paragraphs))
    versions = _extract_versions(lines)
    return PolicyMetadata(
        title=_extract_title(lines, fallback_title),
        versions=versions,
        adopted=_adopted(sentences, versions),
        last_reviewed=_last_reviewed(lines, paragraphs, sentences, versions),
        next_review=_next_review(sentences),
        contact=_extract_contact(label_lines, paragraphs, sentences),
        owner=_extract_owner(label_lines, sentences),
    )
