"""Reproduced vs reported, correlations, LLM and parameter tables, and the new figures, on synthetic results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lrl_utils.config.params import load_registry
from lrl_utils.records.results import atomic_write_json
from lrl_utils.report import comparison, correlations, figures
from lrl_utils.report import tables as reporting

REG = load_registry()
SEEN = ["tha", "dan", "ron", "bul", "ell"]  # seen by mBERT
UNSEEN = ["mlt"]  # not seen by mBERT
CONFIGS = {
    "Base": ("none", "none"),
    "Glot Seq_bn": ("glotcc", "seq_bn"),
    "Glot Seq_bn_inv": ("glotcc", "seq_bn_inv"),
}
CONFIGS |= {"CN Seq_bn_inv": ("conceptnet", "seq_bn_inv")}


def _record(language, config, stage, metric, value, seed=np.nan, model="mbert", run=None):
    source, adapter = CONFIGS[config]
    task = "" if stage == "pppl" else "tc"
    return {
        "run": run or f"{model}-{stage}-{language}-{source}-{adapter}-{seed}",
        "stage": stage,
        "model": model,
        "language": language,
        "seen": model in REG.languages[language].seen_by,
        "source": source,
        "adapter": adapter,
        "task": task,
        "seed": seed,
        "metric": metric,
        "value": value,
    }


def _reported(rows):
    cols = ["table", "task", "model", "group", "language", "config", "value", "metric"]
    df = pd.DataFrame(rows, columns=cols)
    df["value_scaled"] = np.where(df["metric"] == "pppl", df["value"], df["value"] / 100)
    return df


def test_reproduced_vs_reported_cells_groups_and_missing() -> None:
    records = pd.DataFrame(
        [
            _record("tha", "Base", "finetune", "test_macro_f1", v, seed=s)
            for s, v in ((1, 0.79), (2, 0.80), (3, 0.81))
        ]
        + [_record("dan", "Base", "finetune", "test_macro_f1", 0.70, seed=1)]
        + [_record("tha", "Base", "pppl", "pppl", 10.0)]
    )
    reported = _reported(
        [
            ("Table 15", "tc", "mbert", "language", "tha", "Base", 81.0, "test_macro_f1"),  # within 0.02
            ("Table 15", "tc", "mbert", "language", "dan", "Base", 75.0, "test_macro_f1"),  # 0.05 off
            ("Table 15", "tc", "mbert", "language", "mlt", "Base", 30.0, "test_macro_f1"),  # not run
            ("Table 15", "tc", "mbert", "language", "tha", "FFT", 85.0, "test_macro_f1"),  # not run
            ("Table 15", "tc", "mbert", "seen", "", "Base", 78.0, "test_macro_f1"),  # tha + dan: complete
            ("Table 15", "tc", "mbert", "total", "", "Base", 60.0, "test_macro_f1"),  # mlt missing
            ("Table 10", "pppl", "mbert", "language", "tha", "Base", 12.0, "pppl"),  # relative -1/6
        ]
    )
    out = comparison.reproduced_vs_reported(
        records, reported, f1_tolerance=0.02, pppl_tolerance=0.10, registry=REG
    )
    assert len(out) == len(reported)
    tha = out.iloc[0]
    assert tha["reproduced"] == pytest.approx(0.80) and tha["reported"] == pytest.approx(0.81)
    assert (
        tha["difference"] == pytest.approx(-0.01)
        and tha["seeds"] == 3
        and tha["status"] == "within tolerance"
    )
    assert tha["reproduced_std"] == pytest.approx(0.01)
    assert out.iloc[1]["status"] == "outside tolerance" and out.iloc[1]["difference"] == pytest.approx(-0.05)
    for i in (2, 3):  # missing runs are missing, never zero
        assert out.iloc[i]["status"] == "not run" and np.isnan(out.iloc[i]["reproduced"])
        assert out.iloc[i]["within_tolerance"] is None
    seen = out.iloc[4]
    assert seen["reproduced"] == pytest.approx((0.80 + 0.70) / 2) and seen["status"] == "outside tolerance"
    assert set(seen["runs"].split()) == set(records.query("stage == 'finetune'")["run"])
    assert out.iloc[5]["status"] == "incomplete (2/3 languages)" and np.isnan(out.iloc[5]["reproduced"])
    pppl = out.iloc[6]
    assert pppl["difference"] == pytest.approx(10 / 12 - 1) and pppl["status"] == "outside tolerance"

    summary = comparison.comparison_summary(out).set_index("table")
    assert summary.loc["Table 15"].to_dict() == {
        "cells": 6,
        "run": 3,
        "within_tolerance": 1,
        "outside_tolerance": 2,
        "not_run": 3,
    }
    assert summary.loc["all", "cells"] == 7 and summary.loc["all", "outside_tolerance"] == 3


def test_reproduced_vs_reported_on_the_real_reference_marks_a_demo_as_not_run() -> None:
    from lrl_utils.report import reference

    reported = reference.reported_results()
    demo = pd.DataFrame([_record("tha", "Base", "pppl", "pppl", 5.0, model="tiny-mbert")])
    demo["language"] = "qab"
    out = comparison.reproduced_vs_reported(
        demo, reported, f1_tolerance=0.02, pppl_tolerance=0.1, registry=REG
    )
    assert len(out) == len(reported) and (out["status"] == "not run").all()
    assert out["reproduced"].isna().all()


def _sizes_frame(languages):
    rows = []
    for code in languages:
        lang = REG.languages[code]
        rows.append(
            {
                "model": "mbert",
                "language": code,
                "proxy": "Wikipedia",
                "pretrain_gb": lang.wiki_gb,
                "glotcc_gb": lang.glotcc_mb / 1024,
                "conceptnet_gb": lang.conceptnet_mb / 1024,
            }
        )
    return pd.DataFrame(rows)


def test_correlations_use_the_right_phases_units_and_exclusions() -> None:
    languages = SEEN + UNSEEN
    sizes = _sizes_frame(languages)
    rows = []
    for i, code in enumerate(languages):
        wiki = REG.languages[code].wiki_gb
        rows.append(_record(code, "Base", "pppl", "pppl", 100.0 / wiki))  # falls with size: Spearman -1
        rows.append(_record(code, "Glot Seq_bn", "pppl", "pppl", 5.0 + i))  # rises with the list order
        for config, f1 in (
            ("Base", 0.5 + 0.1 * wiki),
            ("Glot Seq_bn_inv", 0.6),
            ("CN Seq_bn_inv", 0.4 + i / 100),
        ):
            rows.append(_record(code, config, "finetune", "test_macro_f1", f1, seed=1))
    records = pd.DataFrame(rows)

    before = correlations.correlation_points(
        records, sizes, model="mbert", analysis="pppl_vs_size", phase="before"
    )
    assert sorted(before["language"]) == sorted(SEEN)  # the unseen language is left out first
    assert before.set_index("language").loc["tha", "x"] == pytest.approx(1.2912)
    assert before.set_index("language").loc["tha", "y"] == pytest.approx(
        100.0 / 1.2912
    )  # base PPPL, not adapted
    assert before.attrs["x_label"] == "Wikipedia GB" and before.attrs["y_label"] == "Base PPPL"
    after = correlations.correlation_points(
        records, sizes, model="mbert", analysis="pppl_vs_size", phase="after"
    )
    tha = REG.languages["tha"]
    assert after.set_index("language").loc["tha", "x"] == pytest.approx(tha.wiki_gb + tha.glotcc_mb / 1024)
    assert after.attrs["y_label"] == "Glot Seq_bn PPPL"
    cn = correlations.correlation_points(
        records, sizes, model="mbert", analysis="tc_vs_size", phase="after_cn"
    )
    # ConceptNet MB are converted to GB before they are added (the original added MB to GB)
    assert cn.set_index("language").loc["tha", "x"] == pytest.approx(tha.wiki_gb + tha.conceptnet_mb / 1024)

    table = correlations.correlation_table(records, sizes).set_index(["analysis", "phase"])
    row = table.loc[("pppl_vs_size", "before")]
    assert row["n"] == len(SEEN) and row["spearman_r"] == pytest.approx(-1.0)
    x, y = before["x"].to_numpy(), before["y"].to_numpy()
    assert row["pearson_r"] == pytest.approx(np.corrcoef(x, y)[0, 1])  # an independent computation
    assert np.isnan(table.loc[("tc_vs_size", "after"), "spearman_r"])  # constant F1: no coefficient
    assert table.loc[("pppl_vs_tc", "before"), "spearman_r"] == pytest.approx(-1.0)
    with_unseen = correlations.correlation_points(
        records, sizes, model="mbert", analysis="pppl_vs_size", phase="before", include_unseen=True
    )
    assert "mlt" in set(with_unseen["language"])


def test_data_sizes_from_the_registry_and_from_a_tiny_models_runs(project) -> None:
    def write(folder: str, stage: str, spec: dict, metrics: dict) -> None:
        atomic_write_json(
            project.runs / folder / "result.json", {"stage": stage, "spec": spec, "metrics": metrics}
        )

    write("preprocess/qen", "preprocess", {"language": "qen"}, {"train_mb": 2.0})
    write("preprocess/qab", "preprocess", {"language": "qab"}, {"train_mb": 1.0})
    write("preprocess/qab-cn", "preprocess", {"language": "qab"}, {"train_mb": 0.25})
    base = {"corpora": ["preprocess/qen", "preprocess/qab"], "shares": [1.0, 0.15]}
    write("base_model/tiny", "base_model", base, {})
    write("adapt/qab-cn", "adapt", {"corpus": "preprocess/qab-cn"}, {})
    tiny = {"model": "tiny-mbert", "language": "qab", "model_ref": "base_model/tiny"}
    write("pppl/tiny", "pppl", {**tiny, "source": "conceptnet", "adapter_run": "adapt/qab-cn"}, {"pppl": 1.0})
    real = {
        "model": "xlmr",
        "language": "tha",
        "model_ref": "FacebookAI/xlm-roberta-base",
        "source": "glotcc",
    }
    write("pppl/real", "pppl", {**real, "adapter_run": "adapt/none"}, {"pppl": 2.0})
    sizes = correlations.data_sizes(["pppl/tiny", "pppl/real", "pppl/missing"]).set_index("model")
    assert sizes.loc["tiny-mbert", "pretrain_gb"] == pytest.approx(0.15 * 1.0 / 1e3)
    assert sizes.loc["tiny-mbert", "conceptnet_gb"] == pytest.approx(0.25 / 1e3)
    assert (
        sizes.loc["xlmr", "pretrain_gb"] == pytest.approx(85.2361) and sizes.loc["xlmr", "proxy"] == "CC100"
    )
    assert sizes.loc["xlmr", "glotcc_gb"] == pytest.approx(977.68 / 1024)


def test_correlation_and_loss_figures_are_written(tmp_path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    points = pd.DataFrame(
        {"language": ["a", "b", "c", "d"], "x": [1.0, 2.0, 4.0, 8.0], "y": [40.0, 20, 12, 5]}
    )
    points.attrs = {"x_label": "Wikipedia GB", "y_label": "Base PPPL"}
    fig = figures.plot_correlation({"before": points, "after": points.assign(y=points["y"] / 2)}, log_y=True)
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "Spearman ρ=-1.00" in legend and "before adaptation" in legend and "after adaptation" in legend
    written = figures.save_figure(fig, tmp_path / "cor", runs=["r1"])
    assert [p.name for p in written] == ["cor.png", "cor.pdf", "cor.runs.json"]
    assert written[0].stat().st_size > 5000

    log_dir = tmp_path / "tb"
    writer = SummaryWriter(str(log_dir))
    for step in range(1, 21):
        writer.add_scalar("train/loss", 5.0 - step / 10, step)
        if step % 5 == 0:
            writer.add_scalar("val/loss", 5.2 - step / 10, step)
    writer.close()
    curves = figures.read_loss_curves(log_dir)
    assert len(curves) == 24 and set(curves["split"]) == {"train", "val"}
    assert curves.query("split == 'val'")["loss"].iloc[-1] == pytest.approx(3.2)
    fig = figures.plot_loss_curves(curves.assign(language="qab", config="Glot Seq_bn"), title="t")
    assert len(fig.axes[0].lines) == 2
    png, pdf, sidecar = figures.save_figure(fig, tmp_path / "loss", runs=["a1"])
    assert png.stat().st_size > 5000 and json.loads(sidecar.read_text())["runs"] == ["a1"]


def test_parameter_and_llm_tables(project) -> None:
    def write(folder: str, stage: str, spec: dict, metrics: dict) -> None:
        result = {"run": folder.split("/")[1], "stage": stage, "spec": spec, "metrics": metrics}
        atomic_write_json(project.runs / folder / "result.json", result)

    adapter = {"model": "mbert", "language": "tha", "source": "glotcc", "adapter": "seq_bn", "train": {}}
    write("adapt/a1", "adapt", adapter, {"trainable_params": 894528, "adapter_params": 894528})
    write("adapt/a2", "adapt", {**adapter, "adapter": "lora"}, {"trainable_params": 294912})
    write("pppl/p1", "pppl", {"adapter_run": "adapt/a1"}, {"pppl": 1.0})
    write("finetune/f1", "finetune", {"adapter_run": "adapt/a2"}, {"test_macro_f1": 0.5})
    adapts = comparison.load_adapt_records(["pppl/p1", "finetune/f1"])
    assert list(adapts["config"]) == ["Glot Seq_bn", "Glot LoRA"]
    reported = pd.DataFrame({"model": ["mbert"], "adapter": ["seq_bn"], "trainable_params": [894528]})
    params = comparison.parameter_table(adapts, reported).set_index("adapter")
    assert (
        params.loc["seq_bn", "trainable_params"]
        == params.loc["seq_bn", "paper_trainable_params"]
        == "894,528"
    )
    assert params.loc["lora", "paper_trainable_params"] == "–"

    for lang, f1, invalid in (("qab", 0.2, 0.5), ("qac", 0.4, 0.1)):
        llm = {"llm": "tiny-llama", "language": lang, "task": "tc", "shots": 3}
        write(f"llm/{lang}", "llm", llm, {"f1": f1, "invalid_rate": invalid, "f1_paper_compat": 0.9})
    llm_records = comparison.load_llm_records(["llm/qab", "llm/qac", "pppl/p1"])
    assert len(llm_records) == 6
    records = pd.DataFrame(
        [
            _record("tha", c, "finetune", "test_macro_f1", v, seed=1)
            for c, v in (("Base", 0.6), ("Glot Seq_bn_inv", 0.7))
        ]
    )
    table = comparison.llm_comparison_table(llm_records, records).set_index("system")
    assert table.loc["tiny-llama (3-shot)", "tc F1"] == pytest.approx(0.3)  # over all items, not valid-only
    assert table.loc["tiny-llama (3-shot)", "tc invalid"] == pytest.approx(0.3)
    assert table.loc["mbert + Glot Seq_bn_inv", "tc F1"] == pytest.approx(0.7)
    written = reporting.write_frame(
        table.reset_index(), project.root / "llm", caption="LLMs", runs=["x"], reference=["t2"]
    )
    assert [p.suffix for p in written] == [".csv", ".md", ".tex", ".json"]
    assert "tiny-llama (3-shot)" in written[1].read_text() and json.loads(written[3].read_text())[
        "reference"
    ] == ["t2"]


def test_adapter_losses_compared_with_table_8() -> None:
    from lrl_utils.report import reference

    table8 = comparison.reported_adapter_losses(reference.load_table("table08_adapter_losses"))
    assert len(table8) == 360 and set(table8["metric"]) == {"final_val_loss"}
    adapts = pd.DataFrame(
        [
            {"run": "a1", "model": "mbert", "language": "tha", "source": "conceptnet", "adapter": "seq_bn"},
            {"run": "a2", "model": "mbert", "language": "tha", "source": "glotcc", "adapter": "lora"},
            {"run": "a3", "model": "llama3", "language": "mlt", "source": "glotcc", "adapter": "seq_bn_inv"},
        ]
    ).assign(objective=["mlm", "mlm", "clm"], final_val_loss=[1.25, 9.0, 1.0])
    loss_records = comparison.adapter_loss_records(adapts)
    assert list(loss_records["run"]) == ["a1", "a2"]  # causal-LM adapters are not in Table 8
    out = comparison.reproduced_vs_reported(
        loss_records, table8, f1_tolerance=0.02, pppl_tolerance=0.1, loss_tolerance=0.1, registry=REG
    ).set_index(["model", "language", "config"])
    reported = table8.set_index(["model", "language", "config"])["value"]
    cn = out.loc[("mbert", "tha", "CN Seq_bn")]
    assert cn["reported"] == reported.loc[("mbert", "tha", "CN Seq_bn")]
    assert cn["difference"] == pytest.approx(1.25 - cn["reported"]) and cn["tolerance"] == 0.1
    assert cn["status"] == ("within tolerance" if abs(cn["difference"]) <= 0.1 else "outside tolerance")
    assert out.loc[("mbert", "tha", "Glot LoRA"), "status"] == "outside tolerance"
    assert (out["status"] == "not run").sum() == 358


def test_axis_labels_say_the_common_ending_once() -> None:
    assert correlations.axis_label(["Base TC F1", "Glot Seq_bn_inv TC F1"]) == "TC F1: Base / Glot Seq_bn_inv"
    assert correlations.axis_label(["CC100 GB", "CC100 + GlotCC GB"]) == (
        "the language's data in GB: CC100 / CC100 + GlotCC"
    )
    assert correlations.axis_label(["Base PPPL", "Base PPPL"]) == "Base PPPL"
    assert correlations.axis_label(["x", "y"]) == "x / y"  # nothing in common: both, as they are
    points = pd.DataFrame({"language": list("abcd"), "x": [1.0, 2, 4, 8], "y": [0.2, 0.3, 0.5, 0.6]})
    before = points.copy()
    before.attrs = {"x_label": "Wikipedia GB", "y_label": "Base TC F1"}
    after = points.assign(x=points["x"] * 3)
    after.attrs = {"x_label": "Wikipedia + GlotCC GB", "y_label": "Glot Seq_bn_inv TC F1"}
    ax = figures.plot_correlation({"before": before, "after": after}).axes[0]
    assert ax.get_ylabel() == "TC F1: Base / Glot Seq_bn_inv"
    assert " ".join(ax.get_xlabel().split()) == "the language's data in GB: Wikipedia / Wikipedia + GlotCC"


def test_a_correlation_figure_needs_four_seen_languages(tmp_path, monkeypatch) -> None:
    """Four seen languages with TC make the TC figures; one with SA makes none, says why, and an earlier
    report's SA figure leaves `figures/`."""
    from types import SimpleNamespace

    from lrl_utils.report import figure_outputs

    rows = []
    for i, language in enumerate(SEEN[:4]):
        for config, gain in (("Base", 0.0), ("Glot Seq_bn", 0.05), ("Glot Seq_bn_inv", 0.1)):
            rows.append(_record(language, config, "finetune", "test_macro_f1", 0.5 + 0.05 * i + gain, seed=1))
            rows.append(_record(language, config, "pppl", "pppl", 40.0 - 5 * i - 10 * gain))
    sa = _record(SEEN[0], "Base", "finetune", "test_macro_f1", 0.8, seed=1, run="sa-run")
    rows.append(sa | {"task": "sa"})
    records = pd.DataFrame(rows)
    sizes = pd.DataFrame(
        [
            {
                "model": "mbert",
                "language": lang,
                "proxy": "Wikipedia",
                "pretrain_gb": 0.1 * 2**i,
                "glotcc_gb": 1.0,
            }
            for i, lang in enumerate(SEEN[:4])
        ]
    ).assign(conceptnet_gb=np.nan)
    monkeypatch.setattr(correlations, "data_sizes", lambda inputs: sizes)
    out = tmp_path / "figures"
    out.mkdir()
    (out / "fig_cor_sa_vs_size_mbert.png").write_bytes(b"stale")
    (out / "fig_cor_sa_vs_size_mbert.runs.json").write_text("{}")
    drawn: list[str] = []
    report = SimpleNamespace(
        records=records,
        spec=SimpleNamespace(inputs=[]),
        models=["mbert"],
        figure=lambda fig, name, runs: drawn.append(name),
        copies=[out],
        discarded=[],
        written=[],
        ctx=SimpleNamespace(out_dir=tmp_path / "run"),
    )
    report.discard = lambda name: figure_outputs.ReportRun.discard(report, name)
    shown = figure_outputs.correlation_figures(report)
    assert list(out.glob("fig_cor_sa_vs_size_mbert.*"))  # figures/ changes only when the report is published
    figure_outputs.ReportRun.publish(report)
    assert sorted(drawn) == [
        "fig_cor_pppl_vs_size_mbert",
        "fig_cor_pppl_vs_tc_mbert",
        "fig_cor_tc_vs_size_mbert",
    ]
    notes = [text for _, text in shown if isinstance(text, str)]
    assert any(
        "SA F1 against the language's data" in n and "no figure, 1 seen language(s) (tha)" in n for n in notes
    )
    assert not list(out.glob("fig_cor_sa_vs_size_mbert.*"))


def test_a_correlation_title_names_the_phases_it_draws() -> None:
    from lrl_utils.report.figure_outputs import correlation_title

    assert correlation_title("tc_vs_size", "m", ["before", "after", "after_cn"]) == (
        "m: TC F1 against the language's data (GB), before and after adaptation (means over seeds)"
    )
    assert correlation_title("pppl_vs_tc", "m", ["before"]) == (
        "m: TC F1 against PPPL, before adaptation (means over seeds)"
    )
    assert correlation_title("pppl_vs_size", "m", ["after"]).endswith(", after adaptation (means over seeds)")
