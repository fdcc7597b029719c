"""Metadata from the five bundled policies and from documents in other shapes."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from knowledge.metadata import (
    PolicyMetadata,
    VersionEntry,
    extract_metadata,
    parse_loose_date,
)

SAMPLES = Path(__file__).parents[2] / "knowledge" / "samples"


def sample(name: str) -> PolicyMetadata:
    lines = (SAMPLES / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return extract_metadata(lines, fallback_title=name)


def doc(text: str, fallback_title: str = "Fallback Title") -> PolicyMetadata:
    return extract_metadata(text.splitlines(), fallback_title)


# ------------------------------------------------------------- parse_loose_date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("03 2019", date(2019, 3, 1)),
        ("02 2023", date(2023, 2, 1)),
        ("02.08.22", date(2022, 8, 2)),
        ("29.08.24", date(2024, 8, 29)),
        ("06.05.18", date(2018, 5, 6)),
        ("September 2020", date(2020, 9, 1)),
        ("Sept 2020", date(2020, 9, 1)),
        ("Sept. 2020", date(2020, 9, 1)),
        ("Sep-23", date(2023, 9, 1)),
        ("February 2024", date(2024, 2, 1)),
        ("12/03/2021", date(2021, 3, 12)),
        ("3/9/24", date(2024, 9, 3)),
        ("2021-03-12", date(2021, 3, 12)),
        ("1st September 2023", date(2023, 9, 1)),
        ("22nd of March, 2022", date(2022, 3, 22)),
        ("September 1st, 2023", date(2023, 9, 1)),
        ("December 2012", date(2012, 12, 1)),
        ("Jun 2018", date(2018, 6, 1)),
        ("03/2019", date(2019, 3, 1)),
        ("Review Date: September 2020", date(2020, 9, 1)),
        ("updated (January 2016); reviewed (September 2018)", date(2016, 1, 1)),
    ],
)
def test_parse_loose_date_reads_the_shapes_schools_write(text: str, expected: date) -> None:
    assert parse_loose_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Page 3 of 10",
        "31.02.23",
        "30/02/2024",
        "13 2019",
        "Data Protection Act 2018",
        "Tel: 0151 233 3901",
        "para 4.1 (15)",
        "Version 4.1.2",
        "90% attendance",
        "no date here",
    ],
)
def test_parse_loose_date_says_none_rather_than_guessing(text: str) -> None:
    assert parse_loose_date(text) is None


def test_an_impossible_date_is_skipped_for_the_next_real_one() -> None:
    assert parse_loose_date("31.02.23 then 01.03.23") == date(2023, 3, 1)


# -------------------------------------------------------------- bundled samples


def test_crossflatts_has_a_title_and_nothing_else() -> None:
    assert sample("crossflatts") == PolicyMetadata(
        title="Crossflatts Social Media & Learning Platforms Policy",
        versions=(),
        adopted=None,
        last_reviewed=None,
        next_review=None,
        contact=None,
        owner=None,
    )


def test_cwm_felin_title_comes_from_the_body_and_history_from_its_table() -> None:
    meta = sample("cwm-felin")
    assert meta.title == "Social Media Policy"
    assert [v.version for v in meta.versions] == ["1", "2", "3", "4", "5"]
    assert meta.versions[0] == VersionEntry("1", date(2018, 5, 6), "Initial Issue")
    assert meta.versions[1] == VersionEntry("2", None, "Spelling corrections.")
    assert meta.versions[3] == VersionEntry("4", date(2022, 8, 2), "Formatting amendments")
    assert meta.versions[4].date == date(2024, 8, 29)
    assert meta.versions[4].description.startswith("Included definition of what social media")
    assert meta.adopted == date(2018, 5, 6)
    assert meta.last_reviewed == date(2024, 8, 29)
    assert meta.next_review is None
    assert meta.contact == "the headteacher (admin@cwmfelinps.bridgend.cymru)"
    assert meta.owner == "The governing body"


def test_kaleidoscope_reads_original_revisions_review_and_free_text_version() -> None:
    assert sample("kaleidoscope") == PolicyMetadata(
        title="Social Media and Networking Policy",
        versions=(VersionEntry("7", None, ""),),
        adopted=date(2012, 12, 1),
        last_reviewed=date(2018, 9, 1),
        next_review=date(2020, 9, 1),
        contact="your manager or the headteacher",
        owner=None,
    )


def test_st_annes_reads_the_named_contact_and_the_closing_date() -> None:
    assert sample("st-annes") == PolicyMetadata(
        title="Social Media Policy",
        versions=(),
        adopted=None,
        last_reviewed=date(2024, 2, 1),
        next_review=None,
        contact="Natalie Slight, Acting Headteacher",
        owner=None,
    )


def test_st_johns_reads_the_version_table_and_ignores_the_contents_table() -> None:
    assert sample("st-johns") == PolicyMetadata(
        title="Social Networking and Media Usage Policy - (L.A)",
        versions=(
            VersionEntry("Version 1", date(2019, 3, 1), ""),
            VersionEntry("Version 2", date(2023, 2, 1), "Full Policy revised and agreed at JCC"),
        ),
        adopted=date(2019, 3, 1),
        last_reviewed=date(2023, 2, 1),
        next_review=None,
        contact="your manager",
        owner=None,
    )


@pytest.mark.parametrize(
    "name", ["crossflatts", "cwm-felin", "kaleidoscope", "st-annes", "st-johns"]
)
def test_metadata_is_frozen(name: str) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample(name).title = "changed"  # type: ignore[misc]


# ----------------------------------------------------------- synthetic shapes

WORD_EXPORT = """\
Oakfield Primary School
Safeguarding and Child Protection Policy
Policy adopted: 1st September 2023
Next review: September 2025
Approved by: Full Governing Body
Policy owner: Mrs J Patel, Headteacher

