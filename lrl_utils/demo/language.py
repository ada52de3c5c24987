"""The demo world's synthetic languages: one concept inventory, each language's lexicon, grammar and sentences.

Seven private-use languages (ISO 639-3 `qaa`-`qag`) and the world's English (`qen`: the concepts' English
glosses) share one concept inventory (`concepts`): the 7 SIB-200 topics x `concepts_per_topic` content
words with English glosses, plus general words and function words. Each synthetic language realises every concept
with its own words (`build_lexicon`, from its own syllables), has its own word order, noun-phrase order and
adpositions, and one agreement rule. Sentences are drawn per topic (`draw_sentence`) and realised in a language
(`realise`); `world.py` writes them in the real datasets' layouts. `qab`, `qad`, `qae` and `qaf` are the tiny
models' seen languages (graded shares of their pre-training: the demo profile); `qaa` and `qac` are unseen and
unrelated; `qag` is an unseen close relative of `qab` (`relative`): 80% of its words are `qab`'s respelled in
its own orthography (sh -> ž, ou -> ë, ...), the rest its own, with `qab`'s grammar.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from random import Random
from typing import NamedTuple

from lrl_utils.demo.config import WorldConfig


@dataclass(frozen=True)
class DemoLanguage:
    """A synthetic language: its codes, sound inventory and grammar."""

    code: str  # ISO 639-3 private-use code; also the ConceptNet code (FLORES/SIB: <code>_Latn, GlotCC: <code>-Latn)
    name: str
    seen: bool  # meant for the tiny base models' pre-training data (params/profiles/demo.yaml)
    onsets: tuple[str, ...]
    vowels: tuple[str, ...]
    codas: tuple[str, ...]  # "" = open syllable (repeat it to make open syllables more frequent)
    plural: str  # noun suffix for plural; the verb repeats it when its subject is plural
    singular_verb: str  # verb suffix when the subject is singular
    clause_order: str  # "SVO", "SOV" or "VSO"
    np_order: str  # order of determiner (D), adjective (A), noun (N)
    postpositions: bool
    question_first: bool  # the question particle opens the sentence (else it closes it)
    plural_verb: str | None = None  # verb suffix when the subject is plural (None: the noun's plural suffix)
    # A close relative of another demo language, in its own orthography: its words are that language's words
    # respelled by `respelling` ((old, new) rules, applied in order), except a share of its own (non-cognates)
    relative_of: str | None = None
    respelling: tuple[tuple[str, str], ...] = ()
    cognate_share: float = 1.0

    def respell(self, word: str) -> str:
        """A word of `relative_of` in this language's orthography."""
        for old, new in self.respelling:
            word = word.replace(old, new)
        return word

    @property
    def flores_code(self) -> str:
        return f"{self.code}_Latn"

    @property
    def glotcc_code(self) -> str:
        return f"{self.code}-Latn"

    @property
    def letters(self) -> str:
        """Every lowercase letter the language writes, sorted."""
        parts = self.onsets + self.vowels + self.codas + (self.plural, self.singular_verb)
        return "".join(sorted(set("".join(parts))))

    def describe(self) -> dict:
        """The language as recorded in world.json."""
        codes = {
            "flores_code": self.flores_code,
            "glotcc_code": self.glotcc_code,
            "conceptnet_code": self.code,
        }
        return dataclasses.asdict(self) | codes | {"letters": self.letters}


def relative(parent: DemoLanguage, code: str, name: str, rules: tuple, cognate_share: float) -> DemoLanguage:
    """An unseen close relative of `parent`: its grammar and sounds, written with the respelling `rules`."""
    lang = dataclasses.replace(
        parent, code=code, name=name, seen=False, relative_of=parent.code, respelling=rules
    )
    sounds = {k: tuple(lang.respell(x) for x in getattr(parent, k)) for k in ("onsets", "vowels", "codas")}
    endings = {"plural": lang.respell(parent.plural), "singular_verb": lang.respell(parent.singular_verb)}
    return dataclasses.replace(lang, **sounds, **endings, cognate_share=cognate_share)


