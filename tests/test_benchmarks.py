"""Smoke tests of the benchmarks: conceptnet_convert.py on a tiny generated dump, semantic_world.py's and
findings_world_seeds.py's pieces."""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("zcat") is None, reason="the benchmark's floor needs zcat")
def test_conceptnet_benchmark_smoke(tmp_path: Path) -> None:
    bench = _load("conceptnet_convert")
    cache, results = tmp_path / "cache", tmp_path / "results"
    argv = ["--lines", "3000", "--small-lines", "1000", "--repeats", "1", "--name", "smoke"]
    assert bench.main([*argv, "--cache-dir", str(cache), "--results-dir", str(results)]) == 0
    (path,) = results.glob("smoke-*.json")
    result = json.loads(path.read_text(encoding="utf-8"))
    assert result["outputs"]["paper_compat_identical_to_original"] is True
    assert result["outputs"]["sentences_kept"] == result["outputs"]["kept_reported"] > 500
    assert (
        len(result["dump"]["languages"]) == 30 and result["dump"]["kinds"]["start in the 30 languages"] > 800
    )
    assert set(result["runs"]) == {"floor", "ours", "ours_paper_compat", "original"}
    assert all(run["median_seconds"] > 0 and run["lines_per_second"] > 0 for run in result["runs"].values())
    assert result["memory"]["lines"] == [1000, 3000] and min(result["memory"]["ours_max_rss_mb"]) > 5
    assert {"original_over_ours", "ours_over_floor"} <= set(result["ratios"])
    machine = result["provenance"]["machine"]
    assert machine["cpu_count"] >= 1 and machine["ram_gb"] > 0 and result["provenance"]["python"]
    with gzip.open(cache / "assertions-3000-s0-v2.csv.gz", "rt", encoding="utf-8") as f:
        columns = f.readline().rstrip("\n").split("\t")  # the real assertions format
    assert len(columns) == 5 and columns[0].startswith("/a/[/r/") and columns[1].startswith("/r/")
    assert columns[2].startswith("/c/") and isinstance(json.loads(columns[4]), dict)


def test_adapter_training_flops_formula() -> None:
    bench = _load("adapter_training")
    # n=2, H=16, F=32, l=2, V=10 (b=1), by hand: forward 18,816 + backward 10,880 (see the module docstring)
    flops = bench.model_flops(2, hidden=16, ffn=32, layers=2, vocab=10)
    assert flops == {"total": 29696, "vocab_projection": 1280}


