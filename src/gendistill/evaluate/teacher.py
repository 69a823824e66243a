"""Classifiers trained on the real training split, cached on disk: the soft-label protocol's teacher, the
embedding network of the prior-quality figures.

A teacher is fixed by the dataset's fingerprint, the architecture, the training recipe and the seed; the
first request trains it (minutes on a CPU for Fashion-MNIST's ConvNet-3) and saves it as a store folder
(safetensors weights + ``config.json`` with its test accuracy), every later one loads it. The cache lives
in ``$GENDISTILL_CACHE/teachers`` (default ``~/.cache/gendistill/teachers``); deleting it only costs time.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gendistill.data import ImageDataset
from gendistill.errors import UserError, an
from gendistill.evaluate.recipe import TrainRecipe
from gendistill.evaluate.trainer import accuracy, trained_with_progress
from gendistill.models import create_model
from gendistill.runtime import autocast
from gendistill.store import open_folder, write_folder

CLASS_NAME = "Teacher"


def cache_root() -> Path:
    return Path(os.environ.get("GENDISTILL_CACHE") or Path.home() / ".cache" / "gendistill") / "teachers"


@dataclass(frozen=True)
class TeacherSpec:
    """Which teacher: an architecture trained ``epochs`` on the training split (plain SGD recipe of the
    field, lr x0.1 at half; ``augment`` a DSA strategy or ``none``)."""

    model: str = "convnet"
    epochs: int = 5
    augment: str = "none"
    seed: int = 0

    def recipe(self) -> TrainRecipe:
        return TrainRecipe(epochs=self.epochs, augment=self.augment)

    def key(self, dataset: ImageDataset) -> str:
        """The cache folder's name: readable, and unique for (dataset files, spec, recipe)."""
        body = json.dumps(
            {"dataset": dataset.fingerprint(), **asdict(self), "recipe": self.recipe().to_dict()}, sort_keys=True
        )
        digest = hashlib.sha256(body.encode()).hexdigest()[:12]
        return f"{dataset.name}-{self.model.replace('[', '(').replace(']', ')')}-{self.epochs}ep-{digest}"


# The real-data classifier that judges synthetic images wherever one is needed without a protocol of its own:
# the prior-quality figures, per-class diversity, the ``classify`` regulariser, teacher-screened codes. One
# spec, so one cache entry serves them all.
JUDGE = TeacherSpec("convnet", 2)


def teacher(
    dataset: ImageDataset,
    spec: TeacherSpec,
    device: torch.device,
    cache: Path | None = None,
    amp: torch.dtype | None = None,
) -> tuple[nn.Module, dict]:
    """The trained teacher (eval mode, on ``device``) and its record (spec, test accuracy, training time).

    Under torchrun every rank asks at the same point: rank 0 trains (or loads) it first while the others
    wait, then they load what it cached, so no two processes train or write the same folder."""
    import torch.distributed as dist

    ranked = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if ranked and dist.get_rank() != 0:
        dist.barrier()  # released once rank 0 has the teacher cached
    try:
        return _teacher(dataset, spec, device, cache, amp)
    finally:
        if ranked and dist.get_rank() == 0:
            dist.barrier()


def _teacher(
    dataset: ImageDataset, spec: TeacherSpec, device: torch.device, cache: Path | None, amp: torch.dtype | None
) -> tuple[nn.Module, dict]:
    folder = (cache or cache_root()) / spec.key(dataset)
    torch.manual_seed(spec.seed)
    model = create_model(spec.model, dataset.channels, dataset.num_classes, dataset.image_size)
    if (folder / "config.json").is_file():
        stored = open_folder(folder, "teacher")
        if stored.class_name != CLASS_NAME:
            raise UserError(f"{folder} holds {an(stored.class_name)}, not a teacher; delete it to retrain")
        model.load_state_dict(stored.tensors("model"))
        return model.to(device).eval(), stored.settings()
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(spec.seed)
    desc = f"teacher {spec.model} (trained once, then cached)"
    trained_with_progress(model, dataset.train_images, dataset.train_labels, spec.recipe(), gen, device, desc, amp)
    record = {
        **asdict(spec),
        "dataset": dataset.identity(),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "test_acc": accuracy(model, dataset.test_images, dataset.test_labels, device, amp),
    }
    write_folder(folder, CLASS_NAME, record, {"model": model.state_dict()}, force=True)
    return model.eval(), record


class SoftLabels:
    """A teacher's tempered softmax of each batch the student sees (see ``trainer.Relabeler``)."""

    def __init__(self, model: nn.Module, temperature: float, amp: torch.dtype | None = None) -> None:
        if temperature <= 0:
            raise UserError(f"the soft-label temperature must be positive, got {temperature}")
        self.model, self.temperature, self.amp = model, temperature, amp

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with autocast(images.device, self.amp):
            logits = self.model(images)
        return F.softmax(logits.float() / self.temperature, dim=1)
