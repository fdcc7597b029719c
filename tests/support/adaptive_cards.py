"""What Teams accepts in an Adaptive Card, checked as Teams would check it.

Written from the Adaptive Cards schema (elements, actions, their required
properties and enumerations) and Teams' documented limits: schema 1.5 at most,
six actions in a set, about 28 KB a message (we allow a card 25,000 bytes).
Only the parts of the schema guidebot's cards may use are known here, and a
property the schema does not define for an element is refused, so a typo such
as ``isSubtitle`` fails a test instead of being silently ignored by Teams.

``assert_teams_card`` raises ``AssertionError`` naming the path of the first
problem, e.g. ``body[2].items[0].size: 'huge' is not one of ...``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

MAX_VERSION = (1, 5)
MAX_BYTES = 25_000
MAX_ACTIONS = 6

CARD_KEYS = frozenset(
    {
        "type",
        "$schema",
        "version",
        "body",
        "actions",
        "msteams",
        "fallbackText",
        "speak",
        "lang",
        "minHeight",
        "verticalContentAlignment",
        "selectAction",
        "backgroundImage",
        "rtl",
    }
)

SPACING = ("default", "none", "small", "medium", "large", "extraLarge", "padding")
COLORS = ("default", "dark", "light", "accent", "good", "warning", "attention")
FONT_TYPES = ("default", "monospace")
SIZES = ("default", "small", "medium", "large", "extraLarge")
WEIGHTS = ("default", "lighter", "bolder")
ALIGNMENTS = ("left", "center", "right")
VERTICAL = ("top", "center", "bottom")
CONTAINER_STYLES = ("default", "emphasis", "good", "attention", "warning", "accent")
ACTION_STYLES = ("default", "positive", "destructive")

COMMON = {
    "type": None,
    "id": None,
    "spacing": SPACING,
    "separator": bool,
    "isVisible": bool,
    "requires": dict,
    "fallback": None,
    "height": ("auto", "stretch"),
}
"""Properties every element may have: None for any value, a tuple for an
enumeration, a type for a value of that type."""

INPUT_COMMON = {"label": str, "isRequired": bool, "errorMessage": str}

ELEMENTS: dict[str, dict[str, Any]] = {
    "TextBlock": {
        "text": str,
        "color": COLORS,
        "fontType": FONT_TYPES,
        "horizontalAlignment": ALIGNMENTS,
        "isSubtle": bool,
        "maxLines": int,
        "size": SIZES,
        "weight": WEIGHTS,
        "wrap": bool,
        "style": ("default", "heading"),
    },
    "RichTextBlock": {"inlines": list, "horizontalAlignment": ALIGNMENTS},
    "Container": {
        "items": list,
        "style": CONTAINER_STYLES,
        "verticalContentAlignment": VERTICAL,
        "bleed": bool,
        "minHeight": str,
        "selectAction": dict,
        "backgroundImage": None,
        "rtl": bool,
    },
    "ColumnSet": {
        "columns": list,
        "style": CONTAINER_STYLES,
        "bleed": bool,
        "minHeight": str,
        "horizontalAlignment": ALIGNMENTS,
        "selectAction": dict,
    },
    "Column": {
        "items": list,
        "style": CONTAINER_STYLES,
        "verticalContentAlignment": VERTICAL,
        "width": None,
        "bleed": bool,
        "minHeight": str,
        "selectAction": dict,
        "backgroundImage": None,
        "rtl": bool,
    },
    "FactSet": {"facts": list},
    "Image": {
        "url": str,
        "altText": str,
        "backgroundColor": str,
        "width": str,
        "horizontalAlignment": ALIGNMENTS,
        "size": ("auto", "stretch", "small", "medium", "large"),
        "style": ("default", "person"),
        "selectAction": dict,
    },
    "ActionSet": {"actions": list},
    # Inputs, for the concern forms (Adaptive Cards 1.5).
    "Input.Text": {
        **INPUT_COMMON,
        "isMultiline": bool,
        "maxLength": int,
        "placeholder": str,
        "regex": str,
        "style": ("text", "tel", "url", "email", "password"),
        "inlineAction": dict,
        "value": str,
    },
    "Input.ChoiceSet": {
        **INPUT_COMMON,
        "choices": list,
        "isMultiSelect": bool,
        "style": ("compact", "expanded", "filtered"),
        "value": str,
        "placeholder": str,
        "wrap": bool,
    },
    "Input.Toggle": {
        **INPUT_COMMON,
        "title": str,
        "value": str,
        "valueOff": str,
        "valueOn": str,
        "wrap": bool,
    },
    # For the broadcast form's "send at" (YYYY-MM-DD and HH:MM, as the schema says).
    "Input.Date": {**INPUT_COMMON, "value": str, "min": str, "max": str, "placeholder": str},
    "Input.Time": {**INPUT_COMMON, "value": str, "min": str, "max": str, "placeholder": str},
}
REQUIRED = {
    "TextBlock": ("text",),
    "RichTextBlock": ("inlines",),
    "Container": ("items",),
    "FactSet": ("facts",),
    "Image": ("url",),
    "ActionSet": ("actions",),
    "Input.Text": ("id",),
    "Input.ChoiceSet": ("id", "choices"),
    "Input.Toggle": ("id", "title"),
    "Input.Date": ("id",),
    "Input.Time": ("id",),
}
BODY_TYPES = frozenset(ELEMENTS) - {"Column"}
"""What may stand in a body or a container's items: a Column only in a ColumnSet,
a TextRun only in a RichTextBlock's inlines."""

