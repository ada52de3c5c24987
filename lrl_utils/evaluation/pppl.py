"""Pseudo-perplexity (PPPL) of masked language models, the paper's MLM metric (SPEC §5.1).

For one sentence, ``ids = tokenizer.encode(sentence, truncation=True, max_length=512)``; the special tokens
([CLS]/[SEP] or <s>/</s>) are kept and scored like any other token. Every position i = 0..N-1 is masked in
turn and the model's log-probability of the original token at position i is read. The sentence score is
``PPPL = exp(-(1/N) * sum_i log p_i)``, and the corpus score is the arithmetic mean of the sentence scores
(not exp of the mean token loss; that variant is returned too, as ``pppl_token_weighted``).

Two implementations give the same numbers:

* :func:`pseudo_perplexity` (used by the pipeline) puts the N masked copies of one or several sentences into
  one padded forward batch, bounded by ``max_batch_tokens`` = rows x padded length, runs only the encoder
  (``model.bert`` / ``model.roberta``), gathers the hidden state at each row's masked position and applies the
  MLM head (``model.cls`` / ``model.lm_head``) to those vectors only. The vocabulary projection, the most
  expensive part for mBERT/XLM-R vocabularies, is computed once per masked token instead of N times.
  Adapters stay active: the encoder of an ``adapters.init`` model opens its own adapter ``ForwardContext``
  when it is called directly (``ForwardContext.wrap_base``), and the head is the model's head path's
  *evaluation* forward (``lm_heads.evaluation_head``): under both ``inverse`` and ``paper_compat`` the
  invertible adapter's inverse runs before the output projection (for ``paper_compat``, as the original's
  ``AutoAdapterModel`` flex head ran it, although it trained without it). The result records the model's
  ``head_path`` (None for a model that was never given one: a base model or a fully fine-tuned one).
  Models without a recognised encoder/head split fall back to a full forward pass, gathering the logits.
* :func:`pseudo_perplexity_reference` is the paper's loop (one forward pass per masked copy, full logits,
  softmax over the vocabulary); it is the test oracle.

Log-probabilities are taken with ``log_softmax`` (the paper took ``softmax`` and then the log, which is the
same number up to rounding but can underflow to ``-inf`` in float32), in float32 at least; scores are accumulated
in float64. Precision (``precision`` of :func:`pseudo_perplexity`): ``auto`` (default) runs the encoder and head
under bf16 autocast on a CUDA device that supports bf16 and in the model's own dtype anywhere else (float32 for
the pipeline on a CPU, as the paper ran); ``no`` always uses the model's dtype; ``bf16`` forces bf16 autocast
(also on a CPU). The model may sit on any device: the batches go to the device of its parameters.

Device and precision helpers shared with the task fine-tuning (`tasks.py`, `ner.py`): :func:`select_device`
(``cuda`` when available, else ``cpu``), :func:`resolve_precision` (``auto`` follows
``training.resolve_precision`` on a CUDA device and is ``no`` elsewhere), :func:`device_and_precision`,
:func:`autocast`, :func:`to_device` and :func:`model_device`. :func:`devtest_sentences` is the ``pppl``
stage's choice of sentences, the Thai rule included.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from lrl_utils.adapters.heads import encoder_and_head, evaluation_head, head_path
from lrl_utils.records.results import UNK_WARNING

THAI_MAX_WORD_CHARS = 99


def thai_long_words(sentence: str, max_len: int = THAI_MAX_WORD_CHARS) -> str:
    """Apply the paper's Thai rule: split on whitespace and cut words longer than ``max_len`` characters.

    Thai is written without spaces between words, so a whitespace-delimited "word" can be a whole clause.
    The original script re-joins the sentence with single spaces and cuts every word longer than 99
    characters into 99-character chunks joined by spaces.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be positive, got {max_len}")
    pieces: list[str] = []
    for word in sentence.split():
        pieces.extend(word[i : i + max_len] for i in range(0, len(word), max_len))
    return " ".join(pieces)


