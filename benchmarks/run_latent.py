"""Latent distillation on Fashion-MNIST: the shipped prior, pixels vs GLaD vs H-GLaD, and CRFD's claim.

    python benchmarks/run_latent.py [--only STEP ...] [--iterations 100] [--cross-runs 1] [--cross-epochs 100]

Steps (each resumable; finished entries in results/latent.json are skipped):
- ``prior``: train the built-in StyleGAN on Fashion-MNIST into the package's shipped weights (fp16),
  then its quality: accuracy of a real-data ConvNet-3 on 1,000 samples per class and the Fréchet
  distance in that network's embedding (``gendistill prior eval fashion-mnist``).
- ``hglad-lrf-<v>``: H-GLaD (DM) at IPC 10 with feature-map learning rate v (GLaD's 10 first), scored on
  the validation split; the best one serves every latent run below.
- ``glad-layer-<k>``: GLaD (DM) at IPC 10 with the feature map at layer k (``--search-iterations``),
  scored on the validation split (never the test set); the best layer is GLaD's entry below.
- ``<param>-ipc<n>``: DM with the same iteration budget for pixels, GLaD at its best layer and H-GLaD
  (CRFD snapshot selection), IPC 1 and 10: ConvNet-3 test accuracy (``--runs``, 300-epoch DSA training),
  the cross-architecture accuracy (ResNet-18, VGG-11, AlexNet, ViT; ``--cross-runs`` each), the
  distillation time and the peak resident memory of the distilling process.
- ``crfd``: CRFD against accuracy over snapshots of real GLaD and H-GLaD runs (Spearman rank correlation),
  and the time of one CRFD next to one evaluation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, ResultBook, is_artifact, network_cell, over_networks, val_search
from common import RUNS as COMMON_RUNS

from gendistill import load, load_dataset
from gendistill.bench.runner import isolated
from gendistill.evaluate import evaluate
from gendistill.evaluate.crfd import CRFD
from gendistill.io import partial_dir, write_json
from gendistill.models import POOLS
from gendistill.params import GladConfig, HGladConfig, LatentConfig
from gendistill.params.latent import LATENT_LR
from gendistill.priors import WEIGHTS
from gendistill.report import render_table

RUNS = COMMON_RUNS / "latent"
GRIDS = RESULTS / "grids"
PRIOR = WEIGHTS / "fashion-mnist"
CROSS = POOLS.get("cross")  # with each network's registered recipe (evaluate.recipe.ARCH_RECIPES)
EVAL_EPOCHS = 300  # DSA training epochs of every evaluation here (the paper preset's 1000 is 3x the CPU)


def train_prior(steps: int) -> dict:
    from gendistill.priors.stylegan import StyleGANConfig
    from gendistill.priors.train import GanRecipe, GanTrainer

    dataset = load_dataset("fashion-mnist")
    cfg = StyleGANConfig(10, 28, 1, channel_base=512, channel_max=64)
    trainer = GanTrainer(
        dataset, cfg, GanRecipe(steps=steps, batch=32, d_channel_base=512, d_channel_max=64), 0, torch.device("cpu")
    )
    partial = partial_dir(RUNS / "prior")
    trainer.run(partial)
    extra = {"dataset": "fashion-mnist", "steps": trainer.step, "train_seconds": round(trainer.seconds, 1)}
    trainer.G_ema.save_pretrained(PRIOR, torch.float16, force=True, extra_config=extra)
    shutil.copyfile(sorted((partial / "samples").glob("*.png"))[-1], GRIDS / "prior-samples.png")
    return {
        "train_seconds": trainer.seconds,
        "steps": trainer.step,
        "config": extra,
        "bytes": (PRIOR / "model.safetensors").stat().st_size,
    }


def _distill_child(kw: dict, snap_every: int = 0) -> dict:
    from gendistill.io import save_tensors
    from gendistill.methods import RunOptions, distill

    snaps = Path(kw["out"] + ".snaps")
    if snap_every:
        snaps.mkdir(exist_ok=True)

    def keep(done: int, params, history) -> None:
        if snap_every and done % snap_every == 0:  # rendered images along the run, for the CRFD study
            with torch.no_grad():
                save_tensors({"images": params.render().contiguous()}, snaps / f"{done:05d}.safetensors")

    dataset = load_dataset("fashion-mnist")
    t0 = time.perf_counter()
    space = kw.pop("space")
    run = RunOptions(iterations=kw.pop("iterations"), checkpoint_every=kw.pop("checkpoint_every"))
    distill(dataset, "dm", kw.pop("ipc"), kw.pop("out"), space, run, progress=False, on_iteration=keep, **kw)
    return {"wall_s": time.perf_counter() - t0}


def distill_measured(out: Path, snap_every: int = 0, **kw) -> dict:
    """Distil in a fresh process, so its peak resident memory is its own; the figures are kept beside
    the artifact (``<out>.bench.json``) for reruns that find it done. ``snap_every`` > 0 also stores the
    rendered set every that many iterations in ``<out>.snaps/``."""
    record = out.with_name(out.name + ".bench.json")
    if is_artifact(out) and record.is_file():
        return json.loads(record.read_text())
    kw = {"out": str(out), "checkpoint_every": 20, "resume": partial_dir(out).exists(), **kw}
    timing, peak = isolated(_distill_child, kw, snap_every)
    measured = {**timing, "peak_rss_mb": peak["peak_rss_mb"]}
    write_json(record, measured)
    return measured


def ship_latent_lr(objective: str, lr_f: float, lr_w: float) -> None:
    """Record the validation-chosen learning rates in the shipped prior's config, where ``--param glad|hglad``
    finds them when the user sets none (``gendistill.priors.recommended_lr``)."""
    config = json.loads((PRIOR / "config.json").read_text())
    config.setdefault("latent_lr", {})[objective] = [lr_f, lr_w]
    config["latent_lr_source"] = "chosen on the validation split by benchmarks/run_latent.py"
    write_json(PRIOR / "config.json", config)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--prior-steps", type=int, default=4000)
    # defaults sized for a 2-core CPU session: the main job's budget, a 3-layer search, a 100-epoch cross column
    ap.add_argument("--iterations", type=int, default=100, help="DM iterations of every distillation")
    ap.add_argument("--layers", default="-1,2,4", help="GLaD layers searched on the validation split (-1: w+ only)")
    ap.add_argument("--search-iterations", type=int, default=60, help="DM iterations per searched setting")
    ap.add_argument("--lr-f", default="10,1,0.1,0.01", help="feature-map learning rates searched on validation")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cross-runs", type=int, default=3)
    ap.add_argument(
        "--cross-epochs",
        type=int,
        default=100,
        help="DSA training epochs of the cross-architecture evaluations (ResNet-18 costs ~17 min per "
        "300-epoch run at IPC 10 on a 2-core CPU)",
    )
    ap.add_argument("--snapshots", type=int, default=10, help="snapshots per GLaD/H-GLaD IPC 10 run for the CRFD study")
    args = ap.parse_args()
    book = ResultBook("latent")
    RUNS.mkdir(parents=True, exist_ok=True)
    GRIDS.mkdir(parents=True, exist_ok=True)

    if book.todo("prior", args.only):
        record = train_prior(args.prior_steps)
        from gendistill.evaluate.prior_quality import prior_quality
        from gendistill.priors import load_prior

        record["quality"] = prior_quality(load_prior("fashion-mnist"), load_dataset("fashion-mnist"))
        book.add("prior", record)
    dataset = load_dataset("fashion-mnist")

    def searched(prefix: str, values: list, make_space):
        def distill_one(v):
            out = RUNS / f"{prefix}-{v}-ipc10"
            return out, distill_measured(out, ipc=10, iterations=args.search_iterations, space=make_space(v))

        return val_search(book, prefix, values, distill_one, dataset, args.only, EVAL_EPOCHS)

    # GLaD's feature-map learning rates were tuned for StyleGAN-XL's feature scale: choose ours on val
    lr_f = searched(
        "hglad-lrf",
        [float(v) for v in args.lr_f.split(",")],
        lambda v: HGladConfig("fashion-mnist", lr_f=v, select="crfd"),
    )
    ship_latent_lr("dm", lr_f, LATENT_LR["dm"][1])

    def space(name: str, layer: int | None = None) -> LatentConfig:
        config = HGladConfig if name == "hglad" else GladConfig
        return config("fashion-mnist", layer, lr_f=lr_f, select="crfd" if name == "hglad" else "none")

    best_layer = searched("glad-layer", [int(v) for v in args.layers.split(",")], lambda k: space("glad", k))

    for ipc in (10, 1):  # IPC 10 first: the cross-architecture claim and run_cross.py need those sets
        for name, sp in (("pixels", None), ("glad", space("glad", best_layer)), ("hglad", space("hglad"))):
            key = f"{name}-ipc{ipc}"
            if not book.todo(key, args.only):
                continue
            out = RUNS / key
            snap_every = args.iterations // args.snapshots if ipc == 10 and sp is not None else 0
            bench = distill_measured(out, snap_every, ipc=ipc, iterations=args.iterations, space=sp)
            synthetic = load(out)
            shutil.copyfile(out / "grid.png", GRIDS / f"latent-{key}.png")
            conv = evaluate(synthetic, dataset, runs=args.runs, augment="dsa", epochs=EVAL_EPOCHS, progress=False)
            cross = evaluate(
                synthetic,
                dataset,
                models=list(CROSS),
                runs=args.cross_runs,
                augment="dsa",
                epochs=args.cross_epochs,
                progress=False,
            )
            book.add(
                key,
                {
                    "convnet": conv.to_dict(),
                    "cross": cross.to_dict(),
                    "layer": best_layer if name == "glad" else None,
                    "iterations": args.iterations,
                    "lr_f": lr_f if sp is not None else None,
                    "convnet_epochs": EVAL_EPOCHS,
                    "cross_epochs": args.cross_epochs,
                    **bench,
                },
            )
            print(key, round(100 * conv.results[0].mean, 2), flush=True)

    if book.todo("crfd", args.only):
        book.add("crfd", crfd_study(dataset))
    render(book)


def crfd_study(dataset) -> dict:
    """CRFD and accuracy (one 100-epoch DSA training, test split) of the snapshots stored along the GLaD and
    H-GLaD IPC 10 runs above; a point's accuracy is not used by anything, only correlated."""
    from safetensors.torch import load_file
    from scipy.stats import spearmanr

    from gendistill.artifacts import ImageSet

    crfd = CRFD(dataset)
    labels = torch.arange(dataset.num_classes).repeat_interleave(10)
    points = []
    for name in ("hglad", "glad"):
        for snap in sorted((RUNS / f"{name}-ipc10.snaps").glob("*.safetensors")):
            images = load_file(snap)["images"]
            t0 = time.perf_counter()
            score = crfd(images, labels)
            t_crfd = time.perf_counter() - t0
            t0 = time.perf_counter()
            acc = (
                evaluate(ImageSet(images, labels), dataset, runs=1, preset="quick", augment="dsa", progress=False)
                .results[0]
                .mean
            )
            points.append(
                {
                    "run": name,
                    "iteration": int(snap.stem),
                    "crfd": score,
                    "acc": acc,
                    "crfd_s": t_crfd,
                    "eval_s": time.perf_counter() - t0,
                }
            )
            print("crfd", name, snap.stem, round(score, 4), round(100 * acc, 2), flush=True)
    if len(points) < 3:
        raise SystemExit("crfd study: run the glad-ipc10 and hglad-ipc10 entries first (they store the snapshots)")
    rho = spearmanr([p["crfd"] for p in points], [p["acc"] for p in points])
    return {
        "points": points,
        "spearman": float(rho.statistic),
        "p_value": float(rho.pvalue),
        "crfd_s": sum(p["crfd_s"] for p in points) / len(points),
        "eval_s": sum(p["eval_s"] for p in points) / len(points),
    }


