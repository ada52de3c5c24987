"""MoSA on tiny static-head models: masks, sparse updates, merge = expected output, plain seq_bn after merge."""

from __future__ import annotations

import contextlib
import copy
import json

import pytest
import torch
from conftest import save_tiny_base
from conftest import toy_corpus as make_corpus
from torch import nn
from transformers import DataCollatorForLanguageModeling

from lrl_utils.adapters.hooks import hooks_of
from lrl_utils.adapters.methods import (
    add_language_adapter,
    count_parameters,
    load_language_adapter,
    load_mlm_model,
    save_language_adapter,
)
from lrl_utils.adapters.mosa import MoSA, MoSAConfig, MoSAUpProjection, symmetric_kl
from lrl_utils.config.train_settings import TrainConfig
from lrl_utils.training.loop import train_lm

OVERRIDES = {"reduction_factor": 4}  # hidden 32 -> bottleneck 8


TRAIN, VAL = make_corpus(200, 0), make_corpus(32, 1)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["bert", "xlm-roberta"])
def base_dir(request, tmp_path_factory):
    return save_tiny_base(request.param, tmp_path_factory.mktemp(f"base-{request.param}"), TRAIN)


def mosa_model(path, **config):
    """A tiny model with MoSA on a seq_bn adapter; one pass (no consistency loss) unless `consistency_weight`."""
    model, tokenizer = load_mlm_model(path)
    torch.manual_seed(0)  # the library draws the adapter's initial weights from the global RNG
    add_language_adapter(model, "seq_bn", overrides=OVERRIDES)
    return model, tokenizer, MoSA(model, "mlm", MoSAConfig(**{"consistency_weight": 0.0, **config}))


def masked_batch(tokenizer, texts, seed=0):
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3, seed=seed)
    return collator([{"input_ids": ids} for ids in tokenizer(texts)["input_ids"]])


def mlm_logits(model, tokenizer):
    model.eval()
    with torch.no_grad():
        return model(**tokenizer(VAL[:4], padding=True, return_tensors="pt")).logits


