"""Which arithmetic a result was computed with: the CPU, the kernels torch picked, and a fingerprint of both.

Every run is a function of its spec on one machine (docs/architecture.md, "Determinism"), but another CPU can
round differently: torch's own kernels are compiled per instruction set and picked at start-up (AVX-512, AVX2,
...), and MKL's matrix products pick their code path by the processor (on an AMD EPYC it ignores `MKL_CBWR`
branches other than `COMPATIBLE`). A tiny model pre-trained for minutes turns the last bits into another model,
so two machines can write different demo findings from the same commit.

`fingerprint()` makes that visible before anyone compares numbers: three AdamW steps of a small transformer-like
block (embedding, matrix products, GELU, layer norm, softmax cross-entropy: the operations the runs spend their
time in), seeded, on the CPU, hashed to 12 hex digits. Machines whose fingerprints agree ran the same
arithmetic; machines whose fingerprints differ will, at the demo's scale, train other models. It takes a few
milliseconds and is computed once per process.

    .venv/bin/python -m lrl_utils.records.machine      # this machine's CPU, torch kernels and fingerprint
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (`AMD EPYC 9B14`), from `/proc/cpuinfo` where there is one, else `platform`."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in {"model name", "Model name", "cpu model", "Processor"} and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.cache
def _fingerprint(threads: int) -> str:
    import torch

    gen = torch.Generator().manual_seed(20250214)
    vocab, width, hidden, batch, length = 512, 128, 512, 8, 32

    def init(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * 0.05).requires_grad_()

    params = [init(vocab, width), init(width, hidden), init(hidden), init(hidden, width), init(width)]
    opt = torch.optim.AdamW(params, lr=1e-2)
    tokens = torch.randint(0, vocab, (3, batch, length), generator=gen)
    for step in range(3):
        emb, w1, b1, w2, b2 = params
        x = emb[tokens[step]]
        h = torch.nn.functional.gelu(x @ w1 + b1) @ w2 + b2
        h = torch.nn.functional.layer_norm(x + h, (width,))
        logits = h @ emb.T  # tied output embeddings, as the tiny models have
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), tokens[step].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    digest = hashlib.sha256()
    for p in params:
        digest.update(p.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def fingerprint() -> str:
    """12 hex digits naming the arithmetic of this process's CPU kernels (at its torch thread count)."""
    import torch

    return _fingerprint(torch.get_num_threads())


def torch_arithmetic() -> dict[str, Any]:
    """The torch CPU kernels in use, the BLAS and the arithmetic fingerprint (imports torch)."""
    import torch

    return {
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "arithmetic": fingerprint(),
    }


def machine_info() -> dict[str, Any]:
    """The CPU model with `torch_arithmetic`."""
    return {"cpu": cpu_model(), **torch_arithmetic()}


def describe(info: dict[str, Any]) -> str:
    """One line: `AMD EPYC 9B14, torch kernels AVX512, arithmetic 1a2b3c4d5e6f`."""
    if not info.get("cpu") and not info.get("arithmetic"):
        return "a machine not recorded (runs made before their results named it)"
    parts = [info.get("cpu") or "unknown CPU"]
    if info.get("torch_cpu_capability"):
        parts.append(f"torch kernels {info['torch_cpu_capability']}")
    parts.append(
        f"arithmetic `{info['arithmetic']}`" if info.get("arithmetic") else "arithmetic not recorded"
    )
    return ", ".join(parts)


def main() -> None:
    info = machine_info()
    print(json.dumps(info, indent=1) if "--json" in sys.argv[1:] else describe(info))


if __name__ == "__main__":
    main()
