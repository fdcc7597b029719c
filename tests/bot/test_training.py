"""Training: the catalogue and its settings, importing completions (all or
nothing), who is due, and reminders once each in school hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.config import ConfigError, parse
from bot.training import DEFAULT_COURSES, TrainingError, add_months, parse_training
from tests.bot.test_reminders import SCHOOL, Rig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    made.set_local(2027, 3, 1, 10, 0)  # a Monday
    yield made
    made.kb.close()


def completions(rig: Rig, *rows: str) -> None:
    text = "email,course,completed_on\n" + "\n".join(rows) + "\n"
    rig.training.import_rows(SCHOOL, rig.training.parse_csv(SCHOOL, text))


def count_rows(rig: Rig) -> int:
    return int(rig.db.execute("SELECT count(*) FROM training_completions").fetchone()[0])


# --- the catalogue -----------------------------------------------------------------------------


def test_the_default_catalogue() -> None:
    by_id = {c.id: c for c in DEFAULT_COURSES}
    assert by_id["kcsie_part1"].renew_months == 12
    assert by_id["safeguarding_refresher"].renew_months == 12
    assert by_id["safeguarding_full"].title == "Safeguarding and child protection training"
    assert by_id["dsl_training"].renew_months == 24
    assert by_id["dsl_training"].roles == {"dsl", "deputy_dsl"}
    assert all(not c.roles for c in DEFAULT_COURSES if c.id != "dsl_training")


def test_settings_change_add_and_drop_courses() -> None:
    settings = parse(
        {
            "training": {
                "remind_days_before": 45,
                "courses": {
                    "first_aid": {"title": "Paediatric first aid", "renew_months": 36},
                    "prevent": {"enabled": False},
                    "kcsie_part1": {"renew_months": 6},
                    "fire": {"title": "Fire marshal", "renew_months": 12, "roles": ["leader"]},
                },
            }
        },
        {},
    ).schedule.training
    ids = [c.id for c in settings.courses]
    assert "prevent" not in ids and {"first_aid", "fire"} <= set(ids)
    assert settings.remind_days_before == 45
    kcsie = settings.course("kcsie_part1")
    assert kcsie is not None and kcsie.renew_months == 6
    assert kcsie.title.startswith("Keeping Children Safe")  # kept from the default
    fire = settings.course("FIRE MARSHAL")  # by title, any case
    assert fire is not None and fire.roles == {"leader"}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"remind_days_before": 0}, "training.remind_days_before"),
        ({"courses": {"x": {"renew_months": 12}}}, "training.courses.x.title"),
        ({"courses": {"x": {"title": "X", "renew_months": "a year"}}}, "training.courses.x"),
        ({"courses": {"x": {"title": "X", "renew_months": 1, "roles": ["tea"]}}}, "roles"),
        ({"courses": {"Bad Id": {"title": "X", "renew_months": 1}}}, "training.courses.Bad Id"),
        ({"reminders": 3}, "training.reminders"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_training(raw)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2026, 11, 10), 36, date(2029, 11, 10)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


# --- importing -------------------------------------------------------------------------------


def test_import_reads_ids_titles_and_uk_dates_and_skips_repeats(rig: Rig) -> None:
    text = (
        "\ufeffEmail,Course,Completed_on\n"
        "TOM@annes.sch.uk,kcsie_part1,2026-09-01\n"
        "tom@annes.sch.uk,Prevent duty training,01/09/2025\n"
        "\n"
    )
    rows = rig.training.parse_csv(SCHOOL, text)
    assert [(r.email, r.course.id, r.completed_on) for r in rows] == [
        ("tom@annes.sch.uk", "kcsie_part1", date(2026, 9, 1)),
        ("tom@annes.sch.uk", "prevent", date(2025, 9, 1)),
    ]
    first = rig.training.import_rows(SCHOOL, rows)
    again = rig.training.import_rows(SCHOOL, rows)
    assert (first.added, first.already, again.added, again.already) == (2, 0, 0, 2)
    assert count_rows(rig) == 2


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("stranger@annes.sch.uk,kcsie_part1,2026-09-01", "line 3: stranger@annes.sch.uk is not in"),
        ("tom@annes.sch.uk,basket weaving,2026-09-01", "line 3: basket weaving is not a course"),
        ("tom@annes.sch.uk,prevent,31/02/2026", "line 3: completed_on '31/02/2026' is not a date"),
        ("tom@annes.sch.uk,prevent,2027-03-02", "line 3: completed_on 2027-03-02 is in the future"),
    ],
)
def test_a_bad_row_changes_nothing_and_names_its_line(
    rig: Rig, tmp_path: Path, row: str, problem: str
) -> None:
    path = tmp_path / "completions.csv"
    good = "head@annes.sch.uk,prevent,2026-01-01"
    path.write_text(f"email,course,completed_on\n{good}\n{row}\n", encoding="utf-8")
    with pytest.raises(TrainingError, match=problem):
        rig.training.import_csv(SCHOOL, path)
    assert count_rows(rig) == 0


def test_a_file_without_the_columns_or_not_utf8_is_refused(rig: Rig, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("name,course\nTom,prevent\n", encoding="utf-8")
    with pytest.raises(TrainingError, match="no email or completed_on column"):
        rig.training.import_csv(SCHOOL, path)
    path.write_bytes("email,course,completed_on\nté@x.uk,prevent,2026-01-01\n".encode("cp1252"))
    with pytest.raises(TrainingError, match="not UTF-8"):
        rig.training.import_csv(SCHOOL, path)


# --- who is due --------------------------------------------------------------------------------


def test_status_current_due_expired_and_missing(rig: Rig) -> None:
    completions(
        rig,
        "tom@annes.sch.uk,kcsie_part1,2026-09-01",  # runs out 2027-09-01: current
        "tom@annes.sch.uk,safeguarding_refresher,2026-03-20",  # 2027-03-20: due soon
        "tom@annes.sch.uk,prevent,2024-02-01",  # 2027-02-01: expired
        "tom@annes.sch.uk,safeguarding_full,2023-01-01",  # older record, superseded
        "tom@annes.sch.uk,safeguarding_full,2025-01-01",
    )
    states = {
        (s.person.email, s.course.id): (s.state, s.expires_on)
        for s in rig.training.status(SCHOOL, date(2027, 3, 1))
    }
    assert states[("tom@annes.sch.uk", "kcsie_part1")] == ("current", date(2027, 9, 1))
    assert states[("tom@annes.sch.uk", "safeguarding_refresher")] == ("due", date(2027, 3, 20))
    assert states[("tom@annes.sch.uk", "prevent")] == ("expired", date(2027, 2, 1))
    assert states[("tom@annes.sch.uk", "safeguarding_full")] == ("current", date(2028, 1, 1))
    # Only the DSL needs DSL training; nobody has a record of it.
    assert states[("dina@annes.sch.uk", "dsl_training")] == ("missing", None)
    assert ("tom@annes.sch.uk", "dsl_training") not in states
    assert states[("lee@annes.sch.uk", "prevent")] == ("missing", None)


def test_reminders_once_each_in_hours_and_none_without_a_record(rig: Rig) -> None:
    tom = rig.person_id("tom@annes.sch.uk")
    completions(
        rig,
        "tom@annes.sch.uk,safeguarding_refresher,2026-03-20",
        "tom@annes.sch.uk,prevent,2024-02-01",
    )
    rig.set_local(2027, 3, 1, 7, 30)  # before school
    assert rig.training.sweep() == 0
    rig.set_local(2027, 3, 1, 8, 0)
    assert rig.training.sweep() == 2
    assert rig.training.sweep() == 0
    keys = sorted(k for k, *_ in rig.queued("training:"))
    assert keys == [
        f"training:{tom}:prevent:2024-02-01:expired",
        f"training:{tom}:safeguarding_refresher:2026-03-20:due",
    ]
    assert {(p, r) for _, _, p, r in rig.queued("training:")} == {("slack", "U0TOM")}
    message = rig.message(keys[1])
    assert "Safeguarding update (annual refresher)" in message.text
    assert "20 March 2027" in message.text
    # Expired later: one more. Then Tom completes it: a fresh series for the new record.
    rig.set_local(2027, 3, 22, 9, 0)
    assert rig.training.sweep() == 1
    completions(rig, "tom@annes.sch.uk,safeguarding_refresher,2027-03-22")
    assert rig.training.sweep() == 0


# --- the command line ----------------------------------------------------------------------------


def test_training_import_and_list_from_the_command_line(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no guidebot.toml here: the default catalogue
    monkeypatch.delenv("GUIDEBOT_CONFIG", raising=False)
    db = str(tmp_path / "guidebot.db")
    path = tmp_path / "done.csv"
    path.write_text(
        "email,course,completed_on\ntom@annes.sch.uk,prevent,2020-01-01\n", encoding="utf-8"
    )
    runner = CliRunner()
    imported = runner.invoke(cli, ["--db", db, "training", "import", "--school", SCHOOL, str(path)])
    assert imported.exit_code == 0, imported.output
    assert "1 completions added, 0 already recorded" in imported.output
    listed = runner.invoke(cli, ["--db", db, "training", "list", "--school", SCHOOL, "--due"])
    assert listed.exit_code == 0, listed.output
    assert "Tom Teacher <tom@annes.sch.uk>  prevent  completed 2020-01-01" in listed.output
    assert "OVERDUE" in listed.output and "NO RECORD" in listed.output
    path.write_text("email,course,completed_on\nnobody@x.uk,prevent,2020-01-01\n", "utf-8")
    refused = runner.invoke(cli, ["--db", db, "training", "import", "--school", SCHOOL, str(path)])
    assert refused.exit_code == 2
    assert "done.csv line 2: nobody@x.uk is not in st-annes's staff directory" in refused.output
