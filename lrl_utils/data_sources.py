"""Loaders for the paper's data sources, reading the real on-disk and hub formats.

ConceptNet 5.7 assertions become English-template sentences (SPEC §2), GlotCC-v1 gives documents (SPEC §3),
FLORES-200 devtest the pseudo-perplexity sentences (SPEC §5.1) and SIB-200 the topic-classification task
(SPEC §5.3); the paper's 80/10/10 split and atomic JSONL split files live here too. Every loader takes the
string "hub" (the Hugging Face hub) or a local path laid out like the official release. The demo world
(`demo_world.py`) is written in those layouts, so the demo and the paper share one code path. Errors are
`DataSourceError`s with one-line messages naming the file (and line) or the hub id.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import re
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

HUB = "hub"  # the `location` that means "download from the Hugging Face hub"
Location = str | os.PathLike

SIB_LABELS: tuple[str, ...] = (
    "science/technology",
    "travel",
    "politics",
    "sports",
    "health",
    "entertainment",
    "geography",
)

# The paper's 33 relations and their English predicates (cn_to_nl.py; paper Table 4; SPEC §2).
CONCEPTNET_TEMPLATES: dict[str, str] = {
    "Antonym": "is the opposite of",
    "DerivedFrom": "is derived from",
    "EtymologicallyDerivedFrom": "is etymologically derived from",
    "EtymologicallyRelatedTo": "is etymologically related to",
    "FormOf": "is a form of",
    "PartOf": "is a part of",
    "HasA": "belongs to",
    "UsedFor": "is used for",
    "AtLocation": "is a typical location for",
    "Causes": "causes",
    "CausesDesire": "makes someone want",
    "MadeOf": "is made of",
    "ReceivesAction": "receives action of",
    "HasSubevent": "is a subevent of",
    "HasFirstSubevent": "is an event that begins with subevent",
    "HasLastSubevent": "is an event that concludes with subevent",
    "HasPrerequisite": "has prerequisite of",
    "HasProperty": "can be described as",
    "MotivatedByGoal": "is a step toward accomplishing the goal",
    "ObstructedBy": "is an obstacle in the way of",
    "Desires": "is a conscious entity that typically wants",
    "CreatedBy": "is a process or agent that creates",
    "CapableOf": "is capable of",
    "HasContext": "is a word used in the context of",
    "IsA": "is a type of",
    "RelatedTo": "is related to",
    "SimilarTo": "is similar to",
    "Synonym": "is a synonym of",
    "SymbolOf": "symbolically represents",
    "DefinedAs": "is a more explanatory version of",
    "DistinctFrom": "is distinct from",
    "MannerOf": "is a specific way to do",
    "LocatedNear": "is typically found near",
}


class DataSourceError(ValueError):
    """A data file or hub dataset is missing or malformed; the message names the file (and line) or hub id."""


def _datasets() -> Any:
    """The `datasets` library, imported on first use (it takes seconds; `demo_world` imports this module)."""
    import datasets

    return datasets


def _is_hub(location: Location) -> bool:
    return isinstance(location, str) and location == HUB


def _existing(location: Location, what: str) -> Path:
    path = Path(location)
    if not path.exists():
        raise DataSourceError(f"{path}: {what} not found")
    return path


def _read_text(file: Path) -> str:
    try:
        return _existing(file, "file").read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataSourceError(f"{file}: not valid UTF-8 text") from exc


def _lines(file: Path) -> Iterator[str]:
    """The lines of a UTF-8 text file without their line ends, streamed."""
    try:
        with open(_existing(file, "file"), encoding="utf-8-sig", newline="\n") as f:
            for line in f:
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataSourceError(f"{file}: not valid UTF-8 text") from exc


def _hub_error(repo: str, config: str, exc: BaseException, hint: str) -> DataSourceError:
    """One line: what failed, how to use local files instead, and the first line of the cause."""
    reason = (str(exc).strip().splitlines() or [""])[0][:200]
    return DataSourceError(
        f"cannot load {repo} ({config}) from the Hugging Face hub; set `data.mode: local` in the profile "
        f"and point {hint} [{type(exc).__name__}: {reason}]"
    )


def _from_hub(repo: str, config: str, hint: str, **kwargs: Any) -> Any:
    try:
        return _datasets().load_dataset(repo, config, **kwargs)
    except Exception as exc:
        raise _hub_error(repo, config, exc, hint) from exc


# ----------------------------------------------------------------------------------------------------------
# ConceptNet (SPEC §2)


def surface_form(uri: str, paper_compat: bool = False) -> str:
    """The words of a ConceptNet node URI, `_` replaced by a space.

    Fixed behaviour: the concept word, segment 3 of `/c/<lang>/<word>[/<pos>[/...]]`. With `paper_compat`,
    the original's last segment, so `/c/mt/kelma/n` gives `n` (the bug of cn_to_nl.py, SPEC §2).
    """
    parts = uri.split("/")
    word = parts[-1] if paper_compat else parts[3] if len(parts) >= 4 and parts[1] == "c" else ""
    if not word:
        raise DataSourceError(f"no surface form in ConceptNet URI {uri!r}")
    return word.replace("_", " ")


def _start_language(columns: list[str]) -> str | None:
    """Language of an assertion's start node (`start.split('/')[2]`), or None if unreadable."""
    parts = columns[2].split("/") if len(columns) >= 3 else []
    return parts[2] if len(parts) >= 3 and parts[1] == "c" and parts[2] else None


