"""Who may post to /api/messages: Bot Framework tokens checked by botbuilder,
bodies checked before it, and no way to run without authentication by accident.

Tokens are minted in ``tests.support.bot_tokens`` with the key the Teams
stand-in publishes (and, for the bad ones, everything an attacker would try);
every refusal must leave the database and the Bot Connector untouched."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.server import build_app, serve
from adapters.teams.auth import check_mode, is_loopback
from bot.config import ConfigError
from tests.support.bot_tokens import OTHER_APP_ID, TokenMinter, bearer
from tests.support.teams_standin import (
    TeamsGuidebot,
    TeamsStandIn,
    channel_message,
    personal_message,
    replace,
    replace_teams,
    teams_settings,
)

FRIEND_REQUEST = "can I accept a friend request from an ex-pupil?"
SECRET_WORD = "Zanzibar-7f3c"
"""Put in bodies that must never reach a log or a response."""
JSON = "application/json; charset=utf-8"


@pytest.fixture
async def standin() -> AsyncIterator[TeamsStandIn]:
    async with TeamsStandIn() as server:
        yield server


@pytest.fixture
async def guidebot(standin: TeamsStandIn, sample_db_copy: Path) -> AsyncIterator[TeamsGuidebot]:
    async with TeamsGuidebot(teams_settings(sample_db_copy, standin)) as server:
        await server.idle()
        yield server


def _activity(standin: TeamsStandIn) -> dict[str, Any]:
    return personal_message(f"{SECRET_WORD} {FRIEND_REQUEST}", standin.service_url)


# --- tokens --------------------------------------------------------------------------------------

Mint = Callable[[TokenMinter, str], str | None]

BAD_TOKENS: list[tuple[str, Mint]] = [
    ("no Authorization header", lambda m, url: None),
    ("expired", TokenMinter.expired),
    ("not yet valid", TokenMinter.not_yet_valid),
    ("signed with another key", TokenMinter.wrong_key),
    ("a key nobody published", TokenMinter.unknown_kid),
    ("alg none", TokenMinter.alg_none),
    ("HS256 keyed with the public key", TokenMinter.hs256_with_public_key),
    ("another audience", TokenMinter.wrong_audience),
    ("another issuer", TokenMinter.wrong_issuer),
    ("issued as the Emulator's are", TokenMinter.emulator_issued),
    ("serviceurl of another host", TokenMinter.serviceurl_mismatch),
    ("no serviceurl claim", TokenMinter.without_serviceurl),
]


@pytest.mark.parametrize(("mint"), [pytest.param(m, id=name) for name, m in BAD_TOKENS])
async def test_a_bad_token_is_refused_and_leaves_no_trace(
    guidebot: TeamsGuidebot,
    standin: TeamsStandIn,
    caplog: pytest.LogCaptureFixture,
    mint: Mint,
) -> None:
    caplog.set_level(logging.DEBUG)
    activity = _activity(standin)
    token = mint(guidebot.minter, activity["serviceUrl"])
    headers = {"Content-Type": JSON, **(bearer(token) if token else {})}
    rows = guidebot.dump()
    status, text = await guidebot.post(json.dumps(activity), headers)
    assert (status, text) == (401, "unauthorized")
    await guidebot.idle()
    assert guidebot.dump() == rows
    assert standin.activity_calls() == []
    assert "Refused a request to /api/messages" in caplog.text
    assert SECRET_WORD not in caplog.text
    assert "Traceback" not in caplog.text
    if token:
        assert token not in caplog.text


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer not-a-jwt", "bearer a.b.c", "Bearer a.b.c"],
)
async def test_a_malformed_authorization_header_is_refused(
    guidebot: TeamsGuidebot, standin: TeamsStandIn, header: str
) -> None:
    rows = guidebot.dump()
    headers = {"Content-Type": JSON, "Authorization": header}
    status, _ = await guidebot.post(json.dumps(_activity(standin)), headers)
    assert status == 401
    assert guidebot.dump() == rows


async def test_a_channel_the_signing_key_is_not_endorsed_for_is_refused(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    activity = _activity(standin)
    activity["channelId"] = "webchat"  # the stand-in's key is endorsed for msteams only
    status, _ = await guidebot.send(activity)
    assert status == 401
    assert standin.activity_calls() == []


async def test_a_genuine_token_passes_and_the_keys_are_fetched_once(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    for _ in range(3):
        status, _ = await guidebot.send(personal_message(FRIEND_REQUEST, standin.service_url))
        assert status == 202
    await guidebot.idle()
    assert len(standin.delivered()) == 3
    assert standin.key_fetches == 1


async def test_a_token_for_another_app_id_is_refused(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    activity = _activity(standin)
    other = TokenMinter(app_id=OTHER_APP_ID).token(activity["serviceUrl"])
    status, _ = await guidebot.send(activity, other)
    assert status == 401


async def test_signing_keys_that_cannot_be_fetched_give_503_not_401(
    sample_db_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with TeamsStandIn() as gone:
        metadata_url = gone.metadata_url  # a port nobody listens on once it closes
        service_url = gone.service_url
    async with TeamsStandIn() as standin:
        settings = teams_settings(sample_db_copy, standin)
        settings = replace_teams(settings, openid_metadata_url=metadata_url)
        async with TeamsGuidebot(settings) as server:
            await server.idle()
            assert "signing keys could not be fetched" in caplog.text
            status, _ = await server.send(personal_message(FRIEND_REQUEST, service_url))
            assert status == 503
            assert standin.activity_calls() == []


# --- bodies --------------------------------------------------------------------------------------


def _bodies() -> list[Any]:
    not_utf8 = b'{"type": "message", "text": "' + SECRET_WORD.encode() + b'\xff\xfe"}'
    cases: list[tuple[str, bytes | str, str | None]] = [
        ("invalid JSON", "{" + SECRET_WORD, JSON),
        ("JSON that is not an object", f'["{SECRET_WORD}"]', JSON),
        ("not UTF-8", not_utf8, JSON),
        ("empty", "", JSON),
        ("text/plain", "{}", "text/plain"),
        ("a form", f"text={SECRET_WORD}", "application/x-www-form-urlencoded"),
        ("no content type", "{}", None),
        ("no activity type", '{"serviceUrl": "http://127.0.0.1/", "text": "x"}', JSON),
        ("no serviceUrl", '{"type": "message", "text": "x"}', JSON),
        ("a timestamp that is not one", '{"type": "message", "timestamp": "soon"}', JSON),
        ("deeply nested", "[" * 100_000 + "]" * 100_000, JSON),
    ]
    return [pytest.param(body, kind, id=name) for name, body, kind in cases]


@pytest.mark.parametrize(("body", "content_type"), _bodies())
async def test_a_malformed_request_is_a_400_never_a_500(
    guidebot: TeamsGuidebot,
    standin: TeamsStandIn,
    caplog: pytest.LogCaptureFixture,
    body: bytes | str,
    content_type: str | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = bearer(guidebot.minter.token(standin.service_url))
    skip: tuple[str, ...] = ()
    if content_type is None:
        skip = ("Content-Type",)
    else:
        headers["Content-Type"] = content_type
    rows = guidebot.dump()
    status, text = await guidebot.post(body, headers, skip_auto_headers=skip)
    assert (status, text) == (400, "bad request")
    await guidebot.idle()
    assert guidebot.dump() == rows
    assert standin.activity_calls() == []
    assert SECRET_WORD not in caplog.text
    assert "Traceback" not in caplog.text
    assert "Refused a request to /api/messages" in caplog.text


async def test_an_oversized_body_is_a_413(guidebot: TeamsGuidebot, standin: TeamsStandIn) -> None:
    activity = _activity(standin)
    activity["padding"] = "x" * (1024 * 1024)
    headers = {"Content-Type": JSON, **bearer(guidebot.minter.token(standin.service_url))}
    status, text = await guidebot.post(json.dumps(activity), headers)
    assert (status, text) == (413, "request too large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: found while reading
        for _ in range(40):
            yield b"x" * 65536

    async with guidebot.session.post(
        guidebot.url + "/api/messages", data=chunks(), headers=headers
    ) as response:
        assert response.status == 413
    assert standin.activity_calls() == []


# --- without an app id ------------------------------------------------------------------------


def test_without_an_app_id_build_app_refuses(sample_db_copy: Path) -> None:
    settings = teams_settings(sample_db_copy, TeamsStandIn(), app_id=None)
    with pytest.raises(ConfigError, match=r"teams\.app_id"):
        build_app(settings, sample_db_copy)


def test_without_an_app_id_serve_refuses(sample_db_copy: Path) -> None:
    settings = teams_settings(sample_db_copy, TeamsStandIn(), app_id=None)
    with pytest.raises(ConfigError, match=r"teams\.app_id"):
        serve(settings)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "guidebot.school.example"])
def test_insecure_local_is_refused_off_loopback(sample_db_copy: Path, host: str) -> None:
    settings = teams_settings(sample_db_copy, TeamsStandIn(), app_id=None, host=host)
    with pytest.raises(ConfigError, match="loopback"):
        build_app(settings, sample_db_copy, insecure_local=True)
    with pytest.raises(ConfigError, match="loopback"):
        serve(settings, insecure_local=True)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("localhost.evil", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_modes(sample_db_copy: Path) -> None:
    standin = TeamsStandIn()
    on = teams_settings(sample_db_copy, standin)
    assert check_mode(on, insecure_local=False) == "on"
    assert check_mode(on, insecure_local=True) == "on"  # an app id keeps it on
    off = teams_settings(sample_db_copy, standin, app_id=None)
    assert check_mode(off, insecure_local=True) == "insecure"
    assert check_mode(replace(off, teams=None), insecure_local=False) == "off"


async def test_insecure_local_on_loopback_answers_unauthenticated_and_says_so_loudly(
    standin: TeamsStandIn, sample_db_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = teams_settings(sample_db_copy, standin, app_id=None)
    async with TeamsGuidebot(settings, insecure_local=True) as server:
        [warning] = [r for r in caplog.records if "authentication is OFF" in r.getMessage()]
        assert warning.levelno == logging.WARNING
        assert "local testing only" in warning.getMessage()
        assert await server.get("/healthz") == (
            200,
            {
                "status": "ok",
                "database": "ok",
                "slack": "off",
                "teams": "insecure",
                "connections": {"teams": "listening"},
                "scheduler": "running",
                "outbox": {"pending": 0, "dead": 0},
            },
        )
        activity = personal_message(FRIEND_REQUEST, standin.service_url)
        status, _ = await server.send(activity, signed=False)
        assert status == 202
        await server.idle()
    [reply] = standin.delivered()
    assert "accept 'friend requests' from" in reply.card_text
    assert reply.authorization is None  # no credentials to send either


async def test_insecure_local_with_an_app_id_keeps_authentication_on(
    standin: TeamsStandIn, sample_db_copy: Path
) -> None:
    settings = teams_settings(sample_db_copy, standin)
    async with TeamsGuidebot(settings, insecure_local=True) as server:
        status, _ = await server.send(
            personal_message(FRIEND_REQUEST, standin.service_url), signed=False
        )
        assert status == 401
        assert (await server.get("/healthz"))[1]["teams"] == "on"


async def test_a_channel_message_needs_a_token_like_any_other(
    guidebot: TeamsGuidebot, standin: TeamsStandIn
) -> None:
    activity = channel_message(FRIEND_REQUEST, standin.service_url)
    status, _ = await guidebot.send(activity, signed=False)
    assert status == 401
