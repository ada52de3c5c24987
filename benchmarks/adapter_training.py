"""Benchmark: training speed of a `seq_bn` language adapter, `train_lm` against the paper's `AdapterTrainer` pipeline.

    .venv/bin/python benchmarks/adapter_training.py                       # GPU: paper shapes; CPU: small shapes
    .venv/bin/python benchmarks/adapter_training.py --shape paper --steps 30 --warmup 5
    .venv/bin/python benchmarks/adapter_training.py --shape tiny --models mbert --steps 2 --warmup 1   # smoke

**Models.** An mBERT-shaped (`BertConfig`, vocabulary 119,547) and an XLM-R-base-shaped (`XLMRobertaConfig`,
vocabulary 250,002) `AutoModelForMaskedLM` built from config with random weights (speed does not depend on them),
`adapters.init`, and a `seq_bn` adapter named "mlm" (reduction factor 16). Shapes (`--shape`):

| shape | hidden | layers | heads | FFN | vocabulary | batch | max length | default on |
|---|---|---|---|---|---|---|---|---|
| `paper` | 768 | 12 | 12 | 3072 | real (119,547 / 250,002) | 16 | 512 | CUDA |
| `small` | 256 | 2 | 4 | 1024 | real (119,547 / 250,002) | 16 | 128 | CPU |
| `tiny` | 32 | 1 | 2 | 64 | 1,000 | 4 | 32 | (smoke test) |

`small` keeps the real vocabularies: the vocabulary projection (250k wide for XLM-R) is what `train_lm` computes
only at the masked positions, so shrinking it would hide the main difference between the pipelines.

**Data.** Random token-id documents, generated identically (seed 42) in every run: lengths (with the two special
tokens) drawn from a log-normal with median 0.75 x max length and sigma 0.9, clipped to [8, max length], so about
37% are truncated at max length as GlotCC documents are (`--line_by_line`, one document per example, SPEC §4.2);
content ids uniform over the non-special ids of the whole vocabulary. 1,600 training documents (two of
`train_lm`'s 800-document length-grouping buckets; 64 for `tiny`) and one batch of validation documents. Both
pipelines get the same token ids: the documents are written as words `w<id>` of a `PreTrainedTokenizerFast`
(WordLevel) whose vocabulary is the model's, with the model's special-token ids ([PAD] 0, [CLS] 101, [SEP] 102,
[MASK] 103 for mBERT; <s> 0, <pad> 1, </s> 2, <mask> 250001 for XLM-R) and its post-processor adding [CLS]/[SEP]
(<s>/</s>). `train_lm` gets the texts and the tokenizer, as in the adapt stage; the reference gets the ids of the
same tokenizer (`lrl_utils.training.loop.tokenize_texts`) with `special_tokens_mask`, as `run_mlm.py --line_by_line`.

**Pipelines**, each in its own process (clean peak memory, and accelerate's `AcceleratorState` cannot switch mixed
precision within one process), same data, same seed (42):

- `ours_fp32`: `add_language_adapter(model, "seq_bn", name="mlm")` + `train_lm(..., TrainConfig(batch_size=B,
  max_length=L, learning_rate=1e-4, mlm_probability=0.15, mixed_precision="no"))` (length-grouped batches, the
  vocabulary projection at the masked positions only).
- `ours_bf16`: the same with `mixed_precision="auto"` (bf16 autocast on a GPU that supports it); on a CPU, where
  "auto" is fp32, `mixed_precision="bf16"` (CPU autocast) instead.
- `ref_fp32`: the paper's pipeline: `AutoModelForMaskedLM` + `adapters.init` + `add_adapter("mlm", "seq_bn")` +
  `train_adapter("mlm")`, `adapters.AdapterTrainer` with `DataCollatorForLanguageModeling(mlm_probability=0.15)`
  and `TrainingArguments(per_device_train_batch_size=B, max_steps=..., learning_rate=1e-4, group_by_length=False,
  report_to=[], save_strategy="no", eval_strategy="no", seed=42)`, other settings HF's defaults; fp32 as the paper
  ran it (the paper's setup).
- `ref_bf16`: the same with `bf16=True`.

**Timing.** Warm-up `--warmup` optimizer steps, then `--steps` measured steps (defaults: 5 + 20 on a GPU, 1 + 4
on a CPU), over `--repeats` interleaved rounds (medians reported, every round kept): the clock runs from the end of
optimizer step N to the end of step N + M (a global `torch.optim` step post-hook, with `torch.cuda.synchronize()`
on a GPU), so it covers M whole steps (batch fetch and collation, forward, backward, clipping, optimizer, scheduler)
and nothing else (no model build, tokenisation or evaluation). A forward pre-hook on the encoder records each
measured batch's shape and sequence lengths.

- tokens/s = non-padding tokens of the measured steps / seconds.
- peak memory: GPU: `torch.cuda.max_memory_allocated()` over the run (weights included); CPU: the process's peak
  RSS (`VmHWM`), also given as the increase over the RSS just before training.
- MFU = model FLOPs of the measured steps / seconds / the device's peak FLOP/s for the precision the pipeline
  computes in (H100 SXM and H200: 989 TFLOP/s dense bf16, 67 TFLOP/s fp32; H100 PCIe 756 / 51; A100 312 / 19.5;
  `--peak-tflops BF16,FP32` for others); null on a CPU (no defensible peak).

**Model FLOPs** of one training sequence of n non-padding tokens (H hidden, F FFN, l layers, V vocabulary,
b = H/16 adapter bottleneck); matrix products only, 2 FLOPs per multiply-add:

    forward  = n * l * (8H^2 + 4HF)          Q, K, V, output projections and the FFN
             + l * 4 n^2 H                   attention scores QK^T and the weighted sum of V
             + n * l * 4Hb                   the seq_bn adapter (down and up projection)
             + n * (2H^2 + 2HV)              MLM head: transform dense and vocabulary projection, at ALL n positions
    backward = n * l * 8Hb                   adapter: input and weight gradients (2x its forward)
             + (l - 1) * (n (8H^2 + 4HF) + 8 n^2 H)
                                             frozen layers above the first adapter: input gradients only (1x the
                                             forward of each weight product; 2x for the two attention products,
                                             whose both operands are activations); the first layer's attention and
                                             FFN lie below every trainable parameter and get no backward
             + n * (2H^2 + 2HV)              MLM head: input gradients only (frozen)
    model FLOPs = forward + backward

The same formula is the numerator of every pipeline: it counts the vocabulary projection at every position, as
the paper's setup computes it. `train_lm` computes it only at the ~15% masked positions (and groups batches by
length, so less padding is computed), so "model FLOPs/s" credits it with the useful work of the paper's model, not
with what it executes. Padding positions are not credited to any pipeline. The reference's `train_adapter` leaves
the MLM head transform trainable (its weight gradient, 2H^2 per token, < 0.2% of the total, is not counted);
`add_language_adapter` freezes it, as the paper states.

Results go to `benchmarks/results/adapter_training-<machine>.json` (`--out`) with their provenance; a Markdown
table is printed. Absolute speeds are meaningful on a GPU only; on a CPU the ratios show the direction.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
SEED = 42
RESULT_PREFIX = "ADAPTER_TRAINING_RESULT "
PIPELINES = ("ours_fp32", "ours_bf16", "ref_fp32", "ref_bf16")
MODELS = ("mbert", "xlmr")
PEAK_TFLOPS = [  # (substring of the CUDA device name, dense bf16, fp32 without tensor cores), first match wins
    ("H100 PCIe", 756.0, 51.0),
    ("H100", 989.0, 67.0),
    ("H200", 989.0, 67.0),
    ("A100", 312.0, 19.5),
]


class Shape(NamedTuple):
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int | None  # None: the real vocabulary of each model
    batch: int
    max_length: int
    train_docs: int


SHAPES = {
    "paper": Shape(768, 12, 12, 3072, None, 16, 512, 1600),
    "small": Shape(256, 2, 4, 1024, None, 16, 128, 1600),
    "tiny": Shape(32, 1, 2, 64, 1000, 4, 32, 64),
}
REAL_VOCAB = {"mbert": 119547, "xlmr": 250002}


def _load_sibling(name: str):
    spec = importlib.util.spec_from_file_location(
        f"_benchmarks_{name}", Path(__file__).with_name(f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_common = _load_sibling("conceptnet_convert")  # provenance() and peak_rss_mb(), shared by the benchmarks


# ----------------------------------------------------------------------------------------------------------
# Model FLOPs


def model_flops(n: int, hidden: int, ffn: int, layers: int, vocab: int) -> dict[str, int]:
    """Training FLOPs of one sequence of `n` tokens through a frozen encoder with a `seq_bn` adapter (see the
    module docstring); `vocab_projection` is the part of the total spent on the vocabulary projection."""
    h, f, v, b = hidden, ffn, vocab, hidden // 16
    dense = 8 * h * h + 4 * h * f  # per token and layer: attention projections + FFN
    attention = 4 * n * n * h  # per layer: QK^T and (softmax)V
    adapter = 4 * h * b  # per token and layer
    head = 2 * h * h + 2 * h * v  # per token: transform + vocabulary projection
    forward = n * layers * dense + layers * attention + n * layers * adapter + n * head
    backward = n * layers * 2 * adapter + (layers - 1) * (n * dense + 2 * attention) + n * head
    return {"total": forward + backward, "vocab_projection": 2 * n * 2 * h * v}


# ----------------------------------------------------------------------------------------------------------
# Data, tokenizer and model (in the child processes)


def special_tokens(model: str, vocab: int) -> dict[str, tuple[str, int]]:
    """The model's special tokens: role -> (token, id), at the real checkpoints' ids."""
    if model == "mbert":
        return {"pad": ("[PAD]", 0), "unk": ("[UNK]", 100), "cls": ("[CLS]", 101), "sep": ("[SEP]", 102),
                "mask": ("[MASK]", 103)}  # fmt: skip
    return {"cls": ("<s>", 0), "pad": ("<pad>", 1), "sep": ("</s>", 2), "unk": ("<unk>", 3),
            "mask": ("<mask>", vocab - 1)}  # fmt: skip


def content_id_range(model: str, vocab: int) -> tuple[int, int]:
    """[low, high) of the ids the documents are drawn from (no special token inside)."""
    return (104, vocab) if model == "mbert" else (4, vocab - 1)


def document_lengths(shape: Shape, count: int, seed: int) -> list[int]:
    """Token counts (special tokens included) of `count` documents: log-normal, median 0.75 x max length, sigma
    0.9, clipped to [8, max length] (about 37% truncated at max length)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    raw = rng.lognormal(mean=math.log(0.75 * shape.max_length), sigma=0.9, size=count)
    return [int(x) for x in np.clip(np.rint(raw), 8, shape.max_length)]


