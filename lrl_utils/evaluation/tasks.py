"""Text classification with a task adapter stacked on a frozen language adapter (SPEC §5.3): topic classification
(SIB-200, 7 classes, `tc`) and binary sentiment analysis (`sa`); NER is in `ner.py`.

The MAD-X set-up of the paper, for mBERT and XLM-R:

1. ``AutoAdapterModel.from_pretrained(base)``; the static MLM head of a ``*ForMaskedLM`` checkpoint is
   converted by ``adapters`` into a flex head named ``"default"``. It is unused here and deleted, so that the
   only head (and the active one) is the classification head.
2. With a language adapter: ``load_adapter(dir, load_as="lang_adapter", with_head=False)`` (the adapter
   directory of a static-head model also holds that model's MLM head; ADAPTERS_NOTES A6).
3. ``add_adapter(<task>, config="seq_bn")`` (reduction factor 16) and
   ``add_classification_head(<task>, num_labels=7 or 2, id2label=...)``, the task being
   ``topic_classification`` or ``sentiment_classification`` (the paper's names).
4. ``train_adapter(<task>)`` freezes the base model and the language adapter, and only
   *then* ``active_adapters = Stack("lang_adapter", <task>)`` (the order matters:
   ``train_adapter`` resets the active setup; ADAPTERS_NOTES A4).

Training is the torch epoch loop shared with NER (`task_loop.train_epochs`) with the paper's settings (HF
``Trainer`` defaults where the paper relied on them): AdamW over the trainable parameters with weight decay except on biases and LayerNorm weights, linear
warm-up and decay, gradient clipping at 1.0, batches padded to their longest member (the paper padded to
256; with the attention mask this gives the same outputs), seeds for ``random``, ``numpy`` and ``torch``.
After every epoch the validation loss is computed. The state of the trainable parameters of the epoch with
the **lowest validation loss** is restored and evaluated on test (``load_best_model_at_end`` without a
``metric_for_best_model``: the paper's intent; the original code's final test call evaluated the last
epoch). Metrics: macro-F1 and accuracy on test.

Device: the model and every batch sit on ``cuda`` when a GPU is available (else the CPU, or the ``device``
argument); ``precision`` ``auto`` runs the forward passes under bf16 autocast on a CUDA GPU that supports
bf16 (the rule of ``training.resolve_precision``) and in float32 anywhere else; losses are taken in float32.
On a CPU nothing changes with respect to a device-unaware loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from adapters import AutoAdapterModel
from adapters.composition import Stack
from adapters.heads import ClassificationHead
from datasets import DatasetDict
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from transformers import AutoTokenizer, DataCollatorWithPadding

from lrl_utils.config.train_settings import TaskTrainConfig
from lrl_utils.evaluation import task_loop
from lrl_utils.evaluation.pppl import (
    autocast,
    device_and_precision,
    model_device,
    resolve_precision,
    to_device,
    usable_length,
)

TASK_NAME = "topic_classification"
TASK_NAMES = {"tc": "topic_classification", "sa": "sentiment_classification"}  # adapter + head names
LANG_ADAPTER_NAME = "lang_adapter"
TASK_ADAPTER_CONFIG = "seq_bn"


class MeanPoolClassificationHead(ClassificationHead):
    """The library's classification head, reading the mean of the token states instead of the first token.

    A tiny frozen model's first-token state carries little sentence information (the real models got it from
    next-sentence prediction); the demo can use this head instead (`pooling: mean`). The paper uses `cls`.
    """

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The mean of the token states over the attention mask (padding never counts)."""
        mask = (
            torch.ones(states.shape[:2], device=states.device) if attention_mask is None else attention_mask
        )
        mask = mask.to(states.dtype).unsqueeze(-1)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, outputs, cls_output=None, attention_mask=None, return_dict=False, **kwargs):
        if cls_output is None:
            cls_output = self.pool(outputs[0], attention_mask)
        return super().forward(outputs, cls_output, attention_mask, return_dict, **kwargs)


class NormalisedMeanPoolClassificationHead(MeanPoolClassificationHead):
    """The mean of the token states, layer-normalised (no learned scale or shift) before the classification head:
    what the head reads then has one scale, as a post-LN model's first-token state has, whatever the language
    adapter did to the states' scale (`pooling: mean_norm`)."""

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        mean = super().pool(states, attention_mask)
        return nn.functional.layer_norm(mean, mean.shape[-1:])


