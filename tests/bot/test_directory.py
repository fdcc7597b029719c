"""The staff directory: reading HR's CSV (as Excel saves it, and as it goes
wrong), importing it all or nothing, leavers, and looking people up.

Real files in a temporary folder and a real SQLite database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from bot.directory import (
    MAX_IMPORT_BYTES,
    Directory,
    DirectoryError,
    ImportSummary,
    parse_staff_csv,
    read_staff_file,
)

SCHOOL = "st-annes"
HEADER = "name,email,roles,groups\n"
GUID = "0b5c4a1e-2f3d-4c5b-9a8e-7d6c5b4a3f21"


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Directory]:
    db = sqlite_utils.Database(tmp_path / "guidebot.db")
    yield Directory(db)
    db.close()


def write(tmp_path: Path, content: str | bytes, name: str = "staff.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def refused(path: Path) -> str:
    with pytest.raises(DirectoryError) as error:
        read_staff_file(path)
    message = str(error.value)
    assert "\n" not in message
    return message


# --- reading the file ----------------------------------------------------------------------------


def test_an_excel_csv_utf8_file_with_a_bom_crlf_and_quoted_cells_is_read(tmp_path: Path) -> None:
    excel = (
        "\ufeffName,Email,Roles,Groups,Slack_ID\r\n"
        'Ann Smith,Ann.Smith@School.org.uk,"staff, leader",teaching,U0ANN\r\n'
        '"Jones, Bob",bob@school.org.uk,,"Support; Office",\r\n'
        ",,,,\r\n"  # Excel's trailing empty row
        "Siân Ó Ceallaigh,sian@school.org.uk,hr|head,,\r\n"
    )
    rows = read_staff_file(write(tmp_path, excel.encode("utf-8")))
    assert [(r.line, r.name, r.email, r.roles, r.groups, r.slack_user_id) for r in rows] == [
        (2, "Ann Smith", "ann.smith@school.org.uk", ("staff", "leader"), ("teaching",), "U0ANN"),
        (3, "Jones, Bob", "bob@school.org.uk", ("staff",), ("support", "office"), None),
        (5, "Siân Ó Ceallaigh", "sian@school.org.uk", ("staff", "hr", "head"), (), None),
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "staff.csv is empty"),
        ("\ufeff\r\n", "staff.csv is empty"),
        (HEADER, "staff.csv has headings but nobody in it"),
        ("full name,mail\nAnn,ann@s.uk\n", "staff.csv has no name or email column"),
        (HEADER + "Ann,ann@s.uk,staff,\nBob,not-an-email,staff,\n", "staff.csv line 3:"),
        (HEADER + "Ann,ann@s.uk,teacher,\n", "staff.csv line 2: 'teacher' is not a role"),
        (HEADER + "Ann,ann@s.uk,,\nAnnie,ANN@s.uk,,\n", "line 3: ann@s.uk is already on line 2"),
        (HEADER + ",ann@s.uk,,\n", "staff.csv line 2: the name is empty"),
        (HEADER + "Ann,ann@s.uk,,year 5 & 6\n", "line 2: the group 'year 5 & 6' should be"),
        ("name,email,slack_id\nAnn,ann@s.uk,ann\n", "line 2: slack_id 'ann' is not a Slack"),
        ("name,email,teams_id\nAnn,ann@s.uk,123\n", "line 2: teams_id '123' is not a Microsoft"),
        ('name,email\n"Ann,ann@s.uk\n', "staff.csv line"),
    ],
)
def test_a_bad_file_is_refused_with_one_line_naming_the_problem(
    tmp_path: Path, content: str, expected: str
) -> None:
    assert expected in refused(write(tmp_path, content))


def test_a_bad_email_names_the_line_and_the_email(tmp_path: Path) -> None:
    message = refused(write(tmp_path, HEADER + "Ann,ann@s.uk,,\nBob,bob at school,,\n"))
    assert message == "staff.csv line 3: bob at school is not an email address"


def test_a_file_that_is_not_utf8_says_how_to_save_it(tmp_path: Path) -> None:
    latin1 = (HEADER + "Siân Jones,sian@s.uk,staff,\n").encode("cp1252")
    assert refused(write(tmp_path, latin1)) == (
        "staff.csv is not UTF-8 text: in Excel, save it as 'CSV UTF-8'"
    )


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "x" * MAX_IMPORT_BYTES)
    assert "larger than 5 MB" in refused(path)


def test_a_missing_file_or_a_folder_is_refused(tmp_path: Path) -> None:
    assert "no such file" in refused(tmp_path / "nope.csv")
    assert "is a folder" in refused(tmp_path)


def test_teams_ids_are_kept_in_lower_case(tmp_path: Path) -> None:
    [row] = parse_staff_csv(f"name,email,teams_id\nAnn,ann@s.uk,{GUID.upper()}\n")
    assert row.teams_user_id == GUID


# --- importing -----------------------------------------------------------------------------------


def test_an_import_adds_updates_and_marks_leavers(directory: Directory, tmp_path: Path) -> None:
    first = write(
        tmp_path,
        HEADER + "Ann Smith,ann@s.uk,staff;leader,teaching\n"
        "Bob Jones,bob@s.uk,staff,support\nCat Cole,cat@s.uk,dsl,\n",
    )
    assert directory.import_csv(SCHOOL, first) == ImportSummary(3, 0, 0, 0)
    directory.link(SCHOOL, "slack", "U0BOB", "bob@s.uk")
    second = write(
        tmp_path,
        HEADER + "Ann Smith,ann@s.uk,staff;leader,teaching\n"
        "Bob Jones,bob@s.uk,staff,support;office\nDan Dale,dan@s.uk,,\n",
        "second.csv",
    )
    assert directory.import_csv(SCHOOL, second) == ImportSummary(1, 1, 1, 1)
    assert [p.name for p in directory.people(SCHOOL)] == ["Ann Smith", "Bob Jones", "Dan Dale"]
    cat = directory.by_email(SCHOOL, "cat@s.uk")
    assert cat is not None and not cat.active  # kept, so old broadcasts still name her
    bob = directory.by_email(SCHOOL, "bob@s.uk")
    assert bob is not None and bob.slack_user_id == "U0BOB"  # the link survives
    assert bob.groups == {"support", "office"}
    assert [p.name for p in directory.people(SCHOOL, include_left=True)] == [
        "Ann Smith",
        "Bob Jones",
        "Cat Cole",
        "Dan Dale",
    ]
    # Coming back un-leaves them.
    third = write(tmp_path, HEADER + "Cat Cole,cat@s.uk,dsl,\n", "third.csv")
    assert directory.import_csv(SCHOOL, third) == ImportSummary(0, 1, 0, 3)
    assert [p.name for p in directory.people(SCHOOL)] == ["Cat Cole"]


def test_a_bad_file_changes_nothing(directory: Directory, tmp_path: Path) -> None:
    good = write(tmp_path, HEADER + "Ann,ann@s.uk,leader,\n")
    directory.import_csv(SCHOOL, good)
    before = directory.people(SCHOOL, include_left=True)
    bad = write(tmp_path, HEADER + "Bob,bob@s.uk,,\nCat,cat@s.uk,wizard,\n", "bad.csv")
    with pytest.raises(DirectoryError, match=r"bad\.csv line 3"):
        directory.import_csv(SCHOOL, bad)
    assert directory.people(SCHOOL, include_left=True) == before


def test_schools_are_kept_apart(directory: Directory, tmp_path: Path) -> None:
    directory.import_csv(SCHOOL, write(tmp_path, HEADER + "Ann,ann@s.uk,,\n"))
    directory.import_csv("crossflatts", write(tmp_path, HEADER + "Bob,bob@s.uk,,\n", "b.csv"))
    assert [p.name for p in directory.people(SCHOOL)] == ["Ann"]
    assert [p.name for p in directory.people("crossflatts")] == ["Bob"]


def test_people_by_group_role_and_platform(directory: Directory, tmp_path: Path) -> None:
    directory.import_csv(
        SCHOOL,
        write(
            tmp_path,
            "name,email,roles,groups,slack_id,teams_id\n"
            f"Ann,ann@s.uk,leader,teaching,U0ANN,{GUID}\n"
            "Bob,bob@s.uk,,support,,\n",
        ),
    )
    assert [p.name for p in directory.people(SCHOOL, groups=["Teaching"])] == ["Ann"]
    assert [p.name for p in directory.people(SCHOOL, roles=["leader"])] == ["Ann"]
    assert [p.name for p in directory.people(SCHOOL, roles=["staff"])] == ["Ann", "Bob"]
    ann = directory.by_platform(SCHOOL, "teams", GUID.upper())
    assert ann is not None and ann.addresses() == [("slack", "U0ANN"), ("teams", GUID)]
    assert ann.can_broadcast
    assert directory.by_platform(SCHOOL, "console", "ann") is None
    assert [p.name for p in directory.unresolved(SCHOOL, "slack")] == ["Bob"]
    assert directory.groups(SCHOOL) == ["support", "teaching"]
