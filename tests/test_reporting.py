"""Tests of lrl_utils.report.tables on a synthetic tidy frame with known values."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from lrl_utils.report import tables as rep

CONFIGS = {"Base": ("none", "none"), "CN Seq_bn": ("conceptnet", "seq_bn"), "Glot LoRA": ("glotcc", "lora")}
UNSEEN = {"tiny-mbert": "qac", "tiny-xlmr": "qab"}  # seen-ness depends on the model
# tiny-mbert PPPL (one run per cell): the lowest value is a different configuration in each row.
PPPL = {
    "qaa": {"Base": 20.0, "CN Seq_bn": 25.0, "Glot LoRA": 10.0},
    "qab": {"Base": 30.0, "CN Seq_bn": 15.0, "Glot LoRA": 40.0},
    "qac": {"Base": 100.0, "CN Seq_bn": 200.0, "Glot LoRA": 400.0},
}
# tiny-mbert TC macro-F1 means; seeds 1-3 add -D, 0, +D (so the std over seeds is D). None = missing cell.
F1 = {
    "qaa": {"Base": 0.60, "CN Seq_bn": 0.70, "Glot LoRA": 0.80},
    "qab": {"Base": 0.50, "CN Seq_bn": 0.40, "Glot LoRA": 0.46},
    "qac": {"Base": 0.30, "CN Seq_bn": 0.20, "Glot LoRA": None},
}
D = 0.02


def _row(model, lang, config, stage, seed, metric, value):
    source, adapter = CONFIGS[config]
    run = f"{model}-{stage}-{lang}-{source}-{adapter}-{seed}"
    return {
        "run": run,
        "stage": stage,
        "model": model,
        "language": lang,
        "seen": lang != UNSEEN[model],
        "source": source,
        "adapter": adapter,
        "task": "" if stage == "pppl" else "tc",
        "seed": seed,
        "metric": metric,
        "value": value,
    }


@pytest.fixture()
def tidy() -> pd.DataFrame:
    rows = []
    for model, factor in (("tiny-mbert", 1.0), ("tiny-xlmr", 0.5)):  # tiny-xlmr: other values
        for lang in PPPL:
            for config in CONFIGS:
                rows.append(_row(model, lang, config, "pppl", np.nan, "pppl", PPPL[lang][config] * factor))
                if (mean := F1[lang][config]) is None:
                    continue
                for seed, offset in zip((1, 2, 3), (-D, 0.0, D), strict=True):
                    rows.append(
                        _row(model, lang, config, "finetune", seed, "test_macro_f1", factor * mean + offset)
                    )
    return pd.DataFrame(rows)


def _f1(df: pd.DataFrame, model: str = "tiny-mbert") -> pd.DataFrame:
    return rep.results_table(df, stage="finetune", metric="test_macro_f1", model=model, task="tc")


def _pppl(df: pd.DataFrame, model: str = "tiny-mbert") -> pd.DataFrame:
    return rep.results_table(df, stage="pppl", metric="pppl", model=model)


def _md_cells(text: str, label: str) -> list[str]:
    """The cells of the Markdown row whose first cell is ``label``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no row {label!r} in\n{text}")


def _tex_line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(label + " &"))


def test_config_labels_and_order() -> None:
    assert rep.config_label("none", "none") == "Base"
    assert rep.config_label("conceptnet", "seq_bn") == "CN Seq_bn"
    assert rep.config_label("conceptnet", "seq_bn_inv") == "CN Seq_bn_inv"
    assert rep.config_label("glotcc", "lora") == "Glot LoRA"
    assert rep.config_label("glotcc", "fft") == "FFT"
    assert rep.config_label(float("nan"), "none") == "Base"
    assert rep.CONFIG_ORDER[:7] == (
        "Base",
        "CN Seq_bn",
        "CN LoRA",
        "CN Seq_bn_inv",
        "Glot Seq_bn",
        "Glot LoRA",
        "Glot Seq_bn_inv",
    )


def test_layout_means_stds_counts(tidy: pd.DataFrame) -> None:
    table = _f1(tidy)
    assert list(table.index) == ["qaa", "qab", "qac", "Seen avg", "Unseen avg", "Total avg"]
    assert list(table.columns.get_level_values("config").unique()) == list(CONFIGS)
    assert table.attrs["unseen"] == ["qac"]
    for lang, row in F1.items():
        for config, mean in row.items():
            if mean is None:
                continue
            assert table.at[lang, (config, "mean")] == pytest.approx(mean)
            assert table.at[lang, (config, "std")] == pytest.approx(D)
            assert table.at[lang, (config, "n")] == 3
    # seen-ness follows the model: qab is the unseen language of tiny-xlmr
    other = _f1(tidy, "tiny-xlmr")
    assert list(other.index[:3]) == ["qaa", "qac", "qab"] and other.attrs["unseen"] == ["qab"]
    assert other.at["qaa", ("Base", "mean")] == pytest.approx(0.30)