TEXT_RUN = {
    "type": None,
    "text": str,
    "color": COLORS,
    "fontType": FONT_TYPES,
    "highlight": bool,
    "isSubtle": bool,
    "italic": bool,
    "selectAction": dict,
    "size": SIZES,
    "strikethrough": bool,
    "underline": bool,
    "weight": WEIGHTS,
}

ACTION_COMMON = {
    "type": None,
    "title": str,
    "iconUrl": str,
    "id": str,
    "style": ACTION_STYLES,
    "fallback": None,
    "tooltip": str,
    "isEnabled": bool,
    "mode": ("primary", "secondary"),
    "requires": dict,
}
ACTIONS: dict[str, dict[str, Any]] = {
    "Action.Submit": {"data": dict, "associatedInputs": ("auto", "none")},
    "Action.OpenUrl": {"url": str},
    "Action.ShowCard": {"card": dict},
    "Action.ToggleVisibility": {"targetElements": list},
    "Action.Execute": {"verb": str, "data": dict, "associatedInputs": ("auto", "none")},
}
ACTION_REQUIRED = {
    "Action.Submit": ("title",),
    "Action.OpenUrl": ("url",),
    "Action.ShowCard": ("card",),
    "Action.ToggleVisibility": ("targetElements",),
}

_VERSION = re.compile(r"^(\d+)\.(\d+)$")
_MENTION_TEXT = re.compile(r"^<at>[^<>]+</at>$")


def _fail(path: str, problem: str) -> NoReturn:
    raise AssertionError(f"{path}: {problem}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_value(path: str, value: Any, rule: Any) -> None:
    if rule is None:
        return
    if isinstance(rule, tuple):
        if not isinstance(value, str) or value.casefold() not in {r.casefold() for r in rule}:
            _fail(path, f"{value!r} is not one of {', '.join(rule)}")
        return
    if rule is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, rule)
    if not ok:
        _fail(path, f"{value!r} is not a {rule.__name__}")
    if rule is str and not value.strip():
        _fail(path, "is empty")


def _check_props(path: str, node: Mapping[str, Any], rules: Mapping[str, Any]) -> None:
    for key, value in node.items():
        if key not in rules:
            _fail(_join(path, key), f"is not a property of {node.get('type')}")
        _check_value(_join(path, key), value, rules[key])


def _required(path: str, node: Mapping[str, Any], keys: Sequence[str]) -> None:
    for key in keys:
        if key not in node:
            _fail(_join(path, key), f"is required on {node.get('type')}")


def _check_elements(path: str, items: Any, allowed: frozenset[str]) -> None:
    if not isinstance(items, list):
        _fail(path, "must be a list of elements")
    for index, item in enumerate(items):
        _check_element(f"{path}[{index}]", item, allowed)