DEMO_LANGUAGES: dict[str, DemoLanguage] = {
    "qaa": DemoLanguage(
        "qaa", "Demo-A", False, tuple("ptkmnlrsv"), tuple("aeiou"), ("", "", "", "n", "l"),
        plural="se", singular_verb="ta", clause_order="SVO", np_order="DNA", postpositions=False,
        question_first=False,
    ),
    "qab": DemoLanguage(
        "qab", "Demo-B", True, ("b", "d", "g", "f", "h", "z", "k", "sh", "y"), ("a", "o", "u", "ai", "ou"),
        ("", "", "k", "t", "m"), plural="dok", singular_verb="u", clause_order="SOV", np_order="AND",
        postpositions=True, question_first=True,
    ),
    "qac": DemoLanguage(
        "qac", "Demo-C", False, ("kr", "zv", "dr", "sk", "gl", "tv", "br", "ž"), ("e", "y", "a", "e", "y", "ë"),
        ("", "", "", "rz", "g"), plural="ysk", singular_verb="e", clause_order="VSO", np_order="DAN",
        postpositions=False, question_first=True,
    ),
    "qad": DemoLanguage(
        "qad", "Demo-D", True, ("p", "t", "m", "n", "l", "r", "s", "w", "j"), ("a", "e", "i", "o"),
        ("", "", "n", "s"), plural="ri", singular_verb="na", clause_order="SVO", np_order="DAN",
        postpositions=False, question_first=False,
    ),
    "qae": DemoLanguage(
        "qae", "Demo-E", True, ("k", "g", "d", "t", "v", "ch", "ts", "n"), ("i", "u", "e", "a"),
        ("", "l", "r", "x"), plural="ven", singular_verb="it", clause_order="VSO", np_order="NAD",
        postpositions=True, question_first=True,
    ),
    "qaf": DemoLanguage(
        "qaf", "Demo-F", True, ("f", "th", "p", "m", "qu", "r", "b", "w"), ("o", "ia", "e", "u"),
        ("", "", "ng", "s"), plural="um", singular_verb="o", clause_order="SOV", np_order="DNA",
        postpositions=False, question_first=False,
    ),
}  # fmt: skip
# An unseen close relative of qab in another orthography (as Maltese is to Arabic, or Uyghur in its script to
# Uzbek): most of its words are qab's, respelled, and share only some subwords with them
DEMO_LANGUAGES["qag"] = relative(
    DEMO_LANGUAGES["qab"], "qag", "Demo-G",
    rules=(("sh", "ž"), ("ou", "ë"), ("ai", "ej"), ("k", "q"), ("y", "j"), ("f", "v")), cognate_share=0.8,
)  # fmt: skip

# The world's English: the concepts' English glosses in English word order, the tiny models' high-resource
# language. Its web text also holds definitional statements made with the ConceptNet templates ("a hotel is a
# type of place."), as real web text does, so the base models know the words ConceptNet sentences are made of.
ENGLISH = DemoLanguage(
    "qen", "Demo-English", True, (), (), (), plural="s", singular_verb="s", clause_order="SVO",
    np_order="DAN", postpositions=False, question_first=True, plural_verb="",
)  # fmt: skip