def make_texts(model: str, shape: Shape, vocab: int, seed: int = SEED) -> tuple[list[str], list[str]]:
    """Training and validation documents as words `w<id>` (ids of the whole vocabulary, no special token)."""
    import numpy as np

    low, high = content_id_range(model, vocab)
    lengths = document_lengths(shape, shape.train_docs + shape.batch, seed)
    rng = np.random.default_rng(seed + 1)
    texts = [" ".join(f"w{i}" for i in rng.integers(low, high, size=n - 2).tolist()) for n in lengths]
    return texts[: shape.train_docs], texts[shape.train_docs :]


def build_tokenizer(model: str, vocab: int, max_length: int):
    """A WordLevel fast tokenizer over `vocab` ids (`w<id>`, special tokens at the model's ids) that adds the
    model's [CLS]/[SEP] (<s>/</s>) around each text."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = special_tokens(model, vocab)
    by_id = {i: token for token, i in specials.values()}
    words = {by_id.get(i, f"w{i}"): i for i in range(vocab)}
    backend = Tokenizer(models.WordLevel(words, unk_token=specials["unk"][0]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    (cls, cls_id), (sep, sep_id) = specials["cls"], specials["sep"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", special_tokens=[(cls, cls_id), (sep, sep_id)]
    )
    extra = {"bos_token": cls, "eos_token": sep} if model == "xlmr" else {}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=max_length,
        model_input_names=["input_ids", "attention_mask"],
        **{f"{role}_token": token for role, (token, _) in specials.items()},
        **extra,
    )
    assert len(tokenizer) == vocab and tokenizer.pad_token_id == specials["pad"][1]
    return tokenizer


def model_config(model: str, shape: Shape):
    from transformers import BertConfig, XLMRobertaConfig

    dims = {"hidden_size": shape.hidden, "num_hidden_layers": shape.layers,
            "num_attention_heads": shape.heads, "intermediate_size": shape.ffn}  # fmt: skip
    vocab = shape.vocab or REAL_VOCAB[model]
    if model == "mbert":  # bert-base-multilingual-cased
        return BertConfig(
            vocab_size=vocab, max_position_embeddings=512, type_vocab_size=2, pad_token_id=0, **dims
        )
    return XLMRobertaConfig(  # xlm-roberta-base
        vocab_size=vocab, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, **dims,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# One pipeline in this process (`--_child`)


class Recorder:
    """Clock from the end of optimizer step `warmup` to the end of step `warmup + steps`; the batches between."""

    def __init__(self, encoder, warmup: int, steps: int):
        import torch
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.torch, self.warmup, self.steps = torch, warmup, steps
        self.count, self.start, self.end = 0, None, None
        self.cpu_start = self.cpu_end = None  # process CPU time (all threads, user + system)
        self.batches: list[dict] = []
        self._handles = [
            register_optimizer_step_post_hook(self._on_step),
            encoder.register_forward_pre_hook(self._on_forward, with_kwargs=True),
        ]
        self._pad_id = encoder.config.pad_token_id

    def _sync(self) -> float:
        if self.torch.cuda.is_available():
            self.torch.cuda.synchronize()
        return time.perf_counter()

    def _on_step(self, optimizer, args, kwargs) -> None:
        self.count += 1
        if self.count == self.warmup:
            self.start, self.cpu_start = self._sync(), time.process_time()
        elif self.count == self.warmup + self.steps:
            self.end, self.cpu_end = self._sync(), time.process_time()

    def _on_forward(self, module, args, kwargs):
        if module.training and self.warmup <= self.count < self.warmup + self.steps:
            ids = kwargs.get("input_ids", args[0] if args else None)
            mask = kwargs.get("attention_mask")
            mask = mask if mask is not None else ids != self._pad_id
            self.batches.append({"shape": list(ids.shape), "lengths": mask.sum(dim=1).tolist()})
        return None

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _rss_mb() -> float | None:
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:"))) / 1024
    except (OSError, StopIteration):
        return None


def run_pipeline(spec: dict) -> dict:
    """Build the model, train `warmup + steps` steps with one pipeline, return the measured numbers."""
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    import adapters
    from transformers import AutoModelForMaskedLM

    model_name, pipeline, shape = spec["model"], spec["pipeline"], SHAPES[spec["shape"]]
    warmup, steps = spec["warmup"], spec["steps"]
    config = model_config(model_name, shape)
    tokenizer = build_tokenizer(model_name, config.vocab_size, shape.max_length)
    train_texts, val_texts = make_texts(model_name, shape, config.vocab_size)
    torch.manual_seed(SEED)
    model = AutoModelForMaskedLM.from_config(config)
    adapters.init(model)
    if pipeline.startswith("ours"):
        from lrl_utils.adapters.methods import add_language_adapter

        add_language_adapter(model, "seq_bn", name="mlm")
    else:  # run_mlm.py's setup_adapter_training: the library's seq_bn, train_adapter
        model.add_adapter("mlm", config="seq_bn")
        model.train_adapter("mlm")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    recorder = Recorder(model.base_model, warmup, steps)
    rss_before = _rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    total_steps = warmup + steps
    if pipeline.startswith("ours"):
        from lrl_utils.config.train_settings import TrainConfig
        from lrl_utils.training.loop import train_lm

        setting = "no" if pipeline == "ours_fp32" else ("auto" if cuda else "bf16")
        train_config = TrainConfig(
            objective="mlm", max_steps=total_steps, batch_size=shape.batch, learning_rate=1e-4,
            max_length=shape.max_length, mlm_probability=0.15, eval_every=total_steps, eval_batches=1,
            log_every=total_steps, seed=SEED, mixed_precision=setting,
        )  # fmt: skip
        history = train_lm(model, tokenizer, train_texts, val_texts, train_config, progress=False)
        precision, done = history["precision"], history["steps"]
    else:
        from adapters import AdapterTrainer
        from transformers import DataCollatorForLanguageModeling, TrainingArguments

        from lrl_utils.training.loop import tokenize_texts

        bf16 = pipeline == "ref_bf16"
        ids = tokenize_texts(tokenizer, train_texts, shape.max_length)
        dataset = [
            {"input_ids": x, "special_tokens_mask": tokenizer.get_special_tokens_mask(x, already_has_special_tokens=True)}
            for x in ids
        ]  # fmt: skip
        setting, precision = ("bf16=True" if bf16 else "fp32"), ("bf16" if bf16 else "no")
        with tempfile.TemporaryDirectory() as out_dir:
            args = TrainingArguments(
                output_dir=out_dir, per_device_train_batch_size=shape.batch, max_steps=total_steps,
                learning_rate=1e-4, bf16=bf16, use_cpu=not cuda, group_by_length=False, report_to=[],
                save_strategy="no", eval_strategy="no", seed=SEED, disable_tqdm=True,
            )  # fmt: skip
            collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
            trainer = AdapterTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
            done = trainer.train().global_step
    recorder.remove()
    if recorder.start is None or recorder.end is None or done != total_steps:
        raise RuntimeError(f"{pipeline}: {done} optimizer steps seen, expected {total_steps}")
    seconds = recorder.end - recorder.start
    lengths = [n for batch in recorder.batches for n in batch["lengths"]]
    padded = sum(b["shape"][0] * b["shape"][1] for b in recorder.batches)
    dims = (shape.hidden, shape.ffn, shape.layers, config.vocab_size)
    flops = [model_flops(n, *dims) for n in lengths]
    result = {
        "model": model_name,
        "pipeline": pipeline,
        "mixed_precision_setting": setting,
        "precision": precision,
        "trainable_params": trainable,
        "weights_mb": round(weights_mb, 1),
        "measured_steps": steps,
        "measured_batches": len(recorder.batches),
        "seconds": seconds,
        "seconds_per_step": seconds / steps,
        "cpu_seconds": recorder.cpu_end - recorder.cpu_start,  # < threads x seconds when others share the CPU
        "tokens": sum(lengths),
        "padded_tokens": padded,
        "padding_share": round(1 - sum(lengths) / padded, 4) if padded else None,
        "tokens_per_second": sum(lengths) / seconds,
        "model_flops": sum(f["total"] for f in flops),
        "vocab_projection_share_of_model_flops": round(
            sum(f["vocab_projection"] for f in flops) / max(1, sum(f["total"] for f in flops)), 4
        ),
        "model_tflops_per_second": sum(f["total"] for f in flops) / seconds / 1e12,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "threads": None if cuda else torch.get_num_threads(),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32) if cuda else None,
    }
    if cuda:
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["peak_memory_kind"] = "torch.cuda.max_memory_allocated"
    else:
        result["peak_memory_mb"] = _common.peak_rss_mb()
        result["peak_memory_kind"] = "VmHWM (peak RSS of the process)"
        result["rss_before_training_mb"] = rss_before
        if rss_before is not None:
            result["peak_rss_increase_mb"] = result["peak_memory_mb"] - rss_before
    return result


# ----------------------------------------------------------------------------------------------------------
# The driver


def run_child(script: Path, prefix: str, spec: dict, error_keys: tuple[str, ...]) -> dict:
    """`script --_child SPEC` in a fresh process: the JSON of its last line starting with `prefix`, or, if it
    failed, the spec's `error_keys` and the last line it wrote as "error" (also used by benchmarks/pppl.py)."""
    cmd = [sys.executable, str(script.resolve()), "--_child", json.dumps(spec)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(prefix)]
    if done.returncode or not lines:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        return {key: spec[key] for key in error_keys} | {"error": tail[0][-500:]}
    return json.loads(lines[-1][len(prefix) :])


