"""Settings: guidebot.toml for what may be written down, the environment for secrets.

Every problem is found at start, with a message naming the setting, and every
secret is wrapped so it never appears in a log line, a traceback or `doctor`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.broadcasts import BroadcastSettings, parse_broadcast_settings
from bot.retention import RetentionSettings
from bot.retention import parse as parse_retention
from bot.scheduler import ScheduleSettings, parse_schedule
from knowledge.errors import GuidebotError
from knowledge.text import slugify

DEFAULT_CONFIG = "guidebot.toml"
Transport = Literal["http", "socket"]


class ConfigError(GuidebotError):
    """A setting is missing or wrong; the message names it."""


class Secret:
    """A secret value that prints as asterisks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class SlackWorkspace:
    team_id: str
    school: str
    bot_token: Secret


@dataclass(frozen=True)
class SlackSettings:
    transport: Transport
    workspaces: tuple[SlackWorkspace, ...]
    signing_secret: Secret | None
    app_token: Secret | None
    api_url: str | None = None
    """Only for tests and proxies: where the Slack Web API lives."""

    def workspace(self, team_id: str | None) -> SlackWorkspace | None:
        return next((w for w in self.workspaces if w.team_id == team_id), None)


@dataclass(frozen=True)
class TeamsTenant:
    tenant_id: str
    school: str


@dataclass(frozen=True)
class TeamsSettings:
    """The Teams bot. With no app id, botbuilder accepts anonymous requests, so
    the server refuses to start unless told --insecure-local (local testing only)."""

    app_id: str | None
    app_password: Secret | None
    app_type: Literal["MultiTenant", "SingleTenant"]
    app_tenant_id: str | None
    tenants: tuple[TeamsTenant, ...]
    openid_metadata_url: str | None = None
    """Only for tests: where the Bot Framework's signing keys are published."""

    @property
    def authenticated(self) -> bool:
        return bool(self.app_id)

    def tenant(self, tenant_id: str | None) -> TeamsTenant | None:
        wanted = (tenant_id or "").casefold()
        return next((t for t in self.tenants if t.tenant_id.casefold() == wanted), None)


@dataclass(frozen=True)
class SafeguardingSettings:
    """Who handles a school's safeguarding concerns, as person keys
    ("slack:U0123", "teams:<object id>"), and how patiently."""

    dsl: tuple[str, ...] = ()
    deputies: tuple[str, ...] = ()
    headteacher: tuple[str, ...] = ()
    chair_of_governors: tuple[str, ...] = ()
    lado: str | None = None
    """The Local Authority Designated Officer's contact, shown with allegations."""
    show_content_in_alert: bool = False
    """False (the default): alerts carry only a 'View' button, like recording systems."""
    ack_minutes: int = 30
    urgent_ack_minutes: int = 10


@dataclass(frozen=True)
class SchoolSettings:
    slug: str
    policy_contact_slack: str | None = None
    """Slack user id of the person unanswered questions can be passed to."""
    policy_contact_teams: str | None = None
    """That person's Microsoft 365 object id (a GUID), for Teams. They must have
    the app installed (guidebot can only message people it has met)."""
    safeguarding: SafeguardingSettings = field(default_factory=SafeguardingSettings)


@dataclass(frozen=True)
class Settings:
    database: Path
    host: str = "0.0.0.0"
    port: int = 3000
    slack: SlackSettings | None = None
    teams: TeamsSettings | None = None
    schools: Mapping[str, SchoolSettings] = field(default_factory=dict)
    source: Path | None = None
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    """School hours, training catalogue and digest (bot.scheduler)."""
    broadcasts: BroadcastSettings = field(default_factory=BroadcastSettings)

    def school(self, slug: str) -> SchoolSettings:
        return self.schools.get(slug) or SchoolSettings(slug)


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}{key} must be a table, like [{where}{key}]")
    return value


def _string(data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise ConfigError(f"{where}{key} is missing")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}{key} must be a non-empty string")
    return value.strip()


def _school(data: Mapping[str, Any], where: str) -> str:
    """A school's short name, as `guidebot ingest --school` would store it."""
    typed = _string(data, "school", where)
    slug = slugify(typed)
    if not slug:
        raise ConfigError(f"{where}school {typed!r} needs letters or digits (e.g. st-annes)")
    return slug


def _secret(env: Mapping[str, str], name: str, purpose: str) -> Secret:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set ({purpose})")
    return Secret(value)


