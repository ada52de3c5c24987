"""The pppl stage (`run(ctx)`, called by `notebooks/04_pppl.py`): pseudo-perplexity of a base model, a base model
with a language adapter, or a fully fine-tuned model on the FLORES-200 devtest sentences of one language."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lrl_utils.adapters.methods import load_language_adapter, load_mlm_model
from lrl_utils.data.flores_sib import load_flores_devtest
from lrl_utils.evaluation.pppl import devtest_sentences, pseudo_perplexity, select_device, warn_unknown
from lrl_utils.records.context import RunContext

RESULT_KEYS = (
    "pppl",
    "pppl_token_weighted",
    "n_sentences",
    "n_tokens",
    "precision",
    "dtype",
    "head_path",
    "unk_share",
)


def load_sentences(ctx: RunContext) -> list[str]:
    """The devtest sentences scored: read exactly as in the file (quoting by its format, or `data.quoting.flores`;
    `data.samples` allows fewer than 1012 sentences), the first `max_sentences`, Thai's long-word rule."""
    spec = ctx.spec
    devtest = load_flores_devtest(
        ctx.data(spec.devtest), spec.flores_code, quoting=spec.quoting, sample=spec.samples
    )
    return devtest_sentences(devtest["sentence"], spec.flores_code, spec.max_sentences)


def run(ctx: RunContext) -> dict[str, Any]:
    """Load the model (and adapter, with the head path it was trained with), score the sentences on the GPU when
    there is one, write `per_sentence.csv`, finish the run; returns {"scores", "per_sentence", "metrics"}."""
    spec = ctx.spec
    model_path, adapter_dir = ctx.language_model()  # base (+ adapter), or the fully fine-tuned model
    mlm, tokenizer = load_mlm_model(model_path)
    if adapter_dir is not None:
        load_language_adapter(mlm, adapter_dir, name="mlm")
    device = select_device()  # cuda when available, else cpu
    mlm.to(device)
    sentences = load_sentences(ctx)
    print(f"{len(sentences)} devtest sentences on {device}, e.g. {sentences[0]!r}")
    scores = pseudo_perplexity(mlm, tokenizer, sentences, max_length=spec.max_length)  # precision auto
    per_sentence = pd.DataFrame(scores["per_sentence"])
    per_sentence.to_csv(ctx.out_dir / "per_sentence.csv", index=False)
    print(
        f"PPPL (mean of sentences) = {scores['pppl']:.3f}; token-weighted = {scores['pppl_token_weighted']:.3f}"
        f" ({device}, precision {scores['precision']})"
    )
    warn_unknown(scores["unk_share"], f"{spec.flores_code} devtest")
    metrics = {**{k: scores[k] for k in RESULT_KEYS}, "device": str(device)}
    ctx.finish(metrics)
    return {"scores": scores, "per_sentence": per_sentence, "metrics": metrics}
