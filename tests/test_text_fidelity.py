"""Text is never altered: every loader returns each sentence, token and label exactly as the file holds it.

Two kinds of evidence. (1) Every file of `../shared/data` that a loader reads, compared byte for byte and in
order with an INDEPENDENT reading of its fields (a plain split on "\\n" and "\\t" for raw files, json.loads for
JSON lines), skipping only the records the loader documents it drops (neutral sentiment rows, non-Maltese
posts). (2) Generated files, seeded, in every supported format, made of quotes, `""`, tabs and line breaks
inside CSV-quoted fields, combining marks, zero-width (non-)joiners, Thai/Devanagari/Hebrew/Arabic, NBSP,
leading and trailing spaces and characters that `str.splitlines` would take for line ends; and the FLORES-style
sentence that starts with `\"\"\"` and holds `""`, which the content sniffing of old unquoted.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lrl_utils.data.conceptnet import conceptnet_sentences
from lrl_utils.data.conceptnet_templates import CONCEPTNET_TEMPLATES
from lrl_utils.data.flores_sib import SIB_LABELS, load_flores_devtest, load_sib200
from lrl_utils.data.glotcc import glotcc_documents, glotcc_splits
from lrl_utils.data.sentiment import load_sentiment
from lrl_utils.data.sources import load_text_splits, write_splits
from lrl_utils.data.wikiann import NER_TAGS, load_wikiann

SPLIT_STEMS = {"train": "train", "validation": "dev", "test": "test"}


def raw_lines(file: Path) -> list[str]:
    """The independent reading: UTF-8, split on "\\n" only, a "\\r" before it removed, no last empty line."""
    text = file.read_bytes().decode("utf-8")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def raw_table(file: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a raw TSV file: every line split on tabs, blank lines skipped."""
    header, *rows = [line.split("\t") for line in raw_lines(file) if line]
    return header, rows


def copied_as_splits(file: Path, folder: Path) -> Path:
    """`file` copied as train, dev and test of `folder` (each split then holds exactly the file, in order)."""
    folder.mkdir(parents=True)
    for stem in SPLIT_STEMS.values():
        shutil.copyfile(file, folder / f"{stem}{file.suffix}")
    return folder


# ----------------------------------------------------------------------------------------------------------
# (1) Every file of ../shared/data


def test_sib200_and_flores_files_come_back_verbatim(shared: Path) -> None:
    folders = sorted(p for p in (shared / "sib200").iterdir() if p.is_dir())
    assert folders
    for folder in folders:
        sib = load_sib200(folder, f"{folder.name}_Xxxx")
        for split, stem in SPLIT_STEMS.items():
            header, rows = raw_table(folder / f"{stem}.tsv")
            assert header == ["index_id", "category", "text"]
            assert sib[split]["text"] == [r[2] for r in rows], folder / f"{stem}.tsv"
            assert sib[split]["category"] == [r[1] for r in rows]
            assert sib[split]["index_id"] == [int(r[0]) for r in rows]
    files = sorted((shared / "flores200").glob("*/devtest.tsv"))
    assert files
    for file in files:
        flores = load_flores_devtest(file, f"{file.parent.name}_Xxxx", sample=True)
        header, rows = raw_table(file)
        assert header == ["id", "sentence"]
        assert flores["sentence"] == [r[1] for r in rows], file
        assert flores["id"] == [int(r[0]) for r in rows]


def conll_sentences(file: Path, iso2: str) -> list[tuple[list[str], list[str]]]:
    """Blank-line separated `token<TAB>tag` lines; the documented `<iso2>:` prefix removed if the first has it."""
    sentences, tokens, tags = [], [], []
    for line in [*raw_lines(file), ""]:
        if line.strip():
            token, tag = line.split("\t")
            tokens.append(token)
            tags.append(tag.strip())
        elif tokens:
            sentences.append((tokens, tags))
            tokens, tags = [], []
    prefix = f"{iso2}:"
    if sentences and sentences[0][0][0].startswith(prefix):
        sentences = [([t.removeprefix(prefix) for t in tok], tag) for tok, tag in sentences]
    return sentences


