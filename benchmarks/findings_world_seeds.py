"""Benchmark: do the demo's findings hold for other demo worlds? The demo profile on world seeds 0, 1 and 2.

    .venv/bin/python benchmarks/findings_world_seeds.py                    # world seeds 0 1 2, ~10 min each on 2 cores
    .venv/bin/python benchmarks/findings_world_seeds.py --seeds 1 --jobs 2 --out /tmp/f.json
    .venv/bin/python benchmarks/findings_world_seeds.py --set base_model.train.seed=43 --out /tmp/f.json

Each world seed gets a project of its own under `benchmarks/.cache/world_seeds/seed-<s>/` (git-ignored): a copy of
`params/` whose `profiles/<profile>.yaml` has `data.world_seed: <s>` (nothing else changes, except the settings
given with `--set KEY=VALUE`: a dotted profile key and a YAML value, recorded in the results), the repository's
`notebooks/` linked in, and its own `data/`, `runs/` and `figures/` (the runner finds them through `LRL_ROOT`),
so the repository's demo results are untouched. The whole profile runs there (`python -m
lrl_utils.orchestration.runner --profile <profile>`; finished runs are kept, so an interrupted benchmark goes on
where it stopped), and the report's `figures/findings.csv` is read: per check PASS / FAIL / not tested, per
finding PASS when all its tested checks pass (as `figures/findings.md` says), and per check its verdicts in the
report's extra columns (`also`: each model of a grid of several alone, the paper's models).

Written to `benchmarks/results/findings_world_seeds-<date>.json` (`--out`) with the machine, date and commit
(`conceptnet_convert.provenance`, with the CPU kernels and arithmetic fingerprint of `records/machine.py`), the
wall time of each world and the line of its `findings.md` that names the machines of its runs, and a table
printed in Markdown: how many of the world seeds pass each check and each finding. Not run by CI or the tests
(it takes half an hour).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from lrl_utils.records.machine import torch_arithmetic

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "world_seeds"


def _provenance() -> dict:
    spec = importlib.util.spec_from_file_location("_convert", ROOT / "benchmarks" / "conceptnet_convert.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.provenance()


def override(settings: dict, key: str, value) -> None:
    """Set the dotted profile `key` (`base_model.train.seed`) in `settings` to `value`, creating the mappings on
    the way. The runner validates the profile, so a wrong key or value fails there, naming it."""
    *path, last = key.split(".")
    node = settings
    for i, part in enumerate(path):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SystemExit(f"--set {key}: `{'.'.join(path[: i + 1])}` is not a mapping in the profile")
    node[last] = value


def parse_set(text: str) -> tuple[str, object]:
    """`KEY=VALUE` of `--set`: the value read as YAML (`43` an int, `[qab, qag]` a list)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def project_copy(root: Path, profile: str, data: dict, overrides: dict | None = None) -> Path:
    """A project folder at `root` for running `profile` apart from the repository: params/ copied with the
    profile's `data:` updated by `data` and the dotted keys of `overrides` set, the repository's notebooks/
    linked in (runs/, figures/ its own)."""
    params = root / "params"
    if params.exists():
        shutil.rmtree(params)  # always the repository's current params
    shutil.copytree(ROOT / "params", params)
    path = params / "profiles" / f"{profile}.yaml"
    settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    settings.setdefault("data", {}).update(data)
    for key, value in (overrides or {}).items():
        override(settings, key, value)
    path.write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True), encoding="utf-8")
    notebooks = root / "notebooks"
    if not notebooks.exists():
        notebooks.symlink_to(ROOT / "notebooks", target_is_directory=True)
    return root


