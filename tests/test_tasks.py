"""Tests of lrl_utils.evaluation.tasks: a task adapter stacked on a frozen language adapter and a frozen tiny base."""

from __future__ import annotations

import json
import random

import adapters
import datasets
import numpy as np
import pytest
import torch
from adapters.composition import Stack
from sklearn.metrics import accuracy_score, f1_score
from tokenizers import BertWordPieceTokenizer, models, processors
from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

from lrl_utils.config.train_settings import TaskTrainConfig
from lrl_utils.evaluation import task_loop, tasks
from lrl_utils.evaluation.tasks import train_text_classifier

LABELS = ["sport", "food", "music", "weather"]
TOPIC_WORDS = {
    0: ["ball", "goal", "team", "match", "score", "coach"],
    1: ["bread", "soup", "rice", "salt", "cook", "meal"],
    2: ["song", "drum", "band", "tune", "sing", "piano"],
    3: ["rain", "snow", "wind", "cloud", "storm", "sun"],
}
FILLER = ["the", "a", "was", "and", "today", "very", "we", "saw", "some", "of", "it", "good", "big", "new"]


def make_text(label: int, rng: random.Random) -> str:
    words = rng.sample(TOPIC_WORDS[label], 3) + rng.choices(FILLER, k=rng.randint(3, 6))
    rng.shuffle(words)
    return " ".join(words)


def make_data(seed: int = 0, sizes: tuple[int, int, int] = (96, 32, 32)) -> datasets.DatasetDict:
    rng = random.Random(seed)
    splits = {}
    for name, size in zip(("train", "validation", "test"), sizes, strict=True):
        labels = [i % len(LABELS) for i in range(size)]
        splits[name] = datasets.Dataset.from_dict(
            {"text": [make_text(y, rng) for y in labels], "label": labels}
        )
    return datasets.DatasetDict(splits)


def make_tokenizer(texts: list[str]) -> BertTokenizerFast:
    raw = BertWordPieceTokenizer(lowercase=True, strip_accents=False)
    raw.train_from_iterator(
        texts, vocab_size=100, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    # The trainer breaks frequency ties in a random order: renumber the vocabulary canonically so that
    # token ids (and so the whole test) are the same in every run.
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + sorted(set(raw.get_vocab()) - set(specials))
    raw._tokenizer.model = models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]")
    raw._tokenizer.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return BertTokenizerFast(tokenizer_object=raw._tokenizer, do_lower_case=True, strip_accents=False)


