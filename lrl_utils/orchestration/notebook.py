"""What a notebook calls first (`start`): its run context, checked against the runner's spec or built from the profile.

Under the runner, the notebook receives its spec as JSON plus the output folder, and `start` checks that
the key parameters agree with it. Opened by hand (JupyterLab, default parameters), `start` builds the
spec from the profile with the same builders the runner uses, makes any missing upstream runs through
the runner, and writes into `runs/_interactive/…` so that canonical results are never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lrl_utils.config import paths
from lrl_utils.config.params import ParamError
from lrl_utils.config.specs import SPEC_CLASSES, Spec
from lrl_utils.demo.config import world_config
from lrl_utils.demo.world import ensure_world as make_world
from lrl_utils.orchestration.grid import Grid
from lrl_utils.records.context import KEY_PARAMS, RunContext
from lrl_utils.records.results import RESULT_FILE, run_folder_path


def _threads() -> None:
    """Honour the runner's thread budget (several runs may share the CPU)."""
    n = os.environ.get("LRL_THREADS")
    if n and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))


def ensure_world(spec: Spec, grid) -> None:
    """Generate the demo world a spec reads from, when it is not there yet (idempotent, race-safe)."""
    world = getattr(spec, "world", None)
    if world and not (paths.resolve(world) / "world.json").exists():
        made = make_world(paths.resolve(world).parent, world_config(grid.profile.data))
        if paths.relative(made) != world:
            raise RuntimeError(f"demo world generated at {made}, but the spec expects {world}")


def _kernel():
    """The IPython shell when this runs in a Jupyter kernel (a notebook), else None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and hasattr(shell, "kernel") else None


def show_figures_inline() -> None:
    """In a Jupyter kernel, every figure is shown as an `image/png` output: pyplot's (inline backend, whatever
    `MPLBACKEND` the runner set) and a `matplotlib.figure.Figure` passed to `display` (the report's figures,
    drawn without pyplot). Saved files are the stage's business; this only displays."""
    shell = _kernel()
    if shell is None:
        return
    from IPython.core.pylabtools import select_figure_formats

    shell.run_line_magic("matplotlib", "inline")
    select_figure_formats(shell, {"png"})


def start(stage: str, params: dict[str, Any]) -> RunContext:
    """Validate a notebook's parameters and return its run context; in a notebook, show its run spec as a table.
    `params` is the notebook's `globals()`."""
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
    show_figures_inline()
    ctx = RunContext(spec=spec, profile=profile, out_dir=out, interactive=interactive)
    if _kernel() is not None:  # a notebook's first output: the run spec as a table
        from IPython.display import display

        display(ctx.describe())
    return ctx


def _make_upstream(spec: Spec, profile: str) -> None:
    """Interactive use: run the missing upstream runs through the runner (they land in their canonical folders)."""
    deps = [d for d in spec.deps() if not (paths.runs_dir() / d / RESULT_FILE).exists()]
    if spec.stage == "report" or not deps:
        return
    grid = {s.folder() for s in Grid(profile).expand()}
    if outside := [d for d in deps if d not in grid]:  # the runner makes only runs of the profile's grid
        raise ParamError(
            f"notebook parameters: {spec.folder()} needs {outside[0]}, which is not a run of profile {profile!r}: "
            f"choose parameters of a run it has (./run_all.sh --profile {profile} --dry-run lists them)"
        )
    print(f"making {len(deps)} missing upstream run(s) first: {', '.join(deps)}")
    cmd = [sys.executable, "-m", "lrl_utils.orchestration.runner", "--profile", profile]
    for d in deps:
        cmd += ["--target", d]
    if code := subprocess.run(cmd).returncode:  # its summary or error is printed above
        raise RuntimeError(
            f"the runner could not make the upstream runs of {spec.folder()} (exit status {code})"
        )
