"""`guidebot doctor` on a table of broken installations: each names its problem in one line.

Every case starts from a good installation (settings file, secrets, a database
holding St Anne's policies) and breaks one thing. The doctor must exit 2 and
print exactly one FAIL line, which names the setting, secret or file and says
what is wrong. No secret value ever appears in its output.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.crypto import generate_key
from tests.adapters.test_restart_e2e import queue_alert
from tests.conftest import copy_db

ENV_PREFIXES = ("SLACK_", "GUIDEBOT_", "MICROSOFT_APP_")
BOT_TOKEN = "xoxb-annes-0000-secret"
SIGNING = "signing-0000-secret"
GOOD_ENV = {
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING,
    "GUIDEBOT_SECRET_KEY": generate_key(),
}
GOOD = """
[server]
port = 3000
database = "guidebot.db"

[slack]
transport = "http"

[[slack.workspace]]
team_id = "T0123ABC"
school = "st-annes"

[retention]
questions_days = 365
"""
TENANT = "0b1c2d3e-aaaa-4bbb-8ccc-123456789abc"
TEAMS = f"""
[teams]
app_id = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
app_type = "MultiTenant"

[[teams.tenant]]
tenant_id = "{TENANT}"
school = "st-annes"
"""


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database, it is a note from the caretaker\n" * 200)


def _foreign(path: Path) -> None:
    path.unlink()
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE register (pupil TEXT)")
    connection.commit()
    connection.close()


def _damaged(path: Path) -> None:
    connection = sqlite3.connect(path)
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    size = connection.execute("PRAGMA page_size").fetchone()[0]
    connection.close()
    data = bytearray(path.read_bytes())
    middle = (pages // 2) * size
    data[middle : middle + size] = b"\x0d" + b"\xff" * (size - 1)  # a leaf page, scrambled
    path.write_bytes(bytes(data))


def _newer(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.execute(
        "INSERT INTO _migrations VALUES ('zz_m999_from_the_future', '2030-01-01T00:00:00')"
    )
    connection.commit()
    connection.close()


def _sealed_with_another_key(path: Path) -> None:
    queue_alert(path)  # sealed with the tests' fixed key, not GOOD_ENV's


@dataclass(frozen=True)
class Case:
    name: str
    expected: str
    """The start of the one FAIL line."""
    words: tuple[str, ...] = ()
    text: str = GOOD
    env: dict[str, str] = field(default_factory=lambda: dict(GOOD_ENV))
    config: str = "file"  # "file", "missing"
    change_db: Callable[[Path], None] | None = None


def without(name: str) -> dict[str, str]:
    return {k: v for k, v in GOOD_ENV.items() if k != name}


CASES = [
    Case(
        "missing-file",
        "FAIL config: no configuration file at",
        ("deploy/guidebot.example.toml",),
        config="missing",
    ),
    Case(
        "bad-toml",
        "FAIL config: guidebot.toml is not valid TOML",
        ("line",),
        text=GOOD + "\n[slack\n",
    ),
    Case(
        "missing-signing-secret",
        "FAIL SLACK_SIGNING_SECRET: missing",
        ("environment",),
        env=without("SLACK_SIGNING_SECRET"),
    ),
    Case(
        "missing-bot-token",
        "FAIL SLACK_BOT_TOKEN: missing",
        ("slack.workspace[1]",),
        env=without("SLACK_BOT_TOKEN"),
    ),
    Case(
        "user-token-not-bot-token",
        "FAIL SLACK_BOT_TOKEN: set, but",
        ("xoxb-",),
        env={**GOOD_ENV, "SLACK_BOT_TOKEN": "xoxp-user-token-0000"},
    ),
    Case(
        "bad-team-id",
        "FAIL slack.workspace[1].team_id",
        ("does not look like a Slack team id",),
        text=GOOD.replace("T0123ABC", "st-annes-workspace"),
    ),
    Case(
        "bad-transport",
        "FAIL slack.transport",
        ('"http" or "socket"',),
        text=GOOD.replace('transport = "http"', 'transport = "websocket"'),
    ),
    Case(
        "socket-app-token-shape",
        "FAIL SLACK_APP_TOKEN: set, but",
        ("xapp-",),
        text=GOOD.replace('transport = "http"', 'transport = "socket"'),
        env={**without("SLACK_SIGNING_SECRET"), "SLACK_APP_TOKEN": "xoxb-wrong-kind"},
    ),
    Case(
        "bad-tenant-guid",
        "FAIL teams.tenant[1].tenant_id",
        ("GUID",),
        text=GOOD + TEAMS.replace(TENANT, "st-annes.onmicrosoft.com"),
        env={**GOOD_ENV, "MICROSOFT_APP_PASSWORD": "teams-0000-secret"},
    ),
    Case(
        "bad-app-id-guid",
        "FAIL teams.app_id",
        ("GUID",),
        text=GOOD + TEAMS.replace("6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "guidebot"),
        env={**GOOD_ENV, "MICROSOFT_APP_PASSWORD": "teams-0000-secret"},
    ),
    Case(
        "missing-secret-key",
        "FAIL GUIDEBOT_SECRET_KEY: missing",
        ("guidebot keygen",),
        env=without("GUIDEBOT_SECRET_KEY"),
    ),
    Case(
        "secret-key-not-a-key",
        "FAIL GUIDEBOT_SECRET_KEY: set, but",
        ("guidebot keygen",),
        env={**GOOD_ENV, "GUIDEBOT_SECRET_KEY": "correct horse battery staple"},
    ),
    Case(
        "wrong-key-for-stored-data",
        "FAIL GUIDEBOT_SECRET_KEY: is not the key",
        ("sealed with",),
        change_db=_sealed_with_another_key,
    ),
    Case(
        "database-not-sqlite",
        "FAIL database:",
        ("cannot be opened as a database",),
        change_db=_garbage,
    ),
    Case(
        "database-not-guidebot",
        "FAIL database:",
        ("is not a guidebot knowledge base",),
        change_db=_foreign,
    ),
    Case(
        "database-damaged", "FAIL database:", ("is damaged", "guidebot restore"), change_db=_damaged
    ),
    Case(
        "database-from-a-newer-guidebot",
        "FAIL database:",
        ("newer guidebot", "zz_m999_from_the_future"),
        change_db=_newer,
    ),
    Case(
        "retention-negative",
        "FAIL retention.questions_days:",
        ("whole number of days",),
        text=GOOD.replace("questions_days = 365", "questions_days = -30"),
    ),
    Case(
        "retention-words",
        "FAIL retention.questions_days:",
        ('"never"',),
        text=GOOD.replace("questions_days = 365", 'questions_days = "one year"'),
    ),
    Case(
        "retention-unknown-key",
        "FAIL retention.keep_days:",
        ("not a setting guidebot knows",),
        text=GOOD.replace("questions_days = 365", "keep_days = 30"),
    ),
    Case(
        "nothing-to-connect-to",
        "FAIL slack or teams:",
        ("no [slack] or [teams] section",),
        text=GOOD.split("[slack]")[0],
    ),
]


def run_doctor(root: Path, case: Case, pristine: Path) -> tuple[int, str]:
    config = root / "guidebot.toml"
    if case.config == "file":
        config.write_text(case.text, encoding="utf-8")
    database = copy_db(pristine, root / "guidebot.db")
    if case.change_db is not None:
        case.change_db(database)
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith(ENV_PREFIXES)}
    result = CliRunner().invoke(
        cli,
        ["doctor", "--config", str(config)],
        env={**cleared, **case.env},
        prog_name="guidebot",
    )
    return result.exit_code, result.stdout


def test_the_good_installation_is_healthy(tmp_path: Path, pristine_sample_db: Path) -> None:
    code, out = run_doctor(tmp_path, Case("good", ""), pristine_sample_db)
    assert code == 0, out
    assert "FAIL" not in out


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_broken_installation_is_named_in_one_line(
    tmp_path: Path, pristine_sample_db: Path, case: Case
) -> None:
    code, out = run_doctor(tmp_path, case, pristine_sample_db)
    assert code == 2, out
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 1, out
    [line] = failures
    assert line.startswith(case.expected), out
    for word in case.words:
        assert word in line, (word, line)
    assert "Traceback" not in out
    for secret in (BOT_TOKEN, SIGNING, GOOD_ENV["GUIDEBOT_SECRET_KEY"], "teams-0000-secret"):
        assert secret not in out
