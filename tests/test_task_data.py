"""Tests of lrl_utils.data.task_data: WikiANN NER and binary sentiment on the real shared samples (read in place)
and on small generated files (malformed lines, unknown tags and labels, bad UTF-8, the bad-record threshold,
label maps, missing splits), plus the hub path with `datasets.load_dataset` replaced."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import pytest  # noqa: E402

from lrl_utils.data.sentiment import SENTIMENT_LABELS, load_sentiment
from lrl_utils.data.sources import DataSourceError  # noqa: E402
from lrl_utils.data.wikiann import NER_TAGS, load_wikiann  # noqa: E402

TAG = {name: i for i, name in enumerate(NER_TAGS)}
SPLITS = ["train", "validation", "test"]


def sizes(dd: datasets.DatasetDict) -> dict[str, int]:
    return {split: dd[split].num_rows for split in dd}


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(DataSourceError) as err:
        call(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def sentences(dd: datasets.DatasetDict, split: str) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    return [(tuple(t), tuple(g)) for t, g in zip(dd[split]["tokens"], dd[split]["ner_tags"], strict=True)]


# ----------------------------------------------------------------------------------------------------------
# WikiANN: real samples


@pytest.mark.parametrize("iso2, iso3, n", [("mt", "mlt", 100), ("he", "heb", 300)])
def test_wikiann_real_rahimi_samples(shared: Path, iso2: str, iso3: str, n: int) -> None:
    stats: dict = {}
    ner = load_wikiann(shared / "wikiann", iso2, iso3=iso3, stats=stats)  # <dir>/<iso3>/ form
    assert sizes(ner) == {"train": n, "validation": n, "test": n}
    assert stats["filled"] == [] and all(s["malformed"] == 0 for s in stats["splits"].values())
    for split in SPLITS:
        assert ner[split].features["ner_tags"].feature.names == list(NER_TAGS)
        assert all(len(t) == len(g) > 0 for t, g in sentences(ner, split))
        assert not any(tok.startswith(f"{iso2}:") for toks in ner[split]["tokens"] for tok in toks)
    tags = {tag for seq in ner["train"]["ner_tags"] for tag in seq}
    assert tags == set(range(len(NER_TAGS)))


def test_wikiann_real_sample_values(shared: Path) -> None:
    ner = load_wikiann(shared / "wikiann" / "mlt", "mt")  # the language folder itself
    first = ner["test"][0]
    assert first["tokens"] == ["Emerson", "Ferreira", "da", "Rosa"]
    assert first["ner_tags"] == [TAG["B-PER"], TAG["I-PER"], TAG["I-PER"], TAG["I-PER"]]
    assert ner["train"][0]["tokens"] == ["RINDIRIZZA", "Ġwann", "Marija", "Vianney"]
    assert ner["train"][0]["ner_tags"] == [TAG["O"], TAG["B-PER"], TAG["I-PER"], TAG["I-PER"]]


@pytest.mark.parametrize("iso2, iso3, n", [("sw", "swh", 300), ("bg", "bul", 300), ("jv", "jav", 100)])
def test_wikiann_real_xtreme_samples_have_no_test(shared: Path, iso2: str, iso3: str, n: int) -> None:
    message = error_of(load_wikiann, shared / "wikiann", iso2, iso3=iso3)
    assert "no test split" in message and "set `finetune.ner.missing_splits: carve` in the profile" in message
    stats: dict = {}
    ner = load_wikiann(shared / "wikiann", iso2, iso3=iso3, missing_splits="carve", stats=stats)
    assert stats["filled"] == ["test"] and stats["carved"] == {
        "test": {"from": "validation", "share": 0.5, "rows": ner["test"].num_rows}
    }
    assert ner["train"].num_rows == n and ner["validation"].num_rows + ner["test"].num_rows == n
    assert sizes(ner) == sizes(load_wikiann(shared / "wikiann" / iso3, iso2, missing_splits="carve"))


def test_wikiann_real_dev_split_in_half(shared: Path) -> None:
    folder = shared / "wikiann" / "azj"
    ner = load_wikiann(folder, "az", missing_splits="carve", seed=3)
    held_out = sentences(ner, "validation") + sentences(ner, "test")
    wanted = (("Azərbaycan", "Respublikası", "Maliyyə", "Nazirliyi", "."), (3, 4, 4, 4, 0))
    assert wanted in held_out and len(held_out) == 300
    dev = load_wikiann(folder / "dev.conll", "az", missing_splits="carve")  # one file: 80/10/10
    assert Counter(held_out) == Counter(s for split in SPLITS for s in sentences(dev, split))
    again = load_wikiann(folder, "az", missing_splits="carve", seed=3)
    assert sentences(again, "test") == sentences(ner, "test")


# ----------------------------------------------------------------------------------------------------------
# WikiANN: generated files


def conll(sents: list[list[tuple[str, str]]]) -> str:
    return "\n\n".join("\n".join(f"{tok}\t{tag}" for tok, tag in s) for s in sents) + "\n"


GOOD = [[("Anna", "B-PER"), ("lives", "O"), ("in", "O"), ("Valletta", "B-LOC")]]


def write_ner(
    folder: Path, train: str, dev: str | None = None, test: str | None = None, names: dict | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = names or {}
    for stem, text in (("train", train), ("dev", dev), ("test", test)):
        if text is not None:
            (folder / names.get(stem, f"{stem}.conll")).write_text(text, encoding="utf-8", newline="")
    return folder


def test_wikiann_unknown_tag_below_and_above_threshold(tmp_path: Path) -> None:
    bad = [("Foo", "B-MISC"), ("bar", "O")]
    text = conll(GOOD * 150 + [bad] + GOOD * 49)  # the bad sentence starts on line 151 * 5 + 1
    folder = write_ner(tmp_path / "ner", text, conll(GOOD * 5), conll(GOOD * 5))
    stats: dict = {}
    ner = load_wikiann(folder, "mt", stats=stats)  # 1 of 200 = 0.5% <= 1%
    assert ner["train"].num_rows == 199
    train = stats["splits"]["train"]
    assert (train["records"], train["kept"], train["malformed"], train["bad_fraction"]) == (
        200,
        199,
        1,
        0.005,
    )
    assert train["bad_examples"] == [f"{folder / 'train.conll'}:751: unknown tag ('B-MISC')"]
    assert train["malformed_by_reason"] == {"unknown tag": 1}
    message = error_of(load_wikiann, folder, "mt", max_bad_fraction=0.0)
    assert f"{folder / 'train.conll'}:751: unknown tag ('B-MISC')" in message
    assert "1 of 200 sentences malformed (0.500% > `data.max_bad_fraction` 0)" in message


def test_wikiann_malformed_lines_are_counted_with_line_numbers(tmp_path: Path) -> None:
    train = (
        conll(GOOD * 97)
        + "\nAnna\tB-PER\textra\n"  # 3 columns
        + "\njust-a-token\n"  # 1 column
        + "\n\tO\nfoo\tO\n"  # empty token
    )
    folder = write_ner(tmp_path / "ner", train, conll(GOOD), conll(GOOD))
    message = error_of(load_wikiann, folder, "mt")  # 3 of 100 = 3% > 1%
    assert "3 of 100 sentences malformed (3.000% > `data.max_bad_fraction` 0.01)" in message
    base = 97 * 5
    assert f"train.conll:{base + 1}: wrong column count (3 tab-separated columns, expected 2" in message
    assert f"train.conll:{base + 3}: wrong column count (1 tab-separated columns" in message
    assert f"train.conll:{base + 5}: empty token" in message
    assert load_wikiann(folder, "mt", max_bad_fraction=0.05)["train"].num_rows == 97


def test_wikiann_bad_utf8_line(tmp_path: Path) -> None:
    folder = write_ner(tmp_path / "ner", conll(GOOD * 3), conll(GOOD), conll(GOOD))
    with open(folder / "train.conll", "ab") as f:
        f.write(b"\nbad\xff\xfebyte\tO\n")
    message = error_of(load_wikiann, folder, "mt")
    assert "train.conll:16: invalid UTF-8" in message and "1 of 4 sentences malformed" in message
    assert load_wikiann(folder, "mt", max_bad_fraction=0.5)["train"].num_rows == 3


def test_wikiann_prefix_crlf_and_names(tmp_path: Path) -> None:
    prefixed = conll([[(f"mt:{tok}", tag) for tok, tag in GOOD[0]]]).replace("\n", "\r\n").rstrip("\r\n")
    folder = write_ner(
        tmp_path / "ner", prefixed, conll(GOOD), conll(GOOD), names={"dev": "validation.txt", "test": "test"}
    )
    ner = load_wikiann(folder, "mt")
    assert ner["train"][0]["tokens"] == ["Anna", "lives", "in", "Valletta"]
    assert ner["train"][0]["ner_tags"] == [TAG["B-PER"], 0, 0, TAG["B-LOC"]]
    plain = write_ner(tmp_path / "plain", conll([[("x", "O"), ("mt:y", "O")]]), conll(GOOD), conll(GOOD))
    assert load_wikiann(plain, "mt")["train"][0]["tokens"] == ["x", "mt:y"]  # the first token decides


def test_wikiann_trailing_tabs_are_empty_columns_not_errors(tmp_path: Path) -> None:
    """`token<TAB>tag<TAB>` (a trailing tab, as spreadsheet exports write): read as token and tag, by the loader and
    by the dry-run check alike; a real third column stays an error."""
    from lrl_utils.data.check import check_wikiann

    trailing = conll(GOOD).replace("\n", "\t\n").replace("\t\n\t\n", "\t\n\n")
    folder = write_ner(tmp_path / "ner", trailing, conll(GOOD), trailing)
    assert check_wikiann(folder, "mt", "mlt", "error")
    ner = load_wikiann(folder, "mt")
    assert sentences(ner, "train") == sentences(ner, "validation")
    third = write_ner(tmp_path / "third", conll(GOOD).replace("\n", "\tx\n", 1), conll(GOOD), conll(GOOD))
    assert "3 tab-separated columns, expected 2" in error_of(check_wikiann, third, "mt", "mlt", "error")


def test_wikiann_xtreme_names_ignore_unlabelled_test(tmp_path: Path) -> None:
    names = {"train": "train-sw.tsv", "dev": "dev-sw.tsv", "test": "test-sw.tsv"}  # XTREME PAN-X names
    folder = write_ner(tmp_path / "sw", conll(GOOD * 4), conll(GOOD * 4), "Anna\nlives\n", names)
    assert "no test split" in error_of(load_wikiann, tmp_path, "sw")  # <dir>/<iso2>/; test-sw.tsv not read
    ner = load_wikiann(folder, "sw", missing_splits="carve")
    assert sizes(ner) == {"train": 4, "validation": 2, "test": 2}


def test_missing_split_rule_names_the_profile_key_and_records_the_carving(tmp_path: Path) -> None:
    """The error names the profile key (never a function argument); `carve` follows CARVE_RULES, seeded, and
    records which splits were carved, from which split, with their sizes."""
    sents = [[(f"w{i}", "O"), ("Valletta", "B-LOC")] for i in range(40)]
    folder = write_ner(tmp_path / "xtreme", conll(sents), conll(sents[:20]))  # train + dev, no test
    message = error_of(load_wikiann, folder, "mt")
    assert "set `finetune.ner.missing_splits: carve` in the profile" in message
    assert "test = half of validation" in message and "finetune.ner.split_seed" in message
    assert "fill_missing_splits" not in message and "=True" not in message and "pass " not in message
    stats: dict = {}
    ner = load_wikiann(folder, "mt", missing_splits="carve", seed=7, stats=stats)
    assert sizes(ner) == {"train": 40, "validation": 10, "test": 10}
    assert stats["carved"] == {"test": {"from": "validation", "share": 0.5, "rows": 10}}
    assert (stats["sizes"], stats["missing_splits"], stats["split_seed"]) == (sizes(ner), "carve", 7)
    assert sentences(load_wikiann(folder, "mt", missing_splits="carve", seed=7), "test") == sentences(
        ner, "test"
    )
    assert sentences(load_wikiann(folder, "mt", missing_splits="carve", seed=8), "test") != sentences(
        ner, "test"
    )
    sa = write(tmp_path / "sa" / "train.tsv", tsv([(f"t{i}", str(i % 2)) for i in range(20)])).parent
    write(sa / "test.tsv", tsv([("x", "1"), ("y", "0")]))  # train + test, no dev (as the Hebrew SA)
    message = error_of(load_sentiment, sa, "danish")
    assert "no validation split" in message and "`finetune.sa.missing_splits: carve`" in message
    assert "validation = 10% of train" in message
    stats = {}
    assert sizes(load_sentiment(sa, "danish", missing_splits="carve", stats=stats)) == {
        "train": 18,
        "validation": 2,
        "test": 2,
    }
    assert stats["carved"] == {"validation": {"from": "train", "share": 0.1, "rows": 2}}
    with pytest.raises(ValueError, match="missing_splits: must be one of error, carve"):
        load_sentiment(sa, "danish", missing_splits="fill")


def test_wikiann_single_file_and_missing(tmp_path: Path) -> None:
    one = tmp_path / "all.conll"
    one.write_text(conll(GOOD * 20), encoding="utf-8")
    assert "no validation or test split" in error_of(load_wikiann, one, "mt")
    assert sizes(load_wikiann(one, "mt", missing_splits="carve")) == {
        "train": 16,
        "validation": 2,
        "test": 2,
    }
    (tmp_path / "empty").mkdir()
    assert "no WikiANN files for mt" in error_of(load_wikiann, tmp_path / "empty", "mt")
    assert "WikiANN location not found" in error_of(load_wikiann, tmp_path / "absent", "mt")
    folder = write_ner(tmp_path / "blank", "\n\n", conll(GOOD), conll(GOOD))
    assert "train.conll: no sentences" in error_of(load_wikiann, folder, "mt")
    with pytest.raises(ValueError, match="max_bad_fraction: must be in"):
        load_wikiann(folder, "mt", max_bad_fraction=1.5)


# ----------------------------------------------------------------------------------------------------------
# Sentiment: real samples


def raw_labels(file: Path, column: str) -> list[str]:
    with open(file, encoding="utf-8", newline="") as f:
        return [row[column] for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


@pytest.mark.parametrize(
    "name, iso3, n", [("swahili", "swh", (300, 185, 300)), ("amharic", "amh", (300,) * 3)]
)
def test_sentiment_real_afrisenti(shared: Path, name: str, iso3: str, n: tuple) -> None:
    stats: dict = {}
    sa = load_sentiment(shared / "sentiment", name, iso3=iso3, stats=stats)
    assert tuple(sizes(sa).values()) == n and list(sa) == SPLITS
    assert set(stats["formats"].values()) == {"afrisenti"}
    assert sa["train"].features["label"].names == list(SENTIMENT_LABELS)
    for split, stem in (("train", "train"), ("validation", "dev"), ("test", "test")):
        raw = raw_labels(shared / "sentiment" / iso3 / f"{stem}.tsv", "label")
        assert sa[split]["label"] == [SENTIMENT_LABELS.index(x) for x in raw]


def test_sentiment_real_hebrew_labels_are_inverted(shared: Path) -> None:
    """Amram et al.: 0 = positive, 1 = negative; the loader's schema: 1 = positive."""
    stats: dict = {}
    sa = load_sentiment(
        shared / "sentiment" / "heb", "dgurgurov/hebrew_sa", missing_splits="carve", stats=stats
    )
    assert stats["formats"] == {"train": "amram-hebrew", "test": "amram-hebrew"} and stats["filled"] == [
        "validation"
    ]
    assert sizes(sa) == {"train": 270, "validation": 30, "test": 300}
    raw = raw_labels(shared / "sentiment" / "heb" / "test.tsv", "label")
    assert sa["test"]["label"] == [1 - int(x) for x in raw]
    assert any(
        text.startswith('"') for text in sa["test"]["text"]
    )  # raw (unquoted) TSV fields kept as they are
    assert "no validation split" in error_of(load_sentiment, shared / "sentiment" / "heb", "hebrew")


