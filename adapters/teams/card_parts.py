"""Adaptive Card pieces the form cards are made of, and how a submission is read.

The concern cards (``concern_cards``) and the broadcast cards
(``broadcast_cards``) build their forms from these, so both show text, buttons
and "what to fix" the same way, and read a submission's answers the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.teams.convert import ELLIPSIS, escape

Element = dict[str, Any]

_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def text_block(text: str, **props: Any) -> Element:
    """A TextBlock of already-escaped text (never empty: Teams rejects that)."""
    return {"type": "TextBlock", "text": text or escape(ELLIPSIS), "wrap": True, **props}


def submit_action(title: str, data: dict[str, Any], style: str | None = None) -> Element:
    action: Element = {"type": "Action.Submit", "title": title, "data": data}
    if style:
        action["style"] = style
    return action


def text_input(
    ident: str,
    label: str,
    value: str,
    *,
    max_length: int,
    multiline: bool = False,
    required_message: str | None = None,
    placeholder: str | None = None,
) -> Element:
    """An ``Input.Text``, filled in with ``value`` (cut to ``max_length``); required
    when ``required_message`` says what to tell someone who leaves it empty."""
    element: Element = {
        "type": "Input.Text",
        "id": ident,
        "label": label,
        "isMultiline": multiline,
        "maxLength": max_length,
        "isRequired": required_message is not None,
    }
    if required_message is not None:
        element["errorMessage"] = required_message
    if placeholder:
        element["placeholder"] = placeholder
    if value.strip():
        element["value"] = value.strip()[:max_length]
    return element


def problems_box(heading: str, labels: Mapping[str, str], errors: Mapping[str, str]) -> Element:
    """What to fix, above a re-sent form's questions: each error after its
    question's label (``labels`` by input id)."""
    lines = [heading]
    lines += [f"{labels.get(key, key)}: {message}" for key, message in errors.items()]
    return {
        "type": "Container",
        "style": "attention",
        "items": [text_block(escape(line)) for line in lines],
    }


def answer(data: Mapping[str, Any], key: str) -> str:
    """One answer of a submission, stripped ("" when missing or not text)."""
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def token(data: Mapping[str, Any], key: str) -> str | None:
    """A reference or form id from a submission, if it looks like one we sent."""
    value = answer(data, key)
    return value if _SAFE_TOKEN.match(value) else None
