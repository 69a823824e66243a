"""DM iteration time: the reference's per-class loop against gendistill's objective, in one run.

    python benchmarks/bench_dm.py [--iterations 5] [--ipc 10] [--real-batch 256]

Both compute the same loss on the same inputs (Fashion-MNIST, ConvNet-3, siamese DSA, one fresh network
per iteration, identical real batches and augmentation draws): the reference way runs one forward pass
per class in fp32, builds a graph for the real images and detaches it, in a fresh process with default
allocator settings, exactly as the VICO-UoE code does; gendistill's embeds the real images without a
graph through a compiled forward (compilation is warmed up untimed: a real run amortises its ~12 s).
The script checks the losses agree and prints seconds per iteration and the ratio.
Writes results/dm_speed.json and .md.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import ResultBook

from gendistill import load_dataset
from gendistill.augment import DSA
from gendistill.bench.runner import isolated
from gendistill.objectives import MatchContext
from gendistill.objectives.dm import DistributionMatching
from gendistill.params import Pixels


def _setup(ipc: int, real_batch: int):
    ds = load_dataset("fashion-mnist")
    params = Pixels.create(ds, ipc, "real", torch.Generator().manual_seed(0))
    ctx = MatchContext(ds, "convnet", DSA(), torch.device("cpu"), seed=0, real_batch=real_batch)
    return params, ctx


def reference_loop(ipc: int, real_batch: int, iterations: int) -> tuple[list[float], float]:
    """The reference algorithm, one class at a time, as the public DM code does it."""
    params, ctx = _setup(ipc, real_batch)
    opt = torch.optim.SGD(params.parameters(), lr=1.0, momentum=0.5)
    losses, t0 = [], time.perf_counter()
    for it in range(iterations):
        net = ctx.fresh_model(it)
        net.train()
        for p in net.parameters():
            p.requires_grad = False
        loss = torch.tensor(0.0)
        for c in range(ctx.dataset.num_classes):
            g = ctx.rng(it, c)
            real, syn = ctx.real_batch_of(c, g), params.images[params.labels == c]
            real, syn = ctx.augment.siamese(real, syn, generator=g)
            output_real = net.embed(real).detach()
            output_syn = net.embed(syn)
            loss = loss + torch.sum((output_real.mean(0) - output_syn.mean(0)) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses, (time.perf_counter() - t0) / iterations


def gendistill_loop(ipc: int, real_batch: int, iterations: int) -> tuple[list[float], float]:
    from gendistill.distill import Schedule, run

    params, ctx = _setup(ipc, real_batch)
    ctx.compile = True
    warm = Pixels.create(ctx.dataset, ipc, "real", torch.Generator().manual_seed(0))
    run(warm, DistributionMatching(ipc), ctx, Schedule(1, lr=1.0), progress=False)  # compile, untimed
    hist = run(params, DistributionMatching(ipc), ctx, Schedule(iterations, lr=1.0), progress=False)
    return hist.losses, hist.seconds / iterations


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--real-batch", type=int, default=256)
    args = ap.parse_args()
    (ref_losses, ref_s), _ = isolated(reference_loop, args.ipc, args.real_batch, args.iterations)
    ours_losses, ours_s = gendistill_loop(args.ipc, args.real_batch, args.iterations)
    gap = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(ref_losses, ours_losses))
    print(f"reference per-class loop: {ref_s:.2f} s/iteration; losses {[round(v, 4) for v in ref_losses]}")
    print(f"gendistill DM objective:  {ours_s:.2f} s/iteration; losses {[round(v, 4) for v in ours_losses]}")
    print(f"speed-up {ref_s / ours_s:.2f}x, largest relative loss difference {gap:.2e}")
    book = ResultBook("dm_speed")
    book.add(
        f"fmnist-ipc{args.ipc}-rb{args.real_batch}",
        {
            "reference_s_per_it": ref_s,
            "gendistill_s_per_it": ours_s,
            "speedup": ref_s / ours_s,
            "max_rel_loss_diff": gap,
            "iterations": args.iterations,
            "reference_losses": ref_losses,
            "gendistill_losses": ours_losses,
        },
    )
    rows = [
        {
            "setting": k,
            "reference s/it": f"{e['reference_s_per_it']:.2f}",
            "gendistill s/it": f"{e['gendistill_s_per_it']:.2f}",
            "speed-up": f"{e['speedup']:.2f}x",
            "max rel. loss diff": f"{e['max_rel_loss_diff']:.1e}",
            "cpu": e["machine"]["cpu"],
        }
        for k, e in book.data["entries"].items()
    ]
    book.write_table(rows, "DM iteration time: reference per-class loop vs gendistill", "python benchmarks/bench_dm.py")


if __name__ == "__main__":
    main()
