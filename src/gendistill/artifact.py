"""The distilled-set artifact: one safetensors file of tensors plus ``meta.json``.

Layout of an artifact folder::

    synthetic.safetensors   images [N,C,H,W] (normalised), labels [N] (int64); optional soft_labels
                            [N,K], lr [] (a learned learning rate), extra.* (what rendered the images)
    meta.json               method, dataset, ipc, image shape, normalisation, config, seed, version,
                            storage bytes, creation time

Nothing is pickled; loading never runs code from the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch.utils.data import Dataset

from gendistill.errors import UserError
from gendistill.io import atomic_dir, save_tensors, write_json

TENSORS_FILE = "synthetic.safetensors"
GRID_FILE = "grid.png"
META_FILE = "meta.json"
FORMAT_VERSION = 1


def _version() -> str:
    from gendistill import __version__

    return __version__


@dataclass
class SyntheticSet(Dataset):
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
        tensors = self.tensors()
        meta = {**self.meta, "format_version": FORMAT_VERSION, "num_images": len(self),
                "image_shape": list(self.image_shape), "storage_bytes": self.storage_bytes()}  # fmt: skip
        meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        meta.setdefault("gendistill_version", _version())
        with atomic_dir(path, force) as tmp:
            save_tensors(
                tensors,
                tmp / TENSORS_FILE,
                metadata={"gendistill": json.dumps({"format_version": FORMAT_VERSION})},
            )
            write_json(tmp / META_FILE, meta)
            self.grid().save(tmp / GRID_FILE, format="PNG")
        self.meta = meta
        return Path(path)

    def pixels(self) -> np.ndarray:  # noqa: F821
        """The images as NHWC uint8, undoing the stored normalisation."""
        from gendistill.report import to_uint8

        norm = self.meta.get("normalization", {})
        c = self.images.shape[1]
        return to_uint8(self.images, tuple(norm.get("mean", [0.0] * c)), tuple(norm.get("std", [1.0] * c)))

    def grid(self):  # noqa: ANN201
        """A PIL image, one row per class."""
        from gendistill.report import class_grid

        k = self.meta.get("num_classes") or (int(self.labels.max()) + 1 if len(self) else 1)
        return class_grid(self.pixels(), self.labels.numpy(), k)


def make_meta(method: str, dataset, ipc: int, config: dict, seed: int) -> dict:  # noqa: ANN001
    """The metadata every artifact carries; ``dataset`` is an :class:`ImageDataset`."""
    return {
        "kind": "images",
        "method": method,
        "dataset": dataset.name,
        "classes": dataset.classes,
        "num_classes": dataset.num_classes,
        "ipc": ipc,
        "normalization": {"mean": list(dataset.mean), "std": list(dataset.std)},
        "config": config,
        "seed": seed,
    }


def load(path: str | os.PathLike) -> SyntheticSet:
    """Read an artifact folder (or its ``synthetic.safetensors``) into a :class:`SyntheticSet`."""
    path = Path(path)
    if path.is_file() and path.name == TENSORS_FILE:
        path = path.parent
    if not path.is_dir():
        raise UserError(f"artifact {path} not found; pass a folder written by 'gendistill select'")
    tensors_path, meta_path = path / TENSORS_FILE, path / META_FILE
    for p in (tensors_path, meta_path):
        if not p.is_file():
            raise UserError(f"{path} is not a gendistill artifact: {p.name} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{meta_path} is corrupted ({e.__class__.__name__}); re-create the artifact") from None
    try:
        tensors = load_file(str(tensors_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{tensors_path} is truncated or corrupted ({e}); re-create the artifact") from None
    return _from_tensors(path, tensors, meta)


def _from_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> SyntheticSet:
    if "images" not in tensors or "labels" not in tensors:
        raise UserError(f"{path} holds no images/labels tensors; re-create the artifact")
    images, labels = tensors["images"].float(), tensors["labels"].long()
    if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(f"{path}: images {tuple(images.shape)} and labels {tuple(labels.shape)} do not pair up")
    if list(images.shape[1:]) != meta.get("image_shape", list(images.shape[1:])):
        raise UserError(f"{path}: images are {list(images.shape[1:])} but meta.json says {meta['image_shape']}")
    num_classes = meta.get("num_classes")
    if num_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{path}: labels fall outside 0..{num_classes - 1}; the artifact is corrupted")
    extra = {k.removeprefix("extra."): v for k, v in tensors.items() if k.startswith("extra.")}
    return SyntheticSet(images, labels, meta, tensors.get("soft_labels"), tensors.get("lr"), extra)


def check_fits(synthetic: SyntheticSet, dataset) -> None:  # noqa: ANN001
    """Refuse an artifact made for other data before hours are spent training on it."""
    if synthetic.image_shape != dataset.image_shape:
        raise UserError(
            f"artifact images are {list(synthetic.image_shape)} (C,H,W) but {dataset.name} images are "
            f"{list(dataset.image_shape)}; evaluate it on the dataset it was made from"
        )
    k = synthetic.meta.get("num_classes")
    if k is not None and k != dataset.num_classes:
        raise UserError(
            f"artifact has {k} classes but {dataset.name} has {dataset.num_classes}; use the matching dataset"
        )
    if len(synthetic) and int(synthetic.labels.max()) >= dataset.num_classes:
        raise UserError(
            f"artifact labels reach {int(synthetic.labels.max())} but {dataset.name} has {dataset.num_classes} classes"
        )
