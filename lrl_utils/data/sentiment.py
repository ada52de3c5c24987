"""Binary sentiment data (SPEC §5.4): local .tsv/.csv/.jsonl files in the known formats, or the hub datasets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lrl_utils.data.sources import (
    DataSourceError,
    Location,
    _datasets,
    _hub_error,
    _is_hub,
)
from lrl_utils.data.task_data import TaskOptions, _Options, _Tally, _text_lines
from lrl_utils.data.task_files import (
    SPLITS,
    locate_sentiment,
    sentiment_name,
    where_read,
)
from lrl_utils.data.text_files import (
    Quoting,
    check_quoting,
    json_value,
    read_bytes,
    records,
    refuse_gzip,
    tsv_quoting,
)

if TYPE_CHECKING:
    import datasets
    from typing_extensions import Unpack

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")
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
# Binary sentiment


def _json_field(value: object) -> object:
    """A JSON value as a field: a string as is, null as "", a number as its text; a list, object or boolean is
    kept as it is, so that `_labelled` counts it as malformed instead of reading its Python repr as text."""
    if value is None:
        return ""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _rows(
    file: Path, tally: _Tally, quoting: Quoting | None = None
) -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    """(columns, [(file:line, row)]) of a .jsonl, .tsv or .csv file; unreadable rows are counted in `tally`."""
    data, rows = read_bytes(file), []
    refuse_gzip(data, file)
    if file.suffix == ".jsonl":
        lines = _text_lines(data)
        columns: list[str] = []
        for n, line, bad_text in (x for x in lines if x[1].strip()):
            tally.records += 1
            obj, why = None, (bad_text, "")
            if not bad_text:
                try:
                    obj = json_value(line)
                    why = ("", "") if isinstance(obj, dict) else ("not a JSON object", type(obj).__name__)
                except json.JSONDecodeError as exc:
                    why = ("invalid JSON", exc.msg)
            if not why[0]:  # a JSON object
                columns = columns or list(obj)
                rows.append((f"{file}:{n}", {str(k): _json_field(v) for k, v in obj.items()}))
            else:
                tally.bad.add(f"{file}:{n}", *why)
        return columns, rows
    mode = tsv_quoting(file, quoting)  # a .csv file is CSV-quoted
    if file.suffix == ".csv" and mode == "raw":
        raise DataSourceError(
            f"{file}: `data.quoting.sentiment: raw` applies to .tsv files, not to a .csv file"
        )
    lines = _text_lines(data, keep_ends=True)
    bad_text = {n: problem for n, _, problem in lines if problem}
    delimiter = "\t" if file.suffix == ".tsv" else ","
    found = records((line for _, line, _ in lines), mode, str(file), delimiter)  # a CSV record may span lines
    header = [name.strip() for name in next(found, (1, 1, []))[2]]
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:  # a row would keep only the last column of the name
        raise DataSourceError(f"{file}:1: the header names {', '.join(map(repr, twice))} more than once")
    for first, last, fields in found:
        if any(f.strip() for f in fields):
            tally.records += 1
            if problems := [bad_text[n] for n in range(first, last + 1) if n in bad_text]:
                tally.bad.add(f"{file}:{first}", problems[0])
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
        missing = [column for column in (fmt.text, fmt.label) if column not in row]
        odd = [c for c in (fmt.text, fmt.label) if c in row and not isinstance(row[c], str)]
        if missing or odd:  # a JSON line without a column, or with a list, object or boolean in it
            reason = "missing column" if missing else "not a string"
            tally.bad.add(at, reason, ", ".join(f"`{c}`" for c in missing or odd))
            continue
        raw, text = row[fmt.label].strip(), row[fmt.text]
        if fmt.only_if and str(row.get(fmt.only_if[0], fmt.only_if[1])).strip() != fmt.only_if[1]:
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
    **options: Unpack[TaskOptions],
) -> datasets.DatasetDict:
    """Binary sentiment of one data set: splits train/validation/test, columns `text` and `label` (0/1).

    `dataset`: a hub id (`dgurgurov/maltese_sa`, as in params/languages.yaml) or a name (`maltese`,
    `maltese_sa`: `dgurgurov/maltese_sa`). `location`: "hub", a local folder or one file (module docstring);
    `iso3` names one more folder to look in (`shared/data/sentiment/mlt`). `label_map` (raw label → 0, 1 or
    None to drop the row) replaces the label mapping of the detected source format. `quoting`: "raw" or "csv"
    for the .tsv files (None: raw; module docstring). `options` (`TaskOptions`): as for `load_wikiann`, with
    the profile's `finetune.sa.missing_splits` and `split_seed`.
    """
    check_quoting(quoting)
    opts = _Options("sa", **options)
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