def devtest_sentences(
    sentences: Sequence[str], flores_code: str, max_sentences: int | None = None
) -> list[str]:
    """The sentences that pseudo-perplexity scores for one FLORES-200 language (the ``pppl`` stage's path).

    The first ``max_sentences`` (all when None or 0), and for Thai (a ``tha_*`` code, e.g. ``tha_Thai``)
    each passed through :func:`thai_long_words`, the paper's rule for Thai's long unsegmented "words".
    Other languages are left as they are.
    """
    chosen = list(sentences[:max_sentences] if max_sentences else sentences)
    if flores_code.startswith("tha_"):
        chosen = [thai_long_words(s) for s in chosen]
    return chosen


def encode_sentence(tokenizer: Any, sentence: str, max_length: int = 512) -> list[int]:
    """Token ids of one sentence as the paper scores them: special tokens included, truncated."""
    ids = tokenizer.encode(sentence, truncation=True, max_length=max_length)
    if not ids:
        raise ValueError(f"sentence encodes to no tokens: {sentence!r}")
    return list(ids)


def usable_length(model: Any, max_length: int) -> int:
    """`max_length`, or fewer: the longest input `model`'s position embeddings take (BERT: all of them; RoBERTa
    and XLM-R start counting after the padding index). A longer sequence would fail inside the model, so it is
    truncated there, as a 512-token limit truncates the paper's runs on the real models."""
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return max_length
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        positions -= (getattr(config, "pad_token_id", None) or 0) + 1
    return min(max_length, positions)


def _mask_token_id(tokenizer: Any) -> int:
    if tokenizer.mask_token_id is None:
        raise ValueError("the tokenizer has no mask token; pseudo-perplexity needs a masked-LM tokenizer")
    return int(tokenizer.mask_token_id)


def _pad_token_id(tokenizer: Any) -> int:
    return int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0


def unknown_share(tokenizer: Any, encoded: Sequence[Sequence[int]]) -> float:
    """The share of the tokens in `encoded` that are the tokenizer's unknown token: text in a script or with
    characters its vocabulary lacks. Each scores as one token, as the paper's mBERT scored the scripts it lacks
    (Sinhala, Amharic), so a high share makes a PPPL or an F1 say little about the language."""
    unk = getattr(tokenizer, "unk_token_id", None)
    total = sum(len(ids) for ids in encoded)
    if unk is None or not total:
        return 0.0
    return sum(list(ids).count(unk) for ids in encoded) / total


def warn_unknown(share: float, what: str) -> None:
    """Print a warning line when more than `UNK_WARNING` of the tokens of `what` are the unknown token."""
    if share > UNK_WARNING:
        print(
            f"warning: {share:.0%} of the {what} tokens are the tokenizer's unknown token: its vocabulary lacks "
            "this script or these characters, and each scores as one token"
        )


def _summary(sentences: Sequence[str], n_tokens: list[int], nll: list[float]) -> dict[str, Any]:
    """Assemble the result dictionary from per-sentence token counts and summed negative log-likelihoods."""
    per_sentence = [
        {"text": text, "n_tokens": n, "pppl": math.exp(loss / n)}
        for text, n, loss in zip(sentences, n_tokens, nll, strict=True)
    ]
    total_tokens = sum(n_tokens)
    return {
        "pppl": sum(row["pppl"] for row in per_sentence) / len(per_sentence) if per_sentence else math.nan,
        "pppl_token_weighted": math.exp(sum(nll) / total_tokens) if total_tokens else math.nan,
        "n_sentences": len(per_sentence),
        "n_tokens": total_tokens,
        "per_sentence": per_sentence,
    }


def _batches(lengths: Sequence[int], max_batch_tokens: int) -> Iterator[list[tuple[int, int]]]:
    """Group all (sentence index, masked position) pairs into batches of at most ``max_batch_tokens``.

    Sentences are visited from shortest to longest so that rows of similar length share a batch (little
    padding). A batch holds rows x padded length <= max_batch_tokens, except that a single row longer than
    the budget still forms a batch of its own. A long sentence's copies may span several batches, and a
    batch may hold the copies of several short sentences.
    """
    batch: list[tuple[int, int]] = []
    batch_len = 0
    for idx in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        n = lengths[idx]
        for pos in range(n):
            new_len = max(batch_len, n)
            if batch and (len(batch) + 1) * new_len > max_batch_tokens:
                yield batch
                batch, new_len = [], n
            batch.append((idx, pos))
            batch_len = new_len
    if batch:
        yield batch


