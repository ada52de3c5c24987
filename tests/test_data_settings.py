"""The profile's data settings reach the loaders: `data.quoting`, `data.samples` and `data.max_bad_fraction`
flow profile -> Grid -> run spec -> notebook (04_pppl, 05_finetune) or LLM baseline -> loader; specs that do
not set them keep the folders (hashes) they had before the settings existed."""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import MagicMock

import jupytext
import pandas as pd
import pytest
from conftest import REPO, tiny_profile

from lrl_utils.config.params import ParamError
from lrl_utils.config.specs import FinetuneSpec, LLMSpec, PPPLSpec
from lrl_utils.data import flores_sib, sentiment, wikiann
from lrl_utils.data.sources import DataSourceError
from lrl_utils.llm import baselines as llm_baselines
from lrl_utils.orchestration.grid import Grid

NEW_KEYS = ("quoting", "samples", "max_bad_fraction")
TASKS = ("tc", "sa", "ner")


def stated_profile(**data) -> dict:
    return tiny_profile(
        data={"mode": "demo", **data},
        tasks=list(TASKS),
        finetune={t: {"epochs": 1, "batch_size": 8, "max_length": 32} for t in TASKS},
        llm_baselines={"llms": ["tiny-llama"], "tasks": list(TASKS)},
    )


def test_data_settings_flow_into_the_specs(project) -> None:
    quoting = {"flores": "csv", "sib200": "raw", "sentiment": "csv"}
    project.add_profile("stated", stated_profile(quoting=quoting, samples=True, max_bad_fraction=0.05))
    g = Grid("stated")
    pppl = g.pppl("tiny-xlmr", "qac")
    assert (pppl.quoting, pppl.samples) == ("csv", True)
    for spec in (
        *(g.finetune("tiny-xlmr", "qac", t) for t in TASKS),
        *(g.llm("tiny-llama", "qac", t) for t in TASKS),
    ):
        expected = {"tc": "raw", "sa": "csv", "ner": None}[spec.task]  # WikiANN CoNLL has no quoting
        assert (spec.quoting, spec.max_bad_fraction) == (expected, 0.05), spec
    project.add_profile("plain", stated_profile())
    plain = Grid("plain")
    assert (plain.pppl("tiny-xlmr", "qac").quoting, plain.pppl("tiny-xlmr", "qac").samples) == (None, False)
    assert (
        plain.finetune("tiny-xlmr", "qac", "sa").max_bad_fraction == 0.001
    )  # data.max_bad_fraction's default


SPLIT_KEYS = ("missing_splits", "split_seed")  # added with the missing-split rule


