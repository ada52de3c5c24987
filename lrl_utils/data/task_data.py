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

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrl_utils.data.sources import (
    BadRecords,
    DataSourceError,
    Location,
    _datasets,
    _existing,
    _from_hub,
    _hub_error,
    _is_hub,
    split_80_10_10,
)
from lrl_utils.data.task_files import (  # noqa: F401  (SPLITS, MISSING_SPLITS, carve_plan: part of this module's API)
    CARVE_RULES,
    MISSING_SPLITS,
    SPLITS,
    carve_plan,
    check_missing_splits,
    locate_sentiment,
    locate_wikiann,
    sentiment_name,
    where_read,
)
from lrl_utils.data.text_files import Quoting, check_quoting, records, tsv_quoting, without_end

if TYPE_CHECKING:
    import datasets

NER_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")
TASK_MAX_BAD_FRACTION = 0.01  # default share of malformed sentences / rows per split file (docstring)
WIKIANN_HUB = "unimelb-nlp/wikiann"

WIKIANN_HINT = "`data.wikiann` at a folder of CoNLL files (train, dev, test: token<TAB>tag lines)"
SENTIMENT_HINT = "`data.sentiment` at a folder of train/dev/test .tsv/.csv/.jsonl files (text and label)"


@dataclass(frozen=True)
class SentimentFormat:
    """How one source stores binary sentiment: its columns and its raw labels (lower-cased) → 0/1 or None."""

    name: str
    text: str
    label: str
    labels: Mapping[str, int | None]
    suffixes: tuple[str, ...] = (".tsv", ".csv", ".jsonl")
    datasets: tuple[str, ...] = ()  # only for these dataset names (empty: any)
    only_if: tuple[str, str] | None = None  # (column, value): rows with another value are dropped


BINARY_LABELS: dict[str, int | None] = {"0": 0, "1": 1, "negative": 0, "positive": 1, "neg": 0, "pos": 1}
_POLARITY: dict[str, int | None] = {"negative": 0, "positive": 1, "neutral": None}
SENTIMENT_FORMATS: tuple[SentimentFormat, ...] = (
    SentimentFormat("afrisenti", "tweet", "label", _POLARITY),
    SentimentFormat("wisesight", "texts", "category", {"neg": 0, "pos": 1, "neu": None, "q": None}),
    SentimentFormat("malta-budget", "Online Post", "Sentiment Polarity", _POLARITY, only_if=("Maltese", "1")),
    SentimentFormat("amram-hebrew", "text", "label", {"0": 1, "1": 0, "2": None}, (".tsv",), ("hebrew",)),
    SentimentFormat("binary", "text", "label", BINARY_LABELS),
)


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


def _text_lines(data: bytes, keep_ends: bool = False) -> list[tuple[int, str, bool]]:
    """(line number, text without its line end (`keep_ends`: with it), valid UTF-8?) per line, split on
    `\n` only; invalid bytes become U+FFFD."""
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    last = lines.pop()
    out = []
    for n, raw in enumerate([line + b"\n" for line in lines] + ([last] if last else []), 1):
        try:
            text, valid = raw.decode("utf-8"), True
        except UnicodeDecodeError:
            text, valid = raw.decode("utf-8", errors="replace"), False
        out.append((n, text if keep_ends else without_end(text), valid))
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


@dataclass(frozen=True)
class _Options:
    """The loaders' common keyword arguments, the tallies of the splits read, and the common last step."""

    task: str  # the profile's task key, ner or sa (the missing-split error names `finetune.<task>.*`)
    max_bad_fraction: float
    missing_splits: str
    seed: int
    stats: dict | None
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


# ----------------------------------------------------------------------------------------------------------
# WikiANN NER


