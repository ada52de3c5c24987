"""The SLURM executor: `./run_all.sh --executor slurm` submits the unfinished runs of a grid as `sbatch` job arrays.

One job array per resource class (`config/cluster.py`: a stage, adapt split into adapters / FFT / causal LM), with
the class's resources (`slurm:` in the profile), `--array=0-<n-1>%<throttle>`, and short runs packed `pack` per
task. An array depends (`--dependency=afterany:...`) on the arrays, of this submission or an earlier one still in
the queue, that hold its runs' upstream runs; each task checks its upstream runs itself and records itself as
blocked when one did not finish (`orchestration/slurm_task.py`). Everything the executor writes is under
`runs/_slurm/`:

    submissions/<stamp>/<class>.json    the manifest: profile, class, resources, the packs of run specs, job id
    submissions/<stamp>/<class>.sbatch  the batch script submitted (each task: `python -m ...slurm_task`)
    queued.json                         run folder -> the job id and array index it was last submitted as
    state/<stage>/<run>.json            what its last task said: running | done | failed | blocked | requeued
    logs/<class>-<job>_<index>.out      the tasks' output

Re-submitting skips finished runs and runs whose recorded array task is still in `squeue` (pending or running),
so nothing is queued twice; everything else (never submitted, failed, blocked, cancelled) is submitted again.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lrl_utils.config import paths
from lrl_utils.config.cluster import RESOURCE_CLASSES, Resources, resource_class
from lrl_utils.config.specs import Spec
from lrl_utils.records.results import atomic_write_json, now
from lrl_utils.records.run_folders import is_done

ACTIVE = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "SUSPENDED",
    "RESIZING",
}


def slurm_dir(runs_root: Path | None = None) -> Path:
    return (runs_root or paths.runs_dir()) / "_slurm"


def read_queued(runs_root: Path | None = None) -> dict[str, dict]:
    """Run folder -> {"job", "index", "manifest"} of the array task it was last submitted as."""
    path = slurm_dir(runs_root) / "queued.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def state_path(folder: str, runs_root: Path | None = None) -> Path:
    return slurm_dir(runs_root) / "state" / f"{folder}.json"


def write_state(folder: str, state: str, **info) -> None:
    """Record what the task of run `folder` says about it (read by `--status`)."""
    atomic_write_json(state_path(folder), {"state": state, "time": now(), **info})


def read_state(folder: str, runs_root: Path | None = None) -> dict | None:
    path = state_path(folder, runs_root)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def squeue_states(jobs: set[str]) -> dict[str, str] | None:
    """`<job>_<index>` (or `<job>`) -> SLURM state, for the array jobs `jobs` still in the queue; None when
    `squeue` is not available (no SLURM client here)."""
    if shutil.which("squeue") is None:
        return None
    if not jobs:
        return {}
    cmd = ["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(sorted(jobs))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:  # every job id already purged from the controller: squeue refuses the list
        states = {}
        for job in jobs:
            one = subprocess.run([*cmd[:-1], job], capture_output=True, text=True)
            states.update(_parse_squeue(one.stdout) if one.returncode == 0 else {})
        return states
    return _parse_squeue(proc.stdout)


def _parse_squeue(text: str) -> dict[str, str]:
    states = {}
    for line in text.splitlines():
        if "|" in line:
            ident, state = line.strip().split("|", 1)
            states[ident] = state
    return states


def live_task(record: dict | None, states: dict[str, str] | None) -> str | None:
    """The queue state of a recorded array task, when it is still pending or running."""
    if not record or not states:
        return None
    state = states.get(f"{record['job']}_{record['index']}")
    return state if state in ACTIVE else None


def sbatch_flags(res: Resources, name: str, n_tasks: int, log_dir: Path, after: list[str]) -> list[str]:
    """The `sbatch` flags of one class's job array of `n_tasks` tasks (depending on the jobs `after`)."""
    flags = [f"--job-name={name}", f"--array=0-{n_tasks - 1}%{res.throttle}"]
    flags += [f"--output={log_dir}/{name}-%A_%a.out", "--open-mode=append"]
    for key, flag in (("partition", "partition"), ("account", "account"), ("qos", "qos"), ("time", "time")):
        if getattr(res, key):
            flags.append(f"--{flag}={getattr(res, key)}")
    flags += [f"--cpus-per-task={res.cpus}", f"--mem={res.mem}"]
    if res.gpus:
        flags.append(f"--gres=gpu:{res.gpu_type + ':' if res.gpu_type else ''}{res.gpus}")
    if res.constraint:
        flags.append(f"--constraint={res.constraint}")
    if res.nodes and res.nodes > 1:
        flags += [f"--nodes={res.nodes}", "--ntasks-per-node=1"]
    if res.signal_seconds:  # checkpoint before the time limit, then requeue (slurm_task.py)
        flags += [f"--signal=B:USR1@{res.signal_seconds}", "--requeue"]
    if after:
        flags.append("--dependency=afterany:" + ":".join(sorted(set(after), key=int)))
    return [*flags, *(res.sbatch or ())]


