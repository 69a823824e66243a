"""What "IPC" means when an artifact is a model, and which images the evaluator trains on.

Three readings, labelled wherever a number is printed (METHODS.md; DiM's evaluation mixes them up):

- (a) ``fixed``: a fixed set of exactly IPC x classes images, sampled once (stored codes first). The
  primary number; for an image set it is the set itself.
- (b) ``fresh``: fresh class-balanced samples every epoch, IPC x classes of them, so the training takes
  exactly the iterations of (a); only a model can be read this way.
- (c) storage-equivalent IPC: the artifact's stored bytes over the bytes of one real image as uint8 times
  the number of classes, i.e. the IPC of a pixel set that costs the same to keep. A number reported
  beside (a) and (b), not a training set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gendistill.artifacts import Artifact, GeneratorSet
from gendistill.data import ImageDataset
from gendistill.errors import UserError, an
from gendistill.evaluate.trainer import TrainingData
from gendistill.runtime import derived_seed

READINGS = ("fixed", "fresh")


@dataclass
class FreshSamples:
    """Reading (b): ``ipc`` new samples per class every epoch, drawn from (seed, epoch) alone."""

    source: GeneratorSet
    ipc: int
    seed: int = 0

    def epoch(self, epoch: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(derived_seed(self.seed, epoch, 11))
        codes, labels = self.source.fresh_codes(self.ipc, g)
        return self.source.render(codes, labels), labels


def storage_ipc(stored_bytes: int, dataset: ImageDataset) -> float:
    """Reading (c): the IPC of a uint8 pixel set of the same stored size."""
    return stored_bytes / (math.prod(dataset.image_shape) * dataset.num_classes)


def training_data(
    artifact: Artifact, reading: str = "fixed", ipc: int | None = None, seed: int = 0
) -> tuple[TrainingData, dict]:
    """The data to train on under ``reading``, and the label that says what it was.

    ``ipc``: for a model, the IPC to sample (default: the IPC it was distilled with); an image set serves
    its own IPC only.
    """
    if reading not in READINGS:
        raise UserError(f"unknown reading {reading!r}; use {' or '.join(READINGS)}")
    own = artifact.meta.get("ipc")
    if not isinstance(artifact, GeneratorSet):
        if reading != "fixed":
            raise UserError(
                f"reading {reading} draws new samples, which needs a generator set; "
                f"this artifact is {an(artifact.class_name)} (a fixed set): drop --reading"
            )
        if ipc is not None and ipc != own:
            raise UserError(
                f"{an(artifact.class_name)} holds {own} image(s) per class and cannot serve ipc {ipc}; "
                "drop --ipc, or distil a generator set (--method dcgm) to sample any IPC"
            )
        data = artifact.training_set()
        return data, {"reading": "fixed", "ipc": own, "images": len(data)}
    ipc = ipc if ipc is not None else own
    if ipc is None or ipc < 1:
        raise UserError(f"ipc must be at least 1, got {ipc}")
    if reading == "fresh":
        data = FreshSamples(artifact, ipc, seed)
        return data, {"reading": "fresh", "ipc": ipc, "images": ipc * artifact.num_classes}
    data = artifact.training_set() if ipc == own else artifact.sample(ipc, seed)
    return data, {"reading": "fixed", "ipc": ipc, "images": len(data)}


def describe(label: dict, stored_bytes: int | None, dataset: ImageDataset) -> str:
    """One line naming the reading, for reports and logs."""
    if label.get("train_on"):
        text = f"trained on {label['train_on']}: {label['images']} images"
    elif label["reading"] == "fixed":
        text = f"reading (a): a fixed set of {label['images']} images ({label['ipc']} per class), sampled once"
    else:
        text = f"reading (b): {label['images']} fresh samples every epoch ({label['ipc']} per class)"
    if label.get("steps"):
        text += f"; a fixed budget of {label['steps']} steps"
    if stored_bytes:
        text += (
            f"; stored {stored_bytes:,} bytes = storage-equivalent IPC "
            f"{storage_ipc(stored_bytes, dataset):.1f} (reading c)"
        )
    return text
