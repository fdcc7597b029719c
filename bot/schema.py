"""Every table guidebot keeps, brought up to date in one call.

Each module that owns tables has a ``MIGRATIONS`` tuple of named steps (see
``knowledge.store.run_migrations``) and runs it when it is constructed. That
is enough while one process creates every service, but an upgraded
installation must have *all* its tables moved forward at start, before any
request arrives, and ``guidebot doctor``, ``backup`` and ``restore`` need to
know what a complete, current database looks like. So the modules are listed
here, in the order their tables were introduced.

A new module with tables adds one line to ``SCHEMA_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import sqlite_utils

from knowledge.store import run_migrations

Migration = tuple[str, Callable[[sqlite_utils.Database], None]]

SCHEMA_MODULES: tuple[str, ...] = (
    "knowledge.store",
    "bot.storage",
    "bot.outbox",
    "bot.concerns",
    "bot.directory",
    "bot.broadcasts",
    "bot.reminders",
    "bot.training",
    "bot.scheduler",
)
"""Modules with a ``MIGRATIONS`` tuple, oldest first. Append new ones."""


def all_migrations(modules: Sequence[str] = SCHEMA_MODULES) -> list[Migration]:
    """Every named migration of every module, in the order they run."""
    steps: list[Migration] = []
    for name in modules:
        steps.extend(importlib.import_module(name).MIGRATIONS)
    return steps


def migrate_all(db: sqlite_utils.Database, modules: Sequence[str] = SCHEMA_MODULES) -> list[str]:
    """Apply every migration not yet applied, module by module; return their names.
    Safe to run at any time: applied steps are skipped."""
    applied: list[str] = []
    for name in modules:
        applied += run_migrations(db, importlib.import_module(name).MIGRATIONS)
    return applied


def pending(applied: set[str], modules: Sequence[str] = SCHEMA_MODULES) -> list[str]:
    """The migrations a database that has ``applied`` still needs."""
    return [name for name, _step in all_migrations(modules) if name not in applied]
