"""Correlation analyses of the paper (its §5 and Tables 12, 14, 17, 20, 23), rebuilt from saved results.

Three analyses per model, each with a *before* (the base model) and an *after* (an adapted model) phase:

* ``pppl_vs_size``: FLORES pseudo-perplexity against pre-training data size. Before: the base model's PPPL
  against its pre-training size; after: the Glot Seq_bn PPPL against pre-training + GlotCC size (paper Fig. 2).
* ``<task>_vs_size`` (``tc``, ``sa``, ``ner``): task F1 against data size. Before: the base model; after: Glot
  Seq_bn_inv against pre-training + GlotCC size, and CN Seq_bn_inv against pre-training + ConceptNet size
  (phase ``after_cn``; paper Figs. 4-6).
* ``pppl_vs_<task>``: PPPL against task F1, base and Glot Seq_bn (paper Table 14).

Sizes are in GB everywhere: the registry's Wikipedia (mBERT) or CC100 (XLM-R) sizes, GlotCC and ConceptNet MB
divided by 1024 (the original added ConceptNet MB to GB and swapped the before/after labels: not here). A tiny
demo model's pre-training size is what its ``base_model`` run read of each language. Languages the model did
not see are left out before the coefficients are computed (``include_unseen=True`` keeps them). Coefficients
come from :func:`scipy.stats.pearsonr` and :func:`scipy.stats.spearmanr`; with fewer than 3 points they are NaN.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from lrl_utils.records.results import read_result
from lrl_utils.report.tables import config_label

#: The pre-training size proxy of each architecture (SPEC §7.3): Wikipedia for mBERT, CC100 for XLM-R.
PRETRAINING_PROXY = {"bert": ("wiki_gb", "Wikipedia"), "xlm-roberta": ("cc100_gb", "CC100")}
TASK_METRICS = {"tc": "test_macro_f1", "sa": "test_macro_f1", "ner": "test_f1"}
#: a correlation over fewer languages says nothing: no figure is drawn and no check is tested below it
MIN_POINTS = 4
#: analysis → phase → (x: what, y: (stage, task, metric, config)); x is a size column or ("metric", ...).
SIZE_COLUMNS = {"none": "pretrain_gb", "glotcc": "glotcc_gb", "conceptnet": "conceptnet_gb"}
CORRELATION_COLUMNS = [
    "analysis",
    "model",
    "phase",
    "x",
    "y",
    "n",
    "languages",
    "pearson_r",
    "pearson_p",
    "spearman_r",
    "spearman_p",
]


def _tiny_pretraining_gb(base_run: str) -> dict[str, float]:
    """Per language: GB of train text a tiny model's ``base_model`` run read (the share of each corpus)."""
    result = read_result(base_run)
    if result is None:
        return {}
    spec = result["spec"]
    shares = spec.get("shares") or [1.0] * len(spec["corpora"])
    sizes: dict[str, float] = {}
    for corpus, share in zip(spec["corpora"], shares, strict=True):
        pre = read_result(corpus)
        if pre is not None and "train_mb" in pre["metrics"]:
            language = pre["spec"]["language"]
            sizes[language] = sizes.get(language, 0.0) + share * pre["metrics"]["train_mb"] / 1e3
    return sizes


