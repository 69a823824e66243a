"""Time every line of the README's command-line cheat sheet, in order, in a fresh folder, as a new user
would meet it: with an empty cache (teachers are trained on first use, as on a new machine).

    python benchmarks/cheatsheet.py            # writes benchmarks/results/cheatsheet.{json,md}

The README's cheat sheet is generated from the JSON (``python benchmarks/update_readme.py``), so each line
shows the time it took here, on the machine the JSON names. Budgets are small on purpose: each line shows
what the command does; ``docs/command-line.md`` gives the published budgets.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# (command line, what it does); run in this order: later lines read what earlier ones wrote
LINES = [
    ("gendistill datasets", "what is available and where it was found"),
    ("gendistill select --method random --ipc 10 --out runs/r10", "a random real subset, as an artifact"),
    ("gendistill select --method herding --ipc 10 --out runs/h10", "herding (trains a feature ConvNet first)"),
    ("gendistill evaluate runs/r10 --preset quick --runs 1", "quick smoke evaluation (not the paper protocol)"),
    ("gendistill distill --method dm --ipc 10 --iterations 200 --out runs/dm10", "DM pixels"),
    ("gendistill distill --config runs/dm10 --iterations 400 --out runs/dm10-400", "the same run, longer"),
    (
        "gendistill distill --method dm --param hglad --select crfd --ipc 10 --iterations 100 --out runs/hglad10",
        "H-GLaD on the shipped GAN (make run's job)",
    ),
    ("gendistill crfd runs/hglad10", "H-GLaD's class-relevant feature distance"),
    ("gendistill distill --method dcgm --ipc 10 --iterations 50 --out runs/dcgm10", "DCGM: a generator + codes"),
    ("gendistill sample runs/dcgm10 --ipc 50 --out runs/dcgm10-ipc50", "any IPC from the one stored model"),
    ("gendistill experts --num 2 --epochs 3 --out runs/experts", "MTT's expert trajectories (small)"),
    (
        "gendistill distill --method mtt --experts runs/experts --set max_start_epoch=1 --ipc 10 --iterations 30 "
        "--out runs/mtt10",
        "MTT on them",
    ),
    ("gendistill invert --per-class 10 --steps 50 --out runs/inv10", "Diffusion Inversion, shipped diffusion prior"),
    ("gendistill generate runs/inv10 --ipc 10 --out runs/di10", "IPC 10 sampled from class modes"),
    ("gendistill export runs/dm10 --png runs/dm10-png", "PNGs + grid.png"),
    ("gendistill prior train --steps 200 --out runs/prior", "a StyleGAN prior (the shipped one: 4,000 steps)"),
    ("gendistill full-data --epochs 1", "the full-data reference, one epoch"),
]


QUIET = {"select", "evaluate", "distill", "experts", "invert", "generate", "full-data", "prior"}  # have bars


def main() -> int:
    gendistill = Path(sys.executable).parent / "gendistill"
    results = []
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "GENDISTILL_CACHE": f"{work}/cache"}  # no teacher trained by an earlier run
        for line, what in LINES:
            words = shlex.split(line)[1:]
            argv = [str(gendistill), *words, *(["--quiet"] if words[0] in QUIET else [])]
            t0 = time.perf_counter()
            done = subprocess.run(argv, cwd=work, capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - t0
            print(f"{seconds:7.1f} s  {line}", flush=True)
            if done.returncode:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            results.append({"command": line, "what": what, "seconds": round(seconds, 1)})
    machine = {"cpu": _cpu(), "threads": os.cpu_count(), "python": platform.python_version()}
    record = {"machine": machine, "commit": _commit(), "lines": results}
    (RESULTS / "cheatsheet.json").write_text(json.dumps(record, indent=1) + "\n")
    rows = "\n".join(f"| `{r['command']}` | {r['seconds']:.0f} s | {r['what']} |" for r in results)
    (RESULTS / "cheatsheet.md").write_text(
        f"# The README's cheat sheet, timed\n\n{machine['cpu']}, {machine['threads']} threads, commit "
        f"{record['commit']}: `python benchmarks/cheatsheet.py`.\n\n| command | time | what |\n|---|---|---|\n{rows}\n"
    )
    return 0


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
