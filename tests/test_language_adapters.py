"""Language adapters on tiny static-head models: only the adapter trains, save/load round trip, paper counts."""

from __future__ import annotations

import copy
import json

import adapters
import pytest
import torch
from adapters import LoRAConfig, SeqBnConfig, SeqBnInvConfig
from conftest import save_tiny_base
from conftest import toy_corpus as make_corpus
from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

from lrl_utils.adapters.methods import (
    ADAPTER_METHODS,
    adapter_config,
    adapter_parameters,
    add_language_adapter,
    count_parameters,
    load_language_adapter,
    load_mlm_model,
    register_adapter_method,
    save_language_adapter,
)
from lrl_utils.config.train_settings import TrainConfig
from lrl_utils.training.loop import train_lm

METHODS = ["seq_bn", "seq_bn_inv", "lora"]
TINY_OVERRIDES = {"seq_bn": {"reduction_factor": 4}, "seq_bn_inv": {"reduction_factor": 4}, "lora": {"r": 4}}
HEAD_TRANSFORM = {"bert": "cls.predictions.transform.dense.weight", "xlm-roberta": "lm_head.dense.weight"}


TRAIN, VAL = make_corpus(200, 0), make_corpus(32, 1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["bert", "xlm-roberta"])
def base_dir(request, tmp_path_factory):
    """A saved tiny base model (random weights, non-zero MLM bias) that load_mlm_model reads like a checkpoint."""
    out = save_tiny_base(request.param, tmp_path_factory.mktemp(f"base-{request.param}"), TRAIN, bias_std=0.5)
    return request.param, out


