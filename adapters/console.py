"""The terminal chat: the demo, and a handy tool for IT admins.

Reads one question per line and answers through the same core as Slack and
Teams. Interactive sessions get a welcome; piped input is answered line by line
and the program exits at the end.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterable
from typing import TextIO

from bot import wording
from bot.answers import Answerer
from bot.messages import Incoming, Reply
from bot.storage import Operations
from knowledge.errors import UnknownSchoolError
from knowledge.search import MAX_QUESTION_CHARS, Searcher
from knowledge.store import KnowledgeBase

log = logging.getLogger(__name__)

WIDTH = 88
CONSOLE_USER = "console"


def _wrap(text: str, indent: str = "") -> str:
    return "\n".join(
        textwrap.fill(
            line, WIDTH, initial_indent=indent, subsequent_indent=indent + ("  " if indent else "")
        )
        if line.strip()
        else ""
        for line in text.split("\n")
    )


def render(reply: Reply) -> str:
    """A Reply as terminal text: the quote indented under its source."""
    if reply.quote is None:
        return _wrap(reply.text)
    quote = reply.quote
    parts = [
        wording.answer_heading(quote.policy, quote.section, quote.number),
        _wrap(quote.text, "    "),
    ]
    parts.extend(_wrap(note) for note in reply.notes)
    if reply.see_also:
        parts.append(wording.see_also())
        for related in reply.see_also:
            parts.append(
                "  " + wording.answer_heading(related.policy, related.section, related.number)
            )
            parts.append(_wrap(related.text, "      "))
    return "\n".join(parts)


async def run_console(
    kb: KnowledgeBase,
    searcher: Searcher,
    school: str,
    lines: Iterable[str],
    out: TextIO,
    interactive: bool,
) -> None:
    answerer = Answerer(kb, searcher, Operations(kb.db))
    current = kb.school(school)

    def say(text: str) -> None:
        out.write(text + "\n\n")
        out.flush()

    if interactive:
        say(wording.welcome(current.name))
    for raw in lines:
        line = raw.strip()
        if not line:
            if interactive:
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
        incoming = Incoming("console", current.slug, CONSOLE_USER, line, "console")
        try:
            say(render(await answerer.answer(incoming)))
        except Exception as exc:  # one bad message must not end the conversation
            # Never log the message itself: it may describe a safeguarding concern.
            log.error("answering a message failed: %s", type(exc).__name__)
            say(wording.something_went_wrong())
    if interactive:
        out.write(wording.goodbye() + "\n")
