"""The preprocess stage (`run(ctx)`, called by `notebooks/01_preprocess.py`): one language's ConceptNet sentences or
GlotCC documents, read, checked and split 80/10/10 into the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lrl_utils.config.specs import PreprocessSpec
from lrl_utils.data import conceptnet, glotcc
from lrl_utils.records.context import RunContext


def split_source(spec: PreprocessSpec, location: Path, out_dir: Path) -> dict[str, Any]:
    """Read the spec's source at `location` and write the three split files into `out_dir` (all or none);
    returns the source's statistics (`splits`, `malformed`, `bad_fraction`, `bad_examples`, ...). The dry-run
    check calls it too, into a temporary folder."""
    if spec.source == "conceptnet":
        split = conceptnet.conceptnet_splits
        options = {"paper_compat": spec.paper_compat, "language": spec.language}
    else:
        split = glotcc.glotcc_splits
        options = {"max_train_bytes": spec.max_train_bytes, "max_val_bytes": spec.max_val_bytes}
    return split(
        location,
        spec.code,
        out_dir,
        seed=spec.split_seed,
        max_bad_fraction=spec.max_bad_fraction,
        **options,
    )


def run(ctx: RunContext) -> dict[str, Any]:
    """Split the source, finish the run (`n_<split>`, `train_mb`, `n_malformed`; the statistics as
    `source_stats`); returns {"stats", "summary" (texts and MB per split), "metrics"}."""
    stats = split_source(ctx.spec, ctx.data(ctx.spec.location), ctx.out_dir)
    if ctx.spec.source == "conceptnet":
        print(
            f"{stats['kept']:,} sentences from {stats['edges_in_language']:,} edges; dropped: {stats['dropped']}"
        )
    else:
        print(
            f"{stats['records']:,} records read, {stats['empty']:,} empty; stopped early: {stats['stopped_early']}"
        )
    print(
        f"malformed: {stats['malformed']:,} ({stats['bad_fraction']:.4%}); first: {stats['bad_examples'][:3]}"
    )
    summary = pd.DataFrame(stats["splits"]).T.rename(columns={"documents": "texts"})
    summary["MB"] = summary.pop("bytes") / 1e6
    metrics = {f"n_{k}": int(v) for k, v in summary["texts"].items()} | {
        "train_mb": float(summary.loc["train", "MB"]),
        "n_malformed": int(stats["malformed"]),
    }
    ctx.finish(metrics, source_stats=stats)
    return {"stats": stats, "summary": summary, "metrics": metrics}
