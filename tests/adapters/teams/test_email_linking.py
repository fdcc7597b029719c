"""The staff directory learns Teams users by email, end to end.

When someone whose Entra object id the directory does not know writes to the
bot, the server asks the Bot Connector (the Teams stand-in) for the member
(``GET v3/conversations/{id}/members/{userId}``) and links their email. At most
once per person per process; a failure never stops the answer and is logged
without the email.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.server import DIRECTORY_KEY
from bot.directory import Directory, StaffRow
from tests.support.teams_standin import (
    PERSONAL,
    STAFF_AAD,
    STAFF_ID,
    Call,
    TeamsGuidebot,
    TeamsStandIn,
    personal_message,
    teams_settings,
)

SCHOOL = "st-annes"
EMAIL = "sam.staff@annes.sch.uk"
LEADER_ROW = StaffRow(2, "lena@annes.sch.uk", "Lena Leader", ("staff", "leader"), ("slt",))
STAFF_ROW = StaffRow(3, EMAIL, "Sam Staff", ("staff",), ("teaching",))


def member(email: str = EMAIL, *, upn: str | None = None) -> dict[str, Any]:
    """A member as the Bot Connector describes one."""
    return {
        "id": STAFF_ID,
        "name": "Sam Staff",
        "aadObjectId": STAFF_AAD,
        "email": email,
        "userPrincipalName": upn or email,
        "tenantId": "0a1b2c3d-1111-4a4a-8b8b-000000000001",
        "userRole": "user",
    }


@pytest.fixture
async def standin() -> AsyncIterator[TeamsStandIn]:
    async with TeamsStandIn() as server:
        yield server


@pytest.fixture
async def guidebot(standin: TeamsStandIn, sample_db_copy: Path) -> AsyncIterator[TeamsGuidebot]:
    bot = TeamsGuidebot(teams_settings(sample_db_copy, standin))
    bot.app[DIRECTORY_KEY].import_rows(SCHOOL, [LEADER_ROW, STAFF_ROW])
    async with bot:
        await bot.idle()
        yield bot


def directory(guidebot: TeamsGuidebot) -> Directory:
    return guidebot.app[DIRECTORY_KEY]


async def say(guidebot: TeamsGuidebot, standin: TeamsStandIn, text: str) -> list[Call]:
    before = len(standin.calls)
    status, _ = await guidebot.send(personal_message(text, standin.service_url))
    assert status in (200, 202)
    await guidebot.idle()
    return standin.calls[before:]


def member_calls(standin: TeamsStandIn) -> list[Call]:
    return [c for c in standin.calls if c.kind == "member"]


def replies(calls: list[Call]) -> list[Call]:
    """Messages delivered into the 1:1 chat (not the member lookups)."""
    return [
        c
        for c in calls
        if c.kind in ("reply", "send") and c.conversation_id == PERSONAL and c.delivered
    ]


def answered(calls: list[Call]) -> bool:
    return bool(replies(calls))


async def test_a_new_teams_user_is_linked_by_email_once(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    standin.members[STAFF_ID] = member(EMAIL.upper())
    assert directory(guidebot).by_platform(SCHOOL, "teams", STAFF_AAD) is None

    calls = await say(guidebot, standin, "can I accept a friend request from an ex-pupil?")

    assert answered(calls)
    [lookup] = member_calls(standin)
    assert lookup.conversation_id == PERSONAL
    assert lookup.body == {"member": STAFF_ID}
    assert lookup.authorization and lookup.authorization.startswith("Bearer ")
    person = directory(guidebot).by_platform(SCHOOL, "teams", STAFF_AAD)
    assert person is not None and person.email == EMAIL

    await say(guidebot, standin, "hello again")
    assert len(member_calls(standin)) == 1  # known now: not asked again


async def test_the_user_principal_name_serves_when_there_is_no_email(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    found = member(EMAIL)
    del found["email"]
    standin.members[STAFF_ID] = found
    await say(guidebot, standin, "hello")
    person = directory(guidebot).by_platform(SCHOOL, "teams", STAFF_AAD)
    assert person is not None and person.email == EMAIL


async def test_someone_not_in_the_directory_is_asked_about_once(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    standin.members[STAFF_ID] = member("visitor@elsewhere.org")
    assert answered(await say(guidebot, standin, "hello"))
    assert answered(await say(guidebot, standin, "hello"))
    assert len(member_calls(standin)) == 1
    assert directory(guidebot).by_platform(SCHOOL, "teams", STAFF_AAD) is None


async def test_a_failed_lookup_never_stops_the_answer_nor_logs_the_email(
    guidebot: TeamsGuidebot, standin: TeamsStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    standin.members[STAFF_ID] = member()
    standin.member_status = 500
    caplog.set_level(logging.INFO)

    assert answered(await say(guidebot, standin, "hello"))

    assert len(member_calls(standin)) >= 1
    assert directory(guidebot).by_platform(SCHOOL, "teams", STAFF_AAD) is None
    assert any("email for the staff directory was not fetched" in r.message for r in caplog.records)
    assert EMAIL not in caplog.text and "sam.staff" not in caplog.text
    # At most once per person per process: the next message does not ask again.
    lookups = len(member_calls(standin))
    assert answered(await say(guidebot, standin, "hello"))
    assert len(member_calls(standin)) == lookups


async def test_a_leader_linked_by_email_can_broadcast_at_once(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    """A leader whose first words to the bot are "broadcast" is linked first,
    so they get the form rather than a refusal."""
    directory(guidebot).import_rows(
        SCHOOL,
        [
            StaffRow(2, EMAIL, "Sam Staff", ("staff", "leader"), ("slt",)),
            StaffRow(3, "tina@annes.sch.uk", "Tina Teacher", ("staff",), ("teaching",)),
        ],
    )
    standin.members[STAFF_ID] = member()
    calls = await say(guidebot, standin, "broadcast")
    [card] = [c.card for c in replies(calls)]
    assert "Input.Text" in str(card)


async def test_a_school_without_a_staff_list_asks_nobody(
    standin: TeamsStandIn, sample_db_copy: Path
) -> None:
    standin.members[STAFF_ID] = member()
    async with TeamsGuidebot(teams_settings(sample_db_copy, standin)) as bot:
        await bot.idle()
        assert answered(await say(bot, standin, "hello"))
    assert member_calls(standin) == []
