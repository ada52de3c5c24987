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
    decode,
    json_value,
    nul_error,
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


def split_sizes(splits: Mapping[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    """Per split, its texts (`documents`) and their UTF-8 bytes, as the preprocess stage reports them."""
    return {
        k: {"documents": len(v), "bytes": sum(len(t.encode("utf-8")) for t in v)} for k, v in splits.items()
    }


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
            if "\0" in line:
                raise nul_error(file, line_no)
            if not line.strip():
                continue
            try:
                obj = json_value(line)
            except json.JSONDecodeError as exc:
                raise DataSourceError(f"{file}:{line_no}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or key not in obj:
                raise DataSourceError(f"{file}:{line_no}: expected a JSON object with key {key}")
            if not isinstance(obj[key], str) or not obj[key].strip():
                problem = "an empty text" if isinstance(obj[key], str) else f"a {type(obj[key]).__name__}"
                raise DataSourceError(f"{file}:{line_no}: `{key}` is {problem}, not a text")
            yield obj[key]


def load_text_splits(split_dir: Location, required: tuple[str, ...] = ()) -> datasets.DatasetDict:
    """`write_splits` output as a DatasetDict: train, validation (from val.jsonl), test; column `text`.

    A split named in `required` without a text is a one-line DataSourceError naming its file (a corpus of a few
    documents can leave the held-out split empty), raised before anything trains."""
    ds = _datasets()
    features = ds.Features({"text": ds.Value("string")})
    splits = {}
    for split, stem in (("train", "train"), ("validation", "val"), ("test", "test")):
        file = Path(split_dir) / f"{stem}.jsonl"
        texts = list(_jsonl_texts(file, "text"))
        if split in required and not any(t.strip() for t in texts):
            counts = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
            raise DataSourceError(
                f"{file}: the {split} split has no text ({counts or 'read first'}): the corpus has too few "
                "documents to train on and hold some out; give it more documents"
            )
        splits[split] = ds.Dataset.from_dict({"text": texts}, features=features)
    return ds.DatasetDict(splits)