def mlm_steps(model, tokenizer, texts: list[str], steps: int, lr: float, seed: int) -> None:
    """A minimal masked-LM loop (15% masking, all masked positions replaced by [MASK])."""
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(texts), (32,), generator=gen).tolist()
        batch = tokenizer([texts[i] for i in idx], padding=True, return_tensors="pt")
        labels = batch["input_ids"].clone()
        special = (labels == tokenizer.cls_token_id) | (labels == tokenizer.sep_token_id)
        masked = (torch.rand(labels.shape, generator=gen) < 0.15) & batch["attention_mask"].bool() & ~special
        labels[~masked] = -100
        batch["input_ids"][masked] = tokenizer.mask_token_id
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A briefly pre-trained tiny BERT base and a language adapter saved from its static MLM head."""
    root = tmp_path_factory.mktemp("tc")
    data = make_data()
    rng = random.Random(123)
    corpus = [make_text(rng.randrange(len(LABELS)), rng) for _ in range(1000)]
    tokenizer = make_tokenizer(corpus)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,  # the seq_bn task adapter's bottleneck is hidden / 16 = 4
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=64,
    )
    base = BertForMaskedLM(config)
    mlm_steps(base, tokenizer, corpus, steps=500, lr=3e-3, seed=0)
    base_dir = root / "base"
    base.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)

    adapters.init(base)
    base.add_adapter("mlm", config="seq_bn")
    base.train_adapter("mlm")
    mlm_steps(base, tokenizer, corpus, steps=20, lr=1e-3, seed=1)
    adapter_dir = root / "lang_adapter"
    base.save_adapter(str(adapter_dir), "mlm")
    return {"base_dir": str(base_dir), "adapter_dir": str(adapter_dir), "data": data}


def capture_models(monkeypatch) -> list:
    """Make train_text_classifier hand out the model it builds, with a snapshot taken before training."""
    built: list = []
    original = tasks.build_task_model

    def wrapper(*args, **kwargs):
        model, tokenizer = original(*args, **kwargs)
        snapshot = {name: p.detach().clone() for name, p in model.named_parameters()}
        built.append({"model": model, "tokenizer": tokenizer, "before": snapshot})
        return model, tokenizer

    monkeypatch.setattr(tasks, "build_task_model", wrapper)
    return built


def assert_metrics_consistent(result: dict) -> None:
    gold = [row["label"] for row in result["predictions"]]
    pred = [row["pred"] for row in result["predictions"]]
    assert result["test_macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))
    assert result["test_accuracy"] == pytest.approx(accuracy_score(gold, pred))
    assert result["best_epoch"] == int(np.argmin(result["val_loss"])) + 1
    json.dumps(result)  # JSON-serialisable


def test_stacked_task_adapter_learns_and_keeps_language_adapter_frozen(world, monkeypatch):
    built = capture_models(monkeypatch)
    config = TaskTrainConfig(epochs=8, batch_size=16, learning_rate=5e-3, seed=1)
    result = train_text_classifier(
        world["base_dir"], world["data"], LABELS, world["adapter_dir"], config, progress=False
    )
    assert result["test_macro_f1"] > 0.8  # chance is 0.25
    assert len(result["val_loss"]) == len(result["train_loss"]) == len(result["val_macro_f1"]) == 8
    assert result["train_loss"][-1] < result["train_loss"][0]
    assert_metrics_consistent(result)

    model = built[0]["model"]
    assert model.active_adapters == Stack("lang_adapter", "topic_classification")
    assert model.active_head == "topic_classification"
    assert list(model.heads) == ["topic_classification"]  # the converted MLM head "default" is gone
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("topic_classification" in name for name in trainable)
    assert result["trainable_params"] == sum(p.numel() for n, p in model.named_parameters() if n in trainable)

    lang_params = [name for name, _ in model.named_parameters() if "lang_adapter" in name]
    assert lang_params
    changed = {
        name for name, p in model.named_parameters() if not torch.equal(p.detach(), built[0]["before"][name])
    }
    assert changed and changed <= trainable  # base and language adapter untouched
    # The loaded language adapter is the saved one, bit for bit.
    reference = adapters.AutoAdapterModel.from_pretrained(world["base_dir"])
    reference.load_adapter(world["adapter_dir"], load_as="lang_adapter", with_head=False)
    ref_params = dict(reference.named_parameters())
    for name in lang_params:
        assert torch.equal(dict(model.named_parameters())[name], ref_params[name])

    # The language adapter takes part in the forward pass (the Stack is effective).
    batch = built[0]["tokenizer"](["the ball and the goal"], return_tensors="pt")
    with torch.inference_mode():
        stacked = model(**batch).logits
        model.active_adapters = Stack("topic_classification")
        task_only = model(**batch).logits
        model.active_adapters = Stack("lang_adapter", "topic_classification")
    assert (stacked - task_only).abs().max() > 1e-4

    # The restored state is the best epoch's: its validation loss is the minimum of the history.
    val_texts, val_labels = tasks._split(world["data"], "validation")
    encoded = tasks.Encodings(built[0]["tokenizer"], val_texts, config.max_length)
    val_loss, _ = tasks._evaluate(model, encoded, val_labels, config)
    assert val_loss == pytest.approx(min(result["val_loss"]), rel=1e-5)


def test_without_language_adapter(world, monkeypatch):
    built = capture_models(monkeypatch)
    config = TaskTrainConfig(epochs=8, batch_size=16, learning_rate=5e-3, seed=2)
    result = train_text_classifier(world["base_dir"], world["data"], LABELS, None, config, progress=False)
    assert result["test_macro_f1"] > 0.8
    assert_metrics_consistent(result)
    model = built[0]["model"]
    assert model.active_adapters == Stack("topic_classification")
    assert not any("lang_adapter" in name for name, _ in model.named_parameters())


def test_a_label_outside_the_classes_is_a_line_naming_the_split_and_row(world):
    data = world["data"]
    test = data["test"].to_dict()
    test["label"] = [*test["label"][:-1], len(LABELS)]
    broken = type(data)({**data, "test": type(data["test"]).from_dict(test)})
    config = TaskTrainConfig(epochs=1, batch_size=16, learning_rate=5e-3, seed=2)
    row = len(test["label"]) - 1
    with pytest.raises(
        ValueError, match=rf"^test row {row}: label {len(LABELS)} is not one of the {len(LABELS)} classes"
    ):
        train_text_classifier(world["base_dir"], broken, LABELS, None, config, progress=False)


def test_best_epoch_state_is_the_one_evaluated(world, monkeypatch):
    """Scripted validation losses (best = epoch 2 of 4): the test predictions use epoch 2's parameters."""
    scripted = iter([0.9, 0.5, 0.7, 0.6])
    snapshots: list[dict] = []
    original = tasks._evaluate

    def fake_evaluate(model, encoded, labels, config):
        loss, preds = original(model, encoded, labels, config)
        snapshots.append(task_loop.trainable_state(model))
        if len(snapshots) <= 4:  # validation after each epoch; the 5th call is the test set
            return next(scripted), preds
        return loss, preds

    monkeypatch.setattr(tasks, "_evaluate", fake_evaluate)
    small = make_data(seed=5, sizes=(16, 8, 8))
    config = TaskTrainConfig(epochs=4, batch_size=8, learning_rate=1e-2, seed=3)
    result = train_text_classifier(
        world["base_dir"], small, LABELS, world["adapter_dir"], config, progress=False
    )
    assert result["val_loss"] == [0.9, 0.5, 0.7, 0.6]
    assert result["best_epoch"] == 2
    assert len(snapshots) == 5
    test_state, epoch2, epoch4 = snapshots[4], snapshots[1], snapshots[3]
    assert all(torch.equal(test_state[k], epoch2[k]) for k in test_state)
    assert any(not torch.equal(test_state[k], epoch4[k]) for k in test_state)


