"""Build real policy documents on disk for tests.

Tests need genuine .docx and .pdf files to prove the loaders read what schools
actually upload; building them here keeps binary fixtures out of the repository
and keeps every test's input visible in the test itself. PDFs are written by
hand (no new dependency) and are valid enough for pypdf to read back.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import docx
from pypdf import PdfReader, PdfWriter

DocxItem = (
    tuple[Literal["heading"], str, int]
    | tuple[Literal["paragraph"], str]
    | tuple[Literal["bullet", "number"], str, int]
    | tuple[Literal["table"], list[list[str]]]
)

_LIST_STYLES = {"bullet": "List Bullet", "number": "List Number"}


def write_docx(path: Path, items: list[DocxItem]) -> Path:
    """Write a Word document using the default template's built-in styles.

    ``("heading", text, 0)`` is the Title style; list levels 0, 1, 2 map to
    "List Bullet", "List Bullet 2", "List Bullet 3" (and likewise "List Number").
    """
    document = docx.Document()
    for item in items:
        match item:
            case ("heading", str() as text, int() as level):
                document.add_heading(text, level)
            case ("paragraph", str() as text):
                document.add_paragraph(text)
            case ("bullet" | "number" as kind, str() as text, int() as level):
                base = _LIST_STYLES[kind]
                document.add_paragraph(text, style=base if level == 0 else f"{base} {level + 1}")
            case ("table", list() as rows):
                width = max(len(row) for row in rows)
                table = document.add_table(rows=len(rows), cols=width)
                for row, values in zip(table.rows, rows, strict=True):
                    for cell, value in zip(row.cells, values, strict=False):
                        cell.text = value
            case _:
                raise ValueError(f"unknown docx item {item!r}")
    document.save(str(path))
    return path


def _pdf_string(text: str) -> bytes:
    """Encode one line as a PDF literal string in WinAnsi, escaping ( ) and \\."""
    raw = text.encode("cp1252")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _text_content(lines: list[str]) -> bytes:
    """A content stream drawing each line in 11pt Helvetica, top to bottom."""
    ops = []
    for index, line in enumerate(lines):
        if line:
            y = 760 - 14 * index
            ops.append(b"BT /F1 11 Tf 72 %d Td " % y + _pdf_string(line) + b" Tj ET")
    return b"\n".join(ops)


def pdf_bytes(contents: list[bytes]) -> bytes:
    """Assemble a minimal PDF with one page per content stream.

    Object layout: 1 catalog, 2 page tree, 3 Helvetica font, then a page object
    and its content stream for each page. The xref offsets are computed from the
    bytes actually written, so the file needs no repair when read.
    """
    page_ids = [4 + 2 * index for index in range(len(contents))]
    kids = b" ".join(b"%d 0 R" % page_id for page_id in page_ids)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(contents)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for page_id, content in zip(page_ids, contents, strict=True):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


def write_pdf(path: Path, pages: list[list[str]]) -> Path:
    """Write a text PDF: one page per list, one drawn line per entry ("" leaves a gap)."""
    path.write_bytes(pdf_bytes([_text_content(lines) for lines in pages]))
    return path


def write_encrypted_pdf(path: Path, lines: list[str], password: str = "secret") -> Path:
    """Write a one-page PDF that needs a user password to open (RC4, no extra dependency)."""
    reader = PdfReader(io.BytesIO(pdf_bytes([_text_content(lines)])))
    writer = PdfWriter(clone_from=reader)
    writer.encrypt(user_password=password, algorithm="RC4-128")
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def write_image_only_pdf(path: Path) -> Path:
    """Write a PDF whose only page is a filled rectangle: what a scan looks like to a loader."""
    path.write_bytes(pdf_bytes([b"0 0 100 100 re f"]))
    return path