def _conll_sentences(file: Path, iso2: str, tally: _Tally) -> list[tuple[list[str], list[int]]]:
    """Sentences of a CoNLL `token<TAB>tag` file; bad sentences are counted in `tally` and left out."""
    sentences: list[tuple[list[str], list[int]]] = []
    tokens: list[str] = []
    tags: list[int] = []
    problem: tuple[str, str, str] | None = None
    prefix, prefixed = f"{iso2}:", None
    for n, line, valid in [*_text_lines(_existing(file, "file").read_bytes()), (0, "", True)]:
        if valid and not line.strip():  # a sentence ends (the extra last line ends the last one)
            if tokens or problem:
                tally.records += 1
                if problem:
                    tally.bad.add(*problem)
                else:
                    sentences.append((tokens, tags))
            tokens, tags, problem = [], [], None
            continue
        fields, why = line.split("\t"), ("", "")
        if not valid:
            why = ("invalid UTF-8", "")
        elif len(fields) != 2:
            why = ("wrong column count", f"{len(fields)} tab-separated columns, expected 2: token<TAB>tag")
        else:
            token, tag = fields[0], fields[1].strip()
            prefixed = token.startswith(prefix) if prefixed is None else prefixed
            token = token.removeprefix(prefix) if prefixed else token
            if not token.strip():
                why = ("empty token", "")
            elif tag not in NER_TAGS:
                why = ("unknown tag", repr(tag))
            else:
                tokens.append(token)
                tags.append(NER_TAGS.index(tag))
        if why[0] and problem is None:
            problem = (f"{file}:{n}", *why)
    return sentences


def _wikiann_hub(iso2: str, opts: _Options) -> dict[str, list]:
    hub = _from_hub(WIKIANN_HUB, iso2, WIKIANN_HINT)
    splits: dict[str, list] = {}
    for split in SPLITS:
        if split not in hub:
            raise DataSourceError(f"{WIKIANN_HUB} ({iso2}): no {split} split (has {', '.join(hub)})")
        rows, tally = hub[split], opts.tally(split, f"{WIKIANN_HUB} ({iso2}) {split}")
        names = list(getattr(getattr(rows.features["ner_tags"], "feature", None), "names", None) or NER_TAGS)
        splits[split] = []
        for i, (tokens, ids) in enumerate(zip(rows["tokens"], rows["ner_tags"], strict=True)):
            tally.records += 1
            tags = [names[t] if 0 <= t < len(names) else str(t) for t in ids]
            unknown = [t for t in tags if t not in NER_TAGS]
            at = f"{tally.where} row {i}"
            if not tokens:
                tally.bad.add(at, "empty sentence")
            elif len(tokens) != len(tags):
                tally.bad.add(at, "tokens and tags differ in number", f"{len(tokens)} and {len(tags)}")
            elif unknown:
                tally.bad.add(at, "unknown tag", repr(unknown[0]))
            else:
                splits[split].append((list(tokens), [NER_TAGS.index(t) for t in tags]))
    return splits


def _rule(missing_splits: str, fill_missing_splits: bool) -> str:
    return "carve" if fill_missing_splits else missing_splits


def load_wikiann(
    location: Location,
    iso2: str,
    *,
    iso3: str | None = None,
    max_bad_fraction: float = TASK_MAX_BAD_FRACTION,
    missing_splits: str = "error",
    seed: int = 42,
    stats: dict | None = None,
    fill_missing_splits: bool = False,
) -> datasets.DatasetDict:
    """WikiANN NER of one language: splits train/validation/test, columns `tokens` and `ner_tags` (NER_TAGS).

    `location`: "hub" (`unimelb-nlp/wikiann`, config `iso2`), a local folder or one CoNLL file (module
    docstring; `locate_wikiann`); `iso3` names one more folder to look in (`shared/data/wikiann/mlt` for `mt`).
    `missing_splits` (`error` | `carve`) and `seed`: the profile's `finetune.ner.missing_splits` and
    `split_seed` (module docstring); `fill_missing_splits=True` is the same as `missing_splits="carve"`.
    """
    opts = _Options("ner", max_bad_fraction, _rule(missing_splits, fill_missing_splits), seed, stats)
    if _is_hub(location):
        where, found = f"{WIKIANN_HUB} ({iso2})", _wikiann_hub(iso2, opts)
    else:
        files = locate_wikiann(location, iso2, iso3)
        where = where_read(files)
        found = {split: _conll_sentences(f, iso2, opts.tally(split, str(f))) for split, f in files.items()}
    ds = _datasets()
    tags = ds.List(ds.ClassLabel(names=list(NER_TAGS)))
    return opts.finish(found, where, "sentence", {"tokens": ds.List(ds.Value("string")), "ner_tags": tags})


