"""One minimal profile through the real notebooks with papermill: data → base model → adapter → PPPL → TC → report."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_profile

from lrl_utils.runner import main


@pytest.mark.slow
def test_minimal_profile_end_to_end(project, capsys):
    project.use_real_notebooks()
    project.add_profile("mini", tiny_profile())
    assert main(["--profile", "mini"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "summary: 10 done, 0 skipped, 0 failed, 0 blocked" in out
    runs = project.runs

    def result(pattern: str) -> dict:
        (path,) = runs.glob(f"{pattern}/result.json")
        return json.loads(path.read_text())

    pre = result("preprocess/qac.glotcc--*")
    assert pre["metrics"]["n_train"] > pre["metrics"]["n_val"] > 0
    assert (runs / pre["label"] / "train.jsonl").exists()
    assert (runs / result("base_model/tiny-xlmr--*")["label"] / "model" / "config.json").exists()
    adapt = result("adapt/*")
    assert adapt["metrics"]["adapter_params"] == adapt["metrics"]["trainable_params"] > 0
    assert (runs / adapt["label"] / "adapter" / "adapter_config.json").exists()
    base = result("pppl/tiny-xlmr.qac.none.none--*")["metrics"]
    adapted = result("pppl/tiny-xlmr.qac.glotcc.seq_bn--*")["metrics"]
    assert base["n_sentences"] == adapted["n_sentences"] == 10 and base["pppl"] > 1 and adapted["pppl"] > 1
    assert (runs / result("pppl/tiny-xlmr.qac.none.none--*")["label"] / "per_sentence.csv").exists()
    tc = result("finetune/tiny-xlmr.qac.tc.glotcc.seq_bn.s1--*")
    assert 0.0 <= tc["metrics"]["test_macro_f1"] <= 1.0 and tc["spec"]["adapter_run"] == adapt["label"]
    tables = runs / result("report/mini.tables--*")["label"]
    assert (tables / "table_pppl_tiny-xlmr.md").exists() and (tables / "table_tc_tiny-xlmr.tex").exists()
    assert "tiny-xlmr" in (tables / "records.csv").read_text()
    figures = runs / result("report/mini.figures--*")["label"]
    png = figures / "fig_pppl_tiny-xlmr.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    sidecar = json.loads((figures / "fig_tc_tiny-xlmr.runs.json").read_text())
    assert sidecar["runs"] == sorted([tc["run"], result("finetune/tiny-xlmr.qac.tc.none.none.s1--*")["run"]])
    assert (project.root / "figures" / "table_summary_tiny-xlmr.md").exists()
    # every executed notebook is kept next to its result; a second call does no work
    assert all((p.parent / "notebook.ipynb").exists() for p in runs.glob("*/*/result.json"))
    assert main(["--profile", "mini"]) == 0
    assert "summary: 0 done, 10 skipped" in capsys.readouterr().out
