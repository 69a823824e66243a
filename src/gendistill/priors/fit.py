"""Train a prior into a folder, with the lifecycle of every long run: checkpoints and sample grids in
``<out>.partial/`` until the end, ``resume`` from them, ``force`` to start over, and the finished prior
written atomically (weights + config, its loss history and its sample grids)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.io import check_new_dir, partial_dir, write_json
from gendistill.runtime import Runtime
from gendistill.store.checkpoint import check_partial

# what shapes each kind's network (the rest of a recipe is the training's)
SHAPE = {
    "gan": ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max"),
    "diffusion": ("block_channels", "tokens", "width"),
}


@dataclass
class TrainedPrior:
    path: Path
    steps: int
    seconds: float  # training steps only, summed over resumed sessions


def train_prior(
    dataset: ImageDataset,
    out: str | os.PathLike,
    kind: str = "gan",
    *,
    shape: dict[str, Any] | None = None,
    recipe: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    precision: str = "auto",
    fp16: bool = False,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
) -> TrainedPrior:
    """Train a ``kind`` prior (``gan``: the class-conditional StyleGAN; ``diffusion``: a diffusers UNet on
    the images without labels) on ``dataset`` into the folder ``out``.

    ``shape``: the network's size (keys in ``SHAPE[kind]``); ``recipe``: the training's settings (fields of
    ``GanRecipe`` or ``DiffusionRecipe``: steps, batch, lr, ...). ``fp16`` stores the weights in float16."""
    if kind not in SHAPE:
        raise UserError(f"unknown prior kind {kind!r}; choose one of: {', '.join(SHAPE)}")
    shape, recipe = dict(shape or {}), dict(recipe or {})
    wrong = sorted(set(shape) - set(SHAPE[kind]))
    if wrong:
        raise UserError(f"{', '.join(wrong)} do(es) not shape a {kind} prior; it takes {', '.join(SHAPE[kind])}")
    out = Path(out)
    partial = partial_dir(out)
    # a run killed after writing <out> but before clearing <out>.partial resumes, and writes <out> again
    check_new_dir(out, force or (resume and partial.is_dir()), create_parents=True)
    check_partial(partial, resume, force)
    rt = Runtime.resolve(device, precision)
    trainer, save = _TRAINERS[kind](dataset, shape, recipe, seed, rt.device, rt.amp)
    history = trainer.run(partial, progress=progress)
    extra = {
        "dataset": dataset.name,
        "steps": trainer.step,
        "train_seconds": round(trainer.seconds, 1),
        "precision": trainer.precision,
    }
    save(out, torch.float16 if fp16 else torch.float32, extra)
    write_json(out / "history.json", history)
    shutil.copytree(partial / "samples", out / "samples", dirs_exist_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    return TrainedPrior(out, trainer.step, trainer.seconds)


def _gan(dataset: ImageDataset, shape: dict, recipe: dict, seed: int, device, amp):
    from gendistill.priors.stylegan import StyleGANConfig
    from gendistill.priors.train import GanRecipe, GanTrainer

    cfg = StyleGANConfig(dataset.num_classes, dataset.image_size, dataset.channels, **shape)
    recipe = {"d_channel_base": cfg.channel_base, "d_channel_max": cfg.channel_max, **recipe}
    trainer = GanTrainer(dataset, cfg, _recipe(GanRecipe, recipe), seed, device, amp)
    return trainer, lambda out, dtype, extra: trainer.G_ema.save_pretrained(out, dtype, True, extra)


def _diffusion(dataset: ImageDataset, shape: dict, recipe: dict, seed: int, device, amp):
    from gendistill.priors.diffusion_train import DiffusionRecipe, DiffusionTrainer

    if "block_channels" in shape:
        shape["block_channels"] = tuple(shape["block_channels"])
    trainer = DiffusionTrainer(dataset, _recipe(DiffusionRecipe, {**shape, **recipe}), seed, device, amp)

    def save(out: Path, dtype, extra: dict) -> Path:
        # the trainer reads the images only, and the prior records it
        return trainer.exported().save_pretrained(out, dtype, True, {**extra, "labels_used": False})

    return trainer, save


def _recipe(cls: type, values: dict) -> Any:
    known = {f.name for f in fields(cls)}
    wrong = sorted(set(values) - known)
    if wrong:
        raise UserError(f"{cls.__name__} has no {', '.join(wrong)}; its fields are {', '.join(sorted(known))}")
    return cls(**values)


_TRAINERS = {"gan": _gan, "diffusion": _diffusion}
