"""The generator set: a class-conditional generator plus one code per stored image (DCGM's artifact).

It renders a fixed set of any IPC (the stored codes of each class first, then fresh codes drawn from a
seed) and keeps the fixed set it was distilled with already rendered, so evaluating it needs no
generator. What a user must keep is the generator's weights and the codes, not the images.

Folder layout (``_class_name`` ``"GeneratorSet"``)::

    generator.safetensors   the generator's weights (any float dtype; fp16 halves the bytes)
    codes.safetensors       codes [N, ...], labels [N]
    synthetic.safetensors   the rendered fixed set (images, labels), as an image set holds it
    config.json             meta (as every artifact), "generator": the generator's config with its _class_name
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gendistill.artifacts.base import Artifact
from gendistill.artifacts.images import TENSORS, ImageSet
from gendistill.errors import UserError
from gendistill.priors import CODES, build_from, require, to_normalized
from gendistill.priors.base import decode, draw_codes
from gendistill.store import Stored

GENERATOR, CODE_TABLE = "generator", "codes"


@dataclass
class GeneratorSet(Artifact):
    generator: nn.Module  # a prior-family module that can decode codes (see gendistill.priors.CODES)
    codes: torch.Tensor
    labels: torch.Tensor
    meta: dict = field(default_factory=dict)
    fixed: ImageSet | None = None  # the rendered fixed set; rendered on first use when absent
    weights_dtype: torch.dtype = torch.float32

    class_name = "GeneratorSet"

    def __post_init__(self) -> None:
        require(self.generator, CODES, "a generator set")
        if len(self.codes) != len(self.labels):
            raise ValueError(f"{len(self.codes)} codes but {len(self.labels)} labels")

    @property
    def num_classes(self) -> int:
        return int(self.meta.get("num_classes") or int(self.labels.max()) + 1)

    def per_class(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    @torch.no_grad()
    def render(self, codes: torch.Tensor, labels: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Normalised images of ``codes``, ``chunk`` at a time (memory stays bounded at any IPC)."""
        norm = self.meta.get("normalization", {})
        c = self.generator.image_channels
        mean, std = tuple(norm.get("mean", [0.5] * c)), tuple(norm.get("std", [0.5] * c))
        out = [
            decode(self.generator, codes[i : i + chunk], labels[i : i + chunk]).float().cpu()
            for i in range(0, len(codes), chunk)
        ]
        return to_normalized(torch.cat(out), mean, std)

    def sample(self, ipc: int, seed: int = 0) -> ImageSet:
        """A fixed set of ``ipc`` images per class: each class's stored codes first, then fresh ones."""
        if ipc < 1:
            raise UserError(f"ipc must be at least 1, got {ipc}")
        g = torch.Generator().manual_seed(seed)
        codes, labels = [], []
        for c in range(self.num_classes):
            mine = self.codes[self.labels == c][:ipc]
            fresh = draw_codes(self.generator, ipc - len(mine), g).to(self.codes.dtype)
            codes += [mine, fresh]
            labels.append(torch.full((ipc,), c, dtype=torch.long))
        codes_t, labels_t = torch.cat(codes), torch.cat(labels)
        source = {"stored_ipc": self.meta.get("ipc"), "seed": seed, "storage_bytes": self.storage_bytes()}
        meta = {**self.meta, "ipc": ipc, "sampled_from": source}
        return ImageSet(self.render(codes_t, labels_t), labels_t, meta)

    def fresh_codes(self, ipc: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``ipc`` new codes per class (class-balanced, in class order) and their labels."""
        labels = torch.arange(self.num_classes).repeat_interleave(ipc)
        return draw_codes(self.generator, len(labels), generator).to(self.codes.dtype), labels

    def training_set(self) -> ImageSet:
        if self.fixed is None:
            self.fixed = ImageSet(self.render(self.codes, self.labels), self.labels.clone(), dict(self.meta))
        return self.fixed

    def storage_bytes(self) -> int:
        weights = sum(p.numel() for p in self.generator.state_dict().values()) * self.weights_dtype.itemsize
        return weights + self.codes.numel() * self.codes.element_size() + self.labels.numel() * 8

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        fixed = self.training_set()
        weights = {k: v.detach().to(self.weights_dtype) for k, v in self.generator.state_dict().items()}
        config = {"_class_name": type(self.generator).__name__, **self.generator.config_dict()}
        described = {
            "num_images": len(self.labels),
            "image_shape": list(fixed.image_shape),
            "generator": config,
            "weights_dtype": str(self.weights_dtype).removeprefix("torch."),
        }
        tensors = {
            GENERATOR: weights,
            CODE_TABLE: {"codes": self.codes, "labels": self.labels},
            TENSORS: {"images": fixed.images, "labels": fixed.labels},
        }
        return self.write(path, force, described, tensors, grid=fixed)

    @classmethod
    def from_stored(cls, stored: Stored) -> GeneratorSet:
        meta = stored.settings()
        gen_config = meta.get("generator")
        if not isinstance(gen_config, dict) or "_class_name" not in gen_config:
            raise UserError(f"{stored.path}: its config names no generator class; re-create the artifact")
        generator = build_from(gen_config["_class_name"], gen_config, stored.tensors(GENERATOR), str(stored.path))
        table = stored.tensors(CODE_TABLE)
        fixed_t = stored.tensors(TENSORS)
        fixed = ImageSet(fixed_t["images"].float(), fixed_t["labels"].long(), dict(meta))
        dtype = getattr(torch, str(meta.get("weights_dtype", "float32")), torch.float32)
        return cls(generator, table["codes"], table["labels"].long(), meta, fixed, dtype)
