"""One readable language-modelling training loop, on `accelerate`: base-model pre-training, language adapters,
full fine-tuning and causal-LM adapters all go through `train_lm`.

It does what the paper's `run_mlm.py` + `AdapterTrainer` did (SPEC §4.2), faster and resumable:

- line-by-line examples, truncated to `max_length` tokens (the rest is discarded), dynamic padding per batch;
  batches are *length-grouped* (shuffle, cut into buckets of 50 batches, sort each bucket by length, cut into
  batches, shuffle the batches: HF `group_by_length`), so little compute goes to padding;
- masked LM with `DataCollatorForLanguageModeling` (15%, BERT 80/10/10), or next-token prediction (`objective:
  clm`); the vocabulary projection is computed only at the positions that have a target (`lm_heads`);
- AdamW over the parameters that require grad (lr 1e-4, weight decay 0, HF's betas/eps), clipping at 1.0, linear
  decay to 0 over `max_steps` after `warmup_steps`; `gradient_accumulation_steps` micro-batches per step;
- `accelerate` places the model, runs bf16 autocast where the GPU supports it (`mixed_precision: auto`), and
  splits batches over processes under `accelerate launch` (each process takes its own batches of the same
  length-grouped order; the per-device batch is `batch_size`, as in the paper's 2-GPU runs);
- the validation loss (mean over all target tokens) every `eval_every` steps and at the end; the best evaluation
  (lowest loss) is kept as `best` and loaded back at the end (the original used the last checkpoint);
- with a `checkpoint_dir`, a checkpoint every `checkpoint_every` steps (`checkpoints.py`); a process killed at any
  point resumes from it with the same batches, masks, dropout and optimizer state: the final weights equal those of
  an uninterrupted run;
- TensorBoard scalars (`log_dir`) and a tqdm bar on the main process.

Failures: a NaN/inf loss or gradient norm stops the run (FloatingPointError naming the step and the last good
checkpoint, which is kept); an out-of-memory error names the batch shape and settings that failed.

Randomness: the batch order of epoch e and the masks of each batch are pure functions of (`seed`, e, batch index),
dropout draws from the global torch RNG seeded with `seed`; all of it is in the checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from tqdm.auto import tqdm
from transformers import (
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

from lrl_utils.adapters.heads import objective_for
from lrl_utils.adapters.hooks import hooks_of
from lrl_utils.config.train_settings import TrainConfig
from lrl_utils.training import checkpoints

BATCHES_PER_BUCKET = 50  # length-grouping window, as in transformers' LengthGroupedSampler (mega-batch of 50)


def resolve_precision(setting: str) -> str:
    """`auto` → `bf16` on a CUDA GPU that supports it, else `no` (fp32, as the paper ran)."""
    if setting != "auto":
        return setting
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def attention_kernels(device: torch.device | str):
    """A context that keeps `scaled_dot_product_attention` off cuDNN's kernel on a CUDA device (flash, memory-
    efficient or math attention instead); a no-op elsewhere. For bf16 on recent GPUs PyTorch prefers cuDNN
    attention, which builds an execution plan for every new sequence length: about 80 ms of CPU per layer call on
    an H200, measured by benchmarks/gpu_profile.py, and length-grouped batches (training) and length buckets (PPPL,
    tasks, generation) bring a new length at nearly every batch, so bf16 steps ran up to 7x slower than fp32 ones.
    The other kernels plan nothing per shape."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


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


def _derived_seed(*parts: int) -> int:
    seed = 0
    for part in parts:
        seed = (seed * 1_000_003 + part) % (2**63 - 1)
    return seed


def make_collator(tokenizer: PreTrainedTokenizerBase, config: TrainConfig, seed: int):
    if config.objective == "clm":
        return DataCollatorForLanguageModeling(tokenizer, mlm=False, seed=seed)
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability, seed=seed)


