"""Slack payloads to and from the core's messages, as pure functions.

Nothing here touches the network or imports slack_bolt. An Events API body, a
slash-command form or a ``block_actions`` payload (plain dicts) comes in and an
``Incoming`` or ``Click`` goes out; a ``Reply`` comes in and a Block Kit message
(``{"text": ..., "blocks": [...]}``) goes out, always within Slack's limits.

How text is kept safe, in one place:

- What staff type reaches us in Slack's own format: ``&``, ``<`` and ``>`` sent as
  entities, and mentions, channels and links as ``<...>`` markup. ``to_incoming``
  turns that into plain text: markup becomes readable words (``@channel``,
  ``@U123``, ``@sam``, ``#general``, ``click here (https://evil.example)``) and the
  entities become characters again, so the core searches what the person meant.
- Anything staff typed is echoed through ``neutralise``: zero-width and text
  direction characters are removed, any ``<...>`` markup is made plain as above,
  then ``&``, ``<`` and ``>`` are escaped. Nothing typed can notify a person or a
  group, or hide a link behind a friendly label: a link shows its real address.
- Policy text, which we trust, goes through ``escape`` only, so a clause is shown
  exactly as written.
- Every mrkdwn text object is sent with ``verbatim: true``, which turns off
  Slack's automatic parsing of bare words such as ``@here`` and of bare URLs.
  The only live markup is what this module writes on purpose: the
  "Asked by <@U...>" line on a question passed on to a colleague, and the
  "Reported by <@U...>" line on a DSL's concern alert.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from adapters.textfit import INVISIBLE, payload_text, split_to_fit
from bot import wording
from bot.messages import Action, Button, Click, Incoming, Kind, Platform, Quote, Reply
from bot.storage import StoredQuestion

# --- Slack's limits -----------------------------------------------------------------

MAX_BLOCKS = 50
"""Blocks in one message."""
MAX_HOME_BLOCKS = 100
"""Blocks in a Home tab (or modal) view."""
MAX_SECTION_TEXT = 3000
"""Characters in a text object (section, context element), after escaping."""
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_HEADER_TEXT = 150
MAX_ACTION_ID = 255
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK_TEXT = 3000
"""Characters in a message's top-level ``text``: Slack allows more, but it is only a
notification and screen-reader summary, so we keep it to a section's worth."""
MAX_RECENT_QUESTIONS = 5
MAX_RECENT_QUESTION_TEXT = 300
ELLIPSIS = "…"

PLATFORM: Platform = "slack"

Block = dict[str, Any]

# --- text -----------------------------------------------------------------------------

"""Zero-width, joiner, direction and other invisible characters, which can hide
markup such as ``<\u200b!channel>`` from a naive check or disguise a link.
(Removing the zero-width joiner splits some compound emoji into their parts.)"""

_MARKUP = re.compile(r"<([^<>\n]*)>")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_LEADING_MENTIONS = re.compile(r"^(?:\s*<@[^<>\n]*>[\s,:]*)+")
_TOKENS = re.compile(r"\S+|\s+")
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SUFFIXED = re.compile(r"^(?P<base>.+)-(?P<n>\d+)$")
_BROADCASTS = {"channel", "here", "everyone", "group"}


def escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` as Slack requires; nothing else changes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unescape(text: str) -> str:
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def _plain_markup(match: re.Match[str]) -> str:
    """One piece of Slack ``<...>`` markup as the words a reader would see."""
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("!"):
        name = target[1:]
        if name in _BROADCASTS:
            return f"@{name}"
        if name.startswith("subteam^"):
            return label or "@" + name.removeprefix("subteam^")
        if name.startswith("date^"):
            return label
        return label or name
    if target.startswith("@"):
        return "@" + (label.lstrip("@") or target[1:])
    if target.startswith("#"):
        return "#" + (label.lstrip("#") or target[1:])
    if _SCHEME.match(target):
        bare = target.split(":", 1)[1].lstrip("/")
        if not label or label in (target, bare):
            return label or target
        return f"{label} ({target})"
    return match.group(0)  # not Slack markup: left for escaping


def _plain(text: str) -> str:
    """Staff text with invisible characters removed and ``<...>`` markup made plain."""
    return _MARKUP.sub(_plain_markup, INVISIBLE.sub("", text))


def neutralise(text: str) -> str:
    """Make text someone typed safe to show in mrkdwn.

    Takes plain text (an ``Incoming.text`` or a stored question), removes
    zero-width and direction characters, turns any Slack markup into plain words
    and escapes ``&``, ``<`` and ``>``::

        "<!channel> hi <@U1>"          -> "@channel hi @U1"
        "<@W123|sam> in <#C1|general>" -> "@sam in #general"
        "<https://evil.example|click>" -> "click (https://evil.example)"
        "a < b & c"                    -> "a &lt; b &amp; c"

    ``@channel`` as a bare word notifies nobody: our mrkdwn is sent with
    ``verbatim: true`` and messages are posted without ``link_names``.
    """
    return escape(_plain(text))


def _decode(raw: str) -> str:
    """Slack's wire format (entities and markup) as the plain text staff typed."""
    return _unescape(_plain(raw))


def _escaped_len(text: str) -> int:
    return len(escape(text))


def _quoted_len(text: str) -> int:
    """Length added by ``text`` inside a blockquote: each new line costs ``"> "``."""
    return len(escape(text)) + 2 * text.count("\n")


def _clip(
    text: str,
    limit: int,
    cost: Callable[[str], int] = len,
    show: Callable[[str], str] = lambda s: s,
) -> str:
    """``text`` shown whole if it fits in ``limit``, else cut at a word and ended with "…"."""
    text = text.strip()
    if cost(text) <= limit:
        return show(text)
    pieces = split_to_fit(text, limit - len(ELLIPSIS), cost)
    return show(pieces[0] if pieces else "") + ELLIPSIS


def _blockquote(piece: str) -> str:
    return "\n".join("> " + escape(line) for line in piece.split("\n"))


# --- incoming -------------------------------------------------------------------------

_USER_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
"""Message subtypes that are still a person writing to us: a thread reply also
sent to the conversation, and a message with a file attached. Every other
subtype (edits, deletions, joins, bot messages...) is ignored."""


def _bot_user_ids(body: Mapping[str, Any]) -> set[str]:
    """The bot's own user ids, from the ``authorizations`` of an Events API body."""
    found: set[str] = set()
    authorizations = body.get("authorizations")
    if isinstance(authorizations, list):
        for authorization in authorizations:
            user_id = payload_text(authorization, "user_id")
            if user_id and isinstance(authorization, Mapping) and authorization.get("is_bot"):
                found.add(user_id)
    return found


def _without_bot_mentions(raw: str, bot_ids: Iterable[str]) -> str:
    for bot_id in bot_ids:
        raw = re.sub(rf"<@{re.escape(bot_id)}(?:\|[^<>\n]*)?>[\s,:]*", "", raw)
    return raw


def to_incoming(body: Mapping[str, Any], school: str) -> Incoming | None:
    """An Events API body or a slash command as an ``Incoming``; None to ignore it.

    Answered: a direct message (``message`` in a conversation of type ``im``), an
    ``app_mention`` (leading mentions removed; the reply goes in a thread) and a
    slash command (``kind="command"``; no event id, since a ``trigger_id`` is not
    a delivery id). Ignored: bots (including ourselves), edits, deletions, joins
    and other subtypes, messages without text, and messages in channels, which
    reach us as ``app_mention`` when they are meant for us.

    The text is decoded into what the person typed (see the module notes); the
    bot's own mention is removed wherever it appears.
    """
    if "command" in body and "text" in body:
        return _command(body, school)
    if body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if not isinstance(event, Mapping):
        return None
    if event.get("bot_id") or event.get("bot_profile") or event.get("hidden"):
        return None
    subtype = event.get("subtype")
    if subtype is not None and subtype not in _USER_SUBTYPES:
        return None
    user_id, channel, raw = (
        payload_text(event, "user"),
        payload_text(event, "channel"),
        payload_text(event, "text"),
    )
    if user_id is None or channel is None or raw is None or not raw.strip():
        return None
    raw = _without_bot_mentions(INVISIBLE.sub("", raw), _bot_user_ids(body))
    kind: Kind
    if event.get("type") == "app_mention":
        kind = "mention"
        raw = _LEADING_MENTIONS.sub("", raw)
        thread_id = payload_text(event, "thread_ts") or payload_text(event, "ts")
    elif event.get("type") == "message" and event.get("channel_type") == "im":
        kind = "direct"
        thread_id = payload_text(event, "thread_ts")
    else:
        return None
    return Incoming(
        platform=PLATFORM,
        school=school,
        user_id=user_id,
        text=_decode(raw).strip(),
        conversation_id=channel,
        kind=kind,
        thread_id=thread_id,
        event_id=payload_text(body, "event_id"),
    )


def _command(body: Mapping[str, Any], school: str) -> Incoming | None:
    user_id, channel = payload_text(body, "user_id"), payload_text(body, "channel_id")
    text = body.get("text")
    if user_id is None or channel is None or not isinstance(text, str):
        return None
    return Incoming(
        platform=PLATFORM,
        school=school,
        user_id=user_id,
        text=_decode(text).strip(),
        conversation_id=channel,
        kind="command",
    )


def _action_of(action_id: object) -> Action | None:
    """The Action behind an action_id, including the ``-1``, ``-2`` that ``render``
    adds when one action appears twice in a message."""
    if not isinstance(action_id, str):
        return None
    suffixed = _SUFFIXED.match(action_id)
    for candidate in (action_id, suffixed.group("base") if suffixed else ""):
        try:
            return Action(candidate)
        except ValueError:
            continue
    return None


def to_click(body: Mapping[str, Any], school: str) -> Click | None:
    """A ``block_actions`` payload as a ``Click``: the first of its actions that
    is one of ours. None for any other payload or an action we do not know."""
    if body.get("type", "block_actions") != "block_actions":
        return None
    user_id = payload_text(body.get("user"), "id")
    actions = body.get("actions")
    if user_id is None or not isinstance(actions, list):
        return None
    for item in actions:
        if not isinstance(item, Mapping):
            continue
        action = _action_of(item.get("action_id"))
        if action is None:
            continue
        value = item.get("value")
        return Click(
            platform=PLATFORM,
            school=school,
            user_id=user_id,
            action=action,
            value=value if isinstance(value, str) else "",
            conversation_id=payload_text(body.get("channel"), "id")
            or payload_text(body.get("container"), "channel_id"),
        )
    return None


# --- blocks ---------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(text, limit), "emoji": True}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _divider() -> Block:
    return {"type": "divider"}


def _sections(plain: str) -> list[Block]:
    """Plain text as escaped sections, split at words to fit."""
    return [_section(escape(p)) for p in split_to_fit(plain, MAX_SECTION_TEXT, _escaped_len)]


def _quote_sections(text: str) -> list[Block]:
    """A clause as blockquote sections, split at words rather than truncated."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    pieces = split_to_fit(text, MAX_SECTION_TEXT, _quoted_len, overhead=2) or [""]
    return [_section(_blockquote(p)) for p in pieces]


def _where(quote: Quote) -> str:
    where = quote.section or "general"
    return f"{where}, paragraph {quote.number}" if quote.number else where


def _source(quote: Quote) -> Block:
    policy = quote.policy.strip() or "the policy"
    text = wording.source_line(f"*{escape(policy)}*", escape(_where(quote)))
    return _context(_clip(text, MAX_SECTION_TEXT))


def _button(button: Button, action_id: str) -> dict[str, Any]:
    label = button.label.strip() or str(button.action.value)
    element: dict[str, Any] = {
        "type": "button",
        "text": _plain_text(label, MAX_BUTTON_TEXT),
        "action_id": action_id[:MAX_ACTION_ID],
    }
    if button.value:
        element["value"] = button.value[:MAX_BUTTON_VALUE]
    if button.style:
        element["style"] = button.style
    return element


def _actions(buttons: Sequence[Button]) -> list[Block]:
    """Buttons in actions blocks of at most 25. An action used twice gets
    ``-1``, ``-2``... on its action_id (unique across the message); the value
    is kept, and ``to_click`` reads the action back without the suffix."""
    seen: dict[str, int] = {}
    elements: list[dict[str, Any]] = []
    for button in buttons:
        base = str(button.action.value)
        count = seen.get(base, 0)
        seen[base] = count + 1
        elements.append(_button(button, base if count == 0 else f"{base}-{count}"))
    return [
        {"type": "actions", "elements": elements[i : i + MAX_ACTIONS_ELEMENTS]}
        for i in range(0, len(elements), MAX_ACTIONS_ELEMENTS)
    ]


def _asked_by(reply: Reply) -> list[Block]:
    user = reply.extra.get("asked_by")
    if not user:
        return []
    who = f"<@{user}>" if _SLACK_USER_ID.match(user) else neutralise(user)
    return [_context(_clip(wording.asked_by(who), MAX_SECTION_TEXT))]


def _reported_by(reply: Reply) -> list[Block]:
    """Who reported a concern, on a DSL's alert: a mention for a Slack member,
    words for someone on another platform; never anything they wrote."""
    key = reply.extra.get("reported_by")
    if not key:
        return []
    platform, _, ident = key.partition(":")
    if platform == PLATFORM and _SLACK_USER_ID.match(ident):
        who = f"<@{ident}>"
    else:
        who = escape(wording.concern_colleague_elsewhere(_plain(platform) or "another platform"))
    return [_context(_clip(wording.reported_by(who), MAX_SECTION_TEXT))]


def _see_also(quotes: Sequence[Quote], room: int) -> list[Block]:
    """The related clauses, whole ones only, in at most ``room`` blocks."""
    heading = [_divider(), _section(f"*{escape(wording.see_also().rstrip(':'))}*")]
    blocks: list[Block] = []
    for quote in quotes:
        item = [_source(quote), *_quote_sections(quote.text)]
        if len(heading) + len(blocks) + len(item) > room:
            break
        blocks += item
    return [*heading, *blocks] if blocks else []


def _cap(blocks: list[Block], limit: int) -> list[Block]:
    """At most ``limit`` blocks, always keeping the trailing actions (buttons)."""
    if len(blocks) <= limit:
        return blocks
    tail = 0
    while tail < len(blocks) and blocks[-1 - tail]["type"] == "actions":
        tail += 1
    tail = min(tail, limit)
    return blocks[: limit - tail] + blocks[len(blocks) - tail :]


def _answer_blocks(reply: Reply, quote: Quote) -> list[Block]:
    notes = [block for note in reply.notes for block in _sections(note)]
    after = [*_asked_by(reply), *_reported_by(reply), *_actions(reply.buttons)]
    room = MAX_BLOCKS - 1 - len(notes) - len(after)  # 1: the source line
    quoted = _quote_sections(quote.text)
    if len(quoted) > room:
        policy = escape(quote.policy.strip() or "policy")
        quoted = [*quoted[: max(room - 1, 1)], _context(wording.rest_in_policy(policy))]
    related = _see_also(reply.see_also, room - len(quoted))
    return _cap([*quoted, _source(quote), *notes, *related, *after], MAX_BLOCKS)


def _fallback(reply: Reply) -> str:
    quote = reply.quote
    if quote is None:
        plain = _plain(reply.text)
    else:
        heading = wording.answer_heading(quote.policy, quote.section, quote.number)
        plain = "\n".join([f"{heading} {quote.text}", *reply.notes])
    return _clip(plain, MAX_FALLBACK_TEXT, _escaped_len, escape)


def render(reply: Reply) -> dict[str, Any]:
    """A Reply as a Slack message: ``{"text": fallback, "blocks": [...]}``.

    An answer is the clause as a blockquote (split into several sections when
    long; if even 50 blocks cannot hold it, a closing line says the rest is in
    the policy), its source, each note, any "See also" clauses and the buttons.
    Other replies are their text and buttons. Policy text is escaped; the text
    of other replies is neutralised, since it may carry a question someone
    typed. ``text`` holds the source and the start of the clause, for
    notifications and screen readers.
    """
    if reply.quote is not None:
        blocks = _answer_blocks(reply, reply.quote)
    else:
        plain = split_to_fit(_plain(reply.text), MAX_SECTION_TEXT, _escaped_len)
        body = [_section(escape(piece)) for piece in plain]
        after = [*_asked_by(reply), *_reported_by(reply), *_actions(reply.buttons)]
        blocks = _cap([*body, *after], MAX_BLOCKS)
    return {"text": _fallback(reply), "blocks": blocks}


# --- App Home -------------------------------------------------------------------------


def _asked_on(asked_at: str) -> str | None:
    try:
        when = datetime.fromisoformat(asked_at)
    except ValueError:
        return None
    return f"{when.day} {when:%B %Y}"


def _recent_line(question: StoredQuestion) -> str:
    text = _clip(_plain(question.text), MAX_RECENT_QUESTION_TEXT, _escaped_len, escape)
    note = wording.recent_question_note(_asked_on(question.asked_at), question.answered)
    return f"• {text}" + (f" _({escape(note)})_" if note else "")


def _role_panels(*, is_dsl: bool, is_leader: bool) -> list[Block]:
    """The place for the DSL's concerns panel and the leaders' broadcasts panel.
    For now each role only gets a line saying what will appear here."""
    blocks: list[Block] = []
    if is_dsl:
        blocks.append(_context(escape(wording.dsl_panel_note())))
    if is_leader:
        blocks.append(_context(escape(wording.leader_panel_note())))
    return blocks


def home_view(
    school_name: str,
    recent: Sequence[StoredQuestion],
    *,
    is_dsl: bool = False,
    is_leader: bool = False,
) -> dict[str, Any]:
    """The App Home tab: what the bot does, your last five questions, the DSL's
    and leaders' panels (``is_dsl``, ``is_leader``) and two buttons."""
    lines = [_recent_line(q) for q in recent[:MAX_RECENT_QUESTIONS]]
    listing = "\n".join(lines) if lines else escape(wording.no_recent_questions())
    blocks: list[Block] = [
        {"type": "header", "text": _plain_text(wording.home_title(school_name), MAX_HEADER_TEXT)},
        _section(escape(wording.home_intro())),
        _context(escape(wording.home_safeguarding())),
        _divider(),
        _section(f"*{escape(wording.recent_questions_heading())}*"),
        _section(listing),
        *_role_panels(is_dsl=is_dsl, is_leader=is_leader),
        *_actions(
            [
                Button(wording.ask_question_label(), Action.ASK_QUESTION, "home"),
                Button(wording.report_concern_label(), Action.REPORT_CONCERN, "home", "danger"),
            ]
        ),
    ]
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}
