"""Encryption at rest: AES-256-GCM bound to a context, keys from the environment
or the console demo's key file, and never a key or a plaintext in an error."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.crypto import KEY_ENV, KEY_FILE, CryptoError, SecretBox, generate_key
from knowledge.errors import GuidebotError

SECRET = "Jayden said his stepdad locks him in the shed"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.from_key(generate_key())


def test_a_key_is_32_random_bytes_in_urlsafe_base64() -> None:
    keys = {generate_key() for _ in range(5)}
    assert len(keys) == 5
    for key in keys:
        assert len(base64.urlsafe_b64decode(key)) == 32
        assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def test_a_sealed_value_opens_with_the_same_key_and_context(box: SecretBox) -> None:
    token = box.seal(SECRET, "C-2026-0001:content")
    assert token.startswith("v1.")
    assert SECRET not in token and "stepdad" not in token
    assert box.open(token, "C-2026-0001:content") == SECRET
    assert box.open(box.seal("", "x"), "x") == ""
    assert box.open(box.seal("é — ✓", "x"), "x") == "é — ✓"


def test_every_seal_uses_a_fresh_nonce(box: SecretBox) -> None:
    tokens = [box.seal(SECRET, "ctx") for _ in range(20)]
    nonces = {base64.urlsafe_b64decode(t[3:])[:12] for t in tokens}
    assert len(set(tokens)) == 20 and len(nonces) == 20


def test_a_value_moved_to_another_record_or_field_does_not_open(box: SecretBox) -> None:
    token = box.seal(SECRET, "C-2026-0001:content")
    for other in ("C-2026-0002:content", "C-2026-0001:outcome", ""):
        with pytest.raises(CryptoError) as caught:
            box.open(token, other)
        assert SECRET not in str(caught.value)


def test_a_changed_token_does_not_open(box: SecretBox) -> None:
    token = box.seal(SECRET, "ctx")
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    for index in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        changed = bytearray(raw)
        changed[index] ^= 0x01
        with pytest.raises(CryptoError):
            box.open("v1." + base64.urlsafe_b64encode(bytes(changed)).decode(), "ctx")
    for broken in ("v2." + token[3:], token[:-8], "v1.!!!", "v1.", "plain text"):
        with pytest.raises(CryptoError) as caught:
            box.open(broken, "ctx")
        assert isinstance(caught.value, GuidebotError)


def test_another_key_cannot_open_it(box: SecretBox) -> None:
    token = box.seal(SECRET, "ctx")
    with pytest.raises(CryptoError) as caught:
        SecretBox.from_key(generate_key()).open(token, "ctx")
    assert SECRET not in str(caught.value)


def test_the_box_never_shows_its_key() -> None:
    key = generate_key()
    box = SecretBox.from_key(key)
    assert key not in repr(box) and key not in str(box)
    assert "********" in repr(box)


def test_from_env_reads_the_key() -> None:
    key = generate_key()
    box = SecretBox.from_env({KEY_ENV: key})
    assert SecretBox.from_env({KEY_ENV: f"  {key}\n"}).open(box.seal("hi", "c"), "c") == "hi"
    unpadded = key.rstrip("=")
    assert SecretBox.from_env({KEY_ENV: unpadded}).open(box.seal("hi", "c"), "c") == "hi"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "not-a-key",
        base64.urlsafe_b64encode(b"x" * 16).decode(),  # AES-128 sized: too short
        base64.urlsafe_b64encode(b"x" * 33).decode(),
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet (+ and /), not urlsafe
        "ü" * 44,
    ],
)
def test_from_env_names_the_variable_and_never_shows_the_value(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SecretBox.from_env({KEY_ENV: value} if value else {})
    message = str(caught.value)
    assert KEY_ENV in message
    if value.strip():
        assert value not in message
    assert "guidebot keygen" in message


def test_the_console_demo_makes_a_key_file_readable_by_its_owner_only(tmp_path: Path) -> None:
    box = SecretBox.for_console_demo(tmp_path, env={})
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # the next run finds and uses the same key
    again = SecretBox.for_console_demo(tmp_path, env={})
    assert again.open(box.seal(SECRET, "c"), "c") == SECRET


def test_the_console_demo_prefers_the_environment(tmp_path: Path) -> None:
    key = generate_key()
    box = SecretBox.for_console_demo(tmp_path, env={KEY_ENV: key})
    assert not (tmp_path / KEY_FILE).exists()
    assert SecretBox.from_key(key).open(box.seal("x", "c"), "c") == "x"


def test_the_console_demo_refuses_a_key_file_others_can_read(tmp_path: Path) -> None:
    SecretBox.for_console_demo(tmp_path, env={})
    path = tmp_path / KEY_FILE
    key = path.read_text().strip()
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError) as caught:
        SecretBox.for_console_demo(tmp_path, env={})
    message = str(caught.value)
    assert str(path) in message and "chmod 600" in message
    assert key not in message
    os.chmod(path, 0o600)
    assert SecretBox.for_console_demo(tmp_path, env={}) is not None


def test_the_console_demo_refuses_a_key_file_that_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"hunter2\n")
    os.close(fd)
    with pytest.raises(ConfigError) as caught:
        SecretBox.for_console_demo(tmp_path, env={})
    assert str(path) in str(caught.value) and "hunter2" not in str(caught.value)
