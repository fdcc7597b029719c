"""Checks every HTTP request claiming to come from Slack, before bolt sees it.

Slack signs each request: ``X-Slack-Signature: v0=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed with the app's signing secret, of ``v0:<timestamp>:<body>``,
and ``X-Slack-Request-Timestamp`` is that timestamp in Unix seconds.

Everything here fails closed, in this order, and says why only in a fixed
phrase (never a byte of the body, which is never logged):

1. a missing, repeated or malformed timestamp or signature header -> 401;
2. a timestamp more than five minutes from our clock, either way -> 401;
3. a body longer than ``MAX_BODY_BYTES`` -> 413, found from Content-Length or
   while reading, so an oversized body is never read in full;
4. a signature that does not match the body (``hmac.compare_digest``) -> 401;
5. a signed body that is not UTF-8, not a JSON object, or not well-formed
   ``application/x-www-form-urlencoded`` (with a JSON object in ``payload``
   when there is one) -> 400.

The clock is passed in, so tests of stale timestamps need not wait.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from adapters.http_checks import Refused, read_limited

MAX_CLOCK_SKEW = 5 * 60
"""Slack's advice: refuse requests timestamped more than five minutes away."""
MAX_FORM_FIELDS = 200

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"

_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE = re.compile(r"v0=[0-9a-f]{64}")

Clock = Callable[[], float]


@dataclass(frozen=True)
class Verified:
    """A request whose signature matched: its body as text and as parsed."""

    text: str
    payload: dict[str, Any]


def signature_for(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` value Slack would send for this body."""
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def _single(headers: Mapping[str, str], name: str) -> str:
    """The one value of a header; a missing or repeated header is refused."""
    if isinstance(headers, CIMultiDictProxy | CIMultiDict):
        values = headers.getall(name, [])
    else:
        values = [v for k, v in headers.items() if k.lower() == name.lower()]
    if len(values) != 1:
        raise Refused(401, f"missing or repeated {name}")
    return str(values[0])


def check_headers(headers: Mapping[str, str], now: float) -> tuple[str, str]:
    """The timestamp and signature, if both are present, well-formed and fresh."""
    timestamp = _single(headers, TIMESTAMP_HEADER)
    signature = _single(headers, SIGNATURE_HEADER)
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise Refused(401, "timestamp is not a number of seconds")
    if not _SIGNATURE_RE.fullmatch(signature):
        raise Refused(401, "signature is not in the v0 format")
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
        raise Refused(401, "timestamp is more than five minutes away")
    return timestamp, signature


def check_signature(secret: str, timestamp: str, signature: str, body: bytes) -> None:
    expected = signature_for(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        raise Refused(401, "signature does not match")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise Refused(400, "body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise Refused(400, "body is not a JSON object")
    return value


def parse_body(body: bytes, content_type: str) -> Verified:
    """A signed body as Slack sends it: a JSON object (events), a form (slash
    commands) or a form whose ``payload`` is a JSON object (interactivity)."""
    if not body:
        raise Refused(400, "body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, "body is not UTF-8") from exc
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json" or text.startswith("{"):
        return Verified(text, _json_object(text))
    try:
        form = parse_qs(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, "body is not a well-formed form") from exc
    if "payload" in form:
        if len(form["payload"]) != 1:
            raise Refused(400, "body has more than one payload")
        return Verified(text, _json_object(form["payload"][0]))
    return Verified(text, {key: values[0] for key, values in form.items()})


async def verify_request(request: web.BaseRequest, secret: str, clock: Clock) -> Verified:
    """Everything above, for one aiohttp request. Raises ``Refused``."""
    timestamp, signature = check_headers(request.headers, clock())
    body = await read_limited(request)
    check_signature(secret, timestamp, signature, body)
    return parse_body(body, request.headers.get("Content-Type", ""))
