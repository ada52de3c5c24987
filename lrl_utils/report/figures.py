"""Figures of the paper (PNG + PDF, readable at paper size), built only from saved results.

* :func:`plot_metric_bars`: grouped bars of a metric per language (x) and configuration (hue), unseen languages
  marked (paper Figs. 7-12; PPPL on a log axis);
* :func:`plot_correlation`: a metric against pre-training data size (or against another metric) before and after
  adaptation, with Pearson and Spearman coefficients (paper Figs. 2-6; see :mod:`lrl_utils.report.correlations`);
* :func:`plot_loss_curves`: training and validation MLM loss of the language adapters, read from their
  TensorBoard logs;
* :func:`save_figure`: ``<stem>.png``, ``<stem>.pdf`` and the ``<stem>.runs.json`` sidecar, atomically.

Figures are built without pyplot (no backend, no window, nothing to close).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import LogFormatter

from lrl_utils.records.results import atomic_output
from lrl_utils.report.tables import (
    CONFIG_COLORS,
    STATS,
    SUMMARY_ROWS,
    UNSEEN_MARK,
    metric_label,
    results_table,
    with_suffix,
    write_sidecar,
)

#: Width of a figure spanning both columns of an ACL page, and of a single column, in inches.
PAGE_WIDTH, COLUMN_WIDTH = 6.3, 3.1
_BAR_STYLE: dict = {"edgecolor": "black", "linewidth": 0.3, "error_kw": {"elinewidth": 0.6, "capsize": 1.2}}


def plot_metric_bars(
    df: pd.DataFrame,
    *,
    stage: str,
    metric: str,
    model: str,
    task: str = "",
    log_y: bool = False,
    title: str = "",
) -> Figure:
    """Grouped bars (x = language, hue = configuration) with std-over-seeds error bars where n > 1.

    Unseen languages come last, get a † and a red tick label, and hatched bars; missing cells draw no bar.
    The figure is built without pyplot (no backend, no window, nothing to close); pass
    :func:`selected_runs` with the same arguments to :func:`save_figure`.
    """
    table = results_table(df, stage=stage, metric=metric, model=model, task=task)
    languages = [row for row in table.index if row not in SUMMARY_ROWS]
    unseen = set(table.attrs["unseen"])
    means, stds, ns = (table.xs(stat, axis=1, level="stat").loc[languages] for stat in STATS)
    configs = list(means.columns)

    fig = Figure(figsize=(PAGE_WIDTH, 2.8), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(languages))
    width = 0.8 / len(configs)
    palette = iter(["#e377c2", "#17becf", "#bcbd22", "#8c564b", "#d62728"] * 4)
    for i, config in enumerate(configs):
        height = means[config].to_numpy(float)
        err = np.where(ns[config].to_numpy() > 1, stds[config].to_numpy(float), np.nan)
        yerr = np.vstack([np.minimum(err, 0.9 * height), err]) if log_y else err
        color = CONFIG_COLORS.get(config) or next(palette)
        bars = ax.bar(
            x - 0.4 + width * (i + 0.5), height, width, yerr=yerr, label=config, color=color, **_BAR_STYLE
        )
        for bar, language in zip(bars, languages, strict=True):
            if language in unseen:
                bar.set_hatch("///")
    tick_labels = [f"{lang}{UNSEEN_MARK}" if lang in unseen else lang for lang in languages]
    ax.set_xticks(x, tick_labels, fontsize=8 if len(languages) <= 20 else 7)
    for tick, language in zip(ax.get_xticklabels(), languages, strict=True):
        if language in unseen:
            tick.set_color("#b2182b")
    n_seen = len(languages) - len(unseen)
    if unseen and n_seen:
        ax.axvline(n_seen - 0.5, color="grey", linestyle="--", linewidth=0.7)
    if log_y:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_xlim(-0.5, len(languages) - 0.5)
    ax.set_ylabel(metric_label(task, metric) + (" (log)" if log_y else ""), fontsize=8)
    ax.tick_params(axis="y", which="both", labelsize=7)
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    ax.set_axisbelow(True)
    handles, _ = ax.get_legend_handles_labels()
    if unseen:
        handles.append(
            Patch(facecolor="white", edgecolor="black", hatch="///", label=f"{UNSEEN_MARK} unseen")
        )
    ncols = min(len(handles), 6)
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def save_figure(fig: Figure, path_stem: Path, runs: Sequence[str]) -> list[Path]:
    """Write ``<stem>.png`` (200 dpi), ``<stem>.pdf`` and ``<stem>.runs.json``, atomically; return the paths
    (`ReportRun.publish` copies them into ``figures/``)."""
    path_stem = Path(path_stem)
    written = [
        atomic_output(with_suffix(path_stem, f".{fmt}"), partial(fig.savefig, format=fmt, dpi=200))
        for fmt in ("png", "pdf")
    ]
    written.append(write_sidecar(path_stem, runs, written, title=fig.get_suptitle()))
    return written


_PHASE_STYLE = {  # phase → (label, colour, marker)
    "before": ("before adaptation (base)", "#2ca02c", "o"),
    "after": ("after adaptation (GlotCC)", "#d95f02", "^"),
    "after_cn": ("after adaptation (ConceptNet)", "#1f78b4", "s"),
}


def _coefficients_text(stats: dict[str, float], n: int) -> str:
    if any(np.isnan(stats[k]) for k in ("pearson_r", "spearman_r")):
        return f"n={n}: too few points for a coefficient"
    return (
        f"Pearson r={stats['pearson_r']:.2f} (p={stats['pearson_p']:.2g}), "
        f"Spearman ρ={stats['spearman_r']:.2f} (p={stats['spearman_p']:.2g}), n={n}"
    )


def plot_correlation(
    phases: dict[str, pd.DataFrame], *, title: str = "", log_x: bool = True, log_y: bool = False
) -> Figure:
    """Scatter of one analysis (``phases``: phase → :func:`correlations.correlation_points` frame), one colour
    per phase, each language written next to its point, and a least-squares line in log-log (or the chosen)
    space; the legend gives each phase's Pearson and Spearman coefficients with p-values."""
    from lrl_utils.report.correlations import axis_label, correlate

    fig = Figure(figsize=(COLUMN_WIDTH + 0.6, 3.0), layout="constrained")
    ax = fig.add_subplot()
    x_labels: list[str] = []
    y_labels: list[str] = []
    for phase, points in phases.items():
        if points.empty:
            continue
        label, color, marker = _PHASE_STYLE.get(phase, (phase, "#7f7f7f", "D"))
        text = _coefficients_text(correlate(points), len(points))
        x, y = points["x"].to_numpy(float), points["y"].to_numpy(float)
        ax.scatter(
            x, y, s=18, color=color, marker=marker, edgecolor="black", linewidth=0.3, label=f"{label}\n{text}"
        )
        for language, xi, yi in zip(points["language"], x, y, strict=True):
            ax.annotate(language, (xi, yi), xytext=(2, 2), textcoords="offset points", fontsize=5.5)
        fx, fy = (np.log10(v) if log else v for v, log in ((x, log_x), (y, log_y)))
        usable = np.isfinite(fx) & np.isfinite(fy)
        if usable.sum() >= 3 and np.ptp(fx[usable]) > 0:
            slope, intercept = np.polyfit(fx[usable], fy[usable], 1)
            grid = np.linspace(fx[usable].min(), fx[usable].max(), 50)
            line = slope * grid + intercept
            ax.plot(10**grid if log_x else grid, 10**line if log_y else line, color=color, linewidth=0.8)
        x_labels.append(points.attrs.get("x_label", "x"))
        y_labels.append(points.attrs.get("y_label", "y"))
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    # wrapped to the axes (3.7 in wide, 3 in high at 6.5 pt) so that no label runs off the figure
    ax.set_xlabel(textwrap.fill(axis_label(x_labels), 60), fontsize=6.5)
    ax.set_ylabel(textwrap.fill(axis_label(y_labels), 45), fontsize=6.5)
    ax.tick_params(which="both", labelsize=6)
    ax.margins(x=0.08)  # room for the language names next to the outermost points
    ax.grid(linewidth=0.3, alpha=0.6)
    if ax.collections:
        fig.legend(loc="outside lower center", fontsize=5.5, frameon=False)
    if title:
        fig.suptitle(textwrap.fill(title, 52), fontsize=8)  # 52 characters fit the 3.7-inch figure
    return fig