ISO2 = {"mlt": "mt", "heb": "he", "swh": "sw", "bul": "bg", "azj": "az", "jav": "jv", "ron": "ro"}


def test_wikiann_files_come_back_verbatim(shared: Path, tmp_path: Path) -> None:
    files = sorted((shared / "wikiann").glob("*/*.conll"))
    assert files
    for i, file in enumerate(files):
        iso2 = ISO2.get(file.parent.name, file.parent.name[:2])
        stats: dict = {}
        ner = load_wikiann(copied_as_splits(file, tmp_path / str(i)), iso2, stats=stats)
        expected = conll_sentences(file, iso2)
        for split in SPLIT_STEMS:
            assert stats["splits"][split]["malformed"] == 0, file
            assert ner[split]["tokens"] == [tokens for tokens, _ in expected], file
            names = [[NER_TAGS[t] for t in tags] for tags in ner[split]["ner_tags"]]
            assert names == [tags for _, tags in expected], file


# (text column, label column, raw label -> 0/1 (others dropped), (column, value) a kept row must have)
SENTIMENT_SOURCES = {
    "afrisenti": ("tweet", "label", {"negative": 0, "positive": 1}, None),
    "wisesight": ("texts", "category", {"neg": 0, "pos": 1}, None),
    "malta": ("Online Post", "Sentiment Polarity", {"Negative": 0, "Positive": 1}, ("Maltese", "1")),
    "hebrew": ("text", "label", {"0": 1, "1": 0}, None),  # Amram et al.: 0 = positive
}
DATASET_NAMES = {"swh": "swahili", "amh": "amharic", "heb": "hebrew", "tha": "thai", "mlt": "maltese"}


def sentiment_rows(file: Path) -> list[dict]:
    if file.suffix == ".jsonl":
        return [json.loads(line) for line in raw_lines(file) if line.strip()]
    header, rows = raw_table(file)
    assert all(len(r) == len(header) for r in rows), file
    return [dict(zip(header, r, strict=True)) for r in rows]


def test_sentiment_files_come_back_verbatim(shared: Path, tmp_path: Path) -> None:
    files = sorted(f for f in (shared / "sentiment").glob("*/*") if f.suffix in (".tsv", ".jsonl"))
    assert files
    for i, file in enumerate(files):
        rows = sentiment_rows(file)
        name = DATASET_NAMES.get(file.parent.name, file.parent.name)
        source = next(
            s
            for key, s in SENTIMENT_SOURCES.items()
            if {s[0], s[1]} <= set(rows[0]) and (key != "hebrew" or name == "hebrew")
        )
        text, label, labels, only_if = source
        kept = [r for r in rows if r[label] in labels and (only_if is None or r[only_if[0]] == only_if[1])]
        sa = load_sentiment(copied_as_splits(file, tmp_path / str(i)), name)
        for split in SPLIT_STEMS:
            assert sa[split]["text"] == [r[text] for r in kept], file
            assert sa[split]["label"] == [labels[r[label]] for r in kept], file


def test_text_files_come_back_verbatim(shared: Path, tmp_path: Path) -> None:
    files = sorted((shared / "text").glob("*/*.txt"))
    assert files
    for i, file in enumerate(files):
        lines = [line for line in raw_lines(file) if line.strip()]
        assert glotcc_documents(file, file.parent.name) == lines, file
        glotcc_splits(file, file.parent.name, tmp_path / str(i), max_train_bytes=None, max_val_bytes=None)
        splits = load_text_splits(tmp_path / str(i))
        texts = [t for split in splits.values() for t in split["text"]]
        assert sorted(texts) == sorted(lines), file
        for split in splits.values():  # each split keeps the file's order
            kept = list(split["text"])
            assert kept == [line for line in lines if line in set(kept)]


