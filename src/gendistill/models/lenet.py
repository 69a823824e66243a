"""LeNet-5 with ReLU and max pooling, as in the DC benchmark suite."""

from __future__ import annotations

from torch import nn

from gendistill.models.base import Classifier, first_padding, padded_size


class LeNet(Classifier):
    def __init__(self, channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        size = padded_size(channels, image_size)
        pad = first_padding(channels, image_size, 5)
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(channels, 6, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2)),
                nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)),
            ]
        )
        feat = ((size // 2) - 4) // 2
        self.mlp = nn.Sequential(nn.Linear(16 * feat * feat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, num_classes)
        self.embed_dim = 84

    def pool(self, h):
        return self.mlp(h.flatten(1))
