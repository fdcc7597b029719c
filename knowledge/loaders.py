"""Read a policy file (.txt .md .docx .pdf .html) into blocks of clean text.

Loaders keep only the structure a format really marks (Word styles, HTML tags)
and pass plain text through as ``text`` blocks, so segmentation applies one set
of heuristics to every plain-text source. Every failure becomes a
``DocumentError`` with a reason an IT admin can act on; no library exception
escapes, because the CLI and chat can only explain guidebot's own errors.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from knowledge.blocks import Block, BlockKind
from knowledge.errors import DocumentError

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".docx", ".pdf", ".html", ".htm"})

NO_TEXT = "the document has no text"
_SUFFIX_HINT = "use .txt, .md, .docx, .pdf or .html"


def load_document(path: Path) -> list[Block]:
    """Return the blocks of one policy file, or raise DocumentError saying why not."""
    path = Path(path)
    if not path.exists():
        raise DocumentError(path, "file not found")
    if not path.is_file():
        raise DocumentError(path, "not a file")
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        kind = f"file type {suffix}" if suffix else "file without an extension"
        raise DocumentError(path, f"unsupported {kind}; {_SUFFIX_HINT}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(path, f"the file could not be read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise DocumentError(path, NO_TEXT)
    blocks = loader(path, data)
    if not blocks:
        raise DocumentError(path, NO_TEXT)
    return blocks


# -- shared text clean-up -------------------------------------------------------------

_NEWLINES = str.maketrans(
    {"\r": "\n", "\v": "\n", "\x85": "\n", "\u2028": "\n", "\f": "\n\n", "\u2029": "\n\n"}
)
# Invisible characters that split words for search, and spaces that only stop line breaks.
_CLEAN = str.maketrans(
    {
        **dict.fromkeys(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]),
        **dict.fromkeys(["\u00a0", "\u202f", "\u2007"], " "),
        # Stray C0 controls (not tab/newline) break storage and display.
        **dict.fromkeys([chr(c) for c in range(32) if chr(c) not in "\t\n"]),
        "\x7f": None,
    }
)


def clean_text(text: str) -> str:
    """NFC text with newlines as \\n, no invisible characters and plain spaces.

    Form feeds (page breaks) become blank lines so they separate groups.
    """
    text = text.replace("\r\n", "\n").translate(_NEWLINES).translate(_CLEAN)
    return unicodedata.normalize("NFC", text)


def _one_line(text: str) -> str:
    """Clean text with every run of whitespace (tabs, line breaks) as one space."""
    return " ".join(clean_text(text).split())


def _line_groups(lines: list[str]) -> Iterator[str]:
    """Yield each blank-line-separated run of lines, right-stripped and joined by \\n."""
    group: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            group.append(line.rstrip())
        elif group:
            yield "\n".join(group)
            group = []


def _decode(path: Path, data: bytes) -> str:
    """Decode a text file the way Windows-using schools save them.

    UTF-16 needs its BOM; otherwise UTF-8 (with or without BOM), falling back to
    Windows-1252, which is what Notepad and older Office exports produce.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(path, "not a text file") from exc
    if b"\x00" in data:
        raise DocumentError(path, "not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


# -- .txt and .md ---------------------------------------------------------------------


def _load_txt(path: Path, data: bytes) -> list[Block]:
    """One ``text`` block per paragraph; segmentation reads bullets and numbering."""
    lines = clean_text(_decode(path, data)).split("\n")
    return [Block("text", group) for group in _line_groups(lines)]


_MD_RULE = re.compile(r"^ {0,3}([-*_])(?:\s*\1){2,}\s*$")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_MD_NOT_SETEXT = re.compile(r"\s*([#>|]|[-*+]\s|\d+[.)]\s)")  # headings, quotes, lists
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_MD_LINK_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S+.*$")
_MD_QUOTE = re.compile(r"^\s*(?:>\s?)+")
_MD_BULLET = re.compile(r"^(\s*)[*+](\s+)")
_MD_ATX_CLOSE = re.compile(r"^(\s*#{1,6}\s.*?)\s+#+\s*$")
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_MD_INLINE = [
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # [label](url), ![alt](src)
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [label][ref]
    (re.compile(r"<((?:https?://|mailto:)[^>\s]+|[^>\s@]+@[^>\s]+)>"), r"\1"),  # <autolink>
    (re.compile(r"`([^`\n]+)`"), r"\1"),
    (re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*"), r"\1"),
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), r"\1"),
    (re.compile(r"(?<![\w*])__(?=\S)(.+?)(?<=\S)__(?![\w])"), r"\1"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), r"\1"),
]


