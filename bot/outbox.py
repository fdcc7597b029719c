"""Persistent, retried, exactly-once delivery of every message the bot starts.

Answers go straight back to the person asking. Everything else (a DSL alert,
an escalation, "the DSL has seen your report", later broadcasts and reminders)
is first written to the ``outbox`` table in the same transaction as the change
that caused it, then sent by a worker. So a message that was accepted is never
lost (a crash just leaves it pending), and each row is keyed by a unique
``dedupe_key`` so nothing is queued twice.

Sending exactly once: a row is marked ``sending`` before the platform call and
``sent`` after it. A crash in between leaves the outcome unknown; on restart
the worker asks the platform's sender whether that message already arrived
(``Sender.find_sent``: Slack can, by the message metadata we attach; a sender
that cannot tell returns ``None`` and the row is sent again, which the sender
documents). Retryable failures (429, 5xx, timeouts) back off with jitter and
honour Retry-After; permanent ones (the person left, the app was removed) end
the row as ``dead`` and are logged without content.

How it is built
---------------

The table (migrations ``outbox_m001_table``, ``outbox_m002_bulk``)::

    outbox(id, dedupe_key UNIQUE, platform, recipient, payload, state,
           attempts, next_attempt_at, created_at, updated_at, sent_at,
           platform_ref, last_error, uncertain, bulk)
    index outbox_state_next (state, next_attempt_at)

- ``payload`` is the message (``reply_to_data`` JSON) sealed with the
  installation's ``SecretBox`` under the context ``outbox:<dedupe_key>``, so
  the database file never holds what an alert says, and a payload copied onto
  another row does not open. ``recipient`` and ``platform`` stay in clear: the
  worker needs them, and they are ids, not content.
- ``state``: ``pending`` -> ``sending`` -> ``sent`` | ``dead``; a retry puts a
  ``sending`` row back to ``pending``.
- ``next_attempt_at`` is, for a ``pending`` row, when it is next due and, for
  a ``sending`` row, when its lease runs out. So one index and one condition
  (``next_attempt_at <= now``) find both the rows that are due and the claims
  of a worker that died.
- ``attempts`` counts claims (a row released unsent, at shutdown or to keep
  to a rate, gives its claim back).
- ``bulk`` is 1 for one of many messages (a broadcast and its chasers):
  claims take every other due row first, and a worker that learns of a new
  row mid-round gives its bulk rows back, so a safeguarding alert queued
  behind a 2,000-person broadcast goes next, not in ten minutes.
- ``uncertain`` is 1 when an earlier attempt may have reached the person
  although it did not report success: the process died while the row was
  ``sending`` (its lease ran out), or the platform timed out, dropped the
  connection or answered 5xx. Before such a row is sent again the worker asks
  ``Sender.find_sent``; a row that has only ever failed cleanly (429, a refused
  connection) is sent without asking.

Timestamps are UTC ISO 8601 with microseconds, so they sort as text.

Transactions: ``enqueue`` runs inside the caller's ``db.atomic()`` (sqlite-utils
makes the inner block a savepoint), so a rolled-back report leaves no alert.
The worker shares the caller's connection; it never claims while a
transaction is open on it (``claim_due`` then returns nothing and the next
round picks the rows up), so it can never see, or send, an alert whose report
might still be rolled back. Callers must not ``await`` inside ``db.atomic()``.
Claiming is a single ``UPDATE ... RETURNING`` statement, so two workers (two
processes on one file) never claim the same row; one worker per database is
still the intended deployment.

Pacing, for a broadcast to a whole staff (2,000 people) as much as for one
alert. Three rules, all in ``DeliveryPolicy``:

- ``rate_per_second`` (default Slack 1, Teams 8): sends per second to one
  recipient's stream (Slack allows about one message a second per channel).
- ``platform_rate`` (default Slack 3, Teams 15 a second; a missing entry, 0 or
  None means unlimited, as the benchmark uses): every send on a platform, all
  recipients together, through a token bucket holding ``burst`` seconds' worth
  (so a quiet worker sends a short burst at once). Slack's limits are per
  method per workspace (``chat.postMessage`` bursts but expects about one a
  second per channel, ``conversations.open`` is Tier 3, 50+ a minute); Teams
  allows about 7 a second per conversation and 50 a second per bot. Keeping
  under them means a 2,000-person broadcast takes 10 to 15 minutes on Slack
  and about 2 on Teams, instead of hammering the platform into 429s.
- A platform that answers "slow down" (a failure carrying Retry-After: Slack's
  429, which applies to the whole workspace, or a Teams 429/503) is paused for
  that long: the row that got it is retried after Retry-After (that claim was
  an attempt), the rest of the batch for that platform is released unsent
  (claims given back, not counted as attempts) and due when the pause ends,
  and no row of that platform is claimed until then. Other platforms carry on.
  The pause covers every workspace of the platform: with several Slack
  workspaces one's 429 briefly holds the others too, which errs on the safe
  side. The pause lives in the worker; a restarted worker finds the released
  rows due at the pause's end anyway.

At scale: a round claims ``batch`` rows in one statement (the index on
``(state, next_attempt_at)``), releases in one statement, and settles each row
with one short write (marking it sent; its lease is renewed first only when
the claim is old enough that a send could outlive it), so delivering n rows
costs O(n) statements, never a scan per row.

Nothing here logs a message's content: log lines name the row id, the first
part of its dedupe key (``concern``, never the reference after it) and the
sender's short error description.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random as _random
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, get_args

import sqlite_utils

from bot.messages import Action, Button, Quote, Reply
from knowledge.errors import GuidebotError
from knowledge.store import run_migrations

if TYPE_CHECKING:
    from bot.crypto import SecretBox

log = logging.getLogger(__name__)

State = Literal["pending", "sending", "sent", "dead"]
STATES: tuple[State, ...] = get_args(State)


@dataclass(frozen=True)
class OutgoingMessage:
    """What to send, platform-neutral: a bot.messages.Reply as JSON-able data.

    ``reply`` is produced by ``reply_to_data`` / read back by ``reply_from_data``
    so the worker can render it with the platform's own converter.
    """

    reply: Mapping[str, Any]


@dataclass(frozen=True)
class SendResult:
    ok: bool
    platform_ref: str | None = None
    """The platform's id for the delivered message (Slack ts, Teams activity id)."""
    retry_after: float | None = None
    """Seconds the platform asked us to wait (429 Retry-After)."""
    permanent: bool = False
    """No point retrying: the person or the app is gone."""
    error: str = ""
    """A short description for the log (never message content)."""
    uncertain: bool = False
    """The call failed, but the platform may have delivered the message anyway
    (a timeout, a lost connection, a 5xx): look (``find_sent``) before sending again."""


