"""Language adapters: the method registry (`seq_bn`, `seq_bn_inv`, `lora`, `mosa`), setup, freezing, counting, save/load.

The paper trains one language adapter per (base model, language, data source) with masked LM on top of a frozen
mBERT or XLM-R, with the `adapters` library (SPEC §4.2). The three methods, with the paper's settings (which are the
`adapters` 1.3.0 defaults, spelled out here so that a library change cannot move them silently):

| method       | `adapters` config | settings                                                            | params (768-d, 12 layers) |
|--------------|-------------------|---------------------------------------------------------------------|---------------------------|
| `seq_bn`     | `SeqBnConfig`     | bottleneck after each FFN, reduction factor 16 (768 → 48), ReLU      | 894,528                   |
| `seq_bn_inv` | `SeqBnInvConfig`  | `seq_bn` + NICE invertible adapter on the embeddings, reduction 2   | 1,190,592                 |
| `lora`       | `LoRAConfig`      | r 8, alpha 8 on the self-attention query and value matrices         | 294,912                   |

`mosa` (not in the paper) is `seq_bn` trained with MoSA's split & merge sparse training (`mosa.py`, MOSA.md): N = 4
disjoint up-projection modules, one active per layer and step, plus the two-pass consistency loss (λ = 1), as in
MoSA's released scripts; `save_language_adapter` merges them into one plain `seq_bn` adapter. Its overrides may
set `num_modules` and `consistency_weight` (`params/adapters.yaml` spells both out); the masks and module draws
are seeded with `add_language_adapter`'s `seed` (the pipeline's `train.seed`). Before the merge, the counts of
`count_parameters` include the N module copies.

The tiny demo models override the sizes through `overrides` (e.g. `{"reduction_factor": 4}`).

Setup, as in the paper's `run_mlm.py` (ADAPTERS_NOTES A3)::

    model, tokenizer = load_mlm_model("FacebookAI/xlm-roberta-base")   # AutoModelForMaskedLM + adapters.init
    counts = add_language_adapter(model, "seq_bn_inv")                  # adapter "mlm", only it trains
    history = train_lm(model, tokenizer, train_texts, val_texts, TrainConfig())
    save_language_adapter(model, out_dir)

`train_adapter` freezes the encoder but leaves the static MLM head's transform (dense + LayerNorm, 592,128
parameters at 768-d) trainable; `add_language_adapter` freezes it too, so exactly the adapter trains, as the paper
states ("all base weights, including the MLM head, are frozen").

The LM head path (`lm_heads`): `add_language_adapter` sets `head_path` (`inverse`, the default: the pretrained
static head, bias included, with the invertible adapter's inverse before the output projection, in training and
pseudo-perplexity; `paper_compat`: the original's mixed path, trained on the static head without the inverse and
scored with it, as its `AutoAdapterModel` evaluation did). `save_language_adapter` records it next to the adapter
(under `paper_compat` with the static MLM head, as the original saved it) and `load_language_adapter` restores it
(under `paper_compat` with the saved head), so training, pseudo-perplexity and reloading use one path.

Two more ways to adapt a model to a language, handled by the same functions:

- `fft` (the paper's FFT baseline, continued pre-training): no adapter, every weight trains (the MLM head too);
  `save_language_adapter` then writes the whole model (`save_pretrained`), which downstream stages use as their
  base model.
- causal-LM language adapters (the paper's LLaMA-3-8B `seq_bn_inv` adapters): `load_lm_model(path, "clm")` gives a
  `*ForCausalLM` model; the adapter is named `clm`, as in the paper; the same head paths apply to its `lm_head`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import adapters
import torch
from adapters import AdapterConfig
from adapters.configuration.adapter_config import ADAPTER_CONFIG_MAP
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lrl_utils.adapters.heads import head_path, read_head_path, saves_head, set_head_path, write_head_path


@dataclass(frozen=True)
class AdapterMethod:
    """One adapter method: the `adapters` config it builds on and the paper's settings for it."""

    name: str = field(metadata={"help": "the name used in params/*.yaml and run folders"})
    config_name: str = field(metadata={"help": "key of adapters' ADAPTER_CONFIG_MAP, e.g. 'seq_bn_inv'"})
    defaults: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "paper settings (config fields)"}
    )
    description: str = field(default="", metadata={"help": "one line for tables and docs"})
    sparse: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "MoSA settings (mosa.MoSAConfig fields): split & merge sparse training of the adapter"
        },
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
    name: str,
    config_name: str,
    defaults: dict[str, Any] | None = None,
    description: str = "",
    sparse: dict[str, Any] | None = None,
) -> AdapterMethod:
    """Add a method to `ADAPTER_METHODS`; raises ValueError for a taken name or invalid settings."""
    if name in ADAPTER_METHODS:
        raise ValueError(f"adapter method {name!r} is already registered")
    if config_name not in ADAPTER_CONFIG_MAP:
        raise ValueError(f"unknown adapters config {config_name!r}; known: {sorted(ADAPTER_CONFIG_MAP)}")
    method = AdapterMethod(name, config_name, dict(defaults or {}), description, sparse)
    _check_keys(method, method.defaults)
    ADAPTER_METHODS[name] = method
    return method


