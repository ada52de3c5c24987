"""WikiANN named-entity recognition: a task adapter on a frozen base (+ frozen language adapters), SPEC §5.3.

The set-up follows `tasks.py` (text classification), with a tagging head and the paper's NER specifics:

1. ``AutoAdapterModel.from_pretrained(base)``; the ``"default"`` head converted from a static MLM head is
   deleted.
2. Language adapter, three kinds (``lang_adapter`` argument):

   - ``None`` (``"none"``): the baseline, a task adapter on the bare model (also the way a fully fine-tuned
     model is used: its folder is ``base_path``);
   - a folder (``"single"``): ``load_adapter(dir, load_as="lang_adapter", with_head=False)``, then
     ``train_adapter("ner")`` and only then ``active_adapters = Stack("lang_adapter", "ner")``
     (ADAPTERS_NOTES A4);
   - a pair ``(conceptnet_dir, glot_dir)`` (``"fusion"``, the paper's "Fusion" columns): both loaded
     (``conceptnet_adapter``, ``glot_adapter``), ``add_adapter_fusion(Fuse(...))``, ``train_adapter("ner")``,
     ``train_adapter_fusion(Fuse(...))``, then every parameter of the ``ner`` adapter is made trainable
     again and ``active_adapters = Stack(Fuse(...), "ner")``. In `adapters` 1.3.0 ``train_adapter_fusion``
     starts with ``freeze_model(True)``, which re-freezes the ``ner`` adapter that ``train_adapter`` had
     unfrozen (heads lie outside the base model and stay trainable); the paper undid this by setting every
     parameter whose name contains "ner" trainable, which here means the ``ner`` adapter (the head already
     trains). The two language adapters (and their invertible adapters, if any) stay frozen: fusion +
     ``ner`` adapter + head train. As in the library, a ``seq_bn_inv`` fusion applies only the *first*
     adapter's invertible module (ConceptNet's).
     The fusion layer is the library default (``dynamic``); its value-matrix regularisation
     ``0.01 * ||I - V||^2`` (what ``AdapterTrainer`` applies while it trains a fusion) is added to the loss
     of each step (``AdapterTrainer`` back-propagates it after the step, into the next step's gradients).
     The value matrices get weight decay like other weights: ``AdapterTrainer`` means to exempt them, but
     its ``re.match`` pattern is anchored at ``adapter_fusion_layer``, so it never matches a full parameter
     name (which starts with the base-model prefix, e.g. ``bert.encoder...``).

3. ``add_adapter("ner", config="seq_bn")`` and ``add_tagging_head("ner", num_labels=7, id2label=...)``.

Labels (:func:`align_labels`), ``label_alignment``:

- ``first`` (default): the first sub-token of each word carries the word's tag; continuation sub-tokens and
  special tokens get -100 (the usual token-classification recipe).
- ``paper_compat`` (alias ``all``): every sub-token carries its word's tag, specials -100 (the original
  code; its training and validation losses then weight long words more).

Sequences are truncated to ``config.max_length`` (paper: 512, where the original set no truncation flag).
In both modes a word is **predicted at its first sub-token**; a word with no sub-token in the input (cut off
by truncation, or one the tokenizer's normaliser deletes entirely) is predicted ``O`` and still scored, so
gold entities beyond the cut count as misses: the metric stays over all gold words of the test set.

Training is the loop of `tasks.py`: AdamW (no decay on bias/LayerNorm), linear warm-up and decay, gradient
clipping, batches padded to their longest member (``DataCollatorForTokenClassification``), per-epoch
validation loss (mean token cross-entropy over the labelled positions), the trainable state of the epoch
with the lowest validation loss restored and evaluated on test. Metrics (seqeval): ``test_f1`` is the
default-mode (conlleval) entity micro-F1, the paper's ``overall_f1``; ``test_f1_strict``,
``test_precision_strict`` and ``test_recall_strict`` use ``mode="strict", scheme=IOB2``; ``test_precision``,
``test_recall`` and the token accuracy ``test_accuracy`` are default-mode. Device and precision as
in `tasks.py`: ``cuda`` when available (model and batches), bf16 autocast there when the GPU supports it
(``precision: auto``), float32 on a CPU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from adapters import AutoAdapterModel
from adapters.composition import Fuse, Stack
from datasets import DatasetDict
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2
from torch import nn
from transformers import AutoTokenizer, DataCollatorForTokenClassification

from lrl_utils.config.train_settings import TaskTrainConfig
from lrl_utils.data.task_files import SPLITS
from lrl_utils.data.wikiann import NER_TAGS
from lrl_utils.evaluation import task_loop
from lrl_utils.evaluation.pppl import (
    autocast,
    device_and_precision,
    model_device,
    resolve_precision,
    to_device,
    usable_length,
)
from lrl_utils.evaluation.tasks import LANG_ADAPTER_NAME, TASK_ADAPTER_CONFIG

NER_TASK = "ner"
CONCEPTNET_ADAPTER = "conceptnet_adapter"
GLOT_ADAPTER = "glot_adapter"
FUSION = Fuse(CONCEPTNET_ADAPTER, GLOT_ADAPTER)
LABEL_ALIGNMENTS = ("first", "paper_compat")
_ALIASES = {"all": "paper_compat"}
IGNORE = -100

LangAdapter = str | Path | tuple[str | Path, str | Path] | None


def ner_config(**changes: Any) -> TaskTrainConfig:
    """The paper's NER settings (100 epochs, max length 512; lr 1e-4, batch 32 as TC), then `changes`."""
    return TaskTrainConfig(**{"epochs": 100, "max_length": 512, **changes})


