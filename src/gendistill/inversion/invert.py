"""Diffusion Inversion's first half: learn, for every chosen real image, its own conditioning under a
frozen diffusion prior (``tokens x width``, the text encoder bypassed).

The loss of image i is the prior's denoising loss on i under its embedding e_i, at one uniform random
timestep and one Gaussian noise per image and step (the public recipe's). The total is the *sum* over
images, so the gradient of e_i depends on image i alone; with AdamW (elementwise) every embedding then
follows exactly the path it would follow if it were inverted alone, in any batch. That is what makes the
work shardable: under torchrun each rank inverts the images of its own classes, and the merged set is
bit-identical to a one-process run with the same seed (each image's draws are seeded by its position in
the set, never by its rank or batch).

Cheaper than the public recipe (8,000 steps per group of 100 images from a random start, batch 50): every
image is in every step (in class-wise chunks, so memory stays bounded), and on gendistill's own prior the
start is the image's encoder tokens, already close to a good conditioning (``init="encoder"``).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from gendistill.artifacts import EmbeddingSet, make_meta
from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.io import check_new_dir, partial_dir
from gendistill.priors import load_diffusion_prior
from gendistill.priors.base import from_normalized
from gendistill.priors.diffusion import DiffusionPrior
from gendistill.registry import Registry
from gendistill.report.progress import progress as progress_bar
from gendistill.runtime import autocast, derived_seed, local_device
from gendistill.store.checkpoint import (
    check_partial,
    check_same_run,
    load_checkpoint,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)
from gendistill.validate import MAX_ITERATIONS, check_fields, limit

SPLITS = ("train", "val")  # inversion never reads the test split


@dataclass
class InversionConfig:
    per_class: int = limit(100, ge=1, help="real images per class")
    steps: int = limit(200, ge=1, le=MAX_ITERATIONS, help="optimisation steps")
    # the public recipe's 3e-2 starts from scratch on Stable Diffusion; from the encoder's tokens, less
    lr: float = limit(1e-2, gt=0, help="AdamW learning rate")
    weight_decay: float = limit(1e-2, ge=0, help="AdamW weight decay (the public recipe's)")
    init: str = limit(
        "encoder",
        help="where embeddings start: the image's encoder tokens, N(0, 1), zeros",
        choices=("encoder", "random", "zeros"),
    )
    chunk: int = limit(250, ge=1, help="images per UNet pass (memory only; never changes the result)")
    split: str = limit(
        "train",
        help="invert training images or held-out validation images (to measure reconstruction)",
        choices=("train", "val"),
    )
    seed: int = limit(0, help="seed of every random draw")
    checkpoint_every: int = limit(25, ge=1, help="steps between checkpoints")

    def check(self) -> None:
        check_fields(self)
        if self.split not in SPLITS:
            raise UserError(f"--split must be one of {', '.join(SPLITS)} (the test split is never inverted)")
        INITS.get(self.init)


# where each embedding starts: (prior, images in [-1, 1], keys, seed) -> [N, tokens, width]
INITS: Registry = Registry("inversion start")


@INITS.register("encoder")
def _from_encoder(prior: DiffusionPrior, images: torch.Tensor, keys: list[int], seed: int) -> torch.Tensor:
    if prior.encoder is None:
        raise UserError(
            f"the prior in {prior.source} has no image encoder to start from; use --init random or --init zeros"
        )
    with torch.no_grad():
        return torch.cat(
            [prior.encoder(images[i : i + 256].to(prior.device)).float().cpu() for i in range(0, len(images), 256)]
        )


@INITS.register("random")
def _random(prior: DiffusionPrior, images: torch.Tensor, keys: list[int], seed: int) -> torch.Tensor:
    shape = (prior.tokens, prior.width)
    return torch.stack(
        [torch.randn(shape, generator=torch.Generator().manual_seed(derived_seed(seed, "init", k))) for k in keys]
    )


@INITS.register("zeros")
def _zeros(prior: DiffusionPrior, images: torch.Tensor, keys: list[int], seed: int) -> torch.Tensor:
    return torch.zeros(len(images), prior.tokens, prior.width)


def choose(dataset: ImageDataset, per_class: int, split: str, seed: int) -> torch.Tensor:
    """``per_class`` seeded random indices of each class of ``split``, in class order (class-balanced)."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c, idx in enumerate(dataset.class_indices(split)):
        if len(idx) < per_class:
            raise UserError(
                f"class {dataset.classes[c]} has {len(idx)} {split} images, fewer than --per-class "
                f"{per_class}; lower it"
            )
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picks)


