"""Warm kernels: notebooks run in kernels forked from a server that has already imported the libraries."""

from __future__ import annotations

import os
import sys

import nbformat
import papermill
import pytest

from lrl_utils.orchestration import kernels
from lrl_utils.orchestration.runner import KERNEL, ensure_kernel

PROBE = """import os, sys
preloaded = "torch" in sys.modules
print("preloaded", preloaded, "mark", os.environ.get("LRL_TEST_MARK"), "cwd", os.getcwd())
import torch
print("threads", torch.get_num_threads())
"""


def _notebook(*cells: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python (lrl-adapt)", "language": "python"}
    return nb


def _stdout(path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def _execute(nb, out, cwd, **kw):
    papermill.execute_notebook(
        nb, str(out), kernel_name=KERNEL, cwd=str(cwd), progress_bar=False,
        kernel_manager_class=kernels.kernel_manager_class(), **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ensure_kernel()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "LRL_TEST_MARK": "from-server", "OMP_NUM_THREADS": "1"}
    with kernels.kernel_server(env, log, wait=120) as server_env:
        assert os.path.exists(server_env[kernels.SOCKET_ENV]), log.read_text()
        yield server_env


def test_kernel_is_forked_from_the_warm_server_with_the_run_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv(kernels.SOCKET_ENV, server[kernels.SOCKET_ENV])
    monkeypatch.setenv("LRL_TEST_MARK", "from-run")  # the run's environment wins over the server's
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for i in range(2):  # a fresh kernel per notebook
        _execute(_notebook(PROBE), tmp_path / f"out{i}.ipynb", tmp_path)
        text = _stdout(tmp_path / f"out{i}.ipynb")
        assert "preloaded True" in text
        assert "mark from-run" in text and f"cwd {tmp_path}" in text and "threads 1" in text


def test_state_does_not_leak_between_kernels(server, tmp_path, monkeypatch):
    monkeypatch.setenv(kernels.SOCKET_ENV, server[kernels.SOCKET_ENV])
    _execute(_notebook("import sys\nsys.leak = 1"), tmp_path / "a.ipynb", tmp_path)
    _execute(_notebook("import sys\nprint('leak', hasattr(sys, 'leak'))"), tmp_path / "b.ipynb", tmp_path)
    assert "leak False" in _stdout(tmp_path / "b.ipynb")


def test_failing_cell_fails_the_notebook_and_the_server_survives(server, tmp_path, monkeypatch):
    monkeypatch.setenv(kernels.SOCKET_ENV, server[kernels.SOCKET_ENV])
    with pytest.raises(papermill.PapermillExecutionError, match="boom"):
        _execute(_notebook("raise RuntimeError('boom')"), tmp_path / "fail.ipynb", tmp_path)
    _execute(_notebook(PROBE), tmp_path / "after.ipynb", tmp_path)
    assert "preloaded True" in _stdout(tmp_path / "after.ipynb")


def test_without_a_server_the_kernel_starts_the_ordinary_way(tmp_path, monkeypatch):
    ensure_kernel()
    monkeypatch.setenv(kernels.SOCKET_ENV, str(tmp_path / "no-such.sock"))
    _execute(_notebook(PROBE), tmp_path / "cold.ipynb", tmp_path)
    assert "preloaded False" in _stdout(tmp_path / "cold.ipynb")


def test_server_exits_with_its_parent(tmp_path):
    import subprocess
    import time

    path = str(tmp_path / "s.sock")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from lrl_utils.orchestration import kernels; kernels.serve({path!r}, preload=())",
        ],
        stdin=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(path)
    proc.stdin.close()  # the runner is gone
    assert proc.wait(timeout=10) == 0
    assert not os.path.exists(path)


def test_run_module_forks_a_script_with_its_output_and_exit_code(server, tmp_path):
    good, bad, log = tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "log.txt"
    good.write_text('{"a": 1}', encoding="utf-8")
    bad.write_text("{", encoding="utf-8")
    with open(log, "w", encoding="utf-8") as f:
        assert kernels.run_module(server, "json.tool", [str(good)], str(tmp_path), f.fileno()) == 0
        assert kernels.run_module(server, "json.tool", [str(bad)], str(tmp_path), f.fileno()) != 0
    text = log.read_text(encoding="utf-8")
    assert '"a": 1' in text and "Expecting" in text
    no_server = {**server, kernels.SOCKET_ENV: str(tmp_path / "none.sock")}
    assert kernels.run_module(no_server, "json.tool", [str(good)], str(tmp_path), 1) is None
