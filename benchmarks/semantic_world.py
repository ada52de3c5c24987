"""Experiment: does the paper's unseen-language gain arise when topic classification needs word meaning?

    .venv/bin/python benchmarks/semantic_world.py            # about 12 min on 2 cores
    .venv/bin/python benchmarks/semantic_world.py --skip-run # only re-read the runs and the baselines

The demo's TC is solved by token identity (a bag of words gets 0.91 on every language: docs/architecture.md, "Why
adapters hurt unseen-language TC"), so adaptation has nothing to add. The profile `semantic-world` runs on the
world's semantic variant (`data.world_rare_words`, `data.world_flores_topic_words`): more topic words, one per
SIB-200 sentence, so that 701 training sentences cannot teach a bag of words the topics, while the GlotCC
documents (topic-coherent) can. It runs in a project of its own (`benchmarks/.cache/semantic_world/`, via
`findings_world_seeds.project_copy`, so the demo's figures/ stay), then this script reads:

- per language and language adapter, TC test macro-F1 over the seeds (mean, std) and PPPL;
- what the data allow without any model, for the demo world and the semantic one: a bag-of-words and a
  bag-of-character-n-grams logistic regression on the 701 training sentences, and the same on word vectors
  learnt from the language's GlotCC documents alone (PPMI of document co-occurrence, 64-dim SVD);
- a linear probe on the base model's mean-pooled states per layer (does pre-training put meaning in layers?).

Written to `benchmarks/results/semantic_world-<date>.json` with machine, date and commit. Not run by CI.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROFILE = "semantic-world"
PROJECT = ROOT / "benchmarks" / ".cache" / "semantic_world"


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sib(world: Path, code: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = world / "sib200" / "data" / "annotated" / f"{code}_Latn"
    read = lambda split: pd.read_csv(folder / f"{split}.tsv", sep="\t", quoting=3)  # noqa: E731
    return read("train"), read("test")


def _macro_f1(train_x, train_y, test_x, test_y, scale: bool = False) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    if scale:
        scaler = StandardScaler().fit(train_x)
        train_x, test_x = scaler.transform(train_x), scaler.transform(test_x)
    clf = LogisticRegression(C=0.1 if scale else 1.0, max_iter=3000).fit(train_x, train_y)
    return round(float(f1_score(test_y, clf.predict(test_x), average="macro")), 3)


def data_baselines(world: Path, code: str) -> dict:
    """Macro-F1 without a language model: bags of words / character n-grams, and GlotCC word vectors."""
    from sklearn.feature_extraction.text import CountVectorizer

    train, test = sib(world, code)
    out = {}
    for name, vec in {
        "bag_of_words": CountVectorizer(token_pattern=r"\w+"),
        "bag_of_char_ngrams": CountVectorizer(analyzer="char_wb", ngram_range=(2, 4)),
    }.items():
        x = vec.fit_transform(train.text)
        out[name] = _macro_f1(x, train.category, vec.transform(test.text), test.category)
    docs = pd.read_parquet(next((world / "glotcc" / "v1.0" / f"{code}-Latn").glob("*.parquet"))).content
    vec = CountVectorizer(token_pattern=r"\w+")
    counts = vec.fit_transform(docs).astype(float)
    cooc = (counts.T @ counts).toarray()
    np.fill_diagonal(cooc, 0)
    marginal = cooc.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ppmi = np.nan_to_num(np.log(cooc * cooc.sum() / (marginal @ marginal.T)), neginf=0.0).clip(min=0)
    u, s, _ = np.linalg.svd(ppmi)
    vectors = u[:, :64] * np.sqrt(s[:64])

    def embed(texts):
        bags = vec.transform(texts).astype(float)
        return np.asarray(bags.multiply(1 / np.maximum(bags.sum(1), 1)) @ vectors)

    out["glotcc_word_vectors"] = _macro_f1(
        embed(train.text), train.category, embed(test.text), test.category, scale=True
    )
    return out


def layer_probe(model_dir: Path, world: Path, code: str) -> list[float]:
    """Macro-F1 of a logistic regression on the frozen base model's mean-pooled states, per layer."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()

    def states(texts: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), 64):
                batch = tokenizer(
                    texts[i : i + 64], padding=True, truncation=True, max_length=64, return_tensors="pt"
                )
                mask = batch["attention_mask"].unsqueeze(-1).float()
                hidden = model(**batch, output_hidden_states=True).hidden_states
                out.append(torch.stack([(h * mask).sum(1) / mask.sum(1) for h in hidden], 1))
        return torch.cat(out).numpy()

    train, test = sib(world, code)
    a, b = states(list(train.text)), states(list(test.text))
    return [_macro_f1(a[:, i], train.category, b[:, i], test.category, scale=True) for i in range(a.shape[1])]


def run_scores(runs: Path) -> list[dict]:
    """TC macro-F1 per (language, adapter) over seeds, and the PPPL of the same configuration."""
    from lrl_utils.records.results import load_records

    records = load_records(str(p.resolve()) for p in sorted(runs.glob("*/*")) if p.is_dir())
    tc = records[(records.task == "tc") & (records.metric == "test_macro_f1")]
    pppl = records[records.metric == "pppl"].set_index(["language", "source", "adapter"])["value"]
    if tc.empty:
        return []
    table = tc.groupby(["language", "source", "adapter"])["value"].agg(["mean", "std", "count"])
    return [
        {
            "language": lang,
            "adapter": f"{source}/{adapter}",
            "tc_f1_mean": round(r["mean"], 3),
            "tc_f1_std": round(r["std"], 3),
            "seeds": int(r["count"]),
            "pppl": round(pppl.get((lang, source, adapter), float("nan")), 1),
        }
        for (lang, source, adapter), r in table.iterrows()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (the runner's --jobs)")
    parser.add_argument("--skip-run", action="store_true", help="do not run the profile; read what is there")
    parser.add_argument("--out", help="results file; default benchmarks/results/semantic_world-<date>.json")
    args = parser.parse_args(argv)
    seeds = _sibling("findings_world_seeds")
    root = seeds.project_copy(PROJECT, PROFILE, {})
    run = {} if args.skip_run else seeds.run_project(root, PROFILE, args.jobs)
    from lrl_utils.demo.world import WorldConfig, ensure_world

    semantic = next((root / "data" / "demo_world").glob("world-*"))  # the profile's only world
    demo = ensure_world(PROJECT / "demo_world", WorldConfig())
    languages = ["qab", "qad", "qae", "qaf", "qag"]
    baselines = {
        "demo_world": {code: data_baselines(demo, code) for code in languages},
        "semantic_world": {code: data_baselines(semantic, code) for code in languages},
    }
    model_dir = next((root / "runs" / "base_model").glob("tiny-xlmr--*/model"))
    probes = {code: layer_probe(model_dir, semantic, code) for code in languages}
    scores = run_scores(root / "runs")
    provenance = seeds._provenance()
    result = {
        "profile": PROFILE,
        "provenance": provenance,
        "run": run,
        "tc_and_pppl": scores,
        "baselines_macro_f1": baselines,
        "base_model_layer_probe_macro_f1": probes,
    }
    date = datetime.date.today().isoformat()
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"semantic_world-{date}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(pd.DataFrame(scores).to_markdown(index=False))
    for name, table in baselines.items():
        print(f"\n{name}: macro-F1 without a language model\n{pd.DataFrame(table).T.to_markdown()}")
    print(f"\nbase model layer probe (layers 0..): {probes}")
    print(f"\n{out}: {provenance['machine']['cpu_model']}, {provenance['date']}")
    return 0 if run.get("exit_code", 0) == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
