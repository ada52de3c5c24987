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
language = "qac"  # a language code from params/languages.yaml
task = "tc"  # tc = SIB-200 topics | sa = sentiment | ner = WikiANN
source = "glotcc"  # none (no language adapter) | conceptnet | glotcc | fusion (ner: both, fused)
adapter = "seq_bn"  # none | seq_bn | seq_bn_inv | lora | mosa | fft
seed = 1  # paper: 1, 2, 3
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay

from lrl_utils.data import flores_sib, sentiment, wikiann
from lrl_utils.evaluation import ner, tasks
from lrl_utils.orchestration.notebook import start

run = start("finetune", globals())
spec = run.spec
run.describe()

# %% [markdown]
# ## Data and model

# %% [markdown]
# Splits the task's files lack (XTREME WikiANN has no labelled test, a sentiment set may have no dev split or
# be one file) are an error, or carved out of the others when the profile says `finetune.<task>.missing_splits:
# carve` (seeded by `split_seed`; `lrl_utils/data/task_data.py`). The result records the split sizes and what was carved.

# %%
location = run.data(spec.dataset)
bad = spec.max_bad_fraction  # the profile's data.max_bad_fraction; texts come back exactly as in the files
data_stats: dict = {}
rule = {"missing_splits": spec.train.missing_splits, "seed": spec.train.split_seed, "stats": data_stats}
if spec.task == "tc":  # TSV quoting by the files' layout, or the profile's data.quoting
    data = flores_sib.load_sib200(location, spec.flores_code, quoting=spec.quoting)
    labels = flores_sib.SIB_LABELS
elif spec.task == "sa":
    data = sentiment.load_sentiment(
        location, spec.flores_code, iso3=spec.language, quoting=spec.quoting, max_bad_fraction=bad, **rule
    )
    labels = sentiment.SENTIMENT_LABELS
else:
    data = wikiann.load_wikiann(location, spec.flores_code, iso3=spec.language, max_bad_fraction=bad, **rule)
    labels = wikiann.NER_TAGS
data_stats = {"sizes": {split: data[split].num_rows for split in data}, "carved": {}} | data_stats
print(f"split sizes {data_stats['sizes']}; carved out: {data_stats['carved'] or 'nothing'}")
model_path, language_adapter = run.language_model()  # base (+ adapter or fused adapters), or the FFT model
config = replace(spec.train, seed=spec.seed)  # the profile's finetune.<task> settings, this run's seed
label_alignment = config.label_alignment  # NER only
data

# %% [markdown]
# ## Task-adapter training; the best epoch (validation loss) is tested

# %%
if spec.task == "ner":
    res = ner.train_ner_tagger(model_path, data, language_adapter, config, label_alignment=label_alignment)
    metric = "test_f1"
else:
    res = tasks.train_text_classifier(model_path, data, labels, language_adapter, config, task=spec.task)
    metric = "test_macro_f1"
predictions = pd.DataFrame(res["predictions"])
predictions.to_json(run.out_dir / "predictions.jsonl", orient="records", lines=True, force_ascii=False)
print(f"test {metric} {res[metric]:.3f}, best epoch {res['best_epoch']} of {config.epochs}")
print(f"trained on {res['device']}, precision {res['precision']}")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
pd.DataFrame({"train": res["train_loss"], "validation": res["val_loss"]}).plot(ax=ax1, marker=".")
ax1.axvline(res["best_epoch"] - 1, ls=":", c="grey")  # best_epoch is 1-based
ax1.set_xlabel("epoch")
ax1.set_ylabel("loss")
if spec.task == "ner":
    gold = [tag for row in res["predictions"] for tag in row["gold"]]
    pred = [tag for row in res["predictions"] for tag in row["pred"]]
else:
    gold, pred = predictions["label"], predictions["pred"]
ConfusionMatrixDisplay.from_predictions(gold, pred, ax=ax2, colorbar=False, xticks_rotation=45)
plt.show()

# %%
# every test_* key is a test metric that follows from predictions.jsonl (the end-to-end test recomputes each)
metrics = [k for k in res if k.startswith("test_")] + ["best_epoch", "trainable_params"]
metrics += ["device", "precision"]
if "words_without_position" in res:  # NER: test words cut off by truncation (predicted O)
    metrics.append("words_without_position")
history = {k: res[k] for k in ("train_loss", "val_loss", "val_macro_f1", "val_f1") if k in res}
run.finish({k: res[k] for k in metrics}, history=history, task_data=data_stats)
