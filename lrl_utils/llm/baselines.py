"""Prompted LLM baselines (SPEC §6): a task's test items → prompts → cached generations → parsed answers → scores.

The pieces live in their own modules: `llm_prompts` (templates of params/prompts.yaml, k-shot draws),
`llm_backends` (local `transformers` models, OpenAI-compatible endpoints, the response cache) and `llm_scoring`
(parsers; macro-F1 / seqeval F1 over all items, invalid answers counted as wrong, and the paper's valid-only F1 as
`f1_paper_compat`). This module joins them for one run (`LLMSpec`); `run(ctx)` is the llm stage the baseline notebook calls.

The response cache of a run lives outside its run folder (`runs/_llm_cache/<stage>/<run>.jsonl`) and is kept
after the run: a killed run resumes without asking the model again, and a forced re-run does not pay twice.
Its name leaves out how the model is reached or placed (timeout, retries, backoff, concurrency, device_map).
The API key of an OpenAI-compatible endpoint is read by the backend from the environment variable the LLM
registry names; it never enters a spec, a parameter, a result or a log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lrl_utils.config import paths
from lrl_utils.data import flores_sib, sentiment, task_data, wikiann
from lrl_utils.llm import backends as llm_backends
from lrl_utils.llm import parsing
from lrl_utils.llm import prompts as llm_prompts
from lrl_utils.llm import scoring as llm_scoring
from lrl_utils.llm.openai_backend import OpenAIBackend
from lrl_utils.records.context import RunContext

CACHE_DIR = "_llm_cache"


def cache_path(spec) -> Path:
    """Where the responses of run `spec` are cached (kept across kills and re-runs).

    Named like the run folder, but with the settings of how the model is reached or placed (`LLMSpec.TRANSPORT`:
    device_map, timeout, retries, backoff, concurrency) left out: they do not change what is asked, so a run
    re-done with a longer timeout or another device_map resumes from the responses already paid for."""
    what = dataclasses.replace(spec, **{k: None for k in spec.TRANSPORT})
    return paths.runs_dir() / CACHE_DIR / f"{what.folder()}.jsonl"


def load_items(
    task: str,
    location: str | Path,
    config: str,
    language: str,
    *,
    quoting: str | None = None,
    max_bad_fraction: float = task_data.TASK_MAX_BAD_FRACTION,
    missing_splits: str = "error",
    split_seed: int = 42,
    stats: dict | None = None,
) -> tuple[list[dict], list[dict], tuple[str, ...]]:
    """(test items, train items, label names) of a task: tc/sa items {"id", "text", "label"}, ner items
    {"id", "tokens", "ner_tags"}; ids are `<split>-<row>`. `quoting` and `max_bad_fraction`: the profile's
    `data.quoting` of the dataset and `data.max_bad_fraction` (LLMSpec), passed to the loaders. Missing splits
    follow the same rule as the task's fine-tuning runs (`missing_splits`, `split_seed`: the profile's
    `finetune.<task>`), so both test the same items; `stats` receives what the loader reports (split sizes,
    carved splits)."""
    rule = {"missing_splits": missing_splits, "seed": split_seed, "stats": stats}
    bad = {"max_bad_fraction": max_bad_fraction}
    if task == "tc":
        data = flores_sib.load_sib200(location, config, quoting=quoting)
        labels = tuple(flores_sib.SIB_LABELS)
    elif task == "sa":
        data = sentiment.load_sentiment(location, config, iso3=language, quoting=quoting, **bad, **rule)
        labels = tuple(sentiment.SENTIMENT_LABELS)
    elif task == "ner":
        data = wikiann.load_wikiann(location, config, iso3=language, **bad, **rule)
        labels = tuple(wikiann.NER_TAGS)
    else:
        raise ValueError(f"task must be tc, sa or ner, got {task!r}")
    columns = ("tokens", "ner_tags") if task == "ner" else ("text", "label")

    def items(split: str) -> list[dict]:
        rows = data[split]
        return [{"id": f"{split}-{i}", **{c: rows[i][c] for c in columns}} for i in range(len(rows))]

    return items("test"), items("train"), labels


def make_backend(spec, model_path: str | Path):
    """The backend of an `LLMSpec`: a local transformers model (from `model_path`) or an OpenAI-compatible API."""
    if spec.backend == "transformers":
        return llm_backends.TransformersBackend(
            str(model_path),
            max_new_tokens=spec.max_new_tokens,
            batch_size=spec.batch_size,
            use_chat_template="auto" if spec.chat else False,
            dtype=spec.dtype or "auto",
            device_map=spec.device_map,
        )
    # null in a spec written before these settings existed: the backend's defaults
    reach = ("timeout", "max_retries", "initial_backoff", "max_backoff", "concurrency")
    return OpenAIBackend(
        spec.model_ref,
        base_url=spec.base_url,
        api_key_env=spec.api_key_env or "OPENAI_API_KEY",
        max_new_tokens=spec.max_new_tokens,
        chat=spec.chat,
        **{k: getattr(spec, k) for k in reach if getattr(spec, k) is not None},
    )


def parse(
    task: str, answer: str, item: dict, prompt, template: str, labels: Sequence[str], numbered: bool
) -> parsing.Parsed:
    """The parsed answer of one item (the DeepSeek template is parsed as the paper did: prompt + output)."""
    if task == "ner":
        return parsing.parse_ner(answer, item["tokens"])
    if task == "sa":
        return parsing.parse_sa(answer)
    if template == "deepseek_tc":
        return parsing.parse_tc_deepseek(prompt.text + answer, labels)
    return parsing.parse_tc(answer, labels, numbered=numbered)


def run_baseline(spec, model_path: str | Path, location: str | Path, progress: bool = True) -> dict[str, Any]:
    """Prompt, generate (cached), parse and score one run on the task data at `location`; returns metrics,
    token usage, per-item rows, the first prompt and `task_data` (split sizes and carved splits of SA/NER)."""
    data_stats: dict = {}
    test, train, labels = load_items(
        spec.task,
        location,
        spec.flores_code,
        spec.language,
        quoting=spec.quoting,
        max_bad_fraction=spec.max_bad_fraction,
        missing_splits=spec.missing_splits,
        split_seed=spec.split_seed,
        stats=data_stats,
    )
    if spec.max_items is not None:
        test = test[: spec.max_items]
    label_names = None if spec.task == "ner" else labels
    prompts = llm_prompts.build_prompts(
        spec.task, test, train, spec.template, spec.shots, spec.shot_seed, label_names
    )
    backend = make_backend(spec, model_path)
    cache = llm_backends.ResponseCache(cache_path(spec))
    generation = {"max_new_tokens": spec.max_new_tokens}
    gens = llm_backends.generate_all(backend, prompts, cache, spec.llm, generation, progress=progress)
    numbered = llm_prompts.load_templates()[spec.task][spec.template].numbered
    parsed = [
        parse(spec.task, g.text, item, p, spec.template, labels, numbered)
        for g, item, p in zip(gens, test, prompts, strict=True)
    ]
    golds = [item["ner_tags"] if spec.task == "ner" else item["label"] for item in test]
    metrics = llm_scoring.score(spec.task, golds, parsed, label_names)
    rows = [
        {
            "id": item["id"],
            "answer": g.text,
            "valid": p.valid,
            "reason": p.reason,
            "gold": llm_prompts.tag_names(item["ner_tags"]) if spec.task == "ner" else int(item["label"]),
            "pred": list(p.value) if isinstance(p.value, (list, tuple)) else p.value,
            "dropped": p.dropped,
            "cached": g.cached,
            "prompt_tokens": g.prompt_tokens,
            "completion_tokens": g.completion_tokens,
        }
        for g, p, item in zip(gens, parsed, test, strict=True)
    ]
    data_stats.setdefault("carved", {})
    return {
        "metrics": metrics,
        "usage": llm_backends.usage(gens),
        "rows": rows,
        "prompt_example": prompts[0],
        "task_data": data_stats,
    }


def run(ctx: RunContext, progress: bool = True) -> dict[str, Any]:
    """The llm stage (`notebooks/08_llm_baseline.py`): run the baseline on the spec's task data (a local model:
    the tiny one of a base_model run or a hub id; an endpoint: the spec's model name), write the parsed answers
    (`predictions.jsonl`), finish the run with the scores and token usage (`usage_*`); returns the run's
    {"metrics", "usage", "rows", "prompt_example", "task_data"} with `rows` as a frame."""
    spec = ctx.spec
    model_path = ctx.model_path() if spec.backend == "transformers" else spec.model_ref
    out = run_baseline(spec, model_path, ctx.data(spec.dataset), progress=progress)
    print("first prompt:\n" + out["prompt_example"].text)
    rows = pd.DataFrame(out["rows"])
    rows.to_json(ctx.out_dir / "predictions.jsonl", orient="records", lines=True, force_ascii=False)
    print(f"invalid answers: {out['metrics']['invalid_rate']:.1%}; usage: {out['usage']}")
    metrics = {**out["metrics"], **{f"usage_{k}": v for k, v in out["usage"].items()}}
    ctx.finish(metrics, task_data=out["task_data"])
    return {**out, "rows": rows}
