"""Profile this project's adapter-training loop (`train_lm`) at the paper's mBERT shape, one precision per process.

    .venv/bin/python benchmarks/gpu_profile.py bf16 --steps 12     # or: no (fp32)

Prints each optimizer step's seconds and padded batch shape, then the operators that took the most self CPU and
self CUDA time over steps 5-8 (torch.profiler). Written to find why bf16 steps were slower than fp32 ones on an
H200 (benchmarks/README.md, "On a GPU").
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_at", Path(__file__).with_name("adapter_training.py"))
_at = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("precision", choices=["bf16", "no"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--shape", default="paper", choices=sorted(_at.SHAPES))
    args = parser.parse_args()
    import adapters
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from torch.profiler import ProfilerActivity, profile, schedule
    from transformers import AutoModelForMaskedLM

    from lrl_utils.adapters.methods import add_language_adapter
    from lrl_utils.config.train_settings import TrainConfig
    from lrl_utils.training.loop import train_lm

    shape = _at.SHAPES[args.shape]
    config = _at.model_config("mbert", shape)
    tokenizer = _at.build_tokenizer("mbert", config.vocab_size, shape.max_length)
    train_texts, val_texts = _at.make_texts("mbert", shape, config.vocab_size)
    torch.manual_seed(_at.SEED)
    model = AutoModelForMaskedLM.from_config(config)
    adapters.init(model)
    add_language_adapter(model, "seq_bn", name="mlm")
    shapes: list[tuple] = []
    model.base_model.encoder.register_forward_pre_hook(
        lambda _m, a, kw: shapes.append(tuple((a[0] if a else kw["hidden_states"]).shape))
    , with_kwargs=True)  # fmt: skip
    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    times: list[float] = []
    last = [time.perf_counter()]
    with profile(activities=activities, schedule=schedule(wait=4, warmup=1, active=4)) as prof:

        def hook(*_):
            if cuda:
                torch.cuda.synchronize()
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now
            prof.step()

        handle = register_optimizer_step_post_hook(hook)
        train_config = TrainConfig(
            objective="mlm", max_steps=args.steps, batch_size=shape.batch, learning_rate=1e-4,
            max_length=shape.max_length, mlm_probability=0.15, eval_every=args.steps, eval_batches=1,
            log_every=args.steps, seed=_at.SEED, mixed_precision=args.precision,
        )  # fmt: skip
        history = train_lm(model, tokenizer, train_texts, val_texts, train_config, progress=False)
        handle.remove()
    print(f"precision {history['precision']}; per step (s, encoder input shape):")
    for i, (t, s) in enumerate(zip(times, shapes, strict=False)):
        print(f"  step {i + 1}: {t:.3f} s  {s}")
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=18, max_name_column_width=60))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=60))


if __name__ == "__main__":
    main()
