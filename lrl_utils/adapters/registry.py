"""The adapter-method registry: the one place that knows the methods (`seq_bn`, `lora`, `seq_bn_inv`, `mosa`).

The paper trains one language adapter per (base model, language, data source) with masked LM on top of a frozen
mBERT or XLM-R, with the `adapters` library (SPEC §4.2). A method's registration says everything the pipeline
needs to know about it: the `adapters` config it builds on and the paper's settings for it (the `adapters` 1.3.0
defaults, spelled out here so that a library change cannot move them silently), its own settings beyond the
library's (with their defaults and the dataclass that types and bounds them), the training hooks it attaches
(`hooks.TrainingHooks`: MoSA's module draws, consistency loss and merge), and its name in tables and figures
(label, colours; whether the paper's tables have it).

| method       | `adapters` config | settings                                                            | params (768-d, 12 layers) |
|--------------|-------------------|---------------------------------------------------------------------|---------------------------|
| `seq_bn`     | `SeqBnConfig`     | bottleneck after each FFN, reduction factor 16 (768 → 48), ReLU      | 894,528                   |
| `lora`       | `LoRAConfig`      | r 8, alpha 8 on the self-attention query and value matrices         | 294,912                   |
| `seq_bn_inv` | `SeqBnInvConfig`  | `seq_bn` + NICE invertible adapter on the embeddings, reduction 2   | 1,190,592                 |

`mosa` (not in the paper) is `seq_bn` trained with MoSA's split & merge sparse training (`mosa.py`, MOSA.md): N = 4
disjoint up-projection modules, one active per layer and step, plus the two-pass consistency loss (λ = 1), as in
MoSA's released scripts; saving merges them into one plain `seq_bn` adapter. Its own settings `num_modules` and
`consistency_weight` are overrides like the library's (`params/adapters.yaml` spells both out); its masks and
module draws are seeded with the adapter's `seed` (the pipeline's `train.seed`).

Registration order is the paper's column order (Seq_bn, LoRA, Seq_bn_inv), then the methods it does not have.
Adding a method: a module with its code where it has any (its `TrainingHooks`), one `register_adapter_method`
call below, one row of `tests/test_adapter_methods.py`'s matrix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters import AdapterConfig
from adapters.configuration.adapter_config import ADAPTER_CONFIG_MAP

from lrl_utils.adapters import mosa
from lrl_utils.adapters.hooks import TrainingHooks
from lrl_utils.config.specs import FFT

FULL_FINETUNING = FFT  # not an adapter: every weight of the model trains (the paper's FFT baseline)
FULL_FINETUNING_LABEL = "FFT"

#: attach(model, adapter name, the method's own settings, seed or None) -> the hooks it attached to the model
Attach = Callable[[Any, str, dict[str, Any], "int | None"], TrainingHooks]


@dataclass(frozen=True)
class AdapterMethod:
    """One adapter method: what builds it, what it adds to training, how reports name it."""

    name: str = field(metadata={"help": "the name used in params/*.yaml, run folders and records"})
    config_name: str = field(
        metadata={"help": "key of adapters' ADAPTER_CONFIG_MAP it builds on, e.g. 'seq_bn_inv'"}
    )
    defaults: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "paper settings (config fields)"}
    )
    description: str = field(default="", metadata={"help": "one line for docs"})
    label: str = field(
        default="", metadata={"help": "its name in tables and figures (paper: 'Seq_bn', 'LoRA')"}
    )
    in_paper: bool = field(default=False, metadata={"help": "the paper's tables have its columns"})
    colors: tuple[str, str] = field(
        default=("#6baed6", "#fd8d3c"),
        metadata={"help": "figure colours of its ConceptNet and GlotCC configs"},
    )
    fusion_color: str | None = field(
        default=None,
        metadata={"help": "figure colour of its Fusion config; None: no Fusion column of its own"},
    )
    settings: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "its own settings beyond the library config, with defaults"}
    )
    settings_class: type | None = field(
        default=None,
        metadata={"help": "dataclass whose fields type and bound `settings` (checked at params load)"},
    )
    attach: Attach | None = field(
        default=None, metadata={"help": "adds its training hooks to a model that has its adapter"}
    )


ADAPTER_METHODS: dict[str, AdapterMethod] = {}


def _check_keys(method: AdapterMethod, settings: dict[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(ADAPTER_CONFIG_MAP[method.config_name])}
    for key in settings:
        if key not in known:
            raise ValueError(
                f"unknown setting {key!r} for adapter method {method.name!r} "
                f"({type(ADAPTER_CONFIG_MAP[method.config_name]).__name__}); known: {sorted(known)}"
            )


def register_adapter_method(
    name: str, config_name: str, defaults: dict[str, Any] | None = None, **fields
) -> AdapterMethod:
    """Add a method to `ADAPTER_METHODS` (`fields`: the other `AdapterMethod` fields); ValueError for a taken
    name, an unknown library config or invalid settings."""
    if name in ADAPTER_METHODS or name == FULL_FINETUNING:
        raise ValueError(f"adapter method {name!r} is already registered")
    if config_name not in ADAPTER_CONFIG_MAP:
        raise ValueError(f"unknown adapters config {config_name!r}; known: {sorted(ADAPTER_CONFIG_MAP)}")
    method = AdapterMethod(name, config_name, dict(defaults or {}), **{"label": name, **fields})
    _check_keys(method, method.defaults)
    if method.settings and method.settings_class is not None:
        method.settings_class(**method.settings)  # the defaults must be valid settings
    ADAPTER_METHODS[name] = method
    return method


def method(name: str) -> AdapterMethod:
    """The registration of method `name`; ValueError naming the registered ones."""
    if name not in ADAPTER_METHODS:
        raise ValueError(f"unknown adapter method {name!r}; registered: {sorted(ADAPTER_METHODS)}")
    return ADAPTER_METHODS[name]


def label(name: str) -> str:
    """A method's name in tables and figures (`fft`: "FFT"); an unknown name is returned as it is."""
    if name == FULL_FINETUNING:
        return FULL_FINETUNING_LABEL
    return ADAPTER_METHODS[name].label if name in ADAPTER_METHODS else name