def _check_element(path: str, node: Any, allowed: frozenset[str]) -> None:
    if not isinstance(node, Mapping):
        _fail(path, "must be an element (an object)")
    kind = node.get("type")
    if kind not in allowed:
        known = ", ".join(sorted(allowed))
        _fail(_join(path, "type"), f"{kind!r} is not an element allowed here ({known})")
    _check_props(path, node, {**COMMON, **ELEMENTS[kind]})
    _required(path, node, REQUIRED.get(kind, ()))
    fallback = node.get("fallback")
    if isinstance(fallback, Mapping):
        _check_element(_join(path, "fallback"), fallback, BODY_TYPES)
    elif fallback is not None and fallback != "drop":
        _fail(_join(path, "fallback"), f"{fallback!r} is neither 'drop' nor an element")
    if isinstance(node.get("selectAction"), Mapping):
        _check_action(_join(path, "selectAction"), node["selectAction"], select=True)
    if kind in ("Container", "Column") and "items" in node:
        _check_elements(_join(path, "items"), node["items"], BODY_TYPES)
    if kind == "Container" and not node["items"]:
        _fail(_join(path, "items"), "is empty")
    if kind == "ColumnSet" and "columns" in node:
        _check_elements(_join(path, "columns"), node["columns"], frozenset({"Column"}))
    if kind == "ActionSet":
        _check_actions(_join(path, "actions"), node["actions"], allow_empty=False)
    if kind == "FactSet":
        _check_facts(_join(path, "facts"), node["facts"])
    if kind == "RichTextBlock":
        _check_inlines(_join(path, "inlines"), node["inlines"])


def _check_facts(path: str, facts: list[Any]) -> None:
    if not facts:
        _fail(path, "is empty")
    for index, fact in enumerate(facts):
        where = f"{path}[{index}]"
        if not isinstance(fact, Mapping):
            _fail(where, "must be a fact (an object)")
        _required(where, {"type": "Fact", **fact}, ("title", "value"))
        _check_props(where, fact, {"title": str, "value": str})


def _check_inlines(path: str, inlines: list[Any]) -> None:
    if not inlines:
        _fail(path, "is empty")
    for index, inline in enumerate(inlines):
        where = f"{path}[{index}]"
        if isinstance(inline, str):
            _check_value(where, inline, str)
            continue
        if not isinstance(inline, Mapping) or inline.get("type") != "TextRun":
            _fail(where, "must be a TextRun or a string")
        _check_props(where, inline, TEXT_RUN)
        _required(where, inline, ("text",))


def _check_actions(path: str, actions: Any, allow_empty: bool = True) -> None:
    if not isinstance(actions, list):
        _fail(path, "must be a list of actions")
    if not actions and not allow_empty:
        _fail(path, "is empty")
    if len(actions) > MAX_ACTIONS:
        _fail(path, f"has {len(actions)} actions; Teams shows at most {MAX_ACTIONS}")
    for index, action in enumerate(actions):
        _check_action(f"{path}[{index}]", action)


def _check_action(path: str, action: Any, select: bool = False) -> None:
    if not isinstance(action, Mapping):
        _fail(path, "must be an action (an object)")
    kind = action.get("type")
    if kind not in ACTIONS or (select and kind == "Action.ShowCard"):
        known = ", ".join(a for a in ACTIONS if not (select and a == "Action.ShowCard"))
        _fail(_join(path, "type"), f"{kind!r} is not an action allowed here ({known})")
    _check_props(path, action, {**ACTION_COMMON, **ACTIONS[kind]})
    _required(path, action, () if select else ACTION_REQUIRED.get(kind, ()))
    if kind == "Action.ShowCard":
        _check_card(_join(path, "card"), action["card"], nested=True)


def _check_msteams(path: str, msteams: Any, texts: list[str]) -> None:
    if not isinstance(msteams, Mapping):
        _fail(path, "must be an object")
    _check_props(path, msteams, {"width": ("Full",), "entities": list})
    for index, entity in enumerate(msteams.get("entities", [])):
        where = f"{path}.entities[{index}]"
        if not isinstance(entity, Mapping) or entity.get("type") != "mention":
            _fail(where, "must be a mention entity")
        text, mentioned = entity.get("text"), entity.get("mentioned")
        if not isinstance(text, str) or not _MENTION_TEXT.match(text):
            _fail(_join(where, "text"), f"{text!r} is not <at>name</at>")
        if not isinstance(mentioned, Mapping) or not all(
            isinstance(mentioned.get(k), str) and mentioned[k] for k in ("id", "name")
        ):
            _fail(_join(where, "mentioned"), "needs the person's id and name")
        if not any(text in t for t in texts):
            _fail(_join(where, "text"), f"{text!r} does not appear in any TextBlock")