def test_sentiment_real_thai_and_maltese(shared: Path) -> None:
    tha = load_sentiment(shared / "sentiment", "thai", iso3="tha")
    assert sizes(tha) == {"train": 300, "validation": 300, "test": 300}
    assert tha["train"][0] == {"text": "😍😍", "label": 1} and sum(tha["test"]["label"]) == 150
    stats: dict = {}
    mlt = load_sentiment(shared / "sentiment", "Maltese", iso3="mlt", missing_splits="carve", stats=stats)
    assert sizes(mlt) == {"train": 106, "validation": 13, "test": 14}  # the paper's 80/10/10 of 133
    assert stats["formats"] == {"all": "malta-budget"} and stats["filled"] == ["validation", "test"]
    rows = [json.loads(line) for line in (shared / "sentiment" / "mlt" / "all.jsonl").open(encoding="utf-8")]
    positive = sum(r["Sentiment Polarity"] == "Positive" for r in rows)
    assert sum(sum(mlt[s]["label"]) for s in SPLITS) == positive
    assert "no validation or test split" in error_of(load_sentiment, shared / "sentiment" / "mlt", "maltese")


# ----------------------------------------------------------------------------------------------------------
# Sentiment: generated files


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def tsv(rows: list[tuple[str, str]], header: str = "text\tlabel") -> str:
    return header + "\n" + "".join(f"{t}\t{y}\n" for t, y in rows)


