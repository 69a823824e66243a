"""The synthetic images themselves, initialised from random real images or from noise."""

from __future__ import annotations

import torch
from torch import nn

from gendistill.data import ImageDataset
from gendistill.evaluate.baselines import check_ipc, random_subset
from gendistill.params.base import Parameterisation


class Pixels(Parameterisation):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        super().__init__(labels, num_classes)
        self.images = nn.Parameter(images.clone().float())

    def render(self) -> torch.Tensor:
        return self.images

    def render_classes(self, classes: list[int]) -> torch.Tensor:
        return self.images[self.class_mask(classes)]

    @classmethod
    def from_space(cls, dataset: ImageDataset, ipc: int, init: str, generator: torch.Generator, space: object = None,
                   device: torch.device | None = None) -> Pixels:  # fmt: skip
        """The ``PARAMS`` builder: pixels need no space description."""
        return cls.create(dataset, ipc, init, generator)

    @classmethod
    def create(cls, dataset: ImageDataset, ipc: int, init: str, generator: torch.Generator) -> Pixels:
        """``init="real"``: ipc random training images per class; ``"noise"``: standard Gaussian pixels."""
        check_ipc(dataset, ipc)
        labels = torch.arange(dataset.num_classes).repeat_interleave(ipc)
        if init == "real":
            images = dataset.train_images[random_subset(dataset, ipc, generator)]
        elif init == "noise":
            images = torch.randn(len(labels), *dataset.image_shape, generator=generator)
        else:
            from gendistill.errors import UserError

            raise UserError(f"unknown init {init!r}; use real or noise")
        return cls(images, labels, dataset.num_classes)
