"""Segmentation turns messy policy exports into clauses that make sense on their own.

Each test builds a small document in the shape schools really produce (plain
text blocks as the .txt loader yields them, or real .docx, .pdf, .md and .html
files read back through ``load_document``) and checks the clauses, their
section paths and lead-ins. The last group runs over the five bundled sample
policies, whose mess (PDF glyphs, drifting paragraph numbers, running headers)
is the reason this module exists.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from knowledge.blocks import Block
from knowledge.loaders import load_document
from knowledge.sample_data import sample_files
from knowledge.segment import MAX_CLAUSE_WORDS, Clause, segment, split_long
from tests.docs_builder import write_docx, write_pdf

GLYPHS = "«»•·▪■●○◦‣⁃–—➢➤►✓✔→§*-"


def text(*groups: str) -> list[Block]:
    """Blocks as the .txt loader yields them: one per blank-line-separated group."""
    return [Block("text", group) for group in groups]


def texts(clauses: list[Clause]) -> list[str]:
    return [clause.text for clause in clauses]


def only(clauses: list[Clause], fragment: str) -> Clause:
    """The one clause whose text contains ``fragment``."""
    found = [clause for clause in clauses if fragment in clause.text]
    assert len(found) == 1, f"{len(found)} clauses contain {fragment!r}: {texts(clauses)}"
    return found[0]


def squash(value: str) -> str:
    """Lower-case letters and digits only, to compare text across wraps and glyphs."""
    return re.sub(r"[^0-9a-z]+", "", value.casefold())


# -- lead-ins and lists ---------------------------------------------------------------


def test_each_list_item_carries_its_lead_in() -> None:
    clauses = segment(
        text(
            "Personal Use",
            "When using social media, staff must not:\n"
            "- accept 'friend requests' from, or communicate with, pupils past or present\n"
            "- use personal accounts to conduct school business on any platform\n"
            "- post images of pupils on their own personal accounts or pages",
        )
    )
    lead = "When using social media, staff must not:"
    assert texts(clauses) == [
        f"{lead} accept 'friend requests' from, or communicate with, pupils past or present",
        f"{lead} use personal accounts to conduct school business on any platform",
        f"{lead} post images of pupils on their own personal accounts or pages",
    ]
    assert {c.lead_in for c in clauses} == {lead}
    assert {c.section for c in clauses} == {("Personal Use",)}


def test_a_list_of_tiny_items_is_one_clause_with_its_lead_in() -> None:
    [clause] = segment(
        text("Tone", "Key words to consider are:\n- Engaging\n- Conversational\n- Professional")
    )
    assert clause.text == "Key words to consider are:\n• Engaging\n• Conversational\n• Professional"
    assert clause.lead_in == "Key words to consider are:"


def test_lead_in_ends_with_the_list() -> None:
    clauses = segment(
        text(
            "Conduct",
            "Staff must:\n- report every concern to the DSL on the same day it arises\n"
            "- keep a written record of what the child said in their own words",
            "Staff must never promise a child that they will keep a secret.",
        )
    )
    assert clauses[-1].text == "Staff must never promise a child that they will keep a secret."
    assert clauses[-1].lead_in is None


def test_only_the_last_sentence_of_a_long_paragraph_is_the_lead_in() -> None:
    clauses = segment(
        text(
            "Supporting Adults",
            "Our school takes measures to make sure that children use the internet safely and "
            "securely. The school expects parents and carers to help us model safe and "
            "responsible use for our pupils. Parents and carers should:",
            "- be respectful towards members of staff and the school at all times online",
            "- direct any complaints through the school's official channels and procedures",
        )
    )
    assert clauses[0].text.startswith("Our school takes measures")
    assert clauses[0].lead_in is None
    assert "Parents and carers should:" not in clauses[0].text
    assert clauses[1].text == (
        "Parents and carers should: be respectful towards members of staff and the school "
        "at all times online"
    )


def test_nested_bullets_under_a_numbered_item_do_not_leak_into_the_next_number() -> None:
    clauses = segment(
        text(
            "USE OF SOCIAL NETWORKING SITES",
            "7. Colleagues are advised not to write about their work but where a colleague\n"
            "chooses to do so:",
            "e he/she must make it clear that the views expressed are his/hers only",
            "« he/she must not discuss pupils, colleagues, parents or carers online",
            "8. Colleagues must not post photographs of pupils under any circumstances;",
        )
    )
    lead = (
        "Colleagues are advised not to write about their work but where a colleague "
        "chooses to do so:"
    )
    assert texts(clauses) == [
        f"{lead} he/she must make it clear that the views expressed are his/hers only",
        f"{lead} he/she must not discuss pupils, colleagues, parents or carers online",
        "Colleagues must not post photographs of pupils under any circumstances;",
    ]
    assert [c.number for c in clauses] == ["7.", "7.", "8."]
    assert clauses[2].lead_in is None


def test_indented_sub_list_under_a_sub_paragraph_ends_at_the_next_sub_paragraph() -> None:
    clauses = segment(
        text(
            "4. Conduct\n",
            "4.1 Staff must:\n  • report concerns to the DSL\n  • keep records of what was said\n"
            "4.2 Staff must never promise to keep a secret.",
        )
    )
    assert clauses[0].text == (
        "Staff must:\n• report concerns to the DSL\n• keep records of what was said"
    )
    assert clauses[0].number == "4.1"
    assert clauses[1].text == "Staff must never promise to keep a secret."
    assert (clauses[1].number, clauses[1].lead_in) == ("4.2", None)
    assert {c.section for c in clauses} == {("4. Conduct",)}


def test_nested_word_list_closes_when_the_outer_list_resumes() -> None:
    """Word keeps the number out of the text, so the nesting depth must end the list."""
    blocks = [
        Block("heading", "Conduct", level=1),
        Block("list_item", "Staff must:", level=0),
        Block("list_item", "report concerns to the DSL", level=1),
        Block("list_item", "keep records", level=1),
        Block("list_item", "Staff must never promise to keep a secret from the DSL.", level=0),
    ]
    clauses = segment(blocks)
    assert clauses[0].text == "Staff must:\n• report concerns to the DSL\n• keep records"
    assert clauses[1].text == "Staff must never promise to keep a secret from the DSL."
    assert clauses[1].lead_in is None


def test_label_item_goes_into_the_section_path() -> None:
    clauses = segment(
        text(
            "Roles & Responsibilities",
            "- SLT\n- Approve account creation\n"
            "- Make an initial assessment when an incident is reported and involve staff",
            "- Staff\n - Know the contents of this policy and follow it in every case\n"
            " - Attend training",
        )
    )
    assert "SLT" not in texts(clauses)
    assert "Staff" not in texts(clauses)
    assert only(clauses, "initial assessment").section == ("Roles & Responsibilities", "SLT")
    assert only(clauses, "Approve account").section == ("Roles & Responsibilities", "SLT")
    assert only(clauses, "Attend training").section == ("Roles & Responsibilities", "Staff")


def test_a_list_of_short_names_is_not_a_list_of_labels() -> None:
    [clause] = segment(
        text(
            "Links",
            "- Behaviour Policy\n- Complaints Policy\n- Kidscape\n- Mencap: www.mencap.org.uk",
        )
    )
    assert clause.section == ("Links",)
    assert clause.text == (
        "• Behaviour Policy\n• Complaints Policy\n• Kidscape\n• Mencap: www.mencap.org.uk"
    )


def test_a_colon_label_then_a_lead_in_keeps_both() -> None:
    clauses = segment(
        text(
            "Responsible Use",
            "Staff protocol:",
            "Where any post is going to be made on the School's own social media the "
            "following steps must be taken:",
            "1. Ensure that permission from the child's parent or carer has been sought.",
            "2. Ensure that there is no identifying information relating to a child.",
            "Staff should also avoid communications that might damage the School's reputation.",
        )
    )
    assert [c.section for c in clauses] == [("Responsible Use", "Staff protocol")] * 3
    assert clauses[0].lead_in is not None
    assert clauses[0].lead_in.startswith("Where any post")
    assert clauses[2].lead_in is None


def test_a_colon_line_that_introduces_no_list_closes_the_previous_label() -> None:
    clauses = segment(
        text(
            "Responsible Use",
            "Respecting intellectual property:",
            "Staff should not jeopardise School confidential information on social media.",
            "Respecting colleagues, pupils, parents, clients, service providers and stakeholders:",
            "Staff must not post anything that colleagues may find offensive.",
        )
    )
    last = only(clauses, "may find offensive")
    assert last.lead_in != "Respecting intellectual property:"
    assert "Respecting intellectual property" not in last.text
    assert "Respecting intellectual property" not in last.section


def test_a_long_colon_paragraph_before_a_paragraph_is_not_repeated() -> None:
    clauses = segment(
        text(
            "Reading",
            "Staff should read this policy carefully before they use any social media platform "
            "at all. They should ask the DSL if they are unsure about anything in it at any time "
            "of the school year. The following applies:",
            "Nothing else is written here at all.",
        )
    )
    joined = " ".join(texts(clauses))
    assert joined.count("Staff should read this policy") == 1
    assert joined.count("The following applies:") == 1


# -- noise ----------------------------------------------------------------------------


@pytest.mark.parametrize("glyph", ["«", "e", "o", "•", "-", "*", "▪", "➢"])
def test_stray_bullet_glyphs_are_stripped(glyph: str) -> None:
    clauses = segment(
        text(
            "Rules",
            "Staff must:\n"
            f"{glyph} report all concerns to the designated safeguarding lead today\n"
            f"{glyph} keep records of everything they were told by the child",
        )
    )
    assert [c.text.removeprefix("Staff must: ") for c in clauses] == [
        "report all concerns to the designated safeguarding lead today",
        "keep records of everything they were told by the child",
    ]


def test_a_line_that_is_only_a_glyph_is_dropped() -> None:
    clauses = segment(text("Rules", "«", "Staff must lock their screens.", "•", "o"))
    assert texts(clauses) == ["Staff must lock their screens."]


def test_a_paragraph_starting_in_lower_case_is_not_joined_to_its_heading() -> None:
    [clause] = segment(text("Mobile Devices", "iPads are stored in the locked trolley."))
    assert (clause.section, clause.text) == (
        ("Mobile Devices",),
        "iPads are stored in the locked trolley.",
    )


def test_words_starting_with_e_or_o_are_not_taken_for_glyphs() -> None:
    clauses = segment(
        text("Rules", "o'clock is when the gates open.", "e-Safety lessons run weekly.")
    )
    assert texts(clauses) == ["o'clock is when the gates open.", "e-Safety lessons run weekly."]


def test_hard_wraps_are_rejoined() -> None:
    [clause] = segment(
        text(
            "Scope",
            "This policy applies to social networking sites, personal web pages and\n"
            "internet presences which make available personal information\n"
            "to the general public.",
        )
    )
    assert clause.text == (
        "This policy applies to social networking sites, personal web pages and internet "
        "presences which make available personal information to the general public."
    )


def test_a_hyphenated_wrap_is_mended_only_when_the_document_spells_the_word_whole() -> None:
    [first, second] = segment(
        text(
            "Records",
            "Our safe-\nguarding lead keeps every on-\nline record.",
            "All safeguarding records are kept securely for six years.",
        )
    )
    assert first.text == "Our safeguarding lead keeps every on-line record."
    assert second.text.startswith("All safeguarding records")


def test_a_hyphenated_wrap_keeps_real_compounds() -> None:
    [clause] = segment(text("Spaces", "pupils use a restricted, school-\nendorsed platform."))
    assert "school-endorsed platform" in clause.text


def test_table_of_contents_is_removed() -> None:
    clauses = segment(
        text(
            "Table of Contents",
            "1. Introduction\t3\n2. Purpose of the policy\t3\nIndividuals should:\t3\n"
            "4. Definition of social media.....\t4\n5. Acceptable use..........4",
            "1. Introduction",
            "The internet is a fast-moving technology and staff must use it with care.",
            "2. Purpose of the policy",
            "This policy encourages good practice.",
        )
    )
    assert texts(clauses) == [
        "The internet is a fast-moving technology and staff must use it with care.",
        "This policy encourages good practice.",
    ]
    assert [c.section for c in clauses] == [("1. Introduction",), ("2. Purpose of the policy",)]


def test_contents_entries_without_page_numbers_are_removed() -> None:
    clauses = segment(
        text(
            "Contents",
            "1. Introduction\n2. Scope\n3. Roles",
            "1. Introduction",
            "This policy covers all staff.",
            "2. Scope",
            "It applies at all times.",
            "3. Roles",
            "The head leads on this policy.",
        )
    )
    assert [(c.section, c.text) for c in clauses] == [
        (("1. Introduction",), "This policy covers all staff."),
        (("2. Scope",), "It applies at all times."),
        (("3. Roles",), "The head leads on this policy."),
    ]


def test_dot_leader_toc_without_a_contents_heading_is_removed() -> None:
    clauses = segment(
        text(
            "Introduction .................... 3\nSafeguarding .................... 4",
            "Introduction",
            "Staff must read this policy.",
        )
    )
    assert texts(clauses) == ["Staff must read this policy."]


@pytest.mark.parametrize("page", ["3", "12", "Page 4", "Page 4 of 12", "- 7 -", "page 2 of 9"])
def test_bare_page_numbers_are_removed(page: str) -> None:
    clauses = segment(
        text("Devices", "Staff must lock their screens.", page, "Staff must log off.")
    )
    assert texts(clauses) == ["Staff must lock their screens.", "Staff must log off."]


def test_detached_paragraph_numbers_are_removed() -> None:
    clauses = segment(text("Scope", "2.6", "2.7", "3.0", "Instances of bullying are serious."))
    assert texts(clauses) == ["Instances of bullying are serious."]


def test_running_header_repeated_on_every_page_is_kept_at_most_once() -> None:
    header = "Acme Primary School Social Media Policy"
    clauses = segment(
        text(
            header,
            "Introduction",
            "Staff must lock their screens when away from their desks.",
            header,
            "Staff must log off at the end of the day.",
            header,
            "Staff must report lost devices at once.",
        )
    )
    assert texts(clauses) == [
        "Staff must lock their screens when away from their desks.",
        "Staff must log off at the end of the day.",
        "Staff must report lost devices at once.",
    ]
    assert all(header not in clause.section for clause in clauses)


def test_a_running_header_that_is_not_a_title_appears_no_more_than_once() -> None:
    header = "Reviewed annually by governors"
    clauses = segment(
        text(
            header,
            "Scope",
            "Staff must lock their screens when away from their desks.",
            header,
            "Staff must log off at the end of the day.",
            header,
            "Staff must report lost devices at once.",
        )
    )
    assert sum(header in clause.text for clause in clauses) <= 1
    assert {c.section for c in clauses} == {("Scope",)}


def test_version_history_table_is_dropped() -> None:
    clauses = segment(
        text(
            "Version\tDate\tAction\nVersion 1\t03 2019\tNew policy\n"
            "Version 2\t02 2023\tFull Policy revised and agreed at JCC",
            "Introduction",
            "Staff must be careful online.",
        )
    )
    assert texts(clauses) == ["Staff must be careful online."]


def test_other_tables_are_kept_as_rows() -> None:
    clauses = segment(text("Contacts", "Role\tName\nDSL\tMrs Patel"))
    assert texts(clauses) == ["Role — Name", "DSL — Mrs Patel"]


def test_emphasis_across_a_hard_wrap_is_unwrapped() -> None:
    [clause] = segment(
        text("Our Ethos", '*"Christ is the Centre of our School where we\nlive, love and learn"*')
    )
    assert clause.text == '"Christ is the Centre of our School where we live, love and learn"'


def test_markdown_links_and_emphasis_are_unwrapped() -> None:
    [clause] = segment(
        text("Links", "The [school website](#) is the **main** form of online communication.")
    )
    assert clause.text == "The school website is the main form of online communication."


def test_a_sentence_cut_by_a_blank_line_is_rejoined() -> None:
    [clause] = segment(
        text(
            "Reporting",
            "Staff who are worried about a child must tell the",
            "designated safeguarding lead the same day.",
        )
    )
    assert clause.text == (
        "Staff who are worried about a child must tell the designated safeguarding lead the "
        "same day."
    )


def test_a_finished_sentence_is_not_joined_to_the_next_paragraph() -> None:
    clauses = segment(
        text("Reporting", "Staff must tell the DSL.", "designated staff keep the records.")
    )
    assert len(clauses) == 2


def test_ocr_one_for_capital_i_is_mended() -> None:
    [clause] = segment(
        text("Media", "12.1f any colleague receives media contact they must consult the head;")
    )
    assert clause.text == "If any colleague receives media contact they must consult the head;"
    assert clause.number == "12."


# -- headings and numbering -------------------------------------------------------------


def test_numbered_headings_become_section_paths() -> None:
    clauses = segment(
        text(
            "1. Introduction",
            "This policy covers all staff.",
            "5. ROLES",
            "5.1 Leaders",
            "5.1.1 The head leads on this policy.",
            "6.0 EQUAL OPPORTUNITIES",
            "6.1 Managers must not discriminate on any grounds.",
        )
    )
    assert [(c.section, c.number, c.text) for c in clauses] == [
        (("1. Introduction",), None, "This policy covers all staff."),
        (("5. ROLES", "5.1 Leaders"), "5.1.1", "The head leads on this policy."),
        (("6.0 EQUAL OPPORTUNITIES",), "6.1", "Managers must not discriminate on any grounds."),
    ]


@pytest.mark.parametrize(
    ("line", "number", "body"),
    [
        ("5. Staff must report concerns.", "5.", "Staff must report concerns."),
        ("2.1 Staff must report concerns.", "2.1", "Staff must report concerns."),
        ("4.1 (15) Staff must report concerns.", "4.1 (15)", "Staff must report concerns."),
        ("a) Staff must report concerns.", "a)", "Staff must report concerns."),
        ("(b) Staff must report concerns.", "(b)", "Staff must report concerns."),
        ("ii. Staff must report concerns.", "ii.", "Staff must report concerns."),
        ("11.Colleagues must report concerns.", "11.", "Colleagues must report concerns."),
    ],
)
def test_paragraph_numbers_are_peeled_off(line: str, number: str, body: str) -> None:
    [clause] = segment(text("Rules", line))
    assert (clause.number, clause.text) == (number, body)


def test_unnumbered_heading_inside_a_numbered_section_is_a_sub_heading() -> None:
    clauses = segment(
        text(
            "6. Safeguarding",
            "Online risks include grooming.",
            "Reporting safeguarding concerns",
            "- Any concern must be reported to the DSL the same day without fail.",
            "Recording Concerns",
            "Concerns are recorded on CPOMS.",
            "7. Cyberbullying",
            "Never engage with cyberbullying.",
        )
    )
    assert [c.section for c in clauses] == [
        ("6. Safeguarding",),
        ("6. Safeguarding", "Reporting safeguarding concerns"),
        ("6. Safeguarding", "Recording Concerns"),
        ("7. Cyberbullying",),
    ]


def test_capitals_heading_among_numbered_capitals_headings_stays_top_level() -> None:
    clauses = segment(
        text(
            "2 SCOPE AND PRINCIPLES",
            "2.1 This policy covers all colleagues.",
            "RESPONSIBILITIES",
            "The Trust Board monitors breaches of the policy.",
        )
    )
    assert [c.section for c in clauses] == [("2 SCOPE AND PRINCIPLES",), ("RESPONSIBILITIES",)]


def test_unnumbered_title_case_headings_are_sections() -> None:
    clauses = segment(
        text(
            "Personal Use of Social Media by Staff",
            "Staff must not contact pupils.",
            "Supporting Pupils",
            "Pupils should be respectful.",
        )
    )
    assert [c.section for c in clauses] == [
        ("Personal Use of Social Media by Staff",),
        ("Supporting Pupils",),
    ]


def test_a_short_sentence_case_line_with_a_full_stop_is_not_a_heading() -> None:
    clauses = segment(text("Devices", "Staff must log off.", "Screens lock."))
    assert [c.section for c in clauses] == [("Devices",), ("Devices",)]


def test_a_field_line_is_not_a_heading() -> None:
    clauses = segment(text("Review", "Review Date: September 2020", "Staff must log off."))
    assert [c.section for c in clauses] == [("Review",), ("Review",)]
    assert clauses[0].text == "Review Date: September 2020"


def test_caps_heading_sharing_a_block_with_its_paragraph() -> None:
    [clause] = segment(
        text(
            "USE OF SCHOOL SITES, PAGES AND SPACES\n"
            "All content posted on school pages must be approved by the\n"
            "headteacher first."
        )
    )
    assert clause.section == ("USE OF SCHOOL SITES, PAGES AND SPACES",)
    assert clause.text == (
        "All content posted on school pages must be approved by the headteacher first."
    )


def test_a_run_of_short_title_case_lines_is_a_list_not_headings() -> None:
    clauses = segment(
        text(
            "Legislation",
            "The following legislation must be considered:",
            "Obscene Publications Act 1959",
            "Protection of Children Act 1988",
            "Computer Misuse Act 1990, amended by the Police and Justice Act 2006\n"
            "Defamation Act 1996",
            "Human Rights Act 1998",
            "Equality Act 2010",
        )
    )
    assert {c.section for c in clauses} == {("Legislation",)}
    joined = " ".join(texts(clauses))
    for act in ("Obscene Publications Act 1959", "Computer Misuse Act 1990", "Equality Act 2010"):
        assert act in joined
    assert only(clauses, "Obscene").lead_in == "The following legislation must be considered:"


def test_title_page_headings_are_not_sections() -> None:
    clauses = segment(
        text(
            "Online Safety Policy",
            "Introduction",
            "This policy sets out how staff use social media safely at school.",
        )
    )
    assert [(c.section, c.text) for c in clauses] == [
        (("Introduction",), "This policy sets out how staff use social media safely at school.")
    ]


INTRO = "This policy sets out how every member of staff uses social media safely at school."


def test_a_heading_with_no_text_of_its_own_heads_the_headings_under_it() -> None:
    clauses = segment(
        text(
            "Introduction",
            INTRO,
            "Managing school social media accounts",
            "The Do's",
            "- Check with a senior leader before publishing",
            "The Don'ts",
            "- Don't use social media to air internal grievances",
        )
    )
    assert [c.section for c in clauses] == [
        ("Introduction",),
        ("Managing school social media accounts", "The Do's"),
        ("Managing school social media accounts", "The Don'ts"),
    ]


def test_sub_headings_stop_at_the_next_empty_heading_a_number_or_an_appendix() -> None:
    clauses = segment(
        text(
            "Introduction",
            INTRO,
            "Staff accounts",
            "Personal Use",
            "Staff must not contact pupils.",
            "School accounts",
            "Approval",
            "The headteacher approves each account.",
            "Appendix",
            "Useful contacts are listed here.",
            "7. Monitoring",
            "Accounts are checked each term.",
            "Review",
            "The governors review this policy.",
        )
    )
    assert [c.section for c in clauses] == [
        ("Introduction",),
        ("Staff accounts", "Personal Use"),
        ("School accounts", "Approval"),
        ("Appendix",),
        ("7. Monitoring",),
        ("7. Monitoring", "Review"),
    ]


def test_a_title_line_before_the_body_heads_nothing() -> None:
    clauses = segment(text("Staff Code of Conduct", "Introduction", INTRO))
    assert [c.section for c in clauses] == [("Introduction",)]


def test_numbered_heading_on_the_line_above_its_paragraph() -> None:
    clauses = segment(
        text(
            "1. Introduction\nThis policy applies to all staff and volunteers\n"
            "who work with pupils.\n2. Mobile Phones\n"
            "Staff must keep personal phones out of sight.",
        )
    )
    assert [(c.section, c.text) for c in clauses] == [
        (
            ("1. Introduction",),
            "This policy applies to all staff and volunteers who work with pupils.",
        ),
        (("2. Mobile Phones",), "Staff must keep personal phones out of sight."),
    ]


def test_a_wrapped_sentence_is_not_mistaken_for_a_heading_and_paragraph() -> None:
    [clause] = segment(
        text(
            "Safeguarding",
            "Staff should be familiar with Keeping Children Safe\n"
            "in Education and adhere to it at all times.",
        )
    )
    assert clause.section == ("Safeguarding",)


def test_a_short_wrapped_numbered_paragraph_is_not_a_heading() -> None:
    [clause] = segment(
        text(
            "6. Safeguarding",
            "6.1 Staff must report all concerns to the\nDesignated Safeguarding Lead at once.",
        )
    )
    assert clause.section == ("6. Safeguarding",)
    assert clause.number == "6.1"
    assert (
        clause.text == "Staff must report all concerns to the Designated Safeguarding Lead at once."
    )


# -- long paragraphs --------------------------------------------------------------------


def test_a_300_word_paragraph_is_split_into_clauses_that_keep_every_word() -> None:
    sentences = [
        f"Rule {n} says staff must report any concern about pupil {n} to the DSL before "
        f"the end of the day."
        for n in range(15)
    ]
    paragraph = " ".join(sentences)
    assert len(paragraph.split()) == 300
    clauses = segment(text("Reporting", paragraph))
    assert len(clauses) >= 3
    assert all(c.words <= MAX_CLAUSE_WORDS for c in clauses)
    assert all(c.section == ("Reporting",) for c in clauses)
    assert " ".join(texts(clauses)).split() == paragraph.split()
    assert all(c.text.endswith(".") for c in clauses)  # split at sentence boundaries


def test_a_long_list_item_is_split_and_every_part_keeps_its_lead_in() -> None:
    item = " ".join(
        f"Sentence {n} explains one more duty that staff have online." for n in range(20)
    )
    lead = "When using social media, staff must not:"
    clauses = segment(text("Conduct", f"{lead}\n- {item}"))
    assert len(clauses) > 1
    assert all(c.text.startswith(lead) and c.lead_in == lead for c in clauses)
    assert all(c.words <= MAX_CLAUSE_WORDS for c in clauses)
    bodies = [c.text.removeprefix(lead).split() for c in clauses]
    assert [word for body in bodies for word in body] == item.split()


def test_one_sentence_over_the_ceiling_is_still_cut() -> None:
    sentence = ", ".join(f"item number {n} of the long list" for n in range(40)) + "."
    parts = split_long(sentence)
    assert len(parts) > 1
    assert all(len(part.split()) <= MAX_CLAUSE_WORDS for part in parts)
    assert " ".join(parts).split() == sentence.split()


def test_abbreviations_are_not_sentence_ends() -> None:
    filler = " ".join(["Staff must always act with care online."] * 12)
    parts = split_long(f"{filler} Use a search engine (e.g. Google) only. {filler}")
    assert not any(part.endswith("e.g.") for part in parts)


# -- unicode ----------------------------------------------------------------------------


def test_welsh_letters_and_emoji_are_preserved() -> None:
    clauses = segment(
        text(
            "Ysgol Gymraeg Cwm Felin",
            "Defnydd Personol",
            "Mae'r ysgol yn defnyddio'r cyfryngau cymdeithasol 🙂 yn ddiogel: dŵr, tŷ, ŵyr.",
        )
    )
    assert clauses[-1].text == (
        "Mae'r ysgol yn defnyddio'r cyfryngau cymdeithasol 🙂 yn ddiogel: dŵr, tŷ, ŵyr."
    )
    assert clauses[-1].section == ("Defnydd Personol",)


def test_decomposed_accents_are_normalised() -> None:
    [clause] = segment(text("Rules", "Mae'r ysgol yn ddiogel: dw\u0302r."))
    assert "dŵr" in clause.text


def test_empty_and_whitespace_input_gives_no_clauses() -> None:
    assert segment([]) == []
    assert segment(text("   ", "\n\n")) == []


def test_clause_ords_are_consecutive() -> None:
    clauses = segment(text("A Heading", "One.", "- two items here\n- and three", "Four."))
    assert [c.ord for c in clauses] == list(range(len(clauses)))


# -- other formats, through the real loaders ------------------------------------------------


def test_word_document_with_heading_styles_lists_and_a_table(tmp_path: Path) -> None:
    path = write_docx(
        tmp_path / "policy.docx",
        [
            ("heading", "Online Safety Policy", 0),
            ("heading", "Staff Conduct", 1),
            ("paragraph", "Staff are role models for pupils at all times."),
            ("heading", "Social Media", 2),
            ("paragraph", "When using social media, staff must not:"),
            ("bullet", "accept friend requests from pupils or ex-pupils under 18", 0),
            ("bullet", "post photographs of pupils:", 0),
            ("bullet", "on personal accounts", 1),
            ("bullet", "on class pages without consent", 1),
            ("bullet", "share their personal phone number with any parent or pupil", 0),
            ("paragraph", "To report contact from a pupil, staff should:"),
            ("number", "Screenshot the message before deleting anything.", 0),
            ("number", "Tell the designated safeguarding lead the same day.", 0),
            ("table", [["Role", "Name"], ["DSL", "Mrs Patel"]]),
            ("heading", "Devices", 1),
            ("paragraph", "Staff phones stay in lockers during lessons."),
        ],
    )
    clauses = segment(load_document(path))
    social = ("Staff Conduct", "Social Media")
    lead = "When using social media, staff must not:"

    assert only(clauses, "role models").section == ("Staff Conduct",)
    friend = only(clauses, "friend requests")
    assert friend.text == f"{lead} accept friend requests from pupils or ex-pupils under 18"
    assert friend.section == social
    assert only(clauses, "phone number").text.startswith(lead)
    nested = only(clauses, "class pages")
    assert nested.section == social
    assert nested.lead_in == f"{lead} post photographs of pupils:"
    assert nested.text == (
        f"{lead} post photographs of pupils:\n"
        "• on personal accounts\n• on class pages without consent"
    )
    screenshot = only(clauses, "Screenshot")
    assert screenshot.lead_in == "To report contact from a pupil, staff should:"
    assert "DSL — Mrs Patel" in texts(clauses)
    assert only(clauses, "lockers").section == ("Devices",)
    assert all("Online Safety Policy" not in c.section for c in clauses)


def test_pdf_with_running_header_and_page_numbers(tmp_path: Path) -> None:
    header = "Oakfield Primary - Online Safety Policy"
    path = write_pdf(
        tmp_path / "policy.pdf",
        [
            [
                header,
                "1. Introduction",
                "This policy applies to all staff and volunteers",
                "who work with pupils at Oakfield.",
                "",
                "Page 1",
            ],
            [
                header,
                "2. Mobile Phones",
                "Staff must keep personal phones out of sight",
                "in classrooms and must not use them near pupils.",
                "",
                "Page 2",
            ],
            [
                header,
                "3. Reporting",
                "Report every online safety concern to the DSL.",
                "",
                "Page 3",
            ],
        ],
    )
    clauses = segment(load_document(path))
    assert [(c.section, c.text) for c in clauses] == [
        (
            ("1. Introduction",),
            "This policy applies to all staff and volunteers who work with pupils at Oakfield.",
        ),
        (
            ("2. Mobile Phones",),
            "Staff must keep personal phones out of sight in classrooms and must not use them "
            "near pupils.",
        ),
        (("3. Reporting",), "Report every online safety concern to the DSL."),
    ]


def test_markdown_headings_and_bullets(tmp_path: Path) -> None:
    path = tmp_path / "policy.md"
    path.write_text(
        "# Online Safety Policy\n\n"
        "## Staff Conduct\n\n"
        "Staff must model safe behaviour online.\n\n"
        "When using social media, staff must not:\n\n"
        "- accept friend requests from pupils or from ex-pupils under 18\n"
        "- share **personal** contact details with parents\n"
        "  - including phone numbers\n"
        "  - including home addresses\n\n"
        "### Reporting\n\n"
        "Report any concern to the [DSL](https://example.org) at once.\n",
        encoding="utf-8",
    )
    clauses = segment(load_document(path))
    lead = "When using social media, staff must not:"
    assert only(clauses, "model safe").section == ("Staff Conduct",)
    friend = only(clauses, "friend requests")
    assert friend.text == f"{lead} accept friend requests from pupils or from ex-pupils under 18"
    assert only(clauses, "home addresses").lead_in == lead
    assert "**" not in " ".join(texts(clauses))
    report = only(clauses, "Report any concern")
    assert report.text == "Report any concern to the DSL at once."
    assert report.section == ("Staff Conduct", "Reporting")


def test_html_headings_and_lists(tmp_path: Path) -> None:
    path = tmp_path / "policy.html"
    path.write_text(
        "<html><head><title>Policy</title></head><body>"
        "<nav>Home | Policies | Contact</nav>"
        "<h1>Online Safety Policy</h1>"
        "<h2>Staff conduct</h2><p>Staff must model safe behaviour online.</p>"
        "<p>When using social media, staff must not:</p>"
        "<ul><li>accept friend requests from pupils or from ex-pupils under 18</li>"
        "<li>share personal contact details with parents:<ul>"
        "<li>including phone numbers</li><li>including home addresses</li></ul></li>"
        "<li>post images of pupils on personal accounts or pages</li></ul>"
        "<h2>Reporting</h2><p>Report any concern to the DSL at once.</p>"
        "</body></html>",
        encoding="utf-8",
    )
    clauses = segment(load_document(path))
    lead = "When using social media, staff must not:"
    assert only(clauses, "friend requests").text == (
        f"{lead} accept friend requests from pupils or from ex-pupils under 18"
    )
    assert only(clauses, "friend requests").section == ("Staff conduct",)
    assert only(clauses, "images of pupils").lead_in == lead
    assert only(clauses, "home addresses").text == (
        f"{lead} share personal contact details with parents:\n"
        "• including phone numbers\n• including home addresses"
    )
    assert only(clauses, "Report any concern").section == ("Reporting",)
    assert all("Home | Policies" not in t for t in texts(clauses))


# -- the bundled sample policies ----------------------------------------------------------

SAMPLES = sorted(sample_files())
_BARE_NUMBER = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|\(?[a-h]\)|\(?[ivx]+[.)])(?:\s|$)")


@cache
def sample(name: str) -> list[Clause]:
    return segment(load_document(sample_files()[name]))


@cache
def sample_source(name: str) -> str:
    return sample_files()[name].read_text(encoding="utf-8")


def test_there_are_five_samples() -> None:
    assert SAMPLES == ["crossflatts", "cwm-felin", "kaleidoscope", "st-annes", "st-johns"]


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_clauses_are_within_the_word_ceiling(name: str) -> None:
    clauses = sample(name)
    assert len(clauses) > 40
    assert max(c.words for c in clauses) <= MAX_CLAUSE_WORDS


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_clauses_start_with_no_glyph_or_bare_number(name: str) -> None:
    for clause in sample(name):
        for line in clause.text.split("\n"):
            if line.startswith("• ") and "\n• " in clause.text:
                line = line[2:]  # a short list shown whole is rendered with bullets
            assert line[:1] not in GLYPHS, clause
            assert not re.match(r"^[eo]\s", line), clause
            assert not _BARE_NUMBER.match(line), clause


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_clauses_have_words_and_no_layout_debris(name: str) -> None:
    for clause in sample(name):
        assert re.search(r"[A-Za-z]{2}", clause.text), clause
        assert "\t" not in clause.text
        assert "....." not in clause.text
        assert clause.text == clause.text.strip()
        assert "  " not in clause.text
        assert all(part and part == part.strip() for part in clause.section)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_clauses_have_section_paths(name: str) -> None:
    clauses = sample(name)
    first = next(i for i, c in enumerate(clauses) if c.section)
    assert first <= 3
    assert all(c.section for c in clauses[first:])


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_clauses_come_in_document_order(name: str) -> None:
    """Each clause's own words (after its lead-in) are found in the source after the
    previous clause's, so nothing is emitted out of place."""
    source = squash(sample_source(name))
    position = 0
    for clause in sample(name):
        body = clause.text
        if clause.lead_in and body.startswith(clause.lead_in):
            body = body[len(clause.lead_in) :]
        words = body.split()
        probe = squash(" ".join(words[1:7] if len(words) > 3 else words))
        found = source.find(probe, position)
        assert found >= 0, f"out of order or altered: {clause}"
        position = found


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_ords_are_consecutive(name: str) -> None:
    assert [c.ord for c in sample(name)] == list(range(len(sample(name))))


