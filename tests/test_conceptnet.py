"""Tests of lrl_utils.data.conceptnet: the real sample (read in place) and generated dumps with edge cases."""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path

import pytest

from lrl_utils.data import conceptnet_dump
from lrl_utils.data.conceptnet import conceptnet_sentences, convert_conceptnet
from lrl_utils.data.conceptnet_templates import CONCEPTNET_TEMPLATES, surface_form
from lrl_utils.data.sources import DataSourceError

CN_LANGUAGES = ["sw", "ne", "si", "he", "ro", "sk", "da", "az", "lv", "th"]


def _uses_a_template(sentence: str) -> bool:
    return sentence.endswith(".") and any(f" {p} " in sentence for p in CONCEPTNET_TEMPLATES.values())


def _line(relation: str, start: str, end: str) -> str:
    meta = json.dumps({"dataset": "/d/wiktionary/en", "license": "cc:by-sa/4.0", "weight": 1.0})
    return f"/a/[{relation}/,{start}/,{end}/]\t{relation}\t{start}\t{end}\t{meta}\n"


def _both(dump: Path, languages: list[str], **kwargs) -> tuple[dict, dict, dict]:
    """conceptnet_sentences by blocks and line by line: the results must be identical."""
    fast_dump: dict = {}
    fast = conceptnet_sentences(dump, languages, dump_stats=fast_dump, **kwargs)
    slow_dump: dict = {}
    slow = conceptnet_sentences(dump, languages, dump_stats=slow_dump, line_by_line=True, **kwargs)
    assert fast == slow
    fast_dump.pop("blocks_read_line_by_line"), slow_dump.pop("blocks_read_line_by_line")
    assert fast_dump == slow_dump
    return fast[0], fast[1], fast_dump


# ----------------------------------------------------------------------------------------------------------
# The real sample


def test_conceptnet_real_sample(shared: Path) -> None:
    dump = shared / "conceptnet" / "multi" / "assertions.csv"
    sentences, stats, whole = _both(dump, CN_LANGUAGES)
    assert set(sentences) == set(stats) == set(CN_LANGUAGES)
    kept = [s for lang in CN_LANGUAGES for s in sentences[lang]]
    assert len(kept) >= 6 and all(_uses_a_template(s) for s in kept)
    assert "eksamen is a synonym of test." in sentences["da"]  # /c/da/eksamen/n/wp/uddannelse -> eksamen
    assert sum(st["dropped"]["external_url"] for st in stats.values()) >= 6
    assert stats["da"]["dropped"]["same_surface"] == 1  # /c/da/test/n/wn/act -> /c/en/test/n/wn/act
    for st in stats.values():
        assert st["kept"] + sum(st["dropped"].values()) == st["edges_in_language"]
        assert st["kept"] == sum(st["per_relation"].values())
    assert whole["lines"] == 300 and whole["malformed"] == 0 and whole["bad_examples"] == []
    paper, _, _ = _both(dump, ["da"], paper_compat=True)
    assert "uddannelse is a synonym of assessment." in paper["da"]


def test_conceptnet_real_sample_gzipped_in_pieces(shared: Path, tmp_path: Path, monkeypatch) -> None:
    """The real lines, gzipped as two members and read in blocks of 2 KiB: the same as the plain file."""
    data = (shared / "conceptnet" / "multi" / "assertions.csv").read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 1
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(data[:cut]) + gzip.compress(data[cut:]))
    plain = conceptnet_sentences(shared / "conceptnet" / "multi" / "assertions.csv", CN_LANGUAGES)
    monkeypatch.setattr(conceptnet_dump, "BLOCK_BYTES", 2048)
    assert _both(tmp_path / "a.csv.gz", CN_LANGUAGES)[:2] == plain


# ----------------------------------------------------------------------------------------------------------
# Generated dumps

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
    "garbage line without tabs\n",  # malformed, no language
    "\n",  # blank: neither
]
BAD_UTF8 = _line("/r/Synonym", "/c/qaa/k\xe9lma", "/c/en/word").encode().replace("é".encode(), b"\xff")


