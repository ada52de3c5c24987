"""`python -m lrl_utils.orchestration.launch adapt`: which run `--run` names, the checks before training, and an adapt run trained
by two `accelerate launch` CPU processes that lands in the runner's folder, where the runner counts it as done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port, kill_tree, save_tiny_base, tiny_profile, toy_corpus

from lrl_utils.config.params import ParamError
from lrl_utils.orchestration import launch
from lrl_utils.orchestration.grid import Grid
from lrl_utils.records.results import atomic_write_json

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mini(project, **changes) -> Grid:
    project.add_profile("mini", tiny_profile(**changes))
    return Grid("mini")


def fake_upstream(project, spec) -> None:
    """Finished upstream runs of an adapt spec, made directly (no notebooks): the corpus splits of its preprocess
    run and, for a tiny model, a saved tiny base model in its base_model run."""
    corpus = project.runs / spec.corpus
    corpus.mkdir(parents=True)
    for stem, n, seed in (("train", 160, 0), ("val", 24, 1), ("test", 8, 2)):
        lines = [json.dumps({"text": t}, ensure_ascii=False) for t in toy_corpus(n, seed)]
        (corpus / f"{stem}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    atomic_write_json(corpus / "result.json", {"status": "done"})
    if spec.model_ref.startswith("base_model/"):
        base = project.runs / spec.model_ref
        save_tiny_base("xlm-roberta", base / "model", toy_corpus(200, 0))
        atomic_write_json(base / "result.json", {"status": "done"})


def test_run_names_a_folder_path_or_slug_of_the_profile(project):
    grid = mini(project)
    spec = grid.adapt("tiny-xlmr", "qac", "glotcc", "seq_bn")
    folder = spec.folder()  # adapt/<slug>--<hash>
    for run in (folder, folder.split("/")[1], f"runs/{folder}/", str(project.runs / folder), spec.slug()):
        assert launch.find_adapt_spec(grid, run) == spec, run
    # a run outside the profile's grid (mosa is not among its adapters): built by the same builder
    mosa = launch.find_adapt_spec(grid, "tiny-xlmr.qac.glotcc.mosa")
    assert mosa == grid.adapt("tiny-xlmr", "qac", "glotcc", "mosa")
    assert mosa.adapter_overrides == {"num_modules": 4, "consistency_weight": 1.0}  # params/adapters.yaml
    with pytest.raises(ParamError, match="other settings.*tiny-xlmr.qac.glotcc.seq_bn"):
        launch.find_adapt_spec(grid, f"{spec.slug()}--0123456789ab")  # the profile changed since
    closest = "not an adapt run of profile mini.*closest: tiny-xlmr.qac.glotcc.seq_bn"
    with pytest.raises(ParamError, match=closest):
        launch.find_adapt_spec(grid, "tiny-xlmr.qac.glotcc.seq_bm")


def test_missing_upstream_runs_and_bad_runs_fail_before_training(project, capsys):
    grid = mini(project)
    spec = grid.adapt("tiny-xlmr", "qac", "glotcc", "seq_bn")
    assert launch.main(["adapt", "--profile", "mini", "--run", spec.slug()]) == 2
    err = capsys.readouterr().err
    assert f"upstream run {spec.deps()[0]} is not finished" in err
    assert f"./run_all.sh --profile mini --target {spec.deps()[0]}" in err
    assert launch.main(["adapt", "--profile", "mini", "--run", "nothing"]) == 2
    assert "not an adapt run of profile mini" in capsys.readouterr().err
    assert not (project.runs / spec.folder()).exists() and not list(project.runs.glob("adapt/.tmp-*"))


def test_accelerate_launch_two_processes_writes_the_runners_run(project, tmp_path, capsys):
    """`accelerate launch` (2 CPU processes, gloo) of an adapt run (MoSA with its consistency loss, under DDP):
    the main process alone writes the run, atomically, into runs/adapt/<slug>--<hash>/; the runner skips it."""
    from lrl_utils.orchestration import runner

    grid = mini(project, adapters=["mosa"])
    spec = grid.adapt("tiny-xlmr", "qac", "glotcc", "mosa")
    fake_upstream(project, spec)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home), "HF_HOME": str(home / "hf"), "XDG_CACHE_HOME": str(home / "cache"),
        "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
    }  # fmt: skip
    command = [
        str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        "-m", "lrl_utils.orchestration.launch", "adapt", "--profile", "mini", "--run", spec.slug(), "--no-progress",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        output, _ = proc.communicate(timeout=30)
        pytest.fail(f"accelerate launch hung:\n{output[-4000:]}")
    assert proc.returncode == 0, output[-4000:]
    assert output.count("training on 2 process(es)") == 1, output[-4000:]  # printed by the main process only

    run = project.runs / spec.folder()
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "done" and result["label"] == spec.folder() and result["run"] == spec.digest()
    assert result["metrics"]["num_processes"] == 2 and result["launch"]["num_processes"] == 2
    assert result["history"]["steps"] == 10 and result["metrics"]["best_val_loss"] < float("inf")
    assert (run / "adapter" / "pytorch_adapter.bin").exists()
    saved = json.loads((run / "adapter" / "adapter_config.json").read_text())["config"]
    assert saved["reduction_factor"] == 16 and "num_modules" not in saved  # MoSA merged into a plain seq_bn
    # hidden 32, bottleneck 2, 2 layers: 2 x (32*2+2 + 2*32+32) in the saved seq_bn adapter; 4 up-modules trained
    assert (result["metrics"]["adapter_params"], result["metrics"]["trainable_params"]) == (324, 900)
    assert (run / "spec.json").read_text() == spec.canonical()
    assert list((run / "tensorboard").iterdir())  # logs of the main process
    assert not list(project.runs.glob("adapt/.tmp-*")) and not list(project.runs.glob("adapt/.old-*"))
    assert not (project.runs / "_checkpoints" / spec.folder()).exists()  # obsolete once the run is done

    # the runner counts it as finished, and so does the launcher
    assert runner.is_done(spec)
    capsys.readouterr()
    assert runner.main(["--profile", "mini", "--only", "adapt", "--dry-run"]) == 0
    assert f"done  {spec.folder()}" in capsys.readouterr().out
    assert launch.main(["adapt", "--profile", "mini", "--run", spec.folder()]) == 0
    assert "already done" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["adapt", "--profile", "a", "--profile", "b", "--run", "x"],
            "error: --profile given more than once",
        ),
        (["nope", "--run", "x"], "error: argument stage: invalid choice: 'nope'"),
        (["adapt"], "error: the following arguments are required: --run"),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(argv, message, capsys):
    assert launch.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err
