"""One LM head path for training, pseudo-perplexity and reloading; causal-LM adapters (full fine-tuning and every
adapter method: test_adapter_methods.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from adapters import AutoAdapterModel
from conftest import save_tiny_base
from conftest import toy_corpus as make_corpus

from lrl_utils.adapters import heads as lm_heads
from lrl_utils.adapters.methods import (
    adapter_parameters,
    add_language_adapter,
    load_language_adapter,
    load_lm_model,
    load_mlm_model,
    save_language_adapter,
)
from lrl_utils.config.train_settings import TrainConfig
from lrl_utils.evaluation.pppl import pseudo_perplexity
from lrl_utils.training.loop import train_lm

TRAIN, VAL = make_corpus(200, 0), make_corpus(32, 1)
SHORT = TrainConfig(max_steps=6, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=3)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["bert", "xlm-roberta"])
def base_dir(request, tmp_path_factory):
    out = save_tiny_base(request.param, tmp_path_factory.mktemp(f"base-{request.param}"), TRAIN, bias_std=0.5)
    return request.param, out


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_tiny_base("llama", tmp_path_factory.mktemp("base-llama"), TRAIN)


def logits_of(model, tokenizer) -> torch.Tensor:
    model.eval()
    batch = tokenizer(VAL[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def count_directions(model, name: str = "mlm") -> dict[str, int]:
    """Forward and inverse calls of the invertible adapter, counted from now on."""
    calls = {"forward": 0, "inverse": 0}

    def hook(module, args, kwargs, output):
        calls["inverse" if kwargs.get("rev") else "forward"] += 1

    model.base_model.invertible_adapters[name].register_forward_hook(hook, with_kwargs=True)
    return calls


def perturb(model, name: str = "mlm") -> None:
    """Move the adapter away from its (near-identity) initialisation so that differences show."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in adapter_parameters(model, name):
            p.add_(0.3 * torch.randn(p.shape, generator=generator))


@pytest.mark.parametrize("path", ["inverse", "paper_compat"])
def test_the_inverse_runs_in_training_only_on_the_inverse_path_and_in_pppl_on_both(base_dir, path):
    _, base = base_dir
    model, tokenizer = load_mlm_model(base)
    add_language_adapter(model, "seq_bn_inv", overrides={"reduction_factor": 4}, head_path=path)
    assert lm_heads.head_path(model) == path
    calls = count_directions(model)
    train_lm(model, tokenizer, TRAIN, VAL, SHORT, progress=False)  # training steps and validation losses
    assert calls["forward"] > 0
    assert (calls["inverse"] == calls["forward"]) if path == "inverse" else calls["inverse"] == 0
    before = dict(calls)
    scores = pseudo_perplexity(model, tokenizer, VAL[:2], max_length=32, progress=False)
    assert scores["head_path"] == path
    assert calls["forward"] > before["forward"]
    assert calls["inverse"] - before["inverse"] == calls["forward"] - before["forward"]  # paper_compat too
    assert lm_heads.inverse_applied(model) == (path == "inverse")  # back to the training forward


def test_the_inverse_path_is_the_library_mad_x_head_plus_the_pretrained_bias(base_dir, tmp_path):
    """`adapters`' own flex MLM head applies the inverse but drops the vocabulary bias: our path differs from it by
    exactly the pretrained bias, and the original static path differs by more."""
    _, base = base_dir
    model, tokenizer = load_mlm_model(base)
    add_language_adapter(model, "seq_bn_inv", overrides={"reduction_factor": 4})
    perturb(model)
    save_language_adapter(model, tmp_path / "adapter")
    ours = logits_of(model, tokenizer)
    flex = AutoAdapterModel.from_pretrained(base)
    flex.load_adapter(str(tmp_path / "adapter"), load_as="mlm", with_head=False)
    flex.set_active_adapters("mlm")
    library = logits_of(flex, tokenizer)
    bias = model.get_output_embeddings().bias.detach()
    assert bias.abs().max() > 0.1  # the fixture's non-zero pretrained bias
    torch.testing.assert_close(ours - bias, library, rtol=0, atol=1e-4)
    lm_heads.set_head_path(model, "paper_compat")
    assert (logits_of(model, tokenizer) - bias - library).abs().max() > 1e-3