@pytest.fixture(params=["plain", "gz"])
def dump(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    data = "".join(DUMP_LINES).encode() + BAD_UTF8
    path = tmp_path / ("assertions.csv.gz" if request.param == "gz" else "assertions.csv")
    path.write_bytes(gzip.compress(data) if request.param == "gz" else data)
    return path


def test_conceptnet_filters_and_counts(dump: Path) -> None:
    sentences, stats, whole = _both(dump, ["qaa", "qab"], max_bad_fraction=0.5)
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
    assert whole["lines"] == 13 and whole["blank_lines"] == 1 and whole["malformed"] == 3
    assert whole["malformed_by_reason"] == {"invalid UTF-8 in a URI": 1, "not 5 tab-separated columns": 2}
    assert whole["bad_fraction"] == pytest.approx(3 / 12)
    assert [e.split(": ")[0].rsplit(":", 1)[1] for e in whole["bad_examples"]] == ["10", "11", "13"]
    assert whole["bad_examples"][0].startswith(f"{dump}:10: not 5 tab-separated columns (4 columns)")
    paper, paper_stats, _ = _both(dump, ["qaa"], paper_compat=True, max_bad_fraction=0.5)
    assert paper["qaa"] == ["n is a synonym of word.", "ilma is related to ilmu.", "n is a synonym of radju."]
    assert paper_stats["qaa"]["dropped"]["same_surface"] == 1


def test_conceptnet_fails_above_the_bad_fraction(dump: Path) -> None:
    with pytest.raises(DataSourceError) as error:
        conceptnet_sentences(dump, ["qaa"], max_bad_fraction=0.2)
    message = str(error.value)
    assert "3 of 12 lines malformed" in message and "`data.max_bad_fraction` 0.2" in message
    assert f"{dump}:10: not 5 tab-separated columns" in message and "\n" not in message


def test_conceptnet_errors(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="not found"):
        conceptnet_sentences(tmp_path / "nope.csv.gz", ["qaa"])
    with pytest.raises(DataSourceError, match="not on the Hugging Face hub.*conceptnet-assertions-5.7.0"):
        conceptnet_sentences("hub", ["mt"])
    (tmp_path / "a.csv").write_text(DUMP_LINES[0], encoding="utf-8")
    with pytest.raises(ValueError, match="language code 'q/a'"):
        conceptnet_sentences(tmp_path / "a.csv", ["q/a"])
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(gzip.compress("".join(DUMP_LINES[:9] * 50).encode())[:-40])
    with pytest.raises(
        DataSourceError, match=r"cut\.csv\.gz:\d+: cannot read the dump \(compressed file ended"
    ):
        conceptnet_sentences(truncated, ["qaa"])


def _random_dump(rng: random.Random, n: int, corrupt: bool) -> bytes:
    """Lines of 3 requested and 2 other languages, some with odd URIs; some broken when `corrupt`."""
    relations = [*CONCEPTNET_TEMPLATES][:6] + ["ExternalURL", "NotDesires", "dbpedia/genre", "x/Synonym"]
    words = ["kelma", "ilma", "ice_cream", "ħobż", "n", "test"]
    lines = []
    for _ in range(n):
        odd = rng.random() < 0.01  # URIs without a word (malformed in a requested language)
        start = f"/c/{rng.choice(['qa', 'qb', 'qcc', 'en', 'fr'])}/{rng.choice(words)}"
        start += rng.choice(["", "/n", "/v/wn/act"] + ["/n/", "/"] * odd)
        end = rng.choice(["/c/en/", "/c/qa/", "http://x.org/"] + ["/c/", "/r/"] * odd)
        end += rng.choice(words + [""] * odd) + rng.choice(["", "/n", "/a/wp/x"])
        line = _line(f"/r/{rng.choice(relations)}", start, end).encode()
        if corrupt and rng.random() < 0.01:
            line = rng.choice(
                [
                    line.replace(b"\t{", b"{"),  # 4 columns
                    line.replace(b"\t/r/", b"\t\t/r/"),  # 6 columns
                    line.replace(b"kelma", b"k\xffma"),  # invalid UTF-8
                    line.replace(b"/r/", b"r/"),  # relation not a /r/ URI
                    b"\n",
                    b"junk\n",
                ]
            )
        lines.append(line.replace(b"\n", b"\r\n") if corrupt and rng.random() < 0.01 else line)
    return b"".join(lines)[: -1 if corrupt else None]  # corrupt: no line end at the end


@pytest.mark.parametrize("corrupt", [False, True])
@pytest.mark.parametrize("paper_compat", [False, True])
def test_blocks_and_lines_agree_on_random_dumps(tmp_path: Path, monkeypatch, corrupt, paper_compat) -> None:
    monkeypatch.setattr(
        conceptnet_dump, "BLOCK_BYTES", 4096
    )  # many blocks, some read fast, some line by line
    path = tmp_path / "dump.csv.gz"
    path.write_bytes(gzip.compress(_random_dump(random.Random(7), 3000, corrupt)))
    sentences, stats, whole = _both(
        path, ["qa", "qb", "qcc"], paper_compat=paper_compat, max_bad_fraction=1.0
    )
    assert sum(st["kept"] for st in stats.values()) > 300
    assert all(st["kept"] + sum(st["dropped"].values()) == st["edges_in_language"] for st in stats.values())
    assert ("not 5 tab-separated columns" in whole["malformed_by_reason"]) == corrupt
    assert whole["malformed_by_reason"]["no word in the start or end URI"] > 0  # e.g. `/c/qa/` or `/r/x`
    blocks: dict = {}
    conceptnet_sentences(path, ["qa"], paper_compat=paper_compat, max_bad_fraction=1.0, dump_stats=blocks)
    assert 0 < blocks["blocks_read_line_by_line"] < len(list(conceptnet_dump._read_blocks(path))) / 2


def test_convert_conceptnet_writes_files_all_or_nothing(dump: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = convert_conceptnet(dump, ["qaa", "qab", "zz"], out, max_bad_fraction=0.5)
    assert sorted(p.name for p in out.iterdir()) == ["qaa.txt", "qab.txt", "zz.txt"]
    assert (out / "qab.txt").read_text(encoding="utf-8") == "ilmu is a synonym of water.\n"
    assert (out / "zz.txt").read_text(encoding="utf-8") == ""
    assert result["languages"]["qaa"]["kept"] == 3 and result["dump"]["malformed"] == 3
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataSourceError, match="malformed"):
        convert_conceptnet(dump, ["qaa", "qab"], out, max_bad_fraction=0.1)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched, no temporary file left
    with pytest.raises(DataSourceError):
        convert_conceptnet(dump, ["qaa"], tmp_path / "fresh", max_bad_fraction=0.0)
    assert list((tmp_path / "fresh").iterdir()) == []


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


def test_the_switch_interval_is_restored(dump: Path) -> None:
    before = sys.getswitchinterval()
    conceptnet_sentences(dump, ["qaa"], max_bad_fraction=0.5)
    assert sys.getswitchinterval() == before
    with pytest.raises(DataSourceError):
        conceptnet_sentences(dump, ["qaa"], max_bad_fraction=0.0)
    scan = iter(conceptnet_dump._Scan(dump, ["qaa"], False, 1.0, False))
    next(scan)  # abandoned after its first block
    scan.close()
    assert sys.getswitchinterval() == before


def test_fetch_dump_downloads_once_and_fails_fast_offline(tmp_path):
    from lrl_utils.data.conceptnet_dump import fetch_dump
    from lrl_utils.data.sources import DataSourceError

    source = tmp_path / "src" / "assertions.csv.gz"
    source.parent.mkdir()
    source.write_bytes(b"payload")
    cache = tmp_path / "cache"
    got = fetch_dump(source.as_uri(), folder=cache)
    assert got == cache / "assertions.csv.gz" and got.read_bytes() == b"payload"
    source.unlink()
    assert fetch_dump(source.as_uri(), folder=cache) == got  # cached: no second download
    with pytest.raises(DataSourceError, match="data.conceptnet"):
        fetch_dump("http://127.0.0.1:9/none.csv.gz", folder=cache)
    assert sorted(p.name for p in cache.iterdir()) == ["assertions.csv.gz"]  # no partial file left


def test_conceptnet_splits_writes_one_language_and_reports_like_glotcc(tmp_path: Path) -> None:
    from lrl_utils.data.conceptnet import conceptnet_splits
    from lrl_utils.data.sources import load_text_splits

    lines = [_line("/r/Synonym", f"/c/qaa/kelma{i}", f"/c/en/word{i}") for i in range(20)]
    dump = tmp_path / "assertions.csv.gz"
    dump.write_bytes(gzip.compress(("".join(lines) + "broken line\n").encode()))
    out = tmp_path / "qaa"
    stats = conceptnet_splits(dump, "qaa", out, seed=42, max_bad_fraction=0.1)
    assert stats["kept"] == 20 and stats["malformed"] == 1 and stats["dump"]["lines"] == 21
    assert {k: v["documents"] for k, v in stats["splits"].items()} == {"train": 16, "val": 2, "test": 2}
    written = load_text_splits(out)
    texts = sorted(t for split in written.values() for t in split["text"])
    assert texts == sorted(f"kelma{i} is a synonym of word{i}." for i in range(20))
    with pytest.raises(DataSourceError, match="no ConceptNet sentence for language code 'zz'"):
        conceptnet_splits(dump, "zz", tmp_path / "zz", max_bad_fraction=0.1)
    assert not (tmp_path / "zz").exists() or not any((tmp_path / "zz").iterdir())
    few = tmp_path / "few.csv"  # a language with a few sentences: too few to hold any out
    few.write_text("".join(lines[:1] + [_line("/r/Synonym", "/c/qab/x", "/c/en/y")]), encoding="utf-8")
    with pytest.raises(DataSourceError) as err:
        conceptnet_splits(few, "qab", tmp_path / "qab")
    assert str(err.value) == (
        f"{few}: only 1 ConceptNet sentence for language code 'qab', too few to split 80/10/10 into train, "
        "validation and test"
    )
    assert not (tmp_path / "qab").exists() or not any((tmp_path / "qab").iterdir())


# ----------------------------------------------------------------------------------------------------------
# Sentences already verbalised (the original's train_cn_<iso2>.csv / val_cn_<iso2>.csv), instead of a dump


def _raw_texts(file: Path) -> list[str]:
    import csv

    with open(file, newline="", encoding="utf-8-sig") as f:
        return [row[0] for row in list(csv.reader(f))[1:] if row]


@pytest.mark.parametrize(("language", "code"), [("mlt", "mt"), ("bul", "bg")])
def test_verbalised_sentences_of_real_languages_keep_their_splits(shared, tmp_path, language, code) -> None:
    from lrl_utils.data.conceptnet import conceptnet_splits
    from lrl_utils.data.sources import load_text_splits

    folder = shared / "conceptnet"  # <language>/cn_sentences_{train,val}.csv: named by the registry key
    stats = conceptnet_splits(folder, code, tmp_path / "out", language=language)
    written = load_text_splits(tmp_path / "out")
    for split, stem in (("train", "train"), ("validation", "val")):
        assert list(written[split]["text"]) == _raw_texts(folder / language / f"cn_sentences_{stem}.csv")
    assert len(written["test"]) == 0 and stats["splits"]["test"]["documents"] == 0  # the original had none
    assert stats["kept"] == 600 and stats["malformed"] == 0
    flat = tmp_path / "flat"  # the original's own names, side by side
    flat.mkdir()
    for stem in ("train", "val"):
        (flat / f"{stem}_cn_{code}.csv").write_bytes(
            (folder / language / f"cn_sentences_{stem}.csv").read_bytes()
        )
    conceptnet_splits(flat, code, tmp_path / "flat-out")
    assert list(load_text_splits(tmp_path / "flat-out")["train"]["text"]) == list(written["train"]["text"])


def test_verbalised_sentences_quoting_and_errors(tmp_path: Path) -> None:
    from lrl_utils.data.conceptnet import conceptnet_splits
    from lrl_utils.data.sources import load_text_splits

    (tmp_path / "train_cn_mt.csv").write_text(
        'text\n"dar, kamra is related to house."\n"""kelma"" is a word."\n\nilma is a synonym of water.\n',
        encoding="utf-8",
    )
    (tmp_path / "val_cn_mt.csv").write_text("\ufefftext\r\nbaħar is related to sea.\r\n", encoding="utf-8")
    conceptnet_splits(tmp_path, "mt", tmp_path / "out")
    splits = load_text_splits(tmp_path / "out")
    assert list(splits["train"]["text"]) == [
        "dar, kamra is related to house.",
        '"kelma" is a word.',  # CSV quoting undone (doubled quotes, as pandas writes them)
        "ilma is a synonym of water.",
    ]
    assert list(splits["validation"]["text"]) == ["baħar is related to sea."]
    (tmp_path / "train_cn_mt.csv").write_text("text\nok sentence.\na,b\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"train_cn_mt.csv:3: 2 fields, expected 1 \(text\)$"):
        conceptnet_splits(tmp_path, "mt", tmp_path / "bad")
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    with pytest.raises(
        DataSourceError,
        match=r"no ConceptNet sentences or edges for 'sw' \(looked for .*train_cn_sw.csv.*cn_data_sw.json",
    ):
        conceptnet_splits(tmp_path, "sw", tmp_path / "none")
    (tmp_path / "train_cn_ro.csv").write_text("text\nx is y.\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"no ConceptNet validation sentences for 'ro' next to"):
        conceptnet_splits(tmp_path, "ro", tmp_path / "ro")


@pytest.mark.parametrize("paper_compat", [False, True])
def test_edge_lists_verbalise_as_the_dump_does(shared, tmp_path, paper_compat) -> None:
    """Uyghur's API edges (`uig/edges.jsonl`): the sentences are those of a dump holding the same edges once."""
    from lrl_utils.data.conceptnet import conceptnet_splits
    from lrl_utils.data.conceptnet_sentences import _nodes, edge_sentences
    from lrl_utils.data.sources import load_text_splits

    file = shared / "conceptnet" / "uig" / "edges.jsonl"
    edges = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = {e["uri"]: "\t".join((e["uri"], *_nodes(e), "{}")) for e in edges}  # each edge once, as in a dump
    dump = tmp_path / "assertions.csv"
    dump.write_text("".join(row + "\n" for row in rows.values()), encoding="utf-8")
    expected, stats = conceptnet_sentences(dump, ["ug"], paper_compat)
    got, counts = edge_sentences(file, "ug", paper_compat)
    assert got == expected["ug"] and len(got) > 100
    assert {k: counts[k] for k in ("edges_in_language", "kept")} == {
        k: stats["ug"][k] for k in ("edges_in_language", "kept")
    }
    stats = conceptnet_splits(
        shared / "conceptnet", "ug", tmp_path / "out", language="uig", paper_compat=paper_compat
    )
    written = load_text_splits(tmp_path / "out")
    assert sorted(t for split in written.values() for t in split["text"]) == sorted(got)
    assert stats["splits"]["train"]["documents"] == round(0.8 * len(got))  # split 80/10/10, as a dump's


def test_edge_lists_as_one_json_document_and_their_errors(tmp_path: Path) -> None:
    from lrl_utils.data.conceptnet import conceptnet_splits

    edge = {"rel": "/r/Synonym", "start": "/c/mt/kelma", "end": "/c/en/word"}
    concepts = {
        f"kelma{i}": [{**edge, "start": f"/c/mt/kelma{i}", "end": f"/c/en/word{i}"}] for i in range(20)
    }
    concepts["kelma0"].append(concepts["kelma0"][0])  # listed twice (by both concepts): counted once
    (tmp_path / "cn_data_mt.json").write_text(json.dumps(concepts, ensure_ascii=False), encoding="utf-8")
    stats = conceptnet_splits(tmp_path, "mt", tmp_path / "out")
    assert stats["kept"] == 20 and stats["per_relation"] == {"Synonym": 20}
    (tmp_path / "other" / "mlt").mkdir(parents=True)
    (tmp_path / "other" / "mlt" / "edges.jsonl").write_text(
        json.dumps(edge) + "\n{broken\n", encoding="utf-8"
    )
    with pytest.raises(DataSourceError, match=r"other/mlt/edges.jsonl:2: invalid JSON"):
        conceptnet_splits(tmp_path / "other", "mt", tmp_path / "x", language="mlt")
    # an empty or non-string `uri` is no uri: one line naming the edge (before: KeyError, unhashable list)
    for odd in ("", ["/a/[/r/Synonym/,/c/mt/kelma/,/c/en/word/]"], {"x": 1}, None):
        broken = {"uri": odd, "rel": "/r/Synonym", "end": "/c/en/word"}
        (tmp_path / "other" / "mlt" / "edges.jsonl").write_text(
            json.dumps(edge) + "\n" + json.dumps(broken) + "\n", encoding="utf-8"
        )
        with pytest.raises(DataSourceError, match=r"other/mlt/edges.jsonl:2: not a ConceptNet edge"):
            conceptnet_splits(tmp_path / "other", "mt", tmp_path / "x", language="mlt")
        lines = [{**edge, "uri": odd, "start": f"/c/mt/kelma{i}"} for i in range(10)]  # start and end: enough
        (tmp_path / "other" / "mlt" / "edges.jsonl").write_text(
            "".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8"
        )
        assert conceptnet_splits(tmp_path / "other", "mt", tmp_path / "y", language="mlt")["kept"] == 10