def _verbalise(columns: list[str], paper_compat: bool) -> tuple[str, str | None]:
    """(relation, sentence) for a kept assertion, or (why it is dropped, None)."""
    if len(columns) != 5:
        return "malformed", None
    _, relation_uri, start, end, _ = columns
    relation = relation_uri.split("/")[-1]
    if end.startswith("http"):
        return "external_url", None
    if relation not in CONCEPTNET_TEMPLATES:
        return "unknown_relation", None
    try:
        subject, obj = surface_form(start, paper_compat), surface_form(end, paper_compat)
    except DataSourceError:
        return "malformed", None
    if subject == obj:
        return "same_surface", None
    return relation, f"{subject} {CONCEPTNET_TEMPLATES[relation]} {obj}."


def _empty_stats() -> dict:
    dropped = dict.fromkeys(("external_url", "unknown_relation", "same_surface", "malformed"), 0)
    return {"edges_in_language": 0, "kept": 0, "per_relation": Counter(), "dropped": dropped}


def conceptnet_sentences(
    dump_path: Location, languages: Sequence[str], paper_compat: bool = False
) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Verbalise a ConceptNet assertions dump (`.csv` or `.csv.gz`) for several languages in one pass.

    An edge belongs to the language of its START node. Dropped, and counted per language: ExternalURL ends
    (`http...`), relations outside the 33 templates, start surface == end surface, and malformed lines (wrong
    column count, bad UTF-8). kept + sum(dropped) == edges_in_language. Malformed lines without a readable
    start language are only logged.
    """
    path = _existing(dump_path, "ConceptNet assertions dump")
    sentences: dict[str, list[str]] = {lang: [] for lang in languages}
    stats: dict[str, dict] = {lang: _empty_stats() for lang in languages}
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    unattributed, line_no = 0, 0
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            for raw in f:
                line_no += 1
                try:
                    line, bad_utf8 = raw.decode("utf-8"), False
                except UnicodeDecodeError:
                    line, bad_utf8 = raw.decode("utf-8", errors="replace"), True
                columns = line.rstrip("\r\n").split("\t")
                lang = _start_language(columns)
                unattributed += lang is None and bool(line.strip())
                if lang not in stats:
                    continue
                outcome, sentence = ("malformed", None) if bad_utf8 else _verbalise(columns, paper_compat)
                st = stats[lang]
                st["edges_in_language"] += 1
                if sentence is None:
                    st["dropped"][outcome] += 1
                else:
                    sentences[lang].append(sentence)
                    st["kept"] += 1
                    st["per_relation"][outcome] += 1
    except (EOFError, OSError, zlib.error) as exc:
        raise DataSourceError(f"{path}:{line_no + 1}: cannot read the dump ({exc})") from exc
    if unattributed:
        log.warning("%s: skipped %d malformed lines without a start language", path, unattributed)
    for st in stats.values():
        st["per_relation"] = dict(sorted(st["per_relation"].items()))
    return sentences, stats


def split_80_10_10(items: list, seed: int = 42) -> dict[str, list]:
    """The paper's shuffled split: `train_test_split(test_size=0.2, random_state=seed)`, then the rest 50/50."""
    from sklearn.model_selection import train_test_split

    try:
        train, held_out = train_test_split(list(items), test_size=0.2, random_state=seed)
        val, test = train_test_split(held_out, test_size=0.5, random_state=seed)
    except ValueError as exc:
        raise ValueError(f"split_80_10_10: cannot split {len(items)} items ({exc})") from exc
    return {"train": train, "val": val, "test": test}


