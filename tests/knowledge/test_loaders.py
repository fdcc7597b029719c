"""Loaders turn real files into exact blocks, and every broken file into one clear reason."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls
from pypdf import PdfReader, PdfWriter

from knowledge.blocks import Block
from knowledge.errors import DocumentError, GuidebotError
from knowledge.loaders import SUPPORTED_SUFFIXES, clean_text, load_document
from tests.docs_builder import (
    pdf_bytes,
    write_docx,
    write_encrypted_pdf,
    write_image_only_pdf,
    write_pdf,
)

HEADER = "St Mary's School - Social Media Policy"


def text(*groups: str, page: int | None = None) -> list[Block]:
    return [Block("text", group, page=page) for group in groups]


def reason(path: Path) -> str:
    with pytest.raises(DocumentError) as caught:
        load_document(path)
    assert str(caught.value) == f"{path.name}: {caught.value.reason}"
    return caught.value.reason


# -- dispatch and file problems --------------------------------------------------------


def test_supported_suffixes() -> None:
    assert frozenset({".txt", ".md", ".docx", ".pdf", ".html", ".htm"}) == SUPPORTED_SUFFIXES


def test_missing_file(tmp_path: Path) -> None:
    assert reason(tmp_path / "gone.pdf") == "file not found"


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "policies.txt"
    folder.mkdir()
    assert reason(folder) == "not a file"


def test_unknown_suffix_names_the_types_to_use(tmp_path: Path) -> None:
    (tmp_path / "policy.xyz").write_text("Staff must.")
    assert reason(tmp_path / "policy.xyz") == (
        "unsupported file type .xyz; use .txt, .md, .docx, .pdf or .html"
    )
    (tmp_path / "policy").write_text("Staff must.")
    assert reason(tmp_path / "policy").startswith("unsupported file without an extension; use")


def test_document_error_is_a_guidebot_error(tmp_path: Path) -> None:
    with pytest.raises(GuidebotError):
        load_document(tmp_path / "gone.txt")


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.docx", "empty.pdf", "e.html"])
def test_empty_file_has_no_text(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert reason(tmp_path / name) == "the document has no text"


@pytest.mark.parametrize("name", ["blank.txt", "blank.md", "blank.htm"])
def test_whitespace_only_has_no_text(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\xef\xbb\xbf \r\n\t\n\xc2\xa0\xe2\x80\x8b\n")
    assert reason(tmp_path / name) == "the document has no text"


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    (tmp_path / "POLICY.TXT").write_text("Staff must.")
    assert load_document(tmp_path / "POLICY.TXT") == text("Staff must.")
    write_pdf(tmp_path / "SCAN.PDF", [["Staff must."]])
    assert load_document(tmp_path / "SCAN.PDF") == text("Staff must.", page=1)


# -- shared clean-up -------------------------------------------------------------------


def test_clean_text_normalises_invisible_characters() -> None:
    raw = "Cafe\u0301 safe\u00adguard\u200bing\u00a0policy\ufeff\r\nnext\rline\fpage\x07"
    assert clean_text(raw) == "Café safeguarding policy\nnext\nline\n\npage"


# -- .txt ------------------------------------------------------------------------------


def test_txt_returns_one_block_per_paragraph(tmp_path: Path) -> None:
    path = tmp_path / "policy.txt"
    path.write_bytes(
        "Social Media Policy  \r\n\r\n1. Introduction\r\nStaff must never\r\naccept requests.\r\n"
        "\r\n \t \r\n  - a bullet\r\nVersion\tDate\fAppendix A\n"
        "Cafe\u0301\u00a0rules safe\u00adguard\u200bing\n".encode()
    )
    assert load_document(path) == text(
        "Social Media Policy",
        "1. Introduction\nStaff must never\naccept requests.",
        "  - a bullet\nVersion\tDate",
        "Appendix A\nCafé rules safeguarding",
    )


def test_txt_with_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfStaff \xe2\x80\x99s duty")
    assert load_document(path) == text("Staff ’s duty")


def test_txt_cp1252_curly_quote(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes(b"Staff\x92s duty of care \x96 always\r\n")
    assert load_document(path) == text("Staff’s duty of care – always")


def test_txt_utf16_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "notepad.txt"
    path.write_bytes("Staff must.\r\n\r\nNever.".encode("utf-16"))
    assert load_document(path) == text("Staff must.", "Never.")


def test_txt_with_nul_bytes_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(b"PK\x03\x04\x00\x00binary")
    assert reason(path) == "not a text file"


# -- .md -------------------------------------------------------------------------------


def test_markdown_becomes_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "policy.md"
    path.write_text(
        "Social Media Policy\n"
        "===================\n"
        "\n"
        "## 5. Acceptable use ##\n"
        "\n"
        "Staff **must not** accept *friend* requests from __pupils__; see\n"
        "[the DSL page](https://example.org/dsl) or <https://example.org>.\n"
        "Use `Teams` only. snake_case and 2 * 3 stay; so does \\*this\\*.\n"
        "\n"
        "---\n"
        "\n"
        "* first ***point***\n"
        "  + nested point\n"
        "> quoted advice\n"
        "\n"
        "| Version | Date |\n"
        "|---------|:----:|\n"
        "| 1 | 2019 |\n"
        "\n"
        "***\n"
        "Scope\n"
        "-----\n"
        "Everyone.\n",
        encoding="utf-8",
    )
    assert load_document(path) == text(
        "# Social Media Policy",
        "## 5. Acceptable use",
        "Staff must not accept friend requests from pupils; see\n"
        "the DSL page or https://example.org.\n"
        "Use Teams only. snake_case and 2 * 3 stay; so does *this*.",
        "- first point\n  - nested point\nquoted advice",
        "Version\tDate\n1\t2019",
        "## Scope\nEveryone.",
    )


# -- .pdf ------------------------------------------------------------------------------


def test_pdf_blocks_per_page_with_page_numbers(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "policy.pdf",
        [
            ["Social Media Policy", "1. Introduction (general)", "Staff’s duty \\ care"],
            ["2. Scope", "All staff and volunteers."],
        ],
    )
    assert load_document(path) == [
        Block(
            "text", "Social Media Policy\n1. Introduction (general)\nStaff’s duty \\ care", page=1
        ),
        Block("text", "2. Scope\nAll staff and volunteers.", page=2),
    ]


def test_pdf_running_header_and_page_numbers_removed(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "policy.pdf",
        [
            [HEADER, "1. Introduction", "Staff must be careful online.", "Page 1 of 3"],
            [HEADER, "2. Scope", "This applies to all staff.", HEADER, "More text.", "- 2 -"],
            ["3", HEADER, "3. Acceptable use", "Never befriend pupils.", "Page 3"],
        ],
    )
    assert load_document(path) == [
        Block("text", "1. Introduction\nStaff must be careful online.", page=1),
        Block("text", f"2. Scope\nThis applies to all staff.\n{HEADER}\nMore text.", page=2),
        Block("text", "3. Acceptable use\nNever befriend pupils.", page=3),
    ]


def test_pdf_line_on_one_page_edge_only_is_kept(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "policy.pdf",
        [["Introduction", "Text one."], ["Scope", "Text two."], ["Use", "Text three."]],
    )
    assert [block.text for block in load_document(path)] == [
        "Introduction\nText one.",
        "Scope\nText two.",
        "Use\nText three.",
    ]


def test_pdf_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "policy.pdf"
    path.write_text("Social Media Policy\nStaff must.")
    assert reason(path) == "not a valid PDF"


def test_pdf_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    whole = pdf_bytes([b"BT /F1 11 Tf 72 700 Td (Staff) Tj ET"])
    path.write_bytes(whole[: len(whole) // 2])
    assert reason(path) == "not a valid PDF"


def test_pdf_password_protected(tmp_path: Path) -> None:
    path = write_encrypted_pdf(tmp_path / "locked.pdf", ["Secret policy"])
    assert reason(path) == "the PDF is password-protected"


def test_pdf_with_only_an_owner_password_opens(tmp_path: Path) -> None:
    path = tmp_path / "restricted.pdf"
    content = b"BT /F1 11 Tf 72 700 Td (Staff must.) Tj ET"
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([content]))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    with path.open("wb") as handle:
        writer.write(handle)
    assert load_document(path) == text("Staff must.", page=1)


def test_pdf_image_only_says_it_is_a_scan(tmp_path: Path) -> None:
    path = write_image_only_pdf(tmp_path / "scan.pdf")
    assert "scanned image" in reason(path)


def test_pdf_with_only_running_lines_has_no_text(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "blank.pdf", [[HEADER, "1"], [HEADER, "2"]])
    assert reason(path) == "the document has no text"


# -- .docx -----------------------------------------------------------------------------


def test_docx_keeps_structure_and_order(tmp_path: Path) -> None:
    path = write_docx(
        tmp_path / "policy.docx",
        [
            ("heading", "Social Media Policy", 0),
            ("heading", "Version history", 1),
            ("table", [["Version", "Date"], ["", ""], ["1", "2019"]]),
            ("heading", "5. Acceptable use", 1),
            ("paragraph", "Individuals should:"),
            ("bullet", "not accept friend requests", 0),
            ("bullet", "from pupils under 18", 1),
            ("number", "report concerns", 0),
            ("heading", "5.1 Personal accounts", 2),
            ("paragraph", "  "),
            ("paragraph", "Keep them private."),
        ],
    )
    assert load_document(path) == [
        Block("heading", "Social Media Policy", level=1),
        Block("heading", "Version history", level=1),
        Block("table_row", "Version\tDate"),
        Block("table_row", "1\t2019"),
        Block("heading", "5. Acceptable use", level=1),
        Block("paragraph", "Individuals should:"),
        Block("list_item", "not accept friend requests", level=0),
        Block("list_item", "from pupils under 18", level=1),
        Block("list_item", "report concerns", level=0),
        Block("heading", "5.1 Personal accounts", level=2),
        Block("paragraph", "Keep them private."),
    ]


def _append_run(parent: Any, text: str) -> None:
    run = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = text
    run.append(t)
    parent.append(run)


def test_docx_paragraph_details(tmp_path: Path) -> None:
    """Soft breaks, insertions, numbering, content controls and merged cells read correctly."""
    document = docx.Document()
    broken = document.add_paragraph("Staff must")
    broken.runs[0].add_break()
    broken.add_run("never\tshare passwords.")
    tracked = document.add_paragraph("Report to the ")
    insertion = OxmlElement("w:ins")
    _append_run(insertion, "DSL")
    tracked._p.append(insertion)
    numbered = document.add_paragraph("Sub-clause")
    num_pr = numbered._p.get_or_add_pPr().get_or_add_numPr()
    num_pr.get_or_add_ilvl().val = 2
    num_pr.get_or_add_numId().val = 1
    unnumbered = document.add_paragraph("Numbering switched off")
    unnumbered._p.get_or_add_pPr().get_or_add_numPr().get_or_add_numId().val = 0
    controlled = document.add_paragraph("Inside a content control")
    sdt, sdt_content = OxmlElement("w:sdt"), OxmlElement("w:sdtContent")
    controlled._p.addprevious(sdt)
    sdt.append(sdt_content)
    sdt_content.append(controlled._p)
    table = document.add_table(rows=2, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 1))
    merged.text = "Role"
    table.cell(0, 2).text = "Name"
    table.cell(1, 0).text = "DSL"
    table.cell(1, 1).text = "DSL"
    table.cell(1, 2).add_paragraph("Mrs A")
    document.save(str(tmp_path / "details.docx"))

    assert load_document(tmp_path / "details.docx") == [
        Block("paragraph", "Staff must never share passwords."),
        Block("paragraph", "Report to the DSL"),
        Block("list_item", "Sub-clause", level=2),
        Block("paragraph", "Numbering switched off"),
        Block("paragraph", "Inside a content control"),
        Block("table_row", "Role\tName"),
        Block("table_row", "DSL\tDSL\tMrs A"),
    ]


def test_docx_skips_table_of_contents(tmp_path: Path) -> None:
    document = docx.Document()
    document.styles.add_style("TOC 1", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("Acceptable use\t5", style="TOC 1")
    contents = document.add_paragraph("Contents")
    sdt = parse_xml(
        f"<w:sdt {nsdecls('w')}><w:sdtPr><w:docPartObj>"
        '<w:docPartGallery w:val="Table of Contents"/></w:docPartObj></w:sdtPr>'
        "<w:sdtContent/></w:sdt>"
    )
    contents._p.addprevious(sdt)
    sdt[-1].append(contents._p)
    document.add_paragraph("Body text.")
    document.save(str(tmp_path / "toc.docx"))
    assert load_document(tmp_path / "toc.docx") == [Block("paragraph", "Body text.")]


def test_docx_without_text(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "blank.docx", [("paragraph", ""), ("table", [["", ""]])])
    assert reason(path) == "the document has no text"


def test_docx_that_is_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "renamed.docx"
    path.write_text("Social Media Policy\nStaff must.")
    assert reason(path) == "not a valid Word document"


def test_docx_truncated_zip(tmp_path: Path) -> None:
    whole = write_docx(tmp_path / "whole.docx", [("paragraph", "Staff must.")]).read_bytes()
    path = tmp_path / "cut.docx"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DocumentError) as caught:
        load_document(path)
    assert caught.value.reason == "not a valid Word document"
    assert caught.value.__cause__ is not None


def test_docx_zip_that_is_not_word(tmp_path: Path) -> None:
    path = tmp_path / "sheet.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not word")
    assert reason(path) == "not a valid Word document"


# -- .html -----------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>Policies | St Mary's</title><style>p { color: red }</style></head>
<body>
<header><a href="/">Home</a></header>
<nav><ul><li>Policies</li><li>Contact</li></ul></nav>
<h1>Social Media &amp; Online Safety</h1>
<p>Staff  must&nbsp;not
   accept <b>friend</b> requests &ndash; ever.</p>
Text straight in the body.
<div>A div's own text<p>with a paragraph</p></div>
<blockquote>Quoted guidance</blockquote>
<h2>5. Acceptable use</h2>
<ul>
  <li>Do not share:
    <ol><li>passwords</li><li>photos<ul><li>of pupils</li></ul></li></ol>
  </li>
  <li><p>Report concerns</p><p>to the DSL</p>
  <li>Unclosed item
</ul>
<script>document.write("<p>not policy</p>")</script>
<table>
  <tr><th>Version</th><th>Date</th></tr>
  <tr><td>1<td>May&#160;2019
  <tr><td> </td><td></td></tr>
</table>
<p hidden>Draft note</p>
<footer>&copy; St Mary's</footer>
</body></html>
"""


