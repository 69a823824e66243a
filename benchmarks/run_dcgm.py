"""DCGM-style: one generator set distilled for a time budget, evaluated under the readings of IPC.

    python benchmarks/run_dcgm.py [--method dcgm|dim] [--minutes 10] [--cells a1 a10 b10 a50] [--epochs N]

One ``--method dcgm`` run at stored IPC 10 (the shipped prior fine-tuned, DM matching, intra and inter
regularisers at their defaults; ``--precision auto``) for ``--minutes`` of distillation compute, resumable;
``--method dim``: the DiM-style baseline on the same generator and budget.
Each cell then evaluates it with ConvNet-3 (the paper preset with DSA unless ``--epochs``; 3 runs):
``aN`` is reading (a) at IPC N (a fixed set sampled once: stored codes first, then fresh ones), ``bN``
reading (b) (fresh class-balanced samples every epoch, the iterations of aN), ``xN`` reading (a) trained by
ResNet-18, VGG-11 and AlexNet (100 DSA epochs each, their registered recipes, as results/latent.json's
cross-architecture column; table results/dcgm_cross.md). Every cell records the
stored bytes and the storage-equivalent IPC (reading c). Beside them, DM pixels from results/methods.json
where that entry was measured. Writes results/dcgm.json and .md; the fixed set's grid goes to results/grids.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch
from common import RESULTS, ResultBook, distill_for, network_cell, val_search

from gendistill import load, load_dataset
from gendistill.bench.runner import isolated
from gendistill.errors import UserError
from gendistill.evaluate import evaluate
from gendistill.evaluate.readings import storage_ipc, training_data
from gendistill.io import partial_dir
from gendistill.methods import METHODS, RunOptions, distill
from gendistill.params import GeneratorConfig
from gendistill.report.plots import line_plot

RUNS = Path(__file__).parent / "runs" / "dcgm"
READING = {"a": "fixed", "b": "fresh", "x": "fixed"}
# the cross-architecture cell ``xN``: reading (a) at IPC N trained by the networks the issue names, with the
# recipe and epochs of the committed cross-architecture column (results/latent.json), so the rows compare
CROSS_NETS, CROSS_EPOCHS = ("resnet18", "vgg11", "alexnet"), 100
# The validation search: one setting changed at a time from the first row (the design's starting point):
# (generator settings, regulariser weights)
SEARCH = {
    "start": ({}, {"intra": 1.0, "inter": 1.0}),
    "lr_g-1e-3": ({"lr_g": 1e-3}, {"intra": 1.0, "inter": 1.0}),
    "lr_g-1e-5": ({"lr_g": 1e-5}, {"intra": 1.0, "inter": 1.0}),
    "lr_codes-1e-1": ({"lr_codes": 1e-1}, {"intra": 1.0, "inter": 1.0}),
    "fresh-0": ({"fresh": 0.0}, {"intra": 1.0, "inter": 1.0}),
    "no-reg": ({}, {"intra": 0.0, "inter": 0.0}),
    # the ablation and the from-scratch comparison, on the best mix of the rows above (fresh 0)
    "fresh-0-no-reg": ({"fresh": 0.0}, {"intra": 0.0, "inter": 0.0}),
    "fresh-0-intra": ({"fresh": 0.0}, {"intra": 1.0, "inter": 0.0}),
    "fresh-0-inter": ({"fresh": 0.0}, {"intra": 0.0, "inter": 1.0}),
    "fresh-0-scratch": ({"fresh": 0.0, "from_scratch": True}, {"intra": 1.0, "inter": 1.0}),
    # DM's loss is ~50-300 here, so weight-1 terms in [-1, 1] barely register: weights on its scale,
    # and the class anchor (a real-data classifier's cross-entropy) against the classes mixing
    "fresh-0-w10": ({"fresh": 0.0}, {"intra": 10.0, "inter": 10.0}),
    "fresh-0-classify-10": ({"fresh": 0.0}, {"intra": 1.0, "inter": 1.0, "classify": 10.0}),
    # the prior draws some codes of one class as another's garment: screen the starting codes
    "fresh-0-classify-10-teacher": (
        {"fresh": 0.0, "code_init": "teacher"},
        {"intra": 1.0, "inter": 1.0, "classify": 10.0},
    ),
}


SCALING = {"classes": [(10, 28), (100, 28), (1000, 28)], "resolution": [(10, 28), (10, 64), (10, 128)]}


def noise_dataset(classes: int, size: int, per_class: int = 20):
    """A labeled dataset of seeded noise images: the scaling study measures bytes and memory, not accuracy."""
    from gendistill.data import ImageDataset

    g = torch.Generator().manual_seed(0)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(n * classes, 1, size, size, generator=g), torch.arange(classes).repeat_interleave(n)

    (tx, ty), (vx, vy), (sx, sy) = split(per_class), split(2), split(2)
    return ImageDataset(
        f"noise-{classes}x{size}px", [str(c) for c in range(classes)], (0.5,), (0.5,), tx, ty, vx, vy, sx, sy
    )


def _scaling_child(method: str, classes: int, size: int, out: str) -> dict:
    """One few-iteration run at IPC 10 in a fresh process, so the peak resident memory is its own."""
    from gendistill.priors.stylegan import StyleGAN, StyleGANConfig

    torch.set_num_threads(1)  # beside the searches: memory is what is measured, not time
    dataset = noise_dataset(classes, size)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    param = None
    if method == "dcgm":  # the shipped prior's architecture at this class count and resolution
        param = GeneratorConfig(prior=StyleGAN(StyleGANConfig(classes, size, 1)))
    run = RunOptions(iterations=2, real_batch=16, precision="fp32", compile=False)
    t0 = time.perf_counter()
    try:
        artifact = distill(dataset, method, 10, out, param, run, progress=False)
    except UserError as e:  # refused before it starts (more memory than the machine has): say so, and
        # still count the bytes the set would store, from the set built as the run would have started it
        from gendistill.params import PARAMS, config_name

        param = param if param is not None else METHODS.get(method).param_config()
        built = PARAMS.get(config_name(param)).build(dataset, 10, param, torch.Generator().manual_seed(0))
        return {
            "refused": str(e),
            "rss_before_mb": base,
            "storage_bytes": built.storage_bytes(),
            "storage_from": "the built set, not distilled",
        }
    return {"storage_bytes": artifact.storage_bytes(), "seconds": time.perf_counter() - t0, "rss_before_mb": base}


def in_fresh_process(child, *args) -> dict:
    """``child(*args, out)`` in a fresh process writing into a temporary folder: its record, with that
    process's peak resident memory when it ran (a refused run has none to report)."""
    with tempfile.TemporaryDirectory() as tmp:
        record, peak = isolated(child, *args, f"{tmp}/set")
    return record if "refused" in record else {**record, "peak_rss_mb": peak["peak_rss_mb"]}


