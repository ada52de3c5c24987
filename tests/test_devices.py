"""Device and precision of pseudo-perplexity and task fine-tuning: CUDA when available, bf16 autocast where
the GPU supports bf16, the CPU in float32 otherwise (the choice checked with `torch.cuda` monkeypatched); and
the training and evaluation functions run every batch on the model's device (here: an explicit `cpu`; the
`cuda` cases run where a GPU is present)."""

from __future__ import annotations

import dataclasses
import math

import datasets
import pytest
import torch
from conftest import save_tiny_base, toy_corpus

from lrl_utils.config.train_settings import TaskTrainConfig
from lrl_utils.data.wikiann import NER_TAGS
from lrl_utils.evaluation import ner, tasks
from lrl_utils.evaluation import pppl as evaluation
from lrl_utils.evaluation.pppl import device_and_precision, resolve_precision, select_device
from lrl_utils.training import loop as training

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")),
]
LABELS = ["a", "b"]


def fake_cuda(monkeypatch, available: bool, bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)


# ----------------------------------------------------------------------------------------------------------
# The choice


@pytest.mark.parametrize(
    "available, bf16, want",
    [(True, True, ("cuda", "bf16")), (True, False, ("cuda", "no")), (False, False, ("cpu", "no"))],
)
def test_auto_is_cuda_with_bf16_when_available_else_cpu_fp32(monkeypatch, available, bf16, want):
    fake_cuda(monkeypatch, available, bf16)
    device, precision = device_and_precision()
    assert (device.type, precision) == want
    assert device_and_precision("auto", None) == (device, precision) and select_device() == device
    assert precision == training.resolve_precision("auto")  # one rule with the language-model training
    assert TaskTrainConfig().precision == "auto"


def test_explicit_device_and_precision(monkeypatch):
    fake_cuda(monkeypatch, True, True)
    assert device_and_precision("auto", "cpu") == (torch.device("cpu"), "no")  # a CPU stays fp32 under auto
    assert device_and_precision("no") == (torch.device("cuda"), "no")
    assert device_and_precision("bf16", "cpu") == (torch.device("cpu"), "bf16")  # forced
    assert select_device("cuda:1") == torch.device("cuda:1")
    assert resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    for bad in ("fp16", "fp8"):
        with pytest.raises(ValueError, match="precision"):
            device_and_precision(bad, "cpu")


def _attention_backends() -> tuple[bool, bool, bool, bool]:
    b = torch.backends.cuda
    return b.cudnn_sdp_enabled(), b.flash_sdp_enabled(), b.mem_efficient_sdp_enabled(), b.math_sdp_enabled()


def test_attention_stays_off_cudnn_on_a_gpu_only():
    """cuDNN attention plans each new sequence length anew (seconds per bf16 step on an H200, see
    benchmarks/README.md): on a CUDA device the training loop, PPPL, the tasks and generation use flash /
    memory-efficient / math attention instead; elsewhere nothing changes, and the setting is restored after."""
    before = _attention_backends()
    with training.attention_kernels("cpu"):
        assert _attention_backends() == before
    for context in (training.attention_kernels("cuda"), evaluation.autocast("no", torch.device("cuda", 0))):
        with context:
            assert _attention_backends() == (False, True, True, True)
        assert _attention_backends() == before
    with evaluation.autocast("bf16", torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu") and _attention_backends() == before
    assert not torch.is_autocast_enabled("cpu")


# ----------------------------------------------------------------------------------------------------------
# The functions put the batches where the model is


class ForwardSpy:
    """Forward pre-hook: per call, the devices of the tensor inputs and autocast on `device_type`."""

    def __init__(self, module: torch.nn.Module, device_type: str):
        self.calls: list[dict] = []
        self.device_type = device_type
        module.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        tensors = [v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)]
        autocast = torch.is_autocast_enabled(self.device_type)
        self.calls.append(
            {
                "inputs": {t.device.type for t in tensors},
                "params": {p.device.type for p in module.parameters()},
                "bf16": autocast and torch.get_autocast_dtype(self.device_type) == torch.bfloat16,
            }
        )


