"""Result records: atomic writes, the provenance block, `result.json`, and the tidy frame of all results.

`result.json` (one per run) = {"status", "stage", "run", "label", "spec", "metrics", "timings",
"provenance"}. Tables and figures are rebuilt only from these files (`load_records`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from . import paths

RESULT_FILE = "result.json"
PACKAGES = (
    "lrl-adapt", "torch", "transformers", "adapters", "tokenizers", "datasets", "accelerate",
    "papermill", "jupytext", "scikit-learn", "seqeval", "pandas", "numpy",
)  # fmt: skip


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write to a temporary file in the same folder, then rename over `path`: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def read_result(run_folder: str | os.PathLike) -> dict | None:
    path = (
        paths.runs_dir() / run_folder / RESULT_FILE
        if not Path(run_folder).is_absolute()
        else Path(run_folder)
    )
    if path.is_dir():
        path = path / RESULT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def load_records(run_folders: Iterable[str], registry=None):
    """The tidy frame of evaluation results: one row per (run, scalar metric); missing runs are skipped.

    Columns: run, stage, model, language, seen, source, adapter, task, seed, metric, value.
    """
    import pandas as pd

    from .params import load_registry

    reg = registry or load_registry()
    rows = []
    for folder in run_folders:
        res = read_result(folder)
        if res is None or res.get("stage") not in ("pppl", "finetune"):
            continue
        spec = res["spec"]
        lang = reg.languages.get(spec["language"])
        base = {
            "run": res["run"],
            "stage": res["stage"],
            "model": spec["model"],
            "language": spec["language"],
            "seen": bool(lang and spec["model"] in lang.seen_by),
            "source": spec.get("source", "none"),
            "adapter": spec.get("adapter", "none"),
            "task": spec.get("task", ""),
            "seed": spec.get("seed"),
        }
        for metric, value in res["metrics"].items():
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