# ----------------------------------------------------------------------------------------------------------
# Binary sentiment


def _rows(
    file: Path, tally: _Tally, quoting: Quoting | None = None
) -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    """(columns, [(file:line, row)]) of a .jsonl, .tsv or .csv file; unreadable rows are counted in `tally`."""
    data, rows = _existing(file, "file").read_bytes(), []
    if file.suffix == ".jsonl":
        lines = _text_lines(data)
        columns: list[str] = []
        for n, line, valid in (x for x in lines if x[1].strip()):
            tally.records += 1
            try:
                obj = json.loads(line) if valid else "invalid UTF-8"
            except json.JSONDecodeError as exc:
                obj = f"invalid JSON: {exc.msg}"
            if isinstance(obj, dict):
                columns = columns or list(obj)
                rows.append((f"{file}:{n}", {str(k): "" if v is None else str(v) for k, v in obj.items()}))
            else:
                reason, _, detail = (obj if isinstance(obj, str) else "not a JSON object").partition(": ")
                tally.bad.add(f"{file}:{n}", reason, detail)
        return columns, rows
    mode = tsv_quoting(file, quoting)  # a .csv file is CSV-quoted
    if file.suffix == ".csv" and mode == "raw":
        raise DataSourceError(
            f"{file}: `data.quoting.sentiment: raw` applies to .tsv files, not to a .csv file"
        )
    lines = _text_lines(data, keep_ends=True)
    invalid = {n for n, _, valid in lines if not valid}
    delimiter = "\t" if file.suffix == ".tsv" else ","
    found = records((line for _, line, _ in lines), mode, str(file), delimiter)  # a CSV record may span lines
    header = [name.strip() for name in next(found, (1, 1, []))[2]]
    for first, last, fields in found:
        if any(f.strip() for f in fields):
            tally.records += 1
            if invalid.intersection(range(first, last + 1)):
                tally.bad.add(f"{file}:{first}", "invalid UTF-8")
            elif len(fields) != len(header):
                tally.bad.add(
                    f"{file}:{first}", "wrong field count", f"{len(fields)}, expected {len(header)}"
                )
            else:
                rows.append((f"{file}:{first}", dict(zip(header, fields, strict=True))))
    return header, rows


def _format(columns: list[str], suffix: str, name: str, where: str) -> SentimentFormat:
    """The first of SENTIMENT_FORMATS whose columns, file suffix and data sets match."""
    for fmt in SENTIMENT_FORMATS:
        if (
            {fmt.text, fmt.label} <= set(columns)
            and suffix in fmt.suffixes
            and name in (fmt.datasets or [name])
        ):
            return fmt
    raise DataSourceError(
        f"{where}: no known text and label columns among {columns[:8]} (see SENTIMENT_FORMATS)"
    )


def _labelled(rows: list, fmt: SentimentFormat, labels: Mapping[str, int | None], tally: _Tally) -> list:
    """(text, 0/1) of the rows; unknown labels and empty texts are counted as bad, None labels as dropped."""
    out = []
    for at, row in rows:
        raw, text = row[fmt.label].strip(), row[fmt.text]
        if fmt.only_if and row.get(fmt.only_if[0], fmt.only_if[1]).strip() != fmt.only_if[1]:
            tally.dropped += 1
        elif raw.lower() not in labels:
            tally.bad.add(at, "unknown label", f"{raw!r}; known: {', '.join(labels)}")
        elif labels[raw.lower()] is None:
            tally.dropped += 1
        elif not text.strip():
            tally.bad.add(at, "empty text")
        else:
            out.append((text, labels[raw.lower()]))
    return out


