"""Smoke test of benchmarks/conceptnet_convert.py on a tiny generated dump (a few seconds)."""

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
