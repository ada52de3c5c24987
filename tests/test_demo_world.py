"""Tests of lrl_utils.demo.world: determinism, atomic generation, real formats, learnable structure."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from random import Random

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402

from lrl_utils.data.conceptnet import conceptnet_sentences  # noqa: E402
from lrl_utils.data.conceptnet_templates import CONCEPTNET_TEMPLATES
from lrl_utils.data.flores_sib import SIB_LABELS, load_flores_devtest, load_sib200  # noqa: E402
from lrl_utils.data.glotcc import glotcc_documents  # noqa: E402
from lrl_utils.demo.language import (  # noqa: E402
    DEMO_LANGUAGES,
    DUMP,
    ENGLISH,
    Clause,
    NounPhrase,
    Sentence,
    WorldConfig,
    _content_keys,
    _slots,
    build_lexicon,
    concepts,
    draw_sentence,
    realise,
)
from lrl_utils.demo.world import STATEMENT_RELATIONS, ensure_world  # noqa: E402

CODES = list(DEMO_LANGUAGES)
SMALL = WorldConfig(docs_per_language=40, flores_dev=35, flores_devtest=35)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_world(tmp_path_factory.mktemp("demo"))


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.?]) ", text)


# ----------------------------------------------------------------------------------------------------------
# Generation


def test_world_is_deterministic_and_idempotent(world: Path, tmp_path: Path) -> None:
    assert world.name == f"world-{WorldConfig().hash()}"
    assert re.fullmatch(r"[0-9a-f]{8}", WorldConfig().hash())
    assert WorldConfig(seed=1).hash() != WorldConfig().hash()
    again = ensure_world(tmp_path)
    assert _digests(again) == _digests(world)  # same bytes in another folder
    stamp = (world / "world.json").stat().st_mtime_ns
    assert ensure_world(world.parent) == world and (world / "world.json").stat().st_mtime_ns == stamp
    assert [p.name for p in world.parent.iterdir()] == [world.name]  # no temporary folder left


def test_concurrent_generation_keeps_one_world(tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: ensure_world(tmp_path, SMALL), range(2)))
    assert paths[0] == paths[1] == tmp_path / f"world-{SMALL.hash()}"
    assert [p.name for p in tmp_path.iterdir()] == [paths[0].name]
    assert json.loads((paths[0] / "world.json").read_text())["config"]["docs_per_language"] == 40


def test_manifest_and_size(world: Path) -> None:
    manifest = json.loads((world / "world.json").read_text(encoding="utf-8"))
    assert manifest["config"]["seed"] == 0 and manifest["hash"] == WorldConfig().hash()
    seen = {lang["code"]: lang["seen"] for lang in manifest["languages"]}
    assert seen == {"qen": True} | {code: code in ("qab", "qad", "qae", "qaf") for code in CODES}
    assert [lang["flores_code"] for lang in manifest["languages"]] == [f"{c}_Latn" for c in ("qen", *CODES)]
    assert {lang["code"]: lang["relative_of"] for lang in manifest["languages"]}["qag"] == "qab"
    for relative, count in manifest["files"].items():
        assert (world / relative).is_file() and count > 0
    assert all(1000 <= manifest["conceptnet_edges_by_start_language"][code] <= 2000 for code in CODES)
    assert sum(p.stat().st_size for p in world.rglob("*") if p.is_file()) < 1e7


# ----------------------------------------------------------------------------------------------------------
# Every file read by the loaders of the real data


def test_conceptnet_dump(world: Path) -> None:
    sentences, stats = conceptnet_sentences(world / DUMP, CODES)
    english, _ = conceptnet_sentences(world / DUMP, ["en"])
    assert len(english["en"]) > 100  # English-start edges are in the dump, but not in any demo language
    predicates = tuple(f" {p} " for p in CONCEPTNET_TEMPLATES.values())
    for code in CODES:
        st = stats[code]
        assert 1000 <= st["kept"] == len(sentences[code]) <= 2000
        assert st["dropped"]["external_url"] > 0 and st["dropped"]["unknown_relation"] > 0
        assert st["dropped"]["same_surface"] > 0 and st["dropped"]["malformed"] == 0
        assert {"Synonym", "RelatedTo", "IsA", "Antonym", "FormOf", "HasContext"} <= set(st["per_relation"])
        assert all(s.endswith(".") and any(p in s for p in predicates) for s in sentences[code])
        letters = set(DEMO_LANGUAGES[code].letters)
        subjects = [re.split("|".join(predicates), s)[0] for s in sentences[code]]
        assert all(set(subject) <= letters for subject in subjects)  # every start node is in the language
    paper, _ = conceptnet_sentences(world / DUMP, ["qaa"], paper_compat=True)
    assert any(s.startswith(("n is ", "v is ", "a is ")) for s in paper["qaa"])  # the POS-suffix bug


def test_glotcc_documents(world: Path) -> None:
    config = WorldConfig()
    for code in CODES:
        glotcc = DEMO_LANGUAGES[code].glotcc_code
        docs = glotcc_documents(world, glotcc)
        assert glotcc_documents(world / "glotcc", glotcc) == docs
        assert len(docs) == config.docs_per_language
        low, high = config.sentences_per_doc
        assert all(low <= len(_sentences(doc)) <= high for doc in docs)
    table = pq.read_table(world / "glotcc/v1.0/qaa-Latn/qaa-Latn_0.parquet")
    assert {"content", "warc-target-uri"} <= set(table.column_names)


def test_flores_is_parallel_and_held_out(world: Path) -> None:
    devtest = {
        code: load_flores_devtest(world, DEMO_LANGUAGES[code].flores_code)["sentence"] for code in CODES
    }
    assert all(len(lines) == WorldConfig().flores_devtest for lines in devtest.values())
    assert load_flores_devtest(world / "flores200_dataset", "qac_Latn")["sentence"] == devtest["qac"]
    for lines in zip(*devtest.values(), strict=True):  # the same sentence in every language
        assert len({len(line.split()) for line in lines}) == 1
        assert 6 <= len(lines[0].split()) <= 16 and lines[0][0].isupper() and lines[0][-1] in ".?"
    for code in CODES:
        in_documents = {
            s for doc in glotcc_documents(world, DEMO_LANGUAGES[code].glotcc_code) for s in _sentences(doc)
        }
        assert not in_documents & set(devtest[code])


def test_sib200(world: Path) -> None:
    config = WorldConfig()
    dev = (world / "flores200_dataset" / "dev" / "qab_Latn.dev").read_text(encoding="utf-8").splitlines()
    devtest = load_flores_devtest(world, "qab_Latn")["sentence"]
    for code in CODES:
        sib = load_sib200(world / "sib200", DEMO_LANGUAGES[code].flores_code)
        n_train, n_dev, n_test = config.sib_split  # SIB-200's own split sizes (language.py says why)
        assert {s: sib[s].num_rows for s in sib} == {"train": n_train, "validation": n_dev, "test": n_test}
        assert (n_train, n_dev, n_test) == (701, 99, 204)
        assert set(sib["train"]["category"]) == set(SIB_LABELS)
        ids = [i for split in sib.values() for i in split["index_id"]]
        assert len(set(ids)) == sum(config.sib_split)
        assert set(ids) <= set(range(config.flores_dev + config.flores_devtest))
    qab = load_sib200(world / "sib200", "qab_Latn")["test"]
    for row in qab:  # index_id = position in dev + devtest
        i = row["index_id"]
        assert row["text"] == (dev[i] if i < config.flores_dev else devtest[i - config.flores_dev])


# ----------------------------------------------------------------------------------------------------------
# Learnable structure


def test_topics_are_learnable(world: Path) -> None:
    for code in CODES:
        sib = load_sib200(world / "sib200", DEMO_LANGUAGES[code].flores_code)
        vectorizer = CountVectorizer()
        features = vectorizer.fit_transform(sib["train"]["text"])
        model = LogisticRegression(max_iter=1000).fit(features, sib["train"]["label"])
        predictions = model.predict(vectorizer.transform(sib["test"]["text"]))
        assert f1_score(sib["test"]["label"], predictions, average="macro") > 0.6


def test_word_order_and_agreement() -> None:
    inventory = concepts(WorldConfig())
    doctor, heal, fever = "health:doctor", "health:heal", "health:fever"
    for plural in (False, True):
        clause = Clause(
            NounPhrase(None, None, doctor, plural), heal, NounPhrase(None, None, fever, False), None, None
        )
        sentence = Sentence("health", (clause,), None, False)
        for lang in DEMO_LANGUAGES.values():
            lexicon = build_lexicon(lang, inventory, seed=0)
            subject = lexicon[doctor][0] + (lang.plural if plural else "")
            verb = lexicon[heal][0] + (lang.plural if plural else lang.singular_verb)
            order = {"S": subject, "V": verb, "O": lexicon[fever][0]}
            expected = " ".join(order[slot] for slot in lang.clause_order)
            assert (
                realise(sentence, lang, {k: v[:1] for k, v in lexicon.items()}, Random(0)).lower()
                == expected + "."
            )


def test_unseen_language_has_its_own_letters_and_syllables(world: Path) -> None:
    seen = [code for code, lang in DEMO_LANGUAGES.items() if lang.seen]
    assert seen == ["qab", "qad", "qae", "qaf"]
    seen_letters = set(DEMO_LANGUAGES["qaa"].letters) | set(DEMO_LANGUAGES["qab"].letters)
    assert set(DEMO_LANGUAGES["qac"].letters) - seen_letters == {"ë", "ž"}
    text = {
        code: (world / f"flores200_dataset/dev/{code}_Latn.dev").read_text(encoding="utf-8") for code in CODES
    }
    words = {code: set(re.findall(r"[^\W\d_]+", t.lower())) for code, t in text.items()}
    bigrams = {code: {w[i : i + 2] for w in ws for i in range(len(w) - 1)} for code, ws in words.items()}
    assert not words["qac"] & (words["qaa"] | words["qab"])
    assert len(bigrams["qac"] - bigrams["qaa"] - bigrams["qab"]) > 0.4 * len(bigrams["qac"])
    with_new_letters = [w for w in words["qac"] if set(w) - seen_letters]
    assert 0.2 < len(with_new_letters) / len(words["qac"]) < 0.8


def test_english_web_text_holds_the_conceptnet_templates_and_flores_is_parallel(world: Path) -> None:
    docs = glotcc_documents(world, ENGLISH.glotcc_code)
    text = " ".join(docs)
    for relation in STATEMENT_RELATIONS:  # the base models learn the words ConceptNet sentences are made of
        assert f" {CONCEPTNET_TEMPLATES[relation]} " in text, relation
    assert "Hotel" in text or "hotel" in text  # English glosses, not made-up words
    english = load_flores_devtest(world, ENGLISH.flores_code)["sentence"]
    assert len(english) == len(load_flores_devtest(world, DEMO_LANGUAGES["qab"].flores_code)["sentence"])


def test_ner_and_sentiment_files_load_and_are_learnable(world: Path) -> None:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from lrl_utils.data.sentiment import load_sentiment
    from lrl_utils.data.wikiann import NER_TAGS, load_wikiann

    for code in CODES:
        ner = load_wikiann(world / "wikiann", code)
        assert {s: ner[s].num_rows for s in ner} == {"train": 600, "validation": 100, "test": 100}
        tags = [NER_TAGS[t] for row in ner["train"] for t in row["ner_tags"]]
        assert {t[2:] for t in tags if t != "O"} == {"PER", "ORG", "LOC"}
        for row in ner["train"]:
            assert any(t != 0 for t in row["ner_tags"])  # every sentence names something
            for token, tag in zip(row["tokens"], row["ner_tags"], strict=True):
                assert NER_TAGS[tag] == "O" or token[0].isupper()
        sa = load_sentiment(world / "sentiment", code)
        assert {s: sa[s].num_rows for s in sa} == {"train": 600, "validation": 100, "test": 200}
        assert sum(sa["train"]["label"]) == 300
        vectorizer = CountVectorizer(token_pattern=r"[^\W\d_]+")
        model = LogisticRegression(max_iter=1000).fit(
            vectorizer.fit_transform(sa["train"]["text"]), sa["train"]["label"]
        )
        assert model.score(vectorizer.transform(sa["test"]["text"]), sa["test"]["label"]) > 0.8


def test_unseen_relative_is_its_parent_respelled(world: Path) -> None:
    """qag: qab's grammar and most of its words, in another orthography, so the two share some subwords only."""
    qab, qag = DEMO_LANGUAGES["qab"], DEMO_LANGUAGES["qag"]
    assert not qag.seen and qag.relative_of == "qab" and qag.clause_order == qab.clause_order
    inventory = concepts(WorldConfig())
    parent, lexicon = build_lexicon(qab, inventory, 0), build_lexicon(qag, inventory, 0)
    assert lexicon == build_lexicon(qag, inventory, 0)  # deterministic
    cognates = [k for k in lexicon if lexicon[k] == tuple(qag.respell(w) for w in parent[k])]
    assert (
        0.7 < len(cognates) / len(lexicon) < 0.95
    )  # cognate_share 0.8 of content words, every function word
    changed = [k for k in cognates if lexicon[k] != parent[k]]
    assert len(changed) > 0.8 * len(cognates)  # the orthography changes most words, not all
    words = [w for ws in lexicon.values() for w in ws]
    assert len(words) == len(set(words))
    text = {
        c: (world / f"flores200_dataset/dev/{c}_Latn.dev").read_text(encoding="utf-8") for c in ("qab", "qag")
    }
    assert {"ž", "ë"} <= set(text["qag"]) and not {"ž", "ë", "q", "j"} & set(text["qab"])


