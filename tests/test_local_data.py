"""Local data a user configures: `data.mode: local` (no silent hub fallback), data paths in specs (stable hashes),
the `--dry-run` check of every local file against its loader's layout, `task_languages`, and the missing-split
rule `finetune.<task>.missing_splits` / `split_seed` in the specs."""

from __future__ import annotations

import shutil

import pytest
from conftest import tiny_profile

from lrl_utils.config import paths
from lrl_utils.config.params import ParamError
from lrl_utils.orchestration.grid import Grid
from lrl_utils.orchestration.runner import main

SHORT = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "max_length": 32}
LOCAL = {
    "mode": "local",
    "glotcc": "../x/text",
    "flores": "../x/flores200",
    "sib200": "../x/sib200",
    "wikiann": "../x/wikiann",
    "sentiment": "../x/sentiment",
    "samples": True,  # one-sentence FLORES files
}


def local_profile(**changes) -> dict:
    """A local-mode profile of Maltese and Swahili with every task."""
    prof = tiny_profile(
        data=dict(LOCAL),
        languages=["mlt", "swh"],
        tasks=["tc", "sa", "ner"],
        finetune={"tc": SHORT, "sa": SHORT, "ner": SHORT},
    )
    prof["base_model"]["languages"] = ["mlt"]
    prof.update(changes)
    return prof


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_data(root):
    """../x: every file the local profile reads, in the layouts of the releases."""
    x = root.parent / "x"
    for iso3 in ("mlt", "swh"):
        write(
            x / "text" / iso3 / "wiki.txt", "".join(f"Paragraph {i}, written in {iso3}.\n" for i in range(40))
        )
        write(x / "flores200" / iso3 / "devtest.tsv", "id\tsentence\n1\tA sentence.\n")
        for stem in ("train", "dev", "test"):
            write(x / "sib200" / iso3 / f"{stem}.tsv", "index_id\tcategory\ttext\n1\ttravel\tA trip.\n")
            write(x / "sentiment" / iso3 / f"{stem}.tsv", "text\tlabel\ngood\t1\n")
            write(x / "wikiann" / iso3 / f"{stem}.conll", "Valletta\tB-LOC\n")
    return x


# ----------------------------------------------------------------------------------------------------------
# data.mode: local


def test_local_mode_names_the_dataset_key_left_at_hub(project):
    data = {k: v for k, v in LOCAL.items() if k != "wikiann"}  # missing: the default `hub`
    project.add_profile("loc", local_profile(data=data))
    with pytest.raises(
        ParamError, match=r"loc\.yaml: `data\.wikiann`: `data\.mode` is local but `data\.wikiann`"
    ):
        Grid("loc")
    project.add_profile("loc", local_profile(data={**data, "wikiann": "hub"}))
    with pytest.raises(ParamError, match=r"`data\.wikiann`.*task ner"):
        Grid("loc")
    url = {**LOCAL, "conceptnet": "https://example.org/assertions.csv.gz"}  # mode local: no downloads either
    project.add_profile(
        "loc", local_profile(data=url, sources=["conceptnet"], adapt={"conceptnet": {"max_length": 64}})
    )
    with pytest.raises(
        ParamError, match=r"`data\.conceptnet`: `data\.mode` is local but `data\.conceptnet` is a URL"
    ):
        Grid("loc")
    project.add_profile("loc", local_profile(data=data, tasks=["tc", "sa"]))  # no NER: WikiANN not needed
    grid = Grid("loc")
    with pytest.raises(
        ParamError, match=r"`data\.conceptnet`: `data\.mode` is local but `data\.conceptnet` is 'hub'"
    ):
        grid.location("conceptnet")  # never a silent hub fallback
    # in mode hub, single keys may point at local paths
    project.add_profile("mixed", local_profile(data={"mode": "hub", "sib200": "../x/sib200/"}))
    mixed = Grid("mixed")
    assert mixed.finetune("tiny-xlmr", "mlt", "tc").dataset == "../x/sib200"
    assert mixed.finetune("tiny-xlmr", "mlt", "ner").dataset == "hub"


