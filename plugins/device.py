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


def launched_processes() -> tuple[int, int] | None:
    """(processes per machine, machines) when torchrun or ``accelerate launch`` started this process among others
    (they set LOCAL_WORLD_SIZE; Lightning's own DDP does not), else None."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "0") or 0)
    if local < 1 or world_size() <= 1:
        return None
    return local, max(1, world_size() // local)


def lightning_devices(accelerator: str, devices: object) -> int | None:
    """The processes per machine Lightning starts for ``devices`` (a count, ids, "0,1", "auto"), or None where that
    is not known without building a Trainer (e.g. -1 on a GPU machine)."""
    if isinstance(devices, bool):
        return None
    if isinstance(devices, int):
        return devices if devices > 0 else None
    if isinstance(devices, (list, tuple)):
        return len(devices) or None
    text = str(devices).strip()
    if text == "auto":
        import torch

        gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        return torch.cuda.device_count() if gpu else 1
    if "," in text:
        return len([d for d in text.split(",") if d.strip()]) or None
    return int(text) if text.isdigit() and int(text) > 0 else None
