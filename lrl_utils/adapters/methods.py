"""Language adapters: setup, freezing, counting, save/load, for every method of `registry.py`.

The methods (`seq_bn`, `lora`, `seq_bn_inv`, `mosa`), their library configs, paper settings, own settings and
training hooks are registered in `registry.py`; this module builds any of them the same way:
`add_language_adapter` adds the method's `adapters` config (`registry.adapter_config`: `params/adapters.yaml`'s
`config` with the paper's settings and the overrides on top), freezes everything else and attaches the method's
training hooks (MoSA's); `save_language_adapter` runs the hooks' `before_save` (MoSA's merge into one plain
`seq_bn` adapter). Before that merge the counts of `count_parameters` include MoSA's N module copies.

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

import json
from pathlib import Path
from typing import Any

import adapters
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lrl_utils.adapters import registry
from lrl_utils.adapters.heads import head_path, read_head_path, saves_head, set_head_path, write_head_path
from lrl_utils.adapters.hooks import hooks_of
from lrl_utils.adapters.registry import FULL_FINETUNING


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
    config: str | None = None,
) -> dict[str, int]:
    """Add a language adapter of `method` to an LM model and make it the only trainable part.

    `config` is the `adapters` config it is built from (`params/adapters.yaml`'s `config`, carried by the run's
    spec; by default the method's own), `overrides` its settings on top of the paper's (the method's own settings,
    e.g. MoSA's `num_modules`, included). `seed` seeds the global torch RNG first, so the adapter's random
    initialisation is reproducible (the paper's `run_mlm.py` seeds with 42 before it builds the model and the
    adapter); a method with training hooks gets it too (MoSA's masks and draws; 0 when `seed` is None).

    `train_adapter(name)` freezes the encoder, unfreezes and activates the adapter; it leaves the static MLM head's
    transform (dense + LayerNorm) trainable, so everything else that still requires grad is frozen here.
    `method="fft"` adds nothing and makes every weight trainable (full fine-tuning). Returns `count_parameters`.
    """
    if method == FULL_FINETUNING:
        if overrides or config not in (None, FULL_FINETUNING):
            raise ValueError(
                f"full fine-tuning takes no adapter config or overrides, got {config!r}, {overrides}"
            )
        model.requires_grad_(True)
        return count_parameters(model, None)
    adapters.init(model)  # a no-op for a model from load_lm_model
    spec = registry.method(method)
    if seed is not None:
        torch.manual_seed(seed)
    model.add_adapter(name, config=registry.adapter_config(method, overrides, config))
    model.train_adapter(name)
    adapter_ids = {id(p) for p in adapter_parameters(model, name)}
    for p in model.parameters():
        if (
            id(p) not in adapter_ids
        ):  # the MLM head transform (cls.predictions.transform.* / lm_head.dense, LN)
            p.requires_grad_(False)
    set_head_path(model, head_path)
    if spec.attach is not None:
        spec.attach(model, name, registry.method_settings(method, overrides), seed)
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
    hooks_of(model).before_save()  # MoSA: its modules become one ordinary seq_bn adapter
    path = head_path(model)
    model.save_adapter(str(out_dir), name, with_head=saves_head(model, path))
    write_head_path(out_dir, path)
    _portable_model_name(out_dir)
    return out_dir


def _portable_model_name(folder: Path) -> None:
    """The `model_name` the `adapters` library writes into an adapter's config files is the base model's
    `name_or_path`: for a tiny model, the absolute path of its run folder. Written relative to the runs folder
    (`base_model/<run>/model`), the adapter's files are the same bytes wherever the project is (the library reads
    the field only to find adapters on the hub)."""
    from lrl_utils.config import paths
    from lrl_utils.records.results import atomic_write_text

    for file in folder.glob("*config.json"):
        data = json.loads(file.read_text(encoding="utf-8"))
        name = data.get("model_name") if isinstance(data, dict) else None
        if isinstance(name, str) and Path(name).is_absolute() and Path(name).is_relative_to(paths.runs_dir()):
            data["model_name"] = Path(name).relative_to(paths.runs_dir()).as_posix()
            atomic_write_text(file, json.dumps(data, indent=2, sort_keys=True) + "\n")


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