PRECISIONS: tuple[str, ...] = ("auto", "no", "bf16")


def select_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``device`` as given, else ``cuda`` when a CUDA GPU is available, else ``cpu``."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(setting: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CUDA device that supports it, else ``no`` (the model's dtype).

    On a CUDA device the rule is `training.resolve_precision`'s (the one of the language-model training);
    ``auto`` on any other device is ``no``. ``no`` and ``bf16`` are returned as they are.
    """
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {setting!r}")
    if setting == "auto" and torch.device(device).type != "cuda":
        return "no"
    from lrl_utils.training.loop import (
        resolve_precision as training_precision,  # lazy: `training` imports accelerate
    )

    return training_precision(setting)


def device_and_precision(
    precision: str = "auto", device: str | torch.device | None = None
) -> tuple[torch.device, str]:
    """Where and how to run: (:func:`select_device`, :func:`resolve_precision`); ``(cuda, "bf16")`` on a GPU
    with bf16 support, ``(cuda, "no")`` on an older GPU, ``(cpu, "no")`` (float32) without a GPU."""
    chosen = select_device(device)
    return chosen, resolve_precision(precision, chosen)


@contextmanager
def autocast(precision: str, device: torch.device):
    """bf16 autocast on ``device`` for a resolved precision ``bf16`` (nothing for ``no``); on a CUDA device also
    attention off cuDNN's per-shape planned kernel (`training.loop.attention_kernels`)."""
    from lrl_utils.training.loop import attention_kernels  # lazy: `training` imports accelerate

    cast = (
        torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
        if precision == "bf16"
        else nullcontext()
    )
    with attention_kernels(device), cast:
        yield


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with its tensors moved to ``device`` (a no-op for tensors already there)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters (``cpu`` for a model without parameters)."""
    return _model_device_and_dtype(model)[0]


def _model_device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    param = next(model.parameters(), None)
    if param is None:
        return torch.device("cpu"), torch.get_default_dtype()
    return param.device, param.dtype


def _record(model: nn.Module, precision: str, dtype: torch.dtype) -> dict[str, Any]:
    """How the scores were computed: resolved precision, parameter dtype and the LM head path."""
    return {
        "precision": precision,
        "dtype": str(dtype).removeprefix("torch."),
        "head_path": head_path(model, None),
    }


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log_softmax over the vocabulary in float32 at least (float64 logits stay float64)."""
    return torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)


def _masked_log_probs(
    model: nn.Module,
    split: tuple[nn.Module, nn.Module] | None,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
    bf16: bool = False,
) -> torch.Tensor:
    """log p(target) at the masked position of every row, the vocabulary projected only there.

    With ``bf16`` the encoder and head run under bf16 autocast on the tensors' device; the log-softmax is
    taken in float32 (or the logits' dtype if wider).
    """
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    with autocast("bf16" if bf16 else "no", input_ids.device):
        if split is not None:
            encoder, head = split
            hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            logits = head(hidden[rows, positions])  # (rows, V): one vocabulary projection per masked token
        else:
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[rows, positions]
    return _log_softmax(logits).gather(1, targets.unsqueeze(1)).squeeze(1)


