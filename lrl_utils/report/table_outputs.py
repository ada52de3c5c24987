"""The report's tables (`kind: tables`), one producer per catalogue entry (`report/catalogue.py`).

Each producer writes its files through the `ReportRun` (run folder and `figures/`, with sidecars) and returns
what the notebook shows: (caption, Markdown text or frame) pairs.
"""

from __future__ import annotations

import pandas as pd

from lrl_utils.records.results import atomic_write_text
from lrl_utils.report import checks as learning_checks
from lrl_utils.report import comparison, correlations, findings, findings_files, reference
from lrl_utils.report import tables as reporting
from lrl_utils.report.outputs import ReportRun

Shown = list[tuple[str, object]]
TOLERANCES = ("f1_tolerance", "pppl_tolerance", "loss_tolerance")


def records_csv(report: ReportRun) -> Shown:
    """The tidy frame of every evaluation result the report read (`records.csv`, run folder only)."""
    atomic_write_text(report.ctx.out_dir / "records.csv", report.records.to_csv(index=False))
    return []


def metric_tables(report: ReportRun) -> Shown:
    """Per task and model (the paper's Tables 10-22): languages × configurations, mean ± std over seeds."""
    shown, records = [], report.records
    for model, view, where in report.metric_views():
        table = reporting.results_table(records, **where)
        caption = f"{view.caption}; {model}"
        runs = reporting.selected_runs(records, **where)
        report.table(table, f"table_{view.name}_{model}", caption, runs, view.lower_is_better)
        text = reporting.format_table(table, lower_is_better=view.lower_is_better, fmt="markdown")
        shown.append((caption, text))
    return shown


def summary_tables(report: ReportRun) -> Shown:
    """Seen / unseen / total averages per configuration (the paper's headline table), per model."""
    shown, records = [], report.records
    for model in report.models:
        summary = reporting.summary_table(records, model=model)
        lower = summary.attrs["lower_is_better"]
        runs = sorted(records.query("model == @model")["run"].unique())
        report.table(summary, f"table_summary_{model}", f"Summary; {model}", runs, lower)
        shown.append(
            (f"Summary; {model}", reporting.format_table(summary, lower_is_better=lower, fmt="markdown"))
        )
    return shown


def reproduced_vs_reported(report: ReportRun) -> Shown:
    """Every cell of the paper's tables (and Table 8's adapter losses) next to the reproduced mean over seeds,
    and the count of cells within the profile's tolerances (`paper_cells_*` in the run's metrics)."""
    spec, records = report.spec, report.records
    adapts = comparison.load_adapt_records(spec.inputs)  # the language adapters behind the evaluations
    table8 = comparison.reported_adapter_losses(reference.load_table("table08_adapter_losses"))
    reported = pd.concat([reference.reported_results(), table8], ignore_index=True)
    versus = comparison.reproduced_vs_reported(
        pd.concat([records, comparison.adapter_loss_records(adapts)], ignore_index=True),
        reported,
        **{k: getattr(spec, k) for k in TOLERANCES},
    )
    runs = sorted({r for row in versus["runs"] for r in row.split()})
    names = [*reference.MAIN_TABLES, "table08_adapter_losses"]
    sources = {"reference": [f"params/reference/{name}.csv" for name in names]}
    tolerances = {k: getattr(spec, k) for k in TOLERANCES}
    report.frame(
        versus, "table_reproduced_vs_reported", "Reproduced vs reported", runs, **sources, **tolerances
    )
    summary = comparison.comparison_summary(versus)
    caption = (
        f"Reproduced vs reported: cells within tolerance (F1 ± {spec.f1_tolerance:g}, "
        f"PPPL ± {spec.pppl_tolerance:.0%}, adapter loss ± {spec.loss_tolerance:g})"
    )
    report.frame(summary, "table_reproduced_vs_reported_summary", caption, runs, **sources)
    report.metrics |= {f"paper_cells_{k}": int(v) for k, v in summary.iloc[-1].drop("table").items()}
    return [(caption, summary.to_markdown(index=False)), ("", versus[versus["status"] != "not run"].head(40))]


def adapter_parameters(report: ReportRun) -> Shown:
    """Trainable parameters as counted in the adapt runs, next to the paper's full-size counts (Table 9)."""
    adapts = comparison.load_adapt_records(report.spec.inputs)
    table = comparison.parameter_table(adapts, reference.load_table("table09_trainable_params"))
    if table.empty:
        return []
    caption = "Trainable parameters of the language adapters (runs) and the paper's full-size counts"
    report.frame(table, "table_adapter_parameters", caption, sorted(adapts["run"]))
    return [(caption, table.to_markdown(index=False))]


def llm_comparison(report: ReportRun) -> Shown:
    """The prompted LLMs' F1 over all items next to the small models, then the paper's Table 2."""
    shown, records = [], report.records
    llm_records = comparison.load_llm_records(report.spec.inputs)
    llm_table = comparison.llm_comparison_table(llm_records, records)
    if not llm_records.empty:
        runs = sorted(set(llm_records["run"]) | set(records["run"]))
        caption = "Prompted LLMs vs small models (mean F1 over the languages run; LLM F1 over all items)"
        report.frame(llm_table, "table_llm_comparison", caption, runs)
        shown.append((caption, llm_table.to_markdown(index=False, floatfmt=".3f")))
    paper = reference.load_table("table02_llm_vs_mlm")
    shown.append(("", paper.pivot_table(index="model", columns="task", values="value", sort=False)))
    return shown


def correlation_table(report: ReportRun) -> Shown:
    """Pearson and Spearman coefficients of PPPL and task F1 with data size, before and after adaptation."""
    sizes = correlations.data_sizes(report.spec.inputs)
    table = correlations.correlation_table(report.records, sizes)
    if not table.empty:
        caption = "Correlation coefficients (scipy pearsonr / spearmanr)"
        report.frame(table, "table_correlations", caption, sorted(report.records["run"].unique()))
    return [("", table)]


def learning_checks_csv(report: ReportRun) -> Shown:
    """Does the grid show learning? (`learning_checks.csv`, run folder only; the counts in the run's metrics)."""
    checks = learning_checks.all_checks(report.records, report.spec.inputs)
    atomic_write_text(report.ctx.out_dir / "learning_checks.csv", checks.to_csv(index=False))
    counts = learning_checks.summary(checks)
    report.metrics |= counts
    return [("", pd.Series(counts, name="checks").to_frame()), ("", checks[~checks["passed"]])]


def findings_md(report: ReportRun) -> Shown:
    """The paper's three findings as PASS/FAIL checks with their numbers (`findings.md` and `findings.csv`, in the
    run folder and, once published, for the runner's report, in `figures/`; `findings_passed` of `findings_checks` in the metrics)."""
    checks = findings_files.write_findings(report.spec.inputs, [report.ctx.out_dir])  # `publish` copies them
    report.written += [report.ctx.out_dir / f"findings.{ext}" for ext in ("md", "csv")]
    tested = checks["passed"].dropna().astype(bool)  # None: not tested (too few languages by design)
    report.metrics |= {"findings_checks": len(tested), "findings_passed": int(tested.sum())}
    return [("The paper's findings on this grid", findings.markdown(checks))]