def _child(spec: dict) -> dict:
    return run_child(Path(__file__), RESULT_PREFIX, spec, error_keys=("model", "pipeline"))


def _device_info(args: argparse.Namespace) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"kind": "cpu", "name": _common.provenance()["machine"]["cpu_model"], "peak_tflops": None}
    name = torch.cuda.get_device_name()
    peak = None
    if args.peak_tflops:
        bf16, fp32 = (float(x) for x in args.peak_tflops.split(","))
        peak = {"bf16": bf16, "no": fp32, "source": "--peak-tflops"}
    else:
        for key, bf16, fp32 in PEAK_TFLOPS:
            if key in name:
                peak = {"bf16": bf16, "no": fp32, "source": f"datasheet, dense, '{key}'"}
                break
    props = torch.cuda.get_device_properties(0)
    return {
        "kind": "cuda",
        "name": name,
        "memory_gb": round(props.total_memory / 1024**3, 1),
        "cuda": torch.version.cuda,
        "peak_tflops": peak,
    }


def _machine_slug(device: dict) -> str:
    if device["kind"] == "cpu":
        return f"cpu{os.cpu_count()}"
    return re.sub(r"[^a-z0-9]+", "-", device["name"].lower()).strip("-")


def parse_args(
    parser: argparse.ArgumentParser, argv, name: str, prefix: str, child
) -> argparse.Namespace | None:
    """Add the options every benchmark has (`--out`, the hidden `--_child SPEC`) and parse `argv`; in a child
    process, print `prefix` + the JSON of `child(spec)` and return None (also used by benchmarks/pppl.py)."""
    parser.add_argument("--out", help=f"results file; default benchmarks/results/{name}-<machine>.json")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print(prefix + json.dumps(child(json.loads(args._child))), flush=True)
        return None
    return args


