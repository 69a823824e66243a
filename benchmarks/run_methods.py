"""Fashion-MNIST distillation methods (pixel space) under the evaluation protocol; DM time to accuracy.

    python benchmarks/run_methods.py [--only KEY ...] [--runs 3] [--cross-runs 1]

Resumable twice over: a distillation killed part-way continues from its checkpoints (benchmarks/runs/),
and finished entries in results/methods.json are skipped. Renders results/methods.md and commits the
grids of the distilled sets to results/grids/.

Entries:
- ``dm-ipc10-{5,10,30}min``: DM at IPC 10 (real init, 256 real images per class, seed 0) snapshotted
  after 5, 10 and 30 minutes of distillation compute on this machine, each evaluated with a 300-epoch
  DSA training of ConvNet-3 (the setting of the reference's 80.7% after 20 minutes).
- ``<method>-ipc<k>``: the paper preset (1000 epochs with DSA, 300 without), ConvNet-3.
- ``<method>-ipc10-<arch>``: cross-architecture evaluation of the same set.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from common import RESULTS, ResultBook

from gendistill import load, load_dataset
from gendistill.artifact import make_meta
from gendistill.evaluate import evaluate
from gendistill.methods import distill

RUNS = Path(__file__).parent / "runs"
GRIDS = RESULTS / "grids"
PUBLISHED = {("dc", 1): 70.5, ("dc", 10): 82.3, ("dsa", 1): 70.6, ("dsa", 10): 84.6}
SNAPSHOT_MINUTES = (5, 10, 30)


def dm_with_snapshots(dataset, out: Path) -> Path:  # noqa: ANN001
    """DM IPC 10 for 30 minutes of compute, writing the set as it was after 5 and 10 minutes beside it."""
    if (out / "meta.json").is_file():
        return out

    def snapshot(done: int, params, history) -> bool:  # noqa: ANN001
        for minutes in SNAPSHOT_MINUTES[:-1]:
            path = out.with_name(f"{out.name}-{minutes}min")
            if history.seconds >= 60 * minutes and not path.exists():
                meta = make_meta("dm", dataset, 10, {"snapshot_iteration": done, "seconds": history.seconds}, 0)
                params.to_synthetic_set(meta).save(path)
        return history.seconds >= 60 * SNAPSHOT_MINUTES[-1]

    partial = out.with_name(out.name + ".partial")
    distill(dataset, "dm", 10, out, iterations=1_000_000, real_batch=256, checkpoint_every=10,
            resume=partial.exists(), on_iteration=snapshot, compile=True)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    book = ResultBook("methods")
    dataset = load_dataset("fashion-mnist")
    RUNS.mkdir(exist_ok=True)
    GRIDS.mkdir(exist_ok=True)

    def run(key: str, path: Path, models=("convnet",), epochs: int | None = None) -> None:  # noqa: ANN001
        if book.done(key) or (args.only and key not in args.only):
            return
        synthetic = load(path)
        shutil.copyfile(path / "grid.png", GRIDS / f"{path.name}.png")
        t0 = time.time()
        report = evaluate(synthetic, dataset, models=list(models), runs=args.runs, preset="paper",
                          augment=synthetic.meta.get("eval_augment", "dsa"), epochs=epochs, progress=False)  # fmt: skip
        hist, config = synthetic.meta.get("history", {}), synthetic.meta["config"]
        book.add(key, {"report": report.to_dict(), "wall_s": time.time() - t0, "artifact": path.name,
                       "distill_seconds": config.get("seconds", hist.get("distill_seconds")),
                       "iterations": config.get("snapshot_iteration", len(hist.get("loss", [])))})  # fmt: skip
        print(key, [(r.model, round(100 * r.mean, 2), round(100 * r.std, 2)) for r in report.results], flush=True)

    final = dm_with_snapshots(dataset, RUNS / "dm-ipc10")
    for minutes in SNAPSHOT_MINUTES:
        path = final if minutes == SNAPSHOT_MINUTES[-1] else final.with_name(f"{final.name}-{minutes}min")
        run(f"dm-ipc10-{minutes}min", path, epochs=300)
    run("dm-ipc10", final)
    render(book)


def render(book: ResultBook) -> None:
    rows = []
    for key, rec in book.data["entries"].items():
        method, ipc = key.split("-ipc")[0], int(key.split("-ipc")[1].split("-")[0])
        for r in rec["report"]["results"]:
            rows.append({
                "entry": key,
                "model": r["model"],
                "test acc %": f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}",
                "runs": len(r["accuracies"]),
                "eval epochs": r["recipe"]["epochs"],
                "eval aug": r["recipe"]["augment"],
                "published": PUBLISHED.get((method, ipc), "") if r["model"] == "convnet" else "",
                "iterations": rec.get("iterations", ""),
                "distill s": f"{rec['distill_seconds']:.0f}" if rec.get("distill_seconds") else "",
            })  # fmt: skip
    book.write_table(rows, "Fashion-MNIST distillation in pixel space (ConvNet-3 matching)",
                     "python benchmarks/run_methods.py")  # fmt: skip


if __name__ == "__main__":
    main()