def test_seeded_runs_are_reproducible(world):
    small = make_data(seed=7, sizes=(16, 8, 8))
    config = TaskTrainConfig(epochs=2, batch_size=8, learning_rate=1e-3, seed=4)
    first = train_text_classifier(
        world["base_dir"], small, LABELS, world["adapter_dir"], config, progress=False
    )
    second = train_text_classifier(
        world["base_dir"], small, LABELS, world["adapter_dir"], config, progress=False
    )
    assert first["val_loss"] == second["val_loss"]
    assert first["predictions"] == second["predictions"]


@pytest.mark.parametrize("architecture", ["bert", "xlm-roberta"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_encodings_give_the_tensors_of_tokenising_each_batch(architecture, side):
    """Texts tokenised once and padded per batch give exactly what tokenising the batch with padding does
    (ids, attention mask, token types; truncation at max_length; either padding side)."""
    from lrl_utils.training.base_models import train_tokenizer

    rng = random.Random(0)
    texts = [make_text(rng.randrange(len(LABELS)), rng) * rng.randint(1, 6) for _ in range(40)] + ["", "x"]
    tokenizer = train_tokenizer(architecture, texts, vocab_size=300)
    tokenizer.padding_side = side
    encoded = tasks.Encodings(tokenizer, texts, max_length=24)
    assert len(encoded) == len(texts)
    for _ in range(20):
        idx = rng.sample(range(len(texts)), rng.randint(1, 9))
        expected = tokenizer(
            [texts[i] for i in idx], truncation=True, max_length=24, padding=True, return_tensors="pt"
        )
        got = encoded.batch(idx)
        assert set(got) == set(expected)
        for key, tensor in expected.items():
            assert got[key].dtype == tensor.dtype and torch.equal(got[key], tensor), key


def test_default_config_is_the_papers():
    config = TaskTrainConfig()
    assert (config.epochs, config.batch_size, config.learning_rate) == (20, 32, 1e-4)
    assert (config.warmup_ratio, config.weight_decay, config.max_length, config.seed) == (0.05, 0.01, 256, 1)


@pytest.mark.parametrize("kind", ["seq_bn_inv", "lora"])
def test_other_language_adapter_kinds_stay_frozen(world, monkeypatch, tmp_path, kind):
    """Invertible and LoRA language adapters (the paper's other two kinds) are stacked and frozen too."""
    model = BertForMaskedLM.from_pretrained(world["base_dir"])
    tokenizer = BertTokenizerFast.from_pretrained(world["base_dir"])
    adapters.init(model)
    model.add_adapter("mlm", config=kind)
    model.train_adapter("mlm")
    mlm_steps(model, tokenizer, world["data"]["train"]["text"], steps=10, lr=1e-3, seed=2)
    model.save_adapter(str(tmp_path / kind), "mlm")

    built = capture_models(monkeypatch)
    small = make_data(seed=9, sizes=(16, 8, 8))
    config = TaskTrainConfig(epochs=2, batch_size=8, learning_rate=1e-3, seed=1)
    result = train_text_classifier(
        world["base_dir"], small, LABELS, str(tmp_path / kind), config, progress=False
    )
    assert_metrics_consistent(result)
    task_model = built[0]["model"]
    assert task_model.active_adapters == Stack("lang_adapter", "topic_classification")
    changed = {
        name
        for name, p in task_model.named_parameters()
        if not torch.equal(p.detach(), built[0]["before"][name])
    }
    assert changed and all("topic_classification" in name for name in changed)
    if kind == "seq_bn_inv":
        assert any("invertible_adapters.lang_adapter" in n for n, _ in task_model.named_parameters())


@pytest.mark.parametrize("iso3, dataset", [("heb", "hebrew"), ("swh", "swahili")])
def test_sentiment_on_real_samples_stacked_on_a_language_adapter(shared, tmp_path, iso3, dataset):
    """One small end-to-end sentiment fine-tune on the real samples of a language: the task adapter and head are
    named as in the paper, the language adapter stays frozen, and the saved metrics follow from the saved
    predictions by an independent scikit-learn call."""
    from conftest import save_tiny_base

    from lrl_utils.adapters.methods import add_language_adapter, load_mlm_model, save_language_adapter
    from lrl_utils.data.sentiment import SENTIMENT_LABELS, load_sentiment

    data = load_sentiment(shared / "sentiment", dataset, iso3=iso3, missing_splits="carve")
    data = datasets.DatasetDict({k: v.select(range(min(len(v), 64))) for k, v in data.items()})
    base = save_tiny_base("xlm-roberta", tmp_path / "base", list(data["train"]["text"]))
    mlm, _ = load_mlm_model(base)
    add_language_adapter(mlm, "seq_bn", overrides={"reduction_factor": 4}, seed=0)
    adapter_dir = save_language_adapter(mlm, tmp_path / "adapter")
    config = TaskTrainConfig(epochs=2, batch_size=16, learning_rate=1e-3, max_length=48)
    result = tasks.train_text_classifier(
        str(base), data, SENTIMENT_LABELS, str(adapter_dir), config, progress=False, task="sa"
    )
    assert result["task"] == "sa" and result["lang_adapter"] and 1 <= result["best_epoch"] <= 2
    gold = [row["label"] for row in result["predictions"]]
    pred = [row["pred"] for row in result["predictions"]]
    assert len(gold) == len(data["test"]) and set(gold) <= {0, 1}
    assert result["test_macro_f1"] == f1_score(gold, pred, average="macro", zero_division=0)
    assert result["test_accuracy"] == float(np.mean(np.array(gold) == np.array(pred)))
    with pytest.raises(ValueError, match="task must be one of"):
        tasks.train_text_classifier(
            str(base), data, SENTIMENT_LABELS, None, config, progress=False, task="ner"
        )


def test_topic_classification_on_real_sib200_samples(shared, tmp_path):
    """One small end-to-end TC fine-tune on the real SIB-200 samples of Maltese: best epoch by validation loss,
    saved metrics equal an independent scikit-learn call on the saved predictions."""
    from conftest import save_tiny_base

    from lrl_utils.data.flores_sib import SIB_LABELS, load_sib200

    data = load_sib200(shared / "sib200", "mlt_Latn")
    assert set(data) == {"train", "validation", "test"} and len(data["test"]) > 0
    base = save_tiny_base("bert", tmp_path / "base", list(data["train"]["text"]))
    config = TaskTrainConfig(epochs=3, batch_size=32, learning_rate=1e-3, max_length=48)
    result = tasks.train_text_classifier(str(base), data, SIB_LABELS, None, config, progress=False, task="tc")
    assert result["best_epoch"] == 1 + int(np.argmin(result["val_loss"]))
    gold = [row["label"] for row in result["predictions"]]
    pred = [row["pred"] for row in result["predictions"]]
    assert len(gold) == len(data["test"]) and set(gold) <= set(range(7))
    assert result["test_macro_f1"] == f1_score(gold, pred, average="macro", zero_division=0)


@pytest.mark.parametrize("pooling", ["mean", "mean_norm", "mean_std"])
def test_pooled_heads_read_the_mean_of_the_unpadded_token_states(world, pooling):
    """`mean`: the classification head reads the mean over the attention mask; `mean_norm`: that mean
    layer-normalised, so that scaling every token state (as a language adapter may) leaves its logits unchanged."""
    model, _ = tasks.build_task_model(world["base_dir"], LABELS, None, pooling=pooling)
    head = model.heads[tasks.TASK_NAME]
    model.eval()
    torch.manual_seed(0)
    states = torch.randn(2, 5, 64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])

    def logits(x, m=mask):
        with torch.no_grad():
            return head((x,), attention_mask=m, return_dict=False)[0]

    padded = states.clone()
    padded[0, 3:] = 100.0  # what padding positions hold must not matter
    assert torch.allclose(logits(states), logits(padded), atol=1e-5)
    scaled = logits(states * 3.0)
    if pooling == "mean_norm":
        assert torch.allclose(logits(states), scaled, atol=1e-4)
    else:
        assert not torch.allclose(logits(states), scaled, atol=1e-3)


def test_the_standardised_head_standardises_each_feature_over_the_batch_and_keeps_running_statistics(world):
    """`mean_std`: while training, the head reads each pooled feature standardised over the batch (so scaling
    every token state, as a language adapter may, changes nothing); evaluating, it standardises with the running
    statistics it kept, so one sentence's prediction does not depend on the others in its batch."""
    model, _ = tasks.build_task_model(world["base_dir"], LABELS, None, pooling="mean_std")
    head = model.heads[tasks.TASK_NAME]
    torch.manual_seed(0)
    states = torch.randn(8, 5, 64) * 0.5 + torch.randn(64) * 3.0  # a large common part, small differences
    mask = torch.ones(8, 5, dtype=torch.long)
    head.train()
    pooled = head.pool(states, mask)
    assert torch.allclose(pooled.mean(0), torch.zeros(64), atol=1e-4)
    assert torch.allclose(pooled.var(0, unbiased=False), torch.ones(64), atol=0.01)
    assert not torch.allclose(head.pooled_mean, torch.zeros(64))  # the running mean moved towards the batch's
    assert torch.allclose(head.pool(states * 3.0, mask), pooled, atol=1e-2)
    assert "pooled_mean" not in dict(head.named_parameters())  # statistics, not weights
    assert head.pool(states.bfloat16(), mask).dtype == torch.float32  # bf16 autocast: statistics in float32
    head.eval()
    with torch.no_grad():
        alone = head.pool(states[:1], mask[:1])
        together = head.pool(states, mask)
    assert torch.allclose(alone, together[:1], atol=1e-6)


def test_the_epoch_loop_keeps_the_best_epochs_buffers_with_its_weights():
    """A standardising head's running statistics change every batch; the best epoch's weights are restored with
    the statistics they were trained with."""
    from lrl_utils.config.train_settings import TaskTrainConfig
    from lrl_utils.evaluation import task_loop

    model = torch.nn.Linear(2, 1)
    model.register_buffer("seen", torch.zeros(1))
    model.register_buffer("ids", torch.arange(3))  # integer buffers are not training state
    config = TaskTrainConfig(epochs=3, batch_size=2, learning_rate=0.1, warmup_ratio=0.0, seed=1)

    def batch_loss(indices):
        model.seen += 1
        loss = model(torch.ones(len(indices), 2)).pow(2).mean()
        return loss, float(loss.detach()) * len(indices), len(indices)

    val = iter([(1.0, 0.0), (0.5, 0.0), (0.9, 0.0)])  # the second epoch is best
    result = task_loop.train_epochs(model, config, 4, batch_loss, lambda: next(val), "score", progress=False)
    assert result["best_epoch"] == 2
    assert model.seen.item() == 4  # two batches an epoch, restored to the end of epoch 2 (not 6)
    assert torch.equal(model.ids, torch.arange(3))
