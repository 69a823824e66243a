"""The embedding set: one learned conditioning per image, plus a reference to the prior that decodes them
(Diffusion Inversion's artifact).

The conditionings mean nothing without their prior, so the set records the prior by path and by a content
hash of its weights; :meth:`EmbeddingSet.check_prior` refuses a prior that moved or changed. Images come
from it through ``gendistill generate`` (:mod:`gendistill.inversion.generate`), which writes an image set.

Folder layout (``_class_name`` ``"EmbeddingSet"``)::

    embeddings.safetensors  embeddings [N, tokens, width], labels [N], indices [N] (of the real images in
                            their split, when known)
    config.json             meta (as every artifact), "prior": {"path", "sha256"}
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gendistill.artifacts.base import Artifact
from gendistill.errors import UserError
from gendistill.store import Stored

EMBEDDINGS = "embeddings"


def content_hash(folder: str | os.PathLike) -> str:
    """sha256 over a model folder's weight files (``*.safetensors``, in sorted path order)."""
    folder = Path(folder)
    files = sorted(folder.rglob("*.safetensors"))
    if not files:
        raise UserError(f"{folder} holds no .safetensors weights to identify the prior by")
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(folder)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@dataclass
class EmbeddingSet(Artifact):
    embeddings: torch.Tensor
    labels: torch.Tensor
    prior: dict  # {"path": ..., "sha256": ...}
    meta: dict = field(default_factory=dict)
    indices: torch.Tensor | None = None  # which real images (of meta["split"]) were inverted

    class_name = "EmbeddingSet"

    def __post_init__(self) -> None:
        if len(self.embeddings) != len(self.labels):
            raise ValueError(f"{len(self.embeddings)} embeddings but {len(self.labels)} labels")

    @classmethod
    def for_prior(
        cls,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        prior_dir: str | os.PathLike,
        meta: dict | None = None,
        indices: torch.Tensor | None = None,
    ) -> EmbeddingSet:
        ref = {"path": str(Path(prior_dir).resolve()), "sha256": content_hash(prior_dir)}
        return cls(embeddings, labels, ref, meta or {}, indices)

    def first(self, n: int) -> EmbeddingSet:
        """The first ``n`` embeddings of every class: those ``gendistill invert --per-class n`` (same seed and
        prior) would choose and learn, since each image's draws are seeded by its own index."""
        rows = torch.cat([torch.nonzero(self.labels == c, as_tuple=True)[0][:n] for c in self.labels.unique()])
        if any(int((self.labels == c).sum()) < n for c in self.labels.unique()):
            raise UserError(f"a class has fewer than {n} embeddings; choose n <= the set's per-class count")
        meta = {**self.meta, "ipc": n, "subset_of": self.meta.get("ipc")}
        indices = self.indices[rows] if self.indices is not None else None
        return EmbeddingSet(self.embeddings[rows], self.labels[rows], self.prior, meta, indices)

    def check_prior(self, prior_dir: str | os.PathLike | None = None) -> Path:
        """The prior folder these embeddings belong to (the recorded one, or ``prior_dir``), if unchanged."""
        path = Path(prior_dir or self.prior["path"])
        if not path.is_dir():
            raise UserError(
                f"the embeddings were inverted with the prior in {self.prior['path']}, which is gone; "
                "pass the folder it moved to"
            )
        if content_hash(path) != self.prior["sha256"]:
            raise UserError(
                f"the prior in {path} is not the one these embeddings were inverted with (its weights "
                "differ); use that prior, or invert again with this one"
            )
        return path

    def training_set(self):
        raise UserError(
            "an embedding set holds conditionings, not images; make images from it first: "
            "gendistill generate DIR --per-image K --out IMAGES, then evaluate IMAGES"
        )

    def storage_bytes(self) -> int:
        return self.embeddings.numel() * self.embeddings.element_size() + self.labels.numel() * 8

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        described = {
            "num_embeddings": len(self.labels),
            "embedding_shape": list(self.embeddings.shape[1:]),
            "prior": self.prior,
        }
        tensors = {"embeddings": self.embeddings, "labels": self.labels}
        if self.indices is not None:
            tensors["indices"] = self.indices
        return self.write(path, force, described, {EMBEDDINGS: tensors})

    @classmethod
    def from_stored(cls, stored: Stored) -> EmbeddingSet:
        meta = stored.settings()
        prior = meta.get("prior")
        if not isinstance(prior, dict) or not {"path", "sha256"} <= set(prior):
            raise UserError(f"{stored.path}: its config records no prior (path and sha256); re-create it")
        t = stored.tensors(EMBEDDINGS)
        indices = t["indices"].long() if "indices" in t else None
        return cls(t["embeddings"].float(), t["labels"].long(), prior, meta, indices)
