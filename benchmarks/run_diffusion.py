"""Diffusion Inversion on Fashion-MNIST: the prior, inversion, generation, sample efficiency, ablation, the
IPC sets as a distiller, and cost. Every stage is cached in results/diffusion.json and resumable.

    python benchmarks/run_diffusion.py [--only KEY ...] [--runs 3] [--train-steps 500] [--smoke]

Stages (keys):
- ``prior``: ``gendistill prior train --kind diffusion`` (resumed when a partial run is there); its time.
- ``prior-quality``: Fréchet distance of unconditional samples, re-generation of held-out images from
  their encoder tokens (``gendistill prior eval``'s figures).
- ``invert``: 100 training images per class (1,000 inversions; the n = 10, 50 points are its first n per
  class, which are exactly their own inversions); images per minute.
- ``reconstruct``: 20 held-out validation images per class inverted, then re-generated without noise,
  interpolation or guidance: pixel MSE (in [0, 1]) from the encoder tokens alone and after inversion.
- ``eff-<mix>-n<n>-<net>``: real-only, generated-only and real + generated (5 variants per real image)
  at n real images per class, each trained for exactly ``--train-steps`` SGD steps of 256 images (DSA).
- ``abl-<name>``: at n = 50, real + generated with one setting changed (no noise, no interpolation,
  the null unconditional branch, guidance 1 or 4), ConvNet-3.
- ``ipc<k>``: IPC k from k-means modes of each class's embeddings, under the paper preset (DSA, 1000
  epochs), with its stored bytes.
- ``cost-sampling``: generated images per second at the dataset's 28 px and at 56 px.

``--smoke`` runs every stage at toy sizes into results/diffusion-smoke.json, to check the script.
The prior saw the unlabeled training images; the test split is read only by the final evaluations.
"""

from __future__ import annotations

import argparse
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import RESULTS, ResultBook

from gendistill import load, load_dataset
from gendistill.artifacts import EmbeddingSet, ImageSet
from gendistill.evaluate import evaluate
from gendistill.evaluate.mixtures import fixed_steps, mix, real_subset
from gendistill.evaluate.prior_quality import diffusion_quality
from gendistill.inversion import GenerateConfig, InversionConfig, generate, invert
from gendistill.io import partial_dir
from gendistill.priors import load_prior
from gendistill.priors.base import from_normalized
from gendistill.priors.fit import train_prior as fit_prior
from gendistill.report import class_grid, save_png, to_uint8
from gendistill.report.plots import line_plot

