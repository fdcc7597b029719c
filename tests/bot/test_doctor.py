"""`guidebot doctor`: one line per check, every problem named, exit 2 when anything is wrong.

Broken setups are real files in tmp_path (settings, database) and a real
environment; the online checks talk to a stand-in Slack Web API on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import types
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from bot import doctor
from bot.cli import cli
from bot.config import ConfigError, load
from bot.crypto import generate_key
from bot.doctor import Check, Report, api_base, diagnose
from bot.storage import Operations
from knowledge.store import KnowledgeBase
from tests.conftest import copy_db

GUIDEBOT = Path(sys.executable).with_name("guidebot")
ENV_PREFIXES = ("SLACK_", "GUIDEBOT_", "MICROSOFT_APP_")
TOKEN_ENV = "SLACK_BOT_TOKEN_ST_ANNES"
BOT_TOKEN = "xoxb-st-annes-0000-secret"
OTHER_TEAM_TOKEN = "xoxb-other-team-0000-secret"
SIGNING_SECRET = "signing-secret-0000-value"
APP_TOKEN = "xapp-1-app-level-0000-secret"
TEAMS_PASSWORD = "teams8Q~client-secret-0000-value"
SECRETS = (BOT_TOKEN, OTHER_TEAM_TOKEN, SIGNING_SECRET, APP_TOKEN, TEAMS_PASSWORD)

WORKSPACE = f"""
[[slack.workspace]]
team_id = "T0123ABC"
school = "st-annes"
bot_token_env = "{TOKEN_ENV}"
"""
GOOD = f"""
[server]
port = 3000
database = "guidebot.db"

