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
        "teams-contact-is-an-email",
        GOOD.replace(
            'policy_contact_slack = "U0CONTACT1"',
            'policy_contact_slack = "U0CONTACT1"\npolicy_contact_teams = "pat@school.org"',
        ),
        GOOD_ENV,
        ("schools.st-annes.policy_contact_teams", "GUID"),
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
        "MICROSOFT_APP_PASSWORD": "example-client-secret",
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
        "app_id",
        "app_type",
        "app_tenant_id",
        "openid_metadata_url",
        "tenant_id",
    ):
        assert f"{key} =" in text, key


def test_the_example_teams_section_parses_and_is_documented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    env = {
        "SLACK_BOT_TOKEN": "xoxb-example-1",
        "SLACK_BOT_TOKEN_ST_JOHNS": "xoxb-example-2",
        "SLACK_SIGNING_SECRET": "example-signing-secret",
        "MICROSOFT_APP_PASSWORD": "example-client-secret",
    }
    teams = load(EXAMPLE, env).teams
    assert teams is not None
    assert teams.authenticated
    assert teams.app_password == Secret("example-client-secret")
    assert teams.app_type == "SingleTenant"
    assert teams.app_tenant_id is not None
    assert teams.openid_metadata_url is None  # tests only: left commented out
    assert [t.school for t in teams.tenants] == ["st-annes"]
    # The secret comes from the environment, and the file says where to find it.
    assert "MICROSOFT_APP_PASSWORD" in text
    assert "deploy/teams/README.md" in text
    assert "--insecure-local" in text
    assert "/api/messages" in text

    # Without the client secret the example is refused, naming the variable...
    with pytest.raises(ConfigError, match="MICROSOFT_APP_PASSWORD"):
        load(EXAMPLE, without(env, "MICROSOFT_APP_PASSWORD"))
    # ...and with only the Teams part (the Slack part deleted) it still parses.
    data = tomllib.loads(text)
    del data["slack"]
    teams_only = parse(data, {"MICROSOFT_APP_PASSWORD": "example-client-secret"})
    assert teams_only.slack is None
    assert teams_only.teams == teams


def test_the_example_works_as_a_multi_tenant_bot_without_app_tenant_id() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    data["teams"]["app_type"] = "MultiTenant"
    del data["teams"]["app_tenant_id"]
    del data["slack"]
    teams = parse(data, {"MICROSOFT_APP_PASSWORD": "example-client-secret"}).teams
    assert teams is not None
    assert (teams.app_type, teams.app_tenant_id) == ("MultiTenant", None)


