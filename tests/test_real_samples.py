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
import yaml
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


# ISO 15924 script of a FLORES code -> the prefix of its letters' Unicode names
SCRIPT_NAMES = {
    "Latn": "LATIN", "Cyrl": "CYRILLIC", "Arab": "ARABIC", "Hebr": "HEBREW", "Ethi": "ETHIOPIC", "Thai": "THAI",
    "Tibt": "TIBETAN", "Sinh": "SINHALA", "Deva": "DEVANAGARI", "Geor": "GEORGIAN", "Grek": "GREEK",
    "Beng": "BENGALI", "Telu": "TELUGU",
}  # fmt: skip


def sample_languages(shared: Path) -> set[str]:
    return {
        p.name
        for d in shared.iterdir()
        if d.is_dir()
        for p in d.iterdir()
        if p.is_dir() and p.name != "multi"
    }


def test_every_language_of_the_samples_is_in_the_registry_with_its_script(shared):
    """A profile can name each real language of the samples (the paper's 30, `paper: true`, and the others), and
    the registry's script is the one its FLORES sentences are written in."""
    import unicodedata

    from lrl_utils.config.params import load_registry

    reg = load_registry()
    codes = sample_languages(shared)
    assert codes >= {"isl", "kir", "ltz", "snd", "eng", "mlt", "tha"}
    assert codes <= set(reg.languages), sorted(codes - set(reg.languages))
    for code in codes:
        lang = reg.languages[code]
        assert (
            not lang.demo
            and lang.flores.split("_")[0] == code
            and lang.glotcc == lang.flores.replace("_", "-")
        )
        text = "".join(tsv_column(shared / "flores200" / code / "devtest.tsv", "sentence")[:20])
        letters = [unicodedata.name(c, "?").split()[0] for c in text if c.isalpha()]
        main_script = max(set(letters), key=letters.count)
        assert main_script == SCRIPT_NAMES[lang.flores.split("_")[1]], (code, main_script)


def test_languages_beyond_the_paper_pass_the_data_check(real_project, shared):
    """Icelandic adapted on its web text; Kyrgyz, Luxembourgish, Sindhi and English topic-classified on the base
    model alone: the dry-run check reads each dataset where its loader looks, with the registry's codes."""
    prof = yaml.safe_load((REPO / "params" / "profiles" / f"{PROFILE}.yaml").read_text(encoding="utf-8"))
    prof.update(
        languages=["isl"],
        task_languages={"tc": ["isl", "kir", "ltz", "snd", "eng"]},
        tasks=["tc"],
        task_configs={"tc": ["none/none", "glotcc/seq_bn_inv"]},
    )
    prof["base_model"]["languages"] = ["isl", "kir", "ltz"]
    real_project.add_profile("beyond", prof)
    assert main(["--profile", "beyond", "--dry-run"]) == 0
    specs = Grid("beyond").expand()
    tc = {spec.language for spec in specs if spec.stage == "finetune"}
    assert tc == {"isl", "kir", "ltz", "snd", "eng"}


def test_an_adapted_language_without_enough_web_text_is_refused_before_compute(real_project, capsys):
    """Kyrgyz's sample has 6 documents: too few to split for a language adapter; the check says so, naming the
    file, before any run."""
    prof = yaml.safe_load((REPO / "params" / "profiles" / f"{PROFILE}.yaml").read_text(encoding="utf-8"))
    prof.update(
        languages=["kir"], task_languages={}, tasks=["tc"], task_configs={"tc": ["glotcc/seq_bn_inv"]}
    )
    prof["base_model"]["languages"] = ["kir"]
    real_project.add_profile("kyrgyz", prof)
    assert main(["--profile", "kyrgyz", "--dry-run"]) != 0
    out = capsys.readouterr()
    message = [line for line in (out.out + out.err).splitlines() if line.startswith("error:")]
    assert len(message) == 1 and "text/kir/wikipedia_langid_test.txt" in message[0], message
    assert "split of kir-Cyrl gets no document" in message[0] and not (real_project.runs / "adapt").exists()
