"""A 3-layer MLP (width 128), the field's weakest cross-architecture probe."""

from __future__ import annotations

from torch import nn

from gendistill.models.base import Classifier


class MLP(Classifier):
    def __init__(self, channels: int, num_classes: int, image_size: int, width: int = 128) -> None:
        super().__init__()
        d_in = channels * image_size * image_size
        self.blocks = nn.ModuleList(
            [nn.Sequential(nn.Linear(d_in, width), nn.ReLU()), nn.Sequential(nn.Linear(width, width), nn.ReLU())]
        )
        self.head = nn.Linear(width, num_classes)
        self.embed_dim = width

    def stem(self, x):
        return x.flatten(1)
