"""Reading local text files exactly as they are: the lowest layer of the data loaders.

Text is never altered: a line is returned without its line end (`\\n` or `\\r\\n`) and nothing else removed
or changed (no strip, no Unicode normalisation, no quote layer taken off unless the format says it is
there); lines are split on `\\n` only (never on U+2028, form feeds or other characters `str.splitlines`
takes as line ends); a UTF-8 byte order mark at the start of a file is not text and is dropped.

Quoting of delimited files is decided from the FORMAT, never guessed from the content:

- `raw` (csv.QUOTE_NONE): a field is everything between two tabs (or a tab and the line end); a `"` is text.
  Release-style TSV files (FLORES-200 TSV, the shared samples, AfriSenti, the Hebrew sentiment data) are raw.
- `csv` (csv.QUOTE_MINIMAL, strict): a field may be wrapped in `"` with `""` for a quote inside, as pandas
  `to_csv` and `csv.writer` write it. Every `.csv` file is CSV-quoted, and so is the SIB-200 repository's own
  layout (`<dir>/data/annotated/<code>/*.tsv`, written by pandas). A file that is not valid CSV in this mode
  (a raw `"Win," he said.` read as CSV) is an error naming its line, never silently unquoted.

The loaders take `quoting="raw"` / `"csv"` to override the rule (the profile key `data.quoting`).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"  # never the start of UTF-8 text (0x8b is a continuation byte)
QUOTINGS = ("raw", "csv")
# A NUL in text: UTF-16 without a byte order mark decodes as UTF-8 with a NUL after each ASCII letter
NUL, NUL_HINT = "a NUL character", "UTF-16 or binary, not UTF-8 text?"
Quoting = Literal["raw", "csv"]


class DataSourceError(ValueError):
    """A data file or hub dataset is missing or malformed; the message names the file (and line) or hub id."""


def existing(location: str | os.PathLike, what: str) -> Path:
    path = Path(location)
    if not path.exists():
        raise DataSourceError(f"{path}: {what} not found")
    return path


def refuse_gzip(data: bytes, file: str | os.PathLike) -> None:
    """A one-line error for a gzip-compressed file read as text (`train.jsonl` that is really `.jsonl.gz`): only
    the ConceptNet dump is read compressed, and otherwise every line would be reported as invalid UTF-8."""
    if data.startswith(GZIP_MAGIC):
        raise DataSourceError(
            f"{file}: gzip-compressed, not text (decompress it; only the ConceptNet dump may be gzipped)"
        )


def decode(data: bytes, file: str | os.PathLike) -> str:
    """The UTF-8 text of a file's bytes (a leading BOM dropped); invalid UTF-8 or a NUL character (`NUL`) is an
    error naming the line, gzip-compressed data an error saying so (`refuse_gzip`)."""
    refuse_gzip(data, file)
    data = data.removeprefix(BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataSourceError(f"{file}:{line}: not valid UTF-8 (byte {column} of the line)") from None
    if (nul := text.find("\0")) >= 0:
        raise nul_error(file, text.count("\n", 0, nul) + 1)
    return text


def nul_error(file: str | os.PathLike, line: int) -> DataSourceError:
    return DataSourceError(f"{file}:{line}: {NUL} ({NUL_HINT})")


def read_bytes(file: str | os.PathLike) -> bytes:
    """A file's bytes; a missing or unreadable file (permissions, a folder in its place) is a one-line error."""
    try:
        return existing(file, "file").read_bytes()
    except OSError as exc:
        raise DataSourceError(f"{file}: unreadable ({exc.strerror or exc})") from None


def read_text(file: str | os.PathLike) -> str:
    return decode(read_bytes(file), file)


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def json_value(text: str) -> Any:
    """`json.loads`, refusing what it lets through but UTF-8 cannot hold: a lone surrogate escape (`"\\ud800"`),
    which would fail later, when the text is encoded, without its file and line. Raises json.JSONDecodeError."""
    value = json.loads(text)
    if SURROGATE_ESCAPE.search(text):  # rare: paired surrogates (an emoji) are fine, a lone one is not
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise json.JSONDecodeError("lone surrogate escape, not a character", text, 0) from None
    return value


def lines_with_ends(text: str) -> list[str]:
    """The lines of `text`, each with its `\\n` (the last one may have none); split on `\\n` only."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def without_end(line: str) -> str:
    """A line without its line end: `\\r\\n` or `\\n` (a `\\r` elsewhere is text)."""
    return line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line


def lines(text: str) -> list[str]:
    """The lines of `text` without their line ends."""
    return [without_end(line) for line in lines_with_ends(text)]


def check_quoting(quoting: str | None) -> None:
    if quoting is not None and quoting not in QUOTINGS:
        raise ValueError(f"quoting must be raw, csv or None (by the file's format), got {quoting!r}")


def tsv_quoting(file: Path, quoting: Quoting | None) -> Quoting:
    """`quoting` if given, else by the layout: CSV in the SIB-200 repository (`data/annotated/<code>/`), or a
    `.csv` file; raw for any other file."""
    check_quoting(quoting)
    if quoting is not None:
        return quoting
    if file.suffix == ".csv" or Path(file).absolute().parts[-4:-2] == ("data", "annotated"):
        return "csv"
    return "raw"


def records(
    line_list: Iterable[str], quoting: Quoting, where: str, delimiter: str = "\t"
) -> Iterator[tuple[int, int, list[str]]]:
    """(first line number, last line number, fields) of each record of `line_list` (lines WITH their ends).

    Raw: one record per line, the fields split on `delimiter`. CSV: csv.reader (strict), so a quoted field may
    hold the delimiter, `""` and line ends. An empty line is a record without fields ([]).
    """
    if quoting == "raw":
        for n, line in enumerate(line_list, 1):
            text = without_end(line)
            yield n, n, text.split(delimiter) if text else []
        return
    reader = csv.reader(iter(line_list), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, strict=True)
    end = 0
    while True:
        try:
            fields = next(reader, None)
        except csv.Error as exc:
            raise DataSourceError(f"{where}:{end + 1}: not valid CSV quoting ({exc})") from None
        if fields is None:
            return
        yield end + 1, reader.line_num, fields
        end = reader.line_num


def header_error(file: Path, columns: Iterable[str], found: str) -> DataSourceError:
    """The one-line error of a file whose first line is not the header `columns`, naming what it found."""
    return DataSourceError(f"{file}:1: expected the header {chr(9).join(columns)!r}, found {found[:80]!r}")


def read_tsv(file: Path, columns: tuple[str, ...], quoting: Quoting | None) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each row of a TSV file with the header `columns` (quoting: `tsv_quoting`);
    empty lines are skipped, a row with another number of fields is an error naming its line."""
    rows = []
    found = records(lines_with_ends(read_text(file)), tsv_quoting(file, quoting), str(file))
    header = next(found, (1, 1, []))[2]
    if [name.strip() for name in header] != list(columns):
        raise header_error(file, columns, "\t".join(header))
    for first, _, fields in found:
        if not fields:
            continue
        if len(fields) != len(columns):
            raise DataSourceError(f"{file}:{first}: {len(fields)} fields, expected {len(columns)}")
        rows.append((first, fields))
    return rows
