"""Block Kit pieces every guidebot modal is made of, and how a submission is read.

The concern forms (``concern_views``) and the broadcast form
(``broadcast_views``) build their views from these, so both clip text to
Slack's limits the same way and read answers back the same way: each input's
block_id names the question and its element's action_id is always ``ACTION``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ACTION = "value"
"""The action_id of every input element: the block_id names the question."""

MAX_TEXT = 3000
"""Characters in a text object."""
MAX_OPTION = 75
"""Characters in an option's text."""
MAX_LABEL = 2000
"""Characters in an input's label or hint."""
ELLIPSIS = "…"

Block = dict[str, Any]


def clip(text: str, limit: int) -> str:
    """``text`` stripped, cut at a word with "…" when longer than ``limit``."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + ELLIPSIS


def plain(text: str, limit: int = MAX_TEXT) -> dict[str, Any]:
    """A plain_text object: what someone typed can notify nobody."""
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": False}


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn object of already-escaped text."""
    return {"type": "mrkdwn", "text": clip(text, MAX_TEXT), "verbatim": True}


def section(text: str) -> Block:
    """A section of already-escaped mrkdwn."""
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> Block:
    """A context line of already-escaped mrkdwn."""
    return {"type": "context", "elements": [mrkdwn(text)]}


def option(value: str, label: str) -> dict[str, Any]:
    return {"text": plain(label, MAX_OPTION), "value": value}


def input_block(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str | None = None,
) -> Block:
    """One question: ``block_id`` names it, and its element answers as ``ACTION``."""
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, MAX_LABEL),
        "element": {**element, "action_id": ACTION},
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, MAX_LABEL)
    return block


# --- reading a submission ---------------------------------------------------------------


def state_values(view: Mapping[str, Any]) -> Mapping[str, Any]:
    """A submitted view's answers, by block_id ({} when it has none)."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    return values if isinstance(values, Mapping) else {}


def element(values: Mapping[str, Any], block_id: str) -> Mapping[str, Any]:
    """The answering element of one question ({} when it was not asked)."""
    block = values.get(block_id)
    found = block.get(ACTION) if isinstance(block, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def typed(values: Mapping[str, Any], block_id: str) -> str:
    """What was typed into a text input, stripped ("" when nothing)."""
    value = element(values, block_id).get("value")
    return value.strip() if isinstance(value, str) else ""


def selected(values: Mapping[str, Any], block_id: str) -> str:
    """The value of the chosen option ("" when none)."""
    option = element(values, block_id).get("selected_option")
    value = option.get("value") if isinstance(option, Mapping) else None
    return value if isinstance(value, str) else ""


def selected_many(values: Mapping[str, Any], block_id: str) -> list[str]:
    """The values of every chosen option (checkboxes, multi-selects)."""
    options = element(values, block_id).get("selected_options")
    if not isinstance(options, list):
        return []
    found = [o.get("value") for o in options if isinstance(o, Mapping)]
    return [v for v in found if isinstance(v, str) and v]
