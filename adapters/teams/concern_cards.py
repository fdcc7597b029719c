"""Adaptive Cards for safeguarding concerns, as pure functions.

Teams has no modal without a task module, so the concern form is a card sent
into the member's 1:1 chat with the bot: ``Input.ChoiceSet`` and ``Input.Text``
fields and one ``Action.Submit``. Teams sends a submission back as a message
activity whose ``value`` is the button's data merged with the inputs::

    {"action": "concern_submit", "form": "<one-time id>", "about": "pupil", ...}

This module builds every card and reads every submission:

- ``concern_form`` / ``read_concern``: the report form (optionally starting with
  the member's own message, or re-sent with their answers and what to fix);
- ``confirmation_card`` / ``failure_card``: after sending (for an urgent
  concern the 999 advice comes first) or when it could not be sent;
- ``report_cards``: the decrypted report for the DSL allowed to see it (more
  than one card only when a very long report would pass Teams' size limit);
- ``text_form`` / ``read_text``: the one-question cards for a DSL's note and
  for closing a concern;
- ``notice_card``: a card that only says something.

Everything anyone typed is shown through ``convert.neutralise`` (no Markdown,
no mentions, no links behind labels); an input's ``value`` is plain text, which
Teams never renders as Markdown. Every card is version 1.5 and under
``convert.MAX_CARD_BYTES``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from adapters.teams.card_parts import (
    Element,
    answer,
    problems_box,
    submit_action,
    text_block,
    text_input,
)
from adapters.teams.convert import (
    ELLIPSIS,
    MAX_CARD_BYTES,
    adaptive_card,
    card_size,
    escape,
    neutralise,
)
from bot import wording
from bot.concern_form import (
    ABOUT,
    ABOUT_NAME,
    ABOUT_ROLE,
    ACTIONS_TAKEN,
    DANGER,
    MAX_ACTIONS_TAKEN,
    MAX_NAME,
    MAX_WHAT,
    MAX_WHEN_WHERE,
    WHAT,
    WHEN_WHERE,
    read_answers,
    text_form_words,
)
from bot.concerns import ConcernForm, ConcernView, Person
from bot.messages import Reply

CONCERN_SUBMIT = "concern_submit"
NOTE_SUBMIT = "concern_note_submit"
CLOSE_SUBMIT = "concern_close_submit"
SUBMITS = (CONCERN_SUBMIT, NOTE_SUBMIT, CLOSE_SUBMIT)

TEXT = "text"
FORM = "form"
"""The one-time id of a form card, so a second press of its button is not a second report."""
REF = "ref"
FIELD_INPUTS = {
    "about": ABOUT,
    "about_role": ABOUT_ROLE,
    "about_person": ABOUT_ROLE,
    "about_name": ABOUT_NAME,
    "what": WHAT,
    "when_where": WHEN_WHERE,
    "immediate_danger": DANGER,
    "actions_taken": ACTIONS_TAKEN,
}
"""The input for each ``ConcernForm`` field Concerns may object to."""

MAX_NOTE = 3000
MAX_REF = 64
MAX_FORM_ID = 64
MAX_TEXT_BLOCK = 2000
"""Characters of someone's words in one TextBlock, before escaping."""

Card = dict[str, Any]
TextKind = Literal["concern_note_submit", "concern_close_submit"]


# --- small pieces -----------------------------------------------------------------------


def _words(text: str) -> list[Element]:
    """Someone's words as neutralised TextBlocks, split at about 2000 characters."""
    text = text.strip() or "-"
    pieces = [text[i : i + MAX_TEXT_BLOCK] for i in range(0, len(text), MAX_TEXT_BLOCK)]
    return [text_block(neutralise(piece) or escape("-")) for piece in pieces]


def _danger_first(text: str | None = None) -> Element:
    advice = text or wording.concern_danger_first()
    return {
        "type": "Container",
        "style": "attention",
        "items": [text_block(escape(advice), weight="bolder", size="medium")],
    }


