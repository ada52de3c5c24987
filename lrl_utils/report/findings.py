"""The paper's three findings (SPEC §8.4.0) as checks over a grid's results, written to `figures/findings.md`.

- **F0 Every run learned** (the findings' precondition): the tables report's required learning checks
  (`report.checks`: adapters' held-out loss fell, GlotCC adapters lower PPPL, seen-language TC above chance).
- **F1 Small adaptation data helps.** GlotCC adapters lower pseudo-perplexity on their language (Seq_bn lowest);
  they raise downstream F1 over the base model, most on unseen languages (Seq_bn_inv best); ConceptNet adapters
  help less.
- **F2 The adapted small model beats prompted LLMs** on the same test items.
- **F3 Pre-training data dominates.** Across languages, PPPL falls and F1 rises with the language's share of the
  model's pre-training data, and the gain from adaptation shrinks as that share grows.

Each check is one row: the finding, the check's name, the claim, the numbers behind it (means ± std over seeds
and languages, the effect, a paired 95% interval or a rank correlation) and PASS, FAIL or not tested: a check
without the runs it needs is not tested and says what is missing (never passed by default).

Inputs: the tidy records (`records.results.load_records`), the data sizes (`report.correlations.data_sizes`) and
the LLM runs' scores (`llm_scores`); `findings_files.write_findings(run_folders, out_dirs)` reads run folders."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from lrl_utils.report.correlations import MIN_POINTS
from lrl_utils.report.paired import (  # noqa: F401  (paired_interval: part of this module's interface)
    BASE,
    TASK_METRIC,
    _scores,
    matched_gains,
    paired_interval,
    task_deltas,
    task_gap,
)

GLOT_BEST_MLM = "seq_bn"  # the paper: Glot Seq_bn gives the lowest PPPL
GLOT_BEST_TASK = "seq_bn_inv"  # the paper: Glot Seq_bn_inv gives the best downstream totals
COLUMNS = ["finding", "check", "claim", "numbers", "passed"]
LLM_NOTE = (
    "The demo's LLM is a tiny Llama pre-trained on the same seen-language text as the small models and prompted "
    "zero- and 3-shot: it can show that prompting a model that was never trained on the task's labels falls "
    "behind a small model with a trained task adapter; it cannot show how far real 7-70B LLMs get (the paper's "
    "Table 2: LLaMA-3-8B 65.8, DeepSeek-R1-D-Llama-70B 70.7 TC F1 against 71.9 / 80.8 for the adapted mBERT / "
    "XLM-R)."
)


def _row(finding: str, check: str, claim: str, numbers: str, passed: bool | None) -> dict:
    """One check; `passed` None: not tested (the grid has too few languages for it by design)."""
    passed = None if passed is None else bool(passed)
    return {"finding": finding, "check": check, "claim": claim, "numbers": numbers, "passed": passed}


def _pm(values: pd.Series | np.ndarray) -> str:
    values = np.asarray(values, dtype=float)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {std:.3f}"


def _pppl(records: pd.DataFrame) -> pd.DataFrame:
    """Mean PPPL per (model, language, seen, source, adapter)."""
    rows = records[(records["stage"] == "pppl") & (records["metric"] == "pppl")]
    keys = ["model", "language", "seen", "source", "adapter"]
    return rows.groupby(keys, as_index=False)["value"].mean()


def f0_checks(learned: pd.DataFrame) -> list[dict]:
    """The required learning checks (`report.checks`), one row per kind: how many passed, the first failures."""
    from lrl_utils.report.checks import CLAIMS

    rows, name = [], "F0 every run learned"
    required = learned[learned["required"].astype(bool)]
    for check, group in required.groupby("check", sort=False):
        ok = group["passed"].astype(bool)
        failures = "; ".join(
            f"{r.model} {r.language} {r.config}: {r.value:.3g} vs {r.reference:.3g}"
            for r in group[~ok].head(3).itertuples(index=False)
        )
        numbers = f"{int(ok.sum())} of {len(group)} pass" + (f"; failing: {failures}" if failures else "")
        rows.append(_row(name, check, CLAIMS.get(check, check), numbers, bool(ok.all())))
    return rows


HEAD_PATHS = {
    "paper_compat": "Seq_bn_inv on the original's head path (`paper_compat`: trained without its inverse, scored "
    "with it)",
    "inverse": "Seq_bn_inv on the corrected head path (`inverse`: trained and scored with it)",
}


def head_paths(run_folders: Iterable[str]) -> set[str]:
    """The LM head paths (`head_path`) the Seq_bn_inv PPPL runs among `run_folders` were scored on."""
    from lrl_utils.records.results import read_result

    paths = set()
    for folder in run_folders:
        result = read_result(folder)
        if result and result.get("stage") == "pppl" and result["spec"].get("adapter") == "seq_bn_inv":
            paths.add(str(result["metrics"].get("head_path")))
    return paths


def f1_checks(records: pd.DataFrame, paths: set[str] | None = None) -> list[dict]:
    """F1's checks; `paths` (`head_paths`) says in the MLM check which head path Seq_bn_inv was scored on."""
    rows, name = [], "F1 small adaptation data helps"
    # `seen` as booleans even where no row has a value (a grid with no PPPL results reads it as objects, and a
    # mask of objects would select columns); a missing value is not seen
    seen = pd.Series([bool(v) if v == v else False for v in records["seen"]], index=records.index, dtype=bool)
    records = records.assign(seen=seen)
    pppl = _pppl(records)
    base = pppl[(pppl["source"] == "none")].set_index(["model", "language"])["value"]
    glot = pppl[pppl["source"] == "glotcc"].copy()
    glot["base"] = [
        base.get((m, lang), math.nan) for m, lang in zip(glot["model"], glot["language"], strict=True)
    ]
    glot = glot.dropna(subset=["base"])
    glot["ratio"] = glot["value"] / glot["base"]
    seen_ratio = glot[glot["seen"]].groupby("adapter")["ratio"]
    ratios = seen_ratio.apply(lambda r: float(np.exp(np.log(r).mean())))
    lower = seen_ratio.apply(lambda r: f"{int((r < 1).sum())} of {len(r)}")
    rows.append(
        _row(
            name,
            "glotcc_lowers_pppl",
            "every GlotCC adapter lowers PPPL on seen languages on average (geometric mean of adapted / base "
            "PPPL over models and languages below 1; the paper's lower 128 of its 180 cells, not all)",
            "; ".join(f"{a} {ratios[a]:.3f} ({lower[a]} lower)" for a in ratios.index)
            or "no GlotCC PPPL runs on seen languages",
            bool((ratios < 1).all()) if len(ratios) else None,
        )
    )
    seen_glot = glot[glot["seen"]]
    per_adapter = seen_glot.groupby("adapter")["value"].apply(lambda v: float(np.exp(np.log(v).mean())))
    best = per_adapter.idxmin() if len(per_adapter) else None
    listing = ", ".join(f"{a} {v:.2f}" for a, v in per_adapter.sort_values().items())
    if listing and paths and "seq_bn_inv" in per_adapter.index:
        listing += "; " + "; ".join(HEAD_PATHS.get(p, f"Seq_bn_inv on head path {p}") for p in sorted(paths))
    rows.append(
        _row(
            name,
            "seq_bn_best_mlm",
            f"GlotCC {GLOT_BEST_MLM} gives the lowest PPPL on seen languages (geometric mean over models)",
            listing or "no GlotCC PPPL runs on seen languages",
            best == GLOT_BEST_MLM if GLOT_BEST_MLM in per_adapter.index and len(per_adapter) > 1 else None,
        )
    )
    glot_d = task_deltas(records, "glotcc", GLOT_BEST_TASK)
    unseen, seen = (
        glot_d[~glot_d["seen"]] if len(glot_d) else glot_d,
        glot_d[glot_d["seen"]] if len(glot_d) else glot_d,
    )
    mean, low, high = paired_interval(unseen["delta"]) if len(unseen) else (math.nan,) * 3
    per_task = (
        "; ".join(
            f"{t}: base {_pm(g['base'])} → {_pm(g['config'])}" for t, g in unseen.groupby("task", sort=False)
        )
        if len(unseen)
        else "no paired runs"
    )
    rows.append(
        _row(
            name,
            "glotcc_raises_unseen_f1",
            f"GlotCC {GLOT_BEST_TASK} raises F1 over the base model on unseen languages (paired over tasks, models, "
            "languages, seeds; 95% interval above 0)",
            f"{per_task}; mean gain {mean:+.3f} [{low:+.3f}, {high:+.3f}] over {len(unseen)} pairs"
            if len(unseen) > 1
            else f"{per_task}: {len(unseen)} pair, no interval",
            bool(low > 0) if len(unseen) > 1 else None,
        )
    )
    gap, per_task_gap = task_gap(unseen, seen)
    rows.append(
        _row(
            name,
            "gain_largest_unseen",
            "the gain is larger on unseen than on seen languages (per task, then the mean over tasks with both)",
            f"{per_task_gap}; mean difference {gap:+.3f}" if per_task_gap else "no task with both",
            bool(gap > 0) if per_task_gap else None,
        )
    )
    adapters = sorted(
        records.loc[(records["stage"] == "finetune") & (records["source"] == "glotcc"), "adapter"].unique()
    )
    unseen_gain = matched_gains({a: task_deltas(records, "glotcc", a) for a in adapters})
    best_task = max(unseen_gain, key=lambda a: unseen_gain[a][0]) if unseen_gain else None
    rows.append(
        _row(
            name,
            "seq_bn_inv_best_downstream",
            f"among GlotCC adapters, {GLOT_BEST_TASK} gives the largest mean gain on unseen languages (on the "
            "pairs every adapter has)",
            ", ".join(
                f"{a} {g:+.3f} ({n} pair{'s' * (n != 1)})"
                for a, (g, n) in sorted(unseen_gain.items(), key=lambda x: -x[1][0])
            )
            or "no GlotCC adapter fine-tuned on unseen languages",
            best_task == GLOT_BEST_TASK if GLOT_BEST_TASK in unseen_gain and len(unseen_gain) > 1 else None,
        )
    )
    both = matched_gains({"ConceptNet": task_deltas(records, "conceptnet", GLOT_BEST_TASK), "GlotCC": glot_d})
    cn_mean, glot_mean = (both.get(k, (math.nan, 0))[0] for k in ("ConceptNet", "GlotCC"))
    rows.append(
        _row(
            name,
            "conceptnet_helps_less",
            f"ConceptNet {GLOT_BEST_TASK} adapters gain less than GlotCC ones on unseen languages (on the pairs "
            "both have)",
            f"mean gain ConceptNet {cn_mean:+.3f}, GlotCC {glot_mean:+.3f} ({both['GlotCC'][1]} pairs)"
            if len(both) == 2
            else "no pairs both have",
            bool(cn_mean < glot_mean) if len(both) == 2 else None,
        )
    )
    return rows


