"""Where the files of a downstream task's data set are, and which splits they make (SPEC §5.3).

The file-finding part of the WikiANN and sentiment loaders of `task_data.py`, as functions of their own
(`locate_wikiann`, `locate_sentiment`) that the loaders and the runner's `--dry-run` (`data_check.py`) both call,
so the two never disagree; and the rule for splits the files lack (`finetune.<task>.missing_splits`: `error` or
`carve`, CARVE_RULES; the task_data docstring explains it). Nothing here reads more than a folder listing.
"""

from __future__ import annotations

import os
from pathlib import Path

from lrl_utils.data.sources import DataSourceError, Location, _existing

SPLITS: tuple[str, ...] = ("train", "validation", "test")
MISSING_SPLITS: tuple[str, ...] = ("error", "carve")  # the profile's finetune.<task>.missing_splits
_STEMS = {"train": ("train",), "validation": ("dev", "validation", "valid", "val"), "test": ("test",)}
WIKIANN_SUFFIXES = ("", ".conll", ".tsv", ".txt", ".iob2")
SENTIMENT_SUFFIXES = (".tsv", ".csv", ".jsonl")


def is_data_file(path: Path) -> bool:
    """Whether `path` is a file; a data-file name (`test.tsv`) held by a folder or a link to nothing is an error
    (it would otherwise count as a missing split, and be carved out of another one without a word)."""
    if path.is_file():
        return True
    if path.suffix and os.path.lexists(path):
        raise DataSourceError(f"{path}: not a readable file (a folder, or a link to nothing)")
    return False


def split_files(folders: list[Path], suffixes: tuple[str, ...], extra: str = "") -> dict[str, Path]:
    """split (or `all`) → file, from the first of `folders` holding a train or `all` file."""
    for folder in (f for f in folders if f.is_dir()):
        found = {}
        for split, stems in (*_STEMS.items(), ("all", ("all",))):
            names = [stem + suffix for stem in stems for suffix in suffixes]
            names += [f"{stem}-{extra}.tsv" for stem in stems] if extra and split != "test" else []
            file = next((folder / n for n in names if is_data_file(folder / n)), None)
            if file is not None:
                found[split] = file
        if "train" in found or "all" in found:
            return found
    return {}


def looked_for(folders: list[Path], suffixes: tuple[str, ...], extra: str = "") -> str:
    """The train files `split_files` looks for, for an error message."""
    names = [f"train{suffixes[0] or suffixes[1]}", *([f"train-{extra}.tsv"] if extra else []), "all.*"]
    return ", ".join(str(folder / name) for folder in folders for name in names)


CARVE_RULES = "test = half of validation; validation = 10% of train; both = 80/10/10 of train"


def carve_plan(present: set[str] | list[str]) -> dict[str, tuple[str, float]]:
    """missing split → (the split it is carved from, the share of that split it takes); see CARVE_RULES."""
    have = {"train" if s == "all" else s for s in present}
    missing = [s for s in SPLITS if s not in have]
    if "validation" in missing and "test" in missing:
        return {"validation": ("train", 0.1), "test": ("train", 0.1)}
    if "validation" in missing:
        return {"validation": ("train", 0.1)}
    if "test" in missing:
        return {"test": ("validation", 0.5)}
    return {}


def describe_plan(plan: dict[str, tuple[str, float]]) -> str:
    """`test = half of validation`, `validation = 10% of train`, or `train/validation/test = 80/10/10 of train`."""
    if set(plan) == {"validation", "test"}:
        return "train/validation/test = 80/10/10 of the train data"
    return "; ".join(
        f"{split} = {'half' if share == 0.5 else f'{share:.0%}'} of {source}"
        for split, (source, share) in plan.items()
    )


def check_missing_splits(present: set[str] | list[str], where: str, task: str, rule: str) -> dict:
    """The carve plan of the splits present; a DataSourceError naming the profile key when the rule is `error`."""
    if rule not in MISSING_SPLITS:
        raise ValueError(f"missing_splits: must be one of {', '.join(MISSING_SPLITS)}, got {rule!r}")
    plan = carve_plan(present)
    if plan and rule == "error":
        found = "one file" if list(present) == ["all"] else ", ".join(present)
        raise DataSourceError(
            f"{where}: no {' or '.join(plan)} split (found {found}); set `finetune.{task}.missing_splits: "
            f"carve` in the profile to carve {'it' if len(plan) == 1 else 'them'} out ({describe_plan(plan)}, "
            f"seeded by `finetune.{task}.split_seed`)"
        )
    return plan


def sentiment_name(dataset: str) -> tuple[str, str]:
    """(hub id, short name) of a sentiment data set given as a hub id or a name (`maltese`, `maltese_sa`)."""
    repo = dataset if "/" in dataset else f"dgurgurov/{dataset.lower().removesuffix('_sa')}_sa"
    return repo, repo.rsplit("/", 1)[-1].lower().removesuffix("_sa")


def conll_fields(line: str) -> list[str]:
    """A CoNLL line's tab-separated fields, trailing tabs (empty columns) dropped: `token<TAB>tag<TAB>` is two."""
    return line.rstrip("\t\r ").split("\t")


def locate_wikiann(location: Location, iso2: str, iso3: str | None = None) -> dict[str, Path]:
    """The local WikiANN files of one language, as `load_wikiann` reads them: split (or `all`) → file.

    A DataSourceError names the files looked for when there is none."""
    path = _existing(location, "WikiANN location")
    if path.is_file():
        return {"all": path}
    folders = [path, path / iso2, *([path / iso3] if iso3 else [])]
    files = split_files(folders, WIKIANN_SUFFIXES, extra=iso2)
    if not files:
        looked = looked_for(folders, WIKIANN_SUFFIXES[1:], extra=iso2)
        raise DataSourceError(f"{path}: no WikiANN files for {iso2} (looked for {looked}, ...)")
    return files


def locate_sentiment(location: Location, dataset: str, iso3: str | None = None) -> dict[str, Path]:
    """The local sentiment files of one data set, as `load_sentiment` reads them: split (or `all`) → file.

    A DataSourceError names the files looked for when there is none."""
    path = _existing(location, "sentiment location")
    if path.is_file():
        return {"all": path}
    name = sentiment_name(dataset)[1]
    folders = [path, path / name, path / f"{name}_sa", *([path / iso3] if iso3 else [])]
    files = split_files(folders, SENTIMENT_SUFFIXES)
    if not files:
        looked = looked_for(folders, SENTIMENT_SUFFIXES)
        raise DataSourceError(
            f"{path}: no sentiment files for {name} (looked for {looked}; also .csv, .jsonl)"
        )
    return files


def where_read(files: dict[str, Path]) -> str:
    """The folder (or file) a local data set was read from, for messages."""
    first = files.get("train", files.get("all"))
    return str(first if len(files) == 1 and "all" in files else first.parent)
