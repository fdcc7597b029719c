"""Safeguarding concerns on Slack, end to end over real HTTP on loopback.

Signed requests go into the real server (``build_app`` on 127.0.0.1) with a
``Concerns`` on the sample database (a test key, St Anne's safeguarding roles:
a DSL, a deputy and a headteacher on Slack); its Web API calls go to the Slack
stand-in. The DSL's alerts and the reporter's "the DSL has seen it" are queued
in the outbox by ``Concerns`` and delivered by the server's outbox worker as
direct messages, which the tests read from the stand-in.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.server import KB_KEY, OUTBOX_KEY, SLACK_KEY, TEAMS_KEY
from adapters.slack import concern_views
from bot.concerns import ConcernForm, Concerns, ConcernView, Note, Person
from bot.config import SafeguardingSettings, Settings
from bot.crypto import SecretBox, generate_key
from bot.messages import Action, Reply
from bot.outbox import Outbox, OutboxRow, reply_from_data
from tests.support import (
    ANNES_TEAM,
    DM,
    STAFF,
    Guidebot,
    action_form,
    block_actions,
    command_form,
    dm_event,
    settings_for,
)
from tests.support.slack_standin import SlackStandIn

DSL, DEPUTY, HEAD = "U0DSL", "U0DEPUTY", "U0HEAD"
DSL_DM = f"D{DSL}"
SAFEGUARDING = SafeguardingSettings(
    dsl=(f"slack:{DSL}",), deputies=(f"slack:{DEPUTY}",), headteacher=(f"slack:{HEAD}",)
)

SECRET_WORDS = ("Zephyrine", "Quillondrax", "Marzipanhof", "Bramblewick", "Octarinel")
"""Distinctive words in the report: they must never reach the database in clear, a
channel, a log or an alert."""
REPORT = {
    concern_views.ABOUT: "pupil",
    concern_views.ABOUT_NAME: "Zephyrine Q.",
    concern_views.WHAT: 'She said "Quillondrax hurts me when Marzipanhof is away"',
    concern_views.WHEN_WHERE: "Tuesday break, Bramblewick corridor",
    concern_views.DANGER: "no",
    concern_views.ACTIONS_TAKEN: "Told Octarinel in the office to keep an eye",
}
DISCLOSURE = "a girl in year 4 told me her dad hits her when he has been drinking"


# --- the server with concerns ---------------------------------------------------------------


def with_safeguarding(settings: Settings, safeguarding: SafeguardingSettings) -> Settings:
    school = dataclasses.replace(settings.school("st-annes"), safeguarding=safeguarding)
    return dataclasses.replace(settings, schools={**settings.schools, "st-annes": school})


def attach_concerns(app: web.Application, settings: Settings) -> Concerns:
    """The server's Concerns: its own when ``build_app`` made one, else one on its
    database (with a test key) handed to each platform's bot."""
    bots = [app[key] for key in (SLACK_KEY, TEAMS_KEY) if key in app]
    for bot in bots:
        if bot.concerns is not None:
            return bot.concerns
    kb = app[KB_KEY]
    outbox = app.get(OUTBOX_KEY)
    if outbox is None:
        box = SecretBox.from_key(generate_key())
        outbox = Outbox(kb.db, box)
    concerns = Concerns(
        kb.db, outbox.box, lambda school: settings.school(school).safeguarding, outbox
    )
    for bot in bots:
        bot.concerns = concerns
    return concerns


def outbox_rows(concerns: Concerns, ref: str) -> list[OutboxRow]:
    keys = [
        key
        for (key,) in concerns.db.execute(
            "SELECT dedupe_key FROM outbox WHERE dedupe_key LIKE ? ORDER BY id", [f"%:{ref}:%"]
        ).fetchall()
    ]
    rows = [concerns.outbox.by_key(key) for key in keys]
    return [row for row in rows if row is not None]


def alert_reply(row: OutboxRow) -> Reply:
    return reply_from_data(row.message.reply)


async def delivered(slack: SlackStandIn, key: str) -> dict[str, Any]:
    """The direct message the outbox worker delivered for ``key`` (waits for it)."""
    await slack.wait_for(lambda: bool(slack.posted(key)))
    [message] = slack.posted(key)
    return message


