"""Tests of lrl_utils.data.glotcc: the real text samples (read in place) and generated files with edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl_utils.data.glotcc import glotcc_documents, glotcc_splits, split_of
from lrl_utils.data.sources import DataSourceError, load_text_splits

SPLIT_FILES = ["test.jsonl", "train.jsonl", "val.jsonl"]


def _split_texts(folder: Path) -> dict[str, list[str]]:
    return {
        name: [
            json.loads(line)["text"] for line in (folder / f"{name}.jsonl").read_text("utf-8").splitlines()
        ]
        for name in ("train", "val", "test")
    }


def _jsonl(path: Path, docs: list) -> Path:
    path.write_text("".join(json.dumps({"content": d}, ensure_ascii=False) + "\n" for d in docs), "utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------
# Real samples


def test_glotcc_documents_on_a_real_text_file(shared: Path) -> None:
    file = next((shared / "text" / "swh").glob("*.txt"))
    docs = glotcc_documents(file, "swh-Latn")
    assert len(docs) == 300 and all(doc.strip() for doc in docs)
    stats: dict = {}
    capped = glotcc_documents(file, "swh-Latn", max_bytes=1000, stats=stats)
    assert 0 < len(capped) < 300 and capped == docs[: len(capped)]
    assert stats["truncated"] and stats["bytes"] <= 1000 < stats["bytes"] + len(docs[len(capped)].encode())
    assert stats["records"] == len(capped) + 1  # reading stopped at the first document that did not fit


@pytest.mark.parametrize("folder", ["swh", "tha", "npi"])
def test_glotcc_splits_on_real_text(shared: Path, tmp_path: Path, folder: str) -> None:
    file = next((shared / "text" / folder).glob("*.txt"))
    docs = glotcc_documents(file, "xxx-Xxxx")
    stats = glotcc_splits(file, "xxx-Xxxx", tmp_path)
    splits = _split_texts(tmp_path)
    assert sorted(d for part in splits.values() for d in part) == sorted(docs)  # nothing lost, no duplicate
    assert all(part == [d for d in docs if d in set(part)] for part in splits.values())  # reading order
    assert all(split_of(d.encode(), 42) == name for name, part in splits.items() for d in part)
    assert {n: s["documents"] for n, s in stats["splits"].items()} == {n: len(p) for n, p in splits.items()}
    assert stats["records"] == sum(1 for _ in file.open(encoding="utf-8")) and stats["malformed"] == 0
    assert not stats["stopped_early"] and not any(s["full"] for s in stats["splits"].values())
    if len(docs) == 300:
        assert 0.7 < len(splits["train"]) / 300 < 0.9 and len(splits["val"]) > 10 and len(splits["test"]) > 10
    loaded = load_text_splits(tmp_path)
    assert loaded["validation"]["text"] == splits["val"]


def test_split_is_seeded_and_about_80_10_10() -> None:
    docs = [f"document {i}".encode() for i in range(20_000)]
    shares = {
        name: sum(split_of(d, 42) == name for d in docs) / len(docs) for name in ("train", "val", "test")
    }
    assert shares == pytest.approx({"train": 0.8, "val": 0.1, "test": 0.1}, abs=0.01)
    assert [split_of(d, 42) for d in docs[:200]] == [split_of(d, 42) for d in docs[:200]]
    assert [split_of(d, 42) for d in docs[:200]] != [split_of(d, 1) for d in docs[:200]]


# ----------------------------------------------------------------------------------------------------------
# Caps at document boundaries, and reading no more than needed


def _docs(n: int, size: int = 100) -> list[str]:
    """n distinct documents of `size` UTF-8 bytes each (ħ takes two)."""
    return [f"{i:06d} ħ".ljust(size - 1, "x") for i in range(n)]


def test_caps_cut_at_document_boundaries_and_stop_reading(tmp_path: Path) -> None:
    docs = _docs(1000)
    source = _jsonl(tmp_path / "docs.jsonl", [*docs, {"not": "read"}])  # a malformed record after the caps
    stats = glotcc_splits(source, "qaa-Latn", tmp_path / "out", max_train_bytes=2050, max_val_bytes=520)
    splits = _split_texts(tmp_path / "out")
    train, val = stats["splits"]["train"], stats["splits"]["val"]
    assert (train["documents"], train["bytes"], train["full"]) == (20, 2000, True)  # 21 would be 2100 > 2050
    assert (val["documents"], val["bytes"], val["full"]) == (5, 500, True)
    assert stats["splits"]["test"]["bytes"] <= 520 and stats["splits"]["test"]["cap"] == 520
    assert stats["stopped_early"] and stats["records"] < 1000 and stats["malformed"] == 0
    assigned = [d for d in docs[: stats["records"]]]
    for name, part in splits.items():  # each split: the first documents hashed to it, in reading order
        hashed = [d for d in assigned if split_of(d.encode(), 42) == name]
        assert part == hashed[: len(part)] and len(hashed) - len(part) == stats["splits"][name]["over_cap"]
    assert all(len(d.encode()) == 100 for part in splits.values() for d in part)


def test_uncapped_and_zero_caps(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "docs.jsonl", _docs(50))
    stats = glotcc_splits(source, "qaa-Latn", tmp_path / "all", max_train_bytes=None, max_val_bytes=None)
    assert sum(s["documents"] for s in stats["splits"].values()) == 50 and not stats["stopped_early"]
    stats = glotcc_splits(source, "qaa-Latn", tmp_path / "none", max_train_bytes=10**6, max_val_bytes=0)
    assert stats["splits"]["val"]["documents"] == stats["splits"]["test"]["documents"] == 0
    assert stats["splits"]["train"]["documents"] > 30 and not stats["stopped_early"]
    with pytest.raises(ValueError, match="max_train_bytes must be >= 0"):
        glotcc_splits(source, "qaa-Latn", tmp_path / "x", max_train_bytes=-1)


# ----------------------------------------------------------------------------------------------------------
# Empty and malformed records: counted, reported, fatal above the threshold, no partial split files


def test_malformed_records_are_counted_and_reported(tmp_path: Path) -> None:
    good = _docs(96)
    lines = [json.dumps({"content": d}, ensure_ascii=False).encode() for d in good]
    lines[10:10] = [
        b'{"content": null}',
        b'{"content": 7}',
        b'{"text": "kept: the `text` key"}',
        b"{not json",
        b'{"body": "x"}',
        b'{"content": "bad \xff utf-8"}',
        b'{"content": "   "}',
        b"",
    ]
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    stats = glotcc_splits(source, "qaa-Latn", tmp_path / "out", max_bad_fraction=0.06)
    assert stats["records"] == 104 and stats["empty"] == 1 and stats["malformed"] == 6
    assert stats["malformed_by_reason"] == {
        "empty text": 1,  # {"content": "   "}; the blank line is `empty`
        "invalid JSON": 1,
        "invalid UTF-8": 1,
        "no `content` or `text` key": 1,
        "not a string": 1,
        "null content": 1,
    }
    assert stats["bad_fraction"] == pytest.approx(6 / 104)
    assert stats["bad_examples"][0] == f"{source}:11: null content"
    assert stats["bad_examples"][1] == f"{source}:12: not a string (int)"
    assert stats["bad_examples"][2].startswith(f"{source}:14: invalid JSON (")
    assert sum(s["documents"] for s in stats["splits"].values()) == 97
    with pytest.raises(DataSourceError) as error:
        glotcc_splits(source, "qaa-Latn", tmp_path / "strict")  # default 0.001
    message = str(error.value)
    assert (
        "6 of 104 records malformed" in message and "max_bad_fraction" in message and ":11: null" in message
    )
    assert list((tmp_path / "strict").iterdir()) == []  # no split file, no temporary file


def test_txt_and_parquet_records(tmp_path: Path) -> None:
    txt = tmp_path / "qaa-Latn" / "a.txt"
    txt.parent.mkdir()
    txt.write_bytes("\ufeffFirst doc.\n\n".encode() + b"bad \xe2\x82 line\nSecond doc.\r\n")
    pq.write_table(
        pa.table({"content": ["Third.", None, " ", "Fourth."]}), tmp_path / "qaa-Latn" / "b.parquet"
    )
    stats: dict = {}
    docs = glotcc_documents(tmp_path, "qaa-Latn", stats=stats, max_bad_fraction=0.5)
    assert docs == ["First doc.", "Second doc.", "Third.", "Fourth."]  # files in name order
    assert (stats["records"], stats["empty"], stats["malformed"]) == (8, 1, 3)  # the blank line: empty
    assert stats["bad_examples"] == [
        f"{txt}:3: invalid UTF-8 (byte 4)",
        f"{txt.parent / 'b.parquet'}:row 2: null content",
        f"{txt.parent / 'b.parquet'}:row 3: empty text",
    ]
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "ints.parquet")
    with pytest.raises(DataSourceError, match=r"ints\.parquet:row 1: not a string \(int\)"):
        glotcc_documents(tmp_path / "ints.parquet", "qaa-Latn")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "nocol.parquet")
    with pytest.raises(DataSourceError, match="no `content` or `text` column"):
        glotcc_documents(tmp_path / "nocol.parquet", "qaa-Latn")


def test_failed_run_leaves_earlier_splits_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    glotcc_splits(_jsonl(tmp_path / "a.jsonl", _docs(30)), "qaa-Latn", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == SPLIT_FILES
    (tmp_path / "b.txt").write_text("\n \n", encoding="utf-8")  # blank lines only
    with pytest.raises(DataSourceError, match="no GlotCC documents"):
        glotcc_splits(tmp_path / "b.txt", "qaa-Latn", out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_glotcc_folder_layout_and_unknown_code(tmp_path: Path) -> None:
    folder = tmp_path / "glotcc" / "v1.0" / "qaa-Latn"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table({"content": ["First doc. Two.", "Third."], "warc-target-uri": ["u1", "u2"]}),
        folder / "qaa-Latn_0.parquet",
    )
    assert glotcc_documents(tmp_path / "glotcc", "qaa-Latn") == glotcc_documents(folder, "qaa-Latn")
    with pytest.raises(DataSourceError, match="no GlotCC files for qaa-Latm .*; closest: qaa-Latn"):
        glotcc_documents(tmp_path / "glotcc", "qaa-Latm")
    with pytest.raises(DataSourceError, match="GlotCC location not found"):
        glotcc_splits(tmp_path / "nope", "qaa-Latn", tmp_path / "out")


def test_glotcc_per_language_folder_or_file_named_by_any_code_form(tmp_path: Path) -> None:
    """`data.glotcc` may be a folder of per-language folders or files named `mlt`, `mlt-Latn` or `mlt_Latn`."""
    root = tmp_path / "text"
    (root / "mlt").mkdir(parents=True)
    (root / "mlt" / "wiki.txt").write_text("Il-Ħamrun.\nMalta.\n", encoding="utf-8")
    (root / "bul_Cyrl").mkdir()
    (root / "bul_Cyrl" / "tatoeba.txt").write_text("Здравей.\n", encoding="utf-8")
    _jsonl(root / "heb-Hebr.jsonl", ["שלום"])
    (root / "swh.txt").write_text("Habari.\n", encoding="utf-8")
    (root / "mltx").mkdir()  # not a code form of mlt: never read
    (root / "mltx" / "other.txt").write_text("no\n", encoding="utf-8")
    assert glotcc_documents(root, "mlt-Latn") == ["Il-Ħamrun.", "Malta."]
    assert glotcc_documents(root / "mlt", "mlt-Latn") == ["Il-Ħamrun.", "Malta."]  # the language's own folder
    assert glotcc_documents(root, "bul-Cyrl") == ["Здравей."]
    assert glotcc_documents(root, "heb-Hebr") == ["שלום"]
    assert glotcc_documents(root, "swh-Latn") == ["Habari."]
    with pytest.raises(DataSourceError) as err:
        glotcc_documents(root, "amh-Ethi")
    message = str(err.value)
    assert f"{root}/amh/*" in message and f"{root}/amh_Ethi/*" in message and f"{root}/amh.txt" in message


def test_hidden_files_beside_the_text_are_not_documents(tmp_path: Path) -> None:
    """A macOS `._wiki.txt` (binary resource fork) and a JupyterLab `.ipynb_checkpoints/` copy in the language's
    folder are skipped, as is a hidden release folder; the visible files are read."""
    root = tmp_path / "text"
    (root / "mlt" / ".ipynb_checkpoints").mkdir(parents=True)
    (root / "mlt" / "wiki.txt").write_text("Il-Ħamrun.\nMalta.\n", encoding="utf-8")
    (root / "mlt" / "._wiki.txt").write_bytes(b"\x00\x05\x16\x07Mac OS X\xff\xfe")
    (root / "mlt" / ".ipynb_checkpoints" / "wiki-checkpoint.txt").write_text("old copy\n", encoding="utf-8")
    (root / ".trash" / "mlt-Latn").mkdir(parents=True)
    (root / ".trash" / "mlt-Latn" / "gone.txt").write_text("deleted\n", encoding="utf-8")
    assert glotcc_documents(root, "mlt-Latn") == ["Il-Ħamrun.", "Malta."]
    assert glotcc_documents(root / "mlt", "mlt-Latn") == ["Il-Ħamrun.", "Malta."]


def test_glotcc_real_text_folder_by_iso3(shared: Path) -> None:
    docs = glotcc_documents(shared / "text", "mlt-Latn")
    assert docs == (shared / "text" / "mlt" / "wikipedia_langid_test.txt").read_text("utf-8").splitlines()
