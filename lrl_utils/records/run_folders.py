"""The life of a run folder, shared by the runner and the multi-GPU launcher.

A run works in a temporary folder next to its final one (`temporary_folder`); `publish` renames it into place
once `result.json` is written (a finished run is swapped out only then, so a failure never replaces it) and drops
its resumable training state; `fail` moves it to `runs/_failed/` without a result; `checkpoint_dir` is where the
training state survives a kill; `is_done` and `missing_upstream` decide whether a run must (and can) run.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from lrl_utils.config import paths
from lrl_utils.config.specs import Spec
from lrl_utils.records.results import RESULT_FILE, read_result, read_result_bytes, run_folder_path


def input_states(folders: list[str]) -> dict[str, str | None]:
    """Per run folder, a short hash of its `result.json` (None: no result, or a damaged one): what a report was
    built from, so that it is rebuilt when any input appears, is redone or goes."""
    states = {}
    for folder in folders:
        data = read_result_bytes(folder)[1]
        states[folder] = None if data is None else hashlib.blake2b(data, digest_size=8).hexdigest()
    return states


def is_done(spec: Spec) -> bool:
    """A run is done when it has a (sound) result.json; a report also needs its inputs as it read them."""
    result = read_result(spec.folder())
    if result is None:
        return False
    if spec.stage == "report":
        if isinstance(result.get("inputs"), dict):
            return input_states(list(spec.inputs)) == result["inputs"]
        return not any(read_result(f) is not None for f in result.get("missing_inputs", []))  # older reports
    return True


def missing_upstream(spec: Spec) -> list[str]:
    """The upstream runs of `spec` that have no (sound) result yet."""
    return [d for d in spec.deps() if read_result(d) is None]


def temporary_folder(final: Path) -> Path:
    """A fresh working folder for the run that will end up in `final` (named after this process)."""
    return final.parent / f".tmp-{final.name}-{os.getpid()}-{time.monotonic_ns() % 10**6}"


def checkpoint_dir(runs_root: Path, spec: Spec) -> Path:
    """Where a run keeps its resumable training state: outside its temporary folder, so that a run killed
    midway resumes on the next start (a failed run's folder moves to `_failed/`, its checkpoint stays)."""
    return run_folder_path(f"_checkpoints/{spec.folder()}", runs_root)


def publish(tmp: Path, final: Path, spec: Spec, runs_root: Path) -> None:
    """Rename a finished run's folder into place (replacing an older finished run only now) and drop its
    obsolete checkpoints."""
    trash = final.parent / f".old-{final.name}-{os.getpid()}"
    if final.exists():
        os.replace(final, trash)
    os.replace(tmp, final)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(checkpoint_dir(runs_root, spec), ignore_errors=True)


def fail(tmp: Path, folder: str, runs_root: Path) -> Path:
    """Move a failed run's folder to `_failed/<folder>` (its result, if any, removed); return where it went."""
    failed = run_folder_path(f"_failed/{folder}", runs_root)
    shutil.rmtree(failed, ignore_errors=True)
    failed.parent.mkdir(parents=True, exist_ok=True)
    (tmp / RESULT_FILE).unlink(missing_ok=True)  # a failed run never leaves a result behind
    os.replace(tmp, failed)
    return failed


class RunsBusy(RuntimeError):
    """Another runner holds the runs folder."""


@contextmanager
def runs_lock(root: Path):
    """Hold `<root>/.runner.lock` while a runner runs a grid: a second runner on the same runs folder stops at
    once with a line naming the first (two would run every run twice and swap each other's folders)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".runner.lock", "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RunsBusy(
                f"{paths.relative(root)}: another runner ({holder}) is running on these runs; wait for it, or "
                "stop it"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _runner_alive(tmp: Path) -> bool:
    """Whether the runner that made the temporary folder `tmp` (`.tmp-<run>-<pid>-<suffix>`) is still alive."""
    pid = tmp.name.rsplit("-", 2)[-2]
    return pid.isdigit() and _alive(int(pid))


def in_progress(final: Path) -> bool:
    """Whether a live process works on the run that will end up in `final` (a temporary folder of a runner that
    is still alive; one left by a killed runner is not: it is removed when the next runner starts)."""
    return any(_runner_alive(tmp) for tmp in final.parent.glob(f".tmp-{final.name}-*"))


def clean_stale(root: Path) -> None:
    """After killed runs: remove their temporary folders, and put back a finished folder that a `--force` rerun
    had moved aside (`publish`) when it was killed before its new folder took its place."""
    for tmp in root.glob("*/.tmp-*"):
        if not _runner_alive(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    for old in root.glob("*/.old-*"):
        name, _, pid = old.name.removeprefix(".old-").rpartition("-")
        if pid.isdigit() and _alive(int(pid)):
            continue
        final = old.parent / name
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, final)