def test_adapter_training_benchmark_smoke(tmp_path: Path) -> None:
    """benchmarks/adapter_training.py at --shape tiny, one model, our and the reference pipeline (~15-20 s)."""
    bench = _load("adapter_training")
    out = tmp_path / "adapter_training.json"
    argv = ["--shape", "tiny", "--models", "mbert", "--pipelines", "ours_fp32,ref_fp32", "--steps", "2"]
    assert bench.main([*argv, "--warmup", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["benchmark"] == "adapter_training" and result["settings"]["shape"] == "tiny"
    runs = result["runs"]["mbert"]
    assert set(runs) == {"ours_fp32", "ref_fp32"} and not any("error" in r for r in runs.values())
    for run in runs.values():
        assert run["precision"] == "no" and run["measured_batches"] == 2
        assert 0 < run["tokens"] <= run["padded_tokens"] and run["tokens_per_second"] > 0
        assert run["model_flops"] > 0 and run["model_tflops_per_second"] > 0 and run["peak_memory_mb"] > 0
    # ours trains exactly the adapter (1 layer, 32 -> 2 -> 32: 162); train_adapter also leaves the head transform
    assert runs["ours_fp32"]["trainable_params"] == 162 < runs["ref_fp32"]["trainable_params"]
    ratios = result["ratios"]["mbert"]
    assert ratios["ours_fp32_over_ref_fp32"] > 0 and ratios["ours_bf16_over_ref_bf16"] is None
    provenance = result["provenance"]
    assert provenance["machine"]["cpu_count"] >= 1 and provenance["versions"]["adapters"]
    assert provenance["device"]["kind"] in ("cpu", "cuda") and provenance["date"]
    assert "| mbert |" in bench.markdown_table(result)


def test_pppl_benchmark_smoke(tmp_path: Path) -> None:
    """benchmarks/pppl.py at --shape tiny, one model, 10 sentences, reference on the first 3 (~25 s: 3 processes)."""
    bench = _load("pppl")
    out = tmp_path / "pppl.json"
    argv = ["--shape", "tiny", "--models", "xlmr", "--sentences", "10", "--subset", "3", "--precisions", "no"]
    argv += ["--threads", "1", "--fp64-sentences", "2"]
    assert bench.main([*argv, "--out", str(out)]) == 0  # the demo world: benchmarks/.cache (made if absent)
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["benchmark"] == "pppl" and result["settings"]["shape"] == "tiny"
    sentences = result["settings"]["sentences"]
    assert sentences["count"] == 10 and sentences["subset_count"] == 3
    runs = result["runs"]["xlmr"]
    assert set(runs) == {"batched_no/all", "batched_no/subset", "reference_no/subset", "fp64_no/fp64"}
    assert not any("error" in r for r in runs.values())
    fp64 = runs.pop("fp64_no/fp64")  # both paths in float64 on the first 2 sentences: the same scores
    assert fp64["sentences"] == 2 and fp64["dtype"] == "float64" and fp64["max_relative_difference"] < 1e-12
    assert result["comparisons"]["xlmr"]["pppl_max_relative_difference_fp64"] < 1e-12
    for key, run in runs.items():
        assert run["precision"] == "no" and run["sentences"] == (10 if key.endswith("/all") else 3)
        assert run["seconds"] > 0 and run["sentences_per_second"] > 0 and run["tokens_per_second"] > 0
        assert run["tokens"] >= 3 * run["sentences"] and run["peak_memory_mb"] > 0 and run["pppl"] > 1
    assert runs["batched_no/subset"]["tokens"] == runs["reference_no/subset"]["tokens"]
    comparison = result["comparisons"]["xlmr"]
    assert comparison["speedup_subset_no"] > 0 and len(comparison["speedup_subset_no_per_round"]) == 1
    assert comparison["pppl_max_relative_difference_subset_fp32"] < 1e-5  # same PPPL in fp32
    provenance = result["provenance"]
    assert provenance["machine"]["cpu_count"] >= 1 and provenance["git"] and provenance["date"]
    assert provenance["versions"]["transformers"] and provenance["device"]["kind"] in ("cpu", "cuda")
    assert "| xlmr |" in bench.markdown_table(result)


def test_semantic_world_benchmark_reads_worlds_and_runs(tmp_path: Path) -> None:
    """benchmarks/semantic_world.py's pieces on a small world: the no-model baselines and the run table."""
    from lrl_utils.demo.world import WorldConfig, ensure_world

    bench = _load("semantic_world")
    small = WorldConfig(docs_per_language=60, flores_dev=400, flores_devtest=400, sib_split=(400, 50, 150))
    scores = bench.data_baselines(ensure_world(tmp_path, small), "qab")
    assert set(scores) == {"bag_of_words", "bag_of_char_ngrams", "glotcc_word_vectors"}
    assert scores["bag_of_words"] > 0.5  # the demo world's topics: learnable from the words alone
    runs = tmp_path / "runs"
    spec = {"model": "tiny-xlmr", "language": "qag", "source": "glotcc", "adapter": "seq_bn_inv"}
    results = {
        "finetune/tiny-xlmr.qag.tc.glotcc.seq_bn_inv.s1--abc": (
            "finetune",
            {"task": "tc", "seed": 1},
            "test_macro_f1",
            0.5,
        ),
        "finetune/tiny-xlmr.qag.tc.glotcc.seq_bn_inv.s2--abc": (
            "finetune",
            {"task": "tc", "seed": 2},
            "test_macro_f1",
            0.7,
        ),
        "pppl/tiny-xlmr.qag.glotcc.seq_bn_inv--abc": ("pppl", {}, "pppl", 57.43),
    }
    for run, (stage, extra, metric, value) in results.items():
        (runs / run).mkdir(parents=True)
        result = {"run": run, "stage": stage, "spec": spec | extra, "metrics": {metric: value}}
        (runs / run / "result.json").write_text(json.dumps(result))
    (row,) = bench.run_scores(runs)
    assert row == {
        "language": "qag",
        "adapter": "glotcc/seq_bn_inv",
        "tc_f1_mean": 0.6,
        "tc_f1_std": 0.141,
        "seeds": 2,
        "pppl": 57.4,
    }


def test_findings_world_seeds_project_takes_the_world_seed_and_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/findings_world_seeds.py: a world's project copies params/ with `data.world_seed` and the
    `--set` settings, and the profile still loads (validated) from there."""
    import yaml

    from lrl_utils.config.profiles import load_profile

    bench = _load("findings_world_seeds")
    assert bench.parse_set("base_model.train.seed=43") == ("base_model.train.seed", 43)
    assert bench.parse_set("languages=[qab, qag]") == ("languages", ["qab", "qag"])
    with pytest.raises(Exception, match="expected KEY=VALUE"):
        bench.parse_set("base_model.train.seed")
    overrides = dict(
        bench.parse_set(a) for a in ("base_model.train.seed=43", "data.world_mislabeled_relative=0.033")
    )
    root = bench.project_copy(tmp_path / "seed-2", "demo", {"world_seed": 2}, overrides)
    assert (root / "notebooks").resolve() == (REPO / "notebooks").resolve()
    settings = yaml.safe_load((root / "params/profiles/demo.yaml").read_text(encoding="utf-8"))
    assert settings["data"]["world_seed"] == 2 and settings["data"]["world_mislabeled_relative"] == 0.033
    assert settings["base_model"]["train"]["seed"] == 43
    assert settings["base_model"]["train"]["max_steps"] == 600  # the rest as in the repository's profile
    monkeypatch.setenv("LRL_ROOT", str(root))
    profile, _ = load_profile("demo")
    assert profile.data.world_seed == 2 and profile.base_model.train.seed == 43
    nested: dict = {"a": {"b": 1}}
    bench.override(nested, "a.c.d", 2)
    assert nested == {"a": {"b": 1, "c": {"d": 2}}}
    with pytest.raises(SystemExit, match="`a.b` is not a mapping"):
        bench.override(nested, "a.b.c", 3)
    with pytest.raises(SystemExit):  # the world seeds are --seeds
        bench.main(["--set", "data.world_seed=3"])


def test_findings_world_seeds_reads_the_reports_extra_columns(tmp_path: Path) -> None:
    """A world's findings.csv with the report's extra columns (a model alone, the paper's): each check's own
    verdict, and the extra verdicts under `also` where the report gave any."""
    import pandas as pd
    from test_findings import LLM, SIZES, make_records  # tests/ is on the path (pytest's rootdir import mode)

    from lrl_utils.report.findings import findings
    from lrl_utils.report.per_model import columns

    bench = _load("findings_world_seeds")
    records = pd.concat(
        [make_records().assign(model="tiny-mbert"), make_records(gain_unseen=-0.1).assign(model="tiny-xlmr")]
    )
    checks = findings(records, SIZES, LLM)
    extra = columns(records)
    checks.assign(**{k: checks["check"].map(v) for k, v in extra.items()}).to_csv(
        tmp_path / "f.csv", index=False
    )
    rows = {r["check"]: r for r in bench.read_checks(tmp_path / "f.csv")}
    unseen = rows["glotcc_raises_unseen_f1"]
    pooled = bool(checks.set_index("check").loc["glotcc_raises_unseen_f1", "passed"])
    assert (
        unseen["result"] == ("PASS" if pooled else "FAIL") and unseen["also"]["on tiny XLM-R alone"] == "FAIL"
    )
    assert unseen["also"]["on tiny mBERT alone"] == "PASS" and set(unseen["also"]) == set(extra)
    assert "also" not in rows["tc_beats_llm"]
    assert rows["share_vs_base_sa_f1"]["result"] in {"PASS", "FAIL", "not tested"}