PEAK_ITERATIONS = 5


def _peak_child(method: str, prior: str, out: str) -> dict:
    """A recorded run's method and prior on Fashion-MNIST for a few iterations, as run_methods.distill_for runs
    it (compiled, bf16 where the CPU has it): the peak resident memory of that distillation, which does not
    grow with the iterations (only the loss history does)."""
    torch.set_num_threads(1)  # memory is what is measured, not time
    dataset = load_dataset("fashion-mnist")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run = RunOptions(iterations=PEAK_ITERATIONS, checkpoint_every=0, compile=True, precision="auto")
    distill(dataset, method, 10, out, METHODS.get(method).param_config(prior=prior), run, progress=False)
    return {"rss_before_mb": base, "iterations": PEAK_ITERATIONS}


def peaks(book: ResultBook) -> None:
    """Peak memory of every recorded distillation whose run is here, re-measured over a few iterations."""
    for key, e in list(book.data["entries"].items()):
        if "distill_seconds" not in e or book.done(f"peak-{key}") or not (RUNS / key / "config.json").is_file():
            continue
        record = in_fresh_process(_peak_child, e["config"]["method"], e["config"]["param"]["config"]["prior"])
        book.add(f"peak-{key}", {"run": key, **record})
        print(f"peak-{key}", record, flush=True)


