"""`guidebot doctor`: checks an installation and says, one line each, what is wrong.

It reads the configuration file and the environment as `guidebot serve` does,
but keeps going after the first problem, so an IT admin can fix everything in
one pass. Each line is ``ok   <what> <detail>`` or ``FAIL <setting>: <problem>``.

- Secrets are only ever shown as "set" or "missing".
- The database is opened read-only: the doctor looks, it changes nothing.
- With ``online``, each workspace's bot token is tried against Slack's
  ``auth.test``, and the team it belongs to is compared with the configured one.
  bot/ may not import slack_sdk, so this is one plain HTTPS POST, exactly as the
  Web API documents it.
- For Teams, ``online`` fetches the Bot Framework's OpenID metadata document and
  the signing keys it points to (two GETs), which ``serve`` needs to check every
  incoming message. It asks Azure for nothing: the app id and client secret can
  only be proved by sending the bot a message, and the report says so.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import tomllib
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp

from bot import config
from bot.config import ConfigError, Settings, TeamsSettings
from bot.schema import all_migrations
from bot.storage import MIGRATIONS as BOT_MIGRATIONS
from knowledge.errors import GuidebotError
from knowledge.store import MIGRATIONS as KNOWLEDGE_MIGRATIONS
from knowledge.text import slugify

SLACK_API = "https://slack.com/api/"
ONLINE_TIMEOUT = 15.0
DEFAULT_BOT_TOKEN_ENV = "SLACK_BOT_TOKEN"
SIGNING_SECRET_ENV = "SLACK_SIGNING_SECRET"
APP_TOKEN_ENV = "SLACK_APP_TOKEN"
BOT_TOKEN_PREFIX = "xoxb-"
APP_TOKEN_PREFIX = "xapp-"
APP_PASSWORD_ENV = "MICROSOFT_APP_PASSWORD"
BOT_FRAMEWORK_OPENID = "https://login.botframework.com/v1/.well-known/openidconfiguration"
EXAMPLE = "deploy/guidebot.example.toml"
TEAMS_GUIDE = "deploy/teams/README.md"
_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")  # fullmatch
# The example settings' and the Teams manifest's stand-in for every id.
PLACEHOLDER_GUID = "00000000-0000-0000-0000-000000000000"
# A well-formed [[teams.tenant]], so each [teams] setting can be checked on its own.
_STAND_IN_TENANT = {"tenant_id": "1d4f6e00-0000-4000-8000-000000000000", "school": "doctor"}

# A configuration message that starts with the setting it is about, such as
# "slack.workspace[2].team_id 'acme' does not look like ...".
_SETTING_RE = re.compile(
    r"^((?:server|slack|teams|schools|retention)(?:\[\d+\])?(?:\.[\w-]+(?:\[\d+\])?)*) (.+)$"
)
# Slack's own words for a refused token, said plainly.
_SLACK_ERRORS = {
    "invalid_auth": "the token is not valid: copy it again from the app's OAuth & Permissions page",
    "not_authed": "no token was sent",
    "account_inactive": "the token was revoked or the app was uninstalled: reinstall the app",
    "token_revoked": "the token was revoked: reinstall the app and copy the new token",
    "token_expired": "the token has expired: turn off token rotation or reinstall the app",
    "ratelimited": "Slack asked us to slow down: try again in a minute",
}

Status = Literal["ok", "FAIL", "skip"]


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    status: Status
    subject: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def line(self) -> str:
        if self.failed:
            return f"FAIL {self.subject}: {self.detail}"
        return f"{self.status:<4} {self.subject} {self.detail}".rstrip()


def _ok(subject: str, detail: str = "") -> Check:
    return Check("ok", subject, detail)


def _fail(subject: str, detail: str) -> Check:
    return Check("FAIL", subject, detail)


def _from_message(message: str) -> Check:
    """A configuration error as a check named after the setting it mentions."""
    found = _SETTING_RE.match(message)
    if found:
        return _fail(found.group(1), found.group(2))
    return _fail("config", message)


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def healthy(self) -> bool:
        return not any(check.failed for check in self.checks)

    def lines(self) -> list[str]:
        return [check.line() for check in self.checks]


@dataclass(frozen=True)
class _Workspace:
    """What the file says about one [[slack.workspace]], as far as it is readable."""

    number: int
    team_id: str | None
    school: str | None
    token_env: str | None

    @property
    def name(self) -> str:
        return f"slack.workspace[{self.number}]"


@dataclass
class _Findings:
    checks: list[Check] = field(default_factory=list)

    def add(self, check: Check) -> None:
        if check not in self.checks:
            self.checks.append(check)

    @property
    def failed(self) -> bool:
        return any(check.failed for check in self.checks)


# --- the configuration file --------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    """The file's contents, or a ConfigError naming the file and what is wrong."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"no configuration file at {path}: copy {EXAMPLE}") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a folder: give the configuration file itself") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name} is not UTF-8 text: save it again as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _text(raw: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = raw.get(key, default)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _workspaces(data: Mapping[str, Any]) -> list[_Workspace]:
    slack = data.get("slack")
    raw = slack.get("workspace") if isinstance(slack, Mapping) else None
    if not isinstance(raw, list):
        return []
    return [
        _Workspace(
            number,
            _text(item, "team_id"),
            _text(item, "school"),
            _text(item, "bot_token_env", DEFAULT_BOT_TOKEN_ENV),
        )
        for number, item in enumerate(raw, start=1)
        if isinstance(item, Mapping)
    ]