def test_conceptnet_surface_forms_are_the_uri_words(shared: Path) -> None:
    """The sentences of the assertions sample equal the SPEC §2 rule applied by hand: the words of the start
    and end URIs (`_` as a space), nothing else changed. (The other ConceptNet files of ../shared/data, JSON
    edges and already verbalised sentences, are read by no loader.)"""
    dump = shared / "conceptnet" / "multi" / "assertions.csv"
    expected: dict[str, list[str]] = {}
    for line in raw_lines(dump):
        edge, relation, start, end, _ = line.split("\t")
        lang, word = start.split("/")[2:4]
        expected.setdefault(lang, [])
        predicate = CONCEPTNET_TEMPLATES.get(relation.removeprefix("/r/"))
        if predicate is None or end.startswith("http"):
            continue
        subject, obj = word.replace("_", " "), end.split("/")[3].replace("_", " ")
        if subject != obj:
            expected[lang].append(f"{subject} {predicate} {obj}.")
    sentences, _ = conceptnet_sentences(dump, sorted(expected))
    assert sentences == expected
    assert sum(map(len, expected.values())) >= 6


# ----------------------------------------------------------------------------------------------------------
# (2) Generated files

SCRIPTS = ["ก", "ข", "ำ", "่", "क", "ि", "्", "ष", "ש", "ָ", "ל", "ع", "ل", "ً", "ħ", "ż", "ё", "é"]
ODD = ['"', '""', "'", "\u0301", "\u0308", "\u200d", "\u200c", "\xa0", " ", "\u2028", "\x0c", "\x85", ","]


def random_text(rng: random.Random, csv_quoted: bool = False) -> str:
    """A text of letters, marks, quotes and spaces (leading/trailing ones too); tabs and line breaks only
    when it will be CSV-quoted. Never empty or blank: loaders reject those."""
    odd = ODD + (["\t", "\n", "\r\n", '"\t"'] if csv_quoted else [])
    parts = [rng.choice(SCRIPTS if rng.random() < 0.6 else odd) for _ in range(rng.randint(1, 14))]
    text = "".join(parts)
    if rng.random() < 0.3:
        text = rng.choice([" ", "\xa0", '"', '"""']) + text + rng.choice([" ", '"', '""', "\u200d"])
    return text if text.strip() else text + "x"


FLORES_QUOTES = '"""Ni wazo zuri,"" alisema ""mwalimu"" wetu."'  # starts with """, holds ""


