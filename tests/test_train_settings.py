"""One typed class per training concept (config/train_settings.py, params.TinyModel): the profile section, the spec's
block and what the loop takes are the same object, and its checks run when params load, naming file and key."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import pytest
from conftest import tiny_profile

from lrl_utils.config.params import ParamError, TinyModel
from lrl_utils.config.specs import BaseModelSpec, FinetuneSpec
from lrl_utils.config.train_settings import TaskTrainConfig, TrainConfig
from lrl_utils.orchestration.grid import Grid


def grid_error(project, name: str, profile: dict) -> str:
    project.add_profile(name, profile)
    with pytest.raises(ParamError) as err:
        Grid(name)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"params/profiles/{name}.yaml: "), msg
    return msg


def with_value(section: str, key: str, value) -> dict:
    prof = tiny_profile()
    block = prof
    for part in section.split("."):
        block = block[part]
    block[key] = value
    return prof


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        # the loop's settings, now profile keys: checked by the old TrainConfig.__post_init__ in the notebook
        ("adapt.glotcc", "log_every", 0, "`adapt.glotcc.log_every`: must be >= 1, got 0"),
        ("base_model.train", "log_every", 0, "`base_model.train.log_every`: must be >= 1, got 0"),
        ("adapt.glotcc", "max_grad_norm", -1.0, "`adapt.glotcc.max_grad_norm`: must be >= 0, got -1.0"),
        # the task loop's precision, now a profile key: checked by evaluation.pppl.resolve_precision in the loop
        ("finetune.tc", "precision", "fp16",
         "`finetune.tc.precision`: expected 'auto' | 'no' | 'bf16', got str 'fp16'"),
        ("finetune.tc", "max_grad_norm", 0, "`finetune.tc.max_grad_norm`: must be > 0, got 0"),
        # the task seed is the run's (the profile's `seeds`): a profile cannot set it
        ("finetune.tc", "seed", 3, "`finetune.tc.seed`: not a parameter: the run's seed is the spec's `seed`"),
        # an encoder trained with causal LM: no check anywhere before
        ("adapt.glotcc", "objective", "clm", "`adapt.glotcc.objective`: the models of `models` are encoders"),
    ],
)  # fmt: skip
def test_a_bad_training_setting_fails_at_load(project, section, key, value, message):
    assert message in grid_error(project, "bad", with_value(section, key, value))


def test_a_llama_with_an_odd_head_size_fails_at_load(project):
    # before: params loaded, the tokenizer trained, and the base_model run died in its first forward
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    sizes = dict(vocab_size=50, intermediate_size=40, num_hidden_layers=1, max_position_embeddings=32)
    llama = LlamaForCausalLM(
        LlamaConfig(hidden_size=30, num_attention_heads=2, num_key_value_heads=2, **sizes)
    )
    with pytest.raises(RuntimeError, match="size of tensor"):
        llama(torch.tensor([[1, 2, 3]]))

    path = project.root / "params" / "models.yaml"
    old = "display: tiny Llama\n    tiny: {vocab_size: 2000, hidden_size: 128, num_layers: 2, num_heads: 4"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(
        text.replace(old, old.replace("128", "120").replace("heads: 4", "heads: 8")), encoding="utf-8"
    )
    project.add_profile("tiny", tiny_profile())
    with pytest.raises(ParamError) as err:
        Grid("tiny")
    assert str(err.value).startswith(
        "params/models.yaml: `models.tiny-llama.tiny.num_heads`: a llama's head size (hidden_size / num_heads) "
        "must be even for its rotary position embeddings, got 120 / 8 = 15"
    )


def test_checks_also_run_on_construction_in_code():
    with pytest.raises(ValueError, match=r"TrainConfig: `max_steps`: must be >= 1, got 0"):
        TrainConfig(max_steps=0)
    with pytest.raises(ValueError, match=r"TrainConfig: `objective`: expected 'mlm' \| 'clm', got 'xlm'"):
        TrainConfig(objective="xlm")
    with pytest.raises(ValueError, match=r"`log_every`: must be >= 1"):
        replace(TrainConfig(), log_every=0)
    with pytest.raises(ValueError, match=r"TaskTrainConfig: `precision`: expected 'auto' \| 'no' \| 'bf16'"):
        TaskTrainConfig(precision="fp16")
    with pytest.raises(ValueError, match=r"`num_heads`: must divide hidden_size \(30\), got 4"):
        TinyModel(hidden_size=30, num_heads=4)


def test_the_specs_hold_the_classes_the_stages_take(project):
    project.add_profile("ok", tiny_profile())
    grid = Grid("ok")
    adapt, finetune = (
        grid.adapt("tiny-xlmr", "qac", "glotcc", "seq_bn"),
        grid.finetune("tiny-xlmr", "qac", "tc"),
    )
    assert type(adapt.train) is TrainConfig and type(finetune.train) is TaskTrainConfig
    base = grid.base_model("tiny-xlmr")
    assert isinstance(base, TinyModel)  # build_tiny_model takes the spec itself
    sizes = TinyModel(**{f.name: getattr(base, f.name) for f in fields(TinyModel)})
    assert sizes == grid.registry.models["tiny-xlmr"].tiny
    assert BaseModelSpec.from_json(base.canonical()) == base

    # the task seed is the run's: set with `replace`, in neither the spec's hash nor its record
    seeded = replace(finetune.train, seed=3)
    assert seeded.seed == 3 and seeded != finetune.train
    same = replace(finetune, train=seeded)
    assert same.digest() == finetune.digest() and "seed" not in same.to_dict()["train"]
    assert FinetuneSpec.from_json(same.canonical()) == finetune


def test_loop_settings_are_hashed_only_when_set(project):
    project.add_profile("plain", tiny_profile())
    plain = Grid("plain").adapt("tiny-xlmr", "qac", "glotcc", "seq_bn")
    assert not {"max_grad_norm", "log_every"} & set(json.loads(plain.canonical())["train"])
    assert {"max_grad_norm", "log_every"} <= set(plain.to_dict()["train"])  # result.json records them
    project.add_profile("clip", with_value("adapt.glotcc", "max_grad_norm", 0.5))
    clipped = Grid("clip").adapt("tiny-xlmr", "qac", "glotcc", "seq_bn")
    assert clipped.train.max_grad_norm == 0.5 and clipped.digest() != plain.digest()
    assert json.loads(clipped.canonical())["train"]["max_grad_norm"] == 0.5