def _teams_tenants(data: Mapping[str, Any]) -> list[tuple[int, str | None]]:
    """Each readable [[teams.tenant]]: its number and its school, if given."""
    teams = data.get("teams")
    raw = teams.get("tenant") if isinstance(teams, Mapping) else None
    if not isinstance(raw, list):
        return []
    return [
        (number, _text(item, "school"))
        for number, item in enumerate(raw, start=1)
        if isinstance(item, Mapping)
    ]


def _transport(data: Mapping[str, Any]) -> str | None:
    slack = data.get("slack")
    if not isinstance(slack, Mapping):
        return None
    transport = slack.get("transport", "http")
    return transport.strip() if isinstance(transport, str) else None


def _with_stand_in_secrets(data: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """The environment with every secret present and well-formed, so checking the
    file's structure reports only the file; the secrets are checked on their own."""
    filled = dict(env)
    for workspace in _workspaces(data):
        if workspace.token_env:
            filled[workspace.token_env] = f"{BOT_TOKEN_PREFIX}doctor"
    filled[SIGNING_SECRET_ENV] = "doctor"
    filled[APP_TOKEN_ENV] = f"{APP_TOKEN_PREFIX}doctor"
    filled[APP_PASSWORD_ENV] = "doctor"
    return filled


def _structure(data: Mapping[str, Any], env: Mapping[str, str], source: Path) -> list[Check]:
    """Every problem in the file, by parsing it a part at a time with bot.config's
    own rules (which stop at the first problem)."""
    filled = _with_stand_in_secrets(data, env)
    messages: list[str] = []

    def attempt(fragment: Mapping[str, Any], rename: tuple[str, str] | None = None) -> None:
        try:
            config.parse(fragment, filled, source)
        except ConfigError as exc:
            message = str(exc)
            if rename:
                message = message.replace(*rename)
            messages.append(message)

    attempt({"server": data["server"]} if "server" in data else {})
    if "retention" in data:
        attempt({"retention": data["retention"]})
    schools = data.get("schools")
    if isinstance(schools, Mapping):
        for slug, raw in schools.items():
            attempt({"schools": {slug: raw}})
    elif schools is not None:
        attempt({"schools": schools})
    slack = data.get("slack")
    raw_workspaces = slack.get("workspace") if isinstance(slack, Mapping) else None
    if isinstance(slack, Mapping) and isinstance(raw_workspaces, list) and raw_workspaces:
        rest = {key: value for key, value in slack.items() if key != "workspace"}
        first_with: dict[str, int] = {}
        for number, raw in enumerate(raw_workspaces, start=1):
            name = f"slack.workspace[{number}]"
            attempt({"slack": {**rest, "workspace": [raw]}}, rename=("slack.workspace[1]", name))
            team_id = _text(raw, "team_id") if isinstance(raw, Mapping) else None
            if team_id is None:
                continue
            if team_id in first_with:
                messages.append(
                    f"{name}.team_id {team_id} appears twice"
                    f" (also slack.workspace[{first_with[team_id]}])"
                )
            else:
                first_with[team_id] = number
    elif slack is not None:
        attempt({"slack": slack})
    teams = data.get("teams")
    if isinstance(teams, Mapping):
        _teams_structure(teams, attempt, messages)
    elif teams is not None:
        attempt({"teams": teams})
    return [_from_message(message) for message in dict.fromkeys(messages)]


def _teams_structure(
    teams: Mapping[str, Any],
    attempt: Callable[..., None],
    messages: list[str],
) -> None:
    """Each [teams] setting and each [[teams.tenant]] on its own, with stand-ins
    for the rest, so one mistake does not hide the next."""
    stand_in = [_STAND_IN_TENANT]
    for key in ("app_id", "app_type", "openid_metadata_url"):
        if key in teams:  # app_tenant_id is checked below, with the app type
            alone = {key: teams[key], "app_tenant_id": _STAND_IN_TENANT["tenant_id"]}
            attempt({"teams": {**alone, "tenant": stand_in}})
    # The tenant id with the app type, when that is readable: SingleTenant needs one.
    app_type = _text(teams, "app_type", "MultiTenant")
    if app_type not in ("MultiTenant", "SingleTenant"):
        app_type = "MultiTenant"
    together: dict[str, Any] = {"app_type": app_type, "tenant": stand_in}
    if "app_tenant_id" in teams:
        together["app_tenant_id"] = teams["app_tenant_id"]
    attempt({"teams": together})

    for key, what in (
        ("app_id", "the bot's Microsoft App ID"),
        ("app_tenant_id", "the tenant the bot was registered in"),
    ):
        value = teams.get(key)
        if value == PLACEHOLDER_GUID:
            messages.append(f"teams.{key} is still the example's {value}: set it to {what}")

    raw_tenants = teams.get("tenant")
    if not isinstance(raw_tenants, list) or not raw_tenants:
        attempt({"teams": {"tenant": raw_tenants} if "tenant" in teams else {}})
        return
    first_with: dict[str, int] = {}
    for number, raw in enumerate(raw_tenants, start=1):
        name = f"teams.tenant[{number}]"
        attempt({"teams": {"tenant": [raw]}}, rename=("teams.tenant[1]", name))
        tenant_id = _text(raw, "tenant_id") if isinstance(raw, Mapping) else None
        if tenant_id is None:
            continue
        if tenant_id == PLACEHOLDER_GUID:
            messages.append(
                f"{name}.tenant_id is still the example's {tenant_id}: set it to the "
                "school's Microsoft 365 tenant id"
            )
        if tenant_id.casefold() in first_with:
            messages.append(
                f"{name}.tenant_id {tenant_id} appears twice"
                f" (also teams.tenant[{first_with[tenant_id.casefold()]}])"
            )
        else:
            first_with[tenant_id.casefold()] = number


def _secrets(data: Mapping[str, Any], env: Mapping[str, str]) -> list[Check]:
    """Each secret the file needs: "set" or "missing", never its value."""
    checks: list[Check] = []
    users: dict[str, list[_Workspace]] = {}
    for workspace in _workspaces(data):
        if workspace.token_env:
            users.setdefault(workspace.token_env, []).append(workspace)
    for token_env, sharing in users.items():
        which = ", ".join(w.name for w in sharing)
        checks.append(_secret(env, token_env, BOT_TOKEN_PREFIX, f"the bot token for {which}"))
        for later in sharing[1:]:
            checks.append(
                _fail(
                    f"{later.name}.bot_token_env",
                    f"{token_env} is also used by {sharing[0].name}: each workspace has its "
                    "own bot token, so give each its own environment variable",
                )
            )
    transport = _transport(data)
    if transport == "http":
        checks.append(_secret(env, SIGNING_SECRET_ENV, None, "needed for transport http"))
    elif transport == "socket":
        checks.append(_secret(env, APP_TOKEN_ENV, APP_TOKEN_PREFIX, "needed for Socket Mode"))
    checks.append(_secret_key(env))
    return checks + _teams_secret(data, env)


def _secret_key(env: Mapping[str, str]) -> Check:
    """The key that seals safeguarding reports at rest: serve refuses to start without it."""
    from bot.crypto import SecretBox

    if not env.get("GUIDEBOT_SECRET_KEY", "").strip():
        return _fail(
            "GUIDEBOT_SECRET_KEY",
            "missing (it encrypts safeguarding reports; serve refuses to start without it): "
            "make one with `guidebot keygen` and keep a copy somewhere safe",
        )
    try:
        SecretBox.from_env(env)
    except GuidebotError:
        return _fail("GUIDEBOT_SECRET_KEY", "set, but it is not a key made by `guidebot keygen`")
    return _ok("GUIDEBOT_SECRET_KEY", "set (encrypts safeguarding reports)")


def _teams_secret(data: Mapping[str, Any], env: Mapping[str, str]) -> list[Check]:
    """The Teams app id and its client secret; without an app id, a loud failure."""
    teams = data.get("teams")
    if not isinstance(teams, Mapping):
        return []
    app_id = teams.get("app_id")
    if not app_id:  # as bot.config reads it: a blank app id is no app id
        return [
            _fail(
                "teams.app_id",
                "is not set, so authentication would be off: serve refuses to start without "
                "--insecure-local, which is only for testing on your own machine (with "
                "server.host = 127.0.0.1). Set it to the bot's Microsoft App ID "
                f"(see {TEAMS_GUIDE})",
            )
        ]
    checks: list[Check] = []
    if isinstance(app_id, str) and _GUID_RE.fullmatch(app_id) and app_id != PLACEHOLDER_GUID:
        app_type = _text(teams, "app_type", "MultiTenant")
        checks.append(_ok("teams.app_id", f"{app_id} ({app_type})"))
    password = env.get(APP_PASSWORD_ENV, "").strip()
    if password and _GUID_RE.fullmatch(password):
        checks.append(
            _fail(
                APP_PASSWORD_ENV,
                "set, but it looks like the client secret's ID (a GUID), not its value: in "
                "Azure, copy the secret's Value, which is shown only once when it is made",
            )
        )
    else:
        checks.append(
            _secret(env, APP_PASSWORD_ENV, None, "the Teams bot's client secret, for teams.app_id")
        )
    return checks


def _secret(env: Mapping[str, str], name: str, prefix: str | None, purpose: str) -> Check:
    value = env.get(name, "").strip()
    if not value:
        return _fail(name, f"missing ({purpose}): set it in the environment guidebot runs in")
    if prefix and not value.startswith(prefix):
        return _fail(name, f"set, but it does not look right: it should start {prefix}")
    return _ok(name, f"set ({purpose})")


# --- the database --------------------------------------------------------------------------


def _ingest_hint(database: Path, school: str = "SLUG") -> str:
    return f"guidebot --db {database} ingest --school {school} FILE..."


def _damaged(database: Path, problems: Sequence[str]) -> Check:
    return _fail(
        "database",
        f"{database} is damaged ({'; '.join(problems)}): stop guidebot serve and put the "
        "latest backup back with guidebot restore BACKUP",
    )


def _database(database: Path, wanted: Sequence[str]) -> list[Check]:
    """The knowledge base opens, has been set up, and holds the named schools."""
    if not database.exists():
        return [
            _fail(
                "database",
                f"{database} does not exist yet: load the policies with {_ingest_hint(database)}",
            )
        ]
    if not database.is_file():
        return [_fail("database", f"{database} is a folder, not a database file")]
    try:
        uri = database.resolve().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "_migrations" not in tables or "schools" not in tables:
                return [
                    _fail(
                        "database",
                        f"{database} is not a guidebot knowledge base: load the policies "
                        f"with {_ingest_hint(database)}",
                    )
                ]
            applied = {row[0] for row in connection.execute("SELECT name FROM _migrations")}
            damage = [row[0] for row in connection.execute("PRAGMA quick_check").fetchmany(3)]
            schools = dict(connection.execute("SELECT slug, name FROM schools").fetchall())
            policies = dict(
                connection.execute("SELECT school, count(*) FROM policies GROUP BY school")
            )
    except sqlite3.DatabaseError as exc:
        if "malformed" in str(exc):
            return [_damaged(database, [str(exc)])]
        return [_fail("database", f"{database} cannot be opened as a database ({exc})")]
    if damage != ["ok"]:
        return [_damaged(database, damage)]
    newer = sorted(applied - {name for name, _step in all_migrations()})
    if newer:
        return [
            _fail(
                "database",
                f"{database} was made by a newer guidebot (it has {', '.join(newer)}): "
                "install that version again, or restore a backup made with this one",
            )
        ]
    missing = [name for name, _step in KNOWLEDGE_MIGRATIONS if name not in applied]
    if missing:
        return [
            _fail(
                "database",
                f"{database} has not been fully set up (missing {', '.join(missing)}): "
                f"any guidebot command on it finishes the job, e.g. {_ingest_hint(database)}",
            )
        ]
    checks: list[Check] = []
    if not (os.access(database, os.W_OK) and os.access(database.parent, os.W_OK)):
        checks.append(
            _fail(
                "database",
                f"{database} can be read but not written: guidebot serve records questions "
                "there, so let the user it runs as write to the file and its folder",
            )
        )
    else:
        count = len(schools)
        note = f"{database} ({count} school{'' if count == 1 else 's'})"
        if any(name not in applied for name, _step in BOT_MIGRATIONS):
            note += "; guidebot serve adds its question log on first start"
        checks.append(_ok("database", note))
    for slug in wanted:
        if slug not in schools:
            checks.append(
                _fail(
                    f"school {slug}",
                    f"named in the configuration but not in the knowledge base: load its "
                    f"policies with {_ingest_hint(database, slug)}",
                )
            )
        elif not policies.get(slug):
            checks.append(
                _fail(f"school {slug}", f"has no policies yet: {_ingest_hint(database, slug)}")
            )
        else:
            count = policies[slug]
            checks.append(
                _ok(
                    f"school {slug}",
                    f"{schools[slug]} ({count} polic{'y' if count == 1 else 'ies'})",
                )
            )
    return checks


def _sealed_sample(database: Path) -> tuple[str, str] | None:
    """One sealed value in the database and the context it was sealed under, if any."""
    try:
        uri = database.resolve().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "concerns" in tables:
                row = connection.execute("SELECT ref, content FROM concerns LIMIT 1").fetchone()
                if row is not None:
                    return str(row[1]), f"{row[0]}:content"
            if "outbox" in tables:
                row = connection.execute(
                    "SELECT dedupe_key, payload FROM outbox ORDER BY id DESC LIMIT 1"
                ).fetchone()
                if row is not None:
                    return str(row[1]), f"outbox:{row[0]}"
    except sqlite3.Error:
        return None  # the database check has said what is wrong
    return None


def _key_fits(database: Path, env: Mapping[str, str]) -> Check | None:
    """Whether the key opens what is already sealed in the database; None when that
    cannot be told (no usable key, no database, nothing sealed yet)."""
    from bot.crypto import SecretBox

    if not database.is_file():
        return None
    try:
        box = SecretBox.from_env(env)
    except GuidebotError:
        return None  # the secrets check has said what is wrong
    sample = _sealed_sample(database)
    if sample is None:
        return None
    subject = "GUIDEBOT_SECRET_KEY"
    try:
        box.open(*sample)
    except GuidebotError:
        return _fail(
            subject,
            "is not the key this database's safeguarding reports were sealed with: set "
            "the key this installation was set up with (without it they cannot be read)",
        )
    return _ok(subject, "opens the safeguarding records already stored")


def _schools_named(data: Mapping[str, Any]) -> list[str]:
    named = [slugify(w.school) for w in _workspaces(data) if w.school]
    named += [slugify(school) for _number, school in _teams_tenants(data) if school]
    schools = data.get("schools")
    if isinstance(schools, Mapping):
        named += [slugify(str(slug)) for slug in schools]
    return [slug for slug in dict.fromkeys(named) if slug]


def _database_path(data: Mapping[str, Any], env: Mapping[str, str], source: Path) -> Path | None:
    """Where the settings put the database, even if other [server] settings are wrong."""
    server = data.get("server", {})
    if not isinstance(server, Mapping):
        return None
    try:  # only the database setting: a bad port need not stop the database check
        fragment = {key: value for key, value in server.items() if key == "database"}
        return config.parse({"server": fragment}, env, source).database
    except ConfigError:
        return None


# --- Slack, online -------------------------------------------------------------------------


def api_base(api_url: str | None) -> str:
    """Slack's Web API address, ending in a slash so method names join onto it."""
    base = api_url or SLACK_API
    return base if base.endswith("/") else base + "/"


async def _auth_test(session: aiohttp.ClientSession, base: str, token: str) -> dict[str, Any]:
    async with session.post(
        base + "auth.test", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        if response.status == 429:
            return {"ok": False, "error": "ratelimited"}
        payload = await response.json(content_type=None)
    if not isinstance(payload, dict):
        raise ValueError("not a JSON object")
    return payload


async def _online(settings: Settings, workspaces: Sequence[_Workspace]) -> list[Check]:
    assert settings.slack is not None
    base = api_base(settings.slack.api_url)
    token_envs = {w.team_id: w.token_env for w in workspaces}
    timeout = aiohttp.ClientTimeout(total=ONLINE_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def check(number: int, team_id: str, token: str) -> Check:
            name = f"slack.workspace[{number}]"
            token_env = token_envs.get(team_id) or "its bot token variable"
            try:
                answer = await _auth_test(session, base, token)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                reason = str(exc) or type(exc).__name__
                return _fail(name, f"could not ask Slack at {base} ({reason})")
            if not answer.get("ok"):
                error = str(answer.get("error", "unknown error"))
                why = _SLACK_ERRORS.get(error, error)
                return _fail(name, f"Slack refused the token in {token_env}: {why} ({error})")
            belongs_to = {answer.get("team_id"), answer.get("enterprise_id")}
            team = answer.get("team") or "unnamed"
            if team_id not in belongs_to:
                return _fail(
                    f"{name}.team_id",
                    f"is {team_id}, but the token in {token_env} belongs to "
                    f"{answer.get('team_id')} ({team}): check which workspace each token "
                    "came from",
                )
            return _ok(name, f'{team_id} "{team}": Slack accepts the bot @{answer.get("user")}')

        return list(
            await asyncio.gather(
                *(
                    check(number, w.team_id, w.bot_token.reveal())
                    for number, w in enumerate(settings.slack.workspaces, start=1)
                )
            )
        )


# --- Teams, online --------------------------------------------------------------------------


async def _get_json(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as response:
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        payload = await response.json(content_type=None)
    if not isinstance(payload, dict):
        raise ValueError("not a JSON object")
    return payload


async def _teams_online(teams: TeamsSettings) -> list[Check]:
    """The Bot Framework's signing keys can be fetched; the credentials cannot be
    checked without Azure, so the report says so rather than pretend."""
    url = teams.openid_metadata_url or BOT_FRAMEWORK_OPENID
    subject = "teams.openid_metadata_url" if teams.openid_metadata_url else "teams signing keys"
    timeout = aiohttp.ClientTimeout(total=ONLINE_TIMEOUT)
    checks: list[Check] = []
    async with aiohttp.ClientSession(timeout=timeout) as session:
        step = url
        try:
            metadata = await _get_json(session, url)
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise ValueError("no jwks_uri: not an OpenID metadata document")
            step = jwks_uri
            keys = (await _get_json(session, jwks_uri)).get("keys")
            if not isinstance(keys, list) or not keys:
                raise ValueError("no signing keys in it")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            checks.append(
                _fail(
                    subject,
                    f"could not fetch {step} ({reason}): guidebot serve checks every Teams "
                    "message against the Bot Framework's signing keys, so this server must be "
                    "able to fetch them over HTTPS (check the firewall or web proxy)",
                )
            )
        else:
            count = len(keys)
            checks.append(
                _ok(
                    subject,
                    f"the Bot Framework's signing keys can be fetched from {url} "
                    f"({count} key{'' if count == 1 else 's'})",
                )
            )
    checks.append(
        Check(
            "skip",
            "teams credentials",
            "can only be checked by sending a message: once guidebot serve is running, "
            "send the bot a message in Teams",
        )
    )
    return checks


# --- all together ----------------------------------------------------------------------------


async def diagnose(
    config_path: Path | None,
    env: Mapping[str, str],
    *,
    online: bool = False,
    database: Path | None = None,
) -> Report:
    """Check everything `guidebot serve` needs; ``database`` overrides the file's."""
    path = config_path or Path(env.get("GUIDEBOT_CONFIG", config.DEFAULT_CONFIG))
    try:
        data = _read(path)
    except ConfigError as exc:
        return Report((_fail("config", str(exc)),))

    found = _Findings()
    problems = _structure(data, env, path)
    if problems:
        for problem in problems:
            found.add(problem)
    else:
        found.add(_ok("config", str(path)))
    if "slack" not in data and "teams" not in data:
        found.add(
            _fail(
                "slack or teams",
                "there is no [slack] or [teams] section, so guidebot serve has nothing to "
                f"connect to: add one or both (see {EXAMPLE})",
            )
        )
    for check in _secrets(data, env):
        found.add(check)

    settings: Settings | None = None
    try:
        settings = config.parse(data, env, path)
    except ConfigError as exc:
        if not found.failed:  # never say all is well when serve would refuse to start
            found.add(_from_message(str(exc)))

    database_path = database or _database_path(data, env, path)
    if database_path is None:
        found.add(Check("skip", "database", "not checked until the [server] settings are fixed"))
    else:
        for check in _database(database_path, _schools_named(data)):
            found.add(check)
        fits = _key_fits(database_path, env)
        if fits is not None:
            found.add(fits)

    if online:
        if "slack" in data:
            if settings is None or settings.slack is None:
                found.add(
                    Check("skip", "slack online", "not checked until the problems above are fixed")
                )
            else:
                for check in await _online(settings, _workspaces(data)):
                    found.add(check)
        if "teams" in data:
            if settings is None or settings.teams is None:
                found.add(
                    Check("skip", "teams online", "not checked until the problems above are fixed")
                )
            else:
                for check in await _teams_online(settings.teams):
                    found.add(check)
    return Report(tuple(found.checks))
