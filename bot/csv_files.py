"""Reading the CSV files schools export from their spreadsheets.

The staff directory and training completions are both imported from a CSV
that someone saved from Excel: checked the same way (at most 5 MB, UTF-8 with
or without Excel's byte order mark, a heading row) and with every problem
named by file and line. Each importer passes its own error class, so the CLI
still says which import went wrong.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from knowledge.errors import GuidebotError

MAX_IMPORT_BYTES = 5 * 1024 * 1024


def read_text(path: Path, error: type[GuidebotError]) -> str:
    """The file's text; raises ``error`` saying why it cannot be read."""
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise error(f"{path.name} is larger than 5 MB: is it the right file?")
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path} is a folder, not a CSV file") from None
    except UnicodeDecodeError:
        raise error(f"{path.name} is not UTF-8 text: in Excel, save it as 'CSV UTF-8'") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None


def records(
    text: str,
    source: str,
    *,
    headings: Sequence[str],
    required: Sequence[str],
    error: type[GuidebotError],
) -> Iterator[tuple[int, dict[str, str]]]:
    """Each non-blank row as (line number, cells by lower-case heading, stripped).

    The heading row is checked at once (``required`` columns; ``headings`` is
    what the message suggests); rows are read as they are asked for, so a bad
    row the caller finds is reported before a broken line further down."""
    text = text.lstrip("\ufeff")
    wanted = ",".join(headings)
    if not text.strip():
        raise error(f"{source} is empty: it needs a header row {wanted}")
    reader = csv.DictReader(io.StringIO(text))
    found = {(h or "").strip().casefold() for h in reader.fieldnames or []}
    missing = [h for h in required if h not in found]
    if missing:
        raise error(
            f"{source} has no {' or '.join(missing)} column: the first row must be "
            f"the headings {wanted}"
        )
    return _rows(reader, source, error)


def _rows(
    reader: csv.DictReader[str], source: str, error: type[GuidebotError]
) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        for record in reader:
            cells = {(k or "").strip().casefold(): (v or "").strip() for k, v in record.items()}
            if any(cells.values()):
                yield reader.line_num, cells
    except csv.Error as exc:
        raise error(f"{source} line {reader.line_num}: not valid CSV ({exc})") from None