def test_masks_are_disjoint_complete_random_and_seeded(base_dir):
    model, _, mosa = mosa_model(base_dir, num_modules=4, seed=3)
    ups = mosa.up_projections
    assert len(ups) == 2 and all(isinstance(a.adapter_up, MoSAUpProjection) for a in mosa.adapters)
    for up in ups:
        masks = torch.stack([up.mask(k) for k in range(4)]).long()
        assert torch.equal(masks.sum(0), torch.ones_like(up.owner))  # disjoint and complete
        n = up.owner.numel()
        assert set(masks.flatten(1).sum(1).tolist()) <= {n // 4, -(-n // 4)}  # equal counts
        for k in range(4):  # module k starts as W_u * M_k, with a private copy of the bias
            assert torch.all(up.weights[k][~up.mask(k)] == 0)
        assert all(torch.equal(b, up.biases[0]) and b is not up.biases[0] for b in up.biases[1:])
    assert not torch.equal(ups[0].owner, ups[1].owner)  # independent per layer
    flat = ups[0].owner.flatten()
    assert not torch.equal(flat, flat.sort().values)  # element-wise random, not contiguous blocks
    same = mosa_model(base_dir, num_modules=4, seed=3)[2].up_projections
    other = mosa_model(base_dir, num_modules=4, seed=4)[2].up_projections
    assert all(torch.equal(a.owner, b.owner) for a, b in zip(ups, same, strict=True))
    assert not torch.equal(ups[0].owner, other[0].owner)


def test_modules_sum_to_the_library_init(base_dir):
    model, _ = load_mlm_model(base_dir)
    add_language_adapter(model, "seq_bn", overrides=OVERRIDES)
    linears = [m["output_adapter"].adapter_up for _, m in sorted(model.get_adapter("mlm").items())]
    initial = [(lin.weight.detach().clone(), lin.bias.detach().clone()) for lin in linears]
    ups = MoSA(model, config=MoSAConfig(num_modules=3)).up_projections
    for up, (weight, bias) in zip(ups, initial, strict=True):
        assert torch.equal(sum(w.detach() for w in up.weights), weight)
        assert all(torch.equal(b, bias) for b in up.biases)


def test_bad_parameters_fail_clearly(base_dir):
    with pytest.raises(ValueError, match="num_modules >= 2"):
        MoSAConfig(num_modules=1)
    with pytest.raises(ValueError, match="consistency_weight"):
        MoSAConfig(consistency_weight=-1.0)
    model, _ = load_mlm_model(base_dir)
    with pytest.raises(ValueError, match="no adapter named"):
        MoSA(model)
    add_language_adapter(model, "lora", overrides={"r": 4})
    with pytest.raises(ValueError, match="needs a seq_bn adapter.*LoRAConfig"):
        MoSA(model)
    model, _, mosa = mosa_model(base_dir)
    with pytest.raises(ValueError, match="already under MoSA"):
        MoSA(model)
    with pytest.raises(ValueError, match="module indices"):
        with mosa.pinned([0, 7]):
            pass
    mosa.merge()
    with pytest.raises(ValueError, match="already merged"):
        mosa.merge()


def test_a_step_changes_only_the_active_modules_entries(base_dir):
    model, tokenizer, mosa = mosa_model(base_dir, num_modules=4, seed=1)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)
    batch = masked_batch(tokenizer, TRAIN[:8])
    model.train()
    for step, pins in enumerate([[0, 1], [2, 1], None, None]):  # pinned, then drawn modules (AdamW momentum)
        before = copy.deepcopy(model.state_dict())
        snapshots = [
            ([w.detach().clone() for w in up.weights], [b.detach().clone() for b in up.biases])
            for up in mosa.up_projections
        ]
        with mosa.pinned(pins) if pins else contextlib.nullcontext():
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        active = mosa.last_active()
        assert pins is None or active == pins
        after = model.state_dict()
        changed = {n for n, v in after.items() if not torch.equal(v, before[n])}
        assert all(".adapters.mlm." in n for n in changed), changed  # nothing outside the adapter
        assert sum(".adapter_down." in n for n in changed) == 4  # the shared dense down-projection trains
        for layer, (up, k) in enumerate(zip(mosa.up_projections, active, strict=True)):
            for j in range(4):
                delta = up.weights[j].detach() != snapshots[layer][0][j]
                bias_changed = not torch.equal(up.biases[j].detach(), snapshots[layer][1][j])
                if j == k:  # in-mask entries and the bias of the active module only
                    assert delta.any() and not delta[~up.mask(j)].any() and bias_changed, (step, layer)
                else:
                    assert not delta.any() and not bias_changed, (step, layer, j)


def test_merged_adapter_is_the_expected_training_output(base_dir):
    model, tokenizer, mosa = mosa_model(base_dir, num_modules=4, seed=2)
    with torch.no_grad():  # non-trivial modules: random weights in each mask, distinct biases
        for up in mosa.up_projections:
            for k in range(4):
                up.weights[k].copy_(torch.randn_like(up.weights[k]) * up.mask(k))
                up.biases[k].normal_()
    x, residual = torch.randn(3, 5, 32), torch.randn(3, 5, 32)
    expected = []
    for adapter in mosa.adapters:
        adapter.train()
        outputs = []
        for k in range(4):
            with mosa.pinned(k):
                outputs.append(adapter(x, residual)[0])
        expected.append(torch.stack(outputs).mean(0))
        adapter.eval()  # eval mode before the merge = the merged forward
        torch.testing.assert_close(adapter(x, residual)[0], expected[-1], rtol=1e-5, atol=1e-5)
    logits_before = mlm_logits(model, tokenizer)
    mosa.merge()
    for adapter, exp in zip(mosa.adapters, expected, strict=True):
        for mode in (True, False):  # a plain adapter: the same output in train and eval mode
            adapter.train(mode)
            torch.testing.assert_close(adapter(x, residual)[0], exp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mlm_logits(model, tokenizer), logits_before, rtol=1e-5, atol=1e-5)


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_merged_adapter_is_a_plain_seq_bn_that_round_trips(base_dir, tmp_path):
    plain, _ = load_mlm_model(base_dir)
    plain_counts = add_language_adapter(plain, "seq_bn", overrides=OVERRIDES)
    model, tokenizer, mosa = mosa_model(base_dir, num_modules=4, consistency_weight=1.0)
    assert hook_count(model) == hook_count(plain) + 1  # the consistency hook
    assert count_parameters(model)["adapter_params"] > plain_counts["adapter_params"]
    config = TrainConfig(max_steps=3, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=3)
    train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
    logits = mlm_logits(model, tokenizer)
    mosa.merge()

    assert count_parameters(model) == plain_counts
    assert hook_count(model) == hook_count(plain)
    assert not any(isinstance(m, MoSAUpProjection) for m in model.modules())
    assert all(type(a.adapter_up) is nn.Linear and a.adapter_up.weight.requires_grad for a in mosa.adapters)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in plain.named_parameters()]
    torch.testing.assert_close(mlm_logits(model, tokenizer), logits, rtol=1e-5, atol=1e-6)

    adapter_dir = save_language_adapter(model, tmp_path / "adapter")
    plain_dir = save_language_adapter(plain, tmp_path / "plain")
    config_of = lambda d: json.loads((d / "adapter_config.json").read_text())["config"]  # noqa: E731
    assert config_of(adapter_dir) == config_of(plain_dir)
    fresh, _ = load_mlm_model(base_dir)
    assert load_language_adapter(fresh, adapter_dir) == "mlm"
    torch.testing.assert_close(mlm_logits(fresh, tokenizer), mlm_logits(model, tokenizer), rtol=0, atol=1e-6)