def _alignment(mode: str) -> str:
    mode = _ALIASES.get(mode, mode)
    if mode not in LABEL_ALIGNMENTS:
        raise ValueError(f"label_alignment must be one of {LABEL_ALIGNMENTS} (or 'all'), got {mode!r}")
    return mode


def adapter_kind(lang_adapter: LangAdapter) -> str:
    """``none``, ``single`` (one adapter folder) or ``fusion`` (a pair of folders)."""
    if lang_adapter is None:
        return "none"
    if isinstance(lang_adapter, str | Path):
        return "single"
    if isinstance(lang_adapter, tuple | list) and len(lang_adapter) == 2:
        return "fusion"
    raise ValueError(
        f"lang_adapter must be None, a folder or a (conceptnet, glot) pair, got {lang_adapter!r}"
    )


def load_ner_tokenizer(base_path: str | Path) -> Any:
    """The base's fast tokenizer; byte-level BPE ones (RoBERTa, GPT-2) need ``add_prefix_space=True`` to take
    pre-split words. WordPiece (mBERT) and SentencePiece/Unigram (XLM-R) take them as they are."""
    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    if getattr(tokenizer, "add_prefix_space", None) is False:
        tokenizer = AutoTokenizer.from_pretrained(str(base_path), add_prefix_space=True)
    if not tokenizer.is_fast:
        raise ValueError(f"{base_path}: NER label alignment needs a fast tokenizer (word_ids)")
    return tokenizer


def align_labels(
    tokenizer: Any, tokens: Sequence[str], tags: Sequence[int], mode: str = "first", max_length: int = 512
) -> dict[str, list]:
    """Tokenise one pre-split sentence (truncated to `max_length`) and align its word tags to sub-tokens.

    Returns the model inputs (``input_ids``, ``attention_mask``, ``token_type_ids`` where the tokenizer makes
    them), ``labels`` (tag id or -100 per position; see the module docstring for the modes) and
    ``word_starts``: per word, the position of its first sub-token, or None (truncated away or no sub-token).
    """
    mode = _alignment(mode)
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    enc = tokenizer(list(tokens), is_split_into_words=True, truncation=True, max_length=max_length)
    word_starts: list[int | None] = [None] * len(tokens)
    labels = []
    for pos, word in enumerate(enc.word_ids()):
        if word is None:
            labels.append(IGNORE)
        elif word_starts[word] is None:
            word_starts[word] = pos
            labels.append(int(tags[word]))
        else:
            labels.append(int(tags[word]) if mode == "paper_compat" else IGNORE)
    out = {key: list(value) for key, value in enc.items()}
    return {**out, "labels": labels, "word_starts": word_starts}


