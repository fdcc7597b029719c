"""Slack views for leaders' broadcasts, as pure functions.

Nothing here touches the network. The adapter (``adapters.slack.app``) opens
the form with ``views.open`` and answers its submission with a
``response_action``; this module builds every view and block and reads every
submission:

- ``broadcast_modal``: the ``/broadcast`` form (callback ``broadcast_submit``):
  title, message, a policy to link, the audience (everyone, or chosen groups
  from the staff directory), "requires acknowledgement", and when to send
  (now, or a ``datetimepicker``); optionally filled in from a ``Draft`` (the
  ready-made broadcast offered after a policy changes);
- ``read_broadcast``: a submission as a ``Draft``, or the errors to show beside
  the questions (``response_action: "errors"``);
- ``done_view``: what replaces the form once it is sent or scheduled;
- ``status_message``: ``/broadcast status`` as an ephemeral message (sent,
  delivered and acknowledged counts; who is outstanding, capped with "and N
  more"; who could not be reached);
- ``home_section`` / ``with_broadcasts``: the leaders' part of App Home (recent
  broadcasts, "New broadcast", and "Prepare a broadcast" for each changed policy
  staff have not been told about);
- ``acknowledged_blocks``: a broadcast's message once its reader has pressed
  "I have read and understood": the button gives way to a line saying when.

Everything respects Block Kit's limits: 150 characters in a plain_text_input
title here, 3,000 in a text object, 75 in an option's text and 150 in its value,
100 options in a select, 50 blocks in a message and 100 in a view. What a
leader typed is shown as ``plain_text`` or through ``neutralise``, so nothing
typed can notify anyone or disguise a link. Private metadata carries only the
school and the Slack team.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.slack.concern_views import Metadata, metadata
from adapters.slack.convert import escape, neutralise
from adapters.slack.modal import ACTION as ACTION  # tests build submissions with it
from adapters.slack.modal import (
    MAX_TEXT,
    Block,
    clip,
    context,
    element,
    input_block,
    mrkdwn,
    option,
    plain,
    section,
    selected,
    selected_many,
    state_values,
    typed,
)
from bot import broadcast_form, wording
from bot.broadcast_form import (
    ACK,
    AUDIENCE,
    EVERYONE,
    FIELD_IDS,
    GROUPS,
    MAX_MESSAGE,
    MAX_NAMES,
    MAX_TITLE,
    MESSAGE,
    POLICY,
    SOME_GROUPS,
    TITLE,
    london_time,
    names_text,
)
from bot.broadcasts import BroadcastStatus, Draft
from bot.messages import Action

BROADCAST_CALLBACK = "broadcast_submit"
WHEN = "broadcast_when"
SEND_AT = "broadcast_send_at"
FIELDS = (TITLE, MESSAGE, POLICY, AUDIENCE, GROUPS, ACK, WHEN, SEND_AT)
"""Every question's block_id, in the order the form asks them."""
FIELD_BLOCKS = {**FIELD_IDS, "send_at": SEND_AT}
"""The question (block_id) for each ``Draft`` field the core may object to."""

NOW, LATER = "now", "later"
REQUIRED = "required"

MAX_OPTIONS = 100
MAX_OPTION_VALUE = 150
MAX_VIEW_TITLE = 24
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_HOME_BROADCASTS = 5

View = dict[str, Any]


# --- small pieces -----------------------------------------------------------------------


def _button(label: str, action_id: str, value: str, primary: bool = False) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(label, 75), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if primary:
        button["style"] = "primary"
    return button


# --- the form ---------------------------------------------------------------------------


