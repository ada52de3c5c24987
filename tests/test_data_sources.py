"""Tests of lrl_utils.data.sources: FLORES-200, SIB-200, splits, malformed-record counts, hub errors."""

from __future__ import annotations

import csv
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import tiny_profile  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from lrl_utils.config.params import ParamError  # noqa: E402
from lrl_utils.data import sources as data_sources  # noqa: E402
from lrl_utils.data.flores_sib import SIB_LABELS, load_flores_devtest, load_sib200  # noqa: E402
from lrl_utils.data.glotcc import glotcc_documents  # noqa: E402
from lrl_utils.data.sources import (  # noqa: E402
    AtomicFileSet,
    BadRecords,
    DataSourceError,
    load_text_splits,
    split_80_10_10,
    write_splits,
)
from lrl_utils.orchestration.grid import Grid  # noqa: E402

# ----------------------------------------------------------------------------------------------------------
# Real samples


@pytest.mark.parametrize("folder, code", [("mlt", "mlt_Latn"), ("swh", "swh_Latn")])
def test_sib200_real_samples(shared: Path, folder: str, code: str) -> None:
    sib = load_sib200(shared / "sib200" / folder, code)
    assert {split: sib[split].num_rows for split in sib} == {"train": 300, "validation": 99, "test": 204}
    assert sib["train"].features["label"].names == list(SIB_LABELS)
    for split in sib.values():
        assert set(split["category"]) <= set(SIB_LABELS)
        assert all(
            SIB_LABELS[label] == cat for label, cat in zip(split["label"], split["category"], strict=True)
        )
    assert len(set(sib["train"]["label"])) == 7
    assert isinstance(sib["test"][0]["index_id"], int)


def test_sib200_real_sample_keeps_raw_quotes(shared: Path) -> None:
    dev = load_sib200(shared / "sib200", "mlt_Latn")["validation"]  # <dir>/<iso639-3>/ form
    assert any(text.startswith("F’intervista") and '"inkwetanti' in text for text in dev["text"])


def test_sib200_real_sample_with_texts_in_quotes(shared: Path) -> None:
    test = load_sib200(shared / "sib200" / "heb", "heb_Hebr")["test"]  # raw fields that look quoted
    assert any(text.startswith('"') and text.endswith('"') for text in test["text"])


def test_flores_real_sample(shared: Path) -> None:
    flores = load_flores_devtest(shared / "flores200" / "mlt" / "devtest.tsv", "mlt_Latn", sample=True)
    assert flores.num_rows == 200
    ids = list(flores["id"])  # FLORES line numbers of the 200 sampled sentences
    assert ids[:3] == [1, 2, 3] and ids == sorted(set(ids))
    assert flores[0]["sentence"].startswith('"Issa għandna')  # unquoted field: the quote is text
    same = load_flores_devtest(shared / "flores200", "mlt_Latn", sample=True)
    assert same["sentence"] == flores["sentence"]


# ----------------------------------------------------------------------------------------------------------
# Splits


@pytest.mark.parametrize("n", [10, 100, 4933])
def test_split_80_10_10_is_the_papers_two_step_split(n: int) -> None:
    items = [f"sentence {i}" for i in range(n)]
    splits = split_80_10_10(items)
    train, rest = train_test_split(items, test_size=0.2, random_state=42)
    val, test = train_test_split(rest, test_size=0.5, random_state=42)
    assert splits == {"train": train, "val": val, "test": test}
    assert splits == split_80_10_10(list(items))
    assert sorted(train + val + test) == sorted(items)
    assert abs(len(train) - 0.8 * n) <= 1 and abs(len(val) - len(test)) <= 1
    assert split_80_10_10(items, seed=1) != splits


def test_write_and_load_splits(tmp_path: Path) -> None:
    splits = {"train": ["ħobż u ilma", "line\nbreak", 'a "quote"'], "val": ["v"], "test": []}
    assert write_splits(tmp_path / "out", splits) == {"train": 3, "val": 1, "test": 0}
    raw = (tmp_path / "out" / "train.jsonl").read_text(encoding="utf-8")
    assert raw.splitlines()[0] == '{"text": "ħobż u ilma"}'
    loaded = load_text_splits(tmp_path / "out")
    assert list(loaded) == ["train", "validation", "test"]
    assert loaded["train"]["text"] == splits["train"] and loaded["validation"]["text"] == ["v"]
    assert loaded["test"].num_rows == 0 and loaded["test"].column_names == ["text"]


