"""The broadcast form's questions and how its answers are checked, for every platform.

A Slack modal and a Teams card ask the same questions with the same ids; each
adapter reads its platform's payload into plain answers and ``read_answers``
turns them into a ``Draft``, or into a message for each ``Draft`` field that
needs another look. What differs stays in the adapter: how a send time is
picked, and which input shows each message (``FIELD_BLOCKS`` / ``FIELD_INPUTS``).
Also here: what the form carries when it is made from a policy-change offer,
and how a broadcast's times and names are written for staff.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot import policy_changes, wording
from bot.broadcasts import MAX_AHEAD, BroadcastStatus, Draft
from bot.broadcasts import MAX_MESSAGE as MAX_MESSAGE  # the form's limits are the core's
from bot.broadcasts import MAX_TITLE as MAX_TITLE
from bot.directory import Directory
from knowledge.store import KnowledgeBase

TITLE = "broadcast_title"
MESSAGE = "broadcast_message"
POLICY = "broadcast_policy"
AUDIENCE = "broadcast_audience"
GROUPS = "broadcast_groups"
ACK = "broadcast_ack"

FIELD_IDS = {
    "title": TITLE,
    "message": MESSAGE,
    "policy": POLICY,
    "groups": GROUPS,
    "audience": AUDIENCE,
    "requires_ack": ACK,
}
"""The question for each ``Draft`` field the core may object to; each platform
adds its own for ``send_at`` (Slack picks a moment, Teams a date and a time)."""

EVERYONE, SOME_GROUPS = "everyone", "groups"

MAX_NAMES = 20
"""Names listed as outstanding (or unreachable) before "and N more"."""
LONDON = ZoneInfo("Europe/London")


def form_choices(
    kb: KnowledgeBase, directory: Directory | None, school: str
) -> tuple[list[tuple[str, str]], list[str]]:
    """What the form offers: the school's policies as (key, title), and the
    directory's groups (none without a directory)."""
    policies = [(p.key, p.title) for p in kb.policies(school)]
    groups = directory.groups(school) if directory is not None else []
    return policies, groups


def read_answers(
    answers: Mapping[str, str],
    chosen_groups: Iterable[str],
    *,
    requires_ack: bool,
    send_at: datetime | None,
    send_at_problem: str | None,
    now: datetime,
    policies: Collection[str],
    groups: Collection[str],
) -> tuple[Draft | None, dict[str, str]]:
    """The form, or None and an error message for each ``Draft`` field that needs
    another look. ``answers`` holds stripped strings by id (TITLE, MESSAGE,
    POLICY: "" for none, AUDIENCE); ``chosen_groups`` counts only when the
    audience is SOME_GROUPS. ``send_at`` (or why the picked time could not be
    read) is the adapter's to work out; it must be after ``now`` (timezone-aware)
    and within ``MAX_AHEAD``. ``policies`` and ``groups`` are what the school has
    now (a choice may have gone since the form was opened)."""
    errors: dict[str, str] = {}
    title = answers.get(TITLE, "")
    if not title:
        errors["title"] = wording.broadcast_missing_title()
    elif len(title) > MAX_TITLE:
        errors["title"] = wording.broadcast_too_long(MAX_TITLE)
    message = answers.get(MESSAGE, "")
    if not message:
        errors["message"] = wording.broadcast_missing_message()
    elif len(message) > MAX_MESSAGE:
        errors["message"] = wording.broadcast_too_long(MAX_MESSAGE)

    policy = answers.get(POLICY, "") or None
    if policy is not None and policy not in policies:
        errors["policy"] = wording.broadcast_unknown_policy()

    chosen: tuple[str, ...] = ()
    if answers.get(AUDIENCE, "") == SOME_GROUPS:
        chosen = tuple(dict.fromkeys(chosen_groups))
        if not chosen:
            errors["groups"] = wording.broadcast_no_groups_chosen()
        elif any(group not in groups for group in chosen):
            errors["groups"] = wording.broadcast_unknown_group()

    if send_at_problem is None and send_at is not None and send_at <= now:
        send_at_problem = wording.broadcast_send_time_past()
    if send_at_problem is not None:
        errors["send_at"] = send_at_problem

    if errors:
        return None, errors
    if send_at is not None and send_at > now + MAX_AHEAD:
        return None, {"send_at": wording.broadcast_refused_time()}
    draft = Draft(
        title=title,
        message=message,
        policy=policy,
        groups=chosen,
        requires_ack=requires_ack,
        send_at=send_at,
    )
    return draft, {}


# --- a form made from a policy-change offer --------------------------------------------


def offer_draft(kb: KnowledgeBase, school: str, policy_key: str) -> Draft | None:
    """The ready-made broadcast for a changed policy, if it is still pending."""
    found = policy_changes.pending_offers(kb, school, policy_key)
    return policy_changes.draft_from(found[0]) if found else None


def offer_ref(draft: Draft | None) -> str:
    """What the form carries to say it was made from a policy-change offer:
    ``v<version>:<policy key>`` (the offer then stops being pending)."""
    if draft is None or draft.from_policy_version is None or not draft.policy:
        return ""
    return f"v{draft.from_policy_version}:{draft.policy}"


def with_offer(draft: Draft, ref: str) -> Draft:
    """The submitted draft, marked as made from the offer when it still links that policy."""
    version, _, policy = ref.removeprefix("v").partition(":")
    if not version.isdigit() or not policy or draft.policy != policy:
        return draft
    return dataclasses.replace(draft, from_policy_version=int(version))


# --- words for staff ---------------------------------------------------------------------


def london_time(value: str | datetime) -> str:
    """A moment as staff in England read it: "Monday 24 November 2026 at 09:00"."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(LONDON)
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M}"


def names_text(names: Sequence[str], limit: int = MAX_NAMES) -> str:
    """The first ``limit`` names, then "and N more" (plain text)."""
    shown = ", ".join(" ".join(name.split()) for name in names[:limit])
    if len(names) > limit:
        shown += ", " + wording.broadcast_and_more(len(names) - limit)
    return shown


def confirmation_text(status: BroadcastStatus) -> str:
    """ "Sent to N people" or "Scheduled for ..." in words."""
    if status.state == "scheduled":
        return wording.broadcast_scheduled(status.title, london_time(status.send_at))
    return wording.broadcast_sent(status.title, status.recipients)


def ack_outcome_text(outcome: str) -> str:
    """What the person who pressed "I have read and understood" is told."""
    texts = {
        "recorded": wording.broadcast_ack_recorded,
        "already": wording.broadcast_ack_already,
        "not_recipient": wording.broadcast_ack_not_recipient,
    }
    return texts.get(outcome, wording.broadcast_ack_unknown)()