# ----------------------------------------------------------------------------------------------------------
# GlotCC (SPEC §3) and split files

GLOTCC_HINT = "`data.glotcc` at a GlotCC-v1 folder (v1.0/<code>/*.parquet) or a .parquet/.jsonl/.txt file"


def _jsonl_values(file: Path, keys: Sequence[str]) -> Iterator[Any]:
    """The value of the first of `keys` in each JSON line of `file` (blank lines skipped)."""
    for line_no, line in enumerate(_lines(file), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataSourceError(f"{file}:{line_no}: invalid JSON ({exc.msg})") from exc
        key = next((k for k in keys if isinstance(obj, dict) and k in obj), None)
        if key is None:
            raise DataSourceError(f"{file}:{line_no}: expected a JSON object with key {' or '.join(keys)}")
        yield obj[key]


def _file_documents(file: Path) -> Iterator[str | None]:
    """Documents of a local file: parquet column `content` (or `text`), JSONL key, or one per text line."""
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(file)
        column = next((c for c in ("content", "text") if c in parquet.schema_arrow.names), None)
        if column is None:
            raise DataSourceError(f"{file}: no `content` or `text` column")
        for batch in parquet.iter_batches(columns=[column], batch_size=1024):
            yield from batch.column(0).to_pylist()
    elif file.suffix == ".jsonl":
        yield from _jsonl_values(file, ("content", "text"))
    else:
        yield from _lines(file)


def _glotcc_files(path: Path, glotcc_code: str) -> list[Path]:
    """`path` itself, or the documents under `**/<glotcc_code>/` (or directly in `path` if it is that folder)."""
    if path.is_file():
        return [path]
    files = list(path.glob(f"**/{glotcc_code}/*"))
    if path.name == glotcc_code:
        files += list(path.glob("*"))
    files = sorted({f for f in files if f.is_file() and f.suffix in (".parquet", ".jsonl", ".txt")})
    if not files:
        raise DataSourceError(f"{path}: no GlotCC files for {glotcc_code} (**/{glotcc_code}/*.parquet)")
    return files


def _glotcc_hub_documents(glotcc_code: str) -> Iterator[str | None]:
    rows = _from_hub("cis-lmu/GlotCC-v1", glotcc_code, GLOTCC_HINT, split="train", streaming=True)
    try:  # streaming: the downloads happen while iterating
        for row in rows:
            yield row["content"]
    except Exception as exc:
        raise _hub_error("cis-lmu/GlotCC-v1", glotcc_code, exc, GLOTCC_HINT) from exc


def glotcc_documents(
    location: Location, glotcc_code: str, max_bytes: int | None = None, stats: dict | None = None
) -> list[str]:
    """Non-empty GlotCC documents of one language, in file order.

    `location` is "hub" (streams `cis-lmu/GlotCC-v1`, column `content`), a folder searched for
    `**/<glotcc_code>/*.parquet` (the GlotCC-v1 layout `v1.0/<code>/<code>_0.parquet`; `.jsonl`/`.txt` too),
    or one `.parquet` / `.jsonl` (key `content` or `text`) / `.txt` (one document per line) file. With
    `max_bytes`, reading stops before the first document that would take the UTF-8 total past it. A `stats`
    dict, if given, receives: documents, empty_skipped, bytes, truncated.
    """
    if _is_hub(location):
        source = _glotcc_hub_documents(glotcc_code)
    else:
        files = _glotcc_files(_existing(location, "GlotCC location"), glotcc_code)
        source = (doc for file in files for doc in _file_documents(file))
    docs: list[str] = []
    counts = {"documents": 0, "empty_skipped": 0, "bytes": 0, "truncated": False}
    for doc in source:
        if doc is None or not doc.strip():
            counts["empty_skipped"] += 1
            continue
        size = len(doc.encode("utf-8"))
        if max_bytes is not None and counts["bytes"] + size > max_bytes:
            counts["truncated"] = True
            break
        docs.append(doc)
        counts["bytes"] += size
    counts["documents"] = len(docs)
    if stats is not None:
        stats.update(counts)
    return docs


def write_splits(out_dir: Location, splits: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Write `train.jsonl`, `val.jsonl`, `test.jsonl` (one `{"text": ...}` per line); return line counts.

    All or nothing: each split goes to a temporary file in `out_dir`, and the files are moved into place
    with `os.replace` only once all of them are complete.
    """
    if set(splits) != {"train", "val", "test"}:
        raise ValueError(f"write_splits needs the splits train, val and test, got {sorted(splits)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    temporary: dict[str, str] = {}
    counts = dict.fromkeys(splits, 0)
    try:
        for name, texts in splits.items():
            fd, temporary[name] = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for text in texts:
                    if not isinstance(text, str):
                        raise TypeError(f"write_splits: {name} holds a {type(text).__name__}, not a str")
                    f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
                    counts[name] += 1
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temporary[name], 0o644)
    except BaseException:
        for tmp in temporary.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    for name, tmp in temporary.items():
        os.replace(tmp, out / f"{name}.jsonl")
    return counts


def load_text_splits(split_dir: Location) -> datasets.DatasetDict:
    """`write_splits` output as a DatasetDict: train, validation (from val.jsonl), test; column `text`."""
    ds = _datasets()
    features = ds.Features({"text": ds.Value("string")})
    splits = {}
    for split, stem in (("train", "train"), ("validation", "val"), ("test", "test")):
        texts = list(_jsonl_values(Path(split_dir) / f"{stem}.jsonl", ("text",)))
        splits[split] = ds.Dataset.from_dict({"text": texts}, features=features)
    return ds.DatasetDict(splits)


# ----------------------------------------------------------------------------------------------------------
# FLORES-200 devtest (SPEC §5.1) and SIB-200 (SPEC §5.3): TSV files, raw or pandas-CSV-quoted

_QUOTED = r'"(?:[^"]|"")*"'  # a CSV-quoted field
_CSV_LINE = re.compile(rf'(?:{_QUOTED}|[^"\t]*)(?:\t(?:{_QUOTED}|[^"\t]*))*')
_QUOTED_FIELD = re.compile(rf"(?:^|(?<=\t)){_QUOTED}(?=\t|$)")


def _is_csv_quoted(lines: list[str]) -> bool:
    """True for pandas-CSV-quoted TSV lines, False for raw fields (to be read with QUOTE_NONE).

    pandas quotes a field only if it holds a quote or a tab, so the file is quoted if every line parses as
    CSV and every quoted field needed its quotes; a raw `"Win," he said.` or `"Text."` fails one of the two.
    Line breaks inside quoted fields are not supported.
    """
    body = [line.rstrip("\r") for line in lines[1:]]
    if not all(_CSV_LINE.fullmatch(line) for line in body):
        return False
    quoted = [field[1:-1] for line in body for field in _QUOTED_FIELD.findall(line)]
    return bool(quoted) and all('""' in field or "\t" in field for field in quoted)


def _read_tsv(file: Path, columns: Sequence[str]) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each row of a TSV file with the header `columns`."""
    text = _read_text(file)
    quoting = csv.QUOTE_MINIMAL if _is_csv_quoted(text.split("\n")) else csv.QUOTE_NONE
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=quoting)
    if next(reader, []) != list(columns):
        raise DataSourceError(f"{file}:1: expected the header {chr(9).join(columns)!r}")
    rows = []
    for fields in reader:
        if not fields:
            continue
        if len(fields) != len(columns):
            raise DataSourceError(f"{file}:{reader.line_num}: {len(fields)} fields, expected {len(columns)}")
        rows.append((reader.line_num, fields))
    return rows


def _int(file: Path, line_no: int, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataSourceError(f"{file}:{line_no}: {value!r} is not an integer") from None


def _first_file(folder: Path, candidates: Sequence[str], message: str) -> Path:
    """The first of the relative paths `candidates` that is a file in `folder`."""
    found = next((folder / c for c in candidates if (folder / c).is_file()), None)
    if found is None:
        raise DataSourceError(message)
    return found


def load_flores_devtest(location: Location, flores_code: str) -> datasets.Dataset:
    """FLORES-200 devtest sentences of one language: columns `id` (int) and `sentence`.

    Local forms: `<dir>/flores200_dataset/devtest/<code>.devtest` or `<dir>/devtest/<code>.devtest` (one
    sentence per line, ids from 1), a `.devtest` file, a TSV file with header `id<TAB>sentence`, or a folder
    holding `devtest.tsv` (also as `<dir>/<code>/devtest.tsv` or `<dir>/<iso639-3>/devtest.tsv`). The hub:
    `openlanguagedata/flores_plus`, falling back to `facebook/flores`.
    """
    if _is_hub(location):
        hint = "`data.flores200` at a FLORES-200 folder (flores200_dataset/devtest/<code>.devtest) or TSV"
        try:
            hub = _from_hub("openlanguagedata/flores_plus", flores_code, hint, split="devtest")
        except DataSourceError:
            hub = _from_hub("facebook/flores", flores_code, hint, split="devtest")
        column = "text" if "text" in hub.column_names else "sentence"
        ids, sentences = [int(i) for i in hub["id"]], list(hub[column])
    else:
        path = _existing(location, "FLORES-200 location")
        if path.is_dir():
            iso, code = flores_code.split("_")[0], flores_code
            candidates = (
                f"flores200_dataset/devtest/{code}.devtest",
                f"devtest/{code}.devtest",
                f"{code}.devtest",
            )
            candidates += ("devtest.tsv", f"{code}/devtest.tsv", f"{iso}/devtest.tsv")
            path = _first_file(path, candidates, f"{path}: no FLORES-200 devtest for {flores_code}")
        if path.suffix == ".tsv":
            rows = _read_tsv(path, ("id", "sentence"))
            ids, sentences = [_int(path, n, f[0]) for n, f in rows], [f[1] for _, f in rows]
        else:
            text = _read_text(path)
            sentences = text.removesuffix("\n").split("\n") if text else []
            ids = list(range(1, len(sentences) + 1))
    ds = _datasets()
    features = ds.Features({"id": ds.Value("int64"), "sentence": ds.Value("string")})
    return ds.Dataset.from_dict({"id": ids, "sentence": sentences}, features=features)


def _sib_dataset(records: list[tuple[int, str, str, str]]) -> datasets.Dataset:
    """Dataset from (index_id, category, text, where) records; `where` names a record in errors."""
    ds = _datasets()
    for _, category, _, where in records:
        if category not in SIB_LABELS:
            raise DataSourceError(f"{where}: unknown SIB-200 category {category!r} (not in SIB_LABELS)")
    columns = {
        "index_id": [r[0] for r in records],
        "text": [r[2] for r in records],
        "category": [r[1] for r in records],
        "label": [SIB_LABELS.index(r[1]) for r in records],
    }
    features = ds.Features(
        {
            "index_id": ds.Value("int64"),
            "text": ds.Value("string"),
            "category": ds.Value("string"),
            "label": ds.ClassLabel(names=list(SIB_LABELS)),
        }
    )
    return ds.Dataset.from_dict(columns, features=features)


def load_sib200(location: Location, flores_code: str) -> datasets.DatasetDict:
    """SIB-200 of one language: splits train/validation/test, columns index_id, text, category, label.

    `label` is a ClassLabel over SIB_LABELS (fixed order). Local forms: a folder holding train.tsv, dev.tsv
    and test.tsv; `<dir>/data/annotated/<code>/` (the SIB-200 repository); `<dir>/<code>/`; `<dir>/<iso639-3>/`.
    Fields may be raw (QUOTE_NONE, as in the shared samples) or pandas-CSV-quoted (as in the repository).
    """
    ds = _datasets()
    if _is_hub(location):
        hint = "`data.sib200` at a folder of TSV files (train.tsv, dev.tsv, test.tsv)"
        hub = _from_hub("Davlan/sib200", flores_code, hint)
        splits = {}
        for split in ("train", "validation", "test"):
            where = f"Davlan/sib200 ({flores_code}) {split} row"
            records = [
                (int(r["index_id"]), r["category"], r["text"], f"{where} {n}")
                for n, r in enumerate(hub[split])
            ]
            splits[split] = _sib_dataset(records)
        return ds.DatasetDict(splits)
    path = _existing(location, "SIB-200 location")
    iso, code = flores_code.split("_")[0], flores_code
    candidates = ("train.tsv", f"data/annotated/{code}/train.tsv", f"{code}/train.tsv", f"{iso}/train.tsv")
    folder = _first_file(path, candidates, f"{path}: no SIB-200 files for {flores_code}").parent
    splits = {}
    for split, stem in (("train", "train"), ("validation", "dev"), ("test", "test")):
        file = folder / f"{stem}.tsv"
        rows = _read_tsv(file, ("index_id", "category", "text"))
        splits[split] = _sib_dataset([(_int(file, n, i), c, t, f"{file}:{n}") for n, (i, c, t) in rows])
    return ds.DatasetDict(splits)