1. Introduction
If you have any questions about this policy, please speak to the Designated Safeguarding Lead.
"""


def test_word_export_labels_without_blank_lines() -> None:
    assert doc(WORD_EXPORT) == PolicyMetadata(
        title="Safeguarding and Child Protection Policy",
        versions=(),
        adopted=date(2023, 9, 1),
        last_reviewed=None,
        next_review=date(2025, 9, 1),
        contact="the designated safeguarding lead",
        owner="Mrs J Patel, Headteacher",
    )


def test_a_document_with_no_metadata_gets_the_fallback_and_nones() -> None:
    text = "Some guidance for staff\n\nStaff should be kind to each other at all times.\n"
    assert doc(text, "kindness") == PolicyMetadata(
        title="kindness",
        versions=(),
        adopted=None,
        last_reviewed=None,
        next_review=None,
        contact=None,
        owner=None,
    )


def test_empty_document() -> None:
    meta = doc("", "  Empty   Policy ")
    assert meta.title == "Empty Policy"
    assert meta.versions == ()
    assert meta.contact is None


@pytest.mark.parametrize(
    ("heading", "title"),
    [
        ("ANTI-BULLYING POLICY FOR PUPILS AND STAFF", "Anti-Bullying Policy for Pupils and Staff"),
        (
            "ICT AND E-SAFETY POLICY OF THE TRUST (DFE)",
            "ICT and E-Safety Policy of the Trust (DfE)",
        ),
        ("  **SEND POLICY**  ", "SEND Policy"),
        ("ST JOHN'S RSE POLICY - (L.A)", "St John's RSE Policy - (L.A)"),
        ('"Relationships and Behaviour Policy"', "Relationships and Behaviour Policy"),
        ("# Online   Safety Policy", "Online Safety Policy"),
        ("Policy title: Lettings", "Lettings"),
    ],
)
def test_title_is_cleaned_and_all_caps_become_title_case(heading: str, title: str) -> None:
    assert doc(f"{heading}\n\nSome text.").title == title


def test_title_skips_sentences_rows_labels_and_this_policy_headings() -> None:
    text = """\
This policy applies to all staff.
Purpose of This Policy
Who is Covered by This Policy?
Policy adopted: 1st September 2023
- Behaviour Policy
Version\tDate\tPolicy
Drug and Alcohol Policy
"""
    assert doc(text).title == "Drug and Alcohol Policy"


def test_title_from_the_body_needs_a_subject_the_document_is_about() -> None:
    about_attendance = """\
Introduction

