"""The catalogue of the report's outputs, and the report stage (`run(ctx)`, called by `notebooks/06_tables.py`
and `notebooks/07_figures.py`).

`CATALOGUE` lists every table and figure once: the report kind that makes it, its files (under the report run's
folder, and under `figures/` for tables and figures with a `.runs.json` sidecar), what it shows, and the function
that produces it. The per-task metrics behind the per-model tables and figures are `outputs.METRICS`. A report run
of kind `tables` or `figures` produces the catalogue's entries of its kind, in order, and finishes with their
count and the counts the producers add (`paper_cells_*`, the learning checks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lrl_utils.config import paths
from lrl_utils.records.context import RunContext
from lrl_utils.report import figure_outputs, table_outputs
from lrl_utils.report.outputs import ReportRun

Shown = list[tuple[str, object]]


@dataclass(frozen=True)
class Output:
    name: str
    kind: str  # tables | figures: the report run that makes it
    files: str  # file names, `{…}` filled per model, metric, analysis or source
    what: str
    make: Callable[[ReportRun], Shown]


CATALOGUE: tuple[Output, ...] = (
    Output("records", "tables", "records.csv", "every evaluation result read (tidy)", table_outputs.records_csv),
    Output(
        "per_task", "tables", "table_{metric}_{model}.{md,tex,runs.json}",
        "per task and model: languages × configurations (Tables 10-22)", table_outputs.metric_tables,
    ),
    Output(
        "summary", "tables", "table_summary_{model}.{md,tex,runs.json}",
        "seen / unseen / total averages per configuration (Table 1)", table_outputs.summary_tables,
    ),
    Output(
        "versus", "tables", "table_reproduced_vs_reported{,_summary}.{csv,md,tex,runs.json}",
        "the paper's cells next to the reproduced values, within tolerance", table_outputs.reproduced_vs_reported,
    ),
    Output(
        "parameters", "tables", "table_adapter_parameters.{csv,md,tex,runs.json}",
        "trainable parameters of the adapters (Table 9)", table_outputs.adapter_parameters,
    ),
    Output(
        "llm", "tables", "table_llm_comparison.{csv,md,tex,runs.json}",
        "prompted LLMs vs small models (Table 2)", table_outputs.llm_comparison,
    ),
    Output(
        "correlations", "tables", "table_correlations.{csv,md,tex,runs.json}",
        "correlation coefficients with data size (Tables 12, 14, 17, 20, 23)", table_outputs.correlation_table,
    ),
    Output(
        "checks", "tables", "learning_checks.csv",
        "does the grid show learning", table_outputs.learning_checks_csv,
    ),
    Output(
        "findings", "tables", "findings.{md,csv}",
        "the paper's findings F1-F3 as PASS/FAIL checks with their numbers", table_outputs.findings_md,
    ),
    Output(
        "per_task", "figures", "fig_{metric}_{model}.{png,pdf,runs.json}",
        "grouped bars per language and configuration (Figs. 7-12)", figure_outputs.metric_figures,
    ),
    Output(
        "correlations", "figures", "fig_cor_{analysis}_{model}.{png,pdf,runs.json}",
        "PPPL and F1 against data size, PPPL against F1 (Figs. 2-6)", figure_outputs.correlation_figures,
    ),
    Output(
        "loss", "figures", "fig_loss_{model}_{source}.{png,pdf,runs.json}",
        "language-adapter loss curves from TensorBoard", figure_outputs.loss_figures,
    ),
)  # fmt: skip

KINDS = ("tables", "figures")


def entries(kind: str) -> list[Output]:
    if kind not in KINDS:
        raise ValueError(f"report kind must be one of {KINDS}, got {kind!r}")
    return [o for o in CATALOGUE if o.kind == kind]


def run(ctx: RunContext) -> dict[str, Shown]:
    """The report notebooks' stage: show the catalogue's entries of the run's kind (`listing`), make each, finish
    the run (`outputs` or `figures`: how many were written, `runs_found`, `runs_missing`, the producers' counts;
    the files as `outputs`); returns, per entry name, what the notebook shows."""
    kind = ctx.spec.kind
    show([("", listing(kind))])
    report = ReportRun.load(ctx)
    shown = {output.name: output.make(report) for output in entries(kind)}
    report.publish()  # into figures/, now that every producer has finished
    found = {"runs_found": int(report.records["run"].nunique()), "runs_missing": len(report.missing)}
    count = {"outputs": len(report.written)} if kind == "tables" else {"figures": len(report.written) // 6}
    ctx.finish(count | found | report.metrics, outputs=[paths.relative(p) for p in report.written])
    return shown


def show(items: Shown) -> None:
    """Display what a producer returned: a caption in bold above Markdown text, a frame or a figure."""
    from IPython.display import Markdown, display

    for caption, item in items:
        if isinstance(item, str) and caption:
            display(Markdown(f"**{caption}**\n\n{item}"))
        elif isinstance(item, str):
            print(item)
        else:
            display(item)


def listing(kind: str):
    """The catalogue's entries of one kind as a frame: name, files, what they show."""
    import pandas as pd

    rows = [{"output": o.name, "files": o.files, "shows": o.what} for o in entries(kind)]
    return pd.DataFrame(rows).set_index("output")
