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
        if outcome.replaced_version is not None:
            _print_policy_changes(kb, outcome.policy.school, outcome.policy.key)


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


@cli.group(invoke_without_command=True, context_settings=CONTEXT)
@click.option("--school", help="The school's short name (slug).")
@click.pass_context
def policies(ctx: click.Context, school: str | None) -> None:
    """List a school's policies with their dates and contact.

    Example: guidebot policies --school kaleidoscope
    """
    if ctx.invoked_subcommand is not None:
        return
    if not school:
        raise click.UsageError("Missing option '--school'.", ctx)
    from bot.directory import Directory
    from bot.reminders import Reviews
    from bot.school_hours import SchoolHours

    kb = _open(ctx)
    reviews = {
        r.policy_id: r
        for r in Reviews(kb.db, Directory(kb.db), None, lambda _: SchoolHours()).reviews(
            kb.school(school).slug
        )
    }
    for policy in kb.policies(school):
        review = reviews.get(policy.id)
        set_by_hand = review is not None and review.source == "set"
        click.echo(f"{policy.title}  [policy key: {policy.key}, version {policy.version}]")
        click.echo(f"  source:        {policy.source_name}")
        for label, value in (
            ("adopted", policy.adopted),
            ("last reviewed", policy.last_reviewed),
            ("next review", review.next_review if review else policy.next_review),
        ):
            shown = value.isoformat() if value else "not stated"
            if label == "next review" and set_by_hand:
                shown += " (set with set-review)"
            click.echo(f"  {label + ':':<14} {shown}")
        click.echo(f"  {'contact:':<14} {policy.contact or 'not stated'}")
        owner = policy.owner or "not stated"
        if review is not None and review.owner_email:
            owner = f"{review.owner_email} (set with set-review)"
        click.echo(f"  {'owner:':<14} {owner}")
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
    if not os.environ.get("GUIDEBOT_LOG_LEVEL"):
        logging.getLogger().setLevel(logging.INFO)  # a server says when it starts and stops
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


# --- data care (issue 7) -------------------------------------------------------------------


def _care_database(ctx: click.Context, config_path: Path | None) -> Path:
    """The database serve uses (--db, GUIDEBOT_DB, else server.database in the settings)."""
    from bot.datacare import locate_database

    return locate_database(config_path, dict(os.environ), _db_override(ctx))


@cli.command()
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace TARGET if it already exists.")
@CONFIG_OPTION
@click.pass_context
def backup(ctx: click.Context, target: Path, force: bool, config_path: Path | None) -> None:
    """Copy the database to TARGET while the server runs (SQLite's online backup).

    The copy is one consistent snapshot, checked with PRAGMA integrity_check
    and readable by you only. Safeguarding reports in it stay encrypted: keep
    GUIDEBOT_SECRET_KEY somewhere else, never beside the backups.

    Example: guidebot backup /var/backups/guidebot/guidebot-$(date +%F).db
    """
    from bot.datacare import backup as make_backup

    result = make_backup(_care_database(ctx, config_path), target, force=force)
    click.echo(result.line())


@cli.command()
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@CONFIG_OPTION
@click.pass_context
def restore(ctx: click.Context, backup_file: Path, config_path: Path | None) -> None:
    """Put a backup made by `guidebot backup` back in place of the database.

    Stop guidebot serve first (restore refuses while the database is in use).
    The database it replaces is kept beside it as NAME.before-restore-TIME, and
    the restored one is brought up to this version's schema.

    Example: guidebot restore /var/backups/guidebot/guidebot-2026-03-01.db
    """
    from bot.datacare import restore as put_back

    result = put_back(backup_file, _care_database(ctx, config_path))
    for line in result.lines():
        click.echo(line)