RUNS = Path(__file__).parent / "runs" / "diffusion"
GRIDS = RESULTS / "grids"
FULL = {
    "prior_steps": 4000,
    "prior_batch": 128,
    "per_class": 100,
    "val_per_class": 20,
    "invert_steps": 200,
    "ns": (10, 50, 100),
    "per_image": 5,
    "nets": ("convnet", "resnet18"),
    "ipcs": (10, 50),
    "classifier": 2,
}
SMOKE = {
    "prior_steps": 4,
    "prior_batch": 16,
    "per_class": 4,
    "val_per_class": 2,
    "invert_steps": 2,
    "ns": (2, 4),
    "per_image": 2,
    "nets": ("convnet[width=8]",),
    "ipcs": (2,),
    "classifier": 1,
}
ABLATIONS = {
    "no-noise": {"noise": 0.0},
    "no-interp": {"interp": 0.0},
    "null-uncond": {"uncond": "null"},
    "guidance-1": {"guidance": 1.0},
    "guidance-4": {"guidance": 4.0},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=500, help="the fixed budget of every sample-efficiency run")
    ap.add_argument("--sampler-steps", type=int, default=20)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    size = SMOKE if args.smoke else FULL
    name = "diffusion-smoke" if args.smoke else "diffusion"
    runs = RUNS.with_name(name)
    book = ResultBook(name)
    dataset = load_dataset("fashion-mnist")
    runs.mkdir(parents=True, exist_ok=True)
    GRIDS.mkdir(exist_ok=True)
    want = lambda key: book.todo(key, args.only)  # noqa: E731
    prior_dir = runs / "prior"
    if want("prior") or not (prior_dir / "model_index.json").is_file():
        train_prior(book, dataset, prior_dir, size, args.smoke)
    prior = load_prior(prior_dir)
    gen_config = GenerateConfig(per_image=size["per_image"], steps=args.sampler_steps)
    if want("prior-quality"):
        samples = 20 if args.smoke else 2000
        book.add(
            "prior-quality", diffusion_quality(prior, dataset, size["classifier"], samples, steps=args.sampler_steps)
        )
    inv_dir = runs / f"invert-{size['per_class']}"
    inv_config = InversionConfig(per_class=size["per_class"], steps=size["invert_steps"])
    inverted_here = not (inv_dir / "config.json").is_file()
    if inverted_here:
        invert(
            prior_dir,
            dataset,
            inv_config,
            inv_dir,
            device=torch.device("cpu"),
            resume=partial_dir(inv_dir).exists(),
            progress=False,
        )
    inverted = load(inv_dir)
    if want("invert"):
        book.add("invert", inversion_record(inverted, inv_config.steps))
    elif inverted_here:  # an inversion recorded by an earlier session, redone here: its cost and whether it matches
        record_repeat(book, inverted, inv_config.steps)
    if want("reconstruct"):
        book.add("reconstruct", reconstruct(prior, prior_dir, dataset, size, runs, args.sampler_steps))
    for n in size["ns"]:
        keys = [(f"eff-{m}-n{n}-{net}", m, net) for net in size["nets"] for m in ("real", "generated", "both")]
        keys = [k for k in keys if want(k[0])]
        if not keys:  # nothing left at this n: don't regenerate its images
            continue
        first = inverted.first(n)
        gen = None  # generated only when a cell trains on generated images: real-only cells need the indices alone
        if any(mixture != "real" for _, mixture, _ in keys):
            gen = generated(prior, first, gen_config, runs / f"gen-n{n}", book, f"gen-n{n}")
        for key, mixture, net in keys:
            images = mix(gen, dataset, mixture) if gen is not None else real_subset(dataset, first.indices)
            book.add(key, {"n": n, "net": net, "mix": mixture, **train_fixed(images, dataset, net, args)})
    n_abl = size["ns"][1]
    for label, change in ABLATIONS.items():
        key = f"abl-{label}"
        if want(key):
            config = replace(gen_config, **change)
            gen = generated(prior, inverted.first(n_abl), config, runs / f"gen-n{n_abl}-{label}", book, None)
            book.add(
                key,
                {
                    "n": n_abl,
                    "change": change,
                    **train_fixed(mix(gen, dataset, "both"), dataset, size["nets"][0], args),
                },
            )
    for ipc in size["ipcs"]:
        key = f"ipc{ipc}"
        if want(key):
            out = runs / f"ipc{ipc}"
            config = replace(gen_config, ipc=ipc, modes="kmeans")
            images = generated(prior, inverted, config, out, book, None)
            report = evaluate(
                images,
                dataset,
                models=[size["nets"][0]],
                runs=args.runs,
                augment="dsa",
                epochs=5 if args.smoke else None,
                progress=False,
            )
            modes_bytes = ipc * dataset.num_classes * prior.tokens * prior.width * 4
            book.add(
                key,
                {
                    "ipc": ipc,
                    "report": report.to_dict(),
                    "pixel_bytes": images.storage_bytes(),
                    "modes_bytes": modes_bytes,
                    "prior_bytes": weights_bytes(prior_dir),
                },
            )
            shutil.copyfile(out / "grid.png", GRIDS / f"{name}-ipc{ipc}.png")
    if want("cost-sampling"):
        book.add("cost-sampling", sampling_cost(prior, inverted, gen_config))
    render(book, name)


def train_prior(book: ResultBook, dataset, out: Path, size: dict, smoke: bool) -> None:
    if not (out / "model_index.json").is_file():
        shape = {"block_channels": (8, 16), "tokens": 2, "width": 8} if smoke else {}
        recipe = {"steps": size["prior_steps"], "batch": size["prior_batch"]}
        resume = partial_dir(out).exists()
        fit_prior(dataset, out, "diffusion", shape=shape, recipe=recipe, resume=resume, progress=False)
    info = load_prior(out).info
    params = sum(p.numel() for p in load_prior(out).unet.parameters())
    epochs = info["steps"] * size["prior_batch"] / 57_000  # the training split, 5% held out for validation
    book.add(
        "prior", {**info, "unet_parameters": params, "epochs": round(epochs, 2), "weights_bytes": weights_bytes(out)}
    )
    samples = sorted((out / "samples").glob("step*.png"))
    if samples:
        shutil.copyfile(samples[-1], GRIDS / f"{book.path.stem}-prior.png")


