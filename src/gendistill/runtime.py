"""Where and how tensors are computed: device choice, mixed precision, seeding."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from gendistill.errors import UserError


def pick_device(name: str | None = None) -> torch.device:
    """``None`` or ``"auto"`` -> CUDA when present, else CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' asked for but CUDA is not available; use --device cpu")
    return device


def cpu_has_fast_bf16() -> bool:
    """AMX (or AVX512-BF16) makes bf16 matmuls/convs several times faster than fp32 on CPU."""
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        return False
    if "AMX" in capability.upper():
        return True
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return "amx_bf16" in flags or "avx512_bf16" in flags
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """``"auto"`` -> bf16 autocast where the hardware runs it fast, else fp32 (``None``)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    raise UserError(f"unknown precision {precision!r}; use auto, fp32 or bf16")


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for explicit draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_threads() -> int:
    return int(os.environ.get("GENDISTILL_THREADS", "0")) or torch.get_num_threads()
