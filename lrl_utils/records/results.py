"""Result records: atomic writes, the provenance block, `result.json`, and the tidy frame of all results.

`result.json` (one per run) = {"status", "stage", "run", "label", "spec", "metrics", "timings",
"provenance"}. Tables and figures are rebuilt only from these files (`load_records`). `run_folder_path` is where
every run folder is placed (never outside the runs directory); `failure_line` says why a failed run failed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from lrl_utils.config import paths
from lrl_utils.config.schema import ParamError
from lrl_utils.records import machine

RESULT_FILE = "result.json"
# a result's `unk_share` above this is flagged: in the run's output and the report's tables
UNK_WARNING = 0.05
PACKAGES = (
    "lrl-adapt", "torch", "transformers", "adapters", "tokenizers", "datasets", "accelerate",
    "papermill", "jupytext", "scikit-learn", "seqeval", "pandas", "numpy",
)  # fmt: skip


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write to a temporary file in the same folder, then rename over `path`: readers never see half a file."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_output(Path(path), write)


def atomic_output(path: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` on a temporary file next to ``path``, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o644)  # mkstemp makes it 0600; results are read by others (a shared cluster's users)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_info() -> dict[str, Any]:
    root = paths.project_root()

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance() -> dict[str, Any]:
    """Where and with what a result was made (PEFT-style run info)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": machine.cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "git": git_info(),
        "hf_offline": os.environ.get("HF_HUB_OFFLINE"),
    }
    try:  # only when torch is already loaded: reports never import it
        import sys

        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            info["torch_threads"] = torch.get_num_threads()
            info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
            info.update(machine.torch_arithmetic())  # CPU kernels and fingerprint (records/machine.py)
    except Exception:  # provenance must never fail a run
        pass
    return info


def make_result(spec, metrics: dict, started: str, seconds: float, extra: dict | None = None) -> dict:
    return {
        "status": "done",
        "stage": spec.stage,
        "run": spec.digest(),
        "label": spec.folder(),
        "spec": spec.to_dict(),
        "metrics": metrics,
        "timings": {"started": started, "finished": now(), "seconds": round(seconds, 3)},
        "provenance": provenance(),
        **(extra or {}),
    }