def build_ner_model(base_path: str | Path, lang_adapter: LangAdapter) -> tuple[nn.Module, Any]:
    """The flex-head model: (frozen) language adapter(s) or fusion, the ``ner`` adapter and tagging head."""
    kind = adapter_kind(lang_adapter)
    tokenizer = load_ner_tokenizer(base_path)
    model = AutoAdapterModel.from_pretrained(str(base_path))
    for head_name in list(model.heads):  # "default", converted from a static MLM head: unused here
        model.delete_head(head_name)
    if kind == "single":
        model.load_adapter(str(lang_adapter), load_as=LANG_ADAPTER_NAME, with_head=False)
    elif kind == "fusion":
        conceptnet_dir, glot_dir = lang_adapter  # type: ignore[misc]
        model.load_adapter(str(conceptnet_dir), load_as=CONCEPTNET_ADAPTER, with_head=False)
        model.load_adapter(str(glot_dir), load_as=GLOT_ADAPTER, with_head=False)
        model.add_adapter_fusion(FUSION)
    model.add_adapter(NER_TASK, config=TASK_ADAPTER_CONFIG)
    model.add_tagging_head(NER_TASK, num_labels=len(NER_TAGS), id2label=dict(enumerate(NER_TAGS)))
    model.train_adapter(NER_TASK)
    if kind == "single":
        model.active_adapters = Stack(LANG_ADAPTER_NAME, NER_TASK)  # after train_adapter (A4)
    elif kind == "fusion":
        model.train_adapter_fusion(FUSION)  # freezes the base model again, the ner adapter included
        for name, param in model.named_parameters():
            if NER_TASK in name.split("."):  # the paper: every parameter named "...ner..." trains
                param.requires_grad_(True)
        model.active_adapters = Stack(FUSION, NER_TASK)
    if model.active_head != NER_TASK:
        raise RuntimeError(f"active head is {model.active_head!r}, expected {NER_TASK!r}")
    return model, tokenizer


def _tag_names(ids: Sequence[int]) -> list[str]:
    return [NER_TAGS[int(i)] for i in ids]


