"""Shared fixtures: a throw-away project root (params copied, notebooks chosen per test), the real samples, and
the minimal profile run once through the real notebooks for the tests that read its runs."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path | None:
    env = os.environ.get("LRL_SHARED_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path if path.is_dir() else None


def toy_corpus(n: int, seed: int) -> list[str]:
    """`n` short sentences of accented words (seeded): text for tiny tokenizers and models in tests."""
    import random

    rng = random.Random(seed)
    words = ["Ána", "sieht", "den", "Hünd", "la", "fenêtre", "prüft", "Öl", "in", "Zürich", "à", "Orléans"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 9))) + "." for _ in range(n)]


def save_tiny_base(architecture: str, out_dir: Path, texts: list[str], bias_std: float = 0.0) -> Path:
    """Train a 200-token tokenizer on `texts`, build a random tiny MLM (hidden 32, 2 layers; seed 0), optionally
    draw a non-zero output bias, and save both to `out_dir` like a checkpoint `load_mlm_model` reads."""
    import torch

    from lrl_utils.config.params import TinyModel
    from lrl_utils.training.base_models import build_tiny_model, train_tokenizer

    tokenizer = train_tokenizer(architecture, texts, vocab_size=200)
    torch.manual_seed(0)
    model = build_tiny_model(architecture, TinyModel(hidden_size=32, num_layers=2, num_heads=2), tokenizer)
    if bias_std:
        with torch.no_grad():
            model.get_output_embeddings().bias.normal_(0, bias_std)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for the main process of a launched multi-process run)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_tree(pid: int) -> None:
    """SIGKILL process `pid` and all its descendants (collected first: orphans would be lost; launched workers
    run in sessions of their own)."""
    import contextlib

    import psutil

    try:
        root = psutil.Process(pid)
        family = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread; two OpenMP threads on a shared 2-core machine can be 10x slower.

    Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")` in a test module."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def shared() -> Path:
    path = shared_data()
    if path is None:
        pytest.skip("../shared/data not found: real-sample tests need the shared folder (or LRL_SHARED_DATA)")
    return path


class Project:
    """A temporary project root: `params/` copied from the repo, `notebooks/` linked or replaced."""

    def __init__(self, root: Path):
        self.root = root
        shutil.copytree(REPO / "params", root / "params")

    def add_profile(self, name: str, data: dict) -> None:
        (self.root / "params" / "profiles" / f"{name}.yaml").write_text(
            yaml.safe_dump(data), encoding="utf-8"
        )

    def edit_yaml(self, rel: str, text: str) -> None:
        (self.root / rel).write_text(text, encoding="utf-8")

    def use_real_notebooks(self) -> None:
        (self.root / "notebooks").symlink_to(REPO / "notebooks")

    @property
    def runs(self) -> Path:
        return self.root / "runs"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.setenv("LRL_ROOT", str(root))
    monkeypatch.setenv("LRL_RUNS", str(root / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return Project(root)


def tiny_profile(**changes) -> dict:
    """A minimal demo-mode profile: one unseen language, one tiny model, one adapter, one source."""
    prof = {
        "description": "test profile",
        "data": {"mode": "demo", "world_seed": 0},
        "languages": ["qac"],
        "models": ["tiny-xlmr"],
        "adapters": ["seq_bn"],
        "sources": ["glotcc"],
        "tasks": ["tc"],
        "seeds": [1],
        "base_model": {
            "languages": ["qab"],
            "train": {
                "max_steps": 30,
                "batch_size": 16,
                "learning_rate": 1e-3,
                "max_length": 32,
                "eval_every": 15,
            },
        },
        "adapt": {
            "glotcc": {
                "max_steps": 10,
                "batch_size": 8,
                "learning_rate": 1e-3,
                "max_length": 32,
                "eval_every": 5,
            }
        },
        "finetune": {"tc": {"epochs": 1, "batch_size": 32, "learning_rate": 1e-3, "max_length": 32}},
        "pppl": {"max_sentences": 10, "max_length": 32},
        "jobs": 2,
    }
    prof.update(changes)
    return prof


def mini_profile() -> dict:
    """`tiny_profile` with all three tasks (short SA and NER schedules): 14 runs, preprocessing to the report."""
    prof = tiny_profile(tasks=["tc", "sa", "ner"])
    short = {"epochs": 1, "batch_size": 32, "learning_rate": 1e-3, "max_length": 32}
    prof["finetune"].update(sa=short, ner=short)
    return prof


@dataclass(frozen=True)
class MiniGrid:
    project: Project
    code: int  # the runner's exit code
    output: str  # what it printed

    def use(self, monkeypatch) -> Project:
        """Point the project variables at this grid's project (for `Grid("mini")` and further runner calls)."""
        monkeypatch.setenv("LRL_ROOT", str(self.project.root))
        monkeypatch.setenv("LRL_RUNS", str(self.project.runs))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        return self.project


@pytest.fixture(scope="session")
def mini_grid(tmp_path_factory) -> MiniGrid:
    """The profile `mini` (`mini_profile`, 2 jobs) run once through the real notebooks by the runner; the tests
    that read its runs (tests/test_end_to_end.py, tests/test_determinism.py) only add runs of their own."""
    from lrl_utils.orchestration.runner import main

    root = tmp_path_factory.mktemp("mini") / "proj"
    root.mkdir()
    with pytest.MonkeyPatch.context() as env:
        grid = MiniGrid(Project(root), 0, "")
        grid.use(env)
        grid.project.use_real_notebooks()
        grid.project.add_profile("mini", mini_profile())
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = main(["--profile", "mini"])
    return MiniGrid(grid.project, code, printed.getvalue())