# ----------------------------------------------------------------------------------------------------------
# The semantic variant (profile `data.world_rare_words` / `data.world_flores_topic_words`)


def test_semantic_variant_keeps_the_demo_world_and_limits_flores_topic_words(tmp_path: Path) -> None:
    # the added fields at 0 are not recorded: the demo's world keeps its name and manifest
    assert "rare_per_topic" not in WorldConfig().record()
    semantic = dataclasses.replace(SMALL, rare_per_topic=24, flores_topic_words=1)
    assert semantic.hash() != SMALL.hash() and semantic.record()["rare_per_topic"] == 24
    inventory = concepts(semantic)
    topical = [c for c in inventory if c.topic == "travel"]
    assert len(topical) == 48 and sum(c.gloss.startswith("travel-noun-") for c in topical) == 16
    root = ensure_world(tmp_path, semantic)
    assert _digests(ensure_world(tmp_path / "again", semantic)) == _digests(root)  # deterministic
    assert json.loads((root / "world.json").read_text())["config"]["flores_topic_words"] == 1
    slots, rng = _slots(inventory), Random(0)
    for topic in SIB_LABELS:  # FLORES structures: exactly one topic word; documents: no limit
        for _ in range(20):
            keys = _content_keys(draw_sentence(rng, slots, topic, semantic.flores_topic_words))
            assert sum(k.startswith(f"{topic}:") for k in keys) == 1
    many = [_content_keys(draw_sentence(rng, slots, "travel")) for _ in range(50)]
    assert max(sum(k.startswith("travel:") for k in keys) for keys in many) > 1
    with pytest.raises(ValueError, match="rare_per_topic"):
        concepts(dataclasses.replace(SMALL, rare_per_topic=-1))


