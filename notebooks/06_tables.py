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
# # 6. Tables
#
# Rebuilt only from the `result.json` files of the profile's evaluation runs: pseudo-perplexity (lower is
# better) and topic-classification macro-F1 (higher is better), languages × configurations, with seen /
# unseen / total averages; the best configuration per row in bold. Missing runs stay missing (–).
# Each table is written as Markdown and LaTeX with a sidecar listing the runs it was built from.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
kind = "tables"  # this notebook makes the tables
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import pandas as pd
from IPython.display import Markdown, display

from lrl_utils import learning_checks, paths, pipeline, reporting, results

run = pipeline.start("report", globals())
spec = run.spec
records = results.load_records(spec.inputs)
missing = [f for f in spec.inputs if results.read_result(f) is None]
results.atomic_write_text(run.out_dir / "records.csv", records.to_csv(index=False))
print(f"{records['run'].nunique()} of {len(spec.inputs)} evaluation runs found; {len(missing)} missing")

# %%
TABLES = [  # (name, stage, metric, task, lower is better, caption)
    ("pppl", "pppl", "pppl", "", True, "FLORES-200 devtest pseudo-perplexity (mean of sentence scores)"),
    ("tc", "finetune", "test_macro_f1", "tc", False, "Topic classification (SIB-200), test macro-F1"),
    ("sa", "finetune", "test_macro_f1", "sa", False, "Sentiment analysis (binary), test macro-F1"),
    ("ner", "finetune", "test_f1", "ner", False, "Named entity recognition (WikiANN), test seqeval F1"),
]
written = []
for model in sorted(records["model"].unique()):
    for name, stage, metric, task, lower, caption in TABLES:
        table = reporting.results_table(records, stage=stage, metric=metric, model=model, task=task)
        if table.empty:
            continue
        full_caption = f"{caption}; {model}"
        runs = reporting.selected_runs(records, stage=stage, metric=metric, model=model, task=task)
        for folder in (run.out_dir, paths.figures_dir()):
            written += reporting.write_table(
                table,
                folder / f"table_{name}_{model}",
                lower_is_better=lower,
                caption=full_caption,
                runs=runs,
            )
        display(
            Markdown(
                f"**{full_caption}**\n\n"
                + reporting.format_table(table, lower_is_better=lower, fmt="markdown")
            )
        )

# %% [markdown]
# ## Summary: seen / unseen / total averages per configuration (the paper's headline table)

# %%
for model in sorted(records["model"].unique()):
    summary = reporting.summary_table(records, model=model)
    runs = sorted(records.query("model == @model")["run"].unique())
    for folder in (run.out_dir, paths.figures_dir()):
        written += reporting.write_table(
            summary,
            folder / f"table_summary_{model}",
            lower_is_better=summary.attrs["lower_is_better"],
            caption=f"Summary; {model}",
            runs=runs,
        )
    display(
        Markdown(
            f"**Summary; {model}**\n\n"
            + reporting.format_table(
                summary, lower_is_better=summary.attrs["lower_is_better"], fmt="markdown"
            )
        )
    )

# %% [markdown]
# ## Learning checks
# Every language adapter must lower the masked-LM loss on held-out text of its own source, GlotCC adapters
# must lower the adapted language's pseudo-perplexity, and topic classification must be well above chance
# (1/7) on the languages a model has seen. Reported only: ConceptNet-adapter PPPL (the paper also
# finds that these adapters raise FLORES pseudo-perplexity) and topic classification on unseen languages.

# %%
checks = pd.concat(
    [learning_checks.learning_checks(records), learning_checks.adapter_checks(spec.inputs)], ignore_index=True
)
results.atomic_write_text(run.out_dir / "learning_checks.csv", checks.to_csv(index=False))
check_counts = learning_checks.summary(checks)
print(check_counts)
checks[~checks["passed"]]

# %%
run.finish(
    {"tables": len(written) // 6, "runs_found": int(records["run"].nunique()), "runs_missing": len(missing)}
    | check_counts,
    outputs=[paths.relative(p) for p in written],
)
