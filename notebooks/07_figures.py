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
#    and PPPL against F1, with Pearson and Spearman coefficients (`lrl_utils.report.correlations`); drawn only
#    where at least 4 seen languages have the numbers (fewer make a dot, not a correlation);
# 3. the language adapters' training and validation loss curves, read from their TensorBoard logs.
#
# Each figure is written as PNG and PDF with a sidecar listing the runs it was built from.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
kind = "figures"  # this notebook makes the figures
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
from lrl_utils.orchestration.notebook import start
from lrl_utils.report import catalogue

ctx = start("report", globals())  # shows the run spec

# %% [markdown]
# ## Making the figures
#
# `catalogue.run` lists, then draws, every figure the catalogue has for this kind
# (`lrl_utils/report/catalogue.py`; the tables notebook tabulates the same metrics from the same list) and
# writes each to this run's folder and to `figures/`.

# %%
made = catalogue.run(ctx)

# %% [markdown]
# ## Per task and model (the paper's Figs. 7-12)
# Pseudo-perplexity on a log axis, F1 for TC (with chance, 1/7), SA and NER; unseen languages marked (†, hatched).

# %%
catalogue.show(made["per_task"])

# %% [markdown]
# ## Correlations with data size (before and after adaptation)
# Languages a model did not see in pre-training are left out, before the coefficients are computed.

# %%
catalogue.show(made["correlations"])

# %% [markdown]
# ## Language-adapter training curves (from the TensorBoard logs)

# %%
catalogue.show(made["loss"])