def _label(text: str) -> Element:
    return text_block(escape(text), weight="bolder", spacing="medium")


def _choice(value: str, title: str) -> dict[str, str]:
    return {"title": title, "value": value}


# --- the report form --------------------------------------------------------------------


def _choice_set(
    ident: str,
    label: str,
    choices: Sequence[dict[str, str]],
    value: str,
    *,
    required: bool,
    expanded: bool,
) -> Element:
    element: Element = {
        "type": "Input.ChoiceSet",
        "id": ident,
        "label": label,
        "choices": list(choices),
        "style": "expanded" if expanded else "compact",
        "isRequired": required,
        "wrap": True,
    }
    if required:
        element["errorMessage"] = wording.concern_missing_choice()
    if value:
        element["value"] = value
    return element


def concern_form(
    form_id: str,
    *,
    prefill: str = "",
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
) -> Card:
    """The report form. ``prefill`` starts "what was seen, heard or said" with the
    member's own message; ``values`` and ``errors`` re-send a submission that
    needs another look, with what to fix above the questions."""
    given: Mapping[str, Any] = values or {}

    def value(key: str) -> str:
        return answer(given, key)

    body: list[Element] = [
        text_block(escape(wording.concern_form_title()), size="medium", weight="bolder"),
        text_block(escape(wording.concern_form_intro())),
    ]
    if errors:
        body.append(problems_box(wording.concern_form_problems(), _labels(), errors))
    body += [
        _choice_set(
            ABOUT,
            wording.concern_about_label(),
            [
                _choice("pupil", wording.concern_about_pupil()),
                _choice("staff", wording.concern_about_staff()),
                _choice("adult", wording.concern_about_adult()),
            ],
            value(ABOUT),
            required=True,
            expanded=True,
        ),
        _choice_set(
            ABOUT_ROLE,
            wording.concern_role_label(),
            [
                _choice("none", wording.concern_role_none()),
                _choice("headteacher", wording.concern_role_headteacher()),
                _choice("dsl", wording.concern_role_dsl()),
            ],
            value(ABOUT_ROLE) or "none",
            required=False,
            expanded=False,
        ),
        text_block(
            escape(wording.concern_role_hint()), isSubtle=True, size="small", spacing="none"
        ),
        text_input(
            ABOUT_NAME,
            wording.concern_name_label(),
            value(ABOUT_NAME),
            max_length=MAX_NAME,
            multiline=False,
            required_message=wording.concern_missing_text(),
        ),
        text_input(
            WHAT,
            wording.concern_what_label(),
            value(WHAT) or prefill,
            max_length=MAX_WHAT,
            multiline=True,
            required_message=wording.concern_missing_text(),
            placeholder=wording.concern_what_hint(),
        ),
        text_input(
            WHEN_WHERE,
            wording.concern_when_label(),
            value(WHEN_WHERE),
            max_length=MAX_WHEN_WHERE,
            multiline=False,
            required_message=wording.concern_missing_text(),
            placeholder=wording.concern_when_placeholder(),
        ),
        _choice_set(
            DANGER,
            wording.concern_danger_label(),
            [_choice("yes", wording.concern_yes()), _choice("no", wording.concern_no())],
            value(DANGER),
            required=True,
            expanded=True,
        ),
        text_input(
            ACTIONS_TAKEN,
            wording.concern_actions_label(),
            value(ACTIONS_TAKEN),
            max_length=MAX_ACTIONS_TAKEN,
            multiline=True,
            placeholder=wording.concern_actions_hint(),
        ),
    ]
    send = submit_action(
        wording.concern_card_send(), {"action": CONCERN_SUBMIT, FORM: form_id}, "positive"
    )
    card = adaptive_card(body, [send], wording.concern_form_title())
    if card_size(card) > MAX_CARD_BYTES and (values or prefill):
        # Only a re-sent form full of long non-ASCII text gets here: the answers
        # are still in the card they typed into, so send the questions alone.
        return concern_form(form_id, errors=errors)
    return card


