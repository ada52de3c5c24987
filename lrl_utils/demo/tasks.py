"""The demo world's NER and sentiment data, in the local layouts that `task_data` reads.

Both are built from the world's sentences (`demo_world.draw_sentence` / `realise`), so the words, word order and
agreement are those of each synthetic language:

- **NER** (WikiANN-like, `wikiann/<code>/{train,dev,test}`: CoNLL `token<TAB>tag` lines, a blank line between
  sentences, IOB2 tags PER / ORG / LOC): some noun phrases are replaced by names made from the language's own
  syllables and capitalised: a person is a given and a family name, an organisation a name followed by the
  language's word for "group", a location a name, or a name followed by its word for "city" or "country".
  In worlds whose web text names entities (`WorldConfig.web_names`), most names come from the language's
  `name_inventory`, so they are words a model can learn from the web text, as WikiANN's are.
- **Sentiment** (`sentiment/<code>/{train,dev,test}.tsv`, columns `text` and `label`, 1 = positive): one or two
  noun phrases of a sentence get an evaluative adjective of one polarity (good, healthy, funny, popular versus
  bad, sick, crowded, chronic); the label is that polarity. Half the sentences are positive.

Everything is a deterministic function of the world's seed and its lexicons (`write_task_data`).
"""

from __future__ import annotations

from pathlib import Path
from random import Random