def test_consistency_loss_adds_the_symmetric_kl_of_a_second_pass(base_dir):
    model, tokenizer, mosa = mosa_model(base_dir, num_modules=4, seed=5, consistency_weight=0.5)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0  # so that two passes with the same modules agree exactly
    batch = masked_batch(tokenizer, TRAIN[:8])
    model.train()
    with mosa.pinned([1, 3]):
        out = model(**batch)
    ce = nn.functional.cross_entropy(out.logits.flatten(0, 1), batch["labels"].flatten())
    assert float(mosa.last_consistency) == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(out.loss, ce)

    with torch.no_grad():
        for up in mosa.up_projections:
            for k in range(4):
                up.weights[k].copy_(torch.randn_like(up.weights[k]) * up.mask(k))
    out = model(**batch)  # two passes with fresh draws
    ce = nn.functional.cross_entropy(out.logits.flatten(0, 1), batch["labels"].flatten())
    assert float(mosa.last_consistency) > 0
    torch.testing.assert_close(out.loss, ce + 0.5 * mosa.last_consistency)
    out.loss.backward()
    with_grad = sum(w.grad is not None for up in mosa.up_projections for w in up.weights)
    assert 2 <= with_grad <= 4  # each layer: the modules of both passes (2 layers)

    model.eval()  # evaluation: one pass, plain CE
    mosa.last_consistency = None
    with torch.no_grad():
        model(**batch)
    assert mosa.last_consistency is None
    torch.testing.assert_close(
        symmetric_kl(out.logits, out.logits, batch["labels"] != -100), torch.tensor(0.0)
    )


def test_train_lm_with_mosa_lowers_the_val_loss_deterministically(base_dir):
    config = TrainConfig(max_steps=40, batch_size=16, learning_rate=3e-2, max_length=32, eval_every=20)
    histories = []
    for _ in range(2):
        model, tokenizer, mosa = mosa_model(base_dir, num_modules=4, seed=7)
        histories.append(train_lm(model, tokenizer, TRAIN, VAL, config, progress=False))
        mosa.merge()
    history = histories[0]
    assert history["best_val_loss"] < history["val_loss"][0][1] - 0.05, history["val_loss"]
    assert histories[1]["val_loss"] == history["val_loss"]
    assert histories[1]["train_loss"] == history["train_loss"]


def test_seq_bn_inv_splits_only_its_bottleneck(base_dir):
    plain, _ = load_mlm_model(base_dir)
    plain_counts = add_language_adapter(plain, "seq_bn_inv", overrides=OVERRIDES)
    model, _ = load_mlm_model(base_dir)
    add_language_adapter(model, "seq_bn_inv", overrides=OVERRIDES)
    mosa = MoSA(model, config=MoSAConfig(num_modules=2))
    assert len(mosa.up_projections) == 2
    mosa.merge()
    assert count_parameters(model) == plain_counts


