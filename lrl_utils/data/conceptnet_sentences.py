"""ConceptNet without the dump: sentences already verbalised, or one language's edges as JSON.

The original trained its ConceptNet adapters on `train_cn_<iso2>.csv` and `val_cn_<iso2>.csv` (SPEC §4: one
column `text`, a sentence a row, made from the 5.7 dump with the 33 templates), and the same authors kept
per-language edge lists from the ConceptNet API (`cn_data_<iso2>.json`: concept → its edges). `data.conceptnet`
may name a folder of either, per language (`locate`):
- sentences: `train_cn_<code>.csv`, `val_cn_<code>.csv` (and `test_cn_<code>.csv` where there is one), side by
  side, or `<name>/cn_sentences_train.csv`, `<name>/cn_sentences_val.csv` (and `..._test.csv`);
- edges: `cn_data_<code>.json` (an object of edge lists, or a list) or `<name>/edges.jsonl` (an edge a line),
where `<name>` is the ConceptNet code or the language's key in `params/languages.yaml`.
Sentences keep the files' splits (no re-split: they are the original's), their texts exactly as the CSV holds
them (CSV quoting undone, a BOM dropped); a missing test file gives an empty test split (the original had none;
PPPL reads FLORES). Edges are verbalised as the dump's are (`conceptnet_templates._verbalise`: the edge's start
node in the language, the 33 relations, the same drops), each edge once (by its `uri`, as the API lists an edge
under both its concepts), then split 80/10/10. A malformed row or line is an error naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from lrl_utils.data.conceptnet_templates import DROP_REASONS, _verbalise
from lrl_utils.data.sources import DataSourceError, Location, split_80_10_10, split_sizes, write_splits
from lrl_utils.data.text_files import json_value, lines, read_text

SPLIT_NAMES = ("train", "val", "test")


def _candidates(folder: Path, code: str, language: str | None) -> list[dict[str, Path]]:
    names = dict.fromkeys(n for n in (code, language) if n)
    flat = {s: folder / f"{s}_cn_{code}.csv" for s in SPLIT_NAMES}
    nested = [{s: folder / name / f"cn_sentences_{s}.csv" for s in SPLIT_NAMES} for name in names]
    return [flat, *nested]


def _edge_files(folder: Path, code: str, language: str | None) -> list[Path]:
    names = dict.fromkeys(n for n in (code, language) if n)
    return [folder / f"cn_data_{code}.json", *(folder / name / "edges.jsonl" for name in names)]


def locate(folder: Path, code: str, language: str | None = None) -> dict[str, Path]:
    """One language's files in `folder`: split (train, val, test) → sentence file (test may be absent), or
    {"edges": file}. A DataSourceError names the files looked for when there are none, or the val file missing
    next to a train file."""
    layouts = _candidates(folder, code, language)
    for files in layouts:
        if files["train"].is_file():
            if not files["val"].is_file():
                raise DataSourceError(
                    f"{files['train'].parent}: no ConceptNet validation sentences for {code!r} next to "
                    f"{files['train'].name} (looked for {files['val'].name})"
                )
            return {s: f for s, f in files.items() if s != "test" or f.is_file()}
    edges = _edge_files(folder, code, language)
    for file in edges:
        if file.is_file():
            return {"edges": file}
    looked = ", ".join(str(p) for p in [*(files["train"] for files in layouts), *edges])
    raise DataSourceError(f"{folder}: no ConceptNet sentences or edges for {code!r} (looked for {looked})")


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


def _edges(file: Path) -> list[tuple[int, dict]]:
    """(line, edge object) of an edge file: JSON lines, or one JSON document (a list, or an object of lists)."""
    text = read_text(file)
    if file.suffix == ".jsonl":
        out = []
        for number, line in enumerate(lines(text), start=1):
            if not line.strip():
                continue
            try:
                out.append((number, json_value(line)))
            except json.JSONDecodeError as exc:
                raise DataSourceError(f"{file}:{number}: invalid JSON ({exc.msg})") from None
        return out
    try:
        data = json_value(text)
    except json.JSONDecodeError as exc:
        raise DataSourceError(f"{file}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    groups = data.values() if isinstance(data, dict) else [data]
    if not all(isinstance(g, list) for g in groups):
        raise DataSourceError(
            f"{file}: expected a list of edges, or an object whose values are lists of edges"
        )
    return [(1, edge) for group in groups for edge in group]


def _nodes(edge: dict) -> tuple[str, str, str]:
    """(relation, start, end) URIs of an API edge: from its `uri` (`/a/[/r/R/,/c/../,/c/../]`, the full node
    URIs, POS included), else its `rel`, `start` and `end` fields."""
    uri = edge.get("uri")
    if isinstance(uri, str) and uri.startswith("/a/[") and uri.endswith("/]"):
        parts = uri[4:-2].split("/,")
        if len(parts) == 3:
            return parts[0], parts[1], parts[2].removeprefix("/") if "://" in parts[2] else parts[2]
    relation = str(edge.get("rel", ""))
    return relation if relation.startswith("/r/") else f"/r/{relation}", str(edge["start"]), str(edge["end"])


def edge_sentences(file: Path, code: str, paper_compat: bool = False) -> tuple[list[str], dict]:
    """The sentences of the edges of `file` whose start node is in `code`, and the dump's per-language counts."""
    sentences, outcomes, seen, in_language = [], Counter(), set(), 0
    prefix = f"/c/{code}/"
    for number, edge in _edges(file):
        uri = edge.get("uri") if isinstance(edge, dict) else None
        uri = uri if isinstance(uri, str) and uri else None  # an empty, null or non-string `uri` is none
        if not isinstance(edge, dict) or not {"start", "end"} <= set(edge) and uri is None:
            raise DataSourceError(f"{file}:{number}: not a ConceptNet edge (no uri, start and end)")
        key = uri or (str(edge.get("rel")), str(edge["start"]), str(edge["end"]))
        if key in seen:
            continue
        seen.add(key)
        try:
            relation, start, end = _nodes(edge)
        except KeyError as exc:
            raise DataSourceError(
                f"{file}:{number}: a ConceptNet edge without {exc} or a full `uri`"
            ) from None
        if not start.startswith(prefix):
            continue
        in_language += 1
        outcome, sentence = _verbalise(
            relation.encode(), start[len(prefix) :].encode(), end.encode(), paper_compat
        )
        outcomes[outcome.decode()] += 1
        if sentence is not None:
            sentences.append(sentence.decode("utf-8"))
    dropped = {r: outcomes[r] for r in DROP_REASONS if outcomes[r]}
    per_relation = {r: n for r, n in outcomes.items() if r not in DROP_REASONS}
    return sentences, {
        "edges_in_language": in_language,
        "kept": len(sentences),
        "per_relation": per_relation,
        "dropped": dropped,
    }


