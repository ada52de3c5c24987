"""The demo world's NER and sentiment data, in the local layouts that `task_data` reads.

Both are built from the world's sentences (`demo_world.draw_sentence` / `realise`), so the words, word order and
agreement are those of each synthetic language:

- **NER** (WikiANN-like, `wikiann/<code>/{train,dev,test}`: CoNLL `token<TAB>tag` lines, a blank line between
  sentences, IOB2 tags PER / ORG / LOC): some noun phrases are replaced by names made from the language's own
  syllables and capitalised: a person is a given and a family name, an organisation a name followed by the
  language's word for "group", a location a name, or a name followed by its word for "city" or "country".
- **Sentiment** (`sentiment/<code>/{train,dev,test}.tsv`, columns `text` and `label`, 1 = positive): one or two
  noun phrases of a sentence get an evaluative adjective of one polarity (good, healthy, funny, popular versus
  bad, sick, crowded, chronic); the label is that polarity. Half the sentences are positive.

Everything is a deterministic function of the world's seed and its lexicons (`write_task_data`).
"""

from __future__ import annotations

from pathlib import Path
from random import Random

from lrl_utils.demo.language import (
    DemoLanguage,
    NounPhrase,
    Sentence,
    Slots,
    draw_sentence,
    realise,
)

NER_SPLITS = {"train": 600, "dev": 100, "test": 100}  # sentences per split and language
SENTIMENT_SPLITS = {"train": 600, "dev": 100, "test": 200}
POSITIVE = ("general:good", "health:healthy", "entertainment:funny", "entertainment:popular")
NEGATIVE = ("general:bad", "health:sick", "travel:crowded", "health:chronic")
ENTITY_SLOTS = ("subject", "obj", "pp")


def _name(rng: Random, lang: DemoLanguage) -> str:
    """A capitalised name of 1-2 syllables of `lang`. It may equal a word of the language; tagging then marks
    the first occurrence, rarely a wrong one (a little noise, as in WikiANN's silver annotations)."""
    syllables = "".join(
        rng.choice(part) for part in (lang.onsets, lang.vowels, lang.codas) * rng.choice((1, 2))
    )
    return syllables[0].upper() + syllables[1:]


def _entity(rng: Random, lang: DemoLanguage, lexicon: dict) -> tuple[str, list[str]]:
    """(type, tokens) of a new named entity."""
    kind = rng.choice(("PER", "ORG", "LOC"))
    if kind == "PER":
        return kind, [_name(rng, lang), _name(rng, lang)]
    if kind == "ORG":
        group = lexicon["general:group"][0]
        return kind, [_name(rng, lang), group[0].upper() + group[1:]]
    if rng.random() < 0.5:
        return kind, [_name(rng, lang)]
    place = lexicon[rng.choice(("general:city", "general:country"))][0]
    return kind, [_name(rng, lang), place[0].upper() + place[1:]]


def _with_entities(
    s: Sentence, rng: Random, lang: DemoLanguage, lexicon: dict
) -> tuple[Sentence, dict, dict]:
    """`s` with 1-2 noun phrases replaced by names; the extended lexicon and {name key: (type, tokens)}."""
    lexicon, names = dict(lexicon), {}
    clauses = list(s.clauses)
    for i, clause in enumerate(clauses):
        for slot in ENTITY_SLOTS:
            phrase = getattr(clause, slot)
            if not isinstance(phrase, NounPhrase) or rng.random() < 0.5:
                continue
            kind, tokens = _entity(rng, lang, lexicon)
            key = f"name:{len(names)}"
            lexicon[key] = (" ".join(tokens),)
            names[key] = (kind, tokens)
            clause = clause._replace(**{slot: NounPhrase(None, None, key, False)})
        clauses[i] = clause
    return s._replace(clauses=tuple(clauses)), lexicon, names


def _tag(text: str, names: dict) -> list[tuple[str, str]]:
    """CoNLL (token, tag) pairs of a realised sentence; the final punctuation is its own token."""
    tokens = text[:-1].split() + [text[-1]]
    tags = ["O"] * len(tokens)
    for kind, name in names.values():
        for start in range(len(tokens) - len(name) + 1):
            if tokens[start : start + len(name)] == name and tags[start] == "O":
                tags[start : start + len(name)] = [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
                break
    return list(zip(tokens, tags, strict=True))


def ner_sentences(lang: DemoLanguage, lexicon: dict, slots: Slots, rng: Random, n: int) -> list[list]:
    """`n` tagged sentences, each with at least one entity."""
    from lrl_utils.data.flores_sib import SIB_LABELS

    out = []
    while len(out) < n:
        s, extended, names = _with_entities(
            draw_sentence(rng, slots, rng.choice(SIB_LABELS)), rng, lang, lexicon
        )
        if names:
            out.append(_tag(realise(s, lang, extended, rng), names))
    return out


def _polar(s: Sentence, rng: Random, adjectives: tuple[str, ...]) -> Sentence:
    """`s` with the adjective of 1-2 of its noun phrases set to adjectives of one polarity."""
    phrases = [(i, slot) for i, c in enumerate(s.clauses) for slot in ENTITY_SLOTS]
    phrases = [(i, slot) for i, slot in phrases if isinstance(getattr(s.clauses[i], slot), NounPhrase)]
    clauses = list(s.clauses)
    for i, slot in rng.sample(phrases, min(len(phrases), rng.choice((1, 2)))):
        phrase = getattr(clauses[i], slot)
        clauses[i] = clauses[i]._replace(**{slot: phrase._replace(adj=rng.choice(adjectives))})
    return s._replace(clauses=tuple(clauses))


def sentiment_rows(lang: DemoLanguage, lexicon: dict, slots: Slots, rng: Random, n: int) -> list[tuple]:
    """`n` (text, label) rows, alternating positive (1) and negative (0)."""
    from lrl_utils.data.flores_sib import SIB_LABELS

    rows = []
    for i in range(n):
        label = 1 - i % 2
        s = _polar(draw_sentence(rng, slots, rng.choice(SIB_LABELS)), rng, POSITIVE if label else NEGATIVE)
        rows.append((realise(s, lang, lexicon, rng), label))
    return rows


def write_task_data(root: Path, lang: DemoLanguage, lexicon: dict, slots: Slots, seed: int) -> dict[str, int]:
    """Write the NER and sentiment files of `lang` under `root`; relative path -> records."""
    counts = {}
    rng = Random(f"{seed}/{lang.code}/ner")
    for split, n in NER_SPLITS.items():
        path = root / "wikiann" / lang.code / split
        path.parent.mkdir(parents=True, exist_ok=True)
        sentences = ner_sentences(lang, lexicon, slots, rng, n)
        text = "\n\n".join("\n".join(f"{tok}\t{tag}" for tok, tag in s) for s in sentences)
        path.write_text(text + "\n", encoding="utf-8")
        counts[str(path.relative_to(root))] = n
    rng = Random(f"{seed}/{lang.code}/sentiment")
    for split, n in SENTIMENT_SPLITS.items():
        path = root / "sentiment" / lang.code / f"{split}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = sentiment_rows(lang, lexicon, slots, rng, n)
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
        counts[str(path.relative_to(root))] = n
    return counts
