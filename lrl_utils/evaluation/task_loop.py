"""The one epoch loop of task-adapter training, shared by text classification (`tasks.py`: TC, SA) and NER
(`ner.py`).

What the two tasks share is here: AdamW over the trainable parameters (weight decay except on biases and
LayerNorm weights), linear warm-up and decay over all steps, gradient clipping, a seeded batch order per epoch
(`torch.randperm` from a generator seeded with `config.seed`), the validation loss after every epoch, and the
trainable state of the epoch with the **lowest validation loss** (the earliest one on a tie, as in the HF
``Trainer``) restored at the end. What differs, how a batch becomes a loss and how a split is evaluated, comes
in as two functions.

`config` is a `config.train_settings.TaskTrainConfig` (read here: `epochs`, `batch_size`, `learning_rate`, `warmup_ratio`,
`weight_decay`, `max_grad_norm`, `seed`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

NO_DECAY_MARKERS = ("bias", "LayerNorm.weight", "layer_norm.weight")

# One training batch (indices into the train split) -> (objective to back-propagate, summed loss as a float,
# the number of items the summed loss is over: examples for classification, labelled tokens for NER).
BatchLoss = Callable[[Sequence[int]], tuple[torch.Tensor, float, int]]
# After an epoch: (validation loss, the epoch's validation score).
Validate = Callable[[], tuple[float, float]]


def set_seed(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` (as ``transformers.set_seed`` does on CPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of what training changes: the trainable parameters (task adapter + head) and the floating-point
    buffers (a standardising head's running statistics; integer buffers such as position ids never change)."""
    state = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    state.update(
        {name: b.detach().clone() for name, b in model.named_buffers() if torch.is_floating_point(b)}
    )
    return state


def restore_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Write a :func:`trainable_state` snapshot back into the model's parameters and buffers."""
    tensors = {**dict(model.named_buffers()), **dict(model.named_parameters())}
    with torch.no_grad():
        for name, value in state.items():
            tensors[name].copy_(value)


def optimizer_for(model: nn.Module, config: Any) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, weight decay except on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if any(m in name for m in NO_DECAY_MARKERS) else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def train_epochs(
    model: nn.Module,
    config: Any,
    n_train: int,
    batch_loss: BatchLoss,
    validate: Validate,
    score_name: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Train `config.epochs` epochs over `n_train` items and restore the best epoch's trainable parameters.

    Each epoch visits the train items in a seeded random order in batches of `config.batch_size`;
    `batch_loss(indices)` gives a batch's objective, then one clipped AdamW step and one scheduler step.
    Returns ``best_epoch`` (1-based), ``trainable_params`` and per-epoch ``train_loss`` (summed loss over
    items), ``val_loss`` and ``<score_name>`` (from `validate`).
    """
    total_steps = math.ceil(n_train / config.batch_size) * config.epochs
    optimizer = optimizer_for(model, config)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(config.seed)

    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], score_name: []}
    best_loss, best_epoch, best_state = math.inf, 0, trainable_state(model)
    for epoch in tqdm(range(1, config.epochs + 1), desc="epochs", disable=not progress):
        model.train()
        epoch_loss, epoch_count = 0.0, 0
        order = torch.randperm(n_train, generator=generator).tolist()
        for start in range(0, n_train, config.batch_size):
            objective, summed, count = batch_loss(order[start : start + config.batch_size])
            objective.backward()
            torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            epoch_loss, epoch_count = epoch_loss + summed, epoch_count + count
        val_loss, score = validate()
        history["train_loss"].append(epoch_loss / max(epoch_count, 1))
        history["val_loss"].append(val_loss)
        history[score_name].append(score)
        if val_loss < best_loss:  # strict: the earliest epoch wins a tie, as in the HF Trainer
            best_loss, best_epoch, best_state = val_loss, epoch, trainable_state(model)

    restore_trainable_state(model, best_state)
    return {"best_epoch": best_epoch, **history, "trainable_params": sum(p.numel() for p in trainable)}
