"""GlotCC-v1 documents (SPEC §3): streamed, split 80/10/10 by document, train and val capped.

The paper loaded a whole language, split it with `train_test_split(random_state=42)` twice, wrote CSV files,
cut them to 1 GiB (train) and 200 MiB (val) by physical lines and re-read them with `on_bad_lines="skip"`,
which lost 85% of the Marathi text (SPEC §3, §9.5). Here documents are read one at a time and each goes to
a split by a keyed hash of its text:

    u = BLAKE2b-64(UTF-8 text, key=str(seed)) / 2**64;   train if u < 0.8, val if u < 0.9, else test

A hash rather than an RNG draw per document: the split of a document depends only on its text and the seed,
not on the order or number of documents read before it, so the splits need no second pass and no shuffle
buffer, a capped run's splits are prefixes of an uncapped run's, and exact duplicates (GlotCC is not
deduplicated) never straddle train and val. Each split keeps its documents in reading order until the
first one that would take its UTF-8 text past its cap: the split is then full, at a document boundary, and
takes no further document (they are counted as `over_cap`). Reading stops as soon as train and val are
full, so a large language is read only about as far as the caps need (≈ 2 GiB for the paper's caps, since
val fills last); test takes what reaches it by then, capped like val (the paper's test split is never
used downstream).

Records: `location` is "hub" (`cis-lmu/GlotCC-v1`, streamed), a folder searched for
`**/<code>/*.parquet|jsonl|txt` (the release layout `v1.0/<code>/<code>_0.parquet`) or for a per-language folder
or file named by any code form (`mlt-Latn`, `mlt_Latn` or `mlt`: `text/mlt/wikipedia.txt`, `text/mlt.txt`;
`glotcc_files`), or one such file (parquet column `content` or `text`; JSON lines with key `content` or `text`;
text: one document per line).
A document is kept exactly as stored (a text line without its `\n` or `\r\n`, nothing else removed). Blank
lines of a text or JSONL file separate nothing and are counted as `empty`. Malformed records (null, empty or
non-string content, invalid UTF-8, invalid JSON, a JSON line without the key) are counted by reason, the
first ones are reported as `file:line` (`file:row N` in parquet), and the run fails when more than
`max_bad_fraction` of the records read are malformed. A file that cannot be read at all (a truncated or
corrupt parquet file) is a one-line DataSourceError naming it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from lrl_utils.data.sources import (
    DEFAULT_MAX_BAD_FRACTION,
    BadRecords,
    DataSourceError,
    Location,
    SplitWriter,
    _existing,
    _from_hub,
    _hub_error,
    _is_hub,
)
from lrl_utils.data.text_files import NUL, NUL_HINT, json_value, refuse_gzip, without_end

GLOTCC_HINT = (
    "`data.glotcc` at a GlotCC-v1 folder (v1.0/<code>/*.parquet), a folder of per-language folders or files "
    "(mlt/, mlt-Latn/ or mlt.txt) or a .parquet/.jsonl/.txt file"
)
GLOTCC_SUFFIXES = (".parquet", ".jsonl", ".txt")
TRAIN_SHARE, VAL_SHARE = 0.8, 0.1  # test: the rest
MAX_VAL_BYTES = 200 * 1024**2  # the paper's val cap (glot_truncate.py)


class Malformed(NamedTuple):
    """A record that is not a document: why (`invalid JSON`, ...) and details (the parser's message)."""

    reason: str
    detail: str = ""


# ----------------------------------------------------------------------------------------------------------
# Records: (where, content) for every record, where = `file:line`, `file:row N` or `hub-id row N`


def _parquet_records(file: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def unreadable(exc: Exception, rows_read: int | None = None) -> DataSourceError:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        after = "" if rows_read is None else f" after row {rows_read}"
        return DataSourceError(f"{file}: unreadable parquet file{after} (truncated or corrupt?) [{reason}]")

    try:
        parquet = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(exc) from None
    column = next((c for c in ("content", "text") if c in parquet.schema_arrow.names), None)
    if column is None:
        raise DataSourceError(f"{file}: no `content` or `text` column")
    row = 0
    batches = parquet.iter_batches(columns=[column], batch_size=1024)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(exc, row) from None
        if batch is None:
            return
        values = batch.column(0)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            values = values.cast(pa.large_binary())  # decoded below, so that bad UTF-8 is one bad row
        for value in values.to_pylist():
            row += 1
            yield f"{file}:row {row}", _nonempty(_decoded(value) if isinstance(value, bytes) else value)


def _nonempty(content: Any) -> Any:
    """The content of a record, or Malformed when it is an empty (or whitespace-only) text."""
    return Malformed("empty text") if isinstance(content, str) and not content.strip() else content


def _decoded(raw: bytes) -> str | Malformed:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Malformed("invalid UTF-8", f"byte {exc.start}")
    return Malformed(NUL, NUL_HINT) if "\0" in text else text


def _line_records(file: Path, jsonl: bool) -> Iterator[tuple[str, Any]]:
    with open(file, "rb") as f:
        for number, raw in enumerate(f, 1):
            if number == 1:
                refuse_gzip(raw, file)
            line = _decoded(raw[3:] if number == 1 and raw.startswith(b"\xef\xbb\xbf") else raw)
            if isinstance(line, Malformed) or not jsonl:
                yield f"{file}:{number}", line if isinstance(line, Malformed) else without_end(line)
                continue
            if not line.strip():
                yield f"{file}:{number}", ""
                continue
            try:
                obj = json_value(line)
            except json.JSONDecodeError as exc:
                yield f"{file}:{number}", Malformed("invalid JSON", exc.msg)
                continue
            key = next((k for k in ("content", "text") if isinstance(obj, dict) and k in obj), None)
            yield (
                f"{file}:{number}",
                Malformed("no `content` or `text` key") if key is None else _nonempty(obj[key]),
            )


def code_forms(glotcc_code: str) -> tuple[str, ...]:
    """The names a language's text may go by: the GlotCC code (`mlt-Latn`), its FLORES form (`mlt_Latn`), the
    ISO 639-3 code (`mlt`)."""
    return tuple(dict.fromkeys((glotcc_code, glotcc_code.replace("-", "_"), glotcc_code.split("-")[0])))


def glotcc_files(path: Path, glotcc_code: str) -> list[Path]:
    """The document files of one language (*.parquet, *.jsonl, *.txt) under `path`, sorted.

    `path` itself when it is a file; else the release layout `**/<glotcc_code>/*` (`v1.0/mlt-Latn/...`), a
    per-language folder `<path>/<form>/` or file `<path>/<form>.txt|.jsonl|.parquet` for every code form
    (`code_forms`: `mlt-Latn`, `mlt_Latn`, `mlt`), or the files in `path` when it is itself named by a form.
    Hidden files and folders (`._x.txt` from macOS, `.ipynb_checkpoints/`) are not documents: skipped.
    A DataSourceError names what was looked for and the closest folder names present."""
    if path.is_file():
        return [path]
    forms = code_forms(glotcc_code)
    files = list(path.glob(f"**/{glotcc_code}/*"))
    for form in forms:
        files += [*(path / form).glob("*"), *(path / f"{form}{suffix}" for suffix in GLOTCC_SUFFIXES)]
    if path.name in forms:
        files += list(path.glob("*"))
    visible = (f for f in files if not any(part.startswith(".") for part in f.relative_to(path).parts))
    files = sorted({f for f in visible if f.is_file() and f.suffix in GLOTCC_SUFFIXES})
    if not files:
        present = sorted({f.parent.name for s in GLOTCC_SUFFIXES for f in path.glob(f"**/*{s}")})
        present += sorted({f.stem for s in GLOTCC_SUFFIXES for f in path.glob(f"*{s}")})
        close = difflib.get_close_matches(glotcc_code, present, n=3, cutoff=0.4)
        hint = (
            f"; closest: {', '.join(close)}" if close else f"; present: {', '.join(present[:12]) or 'none'}"
        )
        looked = ", ".join([f"{path}/**/{glotcc_code}/*", *(f"{path / form}/*" for form in forms[1:])])
        raise DataSourceError(
            f"{path}: no GlotCC files for {glotcc_code} (looked for {looked}, {path / forms[-1]}.txt, ...: "
            f"*.parquet, *.jsonl or *.txt){hint}"
        )
    return files


def glotcc_records(location: Location, glotcc_code: str) -> Iterator[tuple[str, Any]]:
    """(where, content) of every record of one language, lazily: stop iterating and nothing more is read."""
    if _is_hub(location):
        rows = _from_hub("cis-lmu/GlotCC-v1", glotcc_code, GLOTCC_HINT, split="train", streaming=True)
        try:  # streaming: the downloads happen while iterating
            for number, row in enumerate(rows, 1):
                yield f"cis-lmu/GlotCC-v1 ({glotcc_code}) row {number}", _nonempty(row.get("content"))
        except Exception as exc:
            raise _hub_error("cis-lmu/GlotCC-v1", glotcc_code, exc, GLOTCC_HINT) from exc
        return
    for file in glotcc_files(_existing(location, "GlotCC location"), glotcc_code):
        if file.suffix == ".parquet":
            yield from _parquet_records(file)
        else:
            yield from _line_records(file, jsonl=file.suffix == ".jsonl")


class _Documents:
    """The documents among the records, counting empty and malformed ones (`BadRecords`)."""

    def __init__(self, location: Location, glotcc_code: str, max_bad_fraction: float):
        self.records = glotcc_records(location, glotcc_code)
        self.source = location if _is_hub(location) else Path(location)
        self.bad = BadRecords(f"GlotCC {glotcc_code} at {self.source}", max_bad_fraction)
        self.read = self.empty = 0

    def __iter__(self) -> Iterator[str]:
        for where, content in self.records:
            self.read += 1
            if isinstance(content, Malformed):
                self.bad.add(where, content.reason, content.detail)
            elif content is None:
                self.bad.add(where, "null content")
            elif not isinstance(content, str):
                self.bad.add(where, "not a string", type(content).__name__)
            elif content.strip():
                yield content
            else:
                self.empty += 1

    def close(self) -> None:
        self.records.close()  # type: ignore[attr-defined]

    def stats(self) -> dict[str, Any]:
        """records, empty, malformed, malformed_by_reason, bad_fraction, max_bad_fraction, bad_examples."""
        return {"records": self.read, "empty": self.empty, **self.bad.stats(self.read)}


# ----------------------------------------------------------------------------------------------------------
# Splits


def split_of(document: bytes, seed: int = 42) -> str:
    """`train`, `val` or `test` for a document's UTF-8 text: keyed BLAKE2b, 80/10/10."""
    digest = hashlib.blake2b(document, digest_size=8, key=str(seed).encode()).digest()
    u = int.from_bytes(digest, "big") / 2**64
    return "train" if u < TRAIN_SHARE else "val" if u < TRAIN_SHARE + VAL_SHARE else "test"


def glotcc_splits(
    location: Location,
    glotcc_code: str,
    out_dir: Location,
    *,
    seed: int = 42,
    max_train_bytes: int | None = 1024**3,
    max_val_bytes: int | None = MAX_VAL_BYTES,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
) -> dict[str, Any]:
    """Stream one language's documents into `train.jsonl`, `val.jsonl`, `test.jsonl` in `out_dir`.

    See the module docstring for the split and the caps (bytes of UTF-8 text; None: no cap; test is capped
    like val). The three files appear together, or not at all: not on a read error, on more than
    `max_bad_fraction` malformed records, or when no document is found. Returns the statistics: the record
    counts of `_Documents.stats`, `seed`, `stopped_early` (reading stopped before the end of the input),
    and per split `documents`, `bytes`, `cap`, `full`, `over_cap`.
    """
    caps = {"train": max_train_bytes, "val": max_val_bytes, "test": max_val_bytes}
    for name, cap in caps.items():
        if cap is not None and cap < 0:
            raise ValueError(f"glotcc_splits: max_{name}_bytes must be >= 0, got {cap}")
    splits = {
        name: {"documents": 0, "bytes": 0, "cap": cap, "full": False, "over_cap": 0}
        for name, cap in caps.items()
    }
    documents = _Documents(location, glotcc_code, max_bad_fraction)
    stopped_early = False
    with SplitWriter(out_dir) as writer:
        for text in documents:
            data = text.encode("utf-8")
            split = splits[name := split_of(data, seed)]
            if not split["full"] and (split["cap"] is None or split["bytes"] + len(data) <= split["cap"]):
                writer.write(name, text)
                split["documents"] += 1
                split["bytes"] += len(data)
                continue
            split["full"] = True
            split["over_cap"] += 1
            if splits["train"]["full"] and splits["val"]["full"]:
                stopped_early = True
                documents.close()
                break
        stats = {**documents.stats(), "seed": seed, "stopped_early": stopped_early, "splits": splits}
        documents.bad.check(documents.read)
        if not sum(s["documents"] for s in splits.values()):
            raise DataSourceError(
                f"{documents.source}: no GlotCC documents for {glotcc_code} ({documents.read} records, "
                f"{documents.empty} empty, {documents.bad.count} malformed)"
            )
        writer.commit()
    return stats


def glotcc_documents(
    location: Location,
    glotcc_code: str,
    max_bytes: int | None = None,
    stats: dict | None = None,
    *,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
) -> list[str]:
    """Non-empty GlotCC documents of one language, in reading order, in memory (the demo's pre-training text).

    With `max_bytes`, reading stops before the first document that would take the UTF-8 total past it. A
    `stats` dict, if given, receives the record counts of `_Documents.stats` plus documents, bytes, truncated.
    """
    documents = _Documents(location, glotcc_code, max_bad_fraction)
    docs: list[str] = []
    total, truncated = 0, False
    for doc in documents:
        size = len(doc.encode("utf-8"))
        if max_bytes is not None and total + size > max_bytes:
            truncated = True
            documents.close()
            break
        docs.append(doc)
        total += size
    if stats is not None:
        stats.update(documents.stats(), documents=len(docs), bytes=total, truncated=truncated)
    documents.bad.check(documents.read)
    return docs
