"""Broken files give one line naming the file and the line or row, never a library traceback.

Each broken file is made here from a good one: truncated or corrupted parquet and gzip, a byte 0xFF put into
a line of every kind of text file, FLORES devtests of the wrong size or with an empty sentence, empty texts.
And the fast ConceptNet reader counts malformed lines exactly as the line-by-line one, whatever mix of column
counts a block holds.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl_utils.data import conceptnet_dump
from lrl_utils.data.check import check_flores, check_glotcc, check_sentiment, check_sib200, check_wikiann
from lrl_utils.data.conceptnet import conceptnet_sentences, conceptnet_splits, convert_conceptnet
from lrl_utils.data.flores_sib import load_flores_devtest, load_sib200
from lrl_utils.data.glotcc import glotcc_documents, glotcc_splits
from lrl_utils.data.sentiment import load_sentiment
from lrl_utils.data.sources import DataSourceError, load_text_splits
from lrl_utils.data.wikiann import load_wikiann


def one_line_error(call: Callable[[], object]) -> str:
    with pytest.raises(DataSourceError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def edge(relation: str, start: str, end: str, columns: int = 5) -> bytes:
    fields = [f"/a/[{relation}/,{start}/,{end}/]", relation, start, end, '{"weight": 1.0}']
    fields = fields[:columns] if columns <= 5 else fields + ["extra"] * (columns - 5)
    return ("\t".join(fields) + "\n").encode()


# ----------------------------------------------------------------------------------------------------------
# Truncated and corrupt binary files


def test_truncated_or_corrupt_parquet(tmp_path: Path) -> None:
    docs = [f"Hati namba {i}. " * 10 for i in range(3000)]
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"content": docs}), good, row_group_size=500, compression="gzip")
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 8, 12):
        broken = tmp_path / "qaa-Latn" / f"cut{cut}.parquet"
        broken.parent.mkdir(exist_ok=True)
        broken.write_bytes(data[:cut])
        message = one_line_error(lambda b=broken: glotcc_documents(b, "qaa-Latn"))
        assert message.startswith(f"{broken}: unreadable parquet file (truncated or corrupt?)")
        broken.unlink()
    corrupt = bytearray(data)  # the footer intact, a row group's compressed pages damaged
    middle = len(corrupt) // 2
    corrupt[middle : middle + 200] = bytes(b ^ 0xFF for b in corrupt[middle : middle + 200])
    (tmp_path / "qaa-Latn" / "corrupt.parquet").write_bytes(bytes(corrupt))
    message = one_line_error(lambda: glotcc_splits(tmp_path, "qaa-Latn", tmp_path / "out"))
    assert message.startswith(
        f"{tmp_path / 'qaa-Latn' / 'corrupt.parquet'}: unreadable parquet file after row"
    )
    assert not list((tmp_path / "out").iterdir())  # no split file


def test_truncated_or_corrupt_gzip_dump(tmp_path: Path) -> None:
    lines = [edge("/r/Synonym", f"/c/qaa/neno_{i}", f"/c/en/word_{i}") for i in range(4000)]
    data = gzip.compress(b"".join(lines))
    cases = {"cut-half": data[: len(data) // 2], "no-trailer": data[:-8], "header-only": data[:12]}
    corrupt = bytearray(data)
    corrupt[len(data) // 3 : len(data) // 3 + 64] = bytes(64)
    cases["corrupt"] = bytes(corrupt)
    for name, broken in cases.items():
        path = tmp_path / f"{name}.csv.gz"
        path.write_bytes(broken)
        message = one_line_error(lambda p=path: conceptnet_sentences(p, ["qaa"]))
        assert message.startswith(f"{path}:") and ": cannot read the dump (" in message, message
        line = int(message[len(f"{path}:") :].split(":")[0])
        assert 1 <= line <= len(lines) + 1
        out = tmp_path / f"out-{name}"
        one_line_error(lambda p=path, o=out: convert_conceptnet(p, ["qaa"], o))
        assert not list(out.iterdir())


# ----------------------------------------------------------------------------------------------------------
# Invalid UTF-8: every text loader names the file and the line


def _put_ff(text: str, line: int) -> bytes:
    """`text` as UTF-8 with a byte 0xFF put into line `line` (1-based)."""
    lines = text.encode().split(b"\n")
    lines[line - 1] = lines[line - 1][:2] + b"\xff" + lines[line - 1][2:]
    return b"\n".join(lines)


def _splits(folder: Path, names: tuple[str, ...], text: str, broken: str, line: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        data = text.encode()
        (folder / name).write_bytes(_put_ff(text, line) if name == broken else data)
    return folder / broken


def _dump_with_ff(path: Path, line: int) -> Path:
    """An assertions dump whose line `line` has a byte 0xFF in its start word."""
    lines = [edge("/r/Synonym", f"/c/qaa/neno{i}", "/c/en/word") for i in range(5)]
    lines[line - 1] = lines[line - 1].replace(b"neno", b"ne\xffno")
    path.write_bytes(b"".join(lines))
    return path


SIB = "index_id\tcategory\ttext\n" + "".join(f"{i}\thealth\tMaandishi {i}.\n" for i in range(6))
SA_TSV = "text\tlabel\n" + "".join(f"Maoni {i}\t{i % 2}\n" for i in range(8))
SA_JSONL = "".join(json.dumps({"text": f"Maoni {i}", "label": i % 2}) + "\n" for i in range(8))
CONLL = "".join(f"Neno{i}\tB-PER\njingine\tO\n\n" for i in range(8))
TSV_FILES, CONLL_FILES = ("train.tsv", "dev.tsv", "test.tsv"), ("train.conll", "dev.conll", "test.conll")
# (name, write the files and return the broken one, the loader, the broken line)
UTF8_CASES = [
    (
        "flores-release",
        lambda d: _splits(d / "devtest", ("qaa_Latn.devtest",), "Sentensi.\n" * 5, "qaa_Latn.devtest", 3),
        lambda d: load_flores_devtest(d, "qaa_Latn", sample=True),
        3,
    ),
    (
        "flores-tsv",
        lambda d: _splits(d, ("devtest.tsv",), "id\tsentence\n1\tA b.\n2\tC d.\n", "devtest.tsv", 3),
        lambda d: load_flores_devtest(d, "qaa_Latn", sample=True),
        3,
    ),
    ("sib-raw", lambda d: _splits(d, TSV_FILES, SIB, "dev.tsv", 4), lambda d: load_sib200(d, "qaa_Latn"), 4),
    (
        "sib-repository",
        lambda d: _splits(d / "data" / "annotated" / "qaa_Latn", TSV_FILES, SIB, "test.tsv", 6),
        lambda d: load_sib200(d, "qaa_Latn"),
        6,
    ),
    (
        "text-splits",
        lambda d: _splits(
            d, ("train.jsonl", "val.jsonl", "test.jsonl"), '{"text": "a"}\n{"text": "b"}\n', "val.jsonl", 2
        ),
        load_text_splits,
        2,
    ),
    (
        "wikiann",
        lambda d: _splits(d, CONLL_FILES, CONLL, "dev.conll", 5),
        lambda d: load_wikiann(d, "qq", max_bad_fraction=0.0),
        5,
    ),
    (
        "sentiment-tsv",
        lambda d: _splits(d, TSV_FILES, SA_TSV, "train.tsv", 7),
        lambda d: load_sentiment(d, "danish", max_bad_fraction=0.0),
        7,
    ),
    (
        "sentiment-csv",
        lambda d: _splits(d, ("train.csv", "dev.csv", "test.csv"), SA_TSV.replace("\t", ","), "test.csv", 2),
        lambda d: load_sentiment(d, "danish", max_bad_fraction=0.0),
        2,
    ),
    (
        "sentiment-jsonl",
        lambda d: _splits(d, ("train.jsonl", "dev.jsonl", "test.jsonl"), SA_JSONL, "dev.jsonl", 8),
        lambda d: load_sentiment(d, "danish", max_bad_fraction=0.0),
        8,
    ),
    (
        "glotcc-text",
        lambda d: _splits(d / "qaa-Latn", ("a.txt",), "Hati moja.\nHati mbili.\n", "a.txt", 2),
        lambda d: glotcc_documents(d, "qaa-Latn", max_bad_fraction=0.0),
        2,
    ),
    (
        "glotcc-jsonl",
        lambda d: _splits(
            d / "qaa-Latn", ("a.jsonl",), SA_JSONL.replace('"text"', '"content"'), "a.jsonl", 4
        ),
        lambda d: glotcc_documents(d, "qaa-Latn", max_bad_fraction=0.0),
        4,
    ),
    (
        "conceptnet",
        lambda d: _dump_with_ff(d / "a.csv", 3),
        lambda d: conceptnet_sentences(d / "a.csv", ["qaa"], max_bad_fraction=0.0),
        3,
    ),
]


@pytest.mark.parametrize("name, write, load, line", UTF8_CASES, ids=[c[0] for c in UTF8_CASES])
def test_invalid_utf8_names_file_and_line(tmp_path: Path, name: str, write, load, line: int) -> None:
    broken = write(tmp_path)
    message = one_line_error(lambda: load(tmp_path))
    assert f"{broken}:{line}: " in message and ("UTF-8" in message), message


GZIP_CASES = [case for case in UTF8_CASES if case[0] != "conceptnet"]  # the dump alone may be gzipped


@pytest.mark.parametrize("name, write, load, line", GZIP_CASES, ids=[c[0] for c in GZIP_CASES])
def test_a_gzip_file_under_a_text_name_says_so_in_the_loader_and_the_dry_run(
    tmp_path: Path, name: str, write, load, line: int
) -> None:
    broken = write(
        tmp_path
    )  # `train.jsonl` that is really `train.jsonl.gz`: not "invalid UTF-8" on every line
    broken.write_bytes(gzip.compress(broken.read_bytes().replace(b"\xff", b"")))
    expected = f"{broken}: gzip-compressed, not text"
    assert one_line_error(lambda: load(tmp_path)).startswith(expected)
    checks = {
        "flores-tsv": lambda: check_flores(tmp_path, "qaa_Latn"),
        "sib-raw": lambda: check_sib200(tmp_path, "qaa_Latn"),
        "wikiann": lambda: check_wikiann(tmp_path, "qq", "qaa", "error"),
        "sentiment-jsonl": lambda: check_sentiment(tmp_path, "danish", "qaa", "error"),
        "glotcc-jsonl": lambda: check_glotcc(tmp_path, "qaa-Latn"),
    }
    if name in checks:  # the dry run's first-line check read it decompressed and passed it
        assert one_line_error(checks[name]).startswith(expected)


# ----------------------------------------------------------------------------------------------------------
# FLORES devtest: 1012 sentences (fewer only in a declared sample), none empty; empty texts elsewhere


def test_flores_devtest_size_and_empty_sentences(tmp_path: Path) -> None:
    release = tmp_path / "flores200_dataset" / "devtest" / "qaa_Latn.devtest"
    release.parent.mkdir(parents=True)
    release.write_text("".join(f"Sentensi {i}.\n" for i in range(5)), encoding="utf-8")
    message = one_line_error(lambda: load_flores_devtest(tmp_path, "qaa_Latn"))
    assert message == (
        f"{release}: 5 devtest sentences, fewer than the release's 1012; if the file is a sample of FLORES-200, "
        "set `data.samples: true` in the profile"
    )
    assert load_flores_devtest(tmp_path, "qaa_Latn", sample=True).num_rows == 5
    release.write_text("".join(f"Sentensi {i}.\n" for i in range(1012)), encoding="utf-8")
    assert load_flores_devtest(tmp_path, "qaa_Latn").num_rows == 1012
    release.write_text("".join(f"Sentensi {i}.\n" for i in range(1013)), encoding="utf-8")
    for sample in (False, True):
        message = one_line_error(lambda s=sample: load_flores_devtest(release, "qaa_Latn", sample=s))
        assert message == f"{release}: 1013 devtest sentences, more than the release's 1012"
    release.write_text("", encoding="utf-8")
    assert one_line_error(lambda: load_flores_devtest(release, "qaa_Latn", sample=True)) == (
        f"{release}: no devtest sentences"
    )
    release.write_text("Moja.\nMbili.\n\nTatu.\n", encoding="utf-8")
    assert one_line_error(lambda: load_flores_devtest(release, "qaa_Latn", sample=True)) == (
        f"{release}:3: empty sentence"
    )
    tsv = tmp_path / "devtest.tsv"
    tsv.write_text("id\tsentence\n1\tMoja.\n2\t \xa0\n", encoding="utf-8")
    assert (
        one_line_error(lambda: load_flores_devtest(tsv, "qaa_Latn", sample=True))
        == f"{tsv}:3: empty sentence"
    )
    tsv.write_text("id\tsentence\n", encoding="utf-8")
    assert one_line_error(lambda: load_flores_devtest(tsv, "qaa_Latn", sample=True)) == (
        f"{tsv}: no devtest sentences"
    )


def test_empty_texts_elsewhere(tmp_path: Path) -> None:
    sib = tmp_path / "sib"
    _splits(sib, TSV_FILES, SIB.replace("Maandishi 3.", " "), "none", 1)
    assert one_line_error(lambda: load_sib200(sib, "qaa_Latn")) == f"{sib / 'train.tsv'}:5: empty text"
    splits = tmp_path / "splits"
    _splits(splits, ("train.jsonl", "val.jsonl", "test.jsonl"), '{"text": "a"}\n{"text": ""}\n', "none", 1)
    assert "train.jsonl:2: `text` is an empty text" in one_line_error(lambda: load_text_splits(splits))
    sa = tmp_path / "sa"
    _splits(sa, TSV_FILES, SA_TSV.replace("Maoni 4", ""), "none", 1)
    message = one_line_error(lambda: load_sentiment(sa, "danish", max_bad_fraction=0.0))
    assert f"{sa / 'train.tsv'}:6: empty text" in message
    glot = tmp_path / "qaa-Latn"
    _splits(glot, ("a.jsonl",), '{"content": "Hati."}\n{"content": " "}\n', "none", 1)
    assert f"{glot / 'a.jsonl'}:2: empty text" in one_line_error(
        lambda: glotcc_documents(glot, "qaa-Latn", max_bad_fraction=0.0)
    )


def test_a_raw_tsv_read_as_csv_is_an_error_not_unquoted(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "annotated" / "qaa_Latn"  # the repository layout: CSV-quoted
    text = SIB.replace("Maandishi 2.", '"Win," he said.')
    _splits(folder, TSV_FILES, text, "none", 1)
    message = one_line_error(lambda: load_sib200(tmp_path, "qaa_Latn"))
    assert message.startswith(f"{folder / 'train.tsv'}:4: not valid CSV quoting")
    assert load_sib200(tmp_path, "qaa_Latn", quoting="raw")["train"]["text"][2] == '"Win," he said.'


# ----------------------------------------------------------------------------------------------------------
# The fast ConceptNet reader counts malformed lines as the line-by-line reader does


def _stats(path: Path, languages: list[str], line_by_line: bool) -> tuple:
    dump: dict = {}
    result = conceptnet_sentences(
        path, languages, max_bad_fraction=1.0, dump_stats=dump, line_by_line=line_by_line
    )
    dump.pop("blocks_read_line_by_line")
    return result, dump


def test_fast_reader_sees_column_counts_that_cancel_out_in_a_block(tmp_path: Path) -> None:
    good = [edge("/r/Synonym", f"/c/qaa/neno{i}", "/c/en/word") for i in range(20)]
    other = [edge("/r/IsA", f"/c/fr/mot{i}", "/c/en/word") for i in range(20)]
    block = good[:10] + [edge("/r/IsA", "/c/fr/a", "/c/en/b", columns=4)] + other
    block += [edge("/r/IsA", "/c/fr/c", "/c/en/d", columns=6)] + good[10:]  # 3 + 5 tabs: 8 = 2 x 4
    path = tmp_path / "dump.csv"
    path.write_bytes(b"".join(block))
    fast, fast_dump = _stats(path, ["qaa"], line_by_line=False)
    slow, slow_dump = _stats(path, ["qaa"], line_by_line=True)
    assert fast == slow and fast_dump == slow_dump
    assert slow_dump["malformed"] == 2 and slow_dump["malformed_by_reason"] == {
        "not 5 tab-separated columns": 2
    }
    assert [e.split(": ")[0] for e in slow_dump["bad_examples"]] == [f"{path}:11", f"{path}:32"]


@pytest.mark.parametrize("seed", range(3))
def test_fast_and_line_by_line_agree_on_any_mix_of_column_counts(
    tmp_path: Path, monkeypatch, seed: int
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(conceptnet_dump, "BLOCK_BYTES", 2048)
    lines = []
    for i in range(2000):
        lang = rng.choice(["qaa", "qab", "fr", "en"])
        columns = rng.choice([5] * 40 + [1, 2, 3, 4, 6, 7])
        lines.append(edge(rng.choice(["/r/IsA", "/r/Synonym"]), f"/c/{lang}/w{i}", f"/c/en/e{i}", columns))
    path = tmp_path / "dump.csv.gz"
    path.write_bytes(gzip.compress(b"".join(lines)))
    fast, fast_dump = _stats(path, ["qaa", "qab"], line_by_line=False)
    slow, slow_dump = _stats(path, ["qaa", "qab"], line_by_line=True)
    assert fast == slow and fast_dump == slow_dump and slow_dump["malformed"] > 0
    blocks: dict = {}
    conceptnet_sentences(path, ["qaa"], max_bad_fraction=1.0, dump_stats=blocks)
    assert blocks["blocks_read_line_by_line"] < len(
        list(conceptnet_dump._read_blocks(path))
    )  # some read fast


# ----------------------------------------------------------------------------------------------------------
# Empty splits: an error naming the file before anything trains


def test_sib200_split_with_a_header_only(tmp_path: Path) -> None:
    for stem in ("train", "dev", "test"):
        rows = "" if stem == "dev" else "1\ttravel\tA trip.\n"
        (tmp_path / f"{stem}.tsv").write_text("index_id\tcategory\ttext\n" + rows, encoding="utf-8")
    message = one_line_error(lambda: load_sib200(tmp_path, "swh_Latn"))
    assert message == f"{tmp_path / 'dev.tsv'}: no rows after the header (the validation split of swh_Latn)"


def test_a_wrong_header_is_named_with_what_was_found(tmp_path: Path) -> None:
    from lrl_utils.data.check import check_sib200

    for stem in ("train", "dev", "test"):
        header = "index_id\tcategory\ttext\tsource" if stem == "train" else "index_id\tcategory\ttext"
        (tmp_path / f"{stem}.tsv").write_text(header + "\n1\ttravel\tA trip.\tweb\n", encoding="utf-8")
    expected = "train.tsv:1: expected the header 'index_id\\tcategory\\ttext', found 'index_id\\tcategory\\ttext\\tsource'"
    assert one_line_error(lambda: check_sib200(tmp_path, "swh_Latn")).endswith(expected)
    assert one_line_error(lambda: load_sib200(tmp_path, "swh_Latn")).endswith(expected)


def test_the_dry_run_check_reads_a_header_as_the_loader_does(tmp_path: Path) -> None:
    for stem in (
        "train",
        "dev",
        "test",
    ):  # spaces around a column name (`text `, ` id`): the loader strips them
        (tmp_path / f"{stem}.tsv").write_text("index_id\tcategory\ttext \r\n1\ttravel\tA trip.\r\n")
    (tmp_path / "devtest.tsv").write_text(" id\tsentence\n1\tA trip.\n")
    assert len(load_sib200(tmp_path, "swh_Latn")["test"]) == 1 and check_sib200(tmp_path, "swh_Latn")
    assert len(load_flores_devtest(tmp_path, "swh_Latn", sample=True)) == 1 and check_flores(
        tmp_path, "swh_Latn"
    )


def test_the_dry_run_check_unquotes_a_sentiment_header_only_where_the_loader_does(tmp_path: Path) -> None:
    for stem in ("train", "dev", "test"):  # quoted column names in a raw TSV (the default for .tsv)
        (tmp_path / f"{stem}.tsv").write_text('"ID"\t"tweet"\t"label"\n1\tNzuri sana\tpositive\n')
    expected = "train.tsv:1: no known text and label columns among "
    assert expected in one_line_error(lambda: load_sentiment(tmp_path, "swahili"))
    assert expected in one_line_error(lambda: check_sentiment(tmp_path, "swahili", "swh", "error"))
    # data.quoting.sentiment: csv: both unquote them
    assert load_sentiment(tmp_path, "swahili", quoting="csv")["train"]["text"] == ["Nzuri sana"]
    assert check_sentiment(tmp_path, "swahili", "swh", "error", "csv")


def test_a_corpus_too_small_to_hold_out_fails_naming_its_file(tmp_path: Path) -> None:
    for stem, text in (("train", "Hati moja."), ("val", ""), ("test", "")):
        lines = [json.dumps({"text": text})] if text else []
        (tmp_path / f"{stem}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    assert len(load_text_splits(tmp_path)["validation"]) == 0  # reading alone does not ask for it
    message = one_line_error(lambda: load_text_splits(tmp_path, required=("train", "validation")))
    assert message.startswith(f"{tmp_path / 'val.jsonl'}: the validation split has no text (train 1)")


# ----------------------------------------------------------------------------------------------------------
# NUL characters (UTF-16 without a byte order mark), lone surrogate escapes in JSON, JSON that is not an object

NUL_CASES = [case for case in UTF8_CASES if case[0] != "conceptnet"]  # the dump's fast reader: bytes only


@pytest.mark.parametrize("name, write, load, line", NUL_CASES, ids=[c[0] for c in NUL_CASES])
def test_a_nul_character_names_file_and_line(tmp_path: Path, name: str, write, load, line: int) -> None:
    """A NUL in a text file is refused where the 0xFF byte is (before: accepted, a NUL kept in the text)."""
    broken = write(tmp_path)
    broken.write_bytes(broken.read_bytes().replace(b"\xff", b"\x00"))
    message = one_line_error(lambda: load(tmp_path))
    assert f"{broken}:{line}: " in message and "NUL" in message, message


def test_utf16_text_without_a_byte_order_mark_is_refused(tmp_path: Path) -> None:
    """UTF-16-LE without a BOM is valid UTF-8 byte by byte (a NUL after each ASCII letter): refused, not read
    as documents of `A\\x00l\\x00i...`."""
    folder = tmp_path / "qaa-Latn"
    folder.mkdir()
    (folder / "a.txt").write_bytes("Alinipa kitabu.\nHabari.\n".encode("utf-16-le"))
    assert "NUL" in one_line_error(lambda: glotcc_documents(tmp_path, "qaa-Latn", max_bad_fraction=0.0))
    assert "NUL" in one_line_error(lambda: check_glotcc(tmp_path, "qaa-Latn"))


LONE = '"Maoni \\ud800"'  # JSON text of a string holding a lone surrogate (json.loads accepts it)


@pytest.mark.parametrize(
    "name, write, load",
    [
        (
            "sentiment",
            lambda d: (d / "test.jsonl", SA_JSONL + '{"text": ' + LONE + ', "label": 1}\n'),
            lambda d: load_sentiment(d, "danish", max_bad_fraction=0.0),
        ),
        (
            "glotcc",
            lambda d: (d / "qaa-Latn" / "a.jsonl", '{"content": "Hati."}\n{"content": ' + LONE + "}\n"),
            lambda d: glotcc_documents(d, "qaa-Latn", max_bad_fraction=0.0),
        ),
        (
            "text-splits",
            lambda d: (d / "val.jsonl", '{"text": "a"}\n{"text": ' + LONE + "}\n"),
            load_text_splits,
        ),
        (
            "conceptnet-edges",
            lambda d: (d / "mlt" / "edges.jsonl", '{"rel": "/r/Synonym", "start": ' + LONE + "}\n"),
            lambda d: conceptnet_splits(d, "mt", d / "out", language="mlt"),
        ),
    ],
)
def test_a_lone_surrogate_escape_in_json_names_file_and_line(tmp_path: Path, name, write, load) -> None:
    """`"\\ud800"` parses but cannot be written as UTF-8: refused at its line (before: a UnicodeEncodeError
    traceback from pyarrow or the tokenizer, far from the file)."""
    for split in ("train", "dev", "test", "val"):  # the other files of the folder: good
        (tmp_path / f"{split}.jsonl").write_text(
            SA_JSONL if name == "sentiment" else '{"text": "a"}\n', encoding="utf-8"
        )
    file, text = write(tmp_path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")
    message = one_line_error(lambda: load(tmp_path))
    line = text.count("\n")
    assert f"{file}:{line}: " in message and "lone surrogate" in message, message


def test_a_json_line_that_is_a_string_is_reported_as_not_an_object(tmp_path: Path) -> None:
    """A sentiment JSON line holding a string is "not a JSON object (str)", never its own text as the reason."""
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text(SA_JSONL, encoding="utf-8")
    (tmp_path / "test.jsonl").write_text(SA_JSONL + '"unknown label: 7"\n', encoding="utf-8")
    message = one_line_error(lambda: load_sentiment(tmp_path, "danish", max_bad_fraction=0.0))
    assert f"{tmp_path / 'test.jsonl'}:9: not a JSON object (str)" in message, message
    assert "unknown label" not in message


def test_a_folder_the_check_may_not_list_is_one_line(tmp_path: Path, monkeypatch) -> None:
    """An OSError a loader does not word itself (a folder without read permission; root ignores permissions,
    so it is raised here) is one `data.<key>:` line naming the path, not a traceback."""
    from lrl_utils.data import check

    denied = tmp_path / "sib200" / "qaa" / "train.tsv"

    def unreadable(*args):
        raise PermissionError(13, "Permission denied", str(denied))

    monkeypatch.setattr(
        check, "_reads", lambda spec: [("sib200", str(tmp_path / "sib200"), ("qaa",), unreadable)]
    )
    assert check.check_data([object()]) == [f"data.sib200: {denied}: unreadable (Permission denied)"]


@pytest.mark.parametrize(
    "sentence, line, why",
    [
        ("Nairobi\tI-LOC\nni\tO\n", 1, "'I-LOC' after 'O'"),  # an entity that starts with I-
        ("Jomo\tB-PER\nNairobi\tI-LOC\n", 2, "'I-LOC' after 'B-PER'"),  # I- of another type
        ("ni\tO\nKenya\tI-LOC\n", 2, "'I-LOC' after 'O'"),
    ],
)
def test_wikiann_tags_that_break_iob2_name_file_and_line(tmp_path: Path, sentence, line, why) -> None:
    """WikiANN is IOB2; a tag sequence that is not (which the strict scoring would silently drop) is a bad
    sentence, named at its line."""
    good = "Jomo\tB-PER\nKenyatta\tI-PER\nna\tO\nNairobi\tB-LOC\n\n"
    for name in CONLL_FILES:
        (tmp_path / name).write_text(good * 3, encoding="utf-8")
    (tmp_path / "dev.conll").write_text(sentence + "\n" + good, encoding="utf-8")
    message = one_line_error(lambda: load_wikiann(tmp_path, "qq", max_bad_fraction=0.0))
    assert f"{tmp_path / 'dev.conll'}:{line}: not IOB2 ({why})" in message, message


@pytest.mark.parametrize("kind", ["folder", "dangling link"])
def test_a_split_file_that_is_a_folder_or_a_dangling_link_is_an_error_not_a_missing_split(tmp_path, kind):
    """`test.tsv` as a folder, or a link to nothing, is named (before: a missing split, carved out of train
    without a word under `missing_splits: carve`)."""
    for stem in ("train", "dev"):
        (tmp_path / "sa" / f"{stem}.tsv").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sa" / f"{stem}.tsv").write_text(SA_TSV * 3, encoding="utf-8")
        (tmp_path / "sib" / f"{stem}.tsv").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sib" / f"{stem}.tsv").write_text(SIB, encoding="utf-8")
    for folder in ("sa", "sib"):
        odd = tmp_path / folder / "test.tsv"
        odd.mkdir() if kind == "folder" else odd.symlink_to(tmp_path / "nowhere.tsv")
    message = one_line_error(lambda: load_sentiment(tmp_path / "sa", "danish", missing_splits="carve"))
    assert message.startswith(f"{tmp_path / 'sa' / 'test.tsv'}: not a readable file"), message
    message = one_line_error(lambda: load_sib200(tmp_path / "sib", "qaa_Latn"))
    assert message.startswith(f"{tmp_path / 'sib' / 'test.tsv'}: not a readable file"), message
