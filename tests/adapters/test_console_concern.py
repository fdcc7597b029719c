"""/concern in the console: one question per line, a sealed report, the reference
printed, 999 advice at once when a child is in danger, and /cancel keeps nothing."""

from __future__ import annotations

import io
import json
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.console import DEMO_DSL, console_concerns, run_console
from bot import wording
from bot.cli import cli
from bot.concerns import Concerns, Person
from bot.config import SafeguardingSettings
from bot.crypto import KEY_ENV, KEY_FILE, SecretBox
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

WHAT = "Zanzibarquokka said her uncle hurt her arm"
NAME = "Quillonfeather"
REF_RE = re.compile(r"C-\d{4}-\d{4}")


def answers(danger: str = "no", confirm: str = "yes") -> list[str]:
    return ["/concern", "1", NAME, WHAT, "the playground at lunch", danger, "told nobody", confirm]


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


async def chat(kb: KnowledgeBase, concerns: Concerns | None, lines: list[str]) -> str:
    out = io.StringIO()
    await run_console(kb, Searcher(kb), "st-annes", lines, out, False, concerns)
    return out.getvalue()


def count(kb: KnowledgeBase, table: str) -> int:
    return int(kb.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_a_piped_report_is_stored_sealed_and_the_reference_printed(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    concerns = console_concerns(kb.db, sample_db_copy.parent)
    output = await chat(kb, concerns, answers())

    [ref] = REF_RE.findall(output)
    assert wording.concern_sent(ref) in " ".join(output.split())
    assert wording.concern_console_demo_routing(DEMO_DSL) in output
    assert wording.concern_call_999_now() not in output  # no immediate danger
    row = kb.db.execute("SELECT school, reporter, recipients, content FROM concerns").fetchone()
    assert row[:3] == ("st-annes", "console:console", json.dumps([DEMO_DSL]))
    assert WHAT not in row[3] and NAME not in row[3]
    assert WHAT not in "\n".join(kb.db.conn.iterdump())
    assert kb.db.execute("SELECT platform, recipient FROM outbox").fetchall() == [
        ("console", "dsl")
    ]

    key_file = sample_db_copy.parent / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    view = concerns.view(ref, Person.parse(DEMO_DSL))
    assert (view.form.about, view.form.about_name, view.form.what) == ("pupil", NAME, WHAT)
    assert view.form.when_where == "the playground at lunch" and not view.urgent
    # a fresh start with the same key file reads it too
    again = Concerns(
        kb.db,
        SecretBox.for_console_demo(sample_db_copy.parent),
        lambda slug: SafeguardingSettings(dsl=(DEMO_DSL,)),
        concerns.outbox,
    )
    assert again.view(ref, Person.parse(DEMO_DSL)).form.what == WHAT
    kb.close()


async def test_immediate_danger_gets_the_999_advice_at_once(sample_db_copy: Path) -> None:
    kb = KnowledgeBase(sample_db_copy)
    output = await chat(kb, console_concerns(kb.db, sample_db_copy.parent), answers("yes"))
    advice = wording.concern_call_999_now()
    after_answer = output.index(wording.concern_ask_danger()) + len(wording.concern_ask_danger())
    assert output[after_answer:].lstrip().startswith(advice)  # before the next question
    assert output.index(advice) < output.index(wording.concern_ask_actions())
    [ref] = set(REF_RE.findall(output))
    confirmation = output[output.rindex(advice) :]
    assert confirmation.index(advice) < confirmation.index(ref)  # 999 first, again
    assert kb.db.execute("SELECT urgent FROM concerns").fetchone() == (1,)
    kb.close()


@pytest.mark.parametrize(
    "lines",
    [
        ["/concern", "1", NAME, "/cancel"],
        ["/concern", "2", "/cancel"],
        answers(confirm="no"),
        ["/concern", "1", NAME, WHAT],  # the input ends part-way
    ],
    ids=["cancel", "cancel-at-role", "no-at-the-end", "input-ends"],
)
async def test_an_abandoned_report_stores_nothing(sample_db_copy: Path, lines: list[str]) -> None:
    kb = KnowledgeBase(sample_db_copy)
    concerns = console_concerns(kb.db, sample_db_copy.parent)
    output = await chat(kb, concerns, [*lines, "/help"])
    assert wording.concern_cancelled() in " ".join(output.split())
    assert count(kb, "concerns") == count(kb, "outbox") == count(kb, "concern_audit") == 0
    assert not REF_RE.search(output)
    if lines[-1] == "/cancel":
        assert wording.help_text() in output  # the chat carries on
    kb.close()


async def test_a_staff_allegation_asks_about_the_role_and_answers_are_checked(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    head, chair = "slack:U0HEAD001", "slack:U0CHAIR01"
    roles = SafeguardingSettings(dsl=(head,), headteacher=(head,), chair_of_governors=(chair,))
    concerns = console_concerns(kb.db, sample_db_copy.parent, lambda slug: roles)
    lines = ["/concern", "4", "staff", "2", "", "Mr H", WHAT, "", "maybe", "no", "", "yes"]
    output = await chat(kb, concerns, lines)
    assert wording.concern_ask_role() in output
    assert output.count(wording.concern_ask_again("1, 2 or 3")) == 1
    assert output.count(wording.concern_ask_again("yes or no")) == 1
    assert output.count(wording.concern_ask_name()) == 2  # asked again when left blank
    assert "demo" not in output  # real roles: no demo routing
    [ref] = set(REF_RE.findall(output))
    assert concerns.may_handle(ref, Person.parse(chair))
    assert not concerns.may_handle(ref, Person.parse(head))  # never the subject
    kb.close()


async def test_the_demo_never_sends_an_allegation_about_the_dsl_to_the_dsl(
    sample_db_copy: Path,
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    concerns = console_concerns(kb.db, sample_db_copy.parent)
    lines = ["/concern", "2", "3", "Mrs D", WHAT, "", "no", "", "yes"]
    output = await chat(kb, concerns, lines)
    assert wording.concern_no_recipients_allegation() in " ".join(output.split())
    assert count(kb, "concerns") == count(kb, "outbox") == 0
    kb.close()


async def test_without_the_service_concern_says_to_speak_to_the_dsl(sample_db_copy: Path) -> None:
    kb = KnowledgeBase(sample_db_copy)
    output = await chat(kb, None, ["/concern", "1"])
    assert wording.concern_console_unavailable() in " ".join(output.split())
    assert "concerns" not in kb.db.table_names()
    kb.close()


def test_guidebot_chat_takes_a_piped_report(sample_db_copy: Path) -> None:
    stdin = "\n".join(answers("yes")) + "\ncan I accept a friend request from an ex-pupil?\n"
    result = CliRunner().invoke(
        cli,
        ["--db", str(sample_db_copy), "chat", "--school", "st-annes"],
        input=stdin,
        env={KEY_ENV: None, "GUIDEBOT_DB": None},
        prog_name="guidebot",
    )
    assert result.exit_code == 0, result.output
    assert REF_RE.search(result.stdout)
    assert "friend" in result.stdout  # and then answers questions as before
    assert (sample_db_copy.parent / KEY_FILE).exists()
    kb = KnowledgeBase(sample_db_copy)
    assert count(kb, "concerns") == 1
    kb.close()


def test_guidebot_chat_still_answers_when_the_key_file_is_unsafe(sample_db_copy: Path) -> None:
    key_file = sample_db_copy.parent / KEY_FILE
    SecretBox.for_console_demo(sample_db_copy.parent)
    key_file.chmod(0o644)
    result = CliRunner().invoke(
        cli,
        ["--db", str(sample_db_copy), "chat", "--school", "st-annes"],
        input="/concern\ncan I accept a friend request from an ex-pupil?\n",
        env={KEY_ENV: None, "GUIDEBOT_DB": None},
        prog_name="guidebot",
    )
    assert result.exit_code == 0, result.output
    assert "chmod 600" in result.stderr
    assert wording.concern_console_unavailable() in " ".join(result.stdout.split())
    assert "friend" in result.stdout
