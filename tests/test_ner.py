"""Tests of lrl_utils.evaluation.ner: label alignment on real WikiANN samples and NER fine-tuning with a task adapter on
a tiny base (baseline, one frozen language adapter, fusion of two)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from adapters import AutoAdapterModel
from adapters.composition import Stack
from conftest import save_tiny_base, shared_data
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.scheme import IOB2
from tokenizers import ByteLevelBPETokenizer
from transformers import AutoTokenizer, RobertaTokenizerFast

from lrl_utils.adapters.methods import (
    adapter_parameters,
    add_language_adapter,
    load_mlm_model,
    save_language_adapter,
)
from lrl_utils.config.train_settings import TaskTrainConfig
from lrl_utils.data.wikiann import NER_TAGS, load_wikiann
from lrl_utils.evaluation import ner, task_loop
from lrl_utils.evaluation.ner import align_labels, recompute_metrics, train_ner_tagger

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LANGS = {"mt": "mlt", "he": "heb"}  # WikiANN samples with all three splits
ARCHS = ("bert", "xlm-roberta")
TEST_METRICS = (
    "test_f1",
    "test_f1_strict",
    "test_precision",
    "test_precision_strict",
    "test_recall",
    "test_recall_strict",
    "test_accuracy",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Real WikiANN (mlt, heb); per architecture a tiny base (tokenizer trained on both languages) and two
    seq_bn language adapters with random, clearly non-zero weights."""
    path = shared_data()
    if path is None:
        pytest.skip("../shared/data not found: real-sample tests need the shared folder (or LRL_SHARED_DATA)")
    data = {iso2: load_wikiann(path / "wikiann", iso2, iso3=iso3) for iso2, iso3 in LANGS.items()}
    texts = [" ".join(t) for d in data.values() for t in d["train"]["tokens"]]
    root = tmp_path_factory.mktemp("ner")
    out: dict = {"data": data}
    for arch in ARCHS:
        base = save_tiny_base(arch, root / arch, texts)
        adapter_dirs = []
        for seed in (1, 2):
            model, _ = load_mlm_model(base)
            add_language_adapter(model, "seq_bn", seed=seed)
            with torch.no_grad():
                for p in adapter_parameters(model, "mlm"):
                    p.normal_(0, 0.1)
            adapter_dirs.append(save_language_adapter(model, root / f"{arch}-lang{seed}"))
        out[arch] = {"base": base, "adapters": adapter_dirs, "tokenizer": AutoTokenizer.from_pretrained(base)}
    return out


# ----------------------------------------------------------------------------------------------------------
# Label alignment


def expected_labels(tokenizer, tokens: list[str], tags: list[int], mode: str) -> list[int]:
    """Untruncated labels built from each word tokenised on its own (independent of `word_ids`)."""
    labels = [-100]
    for word, tag in zip(tokens, tags, strict=True):
        n = len(tokenizer(word, add_special_tokens=False)["input_ids"])
        labels += [tag] * n if mode == "paper_compat" else [tag] + [-100] * (n - 1) if n else []
    return labels + [-100]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("iso2", list(LANGS))
