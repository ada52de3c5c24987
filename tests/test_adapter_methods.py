"""Every registered adapter method (and full fine-tuning), one matrix: build, parameter counts, frozen base, a few
training steps, save/reload equality, pseudo-perplexity. A method registered in `adapters/registry.py` without a
row here fails `test_every_registered_method_has_a_row`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import adapters
import pytest
import torch
from adapters import LoRAConfig, SeqBnConfig, SeqBnInvConfig
from conftest import save_tiny_base
from conftest import toy_corpus as make_corpus
from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

from lrl_utils.adapters import registry
from lrl_utils.adapters.hooks import NO_HOOKS, hooks_of
from lrl_utils.adapters.methods import (
    adapter_parameters,
    add_language_adapter,
    count_parameters,
    load_language_adapter,
    load_mlm_model,
    save_language_adapter,
)
from lrl_utils.adapters.registry import (
    ADAPTER_METHODS,
    FULL_FINETUNING,
    adapter_config,
    register_adapter_method,
)
from lrl_utils.config.params import load_registry
from lrl_utils.evaluation.pppl import pseudo_perplexity
from lrl_utils.report.tables import CONFIG_ORDER, config_label
from lrl_utils.training.loop import TrainConfig, train_lm


@dataclass(frozen=True)
class Row:
    """What a method must give: settings for the tiny models (hidden 32) and its sizes at 768-d, 12 layers."""

    tiny: dict = field(default_factory=dict)
    adapter: int = 0  # saved adapter parameters (the paper's Table 2 / ADAPTERS_NOTES A8)
    trainable: int | None = None  # what trains when it differs (MoSA's N module copies); None = `adapter`
    every_weight_steps: bool = (
        True  # every trainable tensor changes in every step (not MoSA's inactive modules)
    )


_MOSA_COPIES = 3 * 12 * (48 * 768 + 768)  # N - 1 = 3 more up-projections (weight + bias) in each of 12 layers
ROWS = {
    "seq_bn": Row({"reduction_factor": 4}, 894_528),
    "lora": Row({"r": 4}, 294_912),
    "seq_bn_inv": Row({"reduction_factor": 4}, 1_190_592),
    "mosa": Row({"reduction_factor": 4, "num_modules": 2}, 894_528, 894_528 + _MOSA_COPIES, False),
    FULL_FINETUNING: Row(every_weight_steps=False),  # no adapter: every weight trains
}
HEAD_TRANSFORM = {"bert": "cls.predictions.transform.dense.weight", "xlm-roberta": "lm_head.dense.weight"}
TRAIN, VAL = make_corpus(200, 0), make_corpus(32, 1)
SHORT = TrainConfig(
    max_steps=4, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=4, mixed_precision="no"
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["bert", "xlm-roberta"])
def base_dir(request, tmp_path_factory):
    """A saved tiny base model (random weights, non-zero MLM bias) that load_mlm_model reads like a checkpoint."""
    out = save_tiny_base(request.param, tmp_path_factory.mktemp(f"base-{request.param}"), TRAIN, bias_std=0.5)
    return request.param, out


def logits_of(model, tokenizer) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**tokenizer(VAL[:4], padding=True, return_tensors="pt")).logits


def test_every_registered_method_has_a_row():
    assert set(ROWS) == {*ADAPTER_METHODS, FULL_FINETUNING}


@pytest.mark.parametrize("method", ADAPTER_METHODS)
def test_params_config_builds_the_adapter_and_reports_name_it(method):
    """`params/adapters.yaml`'s `config` is what builds the adapter (the same config as the method's own), its
    overrides are the method's own settings; tables and figures have the registered label for both sources."""
    setting = load_registry().adapters[method]
    spec = registry.method(method)
    assert registry.builds_on(method, setting.config)
    built = adapter_config(method, setting.overrides, setting.config)
    assert built == adapter_config(method, setting.overrides)
    assert set(setting.overrides) <= {*spec.settings, *type(built).__dataclass_fields__}
    for source in ("conceptnet", "glotcc"):
        assert config_label(source, method) in CONFIG_ORDER
    with pytest.raises(ValueError, match="is not a config of adapter method"):
        adapter_config(method, config="prefix_tuning")


def test_registry_defaults_overrides_and_duplicates():
    seq_bn, inv, lora = (adapter_config(m) for m in ("seq_bn", "seq_bn_inv", "lora"))
    assert type(seq_bn) is SeqBnConfig and seq_bn.reduction_factor == 16 and seq_bn.output_adapter
    assert type(inv) is SeqBnInvConfig and inv.inv_adapter == "nice" and inv.inv_adapter_reduction_factor == 2
    assert type(lora) is LoRAConfig and (lora.r, lora.alpha, list(lora.attn_matrices)) == (8, 8, ["q", "v"])
    assert adapter_config("seq_bn", {"reduction_factor": 4}).reduction_factor == 4
    assert adapter_config("seq_bn").reduction_factor == 16  # overrides do not leak into the registry
    assert adapter_config("seq_bn", {"reduction_factor": 4}, "pfeiffer") == adapter_config(
        "seq_bn", {"reduction_factor": 4}
    )
    assert adapter_config("mosa", {"num_modules": 2}) == adapter_config(
        "seq_bn"
    )  # its own settings go elsewhere
    assert registry.label("fft") == "FFT" and registry.label("mosa") == "MoSA"

    with pytest.raises(ValueError, match="reduction_factr"):
        adapter_config("seq_bn", {"reduction_factr": 4})
    with pytest.raises(ValueError, match="unknown adapter method"):
        adapter_config("prefix")
    for taken in ("seq_bn", FULL_FINETUNING):
        with pytest.raises(ValueError, match="already registered"):
            register_adapter_method(taken, "seq_bn")
    try:
        register_adapter_method("houlsby", "double_seq_bn", {"reduction_factor": 8}, label="Houlsby")
        assert adapter_config("houlsby").mh_adapter and adapter_config("houlsby").reduction_factor == 8
        assert config_label("glotcc", "houlsby") == "Glot Houlsby"
    finally:
        ADAPTER_METHODS.pop("houlsby", None)