def _labels() -> dict[str, str]:
    return {
        ABOUT: wording.concern_about_label(),
        ABOUT_ROLE: wording.concern_role_label(),
        ABOUT_NAME: wording.concern_name_label(),
        WHAT: wording.concern_what_label(),
        WHEN_WHERE: wording.concern_when_label(),
        DANGER: wording.concern_danger_label(),
        ACTIONS_TAKEN: wording.concern_actions_label(),
        TEXT: wording.concern_note_label(),
    }


def read_concern(data: Mapping[str, Any]) -> tuple[ConcernForm | None, dict[str, str]]:
    """A submitted form: the ``ConcernForm``, or None and an error for each
    question (by input id) that needs another look (see bot/concern_form.py)."""
    keys = (ABOUT, ABOUT_ROLE, ABOUT_NAME, WHAT, WHEN_WHERE, DANGER, ACTIONS_TAKEN)
    return read_answers({key: answer(data, key) for key in keys})


# --- after sending ----------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def confirmation_card(reply: Reply, urgent: bool) -> Card:
    """The concern is stored: for an urgent one the 999 advice first (Concerns
    puts it first in the confirmation; if it did not, ours), then the
    confirmation with its reference."""
    lines = _lines(reply.text)
    if not urgent:
        return adaptive_card(
            [text_block(escape(line)) for line in lines], summary=_summary(reply.text)
        )
    advice = lines.pop(0) if lines and "999" in lines[0] else wording.concern_danger_first()
    body = [_danger_first(advice), *(text_block(escape(line)) for line in lines)]
    return adaptive_card(body, summary=_summary(advice))


def failure_card() -> Card:
    """It could not be sent: say so, and send them to the DSL in person now."""
    body = [_danger_first(), text_block(escape(wording.concern_not_sent()))]
    return adaptive_card(body, summary=_summary(wording.concern_not_sent()))


def notice_card(text: str) -> Card:
    body = [text_block(escape(line)) for line in _lines(text)]
    return adaptive_card(body, summary=_summary(text))


def _summary(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:199].rstrip() + ELLIPSIS


# --- the report, for the DSL ------------------------------------------------------------


def who(person: Person) -> str:
    """A person in words: a Teams card cannot mention someone from their id alone."""
    if person.platform == "teams":
        return wording.teams_colleague(person.id)
    return wording.concern_colleague_elsewhere(person.platform)


def _about(form: ConcernForm) -> str:
    labels = {
        "pupil": wording.concern_about_pupil(),
        "staff": wording.concern_about_staff(),
        "adult": wording.concern_about_adult(),
    }
    about = labels.get(form.about, form.about)
    role = wording.concern_about_role_line(form.about_role)
    return f"{about}. {role}" if role else about


def _fact(title: str, value: str) -> dict[str, str]:
    return {"title": escape(title), "value": neutralise(value) or escape("-")}


def _field(label: str, value: str) -> list[Element]:
    return [_label(label), *_words(value)]


