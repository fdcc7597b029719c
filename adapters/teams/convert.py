"""Bot Framework activities to and from the core's messages, as pure functions.

Nothing here touches the network or needs botbuilder objects. An activity as it
arrives at ``/api/messages`` (a plain dict with the camelCase keys of the Bot
Framework JSON) comes in and an ``Incoming`` or ``Click`` goes out; a ``Reply``
comes in and an Adaptive Card (``render``) or a whole message activity
(``render_activity``) goes out, always within what Teams accepts: card version
1.5, at most 6 actions in a set, and a card under 25,000 bytes.

How text is kept safe, in one place:

- What staff type reaches us as Teams HTML: the bot's mention as ``<at>name</at>``,
  ``<p>``, ``<div>`` and ``<br>`` wrappers, links as ``<a href>``, and entities such
  as ``&nbsp;`` and ``&amp;``. ``strip_mentions`` turns that into plain text: the
  bot's own mention is removed, other mentions become the person's name, a link
  shows its real address (``click here (https://evil.example)``), tags become
  spaces and entities become characters, so the core searches what was meant.
- TextBlocks render a subset of Markdown, so every text we put in one goes
  through ``escape`` (what that escapes is listed on the function). Policy text,
  which we trust, is escaped and nothing more, so a clause reads exactly as
  written: "1." at the start of a line is not a list and "*" is not bold.
- Anything staff typed is echoed through ``neutralise``: zero-width and text
  direction characters are removed, ``<at>`` tags become the plain name, then it
  is escaped. A question such as ``**click** [here](https://evil)`` shows
  literally: no bold, and no link hiding behind a friendly label.
- No card carries ``msteams.entities``, so no card can mention (notify) anyone.
  A question passed on to a colleague says "Asked by a colleague (Teams user id
  ...)": a Teams card mention needs the person's display name as well as their
  id, and we only have the id (see ``_asked_by``).
- Button titles are plain text in Teams (no Markdown), so they are only cleaned
  of invisible characters and cut to 40 characters at a word.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapters.textfit import INVISIBLE, payload_text, split_to_fit
from bot import wording
from bot.messages import Action, Button, Click, Incoming, Kind, Platform, Quote, Reply

# --- what Teams accepts ------------------------------------------------------------------

MAX_CARD_VERSION = "1.5"
"""The newest Adaptive Card schema every Teams client renders (desktop, web, mobile)."""
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_CARD_BYTES = 25_000
"""A card's JSON, measured as botbuilder sends it (``json.dumps`` with its default
``ensure_ascii``, so a non-ASCII character counts as its ``\\uXXXX`` escape). Teams
refuses messages over about 28 KB; this leaves room for the activity around it."""
MAX_TEXT = 2000
"""Characters in one TextBlock's text, after escaping. Teams sets no hard limit, but
long clauses are split across several TextBlocks at words, which keeps each block
quick to render and lets a card end cleanly when a clause will not fit whole."""
MAX_ACTIONS = 6
"""Actions in one set (the card's own ``actions`` or an ActionSet): Teams shows six."""
MAX_ACTION_TITLE = 40
"""Characters in a button title: longer titles are cut off in Teams' narrow buttons."""
MAX_SUMMARY_QUOTE = 200
"""Characters of the clause in the notification summary."""
MAX_SUMMARY = 1000
MAX_CLICK_VALUE = 200
"""A button value we could have sent: a question id, "home" or "welcome"."""
ELLIPSIS = "…"

PLATFORM: Platform = "teams"

Element = dict[str, Any]

# --- text -----------------------------------------------------------------------------

"""Zero-width, joiner, direction and other invisible characters, which can hide
markup from a naive check or disguise a link. (Removing the zero-width joiner
splits some compound emoji into their parts.)"""

_TOKENS = re.compile(r"\S+|\s+")
_ALWAYS = re.compile(r"[\\`*_\[\]~]")
_ENTITY_LIKE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_DOUBLE_BRACE = re.compile(r"(?<=\{)\{")
_TAG_LIKE = re.compile(r"<(?=[A-Za-z/!?])")
_LINE_START_MARK = re.compile(r"^([#>+\-])")
_LINE_START_NUMBER = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_MAYBE_ESCAPED = frozenset("\\`*_[]~&{<#>+-.)")
"""Every character ``escape`` may put a backslash before: an upper bound on cost."""

_AT = re.compile(r"<at\b[^<>]*>(.*?)</at\s*>", re.IGNORECASE | re.DOTALL)
_LEADING_AT = re.compile(
    r"^(?:\s|&nbsp;|&#0*160;|&#x0*a0;)*<at\b[^<>]*>(.*?)</at\s*>", re.IGNORECASE | re.DOTALL
)
_LINK = re.compile(
    r"""<a\b[^<>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')[^<>]*>(.*?)</a\s*>""",
    re.IGNORECASE | re.DOTALL,
)
_HTML_TAG = re.compile(
    r"</?(?:p|div|br|span|b|strong|i|em|u|s|strike|del|ins|code|pre|blockquote|ol|ul|li|"
    r"h[1-6]|table|thead|tbody|tr|td|th|font|sup|sub|small|big|mark|hr|img|emoji|a)\b[^<>]*>",
    re.IGNORECASE,
)
"""The HTML Teams puts around a message. Only these tags are removed, so a typed
``a<b`` that somehow arrived unescaped is not eaten as a tag."""
_MENTION_SEPARATORS = re.compile(r"^[\s,:]+")


def _escape_line(line: str) -> str:
    line = _ALWAYS.sub(r"\\\g<0>", line)
    line = _ENTITY_LIKE.sub(r"\\&", line)
    line = _DOUBLE_BRACE.sub(r"\\{", line)
    line = _TAG_LIKE.sub(r"\\<", line)
    line = _LINE_START_MARK.sub(r"\\\1", line)
    return _LINE_START_NUMBER.sub(r"\1\\\2", line)


def escape(text: str) -> str:
    """Text to show exactly as written in a TextBlock (CommonMark backslash escapes).

    - everywhere: ``\\`` `````` ``*`` ``_`` ``[`` ``]`` ``~`` (escapes, code, bold and
      italic, links and images, strikethrough);
    - ``&`` when it would start an entity such as ``&amp;`` or ``&#42;``;
    - the second ``{`` of ``{{``, so ``{{DATE(...)}}`` is not turned into a date;
    - ``<`` before a letter, ``/``, ``!`` or ``?``, so ``<b>`` or ``<https://...>`` is
      never read as HTML or a link (a Teams client that strips HTML would drop it);
    - at the start of a line: ``#`` ``>`` ``-`` ``+`` (heading, quote, list) and the
      ``.`` or ``)`` after a number (``1.`` starting a numbered list).

    Each line is stripped of leading and trailing space (four spaces would start a
    code block) and lines are joined by a blank line, since Markdown joins lines
    that are not: every line of a clause stays a line of its own. Empty lines go.
    (Teams' mobile apps have rendered some backslash escapes literally in the past;
    a stray ``\\`` there is better than a clause that changes its meaning.)
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = (_escape_line(line.strip()) for line in text.split("\n"))
    return "\n\n".join(line for line in lines if line)


def _cost(piece: str) -> int:
    """An upper bound on how long ``piece`` is once escaped, wherever it stands."""
    if piece.isspace():
        return 2 if "\n" in piece or "\r" in piece else len(piece)
    if len(piece) == 1:
        return 2 if piece in _MAYBE_ESCAPED else 1
    return len(_escape_line(piece))


def _plain(text: str) -> str:
    """Text someone typed, without invisible characters and with ``<at>`` tags made
    plain: ``<at>Sam Jones</at>`` becomes ``Sam Jones``."""
    return _AT.sub(lambda m: m.group(1), INVISIBLE.sub("", text))


def neutralise(text: str) -> str:
    r"""Make text someone typed safe to show in a TextBlock::

        "**click** [here](https://evil)" -> "\*\*click\*\* \[here\](https://evil)"
        "<at>Head</at> 1. do this"       -> "Head 1. do this"

    Zero-width and text direction characters (U+200B, U+202E...) are removed.
    """
    return escape(_plain(text))


def _split(text: str, limit: int, cost: Callable[[str], int] = _cost) -> list[str]:
    """Cut ``text`` at whitespace into pieces each costing at most ``limit``
    (measured as escaped for a TextBlock by default)."""
    return split_to_fit(text, limit, cost)


def _clip(text: str, limit: int, cost: Callable[[str], int] = len) -> str:
    """``text`` whole if it fits in ``limit``, else cut at a word and ended with "…"."""
    text = text.strip()
    if sum(cost(t) for t in _TOKENS.findall(text)) <= limit:
        return text
    pieces = _split(text, limit - len(ELLIPSIS), cost)
    return (pieces[0] if pieces else "") + ELLIPSIS


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- incoming -------------------------------------------------------------------------


def _link(match: re.Match[str]) -> str:
    url = match.group(1) if match.group(1) is not None else match.group(2)
    label = _one_line(_HTML_TAG.sub(" ", match.group(3)))
    if not label or html.unescape(label) == html.unescape(url):
        return f" {url} "
    return f" {label} ({url}) "


def _bot_mention_texts(activity: Mapping[str, Any], bot_id: str | None) -> list[str]:
    """The exact ``<at>...</at>`` texts of the mention entities that name the bot."""
    entities = activity.get("entities")
    if bot_id is None or not isinstance(entities, list):
        return []
    found: list[str] = []
    for entity in entities:
        if not isinstance(entity, Mapping) or entity.get("type") != "mention":
            continue
        text = payload_text(entity, "text")
        if text and payload_text(entity.get("mentioned"), "id") == bot_id:
            found.append(text)
    return found


def _is_bot_name(inner: str, bot_name: str | None) -> bool:
    if not bot_name:
        return False
    shown = _one_line(html.unescape(_HTML_TAG.sub(" ", inner)))
    return shown.casefold() == _one_line(bot_name).casefold()


def strip_mentions(activity: Mapping[str, Any]) -> str:
    """A message's text as the person meant it, without the bot's mention.

    Removed: every mention entity whose ``mentioned.id`` is the bot (the
    activity's ``recipient``), wherever it stands, and any leading ``<at>`` with the
    bot's name (``Activity.serialize()`` drops the entities' details, so the name is
    what is left to go on). Other mentions become the person's name. Teams' HTML
    wrappers become spaces, links show their address, entities are decoded and
    whitespace is collapsed to single spaces.
    """
    raw = activity.get("text")
    if not isinstance(raw, str):
        return ""
    recipient = activity.get("recipient")
    bot_name = payload_text(recipient, "name")
    removed = False
    for mention in _bot_mention_texts(activity, payload_text(recipient, "id")):
        if mention in raw:
            raw = raw.replace(mention, " ")
            removed = True
    while (leading := _LEADING_AT.match(raw)) and _is_bot_name(leading.group(1), bot_name):
        raw = raw[leading.end() :]
        removed = True
    raw = _AT.sub(lambda m: f" {m.group(1)} ", raw)
    raw = _LINK.sub(_link, raw)
    raw = _HTML_TAG.sub(" ", raw)
    text = _one_line(INVISIBLE.sub("", html.unescape(raw)))
    return _MENTION_SEPARATORS.sub("", text) if removed else text


def _user_id(activity: Mapping[str, Any]) -> str | None:
    sender = activity.get("from")
    return payload_text(sender, "aadObjectId") or payload_text(sender, "id")


def _from_a_bot(activity: Mapping[str, Any]) -> bool:
    sender = activity.get("from")
    if not isinstance(sender, Mapping):
        return False
    recipient_id = payload_text(activity.get("recipient"), "id")
    return sender.get("role") == "bot" or (
        recipient_id is not None and payload_text(sender, "id") == recipient_id
    )


def _thread_root(activity: Mapping[str, Any], conversation_id: str) -> str | None:
    """The channel post a reply belongs under: the ``;messageid=`` Teams adds to a
    channel conversation's id, else ``replyToId``, else this message itself."""
    _, marker, root = conversation_id.partition(";messageid=")
    if marker and root:
        return root
    return payload_text(activity, "replyToId") or payload_text(activity, "id")


def to_incoming(activity: Mapping[str, Any], school: str) -> Incoming | None:
    """A message activity as an ``Incoming``; None to ignore the activity.

    Answered: a ``message`` from a person, in a 1:1 chat (``kind="direct"``) or in a
    channel or group chat, which reach a bot only when it is @mentioned
    (``kind="mention"``). A message that is only the bot's name reaches the core
    with empty text, so the person gets help. Ignored: every other activity type
    (``conversationUpdate``, ``installationUpdate``, ``invoke``...), anything sent
    by a bot, a card's submit (it has a ``value``: see ``to_click``) and an
    activity without a sender or conversation.

    ``user_id`` is the person's Microsoft Entra object id when Teams gives it (the
    same person in every team and chat), else their Teams id. ``thread_id`` is set
    only in channels, where replies go into the post's thread: the root post's id
    (see ``_thread_root``). Chats have no threads, so it is None there and the
    reply simply follows. ``conversation_id`` is kept exactly as Teams sent it;
    in a channel thread it carries the ``;messageid=`` that routes a reply there.
    """
    if activity.get("type") != "message" or _from_a_bot(activity):
        return None
    if activity.get("value") is not None:
        return None
    conversation = activity.get("conversation")
    user_id, conversation_id = _user_id(activity), payload_text(conversation, "id")
    if user_id is None or conversation_id is None:
        return None
    conversation_type = payload_text(conversation, "conversationType")
    kind: Kind = "direct" if conversation_type == "personal" else "mention"
    thread_id = _thread_root(activity, conversation_id) if conversation_type == "channel" else None
    return Incoming(
        platform=PLATFORM,
        school=school,
        user_id=user_id,
        text=strip_mentions(activity),
        conversation_id=conversation_id,
        kind=kind,
        thread_id=thread_id,
        event_id=payload_text(activity, "id"),
    )


def to_click(activity: Mapping[str, Any], school: str) -> Click | None:
    """A card's Action.Submit as a ``Click``. Teams sends it as a ``message`` whose
    ``value`` is the button's data, ``{"action": ..., "value": ...}``. None for
    anything else, an action we do not know or a value we could not have sent."""
    if activity.get("type") != "message" or _from_a_bot(activity):
        return None
    data = activity.get("value")
    user_id = _user_id(activity)
    if not isinstance(data, Mapping) or user_id is None:
        return None
    name, value = data.get("action"), data.get("value")
    if not isinstance(name, str) or not isinstance(value, str) or len(value) > MAX_CLICK_VALUE:
        return None
    try:
        action = Action(name)
    except ValueError:
        return None
    return Click(
        platform=PLATFORM,
        school=school,
        user_id=user_id,
        action=action,
        value=value,
        conversation_id=payload_text(activity.get("conversation"), "id"),
    )


# --- cards ------------------------------------------------------------------------------


def card_size(card: Mapping[str, Any]) -> int:
    """Bytes of a card's JSON as botbuilder sends it (see ``MAX_CARD_BYTES``)."""
    return len(json.dumps(card).encode("utf-8"))


def adaptive_card(
    body: list[Element], actions: list[Element] | None = None, summary: str = ""
) -> dict[str, Any]:
    """The card envelope every card we send uses (version, schema, full width)."""
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": MAX_CARD_VERSION,
        "body": body,
    }
    if actions:
        card["actions"] = actions
    if summary:
        card["fallbackText"] = summary
    card["msteams"] = {"width": "Full"}
    return card


