"""A profile's `slurm:` section: what each stage asks a SLURM cluster for (`./run_all.sh --executor slurm`).

Runs are grouped by resource class, one `sbatch` job array per class (`resource_class`): the stages, with adapt
split into adapters (`adapt`), full fine-tuning (`adapt_fft`) and causal-LM adapters of decoders (`adapt_clm`).
Every setting left out (null) takes the class's default (`CLASS_DEFAULTS`, sized for the paper's stages on one
80 GB GPU), then `slurm.defaults`, then `slurm.classes.<class>`: e.g.

    slurm:
      defaults: {partition: gpu, account: my-project}
      classes:
        adapt: {time: "1-00:00:00", throttle: 32}
        pppl: {pack: 16}

These settings say where runs execute, never what they compute: they are not part of any run spec or hash.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from lrl_utils.config.schema import ParamError, _help, check_name

RESOURCE_CLASSES = (
    "preprocess",
    "base_model",
    "adapt",
    "adapt_fft",
    "adapt_clm",
    "pppl",
    "finetune",
    "llm",
    "report",
)
TIME = re.compile(r"(\d+-)?\d{1,2}(:\d{2}){0,2}")  # sbatch --time: [D-]HH[:MM[:SS]] (minutes alone: MM)
MEMORY = re.compile(r"\d+[KMGT]?")  # sbatch --mem: 16G, 64000M, ...


@dataclass(frozen=True)
class Resources:
    """What one job-array task asks for (null = the class's default)."""

    partition: str | None = _help("sbatch --partition", default=None)
    account: str | None = _help("sbatch --account", default=None)
    qos: str | None = _help("sbatch --qos", default=None)
    time: str | None = _help("sbatch --time limit per task, [D-]HH:MM:SS", default=None)
    cpus: int | None = _help("sbatch --cpus-per-task", minimum=1, default=None)
    mem: str | None = _help("sbatch --mem per node, e.g. 32G", default=None)
    gpus: int | None = _help("GPUs per node (sbatch --gres=gpu[:type]:N); 0 = none", minimum=0, default=None)
    gpu_type: str | None = _help("GRES type of the GPUs (--gres=gpu:<type>:N), e.g. a100", default=None)
    constraint: str | None = _help("sbatch --constraint, e.g. a100|h100", default=None)
    sbatch: tuple[str, ...] | None = _help("extra sbatch flags, each `--name[=value]`", default=None)
    throttle: int | None = _help(
        "at most this many tasks of the array at once (--array=...%N)", minimum=1, default=None
    )
    pack: int | None = _help(
        "runs per array task, run one after another (short runs)", minimum=1, default=None
    )
    nodes: int | None = _help("adapt: nodes per run (accelerate launch across them)", minimum=1, default=None)
    processes: int | None = _help(
        "adapt: processes (GPUs) per node for accelerate launch", minimum=1, default=None
    )
    signal_seconds: int | None = _help(
        "adapt: SIGUSR1 this many seconds before the time limit: checkpoint and requeue (0 = no signal)",
        minimum=0,
        default=None,
    )


def _r(**kw) -> Resources:
    base = dict(
        cpus=4, mem="32G", gpus=1, throttle=64, pack=1, nodes=1, processes=1, signal_seconds=0, sbatch=()
    )
    return Resources(**{**base, **kw})


# Sized for the paper (mBERT / XLM-R base, LLaMA-3-8B adapters, 80 GB GPUs): adapt 25k steps x 16 x 512 tokens in
# bf16 is a few hours; FFT trains every weight (optimizer state of a 278M model); the 8B decoder needs the memory;
# PPPL (1012 devtest sentences) and task fine-tuning runs are minutes, so several share a task.
CLASS_DEFAULTS: dict[str, Resources] = {
    "preprocess": _r(cpus=8, mem="32G", gpus=0, time="06:00:00"),
    "base_model": _r(cpus=8, mem="32G", time="1-00:00:00", signal_seconds=600),
    "adapt": _r(cpus=8, mem="64G", time="12:00:00", signal_seconds=600),
    "adapt_fft": _r(cpus=8, mem="96G", time="1-00:00:00", signal_seconds=900),
    "adapt_clm": _r(cpus=16, mem="128G", time="2-00:00:00", throttle=8, signal_seconds=1200),
    "pppl": _r(cpus=4, mem="32G", time="04:00:00", pack=8),
    "finetune": _r(cpus=4, mem="32G", time="08:00:00", pack=4, throttle=128),
    "llm": _r(cpus=8, mem="128G", time="12:00:00", throttle=8),
    "report": _r(cpus=2, mem="16G", gpus=0, time="01:00:00"),
}


# Peak dense tensor-core throughput (TFLOP/s) in bf16 and in plain fp32 (no TF32: PyTorch's default for matmuls),
# from the vendors' data sheets (SXM parts where there are two); the cost estimate's GPU types.
GPU_PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "a100-40gb": {"bf16": 312.0, "fp32": 19.5},
    "a100-80gb": {"bf16": 312.0, "fp32": 19.5},
    "h100": {"bf16": 989.0, "fp32": 67.0},
    "h200": {"bf16": 989.0, "fp32": 67.0},
    "l40s": {"bf16": 362.0, "fp32": 91.6},
    "a40": {"bf16": 149.7, "fp32": 37.4},
    "rtx-a6000": {"bf16": 154.8, "fp32": 38.7},
}


