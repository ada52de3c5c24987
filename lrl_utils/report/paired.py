"""Paired comparisons behind the findings' checks (`report.findings`): per (task, model, language, seed) the
difference between a configuration and the base model, their mean with a t interval, configurations compared on
the pairs they share, and unseen against seen languages task by task."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

BASE = ("none", "none")
TASK_METRIC = {"tc": "test_macro_f1", "sa": "test_macro_f1", "ner": "test_f1"}


def paired_interval(deltas: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its t-interval (lower, upper); a single difference has no interval."""
    d = np.asarray(list(deltas), dtype=float)
    mean = float(d.mean()) if len(d) else math.nan
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def _scores(records: pd.DataFrame, task: str) -> pd.DataFrame:
    """Test scores of one task: model, language, seen, source, adapter, seed, value."""
    metric = TASK_METRIC[task]
    rows = records[
        (records["stage"] == "finetune") & (records["task"] == task) & (records["metric"] == metric)
    ]
    return rows[["model", "language", "seen", "source", "adapter", "seed", "value"]]


def task_deltas(records: pd.DataFrame, source: str, adapter: str) -> pd.DataFrame:
    """Paired differences config − base over (task, model, language, seed): the columns of `_scores` + task."""
    out = []
    for task in TASK_METRIC:
        scores = _scores(records, task)
        keys = ["model", "language", "seen", "seed"]
        base = scores[(scores["source"] == BASE[0]) & (scores["adapter"] == BASE[1])].set_index(keys)["value"]
        config = scores[(scores["source"] == source) & (scores["adapter"] == adapter)].set_index(keys)[
            "value"
        ]
        both = pd.concat({"base": base, "config": config}, axis=1).dropna().reset_index()
        both["delta"], both["task"] = both["config"] - both["base"], task
        out.append(both)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


PAIR = ["task", "model", "language", "seed"]


def matched_gains(deltas: dict[str, pd.DataFrame]) -> dict[str, tuple[float, int]]:
    """Mean unseen-language gain of each configuration on the (task, model, language, seed) pairs that every
    configuration has, and their number: configurations are compared on the same tasks and languages, not on
    whatever each was run on (a TC-only configuration against a TC + SA + NER mean)."""
    unseen = {
        k: d[~d["seen"]].set_index(PAIR)["delta"] for k, d in deltas.items() if len(d) and (~d["seen"]).any()
    }
    if not unseen:
        return {}
    common = pd.concat(unseen, axis=1).dropna()
    return {k: (float(common[k].mean()), len(common)) for k in unseen} if len(common) else {}


def task_gap(unseen: pd.DataFrame, seen: pd.DataFrame) -> tuple[float, str]:
    """Mean over tasks of (mean unseen gain − mean seen gain) within the task, and the per-task listing: the
    seen and unseen languages may run different task mixes, and tasks differ in how much any adapter moves them."""
    gaps, parts = [], []
    for task in TASK_METRIC:
        u, s = unseen.loc[unseen["task"] == task, "delta"], seen.loc[seen["task"] == task, "delta"]
        if len(u) and len(s):
            gaps.append(float(u.mean() - s.mean()))
            parts.append(f"{task}: unseen {u.mean():+.3f} ({len(u)}), seen {s.mean():+.3f} ({len(s)})")
    return (float(np.mean(gaps)) if gaps else math.nan), "; ".join(parts)