def test_st_annes_friend_requests_clause() -> None:
    clauses = sample("st-annes")
    clause = only(clauses, "friend requests")
    assert clause.text == (
        "When using social media, staff must not: accept 'friend requests' from, or "
        "communicate with, pupils past or present"
    )
    assert clause.section == ("Personal Use of Social Media by Staff",)
    assert clause.lead_in == "When using social media, staff must not:"


def test_st_annes_running_title_is_not_content() -> None:
    clauses = sample("st-annes")
    assert "Social Media Policy" not in texts(clauses)
    assert all("Social Media Policy" not in c.section for c in clauses)
    assert only(clauses, "ClassDojo.").section == ("Use of Official School Social Media",)


def test_st_annes_links_keep_document_order() -> None:
    clauses = texts(sample("st-annes"))
    childnet = next(i for i, t in enumerate(clauses) if "Childnet" in t)
    advice = next(i for i, t in enumerate(clauses) if t.startswith("DfE 'Cyber-bullying"))
    changing = next(i for i, t in enumerate(clauses) if "Changing Faces" in t)
    assert childnet < advice < changing


def test_st_johns_friend_requests_in_acceptable_use() -> None:
    clauses = sample("st-johns")
    clause = only(clauses, "friend' requests from pupils or ex-pupils under the age of 18")
    assert clause.section == ("5. Acceptable use",)
    assert only(clauses, "harassment or abuse received online").section == (
        "6. Safeguarding",
        "Reporting safeguarding concerns",
    )
    assert only(clauses, "Christ is the Centre").text.startswith('"Christ')