Staff must follow the Attendance Policy at all times. Attendance is recorded twice daily.
Poor attendance is reported to the local authority. Where attendance falls below
90%, parents are contacted. See also the Behaviour Policy.
"""
    about_uniform = "Introduction\n\nPupils must wear uniform. See also the Behaviour Policy.\n"
    assert doc(about_attendance).title == "Attendance Policy"
    assert doc(about_uniform, "Uniform").title == "Uniform"


def test_a_list_of_other_policies_late_in_the_body_is_not_read_as_one_name() -> None:
    filler = "Complaints are heard by the governors and must be made in writing.\n" * 25
    text = f"Introduction\n\n{filler}\nRelated documents\nBehaviour Policy\nComplaints Policy\n"
    assert doc(text).title == "Complaints Policy"


AMBIGUOUS_DATES = """\
Attendance Policy

This policy was reviewed in September 2023.
Date of last review: 01/09/2023
Last Review Date: 01.09.23
The governors met on 12/03/2024 to discuss attendance.
Risk assessments will be reviewed by March 2025.
Trips are approved by the head by 1 June 2024.

Version History
1.0\t01/09/2021\tFirst issue
2.0\t01/09/2023\tUpdated for new guidance
"""


def test_past_and_unrelated_dates_are_never_a_next_review() -> None:
    meta = doc(AMBIGUOUS_DATES)
    assert meta.next_review is None
    assert meta.last_reviewed == date(2023, 9, 1)
    assert meta.adopted == date(2021, 9, 1)
    assert meta.versions == (
        VersionEntry("1.0", date(2021, 9, 1), "First issue"),
        VersionEntry("2.0", date(2023, 9, 1), "Updated for new guidance"),
    )


def test_a_label_without_a_date_does_not_borrow_the_next_labels_date() -> None:
    meta = doc("Uniform Policy\nNext review: TBC Adopted: 1 Sept 2023\n")
    assert meta.next_review is None
    assert meta.adopted == date(2023, 9, 1)


def test_reviewed_and_to_be_reviewed_in_one_sentence() -> None:
    meta = doc(
        "Uniform Policy\n\nThis policy was reviewed in September 2023 and will be\n"
        "reviewed again in September 2025.\n"
    )
    assert meta.last_reviewed == date(2023, 9, 1)
    assert meta.next_review == date(2025, 9, 1)


def test_two_digit_years_are_this_century() -> None:
    meta = doc("Uniform Policy\nAdopted: 3/9/24\nReview date: 01.09.25\n")
    assert meta.adopted == date(2024, 9, 3)
    assert meta.next_review == date(2025, 9, 1)


def test_invalid_dates_give_none_without_crashing() -> None:
    meta = doc("Uniform Policy\nReview Date: 31.02.23\nAdopted: 30.02.2024\nDate: 31/04/2024\n")
    assert (meta.adopted, meta.last_reviewed, meta.next_review) == (None, None, None)


def test_page_numbers_are_not_dates() -> None:
    meta = doc("Uniform Policy\n\nPupils wear uniform.\n\nPage 1 of 10\nPage 3 of 10\n")
    assert (meta.adopted, meta.last_reviewed, meta.next_review) == (None, None, None)


def test_prose_adoption_owner_and_review() -> None:
    meta = doc(
        "Behaviour Policy\n\nThis policy was adopted by the governing body on 12 March 2021\n"
        "and is to be reviewed by March 2024.\n"
    )
    assert meta.adopted == date(2021, 3, 12)
    assert meta.next_review == date(2024, 3, 1)
    assert meta.owner == "The governing body"
    assert meta.last_reviewed is None


def test_markdown_version_table_newest_first() -> None:
    text = """\
# Online Safety Policy

| Version | Date | Author | Changes |
|---|---|---|---|
| 3.0 | 2024-01-15 | J Smith | Updated for KCSIE 2023 |
| 2.0 | 2022-01-10 | J Smith | New filtering section |
| 1.0 | 2020-09-01 | A Jones | First issue |

