"""kill -9 at seeded random points of each long command, then the same command again (with ``--resume`` where a
checkpoint folder was left): does it end with tensors bit-identical to an uninterrupted run, and is no process
of it left running?

    python benchmarks/kill_resume.py                       # every command, 10 kills each
    python benchmarks/kill_resume.py --only distill --kills 3

Each command is small (a few seconds of work past start-up) so that kills land in start-up, in the
middle of the work, in a checkpoint write and in the artifact write alike; the kill times are drawn
uniformly over the uninterrupted run's wall time from a seeded generator. Results: results/kill_resume.json
and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DATA = ["--dataset", "fashion-mnist"]

# name -> (argv with {out}, whether it takes --resume, the folder its tensors land in, relative to {out})
COMMANDS: dict[str, tuple[list[str], bool]] = {
    "distill": (
        [
            "distill",
            "--method",
            "dm",
            "--ipc",
            "2",
            "--iterations",
            "12",
            "--checkpoint-every",
            "2",
            "--precision",
            "fp32",
            "--quiet",
            *DATA,
            "--out",
            "{out}",
        ],
        True,
    ),
    "prior-gan": (
        [
            "prior",
            "train",
            "--kind",
            "gan",
            "--steps",
            "24",
            "--checkpoint-every",
            "4",
            "--sample-every",
            "12",
            "--batch",
            "8",
            "--quiet",
            *DATA,
            "--out",
            "{out}",
        ],
        True,
    ),
    "prior-diffusion": (
        [
            "prior",
            "train",
            "--kind",
            "diffusion",
            "--steps",
            "16",
            "--checkpoint-every",
            "4",
            "--sample-every",
            "16",
            "--batch",
            "8",
            "--channels",
            "16,32",
            "--quiet",
            *DATA,
            "--out",
            "{out}",
        ],
        True,
    ),
    "invert": (
        [
            "invert",
            "--prior",
            "fashion-mnist-diffusion",
            "--per-class",
            "2",
            "--steps",
            "12",
            "--checkpoint-every",
            "2",
            "--quiet",
            *DATA,
            "--out",
            "{out}",
        ],
        True,
    ),
    "bench": (["bench", "{suite}", "--quiet"], False),
}

SUITE = """suite: kr
store: {out}/store.jsonl
workdir: {out}/work
protocols: [quick]
defaults: {{models: ["convnet[width=8]"], runs: 1, augment: none, eval_epochs: 1}}
cells:
  - {{method: dm, ipc: 1, budget: {{iterations: 10}}, options: {{checkpoint_every: 2, precision: fp32}}}}
"""


def tensors_of(folder: Path) -> dict[str, bytes]:
    """Every tensor under ``folder`` as raw bytes (named by file and key), for a bit-for-bit comparison."""
    from safetensors.numpy import load_file

    out = {}
    for f in sorted(folder.rglob("*.safetensors")):
        if ".partial" in f.parts[-2] or "checkpoint" in f.parts:
            continue
        for key, value in load_file(str(f)).items():
            out[f"{f.relative_to(folder)}:{key}"] = value.tobytes()
    return out


def launch(argv: list[str], env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gendistill.cli.main", *argv],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def argv_for(name: str, out: Path) -> list[str]:
    argv, _ = COMMANDS[name]
    if name == "bench":
        out.mkdir(parents=True, exist_ok=True)
        (out / "kr.yaml").write_text(SUITE.format(out=out))
        return [a.replace("{suite}", str(out / "kr.yaml")) for a in argv]
    return [a.replace("{out}", str(out / "x")) for a in argv]


def result_of(name: str, out: Path) -> dict[str, bytes]:
    if name == "bench":
        records = [json.loads(line) for line in (out / "store.jsonl").read_text().splitlines() if line.strip()]
        evals = [[x["mean"] for x in r["report"]["results"]] for r in records if r["type"] == "eval"]
        return {**tensors_of(out / "work"), "evals": json.dumps(evals).encode()}
    return tensors_of(out / "x")


def orphans(marker: str) -> int:
    """Processes still running whose command line names this trial's folder."""
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sum(marker in line and "kill_resume" not in line for line in ps.splitlines())


