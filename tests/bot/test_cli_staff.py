"""`guidebot staff` and `guidebot broadcast`: importing and listing the staff
directory, and broadcast status, against a real database file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.broadcasts import Broadcasts, Draft
from bot.cli import cli
from bot.crypto import SecretBox
from bot.directory import Directory
from bot.outbox import Outbox
from knowledge.store import KnowledgeBase

SCHOOL = "st-annes"
STAFF_CSV = (
    "name,email,roles,groups,slack_id\n"
    "Helen Head,head@s.uk,head,slt,U0HEAD\n"
    "Amy Able,amy@s.uk,staff,teaching,U0AMY\n"
    "Ben Brook,ben@s.uk,staff,teaching;support,\n"
)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "guidebot.db"
    kb = KnowledgeBase(path)
    kb.ensure_school(SCHOOL, "St Anne's")
    kb.close()
    return path


def csv(tmp_path: Path, text: str = STAFF_CSV, name: str = "staff.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["staff"],
        ["staff", "import"],
        ["staff", "list"],
        ["broadcast"],
        ["broadcast", "status"],
        ["broadcast", "changes"],
    ],
)
def test_each_command_has_help_with_an_example(args: list[str]) -> None:
    for flag in ("-h", "--help"):
        result = run(*args, flag)
        assert result.exit_code == 0, result.output
        assert "Example: guidebot " + " ".join(args) in result.output


def test_staff_import_says_what_changed(db: Path, tmp_path: Path) -> None:
    first = run("--db", str(db), "staff", "import", "--school", SCHOOL, str(csv(tmp_path)))
    assert first.exit_code == 0, first.output
    assert first.output == ("Staff directory: 3 added, 0 updated, 0 unchanged, 0 marked as left.\n")
    smaller = csv(tmp_path, STAFF_CSV.replace("Amy Able", "Amy Adams").rsplit("Ben", 1)[0])
    second = run("--db", str(db), "staff", "import", "--school", SCHOOL, str(smaller))
    assert second.output == (
        "Staff directory: 0 added, 1 updated, 1 unchanged, 1 marked as left.\n"
    )


def test_a_bad_file_is_one_line_exit_2_and_changes_nothing(db: Path, tmp_path: Path) -> None:
    run("--db", str(db), "staff", "import", "--school", SCHOOL, str(csv(tmp_path)))
    bad = csv(tmp_path, STAFF_CSV + "Cat Cole,cat@s.uk,wizard,\n", "bad.csv")
    result = run("--db", str(db), "staff", "import", "--school", SCHOOL, str(bad))
    assert result.exit_code == 2
    assert result.stderr.startswith("guidebot: bad.csv line 5: 'wizard' is not a role")
    assert result.stderr.count("\n") == 1
    listed = run("--db", str(db), "staff", "list", "--school", SCHOOL)
    assert "Cat Cole" not in listed.output and listed.output.endswith("3 people\n")


def test_an_unknown_school_is_refused(db: Path, tmp_path: Path) -> None:
    result = run("--db", str(db), "staff", "import", "--school", "st-nowhere", str(csv(tmp_path)))
    assert result.exit_code == 2
    assert "no school called 'st-nowhere'" in result.stderr


def test_staff_list_shows_roles_groups_and_links(db: Path, tmp_path: Path) -> None:
    run("--db", str(db), "staff", "import", "--school", SCHOOL, str(csv(tmp_path)))
    result = run("--db", str(db), "staff", "list", "--school", SCHOOL)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Amy Able <amy@s.uk>  roles: staff  groups: teaching  Slack: linked  Teams: not linked",
        "Ben Brook <ben@s.uk>  roles: staff  groups: support, teaching  Slack: not linked  "
        "Teams: not linked",
        "Helen Head <head@s.uk>  roles: head, staff  groups: slt  Slack: linked  Teams: not linked",
        "3 people",
    ]
    support = run("--db", str(db), "staff", "list", "--school", SCHOOL, "--group", "support")
    assert support.output.splitlines()[-1] == "1 person" and "Ben Brook" in support.output
    heads = run("--db", str(db), "staff", "list", "--school", SCHOOL, "--role", "head")
    assert [line.split(" <")[0] for line in heads.output.splitlines()[:-1]] == ["Helen Head"]
    run(
        "--db",
        str(db),
        "staff",
        "import",
        "--school",
        SCHOOL,
        str(csv(tmp_path, STAFF_CSV.split("Ben")[0])),
    )
    left = run("--db", str(db), "staff", "list", "--school", SCHOOL, "--left")
    assert "Ben Brook" in left.output and "(left)" in left.output


def test_broadcast_status_lists_counts_and_who_is_outstanding(db: Path, tmp_path: Path) -> None:
    empty = run("--db", str(db), "broadcast", "status", "--school", SCHOOL)
    assert empty.exit_code == 0 and empty.output == "no broadcasts at st-annes yet\n"
    run("--db", str(db), "staff", "import", "--school", SCHOOL, str(csv(tmp_path)))
    kb = KnowledgeBase(db)
    try:
        broadcasts = Broadcasts(kb.db, Outbox(kb.db, SecretBox(bytes(32))), Directory(kb.db))
        made = broadcasts.create(SCHOOL, "slack", "U0HEAD", Draft("Phones", "Lockers, please."))
        broadcasts.acknowledge(made.id, "slack", "U0AMY")
        later = datetime.now(UTC) + timedelta(days=3)
        broadcasts.create(SCHOOL, "slack", "U0HEAD", Draft("Later", "Soon.", send_at=later))
    finally:
        kb.close()
    listing = run("--db", str(db), "broadcast", "status", "--school", SCHOOL)
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0].startswith(f"#{made.id + 1} Later  [scheduled ")
    assert lines[1:3] == [  # who it would reach if it went now
        "  sent to 1, delivered 0, acknowledged 0, reminders 0",
        "  unreachable (1): Ben Brook",
    ]
    assert lines[3].startswith(f"#{made.id} Phones  [sent ") and lines[3].endswith("Helen Head]")
    assert lines[4:] == [
        "  sent to 1, delivered 0, acknowledged 1, reminders 0",
        "  unreachable (1): Ben Brook",
    ]
    one = run("--db", str(db), "broadcast", "status", "--school", SCHOOL, "--id", str(made.id))
    assert one.output.splitlines() == lines[3:]
    missing = run("--db", str(db), "broadcast", "status", "--school", SCHOOL, "--id", "99")
    assert missing.exit_code == 2 and "no broadcast #99" in missing.stderr


def test_broadcast_changes_with_nothing_changed(db: Path) -> None:
    result = run("--db", str(db), "broadcast", "changes", "--school", SCHOOL)
    assert result.exit_code == 0
    assert result.output == "no changed policies at st-annes are waiting to be announced\n"
    one = run("--db", str(db), "broadcast", "changes", "--school", SCHOOL, "--policy", "nope")
    assert one.exit_code == 2 and "nothing to compare" in one.stderr
