"""Shared pieces of the data layer, and the FLORES-200 and SIB-200 loaders.

The paper's two language-adapter sources have their own modules: `conceptnet.py` (ConceptNet 5.7 assertions
to English-template sentences, SPEC §2) and `glotcc.py` (GlotCC-v1 documents, SPEC §3). This module holds
what they share: the error type (defined in `text_files.py`), hub access, the count of malformed records
with its threshold (`BadRecords`), the paper's 80/10/10 split and the all-or-nothing writing of split files
(`SplitWriter`, `write_splits`); plus FLORES-200 devtest (the pseudo-perplexity sentences, SPEC §5.1) and
SIB-200 (topic classification, SPEC §5.3). Every loader takes the string "hub" (the Hugging Face hub) or a
local path laid out like the official release. The demo world (`demo_world.py`) is written in those layouts,
so the demo and the paper share one code path. Errors are `DataSourceError`s with one-line messages naming
the file (and line) or the hub id.

Every loader returns each text exactly as the file holds it (`text_files.py`: only the line end is removed;
TSV quoting is decided by the file's format or the profile's `data.quoting`, never guessed from the content).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lrl_utils.data.text_files import (
    DataSourceError,
    Quoting,
    check_quoting,
    decode,
    lines,
    read_text,
    read_tsv,
    without_end,
)
from lrl_utils.data.text_files import existing as _existing

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

HUB = "hub"  # the `location` that means "download from the Hugging Face hub"
Location = str | os.PathLike
SPLITS = ("train", "val", "test")
DEFAULT_MAX_BAD_FRACTION = 0.001  # share of malformed records (lines, rows) a source may have
FLORES_DEVTEST_SENTENCES = 1012  # sentences per language in the FLORES-200 devtest release

SIB_LABELS: tuple[str, ...] = (
    "science/technology",
    "travel",
    "politics",
    "sports",
    "health",
    "entertainment",
    "geography",
)


def _datasets() -> Any:
    """The `datasets` library, imported on first use (it takes seconds; `demo_world` imports this module)."""
    import datasets

    return datasets


def _is_hub(location: Location) -> bool:
    return isinstance(location, str) and location == HUB


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
# Malformed records: counted, the first ones reported, fatal only above a threshold


class BadRecords:
    """Malformed records of one input: counted by reason, the first `keep` reported as `file:line: reason`.

    `check(total)` raises when more than `max_bad_fraction` of `total` records were malformed, so a few broken
    lines in a 10 GB dump are reported but do not stop a run, while a file in the wrong format does.
    """

    def __init__(self, source: Location, max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION, keep: int = 5):
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction: must be in [0, 1], got {max_bad_fraction!r}")
        self.source, self.max_bad_fraction, self.keep = str(source), max_bad_fraction, keep
        self.count = 0
        self.reasons: Counter[str] = Counter()
        self.examples: list[str] = []

    def add(self, where: str, reason: str, detail: str = "") -> None:
        """One malformed record: `where` is `file:line` (or `file:row N`); counted under `reason`."""
        self.count += 1
        self.reasons[reason] += 1
        if len(self.examples) < self.keep:
            self.examples.append(f"{where}: {reason}{f' ({detail})' if detail else ''}")
            log.warning("%s", self.examples[-1])

    def fraction(self, total: int) -> float:
        return self.count / total if total else 0.0

    def check(self, total: int, what: str = "records") -> None:
        if self.fraction(total) > self.max_bad_fraction:
            raise DataSourceError(
                f"{self.source}: {self.count} of {total} {what} malformed ({self.fraction(total):.3%} > "
                f"`data.max_bad_fraction` {self.max_bad_fraction:g}); first: {'; '.join(self.examples[:3])}"
            )

    def stats(self, total: int) -> dict[str, Any]:
        return {
            "malformed": self.count,
            "malformed_by_reason": dict(sorted(self.reasons.items())),
            "bad_fraction": self.fraction(total),
            "max_bad_fraction": self.max_bad_fraction,
            "bad_examples": list(self.examples),
        }


# ----------------------------------------------------------------------------------------------------------
# Output files: all or nothing


class AtomicFileSet:
    """Binary files written under temporary names in one folder and moved into place together.

    Use as a context manager and call `commit()` at the end: an exception, or leaving the block without
    `commit()`, removes the temporary files and leaves the folder as it was. `commit()` first removes the
    previous files of the set, then moves the new ones in, so a crash in between leaves a subset of the new
    files (never old and new mixed); readers fail on the missing one and the runner repeats the run, whose
    result.json is written only after the commit.
    """

    def __init__(self, folder: Location, names: Iterable[str]):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, IO[bytes]] = {}
        self._temporary: dict[str, str] = {}
        try:
            for name in names:
                fd, self._temporary[name] = tempfile.mkstemp(
                    prefix=f".{name}.", suffix=".tmp", dir=self.folder
                )
                self.files[name] = os.fdopen(fd, "wb")
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> AtomicFileSet:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.abort()  # a no-op after commit()

    def abort(self) -> None:
        for f in self.files.values():
            f.close()
        for tmp in self._temporary.values():
            Path(tmp).unlink(missing_ok=True)
        self.files, self._temporary = {}, {}

    def commit(self) -> None:
        for f in self.files.values():
            f.flush()
            os.fsync(f.fileno())
            f.close()
        placed: list[Path] = []
        try:
            for name in self._temporary:
                (self.folder / name).unlink(missing_ok=True)
            for name, tmp in self._temporary.items():
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.folder / name)
                placed.append(self.folder / name)
        except BaseException:
            for path in placed:
                path.unlink(missing_ok=True)
            self.abort()
            raise
        self.files, self._temporary = {}, {}


class SplitWriter(AtomicFileSet):
    """`train.jsonl`, `val.jsonl`, `test.jsonl` (one `{"text": ...}` per line), streamed, all or nothing."""

    def __init__(self, out_dir: Location):
        super().__init__(out_dir, [f"{name}.jsonl" for name in SPLITS])
        self.counts = dict.fromkeys(SPLITS, 0)

    def write(self, split: str, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"write_splits: {split} holds a {type(text).__name__}, not a str")
        line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
        self.files[f"{split}.jsonl"].write(line.encode("utf-8"))
        self.counts[split] += 1


def split_80_10_10(items: list, seed: int = 42) -> dict[str, list]:
    """The paper's shuffled split: `train_test_split(test_size=0.2, random_state=seed)`, then the rest 50/50."""
    from sklearn.model_selection import train_test_split

    try:
        train, held_out = train_test_split(list(items), test_size=0.2, random_state=seed)
        val, test = train_test_split(held_out, test_size=0.5, random_state=seed)
    except ValueError as exc:
        raise ValueError(f"split_80_10_10: cannot split {len(items)} items ({exc})") from exc
    return {"train": train, "val": val, "test": test}