def scaling(book: ResultBook) -> None:
    """Stored bytes and peak memory of DM pixels and DCGM at IPC 10 as classes and resolution grow."""
    for axis, points in SCALING.items():
        for classes, size in points:
            for method in ("dm", "dcgm"):
                key = f"scaling-{method}-{classes}c-{size}px"
                if book.done(key):
                    continue
                record = in_fresh_process(_scaling_child, method, classes, size)
                book.add(
                    key,
                    {
                        "axis": axis,
                        "method": method,
                        "classes": classes,
                        "size": size,
                        "ipc": 10,
                        "iterations": 2,
                        "real_batch": 16,
                        **record,
                    },
                )
                print(key, record, flush=True)
    render_scaling(book)


def _refusal(message: str) -> str:
    """The memory check's refusal, short: the memory it said one step needs."""
    need = re.search(r"needs about ([\d.]+ GB)", message)
    return f"refused: one step needs ~{need.group(1)}" if need else f"refused: {message}"


def render_scaling(book: ResultBook) -> None:
    rows = [
        {
            "axis": e["axis"],
            "classes": e["classes"],
            "px": e["size"],
            "method": e["method"],
            "stored bytes": f"{e['storage_bytes']:,}" + (" (built, not run)" if "refused" in e else ""),
            "peak RSS MB": f"{e['peak_rss_mb']:.0f}" if "peak_rss_mb" in e else _refusal(e["refused"]),
            "RSS before distilling MB": f"{e['rss_before_mb']:.0f}",
        }
        for e in book.data["entries"].values()
    ]
    book.write_table(
        rows,
        "Stored bytes and peak memory of DM pixels and DCGM as classes and resolution grow",
        "python benchmarks/run_dcgm.py --scaling",
        notes=(
            "IPC 10, 2 iterations, 16 real images per class per step, fp32, one thread, a dataset of "
            "noise images (20 per class); DCGM: the shipped StyleGAN's architecture at that class "
            "count and resolution, from random weights, fp16 weights stored. Peak RSS is the "
            "distilling process's, torch included (the RSS before distilling is that floor).",
        ),
    )
    axes = (
        ("classes", "classes", "classes (28 px)", "the number of classes grows"),
        ("resolution", "size", "image side, px (10 classes)", "the resolution grows"),
    )
    for axis, x, xlabel, grows in axes:
        series: dict[str, list[tuple[float, float]]] = {}
        for e in book.data["entries"].values():
            if e["axis"] != axis and (e["classes"], e["size"]) != (10, 28):
                continue
            name = "DM pixels" if e["method"] == "dm" else "DCGM"
            series.setdefault(f"{name}: stored MB", []).append((e[x], e["storage_bytes"] / 1e6))
            if "peak_rss_mb" in e:
                series.setdefault(f"{name}: peak RSS MB", []).append((e[x], e["peak_rss_mb"]))
        line_plot(
            series,
            xlabel,
            "MB (log)",
            RESULTS / "grids" / f"dcgm-scaling-{axis}.png",
            logx=True,
            logy=True,
            title=f"IPC 10: stored bytes and peak memory as {grows}",
        )


def search(book: ResultBook, dataset, names: list[str], iterations: int) -> str:
    """DCGM at IPC 10 for ``iterations`` with each named setting, scored on the validation split."""

    def distill_one(name: str):
        given, regs = SEARCH[name]
        out = RUNS / f"search-{name}-{iterations}it"
        if not (out / "config.json").is_file():
            run = RunOptions(
                iterations=iterations, checkpoint_every=10, precision="auto", regularisers=tuple(regs.items())
            )
            partial = partial_dir(out)
            distill(dataset, "dcgm", 10, out, GeneratorConfig(**given), run, resume=partial.exists(), progress=False)
            (RESULTS / "grids").mkdir(exist_ok=True)
            shutil.copyfile(out / "grid.png", RESULTS / "grids" / f"dcgm-search-{name}-{iterations}it.png")
        hist = load(out).meta["history"]
        return out, {
            "settings": given,
            "regularisers": regs,
            "iterations": iterations,
            "distill_seconds": hist["distill_seconds"],
        }

    return val_search(book, f"search-{iterations}it", names, distill_one, dataset)


