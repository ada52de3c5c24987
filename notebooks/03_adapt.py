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
# # 3. Language adaptation: a language adapter trained with masked LM
#
# The base model is frozen; only the adapter trains (paper §4): **Seq_bn** (bottleneck after each
# feed-forward block), **Seq_bn_inv** (the same plus an invertible adapter on the embeddings) or **LoRA**
# (low-rank updates of the attention's query and value). The training text is the language's ConceptNet
# sentences or GlotCC documents; the step with the lowest validation loss is kept.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
model = "tiny-xlmr"  # a model from params/models.yaml
language = "qac"  # a language code from params/languages.yaml
source = "glotcc"  # conceptnet | glotcc
adapter = "seq_bn"  # seq_bn | seq_bn_inv | lora
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import matplotlib.pyplot as plt
import pandas as pd

from lrl_utils import data_sources, language_adapters, pipeline, training
from lrl_utils.params import to_dict

run = pipeline.start("adapt", globals())
spec = run.spec
run.describe()

# %% [markdown]
# ## Base model and adapter

# %%
mlm, tokenizer = language_adapters.load_mlm_model(run.model_path())
counts = language_adapters.add_language_adapter(
    mlm, spec.adapter, name="mlm", overrides=spec.adapter_overrides
)
pd.Series(counts, name="parameters").to_frame()

# %% [markdown]
# ## Masked-LM training of the adapter

# %%
splits = data_sources.load_text_splits(run.input(spec.corpus))
history = training.train_mlm(
    mlm,
    tokenizer,
    splits["train"]["text"],
    splits["validation"]["text"],
    training.MLMTrainConfig(**to_dict(spec.train)),
)
language_adapters.save_language_adapter(mlm, run.out_dir / "adapter", name="mlm")

# %%
curve = pd.DataFrame(history["train_loss"], columns=["step", "train loss"]).set_index("step")
ax = curve.rolling(10, min_periods=1).mean().plot(figsize=(5, 3))
pd.DataFrame(history["val_loss"], columns=["step", "validation loss"]).set_index("step").plot(
    ax=ax, marker="o"
)
ax.set_title(f"{spec.model} · {spec.language} · {spec.source} · {spec.adapter}")
plt.show()

# %%
run.finish(
    {
        "initial_val_loss": history["val_loss"][0][1],  # the fresh adapter: (nearly) the base model
        "best_val_loss": history["best_val_loss"],
        "final_val_loss": history["final_val_loss"],
        "best_step": history["best_step"],
        "adapter_params": counts["adapter_params"],
        "trainable_params": counts["trainable_params"],
        "tokens_per_second": history["tokens_seen"] / max(history["seconds"], 1e-9),
    },
    history=history,
)
