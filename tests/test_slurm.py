"""The SLURM executor: resources in params, sbatch flags, and a real single-node SLURM (scripts/slurm_local.sh) that
runs a tiny profile to completion, records blocked runs, never queues a run twice, and resumes a preempted adapt
run to the same weights as the uninterrupted one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, tiny_profile

from lrl_utils.config.cluster import CLASS_DEFAULTS, Resources, SlurmSettings
from lrl_utils.config.params import ParamError
from lrl_utils.config.profiles import load_profile
from lrl_utils.orchestration.runner import main
from lrl_utils.orchestration.slurm import read_queued, read_state, sbatch_flags
from lrl_utils.orchestration.slurm_task import launch_command

SLURM = {  # one CPU per task, and every class's runs in one task: the chain pays the imports once per stage
    "defaults": {"gpus": 0, "cpus": 1, "mem": "400M", "time": "00:20:00", "pack": 8},
    # adapt as on a multi-GPU node: `accelerate launch` of 2 processes inside the allocation (CPU processes and
    # gloo here, by the profile's `setup` line; GPUs and NCCL on a cluster)
    "classes": {"adapt": {"signal_seconds": 30, "throttle": 2, "processes": 2, "cpus": 2, "mem": "1G"}},
    "setup": ["export ACCELERATE_USE_CPU=true"],
}


def test_resources_merge_and_validation(project):
    settings = SlurmSettings(
        defaults=Resources(partition="gpu", time="02:00:00"), classes={"pppl": Resources(pack=3)}
    )
    pppl = settings.resources("pppl")
    assert (pppl.partition, pppl.time, pppl.pack, pppl.gpus) == (
        "gpu",
        "02:00:00",
        3,
        CLASS_DEFAULTS["pppl"].gpus,
    )
    assert settings.resources("report").gpus == 0 and settings.resources("adapt").signal_seconds > 0
    cases = [
        ({"classes": {"adapter": {}}}, "`slurm.classes.adapter`: unknown resource class 'adapter'"),
        ({"defaults": {"time": "two hours"}}, "`slurm.defaults.time`: expected [D-]HH:MM:SS"),
        ({"defaults": {"mem": "lots"}}, "`slurm.defaults.mem`: expected a size"),
        ({"defaults": {"cpus": 0}}, "`slurm.defaults.cpus`: must be >= 1"),
        ({"classes": {"adapt": {"sbatch": ["--array=1-3"]}}}, "`slurm.classes.adapt.sbatch[0]`"),
        ({"gpu": "tpu"}, "`slurm.gpu`: unknown GPU type 'tpu'"),
    ]
    for section, message in cases:
        project.add_profile("bad", tiny_profile(slurm=section))
        with pytest.raises(ParamError) as err:
            load_profile("bad")
        assert message in str(err.value) and "params/profiles/bad.yaml" in str(err.value)


def test_slurm_settings_do_not_change_run_folders(project, capsys):
    listings = []
    for prof in (tiny_profile(), tiny_profile(slurm=SLURM)):
        project.add_profile("a", prof)
        assert main(["--profile", "a", "--dry-run"]) == 0
        listings.append([line for line in capsys.readouterr().out.splitlines() if "--" in line])
    assert listings[0] == listings[1] and len(listings[0]) == 10


def test_sbatch_flags_and_multi_gpu_launch(tmp_path):
    res = SlurmSettings(classes={"adapt": Resources(gpu_type="a100", sbatch=("--exclusive",))}).resources(
        "adapt"
    )
    flags = sbatch_flags(res, "lrl-x-adapt", 120, tmp_path, ["12", "7", "12"])
    assert "--array=0-119%64" in flags and "--gres=gpu:a100:1" in flags and "--exclusive" in flags
    assert "--signal=B:USR1@600" in flags and "--requeue" in flags and "--dependency=afterany:7:12" in flags
    assert not any(
        f.startswith("--gres") for f in sbatch_flags(CLASS_DEFAULTS["report"], "r", 1, tmp_path, [])
    )
    one = launch_command(Resources(nodes=1, processes=4), "paper", "adapt/x--1", "127.0.0.1")
    assert (
        one[one.index("--num_processes") + 1] == "4"
        and "--multi_gpu" in one
        and one[-3:-1] == ["--run", "adapt/x--1"]
    )
    two = launch_command(Resources(nodes=2, processes=4), "paper", "adapt/x--1", "node7")
    assert two[:3] == ["srun", "--nodes=2", "--ntasks-per-node=1"]
    assert "--num_processes 8" in two[-1] and "--machine_rank $SLURM_NODEID" in two[-1] and "node7" in two[-1]


def test_gpu_hour_estimate_of_the_paper_grid():
    from lrl_utils.config.specs import AdaptSpec
    from lrl_utils.orchestration.cost import estimate, run_flops
    from lrl_utils.orchestration.grid import Grid

    specs = Grid("paper").expand()
    hours = estimate(specs, "a100-80gb")
    ours, original = (sum(row[k] for row in hours.values()) for k in ("ours", "original"))
    assert 0 < ours <= original / 3  # the aim
    assert (
        hours["report"] == {"ours": 0.0, "original": 0.0} and hours["adapt"]["ours"] > hours["pppl"]["ours"]
    )
    assert sum(estimate(specs, "h100")[s]["ours"] for s in hours) < ours  # a faster GPU, fewer hours
    adapt = [s for s in specs if isinstance(s, AdaptSpec) and s.model == "xlmr" and s.source == "glotcc"]
    by = {s.adapter: run_flops(s, "ours", {"ours": 0.0, "original": 0.0}) for s in adapt}
    assert by["fft"] > by["seq_bn"] > 0  # full fine-tuning adds the weight gradients


# --------------------------------------------------------------------------------------------------
# A real SLURM


@pytest.fixture(scope="module")
def cluster():
    script = REPO / "scripts" / "slurm_local.sh"
    was_running = subprocess.run([str(script), "status"], capture_output=True).returncode == 0
    proc = subprocess.run([str(script), "start"], capture_output=True, text=True)
    if proc.returncode == 3:
        pytest.skip(f"no SLURM here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    conf = subprocess.run([str(script), "conf"], capture_output=True, text=True).stdout.strip()
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    yield conf
    if old is None:
        os.environ.pop("SLURM_CONF")
    if not was_running:
        subprocess.run([str(script), "stop"], check=True, capture_output=True)


def squeue(jobs) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i|%A|%T|%r", "-j", ",".join(jobs)], capture_output=True, text=True
    )
    return out.stdout.split()


def wait_for(jobs, timeout: float, on_line=None) -> None:
    end = time.time() + timeout
    while time.time() < end:
        lines = squeue(jobs)
        if not lines:
            return
        for line in lines:
            if on_line:
                on_line(line)
        time.sleep(0.5)
    raise AssertionError(f"jobs {jobs} still queued after {timeout} s: {squeue(jobs)}")


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors = {}
    for f in sorted(folder.rglob("*")):
        if f.suffix == ".safetensors":
            tensors.update({f"{f.name}:{k}": v for k, v in load_file(f).items()})
        elif f.suffix == ".bin":
            tensors.update({f"{f.name}:{k}": v for k, v in torch.load(f, map_location="cpu").items()})
    return tensors


@pytest.mark.slow
def test_tiny_profile_on_a_real_slurm(cluster, project, capsys):
    project.use_real_notebooks()
    prof = tiny_profile(slurm=SLURM)  # one language, one adapter, TC: preprocess → ... → report, 10 runs
    # 2 processes with gloo take ~0.5 s a step on 2 busy cores: a checkpoint every 5 steps, signalled at the first
    prof["adapt"]["glotcc"].update(max_steps=40, eval_every=20, checkpoint_every=5)
    project.add_profile("s", prof)
    runs = project.runs
    t0 = time.monotonic()

    # 1. the whole grid, chained arrays, to completion
    assert main(["--profile", "s", "--executor", "slurm"]) == 0
    out = capsys.readouterr().out
    jobs = sorted({str(r["job"]) for r in read_queued(runs).values()})
    assert "adapt: 1 run(s) in 1 task(s)" in out and "pppl: 2 run(s) in 1 task(s)" in out and " after " in out
    assert len(jobs) == 6  # preprocess, base_model, adapt, pppl, finetune, report
    wait_for(jobs, 900)  # ~1.5 min on a quiet 2-core machine
    assert main(["--profile", "s", "--status"]) == 0
    status = capsys.readouterr().out
    total = [line for line in status.splitlines() if line.startswith("total")][0].split()
    assert total[1:] == ["10", "0", "0", "0", "0", "0"], status
    # re-submitting a finished grid submits nothing
    assert main(["--profile", "s", "--executor", "slurm"]) == 0
    assert "nothing to submit" in capsys.readouterr().out
    grid_seconds = time.monotonic() - t0

    # 2. in one task: a run whose upstream run is missing records itself as blocked, a run that fails is listed
    # with its one-line error and its log
    (adapt,) = runs.glob("adapt/*--*")
    uninterrupted = runs / "uninterrupted"
    shutil.move(adapt, uninterrupted)
    (pppl,) = [p.relative_to(runs) for p in runs.glob("pppl/*seq_bn--*")]
    (broken,) = [p.relative_to(runs) for p in runs.glob("pppl/*none.none--*")]
    for folder in (pppl, broken):
        shutil.rmtree(runs / folder)
    (config,) = runs.glob("base_model/*/model/config.json")
    good = config.read_text()
    config.write_text("{not json")  # the base model's config: the PPPL run of the base model fails on it
    targets = ["--target", str(pppl), "--target", str(broken)]
    assert main(["--profile", "s", "--executor", "slurm", "--only", "pppl", *targets]) == 0
    assert "pppl: 2 run(s) in 1 task(s)" in capsys.readouterr().out
    wait_for([str(read_queued(runs)[str(pppl)]["job"])], 300)
    config.write_text(good)
    assert main(["--profile", "s", "--status", "--only", "pppl"]) == 0
    status = capsys.readouterr().out
    assert f"  {pppl}: upstream run adapt/{adapt.name} is not finished" in status and "blocked (1)" in status
    (failed,) = [line for line in status.splitlines() if line.startswith(f"  {broken}: ")]
    log = failed.rsplit(" (", 1)[1].rstrip(")")
    assert "failed (1)" in status and "config.json" in failed and Path(log).is_file(), status
    assert Path(log).parent == runs / "_failed" / broken

    # 3. preemption: the adapt task is signalled mid-run, checkpoints, requeues, resumes to the same weights
    assert main(["--profile", "s", "--executor", "slurm", "--only", "adapt"]) == 0
    assert (
        main(["--profile", "s", "--executor", "slurm", "--only", "adapt"]) == 0
    )  # queued already: no duplicate
    out = capsys.readouterr().out
    assert out.count("adapt: 1 run(s)") == 1 and "1 already queued" in out
    record = read_queued(runs)[f"adapt/{adapt.name}"]
    job = f"{record['job']}_{record['index']}"
    last = runs / "_checkpoints" / "adapt" / adapt.name / "last.pt"
    end = time.time() + 300
    while not last.exists() and time.time() < end:
        time.sleep(0.05)
    assert last.exists(), "the adapt run wrote no checkpoint"
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True)
    # the task checkpoints, requeues itself and starts again once SLURM lets it (AuthInfo=cred_expire in
    # scripts/slurm_local.sh: 10 s here instead of SLURM's 120 s)
    wait_for([str(record["job"])], 600)
    logs = "".join(p.read_text() for p in (runs / "_slurm" / "logs").glob("lrl-s-adapt-*.out"))
    stopped = [line for line in logs.splitlines() if line.startswith("stopped adapt/")]
    assert stopped, "the adapt task was not stopped by the signal (did the run end first?)\n" + logs
    launch_log = (runs / "_slurm" / "logs" / f"adapt.{adapt.name}.launch.log").read_text()
    resumed_at = re.search(r"resuming from \S+last\.pt at step (\d+) of 40", launch_log)
    assert resumed_at and 0 < int(resumed_at.group(1)) < 40, launch_log[-3000:]
    # the grid's run (step 1, moved aside as `uninterrupted`), the signalled start and the resumed one
    assert launch_log.count("training on 2 process(es)") == 3 and "stopped on request" in launch_log
    result = json.loads((adapt / "result.json").read_text())
    assert result["metrics"]["num_processes"] == 2 and result["launch"]["num_processes"] == 2
    assert result["status"] == "done" and not (runs / "_failed" / "adapt" / adapt.name).exists()
    assert not last.parent.exists()  # the checkpoint is dropped once the resumed run is done
    assert read_state(f"adapt/{adapt.name}", runs)["state"] == "done"
    resumed, reference = weights(adapt / "adapter"), weights(uninterrupted / "adapter")
    assert resumed.keys() == reference.keys() and resumed
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
    print(f"grid {grid_seconds:.0f} s; whole test {time.monotonic() - t0:.0f} s")
