"""The set-up files agree with each other: pyproject, constraints, environment.yml, README, CI."""

from __future__ import annotations

import re

import tomllib
import yaml
from conftest import REPO


def test_environment_yml_matches_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    constraint = (REPO / "constraints.txt").read_text().strip()
    expected = {constraint if d.startswith("torch") else d for d in deps}
    assert expected <= set(pip), f"missing in environment.yml: {expected - set(pip)}"
    extra = set(pip) - expected - {"-e ."}
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert extra == set(dev)
    torch_range = next(d for d in deps if d.startswith("torch"))
    assert constraint == "torch==2.13.0" and ">=2.3,<2.14" in torch_range


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(
        r"^\s*(\./\S+(?: \S+)*)\s*$", readme.split("## Set-up")[1].split("##")[0], flags=re.M
    )
    assert commands[:2] == ["./run_all.sh", "./tests/run.sh"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "\n./tests/run.sh\n" in ci and "ruff check" in ci and "ruff format --check" in ci


def test_notebooks_are_jupytext_with_parameters_cell():
    import jupytext

    for path in sorted((REPO / "notebooks").glob("*.py")):
        nb = jupytext.read(path)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path
        assert 'spec_json = ""' in tagged[0].source and 'out_dir = ""' in tagged[0].source
        assert "start(" in nb.cells[nb.cells.index(tagged[0]) + 1].source
    assert not list((REPO / "notebooks").glob("*.ipynb")) or (REPO / ".gitignore").read_text().count("ipynb")


def test_each_stage_notebook_calls_one_stage_run():
    """A stage notebook is thin: `ctx = start(stage, globals())`, then exactly one `<module>.run(ctx)` of a
    module imported from `lrl_utils`; no other module's `run` and no `ctx.finish` (the stage's run finishes)."""
    import ast

    import jupytext

    for path in sorted((REPO / "notebooks").glob("*.py")):
        tree = ast.parse(jupytext.writes(jupytext.read(path), fmt="py:percent"))
        from_lrl = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lrl_utils")
            for alias in node.names
        }
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("run", "finish")
        ]
        runs = [c for c in calls if c.func.attr == "run"]
        assert len(runs) == 1, f"{path.name}: {len(runs)} `.run(` calls"
        (call,) = runs
        assert isinstance(call.func.value, ast.Name) and call.func.value.id in from_lrl, path.name
        assert [ast.unparse(a) for a in call.args] == ["ctx"], path.name
        assert not [c for c in calls if c.func.attr == "finish"], f"{path.name} calls finish itself"
        assert "ctx = start(" in path.read_text(), path.name