class StandardisedMeanPoolClassificationHead(MeanPoolClassificationHead):
    """The mean of the token states, each feature standardised over the sentences before the classification
    head (`pooling: mean_std`): a batch norm without learned scale or shift, over the batch while training and
    with the running mean and variance it kept (momentum 0.1) when evaluating, as a linear probe standardises its
    features.

    The pooled states of a tiny frozen model differ little from sentence to sentence next to what they share, so
    a head reading them as they are learns slowly: after 8 epochs of TC its training loss had barely left chance
    on the low-share languages, and the score measured how fast it found small differences, not what the states
    hold (docs/architecture.md, "A standardised head"). The running statistics are buffers, not parameters: the
    epoch loop keeps them with the best epoch's weights (`task_loop.trainable_state`)."""

    def __init__(self, model, head_name, *args, **kwargs):
        super().__init__(model, head_name, *args, **kwargs)
        width = model.config.hidden_size
        # buffers, not a BatchNorm module: the head runs its child modules in order, as a sequence
        self.register_buffer("pooled_mean", torch.zeros(width))
        self.register_buffer("pooled_var", torch.ones(width))

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        mean = super().pool(states, attention_mask).float()  # statistics in float32 (bf16 autocast on a GPU)
        training = self.training and mean.shape[0] > 1  # one sentence has no variance to standardise by
        return nn.functional.batch_norm(
            mean, self.pooled_mean, self.pooled_var, training=training, momentum=0.1
        )


POOLED_HEADS = {
    "mean": MeanPoolClassificationHead,
    "mean_norm": NormalisedMeanPoolClassificationHead,
    "mean_std": StandardisedMeanPoolClassificationHead,
}


def build_task_model(
    base_path: str,
    label_names: Sequence[str],
    lang_adapter_dir: str | None,
    pooling: str = "cls",
    task_name: str = TASK_NAME,
) -> tuple[nn.Module, Any]:
    """The flex-head model with the (frozen) language adapter, the task adapter and the classification head.

    Returns ``(model, tokenizer)`` with only the task adapter and the classification head trainable and the
    active setup ``Stack("lang_adapter", task_name)`` (or the task adapter alone).
    """
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = AutoAdapterModel.from_pretrained(base_path)
    for head_name in list(model.heads):  # e.g. "default", converted from a static MLM head: unused here
        model.delete_head(head_name)
    if lang_adapter_dir is not None:
        model.load_adapter(str(lang_adapter_dir), load_as=LANG_ADAPTER_NAME, with_head=False)
    model.add_adapter(task_name, config=TASK_ADAPTER_CONFIG)
    id2label = dict(enumerate(label_names))
    if pooling == "cls":
        model.add_classification_head(task_name, num_labels=len(label_names), id2label=id2label)
    elif pooling in POOLED_HEADS:
        head = f"{pooling}_pool_classification"
        model.register_custom_head(head, POOLED_HEADS[pooling])
        model.add_custom_head(head, task_name, num_labels=len(label_names), id2label=id2label)
    else:
        raise ValueError(f"`pooling` must be `cls` or one of {sorted(POOLED_HEADS)}, got {pooling!r}")
    model.train_adapter(task_name)
    if lang_adapter_dir is not None:
        model.active_adapters = Stack(LANG_ADAPTER_NAME, task_name)  # after train_adapter (A4)
    if model.active_head != task_name:
        raise RuntimeError(f"active head is {model.active_head!r}, expected {task_name!r}")
    return model, tokenizer