def trial(name: str, delay: float, env: dict, work: Path) -> dict:
    out = work / f"{name}-{delay:.2f}"
    argv = argv_for(name, out)
    p = launch(argv, env, work)
    time.sleep(delay)
    killed = p.poll() is None
    if killed and name == "bench":  # the bench alone: its worker must notice and end by itself
        os.kill(p.pid, signal.SIGKILL)
    elif killed:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(3.0 if name == "bench" else 0.2)  # a bench worker notices its parent's death within ~2 s
    left = orphans(str(out))
    partial = Path(f"{out / 'x'}.partial")
    finished = name != "bench" and (out / "x").is_dir() and not partial.exists()
    if finished:  # the kill came after the run had ended: nothing to rerun
        return {
            "delay": round(delay, 2),
            "killed": killed,
            "orphans": left,
            "resumed": False,
            "rc": 0,
            "error": "",
            "out": out,
            "rerun": False,
        }
    again = list(argv)
    if COMMANDS[name][1] and partial.is_dir():
        again.append("--resume")
    q = subprocess.run(
        [sys.executable, "-m", "gendistill.cli.main", *again], env=env, cwd=work, capture_output=True, text=True
    )
    return {
        "delay": round(delay, 2),
        "killed": killed,
        "orphans": left,
        "resumed": "--resume" in again,
        "rc": q.returncode,
        "error": q.stderr.strip().splitlines()[-1][:200] if q.returncode else "",
        "out": out,
        "rerun": True,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=list(COMMANDS))
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    env = {**os.environ, "GENDISTILL_THREADS": "2"}
    path = RESULTS / "kill_resume.json"
    book = json.loads(path.read_text()) if path.exists() else {}
    with tempfile.TemporaryDirectory(prefix="gd-kill-") as tmp:
        work = Path(tmp)
        for name in args.only:
            ref_dir = work / f"{name}-reference"
            t0 = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-m", "gendistill.cli.main", *argv_for(name, ref_dir)],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - t0
            if r.returncode:
                print(f"[kill] {name}: the uninterrupted run failed: {r.stderr.strip()[-300:]}", flush=True)
                continue
            reference = result_of(name, ref_dir)
            rng = random.Random(f"{args.seed}-{name}")
            rows = []
            for k in range(args.kills):
                row = trial(name, rng.uniform(0.5, wall), env, work)
                out = row.pop("out")
                same = row["rc"] == 0 and result_of(name, out) == reference
                row["identical"] = same
                rows.append(row)
                print(
                    f"[kill] {name} {k + 1}/{args.kills}: killed at {row['delay']:.1f} s of {wall:.1f} "
                    f"({'mid-run' if row['killed'] else 'after it ended'}), rerun "
                    f"{'with --resume' if row['resumed'] else 'plain' if row['rerun'] else 'not needed'}: "
                    f"{'bit-identical' if same else 'DIFFERENT ' + row['error']}, orphans {row['orphans']}",
                    flush=True,
                )
                shutil.rmtree(work / f"{name}-{row['delay']:.2f}", ignore_errors=True)
            book[name] = {
                "date": time.strftime("%Y-%m-%d"),
                "wall_s": round(wall, 1),
                "kills": len(rows),
                "identical": sum(r["identical"] for r in rows),
                "orphans": sum(r["orphans"] for r in rows),
                "trials": rows,
            }
            RESULTS.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(book, indent=1) + "\n")
            render(book)


def render(book: dict) -> None:
    lines = [
        "# kill -9, then run again",
        "",
        "`python benchmarks/kill_resume.py` (see its docstring).",
        "",
        "| command | uninterrupted wall s | kills | bit-identical after the rerun | processes left behind |",
        "|---|---|---|---|---|",
    ]
    for name, b in book.items():
        lines.append(f"| {name} | {b['wall_s']} | {b['kills']} | {b['identical']} | {b['orphans']} |")
    (RESULTS / "kill_resume.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