def test_data_paths_are_stored_normalised_and_hashes_do_not_depend_on_the_checkout(
    project, tmp_path, monkeypatch
):
    assert paths.data_path("../shared/./data//sib200/") == "../shared/data/sib200"
    assert paths.data_path(str(project.root / "data" / "sib")) == "data/sib"  # inside the root: relative
    assert paths.data_path("/elsewhere/sib") == "/elsewhere/sib" and paths.data_path("hub") == "hub"
    project.add_profile("loc", local_profile())
    first = Grid("loc").finetune("tiny-xlmr", "mlt", "tc")
    assert first.dataset == "../x/sib200"
    assert paths.resolve(first.dataset) == project.root / "../x/sib200"
    other = tmp_path / "elsewhere" / "proj"  # the same project checked out somewhere else
    other.mkdir(parents=True)
    monkeypatch.setenv("LRL_ROOT", str(other))
    (other / "params").symlink_to(project.root / "params")
    assert Grid("loc").finetune("tiny-xlmr", "mlt", "tc").digest() == first.digest()


# ----------------------------------------------------------------------------------------------------------
# --dry-run: every local file where its loader looks


def test_dry_run_checks_every_local_file_and_names_the_key_and_file(project, capsys):
    project.add_profile("loc", local_profile())
    x = make_data(project.root)
    assert main(["--profile", "loc", "--dry-run"]) == 0
    assert capsys.readouterr().err == ""
    (x / "sib200" / "mlt" / "test.tsv").unlink()
    write(x / "flores200" / "swh" / "devtest.tsv", "sentence\n")
    (x / "wikiann" / "swh" / "test.conll").unlink()  # the XTREME layout: train and dev only
    (x / "sentiment" / "mlt").rename(x / "sentiment" / "maltese-files")
    (x / "text" / "swh" / "wiki.txt").rename(x / "text" / "swh" / "wiki.md")
    assert main(["--profile", "loc", "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert out.rstrip().endswith("runs")  # the listing is printed first
    lines = err.splitlines()
    expected = [
        "error: data.sib200: ../x/sib200/mlt: no SIB-200 test.tsv for mlt_Latn (the test split; looked for ../x/sib200/mlt/test.tsv)",
        "error: data.flores: ../x/flores200/swh/devtest.tsv:1: expected the header 'id\\tsentence'",
        "error: data.wikiann: ../x/wikiann/swh: no test split (found train, validation); set "
        "`finetune.ner.missing_splits: carve` in the profile",
        "error: data.sentiment: ../x/sentiment: no sentiment files for maltese (looked for ../x/sentiment/train.tsv",
        "error: data.glotcc: ../x/text: no GlotCC files for swh-Latn (looked for ../x/text/**/swh-Latn/*",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, lines)
    assert (
        len(lines) == len(expected) and str(project.root) not in err
    )  # one line each, as the profile wrote it
    shutil.rmtree(
        x / "flores200"
    )  # a location missing for every language of the grid: one line, not one each
    assert main(["--profile", "loc", "--dry-run"]) == 2
    flores = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: data.flores")]
    assert flores == ["error: data.flores: ../x/flores200: FLORES-200 location not found"]


def test_dry_run_refuses_one_language_folder_for_every_language_and_empty_splits(project, capsys):
    x = make_data(project.root)
    data = {**LOCAL, "sib200": "../x/sib200/swh", "flores": "../x/flores200/swh"}  # Swahili's files only
    project.add_profile("loc", local_profile(data=data))
    assert main(["--profile", "loc", "--dry-run"]) == 2
    lines = capsys.readouterr().err.splitlines()
    for key, file in (("sib200", "../x/sib200/swh/train.tsv"), ("flores", "../x/flores200/swh/devtest.tsv")):
        assert any(
            line.startswith(f"error: data.{key}: {file} is found for both mlt_Latn and swh_Latn")
            for line in lines
        ), lines
    assert len(lines) == 2
    project.add_profile("loc", local_profile())
    write(x / "sib200" / "mlt" / "test.tsv", "index_id\tcategory\ttext\n")  # a header and no rows
    write(
        x / "wikiann" / "swh" / "train.conll", "\n\nMombasa\tB-LOC\n"
    )  # blank lines first: the reader skips them
    write(
        x / "sentiment" / "mlt" / "train.tsv", "text\tlabel\n"
    )  # an empty split of SA: its loader, which the check runs, says so
    assert main(["--profile", "loc", "--dry-run"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: data.sib200: ../x/sib200/mlt/test.tsv: no rows after the header (the test split of mlt_Latn)",
        "error: data.sentiment: ../x/sentiment/mlt/train.tsv: no rows",
    ]


def test_dry_run_reads_the_evaluation_files_whole_and_names_a_bad_row_deep_inside(project, capsys):
    """A bad row far from the first line (an unknown SIB-200 category, a sentiment label outside the label set
    beyond the bad records allowed, a WikiANN tag that is not IOB2, a FLORES file of other than 1012 sentences)
    stops the grid before any compute, with the loader's own line naming the file and line."""
    project.add_profile("loc", local_profile(data={**LOCAL, "samples": False}))
    x = make_data(project.root)
    flores = "id\tsentence\n" + "".join(f"{i}\tSentence {i}.\n" for i in range(1, 1013))
    for iso3 in ("mlt", "swh"):
        write(x / "flores200" / iso3 / "devtest.tsv", flores)
    assert main(["--profile", "loc", "--dry-run"]) == 0
    rows = "".join(f"{i}\ttravel\tTrip {i}.\n" for i in range(1, 40))
    write(x / "sib200" / "mlt" / "train.tsv", f"index_id\tcategory\ttext\n{rows}40\tTravel\tA trip.\n")
    write(x / "sentiment" / "swh" / "dev.tsv", "text\tlabel\n" + "good\t1\n" * 30 + "bad\tneutral\n" * 5)
    write(x / "wikiann" / "mlt" / "test.conll", "Valletta\tB-LOC\n\n" * 20 + "Malta\tLOC\n")
    write(x / "flores200" / "swh" / "devtest.tsv", flores.rsplit("1012\t", 1)[0])
    assert main(["--profile", "loc", "--dry-run"]) == 2
    lines = capsys.readouterr().err.splitlines()
    expected = [
        "error: data.sib200: ../x/sib200/mlt/train.tsv:41: unknown SIB-200 category 'Travel'",
        "error: data.sentiment: ../x/sentiment/swh/dev.tsv",
        "error: data.wikiann: ../x/wikiann/mlt/test.conll",
        "error: data.flores: ../x/flores200/swh/devtest.tsv: 1011 devtest sentences",
    ]
    for start in expected:
        assert sum(line.startswith(start) for line in lines) == 1, (start, lines)
    assert len(lines) == len(expected) and str(project.root) not in "".join(lines)
    assert not project.runs.exists()


def test_a_run_checks_the_local_data_first_and_runs_nothing_when_it_is_wrong(project, capsys):
    project.add_profile("loc", local_profile())
    x = make_data(project.root)
    (x / "sib200" / "mlt" / "dev.tsv").write_text("index_id\tcategory\ttext\n", encoding="utf-8")
    assert main(["--profile", "loc", "--only", "finetune"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: data.sib200: ../x/sib200/mlt/dev.tsv: no rows after the header (the validation split of mlt_Latn)",
        "nothing run: 1 problem(s) with the local data above",
    ]
    assert not project.runs.exists()  # before any compute: not even the runs folder


def test_dry_run_checks_verbalised_conceptnet_sentences_per_language(project, capsys):
    make_data(project.root)
    x = project.root.parent / "x"
    for stem in ("train", "val"):
        write(x / "conceptnet" / "mlt" / f"cn_sentences_{stem}.csv", "text\nilma is a synonym of water.\n")
        write(
            x / "conceptnet" / f"{stem}_cn_sw.csv", "sentence\nmaji is a synonym of water.\n"
        )  # wrong header
    data = {**LOCAL, "conceptnet": "../x/conceptnet"}
    project.add_profile(
        "loc", local_profile(data=data, sources=["conceptnet"], adapt={"conceptnet": {"max_length": 64}})
    )
    assert main(["--profile", "loc", "--dry-run"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: data.conceptnet: ../x/conceptnet/train_cn_sw.csv:1: expected the header 'text' (one column)"
    ]


def test_dry_run_reads_verbalised_conceptnet_sentences_whole(project, capsys, caplog):
    """A bad row deep in a sentence file, or a split with a header only, stops the grid in the dry run, one line
    each, as the preprocess run would find it (before: the header alone was checked, the run failed later); the
    loaders' per-record warnings are not printed around the error lines."""
    make_data(project.root)
    x = project.root.parent / "x"
    good = "text\n" + "".join(f"ilma {i} is a synonym of water.\n" for i in range(40))
    for iso3 in ("mlt", "swh"):
        for stem in ("train", "val", "test"):
            write(x / "conceptnet" / iso3 / f"cn_sentences_{stem}.csv", good)
    data = {**LOCAL, "conceptnet": "../x/conceptnet"}
    profile = local_profile(data=data, sources=["conceptnet"], adapt={"conceptnet": {"max_length": 64}})
    project.add_profile("loc", profile)
    assert main(["--profile", "loc", "--dry-run"]) == 0
    write(x / "conceptnet" / "mlt" / "cn_sentences_train.csv", good + "ilma,water\n")
    write(x / "conceptnet" / "swh" / "cn_sentences_val.csv", "text\n")
    caplog.clear()
    assert main(["--profile", "loc", "--dry-run"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: data.conceptnet: ../x/conceptnet/mlt/cn_sentences_train.csv:42: 2 fields, expected 1 (text)",
        "error: data.conceptnet: ../x/conceptnet/swh/cn_sentences_val.csv: no sentences",
    ], lines
    assert not [r for r in caplog.records if r.name.startswith("lrl_utils.data")]
    assert not project.runs.exists()


def test_every_data_key_a_message_or_doc_names_exists():
    """Hints name the real keys (`data.flores`, never `data.flores200`)."""
    import dataclasses
    import re

    from conftest import REPO

    from lrl_utils.config.data_settings import DataSettings

    keys = {f.name for f in dataclasses.fields(DataSettings)}
    files = [*(REPO / "lrl_utils").glob("*.py"), *(REPO / "notebooks").glob("*.py"), REPO / "README.md"]
    named = {(f.name, key) for f in files for key in re.findall(r"`data\.([a-z_0-9]+)", f.read_text("utf-8"))}
    assert named and {(f, key) for f, key in named if key not in keys} == set()


def test_the_readme_local_profile_is_the_shipped_one_and_its_files_check(project, shared):
    """README "Your own data": its Swahili profile is params/profiles/swahili-local.yaml, valid, and every file it
    names is where the loaders look in the shared samples."""
    from conftest import REPO

    readme = (REPO / "README.md").read_text("utf-8")
    start = readme.index("```yaml\n", readme.index("A complete local-data profile for Swahili")) + len(
        "```yaml\n"
    )
    block = readme[start : readme.index("```\n", start)]
    shipped = (REPO / "params" / "profiles" / "swahili-local.yaml").read_text("utf-8")
    assert shipped.split("\n", 1)[1] == block  # after its first comment line
    project.use_real_notebooks()
    (project.root.parent / "shared").mkdir()
    (project.root.parent / "shared" / "data").symlink_to(shared.resolve())
    assert Grid("swahili-local").profile.data.mode == "local"
    assert main(["--profile", "swahili-local", "--dry-run"]) == 0


def test_dry_run_refuses_a_corpus_too_small_to_adapt_on(project, capsys):
    """40 short documents that the 80/10/10 hash splits into 35 / 0 / 5: an adapter needs a val document, so the
    grid stops before any compute (before: at adaptation, after pre-training); a language that only the base
    model evaluates may keep such a corpus."""
    project.add_profile("loc", local_profile())
    x = make_data(project.root)
    write(x / "text" / "swh" / "wiki.txt", "".join(f"Document {i} of swh.\n" for i in range(40)))
    assert main(["--profile", "loc", "--dry-run"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: data.glotcc: ../x/text/swh/wiki.txt: the val split of swh-Latn gets no document (train 35, val 0, "
        "test 5; split 80/10/10 by a hash of each document), so no language adapter can train on it: give it more "
        "text, or leave the language out of `languages` and evaluate it on the base model (`task_languages`)"
    ]
    project.add_profile("loc", local_profile(languages=["mlt"], task_languages={"tc": ["mlt", "swh"]}))
    assert main(["--profile", "loc", "--dry-run"]) == 0, capsys.readouterr().err
