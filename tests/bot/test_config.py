"""Settings from guidebot.toml and the environment: fail fast, name the setting,
never show a secret."""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, Secret, Settings, load, parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "guidebot.example.toml"

BOT_TOKEN = "xoxb-1111-2222-st-annes-bot-token"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"
APP_TOKEN = "xapp-1-A111-222-app-level-token"
SECRET_VALUES = (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN)

SERVER = """
[server]
host = "127.0.0.1"
port = 8080
database = "data/guidebot.db"
"""
WORKSPACE = """
[[slack.workspace]]
team_id = "T0123ABC"
school = "St Annes"
bot_token_env = "SLACK_BOT_TOKEN_ST_ANNES"
"""
SCHOOLS = """
[schools.st-annes]
policy_contact_slack = "U0CONTACT1"
"""
GOOD = SERVER + '\n[slack]\ntransport = "http"\n' + WORKSPACE + SCHOOLS
GOOD_ENV = {"SLACK_BOT_TOKEN_ST_ANNES": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
SOCKET = SERVER + '\n[slack]\ntransport = "socket"\n' + WORKSPACE
SOCKET_ENV = {"SLACK_BOT_TOKEN_ST_ANNES": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}


def write(tmp_path: Path, text: str, name: str = "guidebot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


BROKEN: list[tuple[str, str, dict[str, str], tuple[str, ...]]] = [
    ("slack-without-workspace", '[slack]\ntransport = "http"\n', GOOD_ENV, ("slack.workspace",)),
    (
        "empty-workspace-list",
        "[slack]\nworkspace = []\n",
        GOOD_ENV,
        ("[[slack.workspace]]",),
    ),
    (
        "bad-team-id",
        GOOD.replace('"T0123ABC"', '"acme-primary"'),
        GOOD_ENV,
        ("slack.workspace[1].team_id", "acme-primary"),
    ),
    (
        "missing-team-id",
        GOOD.replace('team_id = "T0123ABC"\n', ""),
        GOOD_ENV,
        ("slack.workspace[1].team_id", "missing"),
    ),
    (
        "missing-school",
        GOOD.replace('school = "St Annes"\n', ""),
        GOOD_ENV,
        ("slack.workspace[1].school", "missing"),
    ),
    (
        "duplicate-team-id",
        GOOD + WORKSPACE.replace("SLACK_BOT_TOKEN_ST_ANNES", "SLACK_BOT_TOKEN_OTHER"),
        {**GOOD_ENV, "SLACK_BOT_TOKEN_OTHER": "xoxb-other"},
        ("slack.workspace[2].team_id", "T0123ABC", "twice"),
    ),
    (
        "http-without-signing-secret",
        GOOD,
        without(GOOD_ENV, "SLACK_SIGNING_SECRET"),
        ("SLACK_SIGNING_SECRET", "not set", "http"),
    ),
    (
        "socket-without-app-token",
        SOCKET,
        without(SOCKET_ENV, "SLACK_APP_TOKEN"),
        ("SLACK_APP_TOKEN", "not set", "socket"),
    ),
    (
        "socket-with-a-bot-token-as-app-token",
        SOCKET,
        {**SOCKET_ENV, "SLACK_APP_TOKEN": BOT_TOKEN},
        ("SLACK_APP_TOKEN", "xapp-"),
    ),
    (
        "socket-with-blank-app-token",
        SOCKET,
        {**SOCKET_ENV, "SLACK_APP_TOKEN": "   "},
        ("SLACK_APP_TOKEN", "not set"),
    ),
    (
        "bot-token-unset",
        GOOD,
        without(GOOD_ENV, "SLACK_BOT_TOKEN_ST_ANNES"),
        ("SLACK_BOT_TOKEN_ST_ANNES", "not set", "T0123ABC"),
    ),
    (
        "default-bot-token-env-unset",
        GOOD.replace('bot_token_env = "SLACK_BOT_TOKEN_ST_ANNES"\n', ""),
        GOOD_ENV,
        ("SLACK_BOT_TOKEN", "not set"),
    ),
    (
        "bot-token-not-xoxb",
        GOOD,
        {**GOOD_ENV, "SLACK_BOT_TOKEN_ST_ANNES": APP_TOKEN},
        ("SLACK_BOT_TOKEN_ST_ANNES", "xoxb-"),
    ),
    (
        "bad-transport",
        GOOD.replace('transport = "http"', 'transport = "websocket"'),
        GOOD_ENV,
        ("slack.transport", "websocket"),
    ),
    ("port-not-a-number", GOOD.replace("8080", '"eighty"'), GOOD_ENV, ("server.port",)),
    ("port-too-big", GOOD.replace("8080", "70000"), GOOD_ENV, ("server.port",)),
    ("port-negative", GOOD.replace("8080", "-1"), GOOD_ENV, ("server.port",)),
    ("port-true", GOOD.replace("8080", "true"), GOOD_ENV, ("server.port",)),
    ("empty-host", GOOD.replace('"127.0.0.1"', '""'), GOOD_ENV, ("server.host",)),
    (
        "contact-is-an-email",
        GOOD.replace('"U0CONTACT1"', '"natalie.slight@st-annes.sch.uk"'),
        GOOD_ENV,
        ("schools.st-annes.policy_contact_slack", "U..."),
    ),
    (
        "contact-is-a-number",
        GOOD.replace('"U0CONTACT1"', "12345"),
        GOOD_ENV,
        ("schools.st-annes.policy_contact_slack",),
    ),
    (
        "school-not-a-table",
        SERVER + '[schools]\nst-annes = "Natalie"\n',
        GOOD_ENV,
        ("schools.st-annes", "table"),
    ),
    ("slack-not-a-table", 'slack = "yes"\n', GOOD_ENV, ("slack", "table")),
    ("server-not-a-table", "server = 8080\n", GOOD_ENV, ("server", "table")),
    (
        "api-url-not-a-string",
        GOOD.replace('transport = "http"', 'transport = "http"\napi_url = 8080'),
        GOOD_ENV,
        ("slack.api_url",),
    ),
    ("invalid-toml", GOOD.replace("[server]", "[server"), GOOD_ENV, ("guidebot.toml", "TOML")),
]


@pytest.mark.parametrize(
    ("text", "env", "needles"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_a_broken_configuration_names_the_problem_in_one_line(
    tmp_path: Path, text: str, env: dict[str, str], needles: tuple[str, ...]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path, env)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    for secret in SECRET_VALUES:
        assert secret not in message


def test_a_missing_file_names_it_and_the_example(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "guidebot.toml"
    with pytest.raises(ConfigError, match=r"no configuration file at .*guidebot\.toml") as caught:
        load(path, GOOD_ENV)
    assert "guidebot.example.toml" in str(caught.value)


def test_a_folder_given_as_the_configuration_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="guidebot"):
        load(tmp_path, GOOD_ENV)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "guidebot.toml"
    path.write_bytes(GOOD.replace("St Annes", "St Anne\x92s").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"guidebot\.toml"):
        load(path, GOOD_ENV)


# --- a good configuration ---------------------------------------------------------------


def test_a_good_configuration_parses(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    settings = load(path, GOOD_ENV)

    assert settings.source == path
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.database == tmp_path / "data" / "guidebot.db"
    assert settings.slack is not None
    assert settings.slack.transport == "http"
    assert settings.slack.api_url is None
    assert settings.slack.app_token is None
    assert settings.slack.signing_secret is not None
    assert settings.slack.signing_secret.reveal() == SIGNING_SECRET
    [workspace] = settings.slack.workspaces
    assert (workspace.team_id, workspace.school) == ("T0123ABC", "st-annes")
    assert workspace.bot_token.reveal() == BOT_TOKEN
    assert settings.slack.workspace("T0123ABC") is workspace
    assert settings.slack.workspace("T9999") is None
    assert settings.school("st-annes").policy_contact_slack == "U0CONTACT1"
    assert settings.school("kaleidoscope").policy_contact_slack is None


def test_socket_mode_needs_the_app_token_and_not_the_signing_secret(tmp_path: Path) -> None:
    settings = load(write(tmp_path, SOCKET), SOCKET_ENV)
    assert settings.slack is not None
    assert settings.slack.transport == "socket"
    assert settings.slack.signing_secret is None
    assert settings.slack.app_token == Secret(APP_TOKEN)


def test_defaults_without_server_or_slack(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    settings = load(path, {})
    assert settings.slack is None
    assert (settings.host, settings.port) == ("0.0.0.0", 3000)
    assert settings.database == tmp_path / "guidebot.db"
    assert settings.schools == {}


def test_guidebot_config_names_the_file_when_no_path_is_given(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, "elsewhere.toml")
    settings = load(None, {**GOOD_ENV, "GUIDEBOT_CONFIG": str(path)})
    assert settings.source == path


def test_the_database_path_is_relative_to_the_configuration_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load(write(etc, GOOD), GOOD_ENV)
    assert settings.database == etc / "data" / "guidebot.db"

    absolute = tmp_path / "var" / "kb.db"
    settings = load(write(etc, GOOD.replace("data/guidebot.db", str(absolute))), GOOD_ENV)
    assert settings.database == absolute

    assert parse({}, {}).database == Path("guidebot.db")  # no file: as given


def test_guidebot_db_overrides_the_file(tmp_path: Path) -> None:
    override = tmp_path / "override" / "kb.db"
    settings = load(write(tmp_path, GOOD), {**GOOD_ENV, "GUIDEBOT_DB": str(override)})
    assert settings.database == override


def test_a_relative_guidebot_db_means_the_same_file_as_for_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    settings = load(write(etc, GOOD), {**GOOD_ENV, "GUIDEBOT_DB": "kb.db"})
    assert settings.database.resolve() == (work / "kb.db").resolve()


# --- secrets never show -----------------------------------------------------------------


def test_secrets_never_show_in_repr_str_format_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    http = load(write(tmp_path, GOOD), GOOD_ENV)
    socket = load(write(tmp_path, SOCKET, "socket.toml"), SOCKET_ENV)
    for settings in (http, socket):
        shown = [
            repr(settings),
            str(settings),
            f"{settings}",
            f"{settings!r}",
            "%s %r" % (settings, settings),  # noqa: UP031  # the logging style
            repr(dataclasses.asdict(settings)),
            repr(settings.slack),
        ]
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("guidebot.test").info("settings: %s", settings)
            logging.getLogger("guidebot.test").info("settings: %r", settings)
        shown.append(caplog.text)
        for text in shown:
            assert "********" in text
            for secret in SECRET_VALUES:
                assert secret not in text
                assert secret[5:15] not in text


def test_a_secret_compares_by_value_and_reveals_on_request() -> None:
    secret = Secret(BOT_TOKEN)
    assert secret.reveal() == BOT_TOKEN
    assert secret == Secret(BOT_TOKEN)
    assert secret != Secret("xoxb-different")
    assert secret != BOT_TOKEN
    assert len({secret, Secret(BOT_TOKEN)}) == 1
    assert BOT_TOKEN not in f"{secret} {secret!r} {secret!s} {secret:}"


# --- the example configuration ----------------------------------------------------------


def test_the_example_configuration_parses_with_its_documented_environment() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    env = {
        "SLACK_BOT_TOKEN": "xoxb-example-1",
        "SLACK_BOT_TOKEN_ST_JOHNS": "xoxb-example-2",
        "SLACK_SIGNING_SECRET": "example-signing-secret",
    }
    for name in env:
        assert name in text  # every variable the example needs is explained in it
    assert "SLACK_APP_TOKEN" in text
    assert "GUIDEBOT_DB" in text
    settings = load(EXAMPLE, env)
    assert isinstance(settings, Settings)
    assert settings.slack is not None
    assert settings.slack.transport == "http"
    assert settings.slack.api_url is None  # tests only: left commented out
    assert [w.school for w in settings.slack.workspaces] == ["st-annes", "st-johns"]
    assert settings.database == EXAMPLE.parent / "guidebot.db"
    assert settings.school("st-annes").policy_contact_slack is not None
    for key in (
        "host",
        "port",
        "database",
        "transport",
        "api_url",
        "team_id",
        "school",
        "bot_token_env",
        "policy_contact_slack",
    ):
        assert f"{key} =" in text, key


def test_the_example_configuration_also_works_in_socket_mode() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('transport = "http"', 'transport = "socket"')
    settings = parse(
        tomllib.loads(text),
        {
            "SLACK_BOT_TOKEN": "xoxb-example-1",
            "SLACK_BOT_TOKEN_ST_JOHNS": "xoxb-example-2",
            "SLACK_APP_TOKEN": "xapp-example",
        },
    )
    assert settings.slack is not None
    assert settings.slack.transport == "socket"


def test_the_environment_is_read_when_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GUIDEBOT_DB", raising=False)
    settings = load(write(tmp_path, GOOD))
    assert settings.slack is not None
    assert settings.slack.workspaces[0].bot_token.reveal() == os.environ["SLACK_BOT_TOKEN_ST_ANNES"]
