"""What the report's producers share: the metrics shown per task and model (`METRICS`, one list for the tables and
the figures) and `ReportRun`, a report run's records and the outputs it has written so far.

Every table and figure is written into the report run's folder, each with a `.runs.json` sidecar naming the runs
it was built from; `written` collects those files (the run's `outputs`). Only when every producer has finished
does `publish` copy them into `figures/` (and remove the figures this report no longer draws), so a report that
fails halfway leaves `figures/` as the last finished report left it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from lrl_utils.config import paths
from lrl_utils.records.context import RunContext
from lrl_utils.records.results import load_records, read_result
from lrl_utils.report import figures, tables


@dataclass(frozen=True)
class MetricView:
    """One evaluation metric, shown per model as a table (`table_<name>_<model>`) and a figure (`fig_<name>_<model>`)."""

    name: str
    stage: str
    metric: str
    task: str  # "" for PPPL
    lower_is_better: bool
    caption: str  # the table's
    title: str  # the figure's
    log_y: bool = False  # the figure's value axis
    chance: float | None = None  # a dashed line on the figure


METRICS: tuple[MetricView, ...] = (
    MetricView(
        "pppl", "pppl", "pppl", "", True,
        "FLORES-200 devtest pseudo-perplexity (mean of sentence scores)",
        "Pseudo-perplexity on FLORES-200 devtest (lower is better)",
        log_y=True,
    ),
    MetricView(
        "tc", "finetune", "test_macro_f1", "tc", False,
        "Topic classification (SIB-200), test macro-F1",
        "Topic classification macro-F1 (SIB-200 format)",
        chance=1 / 7,
    ),
    MetricView(
        "sa", "finetune", "test_macro_f1", "sa", False,
        "Sentiment analysis (binary), test macro-F1",
        "Sentiment analysis macro-F1 (binary)",
    ),
    MetricView(
        "ner", "finetune", "test_f1", "ner", False,
        "Named entity recognition (WikiANN), test seqeval F1",
        "NER entity F1 (WikiANN format, seqeval)",
    ),
)  # fmt: skip


@dataclass
class ReportRun:
    """A report run: its context, the records of its evaluation runs, and what it has written and counted."""

    ctx: RunContext
    records: pd.DataFrame
    missing: list[str]
    written: list[Path] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # counts the producers add to the run's metrics
    discarded: list[str] = field(default_factory=list)  # figures `publish` removes from `figures/`

    @classmethod
    def load(cls, ctx: RunContext) -> ReportRun:
        records = load_records(ctx.spec.inputs)
        missing = [f for f in ctx.spec.inputs if read_result(f) is None]
        print(
            f"{records['run'].nunique()} of {len(ctx.spec.inputs)} evaluation runs found; {len(missing)} missing"
        )
        return cls(ctx=ctx, records=records, missing=missing)

    @property
    def spec(self):
        return self.ctx.spec

    @property
    def models(self) -> list[str]:
        return sorted(self.records["model"].unique())

    def metric_views(self) -> Iterator[tuple[str, MetricView, dict[str, str]]]:
        """(model, metric view, record selection) for every model and `METRICS` entry the records have results
        for (a task or stage the profile does not run is skipped); the selection is `tables.results_table`'s
        and `figures.plot_metric_bars`' keywords."""
        for model in self.models:
            for view in METRICS:
                where = {"stage": view.stage, "metric": view.metric, "model": model, "task": view.task}
                if tables.has_results(self.records, **where):
                    yield model, view, where

    @property
    def copies(self) -> list[Path]:
        """Where `publish` copies the outputs besides the run folder: the canonical `figures/` for a run of the
        runner; nowhere for an interactive run (JupyterLab), which writes only under `runs/_interactive/`."""
        return [] if getattr(self.ctx, "interactive", False) else [paths.figures_dir()]

    def table(self, table: pd.DataFrame, name: str, caption: str, runs: list[str], lower_is_better) -> None:
        """A results table (Markdown + LaTeX, best per row in bold) in the run folder."""
        self.written += tables.write_table(
            table, self.ctx.out_dir / name, lower_is_better=lower_is_better, caption=caption, runs=runs
        )

    def frame(self, frame: pd.DataFrame, name: str, caption: str, runs: list[str], **extra: Any) -> None:
        """A plain table (Markdown, LaTeX and CSV) in the run folder."""
        self.written += tables.write_frame(
            frame, self.ctx.out_dir / name, caption=caption, runs=runs, **extra
        )

    def figure(self, fig: Figure, name: str, runs: list[str]) -> None:
        """A figure (PNG + PDF) in the run folder."""
        self.written += figures.save_figure(fig, self.ctx.out_dir / name, runs)

    def discard(self, name: str) -> None:
        """Have `publish` remove an earlier report's copies of figure `name` from `figures/` when this report
        does not draw it, so that `figures/` shows only what the current results support."""
        self.discarded.append(name)

    def publish(self) -> None:
        """Copy every output into `figures/` (atomically, file by file) and remove the discarded figures: the
        report's last step, once every producer has finished."""
        made = [p for p in self.written if p.parent == Path(self.ctx.out_dir)]
        self.written += tables.copy_outputs(made, self.copies)
        for folder in self.copies:
            for name in self.discarded:
                for path in folder.glob(f"{name}.*"):
                    if path.suffix in (".png", ".pdf", ".json"):
                        path.unlink(missing_ok=True)
