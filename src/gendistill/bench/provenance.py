"""Where a number came from: the machine and the code that measured it, recorded beside every result."""

from __future__ import annotations

import contextlib
import platform
import subprocess
import time
from pathlib import Path

import torch

PACKAGE = Path(__file__).resolve().parent.parent


def machine() -> dict:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    out = {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name()
    return out


def git_commit() -> str:
    """The short commit of the checkout this gendistill runs from, ``+dirty`` when its sources differ from it;
    ``unknown`` for an installed copy outside git."""
    try:
        commit = subprocess.check_output(
            ["git", "-C", str(PACKAGE), "rev-parse", "--short", "HEAD"], text=True, stderr=subprocess.DEVNULL
        ).strip()
        dirty = subprocess.run(
            ["git", "-C", str(PACKAGE), "diff", "--quiet", "HEAD", "--", "."], stderr=subprocess.DEVNULL
        ).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty == 1 else "")


def stamp() -> dict:
    return {"commit": git_commit(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine()}
