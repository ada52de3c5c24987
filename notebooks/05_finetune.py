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
# # 5. Downstream tasks with a task adapter stacked on the language adapter
#
# MAD-X style (paper §5.3): the base model and the language adapter stay frozen; a new `seq_bn` task
# adapter and a task head are trained with `Stack(language, task)` active: topic classification on
# SIB-200 (7 topics, macro-F1), binary sentiment analysis (macro-F1) or NER on WikiANN (seqeval entity
# F1). The baseline trains the task adapter on the bare model, the FFT baseline on the fully fine-tuned
# model; for NER, the ConceptNet and GlotCC adapters can also be fused (`Stack(Fuse(CN, Glot), task)`).
# The epoch with the lowest validation loss is evaluated on test. Training and evaluation run on the GPU when
# there is one (bf16 autocast where it supports bf16, `precision: auto`), else on the CPU in float32; the
# result records `device` and `precision`.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
model = "tiny-xlmr"  # a model from params/models.yaml
language = "qag"  # a language code from params/languages.yaml
task = "tc"  # tc = SIB-200 topics | sa = sentiment | ner = WikiANN
source = "glotcc"  # none (no language adapter) | conceptnet | glotcc | fusion (ner: both, fused)
adapter = "seq_bn_inv"  # none | seq_bn | seq_bn_inv | lora | mosa | fft
seed = 1  # paper: 1, 2, 3
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay

from lrl_utils.evaluation import finetune
from lrl_utils.orchestration.notebook import start

ctx = start("finetune", globals())  # shows the run spec

# %% [markdown]
# ## Data, task-adapter training, and the best epoch (validation loss) tested
#
# The task's files are read exactly as written (SIB-200 TSV quoting by the files' layout or `data.quoting`;
# sentiment and WikiANN with at most `data.max_bad_fraction` malformed records). Splits the files lack (XTREME
# WikiANN has no labelled test, a sentiment set may have no dev split or be one file) are an error, or carved out
# of the others when the profile says `finetune.<task>.missing_splits: carve` (seeded by `split_seed`;
# `lrl_utils/data/task_data.py`); the result records the split sizes and what was carved. TC and SA train a
# classification head, NER a tagging head (labels aligned to each word's first sub-token, or to all of them under
# `label_alignment: paper_compat`); both go through the same epoch loop (`evaluation/task_loop.py`). The test
# predictions are written to `predictions.jsonl`; every test metric follows from them.

# %%
finetuned = finetune.run(ctx)
res = finetuned["result"]
pd.Series(finetuned["metrics"], name="value").to_frame()

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
pd.DataFrame({"train": res["train_loss"], "validation": res["val_loss"]}).plot(ax=ax1, marker=".")
ax1.axvline(res["best_epoch"] - 1, ls=":", c="grey")  # best_epoch is 1-based
ax1.set_xlabel("epoch")
ax1.set_ylabel("loss")
gold, pred = finetune.gold_and_predicted(ctx.spec.task, res["predictions"])
ConfusionMatrixDisplay.from_predictions(gold, pred, ax=ax2, colorbar=False, xticks_rotation=45)
plt.show()
