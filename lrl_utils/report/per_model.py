"""F1's checks model by model: on each model of a grid of several, and on the paper's own per-language numbers
(`reference.paper_records`) of the models a grid stands for; the extra columns of `findings.md`.

The paper's F1 pools two models. A grid's checks are compared like with like: the demo's tiny XLM-R against the
paper's XLM-R, a grid of both architectures against both of the paper's models. On both models every F1 check
passes (the checks say what the paper found); on XLM-R alone two do not, so a one-model grid is held to what the
paper's model of that architecture showed, next to what the paper reported over both. A grid of several models
also shows each model's checks alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from lrl_utils.report.findings import f1_checks


def paper_counterparts(models: Iterable[str]) -> tuple[str, ...]:
    """The paper's models (`mbert`, `xlmr`) that a grid's `models` stand for: the same model, or the paper's model
    of the same architecture (tiny XLM-R → XLM-R). A model the paper has no counterpart of stands for none."""
    from lrl_utils.config.params import load_registry
    from lrl_utils.report.reference import paper_records

    registry = load_registry().models
    paper = sorted(paper_records()["model"].unique())
    by_architecture = {registry[m].architecture: m for m in paper if m in registry}
    found = {
        m if m in paper else by_architecture.get(registry[m].architecture) for m in models if m in registry
    }
    return tuple(m for m in paper if m in found)


def paper_label(models: Iterable[str]) -> str:
    """`mBERT + XLM-R`: the paper's models by their display names."""
    return " + ".join(_display(m) for m in models)


def paper_verdicts(models: Iterable[str] | None = None) -> dict[str, bool]:
    """F1's checks on the paper's own per-language numbers (`reference.paper_records`), of `models` (the paper's
    model names; all by default): check → passed. On both models they all pass: the checks say what the paper
    found. On XLM-R alone two fail (its Seq_bn_inv raises seen-language PPPL; its unseen gain's interval, over 9
    pairs, reaches below 0). F2 and F3 need the LLM scores and data sizes per run."""
    from lrl_utils.report.reference import paper_records

    records = paper_records()
    if models is not None:
        records = records[records["model"].isin(list(models))]
    return {r["check"]: bool(r["passed"]) for r in f1_checks(records)}


def paper_columns(grid_models: Iterable[str]) -> dict[str, dict[str, bool]]:
    """The "on the paper's numbers" columns of `findings.md` for a grid of `grid_models`: each of the paper's
    models the grid stands for, alone (like with like), then all of the paper's models together (what the paper
    reported). Column label → `paper_verdicts`."""
    from lrl_utils.report.reference import paper_records

    everything = tuple(sorted(paper_records()["model"].unique()))
    columns = {
        f"on the paper's {paper_label([m])}": paper_verdicts([m])
        for m in paper_counterparts(grid_models)
        if (m,) != everything
    }
    columns[f"on the paper's {paper_label(everything)}"] = paper_verdicts(everything)
    return columns


def _display(model: str) -> str:
    from lrl_utils.config.params import load_registry

    registry = load_registry().models
    return registry[model].display if model in registry else model


def grid_columns(records: pd.DataFrame, paths: set[str] | None = None) -> dict[str, dict[str, bool]]:
    """For a grid of several models: F1's checks on each model's records alone (`tiny mBERT alone` → check →
    passed); nothing for a grid of one model (its checks are the pooled ones)."""
    evaluated = records[records["stage"].isin(["pppl", "finetune"])] if len(records) else records
    models = sorted(evaluated["model"].unique()) if len(evaluated) else []
    if len(models) < 2:
        return {}
    return {
        f"on {_display(m)} alone": {
            r["check"]: r["passed"] for r in f1_checks(records[records["model"] == m], paths)
        }
        for m in models
    }


def columns(records: pd.DataFrame, paths: set[str] | None = None) -> dict[str, dict[str, bool]]:
    """All extra columns of `findings.md`, in order: the grid's models alone (`grid_columns`), then the paper's
    (`paper_columns`)."""
    evaluated = records[records["stage"].isin(["pppl", "finetune"])] if len(records) else records
    models = sorted(evaluated["model"].unique()) if len(evaluated) else []
    return grid_columns(records, paths) | paper_columns(models)
