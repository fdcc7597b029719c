"""Adaptive Cards for leaders' broadcasts, as pure functions.

Teams has no modal without a task module, so the broadcast form is a card in
the leader's 1:1 chat with the bot (Adaptive Cards 1.5): ``Input.Text`` for the
title (150 characters) and the message (3,000, multiline), ``Input.ChoiceSet``
for the policy to link, the audience and the groups (multi-select),
``Input.Toggle`` for "requires acknowledgement", and ``Input.Date`` with
``Input.Time`` for when to send it (both empty: now; read as UK time, Europe/
London, whatever the leader's own time zone). Teams sends a submission back as
a message whose ``value`` is the button's data merged with the inputs::

    {"action": "broadcast_submit", "form": "<one-time id>", "broadcast_title": "...", ...}

The same questions as the Slack modal (``adapters.slack.broadcast_views``; a
test checks the two ask the same), with the same input ids as its block ids.

- ``broadcast_form`` / ``read_broadcast``: the form (optionally filled in from a
  ``Draft``, or re-sent with the leader's answers and what to fix) and its
  submission as a ``Draft`` or errors;
- ``status_card``: recent broadcasts with their counts and who is outstanding,
  with "New broadcast" and "Prepare a broadcast" buttons.

The questions' ids, limits and checks are ``bot.broadcast_form``'s, shared with Slack.

The "I have read and understood" button under a broadcast is an ordinary
``Reply`` button (``convert.render``: ``Action.Submit`` with data
``{"action": "broadcast_ack", "value": "<id>"}``). Everything a leader typed is
shown through ``convert.neutralise``; every card is under ``MAX_CARD_BYTES``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from adapters.teams.card_parts import (
    Element,
    answer,
    problems_box,
    submit_action,
    text_block,
    text_input,
)
from adapters.teams.convert import MAX_CARD_BYTES, adaptive_card, card_size, escape, neutralise
from bot import wording
from bot.broadcast_form import (
    ACK,
    AUDIENCE,
    EVERYONE,
    FIELD_IDS,
    GROUPS,
    LONDON,
    MAX_MESSAGE,
    MAX_TITLE,
    MESSAGE,
    POLICY,
    SOME_GROUPS,
    TITLE,
    london_time,
    names_text,
    read_answers,
)
from bot.broadcasts import BroadcastStatus, Draft
from bot.messages import Action

BROADCAST_SUBMIT = "broadcast_submit"
FORM = "form"
"""The one-time id of a form card, so a second press of its button sends nothing."""
OFFER = "offer"
"""In the submit data of a form made from a policy-change offer: ``v<version>:<key>``."""

SEND_ON = "broadcast_send_on"
SEND_TIME = "broadcast_send_time"
FIELDS = (TITLE, MESSAGE, POLICY, AUDIENCE, GROUPS, ACK, SEND_ON, SEND_TIME)
FIELD_INPUTS = {**FIELD_IDS, "send_at": SEND_ON}
"""The input for each ``Draft`` field the core may object to."""

NO_POLICY = "none"
ON, OFF = "true", "false"

MAX_CHOICES = 100
MAX_CHOICE_TITLE = 100
CHOICE_STEPS = (MAX_CHOICES, 60, 30, 10, 0)
"""Choices offered per question, tried in turn until the form fits in a card."""
MAX_STATUSES = 10
MAX_ACTIONS = 6

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{1,2}:\d{2}(?::\d{2})?$")
_OFFER = re.compile(r"^v\d{1,9}:[^\s]{1,200}$")

Card = dict[str, Any]


# --- small pieces -----------------------------------------------------------------------


def offer_of(data: Mapping[str, Any]) -> str:
    """The policy-change offer a submitted form was made from, or ""."""
    value = answer(data, OFFER)
    return value if _OFFER.match(value) else ""


def _choice(value: str, title: str) -> dict[str, str]:
    title = " ".join(title.split()) or value
    return {"title": title[:MAX_CHOICE_TITLE], "value": value}


# --- the form ---------------------------------------------------------------------------


def _labels() -> dict[str, str]:
    return {
        TITLE: wording.broadcast_title_label(),
        MESSAGE: wording.broadcast_message_label(),
        POLICY: wording.broadcast_policy_label(),
        AUDIENCE: wording.broadcast_audience_label(),
        GROUPS: wording.broadcast_groups_label(),
        ACK: wording.broadcast_ack_label(),
        SEND_ON: wording.broadcast_send_on_label(),
        SEND_TIME: wording.broadcast_send_time_label(),
    }


def _draft_values(draft: Draft) -> dict[str, str]:
    values = {
        TITLE: draft.title,
        MESSAGE: draft.message,
        POLICY: draft.policy or NO_POLICY,
        AUDIENCE: SOME_GROUPS if draft.groups else EVERYONE,
        GROUPS: ",".join(draft.groups),
        ACK: ON if draft.requires_ack else OFF,
    }
    if draft.send_at is not None:
        local = draft.send_at.astimezone(LONDON)
        values[SEND_ON] = local.date().isoformat()
        values[SEND_TIME] = f"{local:%H:%M}"
    return values


def broadcast_form(
    form_id: str,
    policies: Sequence[tuple[str, str]],
    groups: Sequence[str],
    *,
    draft: Draft | None = None,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    offer: str = "",
) -> Card:
    """The broadcast form. ``policies``: the school's (key, title) pairs;
    ``groups``: the directory's groups (a question with nothing to choose from
    is left out). ``draft`` fills it in; ``values`` and ``errors`` re-send a
    submission that needs another look, with what to fix above the questions."""
    given: Mapping[str, Any] = (
        values if values is not None else (_draft_values(draft) if draft is not None else {})
    )
    card: Card = {}
    for room in CHOICE_STEPS:  # fewer choices until the card fits (long non-ASCII titles)
        card = _form(form_id, policies, groups, given, errors, offer, room)
        if card_size(card) <= MAX_CARD_BYTES:
            return card
    if values is not None:
        # A re-sent form full of long non-ASCII text: the answers are still in the
        # card they typed into, so send the questions alone.
        return broadcast_form(form_id, policies, groups, errors=errors, offer=offer)
    return card


def _form(
    form_id: str,
    policies: Sequence[tuple[str, str]],
    groups: Sequence[str],
    given: Mapping[str, Any],
    errors: Mapping[str, str] | None,
    offer: str,
    room: int,
) -> Card:
    def value(key: str, default: str = "") -> str:
        return answer(given, key) or default

    body: list[Element] = [
        text_block(escape(wording.broadcast_form_title()), size="medium", weight="bolder"),
        text_block(escape(wording.broadcast_form_intro())),
    ]
    if errors:
        body.append(problems_box(wording.broadcast_form_problems(), _labels(), errors))
    body.append(
        text_input(
            TITLE,
            wording.broadcast_title_label(),
            value(TITLE),
            max_length=MAX_TITLE,
            required_message=wording.broadcast_missing_title(),
        )
    )
    body.append(
        text_input(
            MESSAGE,
            wording.broadcast_message_label(),
            value(MESSAGE),
            max_length=MAX_MESSAGE,
            multiline=True,
            required_message=wording.broadcast_missing_message(),
            placeholder=wording.broadcast_message_hint(),
        )
    )
    policy_choices = [_choice(key, title) for key, title in policies if key and key != NO_POLICY][
        : max(room - 1, 0)
    ]
    if policy_choices:
        chosen = value(POLICY, NO_POLICY)
        known = {c["value"] for c in policy_choices}
        body.append(
            {
                "type": "Input.ChoiceSet",
                "id": POLICY,
                "label": wording.broadcast_policy_label(),
                "choices": [_choice(NO_POLICY, wording.broadcast_policy_none()), *policy_choices],
                "style": "compact",
                "isRequired": False,
                "value": chosen if chosen in known else NO_POLICY,
                "wrap": True,
            }
        )
    group_choices = [_choice(g, g) for g in groups if g and "," not in g][:room]
    audience_choices = [_choice(EVERYONE, wording.broadcast_audience_everyone())]
    if group_choices:
        audience_choices.append(_choice(SOME_GROUPS, wording.broadcast_audience_groups()))
    audience = value(AUDIENCE, EVERYONE)
    body.append(
        {
            "type": "Input.ChoiceSet",
            "id": AUDIENCE,
            "label": wording.broadcast_audience_label(),
            "choices": audience_choices,
            "style": "expanded",
            "isRequired": True,
            "errorMessage": wording.broadcast_no_groups_chosen(),
            "value": audience if audience in (EVERYONE, SOME_GROUPS) else EVERYONE,
            "wrap": True,
        }
    )
    if group_choices:
        known_groups = {c["value"] for c in group_choices}
        picked = [g for g in value(GROUPS).split(",") if g in known_groups]
        groups_input: Element = {
            "type": "Input.ChoiceSet",
            "id": GROUPS,
            "label": wording.broadcast_groups_label(),
            "choices": group_choices,
            "isMultiSelect": True,
            "style": "compact",
            "isRequired": False,
            "placeholder": wording.broadcast_groups_hint(),
            "wrap": True,
        }
        if picked:
            groups_input["value"] = ",".join(picked)
        body.append(groups_input)
    body.append(
        {
            "type": "Input.Toggle",
            "id": ACK,
            "label": wording.broadcast_ack_label(),
            "title": wording.broadcast_ack_option(),
            "value": OFF if value(ACK, ON) == OFF else ON,
            "valueOn": ON,
            "valueOff": OFF,
            "wrap": True,
        }
    )
    send_on: Element = {
        "type": "Input.Date",
        "id": SEND_ON,
        "label": wording.broadcast_send_on_label(),
    }
    if _DATE.match(value(SEND_ON)):
        send_on["value"] = value(SEND_ON)
    send_time: Element = {
        "type": "Input.Time",
        "id": SEND_TIME,
        "label": wording.broadcast_send_time_label(),
    }
    if _TIME.match(value(SEND_TIME)):
        send_time["value"] = value(SEND_TIME)[:5]
    body += [send_on, send_time]
    data = {"action": BROADCAST_SUBMIT, FORM: form_id}
    if offer:
        data[OFFER] = offer
    send = submit_action(wording.broadcast_card_send(), data, "positive")
    return adaptive_card(body, [send], wording.broadcast_form_title())


def _send_at(data: Mapping[str, Any], now: datetime) -> tuple[datetime | None, str | None]:
    """The chosen moment (UK time, as UTC), or None for "now"; or why it
    cannot be read (``broadcast_form`` checks it is in the future)."""
    day, clock = answer(data, SEND_ON), answer(data, SEND_TIME)
    if not day and not clock:
        return None, None
    if not day or not clock:
        return None, wording.broadcast_half_send_time()
    try:
        if not (_DATE.match(day) and _TIME.match(clock)):
            raise ValueError(day)
        local = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock.zfill(5)))
    except ValueError:
        return None, wording.broadcast_no_send_time()
    moment = local.replace(tzinfo=LONDON).astimezone(UTC)
    return moment, None


def read_broadcast(
    data: Mapping[str, Any],
    *,
    now: datetime,
    policies: Collection[str],
    groups: Collection[str],
) -> tuple[Draft | None, dict[str, str]]:
    """A submitted form: the ``Draft``, or None and an error for each question
    (by input id) that needs another look. ``policies`` and ``groups`` are what
    the school has now; ``now`` (timezone-aware) is what a send time must be after."""
    policy = answer(data, POLICY)
    chosen = [g.strip() for g in answer(data, GROUPS).split(",") if g.strip()]
    send_at, problem = _send_at(data, now)
    draft, problems = read_answers(
        {
            TITLE: answer(data, TITLE),
            MESSAGE: answer(data, MESSAGE),
            POLICY: "" if policy == NO_POLICY else policy,
            AUDIENCE: answer(data, AUDIENCE),
        },
        chosen,
        requires_ack=answer(data, ACK) != OFF,
        send_at=send_at,
        send_at_problem=problem,
        now=now,
        policies=policies,
        groups=groups,
    )
    return draft, {FIELD_INPUTS[field]: message for field, message in problems.items()}


# --- status -----------------------------------------------------------------------------


def status_items(status: BroadcastStatus) -> list[Element]:
    when = status.send_at or status.created_at
    items: list[Element] = [
        text_block(neutralise(status.title), weight="bolder", separator=True, spacing="medium"),
        text_block(
            escape(wording.broadcast_state_line(status.state, status.author, london_time(when))),
            isSubtle=True,
            spacing="none",
        ),
        text_block(
            escape(
                wording.broadcast_counts(
                    status.recipients, status.delivered, status.acknowledged, status.requires_ack
                )
            ),
            spacing="none",
        ),
    ]
    if status.requires_ack and status.state == "sent":
        if status.outstanding:
            line = wording.broadcast_outstanding(names_text(status.outstanding))
            items.append(text_block(neutralise(line), size="small"))
        elif status.recipients:
            items.append(
                text_block(escape(wording.broadcast_everyone_acknowledged()), size="small")
            )
    if status.unreachable:
        line = wording.broadcast_unreachable(names_text(status.unreachable))
        items.append(text_block(neutralise(line), size="small", isSubtle=True))
    if status.chasers:
        items.append(text_block(escape(wording.broadcast_chasers(status.chasers)), size="small"))
    return items


def status_card(
    statuses: Sequence[BroadcastStatus], offers: Sequence[tuple[str, str]] = ()
) -> Card:
    """Recent broadcasts (newest first, as many as fit in one card), then one
    "Prepare a broadcast" per changed policy staff have not been told about
    (``offers``: (policy key, title)) and "New broadcast"."""
    summary = wording.broadcast_status_heading()
    body: list[Element] = [text_block(escape(summary), size="medium", weight="bolder")]
    for key, title in offers[:MAX_CHOICES]:
        body.append(text_block(neutralise(wording.broadcast_offer_line(title))))
        body.append(
            {
                "type": "ActionSet",
                "actions": [
                    submit_action(
                        wording.broadcast_prepare_button(),
                        {"action": Action.BROADCAST_NEW.value, "value": key},
                    )
                ],
            }
        )
    new = submit_action(
        wording.broadcast_new_button(),
        {"action": Action.BROADCAST_NEW.value, "value": ""},
        "positive",
    )
    if not statuses:
        body.append(text_block(escape(wording.broadcast_none_yet())))
    for status in statuses[:MAX_STATUSES]:
        items = status_items(status)
        if card_size(adaptive_card([*body, *items], [new], summary)) > MAX_CARD_BYTES:
            break
        body += items
    while card_size(adaptive_card(body, [new], summary)) > MAX_CARD_BYTES and len(body) > 1:
        body.pop()
    return adaptive_card(body, [new], summary)