def inversion_record(inverted: EmbeddingSet, steps: int) -> dict:
    m = inverted.meta
    return {
        "images": len(inverted.labels),
        "seconds": m["seconds"],
        "steps": steps,
        "images_per_minute": m["images_per_minute"],
        "loss_first": m["loss"][0],
        "loss_last": m["loss"][-1],
        "precision": m["precision"],
    }


def record_repeat(book: ResultBook, inverted: EmbeddingSet, steps: int) -> None:
    """A repeat of the recorded inversion (its artifact was gone): its own cost on this machine, and whether its
    loss curve ends where the recorded one did (the inversion is seeded per image)."""
    record = inversion_record(inverted, steps)
    first = book.data["entries"]["invert"]
    same = all(record[k] == first[k] for k in ("loss_first", "loss_last"))
    key = next(f"invert-repeat-{i}" for i in range(1, 100) if not book.done(f"invert-repeat-{i}"))
    book.add(key, {**record, "same_loss_as_recorded": same})


def weights_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*.safetensors"))


def generated(
    prior,
    embeddings: EmbeddingSet,
    config: GenerateConfig,
    out: Path,
    book: ResultBook,
    key: str | None,
) -> ImageSet:
    if not (out / "config.json").is_file():
        images = generate(prior, embeddings, config, progress=False)
        images.save(out, force=True)
        if key and not book.done(key):
            book.add(
                key,
                {
                    "images": len(images),
                    "seconds": images.meta["generate_seconds"],
                    "images_per_second": images.meta["images_per_second"],
                },
            )
    return load(out)


def train_fixed(images: ImageSet, dataset, net: str, args: argparse.Namespace) -> dict:
    steps = 3 if args.smoke else args.train_steps
    data = fixed_steps(images, 256, seed=0)
    t0 = time.time()
    report = evaluate(data, dataset, models=[net], runs=args.runs, augment="dsa", epochs=steps, progress=False)
    r = report.results[0]
    print(f"{net} on {len(images)} images: {100 * r.mean:.2f} ± {100 * r.std:.2f}", flush=True)
    return {"images": len(images), "steps": steps, "report": report.to_dict(), "wall_s": time.time() - t0}


def reconstruct(prior, prior_dir: Path, dataset, size: dict, runs: Path, steps: int) -> dict:
    """Held-out images re-generated from their encoder tokens and from their inversions (no noise, no
    interpolation, no guidance), and a grid: real | from encoder tokens | inverted | 3 variants."""
    out = runs / "invert-val"
    config = InversionConfig(per_class=size["val_per_class"], steps=size["invert_steps"], split="val")
    if not (out / "config.json").is_file():
        invert(prior_dir, dataset, config, out, device=torch.device("cpu"), force=True, progress=False)
    inv = load(out)
    real = dataset.val_images[inv.indices]
    pixels = from_normalized(real, dataset.mean, dataset.std)
    with torch.no_grad():
        tokens = torch.cat([prior.encoder(part) for part in pixels.split(250)])
    tokens = EmbeddingSet(tokens, inv.labels, inv.prior, inv.meta, inv.indices)
    plain = GenerateConfig(per_image=1, noise=0.0, interp=0.0, guidance=1.0, steps=steps)
    from_tokens = generate(prior, tokens, plain, progress=False)
    from_inversion = generate(prior, inv, plain, progress=False)
    variants = generate(prior, inv, GenerateConfig(per_image=3, steps=steps), progress=False)

    def mse(images: ImageSet) -> float:
        return float((dataset.denormalize(images.images) - dataset.denormalize(real)).square().mean())

    first = torch.cat([torch.nonzero(inv.labels == c, as_tuple=True)[0][:1] for c in inv.labels.unique()])
    rows = [real[first], from_tokens.images[first], from_inversion.images[first]]
    rows += [variants.images[first * 3 + k] for k in range(3)]
    grid = torch.cat(rows)
    labels = torch.arange(len(rows)).repeat_interleave(len(first))
    save_png(
        class_grid(to_uint8(grid, dataset.mean, dataset.std), labels.numpy(), len(rows)),
        GRIDS / f"{runs.name}-reconstruction.png",
    )
    return {
        "images": len(real),
        "invert_steps": config.steps,
        "mse_encoder_tokens": mse(from_tokens),
        "mse_inverted": mse(from_inversion),
        "invert_seconds": inv.meta["seconds"],
    }