def test_profile_world_settings_reach_the_world(tmp_path: Path) -> None:
    from lrl_utils.config.data_settings import DataSettings
    from lrl_utils.demo.config import world_config

    data = DataSettings(mode="demo", world_seed=3, world_rare_words=12, world_flores_topic_words=1)
    assert world_config(data) == WorldConfig(seed=3, rare_per_topic=12, flores_topic_words=1)
    assert world_config(DataSettings(mode="demo")) == WorldConfig()


# ----------------------------------------------------------------------------------------------------------
# Named entities in the web text (profile `data.world_web_names`)


def _ner_entities(path: Path) -> list[tuple[str, str]]:
    """(type, first token) of every entity in a CoNLL file."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [(tag[2:], token) for token, tag in rows if tag.startswith("B-")]


def test_web_names_put_the_ner_entities_into_the_web_text(tmp_path: Path) -> None:
    from lrl_utils.demo.tasks import KNOWN_NAMES, NAME_KINDS, name_inventory

    assert "web_names" not in WorldConfig().record()  # off: the older worlds keep their names and bytes
    named = dataclasses.replace(SMALL, web_names=0.5)
    assert named.hash() != SMALL.hash() and named.record()["web_names"] == 0.5
    qab, qag = (name_inventory(DEMO_LANGUAGES[c], SMALL.seed) for c in ("qab", "qag"))
    assert {k: len(v) for k, v in qab.items()} == NAME_KINDS
    assert len({n for names in qab.values() for n in names}) == sum(NAME_KINDS.values())  # all distinct
    relative = DEMO_LANGUAGES["qag"]  # the unseen relative writes its parent's names in its own spelling
    assert qag["given"][0] == relative.respell(qab["given"][0].lower()).capitalize()
    root = ensure_world(tmp_path, named)
    assert _digests(ensure_world(tmp_path / "again", named)) == _digests(root)  # deterministic
    plain = ensure_world(tmp_path / "plain", SMALL)
    for code, names in (("qab", qab), ("qag", qag)):
        known = {n for kind in names.values() for n in kind}
        text = " ".join(glotcc_documents(root, f"{code}-Latn"))
        inner = set(re.findall(r"(?<![.?!]) ([A-Z]\S*)", text))  # capitalised words inside sentences
        assert len(inner & known) > 0.8 * len(known)
        old = " ".join(glotcc_documents(plain, f"{code}-Latn"))
        assert not re.findall(r"(?<![.?!]) ([A-Z][a-z]+)", old)  # the older worlds: no names on the web
        entities = _ner_entities(root / "wikiann" / code / "train")
        share = sum(first in known for _, first in entities) / len(entities)
        assert KNOWN_NAMES - 0.1 < share <= 1.0
        per = [first for kind, first in entities if kind == "PER"]
        assert sum(first in names["given"] for first in per) > 0.8 * len(per)  # a person: given + family
    flores = (root / "flores200_dataset/devtest/qab_Latn.devtest").read_text()
    assert flores == (plain / "flores200_dataset/devtest/qab_Latn.devtest").read_text()  # FLORES: no names


def test_profile_web_names_reach_the_world() -> None:
    from lrl_utils.config.data_settings import DataSettings
    from lrl_utils.demo.config import world_config

    assert world_config(DataSettings(mode="demo", world_web_names=0.5)) == WorldConfig(web_names=0.5)


# ----------------------------------------------------------------------------------------------------------
# The unseen relative's documents in its parent's web corpus (profile `data.world_mislabeled_relative`)


def test_mislabeled_relative_documents_sit_in_the_parent_corpus(tmp_path: Path) -> None:
    assert (
        "mislabeled_relative" not in WorldConfig().record()
    )  # off: the older worlds keep their names and bytes
    leaky = dataclasses.replace(SMALL, mislabeled_relative=0.1)
    assert leaky.hash() != SMALL.hash() and leaky.record()["mislabeled_relative"] == 0.1
    root = ensure_world(tmp_path, leaky)
    assert _digests(ensure_world(tmp_path / "again", leaky)) == _digests(root)  # deterministic
    plain = ensure_world(tmp_path / "plain", SMALL)
    n = round(0.1 * SMALL.docs_per_language)
    parent, own = glotcc_documents(root, "qab-Latn"), glotcc_documents(plain, "qab-Latn")
    assert len(parent) == SMALL.docs_per_language + n
    assert [d for d in parent if d in own] == own  # the parent's own documents, in their order
    inventory = concepts(SMALL)
    words = {  # words only one of the two writes
        code: {w for ws in build_lexicon(DEMO_LANGUAGES[code], inventory, SMALL.seed).values() for w in ws}
        for code in ("qab", "qag")
    }
    only_qag, only_qab = words["qag"] - words["qab"], words["qab"] - words["qag"]
    others = [d for d in parent if d not in own]
    assert len(others) == n
    for doc in others:  # the relative's text: its words, none of the parent's own
        tokens = set(re.findall(r"\w+", doc.lower()))
        assert tokens & only_qag and not tokens & only_qab, doc
    positions = [i for i, d in enumerate(parent) if d not in own]
    assert positions[0] > 0 and positions[-1] < len(parent) - 1  # spread among the parent's documents
    assert min(b - a for a, b in zip(positions, positions[1:], strict=False)) > 1
    table = pq.read_table(root / "glotcc/v1.0/qab-Latn/qab-Latn_0.parquet").to_pydict()
    assert set(table["identification-language"]) == {"qab_Latn"}  # labelled as the parent, as LID does
    assert len(set(table["warc-target-uri"])) == len(parent)
    manifest = json.loads((root / "world.json").read_text())
    assert manifest["files"]["glotcc/v1.0/qab-Latn/qab-Latn_0.parquet"] == len(parent)
    for code in ("qag", "qad"):  # every other corpus as in the world without them
        assert glotcc_documents(root, f"{code}-Latn") == glotcc_documents(plain, f"{code}-Latn")
    flores = set((root / "flores200_dataset/devtest/qag_Latn.devtest").read_text().splitlines())
    assert not flores & {s for d in others for s in re.split(r"(?<=[.?!]) ", d)}  # FLORES stays unseen


def test_profile_mislabeled_relative_reaches_the_world() -> None:
    from lrl_utils.config.data_settings import DataSettings
    from lrl_utils.demo.config import world_config

    data = DataSettings(mode="demo", world_mislabeled_relative=0.033)
    assert world_config(data) == WorldConfig(mislabeled_relative=0.033)


# ----------------------------------------------------------------------------------------------------------
# Evaluative web documents (profile `data.world_web_polarity`)


def _with_setting(tmp_path: Path, name: str, value: float, docs: int) -> tuple[WorldConfig, Path, Path]:
    """(config, world, the same world without the setting) of a world setting that is off by default: off, the
    older worlds keep their names and bytes; on, the world is another, made the same way twice."""
    assert name not in WorldConfig().record()
    config = dataclasses.replace(SMALL, docs_per_language=docs, **{name: value})
    assert config.hash() != SMALL.hash() and config.record()[name] == value
    root = ensure_world(tmp_path, config)
    assert _digests(ensure_world(tmp_path / "again", config)) == _digests(root)  # deterministic
    return config, root, ensure_world(tmp_path / "plain", dataclasses.replace(SMALL, docs_per_language=docs))


def test_evaluative_documents_keep_to_one_side(tmp_path: Path) -> None:
    from lrl_utils.demo.tasks import NEGATIVE, POSITIVE

    sided, root, plain = _with_setting(tmp_path, "web_polarity", 0.5, docs=100)
    inventory = concepts(sided)
    for code in ("qab", "qae", "qag"):
        lexicon = build_lexicon(DEMO_LANGUAGES[code], inventory, sided.seed)
        good, bad = ({w for key in keys for w in lexicon[key]} for keys in (POSITIVE, NEGATIVE))

        def sides(docs: list[str], good=good, bad=bad) -> list[tuple[int, int]]:
            tokens = [re.findall(r"\w+", d.lower()) for d in docs]
            return [(sum(w in good for w in t), sum(w in bad for w in t)) for t in tokens]

        counts, before = (
            sides(glotcc_documents(root, f"{code}-Latn")),
            sides(glotcc_documents(plain, f"{code}-Latn")),
        )
        one_sided = [(p, n) for p, n in counts if (p >= 3) != (n >= 3) and min(p, n) == 0]
        assert 0.3 * len(counts) < len(one_sided) < 0.7 * len(counts)  # about half the documents take a side
        assert sum(p > 0 for p, n in one_sided) > 0.3 * len(one_sided) < sum(n > 0 for p, n in one_sided)
        mixed = lambda c: sum(p > 0 and n > 0 for p, n in c)  # noqa: E731
        assert mixed(counts) < mixed(before)  # the rest mix good and bad by topic, as before
        assert sum(p + n for p, n in counts) > 2 * sum(p + n for p, n in before)
    flores = set((root / "flores200_dataset/devtest/qab_Latn.devtest").read_text().splitlines())
    web = {s for d in glotcc_documents(root, "qab-Latn") for s in re.split(r"(?<=[.?!]) ", d)}
    assert not flores & web  # FLORES stays unseen


def test_profile_web_polarity_reaches_the_world() -> None:
    from lrl_utils.config.data_settings import DataSettings
    from lrl_utils.demo.config import world_config

    assert world_config(DataSettings(mode="demo", world_web_polarity=0.5)) == WorldConfig(web_polarity=0.5)


# ----------------------------------------------------------------------------------------------------------
# Code-switched web text (profile `data.world_web_code_switch`)


def test_code_switched_documents_borrow_english_topic_words(tmp_path: Path) -> None:
    mixed, root, plain = _with_setting(tmp_path, "web_code_switch", 0.3, docs=60)
    inventory = concepts(mixed)
    topical = {c.key for c in inventory if c.topic is not None}
    english = build_lexicon(ENGLISH, inventory, mixed.seed)
    borrowed = {w for key in topical for w in english[key]}
    other_english = {w for key, words in english.items() if key not in topical for w in words}
    for code in ("qab", "qag"):
        docs, before = glotcc_documents(root, f"{code}-Latn"), glotcc_documents(plain, f"{code}-Latn")
        assert len(docs) == len(before)
        tokens = [re.findall(r"\w+", d.lower()) for d in docs]
        lang = DEMO_LANGUAGES[code]
        endings = [e for e in (lang.plural, lang.singular_verb, lang.plural_verb) if e]

        def stems(
            t: list[str], endings=endings
        ) -> set[str]:  # English topic words, with the language's endings
            return {
                w
                for w in t
                if w in borrowed or any(w.endswith(e) and w[: -len(e)] in borrowed for e in endings)
            }

        share = sum(len(stems(t)) > 0 for t in tokens) / len(tokens)
        assert share > 0.5  # most documents borrow some English topic words ...
        assert not any(
            stems(re.findall(r"\w+", d.lower())) for d in before
        )  # ... which the plain world lacks
        assert not any(w in other_english - borrowed for t in tokens for w in t)  # function words stay
    flores = (root / "flores200_dataset/devtest/qag_Latn.devtest").read_text()
    assert (
        flores == (plain / "flores200_dataset/devtest/qag_Latn.devtest").read_text()
    )  # translations stay whole


def test_profile_web_code_switch_reaches_the_world() -> None:
    from lrl_utils.config.data_settings import DataSettings
    from lrl_utils.demo.config import world_config

    data = DataSettings(mode="demo", world_web_code_switch=0.3)
    assert world_config(data) == WorldConfig(web_code_switch=0.3)


# ----------------------------------------------------------------------------------------------------------
# Sentiment words the training split never labels (profile `data.world_sentiment_held_out`)


def test_held_out_sentiment_adjectives_label_only_development_and_test(tmp_path: Path) -> None:
    from lrl_utils.demo.tasks import NEGATIVE, POSITIVE

    held, root, plain = _with_setting(tmp_path, "sentiment_held_out", 2, docs=20)
    inventory = concepts(held)
    for code in ("qab", "qag"):
        lexicon = build_lexicon(DEMO_LANGUAGES[code], inventory, held.seed)
        kept = {w for key in POSITIVE[:2] + NEGATIVE[:2] for w in lexicon[key]}
        unseen = {w for key in POSITIVE[2:] + NEGATIVE[2:] for w in lexicon[key]} - kept

        def labelled(world: Path, split: str, code=code, kept=kept, unseen=unseen) -> tuple[int, int]:
            """(rows whose words include a kept adjective, rows whose evaluative words are all held out)"""
            rows = (world / f"sentiment/{code}/{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
            words = [set(re.findall(r"\w+", row.split("\t")[0].lower())) for row in rows]
            return sum(bool(w & kept) for w in words), sum(bool(w & unseen) and not w & kept for w in words)

        train_kept, train_unseen = labelled(root, "train")
        assert train_kept == 600 and train_unseen == 0  # every training label rests on a kept adjective
        test_kept, test_unseen = labelled(root, "test")
        assert 0.2 * 200 < test_unseen < 0.6 * 200  # test sentences often rest on held-out words alone
        assert labelled(plain, "train")[1] > 0  # without the setting, training uses all adjectives
    for relative in ("glotcc/v1.0/qab-Latn/qab-Latn_0.parquet", "glotcc/v1.0/qag-Latn/qag-Latn_0.parquet"):
        assert (root / relative).read_bytes() == (
            plain / relative
        ).read_bytes()  # pre-training text unchanged


def test_profile_sentiment_held_out_reaches_the_world() -> None:
    from lrl_utils.config.data_settings import DataSettings
    from lrl_utils.demo.config import world_config

    assert world_config(DataSettings(mode="demo", world_sentiment_held_out=2)) == WorldConfig(
        sentiment_held_out=2
    )
