"""Draw the Teams app icons, and build the app package to upload to Teams.

    python deploy/teams/make_icons.py                # redraw color.png and outline.png here
    python deploy/teams/make_icons.py --out DIR      # draw them in DIR instead
    python deploy/teams/make_icons.py --zip          # also build deploy/teams/guidebot-teams.zip
    python deploy/teams/make_icons.py --zip OUT.zip  # ... or the package at OUT.zip

The design is a white speech bubble holding an open book, on guidebot's dark
teal (#1d4f6e) for the 192x192 colour icon, and white on transparent for the
32x32 outline icon Teams shows in its app bar.

Only the standard library: the shapes are simple geometry, sampled 16 or 64
times per pixel for smooth edges, and the PNG chunks are written with struct
and zlib's checksums. The image data is kept in "stored" (uncompressed)
deflate blocks rather than compressed by zlib, because compressed bytes can
differ between zlib builds; this way the same icons come out byte for byte
on every machine, and tests/test_teams_package.py checks that the committed
icons are exactly what this script draws.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
DEFAULT_ZIP = HERE / "guidebot-teams.zip"
PACKAGE_FILES = ("manifest.json", "color.png", "outline.png")
PLACEHOLDERS = ("00000000-0000-0000-0000-000000000000", "YOUR-HOST", "YOUR SCHOOL")

TEAL = (0x1D, 0x4F, 0x6E)
WHITE = (0xFF, 0xFF, 0xFF)
DESIGN = 192.0  # the shapes below are drawn on a 192 x 192 grid

Point = tuple[float, float]
Shape = Callable[[float, float], bool]


# --- the shapes, on the 192 x 192 grid --------------------------------------------------------


def rounded_rect(left: float, top: float, right: float, bottom: float, radius: float) -> Shape:
    def inside(x: float, y: float) -> bool:
        if not (left <= x <= right and top <= y <= bottom):
            return False
        cx = min(max(x, left + radius), right - radius)
        cy = min(max(y, top + radius), bottom - radius)
        return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2

    return inside


def polygon(*points: Point) -> Shape:
    edges = list(zip(points, points[1:] + points[:1], strict=True))
    left, right = min(x for x, _ in points), max(x for x, _ in points)
    top, bottom = min(y for _, y in points), max(y for _, y in points)

    def inside(x: float, y: float) -> bool:
        if not (left <= x <= right and top <= y <= bottom):
            return False
        result = False
        for (x1, y1), (x2, y2) in edges:
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                result = not result
        return result

    return inside


def any_of(*shapes: Shape) -> Shape:
    def inside(x: float, y: float) -> bool:
        return any(shape(x, y) for shape in shapes)

    return inside


# The speech bubble: a rounded rectangle with a tail at the bottom left.
BUBBLE = any_of(
    rounded_rect(30, 36, 162, 130, 20),
    polygon((52, 124), (88, 124), (46, 158)),
)
# The open book: two pages that rise towards the outer edges, with a gap for the spine.
LEFT_PAGE = polygon((52, 60), (93, 67), (93, 112), (52, 105))
RIGHT_PAGE = polygon((99, 67), (140, 60), (140, 105), (99, 112))
BOOK = any_of(LEFT_PAGE, RIGHT_PAGE)


def _lines(left: float, right: float, rise: float) -> Shape:
    """Three lines of 'text' across a page, sloping with it."""

    def line(top: float) -> Shape:
        return polygon(
            (left, top + rise),
            (right, top),
            (right, top + 4),
            (left, top + rise + 4),
        )

    return any_of(*(line(top) for top in (76, 86, 96)))


# The lines of text on the pages: only on the big icon, where they can be seen.
TEXT = any_of(_lines(59, 87, -6), _lines(105, 133, 6))


# The outline icon is only 32 pixels across, so it has its own version of the
# same shapes, drawn on its 32 x 32 grid with edges on whole pixels where it
# matters (the spine is exactly two pixels wide), and without the lines of text.
SMALL_BUBBLE = any_of(
    rounded_rect(4, 5, 28, 22, 3.5),
    polygon((8, 21), (14, 21), (7, 28)),
)
SMALL_BOOK = any_of(
    polygon((8, 10), (15, 11), (15, 18), (8, 17)),
    polygon((17, 11), (24, 10), (24, 17), (17, 18)),
)


def colour_at(x: float, y: float) -> tuple[int, int, int]:
    if BUBBLE(x, y) and not (BOOK(x, y) and not TEXT(x, y)):
        return WHITE
    return TEAL


def outline_at(x: float, y: float) -> bool:
    """Opaque white where the bubble is, with the book cut out of it."""
    return SMALL_BUBBLE(x, y) and not SMALL_BOOK(x, y)


# --- drawing ---------------------------------------------------------------------------------


def _samples(px: int, py: int, per_side: int, scale: float = 1.0) -> list[Point]:
    step = 1 / per_side
    return [
        ((px + (i + 0.5) * step) * scale, (py + (j + 0.5) * step) * scale)
        for j in range(per_side)
        for i in range(per_side)
    ]


def draw_colour(size: int = 192, per_side: int = 4) -> list[bytes]:
    """Rows of RGB pixels: each the average of per_side x per_side samples, except
    that a pixel whose four corners and centre agree is taken as all one colour
    (no shape is thin enough to hide inside a single pixel)."""
    scale = DESIGN / size
    rows: list[bytes] = []
    count = per_side * per_side
    for py in range(size):
        row = bytearray()
        for px in range(size):
            probes = {
                colour_at((px + dx) * scale, (py + dy) * scale)
                for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1), (0.5, 0.5))
            }
            if len(probes) == 1:
                row += bytes(probes.pop())
                continue
            totals = [0, 0, 0]
            for x, y in _samples(px, py, per_side, scale):
                for channel, value in enumerate(colour_at(x, y)):
                    totals[channel] += value
            row += bytes((total + count // 2) // count for total in totals)
        rows.append(bytes(row))
    return rows


def draw_outline(per_side: int = 8) -> list[bytes]:
    """Rows of 32 RGBA pixels: always white, with the shape's coverage as alpha."""
    rows: list[bytes] = []
    count = per_side * per_side
    for py in range(32):
        row = bytearray()
        for px in range(32):
            covered = sum(outline_at(x, y) for x, y in _samples(px, py, per_side))
            row += bytes((*WHITE, (covered * 255 + count // 2) // count))
        rows.append(bytes(row))
    return rows


# --- PNG -------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _stored_zlib(data: bytes) -> bytes:
    """A zlib stream of stored deflate blocks: the same bytes from every zlib."""
    out = bytearray(b"\x78\x01")  # deflate, 32K window, no preset dictionary
    blocks = [data[i : i + 65535] for i in range(0, len(data), 65535)] or [b""]
    for number, block in enumerate(blocks, start=1):
        out.append(1 if number == len(blocks) else 0)  # BFINAL, BTYPE 00 (stored)
        out += struct.pack("<HH", len(block), len(block) ^ 0xFFFF) + block
    out += struct.pack(">I", zlib.adler32(data) & 0xFFFFFFFF)
    return bytes(out)


def png(rows: Sequence[bytes], width: int, colour_type: int) -> bytes:
    """An 8-bit PNG (colour type 2 RGB or 6 RGBA), each row with filter 0."""
    header = struct.pack(">IIBBBBB", width, len(rows), 8, colour_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", _stored_zlib(raw))
        + _chunk(b"IEND", b"")
    )


def make_icons(out: Path) -> tuple[Path, Path]:
    """Write color.png (192x192 RGB) and outline.png (32x32 RGBA) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    colour = out / "color.png"
    outline = out / "outline.png"
    colour.write_bytes(png(draw_colour(), 192, 2))
    outline.write_bytes(png(draw_outline(), 32, 6))
    return colour, outline


# --- the app package -----------------------------------------------------------------------


def placeholders_left(manifest: Path) -> list[str]:
    """What still needs filling in before the package can be uploaded."""
    text = manifest.read_text(encoding="utf-8")
    data = json.loads(text)
    problems: list[str] = []
    bots = data.get("bots") or [{}]
    for where, value in (("id", data.get("id")), ('bots[0] "botId"', bots[0].get("botId"))):
        if value == PLACEHOLDERS[0]:
            problems.append(f"{where} is still {value}: put the bot's Microsoft App ID there")
    for placeholder in PLACEHOLDERS[1:]:
        if placeholder in text:
            problems.append(f"{placeholder} is still in it: replace it everywhere")
    return problems


def build_package(manifest: Path, icons: Path, out: Path) -> Path:
    """The zip Teams accepts: manifest.json and both icons, at the top level.

    Entries have a fixed date, so the same files always make the same zip."""
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = {"manifest.json": manifest, "color.png": icons / "color.png"}
    sources["outline.png"] = icons / "outline.png"
    with zipfile.ZipFile(out, "w") as package:
        for name in PACKAGE_FILES:
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            package.writestr(entry, sources[name].read_bytes())
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Draw guidebot's Teams icons and build the Teams app package.",
        epilog="Example: python deploy/teams/make_icons.py --zip",
    )
    parser.add_argument(
        "--out", type=Path, default=HERE, help="where to draw the icons (default: %(default)s)"
    )
    parser.add_argument(
        "--manifest", type=Path, default=MANIFEST, help="the manifest (default: %(default)s)"
    )
    parser.add_argument(
        "--zip",
        nargs="?",
        const=DEFAULT_ZIP,
        type=Path,
        metavar="OUT",
        help=f"also build the app package to upload to Teams (default: {DEFAULT_ZIP})",
    )
    args = parser.parse_args(argv)
    colour, outline = make_icons(args.out)
    print(f"drew {colour} and {outline}")
    if args.zip is None:
        return 0
    problems = placeholders_left(args.manifest)
    if problems:
        for problem in problems:
            print(f"make_icons: {args.manifest}: {problem}", file=sys.stderr)
        print("make_icons: see deploy/teams/README.md, step 5", file=sys.stderr)
        return 2
    package = build_package(args.manifest, args.out, args.zip)
    print(f"built {package}: upload it to Teams (see deploy/teams/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
