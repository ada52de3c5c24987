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
# # 2. Base model (demo only): a tiny mBERT or XLM-R
#
# The paper starts from `bert-base-multilingual-cased` and `xlm-roberta-base`. Offline, we build tiny
# models of the same architectures instead: a tokenizer trained on the seen languages' text (WordPiece
# for mBERT, Unigram for XLM-R), then brief masked-LM pre-training on the same text. A frozen random base
# learns nothing downstream, so this pre-training is what makes the demo meaningful. The result is saved
# with `save_pretrained` and later loaded with `from_pretrained`, exactly like a hub model.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
model = "tiny-xlmr"  # a tiny model from params/models.yaml
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import matplotlib.pyplot as plt
import pandas as pd

from lrl_utils.orchestration.notebook import start
from lrl_utils.training import base_model_stage

ctx = start("base_model", globals())  # shows the run spec

# %% [markdown]
# ## Pre-training text, tokenizer and masked-LM pre-training
#
# The pre-training text is the seen languages' GlotCC-format documents, each corpus cut to its share
# (`base_model.shares`). `base_model_stage.run` trains the tokenizer on it and on every document of the
# `base_model.vocabulary` languages (the demo: the unseen relative, which then has whole pieces of its own that
# the weights never see, while each seen language is cut into more pieces the smaller its share), builds the
# model (weights seeded with `seed`), pre-trains it on the shares alone and saves both to `model/`.

# %%
pretrained = base_model_stage.run(ctx)
history = pretrained["history"]
pd.DataFrame(pretrained["counts"]).T

# %%
curve = pd.DataFrame(history["train_loss"], columns=["step", "train loss"]).set_index("step")
ax = curve.rolling(10, min_periods=1).mean().plot(figsize=(5, 3))
pd.DataFrame(history["val_loss"], columns=["step", "validation loss"]).set_index("step").plot(
    ax=ax, marker="o"
)
ax.set_ylabel("MLM loss")
plt.show()
