"""DCGM-style: one generator set distilled for a time budget, evaluated under the readings of IPC.

    python benchmarks/run_dcgm.py [--method dcgm|dim] [--minutes 10] [--cells a1 a10 b10 a50] [--epochs N]

One ``--method dcgm`` run at stored IPC 10 (the shipped prior fine-tuned, DM matching, intra and inter
regularisers at their defaults; ``--precision auto``) for ``--minutes`` of distillation compute, resumable;
``--method dim``: the DiM-style baseline on the same generator and budget.
Each cell then evaluates it with ConvNet-3 (the paper preset with DSA unless ``--epochs``; 3 runs):
``aN`` is reading (a) at IPC N (a fixed set sampled once: stored codes first, then fresh ones), ``bN``
reading (b) (fresh class-balanced samples every epoch, the iterations of aN). Every cell records the
stored bytes and the storage-equivalent IPC (reading c). Beside them, DM pixels from results/methods.json
where that entry was measured. Writes results/dcgm.json and .md; the fixed set's grid goes to results/grids.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from common import RESULTS, ResultBook, val_search
from run_methods import distill_for

from gendistill import load, load_dataset
from gendistill.evaluate import evaluate
from gendistill.evaluate.readings import storage_ipc, training_data
from gendistill.methods import RunOptions, distill
from gendistill.params import GeneratorConfig

RUNS = Path(__file__).parent / "runs" / "dcgm"
READING = {"a": "fixed", "b": "fresh"}
# The validation search: one setting changed at a time from the first row (the design's starting point):
# (generator settings, regulariser weights)
SEARCH = {
    "start": ({}, {"intra": 1.0, "inter": 1.0}),
    "lr_g-1e-3": ({"lr_g": 1e-3}, {"intra": 1.0, "inter": 1.0}),
    "lr_g-1e-5": ({"lr_g": 1e-5}, {"intra": 1.0, "inter": 1.0}),
    "lr_codes-1e-1": ({"lr_codes": 1e-1}, {"intra": 1.0, "inter": 1.0}),
    "fresh-0": ({"fresh": 0.0}, {"intra": 1.0, "inter": 1.0}),
    "no-reg": ({}, {"intra": 0.0, "inter": 0.0}),
}


def search(book: ResultBook, dataset, names: list[str], iterations: int) -> str:  # noqa: ANN001
    """DCGM at IPC 10 for ``iterations`` with each named setting, scored on the validation split."""

    def distill_one(name: str):  # noqa: ANN202
        given, regs = SEARCH[name]
        out = RUNS / f"search-{name}-{iterations}it"
        if not (out / "config.json").is_file():
            run = RunOptions(iterations=iterations, checkpoint_every=10, precision="auto",
                             regularisers=tuple(regs.items()))  # fmt: skip
            partial = out.with_name(out.name + ".partial")
            distill(dataset, "dcgm", 10, out, GeneratorConfig(**given), run, resume=partial.exists(), progress=False)
        hist = load(out).meta["history"]
        return out, {"settings": given, "regularisers": regs, "iterations": iterations,
                     "distill_seconds": hist["distill_seconds"]}  # fmt: skip

    return val_search(book, f"search-{iterations}it", names, distill_one, dataset)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=["dcgm", "dim"], default="dcgm")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--cells", nargs="+", default=["a1", "a10", "b10"])
    ap.add_argument("--epochs", type=int, help="evaluation epochs (default: the paper preset's 1000 with DSA)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--search", nargs="*", choices=list(SEARCH), help="score these settings on the validation split")
    ap.add_argument("--search-iterations", type=int, default=150)
    args = ap.parse_args()
    book = ResultBook("dcgm")
    dataset = load_dataset("fashion-mnist")
    if args.search is not None:
        best = search(book, dataset, args.search or list(SEARCH), args.search_iterations)
        print(f"best on validation: {best}")
        return render(book)
    run_key = f"{args.method}-ipc10-{args.minutes:g}min"
    out = RUNS / run_key
    if not book.done(run_key):
        distill_for(dataset, args.method, 10, out, args.minutes, precision="auto")
        artifact = load(out)
        hist = artifact.meta["history"]
        book.add(run_key, {"iterations": len(hist["loss"]), "distill_seconds": hist["distill_seconds"],
                           "storage_bytes": artifact.storage_bytes(), "config": artifact.meta["config"]})  # fmt: skip
        (RESULTS / "grids").mkdir(exist_ok=True)
        shutil.copyfile(out / "grid.png", RESULTS / "grids" / f"{run_key}.png")
    artifact = load(out)
    for cell in args.cells:
        key = f"{run_key}-{cell}" + (f"-{args.epochs}ep" if args.epochs else "")
        if book.done(key):
            continue
        reading, ipc = READING[cell[0]], int(cell[1:])
        data, label = training_data(artifact, reading, ipc, seed=0)
        report = evaluate(data, dataset, runs=args.runs, augment="dsa", epochs=args.epochs, progress=False)
        book.add(key, {"run": run_key, "reading": reading, "ipc": ipc, "label": label, "report": report.to_dict(),
                       "storage_bytes": artifact.storage_bytes(),
                       "storage_ipc": storage_ipc(artifact.storage_bytes(), dataset)})  # fmt: skip
        r = report.results[0]
        print(f"{key}: {100 * r.mean:.2f} ± {100 * r.std:.2f}", flush=True)
    render(book)


def render(book: ResultBook) -> None:
    entries = book.data["entries"]
    dm = ResultBook("methods").data["entries"]
    rows = []
    for key, e in entries.items():
        if "report" not in e:
            continue
        run = entries[e["run"]]
        r = e["report"]["results"][0]
        pixels = dm.get(f"dm-ipc{e['ipc']}")
        rows.append({
            "cell": key,
            "reading": f"({'a' if e['reading'] == 'fixed' else 'b'}) {e['reading']}",
            "IPC": e["ipc"],
            "acc %": f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}",
            "epochs": r["recipe"]["epochs"],
            "stored bytes": f"{e['storage_bytes']:,}",
            "storage-eq. IPC (c)": f"{e['storage_ipc']:.1f}",
            "distillation": f"{run['iterations']} its, {run['distill_seconds'] / 60:.1f} min",
            "DM pixels, same IPC": (f"{100 * pixels['report']['results'][0]['mean']:.2f} "
                                    f"({pixels['distill_seconds'] / 60:.0f} min)") if pixels else "",
        })  # fmt: skip
    book.write_table(rows, "DCGM-style and DiM-style generator sets under the readings of IPC",
                     "python benchmarks/run_dcgm.py [--method dim]",
                     notes=("ConvNet-3, DSA training, 3 runs, test split, final epoch. Stored IPC 10; reading (a) "
                            "samples the stored codes first, then fresh ones; (b) draws fresh class-balanced "
                            "samples every epoch. DM pixels: results/methods.json, the paper preset.",))  # fmt: skip


if __name__ == "__main__":
    main()
