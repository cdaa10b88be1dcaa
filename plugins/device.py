"""Where a run executes: its rank, its world size and the precision ``auto`` picks there. One home for each rule.

torch is imported inside the functions, so the CLI's fast commands can import this module.
"""

from __future__ import annotations

import os

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def on_gpu() -> bool:
    """Whether this process trains on a CUDA GPU (the recipes use one whenever torch sees it)."""
    import torch

    return torch.cuda.is_available()


def is_main_process() -> bool:
    """Rank 0 of the run and of its machine (or a single process): the only one that writes shared files."""
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def world_size() -> int:
    """Number of processes in this run (torchrun, accelerate and Lightning set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX or AVX512-BF16); elsewhere bf16 is emulated."""
    import torch

    checks = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return any(check is not None and check() for check in checks)


def auto_bf16(cpu: bool = False) -> bool:
    """What ``precision=auto`` means: bf16 on a GPU that supports it and, with ``cpu``, on a CPU with native
    bfloat16 (the text recipe: 1.2-1.6x faster at the same quality); fp32 everywhere else."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu and cpu_has_native_bf16()