class DeliveryFailed(GuidebotError):
    """Raised by ``Sender.find_sent`` when it could not look: ``result`` says
    whether that is worth retrying (as for a failed send)."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error or "the platform could not be asked")
        self.result = result


class Sender(Protocol):
    """One platform's way of delivering outbox rows."""

    platform: str

    async def send(self, recipient: str, message: OutgoingMessage, key: str) -> SendResult: ...

    async def find_sent(self, recipient: str, key: str) -> str | None:
        """The platform ref of an earlier delivery of ``key``, if it arrived."""
        ...


@dataclass(frozen=True)
class OutboxRow:
    id: int
    dedupe_key: str
    platform: str
    recipient: str
    message: OutgoingMessage
    state: State
    attempts: int
    next_attempt_at: str
    created_at: str
    sent_at: str | None = None
    platform_ref: str | None = None
    last_error: str | None = None
    uncertain: bool = False
    """An earlier attempt may have delivered it: look before sending again."""
    bulk: bool = False
    """One of many (a broadcast): any other message due is sent first."""


@dataclass
class DeliveryPolicy:
    """How patiently to retry. Injected clock/sleep/random keep tests quick."""

    base_delay: float = 2.0
    max_delay: float = 300.0
    give_up_after: float = 72 * 3600.0
    """A message still undelivered after this long is marked dead (and logged)."""
    lease: float = 60.0
    """How long a 'sending' claim is trusted before it counts as a crash."""
    batch: int = 50
    rate_per_second: Mapping[str, float] = field(
        default_factory=lambda: {"slack": 1.0, "teams": 8.0}
    )
    """Sends per second per platform and recipient stream (Slack: ~1 msg/s/channel)."""
    platform_rate: Mapping[str, float | None] = field(
        default_factory=lambda: {"slack": 3.0, "teams": 15.0}
    )
    """Sends per second per platform, all recipients together (a token bucket);
    a missing entry, 0 or None: unlimited."""
    burst: float = 2.0
    """Seconds' worth of ``platform_rate`` the bucket holds when the worker is idle."""

    def backoff(self, failures: int) -> float:
        """The capped exponential step before the ``failures``-th retry (before jitter)."""
        return min(self.max_delay, self.base_delay * 2.0 ** max(0, failures - 1))

    @property
    def send_timeout(self) -> float:
        """The longest one send (or one look-up) may take: half the lease, so a
        live claim is never taken for a dead one."""
        return self.lease / 2


Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """A UTC timestamp that sorts as text."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def key_kind(dedupe_key: str) -> str:
    """The first part of a dedupe key (``concern``), safe for a log line: the
    parts after it may name a report."""
    head = dedupe_key.split(":", 1)[0]
    return head if head.isidentifier() and len(head) <= 32 else "message"


# --- Reply <-> JSON ---------------------------------------------------------------------------


def _quote_to_data(quote: Quote) -> dict[str, Any]:
    return {
        "text": quote.text,
        "policy": quote.policy,
        "section": quote.section,
        "number": quote.number,
    }


def reply_to_data(reply: Reply) -> dict[str, Any]:
    """A Reply as plain JSON-able data (every field, losslessly)."""
    return {
        "text": reply.text,
        "quote": _quote_to_data(reply.quote) if reply.quote is not None else None,
        "notes": list(reply.notes),
        "see_also": [_quote_to_data(q) for q in reply.see_also],
        "buttons": [
            {"label": b.label, "action": b.action.value, "value": b.value, "style": b.style}
            for b in reply.buttons
        ],
        "ephemeral": reply.ephemeral,
        "question_id": reply.question_id,
        "kind": reply.kind,
        "extra": dict(reply.extra),
    }


class BadMessage(GuidebotError):
    """Stored message data that is not a Reply (a bug, never content in the text)."""


def _str(data: Mapping[str, Any], key: str, *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadMessage(f"reply field {key!r} must be text")
    return value


def _quote_from_data(data: Any) -> Quote:
    if not isinstance(data, Mapping):
        raise BadMessage("a quote must be an object")
    return Quote(
        _str(data, "text"),
        _str(data, "policy"),
        _str(data, "section"),
        _str(data, "number", optional=True),
    )


def _button_from_data(data: Any) -> Button:
    if not isinstance(data, Mapping):
        raise BadMessage("a button must be an object")
    style = data.get("style")
    if style not in (None, "primary", "danger"):
        raise BadMessage("a button style must be primary, danger or null")
    try:
        action = Action(_str(data, "action"))
    except ValueError:
        raise BadMessage("a button has an unknown action") from None
    return Button(_str(data, "label"), action, _str(data, "value"), style)


def reply_from_data(data: Mapping[str, Any]) -> Reply:
    """The Reply ``reply_to_data`` made; raises BadMessage for anything else."""
    if not isinstance(data, Mapping):
        raise BadMessage("a reply must be an object")
    kind = data.get("kind", "answer")
    if kind not in ("answer", "not_found", "help", "notice"):
        raise BadMessage("a reply has an unknown kind")
    question_id = data.get("question_id")
    if question_id is not None and (
        not isinstance(question_id, int) or isinstance(question_id, bool)
    ):
        raise BadMessage("a reply's question_id must be a whole number or null")
    extra = data.get("extra") or {}
    if not isinstance(extra, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise BadMessage("a reply's extra must map text to text")
    notes = data.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise BadMessage("a reply's notes must be a list of text")
    quote = data.get("quote")
    see_also = data.get("see_also") or []
    buttons = data.get("buttons") or []
    if not isinstance(see_also, list) or not isinstance(buttons, list):
        raise BadMessage("a reply's see_also and buttons must be lists")
    ephemeral = data.get("ephemeral", False)
    if not isinstance(ephemeral, bool):
        raise BadMessage("a reply's ephemeral must be true or false")
    return Reply(
        text=_str(data, "text"),
        quote=_quote_from_data(quote) if quote is not None else None,
        notes=tuple(notes),
        see_also=tuple(_quote_from_data(q) for q in see_also),
        buttons=tuple(_button_from_data(b) for b in buttons),
        ephemeral=ephemeral,
        question_id=question_id,
        kind=kind,
        extra=dict(extra),
    )


# --- the table ------------------------------------------------------------------------------------


def _m001_table(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            dedupe_key TEXT NOT NULL UNIQUE,
            platform TEXT NOT NULL,
            recipient TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT,
            platform_ref TEXT,
            last_error TEXT,
            uncertain INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX outbox_state_next ON outbox (state, next_attempt_at)")


def _m002_bulk(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE outbox ADD COLUMN bulk INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("outbox_m001_table", _m001_table),
    ("outbox_m002_bulk", _m002_bulk),
)

_COLUMNS = (
    "id, dedupe_key, platform, recipient, payload, state, attempts, next_attempt_at,"
    " created_at, sent_at, platform_ref, last_error, uncertain, bulk"
)
UNREADABLE_RETRY = 300.0
"""Seconds before a row whose payload would not open is tried again."""


class Outbox:
    """The ``outbox`` table: queue, claim and settle messages (see the module notes)."""

    def __init__(self, db: sqlite_utils.Database, box: SecretBox, clock: Clock = utcnow) -> None:
        self.db = db
        self.box = box
        self.clock = clock
        self._listeners: list[Callable[[], None]] = []
        run_migrations(db, MIGRATIONS)

    def _now(self) -> str:
        return stamp(self.clock())

    def _later(self, seconds: float) -> str:
        return stamp(self.clock() + timedelta(seconds=max(0.0, seconds)))

    # queueing ------------------------------------------------------------------------

    def enqueue(
        self,
        dedupe_key: str,
        platform: str,
        recipient: str,
        message: OutgoingMessage | Reply,
        *,
        bulk: bool = False,
    ) -> bool:
        """Queue a message; False if ``dedupe_key`` was queued before (nothing changes).
        ``bulk``: one of many (a broadcast, its chasers), sent after any other
        message that is due, so a safeguarding alert never waits behind them.

        Safe inside the caller's ``db.atomic()``: it joins that transaction, so a
        rollback removes the row too."""
        if not dedupe_key or not platform or not recipient:
            raise GuidebotError("an outbox message needs a dedupe key, a platform and a recipient")
        if self.has(dedupe_key):
            return False  # queued before: no need to seal it again (sweeps ask often)
        if isinstance(message, Reply):
            message = OutgoingMessage(reply_to_data(message))
        plain = json.dumps(dict(message.reply), ensure_ascii=False, sort_keys=True)
        payload = self.box.seal(plain, f"outbox:{dedupe_key}")
        now = self._now()
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT INTO outbox (dedupe_key, platform, recipient, payload, state, attempts,"
                " next_attempt_at, created_at, updated_at, bulk)"
                " VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)"
                " ON CONFLICT (dedupe_key) DO NOTHING",
                [dedupe_key, platform, recipient, payload, now, now, now, int(bulk)],
            )
        inserted = cursor.rowcount == 1
        if inserted:
            self._notify()
        return inserted

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` whenever a row is queued (to wake a worker); returns
        the function that unsubscribes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception as exc:  # a listener must never undo a queued message
                log.warning("an outbox listener failed: %s", type(exc).__name__)

    # the worker's side -------------------------------------------------------------------

    def claim_due(
        self, limit: int, lease: float = 60.0, *, skip: Collection[str] = ()
    ) -> list[OutboxRow]:
        """Claim up to ``limit`` rows: pending ones that are due, and sending ones
        whose lease ran out (their worker died: marked ``uncertain``). Each is set
        to ``sending`` with a lease of ``lease`` seconds, in one statement. Rows
        for the platforms in ``skip`` (paused ones) are left alone.

        Returns nothing while a transaction is open on this connection (see the
        module notes); a row whose payload will not open is put back for later
        and logged, never returned."""
        if limit <= 0 or self.db.conn.in_transaction:
            return []
        now = self._now()
        until = self._later(lease)
        skipped = sorted(set(skip))
        params: dict[str, Any] = {"now": now, "until": until, "limit": limit}
        params.update({f"skip{n}": platform for n, platform in enumerate(skipped)})
        not_skipped = (
            " AND platform NOT IN (" + ", ".join(f":skip{n}" for n in range(len(skipped))) + ")"
            if skipped
            else ""
        )
        with self.db.atomic():
            found = self.db.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1,"
                " next_attempt_at = :until, updated_at = :now,"
                " uncertain = CASE WHEN state = 'sending' THEN 1 ELSE uncertain END"
                " WHERE id IN (SELECT id FROM outbox WHERE state IN ('pending', 'sending')"
                f" AND next_attempt_at <= :now{not_skipped}"
                " ORDER BY bulk, next_attempt_at, id LIMIT :limit)"
                f" RETURNING {_COLUMNS}",
                params,
            ).fetchall()
        rows: list[OutboxRow] = []
        for values in sorted(found, key=lambda v: (v[13], v[7], v[0])):
            try:
                rows.append(self._to_row(values))
            except Exception as exc:
                log.error(
                    "outbox row %s (%s) cannot be read (%s): is GUIDEBOT_SECRET_KEY the key "
                    "it was sealed with? Trying again in %d minutes",
                    values[0],
                    key_kind(values[1]),
                    type(exc).__name__,
                    UNREADABLE_RETRY // 60,
                )
                self.mark_retry(values[0], "the sealed message cannot be opened", UNREADABLE_RETRY)
        return rows

    def touch(self, id: int, lease: float) -> bool:
        """Renew a claim's lease (just before a send); False if the row is no longer ours."""
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE outbox SET next_attempt_at = ?, updated_at = ?"
                " WHERE id = ? AND state = 'sending'",
                [self._later(lease), self._now(), id],
            )
        return cursor.rowcount == 1

    def mark_sent(self, id: int, platform_ref: str | None) -> None:
        now = self._now()
        with self.db.atomic():
            self.db.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?, platform_ref = ?,"
                " updated_at = ?, uncertain = 0 WHERE id = ? AND state IN ('pending', 'sending')",
                [now, platform_ref, now, id],
            )

    def mark_retry(self, id: int, error: str, delay: float, *, uncertain: bool = False) -> None:
        """Back to pending, due in ``delay`` seconds. ``uncertain``: the failed
        attempt may have delivered it (see ``SendResult.uncertain``)."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, last_error = ?,"
                " updated_at = ?, uncertain = ? WHERE id = ? AND state = 'sending'",
                [self._later(delay), error[:500], self._now(), int(uncertain), id],
            )

    def release(self, id: int, delay: float = 0.0) -> None:
        """Give a claim back unsent (shutdown, or keeping to a rate): pending again,
        due in ``delay`` seconds, the claim not counted as an attempt."""
        self.release_many([id], delay)

    def release_many(self, ids: Collection[int], delay: float = 0.0) -> None:
        """``release`` for several claims, in one statement."""
        wanted = sorted(set(ids))
        if not wanted:
            return
        with self.db.atomic():
            for start in range(0, len(wanted), 500):  # well under SQLite's variable limit
                chunk = wanted[start : start + 500]
                self.db.execute(
                    "UPDATE outbox SET state = 'pending', next_attempt_at = ?, updated_at = ?,"
                    " attempts = max(0, attempts - 1)"
                    f" WHERE state = 'sending' AND id IN ({', '.join('?' * len(chunk))})",
                    [self._later(delay), self._now(), *chunk],
                )

    def next_due(self) -> dict[str, datetime]:
        """Platform -> when its earliest unsettled row is next due (or its lease
        runs out); empty when nothing is waiting. For deciding when to wake."""
        return {
            platform: _parse(due)
            for platform, due in self.db.execute(
                "SELECT platform, min(next_attempt_at) FROM outbox"
                " WHERE state IN ('pending', 'sending') GROUP BY platform"
            ).fetchall()
        }

    def mark_dead(self, id: int, error: str) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE outbox SET state = 'dead', last_error = ?, updated_at = ?"
                " WHERE id = ? AND state IN ('pending', 'sending')",
                [error[:500], self._now(), id],
            )

    # reading -------------------------------------------------------------------------------

    def row(self, id: int) -> OutboxRow | None:
        found = self.db.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", [id]).fetchone()
        return self._to_row(found) if found is not None else None

    def has(self, dedupe_key: str) -> bool:
        """Whether ``dedupe_key`` was ever queued (whatever became of it), without
        opening its sealed message."""
        found = self.db.execute(
            "SELECT 1 FROM outbox WHERE dedupe_key = ?", [dedupe_key]
        ).fetchone()
        return found is not None

    def by_key(self, dedupe_key: str) -> OutboxRow | None:
        found = self.db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE dedupe_key = ?", [dedupe_key]
        ).fetchone()
        return self._to_row(found) if found is not None else None

    def counts(self) -> dict[State, int]:
        """Rows in each state (every state present, zero included)."""
        counted: dict[State, int] = dict.fromkeys(STATES, 0)
        for state, number in self.db.execute(
            "SELECT state, count(*) FROM outbox GROUP BY state"
        ).fetchall():
            if state in counted:
                counted[cast(State, state)] = int(number)
        return counted

    def _to_row(self, values: Any) -> OutboxRow:
        (
            id_,
            key,
            platform,
            recipient,
            payload,
            state,
            attempts,
            next_at,
            created,
            sent_at,
            ref,
            error,
            uncertain,
            bulk,
        ) = values
        data = json.loads(self.box.open(payload, f"outbox:{key}"))
        if not isinstance(data, dict):
            raise BadMessage("an outbox payload is not an object")
        return OutboxRow(
            id=int(id_),
            dedupe_key=key,
            platform=platform,
            recipient=recipient,
            message=OutgoingMessage(data),
            state=state,
            attempts=int(attempts),
            next_attempt_at=next_at,
            created_at=created,
            sent_at=sent_at,
            platform_ref=ref,
            last_error=error,
            uncertain=bool(uncertain),
            bulk=bool(bulk),
        )


# --- the worker ----------------------------------------------------------------------------------


async def _real_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class OutboxWorker:
    """Sends due rows through each platform's ``Sender`` (see the module notes).

    ``run_once`` claims one batch and settles every row in it; ``run_forever``
    repeats that until ``stop`` is set, waking early when a row is queued.
    Per row: a row marked ``uncertain`` is first looked for (``find_sent``) and
    marked sent if found; otherwise it is sent, keeping to
    ``policy.rate_per_second`` for that platform and recipient and to
    ``policy.platform_rate`` for the platform as a whole. Success marks it
    sent; a permanent failure marks it dead; anything else is retried after
    ``random() * min(max_delay, base_delay * 2**(attempts-1))`` seconds (full
    jitter), never sooner than a Retry-After, until ``give_up_after`` seconds
    from when it was queued, when it is marked dead. An exception or a hang in
    one send (bounded by ``policy.send_timeout``) counts as a retryable,
    uncertain failure of that row and never stops the loop.

    A failure carrying Retry-After pauses its whole platform (see the module
    notes): the rest of the batch for it is released unsent, and nothing of it
    is claimed until the pause ends (``paused_until``).

    Stopping (``stop`` set while a batch is in hand): the send in flight is
    finished and settled, the rest of the batch is released unsent.
    """

    def __init__(
        self,
        outbox: Outbox,
        senders: Mapping[str, Sender],
        policy: DeliveryPolicy | None = None,
        clock: Clock | None = None,
        sleep: Sleep = _real_sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.outbox = outbox
        self.senders = dict(senders)
        self.policy = policy or DeliveryPolicy()
        self.clock = clock or outbox.clock
        self.sleep = sleep
        self.random = random
        self.wakeup = asyncio.Event()
        """Set when a row is queued; ``run_forever`` (or a scheduler) waits on it."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_send: dict[tuple[str, str], datetime] = {}
        self._buckets: dict[str, _Bucket] = {}
        self.paused_until: dict[str, datetime] = {}
        """Platform -> when it may be sent to again (after a Retry-After)."""
        self._unsubscribe = outbox.subscribe(self._queued)

    def _queued(self) -> None:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(self.wakeup.set)
        else:
            self.wakeup.set()

    def close(self) -> None:
        """Stop listening for queued rows."""
        self._unsubscribe()

    # one round -------------------------------------------------------------------------------

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim due rows and settle each; returns how many were claimed."""
        self._loop = asyncio.get_running_loop()
        self.wakeup.clear()  # from here on, set means "queued during this round"
        paused = self._paused_platforms()
        claimed_at = self.clock()
        if paused:
            rows = self.outbox.claim_due(self.policy.batch, self.policy.lease, skip=paused)
        else:
            rows = self.outbox.claim_due(self.policy.batch, self.policy.lease)
        started = self.clock()
        released: set[int] = set()
        for index, row in enumerate(rows):
            if row.id in released:
                continue
            elapsed = (self.clock() - started).total_seconds()
            if (stop is not None and stop.is_set()) or elapsed > self.policy.send_timeout:
                self.outbox.release_many([r.id for r in rows[index:] if r.id not in released])
                break
            if row.bulk and self.wakeup.is_set():
                # Something was queued meanwhile (it may be a safeguarding alert):
                # give the bulk rows back so the next round claims it first.
                bulk = [r.id for r in rows[index:] if r.bulk and r.id not in released]
                self.outbox.release_many(bulk)
                released.update(bulk)
                continue
            pause = self._pause_left(row.platform)
            if pause > 0:
                # The platform asked us to wait: give its rows back, due when it ends.
                held = [r.id for r in rows[index:] if r.platform == row.platform]
                held = [i for i in held if i not in released]
                self.outbox.release_many(held, pause)
                released.update(held)
                continue
            try:
                await self._settle(row, claimed_at)
            except Exception as exc:  # a bug in one row never stops the others
                log.error(
                    "outbox row %s (%s): unexpected %s; will retry",
                    row.id,
                    key_kind(row.dedupe_key),
                    type(exc).__name__,
                )
                with contextlib.suppress(Exception):
                    self._retry(row, SendResult(False, error=type(exc).__name__, uncertain=True))
        return len(rows)

    def next_due(self) -> datetime | None:
        """When a round would next find something to do (a row due on a platform
        that is not paused); None when the outbox holds nothing unsettled."""
        found = [
            max(due, self.paused_until.get(platform, due))
            for platform, due in self.outbox.next_due().items()
        ]
        return min(found) if found else None

    def _paused_platforms(self) -> list[str]:
        return [p for p in list(self.paused_until) if self._pause_left(p) > 0]

    def _pause_left(self, platform: str) -> float:
        until = self.paused_until.get(platform)
        if until is None:
            return 0.0
        left = (until - self.clock()).total_seconds()
        if left <= 0:
            del self.paused_until[platform]
            return 0.0
        return left

    def _pause(self, platform: str, seconds: float | None, row: OutboxRow) -> None:
        """The platform said "slow down" (Retry-After): pause all of it."""
        if seconds is None or seconds <= 0:
            return
        until = self.clock() + timedelta(seconds=seconds)
        if until > self.paused_until.get(platform, until - timedelta(seconds=1)):
            self.paused_until[platform] = until
            log.info(
                "outbox: %s asked to slow down (row %s, %s): pausing it for %.1fs",
                platform if platform.isidentifier() else "?",
                row.id,
                key_kind(row.dedupe_key),
                seconds,
            )

    async def run_until_idle(self, stop: asyncio.Event | None = None) -> int:
        """``run_once`` until a round claims less than a full batch; returns the total."""
        total = 0
        while True:
            claimed = await self.run_once(stop)
            total += claimed
            if claimed < self.policy.batch or (stop is not None and stop.is_set()):
                return total

    async def run_forever(self, stop: asyncio.Event, poll_interval: float = 1.0) -> None:
        """Deliver until ``stop`` is set: every ``poll_interval`` seconds, and at
        once when a row is queued. A failing round is logged and the loop goes on."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self.wakeup.clear()
            try:
                await self.run_until_idle(stop)
            except Exception as exc:
                log.warning("outbox round failed: %s", type(exc).__name__)
            if stop.is_set():
                break
            await _first_of(stop, self.wakeup, poll_interval)

    # one row -----------------------------------------------------------------------------------

    def _renew(self, row: OutboxRow, claimed_at: datetime | None) -> None:
        """Renew the claim's lease unless it will outlast the longest possible
        send anyway (saving a write per row in a big batch)."""
        if claimed_at is not None:
            ends = claimed_at + timedelta(seconds=self.policy.lease)
            if self.clock() + timedelta(seconds=self.policy.send_timeout + 1.0) < ends:
                return
        self.outbox.touch(row.id, self.policy.lease)

    async def _settle(self, row: OutboxRow, claimed_at: datetime | None = None) -> None:
        sender = self.senders.get(row.platform)
        if sender is None:
            log.warning(
                "outbox row %s (%s): no sender for platform %r is configured",
                row.id,
                key_kind(row.dedupe_key),
                row.platform if row.platform.isidentifier() else "?",
            )
            self._retry(
                row,
                SendResult(False, error=f"no sender for {row.platform}"),
                at_least=self.policy.max_delay,
            )
            return
        if row.uncertain:
            self.outbox.touch(row.id, self.policy.lease)
            found = await self._look(sender, row)
            if found is None:
                return  # could not look: settled as a retry
            ref, there = found
            if there:
                log.info(
                    "outbox row %s (%s) had already been delivered: not sent again",
                    row.id,
                    key_kind(row.dedupe_key),
                )
                self.outbox.mark_sent(row.id, ref)
                return
        await self._pace(row)
        await self._take_token(row.platform)
        self._renew(row, claimed_at)
        try:
            async with asyncio.timeout(self.policy.send_timeout):
                result = await sender.send(row.recipient, row.message, row.dedupe_key)
        except TimeoutError:
            result = SendResult(False, error="timed out", uncertain=True)
        except Exception as exc:
            result = SendResult(False, error=f"{type(exc).__name__} in send", uncertain=True)
        self._last_send[(row.platform, row.recipient)] = self.clock()
        if result.ok:
            self.outbox.mark_sent(row.id, result.platform_ref)
            if row.attempts > 1:
                log.info(
                    "outbox row %s (%s) delivered on attempt %d",
                    row.id,
                    key_kind(row.dedupe_key),
                    row.attempts,
                )
        elif result.permanent:
            self._dead(row, result.error or "refused")
        else:
            self._pause(row.platform, result.retry_after, row)
            self._retry(row, result)

    async def _look(self, sender: Sender, row: OutboxRow) -> tuple[str | None, bool] | None:
        """(ref, True) if an earlier attempt arrived, (None, False) if not; None
        when the platform could not be asked (the row is then settled)."""
        try:
            async with asyncio.timeout(self.policy.send_timeout):
                ref = await sender.find_sent(row.recipient, row.dedupe_key)
        except DeliveryFailed as failed:
            result = failed.result
        except TimeoutError:
            result = SendResult(False, error="timed out looking for an earlier delivery")
        except Exception as exc:
            result = SendResult(False, error=f"{type(exc).__name__} looking for a delivery")
        else:
            return (ref, ref is not None)
        if result.permanent:
            self._dead(row, result.error or "refused")
        else:
            self._pause(row.platform, result.retry_after, row)
            # Still unknown whether the earlier attempt arrived: keep looking first.
            self._retry(
                row,
                SendResult(
                    False, retry_after=result.retry_after, error=result.error, uncertain=True
                ),
            )
        return None

    async def _pace(self, row: OutboxRow) -> None:
        rate = self.policy.rate_per_second.get(row.platform)
        last = self._last_send.get((row.platform, row.recipient))
        if not rate or rate <= 0 or last is None:
            return
        wait = 1.0 / rate - (self.clock() - last).total_seconds()
        if wait > 0:
            await self.sleep(wait)

    async def _take_token(self, platform: str) -> None:
        """Keep to ``policy.platform_rate`` for the platform as a whole."""
        rate = self.policy.platform_rate.get(platform)
        if not rate or rate <= 0:
            return
        bucket = self._buckets.get(platform)
        if bucket is None or bucket.rate != rate:
            capacity = max(1.0, rate * self.policy.burst)
            bucket = self._buckets[platform] = _Bucket(rate, capacity, capacity, self.clock())
        wait = bucket.take(self.clock())
        if wait > 0:
            await self.sleep(wait)

    def _retry(self, row: OutboxRow, result: SendResult, at_least: float = 0.0) -> None:
        age = (self.clock() - _parse(row.created_at)).total_seconds()
        if age >= self.policy.give_up_after:
            self._dead(
                row,
                f"gave up after {age / 3600:.1f} hours and {row.attempts} attempts: "
                f"{result.error or 'not delivered'}",
            )
            return
        delay = self.random() * self.policy.backoff(row.attempts)
        if result.retry_after is not None:
            delay = max(delay, result.retry_after)
        delay = max(delay, at_least)
        self.outbox.mark_retry(
            row.id, result.error or "not delivered", delay, uncertain=result.uncertain
        )
        log.info(
            "outbox row %s (%s) not delivered (%s): attempt %d, next in %.1fs",
            row.id,
            key_kind(row.dedupe_key),
            result.error or "no reason given",
            row.attempts,
            delay,
        )

    def _dead(self, row: OutboxRow, error: str) -> None:
        self.outbox.mark_dead(row.id, error)
        log.warning(
            "outbox row %s (%s) could not be delivered and will not be retried: %s",
            row.id,
            key_kind(row.dedupe_key),
            error,
        )


@dataclass
class _Bucket:
    """A token bucket: ``rate`` tokens a second, holding at most ``capacity``."""

    rate: float
    capacity: float
    tokens: float
    at: datetime

    def take(self, now: datetime) -> float:
        """Take one token; the seconds to wait before using it (0: at once). A
        token taken on credit leaves the bucket below zero, so waits queue up."""
        elapsed = max(0.0, (now - self.at).total_seconds())
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.at = max(now, self.at)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


async def _first_of(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    """Wait until ``stop`` or ``wake`` is set, or ``timeout`` seconds pass."""
    if stop.is_set() or wake.is_set():
        return
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
