"""One task of a SLURM job array (`orchestration/slurm.py` submits them): the runs of one pack, one after another.

    python -m lrl_utils.orchestration.slurm_task runs/_slurm/submissions/<stamp>/<class>.json <index>

Each run goes through the runner's own per-run path (`Runner.run_one`: papermill into a temporary folder, atomic
rename, `runs/_failed/` on failure), or, for an adapt class with several processes or nodes, through
`accelerate launch -m lrl_utils.orchestration.launch` inside the allocation. A finished run is skipped; a run whose
upstream run has no result is recorded as blocked (`runs/_slurm/state/...`, a one-line reason) and not started.
The first run to execute starts the task's warm-kernel server (`orchestration/kernels.py`) and waits for its imports;
every run of the pack is then forked from it, so a pack pays the notebooks' imports once. The task's own process
imports no torch (no `Grid`: the profile alone).

Preemption and time limits: SIGUSR1 (`--signal=B:USR1@<s>`, from the class's `signal_seconds`) or SIGTERM makes
the task create its stop file (`$LRL_STOP_FILE`); the training loop checks it after every step, writes its
checkpoint and stops (`training.checkpoints.Preempted`); the task then records the run as requeued and requeues
itself (`scontrol requeue`): the next start resumes from the checkpoint in `runs/_checkpoints/`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from lrl_utils.config import paths
from lrl_utils.config.cluster import Resources
from lrl_utils.config.profiles import load_profile
from lrl_utils.config.specs import SPEC_CLASSES, Spec
from lrl_utils.orchestration import kernels
from lrl_utils.orchestration.runner import Runner
from lrl_utils.orchestration.slurm import slurm_dir, write_state
from lrl_utils.records.results import failure_line
from lrl_utils.records.run_folders import is_done, missing_upstream

STOP_ENV = "LRL_STOP_FILE"  # read by training.checkpoints.stop_requested
# A task's CPUs are few: its first run waits (up to this) for the kernel server's imports rather than paying them
# again beside it; a pack whose runs are all finished or blocked starts no server at all.
SERVER_WAIT = 300.0


def launch_command(res: Resources, profile: str, folder: str, head: str, port: int = 29500) -> list[str]:
    """The command that trains adapt run `folder` on `res.nodes` x `res.processes` processes with `accelerate
    launch` (under `srun`, one launcher per node, when there are several nodes)."""
    total = res.nodes * res.processes
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(total)]
    if total > 1:
        launch.append("--multi_gpu")
    if res.nodes > 1:
        launch += ["--num_machines", str(res.nodes), "--machine_rank", "$SLURM_NODEID"]
        launch += ["--main_process_ip", head, "--main_process_port", str(port)]
    launch += [
        "-m",
        "lrl_utils.orchestration.launch",
        "adapt",
        "--profile",
        profile,
        "--run",
        folder,
        "--no-progress",
    ]
    if res.nodes == 1:
        return launch
    inner = " ".join(a if a.startswith("$") else shlex.quote(a) for a in launch)
    return ["srun", f"--nodes={res.nodes}", "--ntasks-per-node=1", "bash", "-c", inner]


def _launch(spec: Spec, res: Resources, profile: str, env: dict, log: Path) -> str:
    head = "127.0.0.1"
    if res.nodes > 1:
        names = subprocess.run(
            ["scontrol", "show", "hostnames", os.environ.get("SLURM_JOB_NODELIST", "")],
            capture_output=True,
            text=True,
        ).stdout.split()
        head = names[0] if names else head
    with open(log, "a", encoding="utf-8") as out:
        cmd = launch_command(res, profile, spec.folder(), head)
        code = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=paths.project_root()
        ).returncode
    return "done" if code == 0 and is_done(spec) else "failed"


def run_pack(manifest: dict, index: int) -> int:
    """Run the pack `index` of a manifest; the exit status is 1 when a run failed or was blocked."""
    specs = [SPEC_CLASSES[json.loads(j)["stage"]].from_json(j) for j in manifest["packs"][index]]
    res = Resources(**{k: tuple(v) if k == "sbatch" else v for k, v in manifest["resources"].items()})
    job = os.environ.get("SLURM_JOB_ID", f"local-{os.getpid()}")
    tag = {"job": job, "array": f"{os.environ.get('SLURM_ARRAY_JOB_ID', job)}_{index}"}
    stop = slurm_dir() / "stop" / job
    stop.unlink(missing_ok=True)
    stop.parent.mkdir(parents=True, exist_ok=True)
    os.environ[STOP_ENV] = str(stop)
    for sig in (signal.SIGUSR1, signal.SIGTERM):  # checkpoint and requeue (the loop sees the file)
        signal.signal(sig, lambda *_: stop.touch())
    # what the runner's per-run path needs of the grid: its name and the profile (not `Grid`, whose import pulls in
    # torch and the adapters library: the task's own process stays light, the kernel server imports them once)
    grid = SimpleNamespace(name=manifest["profile"], profile=load_profile(manifest["profile"])[0])
    runner = Runner(grid, jobs=1, force={s.folder() for s in specs} if manifest.get("force") else set())
    threads = os.environ.get("SLURM_CPUS_PER_TASK", runner.env["LRL_THREADS"])
    runner.env.update(LRL_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    multi = res.nodes > 1 or res.processes > 1
    bad = requeue = warm = False
    with contextlib.ExitStack() as stack:
        for spec in specs:
            folder = spec.folder()
            if stop.exists():  # the rest of the pack runs after the requeue
                requeue = True
                break
            if folder not in runner.force and is_done(spec):
                print(f"done    {folder} (finished before)", flush=True)
                write_state(folder, "done", **tag)
                continue
            missing = missing_upstream(spec)
            if missing:
                reason = f"upstream run {missing[0]} is not finished"
                print(f"blocked {folder}: {reason}", flush=True)
                write_state(folder, "blocked", reason=reason, **tag)
                bad = True
                continue
            if not (
                warm or multi
            ):  # the first run to execute starts the warm kernels (imports once per task)
                log = slurm_dir() / "logs" / f"kernels-{job}.log"
                runner.env = stack.enter_context(kernels.kernel_server(runner.env, log, wait=SERVER_WAIT))
                warm = True
            write_state(folder, "running", **tag)
            print(f"start   {folder}", flush=True)
            log = slurm_dir() / "logs" / f"{folder.replace('/', '.')}.launch.log"
            if multi:
                started = time.monotonic()
                state = _launch(spec, res, grid.name, runner.env, log)
                runner.seconds[folder] = time.monotonic() - started
            else:
                state = runner.run_one(spec)
            failed = paths.runs_dir() / "_failed" / folder
            if state == "failed" and stop.exists():  # stopped at a checkpoint, not a failure
                shutil.rmtree(failed, ignore_errors=True)
                write_state(folder, "requeued", reason="stopped at a checkpoint before the time limit", **tag)
                print(f"stopped {folder}: checkpointed; requeueing", flush=True)
                requeue = True
                break
            if state == "failed":
                error = runner.errors.get(folder) or (
                    failure_line(failed) if failed.exists() else f"see {log}"
                )
                where = runner.failed.get(folder) or str(failed / "log.txt" if failed.exists() else log)
                write_state(folder, "failed", error=error, log=where, **tag)
                bad = True
            else:
                write_state(folder, "done", **tag)
            print(f"{state:<7} {folder} ({runner.seconds.get(folder, 0.0):.1f} s)", flush=True)
    if requeue and "SLURM_JOB_ID" in os.environ:
        stop.unlink(missing_ok=True)
        subprocess.run(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], check=False)
        return 0
    stop.unlink(missing_ok=True)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or not argv[1].isdigit():
        print(
            "usage: python -m lrl_utils.orchestration.slurm_task <manifest.json> <array index>",
            file=sys.stderr,
        )
        return 2
    manifest = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    return run_pack(manifest, int(argv[1]))


if __name__ == "__main__":
    sys.exit(main())
