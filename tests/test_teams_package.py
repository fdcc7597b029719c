"""deploy/teams/: the Teams app package source, its icons and its generator.

The manifest is checked against the v1.17 app manifest schema's rules for the
fields it uses (required fields, lengths, GUIDs, enumerations), the icons are
read back with a small PNG reader built on zlib, and the package is built with
the same code the IT admin runs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bot import wording
from bot.answers import Answerer
from bot.messages import Incoming
from bot.storage import Operations
from knowledge.search import Searcher
from knowledge.store import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
TEAMS = ROOT / "deploy" / "teams"
MANIFEST = TEAMS / "manifest.json"
README = TEAMS / "README.md"
SERVER = ROOT / "adapters" / "server.py"
SCHEMA = "https://developer.microsoft.com/en-us/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
SEMVER = re.compile(r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)")
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
# What staff can type, as the core understands it.
HELP = "help"
REPORT = "report a concern"


def load_make_icons() -> ModuleType:
    """deploy/teams/make_icons.py is a script, not a package module."""
    spec = importlib.util.spec_from_file_location("make_icons", TEAMS / "make_icons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_icons", module)
    spec.loader.exec_module(module)
    return module


make_icons = load_make_icons()


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def filled_in(manifest: dict[str, Any]) -> str:
    """The manifest as an IT admin would leave it after step 5 of the README."""
    text = json.dumps(manifest, indent=2)
    return (
        text.replace(PLACEHOLDER_ID, "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f")
        .replace("YOUR-HOST", "guidebot.st-annes.sch.uk")
        .replace("YOUR SCHOOL", "St Anne's CE Primary")
    )


# --- a small PNG reader -----------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    colour_type: int
    chunks: tuple[bytes, ...]
    pixels: tuple[tuple[int, ...], ...]  # (R, G, B) or (R, G, B, A), row by row


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(data: bytes) -> Image:
    """An 8-bit RGB or RGBA PNG, every chunk's CRC checked, every filter undone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, kinds, idat = 8, [], b""
    header = b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        kinds.append(kind)
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", header
    )
    assert (depth, compression, filtering, interlace) == (8, 0, 0, 0)
    assert colour_type in (2, 6), f"colour type {colour_type}: expected RGB or RGBA"
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    assert len(raw) == height * (stride + 1)
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            predictor = (
                0,
                left,
                up,
                (left + up) // 2,
                _paeth(left, up, up_left),
            )[kind]
            line[i] = (line[i] + predictor) & 0xFF
        rows.append(line)
        previous = line
    pixels = tuple(tuple(row[i : i + channels]) for row in rows for i in range(0, stride, channels))
    return Image(width, height, colour_type, tuple(kinds), pixels)


