"""The synthetic images themselves, initialised from random real images or from noise."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gendistill.data import ImageDataset, check_ipc, random_subset
from gendistill.errors import UserError
from gendistill.params.base import ParamConfig, Parameterisation
from gendistill.validate import limit

INITS = ("real", "noise")


@dataclass(frozen=True)
class PixelsConfig(ParamConfig):
    """``init="real"``: ipc random training images per class; ``"noise"``: standard Gaussian pixels."""

    init: str = limit("real", help="pixels: start from real images or noise", choices=INITS)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init not in INITS:
            raise UserError(f"unknown init {self.init!r}; use {' or '.join(INITS)}")


class Pixels(Parameterisation):
    name = "pixels"
    Config = PixelsConfig

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, config: PixelsConfig | None = None
    ) -> None:
        super().__init__(labels, num_classes)
        self.images = nn.Parameter(images.clone().float())
        self.config = config or PixelsConfig()

    def render(self) -> torch.Tensor:
        return self.images

    def render_classes(self, classes: list[int]) -> torch.Tensor:
        return self.images[self.class_mask(classes)]

    @classmethod
    def build(
        cls,
        dataset: ImageDataset,
        ipc: int,
        config: PixelsConfig,
        generator: torch.Generator,
        device: torch.device | None = None,
        objective: str = "",
    ) -> Pixels:
        check_ipc(dataset, ipc)
        labels = torch.arange(dataset.num_classes).repeat_interleave(ipc)
        if config.init == "real":
            images = dataset.train_images[random_subset(dataset, ipc, generator)]
        else:
            images = torch.randn(len(labels), *dataset.image_shape, generator=generator)
        return cls(images, labels, dataset.num_classes, config)

    @classmethod
    def create(cls, dataset: ImageDataset, ipc: int, init: str, generator: torch.Generator) -> Pixels:
        return cls.build(dataset, ipc, PixelsConfig(init), generator)