def llm_scores(run_folders: Iterable[str]) -> pd.DataFrame:
    """One row per LLM run: llm, language, task, shots, f1."""
    from lrl_utils.records.results import read_result

    rows = []
    for folder in run_folders:
        result = read_result(folder)
        if result is None or result.get("stage") != "llm" or "f1" not in result["metrics"]:
            continue
        spec = result["spec"]
        rows.append(
            {k: spec[k] for k in ("llm", "language", "task", "shots")} | {"f1": result["metrics"]["f1"]}
        )
    return pd.DataFrame(rows, columns=["llm", "language", "task", "shots", "f1"])


def f2_checks(records: pd.DataFrame, llm: pd.DataFrame) -> list[dict]:
    rows, name, missing = [], "F2 the adapted small model beats prompted LLMs", []
    for task in TASK_METRIC:
        prompted = llm[llm["task"] == task]
        scores = _scores(records, task)
        adapted = scores[(scores["source"] == "glotcc") & (scores["adapter"] == GLOT_BEST_TASK)]
        adapted = adapted[adapted["language"].isin(prompted["language"])]
        if prompted.empty or adapted.empty:
            if not (prompted.empty and scores.empty):
                what = (
                    "LLM runs" if prompted.empty else f"GlotCC {GLOT_BEST_TASK} runs on the LLM's languages"
                )
                missing.append(f"{task}: no {what}")
            continue
        per_setting = prompted.groupby(["llm", "shots"])["f1"].mean()
        (best_llm, shots), best = per_setting.idxmax(), float(per_setting.max())
        per_model = adapted.groupby("model")["value"].mean()
        rows.append(
            _row(
                name,
                f"{task}_beats_llm",
                f"{task.upper()}: every small model with GlotCC {GLOT_BEST_TASK} beats the best prompted LLM "
                "(means over the same languages)",
                ", ".join(f"{m} {_pm(adapted.loc[adapted['model'] == m, 'value'])}" for m in per_model.index)
                + f"; best LLM {best_llm} {shots}-shot {best:.3f}",
                bool((per_model > best).all()),
            )
        )
    if not rows:  # nothing to compare (no LLM, or its or the adapters' runs missing): not tested
        numbers = "; ".join(missing) or "no LLM runs"
        rows.append(_row(name, "beats_llm", "the adapted small model beats the prompted LLMs", numbers, None))
    return rows