def _digest_without_the_new_keys(spec) -> str:
    """The hash the spec had before the new fields existed (specs.py's canonical JSON without them)."""

    def drop(value):  # the task settings nested in `train` gained missing_splits / split_seed too
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k not in (*NEW_KEYS, *SPLIT_KEYS)}
        return value

    data = drop(spec.to_dict())
    text = json.dumps({"stage": spec.stage, **data}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def test_specs_without_the_settings_keep_their_hash() -> None:
    g = Grid("demo")
    for spec in (
        g.pppl("tiny-xlmr", "qac"),
        g.finetune("tiny-xlmr", "qac", "sa"),
        g.llm("tiny-llama", "qab", "sa"),
    ):
        assert spec.digest() == _digest_without_the_new_keys(spec)
        assert not set(NEW_KEYS) & set(json.loads(spec.canonical()))
        assert set(NEW_KEYS) & set(spec.to_dict())  # result.json still records them
        assert type(spec).from_json(spec.canonical()) == spec
        changed = replace(spec, quoting="csv")
        assert changed.digest() != spec.digest() and json.loads(changed.canonical())["quoting"] == "csv"
        assert type(spec).from_json(changed.canonical()) == changed
    assert replace(g.pppl("tiny-xlmr", "qac"), samples=True).digest() != g.pppl("tiny-xlmr", "qac").digest()
    tighter = replace(g.finetune("tiny-xlmr", "qac", "sa"), max_bad_fraction=0.0)
    assert tighter.digest() != g.finetune("tiny-xlmr", "qac", "sa").digest()


def test_quoting_keys_and_values_are_checked(project) -> None:
    project.add_profile("ner-quoting", stated_profile(quoting={"wikiann": "raw"}))
    with pytest.raises(
        ParamError, match=r"ner-quoting\.yaml: `data\.quoting\.wikiann`: unknown dataset with TSV"
    ):
        Grid("ner-quoting")
    project.add_profile("bad-value", stated_profile(quoting={"flores": "quoted"}))
    with pytest.raises(ParamError, match=r"bad-value\.yaml: .*data\.quoting\.flores"):
        Grid("bad-value")


# ----------------------------------------------------------------------------------------------------------
# The notebooks pass the spec's settings to the loaders: their loading statements, executed as written


def run_loading_statements(notebook: str, loader: str, **names) -> dict:
    """Execute, in a namespace of `names`, the statements of the notebook cell that calls `loader`, up to and
    including the first that calls it; return the namespace."""
    cell = next(c for c in jupytext.read(REPO / "notebooks" / notebook).cells if loader in c.source)
    namespace = dict(names)
    for statement in ast.parse(cell.source).body:
        exec(compile(ast.Module([statement], []), notebook, "exec"), namespace)
        if loader in ast.unparse(statement):
            return namespace
    raise AssertionError(f"{notebook}: no statement calls {loader}")


def fake_run(spec) -> SimpleNamespace:
    return SimpleNamespace(spec=spec, data=Path, language_model=lambda: ("model", None))


QUOTED = '"""Win,"" he said."'  # a raw sentence that also parses as a CSV-quoted field


def test_pppl_notebook_passes_samples_and_quoting(tmp_path: Path) -> None:
    tsv = tmp_path / "devtest.tsv"
    tsv.write_text(f"id\tsentence\n1\t{QUOTED}\n2\tPlain.\n", encoding="utf-8")
    spec = PPPLSpec(model="m", model_ref="m", language="qaa", flores_code="qaa_Latn", devtest=str(tsv))
    mocks = {"language_adapters": MagicMock(), "evaluation": MagicMock(), "flores_sib": flores_sib}
    mocks["language_adapters"].load_mlm_model.return_value = (MagicMock(), MagicMock())

    def devtest(**changes) -> list[str]:
        s = replace(spec, **changes)
        return run_loading_statements("04_pppl.py", "load_flores_devtest", run=fake_run(s), spec=s, **mocks)[
            "devtest"
        ]["sentence"]

    with pytest.raises(
        DataSourceError, match="2 devtest sentences, fewer than the release's 1012.*data.samples"
    ):
        devtest()
    assert devtest(samples=True) == [QUOTED, "Plain."]
    assert devtest(samples=True, quoting="csv") == ['"Win," he said.', "Plain."]  # a quote layer off


def _sentiment_with_one_bad_row(folder: Path) -> None:
    folder.mkdir()
    rows = [f"{QUOTED} {i}\t{i % 2}" for i in range(9)] + ["a row\twith\tthree fields"]
    for stem in ("train", "dev", "test"):
        (folder / f"{stem}.tsv").write_text("text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_finetune_notebook_passes_max_bad_fraction_and_quoting(tmp_path: Path) -> None:
    _sentiment_with_one_bad_row(tmp_path / "sa")
    conll = "".join(f"w{i}\tO\n\n" for i in range(9)) + "w\tX-BAD\n"
    (tmp_path / "ner").mkdir()
    for stem in ("train", "dev", "test"):
        (tmp_path / "ner" / f"{stem}.conll").write_text(conll, encoding="utf-8")
    sib = tmp_path / "sib"
    sib.mkdir()
    frame = pd.DataFrame({"index_id": [1, 2], "category": ["health", "travel"], "text": [QUOTED, "Plain."]})
    for stem in ("train", "dev", "test"):
        frame.to_csv(
            sib / f"{stem}.tsv", sep="\t", index=False
        )  # pandas-quoted, outside the repository layout

    def data(task: str, folder: str, config: str, **changes):
        s = FinetuneSpec(
            model="m",
            model_ref="m",
            language="qaa",
            task=task,
            flores_code=config,
            dataset=str(tmp_path / folder),
        )
        s = replace(s, **changes)
        names = {
            "run": fake_run(s),
            "spec": s,
            "flores_sib": flores_sib,
            "sentiment": sentiment,
            "wikiann": wikiann,
        }
        return run_loading_statements("05_finetune.py", "load_sentiment", **names)["data"]

    for task, folder, config in (("sa", "sa", "danish"), ("ner", "ner", "qq")):
        with pytest.raises(DataSourceError, match=r"1 of 10 \w+ malformed .*`data\.max_bad_fraction` 0\.001"):
            data(task, folder, config)  # the default of data.max_bad_fraction
        assert data(task, folder, config, max_bad_fraction=0.2)["train"].num_rows == 9
    assert data("sa", "sa", "danish", max_bad_fraction=0.2)["test"]["text"][0] == f"{QUOTED} 0"
    with pytest.raises(DataSourceError, match=r"sa/train\.tsv:2: not valid CSV quoting"):  # wrongly stated
        data("sa", "sa", "danish", max_bad_fraction=0.2, quoting="csv")
    assert data("tc", "sib", "qaa_Latn", quoting="csv")["train"]["text"] == [QUOTED, "Plain."]
    assert data("tc", "sib", "qaa_Latn")["train"]["text"] == ['"' + QUOTED.replace('"', '""') + '"', "Plain."]


def test_llm_baseline_passes_max_bad_fraction_and_quoting(tmp_path: Path, monkeypatch) -> None:
    _sentiment_with_one_bad_row(tmp_path / "sa")
    with pytest.raises(DataSourceError, match=r"`data\.max_bad_fraction` 0\.001"):
        llm_baselines.load_items("sa", tmp_path / "sa", "danish", "qaa", max_bad_fraction=0.001)
    test, _, _ = llm_baselines.load_items("sa", tmp_path / "sa", "danish", "qaa", max_bad_fraction=0.2)
    assert [item["text"] for item in test][:2] == [f"{QUOTED} 0", f"{QUOTED} 1"]
    seen = {}

    def load_items(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("loaded")

    monkeypatch.setattr(llm_baselines, "load_items", load_items)
    spec = LLMSpec(
        llm="tiny-llama", backend="transformers", model_ref="m", language="qaa", task="sa", flores_code="danish",
        dataset=str(tmp_path / "sa"), quoting="csv", max_bad_fraction=0.2,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="loaded"):
        llm_baselines.run_baseline(spec, "m", tmp_path / "sa")
    assert {k: seen[k] for k in ("quoting", "max_bad_fraction")} == {
        "quoting": "csv",
        "max_bad_fraction": 0.2,
    }
