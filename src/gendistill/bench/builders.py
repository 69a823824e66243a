"""How a cell makes what its protocols train on: a registry from the cell's method to a builder.

A builder writes the cell's artifact into its folder and returns what the store records (distillation
time, iterations, stored bytes); ``training_data`` reads it back for the evaluator. Distillation methods
go through :func:`gendistill.methods.distill` with the cell's budget (``RunOptions.iterations`` and
``minutes``: the library stops the run, no loop here); the baselines through
:func:`gendistill.evaluate.select`; ``full`` writes nothing (it trains on the training split).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from gendistill.artifacts import ImageSet, load
from gendistill.bench.suite import Cell
from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.evaluate.trainer import TrainingData
from gendistill.io import partial_dir
from gendistill.registry import Registry

Builder = Callable[[Cell, ImageDataset, Path, bool], dict]  # (cell, dataset, out folder, show progress)
BUILDERS: Registry[Builder] = Registry("cell builder")


def builder_for(method: str) -> Builder:
    return BUILDERS.get(method if method in BUILDERS else "distill")


def check_cell(cell: Cell) -> None:
    """Build what a cell's run would be built from, so that a suite's every cell is checked (unknown option
    keys, values out of range) before its first cell runs."""
    if cell.method == "diffusion-inversion":
        inversion_settings(cell)
    elif cell.method not in BUILDERS:
        distill_settings(cell)


def distill_settings(cell: Cell) -> tuple[object, object]:
    """The parameterisation config and ``RunOptions`` of a distillation cell, read by the same function as
    ``gendistill distill`` and ``--config`` (:func:`gendistill.methods.settings`); a bad key is one line."""
    from gendistill.methods import settings

    options = dict(cell.options)
    budget = {"iterations", "minutes", "seed"} & set(options)
    if budget:
        raise UserError(f"cell {cell.name}: {', '.join(sorted(budget))} belong in the cell's budget and seed")
    options.update(
        iterations=cell.budget.iterations,
        minutes=cell.budget.minutes,
        seed=cell.seed,
        checkpoint_every=options.get("checkpoint_every", 10),
    )
    try:
        return settings(cell.method, dict(cell.param) if cell.param else None, options)
    except UserError as e:
        raise UserError(f"cell {cell.name}: {e}") from None


def _known(cell: Cell, what: str, given: dict, valid: set[str]) -> None:
    unknown = sorted(set(given) - valid)
    if unknown:
        raise UserError(f"cell {cell.name}: unknown {what} key(s) {unknown}; valid: {', '.join(sorted(valid))}")


@BUILDERS.register("distill")
def _distill(cell: Cell, dataset: ImageDataset, out: Path, progress: bool = False) -> dict:
    from gendistill.methods import distill

    param, run = distill_settings(cell)
    partial = partial_dir(out)
    # the folder is the bench's own (named by the cell's key): one left whole but not adopted is remade
    resume = partial.exists()
    artifact = distill(
        dataset, cell.method, cell.ipc, out, param, run, resume=resume, force=not resume, progress=progress
    )
    hist = artifact.meta.get("history", {})
    return {
        "distill_seconds": hist.get("distill_seconds"),
        "iterations": len(hist.get("loss", [])),
        "stored_bytes": artifact.storage_bytes(),
    }


def _select(cell: Cell, dataset: ImageDataset, out: Path, progress: bool = False) -> dict:
    from gendistill.evaluate import select

    subset = select(dataset, cell.method, cell.ipc, seed=cell.seed)
    subset.save(out, force=True)
    return {"distill_seconds": 0.0, "iterations": 0, "stored_bytes": subset.storage_bytes()}


BUILDERS.register("random")(_select)
BUILDERS.register("herding")(_select)


@BUILDERS.register("diffusion-inversion")
def _diffusion_inversion(cell: Cell, dataset: ImageDataset, out: Path, progress: bool = False) -> dict:
    """Diffusion Inversion as a distiller: invert ``per_class`` real images per class into the prior's
    conditioning space (``budget: {iterations: N}``: N inversion steps; resumable), then sample ``ipc``
    images per class from class-level conditionings (k-means modes by default). ``options``: ``prior``
    (default: the shipped ``fashion-mnist-diffusion``), ``per_class`` (100), ``invert`` and ``generate``:
    further fields of :class:`InversionConfig` / :class:`GenerateConfig`."""
    import time

    from gendistill.inversion.generate import generate
    from gendistill.inversion.invert import invert
    from gendistill.priors import load_diffusion_prior
    from gendistill.runtime import Runtime

    prior_spec, inv_config, gen_config, options = inversion_settings(cell)
    rt = Runtime.resolve("auto", options.get("precision", "auto"))
    device, amp = rt.device, rt.amp
    embeddings_dir = out.with_name(out.name + ".embeddings")
    t0 = time.perf_counter()
    if not (embeddings_dir / "config.json").is_file():
        resume = partial_dir(embeddings_dir).exists()
        invert(
            prior_spec, dataset, inv_config, embeddings_dir, device=device, amp=amp, resume=resume, progress=progress
        )
    inverted = load(embeddings_dir)
    invert_seconds = time.perf_counter() - t0
    prior, _ = load_diffusion_prior(prior_spec, dataset, "diffusion-inversion", device=device)
    images = generate(prior, inverted, gen_config, amp, progress=progress)
    images.save(out, force=True)
    return {
        "distill_seconds": round(invert_seconds + images.meta["generate_seconds"], 2),
        "iterations": inv_config.steps,
        "stored_bytes": images.storage_bytes(),
    }


def inversion_settings(cell: Cell) -> tuple[str, object, object, dict]:
    """A diffusion-inversion cell's prior, inversion and generation configs, and its options, checked."""
    from gendistill.inversion.generate import GenerateConfig
    from gendistill.inversion.invert import InversionConfig

    options = dict(cell.options)
    _known(cell, "diffusion-inversion options", options, {"prior", "per_class", "invert", "generate", "precision"})
    if cell.budget.minutes:
        raise UserError(f"cell {cell.name}: diffusion-inversion takes budget {{iterations: N}} (inversion steps)")
    prior_spec = str(options.get("prior", f"{cell.dataset}-diffusion"))
    steps = {"steps": cell.budget.iterations} if cell.budget.iterations else {}
    for part, config_class in (("invert", InversionConfig), ("generate", GenerateConfig)):
        _known(cell, f"options.{part}", options.get(part, {}), {f.name for f in fields(config_class)})
    inv_config = InversionConfig(
        **{"per_class": options.get("per_class", 100), **steps, **options.get("invert", {}), "seed": cell.seed}
    )
    gen_config = GenerateConfig(**{**options.get("generate", {}), "ipc": cell.ipc, "seed": cell.seed})
    inv_config.check()
    gen_config.check()
    return prior_spec, inv_config, gen_config, options


@BUILDERS.register("full")
def _full(cell: Cell, dataset: ImageDataset, out: Path, progress: bool = False) -> dict:
    images = dataset.train_images
    return {"distill_seconds": 0.0, "iterations": 0, "stored_bytes": images.numel(), "images": len(images)}


def training_data(cell: Cell, dataset: ImageDataset, out: Path) -> tuple[TrainingData, dict]:
    """What the cell's protocols train on, and its artifact's meta (empty for ``full``)."""
    if cell.method == "full":
        return ImageSet(dataset.train_images, dataset.train_labels), {}
    from gendistill.evaluate.readings import training_data as fixed_set

    artifact = load(out)
    data, _ = fixed_set(artifact, "fixed", None, cell.seed)  # reading (a): the stored fixed set
    return data, artifact.meta