def _texts(node: Any) -> list[str]:
    if isinstance(node, Mapping):
        own = [node["text"]] if node.get("type") == "TextBlock" else []
        return own + [t for value in node.values() for t in _texts(value)]
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


def _check_card(path: str, card: Any, nested: bool = False) -> None:
    if not isinstance(card, Mapping):
        _fail(path or "card", "must be an object")
    for key in card:
        if key not in CARD_KEYS:
            _fail(_join(path, key), "is not a property of AdaptiveCard")
    if card.get("type") != "AdaptiveCard":
        _fail(_join(path, "type"), f"{card.get('type')!r} is not 'AdaptiveCard'")
    if not nested or "version" in card:
        version = card.get("version")
        match = _VERSION.match(version) if isinstance(version, str) else None
        if match is None:
            _fail(_join(path, "version"), f"{version!r} is not a version such as '1.5'")
        number = (int(match.group(1)), int(match.group(2)))
        if number > MAX_VERSION:
            _fail(_join(path, "version"), f"{version!r} is newer than Teams renders (1.5)")
    if not nested:
        schema = card.get("$schema")
        if not isinstance(schema, str) or not schema:
            _fail(_join(path, "$schema"), "is required")
    _check_elements(_join(path, "body"), card.get("body", []), BODY_TYPES)
    if "actions" in card:
        _check_actions(_join(path, "actions"), card["actions"])
    for key in ("fallbackText", "speak", "lang"):
        if key in card:
            _check_value(_join(path, key), card[key], str)
    if "verticalContentAlignment" in card:
        _check_value(
            _join(path, "verticalContentAlignment"), card["verticalContentAlignment"], VERTICAL
        )
    if isinstance(card.get("selectAction"), Mapping):
        _check_action(_join(path, "selectAction"), card["selectAction"], select=True)
    if "msteams" in card:
        _check_msteams(_join(path, "msteams"), card["msteams"], _texts(card.get("body", [])))
    if not card.get("body") and not card.get("actions"):
        _fail(path or "card", "has neither body nor actions")


def card_bytes(card: Mapping[str, Any]) -> int:
    """The card's JSON size: the larger of its compact UTF-8 form and the form
    botbuilder sends (``json.dumps`` defaults: ASCII only, so each non-ASCII
    character costs its ``\\uXXXX`` escape, and spaces after separators)."""
    compact = json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return max(len(compact), len(json.dumps(card)))


def assert_teams_card(card: Mapping[str, Any]) -> None:
    """Teams would render this card: schema rules, version, action limits, size."""
    _check_card("", card)
    size = card_bytes(card)
    if size > MAX_BYTES:
        _fail("card", f"is {size:,} bytes of JSON; Teams needs it under {MAX_BYTES:,}")


# --- reading a card back ----------------------------------------------------------------

_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(text: str) -> str:
    """What a TextBlock shows for text escaped as guidebot escapes it: backslash
    escapes resolved and the blank line between paragraphs read as a line break."""
    return _ESCAPED.sub(r"\1", text).replace("\n\n", "\n")


_LIVE = re.compile(
    r"[*_`~\[\]]|\{\{|&#?[A-Za-z0-9]+;|<[A-Za-z/!?]|^\s*(?:[-+>#]|\d{1,9}[.)])(?:\s|$)",
    re.MULTILINE | re.IGNORECASE,
)


def live_markdown(text: str) -> list[str]:
    """The Markdown (or mention markup) a TextBlock's text would act on: every
    unescaped marker. Empty for text that shows exactly as written."""
    return _LIVE.findall(_ESCAPED.sub("", text))


def text_blocks(node: Any) -> list[dict[str, Any]]:
    """Every TextBlock in a card, in document order."""
    if isinstance(node, Mapping):
        own = [dict(node)] if node.get("type") == "TextBlock" else []
        return own + [block for value in node.values() for block in text_blocks(value)]
    if isinstance(node, list):
        return [block for item in node for block in text_blocks(item)]
    return []


def submit_actions(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every Action.Submit, in the order Teams shows them."""
    found: list[dict[str, Any]] = []
    for element in card.get("body", []):
        if isinstance(element, Mapping) and element.get("type") == "ActionSet":
            found += [dict(a) for a in element["actions"] if a.get("type") == "Action.Submit"]
    found += [dict(a) for a in card.get("actions", []) if a.get("type") == "Action.Submit"]
    return found