def render(book: ResultBook) -> None:
    """results/latent.md: the prior, the validation searches, the comparison, the CRFD study (+ its plot)."""
    entries = book.data["entries"]
    sections = []
    prior = entries.get("prior")
    if prior:
        q = prior["quality"]
        sections.append(
            render_table(
                [
                    {
                        "prior": f"built-in StyleGAN, {prior['steps']} steps",
                        "train s": f"{prior['train_seconds']:.0f}",
                        "weights KB": f"{prior['bytes'] / 1024:.0f}",
                        "real-data ConvNet-3: test acc %": f"{100 * q['classifier_test_acc']:.2f}",
                        "its acc on samples %": f"{100 * q['sample_acc']:.2f}",
                        "FD samples-test": f"{q['fd_samples_vs_test']:.1f}",
                        "FD train-test (floor)": f"{q['fd_train_vs_test']:.1f}",
                    }
                ],
                markdown=True,
            )
        )
    search = [
        {
            "search (IPC 10, DM, validation split)": key,
            "val acc %": f"{100 * rec['val_acc']:.2f}",
            "distill s": f"{rec['wall_s']:.0f}",
        }
        for key, rec in entries.items()
        if "val_acc" in rec
    ]
    if search:
        sections.append(
            "Chosen on the validation split (H-GLaD or GLaD, DM, IPC 10, `--search-iterations` = 60 "
            "iterations; one 300-epoch DSA training each):\n\n" + render_table(search, markdown=True)
        )
    rows, cross_means = [], {}
    compared = sorted((k for k, rec in entries.items() if "convnet" in rec), key=_comparison_order)
    for key in compared:
        rec = entries[key]
        cross, conv = rec["cross"]["results"], rec["convnet"]["results"][0]
        cross_means[key] = (*over_networks(rec["cross"]), len(cross[0]["accuracies"]))
        rows.append(
            {
                "set": key,
                "layer": "" if rec.get("layer") is None else rec["layer"],
                "lr f": "" if rec.get("lr_f") is None else rec["lr_f"],
                "ConvNet-3 %": f"{100 * conv['mean']:.2f} ± {100 * conv['std']:.2f}",
                **{r["model"]: network_cell(r) for r in cross},
                "cross mean %": f"{100 * cross_means[key][0]:.2f}"
                + (f" ± {100 * cross_means[key][1]:.2f}" if cross_means[key][2] > 1 else ""),
                "cross runs": len(cross[0]["accuracies"]),
                "distill s": f"{rec['wall_s']:.0f}",
                "peak RSS MB": f"{rec['peak_rss_mb']:.0f}",
            }
        )
    if rows:
        first = next(rec for rec in entries.values() if "convnet" in rec)
        n_conv = len(first["convnet"]["results"][0]["accuracies"])
        sections.append(
            f"DM, {first['iterations']} iterations each. ConvNet-3: {n_conv} runs of "
            f"{first.get('convnet_epochs', EVAL_EPOCHS)}-epoch DSA training; cross-architecture: `cross runs` per "
            f"network of {first.get('cross_epochs', EVAL_EPOCHS)}-epoch DSA training. Rows with 3 cross runs train "
            "each network with its registered recipe (AlexNet: AdamW lr 1e-3, see `results/cross.md`); rows with "
            "1 are the earlier single-run measurement (AlexNet under SGD, fp32 on the AMD machine), kept until "
            "re-run. The cross mean's ± is the std over runs of the per-run mean over networks. Test accuracy %:"
            "\n\n" + render_table(rows, markdown=True)
        )
        sections += _claim_lines(cross_means)
    else:
        sections.append("Pixels vs GLaD vs H-GLaD: not measured yet.")
    study = entries.get("crfd")
    if study:
        plot_crfd(study["points"], GRIDS / "crfd-vs-acc.png")
        sections.append(
            f"CRFD against accuracy over {len(study['points'])} snapshots of the GLaD and H-GLaD IPC 10 runs (one "
            f"100-epoch DSA training each, test split): Spearman rank correlation {study['spearman']:.3f} (p = "
            f"{study['p_value']:.3g}; lower CRFD should mean higher accuracy, i.e. a negative correlation). One "
            f"CRFD takes {study['crfd_s']:.2f} s, one such evaluation {study['eval_s']:.1f} s."
        )
        sections.append(_crfd_beyond_progress(study["points"]))
    text = "# Fashion-MNIST latent distillation: the shipped prior, pixels vs GLaD vs H-GLaD, CRFD\n\n"
    text += "Reproduce: `python benchmarks/run_latent.py`\n\n" + "\n\n".join(sections) + "\n"
    (RESULTS / "latent.md").write_text(text)


