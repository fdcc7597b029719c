"""Slack modals for safeguarding concerns, as pure functions.

Nothing here touches the network. The adapter (``adapters.slack.app``) opens
these views with ``views.open`` and answers their submissions with a
``response_action``; this module builds every view and reads every submission:

- ``concern_modal``: the report form (callback ``concern_submit``), optionally
  with the member's own message already in "what was seen, heard or said";
- ``read_concern``: a submission's answers as a ``ConcernForm``, or the errors
  to show beside the questions (``response_action: "errors"``);
- ``confirmation_view`` / ``failure_view``: what replaces the form once sent
  (the reference; for an urgent concern the 999 advice comes first) or when it
  could not be sent;
- ``report_view``: the decrypted report, for the DSL allowed to see it;
- ``text_modal`` / ``read_text``: the one-question forms for a DSL's note
  (``concern_note``) and for closing a concern (``concern_close``);
- ``notice_view``: a modal that only says something.

Private metadata carries the school and the Slack team, and for a note or a
closure the report's reference: never anything the reporter wrote. Report
content is shown as ``plain_text`` (no markup, no mentions, no links), so
nothing typed can notify anyone or disguise a link.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from adapters.slack.convert import escape
from adapters.slack.modal import (
    MAX_TEXT,
    Block,
    context,
    element,
    input_block,
    mrkdwn,
    option,
    plain,
    section,
    selected,
    state_values,
    typed,
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

CONCERN_CALLBACK = "concern_submit"
NOTE_CALLBACK = "concern_note"
CLOSE_CALLBACK = "concern_close"
CALLBACKS = (CONCERN_CALLBACK, NOTE_CALLBACK, CLOSE_CALLBACK)

ABOUT_DSL = "about_dsl"
TEXT = "text"
"""The one question of a note or closure form."""
FIELD_BLOCKS = {
    "about": ABOUT,
    "about_role": ABOUT_ROLE,
    "about_person": ABOUT_DSL,
    "about_name": ABOUT_NAME,
    "what": WHAT,
    "when_where": WHEN_WHERE,
    "immediate_danger": DANGER,
    "actions_taken": ACTIONS_TAKEN,
}
"""The question (block_id) for each ``ConcernForm`` field Concerns may object to."""

MAX_NOTE = 3000
"""Characters Slack lets staff type into each input (3000 is Slack's most)."""
MAX_TITLE = 24
MAX_PLACEHOLDER = 150
MAX_METADATA = 3000
MAX_VIEW_BLOCKS = 100

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")

View = dict[str, Any]


# --- metadata ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Metadata:
    """What a view carries between opening and submission: where, and which report."""

    school: str
    team: str
    ref: str = ""


def metadata(meta: Metadata) -> str:
    data = {"school": meta.school, "team": meta.team}
    if meta.ref:
        data["ref"] = meta.ref
    text = json.dumps(data, separators=(",", ":"))
    if len(text) > MAX_METADATA:
        raise ValueError("view metadata too long")
    return text


def read_metadata(view: Mapping[str, Any]) -> Metadata | None:
    raw = view.get("private_metadata")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    school, team, ref = data.get("school"), data.get("team"), data.get("ref", "")
    if not (isinstance(school, str) and school and isinstance(team, str) and team):
        return None
    return Metadata(school, team, ref if isinstance(ref, str) else "")


# --- small pieces -----------------------------------------------------------------------


def _plain_sections(text: str) -> list[Block]:
    """Someone's words as plain text sections, split at 3000 characters."""
    text = text.strip() or "-"
    pieces: list[Block] = []
    while text:
        piece, text = text[:MAX_TEXT], text[MAX_TEXT:]
        pieces.append({"type": "section", "text": {"type": "plain_text", "text": piece}})
    return pieces


def _text_input(
    *,
    multiline: bool,
    max_length: int,
    initial: str = "",
    placeholder: str | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": multiline,
        "max_length": max_length,
    }
    if initial.strip():
        element["initial_value"] = initial.strip()[:max_length]
    if placeholder:
        element["placeholder"] = plain(placeholder, MAX_PLACEHOLDER)
    return element


def _modal(
    callback: str | None,
    title: str,
    blocks: list[Block],
    *,
    submit: str | None = None,
    close: str | None = None,
    meta: Metadata | None = None,
) -> View:
    view: View = {
        "type": "modal",
        "title": plain(title, MAX_TITLE),
        "blocks": blocks[:MAX_VIEW_BLOCKS],
        "close": plain(close or wording.concern_close_button(), MAX_TITLE),
    }
    if callback:
        view["callback_id"] = callback
    if submit:
        view["submit"] = plain(submit, MAX_TITLE)
    if meta is not None:
        view["private_metadata"] = metadata(meta)
    return view


# --- the report form --------------------------------------------------------------------


def concern_modal(meta: Metadata, prefill: str = "") -> View:
    """The report form. ``prefill`` (the member's own message, from the button
    under an answer) starts "what was seen, heard or said"."""
    blocks: list[Block] = [
        section(escape(wording.concern_form_intro())),
        input_block(
            ABOUT,
            wording.concern_about_label(),
            {
                "type": "radio_buttons",
                "options": [
                    option("pupil", wording.concern_about_pupil()),
                    option("staff", wording.concern_about_staff()),
                    option("adult", wording.concern_about_adult()),
                ],
            },
        ),
        input_block(
            ABOUT_ROLE,
            wording.concern_role_label(),
            {
                "type": "static_select",
                "options": [
                    option("none", wording.concern_role_none()),
                    option("headteacher", wording.concern_role_headteacher()),
                    option("dsl", wording.concern_role_dsl()),
                ],
            },
            optional=True,
            hint=wording.concern_role_hint(),
        ),
        input_block(
            ABOUT_DSL,
            wording.concern_which_dsl_label(),
            {"type": "users_select"},
            optional=True,
            hint=wording.concern_which_dsl_hint(),
        ),
        input_block(
            ABOUT_NAME,
            wording.concern_name_label(),
            _text_input(multiline=False, max_length=MAX_NAME),
        ),
        input_block(
            WHAT,
            wording.concern_what_label(),
            _text_input(multiline=True, max_length=MAX_WHAT, initial=prefill),
            hint=wording.concern_what_hint(),
        ),
        input_block(
            WHEN_WHERE,
            wording.concern_when_label(),
            _text_input(
                multiline=False,
                max_length=MAX_WHEN_WHERE,
                placeholder=wording.concern_when_placeholder(),
            ),
        ),
        input_block(
            DANGER,
            wording.concern_danger_label(),
            {
                "type": "radio_buttons",
                "options": [
                    option("yes", wording.concern_yes()),
                    option("no", wording.concern_no()),
                ],
            },
        ),
        input_block(
            ACTIONS_TAKEN,
            wording.concern_actions_label(),
            _text_input(multiline=True, max_length=MAX_ACTIONS_TAKEN),
            optional=True,
            hint=wording.concern_actions_hint(),
        ),
    ]
    return _modal(
        CONCERN_CALLBACK,
        wording.concern_form_title(),
        blocks,
        submit=wording.concern_form_submit(),
        close=wording.concern_form_cancel(),
        meta=meta,
    )


def read_concern(view: Mapping[str, Any]) -> tuple[ConcernForm | None, dict[str, str]]:
    """A submitted report form: the ``ConcernForm``, or None and an error for
    each question (by block_id) that needs another look (see bot/concern_form.py)."""
    values = state_values(view)
    answers = {block_id: selected(values, block_id) for block_id in (ABOUT, ABOUT_ROLE, DANGER)}
    answers |= {
        block_id: typed(values, block_id)
        for block_id in (ABOUT_NAME, WHAT, WHEN_WHERE, ACTIONS_TAKEN)
    }
    chosen = element(values, ABOUT_DSL).get("selected_user")
    about_person = (
        Person("slack", chosen).key
        if isinstance(chosen, str) and _SLACK_USER.match(chosen)
        else None
    )
    return read_answers(answers, about_person)


# --- after sending ----------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def _reply_sections(reply: Reply) -> list[Block]:
    return [section(escape(line)) for line in _lines(reply.text)]


def _danger_first(text: str | None = None) -> Block:
    advice = text or wording.concern_danger_first()
    return {"type": "section", "text": mrkdwn(f":rotating_light: *{escape(advice)}*")}


def urgent_split(text: str) -> tuple[str, list[str]]:
    """For an urgent confirmation: the 999 advice (Concerns puts it first; if it
    did not, ours), and the lines after it."""
    lines = _lines(text)
    if lines and "999" in lines[0]:
        return lines[0], lines[1:]
    return wording.concern_danger_first(), lines


def confirmation_view(reply: Reply, urgent: bool) -> View:
    """What replaces the form once the concern is stored: for an urgent concern the
    999 advice first, then the confirmation (with its reference)."""
    if not urgent:
        return _modal(None, wording.concern_sent_title(), _reply_sections(reply))
    advice, rest = urgent_split(reply.text)
    blocks = [_danger_first(advice), *(section(escape(line)) for line in rest)]
    return _modal(None, wording.concern_sent_title(), blocks)


def failure_view() -> View:
    """The form could not be sent: say so, and send them to the DSL in person."""
    blocks = [_danger_first(), section(escape(wording.concern_not_sent()))]
    return _modal(None, wording.concern_form_title(), blocks)


def notice_view(text: str, title: str | None = None, *, urgent: bool = False) -> View:
    blocks = [_danger_first()] if urgent else []
    blocks += [section(escape(line)) for line in _lines(text)]
    return _modal(None, title or wording.concern_done_title(), blocks)


def reply_view(reply: Reply, title: str | None = None) -> View:
    return _modal(None, title or wording.concern_done_title(), _reply_sections(reply))


# --- the report, for the DSL ------------------------------------------------------------


def who(person: Person) -> str:
    """A person as mrkdwn: a mention for a Slack user, words for anyone else."""
    if person.platform == "slack" and _SLACK_USER.match(person.id):
        return f"<@{person.id}>"
    return escape(wording.concern_colleague_elsewhere(person.platform))


def _field(label: str, value: str) -> list[Block]:
    return [section(f"*{escape(label)}*"), *_plain_sections(value)]


def _about(form: ConcernForm) -> str:
    labels = {
        "pupil": wording.concern_about_pupil(),
        "staff": wording.concern_about_staff(),
        "adult": wording.concern_about_adult(),
    }
    return labels.get(form.about, form.about)


def report_view(view: ConcernView) -> View:
    """The decrypted report: the facts the DSL needs first, then the reporter's
    words as plain text, then notes and outcome. At most 100 blocks: the
    oldest notes give way first."""
    form = view.form
    facts = [
        f"*{escape(wording.concern_ref_label())}:* {escape(view.ref)}",
        f"*{escape(wording.concern_reported_label())}:* {escape(view.created_at)}",
        f"*{escape(wording.concern_reported_by_label())}:* {who(view.reporter)}",
        f"*{escape(wording.concern_state_label())}:* {escape(wording.concern_state(view.state))}",
    ]
    if view.acknowledged_by is not None:
        facts.append(
            f"*{escape(wording.concern_acknowledged_by_label())}:* {who(view.acknowledged_by)}"
            + (f" ({escape(view.acknowledged_at)})" if view.acknowledged_at else "")
        )
    if view.recipients:
        facts.append(
            f"*{escape(wording.concern_sent_to_label())}:* "
            + ", ".join(who(p) for p in view.recipients)
        )
    head: list[Block] = []
    if view.urgent or form.immediate_danger:
        head.append(section(f":rotating_light: *{escape(wording.concern_urgent_flag())}*"))
    head.append(section("\n".join(facts)))
    about = _about(form)
    role_line = wording.concern_about_role_line(form.about_role)
    if role_line:
        about = f"{about}. {role_line}"
    body: list[Block] = [
        {"type": "divider"},
        *_field(wording.concern_about_label(), about),
        *_field(wording.concern_name_label(), form.about_name),
        *_field(wording.concern_what_label(), form.what),
        *_field(wording.concern_when_label(), form.when_where),
        *_field(
            wording.concern_danger_label(),
            wording.concern_yes() if form.immediate_danger else wording.concern_no(),
        ),
        *_field(wording.concern_actions_label(), form.actions_taken),
    ]
    tail: list[Block] = []
    if view.outcome is not None:
        closed = f" ({view.closed_at})" if view.closed_at else ""
        tail += _field(wording.concern_outcome_label() + closed, view.outcome)
    notes = _notes(view, MAX_VIEW_BLOCKS - len(head) - len(body) - len(tail))
    return _modal(None, wording.concern_report_title(), [*head, *body, *notes, *tail])


def _notes(view: ConcernView, room: int) -> list[Block]:
    if not view.notes or room < 3:
        return []
    shown: list[list[Block]] = []
    used = 2  # the divider and heading
    for note in reversed(view.notes):  # newest first into the room there is
        by = Person.parse(note.by) if ":" in note.by else None
        heading = f"{escape(note.at)}, {who(by) if by else escape(note.by)}"
        item = [context(heading), *_plain_sections(note.text)]
        if used + len(item) + 1 > room:  # +1: the "earlier notes" line
            break
        shown.insert(0, item)
        used += len(item)
    left = len(view.notes) - len(shown)
    blocks: list[Block] = [
        {"type": "divider"},
        section(f"*{escape(wording.concern_notes_label())}*"),
    ]
    if left:
        blocks.append(context(escape(wording.concern_earlier_notes(left))))
    for item in shown:
        blocks += item
    return blocks


# --- a DSL's note, or closing a concern ---------------------------------------------------


TextKind = Literal["concern_note", "concern_close"]


def text_modal(kind: TextKind, meta: Metadata) -> View:
    """The one-question form for a note (``concern_note``) or an outcome (``concern_close``)."""
    title, label, hint, submit = text_form_words(closing=kind != NOTE_CALLBACK)
    blocks = [
        context(f"*{escape(wording.concern_ref_label())}:* {escape(meta.ref)}"),
        input_block(TEXT, label, _text_input(multiline=True, max_length=MAX_NOTE), hint=hint),
    ]
    return _modal(
        kind,
        title,
        blocks,
        submit=submit,
        close=wording.concern_form_cancel(),
        meta=meta,
    )


def read_text(view: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    text = typed(state_values(view), TEXT)
    if not text:
        return None, {TEXT: wording.concern_missing_text()}
    if len(text) > MAX_NOTE:
        return None, {TEXT: wording.concern_too_long(MAX_NOTE)}
    return text, {}


def text_kind(callback: str) -> TextKind | None:
    if callback in (NOTE_CALLBACK, CLOSE_CALLBACK):
        return cast(TextKind, callback)
    return None