# (base class, config, encoder params without pooler): the paper's Table 2 / ADAPTERS_NOTES A8 denominators
FULL_SIZE = {
    "mbert": (BertForMaskedLM, BertConfig(vocab_size=119547), 177_262_848),
    "xlm-r": (
        XLMRobertaForMaskedLM,
        XLMRobertaConfig(vocab_size=250002, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1),
        277_453_056,
    ),
}


@pytest.mark.parametrize("method", ROWS)
@pytest.mark.parametrize("model_name", FULL_SIZE)
def test_full_size_parameter_counts(model_name, method, tmp_path):
    """The paper's adapter sizes on mBERT and XLM-R (shapes only, on the meta device); MoSA trains N copies of
    the up-projection and saves one; full fine-tuning trains every weight and has no adapter."""
    model_class, config, encoder_params = FULL_SIZE[model_name]
    row = ROWS[method]
    with torch.device("meta"):  # no memory, no init time
        model = model_class(config)
        adapters.init(model)
        counts = add_language_adapter(model, method)
    everything = sum(p.numel() for p in model.parameters())
    trainable = everything if method == FULL_FINETUNING else row.trainable or row.adapter
    adapter = 0 if method == FULL_FINETUNING else trainable  # before the save: MoSA's modules are its adapter
    assert counts == {"adapter_params": adapter, "trainable_params": trainable, "base_params": encoder_params}
    if method != FULL_FINETUNING:
        with torch.device("meta"):
            hooks_of(model).before_save()  # what save_language_adapter runs first (MoSA: the merge)
        assert count_parameters(model)["adapter_params"] == row.adapter
        assert model.adapter_summary(as_dict=True)[0]["#param"] == row.adapter


@pytest.mark.parametrize("method", ROWS)
def test_build_train_save_reload(base_dir, method, tmp_path):
    """Only the adapter trains (the base and the MLM head transform stay frozen), a few steps change nothing
    else and lower the validation loss, the saved adapter reloads into a fresh base model with the same logits
    and the same (finite) pseudo-perplexity."""
    arch, path = base_dir
    row = ROWS[method]
    model, tokenizer = load_mlm_model(path)
    base_logits = logits_of(model, tokenizer)
    counts = add_language_adapter(model, method, overrides=row.tiny, seed=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if method == FULL_FINETUNING:
        assert trainable == {n for n, _ in model.named_parameters()} and counts["adapter_params"] == 0
    else:
        adapter_ids = {id(p) for p in adapter_parameters(model, "mlm")}
        assert trainable and all(id(p) in adapter_ids for p in model.parameters() if p.requires_grad)
        assert all(".mlm." in n for n in trainable), trainable
        assert not model.get_parameter(HEAD_TRANSFORM[arch]).requires_grad
        assert counts["trainable_params"] == counts["adapter_params"]
        assert "mlm" in str(model.active_adapters)
    attaches = method in ADAPTER_METHODS and registry.method(method).attach is not None
    assert (hooks_of(model) is not NO_HOOKS) == attaches

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    history = train_lm(model, tokenizer, TRAIN, VAL, SHORT, progress=False)
    assert history["trainable_params"] == counts["trainable_params"]
    assert history["best_val_loss"] < history["val_loss"][0][1], history["val_loss"]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable
    if row.every_weight_steps:
        assert changed == trainable
    if method == FULL_FINETUNING:
        assert HEAD_TRANSFORM[arch] in changed and any("encoder.layer.0" in n for n in changed)

    trained_logits = logits_of(model, tokenizer)
    assert not torch.allclose(trained_logits, base_logits)
    name = None if method == FULL_FINETUNING else "mlm"
    folder = save_language_adapter(model, tmp_path / "saved", name=name, tokenizer=tokenizer)
    if name is None:
        fresh, _ = load_mlm_model(folder)  # the downstream stages' base model
    else:
        saved = json.loads((folder / "adapter_config.json").read_text())["config"]
        assert saved == adapter_config(method, row.tiny).to_dict()  # an ordinary adapter of the library
        assert count_parameters(model)["adapter_params"] == model.adapter_summary(as_dict=True)[0]["#param"]
        fresh, _ = load_mlm_model(path)
        assert load_language_adapter(fresh, folder) == "mlm"
    saved_logits = logits_of(model, tokenizer)  # after the save (MoSA: merged), the same outputs
    torch.testing.assert_close(saved_logits, trained_logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits_of(fresh, tokenizer), saved_logits, rtol=0, atol=1e-6)
    pppl = pseudo_perplexity(model, tokenizer, VAL[:3], 32, progress=False)["pppl"]
    assert math.isfinite(pppl)
    assert pseudo_perplexity(fresh, tokenizer, VAL[:3], 32, progress=False)["pppl"] == pytest.approx(
        pppl, rel=1e-6
    )


def test_bad_settings_fail_before_training(base_dir):
    _, path = base_dir
    with pytest.raises(ValueError, match="num_modules"):
        add_language_adapter(load_mlm_model(path)[0], "mosa", overrides={"num_modules": 1})
    with pytest.raises(ValueError, match="no adapter config or overrides"):
        add_language_adapter(load_mlm_model(path)[0], FULL_FINETUNING, overrides={"reduction_factor": 4})
