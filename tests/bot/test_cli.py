"""The `guidebot` command, the contract for operations and evaluation.

In-process through click's CliRunner for speed, plus real subprocess runs of the
installed console script to prove the entry point, stdin piping and exit codes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from knowledge.sample_data import sample_files
from knowledge.store import KnowledgeBase

GUIDEBOT = Path(sys.executable).with_name("guidebot")
FRIEND = "can I accept a friend request from an ex-pupil?"
MATCH_KEYS = {"policy", "section", "text", "score"}
PAYLOAD_KEYS = {"question", "answered", "offer_report", "matches"}

POLICY = """Acceptable Use Policy

Next review: July 2026

Contact: Mrs J Patel, Headteacher

1. Devices

Staff must not use personal phones to photograph pupils.

2. Passwords

Staff must not share their school passwords with anyone.
"""


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, list(args), input=stdin, env=env, prog_name="guidebot")


def dump(path: Path) -> list[str]:
    """Every row of every table, FTS shadow tables included."""
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def assert_one_line_error(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("guidebot: ")
    for needle in needles:
        assert needle in lines[0]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GUIDEBOT_DB"}
    env.update(extra)
    return env


def guidebot(
    *args: str, stdin: str = "", cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GUIDEBOT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env=env if env is not None else clean_env(),
        timeout=60,
        check=False,
    )


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "acceptable-use.txt"
    path.write_text(POLICY, encoding="utf-8")
    return path


@pytest.fixture
def corrupt_docx(tmp_path: Path) -> Path:
    path = tmp_path / "broken-policy.docx"
    path.write_bytes(b"PK\x03\x04 not really a word document")
    return path


# --- help -------------------------------------------------------------------------------


def test_every_command_has_help_with_an_example() -> None:
    assert {"ingest", "ask", "chat", "policies"} <= set(cli.commands)
    for args in ([], *([name] for name in sorted(cli.commands))):
        for flag in ("-h", "--help"):
            result = run(*args, flag)
            assert result.exit_code == 0, (args, result.output)
            assert "Example:" in result.stdout, args
            assert "Usage: guidebot" in result.stdout


def test_group_help_lists_the_commands() -> None:
    result = run("-h")
    for name in ("ingest", "ask", "chat", "policies"):
        assert name in result.stdout


# --- ingest -----------------------------------------------------------------------------


def test_ingest_prints_one_line_per_file(tmp_path: Path, policy_file: Path) -> None:
    db = tmp_path / "kb.db"
    sample = tmp_path / "social-media.txt"
    sample.write_bytes(sample_files()["st-annes"].read_bytes())
    args = ("--db", str(db), "ingest", "--school", "st-marys", "--name", "St Mary's")
    result = run(*args, str(policy_file), str(sample))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("acceptable-use.txt: Acceptable Use Policy (")
    assert "version 1" in lines[0]
    assert "next review 2026-07" in lines[0]
    assert lines[1].startswith("social-media.txt: ")

    again = run(*args, str(policy_file))
    assert again.exit_code == 0
    assert again.stdout.strip().splitlines() == [again.stdout.strip()]
    assert "unchanged" in again.stdout

    kb = KnowledgeBase(db)
    assert kb.school("st-marys").name == "St Mary's"
    assert len(kb.policies("st-marys")) == 2
    kb.close()


def test_a_corrupt_file_is_exit_2_with_one_line_naming_it_and_changes_nothing(
    sample_db_copy: Path, policy_file: Path, corrupt_docx: Path
) -> None:
    before = dump(sample_db_copy)
    result = run(
        "--db",
        str(sample_db_copy),
        "ingest",
        "--school",
        "st-annes",
        str(policy_file),
        str(corrupt_docx),
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "broken-policy.docx")
    assert dump(sample_db_copy) == before


def test_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = run("--db", str(tmp_path / "kb.db"), "ingest", "--school", "x", "nope.txt")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "nope.txt" in result.stderr


def test_ingest_needs_a_school_and_a_file(tmp_path: Path, policy_file: Path) -> None:
    assert run("--db", str(tmp_path / "kb.db"), "ingest", str(policy_file)).exit_code == 2
    assert run("--db", str(tmp_path / "kb.db"), "ingest", "--school", "x").exit_code == 2


# --- ask --------------------------------------------------------------------------------


def _payload(line: str) -> dict[str, object]:
    payload = json.loads(line)
    assert isinstance(payload, dict)
    assert set(payload) == PAYLOAD_KEYS
    assert isinstance(payload["question"], str)
    assert isinstance(payload["answered"], bool)
    assert isinstance(payload["offer_report"], bool)
    matches = payload["matches"]
    assert isinstance(matches, list)
    for match in matches:
        assert set(match) == MATCH_KEYS
        assert all(isinstance(match[key], str) for key in ("policy", "section", "text"))
        assert isinstance(match["score"], int | float)
    return payload


@pytest.mark.parametrize("top", ["1", "2", "3", "5"])
def test_ask_json_is_one_object_with_at_most_top_matches(
    pristine_sample_db: Path, top: str
) -> None:
    result = run(
        "--db",
        str(pristine_sample_db),
        "ask",
        "--school",
        "st-annes",
        "--top",
        top,
        "--json",
        FRIEND,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    payload = _payload(lines[0])
    assert payload["question"] == FRIEND
    assert payload["answered"] is True
    matches = payload["matches"]
    assert isinstance(matches, list)
    assert 1 <= len(matches) <= int(top)
    assert "friend" in matches[0]["text"].casefold()
    scores = [m["score"] for m in matches]
    assert scores == sorted(scores, reverse=True)


def test_ask_json_default_top_is_3_and_texts_are_stored_clauses(
    pristine_sample_db: Path,
) -> None:
    result = run(
        "--db",
        str(pristine_sample_db),
        "ask",
        "--school",
        "kaleidoscope",
        "--json",
        "staff social media pupils parents",
    )
    payload = _payload(result.stdout)
    matches = payload["matches"]
    assert isinstance(matches, list) and len(matches) == 3
    connection = sqlite3.connect(pristine_sample_db)
    stored = {
        row[0]
        for row in connection.execute("SELECT text FROM clauses WHERE school = 'kaleidoscope'")
    }
    connection.close()
    assert all(match["text"] in stored for match in matches)


def test_ask_without_json_prints_the_clause(pristine_sample_db: Path) -> None:
    result = run("--db", str(pristine_sample_db), "ask", "--school", "st-annes", FRIEND)
    assert result.exit_code == 0
    assert "friend requests" in result.stdout
    assert not result.stdout.lstrip().startswith("{")


def test_ask_a_disclosure_offers_a_report(pristine_sample_db: Path) -> None:
    result = run(
        "--db",
        str(pristine_sample_db),
        "ask",
        "--school",
        "st-annes",
        "--json",
        "a girl in my class told me her dad hits her",
    )
    assert _payload(result.stdout)["offer_report"] is True


def test_ask_json_batch_gives_one_object_per_non_empty_line(
    pristine_sample_db: Path, tmp_path: Path
) -> None:
    questions = [
        FRIEND,
        "can I post photos of pupils on instagram?",
        'quotes " and OR * NEAR( {}',
        "what time does the canteen open?",
        "can i post 📸 of pupils on insta 🙏",
    ]
    batch = tmp_path / "questions.txt"
    batch.write_text(
        "\n".join([questions[0], "", "   ", *questions[1:3], "\t", *questions[3:]]) + "\n\n",
        encoding="utf-8",
    )
    result = run(
        "--db",
        str(pristine_sample_db),
        "ask",
        "--school",
        "st-johns",
        "--json",
        "--top",
        "2",
        "--batch",
        str(batch),
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().split("\n")
    assert len(lines) == len(questions)
    payloads = [_payload(line) for line in lines]
    assert [p["question"] for p in payloads] == questions
    assert all(len(p["matches"]) <= 2 for p in payloads)  # type: ignore[arg-type]


def test_ask_batch_reads_stdin(pristine_sample_db: Path) -> None:
    result = run(
        "--db",
        str(pristine_sample_db),
        "ask",
        "--school",
        "st-annes",
        "--json",
        "--batch",
        "-",
        stdin=f"{FRIEND}\n\nwho do I tell about a concern?\n",
    )
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 2


def test_batch_without_json_is_exit_2(pristine_sample_db: Path, tmp_path: Path) -> None:
    batch = tmp_path / "questions.txt"
    batch.write_text(FRIEND + "\n", encoding="utf-8")
    result = run(
        "--db", str(pristine_sample_db), "ask", "--school", "st-annes", "--batch", str(batch)
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "--json")


def test_ask_without_a_question_is_exit_2(pristine_sample_db: Path) -> None:
    result = run("--db", str(pristine_sample_db), "ask", "--school", "st-annes")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr)


@pytest.mark.parametrize("top", ["0", "-1", "21", "many"])
def test_ask_rejects_a_bad_top(pristine_sample_db: Path, top: str) -> None:
    result = run(
        "--db", str(pristine_sample_db), "ask", "--school", "st-annes", "--top", top, FRIEND
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["ask", "--school", "nowhere", "--json", FRIEND],
        ["ask", "--school", "nowhere", FRIEND],
        ["policies", "--school", "nowhere"],
        ["chat", "--school", "nowhere"],
    ],
    ids=["ask-json", "ask", "policies", "chat"],
)
def test_an_unknown_school_is_exit_2(sample_db_copy: Path, args: list[str]) -> None:
    result = run("--db", str(sample_db_copy), *args, stdin=FRIEND + "\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "nowhere")


def test_a_db_that_is_not_sqlite_is_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 20)
    result = run("--db", str(db), "ask", "--school", "st-annes", FRIEND)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "notes.db", "not a database")
    assert db.read_text().startswith("these are my notes")


def test_a_school_name_that_ingest_accepts_can_be_asked(tmp_path: Path, policy_file: Path) -> None:
    db = tmp_path / "kb.db"
    loaded = run("--db", str(db), "ingest", "--school", "St Marys", str(policy_file))
    if loaded.exit_code != 0:  # rejecting a non-slug up front is fine too
        assert loaded.exit_code == 2
        assert_one_line_error(loaded.stderr, "St Marys")
        return
    asked = run("--db", str(db), "ask", "--school", "St Marys", "--json", "personal phones")
    assert asked.exit_code == 0, asked.stderr
    assert run("--db", str(db), "policies", "--school", "St Marys").exit_code == 0


# --- policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("school", ["st-annes", "kaleidoscope"])
def test_policies_lists_title_next_review_and_contact(
    pristine_sample_db: Path, school: str
) -> None:
    result = run("--db", str(pristine_sample_db), "policies", "--school", school)
    assert result.exit_code == 0, result.output
    kb = KnowledgeBase(pristine_sample_db)
    records = kb.policies(school)
    kb.close()
    assert records
    for record in records:
        assert record.title in result.stdout
        assert (record.contact or "not stated") in result.stdout
        review = record.next_review.isoformat() if record.next_review else "not stated"
        assert review in result.stdout
    assert result.stdout.count("next review:") == len(records)
    assert result.stdout.count("contact:") == len(records)


def test_policies_shows_the_stated_review_date_and_contact(
    tmp_path: Path, policy_file: Path
) -> None:
    db = tmp_path / "kb.db"
    assert run("--db", str(db), "ingest", "--school", "x", str(policy_file)).exit_code == 0
    result = run("--db", str(db), "policies", "--school", "x")
    assert "Acceptable Use Policy" in result.stdout
    next_review = [line for line in result.stdout.splitlines() if "next review:" in line]
    assert next_review and "2026-07" in next_review[0]
    contact = [line for line in result.stdout.splitlines() if "contact:" in line]
    assert contact and "Patel" in contact[0]


# --- chat -------------------------------------------------------------------------------


def test_chat_loads_samples_on_first_run_and_answers_each_piped_line(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    stdin = f"{FRIEND}\n\ncan I post photos of pupils on my own instagram?\n"
    result = run("--db", str(db), "chat", "--school", "st-annes", stdin=stdin)
    assert result.exit_code == 0, result.output
    assert "friend requests" in result.stdout
    assert result.stdout.count("From ") >= 2  # one answer heading per question
    assert "loaded the 5 bundled sample schools" in result.stderr
    assert "you>" not in result.stdout  # no prompts when piped

    again = run("--db", str(db), "chat", "--school", "st-annes", stdin=FRIEND + "\n")
    assert again.exit_code == 0
    assert "loaded" not in again.stderr
    assert "friend requests" in again.stdout


def test_chat_says_it_could_not_find_an_off_topic_question(sample_db_copy: Path) -> None:
    # chat records the gap, so it gets a private copy, never the shared pristine file
    result = run(
        "--db",
        str(sample_db_copy),
        "chat",
        "--school",
        "st-annes",
        stdin="how many sugars do you take in your tea?\n",
    )
    assert result.exit_code == 0
    assert "could not find" in result.stdout


# --- GUIDEBOT_DB ------------------------------------------------------------------------


def test_guidebot_db_env_var_is_honoured(pristine_sample_db: Path, tmp_path: Path) -> None:
    env = {"GUIDEBOT_DB": str(pristine_sample_db)}
    result = run("ask", "--school", "st-annes", "--json", FRIEND, env=env)
    assert result.exit_code == 0, result.output
    assert _payload(result.stdout)["answered"] is True

    target = tmp_path / "from-env.db"
    policy = tmp_path / "p.txt"
    policy.write_text(POLICY, encoding="utf-8")
    result = run("ingest", "--school", "x", str(policy), env={"GUIDEBOT_DB": str(target)})
    assert result.exit_code == 0, result.output
    assert target.exists()


def test_db_option_wins_over_the_env_var(pristine_sample_db: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    result = run(
        "--db",
        str(pristine_sample_db),
        "ask",
        "--school",
        "st-annes",
        "--json",
        FRIEND,
        env={"GUIDEBOT_DB": str(empty)},
    )
    assert result.exit_code == 0, result.output
    assert not empty.exists()


# --- the installed console script, in real processes ------------------------------------


def test_console_script_is_installed() -> None:
    assert GUIDEBOT.is_file()
    assert os.access(GUIDEBOT, os.X_OK)


def test_subprocess_chat_with_piped_stdin_and_guidebot_db(tmp_path: Path) -> None:
    db = tmp_path / "via-env.db"
    done = guidebot(
        "chat",
        "--school",
        "st-annes",
        stdin="can I accept a friend request from an ex-pupil?\n",
        cwd=tmp_path,
        env=clean_env(GUIDEBOT_DB=str(db)),
    )
    assert done.returncode == 0, done.stderr
    assert "friend" in done.stdout.casefold()
    assert "Traceback" not in done.stderr
    assert db.exists()
    assert not (tmp_path / "guidebot.db").exists()


def test_subprocess_corrupt_file_exit_2_one_line_no_traceback(
    sample_db_copy: Path, policy_file: Path, corrupt_docx: Path, tmp_path: Path
) -> None:
    before = dump(sample_db_copy)
    done = guidebot(
        "--db",
        str(sample_db_copy),
        "ingest",
        "--school",
        "st-annes",
        str(policy_file),
        str(corrupt_docx),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert_one_line_error(done.stderr, "broken-policy.docx")
    assert dump(sample_db_copy) == before


def test_subprocess_broken_pdf_is_one_line_without_library_noise(
    sample_db_copy: Path, tmp_path: Path
) -> None:
    """pypdf narrates a truncated file on stderr ("EOF marker not found");
    the admin should see only our one line."""
    broken = tmp_path / "scan.pdf"
    broken.write_bytes(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n"
    )
    before = dump(sample_db_copy)
    done = guidebot(
        "--db", str(sample_db_copy), "ingest", "--school", "st-annes", str(broken), cwd=tmp_path
    )
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "scan.pdf")
    assert "EOF" not in done.stderr
    assert dump(sample_db_copy) == before


def test_subprocess_ask_json_batch_and_help(pristine_sample_db: Path, tmp_path: Path) -> None:
    batch = tmp_path / "q.txt"
    batch.write_text(f"{FRIEND}\n\nwhat time does the canteen open?\n", encoding="utf-8")
    done = guidebot(
        "--db",
        str(pristine_sample_db),
        "ask",
        "--school",
        "st-annes",
        "--json",
        "--batch",
        str(batch),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2
    assert [_payload(line)["question"] for line in lines] == [
        FRIEND,
        "what time does the canteen open?",
    ]
    helped = guidebot("-h", cwd=tmp_path)
    assert helped.returncode == 0
    assert "Example:" in helped.stdout


# --- serve and doctor -------------------------------------------------------------------

SLACK_CONFIG = """
[server]
database = "guidebot.db"

