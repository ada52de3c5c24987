"""The run context a stage works in (`RunContext`): its spec, its folders, its inputs, and `finish`.

A notebook gets it from `orchestration.notebook.start`; a stage's `run(ctx)` reads its inputs through it and ends
with `ctx.finish(metrics)`, which writes `result.json` last.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrl_utils.config import paths
from lrl_utils.config.specs import FFT, Spec
from lrl_utils.records.results import RESULT_FILE, atomic_write_json, make_result, now
from lrl_utils.records.run_folders import checkpoint_dir, input_states

# The parameters each stage's notebook exposes besides `profile`, `spec_json` and `out_dir`.
KEY_PARAMS: dict[str, tuple[str, ...]] = {
    "preprocess": ("language", "source"),
    "base_model": ("model",),
    "adapt": ("model", "language", "source", "adapter"),
    "pppl": ("model", "language", "source", "adapter"),
    "finetune": ("model", "language", "task", "source", "adapter", "seed"),
    "llm": ("llm", "language", "task", "shots"),
    "report": ("kind",),
}


def key_params(spec: Spec) -> dict[str, Any]:
    return {k: getattr(spec, k) for k in KEY_PARAMS[spec.stage]}


@dataclass
class RunContext:
    spec: Spec
    profile: str
    out_dir: Path
    interactive: bool
    started: str = field(default_factory=now)
    t0: float = field(default_factory=time.perf_counter)

    def input(self, folder: str) -> Path:
        """The folder of an upstream run."""
        return paths.runs_dir() / folder

    def model_path(self) -> str:
        """What to give `from_pretrained`: a hub id, or the tiny model saved by the base_model run."""
        ref = self.spec.model_ref  # type: ignore[attr-defined]
        return str(self.input(ref) / "model") if ref.startswith("base_model/") else ref

    def language_model(self) -> tuple[str, Path | tuple[Path, Path] | None]:
        """(model to load, language adapter) of a pppl/finetune run: the base model and its adapter folder, the
        base model alone (None), a fully fine-tuned model (adapter `fft`: None on top), or the base model and the
        (ConceptNet, GlotCC) adapter folders to fuse."""
        run = getattr(self.spec, "adapter_run", None)
        if run is None:
            return self.model_path(), None
        if self.spec.adapter == FFT:  # type: ignore[attr-defined]
            return str(self.input(run) / "model"), None
        fusion = getattr(self.spec, "fusion_run", None)
        if fusion:
            return self.model_path(), (self.input(run) / "adapter", self.input(fusion) / "adapter")
        return self.model_path(), self.input(run) / "adapter"

    def checkpoint_dir(self) -> Path:
        """Resumable training state of this run (kept across a kill; removed by the runner once the run is done)."""
        if self.interactive:
            return self.out_dir.parent / f".checkpoints-{self.out_dir.name}"
        return checkpoint_dir(paths.runs_dir(), self.spec)

    def data(self, location: str) -> str | Path:
        """`hub` and URLs stay as they are; a local path is resolved against the project root."""
        if location == "hub" or location.startswith(("http://", "https://")):
            return location
        return paths.resolve(location)

    def describe(self):
        """The run spec as a two-column table (flattened), for the notebook's first output."""
        import pandas as pd

        flat = pd.json_normalize(self.spec.to_dict(), sep=".").T.reset_index()
        flat.columns = ["parameter", "value"]
        return flat.set_index("parameter")

    def finish(self, metrics: dict[str, Any], **extra: Any) -> dict:
        """Write `result.json` (atomically, last): the run counts as done only from here on."""
        if self.spec.stage == "report":  # lets the runner rebuild the report when an input appears or changes
            extra["inputs"] = input_states(list(self.spec.inputs))
            extra["missing_inputs"] = [f for f, state in extra["inputs"].items() if state is None]
        # a diverged run fails here instead of recording what no table reads
        for key, value in metrics.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{self.spec.folder()}: metric `{key}` is {value}: the run is not recorded")
        result = make_result(self.spec, metrics, self.started, time.perf_counter() - self.t0, extra)
        atomic_write_json(self.out_dir / RESULT_FILE, result)
        print(f"{self.spec.folder()}: done in {result['timings']['seconds']:.1f} s → {self.out_dir}")
        return result