def sa_folder(folder: Path, train: str, suffix: str = ".tsv") -> Path:
    write(folder / f"train{suffix}", train)
    write(folder / "dev.tsv", tsv([("good", "1"), ("bad", "0")]))
    write(folder / "test.tsv", tsv([("good", "1"), ("bad", "0")]))
    return folder


def test_sentiment_labels_and_hebrew_rule(tmp_path: Path) -> None:
    folder = sa_folder(tmp_path / "sa", tsv([("a", "0"), ("b", "1"), ("c", "Positive"), ("d", " negative ")]))
    assert load_sentiment(folder, "danish")["train"]["label"] == [0, 1, 1, 0]
    hebrew = load_sentiment(folder, "hebrew", max_bad_fraction=0.5)  # Amram map: 0 → 1, 1 → 0
    assert hebrew["train"]["label"] == [1, 0]


def test_sentiment_bad_rows_threshold(tmp_path: Path) -> None:
    rows = [(f"text {i}", str(i % 2)) for i in range(8)] + [("odd", "2"), ("", "1")]
    folder = sa_folder(tmp_path / "sa", tsv(rows) + "a\tb\tc\n")
    message = error_of(load_sentiment, folder, "danish", max_bad_fraction=0.2)
    assert "3 of 11 rows malformed (27.273% > `data.max_bad_fraction` 0.2)" in message
    train = folder / "train.tsv"
    assert f"{train}:10: unknown label ('2'; known: 0, 1, negative, positive, neg, pos)" in message
    assert (
        f"{train}:11: empty text" in message and f"{train}:12: wrong field count (3, expected 2)" in message
    )
    stats: dict = {}
    assert load_sentiment(folder, "danish", max_bad_fraction=0.3, stats=stats)["train"].num_rows == 8
    train_stats = stats["splits"]["train"]
    assert (
        train_stats["records"],
        train_stats["kept"],
        train_stats["malformed"],
        train_stats["dropped"],
    ) == (
        11,
        8,
        3,
        0,
    )


