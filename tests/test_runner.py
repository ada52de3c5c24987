"""The runner: skip/force, atomic result writes, failure isolation, killed runs — with fast fake notebooks.

The fake notebooks call `pipeline.start` and `finish` like the real ones but compute nothing; an
environment variable makes the run whose folder contains its value fail (or sleep); a failure raises
`DataSourceError($LRL_TEST_ERROR)` (default "boom").
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_profile

from lrl_utils.orchestration.runner import NOTEBOOKS, main
from lrl_utils.records import results

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
from lrl_utils.orchestration.notebook import start
run = start("{stage}", globals())
if os.environ.get("LRL_TEST_SLEEP", "#") in run.spec.folder():
    time.sleep(60)
if os.environ.get("LRL_TEST_FAIL", "#") in run.spec.folder():
    from lrl_utils.data.sources import DataSourceError
    raise DataSourceError(os.environ.get("LRL_TEST_ERROR", "boom"))
run.finish({{"value": 1.0}})
"""


@pytest.fixture
def fake(project):
    nb = project.root / "notebooks"
    nb.mkdir()
    for stage, name in NOTEBOOKS.items():
        for file in name.values() if isinstance(name, dict) else [name]:
            (nb / file).write_text(FAKE.format(stage=stage), encoding="utf-8")
    data = {
        "mode": "local",
        "conceptnet": "x.csv",
        "glotcc": "g",
        "flores": "f",
        "sib200": "s",
        "samples": True,
    }
    project.add_profile("t", tiny_profile(data=data))
    root = project.root  # files the runner's data check finds in place (the fake notebooks never read them)
    for code in ("qab", "qac"):
        (root / "g").mkdir(exist_ok=True)
        docs = "".join(f"Document {i}.\n" for i in range(40))  # enough for train and val documents
        (root / "g" / f"{code}.txt").write_text(docs, encoding="utf-8")
        (root / "f" / code).mkdir(parents=True, exist_ok=True)
        (root / "f" / code / "devtest.tsv").write_text("id\tsentence\n1\tA sentence.\n", encoding="utf-8")
        (root / "s" / code).mkdir(parents=True, exist_ok=True)
        for stem in ("train", "dev", "test"):
            row = "index_id\tcategory\ttext\n1\ttravel\tA trip.\n"
            (root / "s" / code / f"{stem}.tsv").write_text(row, encoding="utf-8")
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
    monkeypatch.setenv("LRL_TEST_ERROR", "x.tsv:12: 3 fields, expected 2 (`data.sentiment`)\nsecond line")
    assert main(["--profile", "t"]) == 1
    out = capsys.readouterr().out
    # the failed adapter blocks its pppl and tc runs; everything else (base-model runs, reports) finishes
    assert "1 failed, 2 blocked" in out
    failed = list((fake.runs / "_failed" / "adapt").glob("tiny-xlmr.qac*"))
    assert len(failed) == 1 and not (failed[0] / "result.json").exists()
    # the summary says why, in one line, next to the executed notebook
    error = "DataSourceError: x.tsv:12: 3 fields, expected 2 (`data.sentiment`)"
    notebook = fake.runs / "_failed" / "adapt" / failed[0].name / "notebook.ipynb"
    assert f"  failed  adapt/{failed[0].name}: {error} ({notebook})\n" in out
    assert "second line" not in out
    assert not list((fake.runs / "adapt").glob("tiny-xlmr.qac*"))
    assert len(folders(fake.runs)) == 7
    summary = json.loads((fake.runs / "last_summary.json").read_text())
    assert summary["counts"]["failed"] == 1 and summary["errors"] == {f"adapt/{failed[0].name}": error}
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
        [sys.executable, "-m", "lrl_utils.orchestration.runner", "--profile", "t", "--only", "preprocess"],
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
    from lrl_utils.orchestration.grid import Grid
    from lrl_utils.orchestration.status import status_lines

    status = status_lines(Grid("t").expand())  # a killed runner's folder is no run in progress
    assert next(line for line in status if line.startswith("preprocess")).split()[1:3] == ["1", "0"], status
    assert main(["--profile", "t", "--only", "preprocess"]) == 0  # cleans the stale folder and finishes
    assert not list(fake.runs.glob("preprocess/.tmp-*"))
    assert any(f.startswith("preprocess/qac") for f in folders(fake.runs))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_runs_in_flight_and_says_so_in_one_line(fake, stop):
    """Ctrl-C, and SIGTERM (`kill`, a session's end) the same way."""
    env = {**os.environ, "LRL_TEST_SLEEP": "preprocess/qac"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrl_utils.orchestration.runner", "--profile", "t", "--only", "preprocess"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 90
    while time.time() < deadline and not list(fake.runs.glob("preprocess/.tmp-qac*/notebook.ipynb")):
        time.sleep(0.5)
    time.sleep(2)  # the notebook sleeps for 60 s
    started = time.time()
    proc.send_signal(stop)  # to the runner alone, as a terminal's Ctrl-C or a `kill` reaches it
    try:
        _, err = proc.communicate(timeout=40)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert time.time() - started < 40 and proc.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        "interrupted: the runs in flight stopped"
    )
    # the stopped run is no failure: nothing in _failed/, no temporary folder, not "failed" in --status
    assert not list(fake.runs.glob("_failed/preprocess/*")) and not list(fake.runs.glob("preprocess/.tmp-*"))
    from lrl_utils.orchestration.grid import Grid
    from lrl_utils.orchestration.status import status_lines

    assert not any(line.startswith("failed") for line in status_lines(Grid("t").expand()))
    assert main(["--profile", "t", "--only", "preprocess"]) == 0  # then everything finishes
    assert any(f.startswith("preprocess/qac") for f in folders(fake.runs))


