"""The report form's questions and how its answers are checked, for every platform.

A Slack modal, a Teams card and the console ask the same questions; each
adapter reads its platform's payload into a plain mapping of answers (keyed
by the ids below) and ``read_answers`` turns it into a ConcernForm, or into a
message for each answer that needs another look.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot import wording
from bot.concerns import AboutRole, Category, ConcernForm

ABOUT = "about"
ABOUT_ROLE = "about_role"
ABOUT_NAME = "about_name"
WHAT = "what"
WHEN_WHERE = "when_where"
DANGER = "danger"
ACTIONS_TAKEN = "actions_taken"

MAX_NAME = 200
MAX_WHEN_WHERE = 2000
MAX_WHAT = 3000
"""Slack's longest text input; Teams asks no more, so both forms agree."""
MAX_ACTIONS_TAKEN = 3000

ABOUT_CHOICES: dict[str, Category] = {"pupil": "pupil", "staff": "staff", "adult": "adult"}
ROLE_CHOICES: dict[str, AboutRole] = {"none": "none", "headteacher": "headteacher", "dsl": "dsl"}


def read_answers(
    answers: Mapping[str, str], about_person: str | None = None
) -> tuple[ConcernForm | None, dict[str, str]]:
    """The form, or None and an error message for each answer (by id) that needs
    another look. Answers are stripped strings ("" when not given);
    ``about_person`` (a person key) counts only for a report about a DSL."""
    errors: dict[str, str] = {}
    about = ABOUT_CHOICES.get(answers.get(ABOUT, ""))
    if about is None:
        errors[ABOUT] = wording.concern_missing_choice()
    role = ROLE_CHOICES.get(answers.get(ABOUT_ROLE, ""), "none")
    if role != "none" and about is not None and about != "staff":
        errors[ABOUT_ROLE] = wording.concern_role_needs_staff()
    texts = {
        ABOUT_NAME: (answers.get(ABOUT_NAME, ""), MAX_NAME, True),
        WHAT: (answers.get(WHAT, ""), MAX_WHAT, True),
        WHEN_WHERE: (answers.get(WHEN_WHERE, ""), MAX_WHEN_WHERE, True),
        ACTIONS_TAKEN: (answers.get(ACTIONS_TAKEN, ""), MAX_ACTIONS_TAKEN, False),
    }
    for key, (text, limit, required) in texts.items():
        if required and not text:
            errors[key] = wording.concern_missing_text()
        elif len(text) > limit:
            errors[key] = wording.concern_too_long(limit)
    danger = answers.get(DANGER, "")
    if danger not in ("yes", "no"):
        errors[DANGER] = wording.concern_missing_choice()
    if errors or about is None:
        return None, errors
    form = ConcernForm(
        about=about,
        about_name=texts[ABOUT_NAME][0],
        what=texts[WHAT][0],
        when_where=texts[WHEN_WHERE][0],
        immediate_danger=danger == "yes",
        actions_taken=texts[ACTIONS_TAKEN][0],
        about_role=role if about == "staff" else "none",
        about_person=about_person if role == "dsl" else None,
    )
    return form, {}


def text_form_words(closing: bool) -> tuple[str, str, str, str]:
    """(title, label, hint, submit) of the one-question form for a note on a
    report, or (``closing``) for its outcome: the same on every platform."""
    if closing:
        return (
            wording.concern_close_title(),
            wording.concern_close_label(),
            wording.concern_close_hint(),
            wording.concern_close_submit(),
        )
    return (
        wording.concern_note_title(),
        wording.concern_note_label(),
        wording.concern_note_hint(),
        wording.concern_note_submit(),
    )