def run_folder_path(folder: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The absolute path of run folder `folder` (relative to the runs directory `root`, default `runs_dir()`).

    Raises a one-line ParamError when the path, normalised (`..` resolved; symlinks are not followed, so a stage
    folder may be a link to another disk), is not strictly inside `root`: no run is ever written outside it.
    """
    base = Path(os.path.abspath(root if root is not None else paths.runs_dir()))
    path = Path(os.path.normpath(base / folder))
    if path == base or not path.is_relative_to(base):
        raise ParamError(f"run folder {str(folder)!r} would be {path}, outside the runs directory {base}")
    return path


def failure_line(run_dir: str | os.PathLike, limit: int = 400) -> str:
    """The one-line error of a failed run: `ExceptionName: message` of the exception its executed notebook
    (`notebook.ipynb`) recorded, else the last line of its `log.txt` (papermill could not start the notebook)."""
    run_dir = Path(run_dir)
    line = ""
    try:
        notebook = json.loads((run_dir / "notebook.ipynb").read_text(encoding="utf-8"))
        errors = [
            out
            for cell in notebook.get("cells", [])
            for out in cell.get("outputs", [])
            if out.get("output_type") == "error"
        ]
        if errors:
            ename, evalue = errors[-1].get("ename", "Error"), str(errors[-1].get("evalue", ""))
            message = next((x.strip() for x in evalue.splitlines() if x.strip()), "")
            line = f"{ename}: {message}" if message else ename
    except (OSError, ValueError, AttributeError):
        pass
    if not line:
        try:
            log = (run_dir / "log.txt").read_text(encoding="utf-8", errors="replace").splitlines()
            line = next((x.strip() for x in reversed(log) if x.strip()), "")
        except OSError:
            pass
    line = re.sub(r"\x1b\[[0-9;]*m", "", line) or "no error recorded (see the log)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


_REQUIRED = (("spec", dict), ("metrics", dict))  # what the readers of a result read, where it has them
_WARNED: set[tuple[str, str]] = set()


def result_problem(result: Any, folder_name: str) -> str | None:
    """Why `result` (a `result.json` read from the run folder named `folder_name`) is not a finished run's
    record, or None: where it has them, `spec` and `metrics` objects, a `stage` string, status `done` and the
    run hash of its own folder; every numeric metric finite."""
    if not isinstance(result, dict):
        return f"not a JSON object ({type(result).__name__})"
    for key, kind in _REQUIRED:
        if key in result and not isinstance(result[key], kind):
            return f"`{key}` is not a JSON object"
    if not isinstance(result.get("stage", ""), str):
        return "a `stage` that is not a string"
    if result.get("status", "done") != "done":
        return f"status {result['status']!r}, not done"
    run = result.get("run")
    if (
        isinstance(run, str)
        and "--" in folder_name
        and folder_name.rpartition("--")[2] != run.rpartition("--")[2]
    ):
        return f"the record of run {run}, not of this folder (copied?)"
    for metric, value in result.get("metrics", {}).items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"metric `{metric}` is {value}"
    return None


def read_result(run_folder: str | os.PathLike) -> dict | None:
    """A run's `result.json`, or None when there is none. A damaged one (not UTF-8 JSON, or failing
    `result_problem`) counts as none too, so the run is redone and no table reads it, and the first time it
    is met one line on stderr names it and says why."""
    return read_result_bytes(run_folder)[0]


def read_result_bytes(run_folder: str | os.PathLike) -> tuple[dict | None, bytes | None]:
    """`read_result` and the file's bytes (None with no sound result), from one read."""
    path = (
        paths.runs_dir() / run_folder / RESULT_FILE
        if not Path(run_folder).is_absolute()
        else Path(run_folder)
    )
    if path.is_dir():
        path = path / RESULT_FILE
    try:
        data = path.read_bytes()
        result = json.loads(data.decode("utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except OSError as exc:
        problem = f"unreadable ({exc.strerror or exc})"
    except UnicodeDecodeError:
        problem = "not UTF-8"
    except json.JSONDecodeError as exc:
        problem = f"not JSON ({exc.msg}, line {exc.lineno})"
    else:
        problem = result_problem(result, path.parent.name)
        if problem is None:
            return result, data
    if (str(path), problem) not in _WARNED:
        _WARNED.add((str(path), problem))
        print(f"warning: {paths.relative(path)}: damaged, read as no result: {problem}", file=sys.stderr)
    return None, None


def pretrained_languages(model_ref: Any) -> set[str] | None:
    """The languages a tiny model's `base_model` run (`model_ref`, `base_model/<slug>--<hash>`) was pre-trained
    on: those of its `corpora` (not its `vocabulary_corpora`, text the tokenizer learns and the weights never
    see); None for another model or a base run without a result."""
    if not (isinstance(model_ref, str) and model_ref.startswith("base_model/")):
        return None
    base = read_result(model_ref)
    corpora = base.get("spec", {}).get("corpora") if base else None
    if not isinstance(corpora, list):
        return None
    found = [read_result(corpus) for corpus in corpora]
    return {r["spec"].get("language") for r in found if r is not None}


def load_records(run_folders: Iterable[str], registry=None):
    """The tidy frame of evaluation results: one row per (run, scalar metric); missing runs are skipped.

    Columns: run, stage, model, language, seen, source, adapter, task, seed, metric, value. `seen`: the language
    is in the pre-training of the run's model: a tiny model's are the languages its `base_model` run was
    pre-trained on (the profile's `base_model.languages`, `pretrained_languages`), a hub model's the registry's
    `seen_by`.
    """
    import pandas as pd

    from lrl_utils.config.params import load_registry

    reg = registry or load_registry()  # language statistics only
    pretrained: dict[str, set[str] | None] = {}  # model_ref -> its pre-training languages
    rows = []
    for folder in run_folders:
        res = read_result(folder)
        if res is None or res.get("stage") not in ("pppl", "finetune"):
            continue
        spec = res.get("spec", {})
        if not all(isinstance(spec.get(k), str) for k in ("model", "language")):
            print(
                f"warning: {folder}: result.json without the spec's model and language: skipped",
                file=sys.stderr,
            )
            continue
        lang = reg.languages.get(spec["language"])
        ref = spec.get("model_ref")
        if isinstance(ref, str) and ref not in pretrained:
            pretrained[ref] = pretrained_languages(ref)
        tiny_seen = pretrained.get(ref) if isinstance(ref, str) else None
        base = {
            "run": res["run"],
            "stage": res["stage"],
            "model": spec["model"],
            "language": spec["language"],
            "seen": spec["language"] in tiny_seen
            if tiny_seen is not None
            else bool(lang and spec["model"] in lang.seen_by),
            "source": spec.get("source", "none"),
            "adapter": spec.get("adapter", "none"),
            "task": spec.get("task", ""),
            "seed": spec.get("seed"),
        }
        for metric, value in res.get("metrics", {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({**base, "metric": metric, "value": float(value)})
    columns = [
        "run",
        "stage",
        "model",
        "language",
        "seen",
        "source",
        "adapter",
        "task",
        "seed",
        "metric",
        "value",
    ]
    return pd.DataFrame(rows, columns=columns)
