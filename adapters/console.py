"""The terminal chat: the demo, and a handy tool for IT admins.

Reads one question per line and answers through the same core as Slack and
Teams. Interactive sessions get a welcome; piped input is answered line by line
and the program exits at the end.

``/concern`` reports a safeguarding concern, one question per line, through the
same ``Concerns`` service as Slack and Teams (sealed with the console demo's
key, ``guidebot.key`` next to the database unless GUIDEBOT_SECRET_KEY is set).
A school with no safeguarding roles configured routes to a pretend DSL,
``console:dsl``, and the console says so: the demo never reaches a real person,
and its alerts simply wait in the outbox.
"""

from __future__ import annotations

import dataclasses
import logging
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TextIO, TypeVar

import sqlite_utils

from bot import wording
from bot.answers import Answerer
from bot.concerns import (
    AboutRole,
    Category,
    ConcernForm,
    ConcernFormError,
    Concerns,
    NoRecipients,
    Person,
)
from bot.config import SafeguardingSettings
from bot.messages import Incoming, Reply
from bot.storage import Operations
from knowledge.errors import UnknownSchoolError
from knowledge.search import MAX_QUESTION_CHARS, Searcher
from knowledge.store import KnowledgeBase

log = logging.getLogger(__name__)
T = TypeVar("T")

WIDTH = 88
CONSOLE_USER = "console"
CONSOLE_REPORTER = Person("console", CONSOLE_USER)
DEMO_DSL = "console:dsl"
"""Where the console demo sends a concern when the school has no DSL roles configured."""


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


# --- /concern ---------------------------------------------------------------------------


def with_demo_dsl(
    settings: Callable[[str], SafeguardingSettings],
) -> Callable[[str], SafeguardingSettings]:
    """A school's safeguarding roles, or for a school with none, the demo DSL."""

    def for_school(slug: str) -> SafeguardingSettings:
        roles = settings(slug)
        if roles.dsl or roles.deputies or roles.headteacher or roles.chair_of_governors:
            return roles
        return dataclasses.replace(roles, dsl=(DEMO_DSL,))

    return for_school


def console_concerns(
    db: sqlite_utils.Database,
    folder: Path,
    settings: Callable[[str], SafeguardingSettings] = lambda slug: SafeguardingSettings(),
) -> Concerns:
    """The console's Concerns: the demo key (SecretBox.for_console_demo) and, for
    a school with no roles, the demo DSL. Its alerts wait in the outbox."""
    from bot.crypto import SecretBox
    from bot.outbox import Outbox

    box = SecretBox.for_console_demo(folder)
    return Concerns(db, box, with_demo_dsl(settings), Outbox(db, box))


class _Cancelled(Exception):
    """/cancel, or the input ended, in the middle of a report."""


_ABOUT_CHOICES: dict[str, Category] = {
    "1": "pupil",
    "pupil": "pupil",
    "2": "staff",
    "staff": "staff",
    "3": "adult",
    "adult": "adult",
}
_ROLE_CHOICES: dict[str, AboutRole] = {
    "1": "none",
    "neither": "none",
    "2": "headteacher",
    "headteacher": "headteacher",
    "3": "dsl",
    "dsl": "dsl",
}
_YES_NO = {"yes": True, "y": True, "no": False, "n": False}


def _concern_dialog(lines: Iterator[str], say: Callable[[str], None]) -> ConcernForm | None:
    """Ask the report's questions, one line each; None when the reporter says
    no at the end. Raises _Cancelled on /cancel or when the input ends."""

    def answer(question: str) -> str:
        say(question)
        for raw in lines:
            line = raw.strip()
            if line.lower() in ("/cancel", "/quit", "/exit"):
                raise _Cancelled
            return line
        raise _Cancelled

    def choose(question: str, choices: Mapping[str, T], hint: str) -> T:
        reply = answer(question).lower()
        while reply not in choices:
            reply = answer(wording.concern_ask_again(hint)).lower()
        return choices[reply]

    def required(question: str) -> str:
        reply = answer(question)
        while not reply:
            reply = answer(question)
        return reply

    about = choose(wording.concern_ask_about(), _ABOUT_CHOICES, "1, 2 or 3")
    role: AboutRole = "none"
    if about == "staff":
        role = choose(wording.concern_ask_role(), _ROLE_CHOICES, "1, 2 or 3")
    name = required(wording.concern_ask_name())
    what = required(wording.concern_ask_what())
    when_where = answer(wording.concern_ask_when_where())
    danger = choose(wording.concern_ask_danger(), _YES_NO, "yes or no")
    if danger:
        say(wording.concern_call_999_now())  # at once, before anything else
    actions = answer(wording.concern_ask_actions())
    if not choose(wording.concern_ask_confirm(), _YES_NO, "yes or no"):
        return None
    return ConcernForm(
        about=about,
        about_name=name,
        what=what,
        when_where=when_where,
        immediate_danger=danger,
        actions_taken=actions,
        about_role=role,
    )


def _report_concern(
    concerns: Concerns | None, school: str, lines: Iterator[str], say: Callable[[str], None]
) -> None:
    """/concern: ask, submit, and show the reference (or why nothing was sent)."""
    if concerns is None:
        say(wording.concern_console_unavailable())
        return
    say(wording.concern_console_intro())
    demo = DEMO_DSL in concerns.settings(school).dsl
    if demo:
        say(wording.concern_console_demo_routing(DEMO_DSL))
    try:
        form = _concern_dialog(lines, say)
    except _Cancelled:
        form = None
    if form is None:
        say(wording.concern_cancelled())
        return
    try:
        submitted = concerns.submit(school, CONSOLE_REPORTER, form)
    except ConcernFormError as exc:
        say(str(exc))  # names the question, never the answer
        say(wording.concern_not_saved())
        return
    except NoRecipients as exc:
        say(str(exc))
        return
    except Exception as exc:  # the report must never vanish silently
        # Never log the report, nor an exception's message, which might quote it.
        log.error("submitting a concern from the console failed: %s", type(exc).__name__)
        say(wording.concern_not_saved())
        return
    say(render(concerns.confirmation(submitted)))


# --- the chat -----------------------------------------------------------------------------


async def run_console(
    kb: KnowledgeBase,
    searcher: Searcher,
    school: str,
    lines: Iterable[str],
    out: TextIO,
    interactive: bool,
    concerns: Concerns | None = None,
) -> None:
    """Chat until the input ends or /quit. Without ``concerns``, /concern only
    tells the member of staff to speak to the DSL."""
    answerer = Answerer(kb, searcher, Operations(kb.db))
    current = kb.school(school)
    remaining = iter(lines)

    def say(text: str) -> None:
        out.write(text + "\n\n")
        out.flush()

    if interactive:
        say(wording.welcome(current.name))
    for raw in remaining:
        line = raw.strip()
        if not line:
            if interactive:
                say(wording.empty_question())
            continue
        command, _, argument = line.partition(" ")
        if command in ("/quit", "/exit"):
            break
        if command == "/help":
            say(wording.help_text() + "\n" + wording.concern_console_help())
            continue
        if command == "/concern":
            _report_concern(concerns, current.slug, remaining, say)
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