def test_group_averages_exact_and_missing_cell(tidy: pd.DataFrame) -> None:
    table = _f1(tidy)
    mean = table.xs("mean", axis=1, level="stat")
    assert mean.at["Seen avg", "Base"] == pytest.approx((0.60 + 0.50) / 2)
    assert mean.at["Unseen avg", "CN Seq_bn"] == pytest.approx(0.20)
    assert mean.at["Total avg", "CN Seq_bn"] == pytest.approx((0.70 + 0.40 + 0.20) / 3)
    # the missing cell stays NaN (not 0) and the averages are over the present languages only
    assert math.isnan(table.at["qac", ("Glot LoRA", "mean")])
    assert table.at["qac", ("Glot LoRA", "n")] == 0
    assert math.isnan(table.at["Unseen avg", ("Glot LoRA", "mean")])
    assert mean.at["Total avg", "Glot LoRA"] == pytest.approx((0.80 + 0.46) / 2)
    assert table.at["Total avg", ("Glot LoRA", "n")] == 2
    assert table.attrs["expected_n"]["Total avg"] == 3
    pppl = _pppl(tidy).xs("mean", axis=1, level="stat")
    assert pppl.at["Seen avg", "CN Seq_bn"] == pytest.approx(20.0)
    assert pppl.at["Total avg", "Glot LoRA"] == pytest.approx(150.0)


def test_unseen_group_omitted_when_empty(tidy: pd.DataFrame) -> None:
    seen_only = tidy[tidy["language"] != "qac"]
    assert list(_pppl(seen_only).index) == ["qaa", "qab", "Seen avg", "Total avg"]


def test_markdown_cells_bold_and_missing(tidy: pd.DataFrame) -> None:
    text = rep.format_table(_f1(tidy), lower_is_better=False, fmt="markdown")
    assert _md_cells(text, "qaa") == ["0.60 ± 0.02", "0.70 ± 0.02", "**0.80 ± 0.02**"]
    assert _md_cells(text, "qab") == ["**0.50 ± 0.02**", "0.40 ± 0.02", "0.46 ± 0.02"]
    assert _md_cells(text, "qac†") == ["**0.30 ± 0.02**", "0.20 ± 0.02", "–"]
    assert _md_cells(text, "Unseen avg") == ["**0.30**", "0.20", "–"]
    # a partial average is flagged and cannot be bold
    assert _md_cells(text, "Total avg") == ["**0.47**", "0.43", "0.63\\*"]
    assert " 0.00 " not in text and "nan" not in text.lower()

    pppl = rep.format_table(_pppl(tidy), lower_is_better=True, fmt="markdown", decimals=1)
    assert _md_cells(pppl, "qaa") == ["20.0", "25.0", "**10.0**"]  # one seed: no "±"
    assert _md_cells(pppl, "qab") == ["30.0", "**15.0**", "40.0"]
    assert _md_cells(pppl, "qac†") == ["**100.0**", "200.0", "400.0"]
    assert _md_cells(pppl, "Seen avg") == ["25.0", "**20.0**", "25.0"]
    assert _md_cells(pppl, "Total avg") == ["**50.0**", "80.0", "150.0"]


def test_latex_output(tidy: pd.DataFrame) -> None:
    text = rep.format_table(_f1(tidy), lower_is_better=False, fmt="latex", caption="TC macro-F1")
    assert r"\begin{tabular}" in text and r"\caption{TC macro-F1}" in text
    assert r"CN Seq\_bn" in text
    assert r"\textbf{0.80 $\pm$ 0.02}" in _tex_line(text, "qaa")
    qac = _tex_line(text, r"qac$^\dagger$")
    assert r"\textbf{0.30 $\pm$ 0.02}" in qac and qac.rstrip(" \\").endswith("--")
    pppl = rep.format_table(_pppl(tidy), lower_is_better=True, fmt="latex")
    assert r"\textbf{10.00}" in _tex_line(pppl, "qaa") and r"\textbf{50.00}" in _tex_line(pppl, "Total avg")


