"""The adapt stage: a language adapter (or full fine-tuning) trained on one corpus run's text.

`run(ctx)` is what `notebooks/03_adapt.py` and `python -m lrl_utils.orchestration.launch` call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelerate import PartialState

from lrl_utils.adapters.methods import (
    add_language_adapter,
    count_parameters,
    load_lm_model,
    save_language_adapter,
)
from lrl_utils.adapters.registry import FULL_FINETUNING
from lrl_utils.data.sources import load_text_splits
from lrl_utils.records.context import RunContext
from lrl_utils.records.results import now
from lrl_utils.training.loop import train_lm


def run(ctx: RunContext, progress: bool = True, launch: dict[str, Any] | None = None) -> dict[str, Any]:
    """The adapt stage of the pipeline: what `notebooks/03_adapt.py` and `python -m lrl_utils.orchestration.launch adapt`
    call.

    `ctx` is the stage's `RunContext` (an `AdaptSpec`, the output folder, where upstream runs are): load
    the base model, add the spec's adapter (method, library config, overrides, head path; initial weights and MoSA's draws seeded
    with `train.seed`), or make every weight trainable (`fft`), train it on the corpus run's train split with
    `train_lm` (validation split; resumable checkpoints in `ctx.checkpoint_dir()`, TensorBoard logs in
    `<out_dir>/tensorboard`), and save the best adapter to `<out_dir>/adapter` (the whole model to
    `<out_dir>/model` for `fft`).

    Under `accelerate launch` every process calls this with the same spec; only the main process writes into
    `out_dir` (checkpoints and logs too) and finishes the run (`ctx.finish(metrics, history=...)`, plus
    `launch`: the launcher's record, stamped `finished` here). Returns {"counts", "history", "metrics", "saved"}
    (`saved`: the adapter or model folder, None on the other processes). For `mosa`, `adapter_params` is the size
    of the saved (merged) `seq_bn` adapter and `trainable_params` what trained (the N module copies included).
    """
    spec = ctx.spec
    objective = spec.train.objective  # mlm | clm (decoders)
    name = None if spec.adapter == FULL_FINETUNING else objective  # as in the paper: "mlm" / "clm"
    splits = load_text_splits(ctx.input(spec.corpus), required=("train", "validation"))  # before any compute
    model, tokenizer = load_lm_model(ctx.model_path(), objective)
    counts = add_language_adapter(
        model,
        spec.adapter,
        name=name,
        overrides=spec.adapter_overrides,
        head_path=spec.head_path,
        seed=spec.train.seed,  # the adapter's initial weights (and MoSA's masks and module draws)
        config=spec.adapter_config,  # params/adapters.yaml's `config`: what the adapter is built from
    )
    history = train_lm(
        model,
        tokenizer,
        splits["train"]["text"],
        splits["validation"]["text"],
        spec.train,
        progress=progress,
        checkpoint_dir=ctx.checkpoint_dir(),
        log_dir=Path(ctx.out_dir) / "tensorboard",
    )
    saved = None
    if PartialState().is_main_process:
        folder = Path(ctx.out_dir) / ("model" if name is None else "adapter")
        saved = save_language_adapter(model, folder, name=name, tokenizer=tokenizer)
        # the saved adapter's size (MoSA: the merged adapter, not its N module copies)
        counts = {**counts, "adapter_params": count_parameters(model, name)["adapter_params"]}
    metrics = {
        "initial_val_loss": history["val_loss"][0][1],  # the fresh adapter: (nearly) the base model
        "best_val_loss": history["best_val_loss"],
        "final_val_loss": history["final_val_loss"],
        "best_step": history["best_step"],
        "adapter_params": counts["adapter_params"],
        "trainable_params": counts["trainable_params"],
        "precision": history["precision"],
        "num_processes": history["num_processes"],
    }
    if PartialState().is_main_process:
        extra = {} if launch is None else {"launch": {**launch, "finished": now()}}
        speed = {
            "tokens_per_second": history["tokens_seen"] / max(history["seconds"], 1e-9)
        }  # wall clock: not
        ctx.finish(
            metrics, history=history, throughput=speed, **extra
        )  # a metric, which depends on the spec alone
    return {"counts": counts, "history": history, "metrics": metrics, "saved": saved}