class Inverter:
    """Inverts the images of ``classes`` (this rank's share) of a class-ordered set of ``per_class`` each.

    Every random draw of an image (its start, its timestep and noise at each step) is seeded by its key,
    its index in the dataset's split, so an image's embedding does not depend on which other images are
    inverted with it: the first n per class of an inversion with ``per_class`` N >= n are the inversion
    with ``per_class`` n (the same images are chosen, see :func:`choose`).
    """

    def __init__(
        self,
        prior: DiffusionPrior,
        images: torch.Tensor,
        labels: torch.Tensor,
        config: InversionConfig,
        classes: list[int] | None = None,
        amp: torch.dtype | None = None,
        keys: torch.Tensor | None = None,
    ) -> None:
        """``images``: the whole set mapped to [-1, 1]; ``keys``: each image's index in its split."""
        self.prior, self.config, self.amp = prior, config, amp
        self.labels = labels
        self.keys = (torch.arange(len(labels)) if keys is None else keys).tolist()
        self.classes = sorted(set(labels.tolist())) if classes is None else classes
        self.mine = torch.isin(labels, torch.tensor(self.classes, dtype=labels.dtype))
        self.rows = torch.nonzero(self.mine, as_tuple=True)[0]  # positions in the set this rank inverts
        with torch.no_grad():
            self.z0 = torch.cat([prior.to_model(images[r].to(prior.device)) for r in self.rows.split(256)])
        mine = [self.keys[r] for r in self.rows.tolist()]
        start = INITS.get(config.init)(prior, images[self.rows], mine, config.seed)
        self.embeddings = torch.nn.Parameter(start.to(prior.device))
        self.opt = torch.optim.AdamW([self.embeddings], lr=config.lr, weight_decay=config.weight_decay)
        self.step, self.seconds, self.history = 0, 0.0, []

    def _draws(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each image's timestep and noise at ``step``: seeded by (seed, step, its key)."""
        ts, noises = [], []
        shape = self.z0.shape[1:]
        for row in self.rows.tolist():
            g = torch.Generator().manual_seed(derived_seed(self.config.seed, step, self.keys[row]))
            ts.append(torch.randint(self.prior.num_train_timesteps, (1,), generator=g))
            noises.append(torch.randn(shape, generator=g))
        device = self.prior.device
        return torch.cat(ts).to(device), torch.stack(noises).to(device)

    def _chunks(self) -> list[torch.Tensor]:
        """Local positions, class by class, at most ``chunk`` at a time (the same chunks on any rank count)."""
        local = self.labels[self.rows]
        out = []
        for c in self.classes:
            out.extend(torch.nonzero(local == c, as_tuple=True)[0].split(self.config.chunk))
        return out

    def train_step(self) -> float:
        t, noise = self._draws(self.step)
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for part in self._chunks():
            part = part.to(self.prior.device)
            with autocast(self.prior.device, self.amp):
                loss = self.prior.denoising_loss(self.z0[part], self.embeddings[part], t[part], noise[part]).sum()
            loss.backward()
            total += float(loss.detach())
        self.opt.step()
        self.step += 1
        return total

    def run_config(self) -> dict:
        """What a resume must share with the run it continues (more steps are fine)."""
        inversion = {k: v for k, v in asdict(self.config).items() if k not in ("steps", "checkpoint_every")}
        return {
            "inversion": inversion,
            "classes": self.classes,
            "rows": len(self.rows),
            "prior": self.prior.source,
            "precision": "fp32" if self.amp is None else "bf16",
        }

    def save(self, folder: Path) -> None:
        opt_tensors, opt_info = optimizer_tensors(self.opt, "opt")
        info = {
            "step": self.step,
            "seconds": self.seconds,
            "history": self.history,
            "opt": opt_info,
            "run_config": self.run_config(),
        }
        save_checkpoint(folder, {"embeddings": self.embeddings.detach(), **opt_tensors}, info)

    def restore(self, folder: Path) -> None:
        tensors, info = load_checkpoint(folder)
        check_same_run(info, self.run_config(), folder)
        with torch.no_grad():
            self.embeddings.copy_(tensors["embeddings"])
        restore_optimizer(self.opt, tensors, info["opt"], "opt")
        self.step, self.seconds, self.history = info["step"], info["seconds"], info["history"]

    def run(self, checkpoint: Path | None = None, progress: bool = True) -> torch.Tensor:
        """Invert to ``config.steps``, checkpointing into ``checkpoint`` (resuming from it when present);
        returns this rank's embeddings ``[len(rows), tokens, width]``."""
        if checkpoint is not None and checkpoint.is_dir():
            self.restore(checkpoint)
        bar = progress_bar(total=self.config.steps, initial=self.step, desc="invert", disable=not progress)
        while self.step < self.config.steps:
            t0 = time.perf_counter()
            total = self.train_step()
            self.seconds += time.perf_counter() - t0
            self.history.append(total)  # summed over this rank's images: ranks' histories add up
            bar.update(1)
            bar.set_postfix_str(f"loss {total / max(1, len(self.rows)):.4f}", refresh=False)
            if checkpoint is not None and (
                self.step % self.config.checkpoint_every == 0 or self.step == self.config.steps
            ):
                self.save(checkpoint)
        bar.close()
        return self.embeddings.detach().clone()


def real_images(dataset: ImageDataset, split: str, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The chosen images in [-1, 1] (the diffusion prior's range) and their labels."""
    images = getattr(dataset, f"{split}_images")[indices]
    labels = getattr(dataset, f"{split}_labels")[indices]
    return from_normalized(images, dataset.mean, dataset.std).clamp(-1, 1), labels


def invert(
    prior_spec: str,
    dataset: ImageDataset,
    config: InversionConfig,
    out: str | Path,
    *,
    device: torch.device,
    amp: torch.dtype | None = None,
    resume: bool = False,
    force: bool = False,
    trust_pickle: bool = False,
    progress: bool = True,
) -> EmbeddingSet | None:
    """Invert ``per_class`` images of each class into an embedding set at ``out`` (rank 0 writes it; under
    torchrun every rank inverts its own classes). Checkpoints go to ``<out>.partial/rank<r>of<n>/``."""
    from gendistill.distill import distributed as dd

    config.check()
    out = check_new_dir(out, force, create_parents=True)
    partial = partial_dir(out)
    rank, size = dd.world()
    if rank == 0:
        check_partial(partial, resume, force)
    if size > 1:
        dd.barrier()  # no rank writes its checkpoint before rank 0 has cleared a stale partial run
    device = local_device(device)
    prior, folder = load_diffusion_prior(prior_spec, dataset, "invert", trust_pickle, device)
    indices = choose(dataset, config.per_class, config.split, config.seed)
    images, labels = real_images(dataset, config.split, indices)
    classes = dd.owned_classes(dataset.num_classes, rank, size)
    inverter = Inverter(prior, images, labels, config, classes, amp, keys=indices)
    mine = inverter.run(partial / f"rank{rank}of{size}", progress and rank == 0)
    full = torch.zeros(len(labels), *mine.shape[1:], device=mine.device)
    full[inverter.rows.to(mine.device)] = mine
    dd.merge_rows(full, inverter.mine)
    history = dd.sum_losses(inverter.history, device) if size > 1 else inverter.history
    seconds = dd.max_scalar(inverter.seconds, device)  # the slowest rank's
    result = None
    if rank == 0:
        meta = make_meta("diffusion-inversion", dataset, config.per_class, asdict(config), config.seed)
        meta.update(
            {
                "split": config.split,
                "image_shape": list(dataset.image_shape),
                "processes": size,
                "seconds": round(seconds, 1),
                "images_per_minute": round(60 * len(labels) / max(seconds, 1e-9), 1),
                "loss": [round(v / len(labels), 6) for v in history],
                "precision": "fp32" if amp is None else "bf16",
            }
        )
        result = EmbeddingSet.for_prior(full.cpu(), labels, folder, meta, indices)
        result.save(out, force=True)
        shutil.rmtree(partial, ignore_errors=True)
    if size > 1:
        dd.finish()
    return result
