"""The machine a result was computed on (`records/machine.py`) and the line `findings.md` writes from it
(`report/machines.py`): another CPU can round differently, and at the demo's scale train other models."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lrl_utils.records import machine
from lrl_utils.records.results import RESULT_FILE
from lrl_utils.report.machines import machine_line, machines


def _fingerprint_in_child(**env: str) -> dict:
    code = (
        "import json, torch; from lrl_utils.records import machine; print(json.dumps(machine.machine_info()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cpu_model_reads_cpuinfo_and_falls_back(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  9B14 96-Core\n")
    assert machine.cpu_model(info) == "AMD EPYC 9B14 96-Core"
    assert machine.cpu_model(tmp_path / "missing")  # platform's answer, never empty


def test_the_fingerprint_repeats_across_processes_and_thread_counts():
    """Same machine, same kernels: the same 12 hex digits, whatever the hash seed or thread count."""
    one = _fingerprint_in_child(PYTHONHASHSEED="1", OMP_NUM_THREADS="1")
    two = _fingerprint_in_child(PYTHONHASHSEED="2", OMP_NUM_THREADS="2")
    assert one == two
    assert len(one["arithmetic"]) == 12 and int(one["arithmetic"], 16) >= 0


def test_the_fingerprint_changes_with_the_cpu_kernels():
    """torch's CPU kernels compiled for another instruction set round differently; the fingerprint says so
    (here forced with `ATEN_CPU_CAPABILITY`, as another CPU would pick them)."""
    native = _fingerprint_in_child()
    if native["torch_cpu_capability"] == "DEFAULT":
        pytest.skip("this CPU already runs torch's DEFAULT kernels: no other set to compare with")
    generic = _fingerprint_in_child(ATEN_CPU_CAPABILITY="default")
    assert generic["torch_cpu_capability"] == "DEFAULT"
    assert generic["arithmetic"] != native["arithmetic"]


def test_a_run_result_names_its_machine():
    import torch  # noqa: F401  (provenance reports the kernels only where torch is loaded)

    from lrl_utils.records.results import provenance

    info = provenance()
    assert info["cpu"] == machine.cpu_model()
    assert info["arithmetic"] == machine.fingerprint()
    assert info["torch_cpu_capability"]


def _run(root, name, provenance, **spec):
    folder = root / name
    folder.mkdir(parents=True)
    result = {"stage": name.split("/")[0], "spec": spec, "metrics": {}, "provenance": provenance}
    (folder / RESULT_FILE).write_text(json.dumps(result), encoding="utf-8")
    return name


AMD = {"cpu": "AMD EPYC", "torch_cpu_capability": "AVX512", "arithmetic": "ee1698aa7748", "device": "cpu"}
INTEL = {"cpu": "Intel Xeon", "torch_cpu_capability": "AVX512", "arithmetic": "0123456789ab", "device": "cpu"}


def test_findings_name_the_machines_of_the_runs_and_of_what_they_were_built_on(tmp_path, monkeypatch):
    monkeypatch.setenv("LRL_RUNS", str(tmp_path))
    base = _run(tmp_path, "base_model/m", INTEL)
    adapter = _run(tmp_path, "adapt/a", AMD, model_ref=base)
    runs = [_run(tmp_path, f"finetune/f{i}", AMD, model_ref=base, adapter_run=adapter) for i in range(3)]
    counts = machines(runs)
    assert counts == {
        "AMD EPYC, torch kernels AVX512, arithmetic `ee1698aa7748`": 4,
        "Intel Xeon, torch kernels AVX512, arithmetic `0123456789ab`": 1,
    }
    line = machine_line(runs)
    assert line.startswith("Computed on 2 machines: AMD EPYC") and "(1 run)" in line

    one = [_run(tmp_path, "finetune/g", AMD, model_ref=_run(tmp_path, "base_model/n", AMD))]
    assert machine_line(one).startswith("Computed on one machine: AMD EPYC, torch kernels AVX512")


def test_runs_that_did_not_record_their_machine_or_ran_on_a_gpu_say_so(tmp_path, monkeypatch):
    monkeypatch.setenv("LRL_RUNS", str(tmp_path))
    old = _run(tmp_path, "finetune/old", {"python": "3.11"})
    gpu = _run(tmp_path, "finetune/gpu", {**AMD, "device": "NVIDIA H100 80GB HBM3"})
    counts = machines([old, gpu, "finetune/missing"])
    assert counts == {
        "a machine not recorded (runs made before their results named it)": 1,
        "NVIDIA H100 80GB HBM3 (GPU)": 1,
    }
    assert machine_line([]) == ""


def test_findings_md_puts_the_machine_line_under_its_introduction():
    import pandas as pd

    from lrl_utils.report.findings import COLUMNS, markdown

    checks = pd.DataFrame([["F2 x", "c", "claim", "1 vs 0", True]], columns=COLUMNS)
    text = markdown(checks, machine="Computed on one machine: AMD EPYC (3 runs).").splitlines()
    assert text[4] == "Computed on one machine: AMD EPYC (3 runs)." and text[6].startswith("## F2 x: PASS")
    assert not any(line.startswith("Computed on") for line in markdown(checks).splitlines())
