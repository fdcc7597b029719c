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

Storage: the report (every field of the form), notes and the outcome are
sealed with the installation's SecretBox, each bound to its reference and
field, so nothing a member of staff wrote is ever in the database file in
clear. What stays in clear is what routing, escalation and the digest need:
the school, reference, times, urgency, category ("pupil", "staff", "adult"),
whether it is about the headteacher or a DSL, who reported it and who it was
sent to (person keys). The audit table refuses UPDATE and DELETE.

Concurrency: every change is one transaction, and every message it causes is
written to the outbox in that same transaction under a unique dedupe key, so
a retry, a double click or two sweeps running at once never send twice.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args

import sqlite_utils

from bot import wording
from bot.config import SafeguardingSettings
from bot.crypto import SecretBox
from bot.messages import Action, Button, Click, FormRequest, Reply
from bot.outbox import OutgoingMessage, reply_to_data
from knowledge.errors import GuidebotError
from knowledge.store import run_migrations

if TYPE_CHECKING:
    from bot.outbox import Outbox

log = logging.getLogger(__name__)

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
    closed_by: Person | None = None


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


class ConcernFormError(GuidebotError):
    """A report that cannot be accepted as it stands. ``field`` names the form
    field (as in ConcernForm) so a form can show the message beside it; the
    message never repeats what was typed."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class NoRecipients(GuidebotError):
    """Nobody is set up to receive this school's concerns (nothing was stored)."""


# --- the schema -----------------------------------------------------------------------


