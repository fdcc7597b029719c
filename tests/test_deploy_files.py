"""The deployment files: what they name exists, and the container's start-up works.

There is no Docker engine here, so the image itself is built by hand (README,
"Deploying in a school"); these tests check what can be checked without one:
the Dockerfile copies files that exist, runs as a non-root user, keeps the data
on a volume and has a health check; the entrypoint script, run as the
container runs it, checks the installation with `guidebot doctor`, then serves
/healthz and stops cleanly on SIGTERM; a broken setup stops it with the
doctor's one-line reasons.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.adapters.test_restart_e2e import server_env, settings_file
from tests.adapters.test_serve_lifecycle import Process, get_health, json_lines
from tests.support import TOKENS
from tests.support.slack_standin import SlackStandIn

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
ENV_EXAMPLE = DEPLOY / ".env.example"
SAMPLE = ROOT / "knowledge" / "samples" / "st-annes.txt"


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined), as (NAME, arguments)."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            name, _, rest = stripped.partition(" ")
            found.append((name.upper(), rest.strip()))
    return found


def test_the_dockerfile_is_slim_non_root_with_a_volume_and_a_health_check() -> None:
    steps = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    names = [name for name, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [rest for name, rest in steps if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert names.index("USER") < names.index("ENTRYPOINT")
    assert ("VOLUME", '["/var/lib/guidebot"]') in steps
    [health] = [rest for name, rest in steps if name == "HEALTHCHECK"]
    assert "/healthz" in health and "curl" not in health
    assert ("ENTRYPOINT", '["/usr/local/bin/guidebot-entrypoint"]') in steps
    assert any(name == "RUN" and "pip install ." in rest for name, rest in steps)


def test_the_dockerfile_copies_only_what_exists() -> None:
    for name, rest in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if name == "COPY":
            *sources, _target = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), source


def test_the_health_check_command_is_valid_python() -> None:
    [health] = [
        rest
        for name, rest in instructions(DOCKERFILE.read_text(encoding="utf-8"))
        if name == "HEALTHCHECK"
    ]
    command = re.search(r'CMD \["python", "-c", "(.*)"\]', health)
    assert command is not None
    compile(command[1], "healthcheck", "exec")


def test_compose_builds_this_dockerfile_and_gives_time_to_stop() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert "dockerfile: deploy/Dockerfile" in text and "context: .." in text
    assert "guidebot-data:/var/lib/guidebot" in text
    assert "env_file: .env" in text
    grace = re.search(r"stop_grace_period: (\d+)s", text)
    assert grace is not None and int(grace[1]) > 20  # the outbox waits up to 20 s


def test_the_systemd_unit_runs_the_doctor_then_serve_as_guidebot() -> None:
    text = (DEPLOY / "guidebot.service").read_text(encoding="utf-8")
    assert "User=guidebot" in text
    assert re.search(r"^ExecStartPre=\S+/guidebot doctor$", text, re.M)
    assert re.search(r"^ExecStart=\S+/guidebot serve$", text, re.M)
    assert "KillSignal=SIGTERM" in text
    stop = re.search(r"^TimeoutStopSec=(\d+)$", text, re.M)
    assert stop is not None and int(stop[1]) > 20


def environment_names_read_by_guidebot() -> set[str]:
    names: set[str] = set()
    for package in ("bot", "adapters", "knowledge"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            names |= set(re.findall(r'"((?:GUIDEBOT|SLACK|MICROSOFT)_[A-Z_]+)"', text))
    return names


def test_env_example_lists_every_secret_and_setting_guidebot_reads() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M))
    for secret in (
        "GUIDEBOT_SECRET_KEY",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "MICROSOFT_APP_PASSWORD",
    ):
        assert re.search(rf"^{secret}=$", text, re.M), secret  # present, and empty
    missing = environment_names_read_by_guidebot() - listed
    assert not missing, f"add to deploy/.env.example: {sorted(missing)}"


def test_the_entrypoint_is_executable_posix_shell() -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    assert ENTRYPOINT.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)
    assert "exec guidebot serve" in ENTRYPOINT.read_text(encoding="utf-8")


def test_the_example_settings_are_valid_toml() -> None:
    tomllib.loads((DEPLOY / "guidebot.example.toml").read_text(encoding="utf-8"))


# --- the entrypoint, run as the container runs it --------------------------------------


def container_env(config: Path) -> dict[str, str]:
    """What the image and compose.yaml set, with guidebot on the PATH."""
    env = server_env()
    env.update(
        {
            "GUIDEBOT_CONFIG": str(config),
            "GUIDEBOT_LOG_FORMAT": "json",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def load_policies(database: Path, env: dict[str, str]) -> None:
    """`docker compose run --rm guidebot ingest ...`: the entrypoint with arguments."""
    done = subprocess.run(
        [
            "sh",
            str(ENTRYPOINT),
            "--db",
            str(database),
            "ingest",
            "--school",
            "st-annes",
            str(SAMPLE),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "st-annes.txt:" in done.stdout


@pytest.mark.skipif(
    not Path(sys.executable).with_name("guidebot").exists(),
    reason="the guidebot command is not installed in this environment",
)
async def test_the_entrypoint_checks_then_serves_healthz_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    async with SlackStandIn(TOKENS) as slack:
        config = settings_file(tmp_path, slack.api_url)
        env = container_env(config)
        load_policies(tmp_path / "guidebot.db", env)
        server = Process(["sh", str(ENTRYPOINT)], env)
        try:
            await server.start()
            port = await server.port()
            status, health, request_id = await get_health(port)
            assert status == 200 and health["status"] == "ok", health
            assert re.fullmatch(r"[0-9a-f]{16}", request_id)
            server.terminate()
            code, err, out = await server.finish()
        finally:
            await server.kill()
    assert code == 0, err
    assert "FAIL" not in out and "ok   config" in out  # the doctor ran first
    assert "Traceback" not in err
    messages = [record["message"] for record in json_lines(err)]
    assert any(m.startswith("guidebot is serving on") for m in messages)
    assert "guidebot is stopping" in messages


@pytest.mark.skipif(
    not Path(sys.executable).with_name("guidebot").exists(),
    reason="the guidebot command is not installed in this environment",
)
def test_the_entrypoint_refuses_to_serve_a_broken_setup(tmp_path: Path) -> None:
    config = settings_file(tmp_path, "http://127.0.0.1:9/api/")
    env = container_env(config)
    load_policies(tmp_path / "guidebot.db", env)
    del env["GUIDEBOT_SECRET_KEY"]
    done = subprocess.run(
        ["sh", str(ENTRYPOINT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "FAIL GUIDEBOT_SECRET_KEY: missing" in done.stdout
    assert done.stderr.strip().splitlines()[-1].startswith("guidebot: not starting")


# --- the configuration reference -------------------------------------------------------


def settings_read_by_config() -> set[str]:
    """Each setting bot.config and bot.retention accept, as `section.key` (schools.SLUG.…)."""
    from bot import config, retention

    text = (ROOT / "bot" / "config.py").read_text(encoding="utf-8")
    keys: set[str] = set()
    for call in re.finditer(r'(?:_string|get)\((\w+), "([a-z_]+)"', text):
        holder, key = call[1], call[2]
        section = {
            "server": "server",
            "slack": "slack",
            "teams": "teams",
            "raw": None,
            "data": None,
        }.get(holder)
        if section:
            keys.add(f"{section}.{key}")
    keys |= {f"slack.workspace.{k}" for k in ("team_id", "school", "bot_token_env")}
    keys |= {f"teams.tenant.{k}" for k in ("tenant_id", "school")}
    keys |= {f"schools.SLUG.{k}" for k in ("policy_contact_slack", "policy_contact_teams")}
    keys |= {f"schools.SLUG.safeguarding.{k}" for k in config._SAFEGUARDING_KEYS}
    keys |= {f"retention.{k}" for k in retention.KEYS}
    keys.add("server.port")
    return keys


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (DEPLOY / "CONFIGURATION.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_.A-Z]+)` \|", reference, re.M))
    missing = settings_read_by_config() - documented
    assert not missing, f"document in deploy/CONFIGURATION.md: {sorted(missing)}"
    assert {"server.host", "server.database", "slack.transport", "retention.questions_days"} <= (
        documented
    )


def test_every_environment_variable_is_in_the_configuration_reference() -> None:
    reference = (DEPLOY / "CONFIGURATION.md").read_text(encoding="utf-8")
    for name in environment_names_read_by_guidebot():
        assert f"`{name}`" in reference, name
