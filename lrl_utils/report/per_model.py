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


def _registry() -> dict:
    from lrl_utils.config.params import load_registry

    return load_registry().models


def _paper_records(records: pd.DataFrame | None) -> pd.DataFrame:
    from lrl_utils.report.reference import paper_records

    return paper_records() if records is None else records


def _display(model: str, registry: dict) -> str:
    return registry[model].display if model in registry else model


def paper_counterparts(
    models: Iterable[str], paper: pd.DataFrame | None = None, registry: dict | None = None
) -> tuple[str, ...]:
    """The paper's models (`mbert`, `xlmr`) that a grid's `models` stand for: the same model, or the paper's model
    of the same architecture (tiny XLM-R → XLM-R). A model the paper has no counterpart of stands for none.
    `paper` (`reference.paper_records`) and `registry` (the model registry) are read when not given."""
    registry = _registry() if registry is None else registry
    names = sorted(_paper_records(paper)["model"].unique())
    by_architecture = {registry[m].architecture: m for m in names if m in registry}
    found = {
        m if m in names else by_architecture.get(registry[m].architecture) for m in models if m in registry
    }
    return tuple(m for m in names if m in found)


def paper_verdicts(models: Iterable[str] | None = None, paper: pd.DataFrame | None = None) -> dict[str, bool]:
    """F1's checks on the paper's own per-language numbers (`reference.paper_records`, or `paper`), of `models`
    (the paper's model names; all by default): check → passed. On both models they all pass: the checks say what
    the paper found. On XLM-R alone two fail (its Seq_bn_inv raises seen-language PPPL; its unseen gain's
    interval, over 9 pairs, reaches below 0). F2 and F3 need the LLM scores and data sizes per run."""
    records = _paper_records(paper)
    if models is not None:
        records = records[records["model"].isin(list(models))]
    return {r["check"]: bool(r["passed"]) for r in f1_checks(records)}


def paper_columns(grid_models: Iterable[str], registry: dict | None = None) -> dict[str, dict[str, bool]]:
    """The "on the paper's numbers" columns of `findings.md` for a grid of `grid_models`: each of the paper's
    models the grid stands for, alone (like with like), then all of the paper's models together (what the paper
    reported). Column label → `paper_verdicts`."""
    registry = _registry() if registry is None else registry
    paper = _paper_records(None)
    everything = tuple(sorted(paper["model"].unique()))

    def label(models: Iterable[str]) -> str:
        return "on the paper's " + " + ".join(_display(m, registry) for m in models)

    columns = {
        label([m]): paper_verdicts([m], paper)
        for m in paper_counterparts(grid_models, paper, registry)
        if (m,) != everything
    }
    columns[label(everything)] = paper_verdicts(everything, paper)
    return columns


def _evaluated_models(records: pd.DataFrame) -> list[str]:
    """The models with PPPL or fine-tuning records."""
    if not len(records):
        return []
    return sorted(records.loc[records["stage"].isin(["pppl", "finetune"]), "model"].unique())


def grid_columns(
    records: pd.DataFrame, paths: set[str] | None = None, registry: dict | None = None
) -> dict[str, dict[str, bool]]:
    """For a grid of several models: F1's checks on each model's records alone (`tiny mBERT alone` → check →
    passed); nothing for a grid of one model (its checks are the pooled ones)."""
    models = _evaluated_models(records)
    if len(models) < 2:
        return {}
    registry = _registry() if registry is None else registry
    return {
        f"on {_display(m, registry)} alone": {
            r["check"]: r["passed"] for r in f1_checks(records[records["model"] == m], paths)
        }
        for m in models
    }


def columns(records: pd.DataFrame, paths: set[str] | None = None) -> dict[str, dict[str, bool]]:
    """All extra columns of `findings.md`, in order: the grid's models alone (`grid_columns`), then the paper's
    (`paper_columns`)."""
    registry = _registry()
    return grid_columns(records, paths, registry) | paper_columns(_evaluated_models(records), registry)
