"""The finetune stage (`run(ctx)`, called by `notebooks/05_finetune.py`): a task adapter stacked on the frozen
language adapter (or fused adapters, or none), trained on one language's task data, its best epoch tested.

The task decides the data loader, the labels, the trainer and the headline metric (`TASKS`); the language
adapter's kind (none, one, a fused pair, a fully fine-tuned model) comes from the run context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from datasets import DatasetDict

from lrl_utils.config.train_settings import TaskTrainConfig
from lrl_utils.data.flores_sib import SIB_LABELS, load_sib200
from lrl_utils.data.sentiment import SENTIMENT_LABELS, load_sentiment
from lrl_utils.data.wikiann import NER_TAGS, load_wikiann
from lrl_utils.evaluation import ner, tasks
from lrl_utils.evaluation.pppl import unknown_share, warn_unknown
from lrl_utils.records.context import RunContext

HISTORY_KEYS = ("train_loss", "val_loss", "val_macro_f1", "val_f1")


@dataclass(frozen=True)
class Task:
    labels: tuple[str, ...]
    metric: str  # the headline test metric
    load: Callable[..., DatasetDict]  # (ctx, location, rule) -> splits train/validation/test


def _load_tc(ctx: RunContext, location, rule: dict) -> DatasetDict:
    # TSV quoting by the files' layout, or the profile's data.quoting; SIB-200 has all three splits
    return load_sib200(location, ctx.spec.flores_code, quoting=ctx.spec.quoting)


def _load_sa(ctx: RunContext, location, rule: dict) -> DatasetDict:
    spec = ctx.spec
    return load_sentiment(
        location,
        spec.flores_code,
        iso3=spec.language,
        quoting=spec.quoting,
        max_bad_fraction=spec.max_bad_fraction,
        **rule,
    )


def _load_ner(ctx: RunContext, location, rule: dict) -> DatasetDict:
    spec = ctx.spec
    return load_wikiann(
        location, spec.flores_code, iso3=spec.language, max_bad_fraction=spec.max_bad_fraction, **rule
    )


TASKS: dict[str, Task] = {
    "tc": Task(tuple(SIB_LABELS), "test_macro_f1", _load_tc),
    "sa": Task(tuple(SENTIMENT_LABELS), "test_macro_f1", _load_sa),
    "ner": Task(tuple(NER_TAGS), "test_f1", _load_ner),
}


def load_task_data(ctx: RunContext) -> tuple[DatasetDict, dict[str, Any]]:
    """The task's splits, exactly as in the files, and their statistics (`sizes`, `carved`, bad records).

    Splits the files lack are an error, or carved out of the others when the profile says
    `finetune.<task>.missing_splits: carve` (seeded by `split_seed`; `data/task_data.py`)."""
    spec = ctx.spec
    stats: dict = {}
    rule = {"missing_splits": spec.train.missing_splits, "seed": spec.train.split_seed, "stats": stats}
    data = TASKS[spec.task].load(ctx, ctx.data(spec.dataset), rule)
    return data, {"sizes": {split: data[split].num_rows for split in data}, "carved": {}} | stats


def train_config(ctx: RunContext) -> tuple[TaskTrainConfig, str]:
    """The task-training settings of the spec (the profile's `finetune.<task>`) with this run's seed, and NER's
    label alignment."""
    config = replace(ctx.spec.train, seed=ctx.spec.seed)
    return config, config.label_alignment


def gold_and_predicted(task: str, predictions: list[dict]) -> tuple[list, list]:
    """Gold and predicted labels of the test items (NER: one tag per word, over all sentences)."""
    if task == "ner":
        return (
            [tag for row in predictions for tag in row["gold"]],
            [tag for row in predictions for tag in row["pred"]],
        )
    return [row["label"] for row in predictions], [row["pred"] for row in predictions]


def unknown_share_of(model_path: str, split) -> float:
    """The share of a task split's tokens (special tokens included) that are the model tokenizer's unknown
    token (`pppl.unknown_share`): text its vocabulary cannot write says little of the language."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if "tokens" in split.column_names:  # NER: pre-split words
        encoded = tokenizer(list(split["tokens"]), is_split_into_words=True)["input_ids"]
    else:
        encoded = tokenizer(list(split["text"]))["input_ids"]
    return unknown_share(tokenizer, encoded)


def run(ctx: RunContext) -> dict[str, Any]:
    """Load the task data, train the task adapter (+ head) on the language model, write the test predictions
    (`predictions.jsonl`), finish the run with every test metric, the best epoch, trainable parameters, device
    and precision; returns {"result" (the trainer's), "data_stats", "metric", "config", "metrics"}."""
    spec = ctx.spec
    data, data_stats = load_task_data(ctx)
    print(f"split sizes {data_stats['sizes']}; carved out: {data_stats['carved'] or 'nothing'}")
    model_path, language_adapter = (
        ctx.language_model()
    )  # base (+ adapter or fused adapters), or the FFT model
    config, label_alignment = train_config(ctx)
    task = TASKS[spec.task]
    if spec.task == "ner":
        res = ner.train_ner_tagger(
            model_path, data, language_adapter, config, label_alignment=label_alignment
        )
    else:
        res = tasks.train_text_classifier(
            model_path, data, list(task.labels), language_adapter, config, task=spec.task
        )
    pd.DataFrame(res["predictions"]).to_json(
        ctx.out_dir / "predictions.jsonl", orient="records", lines=True, force_ascii=False
    )
    print(f"test {task.metric} {res[task.metric]:.3f}, best epoch {res['best_epoch']} of {config.epochs}")
    print(f"trained on {res['device']}, precision {res['precision']}")
    # every test_* key is a test metric that follows from predictions.jsonl (the end-to-end test recomputes each)
    keys = [k for k in res if k.startswith("test_")] + [
        "best_epoch",
        "trainable_params",
        "device",
        "precision",
    ]
    if "words_without_position" in res:  # NER: test words cut off by truncation (predicted O)
        keys.append("words_without_position")
    metrics = {k: res[k] for k in keys} | {"unk_share": unknown_share_of(model_path, data["test"])}
    warn_unknown(metrics["unk_share"], f"{spec.language} {spec.task} test")
    history = {k: res[k] for k in HISTORY_KEYS if k in res}
    ctx.finish(metrics, history=history, task_data=data_stats)
    return {
        "result": res,
        "data_stats": data_stats,
        "metric": task.metric,
        "config": config,
        "metrics": metrics,
    }