def _slack(data: Mapping[str, Any], env: Mapping[str, str]) -> SlackSettings | None:
    if "slack" not in data:
        return None
    slack = _table(data, "slack", "")
    transport = _string(slack, "transport", "slack.", "http")
    if transport not in ("http", "socket"):
        raise ConfigError(f'slack.transport must be "http" or "socket", not {transport!r}')
    raw_workspaces = slack.get("workspace", [])
    if not isinstance(raw_workspaces, list) or not raw_workspaces:
        raise ConfigError(
            "slack.workspace is missing: add a [[slack.workspace]] with team_id and school"
        )
    workspaces: list[SlackWorkspace] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_workspaces, start=1):
        where = f"slack.workspace[{number}]."
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where[:-1]} must be a table")
        team_id = _string(raw, "team_id", where)
        if not team_id.startswith(("T", "E")):
            raise ConfigError(
                f"{where}team_id {team_id!r} does not look like a Slack team id (T...)"
            )
        if team_id in seen:
            raise ConfigError(f"{where}team_id {team_id} appears twice")
        seen.add(team_id)
        token_env = _string(raw, "bot_token_env", where, "SLACK_BOT_TOKEN")
        token = _secret(env, token_env, f"the bot token for Slack workspace {team_id}")
        if not token.reveal().startswith("xoxb-"):
            raise ConfigError(f"{token_env} does not look like a Slack bot token (xoxb-...)")
        workspaces.append(SlackWorkspace(team_id, _school(raw, where), token))
    signing_secret = app_token = None
    if transport == "http":
        signing_secret = _secret(env, "SLACK_SIGNING_SECRET", "needed for slack.transport = http")
    else:
        app_token = _secret(env, "SLACK_APP_TOKEN", "needed for slack.transport = socket")
        if not app_token.reveal().startswith("xapp-"):
            raise ConfigError("SLACK_APP_TOKEN does not look like an app-level token (xapp-...)")
    api_url = slack.get("api_url")
    if api_url is not None and not isinstance(api_url, str):
        raise ConfigError("slack.api_url must be a string")
    return SlackSettings(
        transport,  # type: ignore[arg-type]  # checked against the two values above
        tuple(workspaces),
        signing_secret,
        app_token,
        api_url,
    )


_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _teams(data: Mapping[str, Any], env: Mapping[str, str]) -> TeamsSettings | None:
    if "teams" not in data:
        return None
    teams = _table(data, "teams", "")
    app_id = teams.get("app_id") or None
    if app_id is not None and (not isinstance(app_id, str) or not _GUID_RE.fullmatch(app_id)):
        raise ConfigError("teams.app_id must be the bot's Microsoft App ID (a GUID), or left out")
    app_type = _string(teams, "app_type", "teams.", "MultiTenant")
    if app_type not in ("MultiTenant", "SingleTenant"):
        raise ConfigError(
            f'teams.app_type must be "MultiTenant" or "SingleTenant", not {app_type!r}'
        )
    app_tenant_id = teams.get("app_tenant_id") or None
    if app_type == "SingleTenant" and not app_tenant_id:
        raise ConfigError("teams.app_tenant_id is missing (needed when app_type is SingleTenant)")
    if app_tenant_id is not None and (
        not isinstance(app_tenant_id, str) or not _GUID_RE.fullmatch(app_tenant_id)
    ):
        raise ConfigError("teams.app_tenant_id must be a tenant id (a GUID)")
    password = (
        _secret(
            env, "MICROSOFT_APP_PASSWORD", "the Teams bot's client secret, needed with teams.app_id"
        )
        if app_id
        else None
    )
    raw_tenants = teams.get("tenant", [])
    if not isinstance(raw_tenants, list) or not raw_tenants:
        raise ConfigError(
            "teams.tenant is missing: add a [[teams.tenant]] with tenant_id and school"
        )
    tenants: list[TeamsTenant] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_tenants, start=1):
        where = f"teams.tenant[{number}]."
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where[:-1]} must be a table")
        tenant_id = _string(raw, "tenant_id", where)
        if not _GUID_RE.fullmatch(tenant_id):
            raise ConfigError(
                f"{where}tenant_id {tenant_id!r} is not a Microsoft 365 tenant id (a GUID)"
            )
        if tenant_id.casefold() in seen:
            raise ConfigError(f"{where}tenant_id {tenant_id} appears twice")
        seen.add(tenant_id.casefold())
        tenants.append(TeamsTenant(tenant_id, _school(raw, where)))
    metadata = teams.get("openid_metadata_url")
    if metadata is not None and not isinstance(metadata, str):
        raise ConfigError("teams.openid_metadata_url must be a string")
    return TeamsSettings(
        app_id,
        password,
        app_type,  # type: ignore[arg-type]  # checked against the two values above
        app_tenant_id,
        tuple(tenants),
        metadata,
    )


def _schools(data: Mapping[str, Any]) -> dict[str, SchoolSettings]:
    schools: dict[str, SchoolSettings] = {}
    for slug, raw in _table(data, "schools", "").items():
        if not isinstance(raw, Mapping):
            raise ConfigError(f"schools.{slug} must be a table, like [schools.{slug}]")
        contact = raw.get("policy_contact_slack")
        if contact is not None and (not isinstance(contact, str) or not contact.startswith("U")):
            raise ConfigError(f"schools.{slug}.policy_contact_slack must be a Slack user id (U...)")
        teams_contact = raw.get("policy_contact_teams")
        if teams_contact is not None and (
            not isinstance(teams_contact, str) or not _GUID_RE.fullmatch(teams_contact)
        ):
            raise ConfigError(
                f"schools.{slug}.policy_contact_teams must be a Microsoft 365 object id (a GUID)"
            )
        safeguarding = _safeguarding(raw, f"schools.{slug}.safeguarding.")
        schools[slugify(slug)] = SchoolSettings(slugify(slug), contact, teams_contact, safeguarding)
    return schools


_SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CONSOLE_USER_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_SAFEGUARDING_ROLES = ("dsl", "deputies", "headteacher", "chair_of_governors")
_SAFEGUARDING_KEYS = {
    *_SAFEGUARDING_ROLES,
    "lado",
    "show_content_in_alert",
    "ack_minutes",
    "urgent_ack_minutes",
}


def _person_key(value: Any, where: str) -> str:
    """A person key: "slack:U0123ABC", "teams:<Microsoft 365 object id>" or "console:console"."""
    problem = (
        f'{where} must be person keys like "slack:U0123ABCDEF" (a Slack member id), '
        '"teams:<their Microsoft 365 object id>" or "console:console"'
    )
    if not isinstance(value, str):
        raise ConfigError(problem)
    platform, _, ident = value.strip().partition(":")
    valid = (
        (platform == "slack" and _SLACK_USER_RE.fullmatch(ident))
        or (platform == "teams" and _GUID_RE.fullmatch(ident))
        or (platform == "console" and _CONSOLE_USER_RE.fullmatch(ident))
    )
    if not valid:
        raise ConfigError(f"{problem}, not {value!r}")
    return f"{platform}:{ident.lower() if platform == 'teams' else ident}"


def _minutes(data: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{where}{key} must be a whole number of minutes, more than 0")
    return value


def _safeguarding(school: Mapping[str, Any], where: str) -> SafeguardingSettings:
    """[schools.<slug>.safeguarding]: who handles concerns, as person keys."""
    if "safeguarding" not in school:
        return SafeguardingSettings()
    data = school["safeguarding"]
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where[:-1]} must be a table, like [{where[:-1]}]")
    unknown = sorted(set(data) - _SAFEGUARDING_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}{unknown[0]} is not a setting guidebot knows "
            f"(expected one of: {', '.join(sorted(_SAFEGUARDING_KEYS))})"
        )
    roles: dict[str, tuple[str, ...]] = {}
    for role in _SAFEGUARDING_ROLES:
        value = data.get(role, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where}{role} must be a list of person keys")
        keys = [_person_key(item, f"{where}{role}") for item in value]
        roles[role] = tuple(dict.fromkeys(keys))
    lado = data.get("lado")
    if lado is not None and (not isinstance(lado, str) or not lado.strip()):
        raise ConfigError(f"{where}lado must be the LADO's contact details, as text")
    show = data.get("show_content_in_alert", False)
    if not isinstance(show, bool):
        raise ConfigError(f"{where}show_content_in_alert must be true or false")
    return SafeguardingSettings(
        dsl=roles["dsl"],
        deputies=roles["deputies"],
        headteacher=roles["headteacher"],
        chair_of_governors=roles["chair_of_governors"],
        lado=lado.strip() if lado is not None else None,
        show_content_in_alert=show,
        ack_minutes=_minutes(data, "ack_minutes", where, 30),
        urgent_ack_minutes=_minutes(data, "urgent_ack_minutes", where, 10),
    )


def parse(data: Mapping[str, Any], env: Mapping[str, str], source: Path | None = None) -> Settings:
    server = _table(data, "server", "")
    port = server.get("port", 3000)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ConfigError("server.port must be a whole number from 0 to 65535")
    if env.get("GUIDEBOT_DB"):
        # Like --db for every other command: relative to the working directory.
        database = Path(env["GUIDEBOT_DB"])
    else:
        database = Path(_string(server, "database", "server.", "guidebot.db"))
        if source is not None and not database.is_absolute():
            database = source.parent / database
    return Settings(
        database=database,
        host=_string(server, "host", "server.", "0.0.0.0"),
        port=port,
        slack=_slack(data, env),
        teams=_teams(data, env),
        schools=_schools(data),
        source=source,
        retention=parse_retention(data.get("retention")),
        schedule=parse_schedule(data),
        broadcasts=parse_broadcast_settings(data.get("broadcasts"), "broadcasts"),
    )


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read guidebot.toml (or $GUIDEBOT_CONFIG) and the environment."""
    env = dict(os.environ) if env is None else env
    path = path or Path(env.get("GUIDEBOT_CONFIG", DEFAULT_CONFIG))
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no configuration file at {path}: copy deploy/guidebot.example.toml"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the settings file {path} is not UTF-8 text: save it as UTF-8 and try again"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot read the settings file {path}: {exc.strerror} "
            "(guidebot needs a readable UTF-8 TOML file)"
        ) from exc
    return parse(data, env, path)