@cli.command(name="forget-user")
@click.option(
    "--platform",
    required=True,
    type=click.Choice(["slack", "teams", "console"]),
    help="Where the person uses guidebot.",
)
@click.option(
    "--user",
    "user_id",
    required=True,
    help="Their id there: a Slack member id (U...) or their Microsoft 365 object id.",
)
@click.option("--school", help="Only their records for this school (default: every school).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@CONFIG_OPTION
@click.pass_context
def forget_user(
    ctx: click.Context,
    platform: str,
    user_id: str,
    school: str | None,
    dry_run: bool,
    config_path: Path | None,
) -> None:
    """Erase a member of staff's questions and feedback (a data-protection request).

    Their unanswered questions go; answered ones stay only as anonymous counts
    (the words and the link to them are erased); their feedback and how to
    message them go. Safeguarding reports are never erased here: they follow
    the school's child-protection retention. Prints what was removed and kept.

    Example: guidebot forget-user --platform slack --user U0123ABCDEF --dry-run
    """
    from bot.datacare import Subject
    from bot.datacare import forget_user as forget
    from knowledge.store import KnowledgeBase
    from knowledge.text import slugify

    database = _care_database(ctx, config_path)
    if not database.is_file():
        raise CliError(f"there is no database at {database}")
    kb = KnowledgeBase(database)
    ctx.call_on_close(kb.close)
    subject = Subject(platform, user_id.strip(), slugify(school) if school else None)
    for line in forget(kb.db, subject, dry_run=dry_run).lines():
        click.echo(line)


@cli.command(name="retention-sweep")
@CONFIG_OPTION
@click.pass_context
def retention_sweep(ctx: click.Context, config_path: Path | None) -> None:
    """Remove the records older than the [retention] settings allow, now.

    The server does this on its own schedule; this is for running it by hand
    after changing the settings. Safe to run at any time.

    Example: guidebot retention-sweep --config /etc/guidebot/guidebot.toml
    """
    from datetime import UTC, datetime

    from bot import retention
    from knowledge.store import KnowledgeBase

    settings = _settings(ctx, config_path)
    if not settings.database.is_file():
        raise CliError(f"there is no database at {settings.database}")
    kb = KnowledgeBase(settings.database)
    ctx.call_on_close(kb.close)
    counts = retention.sweep(kb.db, settings.retention, datetime.now(UTC))
    click.echo(
        "removed " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
    )


# --- the staff directory and broadcasts (broadcast core) -------------------------------------


def _people_line(person: Any) -> str:
    linked = {True: "linked", False: "not linked"}
    groups = ", ".join(sorted(person.groups)) or "no groups"
    left = "" if person.active else "  (left)"
    return (
        f"{person.name} <{person.email}>  roles: {', '.join(sorted(person.roles))}  "
        f"groups: {groups}  Slack: {linked[bool(person.slack_user_id)]}  "
        f"Teams: {linked[bool(person.teams_user_id)]}{left}"
    )


@cli.group(context_settings=CONTEXT)
def staff() -> None:
    """The staff directory: who works at each school, their roles and groups.

    Broadcasts go to the people in it, and only its leaders may send them.

    Example: guidebot staff import --school st-annes staff.csv
    """


@staff.command(name="import")
@click.option("--school", required=True, help="The school's short name (slug).")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def staff_import(ctx: click.Context, school: str, file: Path) -> None:
    """Make the school's staff directory match a CSV file (all or nothing).

    The first row names the columns: name, email, roles, groups (optionally
    slack_id and teams_id). Roles: staff, leader, dsl, deputy_dsl, hr, head;
    several are separated by ";". People missing from the file are marked as
    having left. A file with any bad line changes nothing, and the error names
    the line. Save it from Excel as "CSV UTF-8".

    Example: guidebot staff import --school st-annes staff.csv
    """
    from bot import wording
    from bot.directory import Directory

    kb = _open(ctx)
    slug = kb.school(school).slug
    summary = Directory(kb.db).import_csv(slug, file)
    click.echo(
        wording.staff_import_summary(
            summary.added, summary.updated, summary.unchanged, summary.left
        )
    )


@staff.command(name="list")
@click.option("--school", required=True, help="The school's short name (slug).")
@click.option("--group", "groups", multiple=True, help="Only people in this group (repeatable).")
@click.option("--role", "roles", multiple=True, help="Only people with this role (repeatable).")
@click.option("--left", "include_left", is_flag=True, help="Include people who have left.")
@click.pass_context
def staff_list(
    ctx: click.Context,
    school: str,
    groups: tuple[str, ...],
    roles: tuple[str, ...],
    include_left: bool,
) -> None:
    """List the school's staff: email, roles, groups, and whether guidebot can
    reach them on Slack and Teams.

    Example: guidebot staff list --school st-annes --role leader
    """
    from bot.directory import Directory

    kb = _open(ctx)
    slug = kb.school(school).slug
    people = Directory(kb.db).people(slug, groups=groups, roles=roles, include_left=include_left)
    for person in people:
        click.echo(_people_line(person))
    click.echo(f"{len(people)} {'person' if len(people) == 1 else 'people'}")


@staff.command(name="sync")
@click.option("--school", required=True, help="The school's short name (slug).")
@CONFIG_OPTION
@click.pass_context
def staff_sync(ctx: click.Context, school: str, config_path: Path | None) -> None:
    """Find each member of staff's Slack id from their email, once.

    Asks Slack (users.lookupByEmail, with the bot token of the school's
    workspace) about everyone in the staff directory with no Slack id yet, and
    prints how many were found, are not in Slack, and failed. Failures (a rate
    limit, Slack unavailable) are simply tried again next time. Needs the
    settings file and the users:read.email scope (deploy/slack/manifest.yml).

    Example: guidebot staff sync --school st-annes --config /etc/guidebot/guidebot.toml
    """
    from adapters.slack.app import make_web_client
    from adapters.slack.directory_sync import school_token, sync_school
    from bot.directory import Directory
    from knowledge.store import KnowledgeBase

    settings = _settings(ctx, config_path)
    if settings.slack is None:
        raise CliError(f"{settings.source}: there is no [slack] section, so no Slack to ask")
    if not settings.database.is_file():
        raise CliError(f"there is no database at {settings.database}")
    kb = KnowledgeBase(settings.database)
    ctx.call_on_close(kb.close)
    slug = kb.school(school).slug
    token = school_token(settings.slack, slug)
    if token is None:
        raise CliError(f"no Slack workspace in {settings.source} answers for {slug}")

    async def sync() -> Any:
        client = make_web_client(settings.slack.api_url if settings.slack else None)
        return await sync_school(Directory(kb.db), client, slug, token)

    summary = asyncio.run(sync())
    click.echo(
        f"{slug}: {summary.resolved} found in Slack, {summary.not_found} not found, "
        f"{summary.failed} failed (tried again next time)"
    )


@cli.group(context_settings=CONTEXT)
def broadcast() -> None:
    """Leaders' broadcasts: who has read them, and policy changes to announce.

    Broadcasts are sent from Slack (/broadcast) or the Teams broadcast card.

    Example: guidebot broadcast status --school st-annes
    """


def _status_lines(status: Any, *, names: int | None) -> list[str]:
    when = status.dispatched_at or status.send_at
    lines = [f"#{status.id} {status.title}  [{status.state} {when[:16]} by {status.author}]"]
    counts = f"  sent to {status.recipients}, delivered {status.delivered}"
    if status.requires_ack:
        counts += f", acknowledged {status.acknowledged}, reminders {status.chasers}"
    lines.append(counts)
    for label, listed in (
        ("not yet acknowledged", status.outstanding),
        ("unreachable", status.unreachable),
    ):
        if listed:
            shown = listed if names is None else listed[:names]
            more = f" and {len(listed) - len(shown)} more" if len(listed) > len(shown) else ""
            lines.append(f"  {label} ({len(listed)}): {', '.join(shown)}{more}")
    return lines


@broadcast.command(name="status")
@click.option("--school", required=True, help="The school's short name (slug).")
@click.option("--id", "broadcast_id", type=int, help="One broadcast, with everyone outstanding.")
@click.pass_context
def broadcast_status(ctx: click.Context, school: str, broadcast_id: int | None) -> None:
    """Show the school's recent broadcasts: sent, delivered, acknowledged, and
    who has not acknowledged yet.

    Example: guidebot broadcast status --school st-annes --id 3
    """
    from bot.broadcasts import BroadcastRecords

    kb = _open(ctx)
    slug = kb.school(school).slug
    records = BroadcastRecords(kb.db)
    if broadcast_id is not None:
        found = records.status(broadcast_id)
        if found is None or found.school != slug:
            raise CliError(f"there is no broadcast #{broadcast_id} at {slug}")
        statuses, names = [found], None
    else:
        statuses, names = records.recent(slug), 10
    if not statuses:
        click.echo(f"no broadcasts at {slug} yet")
    for status in statuses:
        for line in _status_lines(status, names=names):
            click.echo(line)


@broadcast.command(name="changes")
@click.option("--school", required=True, help="The school's short name (slug).")
@click.option("--policy", "key", help="One policy's key (see `guidebot policies`).")
@click.pass_context
def broadcast_changes(ctx: click.Context, school: str, key: str | None) -> None:
    """Print the ready-made broadcast for each changed policy not yet announced.

    With --policy, the changes in that policy's latest version, announced or not.

    Example: guidebot broadcast changes --school st-annes --policy social-media
    """
    from bot.policy_changes import draft_from, pending_offers, policy_changes

    kb = _open(ctx)
    slug = kb.school(school).slug
    if key is not None:
        found = policy_changes(kb, slug, key)
        if found is None:
            raise CliError(f"{key} at {slug} has only one version: there is nothing to compare")
        offers = [found]
    else:
        offers = pending_offers(kb, slug)
    if not offers:
        click.echo(f"no changed policies at {slug} are waiting to be announced")
    for number, changes in enumerate(offers):
        draft = draft_from(changes)
        if number:
            click.echo("")
        click.echo(changes.summary())
        click.echo(f"Title: {draft.title}")
        click.echo(draft.message)


def _print_policy_changes(kb: Any, school: str, key: str) -> None:
    """After a re-ingest: what changed, and how to tell staff."""
    from bot import wording
    from bot.policy_changes import policy_changes

    changes = policy_changes(kb, school, key)
    if changes is not None:
        click.echo(f"  {changes.summary()} {wording.policy_changes_how_to_send(school, key)}")


# --- reminders, training and the weekly digest (issue 6: reminders/digest/scheduler) ---------


def _schedule(ctx: click.Context, config_path: Path | None) -> tuple[Any, Path]:
    """The timed-work settings and the database: from the settings file when there
    is one (--config, $GUIDEBOT_CONFIG or ./guidebot.toml), else the defaults and --db."""
    from bot.config import DEFAULT_CONFIG
    from bot.scheduler import ScheduleSettings

    if config_path or os.environ.get("GUIDEBOT_CONFIG") or Path(DEFAULT_CONFIG).is_file():
        settings = _settings(ctx, config_path)
        return settings.schedule, settings.database
    return ScheduleSettings(), Path(ctx.obj["db"])


def _open_at(ctx: click.Context, database: Path) -> Any:
    from knowledge.store import KnowledgeBase

    kb = KnowledgeBase(database)
    ctx.call_on_close(kb.close)
    return kb


@policies.command(name="set-review")
@click.option("--school", required=True, help="The school's short name (slug).")
@click.option(
    "--policy", "key", required=True, help="The policy's key, as `guidebot policies` shows it."
)
@click.option(
    "--date",
    "when",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The next review date, YYYY-MM-DD.",
)
@click.option("--owner", help="The email of whoever reviews it (from the staff directory).")
@click.pass_context
def set_review(ctx: click.Context, school: str, key: str, when: Any, owner: str | None) -> None:
    """Set a policy's next review date (and its owner), for reminders.

    The owner is reminded 28 and 7 days before, on the day and weekly while
    overdue. Works for a policy whose document states no date; a new version of
    the document that states its own date takes over again.

    Example: guidebot policies set-review --school st-annes --policy e-safety --date 2027-03-16
    """
    from bot.directory import Directory
    from bot.reminders import Reviews
    from bot.school_hours import SchoolHours

    kb = _open(ctx)
    slug = kb.school(school).slug
    reviews = Reviews(kb.db, Directory(kb.db), None, lambda _: SchoolHours())
    review = reviews.set_review(slug, key.strip(), when.date(), owner)
    who = review.owner_email or review.owner_text or "the head (no owner named)"
    assert review.next_review is not None
    click.echo(f"{review.title}: next review {review.next_review.isoformat()}, owner {who}")


@cli.group(context_settings=CONTEXT)
def training() -> None:
    """Staff training: import completions and see who is due.

    Example: guidebot training list --school st-annes --due
    """


def _training(ctx: click.Context, config_path: Path | None) -> Any:
    from bot.directory import Directory
    from bot.training import Training

    schedule, database = _schedule(ctx, config_path)
    kb = _open_at(ctx, database)
    return kb, Training(kb.db, Directory(kb.db), None, schedule.hours_for, schedule.training)


@training.command(name="import")
@click.option("--school", required=True, help="The school's short name (slug).")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@CONFIG_OPTION
@click.pass_context
def training_import(ctx: click.Context, school: str, file: Path, config_path: Path | None) -> None:
    """Import training completions from a CSV: email,course,completed_on.

    course is a course id (or title) from the catalogue; completed_on is
    2026-09-01 or 01/09/2026. All or nothing: a bad row changes nothing and
    the error names its line. Rows already imported are skipped.

    Example: guidebot training import --school st-annes completions.csv
    """
    from knowledge.text import slugify

    _, service = _training(ctx, config_path)
    summary = service.import_csv(slugify(school), file)
    click.echo(f"Training: {summary.added} completions added, {summary.already} already recorded.")


@training.command(name="list")
@click.option("--school", required=True, help="The school's short name (slug).")
@click.option("--due", is_flag=True, help="Only training running out within 30 days or overdue.")
@CONFIG_OPTION
@click.pass_context
def training_list(ctx: click.Context, school: str, due: bool, config_path: Path | None) -> None:
    """List each person's training, when it runs out and whether it is due.

    Example: guidebot training list --school st-annes --due
    """
    from knowledge.text import slugify

    _, service = _training(ctx, config_path)
    slug = slugify(school)
    today = service.hours(slug).today(service.clock())
    labels = {"current": "ok", "due": "due soon", "expired": "OVERDUE", "missing": "NO RECORD"}
    shown = 0
    for item in service.status(slug, today):
        if due and item.state == "current":
            continue
        completed = item.completed_on.isoformat() if item.completed_on else "-"
        expires = item.expires_on.isoformat() if item.expires_on else "-"
        click.echo(
            f"{item.person.name} <{item.person.email}>  {item.course.id}  "
            f"completed {completed}  runs out {expires}  {labels[item.state]}"
        )
        shown += 1
    if not shown:
        click.echo("nobody's training is due" if due else f"nobody is in {slug}'s staff directory")


@cli.command()
@click.option("--school", required=True, help="The school's short name (slug).")
@click.option("--preview", is_flag=True, help="Print the digest instead of sending it.")
@click.option(
    "--week-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Any day of the week to report (default: last week).",
)
@CONFIG_OPTION
@click.pass_context
def digest(
    ctx: click.Context,
    school: str,
    preview: bool,
    week_of: Any,
    config_path: Path | None,
) -> None:
    """Print the weekly HR digest for a school.

    `guidebot serve` sends it each week (default Monday 08:00) to the
    school's HR people or channel; --preview shows what it says.

    Example: guidebot digest --school st-annes --preview --week-of 2026-11-16
    """
    from bot.broadcasts import BroadcastRecords
    from bot.digest import Digests
    from bot.directory import Directory
    from bot.reminders import Reviews
    from bot.training import Training

    if not preview:
        raise CliError(
            "the digest is sent by `guidebot serve` each week; use --preview to print it here"
        )
    schedule, database = _schedule(ctx, config_path)
    from knowledge.text import slugify

    kb = _open_at(ctx, database)
    slug = slugify(school)
    directory = Directory(kb.db)
    hours = schedule.hours_for
    digests = Digests(
        kb.db,
        directory,
        None,
        Reviews(kb.db, directory, None, hours),
        Training(kb.db, directory, None, hours, schedule.training),
        hours,
        schedule.digest,
        broadcasts=BroadcastRecords(kb.db, directory=directory),
    )
    if slug not in digests.schools():
        raise CliError(f"there is no school {school!r} in {database} (no policies and no staff)")
    click.echo(digests.preview(slug, week_of.date() if week_of else None).text)


def _configure_logging() -> None:
    """Warnings and errors to stderr (GUIDEBOT_LOG_LEVEL to change), as text on a
    terminal and JSON lines otherwise (bot.logs). Libraries that narrate a broken
    file ("EOF marker not found") are quietened: our own one-line error says it."""
    from bot.logs import configure_logging

    configure_logging()


def main() -> None:
    _configure_logging()
    cli(prog_name="guidebot")