def test_write_splits_is_atomic(tmp_path: Path) -> None:
    write_splits(tmp_path, {"train": ["old"], "val": ["old"], "test": ["old"]})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing():
        yield "new 1"
        yield "new 2"
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_splits(tmp_path, {"train": ["new"], "val": failing(), "test": ["new"]})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no partial file, no temp file
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        write_splits(fresh, {"train": ["a"], "val": failing(), "test": ["b"]})
    assert list(fresh.iterdir()) == []


def test_split_files_are_all_or_nothing_when_a_move_fails(tmp_path: Path, monkeypatch) -> None:
    write_splits(tmp_path, {"train": ["old"], "val": ["old"], "test": ["old"]})
    real_replace, calls = os.replace, []

    def replace_twice_then_fail(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(data_sources.os, "replace", replace_twice_then_fail)
    with pytest.raises(OSError, match="disk gone"):
        write_splits(tmp_path, {"train": ["new"], "val": ["new"], "test": ["new"]})
    assert list(tmp_path.iterdir()) == []  # neither the old set, nor a part of the new one, nor temp files


def test_atomic_file_set_needs_commit(tmp_path: Path) -> None:
    with AtomicFileSet(tmp_path, ["a.txt", "b.txt"]) as files:
        files.files["a.txt"].write(b"a\n")
    assert list(tmp_path.iterdir()) == []  # left without commit(): discarded
    with AtomicFileSet(tmp_path, ["a.txt", "b.txt"]) as files:
        files.files["a.txt"].write(b"a\n")
        files.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert (tmp_path / "a.txt").read_bytes() == b"a\n" and (tmp_path / "b.txt").read_bytes() == b""
    assert oct((tmp_path / "a.txt").stat().st_mode & 0o777) == "0o644"


def test_bad_records_threshold_and_examples() -> None:
    bad = BadRecords("src.jsonl", max_bad_fraction=0.25, keep=2)
    for line in (3, 5, 9):
        bad.add(f"src.jsonl:{line}", "invalid JSON", "Expecting value")
    assert bad.examples == [
        "src.jsonl:3: invalid JSON (Expecting value)",
        "src.jsonl:5: invalid JSON (Expecting value)",
    ]
    bad.check(12)  # 3 / 12 = 0.25: not above the threshold
    assert bad.stats(12) == {
        "malformed": 3,
        "malformed_by_reason": {"invalid JSON": 3},
        "bad_fraction": 0.25,
        "max_bad_fraction": 0.25,
        "bad_examples": bad.examples,
    }
    with pytest.raises(
        DataSourceError,
        match=r"^src\.jsonl: 3 of 11 records malformed \(27\.273% > `data\.max_bad_fraction` 0\.25\); first: src\.jsonl:3: invalid JSON",
    ):
        bad.check(11)
    with pytest.raises(ValueError, match="max_bad_fraction"):
        BadRecords("x", max_bad_fraction=1.5)


def test_load_text_splits_names_missing_file(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"text": "a"}\n', encoding="utf-8")
    with pytest.raises(DataSourceError, match="val.jsonl"):
        load_text_splits(tmp_path)


# ----------------------------------------------------------------------------------------------------------
# SIB-200, FLORES-200 local forms

SIB_ROWS = [
    (7, "health", 'He said "the virus spreads" quickly.'),
    (3, "sports", '"Win," the coach said.'),
    (9, "travel", "Tabs\tnever, quotes never."),
]
WRAPPED_ROWS = [(1, "health", '"A text in quotes."'), (2, "geography", "No quotes.")]


def _write_sib(folder: Path, quoted: bool, rows: list = SIB_ROWS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["index_id", "category", "text"])
    if not quoted:
        frame["text"] = frame["text"].str.replace("\t", " ")
    for stem in ("train", "dev", "test"):
        if quoted:  # how the SIB-200 repository writes its files (pandas to_csv)
            frame.to_csv(folder / f"{stem}.tsv", sep="\t", index=False)
        else:  # how the shared samples store them (raw fields)
            frame.to_csv(
                folder / f"{stem}.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE, escapechar=None
            )


def test_sib200_quoted_and_unquoted_tsv(tmp_path: Path) -> None:
    _write_sib(tmp_path / "quoted" / "data" / "annotated" / "qaa_Latn", quoted=True)
    _write_sib(tmp_path / "raw", quoted=False)
    assert '"""Win,"" the coach said."' in (tmp_path / "quoted/data/annotated/qaa_Latn/train.tsv").read_text()
    quoted = load_sib200(tmp_path / "quoted", "qaa_Latn")["train"]
    raw = load_sib200(tmp_path / "raw", "qaa_Latn")["train"]
    assert quoted["text"] == [text for _, _, text in SIB_ROWS]
    assert raw["text"] == [text.replace("\t", " ") for _, _, text in SIB_ROWS]
    assert quoted["index_id"] == raw["index_id"] == [7, 3, 9]
    assert quoted["label"] == [SIB_LABELS.index(c) for _, c, _ in SIB_ROWS]
    _write_sib(tmp_path / "wrapped", quoted=False, rows=WRAPPED_ROWS)  # raw, though it parses as CSV
    assert load_sib200(tmp_path / "wrapped", "qaa_Latn")["test"]["text"] == [t for _, _, t in WRAPPED_ROWS]


def test_sib200_unknown_category_names_file_and_line(tmp_path: Path) -> None:
    _write_sib(tmp_path, quoted=False, rows=SIB_ROWS[:1] + [(4, "cooking", "Stir well.")])
    with pytest.raises(DataSourceError, match=r"train\.tsv:3: unknown SIB-200 category 'cooking'"):
        load_sib200(tmp_path, "qaa_Latn")


def test_sib200_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="no SIB-200 files for qaa_Latn"):
        load_sib200(tmp_path, "qaa_Latn")


