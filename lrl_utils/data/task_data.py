"""Loaders of the downstream-task data (SPEC §5.3): WikiANN NER and binary sentiment analysis (SA).

Each returns a `datasets.DatasetDict` with splits train/validation/test and ONE schema per task, whatever the
source. NER: `tokens` (list of str), `ner_tags` (list of ClassLabel ids over NER_TAGS, the fixed order O, B-PER,
I-PER, B-ORG, I-ORG, B-LOC, I-LOC of the hub's wikiann). SA: `text`, `label` (ClassLabel: 0 negative, 1 positive).

`location` is "hub" (`unimelb-nlp/wikiann` config <iso2>; `dgurgurov/<name>_sa`, the paper's datasets; offline
they fail at once with a one-line DataSourceError saying how to point at local files) or a local path:

- WikiANN: CoNLL `token<TAB>tag` lines, a blank line between sentences, as files `train`, `dev` (or
  `validation`/`valid`/`val`), `test`, bare or ending .conll/.tsv/.txt/.iob2 (the Rahimi et al. 2019 members,
  as in shared/data/wikiann/<iso3>/) or as XTREME's PAN-X `{train,dev}-<iso2>.tsv` (its test files have no
  labels and are not read), in the folder or in `<dir>/<iso2>/`, `<dir>/<iso3>/`; or one CoNLL file holding
  every sentence. A `<iso2>:` token prefix (the original Rahimi files) is removed.
- SA: .tsv, .csv or .jsonl files named like the NER splits, or one `all.*` file, in the folder or in
  `<dir>/<name>/`, `<dir>/<name>_sa/`, `<dir>/<iso3>/`. A .tsv file is raw (a field is everything between
  tabs, a `"` is text) unless `quoting="csv"` (the profile's `data.quoting.sentiment`); a .csv file is
  CSV-quoted (`text_files`). The text and label columns and the
  raw label → 0/1 map come from the first matching entry of SENTIMENT_FORMATS: AfriSenti (`tweet`, `label`:
  positive/negative), Wisesight (`texts`, `category`: pos/neg), Malta Budget 2018 (`Online Post`, `Sentiment
  Polarity`; Maltese rows only), the Amram et al. Hebrew TSV (`text`, `label`: 0 = positive, 1 = negative;
  used for the data set `hebrew` only, as its header is the generic one), else `text`, `label` with 0/1 or
  negative/positive (the hub's form). Labels mapped to None (neutral, off-topic) drop the row; `label_map=`
  replaces the map of any source.

Malformed records are dropped and counted per split file by `data_sources.BadRecords` (first ones logged and
quoted as `file:line: reason (detail)`): a sentence with an unknown tag, an empty token, a line without exactly
2 tab-separated columns or with invalid UTF-8; a row with an unknown label, an empty text, a wrong field count,
invalid JSON or UTF-8; an empty or mis-aligned hub example. A split fails (one-line DataSourceError) only if
more than `max_bad_fraction` of its records are malformed: the pipeline passes the profile's
`data.max_bad_fraction` (FinetuneSpec, LLMSpec); called directly, the default is TASK_MAX_BAD_FRACTION = 0.01,
which drops the odd broken sentence of a 20,000-sentence split but stops a file of another layout. Tokens,
texts and labels come back exactly as in the file (only the line end removed; a tag or label is compared
after strip, a token or text never changed), except the documented `<iso2>:` token prefix.

Missing splits (XTREME's PAN-X test files carry no labels, the Hebrew SA has no dev file, the Maltese SA is one
file) follow the profile's rule `finetune.<task>.missing_splits` (`missing_splits=` here; default `error`: a
one-line DataSourceError naming that key). With `carve`, the missing splits are carved out of the others with
`random_state=split_seed` (`finetune.<task>.split_seed`, default 42), by CARVE_RULES:

- no test: the test split is half of validation (`train_test_split(validation, test_size=0.5)`; the rest stays
  validation), train untouched (XTREME WikiANN: train + dev);
- no validation: validation is 10% of train (`test_size=0.1`), test untouched (Hebrew SA: train + test);
- neither (one file, or train only): the paper's 80/10/10 of train (`data_sources.split_80_10_10`).

A `stats` dict receives per split the counts (records, kept, dropped, and `BadRecords.stats`: malformed, by
reason, first examples), `sizes` (rows per split after carving), `carved` (per carved split: the split it came
from, its share and its rows; `filled` lists the same names), the rule and seed, and (SA) the formats. The
file-finding part of each loader is its own function (`locate_wikiann`, `locate_sentiment`), which the
runner's `--dry-run` calls too (`data_check.py`), so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from lrl_utils.data.sources import (
    BadRecords,
    DataSourceError,
    _datasets,
    split_80_10_10,
)
from lrl_utils.data.task_files import (
    MISSING_SPLITS,
    SPLITS,
    check_missing_splits,
)
from lrl_utils.data.text_files import NUL, without_end

if TYPE_CHECKING:
    pass

TASK_MAX_BAD_FRACTION = 0.01  # default share of malformed sentences / rows per split file (docstring)
# ----------------------------------------------------------------------------------------------------------
# Counting bad records, reading files, filling missing splits


class _Tally:
    """Records of one split: how many were read and how many dropped on purpose; the malformed ones in `bad`."""

    def __init__(self, where: str, max_bad_fraction: float):
        self.where, self.records, self.dropped = where, 0, 0
        self.bad = BadRecords(where, max_bad_fraction)

    def summary(self, unit: str) -> dict:
        """The counts; a DataSourceError if the share of malformed records is above the threshold."""
        if self.records == 0:
            raise DataSourceError(f"{self.where}: no {unit}s")
        self.bad.check(self.records, f"{unit}s")
        kept = self.records - self.bad.count - self.dropped
        if kept == 0:
            raise DataSourceError(f"{self.where}: no usable {unit}s ({self.dropped} dropped)")
        counts = {"records": self.records, "kept": kept, "dropped": self.dropped}
        return counts | self.bad.stats(self.records)


def _text_lines(data: bytes, keep_ends: bool = False) -> list[tuple[int, str, str]]:
    """(line number, text without its line end (`keep_ends`: with it), its problem) per line, split on `\n`
    only. The problem is "" for a valid line, "invalid UTF-8" (its bytes become U+FFFD) or `NUL`."""
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    last = lines.pop()
    out = []
    for n, raw in enumerate([line + b"\n" for line in lines] + ([last] if last else []), 1):
        try:
            text = raw.decode("utf-8")
            problem = NUL if "\0" in text else ""
        except UnicodeDecodeError:
            text, problem = raw.decode("utf-8", errors="replace"), "invalid UTF-8"
        out.append((n, text if keep_ends else without_end(text), problem))
    return out


def _fill_splits(found: dict[str, list], where: str, opts: _Options) -> tuple[dict, dict]:
    """train/validation/test from the splits found; missing ones carved out by the rule (module docstring)."""
    from sklearn.model_selection import train_test_split

    plan = check_missing_splits(list(found), where, opts.task, opts.missing_splits)
    if "all" in found:
        found.setdefault("train", found["all"])
        del found["all"]
    seed = opts.seed
    try:
        if "validation" in plan and "test" in plan:
            parts = split_80_10_10(found["train"], seed)
            found.update(train=parts["train"], validation=parts["val"], test=parts["test"])
        elif "validation" in plan:
            found["train"], found["validation"] = train_test_split(
                found["train"], test_size=0.1, random_state=seed
            )
        elif "test" in plan:
            found["validation"], found["test"] = train_test_split(
                found["validation"], test_size=0.5, random_state=seed
            )
    except ValueError as exc:
        raise DataSourceError(f"{where}: cannot carve out {', '.join(plan)} ({exc})") from exc
    carved = {
        split: {"from": source, "share": share, "rows": len(found[split])}
        for split, (source, share) in plan.items()
    }
    return {s: found[s] for s in SPLITS}, carved


class TaskOptions(TypedDict, total=False):
    """The keyword arguments every task loader takes (`load_wikiann`, `load_sentiment`); defaults as `_Options`'."""

    max_bad_fraction: float  # share of malformed records per split file above which the split fails
    missing_splits: str  # error | carve: the profile's `finetune.<task>.missing_splits`
    seed: int  # the carving's random_state: the profile's `finetune.<task>.split_seed`
    stats: dict | None  # receives the splits' statistics (`finish`)