def spy_on(monkeypatch, module, builder: str, device_type: str) -> list[ForwardSpy]:
    """Wrap `module.<builder>` so that every model it builds gets a ForwardSpy."""
    spies: list[ForwardSpy] = []
    original = getattr(module, builder)

    def wrapper(*args, **kwargs):
        model, tokenizer = original(*args, **kwargs)
        spies.append(ForwardSpy(model, device_type))
        spies[-1].model = model
        return model, tokenizer

    monkeypatch.setattr(module, builder, wrapper)
    return spies


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A tiny BERT base and small TC and NER data sets (16/8/8)."""
    texts = toy_corpus(32, seed=3)
    base = save_tiny_base("bert", tmp_path_factory.mktemp("devices") / "base", texts)
    sizes = {"train": 16, "validation": 8, "test": 8}
    tc, tagged, start = {}, {}, 0
    for split, n in sizes.items():
        rows = texts[start : start + n]
        start += n
        tc[split] = datasets.Dataset.from_dict({"text": rows, "label": [i % 2 for i in range(n)]})
        tokens = [row.split() for row in rows]
        tags = [[(i + j) % len(NER_TAGS) for j in range(len(t))] for i, t in enumerate(tokens)]
        tagged[split] = datasets.Dataset.from_dict({"tokens": tokens, "ner_tags": tags})
    return {"base": str(base), "tc": datasets.DatasetDict(tc), "ner": datasets.DatasetDict(tagged)}


def check_spy(spy: ForwardSpy, result: dict, device: str, precision: str, forwards: int) -> None:
    assert (result["device"], result["precision"]) == (str(torch.device(device)), precision)
    assert {p.device.type for p in spy.model.parameters()} == {device}
    assert len(spy.calls) == forwards  # every train, validation and test batch
    assert all(call["inputs"] == call["params"] == {device} for call in spy.calls)
    assert all(call["bf16"] == (precision == "bf16") for call in spy.calls)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_text_classifier_trains_and_evaluates_on_the_device(tiny, monkeypatch, device, precision):
    spies = spy_on(monkeypatch, tasks, "build_task_model", device)
    config = TaskTrainConfig(epochs=2, batch_size=8, learning_rate=1e-3, max_length=24, precision=precision)
    result = tasks.train_text_classifier(
        tiny["base"], tiny["tc"], LABELS, None, config, progress=False, device=device
    )
    check_spy(spies[0], result, device, precision, forwards=2 * (2 + 1) + 1)  # (train 2 + val 1) x 2 + test
    assert all(math.isfinite(v) for v in result["val_loss"])  # finite under bf16 too
    gold, pred = [r["label"] for r in result["predictions"]], [r["pred"] for r in result["predictions"]]
    assert result["test_macro_f1"] == tasks.recompute_metrics(gold, pred)["test_macro_f1"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_ner_tagger_trains_and_evaluates_on_the_device(tiny, monkeypatch, device, precision):
    spies = spy_on(monkeypatch, ner, "build_ner_model", device)
    config = TaskTrainConfig(epochs=2, batch_size=8, learning_rate=1e-3, max_length=24, precision=precision)
    result = ner.train_ner_tagger(tiny["base"], tiny["ner"], None, config, progress=False, device=device)
    check_spy(spies[0], result, device, precision, forwards=2 * (2 + 1) + 1)
    assert all(math.isfinite(v) for v in result["val_loss"])


def test_fine_tuning_without_a_gpu_is_cpu_fp32_and_auto_equals_no(tiny, monkeypatch):
    """`precision: auto`, no device, no CUDA: the CPU in float32, the very numbers of `precision: no`."""
    fake_cuda(monkeypatch, False, True)
    config = TaskTrainConfig(epochs=1, batch_size=8, learning_rate=1e-3, max_length=24, seed=2)
    auto = tasks.train_text_classifier(tiny["base"], tiny["tc"], LABELS, None, config, progress=False)
    assert (auto["device"], auto["precision"]) == ("cpu", "no")
    fp32 = dataclasses.replace(config, precision="no")
    explicit = tasks.train_text_classifier(
        tiny["base"], tiny["tc"], LABELS, None, fp32, progress=False, device="cpu"
    )
    assert auto["val_loss"] == explicit["val_loss"] and auto["predictions"] == explicit["predictions"]
    tagged = ner.train_ner_tagger(tiny["base"], tiny["ner"], None, config, progress=False)
    assert (tagged["device"], tagged["precision"]) == ("cpu", "no")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_pseudo_perplexity_runs_on_the_models_device(tiny, device, precision):
    model, tokenizer = evaluation_model(tiny["base"], device)
    encoder, head = evaluation.encoder_and_head(model)
    spies = [ForwardSpy(encoder, device), ForwardSpy(head, device)]
    sentences = toy_corpus(3, seed=9)
    scores = evaluation.pseudo_perplexity(model, tokenizer, sentences, progress=False, precision=precision)
    assert scores["precision"] == precision and scores["n_sentences"] == 3
    for spy in spies:
        assert spy.calls and all(c["inputs"] <= {device} and c["params"] == {device} for c in spy.calls)
        assert all(c["bf16"] == (precision == "bf16") for c in spy.calls)
    assert all(c["inputs"] == {device} for c in spies[0].calls)


def test_pseudo_perplexity_of_a_cpu_model_stays_fp32_when_a_gpu_exists(tiny, monkeypatch):
    fake_cuda(monkeypatch, True, True)
    model, tokenizer = evaluation_model(tiny["base"], "cpu")
    scores = evaluation.pseudo_perplexity(model, tokenizer, toy_corpus(2, seed=9), progress=False)
    assert (scores["precision"], scores["dtype"]) == ("no", "float32")


def evaluation_model(base: str, device: str):
    from lrl_utils.adapters.methods import load_mlm_model

    model, tokenizer = load_mlm_model(base)
    return model.to(select_device(device)), tokenizer
