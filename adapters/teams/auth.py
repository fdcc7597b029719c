"""Who may post to ``/api/messages``: the Bot Framework's JWTs, checked by botbuilder.

Every activity Teams sends carries ``Authorization: Bearer <JWT>``, signed by
the Bot Framework (issuer ``https://api.botframework.com``), for our Microsoft
App ID (``aud``), naming the ``serviceurl`` the activity came from. botbuilder
checks all that (``BotFrameworkAuthentication.authenticate_request``: RS256
only, the key from the Bot Framework's OpenID configuration and endorsed for
the activity's channel, issuer, audience, ``serviceurl``, ``nbf``/``exp`` with
five minutes' skew). Authentication is on whenever ``teams.app_id`` is set.

With no app id botbuilder treats every request as authenticated (anonymous),
so ``check_mode`` refuses to build the server unless ``insecure_local`` is
given, and then only on a loopback address, with a loud warning at start.

Requests are refused before botbuilder sees them, in this order, with a fixed
phrase (a body, a header value or a token is never logged or echoed):

1. no ``Authorization: Bearer <token>`` (with an app id) -> 401;
2. a content type other than ``application/json`` -> 400;
3. a body over ``MAX_BODY_BYTES`` -> 413 (from Content-Length or while reading);
4. a body that is not UTF-8, not a JSON object, not an activity (``type``,
   ``serviceUrl``) -> 400;
5. a token that is not a JWT or not issued by the Bot Framework channel
   service -> 401 (this is where Emulator- and skill-issued tokens end: see below);
6. anything botbuilder's own checks raise -> 401; the signing keys cannot be
   fetched -> 503 (our problem, not the caller's: the Bot Framework retries).

Where botbuilder (4.17) needs help, and the narrowest fix found for it:

- It fetches the signing keys with blocking ``requests.get`` and no timeout,
  on the event loop (``JwtTokenExtractor``'s ``_OpenIdMetadata``): one slow
  answer from login.botframework.com would stall every request, and in tests
  the stand-in, served by the same loop, could never answer. ``install_keys``
  puts ``AsyncOpenIdMetadata`` (aiohttp, timeouts, a lock, refreshed daily or
  on an unknown key at most every ``UNKNOWN_KEY_REFRESH``) into botbuilder's
  own cache, ``JwtTokenExtractor.metadataCache``, for the URLs we configure, so
  botbuilder's checks are unchanged and only the fetching is ours. An unknown
  ``kid`` is a refusal here (botbuilder's lookup raises ``IndexError``).
- Tokens that fail in unexpected ways (no ``iss``, not a JWT, ``alg`` not
  allowed) raise ``KeyError``, ``DecodeError`` or a bare ``Exception`` that
  ``CloudAdapter.process`` would turn into a 500; so are a missing content type
  and a body that is not JSON. We read and parse the body and call
  ``authenticate_request`` ourselves; every failure is a 401 or a 400.
- Emulator tokens: botbuilder validates a token whose issuer is one of the
  Emulator's (Azure AD) against the Emulator's metadata, and accepts it with
  an ``appid`` claim equal to our app id. Such a token is issued by Azure AD to
  anyone who has our app's credentials, not by the Teams channel; we serve
  only the channel, so tokens not issued by ``https://api.botframework.com``
  are refused before botbuilder, and the Emulator metadata URL is pointed at
  the channel's as well, so even a token that got past would need the
  channel's keys. The Emulator is for ``--insecure-local`` only.

With ``--insecure-local`` nothing is checked: anyone who can reach the port
can talk to the bot as anyone, in any configured tenant, and make it post to
any ``serviceUrl`` they name (with no credentials). That is why it is allowed
only on a loopback address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import jwt
from aiohttp import web
from botbuilder.schema import Activity, CallerIdConstants  # type: ignore[import-untyped]
from botframework.connector.auth import (  # type: ignore[import-untyped]
    AuthenticateRequestResult,
    AuthenticationConfiguration,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    BotFrameworkAuthenticationFactory,
    JwtTokenExtractor,
    PasswordServiceClientCredentialFactory,
    ServiceClientCredentialsFactory,
)
from jwt.algorithms import RSAAlgorithm

from adapters.http_checks import Refused
from bot.config import ConfigError, Settings, TeamsSettings

log = logging.getLogger(__name__)

TeamsMode = Literal["on", "off", "insecure"]

CHANNEL_ISSUER: str = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
"""``https://api.botframework.com``: who issues the tokens on Teams' requests."""
PUBLIC_METADATA_URL: str = AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
LOGIN_URL_PREFIX: str = AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX
OAUTH_SCOPE: str = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE

