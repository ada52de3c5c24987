"""Tables (Markdown + LaTeX) and figures (PNG + PDF) of the paper, built from the tidy result frame.

Input: the tidy frame, one row per (run, metric), with columns ``run, stage, model, language, seen, source,
adapter, task, seed, metric, value``. Every output is rebuilt from that frame alone and written atomically
(temporary file in the same folder, then ``os.replace``) next to a ``<stem>.runs.json`` sidecar that lists the
run hashes it was built from.

Table layout (:func:`results_table`):

* rows: the seen languages (sorted), then the unseen ones (sorted), then the summary rows ``Seen avg``,
  ``Unseen avg``, ``Total avg`` (a group without languages is omitted);
* columns: a two-level ``MultiIndex`` (``config``, ``stat``), configurations in :data:`CONFIG_ORDER`,
  ``stat`` in ``mean`` / ``std`` / ``n``. For a language, ``mean`` and ``std`` (ddof=1) are over seeds and
  ``n`` is the number of seeds; ``table.xs("mean", axis=1, level="stat")`` gives the plain means.
  For a summary row, ``mean`` is the average of the per-language means that are present, ``std`` is NaN and
  ``n`` is how many languages went into it;
* missing cells stay NaN (``n`` = 0), never 0;
* ``table.attrs`` holds ``unseen`` (languages marked †), ``unknown`` (languages marked ‡: a run of theirs had
  more than ``UNK_WARNING`` of its tokens unknown to the tokenizer, ``unk_share``), ``expected_n`` (per row: seeds
  expected for a language, the group size for a summary row; a cell with fewer is flagged ``*`` in the text) and
  ``runs``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from lrl_utils.adapters import registry
from lrl_utils.records.results import UNK_WARNING, atomic_output, atomic_write_text

SOURCE_LABELS = {"conceptnet": "CN", "glotcc": "Glot"}
BASE_COLOR, FFT_COLOR, FUSION_COLOR = "#7f7f7f", "#31a354", "#9e9ac8"


def _configs(paper_only: bool) -> dict[str, str]:
    """{label: colour} of the configurations, in the paper's column order (Tables 10, 11, 15, 16, ...): Base, the
    ConceptNet then the GlotCC adapters of the paper's methods, the other methods' adapters, FFT, the Fusions.
    Labels and colours come from the adapter registry (grey Base, blues for ConceptNet, oranges for Glot, green
    FFT, purples Fusion)."""
    methods = list(registry.ADAPTER_METHODS.values())
    paper = [m for m in methods if m.in_paper]
    configs = {"Base": BASE_COLOR}
    for i, source in enumerate(SOURCE_LABELS.values()):
        configs |= {f"{source} {m.label}": m.colors[i] for m in paper}
    if not paper_only:
        for m in methods:
            if not m.in_paper:
                configs |= {
                    f"{source} {m.label}": m.colors[i] for i, source in enumerate(SOURCE_LABELS.values())
                }
    configs[registry.FULL_FINETUNING_LABEL] = FFT_COLOR
    if not paper_only:
        configs["Fusion"] = FUSION_COLOR
    fused = [m for m in (paper if paper_only else methods) if m.fusion_color]
    return configs | {f"Fusion {m.label}": m.fusion_color for m in fused}


#: Column order of the tables and figures; the configurations of the paper's own tables (without this
#: project's additions: the methods the paper does not have, a Fusion of unknown method).
CONFIG_ORDER: tuple[str, ...] = tuple(_configs(paper_only=False))
PAPER_CONFIGS: tuple[str, ...] = tuple(_configs(paper_only=True))
CONFIG_COLORS = _configs(paper_only=False)
SUMMARY_ROWS: tuple[str, ...] = ("Seen avg", "Unseen avg", "Total avg")
STATS: tuple[str, ...] = ("mean", "std", "n")
METRIC_LABELS = {
    "pppl": "PPPL",
    "pppl_token_weighted": "PPPL (token-weighted)",
    "test_macro_f1": "F1",
    "test_f1": "F1",
    "test_accuracy": "Acc.",
}
#: (stage, task, metric) rows of :func:`summary_table`, skipped when absent from the frame.
DEFAULT_SUMMARY_METRICS: tuple[tuple[str, str, str], ...] = (
    ("pppl", "", "pppl"),
    ("finetune", "tc", "test_macro_f1"),
    ("finetune", "sa", "test_macro_f1"),
    ("finetune", "ner", "test_f1"),
)
UNSEEN_MARK, INCOMPLETE_MARK, MISSING_MARK, UNKNOWN_MARK = "†", "*", "–", "‡"


def _norm(value: object) -> str:
    """A source/adapter/task field as a lower-case string; None and NaN become "none"."""
    return "none" if pd.isna(value) else (str(value).strip().lower() or "none")


def config_label(source: str, adapter: str) -> str:
    """The paper's name of a configuration: "Base", "CN Seq_bn", "Glot LoRA", "FFT", "Fusion Seq_bn", ..."""
    source, adapter = _norm(source), _norm(adapter)
    if adapter == registry.FULL_FINETUNING:
        return registry.label(adapter)
    if adapter.startswith("fusion"):
        kind = adapter.removeprefix("fusion").strip("_")
        return f"Fusion {registry.label(kind)}".strip()
    if source == "fusion":
        return f"Fusion {registry.label(adapter)}"
    prefix = "" if source == "none" else SOURCE_LABELS.get(source, source)
    if adapter == "none":
        return prefix or "Base"
    return f"{prefix} {registry.label(adapter)}".strip()