register_adapter_method(
    "seq_bn",
    "seq_bn",
    {"reduction_factor": 16},
    "Pfeiffer bottleneck adapter after each feed-forward block",
)
register_adapter_method(
    "seq_bn_inv",
    "seq_bn_inv",
    {"reduction_factor": 16, "inv_adapter": "nice", "inv_adapter_reduction_factor": 2},
    "seq_bn plus a NICE invertible adapter on the embedding output (MAD-X language adapter)",
)
register_adapter_method(
    "lora",
    "lora",
    {"r": 8, "alpha": 8, "attn_matrices": ["q", "v"]},
    "LoRA on the self-attention query and value matrices",
)


register_adapter_method(
    "mosa",
    "seq_bn",
    {"reduction_factor": 16},
    "seq_bn trained sparsely as N disjoint up-projection modules, merged into one seq_bn adapter (MoSA)",
    sparse={"num_modules": 4, "consistency_weight": 1.0},  # MOSA.md §4 (params/adapters.yaml repeats them)
)


FULL_FINETUNING = "fft"  # not an adapter: every weight of the model trains (the paper's FFT baseline)


def _method(name: str) -> AdapterMethod:
    if name not in ADAPTER_METHODS:
        raise ValueError(f"unknown adapter method {name!r}; registered: {sorted(ADAPTER_METHODS)}")
    return ADAPTER_METHODS[name]


def _split_overrides(method: AdapterMethod, overrides: dict[str, Any] | None) -> tuple[dict, dict]:
    """(library config overrides, MoSA overrides): a sparse method also takes MoSAConfig fields."""
    overrides = dict(overrides or {})
    sparse = {
        k: overrides.pop(k) for k in list(overrides) if method.sparse is not None and k in method.sparse
    }
    return overrides, sparse


def adapter_config(name: str, overrides: dict[str, Any] | None = None) -> AdapterConfig:
    """The `adapters` config object of method `name` with the paper's settings, then `overrides` on top."""
    method = _method(name)
    overrides, _ = _split_overrides(method, overrides)
    _check_keys(method, overrides)
    return ADAPTER_CONFIG_MAP[method.config_name].replace(**{**method.defaults, **overrides})


