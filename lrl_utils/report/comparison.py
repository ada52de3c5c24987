"""Reproduced vs reported, the LLM comparison, and the adapters' parameter counts, from saved results.

* :func:`reproduced_vs_reported`: every cell of the paper's per-language tables (params/reference/, loaded by
  :mod:`lrl_utils.report.reference`) next to the reproduced mean over seeds, the difference and whether it lies within
  the profile's tolerance; a cell without runs is ``not run`` (never 0). The paper's seen / unseen / total
  averages are compared when every language of the group was reproduced.
* :func:`comparison_summary`: per paper table, how many cells were run and how many are within tolerance.
* :func:`load_llm_records` and :func:`llm_comparison_table`: prompted LLMs against the adapted small models.
* :func:`load_adapt_records` and :func:`parameter_table`: trainable parameters of the adapters that were
  actually trained, next to the paper's Table 9.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from lrl_utils.records.results import read_result
from lrl_utils.report.tables import config_label

COMPARISON_COLUMNS = [
    "table",
    "task",
    "model",
    "group",
    "language",
    "config",
    "metric",
    "reported",
    "reproduced",
    "reproduced_std",
    "seeds",
    "difference",
    "tolerance",
    "within_tolerance",
    "status",
    "runs",
]
_GROUPS = ("seen", "unseen", "total")


def _reproduced_cells(records: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count over seeds per (model, language, task, config, metric), with the runs behind it."""
    if records.empty:
        return pd.DataFrame(
            columns=["model", "language", "task", "config", "metric", "mean", "std", "n", "runs"]
        )
    df = records.assign(
        task=records["task"].fillna("").astype(str),
        config=[config_label(s, a) for s, a in zip(records["source"], records["adapter"], strict=True)],
    )
    keys = ["model", "language", "task", "config", "metric"]
    grouped = df.groupby(keys)
    out = grouped["value"].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    out["runs"] = grouped["run"].agg(lambda runs: " ".join(sorted(set(map(str, runs)))))
    return out.reset_index()


def _task_of(reported_task: str) -> str:
    return "" if reported_task == "pppl" else reported_task


