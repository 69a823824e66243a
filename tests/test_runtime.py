"""Runtime choices: what ``--precision auto`` resolves to, read from the CPU, and that fp32 is then untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from gendistill import runtime
from gendistill.methods import RunOptions, distill

NET = "convnet[width=16]"


@pytest.mark.parametrize(
    ("capability", "flags", "fast"),
    [
        ("AVX2", "fpu sse avx2 fma", False),
        ("AVX512", "fpu avx512f avx512bw", False),
        ("AVX512", "fpu avx512f avx512_bf16", True),  # AMD EPYC (Zen 4) and Intel Cooper Lake
        ("AVX512", "fpu avx512f amx_tile amx_bf16", True),
        ("AMX", "", True),
    ],
)
def test_fast_bf16_is_read_from_the_cpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capability: str, flags: str, fast: bool
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert runtime.cpu_has_fast_bf16(str(cpuinfo)) is fast


def test_auto_on_a_cpu_without_fast_bf16_is_exactly_fp32(
    monkeypatch: pytest.MonkeyPatch,
    tiny,
    tmp_path: Path,
) -> None:
    opts = {"iterations": 3, "lr": 1.0, "real_batch": 8, "model": NET, "seed": 1}
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda *a: False)
    assert runtime.resolve_precision("auto", torch.device("cpu")) is None
    auto = distill(tiny, "dm", 2, tmp_path / "auto", None, RunOptions(**opts, precision="auto"), progress=False)
    fp32 = distill(tiny, "dm", 2, tmp_path / "fp32", None, RunOptions(**opts, precision="fp32"), progress=False)
    assert auto.meta["config"]["precision"] == "fp32"
    assert torch.equal(auto.images, fp32.images)


def test_deterministic_cuda_turns_off_every_nondeterministic_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from gendistill.runtime import deterministic_cuda

    before = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        deterministic_cuda()
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        (
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32,
        ) = before[:4]
        torch.use_deterministic_algorithms(before[4], warn_only=before[5])
