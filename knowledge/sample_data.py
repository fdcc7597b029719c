"""The bundled sample schools, so `make chat` works with no configuration."""

from __future__ import annotations

import tomllib
from pathlib import Path

from knowledge.ingest import ingest_files
from knowledge.store import KnowledgeBase

SAMPLES_DIR = Path(__file__).with_name("samples")


def sample_schools() -> dict[str, str]:
    """slug -> display name for every bundled sample."""
    with (SAMPLES_DIR / "schools.toml").open("rb") as handle:
        names: dict[str, str] = tomllib.load(handle)["schools"]
    return names


def sample_files() -> dict[str, Path]:
    return {path.stem: path for path in sorted(SAMPLES_DIR.glob("*.txt"))}


def load_samples(kb: KnowledgeBase, suffix_files: dict[str, Path] | None = None) -> int:
    """Ingest every sample school; returns how many schools were loaded."""
    names = sample_schools()
    files = suffix_files or sample_files()
    for slug, path in files.items():
        ingest_files(kb, slug, [path], names.get(slug))
    return len(files)


def ensure_samples(kb: KnowledgeBase) -> bool:
    """Load the samples into an empty knowledge base; True when it did."""
    if kb.schools():
        return False
    load_samples(kb)
    return True
