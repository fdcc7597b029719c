"""The shape every loader produces and segmentation consumes.

Loaders keep whatever structure the format really carries (Word heading styles,
HTML list items) and hand plain text over as ``text`` blocks for segmentation to
interpret line by line, so one set of heuristics serves .txt, .md and .pdf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["text", "heading", "paragraph", "list_item", "table_row"]


@dataclass(frozen=True)
class Block:
    """One unit of a document as its format presents it.

    kind:
        ``text``: raw lines (hard wraps, bullets, numbering untouched) that
        segmentation must interpret; ``heading``: a heading the format marks;
        ``paragraph``: one paragraph the format marks; ``list_item``: one list
        item the format marks; ``table_row``: cells joined by tabs.
    level:
        heading level (1 = top) or list nesting depth (0 = outermost).
    page:
        1-based page number when the format has pages (PDF), else ``None``.
    """

    kind: BlockKind
    text: str
    level: int = 0
    page: int | None = None