def test_st_johns_contents_and_version_table_are_gone() -> None:
    clauses = sample("st-johns")
    joined = "\n".join(texts(clauses))
    assert "Version 2" not in joined
    assert "Table of Contents" not in joined
    assert "Purpose of the policy" not in joined
    assert only(clauses, "online reputation").section == (
        "3. Roles, responsibilities and procedure",
    )
    assert only(clauses, "online reputation").lead_in == "Individuals should:"
    assert only(clauses, "implementing and reviewing").lead_in == "Managers are responsible for:"


def test_kaleidoscope_paragraph_four() -> None:
    clauses = sample("kaleidoscope")
    clause = only(
        clauses,
        "Any pupil-initiated communication, on-line friendships/friend requests must be declined",
    )
    assert clause.number == "4."
    assert clause.section == ("USE OF SOCIAL NETWORKING SITES",)


def test_kaleidoscope_has_no_stray_glyphs() -> None:
    for clause in sample("kaleidoscope"):
        assert "«" not in clause.text
        assert not re.search(r"(?:^|\s)[eo«](?:\s|$)", clause.text), clause


def test_kaleidoscope_numbering_and_sections() -> None:
    clauses = sample("kaleidoscope")
    assert only(clauses, "Managers must not discriminate").section == ("6.0. EQUAL OPPORTUNITIES",)
    assert only(clauses, "Managers must not discriminate").number == "6.1"
    media = only(clauses, "receives media contact")
    assert media.text.startswith("If any colleague")
    assert media.number == "12."
    scope = only(clauses, "all individuals engaged by the school")
    assert (scope.section, scope.number) == (("2 SCOPE AND GENERAL PRINCIPLES",), "2.1")
    assert only(clauses, "CEO shall: Support schools").section == ("RESPONSIBILITIES",)


