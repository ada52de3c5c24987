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
language = "qac"  # a language code from params/languages.yaml
source = "glotcc"  # conceptnet | glotcc
adapter = "seq_bn"  # seq_bn | seq_bn_inv | lora | mosa | fft (full fine-tuning)
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
objective = spec.train.objective  # mlm | clm (decoders)
name = None if spec.adapter == "fft" else objective  # the adapter's name, as in the paper: "mlm" / "clm"
lm, tokenizer = language_adapters.load_lm_model(run.model_path(), objective)
counts = language_adapters.add_language_adapter(
    lm,
    spec.adapter,
    name=name,
    overrides=spec.adapter_overrides,
    head_path=spec.head_path,
    seed=spec.train.seed,  # the adapter's initial weights
)
pd.Series(counts, name="parameters").to_frame()

# %% [markdown]
# ## Training (checkpoints in `run.checkpoint_dir()`, TensorBoard logs in `tensorboard/`)

# %%
splits = data_sources.load_text_splits(run.input(spec.corpus))
history = training.train_lm(
    lm,
    tokenizer,
    splits["train"]["text"],
    splits["validation"]["text"],
    training.TrainConfig(**to_dict(spec.train)),
    checkpoint_dir=run.checkpoint_dir(),
    log_dir=run.out_dir / "tensorboard",
)
saved = language_adapters.save_language_adapter(
    lm, run.out_dir / ("model" if name is None else "adapter"), name=name, tokenizer=tokenizer
)
print(f"best step {history['best_step']} (validation loss {history['best_val_loss']:.3f}) saved to {saved}")

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
        "precision": history["precision"],
    },
    history=history,
)