def _md_inline(line: str) -> str:
    """Strip emphasis, links and code markup; backslash-escaped characters stay literal."""
    line = _MD_ESCAPE.sub(lambda m: chr(0xE000 + ord(m.group(1))), line)
    for pattern, replacement in _MD_INLINE:
        line = pattern.sub(replacement, line)
    return re.sub("[\ue021-\ue07e]", lambda m: chr(ord(m.group()) - 0xE000), line)


def _md_table_row(line: str) -> str | None:
    """A pipe-table row as tab-separated cells ("" for the |---| rule), else None."""
    stripped = line.strip()
    if not stripped.startswith("|"):
        return None
    if set(stripped) <= set("|-: ") and "-" in stripped:
        return ""
    cells = re.split(r"(?<!\\)\|", stripped.strip("|"))
    return "\t".join(cell.strip().replace("\\|", "|") for cell in cells)


def _md_lines(text: str) -> list[str]:
    """Rewrite markdown lines into the plain-text conventions segmentation reads.

    Headings stay as "#" lines (setext underlines become "#"/"##"), bullets
    become "-", tables become tab-separated cells and rules become blank lines.
    """
    out: list[str] = []
    plain_before = False  # whether out[-1] is a text line a setext underline can promote
    for line in text.split("\n"):
        row = _md_table_row(line)
        underline = _MD_SETEXT.match(line)
        if row is not None:
            out.extend([row] if row else [])
        elif underline and plain_before:
            out[-1] = f"{'#' if '=' in underline.group(1) else '##'} {out[-1].strip()}"
        elif _MD_RULE.match(line) or _MD_FENCE.match(line) or _MD_LINK_DEF.match(line):
            out.append("")
        else:
            line = _MD_BULLET.sub(r"\1-\2", _MD_QUOTE.sub("", line))
            out.append(_md_inline(_MD_ATX_CLOSE.sub(r"\1", line)))
            plain_before = bool(out[-1].strip()) and not _MD_NOT_SETEXT.match(out[-1])
            continue
        plain_before = False
    return out


def _load_md(path: Path, data: bytes) -> list[Block]:
    """Markdown as plain text blocks, with inline markup removed."""
    lines = _md_lines(clean_text(_decode(path, data)))
    return [Block("text", group) for group in _line_groups(lines)]


# -- .pdf -----------------------------------------------------------------------------

_PAGE_NUMBER = re.compile(
    r"(?:page\s*[|:]?\s*)?[-–—]?\s*\d+\s*[-–—]?(?:\s*(?:of|/)\s*\d+)?", re.IGNORECASE
)
_EDGE = 2  # how many lines at each end of a page can be a running header or footer


def _load_pdf(path: Path, data: bytes) -> list[Block]:
    """Text blocks per page, without running headers, footers and page numbers."""
    pages = [clean_text(text).split("\n") for text in _pdf_page_texts(path, data)]
    if not any(line.strip() for lines in pages for line in lines):
        raise DocumentError(
            path, "the PDF has no selectable text (it looks like a scanned image); run OCR on it"
        )
    return [
        Block("text", group, page=number)
        for number, lines in enumerate(_strip_running_lines(pages), start=1)
        for group in _line_groups(lines)
    ]


def _pdf_page_texts(path: Path, data: bytes) -> list[str]:
    """Extract each page's text with pypdf, turning its exceptions into DocumentError."""
    from pypdf import PasswordType, PdfReader

    if b"%PDF-" not in data[:1024]:
        raise DocumentError(path, "not a valid PDF")
    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = bool(reader.is_encrypted)
    except Exception as exc:
        raise DocumentError(path, "not a valid PDF") from exc
    if encrypted:
        # Many published policies carry only an owner password (no printing or
        # copying); those open with an empty user password and read normally.
        try:
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except Exception as exc:
            raise DocumentError(path, "the PDF is password-protected") from exc
        if not opened:
            raise DocumentError(path, "the PDF is password-protected")
    try:
        pages = list(reader.pages)
    except Exception as exc:
        raise DocumentError(path, "not a valid PDF") from exc
    texts = []
    for number, page in enumerate(pages, start=1):
        try:
            texts.append(page.extract_text() or "")
        except Exception as exc:
            raise DocumentError(path, f"page {number} of the PDF could not be read") from exc
    return texts