def collate(collator, examples: list[list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Pad and mask one batch with masks drawn from `seed` alone (so a resumed run draws the same masks)."""
    collator.generator = torch.Generator().manual_seed(seed)
    return collator([{"input_ids": ids} for ids in examples])


@torch.no_grad()
def evaluate_loss(objective, batches: list[dict], accelerator: Accelerator) -> float:
    """Mean loss over all target tokens of `batches` (each process scores its share; the sums are reduced)."""
    # the unwrapped module: a DDP forward may broadcast buffers, a collective that hangs when the processes score
    # different numbers of batches (e.g. one validation batch for two processes)
    module = accelerator.unwrap_model(objective)
    was_training = module.training
    module.eval()
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    for batch in batches[accelerator.process_index :: accelerator.num_processes]:
        try:
            with attention_kernels(accelerator.device):
                loss, n_tokens = module(**{k: v.to(accelerator.device) for k, v in batch.items()})
        except torch.OutOfMemoryError as error:
            rows, width = batch["input_ids"].shape
            raise RuntimeError(
                f"out of memory in evaluation on a batch of {rows} sequences x {width} tokens (batch_size, "
                "max_length): lower batch_size and raise gradient_accumulation_steps, or lower max_length"
            ) from error
        total += torch.stack([loss.double() * n_tokens, n_tokens.double()])
    total = accelerator.reduce(total, "sum") if accelerator.num_processes > 1 else total
    module.train(was_training)
    return (total[0] / total[1].clamp(min=1)).item()


def train_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_texts: Sequence[str],
    val_texts: Sequence[str],
    config: TrainConfig,
    progress: bool = True,
    collator=None,
    checkpoint_dir: str | Path | None = None,
    log_dir: str | Path | None = None,
) -> dict:
    """Train the parameters of `model` that require grad; returns a JSON-serialisable history.

    `collator` replaces the training collator (validation always uses the plain objective). With `checkpoint_dir`,
    an existing checkpoint there is resumed (it must have been written with the same settings). On return the
    model holds the trainable parameters of the best evaluation.
    """
    start_time = time.time()
    precision = resolve_precision(config.mixed_precision)
    hooks = hooks_of(model)  # what the adapter method adds to training (MoSA's), else nothing
    ddp = DistributedDataParallelKwargs(find_unused_parameters=hooks.unused_parameters)
    accelerator = Accelerator(mixed_precision=precision, kwargs_handlers=[ddp])
    rank, world = accelerator.process_index, accelerator.num_processes
    main = accelerator.is_main_process
    torch.manual_seed(config.seed)  # dropout (restored from the checkpoint when resuming)
    model.to(accelerator.device)

    # data: tokenise once; validation batches are padded and masked once, so every evaluation scores the same tokens
    train_ids = tokenize_texts(tokenizer, train_texts, config.max_length)
    val_ids = tokenize_texts(tokenizer, val_texts, config.max_length)
    if not train_ids or not val_ids:
        raise ValueError(f"need non-empty train and val texts (got {len(train_ids)} and {len(val_ids)})")
    collator = collator or make_collator(tokenizer, config, config.seed)
    val_collator = make_collator(tokenizer, config, config.seed + 1)
    val_order = sorted(range(len(val_ids)), key=lambda i: len(val_ids[i]))  # little padding
    val_batches = [
        collate(
            val_collator,
            [val_ids[i] for i in val_order[s : s + config.batch_size]],
            _derived_seed(config.seed, s),
        )
        for s in range(0, len(val_order), config.batch_size)
    ]
    shuffled = torch.randperm(len(val_batches), generator=torch.Generator().manual_seed(config.seed)).tolist()
    val_batches = [val_batches[i] for i in shuffled][: config.eval_batches]  # a random subset if eval_batches
    lengths = [len(ids) for ids in train_ids]
    special = set(tokenizer.all_special_ids)
    if not any(t not in special for ids in train_ids for t in ids):
        raise ValueError("the training texts hold no token besides special tokens after tokenisation")

    # optimisation: only what requires grad (the adapter, or everything for pre-training / full fine-tuning)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter that requires grad")
    optimizer = torch.optim.AdamW(
        params, lr=config.learning_rate, betas=(0.9, 0.999), eps=1e-8, weight_decay=config.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    objective, optimizer = accelerator.prepare(
        objective_for(model, config.objective, hooks.full_forward), optimizer
    )

    # state: fresh, or resumed from the checkpoint
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    settings = {**config.to_dict(), "num_processes": world, "precision": precision}
    state = {"step": 0, "epoch": 0, "position": 0, "micro": 0, "tokens": 0, "loss_sum": 0.0, "loss_count": 0}
    history: dict = {"train_loss": [], "val_loss": [], "learning_rate": []}
    best = {"step": 0, "val_loss": math.inf, "weights": checkpoints.trainable_state(model)}
    saved = checkpoints.load(folder / checkpoints.LAST) if folder else None
    if saved is not None:
        checkpoints.check_settings(saved["settings"], settings, folder / checkpoints.LAST)
        checkpoints.load_trainable_state(model, saved["weights"], str(folder / checkpoints.LAST))
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state, history = saved["state"], saved["history"]
        # the time the interrupted segments trained, up to the checkpoint
        start_time -= saved.get("seconds", 0.0)
        best = checkpoints.load(folder / checkpoints.BEST) or best
        checkpoints.set_rng_state(model, saved["rng"][min(rank, len(saved["rng"]) - 1)])
        if main:
            print(f"resuming from {folder / checkpoints.LAST} at step {state['step']} of {config.max_steps}")
    else:
        history["val_loss"].append(
            [0, evaluate_loss(objective, val_batches, accelerator)]
        )  # untrained reference

    every_checkpoint = config.checkpoint_every or config.eval_every
    writer = None
    if log_dir is not None and main:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: TensorBoard drops what an interrupted run logged after the checkpoint this run resumes from
        writer = SummaryWriter(str(log_dir), purge_step=state["step"] + 1)

    def save_checkpoint() -> None:
        rngs = checkpoints.rng_state(model)
        if world > 1:
            from accelerate.utils import gather_object

            rngs = gather_object([rngs])
        else:
            rngs = [rngs]
        if main:
            checkpoints.save_last(folder, {
                "settings": settings, "state": state, "history": history, "rng": rngs,
                "weights": checkpoints.trainable_state(model),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "seconds": time.time() - start_time,  # a resumed run's throughput counts all its segments
            })  # fmt: skip
        accelerator.wait_for_everyone()

    def last_good() -> str:
        saved_now = checkpoints.load(folder / checkpoints.LAST) if folder else None
        if saved_now is None:
            return "no checkpoint was written" + ("" if folder else " (no checkpoint_dir)")
        return f"the last good checkpoint is {folder / checkpoints.LAST} (step {saved_now['state']['step']})"

    objective.train()
    bar = tqdm(
        total=config.max_steps, initial=state["step"], desc=config.objective, disable=not (progress and main)
    )
    epoch_batches: list[list[int]] | None = None
    micro_per_step = config.gradient_accumulation_steps
    while state["step"] < config.max_steps:
        # the next micro-batch of this process: position + rank in the epoch's batch list (drop an uneven tail)
        if epoch_batches is None or state["position"] + world > len(epoch_batches):
            if epoch_batches is not None:
                state["epoch"], state["position"] = state["epoch"] + 1, 0
            generator = torch.Generator().manual_seed(_derived_seed(config.seed, state["epoch"]))
            epoch_batches = length_grouped_batches(lengths, config.batch_size, generator)
            if len(epoch_batches) < world:
                raise ValueError(f"{len(epoch_batches)} training batches cannot feed {world} processes")
            continue
        index = state["position"] + rank
        batch = collate(
            collator,
            [train_ids[i] for i in epoch_batches[index]],
            _derived_seed(config.seed, state["epoch"], index),
        )
        state["position"] += world
        micro = state["micro"]
        sync = micro + 1 == micro_per_step
        try:
            no_sync = accelerator.no_sync(objective) if not sync else contextlib.nullcontext()
            with no_sync, attention_kernels(accelerator.device):
                loss, n_tokens = objective(**{k: v.to(accelerator.device) for k, v in batch.items()})
                loss_value = accelerator.reduce(loss.detach(), "mean") if world > 1 else loss.detach()
                if not torch.isfinite(loss_value):
                    raise FloatingPointError(
                        f"training loss became {loss_value.item()} at step {state['step'] + 1}; stopped: {last_good()}"
                    )
                accelerator.backward(loss / micro_per_step)
            state["micro"] = micro + 1
            state["tokens"] += int(batch["attention_mask"].sum())
            state["loss_sum"] += loss_value.item() / micro_per_step
            if not sync:
                continue
            grad_norm = accelerator.clip_grad_norm_(params, config.max_grad_norm or math.inf)
            if precision != "fp16" and not torch.isfinite(
                torch.as_tensor(grad_norm)
            ):  # fp16: the scaler skips
                raise FloatingPointError(
                    f"gradient norm became {float(grad_norm)} at step {state['step'] + 1}; stopped: {last_good()}"
                )
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        except torch.OutOfMemoryError as error:
            shape = tuple(batch["input_ids"].shape)
            raise RuntimeError(
                f"out of memory at step {state['step'] + 1} on a batch of {shape[0]} sequences x {shape[1]} tokens "
                f"(batch_size={config.batch_size}, max_length={config.max_length}, gradient_accumulation_steps="
                f"{micro_per_step}): lower batch_size and raise gradient_accumulation_steps, or lower max_length"
            ) from error

        state["micro"] = 0
        state["step"] += 1
        state["loss_count"] += 1
        step = state["step"]
        bar.update(1)
        if step % config.log_every == 0 or step == config.max_steps:
            mean_loss = state["loss_sum"] / state["loss_count"]
            history["train_loss"].append([step, mean_loss])
            history["learning_rate"].append([step, scheduler.get_last_lr()[0]])
            bar.set_postfix(loss=f"{mean_loss:.3f}")
            if writer:
                writer.add_scalar("train/loss", mean_loss, step)
                writer.add_scalar("train/learning_rate", scheduler.get_last_lr()[0], step)
            state["loss_sum"], state["loss_count"] = 0.0, 0
        if step % config.eval_every == 0 or step == config.max_steps:
            val_loss = evaluate_loss(objective, val_batches, accelerator)
            history["val_loss"].append([step, val_loss])
            if writer:
                writer.add_scalar("val/loss", val_loss, step)
            if val_loss < best["val_loss"]:
                best = {"step": step, "val_loss": val_loss, "weights": checkpoints.trainable_state(model)}
                if folder and main:
                    checkpoints.save_best(folder, step, val_loss, best["weights"])
        if folder and (step % every_checkpoint == 0 or step == config.max_steps):
            save_checkpoint()
        if folder and step < config.max_steps and checkpoints.stop_requested(world):  # SLURM's signal
            if step % every_checkpoint:
                save_checkpoint()
            raise checkpoints.Preempted(f"stopped on request at step {step}: {last_good()}")
    bar.close()
    if writer:
        writer.close()

    checkpoints.load_trainable_state(model, best["weights"])  # load_best_model_at_end
    tokens = torch.tensor(float(state["tokens"]), device=accelerator.device)
    tokens = accelerator.reduce(tokens, "sum") if world > 1 else tokens
    history.update(
        best_step=best["step"],
        best_val_loss=best["val_loss"],
        final_val_loss=history["val_loss"][-1][1],
        steps=state["step"],
        tokens_seen=int(tokens.item()),
        seconds=round(time.time() - start_time, 3),
        trainable_params=sum(p.numel() for p in params),
        precision=precision,
        num_processes=world,
    )
    return history
