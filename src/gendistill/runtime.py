"""Where and how tensors are computed: device choice, mixed precision, seeding."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch

from gendistill.errors import UserError


def pick_device(name: str | None = None) -> torch.device:
    """``None`` or ``"auto"`` -> CUDA when present, else CPU. On CUDA, ``GENDISTILL_DETERMINISTIC=1``
    makes the backend repeatable (see :func:`deterministic_cuda`)."""
    if name in (None, "auto"):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError("device 'cuda' asked for but CUDA is not available; use --device cpu")
    if device.type == "cuda" and os.environ.get("GENDISTILL_DETERMINISTIC") == "1":
        deterministic_cuda()
    return device


def deterministic_cuda() -> None:
    """Make CUDA runs repeat exactly on one GPU and software stack, at some cost in speed.

    Every random draw of gendistill is made on a CPU generator and then moved, so the draws themselves
    are the same on every device. What differs on CUDA is the arithmetic: cuDNN picks kernels by
    benchmark, some kernels accumulate with atomics in any order, cuBLAS splits work by workspace, and
    convolutions default to TF32. This turns each of those off; a kernel with no deterministic version
    then warns instead of failing. Results still differ from the CPU's in the last bits (other kernels),
    so a GPU run is repeatable, never bit-identical to a CPU run.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS first initialises
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)


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


def local_device(device: torch.device) -> torch.device:
    """Under torchrun, a CUDA device without an index is this rank's own GPU (``LOCAL_RANK``)."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


@dataclass(frozen=True)
class Runtime:
    """Where a run computes and in what precision, resolved once from what the user asked ("auto", "cpu",
    "cuda:1"; "auto", "fp32", "bf16") and passed down, so every part of a command agrees."""

    device: torch.device
    amp: torch.dtype | None  # None: fp32; torch.bfloat16: bf16 autocast

    @classmethod
    def resolve(cls, device: str | torch.device | None = "auto", precision: str = "auto") -> Runtime:
        """Under torchrun a CUDA run takes its local rank's GPU."""
        dev = local_device(device if isinstance(device, torch.device) else pick_device(device))
        return cls(dev, resolve_precision(precision, dev))

    @property
    def precision(self) -> str:
        """What "auto" became: ``"bf16"`` or ``"fp32"``."""
        return "bf16" if self.amp is not None else "fp32"


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


HEADROOM = 0.9  # refuse when an estimate exceeds this share of the memory available now


def available_bytes(device: torch.device | None = None) -> int | None:
    """Memory free for this process now: the GPU's free memory, or Linux's MemAvailable."""
    if device is not None and device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def saved_bytes(fn: Callable[[], torch.Tensor]) -> tuple[int, torch.Tensor]:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs, and what it returned."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return total, out


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every element of every tensor is finite: one reduction a tensor, then a single read of the
    result (the engine asks after every step, and on a GPU each read would wait for the device)."""
    flags = [torch.isfinite(t.detach()).all() for t in tensors]
    return not flags or bool(torch.stack(flags).all())


def check_memory(needed: int, what: str, fix: str, device: torch.device | None = None, free: int | None = None) -> None:
    """Refuse, before any work, something estimated to need more than ``free`` bytes (default: the memory
    free on ``device`` now)."""
    free = free if free is not None else available_bytes(device)
    if free is not None and needed > HEADROOM * free:
        gb = 2**30
        raise UserError(f"{what} needs about {needed / gb:.1f} GB, more than the {free / gb:.1f} GB available; {fix}")


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across runs, processes and platforms."""
    digest = hashlib.blake2b(",".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def default_threads() -> int:
    return int(os.environ.get("GENDISTILL_THREADS", "0")) or torch.get_num_threads()
