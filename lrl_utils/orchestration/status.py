"""`./run_all.sh --status`: per stage, how many runs are done, running, queued, failed, blocked or not started.

A run is `done` when its folder holds `result.json`; `running` while its array task runs (`squeue`) or a local
runner (alive) works in its temporary folder; `queued` while its array task is pending; else what its last SLURM task
recorded (`runs/_slurm/state/`: failed, blocked with the reason, requeued), else `failed` when `runs/_failed/` holds
it (the local runner), else `todo`. Each failed run is listed with its one-line error
(`records.results.failure_line`) and its log; blocked runs with the upstream run they wait for.
"""

from __future__ import annotations

from pathlib import Path

from lrl_utils.config import paths
from lrl_utils.config.specs import STAGES, Spec
from lrl_utils.orchestration.slurm import live_task, read_queued, read_state, squeue_states
from lrl_utils.records.results import failure_line
from lrl_utils.records.run_folders import in_progress, is_done

COLUMNS = ("done", "running", "queued", "failed", "blocked", "todo")


def run_state(spec: Spec, queued: dict, states: dict | None, runs: Path) -> tuple[str, str]:
    """(state, detail) of one run: detail is the error and log of a failure, the reason of a block."""
    folder = spec.folder()
    if is_done(spec):
        return "done", ""
    live = live_task(queued.get(folder), states)
    if live:
        return ("running" if live in ("RUNNING", "COMPLETING", "CONFIGURING") else "queued"), ""
    final = runs / folder
    if in_progress(final) and not queued.get(folder):  # a killed runner's folder is no run in progress
        return "running", "local"
    failed = runs / "_failed" / folder
    recorded = read_state(folder, runs)
    if recorded and recorded["state"] == "blocked":
        return "blocked", recorded.get("reason", "")
    if recorded and recorded["state"] == "failed":
        return "failed", f"{recorded.get('error', '?')} ({recorded.get('log', '')})"
    if recorded and recorded["state"] in ("running", "requeued"):  # its task is gone: killed or cancelled
        return (
            "failed",
            f"its task {recorded.get('array', '?')} ended without a result (cancelled or killed?)",
        )
    if failed.exists():
        log = failed / "notebook.ipynb" if (failed / "notebook.ipynb").exists() else failed / "log.txt"
        return "failed", f"{failure_line(failed)} ({log})"
    return "todo", ""


def status_lines(specs: list[Spec], runs: Path | None = None) -> list[str]:
    """The status table per stage, then the failed runs (error and log) and the blocked runs (reason)."""
    runs = runs or paths.runs_dir()
    queued = read_queued(runs)
    states = squeue_states({str(r["job"]) for r in queued.values()})
    counts = {stage: dict.fromkeys(COLUMNS, 0) for stage in STAGES}
    details: dict[str, list[str]] = {"failed": [], "blocked": []}
    for spec in specs:
        state, detail = run_state(spec, queued, states, runs)
        counts[spec.stage][state] += 1
        if state in details:
            details[state].append(f"  {spec.folder()}: {detail}")
    lines = [f"{'stage':<11}" + "".join(f"{c:>9}" for c in COLUMNS)]
    for stage, row in counts.items():
        if any(row.values()):
            lines.append(f"{stage:<11}" + "".join(f"{row[c]:>9}" for c in COLUMNS))
    total = {c: sum(row[c] for row in counts.values()) for c in COLUMNS}
    lines.append(f"{'total':<11}" + "".join(f"{total[c]:>9}" for c in COLUMNS))
    if states is None and queued:
        lines.append(
            "(no squeue here: runs submitted to SLURM show as failed/todo until their tasks record them)"
        )
    if details["failed"]:
        lines += [f"failed ({len(details['failed'])}):", *details["failed"]]
    if details["blocked"]:
        shown = details["blocked"][:20]
        more = len(details["blocked"]) - len(shown)
        lines += [f"blocked ({len(details['blocked'])}):", *shown] + (
            [f"  ... and {more} more"] if more else []
        )
    return lines