def test_write_table_files_and_sidecar(tidy: pd.DataFrame, tmp_path) -> None:
    table = _f1(tidy)
    runs = rep.selected_runs(tidy, stage="finetune", metric="test_macro_f1", model="tiny-mbert", task="tc")
    paths = rep.write_table(table, tmp_path / "tc_mbert", lower_is_better=False, caption="TC", runs=runs)
    assert [p.name for p in paths] == ["tc_mbert.md", "tc_mbert.tex", "tc_mbert.runs.json"]
    assert "**0.80 ± 0.02**" in paths[0].read_text() and r"\textbf" in paths[1].read_text()
    sidecar = json.loads(paths[2].read_text())
    expected = tidy.query("model == 'tiny-mbert' and stage == 'finetune'")["run"]
    assert sidecar["runs"] == sorted(set(expected)) == table.attrs["runs"]
    assert len(sidecar["runs"]) == 8 * 3 and sidecar["caption"] == "TC"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_summary_table(tidy: pd.DataFrame) -> None:
    summary = rep.summary_table(tidy, model="tiny-mbert")
    assert list(summary.index) == [
        f"{m} ({g})" for m in ("PPPL", "TC F1") for g in ("seen", "unseen", "total")
    ]
    assert summary.at["PPPL (total)", ("Base", "mean")] == pytest.approx(50.0)
    assert summary.at["TC F1 (total)", ("Glot LoRA", "n")] == 2
    text = rep.format_table(summary, lower_is_better=summary.attrs["lower_is_better"])
    assert _md_cells(text, "PPPL (total)") == ["**50.00**", "80.00", "150.00"]
    assert _md_cells(text, "TC F1 (seen)") == ["0.55", "0.55", "**0.63**"]