def _order_configs(labels: Sequence[str]) -> list[str]:
    """Known labels in CONFIG_ORDER, unknown ones after them, alphabetically."""
    present = set(labels)
    return [c for c in CONFIG_ORDER if c in present] + sorted(present - set(CONFIG_ORDER))


def is_lower_better(metric: str) -> bool:
    """True for perplexities and losses, False for scores such as F1 and accuracy."""
    return any(key in metric for key in ("pppl", "perplexity", "loss"))


def _mask(df: pd.DataFrame, stage: str, metric: str, model: str, task: str) -> pd.Series:
    tasks = df["task"].fillna("").astype(str)
    return (df["stage"] == stage) & (df["metric"] == metric) & (df["model"] == model) & (tasks == task)


def has_results(df: pd.DataFrame, *, stage: str, metric: str, model: str, task: str = "") -> bool:
    """Whether any record is behind the table or figure of (stage, metric, model, task): a profile may run a
    subset of the tasks, models or stages."""
    return bool(_mask(df, stage, metric, model, task).any())


def _select(df: pd.DataFrame, *, stage: str, metric: str, model: str, task: str) -> pd.DataFrame:
    """The rows of one table, with a ``config`` column; raises ValueError when there are none."""
    sel = df.loc[_mask(df, stage, metric, model, task)].copy()
    if sel.empty:
        raise ValueError(f"no results for stage={stage!r} metric={metric!r} model={model!r} task={task!r}")
    sel["config"] = [config_label(s, a) for s, a in zip(sel["source"], sel["adapter"], strict=True)]
    return sel


def selected_runs(df: pd.DataFrame, *, stage: str, metric: str, model: str, task: str = "") -> list[str]:
    """Sorted run hashes behind one table or figure (what the ``.runs.json`` sidecar lists)."""
    return sorted(set(_select(df, stage=stage, metric=metric, model=model, task=task)["run"].astype(str)))


