"""Training checkpoints that resume exactly: trainable weights, optimizer, scheduler, every RNG, data position.

A checkpoint folder holds two files, each written atomically (temporary file, then `os.replace`), so a process
killed at any moment leaves the previous complete file:

- `last.pt`: what resuming needs: the trainable parameters (by name), the optimizer and scheduler states, the
  loop state (step, epoch, position in the epoch, history, best so far), the RNG states of every process (torch
  CPU and CUDA, Python, NumPy, and the generators of the adapter method's training hooks, `adapters.hooks`: MoSA's
  module draws) and the training settings it was written with;
- `best.pt`: the trainable parameters of the evaluation with the lowest validation loss, with its step and loss
  (what `load_best_model_at_end` loads; `training.train_lm` puts it back into the model when it finishes).

Only the trainable parameters are stored: a language adapter's checkpoint is megabytes, not the whole model.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrl_utils.adapters.hooks import hooks_of

LAST, BEST = "last.pt", "best.pt"


def atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the parameters that require grad, by name."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str = "") -> None:
    named = dict(model.named_parameters())
    missing = [n for n in state if n not in named]
    if missing:
        raise ValueError(f"{where or 'checkpoint'}: parameters {missing[:3]} are not in the model")
    with torch.no_grad():
        for n, value in state.items():
            named[n].copy_(value.to(named[n].device, named[n].dtype))


def rng_state(model: torch.nn.Module) -> dict[str, Any]:
    """Every random state a training step consumes, for this process."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "modules": hooks_of(model).random_states(),  # MoSA's module draws
    }


def set_rng_state(model: torch.nn.Module, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    hooks_of(model).set_random_states(state["modules"])


def save_last(folder: Path, checkpoint: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(checkpoint, folder / LAST)
    return folder / LAST


def save_best(folder: Path, step: int, val_loss: float, weights: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save({"step": step, "val_loss": val_loss, "weights": weights}, folder / BEST)
    return folder / BEST


def load(path: Path) -> dict[str, Any] | None:
    """A checkpoint file's content, or None when there is none."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (
        Exception
    ) as error:  # a truncated file cannot come from atomic_save, but a copied folder may hold one
        raise ValueError(f"{path}: unreadable checkpoint ({error}); delete it to start over") from error


def check_settings(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Resuming with other settings would silently mix two runs: refuse, naming the first difference."""
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise ValueError(
                f"{path}: written with {key}={saved.get(key)!r}, but this run has {key}={current.get(key)!r}; "
                f"delete {path.parent} to start over"
            )


STOP_FILE_ENV = (
    "LRL_STOP_FILE"  # set by the SLURM task (orchestration/slurm_task.py); the file appears on a signal
)


class Preempted(RuntimeError):
    """Training stopped on request (a signal before the time limit) after writing its checkpoint."""


def stop_requested(world: int) -> bool:
    """Whether the file named by $LRL_STOP_FILE exists (the main process decides for all processes)."""
    path = os.environ.get(STOP_FILE_ENV)
    if not path:
        return False
    flag = [os.path.exists(path)]
    if world > 1:
        from accelerate.utils import broadcast_object_list

        flag = broadcast_object_list(flag)
    return bool(flag[0])
