"""The `guidebot` command: the contract for operations and evaluation.

Every GuidebotError becomes one line on stderr and exit code 2. The CLI is
the composition root, so it is the one place in bot/ that may start an
adapter (the console chat); it imports it lazily, inside the command.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from bot.ask import ask_payload
from knowledge.errors import GuidebotError

if TYPE_CHECKING:
    from bot.config import Settings

DEFAULT_DB = "guidebot.db"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class CliError(click.ClickException):
    """A GuidebotError at the command line: one line, exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"guidebot: {self.format_message()}", err=True)


class GuidebotGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GuidebotError as exc:
            raise CliError(str(exc)) from exc


def _searcher(kb: Any) -> Any:
    """A Searcher with the school's own lexicon files, if GUIDEBOT_LEXICON names any
    (several are separated by the platform's path separator, ':' on Linux)."""
    from knowledge.search import Searcher

    extra = [Path(p) for p in os.environ.get("GUIDEBOT_LEXICON", "").split(os.pathsep) if p]
    for path in extra:
        if not path.is_file():
            raise CliError(f"GUIDEBOT_LEXICON names {path}, which is not a file")
    return Searcher(kb, extra)


def _open(ctx: click.Context) -> Any:
    from knowledge.store import KnowledgeBase

    kb = KnowledgeBase(ctx.obj["db"])
    ctx.call_on_close(kb.close)
    return kb