def test_alignment_on_real_samples(world, arch, iso2):
    tokenizer = world[arch]["tokenizer"]
    specials = {tokenizer.cls_token_id, tokenizer.sep_token_id}
    split = world["data"][iso2]["train"]
    checked_truncated = 0
    for tokens, tags in zip(split["tokens"], split["ner_tags"], strict=True):
        first = align_labels(tokenizer, tokens, tags, "first", max_length=128)
        every = align_labels(tokenizer, tokens, tags, "all", max_length=128)  # alias of paper_compat
        assert first["input_ids"] == every["input_ids"] and first["word_starts"] == every["word_starts"]
        ids, starts = first["input_ids"], first["word_starts"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        for labels in (first["labels"], every["labels"]):
            assert all(lab == -100 for i, lab in zip(ids, labels, strict=True) if i in specials)
        # first: exactly one labelled position per word that has one, carrying the word's tag
        labelled = [pos for pos, lab in enumerate(first["labels"]) if lab != -100]
        assert labelled == sorted(s for s in starts if s is not None)
        assert all(first["labels"][s] == tags[w] for w, s in enumerate(starts) if s is not None)
        if len(ids) < 128:  # not truncated: compare with the word-by-word tokenisation
            assert first["labels"] == expected_labels(tokenizer, tokens, tags, "first")
            assert every["labels"] == expected_labels(tokenizer, tokens, tags, "paper_compat")
            assert all(lab != -100 for i, lab in zip(ids, every["labels"], strict=True) if i not in specials)
        # a truncated copy keeps the prefix: same labels, words beyond the cut have no position
        short = align_labels(tokenizer, tokens, tags, "first", max_length=12)
        if len(ids) > 12:
            checked_truncated += 1
            assert len(short["input_ids"]) == 12 and short["input_ids"][-1] == tokenizer.sep_token_id
            assert short["labels"][:11] == first["labels"][:11] and short["labels"][11] == -100
            assert short["word_starts"] == [s if s is not None and s < 11 else None for s in starts]
    assert checked_truncated > 10


def test_alignment_rejects_bad_input(world):
    tokenizer = world["bert"]["tokenizer"]
    with pytest.raises(ValueError, match="label_alignment"):
        align_labels(tokenizer, ["a"], [0], "middle")
    with pytest.raises(ValueError, match="tags"):
        align_labels(tokenizer, ["a", "b"], [0], "first")
    with pytest.raises(ValueError, match="lang_adapter"):
        ner.adapter_kind(("a", "b", "c"))


def test_byte_level_bpe_tokenizer_gets_prefix_space(world, tmp_path):
    texts = [" ".join(t) for t in world["data"]["mt"]["train"]["tokens"]]
    raw = ByteLevelBPETokenizer()
    raw.train_from_iterator(texts, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    raw.save_model(str(tmp_path))
    RobertaTokenizerFast(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")).save_pretrained(tmp_path)
    plain = AutoTokenizer.from_pretrained(tmp_path)
    with pytest.raises(AssertionError, match="add_prefix_space"):
        plain(["Il", "Malti"], is_split_into_words=True)
    tokenizer = ner.load_ner_tokenizer(tmp_path)
    assert tokenizer.add_prefix_space is True
    out = align_labels(tokenizer, ["Il", "Malti"], [0, 5], "first", 16)
    assert [out["labels"][s] for s in out["word_starts"]] == [0, 5]


# ----------------------------------------------------------------------------------------------------------
# Metrics


def test_recompute_metrics_hand_computed():
    rows = [
        {"gold": ["B-PER", "I-PER", "O", "B-LOC"], "pred": ["I-PER", "I-PER", "O", "B-ORG"]},
        {"gold": ["B-ORG", "O"], "pred": ["B-ORG", "O"]},
    ]
    got = recompute_metrics(rows)
    # default (conlleval) mode: I-PER I-PER is the PER entity; 2 of 3 predicted, 2 of 3 gold entities correct
    assert got["precision"] == pytest.approx(2 / 3) and got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 / 3)
    # strict IOB2: a span starting with I- is no entity; 1 of 2 predicted, 1 of 3 gold correct
    assert got["precision_strict"] == pytest.approx(1 / 2) and got["recall_strict"] == pytest.approx(1 / 3)
    assert got["f1_strict"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert got["accuracy"] == pytest.approx(4 / 6)


# ----------------------------------------------------------------------------------------------------------
# Fine-tuning


def capture(monkeypatch) -> list[dict]:
    """Make train_ner_tagger hand out the model it builds, with a snapshot taken before training."""
    built: list[dict] = []
    original = ner.build_ner_model

    def wrapper(*args, **kwargs):
        model, tokenizer = original(*args, **kwargs)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        built.append({"model": model, "tokenizer": tokenizer, "before": before, "regularised": []})
        regularisation = model.base_model.get_fusion_regularization_loss

        def counted():  # records each step's regularisation loss and whether it was back-propagated
            loss = regularisation()
            record = {"loss": loss, "backward": False}
            if loss is not None:
                loss.register_hook(lambda grad: record.update(backward=True))
            built[-1]["regularised"].append(record)
            return loss

        model.base_model.get_fusion_regularization_loss = counted
        return model, tokenizer

    monkeypatch.setattr(ner, "build_ner_model", wrapper)
    return built


def lang_adapter_arg(world, arch: str, kind: str):
    dirs = world[arch]["adapters"]
    return {"none": None, "single": dirs[0], "fusion": (dirs[0], dirs[1])}[kind]


def decode_independently(model, tokenizer, tokens: list[str], max_length: int) -> tuple[list[str], int]:
    """Predicted tag per word (argmax at the word's first sub-token, O for a word cut off); number cut off."""
    enc = tokenizer(
        tokens, is_split_into_words=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.inference_mode():
        best = model(**enc).logits[0].argmax(-1).tolist()
    first: dict[int, int] = {}
    for pos, word in enumerate(enc.word_ids()):
        if word is not None:
            first.setdefault(word, pos)
    tags = [NER_TAGS[best[first[w]]] if w in first else "O" for w in range(len(tokens))]
    return tags, len(tokens) - len(first)


FUSION_LAYER = "adapter_fusion_layer.conceptnet_adapter,glot_adapter."


@pytest.mark.parametrize(
    "arch, kind, alignment",
    [
        ("bert", "none", "first"),
        ("bert", "single", "paper_compat"),
        ("bert", "fusion", "first"),
        ("xlm-roberta", "single", "first"),
        ("xlm-roberta", "fusion", "first"),
    ],
)
def test_fine_tune_on_real_samples(world, monkeypatch, arch, kind, alignment):
    built = capture(monkeypatch)
    config = TaskTrainConfig(epochs=3, batch_size=8, learning_rate=5e-2, max_length=64, seed=1)
    data = world["data"]["mt"]
    result = train_ner_tagger(
        world[arch]["base"], data, lang_adapter_arg(world, arch, kind), config, alignment, progress=False
    )
    json.dumps(result)
    assert result["lang_adapter"] == kind and result["label_alignment"] == alignment
    assert len(result["train_loss"]) == len(result["val_loss"]) == len(result["val_f1"]) == 3
    assert result["best_epoch"] == int(np.argmin(result["val_loss"])) + 1
    assert result["train_loss"][-1] < result["train_loss"][0]
    assert sorted(k for k in result if k.startswith("test_")) == sorted(TEST_METRICS)
    for key in TEST_METRICS:
        assert 0.0 <= result[key] <= 1.0
    assert all(0.0 <= f <= 1.0 for f in result["val_f1"])

    # predictions: one per test sentence and word; the saved metrics are seqeval's on them
    preds = result["predictions"]
    assert [p["tokens"] for p in preds] == [list(t) for t in data["test"]["tokens"]]
    assert [p["gold"] for p in preds] == [[NER_TAGS[i] for i in g] for g in data["test"]["ner_tags"]]
    assert all(len(p["pred"]) == len(p["tokens"]) for p in preds)
    gold, pred = [p["gold"] for p in preds], [p["pred"] for p in preds]
    if alignment == "first":  # the metric checks below are not vacuous (the tiny model tags some entities;
        # with every sub-token labelled, O dominates even more and it predicts next to none in 3 epochs)
        assert any(tag != "O" for row in pred for tag in row)
    assert {f"test_{k}": v for k, v in recompute_metrics(preds).items()} == {
        k: result[k] for k in TEST_METRICS
    }
    assert result["test_f1"] == pytest.approx(seqeval_f1(gold, pred))
    assert result["test_f1_strict"] == pytest.approx(seqeval_f1(gold, pred, mode="strict", scheme=IOB2))

    # exactly the expected parameters train: ner adapter + head (+ fusion); language adapters stay frozen
    model, tokenizer = built[0]["model"], built[0]["tokenizer"]
    params = dict(model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    ner_adapter = {n for n in params if ".adapters.ner." in n}
    head = {n for n in params if n.startswith("heads.ner.")}
    fusion = {n for n in params if FUSION_LAYER in n}
    assert ner_adapter and head and list(model.heads) == ["ner"]
    assert trainable == ner_adapter | head | (fusion if kind == "fusion" else set())
    assert bool(fusion) == (kind == "fusion")
    assert result["trainable_params"] == sum(params[n].numel() for n in trainable)
    changed = {n for n, p in params.items() if not torch.equal(p.detach(), built[0]["before"][n])}
    assert changed <= trainable and head <= changed and ner_adapter & changed
    if kind == "fusion":
        assert fusion & changed
    # the fusion value-matrix regularisation is part of every training step's loss (fusion only)
    steps = 3 * -(-len(data["train"]) // config.batch_size)
    regularised = built[0]["regularised"]
    assert len(regularised) == (steps if kind == "fusion" else 0)
    assert all(r["loss"] is not None and r["backward"] for r in regularised)
    names = {"none": [], "single": ["lang_adapter"], "fusion": ["conceptnet_adapter", "glot_adapter"]}[kind]
    expected_setup = {
        "none": Stack("ner"),
        "single": Stack("lang_adapter", "ner"),
        "fusion": Stack(ner.FUSION, "ner"),
    }[kind]
    assert model.active_adapters == expected_setup
    # the loaded language adapters are the saved ones, bit for bit
    if names:
        reference = AutoAdapterModel.from_pretrained(world[arch]["base"])
        for name, folder in zip(names, world[arch]["adapters"], strict=False):
            reference.load_adapter(str(folder), load_as=name, with_head=False)
        ref = dict(reference.named_parameters())
        lang_params = [n for n in params if any(f".adapters.{name}." in n for name in names)]
        assert len(lang_params) == len(names) * len([n for n in params if ".adapters.ner." in n])
        assert all(torch.equal(params[n], ref[n]) for n in lang_params)
        # ... and take part in the forward pass
        batch = tokenizer([["Il", "Malti"]], is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            stacked = model(**batch).logits
            model.active_adapters = Stack("ner")
            alone = model(**batch).logits
            model.active_adapters = expected_setup
        assert (stacked - alone).abs().max() > 1e-4

    # the saved predictions are the restored model's, read at each word's first sub-token
    model.eval()
    redo = [decode_independently(model, tokenizer, p["tokens"], config.max_length) for p in preds]
    assert [tags for tags, _ in redo] == pred
    # max_length 64 cuts some test sentences: their last words have no position and are predicted O
    assert result["words_without_position"] == sum(cut for _, cut in redo) > 0


def test_best_epoch_state_is_the_one_evaluated(world, monkeypatch):
    """Scripted validation losses (best = epoch 2 of 4): the test uses epoch 2's parameters (fusion)."""
    scripted = iter([0.9, 0.5, 0.7, 0.6])
    calls: list[dict] = []
    original = ner._evaluate

    def fake_evaluate(model, collator, split, config):
        loss, preds = original(model, collator, split, config)
        calls.append({"state": task_loop.trainable_state(model), "preds": preds})
        return (next(scripted), preds) if len(calls) <= 4 else (loss, preds)

    monkeypatch.setattr(ner, "_evaluate", fake_evaluate)
    config = TaskTrainConfig(epochs=4, batch_size=8, learning_rate=3e-2, max_length=64, seed=3)
    data = world["data"]["mt"]
    result = train_ner_tagger(
        world["bert"]["base"], data, lang_adapter_arg(world, "bert", "fusion"), config, progress=False
    )
    assert result["val_loss"] == [0.9, 0.5, 0.7, 0.6] and result["best_epoch"] == 2
    assert len(calls) == 5
    test_state, epoch2, epoch4 = calls[4]["state"], calls[1]["state"], calls[3]["state"]
    assert any(FUSION_LAYER in k for k in test_state)
    assert all(torch.equal(test_state[k], epoch2[k]) for k in test_state)
    assert any(not torch.equal(test_state[k], epoch4[k]) for k in test_state)
    assert [p["pred"] for p in result["predictions"]] == calls[4]["preds"]


def test_seeded_runs_are_reproducible(world):
    config = TaskTrainConfig(epochs=1, batch_size=16, learning_rate=1e-2, max_length=48, seed=5)
    data = world["data"]["he"]
    runs = [
        train_ner_tagger(
            world["xlm-roberta"]["base"], data, world["xlm-roberta"]["adapters"][0], config, progress=False
        )
        for _ in range(2)
    ]
    assert runs[0]["val_loss"] == runs[1]["val_loss"]
    assert runs[0]["predictions"] == runs[1]["predictions"]


def test_paper_config():
    config = ner.ner_config(seed=2)
    assert (config.epochs, config.max_length, config.batch_size, config.learning_rate) == (100, 512, 32, 1e-4)
    assert (config.warmup_ratio, config.weight_decay, config.seed) == (0.05, 0.01, 2)


def test_classification_and_ner_share_one_epoch_loop(world, monkeypatch):
    """TC/SA and NER both train through `task_loop.train_epochs`, each with its own batch loss and score."""
    from datasets import Dataset, DatasetDict

    from lrl_utils.evaluation.tasks import train_text_classifier

    calls: list[tuple[int, str]] = []
    original = task_loop.train_epochs

    def spy(model, config, n_train, batch_loss, validate, score_name, progress=True):
        calls.append((n_train, score_name))
        return original(model, config, n_train, batch_loss, validate, score_name, progress=progress)

    monkeypatch.setattr(task_loop, "train_epochs", spy)
    config = TaskTrainConfig(epochs=2, batch_size=16, learning_rate=1e-2, max_length=48, seed=5)
    data = world["data"]["he"]
    base = world["xlm-roberta"]["base"]
    tagged = train_ner_tagger(base, data, None, config, progress=False)
    texts = {
        split: Dataset.from_dict(
            {
                "text": [" ".join(t) for t in data[split]["tokens"]],
                "label": [int(any(g)) for g in data[split]["ner_tags"]],
            }
        )
        for split in data
    }
    classified = train_text_classifier(
        base, DatasetDict(texts), ["none", "entity"], None, config, progress=False
    )
    assert calls == [(data["train"].num_rows, "val_f1"), (data["train"].num_rows, "val_macro_f1")]
    for result, score in ((tagged, "val_f1"), (classified, "val_macro_f1")):
        assert len(result["train_loss"]) == len(result["val_loss"]) == len(result[score]) == 2
        assert result["best_epoch"] == int(np.argmin(result["val_loss"])) + 1


def test_a_tag_outside_the_tag_set_is_a_line_naming_the_split_and_row(tmp_path):
    from conftest import save_tiny_base, toy_corpus
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    from lrl_utils.evaluation import ner

    tokenizer = AutoTokenizer.from_pretrained(str(save_tiny_base("bert", tmp_path / "m", toy_corpus(40, 0))))
    rows = {"tokens": [["Valletta", "is"], ["Malta", "."]], "ner_tags": [[5, 0], [9, 0]]}
    data = DatasetDict({"test": Dataset.from_dict(rows)})
    with pytest.raises(ValueError, match=r"^test row 1: tag 9 is not one of the 7 tags \(0-6\)$"):
        ner._encode_split(tokenizer, data, "test", "first", 32)