@dataclass(frozen=True)
class SlurmSettings:
    """Resources per class of runs, the cost estimate's GPU, and what a task runs first."""

    defaults: Resources = _help(
        "settings of every class (over the built-in defaults)", default_factory=Resources
    )
    classes: dict[str, Resources] = _help(
        f"per resource class ({', '.join(RESOURCE_CLASSES)}): settings over `defaults`", default_factory=dict
    )
    gpu: str = _help(
        "GPU type of the `--dry-run` GPU-hour estimate (see orchestration/cost.py)", default="a100-80gb"
    )
    setup: tuple[str, ...] = _help(
        "shell lines each task runs before the run, e.g. `module load cuda/12.1` (the venv's python is used)",
        default=(),
    )

    def resources(self, cls: str) -> Resources:
        """The resolved resources of class `cls`: built-in default < `defaults` < `classes.<cls>`."""
        merged = dataclasses.asdict(CLASS_DEFAULTS[cls])
        for layer in (self.defaults, self.classes.get(cls)):
            if layer is not None:
                merged.update({k: v for k, v in dataclasses.asdict(layer).items() if v is not None})
        return Resources(**merged)


def check_slurm(settings: SlurmSettings, file: str) -> None:
    """Cross-checks `from_dict` cannot do: class names, time and memory formats, sbatch flags, the GPU type."""
    for cls in settings.classes:
        check_name(cls, RESOURCE_CLASSES, file, f"slurm.classes.{cls}", "resource class")
    check_name(settings.gpu, GPU_PEAK_TFLOPS, file, "slurm.gpu", "GPU type")
    layers = [
        ("slurm.defaults", settings.defaults),
        *((f"slurm.classes.{k}", v) for k, v in settings.classes.items()),
    ]
    for where, r in layers:
        if r.time is not None and not TIME.fullmatch(r.time):
            raise ParamError(f"{file}: `{where}.time`: expected [D-]HH:MM:SS (sbatch --time), got {r.time!r}")
        if r.mem is not None and not MEMORY.fullmatch(r.mem):
            raise ParamError(f"{file}: `{where}.mem`: expected a size like 32G or 64000M, got {r.mem!r}")
        for i, flag in enumerate(r.sbatch or ()):
            if not re.fullmatch(r"--[a-z][a-z-]*(=\S.*)?", flag) or flag.split("=")[0] in (
                "--array",
                "--dependency",
            ):
                raise ParamError(
                    f"{file}: `{where}.sbatch[{i}]`: expected one `--name[=value]` flag (not --array or "
                    f"--dependency, which the executor sets), got {flag!r}"
                )
        for key in ("partition", "account", "qos", "gpu_type", "constraint"):
            value = getattr(r, key)
            if value is not None and (not value or any(c.isspace() for c in value)):
                raise ParamError(
                    f"{file}: `{where}.{key}`: expected a non-empty name without spaces, got {value!r}"
                )


def resource_class(spec) -> str:
    """The resource class of a run spec: its stage, with adapt split into adapters, FFT and causal-LM adapters."""
    if spec.stage == "adapt":
        if spec.adapter == "fft":
            return "adapt_fft"
        if spec.train.objective == "clm":
            return "adapt_clm"
    return spec.stage
