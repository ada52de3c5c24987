"""Tiny mBERT / XLM-R stand-ins (tokenizers, models) and the masked-LM training loop, on a synthetic corpus."""

from __future__ import annotations

import copy
import json
import random

import pytest
import torch
from transformers import AutoTokenizer

from lrl_utils.config.params import TinyModel
from lrl_utils.config.train_settings import TrainConfig
from lrl_utils.training import loop as training
from lrl_utils.training.base_models import build_tiny_model, pretrain, train_tokenizer
from lrl_utils.training.loop import train_lm

ARCHS = ["bert", "xlm-roberta"]


def make_corpus(n: int, seed: int) -> list[str]:
    """Short, repetitive sentences with accents and capitals (a learnable toy language)."""
    rng = random.Random(seed)
    subjects = ["Ána", "Bérénice", "Çelik", "Dörte", "Émile", "Ñandú"]
    verbs = ["sieht", "mängt", "lâche", "prüft", "wählt"]
    objects = ["den Hünd", "la fenêtre", "ein Äpfel", "das Öl", "una señal"]
    places = ["in Zürich", "à Orléans", "bei Ødegård", "en Málaga"]
    return [
        f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(places)}."
        for _ in range(n)
    ]


TRAIN, VAL = make_corpus(300, 0), make_corpus(48, 1)
TINY = dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=ARCHS)
def tokenizer(request):
    return train_tokenizer(request.param, TRAIN, vocab_size=300)


def tiny_model(tokenizer, seed: int = 0):
    arch = "bert" if "Bert" in type(tokenizer).__name__ else "xlm-roberta"
    torch.manual_seed(seed)
    return build_tiny_model(arch, TinyModel(**TINY), tokenizer)


def test_tokenizer_special_tokens_and_round_trip(tokenizer, tmp_path):
    text = "Émile prüft das Öl in Zürich."
    ids = tokenizer(text)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    if "Bert" in type(tokenizer).__name__:
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert [tokenizer.pad_token, tokenizer.unk_token, tokenizer.mask_token] == [
            "[PAD]",
            "[UNK]",
            "[MASK]",
        ]
    else:
        assert tokens[0] == "<s>" and tokens[-1] == "</s>"
        # XLM-R's ids: <s> 0, <pad> 1, </s> 2, <unk> 3
        special = [
            tokenizer.bos_token_id,
            tokenizer.pad_token_id,
            tokenizer.eos_token_id,
            tokenizer.unk_token_id,
        ]
        assert special == [0, 1, 2, 3] and tokenizer.mask_token == "<mask>"
        assert tokenizer("a b")["input_ids"][0] == 0 and tokenizer("a <mask> b")["input_ids"].count(4) == 1
    # cased and accents kept: no unknowns, and the text decodes back
    joined = "".join(tokens)
    assert "É" in joined and "Ö" in joined and "ü" in joined
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.model_max_length == 128
    assert len(tokenizer(" ".join(TRAIN), truncation=True)["input_ids"]) == 128

    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(reloaded) is type(tokenizer)
    assert reloaded.all_special_tokens == tokenizer.all_special_tokens
    assert reloaded.model_max_length == tokenizer.model_max_length
    assert len(reloaded) == len(tokenizer)
    for sentence in VAL[:20] + [text, "Unseen wörds ÀÉÎ"]:
        assert reloaded(sentence)["input_ids"] == tokenizer(sentence)["input_ids"]


def test_build_tiny_model_shapes(tokenizer):
    model = tiny_model(tokenizer)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied
    batch = tokenizer([" ".join(TRAIN)] + VAL[:2], truncation=True, padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[1] == tokenizer.model_max_length  # the longest fits the positions
    logits = model(**batch).logits
    assert logits.shape == (3, tokenizer.model_max_length, len(tokenizer))


def test_train_lm_learns_reproducibly(tokenizer):
    config = TrainConfig(
        max_steps=120, batch_size=16, learning_rate=2e-3, max_length=64, eval_every=40, log_every=20
    )
    model = tiny_model(tokenizer)
    twin = copy.deepcopy(model)
    history = pretrain(model, tokenizer, TRAIN, VAL, config, progress=False)

    first, last = history["val_loss"][0][1], history["final_val_loss"]
    assert last < first - 1.0, history["val_loss"]
    assert [s for s, _ in history["val_loss"]] == [0, 40, 80, 120]
    assert [s for s, _ in history["train_loss"]] == [20, 40, 60, 80, 100, 120]
    assert history["steps"] == 120 and history["tokens_seen"] > 120 * 16 * 5
    assert history["trainable_params"] == sum(p.numel() for p in model.parameters())
    assert history["best_val_loss"] == min(v for s, v in history["val_loss"] if s > 0)
    assert json.loads(json.dumps(history)) == history

    again = pretrain(twin, tokenizer, TRAIN, VAL, config, progress=False)  # same seed, same start
    assert again["train_loss"] == history["train_loss"] and again["val_loss"] == history["val_loss"]
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q)


