"""Shared fixtures: one real knowledge base with the five bundled samples.

Building it takes a fraction of a second, so it is built once per session into
a pristine file. Read-only tests share one open ``KnowledgeBase`` and
``Searcher`` over a copy; tests that write get their own copy via
``sample_db_copy``, so no test can disturb another.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.sample_data import load_samples, sample_files, sample_schools
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

SAMPLE_SLUGS = ("crossflatts", "cwm-felin", "kaleidoscope", "st-annes", "st-johns")


def snapshot(kb: KnowledgeBase) -> list[str]:
    """Every row of every table (FTS shadow tables included), as SQL text."""
    return list(kb.db.conn.iterdump())


def copy_db(source: Path, target: Path) -> Path:
    """Copy a closed, checkpointed knowledge-base file."""
    shutil.copyfile(source, target)
    return target


@pytest.fixture(scope="session")
def pristine_sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed knowledge-base file holding the bundled samples. Never open it for writing."""
    path = tmp_path_factory.mktemp("pristine") / "samples.db"
    kb = KnowledgeBase(path)
    loaded = load_samples(kb)
    kb.close()
    assert loaded == len(sample_files()) == len(SAMPLE_SLUGS)
    # Closing the last connection checkpoints the WAL into the main file, so the
    # file can be copied on its own.
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM schools").fetchone()[0] == len(SAMPLE_SLUGS)
    check.close()
    return path


@pytest.fixture(scope="session")
def sample_kb(
    pristine_sample_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KnowledgeBase]:
    """The shared, read-only sample knowledge base. Tests must not write to it."""
    path = copy_db(pristine_sample_db, tmp_path_factory.mktemp("shared") / "samples.db")
    kb = KnowledgeBase(path)
    assert sorted(s.slug for s in kb.schools()) == sorted(sample_schools())
    yield kb
    kb.close()


@pytest.fixture(scope="session")
def searcher(sample_kb: KnowledgeBase) -> Searcher:
    return Searcher(sample_kb)


@pytest.fixture
def sample_db_copy(pristine_sample_db: Path, tmp_path: Path) -> Path:
    """A private copy of the sample knowledge base that a test may change."""
    return copy_db(pristine_sample_db, tmp_path / "guidebot.db")