def _text(text: str, **props: Any) -> Element:
    """A TextBlock of already-escaped text."""
    return {"type": "TextBlock", "text": text, "wrap": True, **props}


def _blocks(plain: str, neutral: bool = False) -> list[Element]:
    """Plain text as escaped (or neutralised) TextBlocks, split at words to fit."""
    if neutral:
        plain = _plain(plain)
    return [_text(escape(piece)) for piece in _split(plain, MAX_TEXT)]


def _quote_box(pieces: Sequence[str]) -> Element:
    """A clause, visibly a quotation: its TextBlocks on a shaded container."""
    return {"type": "Container", "style": "emphasis", "items": [_text(p) for p in pieces]}


def _quote_pieces(text: str) -> list[str]:
    return [escape(piece) for piece in _split(text, MAX_TEXT)] or [escape(ELLIPSIS)]


def _where(quote: Quote) -> str:
    where = quote.section or "general"
    return f"{where}, paragraph {quote.number}" if quote.number else where


def _policy(quote: Quote) -> str:
    return _one_line(quote.policy) or "the policy"


def _source(quote: Quote) -> Element:
    policy = escape(_clip(_policy(quote), 400, _cost))
    where = escape(_clip(_one_line(_where(quote)), 1000, _cost))
    return _text(wording.source_line(f"**{policy}**", where), isSubtle=True, size="small")