KEY_FETCH_TIMEOUT = 10.0
KEY_MAX_AGE = 24 * 3600.0
UNKNOWN_KEY_REFRESH = 300.0
"""Seconds between refreshes prompted by a token naming a key we do not have."""
LOOPBACK_NAMES = {"localhost"}

_BEARER_RE = re.compile(r"Bearer ([A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]*\.[A-Za-z0-9_=-]*)")


class KeysUnavailable(Exception):
    """The Bot Framework's signing keys could not be fetched."""


# --- the mode ----------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_mode(settings: Settings, insecure_local: bool) -> TeamsMode:
    """``on`` (authenticated), ``insecure`` (no app id, local testing) or ``off``
    (no [teams] section). Raises ``ConfigError`` rather than run unauthenticated
    by accident or anywhere but this machine."""
    teams = settings.teams
    if teams is None:
        return "off"
    if teams.authenticated:
        return "on"
    if not insecure_local:
        raise ConfigError(
            "teams.app_id is not set, so Teams authentication would be off and anyone "
            "could talk to the bot: set teams.app_id to the bot's Microsoft App ID "
            "(only for testing on your own machine, use --insecure-local)"
        )
    if not is_loopback(settings.host):
        raise ConfigError(
            f"--insecure-local needs server.host to be a loopback address (127.0.0.1, "
            f"localhost or ::1), not {settings.host!r}: without teams.app_id anyone who "
            "can reach the server could talk to the bot as anyone"
        )
    return "insecure"