@dataclass(frozen=True)
class _Options:
    """The loaders' common keyword arguments (`TaskOptions`), the tallies of the splits read, and the common last
    step."""

    task: str  # the profile's task key, ner or sa (the missing-split error names `finetune.<task>.*`)
    max_bad_fraction: float = TASK_MAX_BAD_FRACTION
    missing_splits: str = "error"
    seed: int = 42
    stats: dict | None = None
    tallies: dict[str, _Tally] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction: must be in [0, 1], got {self.max_bad_fraction!r}")
        if self.missing_splits not in MISSING_SPLITS:
            raise ValueError(
                f"missing_splits: must be one of {', '.join(MISSING_SPLITS)}, got {self.missing_splits!r}"
            )

    def tally(self, split: str, where: str) -> _Tally:
        self.tallies[split] = _Tally(where, self.max_bad_fraction)
        return self.tallies[split]

    def finish(self, found: dict, where: str, unit: str, columns: dict, **extra: Any) -> Any:
        """Check the malformed shares, carve out missing splits, fill `stats`; a DatasetDict of `columns`."""
        summaries = {split: tally.summary(unit) for split, tally in self.tallies.items()}
        splits, carved = _fill_splits(found, where, self)
        if self.stats is not None:
            self.stats.update(
                splits=summaries,
                sizes={s: len(rows) for s, rows in splits.items()},
                carved=carved,
                filled=list(carved),
                missing_splits=self.missing_splits,
                split_seed=self.seed,
                **extra,
            )
        ds, features = _datasets(), _datasets().Features(columns)
        data = {s: {c: [row[i] for row in rows] for i, c in enumerate(columns)} for s, rows in splits.items()}
        return ds.DatasetDict({s: ds.Dataset.from_dict(d, features=features) for s, d in data.items()})