def _title(label: str, fallback: str) -> str:
    return _clip(_one_line(INVISIBLE.sub("", label)) or fallback, MAX_ACTION_TITLE)


def _submit(button: Button) -> Element:
    action: Element = {
        "type": "Action.Submit",
        "title": _title(button.label, str(button.action.value)),
        "data": {"action": str(button.action.value), "value": button.value},
    }
    if button.style == "primary":
        action["style"] = "positive"
    elif button.style == "danger":
        action["style"] = "destructive"
    return action


def _actions(buttons: Sequence[Button]) -> tuple[list[Element], list[Element]]:
    """The card's own actions (up to six), or, for more, ActionSets of six at the
    end of the body, in order."""
    submits = [_submit(button) for button in buttons]
    if len(submits) <= MAX_ACTIONS:
        return submits, []
    return [], [
        {"type": "ActionSet", "actions": submits[i : i + MAX_ACTIONS]}
        for i in range(0, len(submits), MAX_ACTIONS)
    ]


def _asked_by(reply: Reply) -> list[Element]:
    """Who asked a question passed on to a colleague. Not a mention: a Teams card
    mention needs the person's display name with their id, and a name we made up
    would show wrongly, so the card names them by id for the school to look up."""
    user = reply.extra.get("asked_by")
    if not user:
        return []
    who = wording.teams_colleague(_one_line(_plain(user)))
    return [_text(neutralise(wording.asked_by(who)), isSubtle=True, size="small")]


