"""The paper's reported numbers (SPEC.md §8), transcribed into tidy CSVs under `params/reference/`.

Every CSV holds the numbers exactly as the paper prints them (F1 × 100, PPPL raw); `params/reference/README.md`
says where each file comes from and lists the paper's own inconsistencies, which are kept, never fixed.
`load_table` validates a file against its schema and the registries (one-line `ParamError` naming the file and
the line); `reported_results` gives the eight per-language result tables on the project's metric names and
0–1 scale; `recompute_averages` recomputes the paper's seen / unseen / total rows from the per-language rows.
"""

from __future__ import annotations

import csv
import functools
import math
import typing

import pandas as pd

from lrl_utils.config import paths
from lrl_utils.config.params import ParamError, Registry, check_name, load_registry
from lrl_utils.report.tables import PAPER_CONFIGS, SOURCE_LABELS, config_label

REFERENCE_DIR = paths.params_dir() / "reference"

#: The configurations of the paper's tables (the project's labels, without its own additions).
CONFIGS = PAPER_CONFIGS
TASKS = ("pppl", "tc", "sa", "ner")
GROUPS = ("language", "seen", "unseen", "total")
METRICS = {"pppl": "pppl", "tc": "test_macro_f1", "sa": "test_macro_f1", "ner": "test_f1"}

_MAIN = ("table", "task", "model", "group", "language", "iso2", "config", "value", "note")
_LLM = ("table", "model", "group", "language", "iso2", "value", "note")
MAIN_TABLES = (
    "table10_pppl_mbert",
    "table11_pppl_xlmr",
    "table15_tc_mbert",
    "table16_tc_xlmr",
    "table18_ner_mbert",
    "table19_ner_xlmr",
    "table21_sa_mbert",
    "table22_sa_xlmr",
)
# File stem -> its exact header. `model` holds a registry key except in FREE_MODEL_TABLES (printed labels).
SCHEMAS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(MAIN_TABLES, _MAIN),
    "spec82_base_pppl": _MAIN,
    "table01_summary": ("table", "task", "model", "group", "config", "value", "note"),
    "table02_llm_vs_mlm": ("table", "model", "model_key", "params_b", "task", "value", "note"),
    "table03_five_lrls": ("table", "model", "model_key", "task", "value", "note"),
    "table08_adapter_losses": ("table", "model", "language", "iso2", "config", "value"),
    "table09_trainable_params": ("table", "model", "adapter", "trainable_params", "percent_of_model"),
    "table09_hyperparameters": ("table", "model", "adapter_role", "adapter", "task", "parameter", "value"),
    "table13_pppl_models": _LLM,
    "correlations": tuple(
        "table,model,task,analysis,stage,post_config,method,coefficient,p_relation,p_value".split(",")
    ),
    "table24_llm_tc": _LLM,
    "table25_llm_ner": _LLM,
}
FREE_MODEL_TABLES = frozenset(
    {"table02_llm_vs_mlm", "table03_five_lrls", "table13_pppl_models", "table24_llm_tc", "table25_llm_ner"}
)
NUMERIC = frozenset({"value", "params_b", "trainable_params", "percent_of_model", "coefficient", "p_value"})
# Columns that do not identify a row (the rest must be unique within a file).
_NOT_KEY = (NUMERIC - {"params_b"}) | {"note", "p_relation"}
OPTIONAL_NUMERIC = frozenset({"params_b"})  # may be empty (GPT models have no published size)
_CHOICES: dict[str, tuple[str, ...]] = {
    "config": CONFIGS,
    "group": GROUPS,
    "method": ("pearson", "spearman"),
    "p_relation": ("=", "<"),
    "stage": ("pre", "post"),
    "adapter_role": ("language", "task"),
}


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    return load_registry()


def paper_languages() -> tuple[str, ...]:
    """The registry keys of the paper's 30 languages (`paper: true`; not the demo's, not those added beyond)."""
    return tuple(code for code, lang in _registry().languages.items() if lang.paper)


def unseen_languages(model: str) -> tuple[str, ...]:
    """The paper languages that `model` did not see in pre-training (registry `seen_by`, paper Table 5)."""
    check_name(model, _registry().models, "params/models.yaml", "models", "model")
    langs = _registry().languages
    return tuple(code for code in paper_languages() if model not in langs[code].seen_by)


def list_tables() -> tuple[str, ...]:
    """The stems of the CSVs present in `REFERENCE_DIR`, sorted."""
    return tuple(sorted(p.stem for p in REFERENCE_DIR.glob("*.csv")))


def _check_row(name: str, row: dict[str, str], where: str) -> None:
    """Raise a one-line ParamError (prefixed by `where`, "file:line") for an invalid cell of one row."""

    def fail(problem: str) -> typing.NoReturn:
        raise ParamError(f"{where}: {problem}")

    reg = _registry()
    for col, value in row.items():
        if col in NUMERIC and not (value == "" and col in OPTIONAL_NUMERIC):
            try:
                number = float(value)
            except ValueError:
                fail(f"`{col}`: expected a number, got {value!r}")
            if not math.isfinite(number):
                fail(f"`{col}`: expected a finite number, got {value!r}")
        elif col in _CHOICES:
            check_name(value, _CHOICES[col], where, col, col)
    if "task" in row:
        tasks = ("tc", "sa", "ner", "all") if name == "table09_hyperparameters" else TASKS
        check_name(row["task"], tasks, where, "task", "task")
    if "adapter" in row:  # Table 9: adapter registry keys (params/adapters.yaml)
        check_name(row["adapter"], [*reg.adapters, "all"], where, "adapter", "adapter")
    model = row.get("model_key", "") if name in FREE_MODEL_TABLES else row["model"]
    if model:
        check_name(model, reg.models, where, "model_key" if name in FREE_MODEL_TABLES else "model", "model")
    lang = row.get("language")
    if lang is not None:
        if (row.get("group", "language") == "language") != (lang != ""):
            fail(f"`language` must be set exactly on per-language rows (group {row.get('group')!r})")
        if lang:
            check_name(lang, paper_languages(), where, "language", "language")
            if row["iso2"] != reg.languages[lang].iso2:
                fail(
                    f"`iso2` {row['iso2']!r} does not match language {lang!r} ({reg.languages[lang].iso2!r})"
                )