def data_sizes(run_folders: Iterable[str], registry=None) -> pd.DataFrame:
    """Sizes behind the evaluation runs: one row per (model, language) with ``pretrain_gb``, ``glotcc_gb``,
    ``conceptnet_gb`` and ``proxy`` (the name of the pre-training size used).

    Registry languages use the paper's statistics (params/languages.yaml); a tiny demo model uses what its
    ``base_model`` run read, and the adaptation sizes of its adapt runs' training splits.
    """
    from lrl_utils.config.params import load_registry

    reg = registry or load_registry()
    rows: dict[tuple[str, str], dict] = {}
    tiny_cache: dict[str, dict[str, float]] = {}
    for folder in run_folders:
        result = read_result(folder)
        if result is None or result["stage"] not in ("pppl", "finetune"):
            continue
        spec = result["spec"]
        model, language = spec["model"], spec["language"]
        row = rows.setdefault((model, language), {"model": model, "language": language})
        lang = reg.languages.get(language)
        arch = reg.models[model].architecture if model in reg.models else ""
        column, proxy = PRETRAINING_PROXY.get(arch, ("", ""))
        ref = str(spec.get("model_ref", ""))
        if ref.startswith("base_model/"):
            sizes = tiny_cache.setdefault(ref, _tiny_pretraining_gb(ref))
            row["pretrain_gb"], row["proxy"] = sizes.get(language, 0.0), "pre-training"
        elif lang is not None and column and getattr(lang, column, None) is not None:
            row["pretrain_gb"], row["proxy"] = float(getattr(lang, column)), proxy
        adapt_folder = spec.get("adapter_run")
        source = spec.get("source")
        if source in ("glotcc", "conceptnet") and f"{source}_gb" not in row:
            registry_mb = getattr(lang, f"{source}_mb", None) if lang is not None else None
            if registry_mb is not None and not ref.startswith("base_model/"):
                row[f"{source}_gb"] = float(registry_mb) / 1024
            elif adapt_folder and (adapt := read_result(adapt_folder)) is not None:
                pre = read_result(adapt["spec"]["corpus"])
                if pre is not None and "train_mb" in pre["metrics"]:
                    row[f"{source}_gb"] = pre["metrics"]["train_mb"] / 1e3
    columns = ["model", "language", "proxy", "pretrain_gb", "glotcc_gb", "conceptnet_gb"]
    return pd.DataFrame(list(rows.values())).reindex(columns=columns)


def _metric(records: pd.DataFrame, model: str, stage: str, task: str, config: str) -> pd.Series:
    """Mean over seeds of one configuration's metric, per language."""
    metric = "pppl" if stage == "pppl" else TASK_METRICS[task]
    tasks = records["task"].fillna("").astype(str)
    sel = records[
        (records["model"] == model)
        & (records["stage"] == stage)
        & (records["metric"] == metric)
        & (tasks == ("" if stage == "pppl" else task))
    ]
    labels = [config_label(s, a) for s, a in zip(sel["source"], sel["adapter"], strict=True)]
    sel = sel[np.array(labels, dtype=object) == config] if len(sel) else sel
    return sel.groupby("language")["value"].mean()


def _size(sizes: pd.DataFrame, model: str, parts: tuple[str, ...]) -> pd.Series:
    rows = sizes[sizes["model"] == model].set_index("language")
    return rows[[SIZE_COLUMNS[p] for p in parts]].sum(axis=1, min_count=len(parts))


def analyses(tasks: Iterable[str]) -> dict[str, dict[str, tuple]]:
    """The analyses and phases: {analysis: {phase: (x, y)}} with x and y each a size (parts) or a metric."""
    glot_seq_bn, glot_inv = config_label("glotcc", "seq_bn"), config_label("glotcc", "seq_bn_inv")
    out: dict[str, dict[str, tuple]] = {
        "pppl_vs_size": {
            "before": (("size", ("none",)), ("pppl", "", "Base")),
            "after": (("size", ("none", "glotcc")), ("pppl", "", glot_seq_bn)),
        }
    }
    for task in tasks:
        out[f"{task}_vs_size"] = {
            "before": (("size", ("none",)), ("finetune", task, "Base")),
            "after": (("size", ("none", "glotcc")), ("finetune", task, glot_inv)),
            "after_cn": (
                ("size", ("none", "conceptnet")),
                ("finetune", task, config_label("conceptnet", "seq_bn_inv")),
            ),
        }
        out[f"pppl_vs_{task}"] = {
            "before": (("metric", ("pppl", "", "Base")), ("finetune", task, "Base")),
            "after": (("metric", ("pppl", "", glot_seq_bn)), ("finetune", task, glot_seq_bn)),
        }
    return out