def test_flores_local_forms(tmp_path: Path) -> None:
    sentences = ['"Quoted" start.', "Second line."]
    release = tmp_path / "release" / "flores200_dataset" / "devtest"
    release.mkdir(parents=True)
    (release / "qaa_Latn.devtest").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    for location in (tmp_path / "release", release / "qaa_Latn.devtest", release.parent):
        flores = load_flores_devtest(location, "qaa_Latn", sample=True)
        assert flores["sentence"] == sentences and flores["id"] == [1, 2]
    tsv = tmp_path / "tsv" / "devtest.tsv"
    tsv.parent.mkdir()
    tsv.write_text("id\tsentence\n5\tA.\n6\tB.\n", encoding="utf-8")
    assert load_flores_devtest(tsv.parent, "qaa_Latn", sample=True)["id"] == [5, 6]
    with pytest.raises(DataSourceError, match="no FLORES-200 devtest for qab_Latn"):
        load_flores_devtest(tmp_path / "release", "qab_Latn")


# ----------------------------------------------------------------------------------------------------------
# The hub, offline


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []

    def unreachable(path, name=None, **kwargs):
        calls.append((path, name))
        raise ConnectionError(f"Couldn't reach '{path}' on the Hub (LocalEntryNotFoundError)\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    return calls


def test_hub_offline_raises_data_source_error(offline_hub: list) -> None:
    with pytest.raises(DataSourceError) as error:
        load_sib200("hub", "qaa_Latn")
    message = str(error.value)
    assert (
        "Davlan/sib200 (qaa_Latn)" in message and "`data.mode: local`" in message and "data.sib200" in message
    )
    assert "\n" not in message
    with pytest.raises(DataSourceError, match=r"point `data\.flores` at a FLORES-200 folder"):  # the real key
        load_flores_devtest("hub", "qaa_Latn")
    assert [repo for repo, _ in offline_hub[1:]] == ["openlanguagedata/flores_plus", "facebook/flores"]
    with pytest.raises(DataSourceError, match="cis-lmu/GlotCC-v1"):
        glotcc_documents("hub", "qaa-Latn")


# ----------------------------------------------------------------------------------------------------------
# Preprocessing settings: profile -> Grid.preprocess -> PreprocessSpec (-> notebooks/01_preprocess.py)


def test_preprocess_settings_flow_from_the_profile(project) -> None:
    data = {"mode": "demo", "max_bad_fraction": 0.01, "max_val_bytes": 1000, "max_train_bytes": 5000}
    project.add_profile("strict", tiny_profile(data=data))
    spec = Grid("strict").preprocess("qac", "glotcc")
    assert (spec.max_bad_fraction, spec.max_val_bytes, spec.max_train_bytes) == (0.01, 1000, 5000)
    assert spec.digest() != Grid("demo").preprocess("qac", "glotcc").digest()
    default = Grid("demo").preprocess("qac", "conceptnet")
    assert (default.max_bad_fraction, default.max_val_bytes) == (0.001, 200 * 1024**2)
    with pytest.raises(ParamError, match=r"unknown language 'qax'; closest: qa"):
        Grid("demo").preprocess("qax", "glotcc")
    project.add_profile("bad", tiny_profile(data={"mode": "demo", "max_bad_fraction": 2}))
    with pytest.raises(ParamError, match=r"bad\.yaml: `data\.max_bad_fraction`: must be"):
        Grid("bad")
