"""What a notebook calls first (`start`) and last (`RunContext.finish`).

Under the runner, the notebook receives its spec as JSON plus the output folder, and `start` checks that
the key parameters agree with it. Opened by hand (JupyterLab, default parameters), `start` builds the
spec from the profile with the same builders the runner uses, makes any missing upstream runs through
the runner, and writes into `runs/_interactive/…` so that canonical results are never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .params import ParamError
from .results import RESULT_FILE, atomic_write_json, make_result, now, run_folder_path
from .specs import FFT, SPEC_CLASSES, Spec

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
        from .runner import checkpoint_dir

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
        if self.spec.stage == "report":  # lets the runner rebuild the report once a missing input exists
            extra["missing_inputs"] = [
                f for f in self.spec.inputs if not (self.input(f) / RESULT_FILE).exists()
            ]
        result = make_result(self.spec, metrics, self.started, time.perf_counter() - self.t0, extra)
        atomic_write_json(self.out_dir / RESULT_FILE, result)
        print(f"{self.spec.folder()}: done in {result['timings']['seconds']:.1f} s → {self.out_dir}")
        return result


def _threads() -> None:
    """Honour the runner's thread budget (several runs may share the CPU)."""
    n = os.environ.get("LRL_THREADS")
    if n and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))


def ensure_world(spec: Spec, grid) -> None:
    """Generate the demo world a spec reads from, when it is not there yet (idempotent, race-safe)."""
    world = getattr(spec, "world", None)
    if world and not (paths.resolve(world) / "world.json").exists():
        from .demo_world import WorldConfig
        from .demo_world import ensure_world as make

        made = make(paths.resolve(world).parent, WorldConfig(seed=grid.profile.data.world_seed))
        if paths.relative(made) != world:
            raise RuntimeError(f"demo world generated at {made}, but the spec expects {world}")


def start(stage: str, params: dict[str, Any]) -> RunContext:
    """Validate a notebook's parameters and return its run context. `params` is the notebook's `globals()`."""
    from .grid import Grid

    cls = SPEC_CLASSES[stage]
    profile = params.get("profile", "demo")
    spec_json = params.get("spec_json") or ""
    # Under the runner (a spec is given), its parent process checked these params before any run started; the
    # adapter settings' check against the `adapters` library (which imports torch) is not repeated here.
    grid = Grid(profile, check_adapters=not spec_json)
    keys = {k: params[k] for k in KEY_PARAMS[stage] if k in params}
    missing = [k for k in KEY_PARAMS[stage] if k not in params]
    if missing:
        raise ParamError(
            f"notebook parameters: missing `{missing[0]}` (stage {stage} needs {KEY_PARAMS[stage]})"
        )
    if spec_json:
        spec = cls.from_json(spec_json)
        for k, v in keys.items():
            if getattr(spec, k) != v:
                raise ParamError(
                    f"notebook parameters: `{k}`={v!r} disagrees with the run spec ({getattr(spec, k)!r})"
                )
    else:
        spec = getattr(grid, stage)(**keys)
    out_dir = params.get("out_dir") or ""
    interactive = not out_dir
    if interactive:
        out_dir = run_folder_path(f"_interactive/{spec.folder()}")  # never outside runs/
        _make_upstream(spec, profile)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ensure_world(spec, grid)
    _threads()
    return RunContext(spec=spec, profile=profile, out_dir=out, interactive=interactive)


def _make_upstream(spec: Spec, profile: str) -> None:
    """Interactive use: run the missing upstream runs through the runner (they land in their canonical folders)."""
    deps = [d for d in spec.deps() if not (paths.runs_dir() / d / RESULT_FILE).exists()]
    if spec.stage == "report" or not deps:
        return
    print(f"making {len(deps)} missing upstream run(s) first: {', '.join(deps)}")
    cmd = [sys.executable, "-m", "lrl_utils.runner", "--profile", profile]
    for d in deps:
        cmd += ["--target", d]
    subprocess.run(cmd, check=True)
