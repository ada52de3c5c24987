"""The `real-samples` profile through the whole pipeline: `./run_all.sh --profile real-samples` on the real data
samples of ../shared/data (5 languages in 5 scripts, every dataset local, in the layouts of their releases), in a
throw-away project root beside a link to the shared data, so that the profile's `../shared/data/...` paths resolve.
Checks that every run finished, that each task produced metrics for each of its languages, and that the texts came
through: test items equal the files' (counted and compared field by field), carved splits are recorded."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from lrl_utils.config.profiles import task_languages
from lrl_utils.orchestration.grid import Grid
from lrl_utils.orchestration.runner import main

PROFILE = "real-samples"


def tsv_column(file: Path, column: str) -> list[str]:
    """One column of a raw (unquoted) TSV file with a header, read field by field."""
    lines = file.read_text(encoding="utf-8").splitlines()
    index = lines[0].split("\t").index(column)
    return [line.split("\t")[index] for line in lines[1:] if line]


def conll_sentences(file: Path) -> list[list[str]]:
    blocks = file.read_text(encoding="utf-8").split("\n\n")
    return [[line.split("\t")[0] for line in b.splitlines()] for b in blocks if b.strip()]


def jsonl(file: Path) -> list[dict]:
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def real_project(project, shared):
    project.use_real_notebooks()
    (project.root.parent / "shared").mkdir()
    (project.root.parent / "shared" / "data").symlink_to(shared.resolve())  # the profile's ../shared/data
    return project


def test_the_profile_reads_every_dataset_locally(real_project):
    profile = Grid(PROFILE).profile
    assert profile.data.mode == "local" and len(profile.languages) >= 5
    assert main(["--profile", PROFILE, "--dry-run"]) == 0  # every local file where its loader looks


@pytest.mark.parametrize("model", ["tiny-xlmr", "tiny-mbert"])
def test_tiny_tokenizers_cover_the_real_scripts(real_project, shared, model):
    """The tiny models' tokenizers (WordPiece, Unigram; params/models.yaml's alphabet), trained on the profile's
    real text, cover each language's script: few unknown tokens in its FLORES sentences."""
    from lrl_utils.training.base_models import train_tokenizer

    grid = Grid(PROFILE)
    tiny = grid.registry.models[model]
    texts = [
        line
        for code in grid.profile.base_model.languages
        for line in next((shared / "text" / code).glob("*.txt")).read_text("utf-8").splitlines()
    ]
    tokenizer = train_tokenizer(tiny.architecture, texts, tiny.tiny.vocab_size, alphabet=tiny.tiny.alphabet)
    for code in grid.profile.languages:
        sentences = tsv_column(shared / "flores200" / code / "devtest.tsv", "sentence")[:50]
        ids = [i for s in sentences for i in tokenizer(s)["input_ids"]]
        assert sum(i == tokenizer.unk_token_id for i in ids) < 0.1 * len(ids), (model, code)


@pytest.mark.slow
def test_real_samples_profile_end_to_end(real_project, shared):
    grid = Grid(PROFILE)
    specs = grid.expand()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [str(REPO / "run_all.sh"), "--profile", PROFILE],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"summary: {len(specs)} done, 0 skipped, 0 failed, 0 blocked" in done.stdout
    results = {}
    for spec in specs:
        path = real_project.runs / spec.folder() / "result.json"
        assert path.exists(), f"{spec.folder()}: no result"
        results[spec.folder()] = (spec, json.loads(path.read_text(encoding="utf-8")))

    # preprocessing: every non-empty line of a language's text file is one document in exactly one split
    for spec, result in (v for v in results.values() if v[0].stage == "preprocess"):
        (text,) = (shared / "text" / spec.language).glob("*.txt")
        lines = [line for line in text.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert sum(result["metrics"][f"n_{s}"] for s in ("train", "val", "test")) == len(lines)
    # PPPL on the first max_sentences FLORES sentences of each language
    for _, result in (v for v in results.values() if v[0].stage == "pppl"):
        assert (
            result["metrics"]["n_sentences"] == grid.profile.pppl.max_sentences
            and result["metrics"]["pppl"] > 1
        )

    # every task has metrics for each of its languages; the test items are the file's
    finetunes = [v for v in results.values() if v[0].stage == "finetune"]
    for task in grid.profile.tasks:
        ran = {spec.language for spec, _ in finetunes if spec.task == task}
        assert ran == set(task_languages(grid.profile, task)), task
    for spec, result in finetunes:
        metrics, stats = result["metrics"], result["task_data"]
        assert ("test_f1" if spec.task == "ner" else "test_macro_f1") in metrics, spec.folder()
        rows = jsonl(real_project.runs / spec.folder() / "predictions.jsonl")
        assert len(rows) == stats["sizes"]["test"], spec.folder()
        code = spec.language
        if spec.task == "tc":
            assert [r["text"] for r in rows] == tsv_column(shared / "sib200" / code / "test.tsv", "text")
        elif spec.task == "sa" and code == "mlt":  # one file: 80/10/10 carved out of its Maltese rows
            labelled = [r for r in jsonl(shared / "sentiment" / "mlt" / "all.jsonl") if r["Maltese"] == "1"]
            assert sum(stats["sizes"].values()) == len(labelled)
            assert set(stats["carved"]) == {"validation", "test"}
            assert {r["text"] for r in rows} <= {r["Online Post"] for r in labelled}
        elif spec.task == "sa":
            folder = shared / "sentiment" / code
            if code == "tha":
                texts = [r["texts"] for r in jsonl(folder / "test.jsonl")]
            else:
                texts = tsv_column(folder / "test.tsv", "text" if code == "heb" else "tweet")
            assert [r["text"] for r in rows] == texts
            if code == "heb":  # no dev file: validation carved out of train, 10%
                assert stats["carved"] == {"validation": {"from": "train", "share": 0.1, "rows": 30}}
        else:
            folder = shared / "wikiann" / code
            if (folder / "test.conll").exists():  # Rahimi layout
                assert [r["tokens"] for r in rows] == conll_sentences(folder / "test.conll")
                assert stats["carved"] == {}
            else:  # XTREME PAN-X layout: no labelled test, half of dev becomes test
                dev = conll_sentences(folder / "dev.conll")
                assert stats["carved"]["test"]["from"] == "validation"
                assert stats["sizes"]["validation"] + stats["sizes"]["test"] == len(dev)
                assert all(r["tokens"] in dev for r in rows)

    # the report read them all
    tables = real_project.runs / grid.report("tables").folder()
    for task in ("pppl", *grid.profile.tasks):
        assert (tables / f"table_{task}_tiny-xlmr.md").exists(), task