# The shared concept inventory: per SIB topic 16 nouns, 4 verbs and 4 adjectives (English glosses).
TOPIC_WORDS: dict[str, tuple[str, str, str]] = {
    "science/technology": (
        "computer software robot laboratory scientist experiment energy satellite telescope engine battery "
        "internet data signal theory machine", "invent measure calculate discover", "digital electric precise modern"),
    "travel": (
        "hotel airport passport ticket train luggage beach tourist museum map journey flight guide visa "
        "harbor camp", "visit explore book arrive", "foreign scenic crowded cheap"),
    "politics": (
        "government election president parliament minister law vote party citizen treaty policy senate "
        "campaign court protest constitution", "elect govern negotiate debate", "national democratic official public"),
    "sports": (
        "football team player match stadium coach goal medal race athlete ball tournament referee score "
        "champion league", "win kick compete defeat", "fast strong athletic professional"),
    "health": (
        "doctor medicine fever hospital patient nurse vaccine disease virus blood heart pain clinic surgery "
        "infection diet", "heal treat cure diagnose", "sick healthy medical chronic"),
    "entertainment": (
        "film music song actor concert theater festival singer album dance comedy television audience stage "
        "artist novel", "sing perform watch laugh", "famous funny popular musical"),
    "geography": (
        "mountain river island ocean desert valley forest lake coast volcano continent glacier plain climate "
        "region canyon", "flow erupt cover border", "northern tropical rocky vast"),
}  # fmt: skip
GENERAL_WORDS = (
    "person day year city country house child group family water world time place story money friend",
    "see have make take give find need know",
    "big small new old good bad long short",
)
FUNCTION_WORDS = {"det": "the a this every", "prep": "in on with for from near", "conj": "and but because"}
QUESTION = "q:whether"  # the question particle
ANTONYMS = (("big", "small"), ("new", "old"), ("good", "bad"), ("long", "short"), ("sick", "healthy"))
TOPIC_CONTEXT = {  # HasContext ends and IsA categories (English) per topic
    "science/technology": ("technology", "tool", "invention"),
    "travel": ("tourism", "place", "service"),
    "politics": ("politics", "institution", "process"),
    "sports": ("sport", "activity", "competition"),
    "health": ("medicine", "condition", "treatment"),
    "entertainment": ("entertainment", "art", "performance"),
    "geography": ("geography", "landform", "area"),
}
UNKNOWN_RELATIONS = ("NotDesires", "dbpedia/genre", "NotCapableOf", "Entails", "InstanceOf")
POS_TAG = {"noun": "n", "verb": "v", "adj": "a"}
P_TOPICAL = {"noun": 0.6, "verb": 0.5, "adj": 0.5}  # chance a content word comes from the sentence's topic
SYNONYM_SHARE = 0.15  # concepts with a second, synonymous word
DUMP = "conceptnet/conceptnet-assertions-5.7.0.csv.gz"


class Concept(NamedTuple):
    key: str  # "<topic>:<gloss>", "general:<gloss>", "<function class>:<gloss>"
    gloss: str  # English
    pos: str  # noun, verb, adj, det, prep, conj, q
    topic: str | None