def _usable_policies(policies: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(key, title) pairs that fit in an option, at most 100."""
    return [(k, t) for k, t in policies if k and len(k) <= MAX_OPTION_VALUE][:MAX_OPTIONS]


def _usable_groups(groups: Sequence[str]) -> list[str]:
    return [g for g in groups if g and len(g) <= MAX_OPTION_VALUE][:MAX_OPTIONS]


def broadcast_modal(
    meta: Metadata,
    policies: Sequence[tuple[str, str]],
    groups: Sequence[str],
    draft: Draft | None = None,
) -> View:
    """The broadcast form. ``policies`` are the school's (key, title) pairs and
    ``groups`` the directory's groups; a question with nothing to choose from is
    left out. ``draft`` fills it in (a policy-change offer)."""
    policy_options = [option(key, title) for key, title in _usable_policies(policies)]
    group_options = [option(group, group) for group in _usable_groups(groups)]
    blocks: list[Block] = [section(escape(wording.broadcast_form_intro()))]

    title: dict[str, Any] = {
        "type": "plain_text_input",
        "max_length": MAX_TITLE,
        "placeholder": plain(wording.broadcast_title_placeholder(), 150),
    }
    message: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": True,
        "max_length": MAX_MESSAGE,
    }
    if draft is not None and draft.title.strip():
        title["initial_value"] = draft.title.strip()[:MAX_TITLE]
    if draft is not None and draft.message.strip():
        message["initial_value"] = draft.message.strip()[:MAX_MESSAGE]
    blocks.append(input_block(TITLE, wording.broadcast_title_label(), title))
    blocks.append(
        input_block(
            MESSAGE,
            wording.broadcast_message_label(),
            message,
            hint=wording.broadcast_message_hint(),
        )
    )

    if policy_options:
        select: dict[str, Any] = {"type": "static_select", "options": policy_options}
        chosen = next(
            (o for o in policy_options if draft is not None and o["value"] == draft.policy), None
        )
        if chosen is not None:
            select["initial_option"] = chosen
        blocks.append(input_block(POLICY, wording.broadcast_policy_label(), select, optional=True))

    everyone = option(EVERYONE, wording.broadcast_audience_everyone())
    some = option(SOME_GROUPS, wording.broadcast_audience_groups())
    wanted = [o for o in group_options if draft is not None and o["value"] in draft.groups]
    audience: dict[str, Any] = {
        "type": "radio_buttons",
        "options": [everyone, some] if group_options else [everyone],
        "initial_option": some if wanted else everyone,
    }
    blocks.append(input_block(AUDIENCE, wording.broadcast_audience_label(), audience))
    if group_options:
        multi: dict[str, Any] = {"type": "multi_static_select", "options": group_options}
        if wanted:
            multi["initial_options"] = wanted
        blocks.append(
            input_block(
                GROUPS,
                wording.broadcast_groups_label(),
                multi,
                optional=True,
                hint=wording.broadcast_groups_hint(),
            )
        )

    required = option(REQUIRED, wording.broadcast_ack_option())
    checkbox: dict[str, Any] = {"type": "checkboxes", "options": [required]}
    if draft is None or draft.requires_ack:
        checkbox["initial_options"] = [required]
    blocks.append(input_block(ACK, wording.broadcast_ack_label(), checkbox, optional=True))

    now = option(NOW, wording.broadcast_when_now())
    later = option(LATER, wording.broadcast_when_later())
    scheduled = draft is not None and draft.send_at is not None
    when = {
        "type": "radio_buttons",
        "options": [now, later],
        "initial_option": later if scheduled else now,
    }
    blocks.append(input_block(WHEN, wording.broadcast_when_label(), when))
    picker: dict[str, Any] = {"type": "datetimepicker"}
    if draft is not None and draft.send_at is not None:
        picker["initial_date_time"] = int(draft.send_at.timestamp())
    blocks.append(
        input_block(
            SEND_AT,
            wording.broadcast_send_at_label(),
            picker,
            optional=True,
            hint=wording.broadcast_send_at_hint(),
        )
    )
    return {
        "type": "modal",
        "callback_id": BROADCAST_CALLBACK,
        "title": plain(wording.broadcast_form_title(), MAX_VIEW_TITLE),
        "submit": plain(wording.broadcast_form_submit(), MAX_VIEW_TITLE),
        "close": plain(wording.broadcast_form_cancel(), MAX_VIEW_TITLE),
        "private_metadata": metadata(meta),
        "blocks": blocks[:MAX_VIEW_BLOCKS],
    }


def read_broadcast(
    view: Mapping[str, Any],
    *,
    now: datetime,
    policies: Collection[str],
    groups: Collection[str],
) -> tuple[Draft | None, dict[str, str]]:
    """A submitted form: the ``Draft``, or None and an error for each question
    (by block_id) that needs another look. ``policies`` and ``groups`` are what
    the school has now (a choice may have gone since the form was opened);
    ``now`` (timezone-aware) is what a chosen send time must be after."""
    values = state_values(view)
    present = {
        block.get("block_id") for block in view.get("blocks", []) if isinstance(block, Mapping)
    }
    send_at: datetime | None = None
    problem: str | None = None
    if selected(values, WHEN) == LATER:
        picked = element(values, SEND_AT).get("selected_date_time")
        if not isinstance(picked, int) or isinstance(picked, bool) or picked <= 0:
            problem = wording.broadcast_no_send_time()
        else:
            send_at = datetime.fromtimestamp(picked, UTC)
    draft, problems = broadcast_form.read_answers(
        {key: typed(values, key) for key in (TITLE, MESSAGE)}
        | {key: selected(values, key) for key in (POLICY, AUDIENCE)},
        selected_many(values, GROUPS),
        requires_ack=REQUIRED in selected_many(values, ACK),
        send_at=send_at,
        send_at_problem=problem,
        now=now,
        policies=policies,
        groups=groups,
    )
    # Without groups to choose from, the audience question says what is wrong.
    blocks = {**FIELD_BLOCKS, "groups": GROUPS if GROUPS in present else AUDIENCE}
    return draft, {blocks[field]: message for field, message in problems.items()}


# --- after sending ----------------------------------------------------------------------


def done_view(text: str) -> View:
    """A modal that only says something (the confirmation, or why it was refused)."""
    lines = [line.strip() for line in text.split("\n") if line.strip()] or [" "]
    return {
        "type": "modal",
        "title": plain(wording.broadcast_done_title(), MAX_VIEW_TITLE),
        "close": plain(wording.concern_close_button(), MAX_VIEW_TITLE),
        "blocks": [section(escape(line)) for line in lines][:MAX_VIEW_BLOCKS],
    }


# --- status -----------------------------------------------------------------------------


def status_blocks(status: BroadcastStatus, *, names: int = MAX_NAMES) -> list[Block]:
    """One broadcast: its title, who sent it and when, the counts, and who has
    not acknowledged it or could not be reached."""
    when = status.send_at if status.state == "scheduled" else (status.send_at or status.created_at)
    head = "\n".join(
        [
            f"*{neutralise(status.title)}*",
            escape(wording.broadcast_state_line(status.state, status.author, london_time(when))),
            escape(
                wording.broadcast_counts(
                    status.recipients, status.delivered, status.acknowledged, status.requires_ack
                )
            ),
        ]
    )
    blocks: list[Block] = [section(head)]
    if status.requires_ack and status.state == "sent":
        if status.outstanding:
            line = wording.broadcast_outstanding(names_text(status.outstanding, names))
            blocks.append(context(neutralise(line)))
        elif status.recipients:
            blocks.append(context(escape(wording.broadcast_everyone_acknowledged())))
    if status.unreachable:
        line = wording.broadcast_unreachable(names_text(status.unreachable, names))
        blocks.append(context(neutralise(line)))
    if status.chasers:
        blocks.append(context(escape(wording.broadcast_chasers(status.chasers))))
    return blocks


def status_message(statuses: Sequence[BroadcastStatus]) -> dict[str, Any]:
    """``/broadcast status``: recent broadcasts, newest first, as a message of at
    most 50 blocks (older broadcasts give way)."""
    blocks: list[Block] = [section(f"*{escape(wording.broadcast_status_heading())}*")]
    if not statuses:
        blocks.append(section(escape(wording.broadcast_none_yet())))
    for status in statuses:
        item = [{"type": "divider"}, *status_blocks(status)]
        if len(blocks) + len(item) > MAX_MESSAGE_BLOCKS:
            break
        blocks += item
    fallback = wording.broadcast_status_heading()
    if statuses:
        first = statuses[0]
        fallback += ": " + wording.broadcast_counts(
            first.recipients, first.delivered, first.acknowledged, first.requires_ack
        )
    return {"text": clip(fallback, MAX_TEXT), "blocks": blocks}


# --- App Home ---------------------------------------------------------------------------


def home_section(
    statuses: Sequence[BroadcastStatus], offers: Sequence[tuple[str, str]]
) -> list[Block]:
    """The leaders' part of App Home: recent broadcasts with their counts, one
    "Prepare a broadcast" per changed policy (``offers``: (policy key, title)),
    and "New broadcast". Button action_ids are unique in the view (``-1``,
    ``-2``... as ``convert`` reads them back)."""
    blocks: list[Block] = [
        {"type": "divider"},
        section(f"*{escape(wording.broadcast_home_heading())}*"),
    ]
    for number, (key, title) in enumerate(offers[:MAX_OPTIONS]):
        if len(key) > 2000:
            continue
        action_id = f"{Action.BROADCAST_NEW.value}-{number + 1}"
        blocks.append(
            {
                "type": "section",
                "text": mrkdwn(escape(wording.broadcast_offer_line(title))),
                "accessory": _button(wording.broadcast_prepare_button(), action_id, key),
            }
        )
    if statuses:
        for status in statuses[:MAX_HOME_BROADCASTS]:
            blocks += status_blocks(status, names=10)
    else:
        blocks.append(context(escape(wording.broadcast_none_yet())))
    blocks.append(
        {
            "type": "actions",
            "elements": [
                _button(wording.broadcast_new_button(), Action.BROADCAST_NEW.value, "", True)
            ],
        }
    )
    return blocks


def with_broadcasts(home: Mapping[str, Any], section: Sequence[Block]) -> View:
    """``home`` (``convert.home_view``) with the leaders' section before its
    closing buttons, within 100 blocks (the section's oldest items give way,
    never its "New broadcast" button)."""
    blocks = list(home.get("blocks", []))
    at = len(blocks)
    while at > 0 and blocks[at - 1].get("type") == "actions":
        at -= 1
    room = MAX_VIEW_BLOCKS - len(blocks)
    mine = list(section)
    if len(mine) > room:
        mine = [*mine[: max(room - 1, 0)], *mine[-1:]] if room > 0 else []
    return {**home, "blocks": [*blocks[:at], *mine, *blocks[at:]]}


# --- a broadcast once acknowledged ------------------------------------------------------


def _is_ack(element: Mapping[str, Any]) -> bool:
    action_id = element.get("action_id")
    return isinstance(action_id, str) and (
        action_id == Action.BROADCAST_ACK.value
        or action_id.startswith(Action.BROADCAST_ACK.value + "-")
    )


def acknowledged_blocks(blocks: Sequence[Mapping[str, Any]], when: str) -> list[Block] | None:
    """A broadcast message's blocks with its "I have read and understood" button
    replaced by a line saying when they confirmed; None when it has no such button."""
    found = False
    updated: list[Block] = []
    for block in blocks:
        elements = block.get("elements")
        if block.get("type") != "actions" or not isinstance(elements, list):
            updated.append(dict(block))
            continue
        kept = [e for e in elements if not (isinstance(e, Mapping) and _is_ack(e))]
        if len(kept) == len(elements):
            updated.append(dict(block))
            continue
        found = True
        if kept:
            updated.append({**block, "elements": kept})
        updated.append(context(escape(wording.broadcast_ack_done_line(when))))
    return updated if found else None