def recompute_metrics(predictions: Sequence[dict[str, Any]]) -> dict[str, float]:
    """seqeval metrics of ``[{"gold": [tags], "pred": [tags], ...}]`` (tag strings, one per word): entity
    F1, precision and recall in the default (conlleval) mode and in strict IOB2 mode (``*_strict``), and token
    accuracy."""
    gold = [list(row["gold"]) for row in predictions]
    pred = [list(row["pred"]) for row in predictions]
    strict = {"mode": "strict", "scheme": IOB2}
    return {
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "f1_strict": float(f1_score(gold, pred, zero_division=0, **strict)),
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "precision_strict": float(precision_score(gold, pred, zero_division=0, **strict)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "recall_strict": float(recall_score(gold, pred, zero_division=0, **strict)),
        "accuracy": float(accuracy_score(gold, pred)),
    }


def _encode_split(tokenizer: Any, data: DatasetDict, split: str, mode: str, max_length: int) -> dict:
    tokens = [list(t) for t in data[split]["tokens"]]
    tags = [[int(x) for x in t] for t in data[split]["ner_tags"]]
    for row, sentence in enumerate(tags):  # the loaders check their files; this checks what a caller hands in
        bad = next((tag for tag in sentence if not 0 <= tag < len(NER_TAGS)), None)
        if bad is not None:
            raise ValueError(
                f"{split} row {row}: tag {bad} is not one of the {len(NER_TAGS)} tags (0-{len(NER_TAGS) - 1})"
            )
    examples = [align_labels(tokenizer, t, g, mode, max_length) for t, g in zip(tokens, tags, strict=True)]
    return {"tokens": tokens, "gold": [_tag_names(g) for g in tags], "examples": examples}


def _batch(collator: DataCollatorForTokenClassification, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
    return collator([{k: v for k, v in ex.items() if k != "word_starts"} for ex in examples])


def _token_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the labelled positions and their number."""
    total = nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return total, int((labels != IGNORE).sum())


def _evaluate(
    model: nn.Module, collator: DataCollatorForTokenClassification, split: dict, config: TaskTrainConfig
) -> tuple[float, list[list[str]]]:
    """Mean token cross-entropy over the labelled positions, and per sentence the predicted tag of each word
    (read at its first sub-token; ``O`` for a word without one)."""
    model.eval()
    device = model_device(model)
    precision = resolve_precision(config.precision, device)
    examples = split["examples"]
    total, count, preds = 0.0, 0, []
    with torch.inference_mode():
        for start in range(0, len(examples), config.batch_size):
            chunk = examples[start : start + config.batch_size]
            batch = to_device(_batch(collator, chunk), device)
            labels = batch.pop("labels")
            with autocast(precision, device):
                logits = model(**batch).logits
            loss, n = _token_loss(logits.float(), labels)
            total, count = total + loss.item(), count + n
            best = logits.argmax(dim=-1).tolist()
            for row, ex in zip(best, chunk, strict=True):
                preds.append(["O" if p is None else NER_TAGS[row[p]] for p in ex["word_starts"]])
    return total / max(count, 1), preds


def train_ner_tagger(
    base_path: str | Path,
    data: DatasetDict,
    lang_adapter: LangAdapter,
    config: TaskTrainConfig,
    label_alignment: str = "first",
    progress: bool = True,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Train the ``ner`` adapter (+ tagging head, + fusion) on a frozen base; evaluate the best epoch on test.

    Args:
        base_path: folder of the base checkpoint (model + tokenizer), or of a fully fine-tuned model.
        data: splits train/validation/test, columns ``tokens`` and ``ner_tags`` (ids into ``NER_TAGS``), as
            ``wikiann.load_wikiann`` returns.
        lang_adapter: None (baseline), a language-adapter folder, or a (ConceptNet, GlotCC) pair of folders
            (fusion).
        config: hyperparameters (``ner_config()`` gives the paper's).
        label_alignment: ``first`` or ``paper_compat`` (``all``); see the module docstring.
        progress: show a tqdm bar over epochs.
        device: where to train and evaluate; None: ``cuda`` when available, else ``cpu`` (model and batches
            go there; ``config.precision`` ``auto`` = bf16 autocast on a CUDA GPU that supports it, as in
            ``tasks.train_text_classifier``).

    Returns:
        A JSON-serialisable dict: ``test_f1`` (seqeval default mode, the paper's ``overall_f1``),
        ``test_f1_strict``, ``test_precision`` (and ``_strict``), ``test_recall`` (and ``_strict``),
        ``test_accuracy``, ``best_epoch`` (1-based, lowest validation loss), per-epoch ``train_loss``,
        ``val_loss``, ``val_f1``, test ``predictions`` ``[{"tokens", "gold", "pred"}]``,
        ``words_without_position`` (test words predicted ``O``: cut off by truncation or without a sub-token;
        not a ``test_`` metric: it does not follow from the predictions),
        ``trainable_params``, ``seconds``, ``config``, ``label_alignment``, ``lang_adapter`` (the kind),
        ``device`` and ``precision`` (the resolved setting: ``no`` or ``bf16``).
    """
    started = time.perf_counter()
    mode = _alignment(label_alignment)
    kind = adapter_kind(lang_adapter)
    task_loop.set_seed(config.seed)
    device, precision = device_and_precision(config.precision, device)
    model, tokenizer = build_ner_model(base_path, lang_adapter)
    model.to(device)
    collator = DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE, return_tensors="pt")
    length = usable_length(model, config.max_length)
    train, val, test = (_encode_split(tokenizer, data, s, mode, length) for s in SPLITS)

    def batch_loss(idx: Sequence[int]) -> tuple[torch.Tensor, float, int]:
        batch = to_device(_batch(collator, [train["examples"][i] for i in idx]), device)
        labels = batch.pop("labels")
        with autocast(precision, device):
            logits = model(**batch).logits
        summed, count = _token_loss(logits.float(), labels)
        objective = summed / max(count, 1)
        if kind == "fusion":
            regularisation = model.base_model.get_fusion_regularization_loss()
            if regularisation is not None:
                objective = objective + regularisation
        return objective, summed.item(), count

    def validate() -> tuple[float, float]:
        val_loss, val_preds = _evaluate(model, collator, val, config)
        return val_loss, float(f1_score(val["gold"], val_preds, zero_division=0))

    n_train = len(train["examples"])
    trained = task_loop.train_epochs(
        model, config, n_train, batch_loss, validate, "val_f1", progress=progress
    )
    _, test_preds = _evaluate(model, collator, test, config)
    predictions = [
        {"tokens": t, "gold": g, "pred": p}
        for t, g, p in zip(test["tokens"], test["gold"], test_preds, strict=True)
    ]
    return {
        **{f"test_{name}": value for name, value in recompute_metrics(predictions).items()},
        "best_epoch": trained["best_epoch"],
        **{k: trained[k] for k in ("train_loss", "val_loss", "val_f1")},
        "predictions": predictions,
        "words_without_position": sum(s is None for ex in test["examples"] for s in ex["word_starts"]),
        "trainable_params": trained["trainable_params"],
        "seconds": time.perf_counter() - started,
        "config": asdict(config),
        "label_alignment": mode,
        "lang_adapter": kind,
        "device": str(device),
        "precision": precision,
    }