def write_splits(out_dir: Location, splits: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Write `train.jsonl`, `val.jsonl`, `test.jsonl` (one `{"text": ...}` per line); return line counts.

    All or nothing (`SplitWriter`): the three files appear together once all are complete, or not at all.
    """
    if set(splits) != set(SPLITS):
        raise ValueError(f"write_splits needs the splits train, val and test, got {sorted(splits)}")
    with SplitWriter(out_dir) as writer:
        for name in SPLITS:
            for text in splits[name]:
                writer.write(name, text)
        writer.commit()
    return writer.counts


def _jsonl_texts(file: Path, key: str) -> Iterator[str]:
    """The string under `key` of each JSON line of `file` (blank lines skipped), streamed; strict: anything
    else (invalid UTF-8 or JSON, no such key, not a string, an empty text) is an error naming the line."""
    with open(_existing(file, "file"), "rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                line = without_end(decode(raw, file) if line_no == 1 else raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise DataSourceError(f"{file}:{line_no}: not valid UTF-8 (byte {exc.start + 1})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataSourceError(f"{file}:{line_no}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or key not in obj:
                raise DataSourceError(f"{file}:{line_no}: expected a JSON object with key {key}")
            if not isinstance(obj[key], str) or not obj[key].strip():
                problem = "an empty text" if isinstance(obj[key], str) else f"a {type(obj[key]).__name__}"
                raise DataSourceError(f"{file}:{line_no}: `{key}` is {problem}, not a text")
            yield obj[key]


def load_text_splits(split_dir: Location) -> datasets.DatasetDict:
    """`write_splits` output as a DatasetDict: train, validation (from val.jsonl), test; column `text`."""
    ds = _datasets()
    features = ds.Features({"text": ds.Value("string")})
    splits = {}
    for split, stem in (("train", "train"), ("validation", "val"), ("test", "test")):
        texts = list(_jsonl_texts(Path(split_dir) / f"{stem}.jsonl", "text"))
        splits[split] = ds.Dataset.from_dict({"text": texts}, features=features)
    return ds.DatasetDict(splits)


# ----------------------------------------------------------------------------------------------------------
# FLORES-200 devtest (SPEC §5.1) and SIB-200 (SPEC §5.3): TSV files, raw or CSV-quoted by their format


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


def locate_flores(location: Location, flores_code: str) -> Path:
    """The local FLORES-200 devtest file of one language, as `load_flores_devtest` reads it.

    A DataSourceError names the files looked for when there is none."""
    path = _existing(location, "FLORES-200 location")
    if path.is_file():
        return path
    iso, code = flores_code.split("_")[0], flores_code
    candidates = (
        f"flores200_dataset/devtest/{code}.devtest",
        f"devtest/{code}.devtest",
        f"{code}.devtest",
        "devtest.tsv",
        f"{code}/devtest.tsv",
        f"{iso}/devtest.tsv",
    )
    looked = ", ".join(str(path / c) for c in candidates)
    return _first_file(
        path, candidates, f"{path}: no FLORES-200 devtest for {flores_code} (looked for {looked})"
    )


def _check_devtest(where: str, at: list[str], sentences: list[str], sample: bool) -> None:
    """No empty sentence (`at`: where each one is); FLORES_DEVTEST_SENTENCES of them, fewer only in a sample."""
    for place, sentence in zip(at, sentences, strict=True):
        if not sentence.strip():
            raise DataSourceError(f"{place}: empty sentence")
    n, full = len(sentences), FLORES_DEVTEST_SENTENCES
    if n == 0:
        raise DataSourceError(f"{where}: no devtest sentences")
    if n > full:
        raise DataSourceError(f"{where}: {n} devtest sentences, more than the release's {full}")
    if n < full and not sample:
        raise DataSourceError(
            f"{where}: {n} devtest sentences, fewer than the release's {full}; if the file is a sample of "
            "FLORES-200, set `data.samples: true` in the profile"
        )


def load_flores_devtest(
    location: Location, flores_code: str, *, quoting: Quoting | None = None, sample: bool = False
) -> datasets.Dataset:
    """FLORES-200 devtest sentences of one language: columns `id` (int) and `sentence`, exactly as in the file.

    Local forms (`locate_flores`): `<dir>/flores200_dataset/devtest/<code>.devtest` or `<dir>/devtest/<code>.devtest` (one
    sentence per line, ids from 1, no quoting), a `.devtest` file, a TSV file with header `id<TAB>sentence`, or
    a folder holding `devtest.tsv` (also as `<dir>/<code>/devtest.tsv` or `<dir>/<iso639-3>/devtest.tsv`). The
    hub: `openlanguagedata/flores_plus`, falling back to `facebook/flores`. A TSV file is raw (a field is
    everything between tabs) unless `quoting="csv"` (`text_files`). An empty sentence is an error naming its
    line, and so is a devtest of other than the release's 1012 sentences, unless `sample` (the profile's
    `data.samples`) allows fewer.
    """
    check_quoting(quoting)
    if _is_hub(location):
        hint = "`data.flores` at a FLORES-200 folder (flores200_dataset/devtest/<code>.devtest) or TSV"
        repo = "openlanguagedata/flores_plus"
        try:
            hub = _from_hub(repo, flores_code, hint, split="devtest")
        except DataSourceError:
            repo = "facebook/flores"
            hub = _from_hub(repo, flores_code, hint, split="devtest")
        column = "text" if "text" in hub.column_names else "sentence"
        ids, sentences = [int(i) for i in hub["id"]], list(hub[column])
        where = f"{repo} ({flores_code}) devtest"
        at = [f"{where} row {i}" for i in range(len(sentences))]
    else:
        path = locate_flores(location, flores_code)
        if path.suffix == ".tsv":
            rows = read_tsv(path, ("id", "sentence"), quoting)
            ids, sentences = [_int(path, n, f[0]) for n, f in rows], [f[1] for _, f in rows]
            at = [f"{path}:{n}" for n, _ in rows]
        else:
            if quoting == "csv":
                raise DataSourceError(
                    f"{path}: `data.quoting.flores: csv` does not apply to a .devtest file (one sentence a line)"
                )
            sentences = lines(read_text(path))
            ids = list(range(1, len(sentences) + 1))
            at = [f"{path}:{n}" for n in ids]
        where = str(path)
    _check_devtest(where, at, sentences, sample)
    ds = _datasets()
    features = ds.Features({"id": ds.Value("int64"), "sentence": ds.Value("string")})
    return ds.Dataset.from_dict({"id": ids, "sentence": sentences}, features=features)


def _sib_dataset(records: list[tuple[int, str, str, str]]) -> datasets.Dataset:
    """Dataset from (index_id, category, text, where) records; `where` names a record in errors."""
    ds = _datasets()
    for _, category, text, where in records:
        if category not in SIB_LABELS:
            raise DataSourceError(f"{where}: unknown SIB-200 category {category!r} (not in SIB_LABELS)")
        if not text.strip():
            raise DataSourceError(f"{where}: empty text")
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


SIB_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


def locate_sib200(location: Location, flores_code: str) -> dict[str, Path]:
    """The local SIB-200 files of one language, as `load_sib200` reads them: split → file.

    A DataSourceError names the files looked for when there is none, or the split file missing next to train.tsv."""
    path = _existing(location, "SIB-200 location")
    iso, code = flores_code.split("_")[0], flores_code
    candidates = ("train.tsv", f"data/annotated/{code}/train.tsv", f"{code}/train.tsv", f"{iso}/train.tsv")
    looked = ", ".join(str(path / c) for c in candidates)
    message = f"{path}: no SIB-200 files for {flores_code} (no train.tsv; looked for {looked})"
    folder = _first_file(path, candidates, message).parent
    files = {split: folder / name for split, name in SIB_FILES.items()}
    for split, file in files.items():
        if not file.is_file():
            raise DataSourceError(
                f"{folder}: no SIB-200 {file.name} for {flores_code} (the {split} split; looked for {file})"
            )
    return files


def load_sib200(
    location: Location, flores_code: str, *, quoting: Quoting | None = None
) -> datasets.DatasetDict:
    """SIB-200 of one language: splits train/validation/test, columns index_id, text, category, label.

    `label` is a ClassLabel over SIB_LABELS (fixed order). Local forms (`locate_sib200`): a folder holding train.tsv, dev.tsv
    and test.tsv; `<dir>/data/annotated/<code>/` (the SIB-200 repository); `<dir>/<code>/`; `<dir>/<iso639-3>/`.
    Quoting by the layout unless `quoting` says (`text_files`): the repository's `data/annotated/<code>/` files
    are pandas-CSV-quoted, any other TSV (as the shared samples) is raw. Texts come back exactly as in the
    file; a malformed row (wrong field count, unknown category, empty text) is an error naming its line.
    """
    check_quoting(quoting)
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
    splits = {}
    for split, file in locate_sib200(location, flores_code).items():
        rows = read_tsv(file, ("index_id", "category", "text"), quoting)
        splits[split] = _sib_dataset([(_int(file, n, i), c, t, f"{file}:{n}") for n, (i, c, t) in rows])
    return ds.DatasetDict(splits)