def run_project(root: Path, profile: str, jobs: int) -> dict:
    """Run `profile` in the project `root` (`LRL_ROOT`); the wall time, the runner's exit code, the findings."""
    env = {
        **os.environ,
        "LRL_ROOT": str(root),
        "HF_HOME": os.environ.get("HF_HOME", str(ROOT / ".cache" / "huggingface")),
    }
    env.pop("LRL_RUNS", None)
    command = [
        sys.executable,
        "-m",
        "lrl_utils.orchestration.runner",
        "--profile",
        profile,
        "--jobs",
        str(jobs),
    ]
    started = time.perf_counter()
    with open(root / "runner.log", "w", encoding="utf-8") as log:
        code = subprocess.call(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = round(time.perf_counter() - started, 1)
    csv = root / "figures" / "findings.csv"
    if not csv.is_file():
        return {"exit_code": code, "wall_seconds": wall, "checks": [], "error": f"no {csv}"}
    md = csv.with_suffix(".md").read_text(encoding="utf-8") if csv.with_suffix(".md").is_file() else ""
    machines = next((line for line in md.splitlines() if line.startswith("Computed on")), None)
    return {"exit_code": code, "wall_seconds": wall, "checks": read_checks(csv), "machines": machines}


def read_checks(csv: Path) -> list[dict]:
    """A world's `figures/findings.csv` as rows: finding, check, result (PASS / FAIL / not tested), numbers, and
    `also`: the verdicts of the report's extra columns (each model alone, the paper's models) where it has any."""
    checks = pd.read_csv(csv)
    extra = [c for c in checks.columns if c not in ("finding", "check", "claim", "numbers", "passed")]
    rows = []
    for _, r in checks.iterrows():
        row = {
            "finding": r["finding"],
            "check": r["check"],
            "result": _result(r["passed"]),
            "numbers": r["numbers"],
        }
        also = {c: _result(r[c]) for c in extra if not pd.isna(r[c])}
        rows.append(row | ({"also": also} if also else {}))
    return rows


def _result(passed) -> str:
    """A `findings.csv` verdict cell (True, False, empty) as PASS, FAIL, not tested."""
    return "not tested" if pd.isna(passed) else "PASS" if str(passed) == "True" else "FAIL"


def run_world(seed: int, profile: str, jobs: int, overrides: dict | None = None) -> dict:
    """Run the profile on one world seed, in `CACHE/seed-<seed>` with the profile's `data.world_seed` set (and
    `overrides`)."""
    root = project_copy(CACHE / f"seed-{seed}", profile, {"world_seed": seed}, overrides)
    return {"seed": seed, **run_project(root, profile, jobs)}


def summarise(worlds: list[dict]) -> pd.DataFrame:
    """Per check and per finding: in how many worlds it passed, failed, was not tested."""
    rows = [{"seed": w["seed"], **c} for w in worlds for c in w["checks"]]
    if not rows:
        return pd.DataFrame(columns=["finding", "check", "PASS", "FAIL", "not tested"])
    checks = pd.DataFrame(rows)
    verdicts = []
    for (seed, finding), group in checks.groupby(["seed", "finding"], sort=False):
        tested = group[group["result"] != "not tested"]
        ok = len(tested) > 0 and (tested["result"] == "PASS").all()
        verdicts.append(
            {"seed": seed, "finding": finding, "check": "(finding)", "result": "PASS" if ok else "FAIL"}
        )
    both = pd.concat([checks, pd.DataFrame(verdicts)], ignore_index=True)
    table = both.pivot_table(
        index=["finding", "check"], columns="result", values="seed", aggfunc="count", sort=False
    )
    return table.reindex(columns=["PASS", "FAIL", "not tested"]).fillna(0).astype(int).reset_index()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="world seeds (default 0 1 2)")
    parser.add_argument("--profile", default="demo", help="the profile to run on every world (default demo)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (the runner's --jobs)")
    parser.add_argument(
        "--set",
        dest="overrides",
        type=parse_set,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a profile setting for every world (dotted key, YAML value), e.g. base_model.train.seed=43; repeatable",
    )
    parser.add_argument(
        "--out", help="results file; default benchmarks/results/findings_world_seeds-<date>.json"
    )
    args = parser.parse_args(argv)
    overrides = dict(args.overrides)
    if "data.world_seed" in overrides:
        parser.error("--set data.world_seed: the world seeds are --seeds")
    provenance = _provenance()
    provenance["machine"].update(torch_arithmetic())  # the arithmetic the worlds run with
    worlds = []
    for seed in args.seeds:
        print(f"world seed {seed}: running profile {args.profile} ...", flush=True)
        worlds.append(run_world(seed, args.profile, args.jobs, overrides))
        print(
            f"world seed {seed}: {worlds[-1]['wall_seconds']} s, runner exit code {worlds[-1]['exit_code']}"
        )
    table = summarise(worlds)
    date = datetime.date.today().isoformat()
    out = (
        Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"findings_world_seeds-{date}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "profile": args.profile,
        "seeds": args.seeds,
        "overrides": overrides,
        "provenance": provenance,
        "worlds": worlds,
        "pass_counts": table.to_dict(orient="records"),
    }
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table.to_markdown(index=False))
    print(f"\n{out}: {provenance['machine']['cpu_model']}, {provenance['date']}")
    return 0 if all(w["exit_code"] == 0 for w in worlds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