def diversity(book: ResultBook, dataset, iterations: int) -> None:
    """Per-class diversity of every searched set whose artifact is here, and of a random real subset of the
    same size (the reference): the mean pairwise distance in a real-data ConvNet-3's embedding."""
    from gendistill.evaluate import select
    from gendistill.evaluate.prior_quality import class_diversity, real_classifier

    embed = real_classifier(dataset, 2, 0, torch.device("cpu"))
    sets = {"diversity-real-ipc10": select(dataset, "random", 10, seed=0)}
    for name in SEARCH:
        out = RUNS / f"search-{name}-{iterations}it"
        if book.done(f"search-{iterations}it-{name}") and (out / "config.json").is_file():
            sets[f"diversity-search-{iterations}it-{name}"] = load(out).training_set()
    for key, e in list(book.data["entries"].items()):  # the measured runs whose artifacts are here
        if "config" in e and (RUNS / key / "config.json").is_file():
            sets[f"diversity-{key}"] = load(RUNS / key).training_set()
    for key, data in sets.items():  # entries of their own: the searched rows keep their provenance
        div = {str(c): v for c, v in class_diversity(data.images, data.labels, embed).items()}
        if book.data["entries"].get(key, {}).get("diversity") != div:
            book.add(key, {"diversity": div, "images": len(data.labels)})


# the rows of the ablation (matching only, + intra, + inter, both; + the class anchor; screened codes)
ABLATION = (
    "fresh-0-no-reg",
    "fresh-0-intra",
    "fresh-0-inter",
    "fresh-0",
    "fresh-0-classify-10",
    "fresh-0-classify-10-teacher",
)