def test_sentiment_bad_utf8_and_csv_multiline(tmp_path: Path) -> None:
    body = b'label,text\n1,"first line\nsecond line"\n0,"x, y"\n1,caf\xe9\n' + b"".join(
        f"{i % 2},row {i}\n".encode() for i in range(97)
    )
    folder = sa_folder(tmp_path / "sa", body, suffix=".csv")
    stats: dict = {}
    sa = load_sentiment(folder, "dgurgurov/welsh_sa", stats=stats)
    assert sa["train"]["text"][:2] == ["first line\nsecond line", "x, y"]
    assert stats["splits"]["train"]["bad_examples"] == [f"{folder / 'train.csv'}:5: invalid UTF-8"]
    assert "train.csv:5: invalid UTF-8" in error_of(load_sentiment, folder, "welsh", max_bad_fraction=0)


def test_sentiment_jsonl_and_formats(tmp_path: Path) -> None:
    lines = [
        json.dumps({"category": "pos", "texts": "ดีมาก"}, ensure_ascii=False),
        json.dumps({"category": "neu", "texts": "เฉยๆ"}, ensure_ascii=False),
        json.dumps({"category": "q", "texts": "ไหม"}, ensure_ascii=False),
        "{not json",
        "[1, 2]",
        json.dumps({"category": "neg", "texts": "แย่"}, ensure_ascii=False),
    ]
    folder = sa_folder(tmp_path / "sa", "\n".join(lines) + "\n", suffix=".jsonl")
    message = error_of(load_sentiment, folder, "thai")
    assert (
        "train.jsonl:4: invalid JSON (Expecting" in message and "train.jsonl:5: not a JSON object" in message
    )
    stats: dict = {}
    sa = load_sentiment(folder, "thai", max_bad_fraction=0.5, stats=stats)
    assert sa["train"]["label"] == [1, 0] and stats["splits"]["train"]["dropped"] == 2
    assert stats["formats"] == {"train": "wisesight", "validation": "binary", "test": "binary"}
    malta = [
        {"Online Post": f"post {i}", "Sentiment Polarity": p, "Maltese": m}
        for i, (p, m) in enumerate(
            [("Positive", "1"), ("Negative", "0"), ("Neutral", "1"), ("Negative", "1")]
        )
    ]
    folder = sa_folder(tmp_path / "mt", "".join(json.dumps(r) + "\n" for r in malta), suffix=".jsonl")
    assert load_sentiment(folder, "maltese")["train"]["text"] == ["post 0", "post 3"]
    folder = sa_folder(tmp_path / "broken", "{oops\n[]\n", suffix=".jsonl")  # no row to detect a format by
    assert "train.jsonl: 2 of 2 rows malformed" in error_of(load_sentiment, folder, "thai")


