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
import torch

from lrl_utils.data import sources as data_sources
from lrl_utils.orchestration.notebook import start
from lrl_utils.training import base_models

run = start("base_model", globals())
spec = run.spec
run.describe()

# %% [markdown]
# ## Pre-training text: GlotCC-format documents of the seen languages

# %%
train_texts, val_texts, counts = [], [], {}
for folder, share in zip(spec.corpora, spec.shares or [1.0] * len(spec.corpora), strict=True):
    splits = data_sources.load_text_splits(run.input(folder))
    n_train, n_val = (round(share * len(splits[k])) for k in ("train", "validation"))
    train_texts += list(splits["train"]["text"])[:n_train]
    val_texts += list(splits["validation"]["text"])[:n_val]
    counts[folder.split("--")[0].split("/")[-1]] = {"share": share, "train documents": n_train}
pd.DataFrame(counts).T

# %% [markdown]
# ## Tokenizer and model

# %%
tokenizer = base_models.train_tokenizer(
    spec.architecture, train_texts, spec.vocab_size, max_position=spec.max_position, alphabet=spec.alphabet
)
torch.manual_seed(spec.seed)
mlm = base_models.build_tiny_model(spec.architecture, spec, tokenizer)  # the spec holds the sizes
n_params = sum(p.numel() for p in mlm.parameters())
print(f"{type(mlm).__name__}: {n_params:,} parameters, vocabulary {len(tokenizer):,}")
print(tokenizer.tokenize(val_texts[0])[:24])

# %% [markdown]
# ## Masked-LM pre-training

# %%
history = base_models.pretrain(mlm, tokenizer, train_texts, val_texts, spec.train)
mlm.save_pretrained(run.out_dir / "model")
tokenizer.save_pretrained(run.out_dir / "model")

# %%
curve = pd.DataFrame(history["train_loss"], columns=["step", "train loss"]).set_index("step")
ax = curve.rolling(10, min_periods=1).mean().plot(figsize=(5, 3))
pd.DataFrame(history["val_loss"], columns=["step", "validation loss"]).set_index("step").plot(
    ax=ax, marker="o"
)
ax.set_ylabel("MLM loss")
plt.show()

# %%
run.finish(
    {
        "best_val_loss": history["best_val_loss"],
        "final_val_loss": history["final_val_loss"],
        "parameters": n_params,
        "vocab_size": len(tokenizer),
    },
    history=history,
)