def test_html_structure(tmp_path: Path) -> None:
    path = tmp_path / "policy.html"
    path.write_text(PAGE, encoding="utf-8")
    assert load_document(path) == [
        Block("heading", "Social Media & Online Safety", level=1),
        Block("paragraph", "Staff must not accept friend requests – ever."),
        Block("paragraph", "Text straight in the body."),
        Block("paragraph", "A div's own text"),
        Block("paragraph", "with a paragraph"),
        Block("paragraph", "Quoted guidance"),
        Block("heading", "5. Acceptable use", level=2),
        Block("list_item", "Do not share:", level=0),
        Block("list_item", "passwords", level=1),
        Block("list_item", "photos", level=1),
        Block("list_item", "of pupils", level=2),
        Block("list_item", "Report concerns to the DSL", level=0),
        Block("list_item", "Unclosed item", level=0),
        Block("table_row", "Version\tDate"),
        Block("table_row", "1\tMay 2019"),
    ]


def test_html_article_header_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "policy.htm"
    path.write_text(
        "<header>Site name</header><article><header><h1>Safeguarding</h1></header>"
        "<p>Call the DSL.</p></article><footer>Footer</footer>"
    )
    assert load_document(path) == [
        Block("heading", "Safeguarding", level=1),
        Block("paragraph", "Call the DSL."),
    ]


def test_html_inline_tags_inside_heading_and_cell(tmp_path: Path) -> None:
    path = tmp_path / "inline.html"
    path.write_text(
        "<h3><span>5.</span> <em>Use</em><br>of phones</h3>"
        "<table><tr><td><p>Line one</p><p>Line two</p></td><td><ul><li>a</li><li>b</li></ul>"
        "</td></tr></table>"
    )
    assert load_document(path) == [
        Block("heading", "5. Use of phones", level=3),
        Block("table_row", "Line one Line two\ta b"),
    ]


def test_html_with_only_scripts_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "app.html"
    path.write_text("<html><head><title>App</title></head><body><script>x()</script></body>")
    assert reason(path) == "the document has no text"