def test_sentiment_jsonl_rows_without_a_column_or_with_a_list_are_malformed_not_a_crash(
    tmp_path: Path,
) -> None:
    rows = [{"category": "pos", "texts": "ดีมาก"}, {"texts": "ไม่มีป้าย"}, {"category": "neg"}]
    rows += [{"category": "neg", "texts": ["แย่", "มาก"]}, {"category": True, "texts": "x"}]
    rows += [{"category": "neg", "texts": "แย่"}]
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    folder = sa_folder(tmp_path / "sa", text, suffix=".jsonl")
    stats: dict = {}
    sa = load_sentiment(folder, "thai", max_bad_fraction=0.9, stats=stats)
    assert sa["train"]["text"] == ["ดีมาก", "แย่"]  # never the repr of a list
    train = folder / "train.jsonl"
    assert stats["splits"]["train"]["bad_examples"][:4] == [
        f"{train}:2: missing column (`category`)",
        f"{train}:3: missing column (`texts`)",
        f"{train}:4: not a string (`texts`)",
        f"{train}:5: not a string (`category`)",
    ]
    assert f"{train}: 4 of 6 rows malformed" in error_of(load_sentiment, folder, "thai")


def test_sentiment_header_naming_a_column_twice_is_an_error(tmp_path: Path) -> None:
    folder = sa_folder(tmp_path / "sa", "text\tlabel\tlabel\nnzuri\tpositive\tnegative\n")
    message = error_of(load_sentiment, folder, "swahili")
    assert message == f"{folder / 'train.tsv'}:1: the header names 'label' more than once"


