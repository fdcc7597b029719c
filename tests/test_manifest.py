"""deploy/slack/manifest.yml asks Slack for exactly what the app uses.

PyYAML is not a dependency, so the manifest is read with a tiny parser for the
subset it is written in (mappings, lists of scalars, lists of mappings), and
compared with what adapters/slack/app.py registers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "deploy" / "slack" / "manifest.yml"
SLACK_ADAPTER = ROOT / "adapters" / "slack"
SERVER = ROOT / "adapters" / "server.py"
URL = "https://YOUR-HOST/slack/events"

SCOPES = [
    "app_mentions:read",
    "channels:history",
    "chat:write",
    "commands",
    "groups:history",
    "im:history",
    "im:read",
    "im:write",
    "users:read",
    "users:read.email",
]
BOT_EVENTS = ["app_home_opened", "app_mention", "message.im"]
# The scope each registration needs, from Slack's event and command reference.
NEEDS = {
    "app_mention": "app_mentions:read",
    "message": "im:history",
    "/policy": "commands",
    "/concern": "commands",
    "/broadcast": "commands",
}

_KEY_RE = re.compile(r"^([\w.-]+):(?: (.*))?$")


def _scalar(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items: list[Any] = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            content = lines[i][1][2:]
            if _KEY_RE.match(content):  # "- key: value" starts a mapping
                lines[i] = (indent + 2, content)
                item, i = _block(lines, i, indent + 2)
            else:
                item, i = _scalar(content), i + 1
            items.append(item)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        found = _KEY_RE.match(lines[i][1])
        assert found, f"not in the YAML subset: {lines[i][1]!r}"
        key, value = found.group(1), found.group(2)
        assert key not in mapping, f"{key} appears twice"
        if value is not None and value.strip():
            mapping[key], i = _scalar(value), i + 1
        else:
            assert i + 1 < len(lines) and lines[i + 1][0] > indent, f"{key} has no value"
            mapping[key], i = _block(lines, i + 1, lines[i + 1][0])
    return mapping, i


def parse_yaml_subset(text: str) -> Any:
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        assert "\t" not in raw[: len(raw) - len(raw.lstrip())], "indent with spaces"
        lines.append((len(raw) - len(raw.lstrip(" ")), stripped))
    value, end = _block(lines, 0, 0)
    assert end == len(lines), f"could not read from line {lines[end][1]!r}"
    return value


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    parsed = parse_yaml_subset(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(parsed, dict)
    return parsed


def registered(kind: str) -> set[str]:
    """Names passed to ``app.event(...)`` or ``app.command(...)`` in the Slack adapter."""
    names: set[str] = set()
    for path in SLACK_ADAPTER.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        names |= set(re.findall(rf"\bapp\.{kind}\(\s*[\"']([^\"']+)[\"']", source))
    return names


def adapter_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in SLACK_ADAPTER.glob("*.py"))


# --- the parser itself ------------------------------------------------------------------


def test_the_subset_parser_reads_nested_mappings_and_lists() -> None:
    text = 'a:\n  b: true\n  c:\n    - x:y\n    - "q"\n  d:\n    - k: 1\n      m: two\nz: 3\n'
    assert parse_yaml_subset(text) == {
        "a": {"b": True, "c": ["x:y", "q"], "d": [{"k": 1, "m": "two"}]},
        "z": 3,
    }


# --- the manifest -----------------------------------------------------------------------


def test_the_bot_user_and_app_home(manifest: dict[str, Any]) -> None:
    assert manifest["display_information"]["name"] == "guidebot"
    assert manifest["display_information"]["description"]
    features = manifest["features"]
    assert features["bot_user"] == {"display_name": "guidebot", "always_online": True}
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is False


def test_the_slash_commands(manifest: dict[str, Any]) -> None:
    policy, concern, broadcast = manifest["features"]["slash_commands"]
    assert policy["command"] == "/policy"
    assert policy["usage_hint"] == "your question"
    assert concern["command"] == "/concern"
    assert broadcast["command"] == "/broadcast"
    assert "status" in broadcast["usage_hint"]
    for command in (policy, concern, broadcast):
        assert command["url"] == URL
        assert command["should_escape"] is False
        assert command["description"]


def test_events_interactivity_and_settings(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["event_subscriptions"] == {"request_url": URL, "bot_events": BOT_EVENTS}
    assert settings["interactivity"] == {"is_enabled": True, "request_url": URL}
    assert settings["org_deploy_enabled"] is False
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert set(manifest) == {
        "_metadata",
        "display_information",
        "features",
        "oauth_config",
        "settings",
    }


def test_the_scopes_are_exactly_those_used(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}  # no user scopes
    assert scopes["bot"] == SCOPES


def test_the_socket_mode_comment_explains_the_switch() -> None:
    text = MANIFEST.read_text(encoding="utf-8")
    comment = text.split("socket_mode_enabled:")[0].rsplit("org_deploy_enabled", 1)[1]
    assert "Socket Mode" in comment
    assert "connections:write" in comment
    assert "SLACK_APP_TOKEN" in comment


# --- in step with the Slack adapter -----------------------------------------------------


def test_the_manifest_matches_what_the_slack_app_registers(manifest: dict[str, Any]) -> None:
    events = registered("event")
    commands = registered("command")
    assert events, "adapters/slack registers no events: has app.py moved?"
    subscribed = manifest["settings"]["event_subscriptions"]["bot_events"]
    # "message.im" is the manifest's name for the DM flavour of bolt's "message".
    assert {event.split(".")[0] for event in subscribed} == events
    assert {c["command"] for c in manifest["features"]["slash_commands"]} == commands
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    for name in events | commands:
        if name in NEEDS:
            assert NEEDS[name] in scopes, name


# Web API methods and the bot scope each needs, from Slack's method reference.
METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_update": "chat:write",
    "conversations_open": "im:write",
    "conversations_info": "im:read",
    "users_info": "users:read",
    "users_list": "users:read",
    "users_lookupByEmail": "users:read.email",
}
# users:read.email only works alongside users:read (Slack's scope reference).
SCOPE_NEEDS = {"users:read.email": "users:read"}


def test_every_web_api_method_the_app_calls_has_its_scope(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    called = set(re.findall(r"\.(\w+)\(", adapter_source())) & set(METHOD_SCOPES)
    assert "chat_postMessage" in called
    for method in called:
        assert METHOD_SCOPES[method] in scopes, method
    for scope, needed in SCOPE_NEEDS.items():
        if scope in scopes:
            assert needed in scopes, scope


def test_the_staff_directory_lookup_is_what_asks_for_emails(manifest: dict[str, Any]) -> None:
    """users:read.email is there for users.lookupByEmail (the staff directory sync)."""
    assert "users_lookupByEmail" in adapter_source()
    assert "users:read.email" in manifest["oauth_config"]["scopes"]["bot"]


def test_no_users_scope_unless_the_app_looks_people_up(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    if not re.search(r"\busers_(?:info|list|lookupByEmail|profile_get)\b", adapter_source()):
        assert not [s for s in scopes if s.startswith("users:")]


def test_every_url_is_the_path_the_server_listens_on(manifest: dict[str, Any]) -> None:
    path = URL.removeprefix("https://YOUR-HOST")
    assert f'"{path}"' in SERVER.read_text(encoding="utf-8")
    text = MANIFEST.read_text(encoding="utf-8")
    urls = re.findall(r"https?://\S+", text.split("_metadata:", 1)[1])
    assert urls == [URL] * 5
    assert "(five places)" in text