def results_table(df: pd.DataFrame, *, stage: str, metric: str, model: str, task: str = "") -> pd.DataFrame:
    """Languages × configurations with mean/std/n over seeds and seen/unseen/total averages (see module doc).

    Raises ValueError when nothing matches, when two runs share language, configuration and seed (stale runs
    of an older spec, say), or when a language is both seen and unseen for the model.
    """
    sel = _select(df, stage=stage, metric=metric, model=model, task=task)
    keys = sel[["language", "config"]].assign(seed=sel["seed"].astype(float).fillna(-1.0))
    duplicated = keys.duplicated(keep=False)
    if duplicated.any():
        runs = sorted(set(sel.loc[duplicated, "run"].astype(str)))
        raise ValueError(f"several runs for the same language, configuration and seed: {runs}")
    flags = sel["seen"].astype(bool).groupby(sel["language"])
    if (counts := flags.nunique()).gt(1).any():
        raise ValueError(f"languages both seen and unseen for {model}: {list(counts.index[counts > 1])}")
    seen_of = flags.first()
    seen, unseen = sorted(seen_of.index[seen_of]), sorted(seen_of.index[~seen_of])
    languages, configs = seen + unseen, _order_configs(sel["config"].unique())

    values = sel.groupby(["language", "config"])["value"]
    mean = values.mean().unstack().reindex(index=languages, columns=configs)
    std = values.std().unstack().reindex(index=languages, columns=configs)
    n = values.count().unstack().reindex(index=languages, columns=configs).fillna(0).astype(int)
    expected = dict.fromkeys(languages, int(n.to_numpy().max()))
    for label, group in zip(SUMMARY_ROWS, (seen, unseen, languages), strict=True):
        if group:
            block = mean.loc[group]
            mean.loc[label], std.loc[label], n.loc[label] = block.mean(), np.nan, block.count()
            expected[label] = len(group)

    table = pd.concat({"mean": mean, "std": std, "n": n}, axis=1).swaplevel(axis=1)
    table = table.reindex(columns=pd.MultiIndex.from_product([configs, STATS], names=["config", "stat"]))
    table.index.name = "language"
    runs = sorted(set(sel["run"].astype(str)))
    unk = (
        df[_mask(df, stage, "unk_share", model, task) & df["run"].isin(runs)]
        .groupby("language")["value"]
        .max()
    )
    unknown = sorted(unk.index[unk > UNK_WARNING])
    table.attrs = dict(stage=stage, metric=metric, model=model, task=task, unseen=unseen, unknown=unknown)
    table.attrs |= dict(expected_n=expected, runs=runs)
    return table


def _latex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(char, repl)
    return text.replace("†", r"$^\dagger$").replace("‡", r"$^\ddagger$")


def _cell(mean: float, std: float, n: float, bold: bool, flagged: bool, decimals: int, latex: bool) -> str:
    """One cell's text: "mean ± std" over several seeds, "mean" otherwise, "–" when missing."""
    if pd.isna(mean):
        return "--" if latex else MISSING_MARK
    text = f"{mean:.{decimals}f}"
    if n > 1 and pd.notna(std):
        text += (r" $\pm$ " if latex else " ± ") + f"{std:.{decimals}f}"
    if bold:
        text = rf"\textbf{{{text}}}" if latex else f"**{text}**"
    if flagged:
        text += r"$^{*}$" if latex else "\\" + INCOMPLETE_MARK  # a bare * would read as Markdown emphasis
    return text


