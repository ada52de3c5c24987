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
# Rebuilt only from the `result.json` files of the profile's runs, and the paper's reported numbers
# (`params/reference/`, transcribed from its tables):
#
# 1. per task and model (the paper's Tables 10-22): languages × configurations (Base, CN × adapters,
#    Glot × adapters, FFT, Fusion), mean ± std over seeds, seen / unseen / total averages, best per row in
#    bold; pseudo-perplexity (lower is better), TC / SA macro-F1 and NER seqeval F1 (higher is better);
# 2. the summary (Table 1), the LLM comparison (Table 2), the adapters' trainable parameters (Table 9) and the
#    correlation coefficients (Tables 12, 14, 17, 20, 23);
# 3. reproduced vs reported: every cell of the paper's tables next to the reproduced value and the difference,
#    with the count of cells within the profile's tolerance (`report` in the profile);
# 4. the learning checks of the demo.
#
# Missing runs stay missing (–), never 0. Each table is written as Markdown and LaTeX (plain tables also as
# CSV) with a `.runs.json` sidecar listing the runs it was built from.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
kind = "tables"  # this notebook makes the tables
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import pandas as pd
from IPython.display import Markdown, display

from lrl_utils.config import paths
from lrl_utils.orchestration.notebook import start
from lrl_utils.records import results
from lrl_utils.report import checks as learning_checks
from lrl_utils.report import comparison, correlations, reference
from lrl_utils.report import tables as reporting

run = start("report", globals())
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
# ## Reproduced vs reported
# Every cell of the paper's per-language tables (PPPL, TC, SA, NER, and their seen / unseen / total averages;
# Table 8's adapter validation losses) with the reproduced mean over seeds. F1 is compared on the 0-1 scale
# with an absolute tolerance, pseudo-perplexity with a relative one, losses in nats with an absolute one; an
# average is compared only when all its languages were reproduced.


# %%
def write_plain(frame, name, caption, runs, **extra):
    stem, copies = run.out_dir / name, [paths.figures_dir()]
    return reporting.write_frame(frame, stem, caption=caption, runs=runs, also_to=copies, **extra)


adapts = comparison.load_adapt_records(spec.inputs)  # the language adapters behind the evaluations
table8 = comparison.reported_adapter_losses(reference.load_table("table08_adapter_losses"))
reported = pd.concat([reference.reported_results(), table8], ignore_index=True)
versus = comparison.reproduced_vs_reported(
    pd.concat([records, comparison.adapter_loss_records(adapts)], ignore_index=True),
    reported,
    f1_tolerance=spec.f1_tolerance,
    pppl_tolerance=spec.pppl_tolerance,
    loss_tolerance=spec.loss_tolerance,
)
versus_runs = sorted({r for runs in versus["runs"] for r in runs.split()})
names = [*reference.MAIN_TABLES, "table08_adapter_losses"]
sources = {"reference": [f"params/reference/{name}.csv" for name in names]}
tolerances = {k: getattr(spec, k) for k in ("f1_tolerance", "pppl_tolerance", "loss_tolerance")}
written += write_plain(
    versus, "table_reproduced_vs_reported", "Reproduced vs reported", versus_runs, **sources, **tolerances
)
versus_summary = comparison.comparison_summary(versus)
caption = (
    f"Reproduced vs reported: cells within tolerance (F1 ± {spec.f1_tolerance:g}, "
    f"PPPL ± {spec.pppl_tolerance:.0%}, adapter loss ± {spec.loss_tolerance:g})"
)
written += write_plain(
    versus_summary, "table_reproduced_vs_reported_summary", caption, versus_runs, **sources
)
display(Markdown(f"**{caption}**\n\n" + versus_summary.to_markdown(index=False)))
versus[versus["status"] != "not run"].head(40)

# %% [markdown]
# ## Adapter parameters (Table 9) and the LLM comparison (Table 2)
# Trainable parameters as counted in the adapt runs, next to the paper's full-size counts; the prompted LLMs'
# F1 over all items (an invalid answer counts as wrong) next to the small models, then the paper's Table 2.

# %%
params_table = comparison.parameter_table(adapts, reference.load_table("table09_trainable_params"))
if not params_table.empty:
    caption = "Trainable parameters of the language adapters (runs) and the paper's full-size counts"
    written += write_plain(params_table, "table_adapter_parameters", caption, sorted(adapts["run"]))
    display(Markdown(f"**{caption}**\n\n" + params_table.to_markdown(index=False)))

llm_records = comparison.load_llm_records(spec.inputs)
llm_table = comparison.llm_comparison_table(llm_records, records)
if not llm_records.empty:
    llm_runs = sorted(set(llm_records["run"]) | set(records["run"]))
    caption = "Prompted LLMs vs small models (mean F1 over the languages run; LLM F1 over all items)"
    written += write_plain(llm_table, "table_llm_comparison", caption, llm_runs)
    display(Markdown(f"**{caption}**\n\n" + llm_table.to_markdown(index=False, floatfmt=".3f")))
reference.load_table("table02_llm_vs_mlm").pivot_table(
    index="model", columns="task", values="value", sort=False
)

# %% [markdown]
# ## Correlations with data size (paper Tables 12, 14, 17, 20, 23)
# Before: the base model; after: Glot Seq_bn (PPPL) or Glot / CN Seq_bn_inv (task F1), against pre-training
# size plus adaptation size in GB. Languages a model did not see are left out; fewer than 3 points give no
# coefficient. The figures notebook draws them.

# %%
sizes = correlations.data_sizes(spec.inputs)
cor_table = correlations.correlation_table(records, sizes)
if not cor_table.empty:
    caption = "Correlation coefficients (scipy pearsonr / spearmanr)"
    written += write_plain(cor_table, "table_correlations", caption, sorted(records["run"].unique()))
cor_table

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
    {"outputs": len(written), "runs_found": int(records["run"].nunique()), "runs_missing": len(missing)}
    | {f"paper_cells_{k}": int(v) for k, v in versus_summary.iloc[-1].drop("table").items()}
    | check_counts,
    outputs=[paths.relative(p) for p in written],
)
