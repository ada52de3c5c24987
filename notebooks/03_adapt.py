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
# # 3. Language adaptation: a language adapter trained with masked (or causal) LM
#
# The base model is frozen; only the adapter trains (paper §4): **Seq_bn** (bottleneck after each
# feed-forward block), **Seq_bn_inv** (the same plus an invertible adapter on the embeddings), **LoRA**
# (low-rank updates of the attention's query and value), or **MoSA** (Seq_bn trained as sparse modules,
# merged at the end). The **FFT** baseline trains every weight instead. Decoder models (LLaMA-3-8B in the
# paper, a tiny Llama in the demo) get causal-LM adapters. The training text is the language's ConceptNet
# sentences or GlotCC documents; the step with the lowest validation loss is kept. A killed run resumes
# from its last checkpoint.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
model = "tiny-xlmr"  # a model from params/models.yaml
language = "qag"  # a language code from params/languages.yaml
source = "glotcc"  # conceptnet | glotcc
adapter = "seq_bn_inv"  # seq_bn | seq_bn_inv | lora | mosa | fft (full fine-tuning)
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import matplotlib.pyplot as plt
import pandas as pd

from lrl_utils.orchestration.notebook import start
from lrl_utils.training import adapt

ctx = start("adapt", globals())  # shows the run spec

# %% [markdown]
# ## Base model, adapter and training
#
# `adapt.run` loads the base model, adds the adapter (its initial weights seeded with
# `train.seed`), trains it (checkpoints in `ctx.checkpoint_dir()`, TensorBoard logs in `tensorboard/`) and saves
# the best step to `adapter/` (`model/` for full fine-tuning). `python -m lrl_utils.orchestration.launch adapt` runs the same
# function on several GPUs or nodes (`accelerate launch`).

# %%
adapted = adapt.run(ctx)
history = adapted["history"]
print(
    f"best step {history['best_step']} (validation loss {history['best_val_loss']:.3f}) saved to {adapted['saved']}"
)
pd.Series(adapted["counts"], name="parameters").to_frame()

# %%
curve = pd.DataFrame(history["train_loss"], columns=["step", "train loss"]).set_index("step")
ax = curve.rolling(10, min_periods=1).mean().plot(figsize=(5, 3))
pd.DataFrame(history["val_loss"], columns=["step", "validation loss"]).set_index("step").plot(
    ax=ax, marker="o"
)
ax.set_title(ctx.spec.slug())
plt.show()