@pytest.mark.parametrize("seed", range(4))
def test_flores_raw_tsv_and_release_files(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    sentences = [random_text(rng) for _ in range(40)] + [FLORES_QUOTES, '"Only one quoted."']
    tsv = tmp_path / "devtest.tsv"
    tsv.write_text("id\tsentence\n" + "".join(f"{i}\t{s}\n" for i, s in enumerate(sentences, 1)), "utf-8")
    assert load_flores_devtest(tsv, "qaa_Latn", sample=True)["sentence"] == sentences
    release = tmp_path / "flores200_dataset" / "devtest" / "qaa_Latn.devtest"
    release.parent.mkdir(parents=True)
    release.write_bytes("".join(s + rng.choice(["\n", "\r\n"]) for s in sentences).encode())
    assert load_flores_devtest(tmp_path, "qaa_Latn", sample=True)["sentence"] == sentences


def test_flores_sentence_with_csv_like_quotes_is_not_unquoted(tmp_path: Path) -> None:
    """A full-size raw devtest whose only quoted sentences look CSV-quoted: every `"` stays."""
    sentences = [f"Sentensi ya kawaida nambari {i}." for i in range(1011)] + [FLORES_QUOTES]
    tsv = tmp_path / "devtest.tsv"
    tsv.write_text("id\tsentence\n" + "".join(f"{i}\t{s}\n" for i, s in enumerate(sentences, 1)), "utf-8")
    assert load_flores_devtest(tsv, "swh_Latn")["sentence"][-1] == FLORES_QUOTES
    quoted = load_flores_devtest(tsv, "swh_Latn", quoting="csv")["sentence"][-1]  # stated in params
    assert quoted == '"Ni wazo zuri," alisema "mwalimu" wetu.'  # one layer of quotes taken off


def sib_rows(rng: random.Random, csv_quoted: bool) -> list[tuple[int, str, str]]:
    return [(rng.randint(0, 2008), rng.choice(SIB_LABELS), random_text(rng, csv_quoted)) for _ in range(30)]


@pytest.mark.parametrize("seed", range(4))
def test_sib200_repository_layout_is_csv_quoted_and_others_raw(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    written = {stem: sib_rows(rng, csv_quoted=True) for stem in SPLIT_STEMS.values()}
    repo = tmp_path / "repo" / "data" / "annotated" / "qaa_Latn"
    repo.mkdir(parents=True)
    for stem, rows in written.items():
        frame = pd.DataFrame(rows, columns=["index_id", "category", "text"])
        if stem == "dev":  # csv.writer with CRLF line ends, as a tool other than pandas might write
            with open(repo / "dev.tsv", "w", encoding="utf-8", newline="") as f:
                csv.writer(f, delimiter="\t", lineterminator="\r\n").writerows([frame.columns, *rows])
        else:  # as the SIB-200 repository: pandas to_csv
            frame.to_csv(repo / f"{stem}.tsv", sep="\t", index=False)
    sib = load_sib200(tmp_path / "repo", "qaa_Latn")
    for split, stem in SPLIT_STEMS.items():
        assert sib[split]["text"] == [t for _, _, t in written[stem]]
        assert sib[split]["category"] == [c for _, c, _ in written[stem]]
    # the shared samples' layout: raw fields, quotes included
    raw = {stem: sib_rows(rng, csv_quoted=False) for stem in SPLIT_STEMS.values()}
    folder = tmp_path / "samples" / "qaa"
    folder.mkdir(parents=True)
    for stem, rows in raw.items():
        lines = ["index_id\tcategory\ttext", *(f"{i}\t{c}\t{t}" for i, c, t in rows)]
        (folder / f"{stem}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sib = load_sib200(tmp_path / "samples", "qaa_Latn")
    assert {s: sib[s]["text"] for s in SPLIT_STEMS} == {
        s: [t for *_, t in raw[st]] for s, st in SPLIT_STEMS.items()
    }
    # stated in params where the layout cannot tell: the raw files moved into a repository-like layout
    moved = tmp_path / "moved" / "data" / "annotated" / "qaa_Latn"
    shutil.copytree(folder, moved)
    assert load_sib200(moved, "qaa_Latn", quoting="raw")["train"]["text"] == [t for *_, t in raw["train"]]
    # and the pandas files outside it
    shutil.copytree(repo, tmp_path / "flat")
    assert load_sib200(tmp_path / "flat", "qaa_Latn", quoting="csv")["test"]["text"] == [
        t for *_, t in written["test"]
    ]


@pytest.mark.parametrize("seed", range(4))
def test_sentiment_tsv_csv_and_jsonl(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)

    def rows(csv_quoted: bool) -> list[tuple[str, int]]:
        return [(random_text(rng, csv_quoted), rng.randint(0, 1)) for _ in range(25)]

    expected = {}
    for fmt in ("tsv", "csv", "jsonl", "quoted-tsv"):
        folder = tmp_path / fmt
        folder.mkdir()
        expected[fmt] = {stem: rows(fmt in ("csv", "quoted-tsv")) for stem in SPLIT_STEMS.values()}
        for stem, data in expected[fmt].items():
            if fmt == "tsv":  # raw: a field is everything between tabs
                body = "".join(f"{t}\t{y}\n" for t, y in data)
                (folder / f"{stem}.tsv").write_text("text\tlabel\n" + body, encoding="utf-8")
            elif fmt == "jsonl":
                ascii_ = rng.random() < 0.5
                body = "".join(
                    json.dumps({"text": t, "label": y}, ensure_ascii=ascii_) + "\n" for t, y in data
                )
                (folder / f"{stem}.jsonl").write_text(body, encoding="utf-8")
            else:
                frame = pd.DataFrame(data, columns=["text", "label"])
                sep, suffix = ("\t", "tsv") if fmt == "quoted-tsv" else (",", "csv")
                frame.to_csv(folder / f"{stem}.{suffix}", sep=sep, index=False)
        quoting = "csv" if fmt == "quoted-tsv" else None
        sa = load_sentiment(folder, "danish", quoting=quoting)
        for split, stem in SPLIT_STEMS.items():
            assert sa[split]["text"] == [t for t, _ in expected[fmt][stem]], (fmt, split)
            assert sa[split]["label"] == [y for _, y in expected[fmt][stem]], (fmt, split)


def test_sentiment_raw_tsv_with_csv_like_quotes(tmp_path: Path) -> None:
    """AfriSenti-style raw TSV whose quoted tweets look CSV-quoted: read raw, every `"` stays."""
    texts = [FLORES_QUOTES, "Hakuna nukuu hapa", '"Habari ""njema"""']
    body = "".join(f"sw_{i}\t{t}\t{['positive', 'negative'][i % 2]}\n" for i, t in enumerate(texts))
    for stem in SPLIT_STEMS.values():
        (tmp_path / f"{stem}.tsv").write_text("ID\ttweet\tlabel\n" + body, encoding="utf-8")
    assert load_sentiment(tmp_path, "swahili")["test"]["text"] == texts


@pytest.mark.parametrize("seed", range(4))
def test_conll_tokens(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    written = {}
    for stem in SPLIT_STEMS.values():
        sentences = []
        for _ in range(20):
            tokens = [random_text(rng).replace("\u2028", "") for _ in range(rng.randint(1, 6))]
            tags = []
            for _ in tokens:  # random tags in IOB2 (an I- tag continues an entity of its type, else it is B-)
                tag = rng.choice(NER_TAGS)
                prev = tags[-1] if tags else "O"
                tags.append(f"B-{tag[2:]}" if tag.startswith("I-") and prev[2:] != tag[2:] else tag)
            sentences.append((tokens, tags))
        written[stem] = sentences
        end = rng.choice(["\n", "\r\n"])
        lines = "".join("".join(f"{t}\t{g}{end}" for t, g in zip(*s, strict=True)) + end for s in sentences)
        (tmp_path / f"{stem}.conll").write_bytes(lines.encode())
    ner = load_wikiann(tmp_path, "qq")
    for split, stem in SPLIT_STEMS.items():
        assert ner[split]["tokens"] == [tokens for tokens, _ in written[stem]]
        assert [[NER_TAGS[t] for t in s] for s in ner[split]["ner_tags"]] == [g for _, g in written[stem]]


@pytest.mark.parametrize("seed", range(3))
def test_glotcc_text_jsonl_parquet_and_split_files(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines = [random_text(rng) for _ in range(30)]  # one document per line
    docs = [random_text(rng, csv_quoted=True) for _ in range(30)]  # JSON and parquet: any character
    folder = tmp_path / "qaa-Latn"
    folder.mkdir()
    (folder / "a.txt").write_bytes("".join(t + rng.choice(["\n", "\r\n"]) for t in lines).encode())
    (folder / "b.jsonl").write_text("".join(json.dumps({"content": d}) + "\n" for d in docs), "utf-8")
    pq.write_table(pa.table({"content": docs}), folder / "c.parquet")
    assert glotcc_documents(folder, "qaa-Latn") == lines + docs + docs
    write_splits(tmp_path / "splits", {"train": docs, "val": lines, "test": docs[:3]})
    splits = load_text_splits(tmp_path / "splits")
    assert splits["train"]["text"] == docs and splits["validation"]["text"] == lines
