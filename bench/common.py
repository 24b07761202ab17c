"""What the benchmarks share: where the data lives, the timing loop, the machine's matmul ceiling,
the useful FLOPs of an encoder forward, and the CPU flags that decide bf16 speed.

bench/encode.py, train.py, gemm_ceiling.py and profile_step.py import it by name (`from common
import ...`; a script's own folder is on its path), so no benchmark imports another.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MIXLINGUAL_SHARED_DATA", REPO.parent / "shared" / "data"))   # ../shared/data


def best_time(run, repeats: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        run()
        times.append(clock() - start)
    return min(times)


def matmul_gflops(dtype, size: int = 2048, repeats: int = 5, clock=time.perf_counter) -> float:
    """GFLOP/s of one (size x size) @ (size x size) matmul in `dtype` (a torch dtype): the machine's
    ceiling (bench/train.py passes `time.process_time`, as it clocks training steps by CPU time)."""
    import torch

    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.matmul(a, b)  # warm-up
    seconds = best_time(lambda: torch.matmul(a, b), repeats, clock)
    return 2 * size**3 / seconds / 1e9


def forward_flops(model, lengths) -> float:
    """Useful FLOPs of one forward of `model` over sequences of these token counts (no padding)."""
    config = model.config
    embedding_params = sum(p.numel() for n, p in model.named_parameters() if n.startswith("embeddings."))
    matmul_params = sum(p.numel() for p in model.parameters()) - embedding_params
    return encoder_forward_flops(matmul_params, config.hidden_size, config.num_hidden_layers, lengths)


def encoder_forward_flops(matmul_params: int, hidden: int, layers: int, lengths) -> float:
    """Useful FLOPs of one encoder forward over sequences of these token counts: 2 x the
    non-embedding params per token + attention's 4 x L^2 x hidden per layer."""
    lengths = np.asarray(lengths, dtype=np.float64)
    return float(2 * matmul_params * lengths.sum() + 4 * (lengths**2).sum() * hidden * layers)


def cpu_flags() -> str:
    """The matrix-unit flags that decide bf16 speed (AMX tiles, AVX-512 bf16, AVX-512), as lscpu names them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = set(next((line.split(":", 1)[1] for line in text.splitlines() if line.startswith("flags")), "").split())
    found = " ".join(f for f in ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f") if f in flags)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")   # e.g. AVX512_CORE_BF16: this run's matmuls without AMX
    return (found or "none of amx_bf16/amx_tile/avx512_bf16/avx512f") + (f" (ONEDNN_MAX_CPU_ISA={isa})" if isa else "")
