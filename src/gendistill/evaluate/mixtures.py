"""Training on real, generated, or real + generated images at a fixed budget of optimisation steps (the
sample-efficiency protocol of Diffusion Inversion).

A generated set made by ``gendistill generate`` records which real images its embeddings were inverted
from (``extra["real_indices"]``, indices of the training split). Three mixes at the same n real images
per class:

- ``real``: those n real images per class alone;
- ``generated``: the generated images alone;
- ``both``: their union.

Epoch-based training would favour the larger set (more images, more steps per epoch), so every mix trains
for exactly ``steps`` SGD steps of ``batch`` images each: :class:`StepStream` serves one full batch per
"epoch" from a seeded stream of shuffles of the mix (re-shuffled each time it is used up), so the
evaluator's schedule (lr x0.1 at half of the training) is at half of the steps for every mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gendistill.artifacts import ImageSet
from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.runtime import derived_seed

MIXES = ("generated", "real", "both")


@dataclass
class StepStream:
    """One batch per call of ``epoch``: batch ``e`` is positions ``e*batch .. (e+1)*batch - 1`` of an endless
    stream of seeded shuffles of the set (shuffle r permutes the whole set with a generator of (seed, r))."""

    images: torch.Tensor
    targets: torch.Tensor
    batch: int
    seed: int = 0

    def __post_init__(self) -> None:
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, r: int) -> torch.Tensor:
        if r not in self._perms:
            self._perms = {
                r: torch.randperm(
                    len(self.images), generator=torch.Generator().manual_seed(derived_seed(self.seed, r, 23))
                )
            }
        return self._perms[r]

    def epoch(self, epoch: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.images)
        idx = []
        for k in range(epoch * self.batch, (epoch + 1) * self.batch):
            idx.append(self._perm(k // n)[k % n])
        idx = torch.stack(idx)
        return self.images[idx], self.targets[idx]


def real_part(images: ImageSet, dataset: ImageDataset) -> ImageSet:
    """The real images a generated set was made from (the training split's recorded indices)."""
    indices = images.extra.get("real_indices")
    if indices is None:
        raise UserError(
            "this set records no real images it was made from (only sets written by gendistill "
            "generate do); drop --train-on"
        )
    if int(indices.max()) >= len(dataset.train_images):
        raise UserError(
            f"the set's real indices reach {int(indices.max())}, beyond {dataset.name}'s training split; "
            "evaluate with the --val-fraction the inversion used"
        )
    return real_subset(dataset, indices, images.meta)


def real_subset(dataset: ImageDataset, indices: torch.Tensor, meta: dict | None = None) -> ImageSet:
    """The training split's images at ``indices`` as a set (e.g. the real images an inversion used, without
    generating anything from them)."""
    labels = dataset.train_labels[indices]
    meta = {**(meta or {}), "method": "real", "ipc": int(torch.bincount(labels).max())}
    return ImageSet(dataset.train_images[indices], labels, meta)


def mix(images: ImageSet, dataset: ImageDataset, train_on: str) -> ImageSet:
    """The images to train on under ``train_on`` (one of :data:`MIXES`)."""
    if train_on not in MIXES:
        raise UserError(f"--train-on must be one of {', '.join(MIXES)}, got {train_on!r}")
    if train_on == "generated":
        return images
    real = real_part(images, dataset)
    if train_on == "real":
        return real
    meta = {**images.meta, "method": f"real+{images.meta.get('method', 'generated')}"}
    return ImageSet(torch.cat([real.images, images.images]), torch.cat([real.labels, images.labels]), meta)


def fixed_steps(images: ImageSet, batch: int, seed: int) -> StepStream:
    """``images`` served one full batch per evaluator epoch: train with ``epochs=steps``."""
    if images.soft_labels is not None:
        raise UserError("a fixed step budget is not implemented for soft-label sets; drop --steps")
    return StepStream(images.images, images.labels, batch, seed)