def report_cards(view: ConcernView) -> list[Card]:
    """The decrypted report as one card, or, for a report too long for one, as
    several in order (each under Teams' size limit). Notes newest last."""
    form = view.form
    facts = [
        _fact(wording.concern_ref_label(), view.ref),
        _fact(wording.concern_reported_label(), view.created_at),
        _fact(wording.concern_reported_by_label(), who(view.reporter)),
        _fact(wording.concern_state_label(), wording.concern_state(view.state)),
    ]
    if view.acknowledged_by is not None:
        when = f" ({view.acknowledged_at})" if view.acknowledged_at else ""
        facts.append(
            _fact(wording.concern_acknowledged_by_label(), who(view.acknowledged_by) + when)
        )
    groups: list[list[Element]] = []
    head: list[Element] = [
        text_block(escape(wording.concern_report_title()), size="medium", weight="bolder")
    ]
    if view.urgent or form.immediate_danger:
        head.append(
            {
                "type": "Container",
                "style": "attention",
                "items": [text_block(escape(wording.concern_urgent_flag()), weight="bolder")],
            }
        )
    head.append({"type": "FactSet", "facts": facts})
    groups.append(head)
    groups += [
        _field(wording.concern_about_label(), _about(form)),
        _field(wording.concern_name_label(), form.about_name),
        _field(wording.concern_what_label(), form.what),
        _field(wording.concern_when_label(), form.when_where),
        _field(
            wording.concern_danger_label(),
            wording.concern_yes() if form.immediate_danger else wording.concern_no(),
        ),
        _field(wording.concern_actions_label(), form.actions_taken),
    ]
    if view.notes:
        groups.append([_label(wording.concern_notes_label())])
        for note in view.notes:
            by = _person_or_none(note.by)
            heading = f"{note.at}, {who(by) if by else note.by}"
            groups.append(
                [text_block(neutralise(heading), isSubtle=True, size="small"), *_words(note.text)]
            )
    if view.outcome is not None:
        closed = f" ({view.closed_at})" if view.closed_at else ""
        groups.append(_field(wording.concern_outcome_label() + closed, view.outcome))
    return _pack(groups, f"{wording.concern_report_title()} {view.ref}")


def _person_or_none(key: str) -> Person | None:
    try:
        return Person.parse(key)
    except Exception:
        return None


def _pack(groups: list[list[Element]], summary: str) -> list[Card]:
    """Groups of elements into as few cards as fit, in order; a group never split
    unless it alone is too big, then one element per card."""
    cards: list[Card] = []
    body: list[Element] = []
    for group in groups:
        if body and card_size(adaptive_card([*body, *group], summary=summary)) > MAX_CARD_BYTES:
            cards.append(adaptive_card(body, summary=summary))
            body = []
        if card_size(adaptive_card([*body, *group], summary=summary)) <= MAX_CARD_BYTES:
            body += group
            continue
        for element in group:  # a group too big for a card of its own
            if (
                body
                and card_size(adaptive_card([*body, element], summary=summary)) > MAX_CARD_BYTES
            ):
                cards.append(adaptive_card(body, summary=summary))
                body = []
            body.append(element)
    if body:
        cards.append(adaptive_card(body, summary=summary))
    return cards


# --- a DSL's note, or closing a concern ---------------------------------------------------


def text_form(kind: TextKind, ref: str, errors: Mapping[str, str] | None = None) -> Card:
    """The one-question card for a note (``concern_note_submit``) or an outcome
    (``concern_close_submit``) on the report ``ref``."""
    title, label, hint, submit = text_form_words(closing=kind != NOTE_SUBMIT)
    body: list[Element] = [
        text_block(escape(title), size="medium", weight="bolder"),
        text_block(escape(f"{wording.concern_ref_label()}: {ref}"), isSubtle=True),
    ]
    if errors:
        body.append(
            {
                "type": "Container",
                "style": "attention",
                "items": [text_block(escape(message)) for message in errors.values()],
            }
        )
    body.append(
        text_input(
            TEXT,
            label,
            "",
            max_length=MAX_NOTE,
            multiline=True,
            required_message=wording.concern_missing_text(),
            placeholder=hint,
        )
    )
    send = submit_action(submit, {"action": kind, REF: ref})
    return adaptive_card(body, [send], f"{title}: {ref}")


def read_text(data: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    text = answer(data, TEXT)
    if not text:
        return None, {TEXT: wording.concern_missing_text()}
    if len(text) > MAX_NOTE:
        return None, {TEXT: wording.concern_too_long(MAX_NOTE)}
    return text, {}


def text_kind(action: object) -> TextKind | None:
    if action == NOTE_SUBMIT:
        return "concern_note_submit"
    if action == CLOSE_SUBMIT:
        return "concern_close_submit"
    return None