def test_defaults_and_settings_come_from_params_and_the_training_seed(base_dir):
    """N = 4 and λ = 1 (MOSA.md §4) by default and in params/adapters.yaml, where profiles see and change them;
    the masks and module draws follow the seed given to add_language_adapter (the pipeline's train.seed)."""
    from lrl_utils.config.params import load_registry

    assert (MoSAConfig().num_modules, MoSAConfig().consistency_weight) == (4, 1.0)
    assert load_registry().adapters["mosa"].overrides == {"num_modules": 4, "consistency_weight": 1.0}

    def mosa_of(overrides, seed=None):
        model, _ = load_mlm_model(base_dir)
        add_language_adapter(model, "mosa", overrides={**OVERRIDES, **overrides}, seed=seed)
        mosa = hooks_of(model)  # the method's training hooks are its MoSA
        ups = mosa.up_projections
        return mosa, [up.owner for up in ups], [up.generator.get_state() for up in ups]

    mosa, masks, draws = mosa_of({"num_modules": 2, "consistency_weight": 0.25}, seed=42)
    assert (mosa.config.num_modules, mosa.config.consistency_weight, mosa.config.seed) == (2, 0.25, 42)
    assert mosa._hook is not None and int(masks[0].max()) == 1
    assert mosa_of({})[0].config == MoSAConfig(num_modules=4, consistency_weight=1.0, seed=0)  # no seed: 0
    _, same_masks, same_draws = mosa_of({"num_modules": 2}, seed=42)
    _, other_masks, other_draws = mosa_of({"num_modules": 2}, seed=43)
    assert all(torch.equal(a, b) for a, b in zip(masks, same_masks, strict=True))  # same seed: same masks
    assert all(torch.equal(a, b) for a, b in zip(draws, same_draws, strict=True))  # and module draws
    assert not any(torch.equal(a, b) for a, b in zip(masks, other_masks, strict=True))  # another seed: others
    assert not torch.equal(draws[0], other_draws[0])


def test_train_lm_uses_the_consistency_loss_when_its_weight_is_positive(base_dir):
    """With λ > 0, every training step of train_lm runs the second pass and adds λ · the symmetric KL: the
    consistency term is set, the encoder runs twice per training step, and the first step's loss is exactly the
    λ = 0 loss plus the term (same batch, masks, module draws and dropout); the weights differ."""
    config = TrainConfig(
        max_steps=4, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=4, log_every=1,
        mixed_precision="no",
    )  # fmt: skip
    runs = {}
    for weight in (0.0, 1.0):
        model, tokenizer, mosa = mosa_model(base_dir, num_modules=4, seed=3, consistency_weight=weight)
        terms, forwards = [], [0]

        def count(module, args, output, forwards=forwards):
            forwards[0] += module.training

        def record(module, args, kwargs, output, terms=terms, mosa=mosa):  # after MoSA's own hook
            if module.training and not mosa._in_second_pass and mosa.last_consistency is not None:
                terms.append(float(mosa.last_consistency))

        model.base_model.register_forward_hook(count)  # the encoder runs in both objective paths
        model.register_forward_hook(record, with_kwargs=True)
        history = train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
        weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        runs[weight] = (history, terms, forwards[0], weights, mosa)
    (h0, terms0, fw0, w0, m0), (h1, terms1, fw1, w1, m1) = runs[0.0], runs[1.0]
    assert m0.last_consistency is None and terms0 == [] and fw0 == 4  # λ = 0: one pass per step, no term
    assert m1.last_consistency is not None and len(terms1) == 4 and all(t > 0 for t in terms1)
    assert fw1 == 8  # λ = 1: two passes per step
    assert [s for s, _ in h1["train_loss"]] == [1, 2, 3, 4]
    assert h1["train_loss"][0][1] == pytest.approx(h0["train_loss"][0][1] + terms1[0], rel=1e-5)
    assert any(not torch.equal(w0[n], w1[n]) for n in w0)