@pytest.mark.parametrize("path", ["inverse", "paper_compat"])
def test_a_saved_and_reloaded_adapter_gives_identical_logits_and_pppl(base_dir, path, tmp_path):
    _, base = base_dir
    model, tokenizer = load_mlm_model(base)
    add_language_adapter(model, "seq_bn_inv", overrides={"reduction_factor": 4}, head_path=path)
    train_lm(model, tokenizer, TRAIN, VAL, SHORT, progress=False)
    perturb(model)
    folder = save_language_adapter(model, tmp_path / "adapter")
    assert json.loads((folder / lm_heads.HEAD_PATH_FILE).read_text()) == {"head_path": path}
    assert (folder / "pytorch_model_head.bin").exists() == (path == "paper_compat")  # the original's layout
    trained, trained_pppl = (
        logits_of(model, tokenizer),
        pseudo_perplexity(model, tokenizer, VAL[:3], 32, progress=False)["pppl"],
    )

    fresh, _ = load_mlm_model(base)
    assert lm_heads.head_path(fresh) == "paper_compat"  # nothing is hooked before an adapter is loaded
    load_language_adapter(fresh, folder)
    assert lm_heads.head_path(fresh) == path
    assert torch.equal(logits_of(fresh, tokenizer), trained)
    assert pseudo_perplexity(fresh, tokenizer, VAL[:3], 32, progress=False)["pppl"] == trained_pppl

    other = "paper_compat" if path == "inverse" else "inverse"
    lm_heads.set_head_path(fresh, other)  # the other path really gives other logits
    assert not torch.allclose(logits_of(fresh, tokenizer), trained, atol=1e-4)


def static_head_logits(model, hidden: torch.Tensor, inverse: bool) -> torch.Tensor:
    """The static MLM head written out: its transform, then the invertible adapter's inverse or not, then the
    projection tied to the input embeddings plus the vocabulary bias."""
    if hasattr(model, "cls"):  # BertForMaskedLM
        transformed, bias = model.cls.predictions.transform(hidden), model.cls.predictions.bias
    else:  # XLMRobertaForMaskedLM: dense, GELU, LayerNorm
        head = model.lm_head
        transformed, bias = head.layer_norm(F.gelu(head.dense(hidden))), head.bias
    if inverse:
        transformed = model.base_model.invertible_adapters_forward(transformed, rev=True)
    return F.linear(transformed, model.get_input_embeddings().weight, bias)


def original_pppl(model, tokenizer, sentences: list[str]) -> list[float]:
    """The original's `get_pppl_flores_adapter.py` loop: mask one token at a time (special tokens too), one forward
    pass each, softmax over the vocabulary, p of the original token; exp(-mean log p) per sentence."""
    scores = []
    with torch.no_grad():
        for sentence in sentences:
            ids = tokenizer.encode(sentence, truncation=True, max_length=512)
            log_p = 0.0
            for i, token in enumerate(ids):
                masked = torch.tensor([ids])
                masked[0, i] = tokenizer.mask_token_id
                probs = torch.softmax(model(input_ids=masked).logits[0, i], dim=-1)
                log_p += math.log(probs[token].item())
            scores.append(math.exp(-log_p / len(ids)))
    return scores