def test_sentiment_label_map_and_unknown_header(tmp_path: Path) -> None:
    folder = sa_folder(tmp_path / "sa", tsv([("a", "good"), ("b", "bad"), ("c", "meh")], "review\tlabel"))
    assert "train.tsv:1: no known text and label columns" in error_of(load_sentiment, folder, "danish")
    folder = sa_folder(tmp_path / "sb", tsv([("a", "good"), ("b", "bad"), ("c", "meh")]))
    sa = load_sentiment(folder, "danish", label_map={"good": 1, "BAD": 0, "meh": None, 1: 1, 0: 0})
    assert sa["train"]["label"] == [1, 0]
    with pytest.raises(ValueError, match="label_map values must be 0, 1 or None"):
        load_sentiment(folder, "danish", label_map={"good": 2})


def test_sentiment_missing_and_all_dropped(tmp_path: Path) -> None:
    (tmp_path / "none").mkdir()
    assert "no sentiment files for danish" in error_of(load_sentiment, tmp_path / "none", "danish")
    neutral = "ID\ttweet\tlabel\nsw_1\tsawa tu\tneutral\nsw_2\tkawaida\tneutral\n"
    folder = sa_folder(tmp_path / "sa", neutral)
    assert "train.tsv: no usable rows (2 dropped)" in error_of(load_sentiment, folder, "swahili")


