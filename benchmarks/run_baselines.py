"""Fashion-MNIST baselines under the paper protocol: random subset, herding, cross-architecture, full data.

    python benchmarks/run_baselines.py [--only KEY ...] [--runs 3] [--full-epochs 5]

Resumable: finished entries in results/baselines.json are skipped. Renders results/baselines.md.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import ResultBook

from gendistill import load_dataset
from gendistill.artifacts import ImageSet
from gendistill.evaluate import evaluate, select
from gendistill.evaluate.baselines import _embedder, herding_order

PUBLISHED = {
    ("random", 1): 51.4,
    ("random", 10): 73.8,
    ("random", 50): 82.5,
    ("herding", 1): 67.0,
    ("herding", 10): 71.1,
    ("herding", 50): 71.9,
}


def herding_sets(dataset, ipcs: list[int], seed: int, epochs: int) -> dict[int, ImageSet]:
    """Herding is greedy, so the IPC-k set is the first k picks of the IPC-max order: one feature network
    serves every IPC (the same sets `gendistill select --method herding --ipc k` would write)."""
    gen = torch.Generator().manual_seed(seed)
    embed = _embedder(dataset, "trained", gen, epochs)
    orders = [
        idx[herding_order(embed(dataset.train_images[idx]).double(), max(ipcs))] for idx in dataset.class_indices()
    ]
    out = {}
    for k in ipcs:
        idx = torch.cat([o[:k] for o in orders])
        out[k] = ImageSet(dataset.train_images[idx], dataset.train_labels[idx], {"num_classes": 10})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--full-epochs", type=int, default=5)
    ap.add_argument("--cross-runs", type=int, default=3)
    args = ap.parse_args()
    book = ResultBook("baselines")
    dataset = load_dataset("fashion-mnist")
    herd: dict[int, ImageSet] = {}

    def run(key: str, make_data, models=("convnet",), runs=args.runs, subsets: bool = False, **kw) -> None:
        """``subsets``: every run draws its own random subset (seed = run), so the spread includes the
        choice of images, as in the published random baselines; else all runs train on one set."""
        if not book.todo(key, args.only):
            return
        t0 = time.time()
        draws = [(make_data(s), 1, s) for s in range(runs)] if subsets else [(make_data(0), runs, 0)]
        reports = [
            evaluate(d, dataset, models=list(models), runs=n, preset="paper", seed=s, progress=False, **kw)
            for d, n, s in draws
        ]
        report = reports[0]
        for other in reports[1:]:
            for mine, theirs in zip(report.results, other.results):
                mine.accuracies += theirs.accuracies
                mine.seconds += theirs.seconds
        book.add(key, {"report": report.to_dict(), "wall_s": time.time() - t0, "subset_per_run": subsets})
        print(key, [(r.model, round(100 * r.mean, 2), round(100 * r.std, 2)) for r in report.results], flush=True)

    jobs = [("random", 1), ("herding", 1), ("random", 10), ("herding", 10), ("random", 50)]
    for method, ipc in jobs:
        key = f"{method}-ipc{ipc}"
        if method == "random":
            # the choice of images dominates the spread at low IPC, so low IPCs get more subsets
            n = {1: 10, 10: 5}.get(ipc, args.runs)
            run(key, lambda s, ipc=ipc: select(dataset, "random", ipc, seed=s), runs=n, subsets=True)
            continue
        if book.done(key):
            continue
        if not herd:
            herd = herding_sets(dataset, [1, 10], seed=0, epochs=2)
        run(key, lambda s, ipc=ipc, sets=herd: sets[ipc])
    full = ImageSet(dataset.train_images, dataset.train_labels)
    run(f"full-data-{args.full_epochs}ep", lambda s: full, runs=1, epochs=args.full_epochs)
    for arch in ("vgg11", "alexnet", "vit", "resnet18"):
        run(
            f"random-ipc10-{arch}",
            lambda s: select(dataset, "random", 10, seed=s),
            models=(arch,),
            runs=args.cross_runs,
            subsets=True,
        )
    render(book)


def render(book: ResultBook) -> None:
    rows = []
    for key, rec in book.data["entries"].items():
        for r in rec["report"]["results"]:
            method, ipc = (key.split("-ipc") + [""])[:2]
            ipc = ipc.split("-")[0]
            pub = PUBLISHED.get((method, int(ipc))) if ipc.isdigit() and r["model"] == "convnet" else None
            rows.append(
                {
                    "entry": key,
                    "model": r["model"],
                    "test acc %": f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}",
                    "runs": len(r["accuracies"]),
                    "subset per run": "yes" if rec.get("subset_per_run") else "no",
                    "epochs": r["recipe"]["epochs"],
                    "published": pub if pub is not None else "",
                    "s/run": f"{sum(r['seconds']) / len(r['seconds']):.0f}",
                }
            )
    title = "Fashion-MNIST baselines (paper protocol, no augmentation)"
    book.write_table(rows, title, "python benchmarks/run_baselines.py")


if __name__ == "__main__":
    main()