def test_the_example_configuration_also_works_in_socket_mode() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('transport = "http"', 'transport = "socket"')
    settings = parse(
        tomllib.loads(text),
        {
            "SLACK_BOT_TOKEN": "xoxb-example-1",
            "SLACK_BOT_TOKEN_ST_JOHNS": "xoxb-example-2",
            "SLACK_APP_TOKEN": "xapp-example",
            "MICROSOFT_APP_PASSWORD": "example-client-secret",
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


# --- [teams] ------------------------------------------------------------------------------

APP_ID = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
HOME_TENANT = "0b1c2d3e-aaaa-4bbb-8ccc-123456789abc"
OTHER_TENANT = "1c2d3e4f-bbbb-4ccc-9ddd-23456789abcd"
APP_PASSWORD = "teams8Q~client-secret-0000-value"
TEAMS_ENV = {"MICROSOFT_APP_PASSWORD": APP_PASSWORD}


def teams_data(**changes: object) -> dict[str, object]:
    """A good [teams] section as parsed TOML; a change of None removes the key."""
    section: dict[str, object] = {
        "app_id": APP_ID,
        "app_type": "MultiTenant",
        "tenant": [{"tenant_id": HOME_TENANT, "school": "St Annes"}],
    }
    for key, value in changes.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    return {"teams": section}


def tenant(tenant_id: object = HOME_TENANT, school: object = "st-annes") -> dict[str, object]:
    entry: dict[str, object] = {}
    if tenant_id is not None:
        entry["tenant_id"] = tenant_id
    if school is not None:
        entry["school"] = school
    return entry


# Every ConfigError bot.config._teams raises, each named in one line.
BROKEN_TEAMS: list[tuple[str, dict[str, object], dict[str, str], tuple[str, ...]]] = [
    ("teams-not-a-table", {"teams": "yes"}, TEAMS_ENV, ("teams must be a table", "[teams]")),
    (
        "app-id-not-a-guid",
        teams_data(app_id="guidebot-bot"),
        TEAMS_ENV,
        ("teams.app_id", "Microsoft App ID", "GUID"),
    ),
    ("app-id-a-number", teams_data(app_id=12345), TEAMS_ENV, ("teams.app_id", "GUID")),
    (
        "app-id-with-spaces",
        teams_data(app_id=f" {APP_ID} "),
        TEAMS_ENV,
        ("teams.app_id", "GUID"),
    ),
    (
        "app-type-wrong",
        teams_data(app_type="Multi-tenant"),
        TEAMS_ENV,
        ("teams.app_type", '"MultiTenant" or "SingleTenant"', "'Multi-tenant'"),
    ),
    ("app-type-blank", teams_data(app_type=""), TEAMS_ENV, ("teams.app_type", "non-empty")),
    ("app-type-a-number", teams_data(app_type=2), TEAMS_ENV, ("teams.app_type", "string")),
    (
        "single-tenant-without-app-tenant-id",
        teams_data(app_type="SingleTenant"),
        TEAMS_ENV,
        ("teams.app_tenant_id", "missing", "SingleTenant"),
    ),
    (
        "single-tenant-with-blank-app-tenant-id",
        teams_data(app_type="SingleTenant", app_tenant_id=""),
        TEAMS_ENV,
        ("teams.app_tenant_id", "missing"),
    ),
    (
        "app-tenant-id-not-a-guid",
        teams_data(app_type="SingleTenant", app_tenant_id="st-annes.onmicrosoft.com"),
        TEAMS_ENV,
        ("teams.app_tenant_id", "GUID"),
    ),
    (
        "app-tenant-id-a-number-with-multi-tenant",
        teams_data(app_tenant_id=42),
        TEAMS_ENV,
        ("teams.app_tenant_id", "GUID"),
    ),
    (
        "client-secret-unset",
        teams_data(),
        {},
        ("MICROSOFT_APP_PASSWORD", "not set", "client secret", "teams.app_id"),
    ),
    (
        "client-secret-blank",
        teams_data(),
        {"MICROSOFT_APP_PASSWORD": "   "},
        ("MICROSOFT_APP_PASSWORD", "not set"),
    ),
    (
        "tenant-missing",
        teams_data(tenant=None),
        TEAMS_ENV,
        ("teams.tenant is missing", "[[teams.tenant]]", "tenant_id", "school"),
    ),
    ("tenant-list-empty", teams_data(tenant=[]), TEAMS_ENV, ("teams.tenant is missing",)),
    (
        "tenant-a-single-table",
        teams_data(tenant=tenant()),
        TEAMS_ENV,
        ("teams.tenant is missing", "[[teams.tenant]]"),
    ),
    (
        "tenant-not-a-table",
        teams_data(tenant=[tenant(), "st-johns"]),
        TEAMS_ENV,
        ("teams.tenant[2] must be a table",),
    ),
    (
        "tenant-id-missing",
        teams_data(tenant=[tenant(tenant_id=None)]),
        TEAMS_ENV,
        ("teams.tenant[1].tenant_id is missing",),
    ),
    (
        "tenant-id-blank",
        teams_data(tenant=[tenant(tenant_id="  ")]),
        TEAMS_ENV,
        ("teams.tenant[1].tenant_id", "non-empty"),
    ),
    (
        "tenant-id-a-domain",
        teams_data(tenant=[tenant(), tenant("st-johns.onmicrosoft.com", "st-johns")]),
        TEAMS_ENV,
        ("teams.tenant[2].tenant_id", "'st-johns.onmicrosoft.com'", "Microsoft 365 tenant id"),
    ),
    (
        "tenant-id-twice-in-another-case",
        teams_data(tenant=[tenant(), tenant(HOME_TENANT.upper(), "st-johns")]),
        TEAMS_ENV,
        ("teams.tenant[2].tenant_id", HOME_TENANT.upper(), "twice"),
    ),
    (
        "tenant-school-missing",
        teams_data(tenant=[tenant(school=None)]),
        TEAMS_ENV,
        ("teams.tenant[1].school is missing",),
    ),
    (
        "tenant-school-a-number",
        teams_data(tenant=[tenant(school=7)]),
        TEAMS_ENV,
        ("teams.tenant[1].school", "string"),
    ),
    (
        "openid-metadata-url-not-a-string",
        teams_data(openid_metadata_url=443),
        TEAMS_ENV,
        ("teams.openid_metadata_url must be a string",),
    ),
]


@pytest.mark.parametrize(
    ("data", "env", "needles"),
    [case[1:] for case in BROKEN_TEAMS],
    ids=[case[0] for case in BROKEN_TEAMS],
)
def test_a_broken_teams_section_names_the_problem_in_one_line(
    data: dict[str, object], env: dict[str, str], needles: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(data, env)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    assert APP_PASSWORD not in message


def test_a_teams_section_in_a_file_names_the_setting(tmp_path: Path) -> None:
    text = SERVER + f'\n[teams]\napp_id = "{APP_ID}"\n\n[teams.tenant]\ntenant_id = "x"\n'
    with pytest.raises(ConfigError, match=r"^teams\.tenant is missing"):
        load(write(tmp_path, text), TEAMS_ENV)


def test_a_good_teams_section_parses() -> None:
    settings = parse(
        teams_data(tenant=[tenant(school="St Annes"), tenant(OTHER_TENANT, "Kaleidoscope")]),
        TEAMS_ENV,
    )
    assert settings.slack is None
    teams = settings.teams
    assert teams is not None
    assert teams.app_id == APP_ID
    assert teams.authenticated
    assert teams.app_password == Secret(APP_PASSWORD)
    assert teams.app_type == "MultiTenant"
    assert teams.app_tenant_id is None
    assert teams.openid_metadata_url is None
    assert [(t.tenant_id, t.school) for t in teams.tenants] == [
        (HOME_TENANT, "st-annes"),
        (OTHER_TENANT, "kaleidoscope"),
    ]
    assert teams.tenant(HOME_TENANT.upper()) is teams.tenants[0]  # ids are not case-sensitive
    assert teams.tenant(OTHER_TENANT) is teams.tenants[1]
    assert teams.tenant("2d3e4f5a-cccc-4ddd-8eee-3456789abcde") is None
    assert teams.tenant(None) is None


def test_teams_defaults_to_multi_tenant_and_takes_the_single_tenant_settings() -> None:
    assert parse(teams_data(app_type=None), TEAMS_ENV).teams is not None
    settings = parse(
        teams_data(
            app_type="SingleTenant",
            app_tenant_id=HOME_TENANT,
            openid_metadata_url="http://127.0.0.1:9/v1/.well-known/openidconfiguration",
        ),
        TEAMS_ENV,
    )
    teams = settings.teams
    assert teams is not None
    assert (teams.app_type, teams.app_tenant_id) == ("SingleTenant", HOME_TENANT)
    assert teams.openid_metadata_url == "http://127.0.0.1:9/v1/.well-known/openidconfiguration"


@pytest.mark.parametrize("app_id", [None, ""], ids=["left-out", "blank"])
def test_without_an_app_id_teams_is_unauthenticated_and_needs_no_secret(
    app_id: str | None,
) -> None:
    settings = parse(teams_data(app_id=app_id), {})
    teams = settings.teams
    assert teams is not None
    assert teams.app_id is None
    assert teams.app_password is None
    assert not teams.authenticated  # serve refuses this without --insecure-local


def test_no_teams_section_means_no_teams() -> None:
    assert parse({}, TEAMS_ENV).teams is None


def test_the_teams_client_secret_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    settings = parse(teams_data(), TEAMS_ENV)
    shown = [
        repr(settings),
        str(settings),
        f"{settings!r}",
        repr(settings.teams),
        repr(dataclasses.asdict(settings)),
    ]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("guidebot.test").info("settings: %r", settings)
    shown.append(caplog.text)
    for text in shown:
        assert "Secret('********')" in text
        assert APP_PASSWORD not in text
        assert APP_PASSWORD[6:16] not in text
    assert settings.teams is not None and settings.teams.app_password is not None
    assert settings.teams.app_password.reveal() == APP_PASSWORD


@pytest.mark.parametrize("key", ["app_id", "app_tenant_id"])
def test_a_guid_followed_by_a_line_break_is_refused(key: str) -> None:
    section = teams_data(app_type="SingleTenant", app_tenant_id=HOME_TENANT)["teams"]
    assert isinstance(section, dict)
    section[key] = f"{section[key]}\n"
    with pytest.raises(ConfigError, match=f"teams.{key}"):
        parse({"teams": section}, TEAMS_ENV)


def test_a_school_with_no_letters_or_digits_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"teams\.tenant\[1\]\.school"):
        parse(teams_data(tenant=[tenant(school="!!!")]), TEAMS_ENV)