@click.group(cls=GuidebotGroup, context_settings=CONTEXT)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GUIDEBOT_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="The knowledge-base file (or set GUIDEBOT_DB).",
)
@click.pass_context
def cli(ctx: click.Context, db: Path) -> None:
    """guidebot: answers staff questions from the school's own policies.

    Example: guidebot ask --school st-johns "can I accept a friend request from an ex-pupil?"
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


@cli.command()
@click.option("--school", required=True, help="The school's short name (slug).")
@click.option("--name", help="The school's display name, e.g. \"St John's Primary School\".")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def ingest(ctx: click.Context, school: str, name: str | None, files: Sequence[Path]) -> None:
    """Load policy documents (.txt .md .docx .pdf .html) for a school.

    Every file is checked before anything is stored: if one cannot be read,
    nothing changes. Re-ingesting a policy replaces it and keeps the old version.

    Example: guidebot ingest --school st-johns --name "St John's" social-media.docx
    """
    from knowledge.ingest import ingest_files

    kb = _open(ctx)
    for outcome in ingest_files(kb, school, list(files), name):
        state = "unchanged" if outcome.unchanged else f"version {outcome.policy.version}"
        review = (
            outcome.policy.next_review.isoformat() if outcome.policy.next_review else "none stated"
        )
        click.echo(
            f"{outcome.policy.source_name}: {outcome.policy.title} "
            f"({outcome.clauses} clauses, {state}, next review {review})"
        )


@cli.command()
@click.option("--school", required=True, help="The school's short name (slug).")
@click.option("--top", "top_k", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per question).")
@click.option(
    "--batch",
    type=click.File("r", encoding="utf-8"),
    help="A file of questions, one per line (- for stdin); needs --json.",
)
@click.argument("question", required=False)
@click.pass_context
def ask(
    ctx: click.Context,
    school: str,
    top_k: int,
    as_json: bool,
    batch: Any,
    question: str | None,
) -> None:
    """Answer a question from a school's policies.

    Example: guidebot ask --school st-annes --json "can I add a past pupil on facebook?"
    """
    from adapters.console import render
    from bot.answers import Answerer

    if batch is not None and not as_json:
        raise CliError("--batch needs --json")
    if batch is None and not question:
        raise CliError("give a QUESTION, or --batch FILE with --json")
    kb = _open(ctx)
    searcher = _searcher(kb)
    answerer = Answerer(kb, searcher, None)  # composes only: `ask` records nothing
    kb.school(school)
    questions = [line.strip() for line in batch if line.strip()] if batch else [question or ""]
    for text in questions:
        result = searcher.search(school, text, top_k)
        if as_json:
            click.echo(json.dumps(ask_payload(result), ensure_ascii=False))
        else:
            click.echo(render(answerer.compose(result, "console")))


@cli.command()
@click.option("--school", help="The school to answer for (default: the first one).")
@click.pass_context
def chat(ctx: click.Context, school: str | None) -> None:
    """Chat in the terminal. With no knowledge base yet, loads the bundled samples.

    When input is piped, answers each line and exits.

    Example: printf 'can I post photos of pupils?\\n' | guidebot chat --school st-annes
    """
    from adapters.console import run_console
    from bot import wording
    from knowledge.sample_data import ensure_samples, sample_files

    kb = _open(ctx)
    interactive = sys.stdin.isatty()
    if ensure_samples(kb):
        click.echo(wording.samples_loaded(len(sample_files())), err=not interactive)
    slug = school or kb.schools()[0].slug
    kb.school(slug)
    lines = _prompted_lines() if interactive else sys.stdin
    asyncio.run(
        run_console(
            kb, _searcher(kb), slug, lines, sys.stdout, interactive, _console_concerns(ctx, kb)
        )
    )


def _console_concerns(ctx: click.Context, kb: Any) -> Any:
    """The console's /concern service, or None (with the reason on stderr) when its
    key cannot be used, so that questions can still be answered."""
    from adapters.console import console_concerns

    try:
        return console_concerns(kb.db, Path(ctx.obj["db"]).resolve().parent)
    except GuidebotError as exc:
        click.echo(f"guidebot: /concern is not available: {exc}", err=True)
        return None


def _prompted_lines() -> Any:
    while True:
        try:
            yield input("you> ")
        except (EOFError, KeyboardInterrupt):
            return


@cli.command()
@click.option("--school", required=True, help="The school's short name (slug).")
@click.pass_context
def policies(ctx: click.Context, school: str) -> None:
    """List a school's policies with their dates and contact.

    Example: guidebot policies --school kaleidoscope
    """
    kb = _open(ctx)
    for policy in kb.policies(school):
        click.echo(f"{policy.title}  [{policy.key}, version {policy.version}]")
        click.echo(f"  source:        {policy.source_name}")
        for label, value in (
            ("adopted", policy.adopted),
            ("last reviewed", policy.last_reviewed),
            ("next review", policy.next_review),
        ):
            click.echo(f"  {label + ':':<14} {value.isoformat() if value else 'not stated'}")
        click.echo(f"  {'contact:':<14} {policy.contact or 'not stated'}")
        click.echo(f"  {'owner:':<14} {policy.owner or 'not stated'}")
        click.echo(f"  {'clauses:':<14} {len(kb.clauses(policy.id))}")


@cli.command(name="eval")
@click.argument("items_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--quiet", is_flag=True, help="Only the scores, not the questions missed.")
def evaluate_command(items_file: Path, quiet: bool) -> None:
    """Score an evaluation set (JSON lines) against the bundled sample policies.

    Example: guidebot eval ../shared/eval/dev.jsonl
    """
    from bot.evaluation import evaluate, read_items
    from knowledge.sample_data import load_samples, sample_files
    from knowledge.store import KnowledgeBase

    items = read_items(items_file)
    with tempfile.TemporaryDirectory() as scratch:
        kb = KnowledgeBase(Path(scratch) / "eval.db")
        load_samples(kb, sample_files())
        report = evaluate(_searcher(kb), items)
        kb.close()
    for line in report.lines():
        click.echo(line)
    if not quiet and report.wrong:
        click.echo(f"\n{len(report.wrong)} to look at:")
        for line in report.wrong:
            click.echo(f"  {line}")


CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="The settings file (default: $GUIDEBOT_CONFIG, else ./guidebot.toml).",
)


def _db_override(ctx: click.Context) -> Path | None:
    """The database named with `guidebot --db` on the command line, which wins over
    the settings file; GUIDEBOT_DB is already applied by the settings themselves."""
    root = ctx.find_root()
    if root.get_parameter_source("db") is ParameterSource.COMMANDLINE:
        return Path(root.params["db"])
    return None


def _settings(ctx: click.Context, config_path: Path | None) -> Settings:
    from bot import config

    settings = config.load(config_path)
    override = _db_override(ctx)
    return dataclasses.replace(settings, database=override) if override else settings


@cli.command()
@CONFIG_OPTION
@click.option(
    "--insecure-local",
    is_flag=True,
    help="For local testing only (the Bot Framework Emulator on this machine, with "
    "server.host = 127.0.0.1): turns off Teams authentication, so anyone who can reach "
    "the server can talk to the bot as anyone. Never use it on a real server.",
)
@click.pass_context
def serve(ctx: click.Context, config_path: Path | None, insecure_local: bool) -> None:
    """Connect to Slack and Microsoft Teams and answer staff until stopped (Ctrl+C).

    Reads the settings file and the secrets in the environment (see
    deploy/guidebot.example.toml); run `guidebot doctor` first to check them.
    Starts with a [slack] section, a [teams] section, or both. A [teams]
    section without teams.app_id is refused unless --insecure-local is given.

    Example: guidebot serve --config /etc/guidebot/guidebot.toml
    """
    settings = _settings(ctx, config_path)
    if settings.slack is None and settings.teams is None:
        raise CliError(
            f"{settings.source}: there is no [slack] or [teams] section, so there is nothing "
            "to connect to: add one or both (see deploy/guidebot.example.toml)"
        )
    server = importlib.import_module("adapters.server")
    try:
        server.serve(settings, insecure_local=insecure_local)
    except KeyboardInterrupt:
        click.echo("guidebot: stopped", err=True)


@cli.command()
@CONFIG_OPTION
@click.option(
    "--online",
    is_flag=True,
    help="Also ask Slack whether each bot token works, and check that the Bot Framework's "
    "signing keys can be fetched for Teams.",
)
@click.pass_context
def doctor(ctx: click.Context, config_path: Path | None, online: bool) -> None:
    """Check the settings, secrets, database and schools, one line each.

    Exits 0 when all is well and 2 when anything needs fixing. Secrets are
    shown only as "set" or "missing", never their values.

    Example: guidebot doctor --config /etc/guidebot/guidebot.toml --online
    """
    from bot.doctor import diagnose

    report = asyncio.run(
        diagnose(config_path, dict(os.environ), online=online, database=_db_override(ctx))
    )
    for line in report.lines():
        click.echo(line)
    if not report.healthy:
        ctx.exit(2)


@cli.command()
def keygen() -> None:
    """Print a new key for encrypting safeguarding reports.

    The key goes to standard output; one line of advice goes to standard
    error. Store the key as GUIDEBOT_SECRET_KEY in the service's environment,
    and keep a copy somewhere safe: without it the reports cannot be read.

    Example: guidebot keygen > /etc/guidebot/secret-key && chmod 600 /etc/guidebot/secret-key
    """
    from bot import wording
    from bot.crypto import generate_key

    click.echo(generate_key())
    click.echo(wording.keygen_advice(), err=True)


@cli.group(context_settings=CONTEXT)
def concerns() -> None:
    """Safeguarding concerns: export a report for the school's records.

    Example: guidebot concerns export C-2026-0042 --by slack:U0123ABCDEF --out C-2026-0042.md
    """


@concerns.command(name="export")
@click.argument("ref")
@click.option(
    "--by",
    "by",
    required=True,
    metavar="PERSON",
    help="Who is exporting, as a person key (slack:U..., teams:<object id>). It must be "
    "one of the people the report was sent to; the export is recorded in its audit trail.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
    help="Markdown to read or attach; JSON for a recording system such as CPOMS or MyConcern.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this new file (readable by you only) instead of standard output.",
)
@CONFIG_OPTION
@click.pass_context
def export_concern(
    ctx: click.Context,
    ref: str,
    by: str,
    fmt: str,
    out: Path | None,
    config_path: Path | None,
) -> None:
    """Export one safeguarding report with its whole chronology.

    Prints (or writes to --out) the report, its acknowledgement, escalations,
    notes, closure and audit trail. Needs GUIDEBOT_SECRET_KEY and the settings
    file (for the database). Anyone not sent the report is refused, and the
    attempt is recorded.

    Example: guidebot concerns export C-2026-0042 --by slack:U0123ABCDEF --format json --out c.json
    """
    from bot import wording
    from bot.concerns import Concerns, Person
    from bot.crypto import SecretBox
    from bot.outbox import Outbox
    from knowledge.store import KnowledgeBase

    settings = _settings(ctx, config_path)
    person = Person.parse(by.strip())
    box = SecretBox.from_env(os.environ)
    if not settings.database.is_file():
        raise CliError(f"there is no database at {settings.database}")
    if out is not None and out.exists():
        raise CliError(f"{out} already exists: choose a new file name, or remove it first")
    kb = KnowledgeBase(settings.database)
    ctx.call_on_close(kb.close)
    service = Concerns(
        kb.db, box, lambda slug: settings.school(slug).safeguarding, Outbox(kb.db, box)
    )
    text = service.export(ref.strip(), person, "json" if fmt == "json" else "markdown")
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CliError(f"cannot create {out}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(wording.concern_export_written(ref.strip(), str(out)), err=True)


def _configure_logging() -> None:
    """Warnings and errors to stderr. Libraries that narrate a broken file
    ("EOF marker not found") are quietened: our own one-line error says it."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("pypdf", "docx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def main() -> None:
    _configure_logging()
    cli(prog_name="guidebot")
