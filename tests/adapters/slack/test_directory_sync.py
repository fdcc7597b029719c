"""Slack ids for the staff directory, looked up by email against the Slack stand-in.

The real ``AsyncWebClient`` calls ``users.lookupByEmail`` on the stand-in; the
directory is a real SQLite file.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import make_web_client
from adapters.slack.directory_sync import lookup_by_email, school_token, sync_school
from bot.cli import cli
from bot.directory import Directory, StaffRow
from tests.conftest import copy_db
from tests.support import ANNES_TEAM, ANNES_TOKEN, TOKENS, settings_for
from tests.support.slack_standin import SlackStandIn

SCHOOL = "st-annes"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(TOKENS) as standin:
        yield standin


def plain_client(slack: SlackStandIn) -> AsyncWebClient:
    """A client with no retry handlers, so a 429 reaches the caller at once."""
    return AsyncWebClient(token=ANNES_TOKEN, base_url=slack.api_url, timeout=5)


@pytest.fixture
def directory(tmp_path: Path) -> Directory:
    found = Directory(sqlite_utils.Database(tmp_path / "staff.db"))
    found.import_rows(
        SCHOOL,
        [
            StaffRow(2, "ann.smith@school.org.uk", "Ann Smith", ("staff", "leader"), ("slt",)),
            StaffRow(3, "bob.jones@school.org.uk", "Bob Jones", ("staff",), ("teaching",)),
            StaffRow(4, "cat.lee@school.org.uk", "Cat Lee", ("staff",), ("office",)),
        ],
    )
    return found


async def test_an_email_slack_knows_gives_its_member_id(slack: SlackStandIn) -> None:
    slack.users_by_email["ann.smith@school.org.uk"] = "U0ANN"
    client = plain_client(slack)
    assert await lookup_by_email(client, "Ann.Smith@school.org.uk") == "U0ANN"
    [call] = slack.calls_to("users.lookupByEmail")
    assert call.params["email"] == "Ann.Smith@school.org.uk"
    assert call.token == ANNES_TOKEN


async def test_an_email_slack_does_not_know_is_none(slack: SlackStandIn) -> None:
    assert await lookup_by_email(plain_client(slack), "nobody@school.org.uk") is None
    [call] = slack.calls_to("users.lookupByEmail")
    assert call.ok is False  # Slack said users_not_found, and that is not an error here


async def test_a_rate_limit_raises_so_the_lookup_counts_as_failed(slack: SlackStandIn) -> None:
    slack.users_by_email["ann.smith@school.org.uk"] = "U0ANN"
    slack.rate_limit("users.lookupByEmail", times=1, retry_after=30)
    with pytest.raises(SlackApiError) as caught:
        await lookup_by_email(plain_client(slack), "ann.smith@school.org.uk")
    assert caught.value.response.status_code == 429


async def test_other_errors_raise_too(slack: SlackStandIn) -> None:
    slack.error("users.lookupByEmail", "invalid_auth")
    with pytest.raises(SlackApiError):
        await lookup_by_email(plain_client(slack), "ann.smith@school.org.uk")


async def test_sync_links_found_people_counts_the_rest_and_retries_failures(
    slack: SlackStandIn, directory: Directory
) -> None:
    slack.users_by_email.update(
        {"ann.smith@school.org.uk": "U0ANN", "cat.lee@school.org.uk": "U0CAT"}
    )
    # Lookups go in name order: Ann (rate limited), Bob (not in Slack), Cat (found).
    slack.rate_limit("users.lookupByEmail", times=1, retry_after=30)
    client = plain_client(slack)

    first = await sync_school(directory, client, SCHOOL)

    assert (first.resolved, first.not_found, first.failed) == (1, 1, 1)
    people = {p.name: p for p in directory.people(SCHOOL)}
    # The rate limit hit Ann's lookup: she is tried again next time.
    assert people["Ann Smith"].slack_user_id is None
    assert people["Bob Jones"].slack_user_id is None
    assert people["Cat Lee"].slack_user_id == "U0CAT"

    second = await sync_school(directory, client, SCHOOL)

    assert (second.resolved, second.not_found, second.failed) == (1, 1, 0)
    assert directory.by_platform(SCHOOL, "slack", "U0ANN") == directory.by_email(
        SCHOOL, "ann.smith@school.org.uk"
    )
    # Only people still without an id are asked about: Cat was not looked up again.
    asked = [c.params["email"] for c in slack.calls_to("users.lookupByEmail")]
    assert asked.count("cat.lee@school.org.uk") == 1


async def test_sync_with_the_apps_own_client_and_a_workspace_token(
    slack: SlackStandIn, directory: Directory, tmp_path: Path
) -> None:
    """As ``guidebot staff sync`` runs it: the app's client (no token of its own)
    and the school's workspace token from the settings."""
    settings = settings_for(tmp_path / "guidebot.db", slack.api_url)
    assert settings.slack is not None
    token = school_token(settings.slack, SCHOOL)
    assert token == ANNES_TOKEN
    assert school_token(settings.slack, "nowhere") is None
    slack.users_by_email["bob.jones@school.org.uk"] = "U0BOB"
    client = make_web_client(slack.api_url, retry_interval=0.01)

    summary = await sync_school(directory, client, SCHOOL, token)

    assert (summary.resolved, summary.not_found, summary.failed) == (1, 2, 0)
    assert all(c.token == ANNES_TOKEN for c in slack.calls_to("users.lookupByEmail"))
    bob = directory.by_email(SCHOOL, "bob.jones@school.org.uk")
    assert bob is not None and bob.slack_user_id == "U0BOB"