def _m001_concerns(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE concerns (
            id INTEGER PRIMARY KEY,
            school TEXT NOT NULL,
            ref TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            urgent INTEGER NOT NULL,
            category TEXT NOT NULL,
            about_role TEXT NOT NULL,
            reporter TEXT NOT NULL,
            content TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'closed')),
            acknowledged_by TEXT,
            acknowledged_at TEXT,
            closed_by TEXT,
            closed_at TEXT,
            outcome TEXT,
            recipients TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX concerns_state ON concerns (state, created_at)")
    db.execute("CREATE INDEX concerns_school ON concerns (school, created_at)")
    db.execute(
        """
        CREATE TABLE concern_notes (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL REFERENCES concerns (ref),
            seq INTEGER NOT NULL,
            at TEXT NOT NULL,
            by TEXT NOT NULL,
            text TEXT NOT NULL,
            UNIQUE (ref, seq)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE concern_escalations (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL REFERENCES concerns (ref),
            step INTEGER NOT NULL,
            at TEXT NOT NULL,
            recipients TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            UNIQUE (ref, step)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE concern_audit (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            allowed INTEGER NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX concern_audit_ref ON concern_audit (ref, id)")
    db.execute(
        """
        CREATE TRIGGER concern_audit_no_update BEFORE UPDATE ON concern_audit
        BEGIN SELECT RAISE(ABORT, 'concern_audit is append-only'); END
        """
    )
    db.execute(
        """
        CREATE TRIGGER concern_audit_no_delete BEFORE DELETE ON concern_audit
        BEGIN SELECT RAISE(ABORT, 'concern_audit is append-only'); END
        """
    )
    db.execute("CREATE TABLE concern_refs (year INTEGER PRIMARY KEY, last INTEGER NOT NULL)")


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("concerns_m001_concerns", _m001_concerns),
)
"""Named, ordered, applied once each. Append; never edit or reorder."""


# --- routing ----------------------------------------------------------------------------

SYSTEM_ACTOR = "guidebot"
REF_RE = re.compile(r"^C-\d{4}-\d{4,}$")
FIELD_LIMITS = {"about_name": 200, "what": 10_000, "when_where": 2_000, "actions_taken": 10_000}
"""The longest answer accepted for each text field, in characters."""
TEXT_LIMIT = 10_000
"""The longest note or outcome."""
RouteName = Literal["dsl", "headteacher-and-dsl", "chair-of-governors", "headteacher-and-deputies"]
Fallback = Literal["dsl", "deputies", "headteacher", "chair-of-governors"]


def now() -> datetime:
    return datetime.now(UTC)


def person_key(person: Person | str) -> str:
    """A person's key as settings hold it (Teams object ids are compared in lower case)."""
    key = person if isinstance(person, str) else person.key
    platform, _, ident = key.partition(":")
    return f"{platform}:{ident.lower()}" if platform == "teams" else key


def _unique(keys: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(keys))


def subjects(form: ConcernForm, settings: SafeguardingSettings) -> frozenset[str]:
    """Who the report may be about, so never told of it. When an allegation about
    the headteacher or a DSL does not say which person, every holder of that
    role is treated as its subject."""
    about: set[str] = set()
    if form.about_person:
        about.add(person_key(form.about_person))
    elif form.about == "staff" and form.about_role == "headteacher":
        about.update(settings.headteacher)
    elif form.about == "staff" and form.about_role == "dsl":
        about.update(settings.dsl)
    return frozenset(about)


@dataclass(frozen=True)
class Route:
    """Who a new report goes to, and how that was decided."""

    name: RouteName
    recipients: tuple[str, ...]
    fallback: Fallback | None = None
    """Set when the KCSIE route had nobody (e.g. no chair of governors configured)."""


def route(form: ConcernForm, settings: SafeguardingSettings) -> Route:
    """Keeping Children Safe in Education's routing, never to the subject.

    If the route's role is empty (or holds only the subject), the report falls
    back to the DSL(s), then to the deputies, then to the headteacher(s) and,
    for an allegation about staff only, the chair of governors: the first of
    these with anyone in it who is not the subject. If that leaves nobody,
    ``recipients`` is empty and ``submit`` refuses the report.
    """
    name: RouteName
    if form.about == "staff" and form.about_role == "headteacher":
        name, primary = "chair-of-governors", settings.chair_of_governors
    elif form.about == "staff" and form.about_role == "dsl":
        name, primary = "headteacher-and-deputies", settings.headteacher + settings.deputies
    elif form.about == "staff":
        name, primary = "headteacher-and-dsl", settings.headteacher + settings.dsl
    else:
        name, primary = "dsl", settings.dsl
    excluded = subjects(form, settings)
    people = _unique(k for k in primary if k not in excluded)
    if people:
        return Route(name, people)
    fallbacks: list[tuple[Fallback, tuple[str, ...]]] = [
        ("dsl", settings.dsl),
        ("deputies", settings.deputies),
        ("headteacher", settings.headteacher),
    ]
    if form.about == "staff":
        fallbacks.append(("chair-of-governors", settings.chair_of_governors))
    for fallback, role in fallbacks:
        people = _unique(k for k in role if k not in excluded)
        if people:
            return Route(name, people, fallback)
    return Route(name, ())


def validate(form: ConcernForm) -> ConcernForm:
    """The form with its answers trimmed, or ConcernFormError naming the field."""
    labels = wording.CONCERN_FIELDS
    if form.about not in get_args(Category):
        raise ConcernFormError("about", wording.concern_field_invalid(labels["about"]))
    if form.about_role not in get_args(AboutRole):
        raise ConcernFormError("about_role", wording.concern_field_invalid(labels["about_role"]))
    if not isinstance(form.immediate_danger, bool):
        raise ConcernFormError(
            "immediate_danger", wording.concern_field_invalid(labels["immediate_danger"])
        )
    cleaned: dict[str, str] = {}
    for name, limit in FIELD_LIMITS.items():
        value = getattr(form, name)
        if not isinstance(value, str):
            raise ConcernFormError(name, wording.concern_field_invalid(labels[name]))
        value = value.strip()
        if name in ("about_name", "what") and not value:
            raise ConcernFormError(name, wording.concern_field_missing(labels[name]))
        if len(value) > limit:
            raise ConcernFormError(name, wording.concern_field_too_long(labels[name], limit))
        cleaned[name] = value
    about_person = form.about_person.strip() if form.about_person else None
    if about_person:
        try:
            about_person = person_key(Person.parse(about_person))
        except GuidebotError:
            raise ConcernFormError(
                "about_person", wording.concern_field_invalid(labels["about_name"])
            ) from None
    return replace(
        form,
        about_name=cleaned["about_name"],
        what=cleaned["what"],
        when_where=cleaned["when_where"],
        actions_taken=cleaned["actions_taken"],
        about_role=form.about_role if form.about == "staff" else "none",
        about_person=about_person or None,
    )


def _form_data(form: ConcernForm) -> dict[str, Any]:
    return {
        "about": form.about,
        "about_role": form.about_role,
        "about_name": form.about_name,
        "about_person": form.about_person,
        "what": form.what,
        "when_where": form.when_where,
        "immediate_danger": form.immediate_danger,
        "actions_taken": form.actions_taken,
    }


def _form_from(data: dict[str, Any]) -> ConcernForm:
    return ConcernForm(
        about=data["about"],
        about_name=data["about_name"],
        what=data["what"],
        when_where=data["when_where"],
        immediate_danger=bool(data["immediate_danger"]),
        actions_taken=data["actions_taken"],
        about_role=data["about_role"],
        about_person=data.get("about_person"),
    )


# --- what people are sent ------------------------------------------------------------


def _dsl_buttons(ref: str, state: State = "open") -> tuple[Button, ...]:
    buttons = [Button(wording.concern_view_button(), Action.CONCERN_VIEW, ref, "primary")]
    if state == "open":
        buttons.append(
            Button(wording.concern_acknowledge_button(), Action.CONCERN_ACKNOWLEDGE, ref)
        )
    buttons.append(Button(wording.concern_note_button(), Action.CONCERN_NOTE, ref))
    if state != "closed":
        buttons.append(
            Button(wording.concern_close_with_outcome_button(), Action.CONCERN_CLOSE, ref)
        )
    return tuple(buttons)


def _form_lines(form: ConcernForm) -> list[str]:
    labels = wording.CONCERN_FIELDS
    lines = [
        wording.concern_field(labels["about_name"], form.about_name),
        wording.concern_field(labels["what"], form.what),
    ]
    if form.when_where:
        lines.append(wording.concern_field(labels["when_where"], form.when_where))
    lines.append(
        wording.concern_field(
            labels["immediate_danger"], wording.concern_yes_no(form.immediate_danger)
        )
    )
    if form.actions_taken:
        lines.append(wording.concern_field(labels["actions_taken"], form.actions_taken))
    return lines


def alert_reply(
    ref: str,
    form: ConcernForm,
    reporter: str,
    settings: SafeguardingSettings,
    escalation: tuple[int, int] | None = None,
) -> Reply:
    """The message a DSL (or, on escalation, a deputy or head) is sent.

    Never the report's content unless the school set show_content_in_alert.
    ``escalation`` is (step, minutes since the report) for an escalation.
    """
    lines: list[str] = []
    if escalation is not None:
        lines.append(wording.concern_escalation_heading(ref, escalation[1]))
    else:
        lines.append(wording.concern_alert_heading(ref))
    if form.immediate_danger:
        lines.append(wording.concern_alert_urgent())
    lines.append(wording.concern_alert_about(wording.concern_about(form.about, form.about_role)))
    if form.about == "staff" and settings.lado:
        lines.append(wording.concern_lado(settings.lado))
    if settings.show_content_in_alert:
        lines.extend(_form_lines(form))
    else:
        lines.append(wording.concern_alert_next())
    extra = {
        "concern_ref": ref,
        "reported_by": reporter,
        "urgent": "true" if form.immediate_danger else "false",
    }
    if escalation is not None:
        extra["escalation_step"] = str(escalation[0])
    return Reply("\n".join(lines), buttons=_dsl_buttons(ref), kind="notice", extra=extra)


def view_reply(view: ConcernView, mention: Callable[[str], str] = str) -> Reply:
    """A report as its handlers read it (after ``Concerns.view``); ephemeral.

    ``mention`` turns a person key into the platform's way of naming them."""
    form = view.form
    lines = [wording.concern_view_heading(view.ref, view.state)]
    if view.urgent:
        lines.append(wording.concern_alert_urgent())
    lines.append(wording.concern_alert_about(wording.concern_about(form.about, form.about_role)))
    lines.append(wording.reported_by(f"{mention(view.reporter.key)}, {view.created_at}"))
    lines.extend(_form_lines(form))
    if view.acknowledged_by is not None and view.acknowledged_at is not None:
        lines.append(
            wording.concern_view_acknowledged(
                f"{mention(view.acknowledged_by.key)}, {view.acknowledged_at}"
            )
        )
    for note in view.notes:
        lines.append(wording.concern_view_note(f"{note.at}, {mention(note.by)}", note.text))
    if view.outcome is not None and view.closed_at is not None:
        lines.append(wording.concern_view_outcome(view.closed_at, view.outcome))
    extra = {"concern_ref": view.ref, "reported_by": view.reporter.key}
    if view.acknowledged_by is not None:
        extra["acknowledged_by"] = view.acknowledged_by.key
    return Reply(
        "\n".join(lines),
        buttons=tuple(
            b for b in _dsl_buttons(view.ref, view.state) if b.action is not Action.CONCERN_VIEW
        ),
        ephemeral=True,
        kind="notice",
        extra=extra,
    )


def _notice(text: str, ref: str, **extra: str) -> Reply:
    return Reply(text, ephemeral=True, kind="notice", extra={"concern_ref": ref, **extra})


# --- the service ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    ref: str
    school: str
    created_at: str
    urgent: bool
    category: str
    about_role: str
    reporter: str
    content: str
    state: State
    acknowledged_by: str | None
    acknowledged_at: str | None
    closed_by: str | None
    closed_at: str | None
    outcome: str | None
    recipients: tuple[str, ...]


_ROW_COLUMNS = (
    "ref, school, created_at, urgent, category, about_role, reporter, content, state,"
    " acknowledged_by, acknowledged_at, closed_by, closed_at, outcome, recipients"
)


class Concerns:
    """Safeguarding reports for every school in one database.

    Synchronous and quick (a few SQLite statements each); every change is one
    transaction together with its audit entry and its outbox messages. Do not
    call these inside a transaction of your own: a refusal is audited and then
    raised, and your rollback would undo the audit entry.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        box: SecretBox,
        settings: Callable[[str], SafeguardingSettings],
        outbox: Outbox,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.db = db
        self.box = box
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        run_migrations(db, MIGRATIONS)

    # --- reporting ---------------------------------------------------------------------

    def submit(self, school: str, reporter: Person, form: ConcernForm) -> Submitted:
        """Store a report (sealed) and queue its alerts, all in one transaction.

        Raises ConcernFormError for a form that cannot be accepted and
        NoRecipients when the school has nobody to send it to; in both cases
        nothing is stored and the reporter must be told to go to the DSL."""
        form = validate(form)
        settings = self.settings(school)
        chosen = route(form, settings)
        if not chosen.recipients:
            # Never sent to the subject: with nobody else in a safeguarding role it
            # cannot be sent at all, and the reporter is told whom to go to.
            log.warning("concern for %s not accepted: nobody to route it to", school)
            if form.about == "staff":
                raise NoRecipients(wording.concern_no_recipients_allegation())
            raise NoRecipients(wording.concern_no_recipients())
        reporter_key = person_key(reporter)
        moment = self.clock()
        at = _stamp(moment)
        with self.db.atomic():
            ref = self._next_ref(moment.year)
            self.db.execute(
                f"INSERT INTO concerns ({_ROW_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, 'open', NULL, NULL, NULL, NULL, NULL, ?)",
                [
                    ref,
                    school,
                    at,
                    int(form.immediate_danger),
                    form.about,
                    form.about_role,
                    reporter_key,
                    self._seal_form(ref, form),
                    json.dumps(list(chosen.recipients)),
                ],
            )
            self._audit(ref, reporter_key, "submitted", True, f"route={chosen.name}", at)
            if chosen.fallback is not None:
                self._audit(
                    ref,
                    SYSTEM_ACTOR,
                    "no-recipient-for-route",
                    True,
                    f"route={chosen.name}; sent to {chosen.fallback} instead",
                    at,
                )
            alert = alert_reply(ref, form, reporter_key, settings)
            for person in chosen.recipients:
                self._send(f"concern:{ref}:alert:{person}", person, alert)
                self._audit(ref, SYSTEM_ACTOR, "alerted", True, person, at)
        if chosen.fallback is not None:
            log.warning(
                "concern %s: route %s had nobody, sent to %s", ref, chosen.name, chosen.fallback
            )
        log.info(
            "concern %s submitted for %s by %s (urgent=%s, %d recipients)",
            ref,
            school,
            reporter_key,
            form.immediate_danger,
            len(chosen.recipients),
        )
        return Submitted(ref, form.immediate_danger, tuple(map(Person.parse, chosen.recipients)))

    def confirmation(self, submitted: Submitted) -> Reply:
        """What the reporter is told. When a child is in immediate danger, the
        999 advice comes first."""
        lines = [wording.concern_sent(submitted.ref)]
        if submitted.urgent:
            lines.insert(0, wording.concern_call_999_now())
        extra = {"concern_ref": submitted.ref, "urgent": "true" if submitted.urgent else "false"}
        return Reply("\n".join(lines), ephemeral=True, kind="notice", extra=extra)

    # --- handling ----------------------------------------------------------------------

    def may_handle(self, ref: str, person: Person | str) -> bool:
        """Whether ``person`` was sent this report (at first or by escalation)."""
        row = self._row(ref)
        return row is not None and person_key(person) in row.recipients

    def view(self, ref: str, by: Person) -> ConcernView:
        row = self._authorise(ref, by, "view")
        with self.db.atomic():
            self._audit(row.ref, person_key(by), "viewed", True)
        log.info("concern %s viewed by %s", row.ref, person_key(by))
        return self._view(row)

    def acknowledge(self, ref: str, by: Person) -> Reply:
        """Record that a handler has seen the report and tell the reporter (once)."""
        row = self._authorise(ref, by, "acknowledge")
        key = person_key(by)
        at = self._stamp()
        with self.db.atomic():
            first = self._mark_acknowledged(row, key, at)
            self._audit(row.ref, key, "acknowledged", True, "" if first else "already", at)
        if not first:
            current = self._row(row.ref)
            when = current.acknowledged_at if current and current.acknowledged_at else at
            by_key = current.acknowledged_by if current and current.acknowledged_by else key
            return _notice(
                wording.concern_already_acknowledged(row.ref, when),
                row.ref,
                acknowledged_by=by_key,
            )
        log.info("concern %s acknowledged by %s", row.ref, key)
        return _notice(wording.concern_acknowledged(row.ref), row.ref)

    def add_note(self, ref: str, by: Person, text: str) -> Reply:
        row = self._authorise(ref, by, "note")
        text = _checked_text(text, "note", "Note")
        key = person_key(by)
        at = self._stamp()
        with self.db.atomic():
            seq = self.db.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM concern_notes WHERE ref = ?", [row.ref]
            ).fetchone()[0]
            self.db.execute(
                "INSERT INTO concern_notes (ref, seq, at, by, text) VALUES (?, ?, ?, ?, ?)",
                [row.ref, seq, at, key, self.box.seal(text, f"{row.ref}:note:{seq}")],
            )
            self._audit(row.ref, key, "noted", True, f"note {seq}", at)
        log.info("concern %s: note %s added by %s", row.ref, seq, key)
        return _notice(wording.concern_noted(row.ref), row.ref)

    def close(self, ref: str, by: Person, outcome: str) -> Reply:
        """Close the report with its outcome (sealed). Closing one nobody had
        acknowledged also acknowledges it, so the reporter hears it was seen."""
        row = self._authorise(ref, by, "close")
        outcome = _checked_text(outcome, "outcome", "Outcome")
        key = person_key(by)
        at = self._stamp()
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE concerns SET state = 'closed', closed_by = ?, closed_at = ?, outcome = ?"
                " WHERE ref = ? AND state != 'closed'",
                [key, at, self.box.seal(outcome, f"{row.ref}:outcome"), row.ref],
            )
            if cursor.rowcount == 0:
                self._audit(row.ref, key, "closed", True, "already", at)
                closed = self._row(row.ref)
                when = closed.closed_at if closed and closed.closed_at else at
                return _notice(wording.concern_already_closed(row.ref, when), row.ref)
            if self._mark_acknowledged(row, key, at, closing=True):
                self._audit(row.ref, key, "acknowledged", True, "on closing", at)
            self._audit(row.ref, key, "closed", True, "", at)
        log.info("concern %s closed by %s", row.ref, key)
        return _notice(wording.concern_closed(row.ref), row.ref)

    def export(self, ref: str, by: Person, fmt: ExportFormat = "markdown") -> str:
        """The whole chronology, for the school's recording system (CPOMS,
        MyConcern): the report, acknowledgement, escalations, notes, closure
        and the audit trail (which records this export)."""
        if fmt not in get_args(ExportFormat):
            raise GuidebotError(f"export format must be markdown or json, not {fmt!r}")
        row = self._authorise(ref, by, "export")
        with self.db.atomic():
            self._audit(row.ref, person_key(by), "exported", True, fmt)
        log.info("concern %s exported (%s) by %s", row.ref, fmt, person_key(by))
        view = self._view(row)
        escalations = self._escalations(row.ref)
        trail = self.audit_trail(row.ref)
        if fmt == "json":
            return _export_json(view, escalations, trail)
        return _export_markdown(view, escalations, trail)

    def on_click(self, click: Click, mention: Callable[[str], str] = str) -> Reply | FormRequest:
        """One of the four DSL buttons: a Reply to show the person who clicked
        (ephemeral), or the form to open for a note or an outcome. Refusals and
        unknown references come back as a kind Reply (and are audited)."""
        by = Person(click.platform, click.user_id)
        try:
            if click.action is Action.CONCERN_VIEW:
                return view_reply(self.view(click.value, by), mention)
            if click.action is Action.CONCERN_ACKNOWLEDGE:
                return self.acknowledge(click.value, by)
            if click.action is Action.CONCERN_NOTE:
                row = self._authorise(click.value, by, "note")
                return FormRequest("concern_note", ref=row.ref)
            if click.action is Action.CONCERN_CLOSE:
                row = self._authorise(click.value, by, "close")
                return FormRequest("concern_close", ref=row.ref)
        except (AccessRefused, UnknownConcern) as exc:
            return Reply(str(exc), ephemeral=True, kind="notice")
        raise GuidebotError(f"{click.action} is not a safeguarding button")

    # --- escalation ----------------------------------------------------------------------

    def escalate_due(self) -> int:
        """Alert the deputies, then the headteacher(s), about every report nobody
        has acknowledged in time; idempotent, so run it as often as you like.
        Returns how many escalation steps were taken."""
        moment = self.clock()
        rows = self.db.execute(
            "SELECT ref, school, created_at, urgent FROM concerns"
            " WHERE state = 'open' AND acknowledged_at IS NULL ORDER BY id"
        ).fetchall()
        taken = 0
        for ref, school, created_at, urgent in rows:
            settings = self.settings(school)
            limit = settings.urgent_ack_minutes if urgent else settings.ack_minutes
            created = datetime.fromisoformat(created_at)
            done = {
                step
                for (step,) in self.db.execute(
                    "SELECT step FROM concern_escalations WHERE ref = ?", [ref]
                ).fetchall()
            }
            for step in (1, 2):
                if moment < created + timedelta(minutes=limit * step):
                    break
                if step in done:
                    continue
                try:
                    if self._escalate(ref, step, limit * step, settings):
                        taken += 1
                except Exception as exc:  # one damaged report must not hold up the rest
                    log.error(
                        "escalating concern %s (step %s) failed: %s", ref, step, type(exc).__name__
                    )
                    break
        return taken

    def _escalate(self, ref: str, step: int, minutes: int, settings: SafeguardingSettings) -> bool:
        at = self._stamp()
        with self.db.atomic():
            row = self._row(ref)
            if row is None or row.state != "open" or row.acknowledged_at is not None:
                return False
            form = self._open_form(row)
            excluded = subjects(form, settings)
            if step == 1:
                role = settings.deputies
                people = _unique(k for k in role if k not in excluded and k not in row.recipients)
            else:
                people = _unique(k for k in settings.headteacher if k not in excluded)
            detail = "nobody-to-alert" if not people else f"step {step}: " + ", ".join(people)
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO concern_escalations (ref, step, at, recipients, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                [ref, step, at, json.dumps(list(people)), detail],
            )
            if cursor.rowcount == 0:  # another sweep took this step first
                return False
            recipients = _unique([*row.recipients, *people])
            self.db.execute(
                "UPDATE concerns SET recipients = ? WHERE ref = ?", [json.dumps(recipients), ref]
            )
            alert = alert_reply(ref, form, row.reporter, settings, (step, minutes))
            for person in people:
                self._send(f"concern:{ref}:escalation:{step}:{person}", person, alert)
            self._audit(
                ref,
                SYSTEM_ACTOR,
                "escalated",
                True,
                f"step {step}: nobody-to-alert" if not people else detail,
                at,
            )
        if people:
            log.warning("concern %s not acknowledged: escalation step %s sent", ref, step)
        else:
            log.warning("concern %s not acknowledged: escalation step %s had nobody", ref, step)
        return True

    # --- audit -----------------------------------------------------------------------------

    def audit_trail(self, ref: str) -> list[AuditEntry]:
        """Every attempt on a report, oldest first. Not itself audited or checked:
        for exports and administrators' tools, never for showing to staff."""
        rows = self.db.execute(
            "SELECT at, actor, action, allowed, detail FROM concern_audit WHERE ref = ?"
            " ORDER BY id",
            [ref],
        ).fetchall()
        return [
            AuditEntry(at, actor, action, bool(allowed), detail)
            for at, actor, action, allowed, detail in rows
        ]

    # --- internals --------------------------------------------------------------------------

    def _stamp(self) -> str:
        return _stamp(self.clock())

    def _next_ref(self, year: int) -> str:
        (number,) = self.db.execute(
            "INSERT INTO concern_refs (year, last) VALUES (?, 1)"
            " ON CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last",
            [year],
        ).fetchone()
        return f"C-{year:04d}-{number:04d}"

    def _audit(
        self,
        ref: str,
        actor: str,
        action: str,
        allowed: bool,
        detail: str = "",
        at: str | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO concern_audit (ref, at, actor, action, allowed, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [ref, at or self._stamp(), actor, action, int(allowed), detail],
        )

    def _send(self, dedupe_key: str, person: str, reply: Reply) -> bool:
        who = Person.parse(person)
        return self.outbox.enqueue(
            dedupe_key, who.platform, who.id, OutgoingMessage(reply_to_data(reply))
        )

    def _row(self, ref: str) -> _Row | None:
        found = self.db.execute(
            f"SELECT {_ROW_COLUMNS} FROM concerns WHERE ref = ?", [ref]
        ).fetchone()
        if found is None:
            return None
        values = list(found)
        values[3] = bool(values[3])
        values[14] = tuple(json.loads(values[14]))
        return _Row(*values)

    def _authorise(self, ref: str, by: Person, what: str) -> _Row:
        """The report, if ``by`` may act on it; otherwise audit the refusal and raise."""
        key = person_key(by)
        ref = ref.strip()
        row = self._row(ref) if REF_RE.fullmatch(ref) else None
        if row is None:
            shown = ref if REF_RE.fullmatch(ref) else _safe_ref(ref)
            with self.db.atomic():
                self._audit(shown, key, f"refused:{what}", False, "unknown reference")
            # info, not warning: the audit trail is the record, and the CLI keeps
            # a refusal to its one-line error.
            log.info("%s of unknown concern %s by %s refused", what, shown, key)
            raise UnknownConcern(wording.concern_no_such_report(shown))
        if key not in row.recipients:
            with self.db.atomic():
                self._audit(row.ref, key, f"refused:{what}", False)
            log.info("%s of concern %s by %s refused: not a recipient", what, row.ref, key)
            raise AccessRefused(wording.concern_access_refused(row.ref))
        return row

    def _mark_acknowledged(self, row: _Row, key: str, at: str, closing: bool = False) -> bool:
        """Set the acknowledgement if nobody has yet, and queue the reporter's
        notice; inside the caller's transaction. True if this call did it."""
        states = "('open', 'closed')" if closing else "('open')"
        cursor = self.db.execute(
            "UPDATE concerns SET acknowledged_by = ?, acknowledged_at = ?,"
            " state = CASE state WHEN 'open' THEN 'acknowledged' ELSE state END"
            f" WHERE ref = ? AND acknowledged_at IS NULL AND state IN {states}",
            [key, at, row.ref],
        )
        if cursor.rowcount == 0:
            return False
        seen = Reply(
            wording.concern_seen_by_dsl(row.ref), kind="notice", extra={"concern_ref": row.ref}
        )
        self._send(f"concern:{row.ref}:acknowledged", row.reporter, seen)
        return True

    def _seal_form(self, ref: str, form: ConcernForm) -> str:
        return self.box.seal(json.dumps(_form_data(form), ensure_ascii=False), f"{ref}:content")

    def _open_form(self, row: _Row) -> ConcernForm:
        return _form_from(json.loads(self.box.open(row.content, f"{row.ref}:content")))

    def _view(self, row: _Row) -> ConcernView:
        notes = tuple(
            Note(at, by, self.box.open(text, f"{row.ref}:note:{seq}"))
            for seq, at, by, text in self.db.execute(
                "SELECT seq, at, by, text FROM concern_notes WHERE ref = ? ORDER BY seq", [row.ref]
            ).fetchall()
        )
        outcome = self.box.open(row.outcome, f"{row.ref}:outcome") if row.outcome else None
        return ConcernView(
            ref=row.ref,
            school=row.school,
            created_at=row.created_at,
            urgent=row.urgent,
            reporter=Person.parse(row.reporter),
            form=self._open_form(row),
            state=row.state,
            recipients=tuple(map(Person.parse, row.recipients)),
            acknowledged_by=Person.parse(row.acknowledged_by) if row.acknowledged_by else None,
            acknowledged_at=row.acknowledged_at,
            notes=notes,
            outcome=outcome,
            closed_at=row.closed_at,
            closed_by=Person.parse(row.closed_by) if row.closed_by else None,
        )

    def _escalations(self, ref: str) -> list[Escalation]:
        rows = self.db.execute(
            "SELECT step, at, recipients, detail FROM concern_escalations WHERE ref = ?"
            " ORDER BY step",
            [ref],
        ).fetchall()
        return [
            Escalation(step, at, tuple(json.loads(people)), detail)
            for step, at, people, detail in rows
        ]


@dataclass(frozen=True)
class Escalation:
    step: int
    at: str
    recipients: tuple[str, ...]
    detail: str


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _safe_ref(ref: str) -> str:
    """A mistyped reference, shown and audited without anything that is not one."""
    kept = "".join(c for c in ref[:24] if c.isalnum() or c == "-")
    return kept or "(blank)"


def _checked_text(text: str, field: str, label: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ConcernFormError(field, wording.concern_field_missing(label))
    text = text.strip()
    if len(text) > TEXT_LIMIT:
        raise ConcernFormError(field, wording.concern_field_too_long(label, TEXT_LIMIT))
    return text


# --- exports -----------------------------------------------------------------------------


def _export_data(
    view: ConcernView, escalations: Sequence[Escalation], trail: Sequence[AuditEntry]
) -> dict[str, Any]:
    return {
        "ref": view.ref,
        "school": view.school,
        "created_at": view.created_at,
        "urgent": view.urgent,
        "state": view.state,
        "reported_by": view.reporter.key,
        "sent_to": [p.key for p in view.recipients],
        "report": _form_data(view.form),
        "acknowledged": (
            {"by": view.acknowledged_by.key, "at": view.acknowledged_at}
            if view.acknowledged_by
            else None
        ),
        "escalations": [
            {"step": e.step, "at": e.at, "alerted": list(e.recipients), "detail": e.detail}
            for e in escalations
        ],
        "notes": [{"at": n.at, "by": n.by, "text": n.text} for n in view.notes],
        "closed": (
            {
                "by": view.closed_by.key if view.closed_by else None,
                "at": view.closed_at,
                "outcome": view.outcome,
            }
            if view.closed_at
            else None
        ),
        "audit": [
            {
                "at": a.at,
                "actor": a.actor,
                "action": a.action,
                "allowed": a.allowed,
                "detail": a.detail,
            }
            for a in trail
        ],
    }


def _export_json(
    view: ConcernView, escalations: Sequence[Escalation], trail: Sequence[AuditEntry]
) -> str:
    return json.dumps(_export_data(view, escalations, trail), ensure_ascii=False, indent=2) + "\n"


def _md(text: str) -> str:
    """Text inside a Markdown document: each line kept, as a block quote."""
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines() or [""])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _export_markdown(
    view: ConcernView, escalations: Sequence[Escalation], trail: Sequence[AuditEntry]
) -> str:
    labels = wording.CONCERN_FIELDS
    form = view.form
    out = [
        f"# Safeguarding concern {view.ref}",
        "",
        f"- School: {view.school}",
        f"- Reported: {view.created_at} by {view.reporter.key}",
        f"- About: {wording.concern_about(form.about, form.about_role)}",
        f"- Urgent (a child in immediate danger): {wording.concern_yes_no(view.urgent)}",
        f"- Sent to: {', '.join(p.key for p in view.recipients)}",
        f"- State: {view.state}",
        "",
        "## Report",
        "",
    ]
    for name in ("about_name", "what", "when_where", "actions_taken"):
        out += [f"**{labels[name]}**", "", _md(getattr(form, name)), ""]
    out += [f"**{labels['immediate_danger']}** {wording.concern_yes_no(form.immediate_danger)}"]
    out += ["", "## Acknowledgement", ""]
    if view.acknowledged_by is not None:
        out.append(f"Acknowledged {view.acknowledged_at} by {view.acknowledged_by.key}")
    else:
        out.append("Not acknowledged.")
    out += ["", "## Escalations", ""]
    if not escalations:
        out.append("None.")
    for e in escalations:
        alerted = ", ".join(e.recipients) if e.recipients else "nobody to alert"
        out.append(f"- Step {e.step}, {e.at}: {alerted}")
    out += ["", "## Notes", ""]
    if not view.notes:
        out.append("None.")
    for note in view.notes:
        out += [f"**{note.at}, {note.by}**", "", _md(note.text), ""]
    out += ["", "## Closure", ""]
    if view.closed_at is not None and view.outcome is not None:
        closer = view.closed_by.key if view.closed_by else "unknown"
        out += [f"Closed {view.closed_at} by {closer}", "", _md(view.outcome)]
    else:
        out.append("Open.")
    out += [
        "",
        "## Audit trail",
        "",
        "| at | who | action | allowed | detail |",
        "|---|---|---|---|---|",
    ]
    for a in trail:
        out.append(
            f"| {a.at} | {_cell(a.actor)} | {_cell(a.action)} | "
            f"{'yes' if a.allowed else 'no'} | {_cell(a.detail)} |"
        )
    return "\n".join(out) + "\n"