def load_lm_model(
    name_or_path: str | Path, objective: str = "mlm"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A masked-LM (`mlm`) or causal-LM (`clm`) checkpoint with its static LM head, made adapter-ready."""
    if objective not in ("mlm", "clm"):
        raise ValueError(f"objective must be 'mlm' or 'clm', got {objective!r}")
    auto = AutoModelForMaskedLM if objective == "mlm" else AutoModelForCausalLM
    model = auto.from_pretrained(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    adapters.init(model)
    return model, tokenizer


def load_mlm_model(name_or_path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A masked-LM checkpoint (hub id or folder) with its static MLM head, made adapter-ready (`adapters.init`)."""
    return load_lm_model(name_or_path, "mlm")


def adapter_parameters(model: PreTrainedModel, name: str = "mlm") -> list[torch.nn.Parameter]:
    """The parameters of adapter `name` (every layer's modules and the invertible adapter), each once."""
    params: dict[int, torch.nn.Parameter] = {}
    for modules in model.get_adapter(name).values():  # {layer (-1 = shared/invertible): {location: module}}
        for module in modules.values():
            for p in module.parameters() if isinstance(module, torch.nn.Module) else [module]:
                params[id(p)] = p
    return list(params.values())


def count_parameters(model: PreTrainedModel, name: str = "mlm") -> dict[str, int]:
    """`adapter_params` (as `adapter_summary` counts), `trainable_params` (what the optimizer would get) and
    `base_params` (the encoder without the adapter and without the MLM head: the paper's % denominator).
    With `name=None` (full fine-tuning) there is no adapter: `adapter_params` is 0."""
    adapter = adapter_parameters(model, name) if name is not None else []
    adapter_ids = {id(p) for p in adapter}
    return {
        "adapter_params": sum(p.numel() for p in adapter),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "base_params": sum(p.numel() for p in model.base_model.parameters() if id(p) not in adapter_ids),
    }


def add_language_adapter(
    model: PreTrainedModel,
    method: str,
    name: str = "mlm",
    overrides: dict[str, Any] | None = None,
    head_path: str = "inverse",
    seed: int | None = None,
) -> dict[str, int]:
    """Add a language adapter of `method` to an LM model and make it the only trainable part.

    `seed` seeds the global torch RNG first, so the adapter's random initialisation is reproducible (the paper's
    `run_mlm.py` seeds with 42 before it builds the model and the adapter); for `mosa` it also seeds the module
    masks and draws (`MoSAConfig.seed`; 0 when `seed` is None).

    `train_adapter(name)` freezes the encoder, unfreezes and activates the adapter; it leaves the static MLM head's
    transform (dense + LayerNorm) trainable, so everything else that still requires grad is frozen here.
    `method="fft"` adds nothing and makes every weight trainable (full fine-tuning). Returns `count_parameters`.
    """
    if method == FULL_FINETUNING:
        if overrides:
            raise ValueError(f"full fine-tuning takes no adapter overrides, got {sorted(overrides)}")
        model.requires_grad_(True)
        return count_parameters(model, None)
    adapters.init(model)  # a no-op for a model from load_lm_model
    spec = _method(method)
    if seed is not None:
        torch.manual_seed(seed)
    model.add_adapter(name, config=adapter_config(method, overrides))
    model.train_adapter(name)
    adapter_ids = {id(p) for p in adapter_parameters(model, name)}
    for p in model.parameters():
        if id(p) not in adapter_ids:
            p.requires_grad_(
                False
            )  # the MLM head transform (cls.predictions.transform.* / lm_head.dense, LN)
    set_head_path(model, head_path)
    if spec.sparse is not None:  # MoSA: merged into a plain adapter by save_language_adapter
        from lrl_utils.adapters.mosa import MoSA, MoSAConfig

        settings = {**spec.sparse, **_split_overrides(spec, overrides)[1]}
        if seed is not None:
            settings["seed"] = seed
        MoSA(model, name, MoSAConfig(**settings))  # registers itself as model._lrl_mosa
    return count_parameters(model, name)


def save_language_adapter(
    model: PreTrainedModel,
    out_dir: str | Path,
    name: str | None = "mlm",
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> Path:
    """Write adapter `name` (config, weights and head path) to `out_dir`; with `name=None` (full fine-tuning) the
    whole model (and `tokenizer`), loadable as a base model.

    The static MLM head belongs to the base model and is not written, except under head path `paper_compat`
    (`lm_heads.saves_head`): the original's `AdapterTrainer` saved it into the adapter folder and its
    pseudo-perplexity loaded it from there (`AutoAdapterModel` + `load_adapter(..., with_head=True)`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if name is None:
        model.save_pretrained(str(out_dir))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(out_dir))
        return out_dir
    mosa = getattr(model, "_lrl_mosa", None)
    if mosa is not None and not mosa.is_merged:  # MoSA modules become one ordinary seq_bn adapter
        mosa.merge()
    path = head_path(model)
    model.save_adapter(str(out_dir), name, with_head=saves_head(model, path))
    write_head_path(out_dir, path)
    return out_dir


def load_language_adapter(model: PreTrainedModel, adapter_dir: str | Path, name: str = "mlm") -> str:
    """Load a saved language adapter into an `adapters.init`-ed model as `name`, activate it and restore the head
    path it was trained with; returns the name.

    Under `paper_compat` (also a folder without `head_path.json`, e.g. one the original code wrote) a static head
    saved in the folder is loaded over the model's, bias included, as the original's evaluation loaded it
    (`with_head=True`); a folder without one keeps the model's head. `inverse` never loads a head."""
    path = read_head_path(adapter_dir)
    loaded = model.load_adapter(str(adapter_dir), load_as=name, with_head=path == "paper_compat")
    model.set_active_adapters(loaded)
    set_head_path(model, path)
    return loaded
