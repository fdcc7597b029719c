"""`guidebot keygen` and `guidebot concerns export`: in-process through CliRunner,
plus one real run of the installed command."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.concerns import ConcernForm, Concerns, Person
from bot.config import load
from bot.crypto import KEY_ENV, SecretBox, generate_key
from bot.outbox import Outbox
from knowledge.store import KnowledgeBase

GUIDEBOT = Path(sys.executable).with_name("guidebot")
DSL = "slack:U0DSL0001"
STRANGER = "slack:U0OTHER01"
WHAT = "Zanzibarquokka said her uncle hurt her arm"

CONFIG = f"""
[server]
database = "guidebot.db"

[schools.st-annes.safeguarding]
dsl = ["{DSL}"]
"""


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name="guidebot")


def assert_one_line_error(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("guidebot: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


class Setup:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = folder / "guidebot.toml"
        self.config.write_text(CONFIG, encoding="utf-8")
        self.key = generate_key()
        settings = load(self.config, env={})
        kb = KnowledgeBase(settings.database)
        box = SecretBox.from_key(self.key)
        concerns = Concerns(
            kb.db, box, lambda slug: settings.school(slug).safeguarding, Outbox(kb.db, box)
        )
        form = ConcernForm("pupil", "Q.F.", WHAT, "cloakroom", False, "nothing yet")
        self.ref = concerns.submit("st-annes", Person("slack", "U0STAFF01"), form).ref
        concerns.add_note(self.ref, Person.parse(DSL), "phoned home")
        kb.close()

    def env(self, **extra: str | None) -> dict[str, str | None]:
        return {KEY_ENV: self.key, "GUIDEBOT_DB": None, "GUIDEBOT_CONFIG": None, **extra}

    def audit(self) -> list[tuple[str, str, int]]:
        kb = KnowledgeBase(self.folder / "guidebot.db")
        try:
            rows = kb.db.execute(
                "SELECT actor, action, allowed FROM concern_audit WHERE ref = ? ORDER BY id",
                [self.ref],
            ).fetchall()
        finally:
            kb.close()
        return [tuple(row) for row in rows]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


# --- keygen -------------------------------------------------------------------------------------


def test_keygen_prints_a_new_key_and_one_line_of_advice() -> None:
    first, second = run("keygen"), run("keygen")
    assert first.exit_code == 0
    key = first.stdout.strip()
    assert first.stdout == key + "\n" and len(base64.urlsafe_b64decode(key)) == 32
    assert key != second.stdout.strip()
    advice = first.stderr.strip().splitlines()
    assert len(advice) == 1 and KEY_ENV in advice[0] and "losing it" in advice[0]
    assert SecretBox.from_env({KEY_ENV: key}) is not None


@pytest.mark.parametrize("args", [["keygen"], ["concerns"], ["concerns", "export"]])
def test_the_new_commands_have_help_with_an_example(args: list[str]) -> None:
    result = run(*args, "-h")
    assert result.exit_code == 0 and "Example:" in result.stdout


# --- concerns export ------------------------------------------------------------------------------


def test_export_prints_the_report_for_someone_it_was_sent_to(setup: Setup) -> None:
    result = run(
        "concerns", "export", setup.ref, "--by", DSL, "--config", str(setup.config), env=setup.env()
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# Safeguarding concern {setup.ref}")
    assert WHAT in result.stdout and "phoned home" in result.stdout
    assert setup.audit()[-1] == (DSL, "exported", 1)


def test_export_writes_json_to_a_file_only_its_owner_can_read(setup: Setup) -> None:
    out = setup.folder / "export.json"
    args = ["concerns", "export", setup.ref, "--by", DSL, "--format", "json", "--out", str(out)]
    result = run(*args, "--config", str(setup.config), env=setup.env())
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and str(out) in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["ref"] == setup.ref and data["report"]["what"] == WHAT
    assert data["audit"][-1]["action"] == "exported"

    again = run(*args, "--config", str(setup.config), env=setup.env())
    assert again.exit_code == 2
    assert_one_line_error(again.stderr, str(out), "already exists")


def test_export_refuses_someone_it_was_not_sent_to_and_records_it(setup: Setup) -> None:
    out = setup.folder / "export.md"
    result = run(
        "concerns",
        "export",
        setup.ref,
        "--by",
        STRANGER,
        "--out",
        str(out),
        "--config",
        str(setup.config),
        env=setup.env(),
    )
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, setup.ref)
    assert WHAT not in result.output and not out.exists()
    assert setup.audit()[-1] == (STRANGER, "refused:export", 0)


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["C-2026-0001", "--by", DSL], {KEY_ENV: None}, KEY_ENV),
        (["C-2026-0001", "--by", DSL], {KEY_ENV: "short"}, KEY_ENV),
        (["C-2026-0099", "--by", DSL], {}, "C-2026-0099"),
        (["C-2026-0001", "--by", "nobody"], {}, "nobody"),
    ],
)
def test_export_problems_are_one_line(
    setup: Setup, args: list[str], env: dict[str, str | None], needle: str
) -> None:
    result = run("concerns", "export", *args, "--config", str(setup.config), env=setup.env(**env))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, needle)
    assert setup.key not in result.output and WHAT not in result.output


def test_export_runs_as_the_installed_command(setup: Setup) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GUIDEBOT_DB", "GUIDEBOT_CONFIG")}
    env[KEY_ENV] = setup.key
    done = subprocess.run(
        [str(GUIDEBOT), "concerns", "export", setup.ref, "--by", DSL, "--format", "json"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=setup.folder,  # finds ./guidebot.toml
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["report"]["what"] == WHAT
    refused = subprocess.run(
        [str(GUIDEBOT), "concerns", "export", setup.ref, "--by", STRANGER],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=setup.folder,
        env=env,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert_one_line_error(refused.stderr, setup.ref)