def write_result(result: dict, out: str | None, name: str) -> Path:
    """Write a benchmark's result to `out` (default `benchmarks/results/<name>-<machine>.json`) and print a line
    saying where, on which device, when and at which shape (also used by benchmarks/pppl.py)."""
    device = result["provenance"]["device"]
    path = Path(out) if out else ROOT / "benchmarks" / "results" / f"{name}-{_machine_slug(device)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    wall = f", {result['wall_seconds']} s" if "wall_seconds" in result else ""
    print(
        f"\n{path}: {device['name']}, {result['provenance']['date']}, shape {result['settings']['shape']}{wall}\n"
    )
    return path


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("transformers", "adapters", "accelerate", "tokenizers", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def _median_run(runs: list[dict], device: dict) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1]["error"]}
    per_run = ("seconds", "cpu_seconds", "wall_seconds", "load_average_1min", "tokens_per_second")
    out = {k: v for k, v in ok[0].items() if k not in (*per_run, "model_tflops_per_second")}
    tps = statistics.median(r["tokens_per_second"] for r in ok)
    tflops = statistics.median(r["model_tflops_per_second"] for r in ok)
    out.update(
        rounds=len(ok),
        tokens_per_second=_sig(tps),
        tokens_per_second_all=[_sig(r["tokens_per_second"]) for r in ok],
        seconds_per_step=_sig(statistics.median(r["seconds_per_step"] for r in ok)),
        cpu_seconds_per_step=_sig(statistics.median(r["cpu_seconds"] / r["measured_steps"] for r in ok)),
        load_average_1min=[r["load_average_1min"] for r in ok],
        model_tflops_per_second=_sig(tflops),
        peak_memory_mb=round(max(r["peak_memory_mb"] for r in ok), 1),
    )
    if "peak_rss_increase_mb" in ok[0]:
        out["peak_rss_increase_mb"] = round(max(r["peak_rss_increase_mb"] for r in ok), 1)
        out["rss_before_training_mb"] = round(ok[0]["rss_before_training_mb"], 1)
    peak = device.get("peak_tflops")
    out["mfu"] = _sig(tflops / peak[out["precision"]], 3) if peak and out["precision"] in peak else None
    return out


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _ratio(a: dict | None, b: dict | None, key: str) -> float | None:
    if not a or not b or "error" in a or "error" in b or not b[key]:
        return None
    return round(a[key] / b[key], 2)