def mlm_logits(model, tokenizer) -> torch.Tensor:
    model.eval()
    batch = tokenizer(VAL[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("method", METHODS)
def test_only_the_adapter_trains_and_round_trips(base_dir, method, tmp_path):
    arch, path = base_dir
    model, tokenizer = load_mlm_model(path)
    base_logits = mlm_logits(model, tokenizer)
    counts = add_language_adapter(model, method, overrides=TINY_OVERRIDES[method])

    # only the adapter requires grad: not the encoder, not the MLM head transform that train_adapter leaves on
    adapter_ids = {id(p) for p in adapter_parameters(model, "mlm")}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(id(p) in adapter_ids for p in model.parameters() if p.requires_grad)
    assert all(".mlm." in n for n in trainable), trainable
    assert not model.get_parameter(HEAD_TRANSFORM[arch]).requires_grad
    assert (
        counts["trainable_params"]
        == counts["adapter_params"]
        == model.adapter_summary(as_dict=True)[0]["#param"]
    )
    if method == "seq_bn_inv":
        assert any("invertible_adapters.mlm" in n for n in trainable)
    assert model.active_adapters is not None and "mlm" in str(model.active_adapters)

    # a few steps change the adapter and nothing else
    before = copy.deepcopy(model.state_dict())
    config = TrainConfig(max_steps=4, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=4)
    history = train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
    assert history["trainable_params"] == counts["adapter_params"]
    changed = {n for n, v in model.state_dict().items() if not torch.equal(v, before[n])}
    assert changed == trainable

    # save -> load into a fresh copy of the base gives the same MLM logits (and the adapter matters)
    trained_logits = mlm_logits(model, tokenizer)
    assert not torch.allclose(trained_logits, base_logits)
    adapter_dir = save_language_adapter(model, tmp_path / "adapter")
    assert (adapter_dir / "adapter_config.json").exists() and not (adapter_dir / "head_config.json").exists()
    fresh, _ = load_mlm_model(path)
    assert load_language_adapter(fresh, adapter_dir) == "mlm"
    torch.testing.assert_close(mlm_logits(fresh, tokenizer), trained_logits, rtol=0, atol=1e-6)


# (base class, config, encoder params without pooler): the paper's Table 2 / ADAPTERS_NOTES A8 denominators
FULL_SIZE = {
    "mbert": (BertForMaskedLM, BertConfig(vocab_size=119547), 177_262_848),
    "xlm-r": (
        XLMRobertaForMaskedLM,
        XLMRobertaConfig(vocab_size=250002, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1),
        277_453_056,
    ),
}
PAPER_COUNTS = {"seq_bn": 894_528, "seq_bn_inv": 1_190_592, "lora": 294_912}


@pytest.mark.parametrize("model_name", FULL_SIZE)
def test_full_size_adapter_counts_match_the_paper(model_name):
    model_class, config, encoder_params = FULL_SIZE[model_name]
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert config.intermediate_size == 3072
    for method, expected in PAPER_COUNTS.items():
        with torch.device("meta"):  # shapes only: no memory, no init time
            model = model_class(config)
            adapters.init(model)
            counts = add_language_adapter(model, method)
        assert counts == {
            "adapter_params": expected,
            "trainable_params": expected,
            "base_params": encoder_params,
        }
        assert model.adapter_summary(as_dict=True)[0]["#param"] == expected


def test_registry_defaults_overrides_and_duplicates():
    assert set(METHODS) <= set(ADAPTER_METHODS)
    seq_bn, inv, lora = (adapter_config(m) for m in METHODS)
    assert type(seq_bn) is SeqBnConfig and seq_bn.reduction_factor == 16 and seq_bn.output_adapter
    assert type(inv) is SeqBnInvConfig and inv.inv_adapter == "nice" and inv.inv_adapter_reduction_factor == 2
    assert type(lora) is LoRAConfig and (lora.r, lora.alpha, list(lora.attn_matrices)) == (8, 8, ["q", "v"])
    assert adapter_config("seq_bn", {"reduction_factor": 4}).reduction_factor == 4
    assert adapter_config("seq_bn").reduction_factor == 16  # overrides do not leak into the registry

    with pytest.raises(ValueError, match="reduction_factr"):
        adapter_config("seq_bn", {"reduction_factr": 4})
    with pytest.raises(ValueError, match="unknown adapter method"):
        adapter_config("prefix")
    with pytest.raises(ValueError, match="already registered"):
        register_adapter_method("seq_bn", "seq_bn")

    try:
        register_adapter_method(
            "houlsby", "double_seq_bn", {"reduction_factor": 8}, "two bottlenecks per layer"
        )
        assert adapter_config("houlsby").mh_adapter and adapter_config("houlsby").reduction_factor == 8
    finally:
        ADAPTER_METHODS.pop("houlsby", None)


def test_mosa_method_trains_sparsely_and_saves_a_plain_seq_bn_adapter(base_dir, tmp_path):
    _, path = base_dir
    model, tokenizer = load_mlm_model(path)
    add_language_adapter(model, "mosa", overrides={"reduction_factor": 4, "num_modules": 2})
    assert model._lrl_mosa.up_projections and not model._lrl_mosa.is_merged
    config = TrainConfig(max_steps=4, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=4)
    train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
    trained_logits = mlm_logits(model, tokenizer)  # eval mode: the merged adapter's output
    adapter_dir = save_language_adapter(model, tmp_path / "mosa")  # merges first
    assert model._lrl_mosa.is_merged
    plain, _ = load_mlm_model(path)
    add_language_adapter(plain, "seq_bn", overrides={"reduction_factor": 4})
    assert count_parameters(model) == count_parameters(plain)
    saved = json.loads((adapter_dir / "adapter_config.json").read_text())["config"]
    reference = json.loads(
        (save_language_adapter(plain, tmp_path / "plain") / "adapter_config.json").read_text()
    )["config"]
    assert saved == reference  # an ordinary seq_bn adapter for the library
    fresh, _ = load_mlm_model(path)
    load_language_adapter(fresh, adapter_dir)
    torch.testing.assert_close(mlm_logits(fresh, tokenizer), trained_logits, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="num_modules"):
        add_language_adapter(load_mlm_model(path)[0], "mosa", overrides={"num_modules": 1})
