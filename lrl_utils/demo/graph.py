"""The demo world's ConceptNet: a concept graph per synthetic language, in the assertions format of the 5.7 dump.

Per language (`_language_edges`): each content word is a Synonym of its English gloss (some nodes with a POS
suffix), synonyms point to each other, inflected forms are FormOf their stem, some words are etymologically
related to a word of another language; topic words are RelatedTo three words of their topic (theirs or the
English gloss), HasContext the topic, nouns IsA a topic category and sometimes PartOf / UsedFor other topic
words; antonym pairs. Plus the noise a real dump has and the preprocessing must drop (ExternalURL ends,
relations outside the paper's 33, equal surface forms), and English-start edges (`_english_edges`).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path
from random import Random

from lrl_utils.demo.language import (
    ANTONYMS,
    DEMO_LANGUAGES,
    DUMP,
    POS_TAG,
    TOPIC_CONTEXT,
    UNKNOWN_RELATIONS,
    Concept,
    DemoLanguage,
)


def _node(lang: str, word: str, pos: str | None = None) -> str:
    return f"/c/{lang}/{word}" + (f"/{pos}" if pos else "")


def _edge(relation: str, start: str, end: str, dataset: str = "/d/wiktionary/en") -> tuple[str, str]:
    """(edge URI, assertion line): edge URI, relation, start, end, JSON, tab-separated."""
    uri = f"/a/[/r/{relation}/,{start}/,{end}/]"
    source = {"contributor": "/s/resource/wiktionary/en", "process": "/s/process/wikiparsec/2"}
    meta = {"dataset": dataset, "license": "cc:by-sa/4.0", "sources": [source], "weight": 1.0}
    return uri, "\t".join((uri, f"/r/{relation}", start, end, json.dumps(meta, ensure_ascii=False)))


Lexicons = dict[str, dict[str, tuple[str, ...]]]


def _language_edges(lang: DemoLanguage, lexicons: Lexicons, inventory: list[Concept], rng: Random) -> list:
    """(edge URI, line) pairs whose start node is in `lang`, plus the noise a real dump has."""
    code, lexicon = lang.code, lexicons[lang.code]
    content = [c for c in inventory if c.pos in POS_TAG]
    same_topic: dict[tuple[str | None, str], list[Concept]] = defaultdict(list)
    for c in content:
        same_topic[(c.topic, c.pos)].append(c)
    edges: list[tuple[str, str]] = []

    def add(relation: str, start: str, end: str, dataset: str = "/d/wiktionary/en") -> None:
        edges.append(_edge(relation, start, end, dataset))

    def own(word: str, pos: str | None = None) -> str:  # a node of this language
        return _node(code, word, pos)

    def main(c: Concept) -> str:
        return lexicon[c.key][0]

    def own_or_english(c: Concept) -> str:
        return _node("en", c.gloss) if rng.random() < 0.5 else own(main(c))

    for c in content:
        word, tag = main(c), POS_TAG[c.pos]
        tags = [tag if rng.random() < 0.3 else None for _ in "se"]  # some nodes carry a POS suffix
        add("Synonym", own(word, tags[0]), _node("en", c.gloss, tags[1]))
        for synonym in lexicon[c.key][1:]:
            add("Synonym", own(synonym), _node("en", c.gloss))
            add("Synonym", own(synonym), own(word))
            add("Synonym", own(word), own(synonym))
        for suffix in {"noun": (lang.plural,), "verb": (lang.singular_verb, lang.plural), "adj": ()}[c.pos]:
            add("FormOf", own(word + suffix, tag), own(word, tag))
        if rng.random() < 0.1:
            other = rng.choice([o for o in lexicons if o != code])
            add("EtymologicallyRelatedTo", own(word), _node(other, lexicons[other][c.key][0]))
        if c.topic is None:
            continue
        neighbours = [o for pos in POS_TAG for o in same_topic[(c.topic, pos)] if o != c]
        for other in rng.sample(neighbours, 3):
            add("RelatedTo", own(word), own_or_english(other))
        add("HasContext", own(word, tag), _node("en", TOPIC_CONTEXT[c.topic][0]))
        if c.pos != "noun":
            continue
        add("IsA", own(word, "n"), _node("en", rng.choice(TOPIC_CONTEXT[c.topic][1:])))
        if rng.random() < 0.2:
            whole = rng.choice([o for o in same_topic[(c.topic, "noun")] if o != c])
            add("PartOf", own(word, "n"), own(main(whole), "n"))
        if rng.random() < 0.3:
            add("UsedFor", own(word), own_or_english(rng.choice(same_topic[(c.topic, "verb")])))
    by_gloss = {c.gloss: main(c) for c in content}
    for a, b in ANTONYMS + tuple((b, a) for a, b in ANTONYMS):
        if a in by_gloss and b in by_gloss:
            add("Antonym", own(by_gloss[a], "a"), own(by_gloss[b], "a"))
            add("Antonym", own(by_gloss[a]), _node("en", b))
    # Noise the preprocessing must drop: ExternalURL ends, relations outside the 33, equal surface forms.
    for c in rng.sample(content, 6):
        url = f"http://{code}.dbpedia.org/resource/{main(c).title()}"
        add("ExternalURL", own(main(c)), url, "/d/dbpedia/en")
    for c in rng.sample(content, 8):
        add(rng.choice(UNKNOWN_RELATIONS), own(main(c)), _node("en", c.gloss), "/d/dbpedia/en")
    for c in rng.sample(content, 4):  # a POS-tagged node = the bare node; a loanword = the English word
        add("Synonym", own(main(c), "n"), own(main(c)))
        add("RelatedTo", own(main(c)), _node("en", main(c)))
    return edges


def _english_edges(lexicons: Lexicons, inventory: list[Concept], rng: Random) -> list:
    """English-start edges: reverse translations and English relations (the language filter drops them)."""
    content = [c for c in inventory if c.pos in POS_TAG]
    edges = []
    for c in content:
        start, other = _node("en", c.gloss, POS_TAG[c.pos]), rng.choice(content)
        for code, lexicon in lexicons.items():
            if rng.random() < 0.2:
                edges.append(_edge("Synonym", start, _node(code, lexicon[c.key][0])))
        if other != c:
            edges.append(_edge("RelatedTo", start, _node("en", other.gloss), "/d/conceptnet/4/en"))
    return edges


def write_conceptnet(root: Path, lexicons: Lexicons, inventory: list[Concept], seed: int) -> Counter:
    """The dump, sorted by edge URI like the real one; returns edges per start language."""
    lines: dict[str, str] = {}
    for lang in DEMO_LANGUAGES.values():
        rng = Random(f"{seed}/{lang.code}/conceptnet")
        lines.update(_language_edges(lang, lexicons, inventory, rng))
    lines.update(_english_edges(lexicons, inventory, Random(f"{seed}/en/conceptnet")))
    path = root / DUMP
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.writelines((lines[uri] + "\n").encode("utf-8") for uri in sorted(lines))
    return Counter(line.split("\t")[2].split("/")[2] for line in lines.values())
