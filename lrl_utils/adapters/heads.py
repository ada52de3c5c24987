"""The language-modelling head path: how hidden states become vocabulary logits, in training and in evaluation.

MAD-X's invertible adapter (the `inv` of `seq_bn_inv`) transforms the embedding output on the way in and is meant
to be *inverted* on the way out, just before the output projection that shares its weights with the input
embeddings. In `adapters` 1.3.0 the inverse runs only inside the library's flex LM heads (`AutoAdapterModel`
with `add_masked_lm_head` or a head loaded by `load_adapter(..., with_head=True)`); the static `*ForMaskedLM` head
of an `adapters.init` model never runs it (ADAPTERS_NOTES A7). Converting the pretrained static head into a flex head
drops its vocabulary bias (A1), but a head saved in an adapter folder and loaded from there keeps it.

The original code trained its language adapters with the static head (`AutoModelForMaskedLM` + `adapters.init`
+ `AdapterTrainer`, which also saves the static head into the adapter folder) and computed pseudo-perplexity
with `AutoAdapterModel` + `load_adapter(folder, with_head=True)`, whose flex head applies the inverse to the saved
head, bias included: its `seq_bn_inv` PPPL comes from a mixed path. The two head paths (`head_path`, adapt settings):

| `head_path`         | training forward (loss, val. loss) | evaluation forward (PPPL)   | saved with the adapter |
|---------------------|------------------------------------|-----------------------------|------------------------|
| `inverse` (default) | static head + inverse              | = the training forward      | adapter, head path     |
| `paper_compat`      | static head, no inverse            | saved static head + inverse | + the static MLM head  |

- static head: the model's `*ForMaskedLM` (or `*ForCausalLM`) head, vocabulary bias included; head path:
  `head_path.json`;
- saved static head: the static head stored in the adapter folder (`head_config.json`, `pytorch_model_head.bin`,
  loaded over the base model's), else the base model's; `inverse` never loads one;
- + inverse: a forward pre-hook on the output embeddings (`model.get_output_embeddings()`: BERT's
  `cls.predictions.decoder`, XLM-R's `lm_head.decoder`, Llama's `lm_head`) runs the active invertible adapter in
  reverse (`invertible_adapters_forward(..., rev=True)`) after the head's dense + GELU + LayerNorm, where the
  library's flex head and its plugin-interface models put it. Without an active invertible adapter it is the
  identity: for `seq_bn`, `lora` and `mosa` the paths compute the same numbers.

Under `inverse` the hook is always on. Under `paper_compat` it is on only inside :func:`evaluation_head`, which
`evaluation.pseudo_perplexity` and its reference loop enter; the training objectives and `train_lm`'s validation
loss run without it. For the same weights the two evaluation forwards are the same function: the paths differ in
what the adapter was trained against (and in what is saved). The saved static head holds the tied V x H output
matrix (about 0.37 GB for mBERT, 0.77 GB for XLM-R base, in float32); it is saved for masked LMs only (decoders
have no pseudo-perplexity), so that the original's PPPL script reads a `paper_compat` folder as it read its own.

The path an adapter was trained with is written next to it (`head_path.json`) and put back when it is loaded
(`language_adapters.load_language_adapter`), so training, pseudo-perplexity and reloading always agree. An adapter
folder without that file (e.g. one trained with the original code) is taken as ``paper_compat``.

The training objectives (`MaskedLMObjective`, `CausalLMObjective`) run the encoder, keep only the positions that
have a label and apply the head to those rows alone: with 15% masking, 85% of the vocabulary projections of a
full forward pass (250k wide for XLM-R) are never computed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

HeadPath = Literal["inverse", "paper_compat"]
HEAD_PATHS: tuple[str, ...] = ("inverse", "paper_compat")
HEAD_PATH_FILE = "head_path.json"
_HOOK_ATTR = "_lrl_inverse_hook"
_PATH_ATTR = "_lrl_head_path"


def encoder_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """The encoder and the static MLM head of a `*ForMaskedLM` model, or None if not recognised.

    BertForMaskedLM: `model.bert` + `model.cls`; (XLM-)RobertaForMaskedLM: `model.roberta` + `model.lm_head`.
    Both heads map hidden vectors (..., H) to vocabulary logits (..., V). Calling the encoder directly keeps the
    adapters active: an `adapters.init` encoder opens its own adapter context (`ForwardContext.wrap_base`).
    """
    prefix = getattr(model, "base_model_prefix", "")
    encoder = getattr(model, prefix, None) if prefix else None
    for head_name in ("cls", "lm_head"):
        head = getattr(model, head_name, None)
        if encoder is not None and isinstance(head, nn.Module):
            return encoder, head
    return None


def _inverse_pre_hook(base_model: nn.Module, module: nn.Module, args: tuple) -> tuple:
    hidden = args[0]
    if hidden.dim() == 2:  # gathered rows (tokens, H): the coupling blocks expect (batch, seq, H)
        return (base_model.invertible_adapters_forward(hidden[None], rev=True)[0], *args[1:])
    return (base_model.invertible_adapters_forward(hidden, rev=True), *args[1:])


def _inverse_hooked(model: nn.Module) -> bool:
    return getattr(model, _HOOK_ATTR, None) is not None


def _hook_inverse(model: nn.Module) -> None:
    """Run the invertible adapter's inverse before `model`'s output projection (idempotent)."""
    if _inverse_hooked(model):
        return
    base = getattr(model, "base_model", model)
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is None or not hasattr(base, "invertible_adapters_forward"):
        raise ValueError(
            "head_path 'inverse' needs an adapters.init-ed model with output embeddings "
            f"({type(model).__name__} has none)"
        )
    hook = output.register_forward_pre_hook(lambda module, args: _inverse_pre_hook(base, module, args))
    setattr(model, _HOOK_ATTR, hook)


def _unhook_inverse(model: nn.Module) -> None:
    handle = getattr(model, _HOOK_ATTR, None)
    if handle is not None:
        handle.remove()
        setattr(model, _HOOK_ATTR, None)


def set_head_path(model: nn.Module, path: str) -> None:
    """Make `model`'s LM head follow `path` (`inverse` or `paper_compat`); idempotent.

    Afterwards the model's forward is the path's *training* forward (the inverse applied under `inverse`, not under
    `paper_compat`); :func:`evaluation_head` gives the evaluation forward."""
    if path not in HEAD_PATHS:
        raise ValueError(f"head_path must be one of {HEAD_PATHS}, got {path!r}")
    if path == "inverse":
        _hook_inverse(model)
    else:
        _unhook_inverse(model)
    setattr(model, _PATH_ATTR, path)


def head_path(model: nn.Module, default: str | None = "paper_compat") -> str | None:
    """The head path `model` follows: the one `set_head_path` gave it, else `default` (a model without a head path
    set runs its static head without the inverse, i.e. `paper_compat`'s training forward)."""
    return getattr(model, _PATH_ATTR, None) or default


def inverse_applied(model: nn.Module) -> bool:
    """Whether `model`'s forward currently runs an inverse before its output projection (the hook is installed;
    it is the identity while no invertible adapter is active)."""
    return _inverse_hooked(model)


@contextmanager
def evaluation_head(model: nn.Module) -> Iterator[None]:
    """Inside, `model` runs its head path's evaluation forward: the inverse before the output projection on both
    paths. For `paper_compat` this is the original's `AutoAdapterModel` flex head (its training forward has no
    inverse); for `inverse`, for an `AutoAdapterModel` (its flex heads run the inverse themselves) and for a model
    whose head has no inverse to run (no `adapters.init`, no output embeddings) nothing changes."""
    from adapters import ModelWithFlexibleHeadsAdaptersMixin

    base = getattr(model, "base_model", model)
    temporary = (
        not _inverse_hooked(model)
        and not isinstance(model, ModelWithFlexibleHeadsAdaptersMixin)
        and hasattr(base, "invertible_adapters_forward")
        and hasattr(model, "get_output_embeddings")
        and model.get_output_embeddings() is not None
    )
    if temporary:
        _hook_inverse(model)
    try:
        yield
    finally:
        if temporary:
            _unhook_inverse(model)


def saves_head(model: nn.Module, path: str) -> bool:
    """Whether the adapter folder gets the static MLM head too: under `paper_compat`, for a masked LM (the
    original's layout, which its pseudo-perplexity script loads with `with_head=True`)."""
    return path == "paper_compat" and type(model).__name__.endswith("ForMaskedLM")


def write_head_path(folder: str | Path, path: str) -> None:
    if path not in HEAD_PATHS:
        raise ValueError(f"head_path must be one of {HEAD_PATHS}, got {path!r}")
    Path(folder, HEAD_PATH_FILE).write_text(json.dumps({"head_path": path}) + "\n", encoding="utf-8")


def read_head_path(folder: str | Path) -> str:
    """The head path recorded in an adapter folder; `paper_compat` when there is no record."""
    file = Path(folder, HEAD_PATH_FILE)
    if not file.exists():
        return "paper_compat"
    path = json.loads(file.read_text(encoding="utf-8")).get("head_path")
    if path not in HEAD_PATHS:
        raise ValueError(f"{file}: head_path must be one of {HEAD_PATHS}, got {path!r}")
    return path


def _mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, n_tokens: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy in fp32; 0 (with a graph, for DDP) when a batch has no target token."""
    return F.cross_entropy(logits.float(), targets, reduction="sum") / n_tokens.clamp(min=1)


class MaskedLMObjective(nn.Module):
    """Masked-LM loss with the vocabulary projection computed only at the labelled (masked) positions.

    `forward(input_ids, attention_mask, labels)` returns `(mean loss over labelled tokens, number of them)`, the
    same loss as `model(**batch).loss`. `full_forward=True` (or a model without a recognised encoder/head split)
    runs the model's own forward instead, e.g. for MoSA's consistency loss, which needs every position's logits.
    """

    def __init__(self, model: nn.Module, full_forward: bool = False):
        super().__init__()
        self.model = model
        self.split = None if full_forward else encoder_and_head(model)

    def forward(self, input_ids, attention_mask, labels, **extra) -> tuple[torch.Tensor, torch.Tensor]:
        selected = labels != -100
        n_tokens = selected.sum()
        if self.split is None:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **extra)
            return out.loss, n_tokens
        encoder, head = self.split
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        logits = head(hidden[selected])  # (masked tokens, V)
        return _mean_cross_entropy(logits, labels[selected], n_tokens), n_tokens


class CausalLMObjective(nn.Module):
    """Next-token loss of a decoder (`*ForCausalLM`) with the output projection only at positions with a target.

    Labels are the input ids with padding set to -100 (`DataCollatorForLanguageModeling(mlm=False)`); position t
    predicts token t + 1. Returns `(mean loss over predicted tokens, number of them)`.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels, **extra) -> tuple[torch.Tensor, torch.Tensor]:
        targets = labels[:, 1:]
        selected = targets != -100
        decoder = self.model.get_decoder()
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        logits = self.model.get_output_embeddings()(hidden[:, :-1][selected])
        n_tokens = selected.sum()
        return _mean_cross_entropy(logits, targets[selected], n_tokens), n_tokens


def objective_for(model: nn.Module, objective: str, full_forward: bool = False) -> nn.Module:
    """The training objective module for `objective` (`mlm` or `clm`)."""
    if objective == "mlm":
        return MaskedLMObjective(model, full_forward=full_forward)
    if objective == "clm":
        return CausalLMObjective(model)
    raise ValueError(f"objective must be 'mlm' or 'clm', got {objective!r}")
