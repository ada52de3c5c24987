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
# # 1. Data: ConceptNet sentences and GlotCC documents
#
# For one language and one source, we build the language-adapter training text (paper §3):
# - **ConceptNet**: every edge whose start node is in the language is verbalised with one of 33 relation
#   templates (`"X is a synonym of Y."`); edges to external URLs, other relations, and edges whose two
#   surface forms are equal are dropped.
# - **GlotCC-V1**: web documents, train capped at 1 GiB of text.
#
# Both are split 80/10/10 with seed 42.

# %% tags=["parameters"]
profile = "demo"  # params/profiles/<profile>.yaml
language = "qac"  # a language code from params/languages.yaml
source = "glotcc"  # conceptnet | glotcc
spec_json = ""  # set by the runner: the full run spec
out_dir = ""  # set by the runner; empty: a folder under runs/_interactive

# %%
import pandas as pd

from lrl_utils import data_sources, pipeline

run = pipeline.start("preprocess", globals())
spec = run.spec
run.describe()

# %% [markdown]
# ## Read the source

# %%
if spec.source == "conceptnet":
    sentences, stats = data_sources.conceptnet_sentences(
        run.data(spec.location), [spec.code], paper_compat=spec.paper_compat
    )
    texts, stats = sentences.get(spec.code, []), stats.get(spec.code, {})
else:
    # read a little more than the train cap: 80% of what is read becomes train
    texts = data_sources.glotcc_documents(
        run.data(spec.location), spec.code, max_bytes=int(spec.max_train_bytes / 0.8)
    )
    stats = {"documents": len(texts)}
if not texts:
    raise ValueError(
        f"no {spec.source} text for language {spec.language!r} (code {spec.code}) in {spec.location}"
    )
print(f"{len(texts):,} texts; e.g. {texts[0][:120]!r}")

# %% [markdown]
# ## Split 80/10/10 and write

# %%
splits = data_sources.split_80_10_10(texts, seed=spec.split_seed)
counts = data_sources.write_splits(run.out_dir, splits)
summary = pd.DataFrame(
    {
        "texts": counts,
        "MB": {k: sum(len(t.encode("utf-8")) for t in v) / 1e6 for k, v in splits.items()},
    }
)
summary

# %%
run.finish(
    {f"n_{k}": int(v) for k, v in counts.items()} | {"train_mb": float(summary.loc["train", "MB"])},
    source_stats=stats,
)