def dm_channel_of(slack: SlackStandIn, key: str) -> str:
    return next(
        channel
        for channel, found in slack.messages.items()
        if any(m in found for m in slack.posted(key))
    )


def own_posts(slack: SlackStandIn, user: str) -> list[Any]:
    """What the app posted itself (not through the outbox) to ``user``'s DM."""
    return [c for c in slack.delivered("chat.postMessage") if c.params.get("channel") == user]


def database_bytes(path: Path) -> bytes:
    """The database as it is on disk: the file and its write-ahead log."""
    found = b""
    for suffix in ("", "-wal", "-journal"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            found += part.read_bytes()
    return found


def assert_no_secret_words(text: str | bytes, where: str) -> None:
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    for word in SECRET_WORDS:
        assert word.encode("utf-8") not in data, f"{word!r} found in {where}"
        assert word.lower().encode("utf-8") not in data.lower(), f"{word!r} found in {where}"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as standin:
        yield standin


@dataclasses.dataclass
class Server:
    guidebot: Guidebot
    concerns: Concerns
    slack: SlackStandIn
    database: Path


@pytest.fixture
async def server(slack: SlackStandIn, sample_db_copy: Path) -> AsyncIterator[Server]:
    settings = with_safeguarding(settings_for(sample_db_copy, slack.api_url), SAFEGUARDING)
    guidebot = Guidebot(settings)
    concerns = attach_concerns(guidebot.app, settings)
    async with guidebot:
        yield Server(guidebot, concerns, slack, sample_db_copy)


# --- payloads Slack sends for modals ----------------------------------------------------------


def _inputs(view: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for block in view.get("blocks", []):
        if block.get("type") == "input":
            yield block["block_id"], block["element"]


def state_for(view: Mapping[str, Any], answers: Mapping[str, str]) -> dict[str, Any]:
    """``view.state.values`` as Slack sends it: every input, answered or not."""
    values: dict[str, Any] = {}
    for block_id, element in _inputs(view):
        kind, answer = element["type"], answers.get(block_id)
        if kind in ("radio_buttons", "static_select"):
            chosen = next((o for o in element["options"] if o["value"] == answer), None)
            state: dict[str, Any] = {"type": kind, "selected_option": chosen}
        elif kind == "users_select":
            state = {"type": kind, "selected_user": answer}
        else:
            state = {"type": kind, "value": answer}
        values[block_id] = {element["action_id"]: state}
    return {"values": values}


def view_submission(
    view: Mapping[str, Any], answers: Mapping[str, str], *, user: str = STAFF
) -> dict[str, Any]:
    """What Slack posts when someone presses the modal's submit button."""
    return {
        "type": "view_submission",
        "team": {"id": ANNES_TEAM, "domain": "school"},
        "user": {"id": user, "username": "staff", "name": "staff", "team_id": ANNES_TEAM},
        "api_app_id": "A0STANDIN",
        "token": "deprecated-verification-token",
        "trigger_id": "9.1.submission",
        "view": {
            "id": "V0MODAL",
            "team_id": ANNES_TEAM,
            "type": "modal",
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": state_for(view, answers),
            "hash": "1.abc",
            "title": view["title"],
            "app_id": "A0STANDIN",
            "bot_id": "BGUIDEBOT",
        },
        "response_urls": [],
        "is_enterprise_install": False,
    }


async def submit(
    server: Server, view: Mapping[str, Any], answers: Mapping[str, str], *, user: str = STAFF
) -> dict[str, Any]:
    """Submit a modal; the ack's JSON (``response_action`` ...), or {} for a bare ack."""
    status, body = await server.guidebot.send_form(
        action_form(view_submission(view, answers, user=user))
    )
    assert status == 200, body
    await server.guidebot.idle()
    return json.loads(body) if body.strip() else {}


async def open_concern_form(server: Server, text: str = "") -> tuple[str, dict[str, Any]]:
    """``/concern``: the trigger id sent and the view opened with it."""
    form = command_form(text, command="/concern")
    trigger = dict(pair.split("=", 1) for pair in form.split("&"))["trigger_id"]
    before = len(server.slack.calls_to("views.open"))
    status, body = await server.guidebot.send_form(form)
    assert (status, body) == (200, "")
    await server.guidebot.idle()
    calls = server.slack.calls_to("views.open")
    assert len(calls) == before + 1
    assert calls[-1].params["trigger_id"] == trigger.replace("%2C", ",")
    return trigger, server.slack.views()[-1]


async def click(
    server: Server, action: Action, value: str, *, user: str, channel: str | None
) -> None:
    status, _ = await server.guidebot.send_form(
        action_form(block_actions(action.value, value, user=user, channel=channel))
    )
    assert status == 200
    await server.guidebot.idle()


async def report(
    server: Server, answers: Mapping[str, str] = REPORT, *, user: str = STAFF
) -> tuple[str, dict[str, Any]]:
    """A concern sent through the form: its reference and the submission's answer."""
    _, view = await open_concern_form(server)
    response = await submit(server, view, answers, user=user)
    assert response["response_action"] == "update", response
    [ref] = [r for (r,) in server.concerns.db.execute("SELECT ref FROM concerns ORDER BY id DESC")][
        :1
    ]
    return ref, response


def texts(view: Mapping[str, Any]) -> list[str]:
    return [
        block["text"]["text"]
        for block in view.get("blocks", [])
        if isinstance(block.get("text"), dict)
    ]


# --- opening the form -------------------------------------------------------------------------


async def test_slash_concern_opens_the_form_with_its_trigger(server: Server) -> None:
    _, view = await open_concern_form(server)
    assert view["type"] == "modal"
    assert view["callback_id"] == concern_views.CONCERN_CALLBACK
    assert json.loads(view["private_metadata"]) == {"school": "st-annes", "team": ANNES_TEAM}
    questions = [block_id for block_id, _ in _inputs(view)]
    assert questions == [
        "about",
        "about_role",
        "about_dsl",
        "about_name",
        "what",
        "when_where",
        "danger",
        "actions_taken",
    ]
    elements = dict(_inputs(view))
    assert elements["what"]["multiline"] is True
    assert "initial_value" not in elements["what"]
    assert elements["about_dsl"]["type"] == "users_select"
    assert server.slack.calls_to("chat.postMessage") == []  # nothing said in the channel


async def test_text_after_slash_concern_starts_what_was_seen(server: Server) -> None:
    _, view = await open_concern_form(server, "he said &lt;nobody&gt; would believe me")
    what = dict(_inputs(view))["what"]
    assert what["initial_value"] == "he said <nobody> would believe me"


async def test_the_report_button_under_an_answer_prefills_their_message(server: Server) -> None:
    slack = server.slack
    status, _ = await server.guidebot.send_event(dm_event(DISCLOSURE))
    assert status == 200
    await server.guidebot.idle()
    [answer] = slack.delivered("chat.postMessage")
    button = next(
        element
        for block in answer.params["blocks"]
        for element in block.get("elements", [])
        if element.get("action_id") == Action.REPORT_CONCERN.value
    )
    await click(server, Action.REPORT_CONCERN, button["value"], user=STAFF, channel=DM)
    [call] = slack.calls_to("views.open")
    assert call.params["trigger_id"]
    what = dict(_inputs(slack.views()[-1]))["what"]
    assert what["initial_value"] == DISCLOSURE
    assert slack.calls_to("chat.postEphemeral") == []


async def test_someone_elses_report_button_opens_an_empty_form(server: Server) -> None:
    await server.guidebot.send_event(dm_event(DISCLOSURE))
    await server.guidebot.idle()
    [answer] = server.slack.delivered("chat.postMessage")
    value = next(
        element["value"]
        for block in answer.params["blocks"]
        for element in block.get("elements", [])
        if element.get("action_id") == Action.REPORT_CONCERN.value
    )
    await click(server, Action.REPORT_CONCERN, value, user="U0OTHER", channel=DM)
    assert "initial_value" not in dict(_inputs(server.slack.views()[-1]))["what"]


async def test_the_app_home_button_opens_the_form(server: Server) -> None:
    await click(server, Action.REPORT_CONCERN, "home", user=STAFF, channel=None)
    [view] = server.slack.views()
    assert view["callback_id"] == concern_views.CONCERN_CALLBACK
    assert server.slack.calls_to("chat.postMessage") == []


async def test_a_form_that_cannot_open_says_go_to_the_dsl(server: Server) -> None:
    server.slack.error("views.open", "expired_trigger_id")
    await click(server, Action.REPORT_CONCERN, "command", user=STAFF, channel=DM)
    [notice] = server.slack.delivered("chat.postEphemeral")
    assert notice.params["user"] == STAFF
    assert "could not be opened" in notice.params["text"]
    assert "999" in notice.params["text"]


# --- sending it -----------------------------------------------------------------------------------


async def test_a_report_is_stored_sealed_and_the_dsl_alerted_without_content(
    server: Server,
) -> None:
    ref, response = await report(server)
    shown = "\n".join(texts(response["view"]))
    assert ref in shown
    assert "999" not in shown.split(ref)[0]  # not urgent: no 999 banner first
    # the reporter's own copy, by DM
    [dm] = own_posts(server.slack, STAFF)
    assert ref in dm.params["text"]
    # sealed: the file and its log hold none of it in clear
    assert_no_secret_words(database_bytes(server.database), "the database file")
    # the DSL's alert: queued, then delivered to their DM with the four buttons and
    # who reported it, and without the content
    key = f"concern:{ref}:alert:slack:{DSL}"
    [alert] = [row for row in outbox_rows(server.concerns, ref) if ":alert:" in row.dedupe_key]
    assert (alert.dedupe_key, alert.platform, alert.recipient) == (key, "slack", DSL)
    message = await delivered(server.slack, key)
    assert dm_channel_of(server.slack, key) == f"D{DSL}"
    buttons = [
        element
        for block in message["blocks"]
        for element in block.get("elements", [])
        if element.get("type") == "button"
    ]
    assert [b["action_id"] for b in buttons] == [
        Action.CONCERN_VIEW.value,
        Action.CONCERN_ACKNOWLEDGE.value,
        Action.CONCERN_NOTE.value,
        Action.CONCERN_CLOSE.value,
    ]
    assert {b["value"] for b in buttons} == {ref}
    assert f"Reported by <@{STAFF}>" in json.dumps(message["blocks"])
    assert alert_reply(alert).extra["reported_by"] == f"slack:{STAFF}"
    # nothing of it anywhere on Slack: not the alert, not a channel
    for call in server.slack.calls:
        assert_no_secret_words(call.dumps(), f"Slack {call.method}")


async def test_an_urgent_report_puts_999_first(server: Server) -> None:
    ref, response = await report(server, {**REPORT, concern_views.DANGER: "yes"})
    first, *rest = texts(response["view"])
    assert "999" in first
    assert "in person" in first
    assert any(ref in text for text in rest)
    [dm] = own_posts(server.slack, STAFF)
    assert dm.params["text"].index("999") < dm.params["text"].index(ref)


async def test_missing_answers_are_marked_and_nothing_is_stored(server: Server) -> None:
    _, view = await open_concern_form(server)
    response = await submit(server, view, {concern_views.ABOUT: "pupil"})
    assert response["response_action"] == "errors"
    assert set(response["errors"]) == {"about_name", "what", "when_where", "danger"}
    assert all(message.strip() for message in response["errors"].values())
    assert server.concerns.db.execute("SELECT count(*) FROM concerns").fetchone()[0] == 0


async def test_headteacher_or_dsl_needs_a_member_of_staff(server: Server) -> None:
    _, view = await open_concern_form(server)
    answers = {**REPORT, concern_views.ABOUT_ROLE: "headteacher"}
    response = await submit(server, view, answers)
    assert response["response_action"] == "errors"
    assert set(response["errors"]) == {"about_role"}


async def test_a_report_about_a_dsl_never_reaches_that_dsl(server: Server) -> None:
    answers = {
        **REPORT,
        concern_views.ABOUT: "staff",
        concern_views.ABOUT_ROLE: "dsl",
        concern_views.ABOUT_DSL: DSL,
    }
    ref, _ = await report(server, answers)
    recipients = {row.recipient for row in outbox_rows(server.concerns, ref)}
    assert DSL not in recipients
    assert recipients == {HEAD, DEPUTY}


async def test_a_failure_to_store_says_go_to_the_dsl_in_person(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.concerns, "submit", broken)
    _, view = await open_concern_form(server)
    response = await submit(server, view, REPORT)
    assert response["response_action"] == "update"
    shown = " ".join(texts(response["view"]))
    assert "in person now" in shown
    assert "999" in shown


async def test_a_form_from_another_workspace_is_not_stored(server: Server) -> None:
    _, view = await open_concern_form(server)
    forged = {**view, "private_metadata": json.dumps({"school": "crossflatts", "team": "T0X"})}
    response = await submit(server, forged, REPORT)
    assert response["response_action"] == "update"
    assert server.concerns.db.execute("SELECT count(*) FROM concerns").fetchone()[0] == 0


# --- the DSL's buttons ----------------------------------------------------------------------------


async def test_someone_else_pressing_view_or_acknowledge_is_refused_and_audited(
    server: Server,
) -> None:
    ref, _ = await report(server)
    opened = len(server.slack.calls_to("views.open"))
    await click(server, Action.CONCERN_VIEW, ref, user=STAFF, channel=DM)
    await click(server, Action.CONCERN_ACKNOWLEDGE, ref, user=STAFF, channel=DM)
    assert len(server.slack.calls_to("views.open")) == opened  # no report shown
    refusals = server.slack.delivered("chat.postEphemeral")
    assert len(refusals) == 2
    for notice in refusals:
        assert notice.params["user"] == STAFF
        assert ref in notice.params["text"]
        assert_no_secret_words(notice.dumps(), "a refusal")
    refused = [e for e in server.concerns.audit_trail(ref) if not e.allowed]
    assert [(e.actor, e.action) for e in refused] == [
        (f"slack:{STAFF}", "refused:view"),
        (f"slack:{STAFF}", "refused:acknowledge"),
    ]
    view = server.concerns.view(ref, Person("slack", DSL))
    assert view.state == "open"


async def test_the_dsl_views_the_report_in_a_modal(server: Server) -> None:
    ref, _ = await report(server)
    await click(server, Action.CONCERN_VIEW, ref, user=DSL, channel=DSL_DM)
    [call] = server.slack.calls_to("views.open")[-1:]
    shown = call.dumps()
    for word in SECRET_WORDS:
        assert word in shown
    assert f"<@{STAFF}>" in shown
    assert server.slack.calls_to("chat.postEphemeral") == []  # only the modal
    assert [e.action for e in server.concerns.audit_trail(ref) if e.actor == f"slack:{DSL}"] == [
        "viewed"
    ]


async def test_the_dsl_acknowledges_and_the_reporter_is_told(server: Server) -> None:
    ref, _ = await report(server)
    await click(server, Action.CONCERN_ACKNOWLEDGE, ref, user=DSL, channel=DSL_DM)
    [notice] = server.slack.delivered("chat.postEphemeral")
    assert (notice.params["channel"], notice.params["user"]) == (DSL_DM, DSL)
    assert ref in notice.params["text"]
    key = f"concern:{ref}:acknowledged"
    seen = server.concerns.outbox.by_key(key)
    assert seen is not None
    assert (seen.platform, seen.recipient) == ("slack", STAFF)
    told = await delivered(server.slack, key)
    assert dm_channel_of(server.slack, key) == f"D{STAFF}"
    assert ref in told["text"]
    assert_no_secret_words(json.dumps(told), "the reporter's notice")
    trail = [(e.actor, e.action) for e in server.concerns.audit_trail(ref)]
    assert (f"slack:{DSL}", "acknowledged") in trail


async def test_the_dsl_adds_a_note_and_closes_through_modals(server: Server) -> None:
    ref, _ = await report(server)
    await click(server, Action.CONCERN_NOTE, ref, user=DSL, channel=DSL_DM)
    note_form = server.slack.views()[-1]
    assert note_form["callback_id"] == concern_views.NOTE_CALLBACK
    assert json.loads(note_form["private_metadata"])["ref"] == ref
    empty = await submit(server, note_form, {}, user=DSL)
    assert empty["response_action"] == "errors"
    saved = await submit(server, note_form, {"text": "Spoke to Bramblewick parents"}, user=DSL)
    assert saved["response_action"] == "update"
    assert ref in " ".join(texts(saved["view"]))

    await click(server, Action.CONCERN_CLOSE, ref, user=DSL, channel=DSL_DM)
    close_form = server.slack.views()[-1]
    assert close_form["callback_id"] == concern_views.CLOSE_CALLBACK
    closed = await submit(server, close_form, {"text": "Referred to Octarinel team"}, user=DSL)
    assert closed["response_action"] == "update"

    view = server.concerns.view(ref, Person("slack", DSL))
    assert view.state == "closed"
    assert [n.text for n in view.notes] == ["Spoke to Bramblewick parents"]
    assert view.outcome == "Referred to Octarinel team"
    assert_no_secret_words(database_bytes(server.database), "the database file")


async def test_someone_else_cannot_open_the_note_or_close_forms(server: Server) -> None:
    ref, _ = await report(server)
    opened = len(server.slack.calls_to("views.open"))
    await click(server, Action.CONCERN_NOTE, ref, user=STAFF, channel=DM)
    await click(server, Action.CONCERN_CLOSE, ref, user=STAFF, channel=DM)
    assert len(server.slack.calls_to("views.open")) == opened
    assert len(server.slack.delivered("chat.postEphemeral")) == 2
    refused = [e.action for e in server.concerns.audit_trail(ref) if not e.allowed]
    assert refused == ["refused:note", "refused:close"]


async def test_a_forged_note_submission_is_refused(server: Server) -> None:
    ref, _ = await report(server)
    await click(server, Action.CONCERN_NOTE, ref, user=DSL, channel=DSL_DM)
    note_form = server.slack.views()[-1]
    response = await submit(server, note_form, {"text": "sneaky"}, user=STAFF)
    assert response["response_action"] == "update"
    assert ref in " ".join(texts(response["view"]))
    assert server.concerns.view(ref, Person("slack", DSL)).notes == ()


# --- the views themselves, within Slack's limits ------------------------------------------------


def long_view(notes: int, length: int = 3000) -> ConcernView:
    text = ("Bramblewick é " * length)[:length]
    form = ConcernForm("staff", "Z. Q.", text, "Tuesday", True, text, "dsl", f"slack:{DSL}")
    return ConcernView(
        ref="C-2026-0001",
        school="st-annes",
        created_at="2026-01-05T09:00:00+00:00",
        urgent=True,
        reporter=Person("slack", STAFF),
        form=form,
        state="closed",
        recipients=(Person("slack", HEAD), Person("teams", "5c6d7e8f-0000-4000-8000-0000000000d2")),
        acknowledged_by=Person("slack", HEAD),
        acknowledged_at="2026-01-05T09:05:00+00:00",
        notes=tuple(
            Note(f"2026-01-05T10:{i % 60:02d}:00+00:00", f"slack:{HEAD}", f"note {i} {text}")
            for i in range(notes)
        ),
        outcome=text,
        closed_at="2026-01-06T09:00:00+00:00",
    )


def test_a_long_report_fits_a_modal_newest_notes_kept() -> None:
    view = concern_views.report_view(long_view(notes=120))
    blocks = view["blocks"]
    assert len(blocks) <= concern_views.MAX_VIEW_BLOCKS
    assert len(view["title"]["text"]) <= concern_views.MAX_TITLE
    for block in blocks:
        for text in [block.get("text"), *block.get("elements", [])]:
            if isinstance(text, dict) and "text" in text:
                assert len(text["text"]) <= concern_views.MAX_TEXT
    shown = json.dumps(blocks, ensure_ascii=False)
    assert "note 119 " in shown and "note 0 " not in shown
    assert "earlier notes not shown" in shown
    assert "It is about a DSL" in shown
    assert "<@U0HEAD>" in shown and "a colleague on Teams" in shown


def test_staff_text_in_a_report_is_plain_text_not_markup() -> None:
    view = dataclasses.replace(
        long_view(notes=0),
        form=ConcernForm(
            "pupil", "<!channel>", "*bold* <https://evil.example|click>", "", False, ""
        ),
    )
    blocks = concern_views.report_view(view)["blocks"]
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict) and "<!channel>" in text["text"]:
            assert text["type"] == "plain_text"
        if isinstance(text, dict) and "evil.example" in text["text"]:
            assert text["type"] == "plain_text"


@pytest.mark.parametrize(
    ("reporter", "line"),
    [
        (f"slack:{STAFF}", f"Reported by <@{STAFF}>"),
        ("teams:5c6d7e8f-0000-4000-8000-00000000000a", "Reported by a colleague on Teams"),
        ("slack:<!channel>", "Reported by a colleague on Slack"),
    ],
)
def test_an_alert_names_who_reported_it(reporter: str, line: str) -> None:
    from adapters.slack import convert

    reply = Reply("New safeguarding concern C-2026-0001", extra={"reported_by": reporter})
    rendered = json.dumps(convert.render(reply)["blocks"])
    assert line in rendered
    assert "<!channel>" not in rendered


# --- escalation, through the server's own sweep -------------------------------------------------


async def test_an_unacknowledged_report_escalates_to_the_deputy_then_the_head(
    slack: SlackStandIn, sample_db_copy: Path
) -> None:
    """The server's sweep loop runs often; only the (fake) clock decides when a
    report is overdue. Nobody acknowledges, so after 30 minutes the deputy is
    alerted, after the second limit the headteacher, each exactly once."""
    moment = [time.time()]
    settings = with_safeguarding(settings_for(sample_db_copy, slack.api_url), SAFEGUARDING)
    guidebot = Guidebot(settings, clock=lambda: moment[0], sweep_interval=0.02)
    concerns = attach_concerns(guidebot.app, settings)
    async with guidebot:
        server = Server(guidebot, concerns, slack, sample_db_copy)
        ref, _ = await report(server)
        await delivered(slack, f"concern:{ref}:alert:slack:{DSL}")
        assert concerns.escalate_due() == 0  # not yet: the limit has not passed

        to_deputy = f"concern:{ref}:escalation:1:slack:{DEPUTY}"
        moment[0] += 31 * 60
        deputy = await delivered(slack, to_deputy)
        assert ref in deputy["text"]
        assert dm_channel_of(slack, to_deputy) == f"D{DEPUTY}"
        assert_no_secret_words(json.dumps(deputy), "the deputy's alert")
        assert slack.posted(f"concern:{ref}:escalation:2:slack:{HEAD}") == []

        to_head = f"concern:{ref}:escalation:2:slack:{HEAD}"
        moment[0] += 31 * 60
        await delivered(slack, to_head)
        assert concerns.escalate_due() == 0  # every step is taken once, however often it runs
        counts = slack.posted_keys()
        assert (counts[to_deputy], counts[to_head]) == (1, 1)
        escalations = [e for e in concerns.audit_trail(ref) if e.action == "escalated"]
        assert len(escalations) == 2
        assert concerns.may_handle(ref, Person("slack", DEPUTY))  # the deputy may now act on it


async def test_an_acknowledged_report_does_not_escalate(
    slack: SlackStandIn, sample_db_copy: Path
) -> None:
    moment = [time.time()]
    settings = with_safeguarding(settings_for(sample_db_copy, slack.api_url), SAFEGUARDING)
    guidebot = Guidebot(settings, clock=lambda: moment[0], sweep_interval=0.02)
    concerns = attach_concerns(guidebot.app, settings)
    async with guidebot:
        server = Server(guidebot, concerns, slack, sample_db_copy)
        ref, _ = await report(server)
        await click(server, Action.CONCERN_ACKNOWLEDGE, ref, user=DSL, channel=DSL_DM)
        moment[0] += 3 * 60 * 60
        assert concerns.escalate_due() == 0
        assert not [k for k in slack.posted_keys() if ":escalation:" in k]