def batch_script(manifest: Path, setup: tuple[str, ...]) -> str:
    """The script every task of an array runs: the project's python on the manifest, at the task's index."""
    root = paths.project_root()
    lines = ["#!/bin/bash", f"# lrl-adapt: the runs of {manifest.name}, one pack per array index", "set -e"]
    lines += [f"cd {shlex.quote(str(root))}", *setup]
    lines.append(f"export LRL_ROOT={shlex.quote(str(root))} LRL_RUNS={shlex.quote(str(paths.runs_dir()))}")
    code = Path(__file__).resolve().parents[2]  # the checkout that holds this lrl_utils
    lines.append(f'export PYTHONPATH={shlex.quote(str(code))}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    task = [sys.executable, "-m", "lrl_utils.orchestration.slurm_task", str(manifest)]
    lines.append("exec " + " ".join(shlex.quote(a) for a in task) + ' "$SLURM_ARRAY_TASK_ID"')
    return "\n".join(lines) + "\n"


def _upstream(spec: Spec) -> tuple[str, ...]:
    return tuple(spec.inputs) if spec.stage == "report" else spec.deps()  # type: ignore[attr-defined]


def submit(grid, specs: list[Spec], force: bool = False, out=print) -> int:
    """Submit every unfinished run of `specs` (all with `force`) that is not queued already; 0 on success."""
    if shutil.which("sbatch") is None:
        print(
            "error: --executor slurm: no `sbatch` here (on a SLURM login node? SLURM_CONF set?)",
            file=sys.stderr,
        )
        return 2
    root = slurm_dir()
    queued = read_queued()
    states = squeue_states({str(r["job"]) for r in queued.values()}) or {}
    todo: dict[str, list[Spec]] = {cls: [] for cls in RESOURCE_CLASSES}
    job_of: dict[str, str] = {}  # run folder -> the job (earlier or this submission) that will make it
    skipped = {"done": 0, "queued": 0}
    for spec in specs:
        folder = spec.folder()
        if live_task(queued.get(folder), states):
            skipped["queued"] += 1
            job_of[folder] = str(queued[folder]["job"])
        elif not force and is_done(spec):
            skipped["done"] += 1
        else:
            todo[resource_class(spec)].append(spec)
    out(f"profile {grid.name}: {len(specs)} runs; {skipped['done']} done, {skipped['queued']} already queued")
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 10**6:06d}"
    sub_dir = root / "submissions" / stamp
    log_dir = root / "logs"
    for cls in RESOURCE_CLASSES:  # stage order: a class's upstream arrays are submitted before it
        runs = todo[cls]
        if not runs:
            continue
        res = grid.profile.slurm.resources(cls)
        if res.nodes > 1 or res.processes > 1:
            res = Resources(**{**res.__dict__, "pack": 1})  # a multi-process run takes its whole allocation
        packs = [runs[i : i + res.pack] for i in range(0, len(runs), res.pack)]
        after = [job_of[d] for s in runs for d in _upstream(s) if d in job_of]
        manifest = sub_dir / f"{cls}.json"
        record = {
            "profile": grid.name,
            "class": cls,
            "force": force,
            "resources": res.__dict__,
            "submitted": now(),
        }
        record["packs"] = [[s.canonical() for s in pack] for pack in packs]
        sub_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(manifest, record)
        script = manifest.with_suffix(".sbatch")
        script.write_text(batch_script(manifest, grid.profile.slurm.setup), encoding="utf-8")
        name = f"lrl-{grid.name}-{cls}"
        cmd = ["sbatch", "--parsable", *sbatch_flags(res, name, len(packs), log_dir, after), str(script)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            out(f"error: sbatch refused the {cls} array: {proc.stderr.strip() or proc.stdout.strip()}")
            out(f"  command: {shlex.join(cmd)}")
            return 1
        job = proc.stdout.strip().split(";")[0]
        atomic_write_json(manifest, {**record, "job": job, "sbatch": cmd})
        for index, pack in enumerate(packs):
            for spec in pack:
                job_of[spec.folder()] = job
                queued[spec.folder()] = {"job": job, "index": index, "manifest": str(manifest)}
        atomic_write_json(root / "queued.json", queued)
        deps = f" after {', '.join(sorted(set(after), key=int))}" if after else ""
        out(f"  {cls}: {len(runs)} run(s) in {len(packs)} task(s), job {job}{deps}")
    if not any(todo.values()):
        out("nothing to submit")
    out(f"follow it with ./run_all.sh --profile {grid.name} --status; logs in {paths.relative(log_dir)}/")
    return 0
