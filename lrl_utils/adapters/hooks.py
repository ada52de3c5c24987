"""Training hooks: what an adapter method adds to the training of its adapter, beyond the library's forward.

The training loop (`training.loop.train_lm`), the checkpoints (`training.checkpoints`) and the adapter's save
(`methods.save_language_adapter`) ask `hooks_of(model)` instead of knowing any method. A method that needs more
than the `adapters` library's own training (MoSA: module draws, a consistency loss, a merge before saving)
implements `TrainingHooks` and `attach`es its hooks to the model when its adapter is added
(`registry.AdapterMethod.attach`); every other model gets `NO_HOOKS`, which change nothing.
"""

from __future__ import annotations

import weakref
from typing import Any


class TrainingHooks:
    """The hook points of training; these defaults add nothing (the library's methods, full fine-tuning)."""

    @property
    def full_forward(self) -> bool:
        """The training loss needs the model's own forward (every position's logits), not the target-only
        projection of `heads.objective_for` (MoSA's consistency loss)."""
        return False

    @property
    def unused_parameters(self) -> bool:
        """Some trainable parameters get no gradient in a step (MoSA's inactive modules): DDP must look for them."""
        return False

    def random_states(self) -> list[Any]:
        """States of the generators that training forwards draw from, saved in every checkpoint (`rng.modules`)."""
        return []

    def set_random_states(self, states: list[Any]) -> None:
        """Restore `random_states()` from a checkpoint; ValueError when they are not this setup's."""
        if states:
            raise ValueError(
                f"checkpoint: it holds {len(states)} generator states; this model's hooks take none"
            )

    def before_save(self) -> None:
        """Turn the trained adapter into what is saved (MoSA: merge its modules into one plain adapter)."""


NO_HOOKS = TrainingHooks()
_ATTACHED: weakref.WeakKeyDictionary[Any, TrainingHooks] = weakref.WeakKeyDictionary()


def attach(model: Any, hooks: TrainingHooks) -> None:
    """Make `hooks` the training hooks of `model` (one set per model); ValueError when it has some already."""
    if model in _ATTACHED:
        raise ValueError(f"the model already has training hooks ({type(_ATTACHED[model]).__name__})")
    _ATTACHED[model] = hooks


def hooks_of(model: Any) -> TrainingHooks:
    """The training hooks attached to `model`, or `NO_HOOKS`."""
    return _ATTACHED.get(model, NO_HOOKS)