def test_train_lm_loads_back_the_best_state(tokenizer, monkeypatch):
    """Scripted val losses: best at step 10 of 30, so the model must end with its step-10 parameters."""
    model = tiny_model(tokenizer)
    scripted = iter([5.0, 1.0, 3.0, 4.0])  # steps 0, 10, 20, 30
    states = {}

    def fake_evaluate(objective, val_batches, accelerator):
        states[len(states) * 10] = copy.deepcopy(objective.model.state_dict())
        return next(scripted)

    monkeypatch.setattr(training, "evaluate_loss", fake_evaluate)
    config = TrainConfig(max_steps=30, batch_size=8, learning_rate=1e-3, max_length=32, eval_every=10)
    history = train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
    assert history["best_step"] == 10 and history["best_val_loss"] == 1.0 and history["final_val_loss"] == 4.0
    final = model.state_dict()
    assert all(torch.equal(final[k], states[10][k]) for k in final)
    assert not all(torch.equal(final[k], states[30][k]) for k in final)


def test_train_lm_raises_on_nan(tokenizer):
    model = tiny_model(tokenizer)
    config = TrainConfig(max_steps=20, batch_size=8, learning_rate=1e30, max_length=32, eval_every=10)
    with pytest.raises(FloatingPointError, match=r"at step \d+"):
        train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)


def test_train_lm_trains_only_what_requires_grad(tokenizer):
    model = tiny_model(tokenizer)
    for name, p in model.named_parameters():
        p.requires_grad_("encoder" in name)
    before = copy.deepcopy(model.state_dict())
    config = TrainConfig(max_steps=3, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=10)
    history = train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
    assert history["trainable_params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]) != ("encoder" in name), name


def test_vocabulary_corpora_reach_the_tokenizer_not_the_weights(tmp_path, monkeypatch):
    """The base_model stage trains its tokenizer on the pre-training text plus every document of its
    `vocabulary_corpora` (a language the weights never see gets whole-word pieces), and pre-trains on the
    shares of `corpora` only."""
    from types import SimpleNamespace

    from lrl_utils.training import base_model_stage

    def corpus(name: str, texts: list[str]) -> str:
        folder = tmp_path / name
        folder.mkdir()
        for stem, part in (("train", texts), ("val", texts[:4]), ("test", texts[:4])):
            lines = [json.dumps({"text": t}, ensure_ascii=False) for t in part]
            (folder / f"{stem}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return name

    rng = random.Random(0)
    words = ["zorvanteq", "plimquaxo", "gruwend", "taksilor", "vemmurak", "oxtapin"]
    unseen = [" ".join(rng.choice(words) for _ in range(5)) + "." for _ in range(300)]
    spec = SimpleNamespace(
        corpora=(corpus("seen", TRAIN),), shares=(0.5,), vocabulary_corpora=(corpus("new", unseen),)
    )
    ctx = SimpleNamespace(spec=spec, input=lambda folder: tmp_path / folder)
    train, _, counts = base_model_stage.pretraining_text(ctx)
    assert train == TRAIN[:150] and counts == {"seen": {"share": 0.5, "train documents": 150}}
    vocabulary = base_model_stage.vocabulary_text(ctx)
    assert vocabulary == unseen
    without = train_tokenizer("xlm-roberta", train, vocab_size=300)
    with_unseen = train_tokenizer("xlm-roberta", train + vocabulary, vocab_size=300)
    assert len(without.tokenize("zorvanteq")) > 1 and with_unseen.tokenize("zorvanteq") == ["▁zorvanteq"]
    spec.vocabulary_corpora = ()
    assert base_model_stage.vocabulary_text(ctx) == []
