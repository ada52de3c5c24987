# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#   kernelspec:
#     display_name: Python (lrl-adapt)
#     language: python
#     name: lrl-adapt
# ---

# %% [markdown]
# # 7. Figures
#
# Rebuilt only from the runs' saved results (`result.json`, and the adapters' TensorBoard logs):
#
# 1. grouped bars per language and configuration for each task and model (the paper's Figs. 7-12):
#    pseudo-perplexity on a log axis, F1 for TC, SA and NER; unseen languages marked (†, hatched);
# 2. correlation scatter plots (Figs. 2-6): PPPL and task F1 against pre-training data size (Wikipedia for
#    mBERT, CC100 for XLM-R; for a tiny demo model, what its pre-training read) before and after adaptation,
#    and PPPL against F1, with Pearson and Spearman coefficients (`lrl_utils.report.correlations`);
# 3. the language adapters' training and validation loss curves, read from their TensorBoard logs.
#
# Each figure is written as PNG and PDF with a sidecar listing the runs it was built from.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
kind = "figures"  # this notebook makes the figures
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import pandas as pd
from IPython.display import display

from lrl_utils.config import paths
from lrl_utils.orchestration.notebook import start
from lrl_utils.records import results
from lrl_utils.report import comparison, correlations, figures

run = start("report", globals())
spec = run.spec
records = results.load_records(spec.inputs)
missing = [f for f in spec.inputs if results.read_result(f) is None]
print(f"{records['run'].nunique()} of {len(spec.inputs)} evaluation runs found; {len(missing)} missing")

# %%
FIGURES = [  # (name, stage, metric, task, log y, title)
    ("pppl", "pppl", "pppl", "", True, "Pseudo-perplexity on FLORES-200 devtest (lower is better)"),
    ("tc", "finetune", "test_macro_f1", "tc", False, "Topic classification macro-F1 (SIB-200 format)"),
    ("sa", "finetune", "test_macro_f1", "sa", False, "Sentiment analysis macro-F1 (binary)"),
    ("ner", "finetune", "test_f1", "ner", False, "NER entity F1 (WikiANN format, seqeval)"),
]
written = []
for model in sorted(records["model"].unique()):
    for name, stage, metric, task, log_y, title in FIGURES:
        subset = records.query(
            "model == @model and stage == @stage and metric == @metric and task.fillna('') == @task"
        )
        if subset.empty:
            continue
        fig = figures.plot_metric_bars(
            records,
            stage=stage,
            metric=metric,
            model=model,
            task=task,
            log_y=log_y,
            title=f"{title}; {model}",
        )
        if name == "tc":
            fig.axes[0].axhline(1 / 7, ls="--", c="grey", lw=0.8, label="chance")
        runs = sorted(subset["run"].unique())
        written += figures.save_figure(
            fig, run.out_dir / f"fig_{name}_{model}", runs, also_to=[paths.figures_dir()]
        )
        display(fig)

# %% [markdown]
# ## Correlations with data size (before and after adaptation)
# Languages a model did not see in pre-training are left out, before the coefficients are computed.

# %%
sizes = correlations.data_sizes(spec.inputs)
tasks = sorted(set(records["task"].dropna()) & set(correlations.TASK_METRICS))
for model in sorted(records["model"].unique()):
    for analysis, phases in correlations.analyses(tasks).items():
        points = {
            phase: correlations.correlation_points(
                records, sizes, model=model, analysis=analysis, phase=phase
            )
            for phase in phases
        }
        points = {phase: p for phase, p in points.items() if not p.empty}
        if not points:
            continue
        fig = figures.plot_correlation(
            points,
            title=f"{analysis.replace('_', ' ')}; {model}",
            log_x=True,  # data size, or PPPL
            log_y=analysis == "pppl_vs_size",
        )
        languages = {lang for p in points.values() for lang in p["language"]}
        mine = records[(records["model"] == model) & records["language"].isin(languages)]
        runs = sorted(mine["run"].unique())
        stem = run.out_dir / f"fig_cor_{analysis}_{model}"
        written += figures.save_figure(fig, stem, runs, also_to=[paths.figures_dir()])
        display(fig)

# %% [markdown]
# ## Language-adapter training curves (from the TensorBoard logs)

# %%
adapts = comparison.load_adapt_records(spec.inputs)
for (model, source), group in adapts.groupby(["model", "source"]):
    curves = []
    for row in group.itertuples():
        curve = figures.read_loss_curves(row.tensorboard)
        curves.append(curve.assign(language=row.language, config=row.config, run=row.run))
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    if curves.empty:
        print(f"{model} {source}: no TensorBoard logs")
        continue
    fig = figures.plot_loss_curves(curves, title=f"Language-adapter training; {model}; {source}")
    stem = run.out_dir / f"fig_loss_{model}_{source}"
    written += figures.save_figure(fig, stem, sorted(group["run"]), also_to=[paths.figures_dir()])
    display(fig)

# %%
run.finish(
    {"figures": len(written) // 6, "runs_found": int(records["run"].nunique()), "runs_missing": len(missing)},
    outputs=[paths.relative(p) for p in written],
)