class Encodings:
    """A split's texts tokenised once (truncated to ``max_length``), handed out as batches padded to their longest
    member by ``DataCollatorWithPadding``: the same tensors as tokenising each batch with ``padding=True``,
    without tokenising every text again in every epoch."""

    def __init__(self, tokenizer: Any, texts: Sequence[str], max_length: int):
        self.texts = list(texts)
        encoded = tokenizer(self.texts, truncation=True, max_length=max_length) if self.texts else {}
        self.rows = [
            dict(zip(encoded, values, strict=True)) for values in zip(*encoded.values(), strict=True)
        ]
        self.collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __len__(self) -> int:
        return len(self.texts)

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The rows ``indices``, padded to the longest of them as the tokenizer pads."""
        return dict(self.collate([self.rows[i] for i in indices]))


def _evaluate(
    model: nn.Module, encoded: Encodings, labels: Sequence[int], config: TaskTrainConfig
) -> tuple[float, list[int]]:
    """Mean cross-entropy per example and the predicted label ids (batches on the model's device, autocast as
    ``config.precision`` resolves there; the loss in float32)."""
    model.eval()
    device = model_device(model)
    precision = resolve_precision(config.precision, device)
    total_loss, preds = 0.0, []
    with torch.inference_mode():
        for start in range(0, len(encoded), config.batch_size):
            rows = range(start, min(start + config.batch_size, len(encoded)))
            batch = to_device(encoded.batch(rows), device)
            gold = torch.tensor(labels[start : start + config.batch_size], device=device)
            with autocast(precision, device):
                logits = model(**batch).logits
            total_loss += nn.functional.cross_entropy(logits.float(), gold, reduction="sum").item()
            preds.extend(logits.argmax(dim=-1).tolist())
    return total_loss / max(len(encoded), 1), preds


def _split(data: DatasetDict, name: str, n_labels: int | None = None) -> tuple[list[str], list[int]]:
    """A split's texts and label ids; given `n_labels`, a label outside 0..n_labels-1 or an empty split is a
    one-line ValueError naming the split and row (the loaders check their files; this checks what a caller hands
    in)."""
    texts, labels = list(data[name]["text"]), [int(y) for y in data[name]["label"]]
    if n_labels is None:
        return texts, labels
    if not texts:
        raise ValueError(f"the {name} split has no rows")
    for row, label in enumerate(labels):
        if not 0 <= label < n_labels:
            raise ValueError(
                f"{name} row {row}: label {label} is not one of the {n_labels} classes (0-{n_labels - 1})"
            )
    return texts, labels


def train_text_classifier(
    base_path: str,
    data: DatasetDict,
    label_names: Sequence[str],
    lang_adapter_dir: str | None,
    config: TaskTrainConfig,
    progress: bool = True,
    task: str = "tc",
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Train a task adapter (+ head) on a frozen base (+ frozen language adapter); evaluate on test.

    Args:
        base_path: folder of the base checkpoint (model + tokenizer, e.g. a ``*ForMaskedLM`` saved with
            ``save_pretrained``).
        data: a ``datasets.DatasetDict`` with splits train/validation/test, columns ``text`` and ``label``
            (int ids into ``label_names``).
        label_names: class names, index = label id.
        lang_adapter_dir: folder written by ``save_adapter`` for the language adapter, or None (baseline).
        config: hyperparameters.
        progress: show a tqdm bar over epochs.
        task: ``tc`` (topic classification) or ``sa`` (sentiment): names the task adapter and head.
        device: where to train and evaluate; None: ``cuda`` when available, else ``cpu``. The model and every
            batch go there; ``config.precision`` ``auto`` means bf16 autocast on a CUDA GPU that supports it
            (``evaluation.device_and_precision``), float32 elsewhere.

    Returns:
        A JSON-serialisable dict: ``test_macro_f1``, ``test_accuracy``, ``best_epoch`` (1-based, the epoch
        with the lowest validation loss, whose parameters were evaluated on test), per-epoch ``val_loss``,
        ``train_loss`` and ``val_macro_f1``, test ``predictions`` ``[{"text", "label", "pred"}]``,
        ``trainable_params``, ``seconds``, ``device`` and ``precision`` (the resolved setting: ``no``
        or ``bf16``).
    """
    started = time.perf_counter()
    task_loop.set_seed(config.seed)
    if task not in TASK_NAMES:
        raise ValueError(f"task must be one of {sorted(TASK_NAMES)}, got {task!r}")
    device, precision = device_and_precision(config.precision, device)
    model, tokenizer = build_task_model(
        base_path, label_names, lang_adapter_dir, config.pooling, TASK_NAMES[task]
    )
    model.to(device)
    train_texts, train_labels = _split(data, "train", len(label_names))
    val_texts, val_labels = _split(data, "validation", len(label_names))
    test_texts, test_labels = _split(data, "test", len(label_names))
    train, val, test = (
        Encodings(tokenizer, t, usable_length(model, config.max_length))
        for t in (train_texts, val_texts, test_texts)
    )

    def batch_loss(idx: Sequence[int]) -> tuple[torch.Tensor, float, int]:
        batch = to_device(train.batch(idx), device)
        with autocast(precision, device):
            logits = model(**batch).logits
        gold = torch.tensor([train_labels[i] for i in idx], device=device)
        loss = nn.functional.cross_entropy(logits.float(), gold)
        return loss, loss.item() * len(idx), len(idx)

    def validate() -> tuple[float, float]:
        val_loss, val_preds = _evaluate(model, val, val_labels, config)
        return val_loss, float(f1_score(val_labels, val_preds, average="macro", zero_division=0))

    trained = task_loop.train_epochs(
        model, config, len(train_texts), batch_loss, validate, "val_macro_f1", progress=progress
    )
    _, test_preds = _evaluate(model, test, test_labels, config)
    return {
        **recompute_metrics(test_labels, test_preds),
        "best_epoch": trained["best_epoch"],
        **{k: trained[k] for k in ("train_loss", "val_loss", "val_macro_f1")},
        "predictions": [
            {"text": t, "label": y, "pred": p}
            for t, y, p in zip(test_texts, test_labels, test_preds, strict=True)
        ],
        "trainable_params": trained["trainable_params"],
        "seconds": time.perf_counter() - started,
        "config": asdict(config),
        "label_names": list(label_names),
        "lang_adapter": lang_adapter_dir is not None,
        "task": task,
        "device": str(device),
        "precision": precision,
    }


def recompute_metrics(labels: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """Test macro-F1 (the paper's metric for TC and SA) and accuracy, with scikit-learn."""
    return {
        "test_macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "test_accuracy": float(accuracy_score(labels, predictions)),
    }