def _reported_by(reply: Reply) -> list[Element]:
    """Who reported a concern, on a DSL's alert: by id for a Teams colleague (as
    ``_asked_by``), in words for someone on another platform; never what they wrote."""
    key = reply.extra.get("reported_by")
    if not key:
        return []
    platform, _, ident = key.partition(":")
    if platform == PLATFORM and ident:
        who = wording.teams_colleague(_one_line(_plain(ident)))
    else:
        who = wording.concern_colleague_elsewhere(_one_line(_plain(platform)) or "another platform")
    return [_text(neutralise(wording.reported_by(who)), isSubtle=True, size="small")]


def _fits(body: list[Element], actions: list[Element], summary: str) -> bool:
    return card_size(adaptive_card(body, actions, summary)) <= MAX_CARD_BYTES


def _answer_card(reply: Reply, quote: Quote, summary: str) -> dict[str, Any]:
    """The clause, its source, the notes, "See also" and the buttons, as much as
    fits: the source, buttons and who asked always; the notes and the clause's
    start next; then the rest of the clause (ending with a line pointing to the
    policy when it will not fit whole); then whole related clauses."""
    actions, action_sets = _actions(reply.buttons)
    pieces = _quote_pieces(quote.text)
    source, asked = _source(quote), [*_asked_by(reply), *_reported_by(reply)]
    rest = [_text(escape(wording.rest_in_policy(_policy(quote))), isSubtle=True)]
    shown = pieces[:1]
    notes: list[Element] = []
    related: list[Element] = []

    def body(cut: bool) -> list[Element]:
        heading: list[Element] = []
        if related:
            see_also = escape(wording.see_also().rstrip(":"))
            heading = [_text(see_also, weight="bolder", separator=True, spacing="medium")]
        return [
            _quote_box(shown),
            *(rest if cut else []),
            source,
            *notes,
            *heading,
            *related,
            *asked,
            *action_sets,
        ]

    for note in reply.notes:
        for block in _blocks(note):
            notes.append(block)
            if not _fits(body(len(pieces) > 1), actions, summary):
                notes.pop()
    for piece in pieces[1:]:
        shown.append(piece)
        if not _fits(body(True), actions, summary):
            shown.pop()
            break
    cut = len(shown) < len(pieces)
    for other in reply.see_also:
        item = [_source(other), _quote_box(_quote_pieces(other.text))]
        related.extend(item)
        if not _fits(body(cut), actions, summary):
            del related[-len(item) :]
            break
    return adaptive_card(body(cut), actions, summary)


