"""One minimal profile through the real notebooks with papermill: data → base model → adapter → PPPL → TC → report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lrl_utils.evaluation.pppl import device_and_precision
from lrl_utils.orchestration.runner import main


def recompute_from_predictions(task: str, rows: list[dict]) -> dict[str, float]:
    """Every test metric of a finetune run from its `predictions.jsonl`, by direct scikit-learn / seqeval
    calls (independent of the project's `recompute_metrics`)."""
    if task == "ner":
        from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score
        from seqeval.scheme import IOB2

        gold, pred = [r["gold"] for r in rows], [r["pred"] for r in rows]
        strict = {"mode": "strict", "scheme": IOB2}
        return {
            "test_f1": f1_score(gold, pred, zero_division=0),
            "test_f1_strict": f1_score(gold, pred, zero_division=0, **strict),
            "test_precision": precision_score(gold, pred, zero_division=0),
            "test_precision_strict": precision_score(gold, pred, zero_division=0, **strict),
            "test_recall": recall_score(gold, pred, zero_division=0),
            "test_recall_strict": recall_score(gold, pred, zero_division=0, **strict),
            "test_accuracy": accuracy_score(gold, pred),
        }
    from sklearn.metrics import accuracy_score, f1_score

    gold, pred = [r["label"] for r in rows], [r["pred"] for r in rows]
    return {
        "test_macro_f1": f1_score(gold, pred, average="macro", zero_division=0),
        "test_accuracy": accuracy_score(gold, pred),
    }


@pytest.mark.slow
def test_minimal_profile_end_to_end(mini_grid, monkeypatch, capsys):
    # conftest's `mini_profile`, run once for this test and tests/test_determinism.py
    project = mini_grid.use(monkeypatch)
    assert mini_grid.code == 0, mini_grid.output
    assert "summary: 14 done, 0 skipped, 0 failed, 0 blocked" in mini_grid.output
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
    assert base["head_path"] is None and adapted["head_path"] == "inverse"  # the adapter's LM head path
    assert (runs / result("pppl/tiny-xlmr.qac.none.none--*")["label"] / "per_sentence.csv").exists()
    chosen, precision = device_and_precision()  # (cpu, "no") without a GPU
    device = str(chosen)
    assert (base["device"], base["precision"], base["dtype"]) == (device, precision, "float32")
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
    # the executed notebooks show their figures (image/png outputs): one per figure saved by the report, and the
    # stage notebooks' plots too
    executed = json.loads((figures / "notebook.ipynb").read_text())
    images = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == len(list(figures.glob("fig_*.png")))
    adapt_nb = json.loads((runs / result("adapt/*--*")["label"] / "notebook.ipynb").read_text())
    assert any("image/png" in o.get("data", {}) for c in adapt_nb["cells"] for o in c.get("outputs", []))
    assert (project.root / "figures" / "table_summary_tiny-xlmr.md").exists()
    # figures/findings.md: the learning checks (F0) first, then the paper's findings F1-F3, each with a verdict
    verdicts = [
        line
        for line in (project.root / "figures" / "findings.md").read_text().splitlines()
        if line.startswith("## F")
    ]
    assert [line[3:5] for line in verdicts] == ["F0", "F1", "F2", "F3"]
    assert verdicts[0].startswith("## F0 every run learned: ")
    # the paper's cells are all reported as not run (tiny model, demo language), never as 0
    versus = pd.read_csv(tables / "table_reproduced_vs_reported.csv")
    assert len(versus) > 2000 and (versus["status"] == "not run").all() and versus["reproduced"].isna().all()
    assert "seq_bn" in (tables / "table_adapter_parameters.md").read_text()
    loss = json.loads((figures / "fig_loss_tiny-xlmr_glotcc.runs.json").read_text())
    assert (
        loss["runs"] == [adapt["run"]]
        and (project.root / "figures" / "fig_loss_tiny-xlmr_glotcc.pdf").exists()
    )
    # every saved task metric follows from the saved predictions by an independent library call
    finetunes = sorted(runs.glob("finetune/*/result.json"))
    assert {json.loads(p.read_text())["spec"]["task"] for p in finetunes} == {"tc", "sa", "ner"}
    for path in finetunes:
        saved = json.loads(path.read_text())
        rows = [json.loads(line) for line in (path.parent / "predictions.jsonl").read_text().splitlines()]
        assert rows and (saved["metrics"]["device"], saved["metrics"]["precision"]) == (device, precision)
        recomputed = recompute_from_predictions(saved["spec"]["task"], rows)
        test_metrics = sorted(k for k in saved["metrics"] if k.startswith("test_"))
        assert test_metrics == sorted(recomputed), f"{path}: saved test metrics that are not recomputed"
        for key in test_metrics:
            assert saved["metrics"][key] == pytest.approx(recomputed[key], abs=1e-12), (path, key)
    # every executed notebook is kept next to its result; a second call does no work
    assert all((p.parent / "notebook.ipynb").exists() for p in runs.glob("*/*/result.json"))
    assert main(["--profile", "mini"]) == 0
    assert "summary: 0 done, 14 skipped" in capsys.readouterr().out
