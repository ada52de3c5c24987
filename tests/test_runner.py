"""The runner: skip/force, atomic result writes, failure isolation, killed runs — with fast fake notebooks.

The fake notebooks call `pipeline.start` and `finish` like the real ones but compute nothing; an
environment variable makes the run whose folder contains its value fail (or sleep).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_profile

from lrl_utils import results
from lrl_utils.runner import NOTEBOOKS, main

FAKE = """# %% tags=["parameters"]
profile = "t"
language = ""
source = ""
model = ""
adapter = ""
task = ""
seed = 0
kind = ""
spec_json = ""
out_dir = ""

# %%
import os, time
from lrl_utils import pipeline
run = pipeline.start("{stage}", globals())
if os.environ.get("LRL_TEST_SLEEP", "#") in run.spec.folder():
    time.sleep(60)
if os.environ.get("LRL_TEST_FAIL", "#") in run.spec.folder():
    raise RuntimeError("boom")
run.finish({{"value": 1.0}})
"""


@pytest.fixture
def fake(project):
    nb = project.root / "notebooks"
    nb.mkdir()
    for stage, name in NOTEBOOKS.items():
        for file in name.values() if isinstance(name, dict) else [name]:
            (nb / file).write_text(FAKE.format(stage=stage), encoding="utf-8")
    data = {"mode": "local", "conceptnet": "x.csv", "glotcc": "g", "flores": "f", "sib200": "s"}
    project.add_profile("t", tiny_profile(data=data))
    return project


def folders(runs: Path, name: str = "result.json") -> set[str]:
    return {
        str(p.parent.relative_to(runs)) for p in runs.glob(f"*/*/{name}") if not p.parent.name.startswith(".")
    }


def test_runs_once_then_skips_and_force_reruns(fake, capsys):
    assert main(["--profile", "t"]) == 0
    out = capsys.readouterr().out
    done = folders(fake.runs)
    # preprocess qac + qab (the base model's corpus), 1 base model, 1 adapt, 2 pppl, 2 tc, 2 reports
    assert len(done) == 10 and "summary: 10 done, 0 skipped, 0 failed, 0 blocked" in out
    for f in done:
        res = json.loads((fake.runs / f / "result.json").read_text())
        assert res["status"] == "done" and res["label"] == f and res["run"] == f.rsplit("--", 1)[1]
        assert {"spec", "metrics", "timings", "provenance"} <= set(res)
        assert "torch" in res["provenance"]["packages"]
        assert (fake.runs / f / "notebook.ipynb").exists() and (fake.runs / f / "log.txt").exists()
    stamp = {f: (fake.runs / f / "result.json").stat().st_mtime_ns for f in done}
    assert main(["--profile", "t"]) == 0
    assert "summary: 0 done, 10 skipped" in capsys.readouterr().out
    assert stamp == {f: (fake.runs / f / "result.json").stat().st_mtime_ns for f in done}
    assert main(["--profile", "t", "--only", "report", "--force"]) == 0
    assert "summary: 2 done, 0 skipped" in capsys.readouterr().out


def test_failure_is_isolated_and_never_replaces_a_result(fake, capsys, monkeypatch):
    monkeypatch.setenv("LRL_TEST_FAIL", "adapt/tiny-xlmr.qac")
    assert main(["--profile", "t"]) == 1
    out = capsys.readouterr().out
    # the failed adapter blocks its pppl and tc runs; everything else (base-model runs, reports) finishes
    assert "1 failed, 2 blocked" in out
    failed = list((fake.runs / "_failed" / "adapt").glob("tiny-xlmr.qac*"))
    assert len(failed) == 1 and not (failed[0] / "result.json").exists()
    assert f"failed  adapt/{failed[0].name}: " in out and "notebook.ipynb" in out
    assert not list((fake.runs / "adapt").glob("tiny-xlmr.qac*"))
    assert len(folders(fake.runs)) == 7
    summary = json.loads((fake.runs / "last_summary.json").read_text())
    assert summary["counts"]["failed"] == 1
    # the report knew two inputs were missing: once they exist, it is rebuilt
    monkeypatch.delenv("LRL_TEST_FAIL")
    assert main(["--profile", "t"]) == 0
    assert "summary: 5 done, 5 skipped" in capsys.readouterr().out  # adapt + pppl + tc + 2 reports
    # a forced re-run that fails keeps the finished run in place
    monkeypatch.setenv("LRL_TEST_FAIL", "adapt/tiny-xlmr.qac")
    (before,) = [f for f in folders(fake.runs) if f.startswith("adapt/")]
    stamp = (fake.runs / before / "result.json").read_bytes()
    assert main(["--profile", "t", "--only", "adapt", "--force"]) == 1
    assert (fake.runs / before / "result.json").read_bytes() == stamp


def test_only_stage_with_missing_inputs_is_blocked(fake, capsys):
    assert main(["--profile", "t", "--only", "adapt"]) == 1
    assert "0 done, 0 skipped, 0 failed, 1 blocked" in capsys.readouterr().out


def test_killed_run_leaves_no_result(fake):
    env = {**os.environ, "LRL_TEST_SLEEP": "preprocess/qac"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrl_utils.runner", "--profile", "t", "--only", "preprocess"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 90
    while time.time() < deadline and not (
        list(fake.runs.glob("preprocess/.tmp-qac*/notebook.ipynb")) and folders(fake.runs)
    ):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(fake.runs.glob("preprocess/.tmp-qac*")), "the sleeping run should have been in progress"
    assert not any(f.startswith("preprocess/qac") for f in folders(fake.runs))
    assert main(["--profile", "t", "--only", "preprocess"]) == 0  # cleans the stale folder and finishes
    assert not list(fake.runs.glob("preprocess/.tmp-*"))
    assert any(f.startswith("preprocess/qac") for f in folders(fake.runs))


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    results.atomic_write_json(target, {"a": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        results.atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
