"""What a grid costs in GPU-hours, before it is submitted (`./run_all.sh --executor slurm --dry-run`).

GPU-seconds of a run = the FLOPs it executes / (the GPU's peak dense throughput in the run's precision x MFU).

- FLOPs per token of a transformer encoder layer stack: forward 2·P_layers + 4·n·H·l (attention scores), with
  P_layers = l·(4H² + 2HF); the output projection costs 2·H·V per position it is computed at. Training adds a
  backward pass: 1x the forward for activation gradients (a frozen base with adapters), 2x with full fine-tuning.
- This pipeline (bf16, `slurm.gpu`'s bf16 peak): the LM head only at the masked (15%) positions, sequences grouped
  by length (padding share as measured by benchmarks/adapter_training.py), PPPL batched with the projection only
  at the one masked position per copy.
- The original setup (fp32 on the fp32 peak, no TF32: PyTorch's default for matmuls): full-vocabulary logits at
  every position, sequences padded as measured for the reference pipeline, PPPL one masked token per forward pass
  with logits at every position.
- Assumed: MFU 0.35 of the bf16 peak, 0.70 of the (much lower) fp32 peak, where plain GEMMs run closer to it
  (measured on an H200, benchmarks/README.md: the original setup reached 0.32-0.34 of the fp32 peak by this FLOP
  count, so its hours here are a lower bound); mean sequence fill 0.69 of `max_length` (the benchmark's measured documents);
  FLORES-200 devtest 1012 sentences of 40 subword tokens; task training sets (TC 701 SIB-200 sentences, SA 5,000,
  NER 5,000 sentences of 40 tokens); LLM baselines 1,000 items x (400 prompt + `max_new_tokens`) tokens at
  2·8e9 FLOPs per token; preprocess and report runs use no GPU.
The measured CPU speed-ups of the benchmarks (benchmarks/results/*.json) are printed beside the estimate as a check of
the direction; absolute CPU times say nothing about a GPU.
"""

from __future__ import annotations

import json
from collections import defaultdict

from lrl_utils.config import paths
from lrl_utils.config.cluster import GPU_PEAK_TFLOPS
from lrl_utils.config.specs import STAGES, Spec

MFU = {"bf16": 0.35, "fp32": 0.70}  # share of the peak reached: tensor-core bf16 vs plain fp32 GEMMs
FILL = 0.69  # mean tokens / max_length of the benchmark's documents (87.8 of 128)
DEVTEST = (1012, 40)  # sentences, tokens per sentence
TASK_TRAIN = {"tc": 701, "sa": 5000, "ner": 5000}
TASK_TOKENS = 40
LLM_ITEMS, LLM_PROMPT, LLM_FLOPS_PER_TOKEN = 1000, 400, 2 * 8.0e9
# hidden, layers, feed-forward, vocabulary of the paper's models (their configs on the hub)
SHAPES = {
    "mbert": (768, 12, 3072, 119547),
    "xlmr": (768, 12, 3072, 250002),
    "llama3": (4096, 32, 14336, 128256),
}
PADDING = {"ours": 0.0033, "original": 0.2838}  # fallback when the benchmark result is missing


