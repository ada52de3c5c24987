"""One readable masked-LM training loop, used for base-model pre-training and for language adapters.

It reproduces what the paper's `run_mlm.py` + `AdapterTrainer` did (SPEC §4.2), as a plain torch loop:

- line-by-line examples, truncated to `max_length` tokens (everything after is discarded), no padding up front;
- dynamic padding per batch; batches are *length-grouped* (HF `group_by_length`-style: shuffle, cut into buckets
  of 50 batches, sort each bucket by length, cut into batches, shuffle the batches), so little compute goes to pads;
- `DataCollatorForLanguageModeling` with `mlm_probability` 0.15 and the BERT 80/10/10 replacement scheme;
- AdamW over the parameters that require grad (lr 1e-4, weight decay 0, HF's betas/eps), gradient clipping at
  1.0 (HF Trainer's default), linear decay from `learning_rate` to 0 over `max_steps` (no warmup);
- cycles over the data until `max_steps` optimizer steps;
- evaluates the masked-LM loss on the validation texts every `eval_every` steps and at the end, keeps the
  trainable parameters of the best (lowest val loss) evaluation in memory and loads them back at the end
  (`load_best_model_at_end`, best = lowest eval_loss).

Reproducibility: `seed` drives the batch order (a `torch.Generator`), the masking (the collator's own generator) and
dropout (the global torch RNG is seeded at the start); the same model, data and config give the same losses.
The validation batches are masked once, with a fixed seed, so every evaluation scores the same masked tokens.
The step-0 evaluation is recorded as an untrained reference but is not a candidate for "best" (as in HF, which only
compares saved checkpoints). Validation loss is the mean over all masked tokens of the validation set.

Simplifications (issue 4 moves the loop onto `accelerate`): no checkpoint resume, no mixed precision, one device.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm
from transformers import (
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

BATCHES_PER_BUCKET = 50  # length-grouping window, as in transformers' LengthGroupedSampler (mega-batch of 50)


@dataclass
class MLMTrainConfig:
    """Masked-LM training settings; the defaults are the paper's language-adapter settings (SPEC §4.2)."""

    max_steps: int = field(default=25000, metadata={"help": "optimizer steps (ConceptNet 25k, GlotCC 100k)"})
    batch_size: int = field(default=16, metadata={"help": "examples per step (paper: 16 per device)"})
    learning_rate: float = field(
        default=1e-4, metadata={"help": "peak AdamW learning rate, decayed linearly to 0"}
    )
    max_length: int = field(
        default=512, metadata={"help": "tokens per example incl. specials; the rest is cut"}
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "share of tokens selected for masking"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (HF default 0)"})
    warmup_steps: int = field(default=0, metadata={"help": "linear warmup steps (paper: none)"})
    max_grad_norm: float = field(
        default=1.0, metadata={"help": "gradient clipping norm (HF Trainer default)"}
    )
    eval_every: int = field(
        default=500, metadata={"help": "evaluate the val loss every N steps (HF default)"}
    )
    eval_batches: int | None = field(
        default=None, metadata={"help": "val batches per evaluation; None = all"}
    )
    seed: int = field(default=42, metadata={"help": "seed of batch order, masking and dropout (paper: 42)"})
    log_every: int = field(default=50, metadata={"help": "record the mean train loss every N steps"})

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "max_length", "eval_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"MLMTrainConfig.{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


def tokenize_texts(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """Token ids of each non-empty text (with special tokens), truncated to `max_length`, unpadded."""
    texts = [t for t in texts if t and t.strip()]
    encoded = tokenizer(texts, truncation=True, max_length=max_length, return_attention_mask=False)
    return encoded["input_ids"]


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator
) -> list[list[int]]:
    """One epoch of batches (lists of example indices) with similar lengths, in a random (seeded) order."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    bucket_size = batch_size * BATCHES_PER_BUCKET
    batches = []
    for start in range(0, len(order), bucket_size):
        bucket = sorted(order[start : start + bucket_size], key=lambda i: lengths[i], reverse=True)
        batches += [bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


@torch.no_grad()
def evaluate_mlm(model: PreTrainedModel, val_batches: list[dict], max_batches: int | None = None) -> float:
    """Mean masked-LM loss over all masked tokens of (the first `max_batches` of) the pre-masked val batches."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, total_tokens = 0.0, 0
    for batch in val_batches[:max_batches]:
        n_masked = int((batch["labels"] != -100).sum())
        if n_masked == 0:
            continue
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        total_loss += loss.item() * n_masked
        total_tokens += n_masked
    model.train(was_training)
    return total_loss / max(total_tokens, 1)


def train_mlm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_texts: Sequence[str],
    val_texts: Sequence[str],
    config: MLMTrainConfig,
    progress: bool = True,
    collator: DataCollatorForLanguageModeling | None = None,
) -> dict:
    """Train `model` (its parameters that require grad) with masked LM; returns a JSON-serialisable history.

    `collator` replaces the training collator (validation always uses plain masked LM).

    On return the model holds the trainable parameters of the best evaluation (lowest validation loss).
    Raises `FloatingPointError` naming the step if the training loss becomes NaN or infinite.
    """
    start_time = time.time()
    torch.manual_seed(config.seed)  # dropout
    device = next(model.parameters()).device

    # data: tokenise once; validation batches are padded and masked once, so every evaluation sees the same masks
    train_ids = tokenize_texts(tokenizer, train_texts, config.max_length)
    val_ids = tokenize_texts(tokenizer, val_texts, config.max_length)
    if not train_ids or not val_ids:
        raise ValueError(
            f"need non-empty train and val texts (got {len(train_ids)} and {len(val_ids)} examples)"
        )
    collator = collator or DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=config.mlm_probability, seed=config.seed
    )
    val_collator = DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=config.mlm_probability, seed=config.seed + 1
    )
    val_order = sorted(range(len(val_ids)), key=lambda i: len(val_ids[i]))  # little padding ...
    val_batches = [
        val_collator([{"input_ids": val_ids[i]} for i in val_order[s : s + config.batch_size]])
        for s in range(0, len(val_order), config.batch_size)
    ]
    shuffled = torch.randperm(len(val_batches), generator=torch.Generator().manual_seed(config.seed))
    val_batches = [val_batches[i] for i in shuffled.tolist()]  # ... and `eval_batches` picks a random subset
    train_lengths = [len(ids) for ids in train_ids]
    batch_generator = torch.Generator().manual_seed(config.seed)

    # optimisation: only what requires grad (the adapter, or everything for pre-training)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter that requires grad")
    optimizer = torch.optim.AdamW(
        params, lr=config.learning_rate, betas=(0.9, 0.999), eps=1e-8, weight_decay=config.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    trainable_names = [n for n, p in model.named_parameters() if p.requires_grad]

    def evaluate() -> float:
        return evaluate_mlm(model, val_batches, config.eval_batches)

    def snapshot() -> dict[str, torch.Tensor]:
        named = dict(model.named_parameters())
        return {n: named[n].detach().to("cpu", copy=True) for n in trainable_names}

    history: dict = {"train_loss": [], "val_loss": [[0, evaluate()]]}
    best_step, best_val_loss, best_state = 0, math.inf, snapshot()
    step, tokens_seen, loss_sum, loss_count = 0, 0, 0.0, 0
    model.train()
    bar = tqdm(total=config.max_steps, desc="mlm", disable=not progress)
    while step < config.max_steps:  # one pass of this loop = one epoch
        epoch_start_step = step
        for batch_indices in length_grouped_batches(train_lengths, config.batch_size, batch_generator):
            batch = collator([{"input_ids": train_ids[i]} for i in batch_indices])
            if not (batch["labels"] != -100).any():
                continue  # nothing was masked (only possible for tiny batches of very short texts): no loss
            batch = {k: v.to(device) for k, v in batch.items()}

            loss = model(**batch).loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"masked-LM loss became {loss.item()} at step {step + 1}")
            loss.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            step += 1
            tokens_seen += int(batch["attention_mask"].sum())
            loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
            bar.update(1)
            if step % config.log_every == 0 or step == config.max_steps:
                history["train_loss"].append([step, loss_sum / loss_count])
                bar.set_postfix(loss=f"{loss_sum / loss_count:.3f}")
                loss_sum, loss_count = 0.0, 0
            if step % config.eval_every == 0 or step == config.max_steps:
                val_loss = evaluate()
                history["val_loss"].append([step, val_loss])
                if val_loss < best_val_loss:
                    best_step, best_val_loss, best_state = step, val_loss, snapshot()
            if step == config.max_steps:
                break
        if step == epoch_start_step:
            raise ValueError(
                "no training batch had a maskable token: are the texts empty after tokenisation?"
            )
    bar.close()

    final_val_loss = history["val_loss"][-1][1]
    with torch.no_grad():  # load_best_model_at_end
        named = dict(model.named_parameters())
        for n, value in best_state.items():
            named[n].copy_(value.to(named[n].device))
    history.update(
        best_step=best_step,
        best_val_loss=best_val_loss,
        final_val_loss=final_val_loss,
        steps=step,
        tokens_seen=tokens_seen,
        seconds=round(time.time() - start_time, 3),
        trainable_params=sum(p.numel() for p in params),
    )
    return history
