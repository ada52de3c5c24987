"""The runner: expand a profile, order the runs by dependency, execute each notebook with papermill.

    python -m lrl_utils.orchestration.runner [--profile demo] [--only STAGE] [--force | --dry-run] [--jobs N] [--target RUN]...

A bad command line (an option given twice, `--jobs` not an integer >= 1, `--force` with `--dry-run`, a profile
name that is a path) is one line on stderr and exit status 2, like an invalid profile.

`--dry-run` lists the runs and checks the local data they read (`data/check.py`), running nothing.
Each run executes in `runs/<stage>/.tmp-<name>-<pid>/` in its own process (papermill + the project's
Jupyter kernel) and is renamed to `runs/<stage>/<slug>--<digest>/` only after its notebook wrote
`result.json`. Finished runs are skipped; failed runs go to `runs/_failed/` and never replace a finished
one; runs downstream of a failure are reported as blocked; the summary gives each failed run's error (the last
line of its exception) next to its notebook; the exit status is non-zero if anything failed. Every run folder
is checked to lie inside the runs directory before anything runs (`results.run_folder_path`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from lrl_utils.config import paths
from lrl_utils.config.params import ParamError
from lrl_utils.config.specs import STAGES, Spec
from lrl_utils.orchestration import kernels
from lrl_utils.orchestration.cli import Once, Parser, UsageError, run_command, stop_on_sigterm
from lrl_utils.records.results import (
    RESULT_FILE,
    atomic_write_json,
    failure_line,
    now,
    read_result,
    run_folder_path,
)
from lrl_utils.records.run_folders import (
    RunsBusy,
    clean_stale,
    fail,
    is_done,
    publish,
    runs_lock,
    temporary_folder,
)

KERNEL = "lrl-adapt"
# The first run waits (up to this) for the kernel server's imports, ~7 s on 2 cores, rather than import beside it
SERVER_WAIT = 120.0
NOTEBOOKS = {
    "preprocess": "01_preprocess.py",
    "base_model": "02_base_model.py",
    "adapt": "03_adapt.py",
    "pppl": "04_pppl.py",
    "finetune": "05_finetune.py",
    "llm": "08_llm_baseline.py",
    "report": {"tables": "06_tables.py", "figures": "07_figures.py"},
}


def notebook_for(spec: Spec) -> Path:
    name = NOTEBOOKS[spec.stage]
    if isinstance(name, dict):
        name = name[spec.kind]  # type: ignore[attr-defined]
    return paths.notebooks_dir() / name


# --------------------------------------------------------------------------------------------------
# Executing one run (in a child process)


def ensure_kernel() -> None:
    """Register the project's kernel in this environment when it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL in KernelSpecManager().find_kernel_specs():
        return
    cmd = [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL]
    subprocess.run([*cmd, "--display-name", "Python (lrl-adapt)"], check=True, capture_output=True)


def execute(spec: Spec, profile: str, out_dir: Path) -> None:
    """Execute the stage notebook for `spec` into `out_dir` (called in the child process)."""
    import jupytext
    import papermill

    from lrl_utils.records.context import key_params

    nb = jupytext.read(notebook_for(spec))
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python (lrl-adapt)", "language": "python"}
    params = {"profile": profile, **key_params(spec), "spec_json": spec.canonical(), "out_dir": str(out_dir)}
    papermill.execute_notebook(
        nb,
        str(out_dir / "notebook.ipynb"),
        parameters=params,
        kernel_name=KERNEL,
        language="python",
        cwd=str(paths.project_root()),
        log_output=True,
        progress_bar=False,
        kernel_manager_class=kernels.kernel_manager_class(),
    )


def _child_main(args: argparse.Namespace) -> int:
    from lrl_utils.config.specs import SPEC_CLASSES

    spec = SPEC_CLASSES[args._stage].from_json(Path(args._spec_file).read_text(encoding="utf-8"))
    execute(spec, args.profile, Path(args._out_dir))
    return 0


