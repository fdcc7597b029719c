"""The terminal chat: the demo, and a handy tool for IT admins.

Reads one question per line. Interactive sessions get a prompt and a welcome;
piped input is answered line by line and the program exits at the end.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterable
from datetime import date
from typing import TextIO

from bot import wording
from bot.storage import Operations
from knowledge.errors import UnknownSchoolError
from knowledge.search import MAX_QUESTION_CHARS, MIN_EVIDENCE, Match, Searcher, SearchResult
from knowledge.store import KnowledgeBase

log = logging.getLogger(__name__)

SEE_ALSO_MIN_COVERAGE = 0.6
SEE_ALSO_RELATIVE_SCORE = 0.6
"""A related clause must cover this much of the question, speak to more than one
of its concepts, and score nearly as well as the answer itself."""
WIDTH = 88


def _quote(text: str, indent: str = "    ") -> str:
    lines = []
    for paragraph in text.split("\n"):
        lines.append(
            textwrap.fill(paragraph, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")
        )
    return "\n".join(lines)


def _overdue(match: Match, today: date) -> str | None:
    if match.next_review and date.fromisoformat(match.next_review) < today:
        return wording.review_overdue(date.fromisoformat(match.next_review))
    return None


def render(
    result: SearchResult,
    contact: str | None,
    today: date | None = None,
    gap_recorded: bool = False,
) -> str:
    """The console rendering of one answer."""
    today = today or date.today()
    parts: list[str] = []
    best = result.best
    if result.answered and best is not None:
        parts.append(wording.answer_heading(best.policy, best.section, best.number))
        parts.append(_quote(best.text))
        overdue = _overdue(best, today)
        if overdue:
            parts.append(textwrap.fill(overdue, WIDTH))
        related = [
            m
            for m in result.matches[1:3]
            if m.coverage >= SEE_ALSO_MIN_COVERAGE
            and m.matched >= MIN_EVIDENCE
            and m.score >= SEE_ALSO_RELATIVE_SCORE * best.score
            and m.text != best.text
        ]
        if related:
            parts.append(wording.see_also())
            for match in related:
                parts.append(
                    "  " + wording.answer_heading(match.policy, match.section, match.number)
                )
                parts.append(_quote(match.text, "      "))
    else:
        parts.append(textwrap.fill(wording.not_found(contact, gap_recorded), WIDTH))
    if result.offer_report:
        parts.append(textwrap.fill(wording.concern_offer(), WIDTH))
    return "\n".join(parts)


def school_contact(kb: KnowledgeBase, slug: str) -> str | None:
    for policy in kb.policies(slug):
        if policy.contact:
            return policy.contact
    return None


def _answer(
    kb: KnowledgeBase, searcher: Searcher, operations: Operations, school: str, line: str
) -> str:
    result = searcher.search(school, line)
    recorded = not result.answered and operations.record_gap(school, line, result.offer_report)
    return render(result, school_contact(kb, school), gap_recorded=recorded)


def run_console(
    kb: KnowledgeBase,
    searcher: Searcher,
    school: str,
    lines: Iterable[str],
    out: TextIO,
    interactive: bool,
) -> None:
    operations = Operations(kb.db)
    current = kb.school(school)

    def say(text: str) -> None:
        out.write(text + "\n\n")
        out.flush()

    if interactive:
        say(wording.welcome(current.name))
    for raw in lines:
        line = raw.strip()
        if not line:
            if not interactive:
                continue
            say(wording.empty_question())
            continue
        command, _, argument = line.partition(" ")
        if command in ("/quit", "/exit"):
            break
        if command == "/help":
            say(wording.help_text())
            continue
        if command == "/schools":
            say("\n".join(f"{s.slug}: {s.name}" for s in kb.schools()))
            continue
        if command == "/school":
            try:
                current = kb.school(argument.strip())
            except UnknownSchoolError:
                say(wording.unknown_school(argument.strip(), [s.slug for s in kb.schools()]))
                continue
            say(wording.school_switched(current.name))
            continue
        if len(line) > MAX_QUESTION_CHARS:
            say(wording.question_trimmed(MAX_QUESTION_CHARS))
        try:
            say(_answer(kb, searcher, operations, current.slug, line))
        except Exception as exc:  # one bad message must not end the conversation
            # Never log the message itself: it may describe a safeguarding concern.
            log.error("answering a message failed: %s", type(exc).__name__)
            say(wording.something_went_wrong())
    if interactive:
        out.write(wording.goodbye() + "\n")
