"""Where and how tensors are computed: device choice, mixed precision, seeding."""

from __future__ import annotations

import contextlib
import hashlib
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


def cpu_has_fast_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """AMX (or AVX512-BF16) makes bf16 matmuls/convs several times faster than fp32 on CPU: torch's CPU
    capability, else the flags in ``cpuinfo``."""
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        return False
    if "AMX" in capability.upper():
        return True
    with contextlib.suppress(OSError):
        with open(cpuinfo) as f:
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


_ALLOCATOR_TUNED = False
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameter numbers (malloc.h)


def tune_cpu_allocator() -> bool:
    """Keep freed activation memory in the process instead of returning it to the kernel.

    glibc serves every allocation above 32 MiB with a fresh mmap and unmaps it on free, so each training
    step page-faults its large activations in again (a ConvNet-3 step on 100 Fashion-MNIST images
    allocates several 52 MB tensors). Serving them from the heap and never trimming it made that step
    1.5-1.7x faster and a 10k-image test pass 1.8x faster on the project's 2-core machine
    (benchmarks/bench_eval_trainer.py). It changes no numbers. Set GENDISTILL_MALLOC=system to opt out;
    it is a no-op off glibc.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED or os.environ.get("GENDISTILL_MALLOC") == "system":
        return _ALLOCATOR_TUNED
    # Gradients of a converging network underflow into subnormal floats, which x86 cores process
    # ~100x slower; flushing them to zero cost no accuracy and sped real-data steps up ~10% here.
    torch.set_flush_denormal(True)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**30) == 1
    except (OSError, AttributeError):
        ok = False
    _ALLOCATOR_TUNED = ok
    return ok


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across runs, processes and platforms."""
    digest = hashlib.blake2b(",".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for explicit draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_threads() -> int:
    return int(os.environ.get("GENDISTILL_THREADS", "0")) or torch.get_num_threads()