def _spearman(x: pd.Series, y: pd.Series) -> tuple[float, float, int]:
    ok = x.notna() & y.notna()
    if ok.sum() < MIN_POINTS or x[ok].nunique() < 2 or y[ok].nunique() < 2:  # constant: no coefficient
        return math.nan, math.nan, int(ok.sum())
    rho, p = stats.spearmanr(x[ok], y[ok])
    return float(rho), float(p), int(ok.sum())


def f3_checks(records: pd.DataFrame, sizes: pd.DataFrame) -> list[dict]:
    rows, name = [], "F3 pre-training data dominates"
    share = sizes.set_index(["model", "language"])["pretrain_gb"] if len(sizes) else pd.Series(dtype=float)
    pppl = _pppl(records)
    base_pppl = pppl[pppl["source"] == "none"].set_index(["model", "language"])["value"]
    tables = {"base PPPL": (base_pppl, -1)}
    for task in TASK_METRIC:
        scores = _scores(records, task)
        base = scores[scores["source"] == "none"].groupby(["model", "language"])["value"].mean()
        if len(base):
            tables[f"base {task.upper()} F1"] = (base, 1)
        gains = task_deltas(records, "glotcc", GLOT_BEST_TASK)
        gains = (
            gains[gains["task"] == task].groupby(["model", "language"])["delta"].mean()
            if len(gains)
            else gains
        )
        if len(gains):
            tables[f"{task.upper()} gain of GlotCC {GLOT_BEST_TASK}"] = (gains, -1)
    for what, (values, sign) in tables.items():
        parts, ok, most, same_share = [], True, 0, False
        for model in sorted({m for m, _ in values.index}):
            v = values.xs(model, level="model")
            s = pd.Series([share.get((model, lang), math.nan) for lang in v.index], index=v.index)
            rho, p, n = _spearman(s, v)
            ok &= bool(not math.isnan(rho) and sign * rho > 0)
            most = max(most, n)
            if n < MIN_POINTS:
                parts.append(f"{model}: {n} languages ({', '.join(v.index[s.notna() & v.notna()])})")
            elif math.isnan(rho):  # one share for every language: nothing to test; one score: no rise or fall
                same_share |= (flat := s[s.notna() & v.notna()].nunique() == 1)
                parts.append(
                    f"{model}: no coefficient ({n} languages, {'one share' if flat else 'one score'})"
                )
            else:
                parts.append(f"{model}: ρ {rho:+.2f} (p {p:.2g}, {n} languages)")
        direction = "falls" if sign < 0 else "rises"
        # a task run on fewer languages than a correlation needs (the profile's `task_languages`) is not tested
        untested = bool(parts) and (most < MIN_POINTS or same_share)
        why = f"fewer than {MIN_POINTS} languages" if most < MIN_POINTS else "one share of pre-training"
        rows.append(
            _row(
                name,
                f"share_vs_{what.replace(' ', '_').lower()}",
                f"{what} {direction} with the language's share of pre-training (Spearman over languages, every model)",
                "; ".join(parts) + (f": {why}, not tested" if untested else "") if parts else "no runs",
                None if untested or not parts else ok,  # no runs at all: not tested either
            )
        )
    return rows


