"""Files -> stored policies. Every file is read and checked before anything is
written, so one bad file leaves the knowledge base exactly as it was."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from knowledge.loaders import load_document
from knowledge.metadata import PolicyMetadata, extract_metadata
from knowledge.segment import Clause, document_lines, segment
from knowledge.store import IngestOutcome, KnowledgeBase
from knowledge.text import slugify


@dataclass(frozen=True)
class ParsedPolicy:
    key: str
    source_name: str
    sha256: str
    metadata: PolicyMetadata
    clauses: tuple[Clause, ...]


def parse_policy(path: Path) -> ParsedPolicy:
    """Read, segment and describe one policy file (raises DocumentError)."""
    blocks = load_document(path)
    clauses = tuple(segment(blocks))
    fallback = path.stem.replace("-", " ").replace("_", " ").strip().title() or "Policy"
    metadata = extract_metadata(document_lines(blocks), fallback)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ParsedPolicy(slugify(path.stem) or "policy", path.name, digest, metadata, clauses)


def ingest_files(
    kb: KnowledgeBase, school_slug: str, paths: Sequence[Path], school_name: str | None = None
) -> list[IngestOutcome]:
    """Parse every file first, then store them all in one transaction."""
    parsed = [parse_policy(Path(path)) for path in paths]
    with kb.db.atomic():
        school = kb.ensure_school(school_slug, school_name)
        return [
            kb.ingest(school, p.key, p.source_name, p.sha256, p.metadata, p.clauses) for p in parsed
        ]