def test_a_listing_into_a_closed_pipe_ends_quietly():
    """`./run_all.sh --dry-run | head`: output (here 1 MB, more than a pipe holds) meets a pipe its reader closed;
    the command ends without a traceback, as the runner's `__main__` does through `run_command`."""
    script = (
        "import sys; from lrl_utils.orchestration.cli import run_command; "
        "sys.exit(run_command(lambda: print('x' * 1024 * 1024) or 0))"
    )
    cmd = f'{sys.executable} -c "{script}" | head -c 1'
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "x" and proc.stderr == "" and proc.returncode == 141
    runner = Path(__file__).resolve().parent.parent / "lrl_utils" / "orchestration" / "runner.py"
    assert runner.read_text().rstrip().endswith("sys.exit(run_command(main))")


def test_a_second_runner_on_the_same_runs_stops_at_once(fake, capsys):
    from lrl_utils.records.run_folders import runs_lock

    with runs_lock(fake.runs):
        assert main(["--profile", "t", "--only", "preprocess"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: runs: another runner (pid ") and "is running on these runs" in err
    assert not folders(fake.runs)  # it ran nothing
    assert main(["--profile", "t", "--only", "preprocess"]) == 0  # the lock is free again


def test_a_finished_folder_moved_aside_by_a_killed_force_rerun_comes_back(fake):
    assert main(["--profile", "t", "--only", "preprocess"]) == 0
    done = sorted(folders(fake.runs))
    stage, name = done[0].split("/")
    os.replace(fake.runs / stage / name, fake.runs / stage / f".old-{name}-999999999")  # killed mid-publish
    assert main(["--profile", "t", "--only", "preprocess"]) == 0
    assert sorted(folders(fake.runs)) == done and not list(fake.runs.glob("*/.old-*"))


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


def test_a_profile_path_never_leads_a_run_folder_out_of_runs(fake, capsys):
    """The way a run folder once landed outside runs/: a profile "name" that is a path to the same file made the
    report spec's slug `../../params/profiles/t.tables`, i.e. `runs/report/../../params/profiles/...`."""
    before = {p for p in fake.root.rglob("*")}
    assert main(["--profile", "../../params/profiles/t", "--only", "report"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: profile name '../../params/profiles/t': a profile is named, not located")
    assert "\n" not in err and "available: " in err and " t" in err
    assert {p for p in fake.root.rglob("*")} == before  # nothing written, in runs/ or anywhere else


def test_failure_line(tmp_path):
    from lrl_utils.records.results import failure_line

    run = tmp_path / "run"
    run.mkdir()
    assert failure_line(run) == "no error recorded (see the log)"
    (run / "log.txt").write_text(
        "Traceback ...\n  File x\n\x1b[31mOSError: [Errno 28] No space left\x1b[0m\n\n"
    )
    assert failure_line(run) == "OSError: [Errno 28] No space left"  # papermill could not run the notebook
    cells = [
        {"cell_type": "markdown", "source": "An Exception was encountered", "metadata": {}},
        {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": "ok"}]},
        {"cell_type": "code", "outputs": [{"output_type": "error", "ename": "ParamError", "evalue": "\n p.yaml: `x`\nmore",
                                            "traceback": ["\x1b[31m---\x1b[0m", "ParamError: p.yaml: `x`"]}]},
    ]  # fmt: skip
    (run / "notebook.ipynb").write_text(json.dumps({"cells": cells}))
    assert failure_line(run) == "ParamError: p.yaml: `x`"
    (run / "notebook.ipynb").write_text("{truncated")
    assert failure_line(run) == "OSError: [Errno 28] No space left"
    assert len(failure_line(run, limit=20)) == 20


def test_every_notebooks_default_parameters_are_a_run_of_the_demo(project):
    """Opened by hand, a notebook runs with its `parameters` cell on the demo profile: those must name a run of
    the demo's grid, whose upstream runs the runner can make (before: `language = "qac"`, not a demo language)."""
    import jupytext

    from lrl_utils.orchestration.grid import Grid
    from lrl_utils.records.context import KEY_PARAMS

    project.use_real_notebooks()
    folders_of_demo = {s.folder() for s in Grid("demo").expand()}
    for stage, name in NOTEBOOKS.items():
        for file in name.values() if isinstance(name, dict) else [name]:
            nb = jupytext.read(project.root / "notebooks" / file)
            (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
            values: dict = {}
            exec(cell.source, {}, values)
            assert values["profile"] == "demo", file
            spec = getattr(Grid("demo"), stage)(**{k: values[k] for k in KEY_PARAMS[stage]})
            assert spec.folder() in folders_of_demo, (file, spec.folder())


def test_a_notebook_opened_by_hand_on_a_run_outside_the_profile_says_so_in_one_line(fake):
    """Interactive parameters whose upstream runs the profile lacks: one clear error, not the runner's
    `CalledProcessError` traceback after it refused the `--target`."""
    from lrl_utils.config.params import ParamError
    from lrl_utils.orchestration.notebook import start

    params = {
        "profile": "t",
        "model": "tiny-xlmr",
        "language": "qag",
        "source": "glotcc",
        "adapter": "seq_bn",
    }
    with pytest.raises(
        ParamError, match=r"needs preprocess/qag\.glotcc--\w+, which is not a run of profile 't'"
    ):
        start("adapt", params)
    assert not list(fake.runs.glob("_interactive/*/*"))
