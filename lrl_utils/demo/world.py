"""Seeded synthetic languages written in the real on-disk formats: the offline demo world.

Seven private-use languages (ISO 639-3 `qaa`-`qag`) and the world's English (`qen`: the concepts' English
glosses) share one concept inventory: the 7 SIB-200 topics x `concepts_per_topic` content words with English
glosses, plus general words and function words. Each synthetic language realises every concept with its own
words (built from its own syllables), has its own word order (SVO / SOV / VSO), noun-phrase order and
adpositions, and one agreement rule: a plural noun takes a suffix, and the verb repeats that suffix when its
subject is plural. Which languages a tiny model saw, and how much of each, is the profile's `base_model` (the
demo: `qen` and graded shares of `qab`, `qad`, `qae`, `qaf`). `qaa` is unseen but written with the seen
languages' letters; `qac` is unseen, with consonant clusters the others lack and two letters they never use
(ë, ž), so tokenizers trained on them fragment it; `qag` is unseen, a close relative of `qab` in its own
orthography (`language.relative`). (A WordPiece vocabulary without ë/ž turns words holding them into [UNK];
the tokenizers get those letters as initial alphabet, as mBERT's vocabulary covers scripts it hardly saw.)

Sentences are drawn per topic (most content words from that topic), so topic classification and masked-LM
prediction are both learnable. With `WorldConfig.web_names`, a share of the web sentences name entities of the
language's name inventory (`tasks.name_inventory`), which the NER data tag. With
`WorldConfig.mislabeled_relative`, the seen parent's web corpus also holds documents of its unseen relative
(`_mislabeled`), as language identification confuses close relatives. The world is written in the layouts
of the real releases, so the loaders in `data/` read it unchanged (the languages themselves: `language.py`):

    world.json                                    config, languages, counts per file
    conceptnet/conceptnet-assertions-5.7.0.csv.gz  one dump for all languages (+ English and noise edges)
    glotcc/v1.0/<code>-Latn/<code>-Latn_0.parquet  documents (column `content`) with GlotCC-like metadata
    flores200_dataset/{dev,devtest}/<code>_Latn.{dev,devtest}   parallel sentences, one per line
    sib200/data/annotated/<code>_Latn/{train,dev,test}.tsv, labels.txt   topic-labelled FLORES sentences
    wikiann/<code>/{train,dev,test}; sentiment/<code>/{train,dev,test}.tsv   NER and sentiment (`tasks.py`)

Everything is a deterministic function of `WorldConfig` (same bytes every time).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import ChainMap
from pathlib import Path
from random import Random

from lrl_utils.data.flores_sib import SIB_LABELS
from lrl_utils.demo.graph import write_conceptnet
from lrl_utils.demo.language import (
    ANTONYMS,
    DEMO_LANGUAGES,
    DUMP,
    ENGLISH,
    POS_TAG,
    TOPIC_CONTEXT,
    DemoLanguage,
    Sentence,
    Slots,
    WorldConfig,
    _content_keys,
    _slots,
    build_lexicon,
    concepts,
    draw_sentence,
    realise,
)
from lrl_utils.demo.tasks import NEGATIVE, POSITIVE, name_inventory, polar, with_entities, write_task_data

STATEMENT_SHARE = 0.25  # chance that an English document sentence is a definitional statement


STATEMENT_RELATIONS = (  # the relations of the demo graph's edges (demo_graph._language_edges)
    "RelatedTo", "HasContext", "IsA", "UsedFor", "PartOf", "FormOf", "Synonym", "Antonym",
    "EtymologicallyRelatedTo",
)  # fmt: skip


def english_statement(rng: Random, slots: Slots, topic: str) -> str:
    """A definitional English sentence about a concept of `topic`, made with a ConceptNet template."""
    from lrl_utils.data.conceptnet_templates import CONCEPTNET_TEMPLATES

    relation = rng.choice(STATEMENT_RELATIONS)
    pos = "noun" if relation in ("IsA", "UsedFor", "PartOf") else rng.choice(tuple(POS_TAG))
    subject = rng.choice(slots[(topic, pos)]).split(":", 1)[1]
    other = rng.choice(slots[(topic, "noun")]).split(":", 1)[1]
    if relation == "HasContext":
        other = TOPIC_CONTEXT[topic][0]
    elif relation == "IsA":
        other = rng.choice(TOPIC_CONTEXT[topic][1:])
    elif relation == "UsedFor":
        other = rng.choice(slots[(topic, "verb")]).split(":", 1)[1]
    elif relation == "FormOf":
        subject, other = subject + ENGLISH.plural, subject
    elif relation == "Antonym":
        subject, other = rng.choice(ANTONYMS)
    text = f"{subject} {CONCEPTNET_TEMPLATES[relation]} {other}."
    return text[0].upper() + text[1:]


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(line + "\n" for line in lines)


def _glotcc_documents(
    rng: Random,
    n: int,
    lang: DemoLanguage,
    lexicon: dict,
    slots: Slots,
    config: WorldConfig,
    inventory: dict | None,
    english: dict | None = None,
) -> tuple[list[str], list[int], set]:
    """`n` single-topic documents of `lang`, their sentence counts and the sentence structures they use. With an
    `inventory` (`tasks.name_inventory`), a share `config.web_names` of the sentences name entities of it; a
    share `config.web_polarity` of the documents keeps its evaluative adjectives to one side (`tasks.polar`);
    with the `english` lexicon, a share `config.web_code_switch` of the topic words is written in English
    (`_code_switched`)."""
    docs, n_sentences, drawn = [], [], set()
    switch = Random(f"{config.seed}/{lang.code}/code-switch")  # its own draws: the documents stay the same
    for _ in range(n):
        topic = rng.choice(SIB_LABELS)
        side = None
        if config.web_polarity and rng.random() < config.web_polarity:  # no draw at 0: older worlds' bytes
            side = rng.choice((POSITIVE, NEGATIVE))
        sentences = []
        for _ in range(rng.randint(*config.sentences_per_doc)):
            if lang is ENGLISH and rng.random() < STATEMENT_SHARE:
                sentences.append(english_statement(rng, slots, topic))
                continue
            structure = draw_sentence(rng, slots, topic)
            if side:
                structure = polar(structure, rng, side, one_sided=True)
            drawn.add(structure)
            words = lexicon
            if english is not None and config.web_code_switch and lang is not ENGLISH:
                words = _code_switched(structure, lexicon, english, config.web_code_switch, switch)
            if inventory and rng.random() < config.web_names:
                named, extended, _ = with_entities(structure, rng, lang, words, inventory)
                sentences.append(realise(named, lang, extended, rng))
                continue
            sentences.append(realise(structure, lang, words, rng))
        docs.append(" ".join(sentences))
        n_sentences.append(len(sentences))
    return docs, n_sentences, drawn


def _code_switched(s: Sentence, lexicon: dict, english: dict, share: float, rng: Random) -> ChainMap:
    """`lexicon` with each of the topic words of `s` replaced by its English word with probability `share` (the
    language's grammar, endings and function words stay)."""
    keys = {k for k in _content_keys(s) if k.startswith(f"{s.topic}:")}
    return ChainMap({k: english[k] for k in sorted(keys) if rng.random() < share}, lexicon)


def _mislabeled(
    parent: DemoLanguage, lexicons: dict, slots: Slots, config: WorldConfig, inventories: dict
) -> tuple[list[str], list[int], set]:
    """Documents of `parent`'s unseen close relatives that its web corpus holds under its label
    (`config.mislabeled_relative` of its documents; none when 0)."""
    docs, n_sentences, drawn = [], [], set()
    n = round(config.mislabeled_relative * config.docs_per_language)
    relatives = [
        lang for lang in DEMO_LANGUAGES.values() if lang.relative_of == parent.code and not lang.seen
    ]
    for lang in relatives if n else ():
        rng = Random(f"{config.seed}/{lang.code}/mislabeled")
        more, k, used = _glotcc_documents(
            rng, n, lang, lexicons[lang.code], slots, config, inventories.get(lang.code)
        )
        docs, n_sentences, drawn = docs + more, n_sentences + k, drawn | used
    return docs, n_sentences, drawn


def _write_glotcc(
    root: Path,
    lang: DemoLanguage,
    lexicons: dict,
    slots: Slots,
    config: WorldConfig,
    inventories: dict,
) -> tuple[set, int]:
    """One parquet file of single-topic documents, with its close relatives' mislabeled documents spread evenly
    among them (`_mislabeled`); returns the sentence structures used and the number of documents."""
    import pyarrow as pa  # imported here: `import demo_world` stays light (the grid only needs WorldConfig)
    import pyarrow.parquet as pq

    rng = Random(f"{config.seed}/{lang.code}/glotcc")
    docs, n_sentences, drawn = _glotcc_documents(
        rng,
        config.docs_per_language,
        lang,
        lexicons[lang.code],
        slots,
        config,
        inventories.get(lang.code),
        lexicons[ENGLISH.code],
    )
    other, other_sentences, other_drawn = _mislabeled(lang, lexicons, slots, config, inventories)
    drawn |= other_drawn
    for i, (doc, k) in enumerate(zip(other, other_sentences, strict=True)):  # evenly: after every n/m-th own
        at = (i + 1) * len(docs) // (len(other) + 1) + i
        docs.insert(at, doc)
        n_sentences.insert(at, k)
    columns = {  # `content` plus a few of GlotCC-v1's metadata columns
        "content": docs,
        "warc-target-uri": [f"https://{lang.code}.example/article/{i:05d}.html" for i in range(len(docs))],
        "warc-date": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00Z" for i in range(len(docs))],
        "identification-language": [lang.flores_code] * len(docs),
        "num-sents": n_sentences,
    }
    path = root / f"glotcc/v1.0/{lang.glotcc_code}/{lang.glotcc_code}_0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return drawn, len(docs)


def _flores_structures(slots: Slots, config: WorldConfig, drawn: set) -> list[Sentence]:
    """dev + devtest sentence structures, topic-balanced, none of them used in any GlotCC document."""
    rng = Random(f"{config.seed}/flores")
    n = config.flores_dev + config.flores_devtest
    topics = [SIB_LABELS[i % len(SIB_LABELS)] for i in range(n)]
    rng.shuffle(topics)
    taken, out = set(drawn), []
    for topic in topics:
        s = draw_sentence(rng, slots, topic, config.flores_topic_words)
        while s in taken:
            s = draw_sentence(rng, slots, topic, config.flores_topic_words)
        taken.add(s)
        out.append(s)
    return out


def _flores_and_sib(lang: DemoLanguage, lexicon: dict, structures: list, config: WorldConfig) -> dict:
    """Relative path -> lines: FLORES dev/devtest (parallel across languages) and SIB-200 built from them."""
    rng = Random(f"{config.seed}/{lang.code}/flores")
    lines = [realise(s, lang, lexicon, rng) for s in structures]
    code, sib = lang.flores_code, f"sib200/data/annotated/{lang.flores_code}"
    files = {
        f"flores200_dataset/dev/{code}.dev": lines[: config.flores_dev],
        f"flores200_dataset/devtest/{code}.devtest": lines[config.flores_dev :],
        f"{sib}/labels.txt": list(SIB_LABELS),
    }
    order = list(range(len(lines)))  # index_id = position in dev + devtest; the same split in every language
    Random(f"{config.seed}/sib").shuffle(order)
    n_train, n_dev, n_test = config.sib_split
    order = order[: n_train + n_dev + n_test]
    parts = {"train": order[:n_train], "dev": order[n_train:][:n_dev], "test": order[n_train + n_dev :]}
    for split, ids in parts.items():
        rows = [f"{i}\t{structures[i].topic}\t{lines[i]}" for i in ids]
        files[f"{sib}/{split}.tsv"] = ["index_id\tcategory\ttext"] + rows
    return files


def write_world(root: Path, config: WorldConfig) -> dict:
    """Write every file of the world into the existing folder `root`; return the `world.json` manifest."""
    inventory = concepts(config)
    slots = _slots(inventory)
    lexicons = {code: build_lexicon(lang, inventory, config.seed) for code, lang in DEMO_LANGUAGES.items()}
    written = (ENGLISH, *DEMO_LANGUAGES.values())  # languages with web text, FLORES and SIB files
    all_lexicons = {ENGLISH.code: build_lexicon(ENGLISH, inventory, config.seed)} | lexicons
    inventories = {  # named entities of the web text and NER data (none in the older worlds)
        code: name_inventory(lang, config.seed) for code, lang in DEMO_LANGUAGES.items() if config.web_names
    }
    drawn: set[Sentence] = set()  # sentence structures used in documents, kept out of FLORES
    counts: dict[str, int] = {}
    for lang in written:
        used, n_docs = _write_glotcc(root, lang, all_lexicons, slots, config, inventories)
        drawn |= used
        counts[f"glotcc/v1.0/{lang.glotcc_code}/{lang.glotcc_code}_0.parquet"] = n_docs
    structures = _flores_structures(slots, config, drawn)
    for lang in written:
        for relative, lines in _flores_and_sib(lang, all_lexicons[lang.code], structures, config).items():
            _write_lines(root / relative, lines)
            counts[relative] = len(lines) - relative.endswith(".tsv")  # TSV: rows without the header
    for lang in DEMO_LANGUAGES.values():  # NER and sentiment files (`tasks.py`)
        counts.update(
            write_task_data(
                root,
                lang,
                lexicons[lang.code],
                slots,
                config.seed,
                inventories.get(lang.code),
                config.sentiment_held_out,
            )
        )
    edges = write_conceptnet(root, lexicons, inventory, config.seed)
    counts[DUMP] = sum(edges.values())
    manifest = {
        "generator": __name__,
        "hash": config.hash(),
        "config": config.record(),
        "languages": [lang.describe() for lang in written],
        "topics": list(SIB_LABELS),
        "files": dict(sorted(counts.items())),
        "conceptnet_edges_by_start_language": dict(sorted(edges.items())),
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False)
    (root / "world.json").write_text(text + "\n", encoding="utf-8")
    return manifest


def ensure_world(parent_dir: str | os.PathLike, config: WorldConfig | None = None) -> Path:
    """The world for `config` in `parent_dir/world-<hash>`, generated once (idempotent, race-safe).

    The world is built in a temporary folder next to its final place and renamed into place; if another
    process got there first, its world is kept and ours discarded.
    """
    config = config or WorldConfig()
    parent = Path(parent_dir)
    final = parent / f"world-{config.hash()}"
    if (final / "world.json").is_file():
        return final
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-world-{config.hash()}-", dir=parent))
    try:
        write_world(tmp, config)
        tmp.chmod(0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "world.json").is_file():
                raise RuntimeError(f"{final} exists without a world.json: remove it") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