@pytest.mark.parametrize("written_by", ["pipeline", "original"])
def test_paper_compat_trains_without_the_inverse_and_scores_as_the_original(base_dir, written_by, tmp_path):
    """The original trained `seq_bn_inv` on the static head (no inverse) and computed PPPL with `AutoAdapterModel`
    + `load_adapter(..., with_head=True)`: the saved head, its bias, the inverse before the projection. An adapter
    trained and saved by the pipeline under `paper_compat`, and a folder as the original's `AdapterTrainer` wrote
    it (static head saved with a trained transform and bias, no `head_path.json`), score as that reference does."""
    _, base = base_dir
    model, tokenizer = load_mlm_model(base)
    add_language_adapter(model, "seq_bn_inv", overrides={"reduction_factor": 4}, head_path="paper_compat")
    folder = tmp_path / "mlm"
    if written_by == "pipeline":
        train_lm(model, tokenizer, TRAIN, VAL, SHORT, progress=False)
        perturb(model)
        # the training forward: the static head on the adapter's hidden states, without the inverse
        encoder, _ = lm_heads.encoder_and_head(model)
        batch = tokenizer(VAL[:4], padding=True, return_tensors="pt")
        model.eval()
        with torch.no_grad():
            hidden = encoder(**batch).last_hidden_state
            training = model(**batch).logits
            with lm_heads.evaluation_head(model):
                evaluation = model(**batch).logits
            without, with_inverse = (
                static_head_logits(model, hidden, inverse=flag) for flag in (False, True)
            )
        torch.testing.assert_close(training, without, rtol=0, atol=1e-5)
        torch.testing.assert_close(evaluation, with_inverse, rtol=0, atol=1e-5)
        assert (training - evaluation).abs().max() > 1e-3
        save_language_adapter(model, folder)
        assert lm_heads.read_head_path(folder) == "paper_compat"
    else:
        perturb(model)
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():  # `train_adapter` leaves the static head's transform trainable: it moved
            for name, p in model.named_parameters():
                if any(part in name for part in ("transform", "lm_head.dense", "lm_head.layer_norm")):
                    p.add_(0.3 * torch.randn(p.shape, generator=generator))
            model.get_output_embeddings().bias.add_(torch.randn(model.config.vocab_size, generator=generator))
        model.save_adapter(str(folder), "mlm")  # with_head=True, as `AdapterTrainer` saves adapters
        assert not (folder / lm_heads.HEAD_PATH_FILE).exists()
    assert (folder / "pytorch_model_head.bin").exists()
    sentences = VAL[:4]

    # (a) the pipeline's PPPL stage: the base model, the adapter with its head path, batched PPPL
    ours_model, _ = load_mlm_model(base)
    load_language_adapter(ours_model, folder)
    ours = pseudo_perplexity(ours_model.double(), tokenizer, sentences, max_batch_tokens=64, progress=False)
    assert ours["head_path"] == "paper_compat" and ours["dtype"] == "float64"

    # (b) the original's evaluation, in float64
    original = AutoAdapterModel.from_pretrained(base)
    original.load_adapter(str(folder), load_as="lang_adapter", with_head=True)
    original.set_active_adapters("lang_adapter")
    want = original_pppl(original.double().eval(), tokenizer, sentences)
    flex = pseudo_perplexity(original, tokenizer, sentences, progress=False)  # its own head: the inverse once
    assert [row["pppl"] for row in flex["per_sentence"]] == pytest.approx(want, rel=1e-10, abs=0)

    got = [row["pppl"] for row in ours["per_sentence"]]
    assert got == pytest.approx(want, rel=1e-10, abs=0)
    assert ours["pppl"] == pytest.approx(sum(want) / len(want), rel=1e-10, abs=0)
    # without the inverse (the static head, as the adapter was trained) the scores are others
    ours_model.eval()
    no_inverse = original_pppl(ours_model, tokenizer, sentences)
    assert max(abs(a / b - 1) for a, b in zip(no_inverse, want, strict=True)) > 1e-4


def test_head_path_records(tmp_path):
    assert lm_heads.read_head_path(tmp_path) == "paper_compat"  # adapters trained by the original code
    lm_heads.write_head_path(tmp_path, "inverse")
    assert lm_heads.read_head_path(tmp_path) == "inverse"
    (tmp_path / lm_heads.HEAD_PATH_FILE).write_text('{"head_path": "flex"}')
    with pytest.raises(ValueError, match="head_path.json: head_path must be one of"):
        lm_heads.read_head_path(tmp_path)
    with pytest.raises(ValueError, match="head_path must be one of"):
        lm_heads.write_head_path(tmp_path, "static")


def test_causal_lm_seq_bn_inv_adapter_on_a_tiny_llama(llama_dir, tmp_path):
    model, tokenizer = load_lm_model(llama_dir, "clm")
    assert type(model).__name__ == "LlamaForCausalLM"
    counts = add_language_adapter(model, "seq_bn_inv", name="clm", overrides={"reduction_factor": 4})
    assert counts["trainable_params"] == counts["adapter_params"] > 0
    assert not model.get_output_embeddings().weight.requires_grad
    calls = count_directions(model, "clm")
    config = TrainConfig(
        objective="clm", max_steps=30, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=10
    )
    history = train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
    assert calls["inverse"] == calls["forward"] > 0  # the inverse runs before the (untied) lm_head
    assert history["best_val_loss"] < history["val_loss"][0][1]
    folder = save_language_adapter(model, tmp_path / "adapter", name="clm")
    fresh, _ = load_lm_model(llama_dir, "clm")
    load_language_adapter(fresh, folder, name="clm")
    assert torch.equal(logits_of(fresh, tokenizer), logits_of(model, tokenizer))
    with pytest.raises(ValueError, match="objective must be"):
        load_lm_model(llama_dir, "seq2seq")


def test_the_seed_fixes_the_adapters_initial_weights(base_dir):
    _, base = base_dir
    weights = []
    for seed in (42, 42, 7):
        model, _ = load_mlm_model(base)
        add_language_adapter(model, "lora", overrides={"r": 4}, seed=seed)
        weights.append([p.detach().clone() for p in adapter_parameters(model)])
    assert all(torch.equal(a, b) for a, b in zip(weights[0], weights[1], strict=True))
    assert not all(torch.equal(a, c) for a, c in zip(weights[0], weights[2], strict=True))
