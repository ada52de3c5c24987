"""The training settings, one typed class per concept: language-model training (`TrainConfig`: base-model
pre-training, language adapters, full fine-tuning, causal-LM adapters) and task-adapter training
(`TaskTrainConfig`: TC, SA, NER). The tiny models' sizes are `params.TinyModel`.

Each class is what a profile section holds (`adapt.<source>`, `full_finetuning.<source>`, `base_model.train`,
`causal_lm.*`; `finetune.<task>`), what a run spec hashes (its `train` block) and what the loop takes
(`training.loop.train_lm`, `evaluation.tasks.train_text_classifier`, `evaluation.ner.train_ner_tagger`): help
text, bounds and cross-field checks are here, and run when the profile is loaded (`schema.Checked`). Fields added
after runs were made are `_added` (not hashed at their default); the task seed is the run's (`FinetuneSpec.seed`,
from the profile's `seeds`), set with `dataclasses.replace` (`_runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lrl_utils.config.schema import MIN_LENGTH, Checked, _added, _help, _runtime, _seed, to_dict


@dataclass(frozen=True)
class TrainConfig(Checked):
    """Language-model training; the defaults are the paper's language-adapter settings (SPEC §4.2:
    run_mlm.py + AdapterTrainer)."""

    max_steps: int = _help("optimizer steps (paper: 100k GlotCC, 25k ConceptNet)", minimum=1, default=25_000)
    batch_size: int = _help("sequences per micro-batch and process (paper: 16)", minimum=1, default=16)
    learning_rate: float = _help("peak AdamW learning rate, decayed linearly to 0", above=0, default=1e-4)
    max_length: int = _help(
        "tokens per sequence incl. special tokens; longer ones are truncated", minimum=MIN_LENGTH, default=512
    )
    mlm_probability: float = _help(
        "share of tokens masked (BERT 80/10/10 scheme)", above=0, below=1, default=0.15
    )
    weight_decay: float = _help("AdamW weight decay (HF default 0)", minimum=0, default=0.0)
    warmup_steps: int = _help("linear warm-up steps (paper: none)", minimum=0, default=0)
    eval_every: int = _help(
        "validation loss every N steps (HF default 500); the best step is kept", minimum=1, default=500
    )
    eval_batches: int | None = _help(
        "validation batches per evaluation (null = all)", minimum=1, default=None
    )
    seed: int = _seed("seed of batch order, masking, dropout and the adapter's initial weights", default=42)
    objective: Literal["mlm", "clm"] = _help(
        "masked LM (mBERT, XLM-R), or causal LM for decoder models", default="mlm"
    )
    gradient_accumulation_steps: int = _help("micro-batches per optimizer step", minimum=1, default=1)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = _help(
        "auto = bf16 autocast on GPUs that support it, else fp32", default="auto"
    )
    checkpoint_every: int | None = _help(
        "resumable checkpoint every N steps (null = at every evaluation)", minimum=1, default=None
    )
    max_grad_norm: float = _added("gradient clipping norm (HF default 1.0; 0 = no clipping)", 1.0, minimum=0)
    log_every: int = _added("record the mean train loss every N steps", 50, minimum=1)

    def to_dict(self) -> dict:
        return to_dict(self)


@dataclass(frozen=True)
class TaskTrainConfig(Checked):
    """Task-adapter training; the defaults are the paper's topic-classification settings (SPEC §5.3; NER:
    `evaluation.ner.ner_config`)."""

    epochs: int = _help(
        "training epochs (paper TC: 20); the epoch with the lowest validation loss is tested",
        minimum=1,
        default=20,
    )
    batch_size: int = _help("training and evaluation batch size (paper: 32)", minimum=1, default=32)
    learning_rate: float = _help("peak AdamW learning rate (paper: 1e-4)", above=0, default=1e-4)
    warmup_ratio: float = _help("share of steps with linear warm-up", minimum=0, below=1, default=0.05)
    weight_decay: float = _help("AdamW weight decay (not on biases and LayerNorm)", minimum=0, default=0.01)
    max_length: int = _help("truncation length in tokens (paper TC: 256)", minimum=MIN_LENGTH, default=256)
    pooling: Literal["cls", "mean", "mean_norm", "mean_std"] = _help(
        "head input: first token (the paper), mean of token states, that mean layer-normalised, or each of its "
        "features standardised over the sentences (a batch norm without scale or shift)",
        default="cls",
    )
    label_alignment: Literal["first", "paper_compat"] = _help(
        "NER: label a word's first sub-token only, or every sub-token as the original code did",
        default="first",
    )
    missing_splits: Literal["error", "carve"] = _added(
        "SA/NER: a split the task's files lack (XTREME WikiANN has no labelled test, a sentiment set no dev or "
        "no split at all): `error`, or `carve` it out of the others, seeded by split_seed (test = half of "
        "validation; validation = 10% of train; both = the paper's 80/10/10 of train; lrl_utils/data/task_data.py)",
        "error",
    )
    split_seed: int = _added("seed of the carving (missing_splits: carve)", 42)
    max_grad_norm: float = _added("gradient clipping norm (HF Trainer default 1.0)", 1.0, above=0)
    precision: Literal["auto", "no", "bf16"] = _added(
        "auto = bf16 autocast on a CUDA GPU that supports it, else fp32; no = fp32; bf16", "auto"
    )
    seed: int = _runtime(
        "seed of random, numpy and torch (paper: 1, 2, 3)",
        "the run's seed is the spec's `seed`, one run per item of the profile's `seeds`",
        1,
    )