# --- guidebot staff sync ------------------------------------------------------------------------


@pytest.fixture
def slack_in_a_thread() -> Iterator[SlackStandIn]:
    """The stand-in on an event loop of its own, for a command that runs its own loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def started() -> SlackStandIn:
        return await SlackStandIn(TOKENS).start()

    standin = asyncio.run_coroutine_threadsafe(started(), loop).result(10)
    try:
        yield standin
    finally:
        asyncio.run_coroutine_threadsafe(standin.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_guidebot_staff_sync_looks_everyone_up_once(
    slack_in_a_thread: SlackStandIn, tmp_path: Path, pristine_sample_db: Path
) -> None:
    database = copy_db(pristine_sample_db, tmp_path / "guidebot.db")
    db = sqlite_utils.Database(database)
    Directory(db).import_rows(
        SCHOOL,
        [
            StaffRow(2, "ann.smith@school.org.uk", "Ann Smith", ("staff", "leader"), ()),
            StaffRow(3, "bob.jones@school.org.uk", "Bob Jones", ("staff",), ()),
        ],
    )
    db.close()
    slack_in_a_thread.users_by_email["ann.smith@school.org.uk"] = "U0ANN"
    config = tmp_path / "guidebot.toml"
    config.write_text(
        f"""
[server]
database = "{database}"

[slack]
transport = "http"
api_url = "{slack_in_a_thread.api_url}"

[[slack.workspace]]
team_id = "{ANNES_TEAM}"
school = "{SCHOOL}"
""",
        encoding="utf-8",
    )
    env = {"SLACK_BOT_TOKEN": ANNES_TOKEN, "SLACK_SIGNING_SECRET": "s" * 32}

    result = CliRunner().invoke(
        cli, ["staff", "sync", "--school", SCHOOL, "--config", str(config)], env=env
    )

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f"{SCHOOL}: 1 found in Slack, 1 not found, 0 failed (tried again next time)"
    )
    calls = slack_in_a_thread.calls_to("users.lookupByEmail")
    assert sorted(c.params["email"] for c in calls) == [
        "ann.smith@school.org.uk",
        "bob.jones@school.org.uk",
    ]
    assert all(c.token == ANNES_TOKEN for c in calls)
    db = sqlite_utils.Database(database)
    ann = Directory(db).by_email(SCHOOL, "ann.smith@school.org.uk")
    db.close()
    assert ann is not None and ann.slack_user_id == "U0ANN"


def test_guidebot_staff_sync_needs_a_workspace_for_the_school(
    tmp_path: Path, pristine_sample_db: Path
) -> None:
    database = copy_db(pristine_sample_db, tmp_path / "guidebot.db")
    config = tmp_path / "guidebot.toml"
    config.write_text(
        f'[server]\ndatabase = "{database}"\n\n[slack]\ntransport = "http"\n\n'
        f'[[slack.workspace]]\nteam_id = "{ANNES_TEAM}"\nschool = "crossflatts"\n',
        encoding="utf-8",
    )
    env = {"SLACK_BOT_TOKEN": ANNES_TOKEN, "SLACK_SIGNING_SECRET": "s" * 32}
    result = CliRunner().invoke(
        cli, ["staff", "sync", "--school", SCHOOL, "--config", str(config)], env=env
    )
    assert result.exit_code == 2
    assert "no Slack workspace" in result.output and SCHOOL in result.output


async def test_the_daily_sweep_looks_up_only_schools_with_people_missing_an_id(
    slack: SlackStandIn, directory: Directory, tmp_path: Path
) -> None:
    from adapters.slack.directory_sync import sync_all

    settings = settings_for(tmp_path / "unused.db", slack.api_url)
    assert settings.slack is not None
    slack.users_by_email["ann.smith@school.org.uk"] = "U0ANN"
    slack.users_by_email["bob.jones@school.org.uk"] = "U0BOB"
    slack.users_by_email["cat.lee@school.org.uk"] = "U0CAT"
    assert await sync_all(directory, plain_client(slack), settings.slack) == 3
    assert len(slack.calls_to("users.lookupByEmail")) == 3
    # Everyone has an id now: the next day's sweep asks Slack nothing.
    assert await sync_all(directory, plain_client(slack), settings.slack) == 0
    assert len(slack.calls_to("users.lookupByEmail")) == 3