def load_table(name: str) -> pd.DataFrame:
    """One reference CSV by stem (e.g. "table15_tc_mbert"), validated; numeric columns as floats.

    Raises ParamError (one line naming the file and, for a bad row, the line number) for an unknown table, a
    wrong header, a row with the wrong number of cells, a non-numeric value, an unknown language, config,
    model, group or task, a mismatched iso2, or a duplicated row key.
    """
    check_name(name, SCHEMAS, "params/reference", "table", "reference table")
    path = REFERENCE_DIR / f"{name}.csv"
    file = paths.relative(path)
    if not path.is_file():
        raise ParamError(f"{file}: file not found")
    header = SCHEMAS[name]
    keys: set[tuple[str, ...]] = set()
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        found = tuple(next(reader, ()))
        if found != header:
            raise ParamError(f"{file}:1: header {','.join(found)!r}, expected {','.join(header)!r}")
        for cells in reader:
            where = f"{file}:{reader.line_num}"
            if len(cells) != len(header):
                raise ParamError(f"{where}: {len(cells)} cells, expected {len(header)} ({','.join(header)})")
            row = dict(zip(header, cells, strict=True))
            _check_row(name, row, where)
            key = tuple(v for c, v in row.items() if c not in _NOT_KEY)
            if key in keys:
                raise ParamError(f"{where}: duplicate row {','.join(key)!r}")
            keys.add(key)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in NUMERIC & set(header):
        df[col] = pd.to_numeric(df[col].mask(df[col] == ""), errors="raise").astype(float)
    return df


def reported_results() -> pd.DataFrame:
    """The eight per-language result tables (10, 11, 15, 16, 18, 19, 21, 22) in one frame.

    Adds `metric` (the project's metric name: pppl, test_macro_f1 for tc and sa, test_f1 for ner) and
    `value_scaled` (F1 / 100 on the project's 0–1 scale; PPPL unchanged). Average rows are kept.
    """
    df = pd.concat([load_table(name) for name in MAIN_TABLES], ignore_index=True)
    df["metric"] = df["task"].map(METRICS)
    df["value_scaled"] = df["value"].where(df["task"] == "pppl", df["value"] / 100)
    return df


def paper_records() -> pd.DataFrame:
    """The paper's per-language PPPL, TC, SA and NER numbers (adapter configurations and the base model) as
    records in `records.results.load_records`' layout, one seed (0), so that `report.findings` can check the
    paper's own numbers the way it checks a grid's."""
    adapters = ("seq_bn", "lora", "seq_bn_inv")  # the paper's language adapters, labelled by `config_label`
    configs = {config_label("none", "none"): ("none", "none")}
    configs |= {config_label(s, a): (s, a) for s in SOURCE_LABELS for a in adapters}
    df = reported_results()
    df = df[(df["group"] == "language") & df["config"].isin(configs)]
    source, adapter = zip(*df["config"].map(configs), strict=True) if len(df) else ((), ())
    unseen = {m: set(unseen_languages(m)) for m in df["model"].unique()}
    return pd.DataFrame(
        {
            "run": "paper",
            "stage": df["task"].map(lambda t: "pppl" if t == "pppl" else "finetune"),
            "task": df["task"].where(df["task"] != "pppl", ""),
            "model": df["model"],
            "language": df["language"],
            "seen": [lang not in unseen[m] for m, lang in zip(df["model"], df["language"], strict=True)],
            "source": source,
            "adapter": adapter,
            "seed": 0,
            "metric": df["metric"],
            "value": df["value_scaled"],
        }
    ).reset_index(drop=True)


def recompute_averages(df: pd.DataFrame) -> pd.DataFrame:
    """Seen / unseen / total means per (table, task, model, config) from the per-language rows of `df`.

    Seen and unseen follow the registry's `seen_by` (the paper's split: mBERT did not see mt, ku, ug, si, am,
    bo; XLM-R did not see mt, bo, yo). Returns columns table, task, model, group, config, value, n_languages
    (and value_scaled when `df` has it); `value` is unrounded.
    """
    per = df[df["group"] == "language"]
    cols = ["value"] + (["value_scaled"] if "value_scaled" in per else [])
    out = []
    for (table, task, model, config), g in per.groupby(["table", "task", "model", "config"], sort=False):
        unseen = g["language"].isin(unseen_languages(model))
        for group, part in (("seen", g[~unseen]), ("unseen", g[unseen]), ("total", g)):
            means = {c: part[c].mean() for c in cols}
            base = {"table": table, "task": task, "model": model, "group": group, "config": config}
            out.append({**base, **means, "n_languages": len(part)})
    return pd.DataFrame(out, columns=["table", "task", "model", "group", "config", *cols, "n_languages"])