def _line_key(line: str) -> str:
    """Compare header/footer lines ignoring spacing, case and the numbers that change."""
    return re.sub(r"\d+", "#", " ".join(line.split())).casefold()


def _edge_indexes(lines: list[str]) -> list[int]:
    """Indexes of the first and last few non-empty lines: where headers and footers sit."""
    filled = [index for index, line in enumerate(lines) if line.strip()]
    return sorted(set(filled[:_EDGE] + filled[-_EDGE:]))


def _strip_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Drop lines repeated at the top or bottom of most pages, and bare page numbers.

    A line counts as running when it sits at an edge of at least half the pages
    (and at least two); it is removed only where it sits at an edge, so the
    same words in the body survive.
    """
    seen = Counter(
        key for lines in pages for key in {_line_key(lines[i]) for i in _edge_indexes(lines)}
    )
    needed = max(2, math.ceil(len(pages) / 2))
    running = {key for key, count in seen.items() if count >= needed}
    result = []
    for lines in pages:
        drop = {
            index
            for index in _edge_indexes(lines)
            if _line_key(lines[index]) in running or _PAGE_NUMBER.fullmatch(lines[index].strip())
        }
        result.append([line.strip() for index, line in enumerate(lines) if index not in drop])
    return result


# -- .docx ----------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_HEADING_STYLE = re.compile(r"heading (\d)", re.IGNORECASE)
_LIST_STYLE_LEVEL = re.compile(r"list\b.*?(\d)\s*$", re.IGNORECASE)
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_RUN_TEXT = (f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr")
# Text boxes are left out: Word stores each one twice (DrawingML and a VML
# fallback) and its text does not belong to the paragraph that anchors it.
_NOT_PARAGRAPH_TEXT = frozenset(
    {f"{_W}txbxContent", f"{_MC}Fallback", f"{_W}del", f"{_W}moveFrom", f"{_W}pPr"}
)


def _load_docx(path: Path, data: bytes) -> list[Block]:
    """Headings, list items, paragraphs and table rows in document order."""
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        return list(_docx_blocks(document, document.element.body))
    except Exception as exc:
        raise DocumentError(path, "not a valid Word document") from exc


def _docx_blocks(document: Any, container: Any) -> Iterator[Block]:
    """Walk body children in order, entering content controls but not a table of contents."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in container.iterchildren():
        if child.tag == f"{_W}p":
            block = _docx_paragraph(Paragraph(child, document))
            if block is not None:
                yield block
        elif child.tag == f"{_W}tbl":
            yield from _docx_table(Table(child, document))
        elif child.tag == f"{_W}sdt" and not _is_contents(child):
            for content in child.iterchildren(f"{_W}sdtContent"):
                yield from _docx_blocks(document, content)


def _is_contents(sdt: Any) -> bool:
    """Whether a content control is Word's table of contents (noise for search)."""
    gallery = sdt.find(f"{_W}sdtPr/{_W}docPartObj/{_W}docPartGallery")
    return gallery is not None and "contents" in str(gallery.get(f"{_W}val", "")).lower()


def _paragraph_text(p: Any) -> str:
    """A paragraph's visible text, including hyperlinks and tracked insertions.

    python-docx's ``Paragraph.text`` reads only direct runs and hyperlinks, so it
    misses text inside insertions, content controls, smart tags and simple fields.
    """
    parts = []
    for node in p.iter(*_RUN_TEXT):
        if node.getparent().tag != f"{_W}r" or _outside_text(node, p):
            continue
        parts.append(node.text or "" if node.tag == f"{_W}t" else " ")
    return _one_line("".join(parts))


def _outside_text(node: Any, p: Any) -> bool:
    """Whether ``node`` sits in a part of ``p`` that is not its visible text."""
    for ancestor in node.iterancestors():
        if ancestor is p:
            return False
        if ancestor.tag in _NOT_PARAGRAPH_TEXT:
            return True
    return False


def _in_body(p: Any) -> bool:
    """Whether a paragraph is document text rather than the inside of a text box."""
    return not any(ancestor.tag == f"{_W}txbxContent" for ancestor in p.iterancestors())