def run(args: argparse.Namespace) -> dict:
    prov = _common.provenance()
    device = _device_info(args)
    shape_name = args.shape or ("paper" if device["kind"] == "cuda" else "small")
    shape = SHAPES[shape_name]
    gpu = device["kind"] == "cuda"
    args.steps = args.steps or (20 if gpu else 4)
    args.warmup = args.warmup or (5 if gpu else 1)
    models = [m for m in args.models.split(",") if m]
    pipelines = [p for p in args.pipelines.split(",") if p]
    unknown = sorted(set(models) - set(MODELS)) + sorted(set(pipelines) - set(PIPELINES))
    if unknown:
        raise SystemExit(f"unknown model or pipeline: {unknown}")
    threads = args.threads or os.cpu_count()
    runs: dict[str, dict[str, list[dict]]] = {m: {p: [] for p in pipelines} for m in models}
    for _ in range(args.repeats):  # rounds interleaved, so that a change of load hits all alike
        for model in models:
            for pipeline in pipelines:
                spec = {"model": model, "pipeline": pipeline, "shape": shape_name, "warmup": args.warmup,
                        "steps": args.steps, "threads": threads}  # fmt: skip
                t0, load = time.perf_counter(), os.getloadavg()[0]
                result = _child(spec)
                result["wall_seconds"] = round(time.perf_counter() - t0, 1)
                result["load_average_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]  # before, after
                runs[model][pipeline].append(result)
                print(f"  {model} {pipeline}: " + (f"error: {result['error']}" if "error" in result else
                      f"{result['tokens_per_second']:,.0f} tokens/s ({result['wall_seconds']} s)"), flush=True)  # fmt: skip
    summary = {m: {p: _median_run(rs, device) for p, rs in by_p.items()} for m, by_p in runs.items()}
    ratios = {}
    for model, res in summary.items():
        get = res.get
        ratios[model] = {
            "ours_fp32_over_ref_fp32": _ratio(get("ours_fp32"), get("ref_fp32"), "tokens_per_second"),
            "ours_bf16_over_ref_bf16": _ratio(get("ours_bf16"), get("ref_bf16"), "tokens_per_second"),
            "ours_bf16_over_paper_setup": _ratio(get("ours_bf16"), get("ref_fp32"), "tokens_per_second"),
            "ref_bf16_over_paper_setup": _ratio(get("ref_bf16"), get("ref_fp32"), "tokens_per_second"),
            "model_flops_per_second": {
                "ours_fp32_over_ref_fp32": _ratio(get("ours_fp32"), get("ref_fp32"), "model_tflops_per_second"),
                "ours_bf16_over_ref_bf16": _ratio(get("ours_bf16"), get("ref_bf16"), "model_tflops_per_second"),
                "ours_bf16_over_paper_setup": _ratio(get("ours_bf16"), get("ref_fp32"), "model_tflops_per_second"),
            },
        }  # fmt: skip
    prov["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    prov["versions"] = _versions()
    prov["device"] = device
    lengths = document_lengths(shape, shape.train_docs, SEED)
    return {
        "benchmark": "adapter_training",
        "provenance": prov,
        "settings": {
            "shape": shape_name,
            **shape._asdict(),
            "vocab": {m: shape.vocab or REAL_VOCAB[m] for m in models},
            "adapter": "seq_bn (reduction factor 16)",
            "learning_rate": 1e-4,
            "mlm_probability": 0.15,
            "warmup_steps_untimed": args.warmup,
            "measured_steps": args.steps,
            "repeats": args.repeats,
            "seed": SEED,
            "cpu_threads": None if device["kind"] == "cuda" else threads,
            "data": {
                "documents": shape.train_docs,
                "mean_tokens": round(statistics.mean(lengths), 1),
                "share_at_max_length": round(sum(n == shape.max_length for n in lengths) / len(lengths), 3),
                "lengths": "log-normal, median 0.75 x max length, sigma 0.9, clipped to [8, max length]",
                "token_ids": "uniform over the non-special ids of the whole vocabulary; WordLevel tokenizer",
            },
        },
        "model_flops_formula": (
            "per sequence of n tokens: fwd = n*l*(8H^2+4HF) + l*4n^2H + n*l*4Hb + n*(2H^2+2HV); "
            "bwd = n*l*8Hb + (l-1)*(n*(8H^2+4HF) + 8n^2H) + n*(2H^2+2HV); vocabulary projection at all n "
            "positions (as the paper's setup computes it); b = H/16; padding not credited"
        ),
        "runs": summary,
        "ratios": ratios,
        "aim_on_gpu": {"ours_bf16_over_paper_setup": ">= 3", "ours_bf16_over_ref_bf16": ">= 1.5"},
        "note": (
            "GPU run: absolute speeds and MFU are meaningful."
            if device["kind"] == "cuda"
            else "CPU run at reduced shapes: absolute times say nothing about GPU training; only the ratios' "
            "direction carries over. MFU is null on a CPU (no defensible peak)."
        ),
        "all_runs": runs,
    }


def markdown(columns: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; a row of fewer cells (an error) has its last cell moved to the last column (also used
    by benchmarks/pppl.py)."""
    lines = [columns, ["---"] * len(columns)]
    lines += [[*row[:-1], *[""] * (len(columns) - len(row)), row[-1]] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def markdown_table(result: dict) -> str:
    names = {"ours_fp32": "ours (`train_lm`), fp32", "ours_bf16": "ours (`train_lm`), bf16",
             "ref_fp32": "reference (`AdapterTrainer`), fp32 = paper setup",
             "ref_bf16": "reference (`AdapterTrainer`), bf16"}  # fmt: skip
    cpu = result["provenance"]["device"]["kind"] == "cpu"
    mem = "peak RSS MB (increase)" if cpu else "peak GPU memory MB"
    columns = ["model", "pipeline", "precision", "tokens/s", "s/step", "padding", "model TFLOP/s", "MFU", mem,
               "vs paper setup"]  # fmt: skip
    rows = []
    for model, res in result["runs"].items():
        ref = res.get("ref_fp32")
        for pipeline, r in res.items():
            if "error" in r:
                rows.append([model, names[pipeline], "n/a", "n/a", f"({r['error'][:80]})"])
                continue
            memory = f"{r['peak_memory_mb']:,.0f}"
            if cpu and "peak_rss_increase_mb" in r:
                memory += f" (+{r['peak_rss_increase_mb']:,.0f})"
            vs = _ratio(r, ref, "tokens_per_second")
            rows.append([
                model, names[pipeline], "fp32" if r["precision"] == "no" else r["precision"],
                f"{r['tokens_per_second']:,.0f}", f"{r['seconds_per_step']:.3f}", f"{100 * r['padding_share']:.0f}%",
                f"{r['model_tflops_per_second']:.3g}", f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "–",
                memory, f"{vs:.2f}x" if vs is not None else "–",
            ])  # fmt: skip
    return markdown(columns, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), help="default: paper with CUDA, else small")
    parser.add_argument(
        "--steps", type=int, help="measured optimizer steps per run; default 20 (GPU), 4 (CPU)"
    )
    parser.add_argument(
        "--warmup", type=int, help="untimed optimizer steps before them (>= 1); default 5 (GPU), 1 (CPU)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; medians are reported")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: mbert, xlmr")
    parser.add_argument(
        "--pipelines", default=",".join(PIPELINES), help="comma-separated subset of " + ", ".join(PIPELINES)
    )
    parser.add_argument(
        "--threads", type=int, help="CPU threads per run (torch.set_num_threads); default: all"
    )
    parser.add_argument("--peak-tflops", help="the GPU's dense 'BF16,FP32' peak TFLOP/s, for an unlisted GPU")
    args = parse_args(parser, argv, "adapter_training", RESULT_PREFIX, run_pipeline)
    if args is None:  # a child process, its result printed
        return 0
    if (
        (args.warmup is not None and args.warmup < 1)
        or (args.steps is not None and args.steps < 1)
        or args.repeats < 1
    ):
        parser.error("--warmup, --steps and --repeats must be >= 1")
    result = run(args)
    write_result(result, args.out, "adapter_training")
    print(markdown_table(result))
    print("\nratios (tokens/s):", json.dumps(result["ratios"]))
    print(result["note"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