def split_language(sentences: list[str], code: str, source: Location, seed: int) -> dict[str, list[str]]:
    """One language's sentences split 80/10/10 (`split_80_10_10`); too few to split is a one-line
    DataSourceError naming `source` (the dump or file they came from) and the code."""
    try:
        return split_80_10_10(sentences, seed=seed)
    except ValueError:
        n = len(sentences)
        raise DataSourceError(
            f"{source}: only {n} ConceptNet sentence{'s' * (n != 1)} for language code {code!r}, too few to "
            "split 80/10/10 into train, validation and test"
        ) from None


def sentence_splits(
    folder: Path,
    code: str,
    out_dir: Path,
    language: str | None = None,
    *,
    seed: int = 42,
    paper_compat: bool = False,
) -> dict:
    """One language's sentences (`locate`) into `out_dir`'s split files, as `conceptnet_splits` reports them
    (`kept`, `edges_in_language`, `dropped`, `splits`; no malformed lines: a malformed one is an error)."""
    files = locate(folder, code, language)
    if "edges" in files:
        texts, stats = edge_sentences(files["edges"], code, paper_compat)
        splits = split_language(texts, code, files["edges"], seed)
    else:
        splits = {s: read_sentences(files[s]) if s in files else [] for s in SPLIT_NAMES}
        for split in ("train", "val"):
            if not splits[split]:
                raise DataSourceError(f"{files[split]}: no sentences")
        n = sum(len(v) for v in splits.values())
        stats = {"edges_in_language": n, "kept": n, "dropped": {}}
    write_splits(out_dir, splits)
    return stats | {
        "files": {s: str(f) for s, f in files.items()},
        "splits": split_sizes(splits),
        "malformed": 0,
        "bad_fraction": 0.0,
        "bad_examples": [],
    }
