"""The language-modelling head path: one way from hidden states to vocabulary logits, for training and evaluation.

MAD-X's invertible adapter (the `inv` of `seq_bn_inv`) transforms the embedding output on the way in and is meant
to be *inverted* on the way out, just before the output projection that shares its weights with the input
embeddings. In `adapters` 1.3.0 the inverse runs only inside the library's flex LM heads (`AutoAdapterModel` +
`add_masked_lm_head`), and converting the pretrained static head into a flex head drops the static head's
vocabulary bias (ADAPTERS_NOTES A7). The paper trained and evaluated on the static `*ForMaskedLM` head, where the
inverse never runs.

The head paths (`head_path` in the adapt stage's settings):

- ``inverse`` (default): the pretrained static head, bias included, with the invertible adapter's inverse applied
  to its input by a forward pre-hook on the output embeddings (`model.get_output_embeddings()`: BERT's
  `cls.predictions.decoder`, XLM-R's `lm_head.decoder`, Llama's `lm_head`), which is how `adapters` wires the
  inverse for its plugin-interface models. Without an active invertible adapter the hook is the identity.
- ``paper_compat``: the original's path: the static head and no inverse.

The path an adapter was trained with is written next to it (`head_path.json`) and put back when it is loaded,
so training, pseudo-perplexity and reloading always agree. An adapter folder without that file (e.g. one trained
with the original code) is taken as ``paper_compat``.

The training objectives (`MaskedLMObjective`, `CausalLMObjective`) run the encoder, keep only the positions that
have a label and apply the head to those rows alone: with 15% masking, 85% of the vocabulary projections of a
full forward pass (250k wide for XLM-R) are never computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

HeadPath = Literal["inverse", "paper_compat"]
HEAD_PATHS: tuple[str, ...] = ("inverse", "paper_compat")
HEAD_PATH_FILE = "head_path.json"
_HOOK_ATTR = "_lrl_inverse_hook"


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


def set_head_path(model: nn.Module, path: str) -> None:
    """Make `model`'s LM head follow `path` (`inverse` or `paper_compat`); idempotent."""
    if path not in HEAD_PATHS:
        raise ValueError(f"head_path must be one of {HEAD_PATHS}, got {path!r}")
    handle = getattr(model, _HOOK_ATTR, None)
    if path == "paper_compat":
        if handle is not None:
            handle.remove()
            setattr(model, _HOOK_ATTR, None)
        return
    if handle is not None:
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


def head_path(model: nn.Module) -> str:
    """The head path `model` currently follows."""
    return "inverse" if getattr(model, _HOOK_ATTR, None) is not None else "paper_compat"


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
