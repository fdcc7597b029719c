"""Question in, Reply out: the conversation every platform shares.

An answer quotes the best clause verbatim with its policy and section, notes a
policy past its review date, adds up to two "see also" clauses, and offers
Helpful / Not helpful. A message that may describe a safeguarding concern also
gets the "Report a concern to the DSL" button. When nothing matches, the reply
says so, names who to ask, records the gap and, where the school has told us
who that is on the platform, offers to pass the question on.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from bot import wording
from bot.messages import Action, Button, Click, FormRequest, Incoming, Quote, Reply
from bot.storage import Operations
from knowledge.search import MIN_EVIDENCE, Match, Searcher, SearchResult
from knowledge.store import KnowledgeBase

SEE_ALSO_MIN_COVERAGE = 0.6
SEE_ALSO_RELATIVE_SCORE = 0.6
"""A related clause must cover most of the question, speak to more than one of
its concepts, and score nearly as well as the answer itself."""
CONCERN_QUOTE_COVERAGE = 0.6
"""Under a possible safeguarding concern a clause is quoted only when it covers
this much of the message: then it is about the situation, not a stray word."""


def _report_button(value: str) -> Button:
    """The button that opens the confidential concern form; ``value`` is the
    question it came from, or "command" for /concern."""
    return Button(wording.report_label(), Action.REPORT_CONCERN, value, "danger")


_REPORT_COMMAND_RE = re.compile(
    r"^\W*(?:/?concern|report(?:ing)?(?: a)?(?: safeguarding)? concerns?|how do i report(?: a)?"
    r"(?: safeguarding)? concern)\W*$",
    re.IGNORECASE,
)
"""The "report a concern" command that Teams offers (and staff type anywhere)."""
_GREETING_RE = re.compile(
    r"^\W*(?:hi|hiya|hello|hey|morning|good (?:morning|afternoon)|help|\?|start|"
    r"what can you do|what do you do|who are you|how does this work)\W*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Delivery:
    """A message for someone other than the person who wrote in."""

    platform: str
    user_id: str
    reply: Reply


@dataclass(frozen=True)
class ClickOutcome:
    reply: Reply | None
    deliveries: tuple[Delivery, ...] = field(default=())
    form: FormRequest | None = None
    """Open this form for the person who clicked (needs the platform's trigger)."""


def quote_of(match: Match) -> Quote:
    return Quote(match.text, match.policy, match.section, match.number)


def _overdue(match: Match, today: date) -> str | None:
    if match.next_review and date.fromisoformat(match.next_review) < today:
        return wording.review_overdue(date.fromisoformat(match.next_review))
    return None


def see_also(result: SearchResult) -> list[Match]:
    best = result.best
    if best is None:
        return []
    return [
        m
        for m in result.matches[1:3]
        if m.coverage >= SEE_ALSO_MIN_COVERAGE
        and m.matched >= MIN_EVIDENCE
        and m.score >= SEE_ALSO_RELATIVE_SCORE * best.score
        and m.text != best.text
    ]


_MAX_QUESTION_ID = 2**62


def _question_id(value: str) -> int | None:
    """A button's question id, or None for anything a genuine button never
    carries (a forged value must read as an expired button, not a crash)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    number = int(value)
    return number if 0 < number < _MAX_QUESTION_ID else None


MAX_PREFILL_CHARS = 10_000
"""The most of a message kept for a concern form (the form's own limit)."""


class PrefillCache:
    """What a member of staff wrote, for a short while, so that pressing "Report a
    concern to the DSL" opens the form with their own words already in it.

    Memory only, never written anywhere: the text may describe a concern, and
    the database keeps such questions only as "withheld". Entries expire after
    ``ttl`` seconds, the oldest go first beyond ``max_entries``, and only the
    person who wrote a message gets it back.
    """

    def __init__(
        self,
        ttl: float = 3600.0,
        max_entries: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[int, tuple[float, str, str, str]] = OrderedDict()

    def __repr__(self) -> str:  # never the texts
        return f"PrefillCache({len(self._entries)} entries)"

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def put(self, question_id: int, platform: str, user_id: str, text: str) -> None:
        text = text[:MAX_PREFILL_CHARS]
        self._entries[question_id] = (self.clock() + self.ttl, platform, user_id, text)
        self._entries.move_to_end(question_id)
        self._expire()
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, question_id: int, platform: str, user_id: str) -> str:
        """The text, if it is still held and was written by this person; else ""."""
        self._expire()
        entry = self._entries.get(question_id)
        if entry is None or (entry[1], entry[2]) != (platform, user_id):
            return ""
        return entry[3]

    def _expire(self) -> None:
        now = self.clock()
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest[0] > now:
                break
            self._entries.popitem(last=False)


class Answerer:
    """The bot's side of a conversation, for one knowledge base."""

    def __init__(
        self,
        kb: KnowledgeBase,
        searcher: Searcher,
        operations: Operations | None,
        contacts: Callable[[str, str], str | None] | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        """``contacts(school, platform)`` gives the platform id of the person
        unanswered questions may be passed to, if the school named one."""
        self.kb = kb
        self.searcher = searcher
        self._operations = operations
        self.contacts = contacts or (lambda school, platform: None)
        self.today = today
        self.prefills = PrefillCache()

    @property
    def operations(self) -> Operations:
        """The records; an Answerer made only to compose replies (``guidebot
        ask``) has none, so it never creates or writes the bot's tables."""
        if self._operations is None:
            raise RuntimeError("this Answerer only composes replies; it keeps no records")
        return self._operations

    # questions -------------------------------------------------------------------

    async def answer(self, incoming: Incoming) -> Reply:
        text = incoming.text.strip()
        ephemeral = incoming.kind == "command"
        school = self.kb.school(incoming.school)
        if not text or _GREETING_RE.match(text):
            return Reply(wording.help_text_chat(school.name), ephemeral=ephemeral, kind="help")
        if _REPORT_COMMAND_RE.match(text):
            return Reply(
                wording.report_how(),
                buttons=(_report_button("command"),),
                ephemeral=ephemeral,
                kind="notice",
            )
        result = self.searcher.search(school.slug, text)
        best = result.best if result.answered else None
        question_id = self.operations.record_question(
            school.slug,
            incoming.platform,
            incoming.user_id,
            text,
            answered=best is not None,
            offer_report=result.offer_report,
            clause_id=best.clause_id if best else None,
            policy=best.policy if best else None,
            section=best.section if best else None,
        )
        if result.offer_report:
            self.prefills.put(question_id, incoming.platform, incoming.user_id, text)
        return self.compose(result, incoming.platform, question_id, ephemeral)

    def compose(
        self,
        result: SearchResult,
        platform: str,
        question_id: int | None = None,
        ephemeral: bool = False,
    ) -> Reply:
        """The reply to a search result. Without a question id (nothing was
        recorded, as with `guidebot ask`) there are no buttons and no gap noted."""
        best = result.best if result.answered else None
        if result.offer_report and (best is None or best.coverage < CONCERN_QUOTE_COVERAGE):
            return self._concern_first(platform, question_id, ephemeral)
        if best is not None:
            return self._answered(result, best, question_id, ephemeral)
        return self._not_found(result, platform, question_id, ephemeral)

    def _concern_first(self, platform: str, question_id: int | None, ephemeral: bool) -> Reply:
        """A possible disclosure gets the way to report it, and no loosely matched
        clause: "a girl told me her dad hits her" answered with a rule about
        complaining online would read as if the bot had not listened."""
        buttons: tuple[Button, ...] = ()
        lines = [wording.concern_offer()]
        if platform == "console":
            lines.append(wording.concern_console_hint())
        elif question_id is not None:
            buttons = (_report_button(str(question_id)),)
            lines.append(wording.concern_button_hint())
        return Reply(
            "\n".join(lines),
            notes=(wording.concern_offer(),),
            buttons=buttons,
            ephemeral=ephemeral,
            question_id=question_id,
            kind="concern",
        )

    def _answered(
        self, result: SearchResult, best: Match, question_id: int | None, ephemeral: bool
    ) -> Reply:
        notes: list[str] = []
        overdue = _overdue(best, self.today())
        if overdue:
            notes.append(overdue)
        if result.offer_report:
            notes.append(wording.concern_offer())
        related = tuple(quote_of(m) for m in see_also(result))
        buttons: list[Button] = []
        if question_id is not None:
            buttons += [
                Button(wording.helpful_label(), Action.HELPFUL, str(question_id), "primary"),
                Button(wording.not_helpful_label(), Action.NOT_HELPFUL, str(question_id)),
            ]
        if result.offer_report and question_id is not None:
            buttons.append(_report_button(str(question_id)))
        quote = quote_of(best)
        plain = [wording.answer_heading(best.policy, best.section, best.number), quote.text]
        plain.extend(notes)
        if related:
            plain.append(wording.see_also())
            plain.extend(f"{q.source}: {q.text}" for q in related)
        return Reply(
            "\n".join(plain),
            quote=quote,
            notes=tuple(notes),
            see_also=related,
            buttons=tuple(buttons),
            ephemeral=ephemeral,
            question_id=question_id,
        )

    def _not_found(
        self, result: SearchResult, platform: str, question_id: int | None, ephemeral: bool
    ) -> Reply:
        """Nothing answers it. A possible concern never gets here (compose sends
        it to _concern_first), so this is always an ordinary gap."""
        contact = self._policy_contact(result.school)
        buttons: list[Button] = []
        recorded = question_id is not None
        if recorded and self.contacts(result.school, platform):
            buttons.append(
                Button(wording.pass_on_label(contact), Action.PASS_TO_CONTACT, str(question_id))
            )
        return Reply(
            wording.not_found(contact, recorded),
            buttons=tuple(buttons),
            ephemeral=ephemeral,
            question_id=question_id,
            kind="not_found",
        )

    def _policy_contact(self, school: str) -> str | None:
        for policy in self.kb.policies(school):
            if policy.contact:
                return policy.contact
        return None

    # buttons ------------------------------------------------------------------------

    async def click(self, click: Click) -> ClickOutcome:
        question_id = _question_id(click.value)
        if click.action in (Action.HELPFUL, Action.NOT_HELPFUL):
            if question_id is None or self.operations.question(question_id) is None:
                return ClickOutcome(Reply(wording.button_expired(), ephemeral=True, kind="notice"))
            self.operations.record_feedback(question_id, click.action is Action.HELPFUL)
            return ClickOutcome(Reply(wording.thanks_for_feedback(), ephemeral=True, kind="notice"))
        if click.action is Action.PASS_TO_CONTACT:
            return self._pass_on(click, question_id)
        if click.action is Action.REPORT_CONCERN:
            # "home" / "command" buttons (and forged values) carry no question: an empty form.
            prefill = (
                self.prefills.get(question_id, click.platform, click.user_id)
                if question_id is not None
                else ""
            )
            return ClickOutcome(None, form=FormRequest("concern", prefill=prefill))
        return ClickOutcome(None)

    def pass_on_failed(self, delivery: Delivery, school: str) -> Reply:
        """The contact could not be reached: undo the 'passed on' mark so the
        asker can press the button again, and tell them so."""
        if delivery.reply.question_id is not None:
            self.operations.unmark_passed_on(delivery.reply.question_id)
        contact = self._policy_contact(school)
        return Reply(wording.pass_on_failed(contact), ephemeral=True, kind="notice")

    def _pass_on(self, click: Click, question_id: int | None) -> ClickOutcome:
        question = self.operations.question(question_id) if question_id is not None else None
        contact_id = self.contacts(click.school, click.platform)
        if (
            question is None
            or question.withheld  # never forward what may describe a concern
            or question.answered
            or contact_id is None
            or not self.operations.asked_by(question.id, click.platform, click.user_id)
        ):
            return ClickOutcome(Reply(wording.button_expired(), ephemeral=True, kind="notice"))
        contact = self._policy_contact(click.school)
        if not self.operations.mark_passed_on(question.id):
            return ClickOutcome(
                Reply(wording.already_passed_on(contact), ephemeral=True, kind="notice")
            )
        forwarded = Reply(
            wording.passed_on_to_contact(question.text),
            kind="notice",
            question_id=question.id,
            extra={"asked_by": click.user_id},
        )
        return ClickOutcome(
            Reply(wording.passed_on(contact), ephemeral=True, kind="notice"),
            (Delivery(click.platform, contact_id, forwarded),),
        )