[slack]
transport = "http"

[[slack.workspace]]
team_id = "T0123ABC"
school = "st-annes"
bot_token_env = "SLACK_BOT_TOKEN_ST_ANNES"
"""
SLACK_ENV = {"SLACK_BOT_TOKEN_ST_ANNES": "xoxb-0000-secret", "SLACK_SIGNING_SECRET": "s3cr3t-0000"}
APP_ID = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
TEAMS_PASSWORD = "teams~client-secret-0000"
TEAMS_SECTION = """
[teams]
app_id = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"

[[teams.tenant]]
tenant_id = "0b1c2d3e-aaaa-4bbb-8ccc-123456789abc"
school = "st-annes"
"""
TEAMS_CONFIG = '[server]\ndatabase = "guidebot.db"\n' + TEAMS_SECTION
TEAMS_ENV = {"MICROSOFT_APP_PASSWORD": TEAMS_PASSWORD}
UNAUTHENTICATED_TEAMS = TEAMS_CONFIG.replace(f'app_id = "{APP_ID}"\n', "")


def settings_env(**extra: str) -> dict[str, str | None]:
    """CliRunner's environment: this machine's Slack and guidebot variables removed."""
    cleared: dict[str, str | None] = {
        name: None
        for name in os.environ
        if name.startswith(("SLACK_", "GUIDEBOT_", "MICROSOFT_APP_"))
    }
    return {**cleared, **extra}


def invoke(*args: str, env: dict[str, str | None]) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name="guidebot")


def test_serve_and_doctor_are_listed_in_the_help() -> None:
    result = run("-h")
    assert "serve" in result.stdout
    assert "doctor" in result.stdout
    for name in ("serve", "doctor"):
        assert "--config" in run(name, "-h").stdout
    assert "--online" in run("doctor", "-h").stdout


def test_serve_help_says_insecure_local_is_for_local_testing_and_turns_off_teams_auth() -> None:
    shown = " ".join(run("serve", "-h").stdout.split())
    assert "--insecure-local" in shown
    assert "For local testing only" in shown
    assert "turns off Teams authentication" in shown
    assert "Never use it on a real server" in shown


@pytest.mark.parametrize(
    ("text", "env", "needles"),
    [
        (SLACK_CONFIG.replace('"T0123ABC"', '"acme"'), SLACK_ENV, ["slack.workspace[1].team_id"]),
        (SLACK_CONFIG, {"SLACK_BOT_TOKEN_ST_ANNES": "xoxb-1"}, ["SLACK_SIGNING_SECRET"]),
        (SLACK_CONFIG, {"SLACK_SIGNING_SECRET": "s"}, ["SLACK_BOT_TOKEN_ST_ANNES"]),
        ("[server]\nport = 99999\n" + SLACK_CONFIG.split("\n", 3)[3], SLACK_ENV, ["server.port"]),
        (SLACK_CONFIG.replace('"http"', '"https"'), SLACK_ENV, ["slack.transport"]),
        (SLACK_CONFIG.replace("[slack]", "[slack"), SLACK_ENV, ["guidebot.toml", "TOML"]),
        ("[server]\nport = 3000\n", {}, ["[slack]", "[teams]"]),
        (TEAMS_CONFIG, {}, ["MICROSOFT_APP_PASSWORD"]),
        (TEAMS_CONFIG.replace(APP_ID, "guidebot-bot"), TEAMS_ENV, ["teams.app_id", "GUID"]),
    ],
    ids=[
        "bad-team-id",
        "no-signing-secret",
        "no-bot-token",
        "bad-port",
        "bad-transport",
        "not-toml",
        "neither-slack-nor-teams",
        "teams-without-client-secret",
        "teams-app-id-not-a-guid",
    ],
)
def test_serve_with_broken_settings_is_exit_2_with_one_line_naming_the_setting(
    tmp_path: Path, text: str, env: dict[str, str], needles: list[str]
) -> None:
    config = tmp_path / "guidebot.toml"
    config.write_text(text, encoding="utf-8")
    result = invoke("serve", "--config", str(config), env=settings_env(**env))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert_one_line_error(result.stderr, *needles)
    for secret in (*SLACK_ENV.values(), TEAMS_PASSWORD):
        assert secret not in result.stderr


@pytest.mark.parametrize("how", ["option", "GUIDEBOT_CONFIG", "default"])
def test_serve_without_a_settings_file_is_exit_2_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    missing = tmp_path / "nowhere.toml"
    if how == "option":
        result = invoke("serve", "--config", str(missing), env=settings_env())
    elif how == "GUIDEBOT_CONFIG":
        result = invoke("serve", env=settings_env(GUIDEBOT_CONFIG=str(missing)))
    else:
        monkeypatch.chdir(tmp_path)
        result = invoke("serve", env=settings_env())
        missing = Path("guidebot.toml")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, str(missing), "guidebot.example.toml")


@pytest.mark.parametrize("kind", ["folder", "not-utf8"])
def test_serve_with_an_unreadable_settings_file_is_exit_2(tmp_path: Path, kind: str) -> None:
    config = tmp_path / "guidebot.toml"
    if kind == "folder":
        config.mkdir()
    else:
        config.write_bytes(("# St Anne\x92s\n" + SLACK_CONFIG).encode("latin-1"))
    result = invoke("serve", "--config", str(config), env=settings_env(**SLACK_ENV))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "settings file", str(config))


def _stand_in_server(calls: list[Any], flags: list[bool] | None = None) -> types.ModuleType:
    """adapters.server as far as `serve` needs it (a blocking
    serve(settings, *, insecure_local=False)), so no real server starts."""
    module = types.ModuleType("adapters.server")

    def serve(settings: Any, *, insecure_local: bool = False) -> None:
        calls.append(settings)
        if flags is not None:
            flags.append(insecure_local)

    module.serve = serve  # type: ignore[attr-defined]
    return module


def test_serve_hands_the_settings_to_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    monkeypatch.setitem(sys.modules, "adapters.server", _stand_in_server(calls))
    config = tmp_path / "guidebot.toml"
    config.write_text(SLACK_CONFIG, encoding="utf-8")

    result = invoke("serve", "--config", str(config), env=settings_env(**SLACK_ENV))
    assert result.exit_code == 0, result.output
    [settings] = calls
    assert settings.source == config
    assert settings.database == tmp_path / "guidebot.db"
    assert settings.slack.workspaces[0].team_id == "T0123ABC"

    other = tmp_path / "other.db"
    result = invoke(
        "--db", str(other), "serve", "--config", str(config), env=settings_env(**SLACK_ENV)
    )
    assert result.exit_code == 0, result.output
    assert calls[1].database == other  # `guidebot --db` wins over the file


@pytest.mark.parametrize(
    ("name", "text", "env"),
    [
        ("teams-only", TEAMS_CONFIG, TEAMS_ENV),
        ("slack-and-teams", SLACK_CONFIG + TEAMS_SECTION, {**SLACK_ENV, **TEAMS_ENV}),
    ],
)
def test_serve_starts_with_teams_alone_or_with_slack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, env: dict[str, str]
) -> None:
    calls: list[Any] = []
    flags: list[bool] = []
    monkeypatch.setitem(sys.modules, "adapters.server", _stand_in_server(calls, flags))
    config = tmp_path / "guidebot.toml"
    config.write_text(text, encoding="utf-8")

    result = invoke("serve", "--config", str(config), env=settings_env(**env))
    assert result.exit_code == 0, result.output
    [settings] = calls
    assert flags == [False]  # authentication stays on unless asked
    assert settings.teams.app_id == APP_ID
    assert [t.school for t in settings.teams.tenants] == ["st-annes"]
    assert (settings.slack is not None) == (name == "slack-and-teams")
    assert "WARNING" not in result.stderr
    assert TEAMS_PASSWORD not in result.output


@pytest.mark.parametrize(
    ("text", "env"),
    [(UNAUTHENTICATED_TEAMS, {}), (TEAMS_CONFIG, TEAMS_ENV), (SLACK_CONFIG, SLACK_ENV)],
    ids=["teams-without-app-id", "teams-with-app-id", "slack-only"],
)
def test_serve_passes_insecure_local_through_to_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: dict[str, str]
) -> None:
    calls: list[Any] = []
    flags: list[bool] = []
    monkeypatch.setitem(sys.modules, "adapters.server", _stand_in_server(calls, flags))
    config = tmp_path / "guidebot.toml"
    config.write_text(text, encoding="utf-8")

    result = invoke("serve", "--config", str(config), "--insecure-local", env=settings_env(**env))
    assert result.exit_code == 0, result.output
    assert flags == [True]
    assert calls[0].source == config


@pytest.mark.parametrize(
    ("host", "flag", "needles"),
    [
        ("127.0.0.1", None, ["teams.app_id is not set", "--insecure-local"]),
        ("0.0.0.0", "--insecure-local", ["--insecure-local", "loopback", "0.0.0.0"]),
    ],
    ids=["without-the-flag", "with-the-flag-but-open-to-the-network"],
)
def test_subprocess_serve_refuses_teams_without_an_app_id(
    tmp_path: Path, host: str, flag: str | None, needles: list[str]
) -> None:
    """The real server decides (adapters.server), before it listens on anything;
    a subprocess with a timeout, so a regression fails rather than serves."""
    config = tmp_path / "guidebot.toml"
    config.write_text(
        UNAUTHENTICATED_TEAMS.replace("[server]", f'[server]\nhost = "{host}"\nport = 0'),
        encoding="utf-8",
    )
    env = {k: v for k, v in clean_env().items() if not k.startswith(("SLACK_", "GUIDEBOT_"))}
    done = guidebot(
        "serve", "--config", str(config), *([flag] if flag else []), cwd=tmp_path, env=env
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert_one_line_error(done.stderr, *needles)


def test_subprocess_serve_without_settings_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in clean_env().items() if not k.startswith(("SLACK_", "GUIDEBOT_"))}
    done = guidebot("serve", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert_one_line_error(done.stderr, "guidebot.toml")


def test_subprocess_doctor_without_settings_is_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in clean_env().items() if not k.startswith(("SLACK_", "GUIDEBOT_"))}
    done = guidebot("doctor", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stdout.splitlines() == [
        "FAIL config: no configuration file at guidebot.toml: copy deploy/guidebot.example.toml"
    ]
    assert "Traceback" not in done.stderr


# --- eval ----------------------------------------------------------------------------


def test_eval_scores_a_question_file_and_says_n_a_for_kinds_it_lacks(tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps(
            {
                "id": "q1",
                "school": "st-annes",
                "kind": "answer",
                "question": FRIEND,
                "gold": ["accept 'friend requests'"],
            }
        )
        + "\n"
        + json.dumps(
            {"id": "q2", "school": "st-annes", "kind": "answer", "question": "x", "gold": ["zzz"]}
        )
        + "\n",
        encoding="utf-8",
    )
    result = run("eval", str(questions))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "R@1                 0.500   (2 answer items)"
    assert lines[2] == "abstention            n/a   (0 abstain items)"
    assert lines[3] == "concern recall        n/a   (0 concern items)"
    assert "q2 R@1 miss: x" in result.stdout
    assert "q1" not in result.stdout


def test_eval_names_a_line_that_is_not_json(tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"id": "q1"}\n{not json\n', encoding="utf-8")
    result = run("eval", str(questions))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "questions.jsonl", "line 2")