def _style_chain(style: Any) -> Iterator[Any]:
    """The paragraph's style and the styles it is based on, nearest first."""
    while style is not None:
        yield style
        style = style.base_style


def _docx_paragraph(paragraph: Any) -> Block | None:
    """Classify one paragraph by its style and numbering; None when it has no text."""
    text = _paragraph_text(paragraph._p)
    if not text:
        return None
    styles = list(_style_chain(paragraph.style))
    names = [style.name or "" for style in styles]
    if any(name.startswith("TOC") or name.lower().startswith("toc ") for name in names):
        return None
    for name in names:
        if name == "Title":
            return Block("heading", text, level=1)
        if heading := _HEADING_STYLE.fullmatch(name):
            return Block("heading", text, level=int(heading.group(1)))
    level = _list_level(paragraph._p.pPr, styles, names[0])
    if level is not None:
        return Block("list_item", text, level=level)
    return Block("paragraph", text)


def _list_level(ppr: Any, styles: list[Any], name: str) -> int | None:
    """A paragraph's list depth, or None when it is not a list item.

    Its own numbering level wins; then the digit in "List Bullet 2" (Word gives
    each such style its own list, always at level 0); then numbering a custom
    style carries, as in a "Policy Clause" style with automatic numbers.
    """
    own = _numbering_level(ppr)
    if own is not None:
        return own
    if name.startswith("List"):
        digit = _LIST_STYLE_LEVEL.search(name)
        return int(digit.group(1)) - 1 if digit else 0
    for style in styles:
        inherited = _numbering_level(style.element.pPr)
        if inherited is not None:
            return inherited
    return None


def _numbering_level(ppr: Any) -> int | None:
    """The list level that w:numPr gives a paragraph, or None when it is not numbered."""
    numpr = None if ppr is None else ppr.numPr
    if numpr is None:
        return None
    if numpr.numId is not None and numpr.numId.val == 0:
        return None  # numId 0 explicitly switches numbering off
    return int(numpr.ilvl.val) if numpr.ilvl is not None else 0


def _docx_table(table: Any) -> Iterator[Block]:
    """One ``table_row`` per non-empty row; a merged cell contributes its text once."""
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:
                continue
            previous = cell._tc
            texts = (_paragraph_text(p) for p in cell._tc.iter(f"{_W}p") if _in_body(p))
            cells.append(" ".join(filter(None, texts)))
        if any(cells):
            yield Block("table_row", "\t".join(cells))


# -- .html ----------------------------------------------------------------------------

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_SKIP = frozenset({"script", "style", "head", "title", "nav", "noscript", "template", "svg"})
_CHROME = frozenset({"header", "footer"})  # site chrome, unless inside the article itself
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_CELLS = frozenset({"td", "th"})
_BLOCK = frozenset(
    {
        *("p", "div", "blockquote", "pre", "address", "center", "form", "fieldset"),
        *("section", "article", "main", "aside", "body", "html", "details", "summary"),
        *("dl", "dt", "dd", "figure", "figcaption", "caption"),
        *("ul", "ol", "li", "table", "tr", "td", "th"),
        *_HEADINGS,
    }
)


@dataclass
class _Frame:
    """One open element: the block kind it gives its text, and how it is treated."""

    tag: str
    kind: BlockKind | None = None
    level: int = 0
    skip: bool = False  # its text is not policy text (scripts, navigation)
    inline: bool = False  # it sits inside a block that stays whole (a heading, cell or item)


