"""The report's figures (`kind: figures`), one producer per catalogue entry (`report/catalogue.py`).

Each producer writes its figures through the `ReportRun` (PNG + PDF in the run folder and `figures/`, with
sidecars) and returns what the notebook shows: (caption, figure or text) pairs.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from lrl_utils.report import comparison, correlations, figures, tables
from lrl_utils.report.outputs import ReportRun

Shown = list[tuple[str, object]]


def metric_figures(report: ReportRun) -> Shown:
    """Grouped bars per language and configuration for each task and model (the paper's Figs. 7-12)."""
    shown, records = [], report.records
    for model, view, where in report.metric_views():
        fig = figures.plot_metric_bars(records, **where, log_y=view.log_y, title=f"{view.title}; {model}")
        if view.chance is not None:
            fig.axes[0].axhline(view.chance, ls="--", c="grey", lw=0.8, label="chance")
        report.figure(fig, f"fig_{view.name}_{model}", tables.selected_runs(records, **where))
        shown.append(("", fig))
    return shown


def correlation_title(analysis: str, model: str, phases: Iterable[str] = ("before", "after")) -> str:
    """What a correlation figure shows, in words (its y against its x, and the phases drawn): `tc_vs_size` ->
    "tiny-xlmr: TC F1 against the language's data (GB), before and after adaptation (means over seeds)";
    `pppl_vs_tc` with the base model's points only -> "...: TC F1 against PPPL, before adaptation ..."."""
    first, _, second = analysis.partition("_vs_")
    y, x = (first, second) if second == "size" else (second, first)  # pppl_vs_tc: TC F1 (y) against PPPL (x)
    name = {"pppl": "PPPL", "size": "the language's data (GB)"}
    what = f"{name.get(y, y.upper() + ' F1')} against {name.get(x, x.upper() + ' F1')}"
    drawn = set(phases)
    after = any(p.startswith("after") for p in drawn)
    when = "before and after" if "before" in drawn and after else "after" if after else "before"
    return f"{model}: {what}, {when} adaptation (means over seeds)"


def correlation_figures(report: ReportRun) -> Shown:
    """PPPL and task F1 against data size before and after adaptation, and PPPL against F1 (Figs. 2-6)."""
    shown, records = [], report.records
    sizes = correlations.data_sizes(report.spec.inputs)
    tasks = sorted(set(records["task"].dropna()) & set(correlations.TASK_METRICS))
    for model in report.models:
        for analysis, phases in correlations.analyses(tasks).items():
            points = {
                phase: correlations.correlation_points(
                    records, sizes, model=model, analysis=analysis, phase=phase
                )
                for phase in phases
            }
            points = {phase: p for phase, p in points.items() if not p.empty}
            if not points:
                continue
            name = f"fig_cor_{analysis}_{model}"
            languages = sorted({lang for p in points.values() for lang in p["language"]})
            most = max(len(p) for p in points.values())
            if most < correlations.MIN_POINTS:
                # one or two seen languages make a dot, not a correlation (the demo runs SA and NER on one)
                report.discard(name)
                shown.append(
                    (
                        "",
                        f"{correlation_title(analysis, model)}: no figure, {most} seen language(s) "
                        f"({', '.join(languages)}); a correlation needs at least {correlations.MIN_POINTS}",
                    )
                )
                continue
            fig = figures.plot_correlation(
                points,
                title=correlation_title(analysis, model, points),
                log_x=True,  # data size, or PPPL
                log_y=analysis == "pppl_vs_size",
            )
            mine = records[(records["model"] == model) & records["language"].isin(languages)]
            report.figure(fig, name, sorted(mine["run"].unique()))
            shown.append(("", fig))
    return shown


def loss_figures(report: ReportRun) -> Shown:
    """The language adapters' training and validation loss curves, read from their TensorBoard logs."""
    shown = []
    adapts = comparison.load_adapt_records(report.spec.inputs)
    for (model, source), group in adapts.groupby(["model", "source"]):
        curves = []
        for row in group.itertuples():
            curve = figures.read_loss_curves(row.tensorboard)
            curves.append(curve.assign(language=row.language, config=row.config, run=row.run))
        curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
        if curves.empty:
            shown.append(("", f"{model} {source}: no TensorBoard logs"))
            continue
        fig = figures.plot_loss_curves(curves, title=f"Language-adapter training; {model}; {source}")
        report.figure(fig, f"fig_loss_{model}_{source}", sorted(group["run"]))
        shown.append(("", fig))
    return shown