def render_search(book: ResultBook, class_names: list[str]) -> None:
    entries = book.data["entries"]
    real = entries.get("diversity-real-ipc10", {}).get("diversity")
    rows = []
    for key, e in entries.items():
        if not key.startswith("search-"):
            continue
        div = entries.get(f"diversity-{key}", {}).get("diversity")
        least = min(div, key=div.get) if div else None
        rows.append(
            {
                "setting": e["value"],
                "changed": ", ".join(f"{k}={v}" for k, v in e["settings"].items()) or "-",
                "regularisers": ", ".join(f"{k}={v:g}" for k, v in e["regularisers"].items()),
                "iterations": e["iterations"],
                "distill s": f"{e['distill_seconds']:.0f}",
                "val acc %": f"{100 * e['val_acc']:.2f}",
                "diversity (mean over classes)": f"{sum(div.values()) / len(div):.2f}" if div else "",
                "least diverse class": f"{class_names[int(least)]}: {div[least]:.2f}" if div else "",
            }
        )
    series = {
        name: [(int(c), v) for c, v in entries[f"diversity-search-150it-{name}"]["diversity"].items()]
        for name in ABLATION
        if f"diversity-search-150it-{name}" in entries
    }
    if real:
        series["real images (random subset)"] = [(int(c), v) for c, v in real.items()]
    line_plot(
        series,
        f"class (0 = {class_names[0]} ... {len(class_names) - 1} = {class_names[-1]})",
        "mean pairwise distance",
        RESULTS / "grids" / "dcgm-diversity.png",
        title="Per-class diversity of IPC-10 sets in a real-data ConvNet-3's embedding",
    )
    notes = (
        "IPC 10, seed 0, `--precision auto` (bf16 on the AVX-512 EPYC, fp32 on the AVX2 one); validation "
        "split (carved from the training set), one 300-epoch DSA training of ConvNet-3 per row: choices only, "
        "never test numbers. Diversity: "
        "mean pairwise distance of a class's images in a real-data ConvNet-3's embedding (2 epochs on the "
        "training split)"
        + (f"; a random real subset of the same size: {sum(real.values()) / len(real):.2f}." if real else "."),
    )
    book.write_table(
        rows,
        "DCGM-style settings and ablation on the validation split",
        "python benchmarks/run_dcgm.py --search [NAMES] --diversity",
        notes,
        stem="dcgm_search",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=["dcgm", "dim"], default="dcgm")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--cells", nargs="+", default=["a1", "a10", "b10"])
    ap.add_argument("--epochs", type=int, help="evaluation epochs (default: the paper preset's 1000 with DSA)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--search", nargs="*", choices=list(SEARCH), help="score these settings on the validation split")
    ap.add_argument("--search-iterations", type=int, default=150)
    ap.add_argument("--tag", help="a name for a new run beside earlier ones of the same method and budget")
    ap.add_argument("--prior", help="the generator to start from: a prior folder (default: the shipped one)")
    ap.add_argument("--diversity", action="store_true", help="per-class diversity of the searched sets")
    ap.add_argument("--scaling", action="store_true", help="stored bytes and peak memory as classes / resolution grow")
    ap.add_argument("--peaks", action="store_true", help="peak memory of the recorded runs whose artifacts are here")
    args = ap.parse_args()
    book = ResultBook("dcgm")
    if args.scaling:  # its own file: it may run beside a search, which writes dcgm.json
        return scaling(ResultBook("dcgm_scaling"))
    if args.peaks:
        peaks(book)
        return render(book)
    dataset = load_dataset("fashion-mnist")
    if args.search is not None:
        best = search(book, dataset, args.search or list(SEARCH), args.search_iterations)
        print(f"best on validation: {best}")
    if args.diversity:
        diversity(book, dataset, args.search_iterations)
    if args.search is not None or args.diversity:
        render_search(book, dataset.classes)
        return render(book)
    if args.prior:
        record_prior(book, Path(args.prior), dataset)
    run_key = f"{args.method}-ipc10-{args.minutes:g}min" + (f"-{args.tag}" if args.tag else "")
    out = RUNS / run_key
    if not book.done(run_key):
        param = METHODS.get(args.method).param_config(prior=args.prior) if args.prior else None
        distill_for(dataset, args.method, 10, out, args.minutes, param=param, precision="auto")
        artifact = load(out)
        hist = artifact.meta["history"]
        book.add(
            run_key,
            {
                "iterations": len(hist["loss"]),
                "distill_seconds": hist["distill_seconds"],
                "storage_bytes": artifact.storage_bytes(),
                "config": artifact.meta["config"],
            },
        )
        (RESULTS / "grids").mkdir(exist_ok=True)
        shutil.copyfile(out / "grid.png", RESULTS / "grids" / f"{run_key}.png")
    if not (out / "config.json").is_file():  # recorded by an earlier session whose artifact is not here
        raise SystemExit(f"{run_key} is recorded but {out} is gone; distil again under a new --tag")
    artifact = load(out)
    for cell in args.cells:
        key = f"{run_key}-{cell}" + (f"-{args.epochs}ep" if args.epochs else "")
        if book.done(key):
            continue
        reading, ipc, cross = READING[cell[0]], int(cell[1:]), cell[0] == "x"
        data, label = training_data(artifact, reading, ipc, seed=0)
        report = evaluate(
            data,
            dataset,
            models=CROSS_NETS if cross else ("convnet",),
            runs=args.runs,
            augment="dsa",
            epochs=CROSS_EPOCHS if cross else args.epochs,
            progress=False,
        )
        book.add(
            key,
            {
                "run": run_key,
                "reading": reading,
                "ipc": ipc,
                "label": label,
                "report": report.to_dict(),
                "storage_bytes": artifact.storage_bytes(),
                "storage_ipc": storage_ipc(artifact.storage_bytes(), dataset),
            },
        )
        for r in report.results:
            print(f"{key} {r.model}: {100 * r.mean:.2f} ± {100 * r.std:.2f}", flush=True)
    render(book)


