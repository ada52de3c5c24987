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
from lrl_utils.orchestration.notebook import start
from lrl_utils.report import catalogue

ctx = start("report", globals())  # shows the run spec

# %% [markdown]
# ## Making the tables
#
# `catalogue.run` lists, then makes, every table the catalogue has for this kind
# (`lrl_utils/report/catalogue.py`; the figures notebook draws the same metrics from the same list) and writes
# each to this run's folder and to `figures/`; the tidy frame of every result read is kept as `records.csv`.

# %%
made = catalogue.run(ctx)

# %% [markdown]
# ## Per task and model (the paper's Tables 10-22)

# %%
catalogue.show(made["per_task"])

# %% [markdown]
# ## Summary: seen / unseen / total averages per configuration (the paper's headline table)

# %%
catalogue.show(made["summary"])

# %% [markdown]
# ## Reproduced vs reported
# Every cell of the paper's per-language tables (PPPL, TC, SA, NER, and their seen / unseen / total averages;
# Table 8's adapter validation losses) with the reproduced mean over seeds. F1 is compared on the 0-1 scale
# with an absolute tolerance, pseudo-perplexity with a relative one, losses in nats with an absolute one; an
# average is compared only when all its languages were reproduced.

# %%
catalogue.show(made["versus"])

# %% [markdown]
# ## Adapter parameters (Table 9) and the LLM comparison (Table 2)
# Trainable parameters as counted in the adapt runs, next to the paper's full-size counts; the prompted LLMs'
# F1 over all items (an invalid answer counts as wrong) next to the small models, then the paper's Table 2.

# %%
catalogue.show(made["parameters"] + made["llm"])

# %% [markdown]
# ## Correlations with data size (paper Tables 12, 14, 17, 20, 23)
# Before: the base model; after: Glot Seq_bn (PPPL) or Glot / CN Seq_bn_inv (task F1), against pre-training
# size plus adaptation size in GB. Languages a model did not see are left out; fewer than 3 points give no
# coefficient. The figures notebook draws them.

# %%
catalogue.show(made["correlations"])

# %% [markdown]
# ## Learning checks
# Every language adapter must lower the masked-LM loss on held-out text of its own source, GlotCC adapters
# must lower the adapted language's pseudo-perplexity, and topic classification must be well above chance
# (1/7) on the languages a model has seen. Reported only: ConceptNet-adapter PPPL (the paper also
# finds that these adapters raise FLORES pseudo-perplexity) and topic classification on unseen languages.
# The counts, then the checks that failed:

# %%
catalogue.show(made["checks"])

# %% [markdown]
# ## The paper's findings on this grid
# Each finding (GlotCC adapters help, most on unseen languages; the adapted small model beats prompted LLMs;
# pre-training data dominates) as checks with the numbers behind them: means ± std over seeds and languages,
# paired 95% intervals, rank correlations with the pre-training share. A check without the runs it needs is not
# tested and says what is missing; runs of the grid without a result are listed above the checks
# (`lrl_utils/report/findings.py`; also `figures/findings.md`).

# %%
catalogue.show(made["findings"])
