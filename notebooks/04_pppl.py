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
# # 4. Pseudo-perplexity on FLORES-200 devtest
#
# The paper's intrinsic metric (§5.1): each token of a sentence, special tokens included, is masked in
# turn and scored by the model; a sentence's pseudo-perplexity is exp(−mean log p), and the corpus score is
# the **mean of sentence scores** (the token-weighted variant is reported too). All masked copies of a
# sentence go through the model in one batch, and the vocabulary projection is computed only at the masked
# positions. The model runs on the GPU when there is one (bf16 autocast where it supports bf16), else on the
# CPU in float32, as the paper ran; the result records `device` and `precision`. With a language adapter the
# scores use its head path's evaluation forward (`lm_heads`): the invertible adapter's inverse runs before the
# output projection under `inverse` and under `paper_compat` (the original's `AutoAdapterModel` evaluation of
# adapters it trained without the inverse); the result records `head_path`.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
model = "tiny-xlmr"  # a model from params/models.yaml
language = "qag"  # a language code from params/languages.yaml
source = "none"  # none (base model) | conceptnet | glotcc
adapter = "none"  # none (base model) | seq_bn | seq_bn_inv | lora | mosa | fft
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import matplotlib.pyplot as plt

from lrl_utils.evaluation import pppl_stage
from lrl_utils.orchestration.notebook import start

ctx = start("pppl", globals())  # shows the run spec

# %% [markdown]
# ## Scoring
#
# `pppl_stage.run` loads the model (base, + adapter with the head path it was trained with, or the FFT model),
# reads the devtest exactly as in the file (quoting by its format or `data.quoting.flores`; `data.samples`
# allows fewer than 1012 sentences), keeps the first `max_sentences` (for `tha_*` the paper's rule for Thai's
# long unsegmented "words"), and writes the per-sentence scores to `per_sentence.csv`.

# %%
scored = pppl_stage.run(ctx)
ax = scored["per_sentence"]["pppl"].plot.hist(bins=30, log=True, figsize=(5, 3))
ax.set_xlabel("sentence pseudo-perplexity")
ax.set_title(ctx.spec.slug())
plt.show()
