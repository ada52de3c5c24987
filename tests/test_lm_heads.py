"""One LM head path for training, pseudo-perplexity and reloading; full fine-tuning; causal-LM adapters."""

from __future__ import annotations

import json

import pytest
import torch
from adapters import AutoAdapterModel
from conftest import save_tiny_base
from conftest import toy_corpus as make_corpus

from lrl_utils import lm_heads
from lrl_utils.evaluation import pseudo_perplexity
from lrl_utils.language_adapters import (
    adapter_parameters,
    add_language_adapter,
    load_language_adapter,
    load_lm_model,
    load_mlm_model,
    save_language_adapter,
)
from lrl_utils.training import TrainConfig, train_lm

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
def test_the_inverse_runs_in_training_and_pppl_only_on_the_inverse_path(base_dir, path):
    _, base = base_dir
    model, tokenizer = load_mlm_model(base)
    add_language_adapter(model, "seq_bn_inv", overrides={"reduction_factor": 4}, head_path=path)
    assert lm_heads.head_path(model) == path
    calls = count_directions(model)
    train_lm(model, tokenizer, TRAIN, VAL, SHORT, progress=False)
    assert calls["forward"] > 0
    assert (calls["inverse"] == calls["forward"]) if path == "inverse" else calls["inverse"] == 0
    before = dict(calls)
    pseudo_perplexity(model, tokenizer, VAL[:2], max_length=32, progress=False)
    assert calls["forward"] > before["forward"]
    assert (calls["inverse"] > before["inverse"]) == (path == "inverse")


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


def test_head_path_records(tmp_path):
    assert lm_heads.read_head_path(tmp_path) == "paper_compat"  # adapters trained by the original code
    lm_heads.write_head_path(tmp_path, "inverse")
    assert lm_heads.read_head_path(tmp_path) == "inverse"
    (tmp_path / lm_heads.HEAD_PATH_FILE).write_text('{"head_path": "flex"}')
    with pytest.raises(ValueError, match="head_path.json: head_path must be one of"):
        lm_heads.read_head_path(tmp_path)
    with pytest.raises(ValueError, match="head_path must be one of"):
        lm_heads.write_head_path(tmp_path, "static")


def test_full_fine_tuning_trains_every_weight_and_saves_a_base_model(base_dir, tmp_path):
    arch, base = base_dir
    model, tokenizer = load_mlm_model(base)
    counts = add_language_adapter(model, "fft")
    total = sum(p.numel() for p in model.parameters())
    assert counts["adapter_params"] == 0 and counts["trainable_params"] == total
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    history = train_lm(model, tokenizer, TRAIN, VAL, SHORT, progress=False)
    assert history["trainable_params"] == total
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    head = "cls.predictions.transform.dense.weight" if arch == "bert" else "lm_head.dense.weight"
    assert head in changed and any("encoder.layer.0" in n for n in changed)
    folder = save_language_adapter(model, tmp_path / "model", name=None, tokenizer=tokenizer)
    reloaded, reloaded_tokenizer = load_mlm_model(folder)  # the downstream stages' base model
    assert torch.equal(logits_of(reloaded, reloaded_tokenizer), logits_of(model, tokenizer))
    with pytest.raises(ValueError, match="no adapter overrides"):
        add_language_adapter(load_mlm_model(base)[0], "fft", overrides={"reduction_factor": 4})


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
