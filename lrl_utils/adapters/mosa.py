"""MoSA ("Split & Merge") sparse training of a `seq_bn` language adapter's up-projection.

MoSA (Zhang et al., arXiv 2312.02923; official code Theia-4869/MoSA) trains one bottleneck adapter as N sparse
modules and merges them into one plain adapter afterwards. This module follows the official code as summarised in
`shared/paper/MOSA.md` (§ numbers below), in the cheaper single-mask form of MOSA.md §5:

- **Split** (§1.2, `SHARE=down`): in every layer, the up-projection weight W_u (d×r) of the `seq_bn` adapter is
  partitioned into N disjoint, complete, element-wise uniformly random masks M_1..M_N of equal size (±1): a random
  permutation of the d·r entries cut into N chunks = the official equal-count quantile bins of U(0,1) scores. Masks
  are drawn once from `seed`, independently per layer, and never re-drawn. Module k starts as W_u ⊙ M_k (so the
  modules sum to the library's initial W_u) with a private copy of the up bias (biases are not split). The
  down-projection stays dense and shared.
- **Sparse training** (§1.3): on every training-mode forward, each layer draws its active module k ~ U{0..N-1}
  (per forward call × per layer, shared by the batch) from a generator seeded by `seed`, and computes
  (W_k ⊙ M_k) h + b_k with no rescaling. Multiplying by the mask in the forward masks the gradient (§5.2), and the
  inactive modules are not in the graph, so their gradients stay `None` and a `zero_grad(set_to_none=True)` AdamW
  skips them entirely: one step changes only the active module's in-mask entries and bias (weight decay included,
  as off-mask entries are 0 with zero moments). This is the official N-copy behaviour on PyTorch >= 2 (§1.3).
- **Evaluation** (§1.4): in eval mode the layer computes the merged adapter, i.e. the expectation of the
  training-time output over the module draw: W = Σ_k W_k ⊙ M_k / N, b = mean_k b_k (`MERGE="add"`; §6.3).
- **Merge** (§1.4, §5.4): `MoSA.merge()` writes that W and b into a fresh `nn.Linear` put back as the adapter's
  `adapter_up`, so the model holds an ordinary `seq_bn` adapter: the library's parameter names and count, its
  inference cost, no hooks; `language_adapters.save_language_adapter` / `load_language_adapter` work as usual.
- **Consistency loss** (§1.3; on in every released script, λ = 1, and λ = 1 by default here; 0 turns it off): a
  forward hook on the model runs a second training forward (fresh module draws and dropout, no CE) and adds
  λ · ½ [KL(sg p₂ ‖ p₁) + KL(sg p₁ ‖ p₂)] over the vocabulary, averaged over the masked (label) tokens. It doubles
  the training compute; `training.train_lm` then runs the model's own forward (every position's logits).

The training loop knows no MoSA: `MoSA` is the method's `hooks.TrainingHooks` (registered in `registry.py`),
attached to the model, so `training.train_lm` runs the model's own forward for the consistency loss and tells DDP
about the inactive modules, `training.checkpoints` saves and restores the module-draw generators, and
`save_language_adapter` merges first::

    add_language_adapter(model, "mosa", overrides={"num_modules": 4}, seed=42)   # = seq_bn + attach(...)
    history = train_lm(model, tokenizer, train_texts, val_texts, config)         # val loss = merged adapter
    save_language_adapter(model, out_dir)                                        # merged: a plain seq_bn adapter

Not implemented: the split down-projection variants (`SHARE=up/none`) and `DEEPREG` (§1.3, used for one dataset).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from adapters import SeqBnConfig
from adapters.methods.modeling import Adapter
from torch import nn
from transformers import PreTrainedModel

from lrl_utils.adapters import hooks


@dataclass(frozen=True)
class MoSAConfig:
    """MoSA settings; the defaults are the released scripts' (MOSA.md §4: N = 4, consistency λ = 1).

    In the pipeline, N and λ come from `params/adapters.yaml` (the `mosa` entry's overrides, which profiles may
    override in `adapter_overrides.mosa`), and the seed is the run's training seed (`train.seed`).
    """

    # `minimum`: bounds checked when params load (`schema.from_dict`, via `adapter_params`), before any compute
    num_modules: int = field(
        default=4, metadata={"help": "N sparse modules the up-projection is split into", "minimum": 2}
    )
    consistency_weight: float = field(
        default=1.0,
        metadata={"help": "λ of the two-pass symmetric-KL consistency loss; 0 = one pass", "minimum": 0},
    )
    seed: int = field(
        default=0, metadata={"help": "seed of the masks and of the module draws (pipeline: train.seed)"}
    )

    def __post_init__(self) -> None:
        if not isinstance(self.num_modules, int) or self.num_modules < 2:
            raise ValueError(f"MoSA needs num_modules >= 2, got {self.num_modules!r}")
        if not self.consistency_weight >= 0:
            raise ValueError(f"MoSA consistency_weight must be >= 0, got {self.consistency_weight!r}")


class MoSAUpProjection(nn.Module):
    """Stand-in for one adapter's `adapter_up` Linear during MoSA training: N masked modules, private biases."""

    def __init__(
        self,
        linear: nn.Linear,
        num_modules: int,
        mask_generator: torch.Generator,
        draw_generator: torch.Generator,
    ):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.num_modules = num_modules
        n = linear.weight.numel()
        if n < num_modules:
            raise ValueError(f"cannot split an up-projection of {n} entries into {num_modules} modules")
        # owner[i, j] = the module that owns entry (i, j): a random permutation cut into N equal-count chunks
        owner = torch.empty(n, dtype=torch.long)
        owner[torch.randperm(n, generator=mask_generator)] = torch.arange(n) * num_modules // n
        self.register_buffer("owner", owner.view_as(linear.weight).to(linear.weight.device), persistent=False)
        weight, bias = linear.weight.detach(), linear.bias.detach()
        trainable = linear.weight.requires_grad
        self.weights = nn.ParameterList(
            nn.Parameter(weight * self.mask(k), requires_grad=trainable) for k in range(num_modules)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(bias.clone(), requires_grad=trainable) for _ in range(num_modules)
        )
        self.generator = draw_generator
        self.pinned: int | None = None  # set by MoSA.pinned: use this module instead of drawing
        self.last_active: int | None = None  # the module used by the latest training forward

    def mask(self, k: int) -> torch.Tensor:
        """M_k, a boolean tensor of the weight's shape."""
        return self.owner == k

    def merged(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The merged (W, b) = (Σ_k W_k ⊙ M_k / N, mean_k b_k): the expected training-time up-projection."""
        weight = sum(w * self.mask(k) for k, w in enumerate(self.weights)) / self.num_modules
        return weight, torch.stack(list(self.biases)).mean(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.linear(x, *self.merged())
        if self.pinned is not None:
            k = self.pinned
        else:
            k = int(torch.randint(self.num_modules, (1,), generator=self.generator))
        self.last_active = k
        return F.linear(x, self.weights[k] * self.mask(k), self.biases[k])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, num_modules={self.num_modules}"


def symmetric_kl(logits_1: torch.Tensor, logits_2: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """½ [KL(sg p₂ ‖ p₁) + KL(sg p₁ ‖ p₂)] over the last dim, averaged over the positions where `mask` is true."""
    log_p1, log_p2 = logits_1[mask].float().log_softmax(-1), logits_2[mask].float().log_softmax(-1)
    kl_12 = F.kl_div(log_p1, log_p2.detach(), log_target=True, reduction="none").sum(-1)  # KL(sg p2 || p1)
    kl_21 = F.kl_div(log_p2, log_p1.detach(), log_target=True, reduction="none").sum(-1)  # KL(sg p1 || p2)
    return 0.5 * (kl_12 + kl_21).mean() if mask.any() else logits_1.sum() * 0.0


class MoSA(hooks.TrainingHooks):
    """MoSA on adapter `name` of a masked-LM model (see the module docstring); call `merge()` when training ends.

    It is the model's training hooks (`hooks.hooks_of(model)`): the consistency loss needs the model's own forward,
    inactive modules get no gradient, the module-draw generators go into checkpoints, saving merges first.

    Raises ValueError for a missing or non-`seq_bn` adapter, bad settings, or an adapter already under MoSA.
    """

    def __init__(self, model: PreTrainedModel, name: str = "mlm", config: MoSAConfig | None = None):
        self.model, self.name, self.config = model, name, config or MoSAConfig()
        adapter_config = model.adapters_config.get(name) if hasattr(model, "adapters_config") else None
        if adapter_config is None:
            raise ValueError(f"the model has no adapter named {name!r} (call add_language_adapter first)")
        if not isinstance(adapter_config, SeqBnConfig) or adapter_config.phm_layer:
            raise ValueError(f"MoSA needs a seq_bn adapter; {name!r} is {type(adapter_config).__name__}")
        if adapter_config.ln_after:
            raise ValueError(
                "MoSA's merge is exact only without ln_after (the seq_bn default); got ln_after=True"
            )
        self.adapters: list[Adapter] = [
            module
            for _, modules in sorted(model.get_adapter(name).items())
            for module in modules.values()
            if isinstance(module, Adapter)
        ]
        if not self.adapters:
            raise ValueError(f"adapter {name!r} has no bottleneck layer to split")
        if any(isinstance(a.adapter_up, MoSAUpProjection) for a in self.adapters):
            raise ValueError(f"adapter {name!r} is already under MoSA")
        if any(type(a.adapter_up) is not nn.Linear for a in self.adapters):
            raise ValueError(f"MoSA needs plain nn.Linear up-projections in adapter {name!r}")
        seed = self.config.seed
        mask_generator = torch.Generator().manual_seed(2 * seed)
        draw_generator = torch.Generator().manual_seed(2 * seed + 1)
        for (
            adapter
        ) in self.adapters:  # layer order: the masks of layer ℓ are the ℓ-th draws of mask_generator
            up = MoSAUpProjection(adapter.adapter_up, self.config.num_modules, mask_generator, draw_generator)
            up.train(adapter.adapter_up.training)
            adapter.adapter_up = up
        self.last_consistency: torch.Tensor | None = None  # the latest consistency term (detached)
        self._in_second_pass = False
        self._hook = None
        if self.config.consistency_weight > 0:
            self._hook = model.register_forward_hook(self._consistency_hook, with_kwargs=True)
        self.is_merged = False
        hooks.attach(model, self)  # what training, checkpoints and saving find, however MoSA was set up

    @property
    def full_forward(self) -> bool:
        return self.config.consistency_weight > 0

    @property
    def unused_parameters(self) -> bool:
        return not self.is_merged

    def random_states(self) -> list[torch.Tensor]:
        return [up.generator.get_state() for up in self.up_projections]

    def set_random_states(self, states: list[Any]) -> None:
        ups = self.up_projections
        if len(ups) != len(states):
            raise ValueError(
                "checkpoint: the model's MoSA setup differs from the one the checkpoint was taken with"
            )
        for up, state in zip(ups, states, strict=True):
            up.generator.set_state(state)

    def before_save(self) -> None:
        if not self.is_merged:  # the modules become one ordinary seq_bn adapter
            self.merge()

    @property
    def up_projections(self) -> list[MoSAUpProjection]:
        """The per-layer split up-projections (layer order); empty after `merge()`."""
        return [a.adapter_up for a in self.adapters if isinstance(a.adapter_up, MoSAUpProjection)]

    def last_active(self) -> list[int | None]:
        """The module each layer used in the latest training forward."""
        return [up.last_active for up in self.up_projections]

    @contextlib.contextmanager
    def pinned(self, modules: int | Sequence[int]) -> Iterator[None]:
        """Within the block, training forwards use the given module (one for all layers, or one per layer)."""
        ups = self.up_projections
        modules = [modules] * len(ups) if isinstance(modules, int) else list(modules)
        if len(modules) != len(ups) or not all(0 <= k < self.config.num_modules for k in modules):
            raise ValueError(
                f"need {len(ups)} module indices in [0, {self.config.num_modules}), got {modules}"
            )
        for up, k in zip(ups, modules, strict=True):
            up.pinned = k
        try:
            yield
        finally:
            for up in ups:
                up.pinned = None

    def _consistency_hook(self, module: nn.Module, args: tuple, kwargs: dict, output):
        labels = kwargs.get("labels")
        if not module.training or self._in_second_pass or labels is None or output.loss is None:
            return None
        self._in_second_pass = True
        try:
            second = module(*args, **{**kwargs, "labels": None})  # fresh module draws and dropout, no CE
        finally:
            self._in_second_pass = False
        consistency = symmetric_kl(output.logits, second.logits, labels != -100)
        self.last_consistency = consistency.detach()
        output.loss = output.loss + self.config.consistency_weight * consistency
        return output

    def merge(self) -> None:
        """Replace every split up-projection by one plain `nn.Linear` holding the merged (W, b); remove the hook."""
        if self.is_merged:
            raise ValueError(f"MoSA on adapter {self.name!r} is already merged")
        with torch.no_grad():
            for adapter in self.adapters:
                up = adapter.adapter_up
                weight, bias = up.merged()
                linear = nn.Linear(up.in_features, up.out_features, device=weight.device, dtype=weight.dtype)
                linear.weight.copy_(weight)
                linear.bias.copy_(bias)
                linear.requires_grad_(up.weights[0].requires_grad)
                linear.train(up.training)
                adapter.adapter_up = linear
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self.is_merged = True


def attach(model: PreTrainedModel, name: str, settings: dict[str, Any], seed: int | None) -> MoSA:
    """MoSA on the model's adapter `name` with `settings` (`MoSAConfig` fields), masks and draws seeded with `seed`
    (0 when None): the `mosa` method's `attach` (`registry.py`)."""
    return MoSA(model, name, MoSAConfig(**settings, **({"seed": seed} if seed is not None else {})))
