"""`findings.md` and `findings.csv` from run folders: the checks of `findings` with the extra columns of
`per_model` (each model alone, the paper's models). The one producer of both files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from lrl_utils.records.results import atomic_write_text, load_records, read_result
from lrl_utils.report.checks import all_checks
from lrl_utils.report.correlations import data_sizes
from lrl_utils.report.findings import findings, head_paths, llm_scores, markdown
from lrl_utils.report.machines import machine_line
from lrl_utils.report.per_model import columns


def write_findings(
    run_folders: list[str], out_dirs: Iterable[str | Path], title: str = "Findings"
) -> pd.DataFrame:
    """Load the runs, compute the checks and write `findings.md` (and `findings.csv`, with a column per extra
    column of `findings.md`: each model alone, the paper's models) into every `out_dirs`; `findings.md` names
    the machines that computed the runs (`machines.machine_line`) and the runs without a result."""
    records = load_records(run_folders)
    learned = all_checks(records, list(run_folders))
    sizes, llm = data_sizes(run_folders), llm_scores(run_folders)
    paths = head_paths(run_folders)
    checks = findings(records, sizes, llm, learned, paths)
    extra = columns(records, paths)
    missing = [f for f in run_folders if read_result(f) is None]  # a partial grid says so, and which runs
    text = markdown(checks, title, columns=extra, machine=machine_line(run_folders), missing=missing)
    table = checks.assign(**{label: checks["check"].map(verdicts) for label, verdicts in extra.items()})
    for folder in out_dirs:
        atomic_write_text(Path(folder) / "findings.md", text + "\n")
        atomic_write_text(Path(folder) / "findings.csv", table.to_csv(index=False))
    return checks
