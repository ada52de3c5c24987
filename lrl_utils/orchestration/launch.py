"""Run one adapt run of a profile on several processes (GPUs, nodes) with `accelerate launch`.

    accelerate launch [--multi_gpu --num_processes N ...] -m lrl_utils.orchestration.launch adapt --profile P --run RUN [--force]
    python -m lrl_utils.orchestration.launch adapt --profile P --run RUN     # one process (a GPU, or the CPU)

RUN names an adapt run of profile P: its folder (`runs/adapt/<slug>--<hash>`, `adapt/<slug>--<hash>` or
`<slug>--<hash>`, as `./run_all.sh --profile P --dry-run` lists it) or its slug `<model>.<language>.<source>.<adapter>`.
A slug that the profile's grid does not hold (e.g. `mosa` when the profile lists only the paper's adapters) is built
with the same builder, `Grid.adapt`, from the profile's settings.

Every process rebuilds the run's spec from the profile and trains with `training.adapt.run`, the
function the stage notebook (`notebooks/03_adapt.py`) calls; `training.train_lm` splits the batches over the
processes (the per-device batch is `train.batch_size`). Only the main process writes: the checkpoints (in
`runs/_checkpoints/adapt/...`, the runner's place, so that a killed launch, or the runner, resumes from them), and the
run itself, into `runs/adapt/.tmp-<name>-<pid>-<n>/`, renamed to `runs/adapt/<slug>--<hash>/` once `result.json` is
written, exactly as the runner does; the runner then skips the run as finished. A finished run is skipped here too
(`--force` trains it again and replaces it); a failed one goes to `runs/_failed/`. A run stopped on request (SLURM's
signal before its time limit, `training.checkpoints.stop_requested`) keeps its checkpoint, leaves nothing in
`runs/_failed/` and exits with status 3 (`PREEMPTED`); the next start resumes from the checkpoint.

The run's upstream runs (the preprocess run of its corpus and, for a tiny model, its base_model run) must be finished:
`./run_all.sh --profile P --target <adapt run folder>` makes them (and would make the adapt run itself, on one
process). With several nodes, `runs/` (and the hub cache) must be on a filesystem that every node reads; do not run
the runner on the same run at the same time.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import sys

from lrl_utils.config import paths
from lrl_utils.config.params import ParamError
from lrl_utils.config.specs import AdaptSpec
from lrl_utils.orchestration.cli import Once, Parser, UsageError
from lrl_utils.records.results import run_folder_path
from lrl_utils.records.run_folders import fail, is_done, missing_upstream, publish, temporary_folder

STAGES = ("adapt",)
PREEMPTED = 3  # the exit status of a run stopped at a checkpoint on request


def find_adapt_spec(grid, run: str) -> AdaptSpec:
    """The adapt spec that `run` (a run folder or path, or a slug) names in `grid`; ParamError when none does."""
    name = run.rstrip("/").split("/")[-1]
    slug, _, digest = name.partition("--")
    specs = [s for s in grid.expand() if s.stage == "adapt"]
    matches = [s for s in specs if s.slug() == slug]
    if not matches:  # not in the profile's grid: build it from the slug, with the grid's own builder
        parts = slug.split(".")
        if len(parts) == 4:
            try:
                matches = [grid.adapt(*parts)]
            except (ParamError, KeyError):
                matches = []
    if not matches:
        close = difflib.get_close_matches(slug, [s.slug() for s in specs], n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ParamError(
            f"--run: {run!r} is not an adapt run of profile {grid.name} "
            f"(a run folder or a slug <model>.<language>.<source>.<adapter>){hint}"
        )
    (spec,) = matches  # a slug names one run of a profile
    if digest and spec.digest() != digest:
        raise ParamError(
            f"--run: {run!r} has other settings than profile {grid.name} gives that run today "
            f"({spec.folder()}): the profile or params changed since; pass the slug {slug!r} to train the current one"
        )
    return spec


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; raises `UsageError` (one line) for a bad one; every option may be given once."""
    p = Parser(
        prog="python -m lrl_utils.orchestration.launch",
        description="Run one adapt run of a profile, on one or (under `accelerate launch`) several processes.",
    )
    p.add_argument("stage", choices=STAGES, help="the stage (adapt)")
    p.add_argument(
        "--profile", action=Once, default="demo", help="params/profiles/<NAME>.yaml (default: demo)"
    )
    p.add_argument("--run", action=Once, required=True, help="run folder (runs/adapt/<slug>--<hash>) or slug")
    p.add_argument(
        "--force", action=Once, nargs=0, default=False, help="train again even if the run is finished"
    )
    p.add_argument("--no-progress", action=Once, nargs=0, default=False, help="no progress bar")
    return p.parse_args(argv)


def _decide(spec, force: bool) -> str:
    """`train`, `done` (finished, skip) or an error message (a missing upstream run)."""
    if not force and is_done(spec):
        return "done"
    missing = missing_upstream(spec)
    if missing:
        return (
            f"upstream run {missing[0]} is not finished; make it first: "
            f"./run_all.sh --profile {{profile}} --target {missing[0]}"
        )
    return "train"


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from lrl_utils.orchestration.grid import Grid

    try:
        grid = Grid(args.profile)
        spec = find_adapt_spec(grid, args.run)
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if grid.profile.data.mode == "demo":  # as the runner: the demo never reaches the hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list, parse_flag_from_env

    # joins the other processes under `accelerate launch` (`--cpu` sets ACCELERATE_USE_CPU, which only
    # AcceleratorState reads by itself)
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    main_process = state.is_main_process
    final = run_folder_path(spec.folder())  # never outside runs/
    tmp = temporary_folder(final)
    decision = [_decide(spec, args.force) if main_process else None]
    if main_process and decision[0] == "train":
        tmp.mkdir(parents=True)
        (tmp / "spec.json").write_text(spec.canonical(), encoding="utf-8")
    if state.num_processes > 1:  # the main process decides for all (other nodes may see runs/ late)
        decision = broadcast_object_list(decision)
    if decision[0] == "done":
        if main_process:
            print(f"{spec.folder()}: already done (--force trains it again)")
        return 0
    if decision[0] != "train":
        if main_process:
            print(f"error: {decision[0].format(profile=args.profile)}", file=sys.stderr)
        return 2

    from lrl_utils.records.context import RunContext
    from lrl_utils.training import adapt
    from lrl_utils.training.checkpoints import Preempted

    if main_process:
        print(f"{spec.folder()}: training on {state.num_processes} process(es), {state.device}")
    ctx = RunContext(spec=spec, profile=args.profile, out_dir=tmp, interactive=False)
    try:
        launch = {"argv": sys.argv, "num_processes": state.num_processes}
        adapt.run(ctx, progress=not args.no_progress, launch=launch)  # finishes the run (main process)
        if main_process:
            publish(tmp, final, spec, paths.runs_dir())
    except Preempted as stopped:  # SLURM's signal: the checkpoint is kept, the next start resumes from it
        if main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"{spec.folder()}: {stopped}", file=sys.stderr)
        return PREEMPTED
    except BaseException:
        if main_process and tmp.exists():
            print(
                f"{spec.folder()}: failed; its folder is in {fail(tmp, spec.folder(), paths.runs_dir())}",
                file=sys.stderr,
            )
        raise
    if main_process:
        print(f"{spec.folder()}: done → {final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