def test_kaleidoscope_sub_list_takes_its_paragraph_number_and_stops() -> None:
    clauses = sample("kaleidoscope")
    discuss = only(clauses, "he/she must not discuss pupils")
    assert discuss.number == "7."
    assert discuss.lead_in is not None
    assert discuss.lead_in.endswith("chooses to do so:")
    eight = only(clauses, "must not post or share photographs of pupils")
    assert (eight.number, eight.lead_in) == ("8.", None)


def test_kaleidoscope_sub_paragraphs_stay_in_order() -> None:
    clauses = texts(sample("kaleidoscope"))
    first = next(i for i, t in enumerate(clauses) if "all individuals engaged by the school" in t)
    later = next(i for i, t in enumerate(clauses) if t.startswith("Instances of on-line bullying"))
    assert first < later


def test_kaleidoscope_hyphenated_wraps() -> None:
    joined = " ".join(texts(sample("kaleidoscope")))
    assert "Kaleidoscope Multi-Academy Trust" in joined  # no "multiacademy" anywhere
    assert "school-endorsed networking platform" in joined
    assert "that online searches may be done" in joined  # "online" is used elsewhere


def test_kaleidoscope_legislation_list_is_whole() -> None:
    clauses = sample("kaleidoscope")
    for act in (
        "Obscene Publications Act 1959",
        "Protection of Children Act 1988",
        "Computer Misuse Act 1990",
        "Equality Act 2010",
    ):
        assert only(clauses, act).section == ("8.0 LEGISLATION",)


