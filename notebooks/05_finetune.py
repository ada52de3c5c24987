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
# # 5. Downstream: topic classification with a task adapter stacked on the language adapter
#
# MAD-X style (paper §5.3): the base model and the language adapter stay frozen; a new `seq_bn` task
# adapter and a classification head are trained on SIB-200 (7 topics), with `Stack(language, task)`
# active. The baseline trains the task adapter on the bare model. The epoch with the lowest validation
# loss is evaluated on test (macro-F1).

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
model = "tiny-xlmr"  # a model from params/models.yaml
language = "qac"  # a language code from params/languages.yaml
task = "tc"  # tc = SIB-200 topic classification
source = "glotcc"  # none (no language adapter) | conceptnet | glotcc
adapter = "seq_bn"  # none | seq_bn | seq_bn_inv | lora | mosa | fft
seed = 1  # paper: 1, 2, 3
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay

from lrl_utils import data_sources, pipeline, tasks
from lrl_utils.params import to_dict

run = pipeline.start("finetune", globals())
spec = run.spec
run.describe()

# %%
data = data_sources.load_sib200(run.data(spec.dataset), spec.flores_code)
model_path, adapter_dir = run.language_model()  # base (+ language adapter), or the fully fine-tuned model
config = tasks.TaskTrainConfig(**to_dict(spec.train), seed=spec.seed)
data

# %%
res = tasks.train_topic_classifier(model_path, data, data_sources.SIB_LABELS, adapter_dir, config)
predictions = pd.DataFrame(res["predictions"])
predictions.to_csv(run.out_dir / "predictions.csv", index=False)
print(
    f"test macro-F1 {res['test_macro_f1']:.3f}, accuracy {res['test_accuracy']:.3f}, best epoch {res['best_epoch']}"
)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
pd.DataFrame({"train": res["train_loss"], "validation": res["val_loss"]}).plot(ax=ax1, marker=".")
ax1.axvline(res["best_epoch"] - 1, ls=":", c="grey")  # best_epoch is 1-based
ax1.set_xlabel("epoch")
ax1.set_ylabel("loss")
ConfusionMatrixDisplay.from_predictions(
    predictions["label"],
    predictions["pred"],
    ax=ax2,
    colorbar=False,
    labels=range(len(data_sources.SIB_LABELS)),
)
plt.show()

# %%
run.finish(
    {k: res[k] for k in ("test_macro_f1", "test_accuracy", "best_epoch", "trainable_params")},
    history={k: res[k] for k in ("train_loss", "val_loss", "val_macro_f1")},
)
