"""Confidential safeguarding concerns: intake, encryption, routing, audit.

The contract every adapter relies on. A report is written (encrypted) before
the reporter is told it was sent; its alerts go through the outbox in the same
transaction, so an accepted report is never lost. Only the people a report was
routed to (the school's DSL roles, or for allegations the headteacher / chair
of governors) may view, acknowledge, add notes, close or export it; every
attempt, allowed or refused, is written to an append-only audit trail.
Report content never appears in logs, channels, error messages or the digest.

Routing follows Keeping Children Safe in Education:
- about a pupil or another adult: the DSL(s);
- about a member of staff: the headteacher and the DSL(s);
- about the headteacher: the chair of governors;
- about a DSL: the headteacher and the deputy DSL(s);
never to the person the report is about. Whoever handles an allegation about
an adult in school is shown the LADO contact. If nobody acknowledges within
the school's limit (30 minutes, 10 if urgent), the deputies are alerted, then
the headteacher (never the subject), each step recorded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from knowledge.errors import GuidebotError

Category = Literal["pupil", "staff", "adult"]
AboutRole = Literal["none", "headteacher", "dsl"]
State = Literal["open", "acknowledged", "closed"]
ExportFormat = Literal["markdown", "json"]


@dataclass(frozen=True)
class Person:
    """Someone on a platform: ``slack:U0123``, ``teams:<object id>``, ``console:console``."""

    platform: str
    id: str

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"

    @classmethod
    def parse(cls, key: str) -> Person:
        platform, sep, ident = key.partition(":")
        if not sep or not platform or not ident:
            raise GuidebotError(f"{key!r} is not a person (expected platform:id, e.g. slack:U0123)")
        return cls(platform, ident)


@dataclass(frozen=True)
class ConcernForm:
    """What schools' recording systems ask."""

    about: Category
    about_name: str
    """Name or initials of the person it is about."""
    what: str
    """What was seen, heard or said, in the person's own words."""
    when_where: str
    immediate_danger: bool
    actions_taken: str
    about_role: AboutRole = "none"
    """For a concern about staff: is it about the headteacher or a DSL?"""
    about_person: str | None = None
    """When about a DSL or the headteacher: their person key, so they are never told."""


@dataclass(frozen=True)
class Note:
    at: str
    by: str
    text: str


@dataclass(frozen=True)
class AuditEntry:
    at: str
    actor: str
    action: str
    """submitted, alerted, viewed, acknowledged, noted, escalated, closed, exported, refused..."""
    allowed: bool
    detail: str = ""
    """Never report content: who, which step, which format."""


@dataclass(frozen=True)
class ConcernView:
    """A decrypted report, for the people allowed to see it."""

    ref: str
    school: str
    created_at: str
    urgent: bool
    reporter: Person
    form: ConcernForm
    state: State
    recipients: tuple[Person, ...]
    acknowledged_by: Person | None
    acknowledged_at: str | None
    notes: tuple[Note, ...]
    outcome: str | None
    closed_at: str | None


@dataclass(frozen=True)
class Submitted:
    ref: str
    urgent: bool
    recipients: tuple[Person, ...]


class AccessRefused(GuidebotError):
    """Someone outside the report's DSL roles tried to see or change it. The
    message names the reference only, never content."""


class UnknownConcern(GuidebotError):
    """No report with that reference."""