def _text_card(reply: Reply, summary: str) -> dict[str, Any]:
    """Any other reply: its text (neutralised, since it may carry a question
    someone typed), who asked, and the buttons; text that will not fit ends "…"."""
    actions, action_sets = _actions(reply.buttons)
    after = [*_asked_by(reply), *_reported_by(reply), *action_sets]
    texts = _blocks(reply.text, neutral=True) or [_text(escape(ELLIPSIS))]
    shown = texts[:1]
    for block in texts[1:]:
        shown.append(block)
        if not _fits([*shown, _text(ELLIPSIS), *after], actions, summary):
            shown[-1] = _text(ELLIPSIS)
            break
    return adaptive_card([*shown, *after], actions, summary)


def summary(reply: Reply) -> str:
    """The reply in one short plain text: the source and the start of the clause,
    or the start of the text. Teams shows it in notifications and the chat list."""
    quote = reply.quote
    if quote is None:
        return _clip(_one_line(_plain(reply.text)), MAX_SUMMARY)
    heading = wording.answer_heading(_policy(quote), _one_line(quote.section), quote.number)
    return _clip(f"{heading} {_clip(_one_line(quote.text), MAX_SUMMARY_QUOTE)}", MAX_SUMMARY)


def render(reply: Reply) -> dict[str, Any]:
    """A Reply as an Adaptive Card (the card itself, version 1.5).

    An answer is the clause on a shaded container (several TextBlocks when long),
    its source ("From **policy** (section, paragraph N)", small and subtle), each
    note, "See also" with each related clause under its source, who asked (for a
    question passed on) and the buttons as Action.Submit with
    ``data = {"action", "value"}``, primary as "positive" and danger as
    "destructive". Other replies are their text, who asked and the buttons. The
    card is always under ``MAX_CARD_BYTES``. ``fallbackText`` carries ``summary``.
    """
    text = summary(reply)
    if reply.quote is not None:
        return _answer_card(reply, reply.quote, text)
    return _text_card(reply, text)


