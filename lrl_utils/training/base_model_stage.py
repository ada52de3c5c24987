"""The base_model stage (demo; `run(ctx)`, called by `notebooks/02_base_model.py`): a tokenizer and a tiny
mBERT / XLM-R / Llama trained on the seen languages' documents, saved as a hub model would be."""

from __future__ import annotations

from typing import Any

import torch

from lrl_utils.data.sources import DataSourceError, load_text_splits
from lrl_utils.records.context import RunContext
from lrl_utils.training import base_models


def pretraining_text(ctx: RunContext) -> tuple[list[str], list[str], dict[str, dict]]:
    """(train texts, validation texts, per corpus its share and train documents): each corpus run's splits,
    cut to its share (`shares`; all of it without)."""
    spec = ctx.spec
    train_texts, val_texts, counts = [], [], {}
    for folder, share in zip(spec.corpora, spec.shares or [1.0] * len(spec.corpora), strict=True):
        splits = load_text_splits(ctx.input(folder))
        n_train, n_val = (round(share * len(splits[k])) for k in ("train", "validation"))
        train_texts += list(splits["train"]["text"])[:n_train]
        val_texts += list(splits["validation"]["text"])[:n_val]
        counts[folder.split("--")[0].split("/")[-1]] = {"share": share, "train documents": n_train}
    if not train_texts or not val_texts:
        raise DataSourceError(
            f"{', '.join(spec.corpora)}: {len(train_texts)} train and {len(val_texts)} validation documents at "
            "these shares: pre-training needs both; give the corpora more documents or larger shares"
        )
    return train_texts, val_texts, counts


def vocabulary_text(ctx: RunContext) -> list[str]:
    """The train documents of the spec's `vocabulary_corpora`, all of them: what the tokenizer learns from
    besides the pre-training text (a vocabulary wider than what the weights see, as XLM-R's)."""
    return [
        t
        for folder in ctx.spec.vocabulary_corpora
        for t in load_text_splits(ctx.input(folder))["train"]["text"]
    ]


def run(ctx: RunContext) -> dict[str, Any]:
    """Train the tokenizer, build the tiny model (seeded with `seed`), pre-train it, save both to `model/`,
    finish the run; returns {"counts" (per corpus), "history", "metrics"}."""
    spec = ctx.spec
    train_texts, val_texts, counts = pretraining_text(ctx)
    tokenizer = base_models.train_tokenizer(
        spec.architecture,
        train_texts + vocabulary_text(ctx),
        spec.vocab_size,
        max_position=spec.max_position,
        alphabet=spec.alphabet,
    )
    torch.manual_seed(spec.seed)
    mlm = base_models.build_tiny_model(spec.architecture, spec, tokenizer)  # the spec holds the sizes
    n_params = sum(p.numel() for p in mlm.parameters())
    print(f"{type(mlm).__name__}: {n_params:,} parameters, vocabulary {len(tokenizer):,}")
    print(tokenizer.tokenize(val_texts[0])[:24])
    history = base_models.pretrain(mlm, tokenizer, train_texts, val_texts, spec.train)
    mlm.save_pretrained(ctx.out_dir / "model")
    tokenizer.save_pretrained(ctx.out_dir / "model")
    metrics = {
        "best_val_loss": history["best_val_loss"],
        "final_val_loss": history["final_val_loss"],
        "parameters": n_params,
        "vocab_size": len(tokenizer),
    }
    ctx.finish(metrics, history=history)
    return {"counts": counts, "history": history, "metrics": metrics}