def format_table(
    table: pd.DataFrame,
    *,
    lower_is_better: bool | Mapping[str, bool],
    decimals: int = 2,
    fmt: Literal["markdown", "latex"] = "markdown",
    caption: str = "",
) -> str:
    """Text of a :func:`results_table` / :func:`summary_table` frame.

    Unseen languages get †; cells with fewer seeds/languages than ``attrs["expected_n"]`` get * (flagged);
    missing cells show "–". The best unflagged mean of each row (at the shown precision, ties all bold) is
    bold; ``lower_is_better`` is one direction for the whole table or a mapping row label → direction (rows
    not in it: higher is better). A note line explaining the marks that occur follows the table.
    """
    if fmt not in ("markdown", "latex"):
        raise ValueError(f"fmt must be 'markdown' or 'latex', not {fmt!r}")
    latex = fmt == "latex"
    means, stds, ns = (table.xs(stat, axis=1, level="stat") for stat in STATS)
    unseen = set(table.attrs.get("unseen", ()))
    expected: Mapping[str, int] = table.attrs.get("expected_n", {})
    body = pd.DataFrame(index=means.index, columns=means.columns, dtype=object)
    flags_used = False
    for row in means.index:
        lower = lower_is_better if isinstance(lower_is_better, bool) else lower_is_better.get(row, False)
        flagged_row = means.loc[row].notna() & (ns.loc[row] < expected.get(row, 0))
        candidates = means.loc[row].round(decimals).mask(flagged_row)  # a partial average cannot win
        best = candidates.min() if lower else candidates.max()
        for config in means.columns:
            mean, n, flagged = means.at[row, config], ns.at[row, config], bool(flagged_row[config])
            bold = means.loc[row].count() > 1 and candidates[config] == best
            body.at[row, config] = _cell(mean, stds.at[row, config], n, bold, flagged, decimals, latex)
            flags_used |= flagged
    unknown = set(table.attrs.get("unknown", ())) & set(means.index)
    marks = {row: UNSEEN_MARK * (row in unseen) + UNKNOWN_MARK * (row in unknown) for row in means.index}
    labels = [f"{row}{marks[row]}" for row in means.index]
    notes = [f"{UNSEEN_MARK} unseen in pre-training"] if unseen & set(means.index) else []
    if unknown:
        notes.append(f"{UNKNOWN_MARK} over {UNK_WARNING:.0%} of its tokens unknown to the tokenizer")
    if flags_used:
        notes.append(f"{INCOMPLETE_MARK} fewer seeds or languages than the other cells of the row")
    if means.isna().to_numpy().any():
        notes.append(f"{MISSING_MARK} missing")
    index_name = "ISO" if table.index.name == "language" else str(table.index.name or "")
    if latex:
        body.insert(0, index_name, [_latex_escape(label) for label in labels])
        body.columns = [index_name] + [_latex_escape(str(c)) for c in means.columns]
        text = body.to_latex(
            index=False, escape=False, column_format="l" + "r" * len(means.columns), caption=caption or None
        )
        lines = text.splitlines()
        first_summary = next((i for i, ln in enumerate(lines) if ln.startswith(SUMMARY_ROWS)), None)
        if first_summary is not None:
            lines.insert(first_summary, r"\midrule")
        if notes:
            note = _latex_escape("; ".join(notes)).replace("*", r"$^{*}$").replace("–", "--")
            lines.insert(lines.index(r"\end{tabular}") + 1, rf"\par\footnotesize {note}")
        return "\n".join(lines) + "\n"
    body.insert(0, index_name, labels)
    parts = [caption, ""] if caption else []
    align = ("left",) + ("right",) * len(means.columns)
    parts.append(body.to_markdown(index=False, colalign=align, disable_numparse=True))
    if notes:
        parts += ["", "; ".join(notes).replace(INCOMPLETE_MARK, "\\" + INCOMPLETE_MARK) + "."]
    return "\n".join(parts) + "\n"


def with_suffix(stem: Path, suffix: str) -> Path:
    """``stem`` + suffix, keeping dots inside the stem (``with_suffix`` would cut them)."""
    return stem.with_name(stem.name + suffix)


def write_sidecar(path_stem: Path, runs: Sequence[str], outputs: Sequence[Path], **extra: object) -> Path:
    record = {**extra, "runs": sorted({str(r) for r in runs}), "outputs": [p.name for p in outputs]}
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    return atomic_write_text(with_suffix(path_stem, ".runs.json"), text)