def render_activity(reply: Reply) -> dict[str, Any]:
    """The message activity that carries a reply's card.

    The plain text goes in ``summary``, which Teams shows in notifications and the
    chat list, not in ``text``: Teams shows an activity's ``text`` as a message of
    its own beside the card, so the clause would appear twice. Screen readers read
    the card itself (its TextBlocks and button titles).
    """
    return {
        "type": "message",
        "summary": summary(reply),
        "attachments": [{"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "content": render(reply)}],
    }


def welcome_card(school_name: str) -> dict[str, Any]:
    """The card sent when the app is installed: what the bot does, an example, the
    safeguarding line and an "Ask a question" button (``ask_question``, "welcome")."""
    name = _one_line(school_name) or "your school"
    body = [
        _text(escape(wording.home_title(name)), size="medium", weight="bolder"),
        _text(escape(wording.teams_welcome_intro())),
        _text(escape(wording.teams_welcome_example()), isSubtle=True),
        {
            "type": "Container",
            "style": "attention",
            "items": [_text(escape(wording.home_safeguarding()), weight="bolder")],
        },
    ]
    ask = _submit(Button(wording.ask_question_label(), Action.ASK_QUESTION, "welcome"))
    return adaptive_card(body, [ask], _clip(_one_line(wording.home_title(name)), MAX_SUMMARY))
