"""Slack member ids for the staff directory, found by email.

HR's staff list has emails, not Slack ids, so each person is looked up with
``users.lookupByEmail`` (bot scopes ``users:read`` and ``users:read.email``).
``Directory.resolve_slack`` asks only about people still without an id and
counts the outcome: ``users_not_found`` is "not found" (they may not have
joined Slack yet); anything else that goes wrong (a rate limit that outlasts
the client's retries, a revoked token, Slack being down) raises, so it is
counted as failed and simply tried again at the next sync.

Emails are personal data: log lines here give counts and error codes only.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import SlackSettings
from bot.directory import Directory, ResolveSummary

log = logging.getLogger(__name__)

NOT_FOUND = frozenset({"users_not_found"})
"""Errors meaning "nobody in this workspace has that email"."""


async def lookup_by_email(
    client: AsyncWebClient, email: str, token: str | None = None
) -> str | None:
    """The Slack member id with ``email``, or None when the workspace has nobody
    with it. Other errors raise (``SlackApiError``, timeouts), so the caller can
    count the lookup as failed and try again later."""
    try:
        response = await client.users_lookupByEmail(email=email, token=token)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error in NOT_FOUND:
            return None
        raise
    user = response.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return None
    if isinstance(user, dict) and (user.get("deleted") or user.get("is_bot")):
        return None  # a deactivated account or a bot cannot be sent a broadcast
    return user_id


async def sync_school(
    directory: Directory, client: AsyncWebClient, school: str, token: str | None = None
) -> ResolveSummary:
    """Look up, by email, everyone at ``school`` who has no Slack id yet.
    ``token``: the school's bot token, when ``client`` carries none."""

    async def lookup(email: str) -> str | None:
        return await lookup_by_email(client, email, token)

    summary = await directory.resolve_slack(school, lookup)
    log.info(
        "Slack ids for %s: %d found, %d not in Slack, %d failed (tried again next time)",
        school,
        summary.resolved,
        summary.not_found,
        summary.failed,
    )
    return summary


def school_token(settings: SlackSettings, school: str) -> str | None:
    """The bot token of the workspace that answers for ``school``, if any."""
    for workspace in settings.workspaces:
        if workspace.school == school:
            return workspace.bot_token.reveal()
    return None


async def sync_all(directory: Directory, client: AsyncWebClient, settings: SlackSettings) -> int:
    """The daily sweep: every workspace's school with people still missing a
    Slack id is looked up; returns how many ids were found."""
    found = 0
    for workspace in settings.workspaces:
        if not directory.unresolved(workspace.school, "slack"):
            continue
        summary = await sync_school(
            directory, client, workspace.school, workspace.bot_token.reveal()
        )
        found += summary.resolved
    return found
