"""Distillation speed in fp32 against bf16 autocast, per method, on this machine.

    python benchmarks/bench_precision.py [--only KEY ...] [--iterations 5]

For every entry both precisions run in this one process, from the same initial set and the same seeded
draws, through the engine exactly as ``distill`` runs it (compiled real-image forward where ``distill``
compiles). Seconds per iteration leave out the first iteration (it compiles); the relative loss
difference compares the first iteration's loss, whose inputs are identical in both precisions. MTT is
timed with expert trajectories of the same network trained briefly on a small subset: an MTT iteration
costs the same whatever the experts learnt from. DSA at IPC 10 is timed over ``--dsa10-outer`` of its
10 outer loops (each followed by 50 inner epochs) and scaled to the whole iteration.
Writes results/precision.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import torch
from common import ResultBook, bf16_flags

from gendistill import load_dataset
from gendistill.augment import DSA, strategy_for
from gendistill.distill import Schedule, run
from gendistill.experts import ExpertSpec, train_experts
from gendistill.methods import METHODS
from gendistill.objectives import OBJECTIVES, MatchContext
from gendistill.params import PARAMS, HGladConfig, PixelsConfig, config_name
from gendistill.runtime import cpu_has_fast_bf16

# key -> (method, ipc, parameterisation config, objective options)
ENTRIES = {
    "dm-ipc1": ("dm", 1, PixelsConfig(), {}),
    "dm-ipc10": ("dm", 10, PixelsConfig(), {}),
    "dm-ipc50": ("dm", 50, PixelsConfig(), {}),
    "dsa-ipc1": ("dsa", 1, PixelsConfig(), {}),
    "dsa-ipc10": ("dsa", 10, PixelsConfig(), {"outer_loop": 2, "inner_loop": 50}),
    "mtt-ipc10": ("mtt", 10, PixelsConfig(), {"syn_steps": 20, "expert_epochs": 2, "max_start_epoch": 1}),
    "hglad-ipc10": ("dm", 10, HGladConfig(), {}),
}


def one(dataset, key: str, amp: torch.dtype | None, iterations: int, experts: Path) -> dict:
    method, ipc, param, options = ENTRIES[key]
    spec = METHODS.get(method)
    if method == "mtt":
        options = {**options, "experts": str(experts)}
    params = PARAMS.get(config_name(param)).build(
        dataset, ipc, param, torch.Generator().manual_seed(0), torch.device("cpu"), spec.objective
    )
    params.set_precision(amp)
    objective = OBJECTIVES.get(spec.objective).from_options(ipc, options)
    augment = DSA(strategy_for(dataset.name)) if spec.augment else None
    ctx = MatchContext(dataset, "convnet", augment, seed=0, real_batch=256, compile=spec.objective == "dm", amp=amp)
    hist = run(params, objective, ctx, Schedule(iterations, spec.lr), progress=False)
    timed = hist.iteration_seconds[1:] or hist.iteration_seconds  # the first compiles
    return {"s_per_it": sum(timed) / len(timed), "losses": hist.losses, "seconds": hist.iteration_seconds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--iterations", type=int, default=5)
    args = ap.parse_args()
    dataset = load_dataset("fashion-mnist")
    book = ResultBook("precision")
    with tempfile.TemporaryDirectory() as tmp:
        # MTT's experts: ConvNet-3 trained 3 epochs on the training split's first 2,560 images (timing only)
        experts = Path(tmp) / "experts"
        small = dataclasses.replace(
            dataset, train_images=dataset.train_images[:2560], train_labels=dataset.train_labels[:2560]
        )
        train_experts(small, experts, 1, ExpertSpec(dataset.name, "convnet", epochs=3), progress=False)
        for key in ENTRIES:
            if args.only and key not in args.only or book.done(key):
                continue
            its = 2 if key.startswith("dsa") else args.iterations
            fp32 = one(dataset, key, None, its, experts)
            bf16 = one(dataset, key, torch.bfloat16, its, experts)
            rel = abs(bf16["losses"][0] - fp32["losses"][0]) / max(abs(fp32["losses"][0]), 1e-12)
            scale = 5.0 if key == "dsa-ipc10" else 1.0  # 2 of 10 outer loops timed
            record = {
                "fp32_s_per_it": fp32["s_per_it"] * scale,
                "bf16_s_per_it": bf16["s_per_it"] * scale,
                "speedup": fp32["s_per_it"] / bf16["s_per_it"],
                "rel_loss_diff_first_it": rel,
                "iterations": its,
                "fp32_losses": fp32["losses"],
                "bf16_losses": bf16["losses"],
                "fast_bf16_detected": cpu_has_fast_bf16(),
                "cpu_flags": bf16_flags(),
            }
            book.add(key, record)
            print(
                key,
                {k: record[k] for k in ("fp32_s_per_it", "bf16_s_per_it", "speedup", "rel_loss_diff_first_it")},
                flush=True,
            )
    rows = [
        {
            "entry": k,
            "fp32 s/it": f"{e['fp32_s_per_it']:.2f}",
            "bf16 s/it": f"{e['bf16_s_per_it']:.2f}",
            "speed-up": f"{e['speedup']:.2f}x",
            "rel. loss diff (it 1)": f"{e['rel_loss_diff_first_it']:.1e}",
            "cpu": e["machine"]["cpu"],
            "bf16 flags": " ".join(e["cpu_flags"]),
        }
        for k, e in book.data["entries"].items()
    ]
    book.write_table(
        rows,
        "Distillation speed: fp32 against bf16 autocast",
        "python benchmarks/bench_precision.py",
        notes=("DSA IPC 10: 2 of its 10 outer loops timed, scaled x5. MTT: 20 unrolled student steps.",),
    )


if __name__ == "__main__":
    main()
