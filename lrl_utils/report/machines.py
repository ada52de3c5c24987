"""Which machines computed a report's runs: one line for `findings.md`, from the runs' `provenance`.

The same commit can write other findings on another CPU (`records/machine.py`); the line names each machine's
CPU, torch kernels and arithmetic fingerprint with its number of runs, so that a reader comparing two findings
files, or this one with the README's quote, sees first whether the arithmetic was the same. It counts the
report's input runs and the runs they were built on (`model_ref`: the pre-trained base model; `adapter_run`: the
language adapter), where rounding decides most."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from lrl_utils.records.machine import describe
from lrl_utils.records.results import read_result

UPSTREAM = ("model_ref", "adapter_run")


def _machine(provenance: dict) -> str:
    device = provenance.get("device")
    if device and device != "cpu":
        return f"{device} (GPU)"
    return describe(provenance)


def machines(run_folders: Iterable[str]) -> Counter:
    """Machine description → number of runs, over `run_folders` and the runs they name in `UPSTREAM`."""
    seen: set[str] = set()
    counts: Counter = Counter()
    queue = list(run_folders)
    while queue:
        folder = queue.pop(0)
        if not folder or folder in seen:
            continue
        seen.add(folder)
        result = read_result(folder)
        if result is None:
            continue
        counts[_machine(result.get("provenance") or {})] += 1
        spec = result.get("spec") or {}
        queue += [spec[key] for key in UPSTREAM if isinstance(spec.get(key), str)]
    return counts


def machine_line(run_folders: Iterable[str]) -> str:
    """`Computed on one machine: AMD EPYC, torch kernels AVX512, arithmetic `ee1698aa7748` (140 runs). ...`"""
    counts = machines(run_folders)
    if not counts:
        return ""
    listed = "; ".join(f"{name} ({n} run{'s' * (n != 1)})" for name, n in counts.most_common())
    where = "one machine" if len(counts) == 1 else f"{len(counts)} machines"
    return (
        f"Computed on {where}: {listed}. Another CPU can round differently (`python -m lrl_utils.records.machine`"
        " prints this machine's fingerprint), and at the demo's scale different rounding trains other models and"
        ' gives other numbers (docs/architecture.md, "Determinism").'
    )
