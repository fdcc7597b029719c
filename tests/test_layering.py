"""Imports go one way: adapters -> bot -> knowledge.

- knowledge/ never imports slack_bolt, slack_sdk, botbuilder, aiohttp, bot or adapters;
- bot/ never imports slack_bolt, slack_sdk or botbuilder, and imports adapters only
  inside functions of bot/cli.py, the composition root.

Checked by parsing the source with ast, so an import hidden under
``if TYPE_CHECKING:``, in a function, a relative import or an
``importlib.import_module("...")`` call is seen as well.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PLATFORM = {"slack_bolt", "slack_sdk", "botbuilder"}
FORBIDDEN = {
    "knowledge": PLATFORM | {"aiohttp", "adapters", "bot"},
    "bot": PLATFORM,
}
COMPOSITION_ROOT = "bot/cli.py"


@dataclass(frozen=True)
class Import:
    module: str
    line: int
    in_function: bool

    @property
    def top(self) -> str:
        return self.module.split(".")[0]


class _Imports(ast.NodeVisitor):
    def __init__(self, package: str) -> None:
        self.package = package  # the dotted package the file belongs to
        self.depth = 0
        self.found: list[Import] = []

    def _add(self, module: str, node: ast.AST) -> None:
        self.found.append(Import(module, getattr(node, "lineno", 0), self.depth > 0))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base: list[str] = []
        if node.level:
            parts = self.package.split(".")
            base = parts[: len(parts) - (node.level - 1)]
        if node.module:
            self._add(".".join([*base, node.module]), node)
        else:  # from . import x, from .. import y
            for alias in node.names:
                self._add(".".join([*base, alias.name]), node)

    def visit_Call(self, node: ast.Call) -> None:
        name = ""
        if isinstance(node.func, ast.Name):
            name = node.func.id
        elif isinstance(node.func, ast.Attribute):
            name = node.func.attr
        if (
            name in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self._add(node.args[0].value, node)
        self.generic_visit(node)


def imports_of(source: str, relative_path: str) -> list[Import]:
    package = ".".join(Path(relative_path).parts[:-1])
    visitor = _Imports(package)
    visitor.visit(ast.parse(source, filename=relative_path))
    return visitor.found


def violations(source: str, relative_path: str) -> list[str]:
    """Every import in one file that breaks the layering, as readable lines."""
    layer = Path(relative_path).parts[0]
    problems: list[str] = []
    for found in imports_of(source, relative_path):
        where = f"{relative_path}:{found.line} imports {found.module}"
        if found.top in FORBIDDEN.get(layer, set()):
            problems.append(f"{where} ({layer}/ must not import {found.top})")
        elif layer == "bot" and found.top == "adapters":
            if relative_path != COMPOSITION_ROOT:
                problems.append(f"{where} (only {COMPOSITION_ROOT} may import adapters)")
            elif not found.in_function:
                problems.append(
                    f"{where} (import adapters inside the command, not at module level)"
                )
    return problems


def source_files(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


# --- the real tree ----------------------------------------------------------------------


def test_the_layers_have_source_to_check() -> None:
    assert len(source_files("knowledge")) >= 5
    assert ROOT / COMPOSITION_ROOT in source_files("bot")


@pytest.mark.parametrize("layer", ["knowledge", "bot"])
def test_layer_imports_go_one_way(layer: str) -> None:
    problems: list[str] = []
    for path in source_files(layer):
        relative = path.relative_to(ROOT).as_posix()
        problems += violations(path.read_text(encoding="utf-8"), relative)
    assert problems == []


def test_the_cli_starts_the_console_adapter_lazily() -> None:
    """The composition root does use adapters, and only from inside functions."""
    source = (ROOT / COMPOSITION_ROOT).read_text(encoding="utf-8")
    adapters = [i for i in imports_of(source, COMPOSITION_ROOT) if i.top == "adapters"]
    assert adapters
    assert all(i.in_function for i in adapters)


# --- the checker itself catches what it should ------------------------------------------


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("knowledge/search.py", "import slack_bolt"),
        ("knowledge/search.py", "from slack_sdk.web.async_client import AsyncWebClient"),
        ("knowledge/search.py", "from botbuilder.core import ActivityHandler"),
        ("knowledge/search.py", "import aiohttp.web"),
        ("knowledge/search.py", "from bot import wording"),
        ("knowledge/search.py", "def f():\n    from adapters.console import render"),
        ("knowledge/search.py", "from ..adapters import console"),
        ("knowledge/search.py", "from .. import bot"),
        ("knowledge/search.py", "import importlib\nimportlib.import_module('slack_bolt')"),
        ("knowledge/sub/deep.py", "from ...bot import cli"),
        ("bot/answers.py", "import slack_bolt"),
        ("bot/answers.py", "def f():\n    import botbuilder.core"),
        ("bot/answers.py", "from adapters.console import render"),
        ("bot/answers.py", "def f():\n    from adapters.console import render"),
        ("bot/cli.py", "from adapters.console import render"),
        ("bot/cli.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import adapters"),
        ("bot/cli.py", "class C:\n    from adapters import console"),
        ("bot/cli.py", "from ..adapters import console"),
        ("bot/cli.py", "x = __import__('adapters.console')"),
    ],
)
def test_the_checker_flags_a_bad_import(path: str, source: str) -> None:
    assert violations(source, path)


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("knowledge/search.py", "from knowledge.store import KnowledgeBase"),
        ("knowledge/search.py", "from . import lexicon\nfrom .text import fold"),
        ("knowledge/search.py", "import sqlite_utils, rapidfuzz"),
        ("knowledge/search.py", "import botany  # not bot"),
        ("bot/answers.py", "from knowledge.search import Searcher\nimport aiohttp"),
        ("bot/cli.py", "def ask():\n    from adapters.console import render"),
        ("bot/cli.py", "async def serve():\n    import adapters.server"),
    ],
)
def test_the_checker_allows_a_good_import(path: str, source: str) -> None:
    assert violations(source, path) == []