def test_crossflatts_slt_label() -> None:
    clauses = sample("crossflatts")
    clause = only(clauses, "the SLT members account shall be suspended by the administrator")
    assert "SLT" in clause.section
    assert only(clauses, "Approve account creation").section[-1] == "SLT"
    assert only(clauses, "Store account details").section[-1] == "Administrator/Moderator"
    assert only(clauses, "Attending appropriate training").section[-1] == "Staff"
    assert "SLT" not in texts(clauses)


def test_crossflatts_business_case_lead_in() -> None:
    clause = only(sample("crossflatts"), "The intended audience")
    assert clause.lead_in is not None
    assert clause.lead_in.endswith("covers the following points:")
    assert clause.section == ("Organisational control", "Process for creating new accounts")


def test_crossflatts_dos_and_donts_sit_under_managing_school_accounts() -> None:
    clauses = sample("crossflatts")
    share = only(clauses, "permission to 'share' other peoples' materials")
    grievances = only(clauses, "air internal grievances")
    assert share.section == ("Managing school social media accounts", "The Do's")
    assert grievances.section == ("Managing school social media accounts", "The Don'ts")
    criticise = only(clauses, "If you want to criticise")
    assert criticise.section == ("Appendix",)


def test_cwm_felin_lettered_list_and_version_log() -> None:
    clauses = sample("cwm-felin")
    assert "Spelling corrections" not in " ".join(texts(clauses))
    rules = only(clauses, "Breach our Disciplinary Rules")
    assert rules.number == "d)"
    assert rules.text == (
        "For example, employees are prohibited from using social media to: Breach our "
        "Disciplinary Rules;"
    )


def test_cwm_felin_labels_name_their_parts() -> None:
    clauses = sample("cwm-felin")
    school = only(clauses, "The School;")
    assert school.section[-1] == "Protecting our business reputation"
    assert school.number == "i."
    assert only(clauses, "Ensure that specific permission").section[-1] == (
        "Staff protocol for use of social media"
    )
    offensive = only(clauses, "may find offensive")
    assert offensive.lead_in is None
    assert "Respecting intellectual property" not in offensive.text


def test_document_history_paragraphs_are_not_clauses_but_review_dates_are() -> None:
    text = (
        "Use of phones\n\nStaff must not use personal phones in classrooms.\n\n"
        "Date of Original: December 2012\n\n"
        "Revisions: reviewed and updated (January 2016); minor revisions (Jun 2018)\n\n"
        "Review Date: September 2020"
    )
    texts = [c.text for c in segment([Block("text", b) for b in text.split("\n\n")])]
    assert "Staff must not use personal phones in classrooms." in texts
    assert "Review Date: September 2020" in texts
    assert not any(t.startswith(("Revisions", "Date of Original")) for t in texts)
