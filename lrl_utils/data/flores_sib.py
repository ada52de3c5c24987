"""FLORES-200 devtest (SPEC §5.1) and SIB-200 (SPEC §5.3): TSV files, raw or CSV-quoted by their format, or the hub."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lrl_utils.data.sources import Location, _datasets, _from_hub, _is_hub
from lrl_utils.data.task_files import is_data_file
from lrl_utils.data.text_files import (
    DataSourceError,
    Quoting,
    check_quoting,
    lines,
    read_text,
    read_tsv,
)
from lrl_utils.data.text_files import existing as _existing

if TYPE_CHECKING:
    import datasets

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

# ----------------------------------------------------------------------------------------------------------
# FLORES-200 devtest (SPEC §5.1) and SIB-200 (SPEC §5.3): TSV files, raw or CSV-quoted by their format


def _int(file: Path, line_no: int, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataSourceError(f"{file}:{line_no}: {value!r} is not an integer") from None


def _first_file(folder: Path, candidates: Sequence[str], message: str) -> Path:
    """The first of the relative paths `candidates` that is a file in `folder`."""
    found = next((folder / c for c in candidates if is_data_file(folder / c)), None)
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
        if not is_data_file(file):
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
            if not records:
                raise DataSourceError(f"Davlan/sib200 ({flores_code}): the {split} split has no rows")
            splits[split] = _sib_dataset(records)
        return ds.DatasetDict(splits)
    splits = {}
    for split, file in locate_sib200(location, flores_code).items():
        rows = read_tsv(file, ("index_id", "category", "text"), quoting)
        if not rows:
            raise DataSourceError(f"{file}: no rows after the header (the {split} split of {flores_code})")
        splits[split] = _sib_dataset([(_int(file, n, i), c, t, f"{file}:{n}") for n, (i, c, t) in rows])
    return ds.DatasetDict(splits)