# ----------------------------------------------------------------------------------------------------------
# The hub, offline and replaced


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []

    def unreachable(path, name=None, **kwargs):
        calls.append((path, name))
        raise ConnectionError(f"Couldn't reach '{path}' on the Hub (OfflineModeIsEnabled)\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    return calls


def test_hub_offline_fails_fast_with_a_hint(offline_hub: list) -> None:
    message = error_of(load_wikiann, "hub", "mt")
    assert (
        "unimelb-nlp/wikiann (mt)" in message
        and "`data.mode: local`" in message
        and "data.wikiann" in message
    )
    message = error_of(load_sentiment, "hub", "Maltese")
    assert "dgurgurov/maltese_sa" in message and "data.sentiment" in message
    assert offline_hub == [("unimelb-nlp/wikiann", "mt"), ("dgurgurov/maltese_sa", None)]


def test_real_offline_mode_fails_fast() -> None:
    if not datasets.config.HF_HUB_OFFLINE:
        pytest.skip("datasets was imported before HF_HUB_OFFLINE=1 was set")
    assert "cannot load unimelb-nlp/wikiann (qq)" in error_of(load_wikiann, "hub", "qq")


def test_hub_schemas_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub tag ids are mapped by name, extra columns dropped, `dev` renamed, bad hub rows counted."""
    other_order = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    ner_features = datasets.Features(
        {
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=other_order)),
            "langs": datasets.List(datasets.Value("string")),
        }
    )
    sentence = {"tokens": ["Anna", "in", "Rabat"], "ner_tags": [3, 0, 1], "langs": ["mt"] * 3}
    empty = {"tokens": [], "ner_tags": [], "langs": []}
    label = datasets.ClassLabel(names=["pos", "neg"])
    sa_features = datasets.Features({"text": datasets.Value("string"), "label": label})

    def fake(path, name=None, **kwargs):
        if path == "unimelb-nlp/wikiann":
            splits = {"train": [sentence] * 199 + [empty], "validation": [sentence], "test": [sentence]}
            return datasets.DatasetDict(
                {s: datasets.Dataset.from_list(rows, features=ner_features) for s, rows in splits.items()}
            )
        rows = {"text": ["great", "awful", None], "label": [0, 1, 0]}
        return datasets.DatasetDict(
            {s: datasets.Dataset.from_dict(rows, features=sa_features) for s in ("train", "dev", "test")}
        )

    monkeypatch.setattr(datasets, "load_dataset", fake)
    stats: dict = {}
    ner = load_wikiann("hub", "mt", stats=stats)
    assert ner["test"].column_names == ["tokens", "ner_tags"]
    assert ner["test"][0]["ner_tags"] == [TAG["B-PER"], TAG["O"], TAG["B-LOC"]]
    assert ner["train"].num_rows == 199
    assert stats["splits"]["train"]["bad_examples"] == [
        "unimelb-nlp/wikiann (mt) train row 199: empty sentence"
    ]
    sa = load_sentiment("hub", "maltese", max_bad_fraction=0.5)
    assert list(sa) == SPLITS and sa["validation"]["label"] == [1, 0]
    assert sa["train"]["text"] == ["great", "awful"]
    assert "dgurgurov/maltese_sa train row 2: empty text" in error_of(load_sentiment, "hub", "maltese")
