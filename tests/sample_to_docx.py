"""Turn a bundled sample policy (.txt) into the Word document a school would upload.

The sample .txt files are plain exports: paragraphs separated by blank lines,
hard-wrapped lines, "- " bullets and tab-separated tables. A school's own Word
document holds the same words as real paragraphs, bulleted list paragraphs and
tables, so converting one into the other tests that the loaders and the
segmenter find the same clauses whichever format a school uses:

* each blank-line-separated block becomes one or more paragraphs;
* a line starting with "- ", "* " or "• " becomes a "List Bullet" paragraph
  ("List Bullet 2" when indented) without its marker;
* any other line continues the paragraph before it (joined with a space) when
  that line does not end with . : ; ! ? (before any closing bracket or
  quote) - a hard wrap - and otherwise starts a new paragraph;
* lines containing tabs become table rows, consecutive ones one table.

Three refinements keep the result what Word would really hold, not an
artefact of the wrap rule: a word hyphenated across a wrap is joined without a
space ("Multi-" + "Academy" -> "Multi-Academy"; "on-" + "line" -> "online"
when the document spells it so elsewhere, as a reader would); an ALL-CAPS
heading line ("USE OF SCHOOL SITES, PAGES AND SPACES") is a paragraph of its
own; and a short "Label: value" line ("Name: ...", "Role: ...", "Date: ...")
starts a paragraph of its own.

No heading styles are used: the .txt has none either, so the segmenter must
find headings the same way in both.
"""

from __future__ import annotations

import re
from pathlib import Path

import docx
from docx.document import Document
from docx.shared import Inches

BULLET_RE = re.compile(r"^(?P<indent>\s*)[-*•]\s+(?P<text>.*)$")
SENTENCE_END = (".", ":", ";", "!", "?")
CLOSERS = ")]\"'”’*"  # "(... guidelines.)" still ends with a full stop
_HYPHEN_WRAP_RE = re.compile(r"([A-Za-z]+)-$")
_WORD_RE = re.compile(r"[A-Za-z]+")
_FIELD_RE = re.compile(r"^[A-Z][A-Za-z ]{0,20}:\s+\S")
FIELD_MAX_CHARS = 40


def _is_caps_heading(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 4 and all(ch.isupper() for ch in letters) and line[-1] not in ".;,"


def _stands_alone(line: str) -> bool:
    """A line that is a paragraph of its own in Word, whatever ends the line before."""
    return _is_caps_heading(line) or (len(line) <= FIELD_MAX_CHARS and bool(_FIELD_RE.match(line)))


def _blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = [[]]
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            blocks[-1].append(line.rstrip())
        elif blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


def _join(previous: str, line: str, vocabulary: set[str]) -> str:
    """Undo a hard wrap; a word split by a hyphen loses it when the document
    spells the whole word without one elsewhere."""
    hyphenated = _HYPHEN_WRAP_RE.search(previous)
    if hyphenated:
        tail = _WORD_RE.match(line)
        if tail and (hyphenated.group(1) + tail.group(0)).casefold() in vocabulary:
            return previous[:-1] + line
        return previous + line
    return f"{previous} {line}"


def convert_text(text: str) -> Document:
    """The Word document for one policy's text."""
    document = docx.Document()
    vocabulary = {word.casefold() for word in _WORD_RE.findall(text)}
    for block in _blocks(text):
        paragraph = None  # the paragraph a hard-wrapped line continues
        table = None  # the table consecutive tab lines add rows to
        for line in block:
            if "\t" in line:
                cells = line.split("\t")
                if table is None:
                    table = document.add_table(rows=0, cols=len(cells))
                while len(table.columns) < len(cells):
                    table.add_column(Inches(1))
                row = table.add_row()
                for cell, value in zip(row.cells, cells, strict=False):
                    cell.text = value.strip()
                paragraph = None
                continue
            table = None
            bullet = BULLET_RE.match(line)
            if bullet:
                style = "List Bullet 2" if bullet.group("indent") else "List Bullet"
                paragraph = document.add_paragraph(bullet.group("text").strip(), style=style)
            elif (
                paragraph is not None
                and not paragraph.text.rstrip(CLOSERS).endswith(SENTENCE_END)
                and not _stands_alone(paragraph.text)
                and not _stands_alone(line.strip())
            ):
                paragraph.text = _join(paragraph.text, line.strip(), vocabulary)
            else:
                paragraph = document.add_paragraph(line.strip())
    return document


def convert(source: Path, target: Path) -> Path:
    """Write ``source`` (.txt) as the Word document ``target``."""
    convert_text(source.read_text(encoding="utf-8")).save(str(target))
    return target


def convert_samples(folder: Path) -> dict[str, Path]:
    """Every bundled sample as .docx in ``folder``: slug -> path, ready for load_samples."""
    from knowledge.sample_data import sample_files

    folder.mkdir(parents=True, exist_ok=True)
    return {slug: convert(path, folder / f"{slug}.docx") for slug, path in sample_files().items()}