def _label(kind: str, what: tuple, proxy: str) -> str:
    if kind == "size":
        names = {"none": proxy or "pre-training", "glotcc": "GlotCC", "conceptnet": "ConceptNet"}
        return " + ".join(names[p] for p in what) + " GB"
    stage, task, config = what
    return f"{config} {'PPPL' if stage == 'pppl' else task.upper() + ' F1'}"


def axis_label(labels: Iterable[str]) -> str:
    """One axis label for the phases' labels, their common ending said once: ["Base TC F1", "Glot Seq_bn_inv TC
    F1"] -> "TC F1: Base / Glot Seq_bn_inv"; ["CC100 GB", "CC100 + GlotCC GB"] -> "the language's data in GB:
    CC100 / CC100 + GlotCC"."""
    labels = list(dict.fromkeys(labels))
    if len(labels) < 2:
        return labels[0] if labels else ""
    words = [label.split() for label in labels]
    common = 0
    while all(len(w) > common + 1 for w in words) and len({tuple(w[-common - 1 :]) for w in words}) == 1:
        common += 1
    if not common:
        return " / ".join(labels)
    ending = " ".join(words[0][-common:])
    heads = " / ".join(" ".join(w[:-common]) for w in words)
    unit = "the language's data in GB" if ending == "GB" else ending
    return f"{unit}: {heads}"


def correlation_points(
    records: pd.DataFrame,
    sizes: pd.DataFrame,
    *,
    model: str,
    analysis: str,
    phase: str,
    include_unseen: bool = False,
) -> pd.DataFrame:
    """The points of one analysis phase: language, x, y, seen (languages lacking x or y are left out);
    ``attrs`` holds the axis labels."""
    (x_kind, x_what), (stage, task, config) = analyses(TASK_METRICS)[analysis][phase]
    model_sizes = sizes[sizes["model"] == model]
    proxy = str(model_sizes["proxy"].dropna().iloc[0]) if model_sizes["proxy"].notna().any() else ""
    y = _metric(records, model, stage, task, config)
    x = _size(sizes, model, x_what) if x_kind == "size" else _metric(records, model, *x_what)
    seen = records[records["model"] == model].groupby("language")["seen"].first()
    points = pd.DataFrame({"x": x, "y": y}).dropna()
    points["seen"] = seen.reindex(points.index).fillna(False).astype(bool)
    if not include_unseen:
        points = points[points["seen"]]
    points.index.name = "language"
    points = points.reset_index()
    points.attrs = {
        "x_label": _label(x_kind, x_what, proxy),
        "y_label": _label("metric", (stage, task, config), ""),
    }
    return points


def correlate(points: pd.DataFrame) -> dict[str, float]:
    """Pearson and Spearman coefficients with p-values (NaN with fewer than 3 points or a constant axis)."""
    from scipy import stats

    nan = {"pearson_r": np.nan, "pearson_p": np.nan, "spearman_r": np.nan, "spearman_p": np.nan}
    if len(points) < 3 or points["x"].nunique() < 2 or points["y"].nunique() < 2:
        return nan
    pearson = stats.pearsonr(points["x"], points["y"])
    spearman = stats.spearmanr(points["x"], points["y"])
    return {
        "pearson_r": float(pearson.statistic),
        "pearson_p": float(pearson.pvalue),
        "spearman_r": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
    }


def correlation_table(
    records: pd.DataFrame, sizes: pd.DataFrame, *, include_unseen: bool = False
) -> pd.DataFrame:
    """Every analysis × phase × model that has points: the tidy table of coefficients."""
    tasks = sorted(set(records["task"].dropna().astype(str)) & set(TASK_METRICS))
    rows = []
    for model in sorted(records["model"].unique()):
        for analysis, phases in analyses(tasks).items():
            for phase in phases:
                points = correlation_points(
                    records, sizes, model=model, analysis=analysis, phase=phase, include_unseen=include_unseen
                )
                if points.empty:
                    continue
                rows.append(
                    {
                        "analysis": analysis,
                        "model": model,
                        "phase": phase,
                        "x": points.attrs["x_label"],
                        "y": points.attrs["y_label"],
                        "n": len(points),
                        "languages": " ".join(points["language"]),
                    }
                    | correlate(points)
                )
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