def pseudo_perplexity(
    model: nn.Module,
    tokenizer: Any,
    sentences: Sequence[str],
    max_length: int = 512,
    max_batch_tokens: int = 16384,
    progress: bool = True,
    precision: str = "auto",
) -> dict[str, Any]:
    """Pseudo-perplexity of ``sentences`` under a masked LM, batched and scoring only masked positions.

    Args:
        model: a ``*ForMaskedLM`` model (optionally ``adapters.init``-ed with an active language adapter), on
            any device; the batches are built on the CPU and moved to the device of its parameters.
        tokenizer: its tokenizer (needs a mask token).
        sentences: the texts to score (e.g. the 1012 FLORES-200 devtest sentences).
        max_length: truncation length of ``tokenizer.encode`` (the paper: 512).
        max_batch_tokens: upper bound on rows x padded length of one forward batch (memory knob only;
            the result does not depend on it).
        progress: show a tqdm bar over batches.
        precision: ``auto`` (bf16 autocast on a CUDA device that supports it, else the model's dtype),
            ``no`` (the model's dtype: float32 as the paper ran it) or ``bf16`` (bf16 autocast, also on a CPU).
            The log-softmax is taken in float32 (float64 for a float64 model), the sums in float64.

    Returns:
        ``{"pppl": mean sentence PPPL (the paper's corpus score), "pppl_token_weighted": exp(total NLL /
        total tokens), "n_sentences", "n_tokens", "precision": "no" or "bf16" (the resolved setting),
        "dtype": the model's parameter dtype, "head_path": the model's LM head path (``inverse`` or
        ``paper_compat``; None when it has none), "unk_share": the share of the tokens that are the unknown
        token (`unknown_share`), "per_sentence": [{"text", "n_tokens", "pppl"}, ...]}``, with ``per_sentence``
        in input order and N counting special tokens.
    """
    mask_id, pad_id = _mask_token_id(tokenizer), _pad_token_id(tokenizer)
    max_length = usable_length(model, max_length)
    encoded = [encode_sentence(tokenizer, s, max_length) for s in sentences]
    lengths = [len(ids) for ids in encoded]
    nll = [0.0] * len(encoded)
    split = encoder_and_head(model)
    device, dtype = _model_device_and_dtype(model)
    used = resolve_precision(precision, device)

    # All sentences, padded once: a batch's rows are gathered from here (no per-row tensor building).
    padded = torch.full((len(encoded), max(lengths, default=0)), pad_id, dtype=torch.long)
    for idx, ids in enumerate(encoded):
        padded[idx, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    length_of = torch.tensor(lengths, dtype=torch.long)

    batches = list(_batches(lengths, max_batch_tokens))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), evaluation_head(model):
            for batch in tqdm(batches, desc="PPPL", unit="batch", disable=not progress):
                width = max(lengths[idx] for idx, _ in batch)
                sentence = torch.tensor([idx for idx, _ in batch], dtype=torch.long)
                positions = torch.tensor([pos for _, pos in batch], dtype=torch.long)
                input_ids = padded[sentence, :width]  # advanced indexing: a copy
                attention_mask = (torch.arange(width)[None, :] < length_of[sentence, None]).long()
                rows = torch.arange(len(batch))
                targets = input_ids[rows, positions].clone()
                input_ids[rows, positions] = mask_id
                log_p = _masked_log_probs(
                    model,
                    split,
                    input_ids.to(device),
                    attention_mask.to(device),
                    positions.to(device),
                    targets.to(device),
                    bf16=used == "bf16",
                )
                for (idx, _), value in zip(batch, log_p.double().cpu().tolist(), strict=True):
                    nll[idx] -= value
    finally:
        model.train(was_training)
    return (
        _summary(sentences, lengths, nll)
        | _record(model, used, dtype)
        | {"unk_share": unknown_share(tokenizer, encoded)}
    )


def pseudo_perplexity_reference(
    model: nn.Module, tokenizer: Any, sentences: Sequence[str], max_length: int = 512
) -> dict[str, Any]:
    """The paper's per-token loop: one forward pass (batch size 1) per masked copy, full logits.

    Slow; kept as the oracle that :func:`pseudo_perplexity` is tested against. Same return value, the same
    evaluation head (``lm_heads.evaluation_head``); always in the model's dtype (``precision`` "no").
    """
    mask_id = _mask_token_id(tokenizer)
    device, dtype = _model_device_and_dtype(model)
    max_length = usable_length(model, max_length)
    lengths: list[int] = []
    nll: list[float] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), evaluation_head(model):
            for sentence in sentences:
                ids = torch.tensor([encode_sentence(tokenizer, sentence, max_length)], device=device)
                total = 0.0
                for i in range(ids.shape[1]):
                    masked = ids.clone()
                    masked[0, i] = mask_id
                    logits = model(input_ids=masked).logits[0, i]
                    total -= _log_softmax(logits)[ids[0, i]].item()
                lengths.append(ids.shape[1])
                nll.append(total)
    finally:
        model.train(was_training)
    return _summary(sentences, lengths, nll) | _record(model, "no", dtype)
