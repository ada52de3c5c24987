"""Benchmark: pseudo-perplexity (PPPL) throughput, batched `pseudo_perplexity` against the paper's per-token loop.

    .venv/bin/python benchmarks/pppl.py                                   # CPU: --shape tiny; CUDA: --shape paper
    .venv/bin/python benchmarks/pppl.py --shape paper --subset 100        # on a GPU, for the record
    .venv/bin/python benchmarks/pppl.py --shape tiny --models xlmr --sentences 10 --subset 3 --out /tmp/p.json

**Sentences.** A FLORES-sized set: the 1,012 devtest sentences of the demo world's `qab_Latn` (the world of
`WorldConfig(seed=0)`, generated into `benchmarks/.cache/demo_world/` if absent, read with
`flores_sib.load_flores_devtest`). `--sentences N` takes the first N.

**Models** (`--models bert,xlmr`), random weights (speed does not depend on them), seed 42 in every process, so
every run of one model scores with the same weights:

| shape | hidden | layers | heads | FFN | vocabulary | tokenizer | max length | default on |
|---|---|---|---|---|---|---|---|---|
| `tiny` | 128 | 2 | 4 | 512 | ~2,000 | the demo's: WordPiece (bert) / Unigram (xlmr), trained | 128 | CPU |
| `paper` | 768 | 12 | 12 | 3072 | real (119,547 / 250,002) | WordLevel over the model's vocabulary | 512 | CUDA |

`tiny` is the demo's tiny mBERT / XLM-R (`base_models.build_tiny_model`, sizes of params/models.yaml) with a
tokenizer trained by `base_models.train_tokenizer` (vocabulary 2,000, alphabet ëËžŽ) on the demo world's `qen`
and `qab` GlotCC documents, the languages the demo's base models are pre-trained on. `paper` is an mBERT- /
XLM-R-base-shaped `*ForMaskedLM` from config (`adapter_training.model_config`). Its tokenizer is
`adapter_training.build_tokenizer`: a WordLevel tokenizer whose vocabulary is the model's (`w<id>` words, the
special tokens at the real checkpoints' ids, [CLS]/[SEP] or <s>/</s> added). The sentences reach it as words:
each sentence is cut by the tiny tokenizer of the same architecture (no special tokens), and each tiny token id
is mapped to a fixed content id of the large vocabulary (a seeded random injection; the tiny <unk> to the
model's unknown token). The first run of a model trains the tiny tokenizer and writes the texts to a temporary
folder that the model's other runs read (WordPiece training is not reproducible from one process to the next,
so the bert PPPL differs slightly between benchmark runs, never between the runs of one). So both shapes score
the same token sequences, with the demo tokenizers' lengths
(13.1 tokens a sentence for bert, 17.0 for xlmr, special tokens included; real FLORES-200 sentences, ~21
English words each, are longer: see the README).

**Runs**, each in its own process (`torch.set_num_threads(--threads)`, default 2), after an untimed warm-up
call on the first sentences, over `--repeats` interleaved rounds (the fastest round of each run is reported:
on a shared machine interference only slows a run down; every round's sentences/s and the speedup within each
round are kept):

- `batched_<precision>` on `all` sentences and on the `subset` (the first `--subset` sentences, default 100):
  `evaluation.pseudo_perplexity(model, tokenizer, sentences, max_length, max_batch_tokens=16384,
  progress=False, precision=...)` (the pipeline's call). Precisions (`--precisions`): `no` (fp32) on a CPU;
  `auto` (bf16 autocast on a CUDA device that supports it) and `no` with CUDA. The subset run repeats its
  call 3 times in its process (the fastest counts), as it can last well under a second.
- `reference_no` on the `subset`: `evaluation.pseudo_perplexity_reference(model, tokenizer, sentences,
  max_length)`: the paper's loop, one forward pass of batch size 1 per masked copy, full logits, fp32 as the
  paper ran it.

Timed: the call alone (tokenisation included; no model build), `torch.cuda.synchronize()` around it on a GPU.
sentences/s = sentences / seconds; tokens/s = scored tokens (one masked prediction per token, special tokens
included, as the paper scores them) / seconds. `encoder_positions` is what the encoder computes: rows x padded
length summed over the batches (batched) and sum of n^2 (reference). Peak memory: `VmHWM` of the process on a
CPU, `torch.cuda.max_memory_allocated()` on a GPU.

**Results**: per model, `speedup_subset_<precision>` = sentences/s of `batched_<precision>` over that of the
reference, both on the subset in the same run (aim: >= 5x on a CPU, >= 30x on a GPU); PPPL agreement on the
subset: the largest relative difference of the per-sentence PPPLs of `batched_no` and the reference (fp32),
and of the corpus PPPLs; with a bf16 run, its largest relative difference from `batched_no` on all sentences.
Written to `benchmarks/results/pppl-<machine>.json` (`--out`) with the provenance of the other benchmarks
(`adapter_training`'s helpers); a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
SEED = 42
RESULT_PREFIX = "PPPL_RESULT "
MODELS = ("bert", "xlmr")
SHAPES = ("tiny", "paper")
ARCHITECTURE = {"bert": "bert", "xlmr": "xlm-roberta"}  # base_models' names
PAPER_NAME = {"bert": "mbert", "xlmr": "xlmr"}  # adapter_training's names
TINY = {"vocab_size": 2000, "hidden_size": 128, "num_layers": 2, "num_heads": 4, "intermediate_size": 512,
        "max_position": 130, "alphabet": "ëËžŽ"}  # params/models.yaml, tiny-mbert / tiny-xlmr  # fmt: skip
MAX_LENGTH = {"tiny": 128, "paper": 512}  # tiny: the tokenizer's model_max_length (max_position - 2)
FLORES_CODE = "qab_Latn"
# the demo's base-model pre-training languages (params/profiles/demo.yaml)
TOKENIZER_LANGUAGES = ("qen", "qab")
SUBSET_REPEATS = 3
AIM = {"cpu": 5.0, "cuda": 30.0}


# provenance, device info, machine name, child processes, the paper-shape model and tokenizer (the benchmarks
# are scripts, not a package: the sibling is loaded from its file)
_spec = importlib.util.spec_from_file_location(
    "_benchmarks_adapter_training", Path(__file__).with_name("adapter_training.py")
)
_at = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_at)


# ----------------------------------------------------------------------------------------------------------
# The workload (in the driver): sentences and tokenizers, written to a temporary folder for the runs


def load_sentences(cache: Path, count: int | None) -> tuple[list[str], Path]:
    from lrl_utils.data.flores_sib import load_flores_devtest
    from lrl_utils.demo.world import WorldConfig, ensure_world

    world = ensure_world(cache / "demo_world", WorldConfig(seed=0))
    sentences = list(load_flores_devtest(str(world / "flores200_dataset"), FLORES_CODE)["sentence"])
    return sentences[:count] if count else sentences, world


def train_tiny_tokenizer(model: str, world: Path):
    import pyarrow.parquet as pq

    from lrl_utils.training.base_models import train_tokenizer

    texts: list[str] = []
    for code in TOKENIZER_LANGUAGES:
        path = world / "glotcc" / "v1.0" / f"{code}-Latn" / f"{code}-Latn_0.parquet"
        texts += pq.read_table(path, columns=["content"]).column("content").to_pylist()
    return train_tokenizer(
        ARCHITECTURE[model], texts, TINY["vocab_size"], TINY["max_position"], alphabet=TINY["alphabet"]
    )


def paper_texts(model: str, tiny_tokenizer, sentences: list[str]) -> list[str]:
    """The sentences as words of the paper-shape WordLevel tokenizer: each tiny token id -> a fixed content id."""
    import numpy as np

    name = PAPER_NAME[model]
    vocab = _at.REAL_VOCAB[name]
    low, high = _at.content_id_range(name, vocab)
    table = np.random.default_rng(SEED).choice(high - low, size=len(tiny_tokenizer), replace=False) + low
    unk_word = _at.special_tokens(name, vocab)["unk"][0]
    words = [
        unk_word if i == tiny_tokenizer.unk_token_id else f"w{table[i]}" for i in range(len(tiny_tokenizer))
    ]
    out = []
    for sentence in sentences:
        ids = tiny_tokenizer.encode(sentence, add_special_tokens=False)
        out.append(" ".join(words[i] for i in ids))
    return out


def prepare(spec: dict) -> None:
    """The model's tokenizer (tiny) and texts (tiny: the sentences; paper: mapped) under `work/<model>/`, made by
    the first run of each model (the driver need not import transformers) and read by the others: all runs of a
    model score with one tokenizer (WordPiece training is not reproducible from process to process)."""
    work, model, shape = Path(spec["work"]), spec["model"], spec["shape"]
    folder = work / model
    if (folder / "texts.json").is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    sentences = json.loads((work / "sentences.json").read_text(encoding="utf-8"))
    tiny = train_tiny_tokenizer(model, Path(spec["world"]))
    if shape == "tiny":
        tiny.save_pretrained(folder / "tokenizer")
        texts = sentences
    else:
        texts = paper_texts(model, tiny, sentences)
    (folder / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")


# ----------------------------------------------------------------------------------------------------------
# One run in this process (`--_child`)


def _build(spec: dict):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from lrl_utils.config.params import TinyModel
    from lrl_utils.training.base_models import build_tiny_model

    prepare(spec)
    model_name, shape, folder = spec["model"], spec["shape"], Path(spec["work"]) / spec["model"]
    if shape == "tiny":
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        torch.manual_seed(SEED)
        model = build_tiny_model(ARCHITECTURE[model_name], TinyModel(**TINY), tokenizer)
    else:
        name = PAPER_NAME[model_name]
        paper = _at.SHAPES["paper"]
        config = _at.model_config(name, paper)
        tokenizer = _at.build_tokenizer(name, config.vocab_size, paper.max_length)
        torch.manual_seed(SEED)
        model = AutoModelForMaskedLM.from_config(config)
    texts = json.loads((folder / "texts.json").read_text(encoding="utf-8"))
    return model, tokenizer, texts


def _peak_memory_mb(cuda: bool) -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if cuda else _at._common.peak_rss_mb()


def run_one(spec: dict) -> dict:
    """Build the model, warm up, time one PPPL call (or `repeats` calls: the fastest) and return the numbers."""
    import torch

    torch.set_num_threads(spec["threads"])
    from lrl_utils.evaluation import pppl as evaluation

    cuda = torch.cuda.is_available()
    model, tokenizer, sentences = _build(spec)
    device = torch.device("cuda" if cuda else "cpu")
    model.to(device).eval()
    max_length = MAX_LENGTH[spec["shape"]]
    if spec["kind"] == "fp64":
        return fp64_check(model.double(), tokenizer, sentences[: spec["subset"]], max_length, spec)
    texts = sentences if spec["scope"] == "all" else sentences[: spec["subset"]]
    if spec["kind"] == "reference":

        def call(items: list[str]) -> dict:
            return evaluation.pseudo_perplexity_reference(model, tokenizer, items, max_length=max_length)

        warmup = texts[:2]
    else:

        def call(items: list[str]) -> dict:
            return evaluation.pseudo_perplexity(
                model, tokenizer, items, max_length=max_length, max_batch_tokens=spec["max_batch_tokens"],
                progress=False, precision=spec["precision"],
            )  # fmt: skip

        warmup = texts[:16]

    def sync() -> float:
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    call(warmup)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(spec["repeats"]):
        t0, c0 = sync(), time.process_time()
        result = call(texts)
        times.append(sync() - t0)
        cpu_times.append(time.process_time() - c0)
    seconds = min(times)
    lengths = [row["n_tokens"] for row in result["per_sentence"]]
    if spec["kind"] == "reference":
        positions = sum(n * n for n in lengths)
    else:
        positions = sum(len(b) * max(lengths[i] for i, _ in b)
                        for b in evaluation._batches(lengths, spec["max_batch_tokens"]))  # fmt: skip
    return {
        "model": spec["model"],
        "kind": spec["kind"],
        "precision_setting": spec["precision"],
        "precision": result["precision"],
        "dtype": result["dtype"],
        "scope": spec["scope"],
        "sentences": len(texts),
        "tokens": result["n_tokens"],
        "max_tokens": max(lengths),
        "vocab": len(tokenizer),
        "encoder_positions": positions,
        "repeats": spec["repeats"],
        "seconds": seconds,
        "seconds_all": times,
        "cpu_seconds": cpu_times[times.index(seconds)],
        "sentences_per_second": len(texts) / seconds,
        "tokens_per_second": result["n_tokens"] / seconds,
        "pppl": result["pppl"],
        "pppl_token_weighted": result["pppl_token_weighted"],
        "per_sentence_pppl": [row["pppl"] for row in result["per_sentence"]],
        "peak_memory_mb": _peak_memory_mb(cuda),
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if cuda else "VmHWM (peak RSS of the process)",
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "threads": torch.get_num_threads(),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32) if cuda else None,
    }


def fp64_check(model, tokenizer, texts: list[str], max_length: int, spec: dict) -> dict:
    """Both paths in float64 on the same sentences: the batched scores must equal the per-token loop's (only the
    order of the float64 sums differs), which tells the batching apart from any precision effect."""
    import torch

    from lrl_utils.evaluation import pppl as evaluation

    batched = evaluation.pseudo_perplexity(
        model, tokenizer, texts, max_length=max_length, max_batch_tokens=spec["max_batch_tokens"], progress=False,
        precision="no",
    )  # fmt: skip
    reference = evaluation.pseudo_perplexity_reference(model, tokenizer, texts, max_length=max_length)
    a = [row["pppl"] for row in batched["per_sentence"]]
    b = [row["pppl"] for row in reference["per_sentence"]]
    return {
        "model": spec["model"], "kind": "fp64", "scope": "fp64", "sentences": len(texts),
        "tokens": batched["n_tokens"], "dtype": batched["dtype"], "precision": batched["precision"],
        "pppl_batched": batched["pppl"], "pppl_reference": reference["pppl"],
        "max_relative_difference": _max_relative_difference(a, b),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# The driver


def _child(spec: dict) -> dict:
    t0, load = time.perf_counter(), os.getloadavg()[0]
    result = _at.run_child(Path(__file__), RESULT_PREFIX, spec, error_keys=("model", "kind", "scope"))
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    result["load_average_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]  # before, after
    return result


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _max_relative_difference(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) / abs(y) for x, y in zip(a, b, strict=True))


def _public(run: dict) -> dict:
    """A run as written to the results: rounded, without the per-sentence PPPLs."""
    out = {k: v for k, v in run.items() if k != "per_sentence_pppl"}
    for key in ("seconds", "cpu_seconds", "sentences_per_second", "tokens_per_second"):
        if key in out:
            out[key] = _sig(out[key])
    if "seconds_all" in out:
        out["seconds_all"] = [_sig(s) for s in out["seconds_all"]]
    if "peak_memory_mb" in out:
        out["peak_memory_mb"] = round(out["peak_memory_mb"], 1)
    return out


def _workload(runs: dict[str, dict]) -> dict | None:
    """Vocabulary and token counts of the scored sentences, from a run over all of them."""
    run = next((r for k, r in runs.items() if k.endswith("/all") and "error" not in r), None)
    if run is None:
        return None
    return {"vocab": run["vocab"], "tokens": run["tokens"], "mean_tokens": round(run["tokens"] / run["sentences"], 2),
            "max_tokens": run["max_tokens"]}  # fmt: skip


def _compare(runs: dict[str, dict], precisions: list[str]) -> dict:
    """Speedups on the subset and PPPL agreement for one model."""
    ref = runs.get("reference_no/subset")
    out: dict = {}
    for precision in precisions:
        batched = runs.get(f"batched_{precision}/subset")
        ok = ref and batched and "error" not in ref and "error" not in batched
        out[f"speedup_subset_{precision}"] = (
            round(batched["sentences_per_second"] / ref["sentences_per_second"], 2) if ok else None
        )
    fp64 = runs.get("fp64_no/fp64")
    if fp64 and "error" not in fp64:
        out["pppl_max_relative_difference_fp64"] = _sig(fp64["max_relative_difference"], 3)
    batched = runs.get("batched_no/subset")
    if ref and batched and "error" not in ref and "error" not in batched:
        out["pppl_max_relative_difference_subset_fp32"] = _sig(
            _max_relative_difference(batched["per_sentence_pppl"], ref["per_sentence_pppl"]), 3
        )
        out["pppl_corpus_relative_difference_subset_fp32"] = _sig(
            abs(batched["pppl"] - ref["pppl"]) / ref["pppl"], 3
        )
    fp32 = runs.get("batched_no/all")
    for precision in precisions:
        other = runs.get(f"batched_{precision}/all")
        if precision == "no" or not fp32 or not other or "error" in fp32 or "error" in other:
            continue
        if other["precision"] != "no":  # "auto" that resolved to bf16, or "bf16"
            out[f"pppl_max_relative_difference_all_{precision}_vs_fp32"] = _sig(
                _max_relative_difference(other["per_sentence_pppl"], fp32["per_sentence_pppl"]), 3
            )
    return out


def run(args: argparse.Namespace) -> dict:
    prov = _at._common.provenance()
    device = _at._device_info(argparse.Namespace(peak_tflops=None))
    gpu = device["kind"] == "cuda"
    shape = args.shape or ("paper" if gpu else "tiny")
    models = [m for m in args.models.split(",") if m]
    precisions = [p for p in (args.precisions or ("auto,no" if gpu else "no")).split(",") if p]
    unknown = sorted(set(models) - set(MODELS)) + sorted(set(precisions) - {"auto", "no", "bf16"})
    if unknown:
        raise SystemExit(f"unknown model or precision: {unknown}")
    if "no" not in precisions:
        precisions.append("no")  # the fp32 batched run is the like-for-like comparison with the reference
    sentences, world = load_sentences(Path(args.cache_dir), args.sentences)
    subset = min(args.subset, len(sentences))
    threads = args.threads
    plan = [("batched", p, "all") for p in precisions] + [("batched", p, "subset") for p in precisions]
    plan.append(("reference", "no", "subset"))
    if args.fp64_sentences:
        plan.append(("fp64", "no", "fp64"))
    results: dict[str, dict[str, list[dict]]] = {m: {} for m in models}
    with tempfile.TemporaryDirectory(prefix="pppl-bench-") as work:
        sentences_file = Path(work) / "sentences.json"
        sentences_file.write_text(json.dumps(sentences, ensure_ascii=False), encoding="utf-8")
        for _ in range(args.repeats):  # rounds interleaved, so that a change of load hits all alike
            for model in models:
                for kind, precision, scope in plan:
                    spec = {"model": model, "shape": shape, "work": work, "world": str(world), "kind": kind, "precision": precision,
                            "scope": scope, "threads": threads,
                            "subset": args.fp64_sentences if kind == "fp64" else subset,
                            "max_batch_tokens": args.max_batch_tokens,
                            "repeats": SUBSET_REPEATS if (kind, scope) == ("batched", "subset") else 1}  # fmt: skip
                    result = _child(spec)
                    results[model].setdefault(f"{kind}_{precision}/{scope}", []).append(result)
                    print(f"  {model} {kind}_{precision} {scope}: " + (
                        f"error: {result['error']}" if "error" in result else
                        f"max relative difference {result['max_relative_difference']:.2e}" if kind == "fp64" else
                        f"{result['sentences_per_second']:,.1f} sentences/s, pppl {result['pppl']:.2f} "
                        f"({result['wall_seconds']} s)"), flush=True)  # fmt: skip
    runs: dict[str, dict[str, dict]] = {}
    for model, by_run in results.items():
        runs[model] = {}
        for key, rounds in by_run.items():
            ok = [r for r in rounds if "error" not in r]
            if not ok or key == "fp64_no/fp64":
                runs[model][key] = rounds[-1]
                continue
            # the fastest round: on a shared machine, interference only ever slows a run down
            best = min(ok, key=lambda r: r["seconds"])
            runs[model][key] = best | {
                "rounds": len(ok),
                "sentences_per_second_all_rounds": [_sig(r["sentences_per_second"]) for r in ok],
                "load_average_1min_all_rounds": [r["load_average_1min"] for r in ok],
            }
    comparisons = {m: _compare(runs[m], precisions) for m in models}
    for model, by_run in results.items():  # the speedup within each round, for the spread
        for precision in precisions:
            pairs = zip(by_run[f"batched_{precision}/subset"], by_run["reference_no/subset"], strict=True)
            comparisons[model][f"speedup_subset_{precision}_per_round"] = [
                round(b["sentences_per_second"] / r["sentences_per_second"], 2)
                for b, r in pairs
                if "error" not in b and "error" not in r
            ]
    dims = {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072}
    if shape == "tiny":
        dims = {k: v for k, v in TINY.items() if k not in ("vocab_size", "alphabet")}
    prov["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    prov["versions"] = _at._versions()
    prov["device"] = device
    return {
        "benchmark": "pppl",
        "provenance": prov,
        "settings": {
            "shape": shape,
            "models": {m: {"architecture": ARCHITECTURE[m], **dims} for m in models},
            "tokenizer": (
                "tiny: base_models.train_tokenizer (vocabulary 2000, alphabet ëËžŽ) on the demo world's qen and "
                "qab GlotCC documents"
                if shape == "tiny"
                else "paper: adapter_training.build_tokenizer (WordLevel over the model's vocabulary, real "
                "special-token ids); each tiny-tokenizer token id mapped to a fixed random content id"
            ),
            "workload": {m: _workload(runs[m]) for m in models},
            "sentences": {
                "source": f"demo world WorldConfig(seed=0), FLORES-200 devtest {FLORES_CODE}",
                "count": len(sentences),
                "subset": f"the first {subset} sentences",
                "subset_count": subset,
            },
            "max_length": MAX_LENGTH[shape],
            "max_batch_tokens": args.max_batch_tokens,
            "precisions_batched": precisions,
            "precision_reference": "no (fp32, the model's dtype, as the paper ran it)",
            "subset_repeats_in_process": SUBSET_REPEATS,
            "rounds": args.repeats,
            "round_reported": "the fastest of the rounds, per run (interference only slows a run down)",
            "cpu_threads": threads,
            "seed": SEED,
            "weights": "random (seeded); speed does not depend on them",
        },
        "runs": {m: {k: _public(r) for k, r in by_run.items()} for m, by_run in runs.items()},
        "comparisons": comparisons,
        "aim": {"speedup_subset": f">= {AIM[device['kind']]:g}x on {'a GPU' if gpu else 'a CPU'}"},
        "note": (
            "tokens/s counts scored tokens (one masked prediction each, special tokens included). The demo "
            "sentences are shorter than real FLORES-200 ones; with torch.float32 matmuls unless tf32 is on."
        ),
    }


def _rate(x: float) -> str:
    return f"{x:,.1f}" if x >= 1 else f"{x:.3f}"


def markdown_table(result: dict) -> str:
    cpu = result["provenance"]["device"]["kind"] == "cpu"
    columns = ["model", "run", "precision", "sentences", "tokens", "s", "sentences/s", "tokens/s",
               "peak RSS MB" if cpu else "peak GPU MB", "PPPL", "speedup vs reference"]  # fmt: skip
    rows = []
    for model, by_run in result["runs"].items():
        comparison = result["comparisons"][model]
        for key, r in by_run.items():
            name, scope = key.split("/")
            if "error" in r:
                rows.append([model, f"{name} ({scope})", f"error: {r['error'][:80]}"])
                continue
            if scope == "fp64":
                rows.append([model, "batched vs reference (fp64)", "fp64", f"{r['sentences']:,}", f"{r['tokens']:,}",
                             "–", "–", "–", "–", f"{r['pppl_batched']:.2f}",
                             f"max rel. difference {r['max_relative_difference']:.1e}"])  # fmt: skip
                continue
            precision = "fp32" if r["precision"] == "no" else r["precision"]
            if r["precision_setting"] == "auto":
                precision += " (`auto`)"
            speedup = "1.00x (reference)" if name.startswith("reference") else "–"
            if scope == "subset" and name.startswith("batched"):
                value = comparison.get(f"speedup_subset_{r['precision_setting']}")
                speedup = f"**{value:.1f}x**" if value is not None else "–"
            rows.append([
                model, f"{name.split('_')[0]} ({scope})", precision, f"{r['sentences']:,}", f"{r['tokens']:,}",
                f"{r['seconds']:.3g}", _rate(r["sentences_per_second"]), f"{r['tokens_per_second']:,.0f}",
                f"{r['peak_memory_mb']:,.0f}", f"{r['pppl']:.2f}", speedup,
            ])  # fmt: skip
    return _at.markdown(columns, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=SHAPES, help="default: paper with CUDA, else tiny")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: bert, xlmr")
    parser.add_argument(
        "--subset", type=int, default=100, help="the reference's sentences (the first N); default 100"
    )
    parser.add_argument("--sentences", type=int, help="score the first N devtest sentences; default all 1012")
    parser.add_argument(
        "--precisions", help="batched path: comma-separated auto, no, bf16; default no (CPU), auto,no (CUDA)"
    )
    parser.add_argument(
        "--fp64-sentences", type=int, default=8,
        help="the first N sentences scored in float64 by both paths (their PPPLs must agree); 0: skip; default 8",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each run; default 2")
    parser.add_argument(
        "--max-batch-tokens", type=int, default=16384, help="pseudo_perplexity's; default 16384"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="interleaved rounds of processes; the fastest is reported"
    )
    parser.add_argument("--cache-dir", default=str(CACHE), help="where the demo world is generated")
    args = _at.parse_args(parser, argv, "pppl", RESULT_PREFIX, run_one)
    if args is None:  # a child process, its result printed
        return 0
    if (
        args.subset < 1
        or args.repeats < 1
        or args.threads < 1
        or (args.sentences is not None and args.sentences < 1)
    ):
        parser.error("--subset, --sentences, --repeats and --threads must be >= 1")
    t0 = time.perf_counter()
    result = run(args)
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    _at.write_result(result, args.out, "pppl")
    print(markdown_table(result))
    print("\ncomparisons:", json.dumps(result["comparisons"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