def test_errors(tidy: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no results"):
        rep.results_table(tidy, stage="finetune", metric="test_macro_f1", model="tiny-mbert", task="ner")
    stale = tidy.iloc[[0]].assign(run="stale-run")  # a second run for the same language/config/seed
    with pytest.raises(ValueError, match="stale-run"):
        _pppl(pd.concat([tidy, stale]))


@pytest.mark.parametrize("stage", ["pppl", "finetune"])
def test_figures_written(tidy: pd.DataFrame, tmp_path, stage: str) -> None:
    metric, task = ("pppl", "") if stage == "pppl" else ("test_macro_f1", "tc")
    from lrl_utils.report import figures

    fig = figures.plot_metric_bars(
        tidy, stage=stage, metric=metric, model="tiny-mbert", task=task, log_y=stage == "pppl", title="t"
    )
    assert tuple(fig.get_size_inches()) == (figures.PAGE_WIDTH, 2.8)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["qaa", "qab", "qac†"]
    runs = rep.selected_runs(tidy, stage=stage, metric=metric, model="tiny-mbert", task=task)
    png, pdf, sidecar = figures.save_figure(fig, tmp_path / f"{stage}_bars", runs)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1024
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1024
    assert json.loads(sidecar.read_text())["runs"] == runs
    assert len(list(tmp_path.iterdir())) == 3


def test_learning_checks(tidy: pd.DataFrame) -> None:
    from lrl_utils.report import checks as lc

    checks = lc.learning_checks(tidy).set_index(["check", "model", "language", "config"])
    pppl = checks.loc["pppl_below_base"]
    assert len(pppl) == 2 * 3 * 2  # models x languages x adapted configurations
    row = pppl.loc[("tiny-mbert", "qaa", "glotcc/lora")]  # 10 < 20
    assert row["passed"] and not row["required"] and row["value"] == 10.0 and row["reference"] == 20.0
    assert not pppl.loc[("tiny-mbert", "qab", "glotcc/lora")]["passed"]  # 40 > 30
    assert not pppl.loc[("tiny-mbert", "qaa", "conceptnet/seq_bn")]["required"]  # reported only
    tc = checks.loc["tc_above_chance"]
    assert tc.loc[("tiny-mbert", "qaa", "none/none")]["value"] == pytest.approx(0.60)
    assert tc.loc[("tiny-mbert", "qaa", "none/none")]["required"]  # seen language
    assert not tc.loc[("tiny-mbert", "qac", "none/none")]["required"]  # unseen: reported only
    assert tc.loc[("tiny-xlmr", "qac", "conceptnet/seq_bn")]["value"] == pytest.approx(0.10)
    assert not tc.loc[("tiny-xlmr", "qac", "conceptnet/seq_bn")]["passed"]  # 0.10 < 1.5 / 7
    assert ("tiny-mbert", "qac", "glotcc/lora") not in tc.index  # missing cell: no check
    counts = lc.summary(lc.learning_checks(tidy))
    assert counts["checks"] == len(checks) and counts["required_checks_passed"] <= counts["required_checks"]


def test_adapter_checks_read_the_adapt_runs_behind_evaluations(project) -> None:
    from lrl_utils.records.results import atomic_write_json
    from lrl_utils.report import checks as lc

    def write(folder: str, spec: dict, metrics: dict) -> None:
        atomic_write_json(project.runs / folder / "result.json", {"spec": spec, "metrics": metrics})

    adapter = {"model": "tiny-xlmr", "language": "qab", "source": "glotcc", "adapter": "lora"}
    write("adapt/a1", adapter, {"initial_val_loss": 5.0, "best_val_loss": 4.5})
    write("adapt/a2", {**adapter, "source": "conceptnet"}, {"initial_val_loss": 5.0, "best_val_loss": 5.0})
    write("pppl/p1", {"adapter_run": "adapt/a1"}, {"pppl": 1.0})
    write("finetune/f1", {"adapter_run": "adapt/a2"}, {"test_macro_f1": 0.5})
    write("pppl/base", {"adapter_run": None}, {"pppl": 2.0})
    checks = lc.adapter_checks(["pppl/p1", "finetune/f1", "pppl/base", "pppl/missing"])
    assert list(checks["config"]) == ["glotcc/lora", "conceptnet/lora"]
    assert list(checks["passed"]) == [True, False] and checks["required"].all()  # 5.0 is not below 5.0
    assert list(checks["reference"]) == [5.0, 5.0]
    clm = {
        **adapter,
        "model": "tiny-llama",
        "adapter": "seq_bn_inv",
    }  # read by no evaluation: listed directly
    write("adapt/c1", clm, {"initial_val_loss": 3.4, "best_val_loss": 3.0})
    checks = lc.adapter_checks(["pppl/p1", "adapt/c1"])
    assert list(checks["model"]) == ["tiny-xlmr", "tiny-llama"] and checks["passed"].all()


def test_a_profile_may_run_a_subset_of_the_tasks(tidy: pd.DataFrame, tmp_path, monkeypatch) -> None:
    """The report's producers skip the tables and figures of tasks no run measured (a TC-only profile)."""
    from types import SimpleNamespace

    from lrl_utils.report import figure_outputs, outputs, table_outputs

    assert rep.has_results(tidy, stage="finetune", metric="test_macro_f1", model="tiny-mbert", task="tc")
    assert not rep.has_results(tidy, stage="finetune", metric="test_f1", model="tiny-mbert", task="ner")
    monkeypatch.setenv("LRL_ROOT", str(tmp_path))
    (tmp_path / "figures").mkdir()
    ctx = SimpleNamespace(out_dir=tmp_path / "out", spec=SimpleNamespace(inputs=[]), interactive=False)
    ctx.out_dir.mkdir()
    report = outputs.ReportRun(ctx=ctx, records=tidy, missing=[])
    tables = [caption for caption, _ in table_outputs.metric_tables(report)]
    assert tables and all("Named entity" not in c and "Sentiment" not in c for c in tables)
    assert figure_outputs.metric_figures(report)
    assert not [p for p in report.written if "_ner_" in p.name or "_sa_" in p.name]


def test_languages_scored_on_unknown_tokens_are_marked(tidy: pd.DataFrame, tmp_path) -> None:
    """A language whose runs had over 5% of their tokens unknown to the tokenizer (`unk_share`) gets ‡ and a
    note, in Markdown and LaTeX; a share at or under 5%, or one of another model's runs, marks nothing."""
    shares = []
    for (model, lang, _stage, _run), group in tidy.groupby(["model", "language", "stage", "run"]):
        row = group.iloc[0].to_dict()
        share = 0.30 if (model, lang) == ("tiny-mbert", "qab") else 0.05
        shares.append({**row, "metric": "unk_share", "value": share})
    df = pd.concat([tidy, pd.DataFrame(shares)], ignore_index=True)
    for table in (_f1(df), _pppl(df)):
        assert table.attrs["unknown"] == ["qab"]
        text = rep.format_table(table, lower_is_better=False)
        assert _md_cells(text, "qab‡") and _md_cells(text, "qac†")
        assert "‡ over 5% of its tokens unknown to the tokenizer" in text
        latex = rep.format_table(table, lower_is_better=False, fmt="latex")
        assert _tex_line(latex, r"qab$^\ddagger$") and r"$^\ddagger$ over 5\% of its tokens" in latex
    assert _f1(df, "tiny-xlmr").attrs["unknown"] == [] and "‡" not in rep.format_table(
        _f1(df, "tiny-xlmr"), lower_is_better=False
    )
    assert _f1(tidy).attrs["unknown"] == []  # results without unk_share (older runs)
    paths = rep.write_table(_f1(df), tmp_path / "tc", lower_is_better=False, caption="TC", runs=["r"])
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in paths)  # others may read a report's files
