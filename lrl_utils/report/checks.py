"""Does a grid show learning? Checks over the tidy result records (`results.load_records`).

The demo's tiny models and short schedules must still show what the paper measures: a language adapter trained
on a language's own text (GlotCC) lowers that language's pseudo-perplexity below the base model's, and topic
classification is well above chance. The paper itself reports that ConceptNet adapters *raise* FLORES
pseudo-perplexity (their training text is English template sentences; mBERT seen-language average 25.17 base
vs 41.22 / 37.37 / 55.95), so for them the check is informational. Each row of :func:`learning_checks` is one
comparison with its values and whether it passed; the tables notebook writes them next to the tables.
"""

from __future__ import annotations

import pandas as pd

CHANCE_TC = 1 / 7  # seven SIB-200 topics
WELL_ABOVE = 1.5  # "well above chance": at least 1.5 x chance (macro-F1 0.21)
#: task → (metric, reference, required on seen languages): TC at least 1.5 x chance; SA macro-F1 above 0.6 (a
#: constant or random predictor gets at most 0.5); NER entity F1 above 0.1 (a random tagger gets about 0)
TASK_CHECKS = {
    "tc": ("test_macro_f1", WELL_ABOVE * CHANCE_TC, True),
    "sa": ("test_macro_f1", 0.6, False),
    "ner": ("test_f1", 0.1, False),
}
COLUMNS = ["check", "model", "language", "config", "value", "reference", "passed", "required"]
#: each kind of required check as a claim (figures/findings.md's "F0 every run learned")
CLAIMS = {
    "mlm_val_loss_lowered": "every language adapter ends with a lower LM loss on held-out text of its source",
    "tc_above_chance": "TC on every seen language is at least 1.5 x chance (macro-F1 0.21)",
}


def _mean(df: pd.DataFrame, **where: str) -> pd.Series:
    """Mean value per (model, language) over seeds for one configuration and metric."""
    mask = pd.Series(True, index=df.index)
    for column, value in where.items():
        mask &= df[column] == value
    return df[mask].groupby(["model", "language"])["value"].mean()


def learning_checks(records: pd.DataFrame) -> pd.DataFrame:
    """One row per check: kind, model, language, config, value, reference, passed, required.

    - `pppl_below_base`: adapted PPPL < base PPPL (reported, not required: the paper's own GlotCC adapters
      leave the FLORES PPPL no lower in 52 of their 180 (model, language, adapter) cells, Tables 10 and 11, so a higher
      PPPL does not mean an adapter failed to learn; `adapter_checks`' held-out loss is the learning check);
    - `tc_above_chance`: mean test macro-F1 >= 1.5 / 7 (required on languages the model has seen, reported on
      unseen ones: the demo's short adapter schedules do not reproduce the paper's unseen-language TC gains);
    - `sa_above_chance`, `ner_above_chance`: the thresholds of `TASK_CHECKS` (reported).
    """
    rows = []
    pppl = records[(records["stage"] == "pppl") & (records["metric"] == "pppl")]
    base = _mean(pppl, source="none", adapter="none")
    configs = pppl[pppl["source"] != "none"][["source", "adapter"]].drop_duplicates()
    for source, adapter in configs.itertuples(index=False):
        adapted = _mean(pppl, source=source, adapter=adapter)
        for (model, language), value in adapted.items():
            if (model, language) not in base:
                continue
            reference = float(base[(model, language)])
            rows.append(
                {
                    "check": "pppl_below_base",
                    "model": model,
                    "language": language,
                    "config": f"{source}/{adapter}",
                    "value": float(value),
                    "reference": reference,
                    "passed": bool(value < reference),
                    "required": False,
                }
            )
    tasks = records["task"].fillna("") if "task" in records else pd.Series("", index=records.index)
    for task, (metric, reference, required) in TASK_CHECKS.items():
        scores = records[(records["stage"] == "finetune") & (records["metric"] == metric) & (tasks == task)]
        seen = scores.groupby(["model", "language"])["seen"].first()
        for (source, adapter), group in scores.groupby(["source", "adapter"]):
            for (model, language), value in _mean(group).items():
                rows.append(
                    {
                        "check": f"{task}_above_chance",
                        "model": model,
                        "language": language,
                        "config": f"{source}/{adapter}",
                        "value": float(value),
                        "reference": reference,
                        "passed": bool(value >= reference),
                        "required": required and bool(seen[(model, language)]),
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS).astype({"passed": bool, "required": bool})


def adapter_checks(evaluation_runs: list[str]) -> pd.DataFrame:
    """`mlm_val_loss_lowered`: every language adapter behind `evaluation_runs` (pppl / finetune run folders, and
    adapt runs listed there directly, such as causal-LM adapters) ends with a lower LM loss on held-out text of its
    own source than it started with (the fresh adapter: nearly the base model; for FFT, the base model itself).
    Required: this is learning on the data each adapter was trained on."""
    from lrl_utils.records.results import read_result
    from lrl_utils.report.comparison import adapt_runs_behind

    rows = []
    for folder in adapt_runs_behind(evaluation_runs):  # incl. adapt runs listed directly (causal-LM adapters)
        result = read_result(folder)
        if result is None or "initial_val_loss" not in result["metrics"]:
            continue
        spec, metrics = result["spec"], result["metrics"]
        rows.append(
            {
                "check": "mlm_val_loss_lowered",
                "model": spec["model"],
                "language": spec["language"],
                "config": f"{spec['source']}/{spec['adapter']}",
                "value": float(metrics["best_val_loss"]),
                "reference": float(metrics["initial_val_loss"]),
                "passed": bool(metrics["best_val_loss"] < metrics["initial_val_loss"]),
                "required": True,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS).astype({"passed": bool, "required": bool})


def all_checks(records: pd.DataFrame, evaluation_runs: list[str]) -> pd.DataFrame:
    """Every learning check of a grid: :func:`learning_checks` on its records, :func:`adapter_checks` on its runs."""
    return pd.concat([learning_checks(records), adapter_checks(evaluation_runs)], ignore_index=True)


def summary(checks: pd.DataFrame) -> dict[str, int]:
    """Counts for a result.json: checks, passed, required, required passed."""
    required = checks[checks["required"]]
    return {
        "checks": len(checks),
        "checks_passed": int(checks["passed"].sum()),
        "required_checks": len(required),
        "required_checks_passed": int(required["passed"].sum()),
    }