def measured() -> dict:
    """Padding shares and CPU speed-ups measured by the benchmarks (benchmarks/results/*.json)."""
    out: dict = {"padding": dict(PADDING), "speedups": []}
    folder = paths.project_root() / "benchmarks" / "results"
    for path in sorted(folder.glob("adapter_training*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        run = data.get("runs", {}).get("xlmr", {})
        if "ours_bf16" in run and "ref_fp32" in run:
            out["padding"] = {
                "ours": run["ours_bf16"]["padding_share"],
                "original": run["ref_fp32"]["padding_share"],
            }
        for model, ratios in data.get("ratios", {}).items():
            if "ours_bf16_over_paper_setup" in ratios:
                out["speedups"].append(
                    f"adapter training {model} {ratios['ours_bf16_over_paper_setup']}x ({path.name})"
                )
    for path in sorted(folder.glob("pppl*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for model, comparison in data.get("comparisons", {}).items():
            if "speedup_subset_no" in comparison:
                out["speedups"].append(f"PPPL {model} {comparison['speedup_subset_no']}x ({path.name})")
    return out


def _shape(spec: Spec) -> tuple[int, int, int, int] | None:
    return SHAPES.get(getattr(spec, "model", ""))


def _encoder(shape, n: float) -> float:
    """Forward FLOPs per token of the layer stack at sequence length n."""
    hidden, layers, ffn, _ = shape
    return 2 * layers * (4 * hidden * hidden + 2 * hidden * ffn) + 4 * n * hidden * layers


def run_flops(spec: Spec, setup: str, padding: dict[str, float]) -> float:
    """FLOPs that run `spec` executes in `setup` (ours | original); 0 for CPU-only stages and tiny models."""
    shape = _shape(spec)
    if spec.stage == "llm":
        return LLM_ITEMS * (LLM_PROMPT + spec.max_new_tokens) * LLM_FLOPS_PER_TOKEN  # type: ignore[attr-defined]
    if shape is None:
        return 0.0
    hidden, _, _, vocab = shape
    head = 2 * hidden * vocab
    if spec.stage == "adapt":
        t = spec.train  # type: ignore[attr-defined]
        n = t.max_length * FILL
        tokens = t.max_steps * t.batch_size * t.gradient_accumulation_steps * n / (1 - padding[setup])
        backward = 2.0 if spec.adapter == "fft" else 1.0  # type: ignore[attr-defined]
        scored = t.mlm_probability if setup == "ours" and t.objective == "mlm" else 1.0
        return tokens * ((1 + backward) * _encoder(shape, n) + (1 + backward) * scored * head)
    if spec.stage == "pppl":
        sentences, n = DEVTEST
        per_copy = n * _encoder(shape, n) + (head if setup == "ours" else n * head)
        return sentences * n * per_copy  # one masked copy per token
    if spec.stage == "finetune":
        t = spec.train  # type: ignore[attr-defined]
        tokens = t.epochs * TASK_TRAIN[spec.task] * TASK_TOKENS / (1 - padding[setup])  # type: ignore[attr-defined]
        backward = 2.0 if spec.adapter == "fft" else 1.0  # type: ignore[attr-defined]
        return tokens * (1 + backward) * _encoder(shape, TASK_TOKENS)
    return 0.0


def estimate(specs: list[Spec], gpu: str) -> dict[str, dict[str, float]]:
    """stage -> {"ours": GPU-hours, "original": GPU-hours} on `gpu`."""
    padding = measured()["padding"]
    peak = GPU_PEAK_TFLOPS[gpu]
    hours: dict[str, dict[str, float]] = defaultdict(lambda: {"ours": 0.0, "original": 0.0})
    for spec in specs:
        for setup, precision in (("ours", "bf16"), ("original", "fp32")):
            if spec.stage == "llm":
                precision = "bf16"  # the LLM baselines run in bf16 in both
            seconds = run_flops(spec, setup, padding) / (peak[precision] * 1e12 * MFU[precision])
            hours[spec.stage][setup] += seconds / 3600
    return dict(hours)


def estimate_lines(grid, specs: list[Spec]) -> list[str]:
    """The dry run's table: GPU-hours per stage and in total, this pipeline vs the original setup."""
    gpu = grid.profile.slurm.gpu
    hours = estimate(specs, gpu)
    lines = [
        "",
        f"estimated GPU-hours on {gpu} ({len(specs)} unfinished runs; MFU bf16 {MFU['bf16']}, fp32 {MFU['fp32']}; see orchestration/cost.py)",
    ]
    lines.append(f"  {'stage':<11}{'this pipeline':>15}{'original setup':>16}")
    total = {"ours": 0.0, "original": 0.0}
    for stage in STAGES:
        if stage in hours:
            row = hours[stage]
            total = {k: total[k] + row[k] for k in total}
            lines.append(f"  {stage:<11}{row['ours']:>15,.1f}{row['original']:>16,.1f}")
    lines.append(f"  {'total':<11}{total['ours']:>15,.1f}{total['original']:>16,.1f}")
    if total["original"]:
        lines.append(
            f"  this pipeline: {total['ours'] / total['original']:.2f} of the original setup's GPU-hours"
        )
    speedups = measured()["speedups"]
    if speedups:
        lines.append("  measured CPU speed-ups (direction only): " + "; ".join(speedups))
    return lines
