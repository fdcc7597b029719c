"""Encryption at rest for what must stay confidential (safeguarding reports).

One key per installation: 32 random bytes in URL-safe base64, made by
``guidebot keygen`` and given to the service as GUIDEBOT_SECRET_KEY. Each value
is sealed with AES-256-GCM under a fresh 96-bit nonce, with a *context* (for
example ``C-2026-0042:content``) bound in as associated data, so a sealed value
cannot be copied onto another record or field and still open.

Tokens look like ``v1.<urlsafe base64 of nonce|ciphertext|tag>``; the version
prefix leaves room for a future format. Key rotation is out of scope: there is
one key, and losing it means losing every report sealed with it, so it must be
backed up apart from the database. Nothing here ever puts the key or a
plaintext into an exception message, a repr or a log line.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.config import ConfigError
from knowledge.errors import GuidebotError

KEY_ENV = "GUIDEBOT_SECRET_KEY"
KEY_FILE = "guidebot.key"
KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "v1."
_URLSAFE_B64_RE = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class CryptoError(GuidebotError):
    """A sealed value that cannot be opened: wrong key, wrong record, or damaged.
    The message never contains the value, its plaintext or the key."""


def generate_key() -> str:
    """A new key: 32 random bytes, URL-safe base64 (44 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_key(text: str) -> bytes | None:
    """The key's bytes, or None when it is not a 32-byte URL-safe base64 key."""
    text = text.strip()
    if not _URLSAFE_B64_RE.fullmatch(text):
        return None
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == KEY_BYTES else None


class SecretBox:
    """Seals and opens short texts with one AES-256-GCM key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(f"a guidebot key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(key='********')"

    __str__ = __repr__

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt ``plaintext``, bound to ``context`` (e.g. "C-2026-0042:content")."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, context: str) -> str:
        """The plaintext of a token sealed with this key and this context."""
        if not token.startswith(PREFIX):
            raise CryptoError("a sealed value is not in a format this version of guidebot reads")
        try:
            raw = base64.urlsafe_b64decode(token[len(PREFIX) :].encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise CryptoError("a sealed value is damaged and cannot be opened") from None
        if len(raw) < NONCE_BYTES + 16:
            raise CryptoError("a sealed value is damaged and cannot be opened")
        try:
            plain = self._aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8")
            )
        except InvalidTag:
            raise CryptoError(
                "a sealed value cannot be opened: it was sealed with another key, belongs "
                "to another record, or has been changed"
            ) from None
        return plain.decode("utf-8")

    # --- where the key comes from -------------------------------------------------------

    @classmethod
    def from_key(cls, text: str, name: str = KEY_ENV) -> SecretBox:
        """A box from a key as text; ``name`` says where it came from, for errors."""
        raw = _decode_key(text)
        if raw is None:
            raise ConfigError(
                f"{name} is not a valid guidebot key: it must be {KEY_BYTES} random bytes in "
                "URL-safe base64, as printed by `guidebot keygen`"
            )
        return cls(raw)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SecretBox:
        """The service's box, from GUIDEBOT_SECRET_KEY."""
        text = env.get(KEY_ENV, "").strip()
        if not text:
            raise ConfigError(
                f"environment variable {KEY_ENV} is not set (the key that encrypts "
                "safeguarding reports: make one with `guidebot keygen`)"
            )
        return cls.from_key(text)

    @classmethod
    def for_console_demo(cls, folder: Path, env: Mapping[str, str] | None = None) -> SecretBox:
        """The console demo's box: GUIDEBOT_SECRET_KEY if set, else a key kept in
        ``folder/guidebot.key`` (made on first use, readable by its owner only).

        A key file that other users could read is refused rather than used."""
        env = os.environ if env is None else env
        if env.get(KEY_ENV, "").strip():
            return cls.from_env(env)
        path = folder / KEY_FILE
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return cls._from_key_file(path)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the key file {path}: {exc.strerror} (or set {KEY_ENV})"
            ) from None
        key = generate_key()
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
        return cls.from_key(key, str(path))

    @classmethod
    def _from_key_file(cls, path: Path) -> SecretBox:
        try:
            mode = path.stat().st_mode
            if stat.S_IMODE(mode) & 0o077:
                raise ConfigError(
                    f"the key file {path} can be read or changed by other users: "
                    f"run `chmod 600 {path}` and try again"
                )
            text = path.read_text(encoding="ascii")
        except ConfigError:
            raise
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not a key"
            raise ConfigError(f"cannot read the key file {path}: {reason}") from None
        return cls.from_key(text, f"the key file {path}")
