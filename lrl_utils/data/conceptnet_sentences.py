"""ConceptNet sentences already verbalised: the original's adapter-training files, read instead of a dump.

The original trained its ConceptNet adapters on `train_cn_<iso2>.csv` and `val_cn_<iso2>.csv` (SPEC §4: one
column `text`, a sentence a row, made from the 5.7 dump with the 33 templates). `data.conceptnet` may name a
folder of such files, per language (`locate_sentences`):
- `train_cn_<code>.csv`, `val_cn_<code>.csv` (and `test_cn_<code>.csv` where there is one), side by side;
- `<code>/cn_sentences_train.csv`, `<code>/cn_sentences_val.csv` (and `..._test.csv`), where the folder is named
  by the ConceptNet code or by the language's key in `params/languages.yaml`.
The splits are the files' own (no re-split: they are the original's), the texts exactly as the CSV holds them
(CSV quoting undone, a BOM dropped); a missing test file gives an empty test split (the original had none; PPPL
reads FLORES). A row of more than one field, an empty text or bytes that are not UTF-8 are errors naming the
file and line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lrl_utils.data.sources import DataSourceError, write_splits
from lrl_utils.data.text_files import read_text

SPLIT_NAMES = ("train", "val", "test")


def _candidates(folder: Path, code: str, language: str | None) -> list[dict[str, Path]]:
    names = dict.fromkeys(n for n in (code, language) if n)
    flat = {s: folder / f"{s}_cn_{code}.csv" for s in SPLIT_NAMES}
    nested = [{s: folder / name / f"cn_sentences_{s}.csv" for s in SPLIT_NAMES} for name in names]
    return [flat, *nested]


def locate_sentences(folder: Path, code: str, language: str | None = None) -> dict[str, Path]:
    """The sentence files of one language in `folder`: split (train, val, test) → file; test may be absent.

    A DataSourceError names the files looked for when there is no train file, or the val file missing next to
    it."""
    layouts = _candidates(folder, code, language)
    for files in layouts:
        if files["train"].is_file():
            if not files["val"].is_file():
                raise DataSourceError(
                    f"{files['train'].parent}: no ConceptNet validation sentences for {code!r} next to "
                    f"{files['train'].name} (looked for {files['val'].name})"
                )
            return {s: f for s, f in files.items() if s != "test" or f.is_file()}
    looked = ", ".join(str(files["train"]) for files in layouts)
    raise DataSourceError(f"{folder}: no ConceptNet sentences for {code!r} (looked for {looked})")


def read_sentences(file: Path) -> list[str]:
    """The `text` column of a one-column CSV file with that header, in file order."""
    text = read_text(file)
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(rows, None)
        if header is None or [h.strip() for h in header] != ["text"]:
            raise DataSourceError(f"{file}:1: expected the header 'text' (one column), got {header!r}")
        sentences = []
        for row in rows:
            if not row:  # a blank line
                continue
            if len(row) != 1:
                raise DataSourceError(f"{file}:{rows.line_num}: {len(row)} fields, expected 1 (text)")
            if not row[0].strip():
                raise DataSourceError(f"{file}:{rows.line_num}: empty text")
            sentences.append(row[0])
    except csv.Error as exc:
        raise DataSourceError(f"{file}:{rows.line_num}: malformed CSV ({exc})") from None
    return sentences


def sentence_splits(folder: Path, code: str, out_dir: Path, language: str | None = None) -> dict:
    """Copy one language's verbalised sentences into `out_dir`'s split files, as `conceptnet_splits` reports
    (`kept`, `edges_in_language`, `dropped`, `splits`, no malformed lines: a malformed row is an error)."""
    files = locate_sentences(folder, code, language)
    splits = {s: read_sentences(files[s]) if s in files else [] for s in SPLIT_NAMES}
    for split in ("train", "val"):
        if not splits[split]:
            raise DataSourceError(f"{files[split]}: no sentences")
    write_splits(out_dir, splits)
    n = sum(len(v) for v in splits.values())
    sizes = {
        k: {"documents": len(v), "bytes": sum(len(t.encode("utf-8")) for t in v)} for k, v in splits.items()
    }
    return {
        "kept": n,
        "edges_in_language": n,
        "dropped": {},
        "sentence_files": {s: str(f) for s, f in files.items()},
        "splits": sizes,
        "malformed": 0,
        "bad_fraction": 0.0,
        "bad_examples": [],
    }