def _sentiment_hub(repo: str, opts: _Options) -> dict[str, list]:
    """split → [(where, {"text", "label"})] of a hub data set (a ClassLabel id becomes its name)."""
    try:
        hub = _datasets().load_dataset(repo)
    except Exception as exc:
        raise _hub_error(repo, "default config", exc, SENTIMENT_HINT) from exc
    found = {}
    for hub_split, rows in hub.items():
        split = {"dev": "validation", "valid": "validation"}.get(hub_split, hub_split)
        if split not in SPLITS:
            continue
        if not {"text", "label"} <= set(rows.column_names):
            raise DataSourceError(
                f"{repo} {hub_split}: expected columns text and label, got {rows.column_names}"
            )
        names = getattr(rows.features["label"], "names", None) or []
        tally = opts.tally(split, f"{repo} {split}")
        pairs = list(zip(rows["text"], rows["label"], strict=True))
        found[split] = [
            (
                f"{tally.where} row {i}",
                {"text": t or "", "label": names[y] if y in range(len(names)) else str(y)},
            )
            for i, (t, y) in enumerate(pairs)
        ]
        tally.records = len(pairs)
    return found


def load_sentiment(
    location: Location,
    dataset: str,
    *,
    iso3: str | None = None,
    label_map: Mapping[str | int, int | None] | None = None,
    quoting: Quoting | None = None,
    max_bad_fraction: float = TASK_MAX_BAD_FRACTION,
    missing_splits: str = "error",
    seed: int = 42,
    stats: dict | None = None,
    fill_missing_splits: bool = False,
) -> datasets.DatasetDict:
    """Binary sentiment of one data set: splits train/validation/test, columns `text` and `label` (0/1).

    `dataset`: a hub id (`dgurgurov/maltese_sa`, as in params/languages.yaml) or a name (`maltese`,
    `maltese_sa`: `dgurgurov/maltese_sa`). `location`: "hub", a local folder or one file (module docstring);
    `iso3` names one more folder to look in (`shared/data/sentiment/mlt`). `label_map` (raw label → 0, 1 or
    None to drop the row) replaces the label mapping of the detected source format. `quoting`: "raw" or "csv"
    for the .tsv files (None: raw; module docstring). `missing_splits` and `seed`: the profile's
    `finetune.sa.missing_splits` and `split_seed`, as for `load_wikiann`.
    """
    check_quoting(quoting)
    opts = _Options("sa", max_bad_fraction, _rule(missing_splits, fill_missing_splits), seed, stats)
    if label_map is not None and any(v not in (0, 1, None) for v in label_map.values()):
        raise ValueError(
            f"label_map values must be 0, 1 or None, got {sorted(map(repr, label_map.values()))}"
        )
    override = None if label_map is None else {str(k).strip().lower(): v for k, v in label_map.items()}
    repo, name = sentiment_name(dataset)
    sources: dict[str, tuple[SentimentFormat, list]] = {}
    if _is_hub(location):
        where = repo
        sources = {s: (SENTIMENT_FORMATS[-1], rows) for s, rows in _sentiment_hub(repo, opts).items()}
    else:
        files = locate_sentiment(location, dataset, iso3)
        where = where_read(files)
        for split, file in files.items():
            columns, rows = _rows(file, opts.tally(split, str(file)), quoting)
            fmt = _format(columns, file.suffix, name, f"{file}:1") if rows else SENTIMENT_FORMATS[-1]
            sources[split] = (fmt, rows)  # without rows, the summary reports the malformed ones
    found = {
        s: _labelled(rows, fmt, fmt.labels if override is None else override, opts.tallies[s])
        for s, (fmt, rows) in sources.items()
    }
    ds = _datasets()
    columns = {"text": ds.Value("string"), "label": ds.ClassLabel(names=list(SENTIMENT_LABELS))}
    formats = {split: fmt.name for split, (fmt, _) in sources.items()}
    return opts.finish(found, where, "row", columns, formats=formats)