from lrl_utils.demo.language import (
    DEMO_LANGUAGES,
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
NAME_KINDS = {"given": 12, "family": 12, "org": 12, "place": 12}  # names per kind in a language's inventory
KNOWN_NAMES = 0.9  # with an inventory: the share of entities taken from it (the rest are new names)


def _name(rng: Random, lang: DemoLanguage) -> str:
    """A capitalised name of 1-2 syllables of `lang`. It may equal a word of the language; tagging then marks
    the first occurrence, rarely a wrong one (a little noise, as in WikiANN's silver annotations)."""
    syllables = "".join(
        rng.choice(part) for part in (lang.onsets, lang.vowels, lang.codas) * rng.choice((1, 2))
    )
    return _capital(syllables)


def name_inventory(lang: DemoLanguage, seed: int) -> dict[str, tuple[str, ...]]:
    """The named entities `lang`'s web text talks about (`WorldConfig.web_names`): given and family names,
    organisations and places, each kind a fixed list of distinct names made from the language's syllables. A
    relative's names are its parent's respelled, as related languages share most of the entities they write
    about (Wikipedia's, WikiANN's)."""
    if lang.relative_of is not None:
        parent = name_inventory(DEMO_LANGUAGES[lang.relative_of], seed)
        return {
            kind: tuple(_capital(lang.respell(n.lower())) for n in names) for kind, names in parent.items()
        }
    rng, used, out = Random(f"{seed}/{lang.code}/names"), set(), {}
    for kind, n in NAME_KINDS.items():
        names = []
        while len(names) < n:
            name = _name(rng, lang)
            if name not in used:
                used.add(name)
                names.append(name)
        out[kind] = tuple(names)
    return out


def _capital(word: str) -> str:
    return word[0].upper() + word[1:]


def _entity(rng: Random, lang: DemoLanguage, lexicon: dict, inventory: dict | None) -> tuple[str, list[str]]:
    """(type, tokens) of a named entity: from `inventory` (`KNOWN_NAMES` of the time), else a new name."""
    kind = rng.choice(("PER", "ORG", "LOC"))
    known = inventory is not None and rng.random() < KNOWN_NAMES

    def name(of: str) -> str:
        return rng.choice(inventory[of]) if known else _name(rng, lang)

    if kind == "PER":
        return kind, [name("given"), name("family")]
    if kind == "ORG":
        return kind, [name("org"), _capital(lexicon["general:group"][0])]
    if rng.random() < 0.5:
        return kind, [name("place")]
    place = lexicon[rng.choice(("general:city", "general:country"))][0]
    return kind, [name("place"), _capital(place)]


def with_entities(
    s: Sentence, rng: Random, lang: DemoLanguage, lexicon: dict, inventory: dict | None = None
) -> tuple[Sentence, dict, dict]:
    """`s` with 1-2 noun phrases replaced by names (`_entity`); the extended lexicon and {name key: (type,
    tokens)}."""
    lexicon, names = dict(lexicon), {}
    clauses = list(s.clauses)
    for i, clause in enumerate(clauses):
        for slot in ENTITY_SLOTS:
            phrase = getattr(clause, slot)
            if not isinstance(phrase, NounPhrase) or rng.random() < 0.5:
                continue
            kind, tokens = _entity(rng, lang, lexicon, inventory)
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


def ner_sentences(
    lang: DemoLanguage, lexicon: dict, slots: Slots, rng: Random, n: int, inventory: dict | None = None
) -> list[list]:
    """`n` tagged sentences, each with at least one entity (from `inventory` when given, `_entity`)."""
    from lrl_utils.data.flores_sib import SIB_LABELS

    out = []
    while len(out) < n:
        s, extended, names = with_entities(
            draw_sentence(rng, slots, rng.choice(SIB_LABELS)), rng, lang, lexicon, inventory
        )
        if names:
            out.append(_tag(realise(s, lang, extended, rng), names))
    return out


def polar(s: Sentence, rng: Random, adjectives: tuple[str, ...], one_sided: bool = False) -> Sentence:
    """`s` with the adjective of 1-2 of its noun phrases set to adjectives of one polarity; `one_sided`: every
    evaluative adjective of the other polarity becomes one of `adjectives` too."""
    phrases = [(i, slot) for i, c in enumerate(s.clauses) for slot in ENTITY_SLOTS]
    phrases = [(i, slot) for i, slot in phrases if isinstance(getattr(s.clauses[i], slot), NounPhrase)]
    clauses = list(s.clauses)
    for i, slot in rng.sample(phrases, min(len(phrases), rng.choice((1, 2)))):
        phrase = getattr(clauses[i], slot)
        clauses[i] = clauses[i]._replace(**{slot: phrase._replace(adj=rng.choice(adjectives))})
    other = set(POSITIVE + NEGATIVE) - set(adjectives) if one_sided else ()
    for i, slot in phrases:
        phrase = getattr(clauses[i], slot)
        if phrase.adj in other:
            clauses[i] = clauses[i]._replace(**{slot: phrase._replace(adj=rng.choice(adjectives))})
    return s._replace(clauses=tuple(clauses))


def sentiment_rows(
    lang: DemoLanguage, lexicon: dict, slots: Slots, rng: Random, n: int, held_out: int = 0
) -> list[tuple]:
    """`n` (text, label) rows, alternating positive (1) and negative (0); the last `held_out` adjectives of each
    polarity never carry the label."""
    from lrl_utils.data.flores_sib import SIB_LABELS

    positive, negative = (words[: len(words) - held_out] for words in (POSITIVE, NEGATIVE))
    rows = []
    for i in range(n):
        label = 1 - i % 2
        s = polar(draw_sentence(rng, slots, rng.choice(SIB_LABELS)), rng, positive if label else negative)
        rows.append((realise(s, lang, lexicon, rng), label))
    return rows


def write_task_data(
    root: Path,
    lang: DemoLanguage,
    lexicon: dict,
    slots: Slots,
    seed: int,
    inventory: dict | None = None,
    sentiment_held_out: int = 0,
) -> dict[str, int]:
    """Write the NER and sentiment files of `lang` under `root` (NER entities mostly from `inventory` when
    given; the last `sentiment_held_out` adjectives of each polarity label no training sentence); relative
    path -> records."""
    counts = {}
    rng = Random(f"{seed}/{lang.code}/ner")
    for split, n in NER_SPLITS.items():
        path = root / "wikiann" / lang.code / split
        path.parent.mkdir(parents=True, exist_ok=True)
        sentences = ner_sentences(lang, lexicon, slots, rng, n, inventory)
        text = "\n\n".join("\n".join(f"{tok}\t{tag}" for tok, tag in s) for s in sentences)
        path.write_text(text + "\n", encoding="utf-8")
        counts[str(path.relative_to(root))] = n
    rng = Random(f"{seed}/{lang.code}/sentiment")
    for split, n in SENTIMENT_SPLITS.items():
        path = root / "sentiment" / lang.code / f"{split}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = sentiment_rows(lang, lexicon, slots, rng, n, sentiment_held_out if split == "train" else 0)
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
        counts[str(path.relative_to(root))] = n
    return counts
