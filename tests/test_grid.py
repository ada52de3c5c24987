"""Grid expansion, run-spec hashing and the dry-run listing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter

import pytest
from conftest import tiny_profile

from lrl_utils.config.params import ParamError
from lrl_utils.config.specs import SPEC_CLASSES, AdaptSpec
from lrl_utils.orchestration.grid import Grid
from lrl_utils.orchestration.runner import main


def test_paper_grid_counts():
    specs = Grid("paper").expand()
    counts = Counter(s.stage for s in specs)
    # 30 languages × 2 sources; × 2 models × (3 adapters × 2 sources + Glot FFT) + LLaMA-3-8B CLM adapters for 5
    # languages; pppl: base + 7 configs; tc, sa, ner: 8 configs × 3 seeds, ner also 2 fusions × 3 seeds
    finetune = 60 * (3 * 8 * 3 + 2 * 3)
    llm = 30 * 2  # two DeepSeek-R1 distilled models, zero-shot TC
    assert counts == {
        "preprocess": 60,
        "adapt": 360 + 60 + 5,
        "pppl": 480,
        "finetune": finetune,
        "llm": llm,
        "report": 2,
    }
    assert len({s.folder() for s in specs}) == len(specs) == 5707
    adapt = next(s for s in specs if s.stage == "adapt" and s.source == "glotcc")
    assert (
        adapt.train.max_steps == 100_000
        and adapt.train.batch_size == 16
        and adapt.train.learning_rate == 1e-4
    )
    assert adapt.model_ref in ("google-bert/bert-base-multilingual-cased", "FacebookAI/xlm-roberta-base")
    assert adapt.head_path == "inverse" and adapt.train.objective == "mlm"


def test_paper_grid_has_the_fft_baseline_and_llama_clm_adapters():
    specs = Grid("paper").expand()
    fft = [s for s in specs if s.stage == "adapt" and s.adapter == "fft"]
    assert {(s.source, s.adapter_config, s.train.max_steps) for s in fft} == {("glotcc", "fft", 100_000)}
    assert len(fft) == 60 and all(s.adapter_overrides == {} for s in fft)
    llama = [s for s in specs if s.stage == "adapt" and s.model == "llama3"]
    assert sorted(s.language for s in llama) == ["cym", "mlt", "sin", "swh", "uig"]
    assert all(
        s.adapter == "seq_bn_inv"
        and s.train.objective == "clm"
        and s.train.batch_size == 1
        and s.model_ref == "meta-llama/Meta-Llama-3-8B"
        for s in llama
    )
    # downstream runs of the FFT baseline read the fully fine-tuned model; the report sees the CLM adapters
    ft = [s for s in specs if s.stage == "finetune" and s.adapter == "fft"]
    assert ft and all(s.adapter_run.startswith("adapt/") and ".glotcc.fft--" in s.adapter_run for s in ft)
    report = next(s for s in specs if s.stage == "report")
    assert {s.folder() for s in llama} <= set(report.inputs)


def test_dry_run_lists_runs_and_ends_with_total(capsys):
    assert main(["--profile", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "5707 runs"
    assert "   finetune: 4680" in out
    assert sum(line.startswith(("todo", "done")) for line in out) == 5707


def test_dependencies_come_first_and_exist():
    specs = Grid("demo").expand()
    seen = set()
    for s in specs:
        for dep in s.deps():
            assert dep in seen, f"{s.folder()} needs {dep} which is not earlier in the grid"
        seen.add(s.folder())


def test_hash_is_stable_and_sensitive():
    g = Grid("demo")
    a = g.adapt("tiny-xlmr", "qac", "glotcc", "lora")
    assert a.digest() == Grid("demo").adapt("tiny-xlmr", "qac", "glotcc", "lora").digest()
    assert len(a.digest()) == 12 and a.folder().endswith("--" + a.digest())
    changed = dataclasses.replace(a, train=dataclasses.replace(a.train, max_steps=a.train.max_steps + 1))
    assert changed.digest() != a.digest()
    # JSON round trip gives the same spec and hash
    back = SPEC_CLASSES["adapt"].from_json(a.canonical())
    assert back == a and back.digest() == a.digest()
    assert json.loads(a.canonical())["stage"] == "adapt"


def test_upstream_change_cascades(project):
    project.add_profile("t1", tiny_profile())
    prof = tiny_profile()
    prof["adapt"]["glotcc"]["max_steps"] = 11
    project.add_profile("t2", prof)
    g1, g2 = Grid("t1"), Grid("t2")
    assert (
        g1.pppl("tiny-xlmr", "qac").digest() == g2.pppl("tiny-xlmr", "qac").digest()
    )  # base model: unchanged
    assert (
        g1.pppl("tiny-xlmr", "qac", "glotcc", "seq_bn").digest()
        != g2.pppl("tiny-xlmr", "qac", "glotcc", "seq_bn").digest()
    )
    assert (
        g1.finetune("tiny-xlmr", "qac", "tc", "glotcc", "seq_bn").adapter_run
        != g2.finetune("tiny-xlmr", "qac", "tc", "glotcc", "seq_bn").adapter_run
    )


def test_vocabulary_languages_reach_the_tokenizer_spec_only(project):
    """`base_model.vocabulary` adds corpora the tokenizer reads (planned, and inputs of the base model run);
    left empty, the base model keeps its folder (an `_added` field), and set, it gets a new one."""
    project.add_profile("v0", tiny_profile())
    prof = tiny_profile()
    prof["base_model"]["vocabulary"] = ["qab", "qad"]
    project.add_profile("v1", prof)
    g0, g1 = Grid("v0"), Grid("v1")
    b0, b1 = g0.base_model("tiny-xlmr"), g1.base_model("tiny-xlmr")
    assert b0.vocabulary_corpora == () and "vocabulary_corpora" not in b0.canonical()
    assert b0.digest() != b1.digest() and b0.corpora == b1.corpora
    qad = g1.preprocess("qad", "glotcc").folder()
    assert b1.vocabulary_corpora == (g1.preprocess("qab", "glotcc").folder(), qad)
    assert b1.deps() == (*b1.corpora, qad)  # the seen language's corpus once
    assert qad in {s.folder() for s in g1.expand()} - {s.folder() for s in g0.expand()}


def test_spec_paths_are_relative():
    for s in Grid("demo").expand():
        text = s.canonical()
        assert "/work/" not in text and "/root/" not in text and "/tmp/" not in text


def test_demo_grid_shape():
    g = Grid("demo")
    specs = g.expand()
    counts = Counter(s.stage for s in specs)
    # 5 languages x tiny XLM-R x 4 language adapters (adapter_configs) + the tiny Llama's CLM adapter of qag;
    # base models: tiny XLM-R and Llama; preprocess: 5 languages x 2 sources + qen glotcc
    assert counts["adapt"] == 5 * 4 + 1 and counts["base_model"] == 2 and counts["preprocess"] == 11
    # pppl: base + 4 adapters; tc: base + Glot Seq_bn_inv on every language, every adapter on the unseen qag
    # (tc.qag); sa and ner on qab and qag (task_languages): base + Glot Seq_bn_inv; all on three seeds
    assert counts["pppl"] == 5 * 5 and counts["finetune"] == 3 * (4 * 2 + 4 + 2 * 2 + 2 * 2)
    assert counts["llm"] == 12
    tc = Counter((s.language, s.source, s.adapter) for s in specs if s.stage == "finetune" and s.task == "tc")
    assert set(tc.values()) == {3}  # seeds 1, 2, 3
    assert {k[1:] for k in tc if k[0] == "qag"} == {
        ("none", "none"),
        ("conceptnet", "seq_bn_inv"),
        ("glotcc", "seq_bn_inv"),
        ("glotcc", "lora"),
    }
    assert {k[1:] for k in tc if k[0] == "qad"} == {("none", "none"), ("glotcc", "seq_bn_inv")}
    sa = {(s.language, s.source, s.adapter) for s in specs if s.stage == "finetune" and s.task == "sa"}
    assert sa == {(lang, *c) for lang in ("qab", "qag") for c in (("none", "none"), ("glotcc", "seq_bn_inv"))}
    llama = g.base_model("tiny-llama")
    assert llama.architecture == "llama" and llama.train.objective == "clm"
    assert g.base_model("tiny-xlmr").train.objective == "mlm"
    clm = g.adapt("tiny-llama", "qag", "glotcc", "seq_bn_inv")
    assert clm.train.objective == "clm" and clm.model_ref == llama.folder()
    assert isinstance(g.adapt("tiny-xlmr", "qab", "conceptnet", "seq_bn_inv"), AdaptSpec)
    assert g.adapt("tiny-xlmr", "qab", "glotcc", "seq_bn").adapter_overrides == {"reduction_factor": 8}


def test_task_datasets_and_fusion_specs():
    g = Grid("paper")
    tc, sa, ner = (g.finetune("mbert", "mlt", task, "glotcc", "seq_bn") for task in ("tc", "sa", "ner"))
    assert (tc.flores_code, sa.flores_code, ner.flores_code) == ("mlt_Latn", "dgurgurov/maltese_sa", "mt")
    assert (tc.train.epochs, sa.train.epochs, ner.train.epochs) == (20, 25, 100)
    assert (tc.train.max_length, sa.train.max_length, ner.train.max_length) == (256, 512, 512)
    assert ner.train.label_alignment == "first"
    fused = g.finetune("xlmr", "mlt", "ner", "fusion", "seq_bn_inv")
    assert fused.adapter_run == g.adapt("xlmr", "mlt", "conceptnet", "seq_bn_inv").folder()
    assert fused.fusion_run == g.adapt("xlmr", "mlt", "glotcc", "seq_bn_inv").folder()
    assert set(fused.deps()) == {fused.adapter_run, fused.fusion_run}
    demo = Grid("demo").finetune("tiny-xlmr", "qab", "sa")
    assert demo.flores_code == "qab" and demo.dataset.endswith("/sentiment")


def test_llm_baseline_specs():
    g = Grid("paper")
    spec = g.llm("deepseek-r1-distill-qwen-7b", "mlt", "tc")
    assert (spec.backend, spec.model_ref, spec.template) == (
        "transformers",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "deepseek_tc",
    )
    assert spec.flores_code == "mlt_Latn" and spec.api_key_env is None and spec.deps() == ()
    demo = Grid("demo")
    tiny = demo.llm("tiny-llama", "qab", "ner", 3)
    assert tiny.model_ref == demo.base_model("tiny-llama").folder() and tiny.deps() == (tiny.model_ref,)
    assert tiny.flores_code == "qab" and tiny.shots == 3 and tiny.max_items == 40
    api = Grid("paper").llm("deepseek-chat", "mlt", "sa")
    assert (
        api.backend == "openai" and api.api_key_env == "DEEPSEEK_API_KEY" and api.base_url.startswith("https")
    )
    assert "key" not in json.dumps(api.to_dict()).replace("api_key_env", "")
    report = next(s for s in demo.expand() if s.stage == "report")
    assert tiny.folder() in report.inputs


def test_task_configs_select_configurations_and_are_validated(project):
    import pytest

    from lrl_utils.config.params import ParamError

    prof = tiny_profile(tasks=["tc", "sa"], adapters=["seq_bn", "lora"])
    prof["finetune"]["sa"] = prof["finetune"]["tc"]
    project.add_profile("sub", {**prof, "task_configs": {"sa": ["none/none", "glotcc/lora"]}})
    tuned = [(s.task, s.source, s.adapter) for s in Grid("sub").expand() if s.stage == "finetune"]
    assert sorted(t for t in tuned if t[0] == "sa") == [("sa", "glotcc", "lora"), ("sa", "none", "none")]
    assert len([t for t in tuned if t[0] == "tc"]) == 3  # not listed: every configuration
    project.add_profile("bad", {**prof, "task_configs": {"sa": ["glotcc/seq_bn_iv"]}})
    with pytest.raises(ParamError, match=r"bad\.yaml: `task_configs\.sa\[0\]`: unknown configuration"):
        Grid("bad")
    project.add_profile("bad2", {**prof, "task_configs": {"ner": ["none/none"]}})
    with pytest.raises(ParamError, match=r"`task_configs\.ner`: unknown task of this profile"):
        Grid("bad2")


def test_task_languages_run_a_task_on_its_own_languages(project):
    """`task_languages.<task>`: the languages of a task; one outside `languages` is task-only (the base model alone,
    no preprocessing, adapters or PPPL)."""
    short = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "max_length": 32}
    prof = tiny_profile(
        languages=["qab", "qac"],
        tasks=["tc", "sa"],
        finetune={"tc": short, "sa": short},
        task_languages={"sa": ["qac", "qaa"]},
    )
    project.add_profile("tl", prof)
    specs = Grid("tl").expand()
    runs = Counter(
        (s.stage, getattr(s, "language", ""), getattr(s, "task", ""), getattr(s, "adapter", ""))
        for s in specs
    )
    assert runs[("finetune", "qab", "tc", "seq_bn")] == runs[("finetune", "qac", "sa", "seq_bn")] == 1
    assert runs[("finetune", "qab", "sa", "none")] == 0  # qab is not an SA language
    assert runs[("finetune", "qaa", "sa", "none")] == 1 and runs[("finetune", "qaa", "sa", "seq_bn")] == 0
    assert not [s for s in specs if s.stage != "finetune" and getattr(s, "language", "") == "qaa"]
    report = next(s for s in specs if s.stage == "report")
    assert Grid("tl").finetune("tiny-xlmr", "qaa", "sa").folder() in report.inputs
    bad = {
        "ner": r"`task_languages\.ner`: unknown task of this profile 'ner'",
        "sa_lang": r"`task_languages\.sa\[0\]`: unknown language 'xxx'",
        "sa_twice": r"`task_languages\.sa\[1\]`: 'qac' is listed twice",
        "sa_base": r"`task_languages\.sa\[0\]`: 'qaa' is not in `languages`, so it runs only on the base model",
    }
    variants = {
        "ner": {"task_languages": {"ner": ["qab"]}},
        "sa_lang": {"task_languages": {"sa": ["xxx"]}},
        "sa_twice": {"task_languages": {"sa": ["qac", "qac"]}},
        "sa_base": {"task_languages": {"sa": ["qaa"]}, "task_configs": {"sa": ["glotcc/seq_bn"]}},
    }
    for name, change in variants.items():
        project.add_profile("tl", {**prof, **change})
        with pytest.raises(ParamError, match=bad[name]):
            Grid("tl")


def test_missing_split_rule_is_a_profile_setting_in_the_specs(project):
    """`finetune.<task>.missing_splits` and `split_seed` reach the task runs and the LLM runs of the same data (so
    both test the same items), and change their hashes; a wrong value names its key."""
    short = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "max_length": 32}
    carve = {**short, "missing_splits": "carve", "split_seed": 7}
    llm = {"llms": ["tiny-llama"], "tasks": ["ner"], "max_items": 4}
    project.add_profile("ms", tiny_profile(tasks=["ner"], finetune={"ner": carve}, llm_baselines=llm))
    grid = Grid("ms")
    ner, prompted = grid.finetune("tiny-xlmr", "qac", "ner"), grid.llm("tiny-llama", "qac", "ner")
    assert (ner.train.missing_splits, ner.train.split_seed) == ("carve", 7)
    assert (prompted.missing_splits, prompted.split_seed) == ("carve", 7)
    project.add_profile("ms", tiny_profile(tasks=["ner"], finetune={"ner": short}, llm_baselines=llm))
    default = Grid("ms")
    assert default.finetune("tiny-xlmr", "qac", "ner").train.missing_splits == "error"
    assert default.finetune("tiny-xlmr", "qac", "ner").digest() != ner.digest()
    assert default.llm("tiny-llama", "qac", "ner").digest() != prompted.digest()
    # at their defaults they are not hashed: runs made before the settings existed keep their folders
    for spec in (default.finetune("tiny-xlmr", "qac", "ner"), default.llm("tiny-llama", "qac", "ner")):
        data = spec.to_dict()
        block = data["train"] if spec.stage == "finetune" else data
        assert (block.pop("missing_splits"), block.pop("split_seed")) == ("error", 42)  # still in result.json
        if spec.stage == "finetune":  # the loop's settings, also unhashed at their defaults
            assert (block.pop("max_grad_norm"), block.pop("precision")) == (1.0, "auto")
        for key in ("quoting", "max_bad_fraction"):  # the loaders' settings, also unhashed at their defaults
            data.pop(key)
        before = json.dumps({"stage": spec.stage, **data}, sort_keys=True, ensure_ascii=False)
        assert spec.digest() == hashlib.sha256(before.encode("utf-8")).hexdigest()[:12]
        assert type(spec).from_json(spec.canonical()) == spec
    assert type(ner).from_json(ner.canonical()) == ner and '"missing_splits": "carve"' in ner.canonical()
    project.add_profile(
        "ms", tiny_profile(tasks=["ner"], finetune={"ner": {**short, "missing_splits": "fill"}})
    )
    with pytest.raises(
        ParamError, match=r"ms\.yaml: `finetune\.ner\.missing_splits`: expected 'error' \| 'carve'"
    ):
        Grid("ms")


def test_adapter_configs_and_per_language_task_configs(project):
    """`adapter_configs`: only these language adapters are trained (and measured); `task_configs.<task>.<lang>`:
    one language's configurations, before the task's own list."""
    import pytest

    from lrl_utils.config.params import ParamError

    prof = tiny_profile(
        languages=["qab", "qac"],
        adapters=["seq_bn", "lora"],
        sources=["conceptnet", "glotcc"],
        adapt={"conceptnet": tiny_profile()["adapt"]["glotcc"], "glotcc": tiny_profile()["adapt"]["glotcc"]},
        adapter_configs=["glotcc/seq_bn", "glotcc/lora", "conceptnet/lora"],
        task_configs={"tc": ["none/none"], "tc.qac": ["none/none", "glotcc/lora", "conceptnet/lora"]},
    )
    project.add_profile("ac", prof)
    specs = Grid("ac").expand()
    adapted = {(s.language, s.source, s.adapter) for s in specs if s.stage == "adapt"}
    assert adapted == {(lang, *c.split("/")) for lang in ("qab", "qac") for c in prof["adapter_configs"]}
    assert len([s for s in specs if s.stage == "pppl"]) == 2 * (1 + 3)
    tuned = {(s.language, s.source, s.adapter) for s in specs if s.stage == "finetune"}
    assert tuned == {
        ("qab", "none", "none"),
        ("qac", "none", "none"),
        ("qac", "glotcc", "lora"),
        ("qac", "conceptnet", "lora"),
    }
    bad = {
        "unknown": (
            {"adapter_configs": ["glotcc/seq_bn_iv"]},
            r"`adapter_configs\[0\]`: unknown source/adapter",
        ),
        "not_adapted": (
            {"task_configs": {"tc": ["conceptnet/seq_bn"]}},
            r"`task_configs\.tc\[0\]`: unknown configuration",
        ),
        "language": (
            {"task_configs": {"tc.qaa": ["none/none"]}},
            r"`task_configs\.tc\.qaa`: unknown language of tc",
        ),
        "task": (
            {"task_configs": {"ner.qab": ["none/none"]}},
            r"`task_configs\.ner\.qab`: unknown task of this profile",
        ),
    }
    for name, (change, message) in bad.items():
        project.add_profile(name, {**prof, **change})
        with pytest.raises(ParamError, match=message):
            Grid(name)
