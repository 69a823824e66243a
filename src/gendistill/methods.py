"""A method is a parameterisation + an objective + a schedule; this registry names the combinations.

``distill(dataset, "dm", ipc=10, out="runs/dm10")`` builds them from the published defaults (see
METHODS.md), applies overrides, runs the one engine, and writes the artifact with its grid.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from gendistill.artifact import SyntheticSet, make_meta
from gendistill.augment import DSA, strategy_for
from gendistill.data import ImageDataset
from gendistill.distill import History, Schedule, distributed, run
from gendistill.errors import UserError
from gendistill.evaluate.crfd import CRFD
from gendistill.io import check_new_dir
from gendistill.objectives import OBJECTIVES, MatchContext
from gendistill.params import PARAMS, Parameterisation
from gendistill.params.latent import LATENT_LR, LatentSpace
from gendistill.priors import recommended_lr
from gendistill.registry import Registry
from gendistill.runtime import pick_device


@dataclass(frozen=True)
class Method:
    objective: str
    augment: bool  # siamese DSA during matching
    lr: float  # learning rate of the synthetic images
    iterations: int  # the paper's count
    eval_augment: str  # what the evaluation recipe should use
    lr_high_ipc: float | None = None  # DM raises the image lr at IPC >= 100


METHODS: Registry[Method] = Registry("method")
SHARDABLE = ("dm",)  # objectives whose classes are independent, so torchrun can shard them
METHODS.register("dc")(Method("dc", False, 0.1, 1000, "none"))
METHODS.register("dsa")(Method("dc", True, 0.1, 1000, "dsa"))
METHODS.register("dm")(Method("dm", True, 1.0, 20000, "dsa", lr_high_ipc=10.0))
# MTT's image lr for un-whitened pixels; the paper tuned it per dataset (1000 for ZCA'd CIFAR), not for
# Fashion-MNIST, so this is our choice.
METHODS.register("mtt")(Method("mtt", True, 100.0, 5000, "dsa"))


def _with_default_lrs(space: LatentSpace, objective: str) -> LatentSpace:
    """Learning rates the user left unset: the prior's own measured ones if it records them, else GLaD's."""
    lr_f, lr_w = recommended_lr(space.prior, objective) or LATENT_LR[objective]
    return replace(space, lr_f=space.lr_f if space.lr_f is not None else lr_f,
                   lr_w=space.lr_w if space.lr_w is not None else lr_w)  # fmt: skip


def _walk(params: Parameterisation, space: LatentSpace | None, iterations: int) -> dict:
    """H-GLaD: the iterations split evenly over the layers from the first one to the last feature map;
    GLaD: one stage. Either may keep its lowest-CRFD snapshot (of each stage)."""
    if space is None:
        return {}
    stages = params.prior.num_layers - params.k if space.name == "hglad" else 1
    per_stage = max(1, iterations // stages)
    select_every = space.select_every or max(1, per_stage // 5)
    return {"stage_iterations": per_stage if stages > 1 else 0,
            "select_every": select_every if space.select != "none" else 0}  # fmt: skip


COMPILE_MIN_ITERATIONS = 20  # compiling costs ~12 s once and saves ~1.5 s per DM iteration on a 2-core CPU


def distill(
    dataset: ImageDataset,
    method: str,
    ipc: int,
    out: str | os.PathLike,
    iterations: int | None = None,
    lr: float | None = None,
    init: str = "real",
    model: str = "convnet",
    real_batch: int = 256,
    seed: int = 0,
    device: str | None = None,
    checkpoint_every: int = 0,
    eval_every: int = 0,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    objective_options: dict | None = None,
    compile: bool | str = "auto",
    on_iteration: Callable[[int, Parameterisation, History], bool | None] | None = None,
    space: LatentSpace | None = None,
) -> SyntheticSet:
    """Distil ``dataset`` into ``ipc`` images per class with ``method``; write the artifact to ``out``.

    ``space``: where the synthetic set lives; None = pixels, else a prior's latents (GLaD, H-GLaD).

    Checkpoints go to ``<out>.partial/`` and are removed once the artifact is written; ``resume=True``
    continues from there and ends with the same artifact as an uninterrupted run.
    """
    spec = METHODS.get(method)
    out = Path(out)
    if not resume:
        check_new_dir(out, force)
    if iterations is not None and iterations < 1:
        raise UserError(f"iterations must be at least 1, got {iterations}")
    rank, size = distributed.world()
    if size > 1 and spec.objective not in SHARDABLE:
        raise UserError(f"sharding classes over processes works for {', '.join(SHARDABLE)} only; run {method} in one")
    dev = distributed.local_device(pick_device(device))
    gen = torch.Generator().manual_seed(seed)
    space = _with_default_lrs(space, spec.objective) if space is not None else None
    params = PARAMS.get(space.name if space else "pixels")(dataset, ipc, init, gen, space, dev)
    objective = OBJECTIVES.get(spec.objective)(ipc=ipc, **(objective_options or {}))
    augment = DSA(strategy_for(dataset.name)) if spec.augment else None
    classes = distributed.owned_classes(dataset.num_classes, rank, size)
    total = iterations or spec.iterations
    ctx = MatchContext(dataset, model, augment, dev, seed, real_batch, classes=classes,
                       compile=total >= COMPILE_MIN_ITERATIONS if compile == "auto" else bool(compile))  # fmt: skip
    image_lr = lr if lr is not None else (spec.lr_high_ipc if spec.lr_high_ipc and ipc >= 100 else spec.lr)
    schedule = Schedule(total, image_lr, checkpoint_every=checkpoint_every, eval_every=eval_every,
                        **_walk(params, space, total))  # fmt: skip
    selector = CRFD(dataset, model, seed=seed, device=dev).of if space and space.select == "crfd" else None
    partial = out.with_name(out.name + ".partial")
    ckpt = partial / f"rank{rank}" if size > 1 else partial
    history = run(params, objective, ctx, schedule, ckpt, resume, progress and rank == 0, on_iteration, selector)
    if size > 1:
        distributed.merge(params, classes)
        history.losses = distributed.sum_losses(history.losses, dev)
    config = {"method": method, "ipc": ipc, "init": init, "model": model, "real_batch": real_batch,
              "augment": augment.strategy if augment else "none", "schedule": vars(schedule),
              "objective": {"name": spec.objective, **objective.config()},
              "param": {"name": space.name if space else "pixels", **params.describe(),
                        **({"prior": space.prior_ref(), "select": space.select} if space else {})}}  # fmt: skip
    meta = make_meta(method, dataset, ipc, config, seed)
    meta["eval_augment"] = spec.eval_augment
    meta["history"] = {"loss": history.losses, "val": history.val, "distill_seconds": history.seconds,
                       "selected": history.selected}  # fmt: skip
    meta["world_size"] = size
    synthetic = params.to_synthetic_set(meta, lr=objective.artifact_lr())
    if rank == 0:
        synthetic.save(out, force=force or resume)
        if partial.exists():
            import shutil

            shutil.rmtree(partial, ignore_errors=True)
    if size > 1:
        distributed.finish()
    return synthetic
