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
# # 1. Data: ConceptNet sentences and GlotCC documents
#
# For one language and one source, we build the language-adapter training text (paper §3):
# - **ConceptNet**: every edge whose start node is in the language is verbalised with one of 33 relation
#   templates (`"X is a synonym of Y."`); edges to external URLs, other relations, and edges whose two
#   surface forms are equal are dropped (`lrl_utils/data/conceptnet.py`). The sentences are split 80/10/10 as in
#   the paper (`train_test_split`, seed 42, twice).
# - **GlotCC-V1**: web documents, streamed; each document goes to train/val/test (80/10/10) by a hash of its
#   text keyed with the seed, and train is capped at 1 GiB and val (and test) at 200 MiB of UTF-8 text, at
#   document boundaries; reading stops once train and val are full (`lrl_utils/data/glotcc.py`).
#
# Malformed input lines or records are counted and the first ones reported with file and line; the run
# fails only when more than `max_bad_fraction` of them are malformed, and then writes no split file.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
language = "qag"  # a language code from params/languages.yaml
source = "glotcc"  # conceptnet | glotcc
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
from lrl_utils.data import preprocess
from lrl_utils.orchestration.notebook import start

ctx = start("preprocess", globals())  # shows the run spec

# %% [markdown]
# ## Read, split 80/10/10 and write
#
# The three split files appear together once everything is read and checked, or not at all
# (`preprocess.run`, the run's `result.json` last). Texts and megabytes per split:

# %%
preprocessed = preprocess.run(ctx)
preprocessed["summary"]