class _HtmlBlocks(HTMLParser):
    """Turn HTML into blocks with a stack of open elements.

    Text is flushed as a block whenever a block-level element starts or ends,
    so a nested list emits its parent item's own text first. Inside a heading
    or table cell every tag is inline, and inside a list item paragraphs are,
    so each of those stays one block.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._stack: list[_Frame] = []
        self._text: list[str] = []
        self._row: list[str] | None = None

    def _find(self, *tags: str) -> int:
        """Index of the innermost open, non-inline element named one of ``tags``, or -1."""
        for index in range(len(self._stack) - 1, -1, -1):
            frame = self._stack[index]
            if frame.tag in tags and not frame.inline:
                return index
        return -1

    def _flush(self, closing: _Frame | None = None) -> None:
        """Emit the pending text as a block of the innermost element that gives a kind.

        ``closing`` is the element just popped, whose own kind still applies.
        """
        text = _one_line("".join(self._text))
        self._text = []
        frames = [*self._stack, closing] if closing is not None else self._stack
        kinds = ((f.kind, f.level) for f in reversed(frames) if f.kind is not None)
        kind, level = next(kinds, ("paragraph", 0))  # text straight in <body> is a paragraph
        if text:
            self.blocks.append(Block(kind, text, level=level))

    def _close_to(self, index: int) -> None:
        while len(self._stack) > index:
            self._end(self._stack.pop())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self._text.append(" ")
            return
        hidden = any(name == "hidden" for name, _ in attrs)
        chrome = tag in _CHROME and self._find("article", "main") < 0
        if hidden or chrome or tag in _SKIP or any(f.skip for f in self._stack):
            self._stack.append(_Frame(tag, skip=True))
            return
        self._implied_close(tag)
        keep_whole = self._find(*_HEADINGS, *_CELLS) >= 0 or (
            tag not in ("ul", "ol", "li", "table") and tag not in _HEADINGS and self._in_item()
        )
        if keep_whole or tag not in _BLOCK:
            if tag in _BLOCK:
                self._text.append(" ")
            self._stack.append(_Frame(tag, inline=True))
            return
        self._flush()
        if tag in _HEADINGS:
            self._stack.append(_Frame(tag, "heading", _HEADINGS[tag]))
        elif tag == "li":
            depth = sum(1 for frame in self._stack if frame.tag in ("ul", "ol"))
            self._stack.append(_Frame(tag, "list_item", max(depth - 1, 0)))
        elif tag in ("ul", "ol", "table", "tr", *_CELLS):
            self._row = [] if tag == "tr" else self._row
            self._stack.append(_Frame(tag))
        else:
            self._stack.append(_Frame(tag, "paragraph"))

    def _in_item(self) -> bool:
        """Whether the innermost list-related element is an open list item."""
        return self._find("li") > self._find("ul", "ol", "table")

    def _implied_close(self, tag: str) -> None:
        """Close elements HTML lets authors leave open (<li>, <p>, <td>, <tr>)."""
        if tag in ("td", "th", "tr"):
            cell = self._find(*_CELLS)
            if cell >= 0 and not any(f.tag == "table" for f in self._stack[cell + 1 :]):
                self._close_to(cell)
        if tag == "tr" and self._find("tr") > self._find("table"):
            self._close_to(self._find("tr"))
        if tag == "li" and self._find("li") > self._find("ul", "ol"):
            self._close_to(self._find("li"))
        top = self._stack[-1] if self._stack else None
        if tag in _BLOCK and top is not None and top.tag == "p" and not top.inline:
            self._close_to(len(self._stack) - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index].tag == tag:
                self._close_to(index)
                return

    def _end(self, frame: _Frame) -> None:
        """Emit whatever the element just popped from the stack completes."""
        if frame.skip:
            return
        if frame.inline:
            if frame.tag in _BLOCK:
                self._text.append(" ")
        elif frame.tag in _CELLS and self._row is not None:
            self._row.append(_one_line("".join(self._text)))
            self._text = []
        elif frame.tag == "tr":
            self._text = []
            if self._row is not None and any(self._row):
                self.blocks.append(Block("table_row", "\t".join(self._row)))
            self._row = None
        else:
            self._flush(frame)

    def handle_data(self, data: str) -> None:
        if not any(frame.skip for frame in self._stack):
            self._text.append(data)

    def finish(self) -> list[Block]:
        """Close the parser and anything the document left open."""
        self.close()
        self._close_to(0)
        self._flush()
        return self.blocks


def _load_html(path: Path, data: bytes) -> list[Block]:
    """Headings, list items, paragraphs and table rows from an HTML page."""
    parser = _HtmlBlocks()
    text = _decode(path, data)
    try:
        parser.feed(text)
        return parser.finish()
    except Exception as exc:  # html.parser is lenient; this guards against surprises
        raise DocumentError(path, "not a valid HTML page") from exc


_LOADERS: dict[str, Callable[[Path, bytes], list[Block]]] = {
    ".txt": _load_txt,
    ".md": _load_md,
    ".docx": _load_docx,
    ".pdf": _load_pdf,
    ".html": _load_html,
    ".htm": _load_html,
}
