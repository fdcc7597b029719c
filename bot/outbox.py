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

The table (migration ``outbox_m001_table``)::

    outbox(id, dedupe_key UNIQUE, platform, recipient, payload, state,
           attempts, next_attempt_at, created_at, updated_at, sent_at,
           platform_ref, last_error, uncertain)
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
from collections.abc import Awaitable, Callable, Mapping
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


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("outbox_m001_table", _m001_table),
)

_COLUMNS = (
    "id, dedupe_key, platform, recipient, payload, state, attempts, next_attempt_at,"
    " created_at, sent_at, platform_ref, last_error, uncertain"
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
    ) -> bool:
        """Queue a message; False if ``dedupe_key`` was queued before (nothing changes).

        Safe inside the caller's ``db.atomic()``: it joins that transaction, so a
        rollback removes the row too."""
        if not dedupe_key or not platform or not recipient:
            raise GuidebotError("an outbox message needs a dedupe key, a platform and a recipient")
        if isinstance(message, Reply):
            message = OutgoingMessage(reply_to_data(message))
        plain = json.dumps(dict(message.reply), ensure_ascii=False, sort_keys=True)
        payload = self.box.seal(plain, f"outbox:{dedupe_key}")
        now = self._now()
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT INTO outbox (dedupe_key, platform, recipient, payload, state, attempts,"
                " next_attempt_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)"
                " ON CONFLICT (dedupe_key) DO NOTHING",
                [dedupe_key, platform, recipient, payload, now, now, now],
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

    def claim_due(self, limit: int, lease: float = 60.0) -> list[OutboxRow]:
        """Claim up to ``limit`` rows: pending ones that are due, and sending ones
        whose lease ran out (their worker died: marked ``uncertain``). Each is set
        to ``sending`` with a lease of ``lease`` seconds, in one statement.

        Returns nothing while a transaction is open on this connection (see the
        module notes); a row whose payload will not open is put back for later
        and logged, never returned."""
        if limit <= 0 or self.db.conn.in_transaction:
            return []
        now = self._now()
        until = self._later(lease)
        with self.db.atomic():
            found = self.db.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1,"
                " next_attempt_at = :until, updated_at = :now,"
                " uncertain = CASE WHEN state = 'sending' THEN 1 ELSE uncertain END"
                " WHERE id IN (SELECT id FROM outbox WHERE state IN ('pending', 'sending')"
                " AND next_attempt_at <= :now ORDER BY next_attempt_at, id LIMIT :limit)"
                f" RETURNING {_COLUMNS}",
                {"now": now, "until": until, "limit": limit},
            ).fetchall()
        rows: list[OutboxRow] = []
        for values in sorted(found, key=lambda v: (v[7], v[0])):
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
        with self.db.atomic():
            self.db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, updated_at = ?,"
                " attempts = max(0, attempts - 1) WHERE id = ? AND state = 'sending'",
                [self._later(delay), self._now(), id],
            )

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
    ``policy.rate_per_second`` for that platform and recipient. Success marks it
    sent; a permanent failure marks it dead; anything else is retried after
    ``random() * min(max_delay, base_delay * 2**(attempts-1))`` seconds (full
    jitter), never sooner than a Retry-After, until ``give_up_after`` seconds
    from when it was queued, when it is marked dead. An exception or a hang in
    one send (bounded by ``policy.send_timeout``) counts as a retryable,
    uncertain failure of that row and never stops the loop.

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
        rows = self.outbox.claim_due(self.policy.batch, self.policy.lease)
        started = self.clock()
        for index, row in enumerate(rows):
            elapsed = (self.clock() - started).total_seconds()
            if (stop is not None and stop.is_set()) or elapsed > self.policy.send_timeout:
                for rest in rows[index:]:
                    self.outbox.release(rest.id)
                break
            try:
                await self._settle(row)
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

    async def _settle(self, row: OutboxRow) -> None:
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
        self.outbox.touch(row.id, self.policy.lease)
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
