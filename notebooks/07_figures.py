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
# Grouped bars per language and configuration, rebuilt only from the runs' `result.json` files:
# pseudo-perplexity on a log axis, and topic-classification macro-F1 with the chance level (1/7) marked.
# Unseen languages are marked. Each figure is written as PNG and PDF with a sidecar listing its runs.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
kind = "figures"  # this notebook makes the figures
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
from IPython.display import display

from lrl_utils import paths, pipeline, reporting, results

run = pipeline.start("report", globals())
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
        fig = reporting.plot_metric_bars(
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
        for folder in (run.out_dir, paths.figures_dir()):
            written += reporting.save_figure(fig, folder / f"fig_{name}_{model}", runs=runs)
        display(fig)

# %%
run.finish(
    {"figures": len(written) // 6, "runs_found": int(records["run"].nunique()), "runs_missing": len(missing)},
    outputs=[paths.relative(p) for p in written],
)
