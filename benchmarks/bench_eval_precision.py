"""The evaluation trainer in bf16 autocast against fp32: accuracy and time at IPC 1, 10 and 50.

    python benchmarks/bench_eval_precision.py [--ipc 1 10 50] [--runs 3]

Each IPC trains ConvNet-3 on the same random real subset (seed 0) under the paper preset with DSA
augmentation (1000 epochs, lr 0.01 x0.1 at half), ``--runs`` networks per precision. The runs of the
two precisions share everything that is seeded (initial weights, batch order, augmentation draws), so
the only difference between a pair of runs is the arithmetic. Cells are cached in
results/eval_precision.json: a killed run loses the cell it was in, nothing else. Writes .md too.
"""

from __future__ import annotations

import argparse
import statistics

from common import ResultBook, bf16_flags

from gendistill import load_dataset
from gendistill.evaluate import evaluate, select
from gendistill.runtime import cpu_has_fast_bf16

PRECISIONS = ("fp32", "bf16")


def cell(ipc: int, precision: str, runs: int) -> dict:
    ds = load_dataset("fashion-mnist")
    data = select(ds, "random", ipc, seed=0)
    report = evaluate(data, ds, runs=runs, preset="paper", augment="dsa", precision=precision, seed=0)
    result = report.results[0]
    return {
        "ipc": ipc,
        "precision": report.precision,
        "accuracies": result.accuracies,
        "seconds": result.seconds,
        "mean": result.mean,
        "std": result.std,
        "recipe": result.recipe,
        "subset": "random, seed 0",
        "fast_bf16_detected": cpu_has_fast_bf16(),
        "cpu_flags": bf16_flags(),
    }


def rows(book: ResultBook) -> list[dict]:
    entries = book.data["entries"]
    out = []
    for ipc in sorted({e["ipc"] for e in entries.values()}):
        pair = {p: entries.get(f"ipc{ipc}-{p}") for p in PRECISIONS}
        if None in pair.values():
            continue
        f32, b16 = pair["fp32"], pair["bf16"]
        t32, t16 = statistics.fmean(f32["seconds"]), statistics.fmean(b16["seconds"])
        out.append(
            {
                "IPC": ipc,
                "fp32 acc %": f"{100 * f32['mean']:.2f} ± {100 * f32['std']:.2f}",
                "bf16 acc %": f"{100 * b16['mean']:.2f} ± {100 * b16['std']:.2f}",
                "bf16 - fp32": f"{100 * (b16['mean'] - f32['mean']):+.2f}",
                "fp32 runs": ", ".join(f"{100 * a:.2f}" for a in f32["accuracies"]),
                "bf16 runs": ", ".join(f"{100 * a:.2f}" for a in b16["accuracies"]),
                "fp32 s/run": f"{t32:.0f}",
                "bf16 s/run": f"{t16:.0f}",
                "speed-up": f"{t32 / t16:.2f}x",
                "cpu": b16["machine"]["cpu"],
                "bf16 flags": " ".join(b16["cpu_flags"]) or "none",
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    book = ResultBook("eval_precision")
    print(f"fast bf16 detected: {cpu_has_fast_bf16()} (flags: {' '.join(bf16_flags()) or 'none'})", flush=True)
    for ipc in args.ipc:
        for precision in PRECISIONS:
            key = f"ipc{ipc}-{precision}"
            if book.done(key):
                continue
            entry = cell(ipc, precision, args.runs)
            book.add(key, entry)
            runs = ", ".join(f"{100 * a:.2f}" for a in entry["accuracies"])
            print(
                f"{key}: {100 * entry['mean']:.2f} ± {100 * entry['std']:.2f} ({runs}); "
                f"{statistics.fmean(entry['seconds']):.0f} s/run",
                flush=True,
            )
    book.write_table(
        rows(book),
        "Evaluation trainer: fp32 against bf16 autocast",
        "python benchmarks/bench_eval_precision.py",
        notes=(
            "ConvNet-3, paper preset with DSA (1000 epochs), a random real subset (seed 0), 3 runs per cell; "
            "the two precisions share initial weights, batch order and augmentation draws.",
        ),
    )


if __name__ == "__main__":
    main()