def findings(
    records: pd.DataFrame,
    sizes: pd.DataFrame,
    llm: pd.DataFrame,
    learned: pd.DataFrame | None = None,
    paths: set[str] | None = None,
) -> pd.DataFrame:
    """All checks, one row each (`COLUMNS`); `learned` (the learning checks' rows) adds F0 first, `paths`
    (`head_paths`) the head path of Seq_bn_inv's PPPL to F1's MLM check."""
    rows = [] if learned is None else f0_checks(learned)
    rows += f1_checks(records, paths) + f2_checks(records, llm) + f3_checks(records, sizes)
    return pd.DataFrame(rows, columns=COLUMNS)


def _tally(verdicts: dict[str, bool], checks: Iterable[str]) -> str | None:
    """`4 of 6`: how many of `checks` pass in `verdicts` (None when it has none of them)."""
    known = [verdicts[c] for c in checks if c in verdicts]
    return f"{sum(known)} of {len(known)}" if known else None


def markdown(
    checks: pd.DataFrame,
    title: str = "Findings",
    columns: dict[str, dict[str, bool]] | None = None,
    machine: str = "",
    missing: Iterable[str] = (),
) -> str:
    """`figures/findings.md`: per finding PASS when all its checks pass; then each check with its numbers and,
    with `columns` (label → check → passed: `per_model.columns`, e.g. the check's result on the paper's own
    numbers), one more column each, with its tally in the finding's heading. `machine` (`machines.machine_line`)
    says under the introduction which machines computed the runs, `missing` which of the grid's runs have no result.
    A finding none of whose checks could be tested is "not tested", not FAIL."""
    columns = columns or {}
    lines = [
        f"# {title}",
        "",
        "Each finding of the paper (SPEC §8.4.0) as checks on this grid's results, after F0: did every run learn.",
        "",
    ]
    if machine:
        lines += [machine, ""]
    if missing := sorted(missing):
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        lines += [f"**Missing: {len(missing)} run(s) of this grid have no result** (failed, blocked or not run), so "
                  f"the checks below use only the runs present: {shown}.", ""]  # fmt: skip
    for finding, group in checks.groupby("finding", sort=False):
        tested = group[group["passed"].notna()]
        verdict = ("PASS" if tested["passed"].astype(bool).all() else "FAIL") if len(tested) else "not tested"
        passed = int(tested["passed"].astype(bool).sum())
        tallies = [
            f"{label.removeprefix('on ')}: {tally}"
            for label, verdicts in columns.items()
            if (tally := _tally(verdicts, group["check"])) is not None
        ]
        tally_text = "; " + "; ".join(tallies) if tallies else ""
        lines += [f"## {finding}: {verdict} ({passed} of {len(tested)} checks{tally_text})", ""]
        extra = "".join(f" {label} |" for label in columns)
        lines += [f"| check | claim | numbers | result |{extra}", "|---|---|---|---|" + "---|" * len(columns)]
        for r in group.itertuples(index=False):
            result = "not tested" if pd.isna(r.passed) else "PASS" if r.passed else "FAIL"
            cells = "".join(
                {True: " PASS |", False: " FAIL |"}.get(verdicts.get(r.check), " – |")
                for verdicts in columns.values()
            )
            lines.append(f"| {r.check} | {r.claim} | {r.numbers} | {result} |{cells}")
        if finding.startswith("F2"):
            lines += ["", LLM_NOTE]
        lines.append("")
    return "\n".join(lines)
