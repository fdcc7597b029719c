"""What every platform adapter converts into and renders from.

Adapters turn a Slack event or a Teams activity into an ``Incoming`` and turn a
``Reply`` into Block Kit or an Adaptive Card. Nothing here knows any platform,
so the same answer reads the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

Platform = Literal["slack", "teams", "console"]
Kind = Literal["direct", "mention", "command"]


class Action(StrEnum):
    """What a button asks the bot to do. The value travels with the button."""

    HELPFUL = "feedback_helpful"
    NOT_HELPFUL = "feedback_not_helpful"
    REPORT_CONCERN = "report_concern"
    PASS_TO_CONTACT = "pass_to_contact"
    ASK_QUESTION = "ask_question"
    CONCERN_VIEW = "concern_view"
    CONCERN_ACKNOWLEDGE = "concern_acknowledge"
    CONCERN_NOTE = "concern_note"
    CONCERN_CLOSE = "concern_close"
    """The four DSL buttons on an alert; their value is the report's reference."""
    BROADCAST_ACK = "broadcast_ack"
    """"I have read and understood" under a broadcast; the value is the broadcast id."""
    BROADCAST_NEW = "broadcast_new"
    """A leader's "New broadcast" button; the value is a policy key whose changes
    should prefill the form, or empty."""


@dataclass(frozen=True)
class Incoming:
    """One message from a member of staff, whatever the platform."""

    platform: Platform
    school: str
    user_id: str
    text: str
    conversation_id: str
    kind: Kind = "direct"
    thread_id: str | None = None
    event_id: str | None = None
    """The platform's id for this delivery, used to ignore retries."""


@dataclass(frozen=True)
class Click:
    """A button pressed by a member of staff."""

    platform: Platform
    school: str
    user_id: str
    action: Action
    value: str
    conversation_id: str | None = None


@dataclass(frozen=True)
class FormRequest:
    """A click that should open a form (a Slack modal, a Teams card form)."""

    form: Literal["concern", "concern_note", "concern_close", "broadcast"]
    prefill: str = ""
    """For a concern: the member's own message, kept only in memory, never stored."""
    ref: str = ""
    """For a note or closure: which report."""


@dataclass(frozen=True)
class Button:
    label: str
    action: Action
    value: str
    style: Literal["primary", "danger"] | None = None


@dataclass(frozen=True)
class Quote:
    """A clause quoted verbatim, with where it comes from."""

    text: str
    policy: str
    section: str
    number: str | None = None

    @property
    def source(self) -> str:
        where = self.section or "general"
        if self.number:
            where = f"{where}, paragraph {self.number}"
        return f"{self.policy} ({where})"


@dataclass(frozen=True)
class Reply:
    """Everything the bot says in answer to one message.

    ``text`` is a complete plain-text version (notifications, screen readers,
    platforms without rich layouts); the other fields are its structure.
    """

    text: str
    quote: Quote | None = None
    notes: tuple[str, ...] = ()
    see_also: tuple[Quote, ...] = ()
    buttons: tuple[Button, ...] = ()
    ephemeral: bool = False
    question_id: int | None = None
    kind: Literal["answer", "not_found", "concern", "help", "notice"] = "answer"
    extra: dict[str, str] = field(default_factory=dict)
