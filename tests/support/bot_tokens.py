"""Tokens both ways for the Teams tests, made here, not by the code under test.

Inbound: the Bot Framework signs each request to ``/api/messages`` with an
RS256 JWT (``Authorization: Bearer ...``): issuer ``https://api.botframework.com``,
audience the bot's Microsoft App ID, a ``serviceurl`` claim that must match the
activity's ``serviceUrl``, ``nbf``/``exp``, and a ``kid`` naming a key in the
JWKS its OpenID configuration points to. ``TokenMinter`` makes such tokens with
PyJWT, signed with the key the Teams stand-in publishes, and the bad ones an
attacker would try: expired, signed with another key, ``alg: none``, HS256
keyed with the public key, the wrong audience or issuer, a ``serviceurl`` for
another host.

Outbound: ``FixedTokenCredentialFactory`` is the botframework-connector
credentials factory the server is given in tests, so replies carry
``Authorization: Bearer <FIXED_OUTBOUND_TOKEN>`` without anyone asking Azure AD
(login.microsoftonline.com is not reachable from here).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from botframework.connector.auth import (  # type: ignore[import-untyped]
    AppCredentials,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CHANNEL_ISSUER = "https://api.botframework.com"
EMULATOR_ISSUER = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"
APP_ID = "3f2a7c1e-5b8d-4e6f-9a0b-1c2d3e4f5a6b"
OTHER_APP_ID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
FIXED_OUTBOUND_TOKEN = "standin-outbound-token-5d1c"
"""What the fake credentials put in ``Authorization: Bearer ...`` on replies."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self, endorsements: tuple[str, ...] = ("msteams",)) -> dict[str, Any]:
        """The public key as the Bot Framework publishes it in its JWKS."""
        public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": public["n"],
            "e": public["e"],
            "endorsements": list(endorsements),
        }

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@functools.cache
def standin_key() -> SigningKey:
    """The key the stand-in publishes: made once per test session."""
    return SigningKey.generate("standin-key-1")


@functools.cache
def other_key() -> SigningKey:
    """A key nobody publishes, under the stand-in key's own ``kid``."""
    return SigningKey.generate(standin_key().kid)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TokenMinter:
    """Bot Framework channel tokens for one app id, signed with ``key``."""

    def __init__(
        self, key: SigningKey | None = None, *, app_id: str = APP_ID, lifetime: int = 3600
    ) -> None:
        self.key = key or standin_key()
        self.app_id = app_id
        self.lifetime = lifetime

    def claims(self, service_url: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "serviceurl": service_url,
            "nbf": now - 5,
            "exp": now + self.lifetime,
            "iss": CHANNEL_ISSUER,
            "aud": self.app_id,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        service_url: str,
        *,
        key: SigningKey | None = None,
        kid: str | None = None,
        **overrides: Any,
    ) -> str:
        """A genuine channel token for an activity posted from ``service_url``."""
        signer = key or self.key
        return jwt.encode(
            self.claims(service_url, **overrides),
            signer.private,
            algorithm="RS256",
            headers={"kid": kid or signer.kid},
        )

    # the bad ones -----------------------------------------------------------------------

    def expired(self, service_url: str) -> str:
        """Expired an hour ago: well beyond the five minutes' clock skew allowed."""
        now = int(time.time())
        return self.token(service_url, nbf=now - 7200, exp=now - 3600)

    def not_yet_valid(self, service_url: str) -> str:
        now = int(time.time())
        return self.token(service_url, nbf=now + 3600, exp=now + 7200)

    def wrong_key(self, service_url: str) -> str:
        """Signed with a key nobody published, claiming the published key's id."""
        return self.token(service_url, key=other_key())

    def unknown_kid(self, service_url: str) -> str:
        return self.token(service_url, kid="no-such-key")

    def alg_none(self, service_url: str) -> str:
        return jwt.encode(
            self.claims(service_url),
            None,
            algorithm="none",
            headers={"kid": self.key.kid},
        )

    def hs256_with_public_key(self, service_url: str) -> str:
        """The classic confusion attack: HMAC keyed with the public key's PEM.

        Made by hand, as PyJWT (rightly) refuses to use a PEM key as an HMAC secret."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self.key.kid}
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(self.claims(service_url), separators=(",", ":")).encode())
        )
        mac = hmac.new(self.key.public_pem(), signing_input.encode("ascii"), hashlib.sha256)
        return f"{signing_input}.{_b64(mac.digest())}"

    def wrong_audience(self, service_url: str) -> str:
        return self.token(service_url, aud=OTHER_APP_ID)

    def wrong_issuer(self, service_url: str) -> str:
        return self.token(service_url, iss="https://api.botframework.example")

    def emulator_issued(self, service_url: str) -> str:
        """Signed with the published key but issued as the Emulator's tokens are."""
        return self.token(service_url, iss=EMULATOR_ISSUER, ver="1.0", appid=self.app_id)

    def serviceurl_mismatch(self, service_url: str) -> str:
        """A token for another service URL than the activity's."""
        return self.token("https://smba.trafficmanager.example/evil/")

    def without_serviceurl(self, service_url: str) -> str:
        return self.token(service_url, serviceurl=None)


# outbound -----------------------------------------------------------------------------------


class FixedTokenCredentials(AppCredentials):  # type: ignore[misc]
    """App credentials whose access token is fixed (no Azure AD)."""

    def __init__(self, app_id: str, token: str) -> None:
        super().__init__(app_id=app_id)
        self._token = token

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self._token


class FixedTokenCredentialFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """Credentials for ``app_id`` with a fixed token; no app id: no credentials
    (authentication disabled), as botbuilder's password factory behaves."""

    def __init__(self, app_id: str | None = APP_ID, token: str = FIXED_OUTBOUND_TOKEN) -> None:
        self.app_id = app_id
        self.token = token
        self.created = 0

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(self.app_id) and app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        if not self.app_id:
            return MicrosoftAppCredentials.empty()
        if app_id != self.app_id:
            raise PermissionError("credentials asked for another app id")
        self.created += 1
        return FixedTokenCredentials(app_id, self.token)