def write_table(
    table: pd.DataFrame,
    path_stem: Path,
    *,
    lower_is_better: bool | Mapping[str, bool],
    caption: str,
    runs: Sequence[str],
    decimals: int = 2,
) -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.tex`` and ``<stem>.runs.json`` (caption + run hashes); return the paths."""
    path_stem = Path(path_stem)
    written = []
    for ext, fmt in (("md", "markdown"), ("tex", "latex")):
        text = format_table(
            table, lower_is_better=lower_is_better, decimals=decimals, fmt=fmt, caption=caption
        )
        written.append(atomic_write_text(with_suffix(path_stem, f".{ext}"), text))
    return written + [write_sidecar(path_stem, runs, written, caption=caption)]


def metric_label(task: str, metric: str) -> str:
    """A row or axis label such as "PPPL" or "TC F1"."""
    name = METRIC_LABELS.get(metric, metric)
    return f"{task.upper()} {name}" if task else name


def summary_table(
    df: pd.DataFrame,
    *,
    model: str,
    metrics: Sequence[tuple[str, str, str]] = DEFAULT_SUMMARY_METRICS,
    groups: Sequence[str] = SUMMARY_ROWS,
) -> pd.DataFrame:
    """Headline table (the paper's Table 1): rows "<metric> (seen|unseen|total)", columns as in results_table.

    ``metrics`` lists (stage, task, metric) triples; those without results for ``model`` are skipped.
    ``attrs["lower_is_better"]`` maps each row to its direction, ready for :func:`format_table`.
    """
    rows: dict[str, pd.Series] = {}
    expected: dict[str, int] = {}
    directions: dict[str, bool] = {}
    runs: set[str] = set()
    for stage, task, metric in metrics:
        if not _mask(df, stage, metric, model, task).any():
            continue
        table = results_table(df, stage=stage, metric=metric, model=model, task=task)
        runs.update(table.attrs["runs"])
        for group in groups:
            if group in table.index:
                label = f"{metric_label(task, metric)} ({group.split()[0].lower()})"
                rows[label] = table.loc[group]
                expected[label] = table.attrs["expected_n"][group]
                directions[label] = is_lower_better(metric)
    if not rows:
        raise ValueError(f"no results for model={model!r} and metrics {list(metrics)}")
    out = pd.DataFrame(rows).T
    configs = _order_configs(out.columns.get_level_values("config").unique())
    out = out.reindex(columns=pd.MultiIndex.from_product([configs, STATS], names=["config", "stat"]))
    out.loc[:, (slice(None), "n")] = out.loc[:, (slice(None), "n")].fillna(0)
    out = out.astype(float)
    out.index.name = "metric"
    out.attrs = {"model": model, "expected_n": expected, "lower_is_better": directions, "runs": sorted(runs)}
    return out


def copy_outputs(written: Sequence[Path], also_to: Sequence[Path]) -> list[Path]:
    """Atomic copies of the files ``written`` into each folder of ``also_to`` (e.g. ``figures/``)."""
    return [
        atomic_output(Path(folder) / path.name, partial(shutil.copyfile, path))
        for folder in also_to
        for path in written
    ]


def write_frame(
    frame: pd.DataFrame,
    path_stem: Path,
    *,
    caption: str,
    runs: Sequence[str],
    floatfmt: str = ".4g",
    **extra: object,
) -> list[Path]:
    """A plain tidy table as ``<stem>.csv``, ``.md`` and ``.tex`` plus the ``.runs.json`` sidecar (``extra``
    goes into the sidecar, e.g. the reference files a comparison read); missing values print as "–"."""
    path_stem = Path(path_stem)
    shown = frame.astype(object).where(frame.notna(), "--")  # LaTeX's en dash
    markdown = (f"{caption}\n\n" if caption else "") + frame.to_markdown(index=False, floatfmt=floatfmt)
    markdown = markdown.replace(" nan ", f" {MISSING_MARK} ")
    latex = shown.to_latex(
        index=False, caption=caption or None, escape=True, float_format=lambda v: f"{v:{floatfmt}}"
    )
    written = [
        atomic_write_text(with_suffix(path_stem, ".csv"), frame.to_csv(index=False)),
        atomic_write_text(with_suffix(path_stem, ".md"), markdown + "\n"),
        atomic_write_text(with_suffix(path_stem, ".tex"), latex),
    ]
    written.append(write_sidecar(path_stem, runs, written, caption=caption, **extra))
    return written