# --------------------------------------------------------------------------------------------------
# Scheduling


class Runner:
    def __init__(self, grid, jobs: int, force: set[str]):
        self.grid = grid
        self.jobs = jobs
        self.force = force
        self.root = paths.runs_dir()
        self.status: dict[str, str] = {}  # folder → done | skipped | failed | blocked
        self.failed: dict[str, str] = {}  # folder → executed notebook of the failure
        self.errors: dict[str, str] = {}  # folder → the failure's one-line error
        self.blocked: dict[str, str] = {}  # folder → the upstream run that is missing or failed
        self.seconds: dict[str, float] = {}
        self.interrupted = False  # Ctrl-C: the runs in flight stop, and are not failures
        self.env = self.run_env()

    def run_env(self) -> dict[str, str]:
        """The environment of every run: project paths, offline hub in demo mode, and one CPU thread per run,
        whatever `jobs`: torch's CPU results depend on the thread count (runs are parallel through `jobs`)."""
        threads = "1"
        env = {**os.environ, "LRL_ROOT": str(paths.project_root()), "LRL_RUNS": str(self.root)}
        env.update({"LRL_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
        env.setdefault("HF_HUB_OFFLINE", "1" if self.grid.profile.data.mode == "demo" else "0")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        env.setdefault("MPLBACKEND", "Agg")
        return env

    def run_one(self, spec: Spec) -> str:
        folder = spec.folder()
        final = run_folder_path(folder, self.root)
        tmp = temporary_folder(final)
        tmp.mkdir(parents=True)
        (tmp / "spec.json").write_text(spec.canonical(), encoding="utf-8")
        args = ["--_child", "--profile", self.grid.name, "--_stage", spec.stage]
        args += ["--_spec-file", str(tmp / "spec.json"), "--_out-dir", str(tmp)]
        root = str(paths.project_root())
        t0 = time.perf_counter()
        with open(tmp / "log.txt", "w", encoding="utf-8") as log:
            code = kernels.run_module(self.env, "lrl_utils.orchestration.runner", args, root, log.fileno())
            if code is None:  # no warm server (yet): an ordinary child process
                cmd = [sys.executable, "-m", "lrl_utils.orchestration.runner", *args]
                code = subprocess.run(
                    cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=root
                ).returncode
        self.seconds[folder] = time.perf_counter() - t0
        if code == 0 and (tmp / RESULT_FILE).exists():
            publish(tmp, final, spec, self.root)
            return "done"
        if self.interrupted:  # stopped by Ctrl-C, not failed: the next start resumes it (its checkpoint)
            shutil.rmtree(tmp, ignore_errors=True)
            return "interrupted"
        failed = fail(tmp, folder, self.root)
        executed = failed / "notebook.ipynb"  # absent when papermill could not even start the notebook
        self.failed[folder] = str(executed if executed.exists() else failed / "log.txt")
        self.errors[folder] = failure_line(failed)
        return "failed"

    def run(self, specs: list[Spec]) -> dict[str, str]:
        todo = []
        for s in specs:  # reports are checked when their inputs are settled: an input may appear meanwhile
            if s.stage != "report" and s.folder() not in self.force and is_done(s):
                self.status[s.folder()] = "skipped"
            else:
                todo.append(s)
        total, finished = len(todo), 0
        pending = {s.folder(): s for s in todo}
        running: dict[Future, Spec] = {}
        base_env, warm, log = self.env, False, self.root / "_logs" / "kernel_server.log"
        # the kernel server closes first: on Ctrl-C it stops the runs in flight, which the pool then waits for
        with ThreadPoolExecutor(self.jobs) as pool, contextlib.ExitStack() as stack, self._interruptible():
            while pending or running:
                for folder, spec in list(pending.items()):
                    state = self._readiness(spec, pending, running)
                    if state == "wait":
                        continue
                    del pending[folder]
                    if (
                        state == "ready"
                        and spec.stage == "report"
                        and folder not in self.force
                        and is_done(spec)
                    ):
                        self.status[folder] = "skipped"
                        total -= 1
                    elif state == "ready":
                        if not warm:  # the first run to execute starts the warm kernels (none if none runs)
                            self.env = stack.enter_context(kernels.kernel_server(base_env, log, SERVER_WAIT))
                            warm = True
                        running[pool.submit(self.run_one, spec)] = spec
                    else:
                        self.status[folder] = "blocked"
                        finished += 1
                        print(
                            f"[{finished}/{total}] blocked {folder} (needs {self.blocked[folder]})",
                            flush=True,
                        )
                if not running:
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    spec = running.pop(fut)
                    try:
                        state = fut.result()
                    except Exception as err:  # the runner itself must survive any single run
                        state = "failed"
                        self.failed[spec.folder()] = self.errors[spec.folder()] = f"runner error: {err}"
                    self.status[spec.folder()] = state
                    finished += 1
                    secs = self.seconds.get(spec.folder(), 0.0)
                    print(f"[{finished}/{total}] {state:<7} {spec.folder()} ({secs:.1f} s)", flush=True)
        self.env = base_env
        return self.status

    @contextlib.contextmanager
    def _interruptible(self):
        """Note a Ctrl-C before the kernel server closes: the runs it then stops are interrupted, not failed."""
        try:
            yield
        except KeyboardInterrupt:
            self.interrupted = True
            raise

    def _readiness(self, spec: Spec, pending: dict, running: dict) -> str:
        """ready | wait | blocked (an upstream run failed, was blocked, or is missing and not scheduled)."""
        in_flight = set(pending) | {s.folder() for s in running.values()}
        for dep in spec.deps() if spec.stage != "report" else ():
            if dep in in_flight:
                return "wait"
            if self.status.get(dep) in ("failed", "blocked") or read_result(self.root / dep) is None:
                self.blocked[spec.folder()] = dep
                return "blocked"
        if spec.stage == "report" and any(dep in in_flight for dep in spec.inputs):  # type: ignore[attr-defined]
            return "wait"
        return "ready"

    def summary(self) -> tuple[list[str], int]:
        counts = {
            k: sum(v == k for v in self.status.values()) for k in ("done", "skipped", "failed", "blocked")
        }
        lines = ["", "summary: " + ", ".join(f"{n} {k}" for k, n in counts.items())]
        for folder, where in self.failed.items():  # why (one line), then the executed notebook (or log)
            error = self.errors.get(folder, "?")
            lines.append(f"  failed  {folder}: {error}" + (f" ({where})" if where != error else ""))
        if self.blocked:
            lines.append(f"  blocked {len(self.blocked)} run(s) downstream of failed or missing runs")
        record = {"finished": now(), "profile": self.grid.name, "counts": counts, "failed": self.failed}
        record["errors"], record["blocked"] = self.errors, self.blocked
        atomic_write_json(self.root / "last_summary.json", record)
        return lines, (1 if counts["failed"] or counts["blocked"] else 0)


def closure(specs: list[Spec], targets: list[str]) -> list[Spec]:
    """The target runs and everything upstream of them, in grid order."""
    by_folder = {s.folder(): s for s in specs}
    unknown = [t for t in targets if t not in by_folder]
    if unknown:
        raise ParamError(f"--target: {unknown[0]!r} is not a run of this profile")
    keep, stack = set(), list(targets)
    while stack:
        f = stack.pop()
        if f not in keep:
            keep.add(f)
            stack += [d for d in by_folder[f].deps() if d in by_folder]
    return [s for s in specs if s.folder() in keep]


def _jobs(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return jobs


DRY_RUN = "check the params, list the runs and their count per stage (slurm: GPU-hours), run nothing"
EXECUTOR = "local (default) or slurm: sbatch job arrays (orchestration/slurm.py, `slurm:` in the profile)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; raises `UsageError` (one line) for a bad one. `--force` and `--dry-run` conflict
    (a dry run executes nothing, so there is nothing to force); `--target` may repeat, every other option not."""
    p = Parser(prog="run_all.sh", description="Run the lrl-adapt pipeline for a profile.")
    p.add_argument(
        "--profile", action=Once, default="demo", help="params/profiles/<NAME>.yaml (default: demo)"
    )
    p.add_argument("--only", action=Once, choices=STAGES, help="run only this stage (its inputs must exist)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--force", action=Once, nargs=0, default=False, help="re-run selected runs even if they are done"
    )
    mode.add_argument("--dry-run", action=Once, nargs=0, default=False, help=DRY_RUN)
    p.add_argument("--jobs", action=Once, type=_jobs, help="runs in parallel (default: the profile's `jobs`)")
    p.add_argument("--target", action="append", default=[], help="run only this run folder and its inputs")
    p.add_argument("--executor", action=Once, choices=("local", "slurm"), default="local", help=EXECUTOR)
    mode.add_argument("--status", action=Once, nargs=0, default=False, help="per stage: done, running, ...")
    for hidden in ("--_stage", "--_spec-file", "--_out-dir"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except UsageError as err:
        print(f"error: {err} (see --help)", file=sys.stderr)
        return 2
    if args._child:
        return _child_main(args)
    from lrl_utils.orchestration.grid import Grid, dry_run_lines

    try:
        grid = Grid(args.profile)
        specs = grid.expand()
        if args.target:
            specs = closure(specs, args.target)
        if args.only:
            specs = [s for s in specs if s.stage == args.only]
        jobs = args.jobs or grid.profile.jobs
        for spec in specs:  # no run folder outside runs/ (spec folders are plain names; the last guard)
            run_folder_path(spec.folder())
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.status:
        from lrl_utils.orchestration.status import status_lines

        print("\n".join(status_lines(specs)))
        return 0
    from lrl_utils.data.check import print_problems

    if args.dry_run:
        done = {s.folder() for s in specs if is_done(s)}
        print("\n".join(dry_run_lines(specs, done)))
        if args.executor == "slurm":  # what the grid costs before it is submitted
            from lrl_utils.orchestration.cost import estimate_lines

            print("\n".join(estimate_lines(grid, [s for s in specs if s.folder() not in done])))
        return 2 if print_problems(specs) else 0  # every local file the runs read, in its loader's layout
    if print_problems(specs if args.force else [s for s in specs if not is_done(s)], before_running=True):
        return 2  # the local files of the runs to do, checked before any compute
    ensure_kernel()
    if grid.world:  # generate the demo world once, before any notebook reads it
        from lrl_utils.orchestration.notebook import ensure_world

        ensure_world(grid.preprocess(grid.profile.languages[0], "glotcc"), grid)
    if args.executor == "slurm":
        from lrl_utils.orchestration.slurm import submit

        return submit(grid, specs, force=args.force)
    runner = Runner(grid, jobs=jobs, force={s.folder() for s in specs} if args.force else set())
    stop_on_sigterm()
    t0 = time.perf_counter()
    try:
        with runs_lock(runner.root):  # one runner at a time on a runs folder
            clean_stale(runner.root)
            print(
                f"profile {grid.name}: {len(specs)} runs, {jobs} in parallel, results in {paths.relative(runner.root)}/"
            )
            runner.run(specs)
    except RunsBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the runs in flight stopped (they resume from their checkpoints when {grid.name} runs "
              "again); finished runs are kept", file=sys.stderr)  # fmt: skip
        return 130
    lines, code = runner.summary()
    lines.append(
        f"wall time {time.perf_counter() - t0:.1f} s; summary in {paths.relative(runner.root)}/last_summary.json"
    )
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(run_command(main))
