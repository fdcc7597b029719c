"""Request verification, piece by piece: every malformed input fails closed."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from adapters.http_checks import Refused
from adapters.slack.verify import (
    MAX_CLOCK_SKEW,
    check_headers,
    check_signature,
    parse_body,
    signature_for,
)
from tests.support.signing import slack_signature

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_531_420_618
BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F"
    b"T1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    b"803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_DOCS_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
"""The worked example in Slack's "Verifying requests from Slack" guide."""


def headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(values))


def test_signature_matches_slacks_worked_example() -> None:
    assert signature_for(SECRET, str(NOW), BODY) == SLACK_DOCS_SIGNATURE
    assert slack_signature(SECRET, NOW, BODY) == SLACK_DOCS_SIGNATURE
    check_signature(SECRET, str(NOW), SLACK_DOCS_SIGNATURE, BODY)


@pytest.mark.parametrize(
    "signature",
    [
        SLACK_DOCS_SIGNATURE[:-1] + "4",
        signature_for("another secret", str(NOW), BODY),
        signature_for(SECRET, str(NOW + 1), BODY),
    ],
)
def test_any_other_signature_is_refused(signature: str) -> None:
    with pytest.raises(Refused) as refused:
        check_signature(SECRET, str(NOW), signature, BODY)
    assert refused.value.status == 401


def test_good_headers_give_timestamp_and_signature() -> None:
    got = check_headers(
        headers(
            **{"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": SLACK_DOCS_SIGNATURE}
        ),
        NOW + MAX_CLOCK_SKEW,
    )
    assert got == (str(NOW), SLACK_DOCS_SIGNATURE)


@pytest.mark.parametrize(
    ("timestamp", "signature", "now"),
    [
        (None, SLACK_DOCS_SIGNATURE, NOW),
        (str(NOW), None, NOW),
        ("", SLACK_DOCS_SIGNATURE, NOW),
        ("1531420618.5", SLACK_DOCS_SIGNATURE, NOW),
        (" 1531420618", SLACK_DOCS_SIGNATURE, NOW),
        ("١٥٣١٤٢٠٦١٨", SLACK_DOCS_SIGNATURE, NOW),  # digits, but not ASCII ones
        ("99999999999999999999999", SLACK_DOCS_SIGNATURE, NOW),
        ("NaN", SLACK_DOCS_SIGNATURE, NOW),
        (str(NOW), "", NOW),
        (str(NOW), SLACK_DOCS_SIGNATURE.upper(), NOW),
        (str(NOW), SLACK_DOCS_SIGNATURE[3:], NOW),
        (str(NOW), SLACK_DOCS_SIGNATURE + "00", NOW),
        (str(NOW), SLACK_DOCS_SIGNATURE, NOW + MAX_CLOCK_SKEW + 1),
        (str(NOW), SLACK_DOCS_SIGNATURE, NOW - MAX_CLOCK_SKEW - 1),
    ],
)
def test_bad_headers_are_401(timestamp: str | None, signature: str | None, now: int) -> None:
    values = {}
    if timestamp is not None:
        values["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        values["X-Slack-Signature"] = signature
    with pytest.raises(Refused) as refused:
        check_headers(headers(**values), now)
    assert refused.value.status == 401


def test_a_repeated_header_is_401() -> None:
    both = CIMultiDict(
        [("X-Slack-Request-Timestamp", str(NOW)), ("X-Slack-Signature", "v0=" + "a" * 64)]
    )
    both.add("X-Slack-Signature", SLACK_DOCS_SIGNATURE)
    with pytest.raises(Refused) as refused:
        check_headers(CIMultiDictProxy(both), NOW)
    assert refused.value.status == 401


def test_bodies_parse_as_bolt_will_read_them() -> None:
    event = {"type": "event_callback", "event": {"type": "message"}}
    assert parse_body(json.dumps(event).encode(), "application/json").payload == event
    assert parse_body(json.dumps(event).encode(), "").payload == event
    command = parse_body(BODY, "application/x-www-form-urlencoded").payload
    assert command["command"] == "/webhook-collect"
    assert command["text"] == ""
    action = {"type": "block_actions", "actions": []}
    form = urlencode({"payload": json.dumps(action)}).encode()
    assert parse_body(form, "application/x-www-form-urlencoded; charset=utf-8").payload == action


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"{", "application/json"),
        (b"[]", "application/json"),
        (b'"text"', "application/json"),
        (b'{"a": "\xff"}', "application/json"),
        (b"no-equals-sign", "application/x-www-form-urlencoded"),
        (b"a=1&&b", "application/x-www-form-urlencoded"),
        (b"text=%FF", "application/x-www-form-urlencoded"),
        (b"payload=%7B", "application/x-www-form-urlencoded"),
        (b"payload=%5B%5D", "application/x-www-form-urlencoded"),
        (b"payload=%7B%7D&payload=%7B%7D", "application/x-www-form-urlencoded"),
        ("&".join(f"f{i}=1" for i in range(1000)).encode(), "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_bodies_are_400(body: bytes, content_type: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_body(body, content_type)
    assert refused.value.status == 400
    assert str(refused.value) == f"400 {refused.value.reason}"  # a fixed phrase, no body
    assert refused.value.reason.startswith("body ")
