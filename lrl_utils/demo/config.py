"""The demo world's settings (`WorldConfig`): what the generated world depends on; its hash names its folder.

Light on purpose (the standard library only): the grid imports it to name the world folder without loading the
generator (`language.py`, `world.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorldConfig:
    """Everything the world depends on; `hash()` names its folder."""

    seed: int = 0
    docs_per_language: int = 1200
    sentences_per_doc: tuple[int, int] = (3, 7)
    flores_dev: int = 997  # the sizes of the real FLORES-200 release
    flores_devtest: int = 1012
    # SIB-200's split of its 1004 FLORES sentences (701 / 99 / 204). With fewer training sentences (140 were
    # tried) the tiny models' topic fine-tuning never left chance on validation and three seeds spread by
    # +-0.05-0.15: the score measured noise (docs/architecture.md, "Why adapters hurt unseen-language TC")
    sib_split: tuple[int, int, int] = (701, 99, 204)
    concepts_per_topic: int = 24
    generator_version: int = 6  # bump when the generator's output changes, so old worlds are not reused
    # The semantic variant (profile `data.world_rare_words` / `data.world_flores_topic_words`; 0 = off, the
    # demo): extra content words per topic (glossed `<topic>-<pos>-<n>`), and FLORES / SIB-200 sentences with
    # at most this many topic words, so that 701 training sentences cannot teach a bag of words the topics and
    # TC needs what the words mean (docs/architecture.md, "The semantic world")
    # Added later: recorded and hashed only when set, so the demo's worlds keep their names and bytes (the
    # `hashed_unless_default` convention of the specs' `_added` fields)
    rare_per_topic: int = field(default=0, metadata={"hashed_unless_default": True})
    flores_topic_words: int = field(default=0, metadata={"hashed_unless_default": True})
    # Named entities in the web text (profile `data.world_web_names`; 0.0 = none, the older worlds): the share of
    # GlotCC sentences whose noun phrases may become names made as in the NER data (`tasks.py`), as real web
    # text is full of the names WikiANN tags. Without them a tiny model never sees a capitalised word inside a
    # sentence, its tokenizer spells names letter by letter, and NER cannot be learned (docs/architecture.md)
    web_names: float = field(default=0.0, metadata={"hashed_unless_default": True})
    # Mislabeled web text (profile `data.world_mislabeled_relative`; 0.0 = none, the older worlds): documents of
    # an unseen close relative (`qag`) added to its parent's (`qab`) GlotCC corpus, as this share of the
    # parent's documents. Language identification confuses close relatives, so a web corpus labelled with a
    # language holds some of its relatives' text: the relative stays out of every language list (share 0), but
    # the pieces of it that reach pre-training are under-trained rather than never trained, as the paper's
    # unseen languages' pieces were trained through other languages' text (docs/architecture.md)
    mislabeled_relative: float = field(default=0.0, metadata={"hashed_unless_default": True})
    # Evaluative web text (profile `data.world_web_polarity`; 0.0 = none, the older worlds): the share of GlotCC
    # documents that take a side, half of them positive, half negative. Each of their sentences gives 1-2 noun
    # phrases an evaluative adjective of the document's polarity (the sentiment data's adjectives), as reviews and
    # opinion pieces keep to one side. Without them the evaluative adjectives occur by topic alone (`healthy` with
    # `sick`), and masked LM learns them as topic words, not as good or bad (docs/architecture.md)
    web_polarity: float = field(default=0.0, metadata={"hashed_unless_default": True})
    # Code-switching (profile `data.world_web_code_switch`; 0.0 = none, the older worlds): the share of a web
    # document's topic words that a language's GlotCC sentences write as the English word (inflected as its own),
    # as web text in smaller languages borrows English words. FLORES and SIB-200, professional translations, keep
    # every word in the language (docs/architecture.md)
    web_code_switch: float = field(default=0.0, metadata={"hashed_unless_default": True})
    # Sentiment words the training split never labels (profile `data.world_sentiment_held_out`; 0 = none, the
    # older worlds): the last this-many evaluative adjectives of each polarity (`tasks.POSITIVE` / `NEGATIVE`)
    # never carry the label of a training sentence; development and test sentences draw from all of them, as a
    # small sentiment set's test reviews use words its training reviews did not. Their polarity is then read from
    # what the model learned of them, not from the task data (docs/architecture.md)
    sentiment_held_out: int = field(default=0, metadata={"hashed_unless_default": True})

    def record(self) -> dict:
        """The fields as world.json records and `hash()` hashes them."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not (f.metadata.get("hashed_unless_default") and getattr(self, f.name) == f.default)
        }

    def hash(self) -> str:
        canonical = json.dumps(self.record(), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def world_config(data) -> WorldConfig:
    """The world a profile's `data:` settings (`DataSettings`, demo mode) ask for."""
    return WorldConfig(
        seed=data.world_seed,
        rare_per_topic=data.world_rare_words,
        flores_topic_words=data.world_flores_topic_words,
        web_names=data.world_web_names,
        mislabeled_relative=data.world_mislabeled_relative,
        web_polarity=data.world_web_polarity,
        web_code_switch=data.world_web_code_switch,
        sentiment_held_out=data.world_sentiment_held_out,
    )