def reproduced_vs_reported(
    records: pd.DataFrame,
    reported: pd.DataFrame,
    *,
    f1_tolerance: float,
    pppl_tolerance: float,
    loss_tolerance: float = 0.1,
    registry=None,
) -> pd.DataFrame:
    """One row per reported cell (see module doc); ``reported`` is :func:`reference.reported_results`.

    Values are on the project's scale (F1 in 0-1, PPPL raw, losses in nats). ``tolerance`` is absolute for F1
    and MLM losses and relative for PPPL (``difference`` is then relative too: reproduced / reported - 1). ``status``: ``within tolerance``,
    ``outside tolerance``, ``not run``, or ``incomplete (k/N languages)`` for an average row.
    """
    from lrl_utils.config.params import load_registry

    reg = registry or load_registry()
    cells = _reproduced_cells(records).set_index(["model", "language", "task", "config", "metric"])
    rows = []
    for cell in reported.itertuples(index=False):
        task, is_pppl = _task_of(cell.task), cell.metric == "pppl"
        is_loss = "loss" in cell.metric
        tolerance = pppl_tolerance if is_pppl else loss_tolerance if is_loss else f1_tolerance
        mean = std = np.nan
        seeds, runs, status = 0, "", "not run"
        if cell.group == "language":
            key = (cell.model, cell.language, task, cell.config, cell.metric)
            if key in cells.index:
                hit = cells.loc[key]
                mean, std, seeds, runs = float(hit["mean"]), float(hit["std"]), int(hit["n"]), hit["runs"]
        else:
            group = [
                code
                for code in reported.loc[
                    (reported["table"] == cell.table) & (reported["group"] == "language"), "language"
                ].unique()
                if cell.group == "total"
                or (cell.model in reg.languages[code].seen_by) == (cell.group == "seen")
            ]
            keys = [(cell.model, code, task, cell.config, cell.metric) for code in group]
            present = [k for k in keys if k in cells.index]
            if len(present) == len(keys) and keys:
                mean = float(cells.loc[present, "mean"].mean())
                runs = " ".join(sorted({r for k in present for r in cells.loc[k, "runs"].split()}))
            elif present:
                status = f"incomplete ({len(present)}/{len(keys)} languages)"
        reported_value = float(cell.value_scaled)
        difference = np.nan
        within = None
        if not np.isnan(mean):
            difference = mean / reported_value - 1 if is_pppl else mean - reported_value
            within = bool(abs(difference) <= tolerance)
            status = "within tolerance" if within else "outside tolerance"
        rows.append(
            {
                "table": cell.table,
                "task": cell.task,
                "model": cell.model,
                "group": cell.group,
                "language": cell.language if cell.group == "language" else "",
                "config": cell.config,
                "metric": cell.metric,
                "reported": reported_value,
                "reproduced": mean,
                "reproduced_std": std,
                "seeds": seeds,
                "difference": difference,
                "tolerance": tolerance,
                "within_tolerance": within,
                "status": status,
                "runs": runs,
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def comparison_summary(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per paper table (and a ``all`` row): reported cells, cells run, and cells within tolerance."""
    if comparison.empty:
        return pd.DataFrame(
            columns=["table", "cells", "run", "within_tolerance", "outside_tolerance", "not_run"]
        )
    run = comparison["reproduced"].notna()
    frame = pd.DataFrame(
        {
            "table": comparison["table"],
            "cells": 1,
            "run": run.astype(int),
            "within_tolerance": (comparison["within_tolerance"] == True).astype(int),  # noqa: E712 (None = not run)
            "outside_tolerance": (comparison["within_tolerance"] == False).astype(int),  # noqa: E712
            "not_run": (~run).astype(int),
        }
    )
    out = frame.groupby("table", sort=False).sum().reset_index()
    total = out.drop(columns="table").sum().to_dict()
    return pd.concat([out, pd.DataFrame([{"table": "all", **total}])], ignore_index=True)


def reported_adapter_losses(table8: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 8 (``reference.load_table("table08_adapter_losses")``) in the shape of
    :func:`reference.reported_results`: task ``mlm``, metric ``final_val_loss``, one cell per language."""
    return table8.assign(
        task="mlm", group="language", metric="final_val_loss", value_scaled=table8["value"].astype(float)
    )


def adapter_loss_records(adapt_records: pd.DataFrame) -> pd.DataFrame:
    """The masked-LM adapt runs as tidy records (stage ``adapt``, task ``mlm``, metric ``final_val_loss``: the
    validation loss at the end of training, as the paper's Table 8), to pass to :func:`reproduced_vs_reported`."""
    mlm = adapt_records[(adapt_records["objective"] != "clm") & adapt_records["final_val_loss"].notna()]
    return pd.DataFrame(
        {
            "run": mlm["run"],
            "stage": "adapt",
            "model": mlm["model"],
            "language": mlm["language"],
            "seen": None,
            "source": mlm["source"],
            "adapter": mlm["adapter"],
            "task": "mlm",
            "seed": np.nan,
            "metric": "final_val_loss",
            "value": mlm["final_val_loss"].astype(float),
        }
    )


# -- adapt runs: parameter counts and loss curves ------------------------------------------------------------
def adapt_runs_behind(run_folders: Iterable[str]) -> list[str]:
    """The adapt run folders that evaluation runs read (and adapt runs listed directly), sorted."""
    run_folders = list(run_folders)
    found = {f for f in run_folders if str(f).startswith("adapt/")}
    for folder in run_folders:
        result = read_result(folder)
        if result:
            found.update(
                f for f in (result["spec"].get("adapter_run"), result["spec"].get("fusion_run")) if f
            )
    return sorted(found)


def load_adapt_records(run_folders: Iterable[str]) -> pd.DataFrame:
    """One row per finished adapt run behind ``run_folders``: model, language, source, adapter, config,
    objective, parameter counts, losses, and the folder (its ``tensorboard/`` holds the loss curves)."""
    from lrl_utils.config import paths

    rows = []
    for folder in adapt_runs_behind(run_folders):
        result = read_result(folder)
        if result is None:
            continue
        spec, metrics = result["spec"], result["metrics"]
        rows.append(
            {
                "run": result["run"],
                "folder": folder,
                "tensorboard": str(paths.runs_dir() / folder / "tensorboard"),
                "model": spec["model"],
                "language": spec["language"],
                "source": spec["source"],
                "adapter": spec["adapter"],
                "config": config_label(spec["source"], spec["adapter"]),
                "objective": spec.get("train", {}).get("objective", "mlm"),
                **{
                    k: metrics.get(k)
                    for k in (
                        "adapter_params",
                        "trainable_params",
                        "initial_val_loss",
                        "best_val_loss",
                        "best_step",
                    )
                },
            }
        )
    columns = [
        "run",
        "folder",
        "tensorboard",
        "model",
        "language",
        "source",
        "adapter",
        "config",
        "objective",
    ]
    columns += ["adapter_params", "trainable_params", "initial_val_loss", "best_val_loss", "final_val_loss"]
    columns += ["best_step"]
    return pd.DataFrame(rows, columns=columns)


def parameter_table(adapt_records: pd.DataFrame, reported: pd.DataFrame | None = None) -> pd.DataFrame:
    """Trainable parameters per model and adapter method, from the runs (min-max if they differ between
    languages), next to the paper's count for the full-size model (``reported``: columns model, adapter,
    trainable_params, e.g. the Table 9 reference) where there is one."""
    if adapt_records.empty:
        return pd.DataFrame(
            columns=["model", "adapter", "runs", "trainable_params", "paper_trainable_params"]
        )
    grouped = adapt_records.groupby(["model", "adapter"], sort=True)
    out = grouped["trainable_params"].agg(["min", "max", "count"]).reset_index()
    out["trainable_params"] = [
        f"{int(lo):,}" if lo == hi else f"{int(lo):,}-{int(hi):,}"
        for lo, hi in zip(out["min"], out["max"], strict=True)
    ]
    out = out.rename(columns={"count": "runs"})
    paper = {}
    if reported is not None and not reported.empty:
        paper = {
            (m, a): int(v)
            for m, a, v in zip(
                reported["model"], reported["adapter"], reported["trainable_params"], strict=True
            )
        }
    out["paper_trainable_params"] = [
        f"{paper[(m, a)]:,}" if (m, a) in paper else "–"
        for m, a in zip(out["model"], out["adapter"], strict=True)
    ]
    return out[["model", "adapter", "runs", "trainable_params", "paper_trainable_params"]]


# -- LLM baselines ---------------------------------------------------------------------------------------------
LLM_COLUMNS = ["run", "llm", "language", "seen", "task", "shots", "template", "metric", "value"]


def load_llm_records(run_folders: Iterable[str]) -> pd.DataFrame:
    """The tidy frame of LLM-baseline results: one row per (run, scalar metric)."""
    rows = []
    for folder in run_folders:
        result = read_result(folder)
        if result is None or result.get("stage") != "llm":
            continue
        spec = result["spec"]
        base = {
            "run": result["run"],
            "llm": spec["llm"],
            "language": spec["language"],
            "seen": None,
            "task": spec["task"],
            "shots": int(spec.get("shots", 0)),
            "template": spec.get("template", "default"),
        }
        for metric, value in result["metrics"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({**base, "metric": metric, "value": float(value)})
    return pd.DataFrame(rows, columns=LLM_COLUMNS)


def llm_comparison_table(
    llm_records: pd.DataFrame,
    records: pd.DataFrame,
    *,
    configs: tuple[str, ...] = ("Base", config_label("glotcc", "seq_bn_inv")),
    llm_metric: str = "f1",
) -> pd.DataFrame:
    """The paper's Table 2 for this grid: rows = prompted LLMs (per k-shot) and the small models with the given
    configurations, columns = tasks; each cell the mean F1 over the languages that row was run on (over all
    items: invalid answers count as wrong), with the number of languages and, for LLMs, the invalid-answer rate.
    """
    task_metric = {"tc": "test_macro_f1", "sa": "test_macro_f1", "ner": "test_f1"}
    rows: list[dict] = []
    if not llm_records.empty:
        for (llm, shots), sub in llm_records.groupby(["llm", "shots"], sort=True):
            row: dict = {"system": f"{llm} ({shots}-shot)", "kind": "prompted LLM"}
            for task, by_task in sub.groupby("task"):
                f1 = by_task[by_task["metric"] == llm_metric].groupby("language")["value"].mean()
                invalid = by_task[by_task["metric"] == "invalid_rate"]["value"].mean()
                row |= {f"{task} F1": f1.mean(), f"{task} languages": len(f1), f"{task} invalid": invalid}
            rows.append(row)
    cells = _reproduced_cells(records)
    for model in sorted(cells["model"].unique()) if not cells.empty else ():
        for config in configs:
            row = {"system": f"{model} + {config}" if config != "Base" else f"{model} (task adapter only)"}
            row["kind"] = "adapted small model" if config != "Base" else "small model"
            for task, metric in task_metric.items():
                sel = cells[
                    (cells["model"] == model)
                    & (cells["config"] == config)
                    & (cells["task"] == task)
                    & (cells["metric"] == metric)
                ]
                if not sel.empty:
                    row |= {f"{task} F1": sel["mean"].mean(), f"{task} languages": len(sel)}
            if len(row) > 2:
                rows.append(row)
    columns = ["system", "kind"] + [
        f"{t} {c}" for t in ("tc", "sa", "ner") for c in ("F1", "languages", "invalid")
    ]
    out = pd.DataFrame(rows).reindex(columns=columns)
    return out.dropna(axis=1, how="all")