def record_prior(book: ResultBook, folder: Path, dataset) -> None:
    """A prior given with ``--prior``: its size, training time and quality (a real-data ConvNet-3's accuracy on
    1,000 samples per class and the Fréchet distance to the test images in its embedding, as results/latent.json
    records for the shipped prior), once per prior folder."""
    from gendistill.evaluate.prior_quality import prior_quality
    from gendistill.priors import load_prior

    key = f"prior-{folder.name}"
    if book.done(key):
        return
    prior = load_prior(folder)
    book.add(
        key,
        {
            "prior_config": prior.config_dict(),
            "weights": sum(p.numel() for p in prior.parameters()),
            "quality": prior_quality(prior, dataset),
        },
    )


def pixel_bytes(ipc: int, classes: int = 10, pixels: int = 28 * 28, uint8: bool = False) -> int:
    """Bytes of a pixel set as gendistill stores it (fp32 images and int64 labels: what DM's artifacts hold), or
    with ``uint8`` the images alone at one byte a pixel: reading (c)'s unit, exact for real images."""
    return ipc * classes * pixels if uint8 else ipc * classes * (4 * pixels + 8)


def render_bytes(book: ResultBook) -> None:
    """Accuracy (reading a, ConvNet-3, paper preset) against the bytes a user keeps, pixels next to models."""
    dm, rnd = ResultBook("methods").data["entries"], ResultBook("eval_precision").data["entries"]
    series: dict[str, list[tuple[float, float]]] = {
        "DM pixels": [
            (pixel_bytes(i), 100 * dm[f"dm-ipc{i}"]["report"]["results"][0]["mean"])
            for i in (1, 10, 50)
            if f"dm-ipc{i}" in dm
        ],
        "random real subset": [
            (pixel_bytes(i), 100 * rnd[f"ipc{i}-fp32"]["mean"]) for i in (1, 10, 50) if f"ipc{i}-fp32" in rnd
        ],
        "random real subset, stored as uint8": [
            (pixel_bytes(i, uint8=True), 100 * rnd[f"ipc{i}-fp32"]["mean"])
            for i in (1, 10, 50)
            if f"ipc{i}-fp32" in rnd
        ],
    }
    fixed = [
        e
        for e in book.data["entries"].values()
        if e.get("reading") == "fixed"
        and len(e["report"]["results"]) == 1
        and e["report"]["results"][0]["recipe"]["epochs"] == 1000
    ]
    for e in fixed:  # one line per model, named with its generator's size and the IPCs sampled from it
        ipcs = "/".join(str(i) for i in sorted(x["ipc"] for x in fixed if x["run"] == e["run"]))
        weights = book.data["entries"][e["run"]]["config"]["param"].get("generator_parameters")
        size = f"{weights / 1000:.0f}k weights; " if weights else ""
        series.setdefault(f"{e['run']} ({size}IPC {ipcs})", []).append(
            (e["storage_bytes"], 100 * e["report"]["results"][0]["mean"])
        )
    line_plot(
        series,
        "stored bytes (log)",
        "test accuracy %, reading (a)",
        RESULTS / "grids" / "dcgm-bytes.png",
        logx=True,
        title="Fashion-MNIST, ConvNet-3: accuracy against stored bytes",
    )


def over_three(by_model: dict[str, dict]) -> dict:
    """The protocol's mean over networks (and its spread over runs) of the three named networks' stored results."""
    from dataclasses import fields

    from gendistill.evaluate.protocol import EvalReport, ModelResult

    names = {f.name for f in fields(ModelResult)}
    results = [ModelResult(**{k: v for k, v in by_model[m].items() if k in names}) for m in CROSS_NETS]
    return EvalReport("", "", "", "", "", 0, results).over_networks()