def builds_on(name: str, config: str) -> bool:
    """Whether the library config `config` is method `name`'s own: the same class with the same defaults
    (`pfeiffer` is `seq_bn`; `ia3` is not `lora`)."""
    own, other = ADAPTER_CONFIG_MAP[method(name).config_name], ADAPTER_CONFIG_MAP.get(config)
    return type(other) is type(own) and other.to_dict() == own.to_dict()


def split_overrides(name: str, overrides: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(library config overrides, the method's own settings) of `overrides`."""
    own = method(name).settings
    overrides = dict(overrides or {})
    return {k: v for k, v in overrides.items() if k not in own}, {
        k: v for k, v in overrides.items() if k in own
    }


def adapter_config(
    name: str, overrides: dict[str, Any] | None = None, config: str | None = None
) -> AdapterConfig:
    """The `adapters` config of method `name`: the library config `config` (`params/adapters.yaml`'s; by default
    the method's own), the paper's settings, then `overrides` on top."""
    spec = method(name)
    config = config or spec.config_name
    if not builds_on(name, config):
        raise ValueError(
            f"{config!r} is not a config of adapter method {name!r} (it builds on {spec.config_name!r})"
        )
    library, _ = split_overrides(name, overrides)
    _check_keys(spec, library)
    return ADAPTER_CONFIG_MAP[config].replace(**{**spec.defaults, **library})


def method_settings(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The method's own settings: its defaults, then the overrides of them."""
    return {**method(name).settings, **split_overrides(name, overrides)[1]}


# The paper's methods, in its column order: name (= the library config), the paper's settings, label, figure
# colours of the ConceptNet, GlotCC and Fusion configurations (blues, oranges, purples; None: not fused).
_PAPER_METHODS = (
    ("seq_bn", {"reduction_factor": 16}, "Seq_bn", ("#9ecae1", "#fdae6b", "#bcbddc")),
    ("lora", {"r": 8, "alpha": 8, "attn_matrices": ["q", "v"]}, "LoRA", ("#4292c6", "#f16913", None)),
    (
        "seq_bn_inv",
        {"reduction_factor": 16, "inv_adapter": "nice", "inv_adapter_reduction_factor": 2},
        "Seq_bn_inv",
        ("#08519c", "#a63603", "#756bb1"),
    ),
)
_DESCRIPTIONS = {
    "seq_bn": "Pfeiffer bottleneck adapter after each feed-forward block",
    "lora": "LoRA on the self-attention query and value matrices",
    "seq_bn_inv": "seq_bn plus a NICE invertible adapter on the embedding output (MAD-X language adapter)",
}
for _name, _defaults, _label, (_cn, _glot, _fusion) in _PAPER_METHODS:
    register_adapter_method(
        _name, _name, _defaults, description=_DESCRIPTIONS[_name], label=_label, in_paper=True,
        colors=(_cn, _glot), fusion_color=_fusion,
    )  # fmt: skip
# This project's additions.
register_adapter_method(
    "mosa",
    "seq_bn",
    {"reduction_factor": 16},
    description="seq_bn trained sparsely as N disjoint up-projection modules, merged into one seq_bn adapter (MoSA)",
    label="MoSA",
    colors=("#2171b5", "#d94801"),
    settings={"num_modules": 4, "consistency_weight": 1.0},  # MOSA.md §4 (params/adapters.yaml repeats them)
    settings_class=mosa.MoSAConfig,
    attach=mosa.attach,
)