def read_loss_curves(log_dir: str | Path) -> pd.DataFrame:
    """The ``train/loss`` and ``val/loss`` scalars of one TensorBoard log folder: columns step, split, loss."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    rows = [
        {"step": event.step, "split": tag.split("/")[0], "loss": event.value}
        for tag in ("train/loss", "val/loss")
        if tag in acc.Tags().get("scalars", [])
        for event in acc.Scalars(tag)
    ]
    return pd.DataFrame(rows, columns=["step", "split", "loss"])


def plot_loss_curves(curves: pd.DataFrame, *, title: str = "") -> Figure:
    """One panel per language: training loss (smoothed) and validation loss of each adapter over steps.

    ``curves``: columns language, config, step, split (``train`` / ``val``), loss (e.g. :func:`read_loss_curves`
    of each adapt run, with its language and configuration added).
    """
    languages = sorted(curves["language"].unique())
    ncols = min(len(languages), 3)
    nrows = -(-len(languages) // ncols)
    fig = Figure(figsize=(PAGE_WIDTH, 1.9 * nrows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, language in zip(axes, languages, strict=False):
        sub = curves[curves["language"] == language]
        for config, group in sub.groupby("config", sort=False):
            color = CONFIG_COLORS.get(str(config), "#7f7f7f")
            train = group[group["split"] == "train"].sort_values("step")
            val = group[group["split"] == "val"].sort_values("step")
            if not train.empty:
                smooth = train["loss"].rolling(10, min_periods=1).mean()
                ax.plot(train["step"], smooth, color=color, linewidth=0.8, label=f"{config} train")
            if not val.empty:
                ax.plot(
                    val["step"],
                    val["loss"],
                    color=color,
                    linewidth=0.8,
                    linestyle="--",
                    marker="o",
                    markersize=2,
                    label=f"{config} val",
                )
        ax.set_title(language, fontsize=7)
        ax.set_xlabel("step", fontsize=6.5)
        ax.set_ylabel("MLM loss", fontsize=6.5)
        ax.tick_params(labelsize=6)
        ax.grid(linewidth=0.3, alpha=0.6)
    for ax in axes[len(languages) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(len(handles), 4), fontsize=6, frameon=False
        )
    if title:
        fig.suptitle(title, fontsize=8)
    return fig