def _by_pos(n: int) -> dict[str, int]:
    """`n` content words as 2/3 nouns, the rest verbs and adjectives."""
    return {"noun": n * 2 // 3, "verb": (n - n * 2 // 3 + 1) // 2, "adj": (n - n * 2 // 3) // 2}


def concepts(config: WorldConfig) -> list[Concept]:
    """The shared inventory: topic words (2/3 nouns, the rest verbs and adjectives), general, function words."""
    k, r = config.concepts_per_topic, config.rare_per_topic
    if not 3 <= k <= 24:
        raise ValueError(f"concepts_per_topic must be between 3 and 24, got {k}")
    if not 0 <= r <= 500:
        raise ValueError(f"rare_per_topic must be between 0 and 500, got {r}")
    if config.flores_topic_words < 0:
        raise ValueError(f"flores_topic_words must be >= 0 (0: no limit), got {config.flores_topic_words}")
    out = []
    for topic, words in TOPIC_WORDS.items():
        for pos, glosses in zip(POS_TAG, words, strict=True):
            out += [Concept(f"{topic}:{g}", g, pos, topic) for g in glosses.split()[: _by_pos(k)[pos]]]
        stem = topic.split("/")[0]  # the extra words of the semantic variant, with made-up English glosses
        for pos, n in _by_pos(r).items():
            out += [Concept(f"{topic}:{stem}-{pos}-{i}", f"{stem}-{pos}-{i}", pos, topic) for i in range(n)]
    for pos, glosses in zip(POS_TAG, GENERAL_WORDS, strict=True):
        out += [Concept(f"general:{g}", g, pos, None) for g in glosses.split()]
    for pos, glosses in FUNCTION_WORDS.items():
        out += [Concept(f"{pos}:{g}", g, pos, None) for g in glosses.split()]
    return out + [Concept(QUESTION, "whether", "q", None)]


def build_lexicon(lang: DemoLanguage, inventory: list[Concept], seed: int) -> dict[str, tuple[str, ...]]:
    """Concept key -> the language's words for it (main word first, then synonyms); all words distinct.

    English (no sound inventory) uses the glosses.
    """
    if lang is ENGLISH:
        return {c.key: (c.gloss,) for c in inventory}
    rng = Random(f"{seed}/{lang.code}/lexicon")
    used: set[str] = set()

    def new_word(syllables: int) -> str:
        for attempt in range(10_000):
            n = syllables + attempt // 100  # longer words if the short ones run out
            word = "".join(rng.choice(letters) for letters in (lang.onsets, lang.vowels, lang.codas) * n)
            if word not in used:
                used.add(word)
                return word
        raise RuntimeError(f"{lang.code}: cannot make a new word")

    lexicon: dict[str, tuple[str, ...]] = {}
    if lang.relative_of is not None:  # cognates first (every function word), so new words avoid their forms
        parent = build_lexicon(DEMO_LANGUAGES[lang.relative_of], inventory, seed)
        draws = {c.key: rng.random() for c in inventory}
        for c in inventory:
            cognate = tuple(lang.respell(w) for w in parent[c.key])
            if (c.pos not in POS_TAG or draws[c.key] < lang.cognate_share) and not used & set(cognate):
                lexicon[c.key] = cognate
                used.update(cognate)
    for c in inventory:
        if c.key in lexicon:
            continue
        if c.pos not in POS_TAG:
            lexicon[c.key] = (new_word(1),)
            continue
        words = [new_word(rng.choice((2, 2, 3)))]
        if rng.random() < SYNONYM_SHARE:
            words.append(new_word(rng.choice((2, 3))))
        lexicon[c.key] = tuple(words)
    return lexicon


# ----------------------------------------------------------------------------------------------------------
# Sentences: drawn once as language-independent structures, then realised in each language


class NounPhrase(NamedTuple):
    det: str | None
    adj: str | None
    noun: str
    plural: bool


class Clause(NamedTuple):
    subject: NounPhrase
    verb: str
    obj: NounPhrase | None
    prep: str | None
    pp: NounPhrase | str | None  # a noun phrase or a year


class Sentence(NamedTuple):
    topic: str
    clauses: tuple[Clause, ...]
    conj: str | None
    question: bool


Slots = dict[tuple[str | None, str], list[str]]


def _slots(inventory: list[Concept]) -> Slots:
    """(topic or None, pos) -> concept keys."""
    slots: Slots = defaultdict(list)
    for c in inventory:
        slots[(c.topic, c.pos)].append(c.key)
    return slots


def _content(rng: Random, slots: Slots, topic: str, pos: str, scale: float = 1.0) -> str:
    return rng.choice(slots[(topic if rng.random() < P_TOPICAL[pos] * scale else None, pos)])


def _noun_phrase(rng: Random, slots: Slots, topic: str, scale: float = 1.0) -> NounPhrase:
    det = rng.choice(slots[(None, "det")]) if rng.random() < 0.6 else None
    adj = _content(rng, slots, topic, "adj", scale) if rng.random() < 0.35 else None
    return NounPhrase(det, adj, _content(rng, slots, topic, "noun", scale), rng.random() < 0.4)


def _clause(rng: Random, slots: Slots, topic: str, scale: float = 1.0) -> Clause:
    subject, verb = _noun_phrase(rng, slots, topic, scale), _content(rng, slots, topic, "verb", scale)
    obj = _noun_phrase(rng, slots, topic, scale) if rng.random() < 0.8 else None
    if rng.random() < 0.08:
        return Clause(subject, verb, obj, "prep:in", str(rng.randint(1950, 2024)))
    if rng.random() < 0.45:
        prep = rng.choice(slots[(None, "prep")])  # before the phrase: the draws' order is the world's bytes
        return Clause(subject, verb, obj, prep, _noun_phrase(rng, slots, topic, scale))
    return Clause(subject, verb, obj, None, None)


def _length(s: Sentence) -> int:
    """Number of words (the same in every language)."""
    phrases = [p for c in s.clauses for p in (c.subject, c.obj, c.pp) if p is not None]
    n = sum(1 if isinstance(p, str) else 1 + (p.det is not None) + (p.adj is not None) for p in phrases)
    return n + sum(1 + (c.prep is not None) for c in s.clauses) + (s.conj is not None) + s.question


def _content_keys(s: Sentence) -> list[str]:
    phrases = [p for c in s.clauses for p in (c.subject, c.obj, c.pp) if isinstance(p, NounPhrase)]
    return [c.verb for c in s.clauses] + [k for p in phrases for k in (p.adj, p.noun) if k]


def draw_sentence(rng: Random, slots: Slots, topic: str, max_topical: int = 0) -> Sentence:
    """A sentence structure of 6-16 words with at least one word of `topic` (at most `max_topical`, if not 0:
    its content words are then drawn from the topic a quarter as often)."""
    scale = 0.25 if max_topical else 1.0
    max_topical = max_topical or 99
    while True:
        clauses = tuple(_clause(rng, slots, topic, scale) for _ in range(2 if rng.random() < 0.3 else 1))
        conj = rng.choice(slots[(None, "conj")]) if len(clauses) == 2 else None
        s = Sentence(topic, clauses, conj, rng.random() < 0.1)
        n = sum(key.startswith(f"{topic}:") for key in _content_keys(s))
        if 6 <= _length(s) <= 16 and 1 <= n <= max_topical:
            return s


def realise(s: Sentence, lang: DemoLanguage, lexicon: dict[str, tuple[str, ...]], rng: Random) -> str:
    """The sentence in `lang`: word order, agreement, synonyms (chosen with `rng`), capital, punctuation."""

    def word(key: str) -> str:
        words = lexicon[key]
        return words[1] if len(words) > 1 and rng.random() < 0.3 else words[0]

    def noun_phrase(p: NounPhrase | str | None) -> list[str]:
        if p is None or isinstance(p, str):
            return [] if p is None else [p]
        det, adj = p.det and word(p.det), p.adj and word(p.adj)
        parts = {"D": det, "A": adj, "N": word(p.noun) + lang.plural * p.plural}
        return [parts[slot] for slot in lang.np_order if parts[slot]]

    def clause(c: Clause) -> list[str]:
        plural_verb = lang.plural if lang.plural_verb is None else lang.plural_verb
        verb = word(c.verb) + (plural_verb if c.subject.plural else lang.singular_verb)
        slots = {"S": noun_phrase(c.subject), "V": [verb], "O": noun_phrase(c.obj)}
        pp = [] if c.prep is None else [word(c.prep)]
        pp = noun_phrase(c.pp) + pp if lang.postpositions else pp + noun_phrase(c.pp)
        if lang.clause_order == "SOV":  # adjuncts before the final verb
            return slots["S"] + slots["O"] + pp + slots["V"]
        return [w for slot in lang.clause_order for w in slots[slot]] + pp

    words = clause(s.clauses[0])
    for c in s.clauses[1:]:
        words += [word(s.conj)] + clause(c)
    if s.question:
        words = [word(QUESTION)] + words if lang.question_first else words + [word(QUESTION)]
    text = " ".join(words)
    return text[0].upper() + text[1:] + ("?" if s.question else ".")
