"""Tests of lrl_utils.data_sources: the real shared samples (read in place) and small generated files."""

from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from lrl_utils.data_sources import (  # noqa: E402
    CONCEPTNET_TEMPLATES,
    SIB_LABELS,
    DataSourceError,
    conceptnet_sentences,
    glotcc_documents,
    load_flores_devtest,
    load_sib200,
    load_text_splits,
    split_80_10_10,
    surface_form,
    write_splits,
)

CN_LANGUAGES = ["sw", "ne", "si", "he", "ro", "sk", "da", "az", "lv", "th"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`<repo>/../shared/data` (or $LRL_SHARED_DATA), read in place; skip the test when absent."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    path = Path(os.environ.get("LRL_SHARED_DATA", default))
    if not path.is_dir():
        pytest.skip("../shared/data not found: real-sample tests need the shared folder")
    return path


def _uses_a_template(sentence: str) -> bool:
    return sentence.endswith(".") and any(f" {p} " in sentence for p in CONCEPTNET_TEMPLATES.values())


# ----------------------------------------------------------------------------------------------------------
# Real samples


@pytest.mark.parametrize("folder, code", [("mlt", "mlt_Latn"), ("swh", "swh_Latn")])
def test_sib200_real_samples(shared_data: Path, folder: str, code: str) -> None:
    sib = load_sib200(shared_data / "sib200" / folder, code)
    assert {split: sib[split].num_rows for split in sib} == {"train": 300, "validation": 99, "test": 204}
    assert sib["train"].features["label"].names == list(SIB_LABELS)
    for split in sib.values():
        assert set(split["category"]) <= set(SIB_LABELS)
        assert all(
            SIB_LABELS[label] == cat for label, cat in zip(split["label"], split["category"], strict=True)
        )
    assert len(set(sib["train"]["label"])) == 7
    assert isinstance(sib["test"][0]["index_id"], int)


def test_sib200_real_sample_keeps_raw_quotes(shared_data: Path) -> None:
    dev = load_sib200(shared_data / "sib200", "mlt_Latn")["validation"]  # <dir>/<iso639-3>/ form
    assert any(text.startswith("F’intervista") and '"inkwetanti' in text for text in dev["text"])


def test_sib200_real_sample_with_texts_in_quotes(shared_data: Path) -> None:
    test = load_sib200(shared_data / "sib200" / "heb", "heb_Hebr")["test"]  # raw fields that look quoted
    assert any(text.startswith('"') and text.endswith('"') for text in test["text"])


def test_flores_real_sample(shared_data: Path) -> None:
    flores = load_flores_devtest(shared_data / "flores200" / "mlt" / "devtest.tsv", "mlt_Latn")
    assert flores.num_rows == 200
    ids = list(flores["id"])  # FLORES line numbers of the 200 sampled sentences
    assert ids[:3] == [1, 2, 3] and ids == sorted(set(ids))
    assert flores[0]["sentence"].startswith('"Issa għandna')  # unquoted field: the quote is text
    same = load_flores_devtest(shared_data / "flores200", "mlt_Latn")
    assert same["sentence"] == flores["sentence"]


def test_conceptnet_real_sample(shared_data: Path) -> None:
    dump = shared_data / "conceptnet" / "multi" / "assertions.csv"
    sentences, stats = conceptnet_sentences(dump, CN_LANGUAGES)
    assert set(sentences) == set(stats) == set(CN_LANGUAGES)
    kept = [s for lang in CN_LANGUAGES for s in sentences[lang]]
    assert len(kept) >= 6 and all(_uses_a_template(s) for s in kept)
    assert "eksamen is a synonym of test." in sentences["da"]  # /c/da/eksamen/n/wp/uddannelse -> eksamen
    assert sum(st["dropped"]["external_url"] for st in stats.values()) >= 6
    assert stats["da"]["dropped"]["same_surface"] == 1  # /c/da/test/n/wn/act -> /c/en/test/n/wn/act
    for st in stats.values():
        assert st["kept"] + sum(st["dropped"].values()) == st["edges_in_language"]
        assert st["kept"] == sum(st["per_relation"].values())
    paper, _ = conceptnet_sentences(dump, ["da"], paper_compat=True)
    assert "uddannelse is a synonym of assessment." in paper["da"]


def test_glotcc_on_a_real_text_file(shared_data: Path) -> None:
    file = next((shared_data / "text" / "swh").glob("*.txt"))
    docs = glotcc_documents(file, "swh-Latn")
    assert len(docs) == 300 and all(doc.strip() for doc in docs)
    stats: dict = {}
    capped = glotcc_documents(file, "swh-Latn", max_bytes=1000, stats=stats)
    assert 0 < len(capped) < 300 and capped == docs[: len(capped)]
    assert stats["truncated"] and stats["bytes"] <= 1000 < stats["bytes"] + len(docs[len(capped)].encode())


# ----------------------------------------------------------------------------------------------------------
# ConceptNet on generated dumps


def test_surface_form_fixed_and_paper_compat() -> None:
    assert surface_form("/c/mt/kelma/n") == "kelma"
    assert surface_form("/c/mt/kelma/n", paper_compat=True) == "n"
    assert (
        surface_form("/c/en/ice_cream") == surface_form("/c/en/ice_cream", paper_compat=True) == "ice cream"
    )
    assert surface_form("/c/en/test/n/wp/assessment") == "test"
    assert surface_form("/c/en/test/n/wp/assessment", paper_compat=True) == "assessment"
    with pytest.raises(DataSourceError):
        surface_form("/r/Synonym")


def _line(relation: str, start: str, end: str) -> str:
    meta = json.dumps({"dataset": "/d/wiktionary/en", "license": "cc:by-sa/4.0", "weight": 1.0})
    return f"/a/[{relation}/,{start}/,{end}/]\t{relation}\t{start}\t{end}\t{meta}\n"


DUMP_LINES = [
    _line("/r/Synonym", "/c/qaa/kelma/n", "/c/en/word"),  # kept (POS suffix on the start)
    _line("/r/RelatedTo", "/c/qaa/ilma", "/c/qab/ilmu"),  # kept
    _line("/r/ExternalURL", "/c/qaa/kelma", "http://qaa.dbpedia.org/resource/Kelma"),
    _line("/r/NotDesires", "/c/qaa/kelma", "/c/en/noise"),
    _line("/r/dbpedia/genre", "/c/qaa/kelma", "/c/en/rock"),
    _line("/r/Synonym", "/c/qaa/radju/n", "/c/en/radju"),  # same surface; paper_compat: "n" != "radju"
    _line("/r/FormOf", "/c/qaa/kelmiet/n", "/c/qaa/kelma/n"),  # kept; paper_compat: "n" == "n" -> dropped
    _line("/r/Synonym", "/c/en/word", "/c/qaa/kelma"),  # English start: not qaa
    _line("/r/Synonym", "/c/qab/ilmu", "/c/en/water"),  # kept for qab
    "/a/[/r/Synonym/,/c/qaa/x/,/c/en/y/]\t/r/Synonym\t/c/qaa/x\t/c/en/y\n",  # malformed: 4 columns
    "garbage line without tabs\n",  # no readable language: only logged
]
BAD_UTF8 = _line("/r/Synonym", "/c/qaa/kelma", "/c/en/word").encode().replace(b"cc:by", b"cc:\xff\xfe")


@pytest.fixture(params=["plain", "gz"])
def dump(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    data = "".join(DUMP_LINES).encode() + BAD_UTF8
    if request.param == "gz":
        path = tmp_path / "assertions.csv.gz"
        path.write_bytes(gzip.compress(data))
    else:
        path = tmp_path / "assertions.csv"
        path.write_bytes(data)
    return path


def test_conceptnet_filters_and_counts(dump: Path) -> None:
    sentences, stats = conceptnet_sentences(dump, ["qaa", "qab"])
    assert sentences["qaa"] == [
        "kelma is a synonym of word.",
        "ilma is related to ilmu.",
        "kelmiet is a form of kelma.",
    ]
    assert sentences["qab"] == ["ilmu is a synonym of water."]
    qaa = stats["qaa"]
    assert qaa["edges_in_language"] == 9 and qaa["kept"] == 3
    assert qaa["dropped"] == {"external_url": 1, "unknown_relation": 2, "same_surface": 1, "malformed": 2}
    assert qaa["per_relation"] == {"FormOf": 1, "RelatedTo": 1, "Synonym": 1}
    paper, paper_stats = conceptnet_sentences(dump, ["qaa"], paper_compat=True)
    assert paper["qaa"] == ["n is a synonym of word.", "ilma is related to ilmu.", "n is a synonym of radju."]
    assert paper_stats["qaa"]["dropped"]["same_surface"] == 1


def test_conceptnet_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="not found"):
        conceptnet_sentences(tmp_path / "nope.csv.gz", ["qaa"])


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


def test_load_text_splits_names_missing_file(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"text": "a"}\n', encoding="utf-8")
    with pytest.raises(DataSourceError, match="val.jsonl"):
        load_text_splits(tmp_path)


# ----------------------------------------------------------------------------------------------------------
# SIB-200, FLORES-200, GlotCC local forms

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
        flores = load_flores_devtest(location, "qaa_Latn")
        assert flores["sentence"] == sentences and flores["id"] == [1, 2]
    tsv = tmp_path / "tsv" / "devtest.tsv"
    tsv.parent.mkdir()
    tsv.write_text("id\tsentence\n5\tA.\n6\tB.\n", encoding="utf-8")
    assert load_flores_devtest(tsv.parent, "qaa_Latn")["id"] == [5, 6]
    with pytest.raises(DataSourceError, match="no FLORES-200 devtest for qab_Latn"):
        load_flores_devtest(tmp_path / "release", "qab_Latn")


def test_glotcc_local_forms(tmp_path: Path) -> None:
    folder = tmp_path / "glotcc" / "v1.0" / "qaa-Latn"
    folder.mkdir(parents=True)
    table = pa.table(
        {"content": ["First doc. Two.", "  ", None, "Third."], "warc-target-uri": ["u1", "u2", "u3", "u4"]}
    )
    pq.write_table(table, folder / "qaa-Latn_0.parquet")
    stats: dict = {}
    assert glotcc_documents(tmp_path / "glotcc", "qaa-Latn", stats=stats) == ["First doc. Two.", "Third."]
    assert stats == {"documents": 2, "empty_skipped": 2, "bytes": 21, "truncated": False}
    assert glotcc_documents(folder, "qaa-Latn", max_bytes=20) == ["First doc. Two."]
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"text": "ħelu"}\n\n{"text": "b"}\n', encoding="utf-8")
    assert glotcc_documents(jsonl, "qaa-Latn") == ["ħelu", "b"]
    jsonl.write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"docs\.jsonl:2"):
        glotcc_documents(jsonl, "qaa-Latn")
    with pytest.raises(DataSourceError, match="no GlotCC files for qab-Latn"):
        glotcc_documents(tmp_path / "glotcc", "qab-Latn")


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
    with pytest.raises(DataSourceError, match="data.flores200"):
        load_flores_devtest("hub", "qaa_Latn")
    assert [repo for repo, _ in offline_hub[1:]] == ["openlanguagedata/flores_plus", "facebook/flores"]
    with pytest.raises(DataSourceError, match="cis-lmu/GlotCC-v1"):
        glotcc_documents("hub", "qaa-Latn")