[slack]
transport = "http"
{WORKSPACE}
[schools.st-annes]
policy_contact_slack = "U0CONTACT1"
"""
KEY_ENV = {"GUIDEBOT_SECRET_KEY": generate_key()}
"""The key that seals safeguarding reports: every healthy setup has one."""
GOOD_ENV = {TOKEN_ENV: BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, **KEY_ENV}
SOCKET = GOOD.replace('transport = "http"', 'transport = "socket"')
SOCKET_ENV = {TOKEN_ENV: BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, **KEY_ENV}
SECOND = """
[[slack.workspace]]
team_id = "T0456DEF"
school = "st-johns"
bot_token_env = "SLACK_BOT_TOKEN_ST_JOHNS"
"""

APP_ID = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
HOME_TENANT = "0b1c2d3e-aaaa-4bbb-8ccc-123456789abc"
OTHER_TENANT = "1c2d3e4f-bbbb-4ccc-9ddd-23456789abcd"
TENANT = f"""
[[teams.tenant]]
tenant_id = "{HOME_TENANT}"
school = "st-annes"
"""
SECOND_TENANT = f"""
[[teams.tenant]]
tenant_id = "{OTHER_TENANT}"
school = "kaleidoscope"
"""
TEAMS_TOP = f"""
[teams]
app_id = "{APP_ID}"
app_type = "MultiTenant"
"""
TEAMS_SECTION = TEAMS_TOP + TENANT
TEAMS_ONLY = GOOD.split("[slack]")[0] + TEAMS_SECTION
TEAMS_ENV = {"MICROSOFT_APP_PASSWORD": TEAMS_PASSWORD, **KEY_ENV}
BOTH = GOOD + TEAMS_SECTION
BOTH_ENV = {**GOOD_ENV, **TEAMS_ENV}


def teams(text: str = TEAMS_ONLY, env: dict[str, str] | None = None) -> Setup:
    """A Teams-only installation (the Setup class is defined below)."""
    return Setup(text=text, env=dict(TEAMS_ENV) if env is None else env)


def isolated(env: dict[str, str]) -> dict[str, str | None]:
    """The test's environment for CliRunner, with the real one's secrets removed."""
    cleared: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(ENV_PREFIXES)
    }
    return {**cleared, **env}


def run(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, list(args), env=isolated(env), prog_name="guidebot")


def dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


# --- a table of broken setups -------------------------------------------------------------


def _empty_sqlite(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.commit()
    connection.close()


def _unmigrated(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute("DELETE FROM _migrations WHERE name = 'm001_initial'")
    connection.commit()
    connection.close()


@dataclass(frozen=True)
class Setup:
    """One installation: the settings file, the environment and the database.
    Every environment has the report-sealing key unless a case takes it away."""

    text: str = GOOD
    env: dict[str, str] = field(default_factory=lambda: dict(GOOD_ENV))

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", {**KEY_ENV, **self.env})

    config: str = "file"  # "file", "missing", "folder", "latin-1"
    database: str = "samples"  # "samples", "missing", "not-sqlite", "empty", "folder"
    change_db: Callable[[Path], None] | None = None

    def build(self, root: Path, pristine: Path) -> Path:
        path = root / "guidebot.toml"
        if self.config == "file":
            path.write_text(self.text, encoding="utf-8")
        elif self.config == "folder":
            path.mkdir()
        elif self.config == "latin-1":
            path.write_bytes(self.text.replace("# ", "# St Anne\x92s ").encode("latin-1"))
        database = root / "guidebot.db"
        if self.database == "samples":
            copy_db(pristine, database)
        elif self.database == "not-sqlite":
            database.write_text("these are my notes, not a database\n" * 50)
        elif self.database == "empty":
            _empty_sqlite(database)
        elif self.database == "folder":
            database.mkdir()
        if self.change_db is not None:
            self.change_db(database)
        return path


# (name, setup, the FAIL lines expected (each a prefix), whether `serve` refuses it too)
BROKEN: list[tuple[str, Setup, tuple[str, ...], bool]] = [
    (
        "settings-file-missing",
        Setup(config="missing"),
        ("FAIL config: no configuration file at",),
        True,
    ),
    (
        "settings-file-not-toml",
        Setup(text=GOOD.replace("[server]", "[server")),
        ("FAIL config: guidebot.toml is not valid TOML",),
        True,
    ),
    ("settings-file-is-a-folder", Setup(config="folder"), ("FAIL config: ",), True),
    (
        "settings-file-not-utf8",
        Setup(text="# saved by Notepad\n" + GOOD, config="latin-1"),
        ("FAIL config: guidebot.toml is not UTF-8",),
        True,
    ),
    (
        "neither-slack-nor-teams",
        Setup(text=GOOD.split("[slack]")[0]),
        ("FAIL slack or teams: there is no [slack] or [teams] section",),
        False,  # load accepts it; serve refuses it itself
    ),
    (
        "slack-without-workspace",
        Setup(text=GOOD.replace(WORKSPACE, "")),
        ("FAIL slack.workspace: is missing",),
        True,
    ),
    (
        "bad-team-id",
        Setup(text=GOOD.replace('"T0123ABC"', '"acme"')),
        ("FAIL slack.workspace[1].team_id: 'acme' does not look like a Slack team id",),
        True,
    ),
    (
        "second-workspace-bad-team-id",
        Setup(
            text=GOOD + SECOND.replace('"T0456DEF"', '"st-johns"'),
            env={**GOOD_ENV, "SLACK_BOT_TOKEN_ST_JOHNS": "xoxb-2"},
        ),
        ("FAIL slack.workspace[2].team_id: 'st-johns' does not look like",),
        True,
    ),
    (
        "duplicate-team-id",
        Setup(
            text=GOOD + SECOND.replace('"T0456DEF"', '"T0123ABC"'),
            env={**GOOD_ENV, "SLACK_BOT_TOKEN_ST_JOHNS": "xoxb-2"},
        ),
        ("FAIL slack.workspace[2].team_id: T0123ABC appears twice",),
        True,
    ),
    (
        "three-problems-at-once",
        Setup(
            text=GOOD.replace("3000", "99999")
            .replace('"U0CONTACT1"', '"natalie@st-annes.sch.uk"')
            .replace('"http"', '"https"')
        ),
        (
            "FAIL server.port: must be a whole number",
            "FAIL schools.st-annes.policy_contact_slack: must be a Slack user id",
            'FAIL slack.transport: must be "http" or "socket"',
        ),
        True,
    ),
    (
        "bot-token-missing",
        Setup(env={"SLACK_SIGNING_SECRET": SIGNING_SECRET}),
        (f"FAIL {TOKEN_ENV}: missing",),
        True,
    ),
    (
        "bot-token-not-xoxb",
        Setup(env={**GOOD_ENV, TOKEN_ENV: APP_TOKEN}),
        (f"FAIL {TOKEN_ENV}: set, but it does not look right: it should start xoxb-",),
        True,
    ),
    (
        "signing-secret-missing",
        Setup(env={TOKEN_ENV: BOT_TOKEN}),
        ("FAIL SLACK_SIGNING_SECRET: missing",),
        True,
    ),
    (
        "socket-app-token-missing",
        Setup(text=SOCKET, env={TOKEN_ENV: BOT_TOKEN}),
        ("FAIL SLACK_APP_TOKEN: missing",),
        True,
    ),
    (
        "socket-app-token-not-xapp",
        Setup(text=SOCKET, env={**SOCKET_ENV, "SLACK_APP_TOKEN": BOT_TOKEN}),
        ("FAIL SLACK_APP_TOKEN: set, but it does not look right: it should start xapp-",),
        True,
    ),
    (
        "two-workspaces-share-one-token-variable",
        Setup(text=GOOD + SECOND.replace("SLACK_BOT_TOKEN_ST_JOHNS", TOKEN_ENV)),
        (f"FAIL slack.workspace[2].bot_token_env: {TOKEN_ENV} is also used by",),
        False,  # stricter than load: one token cannot belong to two teams
    ),
    (
        "database-missing",
        Setup(database="missing"),
        ("FAIL database: ",),
        False,
    ),
    ("database-not-sqlite", Setup(database="not-sqlite"), ("FAIL database: ",), False),
    ("database-without-guidebot-tables", Setup(database="empty"), ("FAIL database: ",), False),
    ("database-is-a-folder", Setup(database="folder"), ("FAIL database: ",), False),
    (
        "database-not-set-up",
        Setup(change_db=_unmigrated),
        ("FAIL database: ",),
        False,
    ),
    (
        "workspace-school-not-loaded",
        Setup(text=GOOD.replace('school = "st-annes"', 'school = "St Marys"')),
        ("FAIL school st-marys: named in the configuration but not in the knowledge base",),
        False,
    ),
    (
        "contact-school-not-loaded",
        Setup(text=GOOD + '\n[schools.crossflats]\npolicy_contact_slack = "U0ABC"\n'),
        ("FAIL school crossflats: named in the configuration but not in the knowledge base",),
        False,
    ),
]

# Microsoft Teams: each broken [teams] setup, named in one line.
BROKEN_TEAMS: list[tuple[str, Setup, tuple[str, ...], bool]] = [
    (
        "teams-app-id-not-a-guid",
        teams(TEAMS_ONLY.replace(APP_ID, "guidebot-bot")),
        ("FAIL teams.app_id: must be the bot's Microsoft App ID (a GUID), or left out",),
        True,
    ),
    (
        "teams-app-id-a-number",
        teams(TEAMS_ONLY.replace(f'"{APP_ID}"', "12345")),
        ("FAIL teams.app_id: must be the bot's Microsoft App ID",),
        True,
    ),
    (
        "teams-app-type-wrong",
        teams(TEAMS_ONLY.replace('"MultiTenant"', '"Multi-tenant"')),
        ('FAIL teams.app_type: must be "MultiTenant" or "SingleTenant", not \'Multi-tenant\'',),
        True,
    ),
    (
        "teams-single-tenant-without-app-tenant-id",
        teams(TEAMS_ONLY.replace('"MultiTenant"', '"SingleTenant"')),
        ("FAIL teams.app_tenant_id: is missing (needed when app_type is SingleTenant)",),
        True,
    ),
    (
        "teams-app-tenant-id-not-a-guid",
        teams(
            TEAMS_ONLY.replace(
                '"MultiTenant"', '"SingleTenant"\napp_tenant_id = "st-annes.onmicrosoft.com"'
            )
        ),
        ("FAIL teams.app_tenant_id: must be a tenant id (a GUID)",),
        True,
    ),
    (
        "teams-without-any-tenant",
        teams(GOOD.split("[slack]")[0] + TEAMS_TOP),
        ("FAIL teams.tenant: is missing: add a [[teams.tenant]] with tenant_id and school",),
        True,
    ),
    (
        "teams-tenant-written-as-a-single-table",
        teams(TEAMS_ONLY.replace("[[teams.tenant]]", "[teams.tenant]")),
        ("FAIL teams.tenant: is missing: add a [[teams.tenant]]",),
        True,
    ),
    (
        "teams-second-tenant-id-not-a-guid",
        teams(TEAMS_ONLY + SECOND_TENANT.replace(OTHER_TENANT, "kaleidoscope.onmicrosoft.com")),
        (
            "FAIL teams.tenant[2].tenant_id: 'kaleidoscope.onmicrosoft.com' is not a "
            "Microsoft 365 tenant id (a GUID)",
        ),
        True,
    ),
    (
        "teams-tenant-without-tenant-id",
        teams(TEAMS_ONLY.replace(f'tenant_id = "{HOME_TENANT}"\n', "")),
        ("FAIL teams.tenant[1].tenant_id: is missing",),
        True,
    ),
    (
        "teams-tenant-without-school",
        teams(TEAMS_ONLY.replace('school = "st-annes"\n', "")),
        ("FAIL teams.tenant[1].school: is missing",),
        True,
    ),
    (
        "teams-duplicate-tenant-in-another-case",
        teams(TEAMS_ONLY + SECOND_TENANT.replace(OTHER_TENANT, HOME_TENANT.upper())),
        (
            f"FAIL teams.tenant[2].tenant_id: {HOME_TENANT.upper()} appears twice "
            "(also teams.tenant[1])",
        ),
        True,
    ),
    (
        "teams-not-a-table",
        teams(GOOD.split("[slack]")[0].replace("[server]", 'teams = "yes"\n[server]')),
        ("FAIL teams: must be a table, like [teams]",),
        True,
    ),
    (
        "teams-openid-metadata-url-not-a-string",
        teams(TEAMS_ONLY.replace('"MultiTenant"', '"MultiTenant"\nopenid_metadata_url = 443')),
        ("FAIL teams.openid_metadata_url: must be a string",),
        True,
    ),
    (
        "teams-four-problems-at-once",
        teams(
            TEAMS_ONLY.replace(APP_ID, "guidebot-bot")
            .replace('"MultiTenant"', '"Both"\napp_tenant_id = "nope"')
            .replace('school = "st-annes"\n', "")
        ),
        (
            "FAIL teams.app_id: must be the bot's Microsoft App ID",
            'FAIL teams.app_type: must be "MultiTenant" or "SingleTenant"',
            "FAIL teams.app_tenant_id: must be a tenant id (a GUID)",
            "FAIL teams.tenant[1].school: is missing",
        ),
        True,
    ),
    (
        "teams-without-app-id",
        teams(TEAMS_ONLY.replace(f'app_id = "{APP_ID}"\n', ""), env={}),
        (
            "FAIL teams.app_id: is not set, so authentication would be off: serve refuses to "
            "start without --insecure-local",
        ),
        False,  # load accepts it; serve refuses it itself
    ),
    (
        "teams-blank-app-id",
        teams(TEAMS_ONLY.replace(APP_ID, ""), env={}),
        ("FAIL teams.app_id: is not set, so authentication would be off",),
        False,
    ),
    (
        "teams-client-secret-missing",
        teams(env={}),
        ("FAIL MICROSOFT_APP_PASSWORD: missing (the Teams bot's client secret",),
        True,
    ),
    (
        "teams-client-secret-is-the-secret-id",
        teams(env={"MICROSOFT_APP_PASSWORD": OTHER_TENANT}),
        ("FAIL MICROSOFT_APP_PASSWORD: set, but it looks like the client secret's ID",),
        False,  # stricter than load: Azure shows the ID and the value side by side
    ),
    (
        "teams-tenant-school-not-loaded",
        teams(TEAMS_ONLY.replace('school = "st-annes"', 'school = "St Marys"')),
        ("FAIL school st-marys: named in the configuration but not in the knowledge base",),
        False,
    ),
    (
        "teams-app-id-ends-with-a-line-break",
        teams(TEAMS_ONLY.replace(f'"{APP_ID}"', f'"{APP_ID}\\n"')),
        ("FAIL teams.app_id: must be the bot's Microsoft App ID (a GUID)",),
        False,  # bot.config accepts it (see tests/bot/test_config.py)
    ),
    (
        "teams-tenant-school-without-letters",
        teams(TEAMS_ONLY.replace('school = "st-annes"', 'school = "!!!"')),
        ("FAIL teams.tenant[1].school: '!!!' needs letters or digits",),
        False,  # bot.config accepts it (see tests/bot/test_config.py)
    ),
    (
        "slack-workspace-school-without-letters",
        Setup(text=GOOD.replace('school = "st-annes"', 'school = "???"')),
        ("FAIL slack.workspace[1].school: '???' needs letters or digits",),
        False,
    ),
    (
        "teams-ids-still-the-examples-placeholders",
        teams(
            TEAMS_ONLY.replace(APP_ID, PLACEHOLDER)
            .replace(HOME_TENANT, PLACEHOLDER)
            .replace('"MultiTenant"', f'"SingleTenant"\napp_tenant_id = "{PLACEHOLDER}"')
        ),
        (
            f"FAIL teams.app_id: is still the example's {PLACEHOLDER}: set it to the bot's "
            "Microsoft App ID",
            f"FAIL teams.app_tenant_id: is still the example's {PLACEHOLDER}",
            f"FAIL teams.tenant[1].tenant_id: is still the example's {PLACEHOLDER}",
        ),
        False,  # bot.config accepts any GUID
    ),
    (
        "slack-good-but-teams-broken",
        Setup(text=BOTH.replace(HOME_TENANT, "St Annes"), env=BOTH_ENV),
        ("FAIL teams.tenant[1].tenant_id: 'St Annes' is not a Microsoft 365 tenant id",),
        True,
    ),
    (
        "teams-good-but-slack-broken",
        Setup(text=BOTH.replace('"T0123ABC"', '"acme"'), env=BOTH_ENV),
        ("FAIL slack.workspace[1].team_id: 'acme' does not look like a Slack team id",),
        True,
    ),
]
BROKEN += BROKEN_TEAMS

DATABASE_WORDS = {
    "database-missing": ("does not exist yet", "guidebot --db", "ingest --school"),
    "database-not-sqlite": ("cannot be opened as a database",),
    "database-without-guidebot-tables": ("is not a guidebot knowledge base", "ingest"),
    "database-is-a-folder": ("is a folder",),
    "database-not-set-up": ("has not been fully set up", "m001_initial"),
    "workspace-school-not-loaded": ("ingest --school st-marys",),
    "teams-tenant-school-not-loaded": ("ingest --school st-marys",),
    "teams-without-app-id": ("Microsoft App ID", "deploy/teams/README.md"),
    "teams-client-secret-is-the-secret-id": ("Value",),
    "settings-file-is-a-folder": ("is a folder",),
}


@pytest.mark.parametrize(
    ("name", "setup", "expected", "serve_refuses"), BROKEN, ids=[case[0] for case in BROKEN]
)
def test_a_broken_setup_fails_with_one_line_naming_each_problem(
    tmp_path: Path,
    pristine_sample_db: Path,
    name: str,
    setup: Setup,
    expected: tuple[str, ...],
    serve_refuses: bool,
) -> None:
    config = setup.build(tmp_path, pristine_sample_db)
    result = run("doctor", "--config", str(config), env=setup.env)

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    assert lines
    assert all(line.startswith(("ok   ", "FAIL ", "skip ")) for line in lines), lines
    failures = [line for line in lines if line.startswith("FAIL")]
    for prefix in expected:
        assert [line for line in failures if line.startswith(prefix)], (prefix, lines)
    assert len(failures) == len(expected), lines
    for word in DATABASE_WORDS.get(name, ()):
        assert word in "\n".join(failures), (word, failures)
    for secret in (*SECRETS, *setup.env.values()):
        assert secret not in result.output

    # The doctor never disagrees with `serve`: what load refuses, it fails too.
    if serve_refuses:
        with pytest.raises((ConfigError, OSError, UnicodeDecodeError)):
            load(config, setup.env)


def test_a_good_setup_is_all_ok_and_exit_0(tmp_path: Path, pristine_sample_db: Path) -> None:
    config = Setup().build(tmp_path, pristine_sample_db)
    before = dump(tmp_path / "guidebot.db")
    result = run("doctor", "--config", str(config), env=GOOD_ENV)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 6, lines
    assert lines[:4] == [
        f"ok   config {config}",
        f"ok   {TOKEN_ENV} set (the bot token for slack.workspace[1])",
        "ok   SLACK_SIGNING_SECRET set (needed for transport http)",
        "ok   GUIDEBOT_SECRET_KEY set (encrypts safeguarding reports)",
    ]
    assert lines[4].startswith(f"ok   database {tmp_path / 'guidebot.db'} (5 schools)")
    assert lines[5] == "ok   school st-annes St Anne's CE Primary School (1 policy)"
    for secret in SECRETS:
        assert secret not in result.output
    assert dump(tmp_path / "guidebot.db") == before  # looked at, not changed
    load(config, GOOD_ENV)  # and serve would accept it


def test_a_good_teams_only_setup_is_all_ok_and_exit_0(
    tmp_path: Path, pristine_sample_db: Path
) -> None:
    config = teams(TEAMS_ONLY + SECOND_TENANT).build(tmp_path, pristine_sample_db)
    result = run("doctor", "--config", str(config), env=TEAMS_ENV)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        f"ok   config {config}",
        "ok   GUIDEBOT_SECRET_KEY set (encrypts safeguarding reports)",
        f"ok   teams.app_id {APP_ID} (MultiTenant)",
        "ok   MICROSOFT_APP_PASSWORD set (the Teams bot's client secret, for teams.app_id)",
    ]
    assert lines[4].startswith(f"ok   database {tmp_path / 'guidebot.db'} (5 schools)")
    assert lines[5:] == [
        "ok   school st-annes St Anne's CE Primary School (1 policy)",
        "ok   school kaleidoscope Kaleidoscope Multi-Academy Trust (1 policy)",
    ]
    assert "slack" not in result.stdout.lower()
    assert TEAMS_PASSWORD not in result.output
    load(config, TEAMS_ENV)  # and serve would accept it


def test_a_good_single_tenant_setup_is_ok(tmp_path: Path, pristine_sample_db: Path) -> None:
    text = TEAMS_ONLY.replace('"MultiTenant"', f'"SingleTenant"\napp_tenant_id = "{HOME_TENANT}"')
    config = teams(text).build(tmp_path, pristine_sample_db)
    result = run("doctor", "--config", str(config), env=TEAMS_ENV)
    assert result.exit_code == 0, result.output
    assert f"ok   teams.app_id {APP_ID} (SingleTenant)" in result.stdout.splitlines()


def test_slack_and_teams_together_are_each_checked(
    tmp_path: Path, pristine_sample_db: Path
) -> None:
    config = Setup(text=BOTH, env=BOTH_ENV).build(tmp_path, pristine_sample_db)
    result = run("doctor", "--config", str(config), env=BOTH_ENV)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1:6] == [
        f"ok   {TOKEN_ENV} set (the bot token for slack.workspace[1])",
        "ok   SLACK_SIGNING_SECRET set (needed for transport http)",
        "ok   GUIDEBOT_SECRET_KEY set (encrypts safeguarding reports)",
        f"ok   teams.app_id {APP_ID} (MultiTenant)",
        "ok   MICROSOFT_APP_PASSWORD set (the Teams bot's client secret, for teams.app_id)",
    ]
    # st-annes is named by both the workspace and the tenant: checked once.
    assert [line for line in lines if "school st-annes" in line] == [
        "ok   school st-annes St Anne's CE Primary School (1 policy)"
    ]


def test_what_the_doctor_calls_unauthenticated_serve_refuses_too(
    tmp_path: Path, pristine_sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = TEAMS_ONLY.replace(f'app_id = "{APP_ID}"\n', "").replace(
        "[server]", '[server]\nhost = "127.0.0.1"'
    )
    config = teams(text, env={}).build(tmp_path, pristine_sample_db)

    doctor = run("doctor", "--config", str(config), env={})
    assert doctor.exit_code == 2
    assert "FAIL teams.app_id: is not set, so authentication would be off" in doctor.stdout
    # The real `guidebot serve`, in its own process, refuses before listening.
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    refused = subprocess.run(
        [str(GUIDEBOT), "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        env=process_env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2, refused.stderr
    assert "teams.app_id is not set" in refused.stderr
    assert "--insecure-local" in refused.stderr

    # With the flag (and on this machine only), serve goes ahead: a stand-in
    # server records what it was told, so no real one starts.
    started: list[bool] = []
    server = types.ModuleType("adapters.server")

    def serve(settings: Any, *, insecure_local: bool = False) -> None:
        started.append(insecure_local)

    server.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "adapters.server", server)
    allowed = run("serve", "--config", str(config), "--insecure-local", env={})
    assert allowed.exit_code == 0, allowed.output
    assert started == [True]


def test_a_database_loaded_but_never_served_is_ok_and_says_what_serve_adds(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "acceptable-use.txt"
    policy.write_text(
        "Acceptable Use Policy\n\n1. Devices\n\nStaff must not use personal phones.\n",
        encoding="utf-8",
    )
    database = tmp_path / "guidebot.db"
    loaded = run("--db", str(database), "ingest", "--school", "st-annes", str(policy), env={})
    assert loaded.exit_code == 0, loaded.output
    config = tmp_path / "guidebot.toml"
    config.write_text(GOOD, encoding="utf-8")

    result = run("doctor", "--config", str(config), env=GOOD_ENV)
    assert result.exit_code == 0, result.output
    assert (
        f"ok   database {database} (1 school); guidebot serve adds its question log on first"
        " start" in result.stdout.splitlines()
    )
    assert "ok   school st-annes St Annes (1 policy)" in result.stdout

    kb = KnowledgeBase(database)
    Operations(kb.db)  # what serve does on start
    kb.close()
    result = run("doctor", "--config", str(config), env=GOOD_ENV)
    assert f"ok   database {database} (1 school)" in result.stdout.splitlines()


def test_socket_mode_checks_the_app_token_not_the_signing_secret(
    tmp_path: Path, pristine_sample_db: Path
) -> None:
    config = Setup(text=SOCKET).build(tmp_path, pristine_sample_db)
    result = run("doctor", "--config", str(config), env=SOCKET_ENV)
    assert result.exit_code == 0, result.output
    assert "ok   SLACK_APP_TOKEN set (needed for Socket Mode)" in result.stdout
    assert "SLACK_SIGNING_SECRET" not in result.stdout


def test_a_missing_database_is_not_created(tmp_path: Path, pristine_sample_db: Path) -> None:
    config = Setup(database="missing").build(tmp_path, pristine_sample_db)
    result = run("doctor", "--config", str(config), env=GOOD_ENV)
    assert result.exit_code == 2
    assert not (tmp_path / "guidebot.db").exists()


def test_guidebot_config_finds_the_file(tmp_path: Path, pristine_sample_db: Path) -> None:
    config = Setup().build(tmp_path, pristine_sample_db)
    result = run("doctor", env={**GOOD_ENV, "GUIDEBOT_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    assert f"ok   config {config}" in result.stdout


@pytest.mark.parametrize("how", ["--db", "GUIDEBOT_DB"])
def test_the_database_can_be_named_outside_the_file(
    tmp_path: Path, pristine_sample_db: Path, how: str
) -> None:
    config = Setup(database="missing").build(tmp_path, pristine_sample_db)
    elsewhere = copy_db(pristine_sample_db, tmp_path / "elsewhere.db")
    if how == "--db":
        result = run("--db", str(elsewhere), "doctor", "--config", str(config), env=GOOD_ENV)
    else:
        result = run(
            "doctor", "--config", str(config), env={**GOOD_ENV, "GUIDEBOT_DB": str(elsewhere)}
        )
    assert result.exit_code == 0, result.output
    assert f"ok   database {elsewhere} (5 schools)" in result.stdout


def test_broken_server_settings_skip_the_database_check(
    tmp_path: Path, pristine_sample_db: Path
) -> None:
    config = Setup(text=GOOD.replace('database = "guidebot.db"', "database = 7")).build(
        tmp_path, pristine_sample_db
    )
    result = run("doctor", "--config", str(config), env=GOOD_ENV)
    assert result.exit_code == 2
    assert "FAIL server.database: must be a non-empty string" in result.stdout
    assert "skip database not checked until the [server] settings are fixed" in result.stdout


def test_the_report_lines_have_the_documented_shape() -> None:
    report = Report(
        (
            Check("ok", "database", "guidebot.db (5 schools)"),
            Check("FAIL", "slack.workspace[1].team_id", "'acme' does not look like a team id"),
            Check("skip", "slack online", "not checked"),
        )
    )
    assert report.lines() == [
        "ok   database guidebot.db (5 schools)",
        "FAIL slack.workspace[1].team_id: 'acme' does not look like a team id",
        "skip slack online not checked",
    ]
    assert not report.healthy
    assert Report(report.checks[::2]).healthy


@pytest.mark.parametrize(
    ("api_url", "base"),
    [
        (None, "https://slack.com/api/"),
        ("http://127.0.0.1:9/api", "http://127.0.0.1:9/api/"),
        ("http://127.0.0.1:9/api/", "http://127.0.0.1:9/api/"),
    ],
)
def test_api_base(api_url: str | None, base: str) -> None:
    assert api_base(api_url) == base


# --- online: a stand-in Slack Web API on 127.0.0.1 ----------------------------------------

TEAMS: dict[str, dict[str, Any]] = {
    BOT_TOKEN: {"team_id": "T0123ABC", "team": "St Anne's", "user": "guidebot"},
    OTHER_TEAM_TOKEN: {"team_id": "T0999ZZZ", "team": "Somewhere Else", "user": "guidebot"},
    "xoxb-st-johns": {"team_id": "T0456DEF", "team": "St John's", "user": "guidebot"},
}


@dataclass
class StandIn:
    url: str
    calls: list[tuple[str, str]]


@pytest.fixture
async def slack_api() -> AsyncIterator[StandIn]:
    calls: list[tuple[str, str]] = []

    async def auth_test(request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        calls.append((request.path, authorization))
        token = authorization.removeprefix("Bearer ")
        if token == "xoxb-busy":
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429)
        if token == "xoxb-proxy-page":
            return web.Response(text="<html>Bad gateway</html>", status=502)
        team = TEAMS.get(token)
        if team is None:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response({"ok": True, "user_id": "U0BOT", "bot_id": "B0BOT", **team})

    app = web.Application()
    app.router.add_post("/api/auth.test", auth_test)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield StandIn(f"http://127.0.0.1:{port}/api/", calls)
    finally:
        await runner.cleanup()


def online_setup(
    root: Path, pristine: Path, api_url: str, text: str = GOOD, env: dict[str, str] | None = None
) -> tuple[Path, dict[str, str]]:
    text = text.replace('transport = "http"', f'transport = "http"\napi_url = "{api_url}"')
    config = Setup(text=text).build(root, pristine)
    return config, env if env is not None else dict(GOOD_ENV)


async def test_online_a_good_token_for_the_right_team_is_ok(
    tmp_path: Path, pristine_sample_db: Path, slack_api: StandIn
) -> None:
    config, env = online_setup(tmp_path, pristine_sample_db, slack_api.url)
    report = await diagnose(config, env, online=True)
    assert report.healthy, report.lines()
    assert report.lines()[-1] == (
        'ok   slack.workspace[1] T0123ABC "St Anne\'s": Slack accepts the bot @guidebot'
    )
    assert slack_api.calls == [("/api/auth.test", f"Bearer {BOT_TOKEN}")]


async def test_offline_nothing_is_sent(
    tmp_path: Path, pristine_sample_db: Path, slack_api: StandIn
) -> None:
    config, env = online_setup(tmp_path, pristine_sample_db, slack_api.url)
    report = await diagnose(config, env)
    assert report.healthy
    assert slack_api.calls == []


@pytest.mark.parametrize(
    ("token", "line"),
    [
        (
            OTHER_TEAM_TOKEN,
            f"FAIL slack.workspace[1].team_id: is T0123ABC, but the token in {TOKEN_ENV} "
            "belongs to T0999ZZZ (Somewhere Else)",
        ),
        (
            "xoxb-revoked-or-mistyped",
            f"FAIL slack.workspace[1]: Slack refused the token in {TOKEN_ENV}: "
            "the token is not valid",
        ),
        ("xoxb-busy", "FAIL slack.workspace[1]: Slack refused the token in"),
        ("xoxb-proxy-page", "FAIL slack.workspace[1]: could not ask Slack at http://127.0.0.1:"),
    ],
    ids=["token-of-another-team", "invalid-token", "rate-limited", "not-json"],
)
async def test_online_a_token_that_does_not_work_is_named(
    tmp_path: Path, pristine_sample_db: Path, slack_api: StandIn, token: str, line: str
) -> None:
    config, env = online_setup(
        tmp_path, pristine_sample_db, slack_api.url, env={**GOOD_ENV, TOKEN_ENV: token}
    )
    report = await diagnose(config, env, online=True)
    assert not report.healthy
    assert report.lines()[-1].startswith(line), report.lines()
    assert all(token not in text for text in report.lines())
    assert slack_api.calls == [("/api/auth.test", f"Bearer {token}")]


async def test_online_each_workspace_is_checked_with_its_own_token(
    tmp_path: Path, pristine_sample_db: Path, slack_api: StandIn
) -> None:
    second = SECOND.replace('school = "st-johns"', 'school = "st-johns"')
    config, env = online_setup(
        tmp_path,
        pristine_sample_db,
        slack_api.url.rstrip("/"),  # the trailing slash is optional
        text=GOOD + second,
        env={**GOOD_ENV, "SLACK_BOT_TOKEN_ST_JOHNS": OTHER_TEAM_TOKEN},
    )
    report = await diagnose(config, env, online=True)
    lines = report.lines()
    assert lines[-2].startswith('ok   slack.workspace[1] T0123ABC "St Anne\'s"')
    assert lines[-1].startswith(
        "FAIL slack.workspace[2].team_id: is T0456DEF, but the token in "
        "SLACK_BOT_TOKEN_ST_JOHNS belongs to T0999ZZZ"
    )
    assert sorted(slack_api.calls) == sorted(
        [
            ("/api/auth.test", f"Bearer {BOT_TOKEN}"),
            ("/api/auth.test", f"Bearer {OTHER_TEAM_TOKEN}"),
        ]
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_online_slack_out_of_reach_is_a_failure(
    tmp_path: Path, pristine_sample_db: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api/"
    config, env = online_setup(tmp_path, pristine_sample_db, url)
    report = await diagnose(config, env, online=True)
    assert not report.healthy
    assert report.lines()[-1].startswith(f"FAIL slack.workspace[1]: could not ask Slack at {url}")


async def test_online_is_skipped_while_the_settings_are_broken(
    tmp_path: Path, pristine_sample_db: Path, slack_api: StandIn
) -> None:
    config, env = online_setup(
        tmp_path, pristine_sample_db, slack_api.url, env={TOKEN_ENV: BOT_TOKEN}
    )
    report = await diagnose(config, env, online=True)
    assert "skip slack online not checked until the problems above are fixed" in report.lines()
    assert slack_api.calls == []


async def test_the_installed_command_checks_online_in_a_real_process(
    tmp_path: Path, pristine_sample_db: Path, slack_api: StandIn
) -> None:
    config, env = online_setup(tmp_path, pristine_sample_db, slack_api.url)
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    process = await asyncio.create_subprocess_exec(
        str(GUIDEBOT),
        "doctor",
        "--config",
        str(config),
        "--online",
        env={**process_env, **env},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (stdout, stderr)
    output = stdout.decode()
    assert 'ok   slack.workspace[1] T0123ABC "St Anne\'s"' in output
    assert BOT_TOKEN not in output + stderr.decode()
    assert slack_api.calls == [("/api/auth.test", f"Bearer {BOT_TOKEN}")]


# --- Teams online: a stand-in Bot Framework OpenID metadata document on 127.0.0.1 ----------

SIGNING_KEYS = [
    {"kty": "RSA", "use": "sig", "kid": "stand-in-1", "n": "sXch", "e": "AQAB"},
    {"kty": "RSA", "use": "sig", "kid": "stand-in-2", "n": "tYdi", "e": "AQAB"},
]


@dataclass
class OpenIdStandIn:
    base: str
    calls: list[str]
    metadata: dict[str, Any] | str | None = None  # None: the real shape; str: raw text
    status: int = 200
    keys: list[dict[str, str]] = field(default_factory=lambda: list(SIGNING_KEYS))

    @property
    def url(self) -> str:
        return self.base + "/v1/.well-known/openidconfiguration"


@pytest.fixture
async def openid() -> AsyncIterator[OpenIdStandIn]:
    stand_in = OpenIdStandIn("", [])

    async def metadata(request: web.Request) -> web.StreamResponse:
        stand_in.calls.append(request.path)
        if isinstance(stand_in.metadata, str):
            return web.Response(text=stand_in.metadata, status=stand_in.status)
        document = stand_in.metadata or {
            "issuer": "https://api.botframework.com",
            "jwks_uri": stand_in.base + "/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        return web.json_response(document, status=stand_in.status)

    async def keys(request: web.Request) -> web.StreamResponse:
        stand_in.calls.append(request.path)
        return web.json_response({"keys": stand_in.keys})

    app = web.Application()
    app.router.add_get("/v1/.well-known/openidconfiguration", metadata)
    app.router.add_get("/v1/.well-known/keys", keys)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stand_in.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield stand_in
    finally:
        await runner.cleanup()


def teams_online_setup(root: Path, pristine: Path, url: str, text: str = TEAMS_ONLY) -> Path:
    text = text.replace(
        'app_type = "MultiTenant"', f'app_type = "MultiTenant"\nopenid_metadata_url = "{url}"'
    )
    return teams(text).build(root, pristine)


CREDENTIALS_SKIPPED = (
    "skip teams credentials can only be checked by sending a message: once guidebot serve "
    "is running, send the bot a message in Teams"
)


async def test_teams_online_fetches_the_signing_keys_and_is_honest_about_credentials(
    tmp_path: Path, pristine_sample_db: Path, openid: OpenIdStandIn
) -> None:
    config = teams_online_setup(tmp_path, pristine_sample_db, openid.url)
    report = await diagnose(config, TEAMS_ENV, online=True)
    assert report.healthy, report.lines()
    assert report.lines()[-2:] == [
        f"ok   teams.openid_metadata_url the Bot Framework's signing keys can be fetched "
        f"from {openid.url} (2 keys)",
        CREDENTIALS_SKIPPED,
    ]
    assert openid.calls == ["/v1/.well-known/openidconfiguration", "/v1/.well-known/keys"]
    assert all(TEAMS_PASSWORD not in line for line in report.lines())


async def test_teams_online_uses_the_bot_frameworks_address_by_default(
    tmp_path: Path,
    pristine_sample_db: Path,
    openid: OpenIdStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert doctor.BOT_FRAMEWORK_OPENID == (
        "https://login.botframework.com/v1/.well-known/openidconfiguration"
    )
    monkeypatch.setattr(doctor, "BOT_FRAMEWORK_OPENID", openid.url)  # no real network
    config = teams().build(tmp_path, pristine_sample_db)
    report = await diagnose(config, TEAMS_ENV, online=True)
    assert report.healthy, report.lines()
    assert report.lines()[-2].startswith("ok   teams signing keys the Bot Framework's signing")
    assert len(openid.calls) == 2


async def test_teams_offline_nothing_is_fetched(
    tmp_path: Path, pristine_sample_db: Path, openid: OpenIdStandIn
) -> None:
    config = teams_online_setup(tmp_path, pristine_sample_db, openid.url)
    report = await diagnose(config, TEAMS_ENV)
    assert report.healthy
    assert not [line for line in report.lines() if "online" in line or "credentials" in line]
    assert openid.calls == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": 404}, "(HTTP 404)"),
        ({"metadata": "<html>Proxy sign-in</html>"}, "could not fetch"),
        ({"metadata": {"issuer": "https://api.botframework.com"}}, "no jwks_uri"),
        ({"keys": []}, "no signing keys in it"),
    ],
    ids=["not-found", "a-proxy-page", "not-openid-metadata", "no-keys"],
)
async def test_teams_online_metadata_that_does_not_work_is_named(
    tmp_path: Path,
    pristine_sample_db: Path,
    openid: OpenIdStandIn,
    change: dict[str, Any],
    reason: str,
) -> None:
    for key, value in change.items():
        setattr(openid, key, value)
    config = teams_online_setup(tmp_path, pristine_sample_db, openid.url)
    report = await diagnose(config, TEAMS_ENV, online=True)
    assert not report.healthy
    failure = report.lines()[-2]
    assert failure.startswith("FAIL teams.openid_metadata_url: could not fetch http://127.0.0.1:")
    assert reason in failure
    assert "firewall or web proxy" in failure
    assert report.lines()[-1] == CREDENTIALS_SKIPPED


async def test_teams_online_out_of_reach_is_a_failure(
    tmp_path: Path, pristine_sample_db: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1/.well-known/openidconfiguration"
    config = teams_online_setup(tmp_path, pristine_sample_db, url)
    report = await diagnose(config, TEAMS_ENV, online=True)
    assert not report.healthy
    assert report.lines()[-2].startswith(f"FAIL teams.openid_metadata_url: could not fetch {url}")


async def test_teams_online_is_skipped_while_the_settings_are_broken(
    tmp_path: Path, pristine_sample_db: Path, openid: OpenIdStandIn
) -> None:
    config = teams_online_setup(tmp_path, pristine_sample_db, openid.url)
    report = await diagnose(config, {}, online=True)  # no client secret
    assert "skip teams online not checked until the problems above are fixed" in report.lines()
    assert not [line for line in report.lines() if "slack" in line]
    assert openid.calls == []


async def test_online_checks_slack_and_teams_together(
    tmp_path: Path, pristine_sample_db: Path, slack_api: StandIn, openid: OpenIdStandIn
) -> None:
    text = GOOD.replace('transport = "http"', f'transport = "http"\napi_url = "{slack_api.url}"')
    config = teams_online_setup(tmp_path, pristine_sample_db, openid.url, text=text + TEAMS_SECTION)
    report = await diagnose(config, BOTH_ENV, online=True)
    assert report.healthy, report.lines()
    assert report.lines()[-3].startswith('ok   slack.workspace[1] T0123ABC "St Anne\'s"')
    assert report.lines()[-2].startswith("ok   teams.openid_metadata_url ")
    assert report.lines()[-1] == CREDENTIALS_SKIPPED


async def test_the_installed_command_checks_teams_online_in_a_real_process(
    tmp_path: Path, pristine_sample_db: Path, openid: OpenIdStandIn
) -> None:
    config = teams_online_setup(tmp_path, pristine_sample_db, openid.url)
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    process = await asyncio.create_subprocess_exec(
        str(GUIDEBOT),
        "doctor",
        "--config",
        str(config),
        "--online",
        env={**process_env, **TEAMS_ENV},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (stdout, stderr)
    assert CREDENTIALS_SKIPPED in stdout.decode().splitlines()
    assert TEAMS_PASSWORD not in (stdout + stderr).decode()
    assert len(openid.calls) == 2


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """diagnose() is given its environment; make sure nothing leaks in from os.environ."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    yield


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "FAIL GUIDEBOT_SECRET_KEY: missing"),
        ("not-a-key", "FAIL GUIDEBOT_SECRET_KEY: set, but it is not a key made by"),
    ],
)
def test_the_report_sealing_key_is_checked_and_never_shown(
    tmp_path: Path, pristine_sample_db: Path, value: str, expected: str
) -> None:
    config = Setup().build(tmp_path, pristine_sample_db)
    result = run("doctor", "--config", str(config), env={**GOOD_ENV, "GUIDEBOT_SECRET_KEY": value})
    assert result.exit_code == 2
    assert any(line.startswith(expected) for line in result.stdout.splitlines()), result.stdout
    assert KEY_ENV["GUIDEBOT_SECRET_KEY"] not in result.output
