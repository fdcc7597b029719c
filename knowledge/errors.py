"""The root exception every boundary converts into a kind, one-line message."""

from __future__ import annotations

from pathlib import Path


class GuidebotError(Exception):
    """Anything guidebot can explain to a person in one line."""


class DocumentError(GuidebotError):
    """A policy file that cannot be read; names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


class UnknownSchoolError(GuidebotError):
    """A school slug that the knowledge base does not hold."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(f"no school called {slug!r} in this knowledge base")