# --- the signing keys --------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """What botbuilder's ``JwtTokenExtractor`` reads from a key: the two attributes
    of its private ``_OpenIdConfig``."""

    public_key: Any
    endorsements: list[str]


class AsyncOpenIdMetadata:
    """A drop-in for botbuilder's ``_OpenIdMetadata``: ``await get(kid)``, but
    fetched with aiohttp, bounded by timeouts, one refresh at a time."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = KEY_FETCH_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.clock = clock
        self.keys: dict[str, SigningKey] = {}
        self.fetched_at: float | None = None
        self._lock: asyncio.Lock | None = None

    def _stale(self, age: float) -> bool:
        return self.fetched_at is None or self.clock() - self.fetched_at >= age

    async def get(self, key_id: str | None) -> SigningKey:
        if self._stale(KEY_MAX_AGE):
            try:
                await self.refresh()
            except KeysUnavailable:
                if not self.keys:
                    raise
                # Yesterday's keys are still the likeliest to be right: keep them.
                log.warning("Teams: could not refresh the signing keys; using the ones we have")
        key = self.keys.get(key_id or "")
        if key is None and key_id and self._stale(UNKNOWN_KEY_REFRESH):
            await self.refresh()
            key = self.keys.get(key_id)
        if key is None:
            raise PermissionError("the token's signing key is not one the Bot Framework publishes")
        return key

    async def refresh(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        before = self.fetched_at
        async with self._lock:
            if self.fetched_at != before:  # another request refreshed meanwhile
                return
            try:
                self.keys = await self._fetch()
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
                raise KeysUnavailable(
                    f"cannot fetch the Bot Framework signing keys: {type(exc).__name__}"
                ) from None
            self.fetched_at = self.clock()

    async def _fetch(self) -> dict[str, SigningKey]:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(self.url) as response:
                response.raise_for_status()
                metadata = await response.json(content_type=None)
            jwks_uri = metadata["jwks_uri"]
            if not isinstance(jwks_uri, str):
                raise TypeError("jwks_uri is not a string")
            async with session.get(jwks_uri) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
        keys: dict[str, SigningKey] = {}
        for jwk in document["keys"]:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or "kid" not in jwk:
                continue
            try:
                public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
            except (jwt.InvalidKeyError, ValueError, KeyError):
                continue
            endorsements = jwk.get("endorsements") or []
            keys[str(jwk["kid"])] = SigningKey(public_key, [str(e) for e in endorsements])
        if not keys:
            raise ValueError("no usable signing keys")
        return keys


def install_keys(url: str) -> AsyncOpenIdMetadata:
    """Put our key fetcher in botbuilder's process-wide cache for ``url``
    (replacing whatever was there, so each server gets a fresh one)."""
    metadata = AsyncOpenIdMetadata(url)
    JwtTokenExtractor.metadataCache[url] = metadata
    return metadata


# --- botbuilder's authentication ------------------------------------------------------------------


def credentials_for(teams: TeamsSettings) -> ServiceClientCredentialsFactory:
    """The bot's own credentials for replies (its client secret, through Azure AD)."""
    password = teams.app_password.reveal() if teams.app_password else None
    tenant = teams.app_tenant_id if teams.app_type == "SingleTenant" else None
    return PasswordServiceClientCredentialFactory(teams.app_id, password, tenant)


def create_authentication(
    metadata_url: str, credentials: ServiceClientCredentialsFactory
) -> BotFrameworkAuthentication:
    """botbuilder's parameterised authentication for the public cloud, with the
    Emulator's metadata URL pointed at the channel's (see the module notes)."""
    return BotFrameworkAuthenticationFactory.create(
        channel_service=None,
        validate_authority=True,
        to_channel_from_bot_login_url=LOGIN_URL_PREFIX,
        to_channel_from_bot_oauth_scope=OAUTH_SCOPE,
        to_bot_from_channel_token_issuer=CHANNEL_ISSUER,
        oauth_url=AuthenticationConstants.OAUTH_URL,
        to_bot_from_channel_open_id_metadata_url=metadata_url,
        to_bot_from_emulator_open_id_metadata_url=metadata_url,
        caller_id=CallerIdConstants.public_azure_channel,
        credential_factory=credentials,
        auth_configuration=AuthenticationConfiguration(),
    )


class Authenticator:
    """Checks one request's token against its activity (see the module notes)."""

    def __init__(
        self,
        authentication: BotFrameworkAuthentication,
        *,
        app_id: str | None,
        metadata: AsyncOpenIdMetadata | None,
    ) -> None:
        self.authentication = authentication
        self.app_id = app_id
        self.metadata = metadata

    @property
    def required(self) -> bool:
        return bool(self.app_id)

    def check_header(self, header: str | None) -> str:
        """The token, if the header is ``Bearer <something shaped like a JWT>``."""
        found = _BEARER_RE.fullmatch(header or "")
        if found is None:
            raise Refused(401, "no Bearer token")
        return found[1]

    async def warm_up(self) -> None:
        """Fetch the signing keys before the first request needs them."""
        if self.metadata is not None:
            await self.metadata.refresh()

    async def authenticate(
        self, activity: Activity, header: str | None
    ) -> AuthenticateRequestResult:
        if not self.required:
            # --insecure-local: botbuilder's anonymous identity, whatever was sent.
            try:
                return await self.authentication.authenticate_request(activity, None)
            except Exception:
                raise Refused(401, "token rejected") from None
        token = self.check_header(header)
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Refused(401, "token is not a JWT") from None
        if not isinstance(unverified, dict) or unverified.get("iss") != CHANNEL_ISSUER:
            raise Refused(401, "token was not issued by the Bot Framework channel service")
        try:
            result = await self.authentication.authenticate_request(activity, f"Bearer {token}")
        except KeysUnavailable:
            raise Refused(503, "signing keys unavailable") from None
        except Exception:
            # PermissionError mostly; never echo its message (it can quote the token).
            raise Refused(401, "token rejected") from None
        identity = getattr(result, "claims_identity", None)
        claims = getattr(identity, "claims", None) or {}
        if not getattr(identity, "is_authenticated", False) or claims.get("aud") != self.app_id:
            raise Refused(401, "token rejected")
        return result


# --- reading the request --------------------------------------------------------------------


def check_content_type(request: web.BaseRequest) -> None:
    kind = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise Refused(400, "content type is not application/json")


def parse_activity(body: bytes) -> tuple[dict[str, Any], Activity]:
    """The body as a JSON object and as botbuilder's ``Activity``."""
    if not body:
        raise Refused(400, "body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused(400, "body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "body is not a JSON object")
    try:
        activity = Activity().deserialize(payload)
    except Exception:
        raise Refused(400, "body is not an activity") from None
    if not isinstance(activity.type, str) or not activity.type:
        raise Refused(400, "activity has no type")
    if not isinstance(activity.service_url, str) or not activity.service_url:
        raise Refused(400, "activity has no serviceUrl")
    return payload, activity
