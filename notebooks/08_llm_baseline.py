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
# # 8. LLM baseline: a prompted LLM on topic classification, sentiment or NER
#
# The paper compares the adapted small models with prompted LLMs (§6). Here an LLM (a local `transformers`
# model, or any OpenAI-compatible endpoint) answers the test items of one language and task, zero- or
# k-shot, with the prompt templates of `params/prompts.yaml`. Every response is cached as it arrives, so an
# interrupted run resumes without asking again. Answers are parsed; an unparseable or ambiguous answer counts
# as wrong (F1 over all items, and the rate of invalid answers). The paper's valid-only F1 is reported too,
# as `f1_paper_compat`.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
llm = "tiny-llama"  # an LLM from params/llms.yaml
language = "qab"  # a language code from params/languages.yaml
task = "tc"  # tc = SIB-200 topics | sa = sentiment | ner = WikiANN
shots = 0  # k examples from train in each prompt (0 = zero-shot)
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import pandas as pd

from lrl_utils.llm import baselines as llm_baselines
from lrl_utils.orchestration.notebook import start

ctx = start("llm", globals())  # shows the run spec

# %% [markdown]
# ## Prompting (responses cached in `runs/_llm_cache/`), parsing and scoring
#
# `llm_baselines.run` loads the task's test items (and train items for k-shot prompts), builds the prompts,
# generates (cached), parses every answer and scores; the parsed answers go to `predictions.jsonl`.

# %%
prompted = llm_baselines.run(ctx)
prompted["rows"].head(10)

# %% [markdown]
# ## Scores: over all items (invalid = wrong), and the paper's valid-only F1

# %%
pd.Series(prompted["metrics"], name="value").to_frame()
