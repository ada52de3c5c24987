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
language = "qac"  # a language code from params/languages.yaml
source = "none"  # none (base model) | conceptnet | glotcc
adapter = "none"  # none (base model) | seq_bn | seq_bn_inv | lora | mosa | fft
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import matplotlib.pyplot as plt
import pandas as pd

from lrl_utils.adapters import methods as language_adapters
from lrl_utils.data import flores_sib
from lrl_utils.evaluation import pppl as evaluation
from lrl_utils.orchestration.notebook import start

run = start("pppl", globals())
spec = run.spec
run.describe()

# %%
model_path, adapter_dir = run.language_model()  # base (+ adapter), or the fully fine-tuned model
mlm, tokenizer = language_adapters.load_mlm_model(model_path)
if adapter_dir is not None:  # with the head path it was trained with (`head_path` in the result)
    language_adapters.load_language_adapter(mlm, adapter_dir, name="mlm")
device = evaluation.select_device()  # cuda when available, else cpu
mlm.to(device)
# exactly as in the file; quoting by its format (or data.quoting.flores); data.samples allows < 1012 sentences
devtest = flores_sib.load_flores_devtest(
    run.data(spec.devtest), spec.flores_code, quoting=spec.quoting, sample=spec.samples
)
# the first max_sentences; for tha_* the paper's rule for Thai's long unsegmented "words"
sentences = evaluation.devtest_sentences(devtest["sentence"], spec.flores_code, spec.max_sentences)
print(f"{len(sentences)} devtest sentences on {device}, e.g. {sentences[0]!r}")

# %%
scores = evaluation.pseudo_perplexity(mlm, tokenizer, sentences, max_length=spec.max_length)  # precision auto
per_sentence = pd.DataFrame(scores["per_sentence"])
per_sentence.to_csv(run.out_dir / "per_sentence.csv", index=False)
print(
    f"PPPL (mean of sentences) = {scores['pppl']:.3f}; token-weighted = {scores['pppl_token_weighted']:.3f}"
    f" ({device}, precision {scores['precision']})"
)

# %%
ax = per_sentence["pppl"].plot.hist(bins=30, log=True, figsize=(5, 3))
ax.set_xlabel("sentence pseudo-perplexity")
ax.set_title(f"{spec.model} · {spec.language} · {spec.source} · {spec.adapter}")
plt.show()

# %%
keys = ("pppl", "pppl_token_weighted", "n_sentences", "n_tokens", "precision", "dtype", "head_path")
run.finish({**{k: scores[k] for k in keys}, "device": str(device)})
