"""Result records that are damaged, copied or not finite: read as no result, named in one line; the report is
rebuilt when what it read changes, and it changes `figures/` only once it has finished."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import tiny_profile

from lrl_utils.orchestration.grid import Grid
from lrl_utils.records import results
from lrl_utils.records.context import RunContext
from lrl_utils.records.results import atomic_write_json, load_records, make_result, read_result
from lrl_utils.records.run_folders import is_done

FOLDER = "pppl/tiny-xlmr.qab.none.none--55ec62a85f14"
GOOD = {
    "status": "done",
    "stage": "pppl",
    "run": "55ec62a85f14",
    "spec": {"model": "tiny-xlmr", "language": "qab"},
    "metrics": {"pppl": 273.87, "head_path": "inverse"},
}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"spec": {', "not JSON (Expecting"),
        (b"[1, 2]", "not a JSON object (list)"),
        (json.dumps({**GOOD, "spec": "x"}).encode(), "`spec` is not a JSON object"),
        (json.dumps({**GOOD, "metrics": None}).encode(), "`metrics` is not a JSON object"),
        (json.dumps({**GOOD, "status": "failed"}).encode(), "status 'failed', not done"),
        (json.dumps({**GOOD, "run": "000000000000"}).encode(), "the record of run 000000000000, not of this"),
        (json.dumps({**GOOD, "metrics": {"pppl": float("inf")}}).encode(), "metric `pppl` is inf"),
        (json.dumps({**GOOD, "metrics": {"pppl": float("nan")}}).encode(), "metric `pppl` is nan"),
    ],
)
def test_a_damaged_result_is_no_result_and_named_once(project, capsys, content, problem) -> None:
    path = project.runs / FOLDER / "result.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert read_result(FOLDER) is None and read_result(FOLDER) is None
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"warning: runs/{FOLDER}/result.json: damaged, read as no result: "
    )
    assert problem in err[0]
    assert load_records([FOLDER]).empty  # no table reads it
    results._WARNED.clear()


def test_a_sound_result_reads_and_tabulates_its_numbers(project, capsys) -> None:
    atomic_write_json(project.runs / FOLDER / "result.json", GOOD)
    assert read_result(FOLDER) == GOOD
    records = load_records([FOLDER])
    assert list(records["metric"]) == ["pppl"] and list(records["value"]) == [273.87]
    assert capsys.readouterr().err == ""


def test_a_tiny_model_has_seen_the_languages_its_base_model_run_was_pretrained_on(project) -> None:
    # real languages pre-trained into a tiny model (as params/profiles/real-samples.yaml does): the registry's
    # `seen_by` names only the paper's models for them, so it cannot say; the base_model run's corpora can
    for lang in ("cym", "uzn"):
        atomic_write_json(
            project.runs / f"preprocess/{lang}.glotcc--00000000000{len(lang)}" / "result.json",
            {"status": "done", "stage": "preprocess", "spec": {"language": lang}, "metrics": {}},
        )
    base = "base_model/tiny-xlmr--000000000001"
    corpora, vocabulary = ["preprocess/cym.glotcc--000000000003"], ["preprocess/uzn.glotcc--000000000003"]
    atomic_write_json(
        project.runs / base / "result.json",
        {
            "status": "done",
            "stage": "base_model",
            "spec": {"corpora": corpora, "vocabulary_corpora": vocabulary},
        },
    )
    folders = []
    for lang, ref in (("cym", base), ("uzn", base), ("qab", None)):
        folders.append(f"pppl/tiny-xlmr.{lang}.none.none--00000000000{len(folders) + 5}")
        spec = {"model": "tiny-xlmr", "language": lang, "model_ref": ref}
        result = {
            "status": "done",
            "stage": "pppl",
            "run": folders[-1][-12:],
            "spec": spec,
            "metrics": {"pppl": 9.0},
        }
        atomic_write_json(project.runs / folders[-1] / "result.json", result)
    seen = load_records(folders).set_index("language")["seen"]
    assert seen.to_dict() == {"cym": True, "uzn": False, "qab": True}  # qab: no base run, the registry


def test_a_damaged_result_is_redone_not_skipped(project) -> None:
    project.add_profile("t", tiny_profile())
    grid = Grid("t")
    spec = grid.preprocess("qab", "glotcc")
    path = project.runs / spec.folder() / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"status": "do', encoding="utf-8")  # cut short
    assert not is_done(spec)
    atomic_write_json(path, make_result(spec, {"n_train": 1}, "now", 1.0))
    assert is_done(spec)


def test_finish_refuses_a_metric_that_is_not_finite(project) -> None:
    project.add_profile("t", tiny_profile())
    spec = Grid("t").preprocess("qab", "glotcc")
    out = project.runs / "tmp-run"
    out.mkdir(parents=True)
    ctx = RunContext(spec=spec, profile="t", out_dir=out, interactive=False)
    with pytest.raises(ValueError, match=r"metric `loss` is nan: the run is not recorded"):
        ctx.finish({"loss": float("nan")})
    assert not (out / "result.json").exists()


def test_a_report_is_redone_when_an_input_it_read_changes(project) -> None:
    project.add_profile("t", tiny_profile())
    report = Grid("t").report("tables")
    first = report.inputs[0]
    out = project.runs / report.folder()
    out.mkdir(parents=True)
    RunContext(spec=report, profile="t", out_dir=out, interactive=False).finish({"outputs": 0})
    assert is_done(report)  # nothing to read, nothing changed
    atomic_write_json(project.runs / first / "result.json", {**GOOD, "run": first.rpartition("--")[2]})
    assert not is_done(report)  # an input appeared
    RunContext(spec=report, profile="t", out_dir=out, interactive=False).finish({"outputs": 0})
    assert is_done(report)
    atomic_write_json(
        project.runs / first / "result.json", {**GOOD, "run": first.rpartition("--")[2], "x": 1}
    )
    assert not is_done(report)  # an input was redone (`--force`)
    (project.runs / first / "result.json").write_text("[]", encoding="utf-8")
    assert not is_done(report)  # an input was damaged: what the report showed is gone


def test_a_report_changes_figures_only_when_it_is_published(tmp_path) -> None:
    from lrl_utils.report.outputs import ReportRun

    figures, run = tmp_path / "figures", tmp_path / "run"
    figures.mkdir()
    run.mkdir()
    (figures / "table_x.md").write_text("the last finished report's\n", encoding="utf-8")
    (figures / "fig_old.png").write_bytes(b"stale")
    ctx = SimpleNamespace(out_dir=run, interactive=False)
    report = ReportRun(ctx=ctx, records=pd.DataFrame(), missing=[])
    report.frame(pd.DataFrame({"a": [1]}), "table_x", "caption", runs=[])
    report.discard("fig_old")
    assert (figures / "table_x.md").read_text(encoding="utf-8") == "the last finished report's\n"
    assert (figures / "fig_old.png").exists()  # a report failing now leaves figures/ as it was
    report_copies = ReportRun.copies
    try:
        ReportRun.copies = property(lambda self: [figures])
        report.publish()
    finally:
        ReportRun.copies = report_copies
    assert "caption" in (figures / "table_x.md").read_text(encoding="utf-8")
    assert not (figures / "fig_old.png").exists()
    assert {p.name for p in report.written if p.parent == figures} >= {"table_x.md", "table_x.csv"}


def test_a_saved_adapter_names_its_tiny_base_model_wherever_the_project_is(project) -> None:
    from conftest import save_tiny_base, toy_corpus

    from lrl_utils.adapters.methods import add_language_adapter, load_lm_model, save_language_adapter

    base = save_tiny_base(
        "xlm-roberta", project.runs / "base_model" / "tiny--abc" / "model", toy_corpus(60, 0)
    )
    model, _ = load_lm_model(str(base), "mlm")
    add_language_adapter(model, "seq_bn_inv", seed=1)
    out = save_language_adapter(model, project.runs / "adapt" / "x" / "adapter")
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["model_name"] == "base_model/tiny--abc/model"  # not the absolute path of this checkout
    again, _ = load_lm_model(str(base), "mlm")
    again.load_adapter(str(out))  # the library still loads it
