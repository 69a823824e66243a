"""The fixed image set: the artifact of pixel-space methods, of GLaD/H-GLaD (their rendered images), and
of the real-subset baselines.

Folder layout (:mod:`gendistill.store`, ``_class_name`` ``"ImageSet"``)::

    synthetic.safetensors   images [N,C,H,W] (normalised), labels [N] (int64); optional soft_labels
                            [N,K], lr [] (a learned learning rate), extra.* (what rendered the images)
    config.json             method, dataset and its identity, ipc, image shape, normalisation, config,
                            seed, storage bytes, creation time
    grid.png                the images, one row per class

Folders of format 1 (``meta.json`` instead of ``config.json``) load unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gendistill.artifacts.base import GRID_FILE, Artifact
from gendistill.errors import UserError
from gendistill.store import Stored

TENSORS = "synthetic"  # synthetic.safetensors
TENSORS_FILE = f"{TENSORS}.safetensors"
__all__ = ["GRID_FILE", "TENSORS", "TENSORS_FILE", "ImageSet"]


@dataclass
class ImageSet(Dataset, Artifact):
    """A labeled synthetic image set; a torch ``Dataset`` of ``(image, label)``.

    It also serves the evaluator's ``epoch(epoch, generator)`` interface (the same images every epoch);
    artifacts that sample anew each epoch implement the same method.
    """

    images: torch.Tensor
    labels: torch.Tensor
    meta: dict = field(default_factory=dict)
    soft_labels: torch.Tensor | None = None
    lr: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    class_name = "ImageSet"

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.labels.ndim != 1 or len(self.images) != len(self.labels):
            raise ValueError(f"images {tuple(self.images.shape)} and labels {tuple(self.labels.shape)} do not pair up")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    @property
    def targets(self) -> torch.Tensor:
        """What the evaluator trains toward: soft labels where stored, else class indices."""
        return self.soft_labels if self.soft_labels is not None else self.labels

    def epoch(self, epoch: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images, self.targets

    def training_set(self) -> ImageSet:
        return self

    @property
    def learned_lr(self) -> float | None:
        return None if self.lr is None else float(self.lr)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"images": self.images, "labels": self.labels}
        if self.soft_labels is not None:
            out["soft_labels"] = self.soft_labels
        if self.lr is not None:
            out["lr"] = self.lr.reshape(())
        out.update({f"extra.{k}": v for k, v in self.extra.items()})
        return {k: v.detach().to("cpu").contiguous() for k, v in out.items()}

    def storage_bytes(self) -> int:
        """Bytes of what a user must keep to train on this set (the rendered images and their labels)."""
        return sum(t.numel() * t.element_size() for k, t in self.tensors().items() if not k.startswith("extra."))

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write the folder atomically; missing parent folders are created, an existing one needs ``force``."""
        described = {"num_images": len(self), "image_shape": list(self.image_shape)}
        return self.write(path, force, described, {TENSORS: self.tensors()}, grid=self)

    @classmethod
    def from_stored(cls, stored: Stored) -> ImageSet:
        path, meta = stored.path, stored.settings()
        tensors = stored.tensors(TENSORS)
        if "images" not in tensors or "labels" not in tensors:
            raise UserError(f"{path} holds no images/labels tensors; re-create the artifact")
        images, labels = tensors["images"].float(), tensors["labels"].long()
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(f"{path}: images {tuple(images.shape)} and labels {tuple(labels.shape)} do not pair up")
        if list(images.shape[1:]) != meta.get("image_shape", list(images.shape[1:])):
            raise UserError(f"{path}: images are {list(images.shape[1:])} but its config says {meta['image_shape']}")
        num_classes = meta.get("num_classes")
        if num_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise UserError(f"{path}: labels fall outside 0..{num_classes - 1}; the artifact is corrupted")
        extra = {k.removeprefix("extra."): v for k, v in tensors.items() if k.startswith("extra.")}
        return cls(images, labels, meta, tensors.get("soft_labels"), tensors.get("lr"), extra)

    def pixels(self) -> np.ndarray:
        """The images as NHWC uint8, undoing the stored normalisation."""
        from gendistill.report import to_uint8

        norm = self.meta.get("normalization", {})
        c = self.images.shape[1]
        return to_uint8(self.images, tuple(norm.get("mean", [0.0] * c)), tuple(norm.get("std", [1.0] * c)))

    def grid(self):
        """A PIL image, one row per class."""
        from gendistill.report import class_grid

        k = self.meta.get("num_classes") or (int(self.labels.max()) + 1 if len(self) else 1)
        return class_grid(self.pixels(), self.labels.numpy(), k)
