"""Child process of tests/test_determinism.py: train both tokenizers and a tiny model, write their bytes to argv[1].

Run as a script with the environment under test (hash seed, tokenizers' parallelism, thread counts)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from lrl_utils.config.params import TinyModel
from lrl_utils.config.train_settings import TrainConfig
from lrl_utils.orchestration.notebook import _threads
from lrl_utils.training.base_models import build_tiny_model, pretrain, train_tokenizer


def corpus(n: int) -> list[str]:
    """Sentences of a small demo-world language: many words of similar frequency (ties for the trainers)."""
    from random import Random

    from lrl_utils.demo.language import (
        DEMO_LANGUAGES,
        WorldConfig,
        _slots,
        build_lexicon,
        concepts,
        draw_sentence,
        realise,
    )

    inventory = concepts(WorldConfig())
    slots, rng = _slots(inventory), Random(0)
    texts = []
    for code in sorted(DEMO_LANGUAGES):
        lexicon = build_lexicon(DEMO_LANGUAGES[code], inventory, 0)
        for i in range(n):
            topic = sorted({c.topic for c in inventory if c.topic})[i % 7]
            texts.append(realise(draw_sentence(rng, slots, topic), DEMO_LANGUAGES[code], lexicon, rng))
    return texts


def main(out: Path) -> None:
    _threads()  # the runner's thread budget (LRL_THREADS), as a notebook's `start` applies it
    texts = corpus(150)
    for architecture in ("bert", "xlm-roberta"):
        tokenizer = train_tokenizer(architecture, texts, vocab_size=400, alphabet="ëž")
        (out / f"{architecture}.tokenizer.json").write_text(tokenizer.backend_tokenizer.to_str())
    torch.manual_seed(0)
    sizes = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    model = build_tiny_model("bert", TinyModel(**sizes), tokenizer := train_tokenizer("bert", texts, 400))
    config = TrainConfig(max_steps=12, batch_size=16, learning_rate=2e-3, max_length=32, eval_every=6)
    pretrain(model, tokenizer, texts[:-40], texts[-40:], config, progress=False)
    model.save_pretrained(out / "model")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