Questions about this policy should be addressed to Mrs A Jones, School Business
Manager, at office@oak.sch.uk.
"""
    meta = doc(text)
    assert [v.version for v in meta.versions] == ["3.0", "2.0", "1.0"]
    assert meta.versions[0] == VersionEntry("3.0", date(2024, 1, 15), "Updated for KCSIE 2023")
    assert meta.adopted == date(2020, 9, 1)
    assert meta.last_reviewed == date(2024, 1, 15)
    assert meta.next_review is None
    assert meta.contact == "Mrs A Jones, School Business Manager (office@oak.sch.uk)"


def test_key_value_table_rows() -> None:
    text = (
        "Uniform Policy\n"
        "Document owner\tHeadteacher\n"
        "Date adopted\t01/09/2023\n"
        "Review date\t01/09/2024\n"
    )
    meta = doc(text)
    assert (meta.owner, meta.adopted, meta.next_review) == (
        "Headteacher",
        date(2023, 9, 1),
        date(2024, 9, 1),
    )


def test_review_date_wrapped_onto_the_next_line() -> None:
    assert doc("Uniform Policy\nReview date:\nSeptember 2026\n").next_review == date(2026, 9, 1)


def test_free_text_version_with_date_and_owner_label() -> None:
    meta = doc("Drugs Education Policy\nVersion: 2.1 (March 2022)\nOwner: Headteacher\n")
    assert meta.versions == (VersionEntry("2.1", date(2022, 3, 1), ""),)
    assert meta.owner == "Headteacher"


def test_version_table_under_a_heading_without_header_row() -> None:
    text = "Uniform Policy\n\nDocument History\nv1\t06/2020\tJ Smith\nv2\t07/2022\tTidied\n"
    meta = doc(text)
    assert meta.versions == (
        VersionEntry("v1", date(2020, 6, 1), "J Smith"),
        VersionEntry("v2", date(2022, 7, 1), "Tidied"),
    )


@pytest.mark.parametrize(
    ("body", "contact"),
    [
        (
            "Policy contact: Mrs K Brown (School Business Manager)",
            "Mrs K Brown (School Business Manager)",
        ),
        ("If in doubt, speak to your line manager.", "your line manager"),
        (
            "The headteacher is responsible for answering questions about this policy.",
            "the headteacher",
        ),
        (
            "Any queries about this policy should be made to:\n\nName: Sam Lee\nRole: DSL\n"
            "Email: dsl@oak.sch.uk",
            "Sam Lee, DSL (dsl@oak.sch.uk)",
        ),
        ("Any comments, queries or complaints must be responded to within 24 hours.", None),
        ("Check with a senior leader before publishing content.", None),
        ("Report concerns to the DSL.", None),
    ],
)
def test_contact_shapes(body: str, contact: str | None) -> None:
    assert doc(f"Lettings Policy\n\n{body}\n").contact == contact


def test_explicit_questions_beat_weaker_hints() -> None:
    text = """\
Lettings Policy

Managers are responsible for:

- addressing any questions employees may have.

Staff should consult their manager if they are unsure.

Questions about this policy should be directed to the School Business Manager.
"""
    assert doc(text).contact == "the school business manager"


def test_owner_is_not_read_from_a_hard_wrapped_sentence() -> None:
    text = (
        "Lettings Policy\n\nStaff must not share information unless it has been\n"
        "approved by the school.\n"
    )
    assert doc(text).owner is None


def test_garbage_lines_do_not_crash() -> None:
    lines = ["\t\t", "|", "||", "Version\t", "1\t31.02.23\t", "Review date:", "•", "\f", "Policy"]
    meta = extract_metadata(lines, "Garbage")
    assert meta.title == "Policy"
    assert meta.next_review is None
    assert meta.versions == ()


# --- the same policy as a Word document ------------------------------------------------


@pytest.mark.parametrize("slug", ["st-annes", "st-johns", "cwm-felin", "crossflatts"])
def test_a_word_copy_of_a_policy_names_the_same_contact_and_title(
    tmp_path: Path, slug: str
) -> None:
    """Word splits "Name:" and "Role:" into separate paragraphs and drops the
    "- " of list items; neither may change who staff are told to ask."""
    from knowledge.ingest import parse_policy
    from tests.sample_to_docx import convert

    source = Path(__file__).parents[2] / "knowledge" / "samples" / f"{slug}.txt"
    copy = convert(source, tmp_path / f"{slug}.docx")
    from_text, from_word = parse_policy(source).metadata, parse_policy(copy).metadata
    assert from_word.contact == from_text.contact
    assert from_word.title == from_text.title
    assert from_word.next_review == from_text.next_review