def test_the_png_reader_reads_what_zlib_compressed_with_every_filter() -> None:
    """The reader is checked on a PNG it did not make: compressed, with filters 1-4."""
    rows = [bytes((10 * x, 20 * y, 30, 255)) for y in range(4) for x in range(3)]
    raw = b""
    previous = bytes(12)
    for y, kind in enumerate((1, 2, 3, 4)):
        line = b"".join(rows[y * 3 : y * 3 + 3])
        out = bytearray()
        for i, value in enumerate(line):
            left = line[i - 4] if i >= 4 else 0
            up, up_left = previous[i], previous[i - 4] if i >= 4 else 0
            predictor = (0, left, up, (left + up) // 2, _paeth(left, up, up_left))[kind]
            out.append((value - predictor) & 0xFF)
        raw += bytes((kind,)) + bytes(out)
        previous = line
    data = make_icons.png([b"x" * 12] * 4, 3, 6)  # borrow the chunk layout, then swap IDAT
    header = data[: data.index(b"IDAT") - 4]
    idat = zlib.compress(raw, 9)
    chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat
    chunk += struct.pack(">I", zlib.crc32(b"IDAT" + idat) & 0xFFFFFFFF)
    image = read_png(header + chunk + data[data.index(b"IEND") - 4 :])
    assert image.pixels == tuple(tuple(pixel) for pixel in rows)


# --- the manifest -----------------------------------------------------------------------------


def test_the_manifest_has_every_required_field_of_the_v1_17_schema(
    manifest: dict[str, Any],
) -> None:
    required = {
        "manifestVersion",
        "version",
        "id",
        "developer",
        "name",
        "description",
        "icons",
        "accentColor",
    }
    assert required <= set(manifest)
    assert set(manifest) == required | {"$schema", "bots", "permissions", "validDomains"}
    assert manifest["$schema"] == SCHEMA
    assert manifest["manifestVersion"] == "1.17"
    assert manifest["version"] == "1.0.0"
    assert SEMVER.fullmatch(manifest["version"])


def test_the_ids_are_guid_shaped_placeholders_for_the_app_id(manifest: dict[str, Any]) -> None:
    [bot] = manifest["bots"]
    for value in (manifest["id"], bot["botId"]):
        assert GUID.fullmatch(value)
        assert value == PLACEHOLDER_ID  # the README's step 5 replaces both
    text = README.read_text(encoding="utf-8")
    assert PLACEHOLDER_ID in text
    assert '"id"' in text and '"botId"' in text and "Microsoft App ID" in text


def test_developer_name_and_description_are_within_the_limits(manifest: dict[str, Any]) -> None:
    developer = manifest["developer"]
    assert set(developer) == {"name", "websiteUrl", "privacyUrl", "termsOfUseUrl"}
    assert 0 < len(developer["name"]) <= 32
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert developer[key].startswith("https://YOUR-HOST"), key
        assert len(developer[key]) <= 2048
    assert manifest["name"] == {"short": "guidebot", "full": "guidebot: school policy helper"}
    assert len(manifest["name"]["short"]) <= 30
    assert len(manifest["name"]["full"]) <= 100
    description = manifest["description"]
    assert set(description) == {"short", "full"}
    assert 0 < len(description["short"]) <= 80
    assert len(description["short"]) < len(description["full"]) <= 4000


def test_the_description_is_plain_british_english(manifest: dict[str, Any]) -> None:
    text = " ".join(manifest["description"].values()).lower()
    for american in ("organization", "color", "center", "behavior", "program ", "license"):
        assert american not in text, american
    for needed in ("designated safeguarding lead", "999", '"help"', '"report a concern"'):
        assert needed in text, needed


def test_icons_and_accent_colour(manifest: dict[str, Any]) -> None:
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert HEX_COLOUR.fullmatch(manifest["accentColor"])
    assert manifest["accentColor"].lower() == "#1d4f6e"  # the Slack app's colour too


def test_the_bot(manifest: dict[str, Any]) -> None:
    [bot] = manifest["bots"]
    assert set(bot) == {"botId", "scopes", "supportsFiles", "isNotificationOnly", "commandLists"}
    assert bot["scopes"] == ["personal", "team", "groupChat"]
    assert bot["supportsFiles"] is False
    assert bot["isNotificationOnly"] is False
    assert manifest["permissions"] == ["identity", "messageTeamMembers"]
    assert manifest["validDomains"] == ["YOUR-HOST"]  # a host name, no https://


def test_the_command_lists(manifest: dict[str, Any]) -> None:
    lists = manifest["bots"][0]["commandLists"]
    assert len(lists) <= 3
    assert [entry["scopes"] for entry in lists] == [["personal"], ["team"]]
    for entry in lists:
        assert set(entry) == {"scopes", "commands"}
        commands = entry["commands"]
        assert len(commands) <= 10
        for command in commands:
            assert set(command) == {"title", "description"}
            assert 0 < len(command["title"]) <= 32, command
            assert 0 < len(command["description"]) <= 128, command
        titles = [command["title"] for command in commands]
        assert titles[:2] == [HELP, REPORT]
        assert len(titles) == 3 and titles[2].endswith("?")  # an example question
        described = {command["title"]: command["description"] for command in commands}
        assert described[HELP] == "What I can do"
        assert described[REPORT] == "How to report a safeguarding concern"
    assert lists[0]["commands"] == lists[1]["commands"]


# --- what the commands do ----------------------------------------------------------------------


def command_titles() -> list[str]:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return [command["title"] for command in manifest["bots"][0]["commandLists"][0]["commands"]]


def test_every_command_is_documented_for_staff_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    for title in command_titles():
        assert f"`{title}`" in text, title


@pytest.fixture
def answerer(sample_db_copy: Path) -> Iterator[Answerer]:
    kb = KnowledgeBase(sample_db_copy)
    yield Answerer(kb, Searcher(kb), Operations(kb.db))
    kb.close()


def teams_message(text: str) -> Incoming:
    return Incoming("teams", "st-annes", "29:staff-member", text, "a:personal-chat")


async def test_the_help_command_gets_the_help_reply(answerer: Answerer) -> None:
    reply = await answerer.answer(teams_message(HELP))
    assert reply.kind == "help"
    assert "Designated Safeguarding Lead" in reply.text


async def test_the_example_question_is_answered(answerer: Answerer) -> None:
    [example] = [title for title in command_titles() if title.endswith("?")]
    reply = await answerer.answer(teams_message(example))
    assert reply.kind == "answer"
    assert reply.quote is not None
    assert "friend" in reply.quote.text.lower()


async def test_the_report_a_concern_command_says_how_to_report(answerer: Answerer) -> None:
    reply = await answerer.answer(teams_message(REPORT))
    assert wording.report_how() in reply.text or wording.concern_offer() in reply.text


# --- the icons -------------------------------------------------------------------------------


def test_the_colour_icon_is_a_192_pixel_full_colour_png() -> None:
    image = read_png((TEAMS / "color.png").read_bytes())
    assert (image.width, image.height) == (192, 192)
    assert image.chunks == (b"IHDR", b"IDAT", b"IEND")
    colours = {pixel[:3] for pixel in image.pixels}
    assert (0x1D, 0x4F, 0x6E) in colours  # the teal background
    assert (0xFF, 0xFF, 0xFF) in colours  # the white bubble
    assert image.pixels[0][:3] == (0x1D, 0x4F, 0x6E)
    if image.colour_type == 6:
        assert {pixel[3] for pixel in image.pixels} == {255}


def test_the_outline_icon_is_32_pixels_white_on_transparent() -> None:
    image = read_png((TEAMS / "outline.png").read_bytes())
    assert (image.width, image.height) == (32, 32)
    assert image.colour_type == 6  # RGBA: it needs transparency
    for number, (red, green, blue, alpha) in enumerate(image.pixels):
        assert alpha == 0 or (red, green, blue) == (255, 255, 255), (number % 32, number // 32)
    alphas = [pixel[3] for pixel in image.pixels]
    assert alphas.count(255) > 100  # a real shape, not a speck
    assert alphas.count(0) > 400  # on a transparent background
    for corner in (0, 31, 32 * 31, 32 * 32 - 1):
        assert alphas[corner] == 0


def test_the_committed_icons_are_exactly_what_make_icons_draws(tmp_path: Path) -> None:
    colour, outline = make_icons.make_icons(tmp_path)
    assert colour.read_bytes() == (TEAMS / "color.png").read_bytes()
    assert outline.read_bytes() == (TEAMS / "outline.png").read_bytes()


def test_make_icons_uses_only_the_standard_library() -> None:
    source = (TEAMS / "make_icons.py").read_text(encoding="utf-8")
    imported = set(re.findall(r"^(?:from|import) (\w+)", source, re.MULTILINE))
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


# --- the package -----------------------------------------------------------------------------


def test_the_package_has_the_manifest_and_both_icons_at_its_root(tmp_path: Path) -> None:
    out = make_icons.build_package(MANIFEST, TEAMS, tmp_path / "guidebot-teams.zip")
    with zipfile.ZipFile(out) as package:
        assert package.testzip() is None
        assert package.namelist() == ["manifest.json", "color.png", "outline.png"]
        for name in package.namelist():
            assert package.read(name) == (TEAMS / name).read_bytes()
        manifest = json.loads(package.read("manifest.json"))
        for icon in manifest["icons"].values():
            assert icon in package.namelist()
    again = make_icons.build_package(MANIFEST, TEAMS, tmp_path / "again.zip")
    assert again.read_bytes() == out.read_bytes()  # the same files make the same zip


def test_make_icons_zip_refuses_a_manifest_with_placeholders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "guidebot-teams.zip"
    assert make_icons.main(["--out", str(tmp_path), "--zip", str(out)]) == 2
    assert not out.exists()
    said = capsys.readouterr().err
    assert f"id is still {PLACEHOLDER_ID}" in said
    assert f'bots[0] "botId" is still {PLACEHOLDER_ID}' in said
    assert "YOUR-HOST is still in it" in said
    assert "YOUR SCHOOL is still in it" in said
    assert "deploy/teams/README.md" in said


def test_make_icons_zip_builds_the_package_from_a_filled_in_manifest(
    tmp_path: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "manifest.json"
    mine.write_text(filled_in(manifest), encoding="utf-8")
    icons = tmp_path / "icons"
    out = tmp_path / "package" / "guidebot-teams.zip"
    code = make_icons.main(["--out", str(icons), "--manifest", str(mine), "--zip", str(out)])
    assert code == 0, capsys.readouterr()
    with zipfile.ZipFile(out) as package:
        assert package.namelist() == ["manifest.json", "color.png", "outline.png"]
        packed = json.loads(package.read("manifest.json"))
        assert packed["id"] == packed["bots"][0]["botId"] != PLACEHOLDER_ID
        assert package.read("color.png") == (TEAMS / "color.png").read_bytes()
    assert f"built {out}" in capsys.readouterr().out


def test_the_default_package_is_next_to_the_manifest_and_not_committed() -> None:
    assert TEAMS / "guidebot-teams.zip" == make_icons.DEFAULT_ZIP
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "deploy/teams/*.zip" in ignored


# --- the README ------------------------------------------------------------------------------


def test_the_readme_walks_an_it_admin_through_every_step() -> None:
    text = README.read_text(encoding="utf-8")
    for needed in (
        "Azure Bot",
        "Microsoft App ID",
        "client secret",
        "MICROSOFT_APP_PASSWORD",
        "Single Tenant",
        "Multi Tenant",
        "app_tenant_id",
        "https://YOUR-HOST/api/messages",
        "Microsoft Teams channel",
        "[teams]",
        "[[teams.tenant]]",
        "make_icons.py --zip",
        "guidebot-teams.zip",
        "Manage your apps",
        "Upload an app",
        "admin.teams.microsoft.com",
        "guidebot doctor",
        "guidebot serve",
        "--insecure-local",
        "Bot Framework Emulator",
        "Never use it on a real server",
        "Several schools",
        "Designated Safeguarding Lead",
    ):
        assert needed in text, needed


def test_the_messaging_endpoint_is_the_path_the_server_listens_on() -> None:
    assert '"/api/messages"' in SERVER.read_text(encoding="utf-8")