def render_cross(book: ResultBook) -> None:
    """Cross-architecture accuracy of the generator sets at IPC 10, beside the committed pixel and H-GLaD
    sets trained the same way (results/latent.json's 100-epoch column)."""
    latent = ResultBook("latent").data["entries"]
    reports = {
        key: e["report"] for key, e in book.data["entries"].items() if "report" in e and len(e["report"]["results"]) > 1
    }
    if not reports:
        return
    for name in ("pixels-ipc10", "hglad-ipc10"):  # the committed references, their 3 named networks only
        if name in latent:
            results = [r for r in latent[name]["cross"]["results"] if r["model"] in CROSS_NETS]
            reports[f"{name} (results/latent.json)"] = {"results": results}
    rows = []
    for key, report in reports.items():
        by_model = {r["model"]: r for r in report["results"]}
        over = over_three(by_model)
        rows.append(
            {
                "set": key,
                **{m: network_cell(by_model[m]) for m in CROSS_NETS},
                "mean of the three %": f"{100 * over['mean']:.2f} ± {100 * over['std']:.2f}",
                "runs": len(over["per_run"]),
            }
        )
    book.write_table(
        rows,
        "Cross-architecture accuracy of the generator sets at IPC 10 (reading a)",
        "python benchmarks/run_dcgm.py [--method dim] --tag T --cells x10",
        notes=(
            f"{CROSS_EPOCHS}-epoch DSA training of each network with its registered recipe "
            "(AlexNet: AdamW), test split, final epoch; the pixel and H-GLaD rows are the "
            "committed 3-run cross-architecture entries of results/latent.json (same epochs and "
            "recipes). The mean is over the three networks per run, then over runs.",
        ),
        stem="dcgm_cross",
    )


def render(book: ResultBook) -> None:
    entries = book.data["entries"]
    dm = ResultBook("methods").data["entries"]
    rows = []
    for key, e in entries.items():
        if "report" not in e or len(e["report"]["results"]) > 1:  # the cross-architecture cells: render_cross
            continue
        run, peak = entries[e["run"]], entries.get(f"peak-{e['run']}")
        r = e["report"]["results"][0]
        pixels = dm.get(f"dm-ipc{e['ipc']}")
        rows.append(
            {
                "cell": key,
                "reading": f"({'a' if e['reading'] == 'fixed' else 'b'}) {e['reading']}",
                "IPC": e["ipc"],
                "acc %": f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}"
                if len(r["accuracies"]) > 1
                else f"{100 * r['mean']:.2f} (1 run)",
                "epochs": r["recipe"]["epochs"],
                "stored bytes": f"{e['storage_bytes']:,}",
                "storage-eq. IPC (c)": f"{e['storage_ipc']:.1f}",
                "distillation": f"{run['iterations']} its, {run['distill_seconds'] / 60:.1f} min",
                "peak RSS MB": f"{peak['peak_rss_mb']:.0f}" if peak else "",
                "DM pixels, same IPC": (
                    f"{100 * pixels['report']['results'][0]['mean']:.2f} ({pixels['distill_seconds'] / 60:.0f} min)"
                )
                if pixels
                else "",
            }
        )
    render_bytes(book)
    render_cross(book)
    book.write_table(
        rows,
        "DCGM-style and DiM-style generator sets under the readings of IPC",
        "python benchmarks/run_dcgm.py [--method dim] [--tag T] [--cells ...] [--runs N]",
        notes=(
            "ConvNet-3, DSA training, 3 runs unless a row says 1, test split, final epoch. Stored "
            "IPC 10; reading (a) samples the stored codes first, then fresh ones; (b) draws fresh "
            "class-balanced samples every epoch. DM pixels: results/methods.json, the paper "
            "preset. Peak RSS: the distilling process's (torch included), re-measured over "
            f"{PEAK_ITERATIONS} iterations of the run's method and prior in a fresh process "
            "(`--peaks`), where the run's artifact is here.",
        ),
    )


if __name__ == "__main__":
    main()
