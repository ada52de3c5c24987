"""Same spec, same numbers: tokenizers and tiny models are byte-identical across processes, runs repeat exactly.

The causes this guards against (docs/architecture.md, "Determinism"): the `tokenizers` trainers iterate Rust hash
maps that are seeded afresh in every process (WordPiece numbers its "##c" forms in that order and breaks merge
ties by those numbers; Unigram sums its EM statistics in that order and hands the dropped characters their scores
in that order), and torch's CPU kernels split products and reductions by the thread count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_profile

from lrl_utils.orchestration.grid import Grid
from lrl_utils.orchestration.runner import Runner, main

HERE = Path(__file__).resolve().parent


def train_in_child(out: Path, **env: str) -> subprocess.Popen:
    out.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(HERE.parent), "HF_HUB_OFFLINE": "1", **env}
    return subprocess.Popen([sys.executable, str(HERE / "determinism_child.py"), str(out)], env=environment)


def test_tokenizers_and_a_tiny_model_trained_in_two_processes_are_byte_identical(tmp_path):
    """Different hash seeds, tokenizers' parallelism and OpenMP/Rayon pools; the runner's one torch thread. The
    two processes run at the same time."""
    children = [
        train_in_child(
            tmp_path / side,
            PYTHONHASHSEED=hash_seed,
            TOKENIZERS_PARALLELISM=parallel,
            RAYON_NUM_THREADS=pool,
            OMP_NUM_THREADS=pool,
            LRL_THREADS="1",
        )
        for side, hash_seed, parallel, pool in (("a", "1", "false", "1"), ("b", "2", "true", "2"))
    ]
    try:
        assert [child.wait(timeout=600) for child in children] == [0, 0]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for name in ("bert.tokenizer.json", "xlm-roberta.tokenizer.json", "model/model.safetensors"):
        a, b = ((tmp_path / side / name).read_bytes() for side in "ab")
        assert a == b, f"{name} differs between the two processes"


def test_every_run_gets_one_torch_thread_whatever_the_jobs(project):
    project.add_profile("mini", tiny_profile())
    grid = Grid("mini")
    for jobs in (1, 2, 3, 64):
        env = Runner(grid, jobs=jobs, force=set()).run_env()
        assert env["LRL_THREADS"] == env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"


def metrics_of(runs: Path) -> dict[str, dict]:
    """run folder → its metrics, without what measures the machine rather than the spec (times, memory)."""
    timing = ("seconds", "time", "per_second", "memory", "rss")
    out = {}
    for path in sorted(runs.glob("*/*/result.json")):
        metrics = json.loads(path.read_text())["metrics"]
        kept = {k: v for k, v in metrics.items() if not any(t in k for t in timing)}
        out[str(path.parent.relative_to(runs))] = kept
    return out


@pytest.mark.slow
def test_two_runs_of_one_spec_give_identical_metrics(mini_grid, tmp_path, monkeypatch, capsys):
    """A fine-tuning run and all its inputs (corpus, tokenizer + base model, adapter), twice from scratch: once
    with one job, here, and once with two, in the whole profile `mini` (conftest's `mini_grid`, 2 jobs): the same
    metrics, to the last digit."""
    mini_grid.use(monkeypatch)
    assert mini_grid.code == 0, mini_grid.output
    (target,) = [
        s.folder()
        for s in Grid("mini").expand()
        if s.folder().startswith("finetune/") and ".tc.glotcc." in s.folder()
    ]
    runs = tmp_path / "runs"
    monkeypatch.setenv("LRL_RUNS", str(runs))
    assert main(["--profile", "mini", "--target", target, "--jobs", "1"]) == 0, capsys.readouterr().out
    first, second = metrics_of(runs), metrics_of(mini_grid.project.runs)
    assert len(first) >= 4 and target in first and first.keys() <= second.keys()
    for folder, metrics in first.items():
        assert metrics == second[folder], folder