def sampling_cost(prior, inverted: EmbeddingSet, config: GenerateConfig) -> dict:
    small = inverted.first(1)
    out = {}
    for px in (28, 56):
        images = generate(prior, small, replace(config, per_image=10, size=px), progress=False)
        out[f"images_per_second_{px}px"] = images.meta["images_per_second"]
    out["speed_up_28_vs_56"] = out["images_per_second_28px"] / out["images_per_second_56px"]
    out["sampler"] = f"{config.scheduler}, {config.steps} steps, guidance {config.guidance}"
    return out


def _acc(entry: dict) -> tuple[float, float]:
    r = entry["report"]["results"][0]
    return 100 * r["mean"], 100 * r["std"]


def render(book: ResultBook, name: str) -> None:
    e = book.data["entries"]
    rows = []
    # cells land in any order (a column finished sessions later): networks in the order first measured, then n, mix
    eff = [(k, v) for k, v in e.items() if k.startswith("eff-")]
    nets = list(dict.fromkeys(v["net"] for _, v in eff))
    mixes = ("real", "generated", "both")
    eff.sort(key=lambda kv: (nets.index(kv[1]["net"]), kv[1]["n"], mixes.index(kv[1]["mix"])))
    for key, entry in [*eff, *((k, v) for k, v in e.items() if k.startswith("abl-"))]:
        acc, std = _acc(entry)
        network, mixture = (entry["net"], entry["mix"]) if key.startswith("eff-") else ("ablation: " + key[4:], "both")
        rows.append(
            {
                "n per class": entry["n"],
                "network": network,
                "trained on": mixture,
                "images": entry["images"],
                "steps": entry["steps"],
                "acc %": f"{acc:.2f} ± {std:.2f}",
            }
        )
    stages = (
        "prior",
        "prior-quality",
        "invert",
        *(k for k in e if k.startswith("invert-repeat-")),
        "reconstruct",
        "cost-sampling",
    )
    notes = [
        f"{k}: " + ", ".join(f"{a}={v}" for a, v in e[k].items() if a not in ("machine", "report"))
        for k in stages
        if k in e
    ]
    for key in (k for k in e if k.startswith("ipc")):
        acc, std = _acc(e[key])
        notes.append(
            f"{key}: {acc:.2f} ± {std:.2f} (paper preset); pixels {e[key]['pixel_bytes']:,} bytes, "
            f"modes {e[key]['modes_bytes']:,} bytes + the prior's {e[key]['prior_bytes']:,}"
        )
    for net in nets:
        factor = efficiency_factor(e, net=net)
        if factor:
            notes.append(f"{net}: {factor}")
    book.write_table(
        rows, "Diffusion Inversion on Fashion-MNIST", "python benchmarks/run_diffusion.py", notes=tuple(notes)
    )
    efficiency_curve(e, GRIDS / f"{name}-efficiency.png")


def efficiency_curve(e: dict, path: Path) -> None:
    """Test accuracy against real images per class: one line per (network, training mix)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for key, v in e.items():
        if key.startswith("eff-"):
            series.setdefault(f"{v['net']}: {v['mix']}", []).append((v["n"], _acc(v)[0]))
    if series:
        line_plot(
            series,
            "real images per class (n)",
            "test accuracy %",
            path,
            "Diffusion Inversion: sample efficiency (fixed 300-step budget)",
            logx=True,
        )


def efficiency_factor(e: dict, n: int = 50, net: str = "convnet") -> str | None:
    """How many real images per class real-only needs to match real + generated at ``n`` (log-linear
    interpolation between measured points; beyond the largest measured n it says so)."""
    target = e.get(f"eff-both-n{n}-{net}")
    real = sorted((v["n"], _acc(v)[0]) for k, v in e.items() if k.startswith("eff-real-") and v["net"] == net)
    if not target or not real:
        return None
    goal = _acc(target)[0]
    for (n0, a0), (n1, a1) in zip(real, real[1:]):
        if a0 <= goal <= a1 and a1 > a0:
            need = math.exp(math.log(n0) + (goal - a0) / (a1 - a0) * (math.log(n1) - math.log(n0)))
            return f"real-only needs ~{need:.0f} per class to match real + generated at {n} ({need / n:.1f}x)"
    if goal > real[-1][1]:
        return f"real + generated at {n} beats real-only at {real[-1][0]} per class (> {real[-1][0] / n:.1f}x)"
    low, low_acc = real[0]  # below the fewest real images measured: the factor is at most their share of n
    return (
        f"real + generated at {n} ({goal:.2f}) is below real-only at {low} per class ({low_acc:.2f}; < {low / n:.1f}x)"
    )


if __name__ == "__main__":
    main()