NAMES = ("pixels", "glad", "hglad")


def _crfd_beyond_progress(points: list[dict]) -> str:
    """Both CRFD and accuracy improve as a run goes on, which alone would make them correlate. Two checks
    that hold the iteration fixed: the partial rank correlation given the iteration, and, at each iteration
    both runs share, whether the run with the lower CRFD is the more accurate one."""
    from scipy.stats import rankdata

    def residual(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        design = np.stack([np.ones_like(x), x], 1)
        return y - design @ np.linalg.lstsq(design, y, rcond=None)[0]

    crfd, acc, it = (rankdata([p[k] for p in points]) for k in ("crfd", "acc", "iteration"))
    partial = float(np.corrcoef(residual(crfd, it), residual(acc, it))[0, 1])
    by_iter: dict[int, list[dict]] = {}
    for p in points:
        by_iter.setdefault(p["iteration"], []).append(p)
    pairs = [ps for ps in by_iter.values() if len(ps) == 2]
    agree = sum((a["crfd"] < b["crfd"]) == (a["acc"] > b["acc"]) for a, b in pairs)
    return (
        f"Holding progress fixed: partial rank correlation given the iteration {partial:.2f}; at {agree} of "
        f"{len(pairs)} iterations shared by the two runs, the run with the lower CRFD is the more accurate."
    )


def _comparison_order(key: str) -> tuple[int, int]:
    name, ipc = key.split("-ipc")
    return int(ipc), NAMES.index(name)


def _claim_lines(cross_means: dict[str, tuple[float, float, int]]) -> list[str]:
    """The paper's claim, H-GLaD >= GLaD >= pixels on the cross-architecture mean, checked per IPC where the
    three rows share a protocol (number of runs), with whether each gap exceeds the runs' spread."""
    lines = []
    for ipc in sorted({_comparison_order(k)[0] for k in cross_means}):
        found = [cross_means.get(f"{name}-ipc{ipc}") for name in NAMES]
        if None in found:
            continue
        if len({runs for _, _, runs in found}) > 1:
            lines.append(
                f"IPC {ipc}: not compared; its rows were measured under different protocols (cross runs "
                + ", ".join(f"{n} {r}" for (_, _, r), n in zip(found, NAMES))
                + ")."
            )
            continue
        means = [m for m, _, _ in found]
        holds = means[2] >= means[1] >= means[0]
        order = " > ".join(f"{n} {100 * m:.2f}" for m, n in sorted(zip(means, NAMES), reverse=True))
        verdict = f"the claim H-GLaD >= GLaD >= pixels {'holds' if holds else 'does not hold'} on the means"
        if found[0][2] == 1:
            lines.append(
                f"IPC {ipc}, cross-architecture mean: {order}; {verdict}, on single runs (no spread measured)."
            )
            continue
        ranked = sorted(found, reverse=True)
        gaps = [(a[0] - b[0], (a[1] ** 2 + b[1] ** 2) ** 0.5) for a, b in zip(ranked, ranked[1:])]
        clear = all(gap > spread for gap, spread in gaps)
        lines.append(
            f"IPC {ipc}, cross-architecture mean: {order}; {verdict}, and the gaps between neighbours ("
            + ", ".join(f"{100 * g:.2f}" for g, _ in gaps)
            + " points) are "
            + ("larger than" if clear else "not all larger than")
            + " the runs' spread ("
            + ", ".join(f"{100 * s:.2f}" for _, s in gaps)
            + ")."
        )
    return lines


def plot_crfd(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for run in sorted({p["run"] for p in points}):
        mine = [p for p in points if p["run"] == run]
        ax.scatter([p["crfd"] for p in mine], [100 * p["acc"] for p in mine], label=run, s=18)
    ax.set_xlabel("CRFD (lower = closer to real)")
    ax.set_ylabel("test accuracy % (100-epoch DSA)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
